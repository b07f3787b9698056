"""Stateful property test of contracts/Market.vy against a Python shadow of its rounds.

Rules move rounds forward (join, commit, reveal, labels, post, claim, finalize, record,
settle, void), and act out of turn around them: stake moves while at risk, releases, third-party
reclaims of the round's tasks, syncs, early or repeated settles and voids, and time travel
that lands one second either side of every deadline. Calls whose outcome the shadow predicts
(stake moves, releases, settle, void) must succeed or revert with the predicted reason; the
others may revert, but only with a `market: ` or `tasks: ` reason.

After every step:
- the market's balance is `owed()` plus the rewards of its reclaimed, not yet synced tasks;
- `owed()` is the stakes plus the pool and budget of every round neither settled nor void;
- a stake's `reserved` is exactly the sum of what its open rounds reserved (until release,
  close, or a larger reservation displacing it from a full round), never more than the stake,
  and only the rest can be withdrawn;
- a round settles or voids at most once;
- an honest participant (revealed with a score >= 0, or a dataset valued >= 0) never loses
  stake, and nobody loses stake in a void round but a commitment never revealed, which forfeits
  exactly the round's `min_stake` once (at release, settlement or void);
- no stake is taken without its owner's opt-in: a dataset loses stake only in the settlement
  of a round it joined, a model only in one it committed to (every stake equals its shadow);
- the sponsor never receives slashed stake: it never gets back more than it paid in;
- the token supply falls by exactly what the market burned.
"""

from __future__ import annotations

import boa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test
from test_market import (  # noqa: F401  (market .. token are fixtures)
    DAY,
    METAMODEL,
    SCORES,
    TASK_DONE,
    TASK_OPEN,
    TASK_RECLAIMED,
    TERMS,
    VALUES,
    World,
    availability,
    _settle_and_check,
    commit_i64,
    econ,
    market,
    market_deployer,
    people,
    suite,
    tasks,
    token,
)

E18 = 10**18
OPEN, SETTLED, VOID = 1, 2, 3

