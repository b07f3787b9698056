"""OneStepLinalg (op codes 39..42) against the reference interpreter (docs/SPEC.md 4.5, 5).

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

PATH = "contracts/OneStepLinalg.vy"
EIP170 = 24_576
K_MAX = 12  # terms per element, so that walking them stays cheap
WIDE = [DType.INT32, DType.INT64]


@pytest.fixture(scope="module")
def rv() -> RevmContract:
    return RevmContract(PATH)


@pytest.fixture(scope="module")
def c():
    return boa.load(PATH)


# ----------------------------------------------------------------------------- strategies


def elems(d: DType) -> st.SearchStrategy:
    edges = [d.min, d.min + 1, -1, 0, 1, d.max - 1, d.max]
    return st.one_of(st.sampled_from(edges), st.integers(d.min, d.max))


def array(draw: Callable, d: DType, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    return np.array(draw(st.lists(elems(d), min_size=n, max_size=n)), dtype=d.np).reshape(shape)


def side(draw: Callable, lo: int, hi: int) -> int:
    """A dim in lo..hi, or 0 about one time in twelve (empty outputs and K = 0)."""
    return 0 if draw(st.integers(0, 11)) == 0 else draw(st.integers(lo, hi))


def indices(draw: Callable) -> Callable[[int], list[int]]:
    """First, last and one random flat index of an output of n elements."""
    pick = draw(st.integers(0, 2**32))
    return lambda n: sorted({0, n - 1, pick % n}) if n else []


def zero_point(draw: Callable) -> np.ndarray | None:
    """Absent, or one int8 element as a scalar, (1,) or (1, 1)."""
    shape = draw(st.sampled_from([None, (), (1,), (1, 1)]))
    return None if shape is None else array(draw, DType.INT8, shape)


def optional_inputs(*xs: np.ndarray | None) -> list[np.ndarray | None]:
    """Drops trailing absent inputs (ONNX omits them; a middle one stays as "")."""
    out = list(xs)
    while out and out[-1] is None:
        out.pop()
    return out


@st.composite
def matmul_shapes(draw: Callable) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A and B shapes for the matmul shape rule: 1-D promotion and batch broadcasting."""
    k = side(draw, 1, K_MAX)
    batch = [side(draw, 1, 3) for _ in range(draw(st.integers(0, 2)))]
    ba, bb = [], []
    for d in batch:  # each batch dim: in A, B or both, possibly as 1 on one side
        where = draw(st.sampled_from(["both", "both", "a1", "b1", "a", "b"]))
        ba.append(1 if where == "a1" else d)
        bb.append(1 if where == "b1" else d)
    ba = ba[draw(st.integers(0, len(ba))) :]  # right-aligned: either side may be shorter
    bb = bb[draw(st.integers(0, len(bb))) :]
    a = (k,) if draw(st.integers(0, 4)) == 0 else (*ba, side(draw, 1, 3), k)
    b = (k,) if draw(st.integers(0, 4)) == 0 else (*bb, k, side(draw, 1, 3))
    return a, b


@st.composite
def matmul_cases(draw: Callable) -> tuple:
    d = draw(st.sampled_from(WIDE))
    sa, sb = draw(matmul_shapes())
    return [array(draw, d, sa), array(draw, d, sb)], {}, indices(draw)


@st.composite
def matmul_integer_cases(draw: Callable) -> tuple:
    sa, sb = draw(matmul_shapes())
    a, b = array(draw, DType.INT8, sa), array(draw, DType.INT8, sb)
    return optional_inputs(a, b, zero_point(draw), zero_point(draw)), {}, indices(draw)


@st.composite
def gemm_cases(draw: Callable) -> tuple:
    d = draw(st.sampled_from(WIDE))
    m, n, k = side(draw, 1, 4), side(draw, 1, 4), side(draw, 1, K_MAX)
    ta, tb = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    a = array(draw, d, (k, m) if ta else (m, k))
    b = array(draw, d, (n, k) if tb else (k, n))
    attrs: dict = {}
    if ta or draw(st.booleans()):
        attrs["transA"] = ta
    if tb or draw(st.booleans()):
        attrs["transB"] = tb
    if draw(st.booleans()):
        attrs["alpha"] = 1.0
    inputs: list = [a, b]
    if draw(st.integers(0, 3)):
        # C broadcasts unidirectionally to (M, N): a suffix of it with dims set to 1
        r = draw(st.integers(0, 2))
        shape = tuple(1 if draw(st.booleans()) else s for s in (m, n)[2 - r :])
        inputs.append(array(draw, d, shape))
        beta = draw(st.sampled_from([None, 1.0, 1.0, 0.0]))  # beta = 0 drops C
        if beta is not None:
            attrs["beta"] = beta
    return inputs, attrs, indices(draw)


