"""Fixed-point numbers of the importer (docs/SPEC.md 9.1): how a float tensor is carried as
an int64 tensor with a scale, the one rounding rule, and the builder that emits the integer
graph with worst-case bounds tracked, so that no op of it can wrap around on any input."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from verifier.core.errors import ProgramError

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
WEIGHT_MAX = 32_767  # weights are 16-bit, per output column (int8 lost a point on digits)
TABLE_HALF = 2_048  # Sigmoid/Tanh tables cover [-2048, 2048] input steps
EXP_STEP_BITS = 8  # Softmax: exp looked up at steps of 2^-8 of max(z) - z ...
EXP_REACH = 16  # ... over [0, 16] (exp(-16) * ACT_MAX rounds to 0)
EXACT_LIMIT = 2**53  # every value stays exactly representable in float64 (the fast paths' test)
MULT_BITS = 15  # requant multipliers have at most 15 significant bits
ROUNDING = "q_out = clip(trunc((q * M + sign(q * M) * 2^(k-1)) / 2^k), -L, L): half away from zero"

META_PREFIX = "bisectml.import."
I64 = TensorProto.INT64
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16}


class ImportRefused(ProgramError):
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


# ---------------------------------------------------------------- emitted graph


class Emitter:
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

    def op(self, op_type: str, inputs: Sequence[str], hint: str | None = None, **attrs: Any) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def i64(v: Any) -> np.ndarray:
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


def scale_of(max_abs: np.ndarray | float, limit: int) -> np.ndarray:
    m = np.asarray(max_abs, dtype=np.float64)
    return np.where(m > 0, m / limit, 1.0)


def channel_scales(max_abs: np.ndarray, limit: int) -> np.ndarray:
    """A scale per channel of weights; an all-zero channel takes the largest other one (any
    scale holds its zeros, and one of 1.0 would set the rescale's shift for every channel)."""
    m = np.asarray(max_abs, dtype=np.float64)
    return np.where(m > 0, m, np.max(m, initial=0.0) or float(limit)) / limit


def max_of(scale: np.ndarray | None) -> float:
    return float(np.max(np.abs(scale))) if scale is not None else 1.0


class Builder:
    """Walks the float graph in order and emits the integer graph."""

    def __init__(self, calib: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]], opset: int = OPSET):
        self.e = Emitter()
        self.opset = opset  # the source model's default-domain opset (attribute defaults differ by it)
        self.env: dict[str, QTensor] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.calib = calib
        self.shapes = shapes
        self.scales: dict[str, list[float]] = {}
        self.mapped: dict[str, str] = {}
        self.int_shapes: dict[str, tuple[int, ...]] = {}
        # a Softmax's logits standing in for its probabilities before an ArgMax
        self.standins: set[str] = set()
        # the boolean tensors a comparison emitted (what a Where may select by)
        self.conditions: set[str] = set()
        # emitted tensors never below 0 on any input (a Relu's, a pool of one): their rescale
        # needs no sign term
        self.nonneg: set[str] = set()
        # the nodes reading each tensor
        self.users: dict[str, list[onnx.NodeProto]] = {}

    # --- helpers

    def where(self, node: onnx.NodeProto) -> str:
        return f"node '{node.name or node.op_type}' ({node.op_type})"

    def refuse(self, node: onnx.NodeProto, why: str, fix: str) -> ImportRefused:
        return ImportRefused(f"{self.where(node)}: {why}; {fix}.")

    def calib_max(self, name: str, axis_last: bool = False) -> np.ndarray:
        v = np.abs(self.calib[name].astype(np.float64))
        if axis_last:
            return v.reshape(-1, v.shape[-1]).max(axis=0) if v.size else np.zeros(v.shape[-1])
        return np.asarray(v.max() if v.size else 0.0)

    def put(self, src: str, q: QTensor, track: bool = True) -> None:
        if q.bound >= EXACT_LIMIT:
            raise ImportRefused(
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
            node, f"input '{name}' is not a computed tensor the importer tracks", "export the model without it"
        )

    def const_of(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    def requant(
        self, q: QTensor, new_scale: np.ndarray, limit: int, node: onnx.NodeProto, lo: int | None = None
    ) -> QTensor:
        """q * old_scale / new_scale, rounded half away from zero, clipped to [lo, limit]
        (lo = -limit unless given: a quantized model's asymmetric range)."""
        old = np.asarray(q.scale, dtype=np.float64)
        ratio = old / np.asarray(new_scale, dtype=np.float64)
        top = float(np.max(np.abs(ratio)))
        k = 0 if top == 0 or top >= 2**MULT_BITS else max(0, MULT_BITS - 1 - math.floor(math.log2(top)))
        mult = round_half_away(ratio * 2.0**k)
        if mult.ndim and np.any(np.abs(mult[ratio != 0]) < 2 ** (MULT_BITS - 8)):
            # ratios that span more than one shift can carry (a channel whose weights are far
            # smaller than the others'): each element its own shift, else its multiplier keeps
            # under 7 bits or rounds to 0 (shifts stop at 50: below 2^-36 a ratio is noise)
            k = np.where(ratio != 0, MULT_BITS - 1 - np.floor(np.log2(np.abs(np.where(ratio != 0, ratio, 1.0)))), 0)
            k = np.clip(k, 0, 50).astype(np.int64)
            mult = round_half_away(ratio * 2.0**k)
        while np.max(k) > 0 and q.bound * int(np.max(np.abs(mult))) >= EXACT_LIMIT:
            k = np.maximum(k - 1, 0)
            mult = round_half_away(ratio * 2.0**k)
        if q.bound * int(np.max(np.abs(mult))) >= EXACT_LIMIT:
            raise self.refuse(
                node, "a rescaling would leave exact integers", "calibrate on data closer to its real range"
            )
        nonneg = q.name in self.nonneg and bool(np.all(mult >= 0))
        p = self.e.op("Mul", [q.name, self.e.const(mult, "mult")], "scaled")
        if np.max(k) > 0:
            # never negative: sign(p) is 1, or p is 0 and (0 + 2^(k-1)) / 2^k is 0 too
            sign = None if nonneg else self.e.op("Sign", [p])
            # 2^(k-1) where k > 0; a shift per element with k = 0 adds nothing and divides by 1
            half = self.e.const(i64(np.where(k > 0, 2 ** np.maximum(k - 1, 0), 0)), "half")
            if sign is not None:
                half = self.e.op("Mul", [sign, half])
            p = self.e.op("Div", [self.e.op("Add", [p, half]), self.e.const(i64(2**k), "pow2")], "rounded")
        out = self.e.op(
            "Clip", [p, self.e.const(i64(-limit if lo is None else lo)), self.e.const(i64(limit))], "requant"
        )
        if nonneg:
            self.nonneg.add(out)
        scale = np.asarray(new_scale, dtype=np.float64)
        reach = max(limit, abs(lo)) if lo is not None else limit
        return QTensor(out, q.shape, scale, min(reach, int(np.max(np.abs(mult))) * q.bound))

    def narrow(self, q: QTensor, src: str, node: onnx.NodeProto, limit: int = ACT_MAX) -> QTensor:
        """A tensor with a scalar scale and |q| <= limit (what a product or a table needs)."""
        if q.scale is None:
            raise self.refuse(node, "an integer index is used as a real value", "export the model without it")
        if q.scale.ndim == 0 and q.bound <= limit:
            return q
        if src in self.calib and np.issubdtype(self.calib[src].dtype, np.floating):
            return self.requant(q, self.act_scale(src, limit), limit, node)
        # an integer tensor of a quantized model: its own range, so nothing is clipped
        return self.requant(q, np.asarray(float(np.max(q.scale)) * q.bound / limit), limit, node)

    def act_scale(self, src: str, limit: int = ACT_MAX) -> np.ndarray:
        """The scale of an activation: its calibrated range, with headroom at 16 bits."""
        room = ACT_HEADROOM if limit == ACT_MAX else 1.0
        return scale_of(float(self.calib_max(src)) * room, limit)

    def scalar_scale(self, q: QTensor, src: str, node: onnx.NodeProto) -> QTensor:
        """Same values, one scale for every element (before an op that moves the last axis)."""
        if q.scale is None or q.scale.ndim == 0:
            return q
        return self.narrow(q, src, node, limit=ACT_MAX)

    # --- the emitted graph

    def finish(self, input_name: str, output: QTensor, batch: int, row_shape: tuple[int, ...]) -> onnx.ModelProto:
        inputs = [helper.make_tensor_value_info(input_name, TensorProto.INT32, [batch, *row_shape])]
        out = self.e.op("Identity", [output.name], "y")
        outputs = [helper.make_tensor_value_info(out, I64, list(output.shape))]
        graph = helper.make_graph(self.e.nodes, "imported", inputs, outputs, initializer=self.e.consts)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
        model.producer_name = PRODUCER
        return model
