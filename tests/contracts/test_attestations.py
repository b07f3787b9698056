"""Unit tests of contracts/Attestations.vy over the real Tasks.vy, Token.vy and the mock game.

Every check of the contract is hit by raw calls from the account it is meant to stop (the
solver, a copier, a lazy watchtower, a stranger settling for others), at both time edges, and
the contract holds exactly `owed()` after every call (docs/SPEC.md 7.10).
"""

from __future__ import annotations

import boa
import pytest

from verifier.commit.commitments import keccak, state_root

PENDING, SOLVER_WON, CHALLENGER_WON = 0, 1, 2
CLAIM_LIVE, CLAIM_REJECTED, CLAIM_FINALIZED = 2, 3, 4
ATTEST_NONE, ATTEST_COMMITTED, ATTEST_REVEALED, ATTEST_COLLECTED = 0, 1, 2, 3

E18 = 10**18
REWARD = 1_000 * E18
SOLVER_BOND = 100 * E18
CHALLENGER_BOND = 250 * E18  # the protocol minimum (Tasks.vy MIN_CHALLENGER_BOND)
WINDOW = 172_800
CLOCK = 172_800
REVEAL_PERIOD = 172_800
FEE = 300 * E18
N_NODES, N_SLOTS, STEPS = 12, 30, 1_000
GRAPH, INITIAL, DATASET = keccak(b"graph"), keccak(b"initial"), keccak(b"dataset")
SLOTS = keccak(b"the final slot table")  # what only a party that ran the program knows
FINAL = state_root(STEPS, 0, SLOTS)
SALT = keccak(b"claim salt")
MAX_UINT = 2**256 - 1


def claim_commitment(task_id: int, root: bytes, solver: str, salt: bytes = SALT) -> bytes:
    return keccak(task_id.to_bytes(32, "big"), root, bytes(12) + bytes.fromhex(str(solver)[2:]), salt)


def att_commitment(claim_id: int, slots: bytes, verifier: str, salt: bytes) -> bytes:
    """keccak256(abi_encode(claim_id, slots_root, verifier, salt)), written out by hand."""
    return keccak(claim_id.to_bytes(32, "big"), slots, bytes(12) + bytes.fromhex(str(verifier)[2:]), salt)


def salt_of(who: str) -> bytes:
    return keccak(b"attest salt", bytes.fromhex(str(who)[2:]))


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def att_deployer():
    from _court import CONTRACTS  # conftest is ambiguous when several test folders share a process

    return boa.load_partial(str(CONTRACTS / "Attestations.vy"))


@pytest.fixture(scope="session")
def att(att_deployer, tasks, deployer):
    with boa.env.prank(deployer):
        return att_deployer.deploy(tasks.address)


@pytest.fixture(scope="session")
def people(funded, token, att, deployer):
    """poster, solver, then eight verifiers (the first four can also challenge on Tasks);
    every one approves the fee contract."""
    _TOKEN[:] = [token]
    extra = [boa.env.generate_address(f"verifier{i}") for i in range(4)]
    for a in [*funded, *extra]:
        with boa.env.prank(a):
            token.approve(att, MAX_UINT)
    with boa.env.prank(deployer):
        for a in extra:
            token.mint(a, 10**6 * E18)
    return [*funded, *extra]


@pytest.fixture
def poster(people):
    return people[0]


@pytest.fixture
def solver(people):
    return people[1]


@pytest.fixture
def verifiers(people):
    return people[2:]


@pytest.fixture
def stranger():
    return boa.env.generate_address("stranger")


@pytest.fixture
def task_id(tasks, poster):
    return post(tasks, poster)


@pytest.fixture
def claim_id(tasks, task_id, solver):
    return make_claim(tasks, task_id, solver)


def post(tasks, poster) -> int:
    return tasks.post_task(
        GRAPH, N_NODES, N_SLOTS, INITIAL, DATASET, STEPS, REWARD, WINDOW, CLOCK, SOLVER_BOND, CHALLENGER_BOND, 4,
        boa.env.timestamp + 20 * 86_400, sender=poster,
    )  # fmt: skip


