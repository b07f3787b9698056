"""OneStepElementwise (op codes 1..24) against the reference interpreter (docs/SPEC.md 4.1, 4.2, 5).

Differential fuzzing: every case is a one-node model built and run by the engine
(`node_case`), and the contract must reproduce its output header and the output elements at
the first, the last and a random flat index (`check_node`; an empty output checks the header
only). Every case runs the contract's bytecode in revm (`_revm.RevmContract`, ~100x py-evm); one case in BOA_EVERY, the pinned edge
cases, the revert reasons, the gas and the bytecode size go through titanoboa (`boa.load`,
module-scoped), so both EVMs are pinned to the same answers.
`ONESTEP_EXAMPLES` sets the number of hypothesis cases per op (default 500);
`ONESTEP_BOA_EVERY=1` runs every case through titanoboa as well (slow: ~60 ms a case, so
500 x 24 ops take ~13 CPU-minutes).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

import boa
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.contracts._onestep import DIRECT, INIT, TERM, NodeCase, check_node, contract_element, node_case
from tests.contracts._revm import RevmContract, RevmRevert
from verifier.commit.commitments import tensor_header
from verifier.core.dtypes import DType, TensorType

PATH = "contracts/OneStepElementwise.vy"
EXAMPLES = int(os.environ.get("ONESTEP_EXAMPLES", "500"))
BOA_EVERY = int(os.environ.get("ONESTEP_BOA_EVERY", "10"))
CASES = itertools.count()
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INTS = [DType.INT8, DType.INT32, DType.INT64]
ALL = [*INTS, DType.BOOL]
BOOL = [DType.BOOL]
EIP170 = 24_576


@pytest.fixture(scope="module")
def c():
    return boa.load(PATH)


@pytest.fixture(scope="module")
def rv() -> RevmContract:
    return RevmContract(PATH)


# ----------------------------------------------------------------------------- strategies


def elems(d: DType) -> st.SearchStrategy:
    if d is DType.BOOL:
        return st.booleans()
    edges = [d.min, d.min + 1, -2, -1, 0, 1, 2, d.max - 1, d.max]
    return st.one_of(st.sampled_from(edges), st.integers(d.min, d.max))


def array(draw: Callable, d: DType, shape: tuple[int, ...]) -> np.ndarray:
    return draw(hnp.arrays(d.np, shape, elements=elems(d)))


def min_side(draw: Callable) -> int:
    # about one case in eight may have a zero-size dim (then only the header is compared)
    return draw(st.sampled_from([0] + [1] * 7))


def shapes(draw: Callable, n: int) -> tuple[tuple[int, ...], ...]:
    """n mutually broadcastable shapes, rank 0..4, sides 0/1..3 (numpy rules = SPEC 4.1)."""
    s = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=4, min_side=min_side(draw), max_side=3)
    )
    return s.input_shapes


def shape(draw: Callable) -> tuple[int, ...]:
    return draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=min_side(draw), max_side=3))


def unidirectional(draw: Callable, to: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts unidirectionally to `to`: a suffix of it with some dims set to 1."""
    r = draw(st.integers(0, len(to)))
    suffix = to[len(to) - r :]
    return tuple(1 if draw(st.booleans()) else d for d in suffix)


def indices(draw: Callable, case: NodeCase) -> list[int]:
    n = case.output.size
    if n == 0:
        return []
    return sorted({0, n - 1, draw(st.integers(0, n - 1))})


# Each builder draws (op_type, inputs, attrs) for one op.
Builder = Callable[[Callable], tuple[str, list, dict]]


def nary(op: str, n: int | tuple[int, int], dtypes: list[DType], attrs: Callable[[Callable], dict] | None = None) -> Builder:
    def build(draw: Callable) -> tuple[str, list, dict]:
        k = n if isinstance(n, int) else draw(st.integers(*n))
        d = draw(st.sampled_from(dtypes))
        return op, [array(draw, d, s) for s in shapes(draw, k)], ({} if attrs is None else attrs(draw))

    return build


