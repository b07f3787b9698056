"""Binary Merkle trees padded with bytes32(0) (docs/SPEC.md, section 2).

    merkle([x])            = x
    merkle(x_0 .. x_{m-1}) = node(merkle(left half), merkle(right half)), padded to 2^D items
    node(l, r)             = H(0x01 || l || r)

Padding items are the zero word itself; a fully padded subtree of height h is `Z[h]`
(`Z[0] = bytes32(0)`, `Z[h+1] = node(Z[h], Z[h])`) and is never hashed again here.

Levels are numbered by height: level 0 holds the items (leaves), level `depth` holds the root.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sha3

from verifier.core.errors import ProofError

WORD = 32
ZERO = bytes(WORD)
LEAF_TAG = b"\x00"
NODE_TAG = b"\x01"

# Templates whose `.copy()` starts a hash with the domain tag already absorbed. Never update
# them in place: always `.copy()` first.
LEAF_PREFIX = sha3.keccak_256(LEAF_TAG)
NODE_PREFIX = sha3.keccak_256(NODE_TAG)

# Deep enough for any tree bisectml builds (2^64 items); Z[h] for h > MAX_HEIGHT is never needed.
MAX_HEIGHT = 64


def keccak(*parts: bytes | bytearray | memoryview) -> bytes:
    """Ethereum keccak256 (padding 0x01, not NIST SHA3-256) of the concatenation of `parts`."""
    h = sha3.keccak_256()
    for p in parts:
        h.update(p)
    return h.digest()


def keccak_prefix(*parts: bytes) -> Any:
    """A keccak256 state with `parts` absorbed: `.copy()` it, then `.update` the rest and `.digest()`."""
    h = sha3.keccak_256()
    for p in parts:
        h.update(p)
    return h


def leaf_hash(*parts: bytes | bytearray | memoryview) -> bytes:
    """H(0x00 || parts...): the leaf hash of a data chunk or a node descriptor."""
    h = LEAF_PREFIX.copy()
    for p in parts:
        h.update(p)
    return h.digest()


def node(left: bytes, right: bytes) -> bytes:
    """H(0x01 || left || right): an inner node."""
    h = NODE_PREFIX.copy()
    h.update(left)
    h.update(right)
    return h.digest()


def _zero_table(n: int) -> tuple[bytes, ...]:
    z = [ZERO]
    for _ in range(n):
        z.append(node(z[-1], z[-1]))
    return tuple(z)


Z: tuple[bytes, ...] = _zero_table(MAX_HEIGHT)
"""Z[h] is the root of a fully padded subtree of height h."""


def depth(count: int) -> int:
    """D = ceil(log2 count), 0 for a single item."""
    if count < 1:
        raise ValueError(f"a Merkle tree needs at least one item, got {count}; commit to bytes32(0) instead.")
    return (count - 1).bit_length()


def _check_word(x: bytes, what: str) -> None:
    if len(x) != WORD:
        raise ValueError(f"{what} must be 32 bytes, got {len(x)}; pass a bytes32 hash.")


def _next_level(items: Sequence[bytes], height: int) -> list[bytes]:
    """Parents of `items` (which sit at `height`); an unpaired last item pairs with Z[height]."""
    cp = NODE_PREFIX.copy
    out: list[bytes] = []
    ap = out.append
    n = len(items)
    for i in range(0, n - 1, 2):
        h = cp()
        h.update(items[i])
        h.update(items[i + 1])
        ap(h.digest())
    if n & 1:
        h = cp()
        h.update(items[n - 1])
        h.update(Z[height])
        ap(h.digest())
    return out


def _build_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree over `leaves` (kept as level 0, not copied)."""
    levels = [leaves]
    height = 0
    while len(levels[-1]) > 1:
        levels.append(_next_level(levels[-1], height))
        height += 1
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of `leaves` (at least one 32-byte word), padded with bytes32(0) to a power of two."""
    d = depth(len(leaves))
    for i, x in enumerate(leaves):
        if len(x) != WORD:
            raise ValueError(f"leaf {i} must be 32 bytes, got {len(x)}; hash it first.")
    level: Sequence[bytes] = leaves
    for height in range(d):
        level = _next_level(level, height)
    return bytes(level[0])


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Sibling hashes, bottom up, for item `index` of `leaves`."""
    return MerkleTree(leaves).proof(index)


