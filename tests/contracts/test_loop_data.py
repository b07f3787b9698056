"""contracts/Loop.vy's data side (docs/SPEC.md 12.5, 8.2, 8.5): data providers publish datasets
of the loop's shape, stake them and join a period; a revealed model that names a joined dataset
activates it; the market's data-values program (kind 2) is posted over the active datasets, and
`settle` passes `data_share_bps` of each model's gain on to its positively valued datasets and
burns `data_slash_bps` of a negatively valued one's reservation.

Programs are not run here (test_loop_programs.py runs them): as in test_loop.py, a task is made
DONE by a solver claiming a final table whose result slot holds the values' commitment. Every
call is a raw call as an adversary would send it; payouts are held to verifier/market/loop.py.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import boa
import numpy as np
import pytest
from _court import publish_tensor
from _loop import (
    DATA_BASE,
    E18,
    PERIOD_SETTLED,
    PERIOD_VOID,
    SCORES,
    STAKE,
    TERMS,
    VALUES,
    D,
    F,
    M,
    R,
    World,
    commit_i8,
    commit_i64,
    fake_programs,
    word,
)

from verifier.commit.commitments import commit_tensor, data_root, state_root
from verifier.commit.merkle import merkle_root
from verifier.market import economics as econ
from verifier.market import loop as rules

DATA = 100 * E18  # a dataset's usual reservation
MIN = TERMS.min_stake
SHAPE = "loop: data shape outside the market's limits"
RATE = "loop: a rate outside the protocol's bounds"
PAST_TABLE = "loop: program slots past its slot table"
# own scores, then contributions (fake programs: any values the solver claims): every model gains
SCORES_GAIN = [1_500, 500, 800, 300, 100, 0]  # returns 1_550, 350 and 550 bps
SCORES_A_LOSES = [-1_000, 500, 800, 0, 100, 0]  # A: -1_250 bps


@pytest.fixture(scope="module")
def world(loop_suite) -> World:
    """A funded vault (taken in when period 1 opens) and three staked datasets, one a provider."""
    w = World(loop_suite)
    w.fund_vault()
    w.dids = [w.dataset(w.p.providers[i], seed=i) for i in range(3)]
    return w


@pytest.fixture
def w(world) -> World:
    return world


@pytest.fixture
def pid(w) -> int:
    return w.loop.open_period(sender=w.p.stranger)


# --- helpers ---------------------------------------------------------------------------------


def provider(w, did):
    return w.loop.datasets(did).owner


def join(w, pid, did, amount=DATA):
    w.loop.join(pid, did, amount, sender=provider(w, did))


def commit_and_reveal(w, pid, mids, predictions=(60, 20, -40), reveal=None):
    """Commits each model (STAKE), reveals those in `reveal` (all by default); time at the reveal
    deadline."""
    for mid, pred in zip(mids, predictions, strict=False):
        w.commit(pid, mid, pred)
    sch = w.schedule(pid)
    boa.env.time_travel(seconds=sch.commit_deadline - w.now())
    for mid in mids if reveal is None else reveal:
        w.reveal(pid, mid)
    boa.env.time_travel(seconds=sch.reveal_deadline - w.now())
    return sch


def close_labelled(w, pid, move_bps=400):
    """Reads the entry price at trade_at (no metamodel, no position), moves the price and closes:
    the period's label is the sign of `move_bps`."""
    sch = w.schedule(pid)
    w.travel_to(sch.trade_at)
    w.loop.trade(pid, sender=w.p.stranger)
    w.move_price(move_bps)
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).label == (1 if move_bps > 0 else -1)
    return sch


def deploy(s, terms, programs=None):
    programs = programs if programs is not None else [p[:7] for p in s.programs]
    return s.loop_deployer.deploy(s.token, s.asset, s.pool, s.tasks, s.vault, terms.as_tuple(), programs)


def logs(contract, name):
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def entry(w, pid, did):
    e = w.loop.data_entries(pid, did)
    return (e.slot, e.at_risk, e.joined, e.active)


def values_table(w, pid, mask, label, features, slots):
    """The kind-2 initial table built from the test's own knowledge of the period (SPEC 8.2):
    a (the mask), y, X, then X_d, L_d of every active slot; the other slots keep the template."""
    t = list(w.programs[VALUES][7])
    b = DATA_BASE
    t[b], t[b + 1] = commit_i64(mask), commit_i8([label])
    t[b + 2] = commit_tensor(np.array([features], np.int8))
    for slot, did in slots.items():
        x, y = w.data[did]
        t[b + 3 + 2 * slot], t[b + 4 + 2 * slot] = commit_tensor(x), commit_tensor(y)
    return t


def balances(w, addresses):
    return [w.token.balanceOf(a) for a in addresses]


# --- deployment: the data terms and the values program ----------------------------------------


