"""bench/bench_checkpoints.py, small: its plans meet the disk goal for a million steps, and its
measured trace keeps its files within the budget with the same final root as dense checkpoints
(it returns 1 with --check otherwise)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_checkpoints__small_run__goals_met(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_checkpoints", ROOT / "bench" / "bench_checkpoints.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--steps", "700", "--budget-files", "3", "--check"]) == 0
    out = capsys.readouterr().out
    assert "MLP 784-1024-10" in out and "GOAL MISSED" not in out and "DIFFER" not in out
