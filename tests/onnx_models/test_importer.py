"""`onnx_models.importer`: float models from a real exporter become exact integer graphs that
keep the float model's accuracy, and inference programs over committed rows (docs/SPEC.md 9)."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from _imported import convnet, exported, image_split, quantized, split
from onnx import TensorProto, helper

from onnx_models import fixedpoint, importer
from verifier.engine.program import load_program


@pytest.mark.parametrize("dataset", ["breast_cancer", "digits"])
@pytest.mark.parametrize("kind", ["mlp", "logistic"])
def test_sklearn_models__keep_accuracy_within_a_point(dataset: str, kind: str) -> None:
    x_train, x_test, _, y_test = split(dataset)
    model = exported(dataset, kind)
    imp = importer.import_model(model, x_train, batch=32)
    report = importer.evaluate(model, imp, x_test, y_test)
    assert imp.task == "label"
    assert report.float_metric is not None and report.float_metric > 90
    assert report.loss is not None and report.loss <= 1.0, report.as_dict()
    assert report.agreement is not None and report.agreement >= 98.0
    # every op of the result is a profile op: the engine loaded it to run the report
    assert {n.op_type for n in imp.model.graph.node} <= {
        "Cast", "MatMul", "Add", "Sub", "Mul", "Div", "Sign", "Clip", "Relu", "Gather", "ArgMax", "Identity",
        "Where", "GreaterOrEqual", "Reshape", "Concat", "Transpose",
    }  # fmt: skip


def test_import__is_deterministic_and_records_its_scales() -> None:
    x_train, *_ = split("breast_cancer")
    model = exported("breast_cancer", "mlp")
    a = importer.import_model(model, x_train).model.SerializeToString()
    b = importer.import_model(model, x_train).model.SerializeToString()
    assert a == b
    meta = {p.key: p.value for p in onnx.load_model_from_string(a).metadata_props}
    for key in ("input_scales", "scales", "rounding", "source_sha256", "task", "batch"):
        assert importer.META_PREFIX + key in meta


def test_requant__rounds_half_away_from_zero() -> None:
    """The written rounding rule, on the emitted ops: x * 1/2 for x in -5..5."""
    b = fixedpoint.Builder({"x": np.arange(-5, 6, dtype=np.float64)}, {})
    q = fixedpoint.QTensor("x", (11,), np.asarray(1.0), 5)
    half = b.requant(q, np.asarray(2.0), 100, helper.make_node("Identity", ["x"], ["y"]))
    graph = helper.make_graph(
        b.e.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.INT64, [11])],
        [helper.make_tensor_value_info(half.name, TensorProto.INT64, [11])], initializer=b.e.consts,
    )  # fmt: skip
    from verifier.engine.graph import load_graph

    out = load_graph(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)).run(
        {"x": np.arange(-5, 6, dtype=np.int64)}
    )[half.name]
    assert out.tolist() == [-3, -2, -2, -1, -1, 0, 1, 1, 2, 2, 3]
    assert out.tolist() == importer.round_half_away(np.arange(-5, 6) / 2).tolist()


def _requant_of(values: np.ndarray, ratio: np.ndarray, nonneg: bool) -> tuple[np.ndarray, list[str]]:
    """The emitted rescale of `values` (held at scale 1) by `ratio`, run by the engine's graph."""
    from verifier.engine.graph import load_graph

    b = fixedpoint.Builder({}, {})
    if nonneg:
        b.nonneg.add("x")
    q = fixedpoint.QTensor("x", values.shape, np.asarray(1.0), int(np.abs(values).max()))
    out = b.requant(q, 1.0 / ratio, 2**40, helper.make_node("Identity", ["x"], ["y"]))
    graph = helper.make_graph(
        b.e.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.INT64, list(values.shape))],
        [helper.make_tensor_value_info(out.name, TensorProto.INT64, list(values.shape))], initializer=b.e.consts,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    return load_graph(model).run({"x": values})[out.name], [n.op_type for n in b.e.nodes]


