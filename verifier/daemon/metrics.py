"""Prometheus metrics of a daemon (`--metrics HOST:PORT`): what it sent and spent, the games it
won and lost, RPC errors, and how far behind the chain it is. Counters are fed from the daemon's
structured log (every event it logs is counted), gauges by the tick loop; each daemon has its
own registry, so several can run in one process."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from verifier.daemon.records import DaemonError


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:9101' -> (host, port); the host must be an IP address."""
    host, sep, port = text.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
        number = int(port)
        if not sep or not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        raise DaemonError(f"--metrics '{text}' is not HOST:PORT; give an address like 127.0.0.1:9101.") from None
    return host.strip("[]"), number


class Metrics:
    def __init__(self, daemon: str) -> None:
        self.daemon = daemon
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("bisectml_events", "Events the daemon logged, by name.", ["event"], registry=r)
        self.transactions = Counter(
            "bisectml_transactions", "Transactions mined, by function and status.", ["function", "status"], registry=r
        )
        self.moves = Counter("bisectml_moves", "Game moves mined (dissections, picks, reveals, proofs).", registry=r)
        self.gas = Counter("bisectml_gas_used", "Gas used by the daemon's mined transactions.", registry=r)
        self.games = Counter("bisectml_games", "Games that ended, by outcome for this daemon.", ["outcome"], registry=r)
        self.rpc_errors = Counter("bisectml_rpc_errors", "Ticks that failed on the node (transport or RPC).", registry=r)
        self.open_items = Gauge("bisectml_open_items", "Items the daemon is following, by kind.", ["kind"], registry=r)
        self.lag = Gauge("bisectml_chain_lag_seconds", "Wall time minus the latest block's timestamp.", registry=r)
        self.head = Gauge("bisectml_chain_head", "The latest block number the daemon saw.", registry=r)
        self.last_tick = Gauge("bisectml_last_tick_timestamp_seconds", "When the last tick finished (Unix time).", registry=r)
        self.bond = Gauge("bisectml_bond_balance", "The account's BOND, in base units.", registry=r)
        self.ether = Gauge("bisectml_ether_balance", "The account's ether, in wei.", registry=r)
        self._server: Any = None

    def serve(self, listen: str) -> tuple[str, int]:
        host, port = parse_listen(listen)
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            raise DaemonError(f"cannot serve metrics on {listen}: {e.strerror}; choose a free port.") from None
        self._server = server
        return host, int(server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def observe(self, event: str, data: dict[str, Any]) -> None:
        """Count a logged event (the JsonLog hook)."""
        self.events.labels(event=event).inc()
        if event == "sent":
            self.transactions.labels(function=str(data.get("function", "")), status="ok" if data.get("ok") else "reverted").inc()
            self.gas.inc(int(data.get("gas", 0)))
            if "game" in data:
                self.moves.inc()
        elif event in ("game_won", "game_lost"):
            self.games.labels(outcome=event.removeprefix("game_")).inc()
        elif event == "rpc_error":
            self.rpc_errors.inc()

    def tick(self, head: int, head_time: int, open_items: dict[str, set[int]] | None) -> None:
        self.head.set(head)
        self.lag.set(max(0.0, time.time() - head_time))
        for kind, items in (open_items or {}).items():
            self.open_items.labels(kind=kind).set(len(items))
        self.last_tick.set(time.time())

    def balances(self, bond: int, ether: int) -> None:
        self.bond.set(bond)
        self.ether.set(ether)
