"""Shape ops (Reshape family, Transpose, Concat, Slice, Gather, Expand) against numpy / Python oracles."""

from __future__ import annotations

import itertools
import math

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
I64_MAX, I64_MIN = 2**63 - 1, -(2**63)


def node(op_type: str, inputs: list[str], name: str = "n", **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op_type, inputs, ["y"], name=name, **attrs)


def context(nd: onnx.NodeProto, values: list[np.ndarray | None], opset: int, consts: tuple[int, ...] = ()) -> CanonContext:
    return CanonContext(
        node=nd,
        opset=opset,
        in_types=tuple(None if v is None else type_of(v) for v in values),
        const_values=tuple(v if i in consts else None for i, v in enumerate(values)),
    )


def canon_run(nd: onnx.NodeProto, values: list[np.ndarray | None], opset: int = 17, consts: tuple[int, ...] = ()) -> tuple[Canonical, np.ndarray]:
    op = REGISTRY[nd.op_type]
    c = op.canonicalize(context(nd, values, opset, consts))
    t = op.infer([None if i is None else type_of(values[i]) for i in c.inputs], c.attrs)
    y = op.run([None if i is None else values[i] for i in c.inputs], c.attrs)
    assert type_of(y) == t
    return c, y


def i64(v: list[int] | int) -> np.ndarray:
    return np.array(v, np.int64)


def distinct(shape: tuple[int, ...], dtype: type = np.int32) -> np.ndarray:
    """Each element equals its flat index + 1, so any misplaced element shows."""
    return (np.arange(math.prod(shape), dtype=np.int64) + 1).astype(dtype).reshape(shape)


shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)


def test_registry_codes() -> None:
    for name, code in {"Reshape": 25, "Flatten": 25, "Squeeze": 25, "Unsqueeze": 25, "Transpose": 26,
                       "Concat": 27, "Slice": 31, "Gather": 32, "Expand": 33}.items():  # fmt: skip
        assert REGISTRY[name].code == code
    assert BY_CODE[25] is REGISTRY["Flatten"] is REGISTRY["Squeeze"] is REGISTRY["Unsqueeze"]


# ----------------------------------------------------------------------------- Reshape family


@pytest.mark.parametrize(
    ("in_shape", "spec", "allowzero", "out"),
    [
        ((2, 3, 4), [4, -1], 0, (4, 6)),
        ((2, 3, 4), [0, -1], 0, (2, 12)),
        ((2, 3, 4), [0, 0, 4, 1], 0, (2, 3, 4, 1)),
        ((2, 3, 4), [-1], 0, (24,)),
        ((0, 3), [3, 0], 1, (3, 0)),
        ((0, 3), [-1, 3], 0, (0, 3)),
        ((), [1, 1], 0, (1, 1)),
        ((1,), [], 0, ()),
    ],
)
def test_reshape_resolves_shape(in_shape: tuple[int, ...], spec: list[int], allowzero: int, out: tuple[int, ...]) -> None:
    x = distinct(in_shape)
    c, y = canon_run(node("Reshape", ["x", "s"], allowzero=allowzero), [x, i64(spec)], opset=14, consts=(1,))
    assert c == Canonical((0,), (len(out), *out))
    np.testing.assert_array_equal(y, x.reshape(out))


@given(x=hnp.arrays(np.int8, shapes), data=st.data())
@FAST
def test_reshape_random_regrouping(x: np.ndarray, data: st.DataObject) -> None:
    # Target: merge runs of input dims, optionally writing one as -1.
    dims = list(x.shape)
    out: list[int] = []
    while dims:
        k = data.draw(st.integers(1, len(dims)))
        out.append(math.prod(dims[:k]))
        dims = dims[k:]
    spec = list(out)
    if out and math.prod(d for d in out if d) and all(out):
        spec[data.draw(st.integers(0, len(out) - 1))] = -1
    # allowzero=1: a merged dim of 0 means 0, not "copy the input dim".
    _, y = canon_run(node("Reshape", ["x", "s"], allowzero=1), [x, i64(spec)], opset=14, consts=(1,))
    np.testing.assert_array_equal(y, x.reshape(out))


