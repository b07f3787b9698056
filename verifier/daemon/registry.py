"""The programs a daemon serves, matched to tasks by program id (the same step graph,
initial state and data with another step count counts too): those given with --program, and
those fetched by the CID a task's poster logged."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verifier.core.errors import BisectmlError
from verifier.daemon.records import (
    GAME_MAX_SLOTS,
    REORG_DEPTH,
    DaemonError,
    JsonLog,
    TaskRec,
)
from verifier.engine.graph import read_model
from verifier.engine.program import Program, load_program

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


RETRY_FIRST_S = 15.0  # a CID nobody serves yet is asked for again after this ...
RETRY_MAX_S = 900.0  # ... doubling up to this, so a dead CID does not cost every tick a fetch


class ProgramsByCid:
    """Programs fetched by the CID their task's poster logged (`TaskPosted.program_cid`, the
    file's sha2-256): every byte is checked against the CID by the content store, and the
    program against the task's program id. A program that cannot be fetched, or is not the
    task's, is reported once (an alert). A fetch that failed is tried again with a doubling
    delay; bytes that arrived but are not the task's program are never fetched again for it
    (content under a CID never changes)."""

    def __init__(self, court: Any, store: Any, log: JsonLog, clock: Callable[[], float] = time.monotonic) -> None:
        self.court, self.store, self.log, self.clock = court, store, log, clock
        # program id -> (the CIDs logged for it, the first block not yet searched)
        self._digests: dict[bytes, tuple[list[bytes], int]] = {}
        self._retry: dict[str, tuple[int, float]] = {}  # CID -> (failed fetches, next try at)
        self._refused: set[tuple[str, bytes]] = set()  # (CID, program id): not that program

    def _cids(self, pid: bytes) -> list[bytes]:
        """Every CID posted for the program so far (a later task may name one that works)."""
        known, start = self._digests.get(pid, ([], 0))
        head = int(self.court.chain.w3.eth.block_number)
        if start <= head:
            for g in self.court.deployment.logs(self.court.tasks.events.TaskPosted(), {"program_id": pid}, start, head):
                digest = bytes(g["args"]["program_cid"])
                if any(digest) and digest not in known:
                    known.append(digest)
        self._digests[pid] = (known, max(0, head + 1 - REORG_DEPTH))  # a shallow reorg is read again
        return known

    def for_task(self, t: TaskRec) -> Program | None:
        from verifier.market.content import cid_of_digest

        pid = bytes(t.program_id)
        now = self.clock()
        for digest in self._cids(pid):
            cid = cid_of_digest(digest)
            if (cid, pid) in self._refused or self._retry.get(cid, (0, now))[1] > now:
                continue
            try:
                data = self.store.get(cid)
            except BisectmlError as e:
                failures = self._retry.get(cid, (0, now))[0] + 1
                self._retry[cid] = (failures, now + min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (failures - 1)))
                self.log.once(f"cid:{cid}:{e}", "program_unavailable", level="alert", program_id=pid, cid=cid, why=str(e))
                continue
            self._retry.pop(cid, None)
            try:
                p = load_program(read_model(data), steps=t.steps)
            except BisectmlError as e:
                self._refused.add((cid, pid))
                self.log.once(f"cid:{cid}:{e}", "program_unavailable", level="alert", program_id=pid, cid=cid, why=str(e))
                continue
            if p.id != pid:
                self._refused.add((cid, pid))
                self.log.once(f"cidm:{cid}", "program_mismatch", level="alert", program_id=pid, cid=cid, got=p.id)
                continue
            if p.n_slots > GAME_MAX_SLOTS:
                self._refused.add((cid, pid))
                self.log.once(f"cids:{cid}", "program_unavailable", level="alert", program_id=pid, cid=cid,
                              why=f"{p.n_slots} slots; games prove at most {GAME_MAX_SLOTS}")  # fmt: skip
                continue
            self.log.once(f"cidok:{cid}", "program_fetched", program_id=pid, cid=cid, steps=p.steps)
            return p
        return None
