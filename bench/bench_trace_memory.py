"""Peak memory of a long trace vs a short one (goal: 10,000 steps <= 1.2 x 100 steps).

Each trace runs in a fresh process that reports its own peak RSS, so the two measurements do
not share allocator state. The ratio is what matters; both are printed.

    python bench/bench_trace_memory.py [--program mlp_train] [--short 100] [--long 10000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

GOAL = 1.2

CHILD = r"""
import json, resource, sys, time
from cli import resolve_program
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

program = load_program(resolve_program(sys.argv[1]), steps=int(sys.argv[2]))
started = time.perf_counter()
with Trace(program, checkpoint_every=100) as tr:
    root = tr.run()
elapsed = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"steps": program.steps, "peak_kib": peak_kib, "seconds": elapsed, "root": root.hex()}))
"""


def measure(program: str, steps: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, program, str(steps)], check=True, capture_output=True, text=True, timeout=1800
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--program", default="mlp_train")
    ap.add_argument("--short", type=int, default=100)
    ap.add_argument("--long", type=int, default=10_000)
    args = ap.parse_args()
    started = time.perf_counter()
    short = measure(args.program, args.short)
    long = measure(args.program, args.long)
    ratio = long["peak_kib"] / short["peak_kib"]
    print(f"program {args.program}")
    print(f"{'steps':>8} {'peak RSS MiB':>13} {'seconds':>9}")
    for r in (short, long):
        print(f"{r['steps']:>8} {r['peak_kib'] / 1024:>13.1f} {r['seconds']:>9.2f}")
    print(f"peak memory ratio {args.long} / {args.short} steps: {ratio:.3f} (goal <= {GOAL})")
    print(f"total bench time {time.perf_counter() - started:.1f} s")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
