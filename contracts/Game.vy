# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title Dispute game
@notice One bisection game per challenge (docs/SPEC.md section 6): step roots, then node
        roots of the disputed step, then the disputed node's output (header or data tree,
        then one chunk and one element), then the partial results of a reduction, down to a
        single computation that the one-step contracts decide. The solver reveals, the
        challenger points; each party has a chess clock. The game holds no funds: the task
        registry reads `outcome` and pays.
@custom:security Levels are linked by values the contract already holds (the roots that
                 bracket the disputed range); no caller ever sets a level's start or end.
                 The clock must cover recomputing one step on a modest machine, and the
                 challenge window must exceed worst-case censorship of the chain. Games are
                 created by anyone; the registry only trusts the games it created. A node
                 whose inputs do not fit it (an invalid program) cannot be proven either way
                 and is decided by the clocks: solvers must check a program before claiming.
                 The challenger's own moves are metered (4/5 of 21_000 + their execution gas,
                 so never more than it paid net of refunds); the task registry splits a
                 rejected claim's prize by this meter. Proofs and timeouts, which anyone may
                 send, are not metered.
"""

from contracts import IGame
from contracts import IOneStep
from contracts.lib import merkle
from contracts.lib import tensor

implements: IGame

# --- constants -------------------------------------------------------------------------------

PENDING: constant(uint8) = 0
SOLVER_WON: constant(uint8) = 1
CHALLENGER_WON: constant(uint8) = 2

SOLVER: constant(uint8) = 1
CHALLENGER: constant(uint8) = 2

# levels
STEP: constant(uint8) = 1
NODE: constant(uint8) = 2
OUTPUT: constant(uint8) = 3
CHOOSE: constant(uint8) = 4
PROVE_HEADER: constant(uint8) = 5
DATA: constant(uint8) = 6
CHUNK_REVEAL: constant(uint8) = 7
ELEMENT: constant(uint8) = 8
TERM: constant(uint8) = 9
PROVE_ELEMENT: constant(uint8) = 10
PROVE_BOUNDARY: constant(uint8) = 11
OVER: constant(uint8) = 12

MAX_ARITY: constant(uint256) = 32
MAX_REVEAL: constant(uint256) = 31
MAX_DEPTH: constant(uint256) = 32
MAX_SLOTS: constant(uint256) = 512
IN_MAX: constant(uint256) = 16
CHUNK: constant(uint256) = 2048
DESC_MAX: constant(uint256) = 548
BOUNDARY_MAX: constant(uint256) = 2055  # u8 + 4 x u16 + 512 x (u16, u16)
BOUNDARY_CODE: constant(uint256) = 255
MAX_STEPS: constant(uint256) = 2**63 - 1
MAX_NODES: constant(uint256) = 2**32 - 2
# clock_challenger packs the challenger's clock (seconds, low 64 bits) with its metered gas
# (the bits above): every challenger move writes that slot already, so the meter adds no write
CLOCK_BITS: constant(uint256) = 64
CLOCK_MASK: constant(uint256) = 2**64 - 1
# the intrinsic gas every transaction pays, counted once per metered move
TX_GAS: constant(uint256) = 21_000
# up to a fifth of a transaction's gas comes back as refunds (EIP-3529): meter 4/5 of a move
# so that its weight never exceeds what its sender paid net
METER_NUM: constant(uint256) = 4
METER_DEN: constant(uint256) = 5
DIRECT_PHASE: constant(uint256) = 0
INIT_PHASE: constant(uint256) = 1
TERM_PHASE: constant(uint256) = 2

# --- structs ---------------------------------------------------------------------------------


struct Game:
    # who defends the claim
    solver: address
    # who disputes it
    challenger: address
    # the program's graph root (node descriptors, then the step boundary)
    graph_root: bytes32
    # T, N and S of the program
    steps: uint256
    n_nodes: uint256
    n_slots: uint256
    # k of the k-ary dissection
    arity: uint256
    # current level (STEP .. OVER)
    level: uint8
    # whose move it is (SOLVER or CHALLENGER)
    turn: uint8
    # PENDING, SOLVER_WON or CHALLENGER_WON
    outcome: uint8
    # the disputed range [lo, hi] of the current level and the values at its ends:
    # lo_value is agreed, hi_value is the solver's
    lo: uint256
    hi: uint256
    lo_value: bytes32
    hi_value: bytes32
    # hash of the solver's last reveal, awaiting the challenger's pick (empty if none)
    reveal_hash: bytes32
    # the disputed step t and node n, once known
    step: uint256
    node: uint256
    # keccak of the disputed node's descriptor
    desc_hash: bytes32
    # slot table root of the agreed pre-state state(t, n)
    pre_slots_root: bytes32
    # the solver's output header and data root for node n
    out_header: bytes32
    out_data_root: bytes32
    # data-tree descent: current node's hash, its height above the leaves and its index
    cur: bytes32
    height: uint256
    index: uint256
    # keccak of (input headers, input data roots), proven against pre_slots_root
    inputs_hash: bytes32
    # the disputed element and the solver's value for it
    elem_index: uint256
    elem_value: int256
    # reduction length K of the disputed element (0: direct op), and whether the solver has
    # revealed its final accumulator s_K (TERM's hi_value)
    terms: uint256
    top_known: bool
    # seconds left on each party's chess clock, and when the current turn began; in storage
    # clock_challenger also holds the challenger's metered gas above CLOCK_BITS (`games` and
    # `challenger_gas` unpack it)
    clock_solver: uint256
    clock_challenger: uint256
    turn_start: uint256


# What each one-step proof of the referee reads: a narrow view costs a cold read per field it
# holds, where `games` pays for all 27 (SPEC 6.1).
struct OutputView:
    level: uint8
    n_slots: uint256
    pre_slots_root: bytes32
    desc_hash: bytes32
    out_header: bytes32
    cur: bytes32
    index: uint256


struct TermView:
    level: uint8
    desc_hash: bytes32
    inputs_hash: bytes32
    elem_index: uint256
    elem_value: int256
    terms: uint256
    lo: uint256
    hi: uint256
    lo_value: bytes32
    hi_value: bytes32


struct BoundaryView:
    level: uint8
    n_nodes: uint256
    n_slots: uint256
    graph_root: bytes32
    step: uint256
    lo_value: bytes32
    hi_value: bytes32


# --- events ----------------------------------------------------------------------------------


event GameCreated:
    game_id: indexed(uint256)
    solver: indexed(address)
    challenger: indexed(address)
    steps: uint256


event Revealed:
    game_id: indexed(uint256)
    level: uint8
    lo: uint256
    hi: uint256
    values: DynArray[bytes32, MAX_ARITY]


event ChunkRevealed:
    game_id: indexed(uint256)
    index: uint256
    chunk: Bytes[CHUNK]


event Picked:
    game_id: indexed(uint256)
    level: uint8
    lo: uint256
    hi: uint256


event LevelEntered:
    game_id: indexed(uint256)
    level: uint8
    step: uint256
    node: uint256


event OutputRevealed:
    game_id: indexed(uint256)
    step: uint256
    node: uint256
    header: bytes32
    data_root: bytes32


event ElementChosen:
    game_id: indexed(uint256)
    index: uint256
    value: int256
    terms: uint256


event OneStepProved:
    game_id: indexed(uint256)
    level: uint8
    expected: bytes32
    claimed: bytes32


event GameResolved:
    game_id: indexed(uint256)
    outcome: uint8
    reason: String[64]


# --- storage ---------------------------------------------------------------------------------

# A game's storage packs the fields every move reads into three words, and the disputed range,
# the disputed position, the data descent and the chosen element into one each, so that
# creating a game writes 7 words and a move rewrites its turn, both clocks and the meter in one
# (SPEC 6):
#   head:  solver | arity << 160 | n_slots << 168 | n_nodes << 184     (set once)
#   party: challenger | steps << 160                                   (set once)
#   state: level | turn << 4 | outcome << 6 | top_known << 8 | revealed << 9
#          | turn_start << 16 | clock_solver << 80 | clock_challenger << 144 | meter << 208
# Widths: arity <= 32, n_slots <= 512, n_nodes < 2^32, steps < 2^63, clocks < 2^64 (create
# checks each); a timestamp fits 64 bits; the meter fits 48 bits, as a game has at most a few
# hundred metered moves of less than one block's gas each.
struct Stored:
    head: uint256
    party: uint256
    state: uint256
    graph_root: bytes32
    # the disputed range, lo | hi << 128: steps < 2^63, node positions < 2^32, and terms at most
    # an input's element count, below 2^32 (canonical headers)
    span: uint256
    lo_value: bytes32
    hi_value: bytes32
    # the last reveal's hash; current only while `revealed` is set (left in place afterwards,
    # so that the next reveal rewrites a word instead of creating one)
    reveal_hash: bytes32
    # the disputed step and node: step | node << 64 (a step < 2^63, a node < 2^32)
    position: uint256
    desc_hash: bytes32
    pre_slots_root: bytes32
    out_header: bytes32
    out_data_root: bytes32
    cur: bytes32
    # the data descent: height | index << 8 (a height <= 32, a chunk index < 2^32)
    descent: uint256
    inputs_hash: bytes32
    # the chosen element: index | terms << 64 | value << 128 (an index and a term count below
    # 2^32, a value of at most 64 bits as int128 two's complement)
    element: uint256


# the `state` word, unpacked in memory for one call
struct State:
    level: uint8
    turn: uint8
    outcome: uint8
    top_known: bool
    revealed: bool
    turn_start: uint256
    clock_solver: uint256
    clock_challenger: uint256
    meter: uint256


ADDRESS_MASK: constant(uint256) = 2**160 - 1
RANGE_MASK: constant(uint256) = 2**128 - 1
STEP_MASK: constant(uint256) = 2**64 - 1
METER_SHIFT: constant(uint256) = 208


# every game by id (ids start at 1); read them with `games`
_games: HashMap[uint256, Stored]
# number of games created
game_count: public(uint256)
# the contract that checks element choices and one-step proofs and reports them here
referee: public(address)
# who may set the referee, once, right after deployment
deployer: address


@deploy
def __init__():
    self.deployer = msg.sender


@external
def set_referee(referee: address):
    """@notice Bind the referee once (the two contracts point at each other)."""
    assert msg.sender == self.deployer, "game: only the deployer"
    assert self.referee == empty(address), "game: referee already set"
    assert referee != empty(address), "game: empty referee"
    self.referee = referee


# --- creation and reading --------------------------------------------------------------------


@external
def create(
    solver: address,
    challenger: address,
    initial_root: bytes32,
    final_root: bytes32,
    graph_root: bytes32,
    steps: uint256,
    n_nodes: uint256,
    n_slots: uint256,
    arity: uint256,
    clock: uint256,
) -> uint256:
    """
    @notice Start a game in which `challenger` disputes that `steps` steps from
            `initial_root` end at `final_root`.
    """
    assert solver != empty(address) and challenger != empty(address), "game: empty party"
    assert 1 <= steps and steps <= MAX_STEPS, "game: steps out of range"
    assert n_nodes <= MAX_NODES, "game: too many nodes"
    assert 1 <= n_slots and n_slots <= MAX_SLOTS, "game: slot count out of range"
    assert 2 <= arity and arity <= MAX_ARITY, "game: arity out of range"
    assert clock > 0, "game: zero clock"
    assert clock <= CLOCK_MASK, "game: clock too long"
    gid: uint256 = self.game_count + 1
    self.game_count = gid
    assert self.referee != empty(address), "game: no referee yet"
    self._games[gid].head = convert(solver, uint256) | arity << 160 | n_slots << 168 | n_nodes << 184
    self._games[gid].party = convert(challenger, uint256) | steps << 160
    self._games[gid].graph_root = graph_root
    self._games[gid].span = steps << 128
    self._games[gid].lo_value = initial_root
    self._games[gid].hi_value = final_root
    s: State = State(
        level=STEP, turn=SOLVER, outcome=PENDING, top_known=False, revealed=False,
        turn_start=block.timestamp, clock_solver=clock, clock_challenger=clock, meter=0,
    )
    s = self._settle_range(gid, s)
    self._save(gid, s)
    log GameCreated(game_id=gid, solver=solver, challenger=challenger, steps=steps)
    return gid


@view
@external
def outcome(game_id: uint256) -> uint8:
    return self._load(game_id).outcome


@view
@external
def games(game_id: uint256) -> Game:
    """@notice The game (`reveal_hash` empty unless a reveal awaits its pick)."""
    g: Stored = self._games[game_id]
    s: State = self._load(game_id)
    reveal_hash: bytes32 = empty(bytes32)
    if s.revealed:
        reveal_hash = g.reveal_hash
    return Game(
        solver=self._solver(game_id), challenger=self._challenger(game_id), graph_root=g.graph_root,
        steps=g.party >> 160, n_nodes=g.head >> 184, n_slots=(g.head >> 168) & 65535,
        arity=(g.head >> 160) & 255, level=s.level, turn=s.turn, outcome=s.outcome, lo=g.span & RANGE_MASK, hi=g.span >> 128,
        lo_value=g.lo_value, hi_value=g.hi_value, reveal_hash=reveal_hash, step=g.position & STEP_MASK,
        node=g.position >> 64,
        desc_hash=g.desc_hash, pre_slots_root=g.pre_slots_root, out_header=g.out_header,
        out_data_root=g.out_data_root, cur=g.cur, height=g.descent & 255, index=g.descent >> 8,
        inputs_hash=g.inputs_hash, elem_index=g.element & STEP_MASK, elem_value=self._elem_value(g.element),
        terms=(g.element >> 64) & STEP_MASK,
        top_known=s.top_known, clock_solver=s.clock_solver, clock_challenger=s.clock_challenger,
        turn_start=s.turn_start,
    )


@view
@external
def output_view(game_id: uint256) -> OutputView:
    """@notice What the referee's `pick_element` and `prove_header` read."""
    return OutputView(
        level=self._load(game_id).level, n_slots=self._n_slots(game_id),
        pre_slots_root=self._games[game_id].pre_slots_root, desc_hash=self._games[game_id].desc_hash,
        out_header=self._games[game_id].out_header, cur=self._games[game_id].cur, index=self._index(game_id),
    )


