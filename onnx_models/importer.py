"""Import a float ONNX model as an exact integer inference graph (docs/SPEC.md 9).

A float model as exporters write it (skl2onnx, torch.onnx.export, tf2onnx), or a quantized one
(onnxruntime's QDQ, QOperator or dynamic quantization), becomes a graph of profile ops only:
every float tensor is carried as an int64 tensor with a scale (`fixedpoint`), each float op is
mapped by a handler (`import_ops`), scales come from calibration rows, and anything that cannot
be mapped is refused in one line naming the node. `evaluate` compares the float model and the
integer graph; `inference_program` runs the graph over rows as a program.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_models.fixedpoint import (
    ACT_MAX,
    FLOAT_TYPES,
    INPUT_FLOOR,
    INPUT_HEADROOM,
    IR_VERSION,
    META_PREFIX,
    OPSET,
    PRODUCER,
    ROUNDING,
    WEIGHT_MAX,
    Builder,
    Emitter,
    ImportRefused,
    QTensor,
    i64,
    quantize_rows,
    round_half_away,
    scale_of,
)
from onnx_models.import_ops import HANDLERS as FLOAT_HANDLERS
from onnx_models.import_ops import SKIPPED, attrs
from onnx_models.import_quantized import (
    MICROSOFT,
    QUANTIZED_HANDLERS,
    fold_quantized_constants,
    quantization_of,
    undo_dynamic_quantization,
)
from verifier.engine.graph import load_graph
from verifier.engine.program import make_program

I64 = TensorProto.INT64
# every op the importer maps, by ONNX op type
HANDLERS = {**FLOAT_HANDLERS, **QUANTIZED_HANDLERS}


@dataclass
class Imported:
    model: onnx.ModelProto  # integer inference graph: input "x" int32 [B, F], one int64 output
    input_scales: np.ndarray  # float64 [F]: x_int = round(x / scale), clipped to +-ACT_MAX
    task: str  # "label" or "value"
    output_scale: np.ndarray | None  # value = q * scale (regression); None for labels
    batch: int
    scales: dict[str, list[float]]  # source tensor -> chosen scale, for the report and metadata
    mapped: dict[str, str]  # source tensor -> integer tensor, for the per-layer error table
    int_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # integer tensor -> shape


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
    try:
        return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own pybind types
        raise ImportRefused(f"onnxruntime cannot run the float model: {_first_line(e)}; fix the export (onnx.checker helps).") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


def float_runs(model: onnx.ModelProto, names: Sequence[str], *row_sets: np.ndarray) -> list[dict[str, np.ndarray]]:
    """The float model's tensors `names` on each set of rows, from one onnxruntime session."""
    sess = _float_session(model, names)
    runs = []
    for rows in row_sets:
        try:
            outs = sess.run(list(names), {model.graph.input[0].name: np.asarray(rows, dtype=np.float32)})
        except Exception as e:  # noqa: BLE001
            raise ImportRefused(f"onnxruntime cannot run the float model on these rows: {_first_line(e)}; check the rows' shape.") from None
        runs.append({n: np.asarray(v) for n, v in zip(names, outs)})
    return runs


def run_float(model: onnx.ModelProto, x: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The float model's tensors `names` on rows `x` (onnxruntime, one thread)."""
    return float_runs(model, names, x)[0]


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
    except (OSError, onnx.checker.ValidationError, onnx.onnx_cpp2py_export.checker.ValidationError, Exception) as err:  # type: ignore[attr-defined]
        if isinstance(err, ImportRefused):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ImportRefused(f"cannot read the model: {first}; pass an ONNX file written by an exporter.") from None
    return model


def _check_source(model: onnx.ModelProto) -> tuple[str, tuple[int, ...]]:
    if (
        len(model.graph.input) - len({i.name for i in model.graph.initializer} & {i.name for i in model.graph.input})
        != 1
    ):
        raise ImportRefused(
            "the model has more than one run-time input; export a model with one input of rows of features."
        )
    inp = next(i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer})
    tt = inp.type.tensor_type
    if tt.elem_type not in FLOAT_TYPES | {TensorProto.DOUBLE}:
        raise ImportRefused(
            f"input '{inp.name}' is {TensorProto.DataType.Name(tt.elem_type)}, not float; import float models only."
        )
    if tt.elem_type == TensorProto.DOUBLE:
        raise ImportRefused(f"input '{inp.name}' is float64; export the model in float32.")
    dims = tt.shape.dim
    if len(dims) < 2 or not all(d.HasField("dim_value") and d.dim_value > 0 for d in dims[1:]):
        raise ImportRefused(
            f"input '{inp.name}' must be rows of a fixed shape, [N, F] or [N, C, H, W]; export it with static dims but the batch."
        )
    for init in model.graph.initializer:
        if init.data_type in (TensorProto.DOUBLE, TensorProto.UINT16):
            raise ImportRefused(
                f"initializer '{init.name}' is {TensorProto.DataType.Name(init.data_type)}; export weights in float32 or int64."
            )
    return inp.name, tuple(int(d.dim_value) for d in dims[1:])


