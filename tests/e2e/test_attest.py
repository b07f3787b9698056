"""Verification fees end to end (docs/SPEC.md 7.10): with no cheater anywhere, the honest
watchtower daemon attests the honest solver's claim, reveals after the window (after a restart
in between: the salt comes from the key, the slots root from the trace) and collects the fee."""

from __future__ import annotations

from _e2e import FUNDS, REWARD, TOKEN, WINDOW, assert_no_move_twice, program, running, wait_until
from verifier.court.attest import ATTEST_COLLECTED, ATTEST_COMMITTED, ATTEST_REVEALED, REVEAL_PERIOD, Attester
from verifier.court.states import CLAIM_FINALIZED as FINALIZED

FEE = 30 * TOKEN


def test_honest_claim__watchtower_attests_and_collects_the_fee(suite, fleet, toys) -> None:
    p = toys(40)
    tid = suite.post_task(program(p))
    unfunded = suite.post_task(program(toys(41)))
    fees = Attester(suite.chain, suite.court.deployment)
    fees.fund(tid, FEE)
    solver = fleet("solver", 1, [p, toys(41)], "solver")
    tower = fleet("challenger", 2, [p, toys(41)], "tower")
    procs = [solver, tower]
    with running(solver, tower):
        cid = wait_until("the claim", lambda: suite.task(tid).claim_id, 60, procs)
        wait_until("the other claim", lambda: suite.task(unfunded).claim_id, 60, procs)
        wait_until("the attestation", lambda: tower.events("attested"), 60, procs)
        wait_until("both claims verified", lambda: len(tower.events("claim_ok")) == 2, 60, procs)
        assert fees.state(cid, tower.address) == ATTEST_COMMITTED
        assert [r["claim"] for r in tower.events("attested")] == [cid]  # no fee, no attestation
        # a restart between the attestation and the reveal loses nothing
        tower.kill()
        suite.anvil.advance(WINDOW + 1)
        tower.start()
        wait_until("the reveal", lambda: fees.state(cid, tower.address) == ATTEST_REVEALED, 60, procs)
        wait_until("finalization", lambda: suite.claim(cid).state == FINALIZED, 60, procs)
        suite.anvil.advance(REVEAL_PERIOD)
        wait_until("the fee collected", lambda: tower.events("fee_collected"), 60, procs)
        assert fees.state(cid, tower.address) == ATTEST_COLLECTED
    assert tower.events("fee_collected")[0]["share"] == FEE
    assert suite.balance(tower.address) == FUNDS + FEE  # positive income with nobody cheating
    assert suite.balance(solver.address) == FUNDS + 2 * REWARD
    assert int(fees.contract.functions.owed().call()) == 0 == suite.balance(fees.contract.address)
    assert_no_move_twice(suite, tower)
