"""Verification fees end to end (docs/SPEC.md 7.10): with no cheater anywhere, the honest
watchtower daemon attests the honest solver's claim, reveals after the window (after a restart
in between: the salt comes from the key, the slots root from the trace) and collects the fee."""

from __future__ import annotations

from _e2e import (
    FUNDS,
    REWARD,
    TOKEN,
    WINDOW,
    assert_no_move_twice,
    program,
    running,
    wait_until,
)

from verifier.court.attest import (
    ATTEST_COLLECTED,
    ATTEST_COMMITTED,
    ATTEST_REVEALED,
    REVEAL_PERIOD,
    Attester,
)
from verifier.court.states import CLAIM_FINALIZED as FINALIZED

FEE = 30 * TOKEN


def test_honest_claim__watchtower_attests_and_collects_the_fee(suite, fleet, toys) -> None:
    early, late = toys(40), toys(41)
    tid = suite.post_task(program(early))
    later = suite.post_task(program(late))
    fees = Attester(suite.chain, suite.court.deployment)
    fees.fund(tid, FEE)
    solver = fleet("solver", 1, [early, late], "solver")
    tower = fleet("challenger", 2, [early, late], "tower")
    procs = [solver, tower]
    with running(solver, tower):
        cid = wait_until("the claim", lambda: suite.task(tid).claim_id, 60, procs)
        cid2 = wait_until("the other claim", lambda: suite.task(later).claim_id, 60, procs)
        wait_until("both claims verified", lambda: len(tower.events("claim_ok")) == 2, 60, procs)
        wait_until("the attestation", lambda: tower.events("attested"), 60, procs)
        assert fees.state(cid, tower.address) == ATTEST_COMMITTED
        assert [r["claim"] for r in tower.events("attested")] == [cid]  # no fee, no attestation
        # a fee funded after the claim was verified, inside its window, is earned too
        fees.fund(later, FEE + 1)
        wait_until("the late attestation", lambda: len(tower.events("attested")) == 2, 60, procs)
        assert fees.state(cid2, tower.address) == ATTEST_COMMITTED
        # a restart between the attestation and the reveal loses nothing
        tower.kill()
        suite.anvil.advance(WINDOW + 1)
        tower.start()
        both_revealed = lambda: all(fees.state(c, tower.address) == ATTEST_REVEALED for c in (cid, cid2))
        wait_until("the reveals", both_revealed, 60, procs)
        wait_until("finalization", lambda: all(suite.claim(c).state == FINALIZED for c in (cid, cid2)), 60, procs)
        suite.anvil.advance(REVEAL_PERIOD)
        wait_until("the fees collected", lambda: len(tower.events("fee_collected")) == 2, 60, procs)
        assert all(fees.state(c, tower.address) == ATTEST_COLLECTED for c in (cid, cid2))
        assert tower.terminate() == 0 and solver.terminate() == 0
    assert sorted(r["share"] for r in tower.events("fee_collected")) == [FEE, FEE + 1]
    assert suite.balance(tower.address) == FUNDS + 2 * FEE + 1  # positive income with nobody cheating
    assert suite.balance(solver.address) == FUNDS + 2 * REWARD
    assert int(fees.contract.functions.owed().call()) == 0 == suite.balance(fees.contract.address)
    assert_no_move_twice(suite, tower)
