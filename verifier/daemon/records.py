"""What the daemons read from the chain: task, claim and challenge records and their
states (contracts/Tasks.vy), the View that reads them, the daemons' errors, and JSON-lines logs."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from verifier.core.errors import BisectmlError
from verifier.court.chain import ChainError
from verifier.court.game import Level, Outcome, Role
from verifier.court.play import Court, challenge_ids

# Game.vy's limits (Tasks.vy accepts more: a task beyond them can never be challenged)
GAME_MAX_ARITY = 32
GAME_MAX_SLOTS = 512
REORG_DEPTH = 12  # blocks each event scan re-reads, so a shallow reorg cannot hide an event
MAX_UINT = 2**256 - 1


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
    commitment: bytes
    final_root: bytes
    time: int  # the commit's timestamp while COMMITTED, the reveal's from then on
    challenges: int
    unsettled: int
    winners: int
    collected: int
    state: int
    gas: int = 0  # the winners' metered gas so far (the prize is split in proportion to it)
    shared: int = 0  # the prize paid out so far


@dataclass
class ChallengeRec:
    """`Tasks.challenges(id)`, field for field."""

    claim_id: int
    challenger: str
    game_id: int
    state: int
    gas: int = 0  # metered gas: the challenge tx, plus the game's meter once won


def _record(cls: type, values: Any) -> Any:
    names = [f.name for f in fields(cls)]
    if len(values) != len(names):
        raise DaemonError(f"{cls.__name__} has {len(values)} fields on chain, {len(names)} here; update verifier/daemon/.")
    return cls(**dict(zip(names, values)))


class View:
    """One tick's reads of the chain, memoized and pinned to one block (the latest when first
    asked), so one tick sees one consistent picture: a claim read as live and its task read a
    moment later can never disagree about a settlement that landed in between."""

    def __init__(self, court: Court) -> None:
        self.court = court
        self._tasks: dict[int, TaskRec] = {}
        self._claims: dict[int, ClaimRec] = {}
        self._challenges: dict[int, ChallengeRec] = {}
        self._words: dict[tuple[str, int], int] = {}
        self._block: int | None = None
        self._now: int | None = None

    def _pin(self) -> None:
        if self._block is None:
            head = self.court.chain.w3.eth.get_block("latest")
            self._block, self._now = int(head["number"]), int(head["timestamp"])

    @property
    def block(self) -> int:
        """The block every read of this view is made at."""
        self._pin()
        assert self._block is not None
        return self._block

    @property
    def now(self) -> int:
        """The pinned block's timestamp (the chain's clock, never the local one)."""
        self._pin()
        assert self._now is not None
        return self._now

    def _call(self, fn: Any) -> Any:
        return self.court.chain.read(fn, self.block)

    def task(self, task_id: int) -> TaskRec:
        if task_id not in self._tasks:
            self._tasks[task_id] = _record(TaskRec, self._call(self.court.tasks.functions.tasks(task_id)))
        return self._tasks[task_id]

    def result_slots(self, task_id: int) -> int:
        """The task's result slots as a mask (SPEC 7.11); 0: the final root alone."""
        return self._memo("result_slots", task_id, lambda: self.court.tasks.functions.result_slots(task_id))

    def published(self, claim_id: int) -> int:
        """The result slots the claim has shown available, as a mask."""
        return self._memo("published", claim_id, lambda: self.court.tasks.functions.published(claim_id))

    def _memo(self, kind: str, ident: int, fn: Any) -> int:
        key = (kind, ident)
        if key not in self._words:
            self._words[key] = int(self._call(fn()))
        return self._words[key]

    def claim(self, claim_id: int) -> ClaimRec:
        if claim_id not in self._claims:
            self._claims[claim_id] = _record(ClaimRec, self._call(self.court.tasks.functions.claims(claim_id)))
        return self._claims[claim_id]

    def challenge(self, challenge_id: int) -> ChallengeRec:
        if challenge_id not in self._challenges:
            rec = self._call(self.court.tasks.functions.challenges(challenge_id))
            self._challenges[challenge_id] = _record(ChallengeRec, rec)
        return self._challenges[challenge_id]

    def prefetch(self, tasks: Iterable[int] = (), claims: Iterable[int] = (), challenges: Iterable[int] = ()) -> None:
        """Reads these records, then the claims of these challenges, then the tasks of all those
        claims: at most three batches for a whole tick, not a round trip per open record. What a
        batch cannot read is left to be read (and to fail) where it is needed."""
        claims, challenges = set(claims), set(challenges)  # each is read twice below
        self._batch(tasks, claims, challenges)
        claims |= {self._challenges[i].claim_id for i in challenges if i in self._challenges}
        self._batch((), claims, ())
        self._batch({self._claims[i].task_id for i in claims if i in self._claims}, (), ())

    def _batch(self, tasks: Iterable[int], claims: Iterable[int], challenges: Iterable[int]) -> None:
        f = self.court.tasks.functions
        wanted = [
            *((self._tasks, TaskRec, f.tasks, i) for i in sorted(set(tasks)) if i not in self._tasks),
            *((self._claims, ClaimRec, f.claims, i) for i in sorted(set(claims)) if i not in self._claims),
            *((self._challenges, ChallengeRec, f.challenges, i) for i in sorted(set(challenges)) if i not in self._challenges),
        ]
        if not wanted:
            return
        try:
            values = self.court.chain.read_many([read(i) for _, _, read, i in wanted], self.block)
        except ChainError:
            return
        for (memo, cls, _, i), value in zip(wanted, values, strict=True):
            try:
                memo[i] = _record(cls, value)
            except DaemonError:
                continue

    def challenges_of(self, claim_id: int) -> list[int]:
        return challenge_ids(self.court, claim_id, self.claim(claim_id).challenges, self.block)

    def counts(self) -> tuple[int, int, int]:
        f = self.court.tasks.functions
        return int(self._call(f.task_count())), int(self._call(f.claim_count())), int(self._call(f.challenge_count()))


# -- logs ---------------------------------------------------------------------------------------


class JsonLog:
    """Structured logs: one JSON object a line, to stderr and to a file in the data directory."""

    def __init__(self, daemon: str, stream: TextIO | None = None) -> None:
        self.daemon = daemon
        self.stream = stream if stream is not None else sys.stderr
        self.file: TextIO | None = None
        self._once: set[str] = set()
        # called with (event, data) for every event logged: the metrics count them
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []

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
        for observe in self.observers:
            observe(event, data)

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
