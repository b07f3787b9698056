# pragma version ~=0.4.3
"""
@title Constant-product pool with a time-weighted average price
@notice Trades two ERC-20 tokens (token0: the bond token, token1: an asset) along
        x * y = k with a 0.3% fee that stays in the pool, issues transferable shares for
        liquidity (snekmate's erc20), and keeps a time-weighted average price (TWAP) of token1
        in token0 that anyone reads over a past window (docs/SPEC.md section 11). The average
        integrates the price that held at the start of each block, before that block's trades,
        so no trade moves it within its own block, and a price held for t seconds of a window of
        W seconds moves the average by at most t / W of the move, while every arbitrageur trades
        against it at the manipulator's expense.
@custom:security Trust assumptions and choices:
                 - Both tokens are plain ERC-20s without fees, hooks or rebasing (the bond token
                   is contracts/Token.vy). Every pull is checked against the pool's balance, so
                   a token that delivers less than asked is refused.
                 - The reserves are the pool's own accounting, not its balance: tokens sent to it
                   directly are neither traded nor owed, so no donation moves the price, the
                   average or the value of a share.
                 - The first deposit mints MINIMUM_SHARES shares to the pool itself, where they
                   stay: the reserves never return to zero, so the price is always defined once
                   the pool has been funded.
                 - Each reserve stays below 2^112, so prices in Q112 and their products fit; the
                   price accumulator wraps modulo 2^256 as Uniswap V2's does, and only
                   differences of it are read, which wrapping leaves exact.
                 - Every mutating function is `@nonreentrant` and writes storage before it calls
                   out. The deployer holds no power: no minting, fee or parameter is exported.
"""

from ethereum.ercs import IERC20
from snekmate.auth import ownable
from snekmate.tokens import erc20
from snekmate.utils import math

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    # shares of the pool, a standard ERC-20
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.transfer,
    erc20.approve,
    erc20.transferFrom,
)

NAME: constant(String[25]) = "bisectml pool share"
SYMBOL: constant(String[5]) = "BPOOL"
DECIMALS: constant(uint8) = 18
EIP712_VERSION: constant(String[20]) = "1"

# the fee every trade leaves in the pool, in basis points of what it pays in
FEE_BPS: public(constant(uint256)) = 30
BPS: constant(uint256) = 10_000
# shares the first deposit locks in the pool for good
MINIMUM_SHARES: public(constant(uint256)) = 1_000
# each reserve stays below 2^112: prices in Q112 and their sums over time fit in 256 bits
MAX_RESERVE: public(constant(uint256)) = 2**112 - 1
Q112: constant(uint256) = 2**112
# the average is read from observations of the accumulator, one at most every
# OBSERVATION_SPACING seconds, the last OBSERVATIONS of them kept (more than a day at 60 s)
OBSERVATIONS: public(constant(uint256)) = 2_048
OBSERVATION_SPACING: public(constant(uint256)) = 60
# log2(OBSERVATIONS) + 1 halvings find any observation
SEARCH_STEPS: constant(uint256) = 12


struct Observation:
    # block.timestamp when the accumulator had this value
    timestamp: uint256
    # price0_cumulative then
    cumulative: uint256


event Swap:
    sender: indexed(address)
    to: indexed(address)
    token_in: indexed(address)
    amount_in: uint256
    amount_out: uint256
    reserve0: uint256
    reserve1: uint256


event LiquidityAdded:
    sender: indexed(address)
    to: indexed(address)
    amount0: uint256
    amount1: uint256
    shares: uint256


event LiquidityRemoved:
    sender: indexed(address)
    to: indexed(address)
    amount0: uint256
    amount1: uint256
    shares: uint256


token0: public(immutable(IERC20))
token1: public(immutable(IERC20))

reserve0: public(uint256)
reserve1: public(uint256)
# sum over time of the price of token1 in token0, Q112 (reserve0 * 2^112 // reserve1) times the
# seconds it held, modulo 2^256; advanced to block.timestamp by the first call of each block
price0_cumulative: public(uint256)
# when the accumulator was last advanced
last_update: public(uint256)
# ring of observations: index => observation; the newest at `observation_index`
observations: public(HashMap[uint256, Observation])
observation_index: public(uint256)
observation_count: public(uint256)


