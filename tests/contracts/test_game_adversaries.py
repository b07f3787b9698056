"""Adversaries that send raw, hand-crafted calls to the game and the referee.

test_game_rules.py plays cheaters built from the project's own honest `Player`: whatever they
send is a move the protocol could have produced from some trace. The adversaries here send what
no trace produces: an element entered behind the referee's back, input headers that are not in
the pre-state, a pick of a padding child, a pre-state that is not the agreed one, garbage under
the data tree's padding. Each test names the check it guards (docs/SPEC.md section 6) and fails
when that check is deleted from the contract; the honest side must win every game.

Each game is driven by the Players up to the level under attack (`advance`), the raw call is
sent, and the game is then played to its end with the dishonest side's rejected moves counting
as silence (`test_game_rules.play`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import boa
import numpy as np
import pytest
from _court import Match, as_cheat
from eth_abi import encode as abi_encode
from onnx import TensorProto, helper
from test_game_rules import (
    ARITY,
    CLOCK,
    Marked,
    MarksFinalOutput,
    OtherSlotTrace,
    TouchesOtherSlot,
    WrongElement,
    play,
)

from onnx_models.toy import accumulator_program, make_model
from verifier.commit import commitments as commit
from verifier.commit.merkle import MerkleTree, keccak
from verifier.court.game import GameState, Level, Outcome, Player, Role, descent
from verifier.court.play import whose_move
from verifier.engine.program import Program, load_program, make_program
from verifier.engine.trace import Trace

STEPS = 6
#: elements of the wide program's state: 600 int64 = 4,800 bytes = 3 chunks, so the data tree
#: has 4 leaves and the last one is padding
WIDE = 600


# -- programs and traces -------------------------------------------------------------------------


def accumulator(cls: type[Program] | None = None, **attrs: object) -> Program:
    """acc' = acc + W @ x[t mod rows] + t (5 nodes, a step slot); optionally a cheating subclass."""
    p = load_program(accumulator_program(steps=STEPS))
    return as_cheat(p, cls, **attrs)


def wide(cls: type[Program] | None = None, **attrs: object) -> Program:
    """acc' = acc + t over int64[600]: one node whose output spans three chunks."""
    i64 = TensorProto.INT64
    step = make_model(
        [helper.make_node("Add", ["acc", "t"], ["acc_next"], name="add_t")],
        [helper.make_tensor_value_info("t", i64, []), helper.make_tensor_value_info("acc", i64, [WIDE])],
        [helper.make_tensor_value_info("acc_next", i64, [WIDE])],
    )
    p = load_program(make_program(step, steps=STEPS, state={"acc": np.arange(WIDE, dtype=np.int64)}, step_input="t"))
    return as_cheat(p, cls, **attrs)


class StaleStepCounter(Program):
    """The boundary into step `bad_step` leaves the step slot at bad_step - 1 (forgets t + 1)."""

    bad_step: int = 2

    def step_value(self, t: int) -> np.ndarray:
        return np.array(t - 1 if t == self.bad_step else t, dtype=np.int64)


def garbage_padded_leaves(tc: commit.TensorCommitment) -> list[bytes]:
    """The real chunk leaves of `tc`, then garbage where the padding leaves must be Z_0."""
    leaves = [keccak(b"\x00", tc.chunk(j)) for j in range(tc.n_chunks)]
    width = 1 << (tc.n_chunks - 1).bit_length()
    return leaves + [keccak(b"garbage", bytes([i])) for i in range(width - len(leaves))]


class GarbagePaddingTrace(Trace):
    """Commits marked arrays over a data tree whose padding leaves are garbage (the header and
    the real chunks are honest)."""

    def commit(self, array: np.ndarray):  # type: ignore[override]  # noqa: ANN201
        tc = commit.commit(np.asarray(array))
        if not isinstance(array, Marked):
            return tc
        root = MerkleTree(garbage_padded_leaves(tc)).root
        return dataclasses.replace(tc, data_root=root, root=commit.tensor_root(tc.header, root))


def run(program: Program, cls: type[Trace] = Trace) -> Trace:
    tr = cls(program, checkpoint_every=2)
    tr.run()
    return tr


# -- fixtures ------------------------------------------------------------------------------------




@pytest.fixture(scope="module")
def honest_acc() -> Trace:
    return run(accumulator())


@pytest.fixture(scope="module")
def honest_wide() -> Trace:
    return run(wide())


# -- driving a game ------------------------------------------------------------------------------


def new_match(court, oracle, solver_trace, challenger_trace, claim, arity=ARITY) -> Match:  # noqa: ANN001
    p = solver_trace.program
    solver, challenger = boa.env.generate_address("solver"), boa.env.generate_address("challenger")
    gid = court.game.create(
        solver, challenger, p.initial_state_root, claim, p.graph_root, p.steps, p.n_nodes, p.n_slots, arity, CLOCK,
    )
    return Match(court, gid, Player(solver_trace, oracle), Player(challenger_trace, oracle), solver, challenger)


