# pragma version ~=0.4.3
"""
@title Referee: element choices and one-step proofs
@notice Checks what needs heavy proofs (the node's input headers, input element openings, the
        whole slot table at a step boundary), asks the op family's one-step contract for the
        true value, and reports to the game. Stateless: the game holds every game's state.
@custom:security Only this contract may call Game.enter_element and Game.decide; it acts for
                 the challenger only when msg.sender is the game's challenger, and proofs are
                 permissionless. An input whose header does not fit its node (an invalid
                 program) makes output_header revert, so such a dispute ends on the clocks.
"""

from contracts import Game
from contracts import IOneStep
from contracts.lib import merkle
from contracts.lib import tensor

IN_MAX: constant(uint256) = 16
# s_0 reads at most one input element in every family (Gemm's bias; SPEC 6): a list for it of
# IN_MAX openings would only cost the memory of its chunks
INIT_MAX: constant(uint256) = 2
MAX_DEPTH: constant(uint256) = 32
# a slot path's length: log2 of MAX_SLOTS (a bound of MAX_DEPTH would cost each call the memory
# of 16 x 32 words, twice)
SLOT_DEPTH: constant(uint256) = 9
MAX_SLOTS: constant(uint256) = 512
CHUNK: constant(uint256) = 2048
DESC_MAX: constant(uint256) = 548
BOUNDARY_MAX: constant(uint256) = 2057  # u8 + 4 x u16 + 512 x (u16, u16)
BOUNDARY_CODE: constant(uint256) = 255
DIRECT_PHASE: constant(uint256) = 0
INIT_PHASE: constant(uint256) = 1
TERM_PHASE: constant(uint256) = 2
# levels, as in Game.vy
DATA: constant(uint8) = 6
ELEMENT: constant(uint8) = 8
PROVE_HEADER: constant(uint8) = 5
PROVE_ELEMENT: constant(uint8) = 10
PROVE_BOUNDARY: constant(uint8) = 11


struct Opening:
    # position of the input in the node's input list
    input: uint256
    # flat index of the element in that input
    index: uint256
    # the chunk holding the element, and its proof against the input's data root
    chunk: Bytes[CHUNK]
    proof: DynArray[bytes32, MAX_DEPTH]

# the game this referee serves
game: public(Game.__interface__)
# one-step contracts per op family
elementwise: public(address)
shape: public(address)
reduce: public(address)
linalg: public(address)


@deploy
def __init__(game: address, elementwise: address, shape: address, reduce: address, linalg: address):
    self.game = Game.__interface__(game)
    self.elementwise = elementwise
    self.shape = shape
    self.reduce = reduce
    self.linalg = linalg


