"""What one-shot commands sent, so that a command interrupted at any point is resumed, not
repeated, when it is run again.

Every transaction a command signs is recorded (signed, with its nonce and hash) in
`$BISECTML_HOME/sent/<chain id>-<account>.sqlite` before it is broadcast, and marked when it is
mined. When a command starts, the records an earlier, interrupted command left unfinished are
settled against the chain: mined ones are noted, ones the node never saw are dropped. A send whose
key (or, without a key, whose target and calldata) matches one of them does not send again: it
waits for that transaction and returns its receipt. A command that finished is never matched, so
running a command again on purpose sends again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from verifier.core.paths import home
from verifier.daemon.store import (
    ABANDONED,
    BROADCAST,
    CONFIRMED,
    DROPPED,
    Intent,
    Store,
)

WAIT_SECONDS = 120  # how long a command waits for an earlier transaction still pending


def journal_path(chain_id: int, account: str) -> Path:
    return home() / "sent" / f"{chain_id}-{account.lower()}.sqlite"


class SendJournal:
    def __init__(self, w3: Any, account: str, path: Path, note: Callable[[str], None]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.w3, self.account, self.note = w3, account, note
        self.store = Store(path)
        self.earlier: list[Intent] = self._settle()  # unfinished when this command started

    def close(self) -> None:
        self.store.close()

    def _receipt(self, tx_hash: str) -> Any:
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None

    def _known(self, tx_hash: str) -> bool:
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction(tx_hash) is not None
        except TransactionNotFound:
            return False

    def _settle(self) -> list[Intent]:
        """Settle what an interrupted command left: mined, pending, or never seen by the node."""
        left = []
        mined_nonce = self.w3.eth.get_transaction_count(self.account, "latest")
        for it in self.store.unfinished():
            receipt = self._receipt(it.tx_hash)
            if receipt is not None:
                self.store.mark(it.id, CONFIRMED, receipt)
                how = "mined" if receipt["status"] == 1 else "reverted"
                self.note(f"an interrupted `{it.function}` (tx {it.tx_hash}) was {how} in block {receipt['blockNumber']}.")
                left.append(self.store.intent(it.id))
            elif self._known(it.tx_hash):
                left.append(it)  # still pending: a matching send waits for it
            else:
                # the node never saw it (interrupted before the broadcast) or dropped it; its
                # nonce goes to the next transaction, so at most one of the two is ever mined
                self.store.mark(it.id, ABANDONED if it.nonce >= mined_nonce else DROPPED)
        return left

    def adopt(self, key: str | None, target: str, data: str) -> Any:
        """The receipt of the interrupted send this one repeats, waiting for it if pending."""
        for it in self.earlier:
            if not (it.key == key if key else (it.target.lower(), it.data) == (target.lower(), data)):
                continue
            self.earlier.remove(it)
            if it.status == CONFIRMED:
                receipt = self._receipt(it.tx_hash)
            else:
                self.note(f"waiting for the interrupted `{it.function}` (tx {it.tx_hash}) instead of sending it again.")
                from web3.exceptions import TimeExhausted

                from verifier.court.chain import ChainError

                try:
                    receipt = self.w3.eth.wait_for_transaction_receipt(it.tx_hash, timeout=WAIT_SECONDS)
                except TimeExhausted:
                    raise ChainError(
                        f"the interrupted `{it.function}` (tx {it.tx_hash}) is not mined after {WAIT_SECONDS} s; "
                        "run the command again once it is (or once the node has dropped it)."
                    ) from None
                self.store.mark(it.id, CONFIRMED, receipt)
            if receipt["status"] == 1:
                return receipt
            return None  # it reverted: this send is tried afresh
        return None

    def record(self, key: str | None, function: str, target: str, data: str, nonce: int, tx_hash: str, raw: str) -> int:
        k = key or f"{function}:{tx_hash}"
        attempt = 1 + max((a.attempt for a in self.store.attempts(k)), default=0)
        return self.store.record(k, attempt, function, target, data, nonce, tx_hash, raw)

    def broadcast(self, row: int) -> None:
        self.store.mark(row, BROADCAST)

    def mined(self, row: int, receipt: Any) -> None:
        self.store.mark(row, CONFIRMED, receipt)


__all__ = ["SendJournal", "journal_path"]
