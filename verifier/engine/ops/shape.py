"""Data-movement ops: every output element is a copy of one input element (or a fixed 0).

Shape-determining inputs (Reshape's shape, Squeeze/Unsqueeze axes, Slice bounds, Expand's
shape) must be constants; canonicalization folds them into fully resolved attrs, so the
on-chain verifier maps an output index to its input index without re-deriving ONNX's rules.
A shape in attrs is written (rank, d_0, .., d_{rank-1}).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from verifier.core.dtypes import DType, TensorType
from verifier.core.errors import ShapeError, UnsupportedOpError

from ._base import CanonContext, Canonical, Op, register
from .elementwise import (
    ALL,
    broadcast_shapes,
    broadcasts_to,
    check_arity,
    check_attrs,
    check_no_attrs,
    const_ints,
    finish,
    int_attr,
    ints_attr,
    normalize_axes,
    normalize_axis,
    present,
    require_inputs,
    same_dtype,
)


def shape_attrs(shape: Sequence[int]) -> tuple[int, ...]:
    return (len(shape), *shape)


def parse_shape_attrs(name: str, attrs: tuple[int, ...]) -> tuple[int, ...]:
    if not attrs or attrs[0] < 0 or len(attrs) != 1 + attrs[0] or any(d < 0 for d in attrs[1:]):
        raise UnsupportedOpError(f"{name} attrs {attrs} are not (rank, dims...); re-canonicalize the node.")
    return tuple(attrs[1:])


def _one_input(name: str, in_types: Sequence[TensorType | None]) -> TensorType:
    if len(in_types) != 1 or in_types[0] is None:
        raise UnsupportedOpError(f"{name} takes exactly one runtime input; re-canonicalize the node.")
    same_dtype(name, in_types, ALL)
    return in_types[0]


def _in_type(ctx: CanonContext, i: int) -> TensorType:
    t = ctx.in_types[i] if i < len(ctx.in_types) else None
    if t is None:
        raise ctx.unsupported(f"input {i} is missing; connect a tensor to it.")
    return t


@register
class Reshape(Op):
    """attrs = the output shape (rank, dims...); elements keep their row-major flat index."""

    name = "Reshape"
    code = 25
    min_since = 1  # Reshape-1 (shape attribute) is refused in canonicalize; Flatten/Squeeze/Unsqueeze-1 are fine
    onnx_names = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        op = ctx.node.op_type
        resolve = {
            "Reshape": self._reshape,
            "Flatten": self._flatten,
            "Squeeze": self._squeeze,
            "Unsqueeze": self._unsqueeze,
        }[op]
        out = resolve(ctx, _in_type(ctx, 0).shape)
        return finish(ctx, self, (0,), shape_attrs(out))

    def _reshape(self, ctx: CanonContext, dims: tuple[int, ...]) -> list[int]:
        if ctx.opset < 5:
            raise ctx.unsupported("Reshape before opset 5 takes a shape attribute; re-export the model at opset >= 13.")
        check_attrs(ctx, ("allowzero",) if ctx.opset >= 14 else ())
        check_arity(ctx, 2, 2)
        require_inputs(ctx, (0,))
        allowzero = int_attr(ctx, "allowzero", 0, (0, 1))
        spec = const_ints(ctx, 1, "shape")
        out: list[int] = []
        infer_at: int | None = None
        for k, s in enumerate(spec):
            if s == -1:
                if infer_at is not None:
                    raise ctx.shape_error(f"shape {spec} has more than one -1; leave at most one dim to infer.")
                infer_at = k
                out.append(1)
            elif s == 0 and not allowzero:
                if k >= len(dims):  # 0 copies the input dim at the same position
                    raise ctx.shape_error(f"shape {spec} copies dim {k} but the input has rank {len(dims)}; fix the shape.")
                out.append(dims[k])
            elif s < 0:
                raise ctx.shape_error(f"shape {spec} has a negative dim {s}; use -1 for the inferred dim only.")
            else:
                out.append(s)
        if infer_at is not None:
            known = math.prod(out)
            total = math.prod(dims)
            if known == 0 or total % known:
                raise ctx.shape_error(
                    f"cannot infer the -1 dim of shape {spec} from input shape {list(dims)}; give the shape explicitly."
                )
            out[infer_at] = total // known
        return out

    def _flatten(self, ctx: CanonContext, dims: tuple[int, ...]) -> list[int]:
        if ctx.opset < 9:
            raise ctx.unsupported("Flatten takes integers since opset 9; re-export the model at opset >= 13.")
        check_attrs(ctx, ("axis",))
        check_arity(ctx, 1, 1)
        r = len(dims)
        axis = int_attr(ctx, "axis", 1)
        if not -r <= axis <= r:
            raise ctx.shape_error(f"axis {axis} is out of range for rank {r}; use an axis in [{-r}, {r}].")
        axis = axis + r if axis < 0 else axis
        return [math.prod(dims[:axis]), math.prod(dims[axis:])]

    def _axes(self, ctx: CanonContext, required: bool) -> list[int] | None:
        """Squeeze/Unsqueeze axes: an attribute before opset 13, a constant input from 13."""
        if ctx.opset >= 13:
            check_attrs(ctx, ())
            check_arity(ctx, 2 if required else 1, 2)
            axes = const_ints(ctx, 1, "axes", allow_scalar=True) if present(ctx, 1) else None
        else:
            check_attrs(ctx, ("axes",))
            check_arity(ctx, 1, 1)
            axes = ints_attr(ctx, "axes")
        if axes is None and required:
            raise ctx.unsupported("axes are missing; list the axes to insert.")
        if axes == [] and not required:
            # onnx.reference squeezes nothing, onnxruntime squeezes every size-1 dim.
            raise ctx.unsupported("axes is an empty list, which runtimes read differently; omit it or list the axes.")
        return axes

    def _squeeze(self, ctx: CanonContext, dims: tuple[int, ...]) -> list[int]:
        axes = self._axes(ctx, required=False)
        if axes is None:  # ONNX: no axes squeezes every dim of size 1
            return [d for d in dims if d != 1]
        drop = normalize_axes(axes, len(dims), ctx.where)
        for a in drop:
            if dims[a] != 1:
                raise ctx.shape_error(f"cannot squeeze axis {a} of size {dims[a]}; squeeze only dims of size 1.")
        return [d for k, d in enumerate(dims) if k not in drop]

    def _unsqueeze(self, ctx: CanonContext, dims: tuple[int, ...]) -> list[int]:
        axes = self._axes(ctx, required=True)
        assert axes is not None
        rank = len(dims) + len(axes)
        ins = set(normalize_axes(axes, rank, ctx.where))  # axes index the output
        rest = iter(dims)
        return [1 if k in ins else next(rest) for k in range(rank)]

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        x = _one_input(self.name, in_types)
        out = parse_shape_attrs(self.name, attrs)
        if math.prod(out) != x.size:
            raise ShapeError(
                f"Reshape from {list(x.shape)} ({x.size} elements) to {list(out)} ({math.prod(out)}) "
                "changes the element count; fix the target shape."
            )
        return TensorType(x.dtype, out)

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        return np.asarray(inputs[0]).reshape(attrs[1:]).copy()


@register
class Transpose(Op):
    """attrs = perm: output axis k is input axis perm[k]."""

    name = "Transpose"
    code = 26
    min_since = 1

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        check_attrs(ctx, ("perm",))
        check_arity(ctx, 1, 1)
        r = len(_in_type(ctx, 0).shape)
        perm = ints_attr(ctx, "perm")
        if perm is None:  # ONNX default: reverse the axes
            perm = list(range(r))[::-1]
        return finish(ctx, self, (0,), tuple(perm))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        x = _one_input(self.name, in_types)
        if sorted(attrs) != list(range(len(x.shape))):
            raise ShapeError(
                f"Transpose perm {list(attrs)} is not a permutation of the {len(x.shape)} input axes; fix 'perm'."
            )
        return TensorType(x.dtype, tuple(x.shape[p] for p in attrs))

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        return np.transpose(np.asarray(inputs[0]), attrs).copy()  # copy: C order, never a view


@register
class Concat(Op):
    """attrs = (axis,), normalized to 0..rank-1."""

    name = "Concat"
    code = 27
    min_since = 4  # Concat-1 is float-only

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        check_attrs(ctx, ("axis",))
        n = check_arity(ctx, 1, 255)  # n_in is a u8 in the node descriptor
        require_inputs(ctx, range(n))
        if ctx.attr("axis") is None and ctx.opset >= 4:
            raise ctx.unsupported("attribute 'axis' is missing; set the axis to concatenate on.")
        axis = int_attr(ctx, "axis", 1)  # Concat-1 defaulted to axis 1
        r = len(_in_type(ctx, 0).shape)
        return finish(ctx, self, tuple(range(n)), (normalize_axis(axis, r, ctx.where),))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        check_no_attrs(self.name, attrs, 1)
        if not in_types:
            raise UnsupportedOpError("Concat needs at least one input; re-canonicalize the node.")
        dtype = same_dtype(self.name, in_types, ALL)
        shapes = [t.shape for t in in_types if t is not None]
        r = len(shapes[0])
        axis = attrs[0]
        if not 0 <= axis < r:
            raise ShapeError(f"Concat axis {axis} is out of range for rank {r}; use an axis in [0, {r - 1}].")
        for s in shapes:
            if len(s) != r or any(s[k] != shapes[0][k] for k in range(r) if k != axis):
                shown = ", ".join(str(list(x)) for x in shapes)
                raise ShapeError(f"Concat inputs {shown} differ outside axis {axis}; make the other dims equal.")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return TensorType(dtype, tuple(out))

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        return np.concatenate([np.asarray(a) for a in inputs if a is not None], axis=attrs[0])


def slice_axis(start: int, end: int, step: int, dim: int) -> tuple[int, int, int]:
    """ONNX Slice bounds for one axis -> canonical (start, step, length): output index o reads
    input index start + o*step. Same result as Python's slice(start, end, step) on a length-dim
    sequence; start is 0 when length is 0."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start = min(max(start, 0), dim)
        end = min(max(end, 0), dim)
        length = max(0, -(-(end - start) // step))
    else:
        start = min(max(start, 0), dim - 1)
        end = min(max(end, -1), dim - 1)
        length = max(0, -(-(start - end) // -step))
    return (start if length else 0, step, length)


@register
class Slice(Op):
    """attrs = (start_k, step_k, length_k) for every input axis k, fully resolved."""

    name = "Slice"
    code = 31
    min_since = 1  # Slice-1 takes the bounds as attributes, with unit steps

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        dims = _in_type(ctx, 0).shape
        if ctx.opset >= 10:
            check_attrs(ctx, ())
            check_arity(ctx, 3, 5)
            starts = const_ints(ctx, 1, "starts")
            ends = const_ints(ctx, 2, "ends")
            axes = const_ints(ctx, 3, "axes") if present(ctx, 3) else None
            steps = const_ints(ctx, 4, "steps") if present(ctx, 4) else None
        else:  # Slice-1: the same bounds as attributes, unit steps
            check_attrs(ctx, ("starts", "ends", "axes"))
            check_arity(ctx, 1, 1)
            starts, ends, axes = ints_attr(ctx, "starts"), ints_attr(ctx, "ends"), ints_attr(ctx, "axes")
            if starts is None or ends is None:
                raise ctx.unsupported("attributes 'starts' and 'ends' are required; set both.")
            steps = None
        n = len(starts)
        axes = list(range(n)) if axes is None else axes
        steps = [1] * n if steps is None else steps
        if not len(ends) == len(axes) == len(steps) == n:
            raise ctx.unsupported(
                f"starts/ends/axes/steps have lengths {n}/{len(ends)}/{len(axes)}/{len(steps)}; give equal lengths."
            )
        if 0 in steps:
            raise ctx.shape_error(f"steps {steps} contain 0; use non-zero steps.")
        resolved = [(0, 1, d) for d in dims]
        for a, s, e, st in zip(normalize_axes(axes, len(dims), ctx.where), starts, ends, steps, strict=True):
            resolved[a] = slice_axis(s, e, st, dims[a])
        return finish(ctx, self, (0,), tuple(v for t in resolved for v in t))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        x = _one_input(self.name, in_types)
        if len(attrs) != 3 * len(x.shape):
            raise UnsupportedOpError(f"Slice needs 3 attrs per input axis, got {len(attrs)}; re-canonicalize the node.")
        out = []
        for k, d in enumerate(x.shape):
            start, step, length = attrs[3 * k : 3 * k + 3]
            last = start + (length - 1) * step
            if step == 0 or length < 0 or (length > 0 and not (0 <= start < d and 0 <= last < d)):
                raise ShapeError(
                    f"Slice axis {k} (start {start}, step {step}, length {length}) leaves the input dim {d}; "
                    "re-canonicalize the node."
                )
            out.append(length)
        return TensorType(x.dtype, tuple(out))

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        x = np.asarray(inputs[0])
        return x[slice_index(attrs, x.ndim)].copy()


def slice_index(attrs: tuple[int, ...], ndim: int) -> tuple[slice, ...]:
    """Slice's canonical (start, step, length) per axis as numpy's index."""
    index = []
    for k in range(ndim):
        start, step, length = attrs[3 * k : 3 * k + 3]
        if length == 0:
            index.append(slice(0, 0))
            continue
        stop = start + length * step
        index.append(slice(start, None if stop < 0 else stop, step))
    return tuple(index)


@register
class Gather(Op):
    """Inputs (data, indices: int32/int64); attrs = (axis,). Index i in [-n, -1] means i + n;
    an index outside [-n, n-1] gathers 0 (False) instead of failing."""

    name = "Gather"
    code = 32
    min_since = 1

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        check_attrs(ctx, ("axis",))
        check_arity(ctx, 2, 2)
        require_inputs(ctx, (0, 1))
        r = len(_in_type(ctx, 0).shape)
        if r == 0:
            raise ctx.shape_error("data is a scalar; Gather needs data of rank >= 1.")
        return finish(ctx, self, (0, 1), (normalize_axis(int_attr(ctx, "axis", 0), r, ctx.where),))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        check_no_attrs(self.name, attrs, 1)
        if len(in_types) != 2 or in_types[0] is None or in_types[1] is None:
            raise UnsupportedOpError("Gather takes (data, indices); re-canonicalize the node.")
        data, idx = in_types
        same_dtype("Gather data", [data], ALL)
        if idx.dtype not in (DType.INT32, DType.INT64):
            raise UnsupportedOpError(
                f"Gather indices have dtype {idx.dtype.name.lower()}; Cast them to int32 or int64."
            )
        axis = attrs[0]
        if not 0 <= axis < len(data.shape):
            raise ShapeError(f"Gather axis {axis} is out of range for rank {len(data.shape)}; re-canonicalize the node.")
        return TensorType(data.dtype, data.shape[:axis] + idx.shape + data.shape[axis + 1 :])

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        data, idx = np.asarray(inputs[0]), np.asarray(inputs[1]).astype(np.int64)
        axis = attrs[0]
        n = data.shape[axis]
        out_shape = data.shape[:axis] + idx.shape + data.shape[axis + 1 :]
        if n == 0:
            return np.zeros(out_shape, data.dtype)
        idx = idx + np.where(idx < 0, n, 0)  # adds n only to negatives, so nothing overflows
        valid = (idx >= 0) & (idx < n)
        out = np.take(data, np.where(valid, idx, 0), axis=axis)
        mask = valid.reshape((1,) * axis + idx.shape + (1,) * (data.ndim - axis - 1))
        return np.where(mask, out, np.zeros((), data.dtype))


@register
class Expand(Op):
    """attrs = the output shape (rank, dims...): broadcast(input shape, shape input)."""

    name = "Expand"
    code = 33

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        check_attrs(ctx, ())
        check_arity(ctx, 2, 2)
        dims = _in_type(ctx, 0).shape
        target = const_ints(ctx, 1, "shape")
        if any(d < 0 for d in target):
            raise ctx.shape_error(f"shape {target} has a negative dim; use non-negative dims.")
        try:
            out = broadcast_shapes([dims, tuple(target)], "Expand")
        except ShapeError as e:
            raise ctx.shape_error(str(e)) from None
        return finish(ctx, self, (0,), shape_attrs(out))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        x = _one_input(self.name, in_types)
        out = parse_shape_attrs(self.name, attrs)
        if not broadcasts_to(x.shape, out):
            raise ShapeError(f"Expand input {list(x.shape)} does not broadcast to {list(out)}; fix the target shape.")
        return TensorType(x.dtype, out)

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(np.asarray(inputs[0]), attrs[1:]).copy()
