# pragma version ~=0.4.3
"""
@title Task registry: tasks, claims, challenges, bonds and settlement
@notice A poster escrows a reward for running a program (docs/SPEC.md section 3). A solver
        claims the program's final state with a solver bond; until the claim's challenge window
        closes anyone else may challenge it with a challenger bond, and every challenge is an
        independent dispute game (section 6) that the game contract decides. A lost bond pays
        the winner `bond - burn` and burns `burn = ceil(bond * BURN_BPS / 10_000)`. The claim
        stands only if the solver wins every game: one game won by a challenger rejects it and
        reopens the task, whose reward stays escrowed for the next claim. Settlement,
        finalization and reclaiming are permissionless and always pay the party entitled.
        The bond and settlement rules are written out in docs/SPEC.md section 7.
@custom:security Trust assumptions and choices:
                 - The token is the bisectml bond token (contracts/Token.vy): no fees, hooks or
                   blacklists, so `transfer` moves exactly the amount and cannot re-enter.
                   Payments are therefore pushed (`transfer` at settlement) rather than pulled;
                   a payee never has to come back, and no balance is left to forget. Every
                   mutating function is `@nonreentrant` and updates storage before it calls out.
                 - The contract holds exactly `owed`: escrowed rewards plus live bonds plus the
                   solvers' credits. Tokens sent to it directly are not accounted and stay
                   there for good.
                 - The game contract is trusted to decide each game correctly and to end every
                   game within its chess clocks; a game that never ends keeps its challenge
                   unsettled and so blocks the claim's finalization. `post_task` accepts only
                   terms the game's `create` accepts (arity, slots, nodes, steps, clock), so
                   every claim can be challenged; the game must have its referee bound before
                   the first task is posted.
                 - The challenge window must exceed the worst-case time an honest challenger
                   can be censored; `MIN_WINDOW` is one day. The clock must cover recomputing a
                   step on a modest machine plus censorship; `MIN_CLOCK` is six hours.
                 - The solver may not challenge its own claim from the solver address; sybil
                   challengers from other addresses are deterred economically: each game they
                   lose on purpose burns half of their bond, and since games are independent a
                   lost sybil game never delays nor decides an honest challenger's game.
"""

from ethereum.ercs import IERC20
from contracts import IGame


interface IBurnable:
    def burn(amount: uint256): nonpayable


# game outcomes, as contracts/IGame.vyi numbers them (interface constants are not importable)
PENDING: constant(uint8) = 0
SOLVER_WON: constant(uint8) = 1
CHALLENGER_WON: constant(uint8) = 2

# task states
TASK_OPEN: constant(uint8) = 1
TASK_DONE: constant(uint8) = 2
TASK_RECLAIMED: constant(uint8) = 3

# claim states
CLAIM_LIVE: constant(uint8) = 1
CLAIM_REJECTED: constant(uint8) = 2
CLAIM_FINALIZED: constant(uint8) = 3

# challenge states: its game not yet settled, lost by the challenger, won by the challenger, or
# voided because another challenger had already rejected the claim (bond refunded)
CHALLENGE_OPEN: constant(uint8) = 1
CHALLENGE_LOST: constant(uint8) = 2
CHALLENGE_WON: constant(uint8) = 3
CHALLENGE_VOID: constant(uint8) = 4

# share of every lost bond that is burned, in basis points (the rest goes to the winner)
BURN_BPS: public(constant(uint256)) = 5_000
BPS: constant(uint256) = 10_000

# the challenge window, seconds: at least one day, at most thirty
MIN_WINDOW: public(constant(uint256)) = 86_400
MAX_WINDOW: public(constant(uint256)) = 2_592_000
# each party's chess clock per game, seconds: at least six hours, at most thirty days
MIN_CLOCK: public(constant(uint256)) = 21_600
MAX_CLOCK: public(constant(uint256)) = 2_592_000
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
    # each party's chess clock per game, seconds
    clock: uint256
    # seconds after a claim during which it can be challenged
    window: uint256
    # paid to the solver whose claim is finalized; escrowed until then
    reward: uint256
    # locked by every claim
    solver_bond: uint256
    # locked by every challenge
    challenger_bond: uint256
    # claims are accepted while block.timestamp < deadline; the reward is reclaimable from then
    deadline: uint256
    # the live claim, or the finalized one once the task is done; 0 if none
    claim_id: uint256
    # TASK_OPEN, TASK_DONE (a claim was finalized) or TASK_RECLAIMED
    state: uint8