economics_st = st.builds(
    econ.Economics,
    factor_bps=st.sampled_from([0, 5_000, 10_000, 100_000]),
    cap_bps=st.sampled_from([0, 2_000, econ.MAX_CAP_BPS]),
    data_share_bps=st.sampled_from([0, 1_000, 10_000]),
    data_slash_bps=st.sampled_from([0, 500, econ.MAX_DATA_SLASH_BPS]),
    bonus_bps=st.sampled_from([0, 500, econ.MAX_CAP_BPS // econ.BONUS_CAP_DIVISOR]),
    # what a commitment never revealed forfeits (and the floor of every reservation)
    min_stake=st.sampled_from([0, E18, 20 * E18]),
).filter(lambda e: e.bonus_bps * econ.BONUS_CAP_DIVISOR <= e.cap_bps)
# own scores of the 3 model slots, then their leave-one-out scores
scores_st = st.lists(st.integers(-20_000, 20_000), min_size=6, max_size=6)
values_st = st.lists(st.integers(-1_000, 1_000), min_size=2, max_size=2)


def reverts_with_prefix(fn, *args, **kw) -> bool:
    """Calls fn; True if it went through, False if it reverted with a market/tasks reason."""
    try:
        fn(*args, **kw)
        return True
    except boa.BoaError as e:
        text = str(e)
        assert "market: " in text or "tasks: " in text, text
        return False


class MarketMachine(RuleBasedStateMachine):
    # set by the test function from the session fixtures
    market = token = tasks = people = availability = None

    def __init__(self):
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.w = World(self.market, self.token, self.tasks, self.people, self.availability)
        self.state: dict[int, int] = {}
        self.released: dict[int, set[int]] = {}
        self.results: dict[int, dict[int, list[int]]] = {}
        self.recorded: dict[int, set[int]] = {}
        self.closings: dict[int, int] = {}
        self.supply0 = self.token.totalSupply()
        self.burned = 0
        self.sponsor0 = self.token.balanceOf(self.people.sponsor)
        # shadow stakes: ("model" | "dataset", id) -> stake
        self.stakes: dict[tuple[str, int], int] = {}

    # --- helpers ---------------------------------------------------------------------------

    def now(self) -> int:
        return boa.env.timestamp

    def rid_of(self, i: int) -> int | None:
        return 1 + i % len(self.w.rounds) if self.w.rounds else None

    def task_state(self, rid: int, kind: int) -> int:
        tid = self.market.task_of(rid, kind)
        return self.tasks.tasks(tid).state if tid else 0

    def reserved(self, kind: str, id_: int) -> int:
        """What the open rounds hold of the stake, from the shadow."""
        n = 0
        for rid, r in self.w.rounds.items():
            if self.state[rid] != OPEN:
                continue
            if kind == "model":
                n += r.stake[id_] if id_ in r.models and id_ not in self.released[rid] else 0
            else:
                n += r.at_risk.get(id_, 0)
        return n

    # --- the population and rounds ---------------------------------------------------------

    @initialize(economics=economics_st, pool=st.sampled_from([0, 10 * E18, 1_000 * E18]))
    def start(self, economics, pool):
        """Three datasets, four models ([d0], [d0, d1], [], [d2]) and a first round. No dataset
        is in a round until its owner joins it (`join`); d2 is named by a model of someone
        else's and may never join."""
        p = self.people
        d = [self.w.publish(p.providers[i], s) for i, s in enumerate((100 * E18, 50 * E18, 30 * E18))]
        names = ([d[0]], [d[0], d[1]], [], [d[2]])
        for i, s in enumerate((300 * E18, 200 * E18, 5 * 10**14, 80 * E18)):
            self.w.register(p.modelers[i], names[i], s)
        for did in d:
            self.stakes["dataset", did] = self.market.datasets(did).stake
        for mid in self.w.models:
            self.stakes["model", mid] = self.market.models(mid).stake
        self.open_round(economics, pool, 3)

    @rule(economics=economics_st, pool=st.sampled_from([0, 10 * E18, 1_000 * E18]), tasks=st.integers(3, 5))
    def open_round(self, economics, pool, tasks):
        """A round whose budget pays `tasks` task rewards (at least the three its programs need)."""
        if len(self.w.rounds) >= 3:
            return
        now = self.now()
        schedule = (now + 2 * DAY, now + 4 * DAY, now + 8 * DAY, now + 30 * DAY)
        rid = self.w.open(economics=economics, pool=pool, budget=tasks * TERMS[0], schedule=schedule, join=False)
        self.state[rid] = OPEN
        self.released[rid] = set()
        self.results[rid] = {}
        self.recorded[rid] = set()
        self.closings[rid] = 0
        self.w.rounds[rid].economics = economics

    @precondition(lambda self: self.w.rounds)
    @rule(i=st.integers(0, 3), plan=st.lists(st.integers(0, 7), min_size=1, max_size=14), scores=scores_st,
          values=values_st)
    def progress(self, i, plan, scores, values):
        """Up to len(plan) natural steps of a round; each entry picks a model, and 0 skips
        (travels past the phase, which also leads to voids: labels withheld, no results)."""
        rid = self.rid_of(i)
        for pick in plan:
            if self.state[rid] != OPEN or not self._step(rid, pick, scores, values):
                return

    def _travel_to(self, t: int) -> None:
        if t > self.now():
            boa.env.time_travel(seconds=t - self.now())

    def _step(self, rid: int, pick: int, scores, values) -> bool:
        r = self.w.rounds[rid]
        commit_dl, reveal_dl, labels_dl, result_dl = r.schedule
        now = self.now()
        if now < commit_dl:
            if pick >= 5:  # a dataset's owner opts it in, reserving all or half its free stake
                did = 1 + pick % len(self.w.datasets)
                free = self.w.free("dataset", did)
                reverts_with_prefix(self.w.join, rid, did, amount=free if pick % 2 else free // 2)
                return True
            mid = 1 + pick % len(self.w.models)
            if pick == 0 or mid in r.models:
                self._travel_to(commit_dl)
            else:
                free = self.w.free("model", mid)
                reverts_with_prefix(self.w.commit, rid, mid, amount=free if pick % 2 else free // 2)
            return True
        if now < reveal_dl:
            pending = [m for m in r.models if m not in r.revealed]
            if pick == 0 or not pending:
                self._travel_to(reveal_dl)
            else:
                self.w.reveal(rid, pending[pick % len(pending)])
            return True
        if not self.market.rounds(rid).labels_revealed:
            if now < labels_dl and pick != 0:
                self.w.reveal_labels(rid)
                return True
            self._travel_to(labels_dl)
            self.void(rid - 1)
            return False
        if now >= result_dl:
            self.void(rid - 1)
            return False
        waiting = []
        for kind in (SCORES, VALUES):
            st_ = self.task_state(rid, kind)
            tid = self.market.task_of(rid, kind)
            if st_ in (0, TASK_RECLAIMED) or (st_ == TASK_OPEN and self.tasks.reclaimable(tid)):
                if not reverts_with_prefix(self.w.post, rid, kind):
                    self._travel_to(result_dl)  # the budget is spent: nothing left but a void
                return True
            if st_ == TASK_OPEN and self.tasks.claimable(tid):
                self.results[rid][kind] = list(scores if kind == SCORES else values)
                cid, root, proof = self.w.claim(rid, kind, commit_i64(self.results[rid][kind]))
                self.results[rid][(kind, "proof")] = (root, proof)
                self.results[rid][(kind, "claim")] = cid
                return True
            if st_ == TASK_OPEN:
                cid = self.results[rid][(kind, "claim")]
                if self.tasks.finalizable(cid):
                    self.tasks.finalize(cid, sender=self.people.stranger)
                    return True
                waiting.append(self.tasks.challenge_deadline(cid))
                continue
            if st_ == TASK_DONE and kind not in self.recorded[rid]:
                root, proof = self.results[rid][(kind, "proof")]
                if reverts_with_prefix(self.market.record, rid, kind, root, proof, self.results[rid][kind]):
                    self.recorded[rid].add(kind)
                return True
        if waiting:
            self._travel_to(min(waiting))
            return True
        self.settle(rid - 1)
        return False

    @precondition(lambda self: self.w.rounds)
    @rule(i=st.integers(0, 3), j=st.integers(0, 2))
    def join(self, i, j):
        """A dataset's owner opts it into a round; the market decides whether it may."""
        rid = self.rid_of(i)
        did = 1 + j % len(self.w.datasets)
        reverts_with_prefix(self.w.join, rid, did)

    # --- out of turn -----------------------------------------------------------------------

    @rule(kind=st.sampled_from(["model", "dataset"]), j=st.integers(0, 3), whole=st.booleans(), add=st.booleans())
    def move_stake(self, kind, j, whole, add):
        """Owners add or withdraw; a reserved stake never moves out."""
        table = self.w.models if kind == "model" else self.w.datasets
        id_ = 1 + j % len(table)
        owner = table[id_][0]
        getter = self.market.models if kind == "model" else self.market.datasets
        stake = getter(id_).stake
        amount = stake if whole else 1
        if add:
            fn = self.market.add_model_stake if kind == "model" else self.market.add_dataset_stake
            fn(id_, E18, sender=owner)
            self.stakes[kind, id_] += E18
            return
        fn = self.market.withdraw_model_stake if kind == "model" else self.market.withdraw_dataset_stake
        if amount > stake - self.reserved(kind, id_):
            with boa.reverts("market: amount exceeds the free stake"):
                fn(id_, amount, sender=owner)
        else:
            fn(id_, amount, sender=owner)
            assert getter(id_).stake == stake - amount
            self.stakes[kind, id_] -= amount

    @precondition(lambda self: self.w.rounds)
    @rule(i=st.integers(0, 3), j=st.integers(0, 3))
    def release(self, i, j):
        rid = self.rid_of(i)
        r = self.w.rounds[rid]
        mid = 1 + j % len(self.w.models)
        if mid not in r.models:
            reason = "market: model not committed"
        elif mid in r.revealed:
            reason = "market: model revealed; its stake is at risk"
        elif mid in self.released[rid] or self.state[rid] != OPEN:
            reason = "market: stake already released"
        elif self.now() < r.schedule[1]:
            reason = "market: reveal deadline not reached"
        else:
            reason = None
        if reason:
            with boa.reverts(reason):
                self.market.release(rid, mid, sender=self.people.stranger)
            return
        self.market.release(rid, mid, sender=self.people.stranger)
        self.released[rid].add(mid)
        # a commitment never revealed forfeits min_stake, burned
        self.stakes["model", mid] -= r.economics.min_stake
        self.burned += r.economics.min_stake

    @precondition(lambda self: self.w.rounds)
    @rule(i=st.integers(0, 3), kind=st.sampled_from([METAMODEL, SCORES, VALUES]))
    def post_out_of_turn(self, i, kind):
        """Anyone posts any kind at any time: the market decides."""
        reverts_with_prefix(self.w.post, self.rid_of(i), kind)

    @precondition(lambda self: self.w.rounds)
    @rule(i=st.integers(0, 3), kind=st.sampled_from([METAMODEL, SCORES, VALUES]))
    def third_party_reclaim(self, i, kind):
        rid = self.rid_of(i)
        tid = self.market.task_of(rid, kind)
        if tid and self.tasks.reclaimable(tid):
            self.tasks.reclaim(tid, sender=self.people.stranger)

    @precondition(lambda self: self.w.rounds)
    @rule(i=st.integers(0, 3))
    def sync(self, i):
        self.market.sync(self.rid_of(i), sender=self.people.stranger)

    @precondition(lambda self: self.w.rounds)
    @rule(i=st.integers(0, 3))
    def settle(self, i):
        rid = self.rid_of(i)
        if self.state[rid] == SETTLED:
            reason = "market: round already settled"
        elif self.state[rid] == VOID:
            reason = "market: round is void"
        elif self.recorded[rid] != {SCORES, VALUES}:
            reason = "market: results not recorded"
        else:
            reason = None
        if reason:
            with boa.reverts(reason):
                self.market.settle(rid, sender=self.people.stranger)
            return
        scores, values = self.results[rid][SCORES], self.results[rid][VALUES]
        r = self.w.rounds[rid]
        s = _settle_and_check(self.w, rid, scores, values, r.economics)
        # only the round's own models and joined datasets lose stake
        for slot, mid in enumerate(r.models):
            self.stakes["model", mid] += min(s.model_payouts[slot], 0)
        for slot, did in enumerate(r.datasets):
            self.stakes["dataset", did] += min(s.dataset_payouts[slot], 0)
        self.state[rid] = SETTLED
        self.closings[rid] += 1
        self.burned += s.burned
        # honest participants never lose stake; a commitment never revealed forfeits min_stake
        for slot, mid in enumerate(r.models):
            if mid not in r.revealed:
                assert s.model_payouts[slot] == (0 if mid in self.released[rid] else -r.economics.min_stake)
            elif scores[slot] >= 0:
                assert s.model_payouts[slot] >= 0
        for slot, d in enumerate(r.datasets):
            if values[slot] >= 0:
                assert s.dataset_payouts[slot] >= 0

    @precondition(lambda self: self.w.rounds)
    @rule(i=st.integers(0, 3))
    def void(self, i):
        rid = self.rid_of(i)
        r = self.w.rounds[rid]
        labels = self.state[rid] == OPEN and self.market.rounds(rid).labels_revealed
        if self.state[rid] == SETTLED:
            reason = "market: round already settled"
        elif self.state[rid] == VOID:
            reason = "market: round is void"
        elif not labels and self.now() < r.schedule[2]:
            reason = "market: labels deadline not reached"
        elif labels and self.recorded[rid] == {SCORES, VALUES}:
            reason = "market: results recorded; settle the round"
        elif labels and self.now() < r.schedule[3]:
            reason = "market: result deadline not reached"
        else:
            reason = None
        if reason:
            with boa.reverts(reason):
                self.market.void_round(rid, sender=self.people.stranger)
            return
        # nobody loses stake in a void round but a commitment never revealed, min_stake
        forfeits = {m: r.economics.min_stake for m in r.models if m not in r.revealed and m not in self.released[rid]}
        stakes = {m: self.market.models(m).stake - forfeits.get(m, 0) for m in self.w.models}
        dstakes = {d: self.market.datasets(d).stake for d in self.w.datasets}
        before = self.w.balances()
        # every reclaimable task comes back first, so the whole budget is refunded
        pending = 0
        for kind in range(3):
            tid = self.market.task_of(rid, kind)
            if tid and (self.tasks.reclaimable(tid) or self.tasks.tasks(tid).state == TASK_RECLAIMED):
                pending += self.market.task_reward(rid, kind)
        budget = self.market.rounds(rid).budget + pending
        self.market.void_round(rid, sender=self.people.stranger)
        # whatever the reason, and whatever tasks still run: the pool goes to the revealed
        # models, evenly (back to the sponsor only if none revealed)
        models, _ = self.w.entries(rid, [0] * 3, [0] * 2)
        pay, refund = econ.void_payouts(models, r.pool, budget)
        if r.revealed:
            assert refund == budget
        want = dict.fromkeys(before, 0)
        for slot, mid in enumerate(r.models):
            want[self.w.models[mid][0]] += pay[slot]
        want[self.people.sponsor] += refund
        assert {a: self.token.balanceOf(a) - before[a] for a in before} == want
        assert stakes == {m: self.market.models(m).stake for m in self.w.models}
        assert dstakes == {d: self.market.datasets(d).stake for d in self.w.datasets}
        for m, f in forfeits.items():
            self.stakes["model", m] -= f
        self.burned += sum(forfeits.values())
        self.state[rid] = VOID
        self.closings[rid] += 1

    @rule(seconds=st.sampled_from([1, 3_600, DAY]))
    def time_travel(self, seconds):
        boa.env.time_travel(seconds=seconds)

    @precondition(lambda self: self.w.rounds)
    @rule(i=st.integers(0, 3), which=st.integers(0, 3), side=st.sampled_from([-1, 0]))
    def travel_to_edge(self, i, which, side):
        """One second before, or exactly on, a deadline of a round that is still ahead."""
        edge = self.w.rounds[self.rid_of(i)].schedule[which] + side
        if edge > self.now():
            boa.env.time_travel(seconds=edge - self.now())

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def holds_what_it_owes(self):
        """Balance = owed + rewards returned by Tasks.reclaim that sync has not yet counted."""
        self.w.assert_solvent()

    @invariant()
    def owes_stakes_and_open_rounds(self):
        """owed = every stake + pool and budget of the rounds neither settled nor void."""
        total = sum(self.market.models(m).stake for m in self.w.models)
        total += sum(self.market.datasets(d).stake for d in self.w.datasets)
        for rid in self.w.rounds:
            r = self.market.rounds(rid)
            assert r.state == self.state[rid]
            if r.state == OPEN:
                total += r.pool + r.budget
        assert self.market.owed() == total

    @invariant()
    def reservations_match_the_rounds(self):
        """A stake is reserved exactly by what its open rounds hold (commit..release/close for a
        model, join..close for a dataset), and covers it: no token backs two rounds."""
        for m in self.w.models:
            assert self.market.models(m).reserved == self.reserved("model", m) <= self.market.models(m).stake
        for d in self.w.datasets:
            assert self.market.datasets(d).reserved == self.reserved("dataset", d) <= self.market.datasets(d).stake

    @invariant()
    def no_stake_taken_without_opt_in(self):
        """Every stake is its shadow: moved by its owner, or slashed in the settlement of a
        round its owner opted into (a dataset by joining, a model by committing)."""
        for (kind, id_), stake in self.stakes.items():
            getter = self.market.models if kind == "model" else self.market.datasets
            assert getter(id_).stake == stake, (kind, id_)

    @invariant()
    def sponsor_never_receives_slashed_stake(self):
        """The sponsor never gets back more than it paid in (pools and budgets)."""
        assert self.token.balanceOf(self.people.sponsor) <= self.sponsor0

    @invariant()
    def closes_once(self):
        assert all(n <= 1 for n in self.closings.values())

    @invariant()
    def supply_falls_by_the_burns(self):
        assert self.market.burned() == self.burned
        assert self.token.totalSupply() == self.supply0 - self.burned - self.tasks.burned()

    def teardown(self):
        self._anchor.__exit__(None, None, None)


def test_market_state_machine(market, token, tasks, people, availability):
    MarketMachine.market, MarketMachine.token, MarketMachine.tasks = market, token, tasks
    MarketMachine.people = people
    MarketMachine.availability = availability
    run_state_machine_as_test(
        MarketMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
