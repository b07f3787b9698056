"""Commitments to tensors, machine states, node descriptors and programs (docs/SPEC.md 1.3, 3).

Every function here must hash byte for byte like the Vyper verifier:

    tensor     = H(0x02 || header || data_root)
    state      = H(0x03 || u64(t) || u32(n) || slots_root)
    program_id = H(0x05 || graph_root || u32(N) || u16(S) || state(0, 0) || data_root || u64(T))

The `verify_*` functions are the off-chain twins of the contract's checks: they take a root the
verifier trusts and an opening from a possibly dishonest prover, and either return the opened
value or raise ProofError with a one-line reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verifier.commit.merkle import (
    LEAF_PREFIX,
    WORD,
    MerkleTree,
    check_proof,
    keccak,
    keccak_prefix,
    leaf_hash,
    merkle_root,
)
from verifier.core.dtypes import (
    MAX_DIM,
    MAX_RANK,
    DType,
    TensorType,
    decode_element,
    type_of,
)
from verifier.core.errors import ProgramError, ProofError, ShapeError

CHUNK = 2048
HEADER_BYTES = 32
EMPTY = bytes(WORD)
"""Commitment of an empty slot (and of a program without data slots)."""

TENSOR_TAG = b"\x02"
STATE_TAG = b"\x03"
PROGRAM_TAG = b"\x05"

MAX_SLOTS = 2**16 - 1  # S < 2^16
MAX_NODES = 2**32 - 1  # N < 2^32
MAX_STEPS = 2**63 - 1  # T < 2^63


# --------------------------------------------------------------------------------------------
# Tensor header


def tensor_header(ttype: TensorType) -> bytes:
    """u8(dtype) || u8(rank) || u32(d_0) .. u32(d_{r-1}) || zeros, 32 bytes."""
    shape = ttype.shape
    if len(shape) > MAX_RANK:
        raise ShapeError(f"{ttype} has rank {len(shape)}; the profile allows rank <= {MAX_RANK}, reshape it first.")
    if any(not 0 <= d <= MAX_DIM for d in shape) or ttype.size > MAX_DIM:
        raise ShapeError(f"{ttype} has a dimension or element count outside 0..2^32-1; use smaller static dims.")
    out = bytearray(HEADER_BYTES)
    out[0] = int(ttype.dtype)
    out[1] = len(shape)
    for k, d in enumerate(shape):
        out[2 + 4 * k : 6 + 4 * k] = d.to_bytes(4, "big")
    return bytes(out)


def parse_header(b: bytes) -> TensorType:
    """Inverse of `tensor_header`; raises ProofError on any non-canonical header."""
    if len(b) != HEADER_BYTES:
        raise ProofError(f"tensor header is {len(b)} bytes, not {HEADER_BYTES}; send the 32-byte header word.")
    try:
        dtype = DType(b[0])
    except ValueError:
        raise ProofError(f"tensor header has unknown dtype code {b[0]}; use int8, int32, int64 or bool.") from None
    rank = b[1]
    if rank > MAX_RANK:
        raise ProofError(f"tensor header has rank {rank} > {MAX_RANK}; the header is not canonical.")
    shape = tuple(int.from_bytes(b[2 + 4 * k : 6 + 4 * k], "big") for k in range(rank))
    if any(b[2 + 4 * rank :]):
        raise ProofError(f"tensor header has non-zero bytes past its {rank} dims; the header is not canonical.")
    ttype = TensorType(dtype, shape)
    if ttype.size > MAX_DIM:
        raise ProofError(f"tensor header has {ttype.size} elements, not below 2^32; the header is invalid.")
    return ttype


def n_chunks(ttype: TensorType) -> int:
    """L = max(1, ceil(nbytes / CHUNK))."""
    return max(1, -(-ttype.nbytes // CHUNK))


def tensor_root(header: bytes, data_root: bytes) -> bytes:
    """H(0x02 || header || data_root)."""
    return keccak(TENSOR_TAG, header, data_root)


# --------------------------------------------------------------------------------------------
# Chunks and the data tree


def _encoded(array: np.ndarray, dtype: DType | None = None) -> memoryview | bytes:
    """The canonical encoding of `array` (same bytes as `dtypes.encode`), read-only.

    Large arrays: one copy straight into big-endian row-major order, no second copy into a
    `bytes` object (at 16 MiB that second allocation alone costs about a quarter of raw
    keccak256's time). Small ones: `bytes`, whose two copies cost less than making the view.
    """
    d = DType.from_numpy(array.dtype) if dtype is None else dtype
    if array.nbytes <= _SMALL_BYTES and isinstance(array, np.ndarray):  # a numpy scalar has no byte order
        return array.astype(_BIG_ENDIAN[d], copy=False).tobytes()
    be = np.array(array, dtype=_BIG_ENDIAN[d], order="C", copy=True).reshape(-1).view(np.uint8)
    be.flags.writeable = False
    return memoryview(be)


_BIG_ENDIAN = {d: d.np.newbyteorder(">") for d in DType}
_ZERO_CHUNK = memoryview(bytes(CHUNK))
_SMALL_BYTES = 1 << 16


def _chunk_at(data: bytes | memoryview, j: int) -> bytes:
    """chunk_j of `data`, right-padded with zeros to CHUNK bytes."""
    c = bytes(data[j * CHUNK : (j + 1) * CHUNK])
    return c if len(c) == CHUNK else c + bytes(CHUNK - len(c))


def _chunk_leaves(data: bytes | memoryview) -> list[bytes]:
    """[H(0x00 || chunk_j) for j < L], hashing memoryview slices without copying the data.

    The last chunk's padding is absorbed from a shared zero buffer, never allocated.
    """
    n = len(data)
    full = n // CHUNK
    mv = memoryview(data)
    cp = LEAF_PREFIX.copy
    out: list[bytes] = []
    ap = out.append
    for off in range(0, full * CHUNK, CHUNK):
        h = cp()
        h.update(mv[off : off + CHUNK])
        ap(h.digest())
    tail = n - full * CHUNK
    if tail or n == 0:
        h = cp()
        h.update(mv[full * CHUNK :])
        h.update(_ZERO_CHUNK[tail:])
        ap(h.digest())
    return out


def chunks(array: np.ndarray) -> list[bytes]:
    """The L padded CHUNK-byte chunks of `array`'s canonical encoding."""
    data = _encoded(array)
    return [_chunk_at(data, j) for j in range(max(1, -(-len(data) // CHUNK)))]


def data_root(array: np.ndarray) -> bytes:
    """Merkle root of the chunk leaves of `array`."""
    return MerkleTree._from_trusted(_chunk_leaves(_encoded(array))).root


def commit_tensor(array: np.ndarray) -> bytes:
    """The tensor commitment H(0x02 || header || data_root) of `array`."""
    return commit(array).root


@dataclass(frozen=True, eq=False)
class TensorCommitment:
    """A tensor's commitment together with what is needed to open any element of it."""

    ttype: TensorType
    header: bytes
    data_root: bytes
    root: bytes
    tree: MerkleTree = field(repr=False)
    data: memoryview | bytes = field(repr=False)
    """The encoded elements (read-only, without chunk padding)."""

    @property
    def n_chunks(self) -> int:
        return self.tree.count

    def chunk(self, j: int) -> bytes:
        if not 0 <= j < self.tree.count:
            raise IndexError(f"chunk {j} is outside 0..{self.tree.count - 1}; open an existing chunk.")
        return _chunk_at(self.data, j)

    def open(self, flat_index: int) -> ElementOpening:
        return open_element(self, flat_index)


def commit(array: np.ndarray) -> TensorCommitment:
    """Commit to `array` (any memory layout; committed in row-major order)."""
    # A step commits every slot it touches, most of them small: the dtype, header and tensor-root
    # prefix of each (dtype, shape) are made once, so a small tensor costs little beyond its hashes.
    typed = _TYPED.get((array.dtype, array.shape))
    if typed is None:
        typed = _typed(array)
    ttype, header, prefix = typed
    data = _encoded(array, ttype.dtype)
    tree = MerkleTree._from_trusted(_chunk_leaves(data))
    droot = tree.root
    h = prefix.copy()
    h.update(droot)
    return TensorCommitment(ttype, header, droot, h.digest(), tree, data)


_TYPED: dict[tuple[np.dtype, tuple[int, ...]], tuple[TensorType, bytes, Any]] = {}
_TYPED_MAX = 4096  # distinct (dtype, shape) pairs remembered; a program has far fewer


def _typed(array: np.ndarray) -> tuple[TensorType, bytes, Any]:
    """(type, header, keccak state after 0x02 || header) of `array`, remembered by dtype and shape."""
    ttype = type_of(array)
    header = tensor_header(ttype)
    prefix = keccak_prefix(TENSOR_TAG, header)
    if len(_TYPED) >= _TYPED_MAX:
        _TYPED.clear()
    _TYPED[(array.dtype, array.shape)] = (ttype, header, prefix)
    return ttype, header, prefix


# --------------------------------------------------------------------------------------------
# Element openings


@dataclass(frozen=True)
class ElementOpening:
    """tensor root -> (header, data_root) -> chunk `chunk_index` -> element `index`."""

    header: bytes
    data_root: bytes
    chunk_index: int
    chunk: bytes
    proof: tuple[bytes, ...]
    index: int

    @property
    def ttype(self) -> TensorType:
        return parse_header(self.header)

    @property
    def value(self) -> int:
        """The element's value as read from `chunk` (not verified; see `verify_element`)."""
        dtype = self.ttype.dtype
        off = (self.index * dtype.width) % CHUNK
        return _decode(self.chunk[off : off + dtype.width], dtype)


def _decode(raw: bytes, dtype: DType) -> int:
    if len(raw) != dtype.width:
        raise ProofError(f"element bytes are {len(raw)} long, not {dtype.width}; send the full padded chunk.")
    if dtype is DType.BOOL and raw[0] > 1:
        raise ProofError(f"bool element byte is 0x{raw[0]:02x}, not 0x00 or 0x01; the tensor is not canonical.")
    return decode_element(raw, dtype)


def open_element(tc: TensorCommitment, flat_index: int) -> ElementOpening:
    """Opening of element `flat_index` (row-major) of a committed tensor."""
    n = tc.ttype.size
    if not 0 <= flat_index < n:
        raise IndexError(f"element {flat_index} is outside 0..{n - 1} of {tc.ttype}; open an existing element.")
    j = flat_index * tc.ttype.dtype.width // CHUNK
    return ElementOpening(tc.header, tc.data_root, j, tc.chunk(j), tuple(tc.tree.proof(j)), flat_index)


def verify_element(
    root: bytes,
    opening: ElementOpening,
    ttype: TensorType | None = None,
    index: int | None = None,
) -> int:
    """Check `opening` against tensor commitment `root` and return the value of element `opening.index`.

    The value is bound to `opening.index`, which the prover chose: pass `index` (the element the
    verifier asked for) to require it, and `ttype` (the slot's static type) to require the header.
    """
    o = opening
    if index is not None and o.index != index:
        raise ProofError(f"element opening: opens element {o.index} but element {index} was asked for.")
    if len(o.data_root) != WORD:
        raise ProofError(f"element opening: data root is {len(o.data_root)} bytes, not 32; send a bytes32.")
    tt = parse_header(o.header)
    if tensor_root(o.header, o.data_root) != root:
        raise ProofError("element opening: header and data root do not hash to the tensor commitment.")
    if ttype is not None and tt != ttype:
        raise ProofError(f"element opening: tensor is {tt} but the slot holds {ttype}; the commitment is wrong.")
    n, width = tt.size, tt.dtype.width
    n_leaves = n_chunks(tt)
    if not 0 <= o.chunk_index < n_leaves:
        raise ProofError(f"element opening: chunk {o.chunk_index} is outside 0..{n_leaves - 1}; open an existing chunk.")
    if not 0 <= o.index < n:
        raise ProofError(f"element opening: index {o.index} is outside 0..{n - 1} of {tt}; open an existing element.")
    if o.chunk_index != o.index * width // CHUNK:
        raise ProofError(
            f"element opening: element {o.index} lives in chunk {o.index * width // CHUNK}, "
            f"not {o.chunk_index}; open the right chunk."
        )
    if len(o.chunk) != CHUNK:
        raise ProofError(f"element opening: chunk is {len(o.chunk)} bytes, not {CHUNK}; send the padded chunk.")
    if o.chunk_index == n_leaves - 1:
        used = tt.nbytes - o.chunk_index * CHUNK
        if any(o.chunk[used:]):
            raise ProofError("element opening: the last chunk has a non-zero padding byte; the tensor is not canonical.")
    check_proof(o.data_root, leaf_hash(o.chunk), o.chunk_index, n_leaves, o.proof, "element opening")
    off = o.index * width % CHUNK
    return _decode(o.chunk[off : off + width], tt.dtype)


# --------------------------------------------------------------------------------------------
# Machine states and the slot table


def _check_position(step: int, node: int) -> None:
    if not 0 <= step < 2**64:
        raise ProgramError(f"step {step} is outside 0..2^64-1; positions are (t, n) with 0 <= t <= T.")
    if not 0 <= node < 2**32:
        raise ProgramError(f"node {node} is outside 0..2^32-1; positions are (t, n) with 0 <= n <= N.")


def state_root(step: int, node: int, slots_root: bytes) -> bytes:
    """H(0x03 || u64(step) || u32(node) || slots_root)."""
    _check_position(step, node)
    if len(slots_root) != WORD:
        raise ValueError(f"slots root must be 32 bytes, got {len(slots_root)}; pass a bytes32 hash.")
    return keccak(STATE_TAG, step.to_bytes(8, "big"), node.to_bytes(4, "big"), slots_root)


def _check_n_slots(n_slots: int) -> None:
    if not 1 <= n_slots <= MAX_SLOTS:
        raise ProgramError(f"a program has {n_slots} slots; it needs 1..{MAX_SLOTS}.")


@dataclass(frozen=True)
class SlotOpening:
    """state root -> slots_root -> commitment of slot `index`."""

    slots_root: bytes
    index: int
    commitment: bytes
    proof: tuple[bytes, ...]


class SlotTable:
    """The S slot commitments of a machine state, kept in a MerkleTree for O(log S) updates."""

    __slots__ = ("_tree",)

    def __init__(self, n_slots: int, commitments: Sequence[bytes] | None = None) -> None:
        _check_n_slots(n_slots)
        if commitments is None:
            self._tree = MerkleTree.empty(n_slots)
        else:
            if len(commitments) != n_slots:
                raise ValueError(f"got {len(commitments)} commitments for {n_slots} slots; pass one per slot.")
            self._tree = MerkleTree(commitments)

    @property
    def n_slots(self) -> int:
        return self._tree.count

    def __len__(self) -> int:
        return self._tree.count

    @property
    def root(self) -> bytes:
        """slots_root = merkle(c_0 .. c_{S-1})."""
        return self._tree.root

    @property
    def commitments(self) -> list[bytes]:
        return self._tree.leaves

    def __getitem__(self, i: int) -> bytes:
        return self._tree.leaf(i)

    def set(self, i: int, commitment: bytes) -> None:
        self._tree.update(i, commitment)

    def clear(self, i: int) -> None:
        self._tree.update(i, EMPTY)

    def set_many(self, updates: Iterable[tuple[int, bytes]]) -> None:
        self._tree.update_many(updates)

    def copy(self) -> SlotTable:
        t = SlotTable.__new__(SlotTable)
        t._tree = self._tree.copy()
        return t

    def state_root(self, step: int, node: int) -> bytes:
        return state_root(step, node, self.root)

    def open(self, i: int) -> SlotOpening:
        return SlotOpening(self.root, i, self._tree.leaf(i), tuple(self._tree.proof(i)))


def verify_slot(root: bytes, step: int, node: int, opening: SlotOpening, n_slots: int) -> bytes:
    """Check `opening` against the state root of position (step, node); return the slot's commitment."""
    _check_n_slots(n_slots)
    if len(opening.slots_root) != WORD:
        raise ProofError(f"slot opening: slots root is {len(opening.slots_root)} bytes, not 32; send a bytes32.")
    if state_root(step, node, opening.slots_root) != root:
        raise ProofError(f"slot opening: slots root does not hash to the state root at ({step}, {node}).")
    if len(opening.commitment) != WORD:
        raise ProofError(f"slot opening: commitment is {len(opening.commitment)} bytes, not 32; send a bytes32.")
    check_proof(opening.slots_root, opening.commitment, opening.index, n_slots, opening.proof, "slot opening")
    return bytes(opening.commitment)


@dataclass(frozen=True)
class StateOpening:
    """state root -> slot -> tensor -> element."""

    slot: SlotOpening
    element: ElementOpening

    @property
    def value(self) -> int:
        return self.element.value


def open_state_element(table: SlotTable, slot: int, tc: TensorCommitment, flat_index: int) -> StateOpening:
    """Opening of element `flat_index` of the tensor `tc` held in `slot` of `table`."""
    if table[slot] != tc.root:
        raise ValueError(f"slot {slot} does not hold this tensor; pass the commitment stored in that slot.")
    return StateOpening(table.open(slot), open_element(tc, flat_index))


def verify_state_element(
    root: bytes,
    step: int,
    node: int,
    opening: StateOpening,
    n_slots: int,
    ttype: TensorType | None = None,
    slot: int | None = None,
    index: int | None = None,
) -> int:
    """Chain state root -> slot -> tensor -> element and return the element's value.

    `slot` and `index`, if given, are the slot and element the verifier asked for.
    """
    if slot is not None and opening.slot.index != slot:
        raise ProofError(f"state opening: opens slot {opening.slot.index} but slot {slot} was asked for.")
    c = verify_slot(root, step, node, opening.slot, n_slots)
    if c == EMPTY:
        raise ProofError(f"state opening: slot {opening.slot.index} is empty at ({step}, {node}); nothing to open.")
    return verify_element(c, opening.element, ttype, index)


# --------------------------------------------------------------------------------------------
# Node descriptors and the graph root


def descriptor_leaf(desc: bytes) -> bytes:
    """H(0x00 || desc)."""
    return leaf_hash(desc)


def graph_tree(descs: Sequence[bytes]) -> MerkleTree:
    """Tree over the N + 1 descriptor leaves (nodes, then the step boundary)."""
    if not descs:
        raise ProgramError("a graph needs at least the step-boundary descriptor; build it from the program.")
    return MerkleTree._from_trusted([descriptor_leaf(d) for d in descs])


def graph_root(descs: Sequence[bytes]) -> bytes:
    """merkle(H(0x00 || desc_0), .., H(0x00 || boundary))."""
    return graph_tree(descs).root


@dataclass(frozen=True)
class NodeOpening:
    """graph root -> descriptor of position `index` (index N is the step boundary)."""

    index: int
    desc: bytes
    proof: tuple[bytes, ...]


def open_node(descs: Sequence[bytes], index: int, tree: MerkleTree | None = None) -> NodeOpening:
    """Opening of descriptor `index`; pass `tree = graph_tree(descs)` to reuse it across openings."""
    if tree is None:
        tree = graph_tree(descs)
    return NodeOpening(index, bytes(descs[index]), tuple(tree.proof(index)))


def verify_node(root: bytes, n_leaves: int, opening: NodeOpening) -> bytes:
    """Check `opening` against the graph root of an (N + 1)-leaf graph; return the descriptor."""
    if n_leaves < 1:
        raise ProofError("node opening: the graph has no descriptors; nothing can be opened.")
    check_proof(root, descriptor_leaf(opening.desc), opening.index, n_leaves, opening.proof, "node opening")
    return bytes(opening.desc)


# --------------------------------------------------------------------------------------------
# Program id


def dataset_root(commitments: Sequence[bytes]) -> bytes:
    """merkle(tensor commitments of the data slots, in slot order), or bytes32(0) if none."""
    return merkle_root(commitments) if len(commitments) else EMPTY


def program_id(
    graph_root: bytes,
    n_nodes: int,
    n_slots: int,
    initial_state_root: bytes,
    data_root: bytes,
    steps: int,
) -> bytes:
    """H(0x05 || graph_root || u32(N) || u16(S) || state(0, 0) || data_root || u64(T))."""
    if not 0 <= n_nodes <= MAX_NODES:
        raise ProgramError(f"a program has {n_nodes} nodes; it needs 0..2^32-1.")
    _check_n_slots(n_slots)
    if not 1 <= steps <= MAX_STEPS:
        raise ProgramError(f"a program runs {steps} steps; bisectml.steps must be in 1..2^63-1.")
    for name, w in (("graph root", graph_root), ("initial state", initial_state_root), ("data root", data_root)):
        if len(w) != WORD:
            raise ProgramError(f"{name} must be 32 bytes, got {len(w)}; pass a bytes32 hash.")
    return keccak(
        PROGRAM_TAG,
        graph_root,
        n_nodes.to_bytes(4, "big"),
        n_slots.to_bytes(2, "big"),
        initial_state_root,
        data_root,
        steps.to_bytes(8, "big"),
    )


__all__ = [
    "CHUNK",
    "EMPTY",
    "HEADER_BYTES",
    "ElementOpening",
    "NodeOpening",
    "SlotOpening",
    "SlotTable",
    "StateOpening",
    "TensorCommitment",
    "chunks",
    "commit",
    "commit_tensor",
    "data_root",
    "dataset_root",
    "descriptor_leaf",
    "graph_root",
    "graph_tree",
    "n_chunks",
    "open_element",
    "open_node",
    "open_state_element",
    "parse_header",
    "program_id",
    "state_root",
    "tensor_header",
    "tensor_root",
    "verify_element",
    "verify_node",
    "verify_slot",
    "verify_state_element",
]
