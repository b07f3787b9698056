# pragma version ~=0.4.3
"""
@title One-step verifier for the elementwise ops (docs/SPEC.md 4.1, 4.2)
@notice Op codes 1..24: Identity, Add, Sub, Mul, Div, Mod, Neg, Abs, Sign, Relu, Max, Min,
        Clip, Where, Equal, Less, Greater, LessOrEqual, GreaterOrEqual, Not, And, Or, Xor,
        Cast. Every op is direct (K = 0): output element `o` is a function of one element of
        each present input, read at `bcast(o)` (SPEC 4.1), so `needs` lists one flat index
        per present input and `compute` applies the element rule of SPEC 4.2 exactly.
@custom:security Stateless and pure; the game proves every header and value it passes in.
        The contract still treats its arguments as hostile: the descriptor, the arity, the
        attributes, every input header (canonical, dtype allowed, shapes fit), phase and
        `out_index` are checked on every call, and a violation reverts with a reason starting
        "onestep: ". Input values are first wrapped to their input's dtype (bools read as
        `v != 0`), so the result is always a canonical value of the output dtype, even for a
        non-canonical bool byte in an agreed state (SPEC 1.3). Arithmetic is on int256 with
        64-bit operands, so no checked operation can overflow; division and remainder by zero
        are handled before the operator runs. Vyper's `//` and `%` on signed integers are
        EVM SDIV/SMOD (truncating; remainder has the dividend's sign), which the tests pin.
"""

from contracts import IOneStep
from contracts.lib import tensor

implements: IOneStep

DIRECT: constant(uint256) = 0

OP_IDENTITY: constant(uint256) = 1
OP_ADD: constant(uint256) = 2
OP_SUB: constant(uint256) = 3
OP_MUL: constant(uint256) = 4
OP_DIV: constant(uint256) = 5
OP_MOD: constant(uint256) = 6
OP_NEG: constant(uint256) = 7
OP_ABS: constant(uint256) = 8
OP_SIGN: constant(uint256) = 9
OP_RELU: constant(uint256) = 10
OP_MAX: constant(uint256) = 11
OP_MIN: constant(uint256) = 12
OP_CLIP: constant(uint256) = 13
OP_WHERE: constant(uint256) = 14
OP_EQUAL: constant(uint256) = 15
OP_LESS: constant(uint256) = 16
OP_GREATER: constant(uint256) = 17
OP_LESS_OR_EQUAL: constant(uint256) = 18
OP_GREATER_OR_EQUAL: constant(uint256) = 19
OP_NOT: constant(uint256) = 20
OP_AND: constant(uint256) = 21
OP_OR: constant(uint256) = 22
OP_XOR: constant(uint256) = 23
OP_CAST: constant(uint256) = 24

MAX_RANK: constant(uint256) = tensor.MAX_RANK
IN_MAX: constant(uint256) = tensor.IN_MAX
ATTR_MAX: constant(uint256) = tensor.ATTR_MAX
DESC_MAX: constant(uint256) = tensor.DESC_MAX
DIM_MASK: constant(uint256) = 2**32 - 1
# the 31 low bytes of a header: rank and dims, without the dtype
SHAPE_MASK: constant(uint256) = 2**248 - 1


struct Node:
    # op code
    op: uint256
    # number of inputs in the descriptor (absent ones included)
    n_in: uint256
    # bit i set: input i is present (only Clip's bounds may be absent)
    present: uint256
    # the single attribute of Mod (fmod) and Cast (to); 0 for the other ops
    attr: uint256
    # the dtype T shared by the inputs (Where: by its two branches)
    dtype: uint256
    # dtype of the output
    out_dtype: uint256
    # output shape
    out_dims: DynArray[uint256, MAX_RANK]
    # number of output elements
    out_size: uint256


# --- validation -------------------------------------------------------------------------
# Descriptors and headers are parsed inline (same rules as tensor._is_well_formed and
# tensor._is_canonical_header): passing the descriptor to a helper copies it on every call,
# and these checks run on every call of every function.


@pure
def _arity_ok(op: uint256, n_in: uint256) -> bool:
    if op == OP_MAX or op == OP_MIN:
        return n_in >= 1  # the descriptor check bounds it by IN_MAX
    if op == OP_CLIP or op == OP_WHERE:
        return n_in == 3
    if op == OP_IDENTITY or (op >= OP_NEG and op <= OP_RELU) or op == OP_NOT or op == OP_CAST:
        return n_in == 1
    return n_in == 2


