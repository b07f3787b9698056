"""Fast backend: exact integer sums of products through float64 BLAS (docs/SPEC.md, "Fast path").

A float64 holds every integer of magnitude <= 2^53 exactly, and the sum or product of two such
integers is exact whenever the exact result is again <= 2^53 in magnitude (IEEE 754 rounds only
results it cannot represent; an FMA rounds once, from the exact value). So if every operand and
every partial sum of a dot product stays below 2^53, BLAS computes the exact integer sum. We
check the sufficient condition `max|a| * max|b| * K < 2^53` (K = reduction length, zero points
already subtracted): each partial sum is a sum of at most K terms each at most max|a| * max|b|.

The same argument makes the result independent of BLAS's thread count, blocking and summation
order: exact integer addition is associative, so however a multithreaded dgemm splits and
reorders the K terms, every intermediate is the same exact integer. Above the bound a kernel
falls back to the reference (verifier.engine.ops.linalg), which is exact for any input.

Fast kernels enter `verifier.engine.ops.FAST` only after `self_test` has compared them bit for bit
with the reference on a seeded battery; an op that fails stays on the reference path.

Besides these BLAS kernels (`_KERNELS`), `verifier.engine.fastpath_elementwise` provides exact kernels
for the elementwise, shape and reduce ops (`_ELEMENTWISE`), with their own batteries; the
self-test, registration and fallback are the same for both families.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from verifier.core.dtypes import DType, TensorType, wrap
from verifier.engine import fastpath_elementwise
from verifier.engine.ops import FAST, REGISTRY, Op
from verifier.engine.ops._base import FastKernel
from verifier.engine.ops.linalg import conv_accumulate
from verifier.engine.verdicts import remembered

# Strict bound on every partial sum (and so on every operand) computed in float64.
EXACT_BOUND = 2**53


def _maxabs(a: np.ndarray, z: int = 0) -> int:
    """max |a - z| as a Python int (no int64 overflow at -2^63); 0 for an empty array."""
    if a.size == 0:
        return 0
    return max(abs(int(a.max()) - z), abs(int(a.min()) - z))


def blas_exact(max_a: int, max_b: int, k: int) -> bool:
    """Whether a float64 dot product of length k over these magnitudes is exact."""
    return max_a * max_b * k < EXACT_BOUND


def _zp(z: np.ndarray | None) -> int:
    return 0 if z is None else int(np.asarray(z).reshape(-1)[0])


def _to_int(y: np.ndarray, dtype: DType) -> np.ndarray:
    # Exact integers below 2^53 convert to int64 without rounding; then wrap to the dtype.
    return wrap(np.asarray(y).astype(np.int64), dtype)


def _add_mod64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # uint64 addition is defined modulo 2^64 (signed overflow is not).
    return (a.astype(np.int64).view(np.uint64) + b.astype(np.int64).view(np.uint64)).view(np.int64)


def _padded(inputs: Sequence[np.ndarray | None], n: int) -> list[np.ndarray | None]:
    return list(inputs) + [None] * (n - len(inputs))


def _reference(name: str) -> Op:
    # Looked up at call time so that the reference is always the registered one.
    return REGISTRY[name]


# ---------------------------------------------------------------------------------------------
# Kernels: same signature and result as Op.run.


def fast_matmul(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    a, b = inputs[0], inputs[1]
    assert a is not None and b is not None
    dt = DType.from_numpy(a.dtype, "MatMul")
    if not blas_exact(_maxabs(a), _maxabs(b), a.shape[-1]):
        return _reference("MatMul").run(inputs, attrs)
    return _to_int(np.matmul(a.astype(np.float64), b.astype(np.float64)), dt)


def fast_gemm(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    a, b, c = _padded(inputs, 3)
    assert a is not None and b is not None
    dt = DType.from_numpy(a.dtype, "Gemm")
    a2 = a.T if attrs[0] else a
    b2 = b.T if attrs[1] else b
    if not blas_exact(_maxabs(a2), _maxabs(b2), a2.shape[1]):
        return _reference("Gemm").run(inputs, attrs)
    y = np.asarray(np.matmul(a2.astype(np.float64), b2.astype(np.float64))).astype(np.int64)
    if c is not None:
        # C is added in integers, so it needs no share of the 2^53 budget.
        y = _add_mod64(y, np.broadcast_to(c, y.shape))
    return wrap(y, dt)


def fast_matmul_integer(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    a, b, za, zb = _padded(inputs, 4)
    assert a is not None and b is not None
    DType.from_numpy(a.dtype, "MatMulInteger")
    ia, ib = _zp(za), _zp(zb)
    if not blas_exact(_maxabs(a, ia), _maxabs(b, ib), a.shape[-1]):
        return _reference("MatMulInteger").run(inputs, attrs)
    fa = a.astype(np.float64) - ia
    fb = b.astype(np.float64) - ib
    return _to_int(np.matmul(fa, fb), DType.INT32)


def fast_conv_integer(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    x, w, zx, zw = _padded(inputs, 4)
    assert x is not None and w is not None
    ref = _reference("ConvInteger")
    tx = TensorType(DType.from_numpy(x.dtype, "ConvInteger"), tuple(x.shape))
    tw = TensorType(DType.from_numpy(w.dtype, "ConvInteger"), tuple(w.shape))
    out_t = ref.infer((tx, tw), attrs)
    ix, iw = _zp(zx), _zp(zw)
    k = int(np.prod(w.shape[1:], dtype=np.int64))  # C/group * prod(kernel)
    # Padding adds zero terms, so the bound over x - zx covers the padded input too.
    if not blas_exact(_maxabs(x, ix), _maxabs(w, iw), k):
        return ref.run(inputs, attrs)
    acc = conv_accumulate(x, w, ix, iw, attrs, np.float64)
    return _to_int(acc.reshape(out_t.shape), DType.INT32)


_KERNELS: dict[str, FastKernel] = {
    "MatMul": fast_matmul,
    "Gemm": fast_gemm,
    "MatMulInteger": fast_matmul_integer,
    "ConvInteger": fast_conv_integer,
}


# ---------------------------------------------------------------------------------------------
# Conformance self-test

Case = tuple[list[np.ndarray | None], tuple[int, ...]]


def _ints(rng: np.random.Generator, shape: tuple[int, ...], lo: int, hi: int, dtype: type[np.generic]) -> np.ndarray:
    """Uniform integers in [lo, hi], including both ends often enough to hit the extremes."""
    v = rng.integers(lo, hi, size=shape, dtype=np.int64, endpoint=True)
    if v.size:
        flat = v.reshape(-1)
        flat[rng.integers(0, flat.size, size=max(1, flat.size // 4))] = rng.choice([lo, hi])
    return v.astype(dtype)


def _bound_pair(k: int, seed_a: int) -> tuple[int, int]:
    """(ma, mb) with ma * mb * k just below 2^53; (ma, mb + 1) is at or above it."""
    ma = seed_a | 1
    return ma, (EXACT_BOUND - 1) // (k * ma)


def _straddle(
    rng: np.random.Generator, dtype: type[np.generic], ma: int, mb: int, sa: tuple[int, ...], sb: tuple[int, ...]
) -> list[np.ndarray | None]:
    # All entries at +-max so that partial sums reach max|a| * max|b| * K when signs align.
    a = (rng.choice([-1, 1], size=sa) * ma).astype(dtype)
    b = (rng.choice([-1, 1], size=sb) * mb).astype(dtype)
    if a.ndim >= 1 and a.size:
        a.reshape(-1)[: a.shape[-1]] = ma  # one row of all +ma against one column of all +mb
    if b.size:
        b.reshape(-1, *b.shape[-2:])[0, :, 0] = mb
    return [a, b]


def _matmul_cases(rng: np.random.Generator) -> list[Case]:
    shapes = [
        ((3,), (3,)),
        ((3,), (2, 3, 4)),
        ((2, 5, 3), (3,)),
        ((4, 3), (3, 5)),
        ((2, 1, 3, 4), (5, 4, 2)),
        ((1, 4, 2), (3, 2, 6)),
        ((6, 1, 2, 3), (1, 7, 3, 2)),
        ((0, 3), (3, 4)),
        ((3, 0), (0, 4)),
        ((2, 0, 3, 4), (4, 2)),
        ((0,), (0,)),
        ((3, 4), (4, 0)),
        ((1, 1), (1, 1)),
        ((17, 33), (33, 9)),
    ]
    cases: list[Case] = []
    for dt, lim in ((np.int32, 2**31), (np.int64, 2**63)):
        for sa, sb in shapes:
            for lo_hi in ((-8, 8), (-(2**20), 2**20), (-lim, lim - 1)):
                cases.append(([_ints(rng, sa, *lo_hi, dt), _ints(rng, sb, *lo_hi, dt)], ()))
        for k in (1, 2, 7):
            for seed_a in (1, 2**12, 2**26 + 5, 2**40 // k):
                ma, mb = _bound_pair(k, seed_a)
                if ma >= lim or mb >= lim:
                    continue
                for m_b in (mb, mb + 1):
                    if m_b < lim:
                        cases.append((_straddle(rng, dt, ma, m_b, (2, 1, 3, k), (3, k, 2)), ()))
    # A product just above 2^53 that float64 cannot represent: (2^27+1)(2^26+1) is odd.
    cases.append(([np.array([[2**27 + 1]], np.int64), np.array([[2**26 + 1]], np.int64)], ()))
    cases.append(([np.array([2**52 - 1, 2**52 - 1], np.int64), np.array([1, 1], np.int64)], ()))
    return cases


def _gemm_cases(rng: np.random.Generator) -> list[Case]:
    cases: list[Case] = []
    for dt, lim in ((np.int32, 2**31), (np.int64, 2**63)):
        for m, k, n in ((3, 4, 5), (1, 1, 1), (0, 3, 2), (3, 0, 2), (3, 2, 0), (16, 9, 11)):
            for ta, tb in itertools.product((0, 1), repeat=2):
                for c_shape in (None, (), (1,), (n,), (m, 1), (1, n), (m, n)):
                    for lo_hi in ((-8, 8), (-lim, lim - 1)):
                        a = _ints(rng, (k, m) if ta else (m, k), *lo_hi, dt)
                        b = _ints(rng, (n, k) if tb else (k, n), *lo_hi, dt)
                        c = None if c_shape is None else _ints(rng, c_shape, -lim, lim - 1, dt)
                        cases.append(([a, b, c], (ta, tb)))
        for kk in (1, 3):
            ma, mb = _bound_pair(kk, 2**25)
            if ma < lim and mb + 1 < lim:
                for m_b in (mb, mb + 1):
                    sa, sb = _straddle(rng, dt, ma, m_b, (2, kk), (kk, 3))
                    cases.append(([sa, sb, np.array([lim - 1], dt)], (0, 0)))
                    cases.append(([np.ascontiguousarray(np.asarray(sa).T), sb, None], (1, 0)))
    return cases


def _matmul_integer_cases(rng: np.random.Generator) -> list[Case]:
    cases: list[Case] = []
    zps: list[np.ndarray | None] = [None, np.array(0, np.int8), np.array(-128, np.int8), np.array([127], np.int8)]
    for sa, sb in (
        ((3,), (3, 2)),
        ((2, 1, 3, 4), (5, 4, 2)),
        ((4, 3), (3,)),
        ((0, 3), (3, 2)),
        ((2, 0), (0, 3)),
        ((5, 6), (6, 7)),
    ):
        for za, zb in itertools.product(zps, repeat=2):
            cases.append(([_ints(rng, sa, -128, 127, np.int8), _ints(rng, sb, -128, 127, np.int8), za, zb], ()))
    # (-128 - 127)^2 * 40000 > 2^31: the int32 wrap happens after an exact float64 sum.
    big = np.full((1, 40000), -128, np.int8)
    cases.append(([big, big.T.copy(), np.array(127, np.int8), np.array(127, np.int8)], ()))
    return cases


def _conv_attrs(
    n: int,
    group: int,
    kernel: tuple[int, ...],
    pads: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
) -> tuple[int, ...]:
    return (n, group, *kernel, *pads, *strides, *dilations)


def _conv_integer_cases(rng: np.random.Generator) -> list[Case]:
    cases: list[Case] = []
    configs = [
        # (x shape, w shape, group, pads, strides, dilations)
        ((1, 1, 7), (1, 1, 3), 1, (0, 0), (1,), (1,)),
        ((2, 4, 9), (6, 2, 3), 2, (1, 2), (2,), (2,)),
        ((1, 3, 5, 6), (4, 3, 3, 2), 1, (1, 0, 1, 1), (1, 2), (1, 1)),
        ((2, 4, 6, 6), (4, 1, 3, 3), 4, (2, 2, 2, 2), (2, 1), (2, 2)),
        ((1, 2, 4, 3, 5), (2, 2, 2, 1, 3), 1, (1, 0, 0, 0, 1, 1), (1, 1, 2), (1, 2, 1)),
        ((0, 2, 5, 5), (3, 2, 2, 2), 1, (0, 0, 0, 0), (1, 1), (1, 1)),
        ((1, 2, 5, 5), (0, 2, 2, 2), 1, (0, 0, 0, 0), (1, 1), (1, 1)),
        ((1, 0, 5), (2, 0, 3), 1, (0, 0), (1,), (1,)),
        ((1, 1, 2), (1, 1, 3), 1, (1, 0), (1,), (1,)),
    ]
    zps: list[np.ndarray | None] = [None, np.array(-128, np.int8), np.array([127], np.int8)]
    for xs, ws, g, pads, st, dl in configs:
        n = len(xs) - 2
        attrs = _conv_attrs(n, g, ws[2:], pads, st, dl)
        for zx, zw in itertools.product(zps, repeat=2):
            cases.append(([_ints(rng, xs, -128, 127, np.int8), _ints(rng, ws, -128, 127, np.int8), zx, zw], attrs))
    return cases


_CASES: dict[str, Callable[[np.random.Generator], list[Case]]] = {
    "MatMul": _matmul_cases,
    "Gemm": _gemm_cases,
    "MatMulInteger": _matmul_integer_cases,
    "ConvInteger": _conv_integer_cases,
    **fastpath_elementwise.CASES,  # after the BLAS entries: their seeds (the index here) are unchanged
}
# Exact elementwise/shape/reduce kernels, self-tested and registered with the BLAS ones.
_ELEMENTWISE: dict[str, FastKernel] = dict(fastpath_elementwise.KERNELS)
_GENUINE: dict[str, FastKernel] = {**_KERNELS, **_ELEMENTWISE}  # verdicts are remembered only for these


def _same(x: np.ndarray, y: np.ndarray) -> bool:
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def _case_ok(kernel: FastKernel, ref: Op, inputs: list[np.ndarray | None], attrs: tuple[int, ...]) -> bool:
    want = ref.run(inputs, attrs)
    snapshot = [None if x is None else x.copy() for x in inputs]
    got = kernel(inputs, attrs)
    # An ndarray (never a numpy scalar), equal bit for bit, and the inputs left untouched.
    return (
        isinstance(got, np.ndarray)
        and _same(got, want)
        and all(x is None or _same(x, s) for x, s in zip(inputs, snapshot))  # type: ignore[arg-type]
    )


def self_test(kernels: Mapping[str, FastKernel] | None = None, seed: int = 0x5EED) -> dict[str, bool]:
    """Compares each fast kernel with the reference, bit for bit, on a seeded battery of cases.

    `kernels` maps op names with a battery (the BLAS ops and those of fastpath_elementwise) to
    kernels; the default is the BLAS kernels. Warnings are errors during the test: a kernel that
    warns (e.g. numpy scalar overflow, division by zero) fails.
    """
    results: dict[str, bool] = {}
    for name, kernel in (kernels if kernels is not None else _KERNELS).items():
        rng = np.random.default_rng([seed, list(_CASES).index(name)])
        ref = _reference(name)
        ok = True
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for inputs, attrs in _CASES[name](rng):
                try:
                    ok = _case_ok(kernel, ref, inputs, attrs)
                except Exception:  # noqa: BLE001 - any failure of a fast kernel disqualifies it
                    ok = False
                if not ok:
                    break
        results[name] = ok
    return results


_RESULTS: dict[str, bool] | None = None  # cached self-test verdicts, BLAS and elementwise
_BLAS_TESTED: tuple[str, ...] = ()  # which of those are about BLAS kernels
_TESTED: dict[str, FastKernel] = {}  # the kernels those verdicts are about
_REGISTERED: dict[str, FastKernel] = {}  # what this module put in FAST
_ACTIVE = False  # whether _REGISTERED holds every passing kernel of _RESULTS


def enable_fast_path(*, retest: bool = False) -> dict[str, bool]:
    """Runs the self-test of every fast kernel, BLAS and elementwise (once, unless `retest`), and
    registers the kernels that pass in FAST. Returns the BLAS kernels' verdicts;
    `fast_path_verdicts()` has every kernel's."""
    global _RESULTS, _BLAS_TESTED, _ACTIVE
    if _RESULTS is None or retest:
        _TESTED.clear()
        _TESTED.update(_KERNELS)
        _TESTED.update(_ELEMENTWISE)
        _BLAS_TESTED = tuple(_KERNELS)
        if retest or _TESTED != _GENUINE:
            _RESULTS = self_test(_TESTED)
        else:  # this machine's verdicts on these very kernels, if an earlier process reached them
            _RESULTS = remembered("fastpath", lambda: self_test(_TESTED))
        _ACTIVE = False
    if not _ACTIVE:
        disable_fast_path()
        for name, ok in _RESULTS.items():
            if ok:
                FAST[name] = _REGISTERED[name] = _TESTED[name]
        _ACTIVE = True
    return {name: _RESULTS[name] for name in _BLAS_TESTED}


