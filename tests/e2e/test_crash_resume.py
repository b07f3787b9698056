"""Crash and resume: daemons killed with SIGKILL at random points of their games, restarted.

Two disputes run side by side on one deployment:
- A: an honest watchtower against cheating solvers (wrong element, wrong boundary, only the
  final output wrong);
- B: an honest solver against a lying challenger that disputes its correct claims.
Again and again a random daemon (20 times an honest one, now and then a cheater) is killed while one of its games is
pending, at a random moment or at a failpoint (right after a transaction is recorded and
before it is broadcast, or right after the broadcast and before the receipt is recorded), and
started again on the same data directory. Afterwards: every game was won by the honest side,
every transaction each account sent is in its store, no move took effect twice, and the honest
parties hold exactly what they are owed.
"""

from __future__ import annotations

import os
import random
import signal
import time

from _e2e import (
    CHALLENGER_BOND,
    FUNDS,
    PRIZE,
    REWARD,
    SLASH_PAID,
    WINDOW,
    Daemon,
    assert_chain_moves_unique,
    assert_no_move_twice,
    program,
    wait_until,
)

from verifier.court.states import (
    CHALLENGE_COLLECTED,
    CHALLENGE_LOST,
    CLAIM_FINALIZED,
    CLAIM_REJECTED,
)

TRIALS = 20
SEED = int(os.environ.get("BISECTML_CRASH_SEED", "20260525"))
PENDING, SOLVER_WON, CHALLENGER_WON = 0, 1, 2


def _started(d: Daemon) -> bool:
    """The current process has logged its start (so it is past start-up, in its loop)."""
    pid = d.proc.pid if d.proc else None
    return d.alive() and any(r.get("event") == "started" and r.get("pid") == pid for r in d.logs())


