"""`bisectml import` and `bisectml infer`: a user's float model to a traced program, one-line
refusals, and nothing written when a check fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "onnx_models"))

from _imported import exported, split

from cli import app

runner = CliRunner()


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    x_train, x_test, y_train, y_test = split("breast_cancer")
    model = tmp_path / "model.onnx"
    model.write_bytes(exported("breast_cancer", "mlp"))
    np.savez(tmp_path / "train.npz", X=x_train, y=y_train)
    np.savez(tmp_path / "test.npz", X=x_test[:30], y=y_test[:30])
    return model, tmp_path / "train.npz", tmp_path / "test.npz"


def test_import_infer_trace__from_a_float_model_to_roots(tmp_path: Path) -> None:
    model, train, test = _files(tmp_path)
    res = runner.invoke(app, ["import", str(model), "--calibration", str(train), "--held-out", str(test),
                              "--out", str(tmp_path / "m.int.onnx"), "--max-loss", "1", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["held_out"]["loss"] <= 1 and report["held_out"]["agreement"] >= 95
    assert report["worst_layer"] in {r["tensor"] for r in report["held_out"]["layers"]}
    res = runner.invoke(
        app, ["infer", str(tmp_path / "m.int.onnx"), "--data", str(test), "--out", str(tmp_path / "p.onnx"), "--json"]
    )
    assert res.exit_code == 0, res.output
    built = json.loads(res.stdout)
    assert built["rows"] == 30 and built["steps"] == 1
    res = runner.invoke(app, ["trace", str(tmp_path / "p.onnx"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["program_id"] == built["program_id"]


def test_import__max_loss_exceeded_writes_nothing(tmp_path: Path) -> None:
    model, train, test = _files(tmp_path)
    # a loss of -1 point is more than any import can meet: the check must refuse, not write
    res = runner.invoke(app, ["import", str(model), "--calibration", str(train), "--held-out", str(test),
                              "--out", str(tmp_path / "m.int.onnx"), "--max-loss", "-1"])  # fmt: skip
    assert res.exit_code != 0
    assert "more than --max-loss -1.0" in res.output and "Nothing was written" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "m.int.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "test.npz", "train.npz"]  # no temporary file either


def test_import__refusals_are_one_line(tmp_path: Path) -> None:
    model, train, _ = _files(tmp_path)
    (tmp_path / "broken.onnx").write_bytes(b"\x00garbage")
    cases = [
        (
            ["import", str(tmp_path / "broken.onnx"), "--calibration", str(train), "--out", str(tmp_path / "o.onnx")],
            "cannot read the model",
        ),
        (
            ["import", str(model), "--calibration", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o.onnx")],
            "no data file",
        ),
        (
            ["infer", str(model), "--data", str(train), "--out", str(tmp_path / "o.onnx")],
            "not written by `bisectml import`",
        ),
    ]
    for args, message in cases:
        res = runner.invoke(app, args)
        assert res.exit_code != 0 and message in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
        assert not (tmp_path / "o.onnx").exists()


def test_infer__labelled_rows__the_final_state_counts_the_correct_predictions(tmp_path: Path) -> None:
    """With labels in the data, the program's state also counts the rows it got right, so its
    final root commits to a verified accuracy; --no-labels leaves the count out; labels it
    cannot compare are one-line refusals that write nothing."""
    from onnx_models import importer
    from verifier.engine.program import load_program
    from verifier.engine.trace import Trace

    model, train, test = _files(tmp_path)
    int_model = tmp_path / "m.int.onnx"
    assert runner.invoke(app, ["import", str(model), "--calibration", str(train), "--out", str(int_model)]).exit_code == 0
    x_train, x_test, _, y_test = split("breast_cancer")
    y = y_test[:30].copy()
    y[:4] = 1 - y[:4]  # four flipped labels: the count is not simply every row
    np.savez(tmp_path / "labelled.npz", X=x_test[:30], y=y)
    res = runner.invoke(app, ["infer", str(int_model), "--data", str(tmp_path / "labelled.npz"), "--out", str(tmp_path / "p.onnx"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["labels"] is True
    program = load_program(tmp_path / "p.onnx")
    with Trace(program) as trace:
        trace.run()
        final = trace.final_state()
    imp = importer.import_model(model.read_bytes(), x_train)
    predicted = importer.run_integer(imp, x_test[:30])[imp.model.graph.output[0].name].reshape(-1)
    assert int(final["correct"]) == int(np.sum(predicted == y)) and np.array_equal(final["outputs"][:30].reshape(-1), predicted)
    res = runner.invoke(app, ["infer", str(int_model), "--data", str(tmp_path / "labelled.npz"), "--out", str(tmp_path / "q.onnx"), "--no-labels", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["labels"] is False
    assert "correct" not in load_program(tmp_path / "q.onnx").state_names
    for bad, message in ((np.full(30, 0.5), "not whole numbers"), (np.full(30, -1), "labels outside")):
        np.savez(tmp_path / "bad.npz", X=x_test[:30], y=bad)
        res = runner.invoke(app, ["infer", str(int_model), "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "r.onnx")])
        assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not (tmp_path / "r.onnx").exists()
