"""A task's result (docs/SPEC.md 7.11): the slots of the final state its poster asked for, made
available on the chain by the solver and read back, checked, by anyone.

Each result tensor is published on contracts/Availability.vy (its bytes in the transaction's
calldata, which every full node keeps), then `Tasks.publish_result` proves that the published
commitment is that slot of the claimed final state. A claim is finalized only once every result
slot is recorded, so a solver that withholds its result cannot be paid; whoever paid for a
training task gets the trained tensors, not only a root. A solver with an IPFS node also mirrors
each tensor there (`verifier.market.mirrors`), and a reader with an IPFS gateway or node reads
the mirror first, checked against the same commitment, and the chain's copy when it fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verifier.commit.commitments import CHUNK, SlotOpening
from verifier.core.errors import BisectmlError
from verifier.court.states import CLAIM_FIELDS
from verifier.engine.program import Program
from verifier.market import availability as av
from verifier.market import mirrors
from verifier.market.content import ContentError, ContentStore

# Tasks.vy keeps a task's result slots as the bits of one word
MAX_RESULT_SLOT = 255
# Availability.vy's largest tensor, published in parts of 64 KiB: 1,024 parts of 32 chunks of 2,048 bytes
MAX_RESULT_BYTES = av.MAX_PARTS * av.PART_CHUNKS * CHUNK


class ResultError(BisectmlError, ValueError):
    """A result that cannot be published, is not published, or does not match its claim."""


def slots_of(mask: int) -> list[int]:
    """The slot indices of a result mask, in order."""
    return [i for i in range(MAX_RESULT_SLOT + 1) if mask >> i & 1]


def mask_of(slots: Iterable[int]) -> int:
    mask = 0
    for s in slots:
        if not 0 <= s <= MAX_RESULT_SLOT:
            raise ResultError(f"slot {s} cannot be a result: Tasks.vy marks result slots 0..{MAX_RESULT_SLOT}.")
        mask |= 1 << s
    return mask


def default_result(program: Program, names: Sequence[str] | None = None) -> int:
    """The result a poster asks for: the program's state (what a training program trains, an
    inference program's predictions and its count of correct ones), or only the state tensors
    `names`; the one-line reason when it cannot be."""
    chosen = list(zip(program.state_slots, program.state_names))
    if names:
        unknown = [n for n in names if n not in program.state_names]
        if unknown:
            raise ResultError(
                f"the program has no state named '{unknown[0]}'; its state is {', '.join(program.state_names)}."
            )
        chosen = [(slot, name) for slot, name in chosen if name in names]
    for slot, name in chosen:
        value = program.graph.slots[slot].value
        if slot > MAX_RESULT_SLOT:
            raise ResultError(
                f"state '{name}' is slot {slot}; Tasks.vy marks result slots up to {MAX_RESULT_SLOT}. Post with --no-result."
            )
        if value is not None and value.nbytes > MAX_RESULT_BYTES:
            raise ResultError(
                f"state '{name}' is {value.nbytes:,} bytes; Availability.vy publishes at most {MAX_RESULT_BYTES:,} "
                "per tensor. Post with --no-result, or keep the result smaller."
            )
    return mask_of(slot for slot, _ in chosen)


def unpublishable(values: Sequence[np.ndarray | None], mask: int) -> str | None:
    """Why the final state `values` (one per slot) cannot meet a result `mask`, or None."""
    for slot in slots_of(mask):
        if slot >= len(values) or values[slot] is None:
            return f"result slot {slot} is empty in the final state"
        if int(values[slot].nbytes) > MAX_RESULT_BYTES:  # type: ignore[union-attr]
            return f"result slot {slot} holds {values[slot].nbytes:,} bytes, above {MAX_RESULT_BYTES:,}"  # type: ignore[union-attr]
    return None


def openings(trace: Any, mask: int) -> list[tuple[int, np.ndarray, SlotOpening]]:
    """(slot, value, opening in the final state) of each result slot of a finished trace."""
    program = trace.program
    final = trace.values_at(program.steps, 0)
    why = unpublishable(final, mask)
    if why is not None:
        raise ResultError(f"{why}; this claim's result cannot be published.")
    return [(slot, final[slot], trace.open_slot(program.steps, 0, slot)) for slot in slots_of(mask)]  # type: ignore[misc]


def publish(court: Any, trace: Any, claim_id: int, mask: int, store: ContentStore | None = None) -> list[Any]:
    """Publish the result slots `mask` of our claim `claim_id` from our `trace`, from the court's
    account: each tensor's mirror announced when `store` is an IPFS node, its bytes on
    Availability.vy (unless already there), then its proof on Tasks.vy. The receipts. (The
    daemons send the same calls through their journal.)"""
    receipts = []
    for _slot, value, opening in openings(trace, mask):
        if mirrors.publishes(store):
            manifest = mirrors.put(store, value)  # type: ignore[arg-type]
            receipts.append(court.chain.send(mirrors.announce_call(court.availability, opening.commitment, manifest), "mirror"))
        if not court.availability.functions.available(opening.commitment).call():
            receipts += av.publish_tensor(court.chain, court.availability, value)
        receipts.append(court.chain.send(record_call(court.tasks, claim_id, opening), "publish_result"))
    return receipts


def record_call(tasks: Any, claim_id: int, opening: SlotOpening) -> Any:
    """The Tasks.publish_result call that records an opened slot of the claim's final state."""
    return tasks.functions.publish_result(claim_id, opening.index, opening.commitment, list(opening.proof))


