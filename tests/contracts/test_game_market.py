"""The game on the market's three programs (docs/SPEC.md 8.2): a wrong element at every node of
the metamodel, the contribution scores and a data-value step is caught on-chain, so a wrong
metamodel, score or valuation claim loses its bond like any other."""

from __future__ import annotations

import numpy as np
import pytest

from _court import BoaOracle, as_cheat
from onnx_models.market import METAMODEL, SCORES, VALUES, Shape, program
from test_game_rules import WrongElement, new_match, play
from verifier.court.game import Outcome
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

SHAPE = Shape(models=3, datasets=2, rows=6, features=4, dataset_rows=3, k=2)
STEP = {METAMODEL: 0, SCORES: 0, VALUES: 2}  # the step whose nodes are corrupted


def _data(kind: int) -> dict:
    rng = np.random.default_rng(11)
    n, F, R = SHAPE.rows, SHAPE.features, SHAPE.dataset_rows
    preds = [rng.integers(-100, 101, n).astype(np.int8) for _ in range(SHAPE.models)]
    labels = rng.choice(np.array([-1, 1], np.int8), n)
    if kind == METAMODEL:
        return {"weights": np.array([5, 3, 0], np.int64), "predictions": preds}
    if kind == SCORES:
        return {"weights": np.array([5, 3, 0], np.int64), "labels": labels, "predictions": preds}
    datasets = [(rng.integers(0, 17, (R, F)).astype(np.int8), rng.choice(np.array([-1, 1], np.int8), R)) for _ in range(2)]
    return {"mask": np.array([1, 1], np.int64), "labels": labels, "features": rng.integers(0, 17, (n, F)).astype(np.int8),
            "datasets": datasets}  # fmt: skip


def _program(kind: int, cls=None, **attrs):  # noqa: ANN001, ANN202
    p = load_program(program(kind, SHAPE, **_data(kind)))
    return as_cheat(p, cls, **attrs)



@pytest.fixture(scope="module")
def honest():  # noqa: ANN201
    out = {}
    for kind in (METAMODEL, SCORES, VALUES):
        p = _program(kind)
        tr = Trace(p, checkpoint_every=2)
        tr.run()
        out[kind] = (p, tr)
    return out


CASES = [(kind, node) for kind in (METAMODEL, SCORES, VALUES) for node in range(_program(kind).n_nodes)]


@pytest.mark.parametrize(("kind", "node"), CASES)
def test_wrong_element_at_every_node__caught(court, honest, kind: int, node: int) -> None:
    prog, honest_trace = honest[kind]
    # an error that a later comparison or clip absorbs changes nothing: try until one shows
    tries = [(e, d) for e in (-1, 0, 1, 5) for d in (1 << 30, -(1 << 30), 1, -1)]
    tries += [(e, 1 << 30) for e in range(2, 64)]  # e.g. a tie below the diagonal of a [N, N] matrix
    for element, delta in tries:
        cheat = Trace(_program(kind, WrongElement, target=(STEP[kind], node), element=element, delta=delta), checkpoint_every=2)
        claim = cheat.run()
        if claim != honest_trace.final_root:
            break
    assert claim != honest_trace.final_root
    m = new_match(court, BoaOracle(court), cheat, honest_trace, claim, prog)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON


@pytest.mark.parametrize("kind", [METAMODEL, SCORES, VALUES])
def test_honest_claim__survives_wrong_challenger(court, honest, kind: int) -> None:
    prog, honest_trace = honest[kind]
    wrong = Trace(_program(kind, WrongElement, target=(STEP[kind], prog.n_nodes - 1)), checkpoint_every=2)
    wrong.run()
    m = new_match(court, BoaOracle(court), honest_trace, wrong, honest_trace.final_root, prog)
    assert play(m, "solver") == Outcome.SOLVER_WON
