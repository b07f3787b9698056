"""Compiled steps (verifier.engine.compiled, docs/SPEC.md 4.7): same results as the reference wherever
the bounds prove them exact, refused (with the reason) everywhere else."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from onnx_models.market import KINDS, METAMODEL, SCORES, VALUES, program
from onnx_models.market_data import demo_round
from onnx_models.toy import accumulator_program, make_model
from solvers.cheats import WrongElement
from verifier.engine import compiled
from verifier.engine.compiled import RULES, Rule, self_test
from verifier.engine.ops import REGISTRY
from verifier.engine.program import Program, load_program, make_program
from verifier.engine.trace import Trace

MLP = "onnx_models/mlp_train.onnx"


def node_by_node(p: Program, t0: int, t1: int, state: list[np.ndarray]) -> list[np.ndarray]:
    for t in range(t0, t1):
        state = p.next_state(t, state, fast=False)
    return state


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))


# ---- the kernels' self-test ------------------------------------------------------------------


def test_every_profile_op_has_a_rule_and_passes_the_self_test() -> None:
    assert {op.name for op in REGISTRY.values()} == set(RULES)
    verdicts = compiled.verdicts()
    assert all(verdicts.values()), {k: v for k, v in verdicts.items() if not v}


def test_self_test__catches_a_wrong_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    # Floor instead of truncation: wrong only for negative inexact quotients.
    floor_div = Rule(RULES["Div"].bounds, lambda info, ivs: lambda a, b: np.floor(a / np.where(b == 0, 1.0, b)) * (b != 0))
    monkeypatch.setitem(RULES, "Div", floor_div)
    assert self_test(["Div"]) == {"Div": False}


def test_self_test__runs_each_kernel_in_float32_where_a_step_may(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel wrong only on float32 inputs (a BLAS that rounds there, say) fails the self-test:
    the battery runs every case the compiled step may hold in float32 in that width too."""
    base = RULES["MatMul"].kernel
    off_in_float32 = Rule(RULES["MatMul"].bounds, lambda info, ivs: lambda a, b: base(info, ivs)(a, b) + (a.dtype == np.float32))
    monkeypatch.setitem(RULES, "MatMul", off_in_float32)
    assert self_test(["MatMul"]) == {"MatMul": False}


def test_self_test__catches_an_unsound_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel is right, but the rule claims Abs never exceeds max(a) (wrong for negative a).
    narrow = Rule(lambda info, ivs: ((0, max(ivs[0][1], 0)), 0), RULES["Abs"].kernel)  # type: ignore[index]
    monkeypatch.setitem(RULES, "Abs", narrow)
    assert self_test(["Abs"]) == {"Abs": False}


def test_failed_self_test__program_not_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "_VERDICTS", {**compiled.verdicts(), "Clip": False})
    p = load_program(MLP, steps=4)
    assert p.compiled is None and "Clip" in p.compile_note and "self-test" in p.compile_note
    assert same(p.advance(0, 4, p.initial_state()), node_by_node(p, 0, 4, p.initial_state()))


# ---- ConvInteger over gathered rows -----------------------------------------------------------


