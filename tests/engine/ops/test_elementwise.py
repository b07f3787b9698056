"""Elementwise ops against a Python-int oracle (exact arithmetic, then two's-complement wrap)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper

from verifier.core.dtypes import DType, TensorType, type_of
from verifier.core.errors import ShapeError, UnsupportedOpError
from verifier.engine.ops import BY_CODE, REGISTRY, CanonContext, Canonical

INTS = [DType.INT8, DType.INT32, DType.INT64]
FAST = settings(max_examples=60, deadline=None)


# ----------------------------------------------------------------------------- helpers


def node(op_type: str, n_in: int, name: str = "n", inputs: list[str] | None = None, **attrs: object) -> onnx.NodeProto:
    names = inputs if inputs is not None else [f"x{i}" for i in range(n_in)]
    return helper.make_node(op_type, names, ["y"], name=name, **attrs)


def context(nd: onnx.NodeProto, values: list[np.ndarray | None], opset: int = 17, consts: tuple[int, ...] = ()) -> CanonContext:
    return CanonContext(
        node=nd,
        opset=opset,
        in_types=tuple(None if v is None else type_of(v) for v in values),
        const_values=tuple(v if i in consts else None for i, v in enumerate(values)),
    )


def canon_run(nd: onnx.NodeProto, values: list[np.ndarray | None], opset: int = 17, consts: tuple[int, ...] = ()) -> tuple[Canonical, np.ndarray]:
    """canonicalize -> infer -> run, checking infer's type against the produced array."""
    op = REGISTRY[nd.op_type]
    c = op.canonicalize(context(nd, values, opset, consts))
    t = op.infer([None if i is None else type_of(values[i]) for i in c.inputs], c.attrs)
    y = op.run([None if i is None else values[i] for i in c.inputs], c.attrs)
    assert isinstance(y, np.ndarray)
    assert type_of(y) == t
    return c, y


def wrap_int(v: int, d: DType) -> int:
    bits = 8 * d.width
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def elems(d: DType) -> st.SearchStrategy[int]:
    if d is DType.BOOL:
        return st.booleans()
    edges = [d.min, d.min + 1, -2, -1, 0, 1, 2, d.max - 1, d.max]
    return st.one_of(st.sampled_from(edges), st.integers(d.min, d.max))


def arrays(d: DType, shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(d.np, shape, elements=elems(d))


def oracle(fn: Callable[..., int | bool], arrs: list[np.ndarray], out: np.dtype) -> np.ndarray:
    b = np.broadcast_arrays(*arrs)
    vals = [fn(*(x.item() for x in xs)) for xs in zip(*(a.reshape(-1) for a in b), strict=True)]
    return np.array(vals, dtype=out).reshape(b[0].shape)


def shapes(n: int) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=4, min_side=0, max_side=3).map(
        lambda s: s.input_shapes
    )


# ----------------------------------------------------------------------------- oracles


def py_div(a: int, b: int) -> int:
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def py_mod(a: int, b: int) -> int:
    return 0 if b == 0 else a % b  # Python %: sign of the divisor


def py_fmod(a: int, b: int) -> int:
    if b == 0:
        return 0
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


BINARY: dict[str, tuple[Callable[[int, int], int], tuple[int, ...]]] = {
    "Add": (lambda a, b: a + b, ()),
    "Sub": (lambda a, b: a - b, ()),
    "Mul": (lambda a, b: a * b, ()),
    "Div": (py_div, ()),
    "Mod": (py_mod, (0,)),
    "Mod1": (py_fmod, (1,)),
}


