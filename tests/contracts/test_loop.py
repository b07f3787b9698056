"""contracts/Loop.vy and contracts/Vault.vy: the closed loop's trading periods and its vault
(docs/SPEC.md section 12), with the real Token.vy, Pool.vy and Tasks.vy and the mock game.

Programs are not run here (tests/contracts/test_loop_programs.py runs them): the templates are
arbitrary words and a task is made DONE by a solver claiming `state(T, 0, merkle(table))` for a
table whose result slot holds the commitment of the values, as in test_market.py. Each test
names the property it guards; settlement is checked against verifier/market/loop.py.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import boa
import pytest
from _court import CONTRACTS, check_reason_table
from _loop import (
    DATA_BASE,
    DAY,
    DEPOSITS,
    E18,
    MAX_UINT,
    METAMODEL,
    PERIOD_OPEN,
    PERIOD_SETTLED,
    PERIOD_VOID,
    SCORES,
    STAKE,
    TERMS,
    VIRTUAL_SHARES,
    M,
    World,
    fake_programs,
    metamodel_of,
    own_scores,
    revealed,
    word,
)

from verifier.commit.commitments import state_root
from verifier.commit.merkle import merkle_root
from verifier.market import economics as econ
from verifier.market import loop as rules


def test_reasons__every_code_names_exactly_one_reason():
    check_reason_table(CONTRACTS / "Loop.vy", "loop: ")


@pytest.fixture
def w(loop_suite) -> World:
    return World(loop_suite)


@pytest.fixture
def opened(w):
    """A funded vault, three staked models and period 1 open."""
    w.fund_vault()
    mids = w.models()
    pid = w.loop.open_period(sender=w.p.stranger)
    return SimpleNamespace(pid=pid, mids=mids)


# --- deployment ------------------------------------------------------------------------------


def test_init__wiring(w):
    assert (w.loop.token(), w.loop.asset(), w.loop.pool(), w.loop.tasks(), w.loop.vault()) == (
        w.token.address, w.asset.address, w.pool.address, w.tasks.address, w.vault.address,
    )  # fmt: skip
    assert tuple(w.loop.terms()) == TERMS.as_tuple()
    assert w.vault.manager() == w.loop.address
    assert (w.loop.owed(), w.loop.period_count(), w.vault.owed()) == (0, 0, 0)


def test_size__under_the_eip170_limit(loop_suite):
    for contract in (loop_suite.loop, loop_suite.vault):
        assert len(boa.env.get_code(contract.address)) <= 24_576


BAD_TERMS = [
    ("models", 0), ("models", 17), ("commit_phase", rules.MIN_COMMIT_PHASE - 1),
    ("commit_phase", rules.MAX_COMMIT_PHASE + 1), ("reveal_phase", rules.MIN_PHASE - 1),
    ("reveal_phase", rules.MAX_PHASE + 1), ("hold", rules.MIN_HOLD - 1), ("hold", rules.MAX_HOLD + 1),
    ("average", rules.MIN_AVERAGE - 1), ("average", 2 * DAY + 1), ("max_position_bps", rules.MAX_POSITION_BPS + 1),
    ("leverage", 0), ("leverage", rules.MAX_LEVERAGE + 1),
    ("slippage_bps", rules.MIN_SLIPPAGE_BPS - 1), ("slippage_bps", rules.MAX_SLIPPAGE_BPS + 1),
    ("fee_bps", rules.MAX_FEE_BPS + 1), ("factor_bps", econ.MAX_FACTOR_BPS + 1), ("cap_bps", econ.MAX_CAP_BPS + 1),
    ("bonus_bps", 501), ("min_stake", 0), ("window", econ.MIN_WINDOW - 1), ("window", econ.MAX_TASK_WINDOW + 1),
    ("clock", econ.MIN_CLOCK - 1), ("clock", econ.MAX_TASK_CLOCK + 1), ("duration", econ.MIN_TASK_DURATION - 1),
    ("duration", econ.MAX_TASK_DURATION + 1), ("arity", 1), ("arity", 33), ("reward", econ.MIN_REWARD - 1),
    ("challenger_bond", econ.MIN_CHALLENGER_BOND - 1), ("challenger_bond", econ.MAX_CHALLENGER_BOND + 1),
    ("solver_bond", econ.MIN_CHALLENGER_BOND - 1), ("solver_bond", econ.MAX_SOLVER_BOND + 1),
]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), BAD_TERMS)
def test_init__terms_outside_the_protocols_bounds__refused(loop_suite, field, value):
    """Every term a deployer chooses has a protocol bound (SPEC 12.1): one unit past it is refused,
    with the reason verifier/market/loop.py gives."""
    bad = replace(TERMS, **{field: value})
    reason = rules.terms_error(bad)
    assert reason is not None
    with boa.reverts(reason):
        loop_suite.loop_deployer.deploy(
            loop_suite.token, loop_suite.asset, loop_suite.pool, loop_suite.tasks, loop_suite.vault, bad.as_tuple(), [p[:7] for p in loop_suite.programs]
        )


@pytest.mark.parametrize("field", sorted({f for f, _ in BAD_TERMS}))
def test_init__terms_at_the_protocols_bounds__taken(loop_suite, field):
    """The bounds themselves are allowed: the edge of each term deploys."""
    lows = {f: v for f, v in BAD_TERMS}
    edge = {
        "models": 16, "commit_phase": rules.MIN_COMMIT_PHASE, "reveal_phase": rules.MAX_PHASE, "hold": rules.MIN_HOLD,
        "average": rules.MIN_AVERAGE, "max_position_bps": rules.MAX_POSITION_BPS, "leverage": rules.MAX_LEVERAGE, "slippage_bps": rules.MAX_SLIPPAGE_BPS,
        "fee_bps": rules.MAX_FEE_BPS, "factor_bps": econ.MAX_FACTOR_BPS, "cap_bps": econ.MAX_CAP_BPS, "bonus_bps": 500,
        "min_stake": 1, "window": econ.MAX_TASK_WINDOW, "clock": econ.MIN_CLOCK, "duration": econ.MAX_TASK_DURATION,
        "arity": 32, "reward": econ.MIN_REWARD, "challenger_bond": econ.MIN_CHALLENGER_BOND,
        "solver_bond": econ.MAX_SOLVER_BOND,
    }  # fmt: skip
    assert field in lows
    good = replace(TERMS, **{field: edge[field]})
    if field == "hold":
        good = replace(good, average=rules.MIN_AVERAGE)
    assert rules.terms_error(good) is None
    programs = fake_programs(good.models)
    loop = loop_suite.loop_deployer.deploy(
        loop_suite.token, loop_suite.asset, loop_suite.pool, loop_suite.tasks, loop_suite.vault, good.as_tuple(), [p[:7] for p in programs]
    )
    assert tuple(loop.terms()) == good.as_tuple()


def test_init__wrong_wiring__refused(loop_suite, deployer):
    d = loop_suite.loop_deployer
    programs = [p[:7] for p in loop_suite.programs]
    other = boa.load_partial(str(CONTRACTS / "Token.vy")).deploy()
    with boa.reverts("loop: pool of other tokens"):
        d.deploy(loop_suite.token, other, loop_suite.pool, loop_suite.tasks, loop_suite.vault, TERMS.as_tuple(), programs)
    with boa.reverts("loop: vault of another token"):
        other_vault = boa.load_partial(str(CONTRACTS / "Vault.vy")).deploy(other)
        d.deploy(loop_suite.token, loop_suite.asset, loop_suite.pool, loop_suite.tasks, other_vault, TERMS.as_tuple(), programs)
    for kind, data in ((0, 1 + M), (1, 2 + M)):
        short = list(programs)
        short[kind] = (*programs[kind][:2], DATA_BASE + data - 1, *programs[kind][3:])  # no room for its data
        with boa.reverts("loop: program slots past its slot table"):
            d.deploy(loop_suite.token, loop_suite.asset, loop_suite.pool, loop_suite.tasks, loop_suite.vault, TERMS.as_tuple(), short)


# --- the vault -------------------------------------------------------------------------------


def test_vault__requests_take_effect_only_when_a_period_opens(w):
    """Deposits buy shares at the price of the next opening, not before (SPEC 12.1)."""
    d0, d1 = w.p.depositors[:2]
    w.vault.deposit(1_000 * E18, sender=d0)
    assert (w.vault.shares(d0), w.vault.assets(), w.vault.pending_deposits()) == (0, 0, 1_000 * E18)
    with boa.reverts("vault: nothing to claim; a request is taken in when the next period opens"):
        w.vault.claim(d0, sender=d1)
    w.models()
    w.loop.open_period(sender=w.p.stranger)
    w.vault.claim(d0, sender=d1)  # anyone claims for the owner
    assert w.vault.shares(d0) == 1_000 * E18 * VIRTUAL_SHARES
    w.assert_solvent()


def test_vault__one_price_per_turn_and_the_last_claimer_takes_the_rest(w):
    """Every request of an epoch gets the same price; claims add up to what the turn minted and
    paid exactly (no dust left owed, none created)."""
    w.fund_vault()
    w.models()
    w.loop.open_period(sender=w.p.stranger)
    for who in w.p.depositors[:2]:
        w.vault.claim(who, sender=who)
    supply, assets = w.vault.total_shares(), w.vault.assets()
    # three uneven requests in the next epoch
    w.vault.deposit(7 * E18 + 1, sender=w.p.depositors[2])
    w.vault.withdraw(w.vault.shares(w.p.depositors[0]) // 3, sender=w.p.depositors[0])
    w.vault.withdraw(w.vault.shares(w.p.depositors[1]) - 1, sender=w.p.depositors[1])
    end_period_without_models(w, 1)
    assets, supply = w.vault.assets(), w.vault.total_shares()
    e = w.vault.epoch()
    w.loop.open_period(sender=w.p.stranger)
    turned = w.vault.epochs(e)
    before = {a: w.token.balanceOf(a) for a in w.p.depositors}
    for who in w.p.depositors:
        w.vault.claim(who, sender=w.p.stranger)
    paid = sum(w.token.balanceOf(a) - before[a] for a in w.p.depositors)
    assert paid == turned.paid_left and w.vault.epochs(e).paid_left == 0 and w.vault.unclaimed() == 0
    assert w.vault.shares(w.p.depositors[2]) == turned.minted_left
    # the price of the turn: (assets + 1) / (supply + 1000), rounded toward the vault
    assert turned.paid_left <= turned.shares_left * (assets + 1) // (supply + VIRTUAL_SHARES)
    w.assert_solvent()


def end_period_without_models(w, pid: int) -> None:
    """Ends a period nobody committed to: its exit comes with no label, so it settles at close."""
    sch = w.schedule(pid)
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).state == PERIOD_SETTLED


def test_vault__a_donation_moves_no_price(w):
    """Shares price on the vault's own accounting: tokens sent to it directly are nobody's, so an
    early depositor cannot inflate a share against later ones (the ERC-4626 inflation attack)."""
    attacker, victim = w.p.depositors[:2]
    w.vault.deposit(1, sender=attacker)
    w.token.transfer(w.vault, 10**6 * E18, sender=attacker)
    w.vault.deposit(1_000 * E18, sender=victim)
    w.models()
    w.loop.open_period(sender=w.p.stranger)
    w.vault.claim(attacker, sender=attacker)
    w.vault.claim(victim, sender=victim)
    assert w.vault.shares(victim) == 1_000 * E18 * w.vault.shares(attacker)


def test_vault__cancel_takes_back_a_request_not_yet_taken_in(w):
    d0 = w.p.depositors[0]
    bal = w.token.balanceOf(d0)
    w.vault.deposit(5 * E18, sender=d0)
    w.vault.cancel(sender=d0)
    assert (w.token.balanceOf(d0), w.vault.pending_deposits(), w.vault.owed()) == (bal, 0, 0)
    with boa.reverts("vault: no request to cancel; a taken-in request is claimed"):
        w.vault.cancel(sender=d0)


def test_vault__only_the_manager_turns_lends_and_repays(w):
    """Nobody but the loop moves the vault's assets (guards `turn`, `lend`, `repay`)."""
    w.fund_vault()
    for call in (lambda: w.vault.turn(), lambda: w.vault.lend(1), lambda: w.vault.repay(1)):
        with boa.reverts("vault: only the manager"):
            with boa.env.prank(w.p.stranger):
                call()
    with boa.reverts("vault: only the deployer"):
        w.vault.set_manager(w.p.stranger, sender=w.p.stranger)


