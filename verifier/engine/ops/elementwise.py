"""Elementwise ops: exact integer arithmetic wrapped to the dtype, comparisons, logic, Cast.

Every output element depends on one element of each input (after broadcasting), so the
on-chain verifier can recompute any single element from one opening per input. The helpers
at the top (attribute checks, broadcasting, constant folding) are shared with shape.py and
reduce.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

import numpy as np

from verifier.core.dtypes import DType, TensorType
from verifier.core.errors import ShapeError, UnsupportedOpError

from ._base import CanonContext, Canonical, Op, register

INTS: frozenset[DType] = frozenset({DType.INT8, DType.INT32, DType.INT64})
BOOLS: frozenset[DType] = frozenset({DType.BOOL})
ALL: frozenset[DType] = INTS | BOOLS
_I64_MIN = -(1 << 63)


# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by shape.py and reduce.py)
# ---------------------------------------------------------------------------------------------


def dtype_names(dtypes: Iterable[DType]) -> str:
    return "/".join(d.name.lower() for d in sorted(dtypes))


def check_attrs(ctx: CanonContext, allowed: Iterable[str]) -> None:
    """Refuse attributes the op does not define at this opset (legacy `broadcast`, float attrs...)."""
    extra = sorted(ctx.attr_names() - set(allowed))
    if extra:
        raise ctx.unsupported(
            f"attribute(s) {', '.join(extra)} are not supported at opset {ctx.opset}; "
            "remove them or re-export the model at a recent opset."
        )


def present(ctx: CanonContext, i: int) -> bool:
    """Whether optional input i is given (ONNX marks an absent input with the empty name)."""
    return i < len(ctx.node.input) and ctx.node.input[i] != ""


def check_arity(ctx: CanonContext, lo: int, hi: int | None) -> int:
    """Number of inputs (trailing absent ones included); refuses counts outside lo..hi."""
    n = len(ctx.node.input)
    if n < lo or (hi is not None and n > hi):
        want = f"{lo}" if hi == lo else f"{lo} or more" if hi is None else f"{lo} to {hi}"
        raise ctx.unsupported(f"has {n} inputs, expected {want}; fix the node's inputs.")
    used = [o for o in ctx.node.output if o]
    if len(used) != 1:
        raise ctx.unsupported(f"has {len(used)} used outputs, expected 1; drop the extra outputs.")
    return n


def require_inputs(ctx: CanonContext, indices: Iterable[int]) -> None:
    for i in indices:
        if not present(ctx, i) or i >= len(ctx.in_types) or ctx.in_types[i] is None:
            raise ctx.unsupported(f"input {i} is missing; connect a tensor to it.")


def int_attr(ctx: CanonContext, name: str, default: int, choices: Iterable[int] | None = None) -> int:
    v = ctx.attr(name, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ctx.unsupported(f"attribute '{name}' must be an int, got {v!r}; fix the attribute.")
    if choices is not None and v not in set(choices):
        raise ctx.unsupported(f"attribute '{name}' = {v} is not one of {sorted(set(choices))}; fix the attribute.")
    return v


def ints_attr(ctx: CanonContext, name: str) -> list[int] | None:
    v = ctx.attr(name)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, int) for x in v):
        raise ctx.unsupported(f"attribute '{name}' must be a list of ints, got {v!r}; fix the attribute.")
    return [int(x) for x in v]


def const_ints(ctx: CanonContext, i: int, what: str, *, allow_scalar: bool = False) -> list[int]:
    """A constant integer list input (shape, axes, starts...), folded into the canonical attrs."""
    v = np.asarray(ctx.require_const(i, what))
    if v.dtype.kind != "i":
        raise ctx.unsupported(f"input {i} ({what}) has dtype {v.dtype}; it must be int64 (or int32).")
    if v.ndim > 1 or (v.ndim == 0 and not allow_scalar):
        raise ctx.unsupported(f"input {i} ({what}) has shape {list(v.shape)}; it must be a 1-D tensor.")
    return [int(x) for x in v.reshape(-1)]


def normalize_axis(axis: int, rank: int, where: str) -> int:
    """ONNX axis in [-rank, rank-1] -> [0, rank-1]."""
    if not -rank <= axis < rank:
        raise ShapeError(f"{where}: axis {axis} is out of range for rank {rank}; use an axis in [{-rank}, {rank - 1}].")
    return axis + rank if axis < 0 else axis


def normalize_axes(axes: Iterable[int], rank: int, where: str) -> list[int]:
    out = [normalize_axis(a, rank, where) for a in axes]
    if len(set(out)) != len(out):
        raise ShapeError(f"{where}: axes {list(axes)} name an axis twice; list each axis once.")
    return out


def broadcast_shapes(shapes: Sequence[tuple[int, ...]], what: str) -> tuple[int, ...]:
    """ONNX multidirectional (numpy) broadcasting: right-align; per axis dims equal or 1."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[int] = []
    for k in range(rank):
        dims = {s[k - rank + len(s)] for s in shapes if k - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            shown = ", ".join(str(list(s)) for s in shapes)
            raise ShapeError(f"{what}: shapes {shown} do not broadcast; make each dim equal or 1 (numpy rules).")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def broadcasts_to(src: tuple[int, ...], dst: tuple[int, ...]) -> bool:
    """Unidirectional broadcasting: src can be stretched to exactly dst."""
    if len(src) > len(dst):
        return False
    off = len(dst) - len(src)
    return all(d == 1 or d == dst[k + off] for k, d in enumerate(src))


def finish(ctx: CanonContext, op: Op, inputs: tuple[int | None, ...], attrs: tuple[int, ...] = ()) -> Canonical:
    """Canonical form, validated by running `infer` so load-time errors name the node."""
    types = [None if i is None else ctx.in_types[i] for i in inputs]
    try:
        op.infer(types, attrs)
    except (ShapeError, UnsupportedOpError) as e:
        raise type(e)(f"{ctx.where}: {e}") from None
    return Canonical(tuple(inputs), tuple(int(a) for a in attrs))


def same_dtype(name: str, types: Sequence[TensorType | None], allowed: frozenset[DType]) -> DType:
    """The common dtype of the given inputs, which must all be present, equal and allowed."""
    if any(t is None for t in types):
        raise UnsupportedOpError(f"{name} is missing a required input; connect a tensor to it.")
    dts = [t.dtype for t in types if t is not None]
    if len(set(dts)) != 1:
        raise UnsupportedOpError(
            f"{name} inputs have dtypes {', '.join(d.name.lower() for d in dts)}; "
            "ONNX requires one dtype, insert a Cast."
        )
    if dts[0] not in allowed:
        raise UnsupportedOpError(
            f"{name} takes {dtype_names(allowed)}, got {dts[0].name.lower()}; insert a Cast to one of those."
        )
    return dts[0]


def check_no_attrs(name: str, attrs: tuple[int, ...], n: int = 0) -> None:
    if len(attrs) != n:
        raise UnsupportedOpError(f"{name} takes {n} canonical attrs, got {len(attrs)}; re-canonicalize the node.")


def _u64(a: np.ndarray) -> np.ndarray:
    # Unsigned 64-bit arithmetic wraps by definition; signed overflow in C does not.
    return a.astype(np.int64).view(np.uint64)


def _from_u64(u: np.ndarray, dtype: DType) -> np.ndarray:
    return u.view(np.int64).astype(dtype.np)


def _flat_broadcast(inputs: Sequence[np.ndarray]) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Broadcast to the output shape and flatten to 1-D, so no ufunc yields a numpy scalar
    (scalar arithmetic warns on overflow; array arithmetic does not)."""
    shape = broadcast_shapes([tuple(a.shape) for a in inputs], "broadcast")
    return shape, [np.broadcast_to(a, shape).reshape(-1) for a in inputs]


# ---------------------------------------------------------------------------------------------
# Broadcasting elementwise ops
# ---------------------------------------------------------------------------------------------


class _Elementwise(Op):
    """N inputs of one dtype, broadcast together; the kernel maps flat 1-D arrays to one."""

    min_inputs: ClassVar[int] = 2
    max_inputs: ClassVar[int | None] = 2
    accepts: ClassVar[frozenset[DType]] = INTS
    bool_out: ClassVar[bool] = False

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        check_attrs(ctx, ())
        n = check_arity(ctx, self.min_inputs, self.max_inputs)
        require_inputs(ctx, range(n))
        return finish(ctx, self, tuple(range(n)))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        check_no_attrs(self.name, attrs)
        n = len(in_types)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            raise UnsupportedOpError(f"{self.name} got {n} inputs; re-canonicalize the node.")
        dtype = same_dtype(self.name, in_types, self.accepts)
        shape = broadcast_shapes([t.shape for t in in_types if t is not None], self.name)
        return TensorType(DType.BOOL if self.bool_out else dtype, shape)

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        arrays = [np.asarray(a) for a in inputs if a is not None]
        dtype = DType.from_numpy(arrays[0].dtype)
        shape, flat = _flat_broadcast(arrays)
        return self.kernel(flat, dtype, attrs).reshape(shape)

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError


class _Unary(_Elementwise):
    min_inputs = 1
    max_inputs = 1


@register
class Identity(_Unary):
    name = "Identity"
    code = 1
    min_since = 1
    accepts = ALL

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return xs[0].copy()


@register
class Add(_Elementwise):
    name = "Add"
    code = 2

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return _from_u64(_u64(xs[0]) + _u64(xs[1]), dtype)


@register
class Sub(_Elementwise):
    name = "Sub"
    code = 3

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return _from_u64(_u64(xs[0]) - _u64(xs[1]), dtype)


@register
class Mul(_Elementwise):
    name = "Mul"
    code = 4

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return _from_u64(_u64(xs[0]) * _u64(xs[1]), dtype)


def div_trunc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """EVM SDIV on int64: quotient truncated toward zero, x/0 = 0, INT64_MIN/-1 = INT64_MIN."""
    zero = b == 0
    overflow = (a == _I64_MIN) & (b == -1)
    bs = np.where(zero | overflow, 1, b)  # INT64_MIN/1 is already the wrapped INT64_MIN/-1
    q = np.floor_divide(a, bs)
    r = a - q * bs
    # Floor and truncation differ by one when the division is inexact and the signs differ.
    q = q + ((r != 0) & ((a < 0) != (bs < 0)))
    return np.where(zero, 0, q)


@register
class Div(_Elementwise):
    name = "Div"
    code = 5

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        # int8/int32 MIN/-1 = 2^(w-1) in int64, which the cast wraps back to MIN.
        return div_trunc(xs[0].astype(np.int64), xs[1].astype(np.int64)).astype(dtype.np)


@register
class Mod(_Elementwise):
    """attrs = (fmod,): 0 = sign of the divisor (Python %), 1 = sign of the dividend (C fmod)."""

    name = "Mod"
    code = 6

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        check_attrs(ctx, ("fmod",))
        check_arity(ctx, 2, 2)
        require_inputs(ctx, (0, 1))
        return finish(ctx, self, (0, 1), (int_attr(ctx, "fmod", 0, (0, 1)),))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        check_no_attrs(self.name, attrs, 1)
        if attrs[0] not in (0, 1):
            raise UnsupportedOpError(f"Mod fmod must be 0 or 1, got {attrs[0]}; re-canonicalize the node.")
        return super().infer(in_types, ())

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        a, b = xs[0].astype(np.int64), xs[1].astype(np.int64)
        # x mod 1 = x mod -1 = 0, and x mod 0 is defined as 0: dividing by 1 gives all three
        # without numpy's division-by-zero warning or the INT64_MIN % -1 trap.
        bs = np.where((b == 0) | (b == -1), 1, b)
        r = np.fmod(a, bs) if attrs[0] else np.remainder(a, bs)
        return r.astype(dtype.np)


@register
class Neg(_Unary):
    name = "Neg"
    code = 7
    min_since = 6  # Neg-1 differs only by the legacy consumed_inputs attribute, refused

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return _from_u64(np.uint64(0) - _u64(xs[0]), dtype)


@register
class Abs(_Unary):
    name = "Abs"
    code = 8
    min_since = 6  # as Neg

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        neg = _from_u64(np.uint64(0) - _u64(xs[0]), dtype)  # Abs(MIN) wraps to MIN
        return np.where(xs[0] < 0, neg, xs[0])


@register
class Sign(_Unary):
    name = "Sign"
    code = 9

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return np.sign(xs[0]).astype(dtype.np)


@register
class Relu(_Unary):
    name = "Relu"
    code = 10
    min_since = 14  # Relu takes integers since opset 14

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return np.maximum(xs[0], np.zeros((), dtype.np))


@register
class Max(_Elementwise):
    name = "Max"
    code = 11
    min_since = 12  # Max takes integers since opset 12
    min_inputs = 1
    max_inputs = 255  # n_in is a u8 in the node descriptor

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return functools.reduce(np.maximum, xs[1:], xs[0].copy())


@register
class Min(_Elementwise):
    name = "Min"
    code = 12
    min_since = 12  # Min takes integers since opset 12
    min_inputs = 1
    max_inputs = 255

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return functools.reduce(np.minimum, xs[1:], xs[0].copy())


@register
class Clip(Op):
    """Inputs (x, lo?, hi?); lo/hi broadcast unidirectionally to x; y = min(max(x, lo), hi)."""

    name = "Clip"
    code = 13
    min_since = 12  # Clip takes integers since opset 12 (Clip-1/6 have float attributes)

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        if ctx.opset < 11 or ctx.attr_names() & {"min", "max"}:
            raise ctx.unsupported(
                "Clip before opset 11 takes float min/max attributes; re-export the model at opset >= 13 "
                "with integer min/max inputs."
            )
        check_attrs(ctx, ())
        check_arity(ctx, 1, 3)
        require_inputs(ctx, (0,))
        inputs = (0, 1 if present(ctx, 1) else None, 2 if present(ctx, 2) else None)
        return finish(ctx, self, inputs)

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        check_no_attrs(self.name, attrs)
        if len(in_types) != 3 or in_types[0] is None:
            raise UnsupportedOpError("Clip takes (x, lo or absent, hi or absent); re-canonicalize the node.")
        x = in_types[0]
        bounds = [t for t in in_types[1:] if t is not None]
        same_dtype(self.name, [x, *bounds], INTS)
        for t in bounds:
            if not broadcasts_to(t.shape, x.shape):
                raise ShapeError(
                    f"Clip bound of shape {list(t.shape)} does not broadcast to the input shape {list(x.shape)}; "
                    "pass scalar bounds."
                )
        return x

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        x = np.asarray(inputs[0])
        shape = x.shape
        y = x.reshape(-1).copy()
        if inputs[1] is not None:  # absent bound = no bound
            y = np.maximum(y, np.broadcast_to(inputs[1], shape).reshape(-1))
        if inputs[2] is not None:
            y = np.minimum(y, np.broadcast_to(inputs[2], shape).reshape(-1))
        return y.reshape(shape)


@register
class Where(Op):
    """Inputs (cond: bool, x, y: one dtype), all broadcast together."""

    name = "Where"
    code = 14

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        check_attrs(ctx, ())
        check_arity(ctx, 3, 3)
        require_inputs(ctx, (0, 1, 2))
        return finish(ctx, self, (0, 1, 2))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        check_no_attrs(self.name, attrs)
        if len(in_types) != 3:
            raise UnsupportedOpError("Where takes 3 inputs (cond, x, y); re-canonicalize the node.")
        same_dtype("Where condition", in_types[:1], BOOLS)
        dtype = same_dtype("Where branches", in_types[1:], ALL)
        shape = broadcast_shapes([t.shape for t in in_types if t is not None], self.name)
        return TensorType(dtype, shape)

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        shape, (c, x, y) = _flat_broadcast([np.asarray(a) for a in inputs if a is not None])
        return np.where(c, x, y).reshape(shape)


class _Compare(_Elementwise):
    bool_out = True
    fn: ClassVar[Callable[[np.ndarray, np.ndarray], np.ndarray]]

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return type(self).fn(xs[0], xs[1])


@register
class Equal(_Compare):
    name = "Equal"
    code = 15
    accepts = ALL
    fn = np.equal


@register
class Less(_Compare):
    name = "Less"
    code = 16
    min_since = 9  # Less-7 is float-only
    fn = np.less


@register
class Greater(_Compare):
    name = "Greater"
    code = 17
    min_since = 9  # Greater-7 is float-only
    fn = np.greater


@register
class LessOrEqual(_Compare):
    name = "LessOrEqual"
    code = 18
    fn = np.less_equal


@register
class GreaterOrEqual(_Compare):
    name = "GreaterOrEqual"
    code = 19
    fn = np.greater_equal


@register
class Not(_Unary):
    name = "Not"
    code = 20
    min_since = 1
    accepts = BOOLS

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return np.logical_not(xs[0])


@register
class And(_Elementwise):
    name = "And"
    code = 21
    accepts = BOOLS

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return np.logical_and(xs[0], xs[1])


@register
class Or(_Elementwise):
    name = "Or"
    code = 22
    accepts = BOOLS

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return np.logical_or(xs[0], xs[1])


@register
class Xor(_Elementwise):
    name = "Xor"
    code = 23
    accepts = BOOLS

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        return np.logical_xor(xs[0], xs[1])


@register
class Cast(_Unary):
    """attrs = (to,), an ONNX TensorProto code of a profile dtype."""

    name = "Cast"
    code = 24
    min_since = 6  # Cast-1 names the target dtype with a string
    accepts = ALL

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        # saturate and round_mode only affect float8/float targets, which the profile refuses.
        check_attrs(ctx, ("to", "saturate", "round_mode"))
        check_arity(ctx, 1, 1)
        require_inputs(ctx, (0,))
        if ctx.attr("to") is None:
            raise ctx.unsupported("attribute 'to' is missing; set it to the target dtype.")
        to = DType.from_onnx(int_attr(ctx, "to", 0), f"{ctx.where} target ('to')")
        return finish(ctx, self, (0,), (int(to),))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        check_no_attrs(self.name, attrs, 1)
        to = DType.from_onnx(attrs[0], "Cast target")
        same_dtype(self.name, in_types, ALL)
        return TensorType(to, in_types[0].shape)  # type: ignore[union-attr]  # checked present above

    def kernel(self, xs: list[np.ndarray], dtype: DType, attrs: tuple[int, ...]) -> np.ndarray:
        to = DType(attrs[0])
        if to is DType.BOOL:
            return xs[0] != 0
        return xs[0].astype(np.int64).astype(to.np)  # bool -> 0/1; narrowing wraps