def _output_of(model: onnx.ModelProto) -> tuple[str, str]:
    """The output the program computes: the label of a classifier, else the first tensor."""
    tensors = [o for o in model.graph.output if o.type.WhichOneof("value") == "tensor_type"]
    if not tensors:
        raise ImportRefused("the model has no tensor output; export it with a label or value output.")
    for o in tensors:
        if o.type.tensor_type.elem_type in (TensorProto.INT64, TensorProto.INT32):
            return o.name, "label"
    return tensors[0].name, "value"


def _needed_nodes(model: onnx.ModelProto, output: str) -> list[onnx.NodeProto]:
    """The nodes the chosen output depends on, in graph order (probability tails drop out)."""
    producer = {o: i for i, node in enumerate(model.graph.node) for o in node.output if o}
    need, todo = set(), [output]
    while todo:
        name = todo.pop()
        i = producer.get(name)
        if i is None or i in need:
            continue
        need.add(i)
        todo.extend(x for x in model.graph.node[i].input if x)
    return [node for i, node in enumerate(model.graph.node) if i in need]


def import_model(source: Any, calibration: np.ndarray, *, batch: int = 32, max_elements: int | None = None) -> Imported:
    """Map a float model onto an exact integer inference graph, scales from `calibration`."""
    model = read_float_model(source)
    input_name, row_shape = _check_source(model)
    x = np.asarray(calibration, dtype=np.float32)
    if x.shape[1:] != row_shape or len(x) == 0:
        raise ImportRefused(f"the calibration data has shape {list(x.shape)}; pass rows of shape {list(row_shape)}.")
    if not 1 <= batch <= 4096:
        raise ImportRefused(f"batch {batch} is outside 1..4096; choose a batch size in that range.")
    out_name, task = _output_of(model)

    nodes = _needed_nodes(model, out_name)
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in nodes:
        if node.op_type == "Constant":
            if "value" not in attrs(node):
                raise ImportRefused(
                    f"node '{node.name or node.op_type}' (Constant) has no tensor value; export constants as tensors."
                )
            consts[node.output[0]] = numpy_helper.to_array(attrs(node)["value"])
    nodes = [n for n in nodes if n.op_type != "Constant"]
    nodes = undo_dynamic_quantization(fold_quantized_constants(nodes, consts), consts)
    for node in nodes:
        domain_ok = node.domain in ("", "ai.onnx", "ai.onnx.ml") or (
            node.domain == "com.microsoft" and node.op_type in MICROSOFT
        )
        if not domain_ok or node.op_type not in HANDLERS:
            raise ImportRefused(
                f"node '{node.name or node.op_type}' ({node.op_type}) is not supported by the importer; "
                "export the model without it or open an issue naming the op."
            )
    names = [n for n in _tensor_outputs(model) if n not in consts]
    # a one-row run beside the calibration run tells which dims are the batch
    calib, one = float_runs(model, names, x, x[:1])
    calib, one = calib | {input_name: x}, one | {input_name: x[:1]}
    shapes: dict[str, tuple[int, ...]] = {}
    for n in [*names, input_name]:
        full, single = calib[n].shape, one[n].shape
        shapes[n] = tuple(batch if (a != b and a == len(x) and b == 1) else a for a, b in zip(full, single))

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), OPSET)
    b = Builder(calib, shapes, opset)
    b.consts = consts
    for node in nodes:
        for i in node.input:
            b.users.setdefault(i, []).append(node)
    if len(row_shape) == 1:
        in_max = np.abs(x.astype(np.float64)).max(axis=0)
        in_scale = scale_of(np.maximum(in_max * INPUT_HEADROOM, in_max.max() / INPUT_FLOOR), ACT_MAX)
    else:  # an image: one scale for every pixel and channel
        in_scale = scale_of(np.abs(x.astype(np.float64)).max() * INPUT_HEADROOM, ACT_MAX)
    x64 = b.e.op("Cast", ["x"], "x64", to=I64)
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
        raise ImportRefused(
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
    return Imported(int_model, in_scale, task, output_scale, batch, b.scales, b.mapped, b.int_shapes)


# ---------------------------------------------------------------- evaluation


def run_integer(imported: Imported, x: np.ndarray, extra: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Run the integer graph on float rows (quantized with the import's scales), in batches."""
    model = imported.model
    if extra:
        model = onnx.ModelProto()
        model.CopyFrom(imported.model)
        for name in extra:
            model.graph.output.append(helper.make_tensor_value_info(name, I64, list(imported.int_shapes[name])))
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


def evaluate(source: Any, imported: Imported, x: np.ndarray, y: np.ndarray | None = None) -> Report:
    """Float model vs integer graph on rows `x` (labels or targets `y` if given)."""
    model = read_float_model(source)
    out_name, _ = _output_of(model)
    computed = set(_tensor_outputs(model))
    layer_names = [n for n in imported.mapped if n in computed]
    float_out = run_float(model, x, [out_name, *layer_names])
    inner = [imported.mapped[n] for n in layer_names]
    ints = run_integer(imported, x, inner)
    y_int = ints[imported.model.graph.output[0].name]
    # a quantized model's integer tensors are compared as the reals they stand for
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    quantized = quantization_of(model.graph.node, consts)
    layers = []
    for src, dst in zip(layer_names, inner):
        fv = float_out[src].astype(np.float64)
        if src in quantized and not np.issubdtype(float_out[src].dtype, np.floating):
            scale, zero = quantized[src]
            fv = (fv - zero) * scale
        iv = ints[dst].astype(np.float64) * np.asarray(
            imported.scales[src] if len(imported.scales[src]) > 1 else imported.scales[src][0]
        )
        if fv.shape != iv.shape:
            continue
        span = float(np.max(np.abs(fv))) or 1.0
        err = np.abs(fv - iv)
        layers.append({"tensor": src, "max_abs_error": float(err.max()), "relative": float(err.max()) / span})
    if imported.task == "label":
        f_lab = float_out[out_name].reshape(-1).astype(np.int64)
        i_lab = y_int.reshape(-1)
        agreement = float(np.mean(f_lab == i_lab))
        f_acc = i_acc = None
        if y is not None:
            yy = np.asarray(y).reshape(-1).astype(np.int64)
            f_acc, i_acc = (float(np.mean(f_lab == yy)) * 100, float(np.mean(i_lab == yy)) * 100)
        logits = [r for r in layers]
        max_err = max((r["max_abs_error"] for r in logits), default=0.0)
        mean_err = float(np.mean([r["max_abs_error"] for r in logits])) if logits else 0.0
        return Report(len(x), "label", f_acc, i_acc, "accuracy %", agreement * 100, max_err, mean_err, layers)
    fv = float_out[out_name].astype(np.float64).reshape(len(x), -1)
    iv = (y_int.astype(np.float64) * float(imported.output_scale)).reshape(len(x), -1)  # type: ignore[arg-type]
    err = np.abs(fv - iv)
    f_m = i_m = None
    if y is not None and (yy := _class_labels(y, len(x), fv.shape[1])) is not None:
        # class scores (logits or probabilities, as torch exports a classifier): the label is
        # the top score; ties go to the first, as ArgMax's
        f_lab, i_lab = fv.argmax(axis=1), iv.argmax(axis=1)
        f_m, i_m = float(np.mean(f_lab == yy)) * 100, float(np.mean(i_lab == yy)) * 100
        agreement = float(np.mean(f_lab == i_lab)) * 100
        return Report(len(x), "scores", f_m, i_m, "accuracy %", agreement, float(err.max()), float(err.mean()), layers)
    if y is not None:
        yy = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
        if yy.shape[1] != fv.shape[1]:
            raise ImportRefused(
                f"the labels have {yy.shape[1]} value(s) a row and the model outputs {fv.shape[1]}; "
                "pass one target per output, or class numbers 0..C-1 for a classifier's C scores."
            )
        f_m, i_m = _r2(yy, fv), _r2(yy, iv)
    return Report(len(x), "value", f_m, i_m, "R^2 x 100", None, float(err.max()), float(err.mean()), layers)


def _class_labels(y: np.ndarray, rows: int, columns: int) -> np.ndarray | None:
    """`y` as class numbers if it is one whole number in 0..columns-1 a row and the model
    outputs columns >= 2 scores a row; None otherwise (a regression's targets)."""
    yy = np.asarray(y)
    if columns < 2 or yy.size != rows:
        return None
    flat = yy.reshape(-1).astype(np.float64)
    if not np.all(flat == np.round(flat)) or flat.min() < 0 or flat.max() >= columns:
        return None
    return flat.astype(np.int64)


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean(axis=0)) ** 2)) or 1.0
    return 100.0 * (1.0 - float(np.sum((y - p) ** 2)) / ss)


