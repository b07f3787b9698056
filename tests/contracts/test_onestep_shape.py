"""OneStepShape (op codes 25, 26, 27, 31, 32, 33) against the reference interpreter
(docs/SPEC.md 4.3, 5).

Differential fuzzing: every case is a one-node ONNX model loaded through the engine (so the
descriptor and headers are the committed ones; Flatten, Squeeze and Unsqueeze arrive as
Reshape), run by the reference, and the contract must reproduce its output header and the
elements at the first, the last and two random flat indices, opening exactly the input
elements it `needs` (`check_node`; an empty output checks the header only). Every case runs
the contract's bytecode in revm (`_revm.RevmContract`, ~100x py-evm); one case in BOA_EVERY,
the fixed cases, the revert reasons and the bytecode size go through titanoboa
(`boa.load`, module-scoped), so both EVMs are pinned to the same answers.
`ONESTEP_EXAMPLES` sets the number of hypothesis cases per op (default 500);
`ONESTEP_BOA_EVERY=1` runs every case through titanoboa as well (slow: ~40 ms a case).
"""

from __future__ import annotations

import itertools
import math
import os
from typing import NamedTuple

import boa
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.contracts._onestep import DIRECT, INIT, check_node, node_case
from tests.contracts._revm import RevmContract

PATH = "contracts/OneStepShape.vy"
EIP170 = 24_576
EXAMPLES = int(os.environ.get("ONESTEP_EXAMPLES", "500"))
BOA_EVERY = int(os.environ.get("ONESTEP_BOA_EVERY", "10"))
CASES = itertools.count()
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
DTYPES = [np.int8, np.int32, np.int64, np.bool_]


@pytest.fixture(scope="module")
def shape_contract():
    return boa.load(PATH)


@pytest.fixture(scope="module")
def rv() -> RevmContract:
    return RevmContract(PATH)


class Evms(NamedTuple):
    rv: RevmContract
    boa: object


@pytest.fixture(scope="module")
def evms(rv, shape_contract) -> Evms:
    return Evms(rv, shape_contract)


# --------------------------------------------------------------------------------- strategies

# a dim is 0 one time in 21, so rank-5 shapes are not mostly empty; 1 is common (broadcast,
# squeeze)
dims = st.sampled_from([1, 2, 3, 4] * 5 + [0])
seeds = st.integers(0, 2**32 - 1)


def filled(shape: tuple[int, ...], dtype: type, seed: int) -> np.ndarray:
    """Random values over the whole range of the dtype (bools 0/1), so a misplaced read shows."""
    rng = np.random.default_rng(seed)
    if dtype is np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    info = np.iinfo(dtype)
    v = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    # plant the extremes now and then
    if v.size and rng.random() < 0.3:
        v.reshape(-1)[rng.integers(0, v.size)] = info.min
        v.reshape(-1)[rng.integers(0, v.size)] = info.max
    return v


@st.composite
def shapes(draw, min_rank: int = 0, max_rank: int = 5, side=dims) -> tuple[int, ...]:
    rank = draw(st.integers(min_rank, max_rank))  # lists() would favour short shapes
    return tuple(draw(side) for _ in range(rank))


@st.composite
def tensors(draw, min_rank: int = 0, max_rank: int = 5, side=dims, shape=None) -> np.ndarray:
    s = draw(shapes(min_rank, max_rank, side)) if shape is None else shape
    return filled(s, draw(st.sampled_from(DTYPES)), draw(seeds))


def pick_indices(n: int, seed: int, extra: int = 2) -> list[int]:
    """First, last and `extra` random output indices (none for an empty output)."""
    if n == 0:
        return []
    rng = np.random.default_rng(seed)
    return sorted({0, n - 1, *(int(i) for i in rng.integers(0, n, size=extra))})


