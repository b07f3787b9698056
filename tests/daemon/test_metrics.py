"""The daemons' Prometheus metrics (verifier/daemon/metrics.py): counted from the structured
log, served on loopback, refused on a bad address before anything starts."""

from __future__ import annotations

import io
import urllib.request

import pytest

from verifier.daemon.metrics import Metrics, parse_listen
from verifier.daemon.records import DaemonError, JsonLog


def test_events_from_the_log__counted_and_served() -> None:
    log = JsonLog("challenger", io.StringIO())
    m = Metrics("challenger")
    log.observers.append(m.observe)
    host, port = m.serve("127.0.0.1:0")
    try:
        log("sent", key="game:1:pick", function="pick", gas=50_000, ok=True, game=1)
        log("sent", key="challenge:3", function="challenge", gas=600_000, ok=True)
        log("sent", key="game:1:dissect", function="dissect", gas=70_000, ok=False, game=1)
        log.once("over:1", "game_won", game=1)
        log.once("over:1", "game_won", game=1)  # once per game, counted once
        log("rpc_error", level="warn", error="timeout")
        m.tick(head=42, head_time=0, open_items={"claim": {1, 2}, "challenge": {3}})
        m.balances(bond=7 * 10**18, ether=10**18)
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as page:
            text = page.read().decode()
    finally:
        m.close()
    assert 'bisectml_games_total{outcome="won"} 1.0' in text
    assert "bisectml_moves_total 2.0" in text and "bisectml_gas_used_total 720000.0" in text
    assert 'bisectml_transactions_total{function="dissect",status="reverted"} 1.0' in text
    assert "bisectml_rpc_errors_total 1.0" in text
    assert 'bisectml_open_items{kind="claim"} 2.0' in text and "bisectml_chain_head 42.0" in text
    assert "bisectml_bond_balance 7e+18" in text


@pytest.mark.parametrize("bad", ["9101", "localhost:9101", "127.0.0.1:99999", "127.0.0.1:port"])
def test_bad_listen_address__one_line(bad: str) -> None:
    with pytest.raises(DaemonError, match="is not HOST:PORT") as e:
        parse_listen(bad)
    assert "\n" not in str(e.value)


def test_port_taken__one_line() -> None:
    a, b = Metrics("solver"), Metrics("solver")
    _, port = a.serve("127.0.0.1:0")
    try:
        with pytest.raises(DaemonError, match="cannot serve metrics"):
            b.serve(f"127.0.0.1:{port}")
    finally:
        a.close()
        b.close()
