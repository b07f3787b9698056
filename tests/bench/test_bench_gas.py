"""bench/bench_gas.py at a tiny step count: every call is counted as its own (cold) transaction,
and the same game replayed on a real anvil gives the same gas, receipt for receipt, within 3% in
total (the bench's own check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verifier.court import devnet

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gas__tiny_claim__cold_count_matches_anvil_receipts(tmp_path):
    if devnet.anvil_binary() is None:
        pytest.fail(f"anvil is not installed; {devnet.INSTALL_HINT}.")
    snap = tmp_path / "gas.json"
    argv = [sys.executable, str(ROOT / "bench" / "bench_gas.py"), "--steps", "20", "--arity", "4", "--skip-one-steps",
            "--anvil-steps", "20", "--anvil-arity", "4", "--snapshot", str(snap)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rep = json.loads(snap.read_text())

    cold = rep["cold_check"]
    assert cold["same_each_time"] and len(set(cold["cold_execution_gas"])) == 1
    assert cold["warm_execution_gas"][1] < cold["warm_execution_gas"][0]  # what titanoboa does by itself

    (game,) = rep["games"]
    assert game["arity"] == 4 and game["moves"][0]["call"] == "challenge"
    assert game["challenger_gas"] == sum(m["gas"] for m in game["moves"] if m["by"] == "challenger")

    a = rep["anvil"]
    assert a["transactions"] == len(a["txs"]) > 20
    assert abs(a["total_rel_diff"]) <= 0.03 and abs(a["challenger_rel_diff"]) <= 0.03
    assert all(abs(t["diff"]) <= 100 for t in a["txs"])  # only calldata bytes of other addresses differ
    assert a["challenger_boa"] == game["challenger_gas"]  # the same game at the same step count
    assert "within 3% of anvil's receipts: True" in run.stdout
