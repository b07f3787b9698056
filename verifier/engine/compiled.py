"""Compiled steps: a whole step run in float64 where static bounds prove every value exact.

One module on purpose (~1,000 lines): the per-op bound rules, the kernels they license, the
conformance battery that gates both, and the code generator are one proof; split apart, a
rule could change without the battery or the generator that rely on it.

The per-node engine pays for generality on every node: dtype dispatch, wraparound through
uint64, a bound check before each BLAS call. Most programs never come near those edges, and
that can be proven once, at load, instead of checked at every node of every step.

Interval analysis (docs/SPEC.md 4.7) bounds every slot of the step graph over every step the
program runs: data and constants by their values, the step index by `0..T-1`, the state by
iterating the step's bounds from the initial state (to a fixed point, or through all T steps),
node outputs by per-op rules. If every bound, and every partial sum of every matmul and
reduction, stays below 2^53 in magnitude and inside its slot's dtype, then no value ever wraps
and every float64 operation on these integers is exact (IEEE 754 rounds only results it cannot
represent; truncating `fl(a / b)` is exact when `|a| < 2^53`, because the rounding error is below
the quotient's distance to the next integer). The whole step then runs as one generated
function over float64 arrays (bool stays bool; float32 where the same argument holds below 2^24,
see `_carriers`), with the state converted once per run of steps, not once per node.

It changes speed, never results:
- the kernel of each op passes a seeded conformance battery against the reference (the same
  cases as the fast kernels, plus the same cases narrowed into the exact range), and its
  interval rule must contain every output it produced;
- a program compiles only if one step from its initial state equals the reference bit for bit;
- `CompiledStep.run` refuses (returns None) a state outside the proven bounds, so a caller
  falls back to the per-node engine for anything the proof does not cover;
- a subclass of Program that overrides how a step runs (e.g. a cheater) is never compiled.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

# the ufunc np.clip calls once it has checked its arguments
from numpy._core.umath import clip as _clip_ufunc

from verifier.core.dtypes import DType, TensorType
from verifier.engine.graph import SlotKind
from verifier.engine.ops import REGISTRY
from verifier.engine.ops.linalg import (
    IM2COL_BYTES,
    conv_accumulate,
    conv_out_dims,
    conv_params,
)
from verifier.engine.ops.shape import slice_index
from verifier.engine.verdicts import remembered

if TYPE_CHECKING:
    from verifier.engine.program import Program

EXACT_BOUND = 2**53  # every value and partial sum strictly below this in magnitude
MAX_ITERATIONS = 256  # bound iterations of the state before widening
MAX_CARRIER_BYTES = 1 << 28  # float64 copies of data and constants held by one compiled step

Interval = tuple[int, int]
Kernel = Callable[..., np.ndarray]


class NotCompilable(Exception):
    """Why a program runs on the per-node engine instead (one line)."""


@dataclass(frozen=True)
class NodeInfo:
    """What an op's bound rule and kernel factory may know about a node at compile time."""

    attrs: tuple[int, ...]
    in_types: tuple[TensorType | None, ...]
    out_type: TensorType
    # Values of inputs that are fixed for the whole program (constants and data), as stored.
    consts: tuple[np.ndarray | None, ...]


# ---------------------------------------------------------------------------------------------
# Intervals


def _interval(v: np.ndarray) -> Interval:
    if v.size == 0:
        return (0, 0)
    return (int(v.min()), int(v.max()))


def _union(*ivs: Interval) -> Interval:
    return (min(i[0] for i in ivs), max(i[1] for i in ivs))


def _mag(iv: Interval) -> int:
    return max(abs(iv[0]), abs(iv[1]))


def _products(a: Interval, b: Interval) -> Interval:
    c = (a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1])
    return (min(c), max(c))


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _dtype_range(d: DType) -> Interval:
    return (d.min, d.max)


def _present(ivs: Sequence[Interval | None]) -> list[Interval]:
    return [i for i in ivs if i is not None]


# Bound rules: (info, input intervals) -> (output interval, largest partial-sum magnitude).
# Each must contain every value the reference can produce from inputs inside the intervals.
Bounds = Callable[[NodeInfo, Sequence["Interval | None"]], tuple[Interval, int]]


