# pragma version ~=0.4.3
"""
@title One-step verifier for the reductions (docs/SPEC.md 4.4, 5)
@notice Op codes 34..38: ReduceSum, ReduceMax, ReduceMin, ArgMax, ArgMin. Every output
        element y[o] folds the K elements of its group G(o) in the order below, so the game
        bisects over the partial results s_0 .. s_K and this contract only ever computes
        s_0 (INIT) or s_{k+1} from an agreed s_k (TERM), one input element at a time.

        Term enumeration. Term k reads the element x[i] with i_a = o_a on every kept axis a
        and, on the reduced axes a_0 < .. < a_{m-1}, (i_{a_0}, .., i_{a_{m-1}}) =
        unravel(k, (d_{a_0}, .., d_{a_{m-1}})): row-major over the reduced axes, the last
        reduced axis fastest. K = prod_j d_{a_j}. ArgMax/ArgMin: the one reduced axis is
        `axis`, so term k reads index k along it and K = d_axis >= 1.

        No reduction (m = 0): K = prod over the empty axis list = 1, and term 0 reads x[o]
        itself, so y = x through the ordinary INIT / TERM 0 / finalize path; no special case.
        Empty reduction (a reduced axis of size 0, so K = 0): the op is direct for that node
        (SPEC 5): compute(DIRECT) = finalize(s_0) = s_0 is the empty fold (0, min of T, max
        of T). INIT is accepted for any K and returns s_0; DIRECT only when K = 0.

        Accumulators. ReduceSum: s_0 = 0, s_{k+1} = wrap_T(s_k + x_k). ReduceMax: s_0 = min
        of T (False for bool), s_{k+1} = max(s_k, x_k). ReduceMin: s_0 = max of T (True),
        s_{k+1} = min(s_k, x_k). finalize is the identity for the three.
        ArgMax/ArgMin pack (value, index) as value * 2^64 + index (index < 2^32, value
        signed, decoded with an arithmetic shift). s_0 = (min of T, 0) for ArgMax and
        (max of T, 0) for ArgMin, the empty folds of ReduceMax/ReduceMin with index 0.
        s_{k+1} = (x_k, k) if x_k beats the running value (ArgMax: x_k > v, ArgMin: x_k < v;
        with last = 1 also on x_k == v), else s_k. So s_1 = (x_0, 0) whatever x_0 is, and
        s_K holds the first (last = 0) or last (last = 1) extreme index, as the reference's
        np.argmax/np.argmin (on the flipped axis for last = 1). finalize(s) = s mod 2^64.
@custom:security Stateless and pure; the game proves the descriptor, every header and every
        value it passes in. The contract still treats its arguments as hostile: descriptor,
        arity, attrs, input headers, phase, k and out_index are checked on every call, and a
        violation reverts with a reason starting "onestep: ". Input values are wrapped to the
        input dtype first (bools read as v != 0, SPEC 1.3), and so is the agreed accumulator
        of ReduceSum/Max/Min, so every result is a canonical value of the output dtype and
        no checked operation can overflow: all operands are below 2^64 in magnitude.
        `compute` refuses a values list whose length differs from `needs`'.
"""

from contracts import IOneStep
from contracts.lib import tensor
from contracts.lib import nodeparse

implements: IOneStep

OP_REDUCE_SUM: constant(uint256) = 34
OP_REDUCE_MAX: constant(uint256) = 35
OP_REDUCE_MIN: constant(uint256) = 36
OP_ARGMAX: constant(uint256) = 37
OP_ARGMIN: constant(uint256) = 38

PHASE_DIRECT: constant(uint256) = 0
PHASE_INIT: constant(uint256) = 1
PHASE_TERM: constant(uint256) = 2

MAX_RANK: constant(uint256) = tensor.MAX_RANK
IN_MAX: constant(uint256) = tensor.IN_MAX
DESC_MAX: constant(uint256) = tensor.DESC_MAX
ATTR_MAX: constant(uint256) = tensor.ATTR_MAX
# ArgMax/ArgMin accumulator: value * 2^64 + index
INDEX_BITS: constant(uint256) = 64
INDEX_MASK: constant(uint256) = 2**64 - 1


struct Sig:
    # op code
    op: uint256
    # dtype T of x
    dtype: uint256
    # dtype of the output (T; int64 for ArgMax/ArgMin)
    out_dtype: uint256
    # dims of x
    dims: DynArray[uint256, MAX_RANK]
    # output dims
    out_dims: DynArray[uint256, MAX_RANK]
    # number of output elements (< 2^32)
    out_size: uint256
    # bit a set for every reduced axis a of x
    mask: uint256
    # 1 if reduced axes stay as dims of size 1
    keepdims: uint256
    # ArgMax/ArgMin select_last_index
    last: uint256
    # number of terms (prod of the reduced dims)
    K: uint256


