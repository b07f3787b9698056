"""The game on the bundled training program: a wrong element at every node of a step, and a
wrong step boundary, are each caught, and an honest claim survives a wrong challenger."""

from __future__ import annotations

import pytest

from _court import BoaOracle, as_cheat
from cli import resolve_program
from test_game_rules import WrongElement, WrongStepCounter, new_match, play
from verifier.court.game import Outcome
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

STEPS = 3


def mlp(cls=None, **attrs):  # noqa: ANN001, ANN201
    p = load_program(resolve_program("mlp_train"), steps=STEPS)
    return as_cheat(p, cls, **attrs)



@pytest.fixture(scope="module")
def honest():  # noqa: ANN201
    p = mlp()
    tr = Trace(p, checkpoint_every=2)
    tr.run()
    return p, tr


N_NODES = len(mlp().graph.nodes)


@pytest.mark.parametrize("node", range(N_NODES))
def test_wrong_element_at_every_node__caught(court, honest, node: int) -> None:
    program, honest_trace = honest
    # The last element (the far end of the data tree) first; an error that a later Relu,
    # Clip or comparison absorbs changes nothing, so try until one reaches the result.
    tries = [(-1, 1)] + [(e, d) for e in (-1, 0, 1, 7, 100, 1000, -100) for d in (1 << 30, -(1 << 30))]
    for element, delta in tries:
        cheat = Trace(mlp(WrongElement, target=(1, node), element=element, delta=delta), checkpoint_every=2)
        claim = cheat.run()
        if claim != honest_trace.final_root:
            break
    assert claim != honest_trace.final_root
    m = new_match(court, BoaOracle(court), cheat, honest_trace, claim, program)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON


def test_wrong_boundary__caught(court, honest) -> None:
    program, honest_trace = honest
    cheat = Trace(mlp(WrongStepCounter, bad_step=2), checkpoint_every=2)
    claim = cheat.run()
    m = new_match(court, BoaOracle(court), cheat, honest_trace, claim, program)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON


# 1: an int64[64] output whose data ends on a 32-byte word boundary (512 bytes)
@pytest.mark.parametrize("node", [0, 1, N_NODES // 2, N_NODES - 1])
def test_honest_claim__survives_wrong_challenger(court, honest, node: int) -> None:
    program, honest_trace = honest
    wrong = Trace(mlp(WrongElement, target=(0, node)), checkpoint_every=2)
    wrong.run()
    m = new_match(court, BoaOracle(court), honest_trace, wrong, honest_trace.final_root, program)
    assert play(m, "solver") == Outcome.SOLVER_WON