@pytest.mark.parametrize(
    ("op_type", "attrs", "extra", "opset", "in_shape", "out"),
    [
        ("Flatten", {}, None, 13, (2, 3, 4), (2, 12)),
        ("Flatten", {"axis": 0}, None, 13, (2, 3, 4), (1, 24)),
        ("Flatten", {"axis": -1}, None, 13, (2, 3, 4), (6, 4)),
        ("Flatten", {"axis": 3}, None, 13, (2, 3, 4), (24, 1)),
        ("Squeeze", {}, None, 13, (1, 3, 1, 2), (3, 2)),
        ("Squeeze", {}, [-2], 13, (1, 3, 1, 2), (1, 3, 2)),
        ("Squeeze", {"axes": [0, 2]}, None, 11, (1, 3, 1, 2), (3, 2)),
        ("Unsqueeze", {}, [0, -1], 13, (3, 2), (1, 3, 2, 1)),
        ("Unsqueeze", {}, [3, 1], 21, (3, 2), (3, 1, 2, 1)),
        ("Unsqueeze", {"axes": [0]}, None, 11, (), (1,)),
    ],
)
def test_reshape_aliases(op_type: str, attrs: dict[str, object], extra: list[int] | None, opset: int,
                         in_shape: tuple[int, ...], out: tuple[int, ...]) -> None:  # fmt: skip
    x = distinct(in_shape)
    values: list[np.ndarray | None] = [x] if extra is None else [x, i64(extra)]
    names = ["x"] if extra is None else ["x", "axes"]
    c, y = canon_run(node(op_type, names, **attrs), values, opset=opset, consts=(1,))
    assert c == Canonical((0,), (len(out), *out))
    np.testing.assert_array_equal(y, x.reshape(out))


def test_reshape_refusals() -> None:
    x = distinct((2, 3))
    op = REGISTRY["Reshape"]
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Reshape\).*constant"):
        op.canonicalize(context(node("Reshape", ["x", "s"]), [x, i64([6])], 13, consts=()))
    with pytest.raises(ShapeError, match=r"node 'n' \(Reshape\).*element count"):
        op.canonicalize(context(node("Reshape", ["x", "s"]), [x, i64([4])], 13, consts=(1,)))
    with pytest.raises(ShapeError, match=r"node 'n' \(Reshape\).*more than one -1"):
        op.canonicalize(context(node("Reshape", ["x", "s"]), [x, i64([-1, -1])], 13, consts=(1,)))
    with pytest.raises(ShapeError, match=r"node 'n' \(Reshape\).*-1"):
        op.canonicalize(context(node("Reshape", ["x", "s"]), [x, i64([4, -1])], 13, consts=(1,)))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Reshape\).*allowzero"):
        op.canonicalize(context(node("Reshape", ["x", "s"], allowzero=1), [x, i64([6])], 13, consts=(1,)))
    with pytest.raises(ShapeError, match=r"node 'n' \(Squeeze\).*size 3"):
        op.canonicalize(context(node("Squeeze", ["x", "a"]), [x, i64([1])], 13, consts=(1,)))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Squeeze\).*empty"):
        op.canonicalize(context(node("Squeeze", ["x", "a"]), [x, i64([])], 13, consts=(1,)))
    with pytest.raises(ShapeError, match=r"node 'n' \(Unsqueeze\).*twice"):
        op.canonicalize(context(node("Unsqueeze", ["x", "a"]), [x, i64([0, -4])], 13, consts=(1,)))
    with pytest.raises(ShapeError, match=r"node 'n' \(Flatten\).*axis 3"):
        op.canonicalize(context(node("Flatten", ["x"], axis=3), [x], 13))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Unsqueeze\).*axes"):
        op.canonicalize(context(node("Unsqueeze", ["x"], axes=[0]), [x], 13))