def run(evms: Evms, op_type: str, inputs, attrs=None, consts=None, opset: int = 18, seed: int = 0) -> None:
    """One case: the header and the first, last and two random elements, in revm (and, one
    case in BOA_EVERY, in titanoboa)."""
    case = node_case(op_type, inputs, attrs, consts, opset)
    event("empty output" if case.output.size == 0 else f"output rank {case.output.ndim}")
    indices = pick_indices(case.output.size, seed)
    check_node(evms.rv, case, indices)
    if next(CASES) % BOA_EVERY == 0:  # a count, not the seed: hypothesis draws 0 often
        event("also in titanoboa")
        check_node(evms.boa, case, indices)


def i64(v) -> np.ndarray:
    return np.array(v, dtype=np.int64)


# --------------------------------------------------------------------------------- Reshape family


@st.composite
def factorization(draw, n: int, rank: int) -> list[int]:
    """A shape of `rank` dims with product n (n > 0 needs rank >= 1 unless n == 1)."""
    out = [1] * rank
    m, p = n, 2
    while m > 1:
        while m % p == 0:
            out[draw(st.integers(0, rank - 1))] *= p
            m //= p
        p += 1
    return out


@given(data=st.data(), x=tensors(), seed=seeds)
@FUZZ
def test_reshape(evms, data, x, seed) -> None:
    n = x.size
    if n == 0:
        rank = data.draw(st.integers(1, 5))
        target = data.draw(st.lists(dims, min_size=rank, max_size=rank))
        target[data.draw(st.integers(0, rank - 1))] = 0
    else:
        rank = data.draw(st.integers(0 if n == 1 else 1, 5))
        target = data.draw(factorization(n, rank))
    spec = list(target)
    allowzero = 1 if 0 in target else data.draw(st.integers(0, 1))
    if not allowzero:  # 0 copies the input dim at the same position
        for k in range(min(len(spec), x.ndim)):
            if spec[k] == x.shape[k] and data.draw(st.booleans()):
                spec[k] = 0
    # one -1 where the other dims have a non-zero product (the loader infers it from them)
    inferable = [k for k in range(len(spec)) if spec[k] != 0 and math.prod(target[:k] + target[k + 1 :]) != 0]
    if inferable and data.draw(st.booleans()):
        spec[data.draw(st.sampled_from(inferable))] = -1
    attrs = {"allowzero": allowzero} if allowzero or data.draw(st.booleans()) else {}
    run(evms, "Reshape", [x], attrs, {1: i64(spec)}, seed=seed)


@given(x=tensors(), data=st.data(), seed=seeds)
@FUZZ
def test_flatten(evms, x, data, seed) -> None:
    r = x.ndim
    attrs = {} if data.draw(st.booleans()) and r >= 1 else {"axis": data.draw(st.integers(-r, r))}
    run(evms, "Flatten", [x], attrs, seed=seed)


@given(data=st.data(), seed=seeds, opset=st.sampled_from([11, 13, 18]))
@FUZZ
def test_squeeze(evms, data, seed, opset) -> None:
    shape = data.draw(shapes(side=st.sampled_from([1, 1, 2, 3] * 4 + [0])))
    x = data.draw(tensors(shape=shape))
    ones = [k for k, d in enumerate(shape) if d == 1]
    if ones and data.draw(st.integers(0, 3)):
        axes = data.draw(st.lists(st.sampled_from(ones), min_size=1, unique=True))
        axes = [a - len(shape) if data.draw(st.booleans()) else a for a in axes]
        if opset >= 13:
            run(evms, "Squeeze", [x], None, {1: i64(axes)}, opset, seed)
        else:
            run(evms, "Squeeze", [x], {"axes": axes}, None, opset, seed)
    else:  # no axes: every dim of size 1
        run(evms, "Squeeze", [x], None, None, opset, seed)


