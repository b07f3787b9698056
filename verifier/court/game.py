"""Honest play of the dispute game (docs/SPEC.md section 6), from a player's own trace.

Everything here is chain-agnostic: `GameState` mirrors the contract's struct, and a `Player`
turns a state into the next `Move` (which contract, which function, which arguments). The
daemons and the CLI send those moves with web3; tests send them with titanoboa. Partial results
of a reduction are computed by verifier.court.terms from the player's own arrays, a mirror of the
one-step contracts' term sequences that tests/court/test_terms.py checks against their view
functions (`OneStepOracle`); the contracts stay the arbiter of the one term a game ends on.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Protocol

import numpy as np

from verifier.commit import commitments as commit
from verifier.commit.commitments import CHUNK, EMPTY
from verifier.commit.merkle import MerkleTree
from verifier.core.errors import BisectmlError
from verifier.court import terms
from verifier.engine.graph import ABSENT
from verifier.engine.trace import Trace

DIRECT, INIT, TERM = 0, 1, 2


class Level(enum.IntEnum):
    STEP = 1
    NODE = 2
    OUTPUT = 3
    # 4 is no longer used; 5 names the output header's proof, made during the data descent
    PROVE_HEADER = 5
    DATA = 6
    CHUNK_REVEAL = 7
    ELEMENT = 8
    TERM = 9
    PROVE_ELEMENT = 10
    PROVE_BOUNDARY = 11
    OVER = 12


class Outcome(enum.IntEnum):
    PENDING = 0
    SOLVER_WON = 1
    CHALLENGER_WON = 2


class Role(enum.IntEnum):
    SOLVER = 1
    CHALLENGER = 2


class GameError(BisectmlError, RuntimeError):
    """The game is in a state this player cannot act on (e.g. it holds another program)."""


@dataclass
class GameState:
    """The contract's `Game` struct, field for field (contracts/Game.vy)."""

    solver: str
    challenger: str
    graph_root: bytes
    steps: int
    n_nodes: int
    n_slots: int
    arity: int
    level: Level
    turn: Role
    outcome: Outcome
    lo: int
    hi: int
    lo_value: bytes
    hi_value: bytes
    reveal_hash: bytes
    step: int
    node: int
    desc_hash: bytes
    pre_slots_root: bytes
    out_header: bytes
    cur: bytes
    height: int
    index: int
    inputs_hash: bytes
    elem_index: int
    elem_value: int
    terms: int
    top_known: bool
    clock_solver: int
    clock_challenger: int
    turn_start: int

    @classmethod
    def from_tuple(cls, t: Sequence) -> GameState:
        names = [f.name for f in fields(cls)]
        if len(t) != len(names):
            raise GameError(f"game struct has {len(t)} fields, expected {len(names)}; update verifier/court/game.py.")
        d = dict(zip(names, t))
        d["level"], d["turn"], d["outcome"] = Level(d["level"]), Role(d["turn"] or 1), Outcome(d["outcome"])
        return cls(**d)


@dataclass(frozen=True)
class Move:
    """One transaction: `target` is "game" or "referee"."""

    target: str
    function: str
    args: tuple

    def __str__(self) -> str:
        return f"{self.target}.{self.function}"


class OneStepOracle(Protocol):
    """The one-step contracts' view functions (docs/SPEC.md section 5)."""

    def terms(self, desc: bytes, headers: list[bytes]) -> int: ...

    def needs(
        self, desc: bytes, headers: list[bytes], out_index: int, phase: int, k: int, values: list[int]
    ) -> list[tuple[int, int]]: ...

    def compute(
        self, desc: bytes, headers: list[bytes], out_index: int, phase: int, k: int, acc: int, values: list[int]
    ) -> int: ...

    def finalize(self, desc: bytes, headers: list[bytes], acc: int) -> int: ...


def interior(lo: int, hi: int, k: int) -> list[int]:
    """Points lo + floor((hi - lo) * i / k), i = 1 .. k-1, without duplicates or ends."""
    out: list[int] = []
    prev = lo
    for i in range(1, k):
        p = lo + (hi - lo) * i // k
        if p != prev and p != hi:
            out.append(p)
            prev = p
    return out


def descent(arity: int, height: int) -> int:
    """Levels one data reveal spans: m = min(floor(log2 k), height)."""
    m = 0
    while (2 << m) <= arity:
        m += 1
    return min(m, height)


def acc_word(v: int) -> bytes:
    """An int256 accumulator as the bytes32 the contract stores."""
    return (v % (1 << 256)).to_bytes(32, "big")


def word_acc(b: bytes) -> int:
    v = int.from_bytes(b, "big")
    return v - (1 << 256) if v >= 1 << 255 else v


@dataclass
class _Inputs:
    headers: list[bytes]
    data_roots: list[bytes]
    paths: list[list[bytes]]
    arrays: list[np.ndarray | None]
    commitments: list[commit.TensorCommitment | None]