struct Claim:
    # the task this claim answers
    task_id: uint256
    # who posted the claim and locked the solver bond
    solver: address
    # the claimed result, state(T, 0)
    final_root: bytes32
    # block.timestamp of the claim; challenges are accepted until time + window
    time: uint256
    # number of challenges opened against the claim
    challenges: uint256
    # number of those not yet settled
    unsettled: uint256
    # the solver's winnings from games it won, paid out with the claim (never reset)
    credit: uint256
    # CLAIM_LIVE, CLAIM_REJECTED or CLAIM_FINALIZED
    state: uint8


struct Challenge:
    # the disputed claim
    claim_id: uint256
    # who opened the challenge and locked the challenger bond
    challenger: address
    # the game that decides this challenge
    game_id: uint256
    # CHALLENGE_OPEN, CHALLENGE_LOST, CHALLENGE_WON or CHALLENGE_VOID
    state: uint8


event TaskPosted:
    task_id: indexed(uint256)
    poster: indexed(address)
    program_id: indexed(bytes32)
    reward: uint256
    solver_bond: uint256
    challenger_bond: uint256
    window: uint256
    deadline: uint256


event ClaimPosted:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    solver: indexed(address)
    final_root: bytes32
    challenge_deadline: uint256


event Challenged:
    challenge_id: indexed(uint256)
    claim_id: indexed(uint256)
    challenger: indexed(address)
    game_id: uint256


event ChallengeSettled:
    challenge_id: indexed(uint256)
    claim_id: indexed(uint256)
    challenger: indexed(address)
    # CHALLENGE_LOST, CHALLENGE_WON or CHALLENGE_VOID
    state: uint8
    # paid to the challenger by this settlement
    paid: uint256


event BondSlashed:
    challenge_id: indexed(uint256)
    loser: indexed(address)
    winner: indexed(address)
    # the slashed bond
    bond: uint256
    # the winner's share: paid to a challenger, credited to a solver
    prize: uint256
    # the burned share
    burned: uint256


event ClaimRejected:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    challenge_id: indexed(uint256)
    # credit from earlier won games, paid to the solver on rejection
    credit_paid: uint256


event ClaimFinalized:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    solver: indexed(address)
    reward: uint256
    bond: uint256
    credit: uint256


event RewardReclaimed:
    task_id: indexed(uint256)
    poster: indexed(address)
    reward: uint256


# the bond, stake and reward token
token: public(immutable(IERC20))
# the dispute game that decides every challenge
game: public(immutable(IGame))

# number of tasks posted; ids run from 1
task_count: public(uint256)
# number of claims posted; ids run from 1
claim_count: public(uint256)
# number of challenges opened; ids run from 1
challenge_count: public(uint256)
# task id => task
tasks: public(HashMap[uint256, Task])
# claim id => claim
claims: public(HashMap[uint256, Claim])
# challenge id => challenge
challenges: public(HashMap[uint256, Challenge])
# claim id => i => id of the claim's i-th challenge
_challenge_at: HashMap[uint256, HashMap[uint256, uint256]]
# what the contract owes: escrowed rewards + live bonds + unpaid credits == its token balance
owed: public(uint256)
# total burned by settlements
burned: public(uint256)


@deploy
def __init__(token_: IERC20, game_: IGame):
    """
    @param token_ The bond token (contracts/Token.vy).
    @param game_ The dispute game; it must let this contract `create` games.
    """
    assert token_.address != empty(address), "tasks: token is the zero address"
    assert game_.address != empty(address), "tasks: game is the zero address"
    token = token_
    game = game_


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
) -> uint256:
    """
    @notice Posts a task and pulls `reward` from the caller (approve it first).
    @dev The program id is computed here from the program's parts, so every game on the task
         plays the program the poster paid for.
    @param deadline Claims are accepted while `block.timestamp < deadline`.
    @return uint256 The task id.
    """
    self._require_program(n_nodes, n_slots, steps, MAX_NODES, MAX_SLOTS)
    self._require_terms(window, clock, arity, solver_bond, challenger_bond)
    assert deadline > block.timestamp, "tasks: deadline not in the future"

    pid: bytes32 = self._program_id(graph_root, n_nodes, n_slots, initial_root, dataset_root, steps)
    task_id: uint256 = self.task_count + 1
    self.task_count = task_id
    self.tasks[task_id] = Task(
        poster=msg.sender,
        program_id=pid,
        graph_root=graph_root,
        initial_root=initial_root,
        dataset_root=dataset_root,
        n_nodes=n_nodes,
        n_slots=n_slots,
        steps=steps,
        arity=arity,
        clock=clock,
        window=window,
        reward=reward,
        solver_bond=solver_bond,
        challenger_bond=challenger_bond,
        deadline=deadline,
        claim_id=0,
        state=TASK_OPEN,
    )
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
    )
    self._pull(msg.sender, reward)
    return task_id


