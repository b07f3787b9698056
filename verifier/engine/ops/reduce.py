"""Reductions over constant axes: ReduceSum/Max/Min and ArgMax/ArgMin.

Axes are folded into attrs whichever way the opset spells them (attribute before opset 13 for
ReduceSum and 18 for ReduceMax/Min, constant input after), and noop_with_empty_axes is
resolved at load, so the verifier never sees an "empty means all" rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from verifier.core.dtypes import DType, TensorType
from verifier.core.errors import ShapeError, UnsupportedOpError

from ._base import CanonContext, Canonical, Op, register
from .elementwise import (
    ALL,
    INTS,
    check_arity,
    check_attrs,
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


def _reduced_shape(shape: tuple[int, ...], axes: Sequence[int], keepdims: int) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if k in axes else d for k, d in enumerate(shape))
    return tuple(d for k, d in enumerate(shape) if k not in axes)


class _Reduce(Op):
    """attrs = (keepdims, n_axes, axes...) with axes sorted, distinct, in 0..rank-1.
    n_axes = 0 means no reduction (output = input; keepdims is then 1)."""

    accepts: ClassVar[frozenset[DType]]
    axes_input_since: ClassVar[int]  # first opset taking axes as an input

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        if ctx.opset >= self.axes_input_since:
            check_attrs(ctx, ("keepdims", "noop_with_empty_axes"))
            check_arity(ctx, 1, 2)
            axes = const_ints(ctx, 1, "axes", allow_scalar=True) if present(ctx, 1) else []
            noop = int_attr(ctx, "noop_with_empty_axes", 0, (0, 1))
        else:
            check_attrs(ctx, ("keepdims", "axes"))
            check_arity(ctx, 1, 1)
            axes = ints_attr(ctx, "axes") or []
            noop = 0
        require_inputs(ctx, (0,))
        keepdims = int_attr(ctx, "keepdims", 1, (0, 1))
        t = ctx.in_types[0]
        assert t is not None
        rank = len(t.shape)
        if not axes:
            axes = [] if noop else list(range(rank))  # ONNX: empty axes reduce all, unless noop
        norm = sorted(normalize_axes(axes, rank, ctx.where))
        if not norm:
            keepdims = 1
        return finish(ctx, self, (0,), (keepdims, len(norm), *norm))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        if len(in_types) != 1:
            raise UnsupportedOpError(f"{self.name} takes one runtime input; re-canonicalize the node.")
        dtype = same_dtype(self.name, in_types, self.accepts)
        shape = in_types[0].shape  # type: ignore[union-attr]  # same_dtype checked presence
        if len(attrs) < 2 or attrs[0] not in (0, 1) or len(attrs) != 2 + attrs[1]:
            raise UnsupportedOpError(f"{self.name} attrs {attrs} are not (keepdims, n, axes...); re-canonicalize.")
        axes = attrs[2:]
        if list(axes) != sorted(set(axes)) or any(not 0 <= a < len(shape) for a in axes):
            raise ShapeError(
                f"{self.name} axes {list(axes)} are not sorted distinct axes of rank {len(shape)}; re-canonicalize."
            )
        return TensorType(dtype, _reduced_shape(shape, axes, attrs[0]))

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        x = np.asarray(inputs[0])
        if attrs[1] == 0:
            return x.copy()
        out = self.reduce(x, tuple(attrs[2:]), bool(attrs[0]))
        return np.asarray(out).reshape(_reduced_shape(x.shape, attrs[2:], attrs[0]))

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        raise NotImplementedError


@register
class ReduceSum(_Reduce):
    """Sum wrapped to the dtype; the empty sum is 0."""

    name = "ReduceSum"
    code = 34
    min_since = 1  # the axes attribute form
    accepts = INTS
    axes_input_since = 13

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        dtype = DType.from_numpy(x.dtype)
        # uint64 sums wrap by definition; reading the result as int64 then narrowing wraps again.
        s = np.sum(x.astype(np.int64).view(np.uint64), axis=axes, keepdims=keepdims, dtype=np.uint64)
        return np.asarray(s).view(np.int64).astype(dtype.np)


@register
class ReduceMax(_Reduce):
    """Maximum; over an empty set it is the dtype's minimum (False for bool), as ONNX says."""

    name = "ReduceMax"
    code = 35
    min_since = 1
    accepts = ALL  # bool since opset 20; the semantics (logical or) need no opset gate
    axes_input_since = 18

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        d = DType.from_numpy(x.dtype)
        return np.max(x, axis=axes, keepdims=keepdims, initial=np.asarray(d.min, d.np))


@register
class ReduceMin(_Reduce):
    """Minimum; over an empty set it is the dtype's maximum (True for bool)."""

    name = "ReduceMin"
    code = 36
    min_since = 1
    accepts = ALL
    axes_input_since = 18

    def reduce(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        d = DType.from_numpy(x.dtype)
        return np.min(x, axis=axes, keepdims=keepdims, initial=np.asarray(d.max, d.np))


class _Arg(Op):
    """attrs = (axis, keepdims, select_last_index); output int64 indices along axis."""

    min_since = 1  # select_last_index (opset 12) defaults to the older first-index rule

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        check_attrs(ctx, ("axis", "keepdims", "select_last_index") if ctx.opset >= 12 else ("axis", "keepdims"))
        check_arity(ctx, 1, 1)
        require_inputs(ctx, (0,))
        t = ctx.in_types[0]
        assert t is not None
        axis = normalize_axis(int_attr(ctx, "axis", 0), len(t.shape), ctx.where)
        keepdims = int_attr(ctx, "keepdims", 1, (0, 1))
        last = int_attr(ctx, "select_last_index", 0, (0, 1))
        return finish(ctx, self, (0,), (axis, keepdims, last))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        if len(in_types) != 1 or len(attrs) != 3 or attrs[1] not in (0, 1) or attrs[2] not in (0, 1):
            raise UnsupportedOpError(f"{self.name} takes one input and attrs (axis, keepdims, last); re-canonicalize.")
        same_dtype(self.name, in_types, INTS)
        shape = in_types[0].shape  # type: ignore[union-attr]
        axis = attrs[0]
        if not 0 <= axis < len(shape):
            raise ShapeError(f"{self.name} axis {axis} is out of range for rank {len(shape)}; re-canonicalize.")
        if shape[axis] == 0:
            raise ShapeError(f"{self.name} over axis {axis} of size 0 has no answer; give the axis at least one element.")
        return TensorType(DType.INT64, _reduced_shape(shape, (axis,), attrs[1]))

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        x = np.asarray(inputs[0])
        axis, keepdims, last = attrs
        pick = np.argmax if self.name == "ArgMax" else np.argmin  # numpy picks the first tie
        if last:
            idx = (x.shape[axis] - 1) - pick(np.flip(x, axis), axis=axis, keepdims=bool(keepdims))
        else:
            idx = pick(x, axis=axis, keepdims=bool(keepdims))
        return np.asarray(idx, dtype=np.int64)


@register
class ArgMax(_Arg):
    name = "ArgMax"
    code = 37


@register
class ArgMin(_Arg):
    name = "ArgMin"
    code = 38
