"""OneStepReduce (op codes 34..38) against the reference interpreter (docs/SPEC.md 4.4, 5).

Differential fuzzing: every case is a one-node model built and run by the engine
(`node_case`), and the contract must reproduce its output header and, through the whole term
walk (INIT, TERM k = 0..K-1, finalize; DIRECT when K = 0), the output elements at the first,
the last and a random flat index (`check_node`). The high-volume runs execute the contract's
bytecode in revm (`_revm.RevmContract`, ~100x py-evm); a sample of cases, the revert reasons
and the bytecode size go through titanoboa, so both EVMs are pinned to the same answers.
`ONESTEP_EXAMPLES` sets the number of hypothesis cases per op (default 500).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import boa
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.contracts._onestep import DIRECT, INIT, TERM, NodeCase, check_node, node_case
from tests.contracts._revm import RevmContract
from verifier.core.dtypes import DType

EXAMPLES = int(os.environ.get("ONESTEP_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ENUM = settings(
    max_examples=max(1, EXAMPLES // 3),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PATH = "contracts/OneStepReduce.vy"
INTS = [DType.INT8, DType.INT32, DType.INT64]
EIP170 = 24_576
K_MAX = 12  # terms per element, so that walking them stays cheap


@pytest.fixture(scope="module")
def rv() -> RevmContract:
    return RevmContract(PATH)


@pytest.fixture(scope="module")
def c():
    return boa.load(PATH)


# ----------------------------------------------------------------------------- strategies


def elems(d: DType) -> st.SearchStrategy:
    if d is DType.BOOL:
        return st.booleans()
    edges = [d.min, d.min + 1, -1, 0, 1, d.max - 1, d.max]
    return st.one_of(st.sampled_from(edges), st.integers(d.min, d.max))


def array(draw: Callable, d: DType, shape: tuple[int, ...], elements: st.SearchStrategy | None = None) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    flat = draw(st.lists(elements if elements is not None else elems(d), min_size=n, max_size=n))
    return np.array(flat, dtype=d.np).reshape(shape)


def side(draw: Callable, hi: int, lo: int = 1) -> int:
    """A dim in 0..hi, 0 about one time in ten (empty reductions and empty outputs), else
    in lo..hi (lo = 2 for reduced axes, so that most reductions have several terms)."""
    if hi == 0 or draw(st.integers(0, 9)) == 0:
        return 0
    return draw(st.integers(min(lo, hi), hi))


def spell(draw: Callable, axis: int, r: int) -> int:
    """An axis as ONNX may write it: a or a - r."""
    return axis - r if draw(st.booleans()) else axis


def indices(draw: Callable) -> Callable[[int], list[int]]:
    """First, last and one random flat index of an output of n elements."""
    pick = draw(st.integers(0, 2**32))
    return lambda n: sorted({0, n - 1, pick % n}) if n else []


@st.composite
def reduce_cases(draw: Callable, op: str) -> tuple:
    d = draw(st.sampled_from(INTS + ([DType.BOOL] if op != "ReduceSum" else [])))
    r = draw(st.integers(0, 4))
    # how the axes are given: explicit, empty/absent (all axes), or empty with noop (none)
    mode = draw(st.sampled_from(["axes", "axes", "axes", "all", "all", "noop"]))
    explicit = sorted(draw(st.sets(st.integers(0, r - 1), min_size=1, max_size=r))) if mode == "axes" and r else []
    reduced = set(explicit) if explicit else (set(range(r)) if mode != "noop" else set())
    shape: list[int] = []
    k = 1
    for i in range(r):
        if i in reduced:
            # reduced dims are mostly >= 2 (three times in four), so K = 1 stays a minority
            lo = 2 if draw(st.integers(0, 3)) else 1
            shape.append(side(draw, 4 if k == 0 else min(4, K_MAX // k), lo))
            k *= shape[-1]
        else:
            shape.append(side(draw, 3))
    x = array(draw, d, tuple(shape))
    attrs: dict = {}
    if draw(st.booleans()):
        attrs["keepdims"] = draw(st.integers(0, 1))
    consts: dict = {}
    if explicit:
        spelled = [spell(draw, a, r) for a in explicit]
        consts[1] = np.array(draw(st.permutations(spelled)), dtype=np.int64)
    elif draw(st.booleans()):
        consts[1] = np.array([], dtype=np.int64)  # else the optional axes input is absent
    if mode == "noop":
        attrs["noop_with_empty_axes"] = 1
    elif draw(st.booleans()):
        attrs["noop_with_empty_axes"] = 0
    return x, attrs, consts, k, indices(draw)


@st.composite
def arg_cases(draw: Callable) -> tuple:
    d = draw(st.sampled_from(INTS))
    r = draw(st.integers(1, 4))
    axis = draw(st.integers(0, r - 1))
    shape = tuple(draw(st.integers(1, K_MAX)) if i == axis else side(draw, 3) for i in range(r))
    if draw(st.booleans()):
        # few distinct values: many ties, decided by select_last_index
        pool = draw(st.lists(elems(d), min_size=1, max_size=3))
        x = array(draw, d, shape, st.sampled_from(pool))
    else:
        x = array(draw, d, shape)
    attrs: dict = {}
    if axis != 0 or draw(st.booleans()):
        attrs["axis"] = spell(draw, axis, r)
    for name in ("keepdims", "select_last_index"):
        if draw(st.booleans()):
            attrs[name] = draw(st.integers(0, 1))
    return x, attrs, shape[axis], indices(draw)


# ----------------------------------------------------------------------------- the term model


def reduced_axes(case: NodeCase) -> tuple[list[int], int]:
    """(reduced axes, keepdims) from the canonical attrs."""
    op = case.desc[0]
    n_in = case.desc[1]
    base = 5 + 2 * n_in
    attrs = [int.from_bytes(case.desc[base + 8 * i : base + 8 * i + 8], "big", signed=True) for i in range(case.desc[base - 1])]
    if op in (37, 38):
        return [attrs[0]], attrs[1]
    return attrs[2:], attrs[0]


def term_index(case: NodeCase, out_index: int, k: int) -> int:
    """SPEC 4.4 / 5: term k of y[o] reads x[i], i = o on the kept axes and unravel(k) row-major
    over the reduced axes (the last reduced axis fastest)."""
    x = case.inputs[0]
    axes, keepdims = reduced_axes(case)
    o = [int(v) for v in np.unravel_index(out_index, case.output.shape)] if case.output.ndim else []
    # with keepdims, o also has a 0 on every reduced axis
    kept = iter([o[a] for a in range(x.ndim) if a not in axes] if keepdims else o)
    red = iter([int(v) for v in np.unravel_index(k, [x.shape[a] for a in axes])] if axes else [])
    idx = [next(red) if a in axes else next(kept) for a in range(x.ndim)]
    return int(np.ravel_multi_index(idx, x.shape)) if x.ndim else 0


# ----------------------------------------------------------------------------- differential


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin"])
@FUZZ
@given(data=st.data())
def test_reduce__matches_reference(rv, op, data):
    x, attrs, consts, k, pick = data.draw(reduce_cases(op))
    case = node_case(op, [x], attrs, consts)
    assert rv.terms(case.desc, case.in_headers) == k
    event(f"K={k}")
    check_node(rv, case, pick(case.output.size))


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@FUZZ
@given(data=st.data())
def test_arg__matches_reference(rv, op, data):
    x, attrs, k, pick = data.draw(arg_cases())
    case = node_case(op, [x], attrs)
    assert rv.terms(case.desc, case.in_headers) == k
    event(f"K={k}")
    check_node(rv, case, pick(case.output.size))


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin", "ArgMax", "ArgMin"])
@ENUM
@given(data=st.data())
def test_terms__enumerate_reduced_positions_row_major(rv, op, data):
    """needs(TERM, k) is exactly x[term_index(k)] for every k; INIT and DIRECT read nothing."""
    if op.startswith("Arg"):
        x, attrs, _, pick = data.draw(arg_cases())
        consts: dict = {}
    else:
        x, attrs, consts, _, pick = data.draw(reduce_cases(op))
    case = node_case(op, [x], attrs, consts)
    K = rv.terms(case.desc, case.in_headers)
    for e in pick(case.output.size):
        if K == 0:
            assert list(rv.needs(case.desc, case.in_headers, e, DIRECT, 0, [])) == []
        assert list(rv.needs(case.desc, case.in_headers, e, INIT, 0, [])) == []
        for k in range(K):
            assert [tuple(n) for n in rv.needs(case.desc, case.in_headers, e, TERM, k, [])] == [(0, term_index(case, e, k))]


# ----------------------------------------------------------------------------- fixed cases


def x_of(d: DType, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if d is DType.BOOL:
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(d.min, d.max, shape, dtype=np.int64, endpoint=True).astype(d.np)


def test_no_reduction__is_one_term_reading_x_itself(rv):
    """m = 0 (noop_with_empty_axes): K = 1 and term 0 reads x[o], so y = x."""
    x = x_of(DType.INT32, (2, 3))
    for op in ("ReduceSum", "ReduceMax", "ReduceMin"):
        case = node_case(op, [x], {"noop_with_empty_axes": 1, "keepdims": 0}, {1: np.array([], np.int64)})
        assert reduced_axes(case) == ([], 1) and rv.terms(case.desc, case.in_headers) == 1
        for e in range(6):
            assert [tuple(n) for n in rv.needs(case.desc, case.in_headers, e, TERM, 0, [])] == [(0, e)]
        check_node(rv, case)


@pytest.mark.parametrize(
    ("op", "dtype", "empty"),
    [
        ("ReduceSum", DType.INT64, 0),
        ("ReduceMax", DType.INT8, -128),
        ("ReduceMin", DType.INT32, 2**31 - 1),
        ("ReduceMax", DType.BOOL, 0),
        ("ReduceMin", DType.BOOL, 1),
    ],
)
def test_empty_reduction__is_direct_and_gives_the_empty_fold(rv, op, dtype, empty):
    """A reduced axis of size 0: K = 0, the node is direct, DIRECT = INIT = finalize(INIT)."""
    case = node_case(op, [x_of(dtype, (3, 0))], {"keepdims": 0}, {1: np.array([1], np.int64)})
    assert rv.terms(case.desc, case.in_headers) == 0
    for e in range(3):
        direct = rv.compute(case.desc, case.in_headers, e, DIRECT, 0, 0, [])
        init = rv.compute(case.desc, case.in_headers, e, INIT, 0, 0, [])
        assert direct == init == rv.finalize(case.desc, case.in_headers, init) == empty
    check_node(rv, case)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
def test_arg__accumulator_packs_value_and_index(rv, op, last):
    """s_0 = (min/max of T, 0); s_{k+1} = (x_k, k) when x_k beats (or, last = 1, ties) s_k."""
    x = np.array([5, -3, 5, -3, 0], dtype=np.int32)
    case = node_case(op, [x], {"select_last_index": last})
    d, args = case.desc, case.in_headers
    init = rv.compute(d, args, 0, INIT, 0, 0, [])
    assert init == (-(2**31) if op == "ArgMax" else 2**31 - 1) * 2**64
    acc, seen = init, []
    for k in range(5):
        acc = rv.compute(d, args, 0, TERM, k, acc, [int(x[k])])
        seen.append((acc >> 64, acc & (2**64 - 1)))
    if op == "ArgMax":
        assert seen == [(5, 0), (5, 0), (5, 2 if last else 0), (5, 2 if last else 0), (5, 2 if last else 0)]
    else:
        assert seen == [(5, 0), (-3, 1), (-3, 1), (-3, 3 if last else 1), (-3, 3 if last else 1)]
    assert rv.finalize(d, args, acc) == int(case.output.reshape(-1)[0])


def test_sum__wraps_every_step(rv):
    x = np.array([[2**63 - 1, 1, 2**63 - 1, 2]], dtype=np.int64)
    case = node_case("ReduceSum", [x], {"keepdims": 0}, {1: np.array([1], np.int64)})
    steps = [0]
    for k in range(4):
        steps.append(rv.compute(case.desc, case.in_headers, 0, TERM, k, steps[-1], [int(x[0, k])]))
    assert steps == [0, 2**63 - 1, -(2**63), -1, 1] and int(case.output[0]) == 1


@pytest.mark.parametrize(
    ("op", "x", "attrs", "consts"),
    [
        ("ReduceSum", x_of(DType.INT8, (2, 3, 2)), {"keepdims": 1}, {1: np.array([-1, 0], np.int64)}),
        ("ReduceMax", x_of(DType.INT64, (3, 2)), {"keepdims": 0}, {1: np.array([0], np.int64)}),
        ("ReduceMin", x_of(DType.BOOL, (2, 2)), {}, {}),
        ("ArgMax", np.array([[1, 7, 7], [2, 2, 0]], np.int8), {"axis": 1, "select_last_index": 1}, {}),
        ("ArgMin", x_of(DType.INT32, (3, 2)), {"axis": -2, "keepdims": 0}, {}),
    ],
)
def test_titanoboa__agrees_with_revm(c, rv, op, x, attrs, consts):
    """py-evm runs the same bytecode to the same answers: every element, every term."""
    case = node_case(op, [x], attrs, consts)
    check_node(c, case)
    check_node(rv, case)


# ----------------------------------------------------------------------------- reverts


@pytest.fixture(scope="module")
def sum_case() -> NodeCase:
    # x (3, 4) int32, reduce axis 1: K = 4, 3 output elements
    return node_case("ReduceSum", [x_of(DType.INT32, (3, 4))], {"keepdims": 0}, {1: np.array([1], np.int64)})


def test_revert__term_k_at_or_past_K(c, sum_case):
    d, h = sum_case.desc, sum_case.in_headers
    with boa.reverts("onestep: k out of range (k >= K)"):
        c.needs(d, h, 0, TERM, 4, [])
    with boa.reverts("onestep: k out of range (k >= K)"):
        c.compute(d, h, 0, TERM, 4, 0, [1])


def test_revert__direct_phase_with_terms(c, sum_case):
    with boa.reverts("onestep: wrong phase: DIRECT is only for K = 0"):
        c.compute(sum_case.desc, sum_case.in_headers, 0, DIRECT, 0, 0, [])


def test_revert__unknown_phase(c, sum_case):
    with boa.reverts("onestep: wrong phase"):
        c.needs(sum_case.desc, sum_case.in_headers, 0, 3, 0, [])


def test_revert__out_index_past_the_output(c, sum_case):
    with boa.reverts("onestep: out_index out of range"):
        c.compute(sum_case.desc, sum_case.in_headers, 3, INIT, 0, 0, [])


def test_revert__values_not_matching_needs(c, sum_case):
    with boa.reverts("onestep: values do not match needs"):
        c.compute(sum_case.desc, sum_case.in_headers, 0, TERM, 0, 0, [])
    with boa.reverts("onestep: values do not match needs"):
        c.compute(sum_case.desc, sum_case.in_headers, 0, INIT, 0, 0, [1])


def test_revert__op_not_a_reduction(c):
    add = node_case("Add", [np.zeros(2, np.int32), np.zeros(2, np.int32)])
    mm = node_case("MatMul", [np.zeros((2, 2), np.int32), np.zeros((2, 2), np.int32)])
    for case in (add, mm):
        with boa.reverts("onestep: op code is not a reduction (34..38)"):
            c.terms(case.desc, case.in_headers)


def test_revert__malformed_descriptor(c, sum_case):
    with boa.reverts("onestep: malformed descriptor"):
        c.terms(sum_case.desc[:-1], sum_case.in_headers)
    with boa.reverts("onestep: malformed descriptor"):
        c.terms(b"\x22\x01", sum_case.in_headers)


def test_revert__inputs_that_do_not_fit(c, sum_case):
    d, h = sum_case.desc, sum_case.in_headers
    bool_x = node_case("ReduceMax", [np.zeros((3, 4), bool)], {"keepdims": 0}, {1: np.array([1], np.int64)})
    with boa.reverts("onestep: ReduceSum takes ints"):
        c.output_header(d, bool_x.in_headers)
    rank1 = node_case("ReduceSum", [np.zeros(4, np.int32)], {"keepdims": 0}, {1: np.array([0], np.int64)})
    with boa.reverts("onestep: reduce axes are not sorted distinct axes of x"):
        c.output_header(d, rank1.in_headers)  # axis 1 of a rank-1 x
    with boa.reverts("onestep: non-canonical input header"):
        c.output_header(d, [h[0][:31] + b"\x01"])
    with boa.reverts("onestep: header count differs from the node's input count"):
        c.output_header(d, [h[0], h[0]])


def test_revert__arg_over_an_empty_axis(c):
    ok = node_case("ArgMax", [np.zeros((2, 3), np.int32)], {"axis": 1})
    empty = node_case("ReduceSum", [np.zeros((2, 0), np.int32)], {}, {})
    with boa.reverts("onestep: ArgMax/ArgMin over an empty axis"):
        c.output_header(ok.desc, empty.in_headers)


def test_bytecode__fits_eip170(c, rv):
    size = len(boa.env.get_code(c.address))
    assert size == rv.runtime_size
    assert size < EIP170, f"OneStepReduce runtime is {size} bytes"
