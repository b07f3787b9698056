"""bench/bench_dispute.py on a 4,096-term reduction: the watchtower and a cheating solver, as
separate daemons on anvil, play the game down to one term of the wrong MatMul element and the
cheater is slashed (the script asserts the slash; it exits before printing otherwise)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_dispute__long_reduction__cheater_slashed(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_dispute", ROOT / "bench" / "bench_dispute.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--reduction", "4096", "--timeout", "240"]) == 0
    out = capsys.readouterr().out
    assert "matmul_4096.onnx" in out and "claim -> slash" in out
