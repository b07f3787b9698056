"""Benchmark: whole-process start-up of the `bisectml` command, as a user's shell sees it.

    python bench/bench_startup.py [--runs N] [--check]

Times, as separate processes (median of N): the bare interpreter, importing onnx alone (which
imports ml_dtypes: its 0.7.0 extension took ~0.46 s to load, hence the pin below 0.7), and
`bisectml --help`, `bisectml check mlp_train` and `bisectml trace` of the bundled training
program for 2 steps; then the same trace in-process, so that the start-up's share of a short
command is a ratio measured in the same run. With `--check` it exits 1 if a command misses the
0.5 s goal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_SECONDS = 0.5
COMMANDS = {
    "bisectml --help": ["--help"],
    "bisectml check mlp_train": ["check", "mlp_train"],
    "bisectml trace mlp_train --steps 2": ["trace", "mlp_train", "--steps", "2", "--json"],
}


def _time(argv: list[str], runs: int, home: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISECTML_")}
    env["BISECTML_HOME"] = home  # the trace's cache stays out of the user's
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="processes per command; the median is shown")
    ap.add_argument("--check", action="store_true", help=f"exit 1 if a bisectml command takes over {GOAL_SECONDS} s")
    args = ap.parse_args(argv)

    import ml_dtypes

    py = [sys.executable]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as home:
        rows = [
            ("python -c pass", _time([*py, "-c", "pass"], args.runs, home), "the interpreter alone"),
            ("python -c 'import onnx'", _time([*py, "-c", "import onnx"], args.runs, home), f"ml_dtypes {ml_dtypes.__version__}"),
        ]
        for name, cli_args in COMMANDS.items():
            rows.append((name, _time([*py, "-m", "cli", *cli_args], args.runs, home), f"goal <= {GOAL_SECONDS} s"))

    from verifier.daemon.registry import resolve_program_path
    from verifier.engine.program import load_program
    from verifier.engine.trace import Trace

    t = time.perf_counter()
    program = load_program(resolve_program_path("mlp_train"), steps=2)
    trace = Trace(program)
    trace.run()
    in_process = time.perf_counter() - t

    print(f"start-up, whole processes, median of {args.runs} ({os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.2f})")
    w = max(len(r[0]) for r in rows)
    for name, seconds, note in rows:
        print(f"  {name:<{w}}  {seconds:6.2f} s  {note}")
    trace_process = rows[-1][1]
    print(f"  {'the same trace in-process':<{w}}  {in_process:6.2f} s  the process costs {trace_process / in_process:.1f}x its work")
    missed = [name for name, seconds, _ in rows[2:] if seconds > GOAL_SECONDS]
    if args.check and missed:
        print(f"FAIL: over {GOAL_SECONDS} s: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