def test_vault__manager_is_set_once(deployer, loop_suite):
    v = boa.load_partial(str(CONTRACTS / "Vault.vy")).deploy(loop_suite.token, sender=deployer)
    with boa.reverts("vault: empty manager"):
        v.set_manager("0x0000000000000000000000000000000000000000", sender=deployer)
    v.set_manager(loop_suite.loop, sender=deployer)
    with boa.reverts("vault: manager already set"):
        v.set_manager(loop_suite.loop, sender=deployer)


def test_vault__withdraw_more_than_held__refused(w):
    with boa.reverts("vault: more shares than held"):
        w.vault.withdraw(1, sender=w.p.depositors[0])
    with boa.reverts("vault: nothing to withdraw"):
        w.vault.withdraw(0, sender=w.p.depositors[0])
    with boa.reverts("vault: nothing to deposit"):
        w.vault.deposit(0, sender=w.p.depositors[0])


# --- opening a period ------------------------------------------------------------------------


def test_open_period__takes_the_pool_and_budget_from_the_vault(w, opened):
    """The pool is fee_bps of the vault and the budget three rewards, one per program (SPEC 12.3); the schedule
    leaves a task's claim period, window and both clocks before the trade (the latency bound)."""
    per = w.loop.periods(opened.pid)
    assets = sum(DEPOSITS)
    pool, budget = rules.pool_and_budget(assets, TERMS)
    assert (per.state, per.pool, per.budget) == (PERIOD_OPEN, pool, budget)
    assert w.vault.assets() == assets - pool - budget
    assert per.max_stake == rules.max_stake(pool, TERMS)
    sch = w.schedule(opened.pid)
    assert sch == rules.schedule(sch.commit_deadline - TERMS.commit_phase, TERMS)
    assert sch.trade_at - sch.reveal_deadline == TERMS.duration + TERMS.window + 2 * TERMS.clock
    w.assert_solvent()


