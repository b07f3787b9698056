"""Game.vy keeps the fields every move reads in three packed words and gives the referee narrow
views (SPEC 6, Storage). Every field must read back exactly as it was written, at the limits of
its width, and every view must agree with `games` at every moment of a game: a field read from
the wrong bits, or a view that drifted from the game, would let a proof decide on values the
game never held."""

from __future__ import annotations

import boa
import pytest
from test_game_rules import (
    STEPS,
    WrongElement,
    WrongStepCounter,
    cheat_program,
    lying_trace,
    new_match,
    play,
)

from onnx_models.toy import accumulator_program
from verifier.commit.merkle import keccak
from verifier.court.game import Level, Outcome
from verifier.engine.program import Program, load_program
from verifier.engine.trace import Trace

ALL_ONES = "0x" + "ff" * 20


@pytest.fixture(scope="module")
def honest_program() -> Program:
    return load_program(accumulator_program(steps=STEPS))


@pytest.fixture(scope="module")
def honest_trace(honest_program) -> Trace:  # noqa: ANN001
    tr = Trace(honest_program, checkpoint_every=4)
    tr.run()
    return tr


def test_create__every_packed_field_at_its_limit_reads_back(court) -> None:
    """The largest value of each packed field at once, beside addresses with every bit set: no
    field spills into its neighbour (the clocks and the meter share one word, the parties theirs
    with the program's sizes)."""
    solver, challenger = ALL_ONES, "0x" + "fe" * 20
    steps, n_nodes, n_slots, arity, clock = 2**63 - 1, 2**32 - 2, 512, 32, 2**64 - 1
    gid = court.game.create(solver, challenger, keccak(b"i"), keccak(b"f"), keccak(b"g"), steps, n_nodes, n_slots,
                            arity, clock)
    g = court.game.games(gid)
    assert (g.solver.lower(), g.challenger.lower()) == (solver, challenger)
    assert (g.steps, g.n_nodes, g.n_slots, g.arity) == (steps, n_nodes, n_slots, arity)
    assert (g.level, g.turn, g.outcome, g.top_known) == (Level.STEP, 1, Outcome.PENDING, False)
    assert (g.lo, g.hi, g.lo_value, g.hi_value, g.graph_root) == (0, steps, keccak(b"i"), keccak(b"f"), keccak(b"g"))
    assert g.reveal_hash == b"\x00" * 32
    assert (g.clock_solver, g.clock_challenger, g.turn_start) == (clock, clock, boa.env.evm.patch.timestamp)
    assert court.game.challenger_gas(gid) == 0
    assert court.game.time_left(gid) == (clock, clock)
    assert len(court.game.interior(gid)) == arity - 1
    b = court.game.boundary_view(gid)
    assert (b.n_nodes, b.n_slots, b.graph_root, b.lo_value, b.hi_value) == (n_nodes, n_slots, keccak(b"g"),
                                                                             keccak(b"i"), keccak(b"f"))
    # a one-step game enters the node level at once, with the node range of the packed n_nodes
    gid = court.game.create(solver, challenger, keccak(b"i"), keccak(b"f"), keccak(b"g"), 1, n_nodes, n_slots, arity,
                            clock)
    g = court.game.games(gid)
    assert (g.level, g.step, g.lo, g.hi) == (Level.NODE, 0, 0, n_nodes + 1)


def test_moves__the_meter_and_the_clocks_share_a_word_without_mixing(court, oracle, honest_program, honest_trace) -> None:
    """After challenger moves have metered gas, each clock still reads its own seconds and the
    reveal hash reads empty once picked."""
    wrong = Trace(cheat_program(WrongElement, target=(3, 2)), checkpoint_every=4)
    claim = wrong.run()
    m = new_match(court, oracle, wrong, honest_trace, claim, honest_program)
    g0 = court.game.games(m.gid)
    with boa.env.prank(m.solver_addr):
        boa.env.time_travel(seconds=7)
        court.game.reveal(m.gid, [honest_trace.step_root(t) for t in court.game.interior(m.gid)])
    g1 = court.game.games(m.gid)
    assert g1.reveal_hash != b"\x00" * 32 and g1.turn == 2
    assert (g1.clock_solver, g1.clock_challenger) == (g0.clock_solver - 7, g0.clock_challenger)
    points = court.game.interior(m.gid)
    with boa.env.prank(m.challenger_addr):
        boa.env.time_travel(seconds=11)
        court.game.pick(m.gid, [honest_trace.step_root(t) for t in points], len(points))
    g2 = court.game.games(m.gid)
    meter = court.game.challenger_gas(m.gid)
    assert 21_000 * 4 // 5 < meter < 200_000
    assert (g2.clock_solver, g2.clock_challenger) == (g0.clock_solver - 7, g0.clock_challenger - 11)
    assert g2.reveal_hash == b"\x00" * 32 and g2.turn == 1
    assert court.game.time_left(m.gid) == (g2.clock_solver, g2.clock_challenger)