# --- IOneStep ---------------------------------------------------------------------------


@view
@external
def output_header(desc: Bytes[548], in_headers: DynArray[bytes32, 16]) -> bytes32:
    """
    @notice Output header: T (int64 for ArgMax/ArgMin) and x's dims with every reduced axis
            set to 1 (keepdims = 1) or removed. Reverts if the input does not fit the node.
    """
    sig: Sig = self._check(desc, in_headers)
    return tensor._header(sig.out_dtype, sig.out_dims)


@view
@external
def terms(desc: Bytes[548], in_headers: DynArray[bytes32, 16]) -> uint256:
    """
    @notice K = the product of the reduced dims (1 for m = 0; 0 for an empty reduction, then
            the node is direct).
    """
    return self._check(desc, in_headers).K


@view
@external
def needs(
    desc: Bytes[548], in_headers: DynArray[bytes32, 16], out_index: uint256, phase: uint256, k: uint256,
    values: DynArray[int256, 16]
) -> DynArray[IOneStep.Need, 16]:
    """
    @notice INIT and DIRECT read nothing; TERM k reads the one element x[i] of term k (see
            the enumeration above). Does not depend on `values`.
    """
    sig: Sig = self._check_call(desc, in_headers, out_index, phase, k)
    out: DynArray[IOneStep.Need, 16] = []
    if phase == PHASE_TERM:
        out.append(IOneStep.Need(input=0, index=self._term_flat(sig, out_index, k)))
    return out


@view
@external
def compute(
    desc: Bytes[548], in_headers: DynArray[bytes32, 16], out_index: uint256, phase: uint256, k: uint256,
    acc: int256, values: DynArray[int256, 16]
) -> int256:
    """
    @notice INIT: s_0. TERM: s_{k+1} from the agreed s_k = `acc` and x_k = values[0].
            DIRECT (K = 0 only): the element, finalize(s_0) = s_0.
    """
    sig: Sig = self._check_call(desc, in_headers, out_index, phase, k)
    if phase != PHASE_TERM:
        assert len(values) == 0, "onestep: values do not match needs"
        # DIRECT implies K = 0, hence not ArgMax/ArgMin (d_axis >= 1): finalize is the identity
        return self._init(sig)
    assert len(values) == 1, "onestep: values do not match needs"
    return self._term(sig, acc, k, tensor._wrap(values[0], sig.dtype))


@view
@external
def finalize(desc: Bytes[548], in_headers: DynArray[bytes32, 16], acc: int256) -> int256:
    """
    @notice The element from s_K: the identity for ReduceSum/Max/Min, the index (s_K mod 2^64)
            for ArgMax/ArgMin.
    """
    sig: Sig = self._check(desc, in_headers)
    if sig.op == OP_ARGMAX or sig.op == OP_ARGMIN:
        return convert(convert(convert(acc, bytes32), uint256) & INDEX_MASK, int256)
    return acc


# --- validation -------------------------------------------------------------------------