def _same(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    assert ivs[0] is not None
    return ivs[0], 0


def _union_of_all(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    return _union(*_present(ivs)), 0


def _boolean(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    return (0, 1), 0


def _add(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    (a0, a1), (b0, b1) = _present(ivs)
    return (a0 + b0, a1 + b1), 0


def _sub(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    (a0, a1), (b0, b1) = _present(ivs)
    return (a0 - b1, a1 - b0), 0


def _mul(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    a, b = _present(ivs)
    return _products(a, b), 0


def _div_bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    a, b = _present(ivs)
    if b[0] == b[1]:  # one divisor (a constant): trunc(a / c) is monotone in a
        c = b[0]
        if c == 0:
            return (0, 0), 0
        q = (_trunc_div(a[0], c), _trunc_div(a[1], c))
        return (min(q), max(q)), 0
    m = _mag(a)  # |trunc(a / b)| <= |a| for b != 0, and x / 0 = 0
    return (-m, m), 0


def _mod_bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    a, b = _present(ivs)
    bm = max(_mag(b) - 1, 0)  # |a mod b| < |b|, and x mod 0 = 0
    if info.attrs[0] == 1:  # sign of a, and |r| <= |a|
        r = min(bm, _mag(a))
        return (-r if a[0] < 0 else 0, r if a[1] > 0 else 0), 0
    if b[0] > 0:  # sign of b
        return (0, min(b[1] - 1, a[1]) if a[0] >= 0 else b[1] - 1), 0
    if b[1] < 0:
        return (b[0] + 1, 0), 0
    return (-bm, bm), 0


def _neg(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    (a0, a1) = _present(ivs)[0]
    return (-a1, -a0), 0


def _abs(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    (a0, a1) = _present(ivs)[0]
    lo = 0 if a0 <= 0 <= a1 else min(abs(a0), abs(a1))
    return (lo, max(abs(a0), abs(a1))), 0


def _sign(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    (a0, a1) = _present(ivs)[0]
    return ((a0 > 0) - (a0 < 0), (a1 > 0) - (a1 < 0)), 0


def _relu(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    (a0, a1) = _present(ivs)[0]
    return (max(a0, 0), max(a1, 0)), 0


def _max(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    p = _present(ivs)
    return (max(i[0] for i in p), max(i[1] for i in p)), 0


def _min(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    p = _present(ivs)
    return (min(i[0] for i in p), min(i[1] for i in p)), 0


def _clip(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    x = ivs[0]
    assert x is not None
    lo = ivs[1] if len(ivs) > 1 else None
    hi = ivs[2] if len(ivs) > 2 else None
    if lo is not None:
        x = (max(x[0], lo[0]), max(x[1], lo[1]))
    if hi is not None:
        x = (min(x[0], hi[0]), min(x[1], hi[1]))
    return x, 0


def _where(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    assert ivs[1] is not None and ivs[2] is not None
    return _union(ivs[1], ivs[2]), 0


def _cast_bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    x = ivs[0]
    assert x is not None
    to = info.out_type.dtype
    if to is DType.BOOL:
        return (0, 1), 0
    lo, hi = _dtype_range(to)
    if not (lo <= x[0] and x[1] <= hi):
        raise NotCompilable(f"Cast to {to.name.lower()} may wrap values in {list(x)}")
    return x, 0


def _gather_in_range(info: NodeInfo, ivs: Sequence[Interval | None]) -> bool:
    n = info.in_types[0].shape[info.attrs[0]]  # type: ignore[union-attr]
    idx = ivs[1]
    assert idx is not None
    return n > 0 and -n <= idx[0] and idx[1] <= n - 1


def _gather_bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    data = ivs[0]
    assert data is not None
    if info.out_type.size == 0 or _gather_in_range(info, ivs):
        return data, 0
    return _union(data, (0, 0)), 0  # an index out of range gathers 0


def _reduced_count(info: NodeInfo) -> int:
    shape = info.in_types[0].shape  # type: ignore[union-attr]
    return math.prod(shape[a] for a in info.attrs[2:])


def _reduce_sum_bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    x = ivs[0]
    assert x is not None
    if info.attrs[1] == 0:
        return x, 0
    n = _reduced_count(info)
    if n == 0:
        return (0, 0), 0
    # Every partial sum of k <= n terms lies within [k lo, k hi], so within n * max|x|.
    return (n * x[0], n * x[1]), n * _mag(x)


def _reduce_extreme_bounds(empty: Callable[[DType], int]) -> Bounds:
    def bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
        x = ivs[0]
        assert x is not None
        if info.attrs[1] != 0 and _reduced_count(info) == 0 and info.out_type.size:
            v = empty(info.out_type.dtype)
            if int(float(v)) != v:
                raise NotCompilable(f"an empty reduction gives {v}, which float64 cannot hold")
            return (v, v), 0
        return x, 0

    return bounds


def _arg_bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    d = info.in_types[0].shape[info.attrs[0]]  # type: ignore[union-attr]
    return (0, d - 1), 0


def _sum_of_products(k: int, term: Interval) -> tuple[Interval, int]:
    if k == 0:
        return (0, 0), 0
    return (k * term[0], k * term[1]), k * _mag(term)


def _matmul_k(info: NodeInfo) -> int:
    return info.in_types[0].shape[-1]  # type: ignore[union-attr]


def _matmul_bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    a, b = ivs[0], ivs[1]
    assert a is not None and b is not None
    return _sum_of_products(_matmul_k(info), _products(a, b))


def _gemm_bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    a, b = ivs[0], ivs[1]
    assert a is not None and b is not None
    ta = info.in_types[0]
    assert ta is not None
    k = ta.shape[0] if info.attrs[0] else ta.shape[1]
    (lo, hi), partial = _sum_of_products(k, _products(a, b))
    c = ivs[2] if len(ivs) > 2 else None
    if c is not None:  # C is added after the products, so it takes no part in the partial sums
        lo, hi = lo + c[0], hi + c[1]
    return (lo, hi), partial


def _shifted(x: Interval, z: Interval | None) -> Interval:
    return x if z is None else (x[0] - z[1], x[1] - z[0])


def _matmul_integer_bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    a, b = ivs[0], ivs[1]
    assert a is not None and b is not None
    za = ivs[2] if len(ivs) > 2 else None
    zb = ivs[3] if len(ivs) > 3 else None
    return _sum_of_products(_matmul_k(info), _products(_shifted(a, za), _shifted(b, zb)))


def _conv_integer_bounds(info: NodeInfo, ivs: Sequence[Interval | None]) -> tuple[Interval, int]:
    x, w = ivs[0], ivs[1]
    assert x is not None and w is not None
    zx = ivs[2] if len(ivs) > 2 else None
    zw = ivs[3] if len(ivs) > 3 else None
    tw = info.in_types[1]
    assert tw is not None
    term = _union(_products(_shifted(x, zx), _shifted(w, zw)), (0, 0))  # padding adds 0 terms
    return _sum_of_products(math.prod(tw.shape[1:]), term)


# ---------------------------------------------------------------------------------------------
# Kernels over the float64 carrier: factories (info, input intervals) -> kernel.

Factory = Callable[[NodeInfo, Sequence["Interval | None"]], Kernel]


def _ufunc(f: Callable[..., np.ndarray]) -> Factory:
    return lambda info, ivs: f


TILE_ROW = 1024  # elements per row when a short constant is tiled against a large operand


def _binary(f: np.ufunc) -> Factory:
    """f(a, b); where one operand is a constant repeating along the leading axes with a short
    period (a bias over a product's rows), the other is viewed as rows of a constant multiple of
    that period and the constant tiled once to one such row: numpy's loop over a short broadcast
    axis is two to three times slower than over a long one. Same values, element for element."""

    def factory(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
        shape, size = info.out_type.shape, info.out_type.size
        for j in (0, 1):
            c, other = info.consts[j], info.in_types[1 - j]
            if c is None or other is None or other.shape != shape or size < NARROW_MIN_ELEMENTS or c.ndim > len(shape):
                continue
            period = c.size
            if not 1 <= period < 32 or c.shape != shape[len(shape) - c.ndim :] or c.ndim == 0:
                continue
            rows = size // period
            r = max(d for d in range(1, TILE_ROW // period + 1) if rows % d == 0)
            if r == 1:
                continue
            return _tiled(f, j, np.tile(c.reshape(-1), r), shape)
        return f

    return factory


def _tiled(f: np.ufunc, j: int, row: np.ndarray, shape: tuple[int, ...]) -> Kernel:
    """f(a, b) with operand j the constant, given as `row` (its period tiled) against the other
    operand's rows of that length."""
    tiles: dict[np.dtype, np.ndarray] = {}

    def tiled(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        x, k = (b, a) if j == 0 else (a, b)
        t = tiles.get(k.dtype)
        if t is None:  # the constant's carrier (float32 or float64) decides the width, as in f(a, b)
            t = tiles[k.dtype] = row.astype(k.dtype)
        x = x.reshape(-1, row.size)
        return (f(t, x) if j == 0 else f(x, t)).reshape(shape)

    return tiled


def _integer_sign(x: np.ndarray) -> np.ndarray:
    # On integers sign(x) is x clipped to [-1, 1], and one clip pass is twice as fast as np.sign.
    return _clip_ufunc(x, -1.0, 1.0)


def _identity(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    return lambda x: x


def _broadcast_to(shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
    def fit(y: np.ndarray) -> np.ndarray:
        return y if y.shape == shape else np.broadcast_to(y, shape)

    return fit


def _single_value(v: np.ndarray | None) -> int | None:
    """The one value of a fixed input all of whose elements are equal, else None."""
    if v is None or v.size == 0:
        return None
    first = int(v.reshape(-1)[0])
    return first if bool(np.all(v == first)) else None


def _div(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    fit = _broadcast_to(info.out_type.shape)
    c = _single_value(info.consts[1])
    if c == 0:
        zeros = np.zeros(info.out_type.shape)
        return lambda a, b: zeros
    if c == 1:
        return lambda a, b: fit(a)
    if c is not None and abs(c) & (abs(c) - 1) == 0:  # +-2^k: the product is exact
        inv = 1.0 / c
        if info.in_types[0] is not None and info.in_types[0].shape == info.out_type.shape and info.out_type.shape:

            def scaled_in_place(a: np.ndarray, b: np.ndarray) -> np.ndarray:
                y = np.multiply(a, inv)
                return np.trunc(y, out=y)

            return scaled_in_place

        def scaled(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            y = np.multiply(a, inv)
            return fit(np.trunc(y, out=y) if y.ndim else np.trunc(y))

        return scaled
    b_iv = ivs[1]
    assert b_iv is not None
    if b_iv[0] > 0 or b_iv[1] < 0:
        return lambda a, b: np.trunc(a / b)
    shape = info.out_type.shape

    def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # quotients where b != 0, and the zeros they are written over elsewhere
        q = np.zeros(shape, np.result_type(a, b))
        np.divide(a, b, out=q, where=b != 0)
        return np.trunc(q, out=q)

    return div


def _mod(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    f = np.fmod if info.attrs[0] == 1 else np.remainder  # both exact on integers below 2^53
    b_iv = ivs[1]
    assert b_iv is not None
    if b_iv[0] > 0 or b_iv[1] < 0:
        return lambda a, b: f(a, b)

    def mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        zero = b == 0
        return np.where(zero, 0.0, f(a, np.where(zero, 1.0, b)))

    return mod


def _variadic(f: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Factory:
    def factory(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
        fit = _broadcast_to(info.out_type.shape)
        return lambda *xs: fit(functools.reduce(f, xs))

    return factory


def _clip_kernel(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    has_lo = len(ivs) > 1 and ivs[1] is not None
    has_hi = len(ivs) > 2 and ivs[2] is not None

    if has_lo and has_hi:
        # numpy's clip ufunc is minimum(maximum(x, lo), hi) (lo > hi gives hi) in one pass: twice
        # as fast as the two at every size, and np.clip's own checks cost ~1 us a call more.
        return _clip_ufunc

    def clip(x: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
        if has_lo:
            x = np.maximum(x, lo)
        if has_hi:
            x = np.minimum(x, hi)
        return x

    return clip


def _cast(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    src = info.in_types[0]
    assert src is not None
    if info.out_type.dtype is DType.BOOL:
        return lambda x: np.not_equal(x, 0)
    if src.dtype is DType.BOOL:
        return lambda x: x.astype(np.float64)
    return lambda x: x  # the bounds prove the value fits the target dtype: no wrap


def _reshape(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    shape = info.out_type.shape
    return lambda x: x.reshape(shape)


def _transpose(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    perm = info.attrs
    return lambda x: x.transpose(perm)


def _slice(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    x = info.in_types[0]
    assert x is not None
    index = slice_index(info.attrs, len(x.shape))
    return lambda x: x[index]  # a view: no kernel writes into its inputs


def _expand(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    shape = info.out_type.shape
    return lambda x: np.broadcast_to(x, shape)


def _reference_kernel(name: str) -> Factory:
    # Data movement is dtype-agnostic: the reference kernel runs on the carrier as it is.
    def factory(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
        run, attrs = REGISTRY[name].run, info.attrs
        return lambda *xs: run(xs, attrs)

    return factory


def _gather(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    axis = info.attrs[0]
    if _gather_in_range(info, ivs):
        return lambda data, idx: data.take(idx.astype(np.intp), axis=axis)
    return _reference_kernel("Gather")(info, ivs)


def _reduce_sum(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    shape, axes = info.out_type.shape, tuple(info.attrs[2:])
    x_shape = info.in_types[0].shape  # type: ignore[union-attr]
    n = _reduced_count(info)
    if info.attrs[1] and n and info.out_type.size and axes in (tuple(range(len(axes))), tuple(range(len(x_shape) - len(axes), len(x_shape)))):
        # Leading or trailing axes: one BLAS product with ones (in x's width), exact under the same bound.
        ones = {np.dtype(np.float64): np.ones(n), np.dtype(np.float32): np.ones(n, np.float32)}
        if axes[0] == 0:
            return lambda x: (ones[x.dtype] @ x.reshape(n, -1)).reshape(shape)
        return lambda x: (x.reshape(-1, n) @ ones[x.dtype]).reshape(shape)
    return _reduce(np.add, None)(info, ivs)


def _where_kernel(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    if info.out_type.dtype is not DType.BOOL and _single_value(info.consts[2]) == 0:
        fit = _broadcast_to(info.out_type.shape)
        return lambda c, a, b: fit(np.multiply(a, c))  # a * False is 0 (or -0.0, which is 0)
    return np.where


# longest axis a reduction folds slice by slice, and most elements after it
FOLD_MAX = 32
FOLD_INNER = 32


def _reduce(ufunc: np.ufunc, empty: Callable[[DType], int] | None) -> Factory:
    def factory(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
        keep, m, axes = bool(info.attrs[0]), info.attrs[1], tuple(info.attrs[2:])
        shape, n, f = info.out_type.shape, _reduced_count(info), ufunc.reduce
        if m == 0:
            return lambda x: x
        if empty is not None and n == 0:
            d = info.out_type.dtype
            initial = bool(empty(d)) if d is DType.BOOL else float(empty(d))
            return lambda x: np.asarray(f(x, axis=axes, keepdims=keep, initial=initial)).reshape(shape)
        x_shape = info.in_types[0].shape  # type: ignore[union-attr]
        if len(axes) == 1 and 2 <= n <= FOLD_MAX and shape and math.prod(shape) >= 16 * n and math.prod(x_shape[axes[0] + 1 :]) < FOLD_INNER:
            # numpy reduces a short axis with few elements after it in short inner loops (~2-10x
            # slower); fold its slices instead: the same values (exact integers, max/min/sum in
            # any order). For fewer outputs than 16 per slice, the n calls cost more than the
            # reduction saves; over 32 elements after the axis, numpy's own loop is faster.
            axis = axes[0]

            def fold(x: np.ndarray) -> np.ndarray:
                xs = np.moveaxis(x, axis, 0)
                out = ufunc(xs[0], xs[1])
                for i in range(2, n):
                    ufunc(out, xs[i], out=out)
                return out.reshape(shape)

            return fold
        return lambda x: np.asarray(f(x, axis=axes, keepdims=keep)).reshape(shape)

    return factory


def _arg(name: str) -> Factory:
    def factory(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
        run, attrs = REGISTRY[name].run, info.attrs
        return lambda x: run((x,), attrs).astype(np.float64)

    return factory


def _matmul(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    return lambda a, b: np.asarray(np.matmul(a, b))


def _gemm(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    ta, tb = info.attrs

    def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        y = np.matmul(a.T if ta else a, b.T if tb else b)
        return y if c is None else y + c

    return gemm


def _zero_point(z: np.ndarray | None) -> float:
    return 0.0 if z is None else float(np.asarray(z).reshape(-1)[0])


def _matmul_integer(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    def mmi(a: np.ndarray, b: np.ndarray, za: np.ndarray | None = None, zb: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(np.matmul(a - _zero_point(za), b - _zero_point(zb)))

    return mmi


FLOAT32_EXACT = 2**24  # float32 holds every integer below this in magnitude

NARROW_MIN_ELEMENTS = 1 << 14  # smallest slot converted to float32 for the ops after it

F64_RESULT = frozenset({"ConvInteger", "ArgMax", "ArgMin"})  # kernels that give float64 whatever their inputs

# Ops that make new values (the others select, compare or move them)
ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div", "Mod", "MatMul", "Gemm", "MatMulInteger", "ReduceSum", "ConvInteger"})


def _exact_in_float32(info: NodeInfo, out: Interval, partial: int) -> bool:
    """Whether a node is exact in float32 on integer inputs below 2^24: its value and every
    partial sum are integers below 2^24, so each float32 sum, product and power-of-two scaling
    is exact whatever the order, `trunc(fl(a / b))` is (the argument of SPEC 4.7 for float64,
    with 2^24 for 2^53), and so is a remainder. An empty ReduceMin's dtype maximum is not."""
    return info.out_type.dtype is DType.BOOL or max(_mag(out), partial) < FLOAT32_EXACT


def conv_rows(x_shape: tuple[int, ...], w_shape: tuple[int, ...], attrs: tuple[int, ...]) -> np.ndarray:
    """For each (group, channel in group, kernel tap, output position), the row of x laid out as
    (C * prod(spatial) + 1, N) that the tap reads; padding reads the last row, which is zero.

    Shape (group, C/group * taps * P), in w's (C/group, kernel...) order, so that gathering these
    rows and one matmul per group is the convolution (im2col without sliding windows)."""
    _, group, kernel, pb, pe, strides, dilations = conv_params(attrs)
    spatial = x_shape[2:]
    out = conv_out_dims(spatial, kernel, pb, pe, strides, dilations)
    n, size = len(kernel), math.prod(spatial)
    flat = np.zeros((1,) * (2 * n), dtype=np.intp)  # axes: kernel taps..., output positions...
    valid = np.ones((1,) * (2 * n), dtype=np.bool_)
    place = size
    for d, (dim, k, b, s, dl, o) in enumerate(zip(spatial, kernel, pb, strides, dilations, out, strict=True)):
        place //= dim
        shape = [1] * (2 * n)
        shape[d], shape[n + d] = k, o
        i = (np.arange(o)[None, :] * s + np.arange(k)[:, None] * dl - b).reshape(shape)
        flat = flat + i * place
        valid = valid & (i >= 0) & (i < dim)
    channels = x_shape[1]
    rows = flat + (np.arange(channels) * size).reshape((channels,) + (1,) * (2 * n))
    return np.where(valid, rows, channels * size).reshape(group, -1)


def _conv_integer(info: NodeInfo, ivs: Sequence[Interval | None]) -> Kernel:
    attrs, shape = info.attrs, info.out_type.shape
    tx, tw = info.in_types[0], info.in_types[1]
    assert tx is not None and tw is not None
    nb, c, m = tx.shape[0], tx.shape[1], tw.shape[0]
    group, taps, p = conv_params(attrs)[1], math.prod(tw.shape[2:]), math.prod(shape[2:])
    k = tw.shape[1] * taps

    def reference(x: np.ndarray, w: np.ndarray, zx: np.ndarray | None = None, zw: np.ndarray | None = None) -> np.ndarray:
        return conv_accumulate(x, w, int(_zero_point(zx)), int(_zero_point(zw)), attrs, np.float64).reshape(shape)

    # float32 when every factor and partial sum is an integer below 2^24: exact there, and half the bytes
    x_iv, w_iv = ivs[0], ivs[1]
    assert x_iv is not None and w_iv is not None
    factors = (_shifted(x_iv, ivs[2] if len(ivs) > 2 else None), _shifted(w_iv, ivs[3] if len(ivs) > 3 else None))
    narrow = max(_conv_integer_bounds(info, ivs)[1], *map(_mag, factors)) < FLOAT32_EXACT
    dtype = np.float32 if narrow else np.float64
    if 0 in (nb, c, m, p) or group * k * p * nb * np.dtype(dtype).itemsize > IM2COL_BYTES:
        return reference
    rows = conv_rows(tx.shape, tw.shape, attrs).reshape(-1)
    size = math.prod(tx.shape[1:])

    def weights(w: np.ndarray, zw: np.ndarray | None) -> np.ndarray:
        return (w - _zero_point(zw)).astype(dtype).reshape(group, m // group, k)

    # Constant weights (and weight zero point, if any) are shifted and laid out once.
    w_const, zw_const = info.consts[1], info.consts[3] if len(info.consts) > 3 else None
    has_zw = len(ivs) > 3 and ivs[3] is not None
    fixed = None
    if w_const is not None and (zw_const is not None or not has_zw):
        fixed = weights(to_carrier(w_const), None if zw_const is None else to_carrier(zw_const))

    def conv(x: np.ndarray, w: np.ndarray, zx: np.ndarray | None = None, zw: np.ndarray | None = None) -> np.ndarray:
        xt = np.empty((size + 1, nb), dtype=dtype)
        xt[-1] = 0
        np.subtract(x.reshape(nb, -1).T, _zero_point(zx), out=xt[:-1], casting="unsafe")
        patches = xt.take(rows, axis=0).reshape(group, k, p * nb)
        acc = np.matmul(weights(w, zw) if fixed is None else fixed, patches)
        # (G, M/G, P, N) -> (N, M, P): output channel m = g * M/G + m'
        return np.ascontiguousarray(acc.reshape(m, p, nb).transpose(2, 0, 1), dtype=np.float64).reshape(shape)

    return conv


@dataclass(frozen=True)
class Rule:
    bounds: Bounds
    kernel: Factory


def _dtype_min(d: DType) -> int:
    return d.min


def _dtype_max(d: DType) -> int:
    return d.max


RULES: dict[str, Rule] = {
    "Identity": Rule(_same, _identity),
    "Add": Rule(_add, _binary(np.add)),
    "Sub": Rule(_sub, _binary(np.subtract)),
    "Mul": Rule(_mul, _binary(np.multiply)),
    "Div": Rule(_div_bounds, _div),
    "Mod": Rule(_mod_bounds, _mod),
    "Neg": Rule(_neg, _ufunc(np.negative)),
    "Abs": Rule(_abs, _ufunc(np.abs)),
    "Sign": Rule(_sign, lambda info, ivs: _integer_sign),
    "Relu": Rule(_relu, lambda info, ivs: lambda x: np.maximum(x, 0.0)),
    "Max": Rule(_max, _variadic(np.maximum)),
    "Min": Rule(_min, _variadic(np.minimum)),
    "Clip": Rule(_clip, _clip_kernel),
    "Where": Rule(_where, _where_kernel),
    "Equal": Rule(_boolean, _ufunc(np.equal)),
    "Less": Rule(_boolean, _ufunc(np.less)),
    "Greater": Rule(_boolean, _ufunc(np.greater)),
    "LessOrEqual": Rule(_boolean, _ufunc(np.less_equal)),
    "GreaterOrEqual": Rule(_boolean, _ufunc(np.greater_equal)),
    "Not": Rule(_boolean, _ufunc(np.logical_not)),
    "And": Rule(_boolean, _ufunc(np.logical_and)),
    "Or": Rule(_boolean, _ufunc(np.logical_or)),
    "Xor": Rule(_boolean, _ufunc(np.logical_xor)),
    "Cast": Rule(_cast_bounds, _cast),
    "Reshape": Rule(_same, _reshape),
    "Transpose": Rule(_same, _transpose),
    "Expand": Rule(_same, _expand),
    "Concat": Rule(_union_of_all, _reference_kernel("Concat")),
    "Slice": Rule(_same, _slice),
    "Gather": Rule(_gather_bounds, _gather),
    "ReduceSum": Rule(_reduce_sum_bounds, _reduce_sum),
    "ReduceMax": Rule(_reduce_extreme_bounds(_dtype_min), _reduce(np.maximum, _dtype_min)),
    "ReduceMin": Rule(_reduce_extreme_bounds(_dtype_max), _reduce(np.minimum, _dtype_max)),
    "ArgMax": Rule(_arg_bounds, _arg("ArgMax")),
    "ArgMin": Rule(_arg_bounds, _arg("ArgMin")),
    "MatMul": Rule(_matmul_bounds, _matmul),
    "Gemm": Rule(_gemm_bounds, _gemm),
    "MatMulInteger": Rule(_matmul_integer_bounds, _matmul_integer),
    "ConvInteger": Rule(_conv_integer_bounds, _conv_integer),
}


# Ops that only select, move or compare values: they are exact on any float64-representable
# integers, so values beyond 2^53 (e.g. a 2^62 "infinity" sentinel) may pass through them as
# long as every such value is representable; arithmetic on them is refused.
ORDER_ONLY = frozenset({
    "Identity", "Reshape", "Transpose", "Expand", "Slice", "Concat", "Gather", "Where", "Max", "Min", "Clip",
    "Relu", "Neg", "Abs", "ReduceMax", "ReduceMin", "ArgMax", "ArgMin", "Equal", "Less", "Greater",
    "LessOrEqual", "GreaterOrEqual", "Cast",
})  # fmt: skip
MAX_LARGE_ELEMENTS = 1 << 16  # large values checked one by one for representability


_GENUINE_RULES = dict(RULES)  # verdicts are remembered only for these


def check_exact(what: str, dtype: DType, iv: Interval, partial: int = 0, large_ok: bool = False) -> bool:
    """Refuses an interval that could wrap in its dtype or, unless `large_ok`, leave float64's
    exact integers. Returns whether it reaches 2^53 (only possible with `large_ok`)."""
    if dtype is not DType.BOOL and not (dtype.min <= iv[0] and iv[1] <= dtype.max):
        raise NotCompilable(f"{what} may wrap: its values may reach {list(iv)}, beyond {dtype.name.lower()}")
    large = max(_mag(iv), partial) >= EXACT_BOUND
    if large and (not large_ok or partial):
        raise NotCompilable(f"{what} may reach {max(_mag(iv), partial)}, beyond float64's exact integers (2^53)")
    return large


def representable(v: np.ndarray) -> bool:
    """Whether every element is an integer float64 holds exactly."""
    if v.dtype == np.bool_ or v.dtype.itemsize < 8:
        return True
    large = v[(v <= -EXACT_BOUND) | (v >= EXACT_BOUND)]
    return large.size <= MAX_LARGE_ELEMENTS and all(int(float(x)) == int(x) for x in large.tolist())


def to_carrier(v: np.ndarray, carrier: type = np.float64) -> np.ndarray:
    return v if v.dtype == np.bool_ else v.astype(carrier)


def from_carrier(v: np.ndarray, dtype: DType) -> np.ndarray:
    # Exact: the bounds prove v holds integers inside the dtype (-0.0 becomes 0).
    return np.array(v, dtype=dtype.np, order="C")


# ---------------------------------------------------------------------------------------------
# Conformance of the kernels and bound rules


def _narrowed(inputs: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
    """The same case with integer inputs folded into [-2^20, 2^20): inside the exact range."""
    out: list[np.ndarray | None] = []
    for x in inputs:
        if x is None or x.dtype == np.bool_ or x.dtype == np.int8:
            out.append(x)
        else:
            half = 1 << 20
            out.append(((x.astype(np.int64) + half) % (2 * half) - half).astype(x.dtype))
    return out


def _widened(inputs: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
    """int64 inputs times 2^40: beyond 2^53, still exactly representable."""
    return [x * (1 << 40) if x is not None and x.dtype == np.int64 else x for x in inputs]


def _case_ok(name: str, inputs: list[np.ndarray | None], attrs: tuple[int, ...], as_const: bool) -> bool:
    """False if the kernel or the bound rule disagrees with the reference on a case it accepts."""
    ref = REGISTRY[name]
    try:
        in_types = tuple(None if x is None else TensorType(DType.from_numpy(x.dtype), x.shape) for x in inputs)
        out_type = ref.infer(in_types, attrs)
    except Exception:  # noqa: BLE001 - a case the op itself refuses says nothing about the kernel
        return True
    ivs = [None if x is None else _interval(x) for x in inputs]
    consts = tuple(x if as_const else None for x in inputs)
    info = NodeInfo(attrs, in_types, out_type, consts)
    rule = RULES[name]
    order_only = name in ORDER_ONLY
    try:
        for t, iv, x in zip(in_types, ivs, inputs):
            if t is not None and iv is not None and x is not None:
                check_exact("input", t.dtype, iv, large_ok=order_only and representable(x))
        out_iv, partial = rule.bounds(info, ivs)
        check_exact("output", out_type.dtype, out_iv, partial, large_ok=order_only)
    except NotCompilable:
        return True  # outside the proven domain: never compiled
    want = ref.run(inputs, attrs)
    kernel = rule.kernel(info, ivs)
    carriers = [np.float64]
    small = all(x is None or x.dtype == np.bool_ or _fits_float32(x) for x in inputs)
    if small and _exact_in_float32(info, out_iv, partial):
        carriers.append(np.float32)  # where the compiled step may run it in float32 (_carriers)
    for carrier in carriers:
        got = np.asarray(kernel(*[None if x is None else to_carrier(x, carrier) for x in inputs]))
        if got.shape != out_type.shape or want.size and not (out_iv[0] <= int(want.min()) and int(want.max()) <= out_iv[1]):
            return False
        if from_carrier(got, out_type.dtype).tobytes() != want.tobytes():
            return False
    return True


Case = tuple[list["np.ndarray | None"], tuple[int, ...]]


def _extra_cases(name: str, rng: np.random.Generator) -> list[Case]:
    """Cases for this module's own branches: large arrays, divisors and zeros that are constant."""
    ints = lambda shape, dt=np.int64, m=1 << 20: rng.integers(-m, m, shape, endpoint=True).astype(dt)  # noqa: E731
    out: list[Case] = []
    if name == "Clip":
        for lo, hi in ((-5, 5), (5, -5), (-(1 << 19), 1 << 18)):
            for shape in ((), (64,), (1, 64)):
                x = ints((64, 64))
                out.append(([x, np.full(shape, lo, np.int64), np.full(shape, hi, np.int64)], ()))
            out.append(([ints((32, 40)), np.array(lo), None], ()))
            out.append(([ints((32, 40)), None, np.array(hi)], ()))
    if name == "Where":
        for dt in (np.int8, np.int32, np.int64):
            for shape in ((), (1,), (10,), (64, 10), (1, 1, 10)):
                c = rng.integers(0, 2, (64, 10)).astype(np.bool_)
                out.append(([c, ints((64, 10), dt, 100), np.zeros(shape, dt)], ()))
    if name == "ReduceSum":
        for shape in ((64, 64), (3, 4, 5), (0, 5), (7,)):
            for n in range(1, len(shape) + 1):
                for keep in (0, 1):
                    out.append(([ints(shape)], (keep, n, *range(n))))
                    out.append(([ints(shape)], (keep, n, *range(len(shape) - n, len(shape)))))
    if name in ("ReduceMax", "ReduceMin", "ReduceSum"):  # short axes with many outputs: folded slice by slice
        for shape, axis in (((160, 5), 1), ((12, 5, 30), 1), ((7, 9, 20), 2)):
            for keep in (0, 1):
                out.append(([ints(shape)], (keep, 1, axis)))
    if name == "ConvInteger":
        # Partial sums past 2^24 (odd totals float32 cannot hold) must take float64; 1-D and
        # 2-D with padding, strides and groups take the gathered rows in both widths.
        x, w, lowest = np.full((2, 301, 3), 127, np.int8), np.full((2, 301, 1), 127, np.int8), np.array(-128, np.int8)
        out.append(([x, w, lowest, lowest], (1, 1, 1, 0, 0, 1, 1)))
        out.append(([x, -w, lowest, None], (1, 1, 1, 0, 0, 1, 1)))
        for bound in (127, 2):
            x = rng.integers(-128, 128, (3, 4, 9, 7)).astype(np.int8)
            w = rng.integers(-bound, bound + 1, (6, 2, 3, 2)).astype(np.int8)
            zp = [lowest, np.array(-3, np.int8)]
            out.append(([x, w, *zp], (2, 2, 3, 2, 1, 0, 2, 1, 2, 1, 1, 2)))
            out.append(([x[:, :, :, 0], w[:, :, :, 0], *zp], (1, 2, 3, 2, 0, 1, 2)))
    if name == "Slice":
        x = ints((5, 7, 4))
        for a in ((0, 1, 5), (4, -2, 3), (1, 2, 2), (2, 1, 0), (3, -1, 4)):
            for b in ((0, 1, 7), (6, -3, 3), (2, 3, 2), (6, -1, 7)):
                out.append(([x], (*a, *b, 0, 1, 4)))
                out.append(([x[:, :, 1]], (*a, *b)))
    if name in ("Add", "Sub", "Mul"):  # a short constant against a large operand: tiled rows
        for x_shape, c_shape in (((2048, 8), (8,)), ((64, 16, 24), (24,)), ((4099, 4), (4,)), ((16411, 1), (1,))):
            x, c = ints(x_shape), ints(c_shape, m=1 << 10)
            out.append(([x, c], ()))
            out.append(([c, x], ()))
    if name in ("Div", "Mod"):
        attrs = [()] if name == "Div" else [(0,), (1,)]
        for c in (1, -1, 2, -2, 4096, -(1 << 16), 3, -7, 0, 1437):
            for shape in ((), (1, 1), (64,)):
                for a in attrs:
                    out.append(([ints((64, 64)), np.full(shape, c, np.int64)], a))
        # just below 2^24, where float32 quotients are closest to the next integer
        edge = np.arange((1 << 24) - 2048, 1 << 24, dtype=np.int64)
        for c in (3, -7, (1 << 23) + 1, (1 << 24) - 3):
            for a in attrs:
                out.append(([np.concatenate([edge, -edge]).reshape(64, 64), np.array(c, np.int64)], a))
    return out


def _battery(name: str, rng: np.random.Generator) -> list[Case]:
    from verifier.engine.fastpath import _CASES

    return (_CASES[name](rng) if name in _CASES else []) + _extra_cases(name, rng)


def self_test(names: Sequence[str] | None = None, seed: int = 0xC0DE) -> dict[str, bool]:
    """Each op's kernel and bound rule against the reference, bit for bit, on its battery (raw
    and narrowed into the exact range; divisors and weights also as constants). Ops without a battery
    (Concat) run the reference kernel itself and pass by construction."""
    results: dict[str, bool] = {}
    for k, name in enumerate(names if names is not None else RULES):
        rng = np.random.default_rng([seed, k])
        ok = True
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for inputs, attrs in _battery(name, rng):
                variants = [inputs, _narrowed(inputs)]
                if name in ORDER_ONLY:  # the same relations among values far beyond 2^53
                    variants.append(_widened(_narrowed(inputs)))
                for case in variants:
                    for as_const in (False, True) if name in ("Add", "Sub", "Mul", "Div", "Mod", "Where", "ConvInteger") else (False,):
                        try:
                            ok = _case_ok(name, case, attrs, as_const)
                        except Exception:  # noqa: BLE001 - any failure disqualifies the kernel
                            ok = False
                        if not ok:
                            break
                    if not ok:
                        break
                if not ok:
                    break
        results[name] = ok
    return results


_VERDICTS: dict[str, bool] | None = None


def verdicts() -> dict[str, bool]:
    """The self-test's verdict per op: computed once per process, or remembered from an earlier
    process on this machine (verifier.engine.verdicts)."""
    global _VERDICTS
    if _VERDICTS is None:
        genuine = all(RULES.get(k) is r for k, r in _GENUINE_RULES.items()) and RULES.keys() == _GENUINE_RULES.keys()
        _VERDICTS = remembered("compiled", self_test) if genuine else self_test()
    return dict(_VERDICTS)


# ---------------------------------------------------------------------------------------------
# Compiling a program


def _node_infos(program: Program) -> list[NodeInfo]:
    g = program.graph
    fixed = (SlotKind.CONST, SlotKind.DATA)
    infos = []
    for node in g.nodes:
        in_types = tuple(None if i is None else g.slots[i].type for i in node.inputs)
        consts = tuple(None if i is None or g.slots[i].kind not in fixed else g.slots[i].value for i in node.inputs)
        infos.append(NodeInfo(node.attrs, in_types, g.slots[node.output].type, consts))
    return infos


def _extreme_differences(program: Program) -> dict[int, int]:
    """Node index -> the sign (+1: >= 0, -1: <= 0) of each Sub of a value and its own group's
    extreme, which intervals alone cannot see: `max(x) - x >= 0`, `x - max(x) <= 0`,
    `x - min(x) >= 0`, `min(x) - x <= 0` elementwise, the extreme a ReduceMax/ReduceMin of that
    very slot kept in its shape (keepdims, or over every axis), as a softmax's shift is."""
    g = program.graph
    producer = {node.output: node for node in g.nodes}
    signs: dict[int, int] = {}
    for n, node in enumerate(g.nodes):
        if node.op.name != "Sub" or len(node.inputs) != 2 or None in node.inputs:
            continue
        a, b = node.inputs
        for extreme, x, sign_of_max in ((a, b, 1), (b, a, -1)):
            r = producer.get(extreme)  # type: ignore[arg-type]
            if r is None or r.op.name not in ("ReduceMax", "ReduceMin") or r.inputs[0] != x:
                continue
            shape = g.slots[x].type.shape  # type: ignore[index]
            keep, m = r.attrs[0], r.attrs[1]
            if keep or m == len(shape):  # each value meets its own group's extreme
                signs[n] = sign_of_max if r.op.name == "ReduceMax" else -sign_of_max
    return signs


class _Analysis:
    """Slot bounds of a program's step graph, for a given bound on the state."""

    def __init__(self, program: Program, infos: list[NodeInfo]) -> None:
        self.program = program
        self.infos = infos
        g = program.graph
        base: list[Interval | None] = [None] * g.n_slots
        self.base_large: set[int] = set()  # data and constants holding values beyond 2^53
        for i, s in enumerate(g.slots):
            if s.kind in (SlotKind.CONST, SlotKind.DATA):
                assert s.value is not None
                base[i] = _interval(s.value)
                if check_exact(f"value '{s.name}'", s.type.dtype, base[i], large_ok=representable(s.value)):  # type: ignore[arg-type]
                    self.base_large.add(i)
        if program.step_slot is not None:
            base[program.step_slot] = (0, program.steps - 1)
            check_exact("the step index", DType.INT64, (0, program.steps - 1))
        self.base = base
        self.signs = _extreme_differences(program)

    def propagate(self, state: Sequence[Interval]) -> list[Interval | None]:
        g, p = self.program.graph, self.program
        b = list(self.base)
        large = set(self.base_large)
        for s, iv in zip(p.state_slots, state):
            check_exact(f"state '{g.slots[s].name}'", g.slots[s].type.dtype, iv)
            b[s] = iv
        for n, (node, info) in enumerate(zip(g.nodes, self.infos)):
            ivs = [None if i is None else b[i] for i in node.inputs]
            order_only = node.op.name in ORDER_ONLY
            if not order_only and any(i in large for i in node.inputs if i is not None):
                raise NotCompilable(f"{node.name} computes with values beyond float64's exact integers (2^53)")
            try:
                out, partial = RULES[node.op.name].bounds(info, ivs)
            except NotCompilable as e:
                raise NotCompilable(f"{node.name}: {e}") from None
            sign = self.signs.get(n)
            if sign is not None:  # both intervals hold every value, and so does their intersection
                out = (max(out[0], 0), out[1]) if sign > 0 else (out[0], min(out[1], 0))
            if check_exact(node.name, info.out_type.dtype, out, partial, large_ok=order_only):
                large.add(node.output)
            b[node.output] = out
        return b


@dataclass
class CompiledStep:
    """A program's step as one function over float64 arrays, valid inside proven bounds."""

    program: Program
    step: Callable[..., tuple[np.ndarray, ...]]
    # entry[k]: bounds of the state at step k; the last entry holds for every later step.
    entry: list[list[Interval]]
    # the carrier of each state slot: float32 where every value it takes is below 2^24
    state_carriers: tuple[type, ...]

    def accepts(self, t0: int, t1: int, state: Sequence[np.ndarray]) -> bool:
        """Whether the proof covers running steps t0..t1-1 from this state at step t0."""
        p = self.program
        if not 0 <= t0 <= t1 <= p.steps or len(state) != len(p.state_slots):
            return False
        bounds = self.entry[min(t0, len(self.entry) - 1)]
        for v, s, (lo, hi) in zip(state, p.state_slots, bounds):
            t = p.graph.slots[s].type
            if not isinstance(v, np.ndarray) or v.dtype != t.dtype.np or v.shape != t.shape:
                return False
            if v.size and not (lo <= int(v.min()) and int(v.max()) <= hi):
                return False
        return True

    def run(self, t0: int, t1: int, state: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """The state at step t1 from the state at step t0, or None if the proof does not cover it."""
        if not self.accepts(t0, t1, state):
            return None
        values = tuple(to_carrier(v, c) for v, c in zip(state, self.state_carriers, strict=True))
        step = self.step
        for t in range(t0, t1):
            values = step(t, *values)
        p = self.program
        return [from_carrier(v, p.graph.slots[s].type.dtype) for v, s in zip(values, p.state_slots)]


def _hull(a: list[Interval | None], b: list[Interval | None]) -> list[Interval | None]:
    return [y if x is None else x if y is None else _union(x, y) for x, y in zip(a, b)]


def _state_bounds(program: Program, analysis: _Analysis) -> tuple[list[list[Interval]], list[Interval | None]]:
    """Per-step state bounds from the initial state; the last one is closed under the step
    (a fixed point), or covers every step because all T were iterated."""
    g, p = program.graph, program
    state = [_interval(v) for v in p.initial_state()]
    entry = [state]
    hull: list[Interval | None] = [None] * g.n_slots
    for _ in range(min(p.steps, MAX_ITERATIONS)):
        b = analysis.propagate(state)
        hull = _hull(hull, b)
        nxt = [_union(s, b[n]) for s, n in zip(state, p.next_slots)]  # type: ignore[arg-type]
        if nxt == state:
            return entry, hull
        state = nxt
        entry.append(state)
    if len(entry) > p.steps:  # all T steps iterated: entry[t] bounds the state at step t
        return entry, hull
    extrapolated = _extrapolate(program, analysis, entry)
    if extrapolated is not None:
        bound, b = extrapolated
        entry.append(bound)
        return entry, _hull(hull, b)
    # Widen what still grows to its dtype's range, and require that to be closed.
    widened = [s if s == e else _dtype_range(g.slots[slot].type.dtype) for s, e, slot in zip(state, entry[-2], p.state_slots)]
    try:
        b = analysis.propagate(widened)
    except NotCompilable as e:
        raise NotCompilable(f"the state's bounds do not settle within {MAX_ITERATIONS} steps ({e})") from None
    if any(not (w[0] <= b[n][0] and b[n][1] <= w[1]) for w, n in zip(widened, p.next_slots)):  # type: ignore[index]
        raise NotCompilable(f"the state's bounds do not settle within {MAX_ITERATIONS} steps")
    entry.append(widened)
    return entry, _hull(hull, b)


ADD_CHAIN_DEPTH = 8  # how many Adds deep an accumulator's next value is searched


def _accumulators(program: Program) -> dict[int, list[int]]:
    """State index -> slots of its increments, for every state whose next value is the state
    plus other values through Adds: s' = (s + x_1) + (x_2 + ...), s itself appearing once."""
    producer = {node.output: node for node in program.graph.nodes}

    def increments(slot: int, s: int, depth: int) -> list[int] | None:
        if slot == s:
            return []
        node = producer.get(slot)
        if depth == 0 or node is None or node.op.name != "Add" or len(node.inputs) != 2 or None in node.inputs:
            return None
        a, b = node.inputs
        for via, other in ((a, b), (b, a)):
            found = increments(via, s, depth - 1)  # type: ignore[arg-type]
            if found is not None:
                return [*found, other]  # type: ignore[list-item]
        return None

    out: dict[int, list[int]] = {}
    for i, (s, nxt) in enumerate(zip(program.state_slots, program.next_slots)):
        terms = increments(nxt, s, ADD_CHAIN_DEPTH)
        if terms:
            out[i] = terms
    return out


def _extrapolate(
    program: Program, analysis: _Analysis, entry: list[list[Interval]]
) -> tuple[list[Interval], list[Interval | None]] | None:
    """One bound W for every step after the iterated ones, when only accumulators still grow.

    An accumulator's next value is s + x (x a sum of increments). If x stays inside [dlo, dhi] whenever the state is in
    W, then by induction s_t lies in [lo + (t - K) * min(dlo, 0), hi + (t - K) * max(dhi, 0)]
    for t >= K, inside W up to T; every other state must be closed under W. The interval rules
    contain every output for inputs inside their intervals, so propagating W once bounds x over
    all those steps. A guessed increment that propagation exceeds is widened and tried again."""
    state, previous = entry[-1], entry[-2]  # S_K bounds every step up to K = len(entry) - 1
    acc = _accumulators(program)
    growing = [i for i, (s, e) in enumerate(zip(state, previous)) if s != e]
    if not growing or any(i not in acc for i in growing):
        return None
    left = program.steps - (len(entry) - 1)
    delta = {i: (state[i][0] - previous[i][0], state[i][1] - previous[i][1]) for i in growing}
    for _ in range(8):
        bound = list(state)
        for i, (dlo, dhi) in delta.items():
            bound[i] = (state[i][0] + left * min(dlo, 0), state[i][1] + left * max(dhi, 0))
        try:
            b = analysis.propagate(bound)
        except NotCompilable:
            return None
        wider = False
        for i, (s, nxt) in enumerate(zip(program.state_slots, program.next_slots)):
            out = b[nxt]
            assert out is not None
            if i in delta:
                xs = [b[x] for x in acc[i]]
                x = (sum(v[0] for v in xs), sum(v[1] for v in xs))  # type: ignore[index]
                dlo, dhi = delta[i]
                if x[0] < dlo or x[1] > dhi:
                    delta[i] = (min(dlo, x[0]), max(dhi, x[1]))
                    wider = True
            elif not (bound[i][0] <= out[0] and out[1] <= bound[i][1]):
                return None
        if not wider:
            return bound, b
    return None


def _carriers(program: Program, infos: list[NodeInfo], hull: list[Interval | None]) -> tuple[list[bool], list[bool]]:
    """Which slots are held in float32, and which nodes compute in float32.

    A node may compute in float32 when it is exact there: an op that only selects, compares or
    negates values always is, an arithmetic op where `_exact_in_float32` proves it. It does when its float
    inputs that are not constants are all float32 (and it has one at least); otherwise its
    float32 inputs are widened first and its constants given in float64, so that numpy never
    computes in float32 a value that float32 cannot hold, and never mixes widths in one call.
    Data, constants and state below 2^24 are held in float32 only where that pays: where some
    arithmetic node computes in float32 on them, directly or through ops that move or select
    values (otherwise each step would only widen them again)."""
    g = program.graph
    fixed = (SlotKind.CONST, SlotKind.DATA)

    def is_float(i: int | None) -> bool:
        return i is not None and g.slots[i].type.dtype is not DType.BOOL

    exact = []
    for node, info in zip(g.nodes, infos):
        try:
            _, partial = RULES[node.op.name].bounds(info, [None if i is None else hull[i] for i in node.inputs])
        except NotCompilable:  # the bounds of a step hold; those of all steps at once need not
            exact.append(False)
            continue
        exact.append(_exact_in_float32(info, hull[node.output], partial))  # type: ignore[arg-type]
    # the inputs whose width decides the node's: a Gather's result is as wide as its data
    width_inputs = [[i for i in (node.inputs[:1] if node.op.name == "Gather" else node.inputs) if is_float(i)] for node in g.nodes]
    # Large slots below 2^24 may be held in float32 even where computed in float64 (the data,
    # the state, a rescaled product): narrowing them once can pay for every op after them.
    # Small ones are not worth a conversion: there a call costs more than its bytes.
    candidates = {
        i for i in range(g.n_slots)
        if is_float(i) and g.slots[i].type.size >= NARROW_MIN_ELEMENTS and hull[i] is not None and _mag(hull[i]) < FLOAT32_EXACT  # type: ignore[arg-type]
    }  # fmt: skip

    def plan(held: set[int]) -> tuple[list[bool], list[bool]]:
        narrow = [i in held for i in range(g.n_slots)]
        computes32 = []
        for n, (node, info) in enumerate(zip(g.nodes, infos)):
            ins = width_inputs[n]
            n32 = exact[n] and any(narrow[i] for i in ins) and all(narrow[i] for i in ins if g.slots[i].kind not in fixed)
            computes32.append(n32)
            if info.out_type.dtype is DType.BOOL:
                narrow[node.output] = False
            elif n32 and node.op.name not in F64_RESULT:
                narrow[node.output] = True
        return narrow, computes32

    # Start from every candidate and drop those no float32 arithmetic uses (directly or through
    # moves and selections): each step would only widen them again.
    held = set(candidates)
    while True:
        narrow, computes32 = plan(held)
        useful = [False] * g.n_slots
        for n in reversed(range(len(g.nodes))):
            if computes32[n] and (g.nodes[n].op.name in ARITHMETIC or useful[g.nodes[n].output]):
                for i in width_inputs[n]:
                    useful[i] = True
        kept = {i for i in held if useful[i]}
        if kept == held:
            return narrow, computes32
        held = kept


def _generate(
    program: Program,
    kernels: list[Kernel],
    carrier: dict[int, np.ndarray],
    narrow: Sequence[bool],
    computes32: Sequence[bool],
) -> Callable[..., tuple]:
    """Source of one step over local variables; every name is generated from slot numbers."""
    g, p = program.graph, program
    lines: list[str] = []
    widened: set[int] = set()  # slots whose float64 copy this step has made already
    wide_consts: set[int] = set()  # constants given in float64 (their carrier is float32)
    narrow_consts: set[int] = set()  # constants given in float32 (their carrier is float64)

    @functools.cache
    def fits_float32(i: int) -> bool:  # once per constant, however many nodes read it
        return _fits_float32(carrier[i])

    def arg(n: int, i: int | None) -> str:
        if i is None:
            return "None"
        if i in carrier and carrier[i].dtype == np.float64 and computes32[n] and fits_float32(i):
            narrow_consts.add(i)
            return f"n{i}"  # the constant's float32 copy, made once
        if computes32[n] or not narrow[i]:
            return f"c{i}" if i in carrier else f"v{i}"
        if i in carrier:
            wide_consts.add(i)
            return f"w{i}"  # the constant's float64 copy, made once
        if i not in widened:
            widened.add(i)
            lines.append(f"    x{i} = _wide(v{i})")
        return f"x{i}"

    def ref(i: int) -> str:
        return f"c{i}" if i in carrier else f"v{i}"

    def result(s: int, nxt: int) -> str:  # the next state in its slot's carrier
        if narrow[s] == narrow[nxt]:
            return ref(nxt)
        return f"_narrow({ref(nxt)})" if narrow[s] else f"_wide({ref(nxt)})"

    params = ", ".join(f"v{s}" for s in p.state_slots)
    lines.append(f"def step(t, {params}):")
    if p.step_slot is not None:
        lines.append(f"    v{p.step_slot} = _asarray(float(t))")
    for n, node in enumerate(g.nodes):
        args = ", ".join(arg(n, i) for i in node.inputs)
        if narrow[node.output] and (not computes32[n] or node.op.name in F64_RESULT):  # computed exactly in float64, held in float32
            lines.append(f"    v{node.output} = _narrow(k{n}({args}))")
        else:
            lines.append(f"    v{node.output} = k{n}({args})")
    lines.append(f"    return ({', '.join(result(s, x) for s, x in zip(p.state_slots, p.next_slots))},)")
    namespace: dict[str, object] = {"_asarray": np.asarray, "_wide": _wide, "_narrow": _narrow_carrier}
    namespace.update({f"k{n}": k for n, k in enumerate(kernels)})
    namespace.update({f"c{i}": v for i, v in carrier.items()})
    namespace.update({f"w{i}": _wide(carrier[i]) for i in wide_consts})
    namespace.update({f"n{i}": _narrow_carrier(carrier[i]) for i in narrow_consts})
    exec(compile("\n".join(lines), f"<bisectml step {p.id.hex()[:12]}>", "exec"), namespace)  # noqa: S102
    return namespace["step"]  # type: ignore[return-value]


def _fits_float32(v: np.ndarray) -> bool:
    return not v.size or float(np.max(np.abs(v))) < FLOAT32_EXACT


def _wide(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64, copy=False)


def _narrow_carrier(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32, copy=False)


def _scalar_safe(kernel: Kernel) -> Kernel:
    # numpy ufuncs return numpy scalars for 0-d operands; every value in the carrier is an array.
    return lambda *xs: np.asarray(kernel(*xs))


def compile_step(program: Program) -> CompiledStep:
    """The program's step compiled over float64, or NotCompilable saying why not. Only called
    for programs that run their steps as Program does (Program.compiled checks)."""

    g = program.graph
    ops = {node.op.name for node in g.nodes}
    unknown = sorted(ops - set(RULES))
    if unknown:
        raise NotCompilable(f"ops {unknown} have no compiled kernel")
    failed = sorted(name for name in ops if not verdicts().get(name, False))
    if failed:
        raise NotCompilable(f"ops {failed} failed the compiled kernels' self-test on this machine")
    infos = _node_infos(program)
    analysis = _Analysis(program, infos)
    entry, hull = _state_bounds(program, analysis)
    kernels = []
    for node, info in zip(g.nodes, infos):
        ivs = [None if i is None else hull[i] for i in node.inputs]
        k = RULES[node.op.name].kernel(info, ivs)
        kernels.append(_scalar_safe(k) if info.out_type.shape == () else k)
    narrow, computes32 = _carriers(program, infos, hull)
    carrier = {
        i: to_carrier(s.value, np.float32 if narrow[i] else np.float64)  # type: ignore[arg-type]
        for i, s in enumerate(g.slots)
        if s.kind in (SlotKind.CONST, SlotKind.DATA)
    }
    if sum(v.nbytes for v in carrier.values()) > MAX_CARRIER_BYTES:
        raise NotCompilable(f"its data and constants take more than {MAX_CARRIER_BYTES >> 20} MiB as float64")
    state_carriers = tuple(np.float32 if narrow[s] else np.float64 for s in program.state_slots)
    compiled = CompiledStep(program, _generate(program, kernels, carrier, narrow, computes32), entry, state_carriers)
    # The whole step against the reference once, from the initial state.
    state = program.initial_state()
    got = compiled.run(0, 1, state)
    want = program.next_state(0, state, fast=False)
    if got is None or any(a.tobytes() != b.tobytes() for a, b in zip(got, want)):
        raise NotCompilable("its first step differs from the reference (an engine bug; report it)")
    return compiled


__all__ = [
    "EXACT_BOUND",
    "RULES",
    "CompiledStep",
    "NotCompilable",
    "check_exact",
    "compile_step",
    "self_test",
    "verdicts",
]
