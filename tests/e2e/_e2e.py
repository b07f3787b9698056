"""End-to-end harness: a suite deployed on the session's anvil, program files, and the daemons
as separate OS processes (`python -m cli solver run ...`), each bounded in time and killed in
teardown whatever happens."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from onnx_models.toy import accumulator_program
from verifier.court.chain import Chain, deploy_suite
from verifier.daemon.records import ChallengeRec, ClaimRec, TaskRec, View
from verifier.court.play import Court, program_task_args
from verifier.court.states import (  # noqa: F401 - re-exported to the tests
    CHALLENGE_COLLECTED,
    CHALLENGE_LOST,
    CHALLENGE_OPEN,
    CHALLENGE_WON,
    CLAIM_COMMITTED,
    CLAIM_EXPIRED,
    CLAIM_FINALIZED,
    CLAIM_LIVE,
    CLAIM_REJECTED,
)
from verifier.engine.program import Program, load_program

ROOT = Path(__file__).resolve().parents[2]
TOKEN = 10**18
FUNDS = 10_000 * TOKEN
WINDOW = 172_800  # MIN_WINDOW
CLOCK = 172_800  # MIN_CLOCK: each game's chess clock and the time to reveal a commitment
REWARD = 100 * TOKEN
SOLVER_BOND = 50 * TOKEN
CHALLENGER_BOND = 260 * TOKEN  # above the protocol minimum: the daemon test posts one unit less
BURN_BPS = 5_000


def burn(bond: int) -> int:
    return (bond * BURN_BPS + 9_999) // 10_000


PRIZE = SOLVER_BOND - burn(SOLVER_BOND)  # a rejected claim's prize, shared by its winning challenges
SLASH_PAID = CHALLENGER_BOND - burn(CHALLENGER_BOND)  # paid to the solver for each game it wins


def toy_file(directory: Path, seed: int, steps: int = 12) -> Path:
    """A toy program file; each seed is another program (another id)."""
    path = directory / f"toy-{seed}-{steps}.onnx"
    if not path.exists():
        onnx.save(accumulator_program(steps=steps, seed=seed), path)
    return path


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, procs: list[Daemon] = (), every: float = 0.3) -> Any:  # type: ignore[assignment]
    """Poll `predicate` until it is truthy; fail with the daemons' last log lines otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for p in procs:
            p.check_alive()
        if time.monotonic() > deadline:
            tails = "\n".join(p.tail() for p in procs)
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(every)


@dataclass
class Suite:
    """One deployment of the contracts, seen from the poster's account (anvil key 0)."""

    anvil: Any
    tmp: Path
    chain: Chain
    court: Court
    deployment_file: Path

    def key_file(self, index: int) -> Path:
        path = self.tmp / f"key-{index}"
        if not path.exists():
            path.write_text(self.anvil.keys[index] + "\n")
            path.chmod(0o600)
            path.chmod(0o600)
        return path

    def address(self, index: int) -> str:
        return self.chain.with_key(self.anvil.keys[index]).account

    def mint(self, address: str, amount: int = FUNDS) -> None:
        self.chain.send(self.court.token.functions.mint(address, amount), "mint")

    def balance(self, address: str) -> int:
        return int(self.court.token.functions.balanceOf(address).call())

    def now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def post_task(
        self,
        program: Program,
        reward: int = REWARD,
        window: int = WINDOW,
        clock: int = CLOCK,
        arity: int = 4,
        solver_bond: int = SOLVER_BOND,
        challenger_bond: int = CHALLENGER_BOND,
        result_slots: int = 0,
    ) -> int:
        args = program_task_args(program)
        tasks = self.court.tasks
        self.chain.send(self.court.token.functions.approve(tasks.address, reward), "approve reward")
        receipt = self.chain.send(
            tasks.functions.post_task(
                args["graph_root"], args["n_nodes"], args["n_slots"], args["initial_root"], args["dataset_root"],
                args["steps"], reward, window, clock, solver_bond, challenger_bond, arity, self.now() + 30 * 86_400,
                result_slots,
            ),
            "post_task",
        )  # fmt: skip
        from web3.logs import DISCARD

        return int(tasks.events.TaskPosted().process_receipt(receipt, errors=DISCARD)[0]["args"]["task_id"])

    # reads

    def view(self) -> View:
        return View(self.court)

    def task(self, tid: int) -> TaskRec:
        return self.view().task(tid)

    def claim(self, cid: int) -> ClaimRec:
        return self.view().claim(cid)

    def challenge(self, chid: int) -> ChallengeRec:
        return self.view().challenge(chid)

    def claims(self) -> list[tuple[int, ClaimRec]]:
        n = int(self.court.tasks.functions.claim_count().call())
        v = self.view()
        return [(i, v.claim(i)) for i in range(1, n + 1)]

    def challenges(self) -> list[tuple[int, ChallengeRec]]:
        n = int(self.court.tasks.functions.challenge_count().call())
        v = self.view()
        return [(i, v.challenge(i)) for i in range(1, n + 1)]

    def events(self, contract: str, name: str, **filters: Any) -> list[Any]:
        c = getattr(self.court, contract)
        return list(getattr(c.events, name)().get_logs(from_block=0, argument_filters=filters or None))

    def nonce(self, address: str) -> int:
        return int(self.chain.w3.eth.get_transaction_count(address, "latest"))


