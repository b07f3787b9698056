"""Drive a one-step contract (docs/SPEC.md section 5) on one node, as the game would.

`node_case` builds a one-node ONNX model, loads it through the engine (so the descriptor and
headers are the committed ones) and runs the reference interpreter; `contract_element` asks
the contract for the same output element, opening exactly the inputs it `needs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper, numpy_helper

from verifier.commit.commitments import tensor_header
from verifier.core.dtypes import DType, type_of
from verifier.engine.graph import load_graph

DIRECT, INIT, TERM = 0, 1, 2
NO_HEADER = bytes(32)


@dataclass
class NodeCase:
    desc: bytes
    in_headers: list[bytes]
    inputs: list[np.ndarray | None]  # by position in the canonical node's input list
    output: np.ndarray
    out_header: bytes


def node_case(
    op_type: str,
    inputs: list[np.ndarray | None],
    attrs: dict | None = None,
    consts: dict[int, np.ndarray] | None = None,
    opset: int = 18,
) -> NodeCase:
    """One node; `inputs[i]` is fed at run time, `consts[i]` becomes an initializer (shape inputs)."""
    consts = consts or {}
    n = max(len(inputs), max(consts, default=-1) + 1)
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i in range(n):
        if i in consts:
            names.append(f"c{i}")
            inits.append(numpy_helper.from_array(np.asarray(consts[i]), f"c{i}"))
        elif i < len(inputs) and inputs[i] is not None:
            a = np.asarray(inputs[i])
            names.append(f"x{i}")
            graph_inputs.append(helper.make_tensor_value_info(f"x{i}", int(type_of(a).dtype), list(a.shape)))
            feeds[f"x{i}"] = a
        else:
            names.append("")
    node = helper.make_node(op_type, names, ["y"], name="n", **(attrs or {}))
    # onnx's checker wants a shape on graph outputs; one dim without a value leaves both dtype
    # and shape undeclared for load_graph, which only checks a fully known declared shape.
    out = helper.make_tensor_value_info("y", 0, [None])
    model = helper.make_model(
        helper.make_graph([node], "g", graph_inputs, [out], initializer=inits),
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=9,
    )
    g = load_graph(model)
    (cnode,) = g.nodes
    y = g.run(feeds)["y"]
    values = [None if s is None else (feeds.get(g.slots[s].name) if g.slots[s].value is None else g.slots[s].value) for s in cnode.inputs]
    headers = [NO_HEADER if s is None else tensor_header(g.slots[s].type) for s in cnode.inputs]
    return NodeCase(cnode.descriptor(), headers, values, y, tensor_header(g.slots[cnode.output].type))


def _open(case: NodeCase, contract, out_index: int, phase: int, k: int) -> list[int]:
    values: list[int] = []
    for _ in range(17):
        needs = contract.needs(case.desc, case.in_headers, out_index, phase, k, values)
        if len(needs) == len(values):
            return values
        need = needs[len(values)]
        src = case.inputs[need[0]]
        assert src is not None, f"contract asked for absent input {need[0]}"
        flat = src.reshape(-1)
        assert need[1] < flat.size, f"contract asked for index {need[1]} of an input with {flat.size} elements"
        values.append(int(flat[need[1]]))
    raise AssertionError("needs() did not settle")


def contract_element(contract, case: NodeCase, out_index: int, K: int | None = None) -> int:
    """The output element at `out_index` as the contract computes it (through the term game).
    `K` is `contract.terms(..)` if the caller already has it (it depends on the node only)."""
    if K is None:
        K = contract.terms(case.desc, case.in_headers)
    if K == 0:
        return contract.compute(case.desc, case.in_headers, out_index, DIRECT, 0, 0, _open(case, contract, out_index, DIRECT, 0))
    acc = contract.compute(case.desc, case.in_headers, out_index, INIT, 0, 0, _open(case, contract, out_index, INIT, 0))
    for k in range(K):
        acc = contract.compute(case.desc, case.in_headers, out_index, TERM, k, acc, _open(case, contract, out_index, TERM, k))
    return contract.finalize(case.desc, case.in_headers, acc)


def check_node(contract, case: NodeCase, indices: list[int] | None = None) -> None:
    """Header and every listed output element equal the reference; raises AssertionError if not."""
    assert contract.output_header(case.desc, case.in_headers) == case.out_header
    flat = case.output.reshape(-1)
    K = contract.terms(case.desc, case.in_headers)
    for e in range(flat.size) if indices is None else indices:
        want = int(flat[e])
        got = contract_element(contract, case, e, K)
        assert got == want, f"element {e}: contract {got}, reference {want}"


def element_value(v) -> int:
    return int(v)


__all__ = ["DIRECT", "INIT", "TERM", "NodeCase", "check_node", "contract_element", "node_case", "DType"]
