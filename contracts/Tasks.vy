# pragma version ~=0.4.3
"""
@title Task registry: tasks, claims, challenges, bonds and settlement
@notice A poster escrows a reward for running a program (docs/SPEC.md section 3). A solver
        takes the task's claim slot with a commitment to its result and the solver bond, then
        reveals the result within the task's clock; until the claim's challenge window (counted
        from the reveal) closes anyone else may challenge it with a challenger bond. Every
        challenge is an independent dispute game (section 6), played to its end and settled by
        its own outcome. A challenger whose game says CHALLENGER_WON gets its bond back at
        settlement; the first such settlement rejects the claim and reopens the task, and the
        solver bond minus its burn is split among all the claim's winning challenges, in
        proportion to the gas each challenger metered (its challenge transaction and its own
        moves in its game), once the window has closed and every game is settled. A
        challenger whose game says SOLVER_WON loses its bond: the burn share is burned and the
        rest paid to the solver. A claim never revealed in time burns its whole bond. The rules are written out in
        docs/SPEC.md section 7.
@custom:security Trust assumptions and choices:
                 - The token is the bisectml bond token (contracts/Token.vy): no fees, hooks or
                   blacklists, so `transfer` moves exactly the amount and cannot re-enter.
                   Bond refunds and slashes are pushed at settlement; a winner's share of a
                   rejected claim's bond is pulled (`collect`, permissionless, pays the
                   challenger) once the number of winners is final. Every mutating function is
                   `@nonreentrant` and updates storage before it calls out.
                 - The contract holds exactly `owed`: escrowed rewards, the bonds of committed
                   and revealed claims and of unsettled challenges, and the uncollected prizes
                   of rejected claims. Tokens sent to it directly are not accounted and stay
                   there for good.
                 - The game contract is trusted to decide each game correctly and to end every
                   game within its chess clocks; a game that never ends keeps its challenge
                   unsettled and so blocks the claim's finalization and its prizes. `post_task`
                   accepts only terms the game's `create` accepts, so every claim can be
                   challenged; the game must have its referee bound before the first task.
                 - Claims cannot be front-run: the commitment binds the solver's address, so a
                   copied commitment cannot be revealed by the copier (its bond burns), and the
                   slot is taken at commit, before any root is public.
                 - Nobody picks who is paid: every game ends by its own outcome, a challenge is
                   refunded only if its game shows it right, and the prize is split among every
                   winning challenge of the window whatever the settlement order, so a solver
                   that loses to its own sybil first still pays the honest challenger. The split
                   is in proportion to metered gas (4/5 of 21_000 + execution per transaction,
                   never more than the sender paid net of refunds): a sybil whose game is
                   conceded weighs only its challenge, and weight costs at least its gas.
                 - Time: `MIN_CLOCK` (reveal deadline and each party's game clock) and
                   `MIN_WINDOW` are two days, a day of censorship plus a day for the up to ~31
                   moves of one party under congestion (docs/SPEC.md 7.2).
                 - The solver may not challenge its own claim from the solver address; sybil
                   challengers lose their bond in every game the solver wins.
                 - Results (docs/SPEC.md 7.11): a task may name slots of its final state as its
                   result; a claim is finalized only once each is published on the
                   availability registry and proved a slot of its final root, and a claim that
                   stood with its result withheld past its window is expired (bond burned).
"""

from ethereum.ercs import IERC20
from contracts import IGame
from contracts.lib import merkle


interface IBurnable:
    def burn(amount: uint256): nonpayable


interface IAvailability:
    def available(commitment: bytes32) -> bool: view


# game outcomes, as contracts/IGame.vyi numbers them (interface constants are not importable)
PENDING: constant(uint8) = 0
SOLVER_WON: constant(uint8) = 1
CHALLENGER_WON: constant(uint8) = 2

# task states
TASK_OPEN: constant(uint8) = 1
TASK_DONE: constant(uint8) = 2
TASK_RECLAIMED: constant(uint8) = 3

# claim states: committed (result hidden), revealed and open to challenges, rejected by a won
# game, finalized, or expired unrevealed (bond burned)
CLAIM_COMMITTED: constant(uint8) = 1
CLAIM_LIVE: constant(uint8) = 2
CLAIM_REJECTED: constant(uint8) = 3
CLAIM_FINALIZED: constant(uint8) = 4
CLAIM_EXPIRED: constant(uint8) = 5

# challenge states: its game not yet settled, lost by the challenger (bond slashed), won by the
# challenger (bond refunded, prize share not yet collected), or won and its share collected
CHALLENGE_OPEN: constant(uint8) = 1
CHALLENGE_LOST: constant(uint8) = 2
CHALLENGE_WON: constant(uint8) = 3
CHALLENGE_COLLECTED: constant(uint8) = 4

# share of every lost bond that is burned, in basis points (the rest goes to the winner)
BURN_BPS: public(constant(uint256)) = 5_000
BPS: constant(uint256) = 10_000

