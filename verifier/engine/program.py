"""Programs: a step graph applied T times to a state (docs/SPEC.md section 3)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import onnx

from verifier.commit import commitments as commit
from verifier.core.dtypes import DEFAULT_MAX_ELEMENTS, DType, TensorType
from verifier.core.errors import ProgramError, ShapeError
from verifier.engine.graph import ABSENT, Graph, SlotKind, load_graph, read_model

if TYPE_CHECKING:
    from verifier.engine.compiled import CompiledStep

META_STEPS = "bisectml.steps"
META_STEP_INPUT = "bisectml.step_input"
META_STATE = "bisectml.state"
META_DATA = "bisectml.data"
MAX_STEPS = 2**63 - 1
BOUNDARY_CODE = 0xFF
MAX_PROVABLE_SLOTS = 512  # the referee's boundary proof takes the whole slot table
PROGRESS_EVERY = 100  # steps run between progress reports
CROSS_CHECK_EVERY = 1_000  # compiled steps between two checks of one step against the per-node engine

Progress = Callable[[int, int], None]  # (steps done, total)


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


@dataclass
class Program:
    graph: Graph
    steps: int
    step_slot: int | None
    state_slots: list[int]
    next_slots: list[int]  # next_slots[v] holds the next value of state_slots[v]
    data_slots: list[int]

    @property
    def n_nodes(self) -> int:
        return len(self.graph.nodes)

    @property
    def n_slots(self) -> int:
        return self.graph.n_slots

    @property
    def state_names(self) -> list[str]:
        return [self.graph.slots[s].name for s in self.state_slots]

    def boundary_descriptor(self) -> bytes:
        """The step boundary's descriptor, graph leaf N (docs/SPEC.md 3.2)."""
        out = bytearray([BOUNDARY_CODE])
        out += self.n_slots.to_bytes(2, "big")
        out += self.graph.first_node_slot.to_bytes(2, "big")
        out += (ABSENT if self.step_slot is None else self.step_slot).to_bytes(2, "big")
        out += len(self.state_slots).to_bytes(2, "big")
        for s, n in zip(self.state_slots, self.next_slots):
            out += s.to_bytes(2, "big") + n.to_bytes(2, "big")
        return bytes(out)

    @cached_property
    def descriptors(self) -> list[bytes]:
        """Graph leaves: the N node descriptors, then the boundary."""
        return [n.descriptor() for n in self.graph.nodes] + [self.boundary_descriptor()]

    @cached_property
    def graph_root(self) -> bytes:
        return commit.graph_root(self.descriptors)

    @cached_property
    def constant_commitments(self) -> dict[int, bytes]:
        """Commitments of the slots that never change: data and constants (hashed once)."""
        return {
            i: commit.commit(s.value).root  # type: ignore[arg-type]
            for i, s in enumerate(self.graph.slots)
            if s.kind in (SlotKind.DATA, SlotKind.CONST)
        }

    @cached_property
    def constant_slot_table(self) -> commit.SlotTable:
        """The slot table with only the data and constants set: every step's table starts from it."""
        table = commit.SlotTable(self.n_slots)
        table.set_many(self.constant_commitments.items())
        return table

    @cached_property
    def data_root(self) -> bytes:
        return commit.dataset_root([self.constant_commitments[s] for s in self.data_slots])

    @cached_property
    def initial_state_root(self) -> bytes:
        table = step_slot_table(self, 0, self.initial_state())
        return commit.state_root(0, 0, table.root)

    @cached_property
    def id(self) -> bytes:
        return commit.program_id(
            self.graph_root, self.n_nodes, self.n_slots, self.initial_state_root, self.data_root, self.steps
        )

    def initial_state(self) -> list[np.ndarray]:
        return [self.graph.slots[s].value for s in self.state_slots]  # type: ignore[misc]

    def step_value(self, t: int) -> np.ndarray:
        return np.array(t, dtype=np.int64)

    def step_values(self, t: int, state: list[np.ndarray]) -> list[np.ndarray | None]:
        """The value table at position (t, 0): step, state, data, constants; node slots empty."""
        values = self.graph.initial_values()
        for s in self.data_slots:
            values[s] = self.graph.slots[s].value
        for s, v in zip(self.state_slots, state):
            values[s] = v
        if self.step_slot is not None:
            values[self.step_slot] = self.step_value(t)
        return values

    def run_step(
        self,
        t: int,
        state: list[np.ndarray],
        fast: bool = True,
        on_node: Callable[[int, np.ndarray], None] | None = None,
    ) -> tuple[list[np.ndarray | None], list[np.ndarray]]:
        """Run step t from its state; returns the full value table after node N-1 and the next state."""
        values = self.step_values(t, state)
        self.graph.execute(values, fast, on_node)
        return values, [values[s] for s in self.next_slots]  # type: ignore[misc]

    def next_state(self, t: int, state: list[np.ndarray], fast: bool = True) -> list[np.ndarray]:
        """The state at (t+1, 0) from the state at (t, 0)."""
        return self.run_step(t, state, fast)[1]

    @cached_property
    def compiled(self) -> CompiledStep | None:
        """The step compiled over float64 (verifier.engine.compiled), or None when the bounds do not
        prove it exact or this class changes how a step runs; `compile_note` says why."""
        from verifier.engine.compiled import NotCompilable, compile_step

        own = ("run_step", "next_state", "step_value", "step_values")
        if any(getattr(type(self), m) is not getattr(Program, m) for m in own):
            self.compile_note = f"{type(self).__name__} overrides how a step runs"
            return None
        try:
            return compile_step(self)
        except NotCompilable as e:
            self.compile_note = str(e)
            return None

    compile_note = ""  # why `compiled` is None
    _unchecked_steps = CROSS_CHECK_EVERY  # compiled steps since the last cross-check (the first run checks)

    def advance(self, t0: int, t1: int, state: list[np.ndarray], fast: bool = True) -> list[np.ndarray]:
        """The state at (t1, 0) from the state at (t0, 0): the compiled step where its proof
        covers the run, else node by node.

        A standing cross-check of the two engines: the last step of the first compiled run, and
        then of a run at least every CROSS_CHECK_EVERY compiled steps, is run node by node too and
        must agree (otherwise the program runs node by node from then on)."""
        c = self.compiled if fast and t1 > t0 else None
        if c is not None and self._unchecked_steps + (t1 - t0) < CROSS_CHECK_EVERY:
            out = c.run(t0, t1, state)
            if out is not None:
                self._unchecked_steps += t1 - t0
                return out
        elif c is not None:
            before = c.run(t0, t1 - 1, state)
            after = None if before is None else c.run(t1 - 1, t1, before)
            if before is not None and after is not None:
                by_node = Program.next_state(self, t1 - 1, before, fast)
                if all(a.tobytes() == b.tobytes() for a, b in zip(after, by_node)):
                    self._unchecked_steps = 0
                    return after
                self._distrust_compiled(t1 - 1)
        for t in range(t0, t1):
            state = self.next_state(t, state, fast)
        return state

    def _distrust_compiled(self, t: int) -> None:
        import warnings

        self.__dict__["compiled"] = None
        self.compile_note = f"its step {t} differed from the per-node engine (an engine bug; please report it)"
        warnings.warn(f"program {self.id.hex()}: {self.compile_note}; running node by node", RuntimeWarning, stacklevel=3)

    def run(self, fast: bool = True, progress: Progress | None = None, steps: int | None = None) -> dict[str, np.ndarray]:
        """Run the program without commitments; returns the final state by name."""
        total = self.steps if steps is None else steps
        state = self.initial_state()
        t = 0
        while t < total:
            end = min(total, t + PROGRESS_EVERY)
            state = self.advance(t, end, state, fast)
            t = end
            if progress is not None:
                progress(t, total)
        return dict(zip(self.state_names, state))