def advance(m: Match, stop: Callable[[GameState], bool]) -> GameState:
    """Let both Players move until `stop` holds for the state (before the next move)."""
    for _ in range(400):
        s = m.court.state(m.gid)
        if stop(s):
            return s
        assert s.outcome == Outcome.PENDING, f"the game ended ({s.outcome.name}) before the attack"
        if whose_move(s) == Role.SOLVER:
            who, move = "solver", m.solver.solver_move(s)
        else:
            who, move = "challenger", m.challenger.challenger_move(s, m._revealed)
        assert move is not None, f"{who} has no move at {s.level.name}"
        boa.env.time_travel(seconds=1)
        m.send(who, move)
    raise AssertionError("the game never reached the attacked level")


def at(level: Level, turn: Role | None = None) -> Callable[[GameState], bool]:
    return lambda s: s.level == level and (turn is None or s.turn == turn)


def stall_and_time_out(m: Match) -> Outcome:
    """The party to move says nothing more; anyone ends the game on its clock."""
    s = m.court.state(m.gid)
    boa.env.time_travel(seconds=max(s.clock_solver, s.clock_challenger) + 1)
    m.court.game.timeout(m.gid)
    return m.court.state(m.gid).outcome


def wrong_challenger(court, oracle, honest: Trace, program: Callable[..., Program], target, **kw) -> Match:  # noqa: ANN001
    """The honest solver's correct claim, disputed by a challenger whose trace is wrong at `target`."""
    wrong = run(program(WrongElement, target=target))
    return new_match(court, oracle, honest, wrong, honest.final_root, **kw)


# -- third parties and the referee's privileges ---------------------------------------------------


