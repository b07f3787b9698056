"""Dishonest strategies, for tests and demos only: `--cheat` on the solver or the challenger.

A cheat is a lying program (the cheater's own trace then says the lie consistently, so it
plays the game from it as an honest player would) or a lie about the final root alone.

| strategy | what the cheater's trace or claim says |
| --- | --- |
| `wrong-element:t,n[,e[,d]]` | element e (default -1, the last) of node n's output at step t is off by d (default 1) |
| `wrong-boundary:t` | the step boundary into step t (t >= 1) writes the wrong step index |
| `final-output` | only the last node of the last step is wrong: every other root is right |
| `final-root` | the trace is right; the claimed final root is not (a challenger: disputes every claim) |
| `silent` | claims a wrong final root and never moves in a game (the clock decides) |
| `withhold` | claims the right root but never publishes the task's result (SPEC 7.11) |
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from verifier.daemon.records import DaemonError
from verifier.engine.program import Program

STRATEGIES = ("wrong-element:t,n[,e[,d]]", "wrong-boundary:t", "final-output", "final-root", "silent", "withhold")


class WrongElement(Program):
    """Element `element` of node n's output at step t is off by `delta`; the error propagates."""

    target: tuple[int, int] = (0, 0)
    element: int = -1
    delta: int = 1

    def run_step(self, t, state, fast=True, on_node=None):  # noqa: ANN001, ANN201
        if t != self.target[0]:
            return super().run_step(t, state, fast, on_node)  # every other step is honest
        values = self.step_values(t, state)
        for n, node in enumerate(self.graph.nodes):
            out = self.graph.run_node(node, values, fast)
            if (t, n) == self.target:
                out = out.copy()
                flat = out.reshape(-1)
                i = self.element % flat.size
                if flat.dtype == np.bool_:
                    flat[i] = not flat[i]
                else:
                    flat[i] = np.array(int(flat[i]) + self.delta).astype(flat.dtype)
            values[node.output] = out
            if on_node is not None:
                on_node(n, out)
        return values, [values[s] for s in self.next_slots]


class WrongStepCounter(Program):
    """The boundary into step `bad_step` writes bad_step + 1 into the step slot."""

    bad_step: int = 1

    def step_value(self, t: int) -> np.ndarray:
        return np.array(t + 1 if t == self.bad_step else t, dtype=np.int64)


@dataclass(frozen=True)
class Cheat:
    spec: str
    kind: str
    args: tuple[int, ...] = ()

    @property
    def tag(self) -> str:
        """A directory-safe name for the cheater's trace."""
        return "cheat-" + self.spec.replace(":", "-").replace(",", "_")

    @property
    def silent(self) -> bool:
        return self.kind == "silent"

    @property
    def withholds(self) -> bool:
        return self.kind == "withhold"

    @property
    def lies_about_root(self) -> bool:
        return self.kind in ("final-root", "silent")

    def transform(self, program: Program) -> Program:
        """The lying program; keeps the honest program's id, so tasks still match it."""
        if self.kind not in ("wrong-element", "wrong-boundary", "final-output"):
            return program
        for attr in ("id", "graph_root", "initial_state_root", "data_root", "descriptors"):
            getattr(program, attr)  # cached on the instance before the class changes
        p = copy.copy(program)
        T, N = p.steps, p.n_nodes
        if self.kind == "wrong-boundary":
            p.__class__ = WrongStepCounter
            p.bad_step = min(max(1, self.args[0]), T - 1) if T > 1 else 1  # type: ignore[attr-defined]
            return p
        p.__class__ = WrongElement
        if self.kind == "final-output":
            p.target, p.element, p.delta = (T - 1, N - 1), -1, 1  # type: ignore[attr-defined]
        else:
            t, n, *rest = self.args
            p.target = (min(t, T - 1), min(n, N - 1))  # type: ignore[attr-defined]
            p.element = rest[0] if rest else -1  # type: ignore[attr-defined]
            p.delta = rest[1] if len(rest) > 1 else 1  # type: ignore[attr-defined]
        return p

    def final_root(self, root: bytes) -> bytes:
        """The root the cheater claims, given its trace's final root."""
        if self.lies_about_root:
            return root[:-1] + bytes([root[-1] ^ 0x01])
        return root


def parse_cheat(spec: str | None) -> Cheat | None:
    if not spec:
        return None
    kind, _, rest = spec.partition(":")
    try:
        args = tuple(int(x) for x in rest.split(",") if x.strip()) if rest else ()
    except ValueError:
        args = None  # type: ignore[assignment]
    ok = args is not None and (
        (kind == "wrong-element" and 2 <= len(args) <= 4)
        or (kind == "wrong-boundary" and len(args) == 1 and args[0] >= 1)
        or (kind in ("final-output", "final-root", "silent", "withhold") and not args)
    )
    if not ok:
        raise DaemonError(f"unknown cheat '{spec}'; use one of: {', '.join(STRATEGIES)}.")
    return Cheat(spec, kind, args)


__all__ = ["Cheat", "STRATEGIES", "WrongElement", "WrongStepCounter", "parse_cheat"]
