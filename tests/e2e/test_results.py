"""From a task posted by its program's CID to a result the poster can use, on anvil and a real
IPFS node (js-ipfs on 127.0.0.1), the daemons as separate processes (docs/SPEC.md 7.11):

- the poster's `task post` puts the program file on the IPFS node and only its CID on the chain;
- the solver and the watchtower, each with its own BISECTML_HOME and no --program, fetch the
  program through the gateway, checked against the CID and the task's program id;
- the solver publishes the trained weights on-chain, and the claim finalizes only after that, and
  mirrors them on its IPFS node;
- `task result` reads them from that mirror and writes weights that reproduce the claimed final
  root, and the trained network as float ONNX, the same model `build export` makes from a local
  trace;
- a solver that withholds its result is not paid: after the window the watchtower expires its
  claim (the bond burns) and the task goes to a solver that publishes;
- a program whose bytes do not match its CID is refused once, and the task is not claimed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from sklearn.datasets import load_digits

from _e2e import FUNDS, REWARD, ROOT, SOLVER_BOND, WINDOW, program, running, wait_until
from verifier.app.build import build_train, export_trained
from verifier.commit.commitments import SlotTable, commit_tensor
from verifier.court.states import CLAIM_EXPIRED, CLAIM_FINALIZED, CLAIM_LIVE
from verifier.engine.program import load_program
from verifier.engine.trace import Trace
from verifier.market.content import cid_of

SPEC = {
    "layers": [{"type": "linear", "out": 12}, {"type": "relu"}, {"type": "linear", "out": 10}],
    "loss": "softmax_cross_entropy",
    "optimizer": {"type": "sgd", "lr": 0.5, "momentum": 0.5},
    "schedule": {"steps": 16, "batch": 16},
}


def _program(tmp: Path) -> Path:
    """A small training program of `bisectml build train` on 240 digits."""
    x, y = load_digits(return_X_y=True)
    np.savez(tmp / "rows.npz", X=x[:240], y=y[:240])
    (tmp / "spec.json").write_text(json.dumps(SPEC))
    build_train(str(tmp / "spec.json"), str(tmp / "rows.npz"), str(tmp / "train.onnx"))
    return tmp / "train.onnx"


def _home(suite, tmp: Path, name: str) -> Path:  # noqa: ANN001
    """A BISECTML_HOME of its own that knows the suite's deployment."""
    home = tmp / name
    home.mkdir()
    shutil.copy(suite.deployment_file, home / "deployments.json")
    return home


