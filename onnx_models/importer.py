"""Import a float ONNX model as an exact integer inference graph (docs/SPEC.md 9).

A float model as exporters write it (skl2onnx, torch.onnx.export, tf2onnx) becomes a graph of
profile ops only: every float tensor `v` is carried as an int64 tensor `q` with a scale `s` (a
scalar, or one per index of the last axis) so that `v ~ q * s`. Scales come from the
calibration data (max |v| over it), weights are int8 per output column, activations at most
16-bit, and every rescaling is `requant`: multiply by an integer `M`, then divide by `2^k`
rounding half away from zero, then clip. The float ops the importer understands are listed in
`HANDLERS`; anything else is refused in one line naming the node.

Integer bounds are tracked as worst cases (not as calibrated ranges), so no op of the emitted
graph can wrap around on any input: a layer whose bound would pass 2^53 is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from verifier.core.errors import ProgramError
from verifier.engine.graph import load_graph
from verifier.engine.program import make_program

OPSET = 18
IR_VERSION = 10
PRODUCER = "bisectml.onnx_models.importer"

ACT_MAX = 32_767  # activations fit 16 bits
# activations rescaled to 16 bits keep twice their calibrated range (one bit for rows beyond it)
ACT_HEADROOM = 2.0
# inputs beyond the calibration range are clipped: leave room for rows outside it, and give a
# feature that hardly varies in the calibration set at least 1/INPUT_FLOOR of the widest's range
INPUT_HEADROOM = 4.0
INPUT_FLOOR = 256.0
WEIGHT_MAX = (
    32_767  # weights are 16-bit, per output column (int8 lost a point on digits)
)
TABLE_HALF = 2_048  # Sigmoid/Tanh tables cover [-2048, 2048] input steps
EXACT_LIMIT = (
    2**53
)  # every value stays exactly representable in float64 (the fast paths' test)
MULT_BITS = 15  # requant multipliers have at most 15 significant bits
ROUNDING = "q_out = clip(trunc((q * M + sign(q * M) * 2^(k-1)) / 2^k), -L, L): half away from zero"

META_PREFIX = "bisectml.import."
_I64 = TensorProto.INT64
_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16}


class ImportError_(ProgramError):
    """A model the importer cannot map exactly; the message names the node and what to do."""


@dataclass
class QTensor:
    """An integer tensor of the emitted graph standing for a float tensor of the source."""

    name: str
    shape: tuple[int, ...]
    # v ~ q * scale; scale has shape () or (shape[-1],); None: an exact integer (an index, a label)
    scale: np.ndarray | None
    # worst-case |q| over every possible input
    bound: int


@dataclass
class Imported:
    model: (
        onnx.ModelProto
    )  # integer inference graph: input "x" int32 [B, F], one int64 output
    input_scales: (
        np.ndarray
    )  # float64 [F]: x_int = round(x / scale), clipped to +-ACT_MAX
    task: str  # "label" or "value"
    output_scale: np.ndarray | None  # value = q * scale (regression); None for labels
    batch: int
    scales: dict[
        str, list[float]
    ]  # source tensor -> chosen scale, for the report and metadata
    mapped: dict[
        str, str
    ]  # source tensor -> integer tensor, for the per-layer error table
    int_shapes: dict[str, tuple[int, ...]] = field(
        default_factory=dict
    )  # integer tensor -> shape


# ---------------------------------------------------------------- emitted graph


class _Emitter:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.consts: list[onnx.TensorProto] = []
        self._n = 0

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: Any, hint: str = "c") -> str:
        name = self.fresh(hint)
        self.consts.append(numpy_helper.from_array(np.asarray(value, order="C"), name))
        return name

    def op(
        self, op_type: str, inputs: Sequence[str], hint: str | None = None, **attrs: Any
    ) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, list(inputs), [out], name=out, **attrs)
        )
        return out


def _i64(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=np.int64)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, halves away from zero (the importer's one rounding rule)."""
    x = np.asarray(x, dtype=np.float64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)


