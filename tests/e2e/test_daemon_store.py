"""The daemons' write-ahead sender and store, in-process against anvil: each way a send can be
cut short by a crash is reconciled without sending anything twice, and a doomed call is never
recorded nor broadcast."""

from __future__ import annotations

import io
import json

import pytest

from verifier.chain import Chain
from verifier.daemon import (
    ABANDONED,
    BROADCAST,
    CONFIRMED,
    DROPPED,
    Backoff,
    JsonLog,
    Reverted,
    Sender,
    Store,
    is_transport_error,
    move_key,
)
from verifier.game import GameState, Level, Outcome, Role

KEY = 9  # an anvil key no other test's daemons use
OTHER = 8


@pytest.fixture
def rig(anvil, tmp_path):  # noqa: ANN201
    owner = Chain.connect(anvil.url, key=anvil.keys[0])
    token = owner.deploy("Token")
    me = owner.with_key(anvil.keys[KEY])
    other = owner.with_key(anvil.keys[OTHER])
    owner.send(token.functions.mint(me.account, 1_000))
    owner.send(token.functions.mint(other.account, 1_000))
    store = Store(tmp_path / "store.sqlite")
    out = io.StringIO()
    sender = Sender(me, store, JsonLog("test", out), observe=False, stopping=lambda: 0)
    yield me, other, token, store, sender, out
    store.close()


def _record(sender: Sender, key: str, fn, nonce: int | None = None) -> int:  # noqa: ANN001
    """What a crash right after recording leaves behind: a signed, recorded, unsent transaction."""
    w3, acct = sender.w3, sender.chain.account
    nonce = w3.eth.get_transaction_count(acct, "pending") if nonce is None else nonce
    built, tx_hash, raw = sender.sign(fn, nonce, 200_000)
    return sender.store.record(key, 1, fn.fn_name, built["to"], built["data"], nonce, tx_hash, raw)


def _statuses(store: Store, key: str) -> list[str]:
    return [a.status for a in store.attempts(key)]


def test_send__same_key_twice__sent_once(rig) -> None:
    me, other, token, store, sender, _ = rig
    n0 = me.w3.eth.get_transaction_count(me.account)
    assert sender.send("k", token.functions.transfer(other.account, 1)) is not None
    assert sender.send("k", token.functions.transfer(other.account, 1)) is None
    assert me.w3.eth.get_transaction_count(me.account) == n0 + 1
    assert _statuses(store, "k") == [CONFIRMED]
    assert sender.done("k")


def test_send__doomed_call__raises_reverted_records_and_sends_nothing(rig) -> None:
    me, other, token, store, sender, _ = rig
    n0 = me.w3.eth.get_transaction_count(me.account)
    with pytest.raises(Reverted) as e:
        sender.send("too-much", token.functions.transfer(other.account, 10**30))
    assert "would revert" in str(e.value)
    assert store.attempts("too-much") == []
    assert me.w3.eth.get_transaction_count(me.account) == n0


def test_send__observe__logs_would_send_and_sends_nothing(rig) -> None:
    me, other, token, store, sender, out = rig
    sender.observe = True
    n0 = me.w3.eth.get_transaction_count(me.account)
    assert sender.send("obs", token.functions.transfer(other.account, 1)) is None
    assert store.attempts("obs") == [] and me.w3.eth.get_transaction_count(me.account) == n0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any(r["event"] == "would_send" and r["key"] == "obs" and r["dry_run"] == "ok" for r in lines)


def test_reconcile__recorded_not_broadcast__rebroadcast_once(rig) -> None:
    me, other, token, store, sender, _ = rig
    n0 = me.w3.eth.get_transaction_count(me.account)
    _record(sender, "r", token.functions.transfer(other.account, 7))
    sender.reconcile()
    assert _statuses(store, "r") == [CONFIRMED] and sender.done("r")
    assert me.w3.eth.get_transaction_count(me.account) == n0 + 1
    sender.reconcile()  # nothing left to do
    assert sender.send("r", token.functions.transfer(other.account, 7)) is None
    assert me.w3.eth.get_transaction_count(me.account) == n0 + 1


def test_reconcile__broadcast_receipt_not_recorded__found_not_resent(rig) -> None:
    me, other, token, store, sender, _ = rig
    row = _record(sender, "b", token.functions.transfer(other.account, 3))
    raw = next(a.raw for a in store.attempts("b"))
    me.w3.eth.send_raw_transaction(raw)  # the crash came after the broadcast
    store.mark(row, BROADCAST)
    n1 = me.w3.eth.get_transaction_count(me.account)
    sender.reconcile()
    assert _statuses(store, "b") == [CONFIRMED]
    assert me.w3.eth.get_transaction_count(me.account) == n1


