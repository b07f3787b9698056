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


event Published:
    commitment: indexed(bytes32)
    publisher: indexed(address)
    header: bytes32
    # bytes of the tensor's data, before the zero padding of its last chunk
    size: uint256


# tensor commitment => its bytes were published here
available: public(HashMap[bytes32, bool])


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
