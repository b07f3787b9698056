"""The float ops the importer maps (docs/SPEC.md 9.1), one handler each: dense layers, convs,
pooling, activations, shape ops, scikit-learn's ai.onnx.ml ops and the ops of quantized models
(QDQ, QOperator, dynamic). A handler reads the float node, emits integer ops through the
builder and records the result's integer tensor and scale under the node's output name."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from onnx_models.fixedpoint import (
    ACT_MAX,
    EXACT_LIMIT,
    EXP_REACH,
    EXP_STEP_BITS,
    FLOAT_TYPES,
    MULT_BITS,
    TABLE_HALF,
    WEIGHT_MAX,
    Builder,
    QTensor,
    channel_scales,
    i64,
    max_of,
    round_half_away,
    scale_of,
)

I64 = TensorProto.INT64

# ---------------------------------------------------------------- handlers


def attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def broadcasts(small: Sequence[int], big: Sequence[int]) -> bool:
    """Whether `small` broadcasts unidirectionally to `big` (numpy rules, right-aligned)."""
    return len(small) <= len(big) and all(a in (1, b) for a, b in zip(reversed(small), reversed(big)))


def _affine_const(b: Builder, node: onnx.NodeProto, q: QTensor, c: np.ndarray, sign: int, const_first: bool) -> QTensor:
    """q (+/-) c for a constant c: any shape that broadcasts to q's when q has one scale,
    else one that varies along q's last axis at most."""
    c = np.asarray(c, dtype=np.float64)
    if q.scale is not None and q.scale.ndim == 0 and broadcasts(c.shape, q.shape):
        qc = round_half_away(c / q.scale)
        args = [b.e.const(qc, "k"), q.name] if const_first and sign < 0 else [q.name, b.e.const(qc, "k")]
        name = b.e.op("Add" if sign > 0 else "Sub", args)
        return QTensor(name, q.shape, q.scale, q.bound + int(np.max(np.abs(qc), initial=0)))
    if c.size not in (1, q.shape[-1] if q.shape else 1) or (c.ndim > 1 and any(d != 1 for d in c.shape[:-1])):
        raise b.refuse(
            node, "a constant operand varies along more than the last axis", "fold it into the weights before export"
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
        scale = scale_of(np.abs(v).max(), ACT_MAX)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (w.shape[0],))
    qx = np.clip(round_half_away(v / scale), -ACT_MAX, ACT_MAX)
    folded = scale[:, None] * w
    col = scale_of(np.abs(folded).max(axis=0), WEIGHT_MAX)
    approx = (qx.astype(np.float64) @ round_half_away(folded / col).astype(np.float64)) * col
    return float(np.abs(approx - v @ w).max()) if len(v) else 0.0