@given(data=st.data(), x=tensors(max_rank=4), seed=seeds, opset=st.sampled_from([11, 13, 18]))
@FUZZ
def test_unsqueeze(evms, data, x, seed, opset) -> None:
    rank = data.draw(st.integers(x.ndim + 1, 6))
    axes = data.draw(st.lists(st.integers(0, rank - 1), min_size=rank - x.ndim, max_size=rank - x.ndim, unique=True))
    axes = [a - rank if data.draw(st.booleans()) else a for a in axes]
    if opset >= 13:
        if len(axes) == 1 and data.draw(st.booleans()):
            run(evms, "Unsqueeze", [x], None, {1: i64(axes[0])}, opset, seed)  # scalar axes
        else:
            run(evms, "Unsqueeze", [x], None, {1: i64(axes)}, opset, seed)
    else:
        run(evms, "Unsqueeze", [x], {"axes": axes}, None, opset, seed)


# --------------------------------------------------------------------------------- Transpose


@given(data=st.data(), x=tensors(max_rank=6), seed=seeds)
@FUZZ
def test_transpose(evms, data, x, seed) -> None:
    if x.ndim == 0 or data.draw(st.integers(0, 4)) == 0:
        attrs = {}  # default: reversed axes (onnx cannot write an empty perm)
    else:
        attrs = {"perm": data.draw(st.permutations(range(x.ndim)))}
    run(evms, "Transpose", [x], attrs, seed=seed)


# --------------------------------------------------------------------------------- Concat


@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
@FUZZ
def test_concat(evms, data, seed, dtype) -> None:
    base = data.draw(shapes(min_rank=1))
    r = len(base)
    axis = data.draw(st.integers(-r, r - 1))
    pieces = data.draw(st.lists(st.sampled_from([1, 2, 3, 0]), min_size=1, max_size=4))
    xs = []
    for j, d in enumerate(pieces):
        s = list(base)
        s[axis] = d
        xs.append(filled(tuple(s), dtype, seed + j))
    run(evms, "Concat", xs, {"axis": axis}, seed=seed)


def test_concat_sixteen_inputs(evms) -> None:
    xs = [np.full((2, j % 3, 1), j, np.int32) for j in range(16)]
    case = node_case("Concat", xs, {"axis": 1})
    check_node(evms.rv, case)
    check_node(evms.boa, case)


# --------------------------------------------------------------------------------- Slice

EXTREMES = [I64_MIN, I64_MIN + 1, I64_MAX, -(2**31), 2**31 - 1]
bounds = st.one_of(st.integers(-7, 7), st.sampled_from(EXTREMES))
steps = st.one_of(st.integers(-3, 3).filter(bool), st.sampled_from([I64_MIN, I64_MAX, -(2**31), 2**31 - 1]))


@st.composite
def slice_axis(draw, d: int, unit: bool) -> tuple[int, int, int]:
    """(start, end, step) for an axis of dim d: usually a non-empty range written in one of
    ONNX's ways (negative, clamped, extreme), sometimes anything. `unit`: step 1."""
    if d == 0 or draw(st.integers(0, 4)) == 0:
        return draw(bounds), draw(bounds), 1 if unit else draw(steps)
    step = 1 if unit else draw(st.sampled_from([1, 1, 2, 3, -1, -1, 2**31 - 1, I64_MAX, -2, -3, I64_MIN]))
    if step > 0:
        i = draw(st.integers(0, d - 1))
        j = draw(st.integers(i + 1, d))  # exclusive end
        end = draw(st.sampled_from([j, j - d] if j < d else [d, d + 3, I64_MAX, 2**31 - 1]))
    else:
        i = draw(st.integers(0, d - 1))
        j = draw(st.integers(-1, i - 1))  # exclusive end; -1 is before index 0
        end = draw(st.sampled_from([j, j - d] if j >= 0 else [-d - 1, -d - 5, I64_MIN, -(2**31)]))
    start = draw(st.sampled_from([i, i - d]))
    if step > 0 and i == 0:
        start = draw(st.sampled_from([0, -d, -d - 2, I64_MIN]))  # clamped up to 0
    if step < 0 and i == d - 1:
        start = draw(st.sampled_from([d - 1, -1, d, d + 4, I64_MAX]))  # clamped down to d - 1
    return start, end, step