def test_crash_resume__sigkill_at_random_points__honest_side_wins_nothing_twice(suite, fleet, toys) -> None:
    rng = random.Random(SEED)
    cheats = ["wrong-element:13,3", "wrong-boundary:9"]
    pa = [toys(20 + i, steps=24) for i in range(len(cheats))]
    pb = toys(30, steps=24)
    tower = fleet("challenger", 2, pa, "tower")
    solver = fleet("solver", 1, [pb], "solver")
    cheaters = [fleet("solver", 3 + i, [p], f"cheat{i}", cheat=c) for i, (p, c) in enumerate(zip(pa, cheats))]
    liar = fleet("challenger", 6, [pb], "liar", cheat="wrong-element:7,2")
    everyone = [tower, solver, *cheaters, liar]
    honest = {tower.data_dir.name, solver.data_dir.name}

    def post_round() -> None:
        for p in pa:
            suite.post_task(program(p))
        for _ in range(2):
            suite.post_task(program(pb))

    def pending() -> dict[str, int]:
        """Pending games per address."""
        out: dict[str, int] = {}
        n = int(suite.court.game.functions.game_count().call())
        for gid in range(1, n + 1):
            g = suite.court.game.functions.games(gid).call()
            if g[9] == PENDING:
                for a in (g[0], g[1]):
                    out[a] = out.get(a, 0) + 1
        return out

    post_round()
    post_round()
    for d in everyone:
        d.start()
    wait_until("the first games", lambda: pending().get(tower.address) and pending().get(solver.address), 120, everyone)
    trials: list[tuple[str, str, int]] = []
    armed: dict[str, tuple[Daemon, str, int, float]] = {}  # restarted with a failpoint
    rounds = 0
    while sum(1 for name, _, _ in trials if name in honest) < TRIALS:
        rounds += 1
        assert rounds < 400, f"only {len(trials)} trials in {rounds} rounds"
        for name, (d, mode, games, since) in list(armed.items()):
            if not d.alive():  # the failpoint fired: SIGKILL at that point of a send
                assert d.proc is not None and d.proc.returncode == -signal.SIGKILL, d.tail()
                trials.append((name, mode, games))
                del armed[name]
                d.start()
        counts = pending()
        if not counts.get(tower.address) and not counts.get(solver.address):
            post_round()  # every game ended before enough trials: more games
            time.sleep(1.0)
            continue
        ready = [d for d in everyone if d.data_dir.name not in armed and counts.get(d.address) and _started(d)]
        if not ready:
            time.sleep(0.3)
            continue
        # mostly the honest side (the trials that count); now and then a cheater, whose resume
        # must not send anything twice either
        pool = [d for d in ready if (d.data_dir.name in honest) != (rng.random() < 0.15)]
        if not pool:
            time.sleep(0.2)
            continue
        victim = rng.choice(pool)
        mode = rng.choice(["random", "random", "recorded", "broadcast"])
        games = counts[victim.address]
        if mode == "random":
            time.sleep(rng.uniform(0.0, 1.5))
            victim.kill()
            trials.append((victim.data_dir.name, mode, games))
            victim.start()
        else:
            # restart it armed: it kills itself at its k-th send, in that window
            victim.kill()
            trials.append((victim.data_dir.name, "random", games))
            victim.start(env={"BISECTML_FAILPOINT": f"{mode}:{rng.randint(1, 2)}"})
            armed[victim.data_dir.name] = (victim, mode, games, time.monotonic())
    for d, _, _, _ in armed.values():  # disarm the rest
        d.kill()
        d.start()
    # let every game finish, then the windows close and everything is settled and finalized
    wait_until("every game over", lambda: not pending().get(tower.address) and not pending().get(solver.address), 240, everyone)
    suite.anvil.advance(WINDOW + 1)

    def all_settled() -> bool:
        # every game settled by its outcome, every prize collected, every claim closed
        if any(ch.state not in (CHALLENGE_LOST, CHALLENGE_COLLECTED) for _, ch in suite.challenges()):
            return False
        return all(c.state in (CLAIM_REJECTED, CLAIM_FINALIZED) for _, c in suite.claims())

    wait_until("every challenge settled and collected, every claim closed", all_settled, 120, everyone)
    for d in everyone:
        d.terminate()

    # every game went to the honest side
    n_games = int(suite.court.game.functions.game_count().call())
    won_by_tower = won_by_solver = 0
    for gid in range(1, n_games + 1):
        g = suite.court.game.functions.games(gid).call()
        if g[0] == solver.address:
            assert g[9] == SOLVER_WON, f"game {gid}: the honest solver lost"
            won_by_solver += 1
        else:
            assert g[1] == tower.address and g[9] == CHALLENGER_WON, f"game {gid}: the honest watchtower lost"
            won_by_tower += 1
    assert won_by_tower >= 4 and won_by_solver >= 4
    # nothing twice: each account's transactions are all in its store, no key took effect twice
    for d in everyone:
        assert_no_move_twice(suite, d)
    assert_chain_moves_unique(suite)
    # no honest bond lost: each party holds exactly what it is owed
    assert suite.balance(tower.address) == FUNDS + won_by_tower * PRIZE
    honest_claims = [c for _, c in suite.claims() if c.solver == solver.address]
    assert all(c.state == CLAIM_FINALIZED for c in honest_claims)
    assert suite.balance(solver.address) == FUNDS + len(honest_claims) * REWARD + won_by_solver * SLASH_PAID
    assert suite.balance(liar.address) == FUNDS - won_by_solver * CHALLENGER_BOND
    modes = {m for _, m, _ in trials}
    victims = {v for v, _, _ in trials}
    assert sum(1 for v, _, _ in trials if v in honest) >= TRIALS and honest <= victims, trials
    assert {"recorded", "broadcast"} <= modes, trials
    # the restarted daemons found their recorded-but-unconfirmed transactions
    reconciled = [r for d in everyone for r in d.events("reconciled")]
    print(f"\ncrash/resume: seed {SEED}, {len(trials)} trials {trials}, {n_games} games, {len(reconciled)} reconciled")