def _conv_kernel(x, w, zx, zw, attrs, const_weights):  # noqa: ANN001, ANN202
    """The compiled kernel for one ConvInteger node, its bounds taken from these very inputs."""
    from verifier.core.dtypes import DType, TensorType

    inputs = [x, w, zx, zw]
    in_types = tuple(None if v is None else TensorType(DType.from_numpy(v.dtype), v.shape) for v in inputs)
    info = compiled.NodeInfo(
        attrs, in_types, REGISTRY["ConvInteger"].infer(in_types, attrs), tuple(v if const_weights else None for v in inputs)
    )
    ivs = [None if v is None else compiled._interval(v) for v in inputs]
    return compiled._conv_integer(info, ivs), inputs


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spatial=st.lists(st.integers(1, 7), min_size=1, max_size=2),
    kernel_seed=st.integers(0, 2**32 - 1),
    group=st.integers(1, 3),
    widths=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    const_weights=st.booleans(),
    wide=st.booleans(),
)
def test_conv_over_gathered_rows__equals_the_reference(spatial, kernel_seed, group, widths, const_weights, wide) -> None:
    # Every geometry (1-D/2-D, pads, strides, dilations, groups), zero points or none, weights
    # constant or not; `wide` makes K large enough that partial sums pass 2^24 (float64).
    rng = np.random.default_rng(kernel_seed)
    n, (batch, cg, mg) = len(spatial), widths
    kernel = [int(rng.integers(1, 4)) for _ in range(n)]
    dilations = [int(rng.integers(1, 3)) for _ in range(n)]
    strides = [int(rng.integers(1, 3)) for _ in range(n)]
    pads = [int(rng.integers(0, 3)) for _ in range(2 * n)]
    if any(d + pads[i] + pads[n + i] < (k - 1) * dl + 1 for i, (d, k, dl) in enumerate(zip(spatial, kernel, dilations))):
        return  # the window does not fit: the op refuses it
    cin = group * cg * (300 if wide else 1)
    x = rng.integers(-128, 128, (batch, cin, *spatial)).astype(np.int8)
    w = rng.integers(-128, 128, (group * mg, cin // group, *kernel)).astype(np.int8)
    zx = None if kernel_seed % 3 == 0 else np.array(int(rng.integers(-128, 128)), np.int8)
    zw = None if kernel_seed % 5 == 0 else np.array(int(rng.integers(-128, 128)), np.int8)
    if wide:  # terms of 255 * 255 (odd) over K >= 300: sums float32 cannot hold
        x[...], w[...], zx, zw = 127, 127, np.array(-128, np.int8), np.array(-128, np.int8)
    attrs = (n, group, *kernel, *pads, *strides, *dilations)
    kernel_fn, inputs = _conv_kernel(x, w, zx, zw, attrs, const_weights)
    assert kernel_fn.__name__ == "conv"  # the gathered rows, not the fallback
    want = REGISTRY["ConvInteger"].run(inputs, attrs)
    got = kernel_fn(*[None if v is None else v.astype(np.float64) for v in inputs])
    assert got.dtype == np.float64 and got.shape == want.shape and np.array_equal(got, want)


def test_conv__float32_past_2_24__caught_by_the_self_test(monkeypatch: pytest.MonkeyPatch) -> None:
    # float32 loses odd integers past 2^24: the width rule is what keeps such sums in float64.
    monkeypatch.setattr(compiled, "FLOAT32_EXACT", 2**53)
    assert self_test(["ConvInteger"]) == {"ConvInteger": False}


def test_conv__patches_over_the_limit__fall_back_to_the_windowed_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    x, w = rng.integers(-128, 128, (4, 3, 6, 6)).astype(np.int8), rng.integers(-128, 128, (2, 3, 3, 3)).astype(np.int8)
    attrs = (2, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1)
    monkeypatch.setattr(compiled, "IM2COL_BYTES", 1024)
    kernel_fn, inputs = _conv_kernel(x, w, None, None, attrs, True)
    assert kernel_fn.__name__ == "reference"
    assert np.array_equal(kernel_fn(x.astype(np.float64), w.astype(np.float64)), REGISTRY["ConvInteger"].run(inputs, attrs))


# ---- differences of a value and its group's extreme --------------------------------------------


def _gaps_program() -> Program:
    """Subs of a (3, 3) state and its reductions: the max/min of its own rows (kept), of all of
    it, of rows of another slot, and of its rows without keepdims (which broadcasts row i's
    max along column i: misaligned)."""
    red = lambda op, x, out, keep, axes="axes1": helper.make_node(op, [x, axes][: 2 if axes else 1], [out], keepdims=keep)  # noqa: E731
    nodes = [
        red("ReduceMax", "s", "row_max", 1), red("ReduceMin", "s", "row_min", 1),
        red("ReduceMax", "s", "all_max", 0, None), red("ReduceMax", "y", "other_max", 1),
        red("ReduceMax", "s", "flat_max", 0),
        helper.make_node("Sub", ["row_max", "s"], ["max_gap"], name="max_gap"),
        helper.make_node("Sub", ["s", "row_min"], ["min_gap"], name="min_gap"),
        helper.make_node("Sub", ["s", "row_max"], ["below_max"], name="below_max"),
        helper.make_node("Sub", ["row_min", "s"], ["above_min"], name="above_min"),
        helper.make_node("Sub", ["all_max", "s"], ["all_gap"], name="all_gap"),
        helper.make_node("Sub", ["other_max", "s"], ["other_gap"], name="other_gap"),
        helper.make_node("Sub", ["flat_max", "s"], ["misaligned"], name="misaligned"),
    ]
    gaps = ["max_gap", "min_gap", "below_max", "above_min", "all_gap", "other_gap", "misaligned"]
    total = "s"
    for k, gap in enumerate(gaps):
        nodes.append(helper.make_node("Add", [total, gap], [f"sum{k}"]))
        total = f"sum{k}"
    nodes.append(helper.make_node("Clip", [total, "lo", "hi"], ["s_next"]))
    inits = [numpy_helper.from_array(np.array(v, np.int64), n) for v, n in (([1], "axes1"), (-100, "lo"), (100, "hi"))]
    model = make_model(
        nodes,
        [helper.make_tensor_value_info("s", I64, [3, 3]), helper.make_tensor_value_info("y", I64, [3, 3])],
        [helper.make_tensor_value_info("s_next", I64, [3, 3])],
        inits,
    )
    s = np.array([[5, -7, 0], [1, 2, 3], [-9, 40, 8]], np.int64)
    return load_program(make_program(model, steps=3, state={"s": s}, data={"y": s - 50}))


def test_extreme_differences__signed_only_where_each_value_meets_its_own_groups_extreme() -> None:
    p = _gaps_program()
    g = p.graph
    signs = {g.slots[g.nodes[n].output].name: sign for n, sign in compiled._extreme_differences(p).items()}
    assert signs == {"max_gap": 1, "min_gap": 1, "below_max": -1, "above_min": -1, "all_gap": 1}
    # the two left out do take both signs here, so claiming one would be unsound
    s, y = p.initial_state()[0], next(slot.value for slot in g.slots if slot.name == "y")
    assert (y.max(axis=1, keepdims=True) - s).min() < 0 < (s.max(axis=1) - s).max()
    assert (s.max(axis=1) - s).min() < 0
    assert p.compiled is not None
    assert same(p.advance(0, 3, p.initial_state()), node_by_node(p, 0, 3, p.initial_state()))


def test_softmax_shift__proven_non_negative__table_lookup_in_range() -> None:
    # The training builder's softmax reads an exp table at min((max(z) - z) / step, last): in
    # range only through max(z) - z >= 0, which the intervals of max(z) and z cannot show.
    from sklearn.datasets import load_digits

    from onnx_models import train

    x, y = load_digits(return_X_y=True)
    spec = train.parse_spec({"layers": [{"type": "linear", "out": 16}, {"type": "relu"}, {"type": "linear", "out": 10}],
                             "loss": "softmax_cross_entropy", "optimizer": {"type": "sgd", "lr": 0.5},
                             "schedule": {"epochs": 1, "batch": 32}})  # fmt: skip
    p = load_program(train.build_program(spec, x[:256], y[:256]))
    infos = compiled._node_infos(p)
    _, hull = compiled._state_bounds(p, compiled._Analysis(p, infos))
    lookups = [(node, info) for node, info in zip(p.graph.nodes, infos) if node.op.name == "Gather" and info.consts[0] is not None]
    assert lookups
    for node, info in lookups:
        assert compiled._gather_in_range(info, [hull[i] for i in node.inputs]), node.name


# ---- whole programs --------------------------------------------------------------------------


def test_mlp__compiles_and_equals_the_reference() -> None:
    p = load_program(MLP, steps=25)
    c = p.compiled
    assert c is not None, p.compile_note
    init = p.initial_state()
    assert same(c.run(0, 25, init), node_by_node(p, 0, 25, init))  # type: ignore[arg-type]
    mid = node_by_node(p, 0, 9, init)
    assert same(c.run(9, 25, mid), node_by_node(p, 9, 25, mid))  # type: ignore[arg-type]
    # The weights are clipped every step, so the bounds close after a few steps.
    assert len(c.entry) < 20


def test_mlp__trace_roots_equal_with_and_without_the_compiled_step() -> None:
    p = load_program(MLP, steps=12)
    with Trace(p, checkpoint_every=5) as fast, Trace(p, checkpoint_every=5, fast=False) as ref:
        assert fast.run() == ref.run()
        steps = list(range(13))
        assert fast.step_roots(steps) == ref.step_roots(steps)
        assert fast.node_roots(7) == ref.node_roots(7)


def test_accumulator__bounds_follow_every_step() -> None:
    # acc grows every step: no fixed point, so all 12 steps are iterated and bound separately.
    p = load_program(accumulator_program(steps=12))
    c = p.compiled
    assert c is not None, p.compile_note
    assert len(c.entry) == 13
    init = p.initial_state()
    at5 = node_by_node(p, 0, 5, init)
    assert same(c.run(5, 12, at5), node_by_node(p, 5, 12, at5))  # type: ignore[arg-type]
    # A state the proof does not cover at that step is refused, and advance falls back.
    acc_hi = c.entry[5][0][1]
    beyond = [np.full(3, acc_hi + 1, np.int64), at5[1]]
    assert c.run(5, 12, beyond) is None and c.run(11, 12, beyond) is not None
    assert same(p.advance(5, 12, beyond), node_by_node(p, 5, 12, beyond))
    assert c.run(0, 13, init) is None and c.run(3, 2, at5) is None  # outside the program's steps


def test_accumulator__too_long_to_bound__not_compiled_and_still_runs() -> None:
    # its increments grow with t: after 10^9 steps the sum passes 2^53
    p = load_program(accumulator_program(steps=10**9))
    assert p.compiled is None and "settle" in p.compile_note
    init = p.initial_state()
    assert same(p.advance(0, 20, init), node_by_node(p, 0, 20, init))


def _doubling_program(dtype: int, steps: int, start: int) -> onnx.ModelProto:
    """x' = x * 2: wraps in int32 after ~31 steps, leaves float64's exact range after ~53 in int64."""
    np_dtype = {TensorProto.INT32: np.int32, TensorProto.INT64: np.int64}[dtype]
    nodes = [helper.make_node("Mul", ["x", "two"], ["x_next"], name="double")]
    model = make_model(
        nodes,
        [helper.make_tensor_value_info("x", dtype, [3])],
        [helper.make_tensor_value_info("x_next", dtype, [3])],
        [numpy_helper.from_array(np.array(2, np_dtype), "two")],
    )
    return make_program(model, steps=steps, state={"x": np.array([start, -start, 1], np_dtype)})


@pytest.mark.parametrize(
    ("dtype", "steps", "why"),
    [(TensorProto.INT32, 40, "may wrap"), (TensorProto.INT64, 70, "2^53")],
)
def test_values_that_wrap_or_leave_float64__not_compiled(dtype: int, steps: int, why: str) -> None:
    p = load_program(_doubling_program(dtype, steps, 3))
    assert p.compiled is None and why in p.compile_note and "double" in p.compile_note
    init = p.initial_state()
    assert same(p.advance(0, steps, init), node_by_node(p, 0, steps, init))  # wraps like the reference


def test_doubling_within_range__compiled() -> None:
    p = load_program(_doubling_program(TensorProto.INT32, 20, 3))
    assert p.compiled is not None, p.compile_note
    init = p.initial_state()
    assert same(p.advance(0, 20, init), node_by_node(p, 0, 20, init))


def test_a_program_that_changes_how_a_step_runs__never_compiled() -> None:
    cheat = WrongElement(**vars(load_program(MLP, steps=3)))
    assert cheat.compiled is None and "WrongElement" in cheat.compile_note


@pytest.mark.parametrize("kind", KINDS)
def test_market_programs(kind: int) -> None:
    # The values program's 2^62 "far" sentinel is only selected and compared: it compiles too.
    r = demo_round()
    p = load_program(program(kind, r.shape, **r.data(kind)))
    assert kind in (METAMODEL, SCORES, VALUES) and p.compiled is not None, p.compile_note
    init = p.initial_state()
    assert same(p.compiled.run(0, p.steps, init), node_by_node(p, 0, p.steps, init))  # type: ignore[arg-type]


def _sentinel_program(use: str, far: int) -> onnx.ModelProto:
    """s' = min(s + 1, far) by Where/Less (`select`), or s' = (s + far) - far (`add`)."""
    if use == "select":
        nodes = [
            helper.make_node("Add", ["s", "one"], ["s1"]),
            helper.make_node("Less", ["s1", "far"], ["below"]),
            helper.make_node("Where", ["below", "s1", "s"], ["s_next"], name="pick"),
        ]
    else:
        nodes = [
            helper.make_node("Add", ["s", "far"], ["up"], name="up"),
            helper.make_node("Sub", ["up", "far"], ["s_next"], name="down"),
        ]
    model = make_model(
        nodes,
        [helper.make_tensor_value_info("s", I64, [3])],
        [helper.make_tensor_value_info("s_next", I64, [3])],
        [numpy_helper.from_array(np.array(1, np.int64), "one"), numpy_helper.from_array(np.array(far, np.int64), "far")],
    )
    return make_program(model, steps=5, state={"s": np.array([-4, 0, 7], np.int64)})


def test_large_sentinels__selected_and_compared_compile__arithmetic_refused() -> None:
    p = load_program(_sentinel_program("select", 2**62))
    assert p.compiled is not None, p.compile_note
    assert same(p.compiled.run(0, 5, p.initial_state()), node_by_node(p, 0, 5, p.initial_state()))  # type: ignore[arg-type]
    p = load_program(_sentinel_program("add", 2**62))
    assert p.compiled is None and "up" in p.compile_note and "2^53" in p.compile_note
    # 2^62 + 1 is not a float64: even selecting it would be inexact.
    p = load_program(_sentinel_program("select", 2**62 + 1))
    assert p.compiled is None and "far" in p.compile_note


def test_representable() -> None:
    assert compiled.representable(np.array([0, 2**53 - 1, -(2**63), 2**62, 3 * 2**60], np.int64))
    assert not compiled.representable(np.array([2**53 + 1], np.int64))
    assert not compiled.representable(np.array([2**63 - 1], np.int64))
    assert compiled.representable(np.array([2**31 - 1], np.int32))


# ---- random programs -------------------------------------------------------------------------

I64 = TensorProto.INT64
N = 4  # state width
ROWS = 6


def _random_step(ops: list[tuple[str, int]], clip: int | None) -> onnx.ModelProto:
    """A chain of int64 ops over a (N,) state, ending in an optional Clip: the next state."""
    nodes, cur, k = [], "s", 0
    extra_inits: list[onnx.TensorProto] = []

    def name() -> str:
        nonlocal k
        k += 1
        return f"v{k}"

    for op, arg in ops:
        out = name()
        if op in ("Add", "Sub", "Mul", "Div", "Mod", "Max", "Min"):
            other = "c" if arg % 2 else "s"
            nodes.append(helper.make_node(op, [cur, other], [out], **({"fmod": arg % 2} if op == "Mod" else {})))
        elif op in ("Neg", "Abs", "Relu", "Sign"):
            nodes.append(helper.make_node(op, [cur], [out]))
        elif op == "Where":
            cond = name()
            nodes.append(helper.make_node("Greater", [cur, "zero"], [cond]))
            nodes.append(helper.make_node("Where", [cond, cur, "c" if arg % 2 else "zero"], [out]))
        elif op == "MatMul":
            nodes.append(helper.make_node("MatMul", ["w", cur], [out]))
        elif op == "ReduceSum":
            tot = name()
            nodes.append(helper.make_node("ReduceSum", [cur, "axes"], [tot], keepdims=1))
            nodes.append(helper.make_node("Add", [cur, tot], [out]))
        elif op == "Gather":  # a data row picked by the step and the state
            idx, row = name(), name()
            nodes.append(helper.make_node("Add", ["t", cur], [idx]))
            nodes.append(helper.make_node("Gather", ["x", idx], [row], axis=0))
            nodes.append(helper.make_node("ReduceSum", [row, "axes1"], [out], keepdims=0))
        elif op == "Cast":
            narrow = name()
            to = (TensorProto.INT32, TensorProto.INT8)[arg % 2]
            nodes.append(helper.make_node("Cast", [cur], [narrow], to=to))
            nodes.append(helper.make_node("Cast", [narrow], [out], to=I64))
        elif op == "Gemm":  # w' @ column, then back to a vector
            col, prod = name(), name()
            nodes.append(helper.make_node("Unsqueeze", [cur, "axes1"], [col]))
            nodes.append(helper.make_node("Gemm", ["w", col, "c_col"][: 2 + arg % 2], [prod], transA=arg // 2 % 2))
            nodes.append(helper.make_node("Reshape", [prod, "vec"], [out]))
        elif op in ("ArgMax", "ReduceMax", "ReduceMin", "Transpose"):  # over rows of w + cur
            row, grid = name(), name()
            nodes.append(helper.make_node("Unsqueeze", [cur, "axes"], [row]))
            nodes.append(helper.make_node("Add", ["w", row], [grid]))
            if op == "ArgMax":
                nodes.append(helper.make_node("ArgMax", [grid], [out], axis=1, keepdims=0, select_last_index=arg % 2))
            elif op == "Transpose":
                flipped = name()
                nodes.append(helper.make_node("Transpose", [grid], [flipped], perm=[1, 0]))
                nodes.append(helper.make_node("ReduceSum", [flipped, "axes1"], [out], keepdims=0))
            else:
                nodes.append(helper.make_node(op, [grid, "axes1"], [out], keepdims=0))
        elif op == "ConcatSlice":  # N of the 2N values of (cur, c), from an offset
            both = name()
            nodes.append(helper.make_node("Concat", [cur, "c"], [both], axis=0))
            starts = numpy_helper.from_array(np.array([arg], np.int64), f"start{k}")
            ends = numpy_helper.from_array(np.array([arg + N], np.int64), f"end{k}")
            extra_inits.extend([starts, ends])
            nodes.append(helper.make_node("Slice", [both, f"start{k}", f"end{k}"], [out]))
        elif op == "Logic":  # where(cur < c or cur != 0, cur, -cur)
            lt, eq, ne, cond, neg = name(), name(), name(), name(), name()
            nodes.append(helper.make_node("Less", [cur, "c"], [lt]))
            nodes.append(helper.make_node("Equal", [cur, "zero"], [eq]))
            nodes.append(helper.make_node("Not", [eq], [ne]))
            nodes.append(helper.make_node(("Or", "And", "Xor")[arg % 3], [lt, ne], [cond]))
            nodes.append(helper.make_node("Neg", [cur], [neg]))
            nodes.append(helper.make_node("Where", [cond, cur, neg], [out]))
        cur = out
    if clip is not None:
        nodes.append(helper.make_node("Clip", [cur, "lo", "hi"], ["s_next"]))
    else:
        nodes.append(helper.make_node("Identity", [cur], ["s_next"]))
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([1], np.int64), "axes1"),
        numpy_helper.from_array(np.array(-(clip or 0), np.int64), "lo"),
        numpy_helper.from_array(np.array(clip or 0, np.int64), "hi"),
        numpy_helper.from_array(np.array([N], np.int64), "vec"),
        numpy_helper.from_array(np.arange(N, dtype=np.int64).reshape(N, 1) - 2, "c_col"),
        *extra_inits,
    ]
    return make_model(
        nodes,
        [
            helper.make_tensor_value_info("t", I64, []),
            helper.make_tensor_value_info("s", I64, [N]),
            helper.make_tensor_value_info("c", I64, [N]),
            helper.make_tensor_value_info("w", I64, [N, N]),
            helper.make_tensor_value_info("x", I64, [ROWS, N]),
        ],
        [helper.make_tensor_value_info("s_next", I64, [N])],
        inits,
    )


OPS = ["Add", "Sub", "Mul", "Div", "Mod", "Max", "Min", "Neg", "Abs", "Relu", "Sign", "Where", "MatMul", "ReduceSum",
       "Gather", "Cast", "Gemm", "ArgMax", "ReduceMax", "ReduceMin", "Transpose", "ConcatSlice", "Logic"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 3)), min_size=1, max_size=8),
    clip=st.one_of(st.none(), st.sampled_from([1, 1000, 2**31, 2**40, 2**52, 2**60])),
    magnitude=st.sampled_from([3, 1000, 2**20, 2**31, 2**62]),
    steps=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_random_programs__compiled_equals_reference_or_refused(ops, clip, magnitude, steps, seed) -> None:
    rng = np.random.default_rng(seed)
    ints = lambda *shape: rng.integers(-magnitude, magnitude, shape, dtype=np.int64, endpoint=True)  # noqa: E731
    model = make_program(
        _random_step(ops, clip),
        steps=steps,
        state={"s": ints(N)},
        data={"c": ints(N), "w": ints(N, N), "x": ints(ROWS, N)},
        step_input="t",
    )
    p = load_program(model)
    init = p.initial_state()
    want = node_by_node(p, 0, steps, init)
    assert same(p.advance(0, steps, init), want)
    if p.compiled is not None:
        assert same(p.compiled.run(0, steps, init), want)  # type: ignore[arg-type]
    else:
        assert p.compile_note  # says why