def _cli(args: list[str], home: Path, timeout: float = 240) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISECTML_")} | {"BISECTML_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-m", "cli", *args, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_task_by_cid__fetched_over_ipfs__result_published_and_fetched(suite, fleet, ipfs, tmp_path) -> None:
    path = _program(tmp_path)
    prog = load_program(path)
    rpc = ["--rpc-url", suite.anvil.url]
    posted = _cli(
        ["task", "post", str(path), "--reward", "100", "--solver-bond", "50", "--challenger-bond", "250",
         "--window", "2d", "--clock", "2d", "--arity", "4", "--deadline", "30d", "--ipfs-api", ipfs.api,
         *rpc, "--key-file", str(suite.key_file(0))],
        _home(suite, tmp_path, "poster"),
    )  # fmt: skip
    tid = posted["task_id"]
    assert posted["program_cid"] == cid_of(path.read_bytes())
    assert posted["result_slots"] == prog.state_slots
    assert int(suite.court.tasks.functions.result_slots(tid).call()) == sum(1 << s for s in prog.state_slots)

    # no --program and empty homes: the program comes from the IPFS node, by the task's CID
    gateway = {"BISECTML_IPFS_GATEWAY": ipfs.gateway}
    # the solver has a node of its own to mirror its result to (the same node, in this test)
    solver = fleet("solver", 1, [], "solver", env={**gateway, "BISECTML_IPFS_API": ipfs.api,
                                                   "BISECTML_HOME": str(_home(suite, tmp_path, "solver-home"))})  # fmt: skip
    tower = fleet("challenger", 2, [], "tower", env={**gateway, "BISECTML_HOME": str(_home(suite, tmp_path, "tower-home"))})
    with running(solver, tower):
        cid = wait_until("the claim", lambda: suite.task(tid).claim_id, 180, [solver, tower])
        wait_until("the result published", lambda: len(solver.events("result_published")) == len(prog.state_slots),
                   120, [solver, tower])  # fmt: skip
        wait_until("the watchtower to agree", lambda: tower.events("claim_ok"), 120, [solver, tower])
        assert suite.claim(cid).state == CLAIM_LIVE
        assert [r["cid"] for r in solver.events("program_fetched")] == [posted["program_cid"]]
        assert [r["cid"] for r in tower.events("program_fetched")] == [posted["program_cid"]]
        suite.anvil.advance(WINDOW + 1)
        wait_until("finalization", lambda: suite.claim(cid).state == CLAIM_FINALIZED, 60, [solver, tower])
    assert int(suite.court.tasks.functions.published(cid).call()) == sum(1 << s for s in prog.state_slots)

    reader = _home(suite, tmp_path, "reader")
    got = _cli(
        ["task", "result", str(tid), "--out", str(tmp_path / "w.npz"), "--onnx", str(tmp_path / "m.onnx"), *rpc,
         "--ipfs-gateway", ipfs.gateway],
        reader,
    )  # fmt: skip
    assert got["claim_id"] == cid and got["onnx"] == str(tmp_path / "m.onnx")
    # read from the solver's mirror on IPFS, each tensor checked against the claim
    assert {t["source"] for t in got["tensors"].values()} == {"ipfs"} and got["refused_mirrors"] == []
    assert sorted(r["slot"] for r in solver.events("result_mirrored")) == sorted(prog.state_slots)
    weights = dict(np.load(tmp_path / "w.npz"))
    assert sorted(weights) == sorted(prog.state_names)
    # the weights reproduce the claimed final root: they fill the final state's result slots
    with Trace(prog) as tr:
        root = tr.run()
        table = tr.slot_table_at(prog.steps, 0)
    assert root == bytes(suite.claim(cid).final_root)
    rebuilt = SlotTable(prog.n_slots, [table.open(i).commitment for i in range(prog.n_slots)])
    for slot, name in zip(prog.state_slots, prog.state_names):
        rebuilt.set(slot, commit_tensor(weights[name]))
    assert rebuilt.state_root(prog.steps, 0) == root
    # the float model is the one `build export` makes from a local trace of the same program
    export_trained(str(path), str(tmp_path / "local.onnx"))
    assert onnx.load(tmp_path / "m.onnx").SerializeToString() == onnx.load(tmp_path / "local.onnx").SerializeToString()


def test_program_not_matching_its_cid__refused_once_and_not_claimed(suite, fleet, toys, tmp_path) -> None:
    """The content store serves other bytes under the program's CID (a tampered block): the
    solver reports it once and does not claim; nothing is sent."""
    p = toys(3)
    good = p.read_bytes()
    cid = cid_of(good)
    poster = _home(suite, tmp_path, "poster")
    posted = _cli(
        ["task", "post", str(p), "--reward", "100", "--solver-bond", "50", "--challenger-bond", "250", "--deadline", "30d",
         "--rpc-url", suite.anvil.url, "--key-file", str(suite.key_file(0)), "--content-dir", str(tmp_path / "posted")],
        poster,
    )  # fmt: skip
    assert posted["program_cid"] == cid
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / cid).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    solver = fleet("solver", 1, [], "solver", extra=["--content-dir", str(tampered), "--no-market"])
    with running(solver):
        wait_until("the refusal", lambda: solver.events("program_unavailable"), 60, [solver])
        time.sleep(10 * solver.poll)  # ten more ticks: it is tried again, reported once
    refusals = solver.events("program_unavailable")
    assert len(refusals) == 1 and refusals[0]["cid"] == cid and "does not hash" in refusals[0]["why"]
    assert suite.task(posted["task_id"]).claim_id == 0
    assert suite.nonce(solver.address) == solver.nonce0


