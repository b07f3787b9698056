"""Reductions against Python-int oracles: wrapped sums, empty sets, axes forms, ArgMax/ArgMin ties."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import helper

from verifier.core.dtypes import DType, TensorType, type_of
from verifier.core.errors import ShapeError, UnsupportedOpError
from verifier.engine.ops import BY_CODE, REGISTRY, CanonContext, Canonical

FAST = settings(max_examples=80, deadline=None)
INTS = [DType.INT8, DType.INT32, DType.INT64]


def node(op_type: str, inputs: list[str], name: str = "n", **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op_type, inputs, ["y"], name=name, **attrs)


def context(nd: onnx.NodeProto, values: list[np.ndarray | None], opset: int, consts: tuple[int, ...] = ()) -> CanonContext:
    return CanonContext(
        node=nd,
        opset=opset,
        in_types=tuple(None if v is None else type_of(v) for v in values),
        const_values=tuple(v if i in consts else None for i, v in enumerate(values)),
    )


def canon_run(nd: onnx.NodeProto, values: list[np.ndarray | None], opset: int, consts: tuple[int, ...] = ()) -> tuple[Canonical, np.ndarray]:
    op = REGISTRY[nd.op_type]
    c = op.canonicalize(context(nd, values, opset, consts))
    t = op.infer([None if i is None else type_of(values[i]) for i in c.inputs], c.attrs)
    y = op.run([None if i is None else values[i] for i in c.inputs], c.attrs)
    assert isinstance(y, np.ndarray) and type_of(y) == t
    return c, y


def wrap_int(v: int, d: DType) -> int:
    bits = 8 * d.width
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def elems(d: DType) -> st.SearchStrategy[int | bool]:
    if d is DType.BOOL:
        return st.booleans()
    return st.one_of(st.sampled_from([d.min, d.min + 1, -1, 0, 1, d.max - 1, d.max]), st.integers(d.min, d.max))


def reduce_oracle(x: np.ndarray, axes: list[int], keepdims: bool, fold: Callable[[list[int]], int], dtype: DType) -> np.ndarray:
    """Group input elements by their index on the kept axes and fold each group with Python ints."""
    kept = [k for k in range(x.ndim) if k not in axes]
    out_shape = tuple(1 if (k in axes and keepdims) else d for k, d in enumerate(x.shape) if keepdims or k not in axes)
    groups: dict[tuple[int, ...], list[int]] = {o: [] for o in itertools.product(*(range(x.shape[k]) for k in kept))}
    for i in itertools.product(*(range(d) for d in x.shape)):
        groups[tuple(i[k] for k in kept)].append(int(x[i]))
    out = np.array([fold(groups[g]) for g in itertools.product(*(range(x.shape[k]) for k in kept))], dtype.np)
    return out.reshape(out_shape)


FOLDS: dict[str, Callable[[list[int], DType], int]] = {
    "ReduceSum": lambda v, d: wrap_int(sum(v), d),
    "ReduceMax": lambda v, d: max(v, default=d.min),
    "ReduceMin": lambda v, d: min(v, default=d.max),
}
# First opset where axes is an input (older ones take an attribute).
AXES_INPUT = {"ReduceSum": 13, "ReduceMax": 18, "ReduceMin": 18}


def test_registry_codes() -> None:
    for name, code in {"ReduceSum": 34, "ReduceMax": 35, "ReduceMin": 36, "ArgMax": 37, "ArgMin": 38}.items():
        assert REGISTRY[name].code == code and BY_CODE[code] is REGISTRY[name]


@pytest.mark.parametrize("opname", list(FOLDS))
@given(data=st.data())
@FAST
def test_reduce_matches_oracle(opname: str, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(INTS + ([DType.BOOL] if opname != "ReduceSum" else [])))
    x = data.draw(hnp.arrays(dtype.np, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), elements=elems(dtype)))
    axes = data.draw(st.lists(st.integers(0, max(x.ndim - 1, 0)), unique=True, max_size=x.ndim)) if x.ndim else []
    spelled = [a - x.ndim if data.draw(st.booleans()) else a for a in axes]
    keepdims = data.draw(st.sampled_from([0, 1]))
    attr_form = data.draw(st.booleans())
    if attr_form:  # axes attribute (opset 11/13)
        kw: dict[str, object] = {"keepdims": keepdims}
        if spelled:
            kw["axes"] = spelled
        c, y = canon_run(node(opname, ["x"], **kw), [x], opset=AXES_INPUT[opname] - 1)
    else:
        c, y = canon_run(node(opname, ["x", "a"], keepdims=keepdims), [x, np.array(spelled, np.int64)], opset=20, consts=(1,))
    reduced = axes or list(range(x.ndim))  # empty axes reduce everything (noop_with_empty_axes = 0)
    assert c.attrs[1:] == (len(reduced), *sorted(reduced))
    fold = FOLDS[opname]
    want = reduce_oracle(x, reduced, bool(keepdims), lambda v: fold(v, dtype), dtype)
    np.testing.assert_array_equal(y, want)


def test_reduce_empty_sets_and_bool() -> None:
    x = np.zeros((2, 0, 4), np.bool_)
    axes = np.array([1], np.int64)
    # onnx test_reduce_max_empty_set_bool: all False; ReduceMin's empty set is True.
    _, y = canon_run(node("ReduceMax", ["x", "a"], keepdims=1), [x, axes], opset=20, consts=(1,))
    assert y.shape == (2, 1, 4) and not y.any()
    _, y = canon_run(node("ReduceMin", ["x", "a"], keepdims=1), [x, axes], opset=20, consts=(1,))
    assert y.shape == (2, 1, 4) and y.all()
    xi = np.zeros((2, 0, 4), np.int8)
    _, y = canon_run(node("ReduceMax", ["x", "a"], keepdims=0), [xi, axes], opset=18, consts=(1,))
    assert y.shape == (2, 4) and (y == -128).all()
    _, y = canon_run(node("ReduceMin", ["x", "a"], keepdims=0), [xi, axes], opset=18, consts=(1,))
    assert (y == 127).all()
    _, y = canon_run(node("ReduceSum", ["x", "a"], keepdims=0), [xi.astype(np.int32), axes], opset=13, consts=(1,))
    assert y.shape == (2, 4) and (y == 0).all()


def test_reduce_sum_wraps() -> None:
    x = np.full((3,), 2**62, np.int64)
    _, y = canon_run(node("ReduceSum", ["x"], keepdims=0), [x], opset=11)
    assert y.shape == () and int(y) == wrap_int(3 * 2**62, DType.INT64)
    x8 = np.array([[100, 100], [-128, -1]], np.int8)
    _, y = canon_run(node("ReduceSum", ["x", "a"], keepdims=1), [x8, np.array([1], np.int64)], opset=13, consts=(1,))
    assert y.tolist() == [[-56], [127]]


def test_reduce_noop_and_axes_forms() -> None:
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    # Empty axes + noop_with_empty_axes=1: canonical "no reduction", output = input.
    c, y = canon_run(node("ReduceSum", ["x", "a"], keepdims=0, noop_with_empty_axes=1), [x, np.array([], np.int64)], opset=13, consts=(1,))
    assert c == Canonical((0,), (1, 0))
    np.testing.assert_array_equal(y, x)
    c, y = canon_run(node("ReduceMax", ["x"], noop_with_empty_axes=1), [x], opset=18)
    assert c == Canonical((0,), (1, 0))
    # Absent axes, noop=0: all axes.
    c, y = canon_run(node("ReduceSum", ["x"], keepdims=0), [x], opset=13)
    assert c == Canonical((0,), (0, 2, 0, 1)) and int(y) == 15
    # Attribute form, negative axis; rank-0 input reduces to itself.
    c, y = canon_run(node("ReduceMin", ["x"], axes=[-1]), [x], opset=13)
    assert c == Canonical((0,), (1, 1, 1)) and y.tolist() == [[0], [3]]
    c, y = canon_run(node("ReduceSum", ["x"]), [np.array(7, np.int8)], opset=13)
    assert c == Canonical((0,), (1, 0)) and y.shape == () and int(y) == 7


def test_reduce_refusals() -> None:
    x = np.zeros((2, 3), np.int32)
    op = REGISTRY["ReduceSum"]
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(ReduceSum\).*constant"):
        op.canonicalize(context(node("ReduceSum", ["x", "a"]), [x, np.array([0], np.int64)], 13))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(ReduceSum\).*axes"):
        op.canonicalize(context(node("ReduceSum", ["x"], axes=[0]), [x], 13))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(ReduceSum\).*bool"):
        op.canonicalize(context(node("ReduceSum", ["x"]), [x.astype(bool)], 13))
    with pytest.raises(ShapeError, match=r"node 'n' \(ReduceMax\).*axis 2"):
        REGISTRY["ReduceMax"].canonicalize(context(node("ReduceMax", ["x"], axes=[2]), [x], 13))
    with pytest.raises(ShapeError, match=r"node 'n' \(ReduceMax\).*twice"):
        REGISTRY["ReduceMax"].canonicalize(context(node("ReduceMax", ["x", "a"]), [x, np.array([1, -1], np.int64)], 18, (1,)))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(ReduceMin\).*keepdims"):
        REGISTRY["ReduceMin"].canonicalize(context(node("ReduceMin", ["x"], keepdims=2), [x], 13))
    with pytest.raises(ShapeError):
        op.infer([TensorType(DType.INT32, (2, 3))], (1, 2, 1, 0))


# ----------------------------------------------------------------------------- ArgMax / ArgMin


def arg_oracle(x: np.ndarray, axis: int, keepdims: bool, last: bool, better: Callable[[int, int], bool]) -> np.ndarray:
    out_shape = tuple(d for k, d in enumerate(x.shape) if k != axis)
    out = np.zeros(out_shape, np.int64)
    for o in itertools.product(*(range(d) for d in out_shape)):
        best = 0
        for j in range(1, x.shape[axis]):
            v, b = int(x[(*o[:axis], j, *o[axis:])]), int(x[(*o[:axis], best, *o[axis:])])
            if better(v, b) or (last and v == b):
                best = j
        out[o] = best
    return np.expand_dims(out, axis) if keepdims else out


@pytest.mark.parametrize("opname", ["ArgMax", "ArgMin"])
@given(data=st.data())
@FAST
def test_arg_ties(opname: str, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(INTS))
    small = st.one_of(st.integers(-2, 2), st.sampled_from([dtype.min, dtype.max]))  # many ties
    x = data.draw(hnp.arrays(dtype.np, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), elements=small))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    keepdims = data.draw(st.sampled_from([0, 1]))
    last = data.draw(st.sampled_from([0, 1]))
    c, y = canon_run(node(opname, ["x"], axis=axis, keepdims=keepdims, select_last_index=last), [x], opset=13)
    assert c == Canonical((0,), (axis % x.ndim, keepdims, last))
    better = (lambda v, b: v > b) if opname == "ArgMax" else (lambda v, b: v < b)
    np.testing.assert_array_equal(y, arg_oracle(x, axis % x.ndim, bool(keepdims), bool(last), better))


def test_arg_defaults_and_refusals() -> None:
    x = np.array([[1, 3, 3], [2, 2, 0]], np.int8)
    c, y = canon_run(node("ArgMax", ["x"]), [x], opset=11)
    assert c == Canonical((0,), (0, 1, 0)) and y.tolist() == [[1, 0, 0]]
    c, y = canon_run(node("ArgMax", ["x"], axis=1, keepdims=0, select_last_index=1), [x], opset=12)
    assert y.tolist() == [2, 1]
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(ArgMax\).*select_last_index"):
        REGISTRY["ArgMax"].canonicalize(context(node("ArgMax", ["x"], select_last_index=1), [x], 11))
    with pytest.raises(ShapeError, match=r"node 'n' \(ArgMin\).*size 0"):
        REGISTRY["ArgMin"].canonicalize(context(node("ArgMin", ["x"], axis=1), [np.zeros((2, 0), np.int32)], 13))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(ArgMin\).*bool"):
        REGISTRY["ArgMin"].canonicalize(context(node("ArgMin", ["x"]), [np.zeros(2, np.bool_)], 13))
    with pytest.raises(ShapeError, match=r"node 'n' \(ArgMin\).*rank 0"):
        REGISTRY["ArgMin"].canonicalize(context(node("ArgMin", ["x"]), [np.array(1, np.int32)], 13))
