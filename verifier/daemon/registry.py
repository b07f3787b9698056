"""The programs a daemon serves, matched to tasks by program id (the same step graph,
initial state and data with another step count counts too)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from verifier.core.errors import BisectmlError
from verifier.daemon.records import GAME_MAX_SLOTS, DaemonError, JsonLog, TaskRec
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
