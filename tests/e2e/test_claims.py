"""Two-phase claims and settlement by each game's own outcome, with the daemons as processes:
a solver killed between its commit and its reveal reveals after the restart (the salt is
derived from its key, the root from its trace), and a sybil challenger whose game ends first
does not cost the honest watchtower its bond or its share of the prize, and a claim rejected by
one game still has its other games played to the end (each one the solver wins pays it); a
commitment never revealed is expired by the watchtower."""

from __future__ import annotations

import signal

from _e2e import (
    CHALLENGER_BOND,
    CLOCK,
    FUNDS,
    PRIZE,
    REWARD,
    SLASH_PAID,
    SOLVER_BOND,
    WINDOW,
    assert_chain_moves_unique,
    assert_no_move_twice,
    program,
    running,
    wait_until,
)

from verifier.court.states import (
    CHALLENGE_COLLECTED,
    CHALLENGE_LOST,
    CHALLENGE_WON,
    CLAIM_COMMITTED,
    CLAIM_EXPIRED,
    CLAIM_FINALIZED,
    CLAIM_LIVE,
    CLAIM_REJECTED,
)


def test_crash_between_commit_and_reveal__revealed_after_restart(suite, fleet, toys) -> None:
    p = toys(60)
    tid = suite.post_task(program(p))
    solver = fleet("solver", 1, [p], "solver")
    tower = fleet("challenger", 2, [p], "tower")
    # SIGKILL right after the commit is confirmed, before the reveal is even signed
    solver.start(env={"BISECTML_FAILPOINT": "committed:1"})
    try:
        wait_until("the failpoint", lambda: not solver.alive(), 120, [solver])
        assert solver.proc is not None and solver.proc.returncode == -signal.SIGKILL, solver.tail()
        cid = suite.task(tid).claim_id
        assert cid and suite.claim(cid).state == CLAIM_COMMITTED
        assert suite.balance(solver.address) == FUNDS - SOLVER_BOND  # the bond is locked
        assert not [r for r in solver.intents() if r["key"].startswith("reveal:")]
        solver.start()  # no failpoint: it finds its commitment and reveals it
        tower.start()
        procs = [solver, tower]
        wait_until("the reveal", lambda: suite.claim(cid).state == CLAIM_LIVE, 60, procs)
        wait_until("the watchtower to agree", lambda: tower.events("claim_ok"), 60, procs)
        suite.anvil.advance(WINDOW + 1)
        wait_until("finalization", lambda: suite.claim(cid).state == CLAIM_FINALIZED, 60, procs)
        for d in procs:
            assert d.terminate() == 0
    finally:
        solver.kill()
        tower.kill()
    assert [r["claim"] for r in solver.events("revealed")] == [cid]
    assert len(suite.events("tasks", "ClaimCommitted")) == 1  # committed once, not again after the restart
    assert suite.balance(solver.address) == FUNDS + REWARD
    assert suite.balance(tower.address) == FUNDS
    assert_no_move_twice(suite, solver)


def test_sybil_challenger_first__the_watchtower_still_plays_settles_and_collects_its_share(suite, fleet, toys) -> None:
    p = toys(61)
    tid = suite.post_task(program(p))
    cheater = fleet("solver", 3, [p], "cheat", cheat="wrong-element:5,3")
    sybil = fleet("challenger", 5, [p], "sybil")  # the first challenger, its game ends first
    tower = fleet("challenger", 2, [p], "tower")
    honest = fleet("solver", 1, [p], "honest")
    procs = [cheater, sybil, tower, honest]
    with running(cheater, sybil):
        cid = wait_until("the cheat's claim", lambda: suite.task(tid).claim_id, 90, procs)
        wait_until("the claim rejected by the sybil's game", lambda: suite.claim(cid).state == CLAIM_REJECTED, 120, procs)
        assert suite.task(tid).claim_id == 0  # the task reopened at once
        # the watchtower arrives late: the claim is already rejected, its window still open
        tower.start()
        honest.start()
        wait_until("the tower's challenge", lambda: suite.claim(cid).challenges == 2, 90, procs)
        (first, _), (ours, ch) = suite.challenges()
        assert ch.challenger == tower.address
        wait_until("the tower's game won and settled", lambda: suite.challenge(ours).state == CHALLENGE_WON, 120, procs)
        assert suite.challenge(first).state == CHALLENGE_WON and suite.claim(cid).winners == 2
        # its bond came back at settlement; the share waits for the window to close
        assert suite.balance(tower.address) == FUNDS
        new = wait_until("the honest claim", lambda: (c := suite.task(tid).claim_id) not in (0, cid) and c, 90, procs)
        wait_until("the honest claim revealed", lambda: suite.claim(new).state == CLAIM_LIVE, 60, procs)
        suite.anvil.advance(WINDOW + 1)
        wait_until("both shares collected", lambda: all(c.state == CHALLENGE_COLLECTED for _, c in suite.challenges()), 60, procs)
        wait_until("the honest claim finalized", lambda: suite.claim(new).state == CLAIM_FINALIZED, 60, procs)
        for d in procs:
            assert d.terminate() == 0
    # each share is in proportion to the gas its challenger metered (its challenge and its moves)
    g_first, g_ours = suite.challenge(first).gas, suite.challenge(ours).gas
    assert suite.claim(cid).gas == g_first + g_ours and g_first > 0 and g_ours > 0
    share, sybil_share = PRIZE * g_ours // (g_first + g_ours), PRIZE * g_first // (g_first + g_ours)
    assert suite.balance(tower.address) == FUNDS + share
    assert suite.balance(sybil.address) == FUNDS + sybil_share
    assert suite.balance(cheater.address) == FUNDS - SOLVER_BOND
    assert suite.balance(honest.address) == FUNDS + REWARD
    collected = suite.events("tasks", "PrizeCollected")
    assert sorted(e.args["share"] for e in collected) == sorted([share, sybil_share])
    assert sum(e.args["dust_burned"] for e in collected) == PRIZE - share - sybil_share
    assert not suite.events("tasks", "BondSlashed")
    for d in procs:
        assert_no_move_twice(suite, d)
    assert_chain_moves_unique(suite)


