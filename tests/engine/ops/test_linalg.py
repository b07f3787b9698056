"""MatMul, Gemm, MatMulInteger, ConvInteger: reference kernels against Python-int oracles."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import helper
from onnx.reference import ReferenceEvaluator

from verifier.core.dtypes import DType, TensorType, type_of
from verifier.core.errors import ShapeError, UnsupportedOpError
from verifier.engine.ops import BY_CODE, REGISTRY, CanonContext, Canonical

# ---------------------------------------------------------------------------------------------
# Helpers: contexts, canonical runs, and oracles computed with Python ints only.


def make_ctx(
    op_type: str, inputs: Sequence[np.ndarray | None], name: str = "n0", opset: int = 21, **attrs: object
) -> CanonContext:
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(inputs)]
    while names and names[-1] == "":
        names.pop()
    node = helper.make_node(op_type, names, ["y"], name=name, **attrs)
    types = tuple(None if a is None else type_of(a) for a in inputs[: len(names)])
    return CanonContext(node, opset, types, (None,) * len(names))


def canon(op_type: str, inputs: Sequence[np.ndarray | None], **attrs: object) -> Canonical:
    return REGISTRY[op_type].canonicalize(make_ctx(op_type, inputs, **attrs))


def run(op_type: str, inputs: Sequence[np.ndarray | None], **attrs: object) -> np.ndarray:
    """Canonicalizes, runs the reference, and checks the result against `infer`."""
    op = REGISTRY[op_type]
    c = op.canonicalize(make_ctx(op_type, inputs, **attrs))
    ins = [None if i is None else inputs[i] for i in c.inputs]
    y = op.run(ins, c.attrs)
    t = op.infer([None if a is None else type_of(a) for a in ins], c.attrs)
    assert t == type_of(y), (t, type_of(y))
    return y


def wrap_int(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def as_py(a: np.ndarray) -> np.ndarray:
    """Object array of Python ints: no numpy integer arithmetic can overflow in the oracles."""
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        out[idx] = int(a[idx])
    return out


def oracle_matmul(a: np.ndarray, b: np.ndarray, bits: int, za: int = 0, zb: int = 0) -> np.ndarray:
    pa, pb = as_py(a) - za, as_py(b) - zb
    pa = pa.reshape(1, -1) if a.ndim == 1 else pa
    pb = pb.reshape(-1, 1) if b.ndim == 1 else pb
    batch = np.broadcast_shapes(pa.shape[:-2], pb.shape[:-2])
    pa = np.broadcast_to(pa, batch + pa.shape[-2:])
    pb = np.broadcast_to(pb, batch + pb.shape[-2:])
    m, k, n = pa.shape[-2], pa.shape[-1], pb.shape[-1]
    out = np.empty(batch + (m, n), dtype=object)
    for idx in np.ndindex(out.shape):
        bi, i, j = idx[:-2], idx[-2], idx[-1]
        out[idx] = wrap_int(sum((pa[bi + (i, kk)] * pb[bi + (kk, j)] for kk in range(k)), 0), bits)
    shape = batch + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
    return out.reshape(shape)


def oracle_gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray | None, ta: int, tb: int, bits: int) -> np.ndarray:
    pa = as_py(a).T if ta else as_py(a)
    pb = as_py(b).T if tb else as_py(b)
    m, k, n = pa.shape[0], pa.shape[1], pb.shape[1]
    pc = np.broadcast_to(as_py(c), (m, n)) if c is not None else np.zeros((m, n), dtype=object)
    out = np.empty((m, n), dtype=object)
    for i, j in np.ndindex(m, n):
        out[i, j] = wrap_int(sum((pa[i, kk] * pb[kk, j] for kk in range(k)), int(pc[i, j])), bits)
    return out


def oracle_conv(
    x: np.ndarray,
    w: np.ndarray,
    zx: int,
    zw: int,
    group: int,
    pb: Sequence[int],
    pe: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> np.ndarray:
    """The naive definition: every output position, every (channel, kernel offset) term."""
    n_b = x.shape[0]
    m, cg = w.shape[:2]
    kernel = w.shape[2:]
    spatial = x.shape[2:]
    out_sp = [
        (d + b + e - (k - 1) * dl - 1) // s + 1
        for d, k, b, e, s, dl in zip(spatial, kernel, pb, pe, strides, dilations, strict=True)
    ]
    out = np.zeros((n_b, m, *out_sp), dtype=object)
    mg = m // group
    for idx in np.ndindex(out.shape):
        nb, mm, o = idx[0], idx[1], idx[2:]
        g = mm // mg
        total = 0
        for cc in range(cg):
            for j in itertools.product(*(range(k) for k in kernel)):
                pos = tuple(oi * s + ji * dl - b for oi, s, ji, dl, b in zip(o, strides, j, dilations, pb, strict=True))
                if all(0 <= p < d for p, d in zip(pos, spatial, strict=True)):
                    total += (int(x[(nb, g * cg + cc, *pos)]) - zx) * (int(w[(mm, cc, *j)]) - zw)
        out[idx] = wrap_int(total, 32)
    return out


def same_pads(
    spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int], lower: bool
) -> tuple[list[int], list[int]]:
    """ONNX auto_pad SAME_*: output ceil(D/s); the extra pixel goes at the end for UPPER."""
    pb, pe = [], []
    for d, k, s, dl in zip(spatial, kernel, strides, dilations, strict=True):
        out = -(-d // s)
        total = max(0, (out - 1) * s + (k - 1) * dl + 1 - d)
        small, big = total // 2, total - total // 2
        pb.append(big if lower else small)
        pe.append(small if lower else big)
    return pb, pe


def eq(y: np.ndarray, expected: np.ndarray, dtype: type[np.generic]) -> None:
    assert y.dtype == np.dtype(dtype)
    assert y.shape == expected.shape
    assert [int(v) for v in y.reshape(-1)] == [int(v) for v in expected.reshape(-1)]


def onnx_reference(op_type: str, inputs: Sequence[np.ndarray | None], **attrs: object) -> np.ndarray:
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op_type, names, ["y"], **attrs)
    vis = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
        for n, a in zip(names, inputs, strict=True)
        if a is not None
    ]
    graph = helper.make_graph([node], "g", vis, [helper.make_tensor_value_info("y", onnx.TensorProto.UNDEFINED, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    feeds = {n: a for n, a in zip(names, inputs, strict=True) if a is not None}
    return np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])


I32, I64 = np.int32, np.int64
MIN64, MAX64 = -(2**63), 2**63 - 1
MIN32, MAX32 = -(2**31), 2**31 - 1


# ---------------------------------------------------------------------------------------------
# Registry


def test_registry__codes_and_names() -> None:
    for code, name in ((39, "MatMul"), (40, "Gemm"), (41, "MatMulInteger"), (42, "ConvInteger")):
        assert BY_CODE[code] is REGISTRY[name]
        assert BY_CODE[code].name == name


# ---------------------------------------------------------------------------------------------
# MatMul


@pytest.mark.parametrize(
    ("sa", "sb", "out"),
    [
        ((3,), (3,), ()),
        ((3,), (3, 4), (4,)),
        ((2, 3), (3,), (2,)),
        ((3,), (5, 3, 4), (5, 4)),
        ((5, 2, 3), (3,), (5, 2)),
        ((2, 1, 3, 4), (5, 4, 2), (2, 5, 3, 2)),
        ((1, 4, 2), (3, 2, 6), (3, 4, 6)),
        ((0, 3), (3, 4), (0, 4)),
        ((2, 0), (0, 3), (2, 3)),
        ((2, 0, 3, 4), (4, 2), (2, 0, 3, 2)),
    ],
)
@pytest.mark.parametrize("dtype", [I32, I64])
def test_matmul__shapes__match_oracle(
    sa: tuple[int, ...], sb: tuple[int, ...], out: tuple[int, ...], dtype: type[np.generic]
) -> None:
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, size=sa, dtype=dtype, endpoint=True)
    b = rng.integers(info.min, info.max, size=sb, dtype=dtype, endpoint=True)
    y = run("MatMul", [a, b])
    assert y.shape == out
    eq(y, oracle_matmul(a, b, info.bits), dtype)


def test_matmul__int64_overflow__wraps_mod_2_64() -> None:
    a = np.array([[MAX64, MIN64, 3]], I64)
    b = np.array([[MAX64], [MIN64], [2**62]], I64)
    exact = MAX64 * MAX64 + MIN64 * MIN64 + 3 * 2**62
    eq(run("MatMul", [a, b]), np.array([[wrap_int(exact, 64)]], dtype=object), I64)


def test_matmul__int32_overflow__wraps_mod_2_32() -> None:
    a = np.array([MAX32, MAX32], I32)
    b = np.array([MAX32, 2], I32)
    y = run("MatMul", [a, b])
    assert y.shape == () and y.dtype == I32
    assert int(y) == wrap_int(MAX32 * MAX32 + 2 * MAX32, 32)


def test_matmul__min_times_minus_one__wraps_to_min() -> None:
    # -2^31 * -1 = 2^31 is the one product that leaves int32 on its own.
    y = run("MatMul", [np.array([[MIN32]], I32), np.array([[-1]], I32)])
    assert int(y[0, 0]) == MIN32


def _batch_pair(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    full = draw(st.lists(st.integers(0, 3), max_size=2))
    la, lb = draw(st.integers(0, len(full))), draw(st.integers(0, len(full)))
    ba = [1 if draw(st.booleans()) else d for d in full[len(full) - la :]]
    bb = [1 if draw(st.booleans()) else d for d in full[len(full) - lb :]]
    return tuple(ba), tuple(bb)


@st.composite
def matmul_operands(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    dtype = draw(st.sampled_from([I32, I64]))
    info = np.iinfo(dtype)
    m, k, n = draw(st.integers(0, 4)), draw(st.integers(0, 4)), draw(st.integers(0, 4))
    ba, bb = _batch_pair(draw)
    sa = (k,) if draw(st.booleans()) and not ba else (*ba, m, k)
    sb = (k,) if draw(st.booleans()) and not bb else (*bb, k, n)
    hi = draw(st.sampled_from([4, 2**20, int(info.max)]))
    elems = st.one_of(st.integers(-hi, hi), st.sampled_from([int(info.min), int(info.max)]))
    return draw(hnp.arrays(dtype, sa, elements=elems)), draw(hnp.arrays(dtype, sb, elements=elems))


@settings(max_examples=400, deadline=None)
@given(matmul_operands())
def test_matmul__random__matches_oracle(ab: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = ab
    eq(run("MatMul", [a, b]), oracle_matmul(a, b, np.iinfo(a.dtype).bits), a.dtype.type)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8)),
        (np.zeros((2, 3), np.bool_), np.zeros((3, 2), np.bool_)),
        (np.zeros((2, 3), I32), np.zeros((3, 2), I64)),
    ],
)
def test_matmul__non_int32_int64__refused_naming_node(a: np.ndarray, b: np.ndarray) -> None:
    with pytest.raises(UnsupportedOpError, match=r"node 'n0' \(MatMul\).*int32 or two int64") as e:
        canon("MatMul", [a, b])
    assert "\n" not in str(e.value) and str(e.value).endswith(".")


def test_matmul__float_model__refused_at_type_conversion_naming_node() -> None:
    # Types reach canonicalize as profile DTypes; a float tensor is refused when its ONNX type is read.
    ctx = make_ctx("MatMul", [np.zeros((2, 2), I32), np.zeros((2, 2), I32)], name="mm")
    with pytest.raises(UnsupportedOpError, match=r"node 'mm' \(MatMul\) has dtype FLOAT.*quantize"):
        DType.from_onnx(onnx.TensorProto.FLOAT, ctx.where)


@pytest.mark.parametrize("op_type", ["MatMul", "MatMulInteger"])
def test_run__float_arrays__refused(op_type: str) -> None:
    a = np.ones((2, 2), np.float32)
    with pytest.raises(UnsupportedOpError, match="float32.*outside the integer profile"):
        REGISTRY[op_type].run([a, a], ())


@pytest.mark.parametrize(
    ("sa", "sb", "match"),
    [((2, 3), (4, 2), "inner dims differ"), ((2, 2, 3), (3, 3, 2), "do not broadcast"), ((), (3,), "rank >= 1")],
)
def test_matmul__bad_shapes__shape_error_naming_node(sa: tuple[int, ...], sb: tuple[int, ...], match: str) -> None:
    with pytest.raises(ShapeError, match=rf"node 'n0' \(MatMul\): .*{match}") as e:
        canon("MatMul", [np.zeros(sa, I64), np.zeros(sb, I64)])
    assert str(e.value).endswith(".")


def test_matmul__extra_attribute__refused() -> None:
    with pytest.raises(UnsupportedOpError, match=r"node 'n0' \(MatMul\): has attributes \['foo'\]"):
        canon("MatMul", [np.zeros((1, 1), I64)] * 2, foo=1)


@pytest.mark.parametrize(
    ("op_type", "names", "match"),
    [
        ("MatMul", ["in0"], "expects 2 inputs, got 1"),
        ("MatMul", ["in0", "in1", "in0"], "expects 2 inputs, got 3"),
        ("Gemm", ["in0", ""], "expects 2 to 3 inputs with the first 2 present, got 2"),
        ("ConvInteger", ["in0", "in1", "in0", "in0", "in0"], "expects 2 to 4 inputs with the first 2 present, got 5"),
    ],
)
def test_arity__wrong_inputs__refused_naming_node(op_type: str, names: list[str], match: str) -> None:
    t = TensorType(DType.INT64, (2, 2))
    node = helper.make_node(op_type, names, ["y"], name="bad")
    ctx = CanonContext(node, 21, tuple(t if n else None for n in names), (None,) * len(names))
    with pytest.raises(UnsupportedOpError, match=rf"node 'bad' \({op_type}\): {match}; fix the node's inputs\."):
        REGISTRY[op_type].canonicalize(ctx)


def test_matmul__canonical_form() -> None:
    c = canon("MatMul", [np.zeros((1, 1), I64)] * 2)
    assert c == Canonical((0, 1), ())


# ---------------------------------------------------------------------------------------------
# Gemm


@pytest.mark.parametrize("trans", list(itertools.product((0, 1), repeat=2)))
@pytest.mark.parametrize("c_shape", [None, (), (1,), (4,), (3, 1), (1, 4), (3, 4)])
@pytest.mark.parametrize("dtype", [I32, I64])
def test_gemm__trans_and_c_broadcast__match_oracle(
    trans: tuple[int, int], c_shape: tuple[int, ...] | None, dtype: type[np.generic]
) -> None:
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype)
    m, k, n = 3, 5, 4
    ta, tb = trans
    a = rng.integers(info.min, info.max, size=(k, m) if ta else (m, k), dtype=dtype, endpoint=True)
    b = rng.integers(info.min, info.max, size=(n, k) if tb else (k, n), dtype=dtype, endpoint=True)
    c = None if c_shape is None else rng.integers(info.min, info.max, size=c_shape, dtype=dtype, endpoint=True)
    c_in = [] if c is None else [c]
    y = run("Gemm", [a, b, *c_in], transA=ta, transB=tb)
    eq(y, oracle_gemm(a, b, c, ta, tb, info.bits), dtype)


@pytest.mark.parametrize(("m", "k", "n"), [(0, 3, 2), (3, 0, 2), (3, 2, 0)])
def test_gemm__zero_size_dims(m: int, k: int, n: int) -> None:
    a = np.ones((m, k), I64)
    b = np.ones((k, n), I64)
    c = np.full((n,), 7, I64)
    eq(run("Gemm", [a, b, c]), oracle_gemm(a, b, c, 0, 0, 64), I64)


def test_gemm__c_overflow__wraps() -> None:
    a, b = np.array([[1]], I32), np.array([[1]], I32)
    y = run("Gemm", [a, b, np.array(MAX32, I32)])
    assert int(y[0, 0]) == MIN32


def test_gemm__canonical_attrs_are_trans_flags() -> None:
    a = np.zeros((2, 3), I64)
    c = canon("Gemm", [a, a, np.zeros((3,), I64)], transA=1, transB=0, alpha=1.0, beta=1.0)
    assert c == Canonical((0, 1, 2), (1, 0))
    assert canon("Gemm", [a, a.T.copy()]) == Canonical((0, 1, None), (0, 0))


def test_gemm__beta_zero__drops_c() -> None:
    a = np.ones((2, 2), I64)
    assert canon("Gemm", [a, a, a], beta=0.0).inputs == (0, 1, None)


def test_gemm__beta_without_c__ignored() -> None:
    a = np.ones((2, 2), I64)
    assert canon("Gemm", [a, a], beta=3.0).inputs == (0, 1, None)


@pytest.mark.parametrize(("attr", "value"), [("alpha", 0.5), ("alpha", 2.0), ("beta", 0.5), ("beta", -1.0)])
def test_gemm__scale_not_one__refused_naming_node(attr: str, value: float) -> None:
    a = np.ones((2, 2), I64)
    with pytest.raises(UnsupportedOpError, match=rf"node 'n0' \(Gemm\): {attr}={value} is not 1.0.*fold") as e:
        canon("Gemm", [a, a, a], **{attr: value})
    assert str(e.value).endswith(".")


def test_gemm__mixed_or_int8_dtypes__refused() -> None:
    a = np.ones((2, 2), I64)
    with pytest.raises(UnsupportedOpError, match=r"node 'n0' \(Gemm\).*int32 or int64"):
        canon("Gemm", [a, a, np.ones((2,), I32)])
    with pytest.raises(UnsupportedOpError, match=r"node 'n0' \(Gemm\).*int32 or int64"):
        canon("Gemm", [np.ones((2, 2), np.int8)] * 2)


@pytest.mark.parametrize(
    ("sa", "sb", "sc", "match"),
    [
        ((2, 3), (2, 4), None, "inner dims differ"),
        ((2, 3, 1), (3, 4), None, "must be 2-D"),
        ((2, 3), (3, 4), (2, 1, 4), "does not broadcast"),
        ((2, 3), (3, 4), (3,), "does not broadcast"),
    ],
)
def test_gemm__bad_shapes__shape_error(
    sa: tuple[int, ...], sb: tuple[int, ...], sc: tuple[int, ...] | None, match: str
) -> None:
    ins = [np.zeros(sa, I64), np.zeros(sb, I64)] + ([] if sc is None else [np.zeros(sc, I64)])
    with pytest.raises(ShapeError, match=rf"node 'n0' \(Gemm\): .*{match}"):
        canon("Gemm", ins)


def test_gemm__opset6_broadcast_zero__needs_full_c() -> None:
    a = np.ones((2, 2), I64)
    ctx = make_ctx("Gemm", [a, a, np.ones((2,), I64)], opset=6, broadcast=0)
    with pytest.raises(ShapeError, match="broadcast=0 needs C of shape"):
        REGISTRY["Gemm"].canonicalize(ctx)
    assert REGISTRY["Gemm"].canonicalize(make_ctx("Gemm", [a, a, a], opset=6, broadcast=0)).inputs == (0, 1, 2)


# ---------------------------------------------------------------------------------------------
# MatMulInteger


ZPS = [None, np.array(0, np.int8), np.array(-128, np.int8), np.array(127, np.int8), np.array([5], np.int8)]


@pytest.mark.parametrize(("za", "zb"), list(itertools.product(range(len(ZPS)), repeat=2)))
@pytest.mark.parametrize(("sa", "sb"), [((3, 4), (4, 2)), ((4,), (2, 4, 3)), ((2, 1, 2, 3), (3,)), ((0, 2), (2, 3))])
def test_matmul_integer__zero_points__match_oracle(za: int, zb: int, sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    rng = np.random.default_rng(za * 10 + zb)
    a = rng.integers(-128, 127, size=sa, dtype=np.int8, endpoint=True)
    b = rng.integers(-128, 127, size=sb, dtype=np.int8, endpoint=True)
    zpa, zpb = ZPS[za], ZPS[zb]
    ins: list[np.ndarray | None] = [a, b, zpa, zpb]
    expect = oracle_matmul(
        a, b, 32, 0 if zpa is None else int(zpa.reshape(-1)[0]), 0 if zpb is None else int(zpb.reshape(-1)[0])
    )
    eq(run("MatMulInteger", ins), expect, I32)


def test_matmul_integer__int32_overflow__wraps() -> None:
    k = 40_000  # 40_000 * 255^2 > 2^31
    a = np.full((1, k), -128, np.int8)
    z = np.array(127, np.int8)
    y = run("MatMulInteger", [a, a.T.copy(), z, z])
    assert int(y[0, 0]) == wrap_int(k * 255 * 255, 32) and y.dtype == I32


def test_matmul_integer__agrees_with_onnx_reference_where_no_overflow() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 127, size=(2, 3, 5), dtype=np.int8, endpoint=True)
    b = rng.integers(-128, 127, size=(5, 4), dtype=np.int8, endpoint=True)
    za, zb = np.array(-3, np.int8), np.array(9, np.int8)
    eq(run("MatMulInteger", [a, b, za, zb]), onnx_reference("MatMulInteger", [a, b, za, zb]), I32)


def test_matmul_integer__canonical_form_keeps_optional_slots() -> None:
    a = np.zeros((2, 2), np.int8)
    assert canon("MatMulInteger", [a, a]) == Canonical((0, 1, None, None), ())
    assert canon("MatMulInteger", [a, a, None, np.array(1, np.int8)]) == Canonical((0, 1, None, 3), ())


def test_matmul_integer__per_row_zero_point__refused_naming_node() -> None:
    a = np.zeros((3, 2), np.int8)
    with pytest.raises(
        UnsupportedOpError,
        match=r"node 'n0' \(MatMulInteger\): zero point 'in2' has shape \(3,\); "
        r"per-row.*per-tensor",
    ) as e:
        canon("MatMulInteger", [a, a.T.copy(), np.zeros((3,), np.int8)])
    assert str(e.value).endswith(".")
    with pytest.raises(UnsupportedOpError, match="per-row"):
        canon("MatMulInteger", [a, a.T.copy(), None, np.zeros((2,), np.int8)])


@pytest.mark.parametrize(
    ("a", "zp"),
    [
        (np.zeros((2, 2), I32), None),
        (np.zeros((2, 2), np.bool_), None),
        (np.zeros((2, 2), np.int8), np.array(0, I32)),
    ],
)
def test_matmul_integer__dtypes__refused(a: np.ndarray, zp: np.ndarray | None) -> None:
    with pytest.raises(UnsupportedOpError, match=r"node 'n0' \(MatMulInteger\)"):
        canon("MatMulInteger", [a, a, zp])


# ---------------------------------------------------------------------------------------------
# ConvInteger

CONV_CASES = [
    # (x shape, w shape, group, pads (begin..., end...), strides, dilations)
    ((1, 1, 7), (1, 1, 3), 1, (0, 0), (1,), (1,)),
    ((2, 4, 9), (6, 2, 3), 2, (1, 2), (2,), (2,)),
    ((1, 3, 5, 6), (4, 3, 3, 2), 1, (1, 0, 1, 1), (1, 2), (1, 1)),
    ((2, 4, 6, 5), (4, 1, 3, 3), 4, (2, 2, 2, 2), (2, 1), (2, 2)),
    ((1, 2, 4, 3, 5), (2, 2, 2, 1, 3), 1, (1, 0, 0, 0, 1, 1), (1, 1, 2), (1, 2, 1)),
    ((1, 1, 2), (1, 1, 3), 1, (1, 0), (1,), (1,)),
    ((1, 2, 3, 3), (2, 2, 3, 3), 1, (3, 3, 3, 3), (3, 3), (1, 1)),
]


@pytest.mark.parametrize(("xs", "ws", "group", "pads", "strides", "dilations"), CONV_CASES)
@pytest.mark.parametrize(("zx", "zw"), [(None, None), (-128, 127), (3, None), (None, -7)])
def test_conv_integer__explicit_pads__match_naive_oracle(
    xs: tuple[int, ...],
    ws: tuple[int, ...],
    group: int,
    pads: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
    zx: int | None,
    zw: int | None,
) -> None:
    rng = np.random.default_rng(len(xs) * 100 + group)
    x = rng.integers(-128, 127, size=xs, dtype=np.int8, endpoint=True)
    w = rng.integers(-128, 127, size=ws, dtype=np.int8, endpoint=True)
    zpx = None if zx is None else np.array(zx, np.int8)
    zpw = None if zw is None else np.array([zw], np.int8)
    n = len(xs) - 2
    y = run(
        "ConvInteger", [x, w, zpx, zpw], group=group, pads=list(pads), strides=list(strides), dilations=list(dilations)
    )
    expect = oracle_conv(x, w, zx or 0, zw or 0, group, pads[:n], pads[n:], strides, dilations)
    eq(y, expect, I32)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"])
@pytest.mark.parametrize(
    ("xs", "ws", "strides", "dilations"),
    [
        ((1, 2, 6), (3, 2, 3), (2,), (1,)),
        ((1, 1, 5, 7), (2, 1, 2, 3), (2, 3), (1, 2)),
        ((2, 1, 6, 4), (1, 1, 3, 2), (1, 1), (2, 1)),
    ],
)
def test_conv_integer__auto_pad__matches_oracle_and_onnx_reference(
    auto_pad: str, xs: tuple[int, ...], ws: tuple[int, ...], strides: tuple[int, ...], dilations: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 127, size=xs, dtype=np.int8, endpoint=True)
    w = rng.integers(-128, 127, size=ws, dtype=np.int8, endpoint=True)
    zx, zw = np.array(-5, np.int8), np.array(17, np.int8)
    attrs = {"auto_pad": auto_pad, "strides": list(strides), "dilations": list(dilations)}
    y = run("ConvInteger", [x, w, zx, zw], **attrs)
    n = len(xs) - 2
    if auto_pad.startswith("SAME"):
        pb, pe = same_pads(xs[2:], ws[2:], strides, dilations, lower=auto_pad == "SAME_LOWER")
        assert y.shape[2:] == tuple(-(-d // s) for d, s in zip(xs[2:], strides, strict=True))
    else:
        pb, pe = [0] * n, [0] * n
    eq(y, oracle_conv(x, w, -5, 17, 1, pb, pe, strides, dilations), I32)
    eq(y, onnx_reference("ConvInteger", [x, w, zx, zw], **attrs), I32)


def test_conv_integer__canonical_attrs_layout() -> None:
    x = np.zeros((1, 2, 6), np.int8)
    w = np.zeros((3, 2, 3), np.int8)
    # D=6, k=3, s=2: output 3, total pad 1; UPPER puts it at the end, LOWER at the beginning.
    upper = canon("ConvInteger", [x, w], auto_pad="SAME_UPPER", strides=[2])
    assert upper == Canonical((0, 1, None, None), (1, 1, 3, 0, 1, 2, 1))
    assert canon("ConvInteger", [x, w], auto_pad="SAME_LOWER", strides=[2]).attrs == (1, 1, 3, 1, 0, 2, 1)
    x2 = np.zeros((1, 4, 7, 8), np.int8)
    w2 = np.zeros((6, 2, 3, 2), np.int8)
    c = canon(
        "ConvInteger",
        [x2, w2, np.array(0, np.int8)],
        group=2,
        pads=[1, 2, 3, 4],
        strides=[2, 1],
        dilations=[1, 3],
        kernel_shape=[3, 2],
    )
    assert c == Canonical((0, 1, 2, None), (2, 2, 3, 2, 1, 2, 3, 4, 2, 1, 1, 3))
    t = REGISTRY["ConvInteger"].infer([type_of(x2), type_of(w2)], c.attrs)
    assert t == TensorType(DType.INT32, (1, 6, 5, 11))


def test_conv_integer__zero_size_batch_and_channels() -> None:
    for xs, ws in (((0, 2, 5), (3, 2, 2)), ((1, 2, 5), (0, 2, 2)), ((1, 0, 5), (2, 0, 2))):
        x, w = np.ones(xs, np.int8), np.ones(ws, np.int8)
        eq(run("ConvInteger", [x, w]), oracle_conv(x, w, 0, 0, 1, [0], [0], [1], [1]), I32)


def test_conv_integer__int32_overflow__wraps() -> None:
    # One output element summing 40_000 terms of (-128 - 127) * (-128 - 127).
    x = np.full((1, 40_000, 1), -128, np.int8)
    w = np.full((1, 40_000, 1), -128, np.int8)
    z = np.array(127, np.int8)
    y = run("ConvInteger", [x, w, z, z])
    assert y.shape == (1, 1, 1) and int(y[0, 0, 0]) == wrap_int(40_000 * 255 * 255, 32)


def test_conv_integer__per_channel_w_zero_point__refused_naming_node() -> None:
    x, w = np.zeros((1, 2, 5), np.int8), np.zeros((3, 2, 2), np.int8)
    with pytest.raises(
        UnsupportedOpError,
        match=r"node 'n0' \(ConvInteger\): zero point 'in3' has shape \(3,\); "
        r".*per-channel.*per-tensor",
    ) as e:
        canon("ConvInteger", [x, w, None, np.zeros((3,), np.int8)])
    assert str(e.value).endswith(".")


@pytest.mark.parametrize(
    ("xs", "ws", "attrs", "err", "match"),
    [
        ((1, 2, 5), (3, 2, 2), {"pads": [1, 1], "auto_pad": "SAME_UPPER"}, UnsupportedOpError, "both set"),
        ((1, 2, 5), (3, 2, 2), {"auto_pad": "FULL"}, UnsupportedOpError, "auto_pad='FULL'"),
        ((1, 2, 5), (3, 2, 2), {"strides": [0]}, UnsupportedOpError, r"strides=\[0\]"),
        ((1, 2, 5), (3, 2, 2), {"pads": [-1, 0]}, UnsupportedOpError, r"pads=\[-1, 0\]"),
        ((1, 2, 5), (3, 2, 2), {"kernel_shape": [3]}, ShapeError, "kernel_shape"),
        ((1, 2, 5), (3, 2, 2), {"group": 2}, ShapeError, "group=2"),
        ((1, 4, 5), (3, 2, 2), {"group": 2}, ShapeError, "group=2"),
        ((1, 2, 2), (3, 2, 4), {}, ShapeError, "smaller than the dilated kernel"),
        ((1, 2, 5), (3, 2, 3), {"dilations": [3]}, ShapeError, "smaller than the dilated kernel"),
        ((2, 5), (3, 2), {}, ShapeError, "rank >= 3"),
        ((1, 2, 5), (3, 2, 2, 1), {}, ShapeError, "rank >= 3"),
    ],
)
def test_conv_integer__bad_attrs_or_shapes__refused(
    xs: tuple[int, ...], ws: tuple[int, ...], attrs: dict[str, object], err: type[Exception], match: str
) -> None:
    with pytest.raises(err, match=rf"node 'n0' \(ConvInteger\): .*{match}") as e:
        canon("ConvInteger", [np.zeros(xs, np.int8), np.zeros(ws, np.int8)], **attrs)
    assert "\n" not in str(e.value) and str(e.value).endswith(".")


def test_conv_integer__non_int8__refused() -> None:
    with pytest.raises(UnsupportedOpError, match=r"node 'n0' \(ConvInteger\): takes int8"):
        canon("ConvInteger", [np.zeros((1, 1, 3), I32), np.zeros((1, 1, 1), I32)])


def test_conv_integer__malformed_canonical_attrs__shape_error() -> None:
    t = TensorType(DType.INT8, (1, 1, 3))
    with pytest.raises(ShapeError, match="canonical attrs"):
        REGISTRY["ConvInteger"].infer([t, t], (1, 1, 3))


@st.composite
def conv_operands(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, int, dict[str, object]]:
    n = draw(st.integers(1, 2))
    group = draw(st.integers(1, 2))
    cg, mg, nb = draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(0, 2))
    kernel = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    strides = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    dil = draw(st.lists(st.integers(1, 2), min_size=n, max_size=n))
    pads = draw(st.lists(st.integers(0, 2), min_size=2 * n, max_size=2 * n))
    spatial = [
        draw(st.integers(max(0, (k - 1) * d + 1 - pads[i] - pads[n + i]), 6))
        for i, (k, d) in enumerate(zip(kernel, dil, strict=True))
    ]
    x = draw(hnp.arrays(np.int8, (nb, cg * group, *spatial)))
    w = draw(hnp.arrays(np.int8, (mg * group, cg, *kernel)))
    zx, zw = draw(st.integers(-128, 127)), draw(st.integers(-128, 127))
    return x, w, zx, zw, {"group": group, "pads": pads, "strides": strides, "dilations": dil}


@settings(max_examples=300, deadline=None)
@given(conv_operands())
def test_conv_integer__random__matches_naive_oracle(
    case: tuple[np.ndarray, np.ndarray, int, int, dict[str, object]],
) -> None:
    x, w, zx, zw, attrs = case
    n = x.ndim - 2
    y = run("ConvInteger", [x, w, np.array(zx, np.int8), np.array(zw, np.int8)], **attrs)
    pads = attrs["pads"]
    assert isinstance(pads, list)
    expect = oracle_conv(x, w, zx, zw, attrs["group"], pads[:n], pads[n:], attrs["strides"], attrs["dilations"])  # type: ignore[arg-type]
    eq(y, expect, I32)


@pytest.mark.parametrize(("xs", "ws", "group", "pads", "strides", "dilations"), CONV_CASES)
@pytest.mark.parametrize("im2col_bytes", [0, 32 << 20], ids=["per-tap", "im2col"])
@pytest.mark.parametrize("acc_dtype", [np.int64, np.float64])
def test_conv_accumulate__per_tap_and_im2col__match_naive_oracle(
    monkeypatch: pytest.MonkeyPatch,
    xs: tuple[int, ...],
    ws: tuple[int, ...],
    group: int,
    pads: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
    im2col_bytes: int,
    acc_dtype: type[np.generic],
) -> None:
    """Both ways conv_accumulate sums (one matmul per kernel tap, or one im2col matmul) give the
    exact integer result, at the extreme values and zero points that overflow int8."""
    from verifier.engine.ops import linalg

    monkeypatch.setattr(linalg, "IM2COL_BYTES", im2col_bytes)
    rng = np.random.default_rng(len(xs) * 7 + group)
    x = rng.integers(-128, 127, size=xs, dtype=np.int8, endpoint=True)
    x.flat[0] = -128
    w = rng.integers(-128, 127, size=ws, dtype=np.int8, endpoint=True)
    n = len(xs) - 2
    attrs = (n, group, *ws[2:], *pads, *strides, *dilations)
    acc = linalg.conv_accumulate(x, w, 127, -128, attrs, acc_dtype)
    expect = oracle_conv(x, w, 127, -128, group, pads[:n], pads[n:], strides, dilations)
    assert acc.dtype == acc_dtype
    assert np.array_equal(acc.reshape(expect.shape).astype(np.int64), expect.astype(np.int64))
