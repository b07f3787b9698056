"""Ten periods of the closed loop on anvil (docs/SPEC.md 12), with the solver and the watchtower
as separate processes serving the loop's tasks like any other: they rebuild each period's
metamodel and scores programs from the chain (`LoopPrograms`), the solver claims and finalizes
them, the watchtower re-executes every claim, and a cheating solver's wrong metamodel claim in
the first period is disputed and rejected before any trade uses it. Every contract holds what it
owes after every period; the vault profits and the skilled model earns more than the unskilled."""

from __future__ import annotations

from _e2e import WINDOW, running, wait_until

from verifier.app.demo_loop import Plan, run_loop
from verifier.court.states import CLAIM_REJECTED, TASK_DONE

SOLVER, TOWER, CHEATER = 6, 7, 8
PLAN = Plan(periods=10, seed=7, cheat_period=0)


def test_ten_periods_on_anvil_with_daemons(suite, fleet):
    suite.mint(suite.address(CHEATER))
    accounts = [suite.chain.account, *(suite.address(i) for i in (1, 2, 3, 4, SOLVER, CHEATER, TOWER))]
    daemons: dict = {}

    def on_deployed(client) -> None:  # noqa: ANN001
        # the daemons find the loop in the deployment and serve its tasks
        suite.court.deployment.addresses |= {"Loop": client.addresses["Loop"], "Vault": client.addresses["Vault"]}
        suite.court.deployment.save(suite.deployment_file)
        daemons["cheater"] = fleet("solver", CHEATER, [], "cheater", cheat="final-root")
        daemons["tower"] = fleet("challenger", TOWER, [], "tower")
        daemons["solver"] = fleet("solver", SOLVER, [], "solver")

    checked = [0]

    def solve(pid: int, kind: int, tid: int, trace, cheat: bool) -> bool:  # noqa: ANN001
        tower, solver = daemons["tower"], daemons["solver"]
        caught = False
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
        wait_until("the honest claim", lambda: suite.claim(suite.task(tid).claim_id).solver == suite.address(SOLVER), 120, [tower, solver])
        checked[0] += 1
        wait_until("the watchtower's check", lambda: len(tower.events("claim_ok")) >= checked[0], 120, [tower, solver])
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
