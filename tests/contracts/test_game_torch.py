"""The game on models exported by torch.onnx.export itself (tests/onnx_models/_torch.py): the
residual convnet from the torch.export exporter and the Softmax-output MLP from the TorchScript
one, imported and run over rows as inference programs. A claim with one wrong element at the
program's largest node is caught on-chain, and the honest claim survives a wrong challenger.
A wrong element in what the importer adds for padded pools (the border a Concat puts around a
tensor, the per-position divisors of an average pool) and in a Sub that broadcasts is caught
too."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "onnx_models"))

from _court import BoaOracle, as_cheat
from _torch import digits, exported
from test_game_imported import honest_claim_survives, wrong_element_caught
from test_game_rules import WrongElement, new_match, play

from onnx_models import importer
from verifier.court.game import Outcome
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


def test_products_of_two_activations__wrong_element_caught(court) -> None:  # noqa: ANN001
    """SiLU, GELU and Mish multiply an activation by its gate: a wrong element of each product
    (a Mul of two computed tensors) is caught."""
    which = ("gated", "dynamo")
    prog = _program(which)
    consts = {i for i, slot in enumerate(prog.graph.slots) if slot.value is not None}
    products = [n for n, nd in enumerate(prog.graph.nodes) if nd.op.name == "Mul" and not consts & set(nd.inputs)]
    assert len(products) == 3
    with Trace(prog, checkpoint_every=1) as honest:
        honest.run()
        for node in products:
            with Trace(_program(which, WrongElement, target=(1, node), element=9, delta=1 << 20), checkpoint_every=1) as cheat:
                claim = cheat.run()
                assert claim != honest.final_root
                match = new_match(court, BoaOracle(court), cheat, honest, claim, prog)
                assert play(match, "challenger") == Outcome.CHALLENGER_WON


def _nodes(prog, op: str, per_position: bool = False) -> list[int]:  # noqa: ANN001
    """The nodes of `op`; with per_position, those whose second operand has four dims (the
    average pool's multiplier, one per output position)."""
    slots = prog.graph.slots
    return [
        n for n, nd in enumerate(prog.graph.nodes)
        if nd.op.name == op and (not per_position or len(slots[nd.inputs[1]].type.shape) == 4)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("op", "per_position", "nth", "element"),
    [("Concat", False, 0, 0), ("Concat", False, -1, -1), ("Sub", False, 0, 5), ("Mul", True, 0, 7)],
    ids=["first-border", "last-border", "broadcast-sub", "avgpool-divisors"],
)  # fmt: skip
def test_padded_pools__wrong_element_caught(court, op: str, per_position: bool, nth: int, element: int) -> None:  # noqa: ANN001
    """Element 0 of the first Concat and the last element of the last are border constants
    (the pad value, not the tensor's); the average pool that leaves the padding out of its
    count rescales by a multiplier per output position."""
    which = ("padded", "torchscript")
    prog = _program(which)
    node = _nodes(prog, op, per_position)[nth]
    with Trace(prog, checkpoint_every=1) as honest, Trace(
        _program(which, WrongElement, target=(1, node), element=element, delta=1 << 20), checkpoint_every=1
    ) as cheat:
        honest.run()
        claim = cheat.run()
        assert claim != honest.final_root
        assert play(new_match(court, BoaOracle(court), cheat, honest, claim, prog), "challenger") == Outcome.CHALLENGER_WON
