# pragma version ~=0.4.3
"""
@title One-step verifier for the reductions over products (docs/SPEC.md 4.5, 5)
@notice Op codes 39..42: MatMul, Gemm, MatMulInteger, ConvInteger. Every output element is
        s_K with s_0 = init and s_{k+1} = wrap(s_k + t_k), t_k a product of two input
        elements; the game bisects over s_0 .. s_K and this contract computes s_0 (INIT) or
        one s_{k+1} from an agreed s_k (TERM). finalize is the identity.

        Term enumeration (k = 0 .. K-1):
        - MatMul, MatMulInteger: k is the inner index: t_k = A'[b_A, i, k] * B'[b_B, k, j]
          (MatMulInteger: (A' - za) * (B' - zb)) for Y'[b, i, j] = unravel(out_index,
          batch || (M, N)); K = the inner dim. Reads A at ((b_A * M + i) * K + k) and B at
          ((b_B * K + k) * N + j), b_A/b_B the flat batch index broadcast to A's/B's batch
          dims.
        - Gemm: k is the inner index: t_k = A'[i, k] * B'[k, j], (i, j) = unravel(out_index,
          (M, N)); A at k * M + i (transA) or i * K + k, B at j * K + k (transB) or k * N + j.
        - ConvInteger: k runs over (c, j_1..j_n) in row-major order of (C/G, k_1..k_n), i.e. k
          is the flat index of w[m, c, j] within w[m] (w at m * K + k); K = (C/G) * prod k_i.
          For Y[nu, m, o], g = m div (M/G), p_i = o_i * s_i + j_i * d_i - b_i: t_k =
          (x[nu, g * C/G + c, p] - zx) * (w[m, c, j] - zw) if every 0 <= p_i < D_i, else 0
          (padding: the term reads nothing and s_{k+1} = s_k).

        Reads. INIT: Gemm's C element C[c(i, j)] when C is present, else nothing. TERM: the
        two factors (input 0's element, then input 1's), then the present zero points in
        input order (input 2, then 3; flat index 0); a ConvInteger padding term reads none.
        K = 0 (an empty inner dim, or C = 0 channels): the op is direct for that node (SPEC 5)
        and compute(DIRECT) = finalize(s_0) = s_0 = init (0, or Gemm's C element); INIT is
        accepted for any K and returns s_0, DIRECT only when K = 0.
@custom:security Stateless and pure; the game proves the descriptor, every header and every
        value it passes in. The contract still treats its arguments as hostile: descriptor,
        arity, attrs, input headers (canonical, dtypes, shapes fit), phase, k and out_index
        are checked on every call, and a violation reverts with a reason starting
        "onestep: ". Input values and the agreed accumulator are wrapped to their dtypes
        before use, so operands stay below 2^64 in magnitude, products below 2^128, no
        checked operation overflows, and every result is a canonical value of the output
        dtype. `compute` refuses a values list whose length differs from `needs`'.
"""

from contracts import IOneStep
from contracts.lib import tensor

implements: IOneStep

OP_MATMUL: constant(uint256) = 39
OP_GEMM: constant(uint256) = 40
OP_MATMUL_INTEGER: constant(uint256) = 41
OP_CONV_INTEGER: constant(uint256) = 42

PHASE_DIRECT: constant(uint256) = 0
PHASE_INIT: constant(uint256) = 1
PHASE_TERM: constant(uint256) = 2

MAX_RANK: constant(uint256) = tensor.MAX_RANK
IN_MAX: constant(uint256) = tensor.IN_MAX
DESC_MAX: constant(uint256) = tensor.DESC_MAX
LIMIT: constant(uint256) = 2**32
# ConvInteger's spatial rank n: x is (N, C, D_1..D_n) with rank n + 2 <= MAX_RANK
SPATIAL_MAX: constant(uint256) = 4


struct Sig:
    # op code
    op: uint256
    # dtype of the two factor inputs (int8 for MatMulInteger/ConvInteger)
    dtype: uint256
    # dtype of the output (int32 for MatMulInteger/ConvInteger)
    out_dtype: uint256
    # output dims
    out_dims: DynArray[uint256, MAX_RANK]
    # number of output elements (< 2^32)
    out_size: uint256
    # number of terms
    K: uint256


struct MM:
    # A's batch dims (alpha) and B's (beta), before broadcasting
    a_batch: DynArray[uint256, MAX_RANK]
    b_batch: DynArray[uint256, MAX_RANK]
    # the broadcast batch dims
    batch: DynArray[uint256, MAX_RANK]
    # A' is (alpha.., M, K), B' is (beta.., K, N)
    M: uint256
    K: uint256
    N: uint256


