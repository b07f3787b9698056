"""keep_freed_memory: a step's large arrays reuse the heap instead of faulting in fresh pages."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates and frees a 2 MiB array 200 times and prints the minor page faults that took.
SCRIPT = """
import resource, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "keep":
    from verifier.engine.memory import keep_freed_memory
    assert keep_freed_memory() and keep_freed_memory()
np.ones(1 << 18)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    np.ones(1 << 18).sum()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, Linux only")
def test_keep_freed_memory__large_arrays_stop_faulting_in_fresh_pages() -> None:
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    faults = {}
    for mode in ("system", "keep"):
        done = subprocess.run([sys.executable, "-c", SCRIPT, root, mode], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        faults[mode] = int(done.stdout.split()[-1])
    # 2 MiB freshly mapped is 512 pages (or one huge page) per array; reused, next to none
    assert faults["keep"] * 20 < faults["system"], faults
