"""verifier.commit.commitments: tensor/state/graph/program commitments, openings and their rejection."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import numpy as np
import pytest
from Crypto.Hash import keccak as cd_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.commit import commitments
from verifier.commit.commitments import (
    CHUNK,
    EMPTY,
    ElementOpening,
    NodeOpening,
    SlotOpening,
    SlotTable,
    StateOpening,
    chunks,
    commit,
    commit_tensor,
    data_root,
    dataset_root,
    descriptor_leaf,
    graph_root,
    graph_tree,
    n_chunks,
    open_element,
    open_node,
    open_state_element,
    parse_header,
    program_id,
    state_root,
    tensor_header,
    verify_element,
    verify_node,
    verify_slot,
    verify_state_element,
)
from verifier.commit.merkle import MerkleTree, Z, fold
from verifier.core.dtypes import DType, TensorType, encode
from verifier.core.errors import (
    ProgramError,
    ProofError,
    ShapeError,
    UnsupportedOpError,
)

# --------------------------------------------------------------------------------------------
# Independent reference: pycryptodome keccak, per-element int.to_bytes, recursive merkle


def ref_h(data: bytes) -> bytes:
    h = cd_keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


def ref_merkle(items: list[bytes]) -> bytes:
    m = 1
    while m < len(items):
        m *= 2
    xs = items + [bytes(32)] * (m - len(items))
    while len(xs) > 1:
        xs = [ref_h(b"\x01" + xs[i] + xs[i + 1]) for i in range(0, len(xs), 2)]
    return xs[0]


WIDTH = {np.dtype(np.int8): 1, np.dtype(np.int32): 4, np.dtype(np.int64): 8, np.dtype(np.bool_): 1}
CODE = {np.dtype(np.int8): 3, np.dtype(np.int32): 6, np.dtype(np.int64): 7, np.dtype(np.bool_): 9}


def ref_encode(a: np.ndarray) -> bytes:
    w = WIDTH[a.dtype]
    return b"".join(int(v).to_bytes(w, "big", signed=True) for v in np.asarray(a).reshape(-1).tolist())


def ref_header(a: np.ndarray) -> bytes:
    h = bytes([CODE[a.dtype], a.ndim]) + b"".join(d.to_bytes(4, "big") for d in a.shape)
    return h + bytes(32 - len(h))


def ref_commit(a: np.ndarray) -> bytes:
    data = ref_encode(a)
    n_leaves = max(1, -(-len(data) // CHUNK))
    padded = data + bytes(n_leaves * CHUNK - len(data))
    leaves = [ref_h(b"\x00" + padded[j * CHUNK : (j + 1) * CHUNK]) for j in range(n_leaves)]
    return ref_h(b"\x02" + ref_header(a) + ref_merkle(leaves))


DTYPES = [np.int8, np.int32, np.int64, np.bool_]


def rand_array(rng: np.random.Generator, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    if dtype is np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    flat = a.reshape(-1)
    if flat.size >= 3:  # make sure extremes show up
        flat[0], flat[1], flat[2] = info.min, info.max, -1
    return a


def shapes_for(dtype: type) -> list[tuple[int, ...]]:
    w = np.dtype(dtype).itemsize
    per_chunk = CHUNK // w
    return [
        (),
        (0,),
        (3, 0, 2),
        (1,),
        (7,),
        (1, 2, 1, 3, 1, 2),  # rank 6
        (per_chunk,),  # exactly CHUNK bytes
        (per_chunk + 1,),  # CHUNK + 1 bytes
        (per_chunk - 1,),
        (2, per_chunk),  # exactly 2 chunks
        (3, per_chunk // 2 + 5),  # 3 chunks with a partly used last one
    ]


def one_line_proof_error(fn: Callable[[], object]) -> str:
    with pytest.raises(ProofError) as e:
        fn()
    msg = str(e.value)
    assert msg and "\n" not in msg, repr(msg)
    return msg


def interesting_indices(n: int, width: int) -> list[int]:
    if n == 0:
        return []
    per_chunk = CHUNK // width
    idx = {0, n - 1, n // 2}
    for start in range(0, n, per_chunk):
        idx.update({start - 1, start, start + 1})
    return sorted(i for i in idx if 0 <= i < n)


# --------------------------------------------------------------------------------------------
# Header


def test_header_known_answer() -> None:
    h = tensor_header(TensorType(DType.INT64, (2, 3)))
    assert h == bytes([7, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(22)
    assert tensor_header(TensorType(DType.BOOL, ())) == bytes([9, 0]) + bytes(30)
    h6 = tensor_header(TensorType(DType.INT8, (1, 1, 1, 1, 0, 2**32 - 1)))
    assert len(h6) == 32 and h6[22:26] == b"\xff\xff\xff\xff" and h6[26:] == bytes(6)
    # the element count must stay below 2^32 too (SPEC 1.2)
    with pytest.raises(ShapeError):
        tensor_header(TensorType(DType.INT8, (2, 2**31)))
    with pytest.raises(ProofError):
        parse_header(bytes([3, 2, 0, 0, 0, 2, 0x80, 0, 0, 0]) + bytes(22))


@pytest.mark.parametrize("dtype", list(DType))
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3), (1, 2, 3, 4, 5, 6), (2**32 - 1, 0)])
def test_header_roundtrip(dtype: DType, shape: tuple[int, ...]) -> None:
    tt = TensorType(dtype, shape)
    h = tensor_header(tt)
    assert len(h) == 32
    assert parse_header(h) == tt


def test_tensor_header_refuses_bad_types() -> None:
    with pytest.raises(ShapeError):
        tensor_header(TensorType(DType.INT8, (1,) * 7))
    with pytest.raises(ShapeError):
        tensor_header(TensorType(DType.INT8, (2**32,)))
    with pytest.raises(ShapeError):
        tensor_header(TensorType(DType.INT8, (-1,)))


def test_parse_header_rejects_non_canonical() -> None:
    good = bytearray(tensor_header(TensorType(DType.INT32, (4, 5))))
    for code in (0, 1, 2, 4, 5, 8, 10, 255):
        bad = bytearray(good)
        bad[0] = code
        one_line_proof_error(lambda: parse_header(bytes(bad)))
    for rank in (7, 8, 255):
        bad = bytearray(good)
        bad[1] = rank
        one_line_proof_error(lambda: parse_header(bytes(bad)))
    # Every byte after the last dim: dims past the rank and the 6 trailing bytes.
    for pos in range(2 + 4 * 2, 32):
        bad = bytearray(good)
        bad[pos] = 1
        one_line_proof_error(lambda: parse_header(bytes(bad)))
    # A rank-6 header may use bytes 2..25 but never 26..31.
    full = bytearray(tensor_header(TensorType(DType.INT8, (1,) * 6)))
    for pos in range(26, 32):
        bad = bytearray(full)
        bad[pos] = 0x80
        one_line_proof_error(lambda: parse_header(bytes(bad)))
    one_line_proof_error(lambda: parse_header(bytes(good[:31])))
    one_line_proof_error(lambda: parse_header(bytes(good) + b"\x00"))


# --------------------------------------------------------------------------------------------
# Tensor commitments


def test_encoding_known_answers() -> None:
    assert chunks(np.array([-1, 1], dtype=np.int32))[0][:8] == bytes.fromhex("ffffffff00000001")
    assert chunks(np.array([-(2**63)], dtype=np.int64))[0][:8] == bytes.fromhex("8000000000000000")
    assert chunks(np.array([True, False, True]))[0][:3] == b"\x01\x00\x01"
    assert chunks(np.array([-128, 127], dtype=np.int8))[0][:2] == b"\x80\x7f"


def test_empty_tensor_known_answer() -> None:
    a = np.zeros((0,), dtype=np.int8)
    cs = chunks(a)
    assert cs == [bytes(CHUNK)]
    leaf = ref_h(b"\x00" + bytes(CHUNK))
    assert data_root(a) == leaf  # one leaf: the root is the leaf itself
    header = bytes([3, 1]) + bytes(30)
    assert commit_tensor(a) == ref_h(b"\x02" + header + leaf)


def test_scalar_known_answer() -> None:
    a = np.array(5, dtype=np.int64)
    chunk = (5).to_bytes(8, "big") + bytes(CHUNK - 8)
    expected = ref_h(b"\x02" + bytes([7, 0]) + bytes(30) + ref_h(b"\x00" + chunk))
    assert commit_tensor(a) == expected
    assert commit_tensor(np.int64(5)) == expected


@pytest.mark.parametrize("dtype", DTYPES)
def test_commit_matches_reference(dtype: type) -> None:
    rng = np.random.default_rng(CODE[np.dtype(dtype)])
    for shape in shapes_for(dtype):
        a = rand_array(rng, dtype, shape)
        tc = commit(a)
        assert tc.root == ref_commit(a) == commit_tensor(a)
        assert tc.header == ref_header(a)
        assert tc.data_root == data_root(a)
        assert tc.n_chunks == len(chunks(a)) == n_chunks(tc.ttype)
        assert all(len(c) == CHUNK for c in chunks(a))
        assert b"".join(chunks(a))[: len(ref_encode(a))] == ref_encode(a) == encode(a)
        assert bytes(tc.data) == encode(a)


def test_chunk_counts_at_boundaries() -> None:
    assert len(chunks(np.zeros(CHUNK, np.int8))) == 1
    assert len(chunks(np.zeros(CHUNK + 1, np.int8))) == 2
    assert len(chunks(np.zeros(CHUNK // 8, np.int64))) == 1
    assert len(chunks(np.zeros(CHUNK // 8 + 1, np.int64))) == 2
    assert len(chunks(np.zeros(0, np.int64))) == 1


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES),
    shape=st.lists(st.integers(0, 9), min_size=0, max_size=6).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    pick=st.integers(0, 2**31),
)
def test_hypothesis_commit_and_open(dtype: type, shape: tuple[int, ...], seed: int, pick: int) -> None:
    a = rand_array(np.random.default_rng(seed), dtype, shape)
    tc = commit(a)
    assert tc.root == ref_commit(a)
    if a.size:
        i = pick % a.size
        assert verify_element(tc.root, open_element(tc, i), tc.ttype, i) == int(a.reshape(-1)[i])


def test_determinism_across_calls_and_layouts() -> None:
    rng = np.random.default_rng(0)
    for dtype in DTYPES:
        base = rand_array(rng, dtype, (37, 90))
        root = commit_tensor(base)
        assert commit_tensor(base) == root
        assert commit_tensor(base.copy()) == root
        assert commit_tensor(np.asfortranarray(base)) == root
        # Non-contiguous views commit as their row-major contents.
        big = rand_array(rng, dtype, (74, 180))
        big[::2, ::2] = base
        view = big[::2, ::2]
        assert not view.flags.c_contiguous
        assert commit_tensor(view) == root
        t = base.T
        assert commit_tensor(t) == commit_tensor(np.ascontiguousarray(t)) == ref_commit(t)
        assert commit_tensor(t) != root
        # Same bytes, different shape: different commitment.
        assert commit_tensor(base.reshape(90, 37)) != root
        assert data_root(base.reshape(90, 37)) == data_root(base)


def test_commitment_does_not_alias_the_array() -> None:
    for dtype in DTYPES:
        a = rand_array(np.random.default_rng(1), dtype, (40, 60))
        tc = commit(a)
        o = open_element(tc, 5)
        a[...] = 0 if dtype is not np.bool_ else ~a
        assert open_element(tc, 5) == o
        assert verify_element(tc.root, o) == o.value
        with pytest.raises(TypeError):
            tc.data[0] = 1


def test_same_data_different_dtype_differs() -> None:
    a = np.zeros(16, np.int8)
    assert commit_tensor(a) != commit_tensor(a.astype(np.bool_))


def test_type_memo__keyed_by_exact_dtype_and_shape() -> None:
    """The header and type a commitment remembers per (dtype, shape) never cross over: a shape
    seen with one dtype, a dtype seen with one shape, and a non-native byte order (refused,
    before and after its native twin was committed) each get their own answer."""
    for shape in [(3, 4), (4, 3), (12,)]:
        for dtype in DTYPES:
            a = rand_array(np.random.default_rng(7), dtype, shape)
            assert commit(a).root == ref_commit(a)
            assert commit(a).ttype == TensorType(DType.from_numpy(a.dtype), shape)
    swapped = np.arange(12, dtype=">i8").reshape(3, 4)
    for _ in range(2):
        with pytest.raises(UnsupportedOpError, match="outside the integer profile"):
            commit(swapped)


def test_type_memo__stays_bounded() -> None:
    """Many distinct shapes (a long-lived daemon sees tasks of many programs) do not grow the
    memo past its bound, and commitments stay right across the reset."""
    for n in range(commitments._TYPED_MAX + 10):
        commit(np.zeros((1, n), np.int8))
        assert len(commitments._TYPED) <= commitments._TYPED_MAX
    a = rand_array(np.random.default_rng(3), np.int64, (1, 5))
    assert commit(a).root == ref_commit(a)


@pytest.mark.parametrize(
    "size", [1, CHUNK // 8 - 1, CHUNK // 8, CHUNK // 8 + 1, 3 * CHUNK // 8 - 3, (1 << 16) // 8, (1 << 16) // 8 + 1]
)
def test_commit_matches_reference_around_chunk_and_copy_sizes(size: int) -> None:
    """Tails padded from the shared zero buffer, whole chunks, and both encodings (a bytes copy
    up to 64 KiB, a byte view above) give the reference root and openings."""
    a = rand_array(np.random.default_rng(size), np.int64, (size,))
    tc = commit(a)
    assert tc.root == ref_commit(a)
    assert bytes(tc.data) == encode(a)
    for i in {0, size // 2, size - 1}:
        assert verify_element(tc.root, open_element(tc, i), tc.ttype, i) == int(a[i])


# --------------------------------------------------------------------------------------------
# Element openings: completeness


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_opening_verifies(dtype: type) -> None:
    rng = np.random.default_rng(100 + CODE[np.dtype(dtype)])
    w = np.dtype(dtype).itemsize
    for shape in shapes_for(dtype):
        a = rand_array(rng, dtype, shape)
        flat = a.reshape(-1)
        tc = commit(a)
        idx = range(a.size) if a.size <= 64 else interesting_indices(a.size, w)
        for i in idx:
            o = open_element(tc, i)
            assert o.chunk_index == i * w // CHUNK
            assert len(o.proof) == (tc.n_chunks - 1).bit_length()
            assert o.value == int(flat[i])
            assert verify_element(tc.root, o) == int(flat[i])
            assert verify_element(tc.root, o, tc.ttype, i) == int(flat[i])
            assert tc.open(i) == o
        with pytest.raises(IndexError):
            open_element(tc, a.size)
        with pytest.raises(IndexError):
            open_element(tc, -1)


# --------------------------------------------------------------------------------------------
# Element openings: soundness


def _flip(b: bytes, pos: int, mask: int = 1) -> bytes:
    return b[:pos] + bytes([b[pos] ^ mask]) + b[pos + 1 :]


@pytest.fixture(scope="module")
def multi() -> tuple[np.ndarray, object]:
    # int32 (3, 700): 8400 bytes -> 5 chunks (depth 3), last chunk uses 208 bytes.
    a = rand_array(np.random.default_rng(5), np.int32, (3, 700))
    return a, commit(a)


def test_tampered_element_openings_fail(multi: tuple[np.ndarray, object]) -> None:
    a, tc = multi
    assert tc.n_chunks == 5
    flat = a.reshape(-1)
    root = tc.root
    rep = dataclasses.replace
    for i in (0, 511, 512, 1023, 1024, 2047, 2048, 2099):
        o = open_element(tc, i)
        assert verify_element(root, o) == int(flat[i])
        off = i * 4 % CHUNK
        fails: list[ElementOpening] = []
        # Changed value byte (every byte of the element).
        fails += [rep(o, chunk=_flip(o.chunk, off + k)) for k in range(4)]
        # Changed element index to another chunk, out of range, negative.
        fails += [rep(o, index=(i + 512) % a.size), rep(o, index=a.size), rep(o, index=-1)]
        # Changed chunk index (alone, and together with a consistent element index).
        fails += [rep(o, chunk_index=o.chunk_index ^ 1), rep(o, chunk_index=5), rep(o, chunk_index=8)]
        fails += [rep(o, chunk_index=o.chunk_index ^ 1, index=(o.chunk_index ^ 1) * 512 + off // 4)]
        # Changed, missing, extra, swapped siblings.
        p = list(o.proof)
        fails += [rep(o, proof=tuple(p[:k] + [_flip(p[k], 31)] + p[k + 1 :])) for k in range(len(p))]
        fails += [rep(o, proof=tuple(p[:-1])), rep(o, proof=tuple(p[1:])), rep(o, proof=())]
        fails += [rep(o, proof=tuple(p + [Z[3]])), rep(o, proof=tuple([bytes(32)] + p))]
        fails += [rep(o, proof=(p[1], p[0], *p[2:])), rep(o, proof=(p[0], p[2], p[1]))]
        fails += [rep(o, proof=tuple(p[:-1] + [p[-1] + b"\x00"]))]
        # Wrong header: dtype, shape, rank (each a canonical header of another type).
        for tt in (
            TensorType(DType.INT64, (3, 700)),
            TensorType(DType.INT32, (700, 3)),
            TensorType(DType.INT32, (2100,)),
            TensorType(DType.INT32, (1, 3, 700)),
            TensorType(DType.INT32, (3, 701)),
        ):
            fails.append(rep(o, header=tensor_header(tt)))
        # Wrong data root, short chunk, long chunk.
        fails += [rep(o, data_root=_flip(o.data_root, 0)), rep(o, data_root=o.data_root[:31])]
        fails += [rep(o, chunk=o.chunk[:-1]), rep(o, chunk=o.chunk + b"\x00")]
        for bad in fails:
            assert bad != o
            one_line_proof_error(lambda: verify_element(root, bad))
        # Another element of the same chunk opens truthfully, but not as element i.
        j = i + 1 if i + 1 < a.size and (i + 1) * 4 // CHUNK == o.chunk_index else i - 1
        other = rep(o, index=j)
        assert verify_element(root, other) == int(flat[j])
        one_line_proof_error(lambda: verify_element(root, other, index=i))
        # Expected static type.
        one_line_proof_error(lambda: verify_element(root, o, TensorType(DType.INT32, (700, 3))))
        one_line_proof_error(lambda: verify_element(_flip(root, 5), o))


def _forge(header: bytes, chunk_list: list[bytes]) -> tuple[bytes, MerkleTree]:
    """A commitment built from arbitrary chunks, to test checks a Merkle proof cannot catch."""
    tree = MerkleTree([ref_h(b"\x00" + c) for c in chunk_list])
    return ref_h(b"\x02" + header + tree.root), tree


def test_non_zero_padding_in_last_chunk_fails() -> None:
    for a in (np.arange(5, dtype=np.int64), np.ones(CHUNK + 1, np.int8), np.ones(300, np.int64)):
        tc = commit(a)
        cs = chunks(a)
        used = a.nbytes - (len(cs) - 1) * CHUNK
        for pos in (used, CHUNK - 1):
            bad_chunks = cs[:-1] + [_flip(cs[-1], pos, 0x80)]
            root, tree = _forge(tc.header, bad_chunks)
            i = a.size - 1
            o = ElementOpening(tc.header, tree.root, len(cs) - 1, bad_chunks[-1], tuple(tree.proof(len(cs) - 1)), i)
            assert fold(ref_h(b"\x00" + o.chunk), o.chunk_index, o.proof) == o.data_root  # path is fine
            msg = one_line_proof_error(lambda: verify_element(root, o))
            assert "padding" in msg
            # Other chunks of the forged tensor still open: the rule is per chunk.
            if len(cs) > 1:
                ok = ElementOpening(tc.header, tree.root, 0, bad_chunks[0], tuple(tree.proof(0)), 0)
                assert verify_element(root, ok) == int(a.reshape(-1)[0])


def test_chunk_index_past_l_fails() -> None:
    # 3 chunks of int8 -> depth 2 with one padding position; forge a 4th real chunk there.
    a = np.ones(2 * CHUNK + 10, np.int8)
    tc = commit(a)
    cs = chunks(a)
    extra = b"\x01" * CHUNK
    root, tree = _forge(tc.header, cs + [extra])
    assert tree.depth == 2
    for idx in (3 * CHUNK, a.size - 1, a.size):
        o = ElementOpening(tc.header, tree.root, 3, extra, tuple(tree.proof(3)), idx)
        assert "chunk 3 is outside" in one_line_proof_error(lambda: verify_element(root, o))
    # And the honest tensor: a padding position with a Z-based proof.
    p = tuple(tc.tree.node_at(k, (3 >> k) ^ 1) for k in range(tc.tree.depth))
    o = ElementOpening(tc.header, tc.data_root, 3, bytes(CHUNK), p, 3 * CHUNK)
    one_line_proof_error(lambda: verify_element(tc.root, o))


def test_non_canonical_bool_byte_fails() -> None:
    a = np.zeros(10, np.bool_)
    tc = commit(a)
    chunk = bytearray(chunks(a)[0])
    chunk[3] = 2
    root, tree = _forge(tc.header, [bytes(chunk)])
    bad = ElementOpening(tc.header, tree.root, 0, bytes(chunk), (), 3)
    one_line_proof_error(lambda: verify_element(root, bad))
    with pytest.raises(ProofError):
        _ = bad.value
    # The canonicality check is on the opened element (see docs/SPEC.md 1.1).
    assert verify_element(root, dataclasses.replace(bad, index=4)) == 0
    honest = open_element(tc, 3)
    one_line_proof_error(lambda: verify_element(tc.root, dataclasses.replace(honest, chunk=bytes(chunk))))


def test_empty_tensor_has_no_openings() -> None:
    a = np.zeros((4, 0), np.int64)
    tc = commit(a)
    o = ElementOpening(tc.header, tc.data_root, 0, bytes(CHUNK), (), 0)
    one_line_proof_error(lambda: verify_element(tc.root, o))


# --------------------------------------------------------------------------------------------
# State roots and slots


def ref_state(step: int, node: int, slots_root: bytes) -> bytes:
    return ref_h(b"\x03" + step.to_bytes(8, "big") + node.to_bytes(4, "big") + slots_root)


def test_state_root_known_layout() -> None:
    r = bytes(range(32))
    assert state_root(3, 7, r) == ref_state(3, 7, r)
    assert state_root(2**64 - 1, 2**32 - 1, r) == ref_state(2**64 - 1, 2**32 - 1, r)
    for step, node in ((-1, 0), (2**64, 0), (0, -1), (0, 2**32)):
        with pytest.raises(ProgramError):
            state_root(step, node, r)
    with pytest.raises(ValueError):
        state_root(0, 0, r[:31])


def test_slot_table_roots() -> None:
    rng = random.Random(0)
    for s in (1, 2, 3, 5, 8, 33):
        t = SlotTable(s)
        assert t.root == ref_merkle([EMPTY] * s) == Z[(s - 1).bit_length()]
        cs = [EMPTY] * s
        for _ in range(2 * s):
            i, c = rng.randrange(s), rng.randbytes(32)
            t.set(i, c)
            cs[i] = c
            assert t.root == ref_merkle(cs)
        t.clear(0)
        cs[0] = EMPTY
        assert t.root == ref_merkle(cs) and t.commitments == cs and t[0] == EMPTY
        u = SlotTable(s, cs)
        assert u.root == t.root
        c = t.copy()
        t.set_many([(i, EMPTY) for i in range(s // 2, s)])
        assert t.root == ref_merkle(cs[: s // 2] + [EMPTY] * (s - s // 2))
        assert c.root == u.root
        assert t.state_root(4, 2) == ref_state(4, 2, t.root)
    for s in (0, 2**16):
        with pytest.raises(ProgramError):
            SlotTable(s)
    with pytest.raises(ValueError):
        SlotTable(3, [EMPTY])


@pytest.fixture(scope="module")
def state() -> tuple[SlotTable, list[object], int, int]:
    rng = np.random.default_rng(9)
    arrays = [np.array(4, np.int64), rand_array(rng, np.int8, (3000,)), None, rand_array(rng, np.bool_, (2, 5))]
    arrays.append(rand_array(rng, np.int64, (300,)))
    t = SlotTable(len(arrays))
    tcs = []
    for i, a in enumerate(arrays):
        tc = None if a is None else commit(a)
        tcs.append(tc)
        if tc is not None:
            t.set(i, tc.root)
    return t, tcs, 6, 11


def test_state_openings_verify(state: tuple[SlotTable, list, int, int]) -> None:
    t, tcs, step, node = state
    root = t.state_root(step, node)
    for i, tc in enumerate(tcs):
        so = t.open(i)
        assert verify_slot(root, step, node, so, len(t)) == (EMPTY if tc is None else tc.root)
        if tc is None:
            continue
        for e in interesting_indices(tc.ttype.size, tc.ttype.dtype.width):
            op = open_state_element(t, i, tc, e)
            v = verify_state_element(root, step, node, op, len(t), tc.ttype, i, e)
            assert v == op.value == open_element(tc, e).value


def test_tampered_state_openings_fail(state: tuple[SlotTable, list, int, int]) -> None:
    t, tcs, step, node = state
    s = len(t)  # 5 slots: depth 3, padding positions 5..7
    root = t.state_root(step, node)
    so = t.open(1)
    rep = dataclasses.replace
    # Wrong step / node / slot count.
    one_line_proof_error(lambda: verify_slot(root, step + 1, node, so, s))
    one_line_proof_error(lambda: verify_slot(root, step, node + 1, so, s))
    # A slot count of another depth (the count comes from the program, never from the prover).
    one_line_proof_error(lambda: verify_slot(root, step, node, so, 9))
    one_line_proof_error(lambda: verify_slot(root, step, node, so, 4))
    one_line_proof_error(lambda: verify_slot(root, step, node, so, 1))
    # Tampered opening.
    p = list(so.proof)
    for bad in (
        rep(so, index=0),
        rep(so, index=s),
        rep(so, commitment=_flip(so.commitment, 0)),
        rep(so, commitment=EMPTY),
        rep(so, slots_root=_flip(so.slots_root, 0)),
        rep(so, proof=tuple(p[:-1])),
        rep(so, proof=tuple(p + [Z[3]])),
        rep(so, proof=(p[1], p[0], p[2])),
        rep(so, proof=(_flip(p[0], 9), p[1], p[2])),
    ):
        one_line_proof_error(lambda: verify_slot(root, step, node, bad, s))
    # Slot index out of range: padding position 5 folds to the root with Z siblings.
    tree = MerkleTree(t.commitments)
    pad = SlotOpening(t.root, 5, EMPTY, tuple(tree.node_at(k, (5 >> k) ^ 1) for k in range(3)))
    assert fold(EMPTY, 5, pad.proof) == t.root
    one_line_proof_error(lambda: verify_slot(root, step, node, pad, s))
    # Empty slot holds no tensor.
    e = StateOpening(t.open(2), open_element(tcs[1], 0))
    one_line_proof_error(lambda: verify_state_element(root, step, node, e, s))
    # Element of another slot's tensor under this slot.
    mix = StateOpening(t.open(1), open_element(tcs[4], 0))
    one_line_proof_error(lambda: verify_state_element(root, step, node, mix, s))
    # Asked-for slot / element / type.
    good = open_state_element(t, 1, tcs[1], 10)
    assert verify_state_element(root, step, node, good, s) == good.value
    one_line_proof_error(lambda: verify_state_element(root, step, node, good, s, slot=3))
    one_line_proof_error(lambda: verify_state_element(root, step, node, good, s, index=11))
    one_line_proof_error(lambda: verify_state_element(root, step, node, good, s, TensorType(DType.INT8, (2999,))))
    one_line_proof_error(lambda: verify_state_element(state_root(step, node + 1, t.root), step, node, good, s))
    with pytest.raises(ValueError):
        open_state_element(t, 3, tcs[1], 0)


# --------------------------------------------------------------------------------------------
# Node descriptors, graph root, program id


def test_graph_root_and_node_openings() -> None:
    descs = [bytes([2, 2, 0, 1, 0, 2, 0, 3, 0]), bytes([7, 1, 0, 3, 0, 4, 0]), bytes([0xFF]) + bytes(8)]
    assert descriptor_leaf(descs[0]) == ref_h(b"\x00" + descs[0])
    root = graph_root(descs)
    assert root == ref_merkle([ref_h(b"\x00" + d) for d in descs])
    assert graph_root(descs[:1]) == ref_h(b"\x00" + descs[0])
    tree = graph_tree(descs)
    for i, d in enumerate(descs):
        o = open_node(descs, i)
        assert o == open_node(descs, i, tree)
        assert verify_node(root, len(descs), o) == d
    o = open_node(descs, 1)
    rep = dataclasses.replace
    for bad in (
        rep(o, index=0),
        rep(o, index=3),
        rep(o, desc=o.desc + b"\x00"),
        rep(o, desc=_flip(o.desc, 0)),
        rep(o, proof=o.proof[:1]),
        rep(o, proof=(o.proof[1], o.proof[0])),
    ):
        one_line_proof_error(lambda: verify_node(root, len(descs), bad))
    one_line_proof_error(lambda: verify_node(root, 5, o))
    one_line_proof_error(lambda: verify_node(root, 0, o))
    # The padding leaf of a 3-leaf graph cannot be opened as a descriptor.
    pad = NodeOpening(3, b"", (tree.node_at(0, 2), tree.node_at(1, 0)))
    one_line_proof_error(lambda: verify_node(root, 3, pad))
    with pytest.raises(ProgramError):
        graph_root([])


def test_program_id_layout() -> None:
    g, s0, d = ref_h(b"g"), ref_h(b"s"), ref_h(b"d")
    expected = ref_h(
        b"\x05" + g + (9).to_bytes(4, "big") + (20).to_bytes(2, "big") + s0 + d + (1000).to_bytes(8, "big")
    )
    assert program_id(g, 9, 20, s0, d, 1000) == expected
    assert program_id(g, 9, 20, s0, d, 1001) != expected
    assert program_id(g, 2**32 - 1, 2**16 - 1, s0, d, 2**63 - 1)
    for bad in (
        dict(n_nodes=2**32),
        dict(n_nodes=-1),
        dict(n_slots=2**16),
        dict(n_slots=0),
        dict(steps=0),
        dict(steps=2**63),
        dict(data_root=d[:31]),
    ):
        kw = dict(graph_root=g, n_nodes=9, n_slots=20, initial_state_root=s0, data_root=d, steps=1000)
        kw.update(bad)
        with pytest.raises(ProgramError):
            program_id(**kw)  # type: ignore[arg-type]


def test_dataset_root() -> None:
    c1, c2, c3 = ref_h(b"1"), ref_h(b"2"), ref_h(b"3")
    assert dataset_root([]) == bytes(32)
    assert dataset_root([c1]) == c1
    assert dataset_root([c1, c2, c3]) == ref_merkle([c1, c2, c3])
