"""The float64-BLAS fast path equals the reference bit for bit, and is used only after its self-test."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from threadpoolctl import threadpool_info, threadpool_limits

from verifier.engine import fastpath
from verifier.engine.fastpath import (
    EXACT_BOUND,
    disable_fast_path,
    enable_fast_path,
    run_op,
    self_test,
)
from verifier.engine.ops import FAST, REGISTRY
from verifier.engine.ops.linalg import conv_out_dims

Inputs = list[np.ndarray | None]
KERNELS = {
    "MatMul": fastpath.fast_matmul,
    "Gemm": fastpath.fast_gemm,
    "MatMulInteger": fastpath.fast_matmul_integer,
    "ConvInteger": fastpath.fast_conv_integer,
}


@pytest.fixture(autouse=True)
def _fast_path_off() -> Iterator[None]:
    disable_fast_path()
    yield
    disable_fast_path()


def same(x: np.ndarray, y: np.ndarray) -> bool:
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def check(name: str, inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    ref = REGISTRY[name].run(inputs, attrs)
    fast = KERNELS[name](inputs, attrs)
    assert same(fast, ref), (name, fast, ref)
    return ref


# ---------------------------------------------------------------------------------------------
# Strategies: magnitudes chosen so that max|a| * max|b| * K lands on either side of 2^53.


@st.composite
def magnitudes(draw: st.DrawFn, k: int, limit: int) -> tuple[int, int]:
    """(ma, mb) with ma * mb * max(k, 1) within a factor of ~4 of 2^53, or small, capped at limit."""
    kk = max(k, 1)
    ma = draw(st.integers(1, min(limit, EXACT_BOUND // kk)))
    target = EXACT_BOUND // (kk * ma)
    mb = draw(
        st.one_of(
            st.integers(max(1, target - 2), target + 2),  # right at the bound
            st.integers(max(1, target // 4), target * 4),
            st.integers(1, 16),
        )
    )
    return ma, min(mb, limit)


def values(draw: st.DrawFn, dtype: type[np.generic], shape: tuple[int, ...], m: int) -> np.ndarray:
    # Extremes are over-represented so that partial sums actually reach the bound.
    elems = st.one_of(st.sampled_from([-m, m]), st.integers(-m, m))
    return draw(hnp.arrays(dtype, shape, elements=elems))


@st.composite
def matmul_case(draw: st.DrawFn) -> tuple[Inputs, tuple[int, ...]]:
    dtype = draw(st.sampled_from([np.int32, np.int64]))
    limit = int(np.iinfo(dtype).max)
    m, k, n = draw(st.integers(0, 5)), draw(st.integers(0, 6)), draw(st.integers(0, 5))
    full = draw(st.lists(st.integers(0, 3), max_size=2))
    ba = tuple(1 if draw(st.booleans()) else d for d in full[len(full) - draw(st.integers(0, len(full))) :])
    bb = tuple(1 if draw(st.booleans()) else d for d in full[len(full) - draw(st.integers(0, len(full))) :])
    sa = (k,) if not ba and draw(st.booleans()) else (*ba, m, k)
    sb = (k,) if not bb and draw(st.booleans()) else (*bb, k, n)
    if draw(st.booleans()):
        ma, mb = draw(magnitudes(k, limit))
    else:
        ma = mb = draw(st.sampled_from([limit, 2**26, 2**31 - 1]))
    ma, mb = min(ma, limit), min(mb, limit)
    return [values(draw, dtype, sa, ma), values(draw, dtype, sb, mb)], ()


@st.composite
def gemm_case(draw: st.DrawFn) -> tuple[Inputs, tuple[int, ...]]:
    dtype = draw(st.sampled_from([np.int32, np.int64]))
    limit = int(np.iinfo(dtype).max)
    m, k, n = draw(st.integers(0, 5)), draw(st.integers(0, 6)), draw(st.integers(0, 5))
    ta, tb = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    ma, mb = draw(magnitudes(k, limit))
    a = values(draw, dtype, (k, m) if ta else (m, k), ma)
    b = values(draw, dtype, (n, k) if tb else (k, n), mb)
    c_shape = draw(st.sampled_from([None, (), (1,), (n,), (m, 1), (1, n), (m, n)]))
    c = None if c_shape is None else values(draw, dtype, c_shape, limit)
    return [a, b, c], (ta, tb)


@st.composite
def matmul_integer_case(draw: st.DrawFn) -> tuple[Inputs, tuple[int, ...]]:
    m, k, n = draw(st.integers(0, 5)), draw(st.integers(0, 8)), draw(st.integers(0, 5))
    batch = draw(st.sampled_from([(), (2,), (2, 1)]))
    sa = (k,) if draw(st.booleans()) else (*batch, m, k)
    sb = (k,) if draw(st.booleans()) else (k, n)
    zp = st.one_of(st.none(), hnp.arrays(np.int8, st.sampled_from([(), (1,)])))
    return [values(draw, np.int8, sa, 127), draw(hnp.arrays(np.int8, sb)), draw(zp), draw(zp)], ()


@st.composite
def conv_integer_case(draw: st.DrawFn) -> tuple[Inputs, tuple[int, ...]]:
    n = draw(st.integers(1, 3))
    group = draw(st.integers(1, 2))
    cg, mg, nb = draw(st.integers(0, 3)), draw(st.integers(0, 2)), draw(st.integers(0, 2))
    kernel = tuple(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    strides = tuple(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    dil = tuple(draw(st.lists(st.integers(1, 2), min_size=n, max_size=n)))
    pads = tuple(draw(st.lists(st.integers(0, 2), min_size=2 * n, max_size=2 * n)))
    spatial = tuple(
        draw(st.integers(max(0, (kk - 1) * d + 1 - pads[i] - pads[n + i]), 5))
        for i, (kk, d) in enumerate(zip(kernel, dil, strict=True))
    )
    x = draw(hnp.arrays(np.int8, (nb, cg * group, *spatial)))
    w = draw(hnp.arrays(np.int8, (mg * group, cg, *kernel)))
    zp = st.one_of(st.none(), hnp.arrays(np.int8, st.sampled_from([(), (1,)])))
    return [x, w, draw(zp), draw(zp)], (n, group, *kernel, *pads, *strides, *dil)


CASES = {
    "MatMul": matmul_case(),
    "Gemm": gemm_case(),
    "MatMulInteger": matmul_integer_case(),
    "ConvInteger": conv_integer_case(),
}


@pytest.mark.parametrize("name", list(CASES))
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_fast__random__equals_reference_bit_for_bit(name: str, data: st.DataObject) -> None:
    inputs, attrs = data.draw(CASES[name])
    check(name, inputs, attrs)


# ---------------------------------------------------------------------------------------------
# The bound decides the path: BLAS below it, the reference at or above it.


def _refuse_reference(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    def boom(self: object, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        raise AssertionError(f"{name} fell back to the reference")

    monkeypatch.setattr(type(REGISTRY[name]), "run", boom)


def _spy_reference(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    orig = type(REGISTRY[name]).run

    def spy(self: object, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        calls.append(1)
        return orig(self, inputs, attrs)  # type: ignore[arg-type]

    monkeypatch.setattr(type(REGISTRY[name]), "run", spy)
    return calls


def test_matmul__just_below_bound__blas_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 * (2^52 - 1) = 2^53 - 2: the largest partial sums are still exact in float64.
    a = np.array([[2**52 - 1, 2**52 - 1], [-(2**52) + 1, 2**52 - 1]], np.int64)
    b = np.array([[1, -1], [1, 1]], np.int64)
    expect = REGISTRY["MatMul"].run([a, b], ())
    _refuse_reference(monkeypatch, "MatMul")
    assert same(fastpath.fast_matmul([a, b], ()), expect)
    assert int(expect[0, 0]) == 2**53 - 2


def test_matmul__just_above_bound__falls_back_and_stays_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    # (2^27 + 1)(2^26 + 1) is odd and above 2^53: float64 would round it.
    a = np.array([[2**27 + 1]], np.int64)
    b = np.array([[2**26 + 1]], np.int64)
    calls = _spy_reference(monkeypatch, "MatMul")
    y = fastpath.fast_matmul([a, b], ())
    assert calls and int(y[0, 0]) == (2**27 + 1) * (2**26 + 1)
    assert float(2**27 + 1) * float(2**26 + 1) != (2**27 + 1) * (2**26 + 1)


def test_matmul__exactly_at_bound__falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.array([2**52, 2**52], np.int64)
    b = np.array([1, 1], np.int64)
    calls = _spy_reference(monkeypatch, "MatMul")
    assert int(fastpath.fast_matmul([a, b], ())) == 2**53 and calls


def test_gemm__huge_c__stays_on_blas(monkeypatch: pytest.MonkeyPatch) -> None:
    # C is added in integers, so a C near 2^63 does not force the fallback.
    a, b = np.array([[3, 4]], np.int64), np.array([[5], [6]], np.int64)
    c = np.array([2**63 - 1], np.int64)
    expect = REGISTRY["Gemm"].run([a, b, c], (0, 0))
    _refuse_reference(monkeypatch, "Gemm")
    assert same(fastpath.fast_gemm([a, b, c], (0, 0)), expect)
    assert int(expect[0, 0]) == -(2**63) + 38


def test_matmul_integer__int32_wrap__on_blas(monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.full((1, 40_000), -128, np.int8)
    z = np.array(127, np.int8)
    expect = REGISTRY["MatMulInteger"].run([a, a.T.copy(), z, z], ())
    _refuse_reference(monkeypatch, "MatMulInteger")
    assert same(fastpath.fast_matmul_integer([a, a.T.copy(), z, z], ()), expect)


def test_conv_integer__on_blas(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 127, size=(2, 4, 7, 6), dtype=np.int8, endpoint=True)
    w = rng.integers(-128, 127, size=(6, 2, 3, 2), dtype=np.int8, endpoint=True)
    attrs = (2, 2, 3, 2, 1, 0, 2, 1, 2, 1, 1, 2)
    expect = REGISTRY["ConvInteger"].run([x, w, np.array(-128, np.int8), None], attrs)
    assert expect.shape == (2, 6, *conv_out_dims((7, 6), (3, 2), (1, 0), (2, 1), (2, 1), (1, 2)))
    _refuse_reference(monkeypatch, "ConvInteger")
    assert same(fastpath.fast_conv_integer([x, w, np.array(-128, np.int8), None], attrs), expect)


# ---------------------------------------------------------------------------------------------
# Self-test, registration, run_op


def test_self_test__all_pass_on_this_machine() -> None:
    results = enable_fast_path(retest=True)
    assert results == {"MatMul": True, "Gemm": True, "MatMulInteger": True, "ConvInteger": True}
    for name, kernel in KERNELS.items():
        assert FAST[name] is kernel
    assert self_test() == results  # deterministic battery


def test_enable__cached__and_disable_unregisters() -> None:
    first = enable_fast_path()
    assert enable_fast_path() == first
    disable_fast_path()
    assert not any(name in FAST for name in KERNELS)


def _no_bound_matmul(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    a, b = inputs[0], inputs[1]
    assert a is not None and b is not None
    with np.errstate(invalid="ignore"):
        y = np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    return np.asarray(y).astype(a.dtype)


def _gemm_drops_vector_c(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    c = inputs[2] if len(inputs) > 2 else None
    return fastpath.fast_gemm([inputs[0], inputs[1], c if c is not None and c.ndim == 2 else None], attrs)


def _matmul_integer_ignores_b_zero_point(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    return fastpath.fast_matmul_integer([*inputs[:3], None], attrs)


def _conv_ignores_dilations(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    n = attrs[0]
    return fastpath.fast_conv_integer(inputs, (*attrs[: 2 + 4 * n], *([1] * n)))


def _matmul_off_by_one_when_empty(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    a = inputs[0]
    assert a is not None
    y = fastpath.fast_matmul(inputs, attrs)
    return y + 1 if a.shape[-1] == 0 else y


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("MatMul", _no_bound_matmul),
        ("MatMul", _matmul_off_by_one_when_empty),
        ("Gemm", _gemm_drops_vector_c),
        ("MatMulInteger", _matmul_integer_ignores_b_zero_point),
        ("ConvInteger", _conv_ignores_dilations),
    ],
)
def test_self_test__broken_kernel__detected_and_not_used(name: str, broken: fastpath.FastKernel) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(fastpath._KERNELS, name, broken)
        results = enable_fast_path(retest=True)
        assert results[name] is False
        assert all(ok for other, ok in results.items() if other != name)
        assert name not in FAST
        # run_op with fast=True still gives the reference result.
        a = np.array([[2**27 + 1]], np.int64)
        b = np.array([[2**26 + 1]], np.int64)
        if name == "MatMul":
            assert int(run_op("MatMul", [a, b], (), fast=True)[0, 0]) == (2**27 + 1) * (2**26 + 1)
    assert enable_fast_path(retest=True) == dict.fromkeys(KERNELS, True)


def test_run_op__picks_fast_only_when_enabled_and_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.arange(6, dtype=np.int64).reshape(3, 2)
    calls = _spy_reference(monkeypatch, "MatMul")
    run_op("MatMul", [a, b], (), fast=True)  # not enabled: reference
    assert len(calls) == 1
    enable_fast_path()
    y = run_op(REGISTRY["MatMul"], [a, b], (), fast=True)
    assert len(calls) == 1 and same(y, a @ b)
    run_op("MatMul", [a, b], (), fast=False)
    assert len(calls) == 2


# ---------------------------------------------------------------------------------------------
# Thread counts do not change results: exact integer sums are order-independent.


def test_blas_threads__results_identical() -> None:
    rng = np.random.default_rng(9)
    k = 512
    ma = 2**20 + 1
    mb = (EXACT_BOUND - 1) // (k * ma)  # partial sums up to just below 2^53
    a = rng.choice([-ma, ma], size=(192, k)).astype(np.int64)
    b = rng.choice([-mb, mb], size=(k, 160)).astype(np.int64)
    a[0, :], b[:, 0] = ma, mb
    assert any(info["internal_api"] in ("openblas", "mkl", "blis") for info in threadpool_info())
    with threadpool_limits(limits=1, user_api="blas"):
        one = fastpath.fast_matmul([a, b], ())
    with threadpool_limits(limits=max(2, os.cpu_count() or 1), user_api="blas"):
        many = fastpath.fast_matmul([a, b], ())
    default = fastpath.fast_matmul([a, b], ())
    assert one.tobytes() == many.tobytes() == default.tobytes()
    assert int(one[0, 0]) == k * ma * mb
    assert same(one, REGISTRY["MatMul"].run([a, b], ()))
