"""The daemons' program registry with a fallback (the market's programs, rebuilt from the chain):
a fallback that cannot build a program yet is logged once and the task is simply not served."""

from __future__ import annotations

import io
import json

from onnx_models.toy import accumulator_program
from verifier.daemon.records import JsonLog, TaskRec
from verifier.daemon.registry import Registry
from verifier.engine.program import load_program
from verifier.market.content import ContentError


def _task(program_id: bytes) -> TaskRec:
    z = b"\x00" * 32
    return TaskRec("0x" + "00" * 20, program_id, z, z, z, 1, 1, 1, 2, 1, 1, 0, 1, 1, 1, 0, 1)


def test_fallback_builds_unknown_programs_and_reports_failures_once() -> None:
    program = load_program(accumulator_program(steps=3))
    calls = []

    def fallback(t: TaskRec):  # noqa: ANN202
        calls.append(t)
        if bytes(t.program_id) == program.id:
            return program
        raise ContentError("content bafk… is not in the store; fetch it.")

    stream = io.StringIO()
    reg = Registry([], JsonLog("solver", stream), fallback)
    assert reg.for_task(_task(program.id)) is program
    assert reg.for_task(_task(program.id)) is program and len(calls) == 1  # cached by id
    missing = _task(b"\x01" * 32)
    assert reg.for_task(missing) is None and reg.for_task(missing) is None
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    unavailable = [r for r in lines if r["event"] == "program_unavailable"]
    assert len(unavailable) == 1 and unavailable[0]["level"] == "alert" and "fetch it" in unavailable[0]["why"]