# the challenge window after a reveal, seconds: at least two days, at most thirty
MIN_WINDOW: public(constant(uint256)) = 172_800
MAX_WINDOW: public(constant(uint256)) = 2_592_000
# each party's chess clock per game, and the solver's time to reveal, seconds: at least two
# days (a day of censorship plus a day for ~31 moves under congestion), at most thirty
MIN_CLOCK: public(constant(uint256)) = 172_800
MAX_CLOCK: public(constant(uint256)) = 2_592_000
# the challenger bond, in token base units (docs/SPEC.md 7.2): at least what one game's defence
# costs a solver in gas (each challenge its game shows wrong pays the solver cb - burn(cb), so a
# swarm of challenges pays for its own defence), at most what any honest watchtower can lock
# (a bond nobody can post would make a task's claims unchallengeable); the market's range
MIN_CHALLENGER_BOND: public(constant(uint256)) = 250 * 10**18
MAX_CHALLENGER_BOND: public(constant(uint256)) = 10**21
# A task must be disputable: every term below is within what Game.vy's `create` accepts, or no
# challenge could ever be opened and any claim would finalize unchallenged
# (tests/contracts/test_tasks.py checks these against contracts/Game.vy).
# dissection arity k: 2 .. 32 points per move (Game.vy MAX_ARITY)
MIN_ARITY: public(constant(uint256)) = 2
MAX_ARITY: public(constant(uint256)) = 32
# slots and nodes a game can dispute (Game.vy MAX_SLOTS, MAX_NODES)
MAX_SLOTS: public(constant(uint256)) = 512
MAX_NODES: public(constant(uint256)) = 4_294_967_294
# program limits of docs/SPEC.md section 3: N < 2^32, 1 <= S < 2^16, 1 <= T < 2^63
SPEC_MAX_NODES: constant(uint256) = 4_294_967_295
SPEC_MAX_SLOTS: constant(uint256) = 65_535
MAX_STEPS: public(constant(uint256)) = 9_223_372_036_854_775_807
# a winner's share of the prize is proportional to the gas it metered (docs/SPEC.md 7.5): its
# challenge transaction here and its own moves in the game (Game.vy `challenger_gas`), each
# counted as 4/5 of (21_000 + execution), so that no weight costs less than its gas net of refunds
TX_GAS: constant(uint256) = 21_000
METER_NUM: constant(uint256) = 4
METER_DEN: constant(uint256) = 5
# a game's meter is read at most at 2^64 gas (thousands of times all gas ever used), so a
# claim's total stays far below 2^128 and the share's products below 2^256
MAX_GAME_GAS: constant(uint256) = 2**64
# a claim's `status` word: state | opened << 8 | unsettled << 72 | newest challenge id << 136;
# a challenge's word: state | claim id << 8 | previous challenge of the claim << 72 | gas << 136.
# Ids and counts are counters bounded by the calls ever made, far below 2^64; the gas is below
# 2^66 (MAX_GAME_GAS plus one transaction's).
ID_MASK: constant(uint256) = 2**64 - 1
STATE_MASK: constant(uint256) = 255
# the fields of a task's `terms` word (see StoredTask)
TERM_NODES_MASK: constant(uint256) = 2**32 - 1
TERM_SLOTS_MASK: constant(uint256) = 2**16 - 1
TERM_STEPS_MASK: constant(uint256) = 2**64 - 1
TERM_TIME_MASK: constant(uint256) = 2**32 - 1
# most challenge ids one `challenges_of` call returns
PAGE: constant(uint256) = 256

# domain tag of the program id (docs/SPEC.md section 3.4)
PROGRAM_TAG: constant(bytes1) = 0x05


struct Task:
    # who escrowed the reward, and gets it back if no claim is finalized by the deadline
    poster: address
    # H(0x05 || graph_root || u32(N) || u16(S) || initial_root || dataset_root || u64(T))
    program_id: bytes32
    # Merkle root of the node descriptors and the step boundary (SPEC 3.2)
    graph_root: bytes32
    # state(0, 0), the agreed start of every game (SPEC 3.3)
    initial_root: bytes32
    # Merkle root of the data slots' commitments, bytes32(0) if none (SPEC 3.4)
    dataset_root: bytes32
    # N, the number of non-folded nodes in one step
    n_nodes: uint256
    # S, the number of slots
    n_slots: uint256
    # T, the number of steps
    steps: uint256
    # dissection arity k of every game on this task
    arity: uint256
    # each party's chess clock per game, and the solver's time to reveal a commitment, seconds
    clock: uint256
    # seconds after a reveal during which the claim can be challenged
    window: uint256
    # paid to the solver whose claim is finalized; escrowed until then
    reward: uint256
    # locked by every claim
    solver_bond: uint256
    # locked by every challenge
    challenger_bond: uint256
    # claims are committed while block.timestamp < deadline; the reward is reclaimable from then
    deadline: uint256
    # the committed or revealed claim holding the slot, or the finalized one once the task is
    # done; 0 if none
    claim_id: uint256
    # TASK_OPEN, TASK_DONE (a claim was finalized) or TASK_RECLAIMED
    state: uint8


# a task in storage: its sizes, terms and state share one word, `terms` = n_nodes |
# n_slots << 32 | steps << 48 | arity << 112 | clock << 120 | window << 152 | state << 184
# (post_task bounds each: N < 2^32, S <= 512, T < 2^63, k <= 32, clock and window below 2^22)
struct StoredTask:
    poster: address
    program_id: bytes32
    graph_root: bytes32
    initial_root: bytes32
    dataset_root: bytes32
    terms: uint256
    reward: uint256
    solver_bond: uint256
    challenger_bond: uint256
    deadline: uint256
    claim_id: uint256


struct Claim:
    # the task this claim answers
    task_id: uint256
    # who committed the claim and locked the solver bond; the only one who can reveal it
    solver: address
    # keccak256(abi_encode(task_id, final_root, solver, salt)), see `claim_commitment`
    commitment: bytes32
    # the claimed result, state(T, 0); bytes32(0) until revealed
    final_root: bytes32
    # block.timestamp of the commit while COMMITTED (reveals accepted until time + clock), of
    # the reveal from then on (challenges accepted until time + window)
    time: uint256
    # number of challenges opened against the claim
    challenges: uint256
    # number of those not yet settled
    unsettled: uint256
    # number of those settled with the game CHALLENGER_WON; they share the prize
    winners: uint256
    # number of winners that collected their share
    collected: uint256
    # CLAIM_COMMITTED, CLAIM_LIVE, CLAIM_REJECTED, CLAIM_FINALIZED or CLAIM_EXPIRED
    state: uint8
    # G: the metered gas of the winners settled so far; the prize is split in proportion to it
    gas: uint256
    # prize paid to winners so far by `collect`
    shared: uint256


# a claim in storage: its state, its two challenge counters and its newest challenge share one
# word, written by the commit, so that a challenge creates no word of the claim's
struct StoredClaim:
    task_id: uint256
    solver: address
    commitment: bytes32
    final_root: bytes32
    time: uint256
    # state | challenges opened << 8 | those not yet settled << 72 | newest challenge id << 136
    status: uint256
    winners: uint256
    collected: uint256
    gas: uint256
    shared: uint256
    published: uint256


struct Challenge:
    # the disputed claim
    claim_id: uint256
    # who opened the challenge and locked the challenger bond
    challenger: address
    # the game that decides this challenge
    game_id: uint256
    # CHALLENGE_OPEN, CHALLENGE_LOST, CHALLENGE_WON or CHALLENGE_COLLECTED
    state: uint8
    # metered gas: the challenge transaction's, plus the game's `challenger_gas` once settled
    # CHALLENGER_WON; its share of the prize is prize * gas / claim.gas
    gas: uint256


# a task's `terms` word, unpacked (_terms)
struct Terms:
    n_nodes: uint256
    n_slots: uint256
    steps: uint256
    arity: uint256
    clock: uint256
    window: uint256
    state: uint8


# a claim's `status` word, unpacked (_status)
struct Status:
    state: uint8
    opened: uint256
    unsettled: uint256
    newest: uint256