# ---- the standing cross-check ------------------------------------------------------------------


def test_cross_check__a_wrong_compiled_step_is_caught_and_the_program_runs_node_by_node() -> None:
    p = load_program(MLP, steps=30)
    c = p.compiled
    assert c is not None
    right = c.step

    def off_by_one(t, *state):  # noqa: ANN001, ANN002, ANN202
        out = list(right(t, *state))
        out[0] = out[0] + 1.0  # W1, every element, every step
        return tuple(out)

    c.step = off_by_one
    init = p.initial_state()
    with pytest.warns(RuntimeWarning, match="differed from the per-node engine"):
        got = p.advance(0, 30, init)
    assert same(got, node_by_node(p, 0, 30, init))
    assert p.compiled is None and "differed" in p.compile_note


def test_cross_check__first_run_then_every_so_many_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    from verifier.engine import program as program_mod

    p = load_program(MLP, steps=1000)
    assert p.compiled is not None
    checked = []
    real = Program.next_state

    def spy(self, t, state, fast=True):  # noqa: ANN001, ANN202
        checked.append(t)
        return real(self, t, state, fast)

    monkeypatch.setattr(Program, "next_state", spy)
    monkeypatch.setattr(program_mod, "CROSS_CHECK_EVERY", 250)
    state = p.initial_state()
    for t in range(0, 1000, 100):
        state = p.advance(t, t + 100, state)
    # The first run is checked, then one run each time 250 more steps have gone unchecked.
    assert checked == [99, 399, 699, 999]
    assert same(state, list(load_program(MLP, steps=1000).run(fast=False).values()))


