"""bench/bench_loop_charge.py, a short run: under the loop's participation charge no guesser
gains and the skilled model does, without it the guessers gain (SPEC 12.5), and the report
carries both rules' figures for the same periods."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_loop_charge", ROOT / "bench" / "bench_loop_charge.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_bench_loop_charge__goals_hold_with_the_charge_and_not_without(tmp_path):
    from verifier.app.demo_loop import TERMS

    out = tmp_path / "charge.json"
    assert _bench().main(["--periods", "20000", "--seed", "2", "--report", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["periods"] == 20_000 and all(rep["goals"].values())
    assert rep["goals_without_charge"]["no guesser gains"] is False
    models = [v for pair in rep["result"].values() for v in pair.values()]
    assert len(models) == 6
    for v in models:  # the same periods under both rules: the charge is the whole difference
        assert abs(v["mean_return_without_charge_bps"] - v["mean_return_bps"] - TERMS.charge_bps) <= 0.2