# a challenge's word, unpacked (_stored_challenge)
struct StoredChallenge:
    state: uint8
    claim_id: uint256
    previous: uint256
    gas: uint256


event TaskPosted:
    task_id: indexed(uint256)
    poster: indexed(address)
    program_id: indexed(bytes32)
    reward: uint256
    solver_bond: uint256
    challenger_bond: uint256
    window: uint256
    deadline: uint256
    # sha2-256 digest of the program's .onnx file (its CIDv1, raw codec), where solvers fetch
    # it; bytes32(0) if the poster serves it otherwise. Not checked here: a fetched file is
    # used only if its program id is the task's
    program_cid: bytes32


event ClaimCommitted:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    solver: indexed(address)
    commitment: bytes32
    # first second at which the claim can no longer be revealed
    reveal_deadline: uint256


event ClaimRevealed:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    solver: indexed(address)
    final_root: bytes32
    # first second at which the claim can no longer be challenged
    challenge_deadline: uint256


event ClaimExpired:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    solver: indexed(address)
    # the whole solver bond, burned
    burned: uint256


event Challenged:
    challenge_id: indexed(uint256)
    claim_id: indexed(uint256)
    challenger: indexed(address)
    game_id: uint256


event ResultPublished:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    slot: indexed(uint256)
    # the slot's tensor commitment in the claimed final state, available on the registry
    commitment: bytes32


event ChallengeSettled:
    challenge_id: indexed(uint256)
    claim_id: indexed(uint256)
    challenger: indexed(address)
    # CHALLENGE_LOST or CHALLENGE_WON
    state: uint8
    # paid to the challenger by this settlement (its bond back if it won, else 0)
    paid: uint256


event BondSlashed:
    challenge_id: indexed(uint256)
    # the challenger that lost its game
    loser: indexed(address)
    # the claim's solver, paid the prize
    winner: indexed(address)
    # the slashed challenger bond
    bond: uint256
    # the solver's share, paid at settlement
    prize: uint256
    # the burned share
    burned: uint256


event ClaimRejected:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    # the first challenge settled with its game CHALLENGER_WON
    challenge_id: indexed(uint256)
    # the slashed solver bond
    bond: uint256
    # its burned share
    burned: uint256
    # the rest, split among the winning challenges in proportion to their metered gas once the
    # window has closed
    prize: uint256


event PrizeCollected:
    challenge_id: indexed(uint256)
    claim_id: indexed(uint256)
    challenger: indexed(address)
    # floor(prize * challenge.gas / claim.gas)
    share: uint256
    # prize - the sum of the shares, burned by the last collection (0 before)
    dust_burned: uint256


event ClaimFinalized:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    solver: indexed(address)
    reward: uint256
    bond: uint256


event RewardReclaimed:
    task_id: indexed(uint256)
    poster: indexed(address)
    reward: uint256


# the bond, stake and reward token
token: public(immutable(IERC20))
# the dispute game that decides every challenge
game: public(immutable(IGame))
# where a claim's result tensors are published, their bytes in the chain's history
availability: public(immutable(IAvailability))

# number of tasks posted; ids run from 1
task_count: public(uint256)
# number of claims committed; ids run from 1
claim_count: public(uint256)
# task id => task (read them with `tasks`)
_tasks: HashMap[uint256, StoredTask]
# task id => bit i set: slot i of the final state is part of the task's result, which a claim
# must make available before it is finalized (docs/SPEC.md 7.11); 0: the root alone
result_slots: public(HashMap[uint256, uint256])
# claim id => claim (read them with `claims`)
_claims: HashMap[uint256, StoredClaim]
# challenge id => challenge, one word (read it with `challenges`): a challenge's id is its
# game's, and its challenger the game's; the claim's challenges are a list through `previous`,
# newest first from the claim's `status`
_challenges: HashMap[uint256, uint256]
# what the contract owes: escrowed rewards + bonds of committed, revealed claims and of open
# challenges + uncollected prizes of rejected claims == its token balance
owed: public(uint256)
# total burned: slashes, expired claims, rounding dust
burned: public(uint256)


@deploy
def __init__(token_: IERC20, game_: IGame, availability_: IAvailability):
    """
    @param token_ The bond token (contracts/Token.vy).
    @param game_ The dispute game; it must let this contract `create` games.
    @param availability_ The data-availability registry (contracts/Availability.vy).
    """
    assert token_.address != empty(address), "tasks: token is the zero address"
    assert game_.address != empty(address), "tasks: game is the zero address"
    assert availability_.address != empty(address), "tasks: availability is the zero address"
    token = token_
    game = game_
    availability = availability_


@external
@nonreentrant
def post_task(
    graph_root: bytes32,
    n_nodes: uint256,
    n_slots: uint256,
    initial_root: bytes32,
    dataset_root: bytes32,
    steps: uint256,
    reward: uint256,
    window: uint256,
    clock: uint256,
    solver_bond: uint256,
    challenger_bond: uint256,
    arity: uint256,
    deadline: uint256,
    result_slots: uint256 = 0,
    program_cid: bytes32 = empty(bytes32),
) -> uint256:
    """
    @notice Posts a task and pulls `reward` from the caller (approve it first).
    @dev The program id is computed here from the program's parts, so every game on the task
         plays the program the poster paid for.
    @param deadline Claims are accepted while `block.timestamp < deadline`.
    @param result_slots Bit i set: slot i of the final state is the result, to be published
           before a claim can be finalized (slots below S and 256); 0 for the root alone.
    @param program_cid The sha2-256 digest of the program file, logged for solvers.
    @return uint256 The task id.
    """
    self._require_program(n_nodes, n_slots, steps, MAX_NODES, MAX_SLOTS)
    self._require_terms(window, clock, arity, solver_bond, challenger_bond)
    assert deadline > block.timestamp, "tasks: deadline not in the future"
    # n_slots <= MAX_SLOTS; a shift of 256 or more leaves 0
    assert result_slots >> n_slots == 0, "tasks: result slot outside the program"

    pid: bytes32 = self._program_id(graph_root, n_nodes, n_slots, initial_root, dataset_root, steps)
    task_id: uint256 = self.task_count + 1
    self.task_count = task_id
    self._tasks[task_id] = StoredTask(
        poster=msg.sender,
        program_id=pid,
        graph_root=graph_root,
        initial_root=initial_root,
        dataset_root=dataset_root,
        terms=n_nodes | n_slots << 32 | steps << 48 | arity << 112 | clock << 120 | window << 152
        | convert(TASK_OPEN, uint256) << 184,
        reward=reward,
        solver_bond=solver_bond,
        challenger_bond=challenger_bond,
        deadline=deadline,
        claim_id=0,
    )
    if result_slots != 0:
        self.result_slots[task_id] = result_slots
    self.owed += reward
    log TaskPosted(
        task_id=task_id,
        poster=msg.sender,
        program_id=pid,
        reward=reward,
        solver_bond=solver_bond,
        challenger_bond=challenger_bond,
        window=window,
        deadline=deadline,
        program_cid=program_cid,
    )
    self._pull(msg.sender, reward)
    return task_id


