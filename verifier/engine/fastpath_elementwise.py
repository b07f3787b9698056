"""Fast kernels for the elementwise, shape and reduce ops, exactly equal to the reference.

One module on purpose: each kernel sits beside the battery of cases that must reproduce the
reference before the kernel is used, so neither changes without the other.

The reference kernels (verifier.engine.ops.elementwise/shape/reduce) pay for generality: every
integer op goes through uint64 so that wraparound is defined, divisions mask zeros and
MIN / -1, broadcasting is materialized. Each kernel here computes the same result from facts
that hold for the inputs it accepts, and hands every other input to the reference:

- Same-dtype integer add/sub/mul/neg/abs on numpy *arrays* wrap two's complement, like the
  reference's uint64 arithmetic narrowed to the dtype (the low w bits of a sum, difference or
  product depend only on the low w bits of the operands). Array ufuncs never warn on integer
  overflow; numpy *scalars* do, so no kernel lets a 0-d result become a numpy scalar.
- Truncating division by a divisor with no 0 and no -1 is floor division plus one where the
  division is inexact and the signs differ; by a positive power of two 2^k it is the
  arithmetic shift `(a + ((a >> (w-1)) & (2^k - 1))) >> k`. A size-1 divisor is read once per
  call, so 0 and -1 are handled directly (x / 0 = 0, x / -1 = wrapping negation); an array
  divisor containing 0 or -1 goes to the reference.
- Mod by a divisor with no 0 and no -1 is numpy's remainder/fmod; by a positive 2^k with the
  divisor's sign (fmod 0) it is `a & (2^k - 1)`; by 0, 1 or -1 it is 0.
- Gather with every index in [-n, n-1] is np.take; an index outside goes to the reference.
- Integer sums wrap mod 2^64 in int64 whatever the order of the additions, then narrow.

Every kernel enters verifier.engine.ops.FAST only after verifier.engine.fastpath.self_test has compared it
bit for bit with the reference on the seeded battery in CASES (edges, overflow, division by
zero, broadcasting), so a machine on which any of these facts failed would keep the reference.
Outputs are fresh arrays that never alias an input (C-ordered when the inputs are).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence

import numpy as np

from verifier.engine.ops import REGISTRY
from verifier.engine.ops._base import FastKernel

Inputs = Sequence[np.ndarray | None]
Case = tuple[list[np.ndarray | None], tuple[int, ...]]

_I8, _I32, _I64, _BOOL = np.dtype(np.int8), np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)
_INTS = frozenset({_I8, _I32, _I64})
_ALL = _INTS | {_BOOL}
_BITS = {_I8: 8, _I32: 32, _I64: 64}
_SIGN_SHIFT = {d: np.asarray(b - 1, d) for d, b in _BITS.items()}  # x >> (w-1): 0 or -1
_UNSIGNED = {_I8: np.dtype(np.uint8), _I32: np.dtype(np.uint32), _I64: np.dtype(np.uint64)}
# Identity elements of max/min, as the reference's `initial`.
_LOWEST = {d: np.asarray(np.iinfo(d).min, d) for d in _INTS} | {_BOOL: np.asarray(False)}
_HIGHEST = {d: np.asarray(np.iinfo(d).max, d) for d in _INTS} | {_BOOL: np.asarray(True)}
_ZERO = {d: np.zeros((), d) for d in _ALL}
# ONNX TensorProto codes of the profile dtypes (Cast's canonical attr).
_ONNX = {3: _I8, 6: _I32, 7: _I64, 9: _BOOL}


def _ref(name: str, inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    # Looked up at call time so that the reference is always the registered one.
    return REGISTRY[name].run(inputs, attrs)


def _arr(r: np.ndarray | np.generic) -> np.ndarray:
    """A ufunc on 0-d operands returns a numpy scalar; the reference returns a 0-d array."""
    return r if type(r) is np.ndarray else np.asarray(r)


def _arrays(inputs: Inputs, n: int, allowed: frozenset[np.dtype]) -> tuple[np.ndarray, ...] | None:
    """The n inputs when they are ndarrays of one allowed dtype; None sends the call to the reference."""
    if len(inputs) != n:
        return None
    for x in inputs:
        if type(x) is not np.ndarray:
            return None
    dt = inputs[0].dtype  # type: ignore[union-attr]
    if dt not in allowed:
        return None
    for x in inputs:
        if x.dtype != dt:  # type: ignore[union-attr]
            return None
    return tuple(inputs)  # type: ignore[arg-type]


def _pair(inputs: Inputs, allowed: frozenset[np.dtype]) -> tuple[np.ndarray, np.ndarray] | None:
    """`_arrays(inputs, 2, allowed)`, unrolled: this check runs on every call."""
    if len(inputs) == 2:
        a, b = inputs
        if type(a) is np.ndarray and type(b) is np.ndarray:
            dt = a.dtype
            if dt in allowed and b.dtype == dt:
                return a, b
    return None


def _one(inputs: Inputs, allowed: frozenset[np.dtype]) -> np.ndarray | None:
    """`_arrays(inputs, 1, allowed)[0]`, unrolled."""
    if len(inputs) == 1:
        x = inputs[0]
        if type(x) is np.ndarray and x.dtype in allowed:
            return x
    return None


def _scalar_lhs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """a flattened, and the broadcast shape of a with a size-1 b (b only adds leading 1s)."""
    shape = a.shape if b.ndim <= a.ndim else (1,) * (b.ndim - a.ndim) + a.shape
    return a.reshape(-1), shape


def _has_zero_or_minus_one(b: np.ndarray) -> bool:
    # b + 1 read as unsigned is 0 or 1 exactly for b in {-1, 0} (MAX + 1 wraps to 2^(w-1)).
    t = np.add(b, 1)
    return bool(np.less(t.view(_UNSIGNED[b.dtype]), 2).any())


# ---------------------------------------------------------------------------------------------
# Kernels: same signature and result as Op.run.


def _binary(name: str, ufunc: np.ufunc, allowed: frozenset[np.dtype]) -> FastKernel:
    def kernel(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
        p = _pair(inputs, allowed)
        if p is None or attrs:
            return _ref(name, inputs, attrs)
        try:
            return _arr(ufunc(p[0], p[1]))
        except ValueError:  # shapes that do not broadcast: the reference names the error
            return _ref(name, inputs, attrs)

    kernel.__name__ = kernel.__qualname__ = f"fast_{name.lower()}"
    return kernel


fast_add = _binary("Add", np.add, _INTS)
fast_sub = _binary("Sub", np.subtract, _INTS)
fast_mul = _binary("Mul", np.multiply, _INTS)
fast_equal = _binary("Equal", np.equal, _ALL)
fast_less = _binary("Less", np.less, _INTS)
fast_greater = _binary("Greater", np.greater, _INTS)
fast_less_or_equal = _binary("LessOrEqual", np.less_equal, _INTS)
fast_greater_or_equal = _binary("GreaterOrEqual", np.greater_equal, _INTS)
fast_and = _binary("And", np.logical_and, frozenset({_BOOL}))
fast_or = _binary("Or", np.logical_or, frozenset({_BOOL}))
fast_xor = _binary("Xor", np.logical_xor, frozenset({_BOOL}))


def _unary(name: str, fn: Callable[[np.ndarray], np.ndarray], allowed: frozenset[np.dtype]) -> FastKernel:
    def kernel(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
        x = _one(inputs, allowed)
        if x is None or attrs:
            return _ref(name, inputs, attrs)
        return _arr(fn(x))

    kernel.__name__ = kernel.__qualname__ = f"fast_{name.lower()}"
    return kernel


fast_identity = _unary("Identity", lambda x: x.copy(order="C"), _ALL)
fast_neg = _unary("Neg", np.negative, _INTS)  # MIN wraps to MIN, like 0 - MIN in uint64
fast_abs = _unary("Abs", np.absolute, _INTS)  # Abs(MIN) = MIN
fast_sign = _unary("Sign", np.sign, _INTS)
fast_relu = _unary("Relu", lambda x: np.maximum(x, _ZERO[x.dtype]), _INTS)
fast_not = _unary("Not", np.logical_not, frozenset({_BOOL}))


def fast_div(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    """EVM SDIV: trunc(a / b), x / 0 = 0, MIN / -1 = MIN."""
    p = _pair(inputs, _INTS)
    if p is None or attrs:
        return _ref("Div", inputs, attrs)
    a, b = p
    if b.size == 1:
        d = int(b.item())
        x, shape = _scalar_lhs(a, b)
        if d > 0 and d & (d - 1) == 0:
            k = d.bit_length() - 1
            if k == 0:
                r = x.copy()
            else:
                # Negative a gets a bias of 2^k - 1 so that the floor shift truncates toward zero;
                # a + bias cannot overflow (bias 0 for a >= 0, a + 2^k - 1 < 2^k - 1 otherwise).
                r = np.right_shift(x, _SIGN_SHIFT[x.dtype])
                np.bitwise_and(r, d - 1, out=r)
                np.add(r, x, out=r)
                np.right_shift(r, k, out=r)
        elif d == 0:
            r = np.zeros(x.shape, x.dtype)
        elif d == -1:
            r = np.negative(x)  # MIN / -1 = MIN: the wrapped negation
        else:
            r = np.floor_divide(x, d)
            # Inexact iff q*d != a: q*d = a - r with 0 < |r| < |d|, so even a product that wraps
            # is congruent to a mod 2^w only when r = 0.
            fix = np.not_equal(np.multiply(r, d), x)
            fix &= np.less(x, 0) if d > 0 else np.greater(x, 0)
            np.add(r, fix, out=r, casting="unsafe")
        return r.reshape(shape)
    if _has_zero_or_minus_one(b):
        return _ref("Div", inputs, attrs)
    try:
        q = np.floor_divide(a, b)
    except ValueError:
        return _ref("Div", inputs, attrs)
    fix = np.not_equal(np.multiply(q, b), a)
    fix &= np.less(np.bitwise_xor(a, b), 0)  # the signs differ
    np.add(q, fix, out=q, casting="unsafe")
    return q


def fast_mod(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    """attrs = (fmod,): 0 takes the divisor's sign, 1 the dividend's; x mod 0 = 0."""
    p = _pair(inputs, _INTS)
    if p is None or len(attrs) != 1 or attrs[0] not in (0, 1):
        return _ref("Mod", inputs, attrs)
    a, b = p
    fn = np.fmod if attrs[0] else np.remainder
    if b.size == 1:
        d = int(b.item())
        x, shape = _scalar_lhs(a, b)
        if d in (0, 1, -1):
            r = np.zeros(x.shape, x.dtype)
        elif d > 0 and d & (d - 1) == 0 and not attrs[0]:
            r = np.bitwise_and(x, d - 1)  # two's complement: a mod 2^k in [0, 2^k)
        else:
            r = fn(x, d)
        return r.reshape(shape)
    if _has_zero_or_minus_one(b):
        return _ref("Mod", inputs, attrs)
    try:
        return fn(a, b)
    except ValueError:
        return _ref("Mod", inputs, attrs)


def fast_clip(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    """Inputs (x, lo?, hi?), bounds broadcast to x: min(max(x, lo), hi)."""
    if len(inputs) != 3 or attrs:
        return _ref("Clip", inputs, attrs)
    x, lo, hi = inputs
    if type(x) is not np.ndarray or x.dtype not in _INTS:
        return _ref("Clip", inputs, attrs)
    for t in (lo, hi):
        if t is not None and (type(t) is not np.ndarray or t.dtype != x.dtype or t.ndim > x.ndim):
            return _ref("Clip", inputs, attrs)
    if lo is None and hi is None:
        return x.copy(order="C")
    try:  # min(max(x, lo), hi), so hi when lo > hi
        y = _arr(np.maximum(x, lo) if lo is not None else np.minimum(x, hi))
        if lo is not None and hi is not None:
            np.minimum(y, hi, out=y)  # out= refuses an hi that would stretch y
    except ValueError:
        return _ref("Clip", inputs, attrs)
    # A bound must not stretch x (the reference refuses that).
    return y if y.shape == x.shape else _ref("Clip", inputs, attrs)


def fast_where(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    if len(inputs) != 3 or attrs:
        return _ref("Where", inputs, attrs)
    c, x, y = inputs
    if type(c) is not np.ndarray or c.dtype != _BOOL or _pair((x, y), _ALL) is None:
        return _ref("Where", inputs, attrs)
    try:
        return _arr(np.where(c, x, y))
    except ValueError:
        return _ref("Where", inputs, attrs)


def _variadic(name: str, ufunc: np.ufunc) -> FastKernel:
    def kernel(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
        p = _arrays(inputs, len(inputs), _INTS) if inputs else None
        if p is None or attrs:
            return _ref(name, inputs, attrs)
        if len(p) == 1:
            return p[0].copy(order="C")
        try:
            return _arr(functools.reduce(ufunc, p[2:], ufunc(p[0], p[1])))
        except ValueError:
            return _ref(name, inputs, attrs)

    kernel.__name__ = kernel.__qualname__ = f"fast_{name.lower()}"
    return kernel


fast_max = _variadic("Max", np.maximum)
fast_min = _variadic("Min", np.minimum)


def fast_cast(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    """attrs = (to,): to bool is x != 0; to an integer, bool is 0/1 and narrowing wraps."""
    x = _one(inputs, _ALL)
    to = _ONNX.get(attrs[0]) if len(attrs) == 1 else None
    if x is None or to is None:
        return _ref("Cast", inputs, attrs)
    if to is _BOOL:
        return _arr(np.not_equal(x, _ZERO[x.dtype]))
    return x.astype(to, order="C")


def fast_gather(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    """np.take, whose default mode accepts exactly the indices in [-n, n-1] (negative ones count
    from the end) and raises IndexError on any other; those (which gather 0) and n = 0 go to
    the reference."""
    if len(inputs) != 2 or len(attrs) != 1:
        return _ref("Gather", inputs, attrs)
    data, idx = inputs
    if (
        type(data) is not np.ndarray
        or type(idx) is not np.ndarray
        or data.dtype not in _ALL
        or (idx.dtype != _I64 and idx.dtype != _I32)
    ):
        return _ref("Gather", inputs, attrs)
    axis = attrs[0]
    if not 0 <= axis < data.ndim:
        return _ref("Gather", inputs, attrs)
    if data.shape[axis] == 0:
        return _ref("Gather", inputs, attrs)
    try:
        return _arr(np.take(data, idx, axis=axis))
    except IndexError:
        return _ref("Gather", inputs, attrs)


def fast_transpose(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    x = _one(inputs, _ALL)
    if x is None or len(attrs) != x.ndim:
        return _ref("Transpose", inputs, attrs)
    try:
        return x.transpose(attrs).copy(order="C")
    except ValueError:
        return _ref("Transpose", inputs, attrs)


def fast_reshape(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    x = _one(inputs, _ALL)
    if x is None or not attrs or len(attrs) != 1 + attrs[0]:
        return _ref("Reshape", inputs, attrs)
    try:
        return x.reshape(attrs[1:]).copy(order="C")
    except ValueError:
        return _ref("Reshape", inputs, attrs)


def fast_expand(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    x = _one(inputs, _ALL)
    if x is None or not attrs or len(attrs) != 1 + attrs[0]:
        return _ref("Expand", inputs, attrs)
    try:
        return np.broadcast_to(x, attrs[1:]).copy(order="C")
    except ValueError:
        return _ref("Expand", inputs, attrs)


def _reduce_args(inputs: Inputs, attrs: tuple[int, ...], allowed: frozenset[np.dtype]) -> np.ndarray | None:
    # numpy checks the axes (AxisError, a ValueError, for one out of range or repeated), but
    # would read a negative axis from the end, which canonical attrs never hold.
    x = _one(inputs, allowed)
    if x is None or len(attrs) < 2 or attrs[0] not in (0, 1) or len(attrs) != 2 + attrs[1]:
        return None
    if attrs[1] and min(attrs[2:]) < 0:
        return None
    return x


def fast_reduce_sum(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    """attrs = (keepdims, n, axes...); int64 sums wrap mod 2^64 in any order, then narrow."""
    x = _reduce_args(inputs, attrs, _INTS)
    if x is None:
        return _ref("ReduceSum", inputs, attrs)
    if attrs[1] == 0:
        return x.copy(order="C")
    try:
        if x.dtype == _I64:
            return _arr(np.add.reduce(x, axis=attrs[2:], keepdims=bool(attrs[0])))
        s = np.add.reduce(x, axis=attrs[2:], dtype=_I64, keepdims=bool(attrs[0]))
    except ValueError:
        return _ref("ReduceSum", inputs, attrs)
    return np.asarray(s).astype(x.dtype)


def _extremum(name: str, ufunc: np.ufunc, initial: dict[np.dtype, np.ndarray]) -> FastKernel:
    def kernel(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
        x = _reduce_args(inputs, attrs, _ALL)
        if x is None:
            return _ref(name, inputs, attrs)
        if attrs[1] == 0:
            return x.copy(order="C")
        try:
            # The empty max is the dtype's minimum (and the empty min its maximum), as in ONNX.
            return _arr(ufunc.reduce(x, axis=attrs[2:], keepdims=bool(attrs[0]), initial=initial[x.dtype]))
        except ValueError:
            return _ref(name, inputs, attrs)

    kernel.__name__ = kernel.__qualname__ = f"fast_{name.lower()}"
    return kernel


fast_reduce_max = _extremum("ReduceMax", np.maximum, _LOWEST)
fast_reduce_min = _extremum("ReduceMin", np.minimum, _HIGHEST)


def _arg(name: str, pick: Callable[..., np.ndarray]) -> FastKernel:
    def kernel(inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
        x = _one(inputs, _INTS)
        if x is None or len(attrs) != 3 or attrs[1] not in (0, 1) or attrs[2] not in (0, 1):
            return _ref(name, inputs, attrs)
        axis, keepdims, last = attrs
        if not 0 <= axis < x.ndim or x.shape[axis] == 0:
            return _ref(name, inputs, attrs)
        if last:  # numpy picks the first of equal values; the last is the first of the flipped axis
            idx = (x.shape[axis] - 1) - pick(np.flip(x, axis), axis=axis, keepdims=bool(keepdims))
        else:
            idx = pick(x, axis=axis, keepdims=bool(keepdims))
        return np.asarray(idx, dtype=_I64)

    kernel.__name__ = kernel.__qualname__ = f"fast_{name.lower()}"
    return kernel


fast_argmax = _arg("ArgMax", np.argmax)
fast_argmin = _arg("ArgMin", np.argmin)


KERNELS: dict[str, FastKernel] = {
    "Identity": fast_identity,
    "Add": fast_add,
    "Sub": fast_sub,
    "Mul": fast_mul,
    "Div": fast_div,
    "Mod": fast_mod,
    "Neg": fast_neg,
    "Abs": fast_abs,
    "Sign": fast_sign,
    "Relu": fast_relu,
    "Max": fast_max,
    "Min": fast_min,
    "Clip": fast_clip,
    "Where": fast_where,
    "Equal": fast_equal,
    "Less": fast_less,
    "Greater": fast_greater,
    "LessOrEqual": fast_less_or_equal,
    "GreaterOrEqual": fast_greater_or_equal,
    "Not": fast_not,
    "And": fast_and,
    "Or": fast_or,
    "Xor": fast_xor,
    "Cast": fast_cast,
    "Reshape": fast_reshape,
    "Transpose": fast_transpose,
    "Expand": fast_expand,
    "Gather": fast_gather,
    "ReduceSum": fast_reduce_sum,
    "ReduceMax": fast_reduce_max,
    "ReduceMin": fast_reduce_min,
    "ArgMax": fast_argmax,
    "ArgMin": fast_argmin,
}


# ---------------------------------------------------------------------------------------------
# Conformance battery for verifier.engine.fastpath.self_test: seeded, small, edge-heavy.

_INT_TYPES: tuple[type[np.generic], ...] = (np.int8, np.int32, np.int64)
_ALL_TYPES: tuple[type[np.generic], ...] = (*_INT_TYPES, np.bool_)

# Shape pairs that broadcast: rank 0, size 1, extra leading 1s, zero-size dims, equal shapes.
BINARY_SHAPES: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((), ()),
    ((), (5,)),
    ((5,), ()),
    ((1,), (6,)),
    ((6,), (1,)),
    ((4, 3), (3,)),
    ((4, 1), (1, 5)),
    ((2, 1, 3), (4, 1)),
    ((3,), (1, 1, 1)),
    ((1, 1), ()),
    ((), (2, 1)),
    ((0,), ()),
    ((0, 3), (1, 3)),
    ((2, 0), (2, 1)),
    ((0,), (0,)),
    ((), (0, 2)),
    ((1,), (0,)),
    ((7, 9), (7, 9)),
    ((64, 1), (10,)),
    ((33,), (33,)),
)
UNARY_SHAPES: tuple[tuple[int, ...], ...] = ((), (1,), (7,), (0,), (3, 0), (4, 5), (2, 3, 4), (1, 1, 1), (16, 16))
# Size-1 divisor shapes, including ones of higher rank than the dividend.
SCALAR_SHAPES: tuple[tuple[int, ...], ...] = ((), (1,), (1, 1), (1, 1, 1))


def edges(dtype: type[np.generic]) -> list[int]:
    """MIN, MAX, -1, 0, 1 and neighbours for an integer dtype; False/True for bool."""
    if dtype is np.bool_:
        return [0, 1]
    lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    return [lo, lo + 1, lo + 2, -2, -1, 0, 1, 2, hi - 2, hi - 1, hi]


def values(rng: np.random.Generator, shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
    """A mix of edge values, small values (ties, exact divisions) and full-range values."""
    if dtype is np.bool_:
        return np.asarray(rng.integers(0, 2, size=shape).astype(np.bool_))
    lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    kind = rng.integers(0, 3, size=shape)
    full = rng.integers(lo, hi, size=shape, dtype=np.int64, endpoint=True)
    small = rng.integers(-9, 9, size=shape, dtype=np.int64, endpoint=True)
    edge = rng.choice(np.array(edges(dtype), dtype=np.int64), size=shape)
    return np.asarray(np.where(kind == 0, full, np.where(kind == 1, small, edge)).astype(dtype))


def divisors(rng: np.random.Generator, dtype: type[np.generic]) -> list[int]:
    """0, +-1, the extremes, every +-2^k the dtype holds, and odd and random divisors."""
    bits = np.iinfo(dtype).bits
    out = [*edges(dtype), 3, -3, 7, -7, 10, -10, 100, -100, 1437]
    out += [s * (1 << k) for k in range(1, bits - 1) for s in (1, -1)]
    out.append(-(1 << (bits - 1)))
    out += [int(v) for v in rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, size=6, dtype=np.int64)]
    lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    return sorted({d for d in out if lo <= d <= hi})


def dividends(rng: np.random.Generator, d: int, dtype: type[np.generic]) -> np.ndarray:
    """Edges, multiples of d and their neighbours (exact and inexact divisions of both signs)."""
    lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    cands = [*edges(dtype), d, -d, d - 1, d + 1, -d - 1, -d + 1, 3 * d, -3 * d, 3 * d + 1, -3 * d - 1]
    cands += [d * int(k) for k in rng.integers(-50, 50, size=6)]
    vals = [((c - lo) % (hi - lo + 1)) + lo for c in cands]  # wrap into the dtype
    full = [int(v) for v in rng.integers(lo, hi, size=9, dtype=np.int64, endpoint=True)]
    return np.array(vals + full, dtype=np.int64).astype(dtype)


def _binary_cases(dtypes: Sequence[type[np.generic]], attrs: tuple[int, ...] = ()) -> Callable[[np.random.Generator], list[Case]]:
    def cases(rng: np.random.Generator) -> list[Case]:
        out: list[Case] = []
        for dt in dtypes:
            for sa, sb in BINARY_SHAPES:
                for _ in range(2):
                    out.append(([values(rng, sa, dt), values(rng, sb, dt)], attrs))
        return out

    return cases


def _division_cases(attrs_list: Sequence[tuple[int, ...]]) -> Callable[[np.random.Generator], list[Case]]:
    """Size-1 divisors (every edge and power of two, all size-1 shapes against dividends of
    several ranks) and array divisors with and without 0 and -1, broadcast both ways."""

    def cases(rng: np.random.Generator) -> list[Case]:
        out: list[Case] = []
        for attrs in attrs_list:
            for dt in _INT_TYPES:
                for d in divisors(rng, dt):
                    a = dividends(rng, d, dt)
                    a_shape = [(a.size,), (1, a.size), (2, a.size // 2)][int(rng.integers(0, 3))]
                    b_shape = SCALAR_SHAPES[int(rng.integers(0, len(SCALAR_SHAPES)))]
                    out.append(([a.reshape(a_shape), np.full(b_shape, d, dt)], attrs))
                for d in (0, -1, 2, 3, -7, 16, int(np.iinfo(dt).min)):
                    for sa in ((), (0,), (1, 1, 1), (3, 1)):
                        out.append(([values(rng, sa, dt), np.full(SCALAR_SHAPES[len(sa) % 4], d, dt)], attrs))
                for sa, sb in BINARY_SHAPES:
                    b = values(rng, sb, dt)
                    if b.size > 1 and rng.integers(0, 2):  # some array divisors avoid 0 and -1
                        b = np.where((b == 0) | (b == -1), np.array(5, dt), b)
                    out.append(([values(rng, sa, dt), b], attrs))
                # MIN / -1 and x / 0 inside an array divisor; exact and inexact negatives.
                a = np.array(edges(dt) * 2, dt)
                out.append(([a, np.array([-1, 0, 1, 2, -2, 3, -3, 7, -7, -1, 0] * 2, dt)], attrs))
                out.append(([a, np.array([2, -2, 3, -3, 7, -7, 5, 9, -9, 11, -11] * 2, dt)], attrs))
        return out

    return cases


def _unary_cases(dtypes: Sequence[type[np.generic]], attrs: tuple[int, ...] = ()) -> Callable[[np.random.Generator], list[Case]]:
    def cases(rng: np.random.Generator) -> list[Case]:
        out: list[Case] = []
        for dt in dtypes:
            out.append(([np.array(edges(dt), dt)], attrs))
            for s in UNARY_SHAPES:
                out.append(([values(rng, s, dt)], attrs))
        return out

    return cases


def _variadic_cases(rng: np.random.Generator) -> list[Case]:
    out: list[Case] = []
    groups = [((3,),), ((),), ((4, 1), (3,)), ((), (2, 3), (1, 3)), ((0,), (1,), ()), ((2, 1), (1, 2), (2, 2), ())]
    for dt in _INT_TYPES:
        for shapes in groups:
            out.append(([values(rng, s, dt) for s in shapes], ()))
        for sa, sb in BINARY_SHAPES:
            out.append(([values(rng, sa, dt), values(rng, sb, dt)], ()))
    return out


def _suffix_shapes(shape: tuple[int, ...]) -> list[tuple[int, ...] | None]:
    """Clip bound shapes that broadcast to `shape`: absent, scalar, size 1, suffixes, with 1s."""
    out: list[tuple[int, ...] | None] = [None, (), shape] + ([(1,)] if shape else [])
    out += [shape[k:] for k in range(1, len(shape))]
    out.append(tuple(1 if k % 2 else d for k, d in enumerate(shape)))
    return out


def _clip_cases(rng: np.random.Generator) -> list[Case]:
    out: list[Case] = []
    for dt in _INT_TYPES:
        for xs in ((), (1,), (5,), (0,), (4, 3), (2, 0, 3), (3, 1, 4)):
            pairs = list(itertools.product(_suffix_shapes(xs), repeat=2))
            for k in rng.permutation(len(pairs))[:10]:
                lo_s, hi_s = pairs[k]
                lo = None if lo_s is None else values(rng, lo_s, dt)
                hi = None if hi_s is None else values(rng, hi_s, dt)
                out.append(([values(rng, xs, dt), lo, hi], ()))
        lim = np.iinfo(dt)
        x = np.array(edges(dt), dt)
        for lo_v, hi_v in ((-5, 5), (5, -5), (lim.min, lim.max), (lim.max, lim.min), (0, 0)):  # lo > hi gives hi
            out.append(([x, np.array(lo_v, dt), np.array(hi_v, dt)], ()))
    return out


def _where_cases(rng: np.random.Generator) -> list[Case]:
    triples = [
        ((), (), ()),
        ((5,), (), ()),
        ((4, 1), (1, 3), ()),
        ((3,), (2, 3), (1,)),
        ((0,), (), (1,)),
        ((2, 2), (2, 2), (2, 2)),
        ((), (4,), (4,)),
        ((6, 10), (), ()),
        ((1,), (0, 3), (1,)),
        ((2, 1, 1), (1, 4, 1), (1, 1, 3)),
        ((1, 3), (1,), ()),
        ((), (1, 1, 2), (2,)),
    ]
    out: list[Case] = []
    for dt in _ALL_TYPES:
        for sc, sx, sy in triples:
            out.append(([values(rng, sc, np.bool_), values(rng, sx, dt), values(rng, sy, dt)], ()))
    return out


def _cast_cases(rng: np.random.Generator) -> list[Case]:
    out: list[Case] = []
    for src in _ALL_TYPES:
        for to in (3, 6, 7, 9):
            out.append(([np.array(edges(src), src)], (to,)))
            for s in UNARY_SHAPES:
                out.append(([values(rng, s, src)], (to,)))
    return out


def _gather_cases(rng: np.random.Generator) -> list[Case]:
    out: list[Case] = []
    for ds in ((5,), (4, 3), (2, 3, 4), (0, 3), (3, 0), (1, 1), (37, 1)):
        for axis in range(len(ds)):
            n = ds[axis]
            for it in (np.int32, np.int64):
                lim = np.iinfo(it)
                inside = list(range(-n, n))
                outside = [n, -n - 1, int(lim.max), int(lim.min), n + 7]
                for ishape in ((), (0,), (4,), (2, 3)):
                    size = int(np.prod(ishape, dtype=np.int64))
                    if inside:
                        ok = rng.choice(np.array(inside, dtype=np.int64), size=size)
                        out.append(([values(rng, ds, np.int64), ok.astype(it).reshape(ishape)], (axis,)))
                    mixed = rng.choice(np.array(inside + outside, dtype=np.int64), size=size)
                    for dt in _ALL_TYPES:
                        out.append(([values(rng, ds, dt), mixed.astype(it).reshape(ishape)], (axis,)))
    return out


def _transpose_cases(rng: np.random.Generator) -> list[Case]:
    out: list[Case] = []
    for s in ((), (3,), (0, 2), (4, 5), (2, 3, 4), (1, 0, 3), (2, 1, 3, 2)):
        for k, perm in enumerate(itertools.permutations(range(len(s)))):
            out.append(([values(rng, s, _ALL_TYPES[k % 4])], tuple(perm)))
    return out


def _reshape_cases(rng: np.random.Generator) -> list[Case]:
    out: list[Case] = []
    targets = {
        (): [(), (1,), (1, 1)],
        (6,): [(6,), (2, 3), (3, 1, 2), (1, 6)],
        (2, 3, 4): [(24,), (4, 6), (2, 12), (4, 3, 2)],
        (0, 3): [(0,), (3, 0), (0, 1, 3)],
        (1, 1): [(), (1,)],
    }
    for s, ts in targets.items():
        for t in ts:
            for dt in _ALL_TYPES:
                out.append(([values(rng, s, dt)], (len(t), *t)))
    return out


def _expand_cases(rng: np.random.Generator) -> list[Case]:
    out: list[Case] = []
    for s, t in (((), ()), ((), (3,)), ((1,), (4, 2)), ((3, 1), (2, 3, 4)), ((2, 1), (2, 0)), ((0,), (3, 0)), ((4,), (4,))):
        for dt in _ALL_TYPES:
            out.append(([values(rng, s, dt)], (len(t), *t)))
    return out


def _reduce_cases(dtypes: Sequence[type[np.generic]]) -> Callable[[np.random.Generator], list[Case]]:
    def cases(rng: np.random.Generator) -> list[Case]:
        out: list[Case] = []
        for dt in dtypes:
            for s in ((), (5,), (0,), (3, 4), (0, 3), (3, 0), (2, 3, 4), (2, 0, 1), (64, 10)):
                for n in range(len(s) + 1):
                    for axes in itertools.combinations(range(len(s)), n):
                        for keep in (0, 1):
                            out.append(([values(rng, s, dt)], (keep if axes else 1, n, *axes)))
            if dt is not np.bool_:  # sums that wrap: many MAXes and many MINs
                big = np.full((3, 300), np.iinfo(dt).max, dt)
                big[1] = np.iinfo(dt).min
                out.append(([big], (0, 1, 1)))
                out.append(([big], (1, 2, 0, 1)))
        return out

    return cases


def _arg_cases(rng: np.random.Generator) -> list[Case]:
    out: list[Case] = []
    for dt in _INT_TYPES:
        for s in ((5,), (1,), (3, 4), (2, 3, 4), (2, 0, 3), (4, 1)):
            for axis in range(len(s)):
                if s[axis] == 0:
                    continue
                for keep, last in itertools.product((0, 1), repeat=2):
                    x = values(rng, s, dt)
                    ties = np.asarray(rng.integers(-1, 2, size=s).astype(dt))  # many equal values
                    out.append(([x], (axis, keep, last)))
                    out.append(([ties], (axis, keep, last)))
    return out


CASES: dict[str, Callable[[np.random.Generator], list[Case]]] = {
    "Identity": _unary_cases(_ALL_TYPES),
    "Add": _binary_cases(_INT_TYPES),
    "Sub": _binary_cases(_INT_TYPES),
    "Mul": _binary_cases(_INT_TYPES),
    "Div": _division_cases([()]),
    "Mod": _division_cases([(0,), (1,)]),
    "Neg": _unary_cases(_INT_TYPES),
    "Abs": _unary_cases(_INT_TYPES),
    "Sign": _unary_cases(_INT_TYPES),
    "Relu": _unary_cases(_INT_TYPES),
    "Max": _variadic_cases,
    "Min": _variadic_cases,
    "Clip": _clip_cases,
    "Where": _where_cases,
    "Equal": _binary_cases(_ALL_TYPES),
    "Less": _binary_cases(_INT_TYPES),
    "Greater": _binary_cases(_INT_TYPES),
    "LessOrEqual": _binary_cases(_INT_TYPES),
    "GreaterOrEqual": _binary_cases(_INT_TYPES),
    "Not": _unary_cases((np.bool_,)),
    "And": _binary_cases((np.bool_,)),
    "Or": _binary_cases((np.bool_,)),
    "Xor": _binary_cases((np.bool_,)),
    "Cast": _cast_cases,
    "Reshape": _reshape_cases,
    "Transpose": _transpose_cases,
    "Expand": _expand_cases,
    "Gather": _gather_cases,
    "ReduceSum": _reduce_cases(_INT_TYPES),
    "ReduceMax": _reduce_cases(_ALL_TYPES),
    "ReduceMin": _reduce_cases(_ALL_TYPES),
    "ArgMax": _arg_cases,
    "ArgMin": _arg_cases,
}

assert CASES.keys() == KERNELS.keys()

__all__ = ["CASES", "KERNELS", *sorted(k for k in globals() if k.startswith("fast_"))]
