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

# every game by id (ids start at 1); read them with `games`, which unpacks clock_challenger
_games: HashMap[uint256, Game]
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
    g: Game = empty(Game)
    g.solver = solver
    g.challenger = challenger
    g.graph_root = graph_root
    g.steps = steps
    g.n_nodes = n_nodes
    g.n_slots = n_slots
    g.arity = arity
    g.level = STEP
    g.turn = SOLVER
    g.lo = 0
    g.hi = steps
    g.lo_value = initial_root
    g.hi_value = final_root
    g.clock_solver = clock
    g.clock_challenger = clock
    g.turn_start = block.timestamp
    self._games[gid] = g
    self._settle_range(gid)
    log GameCreated(game_id=gid, solver=solver, challenger=challenger, steps=steps)
    return gid


@view
@external
def outcome(game_id: uint256) -> uint8:
    return self._games[game_id].outcome


@view
@external
def games(game_id: uint256) -> Game:
    """@notice The game, with `clock_challenger` in seconds (the meter left out)."""
    g: Game = self._games[game_id]
    g.clock_challenger = g.clock_challenger & CLOCK_MASK
    return g


@view
@external
def challenger_gas(game_id: uint256) -> uint256:
    """
    @notice Gas the challenger's own moves metered: 4/5 of (21_000 + execution) per move it
            sent (pick, choose, pick_data, and its element choice through the referee).
    """
    return self._games[game_id].clock_challenger >> CLOCK_BITS


@view
@external
def interior(game_id: uint256) -> DynArray[uint256, MAX_REVEAL]:
    """@notice The points whose values the solver must reveal next (STEP, NODE, TERM)."""
    g: Game = self._games[game_id]
    return self._interior(g.lo, g.hi, g.arity)


@view
@external
def time_left(game_id: uint256) -> (uint256, uint256):
    """@notice Seconds left on (solver, challenger) clocks, counting the running turn."""
    g: Game = self._games[game_id]
    s: uint256 = g.clock_solver
    c: uint256 = g.clock_challenger & CLOCK_MASK
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
    self._require_move(game_id, SOLVER)
    assert self._games[game_id].level == STEP or self._games[game_id].level == NODE or self._games[game_id].level == TERM, "game: nothing to reveal"
    assert self._games[game_id].reveal_hash == empty(bytes32), "game: already revealed"
    points: DynArray[uint256, MAX_REVEAL] = self._interior(self._games[game_id].lo, self._games[game_id].hi, self._games[game_id].arity)
    interior: DynArray[bytes32, MAX_ARITY] = values
    if self._games[game_id].level == TERM and not self._games[game_id].top_known:
        assert len(values) == len(points) + 1, "game: wrong number of values"
        top: bytes32 = values[len(points)]
        interior = []
        for i: uint256 in range(MAX_REVEAL):
            if i >= len(points):
                break
            interior.append(values[i])
        self._games[game_id].hi_value = top
        self._games[game_id].top_known = True
    else:
        assert len(values) == len(points), "game: wrong number of values"
    self._games[game_id].reveal_hash = keccak256(abi_encode(interior))
    if len(points) == 0:
        # nothing to pick from: only s_K was revealed on a one-term range
        self._games[game_id].reveal_hash = empty(bytes32)
    self._pass_turn(game_id)
    log Revealed(game_id=game_id, level=self._games[game_id].level, lo=self._games[game_id].lo, hi=self._games[game_id].hi, values=values)
    self._settle_range(game_id)