@pytest.mark.parametrize("seed", range(6))
def test_requant_of_a_tensor_never_below_zero__same_integers_without_the_sign_term(seed: int) -> None:
    """After a Relu (or a pool, a table of non-negative values) the rescale adds 2^(k-1)
    without Sign: on every non-negative input, ties included, the integers of the signed rule."""
    rng = np.random.default_rng(seed)
    values = np.concatenate([np.arange(0, 64), rng.integers(0, 2**20, size=192)]).astype(np.int64).reshape(4, 64)
    ratio = rng.uniform(0.001, 3.0, size=(4, 1)) if seed % 2 else np.asarray(0.5 ** rng.integers(1, 9))
    plain, ops_signed = _requant_of(values, ratio, nonneg=False)
    lean, ops_nonneg = _requant_of(values, ratio, nonneg=True)
    assert np.array_equal(plain, lean)
    assert "Sign" in ops_signed and "Sign" not in ops_nonneg


def test_inference_program__final_state_is_every_rows_label() -> None:
    x_train, x_test, _, _ = split("breast_cancer")
    model = exported("breast_cancer", "mlp")
    imp = importer.import_model(model, x_train, batch=16)
    rows = x_test[:40]
    program = load_program(importer.inference_program(imp, importer.quantize_rows(rows, imp.input_scales)))
    assert program.steps == 3  # 40 rows, 16 a step
    final = program.run()["outputs"]
    expected = importer.run_integer(imp, rows)[imp.model.graph.output[0].name]
    assert final[:40].tolist() == expected.tolist()
    assert (
        final[40:].tolist()
        == importer.run_integer(imp, np.zeros((8, rows.shape[1]), np.float32))[imp.model.graph.output[0].name].tolist()
    )


def _float_model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "f", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=9).SerializeToString()


def _fin(name="x", shape=(None, 3), dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, list(shape))


W = onnx.numpy_helper.from_array(np.ones((3, 2), np.float32), "w")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_float_model([helper.make_node("Sin", ["x"], ["y"], name="sine")], [_fin()], [_fin("y")]), "node 'sine' (Sin) is not supported"),
        (_float_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [_fin(dtype=TensorProto.DOUBLE)], [_fin("y", (None, 2))],
                      [onnx.numpy_helper.from_array(np.ones((3, 2)), "w")]), "float64"),
        (_float_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [_fin(shape=(None, None))], [_fin("y", (None, 2))], [W]),
         "static dims but the batch"),
        (_float_model([helper.make_node("Identity", ["x"], ["y"])], [_fin()], [_fin("y")],
                      [onnx.numpy_helper.from_array(np.ones(2, np.uint16), "u")]), "UINT16"),
        (b"not an onnx file", "cannot read the model"),
    ],
)  # fmt: skip
def test_refused_models__one_line_naming_the_problem(model: bytes, message: str) -> None:
    with pytest.raises(importer.ImportRefused) as err:
        importer.import_model(model, np.ones((4, 3), np.float32))
    text = str(err.value)
    assert message in text and "\n" not in text and text.endswith(".")


def test_value_beyond_exact_integers__refused() -> None:
    """Bounds are worst cases over every input: a tensor that could reach 2^53 is refused."""
    b = fixedpoint.Builder({}, {})
    with pytest.raises(importer.ImportRefused, match="too wide for exact integers"):
        b.put("h", fixedpoint.QTensor("h", (1, 1), np.asarray(1.0), 2**53))
    b.put("h", fixedpoint.QTensor("h", (1, 1), np.asarray(1.0), 2**53 - 1))


def test_two_layers__rescaled_between_so_each_product_stays_narrow() -> None:
    k = 64
    rng = np.random.default_rng(0)
    w1 = onnx.numpy_helper.from_array(rng.normal(size=(k, 8)).astype(np.float32), "w1")
    w2 = onnx.numpy_helper.from_array(rng.normal(size=(8, 1)).astype(np.float32), "w2")
    m = _float_model(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])],
        [_fin(shape=(None, k))], [_fin("y", (None, 1))], [w1, w2],
    )  # fmt: skip
    x = rng.normal(size=(200, k)).astype(np.float32)
    imp = importer.import_model(m, x, batch=8)
    ops = [n.op_type for n in imp.model.graph.node]
    assert ops.count("MatMul") == 2 and "Div" in ops[ops.index("MatMul") : len(ops) - ops[::-1].index("MatMul")]
    report = importer.evaluate(m, imp, x)
    assert report.task == "value" and report.max_abs_error < 0.01 * float(
        np.abs(importer.run_float(importer.read_float_model(m), x, ["y"])["y"]).max()
    )