@view
@external
def term_view(game_id: uint256) -> TermView:
    """@notice What the referee's `prove_element` reads."""
    element: uint256 = self._games[game_id].element
    return TermView(
        level=self._load(game_id).level, desc_hash=self._games[game_id].desc_hash,
        inputs_hash=self._games[game_id].inputs_hash, elem_index=element & STEP_MASK,
        elem_value=self._elem_value(element), terms=(element >> 64) & STEP_MASK, lo=self._games[game_id].span & RANGE_MASK,
        hi=self._games[game_id].span >> 128, lo_value=self._games[game_id].lo_value, hi_value=self._games[game_id].hi_value,
    )


@view
@external
def boundary_view(game_id: uint256) -> BoundaryView:
    """@notice What the referee's `prove_boundary` reads."""
    return BoundaryView(
        level=self._load(game_id).level, n_nodes=self._n_nodes(game_id), n_slots=self._n_slots(game_id),
        graph_root=self._games[game_id].graph_root, step=self._step(game_id),
        lo_value=self._games[game_id].lo_value, hi_value=self._games[game_id].hi_value,
    )


@view
@external
def challenger_of(game_id: uint256) -> address:
    """@notice The game's challenger (the zero address for an id never created)."""
    return self._challenger(game_id)


@view
@external
def challenger_gas(game_id: uint256) -> uint256:
    """
    @notice Gas the challenger's own moves metered: 4/5 of (21_000 + execution) per move it
            sent (pick, choose, pick_data, and its element choice through the referee).
    """
    return self._load(game_id).meter


