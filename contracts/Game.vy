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
# 4 is no longer used (the challenger's choice between header and data, SPEC 6); 5 names the
# output header's proof, made at any level of the data descent
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
# a clock or a timestamp has 64 bits of the `state` word
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
    # hash of the solver's last dissection reveal, awaiting the challenger's pick (empty if none)
    reveal_hash: bytes32
    # the disputed step t and node n, once known
    step: uint256
    node: uint256
    # keccak of the disputed node's descriptor
    desc_hash: bytes32
    # slot table root of the agreed pre-state state(t, n) (DATA .. ELEMENT)
    pre_slots_root: bytes32
    # the solver's output header for node n (DATA .. ELEMENT)
    out_header: bytes32
    # data-tree descent (DATA .. ELEMENT): current node's hash, its height above the leaves and
    # its index
    cur: bytes32
    height: uint256
    index: uint256
    # keccak of (input headers, input data roots), proven against pre_slots_root (TERM,
    # PROVE_ELEMENT, as the three fields below)
    inputs_hash: bytes32
    # the disputed element and the solver's value for it
    elem_index: uint256
    elem_value: int256
    # reduction length K of the disputed element (0: direct op), and whether the solver has
    # revealed its final accumulator s_K (TERM's hi_value)
    terms: uint256
    top_known: bool
    # seconds left on each party's chess clock, and when the current turn began
    clock_solver: uint256
    clock_challenger: uint256
    turn_start: uint256


# What each one-step proof of the referee reads: a narrow view costs a cold read per word it
# holds, where `games` pays for all 12 (SPEC 6).
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

# A game is 12 words (SPEC 6). The fields every move reads share three, set at creation:
#   head:  solver | arity << 160 | n_slots << 168 | n_nodes << 184     (set once)
#   party: challenger | steps << 160                                   (set once)
#   state: level | turn << 4 | outcome << 6 | top_known << 8 | revealed << 9
#          | turn_start << 16 | clock_solver << 80 | clock_challenger << 144 | meter << 208
# Widths: arity <= 32, n_slots <= 512, n_nodes < 2^32, steps < 2^63, clocks < 2^64 (create
# checks each); a timestamp fits 64 bits; the meter fits 48 bits, as a game has at most a few
# hundred metered moves of less than one block's gas each. The stored level is the last one
# played: a game with an outcome reads as OVER.
# Fields that live in different levels share a word, so that a later level rewrites a word an
# earlier one created instead of creating one (each new word costs 20,000 gas):
#   cursor: lo | hi << 64 | step << 128 | node << 192
#     lo, hi: the disputed range (STEP, NODE, TERM), or the data descent's height and chunk
#     index (DATA, CHUNK_REVEAL, ELEMENT); step and node: the disputed position, once known
#   pre_or_inputs: the pre-state's slot root (OUTPUT .. ELEMENT), then the inputs' hash
#   header_or_element: the output header (OUTPUT .. ELEMENT), then the chosen element,
#     index | terms << 64 | value << 128
#   data_node: the output's data root, then the disputed node of its data tree
struct Stored:
    head: uint256
    party: uint256
    state: uint256
    graph_root: bytes32
    cursor: uint256
    lo_value: bytes32
    hi_value: bytes32
    # the last dissection reveal's hash; current only while `revealed` is set (left in place
    # afterwards, so that the next reveal rewrites a word instead of creating one); a data reveal
    # keeps none, as its pick opens the disputed node itself
    reveal_hash: bytes32
    desc_hash: bytes32
    pre_or_inputs: bytes32
    header_or_element: uint256
    data_node: bytes32


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


# the `head` word
struct Head:
    solver: address
    arity: uint256
    n_slots: uint256
    n_nodes: uint256


# the `cursor` word
struct Cursor:
    lo: uint256
    hi: uint256
    step: uint256
    node: uint256


# the chosen element: its index and term count are below 2^32, its value has at most 64 bits
# (the referee bounds each); the value is kept as the low 128 bits of its two's complement
struct Element:
    index: uint256
    terms: uint256
    value: int256


