"""bench/bench_build_train.py at one epoch: both networks train in integers and in float32 on the
same batches, the report holds a timing and an accuracy for each, and the integer convnet is as
accurate as its float32 twin to within the goal's margin."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_build_train__one_epoch__reports_both_networks(tmp_path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_build_train", ROOT / "bench" / "bench_build_train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    report = tmp_path / "report.json"
    assert mod.main(["--epochs", "1", "--repeat", "1", "--report", str(report)]) == 0
    rep = json.loads(report.read_text())
    assert [r["network"] for r in rep["rows"]] == list(mod.LAYERS)
    for r in rep["rows"]:
        assert r["compiled"] and r["steps"] == -(-1347 // 32)
        assert r["trace_us_per_step"] > 0 and r["ort_us_per_step"] > 0 and r["inference_ratio"] > 0
        assert r["accuracy_integer"] > 85 and abs(r["accuracy_integer"] - r["accuracy_float32"]) <= mod.GOAL_GAP
    assert "convnet" in capsys.readouterr().out
