"""The market's three programs (docs/SPEC.md 8.2): metamodel, contribution scores, data values.

Each program is built from a round's `Shape` alone plus its data tensors; the data inputs come
first among the data slots, in the order of SPEC 8.2, so a round can store one `template` (the
initial slot table of the program with every model and dataset absent) and fill the data slots
from `data_base` with the round's commitments.

- `metamodel_program`  kind 0, T = 1: m[r] = trunc(sum_i w_i P[i, r] / W)
- `scores_program`     kind 1, T = 1: each model's own score and leave-one-out score, basis points
- `values_program`     kind 2, T = n: exact KNN-Shapley value of each dataset, 10^6 scale

`metamodel_ref`, `scores_ref` and `values_ref` compute the same results in plain numpy/Python,
independently of the engine, formula for formula.

Bounds (8.1 limits): |sum_i w_i P[i, r]| <= 16 * (2^40 - 1) * 100 < 2^51; |dist| <= 256 * 255^2
< 2^24, absent 2^62; |(u - next) * c| <= 2 * 10^6, so |s_j| <= 2N * 10^6 < 2^31, a dataset gains
at most R * 2^31 <= 2^41 a step and |v| < 2^51 after 2048 steps. Nothing wraps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import onnx
from eth_abi import encode as abi_encode
from onnx import TensorProto, helper, numpy_helper

from verifier.commit import commitments as commit
from verifier.commit.merkle import keccak
from verifier.core.errors import ProgramError, ShapeError
from verifier.engine.program import load_program, make_program, step_slot_table

OPSET = 18
IR_VERSION = 10
PRODUCER = "bisectml.onnx_models.market"

METAMODEL = 0
SCORES = 1
VALUES = 2
KINDS = (METAMODEL, SCORES, VALUES)
KIND_NAMES = {METAMODEL: "metamodel", SCORES: "scores", VALUES: "values"}

MAX_MODELS = 16
MAX_DATASETS = 8
MAX_ROWS = 2048
MAX_FEATURES = 256
MAX_POINTS = 1024
MAX_K = 64

PRED_MAX = 100
VALUE_SCALE = 10**6  # data values are in millionths of a (test row's) utility
SCORE_SCALE = 100  # 100 * (P - m) in -200..200 per row, over sum|Y|: basis points
FAR = 2**62  # distance of an absent dataset's points
WEIGHT_UNIT = 10**15
MAX_WEIGHT = 2**40 - 1

STEP_INPUT = "t"
RESULT_NAMES = {METAMODEL: "m", SCORES: "score", VALUES: "v"}

_I8 = TensorProto.INT8
_I64 = TensorProto.INT64
_BOOL = TensorProto.BOOL


@dataclass(frozen=True)
class Shape:
    """A round's shape (SPEC 8.1): M model slots, D dataset slots, n rows, F features,
    R rows per dataset, K neighbours."""

    models: int
    datasets: int
    rows: int
    features: int
    dataset_rows: int
    k: int

    @property
    def points(self) -> int:
        """N = D * R, the training points of the values program."""
        return self.datasets * self.dataset_rows

    def check(self) -> Shape:
        """Raise ProgramError naming the first limit of SPEC 8.1 this shape breaks; returns self."""
        for name, v in (
            ("models", self.models),
            ("datasets", self.datasets),
            ("rows", self.rows),
            ("features", self.features),
            ("dataset_rows", self.dataset_rows),
            ("k", self.k),
        ):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise ProgramError(f"shape field {name} is {v!r}; give it as an int.")
        limits = (
            ("models (M)", self.models, 1, MAX_MODELS),
            ("datasets (D)", self.datasets, 1, MAX_DATASETS),
            ("rows (n)", self.rows, 1, MAX_ROWS),
            ("features (F)", self.features, 1, MAX_FEATURES),
            ("dataset_rows (R)", self.dataset_rows, 1, MAX_POINTS),
            ("k (K)", self.k, 1, MAX_K),
        )
        for name, v, lo, hi in limits:
            if not lo <= v <= hi:
                raise ProgramError(f"{name} is {v}; set it within {lo}..{hi} (docs/SPEC.md 8.1).")
        if self.points > MAX_POINTS:
            raise ProgramError(
                f"datasets * dataset_rows is {self.datasets} * {self.dataset_rows} = {self.points} points; "
                f"lower D or R so that D * R <= {MAX_POINTS} (docs/SPEC.md 8.1)."
            )
        if self.k > self.points:
            raise ProgramError(
                f"k is {self.k} but there are only D * R = {self.points} points; set k <= {self.points} "
                "or add dataset rows (docs/SPEC.md 8.1)."
            )
        return self


def weight_of(stake: int) -> int:
    """A revealed model's weight (SPEC 8.1): whole 10^15 units of its stake, capped at 2^40 - 1."""
    if stake < 0:
        raise ProgramError(f"stake {stake} is negative; stakes are token amounts >= 0.")
    return min(int(stake) // WEIGHT_UNIT, MAX_WEIGHT)


def coefficients(n_points: int, k: int) -> np.ndarray:
    """c[i] = floor(10^6 min(K, i+1) / (K (i+1))) for i < N-1, c[N-1] = floor(10^6 / N) (SPEC 8.2)."""
    c = [VALUE_SCALE * min(k, i + 1) // (k * (i + 1)) for i in range(n_points - 1)]
    c.append(VALUE_SCALE // n_points)
    return np.array(c, dtype=np.int64)


# ---- data tensors ---------------------------------------------------------------------------


def _tensor(value: Any, dtype: type[np.generic], shape: tuple[int, ...], what: str) -> np.ndarray:
    """`value` as a C-ordered array of `dtype` and `shape`; None means zeros (absent)."""
    if value is None:
        return np.zeros(shape, dtype=dtype)
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ShapeError(f"{what} has shape {list(arr.shape)}; it must be {list(shape)} for this round's shape.")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(f"{what} has dtype {arr.dtype}; pass integers.")
    info = np.iinfo(dtype)
    if arr.size and (int(arr.min()) < info.min or int(arr.max()) > info.max):
        raise ProgramError(
            f"{what} has values outside {info.min}..{info.max}; it is {np.dtype(dtype).name}, so clip it first."
        )
    return np.asarray(arr.astype(dtype), order="C")


def _slots(value: Any, count: int, what: str) -> list[Any]:
    """A per-slot sequence of length <= count, padded with None (absent)."""
    if value is None:
        return [None] * count
    items = list(value)
    if len(items) > count:
        raise ShapeError(f"{len(items)} {what} given for {count} slots; pass at most {count}.")
    return items + [None] * (count - len(items))


def data_names(kind: int, shape: Shape) -> list[str]:
    """The program's data inputs, in slot order (SPEC 8.2)."""
    if kind == METAMODEL:
        return ["w"] + [f"p{i}" for i in range(shape.models)]
    if kind == SCORES:
        return ["w", "y"] + [f"p{i}" for i in range(shape.models)]
    if kind == VALUES:
        return ["a", "y", "X"] + [f"{x}{d}" for d in range(shape.datasets) for x in ("X", "L")]
    raise ProgramError(f"kind {kind} is not a market program; use 0 (metamodel), 1 (scores) or 2 (values).")


def _predictions(shape: Shape, predictions: Any) -> list[np.ndarray]:
    return [_tensor(p, np.int8, (shape.rows,), f"predictions p{i}") for i, p in enumerate(_slots(predictions, shape.models, "predictions"))]


def metamodel_data(shape: Shape, weights: Any = None, predictions: Any = None) -> dict[str, np.ndarray]:
    out = {"w": _tensor(weights, np.int64, (shape.models,), "weights w")}
    out.update({f"p{i}": p for i, p in enumerate(_predictions(shape, predictions))})
    return out


def scores_data(shape: Shape, weights: Any = None, labels: Any = None, predictions: Any = None) -> dict[str, np.ndarray]:
    out = {
        "w": _tensor(weights, np.int64, (shape.models,), "weights w"),
        "y": _tensor(labels, np.int8, (shape.rows,), "labels y"),
    }
    out.update({f"p{i}": p for i, p in enumerate(_predictions(shape, predictions))})
    return out


def values_data(
    shape: Shape, mask: Any = None, labels: Any = None, features: Any = None, datasets: Any = None
) -> dict[str, np.ndarray]:
    out = {
        "a": _tensor(mask, np.int64, (shape.datasets,), "mask a"),
        "y": _tensor(labels, np.int8, (shape.rows,), "labels y"),
        "X": _tensor(features, np.int8, (shape.rows, shape.features), "features X"),
    }
    for d, ds in enumerate(_slots(datasets, shape.datasets, "datasets")):
        if ds is None:
            xd, ld = None, None
        else:
            xd, ld = ds
        out[f"X{d}"] = _tensor(xd, np.int8, (shape.dataset_rows, shape.features), f"dataset {d} features X{d}")
        out[f"L{d}"] = _tensor(ld, np.int8, (shape.dataset_rows,), f"dataset {d} labels L{d}")
    return out


_DATA_BUILDERS = {METAMODEL: metamodel_data, SCORES: scores_data, VALUES: values_data}


def data_tensors(kind: int, shape: Shape, **data: Any) -> dict[str, np.ndarray]:
    """The program's data tensors by input name, in slot order; missing or None entries are absent.

    kind 0: weights, predictions; kind 1: weights, labels, predictions; kind 2: mask, labels,
    features, datasets (a sequence of (X_d, L_d) or None per dataset slot). Per-slot sequences
    may be shorter than M or D: the remaining slots are absent.
    """
    data_names(kind, shape)  # refuses an unknown kind
    shape.check()
    return _DATA_BUILDERS[kind](shape, **data)


def data_commitments(kind: int, shape: Shape, **data: Any) -> list[bytes]:
    """Tensor commitments of the data slots in order; they go to slots[data_base:] of the template."""
    return [commit.commit(v).root for v in data_tensors(kind, shape, **data).values()]


# ---- graph building -------------------------------------------------------------------------


class _Builder:
    """Nodes and constants of one step graph, with unique generated names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.consts: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.consts.append(numpy_helper.from_array(np.asarray(value, order="C"), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], name: str | None = None, **attrs: Any) -> str:
        self._count += 1
        out = name or f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def model(self, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.consts)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
        model.producer_name = PRODUCER
        return model


def _vi(name: str, dtype: int, shape: Sequence[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, list(shape))


def _i64(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=np.int64)


def _clipped_predictions(b: _Builder, shape: Shape) -> str:
    """P = clip(int64(stack(p_0 .. p_{M-1})), -100, 100), int64 [M, n]."""
    cat = b.op("Concat", [f"p{i}" for i in range(shape.models)], "p_cat", axis=0)  # int8 [M*n]
    stacked = b.op("Reshape", [cat, b.const("shape_mn", _i64([shape.models, shape.rows]))], "p_stack")
    wide = b.op("Cast", [stacked], "p_wide", to=_I64)
    return b.op("Clip", [wide, b.const("p_lo", _i64(-PRED_MAX)), b.const("p_hi", _i64(PRED_MAX))], "P")


def _clipped_labels(b: _Builder, y: str, name: str) -> str:
    """Y = clip(int64(y), -1, 1)."""
    wide = b.op("Cast", [y], f"{name}_wide", to=_I64)
    return b.op("Clip", [wide, b.const(f"{name}_lo", _i64(-1)), b.const(f"{name}_hi", _i64(1))], name)


def _prediction_inputs(shape: Shape) -> list[onnx.ValueInfoProto]:
    return [_vi(f"p{i}", _I8, [shape.rows]) for i in range(shape.models)]


def metamodel_step(shape: Shape) -> onnx.ModelProto:
    """m' = trunc(sum_i w_i P[i, r] / W) (the state m is overwritten)."""
    b = _Builder()
    P = _clipped_predictions(b, shape)
    total = b.op("MatMul", ["w", P], "wP_sum")  # [n]: sum_i w_i P[i, r]
    W = b.op("ReduceSum", ["w"], "W", keepdims=0)  # scalar
    b.op("Div", [total, W], "m_next")
    inputs = [_vi("m", _I64, [shape.rows]), _vi("w", _I64, [shape.models]), *_prediction_inputs(shape)]
    return b.model(inputs, [_vi("m_next", _I64, [shape.rows])], "market_metamodel")


def scores_step(shape: Shape) -> onnx.ModelProto:
    """score' = own ++ loo: own_i = trunc(100 sum_r P[i, r] Y[r] / sum_r |Y[r]|) and
    loo_i = trunc(100 sum_r (P[i, r] - m_-i[r]) Y[r] / sum_r |Y[r]|), int64 [2M]."""
    b = _Builder()
    P = _clipped_predictions(b, shape)
    Y = _clipped_labels(b, "y", "Y")
    scale = b.const("score_scale", _i64(SCORE_SCALE))
    absY = b.op("Abs", [Y], "Y_abs")
    scored = b.op("ReduceSum", [absY], "Y_abs_sum", keepdims=0)  # scalar: sum_r |Y[r]|
    own_q = b.op("MatMul", [P, Y], "P_Y")  # [M]: sum_r P[i, r] Y[r]
    own_scaled = b.op("Mul", [own_q, scale], "P_Y_100")
    own_score = b.op("Div", [own_scaled, scored], "own_score")
    total = b.op("MatMul", ["w", P], "wP_sum")  # [n]
    W = b.op("ReduceSum", ["w"], "W", keepdims=0)  # scalar
    w_col = b.op("Reshape", ["w", b.const("shape_m1", _i64([shape.models, 1]))], "w_col")  # [M, 1]
    own = b.op("Mul", [w_col, P], "wP_own")  # [M, n]: w_i P[i, r]
    others = b.op("Sub", [total, own], "wP_others")  # [M, n]
    W_others = b.op("Sub", [W, w_col], "W_others")  # [M, 1]: W - w_i
    m_others = b.op("Div", [others, W_others], "m_others")  # [M, n]: m_-i[r]
    edge = b.op("Sub", [P, m_others], "edge")  # [M, n]
    q = b.op("MatMul", [edge, Y], "edge_Y")  # [M]: sum_r (P - m_-i) Y
    scaled = b.op("Mul", [q, scale], "edge_Y_100")
    loo_score = b.op("Div", [scaled, scored], "loo_score")
    b.op("Concat", [own_score, loo_score], "score_next", axis=0)
    inputs = [
        _vi("score", _I64, [2 * shape.models]),
        _vi("w", _I64, [shape.models]),
        _vi("y", _I8, [shape.rows]),
        *_prediction_inputs(shape),
    ]
    return b.model(inputs, [_vi("score_next", _I64, [2 * shape.models])], "market_scores")


def values_step(shape: Shape) -> onnx.ModelProto:
    """v' = v + per-dataset sums of the KNN-Shapley values of every point against test row t."""
    D, R, F, n, K = shape.datasets, shape.dataset_rows, shape.features, shape.rows, shape.k
    N = shape.points
    b = _Builder()
    ax0 = b.const("axes_0", _i64([0]))
    ax1 = b.const("axes_1", _i64([1]))
    # test row t
    xt = b.op("Cast", [b.op("Gather", ["X", STEP_INPUT], "x_t8", axis=0)], "x_t", to=_I64)  # [F]
    Yt = _clipped_labels(b, b.op("Gather", ["y", STEP_INPUT], "y_t8", axis=0), "Y_t")  # scalar
    # the N points, datasets in slot order
    if D == 1:
        xs8, ls8 = "X0", "L0"
    else:
        xs8 = b.op("Concat", [f"X{d}" for d in range(D)], "points_x8", axis=0)  # [N, F]
        ls8 = b.op("Concat", [f"L{d}" for d in range(D)], "points_l8", axis=0)  # [N]
    xs = b.op("Cast", [xs8], "points_x", to=_I64)
    ls = b.op("Cast", [ls8], "points_l", to=_I64)
    # present_j = a[j div R]
    owner = b.const("owner", _i64(np.arange(N) // R))
    present = b.op("Cast", [b.op("Gather", ["a", owner], "present_a", axis=0)], "present", to=_BOOL)
    # dist_j
    diff = b.op("Sub", [xs, xt], "diff")  # [N, F]
    sq = b.op("Mul", [diff, diff], "diff_sq")
    dist_all = b.op("ReduceSum", [sq, ax1], "dist_all", keepdims=0)  # [N]
    dist = b.op("Where", [present, dist_all, b.const("far", _i64(FAR))], "dist")
    # u_j = present_j * clip(L_j, -1, 1) * Y[t]: +1 agrees, -1 disagrees, 0 absent or unscored
    agree = b.op("Mul", [_clipped_labels(b, ls, "L_all"), Yt], "agree")
    match = b.op("Mul", [agree, b.op("Cast", [present], "present_i", to=_I64)], "u")  # [N]
    # rank_j = #{k : dist_k < dist_j} + #{k < j : dist_k = dist_j}; matrices are [j, k]
    d_j = b.op("Unsqueeze", [dist, ax1], "dist_j")  # [N, 1]
    d_k = b.op("Unsqueeze", [dist, ax0], "dist_k")  # [1, N]
    nearer = b.op("Less", [d_k, d_j], "nearer")
    tied = b.op("Equal", [d_k, d_j], "tied")
    index = b.const("index", _i64(np.arange(N)))
    lower = b.op("Less", [b.op("Unsqueeze", [index, ax0], "index_k"), b.op("Unsqueeze", [index, ax1], "index_j")], "lower")
    tied_first = b.op("And", [tied, lower], "tied_first")  # dist_k = dist_j and k < j
    before = b.op("Cast", [b.op("Or", [nearer, tied_first], "before_b")], "before", to=_I64)
    rank = b.op("ReduceSum", [before, ax1], "rank", keepdims=0)  # [N], a permutation of 0..N-1
    # next_j = u_k for rank_k = rank_j + 1 (0 for the last)
    r_j = b.op("Unsqueeze", [rank, ax1], "rank_j")  # [N, 1]
    r_k = b.op("Unsqueeze", [rank, ax0], "rank_k")  # [1, N]
    succ = b.op("Add", [r_j, b.const("one", _i64(1))], "rank_succ")
    follows = b.op("Cast", [b.op("Equal", [r_k, succ], "follows_b")], "follows", to=_I64)  # one-hot rows
    nxt = b.op("MatMul", [follows, match], "next")  # [N]
    # s_j = sum_{k : rank_k >= rank_j} (u_k - next_k) c[rank_k]
    coef = b.op("Gather", [b.const("c", coefficients(N, K)), rank], "c_rank", axis=0)
    term = b.op("Mul", [b.op("Sub", [match, nxt], "step_diff"), coef], "term")
    behind = b.op("Cast", [b.op("GreaterOrEqual", [r_k, r_j], "behind_b")], "behind", to=_I64)
    s = b.op("MatMul", [behind, term], "s")  # [N]
    per = b.op("Reshape", [s, b.const("shape_dr", _i64([D, R]))], "s_dr")
    gained = b.op("ReduceSum", [per, ax1], "v_gain", keepdims=0)  # [D]
    b.op("Add", ["v", gained], "v_next")
    inputs = [
        _vi(STEP_INPUT, _I64, []),
        _vi("v", _I64, [D]),
        _vi("a", _I64, [D]),
        _vi("y", _I8, [n]),
        _vi("X", _I8, [n, F]),
    ]
    for d in range(D):
        inputs += [_vi(f"X{d}", _I8, [R, F]), _vi(f"L{d}", _I8, [R])]
    return b.model(inputs, [_vi("v_next", _I64, [D])], "market_values")


# ---- programs -------------------------------------------------------------------------------


def metamodel_program(shape: Shape, weights: Any = None, predictions: Any = None) -> onnx.ModelProto:
    """Kind 0 (T = 1). Data: w int64 [M], p0..p{M-1} int8 [n]. Result: state m, int64 [n]."""
    shape.check()
    return make_program(
        metamodel_step(shape),
        steps=1,
        state={"m": np.zeros(shape.rows, np.int64)},
        data=metamodel_data(shape, weights, predictions),
    )


def scores_program(shape: Shape, weights: Any = None, labels: Any = None, predictions: Any = None) -> onnx.ModelProto:
    """Kind 1 (T = 1). Data: w, y int8 [n], p0..p{M-1}. Result: state score, int64 [2M]: the
    models' own scores, then their leave-one-out scores."""
    shape.check()
    return make_program(
        scores_step(shape),
        steps=1,
        state={"score": np.zeros(2 * shape.models, np.int64)},
        data=scores_data(shape, weights, labels, predictions),
    )


def values_program(
    shape: Shape, mask: Any = None, labels: Any = None, features: Any = None, datasets: Any = None
) -> onnx.ModelProto:
    """Kind 2 (T = n, step input t). Data: a int64 [D], y, X int8 [n, F], X0, L0, .. (int8 [R, F],
    int8 [R]). Result: state v, int64 [D]."""
    shape.check()
    return make_program(
        values_step(shape),
        steps=shape.rows,
        state={"v": np.zeros(shape.datasets, np.int64)},
        data=values_data(shape, mask, labels, features, datasets),
        step_input=STEP_INPUT,
    )


_PROGRAMS = {METAMODEL: metamodel_program, SCORES: scores_program, VALUES: values_program}


def program(kind: int, shape: Shape, **data: Any) -> onnx.ModelProto:
    """The program of `kind` for `shape` with the given data (keyword names as the builders')."""
    data_names(kind, shape)  # refuses an unknown kind
    return _PROGRAMS[kind](shape, **data)


@dataclass(frozen=True)
class ProgramRef:
    """What a round stores per program (SPEC 8.2), from the program with every model and dataset
    absent: `slots` is its initial slot table, `template = keccak256(abi.encode(bytes32[] slots))`."""

    graph_root: bytes
    n_nodes: int
    n_slots: int
    steps: int
    data_base: int
    out_slot: int
    template: bytes
    slots: tuple[bytes, ...]
    n_data: int  # data slots: slots[data_base : data_base + n_data] (M + 1, M + 2 or 3 + 2D)

    def with_data(self, commitments: Sequence[bytes]) -> list[bytes]:
        """The initial slot table with `commitments` written to the data slots (from `data_base`)."""
        if len(commitments) != self.n_data:
            raise ProgramError(f"{len(commitments)} data commitments for {self.n_data} data slots; pass one per slot.")
        out = list(self.slots)
        out[self.data_base : self.data_base + len(commitments)] = list(commitments)
        return out


def template_hash(slots: Sequence[bytes]) -> bytes:
    """keccak256(abi.encode(bytes32[] slots))."""
    return keccak(abi_encode(["bytes32[]"], [list(slots)]))


@lru_cache(maxsize=64)
def program_ref(kind: int, shape: Shape) -> ProgramRef:
    """The round's stored reference of the program of `kind` (built once per (kind, shape))."""
    p = load_program(program(kind, shape))
    base = p.data_slots[0]
    if p.data_slots != list(range(base, base + len(p.data_slots))):
        raise AssertionError(f"data slots {p.data_slots} are not contiguous")
    if len(p.state_slots) != 1:
        raise AssertionError("a market program has one state input")
    slots = tuple(step_slot_table(p, 0, p.initial_state()).commitments)
    return ProgramRef(
        graph_root=p.graph_root,
        n_nodes=p.n_nodes,
        n_slots=p.n_slots,
        steps=p.steps,
        data_base=base,
        out_slot=p.state_slots[0],
        template=template_hash(slots),
        slots=slots,
        n_data=len(p.data_slots),
    )


# ---- independent references (plain numpy / Python ints) -------------------------------------


def _trunc_div(a: int, b: int) -> int:
    """trunc(a / b) toward zero, 0 when b = 0 (SPEC 4.2 Div), on Python ints."""
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _clip(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def _pred_rows(predictions: Any, m: int, n: int | None = None) -> list[list[int]]:
    """Clipped predictions of the m slots; missing or None rows are zeros (absent)."""
    rows = list(predictions) if predictions is not None else []
    if len(rows) > m:
        raise ShapeError(f"{len(rows)} prediction rows for {m} weights; pass at most one per model slot.")
    given = [np.asarray(p).reshape(-1) for p in rows if p is not None]
    if n is None:
        if not given:
            raise ShapeError("no predictions given, so the row count is unknown; pass at least one row.")
        n = len(given[0])
    rows += [None] * (m - len(rows))
    out = [[0] * n if p is None else [_clip(int(v), -PRED_MAX, PRED_MAX) for v in np.asarray(p).reshape(-1)] for p in rows]
    if any(len(r) != n for r in out):
        raise ShapeError(f"prediction rows have lengths {[len(r) for r in out]}; give every model n = {n} rows.")
    return out


def metamodel_ref(weights: Any, predictions: Any) -> np.ndarray:
    """m[r] = trunc(sum_i w_i P[i, r] / W), int64 [n]."""
    w = [int(v) for v in np.asarray(weights).reshape(-1)]
    P = _pred_rows(predictions, len(w))
    W = sum(w)
    n = len(P[0])
    return np.array([_trunc_div(sum(w[i] * P[i][r] for i in range(len(w))), W) for r in range(n)], dtype=np.int64)


def scores_ref(weights: Any, labels: Any, predictions: Any) -> np.ndarray:
    """own ++ loo, int64 [2M]: own_i = trunc(100 sum_r P[i, r] Y[r] / sum_r |Y[r]|),
    loo_i = trunc(100 sum_r (P[i, r] - m_-i[r]) Y[r] / sum_r |Y[r]|)."""
    w = [int(v) for v in np.asarray(weights).reshape(-1)]
    M = len(w)
    Y = [_clip(int(v), -1, 1) for v in np.asarray(labels).reshape(-1)]
    n = len(Y)
    P = _pred_rows(predictions, M, n)
    W = sum(w)
    total = [sum(w[j] * P[j][r] for j in range(M)) for r in range(n)]
    scored = sum(abs(v) for v in Y)
    own = [_trunc_div(SCORE_SCALE * sum(P[i][r] * Y[r] for r in range(n)), scored) for i in range(M)]
    loo = []
    for i in range(M):
        m_others = [_trunc_div(total[r] - w[i] * P[i][r], W - w[i]) for r in range(n)]
        edge = sum((P[i][r] - m_others[r]) * Y[r] for r in range(n))
        loo.append(_trunc_div(SCORE_SCALE * edge, scored))
    return np.array(own + loo, dtype=np.int64)


def others_metamodel_ref(weights: Any, predictions: Any, i: int) -> np.ndarray:
    """m_-i[r] = trunc((sum_j w_j P[j, r] - w_i P[i, r]) / (W - w_i)), int64 [n]."""
    w = [int(v) for v in np.asarray(weights).reshape(-1)]
    P = _pred_rows(predictions, len(w))
    W = sum(w)
    n = len(P[0])
    return np.array(
        [_trunc_div(sum(w[j] * P[j][r] for j in range(len(w))) - w[i] * P[i][r], W - w[i]) for r in range(n)],
        dtype=np.int64,
    )


def values_ref(shape: Shape, mask: Any, labels: Any, features: Any, datasets: Any) -> np.ndarray:
    """v[d] = sum over test rows t of the KNN-Shapley values of dataset d's points, int64 [D]."""
    shape.check()
    data = values_data(shape, mask, labels, features, datasets)
    D, R, N, K = shape.datasets, shape.dataset_rows, shape.points, shape.k
    a = [int(v) for v in data["a"]]
    X = data["X"].astype(np.int64)
    Y = [_clip(int(v), -1, 1) for v in data["y"]]
    pts = np.concatenate([data[f"X{d}"] for d in range(D)]).astype(np.int64)  # [N, F]
    lab = [int(v) for d in range(D) for v in data[f"L{d}"]]
    present = [a[j // R] != 0 for j in range(N)]
    c = [VALUE_SCALE * min(K, i + 1) // (K * (i + 1)) for i in range(N - 1)] + [VALUE_SCALE // N]
    v = [0] * D
    for t in range(shape.rows):
        sq = ((pts - X[t]) ** 2).sum(axis=1)
        dist = [int(sq[j]) if present[j] else FAR for j in range(N)]
        match = [_clip(lab[j], -1, 1) * Y[t] if present[j] else 0 for j in range(N)]
        # rank by (dist, index): the position in a stable sort by distance
        order = sorted(range(N), key=lambda j: (dist[j], j))
        rank = [0] * N
        for r, j in enumerate(order):
            rank[j] = r
        nxt = [match[order[rank[j] + 1]] if rank[j] < N - 1 else 0 for j in range(N)]
        # suffix sums over ranks, from the farthest point in
        s_at = [0] * (N + 1)
        for r in range(N - 1, -1, -1):
            k = order[r]
            s_at[r] = s_at[r + 1] + (match[k] - nxt[k]) * c[r]
        for j in range(N):
            v[j // R] += s_at[rank[j]]
    return np.array(v, dtype=np.int64)


__all__ = [
    "FAR",
    "KINDS",
    "METAMODEL",
    "SCORES",
    "VALUES",
    "ProgramRef",
    "Shape",
    "coefficients",
    "data_commitments",
    "data_names",
    "data_tensors",
    "metamodel_program",
    "metamodel_ref",
    "metamodel_step",
    "others_metamodel_ref",
    "program",
    "program_ref",
    "scores_program",
    "scores_ref",
    "scores_step",
    "template_hash",
    "values_program",
    "values_ref",
    "values_step",
    "weight_of",
]