@deploy
def __init__(token0_: IERC20, token1_: IERC20):
    """
    @param token0_ The bond token (prices are quoted in it).
    @param token1_ The asset.
    """
    assert token0_.address != empty(address) and token1_.address != empty(address), "pool: token is the zero address"
    assert token0_.address != token1_.address, "pool: tokens are the same"
    ownable.__init__()
    erc20.__init__(NAME, SYMBOL, DECIMALS, NAME, EIP712_VERSION)
    # the deployer holds no minting right (mint is not exported; this keeps it so)
    erc20.is_minter[msg.sender] = False
    token0 = token0_
    token1 = token1_


@external
@nonreentrant
def swap(token_in: address, amount_in: uint256, min_out: uint256, to: address) -> uint256:
    """
    @notice Sells `amount_in` of `token_in` (pulled from the caller: approve it first) for the
            other token, sent to `to`: out = in * 9970 * r_out // (r_in * 10000 + in * 9970).
    @param min_out The least the caller accepts (its slippage limit).
    @return uint256 The amount sent out.
    """
    assert amount_in != 0, "pool: nothing in"
    zero_for_one: bool = token_in == token0.address
    assert zero_for_one or token_in == token1.address, "pool: not a token of the pool"
    self._accumulate()
    r0: uint256 = self.reserve0
    r1: uint256 = self.reserve1
    assert r0 != 0, "pool: no liquidity"
    r_in: uint256 = r0
    r_out: uint256 = r1
    if not zero_for_one:
        r_in = r1
        r_out = r0
    assert amount_in <= MAX_RESERVE - r_in, "pool: reserve too large"
    with_fee: uint256 = amount_in * (BPS - FEE_BPS)
    out: uint256 = with_fee * r_out // (r_in * BPS + with_fee)
    assert out != 0, "pool: nothing out"
    assert out >= min_out, "pool: slippage"
    # out < r_out: the curve never empties a reserve
    if zero_for_one:
        self.reserve0 = r0 + amount_in
        self.reserve1 = unsafe_sub(r1, out)
    else:
        self.reserve1 = r1 + amount_in
        self.reserve0 = unsafe_sub(r0, out)
    log Swap(
        sender=msg.sender, to=to, token_in=token_in, amount_in=amount_in, amount_out=out,
        reserve0=self.reserve0, reserve1=self.reserve1,
    )
    token_out: IERC20 = token1 if zero_for_one else token0
    self._pull(IERC20(token_in), amount_in)
    self._push(token_out, to, out)
    return out


