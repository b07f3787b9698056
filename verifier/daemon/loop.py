"""Daemon machinery shared by the solver and the challenger watchtower.

Modelled on op-challenger and lnd's watchtower:

- a tick loop that re-derives everything from the chain on every tick (tasks, claims,
  challenges and games through the contracts' views and events); the only memory kept
  between ticks is a cursor over ids and the set of ids that are finished for good;
- an SQLite store (WAL) that records every transaction *before* it is broadcast, signed, with
  its nonce and hash, under a key that names the move (for a game move: game id, level,
  range, index, function); a key that has been sent successfully is never sent again, and on
  start a recorded-but-unconfirmed transaction is reconciled against the chain (found,
  re-broadcast byte for byte, or abandoned if it would now revert) before anything else;
- dry-run before every send, and losing a race (the state moved under us) is an ordinary
  outcome: the next tick re-derives;
- a transaction still unmined after `--bump-after` seconds is replaced at its nonce with fees
  raised by at least 12.5% and to what the chain asks now, up to `--max-fee-gwei` (an alert
  says when the cap stops it): a fee spike must not run an honest player's clock out;
- bounded exponential back-off on RPC errors, and per-item isolation: one game's (or task's)
  failure is logged and retried later with its own back-off, never stopping the others;
- structured JSON-lines logs, an observe-only mode that logs what it would send, clean
  shutdown on SIGINT/SIGTERM (the transaction in flight is finished; a second signal abandons
  it, and the store reconciles it on the next start), and a lock so a data directory is served
  by one process at a time (start and stop are idempotent);
- a program registry: the daemon serves only tasks whose on-chain program id is one of its
  programs (the same step graph, initial state and data with another step count counts too),
  and keeps each program's trace, resumable, under its data directory.

`BISECTML_FAILPOINT=<point>:<n>` (tests only) kills the process with SIGKILL the n-th time it
passes `<point>`: `recorded` (a transaction is recorded, not yet broadcast), `broadcast`
(broadcast, its receipt not yet recorded) or, in the solver, `committed` (a claim's commit is
confirmed, its reveal not yet sent).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from verifier.court.chain import Chain, ChainError, Deployment
from verifier.court.game import GameState, Move, Outcome, Player, Role
from verifier.court.play import PROOF_LEVELS, Court, whose_move
from verifier.daemon.metrics import Metrics, parse_listen
from verifier.daemon.records import (
    MAX_UINT,
    REORG_DEPTH,
    DaemonError,
    JsonLog,
    Reverted,
    TaskRec,
    View,
)
from verifier.daemon.registry import ProgramsByCid, Registry
from verifier.daemon.sender import Backoff, Sender, is_transport_error
from verifier.daemon.store import Store, move_key
from verifier.engine.program import Program

IDLE_TICK = 5.0  # seconds between full ticks while no block arrives and no work is under way
BALANCE_EVERY = 30.0  # seconds between reads of the account's balances for the metrics


# -- the daemon -----------------------------------------------------------------------------------


@dataclass
class Config:
    rpc_url: str
    data_dir: Path
    programs: list[str]
    key_file: str | None = None
    deployment: Path | None = None
    observe: bool = False
    poll: float = 1.0
    min_reward: int = 0
    # decline tasks whose challenger bond is below this: a small bond makes a swarm of challenges
    # against the solver cheap (docs/SPEC.md 7.9); the market's tasks already have a floor
    min_challenger_bond: int = 0
    cheat: str | None = None
    trace_budget: float = 5.0  # seconds of trace computation per tick, after the urgent work
    proof_grace: int = 30  # chain seconds an honest solver waits before sending a proof itself
    max_ticks: int = 0  # stop after this many ticks (0: run until signalled); for tests
    market: bool = True  # also serve the market's tasks (their programs are rebuilt from the chain)
    content_dir: Path | None = None  # where datasets and round features are found or cached (default $BISECTML_HOME/content)
    ipfs_api: str | None = None  # IPFS node RPC API to fetch content from (None: BISECTML_IPFS_API, if set)
    ipfs_gateway: str | None = None  # IPFS trustless gateway to fetch content from (None: BISECTML_IPFS_GATEWAY)
    bump_after: float = 60.0  # seconds a transaction may stay pending before it is re-sent with higher fees
    max_fee_gwei: float | None = None  # never bid more per gas than this (None: no cap)
    address: str | None = None  # with observe and no key: the account to watch as
    metrics: str | None = None  # HOST:PORT to serve Prometheus metrics on (None: no endpoint)


class Daemon:
    """The tick loop; subclasses implement `tick`."""

    name = "daemon"
    # what this daemon cannot do without BOND (it refuses to start with none), or "" if nothing
    bond_needed = ""

    def __init__(self, cfg: Config, stream: TextIO | None = None) -> None:
        self.cfg = cfg
        self.log = JsonLog(self.name, stream)
        self.signals = 0
        self.item_failures: dict[tuple[str, int], tuple[int, float]] = {}
        self.store: Store | None = None
        self._lock: TextIO | None = None
        self.metrics: Metrics | None = None
        self._balances_at = 0.0

    # -- start-up: everything that can refuse is checked before the data dir is touched --------

    def prepare(self) -> None:
        cfg = self.cfg
        if cfg.address is not None and not cfg.observe:
            raise DaemonError("--address only watches; add --observe, or give a key to send with.")
        if cfg.metrics is not None:
            parse_listen(cfg.metrics)
        try:
            self.chain = Chain.connect(cfg.rpc_url, key_file=cfg.key_file, address=cfg.address)
        except ChainError as e:
            raise DaemonError(str(e)) from None
        w3 = self.chain.w3
        self.me = self.chain.account
        if not cfg.observe and w3.eth.get_balance(self.me) == 0:
            raise DaemonError(f"the wallet {self.me} has no ether for gas; fund it, or run with --observe.")
        try:
            deployment = Deployment.load(self.chain.chain_id, *([cfg.deployment] if cfg.deployment else []))
            self.court = Court(self.chain, deployment)
        except ChainError as e:
            raise DaemonError(str(e)) from None
        if not w3.eth.get_code(deployment.addresses["Tasks"]):
            raise DaemonError(f"no Tasks contract at {deployment.addresses['Tasks']} on this chain; redeploy or fix --deployment.")
        if not cfg.observe and self.bond_needed and self.token_balance() == 0:
            raise DaemonError(
                f"the wallet {self.me} holds no BOND, and every {self.bond_needed} locks a bond; fund it "
                "(bisectml token transfer, or deploy --fund on a dev chain), or run with --observe."
            )
        self.registry = Registry(cfg.programs, self.log, self._programs_from_chain(deployment))

    def _programs_from_chain(self, deployment: Deployment) -> Callable[[TaskRec], Program | None]:
        """Programs not given with --program: the market's, built from the chain (when the
        deployment has a market), then any task's, fetched by the CID its poster logged."""
        from verifier.market.content import ContentError
        from verifier.market.ipfs import content_store

        try:
            store = content_store(self.cfg.content_dir, self.cfg.ipfs_api, self.cfg.ipfs_gateway)
        except ContentError as e:  # a malformed IPFS URL refuses the start, like a bad key
            raise DaemonError(str(e)) from None
        self.content = store
        by_cid = ProgramsByCid(self.court, store, self.log)
        sources: list[Callable[[TaskRec], Program | None]] = []
        if "Market" in deployment.addresses and self.cfg.market:
            from verifier.market.client import MarketClient, RoundPrograms

            sources.append(RoundPrograms(MarketClient(self.chain, deployment, store)).for_task)
        if "Loop" in deployment.addresses and self.cfg.market:
            from verifier.market.loop_client import LoopClient, LoopPrograms

            loop = LoopClient.at(self.chain, deployment.addresses["Loop"], deployment.block)
            sources.append(LoopPrograms(loop).for_task)
        sources.append(by_cid.for_task)

        def for_task(t: TaskRec) -> Program | None:
            for source in sources:
                p = source(t)
                if p is not None:
                    return p
            return None

        return for_task

    def acquire(self) -> bool:
        """Take the data directory's lock; False if another process holds it."""
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.cfg.data_dir / "daemon.lock", "a+", encoding="utf-8")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            return False
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock
        return True

    def release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.seek(0)
                self._lock.truncate()
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def open(self) -> None:
        d = self.cfg.data_dir
        self.log.open_file(d / "daemon.jsonl")
        self.store = Store(d / "store.sqlite")
        self.store.bind(
            chain_id=str(self.chain.chain_id), account=self.me, tasks=self.court.tasks.address, daemon=self.name
        )
        cap = None if self.cfg.max_fee_gwei is None else int(self.cfg.max_fee_gwei * 10**9)
        self.sender = Sender(
            self.chain, self.store, self.log, self.cfg.observe, lambda: self.signals, self.cfg.bump_after, cap
        )
        self.setup()

    def setup(self) -> None:
        """Subclass hook, after the store is open."""

    def tick(self) -> bool:  # pragma: no cover - abstract
        """One pass over everything; True while work is under way that needs no new block."""
        raise NotImplementedError

    # -- running ----------------------------------------------------------------------------

    def run(self) -> int:
        """Start, loop until signalled, stop cleanly. Exit codes: 0 stopped, 2 refused."""
        self.prepare()
        if not self.acquire():
            pid = read_pid(self.cfg.data_dir)
            self.log("already_running", pid=pid, data_dir=str(self.cfg.data_dir))
            return 0
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.open()
            if self.cfg.metrics is not None:
                self.metrics = Metrics(self.name)
                host, port = self.metrics.serve(self.cfg.metrics)
                self.log.observers.append(self.metrics.observe)
                self.log("metrics_serving", url=f"http://{host}:{port}/metrics")
            self.log(
                "started", account=self.me, rpc=self.cfg.rpc_url, tasks=self.court.tasks.address,
                observe=self.cfg.observe, cheat=self.cfg.cheat, programs=self.registry.ids,
            )  # fmt: skip
            self.loop()
            return 0
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            if self.store is not None:
                self.log("stopped", store=self.store.summary())
                self.store.close()
            self.log.close()
            if self.metrics is not None:
                self.metrics.close()
            self.release()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.signals += 1
        self.log("signal", signal=signal.Signals(signum).name, count=self.signals)

    def loop(self) -> None:
        backoff = Backoff()
        ticks = 0
        last_head, last_full, busy = -1, 0.0, True
        while not self.signals:
            started = time.monotonic()
            try:
                self.sender.reconcile()  # before anything else, on every tick
                # Nothing on chain changes between blocks (not even the clock the contracts
                # read), so a tick without a new block is skipped unless work is under way.
                head = int(self.chain.w3.eth.block_number)
                if head != last_head or busy or self.item_failures or started - last_full >= IDLE_TICK:
                    busy = bool(self.tick())
                    last_head, last_full = head, started
                if self.metrics is not None:
                    self.update_metrics(head)
                backoff.reset()
                wait = self.cfg.poll - (time.monotonic() - started)
            except Exception as e:  # noqa: BLE001 - the loop outlives any one failure
                wait = backoff.next()
                event = "rpc_error" if is_transport_error(e) or isinstance(e, ChainError) else "tick_failed"
                self.log(
                    event, level="warn" if event == "rpc_error" else "error", error=_one_line(e), where=_where(e),
                    retry_in=round(wait, 2), failures=backoff.failures,
                )  # fmt: skip
            ticks += 1
            if self.cfg.max_ticks and ticks >= self.cfg.max_ticks:
                break
            self.sleep(wait)

    def update_metrics(self, head: int) -> None:
        assert self.metrics is not None
        block = self.chain.w3.eth.get_block(head)
        self.metrics.tick(head, int(block["timestamp"]), getattr(self, "open_items", None))
        if time.monotonic() - self._balances_at >= BALANCE_EVERY:
            self._balances_at = time.monotonic()
            self.metrics.balances(self.token_balance(), int(self.chain.w3.eth.get_balance(self.me)))

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + max(0.0, seconds)
        while not self.signals and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    # -- items: ids found in events, looked at every tick until closed ------------------------------

    def watch(self, *kinds: str) -> None:
        """Track ids of these kinds ("task", "claim", ..): open ones, and those closed for good."""
        assert self.store is not None
        self.open_items: dict[str, set[int]] = {k: set() for k in kinds}
        self.closed_items = {k: self.store.closed(k) for k in kinds}
        self.block_cursor = 0

    def found(self, kind: str, ident: int) -> None:
        if ident not in self.closed_items[kind]:
            self.open_items[kind].add(ident)

    def close(self, kind: str, ident: int, why: str, persist: bool = True) -> None:
        """Stop looking at an item: for good (`persist`), or until restarted with other options."""
        assert self.store is not None
        if persist:
            self.store.close_item(kind, ident, why)
        self.closed_items[kind].add(ident)
        self.open_items[kind].discard(ident)

    def scan(self, *queries: tuple[Any, dict[str, Any] | None]) -> list[list[Any]]:
        """Each (event, filters)'s logs since the last scan, re-reading REORG_DEPTH blocks."""
        head = int(self.chain.w3.eth.block_number)
        start = max(0, self.block_cursor - REORG_DEPTH)
        found = [self.court.deployment.logs(event, filters, start, head) for event, filters in queries]
        self.block_cursor = head + 1
        return found

    def isolate(self, kind: str, ident: int, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one item's work; its failure is logged and retried later with its own back-off."""
        if self.signals:
            return None
        key = (kind, ident)
        count, retry_at = self.item_failures.get(key, (0, 0.0))
        if time.monotonic() < retry_at:
            return None
        try:
            out = fn(*args)
        except Reverted as e:
            # a lost race: the state moved under us; the next tick re-derives
            self.log("race_lost", level="debug", item=f"{kind}:{ident}", reason=str(e))
            return None
        except Exception as e:
            if is_transport_error(e):
                raise
            count += 1
            delay = min(60.0, 0.5 * 2 ** (count - 1))
            self.item_failures[key] = (count, time.monotonic() + delay)
            self.log(
                "item_failed", level="error", item=f"{kind}:{ident}", error=_one_line(e), failures=count,
                retry_in=round(delay, 2), where=_where(e),
            )  # fmt: skip
            return None
        if count:
            self.item_failures.pop(key, None)
        return out

    # -- shared chain actions -----------------------------------------------------------------

    def ensure_allowance(self, amount: int) -> bool:
        """Approve the task registry to pull bonds; False while the approval is not in place."""
        token, spender = self.court.token, self.court.tasks.address
        allowance = int(token.functions.allowance(self.me, spender).call())
        if allowance >= amount:
            return True
        self.sender.send(f"approve:{spender}:{allowance}", token.functions.approve(spender, MAX_UINT))
        return int(token.functions.allowance(self.me, spender).call()) >= amount

    def token_balance(self) -> int:
        return int(self.court.token.functions.balanceOf(self.me).call())

    def play(self, view: View, game_id: int, s: GameState, role: Role, player: Player, honest: bool) -> None:
        """Send this side's next move in game `game_id`, whose state is `s` (or end the game on
        the other side's clock)."""
        court = self.court
        if s.outcome != Outcome.PENDING:
            return
        mover = whose_move(s)
        if mover != role:
            # the contract's own rule: the mover loses once more than its clock has passed
            clock = s.clock_solver if s.turn == Role.SOLVER else s.clock_challenger
            if view.now - s.turn_start > clock:
                self.sender.send(f"game:{game_id}:timeout", court.game.functions.timeout(game_id), game=game_id)
                return
            if not (role == Role.SOLVER and honest and s.level in PROOF_LEVELS):
                return
            # a proof is permissionless: an honest solver proves its own point when the
            # challenger has not within the grace period (the contract decides)
            if view.now - s.turn_start < self.cfg.proof_grace:
                return
            move = player.challenger_move(s)
        elif role == Role.SOLVER:
            move = player.solver_move(s)
        else:
            move = player.challenger_move(s, court.revealed(game_id, s))
        if move is not None:
            self.send_move(game_id, s, move)

    def send_move(self, game_id: int, s: GameState, move: Move) -> Any:
        target = self.court.game if move.target == "game" else self.court.referee
        fn = getattr(target.functions, move.function)(game_id, *move.args)
        return self.sender.send(
            move_key(game_id, s, move.function), fn, game=game_id, game_level=s.level, lo=s.lo, hi=s.hi, step=s.step, node=s.node
        )

    def settle(self, challenge_id: int, why: str) -> Any:
        fn = self.court.tasks.functions.settle(challenge_id)
        return self.sender.send(f"settle:{challenge_id}", fn, challenge=challenge_id, why=why)

    def game_over(self, game_id: int) -> tuple[int, str]:
        logs = self.court.deployment.logs(self.court.game.events.GameResolved(), {"game_id": game_id})
        if not logs:
            return 0, ""
        return int(logs[-1]["args"]["outcome"]), str(logs[-1]["args"]["reason"])


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"


def _where(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return ""
    f = tb[-1]
    return f"{Path(f.filename).name}:{f.lineno}"


# -- process control ------------------------------------------------------------------------------


def read_pid(data_dir: Path) -> int | None:
    try:
        text = (data_dir / "daemon.lock").read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def is_running(data_dir: Path) -> int | None:
    """The pid of the daemon holding `data_dir`'s lock, or None."""
    path = data_dir / "daemon.lock"
    if not path.exists():
        return None
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return read_pid(data_dir)
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def stop(data_dir: Path, timeout: float = 30.0) -> dict[str, Any]:
    """Ask the daemon serving `data_dir` to stop (SIGTERM) and wait; idempotent."""
    pid = is_running(data_dir)
    if pid is None:
        return {"running": False, "stopped": False}
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_running(data_dir) is None:
            return {"running": False, "stopped": True, "pid": pid}
        time.sleep(0.1)
    return {"running": True, "stopped": False, "pid": pid}


def status(data_dir: Path) -> dict[str, Any]:
    """The daemon's pid (if running) and what its store holds."""
    out: dict[str, Any] = {"data_dir": str(data_dir), "running": is_running(data_dir)}
    db = data_dir / "store.sqlite"
    if db.exists():
        store = Store(db)
        try:
            out |= store.summary()
            out["account"] = store.get("account")
            out["tasks"] = store.get("tasks")
        finally:
            store.close()
    return out




def main(cls: type[Daemon], cfg: Config) -> int:
    """Run a daemon class as a command: a refusal is one line on stderr and exit code 2."""
    try:
        return cls(cfg).run()
    except DaemonError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


__all__ = ["Config", "Daemon", "is_running", "main", "read_pid", "status", "stop"]
