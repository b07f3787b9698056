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
from verifier.commit.commitments import TensorType
from verifier.commit.merkle import keccak
from verifier.core.dtypes import DType
from verifier.core.errors import BisectmlError

# the 4-byte selector of `publish(bytes32)`, the first bytes of every publication's input
PUBLISH_SELECTOR = keccak(b"publish(bytes32)")[:4]


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


def decode(header: bytes, data: bytes) -> np.ndarray:
    """The tensor a publication holds (the inverse of `payload`)."""
    ttype = commit.parse_header(header)
    be = ttype.dtype.np.newbyteorder(">")
    flat = np.frombuffer(data, dtype=be, count=ttype.size) if ttype.size else np.zeros(0, be)
    return flat.astype(ttype.dtype.np).reshape(ttype.shape)


def fetch_tensor(w3: Any, availability: Any, commitment: bytes, from_block: int = 0) -> np.ndarray:
    """The tensor whose commitment is `commitment`, read from the calldata of its publication
    and checked against the commitment."""
    logs = availability.events.Published().get_logs(from_block=from_block, argument_filters={"commitment": commitment})
    if not logs:
        raise AvailabilityError(
            f"commitment 0x{commitment.hex()} was never published on Availability.vy; its data is not on this chain."
        )
    tx = w3.eth.get_transaction(logs[0]["transactionHash"])
    data = bytes(tx["input"])
    if tx["to"] != availability.address or data[:4] != PUBLISH_SELECTOR:
        # a publication made through another contract: its bytes are not this transaction's input
        raise AvailabilityError(
            f"commitment 0x{commitment.hex()} was published by a contract call; fetch it by its content id instead."
        )
    try:
        array = decode(data[4:36], data[36:])  # the inverse of `calldata`
    except (ValueError, BisectmlError):
        array = None
    if array is None or commit.commit_tensor(array) != commitment:
        raise AvailabilityError(f"the publication of 0x{commitment.hex()} does not hash to it; the node served wrong data.")
    return array


__all__ = ["PUBLISH_SELECTOR", "AvailabilityError", "calldata", "decode", "fetch_tensor", "payload", "publish"]