def _accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(scores.reshape(len(y), -1).argmax(axis=1) == y)) * 100


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("fmt", ["float", "qdq", "qoperator", "dynamic"])
def test_convnets__float_and_quantized__keep_accuracy_within_a_point(residual: bool, fmt: str) -> None:
    """Conv, BatchNormalization (folded), a residual Add, MaxPool, Flatten and Gemm, as
    exported; then onnxruntime's QDQ, QOperator and dynamic quantizations of the same net."""
    x_train, x_test, _, y_test = image_split()
    model = convnet(residual) if fmt == "float" else quantized(convnet(residual), fmt, "images")
    proto = importer.read_float_model(model)
    ops = {n.op_type for n in proto.graph.node}
    assert {"float": "Conv", "qdq": "QuantizeLinear", "qoperator": "QLinearConv", "dynamic": "ConvInteger"}[fmt] in ops
    imp = importer.import_model(model, x_train, batch=16)
    ints = importer.run_integer(imp, x_test)[imp.model.graph.output[0].name]
    floats = importer.run_float(proto, x_test, [proto.graph.output[0].name])[proto.graph.output[0].name]
    float_acc, int_acc = _accuracy(floats, y_test), _accuracy(ints, y_test)
    assert float_acc > 95
    assert abs(float_acc - int_acc) <= 1.0, (float_acc, int_acc)


@pytest.mark.parametrize("dataset", ["breast_cancer", "digits"])
@pytest.mark.parametrize("fmt", ["qdq", "qoperator", "dynamic"])
def test_quantized_sklearn_mlp__keeps_accuracy_within_a_point(dataset: str, fmt: str) -> None:
    x_train, x_test, _, y_test = split(dataset)
    model = quantized(exported(dataset, "mlp"), fmt, dataset)
    imp = importer.import_model(model, x_train, batch=32)
    report = importer.evaluate(model, imp, x_test, y_test)
    assert report.loss is not None and abs(report.loss) <= 1.0, report.as_dict()


POOLS = {
    # tf2onnx writes Keras' padding='same' as auto_pad
    "max same_upper": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    "max same_lower": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    "max resnet stem": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "max dilated ceil": ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "dilations": [2, 2], "ceil_mode": 1}),
    "avg pad counted": ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    "avg pad not counted": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 2]}),
    "avg ceil": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    "avg same_upper": ("AveragePool", {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}),
}


@pytest.mark.parametrize("case", sorted(POOLS))
def test_padded_pools__match_the_float_op(case: str) -> None:
    """Pools that pad, dilate or round their output size up: a padded copy (Concat with
    constant borders: the least value for a max, 0 for a mean) read window by window, and a
    mean's divisor per position as onnxruntime counts it. Inputs reach below 0, so a max that
    padded with 0 would differ."""
    op, kw = POOLS[case]
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(64, 2, 8, 8)).astype(np.float32)
    m = _float_model(
        [helper.make_node(op, ["x"], ["p"], **kw), helper.make_node("Flatten", ["p"], ["y"])],
        [_fin(shape=(None, 2, 8, 8))], [_fin("y", (None, None))], opset=19,
    )  # fmt: skip
    imp = importer.import_model(m, x, batch=8)
    floats = importer.run_float(importer.read_float_model(m), x, ["y"])["y"]
    ints = importer.run_integer(imp, x)[imp.model.graph.output[0].name] * float(imp.output_scale)
    assert ints.shape == floats.shape
    assert np.max(np.abs(ints - floats)) < 2e-3, case
    assert "Concat" in {n.op_type for n in imp.model.graph.node}  # each case reads a border


def test_pool_window_wholly_in_padding__refused() -> None:
    """onnxruntime drops a last window that would start in the padding (ceil_mode); a
    runtime that sized the output as ONNX's shape inference does (3 windows over 4 values,
    kernel 2, stride 2, one pad after) would leave the last one no real element."""
    from onnx_models import import_ops

    b = fixedpoint.Builder({}, {"p": (1, 1, 3)})
    b.put("x", fixedpoint.QTensor("x", (1, 1, 4), np.asarray(1.0), 100))
    node = helper.make_node("MaxPool", ["x"], ["p"], name="edge", kernel_shape=[2], strides=[2], pads=[0, 1], ceil_mode=1)
    with pytest.raises(importer.ImportRefused, match=r"node 'edge' \(MaxPool\).*wholly in the padding"):
        import_ops.HANDLERS["MaxPool"](b, node)
    b.shapes["p"] = (1, 1, 2)  # onnxruntime's size: every window reads a value
    import_ops.HANDLERS["MaxPool"](b, node)
    assert b.env["p"].shape == (1, 1, 2)


