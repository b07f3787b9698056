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
