# pragma version ~=0.4.3
"""
@title Tensor headers, descriptors and element encoding
@notice Stateless helpers shared by the game and the one-step contracts. Every function here
        mirrors a rule of docs/SPEC.md sections 1-3 byte for byte.
"""

MAX_RANK: constant(uint256) = 6
IN_MAX: constant(uint256) = 16
ATTR_MAX: constant(uint256) = 64
# u8 op + u8 n_in + 16 * u16 + u16 out + u8 n_attr + 64 * i64
DESC_MAX: constant(uint256) = 548
CHUNK: constant(uint256) = 2048

DT_INT8: constant(uint256) = 3
DT_INT32: constant(uint256) = 6
DT_INT64: constant(uint256) = 7
DT_BOOL: constant(uint256) = 9

ABSENT: constant(uint256) = 65535


# --- headers: u8 dtype | u8 rank | 6 x u32 dims | 6 zero bytes ---------------------------


@pure
def _dtype(h: bytes32) -> uint256:
    return convert(h, uint256) >> 248


@pure
def _rank(h: bytes32) -> uint256:
    return (convert(h, uint256) >> 240) & 255


@pure
def _dim(h: bytes32, i: uint256) -> uint256:
    # dim i occupies bytes 2 + 4i .. 6 + 4i, i.e. bits 208 - 32i .. 240 - 32i
    return (convert(h, uint256) >> (208 - 32 * i)) & 4294967295


@pure
def _dims(h: bytes32) -> DynArray[uint256, MAX_RANK]:
    out: DynArray[uint256, MAX_RANK] = []
    for i: uint256 in range(MAX_RANK):
        if i >= self._rank(h):
            break
        out.append(self._dim(h, i))
    return out


@pure
def _size(h: bytes32) -> uint256:
    n: uint256 = 1
    for i: uint256 in range(MAX_RANK):
        if i >= self._rank(h):
            break
        n *= self._dim(h, i)
    return n


@pure
def _width(dtype: uint256) -> uint256:
    if dtype == DT_INT32:
        return 4
    if dtype == DT_INT64:
        return 8
    return 1


@pure
def _valid_dtype(dtype: uint256) -> bool:
    return dtype == DT_INT8 or dtype == DT_INT32 or dtype == DT_INT64 or dtype == DT_BOOL


@pure
def _header(dtype: uint256, dims: DynArray[uint256, MAX_RANK]) -> bytes32:
    v: uint256 = (dtype << 248) | (len(dims) << 240)
    for i: uint256 in range(MAX_RANK):
        if i >= len(dims):
            break
        assert dims[i] < 2**32, "tensor: dim too large"
        v |= dims[i] << (208 - 32 * i)
    return convert(v, bytes32)


@pure
def _is_canonical_header(h: bytes32) -> bool:
    """Known dtype, rank <= 6, zero dims past the rank and zero trailing bytes, n < 2^32."""
    v: uint256 = convert(h, uint256)
    r: uint256 = self._rank(h)
    if not self._valid_dtype(self._dtype(h)) or r > MAX_RANK:
        return False
    # bits below the last dim must be zero
    if v & ((1 << (240 - 32 * r)) - 1) != 0:
        return False
    return self._size(h) < 2**32


