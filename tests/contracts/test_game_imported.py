"""The game on models a user brought: skl2onnx's exports of scikit-learn's MLP and logistic
regression, a convnet and a residual one as torch.onnx.export writes them, and onnxruntime's QDQ,
QOperator and dynamic quantizations, each imported as an integer graph and run over rows as an
inference program. A claim with one wrong element
at the program's largest node is caught on-chain, and the honest claim survives a wrong
challenger."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "onnx_models"))

from _court import BoaOracle, as_cheat
from _imported import convnet, exported, image_split, quantized, split
from test_game_rules import WrongElement, new_match, play

from onnx_models import importer
from verifier.court.game import Outcome
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

# every imported model the import tests judge: scikit-learn's MLP and logistic regression on
# both datasets, the convnet and its residual form, and onnxruntime's quantizations of them
MODELS = [
    *(f"sklearn {kind} {data}" for kind in ("mlp", "logistic") for data in ("breast_cancer", "digits")),
    *(f"sklearn mlp breast_cancer {fmt}" for fmt in ("qdq", "qoperator", "dynamic")),
    "convnet", "convnet residual",
    *(f"convnet residual {fmt}" for fmt in ("qdq", "qoperator", "dynamic")),
]  # fmt: skip


def _program(which: str, cls=None, **attrs):  # noqa: ANN001, ANN202
    words = which.split()
    fmt = words[-1] if words[-1] in ("qdq", "qoperator", "dynamic") else None
    if words[0] == "sklearn":
        x_train, x_test, _, _ = split(words[2])
        model, rows, key = exported(words[2], words[1]), x_test[:20], words[2]
    else:
        x_train, x_test, _, _ = image_split()
        model, rows, key = convnet("residual" in words), x_test[:12], "images"
    if fmt is not None:
        model = quantized(model, fmt, key)
    imp = importer.import_model(model, x_train, batch=8 if words[0] == "sklearn" else 4)
    p = load_program(importer.inference_program(imp, importer.quantize_rows(rows, imp.input_scales)))
    return as_cheat(p, cls, **attrs)


def _largest_node(p) -> int:
    return max(range(p.n_nodes), key=lambda n: int(np.prod(p.graph.slots[p.graph.nodes[n].output].type.shape)))



@pytest.fixture(scope="module", params=MODELS)
def honest(request):  # noqa: ANN001, ANN201
    p = _program(request.param)
    tr = Trace(p, checkpoint_every=1)
    tr.run()
    return request.param, p, tr


def wrong_element_caught(court, honest, program) -> None:  # noqa: ANN001
    """One wrong element at the program's largest node is caught on-chain."""
    which, prog, honest_trace = honest
    node = _largest_node(prog)
    with Trace(program(which, WrongElement, target=(1, node), element=3, delta=1 << 20), checkpoint_every=1) as cheat:
        claim = cheat.run()
        assert claim != honest_trace.final_root
        m = new_match(court, BoaOracle(court), cheat, honest_trace, claim, prog)
        assert play(m, "challenger") == Outcome.CHALLENGER_WON


def honest_claim_survives(court, honest, program) -> None:  # noqa: ANN001
    """The honest claim beats a challenger whose trace is wrong at the largest node."""
    which, prog, honest_trace = honest
    target = (2, _largest_node(prog))
    with Trace(program(which, WrongElement, target=target, element=0, delta=1 << 20), checkpoint_every=1) as wrong:
        wrong.run()
        m = new_match(court, BoaOracle(court), honest_trace, wrong, honest_trace.final_root, prog)
        assert play(m, "solver") == Outcome.SOLVER_WON


def test_wrong_element_at_largest_node__caught(court, honest) -> None:  # noqa: ANN001
    wrong_element_caught(court, honest, _program)


def test_honest_claim__survives_wrong_challenger(court, honest) -> None:  # noqa: ANN001
    honest_claim_survives(court, honest, _program)
