"""Tensors on a content network, announced on the chain (docs/SPEC.md 8.10, "Mirrors").

Availability.vy keeps a tensor's bytes in the chain's history, which is what a claim needs to be
finalized; a copy on IPFS is what a reader wants: one gateway request per 256 KiB instead of
a node's transaction history, and a copy that outlives history expiry. A mirror is the tensor's
payload (its encoding zero-padded to whole chunks, as on the chain) cut into parts of 256 KiB,
each one raw IPFS block, listed by a manifest file

    b"BMLM" || header (32 bytes, SPEC 1.3) || sha2-256 digest of each part (32 bytes each)

whose digest `Availability.mirror(commitment, manifest)` logs. Nothing on the chain checks a
mirror, so a reader checks everything: the manifest's length against its header, every part
against its CID, and the tensor against the commitment. A reader tries the mirrors of whom it
trusts to serve (a claim's solver) before anyone else's, a bounded number in all, and falls
back to the chain's copy; an announcement costs its sender gas, and a wrong one only a
reader's request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from verifier.commit import commitments as commit
from verifier.commit.commitments import CHUNK
from verifier.core.errors import BisectmlError
from verifier.market import availability as av
from verifier.market.content import ContentStore, cid_of_digest, digest_of
from verifier.market.ipfs import IpfsContentStore

MAGIC = b"BMLM"
PART_BYTES = 128 * CHUNK  # 256 KiB: the block size Kubo's chunker uses by default
# 64 MiB, the largest tensor Availability.vy takes, is 256 parts
MAX_PARTS = av.MAX_PARTS * av.PART_CHUNKS * CHUNK // PART_BYTES
MAX_TRIES = 4  # mirrors a reader tries before it reads the chain


def publishes(store: ContentStore | None) -> bool:
    """Whether `store` puts what it is given on a network others read (an IPFS node's API)."""
    return isinstance(store, IpfsContentStore) and store.api is not None


def reads(store: ContentStore | None) -> bool:
    """Whether `store` fetches from a network (an IPFS gateway or node), where mirrors are."""
    return isinstance(store, IpfsContentStore)


def manifest_of(header: bytes, data: bytes) -> tuple[bytes, list[bytes]]:
    """(manifest, parts) of a tensor's payload."""
    parts = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)]
    return MAGIC + header + b"".join(hashlib.sha256(p).digest() for p in parts), parts


def put(store: ContentStore, array: np.ndarray) -> bytes:
    """Adds `array`'s parts and manifest to `store` (a node pins them); the manifest's digest."""
    manifest, parts = manifest_of(*av.payload(array))
    for part in parts:
        store.put(part)
    return digest_of(store.put(manifest))


def announce_call(availability: Any, commitment: bytes, manifest: bytes) -> Any:
    """The Availability.mirror call that announces a mirror of `commitment`."""
    return availability.functions.mirror(commitment, manifest)


def get(store: ContentStore, commitment: bytes, manifest_digest: bytes, header_of: bytes | None = None) -> np.ndarray:
    """The tensor `commitment` from the mirror whose manifest has `manifest_digest`, every byte
    checked; ContentError or AvailabilityError (one line) when anything does not check. With
    `header_of`, the header the chain logged for `commitment`, a manifest of another type is
    refused before its parts are fetched."""
    manifest = store.get(cid_of_digest(manifest_digest))
    header, listed = manifest[4:36], manifest[36:]
    try:
        ttype = commit.parse_header(header) if manifest[:4] == MAGIC and len(manifest) >= 36 else None
    except (ValueError, BisectmlError):
        ttype = None
    if ttype is None or len(listed) % 32:
        raise av.AvailabilityError(f"mirror {cid_of_digest(manifest_digest)} is not a tensor manifest (SPEC 8.10).")
    if header_of is not None and header != header_of:
        raise av.AvailabilityError(
            f"mirror {cid_of_digest(manifest_digest)} is of another tensor type than 0x{commitment.hex()}; refused."
        )
    size = commit.n_chunks(ttype) * CHUNK
    n_parts = -(-size // PART_BYTES)
    # checked before any part is fetched: a manifest cannot make a reader fetch more than its
    # header's bytes, nor more than the largest tensor
    if n_parts > MAX_PARTS:
        raise av.AvailabilityError(
            f"mirror {cid_of_digest(manifest_digest)} is of a {size:,}-byte tensor, above the "
            f"{MAX_PARTS * PART_BYTES:,} bytes a mirror may hold."
        )
    if len(listed) != 32 * n_parts:
        raise av.AvailabilityError(
            f"mirror {cid_of_digest(manifest_digest)} lists {len(listed) // 32} parts where its header needs {n_parts}."
        )
    data = b"".join(store.get(cid_of_digest(listed[i : i + 32])) for i in range(0, len(listed), 32))
    array = av.decode(header, data) if len(data) == size else None
    if array is None or commit.commit_tensor(array) != commitment:
        raise av.AvailabilityError(
            f"mirror {cid_of_digest(manifest_digest)} holds another tensor than 0x{commitment.hex()}; refused."
        )
    return array


def headers(deployment: Any, availability: Any, commitments: Sequence[bytes]) -> dict[bytes, bytes]:
    """The header Availability.vy logged when it made each of `commitments` available (one scan)."""
    wanted = [bytes(c) for c in commitments]
    logs = deployment.logs(availability.events.Published(), {"commitment": wanted}) if wanted else []
    return {bytes(log["args"]["commitment"]): bytes(log["args"]["header"]) for log in logs}


def announced(deployment: Any, availability: Any, commitments: Sequence[bytes], first: Sequence[str] = ()) -> dict[bytes, list[bytes]]:
    """For each of `commitments`, the manifest digests announced for it (one scan of the logs):
    those of the addresses `first` before the rest, newest first within each, each digest once,
    at most MAX_TRIES."""
    wanted = [bytes(c) for c in commitments]
    logs = deployment.logs(availability.events.Mirrored(), {"commitment": wanted}) if wanted else []
    trusted = {a.lower() for a in first}
    logs = sorted(logs, key=lambda log: (str(log["args"]["mirror"]).lower() not in trusted, -log["blockNumber"], -log["logIndex"]))
    out: dict[bytes, list[bytes]] = {c: [] for c in wanted}
    for log in logs:
        digests = out.get(bytes(log["args"]["commitment"]))
        digest = bytes(log["args"]["manifest"])
        if digests is not None and digest not in digests and len(digests) < MAX_TRIES:
            digests.append(digest)
    return out


__all__ = ["MAGIC", "MAX_PARTS", "MAX_TRIES", "PART_BYTES", "announce_call", "announced", "get", "headers", "manifest_of", "publishes", "put", "reads"]