@pure
def _n_chunks(h: bytes32) -> uint256:
    nbytes: uint256 = self._size(h) * self._width(self._dtype(h))
    return max(1, (nbytes + CHUNK - 1) // CHUNK)


# --- index arithmetic ------------------------------------------------------------------


@pure
def _unravel(dims: DynArray[uint256, MAX_RANK], flat: uint256) -> DynArray[uint256, MAX_RANK]:
    """Row-major multi-index of `flat` in a tensor of shape `dims`."""
    out: DynArray[uint256, MAX_RANK] = dims
    rest: uint256 = flat
    for j: uint256 in range(MAX_RANK):
        if j >= len(dims):
            break
        i: uint256 = len(dims) - 1 - j
        out[i] = rest % dims[i]
        rest = rest // dims[i]
    return out


@pure
def _ravel(dims: DynArray[uint256, MAX_RANK], idx: DynArray[uint256, MAX_RANK]) -> uint256:
    flat: uint256 = 0
    for i: uint256 in range(MAX_RANK):
        if i >= len(dims):
            break
        flat = flat * dims[i] + idx[i]
    return flat


@pure
def _broadcast_flat(out_idx: DynArray[uint256, MAX_RANK], in_dims: DynArray[uint256, MAX_RANK]) -> uint256:
    """Flat index of the input element that multidirectional broadcasting reads (SPEC 4.1)."""
    offset: uint256 = len(out_idx) - len(in_dims)
    flat: uint256 = 0
    for i: uint256 in range(MAX_RANK):
        if i >= len(in_dims):
            break
        k: uint256 = 0
        if in_dims[i] != 1:
            k = out_idx[i + offset]
        flat = flat * in_dims[i] + k
    return flat


# --- values ----------------------------------------------------------------------------


@pure
def _wrap(v: int256, dtype: uint256) -> int256:
    """Two's-complement wrap of `v` to the dtype's width (bool: v != 0)."""
    if dtype == DT_BOOL:
        if v != 0:
            return 1
        return 0
    bits: uint256 = 8 * self._width(dtype)
    m: uint256 = convert(convert(v, bytes32), uint256) & ((1 << bits) - 1)  # two's-complement bits
    if m >= 1 << (bits - 1):
        return convert(m, int256) - convert(1 << bits, int256)
    return convert(m, int256)


@pure
def _min_of(dtype: uint256) -> int256:
    if dtype == DT_BOOL:
        return 0
    return -convert(1 << (8 * self._width(dtype) - 1), int256)


@pure
def _max_of(dtype: uint256) -> int256:
    if dtype == DT_BOOL:
        return 1
    return convert((1 << (8 * self._width(dtype) - 1)) - 1, int256)


@pure
def _read_element(chunk: Bytes[CHUNK], offset: uint256, dtype: uint256) -> int256:
    """The value encoded at `offset` of a chunk: big-endian two's complement (bool: raw byte)."""
    w: uint256 = self._width(dtype)
    # slice lengths must be constants, hence one branch per width
    raw: uint256 = 0
    if w == 1:
        raw = convert(slice(chunk, offset, 1), uint256)
    elif w == 4:
        raw = convert(slice(chunk, offset, 4), uint256)
    else:
        raw = convert(slice(chunk, offset, 8), uint256)
    if dtype != DT_BOOL and raw >= 1 << (8 * w - 1):
        return convert(raw, int256) - convert(1 << (8 * w), int256)
    return convert(raw, int256)


# --- descriptors: u8 op | u8 n_in | n_in x u16 | u16 out | u8 n_attr | n_attr x i64 -------


@pure
def _byte(b: Bytes[DESC_MAX], i: uint256) -> uint256:
    return convert(slice(b, i, 1), uint256)


@pure
def _u16(b: Bytes[DESC_MAX], i: uint256) -> uint256:
    return convert(slice(b, i, 2), uint256)


@pure
def _op(desc: Bytes[DESC_MAX]) -> uint256:
    return self._byte(desc, 0)


@pure
def _n_in(desc: Bytes[DESC_MAX]) -> uint256:
    return self._byte(desc, 1)


@pure
def _in_slot(desc: Bytes[DESC_MAX], i: uint256) -> uint256:
    return self._u16(desc, 2 + 2 * i)


@pure
def _out_slot(desc: Bytes[DESC_MAX]) -> uint256:
    return self._u16(desc, 2 + 2 * self._n_in(desc))


@pure
def _n_attr(desc: Bytes[DESC_MAX]) -> uint256:
    return self._byte(desc, 4 + 2 * self._n_in(desc))


@pure
def _attr(desc: Bytes[DESC_MAX], i: uint256) -> int256:
    start: uint256 = 5 + 2 * self._n_in(desc) + 8 * i
    raw: uint256 = convert(slice(desc, start, 8), uint256)
    if raw >= 1 << 63:
        return convert(raw, int256) - convert(1 << 64, int256)
    return convert(raw, int256)


@pure
def _attr_u(desc: Bytes[DESC_MAX], i: uint256) -> uint256:
    """An attribute that the loader guarantees is non-negative (an axis, a dim, a flag)."""
    return convert(self._attr(desc, i), uint256)


@pure
def _is_well_formed(desc: Bytes[DESC_MAX]) -> bool:
    if len(desc) < 5:
        return False
    n_in: uint256 = self._n_in(desc)
    if n_in > IN_MAX or len(desc) < 5 + 2 * n_in:
        return False
    n_attr: uint256 = self._n_attr(desc)
    return n_attr <= ATTR_MAX and len(desc) == 5 + 2 * n_in + 8 * n_attr