# --- IOneStep ---------------------------------------------------------------------------


@view
@external
def output_header(desc: Bytes[548], in_headers: DynArray[bytes32, 16]) -> bytes32:
    """
    @notice Output header per SPEC 4.5. Reverts if the inputs do not fit the node.
    """
    sig: Sig = self._check(desc, in_headers)
    return tensor._header(sig.out_dtype, sig.out_dims)


@view
@external
def terms(desc: Bytes[548], in_headers: DynArray[bytes32, 16]) -> uint256:
    """
    @notice K: the inner dim (MatMul, Gemm, MatMulInteger) or (C/G) * prod k_i (ConvInteger).
    """
    return self._check(desc, in_headers).K


@view
@external
def needs(
    desc: Bytes[548], in_headers: DynArray[bytes32, 16], out_index: uint256, phase: uint256, k: uint256,
    values: DynArray[int256, 16]
) -> DynArray[IOneStep.Need, 16]:
    """
    @notice INIT/DIRECT: Gemm's C element if C is present, else nothing. TERM k: the two
            factors of t_k, then the present zero points (nothing for a padding term). Does
            not depend on `values`.
    """
    sig: Sig = self._check_call(desc, in_headers, out_index, phase, k)
    return self._needs(desc, in_headers, sig, out_index, phase, k)


@view
@external
def compute(
    desc: Bytes[548], in_headers: DynArray[bytes32, 16], out_index: uint256, phase: uint256, k: uint256,
    acc: int256, values: DynArray[int256, 16]
) -> int256:
    """
    @notice INIT: s_0. TERM: s_{k+1} = wrap(s_k + t_k) from the agreed s_k = `acc`. DIRECT
            (K = 0 only): the element, finalize(s_0) = s_0.
    """
    sig: Sig = self._check_call(desc, in_headers, out_index, phase, k)
    reads: DynArray[IOneStep.Need, 16] = self._needs(desc, in_headers, sig, out_index, phase, k)
    assert len(values) == len(reads), "onestep: values do not match needs"
    if phase != PHASE_TERM:
        if len(values) == 1:
            # Gemm's C element; C has the output dtype
            return tensor._wrap(values[0], sig.out_dtype)
        return 0
    if len(values) == 0:
        # ConvInteger padding: t_k = 0
        return tensor._wrap(acc, sig.out_dtype)
    a: int256 = tensor._wrap(values[0], sig.dtype)
    b: int256 = tensor._wrap(values[1], sig.dtype)
    for j: uint256 in range(2, 4):
        if j >= len(values):
            break
        # zero points are int8 scalars: input 2 belongs to the first factor, input 3 to the second
        if reads[j].input == 2:
            a -= tensor._wrap(values[j], tensor.DT_INT8)
        else:
            b -= tensor._wrap(values[j], tensor.DT_INT8)
    # |a|, |b| <= 2^63 + 2^7, so |a * b| < 2^127 and the sum with a wrapped s_k fits int256
    return tensor._wrap(tensor._wrap(acc, sig.out_dtype) + a * b, sig.out_dtype)


@view
@external
def finalize(desc: Bytes[548], in_headers: DynArray[bytes32, 16], acc: int256) -> int256:
    """
    @notice The identity: s_K is the element.
    """
    self._check(desc, in_headers)
    return acc


# --- validation -------------------------------------------------------------------------


@internal
@pure
def _size(dims: DynArray[uint256, MAX_RANK]) -> uint256:
    """prod dims, reverting unless every dim and the product are below 2^32."""
    n: uint256 = 1
    for i: uint256 in range(len(dims), bound=MAX_RANK):
        assert dims[i] < LIMIT, "onestep: output has 2^32 or more elements"
        n *= dims[i]  # < 2^32 * 2^32 after the previous check
        assert n < LIMIT, "onestep: output has 2^32 or more elements"
    return n


@internal
@pure
def _require_zero_point(desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX], i: uint256):
    """Optional input i, if present, is an int8 tensor with exactly one element."""
    if i >= len(in_headers) or tensor._in_slot(desc, i) == tensor.ABSENT:
        return
    h: bytes32 = in_headers[i]
    assert tensor._dtype(h) == tensor.DT_INT8, "onestep: zero point must be int8"
    assert tensor._size(h) == 1, "onestep: zero point must have exactly one element"


