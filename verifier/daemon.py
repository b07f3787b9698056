"""Daemon machinery shared by the solver and the challenger watchtower.

Modelled on op-challenger and lnd's watchtower:

- a tick loop that re-derives everything from the chain on every tick (tasks, claims,
  challenges and games through the contracts' views and events); the only memory kept
  between ticks is a cursor over ids and the set of ids that are finished for good;
- an SQLite store (WAL) that records every transaction *before* it is broadcast, signed, with
  its nonce and hash, under a key that names the move (for a game move: game id, level,
  range, index, function); a key that has been sent successfully is never sent again, and on
  start a recorded-but-unconfirmed transaction is reconciled against the chain (found,
  re-broadcast byte for byte, or abandoned if it would now revert) before anything else;
- dry-run before every send, and losing a race (the state moved under us) is an ordinary
  outcome: the next tick re-derives;
- a transaction still unmined after `--bump-after` seconds is replaced at its nonce with fees
  raised by at least 12.5% and to what the chain asks now, up to `--max-fee-gwei` (an alert
  says when the cap stops it): a fee spike must not run an honest player's clock out;
- bounded exponential back-off on RPC errors, and per-item isolation: one game's (or task's)
  failure is logged and retried later with its own back-off, never stopping the others;
- structured JSON-lines logs, an observe-only mode that logs what it would send, clean
  shutdown on SIGINT/SIGTERM (the transaction in flight is finished; a second signal abandons
  it, and the store reconciles it on the next start), and a lock so a data directory is served
  by one process at a time (start and stop are idempotent);
- a program registry: the daemon serves only tasks whose on-chain program id is one of its
  programs (the same step graph, initial state and data with another step count counts too),
  and keeps each program's trace, resumable, under its data directory.

`BISECTML_FAILPOINT=<point>:<n>` (tests only) kills the process with SIGKILL the n-th time it
passes `<point>`: `recorded` (a transaction is recorded, not yet broadcast) or `broadcast`
(broadcast, its receipt not yet recorded).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from .chain import Chain, ChainError, Deployment, revert_reason
from .errors import BisectmlError, TraceError
from .game import GameState, Level, Move, Outcome, Player, Role
from .play import PROOF_LEVELS, Court, whose_move
from .program import Program, load_program
from .trace import DEFAULT_CHECKPOINT_EVERY, Trace

# Game.vy's limits (Tasks.vy accepts more: a task beyond them can never be challenged)
GAME_MAX_ARITY = 32
GAME_MAX_SLOTS = 512
MAX_UINT = 2**256 - 1

# task, claim and challenge states (contracts/Tasks.vy)
TASK_OPEN, TASK_DONE, TASK_RECLAIMED = 1, 2, 3
CLAIM_LIVE, CLAIM_REJECTED, CLAIM_FINALIZED = 1, 2, 3
CHALLENGE_OPEN, CHALLENGE_LOST, CHALLENGE_WON, CHALLENGE_VOID = 1, 2, 3, 4
CHALLENGE_NAMES = {1: "open", 2: "lost", 3: "won", 4: "void"}

# a transaction intent's life in the store
RECORDED, BROADCAST, CONFIRMED, ABANDONED, DROPPED = "recorded", "broadcast", "confirmed", "abandoned", "dropped"
REPLACED = "replaced"  # broadcast, then replaced by a later attempt at the same nonce with higher fees
UNFINISHED = (RECORDED, BROADCAST, REPLACED)
REORG_DEPTH = 12  # blocks each event scan re-reads, so a shallow reorg cannot hide an event
IDLE_TICK = 5.0  # seconds between full ticks while no block arrives and no work is under way
MAX_ATTEMPTS = 5  # sends of one key that reverted on-chain before the daemon gives up on it
# Node errors (geth, reth, anvil) for a transaction whose fees are too low to enter a block now
PRICED_OUT = ("base fee", "underpriced", "fee too low", "fee cap")


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
        raise DaemonError(f"{cls.__name__} has {len(values)} fields on chain, {len(names)} here; update verifier/daemon.py.")
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


# -- the store ----------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,            -- names the move, e.g. game:3:STEP:..:reveal
    attempt INTEGER NOT NULL,     -- 1, 2, ..: earlier attempts of the key never took effect
    function TEXT NOT NULL,
    target TEXT NOT NULL,         -- contract address
    data TEXT NOT NULL,           -- calldata, hex
    nonce INTEGER NOT NULL,
    tx_hash TEXT NOT NULL,
    raw TEXT NOT NULL,            -- the signed transaction, re-broadcast as is after a crash
    status TEXT NOT NULL,         -- recorded, broadcast, replaced, confirmed, abandoned, dropped
    receipt_status INTEGER,       -- 1 success, 0 reverted (when confirmed)
    block INTEGER,
    gas_used INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (key, attempt)
);
CREATE INDEX IF NOT EXISTS intents_status ON intents (status);
CREATE TABLE IF NOT EXISTS closed (kind TEXT NOT NULL, id INTEGER NOT NULL, why TEXT, PRIMARY KEY (kind, id));
"""


@dataclass
class Intent:
    id: int
    key: str
    attempt: int
    function: str
    target: str
    data: str
    nonce: int
    tx_hash: str
    raw: str
    status: str
    receipt_status: int | None
    created: float