@external
@nonreentrant
def commit_claim(task_id: uint256, commitment: bytes32) -> uint256:
    """
    @notice Takes the task's claim slot with a commitment to the result and pulls the solver
            bond. Reveal the result with `reveal_claim` within the task's clock, or the whole
            bond is burned.
    @dev One committed or revealed claim per task; a rejected or expired claim reopens the
         task. Compute `commitment` with `claim_commitment(task_id, final_root, msg.sender,
         salt)`: it binds the solver, so a copied commitment cannot be revealed by the copier.
    @return uint256 The claim id.
    """
    self._require_claimable(task_id)
    bond: uint256 = self._tasks[task_id].solver_bond

    claim_id: uint256 = self.claim_count + 1
    self.claim_count = claim_id
    # a new claim's other fields are zero already
    self._claims[claim_id].task_id = task_id
    self._claims[claim_id].solver = msg.sender
    self._claims[claim_id].commitment = commitment
    self._claims[claim_id].time = block.timestamp
    self._claims[claim_id].status = convert(CLAIM_COMMITTED, uint256)
    self._tasks[task_id].claim_id = claim_id
    self.owed += bond
    log ClaimCommitted(
        claim_id=claim_id,
        task_id=task_id,
        solver=msg.sender,
        commitment=commitment,
        reveal_deadline=block.timestamp + self._terms(task_id).clock,
    )
    self._pull(msg.sender, bond)
    return claim_id


@external
@nonreentrant
def reveal_claim(claim_id: uint256, final_root: bytes32, salt: bytes32):
    """
    @notice Reveals the committed result; only the committer, once, while
            `block.timestamp < commit time + clock`. The challenge window opens now.
    """
    task_id: uint256 = self._require_revealable(claim_id, final_root, salt)
    self._claims[claim_id].final_root = final_root
    self._claims[claim_id].time = block.timestamp
    self._set_claim_state(claim_id, CLAIM_LIVE)
    log ClaimRevealed(
        claim_id=claim_id,
        task_id=task_id,
        solver=msg.sender,
        final_root=final_root,
        challenge_deadline=block.timestamp + self._terms(task_id).window,
    )


@external
@nonreentrant
def expire_claim(claim_id: uint256):
    """
    @notice Ends a claim not revealed by its reveal deadline, or one that stood but whose
            result was not published by the close of its window (every challenge settled):
            its whole solver bond is burned (nobody gains from it) and the task reopens.
            Anyone may call it, once.
    """
    task_id: uint256 = self._require_expirable(claim_id)
    bond: uint256 = self._tasks[task_id].solver_bond

    self._set_claim_state(claim_id, CLAIM_EXPIRED)
    self._tasks[task_id].claim_id = 0
    self.owed -= bond
    self.burned += bond
    log ClaimExpired(claim_id=claim_id, task_id=task_id, solver=self._claims[claim_id].solver, burned=bond)
    self._burn(bond)


@external
@nonreentrant
def publish_result(claim_id: uint256, slot: uint256, commitment: bytes32, path: DynArray[bytes32, merkle.MAX_DEPTH]):
    """
    @notice Records slot `slot` of a revealed claim's final state as available: `commitment`
            must be published on the availability registry (its bytes in the chain's history)
            and `path` must prove it slot `slot` of the claimed final root. A claim is
            finalized only once every result slot of its task is recorded. Anyone may call it.
    @param path The sibling hashes of the slot table, bottom up (docs/SPEC.md section 2).
    """
    state: uint8 = self._require_claim(claim_id)
    assert state == CLAIM_LIVE, "tasks: claim not live"
    task_id: uint256 = self._claims[claim_id].task_id
    assert (self.result_slots[task_id] >> slot) & 1 == 1, "tasks: not a result slot"
    assert staticcall availability.available(commitment), "tasks: result not on the availability registry"
    slots_root: bytes32 = merkle._fold(commitment, slot, path, self._terms(task_id).n_slots)
    # the final state is (T, 0); steps <= MAX_STEPS fits the state's u64
    assert merkle._state_root(self._terms(task_id).steps, 0, slots_root) == self._claims[claim_id].final_root, "tasks: not that slot of the claimed state"
    self._claims[claim_id].published |= 1 << slot
    log ResultPublished(claim_id=claim_id, task_id=task_id, slot=slot, commitment=commitment)


@external
@nonreentrant
def challenge(claim_id: uint256) -> uint256:
    """
    @notice Disputes a revealed claim before its window closes, pulls the challenger bond and
            opens a dispute game between the solver and the caller.
    @dev Any number of challenges per claim, each its own game; a claim already rejected can
         still be challenged until its window closes (every winning challenge shares the
         prize). The solver's address may not challenge its own claim.
    @return uint256 The challenge id.
    """
    start: uint256 = msg.gas
    task_id: uint256 = self._require_challengeable(claim_id)
    bond: uint256 = self._tasks[task_id].challenger_bond
    terms: Terms = self._terms(task_id)

    self.owed += bond
    self._pull(msg.sender, bond)

    # the game's id is the challenge's: the game counts every game it creates
    challenge_id: uint256 = extcall game.create(
        self._claims[claim_id].solver,
        msg.sender,
        self._tasks[task_id].initial_root,
        self._claims[claim_id].final_root,
        self._tasks[task_id].graph_root,
        terms.steps,
        terms.n_nodes,
        terms.n_slots,
        terms.arity,
        terms.clock,
    )
    status: uint256 = self._claims[claim_id].status
    # opened and unsettled + 1 (bounded by the calls ever made), and this one the newest
    self._claims[claim_id].status = unsafe_add(status & (2**136 - 1), 1 << 8 | 1 << 72) | challenge_id << 136
    log Challenged(challenge_id=challenge_id, claim_id=claim_id, challenger=msg.sender, game_id=challenge_id)
    # the challenger's first metered transaction (with Game.create); its game adds its moves
    gas: uint256 = (TX_GAS + start - msg.gas) * METER_NUM // METER_DEN
    self._challenges[challenge_id] = convert(CHALLENGE_OPEN, uint256) | claim_id << 8 | (status >> 136) << 72 | gas << 136
    return challenge_id