def test_rejected_claim__the_solver_still_plays_every_later_game_and_is_paid_for_each_it_wins(suite, fleet, toys) -> None:
    p = toys(62)
    tid = suite.post_task(program(p), window=2 * WINDOW)  # room to challenge after a game's clock ran out
    solver = fleet("solver", 1, [p], "solver")
    first = fleet("challenger", 4, [p], "liar-a", cheat="wrong-element:7,2")
    second = fleet("challenger", 5, [p], "liar-b", cheat="wrong-element:3,1")
    procs = [solver, first, second]
    with running(solver):
        cid = wait_until("the reveal", lambda: (c := suite.task(tid).claim_id) and suite.claim(c).state == CLAIM_LIVE and c, 90, procs)
    # the solver is down when the first liar challenges: it misses its clock, and loses that game
    with running(first):
        wait_until("the first challenge", lambda: suite.claim(cid).challenges == 1, 90, procs)
        suite.anvil.advance(CLOCK + 1)
        wait_until("the claim rejected on the missed clock", lambda: suite.claim(cid).state == CLAIM_REJECTED, 90, procs)
        # the window is still open: a second liar joins against the rejected claim
        with running(second, solver):
            wait_until("the second challenge", lambda: suite.claim(cid).challenges == 2, 90, procs)
            (a, _), (b, ch) = suite.challenges()
            assert ch.challenger == second.address
            wait_until("the solver wins the second game and settles it", lambda: suite.challenge(b).state == CHALLENGE_LOST, 120, procs)
            assert suite.balance(solver.address) == FUNDS - SOLVER_BOND + SLASH_PAID  # paid at settlement
            suite.anvil.advance(2 * WINDOW)
            wait_until("the first liar collects", lambda: suite.challenge(a).state == CHALLENGE_COLLECTED, 60, procs)
            wait_until("the solver closes the claim", lambda: solver.events("claim_closed"), 60, procs)
            for d in procs:
                assert d.terminate() == 0
    assert suite.balance(first.address) == FUNDS + PRIZE
    assert suite.balance(second.address) == FUNDS - CHALLENGER_BOND
    assert suite.balance(solver.address) == FUNDS - SOLVER_BOND + SLASH_PAID
    assert solver.events("not_reclaiming") and suite.task(tid).claim_id == 0  # it does not claim the task again
    for d in procs:
        assert_no_move_twice(suite, d)


def test_commitment_never_revealed__the_watchtower_expires_it_and_the_solver_gives_the_task_up(suite, fleet, toys) -> None:
    p = toys(63)
    tid = suite.post_task(program(p))
    solver = fleet("solver", 1, [p], "solver")
    tower = fleet("challenger", 2, [p], "tower")
    solver.start(env={"BISECTML_FAILPOINT": "committed:1"})  # dies between commit and reveal, and stays down
    try:
        wait_until("the failpoint", lambda: not solver.alive(), 120, [solver])
        cid = suite.task(tid).claim_id
        assert suite.claim(cid).state == CLAIM_COMMITTED
        with running(tower):
            suite.anvil.advance(CLOCK + 1)  # past the reveal deadline
            # the tower logs the expiry once its receipt is back, a moment after the chain has it
            wait_until("the expiry", lambda: suite.claim(cid).state == CLAIM_EXPIRED and tower.events("claim_expired"), 60, [tower])
            assert [r["claim"] for r in tower.events("claim_expired")] == [cid]
            assert suite.task(tid).claim_id == 0  # the task reopened
            solver.start()  # back up: it alerts, closes the claim and does not claim the task again
            wait_until("the solver's alert", lambda: solver.events("claim_expired") and solver.events("not_reclaiming"), 60, [solver])
            for d in (solver, tower):
                assert d.terminate() == 0
    finally:
        solver.kill()
    assert suite.task(tid).claim_id == 0 and len(suite.events("tasks", "ClaimCommitted")) == 1
    assert suite.events("tasks", "ClaimExpired")[0].args["burned"] == SOLVER_BOND
    assert suite.balance(solver.address) == FUNDS - SOLVER_BOND
    assert suite.balance(tower.address) == FUNDS  # a public service: nobody is paid for it
    for d in (solver, tower):
        assert_no_move_twice(suite, d)
