"""Stateful property test of contracts/Tasks.vy against a Python shadow model.

Rules post tasks, commit claims (honest or wrong roots, and copied commitments that bind another
address and so can never be revealed), reveal them (by the committer, by others, with a wrong
salt), publish their results (the claimed slot, another state's, an unpublished tensor, a
slot that is not the task's result), expire them (unrevealed, or standing with the result
withheld), challenge (honest challengers, the solver's sybils from other addresses,
and the solver itself, which must revert; rejected claims stay challengeable within their
window), decide games on the mock, settle, collect prize shares, finalize, reclaim and travel
in time, landing one second either side of every reveal deadline, window and task deadline.
For every call the model predicts success or the exact revert reason.

Games are decided as a sound game would: a claim with the honest root can only end
SOLVER_WON; a wrong claim ends CHALLENGER_WON against an honest challenger, or SOLVER_WON
against a sybil that loses on purpose (or CHALLENGER_WON for a sybil the cheater lets win).
At the end (teardown) every game is decided, every prize collected and every task closed, and
the contract must be empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boa
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import numpy as np

from tests.contracts._court import publish_tensor
from verifier.commit.commitments import SlotTable, commit_tensor, keccak

PENDING, SOLVER_WON, CHALLENGER_WON = 0, 1, 2
TASK_OPEN, TASK_DONE, TASK_RECLAIMED = 1, 2, 3
CLAIM_COMMITTED, CLAIM_LIVE, CLAIM_REJECTED, CLAIM_FINALIZED, CLAIM_EXPIRED = 1, 2, 3, 4, 5
CHALLENGE_OPEN, CHALLENGE_LOST, CHALLENGE_WON, CHALLENGE_COLLECTED = 1, 2, 3, 4

MIN_WINDOW, MIN_CLOCK = 172_800, 172_800
# every task here: 20 slots and 50 steps; a task with a result has slot 3 as its result
N_SLOTS, STEPS, RESULT_SLOT, OTHER_SLOT = 20, 50, 3, 4
TRUE_RESULT = np.arange(6, dtype=np.int32)
WRONG_RESULT = TRUE_RESULT[::-1].copy()
UNPUBLISHED = np.full(6, 7, dtype=np.int32)


def final_state(result: np.ndarray) -> SlotTable:
    """A final slot table with `result` in the result slot (the others a fixed filler)."""
    table = SlotTable(N_SLOTS)
    for i in range(N_SLOTS):
        table.set(i, commit_tensor(result) if i == RESULT_SLOT else keccak(b"slot", bytes([i])))
    return table


HONEST_STATE, WRONG_STATE = final_state(TRUE_RESULT), final_state(WRONG_RESULT)
HONEST_ROOT = HONEST_STATE.state_root(STEPS, 0)
WRONG_ROOT = WRONG_STATE.state_root(STEPS, 0)


def burn_of(bond: int) -> int:
    return -(-bond * 5_000 // 10_000)


def commitment(task_id: int, root: bytes, solver: str, salt: bytes) -> bytes:
    """keccak256(abi_encode(task_id, final_root, solver, salt))."""
    return keccak(task_id.to_bytes(32, "big"), root, bytes(12) + bytes.fromhex(str(solver)[2:]), salt)


@dataclass
class Task:
    poster: str
    reward: int
    solver_bond: int
    challenger_bond: int
    window: int
    clock: int
    deadline: int
    state: int = TASK_OPEN
    claim_id: int = 0
    # slot RESULT_SLOT of the final state must be published before a claim is finalized
    with_result: bool = False


@dataclass
class Claim:
    task_id: int
    solver: str
    honest: bool
    # the committed root and salt; copied commitments bind another address and never open
    root: bytes
    salt: bytes
    copied: bool
    time: int
    state: int = CLAIM_COMMITTED
    challenge_ids: list[int] = field(default_factory=list)
    unsettled: int = 0
    winners: int = 0
    collected: int = 0
    # the rejected claim's prize not yet paid out (or burned as dust)
    prize_left: int = 0
    # G: the metered gas of its winners settled so far; the prize is split in proportion to it
    gas: int = 0
    # the prize paid to its winners so far
    shared: int = 0
    # its result slot was shown available
    published: bool = False


@dataclass
class Challenge:
    claim_id: int
    challenger: str
    game_id: int
    # the challenge transaction's metered gas (read from the chain: the model cannot price gas)
    tx_gas: int = 0
    # what its game's meter says (set on the mock with the outcome)
    game_gas: int = 0
    outcome: int = PENDING
    state: int = CHALLENGE_OPEN


# which entry a rule acts on: mostly one where the call can succeed, sometimes any, rarely none
ids = st.tuples(st.sampled_from(["good"] * 5 + ["any"] * 2 + ["missing"]), st.integers(0, 63))
amounts = st.integers(min_value=1, max_value=501)
# the protocol's range of challenger bonds starts at 250 tokens (Tasks.vy MIN_CHALLENGER_BOND)
challenger_bonds = st.integers(min_value=250 * 10**18, max_value=250 * 10**18 + 501)


class TasksMachine(RuleBasedStateMachine):
    # set by the test function from the session fixtures
    tasks = token = game = availability = None
    actors: list[str] = []

    def __init__(self):
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.model_tasks: dict[int, Task] = {}
        self.model_claims: dict[int, Claim] = {}
        self.model_challenges: dict[int, Challenge] = {}
        self.balances = {a: self.token.balanceOf(a) for a in self.actors}
        self.supply0 = self.token.totalSupply()
        self.burned = 0
        self.salts = 0

    # --- model helpers ---------------------------------------------------------------------

    def now(self) -> int:
        return boa.env.timestamp

    def pick(self, table: dict, i: tuple[str, int], prefer=lambda x: True) -> int:
        """An id whose entry `prefer`s (the call can succeed), any id, or a missing one: 0 or
        one past the last (ids run 1..n)."""
        kind, j = i
        good = [k for k, v in table.items() if prefer(v)]
        if kind == "missing" or not table:
            return (0, len(table) + 1)[j % 2]
        if kind == "good" and good:
            return good[j % len(good)]
        return 1 + j % len(table)

    def task_of(self, c: Claim) -> Task:
        return self.model_tasks[c.task_id]

    def revealed(self, c: Claim) -> bool:
        return c.state in (CLAIM_LIVE, CLAIM_REJECTED, CLAIM_FINALIZED)

    def window_end(self, c: Claim) -> int:
        return c.time + self.task_of(c).window

    def reveal_end(self, c: Claim) -> int:
        return c.time + self.task_of(c).clock

    def result_published(self, c: Claim) -> bool:
        return c.published or not self.task_of(c).with_result

    def expirable(self, c: Claim) -> bool:
        if c.state == CLAIM_LIVE:
            return self.closed(c) and not self.result_published(c)
        return c.state == CLAIM_COMMITTED and self.now() >= self.reveal_end(c)

    def closed(self, c: Claim) -> bool:
        return self.now() >= self.window_end(c) and not c.unsettled

    def weight(self, ch: Challenge) -> int:
        """A winner's metered gas: its challenge transaction plus its game's meter, capped."""
        return ch.tx_gas + min(ch.game_gas, 2**64)

    def prize(self, c: Claim) -> int:
        b = self.task_of(c).solver_bond
        return b - burn_of(b)

    def owed(self) -> int:
        total = sum(t.reward for t in self.model_tasks.values() if t.state == TASK_OPEN)
        for c in self.model_claims.values():
            if c.state in (CLAIM_COMMITTED, CLAIM_LIVE):
                total += self.task_of(c).solver_bond
            total += c.prize_left
        for ch in self.model_challenges.values():
            if ch.state == CHALLENGE_OPEN:
                total += self.task_of(self.model_claims[ch.claim_id]).challenger_bond
        return total

    def pay(self, who: str, amount: int):
        self.balances[who] += amount

    # --- rules -----------------------------------------------------------------------------

    @initialize(
        n_tasks=st.integers(1, 3),
        honest=st.booleans(),
        solver_bond=amounts,
        challenger_bond=challenger_bonds,
        n_challengers=st.integers(0, 3),
    )
    def start(self, n_tasks, honest, solver_bond, challenger_bond, n_challengers):
        """Every run starts busy: a few tasks, the first one claimed, revealed and challenged."""
        for k in range(n_tasks):
            self.post_task(k, 1_000, solver_bond, challenger_bond, 0, 0, 1_000_000, k % 2 == 1)
        self.commit(("good", 0), 1, honest, False)
        self.reveal(("good", 0), 0, "none")
        for k in range(n_challengers):
            self.challenge(("good", 0), 1 + k)

    @rule(
        poster=st.integers(0, 5),
        reward=st.integers(0, 1001),
        solver_bond=amounts,
        challenger_bond=challenger_bonds,
        window_extra=st.sampled_from([0, 1, 3_600, 86_400]),
        clock_extra=st.sampled_from([0, 1, 86_400]),
        deadline_in=st.sampled_from([1, 86_400, 172_800, 400_000, 1_000_000]),
        with_result=st.booleans(),
    )
    def post_task(self, poster, reward, solver_bond, challenger_bond, window_extra, clock_extra, deadline_in, with_result):
        who = self.actors[poster]
        window, clock = MIN_WINDOW + window_extra, MIN_CLOCK + clock_extra
        deadline = self.now() + deadline_in
        tid = self.tasks.post_task(
            keccak(b"graph"), 7, N_SLOTS, keccak(b"init"), keccak(b"data"), STEPS, reward, window, clock,
            solver_bond, challenger_bond, 4, deadline, (1 << RESULT_SLOT) if with_result else 0, sender=who,
        )
        assert tid == len(self.model_tasks) + 1
        self.model_tasks[tid] = Task(who, reward, solver_bond, challenger_bond, window, clock, deadline, with_result=with_result)
        self.pay(who, -reward)

    @precondition(lambda self: self.model_tasks)
    @rule(i=ids, solver=st.integers(0, 5), honest=st.booleans(), copied=st.booleans())
    def commit(self, i, solver, honest, copied):
        """A solver commits to a root; a copier commits a commitment copied from someone else's
        transaction (bound to that address), which it can never reveal."""
        tid = self.pick(
            self.model_tasks, i, lambda t: t.state == TASK_OPEN and not t.claim_id and self.now() < t.deadline
        )
        who = self.actors[solver]
        t = self.model_tasks.get(tid)
        if t is None:
            reason = "tasks: no such task"
        elif t.state == TASK_DONE:
            reason = "tasks: task finalized"
        elif t.state == TASK_RECLAIMED:
            reason = "tasks: task reclaimed"
        elif t.claim_id:
            reason = "tasks: task has a live claim"
        elif self.now() >= t.deadline:
            reason = "tasks: deadline passed"
        else:
            reason = None
        root = HONEST_ROOT if honest else WRONG_ROOT
        self.salts += 1
        salt = keccak(b"salt", self.salts.to_bytes(8, "big"))
        bound_to = self.actors[(solver + 1) % len(self.actors)] if copied else who
        com = commitment(tid, root, bound_to, salt)
        if reason:
            with boa.reverts(reason):
                self.tasks.commit_claim(tid, com, sender=who)
            return
        cid = self.tasks.commit_claim(tid, com, sender=who)
        assert cid == len(self.model_claims) + 1
        self.model_claims[cid] = Claim(tid, who, honest, root, salt, copied, self.now())
        t.claim_id = cid
        self.pay(who, -t.solver_bond)

    @precondition(lambda self: self.model_claims)
    @rule(i=ids, offset=st.sampled_from([0, 0, 0, 1, 2]), tamper=st.sampled_from(["none"] * 4 + ["root", "salt"]))
    def reveal(self, i, offset, tamper):
        """The committer reveals (offset 0), or another address tries; sometimes with another
        root or salt than committed."""
        cid = self.pick(
            self.model_claims, i, lambda c: c.state == CLAIM_COMMITTED and self.now() < self.reveal_end(c)
        )
        c = self.model_claims.get(cid)
        solver = self.actors.index(c.solver) if c else 0
        who = self.actors[(solver + offset) % len(self.actors)]
        root = c.root if c else HONEST_ROOT
        salt = c.salt if c else bytes(32)
        if tamper == "root":
            root = keccak(b"tampered", root)
        elif tamper == "salt":
            salt = keccak(b"tampered", salt)
        if c is None:
            reason = "tasks: no such claim"
        elif c.state == CLAIM_EXPIRED:
            reason = "tasks: claim expired"
        elif c.state != CLAIM_COMMITTED:
            reason = "tasks: claim already revealed"
        elif who != c.solver:
            reason = "tasks: not the committer"
        elif self.now() >= self.reveal_end(c):
            reason = "tasks: reveal deadline passed"
        elif c.copied or tamper != "none":
            reason = "tasks: reveal does not match commitment"
        else:
            reason = None
        if reason:
            with boa.reverts(reason):
                self.tasks.reveal_claim(cid, root, salt, sender=who)
            return
        self.tasks.reveal_claim(cid, root, salt, sender=who)
        c.state = CLAIM_LIVE
        c.time = self.now()
        assert self.tasks.claims(cid).final_root == root

    @precondition(lambda self: self.model_claims)
    @rule(i=ids, caller=st.integers(0, 5))
    def expire(self, i, caller):
        cid = self.pick(self.model_claims, i, lambda c: self.expirable(c))
        c = self.model_claims.get(cid)
        if c is None:
            reason = "tasks: no such claim"
        elif c.state == CLAIM_EXPIRED:
            reason = "tasks: claim expired"
        elif c.state == CLAIM_LIVE:
            if self.now() < self.window_end(c):
                reason = "tasks: challenge window open"
            elif c.unsettled:
                reason = "tasks: challenges unsettled"
            elif self.result_published(c):
                reason = "tasks: claim revealed with its result"
            else:
                reason = None
        elif c.state != CLAIM_COMMITTED:
            reason = "tasks: claim already decided"
        elif self.now() < self.reveal_end(c):
            reason = "tasks: reveal deadline not reached"
        else:
            reason = None
        assert self.tasks.expirable(cid) == (reason is None)
        if reason:
            with boa.reverts(reason):
                self.tasks.expire_claim(cid, sender=self.actors[caller])
            return
        self.tasks.expire_claim(cid, sender=self.actors[caller])
        c.state = CLAIM_EXPIRED
        self.task_of(c).claim_id = 0
        self.burned += self.task_of(c).solver_bond  # nobody gains from an unrevealed or withheld claim

    @precondition(lambda self: self.model_claims)
    @rule(i=ids, caller=st.integers(0, 5), kind=st.sampled_from(["own"] * 4 + ["other", "unpublished", "slot"]))
    def publish(self, i, caller, kind):
        """Anyone shows a result slot available: the claim's own slot with its proof, the
        other final state's (a proof that does not reach the claimed root), a tensor never
        published on the registry, or a slot that is not the task's result."""
        cid = self.pick(self.model_claims, i, lambda c: c.state == CLAIM_LIVE and self.task_of(c).with_result)
        c = self.model_claims.get(cid)
        own = c is None or c.root == HONEST_ROOT
        table, result = (HONEST_STATE, TRUE_RESULT) if own == (kind != "other") else (WRONG_STATE, WRONG_RESULT)
        slot = OTHER_SLOT if kind == "slot" else RESULT_SLOT
        opening = table.open(slot)
        commitment = commit_tensor(UNPUBLISHED) if kind == "unpublished" else opening.commitment
        if c is None:
            reason = "tasks: no such claim"
        elif c.state != CLAIM_LIVE:
            reason = "tasks: claim not live"
        elif kind == "slot" or not self.task_of(c).with_result:
            reason = "tasks: not a result slot"
        elif kind == "unpublished":
            reason = "tasks: result not on the availability registry"
        elif kind == "other":
            reason = "tasks: not that slot of the claimed state"
        else:
            reason = None
        args = (cid, slot, commitment, list(opening.proof))
        if reason:
            with boa.reverts(reason):
                self.tasks.publish_result(*args, sender=self.actors[caller])
            return
        self.tasks.publish_result(*args, sender=self.actors[caller])
        c.published = True

    @precondition(lambda self: self.model_claims)
    @rule(i=ids, offset=st.sampled_from([1, 2, 3, 4, 5, 0]))
    def challenge(self, i, offset):
        """Any actor: honest challengers, the poster, the solver's sybils, the solver itself
        (offset 0 from the solver, which must revert)."""
        cid = self.pick(
            self.model_claims,
            i,
            lambda c: c.state in (CLAIM_LIVE, CLAIM_REJECTED) and self.now() < self.window_end(c),
        )
        c = self.model_claims.get(cid)
        solver = self.actors.index(c.solver) if c else 0
        who = self.actors[(solver + offset) % len(self.actors)]
        if c is None:
            reason = "tasks: no such claim"
        elif c.state == CLAIM_COMMITTED:
            reason = "tasks: claim not revealed"
        elif c.state == CLAIM_EXPIRED:
            reason = "tasks: claim expired"
        elif c.state == CLAIM_FINALIZED:
            reason = "tasks: claim finalized"
        elif self.now() >= self.window_end(c):
            reason = "tasks: challenge window closed"
        elif who == c.solver:
            reason = "tasks: solver cannot challenge own claim"
        else:
            reason = None
        if reason:
            with boa.reverts(reason):
                self.tasks.challenge(cid, sender=who)
            return
        chid = self.tasks.challenge(cid, sender=who)
        assert chid == len(self.model_challenges) + 1
        game_id, tx_gas = self.tasks.challenges(chid).game_id, self.tasks.challenges(chid).gas
        # 4/5 of at least the intrinsic 21_000, and far below a block
        assert 16_800 < tx_gas < 2_000_000
        self.model_challenges[chid] = Challenge(cid, who, game_id, tx_gas)
        c.challenge_ids.append(chid)
        c.unsettled += 1
        self.pay(who, -self.task_of(c).challenger_bond)

    @precondition(lambda self: self.model_challenges)
    @rule(i=ids, challenger_wins=st.booleans(), game_gas=st.sampled_from([0, 0, 1, 40_000, 1_300_000, 2**64 + 5]))
    def decide_game(self, i, challenger_wins, game_gas):
        """A sound game: an honest claim always wins; a wrong one loses to an honest challenger,
        and the cheater decides its sybils' games either way. The game's meter says anything from
        a conceded game (0) to an absurd value past the cap."""
        ch = self.model_challenges[self.pick(self.model_challenges, ("good", i[1]), lambda ch: ch.outcome == PENDING)]
        if ch.outcome != PENDING:
            return
        honest_claim = self.model_claims[ch.claim_id].honest
        ch.outcome = CHALLENGER_WON if (not honest_claim and challenger_wins) else SOLVER_WON
        ch.game_gas = game_gas
        self.game.set_outcome(ch.game_id, ch.outcome)
        self.game.set_challenger_gas(ch.game_id, game_gas)

    @precondition(lambda self: self.model_challenges)
    @rule(i=ids, caller=st.integers(0, 5))
    def settle(self, i, caller):
        chid = self.pick(self.model_challenges, i, lambda ch: ch.state == CHALLENGE_OPEN and ch.outcome != PENDING)
        self._settle(chid, self.actors[caller])

    @precondition(lambda self: self.model_challenges)
    @rule(i=ids, caller=st.integers(0, 5))
    def collect(self, i, caller):
        chid = self.pick(
            self.model_challenges,
            i,
            lambda ch: ch.state == CHALLENGE_WON and self.closed(self.model_claims[ch.claim_id]),
        )
        self._collect(chid, self.actors[caller])

    @precondition(lambda self: self.model_claims)
    @rule(i=ids, caller=st.integers(0, 5))
    def finalize(self, i, caller):
        cid = self.pick(self.model_claims, i, lambda c: c.state == CLAIM_LIVE)
        self._finalize(cid, self.actors[caller])

    @precondition(lambda self: self.model_tasks)
    @rule(i=ids, caller=st.integers(0, 5))
    def reclaim(self, i, caller):
        tid = self.pick(self.model_tasks, i, lambda t: t.state == TASK_OPEN)
        self._reclaim(tid, self.actors[caller])

    @rule(seconds=st.sampled_from([1, 600, 3_599, 43_200, 86_400]))
    def time_travel(self, seconds):
        boa.env.time_travel(seconds=seconds)

    @rule(i=ids, kind=st.sampled_from(["reveal", "window", "deadline"]), side=st.sampled_from([-1, 0, 1]))
    def travel_to_edge(self, i, kind, side):
        """Lands one second before, exactly on, or one second after a reveal deadline, a window
        end or a task deadline still ahead."""
        if kind == "reveal":
            edges = [self.reveal_end(c) for c in self.model_claims.values() if c.state == CLAIM_COMMITTED]
        elif kind == "window":
            edges = [self.window_end(c) for c in self.model_claims.values() if self.revealed(c)]
        else:
            edges = [t.deadline for t in self.model_tasks.values()]
        ahead = sorted(e + side for e in edges if e + side > self.now())
        if ahead:
            boa.env.time_travel(seconds=ahead[i[1] % len(ahead)] - self.now())

    # --- calls with predicted outcomes -----------------------------------------------------

    def _settle(self, chid: int, caller: str):
        ch = self.model_challenges.get(chid)
        if ch is None:
            reason = "tasks: no such challenge"
        elif ch.state != CHALLENGE_OPEN:
            reason = "tasks: challenge already settled"
        elif ch.outcome == PENDING:
            reason = "tasks: game not over"
        else:
            reason = None
        if reason:
            with boa.reverts(reason):
                self.tasks.settle(chid, sender=caller)
            return

        c = self.model_claims[ch.claim_id]
        t = self.task_of(c)
        before = self.token.balanceOf(ch.challenger)
        self.tasks.settle(chid, sender=caller)
        gained = self.token.balanceOf(ch.challenger) - before
        c.unsettled -= 1
        if ch.outcome == CHALLENGER_WON:
            ch.state = CHALLENGE_WON
            c.winners += 1
            c.gas += self.weight(ch)
            self.pay(ch.challenger, t.challenger_bond)
            if c.state == CLAIM_LIVE:
                c.state = CLAIM_REJECTED
                t.claim_id = 0
                self.burned += burn_of(t.solver_bond)
                c.prize_left = self.prize(c)
            # an honest challenger never loses its bond: a game shown right refunds it at once
            assert gained == t.challenger_bond
        else:
            burn = burn_of(t.challenger_bond)
            ch.state = CHALLENGE_LOST
            self.pay(c.solver, t.challenger_bond - burn)
            self.burned += burn
            assert gained == (t.challenger_bond - burn if ch.challenger == c.solver else 0)

    def _collect(self, chid: int, caller: str):
        ch = self.model_challenges.get(chid)
        c = self.model_claims[ch.claim_id] if ch else None
        if ch is None:
            reason = "tasks: no such challenge"
        elif ch.state == CHALLENGE_OPEN:
            reason = "tasks: challenge not settled"
        elif ch.state == CHALLENGE_LOST:
            reason = "tasks: challenge lost"
        elif ch.state == CHALLENGE_COLLECTED:
            reason = "tasks: prize already collected"
        elif self.now() < self.window_end(c):
            reason = "tasks: challenge window open"
        elif c.unsettled:
            reason = "tasks: challenges unsettled"
        else:
            reason = None
        if reason:
            with boa.reverts(reason):
                self.tasks.collect(chid, sender=caller)
            return
        assert self.tasks.prize_share(chid) == self.prize(c) * self.weight(ch) // c.gas
        self.tasks.collect(chid, sender=caller)
        share = self.prize(c) * self.weight(ch) // c.gas
        ch.state = CHALLENGE_COLLECTED
        c.collected += 1
        c.prize_left -= share
        c.shared += share
        self.pay(ch.challenger, share)
        if c.collected == c.winners:
            # the rounding dust is burned: nobody gets what it did not win
            assert 0 <= c.prize_left < c.winners
            self.burned += c.prize_left
            c.prize_left = 0

    def _finalize(self, cid: int, caller: str):
        c = self.model_claims.get(cid)
        if c is None:
            reason = "tasks: no such claim"
        elif c.state == CLAIM_COMMITTED:
            reason = "tasks: claim not revealed"
        elif c.state == CLAIM_EXPIRED:
            reason = "tasks: claim expired"
        elif c.state == CLAIM_REJECTED:
            reason = "tasks: claim rejected"
        elif c.state == CLAIM_FINALIZED:
            reason = "tasks: claim finalized"
        elif self.now() < self.window_end(c):
            reason = "tasks: challenge window open"
        elif c.unsettled:
            reason = "tasks: challenges unsettled"
        elif not self.result_published(c):
            reason = "tasks: result not published"
        else:
            reason = None
        assert self.tasks.finalizable(cid) == (reason is None)
        if reason:
            with boa.reverts(reason):
                self.tasks.finalize(cid, sender=caller)
            return
        t = self.task_of(c)
        before = self.token.balanceOf(c.solver)
        self.tasks.finalize(cid, sender=caller)
        # a solver whose games all said SOLVER_WON gets at least its bond and the reward back
        assert self.token.balanceOf(c.solver) - before >= t.solver_bond + t.reward
        c.state = CLAIM_FINALIZED
        t.state = TASK_DONE
        self.pay(c.solver, t.reward + t.solver_bond)

    def _reclaim(self, tid: int, caller: str):
        t = self.model_tasks.get(tid)
        if t is None:
            reason = "tasks: no such task"
        elif t.state == TASK_DONE:
            reason = "tasks: task finalized"
        elif t.state == TASK_RECLAIMED:
            reason = "tasks: task reclaimed"
        elif t.claim_id:
            reason = "tasks: task has a live claim"
        elif self.now() < t.deadline:
            reason = "tasks: deadline not reached"
        else:
            reason = None
        if reason:
            with boa.reverts(reason):
                self.tasks.reclaim(tid, sender=caller)
            return
        self.tasks.reclaim(tid, sender=caller)
        t.state = TASK_RECLAIMED
        self.pay(t.poster, t.reward)

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def holds_exactly_what_it_owes(self):
        """The balance is exactly escrowed rewards + bonds of committed and revealed claims and
        of open challenges + uncollected prizes: nothing stuck, nothing missing."""
        owed = self.owed()
        assert self.tasks.owed() == owed
        assert self.token.balanceOf(self.tasks) == owed

    @invariant()
    def everyone_is_paid_exactly(self):
        """Every payout and every pull moved exactly the amount the rules say: nobody gets paid
        what it did not win, nobody loses what it did not lose."""
        for a in self.actors:
            assert self.token.balanceOf(a) == self.balances[a], a

    @invariant()
    def supply_falls_by_the_burns(self):
        """Tokens leave circulation only through burns: slashes, expired bonds, rounding dust."""
        assert self.token.totalSupply() == self.supply0 - self.burned
        assert self.tasks.burned() == self.burned

    @invariant()
    def states_match(self):
        """Each challenge settles once and is collected once, each claim is revealed, rejected,
        finalized or expired once: the chain agrees with the model, which moves every entry
        forward only once."""
        for chid, ch in self.model_challenges.items():
            assert self.tasks.challenges(chid).state == ch.state
        for cid, c in self.model_claims.items():
            on_chain = self.tasks.claims(cid)
            assert (on_chain.state, on_chain.unsettled, on_chain.winners, on_chain.collected, on_chain.gas) == (
                c.state, c.unsettled, c.winners, c.collected, c.gas,
            )
            assert on_chain.shared == c.shared
            assert on_chain.challenges == len(c.challenge_ids)
            assert on_chain.time == c.time
            assert self.tasks.published(cid) == (1 << RESULT_SLOT if c.published else 0)
        for tid, t in self.model_tasks.items():
            on_chain = self.tasks.tasks(tid)
            assert (on_chain.state, on_chain.claim_id) == (t.state, t.claim_id)

    @invariant()
    def honest_claims_are_never_rejected(self):
        """A claim of the true result wins every (sound) game, so no challenge can reject it."""
        for c in self.model_claims.values():
            if c.honest and not c.copied:
                assert c.state != CLAIM_REJECTED

    # --- the end: decide every game, settle, collect, close every task ------------------------

    def teardown(self):
        try:
            self._drain()
        finally:
            self._anchor.__exit__(None, None, None)

    def _drain(self):
        for ch in self.model_challenges.values():
            if ch.outcome == PENDING:
                honest_claim = self.model_claims[ch.claim_id].honest
                ch.outcome = SOLVER_WON if honest_claim else CHALLENGER_WON
                self.game.set_outcome(ch.game_id, ch.outcome)
        for chid, ch in self.model_challenges.items():
            if ch.state == CHALLENGE_OPEN:
                self._settle(chid, self.actors[0])
        last = max(
            [t.deadline for t in self.model_tasks.values()]
            + [self.window_end(c) for c in self.model_claims.values() if self.revealed(c)]
            + [self.reveal_end(c) for c in self.model_claims.values() if c.state == CLAIM_COMMITTED]
            + [self.now()]
        )
        boa.env.time_travel(seconds=last - self.now())
        for cid, c in self.model_claims.items():
            if c.state == CLAIM_COMMITTED or (c.state == CLAIM_LIVE and not self.result_published(c)):
                self._expire_now(cid)
        for chid, ch in self.model_challenges.items():
            if ch.state == CHALLENGE_WON:
                self._collect(chid, self.actors[0])
        for cid, c in self.model_claims.items():
            if c.state == CLAIM_LIVE:
                self._finalize(cid, self.actors[0])
        for tid, t in self.model_tasks.items():
            if t.state == TASK_OPEN:
                self._reclaim(tid, self.actors[0])

        # every task is closed: the contract owes nothing and holds nothing
        assert self.tasks.owed() == 0
        assert self.token.balanceOf(self.tasks) == 0
        self.everyone_is_paid_exactly()
        self.supply_falls_by_the_burns()
        # every honest revealed claim that published its result ended finalized with its bond
        # back; every challenge is settled and every winner paid
        assert all(
            c.state == CLAIM_FINALIZED
            for c in self.model_claims.values()
            if c.honest and self.revealed(c) and self.result_published(c)
        )
        assert all(ch.state in (CHALLENGE_LOST, CHALLENGE_COLLECTED) for ch in self.model_challenges.values())

    def _expire_now(self, cid: int):
        c = self.model_claims[cid]
        self.tasks.expire_claim(cid, sender=self.actors[0])
        c.state = CLAIM_EXPIRED
        self.task_of(c).claim_id = 0
        self.burned += self.task_of(c).solver_bond