@dataclass
class Player:
    """Plays one side of a game honestly from `trace` (which is the player's own truth)."""

    trace: Trace
    oracle: OneStepOracle
    _terms_cache: dict[tuple[int, int, int], list[int]] = field(default_factory=dict, repr=False)

    @property
    def program(self):  # noqa: ANN201
        return self.trace.program

    # -- values this player believes ---------------------------------------------------------

    def values_at(self, s: GameState, points: Sequence[int]) -> list[bytes]:
        """This player's values at `points` of the current level's range."""
        if s.level == Level.STEP:
            return self.trace.step_roots(list(points))
        if s.level == Level.NODE:
            roots = self.trace.node_roots(s.step)
            return [roots[p] for p in points]
        if s.level == Level.TERM:
            sums = self.partial_sums(s)
            return [acc_word(sums[p]) for p in points]
        raise GameError(f"level {s.level.name} has no dissection values.")

    def output(self, s: GameState) -> commit.TensorCommitment:
        return self.trace.commit(self.trace.step_detail(s.step).outputs[s.node])

    def inputs(self, s: GameState) -> _Inputs:
        """The node's inputs at (t, n), with their slot proofs against the pre-state."""
        node = self.program.graph.nodes[s.node]
        values = self.trace._values_at(s.step, s.node)
        table = self.trace.slot_table_at(s.step, s.node)
        out = _Inputs([], [], [], [], [])
        for slot in node.inputs:
            if slot is None:
                out.headers.append(EMPTY)
                out.data_roots.append(EMPTY)
                out.paths.append([])
                out.arrays.append(None)
                out.commitments.append(None)
                continue
            tc = self.trace.commit(values[slot])  # type: ignore[arg-type]
            out.headers.append(tc.header)
            out.data_roots.append(tc.data_root)
            out.paths.append(list(table.open(slot).proof))
            out.arrays.append(values[slot])
            out.commitments.append(tc)
        return out

    def _open(self, s: GameState, phase: int, k: int) -> tuple[list[int], list[tuple]]:
        """Values and openings of the input elements the one-step needs, from this trace."""
        desc = self.program.descriptors[s.node]
        ins = self.inputs(s)
        values: list[int] = []
        openings: list[tuple] = []
        for _ in range(17):
            needs = self.oracle.needs(desc, ins.headers, s.elem_index, phase, k, values)
            if len(needs) == len(values):
                return values, openings
            p, index = needs[len(values)]
            tc = ins.commitments[p]
            arr = ins.arrays[p]
            if tc is None or arr is None:
                raise GameError(f"the one-step asked for absent input {p}; the program and contracts disagree.")
            values.append(int(arr.reshape(-1)[index]))
            j = index * tc.ttype.dtype.width // CHUNK
            openings.append((p, index, tc.chunk(j), list(tc.tree.proof(j))))
        raise GameError("the one-step's needs did not settle; the contracts are inconsistent.")

    def partial_sums(self, s: GameState) -> list[int]:
        """s_0 .. s_K of the disputed element, as the one-step contract computes them: from this
        trace's arrays (verifier.court.terms), asking the contract term by term only for an op
        that module does not cover."""
        key = (s.step, s.node, s.elem_index)
        if key not in self._terms_cache:
            node = self.program.graph.nodes[s.node]
            if terms.covers(node.op.code):
                values = self.trace._values_at(s.step, s.node)
                ins = [None if slot is None else values[slot] for slot in node.inputs]
                sums = terms.partial_sums(node.op.code, node.attrs, ins, s.elem_index)
            else:
                sums = self.oracle_sums(s)
            if len(sums) != s.terms + 1:
                raise GameError(
                    f"this trace has {len(sums) - 1} terms for the disputed element, the game {s.terms}; "
                    "the program and the contracts disagree, report it."
                )
            self._terms_cache = {key: sums}
        return self._terms_cache[key]

    def oracle_sums(self, s: GameState) -> list[int]:
        """s_0 .. s_K through the one-step contract, one call per term (the reference)."""
        desc = self.program.descriptors[s.node]
        headers = self.inputs(s).headers
        K = self.oracle.terms(desc, headers)
        vals, _ = self._open(s, INIT, 0)
        acc = self.oracle.compute(desc, headers, s.elem_index, INIT, 0, 0, vals)
        sums = [acc]
        for k in range(K):
            vals, _ = self._open(s, TERM, k)
            acc = self.oracle.compute(desc, headers, s.elem_index, TERM, k, acc, vals)
            sums.append(acc)
        return sums

    # -- the solver -----------------------------------------------------------------------------

    def solver_move(self, s: GameState) -> Move | None:
        """The solver's next move, or None when it is not the solver's to make."""
        if s.outcome != Outcome.PENDING or s.turn != Role.SOLVER:
            return None
        if s.level in (Level.STEP, Level.NODE, Level.TERM):
            points = interior(s.lo, s.hi, s.arity)
            values = self.values_at(s, points)
            if s.level == Level.TERM and not s.top_known:
                values.append(acc_word(self.partial_sums(s)[s.terms]))
            return Move("game", "reveal", (values,))
        if s.level == Level.OUTPUT:
            p, t, n = self.program, s.step, s.node
            desc = p.descriptors[n]
            out_slot = p.graph.nodes[n].output
            pre = self.trace.slot_table_at(t, n)
            post = self.trace.slot_table_at(t, n + 1)
            tc = self.output(s)
            return Move(
                "game",
                "reveal_output",
                (desc, list(self.trace.open_node(n).proof), pre.root, post.root, pre[out_slot], tc.header, tc.data_root,
                 list(pre.open(out_slot).proof)),
            )
        if s.level == Level.DATA:
            tree = self.output(s).tree
            m = descent(s.arity, s.height)
            below = s.height - m
            return Move("game", "reveal_data", ([tree.node_at(below, (s.index << m) + i) for i in range(1 << m)],))
        if s.level == Level.CHUNK_REVEAL:
            return Move("game", "reveal_chunk", (self.output(s).chunk(s.index),))
        return None

    # -- the challenger -------------------------------------------------------------------------

    def challenger_move(self, s: GameState, revealed: Sequence[bytes] | None = None) -> Move | None:
        """The challenger's next move; `revealed` is the solver's last reveal at this level."""
        if s.outcome != Outcome.PENDING:
            return None
        if s.level == Level.PROVE_ELEMENT:
            return self._prove_element(s)
        if s.level == Level.PROVE_BOUNDARY:
            return self._prove_boundary(s)
        if s.turn != Role.CHALLENGER:
            return None
        if s.level in (Level.STEP, Level.NODE, Level.TERM):
            if revealed is None:
                raise GameError("the challenger needs the solver's revealed values to pick.")
            points = interior(s.lo, s.hi, s.arity)
            mine = self.values_at(s, points)
            j = next((i for i, (a, b) in enumerate(zip(mine, revealed)) if a != b), len(points))
            return Move("game", "pick", (list(revealed), j))
        if s.level in (Level.DATA, Level.ELEMENT) and s.out_header != self.output(s).header:
            return self._prove_header(s)
        if s.level == Level.DATA:
            if revealed is None:
                raise GameError("the challenger needs the solver's revealed children to pick.")
            tree = self.output(s).tree
            m = descent(s.arity, s.height)
            below = s.height - m
            n_chunks = self.output(s).n_chunks
            for i, child in enumerate(revealed):
                idx = (s.index << m) + i
                if idx << below < n_chunks and child != tree.node_at(below, idx):
                    return Move("game", "pick_data", (i, child, list(MerkleTree(list(revealed)).proof(i))))
            raise GameError("every revealed child matches this trace; the game's premise is wrong.")
        if s.level == Level.ELEMENT:
            if revealed is None:
                raise GameError("the challenger needs the solver's revealed chunk to pick.")
            chunk = bytes(revealed[0])
            tc = self.output(s)
            mine = tc.chunk(s.index)
            w = tc.ttype.dtype.width
            n_here = min(CHUNK // w, tc.ttype.size - s.index * (CHUNK // w))
            i = next((i for i in range(n_here) if chunk[i * w : (i + 1) * w] != mine[i * w : (i + 1) * w]), None)
            if i is None:
                raise GameError("the revealed chunk matches this trace; the game's premise is wrong.")
            ins = self.inputs(s)
            return Move(
                "referee",
                "pick_element",
                (chunk, i, self.program.descriptors[s.node], ins.headers, ins.data_roots, ins.paths),
            )
        return None

    def _prove_header(self, s: GameState) -> Move:
        ins = self.inputs(s)
        return Move("referee", "prove_header", (self.program.descriptors[s.node], ins.headers, ins.data_roots, ins.paths))

    def _prove_element(self, s: GameState) -> Move:
        ins = self.inputs(s)
        desc = self.program.descriptors[s.node]
        if s.terms == 0:
            _, openings = self._open(s, DIRECT, 0)
            init: list[tuple] = []
        else:
            _, openings = self._open(s, TERM, s.lo)
            init = self._open(s, INIT, 0)[1] if s.lo == 0 else []
        return Move("referee", "prove_element", (desc, ins.headers, ins.data_roots, openings, init))

    def _prove_boundary(self, s: GameState) -> Move:
        p = self.program
        table = self.trace.slot_table_at(s.step, p.n_nodes)
        return Move(
            "referee",
            "prove_boundary",
            (p.descriptors[p.n_nodes], list(self.trace.open_node(p.n_nodes).proof), table.commitments),
        )


__all__ = [
    "ABSENT",
    "GameError",
    "GameState",
    "Level",
    "Move",
    "OneStepOracle",
    "Outcome",
    "Player",
    "Role",
    "acc_word",
    "descent",
    "interior",
    "word_acc",
]
