"""Training programs from a model description: `bisectml build train` and `bisectml build export`
(docs/SPEC.md 10).

`train` turns a JSON layer list, loss, optimizer and schedule plus the user's rows into one
fixed-point training program (onnx_models.train), checked by the engine before it is written;
`export` runs (or resumes) that program's trace and writes the trained weights as a float32 ONNX
model any runtime can serve, with its accuracy on held-out rows when given. Files are written
only once everything is checked, through a temporary file renamed into place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from verifier.app.bring import _write_atomic, load_rows
from verifier.core.errors import ProgramError


def _description(path: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise ProgramError(f"no model description '{p}'; write one as JSON (see `bisectml build train --help`).")
    try:
        return json.loads(p.read_text())
    except (ValueError, OSError) as e:
        raise ProgramError(f"'{p}' is not JSON: {str(e).splitlines()[0]}; fix the model description.") from None


def build_train(spec_path: str, data: str, out: str, torch_model: str | None = None) -> dict[str, Any]:
    """`torch_model` (FILE.py or FILE.py:NAME) gives the layers as a PyTorch nn.Sequential; the
    description then holds everything else (loss, optimizer, schedule)."""
    from onnx_models import train
    from verifier.engine.program import load_program

    raw = _description(spec_path)
    module = None
    if torch_model is not None:
        from onnx_models import torch_layers

        if not isinstance(raw, dict) or "layers" in raw:
            raise ProgramError(f"'{spec_path}' has its own layers; give the layers in the description or with --torch, not both.")
        module = torch_layers.load_sequential(torch_model)
        raw = {**raw, "layers": torch_layers.layers_of(module)}
    spec = train.parse_spec(raw)
    x, y = load_rows(data)
    if y is None:
        raise ProgramError(f"'{data}' has no labels; save them as y in the .npz (or a label column in the .csv).")
    if module is not None:
        torch_layers.check_rows(module, tuple(spec.input_shape) or tuple(x.shape[1:]))
    model = train.build_program(spec, x, y)
    program = load_program(model)  # refuse here, not at `task post`
    _write_atomic(model, Path(out))
    return {
        "out": out,
        "rows": int(len(x)),
        "steps": program.steps,
        "batch": spec.batch,
        "layers": [f"{la.kind}({la.out})" if la.kind in ("linear", "conv2d") else la.kind for la in spec.layers],
        "loss": spec.loss,
        "program_id": "0x" + program.id.hex(),
        # whether the engine proved the step exact in float64 (fast) or runs it node by node
        "compiled": program.compiled is not None,
        "compile_note": program.compile_note or None,
    }


def _accuracy(model: onnx.ModelProto, task: str, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    if task == "classification":
        label = sess.run(["label"], {"x": x.astype(np.float32)})[0]
        return {"accuracy": float(np.mean(label == y.astype(np.int64)) * 100)}
    value = sess.run(["value"], {"x": x.astype(np.float32)})[0].reshape(len(y), -1)[:, 0]
    return {"mae": float(np.mean(np.abs(value - y)))}


def export_trained(program_path: str, out: str, trace_dir: str | None = None, held_out: str | None = None) -> dict[str, Any]:
    from onnx_models import train
    from verifier.engine.program import load_program
    from verifier.engine.trace import Trace

    try:
        model = onnx.load(program_path)
    except Exception as e:  # noqa: BLE001 - protobuf raises its own types
        raise ProgramError(
            f"cannot read '{program_path}': {str(e).splitlines()[0] if str(e) else type(e).__name__}; "
            "pass the file `bisectml build train` wrote."
        ) from None
    info = train.program_info(model)
    program = load_program(model)
    with Trace(program, trace_dir) as tr:
        final = tr.run()
        state = tr.final_state()
    params = {k: state[k] for k in train.param_names(info.spec)}
    exported = train.export_float_model(info, params)
    report = None
    if held_out is not None:
        x, y = load_rows(held_out)
        if y is None:
            raise ProgramError(f"'{held_out}' has no labels; save them as y to measure the trained model on it.")
        if info.spec.input_shape:  # the exported model takes flat rows, as the user keeps them
            x = np.asarray(x).reshape(len(x), -1)
        report = {"rows": int(len(x)), **_accuracy(exported, info.spec.task, x, y)}
    _write_atomic(exported, Path(out))
    return {
        "out": out,
        "program_id": "0x" + program.id.hex(),
        "final_root": "0x" + final.hex(),
        "steps": program.steps,
        "held_out": report,
    }


__all__ = ["build_train", "export_trained"]