def clip(draw: Callable) -> tuple[str, list, dict]:
    d = draw(st.sampled_from(INTS))
    xs = shape(draw)
    inputs: list = [array(draw, d, xs)]
    for _ in range(2):  # lo, hi: each absent, or broadcasting unidirectionally to x
        inputs.append(array(draw, d, unidirectional(draw, xs)) if draw(st.booleans()) else None)
    while inputs[-1] is None:
        inputs.pop()  # trailing absent inputs are simply not listed in the ONNX node
    return "Clip", inputs, {}


def where(draw: Callable) -> tuple[str, list, dict]:
    d = draw(st.sampled_from(ALL))
    sc, sx, sy = shapes(draw, 3)
    return "Where", [array(draw, DType.BOOL, sc), array(draw, d, sx), array(draw, d, sy)], {}


def cast(draw: Callable) -> tuple[str, list, dict]:
    d = draw(st.sampled_from(ALL))
    to = draw(st.sampled_from(ALL))
    return "Cast", [array(draw, d, shape(draw))], {"to": int(to)}


OPS: dict[str, Builder] = {
    "Identity": nary("Identity", 1, ALL),
    "Add": nary("Add", 2, INTS),
    "Sub": nary("Sub", 2, INTS),
    "Mul": nary("Mul", 2, INTS),
    "Div": nary("Div", 2, INTS),
    "Mod": nary("Mod", 2, INTS, lambda draw: {"fmod": draw(st.sampled_from([0, 1]))}),
    "Neg": nary("Neg", 1, INTS),
    "Abs": nary("Abs", 1, INTS),
    "Sign": nary("Sign", 1, INTS),
    "Relu": nary("Relu", 1, INTS),
    "Max": nary("Max", (1, 5), INTS),
    "Min": nary("Min", (1, 5), INTS),
    "Clip": clip,
    "Where": where,
    "Equal": nary("Equal", 2, ALL),
    "Less": nary("Less", 2, INTS),
    "Greater": nary("Greater", 2, INTS),
    "LessOrEqual": nary("LessOrEqual", 2, INTS),
    "GreaterOrEqual": nary("GreaterOrEqual", 2, INTS),
    "Not": nary("Not", 1, BOOL),
    "And": nary("And", 2, BOOL),
    "Or": nary("Or", 2, BOOL),
    "Xor": nary("Xor", 2, BOOL),
    "Cast": cast,
}


# ----------------------------------------------------------------------------- differential fuzzing


@pytest.mark.parametrize("op", list(OPS))
@FUZZ
@given(data=st.data())
def test_fuzz_matches_reference(c, rv, op: str, data: st.DataObject) -> None:
    op_type, inputs, attrs = OPS[op](data.draw)
    case = node_case(op_type, inputs, attrs)
    assert case.desc[0] == list(OPS).index(op) + 1  # op codes 1..24 in SPEC order
    event("empty output" if case.output.size == 0 else f"output rank {case.output.ndim}")
    idx = indices(data.draw, case)
    check_node(rv, case, idx)
    if next(CASES) % BOA_EVERY == 0:  # a count, not a drawn number: hypothesis draws 0 often
        event("also in titanoboa")
        check_node(c, case, idx)


# ----------------------------------------------------------------------------- pinned edge cases


def arr(d: DType, values: list) -> np.ndarray:
    return np.array(values, dtype=d.np)