# ----------------------------------------------------------------------------- Transpose / Concat / Expand


@given(x=hnp.arrays(np.int64, shapes), data=st.data())
@FAST
def test_transpose(x: np.ndarray, data: st.DataObject) -> None:
    perm = data.draw(st.permutations(range(x.ndim)))
    if perm:  # onnx.helper cannot write an empty ints attribute
        c, y = canon_run(node("Transpose", ["x"], perm=list(perm)), [x])
        assert c.attrs == tuple(perm)
        np.testing.assert_array_equal(y, np.transpose(x, perm))
    c, y = canon_run(node("Transpose", ["x"]), [x])
    assert c.attrs == tuple(reversed(range(x.ndim)))
    np.testing.assert_array_equal(y, x.T)


def test_transpose_refuses_bad_perm() -> None:
    with pytest.raises(ShapeError, match=r"node 'n' \(Transpose\).*permutation"):
        REGISTRY["Transpose"].canonicalize(context(node("Transpose", ["x"], perm=[0, 0]), [distinct((2, 2))], 13))


@given(data=st.data())
@FAST
def test_concat(data: st.DataObject) -> None:
    base = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=3))
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    n = data.draw(st.integers(1, 4))
    ins = []
    for _ in range(n):
        s = list(base)
        s[axis] = data.draw(st.integers(0, 3))
        ins.append(data.draw(hnp.arrays(np.bool_, tuple(s))))
    c, y = canon_run(node("Concat", [f"x{i}" for i in range(n)], axis=axis), list(ins))
    assert c == Canonical(tuple(range(n)), (axis % len(base),))
    np.testing.assert_array_equal(y, np.concatenate(ins, axis=axis))


def test_concat_refusals() -> None:
    a, b = distinct((2, 3)), distinct((3, 2))
    op = REGISTRY["Concat"]
    with pytest.raises(ShapeError, match=r"node 'n' \(Concat\).*differ"):
        op.canonicalize(context(node("Concat", ["a", "b"], axis=0), [a, b], 13))
    with pytest.raises(ShapeError, match=r"node 'n' \(Concat\).*differ"):
        op.canonicalize(context(node("Concat", ["a", "b"], axis=0), [a, distinct((2, 3, 1))], 13))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Concat\).*dtypes"):
        op.canonicalize(context(node("Concat", ["a", "b"], axis=0), [a, a.astype(np.int64)], 13))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Concat\).*'axis'"):
        op.canonicalize(context(node("Concat", ["a", "b"]), [a, a], 13))
    with pytest.raises(ShapeError, match=r"node 'n' \(Concat\).*axis"):
        op.canonicalize(context(node("Concat", ["a"], axis=0), [np.array(1, np.int32)], 13))


@given(s=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=3))
@FAST
def test_expand(s: hnp.BroadcastableShapes) -> None:
    in_shape, target = s.input_shapes
    x = distinct(in_shape, np.int8)
    c, y = canon_run(node("Expand", ["x", "s"]), [x, i64(list(target))], consts=(1,))
    assert c.attrs == (len(s.result_shape), *s.result_shape)
    np.testing.assert_array_equal(y, x * np.ones(target, np.int8))  # ONNX's own definition


def test_expand_refusals() -> None:
    op = REGISTRY["Expand"]
    x = distinct((2, 3))
    with pytest.raises(ShapeError, match=r"node 'n' \(Expand\).*broadcast"):
        op.canonicalize(context(node("Expand", ["x", "s"]), [x, i64([4, 3, 2])], 13, consts=(1,)))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Expand\).*constant"):
        op.canonicalize(context(node("Expand", ["x", "s"]), [x, i64([2, 3])], 13))
    with pytest.raises(ShapeError):
        op.infer([TensorType(DType.INT32, (2, 3))], (2, 2, 1))


# ----------------------------------------------------------------------------- Slice

