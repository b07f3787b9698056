# pragma version ~=0.4.3
"""
@title One-step proofs for the shape ops
@notice Implements docs/SPEC.md section 5 for Reshape (25; also Flatten, Squeeze and Unsqueeze,
        which the loader canonicalizes to Reshape), Transpose (26), Concat (27), Slice (31),
        Gather (32) and Expand (33), with the element rules of section 4.3. All six are direct
        ops: `terms` is 0 and the only phase is DIRECT, with k = 0. Each output element is a
        copy of one input element, or 0 for a Gather index outside [-n, n-1].
@custom:security Every entry point re-validates the descriptor (SPEC 3.2), the input headers
        (SPEC 1.2/1.3) and the canonical attrs against each other (SPEC 4.3, the checks of
        verifier/engine/ops/shape.py `infer`) before it maps an index, and reverts with "onestep: .."
        on anything a loader-accepted program cannot produce. So `needs` never names an index
        outside an input, and nothing answers for an output index at or past the output size
        or for a phase other than DIRECT. Values passed in are trusted to be the proven
        elements that `needs` listed, in order; `compute` refuses a list of any other length.
        Gather's data read depends on the index value, so a caller opens the index element,
        then calls `needs` again. A bool element is returned as 0/1 whatever byte encoded it
        (SPEC 1.3). Stateless: no storage, no calls, no loops longer than 16.
"""

from contracts import IOneStep

implements: IOneStep

MAX_RANK: constant(uint256) = 6
IN_MAX: constant(uint256) = 16
ATTR_MAX: constant(uint256) = 64
DESC_MAX: constant(uint256) = 548

OP_RESHAPE: constant(uint256) = 25
OP_TRANSPOSE: constant(uint256) = 26
OP_CONCAT: constant(uint256) = 27
OP_SLICE: constant(uint256) = 31
OP_GATHER: constant(uint256) = 32
OP_EXPAND: constant(uint256) = 33

DT_INT8: constant(uint256) = 3
DT_INT32: constant(uint256) = 6
DT_INT64: constant(uint256) = 7
DT_BOOL: constant(uint256) = 9

DIRECT: constant(uint256) = 0
ABSENT: constant(uint256) = 65535
# dims and element counts are below 2^32 (SPEC 1.2)
LIMIT: constant(uint256) = 2**32
MASK32: constant(uint256) = 2**32 - 1


@internal
@pure
def _d(v: uint256, i: uint256) -> uint256:
    """Dim i of a header word (i < 6)."""
    return (v >> unsafe_sub(208, unsafe_mul(32, i))) & MASK32


@internal
@pure
def _at(d: uint256, i: uint256) -> uint256:
    """A dim placed at position i of a header word (d < 2^32, i < 6)."""
    return d << unsafe_sub(208, unsafe_mul(32, i))


@internal
@pure
def _dims_mask(lo: uint256, hi: uint256) -> uint256:
    """The bits of dims lo..hi-1 in a header word (lo <= hi <= 6)."""
    return ((1 << unsafe_mul(32, hi - lo)) - 1) << unsafe_sub(240, unsafe_mul(32, hi))


@internal
@pure
def _size(v: uint256) -> uint256:
    """Element count of a header word whose dims past the rank are zero (a canonical header):
    the product of d_i for i < rank, unrolled; a dim past the rank counts as 1. Six factors
    below 2^32, so no overflow."""
    r: uint256 = (v >> 240) & 255
    return unsafe_mul(
        unsafe_mul(
            unsafe_mul(((v >> 208) & MASK32) | convert(r < 1, uint256), ((v >> 176) & MASK32) | convert(r < 2, uint256)),
            unsafe_mul(((v >> 144) & MASK32) | convert(r < 3, uint256), ((v >> 112) & MASK32) | convert(r < 4, uint256)),
        ),
        unsafe_mul(((v >> 80) & MASK32) | convert(r < 5, uint256), ((v >> 48) & MASK32) | convert(r < 6, uint256)),
    )


