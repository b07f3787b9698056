"""The market outside the chain (docs/SPEC.md 11.3): the synthetic reference series has the weak,
known signal it documents and is the same on every run; the arbitrageur's trade never passes its
target and stops one unit short of it; on the in-process chain the arbitrageur drives the real
Pool.vy along a series, and the pool's average price follows it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.court.chain import Chain
from verifier.market.exchange import (
    E18,
    MAX_RESERVE,
    PHI_DEN,
    PHI_NUM,
    Arbitrageur,
    returns_bps,
    spot,
    swap_out,
    synthetic_series,
    trade_to_price,
)


def test_series__deterministic_integers_with_the_documented_signal() -> None:
    a, b = synthetic_series(5_000, seed=3), synthetic_series(5_000, seed=3)
    assert a == b and all(isinstance(p, int) and p > 0 for p in a)
    assert synthetic_series(50, seed=4) != a[:51]
    r = np.array(returns_bps(a), dtype=float)
    lag1 = np.corrcoef(r[:-1], r[1:])[0, 1]
    assert abs(lag1 - PHI_NUM / PHI_DEN) < 0.05  # a weak signal, and the one documented
    # three uniforms in -100..100 (each 100 / sqrt(3) bps), and the AR(1) factor 1 / sqrt(1 - 0.2^2)
    assert 95 < r.std() < 110


@settings(max_examples=200, deadline=None)
@given(
    r0=st.integers(10**6, 10**30), r1=st.integers(10**6, 10**30), move_bps=st.integers(-9_000, 90_000),
)
def test_trade_to_price__closest_without_passing(r0, r1, move_bps) -> None:
    price = spot(r0, r1)
    target = price * (10_000 + move_bps) // 10_000
    trade = trade_to_price(r0, r1, target)
    if trade is None:
        return
    sell0, amount = trade
    assert sell0 == (price < target)

    def after(n: int) -> int:
        if sell0:
            return spot(r0 + n, r1 - swap_out(n, r0, r1))
        return spot(r0 - swap_out(n, r1, r0), r1 + n)

    p = after(amount)
    if sell0:
        assert price <= p <= target
    else:
        assert target <= p <= price
    limit = MAX_RESERVE - (r0 if sell0 else r1)
    if amount < limit:  # one unit more passes the target (at the limit, nothing the pool takes would)
        assert after(amount + 1) > target if sell0 else after(amount + 1) < target


def test_trade_to_price__unreachable_target__the_largest_trade_the_pool_takes() -> None:
    """A target of 0 (a price below one unit moved down by any fraction) is never passed: the
    search stops at the largest trade Pool.swap accepts instead of doubling forever."""
    r0, r1 = 131_174_203_045, 10**29  # spot price 1 unit
    assert spot(r0, r1) == 1
    assert trade_to_price(r0, r1, 0) == (False, MAX_RESERVE - r1)
    assert trade_to_price(10**18, 10**18, 10**60) == (True, MAX_RESERVE - 10**18)


def _funded_pool(price: int):  # noqa: ANN202
    """The real Pool on the in-process chain at `price`, and an arbitrageur holding both tokens:
    (chain, pool, token0, token1, arbitrageur)."""
    chain = Chain.embedded()
    t0, t1 = chain.deploy("Token"), chain.deploy("Token")
    pool = chain.deploy("Pool", t0.address, t1.address)
    for token in (t0, t1):
        chain.send(token.functions.mint(chain.account, 10**12 * E18))
    arb = Arbitrageur(chain, pool, t0, t1)
    arb.approve()
    chain.send(pool.functions.add_liquidity(price * 10**6 // E18 * 10**3, 10**9 * E18 // 10**3, 0, chain.account))
    return chain, pool, t0, t1, arb


def test_arbitrageur__drives_the_pool_along_the_series_and_its_average_follows() -> None:
    series = synthetic_series(30, seed=11)
    chain, pool, _, _, arb = _funded_pool(series[0])
    period, exact = 600, 0
    for price in series[1:]:
        moved = arb.move_to(price)
        assert abs(moved - price) <= price * 61 // 10_000  # within the fee band
        chain.w3.testing.timeTravel(chain.w3.eth.get_block("latest")["timestamp"] + period)
        chain.w3.testing.mine()
        average, window = pool.functions.twap(period).call()
        assert window >= period
        if window == period:  # an observation exactly at the trade: the period's price
            assert abs(average - moved) <= moved // 1_000
            exact += 1
    assert exact >= 25  # the trade's block records the observation the next average starts from


def poke(chain, pool, token) -> None:  # noqa: ANN001
    """A dust trade: the block's first call advances the accumulator and records an observation."""
    chain.send(pool.functions.swap(token.address, 10**9, 0, chain.account))