# ----------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: d.name.lower())
@pytest.mark.parametrize("opname", list(BINARY))
@FAST
@given(data=st.data())
def test_binary_arithmetic_matches_python_ints(opname: str, dtype: DType, data: st.DataObject) -> None:
    fn, attrs = BINARY[opname]
    op = REGISTRY[opname.rstrip("1")]
    sa, sb = data.draw(shapes(2))
    a, b = data.draw(arrays(dtype, sa)), data.draw(arrays(dtype, sb))
    y = op.run([a, b], attrs)
    assert op.infer([type_of(a), type_of(b)], attrs) == type_of(y)
    want = oracle(lambda x, z: wrap_int(fn(x, z), dtype), [a, b], dtype.np)
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: d.name.lower())
def test_division_edges(dtype: DType) -> None:
    lo, hi = dtype.min, dtype.max
    a = np.array([7, -7, 7, -7, lo, lo, hi, 5, 0, lo, -1], dtype.np)
    b = np.array([2, 2, -2, -2, -1, 1, -1, 0, 0, 0, lo], dtype.np)
    div = REGISTRY["Div"].run([a, b], ())
    np.testing.assert_array_equal(div, np.array([3, -3, -3, 3, lo, lo, -hi, 0, 0, 0, 0], dtype.np))
    mod = REGISTRY["Mod"].run([a, b], (0,))
    np.testing.assert_array_equal(mod, np.array([1, 1, -1, -1, 0, 0, 0, 0, 0, 0, -1], dtype.np))
    fmod = REGISTRY["Mod"].run([a, b], (1,))
    np.testing.assert_array_equal(fmod, np.array([1, -1, 1, -1, 0, 0, 0, 0, 0, 0, -1], dtype.np))


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: d.name.lower())
def test_wraparound_edges(dtype: DType) -> None:
    lo, hi = dtype.min, dtype.max
    x = np.array([lo, hi], dtype.np)
    np.testing.assert_array_equal(REGISTRY["Add"].run([x, np.array(1, dtype.np)], ()), [lo + 1, lo])
    np.testing.assert_array_equal(REGISTRY["Sub"].run([x, np.array(1, dtype.np)], ()), [hi, hi - 1])
    np.testing.assert_array_equal(REGISTRY["Mul"].run([x, np.array(-1, dtype.np)], ()), [lo, -hi])
    np.testing.assert_array_equal(REGISTRY["Neg"].run([x], ()), [lo, -hi])
    np.testing.assert_array_equal(REGISTRY["Abs"].run([x], ()), [lo, hi])


UNARY: dict[str, Callable[[int], int]] = {
    "Neg": lambda a: -a,
    "Abs": abs,
    "Sign": lambda a: (a > 0) - (a < 0),
    "Relu": lambda a: max(a, 0),
    "Identity": lambda a: a,
}


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: d.name.lower())
@pytest.mark.parametrize("opname", list(UNARY))
@FAST
@given(data=st.data())
def test_unary_matches_python_ints(opname: str, dtype: DType, data: st.DataObject) -> None:
    op = REGISTRY[opname]
    x = data.draw(arrays(dtype, data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))))
    y = op.run([x], ())
    assert op.infer([type_of(x)], ()) == type_of(y)
    np.testing.assert_array_equal(y, oracle(lambda a: wrap_int(UNARY[opname](a), dtype), [x], dtype.np))


# ----------------------------------------------------------------------------- Max / Min / Clip / Where


@pytest.mark.parametrize("opname", ["Max", "Min"])
@FAST
@given(data=st.data())
def test_variadic_max_min(opname: str, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(INTS))
    n = data.draw(st.integers(1, 4))
    ins = [data.draw(arrays(dtype, s)) for s in data.draw(shapes(n))]
    nd = node(opname, n)
    c, y = canon_run(nd, list(ins))
    assert c == Canonical(tuple(range(n)), ())
    np.testing.assert_array_equal(y, oracle(lambda *v: (max if opname == "Max" else min)(v), ins, dtype.np))


@FAST
@given(data=st.data())
def test_clip(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(INTS))
    x = data.draw(arrays(dtype, data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))))
    lo = data.draw(st.none() | elems(dtype))
    hi = data.draw(st.none() | elems(dtype))
    vals: list[np.ndarray | None] = [x, None if lo is None else np.array(lo, dtype.np), None if hi is None else np.array(hi, dtype.np)]
    names = ["x", "" if lo is None else "lo", "" if hi is None else "hi"]
    c, y = canon_run(node("Clip", 3, inputs=names), vals, opset=13)
    assert c.inputs == (0, None if lo is None else 1, None if hi is None else 2)

    def clip(v: int) -> int:
        if lo is not None:
            v = max(v, lo)
        if hi is not None:
            v = min(v, hi)  # lo > hi gives hi everywhere, as ONNX says
        return v

    np.testing.assert_array_equal(y, oracle(clip, [x], dtype.np))


