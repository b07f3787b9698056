"""Unit tests of contracts/Tasks.vy (with contracts/Token.vy and contracts/mocks/MockGame.vy).

One section per external function: the happy path with its payments and events, then every
revert with its reason, then the time edges one second on each side. The adversarial scenarios
of docs/SPEC.md 7.7 (front-running copiers, self-challenge through a sybil, sybil swarms) follow,
each played with raw calls from several accounts while MockGame decides the games.
"""

from __future__ import annotations

import re
from pathlib import Path

import boa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.commit.commitments import keccak, program_id

ROOT = Path(__file__).resolve().parents[2]

# --- constants mirrored from the contracts ---------------------------------------------------

PENDING, SOLVER_WON, CHALLENGER_WON = 0, 1, 2
TASK_OPEN, TASK_DONE, TASK_RECLAIMED = 1, 2, 3
CLAIM_COMMITTED, CLAIM_LIVE, CLAIM_REJECTED, CLAIM_FINALIZED, CLAIM_EXPIRED = 1, 2, 3, 4, 5
CHALLENGE_OPEN, CHALLENGE_LOST, CHALLENGE_WON, CHALLENGE_COLLECTED = 1, 2, 3, 4
MIN_WINDOW = MIN_CLOCK = 172_800  # two days

E18 = 10**18
REWARD = 1_000 * E18
SOLVER_BOND = 100 * E18
CHALLENGER_BOND = 250 * E18  # the protocol minimum (Tasks.vy MIN_CHALLENGER_BOND)
WINDOW = MIN_WINDOW
CLOCK = MIN_CLOCK
ARITY = 4
DEADLINE_IN = 864_000  # ten days

GRAPH = keccak(b"graph")
INITIAL = keccak(b"initial")
DATASET = keccak(b"dataset")
FINAL = keccak(b"final")
SALT = keccak(b"salt")
N_NODES, N_SLOTS, STEPS = 12, 30, 1_000


