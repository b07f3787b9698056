"""`bisectml status` against anvil with a game under way: each party sees its claim or
challenge, the game with both clocks, whose move it is, and its token flows."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from typer.testing import CliRunner

from cli import app
from onnx_models.toy import accumulator_program
from verifier.app.session import deployments_path
from verifier.court.chain import Chain, deploy_suite
from verifier.court.play import Court, program_task_args
from verifier.engine.program import load_program

runner = CliRunner()
UNIT = 10**18
REWARD, SB, CB = 10 * UNIT, 6 * UNIT, 250 * UNIT
DAYS = 86_400


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BISECTML_HOME", str(tmp_path / "home"))
    for var in ("BISECTML_RPC_URL", "BISECTML_PRIVATE_KEY"):
        monkeypatch.delenv(var, raising=False)


def _status(anvil, address: str) -> dict:
    res = runner.invoke(app, ["status", "--address", address, "--rpc-url", anvil.url, "--json"])
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return json.loads(res.stdout)


def test_status__both_sides_of_a_game(anvil) -> None:
    owner = Chain.connect(anvil.url, key=anvil.keys[3])
    d = deploy_suite(owner)
    d.save(deployments_path())
    court = Court(owner, d)
    solver_key, challenger_key = anvil.keys[4], anvil.keys[5]
    solver, challenger = Account.from_key(solver_key).address, Account.from_key(challenger_key).address
    for who in (owner.account, solver, challenger):
        owner.send(court.token.functions.mint(who, 1_000 * UNIT))
    program = load_program(accumulator_program(steps=6))
    a = program_task_args(program)
    owner.send(court.token.functions.approve(court.tasks.address, REWARD))
    now = int(owner.w3.eth.get_block("latest")["timestamp"])
    owner.send(court.tasks.functions.post_task(a["graph_root"], a["n_nodes"], a["n_slots"], a["initial_root"], a["dataset_root"],
                                               a["steps"], REWARD, 2 * DAYS, 2 * DAYS, SB, CB, 4, now + 30 * DAYS))  # fmt: skip
    as_solver = court.as_account(owner.with_key(solver_key))
    as_solver.chain.send(court.token.functions.approve(court.tasks.address, SB))
    claim_id = as_solver.claim(1, b"\x01" * 32)  # a made-up root: commit, then reveal
    as_challenger = court.as_account(owner.with_key(challenger_key))
    as_challenger.chain.send(court.token.functions.approve(court.tasks.address, CB))
    as_challenger.chain.send(court.tasks.functions.challenge(claim_id))

    s = _status(anvil, solver)
    assert [c["claim_id"] for c in s["claims"]] == [claim_id] and s["claims"][0]["state"] == "live"
    assert len(s["games"]) == 1 and s["games"][0]["your_role"] == "solver"
    g = s["games"][0]
    assert g["clock_solver"] > 0 and g["clock_challenger"] == 2 * DAYS
    assert (g["to_move"] == "solver") == ("move in game 1" in s["todo"])
    assert s["paid"] == str(SB) and s["held"] == str(SB) and s["profit"] == str(-SB)

    c = _status(anvil, challenger)
    assert [x["claim_id"] for x in c["challenges"]] == [claim_id] and c["challenges"][0]["state"] == "open"
    assert c["games"][0]["your_role"] == "challenger" and c["held"] == str(CB)
    assert c["bond"] == str(1_000 * UNIT - CB)

    p = _status(anvil, owner.account)
    assert p["tasks"] == [{"task_id": 1, "state": "open", "reward": str(REWARD), "claim_id": claim_id, "deadline": now + 30 * DAYS}]
    assert p["paid"] == str(REWARD) and p["claims"] == [] and p["games"] == []
    human = runner.invoke(app, ["status", "--address", solver, "--rpc-url", anvil.url])
    assert human.exit_code == 0 and "to do:" in human.stdout and "games" in human.stdout, human.stdout