def test_clip_bounds_lo_above_hi_and_trailing_absent_inputs() -> None:
    x = np.array([-5, 0, 5], np.int32)
    _, y = canon_run(node("Clip", 3, inputs=["x", "lo", "hi"]), [x, np.array(3, np.int32), np.array(1, np.int32)], opset=13)
    np.testing.assert_array_equal(y, [1, 1, 1])
    c, y = canon_run(node("Clip", 2, inputs=["x", "lo"]), [x, np.array(0, np.int32)], opset=12)
    assert c.inputs == (0, 1, None)
    np.testing.assert_array_equal(y, [0, 0, 5])
    c, y = canon_run(node("Clip", 1, inputs=["x"]), [x], opset=11)
    assert c.inputs == (0, None, None)
    np.testing.assert_array_equal(y, x)


@FAST
@given(data=st.data())
def test_where(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from([*INTS, DType.BOOL]))
    sc, sx, sy = data.draw(shapes(3))
    c = data.draw(arrays(DType.BOOL, sc))
    x, y = data.draw(arrays(dtype, sx)), data.draw(arrays(dtype, sy))
    _, out = canon_run(node("Where", 3), [c, x, y])
    np.testing.assert_array_equal(out, oracle(lambda k, a, b: a if k else b, [c, x, y], dtype.np))


# ----------------------------------------------------------------------------- comparisons / logic


COMPARE: dict[str, Callable[[int, int], bool]] = {
    "Equal": lambda a, b: a == b,
    "Less": lambda a, b: a < b,
    "Greater": lambda a, b: a > b,
    "LessOrEqual": lambda a, b: a <= b,
    "GreaterOrEqual": lambda a, b: a >= b,
}


@pytest.mark.parametrize("opname", list(COMPARE))
@FAST
@given(data=st.data())
def test_comparisons(opname: str, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from([*INTS, DType.BOOL] if opname == "Equal" else INTS))
    sa, sb = data.draw(shapes(2))
    a, b = data.draw(arrays(dtype, sa)), data.draw(arrays(dtype, sb))
    _, y = canon_run(node(opname, 2), [a, b])
    np.testing.assert_array_equal(y, oracle(COMPARE[opname], [a, b], np.dtype(np.bool_)))


LOGIC: dict[str, Callable[..., bool]] = {
    "And": lambda a, b: a and b,
    "Or": lambda a, b: a or b,
    "Xor": lambda a, b: a != b,
    "Not": lambda a: not a,
}


@pytest.mark.parametrize("opname", list(LOGIC))
@FAST
@given(data=st.data())
def test_logic(opname: str, data: st.DataObject) -> None:
    n = 1 if opname == "Not" else 2
    ins = [data.draw(arrays(DType.BOOL, s)) for s in data.draw(shapes(n))]
    _, y = canon_run(node(opname, n), list(ins), opset=7)
    np.testing.assert_array_equal(y, oracle(LOGIC[opname], ins, np.dtype(np.bool_)))


# ----------------------------------------------------------------------------- Cast


@FAST
@given(data=st.data())
def test_cast(data: st.DataObject) -> None:
    src = data.draw(st.sampled_from([*INTS, DType.BOOL]))
    dst = data.draw(st.sampled_from([*INTS, DType.BOOL]))
    x = data.draw(arrays(src, data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))))
    c, y = canon_run(node("Cast", 1, to=int(dst)), [x], opset=19)
    assert c.attrs == (int(dst),)
    if dst is DType.BOOL:
        want = oracle(lambda v: v != 0, [x], dst.np)
    else:
        want = oracle(lambda v: wrap_int(int(v), dst), [x], dst.np)
    np.testing.assert_array_equal(y, want)


def test_cast_ignores_saturate_and_refuses_float_targets() -> None:
    x = np.array([300, -1], np.int32)
    _, y = canon_run(node("Cast", 1, to=TensorProto.INT8, saturate=0), [x], opset=19)
    np.testing.assert_array_equal(y, np.array([44, -1], np.int8))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Cast\).*FLOAT"):
        REGISTRY["Cast"].canonicalize(context(node("Cast", 1, to=TensorProto.FLOAT), [x]))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Cast\).*'to'"):
        REGISTRY["Cast"].canonicalize(context(node("Cast", 1), [x]))


# ----------------------------------------------------------------------------- canonical form