def test_open_period__one_at_a_time(w, opened):
    with boa.reverts("loop: a period is open"):
        w.loop.open_period(sender=w.p.stranger)


def test_open_period__a_vault_too_small__refused(w):
    w.vault.deposit(TERMS.reward, sender=w.p.depositors[0])  # below two rewards
    with boa.reverts("loop: the vault cannot pay the period's pool and tasks"):
        w.loop.open_period(sender=w.p.stranger)


# --- commit and reveal -----------------------------------------------------------------------


def test_commit__reserves_the_stake_and_bounds_it(w, opened):
    """A commitment reserves stake between min_stake and max_stake (gains fit the pool), of the
    free stake only; the owner alone commits; slots are bounded."""
    pid, (m0, m1, m2) = opened.pid, opened.mids
    max_stake = w.loop.periods(pid).max_stake
    with boa.reverts("loop: not the model owner"):
        w.commit(pid, m0, 10, who=w.p.stranger)
    with boa.reverts("loop: stake below the minimum"):
        w.commit(pid, m0, 10, amount=TERMS.min_stake - 1)
    w.loop.add_stake(m0, max_stake, sender=w.owner_of(m0))
    with boa.reverts("loop: stake above the period's maximum"):
        w.commit(pid, m0, 10, amount=max_stake + 1)
    with boa.reverts("loop: amount exceeds the free stake"):
        w.commit(pid, m1, 10, amount=STAKE + 1)
    w.commit(pid, m0, 10, amount=max_stake)
    assert w.loop.models(m0).reserved == max_stake
    with boa.reverts("loop: model already committed"):
        w.commit(pid, m0, 10)
    with boa.reverts("loop: amount exceeds the free stake"):
        w.loop.withdraw_stake(m0, STAKE + 1, sender=w.owner_of(m0))
    w.commit(pid, m1, 10)
    w.commit(pid, m2, 10)
    extra = w.models(stakes=(STAKE,))[0]
    with boa.reverts("loop: model slots full of reservations at least as large"):
        w.commit(pid, extra, 10)


def test_commit__full_slots__a_larger_reservation_displaces_the_smallest(w, opened):
    """Slots are not first come: once the M slots are full, a larger reservation takes the slot
    of the smallest (the first of equals), whose reservation is freed and which may commit again
    with more; an equal one is refused (SPEC 12.2). Sybils holding every slot at min_stake no
    longer shut skilled models out."""
    pid, (m0, m1, m2) = opened.pid, opened.mids
    for mid, amount in zip(opened.mids, (300, 200, 200), strict=True):
        w.commit(pid, mid, 10, amount=amount * E18)
    extra = w.models(stakes=(STAKE,))[0]
    with boa.reverts("loop: model slots full of reservations at least as large"):
        w.commit(pid, extra, 20, amount=200 * E18)
    w.commit(pid, extra, 20, amount=200 * E18 + 1)
    logs = w.loop.get_logs()
    assert [(type(e).__name__, e.model_id, e.slot) for e in logs] == [("Displaced", m1, 1), ("Committed", extra, 1)]
    assert w.loop.slot_model(pid, 1) == extra and w.loop.entries(pid, extra).slot == 1
    assert tuple(w.loop.entries(pid, m1)) == (0, 0, 0, b"\x00" * 32)
    assert (w.loop.models(m1).reserved, w.loop.models(extra).reserved) == (0, 200 * E18 + 1)
    assert w.loop.periods(pid).models == M
    w.commit(pid, m1, 30, amount=250 * E18)  # the displaced model bids again: the smallest is now m2's
    assert [w.loop.slot_model(pid, s) for s in range(M)] == [m0, extra, m1]
    assert w.loop.models(m2).reserved == 0
    sch = w.schedule(pid)
    boa.env.time_travel(seconds=sch.commit_deadline - w.now())
    with boa.reverts("loop: model not committed or already revealed"):
        w.reveal(pid, m2)
    for mid in (m0, extra, m1):
        w.reveal(pid, mid)
    assert w.loop.periods(pid).backing == (300 + 250) * E18 + 200 * E18 + 1
    w.assert_solvent()


def test_commit_and_reveal__deadlines_one_second_each_side(w, opened):
    pid, mid = opened.pid, opened.mids[0]
    sch = w.schedule(pid)
    boa.env.time_travel(seconds=sch.commit_deadline - 1 - w.now())
    w.commit(pid, mid, 30)
    with boa.reverts("loop: commit deadline not reached"):
        w.reveal(pid, mid)
    boa.env.time_travel(seconds=1)
    with boa.reverts("loop: commit deadline passed"):
        w.commit(pid, opened.mids[1], 30)
    boa.env.time_travel(seconds=sch.reveal_deadline - w.now())
    with boa.reverts("loop: reveal deadline passed"):
        w.reveal(pid, mid)


def test_reveal__only_the_committed_prediction(w, opened):
    """A reveal must match the commitment, which binds the period and the model: a copy of
    someone's commitment cannot be revealed with their prediction."""
    pid, (m0, m1, _) = opened.pid, opened.mids
    w.commit(pid, m0, 30)
    copied = w.loop.entries(pid, m0).commitment
    w.loop.commit(pid, m1, copied, STAKE, sender=w.owner_of(m1))
    boa.env.time_travel(seconds=w.schedule(pid).commit_deadline - w.now())
    salt = w.salts[pid, m0]
    with boa.reverts("loop: prediction does not match the commitment"):
        w.loop.reveal(pid, m0, rules.prediction_byte(31), salt, sender=w.p.stranger)
    with boa.reverts("loop: prediction does not match the commitment"):
        w.loop.reveal(pid, m1, rules.prediction_byte(30), salt, sender=w.p.stranger)
    w.reveal(pid, m0)
    with boa.reverts("loop: model not committed or already revealed"):
        w.reveal(pid, m0)
    assert w.loop.predictions(pid, 0) == rules.prediction_byte(30)


# --- the metamodel, the trade and the exit ---------------------------------------------------


def test_trade__never_before_the_metamodel_claim_is_final(w, opened):
    """A trade runs only on a recorded metamodel, which only a DONE task's claim gives (SPEC 12.4)."""
    pid = opened.pid
    sch = revealed(w, opened)
    m = metamodel_of((60, 20, -40))
    w.post(pid, METAMODEL)
    cid, root, proof = w.claim(pid, METAMODEL, [m])
    with boa.reverts("loop: task not done; finalize a claim first"):
        w.loop.record(pid, METAMODEL, root, proof, [m], sender=w.p.stranger)
    w.travel_to(sch.trade_at)
    w.loop.trade(pid, sender=w.p.stranger)  # reads the entry price only
    per = w.loop.periods(pid)
    assert per.entry_price > 0 and not per.traded and per.position == 0
    with boa.reverts("loop: nothing to trade; the entry was missed or the metamodel is not recorded"):
        w.loop.trade(pid, sender=w.p.stranger)
    w.tasks.finalize(cid, sender=w.p.stranger)
    w.loop.record(pid, METAMODEL, root, proof, [m], sender=w.p.stranger)
    assets = w.vault.assets()
    w.loop.trade(pid, sender=w.p.stranger)
    per = w.loop.periods(pid)
    assert per.traded and per.spent == rules.position(assets, m, TERMS, per.backing) > 0
    assert per.position >= rules.min_out(per.spent, per.entry_price, TERMS, buying=True)
    assert w.asset.balanceOf(w.loop) == per.position
    w.assert_solvent()