BAD_DATA_TERMS = [
    ({"datasets": 0}, SHAPE), ({"datasets": rules.MAX_DATASETS + 1}, SHAPE),
    ({"features": 0}, SHAPE), ({"features": rules.MAX_LAGS + 1}, SHAPE),
    ({"dataset_rows": 0}, SHAPE), ({"dataset_rows": 513}, SHAPE),  # 2 * 513 points > 1_024
    ({"k": 0}, SHAPE), ({"k": 65, "dataset_rows": 64}, SHAPE), ({"k": D * R + 1}, SHAPE),
    ({"data_share_bps": econ.BPS + 1}, RATE), ({"data_slash_bps": econ.MAX_DATA_SLASH_BPS + 1}, RATE),
]  # fmt: skip
GOOD_DATA_TERMS = [
    {"datasets": rules.MAX_DATASETS}, {"datasets": 1}, {"features": rules.MAX_LAGS}, {"features": 1},
    {"dataset_rows": 512}, {"dataset_rows": 1, "k": 1}, {"k": D * R}, {"k": 64, "dataset_rows": 32}, {"k": 1},
    {"data_share_bps": econ.BPS}, {"data_slash_bps": econ.MAX_DATA_SLASH_BPS}, {"data_share_bps": 0, "data_slash_bps": 0},
]  # fmt: skip


@pytest.mark.parametrize(("change", "reason"), BAD_DATA_TERMS)
def test_init__data_terms_outside_the_markets_limits__refused(loop_suite, change, reason):
    """The data shape is the values program's (Market.vy's limits: D <= 8, F <= 16, D * R <= 1_024,
    1 <= k <= min(64, D * R)) and the data rates are bounded (share <= 100%, slash <= 10%): one
    unit past any of them is refused with the reason verifier/market/loop.py gives."""
    bad = replace(TERMS, **change)
    assert rules.terms_error(bad) == reason
    programs = fake_programs(M, bad.datasets) if 1 <= bad.datasets <= rules.MAX_DATASETS else None
    with boa.reverts(reason):
        deploy(loop_suite, bad, programs and [p[:7] for p in programs])


@pytest.mark.parametrize("change", GOOD_DATA_TERMS)
def test_init__data_terms_at_the_limits__taken(loop_suite, change):
    good = replace(TERMS, **change)
    assert rules.terms_error(good) is None
    loop = deploy(loop_suite, good, [p[:7] for p in fake_programs(M, good.datasets)])
    assert tuple(loop.terms()) == good.as_tuple()


def test_init__values_program_needs_room_for_3_plus_2d_data_slots(loop_suite):
    """Kind 2's data (a, y, X, then X_d, L_d of each of the D slots) must fit its slot table: one
    slot short is refused, exactly enough is taken; the room is counted for the terms' D."""
    programs = [p[:7] for p in loop_suite.programs]
    need = DATA_BASE + 3 + 2 * D
    for n_slots, ok in ((need - 1, False), (need, True)):
        progs = list(programs)
        progs[VALUES] = (*programs[VALUES][:2], n_slots, *programs[VALUES][3:])
        if ok:
            assert deploy(loop_suite, TERMS, progs).programs(VALUES).n_slots == need
        else:
            with boa.reverts(PAST_TABLE):
                deploy(loop_suite, TERMS, progs)
    # the D = 2 program has no room for eight datasets, whatever the other programs
    eight = replace(TERMS, datasets=rules.MAX_DATASETS)
    assert rules.terms_error(eight) is None
    with boa.reverts(PAST_TABLE):
        deploy(loop_suite, eight, programs)
    wide = [p[:7] for p in fake_programs(M, rules.MAX_DATASETS)]
    with boa.reverts(PAST_TABLE):
        deploy(loop_suite, eight, [*programs[:2], (*wide[VALUES][:2], DATA_BASE + 3 + 2 * 8 - 1, *wide[VALUES][3:])])
    deploy(loop_suite, eight, [*programs[:2], wide[VALUES]])


# --- publishing and staking ------------------------------------------------------------------