def make_claim(tasks, task_id, solver, root=FINAL) -> int:
    cid = tasks.commit_claim(task_id, claim_commitment(task_id, root, solver), sender=solver)
    tasks.reveal_claim(cid, root, SALT, sender=solver)
    return cid


def attest(att, cid, who, slots=SLOTS) -> None:
    att.attest(cid, att_commitment(cid, slots, who, salt_of(who)), sender=who)
    solvent(att)


def reveal(att, cid, who, slots=SLOTS) -> None:
    att.reveal_attestation(cid, slots, salt_of(who), sender=who)
    solvent(att)


def window_end(tasks, cid) -> int:
    return tasks.challenge_deadline(cid)


def travel_to(t: int) -> None:
    boa.env.time_travel(seconds=t - boa.env.timestamp)


_TOKEN: list = []  # the session's token, for `solvent`


def solvent(att) -> None:
    """The contract holds exactly what it owes."""
    assert _TOKEN[0].balanceOf(att) == att.owed()


def reject(tasks, mock_game, cid, challenger) -> None:
    chid = tasks.challenge(cid, sender=challenger)
    mock_game.set_outcome(tasks.challenges(chid).game_id, CHALLENGER_WON)
    tasks.settle(chid, sender=challenger)
    assert tasks.claims(cid).state == CLAIM_REJECTED


def events(contract, name: str) -> list:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def finalized_with(att, tasks, task_id, solver, attesters, fee=FEE, funder=None) -> int:
    """A funded task whose claim `attesters` attest and reveal; finalized; reveal period over."""
    att.fund(task_id, fee, sender=funder or attesters[0])
    cid = make_claim(tasks, task_id, solver)
    for v in attesters:
        attest(att, cid, v)
    travel_to(window_end(tasks, cid))
    tasks.finalize(cid)
    for v in attesters:
        reveal(att, cid, v)
    travel_to(window_end(tasks, cid) + REVEAL_PERIOD)
    return cid


# --- deployment ----------------------------------------------------------------------------------


def test_deploy__reads_the_token_from_tasks(att, tasks, token):
    assert att.tasks() == tasks.address and att.token() == token.address
    assert att.REVEAL_PERIOD() == REVEAL_PERIOD


def test_deploy__zero_tasks__reverts(att_deployer):
    with boa.reverts("attest: tasks is the zero address"):
        att_deployer.deploy("0x" + "00" * 20)


def test_commitment__matches_the_hand_written_encoding(att, verifiers):
    v = verifiers[0]
    assert att.attestation_commitment(7, SLOTS, v, salt_of(v)) == att_commitment(7, SLOTS, v, salt_of(v))


# --- fund ----------------------------------------------------------------------------------------


def test_fund__pulls_and_records_each_funder(att, token, task_id, poster, verifiers):
    before = token.balanceOf(poster)
    att.fund(task_id, FEE, sender=poster)
    (ev,) = events(att, "FeeFunded")
    att.fund(task_id, 5, sender=verifiers[0])
    assert token.balanceOf(poster) == before - FEE
    assert att.fees(task_id) == FEE + 5 and att.owed() == FEE + 5
    assert att.contributions(task_id, poster) == FEE and att.contributions(task_id, verifiers[0]) == 5
    assert (ev.task_id, ev.funder, ev.amount, ev.fee) == (task_id, poster, FEE, FEE)
    solvent(att)


def test_fund__zero__reverts(att, task_id, poster):
    with boa.reverts("attest: fee is zero"):
        att.fund(task_id, 0, sender=poster)


def test_fund__no_such_task__reverts(att, poster):
    with boa.reverts("attest: no such task"):
        att.fund(999, 1, sender=poster)