def test_trade__time_edges(w, opened):
    pid = opened.pid
    sch = revealed(w, opened)
    w.travel_to(sch.trade_at - 1)
    with boa.reverts("loop: trade_at not reached"):
        w.loop.trade(pid, sender=w.p.stranger)
    boa.env.time_travel(seconds=1)
    w.loop.trade(pid, sender=w.p.stranger)
    boa.env.time_travel(seconds=sch.end - w.now())
    with boa.reverts("loop: the period's exit passed"):
        w.loop.trade(pid, sender=w.p.stranger)


def test_trade__the_entry_is_read_within_one_average_window_of_trade_at(w, opened):
    """Nobody picks the entry's moment: it is read within `average` seconds of trade_at or never,
    and a period without an entry is unscored (no gain, no loss)."""
    pid = opened.pid
    sch = revealed(w, opened)
    w.travel_to(sch.trade_at + TERMS.average)
    with boa.reverts("loop: nothing to trade; the entry was missed or the metamodel is not recorded"):
        w.loop.trade(pid, sender=w.p.stranger)
    stakes = [w.loop.models(mid).stake for mid in opened.mids]
    vault_before, held = w.vault.assets(), w.loop.periods(pid)
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)
    per = w.loop.periods(pid)
    assert (per.state, per.label) == (PERIOD_SETTLED, 0)
    assert [w.loop.models(mid).stake for mid in opened.mids] == stakes
    assert all(w.loop.models(mid).reserved == 0 for mid in opened.mids)
    assert w.vault.assets() == vault_before + held.pool + held.budget
    w.assert_solvent()


@pytest.mark.parametrize("metamodel", [-100, -1, 0])
def test_trade__no_position_on_a_signal_of_zero_or_below(w, opened, metamodel):
    pid = opened.pid
    traded(w, opened, metamodel)
    per = w.loop.periods(pid)
    assert per.traded and (per.spent, per.position) == (0, 0)


@pytest.mark.parametrize("metamodel", [1, 50, 100, 101, 2**62])
def test_trade__position_bounded_by_the_terms(w, opened, metamodel):
    """The position is assets * max_position_bps * min(signal, 100) / (100 * BPS): never more than
    max_position_bps of the vault, whatever the metamodel says."""
    pid = opened.pid
    sch = revealed(w, opened)
    w.finish(pid, METAMODEL, [metamodel])
    w.travel_to(sch.trade_at)
    assets = w.vault.assets()
    w.loop.trade(pid, sender=w.p.stranger)
    per = w.loop.periods(pid)
    assert per.spent == rules.position(assets, metamodel, TERMS, per.backing)
    assert per.spent <= assets * TERMS.max_position_bps // rules.BPS
    assert per.spent <= per.backing * TERMS.leverage


def test_trade__a_lone_dust_model_cannot_drive_the_vault(w, opened):
    """The position is at most `leverage` times the stake behind the signal: one model that
    reserved min_stake and predicts +100 moves min_stake * leverage, not half the vault."""
    pid, mid = opened.pid, opened.mids[0]
    w.commit(pid, mid, 100, amount=TERMS.min_stake)
    sch = w.schedule(pid)
    boa.env.time_travel(seconds=sch.commit_deadline - w.now())
    w.reveal(pid, mid)
    boa.env.time_travel(seconds=sch.reveal_deadline - w.now())
    w.finish(pid, METAMODEL, [100])
    w.travel_to(sch.trade_at)
    assets = w.vault.assets()
    w.loop.trade(pid, sender=w.p.stranger)
    per = w.loop.periods(pid)
    assert per.backing == TERMS.min_stake
    assert per.spent == TERMS.min_stake * TERMS.leverage < assets * TERMS.max_position_bps // rules.BPS


def test_trade__slippage_beyond_the_limit__refused(w, opened):
    """A spot price pushed above the average makes the buy fetch less than the limit: refused."""
    pid = opened.pid
    sch = revealed(w, opened)
    w.finish(pid, METAMODEL, [100])
    w.travel_to(sch.trade_at)
    w.move_price(300)  # 3% above the average, the limit is 1%
    with boa.reverts("pool: slippage"):
        w.loop.trade(pid, sender=w.p.stranger)


def traded(w, opened, metamodel: int):
    """Every model of `opened` revealed, `metamodel` recorded and traded on at trade_at; the schedule."""
    pid = opened.pid
    sch = revealed(w, opened)
    w.finish(pid, METAMODEL, [metamodel])
    w.travel_to(sch.trade_at)
    w.loop.trade(pid, sender=w.p.stranger)
    return sch


def play_to_close(w, opened, predictions=(60, 20, -40), move_bps=400) -> tuple:
    """Reveals, records the metamodel, trades, moves the price by `move_bps` and holds it through
    the period, and closes; returns (schedule, metamodel)."""
    pid = opened.pid
    sch = revealed(w, opened, predictions)
    m = metamodel_of(predictions)
    w.finish(pid, METAMODEL, [m])
    w.travel_to(sch.trade_at)
    w.loop.trade(pid, sender=w.p.stranger)
    w.move_price(move_bps)
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)
    return sch, m


def test_close__sells_and_labels_by_the_average_price(w, opened):
    """The exit sells the whole position at no less than the limit, repays the vault, and labels
    the period by the sign of the average price's move (SPEC 12.4)."""
    spent_before = w.vault.assets()
    play_to_close(w, opened, move_bps=400)
    per = w.loop.periods(opened.pid)
    assert per.closed and per.position == 0 and per.label == 1 and per.exit_price > per.entry_price
    assert per.proceeds > per.spent  # the asset rose 4% while held
    assert w.vault.assets() == spent_before + per.proceeds - per.spent
    assert w.asset.balanceOf(w.loop) == 0
    w.assert_solvent()


def test_close__a_refused_sale_is_left_to_unwind(w, opened):
    """A spot price pushed far below the average at the exit cannot force a cheap sale: the label
    is set, the position stays, and `unwind` sells once the price is back (the next period waits)."""
    pid = opened.pid
    sch = traded(w, opened, 100)
    w.travel_to(sch.end)
    w.move_price(-1_000)
    w.loop.close(pid, sender=w.p.stranger)
    per = w.loop.periods(pid)
    assert per.closed and per.position > 0 and per.label != 0
    with boa.reverts("loop: the pool refused the exit; call unwind once its price is back near its average"):
        w.loop.unwind(pid, sender=w.p.stranger)
    w.move_price(1_000)
    w.loop.unwind(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).position == 0 and w.asset.balanceOf(w.loop) == 0
    with boa.reverts("loop: no position to sell"):
        w.loop.unwind(pid, sender=w.p.stranger)
    w.assert_solvent()