ADDRESS_MASK: constant(uint256) = 2**160 - 1
WORD64: constant(uint256) = 2**64 - 1
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
    self._games[gid].lo_value = initial_root
    self._games[gid].hi_value = final_root
    s: State = State(
        level=STEP, turn=SOLVER, outcome=PENDING, top_known=False, revealed=False,
        turn_start=block.timestamp, clock_solver=clock, clock_challenger=clock, meter=0,
    )
    s = self._settle_range(gid, s, Cursor(lo=0, hi=steps, step=0, node=0))
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
    """
    @notice The game. A field that shares its word with another level's reads as zero outside
            the levels that hold it, and `reveal_hash` is empty unless a reveal awaits its pick.
    """
    g: Stored = self._games[game_id]
    s: State = self._load(game_id)
    h: Head = self._head(game_id)
    c: Cursor = self._cursor(game_id)
    out: Game = Game(
        solver=h.solver, challenger=self._challenger(game_id), graph_root=g.graph_root,
        steps=g.party >> 160, n_nodes=h.n_nodes, n_slots=h.n_slots, arity=h.arity,
        level=self._view_level(s), turn=s.turn, outcome=s.outcome, lo=c.lo, hi=c.hi,
        lo_value=g.lo_value, hi_value=g.hi_value, reveal_hash=empty(bytes32), step=c.step, node=c.node,
        desc_hash=g.desc_hash, pre_slots_root=empty(bytes32), out_header=empty(bytes32),
        cur=empty(bytes32), height=0, index=0,
        inputs_hash=empty(bytes32), elem_index=0, elem_value=0, terms=0,
        top_known=s.top_known, clock_solver=s.clock_solver, clock_challenger=s.clock_challenger,
        turn_start=s.turn_start,
    )
    if s.revealed and not self._descending(s.level):
        out.reveal_hash = g.reveal_hash
    if self._descending(s.level):
        out.pre_slots_root = g.pre_or_inputs
        out.out_header = convert(g.header_or_element, bytes32)
        # the range settled on the node; the cursor holds the descent
        out.lo = c.node
        out.hi = c.node + 1
        out.height = c.lo
        out.index = c.hi
        out.cur = g.data_node
    if s.level == TERM or s.level == PROVE_ELEMENT:
        e: Element = self._element(g.header_or_element)
        out.inputs_hash = g.pre_or_inputs
        out.elem_index = e.index
        out.elem_value = e.value
        out.terms = e.terms
    return out


@view
@external
def output_view(game_id: uint256) -> OutputView:
    """@notice What the referee's `pick_element` and `prove_header` read."""
    s: State = self._load(game_id)
    return OutputView(
        level=self._view_level(s), n_slots=self._head(game_id).n_slots,
        pre_slots_root=self._games[game_id].pre_or_inputs, desc_hash=self._games[game_id].desc_hash,
        out_header=convert(self._games[game_id].header_or_element, bytes32), cur=self._games[game_id].data_node,
        index=self._cursor(game_id).hi,
    )


@view
@external
def term_view(game_id: uint256) -> TermView:
    """@notice What the referee's `prove_element` reads."""
    e: Element = self._element(self._games[game_id].header_or_element)
    c: Cursor = self._cursor(game_id)
    return TermView(
        level=self._view_level(self._load(game_id)), desc_hash=self._games[game_id].desc_hash,
        inputs_hash=self._games[game_id].pre_or_inputs, elem_index=e.index, elem_value=e.value,
        terms=e.terms, lo=c.lo, hi=c.hi, lo_value=self._games[game_id].lo_value,
        hi_value=self._games[game_id].hi_value,
    )


@view
@external
def boundary_view(game_id: uint256) -> BoundaryView:
    """@notice What the referee's `prove_boundary` reads."""
    h: Head = self._head(game_id)
    return BoundaryView(
        level=self._view_level(self._load(game_id)), n_nodes=h.n_nodes, n_slots=h.n_slots,
        graph_root=self._games[game_id].graph_root, step=self._cursor(game_id).step,
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
            sent (pick, pick_data, and its element choice through the referee).
    """
    return self._load(game_id).meter


@view
@external
def interior(game_id: uint256) -> DynArray[uint256, MAX_REVEAL]:
    """@notice The points whose values the solver must reveal next (STEP, NODE, TERM)."""
    return self._interior(self._cursor(game_id), self._head(game_id).arity)


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
    c: Cursor = self._cursor(game_id)
    points: DynArray[uint256, MAX_REVEAL] = self._interior(c, self._head(game_id).arity)
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
    log Revealed(game_id=game_id, level=s.level, lo=c.lo, hi=c.hi, values=values)
    if not s.revealed:
        s = self._settle_range(game_id, s, c)
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
    c: Cursor = self._cursor(game_id)
    points: DynArray[uint256, MAX_REVEAL] = self._interior(c, self._head(game_id).arity)
    assert j <= len(points), "game: pick out of range"
    if j > 0:
        c.lo = points[j - 1]
        self._games[game_id].lo_value = values[j - 1]
    if j < len(points):
        c.hi = points[j]
        self._games[game_id].hi_value = values[j]
    s.revealed = False
    s = self._pass_turn(s)
    log Picked(game_id=game_id, level=s.level, lo=c.lo, hi=c.hi)
    s = self._settle_range(game_id, s, c)
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
    c: Cursor = self._cursor(game_id)
    h: Head = self._head(game_id)
    self._require_descriptor(game_id, h, c.node, desc, desc_proof)
    out_slot: uint256 = tensor._out_slot(desc)
    assert out_slot < h.n_slots, "game: output slot out of range"
    assert merkle._state_root(c.step, c.node, pre_slots_root) == self._games[game_id].lo_value, "game: pre-state does not match"
    assert merkle._state_root(c.step, c.node + 1, post_slots_root) == self._games[game_id].hi_value, "game: post-state does not match"
    assert merkle._fold(old_commitment, out_slot, slot_path, h.n_slots) == pre_slots_root, "game: bad old slot proof"
    new_commitment: bytes32 = keccak256(concat(b"\x02", header, data_root))
    assert merkle._fold(new_commitment, out_slot, slot_path, h.n_slots) == post_slots_root, "game: other slots changed"
    self._games[game_id].desc_hash = keccak256(desc)
    self._games[game_id].pre_or_inputs = pre_slots_root
    self._games[game_id].header_or_element = convert(header, uint256)
    self._games[game_id].data_node = data_root
    log OutputRevealed(game_id=game_id, step=c.step, node=c.node, header=header, data_root=data_root)
    if not tensor._is_canonical_header(header):
        # no program's tensor has such a header, and no data tree can be sized by it
        s = self._resolve(game_id, s, CHALLENGER_WON, "non-canonical output header")
    else:
        # the solver goes on with the data: its descent starts at the root (height, chunk 0);
        # a challenger that disputes the header proves it instead of picking (prove_header)
        c.lo = merkle._depth(tensor._n_chunks(header))
        c.hi = 0
        self._store_cursor(game_id, c)
        s.level = DATA
        if c.lo == 0:
            s.level = CHUNK_REVEAL
        log LevelEntered(game_id=game_id, level=s.level, step=c.step, node=c.node)
    self._save(game_id, s)


@external
def reveal_data(game_id: uint256, children: DynArray[bytes32, MAX_ARITY]):
    """@notice The solver reveals the descendants of the disputed data-tree node."""
    s: State = self._require_move(game_id, SOLVER)
    assert s.level == DATA, "game: not descending data"
    assert not s.revealed, "game: already revealed"
    c: Cursor = self._cursor(game_id)
    m: uint256 = self._descent_levels(self._head(game_id).arity, c.lo)
    assert len(children) == 1 << m, "game: wrong number of children"
    assert merkle._subtree(children, m) == self._games[game_id].data_node, "game: children do not hash to the node"
    below: uint256 = c.lo - m
    n_chunks: uint256 = tensor._n_chunks(convert(self._games[game_id].header_or_element, bytes32))
    pad: bytes32 = merkle._zero(below)
    # the pick opens a child against the node itself: no hash of the reveal to keep
    s.revealed = True
    s = self._pass_turn(s)
    for i: uint256 in range(MAX_ARITY):
        if i >= len(children):
            break
        first_leaf: uint256 = ((c.hi << m) + i) << below
        if first_leaf >= n_chunks and children[i] != pad:
            s = self._resolve(game_id, s, CHALLENGER_WON, "non-canonical data padding")
            break
    self._save(game_id, s)
    log Revealed(game_id=game_id, level=DATA, lo=c.hi, hi=c.lo, values=children)


@external
def pick_data(game_id: uint256, j: uint256, child: bytes32, path: DynArray[bytes32, MAX_DEPTH]):
    """
    @notice The challenger disputes child j of the revealed ones, which must cover at least one
            real chunk: `path` is its siblings up to the disputed node (the revealed children
            hash to that node, so only they open there).
    """
    start: uint256 = msg.gas
    s: State = self._require_move(game_id, CHALLENGER)
    assert s.level == DATA, "game: not descending data"
    assert s.revealed, "game: nothing revealed"
    c: Cursor = self._cursor(game_id)
    m: uint256 = self._descent_levels(self._head(game_id).arity, c.lo)
    # the fold also refuses a child past the revealed ones (merkle: index out of range)
    assert merkle._fold(child, j, path, 1 << m) == self._games[game_id].data_node, "game: not the revealed values"
    below: uint256 = c.lo - m
    index: uint256 = (c.hi << m) + j
    assert index << below < tensor._n_chunks(convert(self._games[game_id].header_or_element, bytes32)), "game: child is padding"
    self._games[game_id].data_node = child
    c.lo = below
    c.hi = index
    self._store_cursor(game_id, c)
    s.revealed = False
    if below == 0:
        s.level = CHUNK_REVEAL
    s = self._pass_turn(s)
    log Picked(game_id=game_id, level=DATA, lo=index, hi=below)
    self._save_metered(game_id, s, start)


@external
def reveal_chunk(game_id: uint256, chunk: Bytes[CHUNK]):
    """@notice The solver reveals the disputed chunk; its padding must be zero."""
    s: State = self._require_move(game_id, SOLVER)
    assert s.level == CHUNK_REVEAL, "game: no chunk to reveal"
    assert len(chunk) == CHUNK and keccak256(concat(b"\x00", chunk)) == self._games[game_id].data_node, "game: not the chunk"
    header: bytes32 = convert(self._games[game_id].header_or_element, bytes32)
    nbytes: uint256 = tensor._size(header) * tensor._width(tensor._dtype(header))
    c: Cursor = self._cursor(game_id)
    start: uint256 = c.hi * CHUNK
    s = self._pass_turn(s)
    s.level = ELEMENT
    log ChunkRevealed(game_id=game_id, index=c.hi, chunk=chunk)
    if start + CHUNK > nbytes and not merkle._zero_from(chunk, nbytes - min(nbytes, start)):
        s = self._resolve(game_id, s, CHALLENGER_WON, "non-canonical chunk padding")
    self._save(game_id, s)
    log LevelEntered(game_id=game_id, level=self._view_level(s), step=c.step, node=c.node)


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
    # the pre-state root and the header are no longer read: their words take the element
    self._games[game_id].pre_or_inputs = inputs_hash
    self._games[game_id].header_or_element = self._element_word(Element(index=index, terms=terms, value=element))
    c: Cursor = self._cursor(game_id)
    c.lo = 0
    c.hi = terms
    self._store_cursor(game_id, c)
    s = self._pass_turn(s)
    if terms == 0:
        s.level = PROVE_ELEMENT
        s.turn = CHALLENGER
    else:
        s.level = TERM
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
def _head(game_id: uint256) -> Head:
    w: uint256 = self._games[game_id].head
    return Head(
        solver=convert(w & ADDRESS_MASK, address),
        arity=(w >> 160) & 255,
        n_slots=(w >> 168) & 65535,
        n_nodes=w >> 184,
    )


@internal
@view
def _challenger(game_id: uint256) -> address:
    # `party` is challenger | steps << 160; only `games` reads the steps
    return convert(self._games[game_id].party & ADDRESS_MASK, address)


@internal
@view
def _cursor(game_id: uint256) -> Cursor:
    w: uint256 = self._games[game_id].cursor
    return Cursor(lo=w & WORD64, hi=(w >> 64) & WORD64, step=(w >> 128) & WORD64, node=w >> 192)


@internal
def _store_cursor(game_id: uint256, c: Cursor):
    # each field is below 2^64: a step below 2^63, a node position or a term index below 2^32 + 1,
    # a height at most 32, a chunk index below 2^32
    self._games[game_id].cursor = c.lo | c.hi << 64 | c.step << 128 | c.node << 192


@internal
@pure
def _element_word(e: Element) -> uint256:
    return e.index | e.terms << 64 | convert(convert(e.value, bytes32), uint256) << 128


@internal
@pure
def _element(w: uint256) -> Element:
    # the value is the top 128 bits, sign-extended
    return Element(index=w & WORD64, terms=(w >> 64) & WORD64, value=convert(convert(w, bytes32), int256) >> 128)


# --- internal: turns and resolution ----------------------------------------------------------------


@internal
@pure
def _view_level(s: State) -> uint8:
    """What a reader sees: OVER once there is an outcome, else the level in play."""
    if s.outcome != PENDING:
        return OVER
    return s.level


@internal
@pure
def _descending(level: uint8) -> bool:
    """The levels whose cursor holds the data descent (height, chunk index)."""
    return level >= DATA and level <= ELEMENT


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
        assert msg.sender == self._head(game_id).solver, "game: only the solver"
    else:
        assert msg.sender == self._challenger(game_id), "game: only the challenger"
    assert self._clock_ok(s), "game: clock expired"
    return s


@internal
@view
def _require_proof(game_id: uint256, level: uint8) -> State:
    """A one-step proof: anyone may send it while the clock of the party to move runs. The
    output header's proof belongs to the data descent's levels."""
    s: State = self._require_open(game_id)
    if level == PROVE_HEADER:
        assert self._descending(s.level), "game: not at this proof"
    else:
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
    # the level stays the last one played, so that readers know what each shared word holds
    t: State = s
    t.outcome = outcome
    log GameResolved(game_id=game_id, outcome=outcome, reason=reason)
    return t


@internal
def _settle_range(game_id: uint256, s: State, c: Cursor) -> State:
    """Stores the range `c`, moving down a level when it has narrowed to a single transition."""
    t: State = s
    level: uint8 = t.level
    if level == STEP and c.hi == c.lo + 1:
        # node positions of step lo: 0 .. N, and N + 1 standing for state(lo + 1, 0)
        c.step = c.lo
        c.lo = 0
        c.hi = self._head(game_id).n_nodes + 1
        level = NODE
        t.level = NODE
        log LevelEntered(game_id=game_id, level=NODE, step=c.step, node=0)
    if level == NODE and c.hi == c.lo + 1:
        c.node = c.lo
        if c.lo == self._head(game_id).n_nodes:
            t.level = PROVE_BOUNDARY
            t.turn = CHALLENGER
        else:
            t.level = OUTPUT
            t.turn = SOLVER
        log LevelEntered(game_id=game_id, level=t.level, step=c.step, node=c.node)
    if level == TERM and c.hi == c.lo + 1 and t.top_known:
        t.level = PROVE_ELEMENT
        t.turn = CHALLENGER
        log LevelEntered(game_id=game_id, level=PROVE_ELEMENT, step=c.step, node=c.node)
    self._store_cursor(game_id, c)
    return t


# --- internal: proofs ----------------------------------------------------------------------------


@internal
@view
def _require_descriptor(game_id: uint256, h: Head, node: uint256, desc: Bytes[DESC_MAX], proof: DynArray[bytes32, MAX_DEPTH]):
    leaf: bytes32 = keccak256(concat(b"\x00", desc))
    root: bytes32 = merkle._fold(leaf, node, proof, h.n_nodes + 1)
    assert root == self._games[game_id].graph_root, "game: not the node's descriptor"
    assert tensor._is_well_formed(desc), "game: malformed descriptor"


@internal
@pure
def _descent_levels(arity: uint256, height: uint256) -> uint256:
    """Levels one data reveal spans: m = min(floor(log2 k), height)."""
    m: uint256 = 0
    for _: uint256 in range(6):
        if 2 << m > arity:
            break
        m += 1
    return min(m, height)


# --- internal: hashing ---------------------------------------------------------------------------


@internal
@pure
def _interior(c: Cursor, k: uint256) -> DynArray[uint256, MAX_REVEAL]:
    """Points lo + floor((hi - lo) * i / k), i = 1 .. k-1, without duplicates or ends, of the
    cursor's range."""
    out: DynArray[uint256, MAX_REVEAL] = []
    prev: uint256 = c.lo
    for i: uint256 in range(1, MAX_ARITY):
        if i >= k:
            break
        p: uint256 = c.lo + (c.hi - c.lo) * i // k
        if p != prev and p != c.hi:
            out.append(p)
            prev = p
    return out