def fold(item: bytes, index: int, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` gives for `item` at `index` (no length or range checks)."""
    acc = item
    for k, sib in enumerate(proof):
        acc = node(acc, sib) if (index >> k) & 1 == 0 else node(sib, acc)
    return acc


def verify_proof(root: bytes, leaf: bytes, index: int, count: int, proof: Sequence[bytes]) -> bool:
    """True iff `proof` shows `leaf` is item `index` of a `count`-item tree with this `root`.

    `count` must come from committed data, never from the prover: a proof whose length is not
    ceil(log2 count), an index outside 0..count-1, or a non-32-byte word is rejected.
    """
    if count < 1 or not 0 <= index < count:
        return False
    if len(proof) != depth(count):
        return False
    if len(root) != WORD or len(leaf) != WORD or any(len(s) != WORD for s in proof):
        return False
    return fold(bytes(leaf), index, proof) == bytes(root)


def check_proof(root: bytes, leaf: bytes, index: int, count: int, proof: Sequence[bytes], what: str) -> None:
    """`verify_proof` that raises ProofError with a one-line reason instead of returning False."""
    if count < 1:
        raise ProofError(f"{what}: the tree has no items; nothing can be opened.")
    if not 0 <= index < count:
        raise ProofError(f"{what}: index {index} is outside 0..{count - 1}; open an existing item.")
    if len(proof) != depth(count):
        raise ProofError(
            f"{what}: proof has {len(proof)} siblings but a {count}-item tree needs {depth(count)}; "
            "rebuild the proof."
        )
    if len(leaf) != WORD or any(len(s) != WORD for s in proof):
        raise ProofError(f"{what}: proof words must be 32 bytes; rebuild the proof.")
    if fold(bytes(leaf), index, proof) != bytes(root):
        raise ProofError(f"{what}: Merkle proof does not reach the committed root; the opening is wrong.")


class MerkleTree:
    """All levels of a padded tree, for repeated proofs and O(log n) single-item updates.

    Only real nodes are stored (level h holds ceil(count / 2^h) nodes); positions past them are
    padding and read as Z[h].
    """

    __slots__ = ("_levels", "_count", "_depth")

    def __init__(self, leaves: Iterable[bytes]) -> None:
        items = [bytes(x) for x in leaves]
        for i, x in enumerate(items):
            if len(x) != WORD:
                raise ValueError(f"leaf {i} must be 32 bytes, got {len(x)}; hash it first.")
        self._count = len(items)
        self._depth = depth(self._count)
        self._levels = _build_levels(items)

    @classmethod
    def _from_trusted(cls, leaves: list[bytes]) -> MerkleTree:
        """Build from a list of 32-byte `bytes` this module produced (no copy, no checks)."""
        t = cls.__new__(cls)
        t._count = len(leaves)
        t._depth = depth(t._count)
        t._levels = _build_levels(leaves)
        return t

    @classmethod
    def empty(cls, count: int) -> MerkleTree:
        """A tree of `count` bytes32(0) items, built from Z without hashing."""
        t = cls.__new__(cls)
        t._count = count
        t._depth = depth(count)
        t._levels = [[Z[h]] * (((count - 1) >> h) + 1) for h in range(t._depth + 1)]
        return t

    def copy(self) -> MerkleTree:
        t = MerkleTree.__new__(MerkleTree)
        t._count = self._count
        t._depth = self._depth
        t._levels = [list(level) for level in self._levels]
        return t

    @property
    def count(self) -> int:
        """Number of items (before padding)."""
        return self._count

    @property
    def depth(self) -> int:
        """D = ceil(log2 count); also the length of every proof."""
        return self._depth

    @property
    def root(self) -> bytes:
        return self._levels[self._depth][0]

    @property
    def leaves(self) -> list[bytes]:
        return list(self._levels[0])

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> bytes:
        return self.leaf(index)

    def leaf(self, index: int) -> bytes:
        self._check_index(index, self._count)
        return self._levels[0][index]

    def width(self, level: int) -> int:
        """Number of positions at `level` including padding: 2^(depth - level)."""
        if not 0 <= level <= self._depth:
            raise IndexError(f"level {level} is outside 0..{self._depth}; levels count up from the leaves.")
        return 1 << (self._depth - level)

    def node_at(self, level: int, index: int) -> bytes:
        """Value of position `index` at height `level` (0 = items, depth = root); Z[level] if padding."""
        self._check_index(index, self.width(level))
        row = self._levels[level]
        return row[index] if index < len(row) else Z[level]

    def proof(self, index: int, level: int = 0) -> list[bytes]:
        """Siblings, bottom up, from position `index` at `level` to the root (depth - level words).

        Only positions covering at least one real item can be proven (at level 0: index < count).
        """
        self.width(level)
        self._check_index(index, len(self._levels[level]))
        out: list[bytes] = []
        for h in range(level, self._depth):
            sib = index ^ 1
            row = self._levels[h]
            out.append(row[sib] if sib < len(row) else Z[h])
            index >>= 1
        return out

    def update(self, index: int, leaf: bytes) -> None:
        """Replace item `index` and rehash its path: depth node hashes."""
        self._check_index(index, self._count)
        _check_word(leaf, "leaf")
        acc = bytes(leaf)
        levels = self._levels
        levels[0][index] = acc
        for h in range(self._depth):
            row = levels[h]
            if index & 1:
                acc = node(row[index - 1], acc)
            else:
                sib = index + 1
                acc = node(acc, row[sib] if sib < len(row) else Z[h])
            index >>= 1
            levels[h + 1][index] = acc

    def update_many(self, updates: Iterable[tuple[int, bytes]]) -> None:
        """Apply several item updates (later ones win), hashing each touched inner node once."""
        levels = self._levels
        dirty: set[int] = set()
        for index, leaf in updates:
            self._check_index(index, self._count)
            _check_word(leaf, "leaf")
            levels[0][index] = bytes(leaf)
            dirty.add(index)
        for h in range(self._depth):
            row, up = levels[h], levels[h + 1]
            parents = {i >> 1 for i in dirty}
            for p in parents:
                left = 2 * p
                right = row[left + 1] if left + 1 < len(row) else Z[h]
                up[p] = node(row[left], right)
            dirty = parents

    @staticmethod
    def _check_index(index: int, limit: int) -> None:
        if not 0 <= index < limit:
            raise IndexError(f"index {index} is outside 0..{limit - 1}; open an existing position.")


__all__ = [
    "WORD",
    "ZERO",
    "Z",
    "MAX_HEIGHT",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "MerkleTree",
    "check_proof",
    "depth",
    "fold",
    "keccak",
    "keccak_prefix",
    "leaf_hash",
    "merkle_proof",
    "merkle_root",
    "node",
    "verify_proof",
]