def test_close__time_edges_and_once(w, opened):
    pid = opened.pid
    sch = revealed(w, opened)
    w.travel_to(sch.end - 1)
    with boa.reverts("loop: the period's exit not reached"):
        w.loop.close(pid, sender=w.p.stranger)
    boa.env.time_travel(seconds=1)
    w.loop.close(pid, sender=w.p.stranger)
    with boa.reverts("loop: period already ended"):
        w.loop.close(pid, sender=w.p.stranger)


# --- scores and settlement -------------------------------------------------------------------




def test_settle__pays_by_score_against_the_realized_return(w, opened):
    """Gains come from the pool by each model's own score against the realized return plus the
    bounded bonus, losses are burned, the rest returns to the vault (SPEC 12.5, checked against
    verifier/market/loop.py); every reservation is freed and the contracts hold what they owe."""
    preds = (15, 5, -10)  # own scores 1_500, 500 and -1_000 bps: inside the cap
    play_to_close(w, opened, preds, move_bps=400)
    pid = opened.pid
    assert w.loop.periods(pid).label == 1
    scores = own_scores(preds, 1)
    w.finish(pid, SCORES, scores)
    per = w.loop.periods(pid)
    expected = rules.settlement([STAKE] * M, [True] * M, scores, TERMS, per.pool, per.budget)
    owners = [w.owner_of(mid) for mid in opened.mids]
    bal = [w.token.balanceOf(o) for o in owners]
    stakes = [w.loop.models(mid).stake for mid in opened.mids]
    vault, burned, supply = w.vault.assets(), w.loop.burned(), w.token.totalSupply()
    w.loop.settle(pid, sender=w.p.stranger)
    for i, mid in enumerate(opened.mids):
        pay = expected.model_payouts[i]
        assert w.token.balanceOf(owners[i]) - bal[i] == max(pay, 0)
        assert stakes[i] - w.loop.models(mid).stake == max(-pay, 0)
        assert w.loop.models(mid).reserved == 0
    assert expected.model_payouts[0] > expected.model_payouts[1] > 0 > expected.model_payouts[2]
    assert w.loop.burned() - burned == expected.burned == supply - w.token.totalSupply()
    assert w.vault.assets() - vault == expected.refund
    assert w.loop.periods(pid).state == PERIOD_SETTLED
    w.assert_solvent()
    with boa.reverts("loop: period already ended"):
        w.loop.settle(pid, sender=w.p.stranger)


def test_settle__a_model_without_edge_pays_the_charge(w, opened):
    """Every revealed model pays ceil(bonus_bps / 2) of its reservation, burned: a prediction of
    0 scores 0 against any label and against the others, so it loses exactly the charge, and the
    charge comes off the skilled model's gain too (SPEC 12.5)."""
    preds = (0, 10, -10)
    play_to_close(w, opened, preds, move_bps=400)
    pid = opened.pid
    scores = own_scores(preds, 1)
    assert (scores[0], scores[M]) == (0, 0)
    w.finish(pid, SCORES, scores)
    owner, stake = w.owner_of(opened.mids[0]), w.loop.models(opened.mids[0]).stake
    skilled = w.owner_of(opened.mids[1])
    bal, burned, supply = w.token.balanceOf(skilled), w.loop.burned(), w.token.totalSupply()
    owner_bal = w.token.balanceOf(owner)
    w.loop.settle(pid, sender=w.p.stranger)
    charge = STAKE * (TERMS.bonus_bps // 2) // econ.BPS
    assert TERMS.charge_bps == TERMS.bonus_bps // 2 == 250
    assert stake - w.loop.models(opened.mids[0]).stake == charge == 25 * E18
    assert w.token.balanceOf(owner) == owner_bal  # nothing paid out
    own, bonus = scores[1], min(scores[M + 1], TERMS.bonus_bps)
    assert w.token.balanceOf(skilled) - bal == STAKE * (own + bonus - 250) // econ.BPS
    assert w.loop.burned() - burned == supply - w.token.totalSupply() >= charge
    w.assert_solvent()


@pytest.fixture
def odd_bonus(loop_suite, deployer):
    """A second vault and loop whose bonus_bps is odd (499), three models staked, a period open."""
    terms = replace(TERMS, bonus_bps=499)
    with boa.env.prank(deployer):
        vault = boa.load_partial(str(CONTRACTS / "Vault.vy")).deploy(loop_suite.token)
        s = loop_suite
        loop = s.loop_deployer.deploy(s.token, s.asset, s.pool, s.tasks, vault, terms.as_tuple(), [p[:7] for p in s.programs])
        vault.set_manager(loop)
    for a in [*loop_suite.p.depositors, *loop_suite.p.modelers, loop_suite.p.stranger]:
        for spender in (vault, loop):
            loop_suite.token.approve(spender, MAX_UINT, sender=a)
    odd = World(SimpleNamespace(**{**vars(loop_suite), "vault": vault, "loop": loop}), terms)
    odd.fund_vault()
    mids = odd.models()
    return odd, SimpleNamespace(pid=loop.open_period(sender=loop_suite.p.stranger), mids=mids)


def test_settle__an_odd_bonus_charges_half_rounded_up(odd_bonus):
    """With bonus_bps = 499 the charge is 250 bps, not 249: rounded down, a zero-skill model
    would keep half a basis point of expected bonus a period."""
    w, opened = odd_bonus
    assert w.terms.charge_bps == 250
    preds = (0, 10, -10)
    play_to_close(w, opened, preds, move_bps=400)
    scores = own_scores(preds, 1)
    w.finish(opened.pid, SCORES, scores)
    stake = w.loop.models(opened.mids[0]).stake
    w.loop.settle(opened.pid, sender=w.p.stranger)
    assert stake - w.loop.models(opened.mids[0]).stake == STAKE * 250 // econ.BPS
    w.assert_solvent()


def test_settle__needs_the_scores(w, opened):
    play_to_close(w, opened)
    with boa.reverts("loop: scores not recorded"):
        w.loop.settle(opened.pid, sender=w.p.stranger)


def test_post_task__scores_only_after_the_exit_and_with_its_label(w, opened):
    """The scores program's label slot holds the commitment of the realized return's sign: the
    posted initial state is the one the loop's own table gives."""
    pid = opened.pid
    sch = revealed(w, opened)
    with boa.reverts("loop: position not closed"):
        w.post(pid, SCORES)
    w.finish(pid, METAMODEL, [10])
    w.travel_to(sch.trade_at)
    w.loop.trade(pid, sender=w.p.stranger)
    w.move_price(-400)
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).label == -1
    tid = w.post(pid, SCORES)
    task = w.tasks.tasks(tid)
    assert task.initial_root == state_root(0, 0, merkle_root(w.slot_table(pid, SCORES)))
    with boa.reverts("loop: the kind's task is still running"):
        w.post(pid, SCORES)


def test_post_task__not_the_template__refused(w, opened):
    revealed(w, opened)
    slots = list(w.programs[METAMODEL][7])
    slots[-1] = word("other")
    with boa.reverts("loop: slots are not the program's template"):
        w.loop.post_task(opened.pid, METAMODEL, slots, sender=w.p.stranger)
    with boa.reverts("loop: kind is not 0, 1 or 2"):
        w.loop.post_task(opened.pid, 3, slots, sender=w.p.stranger)