def test_tasks_state_machine(tasks, token, mock_game, availability, funded):
    TasksMachine.tasks, TasksMachine.token, TasksMachine.game = tasks, token, mock_game
    for result in (TRUE_RESULT, WRONG_RESULT):  # either claimed result can be made available
        publish_tensor(availability, result)
    TasksMachine.actors = list(funded)
    run_state_machine_as_test(
        TasksMachine,
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


def _claim(tasks, tid, who, root):
    salt = keccak(b"salt", root)
    cid = tasks.commit_claim(tid, commitment(tid, root, who, salt), sender=who)
    tasks.reveal_claim(cid, root, salt, sender=who)
    return cid


CB = 250 * 10**18 + 1  # the protocol's least challenger bond, odd: the burn rounds up


@pytest.mark.parametrize("n_sybils", [1, 3])
def test_sybils_never_save_a_wrong_claim(tasks, token, mock_game, funded, n_sybils):
    """A solver front-running the honest challenger with sybils that lose on purpose still loses
    its bond, and pays a burn for every sybil; the honest challenger gets its bond and the prize."""
    poster, solver, honest, *sybils = funded
    sybils = sybils[:n_sybils]
    deadline = boa.env.timestamp + 400_000
    tid = tasks.post_task(
        keccak(b"graph"), 7, 20, keccak(b"init"), keccak(b"data"), 50, 1_000, MIN_WINDOW, MIN_CLOCK,
        100, CB, 4, deadline, sender=poster,
    )
    team_before = sum(token.balanceOf(a) for a in [solver, *sybils])
    cid = _claim(tasks, tid, solver, WRONG_ROOT)
    honest_before = token.balanceOf(honest)
    sybil_ids = [tasks.challenge(cid, sender=s) for s in sybils]
    honest_id = tasks.challenge(cid, sender=honest)
    for s in sybil_ids:
        mock_game.set_outcome(tasks.challenges(s).game_id, SOLVER_WON)
        tasks.settle(s)
    mock_game.set_outcome(tasks.challenges(honest_id).game_id, CHALLENGER_WON)
    tasks.settle(honest_id)
    boa.env.time_travel(seconds=tasks.challenge_deadline(cid) - boa.env.timestamp)
    tasks.collect(honest_id)

    team_after = sum(token.balanceOf(a) for a in [solver, *sybils])
    assert team_after == team_before - 100 - n_sybils * burn_of(CB)
    assert token.balanceOf(honest) == honest_before + 100 - burn_of(100)
    assert tasks.tasks(tid).claim_id == 0  # reopened for an honest solver
    assert token.balanceOf(tasks) == tasks.owed() == 1_000