@external
@nonreentrant
def claim(task_id: uint256, final_root: bytes32) -> uint256:
    """
    @notice Claims that the task's program ends in `final_root` and pulls the solver bond.
    @dev One live claim per task; a rejected claim reopens the task.
    @return uint256 The claim id.
    """
    self._require_claimable(task_id)
    bond: uint256 = self.tasks[task_id].solver_bond

    claim_id: uint256 = self.claim_count + 1
    self.claim_count = claim_id
    self.claims[claim_id] = Claim(
        task_id=task_id,
        solver=msg.sender,
        final_root=final_root,
        time=block.timestamp,
        challenges=0,
        unsettled=0,
        credit=0,
        state=CLAIM_LIVE,
    )
    self.tasks[task_id].claim_id = claim_id
    self.owed += bond
    log ClaimPosted(
        claim_id=claim_id,
        task_id=task_id,
        solver=msg.sender,
        final_root=final_root,
        challenge_deadline=block.timestamp + self.tasks[task_id].window,
    )
    self._pull(msg.sender, bond)
    return claim_id


@external
@nonreentrant
def challenge(claim_id: uint256) -> uint256:
    """
    @notice Disputes a live claim before its window closes, pulls the challenger bond and
            opens a dispute game between the solver and the caller.
    @dev Any number of challenges per claim, each its own game; the solver's address may not
         challenge its own claim.
    @return uint256 The challenge id.
    """
    task_id: uint256 = self._require_challengeable(claim_id)
    bond: uint256 = self.tasks[task_id].challenger_bond

    challenge_id: uint256 = self.challenge_count + 1
    self.challenge_count = challenge_id
    self.challenges[challenge_id] = Challenge(
        claim_id=claim_id, challenger=msg.sender, game_id=0, state=CHALLENGE_OPEN
    )
    n: uint256 = self.claims[claim_id].challenges
    self._challenge_at[claim_id][n] = challenge_id
    # both counters are bounded by challenge_count, itself bounded by the calls ever made
    self.claims[claim_id].challenges = unsafe_add(n, 1)
    self.claims[claim_id].unsettled = unsafe_add(self.claims[claim_id].unsettled, 1)
    self.owed += bond
    self._pull(msg.sender, bond)

    game_id: uint256 = extcall game.create(
        self.claims[claim_id].solver,
        msg.sender,
        self.tasks[task_id].initial_root,
        self.claims[claim_id].final_root,
        self.tasks[task_id].graph_root,
        self.tasks[task_id].steps,
        self.tasks[task_id].n_nodes,
        self.tasks[task_id].n_slots,
        self.tasks[task_id].arity,
        self.tasks[task_id].clock,
    )
    self.challenges[challenge_id].game_id = game_id
    log Challenged(challenge_id=challenge_id, claim_id=claim_id, challenger=msg.sender, game_id=game_id)
    return challenge_id


@external
@nonreentrant
def settle(challenge_id: uint256):
    """
    @notice Settles a challenge; anyone may call it, once.
            - The claim was already rejected through another challenge: the challenger gets
              its bond back at once, whatever its game says (VOID).
            - Its game says CHALLENGER_WON: the challenger gets its bond back plus the
              solver's bond minus the burn, the claim is rejected, the solver is paid the
              credit of games it won earlier, and the task reopens.
            - Its game says SOLVER_WON: the solver is credited the challenger's bond minus the
              burn, paid when the claim is finalized; the claim stays live.
            - Its game is still PENDING: reverts.
    """
    ch: Challenge = self._require_challenge(challenge_id)
    assert ch.state == CHALLENGE_OPEN, "tasks: challenge already settled"
    # every open challenge is counted in unsettled, so it is at least 1 here
    self.claims[ch.claim_id].unsettled = unsafe_sub(self.claims[ch.claim_id].unsettled, 1)

    if self.claims[ch.claim_id].state == CLAIM_REJECTED:
        self._settle_void(challenge_id, ch)
        return

    outcome: uint8 = staticcall game.outcome(ch.game_id)
    assert outcome != PENDING, "tasks: game not over"
    assert outcome <= CHALLENGER_WON, "tasks: unknown game outcome"
    if outcome == CHALLENGER_WON:
        self._settle_challenger_won(challenge_id, ch)
    else:
        self._settle_solver_won(challenge_id, ch)