@given(data=st.data(), x=tensors(), seed=seeds, opset=st.sampled_from([9, 13, 18, 18]))
@FUZZ
def test_slice(evms, data, x, seed, opset) -> None:
    r = x.ndim
    axes = data.draw(st.lists(st.integers(0, r - 1), max_size=r, unique=True)) if r else []
    n = len(axes)
    if n == 0:
        opset = 18  # Slice-1 needs its attributes
    with_steps = opset >= 10 and data.draw(st.integers(0, 3)) > 0
    picked = [data.draw(slice_axis(x.shape[a], not with_steps)) for a in axes]
    starts = [p[0] for p in picked]
    ends = [p[1] for p in picked]
    axes = [a - r if data.draw(st.booleans()) else a for a in axes]
    if opset < 10:  # Slice-1: attributes, unit steps
        run(evms, "Slice", [x], {"starts": starts, "ends": ends, "axes": axes}, None, opset, seed)
        return
    consts = {1: i64(starts), 2: i64(ends)}
    if with_steps or data.draw(st.integers(0, 3)) or axes != list(range(n)):
        consts[3] = i64(axes)
    if with_steps:
        consts[4] = i64([p[2] for p in picked])
    run(evms, "Slice", [x], None, consts, opset, seed)


# --------------------------------------------------------------------------------- Gather


@given(data=st.data(), x=tensors(min_rank=1), seed=seeds, idt=st.sampled_from([np.int32, np.int64]))
@FUZZ
def test_gather(evms, data, x, seed, idt) -> None:
    r = x.ndim
    axis = data.draw(st.integers(-r, r - 1))
    n = x.shape[axis]
    q_shape = data.draw(shapes(max_rank=6 - r, side=st.sampled_from([1, 2, 3] * 5 + [0])))
    info = np.iinfo(idt)
    values = st.one_of(st.integers(-n - 2, n + 1), st.sampled_from([int(info.min), int(info.max)]))
    idx = np.array(data.draw(st.lists(values, min_size=math.prod(q_shape), max_size=math.prod(q_shape))), idt)
    attrs = {} if axis == 0 and data.draw(st.booleans()) else {"axis": axis}
    run(evms, "Gather", [x, idx.reshape(q_shape)], attrs, seed=seed)


# --------------------------------------------------------------------------------- Expand


@given(data=st.data(), seed=seeds, dtype=st.sampled_from(DTYPES))
@FUZZ
def test_expand(evms, data, seed, dtype) -> None:
    out = data.draw(shapes(max_rank=6))
    R = len(out)
    r = data.draw(st.integers(0, R))  # input rank; the shape input has rank s
    s = data.draw(st.integers(0, R))
    # right-aligned: one of the input dim and the shape dim is the output dim, the other 1 or it
    xs, ss = [], []
    for k in range(R):
        in_x, in_s = k >= R - r, k >= R - s
        d = out[k]
        if in_x and in_s:
            a, b = data.draw(st.sampled_from([(d, d), (1, d), (d, 1)]))
        elif in_x:
            a, b = d, None
        elif in_s:
            a, b = None, d
        else:
            a, b = None, None
        if a is not None:
            xs.append(a)
        if b is not None:
            ss.append(b)
    x = filled(tuple(xs), dtype, seed)
    run(evms, "Expand", [x], None, {1: i64(ss)}, seed=seed)


# --------------------------------------------------------------------------------- fixed cases


