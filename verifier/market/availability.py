"""Data on the chain itself: publishing a tensor's bytes to contracts/Availability.vy and reading
them back from the publication's calldata (docs/SPEC.md 8.10).

The market accepts a dataset or a round's features only when their tensor commitments were
published there, so a verifier who cannot get a file by its content id from anyone can always
rebuild it from the chain: `fetch_tensor` finds the `Published` event of the commitment, reads
the transaction's input, decodes the bytes and checks them against the commitment before use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from verifier.commit import commitments as commit
from verifier.commit.commitments import CHUNK, TensorType
from verifier.commit.merkle import depth, keccak
from verifier.core.dtypes import DType
from verifier.core.errors import BisectmlError
from verifier.court.chain import RawCall, log_windows

# the 4-byte selector of `publish(bytes32)`, the first bytes of every publication's input
PUBLISH_SELECTOR = keccak(b"publish(bytes32)")[:4]
PART_SELECTOR = keccak(b"publish_part(bytes32,uint256)")[:4]
ASSEMBLE_SELECTOR = keccak(b"assemble(bytes32,bytes32[])")[:4]
PART_CHUNKS = 32  # chunks a part holds: 64 KiB, under the 128 KiB a node's mempool takes
PART_HEIGHT = 5
MAX_PARTS = 1024  # 64 MiB a tensor


class AvailabilityError(BisectmlError, ValueError):
    """A commitment was never published on-chain, or what was published does not match it."""


def payload(array: np.ndarray) -> tuple[bytes, bytes]:
    """(header, data) of a publication: the canonical header word and the tensor's encoding
    zero-padded to whole chunks."""
    ttype = TensorType(DType.from_numpy(array.dtype), tuple(int(d) for d in array.shape))
    return commit.tensor_header(ttype), b"".join(commit.chunks(array))


def calldata(header: bytes, data: bytes) -> bytes:
    """The input of an `Availability.publish` transaction: the ABI call with the header word,
    then the data as raw calldata (SPEC 8.10)."""
    return PUBLISH_SELECTOR + header + data


def publish(chain: Any, availability: Any, array: np.ndarray) -> Any:
    """Publishes `array` through `chain` (a verifier.court.chain.Chain); the receipt."""
    return chain.send_raw(availability.address, calldata(*payload(array)), "publish data on-chain")


def part_calldata(header: bytes, data: bytes, index: int) -> bytes:
    """The input of `Availability.publish_part`: the header word, the index, then the part's chunks."""
    part = data[index * PART_CHUNKS * CHUNK : (index + 1) * PART_CHUNKS * CHUNK]
    return PART_SELECTOR + header + index.to_bytes(32, "big") + part


