"""Raw calls that every check of the game and the referee must refuse, one check per line.

test_game_adversaries.py plays whole attacks for the six checks whose deletion let a cheater
win; this file closes the rest of the assert paths that the mutation check
(bench/mutation_check.py) found unguarded: each `boa.reverts` names the reason of the check it
guards, so deleting that check (or inverting it) fails the test. Every game still ends with the
honest side winning.
"""

from __future__ import annotations

import dataclasses

import boa
import numpy as np
import pytest
import test_game_rules as rules
from _court import _deployer, as_cheat
from test_game_adversaries import (  # noqa: F401 - fixtures
    STEPS,
    accumulator,
    advance,
    at,
    honest_acc,
    honest_wide,
    new_match,
    run,
    stall_and_time_out,
    wide,
    wrong_challenger,
)
from test_game_rules import CLOCK, OtherSlotTrace, TouchesOtherSlot, WrongElement, play

from verifier.commit import commitments as commit
from verifier.commit.commitments import CHUNK
from verifier.commit.merkle import MerkleTree, keccak
from verifier.court.game import Level, Move, Outcome, Role
from verifier.engine.trace import Trace

ZERO = b"\x00" * 32
GAME_ARGS = dict(initial_root=keccak(b"a"), final_root=keccak(b"b"), graph_root=keccak(b"g"), steps=4, n_nodes=3,
                 n_slots=5, arity=4, clock=CLOCK)


def _create(game, **over):  # noqa: ANN001, ANN202
    a = {**GAME_ARGS, **over}
    solver = a.pop("solver", boa.env.generate_address("s"))
    challenger = a.pop("challenger", boa.env.generate_address("c"))
    return game.create(solver, challenger, *a.values())


def test_create__parameters_at_and_past_their_limits(court) -> None:
    """Guards Game.create's range checks: the limits themselves are games, one past is not."""
    game = court.game
    for over in (dict(steps=1), dict(steps=2**63 - 1), dict(n_nodes=0), dict(n_nodes=2**32 - 2), dict(n_slots=1),
                 dict(n_slots=512), dict(arity=2), dict(arity=32), dict(clock=1)):
        assert _create(game, **over) == game.game_count()
    for over, reason in (
        (dict(solver="0x" + "00" * 20), "game: empty party"),
        (dict(challenger="0x" + "00" * 20), "game: empty party"),
        (dict(steps=0), "game: steps out of range"),
        (dict(steps=2**63), "game: steps out of range"),
        (dict(n_nodes=2**32 - 1), "game: too many nodes"),
        (dict(n_slots=0), "game: slot count out of range"),
        (dict(n_slots=513), "game: slot count out of range"),
        (dict(arity=1), "game: arity out of range"),
        (dict(arity=33), "game: arity out of range"),
        (dict(clock=0), "game: zero clock"),
    ):
        with boa.reverts(reason):
            _create(game, **over)


def test_game_without_a_referee__refuses_games_and_an_empty_referee() -> None:
    """Guards `game: no referee yet` (a game nobody could prove) and `game: empty referee`."""
    game = _deployer("Game").deploy()
    with boa.reverts("game: no referee yet"):
        _create(game)
    with boa.reverts("game: empty referee"):
        game.set_referee("0x" + "00" * 20)


# -- the solver out of place ------------------------------------------------------------------------