def test_fund__done_task__reverts(att, tasks, task_id, solver, poster):
    cid = make_claim(tasks, task_id, solver)
    travel_to(window_end(tasks, cid))
    tasks.finalize(cid)
    with boa.reverts("attest: task not open"):
        att.fund(task_id, 1, sender=poster)


def test_fund__reclaimed_task__reverts(att, tasks, task_id, poster):
    travel_to(tasks.tasks(task_id).deadline)
    tasks.reclaim(task_id)
    with boa.reverts("attest: task not open"):
        att.fund(task_id, 1, sender=poster)


def test_fund__without_allowance__reverts(att, task_id, stranger):
    with boa.reverts("erc20: insufficient allowance"):
        att.fund(task_id, 1, sender=stranger)


# --- attest --------------------------------------------------------------------------------------


def test_attest__records_and_logs(att, claim_id, task_id, verifiers):
    v = verifiers[0]
    c = att_commitment(claim_id, SLOTS, v, salt_of(v))
    att.attest(claim_id, c, sender=v)
    (ev,) = events(att, "Attested")
    assert (ev.claim_id, ev.task_id, ev.verifier, ev.commitment) == (claim_id, task_id, v, c)
    assert att.attestations(claim_id, v) == (c, ATTEST_COMMITTED)
    assert att.tallies(claim_id) == (0, 0)


def test_attest__no_such_claim__reverts(att, verifiers):
    with boa.reverts("attest: no such claim"):
        att.attest(999, SLOTS, sender=verifiers[0])


def test_attest__committed_claim__reverts(att, tasks, task_id, solver, verifiers):
    cid = tasks.commit_claim(task_id, claim_commitment(task_id, FINAL, solver), sender=solver)
    with boa.reverts("attest: claim not live"):
        att.attest(cid, SLOTS, sender=verifiers[0])


def test_attest__rejected_claim__reverts(att, tasks, mock_game, claim_id, verifiers):
    reject(tasks, mock_game, claim_id, verifiers[1])
    with boa.reverts("attest: claim not live"):
        att.attest(claim_id, SLOTS, sender=verifiers[0])


def test_attest__window_edges(att, tasks, claim_id, verifiers):
    end = window_end(tasks, claim_id)
    travel_to(end - 1)
    attest(att, claim_id, verifiers[0])  # the last second of the window
    travel_to(end)
    with boa.reverts("attest: challenge window closed"):
        att.attest(claim_id, SLOTS, sender=verifiers[1])


def test_attest__by_the_solver__reverts(att, claim_id, solver):
    with boa.reverts("attest: solver cannot attest own claim"):
        att.attest(claim_id, att_commitment(claim_id, SLOTS, solver, salt_of(solver)), sender=solver)


def test_attest__after_the_first_challenge__reverts(att, tasks, claim_id, verifiers):
    """A game can open slots_root (the solver's last-boundary proof) inside the window: from
    the first challenge on, a commitment no longer proves a re-execution. Earlier ones stand."""
    attest(att, claim_id, verifiers[0])
    tasks.challenge(claim_id, sender=verifiers[1])
    with boa.reverts("attest: claim already challenged"):
        att.attest(claim_id, att_commitment(claim_id, SLOTS, verifiers[2], salt_of(verifiers[2])), sender=verifiers[2])
    assert att.attestations(claim_id, verifiers[0]).state == 1


def test_attest__twice__reverts(att, claim_id, verifiers):
    attest(att, claim_id, verifiers[0])
    with boa.reverts("attest: already attested"):
        att.attest(claim_id, keccak(b"another"), sender=verifiers[0])


# --- reveal --------------------------------------------------------------------------------------


def test_reveal__valid_counts(att, tasks, claim_id, task_id, verifiers):
    v = verifiers[0]
    attest(att, claim_id, v)
    travel_to(window_end(tasks, claim_id))
    att.reveal_attestation(claim_id, SLOTS, salt_of(v), sender=v)
    (ev,) = events(att, "AttestationRevealed")
    assert (ev.claim_id, ev.task_id, ev.verifier, ev.slots_root, ev.valid) == (claim_id, task_id, v, SLOTS, 1)
    assert att.attestations(claim_id, v)[1] == ATTEST_REVEALED
    assert att.tallies(claim_id) == (1, 0)


