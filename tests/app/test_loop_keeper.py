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
from test_cli_loop_verbs import suite_and_pool
from test_cli_market import _bisectml

from verifier.app.demo_loop import TERMS, travel_to
from verifier.court.chain import Chain, deploy_suite
from verifier.court.play import Court
from verifier.court.states import TASK_FIELDS
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
    d, token, asset, pool = suite_and_pool(chain)
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


class Kept:
    """The world with a keeper started in this process, ticked by hand."""

    def __init__(self, world: dict) -> None:
        from verifier.app.keeper import Keeper

        self.w = world
        self.chain, self.client, self.anvil = world["chain"], world["client"], world["anvil"]
        self.f = self.client.loop.functions
        self.logged = io.StringIO()
        self.keeper = Keeper(world["cfg"], stream=self.logged)
        self.keeper.prepare()
        assert self.keeper.acquire()
        self.keeper.open()

    def close(self) -> None:
        self.keeper.store.close()
        self.keeper.log.close()
        self.keeper.release()

    def tick(self) -> None:
        self.keeper.tick()

    def to(self, t: int) -> None:
        """To time `t`, with an observation of the pool one average window before it, as an
        arbitrageur leaves."""
        travel_to(self.chain, t - TERMS.average - 60)
        self.chain.send(self.w["pool"].functions.swap(self.w["token"].address, 10**6, 0, self.chain.account), "poke")
        travel_to(self.chain, t)

    def sent(self) -> list[str]:
        return [a.key for a in self.keeper.store.all()]

    def failures(self) -> set[str]:
        events = {json.loads(line)["event"] for line in self.logged.getvalue().splitlines()}
        return {"item_failed", "tick_failed", "rpc_error"} & events

    def solve(self, pid: int, kind: int) -> None:
        from verifier.engine.trace import Trace

        task_id = int(self.f.task_of(pid, kind).call())
        court = self.w["court"]
        with Trace(LoopClient(court.chain, self.client.addresses).program(pid, kind)) as tr:
            claim = court.claim(task_id, tr.run())
        self.anvil.advance(TERMS.window + 1)
        court.chain.send(court.tasks.functions.finalize(claim), "finalize")

    def reveal_both(self, pid: int, predictions=(40, -10)) -> None:  # noqa: ANN001
        sch = self.client.schedule(pid)
        for m, mid, pred in zip(self.w["modelers"], self.w["mids"], predictions, strict=True):
            m.commit(pid, mid, pred, 50 * TOKEN)
        self.tick()
        assert int(self.f.task_of(pid, METAMODEL).call()) == 0  # not before the reveal deadline
        travel_to(self.chain, sch.commit_deadline)
        for m, mid in zip(self.w["modelers"], self.w["mids"], strict=True):
            m.reveal(pid, mid)
        travel_to(self.chain, sch.reveal_deadline)

    def holds_what_it_owes(self) -> bool:
        return int(self.client.token.functions.balanceOf(self.client.loop.address).call()) == int(self.f.owed().call())


@pytest.fixture
def kept(world):  # noqa: ANN201
    k = Kept(world)
    try:
        yield k
    finally:
        k.close()


def test_keeper__plays_a_period_on_time_and_sends_nothing_twice(kept):
    k, f, client = kept, kept.f, kept.client
    k.tick()
    assert int(f.period_count().call()) == 1
    k.tick()  # nothing due: the period runs
    assert int(f.period_count().call()) == 1 and k.sent() == ["loop:open:1"]

    sch = client.schedule(1)
    k.reveal_both(1)
    k.tick()
    assert int(f.task_of(1, METAMODEL).call()) != 0
    k.solve(1, METAMODEL)
    k.tick()
    assert client.period(1)["recorded"] & 1 and client.period(1)["metamodel"] == (40 - 10) // 2

    k.to(sch.trade_at)
    k.tick()
    per = client.period(1)
    assert per["traded"] and per["entry_price"] > 0 and per["spent"] > 0
    k.to(sch.end)
    k.tick()
    assert client.period(1)["closed"]
    k.tick()
    assert int(f.task_of(1, SCORES).call()) != 0
    k.solve(1, SCORES)
    k.tick()  # records the scores; the next tick settles
    k.tick()
    assert client.period(1)["state"] == 2  # settled
    k.tick()
    assert int(f.period_count().call()) == 2
    keys = k.sent()
    assert keys == [
        "loop:open:1", "loop:post:1:0:0", "loop:record:1:0", "loop:trade:1:entry", "loop:close:1",
        "loop:post:1:1:0", "loop:record:1:1", "loop:settle:1", "loop:open:2",
    ]  # fmt: skip
    assert k.holds_what_it_owes() and not k.failures()