def _linear(b: Builder, node: onnx.NodeProto, src: str, w: np.ndarray, bias: np.ndarray | None) -> QTensor:
    """x @ w (+ bias), w constant [K, H]: int8 weights per column, accumulate exactly in int64."""
    q = b.get(node, src)
    if q.scale is None:
        raise b.refuse(node, "an integer index is multiplied by weights", "export the model without it")
    w = np.asarray(w, dtype=np.float64)
    if q.bound > ACT_MAX or (
        q.scale.ndim == 1 and _fold_error(b.calib[src], q.scale, w) > _fold_error(b.calib[src], None, w)
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
    col_scale = channel_scales(np.abs(folded).max(axis=0), WEIGHT_MAX)
    qw = round_half_away(folded / col_scale)
    acc = b.e.op("MatMul", [q.name, b.e.const(qw, "w")], "acc")
    bound = q.bound * int(np.abs(qw).sum(axis=0).max())
    out = QTensor(acc, q.shape[:-1] + (w.shape[1],), col_scale, bound)
    if bias is not None:
        out = _affine_const(b, node, out, np.asarray(bias, dtype=np.float64).reshape(-1), +1, False)
    return out


def _h_alias(b: Builder, node: onnx.NodeProto) -> None:
    b.put(node.output[0], b.get(node, node.input[0]))


def _h_cast(b: Builder, node: onnx.NodeProto) -> None:
    to = attrs(node)["to"]
    q = b.get(node, node.input[0])
    if to in FLOAT_TYPES or to == TensorProto.DOUBLE or q.scale is None:
        b.put(node.output[0], q)
        return
    raise b.refuse(node, "a real value is cast to an integer type", "export the model without the cast")


def _h_matmul(b: Builder, node: onnx.NodeProto) -> None:
    w = b.const_of(node.input[1])
    if w is None or b.const_of(node.input[0]) is not None:
        raise b.refuse(
            node, "only a product of an activation by constant weights is supported", "make the weights an initializer"
        )
    b.put(node.output[0], _linear(b, node, node.input[0], w, None))


def _h_gemm(b: Builder, node: onnx.NodeProto) -> None:
    a = attrs(node)
    if a.get("transA", 0):
        raise b.refuse(node, "transA=1 is not supported", "export Gemm with the activation untransposed")
    w = b.const_of(node.input[1])
    if w is None:
        raise b.refuse(node, "the weights are not constant", "make the weights an initializer")
    w = np.asarray(w, dtype=np.float64)
    w = (w.T if a.get("transB", 0) else w) * float(a.get("alpha", 1.0))
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c = b.const_of(node.input[2])
        if c is None:
            raise b.refuse(node, "the bias is not constant", "make the bias an initializer")
        bias = np.broadcast_to(np.asarray(c, dtype=np.float64) * float(a.get("beta", 1.0)), (w.shape[1],))
    b.put(node.output[0], _linear(b, node, node.input[0], w, bias))


def _h_addsub(b: Builder, node: onnx.NodeProto) -> None:
    sign = 1 if node.op_type == "Add" else -1
    c0, c1 = b.const_of(node.input[0]), b.const_of(node.input[1])
    if c1 is not None:
        b.put(node.output[0], _affine_const(b, node, b.get(node, node.input[0]), c1, sign, False))
    elif c0 is not None:
        q = b.get(node, node.input[1])
        if sign > 0:
            b.put(node.output[0], _affine_const(b, node, q, c0, +1, False))
        else:
            b.put(node.output[0], _affine_const(b, node, q, c0, -1, True))
    else:
        # two activations (a residual, or a row's mean taken from it): bring both to the
        # output's scale, then add; one scale each, so broadcasting is the op's own
        x, y = b.get(node, node.input[0]), b.get(node, node.input[1])
        shape = tuple(b.shapes[node.output[0]])
        if x.scale is None or y.scale is None:
            raise b.refuse(node, "adds integer indices", "export the model without it")
        widest = max(node.input[0], node.input[1], node.output[0], key=lambda n: float(b.calib_max(n)))
        scale = b.act_scale(widest)
        xs = b.requant(x, scale, ACT_MAX, node)
        ys = b.requant(y, scale, ACT_MAX, node)
        out = b.e.op(node.op_type, [xs.name, ys.name])
        b.put(node.output[0], QTensor(out, shape, scale, 2 * ACT_MAX))


def _h_mul(b: Builder, node: onnx.NodeProto, divide: bool = False) -> None:
    c = b.const_of(node.input[1])
    src = node.input[0]
    if c is None and not divide and b.const_of(node.input[0]) is not None:
        c, src = b.const_of(node.input[0]), node.input[1]
    if c is None:
        if divide:
            raise b.refuse(node, "a quotient of two activations is not supported", "export the model with a constant divisor")
        x, y = b.get(node, node.input[0]), b.get(node, node.input[1])
        product = _product(b, node, x, node.input[0], y, node.input[1])
        b.put(node.output[0], b.requant(product, b.act_scale(node.output[0]), ACT_MAX, node))
        return
    c = np.asarray(c, dtype=np.float64)
    if divide:
        if np.any(c == 0):
            raise b.refuse(node, "division by a zero constant", "fix the model")
        c = 1.0 / c
    q = b.get(node, src)
    if q.scale is None:
        raise b.refuse(node, "scales an integer index", "export the model without it")
    if c.size not in (1, q.shape[-1]) or (c.ndim > 1 and any(d != 1 for d in c.shape[:-1])):
        if q.scale.ndim != 0 or not broadcasts(c.shape, q.shape):
            raise b.refuse(
                node, "a constant factor varies along more than the last axis", "fold it into the weights before export"
            )
        # a factor per channel (axis 1, say): one rescale with a multiplier per element of c
        old = QTensor(q.name, q.shape, np.asarray(q.scale) * c, q.bound)
        b.put(node.output[0], b.requant(old, b.act_scale(node.output[0]), ACT_MAX, node))
        return
    cv = c.reshape(-1) if c.size > 1 else c.reshape(())
    # v * c = q * (s * |c|) * sign(c): exact, the scale absorbs |c|
    sign = np.sign(cv).astype(np.int64)
    new_scale = np.where(cv != 0, np.asarray(q.scale) * np.abs(cv), np.asarray(q.scale))
    name = b.e.op("Mul", [q.name, b.e.const(sign, "sign")])
    b.put(node.output[0], QTensor(name, q.shape, new_scale, q.bound))


def _product(b: Builder, node: onnx.NodeProto, x: QTensor, x_src: str, y: QTensor, y_src: str) -> QTensor:
    """x * y of two activations (a gate, SiLU's x * sigmoid(x)): each at one scale within
    +-ACT_MAX, so the product is below 2^30 and exact; its scale is the two scales' product."""
    if x.scale is None or y.scale is None:
        raise b.refuse(node, "multiplies an integer index", "export the model without it")
    xs, ys = b.narrow(x, x_src, node), b.narrow(y, y_src, node)
    out = b.e.op("Mul", [xs.name, ys.name], "product")
    shape = tuple(b.shapes.get(node.output[0], np.broadcast_shapes(xs.shape, ys.shape)))
    return QTensor(out, shape, np.asarray(xs.scale) * np.asarray(ys.scale), xs.bound * ys.bound)


# x OP c for a constant c, on integers q with x = q * s: exact with these thresholds on c / s
_THRESHOLD = {"Greater": math.floor, "LessOrEqual": math.floor, "GreaterOrEqual": math.ceil, "Less": math.ceil}


def _h_compare(b: Builder, node: onnx.NodeProto) -> None:
    """Greater, GreaterOrEqual, Less, LessOrEqual: against a constant, the integers against
    c / s rounded so that the comparison is the float one's on every value the tensor can hold
    (q > floor(c / s) exactly when q * s > c); two activations compare at one scale."""
    c = b.const_of(node.input[1])
    if c is not None:
        q = b.scalar_scale(b.get(node, node.input[0]), node.input[0], node)
        if q.scale is None or np.asarray(c).size != 1:
            raise b.refuse(node, "compares an integer index or against a tensor", "compare an activation with one constant")
        threshold = _THRESHOLD[node.op_type](float(np.asarray(c).reshape(-1)[0]) / float(q.scale))
        args = [q.name, b.e.const(i64(max(-EXACT_LIMIT, min(EXACT_LIMIT, threshold))), "threshold")]
    else:
        x, y = b.get(node, node.input[0]), b.get(node, node.input[1])
        if x.scale is None or y.scale is None or b.const_of(node.input[0]) is not None:
            raise b.refuse(node, "compares an integer index or a constant with an activation", "compare an activation first")
        scale = b.act_scale(max(node.input[0], node.input[1], key=lambda n: float(b.calib_max(n))))
        args = [b.requant(x, scale, ACT_MAX, node).name, b.requant(y, scale, ACT_MAX, node).name]
    out = b.e.op(node.op_type, args, "compare")
    b.conditions.add(out)
    b.put(node.output[0], QTensor(out, tuple(b.shapes[node.output[0]]), None, 1), track=False)


def _h_where(b: Builder, node: onnx.NodeProto) -> None:
    """Where(condition, x, y) with a condition from a comparison: both branches (activations
    or constants) at the output's scale, then the choice."""
    cond = b.get(node, node.input[0])
    if cond.name not in b.conditions:
        raise b.refuse(node, "its condition is not a comparison of activations", "select by a Greater or Less of one")
    scale = b.act_scale(node.output[0])
    branches = []
    for name in node.input[1:]:
        c = b.const_of(name)
        if c is not None:
            branches.append(b.e.const(round_half_away(np.asarray(c, dtype=np.float64) / scale), "branch"))
        else:
            branches.append(b.requant(b.get(node, name), scale, ACT_MAX, node).name)
    out = b.e.op("Where", [cond.name, *branches], "where")
    b.put(node.output[0], QTensor(out, tuple(b.shapes[node.output[0]]), scale, ACT_MAX))


def _h_abs(b: Builder, node: onnx.NodeProto) -> None:
    q = b.get(node, node.input[0])
    if q.scale is None:
        raise b.refuse(node, "applied to an integer index", "export the model without it")
    b.put(node.output[0], QTensor(b.e.op("Abs", [q.name]), q.shape, q.scale, q.bound))


def _h_relu(b: Builder, node: onnx.NodeProto) -> None:
    q = b.get(node, node.input[0])
    out = b.e.op("Relu", [q.name])
    b.nonneg.add(out)
    b.put(node.output[0], QTensor(out, q.shape, q.scale, q.bound))


def _leaky(b: Builder, node: onnx.NodeProto, slope: np.ndarray) -> None:
    """x for x >= 0, slope * x below (a slope per channel as PRelu's may be): the negative side
    is the input rescaled by the slope, at the input's scale."""
    q = b.narrow(b.get(node, node.input[0]), node.input[0], node)
    if not broadcasts(slope.shape, q.shape):
        raise b.refuse(node, "the slope does not broadcast to the input", "export a slope per channel or one slope")
    reach = math.ceil(float(np.max(np.abs(slope), initial=0.0)) * q.bound)  # of the negative side
    with np.errstate(divide="ignore"):  # a zero slope: the rescale's ratio is 0
        scaled = b.requant(q, np.asarray(q.scale) / slope, max(ACT_MAX, reach), node)
    pos = b.e.op("GreaterOrEqual", [q.name, b.e.const(i64(0))])
    b.put(node.output[0], QTensor(b.e.op("Where", [pos, q.name, scaled.name]), q.shape, q.scale, max(q.bound, reach)))


def _h_leaky(b: Builder, node: onnx.NodeProto) -> None:
    _leaky(b, node, np.asarray(float(attrs(node).get("alpha", 0.01))))


def _h_prelu(b: Builder, node: onnx.NodeProto) -> None:
    slope = b.const_of(node.input[1])
    if slope is None:
        raise b.refuse(node, "the slope is not constant", "make the slope an initializer")
    _leaky(b, node, np.asarray(slope, dtype=np.float64))


def _h_clip(b: Builder, node: onnx.NodeProto) -> None:
    a = attrs(node)
    q = b.get(node, node.input[0])
    lo = a.get("min") if len(node.input) < 2 or not node.input[1] else b.const_of(node.input[1])
    hi = a.get("max") if len(node.input) < 3 or not node.input[2] else b.const_of(node.input[2])
    for name in node.input[1:]:
        if name and b.const_of(name) is None:
            raise b.refuse(node, "the bounds are not constant", "make them initializers")
    args = [q.name]
    for v in (lo, hi):
        args.append("" if v is None else b.e.const(round_half_away(np.asarray(v, dtype=np.float64) / q.scale), "bound"))
    while args[-1] == "":
        args.pop()
    b.put(node.output[0], QTensor(b.e.op("Clip", args), q.shape, q.scale, q.bound))


def _table(
    b: Builder, node: onnx.NodeProto, fn: Callable[[np.ndarray], np.ndarray], lo_out: float, span: float = 1.0
) -> QTensor:
    """fn of the node's input (a function with values in [lo_out * span, span] that is flat
    beyond +-8) from a table over 2 * TABLE_HALF + 1 input steps, at scale span / ACT_MAX."""
    src = node.input[0]
    q = b.get(node, src)
    # inputs beyond +-8 are saturated for every tabled function; cover at least that far
    reach = max(float(b.calib_max(src)), 8.0)
    in_scale = np.asarray(reach / TABLE_HALF)
    qi = b.requant(q, in_scale, TABLE_HALF, node) if q.scale is not None else None
    if qi is None:
        raise b.refuse(node, "applied to an integer index", "export the model without it")
    out_scale = np.asarray(span / ACT_MAX)
    grid = np.arange(-TABLE_HALF, TABLE_HALF + 1, dtype=np.float64) * float(in_scale)
    table = np.clip(round_half_away(fn(grid) / out_scale), int(lo_out * ACT_MAX), ACT_MAX)
    idx = b.e.op("Add", [qi.name, b.e.const(i64(TABLE_HALF))])
    out = b.e.op("Gather", [b.e.const(table, "table"), idx], axis=0)
    if lo_out >= 0:
        b.nonneg.add(out)
    return QTensor(out, q.shape, out_scale, ACT_MAX)


_erf = np.frompyfunc(math.erf, 1, 1)


def _phi(x: np.ndarray) -> np.ndarray:
    """The standard normal's CDF: GELU(x) = x * phi(x)."""
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def _tabled(fn: Callable[[np.ndarray], np.ndarray], lo_out: float) -> Callable[[Builder, onnx.NodeProto], None]:
    def handler(b: Builder, node: onnx.NodeProto) -> None:
        # a QLinear op's output is rescaled onto its grid next: its table's scale is not recorded
        b.put(node.output[0], _table(b, node, fn, lo_out), track=not node.op_type.startswith("QLinear"))

    return handler


_h_sigmoid = _tabled(lambda x: 1.0 / (1.0 + np.exp(-x)), 0.0)
_h_tanh = _tabled(np.tanh, -1.0)
_h_erf = _tabled(lambda x: _erf(x).astype(np.float64), -1.0)


def _h_hardsigmoid(b: Builder, node: onnx.NodeProto) -> None:
    a = attrs(node)
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    b.put(node.output[0], _table(b, node, lambda x: np.clip(alpha * x + beta, 0.0, 1.0), 0.0))


def _gated(gate: Callable[[Builder, onnx.NodeProto], Callable[[np.ndarray], np.ndarray]]) -> Callable[[Builder, onnx.NodeProto], None]:
    """x * g(x) for a gate g with values in [0, 1] (HardSwish, Gelu): the gate from a table,
    then the product of two activations."""

    def handler(b: Builder, node: onnx.NodeProto) -> None:
        g = _table(b, node, gate(b, node), 0.0)
        product = _product(b, node, b.get(node, node.input[0]), node.input[0], g, node.output[0])
        b.put(node.output[0], b.requant(product, b.act_scale(node.output[0]), ACT_MAX, node))

    return handler


def _gelu_gate(b: Builder, node: onnx.NodeProto) -> Callable[[np.ndarray], np.ndarray]:
    if attrs(node).get("approximate", b"none") in (b"tanh", "tanh"):
        return lambda x: 0.5 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return _phi


ReluPlus = Callable[[Builder, onnx.NodeProto], tuple[float, Callable[[np.ndarray], np.ndarray], float]]


def _relu_plus(tail: ReluPlus, lo_out: float) -> Callable[[Builder, onnx.NodeProto], None]:
    """g * relu(x) + t(x) for a tail t with values in [lo_out * span, span] (ELU's and CELU's
    alpha * (exp(x) - 1) for x < 0, SELU's the same times gamma, Softplus's log(1 + exp(-|x|))):
    both terms brought to the output's scale, added. `tail` gives (g, t, span)."""

    def handler(b: Builder, node: onnx.NodeProto) -> None:
        q = b.get(node, node.input[0])
        if q.scale is None:
            raise b.refuse(node, "applied to an integer index", "export the model without it")
        gain, fn, span = tail(b, node)
        t = _table(b, node, fn, lo_out, span)
        scale = b.act_scale(node.output[0])
        relu = QTensor(b.e.op("Relu", [q.name]), q.shape, np.asarray(q.scale) * gain, q.bound)
        pos = b.requant(relu, scale, ACT_MAX, node)
        out = b.e.op("Add", [pos.name, b.requant(t, scale, ACT_MAX, node).name])
        b.put(node.output[0], QTensor(out, q.shape, scale, 2 * ACT_MAX))

    return handler


def _elu_tail(b: Builder, node: onnx.NodeProto) -> tuple[float, Callable[[np.ndarray], np.ndarray], float]:
    a = attrs(node)
    default = {"Selu": 1.67326319217681884765625}.get(node.op_type, 1.0)
    alpha = float(a.get("alpha", default))
    gamma = float(a.get("gamma", 1.0507009873554804934193349852946)) if node.op_type == "Selu" else 1.0
    if alpha < 0 or (node.op_type == "Celu" and alpha == 0):
        raise b.refuse(node, f"alpha {alpha} is out of range", "export the model with a positive alpha")
    width = alpha if node.op_type == "Celu" else 1.0  # CELU: alpha * (exp(x / alpha) - 1)
    span = max(gamma * alpha, 1e-9)
    return gamma, lambda x: gamma * alpha * np.expm1(np.minimum(x, 0.0) / width), span


def _softplus_tail(b: Builder, node: onnx.NodeProto) -> tuple[float, Callable[[np.ndarray], np.ndarray], float]:
    return 1.0, lambda x: np.log1p(np.exp(-np.abs(x))), 1.0


_h_elu = _relu_plus(_elu_tail, -1.0)  # Elu, Selu and Celu
_h_softplus = _relu_plus(_softplus_tail, 0.0)
_h_mish = _gated(lambda b, node: lambda x: np.tanh(np.logaddexp(0.0, x)))
_h_hardswish = _gated(lambda b, node: lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0))
_h_gelu = _gated(_gelu_gate)