def test_reveal__no_attestation__reverts(att, tasks, claim_id, verifiers):
    travel_to(window_end(tasks, claim_id))
    with boa.reverts("attest: no attestation"):
        att.reveal_attestation(claim_id, SLOTS, salt_of(verifiers[0]), sender=verifiers[0])


def test_reveal__twice__reverts(att, tasks, claim_id, verifiers):
    attest(att, claim_id, verifiers[0])
    travel_to(window_end(tasks, claim_id))
    reveal(att, claim_id, verifiers[0])
    with boa.reverts("attest: already revealed"):
        att.reveal_attestation(claim_id, SLOTS, salt_of(verifiers[0]), sender=verifiers[0])
    assert att.tallies(claim_id)[0] == 1


def test_reveal__window_edges(att, tasks, claim_id, verifiers):
    """No reveal while attestations are still accepted: it would publish slots_root to copiers."""
    a, b = verifiers[:2]
    attest(att, claim_id, a)
    attest(att, claim_id, b)
    end = window_end(tasks, claim_id)
    travel_to(end - 1)
    with boa.reverts("attest: challenge window open"):
        att.reveal_attestation(claim_id, SLOTS, salt_of(a), sender=a)
    travel_to(end)
    reveal(att, claim_id, a)  # the first second after the window
    travel_to(end + REVEAL_PERIOD - 1)
    reveal(att, claim_id, b)  # the last second of the reveal period


def test_reveal__after_the_period__reverts(att, tasks, claim_id, verifiers):
    attest(att, claim_id, verifiers[0])
    travel_to(window_end(tasks, claim_id) + REVEAL_PERIOD)
    with boa.reverts("attest: reveal period over"):
        att.reveal_attestation(claim_id, SLOTS, salt_of(verifiers[0]), sender=verifiers[0])


def test_reveal__wrong_salt__reverts(att, tasks, claim_id, verifiers):
    attest(att, claim_id, verifiers[0])
    travel_to(window_end(tasks, claim_id))
    with boa.reverts("attest: reveal does not match commitment"):
        att.reveal_attestation(claim_id, SLOTS, keccak(b"other salt"), sender=verifiers[0])


def test_reveal__wrong_slots_root__reverts(att, tasks, claim_id, verifiers):
    """A lazy watchtower commits to a guess: its commitment opens, but not to the claim's root."""
    lazy = verifiers[0]
    guess = keccak(b"a guess")
    attest(att, claim_id, lazy, slots=guess)
    travel_to(window_end(tasks, claim_id))
    with boa.reverts("attest: slots root does not match claim"):
        att.reveal_attestation(claim_id, guess, salt_of(lazy), sender=lazy)
    assert att.tallies(claim_id)[0] == 0


def test_reveal__final_root_itself__reverts(att, tasks, claim_id, verifiers):
    """The public final root is not its own preimage: copying it from the claim earns nothing."""
    lazy = verifiers[0]
    attest(att, claim_id, lazy, slots=FINAL)
    travel_to(window_end(tasks, claim_id))
    with boa.reverts("attest: slots root does not match claim"):
        att.reveal_attestation(claim_id, FINAL, salt_of(lazy), sender=lazy)


def test_reveal__copied_commitment__reverts(att, tasks, claim_id, verifiers):
    """A copier replays an honest verifier's commitment: it binds the honest address."""
    honest, copier = verifiers[:2]
    c = att_commitment(claim_id, SLOTS, honest, salt_of(honest))
    att.attest(claim_id, c, sender=honest)
    att.attest(claim_id, c, sender=copier)
    travel_to(window_end(tasks, claim_id))
    with boa.reverts("attest: reveal does not match commitment"):
        att.reveal_attestation(claim_id, SLOTS, salt_of(honest), sender=copier)
    reveal(att, claim_id, honest)