@external
def pick(game_id: uint256, values: DynArray[bytes32, MAX_ARITY], j: uint256):
    """
    @notice The challenger agrees with the value at point j (j = 0: the range start) and
            disputes the value at point j + 1 of the revealed list (j = len: the range end).
    """
    start: uint256 = msg.gas
    self._require_move(game_id, CHALLENGER)
    assert self._games[game_id].level == STEP or self._games[game_id].level == NODE or self._games[game_id].level == TERM, "game: nothing to pick"
    assert self._games[game_id].reveal_hash != empty(bytes32), "game: nothing revealed"
    assert keccak256(abi_encode(values)) == self._games[game_id].reveal_hash, "game: not the revealed values"
    points: DynArray[uint256, MAX_REVEAL] = self._interior(self._games[game_id].lo, self._games[game_id].hi, self._games[game_id].arity)
    assert j <= len(points), "game: pick out of range"
    if j > 0:
        self._games[game_id].lo = points[j - 1]
        self._games[game_id].lo_value = values[j - 1]
    if j < len(points):
        self._games[game_id].hi = points[j]
        self._games[game_id].hi_value = values[j]
    self._games[game_id].reveal_hash = empty(bytes32)
    self._pass_turn(game_id)
    log Picked(game_id=game_id, level=self._games[game_id].level, lo=self._games[game_id].lo, hi=self._games[game_id].hi)
    self._settle_range(game_id)
    self._meter(game_id, start)


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
    self._require_move(game_id, SOLVER)
    assert self._games[game_id].level == OUTPUT, "game: not at the output level"
    self._require_descriptor(game_id, desc, desc_proof)
    out_slot: uint256 = tensor._out_slot(desc)
    assert out_slot < self._games[game_id].n_slots, "game: output slot out of range"
    assert merkle._state_root(self._games[game_id].step, self._games[game_id].node, pre_slots_root) == self._games[game_id].lo_value, "game: pre-state does not match"
    assert merkle._state_root(self._games[game_id].step, self._games[game_id].node + 1, post_slots_root) == self._games[game_id].hi_value, "game: post-state does not match"
    assert merkle._fold(old_commitment, out_slot, slot_path, self._games[game_id].n_slots) == pre_slots_root, "game: bad old slot proof"
    new_commitment: bytes32 = keccak256(concat(b"\x02", header, data_root))
    assert merkle._fold(new_commitment, out_slot, slot_path, self._games[game_id].n_slots) == post_slots_root, "game: other slots changed"
    self._games[game_id].desc_hash = keccak256(desc)
    self._games[game_id].pre_slots_root = pre_slots_root
    self._games[game_id].out_header = header
    self._games[game_id].out_data_root = data_root
    self._games[game_id].level = CHOOSE
    self._pass_turn(game_id)
    log OutputRevealed(game_id=game_id, step=self._games[game_id].step, node=self._games[game_id].node, header=header, data_root=data_root)


@external
def choose(game_id: uint256, dispute_header: bool):
    """@notice The challenger disputes the output's header, or its data."""
    start: uint256 = msg.gas
    self._require_move(game_id, CHALLENGER)
    assert self._games[game_id].level == CHOOSE, "game: nothing to choose"
    self._pass_turn(game_id)
    if dispute_header:
        self._games[game_id].level = PROVE_HEADER
        self._games[game_id].turn = CHALLENGER
    else:
        assert tensor._is_canonical_header(self._games[game_id].out_header), "game: header is not canonical, dispute it"
        self._games[game_id].level = DATA
        self._games[game_id].cur = self._games[game_id].out_data_root
        self._games[game_id].height = merkle._depth(tensor._n_chunks(self._games[game_id].out_header))
        self._games[game_id].index = 0
        if self._games[game_id].height == 0:
            self._games[game_id].level = CHUNK_REVEAL
    log LevelEntered(game_id=game_id, level=self._games[game_id].level, step=self._games[game_id].step, node=self._games[game_id].node)
    self._meter(game_id, start)


@external
def reveal_data(game_id: uint256, children: DynArray[bytes32, MAX_ARITY]):
    """@notice The solver reveals the descendants of the disputed data-tree node."""
    self._require_move(game_id, SOLVER)
    assert self._games[game_id].level == DATA, "game: not descending data"
    assert self._games[game_id].reveal_hash == empty(bytes32), "game: already revealed"
    m: uint256 = self._descent(game_id)
    assert len(children) == 1 << m, "game: wrong number of children"
    assert merkle._subtree(children, m) == self._games[game_id].cur, "game: children do not hash to the node"
    below: uint256 = self._games[game_id].height - m
    n_chunks: uint256 = tensor._n_chunks(self._games[game_id].out_header)
    pad: bytes32 = merkle._zero(below)
    self._games[game_id].reveal_hash = keccak256(abi_encode(children))
    self._pass_turn(game_id)
    for i: uint256 in range(MAX_ARITY):
        if i >= len(children):
            break
        first_leaf: uint256 = ((self._games[game_id].index << m) + i) << below
        if first_leaf >= n_chunks and children[i] != pad:
            self._resolve(game_id, CHALLENGER_WON, "non-canonical data padding")
            break
    log Revealed(game_id=game_id, level=DATA, lo=self._games[game_id].index, hi=self._games[game_id].height, values=children)


@external
def pick_data(game_id: uint256, children: DynArray[bytes32, MAX_ARITY], j: uint256):
    """@notice The challenger disputes child j, which must cover at least one real chunk."""
    start: uint256 = msg.gas
    self._require_move(game_id, CHALLENGER)
    assert self._games[game_id].level == DATA, "game: not descending data"
    assert self._games[game_id].reveal_hash != empty(bytes32), "game: nothing revealed"
    assert keccak256(abi_encode(children)) == self._games[game_id].reveal_hash, "game: not the revealed values"
    m: uint256 = self._descent(game_id)
    assert j < len(children), "game: pick out of range"
    below: uint256 = self._games[game_id].height - m
    child: uint256 = (self._games[game_id].index << m) + j
    assert child << below < tensor._n_chunks(self._games[game_id].out_header), "game: child is padding"
    self._games[game_id].cur = children[j]
    self._games[game_id].index = child
    self._games[game_id].height = below
    self._games[game_id].reveal_hash = empty(bytes32)
    if below == 0:
        self._games[game_id].level = CHUNK_REVEAL
    self._pass_turn(game_id)
    log Picked(game_id=game_id, level=DATA, lo=self._games[game_id].index, hi=self._games[game_id].height)
    self._meter(game_id, start)


@external
def reveal_chunk(game_id: uint256, chunk: Bytes[CHUNK]):
    """@notice The solver reveals the disputed chunk; its padding must be zero."""
    self._require_move(game_id, SOLVER)
    assert self._games[game_id].level == CHUNK_REVEAL, "game: no chunk to reveal"
    assert len(chunk) == CHUNK and keccak256(concat(b"\x00", chunk)) == self._games[game_id].cur, "game: not the chunk"
    nbytes: uint256 = tensor._size(self._games[game_id].out_header) * tensor._width(tensor._dtype(self._games[game_id].out_header))
    start: uint256 = self._games[game_id].index * CHUNK
    self._pass_turn(game_id)
    self._games[game_id].level = ELEMENT
    log ChunkRevealed(game_id=game_id, index=self._games[game_id].index, chunk=chunk)
    if start + CHUNK > nbytes and not merkle._zero_from(chunk, nbytes - min(nbytes, start)):
        self._resolve(game_id, CHALLENGER_WON, "non-canonical chunk padding")
    log LevelEntered(game_id=game_id, level=self._games[game_id].level, step=self._games[game_id].step, node=self._games[game_id].node)


# --- one-step proofs (anyone) --------------------------------------------------------------------


@external
def enter_element(game_id: uint256, sender: address, index: uint256, element: int256, inputs_hash: bytes32, terms: uint256):
    """
    @notice The referee records the challenger's chosen element after checking the chunk and
            the node's input headers; `sender` is the account that sent the choice.
    """
    start: uint256 = msg.gas
    assert msg.sender == self.referee, "game: only the referee"
    self._require_open(game_id)
    assert self._games[game_id].level == ELEMENT, "game: no element to pick"
    assert self._games[game_id].turn == CHALLENGER, "game: not your turn"
    assert sender == self._games[game_id].challenger, "game: only the challenger"
    assert self._clock_ok(game_id), "game: clock expired"
    self._games[game_id].inputs_hash = inputs_hash
    self._games[game_id].elem_index = index
    self._games[game_id].elem_value = element
    self._games[game_id].terms = terms
    self._pass_turn(game_id)
    if terms == 0:
        self._games[game_id].level = PROVE_ELEMENT
        self._games[game_id].turn = CHALLENGER
    else:
        self._games[game_id].level = TERM
        self._games[game_id].lo = 0
        self._games[game_id].hi = terms
        self._games[game_id].top_known = False
    log ElementChosen(game_id=game_id, index=index, value=element, terms=terms)
    # the referee checked that `sender` sent this choice, and `sender` is the challenger
    self._meter(game_id, start)


@external
def decide(game_id: uint256, level: uint8, solver_right: bool, reason: String[64]):
    """@notice The referee reports the verdict of a one-step proof at `level`."""
    assert msg.sender == self.referee, "game: only the referee"
    self._require_proof(game_id, level)
    if solver_right:
        self._resolve(game_id, SOLVER_WON, reason)
    else:
        self._resolve(game_id, CHALLENGER_WON, reason)


@external
def timeout(game_id: uint256):
    """@notice Anyone ends a game whose mover's clock has run out; the other party wins."""
    assert self._games[game_id].steps != 0, "game: no such game"
    assert self._games[game_id].outcome == PENDING, "game: already over"
    used: uint256 = block.timestamp - self._games[game_id].turn_start
    if self._games[game_id].turn == SOLVER:
        assert used > self._games[game_id].clock_solver, "game: clock not expired"
        self._resolve(game_id, CHALLENGER_WON, "solver's clock ran out")
    else:
        assert used > self._challenger_clock(game_id), "game: clock not expired"
        self._resolve(game_id, SOLVER_WON, "challenger's clock ran out")


# --- internal: turns and resolution ----------------------------------------------------------------


@internal
@view
def _require_open(game_id: uint256):
    assert self._games[game_id].steps != 0, "game: no such game"
    assert self._games[game_id].outcome == PENDING, "game: already over"


@internal
@view
def _clock_ok(game_id: uint256) -> bool:
    """The party to move still has time on its clock."""
    used: uint256 = block.timestamp - self._games[game_id].turn_start
    if self._games[game_id].turn == SOLVER:
        return used <= self._games[game_id].clock_solver
    return used <= self._challenger_clock(game_id)


@internal
@view
def _challenger_clock(game_id: uint256) -> uint256:
    return self._games[game_id].clock_challenger & CLOCK_MASK


@internal
@view
def _require_move(game_id: uint256, who: uint8):
    self._require_open(game_id)
    assert self._games[game_id].turn == who, "game: not your turn"
    if who == SOLVER:
        assert msg.sender == self._games[game_id].solver, "game: only the solver"
    else:
        assert msg.sender == self._games[game_id].challenger, "game: only the challenger"
    assert self._clock_ok(game_id), "game: clock expired"


@internal
@view
def _require_proof(game_id: uint256, level: uint8):
    """A one-step proof: anyone may send it while the clock of the party to move runs."""
    self._require_open(game_id)
    assert self._games[game_id].level == level, "game: not at this proof"
    assert self._clock_ok(game_id), "game: clock expired"


@internal
def _pass_turn(game_id: uint256):
    """Charge the mover's clock for its turn and hand the move to the other party."""
    used: uint256 = block.timestamp - self._games[game_id].turn_start
    if self._games[game_id].turn == SOLVER:
        self._games[game_id].clock_solver -= used
        self._games[game_id].turn = CHALLENGER
    else:
        packed: uint256 = self._games[game_id].clock_challenger
        # checked: a clock shorter than `used` reverts instead of borrowing from the meter
        left: uint256 = (packed & CLOCK_MASK) - used
        self._games[game_id].clock_challenger = (packed & ~CLOCK_MASK) | left
        self._games[game_id].turn = SOLVER
    self._games[game_id].turn_start = block.timestamp


@internal
def _meter(game_id: uint256, start: uint256):
    """Adds a challenger move to its meter: 4/5 of (21_000 + the gas used since `start`).
    Only called after the move checked that the challenger sent it."""
    # a move uses far less than 2^64 gas, and 2^192 of meter is out of reach
    used: uint256 = (TX_GAS + start - msg.gas) * METER_NUM // METER_DEN
    self._games[game_id].clock_challenger += used << CLOCK_BITS


@internal
def _resolve(game_id: uint256, outcome: uint8, reason: String[64]):
    self._games[game_id].outcome = outcome
    self._games[game_id].level = OVER
    log GameResolved(game_id=game_id, outcome=outcome, reason=reason)


@internal
def _settle_range(game_id: uint256):
    """Move down a level when a range has narrowed to a single transition."""
    level: uint8 = self._games[game_id].level
    lo: uint256 = self._games[game_id].lo
    hi: uint256 = self._games[game_id].hi
    if level == STEP and hi == lo + 1:
        # node positions of step lo: 0 .. N, and N + 1 standing for state(lo + 1, 0)
        self._games[game_id].step = lo
        level = NODE
        lo = 0
        hi = self._games[game_id].n_nodes + 1
        self._games[game_id].level = NODE
        self._games[game_id].lo = lo
        self._games[game_id].hi = hi
        log LevelEntered(game_id=game_id, level=NODE, step=self._games[game_id].step, node=0)
    if level == NODE and hi == lo + 1:
        self._games[game_id].node = lo
        if lo == self._games[game_id].n_nodes:
            self._games[game_id].level = PROVE_BOUNDARY
            self._games[game_id].turn = CHALLENGER
        else:
            self._games[game_id].level = OUTPUT
            self._games[game_id].turn = SOLVER
        log LevelEntered(game_id=game_id, level=self._games[game_id].level, step=self._games[game_id].step, node=lo)
    if level == TERM and hi == lo + 1 and self._games[game_id].top_known:
        self._games[game_id].level = PROVE_ELEMENT
        self._games[game_id].turn = CHALLENGER
        log LevelEntered(game_id=game_id, level=PROVE_ELEMENT, step=self._games[game_id].step, node=self._games[game_id].node)


# --- internal: proofs ----------------------------------------------------------------------------


@internal
@view
def _require_descriptor(game_id: uint256, desc: Bytes[DESC_MAX], proof: DynArray[bytes32, MAX_DEPTH]):
    leaf: bytes32 = keccak256(concat(b"\x00", desc))
    count: uint256 = self._games[game_id].n_nodes + 1
    root: bytes32 = merkle._fold(leaf, self._games[game_id].node, proof, count)
    assert root == self._games[game_id].graph_root, "game: not the node's descriptor"
    assert tensor._is_well_formed(desc), "game: malformed descriptor"


@internal
@view
def _descent(game_id: uint256) -> uint256:
    """Levels one data reveal spans: m = min(floor(log2 k), height)."""
    m: uint256 = 0
    for _: uint256 in range(6):
        if 2 << m > self._games[game_id].arity:
            break
        m += 1
    return min(m, self._games[game_id].height)


# --- internal: hashing ---------------------------------------------------------------------------


@internal
@pure
def _interior(lo: uint256, hi: uint256, k: uint256) -> DynArray[uint256, MAX_REVEAL]:
    """Points lo + floor((hi - lo) * i / k), i = 1 .. k-1, without duplicates or ends."""
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
