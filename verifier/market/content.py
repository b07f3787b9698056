"""Content-addressed files: datasets and round features, named by IPFS CIDv1 (raw, sha2-256).

A dataset or a round's features are published off-chain under their content id, with their
tensor commitments on-chain (docs/SPEC.md 8.1). The id is the one `ipfs add --cid-version 1
--raw-leaves` gives a file of at most 256 KiB (larger files are added as one raw block), so
the files can be pinned on IPFS as they are. By default bisectml keeps them in a local directory
(`$BISECTML_HOME/content`) that any process on the machine can read; with an IPFS node or
gateway configured (`content_store`, `verifier.market.ipfs`) it publishes and fetches them over
IPFS and keeps that directory as its cache. Every file read is checked against its id.

File layouts (big-endian, elements as in SPEC 1.1):
- dataset:        b"BMLD" || u32(R) || u32(F) || features int8 [R, F] || labels int8 [R]
- round features: b"BMLX" || u32(n) || u32(F) || features int8 [n, F]
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import numpy as np

from verifier.core.errors import BisectmlError

_CID_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])  # CIDv1, raw codec, sha2-256, 32-byte digest
DATASET_MAGIC = b"BMLD"
FEATURES_MAGIC = b"BMLX"


class ContentError(BisectmlError, ValueError):
    """A content id is malformed, its file is missing, or the file does not match it."""


class ContentMissing(ContentError):
    """Nobody asked has the content (as opposed to serving wrong bytes or failing)."""


def cid_of(data: bytes) -> str:
    """The CIDv1 (raw, sha2-256, base32) of `data`."""
    return cid_of_digest(hashlib.sha256(data).digest())


def cid_of_digest(digest: bytes) -> str:
    """The CIDv1 of a file from its sha2-256 digest (the word a contract logs for it)."""
    if len(digest) != 32:
        raise ContentError(f"a sha2-256 digest is 32 bytes, not {len(digest)}.")
    return "b" + base64.b32encode(_CID_PREFIX + bytes(digest)).decode().lower().rstrip("=")


def digest_of(cid: str) -> bytes:
    """The sha2-256 digest a CIDv1 (raw, sha2-256) names: the inverse of `cid_of_digest`."""
    _check_cid(cid)
    raw = base64.b32decode(cid[1:].upper() + "=" * (-len(cid[1:]) % 8))
    if raw[:4] != _CID_PREFIX:
        raise ContentError(f"'{cid}' is not a CIDv1 raw sha2-256 content id; check it.")
    return raw[4:]


def _check_cid(cid: str) -> None:
    if not (cid.startswith("b") and len(cid) == 59 and cid[1:].isalnum() and cid == cid.lower()):
        raise ContentError(f"'{cid}' is not a CIDv1 raw sha2-256 content id (59 characters starting with 'b'); check it.")


def default_dir() -> Path:
    from verifier.core.paths import home

    return home() / "content"


class ContentStore:
    """A directory of files named by their content id."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_dir()

    def put(self, data: bytes) -> str:
        cid = cid_of(data)
        path = self.root / cid
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return cid

    def get(self, cid: str) -> bytes:
        _check_cid(cid)
        path = self.root / cid
        try:
            data = path.read_bytes()
        except OSError:
            raise ContentMissing(
                f"content {cid} is not in {self.root}; fetch it over IPFS (--ipfs-gateway or BISECTML_IPFS_GATEWAY), "
                "put it in that directory (e.g. `ipfs get`), or pass --content-dir."
            ) from None
        if cid_of(data) != cid:
            raise ContentError(f"{path} does not hash to its content id; delete it and fetch {cid} again.")
        return data

    def has(self, cid: str) -> bool:
        return (self.root / cid).is_file()


def as_int8(a: np.ndarray, what: str) -> np.ndarray:
    """`a` as a contiguous int8 array, refusing anything that is not integers in -128..127."""
    arr = np.asarray(a)
    if arr.dtype != np.int8:
        if not np.issubdtype(arr.dtype, np.integer) or arr.size and (arr.min() < -128 or arr.max() > 127):
            raise ContentError(f"{what} must be integers in -128..127 (int8); quantize them first.")
        arr = arr.astype(np.int8)
    return np.ascontiguousarray(arr)


def encode_dataset(features: np.ndarray, labels: np.ndarray) -> bytes:
    x, y = as_int8(features, "dataset features"), as_int8(labels, "dataset labels")
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ContentError(f"a dataset is features [R, F] and labels [R]; got {x.shape} and {y.shape}.")
    return DATASET_MAGIC + x.shape[0].to_bytes(4, "big") + x.shape[1].to_bytes(4, "big") + x.tobytes() + y.tobytes()


def decode_dataset(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    if data[:4] != DATASET_MAGIC or len(data) < 12:
        raise ContentError("not a bisectml dataset file (bad magic); publish it with `bisectml data publish`.")
    r, f = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big")
    if len(data) != 12 + r * f + r:
        raise ContentError(f"dataset file of {len(data)} bytes does not hold {r} rows of {f} features and labels.")
    x = np.frombuffer(data, np.int8, r * f, 12).reshape(r, f).copy()
    y = np.frombuffer(data, np.int8, r, 12 + r * f).copy()
    return x, y


def encode_features(features: np.ndarray) -> bytes:
    x = as_int8(features, "round features")
    if x.ndim != 2:
        raise ContentError(f"round features are [n, F]; got shape {x.shape}.")
    return FEATURES_MAGIC + x.shape[0].to_bytes(4, "big") + x.shape[1].to_bytes(4, "big") + x.tobytes()


def decode_features(data: bytes) -> np.ndarray:
    if data[:4] != FEATURES_MAGIC or len(data) < 12:
        raise ContentError("not a bisectml round-features file (bad magic).")
    n, f = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big")
    if len(data) != 12 + n * f:
        raise ContentError(f"features file of {len(data)} bytes does not hold {n} rows of {f} features.")
    return np.frombuffer(data, np.int8, n * f, 12).reshape(n, f).copy()


__all__ = [
    "ContentError",
    "ContentMissing",
    "ContentStore",
    "cid_of",
    "cid_of_digest",
    "decode_dataset",
    "decode_features",
    "digest_of",
    "encode_dataset",
    "encode_features",
]