def test_post_task__metamodel_table_holds_the_periods_commitments(w, opened):
    pid = opened.pid
    revealed(w, opened)
    tid = w.post(pid, METAMODEL)
    assert w.tasks.tasks(tid).initial_root == state_root(0, 0, merkle_root(w.slot_table(pid, METAMODEL)))
    assert w.loop.periods(pid).budget == 2 * TERMS.reward
    w.assert_solvent()


def test_record__only_the_claims_result(w, opened):
    """A record must open the finalized claim's result slot to the values given."""
    pid = opened.pid
    revealed(w, opened)
    w.post(pid, METAMODEL)
    cid, root, proof = w.claim(pid, METAMODEL, [25])
    boa.env.time_travel(seconds=TERMS.window)
    w.tasks.finalize(cid, sender=w.p.stranger)
    with boa.reverts("loop: proof does not open the result"):
        w.loop.record(pid, METAMODEL, root, proof, [26], sender=w.p.stranger)
    with boa.reverts("loop: not the claim's final state"):
        w.loop.record(pid, METAMODEL, word("other root"), proof, [25], sender=w.p.stranger)
    with boa.reverts("loop: wrong number of values"):
        w.loop.record(pid, METAMODEL, root, proof, [25, 1], sender=w.p.stranger)
    with boa.reverts("loop: wrong proof length"):
        w.loop.record(pid, METAMODEL, root, proof[:-1], [25], sender=w.p.stranger)
    w.loop.record(pid, METAMODEL, root, proof, [25], sender=w.p.stranger)
    assert w.loop.periods(pid).metamodel == 25
    with boa.reverts("loop: result already recorded"):
        w.loop.record(pid, METAMODEL, root, proof, [25], sender=w.p.stranger)


def test_void__splits_the_pool_among_revealed_models_when_scores_never_come(w, opened):
    """Once predictions are revealed the pool is the models': a period whose scores are not
    recorded by the result deadline pays it evenly to them, and slashes nobody."""
    play_to_close(w, opened)
    pid = opened.pid
    per = w.loop.periods(pid)
    with boa.reverts("loop: result deadline not reached"):
        w.loop.void(pid, sender=w.p.stranger)
    boa.env.time_travel(seconds=per.result_deadline - w.now())
    owners = [w.owner_of(mid) for mid in opened.mids]
    bal = [w.token.balanceOf(o) for o in owners]
    w.loop.void(pid, sender=w.p.stranger)
    got = [w.token.balanceOf(o) - b for o, b in zip(owners, bal, strict=True)]
    assert sum(got) == per.pool and max(got) - min(got) <= 1
    assert all(w.loop.models(mid).stake == STAKE and w.loop.models(mid).reserved == 0 for mid in opened.mids)
    assert w.loop.periods(pid).state == PERIOD_VOID
    w.assert_solvent()


def test_next_period__waits_for_the_last_positions_sale(w, opened):
    pid = opened.pid
    sch = traded(w, opened, 100)
    w.travel_to(sch.end)
    w.move_price(-1_000)
    w.loop.close(pid, sender=w.p.stranger)
    boa.env.time_travel(seconds=w.loop.periods(pid).result_deadline - w.now())
    w.loop.void(pid, sender=w.p.stranger)
    with boa.reverts("loop: the last period's position is not sold; call unwind"):
        w.loop.open_period(sender=w.p.stranger)


# --- reverts that guard inputs and order -----------------------------------------------------


def test_reverts__unknown_period_model_and_task(w, opened):
    with boa.reverts("loop: no such period"):
        w.loop.trade(99, sender=w.p.stranger)
    with boa.reverts("loop: no such model"):
        w.loop.add_stake(99, 1, sender=w.p.stranger)
    with boa.reverts("loop: not the model owner"):
        w.loop.withdraw_stake(opened.mids[0], 1, sender=w.p.stranger)
    with boa.reverts("loop: no task of this kind"):
        w.loop.record(opened.pid, METAMODEL, word("root"), [], [1], sender=w.p.stranger)
    with boa.reverts("loop: kind is not 0, 1 or 2"):
        w.loop.record(opened.pid, 3, word("root"), [], [1] * 2 * M, sender=w.p.stranger)


def test_reveal__a_prediction_is_one_byte(w, opened):
    pid, mid = opened.pid, opened.mids[0]
    w.commit(pid, mid, 5)
    boa.env.time_travel(seconds=w.schedule(pid).commit_deadline - w.now())
    with boa.reverts("loop: a prediction is one byte"):
        w.loop.reveal(pid, mid, b"", w.salts[pid, mid], sender=w.p.stranger)


def test_post_task__order_of_the_period(w, opened):
    """The metamodel's task waits for the reveal deadline and a revealed model; the scores' for
    the exit; a finished kind is not posted again; nothing is posted after the result deadline."""
    pid = opened.pid
    with boa.reverts("loop: no model revealed"):
        w.post(pid, METAMODEL)
    w.commit(pid, opened.mids[0], 5)
    boa.env.time_travel(seconds=w.schedule(pid).commit_deadline - w.now())
    w.reveal(pid, opened.mids[0])
    with boa.reverts("loop: reveal deadline not reached"):
        w.post(pid, METAMODEL)
    sch = w.schedule(pid)
    boa.env.time_travel(seconds=sch.reveal_deadline - w.now())
    w.finish(pid, METAMODEL, [5])
    with boa.reverts("loop: the kind's task is done"):
        w.post(pid, METAMODEL)
    w.travel_to(sch.trade_at)
    w.loop.trade(pid, sender=w.p.stranger)
    w.move_price(200)
    w.travel_to(sch.end)
    with boa.reverts("loop: the period's exit passed"):
        w.post(pid, METAMODEL)
    w.loop.close(pid, sender=w.p.stranger)
    with boa.reverts("loop: position already closed"):
        w.loop.close(pid, sender=w.p.stranger)
    boa.env.time_travel(seconds=w.loop.periods(pid).result_deadline - w.now())
    with boa.reverts("loop: result deadline passed"):
        w.post(pid, SCORES)


def test_record__values_inside_int64_and_before_the_deadlines(w, opened):
    pid = opened.pid
    sch = revealed(w, opened)
    w.post(pid, METAMODEL)
    cid, root, proof = w.claim(pid, METAMODEL, [7])
    boa.env.time_travel(seconds=TERMS.window)
    w.tasks.finalize(cid, sender=w.p.stranger)
    for v in (2**63, -(2**63) - 1):
        with boa.reverts("loop: value outside int64"):
            w.loop.record(pid, METAMODEL, root, proof, [v], sender=w.p.stranger)
    boa.env.time_travel(seconds=sch.end - w.now())
    with boa.reverts("loop: the period's exit passed"):
        w.loop.record(pid, METAMODEL, root, proof, [7], sender=w.p.stranger)