# -- bounds past the iterated steps: accumulators, extrapolated by their increment -------------


def _sum_of_steps_program(steps: int) -> onnx.ModelProto:
    """s' = s + t over more steps than the iteration covers."""
    model = make_model(
        [helper.make_node("Add", ["s", "t"], ["s_next"], name="add_t")],
        [helper.make_tensor_value_info("s", TensorProto.INT64, [2]), helper.make_tensor_value_info("t", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("s_next", TensorProto.INT64, [2])],
    )
    return make_program(model, steps=steps, state={"s": np.array([0, -5], np.int64)}, step_input="t")


def test_accumulator__past_the_iterated_steps__compiled_with_a_bound_that_holds_the_true_values() -> None:
    """Past the iterated steps the compiled run is exact and its bound holds the true values."""
    p = load_program(_sum_of_steps_program(1000))
    assert p.compiled is not None, p.compile_note
    init = p.initial_state()
    final = p.compiled.run(0, p.steps, init)
    assert same(final, node_by_node(p, 0, p.steps, init))
    assert final[0].tolist() == [499_500, 499_495]
    lo, hi = p.compiled.entry[-1][0]
    assert lo <= -5 and hi >= 499_500


def test_accumulator__chain_of_adds_over_a_million_steps__compiled() -> None:
    p = load_program(accumulator_program(steps=10**6))
    assert p.compiled is not None, p.compile_note
    init = p.initial_state()
    assert same(p.advance(0, 300, init), node_by_node(p, 0, 300, init))


def test_increment_that_grows_with_the_state__not_extrapolated() -> None:
    """s' = s + s / 2^20 grows by ~2 a step when the iteration stops, but by ~5 later: the bound
    must come from the increment over the whole bound, and here no such bound settles."""
    model = make_model(
        [helper.make_node("Div", ["s", "scale"], ["x"], name="share"), helper.make_node("Add", ["s", "x"], ["s_next"], name="add")],
        [helper.make_tensor_value_info("s", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("s_next", TensorProto.INT64, [1])],
        [numpy_helper.from_array(np.array(1 << 20, np.int64), "scale")],
    )
    p = load_program(make_program(model, steps=10**6, state={"s": np.array([1 << 21], np.int64)}))
    assert p.compiled is None and "settle" in p.compile_note
    short = load_program(make_program(model, steps=200, state={"s": np.array([1 << 21], np.int64)}))
    assert short.compiled is not None, short.compile_note


def test_values_program__1024_rows__compiled_and_equal_to_the_reference() -> None:
    from onnx_models.market import Shape
    from onnx_models.market_data import N_FEATURES

    r = demo_round(shape=Shape(models=4, datasets=4, rows=1024, features=N_FEATURES, dataset_rows=64, k=5))
    p = load_program(program(VALUES, r.shape, **r.data(VALUES)))
    assert p.compiled is not None, p.compile_note
    init = p.initial_state()
    assert same(p.compiled.run(0, p.steps, init), node_by_node(p, 0, p.steps, init))  # type: ignore[arg-type]


# ---- float32 where it is exact -----------------------------------------------------------------


def _rescaled_product_program() -> Program:
    """s' = (Relu(MatMul(s, W) / 2^12 + b))^2: the product's partial sums pass 2^24 (float64),
    the rescaled activation stays below it (held in float32 for the Add and Relu after it), and
    its square passes 2^24 again (float64, its float32 input widened first)."""
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("MatMul", ["s", "w"], ["wide"], name="product"),
        helper.make_node("Div", ["wide", "scale"], ["q"], name="rescale"),
        helper.make_node("Add", ["q", "b"], ["a"], name="bias"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("Mul", ["r", "r"], ["s_next"], name="square"),
        helper.make_node("ReduceSum", ["r", "axis1"], ["rows_next"], keepdims=1, name="rows"),
    ]
    model = make_model(
        nodes,
        [helper.make_tensor_value_info("s", I64, [128, 128]), helper.make_tensor_value_info("rows", I64, [128, 1])],
        [helper.make_tensor_value_info("s_next", I64, [128, 128]), helper.make_tensor_value_info("rows_next", I64, [128, 1])],
        [
            numpy_helper.from_array(rng.integers(-2001, 2002, (128, 128)).astype(np.int64), "w"),
            numpy_helper.from_array(np.array(1 << 12, np.int64), "scale"),
            numpy_helper.from_array(rng.integers(-999, 1000, 128).astype(np.int64), "b"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        ],
    )
    state = {"s": rng.integers(-1001, 1002, (128, 128)).astype(np.int64), "rows": np.zeros((128, 1), np.int64)}
    return make_program(model, steps=1, state=state)


def _plan(p: Program) -> tuple[list[bool], list[bool]]:
    infos = compiled._node_infos(p)
    _, hull = compiled._state_bounds(p, compiled._Analysis(p, infos))
    return compiled._carriers(p, infos, hull)


def test_float32__held_where_exact__widened_where_not__equals_the_reference() -> None:
    p = load_program(_rescaled_product_program())
    c = p.compiled
    assert c is not None, p.compile_note
    init = p.initial_state()
    assert same(c.run(0, 1, init), node_by_node(p, 0, 1, init))  # type: ignore[arg-type]
    narrow, computes32 = _plan(p)
    nodes = p.graph.nodes  # product, rescale, bias, relu, square, row sums
    assert [narrow[node.output] for node in nodes] == [False, True, True, True, False, True]
    # the rescaled product is computed from float64 and held in float32; the square widens its input
    assert computes32 == [False, False, True, True, False, True]
    assert not narrow[p.state_slots[0]]  # only a float64 product reads the state


def _gemm_past_2_24_program() -> Program:
    """y' = A @ B + C with every product 4097^2 = 2^24 + 8193 (odd: no float32) and C cancelling
    all but 5 of the sum: the result is small, the partial sums are not."""
    nodes = [helper.make_node("Gemm", ["a", "b", "c"], ["y_next"], name="gemm")]
    model = make_model(
        nodes,
        [helper.make_tensor_value_info("y", I64, [8192, 1])],
        [helper.make_tensor_value_info("y_next", I64, [8192, 1])],
        [
            numpy_helper.from_array(np.full((8192, 2), 4097, np.int64), "a"),
            numpy_helper.from_array(np.full((2, 1), 4097, np.int64), "b"),
            numpy_helper.from_array(np.array([5 - 2 * 4097**2], np.int64), "c"),
        ],
    )
    return make_program(model, steps=1, state={"y": np.zeros((8192, 1), np.int64)})


def test_float32__partial_sums_past_2_24__computed_in_float64() -> None:
    """The result's bound alone would allow float32 here; the partial sums' bound does not."""
    p = load_program(_gemm_past_2_24_program())
    assert p.compiled is not None, p.compile_note
    (y,) = p.compiled.run(0, 1, p.initial_state())  # type: ignore[misc]
    assert np.all(y == 5)
    narrow, computes32 = _plan(p)
    assert computes32 == [False] and not any(narrow)


@pytest.mark.parametrize("divisor", [3, -7, 4097, (1 << 23) + 1, (1 << 24) - 3])
@pytest.mark.parametrize("op", ["Div", "Mod"])
def test_float32__quotients_and_remainders_just_below_2_24__exact(op: str, divisor: int) -> None:
    """trunc(fl(a / b)) and the remainders are exact in float32 for |a| < 2^24: the quotient's
    distance to the next integer is at least 1/|b|, above float32's rounding error there."""
    a = np.concatenate([np.arange((1 << 24) - 8192, 1 << 24), -np.arange((1 << 24) - 8192, 1 << 24)]).astype(np.int64)
    for fmod in (0, 1) if op == "Mod" else (None,):
        attrs = () if fmod is None else (fmod,)
        assert compiled._case_ok(op, [a.reshape(128, 128), np.array(divisor, np.int64)], attrs, as_const=True)


def _squares_program() -> Program:
    """s' = clip(s * s / 2^10 + b, -5000, 5000) and sq' = s * s: the square passes 2^24 (float64,
    odd squares have no float32), the rest stays below it (float32), and the next state goes back
    to float64 for the next step's square."""
    rng = np.random.default_rng(6)
    nodes = [
        helper.make_node("Mul", ["s", "s"], ["square"], name="square"),
        helper.make_node("Div", ["square", "scale"], ["q"], name="rescale"),
        helper.make_node("Add", ["q", "b"], ["a"], name="bias"),
        helper.make_node("Clip", ["a", "lo", "hi"], ["s_next"], name="clip"),
        helper.make_node("Identity", ["square"], ["sq_next"], name="keep"),
    ]
    model = make_model(
        nodes,
        [helper.make_tensor_value_info("s", I64, [128, 128]), helper.make_tensor_value_info("sq", I64, [128, 128])],
        [helper.make_tensor_value_info("s_next", I64, [128, 128]), helper.make_tensor_value_info("sq_next", I64, [128, 128])],
        [
            numpy_helper.from_array(np.array(1 << 10, np.int64), "scale"),
            numpy_helper.from_array(rng.integers(-999, 1000, 128).astype(np.int64), "b"),
            numpy_helper.from_array(np.array(-5000, np.int64), "lo"),
            numpy_helper.from_array(np.array(5000, np.int64), "hi"),
        ],
    )
    start = rng.integers(-5000, 5001, (128, 128)).astype(np.int64) | 1  # odd: odd squares past 2^24
    start[0, 0] = 4097
    return make_program(model, steps=4, state={"s": start, "sq": np.zeros((128, 128), np.int64)})


def test_float32__next_state_returns_in_its_slots_width() -> None:
    p = load_program(_squares_program())
    c = p.compiled
    assert c is not None, p.compile_note
    narrow, computes32 = _plan(p)
    assert computes32 == [False, False, True, True, False] and not narrow[p.state_slots[0]]
    init = p.initial_state()
    assert same(c.run(0, 4, init), node_by_node(p, 0, 4, init))  # type: ignore[arg-type]


def _kernel_widths(p: Program) -> tuple[list[bool], list[bool], list[np.dtype]]:
    """The plan, and the dtype each node's kernel actually returned in one compiled step."""
    seen: list[np.dtype] = [np.dtype(np.bool_)] * len(p.graph.nodes)
    real = compiled._generate

    def recording(program, kernels, carrier, *rest):  # noqa: ANN001, ANN202
        def wrap(n, k):  # noqa: ANN001, ANN202
            def kernel(*xs):  # noqa: ANN002, ANN202
                y = k(*xs)
                seen[n] = np.asarray(y).dtype
                return y

            return kernel

        return real(program, [wrap(n, k) for n, k in enumerate(kernels)], carrier, *rest)

    compiled._generate = recording
    try:
        c = compiled.compile_step(p)
    finally:
        compiled._generate = real
    c.run(0, 1, p.initial_state())
    return (*_plan(p), seen)


def test_float32__every_kernel_returns_the_width_the_plan_gives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the plan says a node computes in float32 its kernel returns float32, and float64
    (or bool) everywhere else: a float64 result taken for float32 would be given float32
    constants (numpy mixing widths), and a float32 one taken for float64 never widened. The
    residual convnet's ConvInteger (float64 whatever its inputs) is held in float32 only by a
    conversion after it."""
    monkeypatch.syspath_prepend("tests/onnx_models")
    from _imported import convnet, image_split

    from onnx_models import importer

    x_train, x_test, _, _ = image_split()
    imp = importer.import_model(convnet(True), x_train, batch=32)
    residual = load_program(importer.inference_program(imp, importer.quantize_rows(x_test[:64], imp.input_scales)))
    widths = []
    for p in (residual, load_program(_rescaled_product_program()), load_program(_squares_program())):
        narrow, computes32, seen = _kernel_widths(p)
        widths.append((narrow, computes32, seen))
        for n, node in enumerate(p.graph.nodes):
            if p.graph.slots[node.output].type.dtype.name == "BOOL":
                continue
            in32 = computes32[n] and node.op.name not in compiled.F64_RESULT
            assert seen[n] == (np.float32 if in32 else np.float64), (node.name, seen[n], computes32[n])
        assert any(computes32)
    narrow, computes32, seen = widths[0]
    convs = [n for n, node in enumerate(residual.graph.nodes) if node.op.name == "ConvInteger"]
    assert convs and all(seen[n] == np.float64 for n in convs)
    assert any(narrow[residual.graph.nodes[n].output] for n in convs)  # converted after, for the ops after it
