"""What the daemons read from the chain: task, claim and challenge records and their
states (contracts/Tasks.vy), the View that reads them, the daemons' errors, and JSON-lines logs."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from verifier.core.errors import BisectmlError
from verifier.court.game import Level, Outcome, Role
from verifier.court.play import Court

# Game.vy's limits (Tasks.vy accepts more: a task beyond them can never be challenged)
GAME_MAX_ARITY = 32
GAME_MAX_SLOTS = 512
MAX_UINT = 2**256 - 1

# task, claim and challenge states (contracts/Tasks.vy)
TASK_OPEN, TASK_DONE, TASK_RECLAIMED = 1, 2, 3
CLAIM_LIVE, CLAIM_REJECTED, CLAIM_FINALIZED = 1, 2, 3
CHALLENGE_OPEN, CHALLENGE_LOST, CHALLENGE_WON, CHALLENGE_VOID = 1, 2, 3, 4
CHALLENGE_NAMES = {1: "open", 2: "lost", 3: "won", 4: "void"}


class DaemonError(BisectmlError, RuntimeError):
    """A daemon cannot start or cannot go on (bad options, no key, no funds, a locked data dir)."""


class Reverted(BisectmlError, RuntimeError):
    """A transaction would revert or did: another transaction changed the state; re-derive."""


# -- chain records ----------------------------------------------------------------------------


@dataclass
class TaskRec:
    """`Tasks.tasks(id)`, field for field."""

    poster: str
    program_id: bytes
    graph_root: bytes
    initial_root: bytes
    dataset_root: bytes
    n_nodes: int
    n_slots: int
    steps: int
    arity: int
    clock: int
    window: int
    reward: int
    solver_bond: int
    challenger_bond: int
    deadline: int
    claim_id: int
    state: int


@dataclass
class ClaimRec:
    """`Tasks.claims(id)`, field for field."""

    task_id: int
    solver: str
    final_root: bytes
    time: int
    challenges: int
    unsettled: int
    credit: int
    state: int


@dataclass
class ChallengeRec:
    """`Tasks.challenges(id)`, field for field."""

    claim_id: int
    challenger: str
    game_id: int
    state: int


def _record(cls: type, values: Any) -> Any:
    names = [f.name for f in fields(cls)]
    if len(values) != len(names):
        raise DaemonError(f"{cls.__name__} has {len(values)} fields on chain, {len(names)} here; update verifier/daemon/.")
    return cls(**dict(zip(names, values)))


class View:
    """One tick's reads of the chain, memoized so one tick sees one consistent picture."""

    def __init__(self, court: Court) -> None:
        self.court = court
        self._tasks: dict[int, TaskRec] = {}
        self._claims: dict[int, ClaimRec] = {}
        self._challenges: dict[int, ChallengeRec] = {}
        self._now: int | None = None

    @property
    def now(self) -> int:
        """The latest block's timestamp (the chain's clock, never the local one)."""
        if self._now is None:
            self._now = int(self.court.chain.w3.eth.get_block("latest")["timestamp"])
        return self._now

    def task(self, task_id: int) -> TaskRec:
        if task_id not in self._tasks:
            self._tasks[task_id] = _record(TaskRec, self.court.tasks.functions.tasks(task_id).call())
        return self._tasks[task_id]

    def claim(self, claim_id: int) -> ClaimRec:
        if claim_id not in self._claims:
            self._claims[claim_id] = _record(ClaimRec, self.court.tasks.functions.claims(claim_id).call())
        return self._claims[claim_id]

    def challenge(self, challenge_id: int) -> ChallengeRec:
        if challenge_id not in self._challenges:
            self._challenges[challenge_id] = _record(ChallengeRec, self.court.tasks.functions.challenges(challenge_id).call())
        return self._challenges[challenge_id]

    def challenges_of(self, claim_id: int) -> list[int]:
        n = self.claim(claim_id).challenges
        out: list[int] = []
        while len(out) < n:
            page = self.court.tasks.functions.challenges_of(claim_id, len(out), 256).call()
            if not page:
                break
            out.extend(int(i) for i in page)
        return out

    def counts(self) -> tuple[int, int, int]:
        f = self.court.tasks.functions
        return int(f.task_count().call()), int(f.claim_count().call()), int(f.challenge_count().call())


# -- logs ---------------------------------------------------------------------------------------


class JsonLog:
    """Structured logs: one JSON object a line, to stderr and to a file in the data directory."""

    def __init__(self, daemon: str, stream: TextIO | None = None) -> None:
        self.daemon = daemon
        self.stream = stream if stream is not None else sys.stderr
        self.file: TextIO | None = None
        self._once: set[str] = set()

    def open_file(self, path: Path) -> None:
        self.file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed in close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def __call__(self, event: str, level: str = "info", **data: Any) -> None:
        rec = {"ts": round(time.time(), 3), "daemon": self.daemon, "pid": os.getpid(), "level": level, "event": event}
        rec.update({k: _jsonable(v) for k, v in data.items()})
        line = json.dumps(rec, separators=(",", ":"))
        for out in (self.stream, self.file):
            if out is None:
                continue
            try:
                out.write(line + "\n")
                out.flush()
            except (OSError, ValueError):
                pass

    def alert(self, event: str, **data: Any) -> None:
        self(event, level="alert", **data)

    def once(self, tag: str, event: str, level: str = "info", **data: Any) -> None:
        """Log `event` the first time `tag` is seen in this process (avoids a line per tick)."""
        if tag not in self._once:
            self._once.add(tag)
            self(event, level=level, **data)


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        return "0x" + bytes(v).hex()
    if isinstance(v, Level | Outcome | Role):
        return v.name
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)