@view
@external
def interior(game_id: uint256) -> DynArray[uint256, MAX_REVEAL]:
    """@notice The points whose values the solver must reveal next (STEP, NODE, TERM)."""
    return self._interior(self._games[game_id].span, self._arity(game_id))


@view
@external
def time_left(game_id: uint256) -> (uint256, uint256):
    """@notice Seconds left on (solver, challenger) clocks, counting the running turn."""
    g: State = self._load(game_id)
    s: uint256 = g.clock_solver
    c: uint256 = g.clock_challenger
    if g.outcome == PENDING:
        used: uint256 = block.timestamp - g.turn_start
        if g.turn == SOLVER:
            s = s - min(used, s)
        else:
            c = c - min(used, c)
    return s, c


# --- dissection (STEP, NODE, TERM) -------------------------------------------------------------


@external
def reveal(game_id: uint256, values: DynArray[bytes32, MAX_ARITY]):
    """
    @notice The solver reveals its values at the interior points of the disputed range.
            Entering TERM, the first reveal also carries the final accumulator s_K last.
    """
    s: State = self._require_move(game_id, SOLVER)
    assert s.level == STEP or s.level == NODE or s.level == TERM, "game: nothing to reveal"
    assert not s.revealed, "game: already revealed"
    points: DynArray[uint256, MAX_REVEAL] = self._interior(self._games[game_id].span, self._arity(game_id))
    interior: DynArray[bytes32, MAX_ARITY] = values
    if s.level == TERM and not s.top_known:
        assert len(values) == len(points) + 1, "game: wrong number of values"
        top: bytes32 = values[len(points)]
        interior = []
        for i: uint256 in range(MAX_REVEAL):
            if i >= len(points):
                break
            interior.append(values[i])
        self._games[game_id].hi_value = top
        s.top_known = True
    else:
        assert len(values) == len(points), "game: wrong number of values"
    # nothing to pick from when only s_K was revealed on a one-term range
    s.revealed = len(points) != 0
    if s.revealed:
        self._games[game_id].reveal_hash = keccak256(abi_encode(interior))
    s = self._pass_turn(s)
    span: uint256 = self._games[game_id].span
    log Revealed(game_id=game_id, level=s.level, lo=span & RANGE_MASK, hi=span >> 128, values=values)
    s = self._settle_range(game_id, s)
    self._save(game_id, s)