bound = st.one_of(st.integers(-12, 12), st.sampled_from([I64_MAX, I64_MIN, I64_MIN + 1, 2**31 - 1, -(2**31)]))
step = st.one_of(st.integers(-5, 5).filter(bool), st.sampled_from([I64_MAX, I64_MIN, -(2**31), 2**31 - 1]))


@given(x=hnp.arrays(np.int32, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)), data=st.data())
@FAST
def test_slice_matches_numpy(x: np.ndarray, data: st.DataObject) -> None:
    axes = data.draw(st.lists(st.integers(0, x.ndim - 1), unique=True, max_size=x.ndim))
    starts = data.draw(st.lists(bound, min_size=len(axes), max_size=len(axes)))
    ends = data.draw(st.lists(bound, min_size=len(axes), max_size=len(axes)))
    steps = data.draw(st.lists(step, min_size=len(axes), max_size=len(axes)))
    neg_axes = [a - x.ndim if data.draw(st.booleans()) else a for a in axes]
    index = [slice(None)] * x.ndim
    for a, s, e, st_ in zip(axes, starts, ends, steps, strict=True):
        # ONNX clamps a negative-step start below -dim to index 0 (onnxruntime agrees);
        # Python slicing would give an empty range instead.
        if st_ < 0 and s < -x.shape[a]:
            s = -x.shape[a]
        index[a] = slice(s, e, st_)
    want = x[tuple(index)]
    values = [x, i64(starts), i64(ends), i64(neg_axes), i64(steps)]
    c, y = canon_run(node("Slice", ["x", "s", "e", "a", "t"]), values, opset=13, consts=(1, 2, 3, 4))
    np.testing.assert_array_equal(y, want)
    # Canonical attrs: output index o on axis k reads start + o*step, always inside the input.
    for k, d in enumerate(x.shape):
        start, stp, length = c.attrs[3 * k : 3 * k + 3]
        assert length == y.shape[k]
        if length:
            assert 0 <= start < d and 0 <= start + (length - 1) * stp < d
            assert range(start, start + length * stp, stp) == range(d)[index[k]]
        else:
            assert start == 0


def test_slice_defaults_and_old_opsets() -> None:
    x = distinct((3, 4))
    c, y = canon_run(node("Slice", ["x", "s", "e"]), [x, i64([1, -3]), i64([I64_MAX, -1])], opset=10, consts=(1, 2))
    assert c == Canonical((0,), (1, 1, 2, 1, 1, 2))
    np.testing.assert_array_equal(y, x[1:, -3:-1])
    c, y = canon_run(node("Slice", ["x", "s", "e", "", "t"]), [x, i64([-1]), i64([I64_MIN]), None, i64([-2])], opset=13, consts=(1, 2, 4))
    assert c == Canonical((0,), (2, -2, 2, 0, 1, 4))
    np.testing.assert_array_equal(y, x[::-2])
    c, y = canon_run(node("Slice", ["x"], starts=[1], ends=[100], axes=[1]), [x], opset=9)
    assert c == Canonical((0,), (0, 1, 3, 1, 1, 3))
    np.testing.assert_array_equal(y, x[:, 1:])
    # Negative step, start below -dim: ONNX clamps start to 0 (onnxruntime gives [0]; numpy's x[-7:-9:-1] is empty).
    c, y = canon_run(node("Slice", ["x", "s", "e", "a", "t"]), [distinct((5,)), i64([-7]), i64([-9]), i64([0]), i64([-1])], consts=(1, 2, 3, 4))
    assert c.attrs == (0, -1, 1) and y.tolist() == [1]
    # Empty result along a negative step over an empty axis.
    c, y = canon_run(node("Slice", ["x", "s", "e", "a", "t"]), [np.zeros((0, 2), np.int8), i64([5]), i64([-9]), i64([0]), i64([-1])], consts=(1, 2, 3, 4))
    assert c.attrs[:3] == (0, -1, 0) and y.shape == (0, 2)