def deploy(anvil: Any, tmp: Path, funded: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)) -> Suite:
    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    d = deploy_suite(chain)
    path = tmp / "deployments.json"
    d.save(path)
    suite = Suite(anvil, tmp, chain, Court(chain, d), path)
    suite.mint(chain.account, 100 * FUNDS)
    for i in funded:
        suite.mint(suite.address(i))
    return suite


@dataclass
class Daemon:
    """A solver or watchtower process."""

    kind: str  # "solver" or "challenger"
    suite: Suite
    key_index: int | None
    programs: list[Path]
    data_dir: Path
    cheat: str | None = None
    poll: float = 0.3
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    key_env: str | None = None  # pass the key in BISECTML_PRIVATE_KEY instead of a file
    proc: subprocess.Popen | None = None
    starts: int = 0
    nonce0: int = 0  # the account's nonce before this test's first start (anvil outlives tests)

    def argv(self) -> list[str]:
        verb = "run" if self.kind == "solver" else "watch"
        argv = [sys.executable, "-m", "cli", self.kind, verb, "--rpc-url", self.suite.anvil.url]
        argv += ["--deployment", str(self.suite.deployment_file), "--data-dir", str(self.data_dir)]
        argv += ["--poll", str(self.poll), "--proof-grace", "600"]
        if self.key_index is not None and self.key_env is None:
            argv += ["--key-file", str(self.suite.key_file(self.key_index))]
        for p in self.programs:
            argv += ["--program", str(p)]
        if self.cheat:
            argv += ["--cheat", self.cheat]
        return argv + self.extra

    @property
    def address(self) -> str:
        assert self.key_index is not None
        return self.suite.address(self.key_index)

    def start(self, env: dict[str, str] | None = None) -> Daemon:
        assert self.proc is None or self.proc.poll() is not None, "already started"
        if self.starts == 0 and self.key_index is not None:
            self.nonce0 = self.suite.nonce(self.address)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **self.env, **(env or {})}
        full_env.pop("BISECTML_PRIVATE_KEY", None)
        full_env.pop("BISECTML_FAILPOINT", None) if "BISECTML_FAILPOINT" not in (env or {}) else None
        if self.key_env is not None:
            full_env["BISECTML_PRIVATE_KEY"] = self.key_env
        out = open(self.data_dir / "stderr.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(self.argv(), cwd=ROOT, env=full_env, stdout=out, stderr=out)
        out.close()
        self.starts += 1
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() not in (None, 0, -signal.SIGKILL):
            raise AssertionError(f"{self.kind} exited with {self.proc.returncode}\n{self.tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 20) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"{self.kind} ignored SIGTERM for {timeout} s\n{self.tail()}") from None

    def logs(self) -> list[dict[str, Any]]:
        path = self.data_dir / "daemon.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut by SIGKILL
        return out

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.logs() if r.get("event") == name]

    def tail(self, n: int = 15) -> str:
        path = self.data_dir / "stderr.log"
        lines = path.read_text(errors="replace").splitlines()[-n:] if path.exists() else []
        return f"--- {self.kind} {self.data_dir.name} ---\n" + "\n".join(lines)

    def intents(self) -> list[dict[str, Any]]:
        db = self.data_dir / "store.sqlite"
        if not db.exists():
            return []
        con = sqlite3.connect(db)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("SELECT * FROM intents ORDER BY id")]
        finally:
            con.close()