def _h_argmax(b: Builder, node: onnx.NodeProto) -> None:
    a = attrs(node)
    q = b.get(node, node.input[0])
    axis = int(a.get("axis", 0)) % len(q.shape)
    if q.scale is not None and q.scale.ndim == 1 and axis == len(q.shape) - 1:
        # compare in one unit: bring every column to the finest column scale
        finest = np.asarray(float(np.min(q.scale)))
        q = b.requant(
            q,
            finest,
            min(EXACT_LIMIT // 2**MULT_BITS - 1, q.bound * int(math.ceil(max_of(q.scale) / float(finest))) + 1),
            node,
        )
    keep = int(a.get("keepdims", 1))
    out = b.e.op("ArgMax", [q.name], axis=axis, keepdims=keep, select_last_index=int(a.get("select_last_index", 0)))
    shape = list(q.shape)
    if keep:
        shape[axis] = 1
    else:
        shape.pop(axis)
    b.put(node.output[0], QTensor(out, tuple(shape), None, max(q.shape)))


# ops that keep the order of values: between a Softmax and an ArgMax they change nothing
MONOTONE = {"Identity", "QuantizeLinear", "DequantizeLinear"}


def _h_softmax(b: Builder, node: onnx.NodeProto) -> None:
    """Softmax (or QLinearSoftmax) is monotone along its axis: before an ArgMax over that
    axis, through order-keeping ops only, the logits stand in for the probabilities."""
    if _only_argmax(b, node.output[0]):
        b.put(node.output[0], b.get(node, node.input[0]), track=False)
        b.standins.add(node.output[0])
        return
    q, _, e, total, _ = _exp_terms(b, node)
    twice = b.e.op("Add", [b.e.op("Mul", [e, b.e.const(i64(2 * ACT_MAX))]), total])
    p = b.e.op("Div", [twice, b.e.op("Mul", [total, b.e.const(i64(2))])], "softmax")
    b.put(node.output[0], QTensor(p, q.shape, np.asarray(1.0 / ACT_MAX), ACT_MAX))


def _h_log_softmax(b: Builder, node: onnx.NodeProto) -> None:
    """LogSoftmax: a stand-in before an ArgMax, as Softmax; else z - max - log(sum exp(z - max)),
    the log from a table over the sum (one value per row, so its rounding never reorders a row)."""
    if _only_argmax(b, node.output[0]):
        _h_softmax(b, node)
        return
    q, gap, _, total, axis = _exp_terms(b, node)
    n, row = q.shape[axis], tuple(1 if i == axis else d for i, d in enumerate(q.shape))
    # sum exp(z - max) = total / ACT_MAX in [1, n]: its log from a table over u = that - 1
    u = QTensor(b.e.op("Sub", [total, b.e.const(i64(ACT_MAX))]), row, np.asarray(1.0 / ACT_MAX), (n - 1) * ACT_MAX)
    steps = 2 * TABLE_HALF
    index = b.requant(u, np.asarray(max(n - 1, 1) / steps), steps, node, lo=0)
    span = max(math.log(n), 1.0 / ACT_MAX)
    table = round_half_away(np.log1p(np.arange(steps + 1) * max(n - 1, 1) / steps) * ACT_MAX / span)
    log_sum = QTensor(b.e.op("Gather", [b.e.const(table, "log_table"), index.name], axis=0), row, np.asarray(span / ACT_MAX), ACT_MAX)
    scale = b.act_scale(node.output[0])
    both = b.e.op("Add", [b.requant(gap, scale, ACT_MAX, node).name, b.requant(log_sum, scale, ACT_MAX, node).name])
    b.put(node.output[0], QTensor(b.e.op("Neg", [both], "log_softmax"), q.shape, scale, 2 * ACT_MAX))


def _exp_terms(b: Builder, node: onnx.NodeProto) -> tuple[QTensor, QTensor, str, str, int]:
    """The input q, gap = max - q >= 0, e = exp(-gap) from a table at scale 1 / ACT_MAX,
    total = sum(e) along the op's axis (kept), and the axis."""
    q = b.scalar_scale(b.get(node, node.input[0]), node.input[0], node)
    if q.scale is None:
        raise b.refuse(node, "applied to an integer index", "export the model without it")
    rank = len(q.shape)
    opset = int(attrs(node).get("opset", b.opset))  # QLinearSoftmax names the Softmax it stands for
    axis = int(attrs(node).get("axis", -1 if opset >= 13 else 1)) % rank
    if axis == 0:
        raise b.refuse(node, f"{node.op_type} over the batch dimension", "export it over an axis within each row")
    if axis != rank - 1 and opset < 13:
        # before opset 13 a Softmax is over every axis from `axis` on, as one
        raise b.refuse(node, f"an opset-12 {node.op_type} over more than the last axis", "export it with opset 13 or later")
    # exp(-(max - z)) from a table at steps of 2^-EXP_STEP_BITS over [0, EXP_REACH]; the
    # probabilities are e * ACT_MAX / sum(e), rounded half up (every term is non-negative)
    axes = b.e.const(i64([axis]), "axes")
    top = b.e.op("ReduceMax", [q.name, axes], "softmax_max", keepdims=1)
    gap = QTensor(b.e.op("Sub", [top, q.name], "softmax_gap"), q.shape, q.scale, 2 * q.bound)
    b.nonneg.add(gap.name)  # the row's maximum less each of its elements
    steps = EXP_REACH << EXP_STEP_BITS
    index = b.requant(gap, np.asarray(2.0**-EXP_STEP_BITS), steps, node, lo=0)
    grid = np.arange(steps + 1, dtype=np.float64) / 2**EXP_STEP_BITS
    table = round_half_away(np.exp(-grid) * ACT_MAX)
    e = b.e.op("Gather", [b.e.const(table, "exp_table"), index.name], "softmax_exp", axis=0)
    total = b.e.op("ReduceSum", [e, axes], "softmax_sum", keepdims=1)  # >= ACT_MAX: the max's own entry
    return q, gap, e, total, axis


def _only_argmax(b: Builder, name: str) -> bool:
    users = [u for u in b.users.get(name, []) if u.op_type not in SKIPPED]
    return bool(users) and all(
        u.op_type == "ArgMax" or (u.op_type in MONOTONE and _only_argmax(b, u.output[0])) for u in users
    )


def _standin(b: Builder, node: onnx.NodeProto) -> bool:
    """Pass a Softmax's stand-in through an order-keeping op unchanged."""
    if node.input[0] not in b.standins:
        return False
    b.put(node.output[0], b.env[node.input[0]], track=False)
    b.standins.add(node.output[0])
    return True


def _h_shape_op(b: Builder, node: onnx.NodeProto) -> None:
    q = b.get(node, node.input[0])
    out_shape = b.shapes.get(node.output[0])
    if out_shape is None:
        raise b.refuse(node, "its output shape is unknown", "export with static shapes")
    last_kept = bool(out_shape) and bool(q.shape) and out_shape[-1] == q.shape[-1]
    if node.op_type == "Transpose":
        perm = list(attrs(node).get("perm", reversed(range(len(q.shape)))))
        last_kept = perm[-1] == len(q.shape) - 1
    if q.scale is not None and q.scale.ndim == 1 and not last_kept:
        q = b.scalar_scale(q, node.input[0], node)
    if node.op_type == "Transpose":
        name = b.e.op("Transpose", [q.name], perm=perm)
    else:
        name = b.e.op("Reshape", [q.name, b.e.const(i64(out_shape), "shape")])
    if q.name in b.nonneg:
        b.nonneg.add(name)
    b.put(node.output[0], QTensor(name, tuple(out_shape), q.scale, q.bound))


def _h_concat(b: Builder, node: onnx.NodeProto) -> None:
    axis = int(attrs(node)["axis"])
    parts = [b.get(node, n) for n in node.input]
    out_shape = b.shapes[node.output[0]]
    if all(p.scale is None for p in parts):
        name = b.e.op("Concat", [p.name for p in parts], axis=axis)
        b.put(node.output[0], QTensor(name, tuple(out_shape), None, max(p.bound for p in parts)))
        return
    if any(p.scale is None for p in parts):
        raise b.refuse(node, "joins integer indices with real values", "export the model without it")
    scale = b.act_scale(node.output[0])
    names = [b.requant(p, scale, ACT_MAX, node).name for p in parts]
    b.put(node.output[0], QTensor(b.e.op("Concat", names, axis=axis), tuple(out_shape), scale, ACT_MAX))


def _h_scaler(b: Builder, node: onnx.NodeProto) -> None:
    a = attrs(node)
    q = b.get(node, node.input[0])
    f = q.shape[-1]
    offset = np.broadcast_to(np.asarray(a.get("offset", [0.0]), dtype=np.float64), (f,))
    scale = np.broadcast_to(np.asarray(a.get("scale", [1.0]), dtype=np.float64), (f,))
    # (v - offset) * scale with v = q * s: the new scale is s * |scale|, exact
    s = np.broadcast_to(np.asarray(q.scale, dtype=np.float64), (f,))
    new_scale = np.where(scale != 0, s * np.abs(scale), s)
    flipped = b.e.op("Mul", [q.name, b.e.const(np.sign(scale).astype(np.int64), "sign")])
    shift = round_half_away(-offset * scale / new_scale)
    name = b.e.op("Add", [flipped, b.e.const(shift, "offset")])
    b.put(node.output[0], QTensor(name, q.shape, new_scale, q.bound + int(np.max(np.abs(shift)))))


def _classes(b: Builder, node: onnx.NodeProto) -> np.ndarray:
    a = attrs(node)
    if "classlabels_ints" not in a:
        raise b.refuse(node, "string class labels", "train on integer class labels")
    return i64(a["classlabels_ints"])


def _h_linear_classifier(b: Builder, node: onnx.NodeProto) -> None:
    a = attrs(node)
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
    if attrs(node).get("post_transform", b"NONE") in (b"NONE", "NONE"):
        b.put(node.output[1], scores)
    fake = helper.make_node("ArgMax", [raw], [node.output[0] + "#idx"], axis=1, keepdims=0)
    _h_argmax(b, fake)
    idx = b.env[node.output[0] + "#idx"]
    label = b.e.op("Gather", [b.e.const(classes, "classes"), idx.name], axis=0)
    b.put(node.output[0], QTensor(label, idx.shape, None, int(np.max(np.abs(classes)))))


def _h_linear_regressor(b: Builder, node: onnx.NodeProto) -> None:
    a = attrs(node)
    if a.get("post_transform", b"NONE") not in (b"NONE", "NONE"):
        raise b.refuse(node, "a post transform", "export the regressor without one")
    q = b.get(node, node.input[0])
    coef = np.asarray(a["coefficients"], dtype=np.float64).reshape(-1, q.shape[-1])
    icpt = np.asarray(a.get("intercepts", [0.0] * coef.shape[0]), dtype=np.float64)
    b.put(node.output[0], _linear(b, node, node.input[0], coef.T, icpt))


def _h_feature_extractor(b: Builder, node: onnx.NodeProto) -> None:
    table = b.const_of(node.input[0])
    idx = b.get(node, node.input[1])
    if table is None or np.asarray(table).ndim != 1 or idx.scale is not None:
        raise b.refuse(
            node, "only a lookup of class labels by an index is supported", "export class labels as a constant"
        )
    t = np.asarray(table)
    if not np.all(t == np.round(t)):
        raise b.refuse(node, "class labels are not integers", "train on integer class labels")
    name = b.e.op("Gather", [b.e.const(i64(t), "classes"), idx.name], axis=0)
    out_shape = b.shapes.get(node.output[0], idx.shape)
    if tuple(out_shape) != idx.shape:
        name = b.e.op("Reshape", [name, b.e.const(i64(out_shape), "shape")])
    b.put(node.output[0], QTensor(name, tuple(out_shape), None, int(np.max(np.abs(t)))))


def _bn_params(b: Builder, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
    """BatchNormalization as y = x * a + c per channel, if all its parameters are constant."""
    params = [b.const_of(n) for n in node.input[1:5]]
    if any(p is None for p in params):
        return None
    gamma, beta, mean, var = (np.asarray(p, dtype=np.float64) for p in params)
    a = gamma / np.sqrt(var + float(attrs(node).get("epsilon", 1e-5)))
    return a, beta - mean * a


def _spatialattrs(node: onnx.NodeProto, rank: int) -> dict[str, Any]:
    a = attrs(node)
    keep = {k: a[k] for k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides") if k in a}
    if isinstance(keep.get("auto_pad"), bytes):
        keep["auto_pad"] = keep["auto_pad"].decode()
    return keep


def _conv_acc(
    b: Builder, node: onnx.NodeProto, src: str, w: np.ndarray, bias: np.ndarray, shape: Sequence[int]
) -> QTensor:
    """x * w + bias in exact integers: int8 activations and int8 weights per output channel
    into ConvInteger, the bias added in int64; the result has one scale per channel."""
    q = b.get(node, src)
    if q.scale is None:
        raise b.refuse(node, "convolves integer indices", "export the model without it")
    x8 = b.narrow(q, src, node, limit=127)
    xi = b.e.op("Cast", [x8.name], "x_i8", to=TensorProto.INT8)
    folded_w = float(x8.scale) * w
    chan = channel_scales(np.abs(folded_w).reshape(w.shape[0], -1).max(axis=1), 127)
    qw = round_half_away(folded_w / chan.reshape((-1,) + (1,) * (w.ndim - 1)))
    acc = b.e.op("ConvInteger", [xi, b.e.const(qw.astype(np.int8), "w_i8")], "conv", **_spatialattrs(node, w.ndim - 2))
    wide = b.e.op("Cast", [acc], "conv64", to=I64)
    axis_shape = (-1,) + (1,) * (w.ndim - 2)
    qb = round_half_away(bias / chan).reshape(axis_shape)
    summed = b.e.op("Add", [wide, b.e.const(qb, "bias")])
    bound = x8.bound * int(np.abs(qw).reshape(w.shape[0], -1).sum(axis=1).max()) + int(np.abs(qb).max())
    return QTensor(summed, tuple(shape), chan.reshape(axis_shape), bound)


def _h_conv(b: Builder, node: onnx.NodeProto) -> None:
    """Conv with constant weights, then one rescale back to a 16-bit activation. A
    BatchNormalization that alone reads the output is folded into the weights."""
    w = b.const_of(node.input[1])
    if w is None:
        raise b.refuse(node, "the weights are not constant", "make the weights an initializer")
    w = np.asarray(w, dtype=np.float64)
    bias = np.zeros(w.shape[0]) if len(node.input) < 3 or not node.input[2] else b.const_of(node.input[2])
    if bias is None:
        raise b.refuse(node, "the bias is not constant", "make the bias an initializer")
    bias = np.asarray(bias, dtype=np.float64).reshape(-1)
    out_name = node.output[0]
    users = b.users.get(out_name, [])
    if len(users) == 1 and users[0].op_type == "BatchNormalization" and (folded := _bn_params(b, users[0])) is not None:
        a, c = folded
        w = w * a.reshape((-1,) + (1,) * (w.ndim - 1))
        bias = bias * a + c
        out_name = users[0].output[0]
    acc = _conv_acc(b, node, node.input[0], w, bias, b.shapes[out_name])
    b.put(out_name, b.requant(acc, b.act_scale(out_name), ACT_MAX, node))


def _h_batchnorm(b: Builder, node: onnx.NodeProto) -> None:
    """y = x * a + c per channel (axis 1): one rescale with a per-channel multiplier."""
    if node.output[0] in b.env:  # folded into the Conv before it
        return
    q = b.get(node, node.input[0])
    folded = _bn_params(b, node)
    if folded is None or q.scale is None or len(q.shape) < 2:
        raise b.refuse(node, "its parameters are not constant", "make them initializers")
    a, c = folded
    axis_shape = (-1,) + (1,) * (len(q.shape) - 2)
    scale = b.act_scale(node.output[0])
    old = QTensor(q.name, q.shape, np.asarray(q.scale) * a.reshape(axis_shape), q.bound)
    scaled = b.requant(old, scale, ACT_MAX, node)
    shift = round_half_away(c / scale).reshape(axis_shape)
    name = b.e.op("Add", [scaled.name, b.e.const(shift, "shift")])
    b.put(node.output[0], QTensor(name, q.shape, scale, ACT_MAX + int(np.abs(shift).max())))


def _pool_geometry(b: Builder, node: onnx.NodeProto, q: QTensor) -> dict[str, list[int]]:
    """A pool's kernel, strides and dilations, and the padding before and after each spatial
    axis that lets every window of the output (shaped as the float run shaped it, so ceil_mode
    and auto_pad are onnxruntime's) be read from a padded copy."""
    a = attrs(node)
    kernel = [int(k) for k in a["kernel_shape"]]
    n = len(kernel)
    strides = [int(s) for s in a.get("strides", [1] * n)]
    dilations = [int(d) for d in a.get("dilations", [1] * n)]
    size, out = q.shape[-n:], b.shapes[node.output[0]][-n:]
    reach = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(out, strides, kernel, dilations)]
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "NOTSET":
        before = [int(p) for p in a.get("pads", [0] * 2 * n)[:n]]
    elif auto == "VALID":
        before = [0] * n
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [max(0, r - i) for r, i in zip(reach, size)]
        before = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
    else:
        raise b.refuse(node, f"auto_pad {auto} is not an ONNX value", "export the pool with explicit pads")
    if int(np.prod(kernel)) > 255:
        raise b.refuse(node, "the window has more than 255 elements", "use a smaller window")
    after = [max(0, r - i - p) for r, i, p in zip(reach, size, before)]
    return {"kernel": kernel, "strides": strides, "dilations": dilations, "before": before, "after": after}


def _real_counts(geo: dict[str, list[int]], size: Sequence[int], out: Sequence[int]) -> np.ndarray:
    """How many elements of the unpadded input each output position's window reads."""
    per_axis = [
        [sum(0 <= o * s - p + j * d < i for j in range(k)) for o in range(n_out)]
        for i, n_out, s, p, k, d in zip(size, out, geo["strides"], geo["before"], geo["kernel"], geo["dilations"])
    ]
    return functools.reduce(np.multiply.outer, [np.asarray(c, dtype=np.int64) for c in per_axis])


def _padded(
    b: Builder, src: str, shape: Sequence[int], axes: Sequence[int], before: Sequence[int], after: Sequence[int], value: int
) -> tuple[str, tuple[int, ...]]:
    """`src` with `before[i]` and `after[i]` elements of `value` around axis `axes[i]`: one
    Concat with constant borders per padded axis."""
    shape = list(shape)
    for ax, lo, hi in zip(axes, before, after):
        if lo or hi:
            borders = {w: b.e.const(np.full([*shape[:ax], w, *shape[ax + 1 :]], value, np.int64), "pad") for w in {lo, hi} - {0}}
            parts = ([borders[lo]] if lo else []) + [src] + ([borders[hi]] if hi else [])
            src = b.e.op("Concat", parts, "padded", axis=ax)
            shape[ax] += lo + hi
    return src, tuple(shape)


def _h_pad(b: Builder, node: onnx.NodeProto) -> None:
    """Pad in constant mode (the value at the input's scale, rounded): Concat with borders."""
    mode = attrs(node).get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise b.refuse(node, f"mode {mode!r} is not supported", "pad with a constant (mode='constant')")
    q = b.scalar_scale(b.get(node, node.input[0]), node.input[0], node)
    pads = b.const_of(node.input[1]) if len(node.input) > 1 and node.input[1] else attrs(node).get("pads")
    value = b.const_of(node.input[2]) if len(node.input) > 2 and node.input[2] else attrs(node).get("value", 0.0)
    axes_given = b.const_of(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if pads is None or value is None or (len(node.input) > 3 and node.input[3] and axes_given is None):
        raise b.refuse(node, "its pads, value or axes are not constant", "make them initializers")
    rank = len(q.shape)
    axes = [int(a) % rank for a in np.asarray(axes_given).reshape(-1)] if axes_given is not None else list(range(rank))
    pads = [int(v) for v in np.asarray(pads).reshape(-1)]
    before, after = pads[: len(axes)], pads[len(axes) :]
    if min(pads) < 0 or any(axis == 0 and (lo or hi) for axis, lo, hi in zip(axes, before, after)):
        raise b.refuse(node, "it crops, or pads the batch dimension", "pad within each row with non-negative pads")
    if q.scale is None:
        raise b.refuse(node, "pads an integer index", "export the model without it")
    fill = int(round_half_away(np.asarray(float(np.asarray(value).reshape(-1)[0]) / float(q.scale))))
    out, shape = _padded(b, q.name, q.shape, axes, before, after, fill)
    b.put(node.output[0], QTensor(out, shape, q.scale, max(q.bound, abs(fill))))


def _window_slices(b: Builder, node: onnx.NodeProto, q: QTensor, pad_value: int) -> tuple[list[str], np.ndarray]:
    """One strided Slice per kernel offset, over a copy padded with `pad_value` (Concat with
    constant borders) where the pool pads: pooling as an n-ary Max or a sum of them. Also
    returns how many real elements each output position's window reads."""
    geo = _pool_geometry(b, node, q)
    n = len(geo["kernel"])
    spatial = list(range(len(q.shape) - n, len(q.shape)))
    out = b.shapes[node.output[0]][-n:]
    real = _real_counts(geo, q.shape[-n:], out)
    if real.min() == 0:
        raise b.refuse(node, "a window lies wholly in the padding", "export the pool with pads smaller than its window")
    src, _ = _padded(b, q.name, q.shape, spatial, geo["before"], geo["after"], pad_value)
    names = []
    for offset in np.ndindex(*geo["kernel"]):
        starts = [j * d for j, d in zip(offset, geo["dilations"])]
        ends = [st + (o - 1) * s + 1 for st, o, s in zip(starts, out, geo["strides"])]
        names.append(
            b.e.op(
                "Slice",
                [
                    src,
                    b.e.const(i64(starts), "starts"),
                    b.e.const(i64(ends), "ends"),
                    b.e.const(i64(spatial), "axes"),
                    b.e.const(i64(geo["strides"]), "steps"),
                ],
                "window",
            )  # fmt: skip
        )
    return names, real


def _h_maxpool(b: Builder, node: onnx.NodeProto) -> None:
    if len(node.output) > 1 and node.output[1]:
        raise b.refuse(node, "the Indices output is not supported", "export MaxPool without indices")
    q = b.scalar_scale(b.get(node, node.input[0]), node.input[0], node)
    # no value is below -bound, and every window reads a real element: the padding never wins
    names, _ = _window_slices(b, node, q, -q.bound)
    out = b.e.op("Max", names, "maxpool") if len(names) > 1 else names[0]
    if q.name in b.nonneg:  # every window holds a real element, none below 0
        b.nonneg.add(out)
    b.put(node.output[0], QTensor(out, tuple(b.shapes[node.output[0]]), q.scale, q.bound))


def _avg_divisors(b: Builder, node: onnx.NodeProto, size: Sequence[int], real: np.ndarray) -> np.ndarray:
    """What the float op divides each window's sum by: its real elements over its output on an
    input of ones (count_include_pad, ceil_mode and auto_pad as onnxruntime applies them)."""
    import onnxruntime as ort

    pool = {k: v for k, v in attrs(node).items() if k != "channels_last"}  # QLinearAveragePool's own
    one = helper.make_node("AveragePool", ["x"], ["y"], **pool)
    graph = helper.make_graph(
        [one], "divisors",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, *size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", b.opset)], ir_version=8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    means = np.asarray(session.run(None, {"x": np.ones((1, 1, *size), np.float32)})[0], np.float64).reshape(real.shape)
    divisors = np.rint(real / means)
    if not np.allclose(divisors * means, real, rtol=1e-5):
        raise b.refuse(node, "its divisors are not whole window counts", "export the pool without pads")
    return divisors.astype(np.int64)


def window_mean(b: Builder, node: onnx.NodeProto) -> QTensor:
    """An average pool's window sums at the mean's scale: the input's over the divisor, one
    scale if every position has the same divisor (exact), else one per output position."""
    q = b.scalar_scale(b.get(node, node.input[0]), node.input[0], node)
    names, real = _window_slices(b, node, q, 0)
    total = names[0]
    for other in names[1:]:
        total = b.e.op("Add", [total, other], "window_sum")
    shape = tuple(b.shapes[node.output[0]])
    if q.name in b.nonneg:  # a sum of elements and zero padding
        b.nonneg.add(total)
    divisors = _avg_divisors(b, node, q.shape[2:], real) if not np.all(real == len(names)) else real
    if np.all(divisors == divisors.flat[0]):
        return QTensor(total, shape, np.asarray(q.scale) / divisors.flat[0], q.bound * len(names))
    return QTensor(total, shape, np.asarray(q.scale) / divisors.reshape(1, 1, *divisors.shape), q.bound * len(names))


def _h_avgpool(b: Builder, node: onnx.NodeProto) -> None:
    mean = window_mean(b, node)
    if mean.scale.ndim:  # a divisor per position (count_include_pad=0 at the borders): one rescale to one scale
        mean = b.requant(mean, b.act_scale(node.output[0]), ACT_MAX, node)
    b.put(node.output[0], mean)


def _h_global_avgpool(b: Builder, node: onnx.NodeProto) -> None:
    q = b.scalar_scale(b.get(node, node.input[0]), node.input[0], node)
    axes = list(range(2, len(q.shape)))
    count = int(np.prod([q.shape[ax] for ax in axes]))
    total = b.e.op("ReduceSum", [q.name, b.e.const(i64(axes), "axes")], "gap", keepdims=1)
    b.put(node.output[0], QTensor(total, tuple(b.shapes[node.output[0]]), np.asarray(q.scale) / count, q.bound * count))


def _reduce_axes(b: Builder, node: onnx.NodeProto, rank: int) -> list[int]:
    """A reduction's axes (an attribute before opset 18, a constant input from it), refusing
    one over the batch: each row of a step is computed on its own."""
    a = attrs(node)
    if len(node.input) > 1 and node.input[1]:
        given = b.const_of(node.input[1])
        if given is None:
            raise b.refuse(node, "the axes are not constant", "make them an initializer")
        axes = [int(v) for v in np.asarray(given).reshape(-1)]
    else:
        axes = [int(v) for v in a.get("axes", [])]
    if not axes:
        if a.get("noop_with_empty_axes", 0):
            raise b.refuse(node, "an empty reduction", "export the model without it")
        axes = list(range(rank))
    axes = sorted({ax % rank for ax in axes})
    if 0 in axes:
        raise b.refuse(node, "it reduces over the batch dimension", "reduce within each row only")
    return axes


def _h_reduce(b: Builder, node: onnx.NodeProto) -> None:
    """ReduceSum, ReduceMean and ReduceMax within each row; a mean is the sum at a finer scale
    (exact, as for GlobalAveragePool)."""
    q = b.scalar_scale(b.get(node, node.input[0]), node.input[0], node)
    if q.scale is None:
        raise b.refuse(node, "applied to an integer index", "export the model without it")
    axes = _reduce_axes(b, node, len(q.shape))
    keep = int(attrs(node).get("keepdims", 1))
    count = int(np.prod([q.shape[ax] for ax in axes]))
    op = "ReduceMax" if node.op_type == "ReduceMax" else "ReduceSum"
    out = b.e.op(op, [q.name, b.e.const(i64(axes), "axes")], op.lower(), keepdims=keep)
    shape = tuple(b.shapes[node.output[0]])
    if node.op_type == "ReduceMax":
        b.put(node.output[0], QTensor(out, shape, q.scale, q.bound))
    else:
        scale = np.asarray(q.scale) / count if node.op_type == "ReduceMean" else q.scale
        b.put(node.output[0], QTensor(out, shape, scale, q.bound * count))


HANDLERS: dict[str, Callable[[Builder, onnx.NodeProto], None]] = {
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
    "Erf": _h_erf,
    "HardSigmoid": _h_hardsigmoid,
    "HardSwish": _h_hardswish,
    "Gelu": _h_gelu,
    "Elu": _h_elu,
    "Selu": _h_elu,
    "Celu": _h_elu,
    "PRelu": _h_prelu,
    "Pad": _h_pad,
    "Greater": _h_compare,
    "GreaterOrEqual": _h_compare,
    "Less": _h_compare,
    "LessOrEqual": _h_compare,
    "Where": _h_where,
    "Abs": _h_abs,
    "Softplus": _h_softplus,
    "Mish": _h_mish,
    "Softmax": _h_softmax,
    "LogSoftmax": _h_log_softmax,
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
    "ReduceMean": _h_reduce,
    "ReduceSum": _h_reduce,
    "ReduceMax": _h_reduce,
    # ai.onnx.ml, as skl2onnx writes scikit-learn pipelines
    "Scaler": _h_scaler,
    "LinearClassifier": _h_linear_classifier,
    "LinearRegressor": _h_linear_regressor,
    "ArrayFeatureExtractor": _h_feature_extractor,
}
# outputs nobody needs for a label or a value: probability maps
SKIPPED = {"ZipMap"}