def test_solver_moves_at_the_wrong_level__revert(court, oracle, honest_acc) -> None:
    """Guards the level checks of the solver's moves: a reveal, a data reveal or a chunk at the
    output level would pass the turn without defending the output (the challenger could not
    move and would lose on its clock), and an output re-sent later would rewind the game."""
    cheat = run(accumulator(WrongElement, target=(2, 3)))
    m = new_match(court, oracle, cheat, honest_acc, cheat.final_root)
    advance(m, at(Level.OUTPUT, Role.SOLVER))
    with boa.env.prank(m.solver_addr):
        with boa.reverts("game: nothing to reveal"):
            court.game.reveal(m.gid, [])
        with boa.reverts("game: not descending data"):
            court.game.reveal_data(m.gid, [ZERO])
        with boa.reverts("game: no chunk to reveal"):
            court.game.reveal_chunk(m.gid, b"\x00" * CHUNK)
    s = court.state(m.gid)
    output = m.solver.solver_move(s)
    m.send("solver", output)
    s = advance(m, at(Level.CHUNK_REVEAL, Role.SOLVER))
    with boa.env.prank(m.solver_addr), boa.reverts("game: not at the output level"):
        court.game.reveal_output(m.gid, *output.args)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON


def _reveal_other_slot_output(court, oracle, honest_acc, t: int, n: int, sibling_path_of: str, reason: str) -> None:  # noqa: ANN001
    """Against a cheater whose node (t, n) also changed W, the solver reveals the honest output
    with the old slot's sibling path taken from the pre-state or the post-state (where W
    differs too); the game refuses with `reason`, and the cheater loses on time."""
    p = honest_acc.program
    other = run(accumulator(TouchesOtherSlot, target=(t, n)), OtherSlotTrace)
    m = new_match(court, oracle, other, honest_acc, other.final_root)
    s = advance(m, at(Level.OUTPUT, Role.SOLVER))
    out_slot, w_slot = p.graph.nodes[n].output, p.state_slots[1]
    pre = honest_acc.slot_table_at(t, n)
    post = honest_acc.slot_table_at(t, n + 1)
    post.set(w_slot, commit.commit(honest_acc.state_at_step(t)[1] + 1).root)
    assert commit.state_root(t, n + 1, post.root) == s.hi_value
    out = honest_acc.commit(honest_acc.step_detail(t).outputs[n])
    path = {"pre": pre, "post": post}[sibling_path_of].open(out_slot).proof
    with boa.env.prank(m.solver_addr), boa.reverts(reason):
        court.game.reveal_output(m.gid, p.descriptors[n], list(honest_acc.open_node(n).proof), pre.root, post.root,
                                 pre[out_slot], out.header, out.data_root, list(path))
    assert stall_and_time_out(m) == Outcome.CHALLENGER_WON


def test_reveal_output__other_post_state_descriptor_or_old_slot__revert(court, oracle, honest_acc) -> None:
    """Guards reveal_output's `post-state does not match` (the cheater shows the honest output,
    not the one its own state(t, n+1) holds), `not the node's descriptor`, and `bad old slot
    proof` (a sibling path taken from the post-state, where another slot changed too)."""
    t, n = 2, 3
    cheat = run(accumulator(WrongElement, target=(t, n)))
    m = new_match(court, oracle, cheat, honest_acc, cheat.final_root)
    s = advance(m, at(Level.OUTPUT, Role.SOLVER))
    honest_move = Move("game", "reveal_output", m.challenger.solver_move(s).args)  # the honest output
    args = list(honest_move.args)
    with boa.env.prank(m.solver_addr):
        with boa.reverts("game: post-state does not match"):
            court.game.reveal_output(m.gid, *args)
        p = honest_acc.program
        with boa.reverts("game: not the node's descriptor"):
            court.game.reveal_output(m.gid, p.descriptors[n - 1], *args[1:])
    assert stall_and_time_out(m) == Outcome.CHALLENGER_WON

    _reveal_other_slot_output(court, oracle, honest_acc, t, n, "post", "game: bad old slot proof")


# -- the challenger out of place --------------------------------------------------------------------