@external
@nonreentrant
def settle(challenge_id: uint256):
    """
    @notice Settles a challenge by its own game's outcome; anyone may call it, once the game is
            over, once.
            - CHALLENGER_WON: the challenger gets its bond back and becomes one of the claim's
              winners. The first such settlement rejects the claim (its solver bond minus the
              burn becomes the prize, the burn is burned) and reopens the task.
            - SOLVER_WON: the challenger's bond is slashed: the burn share is burned and the
              rest paid to the solver at once, whatever the claim's state.
            - PENDING: reverts.
    """
    ch: Challenge = self._require_challenge(challenge_id)
    assert ch.state == CHALLENGE_OPEN, "tasks: challenge already settled"
    outcome: uint8 = staticcall game.outcome(ch.game_id)
    assert outcome != PENDING, "tasks: game not over"
    assert outcome <= CHALLENGER_WON, "tasks: unknown game outcome"
    # every open challenge is counted in unsettled, so it is at least 1 here
    self._claims[ch.claim_id].status = unsafe_sub(self._claims[ch.claim_id].status, 1 << 72)
    if outcome == CHALLENGER_WON:
        self._settle_challenger_won(challenge_id, ch)
    else:
        self._settle_solver_won(challenge_id, ch)


@external
@nonreentrant
def collect(challenge_id: uint256):
    """
    @notice Pays a winning challenger its share `floor(prize * gas / G)` of the rejected claim's
            prize (`gas`: its metered gas, `G`: the sum over the claim's winners), once the
            claim's window has closed and every challenge of it is settled. Anyone may call
            it; it pays the challenger, once. The last collection of the claim also burns the
            rounding dust.
    """
    claim_id: uint256 = self._require_collectable(challenge_id)
    ch: Challenge = self._challenge(challenge_id)
    challenger: address = ch.challenger
    prize: uint256 = self._prize(self._claims[claim_id].task_id)
    winners: uint256 = self._claims[claim_id].winners
    share: uint256 = self._share(prize, ch.gas, self._claims[claim_id].gas)
    shared: uint256 = self._claims[claim_id].shared + share
    # collected < winners: each winner collects once
    collected: uint256 = unsafe_add(self._claims[claim_id].collected, 1)
    dust: uint256 = 0
    if collected == winners:
        # checked: the shares sum to at most prize, as every winner's gas is in G
        dust = prize - shared

    self._set_challenge_state(challenge_id, CHALLENGE_COLLECTED)
    self._claims[claim_id].collected = collected
    self._claims[claim_id].shared = shared
    self.owed -= share + dust
    self.burned += dust
    log PrizeCollected(challenge_id=challenge_id, claim_id=claim_id, challenger=challenger, share=share, dust_burned=dust)
    self._push(challenger, share)
    self._burn(dust)


@external
@nonreentrant
def finalize(claim_id: uint256):
    """
    @notice Accepts a revealed claim once its window has closed, all its challenges are
            settled with none won by a challenger and its result is published: pays the solver
            the reward and its bond back, and closes the task. Anyone may call it, once.
    """
    task_id: uint256 = self._require_finalizable(claim_id)
    solver: address = self._claims[claim_id].solver
    reward: uint256 = self._tasks[task_id].reward
    bond: uint256 = self._tasks[task_id].solver_bond

    self._set_claim_state(claim_id, CLAIM_FINALIZED)
    self._set_task_state(task_id, TASK_DONE)
    self.owed -= reward + bond
    log ClaimFinalized(claim_id=claim_id, task_id=task_id, solver=solver, reward=reward, bond=bond)
    self._push(solver, reward + bond)


@external
@nonreentrant
def reclaim(task_id: uint256):
    """
    @notice Returns the reward to the poster once the deadline has passed, if the task has no
            committed or revealed claim and was never finalized. Anyone may call it, once.
    """
    self._require_reclaimable(task_id)
    poster: address = self._tasks[task_id].poster
    reward: uint256 = self._tasks[task_id].reward

    self._set_task_state(task_id, TASK_RECLAIMED)
    self.owed -= reward
    log RewardReclaimed(task_id=task_id, poster=poster, reward=reward)
    self._push(poster, reward)


@external
@pure
def claim_commitment(task_id: uint256, final_root: bytes32, solver: address, salt: bytes32) -> bytes32:
    """
    @notice The commitment `commit_claim` takes: keccak256(abi_encode(task_id, final_root,
            solver, salt)), four 32-byte words (docs/SPEC.md 7.4). Choose `salt` at random and
            keep it until the reveal.
    """
    return self._commitment(task_id, final_root, solver, salt)


@external
@pure
def program_id(
    graph_root: bytes32,
    n_nodes: uint256,
    n_slots: uint256,
    initial_root: bytes32,
    dataset_root: bytes32,
    steps: uint256,
) -> bytes32:
    """
    @notice The program id of docs/SPEC.md section 3.4; reverts outside the limits of section
            3 (which are wider than the limits `post_task` imposes).
    """
    self._require_program(n_nodes, n_slots, steps, SPEC_MAX_NODES, SPEC_MAX_SLOTS)
    return self._program_id(graph_root, n_nodes, n_slots, initial_root, dataset_root, steps)


@external
@view
def tasks(task_id: uint256) -> Task:
    """@notice The task (all zero if there is no such task)."""
    return self._task(task_id)


@external
@view
def claims(claim_id: uint256) -> Claim:
    """@notice The claim (all zero if there is no such claim)."""
    return self._claim(claim_id)


@external
@view
def challenges(challenge_id: uint256) -> Challenge:
    """@notice The challenge (all zero if there is no such challenge)."""
    return self._challenge(challenge_id)


@external
@view
def published(claim_id: uint256) -> uint256:
    """@notice Bit i set: slot i of the claim's final state was shown available (`publish_result`)."""
    return self._claims[claim_id].published


@external
@view
def challenges_of(claim_id: uint256, before: uint256, count: uint256) -> DynArray[uint256, PAGE]:
    """
    @notice Ids of up to `count` of the claim's challenges, newest first, opened before
            challenge `before` (0: from the newest); `count` is at most 256. Page through
            `claims(claim_id).challenges` of them, each page `before` the last id of the one
            before it.
    """
    assert count <= PAGE, "tasks: page too large"
    cursor: uint256 = self._status(claim_id).newest
    if before != 0:
        ch: StoredChallenge = self._stored_challenge(before)
        assert ch.state != 0 and ch.claim_id == claim_id, "tasks: not a challenge of this claim"
        cursor = ch.previous
    out: DynArray[uint256, PAGE] = []
    for i: uint256 in range(PAGE):
        if i >= count or cursor == 0:
            break
        out.append(cursor)
        cursor = self._stored_challenge(cursor).previous
    return out


