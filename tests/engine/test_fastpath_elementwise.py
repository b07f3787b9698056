"""The elementwise/shape/reduce fast kernels equal the reference bit for bit, and are used only
after their self-test."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from verifier.engine import fastpath
from verifier.engine import fastpath_elementwise as fe
from verifier.engine.fastpath import (
    disable_fast_path,
    enable_fast_path,
    fast_path_verdicts,
    run_op,
    self_test,
)
from verifier.engine.ops import FAST, REGISTRY
from verifier.engine.program import Program, load_program

Inputs = list[np.ndarray | None]
INTS: list[type[np.generic]] = [np.int8, np.int32, np.int64]
ALL: list[type[np.generic]] = [*INTS, np.bool_]
PROP = settings(max_examples=150, deadline=None)
MLP = "onnx_models/mlp_train.onnx"


@pytest.fixture(autouse=True)
def _fast_path_off() -> Iterator[None]:
    disable_fast_path()
    yield
    disable_fast_path()


def same(x: np.ndarray, y: np.ndarray) -> bool:
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def check(name: str, inputs: Inputs, attrs: tuple[int, ...]) -> np.ndarray:
    """fast == reference bit for bit; the fast result is a fresh ndarray; inputs untouched."""
    before = [None if x is None else x.copy() for x in inputs]
    ref = REGISTRY[name].run(inputs, attrs)
    fast = fe.KERNELS[name](inputs, attrs)
    assert type(fast) is np.ndarray, (name, type(fast))
    assert same(fast, ref), (name, inputs, attrs, fast, ref)
    for x, b in zip(inputs, before):
        if x is not None:
            assert same(x, b)  # type: ignore[arg-type]
            assert fast.size == 0 or not np.shares_memory(fast, x)
    if all(x is None or x.flags.c_contiguous for x in inputs):
        assert fast.flags.c_contiguous
    return ref


# ---------------------------------------------------------------------------------------------
# Strategies: edge-heavy values (MIN, MAX, -1, 0...), broadcasting with rank 0, size 1 and 0.


def elements(dtype: type[np.generic]) -> st.SearchStrategy[int] | st.SearchStrategy[bool]:
    if dtype is np.bool_:
        return st.booleans()
    info = np.iinfo(dtype)
    return st.one_of(st.sampled_from(fe.edges(dtype)), st.integers(-9, 9), st.integers(int(info.min), int(info.max)))


def wrap(v: int, dtype: type[np.generic]) -> int:
    bits = np.iinfo(dtype).bits
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


@st.composite
def layout(draw: st.DrawFn, a: np.ndarray) -> np.ndarray:
    """The same values, C-ordered or as a non-contiguous (Fortran-ordered or strided) array."""
    kind = draw(st.sampled_from(["c", "c", "f", "strided"]))
    if kind == "f" and a.ndim >= 2:
        return np.asfortranarray(a)
    if kind == "strided" and a.ndim >= 1:
        return np.repeat(a, 2, axis=-1)[..., ::2]
    return a


@st.composite
def array(draw: st.DrawFn, dtype: type[np.generic], shape: tuple[int, ...], elems: st.SearchStrategy | None = None) -> np.ndarray:
    a = draw(hnp.arrays(dtype, shape, elements=elems if elems is not None else elements(dtype)))
    return draw(layout(np.asarray(a)))


def shapes(n: int, max_dims: int = 3) -> st.SearchStrategy:
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=max_dims, min_side=0, max_side=4)


DTYPES = {
    **dict.fromkeys(["Add", "Sub", "Mul", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"], INTS),
    "Equal": ALL,
    **dict.fromkeys(["And", "Or", "Xor"], [np.bool_]),
}


@pytest.mark.parametrize("name", list(DTYPES))
@PROP
@given(data=st.data())
def test_binary__random__equals_reference(name: str, data: st.DataObject) -> None:
    dt = data.draw(st.sampled_from(DTYPES[name]))
    sa, sb = data.draw(shapes(2)).input_shapes
    check(name, [data.draw(array(dt, sa)), data.draw(array(dt, sb))], ())


@pytest.mark.parametrize("name", ["Max", "Min"])
@PROP
@given(data=st.data())
def test_variadic__random__equals_reference(name: str, data: st.DataObject) -> None:
    dt = data.draw(st.sampled_from(INTS))
    n = data.draw(st.integers(1, 4))
    check(name, [data.draw(array(dt, s)) for s in data.draw(shapes(n)).input_shapes], ())


UNARY = {
    "Identity": ALL,
    "Neg": INTS,
    "Abs": INTS,
    "Sign": INTS,
    "Relu": INTS,
    "Not": [np.bool_],
}


@pytest.mark.parametrize("name", list(UNARY))
@PROP
@given(data=st.data())
def test_unary__random__equals_reference(name: str, data: st.DataObject) -> None:
    dt = data.draw(st.sampled_from(UNARY[name]))
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    check(name, [data.draw(array(dt, shape))], ())


@PROP
@given(data=st.data())
def test_cast__random__equals_reference(data: st.DataObject) -> None:
    src = data.draw(st.sampled_from(ALL))
    to = data.draw(st.sampled_from([3, 6, 7, 9]))
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    check("Cast", [data.draw(array(src, shape))], (to,))


def divisor_values(dtype: type[np.generic]) -> st.SearchStrategy[int]:
    info = np.iinfo(dtype)
    pow2 = [s * (1 << k) for k in range(info.bits - 1) for s in (1, -1)] + [-(1 << (info.bits - 1))]
    usual = [d for d in (0, -1, 1, 2, -2, 3, -3, 4, 8, 16, -16, 100, 256, 1437, 4096, 65536) if info.min <= d <= info.max]
    return st.one_of(
        st.sampled_from(usual), st.sampled_from(fe.edges(dtype)), st.sampled_from(pow2), st.integers(-20, 20), elements(dtype)
    )


@st.composite
def division_case(draw: st.DrawFn) -> Inputs:
    dt = draw(st.sampled_from(INTS))
    if draw(st.booleans()):  # a size-1 divisor (rank 0 to 3), dividends with its multiples
        d = draw(divisor_values(dt))
        sb = draw(st.sampled_from(fe.SCALAR_SHAPES))
        sa = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
        # exact multiples of d and their neighbours
        multiples = st.integers(-40, 40).map(lambda k: wrap(k * d + (-1, 0, 0, 1)[k % 4], dt))
        a = draw(array(dt, sa, st.one_of(elements(dt), multiples)))
        return [a, np.full(sb, d, dt)]
    sa, sb = draw(shapes(2)).input_shapes  # an array divisor, with or without 0 and -1
    a = draw(array(dt, sa))
    b = draw(array(dt, sb, divisor_values(dt)))
    if draw(st.booleans()):
        b = np.where((b == 0) | (b == -1), np.array(3, dt), b)
    return [a, b]


@PROP
@given(inputs=division_case())
def test_div__random__equals_reference(inputs: Inputs) -> None:
    check("Div", inputs, ())


@pytest.mark.parametrize("fmod", [0, 1])
@PROP
@given(inputs=division_case())
def test_mod__random__equals_reference(fmod: int, inputs: Inputs) -> None:
    check("Mod", inputs, (fmod,))


def test_div_mod__edges__equal_reference() -> None:
    for dt in INTS:
        lo, hi = int(np.iinfo(dt).min), int(np.iinfo(dt).max)
        a = np.array(fe.edges(dt) + [-7, 7, -8, 8, -9, 9], dt)
        for d in [0, -1, 1, 2, -2, 8, -8, 3, -3, lo, hi, 1 << (np.iinfo(dt).bits - 2)]:
            for b in (np.array(d, dt), np.full(a.shape, d, dt), np.array([[d]], dt)):
                check("Div", [a, b], ())
                check("Mod", [a, b], (0,))
                check("Mod", [a, b], (1,))
        y = fe.fast_div([np.array([lo, lo, 7, -7], dt), np.array([-1, 0, 0, 2], dt)], ())
        assert y.tolist() == [lo, 0, 0, -3]  # MIN / -1 = MIN, x / 0 = 0, truncation
        assert fe.fast_div([np.array(lo, dt), np.array(-1, dt)], ()).tolist() == lo


@st.composite
def clip_case(draw: st.DrawFn) -> Inputs:
    dt = draw(st.sampled_from(INTS))
    xs = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))

    def bound() -> np.ndarray | None:
        if draw(st.booleans()):
            return None
        k = draw(st.integers(0, len(xs)))
        shape = tuple(1 if draw(st.booleans()) else d for d in xs[k:])
        return draw(array(dt, shape))

    return [draw(array(dt, xs)), bound(), bound()]


@PROP
@given(inputs=clip_case())
def test_clip__random__equals_reference(inputs: Inputs) -> None:
    check("Clip", inputs, ())


@PROP
@given(data=st.data())
def test_where__random__equals_reference(data: st.DataObject) -> None:
    dt = data.draw(st.sampled_from(ALL))
    sc, sx, sy = data.draw(shapes(3)).input_shapes
    check("Where", [data.draw(array(np.bool_, sc)), data.draw(array(dt, sx)), data.draw(array(dt, sy))], ())


@st.composite
def gather_case(draw: st.DrawFn) -> tuple[Inputs, tuple[int, ...]]:
    ds = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
    axis = draw(st.integers(0, len(ds) - 1))
    n = ds[axis]
    it = draw(st.sampled_from([np.int32, np.int64]))
    lim = np.iinfo(it)
    outside = st.sampled_from([n, n + 1, -n - 1, -n - 2, int(lim.min), int(lim.max)])
    if n == 0:
        ix = st.one_of(outside, st.just(0))
    elif draw(st.booleans()):
        ix = st.integers(-n, n - 1)  # all in range: np.take
    else:
        ix = st.one_of(st.integers(-n, n - 1), outside)  # some out of range: 0 (the reference)
    ishape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4))
    idx = draw(hnp.arrays(it, ishape, elements=ix))
    dt = draw(st.sampled_from(ALL))
    nonzero = st.just(True) if dt is np.bool_ else elements(dt).filter(bool)  # a gathered 0 must mean "out of range"
    return [draw(array(dt, ds, nonzero)), np.asarray(idx)], (axis,)


@PROP
@given(case=gather_case())
def test_gather__random__equals_reference(case: tuple[Inputs, tuple[int, ...]]) -> None:
    check("Gather", *case)


@PROP
@given(data=st.data())
def test_transpose__random__equals_reference(data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    check("Transpose", [data.draw(array(data.draw(st.sampled_from(ALL)), shape))], perm)


@PROP
@given(data=st.data())
def test_reshape_expand__random__equal_reference(data: st.DataObject) -> None:
    dt = data.draw(st.sampled_from(ALL))
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
    x = data.draw(array(dt, shape))
    # Reshape: the dims regrouped (a permutation of them, with 1s inserted) keep the size.
    target = list(data.draw(st.permutations(shape)))
    for _ in range(data.draw(st.integers(0, 2))):
        target.insert(data.draw(st.integers(0, len(target))), 1)
    if data.draw(st.booleans()):
        target = [math.prod(shape)]
    check("Reshape", [x], (len(target), *target))
    # Expand: x's dims (1s stretched), with leading dims added.
    lead = data.draw(st.lists(st.integers(0, 3), max_size=2))
    out = (*lead, *(data.draw(st.integers(0, 3)) if d == 1 else d for d in shape))
    check("Expand", [x], (len(out), *out))


@pytest.mark.parametrize("name", ["ReduceSum", "ReduceMax", "ReduceMin"])
@PROP
@given(data=st.data())
def test_reduce__random__equals_reference(name: str, data: st.DataObject) -> None:
    dt = data.draw(st.sampled_from(INTS if name == "ReduceSum" else ALL))
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    axes = sorted(data.draw(st.sets(st.integers(0, len(shape) - 1))) if shape else [])
    keep = 1 if not axes else data.draw(st.integers(0, 1))
    check(name, [data.draw(array(dt, shape))], (keep, len(axes), *axes))


def test_reduce_sum__wraps_like_reference() -> None:
    for dt in INTS:
        info = np.iinfo(dt)
        x = np.full((5, 1000), info.max, dt)
        x[2] = info.min
        for attrs in ((0, 1, 1), (1, 2, 0, 1), (0, 1, 0)):
            check("ReduceSum", [x], attrs)


@pytest.mark.parametrize("name", ["ArgMax", "ArgMin"])
@PROP
@given(data=st.data())
def test_arg__random__equals_reference(name: str, data: st.DataObject) -> None:
    dt = data.draw(st.sampled_from(INTS))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    axis = data.draw(st.integers(0, len(shape) - 1))
    ties = st.integers(-1, 1)  # many equal values: first vs last index matters
    x = data.draw(array(dt, shape, st.one_of(ties, elements(dt))))
    check(name, [x], (axis, data.draw(st.integers(0, 1)), data.draw(st.integers(0, 1))))


def test_zero_d__no_numpy_scalars_and_no_warnings() -> None:
    # 0-d ufunc results would be numpy scalars, whose arithmetic warns on overflow.
    for dt in INTS:
        lo, hi = np.array(np.iinfo(dt).min, dt), np.array(np.iinfo(dt).max, dt)
        for name in ("Add", "Sub", "Mul", "Div", "Less", "Equal", "Max"):
            check(name, [hi, hi], ())
            check(name, [lo, np.array(-1, dt)], ())
        check("Mod", [lo, np.array(-1, dt)], (0,))
        for name in ("Neg", "Abs", "Relu", "Sign"):
            check(name, [lo], ())
        check("Clip", [lo, hi, lo], ())
        check("Where", [np.array(True), lo, hi], ())
        check("ReduceSum", [np.array([hi, hi])], (0, 1, 0))
        check("Gather", [np.array([lo, hi]), np.array(-1)], (0,))


# ---------------------------------------------------------------------------------------------
# Self-test and registration


def test_self_test__every_kernel_passes_on_this_machine() -> None:
    assert self_test(fe.KERNELS) == dict.fromkeys(fe.KERNELS, True)
    blas = enable_fast_path(retest=True)
    assert blas == dict.fromkeys(fastpath._KERNELS, True)  # the return value is unchanged
    verdicts = fast_path_verdicts()
    assert verdicts == {**blas, **dict.fromkeys(fe.KERNELS, True)}
    for name, kernel in fe.KERNELS.items():
        assert FAST[name] is kernel
    disable_fast_path()
    assert not any(name in FAST for name in fe.KERNELS)


def _div_floors(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    a, b = inputs[0], inputs[1]
    assert a is not None and b is not None
    bad = (b == 0) | (b == -1)
    q = np.floor_divide(a, np.where(bad, 1, b))
    return np.asarray(np.where(b == 0, 0, np.where(b == -1, -a, q)))  # floor, not truncation


def _div_shift_without_bias(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    a, b = inputs[0], inputs[1]
    assert a is not None and b is not None
    d = int(b.item()) if b.size == 1 else 0
    if d > 1 and d & (d - 1) == 0:  # a floor shift: wrong for inexact negative dividends
        return np.asarray(np.right_shift(a, d.bit_length() - 1) + np.zeros(b.shape, a.dtype))
    return fe.fast_div(inputs, attrs)


def _div_warns(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    a, b = inputs[0], inputs[1]
    assert a is not None and b is not None
    q = np.floor_divide(a, b)  # RuntimeWarning on x / 0 (an error inside the self-test)
    return fe.fast_div(inputs, attrs) if q is not None else q


def _mod_ignores_fmod(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    return fe.fast_mod(inputs, (0,))


def _relu_returns_scalar(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    x = inputs[0]
    assert x is not None
    return np.maximum(x, np.zeros((), x.dtype))  # a numpy scalar for 0-d x


def _add_in_place(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    a, b = inputs[0], inputs[1]
    assert a is not None and b is not None
    if a.shape == np.broadcast_shapes(a.shape, b.shape):
        return np.add(a, b, out=a)  # right values, but it overwrites its input
    return fe.fast_add(inputs, attrs)


def _clip_min_first(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    x, lo, hi = inputs
    assert x is not None
    y = x.copy()
    if hi is not None:
        y = np.minimum(y, hi)
    if lo is not None:
        y = np.maximum(y, lo)  # differs from the reference when lo > hi
    return np.asarray(y)


def _gather_wraps(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    data, idx = inputs
    assert data is not None and idx is not None
    if data.shape[attrs[0]] == 0:
        return fe.fast_gather(inputs, attrs)
    return np.asarray(np.take(data, idx, axis=attrs[0], mode="wrap"))  # out of range is not 0


def _cast_saturates(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    x = inputs[0]
    assert x is not None
    to = fe._ONNX[attrs[0]]
    if to is np.dtype(np.bool_) or x.dtype == np.bool_:
        return fe.fast_cast(inputs, attrs)
    info = np.iinfo(to)
    return np.clip(x.astype(np.int64), int(info.min), int(info.max)).astype(to)


def _reduce_sum_keeps_dims(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    return fe.fast_reduce_sum(inputs, (1, *attrs[1:]))


def _argmax_first_always(inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
    return fe.fast_argmax(inputs, (attrs[0], attrs[1], 0))


BROKEN = [
    ("Div", _div_floors),
    ("Div", _div_shift_without_bias),
    ("Div", _div_warns),
    ("Mod", _mod_ignores_fmod),
    ("Relu", _relu_returns_scalar),
    ("Add", _add_in_place),
    ("Clip", _clip_min_first),
    ("Gather", _gather_wraps),
    ("Cast", _cast_saturates),
    ("ReduceSum", _reduce_sum_keeps_dims),
    ("ArgMax", _argmax_first_always),
]


@pytest.mark.parametrize(("name", "broken"), BROKEN, ids=[b.__name__ for _, b in BROKEN])
def test_self_test__broken_kernel__reported_false(name: str, broken: fastpath.FastKernel) -> None:
    assert self_test({name: broken}) == {name: False}
    assert self_test({name: fe.KERNELS[name]}) == {name: True}


@pytest.mark.parametrize("name", ["Div", "Gather"])
def test_enable__broken_kernel__not_registered_and_reference_used(name: str) -> None:
    broken = dict(BROKEN)[name]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(fastpath._ELEMENTWISE, name, broken)
        blas = enable_fast_path(retest=True)
        verdicts = fast_path_verdicts()
        assert verdicts[name] is False
        assert all(ok for other, ok in verdicts.items() if other != name)
        assert all(blas.values())
        assert name not in FAST
        assert FAST["Add"] is fe.fast_add  # the others are registered
        a, b = np.array([-7, 7, 9], np.int64), np.array(2, np.int64)
        if name == "Div":
            assert run_op("Div", [a, b], (), fast=True).tolist() == [-3, 3, 4]
        else:
            assert run_op("Gather", [a, np.array([3, -4, 1])], (0,), fast=True).tolist() == [0, 0, 7]
    assert fast_path_verdicts()[name] is False  # cached until retested
    enable_fast_path(retest=True)
    assert FAST[name] is fe.KERNELS[name]


def test_ensure__registers_once_and_after_disable() -> None:
    fastpath.ensure_fast_path()
    assert FAST["Div"] is fe.fast_div and FAST["MatMul"] is fastpath.fast_matmul
    disable_fast_path()
    assert "Div" not in FAST
    fastpath.ensure_fast_path()
    assert FAST["Div"] is fe.fast_div


# ---------------------------------------------------------------------------------------------
# The training program: the fast path covers its ops, and the results are the reference's.


def _node_by_node(p: Program, fast: bool) -> list[np.ndarray]:
    """The final state through the per-node engine (Program.run may take the compiled step)."""
    state = p.initial_state()
    for t in range(p.steps):
        state = p.next_state(t, state, fast)
    return state


def test_mlp_program__fast_equals_reference_and_never_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    p = load_program(MLP, steps=3)
    ref = p.run(fast=False)
    enable_fast_path()
    ops = {n.op.name for n in p.graph.nodes} - set(fastpath._KERNELS)
    assert ops <= set(fe.KERNELS)

    def no_reference(self: object, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        raise AssertionError(f"{type(self).__name__} fell back to the reference")

    for name in ops:
        monkeypatch.setattr(type(REGISTRY[name]), "run", no_reference)
    fast = dict(zip(p.state_names, _node_by_node(p, fast=True)))
    assert ref.keys() == fast.keys()
    for k in ref:
        assert same(fast[k], ref[k]), k


def test_execute__kernel_with_wrong_type__asserts(monkeypatch: pytest.MonkeyPatch) -> None:
    p = load_program(MLP, steps=1)
    enable_fast_path()
    monkeypatch.setitem(FAST, "Relu", lambda inputs, attrs: np.asarray(inputs[0]).astype(np.int32))
    with pytest.raises(AssertionError, match="kernel gave int32"):
        _node_by_node(p, fast=True)
    monkeypatch.setitem(FAST, "Relu", lambda inputs, attrs: np.asarray(inputs[0])[:1])
    with pytest.raises(AssertionError, match="inferred int64"):
        _node_by_node(p, fast=True)


def test_battery__covers_the_listed_edges() -> None:
    # The self-test battery itself holds the cases the brief asks for, for every kernel.
    rng = np.random.default_rng(0)
    cases = {name: gen(rng) for name, gen in fe.CASES.items()}
    div = cases["Div"]
    for dt in INTS:
        lo = np.iinfo(dt).min
        assert any(a.dtype == dt and (b == 0).any() and b.size > 1 for (a, b), _ in div)  # type: ignore[union-attr]
        assert any(a.dtype == dt and (a == lo).any() and (b == -1).all() for (a, b), _ in div)  # type: ignore[union-attr]
    for name in ("Add", "Where", "Div", "Mod", "Equal"):
        shapes_seen = {tuple(x.shape) for inputs, _ in cases[name] for x in inputs if x is not None}
        assert () in shapes_seen and (1,) in shapes_seen
        assert any(0 in s for s in shapes_seen)
    assert {x.dtype for inputs, _ in cases["Equal"] for x in inputs if x is not None} == {np.dtype(t) for t in ALL}
    assert list(itertools.chain(fe.CASES)) == list(fe.KERNELS)
