"""Models as PyTorch writes them (tests/onnx_models/_torch.py): trained in the test, exported by
both of torch.onnx.export's exporters, imported by `bisectml import` and judged on held-out
digits. A classifier that ends at its logits or its probabilities is reported as one (top-1
agreement and accuracy), not as a regression."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from _torch import EXPORTERS, MODELS, digits, exported, float_accuracy
from onnx import TensorProto, helper
from test_importer import _fin, _float_model

from onnx_models import importer
from verifier.app import bring
from verifier.engine.program import load_program
from verifier.engine.trace import Trace


def _files(tmp_path: Path, name: str, exporter: str) -> tuple[Path, Path, Path]:
    x_train, x_test, y_train, y_test = digits(name)
    model = tmp_path / f"{name}.onnx"
    model.write_bytes(exported(name, exporter))
    np.savez(tmp_path / "train.npz", X=x_train, y=y_train)
    np.savez(tmp_path / "test.npz", X=x_test, y=y_test)
    return model, tmp_path / "train.npz", tmp_path / "test.npz"


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_torch_export__imports_and_keeps_accuracy_within_a_point(tmp_path: Path, name: str, exporter: str) -> None:
    model, train, test = _files(tmp_path, name, exporter)
    out = tmp_path / "int.onnx"
    result = bring.import_model(str(model), str(train), str(out), held_out=str(test), batch=16)
    held = result["held_out"]
    assert held["task"] == "scores" and held["metric"] == "accuracy %"
    assert held["float"] == pytest.approx(float_accuracy(name), abs=1e-9)  # the float side is torch's own model
    assert held["float"] > 90, held
    assert abs(held["loss"]) <= 1.0, held
    assert held["agreement"] >= 97.0, held
    graph = importer.load_graph(onnx.load(out))  # inside the profile: integers only
    assert graph is not None


def test_softmax_output__probabilities_in_fixed_point(tmp_path: Path) -> None:
    """A Softmax whose probabilities are the output is computed (an exp table over max - z and
    one division), not refused: each row's probabilities are within 0.01 of the float model's
    and sum to 1 within the rounding of its ten entries."""
    model, _, _ = _files(tmp_path, "mlp_softmax", "dynamo")
    x_train, x_test, _, _ = digits("mlp_softmax")
    imp = importer.import_model(model.read_bytes(), x_train, batch=16)
    assert "Softmax" not in {n.op_type for n in imp.model.graph.node}
    probs = importer.run_integer(imp, x_test)[imp.model.graph.output[0].name] * float(imp.output_scale)
    proto = importer.read_float_model(model.read_bytes())
    floats = importer.run_float(proto, x_test, ["output"])["output"]
    assert np.max(np.abs(probs - floats)) < 0.01
    assert np.all(np.abs(probs.sum(axis=1) - 1) <= 10 / 32_767 + 1e-12)


def test_imported_torch_convnet__runs_as_an_inference_program(tmp_path: Path) -> None:
    """The grouped convnet, exported by torch.export, as a program over 40 labelled rows: its
    trace's final state holds the integer graph's scores for every row and the number of rows
    whose top score is the label."""
    model, _, _ = _files(tmp_path, "convnet", "dynamo")
    x_train, x_test, _, y_test = digits("convnet")
    imp = importer.import_model(model.read_bytes(), x_train, batch=16)
    rows = importer.quantize_rows(x_test[:40], imp.input_scales)
    program = load_program(importer.inference_program(imp, rows, y_test[:40]))
    assert program.steps == 3
    with Trace(program) as trace:
        trace.run()
        final = trace.final_state()
    expected = importer.run_integer(imp, x_test[:40])[imp.model.graph.output[0].name]
    assert np.array_equal(final["outputs"][:40], expected)
    assert int(final["correct"]) == int(np.sum(expected.argmax(axis=1) == y_test[:40])) > 30
    with pytest.raises(importer.ImportRefused, match="labels outside 0..9"):
        importer.inference_program(imp, rows, np.full(40, 10))
    with pytest.raises(importer.ImportRefused, match="39 labels for 40 rows"):
        importer.inference_program(imp, rows, y_test[:39])


@pytest.mark.parametrize(
    ("name", "ops"),
    [("convnet", {"QLinearAveragePool", "QLinearGlobalAveragePool"}), ("mlp", {"QLinearLeakyRelu"}),
     ("mlp_softmax", {"QLinearSoftmax"})],
)  # fmt: skip
def test_qoperator_pools_leaky_relu_softmax__import_and_report_in_reals(name: str, ops: set[str]) -> None:
    """onnxruntime's QOperator quantization of the torch models writes its com.microsoft pools,
    LeakyRelu and Softmax (here the output: computed, not a stand-in): each is the float op on
    the input as held, then onto the output's grid. The
    per-layer table compares the model's 8-bit tensors as the reals they stand for (scale and
    zero point), so every layer is within a few of its quanta (8-bit: 1/255 of its range each), not off by the zero point."""
    from _imported import quantized

    x_train, x_test, _, y_test = digits(name)
    model = quantized(exported(name, "torchscript"), "qoperator", "digits/16")
    assert ops <= {n.op_type for n in onnx.load_from_string(model).graph.node}
    imp = importer.import_model(model, x_train, batch=16)
    report = importer.evaluate(model, imp, x_test, y_test)
    assert abs(report.loss) <= 1.0 and report.agreement >= 97.0, report.as_dict()
    assert report.layers and max(r["relative"] for r in report.layers) < 0.1, report.layers


def test_qoperator_mul__by_a_constant_and_of_two_activations() -> None:
    """x W scaled per column by a constant: a QLinearMul with one constant operand is the float
    Mul by its dequantized value, then onto the output's grid; (x W) squared multiplies two
    activations as held."""
    from _imported import quantized, split

    rng = np.random.default_rng(5)
    w = onnx.numpy_helper.from_array((rng.normal(size=(64, 10)) / 8).astype(np.float32), "w")
    factor = onnx.numpy_helper.from_array(rng.uniform(0.5, 2, size=10).astype(np.float32), "factor")
    model = _graph(
        [helper.make_node("MatMul", ["input", "w"], ["h"]), helper.make_node("Mul", ["h", "factor"], ["output"])],
        (64,), (10,), [w, factor],
    )  # fmt: skip
    q = quantized(model, "qoperator", "digits")
    assert "QLinearMul" in {n.op_type for n in onnx.load_from_string(q).graph.node}
    x_train, x_test, _, _ = split("digits")
    imp = importer.import_model(q, x_train, batch=16)
    report = importer.evaluate(q, imp, x_test)
    span = float(np.abs(importer.run_float(importer.read_float_model(q), x_test, ["output"])["output"]).max())
    assert report.max_abs_error < 0.02 * span, report.as_dict()
    assert max(r["relative"] for r in report.layers) < 0.05, report.layers
    # two activations: their product as held, then onto the grid
    square = _graph([helper.make_node("MatMul", ["input", "w"], ["h"]), helper.make_node("Mul", ["h", "h"], ["output"])], (64,), (10,), [w])
    q = quantized(square, "qoperator", "digits")
    assert "QLinearMul" in {n.op_type for n in onnx.load_from_string(q).graph.node}
    report = importer.evaluate(q, importer.import_model(q, x_train, batch=16), x_test)
    span = float(np.abs(importer.run_float(importer.read_float_model(q), x_test, ["output"])["output"]).max())
    assert report.max_abs_error < 0.02 * span, report.as_dict()


def test_qoperator_average_pool_in_ceil_mode_counting_its_overhang__refused() -> None:
    """There onnxruntime's QLinearAveragePool divides by other than AveragePool's count."""
    from _imported import quantized

    x_train, _, _, _ = digits("padded")
    model = quantized(exported("padded", "torchscript"), "qoperator", "digits/16")
    with pytest.raises(importer.ImportRefused, match=r"\(QLinearAveragePool\): onnxruntime's QLinearAveragePool counts") as e:
        importer.import_model(model, x_train, batch=16)
    assert "\n" not in str(e.value)


def _graph(nodes: list, inp: tuple[int, ...], out: tuple[int, ...], inits: list | None = None) -> bytes:
    """A float model of `nodes` from "input" to "output" (rows of shape `inp` and `out`), opset 18."""
    return _float_model(nodes, [_fin("input", ("batch", *inp))], [_fin("output", ("batch", *out))], inits or (), opset=18)


AXES = helper.make_tensor("axes", TensorProto.INT64, [1], [0])
REFUSED = {
    "mean over the batch": (
        _graph([helper.make_node("ReduceMean", ["input", "axes"], ["output"], name="m", keepdims=1)], (4,), (4,), [AXES]),
        "node 'm' (ReduceMean): it reduces over the batch dimension; reduce within each row only.",
    ),
    "softmax over the batch": (
        _graph([helper.make_node("Softmax", ["input"], ["output"], name="s", axis=0)], (4,), (4,)),
        "node 's' (Softmax): Softmax over the batch dimension; export it over an axis within each row.",
    ),
    "a float model onnxruntime refuses": (
        _graph([helper.make_node("ReduceSum", ["input", "input"], ["output"], name="r")], (1,), (1,)),
        "onnxruntime cannot run the float model: ",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_reductions_and_softmax__refused_with_one_line(case: str) -> None:
    model, message = REFUSED[case]
    rows = np.random.default_rng(0).normal(size=(32, *[d.dim_value for d in onnx.load_from_string(model).graph.input[0].type.tensor_type.shape.dim[1:]])).astype(np.float32)
    with pytest.raises(importer.ImportRefused) as e:
        importer.import_model(model, rows)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


@pytest.mark.parametrize(("op", "reference", "terms"), [("ReduceMean", np.mean, 1), ("ReduceSum", np.sum, 16), ("ReduceMax", np.max, 1)])
def test_reductions_within_rows__match_the_float_op(op: str, reference, terms: int) -> None:  # noqa: ANN001
    """Over a row's last two axes: a mean is the sum at scale / count, a sum keeps the scale, a
    max is exact; each, scaled back, is within the inputs' rounding of the float op."""
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    model = _graph([helper.make_node(op, ["input", "axes"], ["output"], name="m", keepdims=0)], (3, 4, 4), (3,), [axes])
    x = np.random.default_rng(1).normal(size=(64, 3, 4, 4)).astype(np.float32)
    imp = importer.import_model(model, x, batch=8)
    got = importer.run_integer(imp, x)[imp.model.graph.output[0].name] * float(imp.output_scale)
    step = float(np.max(imp.input_scales))
    assert np.max(np.abs(got - reference(x.astype(np.float64), axis=(2, 3)))) <= terms * step / 2 + 1e-9


def test_labels_that_fit_no_output__one_line(tmp_path: Path) -> None:
    """A regression's targets must match its outputs, one a column; nothing is written."""
    model, train, _ = _files(tmp_path, "mlp", "torchscript")
    x_train, _, _, _ = digits("mlp")
    np.savez(tmp_path / "bad.npz", X=x_train, y=np.stack([np.full(len(x_train), 0.5)] * 3, axis=1))
    out = tmp_path / "int.onnx"
    with pytest.raises(importer.ImportRefused, match="the labels have 3 value"):
        bring.import_model(str(model), str(tmp_path / "bad.npz"), str(out))
    assert not out.exists()
