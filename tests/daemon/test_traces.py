"""The daemons' traces are derived data: one in an older format (or unreadable) is started over."""

from __future__ import annotations

import io
import json

from onnx_models.toy import accumulator_program
from verifier.daemon.records import JsonLog
from verifier.daemon.traces import Traces
from verifier.engine.program import load_program


def test_trace_of_an_older_format__reset_and_recomputed(tmp_path) -> None:
    p = load_program(accumulator_program(steps=12))
    stale = tmp_path / p.id.hex()
    stale.mkdir(parents=True)
    (stale / "trace.json").write_text(json.dumps({"version": 2, "program_id": p.id.hex(), "steps": 12}))
    (stale / "ckpt-000000000004.npz").write_bytes(b"old")
    out = io.StringIO()
    traces = Traces(tmp_path, JsonLog("test", out))
    root = traces.advance(p, budget=30.0)
    assert root is not None
    with_fresh = Traces(tmp_path / "fresh", JsonLog("test", io.StringIO()))
    assert root == with_fresh.advance(p, budget=30.0)
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert "trace_reset" in events and "trace_done" in events
    assert not (stale / "ckpt-000000000004.npz").exists()