def test_reveal__rejected_claim__reverts(att, tasks, mock_game, claim_id, verifiers):
    attest(att, claim_id, verifiers[0])
    reject(tasks, mock_game, claim_id, verifiers[1])
    travel_to(window_end(tasks, claim_id))
    with boa.reverts("attest: claim rejected"):
        att.reveal_attestation(claim_id, SLOTS, salt_of(verifiers[0]), sender=verifiers[0])


def test_reveal__uses_the_task_step_count(att, tasks, poster, solver, verifiers):
    """state(T, 0) of another T is another root: the hash binds the task's own step count."""
    tid = post(tasks, poster)
    root_other_t = state_root(STEPS + 1, 0, SLOTS)
    cid = make_claim(tasks, tid, solver, root=root_other_t)
    attest(att, cid, verifiers[0])
    travel_to(window_end(tasks, cid))
    with boa.reverts("attest: slots root does not match claim"):
        att.reveal_attestation(cid, SLOTS, salt_of(verifiers[0]), sender=verifiers[0])


# --- collect -------------------------------------------------------------------------------------


def test_collect__pays_each_valid_attestation_once_permissionless(att, token, tasks, task_id, solver, verifiers, stranger):
    a, b, c = verifiers[:3]
    cid = finalized_with(att, tasks, task_id, solver, [a, b, c], fee=FEE + 2)
    before = [token.balanceOf(v) for v in (a, b, c)]
    burned = token.totalSupply()
    share = (FEE + 2) // 3
    evs = []
    for v in (a, b, c):
        att.collect_fee(cid, v, sender=stranger)  # anyone settles; the verifier is paid
        evs += events(att, "FeeCollected")
        solvent(att)
    assert [token.balanceOf(v) - x for v, x in zip((a, b, c), before)] == [share] * 3
    assert [(e.verifier, e.share) for e in evs] == [(a, share), (b, share), (c, share)]
    assert [e.dust_burned for e in evs] == [0, 0, FEE + 2 - 3 * share] and FEE + 2 - 3 * share > 0
    assert burned - token.totalSupply() == FEE + 2 - 3 * share == att.burned()
    assert att.owed() == 0 and token.balanceOf(att) == 0
    assert att.attestations(cid, a)[1] == ATTEST_COLLECTED and att.tallies(cid) == (3, 3)


def test_collect__twice__reverts(att, tasks, task_id, solver, verifiers):
    cid = finalized_with(att, tasks, task_id, solver, verifiers[:2])
    att.collect_fee(cid, verifiers[0])
    with boa.reverts("attest: fee already collected"):
        att.collect_fee(cid, verifiers[0])
    att.collect_fee(cid, verifiers[1])
    assert att.owed() == 0
    solvent(att)


def test_collect__before_the_reveal_period_ends__reverts(att, tasks, task_id, solver, verifiers):
    v = verifiers[0]
    att.fund(task_id, FEE, sender=v)
    cid = make_claim(tasks, task_id, solver)
    attest(att, cid, v)
    end = window_end(tasks, cid)
    travel_to(end)
    tasks.finalize(cid)
    reveal(att, cid, v)
    travel_to(end + REVEAL_PERIOD - 1)
    with boa.reverts("attest: reveal period open"):
        att.collect_fee(cid, v)
    assert not att.collectable(cid, v)
    travel_to(end + REVEAL_PERIOD)
    assert att.collectable(cid, v)
    att.collect_fee(cid, v)
    solvent(att)


def test_collect__unrevealed_or_unknown__reverts(att, tasks, task_id, solver, verifiers, stranger):
    v, lazy = verifiers[:2]
    att.fund(task_id, FEE, sender=v)
    cid = make_claim(tasks, task_id, solver)
    attest(att, cid, v)
    attest(att, cid, lazy)  # never revealed
    travel_to(window_end(tasks, cid))
    tasks.finalize(cid)
    reveal(att, cid, v)
    travel_to(window_end(tasks, cid) + REVEAL_PERIOD)
    for who in (lazy, stranger):
        with boa.reverts("attest: attestation not revealed"):
            att.collect_fee(cid, who)
    att.collect_fee(cid, v)  # the one valid attestation takes the whole fee
    assert att.owed() == 0
    solvent(att)