def test_publish_dataset__commitments_computed_by_the_loop_and_on_availability(w):
    """The loop commits X_d as int8 [R, F] and L_d as int8 [R] itself: both must already be on
    Availability.vy (a verifier can fetch them), and a tensor of another shape cannot stand in."""
    who = w.p.providers[0]
    x = np.arange(R * F, dtype=np.int8).reshape(R, F) + 50
    y = np.array([7, -7, 9, -9], np.int8)[:R]
    wide = np.arange(R * (F + 1), dtype=np.int8).reshape(R, F + 1) + 90
    assert not any(w.availability.available(commit_tensor(a)) for a in (x, y, wide))
    reason = "loop: data not published on Availability.vy"
    with boa.reverts(reason):
        w.loop.publish_dataset(data_root(x), data_root(y), STAKE, sender=who)
    publish_tensor(w.availability, x, sender=who)
    with boa.reverts(reason):  # the labels are not there
        w.loop.publish_dataset(data_root(x), data_root(y), STAKE, sender=who)
    publish_tensor(w.availability, y, sender=who)
    publish_tensor(w.availability, wide, sender=who)
    with boa.reverts(reason):  # X of shape [R, F + 1]: the loop's [R, F] commitment of its root is not there
        w.loop.publish_dataset(data_root(wide), data_root(y), STAKE, sender=who)
    with boa.reverts(reason):  # the labels' root where the features' belongs
        w.loop.publish_dataset(data_root(y), data_root(x), STAKE, sender=who)
    x2 = x + 1
    publish_tensor(w.availability, x2, sender=who)
    y2 = y * 2
    with boa.reverts(reason):  # features there, labels not
        w.loop.publish_dataset(data_root(x2), data_root(y2), STAKE, sender=who)

    owed, bal, count = w.loop.owed(), w.token.balanceOf(who), w.loop.dataset_count()
    did = w.loop.publish_dataset(data_root(x), data_root(y), 3 * E18, sender=who)
    (ev,) = logs(w.loop, "DatasetPublished")
    assert did == count + 1 == w.loop.dataset_count()
    ds = w.loop.datasets(did)
    assert (ds.owner, ds.features, ds.labels, ds.stake, ds.reserved) == (who, commit_tensor(x), commit_tensor(y), 3 * E18, 0)
    assert (ev.dataset_id, ev.owner, ev.features, ev.labels, ev.stake) == (did, who, commit_tensor(x), commit_tensor(y), 3 * E18)
    assert (w.loop.owed() - owed, bal - w.token.balanceOf(who)) == (3 * E18, 3 * E18)
    w.assert_solvent()


def test_data_stake__only_the_owner_and_only_free_stake(w, pid):
    """add_data_stake and withdraw_data_stake are the owner's; a withdrawal takes only stake that
    no open period reserves, and all of it once the period has ended."""
    did, other = w.dids[0], w.dids[1]
    owner = provider(w, did)
    for call in (w.loop.add_data_stake, w.loop.withdraw_data_stake):
        with boa.reverts("loop: not the dataset owner"):
            call(did, 1, sender=w.p.stranger)
        with boa.reverts("loop: not the dataset owner"):
            call(other, 1, sender=owner)
        with boa.reverts("loop: no such dataset"):
            call(99, 1, sender=owner)
    bal, owed = w.token.balanceOf(owner), w.loop.owed()
    w.loop.add_data_stake(did, 5 * E18, sender=owner)
    (ev,) = logs(w.loop, "DataStakeChanged")
    assert (ev.dataset_id, ev.stake, ev.reserved) == (did, STAKE + 5 * E18, 0)
    assert (bal - w.token.balanceOf(owner), w.loop.owed() - owed) == (5 * E18, 5 * E18)
    w.assert_solvent()

    join(w, pid, did, 300 * E18)
    stake = STAKE + 5 * E18
    free = stake - 300 * E18
    assert (w.loop.datasets(did).stake, w.loop.datasets(did).reserved) == (stake, 300 * E18)
    with boa.reverts("loop: amount exceeds the free stake"):
        w.loop.withdraw_data_stake(did, free + 1, sender=owner)
    bal = w.token.balanceOf(owner)
    w.loop.withdraw_data_stake(did, free, sender=owner)
    (ev,) = logs(w.loop, "DataStakeChanged")
    assert (ev.stake, ev.reserved) == (300 * E18, 300 * E18)
    assert w.token.balanceOf(owner) - bal == free
    w.assert_solvent()
    with boa.reverts("loop: amount exceeds the free stake"):
        w.loop.withdraw_data_stake(did, 1, sender=owner)

    # nobody revealed: the period ends at its close and frees the reservation untouched
    w.travel_to(w.schedule(pid).end)
    w.loop.close(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).state == PERIOD_SETTLED
    assert (w.loop.datasets(did).stake, w.loop.datasets(did).reserved) == (300 * E18, 0)
    assert w.loop.data_entries(pid, did).at_risk == 0
    w.loop.withdraw_data_stake(did, 300 * E18, sender=owner)
    assert w.loop.datasets(did).stake == 0
    w.assert_solvent()


# --- joining ---------------------------------------------------------------------------------