@external
def pick(game_id: uint256, values: DynArray[bytes32, MAX_ARITY], j: uint256):
    """
    @notice The challenger agrees with the value at point j (j = 0: the range start) and
            disputes the value at point j + 1 of the revealed list (j = len: the range end).
    """
    start: uint256 = msg.gas
    s: State = self._require_move(game_id, CHALLENGER)
    assert s.level == STEP or s.level == NODE or s.level == TERM, "game: nothing to pick"
    assert s.revealed, "game: nothing revealed"
    assert keccak256(abi_encode(values)) == self._games[game_id].reveal_hash, "game: not the revealed values"
    points: DynArray[uint256, MAX_REVEAL] = self._interior(self._games[game_id].span, self._arity(game_id))
    assert j <= len(points), "game: pick out of range"
    span: uint256 = self._games[game_id].span
    lo: uint256 = span & RANGE_MASK
    hi: uint256 = span >> 128
    if j > 0:
        lo = points[j - 1]
        self._games[game_id].lo_value = values[j - 1]
    if j < len(points):
        hi = points[j]
        self._games[game_id].hi_value = values[j]
    self._games[game_id].span = lo | hi << 128
    s.revealed = False
    s = self._pass_turn(s)
    log Picked(game_id=game_id, level=s.level, lo=lo, hi=hi)
    s = self._settle_range(game_id, s)
    self._save_metered(game_id, s, start)


