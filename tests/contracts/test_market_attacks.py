"""The market against sponsors and modelers who attack it (docs/SPEC.md 8.1, 8.5, 8.8).

Each test is one economic property of /work/shared/DESIGN.md's "Economic rules that must hold",
played by an adversary from its own accounts with raw calls: it opens the round (choosing its
features, labels, deadlines, rates and task terms within what `open_round` accepts), registers
its own models, and acts in whatever order suits it. Every test failed on the market before
these rules (datasets put at risk by any model naming them, sponsor-chosen rates and terms,
void refunding the sponsor after the reveals, void waiting for running tasks).
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from test_market import (  # noqa: F401  (market .. w are fixtures)
    DAY,
    E18,
    ECONOMICS,
    MAX_UINT,
    METAMODEL,
    POOL,
    SCORES,
    TASK_OPEN,
    TERMS,
    VALUES,
    World,
    availability,
    econ,
    events,
    market,
    market_deployer,
    people,
    suite,
    tasks,
    token,
    w,
    word,
)

#: the harshest rates the protocol lets a sponsor choose
HARSH = econ.Economics(factor_bps=1_000_000, cap_bps=econ.MAX_CAP_BPS, data_share_bps=0,
                       data_slash_bps=econ.MAX_DATA_SLASH_BPS,
                       bonus_bps=econ.MAX_CAP_BPS // econ.BONUS_CAP_DIVISOR)


@pytest.fixture
def attacker(token, market, tasks, deployer):
    """An account of the adversary's own, funded and approving the market and the registry."""
    a = boa.env.generate_address("attacker")
    token.mint(a, 10**9 * E18, sender=deployer)
    token.approve(market, MAX_UINT, sender=a)
    token.approve(tasks, MAX_UINT, sender=a)
    return a


def _settle_round(w, rid, scores, values):
    """Brings the round to settlement with these results and settles it; returns its Settled event."""
    w.ready_to_settle(rid, scores, values)
    w.market.settle(rid, sender=w.p.stranger)
    (settled,) = events(w.market, "Settled")
    return settled


def test_dataset_stake__never_at_risk_without_its_owners_opt_in(w, market, people, attacker):
    """A stake is only ever at risk in rounds its owner opted into: a sponsor who registers a
    model naming someone else's dataset, and picks features and labels that value it below 0,
    takes nothing from it."""
    victim = w.publish(people.providers[0], stake=1_000 * E18)
    mid = market.register_model("bafy-evil", [victim], 10 * E18, sender=attacker)
    w.models[mid] = (attacker, [victim])
    rid = w.open(economics=HARSH, sponsor=attacker, join=False)
    w.commit(rid, mid)
    w.to(rid, "commit")
    w.reveal(rid, mid, who=attacker)
    assert market.datasets(victim).reserved == 0
    _settle_round(w, rid, [0, 0, 0], [-10**6, 0])
    assert market.datasets(victim).stake == 1_000 * E18
    assert market.datasets(victim).reserved == 0


@pytest.mark.parametrize(
    "field_, value",
    [("data_slash_bps", 10_000), ("bonus_bps", 10_000), ("cap_bps", 10_000), ("data_slash_bps", econ.MAX_DATA_SLASH_BPS + 1),
     ("bonus_bps", ECONOMICS.cap_bps // econ.BONUS_CAP_DIVISOR + 1), ("cap_bps", econ.MAX_CAP_BPS + 1)],
)
def test_rates__bounded_by_the_protocol_not_the_sponsor(w, attacker, field_, value):
    """Slash and bonus rates are protocol bounds: a sponsor cannot slash a whole dataset, make
    the contribution bonus outweigh the own score, or put a model's whole stake at stake in
    one round."""
    with boa.reverts("market: a rate outside the protocol's bounds"):
        w.open(economics=econ.Economics(**{**vars(ECONOMICS), field_: value}), sponsor=attacker)


def test_sponsor__never_receives_slashed_stake(w, market, token, people, attacker):
    """Slashed stake never flows to the party who chose the round's inputs: every slash is
    burned, and the sponsor gets back its pool and unspent budget, not a token more."""
    mid = w.register(people.modelers[0], [], 400 * E18)
    rid = w.open(economics=HARSH, sponsor=attacker, pool=POOL)
    w.commit(rid, mid)
    w.to(rid, "commit")
    w.reveal(rid, mid)
    before, supply = token.balanceOf(attacker), token.totalSupply()
    settled = _settle_round(w, rid, [-20_000, 0, 0], [0, 0])
    got = token.balanceOf(attacker) - before
    assert got == POOL + w.rounds[rid].budget - 2 * TERMS[0]
    # the model lost the cap (25%), all of it burned
    lost = 100 * E18
    assert market.models(mid).stake == 300 * E18
    assert supply - token.totalSupply() == lost
    assert (settled.slashed, settled.burned, settled.paid) == (lost, lost, 0)


@pytest.mark.parametrize("loser_score", [0, -20_000])
def test_sponsor__refund_is_the_same_whoever_is_slashed(w, token, people, attacker, loser_score):
    """Slashed stake never flows to the party who chose the round's inputs, even where gains
    are paid: gains come out of the pool first, so the sponsor gets back the pool less the
    gains whether or not its labels slash another model (a slash that paid the gains instead
    of the pool would return the pool to the sponsor)."""
    winner = w.register(people.modelers[0], [], 400 * E18)
    loser = w.register(people.modelers[1], [], 400 * E18)
    rid = w.open(economics=HARSH, sponsor=attacker, pool=POOL)
    for mid in (winner, loser):
        w.commit(rid, mid)
    w.to(rid, "commit")
    for mid in (winner, loser):
        w.reveal(rid, mid)
    before = token.balanceOf(attacker)
    settled = _settle_round(w, rid, [20_000, loser_score, 0], [0, 0])
    gain = 100 * E18  # the cap: 25% of 400
    assert settled.paid == gain
    assert token.balanceOf(attacker) - before == POOL - gain + w.rounds[rid].budget - 2 * TERMS[0]
    assert settled.burned == settled.slashed == (100 * E18 if loser_score else 0)


TERMS_RANGE = "market: task terms outside the market's ranges"
BONDS = (500 * E18, econ.MIN_CHALLENGER_BOND)


@pytest.mark.parametrize(
    "terms, reason",
    [
        ((0, 2 * DAY, 2 * DAY, *BONDS, 4, 3 * DAY), "market: reward below 1 token or budget below 3 rewards"),
        ((10 * E18, 2 * DAY, 2 * DAY, *BONDS, 4, 2**64), TERMS_RANGE),  # claims taken for 2^64 s
        ((10 * E18, 30 * DAY, 2 * DAY, *BONDS, 4, 3 * DAY), TERMS_RANGE),  # a month-long window
        ((10 * E18, 2 * DAY, 30 * DAY, *BONDS, 4, 3 * DAY), TERMS_RANGE),  # a month-long chess clock
        ((10 * E18, 2 * DAY, 2 * DAY, 10**30, BONDS[1], 4, 3 * DAY), "market: bonds outside the protocol's bounds"),
    ],
)
def test_open_round__terms_that_freeze_stakes__revert(w, attacker, terms, reason):
    """Every task term has a protocol bound, so no round's tasks can hold its stakes for long
    nor go unclaimed for want of a reward or of a solver who can post the bond."""
    with boa.reverts(reason):
        w.open(terms=terms, sponsor=attacker, budget=1_000 * E18)


def test_open_round__zero_budget__reverts(w, attacker):
    with boa.reverts("market: reward below 1 token or budget below 3 rewards"):
        w.open(budget=0, sponsor=attacker)


def test_open_round__schedule_that_freezes_stakes__reverts(w, attacker):
    """Every phase has a protocol bound: a sponsor cannot set a deadline 2^64 seconds away."""
    now = boa.env.timestamp
    far = 2**64
    for sched in [(now + DAY, now + 2 * DAY, now + 3 * DAY, far), (now + DAY, now + 2 * DAY, far, far + 30 * DAY),
                  (far, far + DAY, far + 2 * DAY, far + 12 * DAY)]:
        with boa.reverts("market: a phase outside the protocol's bounds"):
            w.open(schedule=sched, sponsor=attacker)


def _commit_and_reveal(tasks, task_id: int, root: bytes, solver) -> int:  # noqa: ANN001
    salt = word("salt", task_id)
    cid = tasks.commit_claim(task_id, tasks.claim_commitment(task_id, root, solver, salt), sender=solver)
    tasks.reveal_claim(cid, root, salt, sender=solver)
    return cid


@pytest.mark.parametrize("withhold", [True, False])
def test_round__closes_within_a_bounded_time_whatever_its_tasks_do(w, market, tasks, people, attacker, withhold):
    """A round can always be voided or settled within MAX_COMMIT_PHASE + 2 MAX_PHASE +
    MAX_RESULT_PHASE of its opening: a task still claimed (a solver of the sponsor's that
    never finalizes, a game still running) does not hold the void, and every lock is released."""
    d, m = w.populate()
    opened = boa.env.timestamp
    rid = w.open(sponsor=attacker, join=False)
    for mid in m:
        w.commit(rid, mid)
    w.to(rid, "commit")
    for mid in m:
        w.reveal(rid, mid)
    w.to(rid, "reveal")
    w.post(rid, METAMODEL, who=attacker)
    _commit_and_reveal(tasks, market.task_of(rid, METAMODEL), word("anything"), attacker)  # never finalized
    if not withhold:
        w.reveal_labels(rid)
        w.post(rid, SCORES, who=attacker)
        _commit_and_reveal(tasks, market.task_of(rid, SCORES), word("anything"), attacker)
    w.to(rid, "labels" if withhold else "result")
    assert boa.env.timestamp - opened <= econ.MAX_COMMIT_PHASE + 2 * econ.MAX_PHASE + econ.MAX_RESULT_PHASE
    assert tasks.tasks(market.task_of(rid, METAMODEL)).state == TASK_OPEN
    market.void_round(rid, sender=people.stranger)
    for mid in m:
        assert market.models(mid).reserved == 0
    for did in d:
        assert market.datasets(did).reserved == 0
    w.assert_solvent()


def test_void__after_reveals_the_pool_never_returns_to_the_sponsor(w, market, token, people, attacker):
    """No free option: a sponsor who has seen the predictions and the labels, and lets the
    results go unrecorded (it posts no task), loses the pool to the revealed models."""
    _, m = w.populate()
    rid = w.open(sponsor=attacker, join=False)
    for mid in m:
        w.commit(rid, mid)
    w.to(rid, "commit")
    for mid in m:
        w.reveal(rid, mid)
    w.to(rid, "reveal")
    w.reveal_labels(rid)
    w.to(rid, "result")
    before = token.balanceOf(attacker)
    market.void_round(rid, sender=attacker)
    assert token.balanceOf(attacker) - before == w.rounds[rid].budget
    assert sum(token.balanceOf(people.modelers[i]) for i in range(3)) > 0


def test_void__withheld_labels_do_not_return_the_pool_through_a_large_model(w, market, token, people, attacker):
    """A sponsor who withholds the labels cannot take the pool back through a large model of
    its own: a void splits the pool evenly among the revealed models, whatever their stakes."""
    honest = w.register(people.modelers[0], [], 10 * E18)
    whale = market.register_model("bafy-whale", [], 100_000 * E18, sender=attacker)
    w.models[whale] = (attacker, [])
    rid = w.open(sponsor=attacker)
    w.commit(rid, honest)
    w.commit(rid, whale)
    w.to(rid, "commit")
    w.reveal(rid, honest)
    w.reveal(rid, whale, who=attacker)
    w.to(rid, "labels")
    before = token.balanceOf(attacker), token.balanceOf(people.modelers[0])
    market.void_round(rid, sender=attacker)
    assert token.balanceOf(attacker) - before[0] == POOL // 2 + w.rounds[rid].budget
    assert token.balanceOf(people.modelers[0]) - before[1] == POOL // 2


def test_open_round__window_longer_than_the_recording_time__reverts(w, attacker):
    """The schedule leaves every task's claim period, challenge window and both chess clocks
    between the labels and result deadlines."""
    now = boa.env.timestamp
    c = now + DAY
    terms = (TERMS[0], 7 * DAY, TERMS[2], *TERMS[3:])
    with boa.reverts("market: result phase shorter than a task needs"):
        w.open(terms=terms, schedule=(c, c + DAY, c + 2 * DAY, c + 2 * DAY + 10 * DAY), sponsor=attacker)


@pytest.mark.parametrize("challenger_bond", [10**30, 5 * E18 + 1, econ.MAX_CHALLENGER_BOND + 1])
def test_open_round__unchallengeable_tasks__revert(w, attacker, challenger_bond):
    """A round's tasks stay challengeable by any honest watchtower: the challenger bond is at
    most MAX_CHALLENGER_BOND and at most the solver bond."""
    solver_bond = 5 * E18 if challenger_bond == 5 * E18 + 1 else econ.MAX_SOLVER_BOND
    terms = (TERMS[0], TERMS[1], TERMS[2], solver_bond, challenger_bond, TERMS[5], TERMS[6])
    with boa.reverts("market: bonds outside the protocol's bounds"):
        w.open(terms=terms, sponsor=attacker)


def _scores_by_the_program(w, rid) -> list[int]:
    """The round's 2M scores as the real scores program (onnx_models/market.py) computes them
    from the revealed predictions, the stakes' weights and the labels."""
    from onnx_models.market import SCORES as KIND_SCORES
    from onnx_models.market import Shape, program
    from verifier.engine.program import load_program

    r = w.rounds[rid]
    shape = Shape(*r.shape)
    weights = np.zeros(shape.models, np.int64)
    weights[: len(r.models)] = [econ.weight(r.stake[mid]) for mid in r.models]  # every model revealed
    preds = [np.frombuffer(r.preds[mid], np.int8) for mid in r.models]
    labels = np.frombuffer(r.labels, np.int8)
    (out,) = load_program(program(KIND_SCORES, shape, weights=weights, labels=labels, predictions=preds)).run().values()
    return [int(v) for v in out]


def test_sponsor_who_knows_the_labels__cannot_lower_an_honest_models_payout(w, market, token, people, attacker):
    """Issue 11.7: no participant who knows the outcome in advance can lower another model's
    payout below what that model's own predictions earn against it. The sponsor commits a
    model that predicts its own labels perfectly, with the largest stake the round allows;
    before this rule payouts were leave-one-out scores only, the honest model's turned
    negative against the perfect metamodel and it was slashed, the pool flowing to the
    sponsor's model. Now the honest model is paid its own score's return; only its bonus
    (never negative) is gone."""
    honest = w.register(people.modelers[0], [], 100 * E18)
    perfect = market.register_model("bafy-oracle", [], 10**6 * E18, sender=attacker)
    w.models[perfect] = (attacker, [])
    rid = w.open(economics=HARSH, sponsor=attacker)
    labels = np.frombuffer(w.rounds[rid].labels, np.int8).astype(np.int64)
    # the honest model: modest confidence, the sign right on all rows but one
    mine = 40 * np.where(labels >= 0, 1, -1)
    mine[3] = -mine[3]
    oracle = 100 * labels  # the sponsor's: its own labels
    mine, oracle = mine.astype(np.int8).tobytes(), oracle.astype(np.int8).tobytes()
    w.commit(rid, honest, preds=mine)
    with boa.reverts("market: stake above the round's maximum"):
        market.commit(rid, perfect, word("c"), market.rounds(rid).max_stake + 1, sender=attacker)
    w.commit(rid, perfect, preds=oracle, who=attacker)
    w.to(rid, "commit")
    w.reveal(rid, honest)
    w.reveal(rid, perfect, who=attacker)
    scores = _scores_by_the_program(w, rid)
    own, loo = scores[0], scores[3]
    assert own > 0 > loo  # the attack works against a leave-one-out payout ...
    before = token.balanceOf(people.modelers[0])
    stake = market.model_entries(rid, honest).stake
    settled = _settle_round(w, rid, scores, [0, 0])
    earned = token.balanceOf(people.modelers[0]) - before
    own_return = min(max(own * HARSH.factor_bps // econ.BPS, -HARSH.cap_bps), HARSH.cap_bps)
    # ... but the honest model earns exactly its own score's return, unscaled
    assert earned == stake * own_return // econ.BPS > 0
    assert market.models(honest).stake == 100 * E18
    assert settled.slashed == 0 and settled.paid <= w.rounds[rid].pool


@pytest.mark.parametrize("pool", [10**15, 7 * E18, POOL])
def test_void__pays_every_revealed_model_at_least_its_best_settlement(w, market, token, people, attacker, pool):
    """A sponsor who withholds the labels cannot pay a model less than settlement could have:
    every reservation is at most max_stake, so the largest gain (cap plus bonus) is at most
    pool / M, and a void splits the pool among at most M revealed models."""
    mids = [w.register(people.modelers[i], [], 10**6 * E18) for i in range(3)]
    rid = w.open(economics=HARSH, sponsor=attacker, pool=pool)
    for mid in mids:
        w.commit(rid, mid)
    w.to(rid, "commit")
    for mid in mids:
        w.reveal(rid, mid)
    best = market.rounds(rid).max_stake * (HARSH.cap_bps + HARSH.bonus_bps) // econ.BPS
    assert best > 0
    w.to(rid, "labels")
    before = [token.balanceOf(people.modelers[i]) for i in range(3)]
    market.void_round(rid, sender=attacker)
    for i in range(3):
        assert token.balanceOf(people.modelers[i]) - before[i] >= best