def test_join__guards(w, pid):
    """Only the owner joins, an open period, before its commit deadline, once, with at least
    min_stake and at most the free stake."""
    d0, d1 = w.dids[:2]
    p0 = provider(w, d0)
    with boa.reverts("loop: not the dataset owner"):
        w.loop.join(pid, d0, DATA, sender=w.p.stranger)
    with boa.reverts("loop: no such dataset"):
        w.loop.join(pid, 99, DATA, sender=p0)
    with boa.reverts("loop: no such period"):
        w.loop.join(pid + 1, d0, DATA, sender=p0)
    with boa.reverts("loop: stake below the minimum"):
        w.loop.join(pid, d0, MIN - 1, sender=p0)
    with boa.reverts("loop: amount exceeds the free stake"):
        w.loop.join(pid, d0, STAKE + 1, sender=p0)
    assert w.loop.periods(pid).datasets == 0 and w.loop.datasets(d0).reserved == 0

    w.loop.join(pid, d0, MIN, sender=p0)  # exactly min_stake
    (ev,) = logs(w.loop, "Joined")
    assert (ev.period_id, ev.dataset_id, ev.slot, ev.amount) == (pid, d0, 0, MIN)
    assert entry(w, pid, d0) == (0, MIN, True, False)
    assert (w.loop.slot_dataset(pid, 0), w.loop.periods(pid).datasets, w.loop.datasets(d0).reserved) == (d0, 1, MIN)
    with boa.reverts("loop: dataset already joined"):
        w.loop.join(pid, d0, MIN, sender=p0)
    assert w.loop.periods(pid).datasets == 1 and w.loop.datasets(d0).reserved == MIN

    p1 = provider(w, d1)
    w.loop.withdraw_data_stake(d1, STAKE - 2 * MIN, sender=p1)
    with boa.reverts("loop: amount exceeds the free stake"):
        w.loop.join(pid, d1, 2 * MIN + 1, sender=p1)
    sch = w.schedule(pid)
    boa.env.time_travel(seconds=sch.commit_deadline - 1 - w.now())
    w.loop.join(pid, d1, 2 * MIN, sender=p1)  # all of its free stake, one second before the deadline
    assert entry(w, pid, d1) == (1, 2 * MIN, True, False)
    assert w.loop.datasets(d1).reserved == w.loop.datasets(d1).stake == 2 * MIN
    boa.env.time_travel(seconds=1)
    d2 = w.dids[2]
    with boa.reverts("loop: commit deadline passed"):
        w.loop.join(pid, d2, DATA, sender=provider(w, d2))
    w.assert_solvent()


def test_join__an_ended_period__refused(w, pid):
    w.travel_to(w.schedule(pid).end)
    w.loop.close(pid, sender=w.p.stranger)
    pid2 = w.loop.open_period(sender=w.p.stranger)
    with boa.reverts("loop: period already ended"):
        join(w, pid, w.dids[0])
    join(w, pid2, w.dids[0])


def test_join__full_slots__a_larger_reservation_displaces_the_smallest(w, pid):
    """Once the D slots are full a join must reserve more than the smallest reservation, whose
    slot it takes; the displaced dataset's reservation is freed, its entry cleared (it may join
    again), and a model naming it cannot activate it."""
    d0, d1, d2 = w.dids
    join(w, pid, d0, 30 * E18)
    join(w, pid, d1, 20 * E18)
    for amount in (15 * E18, 20 * E18):  # below, and equal to, the smallest
        with boa.reverts("loop: dataset slots full of reservations at least as large"):
            join(w, pid, d2, amount)
    join(w, pid, d2, 25 * E18)
    assert [(type(e).__name__, e.dataset_id, e.slot) for e in w.loop.get_logs()] == [("DataDisplaced", d1, 1), ("Joined", d2, 1)]
    assert logs(w.loop, "DataDisplaced")[0].period_id == pid
    assert entry(w, pid, d1) == (0, 0, False, False)
    assert entry(w, pid, d2) == (1, 25 * E18, True, False)
    assert (w.loop.datasets(d1).reserved, w.loop.datasets(d2).reserved, w.loop.datasets(d0).reserved) == (0, 25 * E18, 30 * E18)
    assert (w.loop.periods(pid).datasets, w.loop.slot_dataset(pid, 0), w.loop.slot_dataset(pid, 1)) == (2, d0, d2)
    # the freed reservation is free stake again
    w.loop.withdraw_data_stake(d1, STAKE - 35 * E18, sender=provider(w, d1))
    w.assert_solvent()
    # the displaced dataset joins again, displacing the now smallest (d2, 25)
    join(w, pid, d1, 35 * E18)
    assert [(type(e).__name__, e.dataset_id, e.slot) for e in w.loop.get_logs()] == [("DataDisplaced", d2, 1), ("Joined", d1, 1)]
    assert (w.loop.datasets(d2).reserved, w.loop.datasets(d1).reserved) == (0, 35 * E18)
    # slot 0 (d0, 30) is now the smallest
    with boa.reverts("loop: dataset slots full of reservations at least as large"):
        join(w, pid, d2, 30 * E18)
    join(w, pid, d2, 30 * E18 + 1)
    assert [(type(e).__name__, e.dataset_id, e.slot) for e in w.loop.get_logs()] == [("DataDisplaced", d0, 0), ("Joined", d2, 0)]
    assert entry(w, pid, d0) == (0, 0, False, False) and w.loop.datasets(d0).reserved == 0
    assert (w.loop.slot_dataset(pid, 0), w.loop.slot_dataset(pid, 1)) == (d2, d1)
    w.assert_solvent()


