"""The game on a training program from a model description with convolutions and pools
(onnx_models/train.py): a claim with one wrong element at a node of each kind the layers add
(the zero-padding Concat, the patch Gather, the gradient's 2-D inverse Gather and its ReduceSum,
max pooling's ReduceMax, ArgMax and Equal, the weight gradient's MatMul, the largest node) is caught
on-chain, and the honest claim survives a wrong challenger."""

from __future__ import annotations

import numpy as np
import pytest
from _court import BoaOracle, as_cheat
from sklearn.datasets import load_digits
from test_game_rules import WrongElement, new_match, play

from onnx_models import train
from verifier.court.game import Outcome
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

NET = {
    "layers": [
        {"type": "conv2d", "out_channels": 2, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "maxpool2d", "kernel": 2}, {"type": "conv2d", "out_channels": 2, "kernel": 2}, {"type": "relu"},
        {"type": "flatten"}, {"type": "linear", "out": 10},
    ],
    "loss": "softmax_cross_entropy", "optimizer": {"type": "sgd", "lr": 0.25, "momentum": 0.5},
    "schedule": {"steps": 3, "batch": 4}, "frac_bits": 12,
}  # fmt: skip
# value names of the nodes to falsify (the node that outputs each)
TARGETS = ["conv1_in", "conv1_cols", "pool2", "d_c2_patches_rescaled_per_input", "d_pool2", "pool2_win_argmax",
           "pool2_win_hot", "d_pool2_win_per_input", "gW2", "largest"]


def _program(cls=None, **attrs):  # noqa: ANN001, ANN202
    x, y = load_digits(return_X_y=True)
    p = load_program(train.build_program(train.parse_spec(NET), x[:200].reshape(-1, 8, 8), y[:200]))
    return as_cheat(p, cls, **attrs)


def _node(p, target: str) -> int:  # noqa: ANN001
    g = p.graph
    if target == "largest":
        return max(range(p.n_nodes), key=lambda n: int(np.prod(g.slots[g.nodes[n].output].type.shape)))
    (n,) = [n for n in range(p.n_nodes) if g.slots[g.nodes[n].output].name == target]
    return n


@pytest.fixture(scope="module")
def honest():  # noqa: ANN201
    p = _program()
    tr = Trace(p, checkpoint_every=1)
    tr.run()
    return p, tr


def _cheat(prog, honest_trace: Trace, node: int, step: int) -> Trace:  # noqa: ANN001
    """The first element of the node's output (in 64 evenly spaced ones) whose falsification at
    `step` reaches the claim: a wrong gradient under an inactive ReLU changes nothing."""
    size = int(np.prod(prog.graph.slots[prog.graph.nodes[node].output].type.shape))
    for element in range(0, size, max(1, size // 64)):
        cheat = Trace(_program(WrongElement, target=(step, node), element=element, delta=1 << 20), checkpoint_every=1)
        if cheat.run() != honest_trace.final_root:
            return cheat
    raise AssertionError(f"no falsified element of node {node} reaches the final state")


@pytest.mark.parametrize("target", TARGETS)
def test_wrong_element_at_each_new_kind_of_node__caught(court, honest, target) -> None:  # noqa: ANN001
    prog, honest_trace = honest
    cheat = _cheat(prog, honest_trace, _node(prog, target), 1)
    claim = cheat.final_root
    m = new_match(court, BoaOracle(court), cheat, honest_trace, claim, prog)
    assert play(m, "challenger") == Outcome.CHALLENGER_WON


def test_honest_claim__survives_wrong_challenger(court, honest) -> None:  # noqa: ANN001
    prog, honest_trace = honest
    wrong = _cheat(prog, honest_trace, _node(prog, "d_pool2_win_per_input"), 1)
    m = new_match(court, BoaOracle(court), honest_trace, wrong, honest_trace.final_root, prog)
    assert play(m, "solver") == Outcome.SOLVER_WON
