"""Money invariants of the closed loop under any sequence of calls (docs/SPEC.md 12.6): random
depositors, modelers, keepers and solvers call Vault.vy, Loop.vy and Pool.vy in any order and at
any time, and after every call

- the vault holds exactly `owed()` (assets, requested deposits, unclaimed withdrawals) and the
  loop exactly `owed()` (models' and datasets' stakes, the open period's pool and budget), in
  the bond token;
- the loop holds exactly the open position in the asset, and nothing once a period has ended
  and sold;
- shares are conserved: the supply is what depositors hold, what they asked to redeem, and what
  was minted to requests and is not yet claimed; unclaimed withdrawals are what turns paid and
  nobody has claimed yet;
- no model or dataset has more reserved than staked, and the reservations are exactly the
  stakes that periods still hold.

Data providers publish, stake, unstake and join (the third dataset displaces the smallest of
the two slots), models name datasets, and the data values come with mixed signs, so settlements
pass shares on and slash datasets.
"""

from __future__ import annotations

import boa
from _loop import (
    DAY,
    METAMODEL,
    SCORES,
    STAKE,
    TERMS,
    VALUES,
    World,
    metamodel_of,
    own_scores,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

E18 = 10**18
PERIOD_OPEN = 1


class LoopMachine(RuleBasedStateMachine):
    def __init__(self, suite):
        super().__init__()
        self.w = World(suite)

    @initialize()
    def setup(self):
        # every example starts from the funded suite and leaves nothing behind
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.dids = [self.w.dataset(who, seed=i) for i, who in enumerate(self.w.p.providers)]
        d = self.dids
        self.mids = self.w.models(stakes=(STAKE, STAKE, STAKE, STAKE), named=([d[0]], [d[0], d[1]], [d[2], d[2]], []))

    def teardown(self):
        self._anchor.__exit__(None, None, None)

    # -- helpers
    def pid(self) -> int:
        return self.w.loop.period_count()

    def open_pid(self) -> int | None:
        pid = self.pid()
        return pid if pid and self.w.loop.periods(pid).state == PERIOD_OPEN else None

    def attempt(self, fn) -> None:
        try:
            fn()
        except boa.BoaError:
            pass

    # -- depositors
    @rule(who=st.integers(0, 2), amount=st.integers(1, 10**5))
    def deposit(self, who, amount):
        self.attempt(lambda: self.w.vault.deposit(amount * E18, sender=self.w.p.depositors[who]))

    @rule(who=st.integers(0, 2), part=st.integers(1, 4))
    def withdraw(self, who, part):
        a = self.w.p.depositors[who]
        self.attempt(lambda: self.w.vault.withdraw(max(1, self.w.vault.shares(a) // part), sender=a))

    @rule(who=st.integers(0, 2))
    def cancel(self, who):
        self.attempt(lambda: self.w.vault.cancel(sender=self.w.p.depositors[who]))

    @rule(who=st.integers(0, 2))
    def claim(self, who):
        self.attempt(lambda: self.w.vault.claim(self.w.p.depositors[who], sender=self.w.p.stranger))

    # -- modelers
    @rule(m=st.integers(0, 3), amount=st.integers(0, 2_000))
    def stake(self, m, amount):
        mid = self.mids[m]
        self.attempt(lambda: self.w.loop.add_stake(mid, amount * E18, sender=self.w.owner_of(mid)))

    @rule(m=st.integers(0, 3), amount=st.integers(1, 2_000))
    def unstake(self, m, amount):
        mid = self.mids[m]
        self.attempt(lambda: self.w.loop.withdraw_stake(mid, amount * E18, sender=self.w.owner_of(mid)))

    # -- data providers
    @rule(d=st.integers(0, 2), amount=st.integers(0, 2_000))
    def stake_data(self, d, amount):
        did = self.dids[d]
        self.attempt(lambda: self.w.loop.add_data_stake(did, amount * E18, sender=self.w.p.providers[d]))

    @rule(d=st.integers(0, 2), amount=st.integers(1, 2_000))
    def unstake_data(self, d, amount):
        did = self.dids[d]
        self.attempt(lambda: self.w.loop.withdraw_data_stake(did, amount * E18, sender=self.w.p.providers[d]))

    def join(self, d, amount):
        pid = self.open_pid()
        if pid is not None:
            self.attempt(lambda: self.w.loop.join(pid, self.dids[d], amount * E18, sender=self.w.p.providers[d]))

    def commit(self, m, pred, amount):
        pid = self.open_pid()
        if pid is not None:
            self.attempt(lambda: self.w.commit(pid, self.mids[m], pred, amount=amount * E18))

    def reveal_all(self):
        pid = self.open_pid()
        if pid is None:
            return
        for mid in self.mids:
            if (pid, mid) in self.w.preds:
                self.attempt(lambda mid=mid: self.w.reveal(pid, mid))

    # -- the period
    def open_period(self):
        self.attempt(lambda: self.w.loop.open_period(sender=self.w.p.stranger))

    def advance(self, hours):
        self.w.travel_to(self.w.now() + hours * 3_600)

    @rule(late=st.sampled_from([0, 0, 0, 1, 2 * 3_600]))
    def next_deadline(self, late):
        """To the open period's next deadline (or `late` seconds past it)."""
        pid = self.open_pid()
        if pid is None:
            return
        sch = self.w.schedule(pid)
        ahead = [t for t in (sch.commit_deadline, sch.reveal_deadline, sch.trade_at, sch.end, sch.result_deadline)
                 if t > self.w.now()]  # fmt: skip
        if ahead:
            self.w.travel_to(ahead[0] + late)

    @rule(bps=st.integers(-800, 800))
    def move_price(self, bps):
        if bps:
            self.attempt(lambda: self.w.move_price(bps))

    def _revealed(self, pid):
        per = self.w.loop.periods(pid)
        out = []
        for s in range(per.models):
            mid = self.w.loop.slot_model(pid, s)
            e = self.w.loop.entries(pid, mid)
            out.append((self.w.preds[pid, mid], e.amount, e.state == 2))
        return out

    def metamodel(self, wrong):
        pid = self.open_pid()
        if pid is None:
            return
        entries = self._revealed(pid)
        preds = [p if r else 0 for p, _, r in entries] + [0] * (TERMS.models - len(entries))
        amounts = [a if r else 0 for _, a, r in entries] + [0] * (TERMS.models - len(entries))
        m = metamodel_of(preds, amounts) + (7 if wrong else 0)
        self.attempt(lambda: self.w.finish(pid, METAMODEL, [m]))

    def trade(self):
        pid = self.open_pid()
        if pid is not None:
            self.attempt(lambda: self.w.loop.trade(pid, sender=self.w.p.stranger))

    def close(self):
        pid = self.pid()
        if pid:
            self.attempt(lambda: self.w.loop.close(pid, sender=self.w.p.stranger))
            self.attempt(lambda: self.w.loop.unwind(pid, sender=self.w.p.stranger))

    def scores(self):
        pid = self.open_pid()
        if pid is None:
            return
        label = self.w.loop.periods(pid).label
        entries = self._revealed(pid)
        preds = [p if r else 0 for p, _, r in entries] + [0] * (TERMS.models - len(entries))
        self.attempt(lambda: self.w.finish(pid, SCORES, own_scores(preds, label or 1)))

    def values(self, pred):
        pid = self.open_pid()
        if pid is not None:
            self.attempt(lambda: self.w.finish(pid, VALUES, [(pred + 60 * d) * 1_000 for d in range(TERMS.datasets)]))

    def settle_or_void(self):
        pid = self.open_pid()
        if pid is not None:
            self.attempt(lambda: self.w.loop.settle(pid, sender=self.w.p.stranger))
            self.attempt(lambda: self.w.loop.void(pid, sender=self.w.p.stranger))
            self.attempt(lambda: self.w.loop.sync(pid, sender=self.w.p.stranger))

    @rule(choice=st.integers(0, 3), pred=st.integers(-100, 100), amount=st.sampled_from([10, 100, 400]))
    def play(self, choice, pred, amount):
        """The open period's next natural move (or opening one), with choices: who commits and
        what, whether the metamodel is claimed and honestly, whether a trade is made, how the
        price moves, whether the scores come."""
        w, pid = self.w, self.open_pid()
        if pid is None:
            self.open_period()
            return
        per, sch, now = w.loop.periods(pid), w.schedule(pid), w.now()
        if now < sch.commit_deadline:
            # the fourth model's larger reservation displaces the smallest; the first then bids again
            for m in range(choice + 1):
                self.commit(m, (pred + 37 * m) % 201 - 100, amount + 10 * m)
                self.join(m % 3, amount + 20 * m)
            if choice == 3:
                self.commit(0, pred, 3 * amount)
            w.travel_to(sch.commit_deadline)
        elif now < sch.reveal_deadline:
            if choice:
                self.reveal_all()
            w.travel_to(sch.reveal_deadline)
        elif now < sch.trade_at:
            if choice:
                self.metamodel(wrong=choice == 2)
            w.travel_to(sch.trade_at + (0 if choice != 1 else 1))
        elif now < sch.end:
            if choice:
                self.trade()
            self.move_price(pred * 10)
            w.travel_to(sch.end)
        elif not per.closed:
            self.close()
        elif now < sch.result_deadline and choice:
            self.scores()
            if choice != 2:
                self.values(pred)
            self.settle_or_void()
        else:
            w.travel_to(max(now, sch.result_deadline))
            self.settle_or_void()

    # -- invariants
    @invariant()
    def holds_what_it_owes(self):
        self.w.assert_solvent()

    @invariant()
    def shares_are_conserved(self):
        v = self.w.vault
        held = sum(v.shares(a) for a in self.w.p.depositors)
        asked = sum(v.requests(a).shares for a in self.w.p.depositors if v.requests(a).epoch == v.epoch())
        minted = sum(v.epochs(e).minted_left for e in range(v.epoch()))
        assert v.total_shares() == held + asked + minted
        assert v.pending_shares() == asked
        assert v.unclaimed() == sum(v.epochs(e).paid_left for e in range(v.epoch()))

    @invariant()
    def reservations_are_the_open_periods(self):
        loop = self.w.loop
        held = {mid: 0 for mid in self.mids}
        for pid in range(1, loop.period_count() + 1):
            per = loop.periods(pid)
            for s in range(per.models):
                mid = loop.slot_model(pid, s)
                e = loop.entries(pid, mid)
                if e.state in (1, 2):
                    assert per.state == PERIOD_OPEN
                    held[mid] += e.amount
        for mid in self.mids:
            m = loop.models(mid)
            assert m.reserved == held[mid] <= m.stake
        data = {did: 0 for did in self.dids}
        for pid in range(1, loop.period_count() + 1):
            per = loop.periods(pid)
            for s in range(per.datasets):
                e = loop.data_entries(pid, loop.slot_dataset(pid, s))
                if e.at_risk:
                    assert per.state == PERIOD_OPEN and e.joined
                    data[loop.slot_dataset(pid, s)] += e.at_risk
        for did in self.dids:
            d = loop.datasets(did)
            assert d.reserved == data[did] <= d.stake


def test_loop__money_invariants_under_any_sequence(loop_suite):
    # the suite's depositors fund the vault once so that periods can open
    w = World(loop_suite)
    w.fund_vault()
    boa.env.time_travel(seconds=DAY)
    run_state_machine_as_test(
        lambda: LoopMachine(loop_suite),
        settings=settings(
            max_examples=25, stateful_step_count=60, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )  # fmt: skip