def test_join__displacement_takes_the_first_of_equals_and_its_namer_activates_nothing(w, pid):
    d0, d1, d2 = w.dids
    join(w, pid, d0, 10 * E18)
    join(w, pid, d1, 10 * E18)
    join(w, pid, d2, 11 * E18)
    assert [(type(e).__name__, e.dataset_id, e.slot) for e in w.loop.get_logs()] == [("DataDisplaced", d0, 0), ("Joined", d2, 0)]
    assert (w.loop.datasets(d0).reserved, entry(w, pid, d1), entry(w, pid, d2)) == (0, (1, 10 * E18, True, False), (0, 11 * E18, True, False))
    # A names the displaced d0 only, B names d2
    mids = w.models(named=([d0], [d2], []))
    commit_and_reveal(w, pid, mids)
    assert entry(w, pid, d0) == (0, 0, False, False)
    assert entry(w, pid, d2)[3] and not entry(w, pid, d1)[3]
    assert w.loop.periods(pid).active == 1


# --- activation and the values task ----------------------------------------------------------


def test_reveal__activates_only_joined_datasets_a_revealed_model_names(w, pid):
    """d0 joined and is named by a revealed model: active. d1 joined but only a model that never
    reveals names it: inactive, masked out of the values program, its value ignored, never paid
    nor slashed. d2 is named but never joined: not active, no entry. The values task's initial
    state is the period's own: mask [1, 0], the label, the features and d0's X, L only."""
    d0, d1, d2 = w.dids
    join(w, pid, d0)
    join(w, pid, d1)
    mids = w.models(named=([d0, d2], [d1], []))
    commit_and_reveal(w, pid, mids, reveal=[mids[0], mids[2]])  # B commits, never reveals
    assert entry(w, pid, d0) == (0, DATA, True, True)
    assert entry(w, pid, d1) == (1, DATA, True, False)
    assert entry(w, pid, d2) == (0, 0, False, False)
    assert (w.loop.periods(pid).active, w.loop.periods(pid).datasets) == (1, 2)
    with boa.reverts("loop: position not closed"):
        w.post(pid, VALUES)
    close_labelled(w, pid, -400)

    tid = w.post(pid, VALUES)
    task = w.tasks.tasks(tid)
    table = values_table(w, pid, [1, 0], -1, [0] * F, {0: d0})
    assert table == w.slot_table(pid, VALUES)
    assert task.initial_root == state_root(0, 0, merkle_root(table))
    assert task.dataset_root == merkle_root(table[DATA_BASE : DATA_BASE + 3 + 2 * D])
    assert (task.reward, w.loop.task_of(pid, VALUES)) == (TERMS.reward, tid)
    assert w.loop.periods(pid).budget == 2 * TERMS.reward
    w.assert_solvent()
    with boa.reverts("loop: the kind's task is still running"):
        w.post(pid, VALUES)

    # the values program's claim (d1's value below zero is masked out), then the scores'
    cid, root, proof = w.claim(pid, VALUES, [4, -9])
    boa.env.time_travel(seconds=TERMS.window)
    w.tasks.finalize(cid, sender=w.p.stranger)
    w.loop.record(pid, VALUES, root, proof, [4, -9], sender=w.p.stranger)
    assert list(w.loop.values(pid)) == [4, -9]
    scores = SCORES_GAIN
    w.finish(pid, SCORES, scores)
    per = w.loop.periods(pid)
    expected = rules.settlement(
        [STAKE] * M, [True, False, True], scores, TERMS, per.pool, per.budget, named=([0], [1], []),
        datasets=[econ.DatasetEntry(DATA, DATA, 4, True), econ.DatasetEntry(DATA, DATA, -9, False)],
    )  # fmt: skip
    assert expected.dataset_payouts[1] == 0 < expected.dataset_payouts[0]
    check_settle(w, pid, mids, [d0, d1], expected)
    assert w.loop.datasets(d1).stake == STAKE and w.loop.datasets(d2).stake == STAKE