def test_withheld_result__expired_after_the_window_then_paid_to_a_solver_that_publishes(suite, fleet, toys) -> None:
    p = toys(5)
    slots = program(p).state_slots
    tid = suite.post_task(program(p), result_slots=sum(1 << s for s in slots))
    withholder = fleet("solver", 1, [p], "withholder", cheat="withhold")
    tower = fleet("challenger", 2, [p], "tower")
    with running(withholder, tower):
        first = wait_until("the claim", lambda: suite.task(tid).claim_id, 60, [withholder, tower])
        wait_until("the watchtower to agree", lambda: tower.events("claim_ok"), 60, [withholder, tower])
        assert suite.claim(first).state == CLAIM_LIVE and not withholder.events("result_published")
        suite.anvil.advance(WINDOW + 1)
        # the tower logs after its receipt, so the chain may show the expiry before its log does
        wait_until("the watchtower to expire it", lambda: tower.events("claim_expired"), 60, [withholder, tower])
        assert suite.claim(first).state == CLAIM_EXPIRED
        assert [r["claim"] for r in tower.events("claim_expired")] == [first]
        wait_until("the withholder to give up", lambda: withholder.events("not_reclaiming"), 30, [withholder])
        honest = fleet("solver", 3, [p], "honest").start()
        second = wait_until("the second claim", lambda: suite.task(tid).claim_id, 60, [honest, tower])
        wait_until("its result", lambda: len(honest.events("result_published")) == len(slots), 60, [honest])
        suite.anvil.advance(WINDOW + 1)
        wait_until("finalization", lambda: suite.claim(second).state == CLAIM_FINALIZED, 60, [honest, tower])
    assert suite.claim(second).solver == honest.address
    assert suite.balance(withholder.address) == FUNDS - SOLVER_BOND  # its bond burned, no reward
    assert suite.balance(honest.address) == FUNDS + REWARD


def test_result_above_one_publication__the_daemon_publishes_it_in_parts(suite, fleet, tmp_path) -> None:
    """A 720,000-byte weight tensor: the solver daemon sends it in 11 parts of at most 64 KiB
    and assembles it before recording the slot; the claim finalizes and the result reads back.
    Its IPFS node is down: each mirror is reported once and skipped, and nothing else waits."""
    from onnx_models.toy import accumulator_program
    from verifier.market import results

    path = tmp_path / "wide.onnx"
    onnx.save(accumulator_program(steps=4, rows=2, width=300, seed=9), path)
    prog = load_program(path)
    tid = suite.post_task(prog, result_slots=sum(1 << s for s in prog.state_slots))
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    solver = fleet("solver", 1, [path], "solver", extra=["--ipfs-api", dead])
    with running(solver):
        cid = wait_until("the claim", lambda: suite.task(tid).claim_id, 120, [solver])
        wait_until("the result published", lambda: len(solver.events("result_published")) == len(prog.state_slots),
                   120, [solver])  # fmt: skip
        suite.anvil.advance(WINDOW + 1)
        wait_until("finalization", lambda: suite.claim(cid).state == CLAIM_FINALIZED, 60, [solver])
    skipped = solver.events("result_not_mirrored")
    assert sorted(r["slot"] for r in skipped) == sorted(prog.state_slots) and "cannot reach" in skipped[0]["why"]
    assert not solver.events("result_mirrored") and not suite.events("availability", "Mirrored")
    parts = suite.events("availability", "PartPublished")
    assert len(parts) == 11 and sorted(int(e.args["index"]) for e in parts) == list(range(11))
    sent = [r for r in solver.intents() if r["key"].startswith(f"avail:{cid}:")]
    assert len(sent) == 11 + 1 + 1  # the parts and the assembly of w, one publication of acc
    got = results.fetch(suite.court, tid, cid).arrays
    with Trace(prog) as tr:
        tr.run()
        final = tr.final_state()
    assert {prog.state_names[prog.state_slots.index(s)]: v.nbytes for s, v in got.items()}["w"] == 720_000
    for slot, value in got.items():
        assert np.array_equal(value, final[prog.state_names[prog.state_slots.index(slot)]])