@internal
@pure
def _mm(ha: bytes32, hb: bytes32) -> MM:
    """The matmul shape rule (SPEC 4.5): 1-D promotion, then batch broadcasting."""
    da: DynArray[uint256, MAX_RANK] = tensor._dims(ha)
    db: DynArray[uint256, MAX_RANK] = tensor._dims(hb)
    ra: uint256 = len(da)
    rb: uint256 = len(db)
    assert ra >= 1 and rb >= 1, "onestep: matmul inputs must have rank >= 1"
    r: MM = empty(MM)
    r.M = 1
    r.K = da[ra - 1]
    if ra >= 2:
        r.M = da[ra - 2]
        for i: uint256 in range(ra - 2, bound=MAX_RANK):
            r.a_batch.append(da[i])
    kb: uint256 = db[0]
    r.N = 1
    if rb >= 2:
        kb = db[rb - 2]
        r.N = db[rb - 1]
        for i: uint256 in range(rb - 2, bound=MAX_RANK):
            r.b_batch.append(db[i])
    assert r.K == kb, "onestep: matmul inner dims differ"
    # numpy broadcast of the batch dims, right-aligned
    na: uint256 = len(r.a_batch)
    nb: uint256 = len(r.b_batch)
    n: uint256 = max(na, nb)
    for i: uint256 in range(n, bound=MAX_RANK):
        x: uint256 = 1
        y: uint256 = 1
        if i + na >= n:
            x = r.a_batch[i + na - n]
        if i + nb >= n:
            y = r.b_batch[i + nb - n]
        assert x == y or x == 1 or y == 1, "onestep: matmul batch dims do not broadcast"
        if x == 1:
            r.batch.append(y)
        else:
            r.batch.append(x)
    return r


@internal
@pure
def _check(desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX]) -> Sig:
    """Validates the node against its input headers (SPEC 4.5); returns its signature."""
    assert tensor._is_well_formed(desc), "onestep: malformed descriptor"
    op: uint256 = tensor._op(desc)
    assert op >= OP_MATMUL and op <= OP_CONV_INTEGER, "onestep: op code is not a product reduction (39..42)"
    n_in: uint256 = tensor._n_in(desc)
    if op == OP_MATMUL:
        assert n_in == 2, "onestep: MatMul takes 2 inputs"
    elif op == OP_GEMM:
        assert n_in == 2 or n_in == 3, "onestep: Gemm takes 2 or 3 inputs"
    else:
        assert n_in >= 2 and n_in <= 4, "onestep: op takes 2 to 4 inputs"
    assert len(in_headers) == n_in, "onestep: header count differs from the node's input count"
    for i: uint256 in range(n_in, bound=IN_MAX):
        if tensor._in_slot(desc, i) == tensor.ABSENT:
            assert i >= 2, "onestep: required input is absent"
            assert in_headers[i] == empty(bytes32), "onestep: absent input has a non-zero header"
        else:
            assert tensor._is_canonical_header(in_headers[i]), "onestep: non-canonical input header"
    n_attr: uint256 = tensor._n_attr(desc)
    dtype: uint256 = tensor._dtype(in_headers[0])
    assert tensor._dtype(in_headers[1]) == dtype, "onestep: input dtype mismatch"

    out_dtype: uint256 = dtype
    out_dims: DynArray[uint256, MAX_RANK] = []
    K: uint256 = 0
    if op == OP_MATMUL or op == OP_GEMM:
        assert dtype == tensor.DT_INT32 or dtype == tensor.DT_INT64, "onestep: op takes int32 or int64"
    else:
        assert dtype == tensor.DT_INT8, "onestep: op takes int8"
        out_dtype = tensor.DT_INT32
        self._require_zero_point(desc, in_headers, 2)
        self._require_zero_point(desc, in_headers, 3)

    if op == OP_MATMUL or op == OP_MATMUL_INTEGER:
        assert n_attr == 0, "onestep: op takes no attributes"
        mm: MM = self._mm(in_headers[0], in_headers[1])
        out_dims = mm.batch
        if tensor._rank(in_headers[0]) >= 2:
            out_dims.append(mm.M)
        if tensor._rank(in_headers[1]) >= 2:
            out_dims.append(mm.N)
        K = mm.K
    elif op == OP_GEMM:
        assert n_attr == 2, "onestep: Gemm attrs are (transA, transB)"
        ta: int256 = tensor._attr(desc, 0)
        tb: int256 = tensor._attr(desc, 1)
        assert (ta == 0 or ta == 1) and (tb == 0 or tb == 1), "onestep: transA/transB must be 0 or 1"
        ha: bytes32 = in_headers[0]
        hb: bytes32 = in_headers[1]
        assert tensor._rank(ha) == 2 and tensor._rank(hb) == 2, "onestep: Gemm A and B must be 2-D"
        m: uint256 = tensor._dim(ha, convert(ta, uint256))
        K = tensor._dim(ha, 1 - convert(ta, uint256))
        assert tensor._dim(hb, convert(tb, uint256)) == K, "onestep: Gemm inner dims differ"
        n: uint256 = tensor._dim(hb, 1 - convert(tb, uint256))
        out_dims = [m, n]
        if n_in == 3 and tensor._in_slot(desc, 2) != tensor.ABSENT:
            hc: bytes32 = in_headers[2]
            assert tensor._dtype(hc) == dtype, "onestep: input dtype mismatch"
            rc: uint256 = tensor._rank(hc)
            assert rc <= 2, "onestep: Gemm C does not broadcast to (M, N)"
            for i: uint256 in range(rc, bound=2):
                c: uint256 = tensor._dim(hc, i)
                assert c == 1 or c == out_dims[i + 2 - rc], "onestep: Gemm C does not broadcast to (M, N)"
    else:
        out_dims = self._conv_check(desc, in_headers[0], in_headers[1])
        w: DynArray[uint256, MAX_RANK] = tensor._dims(in_headers[1])
        # K divides n(w) < 2^32 (or is 0)
        K = 1
        for i: uint256 in range(1, MAX_RANK):
            if i >= len(w):
                break
            K *= w[i]
    return Sig(op=op, dtype=dtype, out_dtype=out_dtype, out_dims=out_dims, out_size=self._size(out_dims), K=K)