def test_registry_codes() -> None:
    want = {
        "Identity": 1, "Add": 2, "Sub": 3, "Mul": 4, "Div": 5, "Mod": 6, "Neg": 7, "Abs": 8, "Sign": 9,
        "Relu": 10, "Max": 11, "Min": 12, "Clip": 13, "Where": 14, "Equal": 15, "Less": 16, "Greater": 17,
        "LessOrEqual": 18, "GreaterOrEqual": 19, "Not": 20, "And": 21, "Or": 22, "Xor": 23, "Cast": 24,
    }  # fmt: skip
    for name, code in want.items():
        assert REGISTRY[name].code == code
        assert BY_CODE[code] is REGISTRY[name]


def test_mod_canonical_attrs() -> None:
    a, b = np.array([-7], np.int64), np.array([3], np.int64)
    c, y = canon_run(node("Mod", 2), [a, b], opset=13)
    assert c == Canonical((0, 1), (0,)) and y.tolist() == [2]
    c, y = canon_run(node("Mod", 2, fmod=1), [a, b], opset=13)
    assert c == Canonical((0, 1), (1,)) and y.tolist() == [-1]


def test_rank0_and_empty_broadcast() -> None:
    a = np.array(2**62, np.int64)
    _, y = canon_run(node("Mul", 2), [a, np.array(4, np.int64)])
    assert y.shape == () and y.dtype == np.int64 and int(y) == 0
    _, y = canon_run(node("Add", 2), [np.zeros((0, 3), np.int32), np.ones((1, 3), np.int32)])
    assert y.shape == (0, 3)
    _, y = canon_run(node("Div", 2), [np.zeros((2, 1, 0), np.int8), np.ones((3, 1), np.int8)])
    assert y.shape == (2, 3, 0)


# ----------------------------------------------------------------------------- refusals


def test_refuses_bool_arithmetic_naming_the_node() -> None:
    b = np.array([True])
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Add\).*bool.*Cast"):
        REGISTRY["Add"].canonicalize(context(node("Add", 2), [b, b]))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(And\).*int32"):
        REGISTRY["And"].canonicalize(context(node("And", 2), [np.array([1], np.int32)] * 2))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Less\)"):
        REGISTRY["Less"].canonicalize(context(node("Less", 2), [b, b]))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Max\)"):
        REGISTRY["Max"].canonicalize(context(node("Max", 2), [b, b]))


def test_refuses_mixed_dtypes() -> None:
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Sub\).*int32, int64"):
        REGISTRY["Sub"].canonicalize(context(node("Sub", 2), [np.array([1], np.int32), np.array([1], np.int64)]))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Where\).*condition"):
        REGISTRY["Where"].canonicalize(context(node("Where", 3), [np.array([1], np.int32)] * 3))


def test_refuses_bad_broadcast() -> None:
    with pytest.raises(ShapeError, match=r"node 'n' \(Add\).*\[2, 3\].*\[4\]"):
        REGISTRY["Add"].canonicalize(context(node("Add", 2), [np.zeros((2, 3), np.int32), np.zeros(4, np.int32)]))
    with pytest.raises(ShapeError):
        REGISTRY["Mul"].infer([TensorType(DType.INT8, (0,)), TensorType(DType.INT8, (2,))], ())
    with pytest.raises(ShapeError, match=r"node 'n' \(Clip\)"):
        x = np.zeros(3, np.int32)
        REGISTRY["Clip"].canonicalize(context(node("Clip", 2), [x, np.zeros(2, np.int32)], opset=13))


def test_refuses_legacy_and_unknown_attributes() -> None:
    x = np.zeros(3, np.int32)
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Add\).*broadcast"):
        REGISTRY["Add"].canonicalize(context(node("Add", 2, broadcast=1), [x, x], opset=6))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Clip\).*opset 11"):
        REGISTRY["Clip"].canonicalize(context(node("Clip", 1, min=0.0, max=1.0), [x], opset=6))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Mod\).*fmod"):
        REGISTRY["Mod"].canonicalize(context(node("Mod", 2, fmod=2), [x, x], opset=13))


def test_refuses_wrong_arity() -> None:
    x = np.zeros(3, np.int32)
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Add\).*3 inputs"):
        REGISTRY["Add"].canonicalize(context(node("Add", 3), [x, x, x]))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Max\).*missing"):
        REGISTRY["Max"].canonicalize(context(node("Max", 2, inputs=["a", ""]), [x, None]))