def test_record_scores__before_the_result_deadline_and_then_no_void(w, opened):
    """Scores recorded exclude a void: a period whose results are in can only be settled."""
    preds = (15, 5, -10)
    play_to_close(w, opened, preds)
    pid = opened.pid
    scores = own_scores(preds, 1)
    w.post(pid, SCORES)
    cid, root, proof = w.claim(pid, SCORES, scores)
    boa.env.time_travel(seconds=TERMS.window)
    w.tasks.finalize(cid, sender=w.p.stranger)
    with boa.reverts("loop: wrong number of values"):
        w.loop.record(pid, SCORES, root, proof, scores[:-1], sender=w.p.stranger)
    deadline = w.loop.periods(pid).result_deadline
    boa.env.time_travel(seconds=deadline - 1 - w.now())
    w.loop.record(pid, SCORES, root, proof, scores, sender=w.p.stranger)
    boa.env.time_travel(seconds=1)
    with boa.reverts("loop: results recorded; settle the period"):
        w.loop.void(pid, sender=w.p.stranger)
    w.loop.settle(pid, sender=w.p.stranger)


def test_record_scores__after_the_result_deadline__refused(w, opened):
    preds = (15, 5, -10)
    play_to_close(w, opened, preds)
    pid = opened.pid
    scores = own_scores(preds, 1)
    w.post(pid, SCORES)
    cid, root, proof = w.claim(pid, SCORES, scores)
    boa.env.time_travel(seconds=w.loop.periods(pid).result_deadline - w.now())
    w.tasks.finalize(cid, sender=w.p.stranger)
    with boa.reverts("loop: result deadline passed"):
        w.loop.record(pid, SCORES, root, proof, scores, sender=w.p.stranger)


def test_void__needs_the_exit(w, opened):
    pid = opened.pid
    revealed(w, opened)
    boa.env.time_travel(seconds=w.loop.periods(pid).result_deadline - w.now())
    with boa.reverts("loop: position not closed"):
        w.loop.void(pid, sender=w.p.stranger)


def test_unwind__needs_the_exit(w, opened):
    with boa.reverts("loop: position not closed"):
        w.loop.unwind(opened.pid, sender=w.p.stranger)


def test_sync__a_reclaimed_reward_returns_to_the_budget_then_to_the_vault(w, opened):
    """A task nobody claimed returns its reward: to the period's budget while it is open (so the
    kind can be posted again), to the vault once it ended; never twice."""
    pid = opened.pid
    sch = revealed(w, opened)
    w.post(pid, METAMODEL)
    boa.env.time_travel(seconds=TERMS.duration)
    budget = w.loop.periods(pid).budget
    w.loop.sync(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).budget == budget + TERMS.reward
    assert w.loop.task_reward(pid, METAMODEL) == 0
    w.loop.sync(pid, sender=w.p.stranger)
    assert w.loop.periods(pid).budget == budget + TERMS.reward
    w.post(pid, METAMODEL)  # posted again from the returned reward
    w.assert_solvent()
    per = w.loop.periods(pid)
    vault = w.vault.assets()
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)  # no entry was read: unscored, ends here
    assert w.loop.periods(pid).state == PERIOD_SETTLED
    # the pool, the unspent budget and the second task's reward, reclaimed as the period ended
    assert w.vault.assets() == vault + per.pool + per.budget + TERMS.reward
    w.loop.sync(pid, sender=w.p.stranger)
    assert w.vault.assets() == vault + per.pool + per.budget + TERMS.reward
    w.assert_solvent()


def test_init__zero_token_and_tasks_of_another_token__refused(loop_suite):
    d = loop_suite.loop_deployer
    programs = [p[:7] for p in loop_suite.programs]
    zero = "0x0000000000000000000000000000000000000000"
    with boa.reverts("loop: zero token"):
        d.deploy(zero, loop_suite.asset, loop_suite.pool, loop_suite.tasks, loop_suite.vault, TERMS.as_tuple(), programs)
    with boa.reverts("vault: zero token"):
        boa.load_partial(str(CONTRACTS / "Vault.vy")).deploy(zero)
    other = boa.load_partial(str(CONTRACTS / "Token.vy")).deploy()
    game = boa.load_partial(str(CONTRACTS / "mocks" / "MockGame.vy")).deploy()
    other_tasks = boa.load_partial(str(CONTRACTS / "Tasks.vy")).deploy(other, game, boa.load_partial(str(CONTRACTS / "Availability.vy")).deploy())
    with boa.reverts("loop: tasks uses another token"):
        d.deploy(loop_suite.token, loop_suite.asset, loop_suite.pool, other_tasks, loop_suite.vault, TERMS.as_tuple(), programs)


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("bad", ["nodes", "steps", "slots", "out"])
def test_init__program_outside_tasks_limits__refused(loop_suite, which, bad):
    programs = [list(p[:7]) for p in loop_suite.programs]
    g = programs[which]
    if bad == "nodes":
        g[1] = 2**32 - 1
    elif bad == "steps":
        g[3] = 0
    elif bad == "slots":
        g[2] = 513
    else:
        g[5] = g[2]
    reason = "loop: program slots past its slot table" if bad == "out" else "loop: program outside Tasks.vy's limits"
    with boa.reverts(reason):
        loop_suite.loop_deployer.deploy(loop_suite.token, loop_suite.asset, loop_suite.pool, loop_suite.tasks, loop_suite.vault, TERMS.as_tuple(), programs)


def test_average_price_of_zero__refused(deployer, loop_suite):
    """A pool whose average rounds to 0 (token1 worth less than 10^-18 of token0) would make every
    sale's limit 0: the loop refuses to read it."""
    token, asset = (boa.load_partial(str(CONTRACTS / "Token.vy")).deploy(sender=deployer) for _ in range(2))
    pool = boa.load_partial(str(CONTRACTS / "Pool.vy")).deploy(token, asset, sender=deployer)
    keeper = loop_suite.p.keeper
    for t in (token, asset):
        t.mint(keeper, 10**40, sender=deployer)
        t.approve(pool, MAX_UINT, sender=keeper)
    pool.add_liquidity(10**4, 10**30, 0, keeper, sender=keeper)
    game = boa.load_partial(str(CONTRACTS / "mocks" / "MockGame.vy")).deploy()
    tasks = boa.load_partial(str(CONTRACTS / "Tasks.vy")).deploy(token, game, boa.load_partial(str(CONTRACTS / "Availability.vy")).deploy())
    vault = boa.load_partial(str(CONTRACTS / "Vault.vy")).deploy(token, sender=deployer)
    loop = loop_suite.loop_deployer.deploy(token, asset, pool, tasks, vault, TERMS.as_tuple(), [p[:7] for p in loop_suite.programs])
    vault.set_manager(loop, sender=deployer)
    token.approve(vault, MAX_UINT, sender=keeper)
    vault.deposit(10**6 * E18, sender=keeper)
    pid = loop.open_period(sender=keeper)
    boa.env.time_travel(seconds=loop.periods(pid).trade_at - boa.env.evm.patch.timestamp)
    assert pool.twap(TERMS.average)[0] == 0
    with boa.reverts("loop: the pool's average price is 0"):
        loop.trade(pid, sender=keeper)


