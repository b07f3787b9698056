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
        assert price <= p <= target and after(amount + 1) > target
    else:
        assert target <= p <= price and after(amount + 1) < target


def test_arbitrageur__drives_the_pool_along_the_series_and_its_average_follows() -> None:
    chain = Chain.embedded()
    t0, t1 = chain.deploy("Token"), chain.deploy("Token")
    pool = chain.deploy("Pool", t0.address, t1.address)
    for token in (t0, t1):
        chain.send(token.functions.mint(chain.account, 10**12 * E18))
    arb = Arbitrageur(chain, pool, t0, t1)
    arb.approve()
    series = synthetic_series(30, seed=11)
    chain.send(pool.functions.add_liquidity(series[0] * 10**6 // E18 * 10**3, 10**9 * E18 // 10**3, 0, chain.account))
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
