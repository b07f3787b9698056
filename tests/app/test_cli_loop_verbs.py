"""The closed loop's verbs as users run them (`bisectml loop ...` as separate processes on
anvil, or in this process for the quick ones): deploy, deposit, register, open, commit,
reveal, post, record, show, and the data side (`loop data publish|stake|withdraw|join|show|list`,
`register --dataset`, the data values program); and every refusal as one line that changes
nothing."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
from test_cli_market import User
from typer.testing import CliRunner

from cli import app
from verifier.court.chain import Chain, deploy_suite
from verifier.court.play import Court

TOKEN = 10**18
DAY = 86_400
ROLES = ("keeper", "depositor", "modeler", "stranger", "provider")
SOLVER_KEY = 7


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
    users, accounts = {}, {}
    for i, name in enumerate(ROLES, start=1):
        key = root / f"{name}.key"
        key.write_text(anvil.keys[i] + "\n")
        key.chmod(0o600)
        users[name] = User(env, key)
        accounts[name] = chain.with_key(anvil.keys[i]).account
        chain.send(token.functions.mint(accounts[name], 10**6 * TOKEN), "mint")
    return {"root": root, "users": users, "accounts": accounts, "anvil": anvil, "chain": chain, "d": d, "pool": pool,
            "token": token, "home": root / "home"}  # fmt: skip


def _error(res) -> str:  # noqa: ANN001
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def _ok(res) -> str:  # noqa: ANN001
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _here(user: User, *args: str) -> SimpleNamespace:
    """`bisectml ARGS` run by `user` in this process (typer's CliRunner): the verb's own code and
    output, without a process's start-up."""
    env = {k: None for k in os.environ if k.startswith("BISECTML_")}
    env |= {k: user.env[k] for k in ("BISECTML_HOME", "BISECTML_RPC_URL")}
    res = CliRunner().invoke(app, [*args, "--key-file", str(user.key_file)], env=env)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return SimpleNamespace(returncode=res.exit_code, stdout=res.stdout, stderr=res.stderr)


def _text(res) -> str:  # noqa: ANN001
    """A verb's output with its table's wrapping undone."""
    return " ".join(_ok(res).split())


def _json(user: User, *args: str):  # noqa: ANN202
    return json.loads(_ok(_here(user, *args, "--json")))


def _refused(world: dict, who: str, text: str, *args: str) -> None:
    """`who` runs the verb: one line saying `text` and what to do, and no transaction sent."""
    w3, address = world["chain"].w3, world["accounts"][who]
    nonce = w3.eth.get_transaction_count(address)
    line = _error(_here(world["users"][who], *args))
    assert text in line, line
    assert w3.eth.get_transaction_count(address) == nonce


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

    assert "not a loop program; use metamodel, scores or values" in _error(u["keeper"].run("loop", "post", "1", "weights"))
    task_id = u["keeper"].json("loop", "post", "1", "metamodel")["task_id"]
    assert "task not done; finalize a claim first" in _error(u["stranger"].run("loop", "record", "1", "metamodel"))
    # a solver claims the program it rebuilds from the chain, as the daemons do
    from verifier.engine.trace import Trace
    from verifier.market.loop_client import LoopClient

    solver = world["chain"].with_key(anvil.keys[SOLVER_KEY])
    world["chain"].send(world["chain"].contract("Token", world["d"].addresses["Token"]).functions.mint(solver.account, 10**4 * TOKEN), "mint")
    court = Court(solver, world["d"])
    solver.send(court.token.functions.approve(court.tasks.address, 2**256 - 1), "approve")
    with Trace(LoopClient.at(solver, out["loop"], world["d"].block).program(1, 0)) as tr:
        claim = court.claim(task_id, tr.run())
    anvil.advance(2 * DAY + 1)
    solver.send(court.tasks.functions.finalize(claim), "finalize")
    assert u["stranger"].json("loop", "record", "1", "metamodel")["values"] == [30]
    assert u["stranger"].json("loop", "show", "1")["period"]["metamodel"] == 30
    assert "result already recorded" in _error(u["stranger"].run("loop", "record", "1", "metamodel"))
    assert "trade_at not reached" in _error(u["stranger"].run("loop", "trade", "1"))
    assert "there is no period 9" in _error(u["stranger"].run("loop", "show", "9"))


def _npz(world: dict, name: str, features, labels=None) -> str:  # noqa: ANN001
    path = world["root"] / f"{name}.npz"
    arrays = {"features": np.asarray(features)} | ({} if labels is None else {"labels": np.asarray(labels)})
    np.savez(path, **arrays)
    return str(path)


def test_the_data_side_from_the_command_line(world):
    """A loop deployed with a data side: a provider publishes two datasets from .npz files,
    stakes, withdraws and joins period 1 with both; a modeler names them; after the close anyone
    posts the data values, a solver claims them and anyone records them; `loop show` shows the
    slots, the active ones and their values. Every bad input is refused in one line, sending
    nothing."""
    from verifier.app.demo_loop import travel_to
    from verifier.engine.trace import Trace
    from verifier.market.loop_client import LoopClient

    u, chain, pool = world["users"], world["chain"], world["pool"].address
    deployments = world["home"] / "deployments.json"
    before = deployments.read_text()
    shape = ("--datasets", "2", "--features", "2", "--dataset-rows", "4", "--k", "2")
    assert "data shape outside the market's limits" in _error(_here(u["keeper"], "loop", "deploy", "--pool", pool, "--datasets", "9"))
    assert "a rate outside the protocol's bounds" in _error(_here(u["keeper"], "loop", "deploy", "--pool", pool, *shape, "--data-slash-bps", "1001"))
    assert "data_share_bps is negative" in _error(_here(u["keeper"], "loop", "deploy", "--pool", pool, *shape, "--data-share-bps", "-1"))
    assert deployments.read_text() == before
    out = u["keeper"].json("loop", "deploy", "--pool", pool, *shape, "--data-share-bps", "2000", "--data-slash-bps", "500")
    shown = _json(u["stranger"], "loop", "show")
    assert shown["loop"] == out["loop"] and shown["datasets"] == 0
    assert {k: shown["terms"][k] for k in ("datasets", "features", "dataset_rows", "k", "data_share_bps", "data_slash_bps")} == {
        "datasets": 2, "features": 2, "dataset_rows": 4, "k": 2, "data_share_bps": 2_000, "data_slash_bps": 500}  # fmt: skip
    assert "2 dataset slots of 4 rows x 2 features, k 2; share 20% of gains, slash 5%" in _text(_here(u["stranger"], "loop", "show"))
    assert "no datasets yet" in _ok(_here(u["stranger"], "loop", "data", "list"))

    # publish: the file's shape and labels are checked before anything is sent
    down = _npz(world, "down", np.zeros((4, 2), np.int64), np.full(4, -1))  # int64 values in int8's range
    up = _npz(world, "up", np.full((4, 2), 3, np.int8), np.ones(4, np.int8))
    wide = _npz(world, "wide", np.zeros((4, 3), np.int8), np.ones(4, np.int8))
    zeros = _npz(world, "zeros", np.zeros((4, 2), np.int8), np.zeros(4, np.int8))
    unlabelled = _npz(world, "unlabelled", np.zeros((4, 2), np.int8))
    _refused(world, "provider", "features [4, 2] and labels [4]", "loop", "data", "publish", wide, "--stake", "100")
    _refused(world, "provider", "labels must be -1 or 1", "loop", "data", "publish", zeros, "--stake", "100")
    _refused(world, "provider", "needs arrays named 'features' [R, F] and 'labels' [R]", "loop", "data", "publish", unlabelled, "--stake", "100")
    # as its own process once: the verb a provider runs
    assert u["provider"].json("loop", "data", "publish", down, "--stake", "100") == {"dataset_id": 1, "rows": 4, "features": 2, "stake": 100 * TOKEN}
    assert _json(u["provider"], "loop", "data", "publish", up, "--stake", "100")["dataset_id"] == 2
    listed = _json(u["stranger"], "loop", "data", "list")
    assert [(d["dataset_id"], d["owner"], d["stake"], d["reserved"]) for d in listed] == [(i, world["accounts"]["provider"], 100 * TOKEN, 0) for i in (1, 2)]
    _refused(world, "stranger", "there is no dataset 9 on this loop (it has 2)", "loop", "data", "show", "9")

    # stake and withdraw: the owner's, up to the free stake
    _refused(world, "stranger", f"dataset 1 is owned by {world['accounts']['provider']}", "loop", "data", "stake", "1", "10")
    _refused(world, "provider", "there is no dataset 9", "loop", "data", "stake", "9", "10")
    assert "it holds 110 BOND" in _ok(_here(u["provider"], "loop", "data", "stake", "1", "10"))
    _refused(world, "provider", "withdraw at most that", "loop", "data", "withdraw", "1", "111")
    _refused(world, "stranger", "owned by", "loop", "data", "withdraw", "1", "1")
    assert "it holds 100 BOND" in _ok(_here(u["provider"], "loop", "data", "withdraw", "1", "10"))
    assert _json(u["stranger"], "loop", "data", "show", "1")["stake"] == 100 * TOKEN

    # a model names its datasets; only published ones
    _refused(world, "modeler", "dataset 9 is not published on this loop", "loop", "register", "--stake", "100", "--dataset", "1", "--dataset", "9")
    model = _json(u["modeler"], "loop", "register", "--stake", "100", "--dataset", "1", "--dataset", "2")
    assert model["datasets"] == [1, 2]
    _ok(_here(u["depositor"], "loop", "deposit", "10000"))
    assert _json(u["keeper"], "loop", "open")["period_id"] == 1

    # join: the owner's, with min_stake to the free stake, before the commit deadline
    _refused(world, "stranger", "owned by", "loop", "data", "join", "1", "1", "--stake", "50")
    _refused(world, "provider", "got 5 BOND", "loop", "data", "join", "1", "1", "--stake", "5")
    _refused(world, "provider", "there is no period 2", "loop", "data", "join", "2", "1")
    assert _json(u["provider"], "loop", "data", "join", "1", "1", "--stake", "50") == {"period_id": 1, "dataset_id": 1, "slot": 0, "amount": 50 * TOKEN}
    _refused(world, "provider", "already joined period 1", "loop", "data", "join", "1", "1")
    _ok(_here(u["provider"], "loop", "data", "join", "1", "2"))  # all its free stake
    assert _json(u["stranger"], "loop", "show", "1")["data_slots"] == [
        {"dataset": 1, "amount": 50 * TOKEN, "active": False, "value": None},
        {"dataset": 2, "amount": 100 * TOKEN, "active": False, "value": None},
    ]
    mid = str(model["model_id"])
    _ok(_here(u["modeler"], "loop", "commit", "1", mid, "30", "--stake", "50"))
    sch = LoopClient.at(chain, out["loop"], world["d"].block).schedule(1)
    travel_to(chain, sch.commit_deadline)
    _refused(world, "provider", "commit deadline passed", "loop", "data", "join", "1", "1")
    _ok(_here(u["modeler"], "loop", "reveal", "1", mid, "30"))
    shown = _json(u["stranger"], "loop", "show", "1")
    assert [s["active"] for s in shown["data_slots"]] == [True, True] and shown["period"]["active"] == 2

    # the period closes with a label: the asset rises between the entry and the exit
    travel_to(chain, sch.trade_at)
    _refused(world, "keeper", "position is not closed; post its data values after `bisectml loop close 1`", "loop", "post", "1", "values")
    _ok(_here(u["keeper"], "loop", "trade", "1"))
    chain.send(world["pool"].functions.swap(world["token"].address, 10**6 * TOKEN, 0, chain.account), "the asset rises")
    travel_to(chain, sch.end)
    _ok(_here(u["keeper"], "loop", "close", "1"))
    assert _json(u["stranger"], "loop", "show", "1")["period"]["label"] == 1

    _refused(world, "stranger", "has no data values task; post it first (`bisectml loop post 1 values`)", "loop", "record", "1", "values")
    task_id = _json(u["keeper"], "loop", "post", "1", "values")["task_id"]
    _refused(world, "stranger", "task not done; finalize a claim first", "loop", "record", "1", "values")
    solver = chain.with_key(world["anvil"].keys[SOLVER_KEY])
    court = Court(solver, world["d"])
    if int(court.token.functions.allowance(solver.account, court.tasks.address).call()) == 0:
        chain.send(world["token"].functions.mint(solver.account, 10**4 * TOKEN), "mint")
        solver.send(court.token.functions.approve(court.tasks.address, 2**256 - 1), "approve")
    with Trace(LoopClient.at(solver, out["loop"], world["d"].block).program(1, 2)) as tr:
        claim = court.claim(task_id, tr.run())
    world["anvil"].advance(2 * DAY + 1)
    solver.send(court.tasks.functions.finalize(claim), "finalize")
    values = _json(u["stranger"], "loop", "record", "1", "values")["values"]
    assert len(values) == 2 and values[1] > 0 > values[0]  # the rows that said it would rise are worth something
    shown = _json(u["stranger"], "loop", "show", "1")
    assert [s["value"] for s in shown["data_slots"]] == values and shown["period"]["recorded"] & 4
    assert f"dataset 2, 100 BOND, active, value {values[1]}" in _text(_here(u["stranger"], "loop", "show", "1"))
