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


def test_programs_by_cid__every_cid_logged_is_tried_checked_and_failures_reported_once(tmp_path) -> None:
    """A program is fetched by the CID its task logged: a CID nobody has is reported once, a
    later task of the same program naming one that works is found, and a file that is another
    program than the task's is refused once."""
    import onnx

    from verifier.court.chain import Chain, deploy_suite
    from verifier.court.play import Court, program_task_args
    from verifier.daemon.registry import ProgramsByCid
    from verifier.market.content import ContentStore, cid_of, digest_of

    chain = Chain.embedded()
    court = Court(chain, deploy_suite(chain))
    store = ContentStore(tmp_path)
    model, other = accumulator_program(steps=3), accumulator_program(steps=3, seed=1)
    program = load_program(model)
    good = store.put(model.SerializeToString())
    wrong = store.put(other.SerializeToString())  # a real program, but not this task's
    unknown = cid_of(b"bytes nobody published")
    chain.send(court.token.functions.mint(chain.account, 10**20))
    chain.send(court.token.functions.approve(court.tasks.address, 10**20))
    a = program_task_args(program)

    def post(cid: str) -> None:
        now = chain.w3.eth.get_block("latest")["timestamp"]
        chain.send(court.tasks.functions.post_task(
            a["graph_root"], a["n_nodes"], a["n_slots"], a["initial_root"], a["dataset_root"], a["steps"],
            1, 172_800, 172_800, 1, 250 * 10**18, 4, now + 10**6, 0, digest_of(cid)))  # fmt: skip

    stream = io.StringIO()
    by_cid = ProgramsByCid(court, store, JsonLog("solver", stream))
    task = _task(program.id)
    task.steps = program.steps
    post(unknown)
    post(wrong)
    assert by_cid.for_task(task) is None and by_cid.for_task(task) is None
    post(good)  # a later task names a CID that works
    found = by_cid.for_task(task)
    assert found is not None and found.id == program.id
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["event"], r["cid"]) for r in events if r["event"] != "program_fetched"] == [
        ("program_unavailable", unknown), ("program_mismatch", wrong),
    ]  # fmt: skip
    assert [r["cid"] for r in events if r["event"] == "program_fetched"] == [good]
    assert onnx.load_from_string(store.get(good)) == model


def test_programs_by_cid__a_dead_cid_backs_off_a_wrong_one_is_never_fetched_again(tmp_path) -> None:
    """A fetch that failed is not repeated every tick: the CID is asked for again after 15 s,
    then 30 s, doubling to at most 900 s, and at once when it has arrived meanwhile; bytes
    that are another program are fetched once, whatever the clock says."""
    from verifier.court.chain import Chain, deploy_suite
    from verifier.court.play import Court, program_task_args
    from verifier.daemon.registry import RETRY_FIRST_S, RETRY_MAX_S, ProgramsByCid
    from verifier.market.content import ContentStore, cid_of, digest_of

    chain = Chain.embedded()
    court = Court(chain, deploy_suite(chain))
    model, other = accumulator_program(steps=3), accumulator_program(steps=3, seed=1)
    program = load_program(model)
    fetched: list[str] = []

    class Counting(ContentStore):
        def get(self, cid: str) -> bytes:
            fetched.append(cid)
            return super().get(cid)

    store = Counting(tmp_path)
    wrong = store.put(other.SerializeToString())
    late = cid_of(model.SerializeToString())  # posted before anyone has the file
    chain.send(court.token.functions.mint(chain.account, 10**20))
    chain.send(court.token.functions.approve(court.tasks.address, 10**20))
    a = program_task_args(program)
    for cid in (wrong, late):
        now = chain.w3.eth.get_block("latest")["timestamp"]
        chain.send(court.tasks.functions.post_task(
            a["graph_root"], a["n_nodes"], a["n_slots"], a["initial_root"], a["dataset_root"], a["steps"],
            1, 172_800, 172_800, 1, 250 * 10**18, 4, now + 10**6, 0, digest_of(cid)))  # fmt: skip
    clock = [1000.0]
    by_cid = ProgramsByCid(court, store, JsonLog("solver", io.StringIO()), clock=lambda: clock[0])
    task = _task(program.id)
    task.steps = program.steps

    def tick(seconds: float) -> object:
        clock[0] += seconds
        return by_cid.for_task(task)

    assert tick(0) is None and fetched == [wrong, late]
    delays = []
    for failures in range(1, 9):
        delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (failures - 1))
        assert tick(delay - 1) is None and fetched.count(late) == failures  # not yet
        assert tick(1) is None and fetched.count(late) == failures + 1  # asked again
        delays.append(delay)
    assert delays[:3] == [15, 30, 60] and delays[-1] == RETRY_MAX_S == 900
    assert fetched.count(wrong) == 1
    store.put(model.SerializeToString())  # it arrives (ipfs get, a gateway) ...
    assert tick(RETRY_MAX_S - 1) is None  # ... and is read at the next try
    found = tick(1)
    assert found is not None and found.id == program.id and fetched.count(wrong) == 1
