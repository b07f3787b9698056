# pragma version ~=0.4.3
"""
@title Gas-lean parsing of node descriptors and tensor headers for the one-step contracts
@notice Same rules as the matching helpers of `tensor.vy` (docs/SPEC.md 1.3, 3.2), read in
        one pass: a reduction's one-step is called K + 1 times per disputed element in tests
        (once per term in a dispute), and every call re-validates its node, so parsing cost
        is paid on every call. Reverts with "onestep: " reasons.
"""

from contracts.lib import tensor

MAX_RANK: constant(uint256) = tensor.MAX_RANK
ATTR_MAX: constant(uint256) = tensor.ATTR_MAX
DESC_MAX: constant(uint256) = tensor.DESC_MAX
ABSENT: constant(uint256) = tensor.ABSENT
DIM_MASK: constant(uint256) = 2**32 - 1


@pure
def _desc(desc: Bytes[DESC_MAX], in_max: uint256) -> (uint256, uint256, uint256, DynArray[int256, ATTR_MAX]):
    """
    @notice (op, n_in, absent, attrs) of a descriptor, where bit i of `absent` is set when
            input i is slot 0xFFFF. Reverts "onestep: malformed descriptor" unless
            len(desc) = 5 + 2 n_in + 8 n_attr with n_attr <= 64 (tensor._is_well_formed).
            If n_in > in_max (in_max <= 13) it returns (op, n_in, 0, []) without reading
            further: the caller must refuse the op or n_in before using anything else.
    """
    n: uint256 = len(desc)
    assert n >= 5, "onestep: malformed descriptor"
    # one padded copy, so every 32-byte read below stays inside the buffer
    p: Bytes[DESC_MAX + 32] = concat(desc, empty(bytes32))
    w0: uint256 = extract32(p, 0, output_type=uint256)
    op: uint256 = w0 >> 248
    n_in: uint256 = (w0 >> 240) & 255
    if n_in > in_max:
        return op, n_in, 0, []
    # in_max <= 13 keeps the slots, out_slot and n_attr inside the first word
    absent: uint256 = 0
    for i: uint256 in range(n_in, bound=13):
        if (w0 >> (224 - 16 * i)) & 65535 == ABSENT:
            absent |= 1 << i
    n_attr: uint256 = (w0 >> (216 - 16 * n_in)) & 255
    assert n_attr <= ATTR_MAX and n == 5 + 2 * n_in + 8 * n_attr, "onestep: malformed descriptor"
    attrs: DynArray[int256, ATTR_MAX] = []
    base: uint256 = 5 + 2 * n_in
    for q: uint256 in range((n_attr + 3) // 4, bound=ATTR_MAX // 4):
        # four attrs per 32-byte word; the arithmetic right shift sign-extends each i64
        w: int256 = extract32(p, base + 32 * q, output_type=int256)
        attrs.append(w >> 192)
        if 4 * q + 1 < n_attr:
            attrs.append((w << 64) >> 192)
        if 4 * q + 2 < n_attr:
            attrs.append((w << 128) >> 192)
        if 4 * q + 3 < n_attr:
            attrs.append((w << 192) >> 192)
    return op, n_in, absent, attrs


@pure
def _header(h: bytes32) -> (uint256, DynArray[uint256, MAX_RANK]):
    """
    @notice (dtype, dims) of a canonical header (tensor._is_canonical_header); reverts
            "onestep: non-canonical input header" otherwise.
    """
    v: uint256 = convert(h, uint256)
    dtype: uint256 = v >> 248
    r: uint256 = (v >> 240) & 255
    assert r <= MAX_RANK and tensor._valid_dtype(dtype), "onestep: non-canonical input header"
    # bits below the last dim must be zero
    assert v & ((1 << (240 - 32 * r)) - 1) == 0, "onestep: non-canonical input header"
    dims: DynArray[uint256, MAX_RANK] = []
    n: uint256 = 1
    for i: uint256 in range(r, bound=MAX_RANK):
        d: uint256 = (v >> (208 - 32 * i)) & DIM_MASK
        dims.append(d)
        n *= d  # each d < 2^32, at most 6 of them: below 2^192
    assert n < 2**32, "onestep: non-canonical input header"
    return dtype, dims


@pure
def _size(dims: DynArray[uint256, MAX_RANK]) -> uint256:
    """prod dims, reverting "onestep: output has 2^32 or more elements" unless every dim and
    the product are below 2^32."""
    n: uint256 = 1
    for i: uint256 in range(len(dims), bound=MAX_RANK):
        assert dims[i] <= DIM_MASK, "onestep: output has 2^32 or more elements"
        n *= dims[i]  # < 2^32 * 2^32 after the previous checks
        assert n <= DIM_MASK, "onestep: output has 2^32 or more elements"
    return n
