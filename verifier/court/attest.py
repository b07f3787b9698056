"""Verification fees on a real chain (contracts/Attestations.vy, docs/SPEC.md 7.10): fund a
task's fee, attest a claim's final slot table root during its challenge window, reveal it after,
collect the share, refund an unearned fee.

The attestation salt is derived from the signing key, like the claim salt (SPEC 7.3), so a
watchtower that restarts between its attestation and its reveal derives it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from web3.logs import DISCARD

from verifier.commit.merkle import keccak
from verifier.court.chain import Chain, ChainError, Deployment
from verifier.engine.trace import Trace

ATTEST_NONE, ATTEST_COMMITTED, ATTEST_REVEALED, ATTEST_COLLECTED = 0, 1, 2, 3
ATTEST_STATES = {ATTEST_NONE: "none", ATTEST_COMMITTED: "committed", ATTEST_REVEALED: "revealed", ATTEST_COLLECTED: "collected"}
REVEAL_PERIOD = 172_800  # Attestations.REVEAL_PERIOD

_SALT_DOMAIN = b"bisectml attestation salt"
# salts of node-held dev accounts (no key to derive them from), for this process only
_DEV_SALTS: dict[tuple[str, int, bytes], bytes] = {}


def attestation_commitment(claim_id: int, slots_root: bytes, verifier: str, salt: bytes) -> bytes:
    """keccak256(abi_encode(claim_id, slots_root, verifier, salt)), as Attestations.attestation_commitment."""
    return keccak(claim_id.to_bytes(32, "big") + slots_root + bytes(12) + bytes.fromhex(verifier[2:]) + salt)


def attestation_salt(secret: bytes, claim_id: int, slots_root: bytes) -> bytes:
    """A salt only the holder of `secret` (the signing key) can compute."""
    return keccak(_SALT_DOMAIN + secret + claim_id.to_bytes(32, "big") + slots_root)


def final_slots_root(trace: Trace) -> bytes:
    """slots_root of the program's final state (T, 0): the preimage an attestation proves it knows."""
    return trace.slot_table_at(trace.program.steps, 0).root


@dataclass
class Attester:
    """The deployed Attestations contract, seen from one account."""

    chain: Chain
    deployment: Deployment

    def __post_init__(self) -> None:
        address = self.deployment.addresses.get("Attestations")
        if address is None:
            raise ChainError("this deployment has no Attestations contract; redeploy with `bisectml deploy`.")
        self.contract = self.chain.contract("Attestations", address)
        self.token = self.chain.contract("Token", self.deployment.addresses["Token"])

    @classmethod
    def available(cls, chain: Chain, deployment: Deployment) -> Attester | None:
        """An Attester, or None where the deployment predates verification fees."""
        return cls(chain, deployment) if "Attestations" in deployment.addresses else None

    # -- reads ------------------------------------------------------------------------------------

    def fee(self, task_id: int) -> int:
        return int(self.contract.functions.fees(task_id).call())

    def state(self, claim_id: int, verifier: str | None = None) -> int:
        """The attestation's state (ATTEST_*) of `verifier` (default: this account)."""
        return int(self.contract.functions.attestations(claim_id, verifier or self.chain.account).call()[1])

    def reveal_period(self, claim_id: int) -> tuple[int, int]:
        """(first second of reveals, first second after them); (0, 0) for a claim not revealed."""
        opens, closes = self.contract.functions.reveal_period(claim_id).call()
        return int(opens), int(closes)

    def salt(self, claim_id: int, slots_root: bytes) -> bytes:
        if self.chain.key is not None:
            return attestation_salt(bytes(self.chain.key.key), claim_id, slots_root)
        return _DEV_SALTS.setdefault((self.chain.account, claim_id, slots_root), os.urandom(32))

    # -- calls --------------------------------------------------------------------------------------

    def fund(self, task_id: int, amount: int) -> Any:
        """Adds `amount` to the task's fee (approves the contract for it first)."""
        self.chain.send(self.token.functions.approve(self.contract.address, amount), "approve fee")
        return self.chain.send(self.contract.functions.fund(task_id, amount), "fund")

    def attest_fn(self, claim_id: int, slots_root: bytes) -> Any:
        salt = self.salt(claim_id, slots_root)
        return self.contract.functions.attest(claim_id, attestation_commitment(claim_id, slots_root, self.chain.account, salt))

    def reveal_fn(self, claim_id: int, slots_root: bytes) -> Any:
        return self.contract.functions.reveal_attestation(claim_id, slots_root, self.salt(claim_id, slots_root))

    def collect_fn(self, claim_id: int, verifier: str | None = None) -> Any:
        return self.contract.functions.collect_fee(claim_id, verifier or self.chain.account)

    def attest(self, claim_id: int, slots_root: bytes) -> Any:
        return self.chain.send(self.attest_fn(claim_id, slots_root), "attest")

    def reveal(self, claim_id: int, slots_root: bytes) -> Any:
        return self.chain.send(self.reveal_fn(claim_id, slots_root), "reveal attestation")

    def collect(self, claim_id: int, verifier: str | None = None) -> int:
        """Collects the share (to `verifier`, default this account); returns the share paid."""
        receipt = self.chain.send(self.collect_fn(claim_id, verifier), "collect fee")
        evs = self.contract.events.FeeCollected().process_receipt(receipt, errors=DISCARD)
        return int(evs[0]["args"]["share"]) if evs else 0

    def refund(self, task_id: int, funder: str | None = None) -> Any:
        return self.chain.send(self.contract.functions.refund(task_id, funder or self.chain.account), "refund fee")


__all__ = [
    "ATTEST_COLLECTED",
    "ATTEST_COMMITTED",
    "ATTEST_NONE",
    "ATTEST_REVEALED",
    "ATTEST_STATES",
    "REVEAL_PERIOD",
    "Attester",
    "attestation_commitment",
    "attestation_salt",
    "final_slots_root",
]