def ensure_fast_path() -> None:
    """`enable_fast_path()` unless it already ran and `disable_fast_path()` did not run since:
    cheap enough to call before every step."""
    if not _ACTIVE:
        enable_fast_path()


def fast_path_verdicts() -> dict[str, bool]:
    """Every kernel's self-test verdict (BLAS and elementwise); enables the fast path first if
    it was never enabled in this process."""
    if _RESULTS is None:
        enable_fast_path()
    assert _RESULTS is not None
    return dict(_RESULTS)


def disable_fast_path() -> None:
    """Removes this module's kernels from FAST; later runs use the reference."""
    global _ACTIVE
    _ACTIVE = False
    for name, kernel in list(_REGISTERED.items()):
        if FAST.get(name) is kernel:
            del FAST[name]
        del _REGISTERED[name]


def run_op(op: Op | str, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...], fast: bool) -> np.ndarray:
    """Runs one op: its registered fast kernel when `fast` and one passed the self-test, else the reference."""
    o = REGISTRY[op] if isinstance(op, str) else op
    kernel = FAST.get(o.name) if fast else None
    return kernel(inputs, attrs) if kernel is not None else o.run(inputs, attrs)


__all__ = [
    "EXACT_BOUND",
    "blas_exact",
    "disable_fast_path",
    "enable_fast_path",
    "ensure_fast_path",
    "fast_path_verdicts",
    "fast_conv_integer",
    "fast_gemm",
    "fast_matmul",
    "fast_matmul_integer",
    "run_op",
    "self_test",
]
