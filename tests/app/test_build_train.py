"""`bisectml build train` and `build export`: a model description and the user's rows become a
fixed-point training program the engine traces; the trained weights come back as a float32 ONNX
model that onnxruntime runs, as accurate as the same network and schedule trained in float32."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.model_selection import train_test_split
from typer.testing import CliRunner

from cli import app
from onnx_models import train
from onnx_models.runtime import run_program_onnxruntime

runner = CliRunner()
MLP = {
    "layers": [{"type": "linear", "out": 32}, {"type": "relu"}, {"type": "linear", "out": 10}],
    "loss": "softmax_cross_entropy",
    "optimizer": {"type": "sgd", "lr": 0.5, "momentum": 0.5},
    "schedule": {"epochs": 10, "batch": 32},
}


CNN = {
    "layers": [
        {"type": "conv2d", "out_channels": 8, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"}, {"type": "linear", "out": 10},
    ],
    "loss": "softmax_cross_entropy",
    "optimizer": {"type": "sgd", "lr": 0.25, "momentum": 0.5},
    "schedule": {"epochs": 10, "batch": 32},
}  # fmt: skip


@pytest.fixture(scope="module")
def digits(tmp_path_factory):  # noqa: ANN201
    d = tmp_path_factory.mktemp("digits")
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    np.savez(d / "train.npz", X=xtr, y=ytr)
    np.savez(d / "test.npz", X=xte, y=yte)
    np.savez(d / "train_images.npz", X=xtr.reshape(-1, 8, 8), y=ytr)
    np.savez(d / "test_images.npz", X=xte.reshape(-1, 8, 8), y=yte)
    (d / "mlp.json").write_text(json.dumps(MLP))
    (d / "cnn.json").write_text(json.dumps(CNN))
    return d, (xtr, ytr, xte, yte)


def _ok(res) -> dict:  # noqa: ANN001
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_digits_mlp__trained_in_integers__matches_float32_within_1_5_points(digits) -> None:
    d, (xtr, ytr, xte, yte) = digits
    built = _ok(runner.invoke(app, ["build", "train", str(d / "mlp.json"), "--data", str(d / "train.npz"),
                                    "--out", str(d / "train.onnx"), "--json"]))  # fmt: skip
    assert built["steps"] == -(-10 * len(xtr) // 32) and built["layers"] == ["linear(32)", "relu", "linear(10)"]
    assert built["compiled"] and built["compile_note"] is None  # the step is proven exact in float64
    exported = _ok(runner.invoke(app, ["build", "export", str(d / "train.onnx"), "--held-out", str(d / "test.npz"),
                                       "--out", str(d / "trained.onnx"), "--json"]))  # fmt: skip
    integer = exported["held_out"]["accuracy"]
    # the same network, initial weights, batches and schedule in float32, through onnxruntime
    spec = train.parse_spec(MLP)
    state = run_program_onnxruntime(train.build_program(spec, xtr, ytr, fixed=False))
    info = train.program_info(onnx.load(d / "train.onnx"))
    twin = train.export_float_model(info, {k: np.asarray(v, np.float64) * 2**spec.frac_bits for k, v in state.items()})
    import onnxruntime as ort

    label = ort.InferenceSession(twin.SerializeToString()).run(["label"], {"x": xte.astype(np.float32)})[0]
    float32 = float(np.mean(label == yte) * 100)
    assert integer >= 94.0 and integer >= float32 - 1.5, (integer, float32)
    # the exported file is what was measured
    again = ort.InferenceSession(str(d / "trained.onnx")).run(["label"], {"x": xte.astype(np.float32)})[0]
    assert float(np.mean(again == yte) * 100) == integer


def test_digits_convnet__trained_in_integers__reaches_97_within_1_5_points_of_float32(digits) -> None:
    """Conv 3x3 (8 channels), ReLU, 2x2 max pool, linear on the 8x8 digit images, 10 epochs."""
    d, (xtr, ytr, xte, yte) = digits
    built = _ok(runner.invoke(app, ["build", "train", str(d / "cnn.json"), "--data", str(d / "train_images.npz"),
                                    "--out", str(d / "cnn_train.onnx"), "--json"]))  # fmt: skip
    assert built["layers"] == ["conv2d(8)", "relu", "maxpool2d", "flatten", "linear(10)"]
    assert built["compiled"], built["compile_note"]
    exported = _ok(runner.invoke(app, ["build", "export", str(d / "cnn_train.onnx"), "--held-out",
                                       str(d / "test_images.npz"), "--out", str(d / "cnn.onnx"), "--json"]))  # fmt: skip
    integer = exported["held_out"]["accuracy"]
    spec = train.parse_spec(CNN)
    state = run_program_onnxruntime(train.build_program(spec, xtr.reshape(-1, 8, 8), ytr, fixed=False))
    info = train.program_info(onnx.load(d / "cnn_train.onnx"))
    twin = train.export_float_model(info, {k: np.asarray(v, np.float64) * 2**spec.frac_bits for k, v in state.items()})
    import onnxruntime as ort

    label = ort.InferenceSession(twin.SerializeToString()).run(["label"], {"x": xte.reshape(-1, 8, 8).astype(np.float32)})[0]
    float32 = float(np.mean(label == yte) * 100)
    assert integer >= 97.0 and integer >= float32 - 1.5, (integer, float32)
    graph = onnx.load(d / "cnn.onnx").graph
    assert [n.op_type for n in graph.node if n.op_type in ("Conv", "MaxPool", "Gemm")] == ["Conv", "MaxPool", "Gemm"]


def test_flat_rows_with_input_shape__same_program_and_a_model_that_takes_flat_rows(digits, tmp_path) -> None:
    """CSV-style flat rows (64 features) with "input_shape": [8, 8] give the very program the
    image-shaped rows give, and the exported model takes the flat rows as they are kept."""
    d, (xtr, ytr, xte, yte) = digits
    (tmp_path / "flat.json").write_text(json.dumps({**CNN, "input_shape": [8, 8], "schedule": {"steps": 40, "batch": 32}}))
    (tmp_path / "shaped.json").write_text(json.dumps({**CNN, "schedule": {"steps": 40, "batch": 32}}))
    flat = _ok(runner.invoke(app, ["build", "train", str(tmp_path / "flat.json"), "--data", str(d / "train.npz"),
                                   "--out", str(tmp_path / "flat.onnx"), "--json"]))  # fmt: skip
    shaped = _ok(runner.invoke(app, ["build", "train", str(tmp_path / "shaped.json"), "--data", str(d / "train_images.npz"),
                                     "--out", str(tmp_path / "shaped.onnx"), "--json"]))  # fmt: skip
    assert flat["program_id"] == shaped["program_id"]
    out = _ok(runner.invoke(app, ["build", "export", str(tmp_path / "flat.onnx"), "--held-out", str(d / "test.npz"),
                                  "--out", str(tmp_path / "flat_model.onnx"), "--json"]))  # fmt: skip
    model = onnx.load(tmp_path / "flat_model.onnx")
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1:] == [64]
    assert out["held_out"]["accuracy"] > 80
    (tmp_path / "bad.json").write_text(json.dumps({**CNN, "input_shape": [7, 7]}))
    res = runner.invoke(app, ["build", "train", str(tmp_path / "bad.json"), "--data", str(d / "train.npz"),
                              "--out", str(tmp_path / "bad.onnx")])  # fmt: skip
    assert res.exit_code != 0 and "input_shape [7, 7] needs 49" in res.output and not (tmp_path / "bad.onnx").exists()


def test_same_description_and_rows__same_program(digits, tmp_path) -> None:
    d, _ = digits
    ids = [
        _ok(runner.invoke(app, ["build", "train", str(d / "mlp.json"), "--data", str(d / "train.npz"),
                                "--out", str(tmp_path / f"p{i}.onnx"), "--json"]))["program_id"]  # fmt: skip
        for i in range(2)
    ]
    assert ids[0] == ids[1]


def test_regression_with_mse__beats_predicting_the_mean(tmp_path) -> None:
    x, y = load_diabetes(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0)
    np.savez(tmp_path / "train.npz", X=xtr, y=ytr)
    np.savez(tmp_path / "test.npz", X=xte, y=yte)
    spec = {"layers": [{"type": "linear", "out": 16}, {"type": "relu"}, {"type": "linear", "out": 1}],
            "loss": "mse", "task": "regression", "optimizer": {"lr": 0.125}, "schedule": {"epochs": 20, "batch": 16}}  # fmt: skip
    (tmp_path / "reg.json").write_text(json.dumps(spec))
    _ok(runner.invoke(app, ["build", "train", str(tmp_path / "reg.json"), "--data", str(tmp_path / "train.npz"),
                            "--out", str(tmp_path / "reg.onnx"), "--json"]))  # fmt: skip
    out = _ok(runner.invoke(app, ["build", "export", str(tmp_path / "reg.onnx"), "--held-out", str(tmp_path / "test.npz"),
                                  "--out", str(tmp_path / "reg_trained.onnx"), "--json"]))  # fmt: skip
    assert out["held_out"]["mae"] < 0.9 * float(np.mean(np.abs(yte - ytr.mean())))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"layers": [{"type": "batchnorm"}]}, "not supported yet"),
        ({"layers": [{"type": "conv2d", "out_channels": 4}, {"type": "linear", "out": 10}]}, "rows shaped (H, W)"),
        ({"layers": [{"type": "attention"}]}, "supported: linear"),
        ({"schedule": {"steps": 10, "batch": 24}}, "power of two"),
        ({"optimizer": {"lr": 0.3}}, "power of two"),
        ({"shape": 3}, "unknown key 'shape'"),
    ],
)
def test_bad_description__one_line_error_and_nothing_written(digits, tmp_path, change, says) -> None:
    d, _ = digits
    (tmp_path / "m.json").write_text(json.dumps({**MLP, **change}))
    res = runner.invoke(app, ["build", "train", str(tmp_path / "m.json"), "--data", str(d / "train.npz"), "--out", str(tmp_path / "p.onnx")])
    assert res.exit_code != 0 and says in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "p.onnx").exists()


def test_unlabelled_rows_broken_json_or_foreign_program__one_line_error(digits, tmp_path) -> None:
    d, (xtr, *_) = digits
    np.save(tmp_path / "x.npy", xtr)
    (tmp_path / "broken.json").write_text("{layers: ")
    cases = [
        (["build", "train", str(d / "mlp.json"), "--data", str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.onnx")], "has no labels"),
        (["build", "train", str(tmp_path / "broken.json"), "--data", str(d / "train.npz"), "--out", str(tmp_path / "p.onnx")], "is not JSON"),
        (["build", "export", "onnx_models/mlp_train.onnx", "--out", str(tmp_path / "p.onnx")], "build it first"),
    ]
    for argv, says in cases:
        res = runner.invoke(app, argv)
        assert res.exit_code != 0 and says in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert not (tmp_path / "p.onnx").exists()