# --- the disputed node's output ----------------------------------------------------------------


@external
def reveal_output(
    game_id: uint256,
    desc: Bytes[DESC_MAX],
    desc_proof: DynArray[bytes32, MAX_DEPTH],
    pre_slots_root: bytes32,
    post_slots_root: bytes32,
    old_commitment: bytes32,
    header: bytes32,
    data_root: bytes32,
    slot_path: DynArray[bytes32, MAX_DEPTH],
):
    """
    @notice The solver shows that node n changed only its output slot, from `old_commitment`
            to the tensor (`header`, `data_root`).
    """
    s: State = self._require_move(game_id, SOLVER)
    assert s.level == OUTPUT, "game: not at the output level"
    self._require_descriptor(game_id, desc, desc_proof)
    out_slot: uint256 = tensor._out_slot(desc)
    n_slots: uint256 = self._n_slots(game_id)
    assert out_slot < n_slots, "game: output slot out of range"
    assert merkle._state_root(self._step(game_id), self._node(game_id), pre_slots_root) == self._games[game_id].lo_value, "game: pre-state does not match"
    assert merkle._state_root(self._step(game_id), self._node(game_id) + 1, post_slots_root) == self._games[game_id].hi_value, "game: post-state does not match"
    assert merkle._fold(old_commitment, out_slot, slot_path, n_slots) == pre_slots_root, "game: bad old slot proof"
    new_commitment: bytes32 = keccak256(concat(b"\x02", header, data_root))
    assert merkle._fold(new_commitment, out_slot, slot_path, n_slots) == post_slots_root, "game: other slots changed"
    self._games[game_id].desc_hash = keccak256(desc)
    self._games[game_id].pre_slots_root = pre_slots_root
    self._games[game_id].out_header = header
    self._games[game_id].out_data_root = data_root
    s.level = CHOOSE
    s = self._pass_turn(s)
    self._save(game_id, s)
    log OutputRevealed(game_id=game_id, step=self._step(game_id), node=self._node(game_id), header=header, data_root=data_root)


@external
def choose(game_id: uint256, dispute_header: bool):
    """@notice The challenger disputes the output's header, or its data."""
    start: uint256 = msg.gas
    s: State = self._require_move(game_id, CHALLENGER)
    assert s.level == CHOOSE, "game: nothing to choose"
    s = self._pass_turn(s)
    if dispute_header:
        s.level = PROVE_HEADER
        s.turn = CHALLENGER
    else:
        header: bytes32 = self._games[game_id].out_header
        assert tensor._is_canonical_header(header), "game: header is not canonical, dispute it"
        s.level = DATA
        self._games[game_id].cur = self._games[game_id].out_data_root
        height: uint256 = merkle._depth(tensor._n_chunks(header))
        self._games[game_id].descent = height
        if height == 0:
            s.level = CHUNK_REVEAL
    log LevelEntered(game_id=game_id, level=s.level, step=self._step(game_id), node=self._node(game_id))
    self._save_metered(game_id, s, start)