class Store:
    """What this daemon sent and what it is finished with, in SQLite (WAL, synchronous commits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # an intent is on disk before its broadcast
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()

    # meta: the chain, account and deployment this directory belongs to

    def bind(self, **values: str) -> None:
        """Refuse a data directory that belongs to another chain, account or deployment."""
        for k, v in values.items():
            row = self.db.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta (k, v) VALUES (?, ?)", (k, v))
            elif row[0] != v:
                raise DaemonError(
                    f"the data directory belongs to {k} {row[0]}, not {v}; use another --data-dir for this one."
                )

    # intents

    def _rows(self, where: str, args: tuple = ()) -> list[Intent]:
        cols = "id, key, attempt, function, target, data, nonce, tx_hash, raw, status, receipt_status, created"
        return [Intent(*r) for r in self.db.execute(f"SELECT {cols} FROM intents WHERE {where} ORDER BY id", args)]

    def attempts(self, key: str) -> list[Intent]:
        return self._rows("key = ?", (key,))

    def unfinished(self) -> list[Intent]:
        return self._rows(f"status IN ({', '.join('?' * len(UNFINISHED))})", UNFINISHED)

    def intent(self, row: int) -> Intent:
        return self._rows("id = ?", (row,))[0]

    def status(self, row: int) -> str:
        return str(self.db.execute("SELECT status FROM intents WHERE id = ?", (row,)).fetchone()[0])

    def replace(self, old: Intent, tx_hash: str, raw: str) -> Intent:
        """Record a replacement of `old` (same key, target, data and nonce) and mark `old`
        replaced, in one transaction: a crash leaves either both or neither."""
        attempt = 1 + max(a.attempt for a in self.attempts(old.key))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.record(old.key, attempt, old.function, old.target, old.data, old.nonce, tx_hash, raw)
            self.mark(old.id, REPLACED)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return self.intent(row)

    def all(self) -> list[Intent]:
        return self._rows("1 = 1")

    def record(self, key: str, attempt: int, function: str, target: str, data: str, nonce: int, tx_hash: str, raw: str) -> int:
        now = time.time()
        cur = self.db.execute(
            "INSERT INTO intents (key, attempt, function, target, data, nonce, tx_hash, raw, status, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, attempt, function, target, data, nonce, tx_hash, raw, RECORDED, now, now),
        )
        return int(cur.lastrowid or 0)

    def mark(self, row: int, status: str, receipt: Any = None) -> None:
        if receipt is None:
            self.db.execute("UPDATE intents SET status = ?, updated = ? WHERE id = ?", (status, time.time(), row))
        else:
            self.db.execute(
                "UPDATE intents SET status = ?, receipt_status = ?, block = ?, gas_used = ?, updated = ? WHERE id = ?",
                (status, int(receipt["status"]), int(receipt["blockNumber"]), int(receipt["gasUsed"]), time.time(), row),
            )

    # finished ids (a persisted cursor: what never needs looking at again)

    def close_item(self, kind: str, ident: int, why: str = "") -> None:
        self.db.execute("INSERT OR IGNORE INTO closed (kind, id, why) VALUES (?, ?, ?)", (kind, ident, why))

    def closed(self, kind: str) -> set[int]:
        return {int(r[0]) for r in self.db.execute("SELECT id FROM closed WHERE kind = ?", (kind,))}

    def get(self, k: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return default if row is None else row[0]

    def put(self, k: str, v: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (k, v))

    def summary(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM intents GROUP BY status"):
            by_status[status] = n
        reverted = self.db.execute("SELECT COUNT(*) FROM intents WHERE receipt_status = 0").fetchone()[0]
        return {"intents": by_status, "reverted": reverted}


# -- failpoints (tests) -----------------------------------------------------------------------


class _Failpoints:
    def __init__(self) -> None:
        spec = os.environ.get("BISECTML_FAILPOINT", "")
        self.point, _, n = spec.partition(":")
        self.left = int(n) if n.isdigit() else 0

    def hit(self, point: str) -> None:
        if self.point != point or self.left <= 0:
            return
        self.left -= 1
        if self.left == 0:
            os.kill(os.getpid(), signal.SIGKILL)


# -- RPC errors and back-off ----------------------------------------------------------------------


def is_transport_error(e: BaseException) -> bool:
    """Whether `e` (or its cause) is the node being unreachable or slow, not a revert."""
    import requests

    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, requests.exceptions.RequestException | ConnectionError | TimeoutError):
            return True
        if type(cur).__name__ in ("TimeExhausted", "ProviderConnectionError"):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


@dataclass
class Backoff:
    """Exponential back-off with jitter, bounded by `maximum` seconds."""

    initial: float = 0.5
    maximum: float = 30.0
    failures: int = 0

    def next(self) -> float:
        self.failures += 1
        base = min(self.maximum, self.initial * 2 ** (self.failures - 1))
        return base * (0.75 + 0.5 * random.random())

    def reset(self) -> None:
        self.failures = 0


# -- sending: dry-run, record, broadcast, confirm -------------------------------------------------


class Sender:
    """Sends contract calls so that the same move is never sent twice.

    `send(key, fn)`: a key already sent successfully (or still unresolved) is skipped; the
    call is dry-run (a doomed call raises Reverted and is never recorded); the signed
    transaction is recorded in the store, then broadcast, then its receipt is recorded.

    A transaction still pending `bump_after` seconds after it was signed is replaced at the same
    nonce with fees raised by at least 12.5% (the replacement minimum of geth and reth is 10%)
    and at least what the chain asks now, up to `max_fee` wei per gas: a fee spike must not
    leave an honest move unmined until its clock runs out.
    """

    def __init__(
        self,
        chain: Chain,
        store: Store,
        log: JsonLog,
        observe: bool,
        stopping: Callable[[], int],
        bump_after: float = 60.0,
        max_fee: int | None = None,
    ) -> None:
        if chain.key is None and not observe:
            raise DaemonError("the daemon signs its own transactions; give it a key with --key-file or BISECTML_PRIVATE_KEY.")
        self.chain = chain
        self.w3 = chain.w3
        self.store = store
        self.log = log
        self.observe = observe
        self.stopping = stopping
        self.failpoints = _Failpoints()
        self.receipt_timeout = bump_after
        self.bump_after = bump_after
        self.max_fee = max_fee

    def done(self, key: str) -> bool:
        """The move named `key` has been sent and succeeded."""
        return any(a.status == CONFIRMED and a.receipt_status == 1 for a in self.store.attempts(key))

    def send(self, key: str, fn: Any, **context: Any) -> Any:
        """Dry-run, record, broadcast and confirm `fn`; returns the receipt, or None if skipped."""
        what = fn.fn_name
        attempts = self.store.attempts(key)
        if any(a.status in UNFINISHED for a in attempts):
            self.reconcile()  # a send that did not finish (an RPC error): settle it first
            attempts = self.store.attempts(key)
            if any(a.status in UNFINISHED for a in attempts):
                return None
        if any(a.status == CONFIRMED and a.receipt_status == 1 for a in attempts):
            self.log.once(f"done:{key}", "already_sent", key=key, function=what)
            return None
        reverted = sum(1 for a in attempts if a.status == CONFIRMED and a.receipt_status == 0)
        if reverted >= MAX_ATTEMPTS:
            self.log.once(f"gaveup:{key}", "gave_up", level="alert", key=key, function=what, reverted=reverted)
            return None
        acct = self.chain.account
        tx: dict[str, Any] = {"from": acct}
        try:
            fn.call(tx)
            gas = int(fn.estimate_gas(tx) * 1.2) + 10_000
        except Exception as e:
            if is_transport_error(e):
                raise
            if self.observe:  # e.g. no allowance yet: say what would be sent all the same
                self.log.once(f"observe:{key}", "would_send", key=key, function=what, dry_run=revert_reason(e), **context)
                return None
            raise Reverted(f"{what} would revert: {revert_reason(e)}") from None
        if self.observe:
            self.log.once(f"observe:{key}", "would_send", key=key, function=what, dry_run="ok", **context)
            return None
        nonce = self.w3.eth.get_transaction_count(acct, "pending")
        built, tx_hash, raw = self.sign(fn, nonce, gas)
        row = self.store.record(key, len(attempts) + 1, what, built["to"], built["data"], nonce, tx_hash, raw)
        self.failpoints.hit(RECORDED)
        self.w3.eth.send_raw_transaction(raw)
        self.store.mark(row, BROADCAST)
        self.failpoints.hit(BROADCAST)
        receipt = self._wait(tx_hash)
        if receipt is None:
            raise ChainError(f"{what}: no receipt for {tx_hash} within {self.receipt_timeout:.0f} s; it is reconciled next tick.")
        self._settle(self.store.intent(row), receipt)
        self.log(
            "sent", key=key, function=what, tx=tx_hash, nonce=nonce, block=int(receipt["blockNumber"]),
            gas=int(receipt["gasUsed"]), ok=receipt["status"] == 1, **context,
        )  # fmt: skip
        if receipt["status"] != 1:
            raise Reverted(f"{what} reverted on-chain in block {receipt['blockNumber']}; the state moved, re-deriving.")
        return receipt

    def sign(self, fn: Any, nonce: int, gas: int) -> tuple[dict[str, Any], str, str]:
        """The transaction for `fn` at `nonce`, signed: (fields, hash, raw bytes as hex)."""
        acct = self.chain.account
        built = fn.build_transaction({"from": acct, "nonce": nonce, "gas": gas, "chainId": self.chain.chain_id})
        if self.max_fee is not None:  # the cap holds for first sends too
            for field in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice"):
                if field in built:
                    built[field] = min(int(built[field]), self.max_fee)
        signed = self.chain.key.sign_transaction(built)
        return built, "0x" + bytes(signed.hash).hex(), "0x" + bytes(signed.raw_transaction).hex()

    def _wait(self, tx_hash: str) -> Any:
        """The receipt, polled; None on timeout or when a second signal abandons the wait."""
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.02
        while time.monotonic() < deadline:
            receipt = self._receipt(tx_hash)
            if receipt is not None:
                return receipt
            if self.stopping() >= 2:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        return None

    def _receipt(self, tx_hash: str) -> Any:
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None

    def _settle(self, it: Intent, receipt: Any) -> None:
        """`it` was mined: record it, and drop every other attempt at its nonce (none can be mined now)."""
        self.store.mark(it.id, CONFIRMED, receipt)
        for other in self.store.unfinished():
            if other.nonce == it.nonce and other.id != it.id:
                self.store.mark(other.id, DROPPED)

    def reconcile(self) -> None:
        """Resolve every recorded-but-unconfirmed transaction against the chain: found mined,
        dropped (its nonce used by another), abandoned (it would now revert; never broadcast
        again), or (re-)broadcast, replaced with higher fees once it has waited `bump_after`."""
        for it in self.store.unfinished():
            if self.store.status(it.id) not in UNFINISHED:
                continue  # settled earlier in this pass, with another attempt at its nonce
            receipt = self._receipt(it.tx_hash)
            if receipt is not None:
                self._settle(it, receipt)
                self.log("reconciled", key=it.key, tx=it.tx_hash, outcome="mined", ok=receipt["status"] == 1)
                continue
            if it.status == REPLACED:
                # Its replacement (a later row) is reconciled below; it may still be mined first.
                if not any(o.nonce == it.nonce and o.status != REPLACED for o in self.store.unfinished()):
                    self.store.mark(it.id, DROPPED)  # the replacement was settled: this one never will be
                continue
            mined_nonce = self.w3.eth.get_transaction_count(self.chain.account, "latest")
            if mined_nonce > it.nonce:
                for o in self.store.attempts(it.key):
                    mined = self._receipt(o.tx_hash) if o.nonce == it.nonce and o.id != it.id else None
                    if mined is not None:  # an earlier attempt at this nonce was mined after all
                        self._settle(o, mined)
                        self.log("reconciled", key=o.key, tx=o.tx_hash, outcome="mined", ok=mined["status"] == 1)
                        break
                else:
                    self.store.mark(it.id, DROPPED)
                    self.log.alert("reconciled", key=it.key, tx=it.tx_hash, outcome="dropped", nonce=it.nonce)
                continue
            try:
                self.w3.eth.call({"from": self.chain.account, "to": it.target, "data": it.data})
            except Exception as e:
                if is_transport_error(e):
                    raise
                # the move is stale: never broadcast it (its nonce is still free)
                self.store.mark(it.id, ABANDONED)
                self.log("reconciled", key=it.key, tx=it.tx_hash, outcome="abandoned", reason=revert_reason(e))
                continue
            outcome = "rebroadcast"
            if time.time() - it.created >= self.bump_after:  # sent (or signed) long ago: outbid?
                bumped = self._replace(it)
                if bumped is not None:
                    it, outcome = bumped, "replaced"
            try:
                self.w3.eth.send_raw_transaction(it.raw)
            except Exception as e:
                if is_transport_error(e):
                    raise
                msg = revert_reason(e).lower()
                if any(s in msg for s in PRICED_OUT):
                    # Valid, only outbid for now (its fee is capped): kept, and retried next tick.
                    self.log.once(f"priced:{it.id}", "priced_out", level="alert", key=it.key, tx=it.tx_hash,
                                  reason=revert_reason(e))  # fmt: skip
                    continue
                if "already" not in msg and "known" not in msg:
                    self.store.mark(it.id, ABANDONED)
                    self.log.alert("reconciled", key=it.key, tx=it.tx_hash, outcome="rejected", reason=revert_reason(e))
                    continue
            self.store.mark(it.id, BROADCAST)
            receipt = self._wait(it.tx_hash)
            if receipt is None:
                raise ChainError(f"{outcome} {it.tx_hash} got no receipt; it is reconciled again next tick.")
            self._settle(it, receipt)
            self.log("reconciled", key=it.key, tx=it.tx_hash, outcome=outcome, ok=receipt["status"] == 1)

    def _replace(self, it: Intent) -> Intent | None:
        """A replacement of pending `it` at its nonce with raised fees, recorded; None if
        `max_fee` leaves no room for the minimum raise (an alert says so)."""
        if self.chain.key is None:
            return None  # watch-only: nothing to sign with
        old = _decode(it.raw)
        tx = {k: v for k, v in old.items() if k not in ("v", "r", "s")}
        bump = lambda fee: fee + (fee + 7) // 8 + 1  # noqa: E731 - at least 12.5% more, rounded up
        if "maxFeePerGas" in old:
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = max(bump(old["maxPriorityFeePerGas"]), int(self.w3.eth.max_priority_fee))
            fee = max(bump(old["maxFeePerGas"]), 2 * base + tip)
            if self.max_fee is not None:
                fee = min(fee, self.max_fee)
                tip = min(tip, fee)
            if fee < bump(old["maxFeePerGas"]) or tip < bump(old["maxPriorityFeePerGas"]):
                fee = 0
            tx.update(maxFeePerGas=fee, maxPriorityFeePerGas=tip)
            before, after = old["maxFeePerGas"], fee
        else:
            fee = max(bump(old["gasPrice"]), int(self.w3.eth.gas_price))
            if self.max_fee is not None:
                fee = min(fee, self.max_fee)
            if fee < bump(old["gasPrice"]):
                fee = 0
            tx.update(gasPrice=fee)
            before, after = old["gasPrice"], fee
        if not fee:
            self.log.once(f"capped:{it.id}", "fee_capped", level="alert", key=it.key, tx=it.tx_hash, fee=before,
                          max_fee=self.max_fee)  # fmt: skip
            return None
        signed = self.chain.key.sign_transaction(tx)
        new = self.store.replace(it, "0x" + bytes(signed.hash).hex(), "0x" + bytes(signed.raw_transaction).hex())
        self.log.alert("fee_bumped", key=it.key, old_tx=it.tx_hash, tx=new.tx_hash, nonce=it.nonce, fee=before, new_fee=after)
        return new


def _decode(raw: str) -> dict[str, Any]:
    """The fields of a signed transaction: typed (EIP-2718) or legacy."""
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    data = HexBytes(raw)
    if data[0] < 0x80:  # a type byte: typed transaction
        return dict(TypedTransaction.from_bytes(data).as_dict())
    import rlp

    nonce, gas_price, gas, to, value, payload, v, _, _ = rlp.decode(bytes(data))
    fields = {"nonce": nonce, "gasPrice": gas_price, "gas": gas, "to": to, "value": value, "data": payload}
    out = {k: int.from_bytes(x, "big") if k not in ("to", "data") else HexBytes(x) for k, x in fields.items()}
    v_int = int.from_bytes(v, "big")
    if v_int >= 35:  # EIP-155: v = chainId * 2 + 35 or 36
        out["chainId"] = (v_int - 35) // 2
    return out


def move_key(game_id: int, s: GameState, function: str) -> str:
    """Names a game move by the state it is made in: a state admits each move once."""
    return (
        f"game:{game_id}:{s.level.name}:{s.turn.name}:{s.step}:{s.node}:{s.lo}:{s.hi}:"
        f"{s.index}:{s.height}:{s.elem_index}:{int(s.top_known)}:{function}"
    )


# -- programs and traces --------------------------------------------------------------------------


def resolve_program_path(name_or_path: str) -> Path:
    """A path to an .onnx file, or the name of a program bundled in onnx_models."""
    from onnx_models.files import find_program

    path = find_program(name_or_path)
    if path is not None:
        return path
    raise DaemonError(f"no program file or bundled program named '{name_or_path}'; give a path to a program .onnx file.")


Family = tuple[bytes, int, int, bytes, bytes]  # graph root, N, S, initial root, data root: all but T


def _family(p: Program) -> Family:
    return (p.graph_root, p.n_nodes, p.n_slots, p.initial_state_root, p.data_root)


def _task_family(t: TaskRec) -> Family:
    return (bytes(t.graph_root), t.n_nodes, t.n_slots, bytes(t.initial_root), bytes(t.dataset_root))


Transform = Callable[[Program], Program]


class Registry:
    """The programs this daemon serves, matched to tasks by program id.

    A task whose program differs only in its step count from a loaded program is served too:
    the program is reloaded with the task's T and must then have the task's id exactly.
    """

    def __init__(self, paths: list[str], log: JsonLog, fallback: Callable[[TaskRec], Program | None] | None = None) -> None:
        if not paths and fallback is None:
            raise DaemonError("no programs: pass --program PATH (repeatable) for each program to serve.")
        self.log = log
        self.fallback = fallback  # programs built from the chain (the market's tasks)
        self._paths: dict[Family, Path] = {}
        self._by_id: dict[bytes, Program] = {}
        for name in paths:
            path = resolve_program_path(name)
            try:
                p = load_program(path)  # refuses programs the contracts cannot prove
            except BisectmlError as e:
                raise DaemonError(f"{path}: {e}") from None
            if p.n_slots > GAME_MAX_SLOTS:
                raise DaemonError(f"{path} has {p.n_slots} slots; games prove at most {GAME_MAX_SLOTS}. Split the step.")
            self._paths[_family(p)] = path
            self._by_id[p.id] = p
            log("program_loaded", path=str(path), program_id=p.id, steps=p.steps, nodes=p.n_nodes, slots=p.n_slots)

    @property
    def ids(self) -> list[bytes]:
        return list(self._by_id)

    def for_task(self, t: TaskRec) -> Program | None:
        pid = bytes(t.program_id)
        if pid in self._by_id:
            return self._by_id[pid]
        path = self._paths.get(_task_family(t))
        if path is None:
            return self._from_fallback(t)
        p = load_program(path, steps=t.steps)
        if p.id != pid:
            return None
        self._by_id[pid] = p
        return p

    def _from_fallback(self, t: TaskRec) -> Program | None:
        if self.fallback is None:
            return None
        try:
            p = self.fallback(t)
        except BisectmlError as e:  # e.g. a dataset not in the content store yet
            pid = bytes(t.program_id)
            self.log.once(f"fb:{pid.hex()}:{e}", "program_unavailable", level="alert", program_id=pid, why=str(e))
            return None
        if p is not None:
            self._by_id[p.id] = p
        return p


def checkpoint_interval(steps: int) -> int:
    """About 64 checkpoints a trace: a node-level query recomputes at most T/64 steps."""
    return max(1, min(DEFAULT_CHECKPOINT_EVERY, math.ceil(steps / 64)))


class Traces:
    """One resumable trace per program under `<data-dir>/traces`, computed a slice at a time."""

    def __init__(self, root: Path, log: JsonLog, transform: Transform | None = None, tag: str = "") -> None:
        self.root = root
        self.log = log
        self.transform = transform
        self.tag = tag
        self._traces: dict[bytes, Trace] = {}
        self._seconds: dict[bytes, float] = {}
        self.unfinished = False  # a trace wanted this tick is not done yet

    def get(self, program: Program) -> Trace:
        pid = program.id
        if pid not in self._traces:
            if self.transform is not None:
                program = self.transform(program)
            name = pid.hex() + (f"-{self.tag}" if self.tag else "")
            every = checkpoint_interval(program.steps)
            try:
                tr = Trace(program, self.root / name, checkpoint_every=every)
            except TraceError as e:  # e.g. an older trace format: a trace is derived data, start over
                self.log("trace_reset", program_id=pid, reason=str(e))
                shutil.rmtree(self.root / name, ignore_errors=True)
                tr = Trace(program, self.root / name, checkpoint_every=every)
            self._traces[pid] = tr
            self._seconds[pid] = 0.0
            if tr.steps_done:
                self.log("trace_resumed", program_id=pid, steps_done=tr.steps_done, steps=program.steps)
        return self._traces[pid]

    def advance(self, program: Program, budget: float) -> bytes | None:
        """Run the program's trace for up to about `budget` seconds; its final root once done.

        A trace left unfinished sets `unfinished`, which keeps the tick loop busy."""
        tr = self.get(program)
        if tr.done:
            return tr.final_root
        self.unfinished = True
        if budget <= 0:
            return None
        started = time.perf_counter()
        first = tr.steps_done
        chunk = tr.checkpoint_every
        while not tr.done:
            tr.run(stop_at=tr.steps_done + chunk)
            if time.perf_counter() - started >= budget:
                break
        self._seconds[program.id] += time.perf_counter() - started
        if tr.done:
            self.log(
                "trace_done", program_id=program.id, steps=program.steps, resumed_from=first,
                seconds=round(self._seconds[program.id], 3), final_root=tr.final_root,
            )  # fmt: skip
            return tr.final_root
        return None


# -- the daemon -----------------------------------------------------------------------------------


@dataclass
class Config:
    rpc_url: str
    data_dir: Path
    programs: list[str]
    key_file: str | None = None
    deployment: Path | None = None
    observe: bool = False
    poll: float = 1.0
    min_reward: int = 0
    cheat: str | None = None
    trace_budget: float = 5.0  # seconds of trace computation per tick, after the urgent work
    proof_grace: int = 30  # chain seconds an honest solver waits before sending a proof itself
    max_ticks: int = 0  # stop after this many ticks (0: run until signalled); for tests
    market: bool = True  # also serve the market's tasks (their programs are rebuilt from the chain)
    content_dir: Path | None = None  # where datasets and round features are found (default $BISECTML_HOME/content)
    bump_after: float = 60.0  # seconds a transaction may stay pending before it is re-sent with higher fees
    max_fee_gwei: float | None = None  # never bid more per gas than this (None: no cap)
    address: str | None = None  # with observe and no key: the account to watch as


class Daemon:
    """The tick loop; subclasses implement `tick`."""

    name = "daemon"

    def __init__(self, cfg: Config, stream: TextIO | None = None) -> None:
        self.cfg = cfg
        self.log = JsonLog(self.name, stream)
        self.signals = 0
        self.item_failures: dict[tuple[str, int], tuple[int, float]] = {}
        self.store: Store | None = None
        self._lock: TextIO | None = None

    # -- start-up: everything that can refuse is checked before the data dir is touched --------

    def prepare(self) -> None:
        cfg = self.cfg
        if cfg.address is not None and not cfg.observe:
            raise DaemonError("--address only watches; add --observe, or give a key to send with.")
        try:
            self.chain = Chain.connect(cfg.rpc_url, key_file=cfg.key_file, address=cfg.address)
        except ChainError as e:
            raise DaemonError(str(e)) from None
        w3 = self.chain.w3
        self.me = self.chain.account
        if not cfg.observe and w3.eth.get_balance(self.me) == 0:
            raise DaemonError(f"the wallet {self.me} has no ether for gas; fund it, or run with --observe.")
        try:
            deployment = Deployment.load(self.chain.chain_id, *([cfg.deployment] if cfg.deployment else []))
            self.court = Court(self.chain, deployment)
        except ChainError as e:
            raise DaemonError(str(e)) from None
        if not w3.eth.get_code(deployment.addresses["Tasks"]):
            raise DaemonError(f"no Tasks contract at {deployment.addresses['Tasks']} on this chain; redeploy or fix --deployment.")
        self.registry = Registry(cfg.programs, self.log, self._market_programs(deployment))

    def _market_programs(self, deployment: Deployment) -> Callable[[TaskRec], Program | None] | None:
        """Serve the market's tasks too, when the deployment has a market (programs built from the chain)."""
        if "Market" not in deployment.addresses or not self.cfg.market:
            return None
        from .content import ContentStore
        from .market import MarketClient, RoundPrograms

        rp = RoundPrograms(MarketClient(self.chain, deployment, ContentStore(self.cfg.content_dir)))
        return rp.for_task

    def acquire(self) -> bool:
        """Take the data directory's lock; False if another process holds it."""
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.cfg.data_dir / "daemon.lock", "a+", encoding="utf-8")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            return False
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock
        return True

    def release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.seek(0)
                self._lock.truncate()
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def open(self) -> None:
        d = self.cfg.data_dir
        self.log.open_file(d / "daemon.jsonl")
        self.store = Store(d / "store.sqlite")
        self.store.bind(
            chain_id=str(self.chain.chain_id), account=self.me, tasks=self.court.tasks.address, daemon=self.name
        )
        cap = None if self.cfg.max_fee_gwei is None else int(self.cfg.max_fee_gwei * 10**9)
        self.sender = Sender(
            self.chain, self.store, self.log, self.cfg.observe, lambda: self.signals, self.cfg.bump_after, cap
        )
        self.setup()

    def setup(self) -> None:
        """Subclass hook, after the store is open."""

    def tick(self) -> bool:  # pragma: no cover - abstract
        """One pass over everything; True while work is under way that needs no new block."""
        raise NotImplementedError

    # -- running ----------------------------------------------------------------------------

    def run(self) -> int:
        """Start, loop until signalled, stop cleanly. Exit codes: 0 stopped, 2 refused."""
        self.prepare()
        if not self.acquire():
            pid = read_pid(self.cfg.data_dir)
            self.log("already_running", pid=pid, data_dir=str(self.cfg.data_dir))
            return 0
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.open()
            self.log(
                "started", account=self.me, rpc=self.cfg.rpc_url, tasks=self.court.tasks.address,
                observe=self.cfg.observe, cheat=self.cfg.cheat, programs=self.registry.ids,
            )  # fmt: skip
            self.loop()
            return 0
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            if self.store is not None:
                self.log("stopped", store=self.store.summary())
                self.store.close()
            self.log.close()
            self.release()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.signals += 1
        self.log("signal", signal=signal.Signals(signum).name, count=self.signals)

    def loop(self) -> None:
        backoff = Backoff()
        ticks = 0
        last_head, last_full, busy = -1, 0.0, True
        while not self.signals:
            started = time.monotonic()
            try:
                self.sender.reconcile()  # before anything else, on every tick
                # Nothing on chain changes between blocks (not even the clock the contracts
                # read), so a tick without a new block is skipped unless work is under way.
                head = int(self.chain.w3.eth.block_number)
                if head != last_head or busy or self.item_failures or started - last_full >= IDLE_TICK:
                    busy = bool(self.tick())
                    last_head, last_full = head, started
                backoff.reset()
                wait = self.cfg.poll - (time.monotonic() - started)
            except Exception as e:  # noqa: BLE001 - the loop outlives any one failure
                wait = backoff.next()
                event = "rpc_error" if is_transport_error(e) or isinstance(e, ChainError) else "tick_failed"
                self.log(
                    event, level="warn" if event == "rpc_error" else "error", error=_one_line(e), where=_where(e),
                    retry_in=round(wait, 2), failures=backoff.failures,
                )  # fmt: skip
            ticks += 1
            if self.cfg.max_ticks and ticks >= self.cfg.max_ticks:
                break
            self.sleep(wait)

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + max(0.0, seconds)
        while not self.signals and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    # -- items: ids found in events, looked at every tick until closed ------------------------------

    def watch(self, *kinds: str) -> None:
        """Track ids of these kinds ("task", "claim", ..): open ones, and those closed for good."""
        assert self.store is not None
        self.open_items: dict[str, set[int]] = {k: set() for k in kinds}
        self.closed_items = {k: self.store.closed(k) for k in kinds}
        self.block_cursor = 0

    def found(self, kind: str, ident: int) -> None:
        if ident not in self.closed_items[kind]:
            self.open_items[kind].add(ident)

    def close(self, kind: str, ident: int, why: str, persist: bool = True) -> None:
        """Stop looking at an item: for good (`persist`), or until restarted with other options."""
        assert self.store is not None
        if persist:
            self.store.close_item(kind, ident, why)
        self.closed_items[kind].add(ident)
        self.open_items[kind].discard(ident)

    def scan(self, *queries: tuple[Any, dict[str, Any] | None]) -> list[list[Any]]:
        """Each (event, filters)'s logs since the last scan, re-reading REORG_DEPTH blocks."""
        head = int(self.chain.w3.eth.block_number)
        start = max(0, self.block_cursor - REORG_DEPTH)
        found = [self.court.deployment.logs(event, filters, start, head) for event, filters in queries]
        self.block_cursor = head + 1
        return found

    def isolate(self, kind: str, ident: int, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one item's work; its failure is logged and retried later with its own back-off."""
        if self.signals:
            return None
        key = (kind, ident)
        count, retry_at = self.item_failures.get(key, (0, 0.0))
        if time.monotonic() < retry_at:
            return None
        try:
            out = fn(*args)
        except Reverted as e:
            # a lost race: the state moved under us; the next tick re-derives
            self.log("race_lost", level="debug", item=f"{kind}:{ident}", reason=str(e))
            return None
        except Exception as e:
            if is_transport_error(e):
                raise
            count += 1
            delay = min(60.0, 0.5 * 2 ** (count - 1))
            self.item_failures[key] = (count, time.monotonic() + delay)
            self.log(
                "item_failed", level="error", item=f"{kind}:{ident}", error=_one_line(e), failures=count,
                retry_in=round(delay, 2), where=_where(e),
            )  # fmt: skip
            return None
        if count:
            self.item_failures.pop(key, None)
        return out

    # -- shared chain actions -----------------------------------------------------------------

    def ensure_allowance(self, amount: int) -> bool:
        """Approve the task registry to pull bonds; False while the approval is not in place."""
        token, spender = self.court.token, self.court.tasks.address
        allowance = int(token.functions.allowance(self.me, spender).call())
        if allowance >= amount:
            return True
        self.sender.send(f"approve:{spender}:{allowance}", token.functions.approve(spender, MAX_UINT))
        return int(token.functions.allowance(self.me, spender).call()) >= amount

    def token_balance(self) -> int:
        return int(self.court.token.functions.balanceOf(self.me).call())

    def play(self, view: View, game_id: int, s: GameState, role: Role, player: Player, honest: bool) -> None:
        """Send this side's next move in game `game_id`, whose state is `s` (or end the game on
        the other side's clock)."""
        court = self.court
        if s.outcome != Outcome.PENDING:
            return
        mover = whose_move(s)
        if mover != role:
            # the contract's own rule: the mover loses once more than its clock has passed
            clock = s.clock_solver if s.turn == Role.SOLVER else s.clock_challenger
            if view.now - s.turn_start > clock:
                self.sender.send(f"game:{game_id}:timeout", court.game.functions.timeout(game_id), game=game_id)
                return
            if not (role == Role.SOLVER and honest and s.level in PROOF_LEVELS):
                return
            # a proof is permissionless: an honest solver proves its own point when the
            # challenger has not within the grace period (the contract decides)
            if view.now - s.turn_start < self.cfg.proof_grace:
                return
            move = player.challenger_move(s)
        elif role == Role.SOLVER:
            move = player.solver_move(s)
        else:
            move = player.challenger_move(s, court.revealed(game_id, s))
        if move is not None:
            self.send_move(game_id, s, move)

    def send_move(self, game_id: int, s: GameState, move: Move) -> Any:
        target = self.court.game if move.target == "game" else self.court.referee
        fn = getattr(target.functions, move.function)(game_id, *move.args)
        return self.sender.send(
            move_key(game_id, s, move.function), fn, game=game_id, game_level=s.level, lo=s.lo, hi=s.hi, step=s.step, node=s.node
        )

    def settle(self, challenge_id: int, why: str) -> Any:
        fn = self.court.tasks.functions.settle(challenge_id)
        return self.sender.send(f"settle:{challenge_id}", fn, challenge=challenge_id, why=why)

    def game_over(self, game_id: int) -> tuple[int, str]:
        logs = self.court.deployment.logs(self.court.game.events.GameResolved(), {"game_id": game_id})
        if not logs:
            return 0, ""
        return int(logs[-1]["args"]["outcome"]), str(logs[-1]["args"]["reason"])


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"


def _where(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return ""
    f = tb[-1]
    return f"{Path(f.filename).name}:{f.lineno}"


# -- process control ------------------------------------------------------------------------------


def read_pid(data_dir: Path) -> int | None:
    try:
        text = (data_dir / "daemon.lock").read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def is_running(data_dir: Path) -> int | None:
    """The pid of the daemon holding `data_dir`'s lock, or None."""
    path = data_dir / "daemon.lock"
    if not path.exists():
        return None
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return read_pid(data_dir)
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def stop(data_dir: Path, timeout: float = 30.0) -> dict[str, Any]:
    """Ask the daemon serving `data_dir` to stop (SIGTERM) and wait; idempotent."""
    pid = is_running(data_dir)
    if pid is None:
        return {"running": False, "stopped": False}
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_running(data_dir) is None:
            return {"running": False, "stopped": True, "pid": pid}
        time.sleep(0.1)
    return {"running": True, "stopped": False, "pid": pid}


def status(data_dir: Path) -> dict[str, Any]:
    """The daemon's pid (if running) and what its store holds."""
    out: dict[str, Any] = {"data_dir": str(data_dir), "running": is_running(data_dir)}
    db = data_dir / "store.sqlite"
    if db.exists():
        store = Store(db)
        try:
            out |= store.summary()
            out["account"] = store.get("account")
            out["tasks"] = store.get("tasks")
        finally:
            store.close()
    return out


__all__ = [
    "Backoff",
    "ChallengeRec",
    "ClaimRec",
    "Config",
    "Daemon",
    "DaemonError",
    "JsonLog",
    "Registry",
    "Reverted",
    "Sender",
    "Store",
    "TaskRec",
    "Traces",
    "View",
    "is_transport_error",
    "main",
    "move_key",
    "stop",
    "status",
]


def main(cls: type[Daemon], cfg: Config) -> int:
    """Run a daemon class as a command: a refusal is one line on stderr and exit code 2."""
    try:
        return cls(cfg).run()
    except DaemonError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
