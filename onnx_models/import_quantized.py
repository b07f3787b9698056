"""The ops of quantized models (docs/SPEC.md 9.1): onnxruntime's QDQ format (Quantize/
DequantizeLinear pairs), its QOperator format (QLinearConv, QLinearMatMul and the com.microsoft
QGemm, QLinearAdd, QLinearConcat, QLinearSigmoid, QLinearLeakyRelu, QLinearAveragePool,
QLinearGlobalAveragePool, QLinearSoftmax) and its dynamic quantization
(DynamicQuantizeLinear into MatMulInteger/ConvInteger), each mapped onto the same fixed-point
scheme as float ops: the weights dequantized, the activations held centered on their zero point
at the model's own scale."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import helper

from onnx_models.fixedpoint import ACT_MAX, Builder, ImportRefused, QTensor, i64
from onnx_models.import_ops import (
    _affine_const,
    _conv_acc,
    _h_global_avgpool,
    _h_leaky,
    _h_mul,
    _h_sigmoid,
    _h_softmax,
    _linear,
    _only_argmax,
    _product,
    _standin,
    attrs,
    window_mean,
)


def _qrange(zp: np.ndarray | None) -> tuple[int, int]:
    """The integer range of a quantized tensor, from its zero point's type (uint8 if none)."""
    if zp is not None and np.asarray(zp).dtype == np.int8:
        return -128, 127
    return 0, 255


def _qparams(b: Builder, node: onnx.NodeProto, scale_at: int, zp_at: int) -> tuple[np.ndarray, int, int, int]:
    """(scale, zero point, lo, hi) of a per-tensor quantization; lo/hi centered on zero."""
    scale = b.const_of(node.input[scale_at])
    zp = b.const_of(node.input[zp_at]) if len(node.input) > zp_at and node.input[zp_at] else None
    if scale is None or (len(node.input) > zp_at and node.input[zp_at] and zp is None):
        raise b.refuse(node, "its scale or zero point is not constant", "quantize with constant parameters")
    if np.asarray(scale).size != 1 or (zp is not None and np.asarray(zp).size != 1):
        raise b.refuse(node, "an activation is quantized per channel", "quantize activations per tensor")
    lo, hi = _qrange(zp)
    z = int(np.asarray(zp).reshape(-1)[0]) if zp is not None else 0
    return np.asarray(float(np.asarray(scale).reshape(-1)[0])), z, lo - z, hi - z


# where each op that writes a quantized tensor takes that tensor's scale and zero point
OUTPUT_QPARAMS = {
    "QuantizeLinear": (1, 2), "QLinearConv": (6, 7), "QLinearMatMul": (6, 7), "QGemm": (7, 8), "QLinearAdd": (6, 7),
    "QLinearMul": (6, 7), "QLinearConcat": (0, 1), "QLinearSigmoid": (3, 4), "QLinearLeakyRelu": (3, 4), "QLinearAveragePool": (3, 4),
    "QLinearGlobalAveragePool": (3, 4), "QLinearSoftmax": (3, 4),
}  # fmt: skip
# ops that only move or pick elements: their output has their input's quantization
_PASS_THROUGH = {"MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Slice"}


def _output_qparams(b: Builder, node: onnx.NodeProto) -> tuple[np.ndarray, int, int, int]:
    """(scale, zero point, lo, hi) of the quantized tensor `node` writes."""
    return _qparams(b, node, *OUTPUT_QPARAMS[node.op_type])


def _dequantized(
    b: Builder, node: onnx.NodeProto, value_at: int, scale_at: int, zp_at: int, axis: int = 0
) -> np.ndarray:
    """A quantized constant (weights) as the reals it stands for, per channel along `axis`."""
    q = b.const_of(node.input[value_at])
    scale = b.const_of(node.input[scale_at])
    zp = b.const_of(node.input[zp_at]) if len(node.input) > zp_at and node.input[zp_at] else np.zeros(1)
    if q is None or scale is None or zp is None:
        raise b.refuse(node, "its weights are not constant", "quantize with constant weights")
    return _dequantize_array(np.asarray(q), np.asarray(scale), np.asarray(zp), axis)


