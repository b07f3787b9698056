"""Each served program's trace, kept resumable under the daemon's data directory."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

from verifier.core.errors import TraceError
from verifier.daemon.records import JsonLog
from verifier.daemon.registry import Transform
from verifier.engine.program import Program
from verifier.engine.trace import DEFAULT_CHECKPOINT_EVERY, Trace, checkpoint_interval


def daemon_interval(program: Program) -> int:
    """At least 64 checkpoints a trace where the disk budget allows (a node-level query then
    recomputes at most T/64 steps), and never more than the budget holds."""
    dense = max(1, min(DEFAULT_CHECKPOINT_EVERY, math.ceil(program.steps / 64)))
    return checkpoint_interval(program, every=dense)


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
            every = daemon_interval(program)
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
