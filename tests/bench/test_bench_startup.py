"""bench/bench_startup.py, one process per command: every timed command runs to completion (a
failing command raises) and the report names each of them and the installed ml_dtypes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_startup__one_run__reports_every_command(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_startup", ROOT / "bench" / "bench_startup.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--runs", "1"]) == 0
    out = capsys.readouterr().out
    for name in mod.COMMANDS:
        assert name in out
    assert "ml_dtypes 0.5" in out or "ml_dtypes 0.6" in out  # 0.7.0 loads in ~0.46 s
