"""The intent store: every transaction is recorded in SQLite (WAL), signed, with its nonce
and hash, under a key naming the move, *before* it is broadcast; a key sent successfully is
never sent again."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier.court.game import GameState
from verifier.daemon.records import DaemonError

RECORDED, BROADCAST, CONFIRMED, ABANDONED, DROPPED = "recorded", "broadcast", "confirmed", "abandoned", "dropped"
REPLACED = "replaced"  # broadcast, then replaced by a later attempt at the same nonce with higher fees
UNFINISHED = (RECORDED, BROADCAST, REPLACED)

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



def move_key(game_id: int, s: GameState, function: str) -> str:
    """Names a game move by the state it is made in: a state admits each move once."""
    return (
        f"game:{game_id}:{s.level.name}:{s.turn.name}:{s.step}:{s.node}:{s.lo}:{s.hi}:"
        f"{s.index}:{s.height}:{s.elem_index}:{int(s.top_known)}:{function}"
    )