def test_two_activations_that_broadcast__subtract_at_one_scale() -> None:
    """x less its row's mean (ReduceMean keeps a dim of 1): the Sub broadcasts."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 3, size=(64, 5)).astype(np.float32)
    m = _float_model(
        [helper.make_node("ReduceMean", ["x"], ["mu"], axes=[1], keepdims=1), helper.make_node("Sub", ["x", "mu"], ["y"])],
        [_fin(shape=(None, 5))], [_fin("y", (None, 5))],
    )  # fmt: skip
    imp = importer.import_model(m, x, batch=8)
    ints = importer.run_integer(imp, x)[imp.model.graph.output[0].name] * float(imp.output_scale)
    assert np.max(np.abs(ints - (x - x.mean(axis=1, keepdims=True)))) < 1e-3


def _one_op(op: str, opset: int, **kw) -> bytes:  # noqa: ANN003
    return _float_model([helper.make_node(op, ["x"], ["y"], **kw)], [_fin(shape=(None, 6))], [_fin("y", (None, 6))], opset=opset)


ACTIVATIONS = {
    "Erf": _one_op("Erf", 17),
    "HardSigmoid": _one_op("HardSigmoid", 17, alpha=0.3, beta=0.4),
    "HardSwish": _one_op("HardSwish", 17),
    "Gelu": _one_op("Gelu", 20),
    "Gelu tanh": _one_op("Gelu", 20, approximate="tanh"),
    "Elu": _one_op("Elu", 17, alpha=0.7),
    "Elu alpha 2": _one_op("Elu", 17, alpha=2.0),
    "Selu": _one_op("Selu", 17),
    "Celu": _one_op("Celu", 17, alpha=1.5),
    "PRelu per channel": _float_model(
        [helper.make_node("PRelu", ["x", "slope"], ["y"])], [_fin(shape=(None, 3, 2))], [_fin("y", (None, 3, 2))],
        [onnx.numpy_helper.from_array(np.asarray([[0.25], [-0.5], [1.5]], np.float32), "slope")],
    ),
    "Pad": _float_model(
        [helper.make_node("Pad", ["x", "pads", "value"], ["y"])], [_fin(shape=(None, 3, 2))], [_fin("y", (None, 4, 5))],
        [onnx.numpy_helper.from_array(np.asarray([0, 1, 2, 0, 0, 1], np.int64), "pads"),
         onnx.numpy_helper.from_array(np.asarray(0.75, np.float32), "value")],
    ),
    "Softplus": _one_op("Softplus", 17),
    "Mish": _one_op("Mish", 18),
    # SiLU as both exporters write it: x * Sigmoid(x), a product of two activations
    "SiLU": _float_model(
        [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])],
        [_fin(shape=(None, 6))], [_fin("y", (None, 6))],
    ),
    "LogSoftmax": _one_op("LogSoftmax", 17),
    "LogSoftmax over channels": _float_model(
        [helper.make_node("LogSoftmax", ["x"], ["y"], axis=1)], [_fin(shape=(None, 3, 2))], [_fin("y", (None, 3, 2))], opset=13
    ),
    "Softmax over channels": _float_model(
        [helper.make_node("Softmax", ["x"], ["y"], axis=1)], [_fin(shape=(None, 3, 2))], [_fin("y", (None, 3, 2))], opset=13
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ACTIVATIONS))
def test_activations__match_the_float_op(case: str) -> None:
    """Each from a table of its bounded part (2 * 2048 + 1 input steps over at least +-8): alone
    (Erf, HardSigmoid), as the gate of a product x * g(x) (HardSwish, Gelu, Mish, SiLU), or
    added to relu(x) (Elu's, Selu's and Celu's exp(x) - 1 below 0, Softplus's
    log(1 + exp(-|x|))); a PRelu slope per channel (one above 1, one below 0); a Pad with a
    constant; a Softmax or LogSoftmax over any axis but the batch. Each within 1% of the float op's range,
    over inputs in [-6, 6]."""
    model = ACTIVATIONS[case]
    shape = [d.dim_value for d in onnx.load_from_string(model).graph.input[0].type.tensor_type.shape.dim[1:]]
    x = np.random.default_rng(11).uniform(-6, 6, size=(256, *shape)).astype(np.float32)
    imp = importer.import_model(model, x, batch=16)
    floats = importer.run_float(importer.read_float_model(model), x, ["y"])["y"]
    ints = importer.run_integer(imp, x)[imp.model.graph.output[0].name] * float(imp.output_scale)
    assert np.max(np.abs(ints - floats)) < 0.01 * float(np.max(np.abs(floats))), case


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_one_op("Celu", 17, alpha=0.0), "(Celu): alpha 0.0 is out of range"),
        (_float_model([helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect")], [_fin(shape=(None, 6))], [_fin("y", (None, 8))],
                      [onnx.numpy_helper.from_array(np.asarray([0, 1, 0, 1], np.int64), "pads")]), "(Pad): mode 'reflect' is not supported"),
        (_float_model([helper.make_node("Pad", ["x", "pads"], ["y"])], [_fin(shape=(None, 6))], [_fin("y", (None, 6))],
                      [onnx.numpy_helper.from_array(np.asarray([1, 0, 0, 0], np.int64), "pads")]), "(Pad): it crops, or pads the batch"),
        (_float_model([helper.make_node("Div", ["x", "x"], ["y"])], [_fin(shape=(None, 6))], [_fin("y", (None, 6))]),
         "(Div): a quotient of two activations is not supported"),
        (_float_model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [_fin(shape=(None, 3, 2))], [_fin("y", (None, 3, 2))], opset=12),
         "(Softmax): an opset-12 Softmax over more than the last axis"),
    ],
)  # fmt: skip
def test_activations_outside_the_mapping__refused_in_one_line(model: bytes, message: str) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, size=(32, *[d.dim_value for d in onnx.load_from_string(model).graph.input[0].type.tensor_type.shape.dim[1:]])).astype(np.float32)
    with pytest.raises(importer.ImportRefused) as e:
        importer.import_model(model, x)
    assert message in str(e.value) and "\n" not in str(e.value)


COMPARE_THRESHOLD = onnx.numpy_helper.from_array(np.asarray(0.3, np.float32), "c")


@pytest.mark.parametrize("op", ["Greater", "GreaterOrEqual", "Less", "LessOrEqual"])
def test_comparisons_with_a_constant__select_as_the_float_op(op: str) -> None:
    """Where(x OP 0.3, x, -1) as torch.export writes Softplus's threshold and Hardshrink: the
    integers compare against 0.3 / s rounded the way that makes the comparison the float one's
    on every value the integer tensor holds, the values next to 0.3 included."""
    m = _float_model(
        [helper.make_node(op, ["x", "c"], ["cond"]), helper.make_node("Where", ["cond", "x", "minus"], ["y"])],
        [_fin(shape=(None, 2, 2))], [_fin("y", (None, 2, 2))],
        [COMPARE_THRESHOLD, onnx.numpy_helper.from_array(np.asarray(-1.0, np.float32), "minus")],
    )  # fmt: skip
    x = np.random.default_rng(2).uniform(-1, 1, size=(256, 2, 2)).astype(np.float32)
    imp = importer.import_model(m, x, batch=16)
    s = float(np.asarray(imp.input_scales).reshape(-1)[0])  # one scale for every element of a row
    near = (math.floor(0.3 / s) + np.arange(-2, 2)).reshape(1, 2, 2) * s  # the held values around 0.3
    rows = np.concatenate([x, np.repeat(near, 16, axis=0)]).astype(np.float32)
    ints = importer.run_integer(imp, rows)[imp.model.graph.output[0].name] * float(imp.output_scale)
    held = np.round(rows / s) * s  # what the integer input stands for
    compare = {"Greater": np.greater, "GreaterOrEqual": np.greater_equal, "Less": np.less, "LessOrEqual": np.less_equal}[op]
    chosen = compare(held, 0.3)
    assert chosen.any() and (~chosen).any()
    assert np.array_equal(np.isclose(ints, -1.0, atol=1e-3), ~chosen | np.isclose(held, -1.0, atol=1e-3))


def test_where_selecting_by_other_than_a_comparison__refused() -> None:
    """An index cast to bool (an ArgMax's) is no comparison of activations: refused."""
    m = _float_model(
        [helper.make_node("ArgMax", ["x"], ["i"], axis=1, keepdims=1), helper.make_node("Cast", ["i"], ["cond"], to=TensorProto.BOOL),
         helper.make_node("Where", ["cond", "x", "zero"], ["y"], name="w")],
        [_fin(shape=(None, 4))], [_fin("y", (None, 4))], [onnx.numpy_helper.from_array(np.asarray(0.0, np.float32), "zero")],
    )  # fmt: skip
    with pytest.raises(importer.ImportRefused, match=r"node 'w' \(Where\): its condition is not a comparison"):
        importer.import_model(m, np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32))


