"""The node goes away in the middle of a game and comes back: both daemons back off (bounded,
exponential), lose nothing they recorded, and the game still ends with the cheater slashed."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from _e2e import Fleet, assert_no_move_twice, deploy, program, wait_until
from verifier.court import devnet
from verifier.court.states import CHALLENGE_WON, CLAIM_REJECTED as REJECTED
from verifier.daemon.sender import Backoff


@dataclass
class Node:
    """A private anvil whose state survives restarts (--state), on a fixed port."""

    port: int
    state: Path
    keys: list[str]
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rpc(self, method: str, params: list | None = None):  # noqa: ANN201
        return devnet.rpc(self.url, method, params)

    def advance(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine")

    def start(self) -> None:
        self.process, _ = devnet.start_anvil("--state", str(self.state), port=self.port)

    def stop(self) -> None:
        if self.process is not None:
            devnet.stop(self.process, timeout=30)  # anvil dumps its state on the way out


def test_node_outage__daemons_back_off_and_the_game_still_ends(anvil, toys, tmp_path) -> None:
    node = Node(devnet.free_port(), tmp_path / "state.json", anvil.keys)
    node.start()
    fleet = None
    try:
        suite = deploy(node, tmp_path)  # type: ignore[arg-type]
        p = toys(50, steps=24)
        tid = suite.post_task(program(p))
        fleet = Fleet(suite, tmp_path)
        tower = fleet("challenger", 2, [p], "tower")
        cheater = fleet("solver", 3, [p], "cheat", cheat="wrong-element:17,3")
        tower.start()
        cheater.start()
        procs = [tower, cheater]

        def moves() -> int:
            return len(suite.events("game", "Picked"))

        wait_until("the game under way", lambda: moves() >= 2, 120, procs)
        node.stop()
        outage = time.monotonic()
        wait_until(
            "both daemons backing off",
            lambda: all(len([r for r in d.events("rpc_error") if r["ts"] > time.time() - 60]) >= 3 for d in procs),
            60,
        )
        node.start()
        down = time.monotonic() - outage
        cid = suite.task(tid).claim_id
        wait_until("the slash", lambda: suite.claim(cid).state == REJECTED, 120, procs)
        wait_until("the settlement", lambda: suite.challenges()[0][1].state == CHALLENGE_WON, 60, procs)
        for d in procs:
            assert d.alive(), d.tail()  # it never gave up
            waits = [r["retry_in"] for r in d.events("rpc_error")]
            assert max(waits) <= Backoff().maximum * 1.25
            assert waits[-1] > waits[0], waits  # exponential: the waits grew while the node was down
            assert d.terminate() == 0
            assert_no_move_twice(suite, d)
        assert down > 1.0
    finally:
        if fleet is not None:
            fleet.kill_all()
        node.stop()
