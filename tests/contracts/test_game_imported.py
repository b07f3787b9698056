"""The game on a model a user brought: skl2onnx's export of a scikit-learn MLP, imported as an
integer graph and run over rows as an inference program. A claim with one wrong element at its
largest node is caught on-chain, and the honest claim survives a wrong challenger."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "onnx_models"))

from _court import BoaOracle, Court
from _imported import exported, split
from test_game_rules import WrongElement, new_match, play

from onnx_models import importer
from verifier.court.game import Outcome
from verifier.engine.program import load_program
from verifier.engine.trace import Trace


def _program(cls=None, **attrs):
    x_train, x_test, _, _ = split("breast_cancer")
    imp = importer.import_model(exported("breast_cancer", "mlp"), x_train, batch=8)
    p = load_program(
        importer.inference_program(
            imp, importer.quantize_rows(x_test[:20], imp.input_scales)
        )
    )
    if cls is not None:
        p.__class__ = cls
        for k, v in attrs.items():
            setattr(p, k, v)
    return p


def _largest_node(p) -> int:
    return max(
        range(p.n_nodes),
        key=lambda n: int(np.prod(p.graph.slots[p.graph.nodes[n].output].type.shape)),
    )


@pytest.fixture(scope="module")
def court() -> Court:
    return Court.deploy()


@pytest.fixture(scope="module")
def honest():
    p = _program()
    tr = Trace(p, checkpoint_every=1)
    tr.run()
    return p, tr


def test_wrong_element_at_largest_node__caught(court, honest) -> None:
    prog, honest_trace = honest
    node = _largest_node(prog)
    cheat = Trace(
        _program(WrongElement, target=(1, node), element=3, delta=1 << 20),
        checkpoint_every=1,
    )
    claim = cheat.run()
    assert claim != honest_trace.final_root
    m = new_match(court, BoaOracle(court), cheat, honest_trace, claim, prog)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON


def test_honest_claim__survives_wrong_challenger(court, honest) -> None:
    prog, honest_trace = honest
    wrong = Trace(
        _program(
            WrongElement, target=(2, _largest_node(prog)), element=0, delta=1 << 20
        ),
        checkpoint_every=1,
    )
    wrong.run()
    m = new_match(
        court, BoaOracle(court), honest_trace, wrong, honest_trace.final_root, prog
    )
    assert play(m, "solver") == Outcome.SOLVER_WON