@external
@view
def challenge_count() -> uint256:
    """@notice The largest challenge id so far: a challenge's id is its game's, so ids run from
            1 with gaps where a game was created outside this registry."""
    return staticcall game.game_count()


@external
@view
def reveal_deadline(claim_id: uint256) -> uint256:
    """
    @notice First second at which a committed claim can no longer be revealed and can be
            expired (0: no such claim, or no longer committed).
    """
    c: Claim = self._claim(claim_id)
    if c.state != CLAIM_COMMITTED:
        return 0
    return c.time + self._terms(c.task_id).clock


@external
@view
def challenge_deadline(claim_id: uint256) -> uint256:
    """
    @notice First second at which a revealed claim can no longer be challenged (0: no such
            claim, or not revealed).
    """
    c: Claim = self._claim(claim_id)
    if c.state == 0 or c.state == CLAIM_COMMITTED or c.state == CLAIM_EXPIRED:
        return 0
    return c.time + self._terms(c.task_id).window


@external
@view
def prize_share(challenge_id: uint256) -> uint256:
    """
    @notice The challenge's share of its rejected claim's prize with the winners settled so
            far, floor(prize * gas / G) (0 unless its game was won and settled). Final once the
            window has closed and every challenge of the claim is settled.
    """
    ch: Challenge = self._challenge(challenge_id)
    if ch.state != CHALLENGE_WON and ch.state != CHALLENGE_COLLECTED:
        return 0
    c: Claim = self._claim(ch.claim_id)
    return self._share(self._prize(c.task_id), ch.gas, c.gas)


@external
@view
def claimable(task_id: uint256) -> bool:
    """
    @notice Whether `commit_claim(task_id, ..)` would pass its checks now (token allowance
            aside).
    """
    task: Task = self._task(task_id)
    return (
        task.state == TASK_OPEN and task.claim_id == 0 and block.timestamp < task.deadline
    )


@external
@view
def expirable(claim_id: uint256) -> bool:
    """
    @notice Whether `expire_claim(claim_id)` would pass its checks now.
    """
    c: Claim = self._claim(claim_id)
    if c.state == CLAIM_LIVE:
        return self._is_closed(c) and not self._result_published(self._claims[claim_id].published, c.task_id)
    return c.state == CLAIM_COMMITTED and block.timestamp >= c.time + self._terms(c.task_id).clock


@external
@view
def settleable(challenge_id: uint256) -> bool:
    """
    @notice Whether `settle(challenge_id)` would pass its checks now.
    """
    ch: Challenge = self._challenge(challenge_id)
    if ch.state != CHALLENGE_OPEN:
        return False
    outcome: uint8 = staticcall game.outcome(ch.game_id)
    return outcome == SOLVER_WON or outcome == CHALLENGER_WON


@external
@view
def collectable(challenge_id: uint256) -> bool:
    """
    @notice Whether `collect(challenge_id)` would pass its checks now.
    """
    ch: Challenge = self._challenge(challenge_id)
    c: Claim = self._claim(ch.claim_id)
    return (
        ch.state == CHALLENGE_WON
        and block.timestamp >= c.time + self._terms(c.task_id).window
        and c.unsettled == 0
    )


@external
@view
def finalizable(claim_id: uint256) -> bool:
    """
    @notice Whether `finalize(claim_id)` would pass its checks now.
    """
    c: Claim = self._claim(claim_id)
    return c.state == CLAIM_LIVE and self._is_closed(c) and self._result_published(self._claims[claim_id].published, c.task_id)


@internal
@view
def _is_closed(c: Claim) -> bool:
    return block.timestamp >= c.time + self._terms(c.task_id).window and c.unsettled == 0


@internal
@view
def _result_published(published: uint256, task_id: uint256) -> bool:
    mask: uint256 = self.result_slots[task_id]
    return published & mask == mask


@external
@view
def reclaimable(task_id: uint256) -> bool:
    """
    @notice Whether `reclaim(task_id)` would pass its checks now.
    """
    task: Task = self._task(task_id)
    return task.state == TASK_OPEN and task.claim_id == 0 and block.timestamp >= task.deadline


@internal
@pure
def _commitment(task_id: uint256, final_root: bytes32, solver: address, salt: bytes32) -> bytes32:
    return keccak256(abi_encode(task_id, final_root, solver, salt))


@internal
@view
def _prize(task_id: uint256) -> uint256:
    # what a rejected claim's winners share: its solver bond minus the burn
    bond: uint256 = self._tasks[task_id].solver_bond
    # _burn_share(x) <= x
    return unsafe_sub(bond, self._burn_share(bond))


@internal
@pure
def _share(prize: uint256, weight: uint256, total: uint256) -> uint256:
    # floor(prize * weight / total) without overflow: prize = q * total + r, so the share is
    # q * weight + floor(r * weight / total), where q * weight <= prize and
    # r * weight < total^2 < 2^256 (weight <= total < 2^128, see MAX_GAME_GAS); a winner weighs
    # at least its challenge transaction, so total > 0, but max() keeps a zero from reverting
    t: uint256 = max(total, 1)
    return prize // t * weight + prize % t * weight // t


@internal
@pure
def _program_id(
    graph_root: bytes32,
    n_nodes: uint256,
    n_slots: uint256,
    initial_root: bytes32,
    dataset_root: bytes32,
    steps: uint256,
) -> bytes32:
    # H(0x05 || graph_root || u32(N) || u16(S) || state(0, 0) || dataset_root || u64(T));
    # the converts revert outside the ranges, which _require_program has already checked
    return keccak256(
        concat(
            PROGRAM_TAG,
            graph_root,
            convert(convert(n_nodes, uint32), bytes4),
            convert(convert(n_slots, uint16), bytes2),
            initial_root,
            dataset_root,
            convert(convert(steps, uint64), bytes8),
        )
    )


