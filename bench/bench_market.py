"""The market's three programs: traced, committed execution vs onnxruntime running the same
graphs uncommitted, measured in the same run.

    python bench/bench_market.py [--rows 96] [--datasets 4] [--dataset-rows 64]

For the demo round's data (scikit-learn digits) at the given shape, each program (metamodel,
contribution scores, KNN-Shapley data values) is run through `verifier.engine.trace.Trace` (every
node's output computed by the integer engine, every step's state committed) and through
onnxruntime (one session, the step graph applied T times, nothing committed). The results
are checked equal first. Each figure is the best of several interleaved repeats; the ratio is
traced time / onnxruntime time. This is the price of verifiability for a round's compute;
there is no goal for it in the issue, so the script reports and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onnx_models.market import KIND_NAMES, Shape, program  # noqa: E402
from onnx_models.market_data import demo_round  # noqa: E402
from onnx_models.runtime import make_session, run_program_onnxruntime  # noqa: E402
from verifier.engine.program import load_program  # noqa: E402
from verifier.engine.trace import Trace  # noqa: E402

REPEATS = 5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=96)
    ap.add_argument("--datasets", type=int, default=4)
    ap.add_argument("--dataset-rows", type=int, default=64)
    args = ap.parse_args()
    base = demo_round()
    shape = Shape(base.shape.models, args.datasets, args.rows, base.shape.features, args.dataset_rows, base.shape.k)
    data = demo_round(shape=shape)
    print(f"shape: {shape}")
    print(f"{'program':<10} {'steps':>5} {'nodes':>5} {'traced s':>9} {'ort s':>8} {'ratio':>7}")
    for kind in (0, 1, 2):
        model = program(kind, shape, **data.data(kind))
        prog = load_program(model)
        session = make_session(model, 1)
        want = run_program_onnxruntime(model, session=session)
        with tempfile.TemporaryDirectory() as d:
            tr = Trace(prog, Path(d) / "t")
            tr.run()
            got = tr.final_state()
        assert all(np.array_equal(got[k], want[k]) for k in want), f"{KIND_NAMES[kind]}: the engine and onnxruntime disagree"
        best_trace = best_ort = float("inf")
        for _ in range(REPEATS):
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                Trace(prog, Path(d) / "t").run()
                best_trace = min(best_trace, time.perf_counter() - t0)
            t0 = time.perf_counter()
            run_program_onnxruntime(model, session=session)
            best_ort = min(best_ort, time.perf_counter() - t0)
        print(f"{KIND_NAMES[kind]:<10} {prog.steps:>5} {prog.n_nodes:>5} {best_trace:>9.4f} {best_ort:>8.4f} "
              f"{best_trace / best_ort:>7.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
