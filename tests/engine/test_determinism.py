"""The same program gives the same roots: across runs, kernel paths and thread counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cli import resolve_program
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

STEPS = 40
CHILD = r"""
import json, sys
from cli import resolve_program
from verifier.engine.program import load_program
from verifier.engine.trace import Trace
p = load_program(resolve_program("mlp_train"), steps=int(sys.argv[1]))
with Trace(p, checkpoint_every=7, fast=sys.argv[2] == "fast") as tr:
    tr.run()
    print(json.dumps([r.hex() for r in tr.step_roots(list(range(p.steps + 1)))]))
"""


def roots_in_subprocess(threads: str, path: str) -> list[str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = threads
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(STEPS), path], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def expected() -> list[str]:
    p = load_program(resolve_program("mlp_train"), steps=STEPS)
    with Trace(p, checkpoint_every=10, fast=False) as tr:
        tr.run()
        return [r.hex() for r in tr.step_roots(list(range(STEPS + 1)))]


@pytest.mark.parametrize("threads,path", [("1", "fast"), ("2", "fast"), ("8", "fast"), ("2", "reference")])
def test_roots__identical_across_threads_and_paths(expected, threads: str, path: str) -> None:
    assert roots_in_subprocess(threads, path) == expected


def test_roots__every_step_differs(expected) -> None:
    assert len(set(expected)) == STEPS + 1