def test_enter_element__not_from_the_referee__reverts(court, oracle, honest_acc) -> None:
    """Guards Game.enter_element's caller check (`game: only the referee`): without it the
    challenger records an element value the solver never claimed (its true value + 1) and then
    proves the true value against it, so the honest solver loses."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 2))
    s = advance(m, at(Level.ELEMENT, Role.CHALLENGER))
    ins = m.solver.inputs(s)
    true_value = int(m.solver.trace.step_detail(s.step).outputs[s.node].reshape(-1)[0])
    inputs_hash = keccak(abi_encode(["bytes32[]", "bytes32[]"], [ins.headers, ins.data_roots]))
    stranger = boa.env.generate_address("stranger")
    for who in (m.challenger_addr, stranger, m.solver_addr):
        with boa.env.prank(who), boa.reverts("game: only the referee"):
            court.game.enter_element(m.gid, m.challenger_addr, 0, true_value + 1, inputs_hash, 0)
    assert court.state(m.gid).level == Level.ELEMENT
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def test_pick_element__sent_by_a_stranger__reverts(court, oracle, honest_acc) -> None:
    """Guards Game.enter_element's `sender` check (`game: only the challenger`): the referee acts
    for the challenger only when the challenger sent the choice, so a stranger cannot pick the
    element (and spend the challenger's turn) for it."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(3, 2))
    s = advance(m, at(Level.ELEMENT, Role.CHALLENGER))
    move = m.challenger.challenger_move(s, m._revealed)
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger), boa.reverts("game: only the challenger"):
        court.referee.pick_element(m.gid, *move.args)
    with boa.env.prank(m.solver_addr), boa.reverts("game: only the challenger"):
        court.referee.pick_element(m.gid, *move.args)
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def test_decide__not_from_the_referee__reverts(court, oracle, honest_acc) -> None:
    """Guards Game.decide's caller check (`game: only the referee`): nobody but the referee may
    hand down a one-step verdict, in particular not the challenger deciding against the solver."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(1, 3))
    s = advance(m, at(Level.PROVE_ELEMENT))
    for who in (m.challenger_addr, boa.env.generate_address("stranger")):
        with boa.env.prank(who), boa.reverts("game: only the referee"):
            court.game.decide(m.gid, int(s.level), False, "made up")
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def test_referee__binds_once_and_only_by_the_deployer(court) -> None:
    """Guards Game.set_referee: the deployer binds the referee once; nobody rebinds it to a
    referee of its own that would then call enter_element and decide."""
    game = court.game
    with boa.env.prank(boa.env.generate_address("stranger")), boa.reverts("game: only the deployer"):
        game.set_referee(boa.env.generate_address("evil referee"))
    with boa.reverts("game: referee already set"):
        game.set_referee(boa.env.generate_address("evil referee"))
    assert game.referee() == court.referee.address


# -- a malicious challenger against the honest solver -----------------------------------------------


def _fake_header(shape: tuple[int, ...]) -> commit.TensorCommitment:
    return commit.commit(np.zeros(shape, dtype=np.int64))


def test_prove_header__inputs_not_in_the_pre_state__reverts(court, oracle, honest_acc) -> None:
    """Guards Referee._require_inputs' slot-proof fold (`referee: bad input slot proof`): without
    it the challenger passes off an input header of its own (W as int64[4, 3]), the one-step
    derives another output header, and the honest solver's correct header loses."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 2))
    s = advance(m, at(Level.ELEMENT, Role.CHALLENGER))  # disputes a header it has no quarrel with
    desc = m.challenger.program.descriptors[s.node]
    ins = m.challenger.inputs(s)
    fake = _fake_header((4, 3))  # the MatMul's W; an output of int64[4] instead of int64[3]
    headers, roots = [fake.header, *ins.headers[1:]], [fake.data_root, *ins.data_roots[1:]]
    with boa.env.prank(m.challenger_addr), boa.reverts("referee: bad input slot proof"):
        court.referee.prove_header(m.gid, desc, headers, roots, ins.paths)
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def test_pick_element__input_data_not_in_the_pre_state__reverts(court, oracle, honest_acc) -> None:
    """Guards Referee._require_inputs' slot-proof fold on the element path: without it the
    challenger records inputs of its own (x's row with another data root) and then opens
    elements of its own chunk to compute a value the honest solver did not claim."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 2))
    s = advance(m, at(Level.ELEMENT, Role.CHALLENGER))
    move = m.challenger.challenger_move(s, m._revealed)
    chunk, i, desc, headers, roots, paths = move.args
    other = commit.commit(np.full(3, 7, dtype=np.int64))
    roots = [roots[0], other.data_root]  # MatMul(w, row): a row of 7s
    with boa.env.prank(m.challenger_addr), boa.reverts("referee: bad input slot proof"):
        court.referee.pick_element(m.gid, chunk, i, desc, headers, roots, paths)
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


@pytest.mark.parametrize("first_pick", ["first", "last"])
def test_boundary__challenger_drives_the_honest_solver_to_it__solver_wins(court, oracle, honest_acc, first_pick) -> None:
    """Guards Referee.prove_boundary's step-slot update (`post[step_slot] = t + 1`): a challenger
    that disputes a correct claim all the way to a step boundary (raw picks: one step, then
    always the range end) and proves it must lose; without the update the referee computes a
    post-state whose step counter is stale, and the honest solver's correct boundary loses."""
    m = new_match(court, oracle, honest_acc, honest_acc, honest_acc.final_root)
    revealed = None
    for _ in range(100):
        s = court.state(m.gid)
        if s.level == Level.PROVE_BOUNDARY:
            break
        boa.env.time_travel(seconds=1)
        if s.turn == Role.SOLVER:
            move = m.solver.solver_move(s)
            m.send("solver", move)
            revealed = move.args[0]
            continue
        j = 0 if (s.level == Level.STEP and first_pick == "first") else len(revealed)
        with boa.env.prank(m.challenger_addr):
            court.game.pick(m.gid, revealed, j)
    assert s.level == Level.PROVE_BOUNDARY and s.node == honest_acc.program.n_nodes
    assert s.step == (0 if first_pick == "first" else STEPS - 1)
    m.send("challenger", m.challenger.challenger_move(s))  # the only proof there is
    assert court.state(m.gid).outcome == Outcome.SOLVER_WON


def test_pick_data__padding_child__reverts(court, oracle, honest_wide) -> None:
    """Guards Game.pick_data's `game: child is padding`: the challenger may only descend into a
    child that covers a real chunk. Without it the challenger picks the padding leaf (Z_0),
    where the honest solver has no chunk of its tensor to reveal, and wins on the clock."""
    m = wrong_challenger(court, oracle, honest_wide, wide, target=(1, 0))
    s = advance(m, at(Level.DATA, Role.CHALLENGER))
    children = list(m._revealed)
    m_levels = descent(s.arity, s.height)
    n_chunks = commit.commit(np.zeros(WIDE, dtype=np.int64)).n_chunks
    padding = [j for j in range(len(children)) if ((s.index << m_levels) + j) << (s.height - m_levels) >= n_chunks]
    assert padding, "the reveal has no padding child"
    with boa.env.prank(m.challenger_addr), boa.reverts("game: child is padding"):
        court.game.pick_data(m.gid, padding[0], children[padding[0]], MerkleTree(children).proof(padding[0]))
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


# -- a malicious solver against the honest challenger -------------------------------------------------