def test_keeper__scores_never_solved__voids_and_takes_the_reward_back(kept):
    """Nobody solves the scores task: the keeper posts it again when it expires unclaimed, but
    not once no claim could be final before the result deadline, and at the deadline it voids the period (the pool split
    among the revealed models, the unsolved task's reward back to the vault; SPEC 12.5)."""
    k, f, client = kept, kept.f, kept.client
    k.tick()
    sch = client.schedule(1)
    k.reveal_both(1)
    k.tick()
    k.solve(1, METAMODEL)
    k.tick()
    k.to(sch.trade_at)
    k.tick()
    k.to(sch.end)
    k.tick()
    k.tick()
    first = int(f.task_of(1, SCORES).call())
    assert first != 0
    travel_to(k.chain, int(client.tasks.functions.tasks(first).call()[TASK_FIELDS.index("deadline")]))
    k.tick()  # unclaimed past its deadline, with time left: posted again
    scores_task = int(f.task_of(1, SCORES).call())
    assert scores_task not in (0, first)
    travel_to(k.chain, sch.result_deadline - TERMS.window)
    k.tick()
    assert client.period(1)["state"] == 1  # not before the deadline
    assert int(f.task_of(1, SCORES).call()) == scores_task  # too late for a new task to be final in time
    travel_to(k.chain, sch.result_deadline)
    vault, token = client.vault.functions, client.token.functions
    owners = [m.account for m in k.w["modelers"]]
    wallets = [int(token.balanceOf(o).call()) for o in owners]
    pool = client.period(1)["pool"]
    k.tick()
    assert client.period(1)["state"] == 3  # void: the pool split between the two revealed models
    assert [int(token.balanceOf(o).call()) - w for o, w in zip(owners, wallets, strict=True)] == [pool // 2, pool - pool // 2]
    assert int(f.task_reward(1, SCORES).call()) == 0  # the unsolved task's reward back to the vault
    assert int(client.tasks.functions.tasks(scores_task).call()[-1]) == 3  # reclaimed
    assert int(token.balanceOf(client.vault.address).call()) == int(vault.owed().call())
    k.tick()
    assert int(f.period_count().call()) == 2
    assert [key for key in k.sent() if key.startswith("loop:post:1:1")] == ["loop:post:1:1:0", f"loop:post:1:1:{first}"]
    k.tick()
    assert len(k.sent()) == len(set(k.sent()))
    assert k.holds_what_it_owes() and not k.failures()


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


def test_keeper_run__as_a_process__opens_the_period_and_stops_on_sigterm(world, tmp_path):
    """The command users run: `bisectml loop keeper run` as its own process opens period 1 on
    the next tick and stops cleanly on SIGTERM, its log saying what it sent."""
    import signal
    import time

    cfg = world["cfg"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISECTML_")} | {"BISECTML_HOME": str(tmp_path)}
    cmd = [*_bisectml(), "loop", "keeper", "run", "--rpc-url", cfg.rpc_url, "--key-file", cfg.key_file,
           "--deployment", str(cfg.deployment), "--data-dir", str(cfg.data_dir), "--poll", "0.2"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while int(world["client"].loop.functions.period_count().call()) == 0:
            assert proc.poll() is None and time.monotonic() < deadline, "the keeper did not open the period"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in (cfg.data_dir / "daemon.jsonl").read_text().splitlines()]
    events = [e["event"] for e in lines]
    assert events[0] == "started" and events[-1] == "stopped"
    assert [e["key"] for e in lines if e["event"] == "sent"] == ["loop:open:1"]
