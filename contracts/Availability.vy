# pragma version ~=0.4.3
"""
@title Data availability: tensors whose bytes are in the chain's own history
@notice A tensor is published here once, its bytes in the transaction's calldata, which every
        full node keeps and serves; the contract recomputes the tensor commitment of those bytes
        (docs/SPEC.md 1.3) and records it as available. `Market.vy` accepts a dataset or a
        round's features only when their commitments are available (SPEC 8.10), so no market
        program takes an input that a verifier cannot fetch from the chain itself: a provider
        who withholds its bytes cannot publish the dataset at all, and pays the calldata of
        its own data.
@custom:security Stateless apart from the `available` set: nothing here holds funds. The
                 commitment is computed, never taken from the caller, so only bytes that were
                 sent can make a commitment available. Publishing is permissionless and
                 idempotent; anyone may publish anyone's data.
"""

from contracts.lib import merkle
from contracts.lib import tensor

CHUNK: constant(uint256) = 2048
# 256 chunks, 512 KiB: the largest market tensor (round features, 2048 rows x 256 int8)
MAX_CHUNKS: constant(uint256) = 256
# the data follows the selector and the header word in the calldata
DATA_START: constant(uint256) = 4 + 32
# A tensor of any size up to 64 MiB can also be published in parts of 32 chunks (64 KiB, under
# the 128 KiB a node's mempool accepts in one transaction), then assembled: each part is an
# aligned subtree of the tensor's chunk tree, so its root is a node of that tree (SPEC 8.10).
PART_CHUNKS: constant(uint256) = 32
PART_HEIGHT: constant(uint256) = 5
MAX_PARTS: constant(uint256) = 1024
# a part's data follows the selector, the header word and the part index
PART_DATA_START: constant(uint256) = 4 + 64


event Published:
    commitment: indexed(bytes32)
    publisher: indexed(address)
    header: bytes32
    # bytes of the tensor's data, before the zero padding of its last chunk
    size: uint256


event PartPublished:
    # keccak256(header || index || root): what `assemble` looks up
    part: indexed(bytes32)
    publisher: indexed(address)
    header: bytes32
    index: uint256
    root: bytes32


event Mirrored:
    commitment: indexed(bytes32)
    mirror: indexed(address)
    # sha2-256 digest of the manifest file that lists the tensor's parts on a content network
    manifest: bytes32


# tensor commitment => its bytes were published here
available: public(HashMap[bytes32, bool])
# part_key(header, index, root) => those chunks were published here
parts: public(HashMap[bytes32, bool])


