"""bench/bench_rounds.py, a few rounds: it runs over the real contracts, its invariants hold
(it returns 0 only if funds held == owed() after every transaction, every settlement is SPEC 8.5
and no honest party lost stake) and the report carries every goal it is read for."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_rounds", ROOT / "bench" / "bench_rounds.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_bench_rounds__three_rounds__invariants_and_goals(tmp_path):
    out = tmp_path / "rounds.json"
    # one honest round, one perfect-knowledge round (with its control), a void round, and a void
    # round whose sponsor filled the slots left with its own models
    assert _bench().main(["--rounds", "4", "--rows", "64", "--seed", "3", "--check", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["rounds"] == {"honest": 1, "attack": 1, "control": 1, "void": 1, "void-sybils": 1}
    assert rep["funds_held_vs_owed"]["checked_after_every_transaction"] and rep["funds_held_vs_owed"]["unequal"] == 0
    assert rep["settlements_match_spec_8_5"] is True
    assert rep["goals_failed"] == []
    floor = rep["own_score_floor"]
    assert floor["models_checked"] > 0 and floor["below_floor"] == 0 and floor["goal_never_below"] == "pass"
    attack = rep["perfect_knowledge_sponsor"]
    assert attack["rounds"] == 1 and attack["goal_sponsor_gains_nothing"] == "pass"
    assert attack["sponsor_net_without_compute_bond_max"] <= 0
    assert attack["skilled_below_own_floor_with_sponsor_models"] == 0
    assert {"skilled_payout_with_sponsor_models_mean_bond", "skilled_payout_without_sponsor_models_mean_bond"} <= set(attack)
    void = rep["void"]
    assert void["models"] > 0 and void["goal_void_at_least_best"] == "pass"
    assert void["models_void_below_best"] == void["models_void_below_settlement"] == 0
    assert void["goal_withholder_gains_nothing"] == "pass" and void["withholding_sponsor_with_sybils_net_max_bond"] <= 0
    assert {"mean_return_bps", "mean_bonus_bps"} <= set(rep["zero_skill"])
    honest = rep["honest_parties_never_lose_stake"]
    assert honest["skilled_models_positive_own"]["slashed"] == honest["datasets_non_negative_value"]["slashed"] == 0
    for kind in ("skilled modeler", "zero-skill modeler", "copier", "non-revealer", "honest provider",
                 "inverted-label provider", "honest sponsor", "perfect-knowledge sponsor", "withholding sponsor"):
        assert {"total_net_bond", "mean_net_bond_per_round", "net_per_bond_at_risk"} <= set(rep["per_agent_type"][kind])
    # a slot griefer forfeits the round's min_stake, burned, every round it holds a slot silently
    griefer = rep["per_agent_type"]["non-revealer"]
    assert griefer["total_net_bond"] == -griefer["agent_rounds"] * rep["economics"]["min_stake_bond"] < 0


def test_bench_rounds__negative_bonus_mutant__exits_1(tmp_path):
    """A Market.vy whose contribution bonus can be negative (the clip at 0 deleted): the bench's
    own computation of SPEC 8.5 disagrees with the contract's payments and it exits 1."""
    contracts = tmp_path / "contracts"
    shutil.copytree(ROOT / "contracts", contracts)
    src = (contracts / "Market.vy").read_text()
    clipped = "max(scores[loo + i] * factor // 10_000, 0)"
    assert src.count(clipped) == 1
    (contracts / "Market.vy").write_text(src.replace(clipped, "scores[loo + i] * factor // 10_000"))
    env = {**os.environ, "BISECTML_CONTRACTS_DIR": str(contracts), "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_rounds.py"), "--rounds", "1", "--rows", "64",
         "--out", str(tmp_path / "rounds.json")],
        check=False, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "INVARIANT BROKEN" in run.stdout and "SPEC 8.5 says" in run.stdout
