"""`bisectml dispute open` never opens a second challenge: run twice, or again after Ctrl-C at
each point of it (failpoints: before the challenge is sent, sent but not mined, mined)."""

from __future__ import annotations

import json

import onnx
import pytest
from eth_account import Account
from typer.testing import CliRunner
from web3.logs import DISCARD

from cli import app
from onnx_models.toy import accumulator_program
from verifier.app.session import deployments_path
from verifier.core.failpoints import FAILPOINT_ENV
from verifier.court.chain import Chain, deploy_suite
from verifier.court.play import Court, program_task_args
from verifier.engine.program import load_program

runner = CliRunner()
UNIT = 10**18
DAYS = 86_400


@pytest.fixture
def world(anvil, tmp_path, monkeypatch):  # noqa: ANN201
    monkeypatch.setenv("BISECTML_HOME", str(tmp_path / "home"))
    for var in ("BISECTML_RPC_URL", "BISECTML_PRIVATE_KEY", FAILPOINT_ENV):
        monkeypatch.delenv(var, raising=False)
    owner = Chain.connect(anvil.url, key=anvil.keys[0])
    d = deploy_suite(owner)
    d.save(deployments_path())
    court = Court(owner, d)
    solver = court.as_account(owner.with_key(anvil.keys[1]))
    challenger = Account.from_key(anvil.keys[2]).address
    for who in (owner.account, solver.chain.account, challenger):
        owner.send(court.token.functions.mint(who, 1000 * UNIT))
    path = tmp_path / "toy.onnx"
    onnx.save(accumulator_program(steps=6), path)
    program = load_program(path)
    as_challenger = court.as_account(owner.with_key(anvil.keys[2]))
    # the bond is approved up front, so that `dispute open` sends one transaction: the challenge
    as_challenger.chain.send(court.token.functions.approve(court.tasks.address, 1_000 * UNIT))
    key = tmp_path / "challenger.key"
    key.write_text(anvil.keys[2])
    key.chmod(0o600)

    def wrong_claim() -> int:
        a = program_task_args(program)
        owner.send(court.token.functions.approve(court.tasks.address, 10 * UNIT))
        now = int(owner.w3.eth.get_block("latest")["timestamp"])
        receipt = owner.send(court.tasks.functions.post_task(
            a["graph_root"], a["n_nodes"], a["n_slots"], a["initial_root"], a["dataset_root"], a["steps"],
            10 * UNIT, 2 * DAYS, 2 * DAYS, 6 * UNIT, 250 * UNIT, 4, now + 30 * DAYS))  # fmt: skip
        tid = int(court.tasks.events.TaskPosted().process_receipt(receipt, errors=DISCARD)[0]["args"]["task_id"])
        solver.chain.send(court.token.functions.approve(court.tasks.address, 6 * UNIT))
        return solver.claim(tid, b"\x07" * 32)

    def open_(claim_id: int, failpoint: str | None = None):  # noqa: ANN202
        env = {FAILPOINT_ENV: failpoint} if failpoint else {}
        return runner.invoke(app, ["dispute", "open", str(claim_id), "--program", str(path), "--rpc-url", anvil.url,
                                   "--key-file", str(key), "--json"], env=env)  # fmt: skip

    def challenges(claim_id: int) -> int:
        return len(d.logs(court.tasks.events.Challenged(), {"claim_id": claim_id}))

    return wrong_claim, open_, challenges, anvil


def _resumed(res) -> bool:  # noqa: ANN001
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return json.loads(res.stdout)["resumed"]


def test_run_twice__one_challenge(world) -> None:
    wrong_claim, open_, challenges, _ = world
    cid = wrong_claim()
    assert _resumed(open_(cid)) is False
    assert _resumed(open_(cid)) is True
    assert challenges(cid) == 1


def test_interrupted_before_sending__rerun_challenges_once(world) -> None:
    wrong_claim, open_, challenges, _ = world
    cid = wrong_claim()
    res = open_(cid, "dispute_open:before_challenge")
    assert res.exit_code == 130 and "run the same command again" in res.stderr
    assert challenges(cid) == 0
    assert _resumed(open_(cid)) is False and challenges(cid) == 1


def test_interrupted_after_mining__rerun_resumes(world) -> None:
    wrong_claim, open_, challenges, _ = world
    cid = wrong_claim()
    assert open_(cid, "dispute_open:after_challenge").exit_code == 130
    assert challenges(cid) == 1
    assert _resumed(open_(cid)) is True and challenges(cid) == 1


def test_interrupted_between_sending_and_mining__waits_then_resumes(world) -> None:
    wrong_claim, open_, challenges, anvil = world
    cid = wrong_claim()
    anvil.rpc("evm_setAutomine", [False])
    try:
        assert open_(cid, "sent:challenge").exit_code == 130
        res = open_(cid)
        assert res.exit_code == 2 and "not mined yet" in res.stderr and len(res.stderr.strip().splitlines()) == 1
        anvil.rpc("evm_mine", [])
    finally:
        anvil.rpc("evm_setAutomine", [True])
    assert challenges(cid) == 1
    assert _resumed(open_(cid)) is True and challenges(cid) == 1