@external
@nonreentrant
def finalize(claim_id: uint256):
    """
    @notice Accepts a claim once its window has closed and all its challenges are settled
            (the solver won every one): pays the solver the reward, its bond back and its
            credit, and closes the task. Anyone may call it, once.
    """
    task_id: uint256 = self._require_finalizable(claim_id)
    solver: address = self.claims[claim_id].solver
    reward: uint256 = self.tasks[task_id].reward
    bond: uint256 = self.tasks[task_id].solver_bond
    credit: uint256 = self.claims[claim_id].credit
    paid: uint256 = reward + bond + credit

    self.claims[claim_id].state = CLAIM_FINALIZED
    self.tasks[task_id].state = TASK_DONE
    self.owed -= paid
    log ClaimFinalized(claim_id=claim_id, task_id=task_id, solver=solver, reward=reward, bond=bond, credit=credit)
    self._push(solver, paid)


@external
@nonreentrant
def reclaim(task_id: uint256):
    """
    @notice Returns the reward to the poster once the deadline has passed, if the task has no
            live claim and was never finalized. Anyone may call it, once.
    """
    self._require_reclaimable(task_id)
    poster: address = self.tasks[task_id].poster
    reward: uint256 = self.tasks[task_id].reward

    self.tasks[task_id].state = TASK_RECLAIMED
    self.owed -= reward
    log RewardReclaimed(task_id=task_id, poster=poster, reward=reward)
    self._push(poster, reward)


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
def challenges_of(claim_id: uint256, start: uint256, count: uint256) -> DynArray[uint256, PAGE]:
    """
    @notice Ids of the claim's challenges `start .. start + count - 1` in the order they were
            opened (fewer at the end of the list); `count` is at most 256. Page through
            `claims(claim_id).challenges` of them.
    """
    assert count <= PAGE, "tasks: page too large"
    n: uint256 = self.claims[claim_id].challenges
    out: DynArray[uint256, PAGE] = []
    for i: uint256 in range(PAGE):
        if i >= count or start + i >= n:
            break
        out.append(self._challenge_at[claim_id][start + i])
    return out


@external
@view
def challenge_deadline(claim_id: uint256) -> uint256:
    """
    @notice First second at which the claim can no longer be challenged (0: no such claim).
    """
    c: Claim = self.claims[claim_id]
    if c.state == 0:
        return 0
    return c.time + self.tasks[c.task_id].window


@external
@view
def claimable(task_id: uint256) -> bool:
    """
    @notice Whether `claim(task_id, ..)` would pass its checks now (token allowance aside).
    """
    task: Task = self.tasks[task_id]
    return (
        task.state == TASK_OPEN and task.claim_id == 0 and block.timestamp < task.deadline
    )


@external
@view
def settleable(challenge_id: uint256) -> bool:
    """
    @notice Whether `settle(challenge_id)` would pass its checks now.
    """
    ch: Challenge = self.challenges[challenge_id]
    if ch.state != CHALLENGE_OPEN:
        return False
    if self.claims[ch.claim_id].state == CLAIM_REJECTED:
        return True
    outcome: uint8 = staticcall game.outcome(ch.game_id)
    return outcome == SOLVER_WON or outcome == CHALLENGER_WON


@external
@view
def finalizable(claim_id: uint256) -> bool:
    """
    @notice Whether `finalize(claim_id)` would pass its checks now.
    """
    c: Claim = self.claims[claim_id]
    return (
        c.state == CLAIM_LIVE
        and block.timestamp >= c.time + self.tasks[c.task_id].window
        and c.unsettled == 0
    )


@external
@view
def reclaimable(task_id: uint256) -> bool:
    """
    @notice Whether `reclaim(task_id)` would pass its checks now.
    """
    task: Task = self.tasks[task_id]
    return task.state == TASK_OPEN and task.claim_id == 0 and block.timestamp >= task.deadline


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
def _settle_void(challenge_id: uint256, ch: Challenge):
    # the claim was rejected through another challenge: refund the bond, no reward
    bond: uint256 = self.tasks[self.claims[ch.claim_id].task_id].challenger_bond
    self.challenges[challenge_id].state = CHALLENGE_VOID
    self.owed -= bond
    log ChallengeSettled(
        challenge_id=challenge_id, claim_id=ch.claim_id, challenger=ch.challenger, state=CHALLENGE_VOID, paid=bond
    )
    self._push(ch.challenger, bond)