@external
def reveal_data(game_id: uint256, children: DynArray[bytes32, MAX_ARITY]):
    """@notice The solver reveals the descendants of the disputed data-tree node."""
    s: State = self._require_move(game_id, SOLVER)
    assert s.level == DATA, "game: not descending data"
    assert not s.revealed, "game: already revealed"
    m: uint256 = self._descent(game_id)
    assert len(children) == 1 << m, "game: wrong number of children"
    assert merkle._subtree(children, m) == self._games[game_id].cur, "game: children do not hash to the node"
    below: uint256 = self._height(game_id) - m
    n_chunks: uint256 = tensor._n_chunks(self._games[game_id].out_header)
    pad: bytes32 = merkle._zero(below)
    self._games[game_id].reveal_hash = keccak256(abi_encode(children))
    s.revealed = True
    s = self._pass_turn(s)
    for i: uint256 in range(MAX_ARITY):
        if i >= len(children):
            break
        first_leaf: uint256 = ((self._index(game_id) << m) + i) << below
        if first_leaf >= n_chunks and children[i] != pad:
            s = self._resolve(game_id, s, CHALLENGER_WON, "non-canonical data padding")
            break
    self._save(game_id, s)
    log Revealed(game_id=game_id, level=DATA, lo=self._index(game_id), hi=self._height(game_id), values=children)


@external
def pick_data(game_id: uint256, children: DynArray[bytes32, MAX_ARITY], j: uint256):
    """@notice The challenger disputes child j, which must cover at least one real chunk."""
    start: uint256 = msg.gas
    s: State = self._require_move(game_id, CHALLENGER)
    assert s.level == DATA, "game: not descending data"
    assert s.revealed, "game: nothing revealed"
    assert keccak256(abi_encode(children)) == self._games[game_id].reveal_hash, "game: not the revealed values"
    m: uint256 = self._descent(game_id)
    assert j < len(children), "game: pick out of range"
    below: uint256 = self._height(game_id) - m
    child: uint256 = (self._index(game_id) << m) + j
    assert child << below < tensor._n_chunks(self._games[game_id].out_header), "game: child is padding"
    self._games[game_id].cur = children[j]
    self._games[game_id].descent = below | child << 8
    s.revealed = False
    if below == 0:
        s.level = CHUNK_REVEAL
    s = self._pass_turn(s)
    log Picked(game_id=game_id, level=DATA, lo=child, hi=below)
    self._save_metered(game_id, s, start)


@external
def reveal_chunk(game_id: uint256, chunk: Bytes[CHUNK]):
    """@notice The solver reveals the disputed chunk; its padding must be zero."""
    s: State = self._require_move(game_id, SOLVER)
    assert s.level == CHUNK_REVEAL, "game: no chunk to reveal"
    assert len(chunk) == CHUNK and keccak256(concat(b"\x00", chunk)) == self._games[game_id].cur, "game: not the chunk"
    header: bytes32 = self._games[game_id].out_header
    nbytes: uint256 = tensor._size(header) * tensor._width(tensor._dtype(header))
    index: uint256 = self._index(game_id)
    start: uint256 = index * CHUNK
    s = self._pass_turn(s)
    s.level = ELEMENT
    log ChunkRevealed(game_id=game_id, index=index, chunk=chunk)
    if start + CHUNK > nbytes and not merkle._zero_from(chunk, nbytes - min(nbytes, start)):
        s = self._resolve(game_id, s, CHALLENGER_WON, "non-canonical chunk padding")
    self._save(game_id, s)
    log LevelEntered(game_id=game_id, level=s.level, step=self._step(game_id), node=self._node(game_id))


# --- one-step proofs (anyone) --------------------------------------------------------------------


@external
def enter_element(game_id: uint256, sender: address, index: uint256, element: int256, inputs_hash: bytes32, terms: uint256):
    """
    @notice The referee records the challenger's chosen element after checking the chunk and
            the node's input headers; `sender` is the account that sent the choice.
    """
    start: uint256 = msg.gas
    assert msg.sender == self.referee, "game: only the referee"
    s: State = self._require_open(game_id)
    assert s.level == ELEMENT, "game: no element to pick"
    assert s.turn == CHALLENGER, "game: not your turn"
    assert sender == self._challenger(game_id), "game: only the challenger"
    assert self._clock_ok(s), "game: clock expired"
    self._games[game_id].inputs_hash = inputs_hash
    self._games[game_id].element = self._element_word(index, terms, element)
    s = self._pass_turn(s)
    if terms == 0:
        s.level = PROVE_ELEMENT
        s.turn = CHALLENGER
    else:
        s.level = TERM
        self._games[game_id].span = terms << 128
        s.top_known = False
    log ElementChosen(game_id=game_id, index=index, value=element, terms=terms)
    # the referee checked that `sender` sent this choice, and `sender` is the challenger
    self._save_metered(game_id, s, start)