class Fleet:
    """Every daemon a test creates; the fixture kills them all in teardown."""

    def __init__(self, suite: Suite, tmp: Path) -> None:
        self.suite = suite
        self.tmp = tmp
        self.daemons: list[Daemon] = []

    def __call__(self, kind: str, key_index: int | None, programs: list[Path], name: str, **kw: Any) -> Daemon:
        d = Daemon(kind, self.suite, key_index, list(programs), self.tmp / name, **kw)
        self.daemons.append(d)
        return d

    def kill_all(self) -> None:
        for d in self.daemons:
            d.kill()


@contextmanager
def running(*daemons: Daemon) -> Iterator[tuple[Daemon, ...]]:
    """Start the daemons; kill every one of them on the way out, whatever happened."""
    try:
        for d in daemons:
            d.start()
        yield daemons
    finally:
        for d in daemons:
            d.kill()


def assert_no_move_twice(suite: Suite, daemon: Daemon) -> dict[str, int]:
    """Every transaction the account sent is in the store, recorded before it was broadcast,
    and no key (a move, a claim, a settle) took effect twice; no game move ever reverted."""
    rows = daemon.intents()
    confirmed = [r for r in rows if r["status"] == "confirmed"]
    # every nonce the account used has its row, whatever the status: a daemon killed between a
    # broadcast and its receipt leaves that row "recorded" or "broadcast", and it was still
    # recorded before the transaction left
    used = set(range(daemon.nonce0, suite.nonce(daemon.address)))
    missing = sorted(used - {r["nonce"] for r in rows})
    assert not missing, f"{daemon.kind}: the account sent transactions with nonces {missing} that the store never recorded"
    assert len(confirmed) <= len(used)
    ok: dict[str, int] = {}
    for r in confirmed:
        if r["receipt_status"] == 1:
            ok[r["key"]] = ok.get(r["key"], 0) + 1
        else:
            assert not r["key"].startswith("game:"), f"{daemon.kind}: game move {r['key']} reverted on-chain"
    twice = {k: n for k, n in ok.items() if n > 1}
    assert not twice, f"{daemon.kind}: sent twice: {twice}"
    assert not [r for r in rows if r["status"] in ("recorded", "broadcast")], f"{daemon.kind}: unreconciled intents"
    return {"confirmed": len(confirmed), "rows": len(rows)}


def assert_chain_moves_unique(suite: Suite) -> int:
    """On chain: each game reveals and picks once per (level, range)."""
    seen: set[tuple] = set()
    n = 0
    for name in ("Revealed", "Picked", "ChunkRevealed", "OutputRevealed", "ElementChosen"):
        for ev in suite.events("game", name):
            a = ev["args"]
            key = (name, a["game_id"], a.get("level"), a.get("lo"), a.get("hi"), a.get("index"), a.get("step"), a.get("node"))
            assert key not in seen, f"move {key} happened twice on chain"
            seen.add(key)
            n += 1
    return n


def program(path: Path) -> Program:
    return load_program(path)
