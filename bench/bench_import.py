"""Benchmark: importing float and quantized models (docs/SPEC.md 9), and traced inference.

    python bench/bench_import.py [--rows N] [--repeat R] [--report bench/import_report.json]

For each model the tests import (scikit-learn MLP and logistic regression on breast cancer and
digits via skl2onnx, a convnet and a residual convnet on 8x8 digits written as torch.onnx.export
writes them, and onnxruntime's QDQ, QOperator and dynamic quantizations of the MLPs and the
residual convnet; where torch is installed, the PyTorch models of tests/onnx_models/_torch.py,
trained on digits and exported by both of torch.onnx.export's exporters): the import time, and
the float and integer accuracy on the held-out rows.

Then traced inference of the residual convnet: `Trace(program).run()` of the inference program
over `--rows` held-out rows (every step's state committed) against onnxruntime float32 running
the float model on the same batches, one `InferenceSession.run` per batch, both in this process,
best of `--repeat`. The goal is a ratio of at most 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "onnx_models"))  # the models the tests build

GOAL_RATIO = 2.0


def _accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    s = np.asarray(scores)
    labels = s.reshape(len(y), -1).argmax(axis=1) if s.ndim > 1 and s.shape[-1] > 1 else s.reshape(-1)
    return round(float(np.mean(labels == y)) * 100, 2)


def _models() -> list[tuple[str, bytes, tuple]]:
    from _imported import convnet, exported, image_split, quantized, split

    out = []
    for dataset in ("breast_cancer", "digits"):
        for kind in ("mlp", "logistic"):
            out.append((f"sklearn {kind} / {dataset}", exported(dataset, kind), split(dataset)))
        for fmt in ("qdq", "qoperator", "dynamic"):
            out.append(
                (f"sklearn mlp / {dataset} / {fmt}", quantized(exported(dataset, "mlp"), fmt, dataset), split(dataset))
            )
    for residual in (False, True):
        out.append((f"convnet{' residual' if residual else ''} / digits 8x8", convnet(residual), image_split()))
    for fmt in ("qdq", "qoperator", "dynamic"):
        out.append((f"convnet residual / digits 8x8 / {fmt}", quantized(convnet(True), fmt, "images"), image_split()))
    try:
        import torch  # noqa: F401 - the torch extra; without it those rows are left out
    except ImportError:
        print("torch is not installed: the torch.onnx.export models are left out (pip install -e '.[test,torch]')")
        return out
    from _torch import EXPORTERS, MODELS, digits
    from _torch import exported as torch_exported

    for name in sorted(MODELS):
        for exporter in EXPORTERS:
            out.append((f"torch {name} / digits / {exporter}", torch_exported(name, exporter), digits(name)))
    return out


def main(argv: list[str] | None = None) -> int:
    from onnx_models import importer
    from verifier.engine.program import load_program
    from verifier.engine.trace import Trace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=512, help="held-out rows for traced inference")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--report", type=Path, default=None)
    args = ap.parse_args(argv)
    from verifier.engine.memory import keep_freed_memory
    from verifier.engine.threads import set_threads

    set_threads(1)  # the same single thread as the onnxruntime baseline below
    keep_freed_memory()  # as the CLI does: a step's large arrays reuse the heap (onnxruntime has its arena)

    results = []
    for name, model, (x_train, x_test, _, y_test) in _models():
        proto = importer.read_float_model(model)
        t0 = time.perf_counter()
        imp = importer.import_model(model, x_train, batch=args.batch)
        seconds = time.perf_counter() - t0
        out = proto.graph.output[0].name
        floats = importer.run_float(proto, x_test, [out])[out]
        ints = importer.run_integer(imp, x_test)[imp.model.graph.output[0].name]
        row = {
            "model": name,
            "import_s": round(seconds, 3),
            "float_acc": _accuracy(floats, y_test),
            "integer_acc": _accuracy(ints, y_test),
        }
        row["loss_points"] = round(row["float_acc"] - row["integer_acc"], 2)
        results.append(row)
        print(
            f"{name:<42} import {row['import_s']:6.2f} s  float {row['float_acc']:6.2f}  integer {row['integer_acc']:6.2f}"
        )

    # traced inference vs onnxruntime float32, the residual convnet on the same batches
    import onnxruntime as ort
    from _imported import convnet, image_split

    x_train, x_test, _, _ = image_split()
    rows = np.concatenate([x_test] * (-(-args.rows // len(x_test))))[: args.rows]
    model = convnet(True)
    imp = importer.import_model(model, x_train, batch=args.batch)
    program = load_program(importer.inference_program(imp, importer.quantize_rows(rows, imp.input_scales)))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    batches = [rows[i : i + args.batch] for i in range(0, len(rows), args.batch)]

    def trace_once() -> float:
        t = time.perf_counter()
        with Trace(program, checkpoint_every=max(1, program.steps)) as tr:
            tr.run()
        return time.perf_counter() - t

    def ort_once() -> float:
        t = time.perf_counter()
        for b in batches:
            session.run(None, {"input": b})
        return time.perf_counter() - t

    trace_s = min(trace_once() for _ in range(args.repeat))
    ort_s = min(ort_once() for _ in range(args.repeat))
    ratio = trace_s / ort_s
    traced = {
        "model": "convnet residual / digits 8x8",
        "rows": len(rows),
        "batch": args.batch,
        "steps": program.steps,
        "trace_s": round(trace_s, 4),
        "onnxruntime_float32_s": round(ort_s, 4),
        "ratio": round(ratio, 2),
        "goal": GOAL_RATIO,
        "goal_met": ratio <= GOAL_RATIO,
        "threads": 1,
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(f"traced inference {trace_s:.3f} s vs onnxruntime float32 {ort_s:.3f} s: {ratio:.1f}x (goal {GOAL_RATIO}x), "
          f"1 thread each, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}")
    report = {
        "command": "python bench/bench_import.py " + " ".join(argv or sys.argv[1:]),
        "machine": {"python": platform.python_version(), "machine": platform.machine()},
        "imports": results,
        "traced_inference": traced,
    }
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    # torch's exporter keeps a compile cache in the temporary folder: this run's goes with it
    with tempfile.TemporaryDirectory(prefix="bench-import-") as scratch:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", scratch)
        code = main()
    sys.exit(code)
