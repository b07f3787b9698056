"""The daemons' write-ahead sender and store, in-process against anvil: each way a send can be
cut short by a crash is reconciled without sending anything twice, and a doomed call is never
recorded nor broadcast."""

from __future__ import annotations

import io
import json

import pytest

from verifier.court.chain import Chain, ChainError
from verifier.daemon.records import JsonLog, Reverted
from verifier.daemon.sender import _decode, Backoff, Sender, is_transport_error
from verifier.daemon.store import ABANDONED, BROADCAST, CONFIRMED, DROPPED, Store, move_key
from verifier.court.game import GameState, Level, Outcome, Role

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


def _events(out, name: str) -> list[dict]:  # noqa: ANN001
    return [r for r in (json.loads(line) for line in out.getvalue().splitlines()) if r["event"] == name]


@pytest.fixture
def stalled(rig):  # noqa: ANN001, ANN201
    """The rig with automine off, so a sent transaction stays pending until the test mines."""
    me, other, token, store, sender, out = rig
    rpc = me.w3.provider.make_request
    sender.receipt_timeout = 0.5
    sender.bump_after = 0.0
    rpc("evm_setAutomine", [False])
    try:
        yield rig, rpc
    finally:
        rpc("evm_setAutomine", [True])
        sender.max_fee = None
        sender.reconcile()  # whatever is still pending is settled (mined) before the next test
        assert store.unfinished() == []


def _spike(me, rpc, sender, store, key: str, token, other) -> int:  # noqa: ANN001
    """Sends `key`, which stays pending; then the base fee jumps above its fee cap. Returns that cap."""
    with pytest.raises(ChainError, match="no receipt"):
        sender.send(key, token.functions.transfer(other.account, 9))
    (first,) = store.attempts(key)
    fee = _decode(first.raw)["maxFeePerGas"]
    rpc("anvil_setNextBlockBaseFeePerGas", [hex(fee * 3)])
    rpc("evm_mine", [])
    assert sender._receipt(first.tx_hash) is None  # priced out: it cannot be mined
    return fee


def test_reconcile__priced_out_by_a_fee_spike__replaced_and_mined_once(stalled) -> None:
    (me, other, token, store, sender, out), rpc = stalled
    before = token.functions.balanceOf(other.account).call()
    n0 = me.w3.eth.get_transaction_count(me.account)
    fee = _spike(me, rpc, sender, store, "spike", token, other)
    rpc("evm_setAutomine", [True])
    sender.reconcile()
    first, second = store.attempts("spike")
    assert (first.status, second.status) == (DROPPED, CONFIRMED) and sender.done("spike")
    assert second.nonce == first.nonce and second.data == first.data and second.attempt == 2
    new_fee = _decode(second.raw)["maxFeePerGas"]
    base = int(me.w3.eth.get_block("latest")["baseFeePerGas"])
    assert new_fee >= fee * 9 // 8 and new_fee >= base
    assert token.functions.balanceOf(other.account).call() == before + 9  # paid once
    assert me.w3.eth.get_transaction_count(me.account) == n0 + 1
    (bumped,) = _events(out, "fee_bumped")
    assert bumped["old_tx"] == first.tx_hash and bumped["tx"] == second.tx_hash and bumped["level"] == "alert"


def test_reconcile__fee_cap_leaves_no_room__alerts_and_keeps_the_transaction(stalled) -> None:
    (me, other, token, store, sender, out), rpc = stalled
    fee = _spike(me, rpc, sender, store, "capped", token, other)
    sender.max_fee = fee  # no room for the 12.5% raise
    sender.reconcile()  # cannot raise the fee, and the node refuses it at this base fee
    assert [a.status for a in store.attempts("capped")] == [BROADCAST]  # kept, not abandoned
    assert _events(out, "fee_capped") and _events(out, "priced_out") and not _events(out, "fee_bumped")
    rpc("evm_setAutomine", [True])  # the fixture lifts the cap and settles it


