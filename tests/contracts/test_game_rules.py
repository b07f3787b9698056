"""Game rules in op-challenger's manner: an honest side against a catalogue of dishonest ones.

Every cheat is modelled as what a dishonest party's own trace says (a wrong value that
propagates, a lying commitment, a wrong boundary) or as what it sends (garbage, copies,
equivocation, silence). The honest side must win every game.
"""

from __future__ import annotations

import dataclasses
import random

import boa
import numpy as np
import pytest

from _court import Match, as_cheat
from onnx_models.toy import accumulator_program
from solvers.cheats import WrongStepCounter
from verifier.commit import commitments as commit
from verifier.commit.commitments import CHUNK
from verifier.court.game import GameError, Level, Move, Outcome, Player, Role
from verifier.court.play import whose_move
from verifier.commit.merkle import MerkleTree, keccak
from verifier.engine.program import Program, load_program
from verifier.engine.trace import Trace

STEPS = 12
ARITY = 4
CLOCK = 3_600




@pytest.fixture(scope="module")
def honest_program() -> Program:
    return load_program(accumulator_program(steps=STEPS))


@pytest.fixture(scope="module")
def honest_trace(honest_program) -> Trace:
    tr = Trace(honest_program, checkpoint_every=4)
    tr.run()
    return tr


# -- dishonest traces ------------------------------------------------------------------------


class WrongElement(Program):
    """Adds 1 to one element of node n's output at step t; the error propagates."""

    target: tuple[int, int] = (0, 0)
    element: int = 0
    delta: int = 1

    def run_step(self, t, state, fast=True, on_node=None):  # noqa: ANN001, ANN201
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
                    # a small delta is added (wrapping); a large one replaces the value
                    v = int(flat[i]) + self.delta if abs(self.delta) < 100 else self.delta
                    flat[i] = np.array(v).astype(flat.dtype)
            values[node.output] = out
            if on_node is not None:
                on_node(n, out)
        return values, [values[s] for s in self.next_slots]


class TouchesOtherSlot(WrongElement):
    """Node n also overwrites an unrelated slot (the weights) when it runs at step t."""

    def run_step(self, t, state, fast=True, on_node=None):  # noqa: ANN001, ANN201
        values = self.step_values(t, state)
        for n, node in enumerate(self.graph.nodes):
            out = self.graph.run_node(node, values, fast)
            values[node.output] = out
            if (t, n) == self.target:
                w = self.state_slots[1]
                values[w] = values[w] + 1  # type: ignore[operator]
            if on_node is not None:
                on_node(n, out)
        return values, [values[s] for s in self.next_slots]


class OtherSlotTrace(Trace):
    """Node roots that show the unrelated slot changing too, as the cheater's values do."""

    def step_detail(self, t):  # noqa: ANN001, ANN201
        d = super().step_detail(t)
        p = self.program
        tgt_t, tgt_n = p.target
        if t != tgt_t or getattr(d, "tampered", False):
            return d
        from verifier.engine.program import step_slot_table

        state = self.state_at_step(t)
        table = step_slot_table(p, t, state, self.commit)
        w_slot = p.state_slots[1]
        for n in range(p.n_nodes):
            table.set(p.graph.nodes[n].output, self.commit(d.outputs[n]).root)
            if n == tgt_n:
                table.set(w_slot, self.commit(state[1] + 1).root)
            d.roots[n + 1] = commit.state_root(t, n + 1, table.root)
        d.tampered = True
        return d


def cheat_program(cls: type[Program], **attrs: object) -> Program:
    return as_cheat(load_program(accumulator_program(steps=STEPS)), cls, **attrs)


class Marked(np.ndarray):
    """An array whose commitment a lying trace falsifies."""


class MarksFinalOutput(Program):
    """Marks the last node's output of the last step: the value that becomes the final `acc`."""

    def run_step(self, t, state, fast=True, on_node=None):  # noqa: ANN001, ANN201
        values = self.step_values(t, state)
        for n, node in enumerate(self.graph.nodes):
            out = self.graph.run_node(node, values, fast)
            if t == self.steps - 1 and n == self.n_nodes - 1:
                out = out.view(Marked)
            values[node.output] = out
            if on_node is not None:
                on_node(n, out)
        return values, [values[s] for s in self.next_slots]


class LyingTrace(Trace):
    """Commits marked arrays with a lie: a wrong header, or non-zero chunk padding."""

    lie = "header"

    def commit(self, array: np.ndarray):  # type: ignore[override]  # noqa: ANN201
        tc = commit.commit(np.asarray(array))
        return _lying_commitment(tc, self.lie) if isinstance(array, Marked) else tc