@external
def pick_element(
    game_id: uint256,
    chunk: Bytes[CHUNK],
    i: uint256,
    desc: Bytes[DESC_MAX],
    headers: DynArray[bytes32, IN_MAX],
    data_roots: DynArray[bytes32, IN_MAX],
    paths: DynArray[DynArray[bytes32, SLOT_DEPTH], IN_MAX],
):
    """
    @notice The challenger disputes element i of the revealed chunk, and proves the node's
            input headers against the pre-state so the game knows the reduction length.
    """
    g: Game.OutputView = staticcall self.game.output_view(game_id)
    assert g.level == ELEMENT, "referee: no element to pick"
    assert keccak256(concat(b"\x00", chunk)) == g.cur, "referee: not the chunk"
    dtype: uint256 = tensor._dtype(g.out_header)
    w: uint256 = tensor._width(dtype)
    assert (i + 1) * w <= CHUNK, "referee: element outside the chunk"
    e: uint256 = g.index * (CHUNK // w) + i
    assert e < tensor._size(g.out_header), "referee: element past the tensor"
    assert keccak256(desc) == g.desc_hash, "referee: not the node's descriptor"
    self._require_inputs(g.n_slots, g.pre_slots_root, desc, headers, data_roots, paths)
    terms: uint256 = staticcall IOneStep(self._family(tensor._op(desc))).terms(desc, headers)
    value: int256 = tensor._read_element(chunk, i * w, dtype)
    extcall self.game.enter_element(game_id, msg.sender, e, value, keccak256(abi_encode(headers, data_roots)), terms)


@external
def prove_header(
    game_id: uint256,
    desc: Bytes[DESC_MAX],
    headers: DynArray[bytes32, IN_MAX],
    data_roots: DynArray[bytes32, IN_MAX],
    paths: DynArray[DynArray[bytes32, SLOT_DEPTH], IN_MAX],
):
    """
    @notice Prove the solver's output header wrong from the proven input headers, at any level
            of the data descent: the solver loses. A right header reverts and decides nothing,
            since anyone may send this proof and the data may still be wrong.
    """
    g: Game.OutputView = staticcall self.game.output_view(game_id)
    assert g.level >= DATA and g.level <= ELEMENT, "referee: not at this proof"
    assert keccak256(desc) == g.desc_hash, "referee: not the node's descriptor"
    self._require_inputs(g.n_slots, g.pre_slots_root, desc, headers, data_roots, paths)
    expected: bytes32 = staticcall IOneStep(self._family(tensor._op(desc))).output_header(desc, headers)
    assert expected != g.out_header, "referee: the header is right"
    extcall self.game.decide(game_id, PROVE_HEADER, False, "header is wrong")


@external
def prove_element(
    game_id: uint256,
    desc: Bytes[DESC_MAX],
    headers: DynArray[bytes32, IN_MAX],
    data_roots: DynArray[bytes32, IN_MAX],
    openings: DynArray[Opening, IN_MAX],
    init_openings: DynArray[Opening, INIT_MAX],
):
    """
    @notice Decide the disputed element (direct op) or the disputed term s_{k+1} (reduction)
            from input elements opened against the pre-state. `init_openings` serve s_0 when
            the disputed term is the first.
    """
    g: Game.TermView = staticcall self.game.term_view(game_id)
    assert g.level == PROVE_ELEMENT, "referee: not at this proof"
    assert keccak256(desc) == g.desc_hash, "referee: not the node's descriptor"
    assert keccak256(abi_encode(headers, data_roots)) == g.inputs_hash, "referee: not the proven inputs"
    family: address = self._family(tensor._op(desc))
    # the phases whose inputs this proof opens: the direct op's, or s_0's (at the first term)
    # then the disputed term's; each opening is copied alone (a copy of a list, as an internal
    # call's argument, would cost the memory of 16 chunks)
    phases: DynArray[uint256, 2] = [DIRECT_PHASE]
    if g.terms != 0:
        phases = [TERM_PHASE]
        if g.lo == 0:
            phases = [INIT_PHASE, TERM_PHASE]
    acc: int256 = 0
    for phase: uint256 in phases:
        k: uint256 = 0
        if phase == TERM_PHASE:
            k = g.lo
            if k != 0:
                # the agreed s_k; s_0 is never revealed, the phase before computed it
                acc = convert(g.lo_value, int256)
        # needs lists at most IN_MAX elements: the loop settles by its last pass, or reads
        # past the list and reverts
        count: uint256 = len(init_openings) if phase == INIT_PHASE else len(openings)
        values: DynArray[int256, IN_MAX] = []
        for _: uint256 in range(IN_MAX + 1):
            needs: DynArray[IOneStep.Need, IN_MAX] = staticcall IOneStep(family).needs(desc, headers, g.elem_index, phase, k, values)
            if len(needs) == len(values):
                break
            n: IOneStep.Need = needs[len(values)]
            assert len(values) < count, "referee: missing opening"
            o: Opening = init_openings[len(values)] if phase == INIT_PHASE else openings[len(values)]
            assert o.input == n.input and o.index == n.index, "referee: opening of the wrong element"
            values.append(self._open_element(headers[n.input], data_roots[n.input], o))
        acc = staticcall IOneStep(family).compute(desc, headers, g.elem_index, phase, k, acc, values)
    right: bool = False
    if g.terms == 0:
        right = acc == g.elem_value
    else:
        right = acc == convert(g.hi_value, int256)
        if right and g.hi == g.terms:
            # the last accumulator must also give the solver's element
            right = staticcall IOneStep(family).finalize(desc, headers, acc) == g.elem_value
    if right:
        extcall self.game.decide(game_id, PROVE_ELEMENT, True, "element is correct")
    else:
        extcall self.game.decide(game_id, PROVE_ELEMENT, False, "element is wrong")


@external
def prove_boundary(
    game_id: uint256,
    boundary: Bytes[BOUNDARY_MAX],
    boundary_proof: DynArray[bytes32, MAX_DEPTH],
    slots: DynArray[bytes32, MAX_SLOTS],
):
    """@notice Decide a disputed step boundary from the whole pre-state slot table."""
    g: Game.BoundaryView = staticcall self.game.boundary_view(game_id)
    assert g.level == PROVE_BOUNDARY, "referee: not at this proof"
    leaf: bytes32 = keccak256(concat(b"\x00", boundary))
    assert merkle._fold(leaf, g.n_nodes, boundary_proof, g.n_nodes + 1) == g.graph_root, "referee: not the boundary descriptor"
    assert convert(slice(boundary, 0, 1), uint256) == BOUNDARY_CODE, "referee: not a boundary descriptor"
    n_slots: uint256 = convert(slice(boundary, 1, 2), uint256)
    first_node: uint256 = convert(slice(boundary, 3, 2), uint256)
    step_slot: uint256 = convert(slice(boundary, 5, 2), uint256)
    n_state: uint256 = convert(slice(boundary, 7, 2), uint256)
    assert n_slots == g.n_slots and len(slots) == n_slots, "referee: wrong slot count"
    assert len(boundary) == 9 + 4 * n_state, "referee: malformed boundary descriptor"
    assert merkle._state_root(g.step, g.n_nodes, merkle._merkle(slots)) == g.lo_value, "referee: pre-state does not match"
    post: DynArray[bytes32, MAX_SLOTS] = slots
    for v: uint256 in range(MAX_SLOTS):
        if v >= n_state:
            break
        dst: uint256 = convert(slice(boundary, 9 + 4 * v, 2), uint256)
        src: uint256 = convert(slice(boundary, 11 + 4 * v, 2), uint256)
        post[dst] = slots[src]  # reads from the pre-state: all reads before all writes
    if step_slot != tensor.ABSENT:
        post[step_slot] = merkle._step_commitment(g.step + 1)
    for i: uint256 in range(MAX_SLOTS):
        if i >= n_slots:
            break
        if i >= first_node:
            post[i] = empty(bytes32)
    expected: bytes32 = merkle._state_root(g.step + 1, 0, merkle._merkle(post))
    if expected == g.hi_value:
        extcall self.game.decide(game_id, PROVE_BOUNDARY, True, "boundary is correct")
    else:
        extcall self.game.decide(game_id, PROVE_BOUNDARY, False, "boundary is wrong")


@internal
@view
def _require_inputs(
    n_slots: uint256,
    pre_slots_root: bytes32,
    desc: Bytes[DESC_MAX],
    headers: DynArray[bytes32, IN_MAX],
    data_roots: DynArray[bytes32, IN_MAX],
    paths: DynArray[DynArray[bytes32, SLOT_DEPTH], IN_MAX],
):
    """Each present input's (header, data root) is its slot's commitment in the pre-state."""
    n_in: uint256 = tensor._n_in(desc)
    assert len(headers) == n_in and len(data_roots) == n_in and len(paths) == n_in, "referee: one proof per input"
    for p: uint256 in range(IN_MAX):
        if p >= n_in:
            break
        slot: uint256 = tensor._in_slot(desc, p)
        if slot == tensor.ABSENT:
            assert headers[p] == empty(bytes32) and data_roots[p] == empty(bytes32), "referee: absent input has a value"
            continue
        assert slot < n_slots, "referee: input slot out of range"
        c: bytes32 = keccak256(concat(b"\x02", headers[p], data_roots[p]))
        assert merkle._fold(c, slot, paths[p], n_slots) == pre_slots_root, "referee: bad input slot proof"


@internal
@view
def _family(op: uint256) -> address:
    if op >= 1 and op <= 24:
        return self.elementwise
    if op >= 25 and op <= 33:
        return self.shape
    if op >= 34 and op <= 38:
        return self.reduce
    assert op >= 39 and op <= 42, "referee: unknown op"
    return self.linalg




@internal
@pure
def _open_element(header: bytes32, data_root: bytes32, o: Opening) -> int256:
    dtype: uint256 = tensor._dtype(header)
    w: uint256 = tensor._width(dtype)
    assert o.index < tensor._size(header), "referee: element past the tensor"
    offset: uint256 = o.index * w
    leaf: bytes32 = keccak256(concat(b"\x00", o.chunk))
    assert len(o.chunk) == CHUNK, "referee: chunk is not 2048 bytes"
    assert merkle._fold(leaf, offset // CHUNK, o.proof, tensor._n_chunks(header)) == data_root, "referee: bad element proof"
    return tensor._read_element(o.chunk, offset % CHUNK, dtype)