def _dequantize_array(q: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * q.ndim
    if scale.size > 1:
        shape[axis] = -1
    return (q.astype(np.float64) - zp.astype(np.float64).reshape(shape if zp.size > 1 else ())) * scale.astype(
        np.float64
    ).reshape(shape if scale.size > 1 else ())


def _h_quantize(b: Builder, node: onnx.NodeProto) -> None:
    """QuantizeLinear of an activation: its values on the model's 8-bit grid, held centered
    (q - zero point) at the model's scale; the rounding is half away from zero (ONNX: to even)."""
    if _standin(b, node):
        return
    scale, _, lo, hi = _output_qparams(b, node)
    q = b.get(node, node.input[0])
    if q.scale is None:
        raise b.refuse(node, "quantizes an integer index", "export the model without it")
    b.put(node.output[0], b.requant(q, scale, hi, node, lo=lo))


def _h_dequantize(b: Builder, node: onnx.NodeProto) -> None:
    if _standin(b, node):
        return
    q = b.get(node, node.input[0])
    scale, _, _, _ = _qparams(b, node, 1, 2)
    if q.scale is None or q.scale.ndim != 0 or not math.isclose(float(q.scale), float(scale), rel_tol=1e-6):
        raise b.refuse(
            node,
            "dequantizes with other parameters than its QuantizeLinear",
            "pair each QuantizeLinear with its DequantizeLinear",
        )
    b.put(node.output[0], q, track=False)


def _h_qlinear_conv(b: Builder, node: onnx.NodeProto) -> None:
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
    y_scale, _, lo, hi = _output_qparams(b, node)
    b.put(node.output[0], b.requant(acc, y_scale, hi, node, lo=lo))


def _h_qlinear_matmul(b: Builder, node: onnx.NodeProto) -> None:
    w = _dequantized(b, node, 3, 4, 5, axis=1)
    acc = _linear(b, node, node.input[0], w, None)
    y_scale, _, lo, hi = _output_qparams(b, node)
    b.put(node.output[0], b.requant(acc, y_scale, hi, node, lo=lo))


def _h_qgemm(b: Builder, node: onnx.NodeProto) -> None:
    """com.microsoft QGemm: A (quantized activation) x B (quantized weights) + C (int32)."""
    a = attrs(node)
    if a.get("transA", 0):
        raise b.refuse(node, "transA=1 is not supported", "quantize Gemm with the activation untransposed")
    trans_b = bool(a.get("transB", 0))
    w = _dequantized(b, node, 3, 4, 5, axis=0 if trans_b else 1)
    w = (w.T if trans_b else w) * float(a.get("alpha", 1.0))
    a_scale, _, _, _ = _qparams(b, node, 1, 2)
    bias = None
    if len(node.input) > 6 and node.input[6]:
        b_scale = np.asarray(b.const_of(node.input[4]), dtype=np.float64).reshape(-1)
        bias = np.asarray(b.const_of(node.input[6]), dtype=np.float64).reshape(-1) * float(a_scale) * b_scale
    acc = _linear(b, node, node.input[0], w, bias)
    if len(node.input) > 7 and node.input[7]:
        y_scale, _, lo, hi = _output_qparams(b, node)
        acc = b.requant(acc, y_scale, hi, node, lo=lo)
    b.put(node.output[0], acc)


def quantization_of(nodes: Sequence[onnx.NodeProto], consts: dict[str, np.ndarray]) -> dict[str, tuple[float, int]]:
    """(scale, zero point) of every per-tensor quantized activation of a model, so that its
    integers can be read as the reals they stand for; ops that only move or pick elements
    (a MaxPool, a Reshape) pass their input's on."""
    found: dict[str, tuple[float, int]] = {}
    for n in nodes:
        at = OUTPUT_QPARAMS.get(n.op_type)
        if at is not None and len(n.input) > at[0] and n.input[at[0]] in consts:
            scale = np.asarray(consts[n.input[at[0]]]).reshape(-1)
            zp = np.asarray(consts.get(n.input[at[1]], 0) if len(n.input) > at[1] else 0).reshape(-1)
            if scale.size == 1 and zp.size == 1 and n.output and n.output[0]:
                found[n.output[0]] = (float(scale[0]), int(zp[0]))
        elif n.domain in ("", "ai.onnx") and n.input and n.input[0] in found and n.op_type in _PASS_THROUGH:
            found[n.output[0]] = found[n.input[0]]
    return found



def _onto_output_grid(float_op: Callable[[Builder, onnx.NodeProto], None]) -> Callable[[Builder, onnx.NodeProto], None]:
    """com.microsoft QLinearSigmoid, QLinearLeakyRelu, QLinearAveragePool and
    QLinearGlobalAveragePool (X, X_scale, X_zp, Y_scale, Y_zp): the float op on the input as
    held, then onto the output's 8-bit grid."""

    def handler(b: Builder, node: onnx.NodeProto) -> None:
        if attrs(node).get("channels_last", 0):
            raise b.refuse(node, "channels_last=1 is not supported", "quantize the model with channels first")
        y_scale, _, lo, hi = _output_qparams(b, node)
        float_op(b, node)
        b.put(node.output[0], b.requant(b.env[node.output[0]], y_scale, hi, node, lo=lo))

    return handler


def _h_qlinear_softmax(b: Builder, node: onnx.NodeProto) -> None:
    """Before an ArgMax, the logits stand in (as for Softmax); else the Softmax is computed,
    then onto the output's grid."""
    if _only_argmax(b, node.output[0]):
        _h_softmax(b, node)
    else:
        _onto_output_grid(_h_softmax)(b, node)


def _h_qlinear_mul(b: Builder, node: onnx.NodeProto) -> None:
    """com.microsoft QLinearMul(A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp): a constant
    operand is the float Mul by its dequantized value; two activations multiply as held. Then
    onto C's grid."""
    y_scale, _, lo, hi = _output_qparams(b, node)
    for const_at, other_at in ((3, 0), (0, 3)):
        if b.const_of(node.input[const_at]) is not None:
            factor = node.output[0] + "/dequantized_factor"
            b.consts[factor] = _dequantized(b, node, const_at, const_at + 1, const_at + 2)
            _h_mul(b, helper.make_node("Mul", [node.input[other_at], factor], [node.output[0]], name=node.name))
            b.put(node.output[0], b.requant(b.env[node.output[0]], y_scale, hi, node, lo=lo))
            return
    a, c = b.get(node, node.input[0]), b.get(node, node.input[3])
    product = _product(b, node, a, node.input[0], c, node.input[3])
    b.put(node.output[0], b.requant(product, y_scale, hi, node, lo=lo))


def _window_mean_put(b: Builder, node: onnx.NodeProto) -> None:
    a = attrs(node)
    if a.get("ceil_mode", 0) and a.get("count_include_pad", 0):
        # measured: onnxruntime's kernel then divides a window that overhangs the input by
        # other than AveragePool's count, so neither model's numbers could be matched
        raise b.refuse(
            node,
            "onnxruntime's QLinearAveragePool counts a ceil_mode window's overhang unlike AveragePool",
            "quantize the model with ceil_mode=0 or count_include_pad=0",
        )
    b.put(node.output[0], window_mean(b, node), track=False)  # per position or not: one rescale follows


def _h_qlinear_concat(b: Builder, node: onnx.NodeProto) -> None:
    """com.microsoft QLinearConcat(Y_scale, Y_zp, X_0, X_0_scale, X_0_zp, ..): every operand
    onto the output's grid, then joined."""
    y_scale, _, lo, hi = _output_qparams(b, node)
    parts = [b.get(node, node.input[i]) for i in range(2, len(node.input), 3)]
    names = [b.requant(p, y_scale, hi, node, lo=lo).name for p in parts]
    out = b.e.op("Concat", names, axis=int(attrs(node)["axis"]))
    b.put(node.output[0], QTensor(out, tuple(b.shapes[node.output[0]]), y_scale, max(abs(lo), hi)))


def _h_qlinear_add(b: Builder, node: onnx.NodeProto) -> None:
    """com.microsoft QLinearAdd: both operands on the output's grid, added, clipped to it."""
    y_scale, _, lo, hi = _output_qparams(b, node)
    for const_at, other_at in ((3, 0), (0, 3)):
        if b.const_of(node.input[const_at]) is not None:  # a quantized bias
            c = _dequantized(b, node, const_at, const_at + 1, const_at + 2)
            summed = _affine_const(
                b, node, b.requant(b.get(node, node.input[other_at]), y_scale, ACT_MAX, node), c, +1, False
            )
            out = b.e.op("Clip", [summed.name, b.e.const(i64(lo)), b.e.const(i64(hi))], "qadd")
            b.put(node.output[0], QTensor(out, summed.shape, y_scale, max(abs(lo), hi)))
            return
    x, y = b.get(node, node.input[0]), b.get(node, node.input[3])
    if x.shape != y.shape:
        raise b.refuse(node, "the operands need broadcasting", "export operands of the same shape")
    xs, ys = b.requant(x, y_scale, ACT_MAX, node), b.requant(y, y_scale, ACT_MAX, node)
    total = b.e.op("Add", [xs.name, ys.name])
    out = b.e.op("Clip", [total, b.e.const(i64(lo)), b.e.const(i64(hi))], "qadd")
    b.put(node.output[0], QTensor(out, x.shape, y_scale, max(abs(lo), hi)))


def fold_quantized_constants(nodes: list[onnx.NodeProto], consts: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    """DequantizeLinear of constants (QDQ weights) becomes the float constant it stands for."""
    kept = []
    for node in nodes:
        if node.op_type == "DequantizeLinear" and all(i in consts for i in node.input if i):
            zp = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros(1)
            consts[node.output[0]] = _dequantize_array(
                np.asarray(consts[node.input[0]]),
                np.asarray(consts[node.input[1]]),
                np.asarray(zp),
                int(attrs(node).get("axis", 1)),
            )
            continue
        kept.append(node)
    return kept


def undo_dynamic_quantization(nodes: list[onnx.NodeProto], consts: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
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
        if dql is None or dql.op_type != "DynamicQuantizeLinear" or len(casts) != 1 or casts[0].op_type != "Cast":
            raise ImportRefused(
                f"{where}: integer arithmetic outside a known quantization pattern; import the float model instead."
            )
        muls = users.get(casts[0].output[0], [])
        if len(muls) != 1 or muls[0].op_type != "Mul":
            raise ImportRefused(f"{where}: its result is not rescaled by a Mul; import the float model instead.")
        mul = muls[0]
        factor = producer.get(next(i for i in mul.input if i != casts[0].output[0]))
        w_scale_names = [
            i for i in (factor.input if factor is not None and factor.op_type == "Mul" else []) if i != dql.output[1]
        ]
        if len(w_scale_names) != 1 or w_scale_names[0] not in consts or n.input[1] not in consts:
            raise ImportRefused(f"{where}: the weight scale is not a constant; import the float model instead.")
        wq = np.asarray(consts[n.input[1]])
        wzp = np.asarray(consts[n.input[3]]) if len(n.input) > 3 and n.input[3] in consts else np.zeros(1)
        w_scale = np.asarray(consts[w_scale_names[0]], dtype=np.float64)
        axis = 0 if n.op_type == "ConvInteger" else 1
        w_float = _dequantize_array(wq, w_scale.reshape(-1), wzp.reshape(-1), axis)
        name = n.output[0] + "/dequantized_weights"
        consts[name] = w_float
        op = "Conv" if n.op_type == "ConvInteger" else "MatMul"
        new = helper.make_node(op, [dql.input[0], name], [mul.output[0]], name=n.name or op)
        if op == "Conv":
            new.attribute.extend(n.attribute)
        replaced[id(n)] = new
        dropped.update({id(casts[0]), id(mul)})
        if factor is not None and all(id(u) in dropped or u is mul for u in users.get(factor.output[0], [])):
            dropped.add(id(factor))
    live = [replaced.get(id(n), n) for n in nodes if id(n) not in dropped]
    needed = {i for n in live for i in n.input}
    return [
        n
        for n in live
        if n.op_type != "DynamicQuantizeLinear" or n.output[0] in needed or any(o in needed for o in n.output)
    ]


QUANTIZED_HANDLERS: dict[str, Callable[[Builder, onnx.NodeProto], None]] = {
    "QuantizeLinear": _h_quantize,
    "DequantizeLinear": _h_dequantize,
    "QLinearConv": _h_qlinear_conv,
    "QLinearMatMul": _h_qlinear_matmul,
    "QGemm": _h_qgemm,
    "QLinearAdd": _h_qlinear_add,
    "QLinearSigmoid": _onto_output_grid(_h_sigmoid),
    "QLinearLeakyRelu": _onto_output_grid(_h_leaky),
    "QLinearAveragePool": _onto_output_grid(_window_mean_put),
    "QLinearGlobalAveragePool": _onto_output_grid(_h_global_avgpool),
    "QLinearConcat": _h_qlinear_concat,
    "QLinearSoftmax": _h_qlinear_softmax,
    "QLinearMul": _h_qlinear_mul,
}
# onnxruntime's contrib ops that its static quantization writes
MICROSOFT = {
    "QGemm", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearAveragePool", "QLinearGlobalAveragePool",
    "QLinearConcat", "QLinearSoftmax",
}  # fmt: skip
