"""Benchmark: committed (traced) integer training vs onnxruntime float32 on the same batches.

    python bench/bench_train.py [--steps N] [--threads K] [--repeat R] [--check [--margin M]]

(a) `verifier.engine.trace.Trace(program).run()`: the integer MLP training program
    (onnx_models/mlp_train.onnx by default), every step's state committed;
(b) onnxruntime running the float32 twin (same network, initial weights, batches, loss and
    schedule), one `InferenceSession.run` per step, the state fed back from Python.

Both run the same number of steps in this process; the best of `--repeat` runs of each is
compared. Model loading and session creation are timed separately and not in the ratio. The goal
is trace time <= 2x onnxruntime time; with `--check` the script exits 1 if the ratio exceeds
goal * (1 + margin).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import onnx

# Run from a checkout: import this repository's packages even when the editable install is stale.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_RATIO = 2.0


def _meta(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def main(argv: list[str] | None = None) -> int:
    from onnx_models.files import MLP_TRAIN_PATH
    from onnx_models.mlp import (
        build_eval_program,
        build_float_training_graph,
        float_correct,
    )
    from onnx_models.runtime import make_session, run_program_onnxruntime

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=MLP_TRAIN_PATH, help="integer training program (default: bundled)")
    ap.add_argument("--steps", type=int, default=None, help="steps to run (default: the program's)")
    ap.add_argument("--threads", type=int, default=1, help="threads for both sides: the engine's BLAS and onnxruntime's intra-op pool")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side; the best is compared")
    ap.add_argument("--checkpoint-every", type=int, default=100, help="Trace checkpoint interval")
    ap.add_argument(
        "--check", action="store_true", help=f"exit 1 if the ratio misses {GOAL_RATIO}x by more than --margin"
    )
    ap.add_argument("--margin", type=float, default=0.10, help="tolerated relative excess over the goal with --check")
    ap.add_argument("--no-accuracy", action="store_true", help="skip the test-accuracy printout")
    args = ap.parse_args(argv)
    from verifier.engine.memory import keep_freed_memory
    from verifier.engine.threads import blas_threads, set_threads

    set_threads(max(1, args.threads))
    keep_freed_memory()  # as the CLI does: a step's large arrays reuse the heap (onnxruntime has its arena)

    import onnxruntime as ort

    from verifier.engine.program import load_program
    from verifier.engine.trace import Trace

    model = onnx.load(str(args.model))
    meta = _meta(model)
    try:
        hp = {k: int(meta[f"mlp.{k}"]) for k in ("hidden", "batch", "frac_bits", "lr_shift", "seed")}
    except KeyError:
        print(f"{args.model} lacks mlp.* metadata; build it with onnx_models.mlp", file=sys.stderr)
        return 2
    steps = int(meta["bisectml.steps"]) if args.steps is None else args.steps

    # ---- setup (not in the ratio) ----
    try:  # the exact float64-BLAS kernels, if the engine does not enable them on its own
        from verifier.engine.fastpath import enable_fast_path

        fast_verdicts = enable_fast_path()
    except ImportError:
        fast_verdicts = {}
    from verifier.engine.ops import FAST

    t0 = time.perf_counter()
    program = load_program(model, steps=steps)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = program.compiled  # interval analysis, kernel self-test, first step checked
    t_compile = time.perf_counter() - t0
    fmodel = build_float_training_graph(steps=steps, **hp)
    t0 = time.perf_counter()
    sess = make_session(fmodel, threads=args.threads)
    t_sess = time.perf_counter() - t0
    so = sess.get_session_options()

    # ---- measured runs ----
    trace_times, ort_times = [], []
    root = b""
    final_fixed: dict[str, np.ndarray] = {}
    final_float: dict[str, np.ndarray] = {}
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        with Trace(program, checkpoint_every=args.checkpoint_every) as tr:
            root = tr.run()
            trace_times.append(time.perf_counter() - t0)
            final_fixed = tr.final_state()
        t0 = time.perf_counter()
        final_float = run_program_onnxruntime(fmodel, session=sess)
        ort_times.append(time.perf_counter() - t0)

    t_trace, t_ort = min(trace_times), min(ort_times)
    ratio = t_trace / t_ort
    print(f"bisectml bench_train  python {platform.python_version()}  numpy {np.__version__}  "
          f"onnxruntime {ort.__version__}  cpus {os.cpu_count()}  load average {os.getloadavg()[0]:.2f}")
    print(f"program      {args.model.name}: 64-{hp['hidden']}-10 MLP, batch {hp['batch']}, {steps} steps, "
          f"{program.n_nodes} nodes/step, {program.n_slots} slots, frac_bits {hp['frac_bits']}, "
          f"lr 2^-{hp['lr_shift']}")
    print(f"ort options  intra_op_num_threads={so.intra_op_num_threads} "
          f"inter_op_num_threads={so.inter_op_num_threads} execution_mode={so.execution_mode.name} "
          f"graph_optimization_level={so.graph_optimization_level.name} provider=CPUExecutionProvider")
    print(f"threads      engine BLAS {blas_threads()}, onnxruntime {so.intra_op_num_threads} (--threads {args.threads})")
    print(f"engine       fast kernels registered: {', '.join(sorted(FAST)) or 'none'}"
          f"{'' if all(fast_verdicts.values()) else f' (self-test verdicts {fast_verdicts})'}")
    print(f"compiled     {'one float64 function per step (verifier.engine.compiled)' if compiled else 'no: ' + program.compile_note}")
    print(f"setup        load_program {t_load:.3f}s, compile {t_compile:.3f}s, ort session {t_sess:.3f}s "
          "(not in the ratio)")
    fmt = lambda ts: ", ".join(f"{x:.3f}" for x in ts)  # noqa: E731
    print(f"trace        {t_trace:.3f}s  ({1e6 * t_trace / steps:.0f} us/step; runs: {fmt(trace_times)})  "
          f"final root {root.hex()}")
    print(f"ort float32  {t_ort:.3f}s  ({1e6 * t_ort / steps:.0f} us/step; runs: {fmt(ort_times)})")
    print(f"ratio        {ratio:.2f}x  (goal <= {GOAL_RATIO:.1f}x, --check tolerates "
          f"<= {GOAL_RATIO * (1 + args.margin):.2f}x with margin {args.margin:.0%})")

    if not args.no_accuracy:
        from onnx_models.digits import load_digits_split

        split = load_digits_split()
        evaluated = load_program(build_eval_program(final_fixed, hp["frac_bits"], split)).run()
        fixed_correct = int(evaluated["correct"])
        float_c = float_correct(final_float, split)
        print(f"accuracy     fixed {100 * fixed_correct / split.n_test:.2f}%  "
              f"float32 {100 * float_c / split.n_test:.2f}%  ({split.n_test} test images)")

    if args.check and ratio > GOAL_RATIO * (1 + args.margin):
        print(f"FAIL: ratio {ratio:.2f}x exceeds {GOAL_RATIO:.1f}x by more than {args.margin:.0%}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