def test_post_values__no_dataset_active__refused_and_settle_needs_no_values(w, pid):
    """Joined datasets nobody revealed names are not valued: the values task is refused, the
    period settles on its scores alone and frees their reservations untouched."""
    d0, d1 = w.dids[:2]
    join(w, pid, d0)
    join(w, pid, d1, 2 * DATA)
    mids = w.models(named=([], [w.dids[2]], []))
    commit_and_reveal(w, pid, mids)
    assert w.loop.periods(pid).active == 0
    with boa.reverts("loop: no dataset active"):
        w.post(pid, VALUES)
    close_labelled(w, pid, 400)
    with boa.reverts("loop: no dataset active"):
        w.post(pid, VALUES)
    w.finish(pid, SCORES, SCORES_GAIN)
    per = w.loop.periods(pid)
    inactive = [econ.DatasetEntry(DATA, DATA, 0, False), econ.DatasetEntry(2 * DATA, 2 * DATA, 0, False)]
    expected = rules.settlement([STAKE] * M, [True] * M, SCORES_GAIN, TERMS, per.pool, per.budget, datasets=inactive)
    check_settle(w, pid, mids, [d0, d1], expected)
    assert [w.loop.datasets(d).stake for d in (d0, d1)] == [STAKE, STAKE]


@pytest.fixture
def closed(w, pid):
    """Period `pid` closed with label +1: d0 (100) and d1 (50) joined; A names d0 and d1, B names
    d1 twice, C names d2, which never joined; all three revealed."""
    d0, d1, d2 = w.dids
    join(w, pid, d0, DATA)
    join(w, pid, d1, DATA // 2)
    mids = w.models(named=([d0, d1], [d1, d1], [d2]))
    sch = commit_and_reveal(w, pid, mids)
    assert (w.loop.periods(pid).active, entry(w, pid, d0)[3], entry(w, pid, d1)[3], entry(w, pid, d2)[2]) == (2, True, True, False)
    close_labelled(w, pid, 400)
    return SimpleNamespace(pid=pid, mids=mids, dsets=[d0, d1], sch=sch)


def test_post_values__the_tables_data_is_the_periods(w, closed):
    pid = closed.pid
    tid = w.post(pid, VALUES)
    table = values_table(w, pid, [1, 1], 1, [0] * F, {0: closed.dsets[0], 1: closed.dsets[1]})
    assert w.tasks.tasks(tid).initial_root == state_root(0, 0, merkle_root(table))
    assert w.tasks.tasks(tid).dataset_root == merkle_root(table[DATA_BASE : DATA_BASE + 3 + 2 * D])
    w.assert_solvent()


def test_record_values__exactly_d_values_of_the_claim(w, closed):
    """A solver's claim of D + 1 (or 2M) values opens its result slot, yet is not the values of D
    datasets: refused; D values that are not the claim's are refused too."""
    pid = closed.pid
    with boa.reverts("loop: no task of this kind"):
        w.loop.record(pid, VALUES, word("root"), [], [1] * D, sender=w.p.stranger)
    w.post(pid, VALUES)
    wrong = [3, 1, 2]
    cid, root, proof = w.claim(pid, VALUES, wrong)
    boa.env.time_travel(seconds=TERMS.window)
    w.tasks.finalize(cid, sender=w.p.stranger)
    with boa.reverts("loop: wrong number of values"):
        w.loop.record(pid, VALUES, root, proof, wrong, sender=w.p.stranger)
    for n in (D - 1, 2 * M):
        with boa.reverts("loop: wrong number of values"):
            w.loop.record(pid, VALUES, root, proof, wrong[:n] + [0] * (n - len(wrong)), sender=w.p.stranger)
    with boa.reverts("loop: proof does not open the result"):
        w.loop.record(pid, VALUES, root, proof, wrong[:D], sender=w.p.stranger)
    with boa.reverts("loop: kind is not 0, 1 or 2"):
        w.loop.record(pid, 3, root, proof, wrong[:D], sender=w.p.stranger)
    with boa.reverts("loop: kind is not 0, 1 or 2"):
        w.loop.post_task(pid, 3, w.programs[VALUES][7], sender=w.p.stranger)
    assert w.loop.periods(pid).recorded & 4 == 0 and list(w.loop.values(pid)) == []


def test_record_scores__2m_values_not_d(w, closed):
    pid = closed.pid
    w.post(pid, SCORES)
    cid, root, proof = w.claim(pid, SCORES, [1] * D)
    boa.env.time_travel(seconds=TERMS.window)
    w.tasks.finalize(cid, sender=w.p.stranger)
    with boa.reverts("loop: wrong number of values"):
        w.loop.record(pid, SCORES, root, proof, [1] * D, sender=w.p.stranger)


def finish_values(w, pid, values):
    w.finish(pid, VALUES, values)
    assert list(w.loop.values(pid)) == list(values)


def check_settle(w, pid, mids, dsets, expected):
    """Settles `pid` and holds every transfer, stake change, burn, refund and event to `expected`."""
    owners = [w.owner_of(m) for m in mids] + [provider(w, d) for d in dsets]
    before = balances(w, owners)
    stakes = [w.loop.models(m).stake for m in mids] + [w.loop.datasets(d).stake for d in dsets]
    vault, burned, supply = w.vault.assets(), w.loop.burned(), w.token.totalSupply()
    w.loop.settle(pid, sender=w.p.stranger)
    data_events = [(e.period_id, e.dataset_id, e.amount) for e in logs(w.loop, "DataPaid")]
    after = balances(w, owners)
    now = [w.loop.models(m).stake for m in mids] + [w.loop.datasets(d).stake for d in dsets]
    pays = expected.model_payouts + expected.dataset_payouts
    for i, pay in enumerate(pays):
        assert after[i] - before[i] == max(pay, 0), i
        assert stakes[i] - now[i] == max(-pay, 0), i
    # a slash is logged in the settlement's loop, a payment in _end's: compare as sets
    assert sorted(data_events) == sorted((pid, d, p) for d, p in zip(dsets, expected.dataset_payouts, strict=True) if p != 0)
    assert w.loop.burned() - burned == expected.burned == supply - w.token.totalSupply()
    assert w.vault.assets() - vault == expected.refund
    assert all(w.loop.datasets(d).reserved == 0 and w.loop.data_entries(pid, d).at_risk == 0 for d in dsets)
    assert all(w.loop.models(m).reserved == 0 for m in mids)
    assert w.loop.periods(pid).state == PERIOD_SETTLED
    w.assert_solvent()
    with boa.reverts("loop: period already ended"):
        w.loop.settle(pid, sender=w.p.stranger)


SETTLEMENTS = [
    ((3, 1), SCORES_GAIN),  # A splits its share 3:1, B's goes to d1, C keeps its (d2 not active)
    ((5, -2), SCORES_GAIN),  # A's share all to d0, B keeps its, d1 slashed 5% of 50
    ((-1, -1), SCORES_GAIN),  # both slashed, every model keeps its share
    ((0, 4), SCORES_GAIN),  # d0 valued 0: neither paid nor slashed
    ((3, 1), SCORES_A_LOSES),  # a loss passes nothing on
    ((2**62, 1), SCORES_GAIN),  # large values: proportion without overflow
]


@pytest.mark.parametrize(("values", "scores"), SETTLEMENTS)
def test_settle__passes_the_data_share_on_and_slashes_negative_values(w, closed, values, scores):
    """settle pays exactly what verifier/market/loop.py's settlement gives with the datasets: each
    gain passes data_share_bps of itself on to the model's active, positively valued datasets in
    proportion to their values (a dataset named twice counts twice), a model with none keeps its
    share, a negatively valued active dataset loses data_slash_bps of its reservation, burned,
    and every reservation is freed."""
    pid = closed.pid
    w.finish(pid, SCORES, scores)
    with boa.reverts("loop: data values not recorded"):
        w.loop.settle(pid, sender=w.p.stranger)
    finish_values(w, pid, values)
    per = w.loop.periods(pid)
    entries = [econ.DatasetEntry(DATA, DATA, values[0], True), econ.DatasetEntry(DATA // 2, DATA // 2, values[1], True)]
    expected = rules.settlement(
        [STAKE] * M, [True] * M, scores, TERMS, per.pool, per.budget, named=([0, 1], [1, 1], []), datasets=entries
    )
    if (values, scores) == ((3, 1), SCORES_GAIN):
        # A gains 155 and passes 31 on (23.25 to d0, 7.75 to d1), B passes 7 of 35 to d1, C keeps 55
        assert expected.model_payouts == [124 * E18, 28 * E18, 55 * E18]
        assert expected.dataset_payouts == [2_325 * E18 // 100, 1_475 * E18 // 100]
    if values == (5, -2):
        assert expected.dataset_payouts[1] == -DATA // 2 * TERMS.data_slash_bps // econ.BPS == -25 * E18 // 10
        assert expected.model_payouts[1] == 35 * E18
    check_settle(w, pid, closed.mids, closed.dsets, expected)


def test_settle__values_needed_only_while_a_dataset_is_active(w, closed):
    """Scores alone do not settle a period with an active dataset: the values must come first,
    and once both are recorded the period can no longer be voided."""
    pid = closed.pid
    with boa.reverts("loop: scores not recorded"):
        w.loop.settle(pid, sender=w.p.stranger)
    finish_values(w, pid, [2, 1])
    with boa.reverts("loop: scores not recorded"):
        w.loop.settle(pid, sender=w.p.stranger)
    w.finish(pid, SCORES, SCORES_GAIN)
    boa.env.time_travel(seconds=w.loop.periods(pid).result_deadline - w.now())
    with boa.reverts("loop: results recorded; settle the period"):
        w.loop.void(pid, sender=w.p.stranger)
    w.loop.settle(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).state == PERIOD_SETTLED
    w.assert_solvent()


@pytest.mark.parametrize("missing", ["values", "scores", "both"])
def test_void__frees_datasets_untouched_and_pays_them_nothing(w, closed, missing):
    """A period whose scores or values are missing at the result deadline voids: the pool goes
    to the revealed models evenly, every dataset's reservation is freed, no dataset is paid or
    slashed."""
    pid = closed.pid
    if missing == "values":
        w.finish(pid, SCORES, SCORES_GAIN)
    if missing == "scores":
        finish_values(w, pid, [-5, -5])  # would slash both
    per = w.loop.periods(pid)
    with boa.reverts("loop: result deadline not reached"):
        w.loop.void(pid, sender=w.p.stranger)
    boa.env.time_travel(seconds=per.result_deadline - w.now())
    owners = [w.owner_of(m) for m in closed.mids]
    providers = [provider(w, d) for d in closed.dsets]
    before, pbefore = balances(w, owners), balances(w, providers)
    burned = w.loop.burned()
    w.loop.void(pid, sender=w.p.stranger)
    expected = rules.void_settlement([True] * M, TERMS, per.pool, per.budget)
    assert [a - b for a, b in zip(balances(w, owners), before, strict=True)] == expected.model_payouts
    assert balances(w, providers) == pbefore and logs(w.loop, "DataPaid") == []
    assert [(w.loop.datasets(d).stake, w.loop.datasets(d).reserved) for d in closed.dsets] == [(STAKE, 0)] * 2
    assert all(w.loop.data_entries(pid, d).at_risk == 0 for d in closed.dsets)
    assert w.loop.burned() == burned and w.loop.periods(pid).state == PERIOD_VOID
    w.assert_solvent()
    # the freed stake is withdrawable
    for d in closed.dsets:
        w.loop.withdraw_data_stake(d, STAKE, sender=provider(w, d))
    w.assert_solvent()


# --- features --------------------------------------------------------------------------------


def empty_period(w, move_bps):
    """A period nobody commits to: it ends at its close, labelled by the sign of `move_bps`
    (0: the entry is never read, unscored)."""
    pid = w.loop.open_period(sender=w.p.stranger)
    sch = w.schedule(pid)
    if move_bps:
        w.travel_to(sch.trade_at)
        w.loop.trade(pid, sender=w.p.stranger)
        w.move_price(move_bps)
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).state == PERIOD_SETTLED
    return w.loop.periods(pid).label


def test_open_period__features_are_the_labels_of_the_f_periods_before(w):
    """Byte f of period p's features is the label of period p - 1 - f as int8, for f < min(F,
    p - 1); the rest is zero (verifier/market/loop.py's `features`). The values task of a later
    period commits exactly those features."""
    labels = []
    for move in (400, -400, 0, -400):
        p = w.loop.period_count() + 1
        lab = empty_period(w, move)
        assert bytes(w.loop.features(p)) == rules.features(labels, TERMS).ljust(32, b"\0")
        labels.append(lab)
    assert labels == [1, -1, 0, -1]
    assert bytes(w.loop.features(2))[:F] == b"\x01\x00\x00"  # period 2's byte 0 is period 1's label
    assert bytes(w.loop.features(3))[:F] == b"\xff\x01\x00"

    # period 5: the labels of periods 4, 3, 2, latest first; period 1's is past F
    d0 = w.dids[0]
    pid = w.loop.open_period(sender=w.p.stranger)
    assert pid == 5
    assert bytes(w.loop.features(pid)) == bytes([255, 0, 255]) + bytes(29) == rules.features(labels, TERMS).ljust(32, b"\0")
    join(w, pid, d0)
    mids = w.models(named=([d0],))
    commit_and_reveal(w, pid, mids[:1], predictions=(30,))
    close_labelled(w, pid, 400)
    tid = w.post(pid, VALUES)
    table = values_table(w, pid, [1, 0], 1, [-1, 0, -1], {0: d0})
    assert w.tasks.tasks(tid).initial_root == state_root(0, 0, merkle_root(table))
    w.assert_solvent()


def test_period_without_datasets__settles_on_scores(w, pid):
    """No dataset joined: nothing to value, the settlement is the models' alone."""
    mids = w.models(named=([w.dids[0]], [], []))
    commit_and_reveal(w, pid, mids)
    assert (w.loop.periods(pid).datasets, w.loop.periods(pid).active) == (0, 0)
    close_labelled(w, pid, 400)
    w.finish(pid, SCORES, SCORES_GAIN)
    per = w.loop.periods(pid)
    expected = rules.settlement([STAKE] * M, [True] * M, SCORES_GAIN, TERMS, per.pool, per.budget)
    check_settle(w, pid, mids, [], expected)
