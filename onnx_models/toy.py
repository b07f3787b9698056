"""A toy program small enough for fast game, daemon and end-to-end tests.

acc' = acc + W @ x[t mod rows] + t: batch selection by step (Mod, Gather), a product
(MatMul) and elementwise ops, over a few hundred bytes of state.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from verifier.engine.program import make_program

OPSET = [helper.make_opsetid("", 18)]


def make_model(nodes, inputs, outputs, initializers=(), opset=OPSET) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=opset, ir_version=9)


def accumulator_step(rows: int = 5, width: int = 3, inner: int | None = None) -> onnx.ModelProto:
    """acc' = acc + W @ x[t mod rows] + t: a tiny program with batch selection by step; W is
    width x inner (square by default), so `inner` sets the length of each MatMul element's sum."""
    inner = width if inner is None else inner
    i64 = TensorProto.INT64
    nodes = [
        helper.make_node("Mod", ["t", "n_rows"], ["idx"], name="pick"),
        helper.make_node("Gather", ["x", "idx"], ["row"], axis=0, name="gather"),
        helper.make_node("MatMul", ["w", "row"], ["wx"], name="matmul"),
        helper.make_node("Add", ["acc", "wx"], ["acc1"], name="add"),
        helper.make_node("Add", ["acc1", "t"], ["acc_next"], name="add_t"),
    ]
    inputs = [
        helper.make_tensor_value_info("t", i64, []),
        helper.make_tensor_value_info("acc", i64, [width]),
        helper.make_tensor_value_info("w", i64, [width, inner]),
        helper.make_tensor_value_info("x", i64, [rows, inner]),
    ]
    outputs = [
        helper.make_tensor_value_info("acc_next", i64, [width]),
        helper.make_tensor_value_info("w", i64, [width, inner]),
    ]
    consts = [numpy_helper.from_array(np.array(rows, dtype=np.int64), "n_rows")]
    return make_model(nodes, inputs, outputs, consts)


def accumulator_program(
    steps: int = 12, rows: int = 5, width: int = 3, seed: int = 0, inner: int | None = None
) -> onnx.ModelProto:
    inner = width if inner is None else inner
    rng = np.random.default_rng(seed)
    return make_program(
        accumulator_step(rows, width, inner),
        steps=steps,
        state={"acc": np.zeros(width, np.int64), "w": rng.integers(-9, 10, (width, inner)).astype(np.int64)},
        data={"x": rng.integers(-100, 100, (rows, inner)).astype(np.int64)},
        step_input="t",
    )


def accumulator_numpy(model_steps: int, rows: int = 5, width: int = 3, seed: int = 0) -> np.ndarray:
    """The same computation in plain numpy, independent of the engine."""
    rng = np.random.default_rng(seed)
    acc = np.zeros(width, np.int64)
    w = rng.integers(-9, 10, (width, width)).astype(np.int64)
    x = rng.integers(-100, 100, (rows, width)).astype(np.int64)
    for t in range(model_steps):
        acc = acc + w @ x[t % rows] + t
    return acc