def quantize_rows(x: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Float rows -> the integer program's int32 input, with the scales the import chose."""
    x = np.asarray(x, dtype=np.float64)
    q = round_half_away(x / np.asarray(scales, dtype=np.float64))
    return np.clip(q, -ACT_MAX, ACT_MAX).astype(np.int32)


def _scale_of(max_abs: np.ndarray | float, limit: int) -> np.ndarray:
    m = np.asarray(max_abs, dtype=np.float64)
    return np.where(m > 0, m / limit, 1.0)


def _max_of(scale: np.ndarray | None) -> float:
    return float(np.max(np.abs(scale))) if scale is not None else 1.0


class _Builder:
    """Walks the float graph in order and emits the integer graph."""

    def __init__(
        self,
        node_names: dict[int, str],
        calib: dict[str, np.ndarray],
        shapes: dict[str, tuple[int, ...]],
    ):
        self.e = _Emitter()
        self.env: dict[str, QTensor] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.calib = calib
        self.shapes = shapes
        self.node_names = node_names
        self.scales: dict[str, list[float]] = {}
        self.mapped: dict[str, str] = {}
        self.int_shapes: dict[str, tuple[int, ...]] = {}
        self.standins: set[str] = set()

    # --- helpers

    def where(self, node: onnx.NodeProto) -> str:
        return f"node '{node.name or node.op_type}' ({node.op_type})"

    def refuse(self, node: onnx.NodeProto, why: str, fix: str) -> ImportError_:
        return ImportError_(f"{self.where(node)}: {why}; {fix}.")

    def calib_max(self, name: str, axis_last: bool = False) -> np.ndarray:
        v = np.abs(self.calib[name].astype(np.float64))
        if axis_last:
            return (
                v.reshape(-1, v.shape[-1]).max(axis=0)
                if v.size
                else np.zeros(v.shape[-1])
            )
        return np.asarray(v.max() if v.size else 0.0)

    def put(self, src: str, q: QTensor, track: bool = True) -> None:
        if q.bound >= EXACT_LIMIT:
            raise ImportError_(
                f"tensor '{src}' could reach {q.bound} (>= 2^53) on some input; "
                "the layer is too wide for exact integers: split it or lower its fan-in."
            )
        self.env[src] = q
        if q.scale is not None and track:
            self.scales[src] = [float(s) for s in np.atleast_1d(q.scale)]
            self.mapped[src] = q.name
            self.int_shapes[q.name] = q.shape

    def get(self, node: onnx.NodeProto, name: str) -> QTensor:
        if name in self.env:
            return self.env[name]
        raise self.refuse(
            node,
            f"input '{name}' is not a computed tensor the importer tracks",
            "export the model without it",
        )

    def const_of(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    def requant(
        self,
        q: QTensor,
        new_scale: np.ndarray,
        limit: int,
        node: onnx.NodeProto,
        lo: int | None = None,
    ) -> QTensor:
        """q * old_scale / new_scale, rounded half away from zero, clipped to [lo, limit]
        (lo = -limit unless given: a quantized model's asymmetric range)."""
        old = np.asarray(q.scale, dtype=np.float64)
        ratio = old / np.asarray(new_scale, dtype=np.float64)
        top = float(np.max(np.abs(ratio)))
        k = (
            0
            if top == 0 or top >= 2**MULT_BITS
            else max(0, MULT_BITS - 1 - math.floor(math.log2(top)))
        )
        mult = round_half_away(ratio * 2.0**k)
        while k > 0 and q.bound * int(np.max(np.abs(mult))) >= EXACT_LIMIT:
            k -= 1
            mult = round_half_away(ratio * 2.0**k)
        if q.bound * int(np.max(np.abs(mult))) >= EXACT_LIMIT:
            raise self.refuse(
                node,
                "a rescaling would leave exact integers",
                "calibrate on data closer to its real range",
            )
        p = self.e.op("Mul", [q.name, self.e.const(mult, "mult")], "scaled")
        if k > 0:
            half = self.e.op(
                "Mul",
                [self.e.op("Sign", [p]), self.e.const(_i64(2 ** (k - 1)), "half")],
            )
            p = self.e.op(
                "Div",
                [self.e.op("Add", [p, half]), self.e.const(_i64(2**k), "pow2")],
                "rounded",
            )
        out = self.e.op(
            "Clip",
            [
                p,
                self.e.const(_i64(-limit if lo is None else lo)),
                self.e.const(_i64(limit)),
            ],
            "requant",
        )
        scale = np.asarray(new_scale, dtype=np.float64)
        reach = max(limit, abs(lo)) if lo is not None else limit
        return QTensor(
            out, q.shape, scale, min(reach, int(np.max(np.abs(mult))) * q.bound)
        )

    def narrow(
        self, q: QTensor, src: str, node: onnx.NodeProto, limit: int = ACT_MAX
    ) -> QTensor:
        """A tensor with a scalar scale and |q| <= limit (what a product or a table needs)."""
        if q.scale is None:
            raise self.refuse(
                node,
                "an integer index is used as a real value",
                "export the model without it",
            )
        if q.scale.ndim == 0 and q.bound <= limit:
            return q
        if src in self.calib and np.issubdtype(self.calib[src].dtype, np.floating):
            return self.requant(q, self.act_scale(src, limit), limit, node)
        # an integer tensor of a quantized model: its own range, so nothing is clipped
        return self.requant(
            q, np.asarray(float(np.max(q.scale)) * q.bound / limit), limit, node
        )

    def act_scale(self, src: str, limit: int = ACT_MAX) -> np.ndarray:
        """The scale of an activation: its calibrated range, with headroom at 16 bits."""
        room = ACT_HEADROOM if limit == ACT_MAX else 1.0
        return _scale_of(float(self.calib_max(src)) * room, limit)

    def scalar_scale(self, q: QTensor, src: str, node: onnx.NodeProto) -> QTensor:
        """Same values, one scale for every element (before an op that moves the last axis)."""
        if q.scale is None or q.scale.ndim == 0:
            return q
        return self.narrow(q, src, node, limit=ACT_MAX)

    # --- the emitted graph

    def finish(
        self, input_name: str, output: QTensor, batch: int, row_shape: tuple[int, ...]
    ) -> onnx.ModelProto:
        inputs = [
            helper.make_tensor_value_info(
                input_name, TensorProto.INT32, [batch, *row_shape]
            )
        ]
        out = self.e.op("Identity", [output.name], "y")
        outputs = [helper.make_tensor_value_info(out, _I64, list(output.shape))]
        graph = helper.make_graph(
            self.e.nodes, "imported", inputs, outputs, initializer=self.e.consts
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
        )
        model.producer_name = PRODUCER
        return model


# ---------------------------------------------------------------- handlers


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _broadcasts(small: Sequence[int], big: Sequence[int]) -> bool:
    """Whether `small` broadcasts unidirectionally to `big` (numpy rules, right-aligned)."""
    return len(small) <= len(big) and all(
        a in (1, b) for a, b in zip(reversed(small), reversed(big))
    )


def _affine_const(
    b: _Builder,
    node: onnx.NodeProto,
    q: QTensor,
    c: np.ndarray,
    sign: int,
    const_first: bool,
) -> QTensor:
    """q (+/-) c for a constant c: any shape that broadcasts to q's when q has one scale,
    else one that varies along q's last axis at most."""
    c = np.asarray(c, dtype=np.float64)
    if q.scale is not None and q.scale.ndim == 0 and _broadcasts(c.shape, q.shape):
        qc = round_half_away(c / q.scale)
        args = (
            [b.e.const(qc, "k"), q.name]
            if const_first and sign < 0
            else [q.name, b.e.const(qc, "k")]
        )
        name = b.e.op("Add" if sign > 0 else "Sub", args)
        return QTensor(
            name, q.shape, q.scale, q.bound + int(np.max(np.abs(qc), initial=0))
        )
    if c.size not in (1, q.shape[-1] if q.shape else 1) or (
        c.ndim > 1 and any(d != 1 for d in c.shape[:-1])
    ):
        raise b.refuse(
            node,
            "a constant operand varies along more than the last axis",
            "fold it into the weights before export",
        )
    cv = c.reshape(-1) if c.size > 1 else c.reshape(())
    qc = round_half_away(cv / q.scale)
    if const_first and sign < 0:
        name = b.e.op("Sub", [b.e.const(qc, "k"), q.name])
    else:
        name = b.e.op("Add" if sign > 0 else "Sub", [q.name, b.e.const(qc, "k")])
    return QTensor(name, q.shape, q.scale, q.bound + int(np.max(np.abs(qc))))


def _fold_error(v: np.ndarray, scale: np.ndarray | None, w: np.ndarray) -> float:
    """Largest error of v @ w on the calibration rows with input scales `scale` (None: one)."""
    v = np.asarray(v, dtype=np.float64).reshape(-1, w.shape[0])
    if scale is None:
        scale = _scale_of(np.abs(v).max(), ACT_MAX)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (w.shape[0],))
    qx = np.clip(round_half_away(v / scale), -ACT_MAX, ACT_MAX)
    folded = scale[:, None] * w
    col = _scale_of(np.abs(folded).max(axis=0), WEIGHT_MAX)
    approx = (
        qx.astype(np.float64) @ round_half_away(folded / col).astype(np.float64)
    ) * col
    return float(np.abs(approx - v @ w).max()) if len(v) else 0.0


def _linear(
    b: _Builder, node: onnx.NodeProto, src: str, w: np.ndarray, bias: np.ndarray | None
) -> QTensor:
    """x @ w (+ bias), w constant [K, H]: int8 weights per column, accumulate exactly in int64."""
    q = b.get(node, src)
    if q.scale is None:
        raise b.refuse(
            node,
            "an integer index is multiplied by weights",
            "export the model without it",
        )
    w = np.asarray(w, dtype=np.float64)
    if q.bound > ACT_MAX or (
        q.scale.ndim == 1
        and _fold_error(b.calib[src], q.scale, w) > _fold_error(b.calib[src], None, w)
    ):
        # one scale for the input when per-feature scales would leave the weights too coarse
        q = b.narrow(q, src, node)
    if w.ndim != 2 or q.shape[-1] != w.shape[0]:
        raise b.refuse(
            node,
            f"weights of shape {list(w.shape)} do not match an input of shape {list(q.shape)}",
            "export a 2-D weight matrix",
        )
    folded = (np.broadcast_to(q.scale, (w.shape[0],))[:, None]) * w
    col_scale = _scale_of(np.abs(folded).max(axis=0), WEIGHT_MAX)
    qw = round_half_away(folded / col_scale)
    acc = b.e.op("MatMul", [q.name, b.e.const(qw, "w")], "acc")
    bound = q.bound * int(np.abs(qw).sum(axis=0).max())
    out = QTensor(acc, q.shape[:-1] + (w.shape[1],), col_scale, bound)
    if bias is not None:
        out = _affine_const(
            b, node, out, np.asarray(bias, dtype=np.float64).reshape(-1), +1, False
        )
    return out


def _h_alias(b: _Builder, node: onnx.NodeProto) -> None:
    b.put(node.output[0], b.get(node, node.input[0]))


def _h_cast(b: _Builder, node: onnx.NodeProto) -> None:
    to = _attrs(node)["to"]
    q = b.get(node, node.input[0])
    if to in _FLOAT_TYPES or to == TensorProto.DOUBLE or q.scale is None:
        b.put(node.output[0], q)
        return
    raise b.refuse(
        node,
        "a real value is cast to an integer type",
        "export the model without the cast",
    )


def _h_matmul(b: _Builder, node: onnx.NodeProto) -> None:
    w = b.const_of(node.input[1])
    if w is None or b.const_of(node.input[0]) is not None:
        raise b.refuse(
            node,
            "only a product of an activation by constant weights is supported",
            "make the weights an initializer",
        )
    b.put(node.output[0], _linear(b, node, node.input[0], w, None))


def _h_gemm(b: _Builder, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    if a.get("transA", 0):
        raise b.refuse(
            node,
            "transA=1 is not supported",
            "export Gemm with the activation untransposed",
        )
    w = b.const_of(node.input[1])
    if w is None:
        raise b.refuse(
            node, "the weights are not constant", "make the weights an initializer"
        )
    w = np.asarray(w, dtype=np.float64)
    w = (w.T if a.get("transB", 0) else w) * float(a.get("alpha", 1.0))
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c = b.const_of(node.input[2])
        if c is None:
            raise b.refuse(
                node, "the bias is not constant", "make the bias an initializer"
            )
        bias = np.broadcast_to(
            np.asarray(c, dtype=np.float64) * float(a.get("beta", 1.0)), (w.shape[1],)
        )
    b.put(node.output[0], _linear(b, node, node.input[0], w, bias))


def _h_addsub(b: _Builder, node: onnx.NodeProto) -> None:
    sign = 1 if node.op_type == "Add" else -1
    c0, c1 = b.const_of(node.input[0]), b.const_of(node.input[1])
    if c1 is not None:
        b.put(
            node.output[0],
            _affine_const(b, node, b.get(node, node.input[0]), c1, sign, False),
        )
    elif c0 is not None:
        q = b.get(node, node.input[1])
        if sign > 0:
            b.put(node.output[0], _affine_const(b, node, q, c0, +1, False))
        else:
            b.put(node.output[0], _affine_const(b, node, q, c0, -1, True))
    else:
        # two activations (a residual): bring both to the output's scale, then add
        x, y = b.get(node, node.input[0]), b.get(node, node.input[1])
        if x.shape != y.shape:
            raise b.refuse(
                node,
                "the operands need broadcasting",
                "export operands of the same shape",
            )
        widest = max(
            node.input[0],
            node.input[1],
            node.output[0],
            key=lambda n: float(b.calib_max(n)),
        )
        scale = b.act_scale(widest)
        xs = b.requant(x, scale, ACT_MAX, node)
        ys = b.requant(y, scale, ACT_MAX, node)
        out = b.e.op(node.op_type, [xs.name, ys.name])
        b.put(node.output[0], QTensor(out, x.shape, scale, 2 * ACT_MAX))


def _h_mul(b: _Builder, node: onnx.NodeProto, divide: bool = False) -> None:
    c = b.const_of(node.input[1])
    src = node.input[0]
    if c is None and not divide and b.const_of(node.input[0]) is not None:
        c, src = b.const_of(node.input[0]), node.input[1]
    if c is None:
        raise b.refuse(
            node,
            "a product of two activations is not supported yet",
            "export the model with one constant operand",
        )
    c = np.asarray(c, dtype=np.float64)
    if divide:
        if np.any(c == 0):
            raise b.refuse(node, "division by a zero constant", "fix the model")
        c = 1.0 / c
    q = b.get(node, src)
    if q.scale is None:
        raise b.refuse(node, "scales an integer index", "export the model without it")
    if c.size not in (1, q.shape[-1]) or (
        c.ndim > 1 and any(d != 1 for d in c.shape[:-1])
    ):
        if q.scale.ndim != 0 or not _broadcasts(c.shape, q.shape):
            raise b.refuse(
                node,
                "a constant factor varies along more than the last axis",
                "fold it into the weights before export",
            )
        # a factor per channel (axis 1, say): one rescale with a multiplier per element of c
        old = QTensor(q.name, q.shape, np.asarray(q.scale) * c, q.bound)
        b.put(
            node.output[0], b.requant(old, b.act_scale(node.output[0]), ACT_MAX, node)
        )
        return
    cv = c.reshape(-1) if c.size > 1 else c.reshape(())
    # v * c = q * (s * |c|) * sign(c): exact, the scale absorbs |c|
    sign = np.sign(cv).astype(np.int64)
    new_scale = np.where(cv != 0, np.asarray(q.scale) * np.abs(cv), np.asarray(q.scale))
    name = b.e.op("Mul", [q.name, b.e.const(sign, "sign")])
    b.put(node.output[0], QTensor(name, q.shape, new_scale, q.bound))


def _h_relu(b: _Builder, node: onnx.NodeProto) -> None:
    q = b.get(node, node.input[0])
    b.put(node.output[0], QTensor(b.e.op("Relu", [q.name]), q.shape, q.scale, q.bound))


def _h_leaky(b: _Builder, node: onnx.NodeProto) -> None:
    alpha = float(_attrs(node).get("alpha", 0.01))
    q = b.narrow(b.get(node, node.input[0]), node.input[0], node)
    scaled = b.requant(q, q.scale / alpha if alpha else q.scale, ACT_MAX, node)
    if alpha == 0:
        scaled = QTensor(
            b.e.op("Mul", [q.name, b.e.const(_i64(0))]), q.shape, q.scale, 0
        )
    pos = b.e.op("GreaterOrEqual", [q.name, b.e.const(_i64(0))])
    b.put(
        node.output[0],
        QTensor(b.e.op("Where", [pos, q.name, scaled.name]), q.shape, q.scale, q.bound),
    )


def _h_clip(b: _Builder, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    q = b.get(node, node.input[0])
    lo = (
        a.get("min")
        if len(node.input) < 2 or not node.input[1]
        else b.const_of(node.input[1])
    )
    hi = (
        a.get("max")
        if len(node.input) < 3 or not node.input[2]
        else b.const_of(node.input[2])
    )
    for name in node.input[1:]:
        if name and b.const_of(name) is None:
            raise b.refuse(
                node, "the bounds are not constant", "make them initializers"
            )
    args = [q.name]
    for v in (lo, hi):
        args.append(
            ""
            if v is None
            else b.e.const(
                round_half_away(np.asarray(v, dtype=np.float64) / q.scale), "bound"
            )
        )
    while args[-1] == "":
        args.pop()
    b.put(node.output[0], QTensor(b.e.op("Clip", args), q.shape, q.scale, q.bound))


def _table(
    b: _Builder,
    node: onnx.NodeProto,
    fn: Callable[[np.ndarray], np.ndarray],
    lo_out: float,
) -> None:
    src = node.input[0]
    q = b.get(node, src)
    # inputs beyond +-8 are saturated for both functions; cover at least that far
    reach = max(float(b.calib_max(src)), 8.0)
    in_scale = np.asarray(reach / TABLE_HALF)
    qi = b.requant(q, in_scale, TABLE_HALF, node) if q.scale is not None else None
    if qi is None:
        raise b.refuse(
            node, "applied to an integer index", "export the model without it"
        )
    out_scale = np.asarray(1.0 / ACT_MAX)
    grid = np.arange(-TABLE_HALF, TABLE_HALF + 1, dtype=np.float64) * float(in_scale)
    table = np.clip(
        round_half_away(fn(grid) / out_scale), int(lo_out * ACT_MAX), ACT_MAX
    )
    idx = b.e.op("Add", [qi.name, b.e.const(_i64(TABLE_HALF))])
    out = b.e.op("Gather", [b.e.const(table, "table"), idx], axis=0)
    b.put(
        node.output[0],
        QTensor(out, q.shape, out_scale, ACT_MAX),
        track=node.op_type in ("Sigmoid", "Tanh"),
    )


def _h_sigmoid(b: _Builder, node: onnx.NodeProto) -> None:
    _table(b, node, lambda x: 1.0 / (1.0 + np.exp(-x)), 0.0)


def _h_tanh(b: _Builder, node: onnx.NodeProto) -> None:
    _table(b, node, np.tanh, -1.0)


def _h_argmax(b: _Builder, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    q = b.get(node, node.input[0])
    axis = int(a.get("axis", 0)) % len(q.shape)
    if q.scale is not None and q.scale.ndim == 1 and axis == len(q.shape) - 1:
        # compare in one unit: bring every column to the finest column scale
        finest = np.asarray(float(np.min(q.scale)))
        q = b.requant(
            q,
            finest,
            min(
                EXACT_LIMIT // 2**MULT_BITS - 1,
                q.bound * int(math.ceil(_max_of(q.scale) / float(finest))) + 1,
            ),
            node,
        )
    keep = int(a.get("keepdims", 1))
    out = b.e.op(
        "ArgMax",
        [q.name],
        axis=axis,
        keepdims=keep,
        select_last_index=int(a.get("select_last_index", 0)),
    )
    shape = list(q.shape)
    if keep:
        shape[axis] = 1
    else:
        shape.pop(axis)
    b.put(node.output[0], QTensor(out, tuple(shape), None, max(q.shape)))


# ops that keep the order of values: between a Softmax and an ArgMax they change nothing
MONOTONE = {"Identity", "QuantizeLinear", "DequantizeLinear"}


def _h_softmax(b: _Builder, node: onnx.NodeProto) -> None:
    """Softmax (or QLinearSoftmax) is monotone along its axis: before an ArgMax over that
    axis, through order-keeping ops only, the logits stand in for the probabilities."""
    if _only_argmax(b, node.output[0]):
        b.put(node.output[0], b.get(node, node.input[0]), track=False)
        b.standins.add(node.output[0])
        return
    raise b.refuse(
        node,
        "Softmax whose result is used as a value",
        "end the graph at the logits or an ArgMax",
    )


def _only_argmax(b: _Builder, name: str) -> bool:
    users = [u for u in b.users.get(name, []) if u.op_type not in SKIPPED]
    return bool(users) and all(
        u.op_type == "ArgMax"
        or (u.op_type in MONOTONE and _only_argmax(b, u.output[0]))
        for u in users
    )


def _standin(b: _Builder, node: onnx.NodeProto) -> bool:
    """Pass a Softmax's stand-in through an order-keeping op unchanged."""
    if node.input[0] not in b.standins:
        return False
    b.put(node.output[0], b.env[node.input[0]], track=False)
    b.standins.add(node.output[0])
    return True


def _h_shape_op(b: _Builder, node: onnx.NodeProto) -> None:
    q = b.get(node, node.input[0])
    out_shape = b.shapes.get(node.output[0])
    if out_shape is None:
        raise b.refuse(node, "its output shape is unknown", "export with static shapes")
    last_kept = bool(out_shape) and bool(q.shape) and out_shape[-1] == q.shape[-1]
    if node.op_type == "Transpose":
        perm = list(_attrs(node).get("perm", reversed(range(len(q.shape)))))
        last_kept = perm[-1] == len(q.shape) - 1
    if q.scale is not None and q.scale.ndim == 1 and not last_kept:
        q = b.scalar_scale(q, node.input[0], node)
    if node.op_type == "Transpose":
        name = b.e.op("Transpose", [q.name], perm=perm)
    else:
        name = b.e.op("Reshape", [q.name, b.e.const(_i64(out_shape), "shape")])
    b.put(node.output[0], QTensor(name, tuple(out_shape), q.scale, q.bound))


def _h_concat(b: _Builder, node: onnx.NodeProto) -> None:
    axis = int(_attrs(node)["axis"])
    parts = [b.get(node, n) for n in node.input]
    out_shape = b.shapes[node.output[0]]
    if all(p.scale is None for p in parts):
        name = b.e.op("Concat", [p.name for p in parts], axis=axis)
        b.put(
            node.output[0],
            QTensor(name, tuple(out_shape), None, max(p.bound for p in parts)),
        )
        return
    if any(p.scale is None for p in parts):
        raise b.refuse(
            node,
            "joins integer indices with real values",
            "export the model without it",
        )
    scale = b.act_scale(node.output[0])
    names = [b.requant(p, scale, ACT_MAX, node).name for p in parts]
    b.put(
        node.output[0],
        QTensor(b.e.op("Concat", names, axis=axis), tuple(out_shape), scale, ACT_MAX),
    )


def _h_scaler(b: _Builder, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    q = b.get(node, node.input[0])
    f = q.shape[-1]
    offset = np.broadcast_to(np.asarray(a.get("offset", [0.0]), dtype=np.float64), (f,))
    scale = np.broadcast_to(np.asarray(a.get("scale", [1.0]), dtype=np.float64), (f,))
    # (v - offset) * scale with v = q * s: the new scale is s * |scale|, exact
    s = np.broadcast_to(np.asarray(q.scale, dtype=np.float64), (f,))
    new_scale = np.where(scale != 0, s * np.abs(scale), s)
    flipped = b.e.op(
        "Mul", [q.name, b.e.const(np.sign(scale).astype(np.int64), "sign")]
    )
    shift = round_half_away(-offset * scale / new_scale)
    name = b.e.op("Add", [flipped, b.e.const(shift, "offset")])
    b.put(
        node.output[0],
        QTensor(name, q.shape, new_scale, q.bound + int(np.max(np.abs(shift)))),
    )


def _classes(b: _Builder, node: onnx.NodeProto) -> np.ndarray:
    a = _attrs(node)
    if "classlabels_ints" not in a:
        raise b.refuse(node, "string class labels", "train on integer class labels")
    return _i64(a["classlabels_ints"])


def _h_linear_classifier(b: _Builder, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    classes = _classes(b, node)
    q = b.get(node, node.input[0])
    f = q.shape[-1]
    coef = np.asarray(a["coefficients"], dtype=np.float64).reshape(-1, f)
    icpt = np.asarray(a.get("intercepts", [0.0] * coef.shape[0]), dtype=np.float64)
    if coef.shape[0] == 1 and len(classes) == 2:
        # one score s decides between two classes: class 1 iff s > 0, as ArgMax([-s, s])
        coef, icpt = np.concatenate([-coef, coef]), np.concatenate([-icpt, icpt])
    scores = _linear(b, node, node.input[0], coef.T, icpt)
    raw = node.output[0] + "#scores"
    b.put(raw, scores)
    if _attrs(node).get("post_transform", b"NONE") in (b"NONE", "NONE"):
        b.put(node.output[1], scores)
    fake = helper.make_node(
        "ArgMax", [raw], [node.output[0] + "#idx"], axis=1, keepdims=0
    )
    _h_argmax(b, fake)
    idx = b.env[node.output[0] + "#idx"]
    label = b.e.op("Gather", [b.e.const(classes, "classes"), idx.name], axis=0)
    b.put(node.output[0], QTensor(label, idx.shape, None, int(np.max(np.abs(classes)))))


def _h_linear_regressor(b: _Builder, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    if a.get("post_transform", b"NONE") not in (b"NONE", "NONE"):
        raise b.refuse(node, "a post transform", "export the regressor without one")
    q = b.get(node, node.input[0])
    coef = np.asarray(a["coefficients"], dtype=np.float64).reshape(-1, q.shape[-1])
    icpt = np.asarray(a.get("intercepts", [0.0] * coef.shape[0]), dtype=np.float64)
    b.put(node.output[0], _linear(b, node, node.input[0], coef.T, icpt))


def _h_feature_extractor(b: _Builder, node: onnx.NodeProto) -> None:
    table = b.const_of(node.input[0])
    idx = b.get(node, node.input[1])
    if table is None or np.asarray(table).ndim != 1 or idx.scale is not None:
        raise b.refuse(
            node,
            "only a lookup of class labels by an index is supported",
            "export class labels as a constant",
        )
    t = np.asarray(table)
    if not np.all(t == np.round(t)):
        raise b.refuse(
            node, "class labels are not integers", "train on integer class labels"
        )
    name = b.e.op("Gather", [b.e.const(_i64(t), "classes"), idx.name], axis=0)
    out_shape = b.shapes.get(node.output[0], idx.shape)
    if tuple(out_shape) != idx.shape:
        name = b.e.op("Reshape", [name, b.e.const(_i64(out_shape), "shape")])
    b.put(node.output[0], QTensor(name, tuple(out_shape), None, int(np.max(np.abs(t)))))


def _bn_params(
    b: _Builder, node: onnx.NodeProto
) -> tuple[np.ndarray, np.ndarray] | None:
    """BatchNormalization as y = x * a + c per channel, if all its parameters are constant."""
    params = [b.const_of(n) for n in node.input[1:5]]
    if any(p is None for p in params):
        return None
    gamma, beta, mean, var = (np.asarray(p, dtype=np.float64) for p in params)
    a = gamma / np.sqrt(var + float(_attrs(node).get("epsilon", 1e-5)))
    return a, beta - mean * a


def _spatial_attrs(node: onnx.NodeProto, rank: int) -> dict[str, Any]:
    a = _attrs(node)
    keep = {
        k: a[k]
        for k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
        if k in a
    }
    if isinstance(keep.get("auto_pad"), bytes):
        keep["auto_pad"] = keep["auto_pad"].decode()
    return keep


def _conv_acc(
    b: _Builder,
    node: onnx.NodeProto,
    src: str,
    w: np.ndarray,
    bias: np.ndarray,
    shape: Sequence[int],
) -> QTensor:
    """x * w + bias in exact integers: int8 activations and int8 weights per output channel
    into ConvInteger, the bias added in int64; the result has one scale per channel."""
    q = b.get(node, src)
    if q.scale is None:
        raise b.refuse(node, "convolves integer indices", "export the model without it")
    x8 = b.narrow(q, src, node, limit=127)
    xi = b.e.op("Cast", [x8.name], "x_i8", to=TensorProto.INT8)
    folded_w = float(x8.scale) * w
    chan = _scale_of(np.abs(folded_w).reshape(w.shape[0], -1).max(axis=1), 127)
    qw = round_half_away(folded_w / chan.reshape((-1,) + (1,) * (w.ndim - 1)))
    acc = b.e.op(
        "ConvInteger",
        [xi, b.e.const(qw.astype(np.int8), "w_i8")],
        "conv",
        **_spatial_attrs(node, w.ndim - 2),
    )
    wide = b.e.op("Cast", [acc], "conv64", to=_I64)
    axis_shape = (-1,) + (1,) * (w.ndim - 2)
    qb = round_half_away(bias / chan).reshape(axis_shape)
    summed = b.e.op("Add", [wide, b.e.const(qb, "bias")])
    bound = x8.bound * int(np.abs(qw).reshape(w.shape[0], -1).sum(axis=1).max()) + int(
        np.abs(qb).max()
    )
    return QTensor(summed, tuple(shape), chan.reshape(axis_shape), bound)


def _h_conv(b: _Builder, node: onnx.NodeProto) -> None:
    """Conv with constant weights, then one rescale back to a 16-bit activation. A
    BatchNormalization that alone reads the output is folded into the weights."""
    w = b.const_of(node.input[1])
    if w is None:
        raise b.refuse(
            node, "the weights are not constant", "make the weights an initializer"
        )
    w = np.asarray(w, dtype=np.float64)
    bias = (
        np.zeros(w.shape[0])
        if len(node.input) < 3 or not node.input[2]
        else b.const_of(node.input[2])
    )
    if bias is None:
        raise b.refuse(node, "the bias is not constant", "make the bias an initializer")
    bias = np.asarray(bias, dtype=np.float64).reshape(-1)
    out_name = node.output[0]
    users = b.users.get(out_name, [])
    if (
        len(users) == 1
        and users[0].op_type == "BatchNormalization"
        and (folded := _bn_params(b, users[0])) is not None
    ):
        a, c = folded
        w = w * a.reshape((-1,) + (1,) * (w.ndim - 1))
        bias = bias * a + c
        out_name = users[0].output[0]
    acc = _conv_acc(b, node, node.input[0], w, bias, b.shapes[out_name])
    b.put(out_name, b.requant(acc, b.act_scale(out_name), ACT_MAX, node))


def _h_batchnorm(b: _Builder, node: onnx.NodeProto) -> None:
    """y = x * a + c per channel (axis 1): one rescale with a per-channel multiplier."""
    if node.output[0] in b.env:  # folded into the Conv before it
        return
    q = b.get(node, node.input[0])
    folded = _bn_params(b, node)
    if folded is None or q.scale is None or len(q.shape) < 2:
        raise b.refuse(
            node, "its parameters are not constant", "make them initializers"
        )
    a, c = folded
    axis_shape = (-1,) + (1,) * (len(q.shape) - 2)
    scale = b.act_scale(node.output[0])
    old = QTensor(q.name, q.shape, np.asarray(q.scale) * a.reshape(axis_shape), q.bound)
    scaled = b.requant(old, scale, ACT_MAX, node)
    shift = round_half_away(c / scale).reshape(axis_shape)
    name = b.e.op("Add", [scaled.name, b.e.const(shift, "shift")])
    b.put(
        node.output[0],
        QTensor(name, q.shape, scale, ACT_MAX + int(np.abs(shift).max())),
    )


def _window_slices(b: _Builder, node: onnx.NodeProto, q: QTensor) -> list[str]:
    """One strided Slice per kernel offset: pooling as an n-ary Max or a sum of them."""
    a = _attrs(node)
    kernel = list(a["kernel_shape"])
    n = len(kernel)
    strides = list(a.get("strides", [1] * n))
    if any(a.get("pads", [0] * 2 * n)) or a.get("auto_pad", b"NOTSET") not in (
        b"NOTSET",
        "NOTSET",
        b"VALID",
        "VALID",
    ):
        raise b.refuse(
            node,
            "padding is not supported for pooling",
            "pad with a Conv or export the pool without pads",
        )
    if any(d != 1 for d in a.get("dilations", [1] * n)) or a.get("ceil_mode", 0):
        raise b.refuse(
            node,
            "dilations or ceil_mode are not supported for pooling",
            "export the pool without them",
        )
    if int(np.prod(kernel)) > 255:
        raise b.refuse(
            node, "the window has more than 255 elements", "use a smaller window"
        )
    out = b.shapes[node.output[0]]
    spatial = list(range(len(q.shape) - n, len(q.shape)))
    names = []
    for offset in np.ndindex(*kernel):
        starts = list(offset)
        ends = [
            o + (out[ax] - 1) * st + 1 for o, ax, st in zip(offset, spatial, strides)
        ]
        names.append(
            b.e.op(
                "Slice",
                [
                    q.name,
                    b.e.const(_i64(starts), "starts"),
                    b.e.const(_i64(ends), "ends"),
                    b.e.const(_i64(spatial), "axes"),
                    b.e.const(_i64(strides), "steps"),
                ],
                "window",
            )  # fmt: skip
        )
    return names


def _h_maxpool(b: _Builder, node: onnx.NodeProto) -> None:
    if len(node.output) > 1 and node.output[1]:
        raise b.refuse(
            node,
            "the Indices output is not supported",
            "export MaxPool without indices",
        )
    q = b.scalar_scale(b.get(node, node.input[0]), node.input[0], node)
    names = _window_slices(b, node, q)
    out = b.e.op("Max", names, "maxpool") if len(names) > 1 else names[0]
    b.put(
        node.output[0], QTensor(out, tuple(b.shapes[node.output[0]]), q.scale, q.bound)
    )


def _h_avgpool(b: _Builder, node: onnx.NodeProto) -> None:
    q = b.scalar_scale(b.get(node, node.input[0]), node.input[0], node)
    names = _window_slices(b, node, q)
    total = names[0]
    for other in names[1:]:
        total = b.e.op("Add", [total, other], "window_sum")
    # the mean is the sum at a finer scale: exact
    b.put(
        node.output[0],
        QTensor(
            total,
            tuple(b.shapes[node.output[0]]),
            np.asarray(q.scale) / len(names),
            q.bound * len(names),
        ),
    )


def _h_global_avgpool(b: _Builder, node: onnx.NodeProto) -> None:
    q = b.scalar_scale(b.get(node, node.input[0]), node.input[0], node)
    axes = list(range(2, len(q.shape)))
    count = int(np.prod([q.shape[ax] for ax in axes]))
    total = b.e.op(
        "ReduceSum", [q.name, b.e.const(_i64(axes), "axes")], "gap", keepdims=1
    )
    b.put(
        node.output[0],
        QTensor(
            total,
            tuple(b.shapes[node.output[0]]),
            np.asarray(q.scale) / count,
            q.bound * count,
        ),
    )


# ---------------------------------------------------------------- quantized models


def _qrange(zp: np.ndarray | None) -> tuple[int, int]:
    """The integer range of a quantized tensor, from its zero point's type (uint8 if none)."""
    if zp is not None and np.asarray(zp).dtype == np.int8:
        return -128, 127
    return 0, 255


def _qparams(
    b: _Builder, node: onnx.NodeProto, scale_at: int, zp_at: int
) -> tuple[np.ndarray, int, int, int]:
    """(scale, zero point, lo, hi) of a per-tensor quantization; lo/hi centered on zero."""
    scale = b.const_of(node.input[scale_at])
    zp = (
        b.const_of(node.input[zp_at])
        if len(node.input) > zp_at and node.input[zp_at]
        else None
    )
    if scale is None or (len(node.input) > zp_at and node.input[zp_at] and zp is None):
        raise b.refuse(
            node,
            "its scale or zero point is not constant",
            "quantize with constant parameters",
        )
    if np.asarray(scale).size != 1 or (zp is not None and np.asarray(zp).size != 1):
        raise b.refuse(
            node,
            "an activation is quantized per channel",
            "quantize activations per tensor",
        )
    lo, hi = _qrange(zp)
    z = int(np.asarray(zp).reshape(-1)[0]) if zp is not None else 0
    return np.asarray(float(np.asarray(scale).reshape(-1)[0])), z, lo - z, hi - z


def _dequantized(
    b: _Builder,
    node: onnx.NodeProto,
    value_at: int,
    scale_at: int,
    zp_at: int,
    axis: int = 0,
) -> np.ndarray:
    """A quantized constant (weights) as the reals it stands for, per channel along `axis`."""
    q = b.const_of(node.input[value_at])
    scale = b.const_of(node.input[scale_at])
    zp = (
        b.const_of(node.input[zp_at])
        if len(node.input) > zp_at and node.input[zp_at]
        else np.zeros(1)
    )
    if q is None or scale is None or zp is None:
        raise b.refuse(
            node, "its weights are not constant", "quantize with constant weights"
        )
    return _dequantize_array(np.asarray(q), np.asarray(scale), np.asarray(zp), axis)


def _dequantize_array(
    q: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int
) -> np.ndarray:
    shape = [1] * q.ndim
    if scale.size > 1:
        shape[axis] = -1
    return (
        q.astype(np.float64)
        - zp.astype(np.float64).reshape(shape if zp.size > 1 else ())
    ) * scale.astype(np.float64).reshape(shape if scale.size > 1 else ())


def _h_quantize(b: _Builder, node: onnx.NodeProto) -> None:
    """QuantizeLinear of an activation: its values on the model's 8-bit grid, held centered
    (q - zero point) at the model's scale; the rounding is half away from zero (ONNX: to even)."""
    if _standin(b, node):
        return
    scale, _, lo, hi = _qparams(b, node, 1, 2)
    q = b.get(node, node.input[0])
    if q.scale is None:
        raise b.refuse(
            node, "quantizes an integer index", "export the model without it"
        )
    b.put(node.output[0], b.requant(q, scale, hi, node, lo=lo))


def _h_dequantize(b: _Builder, node: onnx.NodeProto) -> None:
    if _standin(b, node):
        return
    q = b.get(node, node.input[0])
    scale, _, _, _ = _qparams(b, node, 1, 2)
    if (
        q.scale is None
        or q.scale.ndim != 0
        or not math.isclose(float(q.scale), float(scale), rel_tol=1e-6)
    ):
        raise b.refuse(
            node,
            "dequantizes with other parameters than its QuantizeLinear",
            "pair each QuantizeLinear with its DequantizeLinear",
        )
    b.put(node.output[0], q, track=False)


def _h_qlinear_conv(b: _Builder, node: onnx.NodeProto) -> None:
    w = _dequantized(b, node, 3, 4, 5, axis=0)
    x_scale, _, _, _ = _qparams(b, node, 1, 2)
    w_scale = np.asarray(b.const_of(node.input[4]), dtype=np.float64).reshape(-1)
    bias = np.zeros(w.shape[0])
    if len(node.input) > 8 and node.input[8]:
        bias = (
            np.asarray(b.const_of(node.input[8]), dtype=np.float64)
            * float(x_scale)
            * np.broadcast_to(w_scale, (w.shape[0],))
        )
    acc = _conv_acc(b, node, node.input[0], w, bias, b.shapes[node.output[0]])
    y_scale, _, lo, hi = _qparams(b, node, 6, 7)
    b.put(node.output[0], b.requant(acc, y_scale, hi, node, lo=lo))


def _h_qlinear_matmul(b: _Builder, node: onnx.NodeProto) -> None:
    w = _dequantized(b, node, 3, 4, 5, axis=1)
    acc = _linear(b, node, node.input[0], w, None)
    y_scale, _, lo, hi = _qparams(b, node, 6, 7)
    b.put(node.output[0], b.requant(acc, y_scale, hi, node, lo=lo))


def _h_qgemm(b: _Builder, node: onnx.NodeProto) -> None:
    """com.microsoft QGemm: A (quantized activation) x B (quantized weights) + C (int32)."""
    a = _attrs(node)
    if a.get("transA", 0):
        raise b.refuse(
            node,
            "transA=1 is not supported",
            "quantize Gemm with the activation untransposed",
        )
    trans_b = bool(a.get("transB", 0))
    w = _dequantized(b, node, 3, 4, 5, axis=0 if trans_b else 1)
    w = (w.T if trans_b else w) * float(a.get("alpha", 1.0))
    a_scale, _, _, _ = _qparams(b, node, 1, 2)
    bias = None
    if len(node.input) > 6 and node.input[6]:
        b_scale = np.asarray(b.const_of(node.input[4]), dtype=np.float64).reshape(-1)
        bias = (
            np.asarray(b.const_of(node.input[6]), dtype=np.float64).reshape(-1)
            * float(a_scale)
            * b_scale
        )
    acc = _linear(b, node, node.input[0], w, bias)
    if len(node.input) > 7 and node.input[7]:
        y_scale, _, lo, hi = _qparams(b, node, 7, 8)
        acc = b.requant(acc, y_scale, hi, node, lo=lo)
    b.put(node.output[0], acc)


def _h_qlinear_sigmoid(b: _Builder, node: onnx.NodeProto) -> None:
    """com.microsoft QLinearSigmoid: the Sigmoid table, then onto the output's 8-bit grid."""
    y_scale, _, lo, hi = _qparams(b, node, 3, 4)
    _h_sigmoid(b, node)
    b.put(node.output[0], b.requant(b.env[node.output[0]], y_scale, hi, node, lo=lo))


def _h_qlinear_concat(b: _Builder, node: onnx.NodeProto) -> None:
    """com.microsoft QLinearConcat(Y_scale, Y_zp, X_0, X_0_scale, X_0_zp, ..): every operand
    onto the output's grid, then joined."""
    y_scale, _, lo, hi = _qparams(b, node, 0, 1)
    parts = [b.get(node, node.input[i]) for i in range(2, len(node.input), 3)]
    names = [b.requant(p, y_scale, hi, node, lo=lo).name for p in parts]
    out = b.e.op("Concat", names, axis=int(_attrs(node)["axis"]))
    b.put(
        node.output[0],
        QTensor(out, tuple(b.shapes[node.output[0]]), y_scale, max(abs(lo), hi)),
    )


def _h_qlinear_add(b: _Builder, node: onnx.NodeProto) -> None:
    """com.microsoft QLinearAdd: both operands on the output's grid, added, clipped to it."""
    y_scale, _, lo, hi = _qparams(b, node, 6, 7)
    for const_at, other_at in ((3, 0), (0, 3)):
        if b.const_of(node.input[const_at]) is not None:  # a quantized bias
            c = _dequantized(b, node, const_at, const_at + 1, const_at + 2)
            summed = _affine_const(
                b,
                node,
                b.requant(b.get(node, node.input[other_at]), y_scale, ACT_MAX, node),
                c,
                +1,
                False,
            )
            out = b.e.op(
                "Clip", [summed.name, b.e.const(_i64(lo)), b.e.const(_i64(hi))], "qadd"
            )
            b.put(node.output[0], QTensor(out, summed.shape, y_scale, max(abs(lo), hi)))
            return
    x, y = b.get(node, node.input[0]), b.get(node, node.input[3])
    if x.shape != y.shape:
        raise b.refuse(
            node, "the operands need broadcasting", "export operands of the same shape"
        )
    xs, ys = b.requant(x, y_scale, ACT_MAX, node), b.requant(y, y_scale, ACT_MAX, node)
    total = b.e.op("Add", [xs.name, ys.name])
    out = b.e.op("Clip", [total, b.e.const(_i64(lo)), b.e.const(_i64(hi))], "qadd")
    b.put(node.output[0], QTensor(out, x.shape, y_scale, max(abs(lo), hi)))


def _fold_quantized_constants(
    nodes: list[onnx.NodeProto], consts: dict[str, np.ndarray]
) -> list[onnx.NodeProto]:
    """DequantizeLinear of constants (QDQ weights) becomes the float constant it stands for."""
    kept = []
    for node in nodes:
        if node.op_type == "DequantizeLinear" and all(
            i in consts for i in node.input if i
        ):
            zp = (
                consts[node.input[2]]
                if len(node.input) > 2 and node.input[2]
                else np.zeros(1)
            )
            consts[node.output[0]] = _dequantize_array(
                np.asarray(consts[node.input[0]]),
                np.asarray(consts[node.input[1]]),
                np.asarray(zp),
                int(_attrs(node).get("axis", 1)),
            )
            continue
        kept.append(node)
    return kept


def _undo_dynamic_quantization(
    nodes: list[onnx.NodeProto], consts: dict[str, np.ndarray]
) -> list[onnx.NodeProto]:
    """onnxruntime's quantize_dynamic writes x -> DynamicQuantizeLinear -> MatMulInteger or
    ConvInteger (int8 weights) -> Cast -> Mul(x_scale * w_scale). The runtime scale of x
    cancels: the subgraph is x times the dequantized weights, which is what is imported."""
    producer = {o: n for n in nodes for o in n.output if o}
    users: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        for i in n.input:
            users.setdefault(i, []).append(n)
    dropped: set[int] = set()
    replaced: dict[int, onnx.NodeProto] = {}
    for n in nodes:
        if n.op_type not in ("MatMulInteger", "ConvInteger"):
            continue
        dql = producer.get(n.input[0])
        casts = users.get(n.output[0], [])
        where = f"node '{n.name or n.op_type}' ({n.op_type})"
        if (
            dql is None
            or dql.op_type != "DynamicQuantizeLinear"
            or len(casts) != 1
            or casts[0].op_type != "Cast"
        ):
            raise ImportError_(
                f"{where}: integer arithmetic outside a known quantization pattern; import the float model instead."
            )
        muls = users.get(casts[0].output[0], [])
        if len(muls) != 1 or muls[0].op_type != "Mul":
            raise ImportError_(
                f"{where}: its result is not rescaled by a Mul; import the float model instead."
            )
        mul = muls[0]
        factor = producer.get(next(i for i in mul.input if i != casts[0].output[0]))
        w_scale_names = [
            i
            for i in (
                factor.input if factor is not None and factor.op_type == "Mul" else []
            )
            if i != dql.output[1]
        ]
        if (
            len(w_scale_names) != 1
            or w_scale_names[0] not in consts
            or n.input[1] not in consts
        ):
            raise ImportError_(
                f"{where}: the weight scale is not a constant; import the float model instead."
            )
        wq = np.asarray(consts[n.input[1]])
        wzp = (
            np.asarray(consts[n.input[3]])
            if len(n.input) > 3 and n.input[3] in consts
            else np.zeros(1)
        )
        w_scale = np.asarray(consts[w_scale_names[0]], dtype=np.float64)
        axis = 0 if n.op_type == "ConvInteger" else 1
        w_float = _dequantize_array(wq, w_scale.reshape(-1), wzp.reshape(-1), axis)
        name = n.output[0] + "/dequantized_weights"
        consts[name] = w_float
        op = "Conv" if n.op_type == "ConvInteger" else "MatMul"
        new = helper.make_node(
            op, [dql.input[0], name], [mul.output[0]], name=n.name or op
        )
        if op == "Conv":
            new.attribute.extend(n.attribute)
        replaced[id(n)] = new
        dropped.update({id(casts[0]), id(mul)})
        if factor is not None and all(
            id(u) in dropped or u is mul for u in users.get(factor.output[0], [])
        ):
            dropped.add(id(factor))
    live = [replaced.get(id(n), n) for n in nodes if id(n) not in dropped]
    needed = {i for n in live for i in n.input}
    return [
        n
        for n in live
        if n.op_type != "DynamicQuantizeLinear"
        or n.output[0] in needed
        or any(o in needed for o in n.output)
    ]


HANDLERS: dict[str, Callable[[_Builder, onnx.NodeProto], None]] = {
    "Identity": lambda b, n: _standin(b, n) or _h_alias(b, n),
    "Dropout": _h_alias,
    "Cast": _h_cast,
    "MatMul": _h_matmul,
    "Gemm": _h_gemm,
    "Add": _h_addsub,
    "Sub": _h_addsub,
    "Mul": _h_mul,
    "Div": lambda b, n: _h_mul(b, n, divide=True),
    "Relu": _h_relu,
    "LeakyRelu": _h_leaky,
    "Clip": _h_clip,
    "Sigmoid": _h_sigmoid,
    "Tanh": _h_tanh,
    "Softmax": _h_softmax,
    "ArgMax": _h_argmax,
    "Reshape": _h_shape_op,
    "Flatten": _h_shape_op,
    "Squeeze": _h_shape_op,
    "Unsqueeze": _h_shape_op,
    "Transpose": _h_shape_op,
    "Concat": _h_concat,
    "Conv": _h_conv,
    "BatchNormalization": _h_batchnorm,
    "MaxPool": _h_maxpool,
    "AveragePool": _h_avgpool,
    "GlobalAveragePool": _h_global_avgpool,
    # quantized models (QDQ, QOperator, and com.microsoft's QGemm/QLinearAdd)
    "QuantizeLinear": _h_quantize,
    "DequantizeLinear": _h_dequantize,
    "QLinearConv": _h_qlinear_conv,
    "QLinearMatMul": _h_qlinear_matmul,
    "QGemm": _h_qgemm,
    "QLinearAdd": _h_qlinear_add,
    "QLinearSigmoid": _h_qlinear_sigmoid,
    "QLinearConcat": _h_qlinear_concat,
    "QLinearSoftmax": _h_softmax,
    # ai.onnx.ml, as skl2onnx writes scikit-learn pipelines
    "Scaler": _h_scaler,
    "LinearClassifier": _h_linear_classifier,
    "LinearRegressor": _h_linear_regressor,
    "ArrayFeatureExtractor": _h_feature_extractor,
}
# onnxruntime's contrib ops that its static quantization writes
MICROSOFT = {"QGemm", "QLinearAdd", "QLinearSigmoid", "QLinearConcat", "QLinearSoftmax"}
# outputs nobody needs for a label or a value: probability maps
SKIPPED = {"ZipMap"}


# ---------------------------------------------------------------- float side


def _float_session(model: onnx.ModelProto, names: Sequence[str]) -> Any:
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=n))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(
        m.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )


def _run_float(
    model: onnx.ModelProto, x: np.ndarray, names: Sequence[str]
) -> dict[str, np.ndarray]:
    sess = _float_session(model, names)
    feed = {model.graph.input[0].name: np.asarray(x, dtype=np.float32)}
    outs = sess.run(list(names), feed)
    return {n: np.asarray(v) for n, v in zip(names, outs)}


def _tensor_outputs(model: onnx.ModelProto) -> list[str]:
    """Every node output that holds a tensor (ZipMap's sequences are left out)."""
    names = []
    for node in model.graph.node:
        if node.op_type in SKIPPED:
            continue
        names.extend(o for o in node.output if o)
    return names


def read_float_model(source: Any) -> onnx.ModelProto:
    try:
        model = (
            source
            if isinstance(source, onnx.ModelProto)
            else onnx.load_model_from_string(bytes(source))
            if isinstance(source, bytes | bytearray)
            else onnx.load(str(source))
        )
        onnx.checker.check_model(model)
    except (
        OSError,
        onnx.checker.ValidationError,
        onnx.onnx_cpp2py_export.checker.ValidationError,
        Exception,
    ) as err:  # type: ignore[attr-defined]
        if isinstance(err, ImportError_):
            raise
        first = (
            str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        )
        raise ImportError_(
            f"cannot read the model: {first}; pass an ONNX file written by an exporter."
        ) from None
    return model


def _check_source(model: onnx.ModelProto) -> tuple[str, tuple[int, ...]]:
    if (
        len(model.graph.input)
        - len(
            {i.name for i in model.graph.initializer}
            & {i.name for i in model.graph.input}
        )
        != 1
    ):
        raise ImportError_(
            "the model has more than one run-time input; export a model with one input of rows of features."
        )
    inp = next(
        i
        for i in model.graph.input
        if i.name not in {t.name for t in model.graph.initializer}
    )
    tt = inp.type.tensor_type
    if tt.elem_type not in _FLOAT_TYPES | {TensorProto.DOUBLE}:
        raise ImportError_(
            f"input '{inp.name}' is {TensorProto.DataType.Name(tt.elem_type)}, not float; import float models only."
        )
    if tt.elem_type == TensorProto.DOUBLE:
        raise ImportError_(
            f"input '{inp.name}' is float64; export the model in float32."
        )
    dims = tt.shape.dim
    if len(dims) < 2 or not all(
        d.HasField("dim_value") and d.dim_value > 0 for d in dims[1:]
    ):
        raise ImportError_(
            f"input '{inp.name}' must be rows of a fixed shape, [N, F] or [N, C, H, W]; export it with static dims but the batch."
        )
    for init in model.graph.initializer:
        if init.data_type in (TensorProto.DOUBLE, TensorProto.UINT16):
            raise ImportError_(
                f"initializer '{init.name}' is {TensorProto.DataType.Name(init.data_type)}; export weights in float32 or int64."
            )
    return inp.name, tuple(int(d.dim_value) for d in dims[1:])


def _output_of(model: onnx.ModelProto) -> tuple[str, str]:
    """The output the program computes: the label of a classifier, else the first tensor."""
    tensors = [
        o for o in model.graph.output if o.type.WhichOneof("value") == "tensor_type"
    ]
    if not tensors:
        raise ImportError_(
            "the model has no tensor output; export it with a label or value output."
        )
    for o in tensors:
        if o.type.tensor_type.elem_type in (TensorProto.INT64, TensorProto.INT32):
            return o.name, "label"
    return tensors[0].name, "value"


def _needed_nodes(model: onnx.ModelProto, output: str) -> list[onnx.NodeProto]:
    """The nodes the chosen output depends on, in graph order (probability tails drop out)."""
    producer = {
        o: i for i, node in enumerate(model.graph.node) for o in node.output if o
    }
    need, todo = set(), [output]
    while todo:
        name = todo.pop()
        i = producer.get(name)
        if i is None or i in need:
            continue
        need.add(i)
        todo.extend(x for x in model.graph.node[i].input if x)
    return [node for i, node in enumerate(model.graph.node) if i in need]


def import_model(
    source: Any,
    calibration: np.ndarray,
    *,
    batch: int = 32,
    max_elements: int | None = None,
) -> Imported:
    """Map a float model onto an exact integer inference graph, scales from `calibration`."""
    model = read_float_model(source)
    input_name, row_shape = _check_source(model)
    x = np.asarray(calibration, dtype=np.float32)
    if x.shape[1:] != row_shape or len(x) == 0:
        raise ImportError_(
            f"the calibration data has shape {list(x.shape)}; pass rows of shape {list(row_shape)}."
        )
    if not 1 <= batch <= 4096:
        raise ImportError_(
            f"batch {batch} is outside 1..4096; choose a batch size in that range."
        )
    out_name, task = _output_of(model)

    nodes = _needed_nodes(model, out_name)
    consts: dict[str, np.ndarray] = {
        t.name: numpy_helper.to_array(t) for t in model.graph.initializer
    }
    for node in nodes:
        if node.op_type == "Constant":
            if "value" not in _attrs(node):
                raise ImportError_(
                    f"node '{node.name or node.op_type}' (Constant) has no tensor value; export constants as tensors."
                )
            consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
    nodes = [n for n in nodes if n.op_type != "Constant"]
    nodes = _undo_dynamic_quantization(_fold_quantized_constants(nodes, consts), consts)
    for node in nodes:
        domain_ok = node.domain in ("", "ai.onnx", "ai.onnx.ml") or (
            node.domain == "com.microsoft" and node.op_type in MICROSOFT
        )
        if not domain_ok or node.op_type not in HANDLERS:
            raise ImportError_(
                f"node '{node.name or node.op_type}' ({node.op_type}) is not supported by the importer; "
                "export the model without it or open an issue naming the op."
            )
    names = [n for n in _tensor_outputs(model) if n not in consts]
    calib = _run_float(model, x, names) | {input_name: x}
    one = _run_float(model, x[:1], names) | {input_name: x[:1]}
    shapes: dict[str, tuple[int, ...]] = {}
    for n in [*names, input_name]:
        full, single = calib[n].shape, one[n].shape
        shapes[n] = tuple(
            batch if (a != b and a == len(x) and b == 1) else a
            for a, b in zip(full, single)
        )

    b = _Builder({}, calib, shapes)
    b.consts = consts
    b.users = {}  # type: ignore[attr-defined]
    for node in nodes:
        for i in node.input:
            b.users.setdefault(i, []).append(node)  # type: ignore[attr-defined]
    if len(row_shape) == 1:
        in_max = np.abs(x.astype(np.float64)).max(axis=0)
        in_scale = _scale_of(
            np.maximum(in_max * INPUT_HEADROOM, in_max.max() / INPUT_FLOOR), ACT_MAX
        )
    else:  # an image: one scale for every pixel and channel
        in_scale = _scale_of(
            np.abs(x.astype(np.float64)).max() * INPUT_HEADROOM, ACT_MAX
        )
    x64 = b.e.op("Cast", ["x"], "x64", to=_I64)
    b.put(input_name, QTensor(x64, (batch, *row_shape), in_scale, ACT_MAX))
    for node in nodes:
        if all(o in consts or o in b.env for o in node.output if o):
            continue
        if all(i in consts for i in node.input if i):
            # a constant subgraph (a reshaped bias, say): its value is what the float run gave
            for o in node.output:
                if o:
                    consts[o] = one[o]
            continue
        HANDLERS[node.op_type](b, node)
    out = b.env.get(out_name)
    if out is None:
        raise ImportError_(
            f"output '{out_name}' is not computed by a supported path; export the model with a plain label or value output."
        )
    output_scale = None
    if task == "value":
        if out.scale is None:
            task = "label"
        else:
            out = b.scalar_scale(out, out_name, model.graph.node[-1])
            output_scale = np.asarray(out.scale, dtype=np.float64)
    int_model = b.finish("x", out, batch, row_shape)
    if max_elements is not None:
        load_graph(int_model, max_elements=max_elements)
    else:
        load_graph(int_model)
    meta = {
        "source_sha256": hashlib.sha256(model.SerializeToString()).hexdigest(),
        "task": task,
        "batch": str(batch),
        "input_scales": json.dumps([float(s) for s in np.atleast_1d(in_scale)]),
        "input_shape": json.dumps(list(row_shape)),
        "output_scale": "" if output_scale is None else json.dumps(float(output_scale)),
        "rounding": ROUNDING,
        "calibration": f"max |v| over {len(x)} rows; activations to +-{ACT_MAX}, weights to +-{WEIGHT_MAX} per column",
        "scales": json.dumps(b.scales, sort_keys=True),
    }
    for k, v in meta.items():
        int_model.metadata_props.add(key=META_PREFIX + k, value=v)
    return Imported(
        int_model, in_scale, task, output_scale, batch, b.scales, b.mapped, b.int_shapes
    )


# ---------------------------------------------------------------- evaluation


def run_integer(
    imported: Imported, x: np.ndarray, extra: Sequence[str] = ()
) -> dict[str, np.ndarray]:
    """Run the integer graph on float rows (quantized with the import's scales), in batches."""
    model = imported.model
    if extra:
        model = onnx.ModelProto()
        model.CopyFrom(imported.model)
        for name in extra:
            model.graph.output.append(
                helper.make_tensor_value_info(
                    name, _I64, list(imported.int_shapes[name])
                )
            )
    graph = load_graph(model)
    q = quantize_rows(x, imported.input_scales)
    n, bsz = len(q), imported.batch
    pad = (-n) % bsz
    q = np.concatenate([q, np.zeros((pad, *q.shape[1:]), dtype=np.int32)])
    outs: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(q), bsz):
        res = graph.run({"x": q[start : start + bsz]})
        for k, v in res.items():
            outs.setdefault(k, []).append(v)
    return {k: np.concatenate(v)[:n] for k, v in outs.items()}


@dataclass
class Report:
    rows: int
    task: str
    float_metric: float | None
    int_metric: float | None
    metric: str
    agreement: float | None
    max_abs_error: float
    mean_abs_error: float
    layers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def loss(self) -> float | None:
        if self.float_metric is None or self.int_metric is None:
            return None
        return self.float_metric - self.int_metric

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "task": self.task,
            "metric": self.metric,
            "float": self.float_metric,
            "integer": self.int_metric,
            "loss": self.loss,
            "agreement": self.agreement,
            "max_abs_error": self.max_abs_error,
            "mean_abs_error": self.mean_abs_error,
            "layers": self.layers,
        }


def evaluate(
    source: Any, imported: Imported, x: np.ndarray, y: np.ndarray | None = None
) -> Report:
    """Float model vs integer graph on rows `x` (labels or targets `y` if given)."""
    model = read_float_model(source)
    out_name, _ = _output_of(model)
    computed = set(_tensor_outputs(model))
    layer_names = [n for n in imported.mapped if n in computed]
    float_out = _run_float(model, x, [out_name, *layer_names])
    inner = [imported.mapped[n] for n in layer_names]
    ints = run_integer(imported, x, inner)
    y_int = ints[imported.model.graph.output[0].name]
    layers = []
    for src, dst in zip(layer_names, inner):
        fv = float_out[src].astype(np.float64)
        iv = ints[dst].astype(np.float64) * np.asarray(
            imported.scales[src]
            if len(imported.scales[src]) > 1
            else imported.scales[src][0]
        )
        if fv.shape != iv.shape:
            continue
        span = float(np.max(np.abs(fv))) or 1.0
        err = np.abs(fv - iv)
        layers.append(
            {
                "tensor": src,
                "max_abs_error": float(err.max()),
                "relative": float(err.max()) / span,
            }
        )
    if imported.task == "label":
        f_lab = float_out[out_name].reshape(-1).astype(np.int64)
        i_lab = y_int.reshape(-1)
        agreement = float(np.mean(f_lab == i_lab))
        f_acc = i_acc = None
        if y is not None:
            yy = np.asarray(y).reshape(-1).astype(np.int64)
            f_acc, i_acc = (
                float(np.mean(f_lab == yy)) * 100,
                float(np.mean(i_lab == yy)) * 100,
            )
        logits = [r for r in layers]
        max_err = max((r["max_abs_error"] for r in logits), default=0.0)
        mean_err = (
            float(np.mean([r["max_abs_error"] for r in logits])) if logits else 0.0
        )
        return Report(
            len(x),
            "label",
            f_acc,
            i_acc,
            "accuracy %",
            agreement * 100,
            max_err,
            mean_err,
            layers,
        )
    fv = float_out[out_name].astype(np.float64).reshape(len(x), -1)
    iv = (y_int.astype(np.float64) * float(imported.output_scale)).reshape(len(x), -1)  # type: ignore[arg-type]
    err = np.abs(fv - iv)
    f_m = i_m = None
    if y is not None:
        yy = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
        f_m, i_m = _r2(yy, fv), _r2(yy, iv)
    return Report(
        len(x),
        "value",
        f_m,
        i_m,
        "R^2 x 100",
        None,
        float(err.max()),
        float(err.mean()),
        layers,
    )


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean(axis=0)) ** 2)) or 1.0
    return 100.0 * (1.0 - float(np.sum((y - p) ** 2)) / ss)