def load_program(
    source: str | os.PathLike[str] | bytes | onnx.ModelProto,
    *,
    steps: int | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Program:
    """Load a self-contained program file (docs/SPEC.md 3.1); `steps` overrides bisectml.steps."""
    model = read_model(source)
    meta = {p.key: p.value for p in model.metadata_props}
    if META_STATE not in meta:
        raise ProgramError(
            f"the model has no '{META_STATE}' metadata, so it is not a program; "
            "build it with onnx_models or add the bisectml.* metadata (docs/SPEC.md 3.1)."
        )
    try:
        declared = int(meta.get(META_STEPS, "1"))
    except ValueError:
        raise ProgramError(f"'{META_STEPS}' is {meta[META_STEPS]!r}, not an integer; set it to the step count.") from None
    total = declared if steps is None else steps
    if not 1 <= total <= MAX_STEPS:
        raise ProgramError(f"the step count {total} is outside 1..2^63-1; choose a positive step count.")
    state = _names(meta[META_STATE])
    data = _names(meta.get(META_DATA, ""))
    step_input = meta.get(META_STEP_INPUT, "").strip() or None
    named = ([step_input] if step_input else []) + state + data
    dup = sorted({n for n in named if named.count(n) > 1})
    if dup:
        raise ProgramError(f"inputs {dup} have more than one role; give each input one role.")
    if not state:
        raise ProgramError(f"'{META_STATE}' names no inputs; a program needs at least one state input.")
    roles: dict[str, SlotKind] = {}
    if step_input:
        roles[step_input] = SlotKind.STEP
    roles.update({n: SlotKind.STATE for n in state})
    roles.update({n: SlotKind.DATA for n in data})
    inits = {t.name for t in model.graph.initializer}
    missing = [n for n in state + data if n not in inits]
    if missing:
        raise ProgramError(f"inputs {missing} have no initializer; give every state and data input its initial value.")
    graph = load_graph(model, roles=roles, max_elements=max_elements)
    if graph.n_slots > MAX_PROVABLE_SLOTS:
        raise ProgramError(
            f"the step graph has {graph.n_slots} values; a step boundary can be proven on-chain for at most "
            f"{MAX_PROVABLE_SLOTS}. Split the step into smaller programs."
        )

    step_slot = graph.by_name[step_input] if step_input else None
    if step_slot is not None and graph.slots[step_slot].type != TensorType(DType.INT64, ()):
        raise ProgramError(f"the step input '{step_input}' must be an int64 scalar; declare it as int64[].")
    if len(graph.outputs) != len(state):
        raise ProgramError(
            f"the graph has {len(graph.outputs)} outputs but {len(state)} state inputs; "
            "output the next value of each state input, in the same order."
        )
    state_slots = [graph.by_name[n] for n in state]
    for name, s, o in zip(state, state_slots, graph.outputs):
        if graph.slots[s].type != graph.slots[o].type:
            raise ShapeError(
                f"state '{name}' is {graph.slots[s].type} but its next value '{graph.slots[o].name}' is "
                f"{graph.slots[o].type}; a step must keep every state's dtype and shape."
            )
    return Program(
        graph=graph,
        steps=total,
        step_slot=step_slot,
        state_slots=state_slots,
        next_slots=list(graph.outputs),
        data_slots=[graph.by_name[n] for n in data],
    )


def make_program(
    model: onnx.ModelProto,
    *,
    steps: int,
    state: Mapping[str, np.ndarray],
    data: Mapping[str, np.ndarray] | None = None,
    step_input: str | None = None,
) -> onnx.ModelProto:
    """Turn a step graph into a self-contained program file: set metadata and initial values."""
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    data = dict(data or {})
    values = {**state, **data}
    if step_input:
        values[step_input] = np.array(0, dtype=np.int64)
    keep = [t for t in out.graph.initializer if t.name not in values]
    del out.graph.initializer[:]
    out.graph.initializer.extend(keep)
    for name, v in values.items():
        out.graph.initializer.append(numpy_helper.from_array(np.asarray(order="C", a=v), name))
    props = {p.key: p.value for p in out.metadata_props if not p.key.startswith("bisectml.")}
    props[META_STEPS] = str(steps)
    props[META_STATE] = ",".join(state)
    if data:
        props[META_DATA] = ",".join(data)
    if step_input:
        props[META_STEP_INPUT] = step_input
    del out.metadata_props[:]
    for k, v in props.items():
        out.metadata_props.add(key=k, value=v)
    return out


Committer = Callable[[np.ndarray], commit.TensorCommitment]


def step_slot_table(
    program: Program, t: int, state: list[np.ndarray], committer: Committer = commit.commit
) -> commit.SlotTable:
    """The slot table at position (t, 0): node-output slots are empty."""
    table = program.constant_slot_table.copy()
    updates = [(s, committer(v).root) for s, v in zip(program.state_slots, state)]
    if program.step_slot is not None:
        updates.append((program.step_slot, committer(program.step_value(t)).root))
    table.set_many(updates)
    return table


__all__ = ["Committer", "Program", "load_program", "make_program", "step_slot_table"]