@dataclass
class Fetched:
    """A claim's result tensors by slot, where each came from ("ipfs" or "chain"), and one line
    for each mirror that was refused."""

    arrays: dict[int, np.ndarray] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def fetch(court: Any, task_id: int, claim_id: int, store: ContentStore | None = None) -> Fetched:
    """The result tensors of a claim, slot by slot, each checked against the commitment Tasks.vy
    recorded for that slot: from an IPFS mirror when `store` reads IPFS (the solver's mirrors
    first), else from the calldata of its publication."""
    mask = int(court.tasks.functions.result_slots(task_id).call())
    if mask == 0:
        raise ResultError(f"task {task_id} asked for no result slots: it has only its final root.")
    published = int(court.tasks.functions.published(claim_id).call())
    missing = [s for s in slots_of(mask) if not published >> s & 1]
    if missing:
        raise ResultError(
            f"claim {claim_id} has not published result slot(s) {', '.join(map(str, missing))}; "
            "it cannot be finalized until it does."
        )
    recorded: dict[int, bytes] = {}
    for log in court.deployment.logs(court.tasks.events.ResultPublished(), {"claim_id": claim_id}):
        recorded.setdefault(int(log["args"]["slot"]), bytes(log["args"]["commitment"]))
    missing = [s for s in slots_of(mask) if s not in recorded]
    if missing:
        raise ResultError(f"no ResultPublished event of claim {claim_id} for slot {missing[0]}; is the node's log index complete?")
    announced: dict[bytes, list[bytes]] = {}
    headers: dict[bytes, bytes] = {}
    if mirrors.reads(store):
        commitments = [recorded[s] for s in slots_of(mask)]
        solver = court.tasks.functions.claims(claim_id).call()[CLAIM_FIELDS.index("solver")]
        announced = mirrors.announced(court.deployment, court.availability, commitments, [solver])
        # the type each tensor was published with: a mirror of another size is refused unread
        headers = mirrors.headers(court.deployment, court.availability, commitments)
    out = Fetched()
    for slot in slots_of(mask):
        # checked against the commitment Tasks.vy proved to be this slot of the claimed state
        commitment = recorded[slot]
        for digest in announced.get(commitment, []):
            try:
                array = mirrors.get(store, commitment, digest, headers.get(commitment))  # type: ignore[arg-type]
                out.arrays[slot], out.sources[slot] = array, "ipfs"
                break
            except (ContentError, av.AvailabilityError) as e:
                out.refused.append(f"slot {slot}: {e}")
        if slot not in out.arrays:
            out.arrays[slot] = av.fetch_tensor(court.chain.w3, court.availability, commitment, court.deployment.block)
            out.sources[slot] = "chain"
    return out


__all__ = [
    "MAX_RESULT_BYTES",
    "MAX_RESULT_SLOT",
    "Fetched",
    "ResultError",
    "default_result",
    "fetch",
    "mask_of",
    "openings",
    "publish",
    "record_call",
    "slots_of",
    "unpublishable",
]