@pytest.mark.parametrize("target", [(2, 3), (STEPS - 1, 3)])
def test_reveal_output__pre_state_not_the_agreed_one__reverts(court, oracle, honest_acc, target) -> None:
    """Guards Game.reveal_output's `game: pre-state does not match`. The cheater's node also
    changed W; it fakes a pre-state that already holds the changed W (its post-state with the
    output slot put back), so one sibling path links both. Without the check the output is
    accepted against the fake pre-state, its header and data are honest, and the honest
    challenger has nothing left to dispute."""
    program = accumulator(TouchesOtherSlot, target=target)
    cheat = run(program, OtherSlotTrace)
    m = new_match(court, oracle, cheat, honest_acc, cheat.final_root)
    s = advance(m, at(Level.OUTPUT, Role.SOLVER))
    assert (s.step, s.node) == target
    t, n = target
    p = honest_acc.program
    out_slot = p.graph.nodes[n].output
    w_slot = p.state_slots[1]
    w = honest_acc.state_at_step(t)[1]
    post = honest_acc.slot_table_at(t, n + 1)
    post.set(w_slot, commit.commit(w + 1).root)  # the cheater's state(t, n + 1)
    assert commit.state_root(t, n + 1, post.root) == s.hi_value
    honest_pre = honest_acc.slot_table_at(t, n)
    fake_pre = commit.SlotTable(p.n_slots, post.commitments)
    fake_pre.set(out_slot, honest_pre[out_slot])
    assert fake_pre.root != honest_pre.root
    out = honest_acc.commit(honest_acc.step_detail(t).outputs[n])
    args = (p.descriptors[n], list(honest_acc.open_node(n).proof), fake_pre.root, post.root, honest_pre[out_slot],
            out.header, out.data_root, list(post.open(out_slot).proof))
    with boa.env.prank(m.solver_addr), boa.reverts("game: pre-state does not match"):
        court.game.reveal_output(m.gid, *args)
    assert stall_and_time_out(m) == Outcome.CHALLENGER_WON


@pytest.mark.parametrize("arity", [2, 4])
def test_reveal_data__garbage_under_padding__challenger_wins(court, oracle, honest_wide, arity) -> None:
    """Guards Game.reveal_data's check of padding children (`non-canonical data padding`): the
    cheater's data tree holds honest chunks and garbage in its padding leaf. The challenger may
    not pick padding, and every real child matches, so without the check the honest challenger
    has nothing to dispute; with it the reveal that shows the garbage loses at once. The game
    keeps the level it ended at, with the reveal pending and the challenger to move: its outcome
    alone (`game: already over`) stops a pick that would add to the winner's metered gas."""
    cheat = run(wide(MarksFinalOutput), GarbagePaddingTrace)
    m = new_match(court, oracle, cheat, honest_wide, cheat.final_root, arity=arity)
    s = advance(m, at(Level.DATA, Role.SOLVER))
    tc = commit.commit(np.asarray(cheat.step_detail(STEPS - 1).outputs[-1]))
    tree = MerkleTree(garbage_padded_leaves(tc))
    for _ in range(8):
        s = court.state(m.gid)
        if s.outcome != Outcome.PENDING:
            break
        k = descent(s.arity, s.height)
        below = s.height - k
        children = [tree.node_at(below, (s.index << k) + i) for i in range(1 << k)]
        boa.env.time_travel(seconds=1)
        with boa.env.prank(m.solver_addr):
            court.game.reveal_data(m.gid, children)  # raw: the garbage tree's own nodes
        s = court.state(m.gid)
        if s.outcome != Outcome.PENDING:
            break
        # the honest challenger descends into the last real child (it matches, like all of them)
        last_real = max(j for j in range(len(children)) if ((s.index << k) + j) << below < tc.n_chunks)
        with boa.env.prank(m.challenger_addr):
            court.game.pick_data(m.gid, last_real, children[last_real], MerkleTree(children).proof(last_real))
    assert s.outcome == Outcome.CHALLENGER_WON
    assert s.level == Level.OVER and s.turn == Role.CHALLENGER
    meter = court.game.challenger_gas(m.gid)
    with boa.env.prank(m.challenger_addr), boa.reverts("game: already over"):
        court.game.pick_data(m.gid, 0, children[0], MerkleTree(children).proof(0))
    assert court.game.challenger_gas(m.gid) == meter


def test_boundary__solver_with_a_stale_step_counter__challenger_wins(court, oracle, honest_acc) -> None:
    """Guards Referee.prove_boundary's step-slot update from the other side: a solver whose
    boundary into step 2 forgets to advance the step slot defends a post-state in which only the
    counter is wrong; the referee's own update makes the honest challenger's proof beat it."""
    cheat = run(accumulator(StaleStepCounter, bad_step=2))
    m = new_match(court, oracle, cheat, honest_acc, cheat.final_root)
    s = advance(m, at(Level.PROVE_BOUNDARY))
    assert s.step == 1
    m.send("challenger", m.challenger.challenger_move(s))
    assert court.state(m.gid).outcome == Outcome.CHALLENGER_WON