def test_slice_refusals() -> None:
    op = REGISTRY["Slice"]
    x = distinct((3, 4))
    with pytest.raises(ShapeError, match=r"node 'n' \(Slice\).*steps"):
        op.canonicalize(context(node("Slice", ["x", "s", "e", "a", "t"]), [x, i64([0]), i64([2]), i64([0]), i64([0])], 13, (1, 2, 3, 4)))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Slice\).*constant"):
        op.canonicalize(context(node("Slice", ["x", "s", "e"]), [x, i64([0]), i64([2])], 13, (1,)))
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Slice\).*lengths"):
        op.canonicalize(context(node("Slice", ["x", "s", "e"]), [x, i64([0, 0]), i64([2])], 13, (1, 2)))
    with pytest.raises(ShapeError, match=r"node 'n' \(Slice\).*twice"):
        op.canonicalize(context(node("Slice", ["x", "s", "e", "a"]), [x, i64([0, 0]), i64([2, 2]), i64([1, -1])], 13, (1, 2, 3)))
    with pytest.raises(ShapeError):
        op.infer([TensorType(DType.INT32, (3,))], (2, 1, 2))


# ----------------------------------------------------------------------------- Gather


def gather_oracle(data: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    n = data.shape[axis]
    out_shape = data.shape[:axis] + idx.shape + data.shape[axis + 1 :]
    out = np.zeros(out_shape, data.dtype)
    for o in itertools.product(*(range(d) for d in out_shape)):
        pre, mid, post = o[:axis], o[axis : axis + idx.ndim], o[axis + idx.ndim :]
        i = int(idx[mid])
        if -n <= i < n:
            out[o] = data[(*pre, i % n, *post)]
    return out


@given(
    data=hnp.arrays(st.sampled_from([np.int8, np.int64, np.bool_]), hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)),
    idx_dtype=st.sampled_from([np.int32, np.int64]),
    draw=st.data(),
)
@FAST
def test_gather(data: np.ndarray, idx_dtype: type, draw: st.DataObject) -> None:
    axis = draw.draw(st.integers(-data.ndim, data.ndim - 1))
    info = np.iinfo(idx_dtype)
    idx_elems = st.one_of(st.integers(-6, 6), st.sampled_from([info.min, info.max]))
    idx = draw.draw(hnp.arrays(idx_dtype, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3), elements=idx_elems))
    c, y = canon_run(node("Gather", ["d", "i"], axis=axis), [data, idx])
    assert c == Canonical((0, 1), (axis % data.ndim,))
    np.testing.assert_array_equal(y, gather_oracle(data, idx, axis % data.ndim))


def test_gather_refusals() -> None:
    op = REGISTRY["Gather"]
    with pytest.raises(UnsupportedOpError, match=r"node 'n' \(Gather\).*int8"):
        op.canonicalize(context(node("Gather", ["d", "i"]), [distinct((3,)), np.array([0], np.int8)], 13))
    with pytest.raises(ShapeError, match=r"node 'n' \(Gather\).*rank"):
        op.canonicalize(context(node("Gather", ["d", "i"]), [np.array(1, np.int32), i64([0])], 13))
    with pytest.raises(ShapeError, match=r"node 'n' \(Gather\).*axis 2"):
        op.canonicalize(context(node("Gather", ["d", "i"], axis=2), [distinct((3, 2)), i64([0])], 13))


def test_runs_return_fresh_arrays() -> None:
    # A kernel must not hand back a view of its input: later slots would alias it.
    x = distinct((2, 3))
    for nd, vals, consts in [
        (node("Reshape", ["x", "s"]), [x, i64([6])], (1,)),
        (node("Slice", ["x", "s", "e"]), [x, i64([0]), i64([2])], (1, 2)),
        (node("Expand", ["x", "s"]), [x, i64([2, 3])], (1,)),
        (node("Transpose", ["x"]), [x], ()),
    ]:
        _, y = canon_run(nd, vals, consts=consts)
        assert not np.shares_memory(x, y)