@internal
@pure
def _canonical(v: uint256) -> bool:
    """SPEC 1.3: known dtype, rank <= 6, zero bytes past the dims, element count < 2^32."""
    dt: uint256 = v >> 248
    r: uint256 = (v >> 240) & 255
    if not (dt == DT_INT8 or dt == DT_INT32 or dt == DT_INT64 or dt == DT_BOOL) or r > MAX_RANK:
        return False
    if v & ((1 << unsafe_sub(240, unsafe_mul(32, r))) - 1) != 0:
        return False
    return self._size(v) < LIMIT


@internal
@pure
def _run(
    desc: Bytes[DESC_MAX], hs: DynArray[bytes32, IN_MAX], mapping: bool, e: uint256, phase: uint256, k: uint256,
    values: DynArray[int256, IN_MAX]
) -> (bytes32, DynArray[IOneStep.Need, IN_MAX]):
    """
    @notice Validate the node against its input headers and return the output header; with
            `mapping`, also the reads for output element `e` given the values opened so far.
    @dev Shapes stay packed in header words (xv: input 0, ov: output) and attrs are read from
         the descriptor when used. Unchecked arithmetic only where the operands are bounded:
         dims and indices below 2^32, ranks at most 6.
    """
    # --- descriptor: u8 op | u8 n_in | n_in x u16 | u16 out | u8 n_attr | n_attr x i64 ----
    dl: uint256 = len(desc)
    assert dl >= 5, "onestep: malformed descriptor"
    # 32 zero bytes after the descriptor, so every field is read with one extract32; offsets
    # below are < 2 + 2 * 16 + 8 * 64, so their unchecked arithmetic cannot wrap
    buf: Bytes[DESC_MAX + 32] = concat(desc, empty(bytes32))
    w: uint256 = convert(extract32(buf, 0), uint256)
    op: uint256 = w >> 248
    n_in: uint256 = (w >> 240) & 255
    base: uint256 = 5 + 2 * n_in
    assert n_in <= IN_MAX and dl >= base, "onestep: malformed descriptor"
    n_attr: uint256 = convert(extract32(buf, base - 1), uint256) >> 248
    assert n_attr <= ATTR_MAX and dl == base + 8 * n_attr, "onestep: malformed descriptor"
    assert (
        op == OP_RESHAPE
        or op == OP_TRANSPOSE
        or op == OP_CONCAT
        or op == OP_SLICE
        or op == OP_GATHER
        or op == OP_EXPAND
    ), "onestep: op is not a shape op"
    if op == OP_CONCAT:
        assert n_in >= 1, "onestep: Concat needs at least one input"
    elif op == OP_GATHER:
        assert n_in == 2, "onestep: Gather takes 2 inputs"
    else:
        assert n_in == 1, "onestep: op takes 1 input"
    assert len(hs) == n_in, "onestep: in_headers length differs from n_in"
    for i: uint256 in range(n_in, bound=IN_MAX):
        slot: uint256 = convert(extract32(buf, unsafe_add(2, unsafe_mul(2, i))), uint256) >> 240
        assert slot != ABSENT, "onestep: required input is absent"
        assert self._canonical(convert(hs[i], uint256)), "onestep: input header not canonical"

    # --- output shape -------------------------------------------------------------------
    # input 0 is Gather's data and Concat's first piece; every output has its dtype
    xv: uint256 = convert(hs[0], uint256)
    r: uint256 = (xv >> 240) & 255
    ov: uint256 = (xv >> 248) << 248
    orank: uint256 = 0
    axis: uint256 = 0

    if op == OP_RESHAPE or op == OP_EXPAND:
        # attrs (R, d_0, .., d_{R-1})
        rr: int256 = 0
        if n_attr >= 1:
            rr = convert(extract32(buf, base), int256) >> 192
        assert n_attr >= 1 and rr >= 0 and rr <= convert(MAX_RANK, int256), "onestep: shape attr rank outside 0..6"
        orank = convert(rr, uint256)
        assert n_attr == 1 + orank, "onestep: shape attrs are not (rank, dims..)"
        for i: uint256 in range(orank, bound=MAX_RANK):
            d: int256 = convert(extract32(buf, unsafe_add(base, unsafe_mul(8, i + 1))), int256) >> 192
            assert d >= 0 and d < convert(LIMIT, int256), "onestep: shape attr dim outside 0..2^32-1"
            ov |= self._at(convert(d, uint256), i)
        if op == OP_RESHAPE:
            assert self._size(ov | (orank << 240)) == self._size(xv), "onestep: Reshape changes the element count"
        else:
            assert orank >= r, "onestep: Expand shape has lower rank than input"
            for i: uint256 in range(r, bound=MAX_RANK):
                dx: uint256 = self._d(xv, i)
                assert dx == 1 or dx == self._d(ov, i + orank - r), "onestep: Expand input does not broadcast"

    elif op == OP_TRANSPOSE:
        # attrs (p_0, .., p_{r-1}): output dim i is input dim p_i
        assert n_attr == r, "onestep: Transpose perm length differs from rank"
        orank = r
        seen: uint256 = 0
        for i: uint256 in range(r, bound=MAX_RANK):
            p: int256 = convert(extract32(buf, unsafe_add(base, unsafe_mul(8, i))), int256) >> 192
            assert p >= 0 and p < convert(r, int256), "onestep: Transpose perm entry outside 0..rank-1"
            assert seen & (1 << convert(p, uint256)) == 0, "onestep: Transpose perm is not a permutation"
            seen |= 1 << convert(p, uint256)
            ov |= self._at(self._d(xv, convert(p, uint256)), i)

    elif op == OP_SLICE:
        # attrs (start_i, step_i, len_i) per axis
        assert n_attr == 3 * r, "onestep: Slice needs 3 attrs per axis"
        orank = r
        for i: uint256 in range(r, bound=MAX_RANK):
            start: int256 = convert(extract32(buf, unsafe_add(base, unsafe_mul(24, i))), int256) >> 192
            step: int256 = convert(extract32(buf, unsafe_add(base, unsafe_mul(24, i) + 8)), int256) >> 192
            length: int256 = convert(extract32(buf, unsafe_add(base, unsafe_mul(24, i) + 16)), int256) >> 192
            d: int256 = convert(self._d(xv, i), int256)
            assert step != 0, "onestep: Slice step is 0"
            assert length >= 0, "onestep: Slice length is negative"
            if length == 0:
                assert start == 0, "onestep: Slice empty axis has start != 0"
            else:
                # |start|, |step|, length < 2^63: no overflow in int256
                assert start >= 0 and start < d, "onestep: Slice start outside the input"
                last: int256 = start + (length - 1) * step
                assert last >= 0 and last < d, "onestep: Slice end outside the input"
            # 0 < length <= d here, or 0
            ov |= self._at(convert(length, uint256), i)

    elif op == OP_CONCAT:
        assert r >= 1, "onestep: Concat of rank-0 inputs"
        ax: int256 = 0
        if n_attr == 1:
            ax = convert(extract32(buf, base), int256) >> 192
        assert n_attr == 1 and ax >= 0 and ax < convert(r, int256), "onestep: Concat axis outside 0..rank-1"
        axis = convert(ax, uint256)
        orank = r
        # the dims must agree everywhere but on the axis (and so must dtype and rank)
        keep: uint256 = ~self._at(MASK32, axis)
        total: uint256 = self._d(xv, axis)
        for j: uint256 in range(1, n_in, bound=IN_MAX):
            hv: uint256 = convert(hs[j], uint256)
            assert hv >> 248 == xv >> 248, "onestep: Concat input dtypes differ"
            assert (hv >> 240) & 255 == r, "onestep: Concat input ranks differ"
            assert hv & keep == xv & keep, "onestep: Concat input dims differ off axis"
            total = unsafe_add(total, self._d(hv, axis))  # at most 16 terms below 2^32
        assert total < LIMIT, "onestep: Concat output dim too large"
        ov = ((xv & keep) | self._at(total, axis)) & ~((1 << 248) - (1 << 240))

    else:  # OP_GATHER: data dims before axis ++ idx dims ++ data dims after axis
        assert r >= 1, "onestep: Gather data is rank 0"
        ax: int256 = 0
        if n_attr == 1:
            ax = convert(extract32(buf, base), int256) >> 192
        assert n_attr == 1 and ax >= 0 and ax < convert(r, int256), "onestep: Gather axis outside 0..rank-1"
        axis = convert(ax, uint256)
        iv: uint256 = convert(hs[1], uint256)
        assert iv >> 248 == DT_INT32 or iv >> 248 == DT_INT64, "onestep: Gather indices not int32/int64"
        q: uint256 = (iv >> 240) & 255
        orank = r - 1 + q
        assert orank <= MAX_RANK, "onestep: Gather output rank above 6"
        # dims fields (orank <= 6, so nothing spills into the rank byte): data dims before the
        # axis stay, the index dims follow them, the data dims after the axis move from
        # position axis + 1 to axis + q
        ov |= xv & self._dims_mask(0, axis)
        ov |= (iv & self._dims_mask(0, q)) >> unsafe_mul(32, axis)
        post: uint256 = xv & self._dims_mask(axis + 1, r)
        if q == 0:
            ov |= post << 32
        else:
            ov |= post >> unsafe_mul(32, q - 1)

    ov |= orank << 240
    size: uint256 = self._size(ov)
    assert size < LIMIT, "onestep: output has 2^32 or more elements"
    res: DynArray[IOneStep.Need, IN_MAX] = []
    if not mapping:
        return convert(ov, bytes32), res

    # --- the reads for output element e -----------------------------------------------------
    assert phase == DIRECT, "onestep: phase must be DIRECT for a shape op"
    assert k == 0, "onestep: k must be 0 for a direct op"
    assert e < size, "onestep: out_index out of range"
    # from here every dim of the output is > 0 and every index below is < 2^32

    if op == OP_RESHAPE:
        res.append(IOneStep.Need(input=0, index=e))

    elif op == OP_CONCAT or op == OP_GATHER:
        # e = (o_pre * D + o_ax) * inner + o_post, inner = prod of the input dims after axis
        inner: uint256 = 1
        for i: uint256 in range(axis + 1, r, bound=MAX_RANK):
            inner = unsafe_mul(inner, self._d(xv, i))
        o_post: uint256 = e % inner
        if op == OP_CONCAT:
            span: uint256 = self._d(ov, axis) * inner
            o_pre: uint256 = e // span
            o_ax: uint256 = (e % span) // inner
            s: uint256 = 0
            for j: uint256 in range(n_in, bound=IN_MAX):
                dj: uint256 = self._d(convert(hs[j], uint256), axis)
                if o_ax < s + dj:
                    res.append(IOneStep.Need(input=j, index=(o_pre * dj + o_ax - s) * inner + o_post))
                    break
                s += dj
        else:
            # D = Q, the index count; the data element is (o_pre * n + j') * inner + o_post
            q: uint256 = 1
            for i: uint256 in range(axis, axis + orank + 1 - r, bound=MAX_RANK):
                q = unsafe_mul(q, self._d(ov, i))
            eq: uint256 = e // inner
            res.append(IOneStep.Need(input=1, index=eq % q))
            if len(values) >= 1:
                n: uint256 = self._d(xv, axis)
                jv: int256 = values[0]
                if jv < 0:
                    jv += convert(n, int256)
                if jv >= 0 and jv < convert(n, int256):
                    res.append(IOneStep.Need(input=0, index=((eq // q) * n + convert(jv, uint256)) * inner + o_post))

    else:
        # Transpose, Slice, Expand: walk the output multi-index from its last axis. Every
        # o < its dim < 2^32 and flat, mul stay at most the input size, below 2^32.
        rest: uint256 = e
        flat: uint256 = 0
        mul: uint256 = 1
        # Transpose: the input multi-index, packed like the dims of a header word
        iw: uint256 = 0
        for j: uint256 in range(orank, bound=MAX_RANK):
            i: uint256 = unsafe_sub(orank, j + 1)
            di: uint256 = self._d(ov, i)
            o: uint256 = rest % di
            rest //= di
            if op == OP_TRANSPOSE:
                # output axis i is input axis p_i
                p: uint256 = convert(convert(extract32(buf, unsafe_add(base, unsafe_mul(8, i))), int256) >> 192, uint256)
                iw |= self._at(o, p)
            elif op == OP_SLICE:
                # input index start + o * step, inside the input by the checks above
                start: int256 = convert(extract32(buf, unsafe_add(base, unsafe_mul(24, i))), int256) >> 192
                step: int256 = convert(extract32(buf, unsafe_add(base, unsafe_mul(24, i) + 8)), int256) >> 192
                flat = unsafe_add(flat, unsafe_mul(convert(start + convert(o, int256) * step, uint256), mul))
                mul = unsafe_mul(mul, self._d(xv, i))
            elif i + r >= orank:
                # Expand (SPEC 4.1): right-aligned, a dim of 1 reads index 0
                dx: uint256 = self._d(xv, i + r - orank)
                if dx != 1:
                    flat = unsafe_add(flat, unsafe_mul(o, mul))
                mul = unsafe_mul(mul, dx)
        if op == OP_TRANSPOSE:
            for i: uint256 in range(r, bound=MAX_RANK):
                flat = unsafe_add(unsafe_mul(flat, self._d(xv, i)), self._d(iw, i))
        res.append(IOneStep.Need(input=0, index=flat))

    assert len(values) <= len(res), "onestep: more values than needs"
    return convert(ov, bytes32), res


@external
@view
def output_header(desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX]) -> bytes32:
    h: bytes32 = empty(bytes32)
    res: DynArray[IOneStep.Need, IN_MAX] = []
    h, res = self._run(desc, in_headers, False, 0, 0, 0, [])
    return h


@external
@view
def terms(desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX]) -> uint256:
    self._run(desc, in_headers, False, 0, 0, 0, [])
    return 0


@external
@view
def needs(
    desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX], out_index: uint256, phase: uint256, k: uint256,
    values: DynArray[int256, IN_MAX]
) -> DynArray[IOneStep.Need, IN_MAX]:
    h: bytes32 = empty(bytes32)
    res: DynArray[IOneStep.Need, IN_MAX] = []
    h, res = self._run(desc, in_headers, True, out_index, phase, k, values)
    return res


@external
@view
def compute(
    desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX], out_index: uint256, phase: uint256, k: uint256,
    acc: int256, values: DynArray[int256, IN_MAX]
) -> int256:
    h: bytes32 = empty(bytes32)
    res: DynArray[IOneStep.Need, IN_MAX] = []
    h, res = self._run(desc, in_headers, True, out_index, phase, k, values)
    assert len(values) == len(res), "onestep: values do not answer every need"
    if len(res) == 1 and res[0].input == 1 and convert(slice(desc, 0, 1), uint256) == OP_GATHER:
        return 0  # Gather index outside [-n, n-1]: the element is 0 (False)
    # the element copied is the last value read; it has the output's dtype
    v: int256 = values[len(values) - 1]
    if convert(h, uint256) >> 248 == DT_BOOL and v != 0:
        return 1  # SPEC 1.3: a bool is 0/1 whatever byte encoded it
    return v


@external
@view
def finalize(desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX], acc: int256) -> int256:
    raise "onestep: shape ops are direct, nothing to finalize"
