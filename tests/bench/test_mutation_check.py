"""bench/mutation_check.py --merge: an earlier report's results stand for the mutants not run now,
but not for checks the contract no longer has (a reason reworded, a check removed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_merge__keeps_current_results_and_drops_checks_that_are_gone(tmp_path) -> None:
    stale = {"contract": "Attestations.vy", "line": 1, "end_line": 1, "kind": "delete", "statement": "assert False",
             "id": 'Attestations.vy:delete:"attest: a reason no longer in the contract"', "status": "killed",
             "seconds": 1.0, "killed_by": "", "explained": ""}  # fmt: skip
    kept = {**stale, "id": 'Attestations.vy:delete:"attest: no such task"', "line": 156, "end_line": 156}
    other = {**stale, "contract": "Tasks.vy", "id": 'Tasks.vy:delete:"tasks: not a contract run now"'}
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"mutants": [stale, kept, other], "not_run": [stale["id"]]}))
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "mutation_check.py"), "--contracts", "Attestations.vy",
         "--only", "Attestations.vy:154", "--kind", "delete", "--no-canary", "--merge", str(earlier),
         "--report", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    ids = {m["id"] for m in report["mutants"]}
    assert 'Attestations.vy:delete:"attest: fee is zero"' in ids  # run now
    assert kept["id"] in ids and other["id"] in ids  # carried: still in the contract, or not run now
    assert stale["id"] not in ids and stale["id"] not in report["not_run"]  # its check is gone