@pure
def _dtype_ok(op: uint256, dtype: uint256) -> bool:
    """SPEC 4.2 dtype column: the ops taking any dtype, bool only, or ints only."""
    if op == OP_IDENTITY or op == OP_WHERE or op == OP_EQUAL or op == OP_CAST:
        return True
    if op >= OP_NOT and op <= OP_XOR:
        return dtype == tensor.DT_BOOL
    return dtype != tensor.DT_BOOL


@pure
def _check(desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX]) -> Node:
    """Validates the node against its input headers; returns its signature and output shape."""
    # descriptor: u8 op | u8 n_in | n_in x u16 slot | u16 out | u8 n_attr | n_attr x i64
    n: uint256 = len(desc)
    assert n >= 5, "onestep: malformed descriptor"
    op: uint256 = convert(slice(desc, 0, 1), uint256)
    n_in: uint256 = convert(slice(desc, 1, 1), uint256)
    assert n_in <= IN_MAX and n >= 5 + 2 * n_in, "onestep: malformed descriptor"
    n_attr: uint256 = convert(slice(desc, 4 + 2 * n_in, 1), uint256)
    assert n_attr <= ATTR_MAX and n == 5 + 2 * n_in + 8 * n_attr, "onestep: malformed descriptor"

    assert op >= OP_IDENTITY and op <= OP_CAST, "onestep: op code is not elementwise (1..24)"
    assert len(in_headers) == n_in, "onestep: header count differs from the node's input count"
    assert self._arity_ok(op, n_in), "onestep: wrong number of inputs for the op"

    attr: uint256 = 0
    if op == OP_MOD or op == OP_CAST:
        assert n_attr == 1, "onestep: Mod and Cast take exactly one attribute"
        # raw i64 bits: a negative value reads as >= 2^63 and fails both checks below
        attr = convert(slice(desc, 5 + 2 * n_in, 8), uint256)
        if op == OP_MOD:
            assert attr <= 1, "onestep: Mod fmod must be 0 or 1"
        else:
            assert tensor._valid_dtype(attr), "onestep: Cast target is not a profile dtype"
    else:
        assert n_attr == 0, "onestep: op takes no attributes"

    # Input headers, dtypes, and the broadcast shape (SPEC 4.1) kept right-aligned:
    # rdims[j] is output dim j counted from the last one.
    present: uint256 = 0
    dtype: uint256 = 0
    rank: uint256 = 0
    rdims: uint256[MAX_RANK] = [1, 1, 1, 1, 1, 1]
    for i: uint256 in range(IN_MAX):
        if i >= n_in:
            break
        h: uint256 = convert(in_headers[i], uint256)
        if convert(slice(desc, 2 + 2 * i, 2), uint256) == tensor.ABSENT:
            assert op == OP_CLIP and i > 0, "onestep: required input is absent"
            assert h == 0, "onestep: absent input has a non-zero header"
            continue
        present |= 1 << i

        dt: uint256 = h >> 248
        r: uint256 = (h >> 240) & 255
        assert tensor._valid_dtype(dt), "onestep: input header has an unknown dtype"
        assert r <= MAX_RANK, "onestep: input header rank above 6"
        assert h & ((1 << (240 - 32 * r)) - 1) == 0, "onestep: non-canonical input header"
        if op == OP_WHERE and i == 0:
            assert dt == tensor.DT_BOOL, "onestep: Where condition must be bool"
        elif dtype == 0:
            dtype = dt
        else:
            assert dt == dtype, "onestep: input dtype mismatch"

        clip_bound: bool = op == OP_CLIP and i > 0
        if clip_bound:
            # unidirectional to x (input 0, already merged): rank <= x's, dims 1 or x's
            assert r <= rank, "onestep: Clip bound does not broadcast to x"
        size: uint256 = 1
        for k: uint256 in range(MAX_RANK):
            if k >= r:
                break
            d: uint256 = (h >> (208 - 32 * k)) & DIM_MASK
            size *= d
            j: uint256 = r - 1 - k
            if d == 1:
                continue
            if clip_bound:
                assert d == rdims[j], "onestep: Clip bound does not broadcast to x"
            elif rdims[j] == 1:
                rdims[j] = d
            else:
                assert rdims[j] == d, "onestep: input shapes do not broadcast"
        assert size < 2**32, "onestep: input header has 2^32 or more elements"
        rank = max(rank, r)
    assert self._dtype_ok(op, dtype), "onestep: input dtype not allowed for the op"

    out_dims: DynArray[uint256, MAX_RANK] = []
    out_size: uint256 = 1
    for k: uint256 in range(MAX_RANK):
        if k >= rank:
            break
        d: uint256 = rdims[rank - 1 - k]
        out_dims.append(d)
        out_size *= d
    assert out_size < 2**32, "onestep: output has 2^32 or more elements"

    out_dtype: uint256 = dtype
    if op >= OP_EQUAL and op <= OP_XOR:
        out_dtype = tensor.DT_BOOL
    elif op == OP_CAST:
        out_dtype = attr
    return Node(
        op=op, n_in=n_in, present=present, attr=attr, dtype=dtype, out_dtype=out_dtype,
        out_dims=out_dims, out_size=out_size
    )