def _lying_commitment(tc: commit.TensorCommitment, lie: str):  # noqa: ANN202
    if lie == "header":
        # says shape (..., 1): a canonical header of as many elements, so that only a header
        # proof (not the data's padding) shows it wrong
        header = bytearray(tc.header)
        r = header[1]
        header[1] = r + 1
        header[2 + 4 * r : 6 + 4 * r] = (1).to_bytes(4, "big")
        return dataclasses.replace(tc, header=bytes(header), root=commit.tensor_root(bytes(header), tc.data_root))
    chunks = [bytes(tc.chunk(j)) for j in range(tc.n_chunks)]
    used = tc.ttype.nbytes - CHUNK * (tc.n_chunks - 1)
    last = bytearray(chunks[-1])
    last[used] = 1  # the first padding byte
    chunks[-1] = bytes(last)
    tree = MerkleTree([keccak(b"\x00", c) for c in chunks])
    return _Padded(dataclasses.replace(tc, tree=tree, data_root=tree.root, root=commit.tensor_root(tc.header, tree.root)), chunks)


class _Padded:
    """A TensorCommitment whose chunks carry non-zero padding."""

    def __init__(self, tc: commit.TensorCommitment, chunks: list[bytes]) -> None:
        self._tc, self._chunks = tc, chunks

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._tc, name)

    def chunk(self, j: int) -> bytes:
        return self._chunks[j]


def lying_trace(lie: str) -> Trace:
    tr = LyingTrace(cheat_program(MarksFinalOutput), checkpoint_every=4)
    tr.lie = lie
    tr.run()
    return tr


# -- dishonest strategies (what a party sends) -------------------------------------------------


def garbage(rng: random.Random):  # noqa: ANN201
    """Sends its move with one proof byte flipped, so every defence is invalid."""

    def strategy(s, move):  # noqa: ANN001, ANN202
        if move is None:
            return None
        args = list(move.args)
        for i, a in enumerate(args):
            if isinstance(a, bytes) and len(a) == 32:
                args[i] = bytes([a[0] ^ 0xFF]) + a[1:]
                break
            if isinstance(a, list) and a and isinstance(a[0], bytes):
                args[i] = [bytes([a[0][0] ^ 0xFF]) + a[0][1:]] + a[1:]
                break
        return Move(move.target, move.function, tuple(args))

    return strategy


def silent(_s, _move):  # noqa: ANN001, ANN202
    return None


def disagree_with_everything(s, move):  # noqa: ANN001, ANN202
    """A challenger that disputes the first point of every reveal and never proves."""
    if move is None:
        return None
    if move.function == "pick":
        return Move("game", "pick", (move.args[0], 0))
    if move.function.startswith("prove"):
        return None
    return move


# -- the runner ---------------------------------------------------------------------------------


def new_match(court, oracle, solver_trace, challenger_trace, claim, program, **kw) -> Match:  # noqa: ANN001
    solver, challenger = boa.env.generate_address("solver"), boa.env.generate_address("challenger")
    gid = court.game.create(
        solver, challenger, program.initial_state_root, claim, program.graph_root, program.steps,
        program.n_nodes, program.n_slots, ARITY, CLOCK,
    )
    return Match(court, gid, Player(solver_trace, oracle), Player(challenger_trace, oracle), solver, challenger, **kw)


def play(match: Match, honest_side: str, rejections: bool = False) -> Outcome:
    """Play to the end. With `rejections`, a dishonest party's rejected transaction counts as
    silence; otherwise every move either side's Player builds must be accepted, since a
    rejected honest-protocol move would be a bug that costs someone a game."""
    for _ in range(400):
        s = match.court.state(match.gid)
        if s.outcome != Outcome.PENDING:
            return s.outcome
        solver_moves = whose_move(s) == Role.SOLVER
        who = "solver" if solver_moves else "challenger"
        try:
            if who == "solver":
                move = match.solver_strategy(s, match.solver.solver_move(s))
            else:
                move = match.challenger_strategy(s, match.challenger.challenger_move(s, match._revealed))
        except GameError:
            # a dishonest side's Player finds nothing to dispute (its premise is wrong): silence
            if who == honest_side or not rejections:
                raise
            move = None
        if move is not None:
            boa.env.time_travel(seconds=1)
            if who == honest_side or not rejections:
                match.send(who, move)
                continue
            try:
                match.send(who, move)
                continue
            except Exception:  # a dishonest move the contracts reject
                pass
        boa.env.time_travel(seconds=max(s.clock_solver, s.clock_challenger) + 1)
        match.court.game.timeout(match.gid)
    raise AssertionError("the game did not end")