@external
def decide(game_id: uint256, level: uint8, solver_right: bool, reason: String[64]):
    """@notice The referee reports the verdict of a one-step proof at `level`."""
    assert msg.sender == self.referee, "game: only the referee"
    s: State = self._require_proof(game_id, level)
    if solver_right:
        s = self._resolve(game_id, s, SOLVER_WON, reason)
    else:
        s = self._resolve(game_id, s, CHALLENGER_WON, reason)
    self._save(game_id, s)


@external
def timeout(game_id: uint256):
    """@notice Anyone ends a game whose mover's clock has run out; the other party wins."""
    assert self._games[game_id].party != 0, "game: no such game"
    s: State = self._load(game_id)
    assert s.outcome == PENDING, "game: already over"
    used: uint256 = block.timestamp - s.turn_start
    if s.turn == SOLVER:
        assert used > s.clock_solver, "game: clock not expired"
        s = self._resolve(game_id, s, CHALLENGER_WON, "solver's clock ran out")
    else:
        assert used > s.clock_challenger, "game: clock not expired"
        s = self._resolve(game_id, s, SOLVER_WON, "challenger's clock ran out")
    self._save(game_id, s)


# --- internal: storage -----------------------------------------------------------------------------


@internal
@view
def _load(game_id: uint256) -> State:
    w: uint256 = self._games[game_id].state
    return State(
        level=convert(w & 15, uint8),
        turn=convert((w >> 4) & 3, uint8),
        outcome=convert((w >> 6) & 3, uint8),
        top_known=(w >> 8) & 1 == 1,
        revealed=(w >> 9) & 1 == 1,
        turn_start=(w >> 16) & CLOCK_MASK,
        clock_solver=(w >> 80) & CLOCK_MASK,
        clock_challenger=(w >> 144) & CLOCK_MASK,
        meter=w >> METER_SHIFT,
    )


@internal
def _save(game_id: uint256, s: State):
    w: uint256 = convert(s.level, uint256) | convert(s.turn, uint256) << 4 | convert(s.outcome, uint256) << 6
    if s.top_known:
        w |= 1 << 8
    if s.revealed:
        w |= 1 << 9
    w |= s.turn_start << 16 | s.clock_solver << 80 | s.clock_challenger << 144 | s.meter << METER_SHIFT
    self._games[game_id].state = w


@internal
def _save_metered(game_id: uint256, s: State, start: uint256):
    """Saves a challenger move with the move added to its meter: 4/5 of (21_000 + the gas used
    since `start`, up to this write). Only called after the move checked that the challenger
    sent it."""
    m: State = s
    # a move uses far less than 2^64 gas, and a game's meter stays far below 2^48
    m.meter += (TX_GAS + start - msg.gas) * METER_NUM // METER_DEN
    self._save(game_id, m)


@internal
@view
def _solver(game_id: uint256) -> address:
    return convert(self._games[game_id].head & ADDRESS_MASK, address)


@internal
@view
def _challenger(game_id: uint256) -> address:
    return convert(self._games[game_id].party & ADDRESS_MASK, address)


@internal
@view
def _arity(game_id: uint256) -> uint256:
    return (self._games[game_id].head >> 160) & 255


@internal
@view
def _n_slots(game_id: uint256) -> uint256:
    return (self._games[game_id].head >> 168) & 65535


@internal
@view
def _n_nodes(game_id: uint256) -> uint256:
    return self._games[game_id].head >> 184


@internal
@view
def _step(game_id: uint256) -> uint256:
    return self._games[game_id].position & STEP_MASK


@internal
@view
def _node(game_id: uint256) -> uint256:
    return self._games[game_id].position >> 64


@internal
@view
def _height(game_id: uint256) -> uint256:
    return self._games[game_id].descent & 255


@internal
@view
def _index(game_id: uint256) -> uint256:
    return self._games[game_id].descent >> 8


@internal
@pure
def _element_word(index: uint256, terms: uint256, element: int256) -> uint256:
    # the referee bounds each: an element index and a term count below 2^32, a value of at most
    # 64 bits, kept as its low 128 bits
    return index | terms << 64 | convert(convert(element, bytes32), uint256) << 128


@internal
@pure
def _elem_value(element: uint256) -> int256:
    # the top 128 bits, sign-extended
    return convert(convert(element, bytes32), int256) >> 128


# --- internal: turns and resolution ----------------------------------------------------------------


@internal
@view
def _require_open(game_id: uint256) -> State:
    assert self._games[game_id].party != 0, "game: no such game"
    s: State = self._load(game_id)
    assert s.outcome == PENDING, "game: already over"
    return s