@pure
def _check_call(
    desc: Bytes[DESC_MAX], in_headers: DynArray[bytes32, IN_MAX], out_index: uint256, phase: uint256
) -> Node:
    node: Node = self._check(desc, in_headers)
    assert phase == DIRECT, "onestep: elementwise ops are direct; phase must be DIRECT (0)"
    assert out_index < node.out_size, "onestep: out_index out of range"
    return node


@pure
def _bcast_flat(o: DynArray[uint256, MAX_RANK], h: uint256) -> uint256:
    """tensor._broadcast_flat(o, dims of header h), without building the dims list."""
    r: uint256 = (h >> 240) & 255
    off: uint256 = len(o) - r
    flat: uint256 = 0
    for k: uint256 in range(MAX_RANK):
        if k >= r:
            break
        d: uint256 = (h >> (208 - 32 * k)) & DIM_MASK
        if d == 1:
            continue  # flat * 1 + 0
        flat = flat * d + o[k + off]
    return flat


# --- element rules (SPEC 4.2) -----------------------------------------------------------


@pure
def _div(a: int256, b: int256, dtype: uint256) -> int256:
    # truncating (Vyper's signed // is SDIV); MIN / -1 = 2^(w-1) wraps back to MIN
    if b == 0:
        return 0
    return tensor._wrap(a // b, dtype)


@pure
def _mod(a: int256, b: int256, fmod: uint256) -> int256:
    if b == 0:
        return 0
    r: int256 = a % b  # Vyper's signed % is SMOD: the sign of a (fmod 1, C fmod)
    if fmod == 0 and r != 0 and ((r < 0) != (b < 0)):
        r += b  # floor remainder: the sign of b (Python %)
    return r


@pure
def _bool(c: bool) -> int256:
    if c:
        return 1
    return 0


@pure
def _apply(node: Node, v: DynArray[int256, IN_MAX]) -> int256:
    op: uint256 = node.op
    t: uint256 = node.dtype
    if op == OP_IDENTITY:
        return v[0]
    if op == OP_ADD:
        return tensor._wrap(v[0] + v[1], t)
    if op == OP_SUB:
        return tensor._wrap(v[0] - v[1], t)
    if op == OP_MUL:
        return tensor._wrap(v[0] * v[1], t)
    if op == OP_DIV:
        return self._div(v[0], v[1], t)
    if op == OP_MOD:
        return self._mod(v[0], v[1], node.attr)
    if op == OP_NEG:
        return tensor._wrap(-v[0], t)
    if op == OP_ABS:
        if v[0] < 0:
            return tensor._wrap(-v[0], t)
        return v[0]
    if op == OP_SIGN:
        if v[0] < 0:
            return -1
        return self._bool(v[0] > 0)
    if op == OP_RELU:
        return max(v[0], 0)
    if op == OP_MAX or op == OP_MIN:
        y: int256 = v[0]
        for j: uint256 in range(1, IN_MAX):
            if j >= len(v):
                break
            if op == OP_MAX:
                y = max(y, v[j])
            else:
                y = min(y, v[j])
        return y
    if op == OP_CLIP:
        # values arrive for the present inputs only, in input order: x, [lo], [hi]
        y: int256 = v[0]
        j: uint256 = 1
        if node.present & 2 != 0:
            y = max(y, v[j])
            j += 1
        if node.present & 4 != 0:
            y = min(y, v[j])
        return y
    if op == OP_WHERE:
        if v[0] != 0:
            return v[1]
        return v[2]
    if op == OP_EQUAL:
        return self._bool(v[0] == v[1])
    if op == OP_LESS:
        return self._bool(v[0] < v[1])
    if op == OP_GREATER:
        return self._bool(v[0] > v[1])
    if op == OP_LESS_OR_EQUAL:
        return self._bool(v[0] <= v[1])
    if op == OP_GREATER_OR_EQUAL:
        return self._bool(v[0] >= v[1])
    if op == OP_NOT:
        return self._bool(v[0] == 0)
    if op == OP_AND:
        return self._bool(v[0] != 0 and v[1] != 0)
    if op == OP_OR:
        return self._bool(v[0] != 0 or v[1] != 0)
    if op == OP_XOR:
        return self._bool(v[0] != v[1])
    # Cast: to bool is v != 0, to an int type a wrap; a bool input is already 0/1
    return tensor._wrap(v[0], node.out_dtype)


# --- IOneStep ---------------------------------------------------------------------------


@view
@external
def output_header(desc: Bytes[548], in_headers: DynArray[bytes32, 16]) -> bytes32:
    """
    @notice Header of the node's output: dtype per SPEC 4.2, the broadcast shape (Clip,
            Cast and the unary ops: x's shape). Reverts if the inputs do not fit the node.
    """
    node: Node = self._check(desc, in_headers)
    return tensor._header(node.out_dtype, node.out_dims)


@view
@external
def terms(desc: Bytes[548], in_headers: DynArray[bytes32, 16]) -> uint256:
    """
    @notice 0: every elementwise op is direct.
    """
    self._check(desc, in_headers)
    return 0


@view
@external
def needs(
    desc: Bytes[548], in_headers: DynArray[bytes32, 16], out_index: uint256, phase: uint256, k: uint256,
    values: DynArray[int256, 16]
) -> DynArray[IOneStep.Need, 16]:
    """
    @notice One element per present input, in input order: input i at
            `ravel(bcast_i(unravel(out_index)))` (SPEC 4.1). Absent Clip bounds are skipped.
            The list does not depend on `values`.
    """
    node: Node = self._check_call(desc, in_headers, out_index, phase)
    out_shape: uint256 = convert(tensor._header(0, node.out_dims), uint256)
    o: DynArray[uint256, MAX_RANK] = []
    out: DynArray[IOneStep.Need, 16] = []
    for i: uint256 in range(IN_MAX):
        if i >= node.n_in:
            break
        if node.present & (1 << i) == 0:
            continue
        h: uint256 = convert(in_headers[i], uint256)
        if h & SHAPE_MASK == out_shape:
            # same shape as the output: the same flat index
            out.append(IOneStep.Need(input=i, index=out_index))
            continue
        if len(o) == 0:
            o = tensor._unravel(node.out_dims, out_index)
        out.append(IOneStep.Need(input=i, index=self._bcast_flat(o, h)))
    return out


@view
@external
def compute(
    desc: Bytes[548], in_headers: DynArray[bytes32, 16], out_index: uint256, phase: uint256, k: uint256,
    acc: int256, values: DynArray[int256, 16]
) -> int256:
    """
    @notice The output element at `out_index` from the values of `needs` (one per present
            input, in input order). `k` and `acc` are unused by direct ops.
    """
    node: Node = self._check_call(desc, in_headers, out_index, phase)
    v: DynArray[int256, IN_MAX] = []
    for i: uint256 in range(IN_MAX):
        if i >= node.n_in:
            break
        if node.present & (1 << i) == 0:
            continue
        assert len(v) < len(values), "onestep: fewer values than needs"
        dt: uint256 = node.dtype
        if node.op == OP_WHERE and i == 0:
            dt = tensor.DT_BOOL
        # canonical value of the input's dtype (proven values already are; bools read as v != 0)
        v.append(tensor._wrap(values[len(v)], dt))
    assert len(v) == len(values), "onestep: more values than needs"
    return self._apply(node, v)


@view
@external
def finalize(desc: Bytes[548], in_headers: DynArray[bytes32, 16], acc: int256) -> int256:
    """
    @notice Never part of a direct op's proof: reverts.
    """
    self._check(desc, in_headers)
    raise "onestep: elementwise ops are direct; no finalize"