def test_reconcile__stale_move__abandoned_and_its_nonce_reused(rig) -> None:
    me, other, token, store, sender, _ = rig
    other.send(token.functions.approve(me.account, 5))
    _record(sender, "s", token.functions.transferFrom(other.account, me.account, 5))
    other.send(token.functions.approve(me.account, 0))  # the state moved: the move is doomed
    n0 = me.w3.eth.get_transaction_count(me.account)
    sender.reconcile()
    assert _statuses(store, "s") == [ABANDONED]
    assert me.w3.eth.get_transaction_count(me.account) == n0  # never broadcast
    sender.send("next", token.functions.transfer(other.account, 1))
    assert me.w3.eth.get_transaction_count(me.account) == n0 + 1  # the nonce was free


def test_reconcile__nonce_taken_by_another_tx__dropped_and_key_retryable(rig) -> None:
    me, other, token, store, sender, _ = rig
    nonce = me.w3.eth.get_transaction_count(me.account, "pending")
    _record(sender, "d", token.functions.transfer(other.account, 2), nonce)
    _, _, raw = sender.sign(token.functions.transfer(other.account, 4), nonce, 200_000)
    tx = me.w3.eth.send_raw_transaction(raw)  # something else used the nonce
    me.w3.eth.wait_for_transaction_receipt(tx, timeout=30)  # mined before the daemon looks
    sender.reconcile()
    assert _statuses(store, "d") == [DROPPED]
    assert not sender.done("d")
    assert sender.send("d", token.functions.transfer(other.account, 2)) is not None
    assert _statuses(store, "d") == [DROPPED, CONFIRMED]


def test_store__bound_to_one_chain_account_and_deployment(tmp_path) -> None:
    from verifier.daemon import DaemonError

    s = Store(tmp_path / "s.sqlite")
    s.bind(chain_id="1", account="0xa")
    s.bind(chain_id="1", account="0xa")
    with pytest.raises(DaemonError) as e:
        s.bind(chain_id="1", account="0xb")
    assert "--data-dir" in str(e.value)
    s.close_item("task", 3, "done")
    assert s.closed("task") == {3}
    s.close()


def test_backoff__grows_and_is_bounded() -> None:
    b = Backoff(initial=0.5, maximum=30.0)
    waits = [b.next() for _ in range(12)]
    assert waits[0] <= 0.5 * 1.25 and max(waits) <= 30.0 * 1.25
    assert waits[-1] >= 30.0 * 0.75
    b.reset()
    assert b.next() <= 0.5 * 1.25


def test_transport_errors__told_from_reverts() -> None:
    import requests

    try:
        try:
            raise requests.exceptions.ConnectionError("refused")
        except requests.exceptions.ConnectionError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as e:
        assert is_transport_error(e)
    assert not is_transport_error(Reverted("game: not your turn"))


def test_move_key__one_key_per_state_and_function() -> None:
    base = dict(solver="a", challenger="b", graph_root=b"", steps=12, n_nodes=5, n_slots=10, arity=4,
                level=Level.STEP, turn=Role.SOLVER, outcome=Outcome.PENDING, lo=0, hi=12, lo_value=b"", hi_value=b"",
                reveal_hash=b"", step=0, node=0, desc_hash=b"", pre_slots_root=b"", out_header=b"", out_data_root=b"",
                cur=b"", height=0, index=0, inputs_hash=b"", elem_index=0, elem_value=0, terms=0, top_known=False,
                clock_solver=1, clock_challenger=1, turn_start=0)  # fmt: skip
    s = GameState(**base)
    keys = {
        move_key(1, s, "reveal"),
        move_key(1, GameState(**{**base, "turn": Role.CHALLENGER}), "pick"),
        move_key(1, GameState(**{**base, "lo": 6}), "reveal"),
        move_key(1, GameState(**{**base, "level": Level.TERM, "top_known": True}), "reveal"),
        move_key(2, s, "reveal"),
    }
    assert len(keys) == 5
    assert move_key(1, s, "reveal") == move_key(1, GameState(**base), "reveal")


def test_isolate__one_failing_item_never_stops_the_others(tmp_path) -> None:
    from verifier.daemon import Config, Daemon

    out = io.StringIO()
    d = Daemon(Config(rpc_url="http://127.0.0.1:9", data_dir=tmp_path, programs=[]), stream=out)
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise ValueError("a bug in one game")

    def fine() -> None:
        ran.append("fine")

    d.isolate("game", 1, broken)
    d.isolate("game", 2, fine)
    d.isolate("game", 1, broken)  # backing off: not retried at once
    d.isolate("game", 2, fine)
    assert ran == ["broken", "fine", "fine"]
    failed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["item"] for r in failed if r["event"] == "item_failed"] == ["game:1"]
    assert "a bug in one game" in failed[0]["error"] and failed[0]["retry_in"] > 0
    d.item_failures[("game", 1)] = (1, 0.0)  # the back-off has passed
    d.isolate("game", 1, broken)
    assert ran[-1] == "broken" and d.item_failures[("game", 1)][0] == 2
    # a lost race is not a failure: logged, no back-off
    d.isolate("game", 3, lambda: (_ for _ in ()).throw(Reverted("game: not your turn")))
    assert ("game", 3) not in d.item_failures
