# pragma version ~=0.4.3
"""
@title Commitment hashing
@notice keccak256 Merkle trees, states and tensor commitments of docs/SPEC.md sections 1-3,
        for the game and the referee. Padding items are the zero word; padded subtrees Z_h.
"""

MAX_DEPTH: constant(uint256) = 32
MAX_ARITY: constant(uint256) = 32
MAX_SLOTS: constant(uint256) = 512
CHUNK: constant(uint256) = 2048


@internal
@pure
def _state_root(step: uint256, node: uint256, slots_root: bytes32) -> bytes32:
    return keccak256(concat(b"\x03", convert(convert(step, uint64), bytes8), convert(convert(node, uint32), bytes4), slots_root))


@internal
@pure
def _depth(count: uint256) -> uint256:
    d: uint256 = 0
    for _: uint256 in range(256):
        if 1 << d >= count:
            break
        d += 1
    return d


@internal
@pure
def _zero(height: uint256) -> bytes32:
    z: bytes32 = empty(bytes32)
    for _: uint256 in range(MAX_DEPTH):
        if _ >= height:
            break
        z = keccak256(concat(b"\x01", z, z))
    return z


@internal
@pure
def _fold(leaf: bytes32, index: uint256, path: DynArray[bytes32, MAX_DEPTH], count: uint256) -> bytes32:
    """The root that `leaf` at `index` and its sibling path give, in a tree of `count` items."""
    assert index < count, "merkle: index out of range"
    assert len(path) == self._depth(count), "merkle: wrong proof length"
    acc: bytes32 = leaf
    for k: uint256 in range(MAX_DEPTH):
        if k >= len(path):
            break
        if (index >> k) & 1 == 0:
            acc = keccak256(concat(b"\x01", acc, path[k]))
        else:
            acc = keccak256(concat(b"\x01", path[k], acc))
    return acc


@internal
@pure
def _subtree(children: DynArray[bytes32, MAX_ARITY], m: uint256) -> bytes32:
    """Root of a full subtree whose 2^m bottom nodes are `children`."""
    level: DynArray[bytes32, MAX_ARITY] = children
    for _: uint256 in range(6):
        if len(level) == 1:
            break
        up: DynArray[bytes32, MAX_ARITY] = []
        for i: uint256 in range(MAX_ARITY // 2):
            if 2 * i >= len(level):
                break
            up.append(keccak256(concat(b"\x01", level[2 * i], level[2 * i + 1])))
        level = up
    return level[0]


@internal
@pure
def _merkle(items: DynArray[bytes32, MAX_SLOTS]) -> bytes32:
    """merkle() of docs/SPEC.md section 2: padded with zero words, padded subtrees are Z_h."""
    level: DynArray[bytes32, MAX_SLOTS] = items
    z: bytes32 = empty(bytes32)
    for _: uint256 in range(10):
        if len(level) <= 1:
            break
        up: DynArray[bytes32, MAX_SLOTS] = []
        for i: uint256 in range(MAX_SLOTS // 2):
            if 2 * i >= len(level):
                break
            right: bytes32 = z
            if 2 * i + 1 < len(level):
                right = level[2 * i + 1]
            up.append(keccak256(concat(b"\x01", level[2 * i], right)))
        level = up
        z = keccak256(concat(b"\x01", z, z))
    return level[0]


@internal
@pure
def _zero_from(chunk: Bytes[CHUNK], start: uint256) -> bool:
    """True if every byte of the chunk from `start` on is zero."""
    first_word: uint256 = start // 32
    for w: uint256 in range(CHUNK // 32):
        if w < first_word:
            continue
        word: uint256 = convert(extract32(chunk, w * 32), uint256)
        if w == first_word and start % 32 != 0:
            # keep only the bytes at or after `start` (a whole word when start is aligned)
            word = word & ((1 << (8 * (32 - start % 32))) - 1)
        if word != 0:
            return False
    return True


@internal
@pure
def _step_commitment(t: uint256) -> bytes32:
    """Commitment of the int64 scalar t (the step slot after a boundary)."""
    zeros: Bytes[2048] = abi_encode(empty(uint256[64]))
    chunk: Bytes[2048] = concat(convert(convert(t, uint64), bytes8), slice(zeros, 0, 2040))
    data_root: bytes32 = keccak256(concat(b"\x00", chunk))
    header: bytes32 = convert(7 << 248, bytes32)
    return keccak256(concat(b"\x02", header, data_root))
