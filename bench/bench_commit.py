"""Tensor commitment throughput vs raw keccak256 over the same bytes, measured in the same run.

    python bench/bench_commit.py

For each size, int64 data is committed with `verifier.commit.commitments.commit_tensor` (big-endian
encoding, 2048-byte chunk leaves, Merkle tree, header) and, separately, hashed once with raw
keccak256 over its encoded bytes. Both sides use safe-pysha3. Each figure is the best of several
repeats (time.perf_counter), with raw and commit repeats interleaved so drift hits both alike.
Exits 1 if the 16 MiB ratio (commit throughput / raw throughput) is below GOAL.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sha3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verifier.commit.commitments import CHUNK, _chunk_leaves, commit_tensor  # noqa: E402
from verifier.commit.merkle import MerkleTree  # noqa: E402
from verifier.core.dtypes import encode  # noqa: E402

GOAL = 0.50
GOAL_SIZE = 16 << 20
SIZES = [64 << 10, 1 << 20, 16 << 20]
REPEATS = 7
TARGET_BYTES_PER_REPEAT = 8 << 20  # small sizes loop several times per timing


def _best(fns: list[Callable[[], object]], loops: int, repeats: int) -> list[float]:
    """Best seconds per call of each fn, interleaving the fns within every repeat."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(loops):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t0) / loops)
    return best


def main() -> int:
    rng = np.random.default_rng(0)
    rows = []
    for size in SIZES:
        array = rng.integers(-(2**63), 2**63 - 1, size=size // 8, dtype=np.int64, endpoint=True)
        data = encode(array)
        assert len(data) == size
        loops = max(1, TARGET_BYTES_PER_REPEAT // size)

        def raw(data: bytes = data) -> bytes:
            return sha3.keccak_256(data).digest()

        def commit_full(array: np.ndarray = array) -> bytes:
            return commit_tensor(array)

        def data_tree(data: bytes = data) -> bytes:
            return MerkleTree._from_trusted(_chunk_leaves(data)).root

        t_raw, t_commit, t_tree = _best([raw, commit_full, data_tree], loops, REPEATS)
        rows.append((size, t_raw, t_commit, t_tree))

    mb = 1e6
    print(f"keccak256 (safe-pysha3) vs tensor commitment, int64 data, CHUNK={CHUNK}, best of {REPEATS}")
    print(f"{'size':>8} {'raw MB/s':>10} {'commit MB/s':>12} {'ratio':>7} {'tree-only MB/s':>15} {'ratio':>7}")
    ratio_at_goal = None
    for size, t_raw, t_commit, t_tree in rows:
        label = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
        r_commit, r_tree = t_raw / t_commit, t_raw / t_tree
        print(
            f"{label:>8} {size / t_raw / mb:>10.1f} {size / t_commit / mb:>12.1f} {r_commit:>7.3f}"
            f" {size / t_tree / mb:>15.1f} {r_tree:>7.3f}"
        )
        if size == GOAL_SIZE:
            ratio_at_goal = r_commit
    print("commit = commit_tensor(array): encode + chunk leaves + tree + header; tree-only = from encoded bytes")
    assert ratio_at_goal is not None
    ok = ratio_at_goal >= GOAL
    print(f"16 MiB ratio {ratio_at_goal:.3f} {'>=' if ok else '<'} goal {GOAL:.2f}: {'ok' if ok else 'BELOW GOAL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
