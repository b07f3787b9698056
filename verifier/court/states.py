"""The objects of contracts/Tasks.vy (docs/SPEC.md 7.1): their states and record fields, and the
claim commitment that binds a claim to its solver (SPEC 7.3)."""

from __future__ import annotations

from verifier.commit.merkle import keccak

TASK_OPEN, TASK_DONE, TASK_RECLAIMED = 1, 2, 3
CLAIM_COMMITTED, CLAIM_LIVE, CLAIM_REJECTED, CLAIM_FINALIZED, CLAIM_EXPIRED = 1, 2, 3, 4, 5
CHALLENGE_OPEN, CHALLENGE_LOST, CHALLENGE_WON, CHALLENGE_COLLECTED = 1, 2, 3, 4

TASK_STATES = {TASK_OPEN: "open", TASK_DONE: "done", TASK_RECLAIMED: "reclaimed"}
CLAIM_STATES = {
    CLAIM_COMMITTED: "committed", CLAIM_LIVE: "live", CLAIM_REJECTED: "rejected",
    CLAIM_FINALIZED: "finalized", CLAIM_EXPIRED: "expired",
}  # fmt: skip
CHALLENGE_STATES = {CHALLENGE_OPEN: "open", CHALLENGE_LOST: "lost", CHALLENGE_WON: "won", CHALLENGE_COLLECTED: "collected"}

TASK_FIELDS = (
    "poster", "program_id", "graph_root", "initial_root", "dataset_root", "n_nodes", "n_slots", "steps",
    "arity", "clock", "window", "reward", "solver_bond", "challenger_bond", "deadline", "claim_id", "state",
)  # fmt: skip
CLAIM_FIELDS = (
    "task_id", "solver", "commitment", "final_root", "time", "challenges", "unsettled", "winners", "collected", "state",
    "gas", "shared",
)  # fmt: skip
CHALLENGE_FIELDS = ("claim_id", "challenger", "game_id", "state", "gas")

_SALT_DOMAIN = b"bisectml claim salt"


def claim_commitment(task_id: int, final_root: bytes, solver: str, salt: bytes) -> bytes:
    """keccak256(abi_encode(task_id, final_root, solver, salt)), as Tasks.claim_commitment."""
    return keccak(task_id.to_bytes(32, "big") + final_root + bytes(12) + bytes.fromhex(solver[2:]) + salt)


def claim_salt(secret: bytes, task_id: int, final_root: bytes) -> bytes:
    """A salt only the holder of `secret` (the signing key) can compute: a solver that crashes
    between commit and reveal derives it again instead of having to have stored it."""
    return keccak(_SALT_DOMAIN + secret + task_id.to_bytes(32, "big") + final_root)