def test_token_call_failed__reverts(deployer, loop_suite):
    """A token that reports failure by returning False stops the vault's and the loop's pulls,
    pushes and approvals: nothing is recorded as moved that did not move."""
    token = boa.load_partial(str(CONTRACTS / "mocks" / "FalseToken.vy")).deploy()
    asset = boa.load_partial(str(CONTRACTS / "Token.vy")).deploy(sender=deployer)
    pool = boa.load_partial(str(CONTRACTS / "Pool.vy")).deploy(token, asset, sender=deployer)
    game = boa.load_partial(str(CONTRACTS / "mocks" / "MockGame.vy")).deploy()
    tasks = boa.load_partial(str(CONTRACTS / "Tasks.vy")).deploy(token, game, boa.load_partial(str(CONTRACTS / "Availability.vy")).deploy())
    vault = boa.load_partial(str(CONTRACTS / "Vault.vy")).deploy(token, sender=deployer)
    loop = loop_suite.loop_deployer.deploy(token, asset, pool, tasks, vault, TERMS.as_tuple(), [p[:7] for p in loop_suite.programs])
    vault.set_manager(loop, sender=deployer)
    a = loop_suite.p.keeper
    token.mint(a, 10**30)
    for spender in (vault, loop):
        token.approve(spender, MAX_UINT, sender=a)
    vault.deposit(10**6 * E18, sender=a)
    mid = loop.register(sender=a)
    loop.add_stake(mid, STAKE, sender=a)
    token.set_failing(True)
    with boa.reverts("vault: token call failed"):
        vault.deposit(1, sender=a)
    with boa.reverts("vault: token call failed"):
        vault.cancel(sender=a)
    with boa.reverts("loop: token call failed"):
        loop.add_stake(mid, 1, sender=a)
    with boa.reverts("loop: token call failed"):
        loop.withdraw_stake(mid, 1, sender=a)
    token.set_failing(False)
    pid = loop.open_period(sender=a)
    loop.commit(pid, mid, rules.prediction_commitment(pid, mid, 5, word("s")), STAKE, sender=a)
    per = loop.periods(pid)
    boa.env.time_travel(seconds=per.commit_deadline - boa.env.evm.patch.timestamp)
    loop.reveal(pid, mid, rules.prediction_byte(5), word("s"), sender=a)
    boa.env.time_travel(seconds=per.reveal_deadline - boa.env.evm.patch.timestamp)
    token.set_failing(True)
    with boa.reverts("loop: token call failed"):  # the approve of the task's reward
        loop.post_task(pid, METAMODEL, loop_suite.programs[METAMODEL][7], sender=a)
    assert token.balanceOf(loop) == loop.owed() and token.balanceOf(vault) == vault.owed()


def test_end__a_commitment_never_revealed_forfeits_min_stake(w, opened):
    """Taking a slot is not free: a model that commits and never reveals loses min_stake, burned,
    whatever else happens in the period (here: the others are scored and paid)."""
    pid, (m0, m1, m2) = opened.pid, opened.mids
    for mid, pred in zip((m0, m1, m2), (15, 5, -10), strict=True):
        w.commit(pid, mid, pred)
    sch = w.schedule(pid)
    boa.env.time_travel(seconds=sch.commit_deadline - w.now())
    w.reveal(pid, m0)
    w.reveal(pid, m1)
    boa.env.time_travel(seconds=sch.reveal_deadline - w.now())
    w.finish(pid, METAMODEL, [metamodel_of((15, 5, 0), (STAKE, STAKE, 0))])
    w.travel_to(sch.trade_at)
    w.loop.trade(pid, sender=w.p.stranger)
    w.move_price(400)
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)
    scores = own_scores((15, 5, 0), 1)
    w.finish(pid, SCORES, scores)
    per = w.loop.periods(pid)
    expected = rules.settlement([STAKE] * M, [True, True, False], scores, TERMS, per.pool, per.budget)
    burned, supply = w.loop.burned(), w.token.totalSupply()
    w.loop.settle(pid, sender=w.p.stranger)
    assert w.loop.models(m2).stake == STAKE - TERMS.min_stake == STAKE + expected.model_payouts[2]
    assert w.loop.models(m2).reserved == 0
    assert w.loop.burned() - burned == expected.burned == supply - w.token.totalSupply() >= TERMS.min_stake
    w.assert_solvent()


def test_end__unscored_and_void_periods_also_take_the_forfeit(w, opened):
    pid, (m0, m1, _) = opened.pid, opened.mids
    w.commit(pid, m0, 10)
    w.commit(pid, m1, 10)
    sch = w.schedule(pid)
    boa.env.time_travel(seconds=sch.commit_deadline - w.now())
    w.reveal(pid, m0)
    w.travel_to(sch.end)
    w.loop.close(pid, sender=w.p.stranger)  # no entry read: unscored
    assert w.loop.periods(pid).state == PERIOD_SETTLED
    assert (w.loop.models(m0).stake, w.loop.models(m1).stake) == (STAKE, STAKE - TERMS.min_stake)
    w.assert_solvent()


def test_turn__depositors_leave_a_vault_too_small_to_open_a_period(w):
    """A vault that cannot pay a period's pool and tasks still takes in its requests between
    periods, so its depositors can always leave."""
    d0 = w.p.depositors[0]
    w.vault.deposit(TERMS.reward, sender=d0)  # below two rewards: no period can open
    with boa.reverts("loop: the vault cannot pay the period's pool and tasks"):
        w.loop.open_period(sender=w.p.stranger)
    w.loop.turn(sender=w.p.stranger)
    w.vault.claim(d0, sender=d0)
    bal = w.token.balanceOf(d0)
    w.vault.withdraw(w.vault.shares(d0), sender=d0)
    w.loop.turn(sender=w.p.stranger)
    w.vault.claim(d0, sender=d0)
    assert TERMS.reward - 1 <= w.token.balanceOf(d0) - bal <= TERMS.reward and w.vault.total_shares() == 0
    w.assert_solvent()


def test_turn__not_while_a_period_is_open(w, opened):
    with boa.reverts("loop: a period is open"):
        w.loop.turn(sender=w.p.stranger)


def test_close__a_push_held_one_block_does_not_flip_the_label(w, opened):
    """Oracle manipulation: an attacker who crashes the asset's spot price 10-fold for the one
    block before the exit moves the exit's hour-long average by at most 12/3600 of the push
    (SPEC 11.4), far less than the period's 4% move, so the label stands; and the sale at the
    pushed price is refused, so the vault does not sell into the push."""
    pid = opened.pid
    sch = traded(w, opened, 50)
    w.move_price(400)
    w.travel_to(sch.end - 12)
    r1 = w.pool.reserve1()
    w.pool.swap(w.asset, 3 * r1, 0, w.p.keeper, sender=w.p.keeper)  # the asset's price falls ~16-fold
    assert w.pool.spot() * 10 < w.loop.periods(pid).entry_price
    boa.env.time_travel(seconds=12)
    w.loop.close(pid, sender=w.p.stranger)
    per = w.loop.periods(pid)
    assert per.label == 1
    assert per.exit_price > per.entry_price
    assert per.position > 0  # refused at the pushed price: left to unwind