def part_roots(array: np.ndarray) -> list[bytes]:
    """The roots `publish_part` records for each part of `array`: the nodes of the tensor's own
    chunk tree at height min(5, depth), padding read as Z_h."""
    tree = commit.commit(array).tree
    height = min(PART_HEIGHT, depth(len(tree)))
    return [tree.node_at(height, i) for i in range(-(-len(tree) // (1 << height)))]


def part_key(header: bytes, index: int, root: bytes) -> bytes:
    return keccak(header + index.to_bytes(32, "big") + root)


def in_parts(data: bytes) -> bool:
    """Whether a tensor's chunks are published in parts: above one part (64 KiB), so that each
    transaction stays under what a node's mempool accepts."""
    return len(data) > PART_CHUNKS * CHUNK


def publications(w3: Any, availability: Any, array: np.ndarray) -> list[tuple[str, Any]]:
    """The calls still needed to put `array`'s bytes on the chain, each with a stable key: one
    `publish` up to 64 KiB; above, each part not yet published, then the assembly."""
    header, data = payload(array)
    if not in_parts(data):
        return [("whole", RawCall(w3, availability.address, calldata(header, data), "publish"))]
    roots = part_roots(array)
    if len(roots) > MAX_PARTS:
        raise AvailabilityError(f"the tensor needs {len(roots)} parts of 64 KiB; Availability.vy takes at most {MAX_PARTS}.")
    calls: list[tuple[str, Any]] = [
        (f"part{i}", RawCall(w3, availability.address, part_calldata(header, data, i), "publish_part"))
        for i, root in enumerate(roots)
        if not availability.functions.parts(part_key(header, i, root)).call()
    ]
    return [*calls, ("assemble", availability.functions.assemble(header, roots))]


def publish_tensor(chain: Any, availability: Any, array: np.ndarray) -> list[Any]:
    """Puts `array`'s bytes on the chain through `chain` (one publication, or its missing parts
    and the assembly); the receipts."""
    return [chain.send(call, f"publish data on-chain ({key})") for key, call in publications(chain.w3, availability, array)]


def decode(header: bytes, data: bytes) -> np.ndarray:
    """The tensor a publication holds (the inverse of `payload`)."""
    ttype = commit.parse_header(header)
    be = ttype.dtype.np.newbyteorder(">")
    flat = np.frombuffer(data, dtype=be, count=ttype.size) if ttype.size else np.zeros(0, be)
    return flat.astype(ttype.dtype.np).reshape(ttype.shape)


def fetch_tensor(w3: Any, availability: Any, commitment: bytes, from_block: int = 0) -> np.ndarray:
    """The tensor whose commitment is `commitment`, read from the calldata of its publication
    and checked against the commitment. `from_block`: no publication is older (Availability.vy's
    deployment). The newest publications are read first (any one will do, and what is read is
    mostly recent) and every one is tried: a publication made through a contract, whose bytes
    are not its transaction's input, cannot hide a direct one."""
    seen = False
    for window in log_windows(availability.events.Published(), {"commitment": commitment}, from_block, newest_first=True):
        for log in window:
            seen = True
            data = _direct_input(w3, availability, log, (PUBLISH_SELECTOR, ASSEMBLE_SELECTOR))
            if data is not None:
                return _decoded(w3, availability, commitment, data, from_block, int(log["blockNumber"]))
    if not seen:
        raise AvailabilityError(
            f"commitment 0x{commitment.hex()} was never published on Availability.vy; its data is not on this chain."
        )
    raise AvailabilityError(
        f"commitment 0x{commitment.hex()} was published only by contract calls; fetch it by its content id instead."
    )


def _decoded(w3: Any, availability: Any, commitment: bytes, data: bytes, from_block: int, block: int) -> np.ndarray:
    """The tensor a direct publication's input `data` (mined in `block`) holds, checked."""
    header, body = data[4:36], data[36:]
    if data[:4] == ASSEMBLE_SELECTOR:
        _, args = availability.decode_function_input(data)
        body = b"".join(_part_bytes(w3, availability, bytes(args["header"]), i, bytes(r), from_block, block)
                        for i, r in enumerate(args["roots"]))  # fmt: skip
    try:
        array = decode(header, body)  # the inverse of `calldata`
    except (ValueError, BisectmlError):
        array = None
    if array is None or commit.commit_tensor(array) != commitment:
        raise AvailabilityError(f"the publication of 0x{commitment.hex()} does not hash to it; the node served wrong data.")
    return array


def _direct_input(w3: Any, availability: Any, log: Any, selectors: tuple[bytes, ...]) -> bytes | None:
    """The input of the transaction that emitted `log` when it called Availability.vy directly
    with one of `selectors`; None for a publication made through another contract."""
    tx = w3.eth.get_transaction(log["transactionHash"])
    data = bytes(tx["input"])
    return data if tx["to"] == availability.address and data[:4] in selectors else None


def _part_bytes(w3: Any, availability: Any, header: bytes, index: int, root: bytes, from_block: int, to_block: int) -> bytes:
    """The chunks of one published part, from the calldata of its `publish_part` transaction,
    mined by `to_block` (the assembly's), newest first (checked as a whole against the
    commitment by the caller)."""
    key = part_key(header, index, root)
    for window in log_windows(availability.events.PartPublished(), {"part": key}, from_block, to_block, newest_first=True):
        for log in window:
            data = _direct_input(w3, availability, log, (PART_SELECTOR,))
            if data is not None and data[36:68] == index.to_bytes(32, "big"):
                return data[68:]
    raise AvailabilityError(f"part {index} of a tensor was not published by a direct call; fetch it by its content id instead.")


__all__ = [
    "ASSEMBLE_SELECTOR",
    "PART_SELECTOR",
    "PUBLISH_SELECTOR",
    "AvailabilityError",
    "calldata",
    "decode",
    "fetch_tensor",
    "in_parts",
    "part_calldata",
    "part_key",
    "part_roots",
    "payload",
    "publications",
    "publish",
    "publish_tensor",
]
