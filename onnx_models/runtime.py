"""Run a program-convention ONNX file (docs/SPEC.md 3.1) with onnxruntime, step by step.

This is the float32 baseline runner (and a fast cross-check of the integer graphs: onnxruntime's
integer MatMul/Div/Mod/Clip agree with the profile on values that do not overflow). It is not the
bisectml engine and commits nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper


@dataclass(frozen=True)
class ProgramRoles:
    steps: int
    step_input: str | None
    state: tuple[str, ...]
    data: tuple[str, ...]


def program_roles(model: onnx.ModelProto) -> ProgramRoles:
    meta = {p.key: p.value for p in model.metadata_props}
    split = lambda s: tuple(x for x in s.split(",") if x)  # noqa: E731
    return ProgramRoles(
        steps=int(meta["bisectml.steps"]),
        step_input=meta.get("bisectml.step_input") or None,
        state=split(meta.get("bisectml.state", "")),
        data=split(meta.get("bisectml.data", "")),
    )


def initial_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def make_session(model: onnx.ModelProto | bytes, threads: int = 1, inter_threads: int = 1):
    """An onnxruntime CPU session. `threads` is intra_op_num_threads (0 = onnxruntime's default)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = inter_threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # initializers that are also inputs (the program convention) warn
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])


def run_program_onnxruntime(
    model: onnx.ModelProto,
    steps: int | None = None,
    threads: int = 1,
    session=None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Apply the step graph `steps` times (default: the program's T); return the final state.

    Data inputs are not fed: onnxruntime uses their initializers, so they are not copied per step.
    """
    roles = program_roles(model)
    T = roles.steps if steps is None else steps
    init = initial_values(model)
    state = [init[k] for k in roles.state]
    sess = session or make_session(model, threads)
    out_names = [o.name for o in model.graph.output]
    for t in range(T):
        feeds = dict(zip(roles.state, state))
        if roles.step_input:
            feeds[roles.step_input] = np.array(t, np.int64)
        state = sess.run(out_names, feeds)
        if progress is not None:
            progress(t + 1, T)
    return dict(zip(roles.state, state))


__all__ = ["ProgramRoles", "initial_values", "make_session", "program_roles", "run_program_onnxruntime"]
