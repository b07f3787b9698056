"""One-shot commands resume instead of repeating: a command interrupted at any point of a send
(signed and recorded but not broadcast, broadcast but not mined, mined) and run again sends it at
most once in all; a command that finished, run again, sends again."""

from __future__ import annotations

import json

import onnx
import pytest
from eth_account import Account
from typer.testing import CliRunner

from cli import app
from onnx_models.toy import accumulator_program
from verifier.app import journal
from verifier.app.session import deployments_path
from verifier.core.failpoints import FAILPOINT_ENV
from verifier.court.chain import Chain, deploy_suite
from verifier.court.play import Court

runner = CliRunner()
UNIT = 10**18


@pytest.fixture
def world(anvil, tmp_path, monkeypatch):  # noqa: ANN201
    monkeypatch.setenv("BISECTML_HOME", str(tmp_path / "home"))
    for var in ("BISECTML_RPC_URL", "BISECTML_PRIVATE_KEY", FAILPOINT_ENV):
        monkeypatch.delenv(var, raising=False)
    owner = Chain.connect(anvil.url, key=anvil.keys[0])
    d = deploy_suite(owner)
    d.save(deployments_path())
    court = Court(owner, d)
    sender = Account.from_key(anvil.keys[4]).address
    owner.send(court.token.functions.mint(sender, 100 * UNIT))
    key = tmp_path / "sender.key"
    key.write_text(anvil.keys[4])
    key.chmod(0o600)
    recipient = Account.create().address  # fresh: it holds only what these tests send

    def run(*args: str, failpoint: str | None = None):  # noqa: ANN202
        env = {FAILPOINT_ENV: failpoint} if failpoint else {}
        return runner.invoke(app, [*args, "--rpc-url", anvil.url, "--key-file", str(key), "--json"], env=env)

    def transfer(amount: str = "5", failpoint: str | None = None):  # noqa: ANN202
        return run("token", "transfer", recipient, amount, failpoint=failpoint)

    def received() -> int:
        return court.token.functions.balanceOf(recipient).call() // UNIT

    return court, run, transfer, received, tmp_path


def _ok(res) -> dict:  # noqa: ANN001
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return json.loads(res.stdout)


def _interrupted(res) -> None:  # noqa: ANN001
    assert res.exit_code == 130, (res.stdout, res.stderr)


def test_finished_command_run_again__sends_again(world) -> None:
    _, _, transfer, received, _ = world
    assert _ok(transfer())["resumed"] is False
    assert _ok(transfer())["resumed"] is False
    assert received() == 10


def test_interrupted_after_broadcast__rerun_adopts_the_mined_transfer(world) -> None:
    _, _, transfer, received, _ = world
    _interrupted(transfer(failpoint="sent:transfer"))
    assert received() == 5  # anvil mined it
    res = transfer()
    assert _ok(res)["resumed"] is True and received() == 5
    assert "note: an interrupted `transfer`" in res.stderr and "was mined" in res.stderr
    # the resumed command finished: a third run is a new transfer
    assert _ok(transfer())["resumed"] is False and received() == 10


def test_interrupted_after_spending_everything__rerun_resumes_instead_of_refusing_for_funds(world) -> None:
    _, _, transfer, received, _ = world
    _interrupted(transfer("100", failpoint="sent:transfer"))
    assert received() == 100
    assert _ok(transfer("100"))["resumed"] is True and received() == 100


def test_interrupted_before_broadcast__rerun_sends_once(world) -> None:
    _, _, transfer, received, _ = world
    _interrupted(transfer(failpoint="recorded:transfer"))
    assert received() == 0  # signed and recorded, never broadcast
    assert _ok(transfer())["resumed"] is False
    assert received() == 5


def test_interrupted_while_pending__rerun_waits_and_never_sends_a_second(world, anvil, monkeypatch) -> None:
    _, _, transfer, received, _ = world
    monkeypatch.setattr(journal, "WAIT_SECONDS", 1)
    anvil.rpc("evm_setAutomine", [False])
    try:
        _interrupted(transfer(failpoint="sent:transfer"))
        res = transfer()  # the first is still in the pool: wait for it, do not send another
        assert res.exit_code == 2 and "is not mined after 1 s" in res.stderr, (res.stdout, res.stderr)
        anvil.rpc("evm_mine", [])
    finally:
        anvil.rpc("evm_setAutomine", [True])
    assert received() == 5
    assert _ok(transfer())["resumed"] is True and received() == 5


def test_task_post_interrupted_after_broadcast__one_task(world, anvil) -> None:
    court, run, _, _, tmp_path = world
    path = tmp_path / "toy.onnx"
    onnx.save(accumulator_program(steps=6), path)
    post = ("task", "post", str(path), "--reward", "10", "--solver-bond", "6", "--challenger-bond", "250")
    before = court.tasks.functions.task_count().call()
    _interrupted(run(*post, failpoint="sent:post_task"))
    assert court.tasks.functions.task_count().call() == before + 1
    anvil.advance(60)  # the deadline a fresh post would set differs: adopted by the program, not the calldata
    out = _ok(run(*post))
    assert out["resumed"] is True and out["task_id"] == before + 1
    assert court.tasks.functions.task_count().call() == before + 1
    assert _ok(run(*post))["task_id"] == before + 2  # posting again on purpose is a second task