@internal
def _settle_challenger_won(challenge_id: uint256, ch: Challenge):
    # the challenger's bond is refunded and it joins the winners; the first win rejects the
    # claim, burns the solver bond's burn share and reopens the task (the prize stays owed)
    claim_id: uint256 = ch.claim_id
    task_id: uint256 = self._claims[claim_id].task_id
    bond: uint256 = self._tasks[task_id].challenger_bond
    # its share's weight: the challenge transaction's metered gas plus its moves in the game,
    # read at most at MAX_GAME_GAS so that no game can make the sums overflow
    metered: uint256 = ch.gas + min(staticcall game.challenger_gas(ch.game_id), MAX_GAME_GAS)
    # bounded by the claim's challenges
    self._claims[claim_id].winners = unsafe_add(self._claims[claim_id].winners, 1)
    self._claims[claim_id].gas += metered
    w: uint256 = self._challenges[challenge_id]
    self._challenges[challenge_id] = (w & (2**136 - 1 - STATE_MASK)) | convert(CHALLENGE_WON, uint256) | metered << 136
    self.owed -= bond
    burn: uint256 = 0
    if self._status(claim_id).state == CLAIM_LIVE:
        slashed: uint256 = self._tasks[task_id].solver_bond
        burn = self._burn_share(slashed)
        self._set_claim_state(claim_id, CLAIM_REJECTED)
        self._tasks[task_id].claim_id = 0
        self.owed -= burn
        self.burned += burn
        log ClaimRejected(
            claim_id=claim_id,
            task_id=task_id,
            challenge_id=challenge_id,
            bond=slashed,
            burned=burn,
            # _burn_share(x) <= x
            prize=unsafe_sub(slashed, burn),
        )
    log ChallengeSettled(
        challenge_id=challenge_id, claim_id=claim_id, challenger=ch.challenger, state=CHALLENGE_WON, paid=bond
    )
    self._push(ch.challenger, bond)
    self._burn(burn)


@internal
def _settle_solver_won(challenge_id: uint256, ch: Challenge):
    # the challenger's bond is slashed: the burn share burned, the rest paid to the solver now
    slashed: uint256 = self._tasks[self._claims[ch.claim_id].task_id].challenger_bond
    burn: uint256 = self._burn_share(slashed)
    # _burn_share(x) <= x
    prize: uint256 = unsafe_sub(slashed, burn)
    solver: address = self._claims[ch.claim_id].solver

    self._set_challenge_state(challenge_id, CHALLENGE_LOST)
    self.owed -= slashed
    self.burned += burn
    log ChallengeSettled(
        challenge_id=challenge_id, claim_id=ch.claim_id, challenger=ch.challenger, state=CHALLENGE_LOST, paid=0
    )
    log BondSlashed(
        challenge_id=challenge_id, loser=ch.challenger, winner=solver, bond=slashed, prize=prize, burned=burn
    )
    self._push(solver, prize)
    self._burn(burn)


@internal
@pure
def _burn_share(bond: uint256) -> uint256:
    # rounded up, so that no lost bond is free: a bond of 1 burns 1
    # bond * 5_000 overflows only for bonds above 2^243, more than any token supply
    return (bond * BURN_BPS + BPS - 1) // BPS


@internal
@pure
def _require_program(n_nodes: uint256, n_slots: uint256, steps: uint256, max_nodes: uint256, max_slots: uint256):
    assert n_nodes <= max_nodes, "tasks: too many nodes"
    assert n_slots >= 1, "tasks: no slots"
    assert n_slots <= max_slots, "tasks: too many slots"
    assert steps >= 1, "tasks: no steps"
    assert steps <= MAX_STEPS, "tasks: too many steps"


@internal
@pure
def _require_terms(window: uint256, clock: uint256, arity: uint256, solver_bond: uint256, challenger_bond: uint256):
    assert window >= MIN_WINDOW, "tasks: window below minimum"
    assert window <= MAX_WINDOW, "tasks: window above maximum"
    assert clock >= MIN_CLOCK, "tasks: clock below minimum"
    assert clock <= MAX_CLOCK, "tasks: clock above maximum"
    assert arity >= MIN_ARITY, "tasks: arity below minimum"
    assert arity <= MAX_ARITY, "tasks: arity above maximum"
    assert solver_bond > 0, "tasks: solver bond is zero"
    assert challenger_bond >= MIN_CHALLENGER_BOND, "tasks: challenger bond below minimum"
    assert challenger_bond <= MAX_CHALLENGER_BOND, "tasks: challenger bond above maximum"


@internal
@view
def _require_open_task(task_id: uint256):
    state: uint8 = self._terms(task_id).state
    assert state != 0, "tasks: no such task"
    assert state != TASK_DONE, "tasks: task finalized"
    assert state != TASK_RECLAIMED, "tasks: task reclaimed"
    assert self._tasks[task_id].claim_id == 0, "tasks: task has a live claim"


@internal
@view
def _require_claimable(task_id: uint256):
    self._require_open_task(task_id)
    assert block.timestamp < self._tasks[task_id].deadline, "tasks: deadline passed"


@internal
@view
def _require_reclaimable(task_id: uint256):
    self._require_open_task(task_id)
    assert block.timestamp >= self._tasks[task_id].deadline, "tasks: deadline not reached"


@internal
@view
def _require_claim(claim_id: uint256) -> uint8:
    # returns the claim's state
    state: uint8 = self._status(claim_id).state
    assert state != 0, "tasks: no such claim"
    return state


@internal
@view
def _require_revealable(claim_id: uint256, final_root: bytes32, salt: bytes32) -> uint256:
    # returns the claim's task id
    state: uint8 = self._require_claim(claim_id)
    assert state != CLAIM_EXPIRED, "tasks: claim expired"
    assert state == CLAIM_COMMITTED, "tasks: claim already revealed"
    # field by field, not the whole struct: its settlement fields are not needed here
    task_id: uint256 = self._claims[claim_id].task_id
    assert msg.sender == self._claims[claim_id].solver, "tasks: not the committer"
    # clock <= MAX_CLOCK, so the sum cannot overflow
    assert block.timestamp < self._claims[claim_id].time + self._terms(task_id).clock, "tasks: reveal deadline passed"
    assert self._commitment(task_id, final_root, msg.sender, salt) == self._claims[claim_id].commitment, "tasks: reveal does not match commitment"
    return task_id


@internal
@view
def _require_expirable(claim_id: uint256) -> uint256:
    # returns the claim's task id
    state: uint8 = self._require_claim(claim_id)
    assert state != CLAIM_EXPIRED, "tasks: claim expired"
    if state == CLAIM_LIVE:
        # a claim that stood but withheld its result: decided once its window closed
        task_id: uint256 = self._require_closed(claim_id)
        assert not self._result_published(self._claims[claim_id].published, task_id), "tasks: claim revealed with its result"
        return task_id
    assert state == CLAIM_COMMITTED, "tasks: claim already decided"
    task_id: uint256 = self._claims[claim_id].task_id
    assert block.timestamp >= self._claims[claim_id].time + self._terms(task_id).clock, "tasks: reveal deadline not reached"
    return task_id