def test_collect__live_claim_not_finalized__reverts(att, tasks, mock_game, task_id, solver, verifiers):
    """A claim with a game still running may yet be rejected: no fee until it is finalized."""
    v = verifiers[0]
    att.fund(task_id, FEE, sender=v)
    cid = make_claim(tasks, task_id, solver)
    attest(att, cid, v)
    tasks.challenge(cid, sender=verifiers[1])  # its game stays pending
    travel_to(window_end(tasks, cid))
    reveal(att, cid, v)
    travel_to(window_end(tasks, cid) + REVEAL_PERIOD)
    assert tasks.claims(cid).state == CLAIM_LIVE
    with boa.reverts("attest: claim not finalized"):
        att.collect_fee(cid, v)


def test_rejected_claim__pays_nothing_and_the_fee_waits_for_the_next_claim(
    att, token, tasks, mock_game, task_id, solver, verifiers
):
    """The cheater's colluder reveals a valid root of the wrong claim; the game rejects the
    claim after the window: nothing is paid, and the honest next claim's attester takes it all."""
    colluder, challenger, honest = verifiers[:3]
    att.fund(task_id, FEE, sender=verifiers[3])
    cid = make_claim(tasks, task_id, solver)
    attest(att, cid, colluder)
    chid = tasks.challenge(cid, sender=challenger)
    travel_to(window_end(tasks, cid))
    reveal(att, cid, colluder)  # the game is not over yet: the reveal counts for now
    mock_game.set_outcome(tasks.challenges(chid).game_id, CHALLENGER_WON)
    tasks.settle(chid)
    travel_to(window_end(tasks, cid) + REVEAL_PERIOD)
    with boa.reverts("attest: claim not finalized"):
        att.collect_fee(cid, colluder)
    assert att.fees(task_id) == FEE and att.owed() == FEE
    # the task reopened: the next claim, attested by an honest watchtower, earns the whole fee
    cid2 = make_claim(tasks, task_id, verifiers[3])
    attest(att, cid2, honest)
    travel_to(window_end(tasks, cid2))
    tasks.finalize(cid2)
    reveal(att, cid2, honest)
    travel_to(window_end(tasks, cid2) + REVEAL_PERIOD)
    before = token.balanceOf(honest)
    att.collect_fee(cid2, honest)
    assert token.balanceOf(honest) - before == FEE and att.owed() == 0
    solvent(att)


# --- refund --------------------------------------------------------------------------------------


def test_refund__reclaimed_task__pays_each_funder_permissionless(att, token, tasks, task_id, poster, verifiers, stranger):
    att.fund(task_id, FEE, sender=poster)
    att.fund(task_id, 7, sender=verifiers[0])
    with boa.reverts("attest: task not ended"):
        att.refund(task_id, poster)
    travel_to(tasks.tasks(task_id).deadline)
    tasks.reclaim(task_id)
    before = token.balanceOf(poster)
    att.refund(task_id, poster, sender=stranger)
    (ev,) = events(att, "FeeRefunded")
    assert (ev.task_id, ev.funder, ev.amount) == (task_id, poster, FEE)
    assert token.balanceOf(poster) - before == FEE
    with boa.reverts("attest: nothing to refund"):
        att.refund(task_id, poster)
    att.refund(task_id, verifiers[0])
    assert att.fees(task_id) == 0 and att.owed() == 0
    solvent(att)


def test_refund__nothing_funded__reverts(att, task_id, stranger):
    with boa.reverts("attest: nothing to refund"):
        att.refund(task_id, stranger)