def burn_of(bond: int) -> int:
    """ceil(bond * 5_000 / 10_000): the burn rounds up."""
    return -(-bond * 5_000 // 10_000)


def commitment(task_id: int, root: bytes, solver: str, salt: bytes = SALT) -> bytes:
    """keccak256(abi_encode(task_id, final_root, solver, salt)), written out by hand: four
    32-byte words, the address left-padded with zeros (docs/SPEC.md 7.4)."""
    return keccak(
        task_id.to_bytes(32, "big"), root, bytes(12) + bytes.fromhex(str(solver)[2:]), salt
    )


def prize_of(bond: int) -> int:
    """What a rejected claim's winners share: the solver bond minus its burn."""
    return bond - burn_of(bond)


def task_args(**over) -> list:
    """post_task's arguments in order, defaults overridden by name."""
    a = dict(
        graph_root=GRAPH,
        n_nodes=N_NODES,
        n_slots=N_SLOTS,
        initial_root=INITIAL,
        dataset_root=DATASET,
        steps=STEPS,
        reward=REWARD,
        window=WINDOW,
        clock=CLOCK,
        solver_bond=SOLVER_BOND,
        challenger_bond=CHALLENGER_BOND,
        arity=ARITY,
        deadline=boa.env.timestamp + DEADLINE_IN,
    )
    unknown = set(over) - set(a)
    assert not unknown, unknown
    a.update(over)
    return list(a.values())


def events(contract, name: str) -> list:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


@pytest.fixture
def poster(funded):
    return funded[0]


@pytest.fixture
def solver(funded):
    return funded[1]


@pytest.fixture
def challengers(funded):
    return funded[2:]


@pytest.fixture
def stranger():
    """An address with no tokens and no approval: permissionless calls come from it."""
    return boa.env.generate_address("stranger")


@pytest.fixture
def task_id(tasks, poster):
    return tasks.post_task(*task_args(), sender=poster)


@pytest.fixture
def claim_id(tasks, task_id, solver):
    """A revealed claim of FINAL by `solver`: its challenge window has just opened."""
    return _claim(tasks, task_id, solver)


@pytest.fixture
def committed_id(tasks, task_id, solver):
    """A committed, not yet revealed claim of FINAL by `solver`."""
    return tasks.commit_claim(task_id, commitment(task_id, FINAL, solver), sender=solver)


def _claim(tasks, task_id, who, root=FINAL, salt=SALT):
    """Commits and reveals at once; returns the claim id."""
    cid = tasks.commit_claim(task_id, commitment(task_id, root, who, salt), sender=who)
    tasks.reveal_claim(cid, root, salt, sender=who)
    return cid


def _challenge(tasks, claim_id, who):
    return tasks.challenge(claim_id, sender=who)


def _decide(tasks, mock_game, challenge_id, outcome):
    mock_game.set_outcome(tasks.challenges(challenge_id).game_id, outcome)


def _past_window(tasks, claim_id):
    boa.env.time_travel(seconds=tasks.challenge_deadline(claim_id) - boa.env.timestamp)


def _past_reveal(tasks, claim_id):
    boa.env.time_travel(seconds=tasks.reveal_deadline(claim_id) - boa.env.timestamp)


def _assert_solvent(tasks, token):
    assert token.balanceOf(tasks) == tasks.owed()


# --- Token -------------------------------------------------------------------------------------


def test_token__metadata(token, deployer):
    assert token.name() == "bisectml bond"
    assert token.symbol() == "BOND"
    assert token.decimals() == 18
    assert token.totalSupply() == 0
    assert token.owner() == deployer
    assert token.is_minter(deployer)


def test_token__mint_by_minter(token, deployer, accounts):
    token.mint(accounts[0], 5, sender=deployer)
    assert token.balanceOf(accounts[0]) == 5
    assert token.totalSupply() == 5


def test_token__mint_by_non_minter__reverts(token, accounts):
    with boa.reverts("erc20: access is denied"):
        token.mint(accounts[0], 5, sender=accounts[0])


def test_token__set_minter_then_mint(token, deployer, accounts):
    token.set_minter(accounts[1], True, sender=deployer)
    token.mint(accounts[0], 7, sender=accounts[1])
    assert token.balanceOf(accounts[0]) == 7


def test_token__burn_own_balance(token, funded):
    supply = token.totalSupply()
    token.burn(3, sender=funded[0])
    assert token.totalSupply() == supply - 3


def test_token__burn_more_than_balance__reverts(token, stranger):
    with boa.reverts("erc20: burn amount exceeds balance"):
        token.burn(1, sender=stranger)


def test_token__permit_and_burn_from_not_exported(token):
    assert not hasattr(token, "permit")
    assert not hasattr(token, "burn_from")


# --- MockGame ----------------------------------------------------------------------------------


def test_mock_game__create_by_non_tasks__reverts(mock_game, stranger):
    with boa.reverts("game: caller is not tasks"):
        mock_game.create(stranger, stranger, GRAPH, GRAPH, GRAPH, 1, 1, 1, 2, 1, sender=stranger)


def test_mock_game__set_tasks_twice__reverts(tasks, mock_game, deployer, stranger):  # tasks: the first set_tasks
    with boa.reverts("game: tasks already set"):
        mock_game.set_tasks(stranger, sender=deployer)


# --- deployment --------------------------------------------------------------------------------


def test_init__wiring(tasks, token, mock_game):
    assert tasks.token() == token.address
    assert tasks.game() == mock_game.address
    assert tasks.owed() == 0
    assert tasks.BURN_BPS() == 5_000
    assert tasks.MIN_WINDOW() == 172_800
    assert tasks.MIN_CLOCK() == 172_800


def test_init__fits_eip170(tasks):
    """The registry deploys on mainnet: its runtime code is within EIP-170's 24,576 bytes."""
    assert len(boa.env.get_code(tasks.address)) <= 24_576


def test_constants__minimums_cover_censorship_and_moves(tasks):
    """Posters cannot choose clocks or windows an honest party cannot play through: both floors
    are at least a day of censorship plus a day for its ~31 moves (docs/SPEC.md 7.2)."""
    assert tasks.MIN_CLOCK() >= 2 * 86_400
    assert tasks.MIN_WINDOW() >= 2 * 86_400
    assert tasks.MAX_CLOCK() == tasks.MAX_WINDOW() == 2_592_000


def test_challenger_bond__the_protocols_range_at_its_edges(tasks, poster):
    """Property (issue: a swarm against an honest solver is never free; a task is always
    challengeable): every task's challenger bond lies in one protocol range, the market's
    (verifier/market/economics.py mirrors it), whoever posts it. Both edges are accepted; one
    unit outside either is refused (the parametrized reverts above)."""
    from verifier.market import economics

    assert tasks.MIN_CHALLENGER_BOND() == economics.MIN_CHALLENGER_BOND == 250 * E18
    assert tasks.MAX_CHALLENGER_BOND() == economics.MAX_CHALLENGER_BOND == 10**21
    for cb in (tasks.MIN_CHALLENGER_BOND(), tasks.MAX_CHALLENGER_BOND()):
        tid = tasks.post_task(*task_args(challenger_bond=cb), sender=poster)
        assert tasks.tasks(tid).challenger_bond == cb


def test_init__zero_token__reverts(tasks_deployer, mock_game, availability):
    with boa.reverts("tasks: token is the zero address"):
        tasks_deployer.deploy("0x" + "00" * 20, mock_game, availability)


def test_init__zero_game__reverts(tasks_deployer, token, availability):
    with boa.reverts("tasks: game is the zero address"):
        tasks_deployer.deploy(token, "0x" + "00" * 20, availability)


def test_init__zero_availability__reverts(tasks_deployer, token, mock_game):
    with boa.reverts("tasks: availability is the zero address"):
        tasks_deployer.deploy(token, mock_game, "0x" + "00" * 20)


# --- program id (docs/SPEC.md 3.4) -------------------------------------------------------------


words = st.binary(min_size=32, max_size=32)


@settings(max_examples=50, deadline=None)
@given(
    graph=words,
    initial=words,
    dataset=words,
    n_nodes=st.integers(0, 2**32 - 1),
    n_slots=st.integers(1, 2**16 - 1),
    steps=st.integers(1, 2**63 - 1),
)
def test_program_id__matches_verifier(tasks, graph, initial, dataset, n_nodes, n_slots, steps):
    expected = program_id(graph, n_nodes, n_slots, initial, dataset, steps)
    assert tasks.program_id(graph, n_nodes, n_slots, initial, dataset, steps) == expected


@pytest.mark.parametrize(
    "n_nodes, n_slots, steps",
    [(0, 1, 1), (2**32 - 1, 2**16 - 1, 2**63 - 1), (1, 2, 3)],
)
def test_program_id__edges_match_verifier(tasks, n_nodes, n_slots, steps):
    expected = program_id(GRAPH, n_nodes, n_slots, INITIAL, bytes(32), steps)
    assert tasks.program_id(GRAPH, n_nodes, n_slots, INITIAL, bytes(32), steps) == expected


def test_post_task__stores_the_verifier_program_id(tasks, task_id):
    assert tasks.tasks(task_id).program_id == program_id(GRAPH, N_NODES, N_SLOTS, INITIAL, DATASET, STEPS)


# --- post_task ---------------------------------------------------------------------------------


def test_post_task__stores_task_and_pulls_reward(tasks, token, poster):
    before = token.balanceOf(poster)
    deadline = boa.env.timestamp + DEADLINE_IN
    tid = tasks.post_task(*task_args(deadline=deadline), sender=poster)
    (ev,) = events(tasks, "TaskPosted")
    assert tid == 1 and tasks.task_count() == 1
    assert (ev.task_id, ev.poster, ev.reward, ev.deadline) == (1, poster, REWARD, deadline)
    assert (ev.solver_bond, ev.challenger_bond, ev.window) == (SOLVER_BOND, CHALLENGER_BOND, WINDOW)
    t = tasks.tasks(tid)
    assert t.poster == poster
    assert (t.graph_root, t.initial_root, t.dataset_root) == (GRAPH, INITIAL, DATASET)
    assert (t.n_nodes, t.n_slots, t.steps, t.arity, t.clock, t.window) == (
        N_NODES, N_SLOTS, STEPS, ARITY, CLOCK, WINDOW,
    )
    assert (t.reward, t.solver_bond, t.challenger_bond, t.deadline) == (
        REWARD, SOLVER_BOND, CHALLENGER_BOND, deadline,
    )
    assert (t.claim_id, t.state) == (0, TASK_OPEN)
    assert token.balanceOf(poster) == before - REWARD
    assert tasks.owed() == REWARD
    _assert_solvent(tasks, token)


def test_post_task__zero_reward_allowed(tasks, token, poster):
    tid = tasks.post_task(*task_args(reward=0), sender=poster)
    assert tasks.tasks(tid).reward == 0
    _assert_solvent(tasks, token)


def test_post_task__limits_inclusive(tasks, poster):
    tid = tasks.post_task(
        *task_args(
            n_nodes=2**32 - 2, n_slots=512, steps=2**63 - 1,
            window=2_592_000, clock=2_592_000, arity=32,
        ),
        sender=poster,
    )
    tasks.post_task(*task_args(n_nodes=0, n_slots=1, steps=1, window=172_800, clock=172_800, arity=2), sender=poster)
    assert tasks.tasks(tid).steps == 2**63 - 1


@pytest.mark.parametrize(
    "over, reason",
    [
        (dict(n_nodes=2**32 - 1), "tasks: too many nodes"),
        (dict(n_slots=0), "tasks: no slots"),
        (dict(n_slots=513), "tasks: too many slots"),
        (dict(steps=0), "tasks: no steps"),
        (dict(steps=2**63), "tasks: too many steps"),
        (dict(window=172_799), "tasks: window below minimum"),
        (dict(window=2_592_001), "tasks: window above maximum"),
        (dict(clock=172_799), "tasks: clock below minimum"),
        (dict(clock=2_592_001), "tasks: clock above maximum"),
        (dict(arity=1), "tasks: arity below minimum"),
        (dict(arity=33), "tasks: arity above maximum"),
        (dict(solver_bond=0), "tasks: solver bond is zero"),
        (dict(challenger_bond=0), "tasks: challenger bond below minimum"),
        (dict(challenger_bond=250 * E18 - 1), "tasks: challenger bond below minimum"),
        (dict(challenger_bond=10**21 + 1), "tasks: challenger bond above maximum"),
    ],
)
def test_post_task__bad_terms__reverts(tasks, poster, over, reason):
    args = task_args(**over)
    with boa.reverts(reason):
        tasks.post_task(*args, sender=poster)


def test_program_id__out_of_range__reverts(tasks):
    with boa.reverts("tasks: too many steps"):
        tasks.program_id(GRAPH, 1, 1, INITIAL, DATASET, 2**63)


def test_program_id__out_of_spec_slots__reverts(tasks):
    with boa.reverts("tasks: too many slots"):
        tasks.program_id(GRAPH, 1, 2**16, INITIAL, DATASET, 1)


# --- every task the registry accepts can be disputed on the real game ---------------------------


def _game_constant(name: str) -> int:
    src = (ROOT / "contracts" / "Game.vy").read_text()
    m = re.search(rf"^{name}: constant\(uint256\) = (.+?)\s*(#.*)?$", src, re.M)
    assert m, f"Game.vy has no constant {name}"
    return int(eval(m.group(1).replace("_", ""), {}))  # literals like 2**32 - 2


def test_limits__within_what_the_game_accepts(tasks):
    """A term Game.create refused would make every challenge revert: claims would finalize
    unchallenged. So the registry's upper limits never exceed the game's."""
    assert tasks.MAX_ARITY() <= _game_constant("MAX_ARITY")
    assert tasks.MAX_SLOTS() <= _game_constant("MAX_SLOTS")
    assert tasks.MAX_NODES() <= _game_constant("MAX_NODES")
    assert tasks.MAX_STEPS() <= _game_constant("MAX_STEPS")
    assert tasks.MIN_ARITY() >= 2 and tasks.MIN_CLOCK() > 0


@pytest.fixture(scope="module")
def real_court(tasks_deployer, token, availability, deployer):
    """Tasks wired to the real contracts/Game.vy (its referee is a stand-in address: only
    `create` runs here)."""
    with boa.env.prank(deployer):
        game = boa.load_partial(str(ROOT / "contracts" / "Game.vy")).deploy()
        game.set_referee(boa.env.generate_address("referee"))
        return tasks_deployer.deploy(token, game, availability), game


@pytest.mark.parametrize(
    "terms",
    [
        dict(n_nodes=2**32 - 2, n_slots=512, steps=2**63 - 1, arity=32, clock=2_592_000),
        dict(n_nodes=0, n_slots=1, steps=1, arity=2, clock=172_800),
    ],
)
def test_challenge__real_game_accepts_every_term_at_the_limits(real_court, token, deployer, funded, terms):
    registry, game = real_court
    poster, solver, challenger = funded[:3]
    for a in funded[:3]:
        token.approve(registry, 2**256 - 1, sender=a)
    tid = registry.post_task(*task_args(**terms), sender=poster)
    cid = _claim(registry, tid, solver)
    chid = registry.challenge(cid, sender=challenger)
    assert registry.challenges(chid).game_id == game.game_count()
    assert game.outcome(registry.challenges(chid).game_id) == PENDING


def test_post_task__deadline_now__reverts(tasks, poster):
    args = task_args(deadline=boa.env.timestamp)
    with boa.reverts("tasks: deadline not in the future"):
        tasks.post_task(*args, sender=poster)


def test_post_task__deadline_next_second__works(tasks, poster):
    tid = tasks.post_task(*task_args(deadline=boa.env.timestamp + 1), sender=poster)
    assert tasks.claimable(tid)


def test_post_task__without_allowance__reverts(tasks, token, deployer, stranger):
    token.mint(stranger, REWARD, sender=deployer)
    args = task_args()
    with boa.reverts("erc20: insufficient allowance"):
        tasks.post_task(*args, sender=stranger)


# --- claim_commitment --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(task=st.integers(0, 2**256 - 1), root=words, salt=words, who=st.binary(min_size=20, max_size=20))
def test_claim_commitment__is_abi_encoded_keccak(tasks, task, root, salt, who):
    """Clients compute the commitment off-chain: the view and the SPEC's encoding agree."""
    addr = "0x" + who.hex()
    assert tasks.claim_commitment(task, root, addr, salt) == commitment(task, root, addr, salt)


# --- commit_claim ------------------------------------------------------------------------------


def test_commit_claim__pulls_bond_and_takes_the_slot(tasks, token, task_id, solver):
    """Committing takes the single claim slot and locks the solver bond; no root is public."""
    before = token.balanceOf(solver)
    com = commitment(task_id, FINAL, solver)
    cid = tasks.commit_claim(task_id, com, sender=solver)
    (ev,) = events(tasks, "ClaimCommitted")
    assert (ev.claim_id, ev.task_id, ev.solver, ev.commitment) == (cid, task_id, solver, com)
    assert ev.reveal_deadline == boa.env.timestamp + CLOCK == tasks.reveal_deadline(cid)
    c = tasks.claims(cid)
    assert (c.task_id, c.solver, c.commitment, c.final_root, c.time) == (
        task_id, solver, com, bytes(32), boa.env.timestamp,
    )
    assert (c.challenges, c.unsettled, c.winners, c.collected, c.state) == (0, 0, 0, 0, CLAIM_COMMITTED)
    assert tasks.tasks(task_id).claim_id == cid
    assert tasks.challenge_deadline(cid) == 0  # the window opens at the reveal
    assert token.balanceOf(solver) == before - SOLVER_BOND
    assert tasks.owed() == REWARD + SOLVER_BOND
    assert not tasks.claimable(task_id)
    _assert_solvent(tasks, token)


def test_commit_claim__poster_may_solve(tasks, task_id, poster):
    cid = _claim(tasks, task_id, poster)
    assert tasks.claims(cid).solver == poster


def test_commit_claim__no_such_task__reverts(tasks, solver):
    with boa.reverts("tasks: no such task"):
        tasks.commit_claim(1, SALT, sender=solver)


def test_commit_claim__slot_taken_by_a_commitment__reverts(tasks, task_id, committed_id, funded):
    """A copier who sees the honest commit in the mempool arrives second: reverted, the slot is
    taken at commit, before any root is public."""
    with boa.reverts("tasks: task has a live claim"):
        tasks.commit_claim(task_id, tasks.claims(committed_id).commitment, sender=funded[2])


def test_commit_claim__revealed_claim__reverts(tasks, task_id, claim_id, funded):
    with boa.reverts("tasks: task has a live claim"):
        tasks.commit_claim(task_id, commitment(task_id, FINAL, funded[2]), sender=funded[2])


def test_commit_claim__one_second_before_deadline__works(tasks, task_id, solver):
    boa.env.time_travel(seconds=tasks.tasks(task_id).deadline - 1 - boa.env.timestamp)
    cid = tasks.commit_claim(task_id, commitment(task_id, FINAL, solver), sender=solver)
    assert tasks.claims(cid).state == CLAIM_COMMITTED


def test_commit_claim__at_deadline__reverts(tasks, task_id, solver):
    boa.env.time_travel(seconds=tasks.tasks(task_id).deadline - boa.env.timestamp)
    with boa.reverts("tasks: deadline passed"):
        tasks.commit_claim(task_id, commitment(task_id, FINAL, solver), sender=solver)


def test_commit_claim__task_finalized__reverts(tasks, task_id, claim_id, solver):
    _past_window(tasks, claim_id)
    tasks.finalize(claim_id)
    with boa.reverts("tasks: task finalized"):
        tasks.commit_claim(task_id, SALT, sender=solver)


def test_commit_claim__task_reclaimed__reverts(tasks, task_id, solver):
    boa.env.time_travel(seconds=DEADLINE_IN)
    tasks.reclaim(task_id)
    with boa.reverts("tasks: task reclaimed"):
        tasks.commit_claim(task_id, SALT, sender=solver)


def test_commit_claim__without_bond_allowance__reverts(tasks, token, deployer, task_id, stranger):
    token.mint(stranger, SOLVER_BOND, sender=deployer)
    with boa.reverts("erc20: insufficient allowance"):
        tasks.commit_claim(task_id, SALT, sender=stranger)


def test_commit_claim__after_rejection__task_reopens(tasks, mock_game, task_id, claim_id, challengers, funded):
    ch = _challenge(tasks, claim_id, challengers[0])
    _decide(tasks, mock_game, ch, CHALLENGER_WON)
    tasks.settle(ch)
    assert tasks.tasks(task_id).claim_id == 0
    assert tasks.claimable(task_id)
    cid2 = _claim(tasks, task_id, funded[5], keccak(b"honest"))
    assert tasks.tasks(task_id).claim_id == cid2 != claim_id


# --- reveal_claim ------------------------------------------------------------------------------


def test_reveal_claim__sets_root_and_opens_window(tasks, token, task_id, committed_id, solver, stranger):
    """The reveal publishes the root and starts the challenge window from the reveal."""
    boa.env.time_travel(seconds=3_600)
    tasks.reveal_claim(committed_id, FINAL, SALT, sender=solver)
    (ev,) = events(tasks, "ClaimRevealed")
    assert (ev.claim_id, ev.task_id, ev.solver, ev.final_root) == (committed_id, task_id, solver, FINAL)
    assert ev.challenge_deadline == boa.env.timestamp + WINDOW == tasks.challenge_deadline(committed_id)
    c = tasks.claims(committed_id)
    assert (c.final_root, c.time, c.state) == (FINAL, boa.env.timestamp, CLAIM_LIVE)
    assert tasks.reveal_deadline(committed_id) == 0
    assert tasks.owed() == REWARD + SOLVER_BOND
    _assert_solvent(tasks, token)


def test_reveal_claim__by_non_committer__reverts(tasks, committed_id, stranger, challengers):
    """Only the committer reveals: a copier cannot reveal someone else's commitment."""
    for who in (stranger, challengers[0]):
        with boa.reverts("tasks: not the committer"):
            tasks.reveal_claim(committed_id, FINAL, SALT, sender=who)


def test_reveal_claim__twice__reverts(tasks, committed_id, solver):
    """A claim is revealed once: the root cannot be changed after the window opened."""
    tasks.reveal_claim(committed_id, FINAL, SALT, sender=solver)
    with boa.reverts("tasks: claim already revealed"):
        tasks.reveal_claim(committed_id, FINAL, SALT, sender=solver)
    with boa.reverts("tasks: claim already revealed"):
        tasks.reveal_claim(committed_id, keccak(b"other"), SALT, sender=solver)


@pytest.mark.parametrize(
    "root, salt",
    [(keccak(b"other root"), SALT), (FINAL, keccak(b"other salt")), (FINAL, bytes(32))],
)
def test_reveal_claim__wrong_root_or_salt__reverts(tasks, committed_id, solver, root, salt):
    """The revealed root is the committed one: no other root, no other salt."""
    with boa.reverts("tasks: reveal does not match commitment"):
        tasks.reveal_claim(committed_id, root, salt, sender=solver)


def test_reveal_claim__commitment_bound_to_another_task__reverts(tasks, poster, solver):
    """The commitment binds the task id: a commitment made for one task does not open on another."""
    t1 = tasks.post_task(*task_args(), sender=poster)
    t2 = tasks.post_task(*task_args(), sender=poster)
    cid = tasks.commit_claim(t2, commitment(t1, FINAL, solver), sender=solver)
    with boa.reverts("tasks: reveal does not match commitment"):
        tasks.reveal_claim(cid, FINAL, SALT, sender=solver)


def test_reveal_claim__one_second_before_deadline__works(tasks, committed_id, solver):
    boa.env.time_travel(seconds=tasks.reveal_deadline(committed_id) - 1 - boa.env.timestamp)
    assert not tasks.expirable(committed_id)
    tasks.reveal_claim(committed_id, FINAL, SALT, sender=solver)
    assert tasks.claims(committed_id).state == CLAIM_LIVE


def test_reveal_claim__at_deadline__reverts(tasks, committed_id, solver):
    _past_reveal(tasks, committed_id)
    with boa.reverts("tasks: reveal deadline passed"):
        tasks.reveal_claim(committed_id, FINAL, SALT, sender=solver)


def test_reveal_claim__one_second_after_deadline__reverts(tasks, committed_id, solver):
    _past_reveal(tasks, committed_id)
    boa.env.time_travel(seconds=1)
    with boa.reverts("tasks: reveal deadline passed"):
        tasks.reveal_claim(committed_id, FINAL, SALT, sender=solver)


def test_reveal_claim__expired__reverts(tasks, committed_id, solver):
    _past_reveal(tasks, committed_id)
    tasks.expire_claim(committed_id)
    with boa.reverts("tasks: claim expired"):
        tasks.reveal_claim(committed_id, FINAL, SALT, sender=solver)


def test_reveal_claim__no_such_claim__reverts(tasks, solver):
    with boa.reverts("tasks: no such claim"):
        tasks.reveal_claim(1, FINAL, SALT, sender=solver)


# --- expire_claim ------------------------------------------------------------------------------


def test_expire_claim__burns_whole_bond_and_reopens(tasks, token, task_id, committed_id, solver, poster, stranger):
    """An unrevealed commitment burns the whole solver bond: nobody (poster, caller) gains."""
    _past_reveal(tasks, committed_id)
    assert tasks.expirable(committed_id)
    supply = token.totalSupply()
    others = {a: token.balanceOf(a) for a in (solver, poster, stranger)}

    tasks.expire_claim(committed_id, sender=stranger)  # permissionless

    (ev,) = events(tasks, "ClaimExpired")
    assert (ev.claim_id, ev.task_id, ev.solver, ev.burned) == (committed_id, task_id, solver, SOLVER_BOND)
    assert token.totalSupply() == supply - SOLVER_BOND
    assert tasks.burned() == SOLVER_BOND
    assert {a: token.balanceOf(a) for a in others} == others
    assert tasks.claims(committed_id).state == CLAIM_EXPIRED
    assert tasks.tasks(task_id).claim_id == 0 and tasks.claimable(task_id)
    assert tasks.owed() == REWARD
    _assert_solvent(tasks, token)


def test_expire_claim__one_second_before_deadline__reverts(tasks, committed_id):
    boa.env.time_travel(seconds=tasks.reveal_deadline(committed_id) - 1 - boa.env.timestamp)
    with boa.reverts("tasks: reveal deadline not reached"):
        tasks.expire_claim(committed_id)


def test_expire_claim__twice__reverts(tasks, committed_id):
    _past_reveal(tasks, committed_id)
    tasks.expire_claim(committed_id)
    with boa.reverts("tasks: claim expired"):
        tasks.expire_claim(committed_id)


def test_expire_claim__revealed__reverts(tasks, claim_id):
    """A revealed claim of a task without result slots has nothing to withhold: it is never
    expirable, in its window or after it, nor once finalized."""
    assert not tasks.expirable(claim_id)
    with boa.reverts("tasks: challenge window open"):
        tasks.expire_claim(claim_id)
    boa.env.time_travel(seconds=WINDOW)
    assert not tasks.expirable(claim_id)
    with boa.reverts("tasks: claim revealed with its result"):
        tasks.expire_claim(claim_id)
    tasks.finalize(claim_id)
    assert not tasks.expirable(claim_id)
    with boa.reverts("tasks: claim already decided"):
        tasks.expire_claim(claim_id)


def test_expire_claim__no_such_claim__reverts(tasks):
    with boa.reverts("tasks: no such claim"):
        tasks.expire_claim(4)


def test_reclaim__committed_claim_blocks_until_expired(tasks, token, task_id, committed_id, poster):
    """A commitment holds the slot past the task deadline; expiring it lets the poster reclaim."""
    boa.env.time_travel(seconds=DEADLINE_IN)
    with boa.reverts("tasks: task has a live claim"):
        tasks.reclaim(task_id)
    tasks.expire_claim(committed_id)
    before = token.balanceOf(poster)
    tasks.reclaim(task_id)
    assert token.balanceOf(poster) == before + REWARD
    _assert_solvent(tasks, token)


# --- challenge ---------------------------------------------------------------------------------


def test_challenge__pulls_bond_and_creates_game(tasks, token, mock_game, claim_id, solver, challengers):
    who = challengers[0]
    before = token.balanceOf(who)
    chid = tasks.challenge(claim_id, sender=who)
    (ev,) = events(tasks, "Challenged")
    ch = tasks.challenges(chid)
    assert (ev.challenge_id, ev.claim_id, ev.challenger, ev.game_id) == (chid, claim_id, who, ch.game_id)
    assert (ch.claim_id, ch.challenger, ch.state) == (claim_id, who, CHALLENGE_OPEN)
    g = mock_game.games(ch.game_id)
    assert (g.solver, g.challenger, g.initial_root, g.final_root, g.graph_root) == (
        solver, who, INITIAL, FINAL, GRAPH,
    )
    assert (g.steps, g.n_nodes, g.n_slots, g.arity, g.clock) == (STEPS, N_NODES, N_SLOTS, ARITY, CLOCK)
    c = tasks.claims(claim_id)
    assert (c.challenges, c.unsettled) == (1, 1)
    assert token.balanceOf(who) == before - CHALLENGER_BOND
    assert tasks.owed() == REWARD + SOLVER_BOND + CHALLENGER_BOND
    _assert_solvent(tasks, token)


def test_challenge__many_challengers_and_sybils(tasks, poster, solver, claim_id, challengers):
    # another claim's challenges interleave with this one's: each claim lists only its own
    other = _claim(tasks, tasks.post_task(*task_args(), sender=poster), solver)
    ids, others = [], []
    for w in challengers + challengers[:1]:
        ids.append(tasks.challenge(claim_id, sender=w))
        others.append(tasks.challenge(other, sender=w))
    c = tasks.claims(claim_id)
    assert (c.challenges, c.unsettled) == (len(ids), len(ids))
    newest_first = ids[::-1]
    assert tasks.challenges_of(claim_id, 0, 256) == newest_first
    assert tasks.challenges_of(claim_id, 0, 2) == newest_first[:2]
    assert tasks.challenges_of(claim_id, newest_first[1], 2) == newest_first[2:4]
    assert tasks.challenges_of(claim_id, ids[0], 10) == []
    assert tasks.challenges_of(other, 0, 256) == others[::-1]
    assert [tasks.challenges(i).game_id for i in ids] == ids  # a challenge's id is its game's
    assert {tasks.challenges(i).claim_id for i in ids} == {claim_id}
    assert [tasks.challenges(i).challenger for i in ids] == challengers + challengers[:1]


def test_settle__keeps_each_challenge_in_its_claims_list(tasks, mock_game, claim_id, challengers, stranger):
    """A challenge's one word also links the claim's list and names its claim: settling it (a
    won game rewrites its gas, a lost one its state) must leave both as they were."""
    ids = [_challenge(tasks, claim_id, w) for w in challengers[:3]]
    gas_before = [tasks.challenges(i).gas for i in ids]
    mock_game.set_challenger_gas(ids[1], 1_234_567)
    _decide(tasks, mock_game, ids[1], CHALLENGER_WON)
    _decide(tasks, mock_game, ids[0], SOLVER_WON)
    tasks.settle(ids[1], sender=stranger)
    tasks.settle(ids[0], sender=stranger)
    assert tasks.challenges_of(claim_id, 0, 256) == ids[::-1]
    assert [tasks.challenges(i).claim_id for i in ids] == [claim_id] * 3
    assert [tasks.challenges(i).state for i in ids] == [CHALLENGE_LOST, CHALLENGE_WON, CHALLENGE_OPEN]
    assert [tasks.challenges(i).gas for i in ids] == [gas_before[0], gas_before[1] + 1_234_567, gas_before[2]]
    assert tasks.claims(claim_id).unsettled == 1


def test_challenges_of__page_too_large__reverts(tasks, claim_id):
    with boa.reverts("tasks: page too large"):
        tasks.challenges_of(claim_id, 0, 257)


def test_challenges_of__cursor_not_a_challenge_of_the_claim__reverts(tasks, poster, solver, claim_id, challengers):
    other = _claim(tasks, tasks.post_task(*task_args(), sender=poster), solver)
    theirs = tasks.challenge(other, sender=challengers[0])
    mine = tasks.challenge(claim_id, sender=challengers[1])
    assert tasks.challenges_of(claim_id, 0, 256) == [mine]
    for cursor in (theirs, mine + 1):
        with boa.reverts("tasks: not a challenge of this claim"):
            tasks.challenges_of(claim_id, cursor, 256)


def test_challenge__no_such_claim__reverts(tasks, challengers):
    with boa.reverts("tasks: no such claim"):
        tasks.challenge(1, sender=challengers[0])


def test_challenge__by_solver__reverts(tasks, claim_id, solver):
    with boa.reverts("tasks: solver cannot challenge own claim"):
        tasks.challenge(claim_id, sender=solver)


def test_challenge__one_second_before_window_end__works(tasks, claim_id, challengers):
    boa.env.time_travel(seconds=tasks.challenge_deadline(claim_id) - 1 - boa.env.timestamp)
    chid = tasks.challenge(claim_id, sender=challengers[0])
    assert tasks.challenges(chid).state == CHALLENGE_OPEN


def test_challenge__at_window_end__reverts(tasks, claim_id, challengers):
    _past_window(tasks, claim_id)
    with boa.reverts("tasks: challenge window closed"):
        tasks.challenge(claim_id, sender=challengers[0])


def test_challenge__claim_rejected__still_open_within_window(tasks, token, mock_game, claim_id, challengers):
    """A watchtower arriving after another challenger already rejected the claim can still
    challenge until the window closes (and, if its game shows it right, share the prize)."""
    ch = _challenge(tasks, claim_id, challengers[0])
    _decide(tasks, mock_game, ch, CHALLENGER_WON)
    tasks.settle(ch)
    late = tasks.challenge(claim_id, sender=challengers[1])
    assert tasks.challenges(late).state == CHALLENGE_OPEN
    assert tasks.claims(claim_id).unsettled == 1
    _assert_solvent(tasks, token)


def test_challenge__claim_rejected__window_edges(tasks, mock_game, claim_id, challengers):
    ch = _challenge(tasks, claim_id, challengers[0])
    _decide(tasks, mock_game, ch, CHALLENGER_WON)
    tasks.settle(ch)
    boa.env.time_travel(seconds=tasks.challenge_deadline(claim_id) - 1 - boa.env.timestamp)
    tasks.challenge(claim_id, sender=challengers[1])
    boa.env.time_travel(seconds=1)
    with boa.reverts("tasks: challenge window closed"):
        tasks.challenge(claim_id, sender=challengers[2])


def test_challenge__not_revealed__reverts(tasks, committed_id, challengers):
    """Nobody can challenge a root that is not public yet."""
    with boa.reverts("tasks: claim not revealed"):
        tasks.challenge(committed_id, sender=challengers[0])


def test_challenge__expired__reverts(tasks, committed_id, challengers):
    _past_reveal(tasks, committed_id)
    tasks.expire_claim(committed_id)
    with boa.reverts("tasks: claim expired"):
        tasks.challenge(committed_id, sender=challengers[0])


def test_challenge__one_second_after_window_end__reverts(tasks, claim_id, challengers):
    _past_window(tasks, claim_id)
    boa.env.time_travel(seconds=1)
    with boa.reverts("tasks: challenge window closed"):
        tasks.challenge(claim_id, sender=challengers[0])


def test_challenge__claim_finalized__reverts(tasks, claim_id, challengers):
    _past_window(tasks, claim_id)
    tasks.finalize(claim_id)
    with boa.reverts("tasks: claim finalized"):
        tasks.challenge(claim_id, sender=challengers[0])


def test_challenge__without_bond_allowance__reverts(tasks, token, deployer, claim_id, stranger):
    token.mint(stranger, CHALLENGER_BOND, sender=deployer)
    with boa.reverts("erc20: insufficient allowance"):
        tasks.challenge(claim_id, sender=stranger)


# --- settle ------------------------------------------------------------------------------------


def test_settle__game_pending__reverts(tasks, claim_id, challengers, stranger):
    ch = _challenge(tasks, claim_id, challengers[0])
    assert not tasks.settleable(ch)
    with boa.reverts("tasks: game not over"):
        tasks.settle(ch, sender=stranger)


def test_settle__no_such_challenge__reverts(tasks):
    with boa.reverts("tasks: no such challenge"):
        tasks.settle(1)


def test_settle__challenger_won__refunds_challenger_burns_and_reopens(
    tasks, token, mock_game, task_id, claim_id, solver, challengers, stranger
):
    """A won game refunds the challenger's bond at once, rejects the claim, burns the solver
    bond's burn share and keeps the prize owed until the window closes."""
    who = challengers[0]
    ch = _challenge(tasks, claim_id, who)
    _decide(tasks, mock_game, ch, CHALLENGER_WON)
    assert tasks.settleable(ch)
    supply, who_before, solver_before = token.totalSupply(), token.balanceOf(who), token.balanceOf(solver)

    tasks.settle(ch, sender=stranger)  # permissionless

    burn = burn_of(SOLVER_BOND)
    (settled,) = events(tasks, "ChallengeSettled")
    assert (settled.challenge_id, settled.claim_id, settled.challenger) == (ch, claim_id, who)
    assert (settled.state, settled.paid) == (CHALLENGE_WON, CHALLENGER_BOND)
    assert events(tasks, "BondSlashed") == []
    (rej,) = events(tasks, "ClaimRejected")
    assert (rej.claim_id, rej.task_id, rej.challenge_id) == (claim_id, task_id, ch)
    assert (rej.bond, rej.burned, rej.prize) == (SOLVER_BOND, burn, prize_of(SOLVER_BOND))

    assert token.balanceOf(who) == who_before + CHALLENGER_BOND
    assert token.balanceOf(solver) == solver_before
    assert token.totalSupply() == supply - burn
    assert tasks.burned() == burn
    assert tasks.challenges(ch).state == CHALLENGE_WON
    c = tasks.claims(claim_id)
    assert (c.state, c.winners, c.unsettled, c.collected) == (CLAIM_REJECTED, 1, 0, 0)
    t = tasks.tasks(task_id)
    assert (t.claim_id, t.state) == (0, TASK_OPEN)
    # the reward stays escrowed for the next claim; the prize waits for the window to close
    assert tasks.owed() == REWARD + prize_of(SOLVER_BOND)
    assert not tasks.collectable(ch)
    _assert_solvent(tasks, token)


def test_settle__solver_won__pays_solver_at_once_and_burns(tasks, token, mock_game, claim_id, solver, challengers):
    """A lost game slashes the challenger: burn share burned, the rest paid to the solver now."""
    who = challengers[0]
    ch = _challenge(tasks, claim_id, who)
    _decide(tasks, mock_game, ch, SOLVER_WON)
    supply, who_before, solver_before = token.totalSupply(), token.balanceOf(who), token.balanceOf(solver)

    tasks.settle(ch)

    burn = burn_of(CHALLENGER_BOND)
    prize = CHALLENGER_BOND - burn
    (settled,) = events(tasks, "ChallengeSettled")
    assert (settled.state, settled.paid) == (CHALLENGE_LOST, 0)
    (slash,) = events(tasks, "BondSlashed")
    assert (slash.loser, slash.winner, slash.bond, slash.prize, slash.burned) == (
        who, solver, CHALLENGER_BOND, prize, burn,
    )
    assert events(tasks, "ClaimRejected") == []
    assert token.balanceOf(who) == who_before
    assert token.balanceOf(solver) == solver_before + prize
    assert token.totalSupply() == supply - burn
    c = tasks.claims(claim_id)
    assert (c.state, c.winners, c.unsettled, c.challenges) == (CLAIM_LIVE, 0, 0, 1)
    assert tasks.challenges(ch).state == CHALLENGE_LOST
    assert tasks.owed() == REWARD + SOLVER_BOND
    _assert_solvent(tasks, token)


def test_settle__twice__reverts(tasks, mock_game, claim_id, challengers):
    """Each challenge settles exactly once, whatever its outcome."""
    lose = _challenge(tasks, claim_id, challengers[0])
    win = _challenge(tasks, claim_id, challengers[1])
    _decide(tasks, mock_game, lose, SOLVER_WON)
    _decide(tasks, mock_game, win, CHALLENGER_WON)
    tasks.settle(lose)
    tasks.settle(win)
    for ch in (lose, win):
        assert not tasks.settleable(ch)
        with boa.reverts("tasks: challenge already settled"):
            tasks.settle(ch)


def test_settle__after_rejection__pending_game_still_not_over(tasks, mock_game, claim_id, challengers):
    """No VOID: a rejection does not settle the claim's other games; each waits for its own end."""
    first = _challenge(tasks, claim_id, challengers[0])
    late = _challenge(tasks, claim_id, challengers[1])
    _decide(tasks, mock_game, first, CHALLENGER_WON)
    tasks.settle(first)
    assert not tasks.settleable(late)
    with boa.reverts("tasks: game not over"):
        tasks.settle(late)


def test_settle__after_rejection__lost_game_still_slashes(tasks, token, mock_game, claim_id, solver, challengers):
    """A challenge is refunded only if its own game shows it right: after the claim is rejected,
    a game the solver wins still slashes the challenger and pays the solver."""
    first = _challenge(tasks, claim_id, challengers[0])
    late = _challenge(tasks, claim_id, challengers[1])
    _decide(tasks, mock_game, first, CHALLENGER_WON)
    tasks.settle(first)
    _decide(tasks, mock_game, late, SOLVER_WON)
    late_before, solver_before = token.balanceOf(challengers[1]), token.balanceOf(solver)
    tasks.settle(late)
    assert token.balanceOf(challengers[1]) == late_before
    assert token.balanceOf(solver) == solver_before + CHALLENGER_BOND - burn_of(CHALLENGER_BOND)
    assert tasks.challenges(late).state == CHALLENGE_LOST
    assert tasks.claims(claim_id).winners == 1
    _assert_solvent(tasks, token)


def test_settle__after_rejection__second_win_joins_winners(tasks, token, mock_game, claim_id, challengers):
    """A second won game after the rejection refunds its bond and adds a winner; no second burn."""
    first = _challenge(tasks, claim_id, challengers[0])
    late = _challenge(tasks, claim_id, challengers[1])
    _decide(tasks, mock_game, first, CHALLENGER_WON)
    _decide(tasks, mock_game, late, CHALLENGER_WON)
    tasks.settle(first)
    before, supply = token.balanceOf(challengers[1]), token.totalSupply()
    tasks.settle(late)
    assert events(tasks, "ClaimRejected") == []
    assert token.balanceOf(challengers[1]) == before + CHALLENGER_BOND
    assert token.totalSupply() == supply
    assert tasks.claims(claim_id).winners == 2
    g0, g1 = tasks.challenges(first).gas, tasks.challenges(late).gas
    assert tasks.claims(claim_id).gas == g0 + g1
    assert tasks.prize_share(late) == prize_of(SOLVER_BOND) * g1 // (g0 + g1)
    _assert_solvent(tasks, token)


def test_settle__odd_bonds_burn_rounds_up(tasks, token, mock_game, poster, solver, challengers):
    odd = CHALLENGER_BOND + 1
    tid = tasks.post_task(*task_args(solver_bond=3, challenger_bond=odd), sender=poster)
    cid = _claim(tasks, tid, solver)
    lose = _challenge(tasks, cid, challengers[0])
    win = _challenge(tasks, cid, challengers[1])
    _decide(tasks, mock_game, lose, SOLVER_WON)
    _decide(tasks, mock_game, win, CHALLENGER_WON)
    supply, solver_before = token.totalSupply(), token.balanceOf(solver)
    tasks.settle(lose)  # burn ceil(odd / 2), the solver paid the floor of the other half
    assert burn_of(odd) == odd // 2 + 1
    assert token.balanceOf(solver) == solver_before + odd // 2
    tasks.settle(win)  # bond 3: burn 2, prize 1
    assert token.totalSupply() == supply - burn_of(odd) - 2
    assert tasks.owed() == REWARD + 1
    _assert_solvent(tasks, token)


def test_settle__unknown_outcome__reverts(tasks, mock_game, claim_id, challengers):
    ch = _challenge(tasks, claim_id, challengers[0])
    # the mock refuses bad outcomes, so write one straight into its storage
    game_id = tasks.challenges(ch).game_id
    mock_game.eval(f"self.outcome[{game_id}] = 3")
    with boa.reverts("tasks: unknown game outcome"):
        tasks.settle(ch)


# --- finalize ----------------------------------------------------------------------------------


def test_finalize__pays_reward_and_bond(tasks, token, task_id, claim_id, solver, stranger):
    before = token.balanceOf(solver)
    _past_window(tasks, claim_id)
    assert tasks.finalizable(claim_id)

    tasks.finalize(claim_id, sender=stranger)  # permissionless

    (ev,) = events(tasks, "ClaimFinalized")
    assert (ev.claim_id, ev.task_id, ev.solver, ev.reward, ev.bond) == (
        claim_id, task_id, solver, REWARD, SOLVER_BOND,
    )
    assert token.balanceOf(solver) == before + REWARD + SOLVER_BOND
    assert tasks.claims(claim_id).state == CLAIM_FINALIZED
    t = tasks.tasks(task_id)
    assert (t.state, t.claim_id) == (TASK_DONE, claim_id)
    assert tasks.owed() == 0
    _assert_solvent(tasks, token)


def test_finalize__after_won_games__pays_reward_and_bond(tasks, token, mock_game, claim_id, solver, challengers):
    """Slashed challenger bonds were paid at settlement; finalize pays exactly reward + bond."""
    ids = [_challenge(tasks, claim_id, w) for w in challengers]
    before = token.balanceOf(solver)
    for ch in ids:
        _decide(tasks, mock_game, ch, SOLVER_WON)
        tasks.settle(ch)
    slashed = len(ids) * (CHALLENGER_BOND - burn_of(CHALLENGER_BOND))
    assert token.balanceOf(solver) == before + slashed
    _past_window(tasks, claim_id)
    tasks.finalize(claim_id)
    assert token.balanceOf(solver) == before + slashed + REWARD + SOLVER_BOND
    assert tasks.owed() == 0
    _assert_solvent(tasks, token)


def test_finalize__not_revealed__reverts(tasks, committed_id):
    boa.env.time_travel(seconds=WINDOW + CLOCK)
    with boa.reverts("tasks: claim not revealed"):
        tasks.finalize(committed_id)


def test_finalize__expired__reverts(tasks, committed_id):
    _past_reveal(tasks, committed_id)
    tasks.expire_claim(committed_id)
    with boa.reverts("tasks: claim expired"):
        tasks.finalize(committed_id)


def test_finalize__window_counts_from_the_reveal(tasks, committed_id, solver):
    """A late reveal starts the window late: commit time + window is not enough."""
    boa.env.time_travel(seconds=CLOCK - 1)
    tasks.reveal_claim(committed_id, FINAL, SALT, sender=solver)
    boa.env.time_travel(seconds=WINDOW - 1)
    with boa.reverts("tasks: challenge window open"):
        tasks.finalize(committed_id)
    boa.env.time_travel(seconds=1)
    tasks.finalize(committed_id)


def test_finalize__one_second_before_window_end__reverts(tasks, claim_id):
    boa.env.time_travel(seconds=tasks.challenge_deadline(claim_id) - 1 - boa.env.timestamp)
    assert not tasks.finalizable(claim_id)
    with boa.reverts("tasks: challenge window open"):
        tasks.finalize(claim_id)


def test_finalize__at_window_end__works(tasks, claim_id):
    _past_window(tasks, claim_id)
    tasks.finalize(claim_id)
    assert tasks.claims(claim_id).state == CLAIM_FINALIZED


def test_finalize__unsettled_challenge__reverts(tasks, mock_game, claim_id, challengers):
    ch = _challenge(tasks, claim_id, challengers[0])
    _past_window(tasks, claim_id)
    with boa.reverts("tasks: challenges unsettled"):
        tasks.finalize(claim_id)
    _decide(tasks, mock_game, ch, SOLVER_WON)
    with boa.reverts("tasks: challenges unsettled"):
        tasks.finalize(claim_id)


def test_finalize__rejected__reverts(tasks, mock_game, claim_id, challengers):
    ch = _challenge(tasks, claim_id, challengers[0])
    _decide(tasks, mock_game, ch, CHALLENGER_WON)
    tasks.settle(ch)
    _past_window(tasks, claim_id)
    with boa.reverts("tasks: claim rejected"):
        tasks.finalize(claim_id)


def test_finalize__twice__reverts(tasks, claim_id):
    _past_window(tasks, claim_id)
    tasks.finalize(claim_id)
    with boa.reverts("tasks: claim finalized"):
        tasks.finalize(claim_id)


def test_finalize__no_such_claim__reverts(tasks):
    with boa.reverts("tasks: no such claim"):
        tasks.finalize(7)


def test_finalize__after_deadline__works(tasks, task_id, claim_id):
    """A claim made before the deadline can be finalized after it."""
    boa.env.time_travel(seconds=DEADLINE_IN + 1)
    tasks.finalize(claim_id)
    assert tasks.tasks(task_id).state == TASK_DONE


# --- collect ---------------------------------------------------------------------------------


def _rejected_with_winners(tasks, mock_game, claim_id, winners, losers=()):
    """Opens a challenge per address, decides winners CHALLENGER_WON and losers SOLVER_WON,
    settles all; returns (winning ids, losing ids)."""
    won = [_challenge(tasks, claim_id, w) for w in winners]
    lost = [_challenge(tasks, claim_id, w) for w in losers]
    for ch in won:
        _decide(tasks, mock_game, ch, CHALLENGER_WON)
    for ch in lost:
        _decide(tasks, mock_game, ch, SOLVER_WON)
    for ch in won + lost:
        tasks.settle(ch)
    return won, lost


def test_collect__pays_gas_proportional_share_and_burns_dust(tasks, token, mock_game, poster, solver, challengers, stranger):
    """The prize is split in proportion to each winner's metered gas (its challenge transaction
    plus its game's meter); rounding dust is burned by the last collection, so the contract ends
    holding exactly what it owes (nothing)."""
    tid = tasks.post_task(*task_args(solver_bond=101), sender=poster)  # burn 51, prize 50
    cid = _claim(tasks, tid, solver)
    won = [_challenge(tasks, cid, w) for w in challengers[:3]]
    in_game = [1_000_000, 3_000_000, 9_000_000]  # games of different lengths
    tx = [tasks.challenges(ch).gas for ch in won]  # each challenge transaction, metered
    assert all(16_800 <= g < 1_000_000 for g in tx)
    for ch, g in zip(won, in_game):
        mock_game.set_challenger_gas(tasks.challenges(ch).game_id, g)
        _decide(tasks, mock_game, ch, CHALLENGER_WON)
        tasks.settle(ch)
        _assert_solvent(tasks, token)
    weights = [a + b for a, b in zip(tx, in_game)]
    assert [tasks.challenges(ch).gas for ch in won] == weights
    assert tasks.claims(cid).gas == sum(weights)
    shares = [50 * w // sum(weights) for w in weights]
    assert shares[0] < shares[1] < shares[2] and sum(shares) < 50  # not an equal split
    _past_window(tasks, cid)
    assert [tasks.prize_share(ch) for ch in won] == shares
    supply = token.totalSupply()
    for k, ch in enumerate(won):
        who = challengers[k]
        before = token.balanceOf(who)
        assert tasks.collectable(ch)
        tasks.collect(ch, sender=stranger)  # permissionless; pays the challenger
        (ev,) = events(tasks, "PrizeCollected")
        assert (ev.challenge_id, ev.claim_id, ev.challenger, ev.share) == (ch, cid, who, shares[k])
        assert ev.dust_burned == (50 - sum(shares) if k == 2 else 0)
        assert token.balanceOf(who) == before + shares[k]
        assert tasks.challenges(ch).state == CHALLENGE_COLLECTED
        assert tasks.claims(cid).shared == sum(shares[: k + 1])
        _assert_solvent(tasks, token)
    assert token.totalSupply() == supply - (50 - sum(shares))
    assert tasks.claims(cid).collected == 3
    assert tasks.owed() == REWARD


def test_collect__absurd_game_meter__capped_and_still_pays(tasks, token, mock_game, claim_id, challengers):
    """A game's meter is read at most at 2^64 gas: two games claiming 2^255 gas cannot overflow
    the claim's total and lock the prize; each pays in proportion to its capped weight."""
    won = [_challenge(tasks, claim_id, w) for w in challengers[:2]]
    for ch in won:
        mock_game.set_challenger_gas(tasks.challenges(ch).game_id, 2**255)
        _decide(tasks, mock_game, ch, CHALLENGER_WON)
        tasks.settle(ch)
    weights = [tasks.challenges(ch).gas for ch in won]
    assert weights[0] - 2**64 == tasks.claims(claim_id).gas - weights[1] - 2**64 > 0
    assert 0 < weights[1] - 2**64 < 10**6
    _past_window(tasks, claim_id)
    prize = prize_of(SOLVER_BOND)
    for ch, w in zip(won, weights):
        before = token.balanceOf(tasks.challenges(ch).challenger)
        tasks.collect(ch)
        assert token.balanceOf(tasks.challenges(ch).challenger) == before + prize * w // sum(weights)
        _assert_solvent(tasks, token)
    assert tasks.owed() == REWARD


def test_collect__twice__reverts(tasks, mock_game, claim_id, challengers):
    (ch,), _ = _rejected_with_winners(tasks, mock_game, claim_id, challengers[:1])
    _past_window(tasks, claim_id)
    tasks.collect(ch)
    assert not tasks.collectable(ch)
    with boa.reverts("tasks: prize already collected"):
        tasks.collect(ch)


def test_collect__lost_challenge__reverts(tasks, mock_game, claim_id, challengers):
    """Nobody is paid what they did not win: a challenge whose game the solver won gets no share."""
    _, (lost,) = _rejected_with_winners(tasks, mock_game, claim_id, challengers[:1], challengers[1:2])
    _past_window(tasks, claim_id)
    assert not tasks.collectable(lost)
    with boa.reverts("tasks: challenge lost"):
        tasks.collect(lost)


def test_collect__unsettled_challenge__reverts(tasks, mock_game, claim_id, challengers):
    """Shares wait until every game of the claim is settled: the number of winners is final."""
    (won,), _ = _rejected_with_winners(tasks, mock_game, claim_id, challengers[:1])
    pending = _challenge(tasks, claim_id, challengers[1])
    _past_window(tasks, claim_id)
    with boa.reverts("tasks: challenges unsettled"):
        tasks.collect(won)
    with boa.reverts("tasks: challenge not settled"):
        tasks.collect(pending)
    _decide(tasks, mock_game, pending, CHALLENGER_WON)
    tasks.settle(pending)
    tasks.collect(won)
    assert tasks.claims(claim_id).winners == 2


def test_collect__one_second_before_window_end__reverts(tasks, mock_game, claim_id, challengers):
    (ch,), _ = _rejected_with_winners(tasks, mock_game, claim_id, challengers[:1])
    boa.env.time_travel(seconds=tasks.challenge_deadline(claim_id) - 1 - boa.env.timestamp)
    assert not tasks.collectable(ch)
    with boa.reverts("tasks: challenge window open"):
        tasks.collect(ch)
    boa.env.time_travel(seconds=1)
    tasks.collect(ch)


def test_collect__no_such_challenge__reverts(tasks):
    with boa.reverts("tasks: no such challenge"):
        tasks.collect(1)


# --- reclaim -----------------------------------------------------------------------------------


def test_reclaim__pays_poster(tasks, token, task_id, poster, stranger):
    before = token.balanceOf(poster)
    boa.env.time_travel(seconds=DEADLINE_IN)
    assert tasks.reclaimable(task_id)
    tasks.reclaim(task_id, sender=stranger)  # permissionless; pays the poster
    (ev,) = events(tasks, "RewardReclaimed")
    assert (ev.task_id, ev.poster, ev.reward) == (task_id, poster, REWARD)
    assert token.balanceOf(poster) == before + REWARD
    assert tasks.tasks(task_id).state == TASK_RECLAIMED
    assert tasks.owed() == 0
    _assert_solvent(tasks, token)


def test_reclaim__one_second_before_deadline__reverts(tasks, task_id):
    boa.env.time_travel(seconds=DEADLINE_IN - 1)
    assert not tasks.reclaimable(task_id)
    with boa.reverts("tasks: deadline not reached"):
        tasks.reclaim(task_id)


def test_reclaim__twice__reverts(tasks, task_id):
    boa.env.time_travel(seconds=DEADLINE_IN)
    tasks.reclaim(task_id)
    with boa.reverts("tasks: task reclaimed"):
        tasks.reclaim(task_id)


def test_reclaim__live_claim__reverts(tasks, task_id, claim_id):
    boa.env.time_travel(seconds=DEADLINE_IN)
    with boa.reverts("tasks: task has a live claim"):
        tasks.reclaim(task_id)


def test_reclaim__finalized__reverts(tasks, task_id, claim_id):
    boa.env.time_travel(seconds=DEADLINE_IN)
    tasks.finalize(claim_id)
    with boa.reverts("tasks: task finalized"):
        tasks.reclaim(task_id)


def test_reclaim__no_such_task__reverts(tasks):
    with boa.reverts("tasks: no such task"):
        tasks.reclaim(3)


def test_reclaim__after_late_rejection__works(tasks, token, mock_game, task_id, claim_id, poster, challengers):
    """A claim rejected after the deadline leaves the task unclaimable; the poster is refunded."""
    ch = _challenge(tasks, claim_id, challengers[0])
    boa.env.time_travel(seconds=DEADLINE_IN)
    _decide(tasks, mock_game, ch, CHALLENGER_WON)
    tasks.settle(ch)
    assert not tasks.claimable(task_id)
    before = token.balanceOf(poster)
    tasks.reclaim(task_id)
    assert token.balanceOf(poster) == before + REWARD
    assert tasks.owed() == prize_of(SOLVER_BOND)  # the winner's prize, collected below
    tasks.collect(ch)
    assert tasks.owed() == 0
    _assert_solvent(tasks, token)


# --- adversarial scenarios (docs/SPEC.md 7.7) --------------------------------------------------


def test_scenario__copier_front_runs_the_commitment__loses_its_bond_on_expiry(
    tasks, token, task_id, solver, funded, stranger
):
    """Front-running a claim does not pay: a copier that sends the honest solver's commitment
    first holds a slot it cannot reveal (the commitment binds the honest address), its whole
    bond burns on expiry, and the honest solver then claims and is paid in full."""
    copier = funded[5]
    honest_com = commitment(task_id, FINAL, solver)
    copier_before, solver_before = token.balanceOf(copier), token.balanceOf(solver)

    copied = tasks.commit_claim(task_id, honest_com, sender=copier)  # lands first
    with boa.reverts("tasks: task has a live claim"):
        tasks.commit_claim(task_id, honest_com, sender=solver)
    # neither the copier (commitment made for another address) nor the solver (not the
    # committer) can open the copied commitment
    with boa.reverts("tasks: reveal does not match commitment"):
        tasks.reveal_claim(copied, FINAL, SALT, sender=copier)
    with boa.reverts("tasks: not the committer"):
        tasks.reveal_claim(copied, FINAL, SALT, sender=solver)
    _past_reveal(tasks, copied)
    tasks.expire_claim(copied, sender=stranger)

    cid = _claim(tasks, task_id, solver)
    _past_window(tasks, cid)
    tasks.finalize(cid)
    assert token.balanceOf(copier) == copier_before - SOLVER_BOND
    assert token.balanceOf(solver) == solver_before + REWARD
    assert tasks.burned() == SOLVER_BOND
    assert tasks.owed() == 0
    _assert_solvent(tasks, token)


def test_scenario__copier_commits_first_and_reveals_a_guess__is_challenged(
    tasks, token, mock_game, task_id, solver, funded, challengers
):
    """A copier that takes the slot first does not know the root; whatever it reveals is wrong,
    an honest watchtower rejects it and is paid, and the honest solver claims after."""
    copier, tower = funded[5], challengers[0]
    guess = keccak(b"a guessed root")
    copier_before, tower_before, solver_before = (token.balanceOf(a) for a in (copier, tower, solver))

    bad = _claim(tasks, task_id, copier, guess)
    with boa.reverts("tasks: task has a live claim"):  # the honest solver waits for the rejection
        tasks.commit_claim(task_id, commitment(task_id, FINAL, solver), sender=solver)
    ch = tasks.challenge(bad, sender=tower)
    _decide(tasks, mock_game, ch, CHALLENGER_WON)
    tasks.settle(ch)
    good = _claim(tasks, task_id, solver)
    _past_window(tasks, bad)
    tasks.collect(ch)
    _past_window(tasks, good)
    tasks.finalize(good)

    assert token.balanceOf(copier) == copier_before - SOLVER_BOND
    assert token.balanceOf(tower) == tower_before + prize_of(SOLVER_BOND)
    assert token.balanceOf(solver) == solver_before + REWARD
    assert tasks.owed() == 0
    _assert_solvent(tasks, token)


def test_scenario__copier_after_the_honest_reveal__cannot_use_the_seen_root(
    tasks, token, task_id, claim_id, solver, funded
):
    """The root becomes public only at the reveal, when the slot is long taken: a copier that
    commits the seen root is reverted, and the honest solver is paid in full."""
    copier = funded[5]
    with boa.reverts("tasks: task has a live claim"):
        tasks.commit_claim(task_id, commitment(task_id, FINAL, copier), sender=copier)
    before = token.balanceOf(solver)
    _past_window(tasks, claim_id)
    tasks.finalize(claim_id)
    assert token.balanceOf(solver) == before + REWARD + SOLVER_BOND


@pytest.mark.parametrize("sybil_settles_first", [True, False])
def test_scenario__cheater_self_challenges__honest_watchtower_still_paid(
    tasks, token, mock_game, task_id, funded, sybil_settles_first
):
    """A cheater cannot pick which challenger is paid: its sybil challenges at once and loses on
    purpose, settling first; the honest watchtower that challenges a day later, still within the
    window, plays its game and gets its bond back and a share in proportion to its metered gas,
    far above the sybil's, whose conceded game metered only its challenge transaction. The
    cheater loses at least the burn plus the honest share."""
    cheater, sybil, tower = funded[1], funded[2], funded[3]
    before = {a: token.balanceOf(a) for a in (cheater, sybil, tower)}
    cid = _claim(tasks, task_id, cheater, keccak(b"a wrong root"))

    syb = tasks.challenge(cid, sender=sybil)
    _decide(tasks, mock_game, syb, CHALLENGER_WON)  # the cheater concedes its sybil's game
    if sybil_settles_first:
        tasks.settle(syb)
        assert tasks.claims(cid).state == CLAIM_REJECTED
    boa.env.time_travel(seconds=86_400)
    hon = tasks.challenge(cid, sender=tower)  # the rejected claim is still challengeable
    mock_game.set_challenger_gas(tasks.challenges(hon).game_id, 1_300_000)  # a whole game's moves
    _decide(tasks, mock_game, hon, CHALLENGER_WON)
    tasks.settle(hon)
    if not sybil_settles_first:
        tasks.settle(syb)
    _past_window(tasks, cid)
    tasks.collect(syb)
    tasks.collect(hon)

    g_syb, g_hon = tasks.challenges(syb).gas, tasks.challenges(hon).gas
    share = prize_of(SOLVER_BOND) * g_hon // (g_syb + g_hon)
    syb_share = prize_of(SOLVER_BOND) * g_syb // (g_syb + g_hon)
    assert share > 4 * syb_share  # the mock's create is cheap: its sybil weighs ~0.3M gas
    assert token.balanceOf(tower) == before[tower] + share
    assert token.balanceOf(sybil) == before[sybil] + syb_share
    team_loss = before[cheater] + before[sybil] - token.balanceOf(cheater) - token.balanceOf(sybil)
    assert team_loss == SOLVER_BOND - syb_share
    assert team_loss >= burn_of(SOLVER_BOND) + share
    assert tasks.owed() == REWARD
    _assert_solvent(tasks, token)


@pytest.mark.parametrize("timeout_settles_first", [True, False])
def test_scenario__sybil_swarm__every_game_won_still_pays_the_solver(
    tasks, token, mock_game, task_id, solver, challengers, timeout_settles_first
):
    """A sybil swarm is not free: the honest solver misses one clock in one game, which rejects
    its claim, yet every other game it wins still slashes that sybil's bond and pays the solver,
    in whatever order anyone settles."""
    swarm = challengers[:4]
    before = {a: token.balanceOf(a) for a in [solver, *swarm]}
    cid = _claim(tasks, task_id, solver)
    ids = [tasks.challenge(cid, sender=s) for s in swarm]
    _decide(tasks, mock_game, ids[0], CHALLENGER_WON)  # the solver's clock ran out here
    for ch in ids[1:]:
        _decide(tasks, mock_game, ch, SOLVER_WON)
    order = ids if timeout_settles_first else ids[::-1]
    for ch in order:
        tasks.settle(ch)
    assert tasks.claims(cid).state == CLAIM_REJECTED
    _past_window(tasks, cid)
    tasks.collect(ids[0])

    slash_prize = CHALLENGER_BOND - burn_of(CHALLENGER_BOND)
    assert token.balanceOf(solver) == before[solver] - SOLVER_BOND + 3 * slash_prize
    assert token.balanceOf(swarm[0]) == before[swarm[0]] + prize_of(SOLVER_BOND)
    for s in swarm[1:]:
        assert token.balanceOf(s) == before[s] - CHALLENGER_BOND
    assert [tasks.challenges(ch).state for ch in ids] == [CHALLENGE_COLLECTED] + [CHALLENGE_LOST] * 3
    assert tasks.owed() == REWARD
    _assert_solvent(tasks, token)


# --- views -------------------------------------------------------------------------------------


def test_views__unknown_ids(tasks):
    assert tasks.challenge_deadline(1) == 0
    assert tasks.reveal_deadline(1) == 0
    assert tasks.prize_share(1) == 0
    assert not tasks.expirable(1)
    assert not tasks.collectable(1)
    assert not tasks.claimable(1)
    assert not tasks.settleable(1)
    assert not tasks.finalizable(1)
    assert not tasks.reclaimable(1)


# --- gas ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_gas__report(tasks, token, mock_game, availability, token_deployer, mock_game_deployer, tasks_deployer):
    """Prints the receipt gas of each external call (seen with -s) and guards against regressions.

    Measured as real transactions on py-evm through web3's EthereumTesterProvider, since
    titanoboa keeps storage warm across calls. `challenge` includes MockGame.create, which
    stores ten words (about 225_000 gas); the real game's `create` replaces that share.
    """
    from web3 import EthereumTesterProvider, Web3

    w3 = Web3(EthereumTesterProvider())
    acct = w3.eth.accounts

    def deploy(deployer, abi, *args):
        factory = w3.eth.contract(abi=abi, bytecode=deployer.compiler_data.bytecode)
        receipt = w3.eth.get_transaction_receipt(factory.constructor(*args).transact({"from": acct[0]}))
        return w3.eth.contract(address=receipt.contractAddress, abi=abi)

    def send(fn, sender=acct[0]) -> int:
        receipt = w3.eth.get_transaction_receipt(fn.transact({"from": sender}))  # auto-mined
        assert receipt.status == 1
        return receipt.gasUsed

    def now() -> int:
        return w3.eth.get_block("latest").timestamp

    tok = deploy(token_deployer, token.abi)
    game = deploy(mock_game_deployer, mock_game.abi)
    avail = deploy(boa.load_partial(str(ROOT / "contracts" / "Availability.vy")), availability.abi)
    reg = deploy(tasks_deployer, tasks.abi, tok.address, game.address, avail.address)
    send(game.functions.set_tasks(reg.address))
    for a in acct[:5]:
        send(tok.functions.mint(a, 10**30))
        send(tok.functions.approve(reg.address, 2**256 - 1), a)
    post = reg.functions.post_task(*task_args(deadline=now() + DEADLINE_IN))

    gas = {}
    gas["post_task"] = send(post)
    gas["commit_claim"] = send(reg.functions.commit_claim(1, commitment(1, FINAL, acct[1])), acct[1])
    gas["reveal_claim"] = send(reg.functions.reveal_claim(1, FINAL, SALT), acct[1])
    gas["challenge (first)"] = send(reg.functions.challenge(1), acct[2])
    gas["challenge (second)"] = send(reg.functions.challenge(1), acct[3])
    send(game.functions.set_outcome(1, SOLVER_WON))
    send(game.functions.set_outcome(2, SOLVER_WON))
    gas["settle (solver won, first)"] = send(reg.functions.settle(1), acct[4])
    gas["settle (solver won, again)"] = send(reg.functions.settle(2), acct[4])
    w3.provider.ethereum_tester.time_travel(now() + WINDOW + 1)
    gas["finalize"] = send(reg.functions.finalize(1), acct[4])

    send(reg.functions.post_task(*task_args(deadline=now() + DEADLINE_IN)))
    send(reg.functions.commit_claim(2, commitment(2, FINAL, acct[1])), acct[1])
    send(reg.functions.reveal_claim(2, FINAL, SALT), acct[1])
    send(reg.functions.challenge(2), acct[2])
    send(reg.functions.challenge(2), acct[3])
    send(game.functions.set_outcome(3, CHALLENGER_WON))
    send(game.functions.set_outcome(4, CHALLENGER_WON))
    gas["settle (challenger won, rejects)"] = send(reg.functions.settle(3), acct[4])
    gas["settle (challenger won, again)"] = send(reg.functions.settle(4), acct[4])
    w3.provider.ethereum_tester.time_travel(now() + WINDOW + 1)
    gas["collect (first)"] = send(reg.functions.collect(3), acct[4])
    gas["collect (last, burns dust)"] = send(reg.functions.collect(4), acct[4])
    send(reg.functions.commit_claim(2, commitment(2, FINAL, acct[1])), acct[1])
    w3.provider.ethereum_tester.time_travel(now() + CLOCK + 1)
    gas["expire_claim"] = send(reg.functions.expire_claim(3), acct[4])
    w3.provider.ethereum_tester.time_travel(now() + DEADLINE_IN + 1)
    gas["reclaim"] = send(reg.functions.reclaim(2), acct[4])
    assert tok.functions.balanceOf(reg.address).call() == reg.functions.owed().call() == 0

    print("\nreceipt gas per transaction:")
    for k, v in gas.items():
        print(f"  {k:<34}{v:>9,}")
    assert gas["post_task"] < 500_000
    assert gas["commit_claim"] < 250_000
    assert gas["reveal_claim"] < 100_000
    assert gas["challenge (first)"] < 550_000
    for k in (
        "settle (solver won, first)", "settle (challenger won, rejects)", "settle (challenger won, again)",
        "collect (first)", "collect (last, burns dust)", "expire_claim", "finalize", "reclaim",
    ):
        assert gas[k] < 150_000, k


@pytest.mark.parametrize("state_change", ["none", "done", "reclaimed"])
def test_task_terms_word__every_field_at_its_limit_reads_back(tasks, mock_game, poster, solver, stranger, state_change):
    """A task's sizes, clock, window and state share one word: at their largest (and with the
    state rewritten by a finalize or a reclaim) no field spills into its neighbour."""
    big = dict(n_nodes=tasks.MAX_NODES(), n_slots=tasks.MAX_SLOTS(), steps=tasks.MAX_STEPS(),
               arity=tasks.MAX_ARITY(), clock=tasks.MAX_CLOCK(), window=tasks.MAX_WINDOW())
    tid = tasks.post_task(*task_args(**big), sender=poster)
    want_state = 1
    if state_change == "done":
        cid = _claim(tasks, tid, solver)
        boa.env.time_travel(seconds=big["window"])
        tasks.finalize(cid, sender=stranger)
        want_state = 2
    elif state_change == "reclaimed":
        boa.env.time_travel(seconds=DEADLINE_IN)
        tasks.reclaim(tid, sender=stranger)
        want_state = 3
    t = tasks.tasks(tid)
    assert {k: getattr(t, k) for k in big} == big
    assert (t.state, t.graph_root, t.initial_root, t.dataset_root) == (want_state, GRAPH, INITIAL, DATASET)
    assert (t.reward, t.solver_bond, t.challenger_bond) == (REWARD, SOLVER_BOND, CHALLENGER_BOND)
