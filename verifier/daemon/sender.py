"""Sending a transaction: dry-run, record, broadcast, confirm; reconcile after a crash;
replace one left unmined by a fee spike with raised fees (capped); bounded back-off on RPC
errors. `BISECTML_FAILPOINT` kills the process at a chosen point (tests only)."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verifier.court.chain import Chain, ChainError, revert_reason
from verifier.daemon.records import DaemonError, JsonLog, Reverted
from verifier.daemon.store import (
    ABANDONED,
    BROADCAST,
    CONFIRMED,
    DROPPED,
    RECORDED,
    REPLACED,
    UNFINISHED,
    Intent,
    Store,
)

MAX_ATTEMPTS = 5  # sends of one key that reverted on-chain before the daemon gives up on it
# Node errors (geth, reth, anvil) for a transaction whose fees are too low to enter a block now
PRICED_OUT = ("base fee", "underpriced", "fee too low", "fee cap")

# -- failpoints (tests) -----------------------------------------------------------------------


class _Failpoints:
    def __init__(self) -> None:
        spec = os.environ.get("BISECTML_FAILPOINT", "")
        self.point, _, n = spec.partition(":")
        self.left = int(n) if n.isdigit() else 0

    def hit(self, point: str) -> None:
        if self.point != point or self.left <= 0:
            return
        self.left -= 1
        if self.left == 0:
            os.kill(os.getpid(), signal.SIGKILL)


# -- RPC errors and back-off ----------------------------------------------------------------------


def is_transport_error(e: BaseException) -> bool:
    """Whether `e` (or its cause) is the node being unreachable or slow, not a revert."""
    import requests

    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, requests.exceptions.RequestException | ConnectionError | TimeoutError):
            return True
        if type(cur).__name__ in ("TimeExhausted", "ProviderConnectionError"):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


@dataclass
class Backoff:
    """Exponential back-off with jitter, bounded by `maximum` seconds."""

    initial: float = 0.5
    maximum: float = 30.0
    failures: int = 0

    def next(self) -> float:
        self.failures += 1
        base = min(self.maximum, self.initial * 2 ** (self.failures - 1))
        return base * (0.75 + 0.5 * random.random())

    def reset(self) -> None:
        self.failures = 0


# -- sending: dry-run, record, broadcast, confirm -------------------------------------------------


class Sender:
    """Sends contract calls so that the same move is never sent twice.

    `send(key, fn)`: a key already sent successfully (or still unresolved) is skipped; the
    call is dry-run (a doomed call raises Reverted and is never recorded); the signed
    transaction is recorded in the store, then broadcast, then its receipt is recorded.

    A transaction still pending `bump_after` seconds after it was signed is replaced at the same
    nonce with fees raised by at least 12.5% (the replacement minimum of geth and reth is 10%)
    and at least what the chain asks now, up to `max_fee` wei per gas: a fee spike must not
    leave an honest move unmined until its clock runs out.
    """

    def __init__(
        self,
        chain: Chain,
        store: Store,
        log: JsonLog,
        observe: bool,
        stopping: Callable[[], int],
        bump_after: float = 60.0,
        max_fee: int | None = None,
    ) -> None:
        if chain.key is None and not observe:
            raise DaemonError("the daemon signs its own transactions; give it a key with --key-file or BISECTML_PRIVATE_KEY.")
        self.chain = chain
        self.w3 = chain.w3
        self.store = store
        self.log = log
        self.observe = observe
        self.stopping = stopping
        self.failpoints = _Failpoints()
        self.receipt_timeout = bump_after
        self.bump_after = bump_after
        self.max_fee = max_fee

    def done(self, key: str) -> bool:
        """The move named `key` has been sent and succeeded."""
        return any(a.status == CONFIRMED and a.receipt_status == 1 for a in self.store.attempts(key))

    def send(self, key: str, fn: Any, **context: Any) -> Any:
        """Dry-run, record, broadcast and confirm `fn`; returns the receipt, or None if skipped."""
        what = fn.fn_name
        attempts = self.store.attempts(key)
        if any(a.status in UNFINISHED for a in attempts):
            self.reconcile()  # a send that did not finish (an RPC error): settle it first
            attempts = self.store.attempts(key)
            if any(a.status in UNFINISHED for a in attempts):
                return None
        if any(a.status == CONFIRMED and a.receipt_status == 1 for a in attempts):
            self.log.once(f"done:{key}", "already_sent", key=key, function=what)
            return None
        reverted = sum(1 for a in attempts if a.status == CONFIRMED and a.receipt_status == 0)
        if reverted >= MAX_ATTEMPTS:
            self.log.once(f"gaveup:{key}", "gave_up", level="alert", key=key, function=what, reverted=reverted)
            return None
        acct = self.chain.account
        tx: dict[str, Any] = {"from": acct}
        try:
            fn.call(tx)
            gas = self.chain.gas_limit(fn, tx)
        except Exception as e:
            if is_transport_error(e):
                raise
            if self.observe:  # e.g. no allowance yet: say what would be sent all the same
                self.log.once(f"observe:{key}", "would_send", key=key, function=what, dry_run=revert_reason(e), **context)
                return None
            raise Reverted(f"{what} would revert: {revert_reason(e)}") from None
        if self.observe:
            self.log.once(f"observe:{key}", "would_send", key=key, function=what, dry_run="ok", **context)
            return None
        nonce = self.w3.eth.get_transaction_count(acct, "pending")
        built, tx_hash, raw = self.sign(fn, nonce, gas)
        row = self.store.record(key, len(attempts) + 1, what, built["to"], built["data"], nonce, tx_hash, raw)
        self.failpoints.hit(RECORDED)
        self.w3.eth.send_raw_transaction(raw)
        self.store.mark(row, BROADCAST)
        self.failpoints.hit(BROADCAST)
        receipt = self._wait(tx_hash)
        if receipt is None:
            raise ChainError(f"{what}: no receipt for {tx_hash} within {self.receipt_timeout:.0f} s; it is reconciled next tick.")
        self._settle(self.store.intent(row), receipt)
        self.log(
            "sent", key=key, function=what, tx=tx_hash, nonce=nonce, block=int(receipt["blockNumber"]),
            gas=int(receipt["gasUsed"]), ok=receipt["status"] == 1, **context,
        )  # fmt: skip
        if receipt["status"] != 1:
            raise Reverted(f"{what} reverted on-chain in block {receipt['blockNumber']}; the state moved, re-deriving.")
        return receipt

    def sign(self, fn: Any, nonce: int, gas: int) -> tuple[dict[str, Any], str, str]:
        """The transaction for `fn` at `nonce`, signed: (fields, hash, raw bytes as hex)."""
        acct = self.chain.account
        built = fn.build_transaction({"from": acct, "nonce": nonce, "gas": gas, "chainId": self.chain.chain_id})
        if self.max_fee is not None:  # the cap holds for first sends too
            for field in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice"):
                if field in built:
                    built[field] = min(int(built[field]), self.max_fee)
        signed = self.chain.key.sign_transaction(built)
        return built, "0x" + bytes(signed.hash).hex(), "0x" + bytes(signed.raw_transaction).hex()

    def _wait(self, tx_hash: str) -> Any:
        """The receipt, polled; None on timeout or when a second signal abandons the wait."""
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.02
        while time.monotonic() < deadline:
            receipt = self._receipt(tx_hash)
            if receipt is not None:
                return receipt
            if self.stopping() >= 2:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        return None

    def _receipt(self, tx_hash: str) -> Any:
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None

    def _settle(self, it: Intent, receipt: Any) -> None:
        """`it` was mined: record it, and drop every other attempt at its nonce (none can be mined now)."""
        self.store.mark(it.id, CONFIRMED, receipt)
        for other in self.store.unfinished():
            if other.nonce == it.nonce and other.id != it.id:
                self.store.mark(other.id, DROPPED)

    def reconcile(self) -> None:
        """Resolve every recorded-but-unconfirmed transaction against the chain: found mined,
        dropped (its nonce used by another), abandoned (it would now revert; never broadcast
        again), or (re-)broadcast, replaced with higher fees once it has waited `bump_after`."""
        for it in self.store.unfinished():
            if self.store.status(it.id) not in UNFINISHED:
                continue  # settled earlier in this pass, with another attempt at its nonce
            receipt = self._receipt(it.tx_hash)
            if receipt is not None:
                self._settle(it, receipt)
                self.log("reconciled", key=it.key, tx=it.tx_hash, outcome="mined", ok=receipt["status"] == 1)
                continue
            if it.status == REPLACED:
                # Its replacement (a later row) is reconciled below; it may still be mined first.
                if not any(o.nonce == it.nonce and o.status != REPLACED for o in self.store.unfinished()):
                    self.store.mark(it.id, DROPPED)  # the replacement was settled: this one never will be
                continue
            mined_nonce = self.w3.eth.get_transaction_count(self.chain.account, "latest")
            if mined_nonce > it.nonce:
                for o in self.store.attempts(it.key):
                    mined = self._receipt(o.tx_hash) if o.nonce == it.nonce and o.id != it.id else None
                    if mined is not None:  # an earlier attempt at this nonce was mined after all
                        self._settle(o, mined)
                        self.log("reconciled", key=o.key, tx=o.tx_hash, outcome="mined", ok=mined["status"] == 1)
                        break
                else:
                    self.store.mark(it.id, DROPPED)
                    self.log.alert("reconciled", key=it.key, tx=it.tx_hash, outcome="dropped", nonce=it.nonce)
                continue
            try:
                self.w3.eth.call({"from": self.chain.account, "to": it.target, "data": it.data})
            except Exception as e:
                if is_transport_error(e):
                    raise
                # the move is stale: never broadcast it (its nonce is still free)
                self.store.mark(it.id, ABANDONED)
                self.log("reconciled", key=it.key, tx=it.tx_hash, outcome="abandoned", reason=revert_reason(e))
                continue
            outcome = "rebroadcast"
            if time.time() - it.created >= self.bump_after:  # sent (or signed) long ago: outbid?
                bumped = self._replace(it)
                if bumped is not None:
                    it, outcome = bumped, "replaced"
            try:
                self.w3.eth.send_raw_transaction(it.raw)
            except Exception as e:
                if is_transport_error(e):
                    raise
                msg = revert_reason(e).lower()
                if any(s in msg for s in PRICED_OUT):
                    # Valid, only outbid for now (its fee is capped): kept, and retried next tick.
                    self.log.once(f"priced:{it.id}", "priced_out", level="alert", key=it.key, tx=it.tx_hash,
                                  reason=revert_reason(e))  # fmt: skip
                    continue
                if "already" not in msg and "known" not in msg:
                    self.store.mark(it.id, ABANDONED)
                    self.log.alert("reconciled", key=it.key, tx=it.tx_hash, outcome="rejected", reason=revert_reason(e))
                    continue
            self.store.mark(it.id, BROADCAST)
            receipt = self._wait(it.tx_hash)
            if receipt is None:
                raise ChainError(f"{outcome} {it.tx_hash} got no receipt; it is reconciled again next tick.")
            self._settle(it, receipt)
            self.log("reconciled", key=it.key, tx=it.tx_hash, outcome=outcome, ok=receipt["status"] == 1)

    def _replace(self, it: Intent) -> Intent | None:
        """A replacement of pending `it` at its nonce with raised fees, recorded; None if
        `max_fee` leaves no room for the minimum raise (an alert says so)."""
        if self.chain.key is None:
            return None  # watch-only: nothing to sign with
        old = _decode(it.raw)
        tx = {k: v for k, v in old.items() if k not in ("v", "r", "s")}
        bump = lambda fee: fee + (fee + 7) // 8 + 1  # noqa: E731 - at least 12.5% more, rounded up
        if "maxFeePerGas" in old:
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = max(bump(old["maxPriorityFeePerGas"]), int(self.w3.eth.max_priority_fee))
            fee = max(bump(old["maxFeePerGas"]), 2 * base + tip)
            if self.max_fee is not None:
                fee = min(fee, self.max_fee)
                tip = min(tip, fee)
            if fee < bump(old["maxFeePerGas"]) or tip < bump(old["maxPriorityFeePerGas"]):
                fee = 0
            tx.update(maxFeePerGas=fee, maxPriorityFeePerGas=tip)
            before, after = old["maxFeePerGas"], fee
        else:
            fee = max(bump(old["gasPrice"]), int(self.w3.eth.gas_price))
            if self.max_fee is not None:
                fee = min(fee, self.max_fee)
            if fee < bump(old["gasPrice"]):
                fee = 0
            tx.update(gasPrice=fee)
            before, after = old["gasPrice"], fee
        if not fee:
            self.log.once(f"capped:{it.id}", "fee_capped", level="alert", key=it.key, tx=it.tx_hash, fee=before,
                          max_fee=self.max_fee)  # fmt: skip
            return None
        signed = self.chain.key.sign_transaction(tx)
        new = self.store.replace(it, "0x" + bytes(signed.hash).hex(), "0x" + bytes(signed.raw_transaction).hex())
        self.log.alert("fee_bumped", key=it.key, old_tx=it.tx_hash, tx=new.tx_hash, nonce=it.nonce, fee=before, new_fee=after)
        return new


def _decode(raw: str) -> dict[str, Any]:
    """The fields of a signed transaction: typed (EIP-2718) or legacy."""
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    data = HexBytes(raw)
    if data[0] < 0x80:  # a type byte: typed transaction
        return dict(TypedTransaction.from_bytes(data).as_dict())
    import rlp

    nonce, gas_price, gas, to, value, payload, v, _, _ = rlp.decode(bytes(data))
    fields = {"nonce": nonce, "gasPrice": gas_price, "gas": gas, "to": to, "value": value, "data": payload}
    out = {k: int.from_bytes(x, "big") if k not in ("to", "data") else HexBytes(x) for k, x in fields.items()}
    v_int = int.from_bytes(v, "big")
    if v_int >= 35:  # EIP-155: v = chainId * 2 + 35 or 36
        out["chainId"] = (v_int - 35) // 2
    return out
