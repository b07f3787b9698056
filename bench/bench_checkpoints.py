"""Benchmark: checkpoints within a disk budget (docs/SPEC.md 3.3), against the fixed spacing of
100 steps that traces used before, computed and measured in the same run.

    python bench/bench_checkpoints.py [--check]

1. The plan for a million steps: for the bundled digits MLP, a 64-1024-10 MLP (both built
   here) and a 784-1024-10 MLP (same int64 state layout, sized from its layer widths), the
   spacing `checkpoint_interval` picks under the default budget, the checkpoint files and bytes
   it keeps, and the steps an opening recomputes at most, next to the old fixed spacing.
2. A measured run: the bundled program for --steps steps under a budget of --budget-files
   checkpoints, against the old spacing: bytes on disk (goal: within the budget), the run's
   time, and the time to open one step in the middle (its root recomputed from the nearest
   checkpoint).

With --check, exits 1 if a plan for a million steps of 784-1024-10 exceeds 2 GB or a measured
trace's files exceed its budget.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onnx_models.mlp import build_training_program  # noqa: E402
from verifier.engine.program import load_program  # noqa: E402
from verifier.engine.trace import (  # noqa: E402
    DEFAULT_DISK_BUDGET,
    MAX_CHECKPOINTS,
    Trace,
    checkpoint_bytes,
    checkpoint_interval,
)

MILLION = 1_000_000
OLD_EVERY = 100  # the spacing every trace used before the budget
GOAL_BYTES = 2 * 10**9  # a million steps of 784-1024-10


def _mlp_state_bytes(inputs: int, hidden: int, outputs: int) -> int:
    """One checkpoint of the MLP training program: root + W1, b1, W2, b2 as int64."""
    return 32 + 8 * (inputs * hidden + hidden + hidden * outputs + outputs)


def _plan(name: str, per: int, every: int) -> dict:
    files = -(-MILLION // every)
    old_files = -(-MILLION // OLD_EVERY)
    row = {"program": name, "checkpoint_bytes": per, "every": every, "files": files, "bytes": files * per,
           "old_files": old_files, "old_bytes": old_files * per}
    print(f"{name:<22} {per:>12,} B  every {every:>6,}  {files:>6,} files {files * per / 1e9:>8.3f} GB   "
          f"(every {OLD_EVERY}: {old_files:,} files {old_files * per / 1e9:,.1f} GB)  "
          f"an opening recomputes <= {every:,} steps")
    return row


def _dir_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.glob("ckpt-*.bin"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5_000, help="steps of the measured run")
    ap.add_argument("--budget-files", type=int, default=8, help="checkpoints the measured run's budget holds")
    ap.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}; default budget {DEFAULT_DISK_BUDGET:,} B, at most "
          f"{MAX_CHECKPOINTS:,} files; plans for {MILLION:,} steps")
    ok = True
    # 64-1024-10 at 12 fractional bits: the widest the builder's overflow bound allows
    for name, kw in (("digits MLP (bundled)", {}), ("MLP 64-1024-10", {"hidden": 1024, "frac_bits": 12})):
        program = load_program(build_training_program(steps=MILLION, **kw))
        _plan(name, checkpoint_bytes(program), checkpoint_interval(program))
    # same int64 state layout as the programs above, sized for 784 inputs
    per = _mlp_state_bytes(784, 1024, 10)
    count = min(MAX_CHECKPOINTS, DEFAULT_DISK_BUDGET // per)
    big = _plan("MLP 784-1024-10", per, max(OLD_EVERY, -(-MILLION // count)))
    if big["bytes"] > GOAL_BYTES:
        ok = False
        print(f"GOAL MISSED: {big['bytes']:,} B > {GOAL_BYTES:,} B")

    program = load_program(build_training_program(steps=args.steps))
    per = checkpoint_bytes(program)
    budget = args.budget_files * per
    print(f"\nmeasured: bundled program, {args.steps:,} steps, budget {budget:,} B ({args.budget_files} checkpoints)")
    with tempfile.TemporaryDirectory(prefix="bisectml-bench-ckpt-") as tmp:
        rows = []
        for label, kw in (("budget", {"disk_budget": budget}), (f"every {OLD_EVERY}", {"checkpoint_every": OLD_EVERY})):
            d = Path(tmp) / label.replace(" ", "-")
            t0 = time.perf_counter()
            tr = Trace(program, d, **kw)
            root = tr.run()
            run_s = time.perf_counter() - t0
            mid = args.steps // 2 + tr.checkpoint_every // 2 - 1  # far from a checkpoint
            t0 = time.perf_counter()
            tr._roots.clear()  # noqa: SLF001  (time a cold opening)
            tr.step_roots([mid])
            open_s = time.perf_counter() - t0
            rows.append((label, tr.checkpoint_every, _dir_bytes(d), run_s, open_s, root))
            print(f"  {label:<10} every {tr.checkpoint_every:>5}  {_dir_bytes(d):>10,} B on disk  run {run_s:6.2f} s  "
                  f"open step {mid}: {open_s:6.3f} s")
        if rows[0][5] != rows[1][5]:
            ok = False
            print("FINAL ROOTS DIFFER")
        if rows[0][2] > budget:
            ok = False
            print(f"GOAL MISSED: {rows[0][2]:,} B on disk > budget {budget:,} B")
        print(f"  disk {rows[1][2] / max(rows[0][2], 1):.1f}x smaller, run {rows[1][3] / rows[0][3]:.2f}x the time of "
              f"every {OLD_EVERY}, an opening {rows[0][4] / max(rows[1][4], 1e-9):.1f}x longer")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
