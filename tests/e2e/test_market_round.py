"""A full market round on anvil, with the solver and the watchtower as separate processes.

Two data providers (one of them noise) and three modelers (one of them worse than the
metamodel) stake; the modelers commit and reveal; the sponsor reveals the labels; the round's
three programs are posted as tasks. A cheating solver claims all three first with wrong results;
the watchtower disputes and wins each game; an honest solver then claims, its claims finalize,
the results are recorded and the round is settled with the `bisectml` command. The market holds
exactly what it owes after every phase, and the payouts are the ones docs/SPEC.md 8.5 gives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _e2e import CLOCK, ROOT, WINDOW, running, wait_until
from onnx_models.market_data import demo_round
from verifier.market import economics
from verifier.court.chain import ChainError
from verifier.market.content import ContentStore
from verifier.market.client import KINDS, METAMODEL, SCORES, VALUES, MarketClient
from verifier.court.states import CHALLENGE_COLLECTED, CLAIM_REJECTED, TASK_DONE

DAY = 86_400
TOKEN = 10**18
SPONSOR, CLEAN, NOISE, MODELERS, SOLVER, TOWER, CHEATER = 0, 1, 2, (3, 4, 5), 6, 7, 8


def _client(suite, index: int, store: ContentStore) -> MarketClient:
    return MarketClient(suite.chain.with_key(suite.anvil.keys[index]), suite.court.deployment, store)


def _holds_what_it_owes(m: MarketClient) -> None:
    bal = m.token.functions.balanceOf(m.market.address).call()
    assert bal == m.market.functions.owed().call(), "the market's balance differs from what it owes"


def _cli(suite, tmp: Path, key: int, *args: str) -> dict:
    env = {**os.environ, "BISECTML_HOME": str(tmp)}
    argv = [sys.executable, "-m", "cli", *args, "--rpc-url", suite.anvil.url, "--key-file", str(suite.key_file(key)), "--json"]
    out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_full_round_with_daemons(suite, fleet, tmp_path):
    for i in (8, 9):
        suite.mint(suite.address(i))
    store = ContentStore(tmp_path / "content")
    data = demo_round()
    shape = data.shape
    sponsor = _client(suite, SPONSOR, store)

    # providers publish and stake; modelers register on the datasets they trained on
    ds = [_client(suite, k, store).publish_dataset(x, y, 100 * TOKEN)["dataset_id"]
          for k, (x, y) in zip((CLEAN, NOISE), data.datasets)]  # fmt: skip
    modelers = [_client(suite, k, store) for k in MODELERS]
    models = [m.register_model([ds[i] for i in uses], 200 * TOKEN)["model_id"] for m, uses in zip(modelers, data.model_datasets)]
    _holds_what_it_owes(sponsor)

    now = suite.now()
    schedule = {"commit_deadline": now + DAY, "reveal_deadline": now + 2 * DAY, "labels_deadline": now + 3 * DAY,
                "result_deadline": now + 30 * DAY}  # fmt: skip
    economics_ = {"factor_bps": 10_000, "cap_bps": 2_500, "data_share_bps": 2_000, "data_slash_bps": 1_000, "bonus_bps": 500}
    terms = {"reward": 5 * TOKEN, "window": WINDOW, "clock": CLOCK, "solver_bond": 500 * TOKEN,
             "challenger_bond": 250 * TOKEN, "arity": 8, "duration": 7 * DAY}  # fmt: skip
    pool = 300 * TOKEN  # at 25% + 5% return every 200-BOND model of the 4 slots fits it
    rid = sponsor.open_round(shape, schedule, economics_, terms, data.features, data.labels, pool, 6 * 5 * TOKEN)["round_id"]
    _holds_what_it_owes(sponsor)
    # each provider puts its dataset in the round: no round takes a stake without its owner
    with pytest.raises(ChainError, match="market: "):
        modelers[0].join_round(rid, ds[0])  # not the owner
    for k, d in zip((CLEAN, NOISE), ds):
        _client(suite, k, store).join_round(rid, d)
    _holds_what_it_owes(sponsor)

    for m, mid, p in zip(modelers, models, data.predictions):
        m.commit(rid, mid, p)
    with pytest.raises(ChainError, match="market: "):
        modelers[0].reveal(rid, models[0])  # before the commit deadline
    with pytest.raises(ChainError, match="amount exceeds the free stake"):
        modelers[0].withdraw_model(models[0], TOKEN)
    suite.anvil.advance(DAY)
    for m, mid in zip(modelers, models):
        m.reveal(rid, mid)
    suite.anvil.advance(DAY)
    sponsor.reveal_labels(rid)
    tasks = {k: sponsor.post_task(rid, k)["task_id"] for k in (METAMODEL, SCORES, VALUES)}
    _holds_what_it_owes(sponsor)

    content = ["--content-dir", str(store.root)]
    cheater = fleet("solver", CHEATER, [], "cheater", cheat="final-root", extra=content)
    tower = fleet("challenger", TOWER, [], "tower", extra=content)
    solver = fleet("solver", SOLVER, [], "solver", extra=content)
    with running(cheater):
        wait_until("the cheater's three claims", lambda: all(suite.task(t).claim_id for t in tasks.values()), 300, [cheater])
        bad_claims = {k: suite.task(t).claim_id for k, t in tasks.items()}
        assert all(suite.claim(c).solver == suite.address(CHEATER) for c in bad_claims.values())
        # the cheater keeps defending its claims; every one is disputed and rejected, and the
        # honest solver claims each task again
        with running(tower, solver):
            procs = [cheater, tower, solver]
            wait_until("the wrong claims rejected", lambda: all(suite.claim(c).state == CLAIM_REJECTED for c in bad_claims.values()), 400, procs)
            wait_until("honest claims", lambda: all(suite.task(t).claim_id not in (0, bad_claims[k]) for k, t in tasks.items()), 300, procs)
            wait_until("the tower to check them", lambda: len(tower.events("claim_ok")) >= 3, 300, procs)
            suite.anvil.advance(WINDOW + 1)
            wait_until("the tasks done", lambda: all(suite.task(t).state == TASK_DONE for t in tasks.values()), 300, procs)
            wait_until("the prizes collected", lambda: all(ch.state == CHALLENGE_COLLECTED for _, ch in suite.challenges()), 120, procs)
    for k, t in tasks.items():
        assert suite.claim(suite.task(t).claim_id).solver == suite.address(SOLVER), KINDS[k]
    assert not tower.events("game_lost") and len(tower.events("game_won")) >= 3
    _holds_what_it_owes(sponsor)

    # anyone records the results and settles, through the command line
    for k in KINDS:
        _cli(suite, tmp_path, 9, "round", "record", str(rid), k, "--content-dir", str(store.root))
    _holds_what_it_owes(sponsor)
    m = sponsor.market.functions
    scores = [int(v) for v in m.scores(rid).call()]
    values = [int(v) for v in m.values(rid).call()]
    stakes_before = [int(sponsor.model(i)["stake"]) for i in models]
    expected = _expected_settlement(sponsor, rid, scores, values, economics_, pool)
    result = _cli(suite, tmp_path, 9, "round", "settle", str(rid))
    _holds_what_it_owes(sponsor)
    with pytest.raises(ChainError, match="already settled"):
        sponsor.settle(rid)

    # the model on noise data (C) predicts worse than A and adds nothing to the others'
    # metamodel: it earns its own score's return only, below A's with its bonus; the noise
    # dataset earns less than the clean one
    m_slots = len(scores) // 2
    assert scores[2] < scores[0] and scores[m_slots + 2] < 0 < scores[m_slots]
    stakes_after = [int(sponsor.model(i)["stake"]) for i in models]
    paid = {(int(p["kind"]), int(p["id"])): int(p["amount"]) for p in result["payments"]}
    assert paid[(1, models[0])] > paid.get((1, models[2]), 0)
    # only losses come out of stakes
    assert [b + min(paid.get((1, i), 0), 0) for b, i in zip(stakes_before, models)] == stakes_after
    want = {k: v for k, v in expected.items() if v}
    assert {k: v for k, v in paid.items() if k[0] != 2} == want  # exactly SPEC 8.5 (verifier.market.economics)
    assert paid.get((0, ds[0]), 0) > paid.get((0, ds[1]), 0)
    assert values[0] > values[1]
    # withdrawals are open again
    modelers[0].withdraw_model(models[0], TOKEN)
    _holds_what_it_owes(sponsor)


def _expected_settlement(m: MarketClient, rid: int, scores: list[int], values: list[int], econ: dict, pool: int) -> dict:
    """(kind, id) -> signed amount, from the chain's state before settling and SPEC 8.5's twin."""
    f = m.market.functions
    ds_ids = [int(d) for d in f.round_datasets(rid).call()]
    d_entries = [f.dataset_entries(rid, d).call() for d in ds_ids]  # slot, reserved, active, at_risk
    datasets = [
        economics.DatasetEntry(int(e[3]), int(m._dataset_state(d)["stake"]), values[int(e[0])], bool(e[2]))
        for d, e in zip(ds_ids, d_entries)
    ]
    slot_of = {d: int(e[0]) for d, e in zip(ds_ids, d_entries)}
    model_ids = [int(i) for i in f.round_models(rid).call()]
    models = []
    m_slots = len(scores) // 2  # own scores, then leave-one-out scores
    for i, mid in enumerate(model_ids):
        e = f.model_entries(rid, mid).call()  # slot, commitment, stake, state, locked
        info = m.model(mid)
        models.append(economics.ModelEntry(int(e[2]), int(info["stake"]), scores[i], int(e[3]) == 2,
                                           tuple(slot_of[int(d)] for d in info["datasets"] if int(d) in slot_of),
                                           contribution=scores[m_slots + i]))  # fmt: skip
    s = economics.payouts(models, datasets, economics.Economics(**econ), pool)
    out = {(1, mid): v for mid, v in zip(model_ids, s.model_payouts)}
    out |= {(0, d): s.dataset_payouts[slot_of[d]] for d in ds_ids}
    return out
