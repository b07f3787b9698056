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
from contracts.lib import nodeparse

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
ATTR_MAX: constant(uint256) = tensor.ATTR_MAX
# ConvInteger's spatial rank n: x is (N, C, D_1..D_n) with rank n + 2 <= MAX_RANK
SPATIAL_MAX: constant(uint256) = 4
# ConvInteger has the most attrs: 2 + 5 * SPATIAL_MAX
ATTR_LIN: constant(uint256) = 22


struct Sig:
    # op code
    op: uint256
    # number of inputs in the descriptor, and bit i set when input i is absent (0xFFFF)
    n_in: uint256
    absent: uint256
    # canonical attrs (at most 2 + 5 * SPATIAL_MAX of them)
    attrs: DynArray[int256, ATTR_LIN]
    # dtype of the two factor inputs (int8 for MatMulInteger/ConvInteger)
    dtype: uint256
    # dtype of the output (int32 for MatMulInteger/ConvInteger)
    out_dtype: uint256
    # dims of inputs 0, 1 and (Gemm) 2
    a_dims: DynArray[uint256, MAX_RANK]
    b_dims: DynArray[uint256, MAX_RANK]
    c_dims: DynArray[uint256, MAX_RANK]
    # output dims and element count (< 2^32)
    out_dims: DynArray[uint256, MAX_RANK]
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
    return self._needs(sig, out_index, phase, k)


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
    reads: DynArray[IOneStep.Need, 16] = self._needs(sig, out_index, phase, k)
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
def _mm(da: DynArray[uint256, MAX_RANK], db: DynArray[uint256, MAX_RANK]) -> MM:
    """The matmul shape rule (SPEC 4.5): 1-D promotion, then batch broadcasting."""
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
    sig: Sig = empty(Sig)
    attrs: DynArray[int256, ATTR_MAX] = []
    sig.op, sig.n_in, sig.absent, attrs = nodeparse._desc(desc, 4)
    op: uint256 = sig.op
    n_in: uint256 = sig.n_in
    assert op >= OP_MATMUL and op <= OP_CONV_INTEGER, "onestep: op code is not a product reduction (39..42)"
    if op == OP_MATMUL:
        assert n_in == 2, "onestep: MatMul takes 2 inputs"
    elif op == OP_GEMM:
        assert n_in == 2 or n_in == 3, "onestep: Gemm takes 2 or 3 inputs"
    else:
        assert n_in >= 2 and n_in <= 4, "onestep: op takes 2 to 4 inputs"
    assert len(in_headers) == n_in, "onestep: header count differs from the node's input count"
    assert sig.absent & 3 == 0, "onestep: required input is absent"
    n_attr: uint256 = len(attrs)
    assert n_attr <= ATTR_LIN, "onestep: too many attrs"
    for i: uint256 in range(n_attr, bound=ATTR_LIN):
        sig.attrs.append(attrs[i])

    b_dtype: uint256 = 0
    sig.dtype, sig.a_dims = nodeparse._header(in_headers[0])
    b_dtype, sig.b_dims = nodeparse._header(in_headers[1])
    assert b_dtype == sig.dtype, "onestep: input dtype mismatch"
    for i: uint256 in range(2, 4):
        if i >= n_in:
            break
        if sig.absent & (1 << i) != 0:
            assert in_headers[i] == empty(bytes32), "onestep: absent input has a non-zero header"
            continue
        dt: uint256 = 0
        dims: DynArray[uint256, MAX_RANK] = []
        dt, dims = nodeparse._header(in_headers[i])
        if op == OP_GEMM:
            assert dt == sig.dtype, "onestep: input dtype mismatch"
            sig.c_dims = dims
        else:
            # zero points: int8 with exactly one element
            assert dt == tensor.DT_INT8, "onestep: zero point must be int8"
            for d: uint256 in dims:
                assert d == 1, "onestep: zero point must have exactly one element"

    sig.out_dtype = sig.dtype
    if op == OP_MATMUL or op == OP_GEMM:
        assert sig.dtype == tensor.DT_INT32 or sig.dtype == tensor.DT_INT64, "onestep: op takes int32 or int64"
    else:
        assert sig.dtype == tensor.DT_INT8, "onestep: op takes int8"
        sig.out_dtype = tensor.DT_INT32

    if op == OP_MATMUL or op == OP_MATMUL_INTEGER:
        assert n_attr == 0, "onestep: op takes no attributes"
        mm: MM = self._mm(sig.a_dims, sig.b_dims)
        sig.out_dims = mm.batch
        if len(sig.a_dims) >= 2:
            sig.out_dims.append(mm.M)
        if len(sig.b_dims) >= 2:
            sig.out_dims.append(mm.N)
        sig.K = mm.K
    elif op == OP_GEMM:
        assert n_attr == 2, "onestep: Gemm attrs are (transA, transB)"
        ta: int256 = attrs[0]
        tb: int256 = attrs[1]
        assert (ta == 0 or ta == 1) and (tb == 0 or tb == 1), "onestep: transA/transB must be 0 or 1"
        assert len(sig.a_dims) == 2 and len(sig.b_dims) == 2, "onestep: Gemm A and B must be 2-D"
        m: uint256 = sig.a_dims[convert(ta, uint256)]
        sig.K = sig.a_dims[1 - convert(ta, uint256)]
        assert sig.b_dims[convert(tb, uint256)] == sig.K, "onestep: Gemm inner dims differ"
        sig.out_dims = [m, sig.b_dims[1 - convert(tb, uint256)]]
        rc: uint256 = len(sig.c_dims)
        assert rc <= 2, "onestep: Gemm C does not broadcast to (M, N)"
        for i: uint256 in range(rc, bound=2):
            c: uint256 = sig.c_dims[i]
            assert c == 1 or c == sig.out_dims[i + 2 - rc], "onestep: Gemm C does not broadcast to (M, N)"
    else:
        sig.out_dims = self._conv_check(sig)
        # K divides n(w) < 2^32 (or is 0)
        sig.K = 1
        for i: uint256 in range(1, MAX_RANK):
            if i >= len(sig.b_dims):
                break
            sig.K *= sig.b_dims[i]
    sig.out_size = nodeparse._size(sig.out_dims)
    return sig


