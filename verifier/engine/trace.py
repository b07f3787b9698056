"""Traces: the committed run of a program, persisted to disk and resumable.

A trace keeps the T+1 step roots and a checkpoint of the state every `checkpoint_every` steps;
it never holds more than one step's intermediate values. Node-level roots and openings of any
step are recomputed on demand from the nearest checkpoint (docs/SPEC.md 3.3).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from verifier.commit import commitments as commit
from verifier.core.errors import TraceError
from verifier.core.paths import write_atomic
from verifier.engine.program import Program, step_slot_table

TRACE_VERSION = 3
DEFAULT_CHECKPOINT_EVERY = 100  # the densest spacing by default: 1% of steps committed twice
DEFAULT_DISK_BUDGET = 1 << 30  # bytes of checkpoints one trace may keep (1 GiB)
MAX_CHECKPOINTS = 1024  # checkpoint files one trace may keep, whatever its budget
ROOT_CACHE = 4096  # recomputed step roots kept in memory
# a trace without a directory keeps its checkpoints in memory when they fit in this many bytes
MEMORY_BUDGET = 64 << 20

Progress = Callable[[int, int], None]


def checkpoint_bytes(program: Program) -> int:
    """Size of one checkpoint file: the state root, then every state tensor's elements."""
    return 32 + sum(program.graph.slots[s].type.nbytes for s in program.state_slots)