def test_dead_and_tiny_channels__keep_their_bias() -> None:
    """A weight column of zeros (pruned, or quantized to nothing) and one 2^16 times smaller
    than the rest, each with a bias: every column of the output is the float one's. A zero
    column once took scale 1.0 and set the rescale's shift, and the far smaller one's
    multiplier rounded to 0, so both read 0 and every other column lost its precision."""
    rng = np.random.default_rng(4)
    w = rng.normal(size=(8, 4)).astype(np.float32)
    w[:, 1] = 0.0
    w[:, 2] *= 2.0**-16
    bias = np.asarray([0.1, 0.7, -0.4, 0.2], np.float32)
    m = _float_model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"])], [_fin(shape=(None, 8))], [_fin("y", (None, 4))],
        [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(bias, "b")],
    )  # fmt: skip
    x = rng.uniform(-1, 1, size=(128, 8)).astype(np.float32)
    imp = importer.import_model(m, x, batch=16)
    ints = importer.run_integer(imp, x)[imp.model.graph.output[0].name] * float(imp.output_scale)
    floats = x.astype(np.float64) @ w + bias
    assert np.max(np.abs(ints - floats)) < 2e-3 * np.max(np.abs(floats))
    assert np.allclose(ints[:, 1], 0.7, atol=1e-3) and np.allclose(ints[:, 2], -0.4, atol=1e-3)