# ---------------------------------------------------------------- inference as a program


def inference_program(
    imported: Imported | onnx.ModelProto, rows: np.ndarray
) -> onnx.ModelProto:
    """A program whose step t runs batch t of `rows` (int32 [n, F], quantized) through the
    integer graph and writes its outputs into the state, which ends as every row's output."""
    model = imported.model if isinstance(imported, Imported) else imported
    meta = {p.key: p.value for p in model.metadata_props}
    bsz = (
        int(meta.get(META_PREFIX + "batch", "0"))
        or model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    )
    rows = np.asarray(rows)
    row_shape = tuple(
        d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]
    )
    if rows.dtype != np.int32 or rows.shape[1:] != row_shape or len(rows) == 0:
        raise ImportError_(
            f"rows are {rows.dtype} {list(rows.shape)}; the model takes int32 rows of shape {list(row_shape)}, "
            "quantized with the import's scales."
        )
    n = len(rows)
    steps = -(-n // bsz)
    n_pad = steps * bsz
    data = np.concatenate([rows, np.zeros((n_pad - n, *row_shape), dtype=np.int32)])
    out_vi = model.graph.output[0]
    out_dims = [d.dim_value for d in out_vi.type.tensor_type.shape.dim]
    per_row = out_dims[1:]
    state_shape = [n_pad, *per_row]

    e = _Emitter()
    rename = {model.graph.input[0].name: "batch_rows"}
    for init in model.graph.initializer:
        rename[init.name] = "m." + init.name
        t = onnx.TensorProto()
        t.CopyFrom(init)
        t.name = rename[init.name]
        e.consts.append(t)
    for node in model.graph.node:
        for o in node.output:
            rename[o] = "m." + o
    idx = e.op(
        "Add",
        [
            e.op("Mul", ["t", e.const(_i64(bsz), "b")]),
            e.const(np.arange(bsz, dtype=np.int64), "lanes"),
        ],
        "row_idx",
    )
    e.nodes.append(
        helper.make_node(
            "Gather", ["rows", idx], ["batch_rows"], name="batch_rows", axis=0
        )
    )
    for node in model.graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = "m." + (node.name or node.output[0])
        del copy.input[:]
        copy.input.extend(rename.get(i, i) if i else "" for i in node.input)
        del copy.output[:]
        copy.output.extend(rename[o] for o in node.output)
        e.nodes.append(copy)
    out = rename[out_vi.name]
    positions = np.arange(n_pad, dtype=np.int64)
    mine = e.op("Equal", [e.const(positions // bsz, "owner"), "t"], "in_batch")
    if per_row:
        mine = e.op(
            "Reshape", [mine, e.const(_i64([n_pad] + [1] * len(per_row)), "shape")]
        )
    picked = e.op("Gather", [out, e.const(positions % bsz, "lane")], "picked", axis=0)
    e.nodes.append(
        helper.make_node(
            "Where", [mine, picked, "outputs"], ["outputs_next"], name="outputs_next"
        )
    )
    inputs = [
        helper.make_tensor_value_info("t", _I64, []),
        helper.make_tensor_value_info("outputs", _I64, state_shape),
        helper.make_tensor_value_info("rows", TensorProto.INT32, [n_pad, *row_shape]),
    ]
    outputs = [helper.make_tensor_value_info("outputs_next", _I64, state_shape)]
    graph = helper.make_graph(
        e.nodes, "inference", inputs, outputs, initializer=e.consts
    )
    step = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    step.producer_name = PRODUCER
    for p in model.metadata_props:
        step.metadata_props.add(key=p.key, value=p.value)
    step.metadata_props.add(key=META_PREFIX + "rows", value=str(n))
    return make_program(
        step,
        steps=steps,
        state={"outputs": np.zeros(state_shape, dtype=np.int64)},
        data={"rows": data},
        step_input="t",
    )