def _views_agree(court, gid: int) -> None:  # noqa: ANN001
    """Each narrow view holds what `games` holds at the levels whose proof reads it (the words
    it reads hold other levels' fields elsewhere), and every view's level is the game's."""
    g = court.game.games(gid)
    o = court.game.output_view(gid)
    t = court.game.term_view(gid)
    b = court.game.boundary_view(gid)
    assert o.level == t.level == b.level == g.level
    if g.level in (Level.DATA, Level.CHUNK_REVEAL, Level.ELEMENT):  # prove_header, pick_element
        assert (o.n_slots, o.pre_slots_root, o.desc_hash, o.out_header) == (
            g.n_slots, g.pre_slots_root, g.desc_hash, g.out_header)
    if g.level == Level.ELEMENT:
        assert (o.cur, o.index) == (g.cur, g.index)
    if g.level in (Level.TERM, Level.PROVE_ELEMENT):
        assert (t.desc_hash, t.inputs_hash, t.elem_index, t.elem_value, t.terms, t.lo, t.hi, t.lo_value,
                t.hi_value) == (g.desc_hash, g.inputs_hash, g.elem_index, g.elem_value, g.terms, g.lo, g.hi,
                                g.lo_value, g.hi_value)
    assert (b.n_nodes, b.n_slots, b.graph_root, b.step, b.lo_value, b.hi_value) == (
        g.n_nodes, g.n_slots, g.graph_root, g.step, g.lo_value, g.hi_value)


def _checked(m):  # noqa: ANN001, ANN202
    def strategy(s, move):  # noqa: ANN001, ANN202
        _views_agree(m.court, m.gid)
        return move

    m.solver_strategy = m.challenger_strategy = strategy
    return m


@pytest.mark.parametrize("cheat", ["element", "header", "boundary"])
def test_views__agree_with_games_before_every_move_of_a_game(court, oracle, honest_program, honest_trace, cheat) -> None:
    """Games that end in each of the referee's three proofs (an element through the TERM level,
    a header, a step boundary): before every move, and at the end, the views hold what
    `games` holds."""
    if cheat == "element":
        liar = Trace(cheat_program(WrongElement, target=(5, 2)), checkpoint_every=4)
        claim = liar.run()
    elif cheat == "header":
        liar = lying_trace("header")
        claim = liar.step_root(STEPS)
    else:
        liar = Trace(cheat_program(WrongStepCounter, bad_step=5), checkpoint_every=4)
        claim = liar.run()
    m = _checked(new_match(court, oracle, liar, honest_trace, claim, honest_program))
    assert play(m, "challenger") == Outcome.CHALLENGER_WON
    _views_agree(court, m.gid)
    proof = {"element": "prove_element", "header": "prove_header", "boundary": "prove_boundary"}[cheat]
    assert m.sent["challenger"][-1] == proof


@pytest.mark.parametrize("value", [0, 1, -1, 2**63 - 1, -(2**63), 2**64 - 1, -(2**64) + 1])
def test_element_word__index_terms_and_value_read_back_at_their_limits(court, value) -> None:
    """The chosen element shares one word with its index and the term count: a signed value of
    64 bits (int64 or uint64 elements) reads back sign-extended, the others untouched."""
    index, terms = 2**32 - 1, 2**32 - 2
    word = court.game.internal._element_word((index, terms, value))
    assert word & (2**64 - 1) == index
    assert (word >> 64) & (2**64 - 1) == terms
    assert tuple(court.game.internal._element(word)) == (index, terms, value)