@internal
@pure
def _check(desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX]) -> Sig:
    """Validates the node against its input header (SPEC 4.4); returns its signature."""
    op: uint256 = 0
    n_in: uint256 = 0
    absent: uint256 = 0
    attrs: DynArray[int256, ATTR_MAX] = []
    op, n_in, absent, attrs = nodeparse._desc(desc, 1)
    assert op >= OP_REDUCE_SUM and op <= OP_ARGMIN, "onestep: op code is not a reduction (34..38)"
    assert n_in == 1, "onestep: reductions take one input"
    assert len(in_headers) == 1, "onestep: header count differs from the node's input count"
    assert absent == 0, "onestep: required input is absent"
    dtype: uint256 = 0
    dims: DynArray[uint256, MAX_RANK] = []
    dtype, dims = nodeparse._header(in_headers[0])
    r: uint256 = len(dims)
    n_attr: uint256 = len(attrs)

    mask: uint256 = 0
    keepdims: int256 = 0
    last: int256 = 0
    out_dtype: uint256 = dtype
    if op <= OP_REDUCE_MIN:
        # attrs (keepdims, m, a_0 < .. < a_{m-1})
        if op == OP_REDUCE_SUM:
            assert dtype != tensor.DT_BOOL, "onestep: ReduceSum takes ints"
        assert n_attr >= 2, "onestep: reduce attrs are (keepdims, m, axes..)"
        keepdims = attrs[0]
        m: int256 = attrs[1]
        assert m >= 0 and m <= convert(r, int256), "onestep: reduce axis count outside 0..rank"
        assert n_attr == 2 + convert(m, uint256), "onestep: reduce attrs are (keepdims, m, axes..)"
        prev: int256 = -1
        for j: uint256 in range(convert(m, uint256), bound=MAX_RANK):
            a: int256 = attrs[2 + j]
            assert a > prev and a < convert(r, int256), "onestep: reduce axes are not sorted distinct axes of x"
            mask |= 1 << convert(a, uint256)
            prev = a
    else:
        # attrs (axis, keepdims, last)
        assert dtype != tensor.DT_BOOL, "onestep: ArgMax/ArgMin take ints"
        assert n_attr == 3, "onestep: ArgMax/ArgMin attrs are (axis, keepdims, last)"
        axis: int256 = attrs[0]
        keepdims = attrs[1]
        last = attrs[2]
        assert axis >= 0 and axis < convert(r, int256), "onestep: axis outside 0..rank-1"
        assert dims[convert(axis, uint256)] >= 1, "onestep: ArgMax/ArgMin over an empty axis"
        assert last == 0 or last == 1, "onestep: select_last_index must be 0 or 1"
        mask = 1 << convert(axis, uint256)
        out_dtype = tensor.DT_INT64
    assert keepdims == 0 or keepdims == 1, "onestep: keepdims must be 0 or 1"

    out_dims: DynArray[uint256, MAX_RANK] = []
    K: uint256 = 1
    size: uint256 = 1
    for i: uint256 in range(r, bound=MAX_RANK):
        if mask & (1 << i) != 0:
            K *= dims[i]
            if keepdims == 1:
                out_dims.append(1)
        else:
            out_dims.append(dims[i])
            size *= dims[i]
    # K and size divide n(x) < 2^32 (or one of them is 0), so neither can overflow
    return Sig(
        op=op,
        dtype=dtype,
        out_dtype=out_dtype,
        dims=dims,
        out_dims=out_dims,
        out_size=size,
        mask=mask,
        keepdims=convert(keepdims, uint256),
        last=convert(last, uint256),
        K=K,
    )


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
def _term_flat(sig: Sig, out_index: uint256, k: uint256) -> uint256:
    """Flat index in x of term k of output element out_index."""
    dims: DynArray[uint256, MAX_RANK] = sig.dims
    o: DynArray[uint256, MAX_RANK] = tensor._unravel(sig.out_dims, out_index)
    idx: DynArray[uint256, MAX_RANK] = dims
    r: uint256 = len(dims)
    # k, row-major over the reduced axes: peel digits from the last reduced axis up
    rest: uint256 = k
    for j: uint256 in range(r, bound=MAX_RANK):
        i: uint256 = r - 1 - j
        if sig.mask & (1 << i) != 0:
            # d_i >= 1 here: k < K = prod of the reduced dims
            idx[i] = rest % dims[i]
            rest = rest // dims[i]
    # kept axes from o (with keepdims, o also has a 0 on each reduced axis: skip it)
    p: uint256 = 0
    for i: uint256 in range(r, bound=MAX_RANK):
        if sig.mask & (1 << i) == 0:
            idx[i] = o[p]
            p += 1
        elif sig.keepdims == 1:
            p += 1
    return tensor._ravel(dims, idx)


@internal
@pure
def _init(sig: Sig) -> int256:
    """s_0: the empty fold (ArgMax/ArgMin: with index 0)."""
    if sig.op == OP_REDUCE_SUM:
        return 0
    if sig.op == OP_REDUCE_MAX:
        return tensor._min_of(sig.dtype)
    if sig.op == OP_REDUCE_MIN:
        return tensor._max_of(sig.dtype)
    if sig.op == OP_ARGMAX:
        # |min of T| <= 2^63, so the product stays below 2^127
        return tensor._min_of(sig.dtype) * 2**64
    return tensor._max_of(sig.dtype) * 2**64


@internal
@pure
def _term(sig: Sig, acc: int256, k: uint256, v: int256) -> int256:
    """s_{k+1} from s_k = acc and the canonical value v of term k."""
    if sig.op == OP_REDUCE_SUM:
        # both operands are below 2^63 in magnitude after wrapping
        return tensor._wrap(tensor._wrap(acc, sig.dtype) + v, sig.dtype)
    if sig.op == OP_REDUCE_MAX:
        return max(tensor._wrap(acc, sig.dtype), v)
    if sig.op == OP_REDUCE_MIN:
        return min(tensor._wrap(acc, sig.dtype), v)
    cur: int256 = acc >> INDEX_BITS  # arithmetic shift: floor(acc / 2^64), the packed value
    better: bool = False
    if sig.op == OP_ARGMAX:
        better = v > cur
    else:
        better = v < cur
    if sig.last == 1 and v == cur:
        better = True
    if better:
        # |v| <= 2^63 and k < 2^32
        return v * 2**64 + convert(k, int256)
    return acc