@internal
@view
def _clock_ok(s: State) -> bool:
    """The party to move still has time on its clock."""
    used: uint256 = block.timestamp - s.turn_start
    if s.turn == SOLVER:
        return used <= s.clock_solver
    return used <= s.clock_challenger


@internal
@view
def _require_move(game_id: uint256, who: uint8) -> State:
    s: State = self._require_open(game_id)
    assert s.turn == who, "game: not your turn"
    if who == SOLVER:
        assert msg.sender == self._solver(game_id), "game: only the solver"
    else:
        assert msg.sender == self._challenger(game_id), "game: only the challenger"
    assert self._clock_ok(s), "game: clock expired"
    return s


@internal
@view
def _require_proof(game_id: uint256, level: uint8) -> State:
    """A one-step proof: anyone may send it while the clock of the party to move runs."""
    s: State = self._require_open(game_id)
    assert s.level == level, "game: not at this proof"
    assert self._clock_ok(s), "game: clock expired"
    return s


@internal
@view
def _pass_turn(s: State) -> State:
    """Charge the mover's clock for its turn and hand the move to the other party."""
    t: State = s
    used: uint256 = block.timestamp - t.turn_start
    if t.turn == SOLVER:
        t.clock_solver -= used
        t.turn = CHALLENGER
    else:
        t.clock_challenger -= used
        t.turn = SOLVER
    t.turn_start = block.timestamp
    return t


@internal
def _resolve(game_id: uint256, s: State, outcome: uint8, reason: String[64]) -> State:
    t: State = s
    t.outcome = outcome
    t.level = OVER
    log GameResolved(game_id=game_id, outcome=outcome, reason=reason)
    return t


@internal
def _settle_range(game_id: uint256, s: State) -> State:
    """Move down a level when a range has narrowed to a single transition."""
    t: State = s
    level: uint8 = t.level
    span: uint256 = self._games[game_id].span
    lo: uint256 = span & RANGE_MASK
    hi: uint256 = span >> 128
    if level == STEP and hi == lo + 1:
        # node positions of step lo: 0 .. N, and N + 1 standing for state(lo + 1, 0)
        self._games[game_id].position = lo
        level = NODE
        lo = 0
        hi = self._n_nodes(game_id) + 1
        t.level = NODE
        self._games[game_id].span = hi << 128
        log LevelEntered(game_id=game_id, level=NODE, step=self._step(game_id), node=0)
    if level == NODE and hi == lo + 1:
        self._games[game_id].position = self._step(game_id) | lo << 64
        if lo == self._n_nodes(game_id):
            t.level = PROVE_BOUNDARY
            t.turn = CHALLENGER
        else:
            t.level = OUTPUT
            t.turn = SOLVER
        log LevelEntered(game_id=game_id, level=t.level, step=self._step(game_id), node=lo)
    if level == TERM and hi == lo + 1 and t.top_known:
        t.level = PROVE_ELEMENT
        t.turn = CHALLENGER
        log LevelEntered(game_id=game_id, level=PROVE_ELEMENT, step=self._step(game_id), node=self._node(game_id))
    return t


# --- internal: proofs ----------------------------------------------------------------------------


@internal
@view
def _require_descriptor(game_id: uint256, desc: Bytes[DESC_MAX], proof: DynArray[bytes32, MAX_DEPTH]):
    leaf: bytes32 = keccak256(concat(b"\x00", desc))
    count: uint256 = self._n_nodes(game_id) + 1
    root: bytes32 = merkle._fold(leaf, self._node(game_id), proof, count)
    assert root == self._games[game_id].graph_root, "game: not the node's descriptor"
    assert tensor._is_well_formed(desc), "game: malformed descriptor"


@internal
@view
def _descent(game_id: uint256) -> uint256:
    """Levels one data reveal spans: m = min(floor(log2 k), height)."""
    m: uint256 = 0
    arity: uint256 = self._arity(game_id)
    for _: uint256 in range(6):
        if 2 << m > arity:
            break
        m += 1
    return min(m, self._height(game_id))


# --- internal: hashing ---------------------------------------------------------------------------


@internal
@pure
def _interior(span: uint256, k: uint256) -> DynArray[uint256, MAX_REVEAL]:
    """Points lo + floor((hi - lo) * i / k), i = 1 .. k-1, without duplicates or ends, of the
    range `span` = lo | hi << 128."""
    lo: uint256 = span & RANGE_MASK
    hi: uint256 = span >> 128
    out: DynArray[uint256, MAX_REVEAL] = []
    prev: uint256 = lo
    for i: uint256 in range(1, MAX_ARITY):
        if i >= k:
            break
        p: uint256 = lo + (hi - lo) * i // k
        if p != prev and p != hi:
            out.append(p)
            prev = p
    return out