@st.composite
def conv_cases(draw: Callable) -> tuple:
    n = draw(st.integers(1, 2))
    g = draw(st.integers(1, 3))
    cg = 0 if draw(st.integers(0, 15)) == 0 else draw(st.integers(1, 3))
    mg = draw(st.integers(1, 2))
    kernel: list[int] = []
    budget = K_MAX // max(cg, 1)
    for _ in range(n):
        kernel.append(draw(st.integers(1, max(1, min(3, budget)))))
        budget //= kernel[-1]
    strides = [draw(st.integers(1, 3)) for _ in range(n)]
    dil = [draw(st.integers(1, 2)) for _ in range(n)]
    auto_pad = draw(st.sampled_from(["NOTSET", "NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]))
    pads = [draw(st.integers(0, 2)) for _ in range(2 * n)] if auto_pad == "NOTSET" else [0] * (2 * n)
    spatial = []
    for i in range(n):
        span = (kernel[i] - 1) * dil[i] + 1
        lo = max(1, span - pads[i] - pads[n + i]) if auto_pad != "SAME_UPPER" and auto_pad != "SAME_LOWER" else 1
        spatial.append(draw(st.integers(lo, max(lo, 5))))
    batch = 0 if draw(st.integers(0, 15)) == 0 else draw(st.integers(1, 2))
    x = array(draw, DType.INT8, (batch, g * cg, *spatial))
    w = array(draw, DType.INT8, (g * mg, cg, *kernel))
    attrs: dict = {}
    if g > 1 or draw(st.booleans()):
        attrs["group"] = g
    if auto_pad != "NOTSET" or draw(st.booleans()):
        attrs["auto_pad"] = auto_pad
    if auto_pad == "NOTSET" and (any(pads) or draw(st.booleans())):
        attrs["pads"] = pads
    if any(s > 1 for s in strides) or draw(st.booleans()):
        attrs["strides"] = strides
    if any(d > 1 for d in dil) or draw(st.booleans()):
        attrs["dilations"] = dil
    if draw(st.booleans()):
        attrs["kernel_shape"] = kernel
    return optional_inputs(x, w, zero_point(draw), zero_point(draw)), attrs, indices(draw)


CASES = {
    "MatMul": matmul_cases,
    "Gemm": gemm_cases,
    "MatMulInteger": matmul_integer_cases,
    "ConvInteger": conv_cases,
}


# ----------------------------------------------------------------------------- the term model


def attrs_of(case: NodeCase) -> list[int]:
    base = 5 + 2 * case.desc[1]
    return [int.from_bytes(case.desc[base + 8 * i : base + 8 * i + 8], "big", signed=True) for i in range(case.desc[base - 1])]


def zero_point_reads(case: NodeCase) -> list[tuple[int, int]]:
    return [(i, 0) for i in (2, 3) if i < len(case.inputs) and case.inputs[i] is not None]


def matmul_reads(case: NodeCase, e: int, k: int) -> list[tuple[int, int]]:
    """SPEC 4.5: Y'[b, i, j] reads A'[b_A, i, k] and B'[b_B, k, j], then the zero points."""
    a, b = case.inputs[0], case.inputs[1]
    sa = (1, *a.shape) if a.ndim == 1 else a.shape
    sb = (*b.shape, 1) if b.ndim == 1 else b.shape
    batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    o = np.unravel_index(e, (*batch, sa[-2], sb[-1]))
    bo, i, j = o[: len(batch)], o[-2], o[-1]

    def restrict(dims: tuple[int, ...]) -> tuple[int, ...]:
        tail = bo[len(bo) - len(dims) :] if dims else ()
        return tuple(0 if d == 1 else int(v) for d, v in zip(dims, tail, strict=True))

    fa = np.ravel_multi_index((*restrict(sa[:-2]), i, k), sa)
    fb = np.ravel_multi_index((*restrict(sb[:-2]), k, j), sb)
    return [(0, int(fa)), (1, int(fb)), *zero_point_reads(case)]


def gemm_reads(case: NodeCase, e: int, k: int) -> list[tuple[int, int]]:
    ta, tb = attrs_of(case)
    a, b = case.inputs[0], case.inputs[1]
    m, kk = a.shape[::-1] if ta else a.shape
    n = b.shape[0] if tb else b.shape[1]
    i, j = divmod(e, n)
    fa = k * m + i if ta else i * kk + k
    fb = j * kk + k if tb else k * n + j
    return [(0, fa), (1, fb)]


def gemm_init_reads(case: NodeCase, e: int) -> list[tuple[int, int]]:
    if len(case.inputs) < 3 or case.inputs[2] is None:
        return []
    cc = case.inputs[2]
    i, j = np.unravel_index(e, case.output.shape)
    idx = tuple(0 if d == 1 else int(v) for d, v in zip(cc.shape, (i, j)[2 - cc.ndim :], strict=True))
    return [(2, int(np.ravel_multi_index(idx, cc.shape)) if cc.ndim else 0)]


def conv_reads(case: NodeCase, e: int, k: int) -> list[tuple[int, int]]:
    """SPEC 4.5: k = (c, j_1..j_n) row-major over (C/G, k_1..k_n); a padding term reads nothing."""
    x, w = case.inputs[0], case.inputs[1]
    n, g = attrs_of(case)[:2]
    rest = attrs_of(case)[2:]
    pb, s, dl = rest[n : 2 * n], rest[3 * n : 4 * n], rest[4 * n : 5 * n]
    o = np.unravel_index(e, case.output.shape)
    nu, m, oo = int(o[0]), int(o[1]), [int(v) for v in o[2:]]
    cj = np.unravel_index(k, w.shape[1:])
    c, j = int(cj[0]), [int(v) for v in cj[1:]]
    grp = m // (w.shape[0] // g)
    p = [oo[i] * s[i] + j[i] * dl[i] - pb[i] for i in range(n)]
    if any(not 0 <= p[i] < x.shape[2 + i] for i in range(n)):
        return []
    fx = np.ravel_multi_index((nu, grp * w.shape[1] + c, *p), x.shape)
    return [(0, int(fx)), (1, m * int(np.prod(w.shape[1:])) + k), *zero_point_reads(case)]


READS = {"MatMul": matmul_reads, "Gemm": gemm_reads, "MatMulInteger": matmul_reads, "ConvInteger": conv_reads}


def expected_k(op: str, case: NodeCase) -> int:
    if op == "Gemm":
        a = case.inputs[0]
        return a.shape[0] if attrs_of(case)[0] else a.shape[1]
    if op == "ConvInteger":
        return int(np.prod(case.inputs[1].shape[1:]))
    return case.inputs[0].shape[-1]


# ----------------------------------------------------------------------------- differential


@pytest.mark.parametrize("op", list(CASES))
@FUZZ
@given(data=st.data())
def test_linalg__matches_reference(rv, op, data):
    inputs, attrs, pick = data.draw(CASES[op]())
    case = node_case(op, inputs, attrs)
    k = rv.terms(case.desc, case.in_headers)
    assert k == expected_k(op, case)
    event(f"K={k}")
    check_node(rv, case, pick(case.output.size))


@pytest.mark.parametrize("op", list(CASES))
@ENUM
@given(data=st.data())
def test_terms__enumerate_as_specified(rv, op, data):
    """needs(TERM, k) is exactly the model's reads for every k; INIT/DIRECT read only Gemm's C."""
    inputs, attrs, pick = data.draw(CASES[op]())
    case = node_case(op, inputs, attrs)
    K = rv.terms(case.desc, case.in_headers)
    for e in pick(case.output.size):
        init = gemm_init_reads(case, e) if op == "Gemm" else []
        assert [tuple(x) for x in rv.needs(case.desc, case.in_headers, e, INIT, 0, [])] == init
        if K == 0:
            assert [tuple(x) for x in rv.needs(case.desc, case.in_headers, e, DIRECT, 0, [])] == init
        for k in range(K):
            want = READS[op](case, e, k)
            assert [tuple(x) for x in rv.needs(case.desc, case.in_headers, e, TERM, k, [])] == want, (e, k)


# ----------------------------------------------------------------------------- fixed cases


def ints(d: DType, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(d.min, d.max, shape, dtype=np.int64, endpoint=True).astype(d.np)


def test_matmul__wraps_every_step(rv):
    a = np.array([[2**31 - 1, 2**31 - 1, -(2**31)]], np.int32)
    b = np.array([[1], [1], [-1]], np.int32)
    case = node_case("MatMul", [a, b])
    s = [rv.compute(case.desc, case.in_headers, 0, INIT, 0, 0, [])]
    for k in range(3):
        s.append(rv.compute(case.desc, case.in_headers, 0, TERM, k, s[-1], [int(a[0, k]), int(b[k, 0])]))
    assert s == [0, 2**31 - 1, -2, -(2**31) - 2 + 2**32] and int(case.output[0, 0]) == s[-1]


@pytest.mark.parametrize(
    ("op", "inputs", "attrs", "init"),
    [
        ("MatMul", [np.zeros((2, 0), np.int64), np.zeros((0, 3), np.int64)], {}, 0),
        ("MatMulInteger", [np.zeros((2, 0), np.int8), np.zeros((0,), np.int8), np.int8(5), np.int8(-3)], {}, 0),
        ("Gemm", [np.zeros((0, 2), np.int32), np.zeros((0, 3), np.int32), np.array([7, 8, 9], np.int32)], {"transA": 1}, None),
        ("ConvInteger", [np.zeros((1, 0, 3), np.int8), np.zeros((2, 0, 2), np.int8)], {}, 0),
    ],
)
def test_k_zero__is_direct_and_gives_init(rv, op, inputs, attrs, init):
    """An empty inner dim (or no channels): K = 0, DIRECT = INIT = finalize(INIT) = init."""
    case = node_case(op, inputs, attrs)
    assert rv.terms(case.desc, case.in_headers) == 0
    flat = case.output.reshape(-1)
    for e in range(flat.size):
        want = int(flat[e]) if init is None else init
        reads = gemm_init_reads(case, e) if op == "Gemm" else []
        vals = [int(case.inputs[i].reshape(-1)[j]) for i, j in reads]
        assert [tuple(x) for x in rv.needs(case.desc, case.in_headers, e, DIRECT, 0, [])] == reads
        direct = rv.compute(case.desc, case.in_headers, e, DIRECT, 0, 0, vals)
        assert direct == rv.compute(case.desc, case.in_headers, e, INIT, 0, 0, vals) == want
        assert rv.finalize(case.desc, case.in_headers, direct) == want
    check_node(rv, case)


def test_conv__padding_terms_read_nothing_and_add_nothing(rv):
    x = ints(DType.INT8, (1, 1, 3))
    w = ints(DType.INT8, (1, 1, 3), seed=1)
    case = node_case("ConvInteger", [x, w, np.int8(4)], {"pads": [2, 0]})
    # y[0] has window positions -2, -1, 0: terms 0 and 1 are padding
    assert list(rv.needs(case.desc, case.in_headers, 0, TERM, 0, [])) == []
    assert rv.compute(case.desc, case.in_headers, 0, TERM, 1, 12345, []) == 12345
    assert [tuple(n) for n in rv.needs(case.desc, case.in_headers, 0, TERM, 2, [])] == [(0, 0), (1, 2), (2, 0)]
    check_node(rv, case)


@pytest.mark.parametrize(
    ("op", "inputs", "attrs"),
    [
        ("MatMul", [ints(DType.INT32, (2, 1, 2, 3)), ints(DType.INT32, (3, 3, 2), seed=1)], {}),
        ("Gemm", [ints(DType.INT64, (3, 2)), ints(DType.INT64, (2, 3), seed=1), ints(DType.INT64, (2, 1), seed=2)], {"transA": 1, "transB": 1}),
        ("MatMulInteger", [ints(DType.INT8, (3,)), ints(DType.INT8, (2, 3, 2), seed=1), None, np.array([7], np.int8)], {}),
        ("ConvInteger", [ints(DType.INT8, (1, 2, 4, 3)), ints(DType.INT8, (2, 1, 2, 2), seed=1), np.int8(-3)], {"group": 2, "pads": [1, 0, 0, 1], "strides": [2, 1]}),
    ],
)
def test_titanoboa__agrees_with_revm(c, rv, op, inputs, attrs):
    """py-evm runs the same bytecode to the same answers: every element, every term."""
    case = node_case(op, inputs, attrs)
    check_node(c, case)
    check_node(rv, case)


# ----------------------------------------------------------------------------- reverts


@pytest.fixture(scope="module")
def mm_case() -> NodeCase:
    # A (2, 3) @ B (3, 2): K = 3, 4 output elements
    return node_case("MatMul", [ints(DType.INT32, (2, 3)), ints(DType.INT32, (3, 2), seed=1)])


def test_revert__term_k_at_or_past_K(c, mm_case):
    d, h = mm_case.desc, mm_case.in_headers
    with boa.reverts("onestep: k out of range (k >= K)"):
        c.needs(d, h, 0, TERM, 3, [])
    with boa.reverts("onestep: k out of range (k >= K)"):
        c.compute(d, h, 0, TERM, 3, 0, [1, 1])


def test_revert__direct_phase_with_terms(c, mm_case):
    with boa.reverts("onestep: wrong phase: DIRECT is only for K = 0"):
        c.compute(mm_case.desc, mm_case.in_headers, 0, DIRECT, 0, 0, [])


def test_revert__unknown_phase(c, mm_case):
    with boa.reverts("onestep: wrong phase"):
        c.compute(mm_case.desc, mm_case.in_headers, 0, 7, 0, 0, [])


def test_revert__out_index_past_the_output(c, mm_case):
    with boa.reverts("onestep: out_index out of range"):
        c.needs(mm_case.desc, mm_case.in_headers, 4, TERM, 0, [])


def test_revert__values_not_matching_needs(c, mm_case):
    with boa.reverts("onestep: values do not match needs"):
        c.compute(mm_case.desc, mm_case.in_headers, 0, TERM, 0, 0, [1])


def test_revert__op_not_a_product_reduction(c):
    relu = node_case("Relu", [np.zeros(2, np.int32)])
    rsum = node_case("ReduceSum", [np.zeros((2, 2), np.int32)])
    for case in (relu, rsum):
        with boa.reverts("onestep: op code is not a product reduction (39..42)"):
            c.terms(case.desc, case.in_headers)


def test_revert__malformed_descriptor(c, mm_case):
    with boa.reverts("onestep: malformed descriptor"):
        c.terms(mm_case.desc + b"\x00", mm_case.in_headers)


def test_revert__inputs_that_do_not_fit(c, mm_case):
    d, h = mm_case.desc, mm_case.in_headers
    other = node_case("MatMul", [ints(DType.INT32, (2, 4)), ints(DType.INT32, (4, 2))])
    with boa.reverts("onestep: matmul inner dims differ"):
        c.output_header(d, [h[0], other.in_headers[1]])
    wide = node_case("MatMul", [ints(DType.INT64, (2, 3)), ints(DType.INT64, (3, 2))])
    with boa.reverts("onestep: input dtype mismatch"):
        c.output_header(d, [h[0], wide.in_headers[1]])
    mmi = node_case("MatMulInteger", [ints(DType.INT8, (2, 3)), ints(DType.INT8, (3, 2)), np.zeros(1, np.int8)])
    h = list(mmi.in_headers)
    big_zp = bytes([3, 1, 0, 0, 0, 2]) + bytes(26)  # int8 of shape (2,)
    with boa.reverts("onestep: zero point must have exactly one element"):
        c.output_header(mmi.desc, [h[0], h[1], big_zp, h[3]])
    with boa.reverts("onestep: absent input has a non-zero header"):
        c.output_header(mmi.desc, [h[0], h[1], h[2], h[2]])


def test_bytecode__fits_eip170(c, rv):
    size = len(boa.env.get_code(c.address))
    assert size == rv.runtime_size
    assert size < EIP170, f"OneStepLinalg runtime is {size} bytes"