@internal
@pure
def _conv_check(sig: Sig) -> DynArray[uint256, MAX_RANK]:
    """ConvInteger attrs (n, G, k[n], b[n], e[n], s[n], d[n]) against x and w; output dims."""
    x: DynArray[uint256, MAX_RANK] = sig.a_dims
    w: DynArray[uint256, MAX_RANK] = sig.b_dims
    r: uint256 = len(x)
    assert r >= 3 and len(w) == r, "onestep: ConvInteger x and w must have the same rank >= 3"
    n: uint256 = r - 2
    assert len(sig.attrs) == 2 + 5 * n, "onestep: ConvInteger attrs are (n, G, k, b, e, s, d)"
    assert sig.attrs[0] == convert(n, int256), "onestep: ConvInteger attr n differs from x's rank"
    assert sig.attrs[1] >= 1, "onestep: ConvInteger attr out of range"
    g: uint256 = convert(sig.attrs[1], uint256)
    # attrs are below 2^63 and dims below 2^32, so none of the products below can overflow
    assert w[1] * g == x[1], "onestep: ConvInteger group does not fit the channels"
    assert w[0] % g == 0, "onestep: ConvInteger group does not divide M"
    out: DynArray[uint256, MAX_RANK] = [x[0], w[0]]
    for i: uint256 in range(n, bound=SPATIAL_MAX):
        ka: int256 = sig.attrs[2 + i]
        b: int256 = sig.attrs[2 + n + i]
        e: int256 = sig.attrs[2 + 2 * n + i]
        s: int256 = sig.attrs[2 + 3 * n + i]
        d: int256 = sig.attrs[2 + 4 * n + i]
        assert ka >= 1 and b >= 0 and e >= 0 and s >= 1 and d >= 1, "onestep: ConvInteger attr out of range"
        k: uint256 = convert(ka, uint256)
        assert k == w[2 + i], "onestep: ConvInteger kernel differs from w's"
        padded: uint256 = x[2 + i] + convert(b + e, uint256)
        span: uint256 = (k - 1) * convert(d, uint256) + 1
        assert padded >= span, "onestep: ConvInteger padded input is smaller than the kernel"
        out.append((padded - span) // convert(s, uint256) + 1)
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
def _needs(sig: Sig, out_index: uint256, phase: uint256, k: uint256) -> DynArray[IOneStep.Need, 16]:
    out: DynArray[IOneStep.Need, 16] = []
    if phase != PHASE_TERM:
        if sig.op == OP_GEMM and sig.n_in == 3 and sig.absent & 4 == 0:
            o: DynArray[uint256, MAX_RANK] = tensor._unravel(sig.out_dims, out_index)
            out.append(IOneStep.Need(input=2, index=tensor._broadcast_flat(o, sig.c_dims)))
        return out

    fa: uint256 = 0
    fb: uint256 = 0
    if sig.op == OP_GEMM:
        m: uint256 = sig.out_dims[0]
        n: uint256 = sig.out_dims[1]
        i: uint256 = out_index // n  # n >= 1: out_index < m * n
        j: uint256 = out_index % n
        if sig.attrs[0] == 1:
            fa = k * m + i  # A is (K, M)
        else:
            fa = i * sig.K + k  # A is (M, K)
        if sig.attrs[1] == 1:
            fb = j * sig.K + k  # B is (N, K)
        else:
            fb = k * n + j  # B is (K, N)
        out.append(IOneStep.Need(input=0, index=fa))
        out.append(IOneStep.Need(input=1, index=fb))
        return out  # Gemm's input 2 is C, read at INIT only
    if sig.op == OP_CONV_INTEGER:
        inside: bool = False
        inside, fa, fb = self._conv_reads(sig, out_index, k)
        if not inside:
            return out  # padding: t_k = 0, nothing to read
    else:
        mm: MM = self._mm(sig.a_dims, sig.b_dims)
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
    for z: uint256 in range(2, 4):
        if z >= sig.n_in:
            break
        if sig.absent & (1 << z) == 0:
            out.append(IOneStep.Need(input=z, index=0))
    return out


@internal
@pure
def _conv_reads(sig: Sig, out_index: uint256, k: uint256) -> (bool, uint256, uint256):
    """Whether term k of ConvInteger's element out_index lies inside x, and if so the flat
    indices of its two factors in x and w."""
    x: DynArray[uint256, MAX_RANK] = sig.a_dims
    w: DynArray[uint256, MAX_RANK] = sig.b_dims
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
    g: uint256 = o[1] // (w[0] // convert(sig.attrs[1], uint256))
    idx: DynArray[uint256, MAX_RANK] = [o[0], g * w[1] + cj[0]]
    for i: uint256 in range(n, bound=SPATIAL_MAX):
        # o_i * s_i + j_i * d_i - b_i, with o, j < 2^32 and s, d, b < 2^63
        p: int256 = (
            convert(o[2 + i], int256) * sig.attrs[2 + 3 * n + i]
            + convert(cj[1 + i], int256) * sig.attrs[2 + 4 * n + i]
            - sig.attrs[2 + n + i]
        )
        if p < 0 or p >= convert(x[2 + i], int256):
            return False, 0, 0
        idx.append(convert(p, uint256))
    # w[m, c, j] is the element m * K + k of w
    return True, tensor._ravel(x, idx), o[1] * sig.K + k
