"""Stateful property test of contracts/Attestations.vy over the real Tasks.vy, against a Python
shadow model.

Rules fund tasks (from several funders), claim them honestly or wrongly, attest (verifiers that
ran the program, colluders that know a wrong claim's slots root, lazy guessers, the solver
itself), reveal, reject wrong claims through a won game, finalize, reclaim, collect, refund and
travel in time, landing on both sides of every window and reveal period. For every call the
model predicts success or failure; after every step the contract holds exactly `owed()`, which
is the model's ledger, and every account holds exactly what the model says: nothing is paid
twice, nobody takes a fee it did not earn, funders get back exactly what nobody earned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import boa
from boa.contracts.base_evm_contract import BoaError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from verifier.commit.commitments import keccak, state_root

CHALLENGER_WON = 2
TASK_OPEN, TASK_DONE, TASK_RECLAIMED = 1, 2, 3
LIVE, REJECTED, FINALIZED = 2, 3, 4
NONE, COMMITTED, REVEALED, COLLECTED = 0, 1, 2, 3
WINDOW = CLOCK = PERIOD = 172_800
STEPS = 1_000
E18 = 10**18
TRUE_SLOTS = keccak(b"true final slot table")
WRONG_SLOTS = keccak(b"a cheater's final slot table")
GUESS = keccak(b"a lazy guess")
SLOTS = {"true": TRUE_SLOTS, "wrong": WRONG_SLOTS, "guess": GUESS}
MAX_UINT = 2**256 - 1
# which claim a rule acts on: mostly one where it can succeed
CLAIMS = st.tuples(st.sampled_from([True, True, True, False]), st.integers(0, 15))


def word(a: str) -> bytes:
    return bytes(12) + bytes.fromhex(str(a)[2:])


def salt_of(cid: int, who: str) -> bytes:
    return keccak(b"salt", cid.to_bytes(32, "big"), word(who))


@dataclass
class Task:
    deadline: int
    state: int = TASK_OPEN
    claim_id: int = 0
    fee: int = 0
    contributions: dict[str, int] = field(default_factory=dict)


@dataclass
class Claim:
    task_id: int
    solver: str
    slots: bytes  # the slots root behind its final root
    time: int
    state: int = LIVE
    attestations: dict[str, list] = field(default_factory=dict)  # verifier -> [slots, state]
    valid: int = 0
    collected: int = 0

    @property
    def end(self) -> int:
        return self.time + WINDOW


class AttestMachine(RuleBasedStateMachine):
    tasks = token = game = att = None
    actors: ClassVar[list[str]] = []
    # successful calls per function over every example: the run must reach each payout path
    seen: ClassVar[Counter] = Counter()

    def __init__(self):
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.m_tasks: dict[int, Task] = {}
        self.m_claims: dict[int, Claim] = {}
        self.owed = 0
        self.balances = {a: self.token.balanceOf(a) for a in self.actors}
        for _ in range(3):
            self.post()
        # a fee on every task and two claims from the start (one honest, one wrong), so short
        # runs reach the payouts
        for t in range(3):
            self.fund(t, 0, E18 + 7)
        self.claim(0, True)
        self.claim(1, False)

    def teardown(self):
        """Close everything: finalize live claims, collect every share, reclaim open tasks,
        refund every funder; then the contract must owe, and hold, nothing."""
        try:
            for cid, cl in sorted(self.m_claims.items()):
                if cl.state == LIVE:
                    self.go(cl, "end")
                    self.tasks.finalize(cid, sender=self.actors[4])
                    cl.state = FINALIZED
                    self.m_tasks[cl.task_id].state = TASK_DONE
                    self.pay(cl.solver, 15 * E18)
            for cid, cl in sorted(self.m_claims.items()):
                self.go(cl, "period")
                for who, a in list(cl.attestations.items()):
                    if a[1] == REVEALED:
                        self._collect(cid, cl, who, self.actors[0])
            for tid, task in sorted(self.m_tasks.items()):
                if task.state == TASK_OPEN:
                    if task.deadline > boa.env.timestamp:
                        boa.env.time_travel(seconds=task.deadline - boa.env.timestamp)
                    self.tasks.reclaim(tid, sender=self.actors[3])
                    task.state = TASK_RECLAIMED
                    self.pay(self.actors[0], 10 * E18)
                for who, amount in list(task.contributions.items()):
                    if amount:
                        self._refund(tid, who, self.actors[2])
            self.holds_exactly_what_it_owes()
            self.every_account_holds_what_the_model_says()
            assert self.att.owed() == 0 == self.token.balanceOf(self.att)
        finally:
            self._anchor.__exit__(None, None, None)

    # --- helpers -------------------------------------------------------------------------------

    def post(self) -> int:
        tid = self.tasks.post_task(
            keccak(b"g"), 12, 30, keccak(b"i"), keccak(b"d"), STEPS, 10 * E18, WINDOW, CLOCK, 5 * E18,
            250 * E18, 4, boa.env.timestamp + 12 * 86_400, sender=self.actors[0],
        )  # fmt: skip
        self.m_tasks[tid] = Task(self.tasks.tasks(tid).deadline)
        self.pay(self.actors[0], -10 * E18)
        return tid

    def task_at(self, t: int) -> int:
        return sorted(self.m_tasks)[t % len(self.m_tasks)]

    def call(self, ok: bool, fn, *args, sender: str) -> bool:
        """Send; the call must succeed exactly when the model says so."""
        try:
            fn(*args, sender=sender)
        except BoaError as e:
            assert not ok, f"{fn} {args} from {sender} reverted but the model expected success: {str(e)[:200]}"
            return False
        assert ok, f"{fn} {args} from {sender} succeeded but the model expected a revert"
        self.seen[str(fn).split("function ")[-1].split("(")[0]] += 1
        return True

    def claim_at(self, i: tuple[bool, int], prefer=lambda c: True) -> tuple[int, Claim] | None:
        """Mostly a claim where the call can succeed (`prefer`), else any."""
        good, j = i
        ids = [k for k, c in self.m_claims.items() if prefer(c)] if good else []
        ids = ids or sorted(self.m_claims)
        if not ids:
            return None
        cid = ids[j % len(ids)]
        return cid, self.m_claims[cid]

    def pay(self, who: str, amount: int) -> None:
        self.balances[who] = self.balances.get(who, 0) + amount

    # --- rules ---------------------------------------------------------------------------------

    @rule(t=st.integers(0, 7), f=st.integers(0, 5), amount=st.integers(0, 3 * E18))
    def fund(self, t, f, amount):
        tid = self.task_at(t)
        task, who = self.m_tasks[tid], self.actors[f]
        ok = amount > 0 and task.state == TASK_OPEN
        if self.call(ok, self.att.fund, tid, amount, sender=who):
            task.fee += amount
            task.contributions[who] = task.contributions.get(who, 0) + amount
            self.owed += amount
            self.pay(who, -amount)

    @rule(t=st.integers(0, 7), honest=st.booleans())
    def claim(self, t, honest):
        """Claims a free task, or a new funded one (so attestation windows keep opening)."""
        tid = self.task_at(t)
        task = self.m_tasks[tid]
        if task.state != TASK_OPEN or task.claim_id or boa.env.timestamp >= task.deadline:
            if len(self.m_tasks) >= 8:
                return
            tid = self.post()
            task = self.m_tasks[tid]
            self.fund(len(self.m_tasks) - 1, 0, E18 + 7)
        solver = self.actors[1]
        slots = TRUE_SLOTS if honest else WRONG_SLOTS
        root = state_root(STEPS, 0, slots)
        salt = keccak(b"claim", root)
        cid = self.tasks.commit_claim(tid, keccak(tid.to_bytes(32, "big"), root, word(solver), salt), sender=solver)
        self.tasks.reveal_claim(cid, root, salt, sender=solver)
        self.pay(solver, -5 * E18)
        task.claim_id = cid
        self.m_claims[cid] = Claim(tid, solver, slots, boa.env.timestamp)

    @rule(c=CLAIMS, v=st.integers(1, 5), knows=st.sampled_from(["ran it", "ran it", "true", "wrong", "guess"]))
    def attest(self, c, v, knows):
        picked = self.claim_at(c, lambda cl: cl.state == LIVE and boa.env.timestamp < cl.end)
        if picked is None:
            return
        cid, cl = picked
        # "ran it": the claim's own slots root (a verifier, or the cheater's colluder)
        who, slots = self.actors[v], cl.slots if knows == "ran it" else SLOTS[knows]
        ok = cl.state == LIVE and boa.env.timestamp < cl.end and who != cl.solver and who not in cl.attestations
        commitment = keccak(cid.to_bytes(32, "big"), slots, word(who), salt_of(cid, who))
        if self.call(ok, self.att.attest, cid, commitment, sender=who):
            cl.attestations[who] = [slots, COMMITTED]

    def go(self, cl: Claim, when: str) -> None:
        """Travel to an edge of the claim's periods, if it is still ahead."""
        target = {
            "now": 0, "end-1": cl.end - 1, "end": cl.end, "period-1": cl.end + PERIOD - 1, "period": cl.end + PERIOD,
        }[when]  # fmt: skip
        if target > boa.env.timestamp:
            boa.env.time_travel(seconds=target - boa.env.timestamp)

    @rule(
        c=CLAIMS, v=st.integers(1, 5), copy=st.booleans(),
        when=st.sampled_from(["now", "now", "end", "end", "end-1", "period-1", "period"]),
    )  # fmt: skip
    def reveal(self, c, v, copy, when):
        picked = self.claim_at(c, lambda cl: any(a[1] == COMMITTED and a[0] == cl.slots for a in cl.attestations.values()))
        if picked is None:
            return
        cid, cl = picked
        self.go(cl, when)
        mine = [w for w, a in cl.attestations.items() if a[1] == COMMITTED and a[0] == cl.slots]
        mine = mine or [w for w, a in cl.attestations.items() if a[1] == COMMITTED]
        who = mine[v % len(mine)] if mine and v > 1 else self.actors[v]
        a = cl.attestations.get(who)
        # `copy`: reveal the claim's own slots root, whatever was committed (learned too late)
        slots = cl.slots if copy or a is None else a[0]
        now = boa.env.timestamp
        ok = (
            a is not None and a[1] == COMMITTED and cl.state != REJECTED and cl.end <= now < cl.end + PERIOD
            and a[0] == slots == cl.slots
        )  # fmt: skip
        if self.call(ok, self.att.reveal_attestation, cid, slots, salt_of(cid, who), sender=who):
            a[1] = REVEALED
            cl.valid += 1

    @rule(c=CLAIMS)
    def reject(self, c):
        """A wrong live claim loses a game to an honest challenger (inside its window)."""
        picked = self.claim_at(c, lambda cl: cl.state == LIVE and cl.slots != TRUE_SLOTS)
        if picked is None:
            return
        cid, cl = picked
        if cl.slots == TRUE_SLOTS or cl.state != LIVE or boa.env.timestamp >= cl.end:
            return
        challenger = self.actors[5]
        chid = self.tasks.challenge(cid, sender=challenger)
        self.game.set_outcome(self.tasks.challenges(chid).game_id, CHALLENGER_WON)
        self.tasks.settle(chid, sender=challenger)
        cl.state = REJECTED
        self.m_tasks[cl.task_id].claim_id = 0
        self.balances[challenger] = self.token.balanceOf(challenger)  # Tasks' prize rules, tested there
        self.balances[cl.solver] = self.token.balanceOf(cl.solver)

    @rule(c=CLAIMS, when=st.sampled_from(["now"] * 4 + ["end"]))
    def finalize(self, c, when):
        picked = self.claim_at(c, lambda cl: cl.state == LIVE)
        if picked is None:
            return
        cid, cl = picked
        self.go(cl, when)
        if cl.state != LIVE or boa.env.timestamp < cl.end:
            return
        self.tasks.finalize(cid, sender=self.actors[4])
        cl.state = FINALIZED
        self.m_tasks[cl.task_id].state = TASK_DONE
        self.pay(cl.solver, 15 * E18)

    @rule(t=st.integers(0, 7))
    def reclaim(self, t):
        tid = self.task_at(t)
        task = self.m_tasks[tid]
        if task.state != TASK_OPEN or task.claim_id or boa.env.timestamp < task.deadline:
            return
        self.tasks.reclaim(tid, sender=self.actors[3])
        task.state = TASK_RECLAIMED
        self.pay(self.actors[0], 10 * E18)

    @rule(c=CLAIMS, v=st.integers(0, 5), when=st.sampled_from(["now"] * 4 + ["period-1", "period"]))
    def collect(self, c, v, when):
        picked = self.claim_at(c, lambda cl: cl.state == FINALIZED and cl.valid > cl.collected)
        if picked is None:
            return
        cid, cl = picked
        self.go(cl, when)
        mine = [w for w, a in cl.attestations.items() if a[1] == REVEALED]
        who = mine[v % len(mine)] if mine and v > 0 else self.actors[v]
        self._collect(cid, cl, who, self.actors[(v + 1) % 6])

    def _collect(self, cid: int, cl: Claim, who: str, sender: str) -> None:
        a = cl.attestations.get(who)
        ok = a is not None and a[1] == REVEALED and cl.state == FINALIZED and boa.env.timestamp >= cl.end + PERIOD
        if self.call(ok, self.att.collect_fee, cid, who, sender=sender):
            fee = self.m_tasks[cl.task_id].fee
            share = fee // cl.valid
            cl.collected += 1
            dust = fee - cl.valid * share if cl.collected == cl.valid else 0
            a[1] = COLLECTED
            self.owed -= share + dust
            self.pay(who, share)

    @rule(t=st.integers(0, 7), f=st.integers(0, 5))
    def refund(self, t, f):
        self._refund(self.task_at(t), self.actors[f], self.actors[(f + 2) % 6])

    def _refund(self, tid: int, who: str, sender: str) -> None:
        task = self.m_tasks[tid]
        amount = task.contributions.get(who, 0)
        ok = amount > 0 and task.state == TASK_RECLAIMED
        if amount > 0 and task.state == TASK_DONE:
            cl = self.m_claims[task.claim_id]
            ok = boa.env.timestamp >= cl.end + PERIOD and cl.valid == 0
        if self.call(ok, self.att.refund, tid, who, sender=sender):
            task.contributions[who] = 0
            task.fee -= amount
            self.owed -= amount
            self.pay(who, amount)

    @rule(step=st.sampled_from(["hour"] * 3 + ["-1", "0", "day", "period-1", "period", "deadline"]), c=CLAIMS)
    def travel(self, step, c):
        picked = self.claim_at(c, lambda cl: boa.env.timestamp < cl.end + PERIOD)
        now = boa.env.timestamp
        if step in ("hour", "day") or picked is None:
            boa.env.time_travel(seconds=3_600 if step == "hour" else 86_400)
            return
        cl = picked[1]
        target = {
            "-1": cl.end - 1, "0": cl.end, "period-1": cl.end + PERIOD - 1, "period": cl.end + PERIOD,
            "deadline": self.m_tasks[cl.task_id].deadline,
        }[step]  # fmt: skip
        if target > now:
            boa.env.time_travel(seconds=target - now)

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def holds_exactly_what_it_owes(self):
        assert self.token.balanceOf(self.att) == self.att.owed() == self.owed

    @invariant()
    def every_account_holds_what_the_model_says(self):
        for a in self.actors:
            assert self.token.balanceOf(a) == self.balances[a], a

    @invariant()
    def fees_match(self):
        for tid, task in self.m_tasks.items():
            assert self.att.fees(tid) == task.fee


def test_attestations_state_machine(tasks, token, mock_game, funded, deployer):
    from _court import CONTRACTS  # conftest is ambiguous when several test folders share a process

    with boa.env.prank(deployer):
        att = boa.load_partial(str(CONTRACTS / "Attestations.vy")).deploy(tasks.address)
    for a in funded:
        token.approve(att, MAX_UINT, sender=a)
    AttestMachine.tasks, AttestMachine.token, AttestMachine.game, AttestMachine.att = tasks, token, mock_game, att
    AttestMachine.actors = list(funded)
    run_state_machine_as_test(
        AttestMachine,
        settings=settings(
            max_examples=60,
            derandomize=True,  # the coverage check below must not depend on the seed
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
    print(dict(AttestMachine.seen))
    for fn in ("fund", "attest", "reveal_attestation", "collect_fee", "refund"):
        assert AttestMachine.seen[fn] > 0, f"the machine never reached a successful {fn}: {dict(AttestMachine.seen)}"
