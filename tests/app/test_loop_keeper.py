"""The loop's keeper (verifier/app/keeper.py) on anvil: ticked by hand while the chain's clock
moves, it makes each call of a period when it falls due and no other (open, post both programs,
record their finalized results, read the entry and the exit, settle, open the next), and sends
nothing twice; `bisectml loop keeper run` refuses a deployment without a loop in one line."""

from __future__ import annotations

import io
import json
import os
import subprocess

import pytest
from test_cli_market import _bisectml

from verifier.app.demo_loop import TERMS, travel_to
from verifier.court.chain import Chain, deploy_suite
from verifier.court.play import Court
from verifier.daemon.loop import Config
from verifier.market.loop_client import LoopClient

TOKEN = 10**18
METAMODEL, SCORES = 0, 1


def _key_file(tmp_path, name: str, key: str):  # noqa: ANN202
    path = tmp_path / f"{name}.key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def world(anvil, tmp_path):  # noqa: ANN201
    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    d = deploy_suite(chain)
    token = chain.contract("Token", d.addresses["Token"])
    asset = chain.deploy("Token")
    pool = chain.deploy("Pool", token.address, asset.address)
    for t in (token, asset):
        chain.send(t.functions.mint(chain.account, 10**9 * TOKEN), "mint")
        chain.send(t.functions.approve(pool.address, 2**256 - 1), "approve")
    chain.send(pool.functions.add_liquidity(4 * 10**8 * TOKEN, 10**8 * TOKEN, 0, chain.account), "liquidity")
    client = LoopClient.deploy(chain, TERMS, token.address, d.addresses["Tasks"], asset.address, pool.address)
    d.addresses |= {"Loop": client.addresses["Loop"], "Vault": client.addresses["Vault"]}
    d.save(tmp_path / "deployments.json")
    accounts = [chain.with_key(anvil.keys[i]) for i in (1, 2, 3, 4)]
    for a in accounts:
        chain.send(token.functions.mint(a.account, 10**6 * TOKEN), "mint")
    depositor = LoopClient(accounts[0], client.addresses)
    modelers = [LoopClient(a, client.addresses) for a in accounts[1:3]]
    depositor.deposit(10**5 * TOKEN)
    mids = [m.register(100 * TOKEN) for m in modelers]
    court = Court(accounts[3], d)
    accounts[3].send(court.token.functions.approve(court.tasks.address, 2**256 - 1), "approve")
    cfg = Config(rpc_url=anvil.url, data_dir=tmp_path / "keeper", programs=[],
                 key_file=str(_key_file(tmp_path, "keeper", anvil.keys[5])), deployment=tmp_path / "deployments.json",
                 poll=0.01)  # fmt: skip
    return {"chain": chain, "client": client, "modelers": modelers, "mids": mids, "court": court, "cfg": cfg,
            "pool": pool, "token": token, "anvil": anvil}  # fmt: skip


def test_keeper__plays_a_period_on_time_and_sends_nothing_twice(world):
    from verifier.app.keeper import Keeper
    from verifier.engine.trace import Trace

    chain, client, anvil = world["chain"], world["client"], world["anvil"]
    f = client.loop.functions
    logged = io.StringIO()
    keeper = Keeper(world["cfg"], stream=logged)
    keeper.prepare()
    assert keeper.acquire()
    keeper.open()
    try:

        def to(t: int) -> None:
            # an observation of the pool one average window before `t`, as an arbitrageur leaves
            travel_to(chain, t - TERMS.average - 60)
            chain.send(world["pool"].functions.swap(world["token"].address, 10**6, 0, chain.account), "poke")
            travel_to(chain, t)

        def sent() -> list[str]:
            return [a.key for a in keeper.store.all()]

        def solve(pid: int, kind: int) -> None:
            task_id = int(f.task_of(pid, kind).call())
            court = world["court"]
            with Trace(LoopClient(court.chain, client.addresses).program(pid, kind)) as tr:
                claim = court.claim(task_id, tr.run())
            anvil.advance(TERMS.window + 1)
            court.chain.send(court.tasks.functions.finalize(claim), "finalize")

        keeper.tick()
        assert int(f.period_count().call()) == 1
        keeper.tick()  # nothing due: the period runs
        assert int(f.period_count().call()) == 1 and sent() == ["loop:open:1"]

        sch = client.schedule(1)
        for m, mid, pred in zip(world["modelers"], world["mids"], (40, -10), strict=True):
            m.commit(1, mid, pred, 50 * TOKEN)
        keeper.tick()
        assert int(f.task_of(1, METAMODEL).call()) == 0  # not before the reveal deadline
        travel_to(chain, sch.commit_deadline)
        for m, mid in zip(world["modelers"], world["mids"], strict=True):
            m.reveal(1, mid)
        travel_to(chain, sch.reveal_deadline)
        keeper.tick()
        assert int(f.task_of(1, METAMODEL).call()) != 0
        solve(1, METAMODEL)
        keeper.tick()
        assert client.period(1)["recorded"] & 1 and client.period(1)["metamodel"] == (40 * 1 - 10 * 1) // 2

        to(sch.trade_at)
        keeper.tick()
        per = client.period(1)
        assert per["traded"] and per["entry_price"] > 0 and per["spent"] > 0
        to(sch.end)
        keeper.tick()
        assert client.period(1)["closed"]
        keeper.tick()
        assert int(f.task_of(1, SCORES).call()) != 0
        solve(1, SCORES)
        keeper.tick()  # records the scores; the next tick settles
        keeper.tick()
        assert client.period(1)["state"] == 2  # settled
        keeper.tick()
        assert int(f.period_count().call()) == 2
        keys = sent()
        assert len(keys) == len(set(keys))  # each call once
        assert keys == [
            "loop:open:1", "loop:post:1:0:0", "loop:record:1:0", "loop:trade:1:entry", "loop:close:1",
            "loop:post:1:1:0", "loop:record:1:1", "loop:settle:1", "loop:open:2",
        ]  # fmt: skip
        assert int(client.token.functions.balanceOf(client.loop.address).call()) == int(f.owed().call())
        events = [json.loads(line)["event"] for line in logged.getvalue().splitlines()]
        assert not {"item_failed", "tick_failed", "rpc_error"} & set(events), events
    finally:
        keeper.store.close()
        keeper.log.close()
        keeper.release()


def test_keeper_run__a_deployment_without_a_loop__refused_in_one_line(anvil, tmp_path):
    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    deploy_suite(chain).save(tmp_path / "deployments.json")
    key = _key_file(tmp_path, "keeper", anvil.keys[5])
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISECTML_")} | {"BISECTML_HOME": str(tmp_path)}
    res = subprocess.run(
        [*_bisectml(), "loop", "keeper", "run", "--rpc-url", anvil.url, "--key-file", str(key),
         "--deployment", str(tmp_path / "deployments.json"), "--data-dir", str(tmp_path / "keeper")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip().splitlines() == [
        "error: no loop in this chain's deployment; run `bisectml loop deploy --pool ADDRESS`, or give --deployment."
    ]
    assert not (tmp_path / "keeper").exists()  # refused before the data directory is touched