N_NODES = 5  # Mod, Gather, MatMul, Add, Add


@pytest.mark.parametrize(
    "target",
    [(0, 0), (0, 1), (0, 2), (0, N_NODES - 1), (5, 2), (6, 3), (STEPS - 1, 0), (STEPS - 1, N_NODES - 1)],
)
@pytest.mark.parametrize("element", [0, 2])
def test_wrong_element__challenger_wins(court, oracle, honest_program, honest_trace, target, element) -> None:
    cheat = Trace(cheat_program(WrongElement, target=target, element=element), checkpoint_every=4)
    claim = cheat.run()
    assert claim != honest_trace.final_root
    m = new_match(court, oracle, cheat, honest_trace, claim, honest_program)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON


@pytest.mark.parametrize("target", [(0, 0), (5, 2), (STEPS - 1, N_NODES - 1)])
def test_challenger_disputes_correct_claim__solver_wins(court, oracle, honest_program, honest_trace, target) -> None:
    wrong = Trace(cheat_program(WrongElement, target=target), checkpoint_every=4)
    wrong.run()
    m = new_match(court, oracle, honest_trace, wrong, honest_trace.final_root, honest_program)
    assert play(m, "solver") == Outcome.SOLVER_WON


def test_wrong_output_header__challenger_wins(court, oracle, honest_program, honest_trace) -> None:
    liar = lying_trace("header")
    claim = liar.step_root(STEPS)
    assert claim != honest_trace.final_root
    m = new_match(court, oracle, liar, honest_trace, claim, honest_program)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON
    # the header is proven wrong at the challenger's first turn after the output's reveal
    assert m.sent["challenger"][-1] == "prove_header" and "pick_data" not in m.sent["challenger"]


def test_non_canonical_padding__challenger_wins(court, oracle, honest_program, honest_trace) -> None:
    liar = lying_trace("padding")
    claim = liar.step_root(STEPS)
    assert claim != honest_trace.final_root
    m = new_match(court, oracle, liar, honest_trace, claim, honest_program)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON
    assert m.sent["solver"][-1] == "reveal_chunk"  # lost on revealing the padded chunk


@pytest.mark.parametrize("target", [(2, 3), (STEPS - 1, 3)])
def test_changed_unrelated_slot__challenger_wins(court, oracle, honest_program, honest_trace, target) -> None:
    cheat = OtherSlotTrace(cheat_program(TouchesOtherSlot, target=target), checkpoint_every=4)
    claim = cheat.run()
    m = new_match(court, oracle, cheat, honest_trace, claim, honest_program)
    assert play(m, "challenger", rejections=True) == Outcome.CHALLENGER_WON
    assert "reveal_output" not in m.sent["solver"]  # it could not show a one-slot change


@pytest.mark.parametrize("bad_step", [1, 5, STEPS - 1])
def test_wrong_step_boundary__challenger_wins(court, oracle, honest_program, honest_trace, bad_step) -> None:
    cheat = Trace(cheat_program(WrongStepCounter, bad_step=bad_step), checkpoint_every=4)
    claim = cheat.run()
    m = new_match(court, oracle, cheat, honest_trace, claim, honest_program)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON
    assert m.sent["challenger"][-1] == "prove_boundary"


def test_only_final_output_wrong__challenger_wins(court, oracle, honest_program, honest_trace) -> None:
    m = new_match(court, oracle, honest_trace, honest_trace, keccak(b"made up"), honest_program)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON
    assert m.sent["challenger"][-1] == "prove_boundary"


def test_invalid_proofs_from_solver__challenger_wins(court, oracle, honest_program, honest_trace) -> None:
    cheat = Trace(cheat_program(WrongElement, target=(3, 2)), checkpoint_every=4)
    claim = cheat.run()
    m = new_match(court, oracle, cheat, honest_trace, claim, honest_program, solver_strategy=garbage(random.Random(1)))
    assert play(m, "challenger", rejections=True) == Outcome.CHALLENGER_WON


