"""verifier.commit.merkle against known answers and an independent pycryptodome implementation."""

from __future__ import annotations

import random

import pytest
from Crypto.Hash import keccak as cd_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.commit.merkle import (
    ZERO,
    MerkleTree,
    Z,
    check_proof,
    depth,
    fold,
    keccak,
    leaf_hash,
    merkle_proof,
    merkle_root,
    node,
    verify_proof,
)
from verifier.core.errors import ProofError

# --------------------------------------------------------------------------------------------
# Independent reference (pycryptodome, recursive, explicit padding list)


def ref_h(data: bytes) -> bytes:
    h = cd_keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    return ref_h(b"\x01" + left + right)


def ref_pad(items: list[bytes]) -> list[bytes]:
    m = 1
    while m < len(items):
        m *= 2
    return items + [bytes(32)] * (m - len(items))


def ref_merkle(items: list[bytes]) -> bytes:
    def rec(xs: list[bytes]) -> bytes:
        if len(xs) == 1:
            return xs[0]
        half = len(xs) // 2
        return ref_node(rec(xs[:half]), rec(xs[half:]))

    return rec(ref_pad(items))


def ref_proof(items: list[bytes], index: int) -> list[bytes]:
    level = ref_pad(items)
    out = []
    while len(level) > 1:
        out.append(level[index ^ 1])
        level = [ref_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        index //= 2
    return out


def rand_leaves(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(32) for _ in range(n)]


POW2_AROUND = sorted({p + d for p in (1, 2, 4, 8, 16, 32, 64, 128, 256) for d in (-1, 0, 1) if p + d >= 1})
COUNTS = sorted(set(range(1, 71)) | set(POW2_AROUND))

# --------------------------------------------------------------------------------------------
# Known answers


def test_keccak_empty_known_answer() -> None:
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak().hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_keccak_is_ethereum_not_nist() -> None:
    assert keccak(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    # NIST SHA3-256("abc") is 3a985da7...; make sure that is not what we compute.
    assert not keccak(b"abc").hex().startswith("3a985da7")


def test_keccak_parts_concatenate() -> None:
    data = bytes(range(200))
    assert keccak(data[:3], memoryview(data)[3:150], bytearray(data[150:])) == keccak(data) == ref_h(data)


def test_leaf_and_node_domain_tags() -> None:
    a, b = b"\x11" * 32, b"\x22" * 32
    assert leaf_hash(a) == ref_h(b"\x00" + a)
    assert leaf_hash(a[:5], a[5:]) == ref_h(b"\x00" + a)
    assert node(a, b) == ref_h(b"\x01" + a + b)
    assert node(a, b) != node(b, a)
    assert leaf_hash(a + b) != node(a, b)


def test_zero_subtree_chain() -> None:
    assert Z[0] == bytes(32) == ZERO
    assert Z[1].hex() == "c07a1e8b7e0057673fdc2affe190d8a960c5fe615663f27b7ce84f3d93ef92a6"
    assert Z[2].hex() == "fd47517474a597637d54038a0663d1d03b931b238de06b73e3c12cf443de6e8d"
    z = bytes(32)
    for h in range(len(Z) - 1):
        assert Z[h] == z
        z = ref_node(z, z)
    # A tree of 2^h zero items is Z[h].
    for h in range(7):
        assert merkle_root([ZERO] * (1 << h)) == Z[h]
        assert MerkleTree.empty(1 << h).root == Z[h]


def test_hand_computed_small_trees() -> None:
    a, b, c, d, e = (bytes([i]) * 32 for i in range(1, 6))
    assert merkle_root([a]) == a  # merkle([x]) = x, no hashing
    assert merkle_root([a, b]) == ref_h(b"\x01" + a + b)
    ab = ref_h(b"\x01" + a + b)
    c0 = ref_h(b"\x01" + c + bytes(32))
    assert merkle_root([a, b, c]) == ref_h(b"\x01" + ab + c0)
    cd = ref_h(b"\x01" + c + d)
    e0 = ref_h(b"\x01" + e + bytes(32))
    e000 = ref_h(b"\x01" + e0 + Z[1])
    assert merkle_root([a, b, c, d, e]) == ref_h(b"\x01" + ref_h(b"\x01" + ab + cd) + e000)
    assert merkle_proof([a, b, c, d, e], 4) == [bytes(32), Z[1], ref_h(b"\x01" + ab + cd)]
    assert merkle_proof([a, b, c], 1) == [a, c0]
    assert merkle_proof([a], 0) == []


def test_depth() -> None:
    assert [depth(m) for m in (1, 2, 3, 4, 5, 8, 9, 1024, 1025)] == [0, 1, 2, 2, 3, 3, 4, 10, 11]
    with pytest.raises(ValueError):
        depth(0)
    with pytest.raises(ValueError):
        merkle_root([])


def test_rejects_non_word_leaves() -> None:
    with pytest.raises(ValueError):
        merkle_root([b"\x00" * 31])
    with pytest.raises(ValueError):
        MerkleTree([bytes(32), b"\x00" * 33])


# --------------------------------------------------------------------------------------------
# Cross-check against the reference


@pytest.mark.parametrize("count", COUNTS)
def test_root_and_every_proof_match_reference(count: int) -> None:
    rng = random.Random(count)
    leaves = rand_leaves(rng, count)
    # Zero leaves look exactly like padding; include some.
    for i in range(0, count, 3):
        leaves[i] = bytes(32)
    root = ref_merkle(leaves)
    assert merkle_root(leaves) == root
    tree = MerkleTree(leaves)
    assert tree.root == root and tree.count == count and tree.depth == depth(count)
    for i in range(count):
        p = tree.proof(i)
        assert p == ref_proof(leaves, i)
        assert verify_proof(root, leaves[i], i, count, p)


@settings(max_examples=150, deadline=None)
@given(
    count=st.one_of(st.integers(1, 70), st.sampled_from(POW2_AROUND)),
    seed=st.integers(0, 2**32 - 1),
    zero_frac=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_hypothesis_root_matches_reference(count: int, seed: int, zero_frac: float) -> None:
    rng = random.Random(seed)
    leaves = [bytes(32) if rng.random() < zero_frac else rng.randbytes(32) for _ in range(count)]
    root = merkle_root(leaves)
    assert root == ref_merkle(leaves)
    i = rng.randrange(count)
    assert merkle_proof(leaves, i) == ref_proof(leaves, i)
    assert verify_proof(root, leaves[i], i, count, merkle_proof(leaves, i))


@settings(max_examples=100, deadline=None)
@given(count=st.integers(1, 70), seed=st.integers(0, 2**32 - 1))
def test_root_depends_on_count_not_only_on_values(count: int, seed: int) -> None:
    """Appending a zero leaf changes the root only when it crosses a power of two."""
    rng = random.Random(seed)
    leaves = rand_leaves(rng, count)
    same = merkle_root(leaves + [ZERO]) == merkle_root(leaves)
    assert same == (count & (count - 1) != 0)


# --------------------------------------------------------------------------------------------
# Proof rejection


@pytest.mark.parametrize("count", [2, 3, 5, 8, 9, 33])
def test_tampered_proofs_fail(count: int) -> None:
    rng = random.Random(1000 + count)
    leaves = rand_leaves(rng, count)
    tree = MerkleTree(leaves)
    root = tree.root
    for i in range(count):
        p = tree.proof(i)
        leaf = leaves[i]
        assert verify_proof(root, leaf, i, count, p)
        # Wrong leaf, wrong root.
        assert not verify_proof(root, rng.randbytes(32), i, count, p)
        assert not verify_proof(rng.randbytes(32), leaf, i, count, p)
        # Changed sibling at every level.
        for k in range(len(p)):
            bad = list(p)
            bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
            assert not verify_proof(root, leaf, i, count, bad)
        # Missing, extra sibling.
        assert not verify_proof(root, leaf, i, count, p[:-1])
        assert not verify_proof(root, leaf, i, count, p[1:])
        assert not verify_proof(root, leaf, i, count, p + [ZERO])
        assert not verify_proof(root, leaf, i, count, p + [Z[len(p)]])
        assert not verify_proof(root, leaf, i, count, [ZERO] + p)
        # Swapped siblings.
        if len(p) >= 2 and p[0] != p[1]:
            assert not verify_proof(root, leaf, i, count, [p[1], p[0]] + p[2:])
        # Wrong index (a different, valid position).
        j = (i + 1) % count
        if leaves[j] != leaf:
            assert not verify_proof(root, leaf, j, count, p)
        # Wrong count: different depth.
        assert not verify_proof(root, leaf, i, 2 * count, p)
        # Non-word sibling.
        if p:
            assert not verify_proof(root, leaf, i, count, [p[0] + b"\x00"] + p[1:])
    assert not verify_proof(root, leaves[0], -1, count, tree.proof(0))
    assert not verify_proof(root, leaves[0], 0, 0, tree.proof(0))


def test_padding_positions_cannot_be_opened() -> None:
    """A padding item folds to the root with a Z-based proof, but index >= count is rejected."""
    leaves = rand_leaves(random.Random(7), 5)
    tree = MerkleTree(leaves)
    for i in (5, 6, 7):
        p = [tree.node_at(k, (i >> k) ^ 1) for k in range(tree.depth)]
        assert fold(ZERO, i, p) == tree.root
        assert not verify_proof(tree.root, ZERO, i, 5, p)
        with pytest.raises(ProofError) as e:
            check_proof(tree.root, ZERO, i, 5, p, "test")
        assert "\n" not in str(e.value)
        # With a lying count the padding would verify: the count must come from committed data.
        assert verify_proof(tree.root, ZERO, i, 8, p)
    with pytest.raises(IndexError):
        tree.proof(5)


def test_check_proof_messages_are_one_line() -> None:
    leaves = rand_leaves(random.Random(3), 6)
    tree = MerkleTree(leaves)
    p = tree.proof(2)
    check_proof(tree.root, leaves[2], 2, 6, p, "test")
    cases = [
        (leaves[2], 2, 6, p[:-1]),
        (leaves[2], 6, 6, p),
        (leaves[3], 2, 6, p),
        (leaves[2], 2, 0, p),
        (leaves[2][:31], 2, 6, p),
    ]
    for leaf, i, m, pr in cases:
        with pytest.raises(ProofError) as e:
            check_proof(tree.root, leaf, i, m, pr, "test")
        msg = str(e.value)
        assert msg and "\n" not in msg


# --------------------------------------------------------------------------------------------
# MerkleTree: levels, inner nodes, updates


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 8, 13, 16, 17])
def test_node_at_matches_reference_subtrees(count: int) -> None:
    leaves = rand_leaves(random.Random(count), count)
    tree = MerkleTree(leaves)
    padded = ref_pad(leaves)
    for level in range(tree.depth + 1):
        assert tree.width(level) == len(padded) >> level
        for i in range(tree.width(level)):
            sub = padded[i << level : (i + 1) << level]
            assert tree.node_at(level, i) == ref_merkle(sub)
            # Inner-node proofs fold to the root; only positions over real items have one.
            if i < -(-count >> level):
                p = tree.proof(i, level)
                assert len(p) == tree.depth - level
                assert fold(tree.node_at(level, i), i, p) == tree.root
            else:
                with pytest.raises(IndexError):
                    tree.proof(i, level)
        with pytest.raises(IndexError):
            tree.node_at(level, tree.width(level))
    assert tree.node_at(tree.depth, 0) == tree.root
    with pytest.raises(IndexError):
        tree.node_at(tree.depth + 1, 0)
    with pytest.raises(IndexError):
        tree.node_at(0, -1)


def test_padding_nodes_are_zero_subtrees() -> None:
    tree = MerkleTree(rand_leaves(random.Random(0), 9))  # depth 4, 16 positions
    assert tree.node_at(0, 9) == Z[0]
    assert tree.node_at(1, 5) == Z[1]
    assert tree.node_at(2, 3) == Z[2]
    assert tree.node_at(1, 4) != Z[1]  # leaf 8 is real
    assert tree.node_at(3, 1) != Z[3]


@settings(max_examples=60, deadline=None)
@given(
    count=st.one_of(st.integers(1, 40), st.sampled_from(POW2_AROUND)),
    seed=st.integers(0, 2**32 - 1),
    n_updates=st.integers(1, 30),
)
def test_updates_match_rebuild(count: int, seed: int, n_updates: int) -> None:
    rng = random.Random(seed)
    leaves = rand_leaves(rng, count)
    tree = MerkleTree(leaves)
    batch_tree = tree.copy()
    batch: list[tuple[int, bytes]] = []
    for _ in range(n_updates):
        i = rng.randrange(count)
        v = ZERO if rng.random() < 0.3 else rng.randbytes(32)
        leaves[i] = v
        tree.update(i, v)
        batch.append((i, v))
        assert tree.root == ref_merkle(leaves)
    batch_tree.update_many(batch)
    assert batch_tree.root == tree.root
    assert batch_tree.leaves == tree.leaves == leaves
    for level in range(tree.depth + 1):
        for i in range(tree.width(level)):
            assert batch_tree.node_at(level, i) == tree.node_at(level, i)
    i = rng.randrange(count)
    assert tree.proof(i) == ref_proof(leaves, i)


def test_update_bounds_and_copy_independence() -> None:
    tree = MerkleTree(rand_leaves(random.Random(1), 5))
    c = tree.copy()
    tree.update(4, ZERO)
    assert c.root != tree.root
    assert c[4] != ZERO and tree[4] == ZERO
    with pytest.raises(IndexError):
        tree.update(5, ZERO)
    with pytest.raises(IndexError):
        tree.update(-1, ZERO)
    with pytest.raises(ValueError):
        tree.update(0, b"\x00" * 31)


@pytest.mark.parametrize("count", [1, 2, 3, 6, 8, 100])
def test_empty_tree_matches_zero_leaves(count: int) -> None:
    t = MerkleTree.empty(count)
    assert t.root == ref_merkle([ZERO] * count) == Z[depth(count)]
    t.update(count - 1, b"\x01" * 32)
    assert t.root == ref_merkle([ZERO] * (count - 1) + [b"\x01" * 32])