@external
def publish(header: bytes32) -> bytes32:
    """
    @notice Publishes a tensor: the calldata after `header` is its encoding (SPEC 1.1) zero-padded
            to whole chunks, as many as the header's size needs (at least one). Records and
            returns its commitment.
    @dev The bytes are raw calldata after the ABI-encoded header, not an ABI `bytes` argument:
         an argument of up to 512 KiB is laid out in memory below every local, so each call
         would pay that much memory expansion (about 0.75 M gas) even for one chunk.
    @param header The tensor's canonical header word (SPEC 1.3).
    """
    assert tensor._is_canonical_header(header), "availability: not a canonical header"
    size: uint256 = tensor._size(header) * tensor._width(tensor._dtype(header))
    chunks: uint256 = max(1, (size + CHUNK - 1) // CHUNK)
    assert chunks <= MAX_CHUNKS and len(msg.data) == DATA_START + chunks * CHUNK, "availability: data is not the header's whole chunks"
    leaves: DynArray[bytes32, merkle.MAX_SLOTS] = []
    chunk: Bytes[CHUNK] = b""
    for j: uint256 in range(MAX_CHUNKS):
        if j == chunks:
            break
        chunk = slice(msg.data, DATA_START + j * CHUNK, CHUNK)
        leaves.append(keccak256(concat(b"\x00", chunk)))
    # the last chunk's padding is zero (a canonical encoding, SPEC 1.3)
    assert merkle._zero_from(chunk, size - (chunks - 1) * CHUNK), "availability: padding is not zero"
    commitment: bytes32 = keccak256(concat(b"\x02", header, merkle._merkle(leaves)))
    self.available[commitment] = True
    log Published(commitment=commitment, publisher=msg.sender, header=header, size=size)
    return commitment


@external
def publish_part(header: bytes32, index: uint256) -> bytes32:
    """
    @notice Publishes part `index` of a tensor: the calldata after the header and the index is
            that part's chunks (32, or what is left in the last part), the last one zero-padded.
            Records and returns the part's root, the node of the tensor's chunk tree above them.
    @param header The tensor's canonical header word (SPEC 1.3).
    @param index The part: chunks 32 * index .. 32 * index + 31.
    """
    assert tensor._is_canonical_header(header), "availability: not a canonical header"
    size: uint256 = tensor._size(header) * tensor._width(tensor._dtype(header))
    chunks: uint256 = max(1, (size + CHUNK - 1) // CHUNK)
    assert chunks <= MAX_PARTS * PART_CHUNKS, "availability: tensor too large"
    n_parts: uint256 = (chunks + PART_CHUNKS - 1) // PART_CHUNKS
    assert index < n_parts, "availability: part out of range"
    count: uint256 = min(PART_CHUNKS, chunks - index * PART_CHUNKS)
    assert len(msg.data) == PART_DATA_START + count * CHUNK, "availability: data is not the part's whole chunks"
    leaves: DynArray[bytes32, merkle.MAX_SLOTS] = []
    chunk: Bytes[CHUNK] = b""
    for j: uint256 in range(PART_CHUNKS):
        if j == count:
            break
        chunk = slice(msg.data, PART_DATA_START + j * CHUNK, CHUNK)
        leaves.append(keccak256(concat(b"\x00", chunk)))
    if index == n_parts - 1:
        assert merkle._zero_from(chunk, size - (chunks - 1) * CHUNK), "availability: padding is not zero"
    # lift the part's own tree to the height its subtree has in the tensor's tree
    root: bytes32 = merkle._merkle(leaves)
    for h: uint256 in range(PART_HEIGHT):
        if h >= min(PART_HEIGHT, merkle._depth(chunks)):
            break
        if h >= merkle._depth(count):
            root = keccak256(concat(b"\x01", root, merkle._zero(h)))
    key: bytes32 = self._part_key(header, index, root)
    self.parts[key] = True
    log PartPublished(part=key, publisher=msg.sender, header=header, index=index, root=root)
    return root


@external
def assemble(header: bytes32, roots: DynArray[bytes32, MAX_PARTS]) -> bytes32:
    """
    @notice Makes a tensor published in parts available: `roots` are its parts' roots, in order,
            each published; records and returns the tensor's commitment.
    @dev No header check of its own: `publish_part` refuses a non-canonical header, so no part of
         one exists and the first lookup below reverts.
    """
    size: uint256 = tensor._size(header) * tensor._width(tensor._dtype(header))
    chunks: uint256 = max(1, (size + CHUNK - 1) // CHUNK)
    assert chunks <= MAX_PARTS * PART_CHUNKS, "availability: tensor too large"
    assert len(roots) == (chunks + PART_CHUNKS - 1) // PART_CHUNKS, "availability: wrong number of parts"
    for i: uint256 in range(MAX_PARTS):
        if i == len(roots):
            break
        assert self.parts[self._part_key(header, i, roots[i])], "availability: part not published"
    # the parts are the tree's nodes at height min(5, depth): fold them, padding with Z_5
    level: DynArray[bytes32, MAX_PARTS] = roots
    z: bytes32 = merkle._zero(PART_HEIGHT)
    for _: uint256 in range(11):
        if len(level) <= 1:
            break
        up: DynArray[bytes32, MAX_PARTS] = []
        for i: uint256 in range(MAX_PARTS // 2):
            if 2 * i >= len(level):
                break
            right: bytes32 = z
            if 2 * i + 1 < len(level):
                right = level[2 * i + 1]
            up.append(keccak256(concat(b"\x01", level[2 * i], right)))
        level = up
        z = keccak256(concat(b"\x01", z, z))
    commitment: bytes32 = keccak256(concat(b"\x02", header, level[0]))
    self.available[commitment] = True
    log Published(commitment=commitment, publisher=msg.sender, header=header, size=size)
    return commitment


@external
def mirror(commitment: bytes32, manifest: bytes32):
    """
    @notice Announces that the bytes of the tensor `commitment` are also on a content-addressed
            network (IPFS), listed by the manifest file whose sha2-256 digest is `manifest`
            (its CIDv1, raw codec; SPEC 8.10). A log only, nothing checked or stored: a reader
            checks every fetched byte against its CID and the tensor against `commitment`, and
            reads the chain's own copy when a mirror is missing or wrong.
    """
    log Mirrored(commitment=commitment, mirror=msg.sender, manifest=manifest)


@pure
@external
def part_key(header: bytes32, index: uint256, root: bytes32) -> bytes32:
    return self._part_key(header, index, root)


@pure
@internal
def _part_key(header: bytes32, index: uint256, root: bytes32) -> bytes32:
    return keccak256(concat(header, convert(index, bytes32), root))
