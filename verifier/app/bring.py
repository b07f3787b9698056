"""Bring your own model: `bisectml import` and `bisectml infer` (docs/SPEC.md 9).

`import` turns a float ONNX model into an integer inference graph and reports what that costs
in accuracy; `infer` wraps an imported graph over a dataset as a program whose final state
holds every row's output, ready for `bisectml task post`. Both write their file only once
everything has been checked, through a temporary file renamed into place.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from verifier.core.errors import BisectmlError, ProgramError
from verifier.core.paths import write_atomic

LABEL_COLUMNS = ("label", "y", "target")


def load_rows(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows of features (and labels if the file has them) from .npz, .npy or .csv."""
    p = Path(path)
    if not p.is_file():
        raise ProgramError(f"no data file '{p}'; pass an .npz (X, y), .npy or .csv file.")
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                xs = [k for k in ("X", "x", "features") if k in z.files]
                if not xs:
                    raise ProgramError(f"'{p}' has no array named X; save the rows as X (and labels as y).")
                ys = [k for k in ("y", "labels", "target") if k in z.files]
                return np.asarray(z[xs[0]]), (np.asarray(z[ys[0]]) if ys else None)
        if p.suffix == ".npy":
            return np.asarray(np.load(p, allow_pickle=False)), None
        if p.suffix == ".csv":
            with p.open(newline="") as f:
                rows = list(csv.reader(f))
            header = rows[0] if rows and not _numeric(rows[0]) else None
            body = np.asarray(rows[1:] if header else rows, dtype=np.float64)
            if header is not None:
                names = [h.strip().lower() for h in header]
                label = next((i for i, h in enumerate(names) if h in LABEL_COLUMNS), None)
                if label is not None:
                    return np.delete(body, label, axis=1), body[:, label]
            return body, None
    except (ValueError, OSError) as e:
        raise ProgramError(f"cannot read '{p}': {str(e).splitlines()[0]}; pass numeric rows.") from None
    raise ProgramError(f"'{p}' is not .npz, .npy or .csv; save the rows in one of those.")


def _numeric(row: list[str]) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True


def _write_atomic(model: onnx.ModelProto, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, model.SerializeToString())


def import_model(
    model: str, calibration: str, out: str, held_out: str | None = None, batch: int = 32, max_loss: float | None = None
) -> dict[str, Any]:
    from onnx_models import importer

    x_cal, y_cal = load_rows(calibration)
    imported = importer.import_model(model, x_cal, batch=batch)
    report = {"calibration": importer.evaluate(model, imported, x_cal, y_cal).as_dict()}
    if held_out is not None:
        x_ho, y_ho = load_rows(held_out)
        report["held_out"] = importer.evaluate(model, imported, x_ho, y_ho).as_dict()
    judged = report.get("held_out", report["calibration"])
    loss = judged["loss"]
    if max_loss is not None:
        if loss is None:
            raise ProgramError("--max-loss needs labels in the data to measure accuracy; add y to the data file.")
        if loss > max_loss:
            raise ProgramError(
                f"the integer program loses {loss:.2f} points ({judged['metric']}), more than --max-loss {max_loss}; "
                "calibrate on more representative rows or accept a larger loss. Nothing was written."
            )
    _write_atomic(imported.model, Path(out))
    return {
        "out": out,
        "task": imported.task,
        "batch": imported.batch,
        "nodes": len(imported.model.graph.node),
        "worst_layer": _worst(judged["layers"]),
        **report,
    }


def _worst(layers: list[dict[str, Any]]) -> str | None:
    return max(layers, key=lambda r: r["relative"])["tensor"] if layers else None


def infer_program(model: str, data: str, out: str, labels: bool = True) -> dict[str, Any]:
    """`labels`: count correct predictions in the state when the data has labels (y)."""
    from onnx_models import importer
    from verifier.engine.program import load_program

    try:
        int_model = onnx.load(model)
    except Exception as e:  # noqa: BLE001 - protobuf raises its own types
        raise ProgramError(
            f"cannot read '{model}': {str(e).splitlines()[0] if str(e) else type(e).__name__}; pass the file `bisectml import` wrote."
        ) from None
    meta = {p.key: p.value for p in int_model.metadata_props}
    key = importer.META_PREFIX + "input_scales"
    if key not in meta:
        raise ProgramError(f"'{model}' was not written by `bisectml import` (no {key}); import the float model first.")
    scales = np.asarray(json.loads(meta[key]), dtype=np.float64)
    row_shape = tuple(json.loads(meta.get(importer.META_PREFIX + "input_shape", json.dumps([len(scales)]))))
    if len(row_shape) > 1:
        scales = scales.reshape(())
    x, y = load_rows(data)
    if x.shape[1:] != row_shape:
        raise ProgramError(f"the data has shape {list(x.shape)}; the model takes rows of shape {list(row_shape)}.")
    counted = y if labels else None
    program = importer.inference_program(int_model, importer.quantize_rows(x, scales), counted)
    loaded = load_program(program)  # refuse here, not at `task post`
    _write_atomic(program, Path(out))
    return {
        "out": out,
        "rows": len(x),
        "labels": counted is not None,
        "steps": loaded.steps,
        "program_id": "0x" + loaded.id.hex(),
        "graph_root": "0x" + loaded.graph_root.hex(),
    }


__all__ = ["BisectmlError", "import_model", "infer_program", "load_rows"]
