"""Load: 20 concurrent tasks, 6 of them claimed by cheaters, while the chain's clock runs at
half an hour per second. The watchtower must challenge every cheat before its window closes
(two days of chain time: under two minutes here) and win every game; the honest claims must go
unchallenged and be finalized when their windows close."""

from __future__ import annotations

import threading

from _e2e import FUNDS, PRIZE, REWARD, WINDOW, assert_chain_moves_unique, assert_no_move_twice, program, wait_until
from verifier.court.states import CHALLENGE_COLLECTED, CHALLENGE_LOST, CLAIM_FINALIZED as FINALIZED, CLAIM_REJECTED as REJECTED

HONEST_TASKS = 14
CHEATS = ["wrong-element:5,3", "wrong-boundary:4", "final-output"]
TASKS_PER_CHEAT = 2
RATE = 1_800  # chain seconds per real second while the clock runs
CLOCK = 2_592_000  # the longest chess clock: games outlast the fast clock comfortably


def test_load__20_tasks_6_cheats__every_cheat_caught_before_its_window_closes(suite, fleet, toys) -> None:
    honest_path = toys(40)
    cheat_paths = [toys(41 + i) for i in range(len(CHEATS))]
    honest_tids = [suite.post_task(program(honest_path), clock=CLOCK) for _ in range(HONEST_TASKS)]
    cheat_tids = [suite.post_task(program(p), clock=CLOCK) for p in cheat_paths for _ in range(TASKS_PER_CHEAT)]
    assert len(honest_tids) + len(cheat_tids) >= 20
    solver = fleet("solver", 1, [honest_path], "solver")
    rival = fleet("solver", 7, [honest_path], "rival")  # races the solver for every honest task
    tower = fleet("challenger", 2, [honest_path, *cheat_paths], "tower")
    cheaters = [fleet("solver", 3 + i, [p], f"cheat{i}", cheat=c) for i, (p, c) in enumerate(zip(cheat_paths, CHEATS))]
    everyone = [solver, rival, tower, *cheaters]
    for d in everyone:
        d.start()

    stop = threading.Event()

    def run_clock() -> None:
        while not stop.wait(1.0):
            suite.anvil.advance(RATE)

    clock = threading.Thread(target=run_clock, daemon=True)
    try:
        wait_until("every daemon up", lambda: all(d.events("started") for d in everyone), 120, everyone)
        clock.start()
        all_tids = honest_tids + cheat_tids
        wait_until("every task claimed", lambda: all(suite.task(t).claim_id for t in all_tids), 120, everyone)
        cheat_claims = {suite.task(t).claim_id for t in cheat_tids}
        honest_claims = {suite.task(t).claim_id for t in honest_tids}

        def settled() -> bool:
            claims = dict(suite.claims())
            return all(claims[c].state == REJECTED for c in cheat_claims) and all(
                claims[c].state == FINALIZED for c in honest_claims
            )

        wait_until("every cheat rejected and every honest claim finalized", settled, 240, everyone)
    finally:
        stop.set()
        clock.join(timeout=10)
    suite.anvil.advance(WINDOW + 1)  # every window has closed: the tower collects its prizes
    wait_until(
        "every challenge settled and its prize collected",
        lambda: all(ch.state in (CHALLENGE_LOST, CHALLENGE_COLLECTED) for _, ch in suite.challenges()), 60, everyone,
    )  # fmt: skip
    for d in everyone:
        d.terminate()

    # every cheat was challenged by the tower before its window closed, and only the cheats
    claims = dict(suite.claims())
    margins = []
    for ev in suite.events("tasks", "Challenged"):
        cid = ev["args"]["claim_id"]
        assert cid in cheat_claims, f"honest claim {cid} was challenged"
        assert ev["args"]["challenger"] == tower.address
        ts = suite.chain.w3.eth.get_block(ev["blockNumber"])["timestamp"]
        deadline = claims[cid].time + WINDOW
        assert ts < deadline, f"claim {cid} challenged {ts - deadline} s after its window closed"
        margins.append(deadline - ts)
    assert {ev["args"]["claim_id"] for ev in suite.events("tasks", "Challenged")} == cheat_claims
    assert all(ch.state == CHALLENGE_COLLECTED for _, ch in suite.challenges())  # won, and the prize collected
    assert suite.balance(tower.address) == FUNDS + len(cheat_claims) * PRIZE
    won = {d.address: sum(1 for c in honest_claims if claims[c].solver == d.address) for d in (solver, rival)}
    assert sum(won.values()) == len(honest_claims)
    assert suite.balance(solver.address) == FUNDS + won[solver.address] * REWARD
    assert suite.balance(rival.address) == FUNDS + won[rival.address] * REWARD
    races = sum(1 for d in (solver, rival) for r in d.intents() if r["receipt_status"] == 0) + sum(
        1 for d in (solver, rival) for r in d.logs() if r.get("event") == "race_lost"
    )
    for d in everyone:
        assert_no_move_twice(suite, d)
    assert_chain_moves_unique(suite)
    print(f"\nload: {len(claims)} claims, {len(cheat_claims)} cheats; window margin at challenge: "
          f"min {min(margins)} s, max {max(margins)} s of {WINDOW} (chain time at {RATE} s/s); "
          f"honest claims split {sorted(won.values())}, {races} lost races")  # fmt: skip