def test_reconcile__the_replaced_transaction_mined_first__it_counts_and_the_replacement_is_dropped(stalled) -> None:
    (me, other, token, store, sender, out), rpc = stalled
    before = token.functions.balanceOf(other.account).call()
    with pytest.raises(ChainError, match="no receipt"):
        sender.send("race", token.functions.transfer(other.account, 5))
    (first,) = store.attempts("race")
    # The replacement is recorded, but the original is mined before it is broadcast.
    second = store.replace(first, "0x" + "ab" * 32, first.raw)
    rpc("evm_mine", [])
    assert sender._receipt(first.tx_hash) is not None
    sender.reconcile()
    assert [a.status for a in store.attempts("race")] == [CONFIRMED, DROPPED] and sender.done("race")
    assert second.id == store.attempts("race")[1].id
    assert token.functions.balanceOf(other.account).call() == before + 5


def test_reconcile__recorded_below_the_base_fee__replaced_when_due(stalled) -> None:
    (me, other, token, store, sender, out), rpc = stalled
    base = int(me.w3.eth.get_block("latest")["baseFeePerGas"])
    # A crash left a signed, never-broadcast transaction whose fee the chain has since outgrown.
    fn = token.functions.transfer(other.account, 4)
    nonce = me.w3.eth.get_transaction_count(me.account, "pending")
    built = fn.build_transaction({"from": me.account, "nonce": nonce, "gas": 100_000, "chainId": me.chain_id,
                                  "maxFeePerGas": base // 2, "maxPriorityFeePerGas": 1})  # fmt: skip
    signed = me.key.sign_transaction(built)
    store.record("low", 1, "transfer", built["to"], built["data"], nonce, "0x" + bytes(signed.hash).hex(),
                 "0x" + bytes(signed.raw_transaction).hex())  # fmt: skip
    rpc("evm_setAutomine", [True])
    sender.reconcile()
    assert [a.status for a in store.attempts("low")] == [DROPPED, CONFIRMED] and sender.done("low")
    assert _events(out, "fee_bumped")


def test_sign__fee_cap_holds_for_first_sends(rig) -> None:
    me, other, token, store, sender, _ = rig
    fn = token.functions.transfer(other.account, 1)
    uncapped = _decode(sender.sign(fn, 0, 60_000)[2])
    sender.max_fee = uncapped["maxFeePerGas"] // 2
    capped = _decode(sender.sign(fn, 0, 60_000)[2])
    assert capped["maxFeePerGas"] == sender.max_fee and capped["maxPriorityFeePerGas"] <= sender.max_fee


def test_decode__typed_and_legacy_transactions(rig) -> None:
    me = rig[0]
    fields = {"to": rig[2].address, "data": "0x1234", "nonce": 7, "gas": 60_000, "chainId": me.chain_id, "value": 0}
    typed = me.key.sign_transaction({**fields, "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9, "type": 2})
    legacy = me.key.sign_transaction({**fields, "gasPrice": 2 * 10**9})
    t = _decode("0x" + bytes(typed.raw_transaction).hex())
    lg = _decode("0x" + bytes(legacy.raw_transaction).hex())
    assert (t["nonce"], t["gas"], t["maxFeePerGas"], t["maxPriorityFeePerGas"]) == (7, 60_000, 3 * 10**9, 10**9)
    assert (lg["nonce"], lg["gas"], lg["gasPrice"], lg["chainId"]) == (7, 60_000, 2 * 10**9, me.chain_id)
    assert bytes(lg["data"]) == bytes.fromhex("1234")


def test_store__bound_to_one_chain_account_and_deployment(tmp_path) -> None:
    from verifier.daemon.records import DaemonError

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
                reveal_hash=b"", step=0, node=0, desc_hash=b"", pre_slots_root=b"", out_header=b"",
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
    from verifier.daemon.loop import Config, Daemon

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