def test_invalid_proofs_from_challenger__solver_wins(court, oracle, honest_program, honest_trace) -> None:
    wrong = Trace(cheat_program(WrongElement, target=(3, 2)), checkpoint_every=4)
    wrong.run()
    m = new_match(court, oracle, honest_trace, wrong, honest_trace.final_root, honest_program,
                  challenger_strategy=garbage(random.Random(2)))
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def test_move_copied_from_another_game__honest_side_wins(court, oracle, honest_program, honest_trace) -> None:
    cheat_a = Trace(cheat_program(WrongElement, target=(2, 2)), checkpoint_every=4)
    cheat_b = Trace(cheat_program(WrongElement, target=(9, 3)), checkpoint_every=4)
    claim_a, claim_b = cheat_a.run(), cheat_b.run()
    a = new_match(court, oracle, cheat_a, honest_trace, claim_a, honest_program)
    b = new_match(court, oracle, cheat_b, honest_trace, claim_b, honest_program)
    # game A's first reveal, replayed in game B
    first_a = a.solver.solver_move(court.state(a.gid))
    b.solver_strategy = lambda s, move: first_a if s.level == Level.STEP and s.lo == 0 and s.hi == STEPS else move
    assert play(b, "challenger", rejections=True) == Outcome.CHALLENGER_WON
    assert play(a, "challenger") == Outcome.CHALLENGER_WON


def test_equivocation__second_answer_rejected(court, oracle, honest_program, honest_trace) -> None:
    cheat = Trace(cheat_program(WrongElement, target=(4, 2)), checkpoint_every=4)
    claim = cheat.run()
    m = new_match(court, oracle, cheat, honest_trace, claim, honest_program)
    s = court.state(m.gid)
    first = m.solver.solver_move(s)
    m.send("solver", first)
    other = [keccak(b"other", bytes([i])) for i in range(len(first.args[0]))]
    with boa.env.prank(m.solver_addr), boa.reverts("game: not your turn"):
        court.game.reveal(m.gid, other)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON


def test_stalling_solver__loses_on_clock(court, oracle, honest_program, honest_trace) -> None:
    cheat = Trace(cheat_program(WrongElement, target=(4, 2)), checkpoint_every=4)
    claim = cheat.run()
    m = new_match(court, oracle, cheat, honest_trace, claim, honest_program, solver_strategy=silent)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON
    assert m.sent["solver"] == []


def test_challenger_who_disagrees_with_everything__solver_wins(court, oracle, honest_program, honest_trace) -> None:
    m = new_match(court, oracle, honest_trace, honest_trace, honest_trace.final_root, honest_program,
                  challenger_strategy=disagree_with_everything)
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


# -- clocks: one second on each side ---------------------------------------------------------------


def test_clock__move_at_the_last_second_works_one_later_times_out(court, oracle, honest_program, honest_trace) -> None:
    cheat = Trace(cheat_program(WrongElement, target=(4, 2)), checkpoint_every=4)
    claim = cheat.run()
    m = new_match(court, oracle, cheat, honest_trace, claim, honest_program)
    first = m.solver.solver_move(court.state(m.gid))
    boa.env.time_travel(seconds=CLOCK)
    with boa.reverts("game: clock not expired"):
        court.game.timeout(m.gid)
    m.send("solver", first)  # exactly CLOCK seconds used: still allowed
    s = court.state(m.gid)
    assert s.clock_solver == 0
    pick = m.challenger.challenger_move(s, m._revealed)
    # the solver has no time left for its next move
    m.send("challenger", pick)
    boa.env.time_travel(seconds=1)
    nxt = m.solver.solver_move(court.state(m.gid))
    with boa.env.prank(m.solver_addr), boa.reverts("game: clock expired"):
        court.game.reveal(m.gid, *nxt.args)
    court.game.timeout(m.gid)
    assert court.state(m.gid).outcome == Outcome.CHALLENGER_WON


def test_moves__out_of_turn_and_by_strangers__revert(court, oracle, honest_program, honest_trace) -> None:
    cheat = Trace(cheat_program(WrongElement, target=(4, 2)), checkpoint_every=4)
    claim = cheat.run()
    m = new_match(court, oracle, cheat, honest_trace, claim, honest_program)
    first = m.solver.solver_move(court.state(m.gid))
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(m.challenger_addr), boa.reverts("game: only the solver"):
        court.game.reveal(m.gid, *first.args)
    with boa.env.prank(m.challenger_addr), boa.reverts("game: not your turn"):
        court.game.pick(m.gid, *first.args, 0)
    with boa.env.prank(m.solver_addr), boa.reverts("game: wrong number of values"):
        court.game.reveal(m.gid, first.args[0][:-1])
    m.send("solver", first)
    with boa.env.prank(stranger), boa.reverts("game: only the challenger"):
        court.game.pick(m.gid, *first.args, 0)
    with boa.env.prank(m.challenger_addr), boa.reverts("game: not the revealed values"):
        court.game.pick(m.gid, list(reversed(first.args[0])), 0)
    with boa.env.prank(m.challenger_addr), boa.reverts("game: pick out of range"):
        court.game.pick(m.gid, *first.args, len(first.args[0]) + 1)
    with boa.reverts("game: no such game"):
        court.game.timeout(10**9)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON
