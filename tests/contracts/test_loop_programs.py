"""A trading period with the loop's real programs (docs/SPEC.md 12.5): the market's metamodel and
scores programs for M models and one row, built by onnx_models/market.py and run by the engine.
The state the loop posts for each task is the program's own initial state with the period's
weights, predictions and label, so an honest solver's trace ends in the root the loop then
records from; the recorded metamodel sizes the trade and the recorded scores pay the models as
verifier/market/loop.py says."""

from __future__ import annotations

import boa
import numpy as np
import pytest
from _court import CONTRACTS
from _loop import E18, STAKE, TERMS, World, word

from onnx_models.market import METAMODEL, SCORES, program, program_ref
from verifier.commit.commitments import state_root
from verifier.engine.program import load_program
from verifier.engine.trace import Trace
from verifier.market import economics as econ
from verifier.market import loop as rules

M = TERMS.models
STAKES = (STAKE, STAKE // 2, STAKE // 4)
PREDICTIONS = (15, -20, 5)


@pytest.fixture(scope="module")
def real(loop_suite, deployer):
    """The suite's token, pool and tasks with a vault and a loop deployed with the real programs."""
    refs = {kind: program_ref(kind, rules.shape(M)) for kind in (METAMODEL, SCORES)}
    with boa.env.prank(deployer):
        vault = boa.load_partial(str(CONTRACTS / "Vault.vy")).deploy(loop_suite.token)
        loop = loop_suite.loop_deployer.deploy(
            loop_suite.token, loop_suite.asset, loop_suite.pool, loop_suite.tasks, vault, TERMS.as_tuple(), rules.program_refs(M)
        )
        vault.set_manager(loop)
    for a in [*loop_suite.p.depositors, *loop_suite.p.modelers, loop_suite.p.stranger]:
        loop_suite.token.approve(vault, 2**256 - 1, sender=a)
        loop_suite.token.approve(loop, 2**256 - 1, sender=a)
    programs = [(*rules.program_refs(M)[k], list(refs[k].slots)) for k in (METAMODEL, SCORES)]
    return dict(vars(loop_suite), vault=vault, loop=loop, programs=programs)


def solve(w: World, pid: int, kind: int, data: dict) -> list[int]:
    """Runs the program on the period's data as a solver would, checks that the loop posted its
    initial state, claims its final state, finalizes and records; returns the result."""
    prog = load_program(program(kind, rules.shape(M), **data))
    tid = w.loop.task_of(pid, kind)
    assert w.tasks.tasks(tid).initial_root == prog.initial_state_root
    with Trace(prog, checkpoint_every=1) as tr:
        tr.run()
        final = tr.final_root
        ref = program_ref(kind, rules.shape(M))
        table = tr.slot_table_at(prog.steps, 0)
        opening = table.open(ref.out_slot)
        result = [int(v) for v in tr.final_state()[prog.state_names[0]].reshape(-1)]
    assert state_root(prog.steps, 0, table.root) == final
    salt = word("real claim", pid, kind)
    cid = w.tasks.commit_claim(tid, w.tasks.claim_commitment(tid, final, w.p.solver, salt), sender=w.p.solver)
    w.tasks.reveal_claim(cid, final, salt, sender=w.p.solver)
    boa.env.time_travel(seconds=TERMS.window)
    w.tasks.finalize(cid, sender=w.p.stranger)
    w.loop.record(pid, kind, table.root, list(opening.proof), result, sender=w.p.stranger)
    return result


def test_period_with_the_real_programs__trades_and_pays_what_they_compute(real):
    from types import SimpleNamespace

    w = World(SimpleNamespace(**real))
    w.fund_vault()
    mids = w.models(stakes=STAKES)
    pid = w.loop.open_period(sender=w.p.stranger)
    for mid, pred, stake in zip(mids, PREDICTIONS, STAKES, strict=True):
        w.commit(pid, mid, pred, amount=stake)
    sch = w.schedule(pid)
    boa.env.time_travel(seconds=sch.commit_deadline - w.now())
    for mid in mids:
        w.reveal(pid, mid)
    boa.env.time_travel(seconds=sch.reveal_deadline - w.now())

    weights = np.array([econ.weight(s) for s in STAKES], np.int64)
    preds = [np.array([p], np.int8) for p in PREDICTIONS]
    w.post(pid, METAMODEL)
    (m,) = solve(w, pid, METAMODEL, {"weights": weights, "predictions": preds})
    assert m == (4 * 15 - 2 * 20 + 5) // 7 == w.loop.periods(pid).metamodel  # trunc(25 / 7) = 3

    w.travel_to(sch.trade_at)
    assets = w.vault.assets()
    assert assets == 148_480 * E18  # 150_000 less the pool (1%) and two task rewards
    w.loop.trade(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).spent == rules.position(assets, m, TERMS, sum(STAKES)) == 2_227_200 * E18 // 1_000
    w.move_price(-300)  # the asset falls: the short-side model was right
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)
    per = w.loop.periods(pid)
    assert per.label == -1 and per.proceeds < per.spent

    w.post(pid, SCORES)
    scores = solve(w, pid, SCORES, {"weights": weights, "labels": np.array([-1], np.int8), "predictions": preds})
    assert scores == [-1_500, 2_000, -500, -2_600, 3_300, -200]  # SPEC 12.7
    per = w.loop.periods(pid)
    expected = rules.settlement(list(STAKES), [True] * M, scores, TERMS, per.pool, per.budget)
    owners = [w.owner_of(mid) for mid in mids]
    before = [w.token.balanceOf(o) for o in owners]
    stakes = [w.loop.models(mid).stake for mid in mids]
    w.loop.settle(pid, sender=w.p.stranger)
    for i, mid in enumerate(mids):
        assert w.token.balanceOf(owners[i]) - before[i] == max(expected.model_payouts[i], 0)
        assert stakes[i] - w.loop.models(mid).stake == max(-expected.model_payouts[i], 0)
    assert expected.model_payouts == [-175 * E18, 225 * E18 // 2, -75 * E18 // 4]  # SPEC 12.7
    assert expected.burned == 775 * E18 // 4 and expected.refund == 2_775 * E18 // 2
    w.assert_solvent()