def test_dead_conv_filter__keeps_its_bias() -> None:
    w = np.random.default_rng(6).normal(size=(2, 1, 3, 3)).astype(np.float32)
    w[1] = 0.0
    m = _float_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Flatten", ["c"], ["y"])],
        [_fin(shape=(None, 1, 4, 4))], [_fin("y", (None, 32))],
        [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(np.asarray([0.2, 0.45], np.float32), "b")],
    )  # fmt: skip
    x = np.random.default_rng(7).uniform(-1, 1, size=(64, 1, 4, 4)).astype(np.float32)
    imp = importer.import_model(m, x, batch=16)
    ints = importer.run_integer(imp, x)[imp.model.graph.output[0].name] * float(imp.output_scale)
    assert np.allclose(ints[:, 16:], 0.45, atol=2e-3)


def test_tensors_marked_never_below_zero__are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tensor the importer takes as non-negative (so that its rescales drop the sign
    term) is, on inputs of both signs: Relu, padded max and average pools of it, a Softmax's
    gap, the Sigmoid and HardSwish gate tables, and the rescales of those; a Tanh's is not."""
    import onnxruntime as ort

    builders: list[fixedpoint.Builder] = []
    init = fixedpoint.Builder.__init__
    monkeypatch.setattr(fixedpoint.Builder, "__init__", lambda self, *a, **k: (init(self, *a, **k), builders.append(self))[0])
    m = _float_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("MaxPool", ["r"], ["mp"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Tanh", ["x"], ["t"]), helper.make_node("Sigmoid", ["t"], ["s"]), helper.make_node("HardSwish", ["x"], ["h"]),
         helper.make_node("Add", ["ap", "s"], ["a"]), helper.make_node("Add", ["a", "h"], ["z"]),
         helper.make_node("Softmax", ["z"], ["y"], axis=-1)],
        [_fin(shape=(None, 1, 4, 4))], [_fin("y", (None, 1, 4, 4))], opset=17,
    )  # fmt: skip
    x = np.random.default_rng(9).uniform(-3, 3, size=(64, 1, 4, 4)).astype(np.float32)
    imp = importer.import_model(m, x, batch=8)
    marked = sorted(builders[-1].nonneg)
    assert len(marked) >= 8
    model = onnx.ModelProto()
    model.CopyFrom(imp.model)
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in marked)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rows = importer.quantize_rows(x, imp.input_scales)
    for start in range(0, len(rows), 8):
        values = session.run(marked, {"x": rows[start : start + 8]})
        assert all(np.min(v) >= 0 for v in values), [n for n, v in zip(marked, values) if np.min(v) < 0]