def test_every_element_of_small_cases(evms) -> None:
    """Whole outputs of a few hand-picked nodes, including SPEC 4.3's documented edge cases,
    in both EVMs."""
    x = np.arange(1, 25, dtype=np.int64).reshape(2, 3, 4)
    cases = [
        node_case("Reshape", [x], None, {1: i64([0, -1, 2])}),
        node_case("Transpose", [x], {"perm": [1, 2, 0]}),
        node_case("Concat", [x, x[:, :0], -x[:, 1:]], {"axis": -2}),
        # step < 0 and start < -d selects index 0 (numpy would select nothing)
        node_case("Slice", [x], None, {1: i64([-100]), 2: i64([-200]), 3: i64([2]), 4: i64([-1])}),
        node_case("Slice", [x], None, {1: i64([I64_MAX, 0]), 2: i64([I64_MIN, 5]), 3: i64([1, 2]), 4: i64([-2, 3])}),
        node_case("Gather", [x, np.array([[-1, 3], [-4, 0]], np.int32)], {"axis": 1}),
        node_case("Gather", [x.astype(np.bool_), np.array(-2, np.int64)], {"axis": 2}),
        node_case("Expand", [x[:, :1, :]], None, {1: i64([2, 1, 3, 1])}),
        node_case("Flatten", [x], {"axis": 0}),
        node_case("Unsqueeze", [x], None, {1: i64([-1, 0])}),
        node_case("Squeeze", [x[:1, :, :1]], None, None),
    ]
    for case in cases:
        check_node(evms.rv, case)
        check_node(evms.boa, case)


def test_gather_out_of_range_reads_only_the_index(shape_contract) -> None:
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    case = node_case("Gather", [x, np.array([3, -4, 2], np.int64)], {"axis": 1})
    c = shape_contract
    assert [tuple(n) for n in c.needs(case.desc, case.in_headers, 0, DIRECT, 0, [])] == [(1, 0)]
    assert [tuple(n) for n in c.needs(case.desc, case.in_headers, 0, DIRECT, 0, [3])] == [(1, 0)]
    assert [tuple(n) for n in c.needs(case.desc, case.in_headers, 4, DIRECT, 0, [-4])] == [(1, 1)]
    assert [tuple(n) for n in c.needs(case.desc, case.in_headers, 5, DIRECT, 0, [2])] == [(1, 2), (0, 5)]
    assert c.compute(case.desc, case.in_headers, 0, DIRECT, 0, 0, [3]) == 0
    assert c.compute(case.desc, case.in_headers, 5, DIRECT, 0, 0, [2, 5]) == 5


def test_bool_element_is_0_or_1(shape_contract) -> None:
    """SPEC 1.3: a non-canonical bool byte (2) still yields a 0/1 element."""
    x = np.array([True, False, True])
    case = node_case("Reshape", [x], None, {1: i64([3, 1])})
    assert shape_contract.compute(case.desc, case.in_headers, 0, DIRECT, 0, 0, [2]) == 1
    assert shape_contract.compute(case.desc, case.in_headers, 0, DIRECT, 0, 0, [0]) == 0


def test_terms_is_zero(shape_contract) -> None:
    case = node_case("Transpose", [np.zeros((2, 3), np.int8)])
    assert shape_contract.terms(case.desc, case.in_headers) == 0


def test_runtime_bytecode_fits_eip170(shape_contract, rv) -> None:
    code = boa.env.get_code(shape_contract.address)
    assert 0 < len(code) <= EIP170, len(code)
    assert bytes(code) == rv.runtime  # both EVMs run the same bytecode


# --------------------------------------------------------------------------------- reverts


def header(dtype: int, dims: list[int]) -> bytes:
    out = bytearray(32)
    out[0], out[1] = dtype, len(dims)
    for k, d in enumerate(dims):
        out[2 + 4 * k : 6 + 4 * k] = d.to_bytes(4, "big")
    return bytes(out)


