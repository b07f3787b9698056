"""Benchmark: networks from model descriptions (`bisectml build train`), trained in integers as a
committed trace, against the same network, initial weights, batches and schedule in float32
through onnxruntime, measured in the same run: time per step and held-out accuracy of each.

    python bench/bench_build_train.py [--epochs E] [--repeat R] [--threads K] [--report PATH]

The networks are an MLP (64-32-10) and a convnet (conv 3x3, 8 channels, ReLU, 2x2 max pool,
linear) on scikit-learn's 8x8 digits, 75% of the rows for training. (a) `Trace(program).run()`
commits every step's state; (b) onnxruntime runs the float32 twin one `InferenceSession.run` per
step, the state fed back from Python. Program building and session creation are not timed. Both
final weights are exported as float32 ONNX models (ONNX Conv, MaxPool, Gemm) and scored by
onnxruntime on the held-out rows; inference over those rows is timed as the integer forward
program traced (one step) against onnxruntime running the exported model, the best of ten runs
of each side per training run, alternated. Goals (issue: any model a user brings): the convnet at 97% or
more in integers, within 1.5 points of float32; traced training and inference at most 2x
onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_RATIO = 2.0
INFERENCE_RUNS = 10  # inference runs of each side per training run, alternated
GOAL_ACCURACY = 97.0
GOAL_GAP = 1.5
LAYERS = {
    "mlp 64-32-10": [{"type": "linear", "out": 32}, {"type": "relu"}, {"type": "linear", "out": 10}],
    "convnet c8k3-maxpool2-10": [
        {"type": "conv2d", "out_channels": 8, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"}, {"type": "linear", "out": 10},
    ],
}  # fmt: skip
LR = {"mlp 64-32-10": 0.5, "convnet c8k3-maxpool2-10": 0.25}


def _accuracy(model, x: np.ndarray, y: np.ndarray) -> float:  # noqa: ANN001
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return float(np.mean(sess.run(["label"], {"x": x.astype(np.float32)})[0] == y) * 100)


def one(name: str, epochs: int, repeat: int, threads: int, split: tuple) -> dict:  # noqa: ANN001
    from onnx_models import train
    from onnx_models.runtime import make_session, run_program_onnxruntime
    from verifier.engine.program import load_program
    from verifier.engine.trace import Trace

    xtr, ytr, xte, yte = split
    if "conv" in name:
        xtr, xte = xtr.reshape(-1, 8, 8), xte.reshape(-1, 8, 8)
    spec = train.parse_spec({"layers": LAYERS[name], "loss": "softmax_cross_entropy",
                             "optimizer": {"type": "sgd", "lr": LR[name], "momentum": 0.5},
                             "schedule": {"epochs": epochs, "batch": 32}})  # fmt: skip
    fixed = train.build_program(spec, xtr, ytr)
    twin = train.build_program(spec, xtr, ytr, fixed=False)
    program = load_program(fixed)
    compiled = program.compiled is not None  # interval analysis and kernel self-test, not timed
    sess = make_session(twin, threads=threads)
    traced, ort_runs = [], []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        with Trace(program, checkpoint_every=100) as tr:
            tr.run()
            traced.append(time.perf_counter() - t0)
            state = tr.final_state()
        t0 = time.perf_counter()
        fstate = run_program_onnxruntime(twin, session=sess)
        ort_runs.append(time.perf_counter() - t0)
    info = train.program_info(fixed)
    names = train.param_names(spec)
    integer = _accuracy(train.export_float_model(info, {k: state[k] for k in names}), xte, yte)
    one_ = 2.0**spec.frac_bits
    float32 = _accuracy(train.export_float_model(info, {k: np.asarray(fstate[k], np.float64) * one_ for k in names}), xte, yte)
    t_trace, t_ort = min(traced), min(ort_runs)
    # inference over the held-out rows: the integer forward as a one-step program, traced, against
    # onnxruntime running the exported float32 model (its own Conv, MaxPool, Gemm)
    import onnxruntime as ort

    params = {k: state[k] for k in names}
    infer = load_program(train.build_eval_graph(info, params, xte))
    infer.compiled  # noqa: B018 - the interval analysis runs here, not in the timed runs
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = threads
    exported = ort.InferenceSession(train.export_float_model(info, params).SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])  # fmt: skip
    inf_trace, inf_ort = [], []
    for _ in range(INFERENCE_RUNS * max(1, repeat)):  # one run takes ~1 ms: the best of three measured the scheduler
        t0 = time.perf_counter()
        with Trace(infer) as tr:
            tr.run()
        inf_trace.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        exported.run(["label"], {"x": xte.astype(np.float32)})
        inf_ort.append(time.perf_counter() - t0)
    return {
        "network": name,
        "steps": program.steps,
        "nodes_per_step": program.n_nodes,
        "compiled": compiled,
        "trace_us_per_step": round(1e6 * t_trace / program.steps, 1),
        "ort_us_per_step": round(1e6 * t_ort / program.steps, 1),
        "ratio": round(t_trace / t_ort, 2),
        "inference_rows": int(len(xte)),
        "inference_trace_ms": round(1e3 * min(inf_trace), 2),
        "inference_ort_ms": round(1e3 * min(inf_ort), 2),
        "inference_ratio": round(min(inf_trace) / min(inf_ort), 2),
        "accuracy_integer": round(integer, 2),
        "accuracy_float32": round(float32, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side; the best is compared")
    ap.add_argument("--threads", type=int, default=1, help="threads for both sides")
    ap.add_argument("--report", type=Path, default=ROOT / "bench" / "build_train_report.json")
    args = ap.parse_args(argv)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from verifier.engine.memory import keep_freed_memory
    from verifier.engine.threads import set_threads

    set_threads(max(1, args.threads))
    keep_freed_memory()  # as the CLI does: a step's large arrays reuse the heap (onnxruntime has its arena)
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    rows = [one(name, args.epochs, args.repeat, args.threads, (xtr, ytr, xte, yte)) for name in LAYERS]
    print(f"bisectml bench_build_train: digits 8x8, {len(xtr)} training rows, {len(xte)} held out, "
          f"{args.epochs} epochs, batch 32, threads {args.threads}, cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'network':<26} {'steps':>6} {'nodes':>6} {'trace us/step':>14} {'ort us/step':>12} {'ratio':>6} "
          f"{'integer %':>10} {'float32 %':>10}")
    for r in rows:
        print(f"{r['network']:<26} {r['steps']:>6} {r['nodes_per_step']:>6} {r['trace_us_per_step']:>14} "
              f"{r['ort_us_per_step']:>12} {r['ratio']:>6} {r['accuracy_integer']:>10} {r['accuracy_float32']:>10}")
    print(f"inference over the {rows[0]['inference_rows']} held-out rows: traced integer program vs onnxruntime on the "
          "exported float32 model")
    for r in rows:
        print(f"{r['network']:<26} trace {r['inference_trace_ms']:>8} ms  onnxruntime {r['inference_ort_ms']:>8} ms  "
              f"ratio {r['inference_ratio']}")
    conv = rows[-1]
    goals = {
        f"convnet >= {GOAL_ACCURACY}% in integers": conv["accuracy_integer"] >= GOAL_ACCURACY,
        f"convnet within {GOAL_GAP} points of float32": conv["accuracy_integer"] >= conv["accuracy_float32"] - GOAL_GAP,
        f"traced training <= {GOAL_RATIO}x onnxruntime (every network)": all(r["ratio"] <= GOAL_RATIO for r in rows),
        f"traced convnet inference <= {GOAL_RATIO}x onnxruntime": conv["inference_ratio"] <= GOAL_RATIO,
    }
    for goal, ok in goals.items():
        print(f"  {'pass' if ok else 'MISSED'}: {goal}")
    args.report.write_text(json.dumps({"command": "python bench/bench_build_train.py", "epochs": args.epochs,
                                       "threads": args.threads, "load_average": round(os.getloadavg()[0], 2),
                                       "rows": rows, "goals": goals}, indent=1) + "\n")  # fmt: skip
    print(f"written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
