"""The market outside the chain that moves contracts/Pool.vy as a real market would (docs/SPEC.md
11.3): a reference price series and an arbitrageur that trades the pool toward it.

The series is a documented synthetic process with a known, weak predictive signal: each
period's return, in basis points, is `PHI` times the previous one (rounded toward zero) plus
integer noise, so the previous period's return (which anyone computes from the pool's average
prices on-chain) predicts the next one a little. Everything is integer arithmetic from a seeded
generator, so a series is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from verifier.core.errors import BisectmlError

E18 = 10**18
BPS = 10_000
FEE_BPS = 30  # Pool.vy's FEE_BPS
MAX_RESERVE = 2**112 - 1  # Pool.vy's MAX_RESERVE
# the weak signal: next return = PHI_NUM / PHI_DEN of the last one, plus noise
PHI_NUM, PHI_DEN = 1, 5


def swap_out(amount_in: int, r_in: int, r_out: int) -> int:
    """Pool.swap's output, the same integers."""
    with_fee = amount_in * (BPS - FEE_BPS)
    return with_fee * r_out // (r_in * BPS + with_fee)


def spot(r0: int, r1: int) -> int:
    """Pool.spot: the price of token1 in token0, 18 decimals."""
    return r0 * E18 // r1


def trade_to_price(r0: int, r1: int, target: int) -> tuple[bool, int] | None:
    """The trade (sells token0?, amount in) that brings the pool's spot price as close to `target`
    (token0 per token1, 18 decimals) as a trade can without passing it; None when the price is
    already there or no trade of at least one unit moves it toward the target. A target no trade
    the pool accepts can reach (0, or beyond what a reserve below 2^112 allows) gets the largest
    trade the pool accepts, so the search always ends."""
    price = spot(r0, r1)
    if price == target:
        return None
    sell0 = price < target  # token1 is too cheap: buy it with token0
    r_in, r_out = (r0, r1) if sell0 else (r1, r0)

    def after(amount: int) -> int:
        out = swap_out(amount, r_in, r_out)
        return spot(r0 + amount, r1 - out) if sell0 else spot(r0 - out, r1 + amount)

    def short_of_target(amount: int) -> bool:
        p = after(amount)
        return p <= target if sell0 else p >= target

    limit = MAX_RESERVE - r_in  # Pool.swap takes no more: a reserve stays below 2^112
    if limit < 1 or not short_of_target(1):
        return None
    if short_of_target(limit):  # no trade the pool takes gets there (a target of 0, say)
        return sell0, limit
    lo, hi = 1, 1
    while short_of_target(hi):  # the price moves monotonically with the amount; bounded by limit
        lo, hi = hi, min(hi * 2, limit)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if short_of_target(mid) else (lo, mid)
    return sell0, lo


def synthetic_series(periods: int, seed: int, start: int = 4 * E18, noise_bps: int = 100) -> list[int]:
    """`periods + 1` prices (token0 per token1, 18 decimals) from `start`: each period's return in
    basis points is PHI times the last one (toward zero) plus a sum of three uniform integers in
    -noise..noise (bell-shaped, with a standard deviation of about noise_bps), never below -50%."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-noise_bps, noise_bps + 1, size=(periods, 3)).sum(axis=1)
    prices, last = [start], 0
    for eps in noise.tolist():
        r = max(-5_000, _toward_zero(PHI_NUM * last, PHI_DEN) + eps)
        prices.append(prices[-1] * (BPS + r) // BPS)
        last = r
    return prices


def returns_bps(prices: list[int]) -> list[int]:
    """Each period's return in basis points, rounded toward zero (the feature a round publishes)."""
    return [_toward_zero((b - a) * BPS, a) for a, b in zip(prices, prices[1:])]


def _toward_zero(x: int, d: int) -> int:
    """x / d for d > 0, rounded toward zero, in integers."""
    return x // d if x >= 0 else -(-x // d)