def desc(op: int, n_in: int, attrs: list[int]) -> bytes:
    out = bytearray([op, n_in])
    for i in range(n_in):
        out += i.to_bytes(2, "big")
    out += (n_in).to_bytes(2, "big") + bytes([len(attrs)])
    for a in attrs:
        out += a.to_bytes(8, "big", signed=True)
    return bytes(out)


INT8, INT32, INT64, BOOL = 3, 6, 7, 9


@pytest.fixture(scope="module")
def transpose_case():
    return node_case("Transpose", [np.arange(6, dtype=np.int32).reshape(2, 3)])


def test_revert_out_index_out_of_range(shape_contract, transpose_case) -> None:
    c, case = shape_contract, transpose_case
    with boa.reverts("onestep: out_index out of range"):
        c.needs(case.desc, case.in_headers, 6, DIRECT, 0, [])
    with boa.reverts("onestep: out_index out of range"):
        c.compute(case.desc, case.in_headers, 2**256 - 1, DIRECT, 0, 0, [1])
    empty = node_case("Reshape", [np.zeros((0, 3), np.int8)], {"allowzero": 1}, {1: i64([3, 0])})
    with boa.reverts("onestep: out_index out of range"):
        c.needs(empty.desc, empty.in_headers, 0, DIRECT, 0, [])


def test_revert_wrong_phase(shape_contract, transpose_case) -> None:
    c, case = shape_contract, transpose_case
    with boa.reverts("onestep: phase must be DIRECT for a shape op"):
        c.needs(case.desc, case.in_headers, 0, INIT, 0, [])
    with boa.reverts("onestep: phase must be DIRECT for a shape op"):
        c.compute(case.desc, case.in_headers, 0, 2, 0, 0, [1])
    with boa.reverts("onestep: k must be 0 for a direct op"):
        c.needs(case.desc, case.in_headers, 0, DIRECT, 1, [])
    with boa.reverts("onestep: shape ops are direct, nothing to finalize"):
        c.finalize(case.desc, case.in_headers, 0)


def test_revert_op_not_ours(shape_contract) -> None:
    h = header(INT32, [2, 3])
    for op in (0, 1, 2, 24, 28, 34, 39, 0xFF):
        with boa.reverts("onestep: op is not a shape op"):
            shape_contract.output_header(desc(op, 1, [2, 3, 2]), [h])
    with boa.reverts("onestep: op is not a shape op"):
        shape_contract.terms(desc(2, 2, []), [h, h])


def test_revert_values(shape_contract, transpose_case) -> None:
    c, case = shape_contract, transpose_case
    with boa.reverts("onestep: values do not answer every need"):
        c.compute(case.desc, case.in_headers, 1, DIRECT, 0, 0, [])
    with boa.reverts("onestep: more values than needs"):
        c.compute(case.desc, case.in_headers, 1, DIRECT, 0, 0, [1, 2])
    g = node_case("Gather", [np.arange(3, dtype=np.int8), np.array([7], np.int64)])
    with boa.reverts("onestep: more values than needs"):  # index out of range: nothing more to read
        c.compute(g.desc, g.in_headers, 0, DIRECT, 0, 0, [7, 0])
    with boa.reverts("onestep: values do not answer every need"):
        c.compute(g.desc, g.in_headers, 0, DIRECT, 0, 0, [])


RESHAPE, TRANSPOSE, CONCAT, SLICE, GATHER, EXPAND = 25, 26, 27, 31, 32, 33
H23 = header(INT32, [2, 3])

