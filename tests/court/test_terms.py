"""verifier.court.terms against the one-step contracts' bytecode: for fuzzed reduction nodes
(the contract tests' strategies, every op 34..42), s_0 .. s_K computed locally from the arrays
equal the term walk through `needs` and `compute`, element by element. A player whose local
sums differed from the contract's would reveal wrong values and lose an honest game.
`ONESTEP_EXAMPLES` sets the cases per op (default 500)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tests.contracts.test_onestep_linalg as linalg
import tests.contracts.test_onestep_reduce as reduce
from tests.contracts._onestep import INIT, TERM, NodeCase, _open, node_case
from tests.contracts._revm import RevmContract
from verifier.court import terms


@pytest.fixture(scope="module")
def linalg_rv() -> RevmContract:
    return RevmContract(linalg.PATH)


@pytest.fixture(scope="module")
def reduce_rv() -> RevmContract:
    return RevmContract(reduce.PATH)


def code_and_attrs(case: NodeCase) -> tuple[int, list[int]]:
    n_in = case.desc[1]
    base = 5 + 2 * n_in
    count = case.desc[base - 1]
    return case.desc[0], [int.from_bytes(case.desc[base + 8 * i : base + 8 * i + 8], "big", signed=True) for i in range(count)]


def contract_sums(rv: RevmContract, case: NodeCase, e: int) -> list[int]:
    K = rv.terms(case.desc, case.in_headers)
    acc = rv.compute(case.desc, case.in_headers, e, INIT, 0, 0, _open(case, rv, e, INIT, 0))
    sums = [acc]
    for k in range(K):
        acc = rv.compute(case.desc, case.in_headers, e, TERM, k, acc, _open(case, rv, e, TERM, k))
        sums.append(acc)
    return sums


def check(rv: RevmContract, case: NodeCase, elements: list[int]) -> None:
    code, attrs = code_and_attrs(case)
    assert terms.covers(code)
    for e in elements:
        assert terms.partial_sums(code, attrs, case.inputs, e) == contract_sums(rv, case, e), e


@pytest.mark.parametrize("op", list(linalg.CASES))
@linalg.FUZZ
@given(data=st.data())
def test_products__match_the_contract_term_by_term(linalg_rv, op, data) -> None:
    inputs, attrs, pick = data.draw(linalg.CASES[op]())
    case = node_case(op, inputs, attrs)
    check(linalg_rv, case, pick(case.output.size))


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin"])
@reduce.FUZZ
@given(data=st.data())
def test_reductions__match_the_contract_term_by_term(reduce_rv, op, data) -> None:
    x, attrs, consts, _, pick = data.draw(reduce.reduce_cases(op))
    case = node_case(op, [x], attrs, consts)
    check(reduce_rv, case, pick(case.output.size))


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@reduce.FUZZ
@given(data=st.data())
def test_arg_reductions__match_the_contract_term_by_term(reduce_rv, op, data) -> None:
    x, attrs, _, pick = data.draw(reduce.arg_cases())
    case = node_case(op, [x], attrs)
    check(reduce_rv, case, pick(case.output.size))


def test_long_wrapping_matmul__matches_the_contract(linalg_rv) -> None:
    """4,096 terms at int32 extremes: every partial sum wraps as the contract's does."""
    rng = np.random.default_rng(7)
    a = rng.choice(np.array([-(2**31), 2**31 - 1, -1, 3], dtype=np.int32), size=(2, 4096))
    b = rng.choice(np.array([-(2**31), 2**31 - 1, 1, -7], dtype=np.int32), size=(4096, 3))
    case = node_case("MatMul", [a, b])
    check(linalg_rv, case, [0, 5])


def test_padded_convolution__skips_padding_terms_as_the_contract_does(linalg_rv) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(1, 2, 4, 4), dtype=np.int8)
    w = rng.integers(-128, 128, size=(2, 2, 3, 3), dtype=np.int8)
    zx, zw = np.array(5, dtype=np.int8), np.array(-3, dtype=np.int8)
    case = node_case("ConvInteger", [x, w, zx, zw], {"pads": [2, 1, 0, 2], "strides": [1, 2], "dilations": [2, 1]})
    check(linalg_rv, case, list(range(case.output.size)))
