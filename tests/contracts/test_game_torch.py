"""The game on models exported by torch.onnx.export itself (tests/onnx_models/_torch.py): the
residual convnet from the torch.export exporter and the Softmax-output MLP from the TorchScript
one, imported and run over rows as inference programs. A claim with one wrong element at the
program's largest node is caught on-chain, and the honest claim survives a wrong challenger."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "onnx_models"))

from _court import as_cheat
from _torch import digits, exported
from test_game_imported import honest_claim_survives, wrong_element_caught

from onnx_models import importer
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

MODELS = [("residual", "dynamo"), ("mlp_softmax", "torchscript")]


def _program(which: tuple[str, str], cls=None, **attrs):  # noqa: ANN001, ANN202
    name, exporter = which
    x_train, x_test, _, _ = digits(name)
    imp = importer.import_model(exported(name, exporter), x_train, batch=4)
    p = load_program(importer.inference_program(imp, importer.quantize_rows(x_test[:12], imp.input_scales)))
    return as_cheat(p, cls, **attrs)


@pytest.fixture(scope="module", params=MODELS, ids=["-".join(m) for m in MODELS])
def honest(request):  # noqa: ANN001, ANN201
    p = _program(request.param)
    tr = Trace(p, checkpoint_every=1)
    tr.run()
    yield request.param, p, tr
    tr.close()


def test_wrong_element_at_largest_node__caught(court, honest) -> None:  # noqa: ANN001
    wrong_element_caught(court, honest, _program)


def test_honest_claim__survives_wrong_challenger(court, honest) -> None:  # noqa: ANN001
    honest_claim_survives(court, honest, _program)
