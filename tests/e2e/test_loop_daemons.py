"""Ten periods of the closed loop on anvil (docs/SPEC.md 12), with the solver and the watchtower
as separate processes serving the loop's tasks like any other: they rebuild each period's
metamodel, scores and data-values programs from the chain (`LoopPrograms`; the datasets' bytes
from their publications on Availability.vy), the solver claims and finalizes them, the
watchtower re-executes every claim, and a cheating solver's wrong metamodel claim in the first
period is disputed and rejected before any trade uses it. Two data providers join every period,
each dataset named by a revealed model, so every settled period's values task is posted, solved
by the solver daemon, finalized and recorded, and what each provider gains or loses is what
`verifier.market.loop.settlement` pays for what settle read. Every contract holds what it owes
after every period; the vault profits and the skilled model earns more than the unskilled."""

from __future__ import annotations

from _e2e import WINDOW, running, wait_until

from verifier.app.demo_loop import Plan, run_loop
from verifier.court.states import CLAIM_REJECTED, TASK_DONE
from verifier.market.loop_client import VALUES

SOLVER, TOWER, CHEATER = 6, 7, 8
DATA = (5, 9)  # the informative and the noisy data provider
PLAN = Plan(periods=10, seed=7, cheat_period=0)


def test_ten_periods_on_anvil_with_daemons(suite, fleet):
    suite.mint(suite.address(CHEATER))
    accounts = [suite.chain.account, *(suite.address(i) for i in (1, 2, 3, 4, SOLVER, CHEATER, TOWER, *DATA))]
    daemons: dict = {}
    values_tasks: list[int] = []

    def on_deployed(client) -> None:  # noqa: ANN001
        # the daemons find the loop in the deployment and serve its tasks
        suite.court.deployment.addresses |= {"Loop": client.addresses["Loop"], "Vault": client.addresses["Vault"]}
        suite.court.deployment.save(suite.deployment_file)
        daemons["cheater"] = fleet("solver", CHEATER, [], "cheater", cheat="final-root")
        daemons["tower"] = fleet("challenger", TOWER, [], "tower")
        daemons["solver"] = fleet("solver", SOLVER, [], "solver")
        daemons["loop"] = client.loop

    def honest_claim(task_id: int) -> bool:
        return suite.claim(suite.task(task_id).claim_id).solver == suite.address(SOLVER)

    def checked(claim_id: int) -> bool:
        return any(e.get("claim") == claim_id for e in daemons["tower"].events("claim_ok"))

    def solve(pid: int, kind: int, tid: int, trace, cheat: bool) -> bool:  # noqa: ANN001
        tower, solver = daemons["tower"], daemons["solver"]
        caught = False
        if kind == VALUES:
            values_tasks.append(tid)
        if cheat:
            cheater = daemons["cheater"]
            with running(cheater):
                wait_until("the cheater's claim", lambda: suite.task(tid).claim_id != 0, 120, [cheater])
                bad = suite.task(tid).claim_id
                assert suite.claim(bad).solver == suite.address(CHEATER)
                tower.start()
                wait_until("the wrong claim rejected", lambda: suite.claim(bad).state == CLAIM_REJECTED, 300, [cheater, tower])
            caught = True
            solver.start()
        # run_loop posts a period's scores and values tasks together and the solver claims both:
        # the window passes for both at once, so only once the watchtower checked every claim
        posted = [int(daemons["loop"].functions.task_of(pid, k).call()) for k in range(3)]
        for t in [t for t in posted if t and suite.task(t).state != TASK_DONE]:
            wait_until("the honest claim", lambda t=t: honest_claim(t), 120, [tower, solver])
            claim_id = suite.task(t).claim_id
            wait_until("the watchtower's check", lambda c=claim_id: checked(c), 120, [tower, solver])
        if suite.task(tid).state != TASK_DONE:
            suite.anvil.advance(WINDOW + 1)
        wait_until("the task done", lambda: suite.task(tid).state == TASK_DONE, 120, [tower, solver])
        return caught

    try:
        run = run_loop(suite.chain, suite.court.deployment, accounts, PLAN, solver=solve, on_deployed=on_deployed)
    finally:
        fleet.kill_all()
    assert len(run.rows) == PLAN.periods and run.balanced
    assert [r.caught for r in run.rows] == [i == PLAN.cheat_period for i in range(PLAN.periods)]
    assert not daemons["tower"].events("game_lost") and len(daemons["tower"].events("game_won")) == 1
    assert run.rows[-1].share_price > run.start_price
    assert run.model_pnl[0] > run.model_pnl[1]
    # every period was settled with its data values: the solver daemon's claim on each values
    # task finalized (solve waited for it) and the result was recorded from it
    settled = [r for r in run.rows if r.settled is not None]
    assert len(settled) == PLAN.periods and len(values_tasks) == PLAN.periods
    assert all(suite.task(t).state == TASK_DONE for t in values_tasks)
    for r in settled:
        assert all(v is not None for v in r.data_values), r
        # what each data provider gained or lost (its balance and stake), the DataPaid events and
        # the rule, on the reservations, scores and values settle read
        assert r.data_payouts == r.data_paid == r.settled.expected_data(), r
    assert any(p < 0 for r in settled for p in r.data_payouts) and any(p > 0 for r in settled for p in r.data_payouts)
