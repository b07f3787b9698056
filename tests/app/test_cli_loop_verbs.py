"""The closed loop's verbs as users run them (`bisectml loop ...` as separate processes on
anvil): deploy, deposit, register, open, commit, reveal, post, record, show; and every refusal
as one line that changes nothing."""

from __future__ import annotations

import json
import os

import pytest
from test_cli_market import User

from verifier.court.chain import Chain, deploy_suite
from verifier.court.play import Court

TOKEN = 10**18
DAY = 86_400
ROLES = ("keeper", "depositor", "modeler", "stranger")


def suite_and_pool(chain: Chain):  # noqa: ANN201
    """The suite, an asset token and a pool of the bond token against it (4 BOND an asset), as
    `chain`'s account deploys and funds them: (deployment, token, asset, pool)."""
    d = deploy_suite(chain)
    token = chain.contract("Token", d.addresses["Token"])
    asset = chain.deploy("Token")
    pool = chain.deploy("Pool", token.address, asset.address)
    for t in (token, asset):
        chain.send(t.functions.mint(chain.account, 10**9 * TOKEN), "mint")
        chain.send(t.functions.approve(pool.address, 2**256 - 1), "approve")
    chain.send(pool.functions.add_liquidity(4 * 10**8 * TOKEN, 10**8 * TOKEN, 0, chain.account), "liquidity")
    return d, token, asset, pool


@pytest.fixture(scope="module")
def world(anvil, tmp_path_factory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("loop-verbs")
    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    d, token, asset, pool = suite_and_pool(chain)
    d.save(root / "home" / "deployments.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISECTML_")}
    env |= {"BISECTML_HOME": str(root / "home"), "BISECTML_RPC_URL": anvil.url, "COLUMNS": "200"}
    users = {}
    for i, name in enumerate(ROLES, start=1):
        key = root / f"{name}.key"
        key.write_text(anvil.keys[i] + "\n")
        key.chmod(0o600)
        users[name] = User(env, key)
        chain.send(token.functions.mint(chain.with_key(anvil.keys[i]).account, 10**6 * TOKEN), "mint")
    return {"root": root, "users": users, "anvil": anvil, "chain": chain, "d": d, "pool": pool, "home": root / "home"}


def _error(res) -> str:  # noqa: ANN001
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def _ok(res) -> str:  # noqa: ANN001
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_a_period_from_the_command_line(world):
    u, anvil = world["users"], world["anvil"]
    deployments = world["home"] / "deployments.json"
    before = deployments.read_text()
    bad = world["root"] / "terms.json"
    bad.write_text(json.dumps({"fee_bps": 201}))
    assert "loop: a rate outside the protocol's bounds" in _error(u["keeper"].run("loop", "deploy", "--pool", world["pool"].address, "--terms", str(bad)))
    assert deployments.read_text() == before  # nothing written
    assert "is not a pool" in _error(u["keeper"].run("loop", "deploy", "--pool", world["d"].addresses["Tasks"]))
    assert "no loop in this chain's deployment" in _error(u["keeper"].run("loop", "show"))

    out = u["keeper"].json("loop", "deploy", "--pool", world["pool"].address, "--models", "2")
    assert json.loads(deployments.read_text())[str(world["chain"].chain_id)]["addresses"]["Loop"] == out["loop"]
    _ok(u["depositor"].run("loop", "deposit", "10000"))
    model = u["modeler"].json("loop", "register", "--stake", "100")["model_id"]
    assert u["keeper"].json("loop", "open")["period_id"] == 1
    _ok(u["depositor"].run("loop", "claim"))
    shown = u["stranger"].json("loop", "show")
    assert shown["total_shares"] > 0 and shown["period"]["id"] == 1

    _ok(u["modeler"].run("loop", "commit", "1", str(model), "30", "--stake", "50"))
    assert "model already committed" in _error(u["modeler"].run("loop", "commit", "1", str(model), "30", "--stake", "50"))
    assert "not the model owner" in _error(u["stranger"].run("loop", "commit", "1", str(model), "30", "--stake", "50"))
    anvil.advance(3_600)
    # the salt comes from the key: another process reveals, and only the committed number
    assert "prediction does not match the commitment" in _error(u["modeler"].run("loop", "reveal", "1", str(model), "31"))
    _ok(u["modeler"].run("loop", "reveal", "1", str(model), "30"))
    assert u["stranger"].json("loop", "show", "1")["slots"] == [{"model": model, "amount": 50 * TOKEN, "prediction": 30}]
    anvil.advance(DAY)

    assert "not a loop program" in _error(u["keeper"].run("loop", "post", "1", "values"))
    task_id = u["keeper"].json("loop", "post", "1", "metamodel")["task_id"]
    assert "task not done; finalize a claim first" in _error(u["stranger"].run("loop", "record", "1", "metamodel"))
    # a solver claims the program it rebuilds from the chain, as the daemons do
    from verifier.engine.trace import Trace
    from verifier.market.loop_client import LoopClient

    solver = world["chain"].with_key(anvil.keys[5])
    world["chain"].send(world["chain"].contract("Token", world["d"].addresses["Token"]).functions.mint(solver.account, 10**4 * TOKEN), "mint")
    court = Court(solver, world["d"])
    solver.send(court.token.functions.approve(court.tasks.address, 2**256 - 1), "approve")
    with Trace(LoopClient.at(solver, out["loop"]).program(1, 0)) as tr:
        claim = court.claim(task_id, tr.run())
    anvil.advance(2 * DAY + 1)
    solver.send(court.tasks.functions.finalize(claim), "finalize")
    assert u["stranger"].json("loop", "record", "1", "metamodel")["values"] == [30]
    assert u["stranger"].json("loop", "show", "1")["period"]["metamodel"] == 30
    assert "result already recorded" in _error(u["stranger"].run("loop", "record", "1", "metamodel"))
    assert "trade_at not reached" in _error(u["stranger"].run("loop", "trade", "1"))
    assert "there is no period 9" in _error(u["stranger"].run("loop", "show", "9"))
