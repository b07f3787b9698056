"""The engine's thread count (verifier/engine/threads.py): applied to BLAS pools loaded before
and after it is set, from --threads or BISECTML_THREADS, refused in one line when not positive."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cli import app
from verifier.core.errors import BisectmlError
from verifier.engine.threads import THREADS_ENV, thread_count

PROBE = """
import json, sys
from verifier.engine.threads import set_threads, blas_threads
if sys.argv[1] == "before":
    import numpy  # the pool is loaded before the limit
set_threads(int(sys.argv[2]))
import numpy
print(json.dumps(blas_threads()))
"""


@pytest.mark.parametrize("numpy_loaded", ["before", "after"])
@pytest.mark.parametrize("n", [1, 2])
def test_set_threads__limits_blas_loaded_before_or_after(numpy_loaded: str, n: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE, numpy_loaded, str(n)], capture_output=True, text=True,
                         timeout=120, env=env, check=True)  # fmt: skip
    counts = json.loads(out.stdout)
    assert counts and all(c == n for c in counts), counts


def test_thread_count__flag_then_env_then_one(monkeypatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert thread_count() == 1
    monkeypatch.setenv(THREADS_ENV, "3")
    assert thread_count() == 3 and thread_count("2") == 2
    for bad in ("0", "-1", "two"):
        with pytest.raises(BisectmlError, match="not a positive integer"):
            thread_count(bad)


def test_cli__bad_thread_count__one_line_exit_2() -> None:
    res = CliRunner().invoke(app, ["--threads", "0", "check", "mlp_train"])
    assert res.exit_code == 2 and res.stderr.strip().count("\n") == 0 and "--threads" in res.stderr