def pinned(c, rv, case: NodeCase, boa_indices: list[int] | None = None) -> None:
    """Every element in revm; in titanoboa the first, middle and last (or `boa_indices`)."""
    check_node(rv, case)
    n = case.output.size
    if boa_indices is None:
        boa_indices = sorted({0, n // 2, n - 1}) if n else []
    check_node(c, case, boa_indices)


@pytest.mark.parametrize("d", INTS)
def test_div_edges(c, rv, d: DType) -> None:
    a = arr(d, [-7, 7, -7, 7, d.min, d.min, d.max, 5, 0, d.min])
    b = arr(d, [2, -2, -2, 2, -1, 1, -1, 0, 0, d.min])
    case = node_case("Div", [a, b])
    assert [int(v) for v in case.output] == [-3, -3, 3, 3, d.min, d.min, -d.max, 0, 0, 1]
    pinned(c, rv, case)


@pytest.mark.parametrize("d", INTS)
@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_edges(c, rv, d: DType, fmod: int) -> None:
    a = arr(d, [-7, 7, -7, 7, d.min, d.max, 5, d.min, d.max, 0])
    b = arr(d, [2, -2, -2, 2, -1, -1, 0, d.max, d.min, -3])
    case = node_case("Mod", [a, b], {"fmod": fmod})
    floor_mod = [1, -1, -1, 1, 0, 0, 0, d.max - 1, -1, 0]
    trunc_mod = [-1, 1, -1, 1, 0, 0, 0, -1, d.max, 0]
    assert [int(v) for v in case.output] == (trunc_mod if fmod else floor_mod)
    pinned(c, rv, case)


@pytest.mark.parametrize("d", INTS)
@pytest.mark.parametrize("op", ["Neg", "Abs", "Sign", "Relu"])
def test_unary_edges(c, rv, d: DType, op: str) -> None:
    case = node_case(op, [arr(d, [d.min, d.min + 1, -1, 0, 1, d.max])])
    if op in ("Neg", "Abs"):
        assert int(case.output[0]) == d.min  # Neg(MIN) = Abs(MIN) = MIN
    pinned(c, rv, case)


@pytest.mark.parametrize("d", INTS)
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul"])
def test_wrap_edges(c, rv, d: DType, op: str) -> None:
    edges = [d.min, -1, 0, 1, d.max]
    a = arr(d, edges).reshape(5, 1)
    b = arr(d, edges).reshape(1, 5)
    pinned(c, rv, node_case(op, [a, b]))


@pytest.mark.parametrize("src", ALL)
@pytest.mark.parametrize("to", ALL)
def test_cast_every_pair(c, rv, src: DType, to: DType) -> None:
    if src is DType.BOOL:
        x = arr(src, [False, True])
    else:
        edges = {src.min, src.min + 1, -(2**31) - 1, -(2**31), -129, -128, -1, 0, 1, 127, 128, 255, 256, 2**31, src.max}
        x = arr(src, sorted(v for v in edges if src.min <= v <= src.max))
    pinned(c, rv, node_case("Cast", [x], {"to": int(to)}))


@pytest.mark.parametrize(
    "lo, hi",
    [(None, None), (3, None), (None, 3), (-2, 2), (5, -5), ([[1], [-1]], 0)],
)
def test_clip_bounds(c, rv, lo, hi) -> None:
    x = arr(DType.INT32, [[-9, -3, 0, 3, 9], [2**31 - 1, -(2**31), 4, -4, 1]])
    inputs = [x, None if lo is None else np.array(lo, np.int32), None if hi is None else np.array(hi, np.int32)]
    while inputs[-1] is None:
        inputs.pop()
    case = node_case("Clip", inputs)
    if lo == 5 and hi == -5:
        assert (case.output == -5).all()  # lo > hi gives hi
    pinned(c, rv, case)


@pytest.mark.parametrize("n", [1, 2, 5, 16])
@pytest.mark.parametrize("op", ["Max", "Min"])
def test_max_min_arity(c, rv, n: int, op: str) -> None:
    rng = np.random.default_rng(n)
    xs = [rng.integers(-100, 100, size=(2, 1, 3) if i % 2 else (3,), dtype=np.int64) for i in range(n)]
    case = node_case(op, xs)
    assert case.output.shape == ((3,) if n == 1 else (2, 1, 3))
    pinned(c, rv, case, [0, case.output.size - 1])


def test_broadcast_rank_6_and_empty(c, rv) -> None:
    a = np.arange(2 * 3 * 2, dtype=np.int32).reshape(2, 1, 3, 1, 2, 1)
    b = np.arange(4, dtype=np.int32).reshape(4, 1, 1)
    case = node_case("Add", [a, b])
    assert case.output.shape == (2, 1, 3, 4, 2, 1)
    pinned(c, rv, case, [0, 1, 7, 20, 33, 47])
    empty = node_case("Mul", [np.zeros((0, 3), np.int8), np.zeros((1, 3), np.int8)])
    assert empty.output.size == 0
    pinned(c, rv, empty)
    with boa.reverts("onestep: out_index out of range"):
        c.needs(empty.desc, empty.in_headers, 0, DIRECT, 0, [])


# ----------------------------------------------------------------------------- defensive values


def test_non_canonical_values_are_normalized(c) -> None:
    """A bool byte other than 0/1 reads as True, an int outside its dtype wraps: outputs stay canonical."""
    b = node_case("Identity", [np.array([True])])
    assert c.compute(b.desc, b.in_headers, 0, DIRECT, 0, 0, [2]) == 1
    n = node_case("Not", [np.array([True])])
    assert c.compute(n.desc, n.in_headers, 0, DIRECT, 0, 0, [255]) == 0
    w = node_case("Where", [np.array([True]), np.array([1], np.int8), np.array([2], np.int8)])
    assert c.compute(w.desc, w.in_headers, 0, DIRECT, 0, 0, [7, 1, 2]) == 1
    i8 = node_case("Identity", [np.array([1], np.int8)])
    assert c.compute(i8.desc, i8.in_headers, 0, DIRECT, 0, 0, [200]) == -56


# ----------------------------------------------------------------------------- reverts


def header(d: DType, *dims: int) -> bytes:
    return tensor_header(TensorType(d, tuple(dims)))


def raw_header(d: DType, *dims: int) -> bytes:
    """A header without the engine's bounds (e.g. more than 2^32 - 1 elements)."""
    return (bytes([int(d), len(dims)]) + b"".join(x.to_bytes(4, "big") for x in dims)).ljust(32, b"\0")


def desc(op: int, n_in: int, attrs: tuple[int, ...] = (), absent: tuple[int, ...] = ()) -> bytes:
    out = bytes([op, n_in])
    for i in range(n_in):
        out += (0xFFFF if i in absent else i).to_bytes(2, "big")
    out += n_in.to_bytes(2, "big") + bytes([len(attrs)])
    for a in attrs:
        out += a.to_bytes(8, "big", signed=True)
    return out


I8, I32, B = DType.INT8, DType.INT32, DType.BOOL
ADD = desc(2, 2)
H2 = [header(I32, 2, 3), header(I32, 3)]


@pytest.fixture(scope="module")
def add_case() -> NodeCase:
    return node_case("Add", [np.ones((2, 3), np.int32), np.ones((3,), np.int32)])


def test_out_index_out_of_range(c, add_case: NodeCase) -> None:
    with boa.reverts("onestep: out_index out of range"):
        c.needs(add_case.desc, add_case.in_headers, 6, DIRECT, 0, [])
    with boa.reverts("onestep: out_index out of range"):
        c.compute(add_case.desc, add_case.in_headers, 6, DIRECT, 0, 0, [1, 1])
    with boa.reverts("onestep: out_index out of range"):
        c.compute(add_case.desc, add_case.in_headers, 2**256 - 1, DIRECT, 0, 0, [1, 1])


@pytest.mark.parametrize("phase", [INIT, TERM, 3])
def test_wrong_phase(c, add_case: NodeCase, phase: int) -> None:
    reason = "onestep: elementwise ops are direct; phase must be DIRECT (0)"
    with boa.reverts(reason):
        c.needs(add_case.desc, add_case.in_headers, 0, phase, 0, [])
    with boa.reverts(reason):
        c.compute(add_case.desc, add_case.in_headers, 0, phase, 0, 0, [1, 1])


def test_terms_and_finalize(c, add_case: NodeCase) -> None:
    assert c.terms(add_case.desc, add_case.in_headers) == 0
    assert contract_element(c, add_case, 5) == 2
    with boa.reverts("onestep: elementwise ops are direct; no finalize"):
        c.finalize(add_case.desc, add_case.in_headers, 0)


@pytest.mark.parametrize("op", [0, 25, 39, 42, 0xFF])
def test_op_code_not_elementwise(c, op: int) -> None:
    with boa.reverts("onestep: op code is not elementwise (1..24)"):
        c.output_header(desc(op, 2), H2)
    with boa.reverts("onestep: op code is not elementwise (1..24)"):
        c.compute(desc(op, 2), H2, 0, DIRECT, 0, 0, [1, 1])


@pytest.mark.parametrize(
    "d, headers",
    [
        (ADD, [header(I8, 3), header(I32, 3)]),
        (desc(11, 3), [header(I32, 3), header(I32, 3), header(DType.INT64, 3)]),  # Max
        (desc(14, 3), [header(B, 3), header(I8, 3), header(B, 3)]),  # Where branches
        (desc(13, 3), [header(I32, 3), header(I8), header(I32)]),  # Clip lo
        (desc(15, 2), [header(B, 3), header(I8, 3)]),  # Equal
    ],
)
def test_input_dtype_mismatch(c, d: bytes, headers: list[bytes]) -> None:
    with boa.reverts("onestep: input dtype mismatch"):
        c.output_header(d, headers)
    with boa.reverts("onestep: input dtype mismatch"):
        c.needs(d, headers, 0, DIRECT, 0, [])


@pytest.mark.parametrize(
    "d, headers",
    [
        (ADD, [header(B, 3), header(B, 3)]),
        (desc(5, 2), [header(B, 3), header(B, 3)]),  # Div
        (desc(16, 2), [header(B), header(B)]),  # Less
        (desc(20, 1), [header(I8, 3)]),  # Not
        (desc(21, 2), [header(I32, 3), header(I32, 3)]),  # And
        (desc(13, 3, absent=(1, 2)), [header(B, 3), bytes(32), bytes(32)]),  # Clip
    ],
)
def test_input_dtype_not_allowed(c, d: bytes, headers: list[bytes]) -> None:
    with boa.reverts("onestep: input dtype not allowed for the op"):
        c.output_header(d, headers)


def test_where_condition_must_be_bool(c) -> None:
    with boa.reverts("onestep: Where condition must be bool"):
        c.output_header(desc(14, 3), [header(I8, 3), header(I8, 3), header(I8, 3)])


@pytest.mark.parametrize(
    "d, headers, reason",
    [
        (ADD, [header(I32, 2, 3), header(I32, 2)], "onestep: input shapes do not broadcast"),
        (ADD, [header(I32, 0), header(I32, 2)], "onestep: input shapes do not broadcast"),
        (desc(13, 3, absent=(2,)), [header(I32, 3), header(I32, 2), bytes(32)], "onestep: Clip bound does not broadcast to x"),
        (desc(13, 3, absent=(1,)), [header(I32, 3), bytes(32), header(I32, 1, 3)], "onestep: Clip bound does not broadcast to x"),
        (ADD, [header(I8, 65536, 1), header(I8, 1, 65536)], "onestep: output has 2^32 or more elements"),
        (ADD, H2[:1], "onestep: header count differs from the node's input count"),
        (ADD + b"\x00", H2, "onestep: malformed descriptor"),
        (ADD[:-1], H2, "onestep: malformed descriptor"),
        (b"\x02\x02\x00", H2, "onestep: malformed descriptor"),
        (desc(2, 17), [header(I32)] * 16, "onestep: malformed descriptor"),
        (desc(2, 3), [header(I32)] * 3, "onestep: wrong number of inputs for the op"),
        (desc(7, 2), H2, "onestep: wrong number of inputs for the op"),
        (desc(11, 0), [], "onestep: wrong number of inputs for the op"),
        (desc(2, 2, absent=(1,)), [header(I32), bytes(32)], "onestep: required input is absent"),
        (desc(13, 3, absent=(0,)), [bytes(32), header(I32), header(I32)], "onestep: required input is absent"),
        (desc(13, 3, absent=(1,)), [header(I32), header(I32), header(I32)], "onestep: absent input has a non-zero header"),
        (ADD, [header(I32, 3), header(I32, 3)[:31] + b"\x01"], "onestep: non-canonical input header"),
        (ADD, [header(I32, 3), bytes([6, 7]) + bytes(30)], "onestep: input header rank above 6"),
        (ADD, [header(I32, 3), bytes([5, 0]) + bytes(30)], "onestep: input header has an unknown dtype"),
        (ADD, [header(I32, 3), bytes(32)], "onestep: input header has an unknown dtype"),
        (ADD, [raw_header(I32, 2**16, 2**16), header(I32, 1)], "onestep: input header has 2^32 or more elements"),
        (desc(2, 2, attrs=(0,)), H2, "onestep: op takes no attributes"),
        (desc(6, 2), H2, "onestep: Mod and Cast take exactly one attribute"),
        (desc(6, 2, attrs=(2,)), H2, "onestep: Mod fmod must be 0 or 1"),
        (desc(6, 2, attrs=(-1,)), H2, "onestep: Mod fmod must be 0 or 1"),
        (desc(24, 1, attrs=(1,)), H2[:1], "onestep: Cast target is not a profile dtype"),
        (desc(24, 1, attrs=(-9,)), H2[:1], "onestep: Cast target is not a profile dtype"),
        (desc(24, 1, attrs=(7, 7)), H2[:1], "onestep: Mod and Cast take exactly one attribute"),
    ],
)
def test_bad_node_reverts(c, d: bytes, headers: list[bytes], reason: str) -> None:
    with boa.reverts(reason):
        c.output_header(d, headers)
    with boa.reverts(reason):
        c.terms(d, headers)


def test_wrong_number_of_values(c, add_case: NodeCase) -> None:
    with boa.reverts("onestep: fewer values than needs"):
        c.compute(add_case.desc, add_case.in_headers, 0, DIRECT, 0, 0, [1])
    with boa.reverts("onestep: more values than needs"):
        c.compute(add_case.desc, add_case.in_headers, 0, DIRECT, 0, 0, [1, 1, 1])


# ----------------------------------------------------------------------------- deployment


def test_runtime_bytecode_fits_eip170(c, rv) -> None:
    size = len(boa.env.get_code(c.address))
    assert size < EIP170
    assert rv.runtime_size == size  # revm runs the very same runtime code


def test_revm_reverts_with_the_same_reasons(rv, add_case: NodeCase) -> None:
    for call, reason in [
        (lambda: rv.needs(add_case.desc, add_case.in_headers, 6, DIRECT, 0, []), "onestep: out_index out of range"),
        (
            lambda: rv.compute(add_case.desc, add_case.in_headers, 0, INIT, 0, 0, [1, 1]),
            "onestep: elementwise ops are direct; phase must be DIRECT (0)",
        ),
        (lambda: rv.output_header(desc(25, 2), H2), "onestep: op code is not elementwise (1..24)"),
        (lambda: rv.output_header(ADD, [header(I8, 3), header(I32, 3)]), "onestep: input dtype mismatch"),
    ]:
        with pytest.raises(RevmRevert) as e:
            call()
        assert e.value.reason == reason


def test_gas_of_typical_calls(c, add_case: NodeCase) -> None:
    """Regression guard: a broadcasting binary op costs well under 50k gas per call."""
    needs = c.needs(add_case.desc, add_case.in_headers, 4, DIRECT, 0, [])
    assert [tuple(n) for n in needs] == [(0, 4), (1, 1)]
    assert c._computation.get_gas_used() < 50_000
    assert c.compute(add_case.desc, add_case.in_headers, 4, DIRECT, 0, 0, [1, 1]) == 2
    assert c._computation.get_gas_used() < 50_000
