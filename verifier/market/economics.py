"""The market's money in Python: weights and the protocol bounds of a round's terms
(docs/SPEC.md 8.1, `round_bounds_error`), payouts and slashing (8.5), void payouts, and the
commitments of reveals (8.6), integer for integer like contracts/Market.vy.

The tests cross-check the contract against these functions, and the CLI uses them to preview
a round's payouts before anyone pays gas to settle it:

    >>> s = payouts([ModelEntry(10**18, 10**18, 500, True, (0,), contribution=100)],
    ...             [DatasetEntry(10**18, 10**18, 7, True)],
    ...             Economics(10_000, 2_000, 1_000, 500, 500), pool=10**18)
    >>> s.model_payouts, s.dataset_payouts, s.refund
    ([54000000000000000], [6000000000000000], 940000000000000000)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from verifier.commit.merkle import keccak
from verifier.core.dtypes import DType

BPS = 10_000
WEIGHT_UNIT = 10**15
MAX_WEIGHT = 2**40 - 1
CHUNK = 2048

# Protocol bounds of a round (SPEC 8.1; Market.vy's constants of the same names)
MAX_CAP_BPS = 2_500
MAX_DATA_SLASH_BPS = 1_000
BONUS_CAP_DIVISOR = 4  # bonus_bps <= cap_bps / 4: the contribution part stays the smaller one
MAX_FACTOR_BPS = 1_000_000
MAX_COMMIT_PHASE = 2_592_000
MIN_PHASE = 86_400
MAX_PHASE = 604_800
MAX_RESULT_PHASE = 2_592_000
MIN_WINDOW = 172_800
MAX_TASK_WINDOW = 604_800
MIN_CLOCK = 172_800
MAX_TASK_CLOCK = 604_800
MIN_TASK_DURATION = 86_400
MAX_TASK_DURATION = 604_800
MIN_REWARD = 10**18
MIN_CHALLENGER_BOND = 250 * 10**18
MAX_CHALLENGER_BOND = 10**21
MAX_SOLVER_BOND = 10**22

__all__ = [
    "BONUS_CAP_DIVISOR",
    "BPS",
    "MAX_CAP_BPS",
    "MAX_CHALLENGER_BOND",
    "MAX_COMMIT_PHASE",
    "MAX_DATA_SLASH_BPS",
    "MAX_FACTOR_BPS",
    "MAX_PHASE",
    "MAX_RESULT_PHASE",
    "MAX_SOLVER_BOND",
    "MAX_TASK_CLOCK",
    "MAX_TASK_DURATION",
    "MAX_TASK_WINDOW",
    "MAX_WEIGHT",
    "MIN_CHALLENGER_BOND",
    "MIN_CLOCK",
    "MIN_PHASE",
    "MIN_REWARD",
    "MIN_TASK_DURATION",
    "MIN_WINDOW",
    "WEIGHT_UNIT",
    "DatasetEntry",
    "Economics",
    "ModelEntry",
    "Settlement",
    "labels_commitment",
    "mask",
    "max_model_stake",
    "payouts",
    "prediction_commitment",
    "round_bounds_error",
    "small_tensor_commitment",
    "trunc_div",
    "void_payouts",
    "weight",
    "weights",
]


@dataclass(frozen=True)
class Economics:
    """A round's payout parameters, in basis points (Market.vy's `Economics`)."""

    factor_bps: int
    cap_bps: int
    data_share_bps: int
    data_slash_bps: int
    bonus_bps: int  # largest contribution bonus, in basis points of the stake (<= cap_bps / 4)
    min_stake: int = 0  # a commit or join reserves at least this; a commitment never revealed forfeits it


@dataclass(frozen=True)
class ModelEntry:
    """One model slot of a round at settlement.

    `datasets` are the slots (indices into the round's dataset list) of the datasets the
    model names; `score` is its recorded own score and `contribution` its leave-one-out score
    (both ignored unless `revealed`).
    `stake_at_risk` is what the round reserved; `current_stake` (the model's whole stake)
    bounds nothing: a loss is at most `cap_bps` of the reservation, which the stake covers.
    `unreleased`: a model that did not reveal and whose reservation the round still holds
    (nobody called `release`): settling forfeits `min_stake` of it.
    """

    stake_at_risk: int
    current_stake: int
    score: int
    revealed: bool
    datasets: tuple[int, ...] = ()
    contribution: int = 0
    unreleased: bool = False


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset slot of a round at settlement; `value` is its recorded data value."""

    at_risk: int
    current_stake: int
    value: int
    active: bool


@dataclass(frozen=True)
class Settlement:
    """What `settle` moves. Payouts are signed: positive is paid to the owner, negative is
    slashed from the stake. `refund` is what the sponsor gets back (pool left plus budget):
    never more than its pool plus budget, since every slash is burned."""

    model_payouts: list[int]
    dataset_payouts: list[int]
    paid: int
    slashed: int
    burned: int
    refund: int
    returns_bps: list[int] = field(default_factory=list)
    """r_i + b_i of each model slot (0 for one that did not reveal)."""


def trunc_div(a: int, b: int) -> int:
    """a / b truncated toward zero, and 0 when b = 0 (SPEC 4, `Div`)."""
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def weight(stake_at_risk: int) -> int:
    """w_i of a revealed model: whole 10^15 units of its stake at risk, at most 2^40 - 1."""
    return min(stake_at_risk // WEIGHT_UNIT, MAX_WEIGHT)


def weights(models: Sequence[ModelEntry], slots: int) -> list[int]:
    """The round's weight vector w over `slots` (= M) model slots; empty slots weigh 0."""
    out = [0] * slots
    for i, m in enumerate(models):
        if m.revealed:
            out[i] = weight(m.stake_at_risk)
    return out


def mask(datasets: Sequence[DatasetEntry], slots: int) -> list[int]:
    """The round's dataset mask a over `slots` (= D) dataset slots."""
    out = [0] * slots
    for d, e in enumerate(datasets):
        out[d] = int(e.active)
    return out


def payouts(
    models: Sequence[ModelEntry],
    datasets: Sequence[DatasetEntry],
    economics: Economics,
    pool: int,
    budget: int = 0,
    charge_bps: int = 0,
) -> Settlement:
    """Gains, losses, data shares, burn and refund of one round, exactly as SPEC 8.5 says;
    `charge_bps` is taken from every revealed model's return (the loop's participation charge,
    SPEC 12.5; a market round has none)."""
    e = economics
    returns = [0] * len(models)
    model_pay = [0] * len(models)
    data_pay = [0] * len(datasets)
    slashed = paid = 0
    for i, m in enumerate(models):
        if not m.revealed:
            if m.unreleased:  # a commitment never revealed forfeits min_stake, burned
                model_pay[i] = -e.min_stake
                slashed += e.min_stake
            continue
        own = max(-e.cap_bps, min(e.cap_bps, trunc_div(m.score * e.factor_bps, BPS)))
        bonus = max(0, min(e.bonus_bps, trunc_div(m.contribution * e.factor_bps, BPS)))
        returns[i] = r = own + bonus - charge_bps
        if r < 0:
            loss = m.stake_at_risk * -r // BPS  # <= the reservation (cap_bps <= BPS)
            model_pay[i] = -loss
            slashed += loss
    for d, ds in enumerate(datasets):
        if ds.active and ds.value < 0:
            loss = ds.at_risk * e.data_slash_bps // BPS
            data_pay[d] = -loss
            slashed += loss
    for i, m in enumerate(models):
        if returns[i] <= 0:
            continue
        # never scaled: a reservation is at most max_model_stake, so the gains fit the pool
        g = m.stake_at_risk * returns[i] // BPS
        paid += g
        share = g * e.data_share_bps // BPS
        positive = [d for d in m.datasets if datasets[d].active and datasets[d].value > 0]
        v_sum = sum(datasets[d].value for d in positive)
        passed = 0
        if v_sum:
            for d in positive:
                part = share * datasets[d].value // v_sum
                data_pay[d] += part
                passed += part
        model_pay[i] = g - passed
    if paid > pool:
        raise ValueError(f"gains {paid} exceed the pool {pool}: a reservation above max_model_stake")
    # every slash is burned, so the sponsor's refund is the same whoever is slashed
    return Settlement(model_pay, data_pay, paid, slashed, slashed, pool - paid + budget, returns)


def max_model_stake(pool: int, models: int, economics: Economics) -> int:
    """The most a model may reserve in a round (Market.vy's `max_stake`, SPEC 8.5): at full
    return every model slot's gain fits its share of the pool."""
    # the + 1 keeps the divisor positive for a round with no return, and only rounds down
    return pool * BPS // ((economics.cap_bps + economics.bonus_bps) * models + 1)


def void_payouts(models: Sequence[ModelEntry], pool: int, budget: int = 0) -> tuple[list[int], int]:
    """A void round (labels withheld, or results not recorded): the pool is split evenly among
    the revealed models in slot order, each taking the floor of what is left over the models
    left, so that the parts add up to the pool; the sponsor gets the pool back only if no
    model revealed, and the unspent budget. Returns (payouts, sponsor refund)."""
    left = sum(1 for m in models if m.revealed)
    pay = [0] * len(models)
    for i, m in enumerate(models):
        if m.revealed:
            pay[i] = pool // left
            pool -= pay[i]
            left -= 1
    return pay, pool + budget


def round_bounds_error(
    now: int, schedule: Sequence[int], economics: Economics, terms: Sequence[int], budget: int
) -> str | None:
    """Why Market.vy's `open_round` would refuse these terms (its reason), or None.

    `schedule` is (commit, reveal, labels, result deadline); `terms` is (reward, window, clock,
    solver_bond, challenger_bond, arity, duration), as in `open_round`. The shape and programs
    are not checked here.
    """
    commit, reveal, labels, result = schedule
    reward, window, clock, solver_bond, challenger_bond, arity, duration = terms
    e = economics
    if commit <= now:
        return "market: commit deadline not in the future"
    if not (
        commit - now <= MAX_COMMIT_PHASE
        and MIN_PHASE <= reveal - commit <= MAX_PHASE
        and MIN_PHASE <= labels - reveal <= MAX_PHASE
        and 0 <= result - labels <= MAX_RESULT_PHASE
    ):
        return "market: a phase outside the protocol's bounds"
    if e.factor_bps > MAX_FACTOR_BPS:
        return "market: factor above 1_000_000 bps"
    if not (
        e.cap_bps <= MAX_CAP_BPS and e.data_share_bps <= BPS and e.data_slash_bps <= MAX_DATA_SLASH_BPS
        and e.bonus_bps * BONUS_CAP_DIVISOR <= e.cap_bps
    ):  # fmt: skip
        return "market: a rate outside the protocol's bounds"
    if not (
        MIN_WINDOW <= window <= MAX_TASK_WINDOW and MIN_CLOCK <= clock <= MAX_TASK_CLOCK and 2 <= arity <= 32
        and MIN_TASK_DURATION <= duration <= MAX_TASK_DURATION
    ):  # fmt: skip
        return "market: task terms outside the market's ranges"
    if result - labels < duration + window + 2 * clock:
        return "market: result phase shorter than a task needs"
    if not (
        MIN_CHALLENGER_BOND <= challenger_bond <= MAX_CHALLENGER_BOND and challenger_bond <= solver_bond <= MAX_SOLVER_BOND
    ):
        return "market: bonds outside the protocol's bounds"
    if not (reward >= MIN_REWARD and 3 * reward <= budget):
        return "market: reward below 1 token or budget below 3 rewards"
    return None


def prediction_commitment(round_id: int, model_id: int, predictions: bytes, salt: bytes) -> bytes:
    """keccak256(u256(round_id) || u256(model_id) || predictions || salt) (SPEC 8.6)."""
    if len(salt) != 32:
        raise ValueError(f"the salt is {len(salt)} bytes, not 32; use 32 random bytes.")
    return keccak(round_id.to_bytes(32, "big"), model_id.to_bytes(32, "big"), bytes(predictions), salt)


def labels_commitment(labels: bytes, salt: bytes) -> bytes:
    """keccak256(labels || salt) (SPEC 8.6)."""
    if len(salt) != 32:
        raise ValueError(f"the salt is {len(salt)} bytes, not 32; use 32 random bytes.")
    return keccak(bytes(labels), salt)


def small_tensor_commitment(dtype: DType | int, values: Sequence[int]) -> bytes:
    """Commitment (SPEC 1.3) of a rank-1 tensor that fits one chunk, as the market computes
    it on-chain: predictions and labels (int8), weights, mask, scores and values (int64)."""
    dtype = DType(dtype)
    width = {DType.INT8: 1, DType.INT64: 8}.get(dtype)
    if width is None:
        raise ValueError(f"the market commits int8 and int64 vectors, not {dtype.name}; convert the values first.")
    bits = 8 * width
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if any(not lo <= v <= hi for v in values):
        raise ValueError(f"a value is outside {dtype.name}; the market accepts only values in {lo}..{hi}.")
    data = b"".join((v % 2**bits).to_bytes(width, "big") for v in values)
    if len(data) > CHUNK:
        raise ValueError(f"{len(values)} {dtype.name} values are more than one {CHUNK}-byte chunk; send fewer.")
    leaf = keccak(b"\x00", data + bytes(CHUNK - len(data)))
    header = bytes([int(dtype), 1]) + len(values).to_bytes(4, "big") + bytes(26)
    return keccak(b"\x02", header, leaf)