@internal
@pure
def _nonneg(desc: Bytes[DESC_MAX], i: uint256, lo: int256) -> uint256:
    """Attr i, which must be >= lo (lo >= 0)."""
    a: int256 = tensor._attr(desc, i)
    assert a >= lo, "onestep: ConvInteger attr out of range"
    return convert(a, uint256)


@internal
@pure
def _conv_check(desc: Bytes[DESC_MAX], hx: bytes32, hw: bytes32) -> DynArray[uint256, MAX_RANK]:
    """ConvInteger attrs (n, G, k[n], b[n], e[n], s[n], d[n]) against x and w; output dims."""
    x: DynArray[uint256, MAX_RANK] = tensor._dims(hx)
    w: DynArray[uint256, MAX_RANK] = tensor._dims(hw)
    r: uint256 = len(x)
    assert r >= 3 and len(w) == r, "onestep: ConvInteger x and w must have the same rank >= 3"
    n: uint256 = r - 2
    assert tensor._n_attr(desc) == 2 + 5 * n, "onestep: ConvInteger attrs are (n, G, k, b, e, s, d)"
    assert tensor._attr(desc, 0) == convert(n, int256), "onestep: ConvInteger attr n differs from x's rank"
    g: uint256 = self._nonneg(desc, 1, 1)
    # attrs are below 2^63 and dims below 2^32, so none of the products below can overflow
    assert w[1] * g == x[1], "onestep: ConvInteger group does not fit the channels"
    assert w[0] % g == 0, "onestep: ConvInteger group does not divide M"
    out: DynArray[uint256, MAX_RANK] = [x[0], w[0]]
    for i: uint256 in range(n, bound=SPATIAL_MAX):
        k: uint256 = self._nonneg(desc, 2 + i, 1)
        assert k == w[2 + i], "onestep: ConvInteger kernel differs from w's"
        b: uint256 = self._nonneg(desc, 2 + n + i, 0)
        e: uint256 = self._nonneg(desc, 2 + 2 * n + i, 0)
        s: uint256 = self._nonneg(desc, 2 + 3 * n + i, 1)
        d: uint256 = self._nonneg(desc, 2 + 4 * n + i, 1)
        padded: uint256 = x[2 + i] + b + e
        span: uint256 = (k - 1) * d + 1
        assert padded >= span, "onestep: ConvInteger padded input is smaller than the kernel"
        out.append((padded - span) // s + 1)
    return out


@internal
@pure
def _check_call(
    desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX], out_index: uint256, phase: uint256, k: uint256
) -> Sig:
    sig: Sig = self._check(desc, in_headers)
    assert out_index < sig.out_size, "onestep: out_index out of range"
    if phase == PHASE_TERM:
        assert k < sig.K, "onestep: k out of range (k >= K)"
    elif phase == PHASE_DIRECT:
        assert sig.K == 0, "onestep: wrong phase: DIRECT is only for K = 0"
    else:
        assert phase == PHASE_INIT, "onestep: wrong phase"
    return sig


# --- terms ------------------------------------------------------------------------------


