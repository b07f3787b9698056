"""The loop's keeper (verifier/app/keeper.py) on anvil: ticked by hand while the chain's clock
moves, it makes each call of a period when it falls due and no other (open, post the programs,
the data values' too when a joined dataset is named by a revealed model, record their
finalized results, read the entry and the exit, settle, open the next), and sends nothing
twice; `bisectml loop keeper run` refuses a deployment without a loop in one line."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess

import numpy as np
import pytest
from test_cli_loop_verbs import suite_and_pool
from test_cli_market import _bisectml

from verifier.app.demo_loop import TERMS, travel_to
from verifier.court.chain import Chain, deploy_suite
from verifier.court.play import Court
from verifier.court.states import TASK_FIELDS
from verifier.daemon.loop import Config
from verifier.market import economics as econ
from verifier.market import loop as rules
from verifier.market.loop_client import LoopClient

TOKEN = 10**18
METAMODEL, SCORES, VALUES = 0, 1, 2
# the demo's terms with a data side: two dataset slots of 4 rows of 2 features
DATA_TERMS = dataclasses.replace(TERMS, datasets=2, features=2, dataset_rows=4, k=2, data_share_bps=2_000, data_slash_bps=500)
DATA_STAKE = 100 * TOKEN


def _key_file(tmp_path, name: str, key: str):  # noqa: ANN202
    path = tmp_path / f"{name}.key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


def _world(anvil, tmp_path, terms=TERMS, datasets=()) -> dict:  # noqa: ANN001
    """A loop of `terms` with a funded vault, two modelers and a solver; `datasets`: (features,
    labels) of datasets that providers (one each) publish first, which both models then name."""
    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    d, token, asset, pool = suite_and_pool(chain)
    client = LoopClient.deploy(chain, terms, token.address, d.addresses["Tasks"], asset.address, pool.address, d.block)
    d.addresses |= {"Loop": client.addresses["Loop"], "Vault": client.addresses["Vault"]}
    d.save(tmp_path / "deployments.json")
    accounts = [chain.with_key(anvil.keys[i]) for i in (1, 2, 3, 4, *range(6, 6 + len(datasets)))]
    for a in accounts:
        chain.send(token.functions.mint(a.account, 10**6 * TOKEN), "mint")
    depositor = LoopClient(accounts[0], client.addresses, d.block)
    modelers = [LoopClient(a, client.addresses, d.block) for a in accounts[1:3]]
    providers = [LoopClient(a, client.addresses, d.block) for a in accounts[4:]]
    dsets = tuple(p.publish_dataset(x, y, DATA_STAKE) for p, (x, y) in zip(providers, datasets, strict=True))
    depositor.deposit(10**5 * TOKEN)
    mids = [m.register(100 * TOKEN, dsets) for m in modelers]
    court = Court(accounts[3], d)
    accounts[3].send(court.token.functions.approve(court.tasks.address, 2**256 - 1), "approve")
    cfg = Config(rpc_url=anvil.url, data_dir=tmp_path / "keeper", programs=[],
                 key_file=str(_key_file(tmp_path, "keeper", anvil.keys[5])), deployment=tmp_path / "deployments.json",
                 poll=0.01)  # fmt: skip
    return {"chain": chain, "client": client, "modelers": modelers, "mids": mids, "court": court, "cfg": cfg,
            "pool": pool, "token": token, "anvil": anvil, "providers": providers, "datasets": dsets}  # fmt: skip


@pytest.fixture
def world(anvil, tmp_path):  # noqa: ANN201
    return _world(anvil, tmp_path)


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

    def claim(self, pid: int, kind: int) -> int:
        """A solver claims the kind's task with a run of the program it rebuilds from the chain."""
        from verifier.engine.trace import Trace

        task_id = int(self.f.task_of(pid, kind).call())
        court = self.w["court"]
        with Trace(LoopClient(court.chain, self.client.addresses, self.client.from_block).program(pid, kind)) as tr:
            return court.claim(task_id, tr.run())

    def finalize(self, claim: int) -> None:
        court = self.w["court"]
        court.chain.send(court.tasks.functions.finalize(claim), "finalize")

    def solve(self, pid: int, kind: int) -> None:
        claim = self.claim(pid, kind)
        self.anvil.advance(TERMS.window + 1)
        self.finalize(claim)

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

    def trade_and_close(self, pid: int) -> None:
        """From the reveal deadline: the metamodel posted, solved and recorded, the entry and the
        trade, then the exit, each on the keeper's tick."""
        sch = self.client.schedule(pid)
        self.tick()
        self.solve(pid, METAMODEL)
        self.tick()
        self.to(sch.trade_at)
        self.tick()
        self.to(sch.end)
        self.tick()

    def holds_what_it_owes(self) -> bool:
        return int(self.client.token.functions.balanceOf(self.client.loop.address).call()) == int(self.f.owed().call())