@internal
@view
def _require_revealed(claim_id: uint256):
    state: uint8 = self._require_claim(claim_id)
    assert state != CLAIM_COMMITTED, "tasks: claim not revealed"
    assert state != CLAIM_EXPIRED, "tasks: claim expired"


@internal
@view
def _require_challengeable(claim_id: uint256) -> uint256:
    # returns the claim's task id; a rejected claim stays challengeable within its window
    self._require_revealed(claim_id)
    assert self._status(claim_id).state != CLAIM_FINALIZED, "tasks: claim finalized"
    task_id: uint256 = self._claims[claim_id].task_id
    # window <= MAX_WINDOW, so the sum cannot overflow
    assert block.timestamp < self._claims[claim_id].time + self._terms(task_id).window, "tasks: challenge window closed"
    assert msg.sender != self._claims[claim_id].solver, "tasks: solver cannot challenge own claim"
    return task_id


@internal
@view
def _require_closed(claim_id: uint256) -> uint256:
    # returns the claim's task id: its window has closed and every challenge is settled
    task_id: uint256 = self._claims[claim_id].task_id
    assert block.timestamp >= self._claims[claim_id].time + self._terms(task_id).window, "tasks: challenge window open"
    assert self._status(claim_id).unsettled == 0, "tasks: challenges unsettled"
    return task_id


@internal
@view
def _require_finalizable(claim_id: uint256) -> uint256:
    # returns the claim's task id
    self._require_revealed(claim_id)
    state: uint8 = self._status(claim_id).state
    assert state != CLAIM_REJECTED, "tasks: claim rejected"
    assert state != CLAIM_FINALIZED, "tasks: claim finalized"
    task_id: uint256 = self._require_closed(claim_id)
    assert self._result_published(self._claims[claim_id].published, task_id), "tasks: result not published"
    return task_id


@internal
@view
def _require_collectable(challenge_id: uint256) -> uint256:
    # returns the challenge's claim id
    state: uint8 = self._require_challenge(challenge_id).state
    assert state != CHALLENGE_OPEN, "tasks: challenge not settled"
    assert state != CHALLENGE_LOST, "tasks: challenge lost"
    assert state != CHALLENGE_COLLECTED, "tasks: prize already collected"
    claim_id: uint256 = self._stored_challenge(challenge_id).claim_id
    self._require_closed(claim_id)
    return claim_id


@internal
@view
def _require_challenge(challenge_id: uint256) -> Challenge:
    ch: Challenge = self._challenge(challenge_id)
    assert ch.state != 0, "tasks: no such challenge"
    return ch


@internal
@view
def _claim(claim_id: uint256) -> Claim:
    c: StoredClaim = self._claims[claim_id]
    status: Status = self._status(claim_id)
    return Claim(
        task_id=c.task_id, solver=c.solver, commitment=c.commitment, final_root=c.final_root, time=c.time,
        challenges=status.opened, unsettled=status.unsettled, winners=c.winners,
        collected=c.collected, state=status.state, gas=c.gas, shared=c.shared,
    )


@internal
@view
def _challenge(challenge_id: uint256) -> Challenge:
    ch: StoredChallenge = self._stored_challenge(challenge_id)
    if ch.state == 0:
        return empty(Challenge)
    return Challenge(
        claim_id=ch.claim_id,
        challenger=staticcall game.challenger_of(challenge_id),
        game_id=challenge_id,
        state=ch.state,
        gas=ch.gas,
    )


@internal
@view
def _stored_challenge(challenge_id: uint256) -> StoredChallenge:
    w: uint256 = self._challenges[challenge_id]
    return StoredChallenge(
        state=convert(w & STATE_MASK, uint8), claim_id=(w >> 8) & ID_MASK, previous=(w >> 72) & ID_MASK, gas=w >> 136
    )


@internal
def _set_challenge_state(challenge_id: uint256, state: uint8):
    w: uint256 = self._challenges[challenge_id]
    self._challenges[challenge_id] = (w & ~STATE_MASK) | convert(state, uint256)


@internal
@view
def _task(task_id: uint256) -> Task:
    t: StoredTask = self._tasks[task_id]
    terms: Terms = self._terms(task_id)
    return Task(
        poster=t.poster, program_id=t.program_id, graph_root=t.graph_root, initial_root=t.initial_root,
        dataset_root=t.dataset_root, n_nodes=terms.n_nodes, n_slots=terms.n_slots, steps=terms.steps,
        arity=terms.arity, clock=terms.clock, window=terms.window, reward=t.reward, solver_bond=t.solver_bond,
        challenger_bond=t.challenger_bond, deadline=t.deadline, claim_id=t.claim_id, state=terms.state,
    )


@internal
@view
def _terms(task_id: uint256) -> Terms:
    w: uint256 = self._tasks[task_id].terms
    return Terms(
        n_nodes=w & TERM_NODES_MASK, n_slots=(w >> 32) & TERM_SLOTS_MASK, steps=(w >> 48) & TERM_STEPS_MASK,
        arity=(w >> 112) & 255, clock=(w >> 120) & TERM_TIME_MASK, window=(w >> 152) & TERM_TIME_MASK,
        state=convert((w >> 184) & STATE_MASK, uint8),
    )


@internal
def _set_task_state(task_id: uint256, state: uint8):
    w: uint256 = self._tasks[task_id].terms
    self._tasks[task_id].terms = (w & ~(STATE_MASK << 184)) | convert(state, uint256) << 184


@internal
@view
def _status(claim_id: uint256) -> Status:
    w: uint256 = self._claims[claim_id].status
    return Status(
        state=convert(w & STATE_MASK, uint8), opened=(w >> 8) & ID_MASK, unsettled=(w >> 72) & ID_MASK, newest=w >> 136
    )


@internal
def _set_claim_state(claim_id: uint256, state: uint8):
    w: uint256 = self._claims[claim_id].status
    self._claims[claim_id].status = (w & ~STATE_MASK) | convert(state, uint256)


@internal
def _pull(payer: address, amount: uint256):
    if amount != 0:
        assert extcall token.transferFrom(payer, self, amount, default_return_value=True), "tasks: transfer failed"


@internal
def _push(payee: address, amount: uint256):
    if amount != 0:
        assert extcall token.transfer(payee, amount, default_return_value=True), "tasks: transfer failed"


@internal
def _burn(amount: uint256):
    if amount != 0:
        extcall IBurnable(token.address).burn(amount)