def _pool_along(series: list[int], period: int, during=None):  # noqa: ANN001, ANN202
    """The real Pool on the in-process chain, moved to each price of `series` at the start of
    each period (one block a trade, `period` seconds apart): (chain, pool, tokens, arbitrageur,
    start, the spot price after each move)."""
    chain, pool, t0, t1, arb = _funded_pool(series[0])
    start = chain.w3.eth.get_block("latest")["timestamp"] + period
    moved = []
    for p, price in enumerate(series[1:]):
        chain.w3.testing.timeTravel(start + p * period)
        arb.move_to(price)
        poke(chain, pool, t0)  # an observation at the period's start, whether or not it traded
        moved.append(int(pool.functions.spot().call()))
        if during is not None:
            during(p, chain, pool, (t0, t1), start + p * period)
    chain.w3.testing.timeTravel(start + len(moved) * period)
    poke(chain, pool, t0)  # the last period's closing observation
    return chain, pool, (t0, t1), arb, start, moved


def test_period_returns__read_from_the_pools_observations_are_the_prices_returns() -> None:
    """Each period's average is the price its opening trade set (the accumulator adds the price
    that held from each block on), so the realized returns the oracle gives are the returns of
    the moved prices, to within the average's rounding; a period before the oldest observation
    is one clear error."""
    from verifier.market.exchange import OracleError, PoolOracle

    period = 600
    series = synthetic_series(12, seed=5)
    chain, pool, _, _, start, moved = _pool_along(series, period)
    oracle = PoolOracle(pool)
    got = oracle.period_returns(start, period, len(moved) - 1)
    want = returns_bps(moved)
    assert len(got) == len(want) == 11
    assert all(abs(g - w) <= 1 for g, w in zip(got, want)), (got, want)
    assert got == PoolOracle(pool).period_returns(start, period, len(moved) - 1)  # any reader, the same
    try:
        oracle.period_returns(start - 10 * period, period, 2)
    except OracleError as e:
        assert "\n" not in str(e) and "oldest kept" in str(e)
    else:
        raise AssertionError("a period before the oldest observation was answered")


def test_period_returns__a_push_held_one_block_moves_a_return_within_the_stated_bound() -> None:
    """An attacker pushes the price about 100-fold in the middle of a period, holds it for one
    12-second block, and trades back: that period's realized return and the next one's move by
    no more than return_shift_bound (SPEC 11.4), and by a visible amount (the bound is not
    vacuous)."""
    from verifier.market.exchange import PoolOracle, return_shift_bound

    period = 3_600
    series = synthetic_series(4, seed=8)
    _, pool, _, _, start, _ = _pool_along(series, period)
    honest = PoolOracle(pool).period_returns(start, period, 3)
    seen = {}

    def push(p, chain, pool, tokens, opened) -> None:  # noqa: ANN001
        """In period 2, half an hour in: buy the asset ~100-fold up, hold a block, sell it back."""
        if p != 2:
            return
        f, (u0, u1) = pool.functions, tokens
        chain.w3.testing.timeTravel(opened + 1_800)
        seen["fair"] = int(f.spot().call())
        before = int(u1.functions.balanceOf(chain.account).call())
        chain.send(f.swap(u0.address, 9 * 10**6 * E18, 0, chain.account))
        seen["pushed"] = int(f.spot().call())
        chain.w3.testing.timeTravel(opened + 1_812)
        chain.send(f.swap(u1.address, int(u1.functions.balanceOf(chain.account).call()) - before, 0, chain.account))

    _, pool2, _, _, start2, _ = _pool_along(series, period, push)
    fair, pushed = seen["fair"], seen["pushed"]
    attacked = PoolOracle(pool2).period_returns(start2, period, 3)
    assert pushed > 90 * fair
    for p in (1, 2):  # period 2 is the later of return 1 and the earlier of return 2
        shift = abs(attacked[p] - honest[p])
        assert shift <= return_shift_bound(pushed, fair, 12, period, max(honest[p], attacked[p])), (p, shift)
    assert abs(attacked[1] - honest[1]) > return_shift_bound(pushed, fair, 12, period, honest[1]) // 4
    assert attacked[0] == honest[0]  # periods before the push are untouched
