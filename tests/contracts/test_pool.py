"""contracts/Pool.vy: a constant-product pool between the bond token and an asset, with a
time-weighted average price kept by the pool (docs/SPEC.md section 11).

Against a Python model of the same integer rules: every trade's output, every deposit's
shares and amounts, every withdrawal, and the average over any window. Properties guarded:
the pool holds exactly its reserves; k never falls on a trade and a share's value never falls
except by its own withdrawal; nobody takes more than their deposit's share; no trade moves the
average within its own block; a price held for t seconds of a window of W moves the average by
at most t / W of the move; a token that delivers less than asked is refused.
"""

from __future__ import annotations

from math import isqrt

import boa
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.contracts.conftest import load_partial

E18 = 10**18
FEE_BPS, MIN_SHARES, SPACING, RING = 30, 1_000, 60, 2_048
Q112 = 2**112
MAX_RESERVE = 2**112 - 1


def swap_out(amount_in: int, r_in: int, r_out: int) -> int:
    with_fee = amount_in * (10_000 - FEE_BPS)
    return with_fee * r_out // (r_in * 10_000 + with_fee)


def ceil_div(x: int, y: int) -> int:
    return -(-x // y)


@pytest.fixture(scope="module")
def tokens(deployer):
    with boa.env.prank(deployer):
        return load_partial("Token.vy").deploy(), load_partial("Token.vy").deploy()


@pytest.fixture(scope="module")
def people(tokens, deployer):
    names = ("lp", "trader", "attacker", "arb", "late")
    who = {n: boa.env.generate_address(f"pool {n}") for n in names}
    for token in tokens:
        for a in who.values():
            with boa.env.prank(deployer):
                token.mint(a, 10**12 * E18)
    return who


@pytest.fixture
def pool(tokens, people, deployer):
    with boa.env.prank(deployer):
        p = load_partial("Pool.vy").deploy(*tokens)
    for token in tokens:
        for a in people.values():
            token.approve(p, 2**256 - 1, sender=a)
    return p


def fund(pool, who, a0=1_000_000 * E18, a1=250_000 * E18) -> int:
    return pool.add_liquidity(a0, a1, 0, who, sender=who)


# --- construction and deposits ----------------------------------------------------------------


def test_init__refuses_zero_and_equal_tokens(tokens) -> None:
    deployer = load_partial("Pool.vy")
    with boa.reverts("pool: token is the zero address"):
        deployer.deploy(tokens[0], "0x" + "00" * 20)
    with boa.reverts("pool: token is the zero address"):
        deployer.deploy("0x" + "00" * 20, tokens[1])
    with boa.reverts("pool: tokens are the same"):
        deployer.deploy(tokens[0], tokens[0])


def test_deployer_holds_no_minting_right(pool, deployer) -> None:
    assert not hasattr(pool, "mint") and not hasattr(pool, "set_minter")
    assert pool.totalSupply() == 0


def test_first_deposit__sets_the_price_and_locks_minimum_shares(pool, tokens, people) -> None:
    lp = people["lp"]
    a0, a1 = 4_000 * E18, 1_000 * E18
    shares = pool.add_liquidity(a0, a1, 0, lp, sender=lp)
    assert shares == isqrt(a0 * a1) - MIN_SHARES
    assert pool.balanceOf(pool.address) == MIN_SHARES and pool.totalSupply() == shares + MIN_SHARES
    assert (pool.reserve0(), pool.reserve1()) == (a0, a1)
    assert tokens[0].balanceOf(pool) == a0 and tokens[1].balanceOf(pool) == a1
    assert pool.spot() == 4 * E18


def test_first_deposit__too_small__reverts(pool, people) -> None:
    with boa.reverts("pool: first deposit too small"):
        pool.add_liquidity(1_000, 1_000, 0, people["lp"], sender=people["lp"])
    with boa.reverts("pool: reserve too large"):
        pool.add_liquidity(MAX_RESERVE + 1, 1, 0, people["lp"], sender=people["lp"])


def test_later_deposit__takes_the_ratio_rounded_up_and_mints_proportionally(pool, tokens, people) -> None:
    fund(pool, people["lp"], 3_000 * E18 + 7, 1_000 * E18)
    r0, r1, supply = pool.reserve0(), pool.reserve1(), pool.totalSupply()
    late = people["late"]
    before = (tokens[0].balanceOf(late), tokens[1].balanceOf(late))
    # asks to put in far too much token1: only the ratio's worth is taken
    shares = pool.add_liquidity(300 * E18, 10**6 * E18, 0, late, sender=late)
    a1 = ceil_div(300 * E18 * r1, r0)
    assert (before[0] - tokens[0].balanceOf(late), before[1] - tokens[1].balanceOf(late)) == (300 * E18, a1)
    assert shares == min(300 * E18 * supply // r0, a1 * supply // r1)
    # and the other way round
    r0, r1, supply = pool.reserve0(), pool.reserve1(), pool.totalSupply()
    shares2 = pool.add_liquidity(10**9 * E18, 5 * E18, 0, late, sender=late)
    a0 = ceil_div(5 * E18 * r0, r1)
    assert shares2 == min(a0 * supply // r0, 5 * E18 * supply // r1)
    assert (pool.reserve0(), pool.reserve1()) == (r0 + a0, r1 + 5 * E18)


def test_deposit__beyond_the_largest_reserve__reverts(pool, tokens, people, deployer) -> None:
    """Reserves stay below 2^112, on the first deposit and every later one, so prices in Q112
    and their sums over time cannot overflow."""
    lp = people["lp"]
    for token in tokens:
        with boa.env.prank(deployer):
            token.mint(lp, 2**113)
    pool.add_liquidity(MAX_RESERVE - 10, MAX_RESERVE - 10, 0, lp, sender=lp)
    with boa.reverts("pool: reserve too large"):
        pool.add_liquidity(100, 100, 0, lp, sender=lp)
    pool.add_liquidity(10, 10, 0, lp, sender=lp)  # up to the limit itself
    assert pool.reserve0() == MAX_RESERVE


def test_empty_pool__has_no_price_and_no_average(pool) -> None:
    with boa.reverts("pool: no liquidity"):
        pool.spot()
    with boa.reverts("pool: no observations"):
        pool.twap(1)


def test_deposit__slippage_and_dust__revert(pool, people) -> None:
    fund(pool, people["lp"])
    late = people["late"]
    with boa.reverts("pool: slippage"):
        pool.add_liquidity(E18, E18, 10**30, late, sender=late)
    with boa.reverts("pool: no shares"):
        pool.add_liquidity(1, 0, 0, late, sender=late)


def test_remove__pays_the_share_rounded_down_and_refuses_more(pool, tokens, people) -> None:
    lp = people["lp"]
    shares = fund(pool, lp)
    r0, r1, supply = pool.reserve0(), pool.reserve1(), pool.totalSupply()
    part = shares // 3
    got = pool.remove_liquidity(part, 0, 0, lp, sender=lp)
    assert got == (part * r0 // supply, part * r1 // supply)
    assert pool.balanceOf(lp) == shares - part
    with boa.reverts("pool: slippage"):
        pool.remove_liquidity(part, 10**40, 0, lp, sender=lp)
    with boa.reverts("pool: no shares"):
        pool.remove_liquidity(0, 0, 0, lp, sender=lp)
    with boa.reverts("erc20: burn amount exceeds balance"):
        pool.remove_liquidity(shares, 0, 0, lp, sender=lp)
    pool.remove_liquidity(shares - part, 0, 0, lp, sender=lp)
    # the locked shares keep the reserves, and so the price, alive
    assert pool.totalSupply() == MIN_SHARES and pool.reserve0() > 0 and pool.reserve1() > 0
    assert tokens[0].balanceOf(pool) == pool.reserve0()


# --- trades -------------------------------------------------------------------------------------


def test_swap__both_ways_match_the_formula_and_k_grows(pool, tokens, people) -> None:
    fund(pool, people["lp"])
    t = people["trader"]
    for token_in, amount in ((tokens[0], 12_345 * E18), (tokens[1], 777 * E18 + 3), (tokens[0], 1)):
        r0, r1 = pool.reserve0(), pool.reserve1()
        zero = token_in.address == tokens[0].address
        want = swap_out(amount, r0, r1) if zero else swap_out(amount, r1, r0)
        if want == 0:
            with boa.reverts("pool: nothing out"):
                pool.swap(token_in, amount, 0, t, sender=t)
            continue
        out = pool.swap(token_in, amount, want, t, sender=t)
        assert out == want
        n0, n1 = (r0 + amount, r1 - out) if zero else (r0 - out, r1 + amount)
        assert (pool.reserve0(), pool.reserve1()) == (n0, n1)
        assert n0 * n1 > r0 * r1  # the fee stays in the pool
        assert (tokens[0].balanceOf(pool), tokens[1].balanceOf(pool)) == (n0, n1)


def test_swap__refusals(pool, tokens, people) -> None:
    t = people["trader"]
    with boa.reverts("pool: no liquidity"):
        pool.swap(tokens[0], E18, 0, t, sender=t)
    fund(pool, people["lp"])
    with boa.reverts("pool: nothing in"):
        pool.swap(tokens[0], 0, 0, t, sender=t)
    with boa.reverts("pool: not a token of the pool"):
        pool.swap(pool.address, E18, 0, t, sender=t)
    want = swap_out(E18, pool.reserve0(), pool.reserve1())
    with boa.reverts("pool: slippage"):
        pool.swap(tokens[0], E18, want + 1, t, sender=t)
    with boa.reverts("pool: reserve too large"):
        pool.swap(tokens[1], MAX_RESERVE, 0, t, sender=t)


def test_donations__move_neither_the_price_nor_the_average(pool, tokens, people) -> None:
    fund(pool, people["lp"])
    boa.env.time_travel(seconds=3_600)
    pool.swap(tokens[0], E18, 0, people["trader"], sender=people["trader"])
    spot, avg = pool.spot(), pool.twap(1_800)
    tokens[1].transfer(pool, 10**9 * E18, sender=people["attacker"])  # sent, not traded
    assert (pool.spot(), pool.twap(1_800)) == (spot, avg)
    assert tokens[1].balanceOf(pool) == pool.reserve1() + 10**9 * E18


def test_tokens_that_deliver_less_or_fail__are_refused(tokens, people, deployer) -> None:
    odd = load_partial("mocks/FalseToken.vy").deploy()
    with boa.env.prank(deployer):
        p = load_partial("Pool.vy").deploy(tokens[0], odd)
    lp = people["lp"]
    odd.mint(lp, 10**30)
    odd.approve(p, 2**256 - 1, sender=lp)
    tokens[0].approve(p, 2**256 - 1, sender=lp)
    odd.set_fee(1)
    with boa.reverts("pool: token delivered another amount"):
        p.add_liquidity(10**24, 10**24, 0, lp, sender=lp)
    odd.set_fee(0)
    p.add_liquidity(10**24, 10**24, 0, lp, sender=lp)
    odd.set_failing(True)
    with boa.reverts("pool: transfer failed"):
        p.swap(odd, 10**20, 0, lp, sender=lp)
    with boa.reverts("pool: transfer failed"):
        p.swap(tokens[0], 10**20, 0, lp, sender=lp)  # the payout in the failing token


# --- the average price --------------------------------------------------------------------------


def test_twap__equals_the_model_over_any_window(pool, tokens, people) -> None:
    """Trades at uneven times; the average over every window, from the model's observations
    and price segments (the price that held at the start of each block)."""
    fund(pool, people["lp"])
    start = boa.env.timestamp
    segments = []  # (from, to, Q112 price): the price held from..to
    observed = [start]  # observation times: the first call of a block >= 60 s after the last
    last, price = start, pool.reserve0() * Q112 // pool.reserve1()
    t = people["trader"]
    for i, gap in enumerate([13, 50, 7, 120, 61, 1, 400, 59, 2, 900, 30, 60]):
        boa.env.time_travel(seconds=gap)
        now = boa.env.timestamp
        segments.append((last, now, price))
        if now >= observed[-1] + SPACING:
            observed.append(now)
        token = tokens[i % 2]
        pool.swap(token, (i + 1) * 997 * E18, 0, t, sender=t)
        pool.swap(token, 3 * E18, 0, t, sender=t)  # a second trade in the same block
        last, price = now, pool.reserve0() * Q112 // pool.reserve1()
    boa.env.time_travel(seconds=45)
    now = boa.env.timestamp
    segments.append((last, now, price))

    def cumulative(at: int) -> int:
        return sum(p * (min(b, at) - a) for a, b, p in segments if a < at)

    for window in (1, 30, 61, 200, 600, 1_000, 1_500, now - start):
        then = max(o for o in observed if o <= now - window)
        mean = (cumulative(now) - cumulative(then)) // (now - then)
        assert pool.twap(window) == (mean * E18 // Q112, now - then), window
    with boa.reverts("pool: oracle too young"):
        pool.twap(now - start + 1)
    with boa.reverts("pool: empty window"):
        pool.twap(0)
    with boa.reverts("pool: window before time"):
        pool.twap(now + 1)


def test_twap__no_trade_moves_it_in_its_own_block(pool, tokens, people) -> None:
    fund(pool, people["lp"])
    boa.env.time_travel(seconds=7_200)
    before = pool.twap(3_600)
    a = people["attacker"]
    pool.swap(tokens[0], 10**7 * E18, 0, a, sender=a)  # the price of token1 jumps ~100x
    assert pool.spot() > 50 * 4 * E18
    assert pool.twap(3_600) == before


def test_twap__a_price_held_one_block_moves_an_hour_by_its_share_of_the_hour(pool, tokens, people) -> None:
    """An attacker pushes the price ~100x, holds it for one 12-second block, and trades back:
    the one-hour average moves by at most 12 / 3600 of the push, and the round trip costs the
    attacker its fees."""
    fund(pool, people["lp"])
    t = people["trader"]
    for _ in range(60):  # an hour of small trades around the price
        boa.env.time_travel(seconds=60)
        pool.swap(tokens[0], E18, 0, t, sender=t)
        pool.swap(tokens[1], E18 // 4, 0, t, sender=t)
    boa.env.time_travel(seconds=12)
    honest, _ = pool.twap(3_600)
    base = pool.spot()
    a = people["attacker"]
    cost0 = tokens[0].balanceOf(a)
    got = pool.swap(tokens[0], 9 * 10**6 * E18, 0, a, sender=a)
    pushed = pool.spot()
    assert pushed > 90 * base
    boa.env.time_travel(seconds=12)
    pool.swap(tokens[1], got, 0, a, sender=a)  # back
    boa.env.time_travel(seconds=1)
    moved, window = pool.twap(3_600)
    assert window <= 3_600 + SPACING
    assert moved - honest <= (pushed - base) * 13 // window + honest // 1_000
    assert cost0 > tokens[0].balanceOf(a)  # the round trip never pays


def test_twap__a_price_held_against_an_arbitrageur_costs_the_push(pool, tokens, people) -> None:
    """Holding a pushed price for a block lets anyone trade against it: an arbitrageur that
    sells the asset back at the pushed price leaves the attacker's round trip worth a fraction
    of what it put in."""
    fund(pool, people["lp"])
    a, arb = people["attacker"], people["arb"]
    base0, base1 = pool.reserve0(), pool.reserve1()
    spent = 9 * 10**6 * E18
    before = tokens[0].balanceOf(a)
    got = pool.swap(tokens[0], spent, 0, a, sender=a)
    boa.env.time_travel(seconds=12)
    # the arbitrageur sells token1 until the pool is back near its old price
    r0, r1 = pool.reserve0(), pool.reserve1()
    back = isqrt(r0 * r1 * base1 // base0) - r1
    arb0 = tokens[0].balanceOf(arb)
    pool.swap(tokens[1], back, 0, arb, sender=arb)
    assert tokens[0].balanceOf(arb) - arb0 > back * base0 // base1  # it bought cheap token0
    boa.env.time_travel(seconds=12)
    pool.swap(tokens[1], got, 0, a, sender=a)
    assert before - tokens[0].balanceOf(a) > spent // 2


def test_twap__the_ring_keeps_the_newest_observations(pool, tokens, people) -> None:
    """More observations than the ring holds: the oldest are overwritten, the average is read
    from the newest ones, and a window older than the ring is too young."""
    fund(pool, people["lp"])
    t = people["trader"]
    first = boa.env.timestamp
    for _ in range(RING + 3):
        boa.env.time_travel(seconds=SPACING)
        pool.swap(tokens[0], E18, 0, t, sender=t)
    assert pool.observation_count() == RING
    oldest = pool.observations((pool.observation_index() + 1) % RING)
    assert oldest.timestamp == first + 4 * SPACING
    now = boa.env.timestamp
    assert pool.twap(now - oldest.timestamp)[1] == now - oldest.timestamp
    with boa.reverts("pool: oracle too young"):
        pool.twap(now - oldest.timestamp + 1)


# --- any sequence of calls ---------------------------------------------------------------------


class PoolMachine(RuleBasedStateMachine):
    pool = tokens = None
    actors: list[str] = []

    @initialize(a0=st.integers(10**6, 10**30), a1=st.integers(10**6, 10**30))
    def start(self, a0, a1):
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        if isqrt(a0 * a1) <= MIN_SHARES:
            a0 = a1 = 10**6
        pool, who = self.pool, self.actors[0]
        pool.add_liquidity(a0, a1, 0, who, sender=who)
        self.value_per_share = self.share_value()

    def share_value(self) -> tuple[int, int]:
        """k per share squared, as a fraction (compared by cross-multiplying, exactly)."""
        return self.pool.reserve0() * self.pool.reserve1(), self.pool.totalSupply() ** 2

    def check_value_kept(self):
        (v, s), (v0, s0) = self.share_value(), self.value_per_share
        assert v * s0 >= v0 * s  # never falls: rounding always favours the pool
        self.value_per_share = (v, s)

    @rule(i=st.integers(0, 3), zero=st.booleans(), amount=st.integers(1, 10**28), gap=st.sampled_from([0, 1, 12, 60, 600]))
    def swap(self, i, zero, amount, gap):
        boa.env.time_travel(seconds=gap) if gap else None
        pool, who = self.pool, self.actors[i]
        r0, r1 = pool.reserve0(), pool.reserve1()
        want = swap_out(amount, r0, r1) if zero else swap_out(amount, r1, r0)
        token = self.tokens[0 if zero else 1]
        if want == 0:
            with boa.reverts("pool: nothing out"):
                pool.swap(token, amount, 0, who, sender=who)
            return
        if token.balanceOf(who) < amount:  # an actor that spent its tokens: the pull fails, nothing moves
            with boa.reverts("erc20: transfer amount exceeds balance"):
                pool.swap(token, amount, want, who, sender=who)
            return
        assert pool.swap(token, amount, want, who, sender=who) == want
        assert pool.reserve0() * pool.reserve1() >= r0 * r1
        self.check_value_kept()

    @rule(i=st.integers(0, 3), a0=st.integers(0, 10**28), a1=st.integers(0, 10**28))
    def add(self, i, a0, a1):
        pool, who = self.pool, self.actors[i]
        r0, r1, supply = pool.reserve0(), pool.reserve1(), pool.totalSupply()
        b1 = ceil_div(a0 * r1, r0)
        b0 = a0
        if b1 > a1:
            b1, b0 = a1, ceil_div(a1 * r0, r1)
        shares = min(b0 * supply // r0, b1 * supply // r1)
        if shares == 0:
            with boa.reverts("pool: no shares"):
                pool.add_liquidity(a0, a1, 0, who, sender=who)
            return
        if self.tokens[0].balanceOf(who) < b0 or self.tokens[1].balanceOf(who) < b1:
            with boa.reverts("erc20: transfer amount exceeds balance"):
                pool.add_liquidity(a0, a1, shares, who, sender=who)
            return
        assert pool.add_liquidity(a0, a1, shares, who, sender=who) == shares
        # the depositor's shares are worth no more than what it put in
        assert shares * r0 <= b0 * supply and shares * r1 <= b1 * supply
        self.check_value_kept()

    @rule(i=st.integers(0, 3), part=st.integers(1, 100))
    def remove(self, i, part):
        pool, who = self.pool, self.actors[i]
        shares = pool.balanceOf(who) * part // 100
        if shares == 0:
            return
        r0, r1, supply = pool.reserve0(), pool.reserve1(), pool.totalSupply()
        assert pool.remove_liquidity(shares, 0, 0, who, sender=who) == (shares * r0 // supply, shares * r1 // supply)
        self.check_value_kept()

    @invariant()
    def holds_exactly_its_reserves(self):
        assert self.tokens[0].balanceOf(self.pool) == self.pool.reserve0()
        assert self.tokens[1].balanceOf(self.pool) == self.pool.reserve1()
        assert sum(self.pool.balanceOf(a) for a in [*self.actors, self.pool.address]) == self.pool.totalSupply()
        assert self.pool.balanceOf(self.pool.address) == MIN_SHARES

    def teardown(self):
        self._anchor.__exit__(None, None, None)


def test_pool_state_machine(pool, tokens, people) -> None:
    PoolMachine.pool, PoolMachine.tokens = pool, tokens
    PoolMachine.actors = [people[n] for n in ("lp", "trader", "attacker", "arb")]
    run_state_machine_as_test(
        PoolMachine,
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]),
    )  # fmt: skip


def test_pool_on_anvil__the_same_contract_trades_and_averages_on_a_node(anvil) -> None:
    """The compiled artifact a user deploys, on anvil: a deposit, trades in later blocks, the
    average read back through web3."""
    from verifier.court.chain import Chain

    chain = Chain.connect(anvil.url, key=anvil.keys[6])
    t0, t1 = chain.deploy("Token"), chain.deploy("Token")
    pool = chain.deploy("Pool", t0.address, t1.address)
    me = chain.account
    for token in (t0, t1):
        chain.send(token.functions.mint(me, 10**9 * E18))
        chain.send(token.functions.approve(pool.address, 2**256 - 1))
    chain.send(pool.functions.add_liquidity(4_000 * E18, 1_000 * E18, 0, me))
    anvil.advance(3_600)
    want = swap_out(E18, 4_000 * E18, 1_000 * E18)
    chain.send(pool.functions.swap(t0.address, E18, want, me))
    assert pool.functions.reserve1().call() == 1_000 * E18 - want
    anvil.advance(600)
    price, window = pool.functions.twap(600).call()
    assert window >= 600 and abs(price - 4 * E18) < 4 * E18 // 100  # one small trade barely moves it