def test_challenger_moves_at_the_wrong_level__revert(court, oracle, honest_acc) -> None:
    """Guards pick_data's `game: not descending data`: a data pick in the middle of a dissection
    would jump levels."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 2))
    advance(m, at(Level.STEP, Role.CHALLENGER))
    with boa.env.prank(m.challenger_addr):
        with boa.reverts("game: not descending data"):
            court.game.pick_data(m.gid, 0, m._revealed[0], MerkleTree(m._revealed).proof(0))
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def test_data_descent__bad_reveals_and_picks__revert(court, oracle, honest_wide) -> None:
    """Guards the data descent: a reveal of the wrong width or of children that do not hash to
    the node, a dissection pick, a pick of a child that is not the revealed one at its index or
    past them, and a chunk that is not the disputed leaf."""
    m = wrong_challenger(court, oracle, honest_wide, wide, target=(1, 0))
    s = advance(m, at(Level.DATA, Role.SOLVER))
    children = m.solver.solver_move(s).args[0]
    garbage = [keccak(b"garbage", bytes([i])) for i in range(len(children))]
    with boa.env.prank(m.solver_addr):
        with boa.reverts("game: wrong number of children"):
            court.game.reveal_data(m.gid, children[:-1])
        with boa.reverts("game: children do not hash to the node"):
            court.game.reveal_data(m.gid, garbage)
    m.send("solver", Move("game", "reveal_data", (children,)))
    with boa.env.prank(m.challenger_addr):
        with boa.reverts("game: nothing to pick"):
            court.game.pick(m.gid, children, 0)
        with boa.reverts("game: not the revealed values"):
            court.game.pick_data(m.gid, 0, garbage[0], MerkleTree(garbage).proof(0))
        with boa.reverts("game: not the revealed values"):  # child 1 opened as if it were child 0
            court.game.pick_data(m.gid, 0, children[1], MerkleTree(children).proof(1))
        with boa.reverts("merkle: index out of range"):
            court.game.pick_data(m.gid, len(children), children[0], MerkleTree(children).proof(0))
    s = advance(m, at(Level.CHUNK_REVEAL, Role.SOLVER))
    chunk = m.solver.solver_move(s).args[0]
    with boa.env.prank(m.solver_addr), boa.reverts("game: not the chunk"):
        court.game.reveal_chunk(m.gid, bytes([chunk[0] ^ 1]) + chunk[1:])
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


# -- the referee's checks ---------------------------------------------------------------------------


def test_pick_element__bad_choices__revert(court, oracle, honest_acc) -> None:
    """Guards pick_element: the chunk must be the revealed leaf, the element inside it and inside
    the tensor, the descriptor the disputed node's, one proof per input; then, at TERM, the
    solver cannot re-send its chunk to rewind to ELEMENT (`game: no chunk to reveal`), and its
    first reveal must carry s_K after the interior values (`game: wrong number of values`)."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 2))
    s = advance(m, at(Level.ELEMENT, Role.CHALLENGER))
    chunk, i, desc, headers, roots, paths = m.challenger.challenger_move(s, m._revealed).args
    other_desc = honest_acc.program.descriptors[s.node - 1]
    with boa.env.prank(m.challenger_addr):
        for args, reason in (
            ((bytes([chunk[0] ^ 1]) + chunk[1:], i, desc, headers, roots, paths), "referee: not the chunk"),
            ((chunk, CHUNK // 8, desc, headers, roots, paths), "referee: element outside the chunk"),
            ((chunk, 3, desc, headers, roots, paths), "referee: element past the tensor"),
            ((chunk, i, other_desc, headers, roots, paths), "referee: not the node's descriptor"),
            ((chunk, i, desc, headers[:1], roots[:1], paths[:1]), "referee: one proof per input"),
        ):
            with boa.reverts(reason):
                court.referee.pick_element(m.gid, *args)
        court.referee.pick_element(m.gid, chunk, i, desc, headers, roots, paths)
    s = court.state(m.gid)
    assert s.level == Level.TERM and s.turn == Role.SOLVER
    with boa.env.prank(m.solver_addr), boa.reverts("game: no chunk to reveal"):
        court.game.reveal_chunk(m.gid, chunk)
    reveal = m.solver.solver_move(s).args[0]  # the interior values, then s_K
    with boa.env.prank(m.solver_addr), boa.reverts("game: wrong number of values"):
        court.game.reveal(m.gid, reveal[:-1])
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def test_prove_header__other_descriptor__reverts(court, oracle, honest_acc) -> None:
    """Guards prove_header's `referee: not the node's descriptor`: another node's descriptor
    would derive another header and beat the solver's correct one."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 2))
    s = advance(m, at(Level.ELEMENT, Role.CHALLENGER))
    desc, headers, roots, paths = m.challenger._prove_header(s).args
    with boa.env.prank(m.challenger_addr), boa.reverts("referee: not the node's descriptor"):
        court.referee.prove_header(m.gid, honest_acc.program.descriptors[s.node + 1], headers, roots, paths)
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def test_prove_element__bad_openings__revert(court, oracle, honest_acc) -> None:
    """Guards prove_element and the openings: the node's descriptor, the inputs proven at the
    pick, one opening per need, each of the needed element, each proven in its input's data."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 3))
    s = advance(m, at(Level.PROVE_ELEMENT))
    assert s.terms == 0
    desc, headers, roots, openings, init = m.challenger.challenger_move(s).args
    assert len(openings) == 2
    bad_chunk = (openings[0][0], openings[0][1], b"\x01" + bytes(openings[0][2][1:]), openings[0][3])
    other_roots = [roots[0], commit.commit(np.full(3, 7, dtype=np.int64)).data_root]
    for args, reason in (
        ((honest_acc.program.descriptors[s.node - 1], headers, roots, openings, init), "referee: not the node's descriptor"),
        ((desc, headers, other_roots, openings, init), "referee: not the proven inputs"),
        ((desc, headers, roots, openings[:1], init), "referee: missing opening"),
        ((desc, headers, roots, [openings[1], openings[0]], init), "referee: opening of the wrong element"),
        ((desc, headers, roots, [bad_chunk, openings[1]], init), "referee: bad element proof"),
    ):
        with boa.reverts(reason):
            court.referee.prove_element(m.gid, *args)
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def _to_boundary(court, m) -> None:  # noqa: ANN001
    """A challenger that disputes the honest solver's correct claim at the last step boundary."""
    revealed = None
    for _ in range(100):
        s = court.state(m.gid)
        if s.level == Level.PROVE_BOUNDARY:
            return
        if s.turn == Role.SOLVER:
            move = m.solver.solver_move(s)
            m.send("solver", move)
            revealed = move.args[0]
        else:
            with boa.env.prank(m.challenger_addr):
                court.game.pick(m.gid, revealed, len(revealed))
    raise AssertionError("no boundary")


def test_prove_boundary__bad_proofs__revert(court, oracle, honest_acc) -> None:
    """Guards prove_boundary: the boundary leaf of the graph, the program's slot count, and a
    slot table that is the agreed pre-state (`referee: pre-state does not match`): a table of the
    challenger's own would give another post-state and beat the honest solver."""
    m = new_match(court, oracle, honest_acc, honest_acc, honest_acc.final_root)
    _to_boundary(court, m)
    s = court.state(m.gid)
    boundary, proof, slots = m.challenger.challenger_move(s).args
    p = honest_acc.program
    tampered = list(slots)
    tampered[p.state_slots[1]] = keccak(b"other weights")
    for args, reason in (
        ((p.descriptors[0], list(honest_acc.open_node(0).proof), slots), "referee: not the boundary descriptor"),
        ((boundary, proof, slots[:-1]), "referee: wrong slot count"),
        ((boundary, proof, tampered), "referee: pre-state does not match"),
    ):
        with boa.reverts(reason):
            court.referee.prove_boundary(m.gid, *args)
    m.send("challenger", Move("referee", "prove_boundary", (boundary, proof, slots)))
    assert court.state(m.gid).outcome == Outcome.SOLVER_WON


# -- clocks and the end ----------------------------------------------------------------------------


def test_clocks__late_pick_and_late_proof__revert(court, oracle, honest_acc) -> None:
    """Guards `game: clock expired` on the referee's paths (enter_element, a one-step proof) and
    `game: clock not expired` on the challenger's side: a challenger out of time cannot still
    pick or prove, and is timed out one second after its clock, not before."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 2))
    s = advance(m, at(Level.ELEMENT, Role.CHALLENGER))
    pick = m.challenger.challenger_move(s, m._revealed)
    with boa.env.anchor():
        boa.env.time_travel(seconds=s.clock_challenger + 1)
        with boa.env.prank(m.challenger_addr), boa.reverts("game: clock expired"):
            court.referee.pick_element(m.gid, *pick.args)
    m.send("challenger", pick)
    m2 = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 3))
    s = advance(m2, at(Level.PROVE_ELEMENT))
    proof = m2.challenger.challenger_move(s)
    left = s.clock_challenger - (boa.env.evm.patch.timestamp - s.turn_start)
    boa.env.time_travel(seconds=left)
    with boa.reverts("game: clock not expired"):
        court.game.timeout(m2.gid)
    boa.env.time_travel(seconds=1)
    with boa.reverts("game: clock expired"):
        court.referee.prove_element(m2.gid, *proof.args)
    court.game.timeout(m2.gid)
    assert court.state(m2.gid).outcome == Outcome.SOLVER_WON
    with boa.reverts("game: already over"):
        court.game.timeout(m2.gid)
    assert court.state(m2.gid).outcome == Outcome.SOLVER_WON


def test_reveal_output__another_slot_changed__reverts(court, oracle, honest_acc) -> None:
    """Guards reveal_output's `game: other slots changed`: the cheater's node also changed W, so
    its post-state is not the pre-state with only the output slot replaced. With the pre-state's
    own sibling path the new commitment folds to the honest post-state, not to the cheater's;
    without the check the honest output is accepted and the challenger has nothing to dispute."""
    _reveal_other_slot_output(court, oracle, honest_acc, 2, 3, "pre", "game: other slots changed")


class _BadHeaderTrace(Trace):
    """Commits the marked final output under a header with an unknown dtype (not canonical)."""

    def commit(self, array):  # type: ignore[override]  # noqa: ANN001, ANN201
        tc = commit.commit(np.asarray(array))
        if not isinstance(array, rules.Marked):
            return tc
        header = bytes([0xEE]) + tc.header[1:]
        return dataclasses.replace(tc, header=header, root=commit.tensor_root(header, tc.data_root))


def test_reveal_output__header_that_is_not_canonical__solver_loses_at_once(court, oracle, honest_acc) -> None:
    """Guards reveal_output's canonical-header check: no program's tensor has a header with an
    unknown dtype, and no data tree can be sized by one, so the reveal that shows it ends the
    game against the solver (not a descent, not a header proof). The game keeps the level it
    ended at with the solver to move: its outcome alone (`game: already over`) refuses the
    solver's reveal sent again."""
    cheat = _BadHeaderTrace(accumulator(rules.MarksFinalOutput), checkpoint_every=2)
    cheat.run()
    m = new_match(court, oracle, cheat, honest_acc, cheat.step_root(STEPS))
    s = advance(m, at(Level.OUTPUT, Role.SOLVER))
    move = m.solver.solver_move(s)
    m.send("solver", move)
    resolved = [e for e in court.game.get_logs() if type(e).__name__ == "GameResolved"]
    assert [e.reason for e in resolved] == ["non-canonical output header"]
    s = court.state(m.gid)
    assert (s.outcome, s.level, s.turn) == (Outcome.CHALLENGER_WON, Level.OVER, Role.SOLVER)
    with boa.env.prank(m.solver_addr), boa.reverts("game: already over"):
        court.game.reveal_output(m.gid, *move.args)


@pytest.mark.parametrize("where", ["step", "term"])
def test_prove_header__outside_the_data_descent__reverts(court, oracle, honest_acc, where) -> None:
    """Guards prove_header's level check (`referee: not at this proof`, and the game's own
    through `decide`): before the output is revealed there is no header to prove, and once the
    element is chosen its word holds the element, not the header."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 2))
    s = advance(m, at(Level.ELEMENT, Role.CHALLENGER))
    desc, headers, roots, paths = m.challenger._prove_header(s).args
    if where == "term":
        s = advance(m, at(Level.TERM))
    else:
        m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 2))
        s = advance(m, at(Level.STEP, Role.CHALLENGER))
    # a wrong header: the check is all that stands between this call and the solver's loss
    wrong = bytes([headers[0][0]]) + bytes(31)
    with boa.env.prank(m.challenger_addr), boa.reverts("referee: not at this proof"):
        court.referee.prove_header(m.gid, desc, [wrong, *headers[1:]], roots, paths)
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def test_prove_header__a_right_header__reverts_and_the_game_goes_on(court, oracle, honest_acc) -> None:
    """Guards `referee: the header is right`: the header proof is anyone's to send at any level
    of the data descent, so a right header must decide nothing (the cheating solver itself
    would send it to end a game on wrong data); the honest solver still wins its game."""
    m = wrong_challenger(court, oracle, honest_acc, accumulator, target=(2, 2))
    s = advance(m, at(Level.ELEMENT, Role.CHALLENGER))
    desc, headers, roots, paths = m.challenger._prove_header(s).args
    for who in (m.challenger_addr, m.solver_addr, boa.env.generate_address("anyone")):
        with boa.env.prank(who), boa.reverts("referee: the header is right"):
            court.referee.prove_header(m.gid, desc, headers, roots, paths)
    assert court.state(m.gid).outcome == Outcome.PENDING
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON


def clipped(cls=None, **attrs):  # noqa: ANN001, ANN201
    """acc' = Clip(acc, <absent>, 50) + t: a node with an absent optional input (Clip's lo)."""
    from onnx import TensorProto, helper, numpy_helper

    from onnx_models.toy import make_model
    from verifier.engine.program import load_program, make_program

    i64 = TensorProto.INT64
    step = make_model(
        [helper.make_node("Clip", ["acc", "", "hi"], ["c"], name="clip"),
         helper.make_node("Add", ["c", "t"], ["acc_next"], name="add_t")],
        [helper.make_tensor_value_info("t", i64, []), helper.make_tensor_value_info("acc", i64, [3])],
        [helper.make_tensor_value_info("acc_next", i64, [3])],
        [numpy_helper.from_array(np.array(50, dtype=np.int64), "hi")],
    )
    p = load_program(make_program(step, steps=STEPS, state={"acc": np.array([5, -7, 100], dtype=np.int64)}, step_input="t"))
    return as_cheat(p, cls, **attrs)


def test_pick_element__value_for_an_absent_input__reverts(court, oracle) -> None:
    """Guards `referee: absent input has a value`: Clip's absent `lo` must come with empty header
    and data root; a challenger that gives it a value of its own (lo = 10^6) would make the
    one-step clip to it and beat the honest solver's correct element."""
    honest = run(clipped())
    m = wrong_challenger(court, oracle, honest, clipped, target=(1, 0))
    s = advance(m, at(Level.ELEMENT, Role.CHALLENGER))
    chunk, i, desc, headers, roots, paths = m.challenger.challenger_move(s, m._revealed).args
    assert headers[1] == ZERO and roots[1] == ZERO
    lo = commit.commit(np.array(10**6, dtype=np.int64))
    fake_headers, fake_roots = [headers[0], lo.header, headers[2]], [roots[0], lo.data_root, roots[2]]
    with boa.env.prank(m.challenger_addr), boa.reverts("referee: absent input has a value"):
        court.referee.pick_element(m.gid, chunk, i, desc, fake_headers, fake_roots, paths)
    assert play(m, "solver", rejections=True) == Outcome.SOLVER_WON