def _checkpoints_size(program: Program, every: int) -> int:
    return checkpoint_bytes(program) * -(-program.steps // every)


def checkpoint_interval(
    program: Program, disk_budget: int = DEFAULT_DISK_BUDGET, every: int = DEFAULT_CHECKPOINT_EVERY
) -> int:
    """Steps between checkpoints: `every`, widened until the trace's checkpoints fit in
    `disk_budget` bytes and number at most MAX_CHECKPOINTS. An opening of any step recomputes at
    most this many steps, so disk buys speed in disputes and never the other way round."""
    if every < 1:
        raise TraceError("checkpoint_every must be at least 1; pass a positive interval.")
    per = checkpoint_bytes(program)
    count = min(MAX_CHECKPOINTS, disk_budget // per)
    if count < 1:
        raise TraceError(
            f"one checkpoint of this program's state is {per:,} bytes, more than the disk budget of "
            f"{disk_budget:,}; raise --disk-budget to at least {per:,}."
        )
    return max(every, -(-program.steps // count))


@dataclass
class ElementProof:
    """An element of a slot at a position, proven against that position's state root."""

    step: int
    node: int
    state_root: bytes
    slot: commit.SlotOpening
    element: commit.ElementOpening

    @property
    def value(self) -> int:
        return self.element.value

    def verify(self, n_slots: int) -> int:
        """Check the whole chain; returns the element's value or raises ProofError."""
        commit.verify_slot(self.state_root, self.step, self.node, self.slot, n_slots)
        return commit.verify_element(self.slot.commitment, self.element)


@dataclass
class StepDetail:
    """Everything about one step: its value table after each node, and its node roots."""

    step: int
    start_values: list[np.ndarray | None]
    outputs: list[np.ndarray]  # outputs[n] is node n's output
    roots: list[bytes]  # roots[n] = state(t, n) for n = 0..N, then state(t+1, 0)

    def values_at(self, program: Program, node: int) -> list[np.ndarray | None]:
        values = list(self.start_values)
        for n in range(node):
            values[program.graph.nodes[n].output] = self.outputs[n]
        return values


class Trace:
    """Committed execution of a program, backed by a directory; without one, by memory when its
    checkpoints fit in MEMORY_BUDGET bytes, else by a temporary directory.

    The main run executes every step but commits only at checkpoints (every
    `checkpoint_every` steps, and the last step): the claim needs only the final root, and a
    dispute asks for a handful of step roots, each recomputed from the nearest checkpoint.
    Without an explicit spacing, `checkpoint_interval` keeps the checkpoints within
    `disk_budget` bytes.
    """

    # How node outputs are committed; a test double may override it to model a cheater.
    commit = staticmethod(commit.commit)

    def __init__(
        self,
        program: Program,
        directory: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
        fast: bool = True,
        disk_budget: int = DEFAULT_DISK_BUDGET,
    ) -> None:
        if checkpoint_every is None:
            checkpoint_every = checkpoint_interval(program, disk_budget)
        if checkpoint_every < 1:
            raise TraceError("checkpoint_every must be at least 1; pass a positive interval.")
        self.program = program
        self.fast = fast
        self._cleanup: weakref.finalize | None = None
        self._memory: dict[int, bytes] | None = None
        self.dir: Path | None = None
        if directory is None and _checkpoints_size(program, checkpoint_every) <= MEMORY_BUDGET:
            # Nothing to resume from a temporary trace, so small ones keep their checkpoints in
            # memory: no directory to create, sync and remove around a short run.
            self._memory = {}
            self.checkpoint_every = checkpoint_every
        else:
            if directory is None:
                directory = tempfile.mkdtemp(prefix="bisectml-trace-")
                # the owner closes it (close() or `with`); the finalizer is the backstop, at
                # garbage collection or interpreter exit
                self._cleanup = weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)
            self.dir = Path(directory)
            self.dir.mkdir(parents=True, exist_ok=True)
            self.checkpoint_every = self._open_meta(checkpoint_every)
        self._roots: OrderedDict[int, bytes] = OrderedDict()
        self._roots[0] = program.initial_state_root
        self._latest = self._find_latest_checkpoint()
        self._detail: StepDetail | None = None

    # -- persistence -------------------------------------------------------------------

    @property
    def _meta_path(self) -> Path:
        return self.dir / "trace.json"

    def _ckpt_path(self, t: int) -> Path:
        return self.dir / f"ckpt-{t:012d}.bin"

    def _open_meta(self, checkpoint_every: int) -> int:
        meta = {
            "version": TRACE_VERSION,
            "program_id": self.program.id.hex(),
            "steps": self.program.steps,
            "checkpoint_every": checkpoint_every,
        }
        if self._meta_path.exists():
            try:
                old = json.loads(self._meta_path.read_text())
            except (OSError, ValueError):
                raise TraceError(f"{self._meta_path} is unreadable; delete the trace directory to start over.") from None
            if old.get("version") != TRACE_VERSION:
                raise TraceError(
                    f"{self.dir} holds a trace in format {old.get('version')}, not {TRACE_VERSION}; "
                    "delete it and re-run the trace."
                )
            if old.get("program_id") != meta["program_id"]:
                raise TraceError(
                    f"{self.dir} holds a trace of another program ({old.get('program_id')}); use another directory."
                )
            if old.get("steps") != self.program.steps:
                raise TraceError(
                    f"{self.dir} holds a trace of {old.get('steps')} steps, not {self.program.steps}; use another directory."
                )
            return int(old["checkpoint_every"])
        write_atomic(self._meta_path, json.dumps(meta, indent=1).encode())
        return checkpoint_every

    def _checkpoint_steps(self) -> list[int]:
        if self._memory is not None:
            return sorted(self._memory)
        out = []
        for p in self.dir.glob("ckpt-*.bin"):
            try:
                out.append(int(p.stem.split("-")[1]))
            except ValueError:
                continue
        return sorted(t for t in out if 0 < t <= self.program.steps)

    def _find_latest_checkpoint(self) -> int:
        """The last checkpoint that loads and matches its recorded root; older ones back it up."""
        for t in reversed(self._checkpoint_steps()):
            try:
                self._load_state(t)
                return t
            except TraceError:
                continue
        return 0

    def _has_checkpoint(self, t: int) -> bool:
        return t in self._memory if self._memory is not None else self._ckpt_path(t).exists()

    def _save_checkpoint(self, t: int, state: list[np.ndarray], root: bytes) -> None:
        parts = [root] + [np.ascontiguousarray(v, dtype=v.dtype.newbyteorder("<")).tobytes() for v in state]
        if self._memory is not None:
            self._memory[t] = b"".join(parts)
            return
        # Atomic rename, no fsync: a checkpoint lost to a power cut is detected and recomputed.
        path = self._ckpt_path(t)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.writelines(parts)
        os.replace(tmp, path)

    def _load_state(self, t: int) -> list[np.ndarray]:
        """State at (t, 0) from its checkpoint, checked against the root stored with it."""
        if t == 0:
            return self.program.initial_state()
        p = self.program
        types = [p.graph.slots[s].type for s in p.state_slots]
        if self._memory is not None:
            if t not in self._memory:
                raise TraceError(f"the checkpoint of step {t} is gone (the trace was closed); open a new trace.")
            return self._decode(self._memory[t], types)
        path = self._ckpt_path(t)
        try:
            raw = path.read_bytes()
        except OSError:
            raise TraceError(f"checkpoint {path} is missing or unreadable; delete it and re-run the trace.") from None
        if len(raw) != 32 + sum(typ.nbytes for typ in types):
            raise TraceError(f"checkpoint {path} is corrupt (wrong size); delete it and re-run the trace.")
        root, state = raw[:32], self._decode(raw, types)
        if commit.state_root(t, 0, step_slot_table(p, t, state, self.commit).root) != root:
            raise TraceError(f"checkpoint {path} does not match its root; delete it and re-run the trace.")
        self._remember(t, root)
        return state

    @staticmethod
    def _decode(raw: bytes, types: list) -> list[np.ndarray]:
        state, at = [], 32
        for typ in types:  # the root, then each state tensor's elements, row-major little-endian
            le = typ.dtype.np.newbyteorder("<")
            state.append(np.frombuffer(raw, le, typ.size, at).astype(typ.dtype.np).reshape(typ.shape))
            at += typ.nbytes
        return state

    def close(self) -> None:
        """Drop a temporary trace's checkpoints (a named directory is kept for resuming)."""
        if self._memory is not None:
            self._memory.clear()
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ----------------------------------------------------------------------

    @property
    def steps_done(self) -> int:
        """Steps whose state is safely checkpointed (the point a resumed run continues from)."""
        return self._latest

    @property
    def done(self) -> bool:
        return self._latest >= self.program.steps

    def run(self, progress: Progress | None = None, stop_at: int | None = None) -> bytes:
        """Run (or resume) to the last step, or only to `stop_at`; returns that step's root."""
        p = self.program
        end = p.steps if stop_at is None else min(stop_at, p.steps)
        t = self._latest
        if t < end:
            state = self._load_state(t)
            while t < end:
                # Up to the next checkpoint (or the end) in one run: the compiled step, if any,
                # keeps its state in float64 in between.
                nxt = min(end, (t // self.checkpoint_every + 1) * self.checkpoint_every)
                state = p.advance(t, nxt, state, self.fast)
                t = nxt
                root = commit.state_root(t, 0, step_slot_table(p, t, state, self.commit).root)
                self._save_checkpoint(t, state, root)
                self._remember(t, root)
                self._latest = t
                if progress is not None:
                    progress(t, p.steps)
        return self.step_root(end)

    def _remember(self, t: int, root: bytes) -> None:
        self._roots[t] = root
        self._roots.move_to_end(t)
        while len(self._roots) > ROOT_CACHE:
            self._roots.popitem(last=False)

    def _require_done(self, t: int) -> None:
        if not 0 <= t <= self.program.steps:
            raise TraceError(f"step {t} is outside 0..{self.program.steps}; ask for a step of this program.")
        if t > self._latest:
            raise TraceError(f"step {t} is not computed yet ({self._latest} done); run the trace first.")

    def _base(self, t: int) -> int:
        """The checkpoint to recompute step t from."""
        c = (t // self.checkpoint_every) * self.checkpoint_every
        if c == 0 or self._has_checkpoint(c):
            return c
        return max([x for x in self._checkpoint_steps() if x <= t], default=0)

    def step_roots(self, steps: list[int]) -> list[bytes]:
        """state(t, 0) for each t, recomputed in one forward pass per checkpoint interval."""
        for t in steps:
            self._require_done(t)
        found = {t: self._roots[t] for t in steps if t in self._roots}
        missing = sorted({t for t in steps if t not in found})
        i = 0
        while i < len(missing):
            base = self._base(missing[i])
            state = self._load_state(base)
            t = base
            while i < len(missing) and self._base(missing[i]) == base:
                target = missing[i]
                state = self.program.advance(t, target, state, self.fast)
                t = target
                found[t] = commit.state_root(t, 0, step_slot_table(self.program, t, state, self.commit).root)
                self._remember(t, found[t])
                i += 1
        return [found[t] for t in steps]

    def step_root(self, t: int) -> bytes:
        """state(t, 0), the root before step t (t = T is the final state)."""
        return self.step_roots([t])[0]

    @property
    def final_root(self) -> bytes:
        return self.step_root(self.program.steps)

    def state_at_step(self, t: int) -> list[np.ndarray]:
        """The state values at (t, 0), recomputed from the nearest checkpoint."""
        self._require_done(t)
        base = self._base(t)
        state = self._load_state(base)
        return self.program.advance(base, t, state, self.fast)

    def final_state(self) -> dict[str, np.ndarray]:
        return dict(zip(self.program.state_names, self.state_at_step(self.program.steps)))

    # -- node level ---------------------------------------------------------------------

    def step_detail(self, t: int) -> StepDetail:
        """Recompute step t node by node with its node roots (cached for one step)."""
        if self._detail is not None and self._detail.step == t:
            return self._detail
        if not 0 <= t < self.program.steps:
            raise TraceError(f"step {t} is outside 0..{self.program.steps - 1}; ask for a step of this program.")
        self._require_done(t + 1)
        p = self.program
        state = self.state_at_step(t)
        table = step_slot_table(p, t, state, self.commit)
        roots = [commit.state_root(t, 0, table.root)]
        outputs: list[np.ndarray] = []

        def on_node(n: int, out: np.ndarray) -> None:
            outputs.append(out)
            table.set(p.graph.nodes[n].output, self.commit(out).root)
            roots.append(commit.state_root(t, n + 1, table.root))

        start = p.step_values(t, state)
        values, _ = p.run_step(t, state, self.fast, on_node)
        roots.append(self.step_root(t + 1))
        if roots[0] != self.step_root(t):
            raise TraceError(f"step {t} recomputed to another root; the trace directory is corrupt, delete it.")
        self._detail = StepDetail(step=t, start_values=start, outputs=outputs, roots=roots)
        return self._detail

    def node_roots(self, t: int) -> list[bytes]:
        """[state(t, 0), .., state(t, N), state(t+1, 0)]: N + 2 roots."""
        return self.step_detail(t).roots

    def state_root_at(self, t: int, n: int) -> bytes:
        if n == 0:
            return self.step_root(t)
        return self.node_roots(t)[n]

    def _values_at(self, t: int, n: int) -> list[np.ndarray | None]:
        if not 0 <= n <= self.program.n_nodes:
            raise TraceError(f"node {n} is outside 0..{self.program.n_nodes}; ask for a node of this program.")
        if t == self.program.steps:
            if n != 0:
                raise TraceError("the final state has only node 0; ask for (T, 0).")
            return self.program.step_values(t, self.state_at_step(t))
        return self.step_detail(t).values_at(self.program, n)

    def values_at(self, t: int, n: int) -> list[np.ndarray | None]:
        """Every slot's value at position (t, n) (None: empty), e.g. the final state's at (T, 0)."""
        return self._values_at(t, n)

    def slot_table_at(self, t: int, n: int) -> commit.SlotTable:
        values = self._values_at(t, n)
        table = commit.SlotTable(self.program.n_slots)
        for i, v in enumerate(values):
            if v is not None:
                table.set(i, self.commit(v).root)
        return table

    def open_slot(self, t: int, n: int, slot: int) -> commit.SlotOpening:
        self._check_slot(slot)
        return self.slot_table_at(t, n).open(slot)

    def open_element(self, t: int, n: int, slot: int, index: int) -> ElementProof:
        """An element of slot `slot` at position (t, n), with its proof chain."""
        self._check_slot(slot)
        value = self._values_at(t, n)[slot]
        if value is None:
            raise TraceError(f"slot {slot} is empty at ({t}, {n}); open a slot that holds a tensor there.")
        table = self.slot_table_at(t, n)
        tc = self.commit(value)
        return ElementProof(
            step=t,
            node=n,
            state_root=commit.state_root(t, n, table.root),
            slot=table.open(slot),
            element=commit.open_element(tc, index),
        )

    def open_node(self, n: int) -> commit.NodeOpening:
        if not 0 <= n <= self.program.n_nodes:
            raise TraceError(f"node {n} is outside 0..{self.program.n_nodes}; ask for a node of this program.")
        return commit.open_node(self.program.descriptors, n)

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self.program.n_slots:
            raise TraceError(f"slot {slot} is outside 0..{self.program.n_slots - 1}; ask for a slot of this program.")


__all__ = ["DEFAULT_CHECKPOINT_EVERY", "ElementProof", "StepDetail", "Trace", "step_slot_table"]