# ---------------------------------------------------------------- inference as a program


def inference_program(
    imported: Imported | onnx.ModelProto, rows: np.ndarray, labels: np.ndarray | None = None
) -> onnx.ModelProto:
    """A program whose step t runs batch t of `rows` (int32 [n, F], quantized) through the
    integer graph and writes its outputs into the state, which ends as every row's output.
    With `labels` (a class number per row), the state also counts the rows whose predicted
    class (the label output, or the top score, first on a tie) is the row's label: `correct`,
    so that the final state carries a verified accuracy."""
    model = imported.model if isinstance(imported, Imported) else imported
    meta = {p.key: p.value for p in model.metadata_props}
    bsz = int(meta.get(META_PREFIX + "batch", "0")) or model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    rows = np.asarray(rows)
    row_shape = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:])
    if rows.dtype != np.int32 or rows.shape[1:] != row_shape or len(rows) == 0:
        raise ImportRefused(
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

    e = Emitter()
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
        "Add", [e.op("Mul", ["t", e.const(i64(bsz), "b")]), e.const(np.arange(bsz, dtype=np.int64), "lanes")], "row_idx"
    )
    e.nodes.append(helper.make_node("Gather", ["rows", idx], ["batch_rows"], name="batch_rows", axis=0))
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
        mine = e.op("Reshape", [mine, e.const(i64([n_pad] + [1] * len(per_row)), "shape")])
    picked = e.op("Gather", [out, e.const(positions % bsz, "lane")], "picked", axis=0)
    e.nodes.append(helper.make_node("Where", [mine, picked, "outputs"], ["outputs_next"], name="outputs_next"))
    inputs = [
        helper.make_tensor_value_info("t", I64, []),
        helper.make_tensor_value_info("outputs", I64, state_shape),
        helper.make_tensor_value_info("rows", TensorProto.INT32, [n_pad, *row_shape]),
    ]
    outputs = [helper.make_tensor_value_info("outputs_next", I64, state_shape)]
    state = {"outputs": np.zeros(state_shape, dtype=np.int64)}
    data_slots = {"rows": data}
    if labels is not None:
        classes = _labels_of(labels, n, per_row)
        # padding rows hold -1, which no prediction equals
        data_slots["labels"] = np.concatenate([classes, np.full(n_pad - n, -1, np.int64)])
        if per_row and per_row != [1]:
            predicted = e.op("ArgMax", [out], "predicted", axis=1, keepdims=0)
        else:
            predicted = e.op("Reshape", [out, e.const(i64([bsz]), "flat")], "predicted")
        wanted = e.op("Gather", ["labels", idx], "batch_labels", axis=0)
        hits = e.op("Cast", [e.op("Equal", [predicted, wanted], "hit")], "hits", to=I64)
        total = e.op("ReduceSum", [hits, e.const(i64([0]), "axis0")], "batch_correct", keepdims=0)
        e.nodes.append(helper.make_node("Add", ["correct", total], ["correct_next"], name="correct_next"))
        inputs += [helper.make_tensor_value_info("correct", I64, []), helper.make_tensor_value_info("labels", I64, [n_pad])]
        outputs.append(helper.make_tensor_value_info("correct_next", I64, []))
        state["correct"] = np.zeros((), np.int64)
    graph = helper.make_graph(e.nodes, "inference", inputs, outputs, initializer=e.consts)
    step = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    step.producer_name = PRODUCER
    return make_program(step, steps=steps, state=state, data=data_slots, step_input="t")


def _labels_of(labels: np.ndarray, n: int, per_row: list[int]) -> np.ndarray:
    """`labels` as one class number a row, refusing what cannot be compared with the output."""
    y = np.asarray(labels).reshape(-1)
    if y.size != n:
        raise ImportRefused(f"{y.size} labels for {n} rows; give one label a row.")
    if per_row and per_row != [1] and len(per_row) != 1:
        raise ImportRefused(f"the model outputs {per_row} a row; labels can be counted only against a label or a score vector.")
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.asarray(y, np.float64) == np.round(np.asarray(y, np.float64))):
        raise ImportRefused("the labels are not whole numbers; give class numbers (0..C-1 for a model that outputs C scores).")
    classes = np.asarray(y, dtype=np.int64)
    if classes.min() < 0 or (per_row and per_row != [1] and classes.max() >= per_row[0]):
        top = per_row[0] - 1 if per_row and per_row != [1] else "the largest class"
        raise ImportRefused(f"labels outside 0..{top}; give class numbers the model can predict.")
    return classes


__all__ = [
    "ImportRefused",
    "Imported",
    "QTensor",
    "Report",
    "evaluate",
    "import_model",
    "inference_program",
    "quantize_rows",
    "round_half_away",
    "run_integer",
]
