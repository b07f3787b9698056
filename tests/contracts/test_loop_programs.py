"""A trading period with the loop's real programs (docs/SPEC.md 12.5, the worked example of
12.7): the market's metamodel, scores and data-values programs for the loop's shape and one
row, built by onnx_models/market.py and run by the engine. The state the loop posts for each
task is the program's own initial state with the period's weights, predictions, label,
features and datasets, so an honest solver's trace ends in the root the loop then records
from; the recorded metamodel sizes the trade, the recorded scores pay the models and the
recorded values pass the data share on and slash, as verifier/market/loop.py says."""

from __future__ import annotations

import boa
import numpy as np
import pytest
from _court import CONTRACTS
from _loop import E18, STAKE, TERMS, World, word

from onnx_models.market import METAMODEL, SCORES, VALUES, program, program_ref
from verifier.commit.commitments import state_root
from verifier.engine.program import load_program
from verifier.engine.trace import Trace
from verifier.market import economics as econ
from verifier.market import loop as rules

M = TERMS.models
STAKES = (STAKE, STAKE // 2, STAKE // 4)
PREDICTIONS = (15, -20, 5)
DATA_STAKE = 100 * E18


@pytest.fixture(scope="module")
def real(loop_suite, deployer):
    """The suite's token, pool and tasks with a vault and a loop deployed with the real programs."""
    refs = {kind: program_ref(kind, rules.shape(TERMS)) for kind in (METAMODEL, SCORES, VALUES)}
    with boa.env.prank(deployer):
        vault = boa.load_partial(str(CONTRACTS / "Vault.vy")).deploy(loop_suite.token)
        loop = loop_suite.loop_deployer.deploy(
            loop_suite.token, loop_suite.asset, loop_suite.pool, loop_suite.tasks, vault, TERMS.as_tuple(), rules.program_refs(TERMS)
        )
        vault.set_manager(loop)
    for a in [*loop_suite.p.depositors, *loop_suite.p.modelers, *loop_suite.p.providers, loop_suite.p.stranger]:
        loop_suite.token.approve(vault, 2**256 - 1, sender=a)
        loop_suite.token.approve(loop, 2**256 - 1, sender=a)
    programs = [(*rules.program_refs(TERMS)[k], list(refs[k].slots)) for k in (METAMODEL, SCORES, VALUES)]
    return dict(vars(loop_suite), vault=vault, loop=loop, programs=programs)


def solve(w: World, pid: int, kind: int, data: dict) -> list[int]:
    """Runs the program on the period's data as a solver would, checks that the loop posted its
    initial state, claims its final state, finalizes and records; returns the result."""
    prog = load_program(program(kind, rules.shape(TERMS), **data))
    tid = w.loop.task_of(pid, kind)
    assert w.tasks.tasks(tid).initial_root == prog.initial_state_root
    with Trace(prog, checkpoint_every=1) as tr:
        tr.run()
        final = tr.final_root
        ref = program_ref(kind, rules.shape(TERMS))
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
    # D's rows all say the asset falls, E's all that it rises: the outcome values D and not E
    rows = np.zeros((TERMS.dataset_rows, TERMS.features), np.int8)
    down, up = np.full(TERMS.dataset_rows, -1, np.int8), np.full(TERMS.dataset_rows, 1, np.int8)
    dsets = [w.dataset(w.p.providers[0], arrays=(rows, down)), w.dataset(w.p.providers[1], arrays=(rows + 1, up))]
    # A names no dataset, B both, C the second only
    mids = w.models(stakes=STAKES, named=([], dsets, dsets[1:]))
    pid = w.loop.open_period(sender=w.p.stranger)
    for did, who in zip(dsets, w.p.providers, strict=False):
        w.loop.join(pid, did, DATA_STAKE, sender=who)
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
    assert assets == 148_470 * E18  # 150_000 less the pool (1%) and three task rewards
    w.loop.trade(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).spent == rules.position(assets, m, TERMS, sum(STAKES)) == 2_227_050 * E18 // 1_000
    w.move_price(-300)  # the asset falls: the short-side model was right
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)
    per = w.loop.periods(pid)
    assert per.label == -1 and per.proceeds < per.spent

    w.post(pid, SCORES)
    scores = solve(w, pid, SCORES, {"weights": weights, "labels": np.array([-1], np.int8), "predictions": preds})
    assert scores == [-1_500, 2_000, -500, -2_600, 3_300, -200]  # SPEC 12.7
    with boa.reverts("loop: data values not recorded"):
        w.loop.settle(pid, sender=w.p.stranger)

    # the features of the first period: no period before it
    assert bytes(w.loop.features(pid)) == bytes(32) == rules.features([], TERMS).ljust(32, b"\0")
    w.post(pid, VALUES)
    values = solve(w, pid, VALUES, {"mask": np.ones(2, np.int64), "labels": np.array([-1], np.int8),
                                    "features": np.zeros((1, TERMS.features), np.int8), "datasets": [w.data[d] for d in dsets]})  # fmt: skip
    assert values == [1_500_000, -500_000]  # SPEC 12.7
    per = w.loop.periods(pid)
    entries = [econ.DatasetEntry(DATA_STAKE, DATA_STAKE, v, True) for v in values]
    expected = rules.settlement(list(STAKES), [True] * M, scores, TERMS, per.pool, per.budget, named=([], [0, 1], [1]), datasets=entries)
    owners = [w.owner_of(mid) for mid in mids]
    before = [w.token.balanceOf(o) for o in [*owners, *w.p.providers[:2]]]
    stakes = [w.loop.models(mid).stake for mid in mids] + [w.loop.datasets(d).stake for d in dsets]
    w.loop.settle(pid, sender=w.p.stranger)
    after = [w.token.balanceOf(o) for o in [*owners, *w.p.providers[:2]]]
    now = [w.loop.models(mid).stake for mid in mids] + [w.loop.datasets(d).stake for d in dsets]
    for i, pay in enumerate(expected.model_payouts + expected.dataset_payouts):
        assert after[i] - before[i] == max(pay, 0)
        assert stakes[i] - now[i] == max(-pay, 0)
    # SPEC 12.7: B passes a fifth of its 112.5 on to D, E loses 5% of its 100
    assert expected.model_payouts == [-175 * E18, 90 * E18, -75 * E18 // 4]
    assert expected.dataset_payouts == [45 * E18 // 2, -5 * E18]
    assert expected.burned == 795 * E18 // 4 and expected.refund == 2_775 * E18 // 2
    assert all(w.loop.datasets(d).reserved == 0 for d in dsets)
    w.assert_solvent()