def test_refund__open_task_with_live_claim__reverts(att, tasks, claim_id, task_id, poster):
    att.fund(task_id, FEE, sender=poster)
    with boa.reverts("attest: task not ended"):
        att.refund(task_id, poster)


def test_refund__done_without_valid_attestation__after_the_period(att, token, tasks, task_id, solver, poster, verifiers):
    att.fund(task_id, FEE, sender=poster)
    cid = make_claim(tasks, task_id, solver)
    attest(att, cid, verifiers[0], slots=keccak(b"lazy guess"))  # never valid
    end = window_end(tasks, cid)
    travel_to(end)
    tasks.finalize(cid)
    travel_to(end + REVEAL_PERIOD - 1)
    with boa.reverts("attest: reveal period open"):  # a valid reveal may still come
        att.refund(task_id, poster)
    travel_to(end + REVEAL_PERIOD)
    before = token.balanceOf(poster)
    att.refund(task_id, poster)
    assert token.balanceOf(poster) - before == FEE and att.owed() == 0
    solvent(att)


def test_refund__fee_earned__reverts(att, tasks, task_id, solver, poster, verifiers):
    cid = finalized_with(att, tasks, task_id, solver, verifiers[:1], funder=poster)
    with boa.reverts("attest: fee earned by attesters"):
        att.refund(task_id, poster)
    att.collect_fee(cid, verifiers[0])
    solvent(att)


def test_refund__rejected_claim_then_reclaimed(att, token, tasks, mock_game, task_id, solver, poster, verifiers):
    """A rejected claim's attestations do not stop a refund once the task ends unfinalized."""
    att.fund(task_id, FEE, sender=poster)
    cid = make_claim(tasks, task_id, solver)
    attest(att, cid, verifiers[0])
    chid = tasks.challenge(cid, sender=verifiers[1])
    travel_to(window_end(tasks, cid))
    reveal(att, cid, verifiers[0])
    mock_game.set_outcome(tasks.challenges(chid).game_id, CHALLENGER_WON)
    tasks.settle(chid)
    travel_to(max(tasks.tasks(task_id).deadline, boa.env.timestamp))
    tasks.reclaim(task_id)
    att.refund(task_id, poster)
    assert att.owed() == 0
    solvent(att)


# --- sybils ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("honest,sybils", [(1, 0), (1, 1), (2, 3), (3, 1)])
def test_sybils__dilute_equally_and_the_books_balance(att, token, tasks, task_id, solver, verifiers, honest, sybils):
    """The solver knows slots_root and attests from sybil addresses: every valid attestation,
    honest or not, gets floor(fee / (h + k)), the dust is burned, and nothing else moves."""
    fee = 1_000 * E18 + 1  # odd: leaves dust for every count above 1
    sybil_addrs = [boa.env.generate_address(f"sybil{i}") for i in range(sybils)]
    attesters = [*verifiers[:honest], *sybil_addrs]
    cid = finalized_with(att, tasks, task_id, solver, attesters, fee=fee, funder=verifiers[3])
    n = honest + sybils
    assert att.fee_share(cid) == fee // n
    supply = token.totalSupply()
    got = []
    for v in attesters:
        before = token.balanceOf(v)
        att.collect_fee(cid, v)
        got.append(token.balanceOf(v) - before)
        solvent(att)
    assert got == [fee // n] * n
    assert supply - token.totalSupply() == fee - n * (fee // n)
    assert att.owed() == 0


def test_views__reveal_period_and_fee_share(att, tasks, claim_id, task_id, poster, verifiers):
    end = window_end(tasks, claim_id)
    assert att.reveal_period(claim_id) == (end, end + REVEAL_PERIOD)
    assert att.reveal_period(999) == (0, 0)
    assert att.fee_share(claim_id) == 0
    att.fund(task_id, 10, sender=poster)
    for v in verifiers[:3]:
        attest(att, claim_id, v)
    travel_to(end)
    for v in verifiers[:3]:
        reveal(att, claim_id, v)
    assert att.fee_share(claim_id) == 3