@external
@nonreentrant
def add_liquidity(amount0_desired: uint256, amount1_desired: uint256, min_shares: uint256, to: address) -> uint256:
    """
    @notice Deposits both tokens at the pool's ratio (at most the amounts desired; the ratio
            is rounded up in the pool's favour) and mints shares to `to`. The first deposit
            sets the ratio, mints isqrt(amount0 * amount1) shares and locks MINIMUM_SHARES of
            them in the pool.
    @return uint256 The shares minted to `to`.
    """
    assert amount0_desired <= MAX_RESERVE and amount1_desired <= MAX_RESERVE, "pool: reserve too large"
    self._accumulate()
    r0: uint256 = self.reserve0
    r1: uint256 = self.reserve1
    supply: uint256 = erc20.totalSupply
    a0: uint256 = amount0_desired
    a1: uint256 = amount1_desired
    shares: uint256 = 0
    if supply == 0:
        total: uint256 = isqrt(a0 * a1)
        assert total > MINIMUM_SHARES, "pool: first deposit too small"
        shares = total - MINIMUM_SHARES
        erc20._mint(self, MINIMUM_SHARES)
    else:
        a1 = self._ceil_div(amount0_desired * r1, r0)
        if a1 > amount1_desired:
            a1 = amount1_desired
            a0 = self._ceil_div(amount1_desired * r0, r1)
        assert a0 <= MAX_RESERVE - r0 and a1 <= MAX_RESERVE - r1, "pool: reserve too large"
        shares = min(a0 * supply // r0, a1 * supply // r1)
    assert shares != 0, "pool: no shares"
    assert shares >= min_shares, "pool: slippage"
    self.reserve0 = r0 + a0
    self.reserve1 = r1 + a1
    erc20._mint(to, shares)
    log LiquidityAdded(sender=msg.sender, to=to, amount0=a0, amount1=a1, shares=shares)
    self._pull(token0, a0)
    self._pull(token1, a1)
    return shares


@external
@nonreentrant
def remove_liquidity(shares: uint256, min0: uint256, min1: uint256, to: address) -> (uint256, uint256):
    """
    @notice Burns `shares` of the caller and sends `to` their part of both reserves, rounded
            down.
    @return (uint256, uint256) The amounts of token0 and token1 sent.
    """
    self._accumulate()
    supply: uint256 = erc20.totalSupply
    assert shares != 0, "pool: no shares"
    # shares <= the caller's balance <= supply (checked by _burn), so a0 < reserve0
    a0: uint256 = shares * self.reserve0 // supply
    a1: uint256 = shares * self.reserve1 // supply
    assert a0 >= min0 and a1 >= min1, "pool: slippage"
    erc20._burn(msg.sender, shares)
    self.reserve0 -= a0
    self.reserve1 -= a1
    log LiquidityRemoved(sender=msg.sender, to=to, amount0=a0, amount1=a1, shares=shares)
    self._push(token0, to, a0)
    self._push(token1, to, a1)
    return a0, a1


@external
@view
def twap(window: uint256) -> (uint256, uint256):
    """
    @notice The average price of token1 in token0 (18 decimals) over the period from the
            newest observation at least `window` seconds old to now, and that period's length
            in seconds (at least `window`; longer when nobody traded near its start). Reverts
            when no observation is that old.
    """
    assert window != 0, "pool: empty window"
    assert window <= block.timestamp, "pool: window before time"
    then: Observation = self._observation_before(block.timestamp - window)
    elapsed: uint256 = block.timestamp - then.timestamp
    # wrapping differences are exact (the accumulator wraps modulo 2^256)
    mean: uint256 = unsafe_sub(self._cumulative_now(), then.cumulative) // elapsed
    return math._mul_div(mean, 10**18, Q112, False), elapsed


@external
@view
def spot() -> uint256:
    """@notice The price of token1 in token0 now (18 decimals): trivially moved by one trade."""
    assert self.reserve1 != 0, "pool: no liquidity"
    return self.reserve0 * 10**18 // self.reserve1


@internal
def _accumulate():
    # advance the accumulator to now with the price that held since the last call (the start of
    # this block's price), then record an observation if the newest is old enough
    elapsed: uint256 = block.timestamp - self.last_update
    if elapsed == 0:
        return
    if self.reserve1 != 0:
        self.price0_cumulative = unsafe_add(self.price0_cumulative, unsafe_mul(self._price(), elapsed))
    self.last_update = block.timestamp
    count: uint256 = self.observation_count
    index: uint256 = self.observation_index
    if count != 0 and block.timestamp < self.observations[index].timestamp + OBSERVATION_SPACING:
        return
    if count != 0:
        index = (index + 1) % OBSERVATIONS
    self.observation_index = index
    self.observation_count = min(count + 1, OBSERVATIONS)
    self.observations[index] = Observation(timestamp=block.timestamp, cumulative=self.price0_cumulative)


@internal
@view
def _price() -> uint256:
    # Q112 price of token1 in token0; reserves < 2^112, so it is below 2^224
    return self.reserve0 * Q112 // self.reserve1


@internal
@view
def _cumulative_now() -> uint256:
    if self.reserve1 == 0:
        return self.price0_cumulative
    return unsafe_add(self.price0_cumulative, unsafe_mul(self._price(), block.timestamp - self.last_update))


@internal
@view
def _observation_before(target: uint256) -> Observation:
    # the newest observation with timestamp <= target, by bisection over the ring (oldest first)
    count: uint256 = self.observation_count
    assert count != 0, "pool: no observations"
    oldest: uint256 = (self.observation_index + OBSERVATIONS + 1 - count) % OBSERVATIONS
    assert self.observations[oldest].timestamp <= target, "pool: oracle too young"
    lo: uint256 = 0
    hi: uint256 = count - 1
    for _: uint256 in range(SEARCH_STEPS):
        if lo == hi:
            break
        mid: uint256 = (lo + hi + 1) // 2
        if self.observations[(oldest + mid) % OBSERVATIONS].timestamp <= target:
            lo = mid
        else:
            hi = mid - 1
    return self.observations[(oldest + lo) % OBSERVATIONS]


@internal
@pure
def _ceil_div(x: uint256, y: uint256) -> uint256:
    return (x + y - 1) // y


@internal
def _pull(token: IERC20, amount: uint256):
    before: uint256 = staticcall token.balanceOf(self)
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "pool: transfer failed"
    assert staticcall token.balanceOf(self) == before + amount, "pool: token delivered another amount"


@internal
def _push(token: IERC20, to: address, amount: uint256):
    if amount != 0:
        assert extcall token.transfer(to, amount, default_return_value=True), "pool: transfer failed"