@internal
def _settle_challenger_won(challenge_id: uint256, ch: Challenge):
    # the challenger takes its bond and the solver's bond minus the burn; the claim is
    # rejected, the solver's credit from earlier games is paid, and the task reopens
    task_id: uint256 = self.claims[ch.claim_id].task_id
    solver: address = self.claims[ch.claim_id].solver
    credit: uint256 = self.claims[ch.claim_id].credit
    bond: uint256 = self.tasks[task_id].challenger_bond
    slashed: uint256 = self.tasks[task_id].solver_bond
    burn: uint256 = self._burn_share(slashed)
    # _burn_share(x) <= x
    prize: uint256 = unsafe_sub(slashed, burn)
    paid: uint256 = bond + prize

    self.challenges[challenge_id].state = CHALLENGE_WON
    self.claims[ch.claim_id].state = CLAIM_REJECTED
    self.tasks[task_id].claim_id = 0
    self.owed -= bond + slashed + credit
    self.burned += burn
    log ChallengeSettled(
        challenge_id=challenge_id, claim_id=ch.claim_id, challenger=ch.challenger, state=CHALLENGE_WON, paid=paid
    )
    log BondSlashed(
        challenge_id=challenge_id, loser=solver, winner=ch.challenger, bond=slashed, prize=prize, burned=burn
    )
    log ClaimRejected(claim_id=ch.claim_id, task_id=task_id, challenge_id=challenge_id, credit_paid=credit)
    self._push(ch.challenger, paid)
    self._push(solver, credit)
    self._burn(burn)


@internal
def _settle_solver_won(challenge_id: uint256, ch: Challenge):
    # the solver is credited the challenger's bond minus the burn; the claim stays live
    slashed: uint256 = self.tasks[self.claims[ch.claim_id].task_id].challenger_bond
    burn: uint256 = self._burn_share(slashed)
    # _burn_share(x) <= x
    prize: uint256 = unsafe_sub(slashed, burn)

    self.challenges[challenge_id].state = CHALLENGE_LOST
    self.claims[ch.claim_id].credit += prize
    # the prize stays owed, as credit; only the burn leaves
    self.owed -= burn
    self.burned += burn
    log ChallengeSettled(
        challenge_id=challenge_id, claim_id=ch.claim_id, challenger=ch.challenger, state=CHALLENGE_LOST, paid=0
    )
    log BondSlashed(
        challenge_id=challenge_id,
        loser=ch.challenger,
        winner=self.claims[ch.claim_id].solver,
        bond=slashed,
        prize=prize,
        burned=burn,
    )
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
    assert challenger_bond > 0, "tasks: challenger bond is zero"


@internal
@view
def _require_open_task(task_id: uint256):
    state: uint8 = self.tasks[task_id].state
    assert state != 0, "tasks: no such task"
    assert state != TASK_DONE, "tasks: task finalized"
    assert state != TASK_RECLAIMED, "tasks: task reclaimed"
    assert self.tasks[task_id].claim_id == 0, "tasks: task has a live claim"


@internal
@view
def _require_claimable(task_id: uint256):
    self._require_open_task(task_id)
    assert block.timestamp < self.tasks[task_id].deadline, "tasks: deadline passed"


@internal
@view
def _require_reclaimable(task_id: uint256):
    self._require_open_task(task_id)
    assert block.timestamp >= self.tasks[task_id].deadline, "tasks: deadline not reached"


@internal
@view
def _require_live_claim(claim_id: uint256) -> uint256:
    # returns the claim's task id
    state: uint8 = self.claims[claim_id].state
    assert state != 0, "tasks: no such claim"
    assert state != CLAIM_REJECTED, "tasks: claim rejected"
    assert state != CLAIM_FINALIZED, "tasks: claim finalized"
    return self.claims[claim_id].task_id


@internal
@view
def _require_challengeable(claim_id: uint256) -> uint256:
    # returns the claim's task id
    task_id: uint256 = self._require_live_claim(claim_id)
    # window <= MAX_WINDOW, so the sum cannot overflow
    assert block.timestamp < self.claims[claim_id].time + self.tasks[task_id].window, "tasks: challenge window closed"
    assert msg.sender != self.claims[claim_id].solver, "tasks: solver cannot challenge own claim"
    return task_id


@internal
@view
def _require_finalizable(claim_id: uint256) -> uint256:
    # returns the claim's task id
    task_id: uint256 = self._require_live_claim(claim_id)
    assert block.timestamp >= self.claims[claim_id].time + self.tasks[task_id].window, "tasks: challenge window open"
    assert self.claims[claim_id].unsettled == 0, "tasks: challenges unsettled"
    return task_id


@internal
@view
def _require_challenge(challenge_id: uint256) -> Challenge:
    ch: Challenge = self.challenges[challenge_id]
    assert ch.state != 0, "tasks: no such challenge"
    return ch


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