BAD_NODES = [
    # (descriptor, input headers, reason)
    (b"\x19\x01\x00", [H23], "onestep: malformed descriptor"),
    (desc(RESHAPE, 1, [2, 3, 2])[:-1], [H23], "onestep: malformed descriptor"),
    (desc(RESHAPE, 1, [2, 3, 2]) + b"\x00", [H23], "onestep: malformed descriptor"),
    (desc(RESHAPE, 17, []), [H23] * 16, "onestep: malformed descriptor"),
    (desc(RESHAPE, 2, [2, 3, 2]), [H23, H23], "onestep: op takes 1 input"),
    (desc(GATHER, 1, [0]), [H23], "onestep: Gather takes 2 inputs"),
    (desc(CONCAT, 0, [0]), [], "onestep: Concat needs at least one input"),
    (desc(RESHAPE, 1, [2, 3, 2]), [H23, H23], "onestep: in_headers length differs from n_in"),
    (desc(RESHAPE, 1, [2, 3, 2]), [], "onestep: in_headers length differs from n_in"),
    (bytes([RESHAPE, 1, 0xFF, 0xFF, 0, 1, 3]) + b"".join(a.to_bytes(8, "big") for a in (2, 3, 2)), [H23],
     "onestep: required input is absent"),  # fmt: skip
    (desc(RESHAPE, 1, [2, 3, 2]), [bytes(32)], "onestep: input header not canonical"),
    (desc(RESHAPE, 1, [2, 3, 2]), [header(8, [2, 3])], "onestep: input header not canonical"),
    (desc(RESHAPE, 1, [2, 3, 2]), [H23[:-1] + b"\x01"], "onestep: input header not canonical"),
    (desc(RESHAPE, 1, [2, 3, 2]), [bytes([INT32, 7]) + bytes(30)], "onestep: input header not canonical"),
    (desc(RESHAPE, 1, [2, 2**16, 2**16]), [header(INT32, [2**16, 2**16])], "onestep: input header not canonical"),
    # Reshape / Expand shape attrs
    (desc(RESHAPE, 1, [2, 3, 3]), [H23], "onestep: Reshape changes the element count"),
    (desc(RESHAPE, 1, [1, 5]), [H23], "onestep: Reshape changes the element count"),
    (desc(RESHAPE, 1, [0]), [H23], "onestep: Reshape changes the element count"),
    (desc(RESHAPE, 1, [3, 6, 1]), [H23], "onestep: shape attrs are not (rank, dims..)"),
    (desc(RESHAPE, 1, [7, 1, 1, 1, 1, 1, 1, 6]), [H23], "onestep: shape attr rank outside 0..6"),
    (desc(RESHAPE, 1, [-1]), [H23], "onestep: shape attr rank outside 0..6"),
    (desc(RESHAPE, 1, []), [H23], "onestep: shape attr rank outside 0..6"),
    (desc(RESHAPE, 1, [2, -2, -3]), [H23], "onestep: shape attr dim outside 0..2^32-1"),
    (desc(RESHAPE, 1, [2, 2**32, 0]), [header(INT32, [0])], "onestep: shape attr dim outside 0..2^32-1"),
    (desc(EXPAND, 1, [1, 3]), [H23], "onestep: Expand shape has lower rank than input"),
    (desc(EXPAND, 1, [2, 2, 4]), [H23], "onestep: Expand input does not broadcast"),
    (desc(EXPAND, 1, [2, 0, 3]), [H23], "onestep: Expand input does not broadcast"),
    (desc(EXPAND, 1, [3, 2**16, 2**16, 1]), [header(INT32, [1])], "onestep: output has 2^32 or more elements"),
    # Transpose
    (desc(TRANSPOSE, 1, [0]), [H23], "onestep: Transpose perm length differs from rank"),
    (desc(TRANSPOSE, 1, [0, 0]), [H23], "onestep: Transpose perm is not a permutation"),
    (desc(TRANSPOSE, 1, [1, 2]), [H23], "onestep: Transpose perm entry outside 0..rank-1"),
    (desc(TRANSPOSE, 1, [-1, 0]), [H23], "onestep: Transpose perm entry outside 0..rank-1"),
    # Concat
    (desc(CONCAT, 2, [0]), [H23, header(INT32, [2, 4])], "onestep: Concat input dims differ off axis"),
    (desc(CONCAT, 2, [1]), [H23, header(INT32, [3, 3])], "onestep: Concat input dims differ off axis"),
    (desc(CONCAT, 2, [0]), [H23, header(INT64, [2, 3])], "onestep: Concat input dtypes differ"),
    (desc(CONCAT, 2, [0]), [H23, header(INT32, [2, 3, 1])], "onestep: Concat input ranks differ"),
    (desc(CONCAT, 1, [2]), [H23], "onestep: Concat axis outside 0..rank-1"),
    (desc(CONCAT, 1, [-1]), [H23], "onestep: Concat axis outside 0..rank-1"),
    (desc(CONCAT, 1, [0, 0]), [H23], "onestep: Concat axis outside 0..rank-1"),
    (desc(CONCAT, 1, [0]), [header(INT32, [])], "onestep: Concat of rank-0 inputs"),
    (desc(CONCAT, 2, [0]), [header(BOOL, [2**31, 1])] * 2, "onestep: Concat output dim too large"),
    (desc(CONCAT, 2, [0]), [header(BOOL, [2**30, 2])] * 2, "onestep: output has 2^32 or more elements"),
    # Slice
    (desc(SLICE, 1, [0, 1, 2]), [H23], "onestep: Slice needs 3 attrs per axis"),
    (desc(SLICE, 1, [0, 1, 2, 0, 0, 3]), [H23], "onestep: Slice step is 0"),
    (desc(SLICE, 1, [0, 1, 2, 0, 1, -1]), [H23], "onestep: Slice length is negative"),
    (desc(SLICE, 1, [0, 1, 2, 1, 1, 0]), [H23], "onestep: Slice empty axis has start != 0"),
    (desc(SLICE, 1, [0, 1, 2, 3, 1, 1]), [H23], "onestep: Slice start outside the input"),
    (desc(SLICE, 1, [0, 1, 2, -1, 1, 1]), [H23], "onestep: Slice start outside the input"),
    (desc(SLICE, 1, [0, 1, 3, 0, 1, 3]), [H23], "onestep: Slice end outside the input"),
    (desc(SLICE, 1, [1, -1, 3, 0, 1, 3]), [H23], "onestep: Slice end outside the input"),
    (desc(SLICE, 1, [0, 1, 2, 2, I64_MAX, 2]), [H23], "onestep: Slice end outside the input"),
    # Gather
    (desc(GATHER, 2, [0]), [H23, header(INT8, [2])], "onestep: Gather indices not int32/int64"),
    (desc(GATHER, 2, [0]), [H23, header(BOOL, [2])], "onestep: Gather indices not int32/int64"),
    (desc(GATHER, 2, [2]), [H23, header(INT64, [2])], "onestep: Gather axis outside 0..rank-1"),
    (desc(GATHER, 2, [-2]), [H23, header(INT64, [2])], "onestep: Gather axis outside 0..rank-1"),
    (desc(GATHER, 2, []), [H23, header(INT64, [2])], "onestep: Gather axis outside 0..rank-1"),
    (desc(GATHER, 2, [0]), [header(INT32, []), header(INT64, [2])], "onestep: Gather data is rank 0"),
    (desc(GATHER, 2, [0]), [H23, header(INT64, [1] * 6)], "onestep: Gather output rank above 6"),
    (desc(GATHER, 2, [1]), [header(INT8, [2**16, 1]), header(INT64, [2**16])],
     "onestep: output has 2^32 or more elements"),  # fmt: skip
]


@pytest.mark.parametrize("d, hs, reason", BAD_NODES, ids=[r.removeprefix("onestep: ") for _, _, r in BAD_NODES])
def test_revert_inconsistent_nodes(shape_contract, d, hs, reason) -> None:
    with boa.reverts(reason):
        shape_contract.output_header(d, hs)
    with boa.reverts(reason):
        shape_contract.needs(d, hs, 0, DIRECT, 0, [])