@internal
@pure
def _needs(
    desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX], sig: Sig, out_index: uint256, phase: uint256,
    k: uint256
) -> DynArray[IOneStep.Need, 16]:
    out: DynArray[IOneStep.Need, 16] = []
    if phase != PHASE_TERM:
        if sig.op == OP_GEMM and len(in_headers) == 3 and tensor._in_slot(desc, 2) != tensor.ABSENT:
            o: DynArray[uint256, MAX_RANK] = tensor._unravel(sig.out_dims, out_index)
            out.append(IOneStep.Need(input=2, index=tensor._broadcast_flat(o, tensor._dims(in_headers[2]))))
        return out

    fa: uint256 = 0
    fb: uint256 = 0
    if sig.op == OP_GEMM:
        m: uint256 = sig.out_dims[0]
        n: uint256 = sig.out_dims[1]
        i: uint256 = out_index // n  # n >= 1: out_index < m * n
        j: uint256 = out_index % n
        if tensor._attr(desc, 0) == 1:
            fa = k * m + i  # A is (K, M)
        else:
            fa = i * sig.K + k  # A is (M, K)
        if tensor._attr(desc, 1) == 1:
            fb = j * sig.K + k  # B is (N, K)
        else:
            fb = k * n + j  # B is (K, N)
    elif sig.op == OP_CONV_INTEGER:
        inside: bool = False
        inside, fa, fb = self._conv_reads(desc, in_headers, sig, out_index, k)
        if not inside:
            return out  # padding: t_k = 0, nothing to read
    else:
        mm: MM = self._mm(in_headers[0], in_headers[1])
        yd: DynArray[uint256, MAX_RANK] = mm.batch
        yd.append(mm.M)
        yd.append(mm.N)
        # Y' = Y with the promoted dims of size 1 put back: the same flat index
        o: DynArray[uint256, MAX_RANK] = tensor._unravel(yd, out_index)
        nb: uint256 = len(mm.batch)
        b: DynArray[uint256, MAX_RANK] = []
        for t: uint256 in range(nb, bound=MAX_RANK):
            b.append(o[t])
        fa = (tensor._broadcast_flat(b, mm.a_batch) * mm.M + o[nb]) * mm.K + k
        fb = (tensor._broadcast_flat(b, mm.b_batch) * mm.K + k) * mm.N + o[nb + 1]
    out.append(IOneStep.Need(input=0, index=fa))
    out.append(IOneStep.Need(input=1, index=fb))
    if sig.op == OP_GEMM:
        return out  # Gemm's input 2 is C, read at INIT only
    for z: uint256 in range(2, 4):
        if z >= len(in_headers):
            break
        if tensor._in_slot(desc, z) != tensor.ABSENT:
            out.append(IOneStep.Need(input=z, index=0))
    return out


@internal
@pure
def _conv_reads(
    desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX], sig: Sig, out_index: uint256, k: uint256
) -> (bool, uint256, uint256):
    """Whether term k of ConvInteger's element out_index lies inside x, and if so the flat
    indices of its two factors in x and w."""
    x: DynArray[uint256, MAX_RANK] = tensor._dims(in_headers[0])
    w: DynArray[uint256, MAX_RANK] = tensor._dims(in_headers[1])
    n: uint256 = len(x) - 2
    o: DynArray[uint256, MAX_RANK] = tensor._unravel(sig.out_dims, out_index)
    # (c, j_1..j_n) = unravel(k, (C/G, k_1..k_n)): w[m] without its leading dim
    wk: DynArray[uint256, MAX_RANK] = []
    for i: uint256 in range(1, MAX_RANK):
        if i >= len(w):
            break
        wk.append(w[i])
    cj: DynArray[uint256, MAX_RANK] = tensor._unravel(wk, k)
    # group of output channel m: M/G >= 1 because m < M and G divides M
    g: uint256 = o[1] // (w[0] // tensor._attr_u(desc, 1))
    idx: DynArray[uint256, MAX_RANK] = [o[0], g * w[1] + cj[0]]
    for i: uint256 in range(n, bound=SPATIAL_MAX):
        # o_i * s_i + j_i * d_i - b_i, with o, j < 2^32 and s, d, b < 2^63
        p: int256 = (
            convert(o[2 + i], int256) * tensor._attr(desc, 2 + 3 * n + i)
            + convert(cj[1 + i], int256) * tensor._attr(desc, 2 + 4 * n + i)
            - tensor._attr(desc, 2 + n + i)
        )
        if p < 0 or p >= convert(x[2 + i], int256):
            return False, 0, 0
        idx.append(convert(p, uint256))
    # w[m, c, j] is the element m * K + k of w
    return True, tensor._ravel(x, idx), o[1] * sig.K + k