@dataclass
class Arbitrageur:
    """Trades a deployed Pool (a web3 contract, through a verifier.court.chain.Chain that signs)
    toward each price of a series. It needs both tokens and an allowance for the pool."""

    chain: Any
    pool: Any
    token0: Any
    token1: Any

    def approve(self) -> None:
        for token in (self.token0, self.token1):
            self.chain.send(token.functions.approve(self.pool.address, 2**256 - 1), "approve the pool")

    def move_to(self, target: int) -> int:
        """One trade toward `target`; the pool's spot price after it."""
        f = self.pool.functions
        r0, r1 = f.reserve0().call(), f.reserve1().call()
        trade = trade_to_price(r0, r1, target)
        if trade is not None:
            sell0, amount = trade
            token = self.token0 if sell0 else self.token1
            self.chain.send(f.swap(token.address, amount, 0, self.chain.account), "arbitrage")
        return int(f.spot().call())


# -- the realized return of a period, from the pool's own oracle (SPEC 11.4) -----------------------

OBSERVATIONS = 2_048  # Pool.vy's ring


class OracleError(BisectmlError, ValueError):
    """The pool's observations do not cover the time asked for."""


def observation_at(get: Callable[[int], tuple[int, int]], count: int, t: int) -> tuple[int, int]:
    """The newest observation `(timestamp, cumulative)` with timestamp <= t, `get(i)` the i-th
    oldest of `count`: Pool.vy's own rule (`_observation_before`), by bisection."""
    if count == 0:
        raise OracleError("the pool has no observations yet; nobody has traded or added liquidity.")
    if get(0)[0] > t:
        raise OracleError(
            f"no observation at or before {t}: the oldest kept is at {get(0)[0]}; ask for a later time."
        )
    lo, hi = 0, count - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if get(mid)[0] <= t else (lo, mid - 1)
    return get(lo)


def average(get: Callable[[int], tuple[int, int]], count: int, a: int, b: int) -> tuple[int, int]:
    """The pool's average price (Q112) from the observation at `a` to the one at `b`, and the
    seconds it covers: `(c_b - c_a) mod 2^256 // (t_b - t_a)`."""
    ta, ca = observation_at(get, count, a)
    tb, cb = observation_at(get, count, b)
    if tb <= ta:
        raise OracleError(f"no observation between {a} and {b}: nobody traded in that period; the average is undefined.")
    return ((cb - ca) % 2**256) // (tb - ta), tb - ta


class PoolOracle:
    """A deployed Pool's observations as the client reads them (web3 contract), snapshotted at
    construction; each observation is read once, when the bisection needs it."""

    def __init__(self, pool: Any) -> None:
        f = pool.functions
        self._f = f
        self.count = int(f.observation_count().call())
        newest = int(f.observation_index().call())
        self._oldest = (newest + OBSERVATIONS + 1 - self.count) % OBSERVATIONS
        self._cache: dict[int, tuple[int, int]] = {}

    def get(self, i: int) -> tuple[int, int]:
        if i not in self._cache:
            t, c = self._f.observations((self._oldest + i) % OBSERVATIONS).call()
            self._cache[i] = (int(t), int(c))
        return self._cache[i]

    def period_returns(self, start: int, period: int, n: int) -> list[int]:
        """The realized returns (basis points, toward zero) of periods 1..n: period p's average
        against period p-1's, each period `[start + p * period, start + (p + 1) * period]`."""
        means = [average(self.get, self.count, start + p * period, start + (p + 1) * period)[0] for p in range(n + 1)]
        return [_toward_zero((b - a) * BPS, a) for a, b in zip(means, means[1:])]


def return_shift_bound(pushed: int, fair: int, held: int, covered: int, realized_bps: int) -> int:
    """How far (basis points) a price pushed from `fair` to `pushed` and held `held` seconds can
    move a realized return of `realized_bps` whose period's average covers `covered` seconds:
    the average moves by at most eps = (pushed / fair - 1) * held / covered of itself, and the
    return by eps * (1 + R) either way (SPEC 11.4); rounded up, plus the one unit of rounding."""
    num = abs(pushed - fair) * held * (BPS + realized_bps)
    return -(-num // (fair * covered)) + 1


__all__ = [
    "Arbitrageur",
    "OracleError",
    "PoolOracle",
    "average",
    "observation_at",
    "return_shift_bound",
    "returns_bps",
    "spot",
    "swap_out",
    "synthetic_series",
    "trade_to_price",
]