@pytest.fixture
def kept(world):  # noqa: ANN201
    k = Kept(world)
    try:
        yield k
    finally:
        k.close()


@pytest.fixture
def data_kept(anvil, tmp_path):  # noqa: ANN201
    """A keeper over a loop of DATA_TERMS with two datasets both models name: A's rows are all 0
    and say the asset falls, B's all 3 and say it rises."""
    rows, n = (DATA_TERMS.dataset_rows, DATA_TERMS.features), DATA_TERMS.dataset_rows
    sets = [(np.zeros(rows, np.int8), np.full(n, -1, np.int8)), (np.full(rows, 3, np.int8), np.ones(n, np.int8))]
    k = Kept(_world(anvil, tmp_path, DATA_TERMS, sets))
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


def test_keeper__values_the_joined_datasets_and_settles_as_the_rules_say(data_kept):
    """Both datasets join period 1 and both revealed models name them: once the position is
    closed the keeper posts the scores and the data values, records both once solved, and settles;
    each provider is paid or slashed exactly what verifier.market.loop.settlement says."""
    k, f, client = data_kept, data_kept.f, data_kept.client
    providers, dsets = k.w["providers"], k.w["datasets"]
    k.tick()
    for p, did in zip(providers, dsets, strict=True):
        p.join(1, did, DATA_STAKE // 2)
    k.reveal_both(1)
    assert client.period(1)["active"] == 2
    k.trade_and_close(1)
    assert client.period(1)["closed"] and client.period(1)["label"] != 0
    k.tick()  # both results are due: both posted in one tick
    assert int(f.task_of(1, SCORES).call()) != 0 and int(f.task_of(1, VALUES).call()) != 0
    claims = [k.claim(1, kind) for kind in (SCORES, VALUES)]
    k.anvil.advance(TERMS.window + 1)
    k.finalize(claims[0])
    k.tick()  # the scores recorded; no settlement without the values
    assert client.period(1)["recorded"] == 3 and client.period(1)["state"] == 1
    k.finalize(claims[1])
    k.tick()
    assert client.period(1)["recorded"] == 7
    values, scores = client.values(1), [int(v) for v in f.scores(1).call()]
    slots = client.slots(1)
    per = client.period(1)
    data_slots = client.dataset_slots(1)
    assert [did for did, _, _ in data_slots] == list(dsets)  # slots in join order: A's 0, B's 1
    entries = [econ.DatasetEntry(a, DATA_STAKE, v, act) for (_, a, act), v in zip(data_slots, values, strict=True)]
    slot_of = {did: s for s, (did, _, _) in enumerate(data_slots)}
    named = [[slot_of[did] for did in dsets] for _ in slots]  # both models name both datasets
    expected = rules.settlement([a for _, a, _ in slots], [p is not None for _, _, p in slots], scores, DATA_TERMS,
                                per["pool"], per["budget"], named=named, datasets=entries)  # fmt: skip
    token = client.token.functions
    owners = [dict(zip(dsets, providers, strict=True))[did].account for did, _, _ in data_slots]  # by slot
    wallets = [int(token.balanceOf(o).call()) for o in owners]
    k.tick()
    assert client.period(1)["state"] == 2  # settled
    paid = [int(token.balanceOf(o).call()) - w for o, w in zip(owners, wallets, strict=True)]
    slashed = [DATA_STAKE - client.dataset(did)["stake"] for did, _, _ in data_slots]
    assert paid == [max(v, 0) for v in expected.dataset_payouts]
    assert slashed == [max(-v, 0) for v in expected.dataset_payouts]
    # the rows of the dataset that matched the label (3 if it rose) earn; the other's are slashed
    up = client.period(1)["label"] > 0
    assert (expected.dataset_payouts[1] > 0 > expected.dataset_payouts[0]) == up
    assert (expected.dataset_payouts[0] > 0 > expected.dataset_payouts[1]) != up
    assert all(client.dataset(did)["reserved"] == 0 for did in dsets)
    k.tick()
    k.tick()
    assert k.sent() == [
        "loop:open:1", "loop:post:1:0:0", "loop:record:1:0", "loop:trade:1:entry", "loop:close:1",
        "loop:post:1:1:0", "loop:post:1:2:0", "loop:record:1:1", "loop:record:1:2", "loop:settle:1", "loop:open:2",
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
    k.trade_and_close(1)
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
