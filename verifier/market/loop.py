"""The closed loop's rules off the chain (docs/SPEC.md 12): the bounds `Loop.vy` checks, a
period's schedule, the position a metamodel buys, the label a period's prices give and the
settlement, each written from the SPEC so that tests hold the contract to it; a period's
features; and the three programs a loop is deployed with (the market's metamodel, scores and
data-values programs for one row)."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Sequence

from verifier.market import economics as econ

BPS = econ.BPS
MAX_MODELS = 16
MAX_DATASETS = 8
# a period's features: the labels of the periods before it
MAX_LAGS = 16
MAX_FEE_BPS = 200
MAX_POSITION_BPS = 5_000
MAX_LEVERAGE = 100
MIN_SLIPPAGE_BPS = 30
MAX_SLIPPAGE_BPS = 500
# every revealed model pays bonus_bps / 2 a period, rounded up: a zero-skill prediction's bonus is
# worth at most that in expectation (SPEC 12.5)
CHARGE_DIVISOR = 2
MIN_COMMIT_PHASE = 3_600
MAX_COMMIT_PHASE = econ.MAX_COMMIT_PHASE
MIN_PHASE = econ.MIN_PHASE
MAX_PHASE = econ.MAX_PHASE
MIN_HOLD = 3_600
MAX_HOLD = 2_592_000
MIN_AVERAGE = 600
PRED_MAX = 100
E18 = 10**18


@dataclass(frozen=True)
class LoopTerms:
    """`Loop.vy`'s `Terms`, in its field order."""

    models: int
    commit_phase: int
    reveal_phase: int
    hold: int
    average: int
    max_position_bps: int
    leverage: int
    slippage_bps: int
    fee_bps: int
    factor_bps: int
    cap_bps: int
    bonus_bps: int
    min_stake: int
    reward: int
    window: int
    clock: int
    duration: int
    solver_bond: int
    challenger_bond: int
    arity: int
    # the data side (SPEC 12.5); the defaults give the one-dataset shape of a loop without data
    datasets: int = 1
    features: int = 1
    dataset_rows: int = 1
    k: int = 1
    data_share_bps: int = 0
    data_slash_bps: int = 0

    def as_tuple(self) -> tuple[int, ...]:
        return astuple(self)

    @property
    def latency(self) -> int:
        """A task's claim period, challenge window and both chess clocks (SPEC 12.3)."""
        return self.duration + self.window + 2 * self.clock

    @property
    def charge_bps(self) -> int:
        """What every revealed model pays a period, burned (SPEC 12.5)."""
        return -(-self.bonus_bps // CHARGE_DIVISOR)

    @property
    def economics(self) -> econ.Economics:
        """The payout parameters of SPEC 8.5."""
        return econ.Economics(
            self.factor_bps, self.cap_bps, self.data_share_bps, self.data_slash_bps, self.bonus_bps, self.min_stake
        )


def terms_error(t: LoopTerms) -> str | None:
    """The revert `Loop.vy`'s constructor gives for `t`, or None if it takes them."""
    if not 1 <= t.models <= MAX_MODELS:
        return "loop: models outside 1..16"
    phases = (
        MIN_COMMIT_PHASE <= t.commit_phase <= MAX_COMMIT_PHASE,
        MIN_PHASE <= t.reveal_phase <= MAX_PHASE,
        MIN_HOLD <= t.hold <= MAX_HOLD,
        MIN_AVERAGE <= t.average <= t.hold,
    )
    if not all(phases):
        return "loop: a phase outside its bounds"
    rates = (
        t.max_position_bps <= MAX_POSITION_BPS,
        1 <= t.leverage <= MAX_LEVERAGE,
        MIN_SLIPPAGE_BPS <= t.slippage_bps <= MAX_SLIPPAGE_BPS,
        t.fee_bps <= MAX_FEE_BPS and t.factor_bps <= econ.MAX_FACTOR_BPS,
        t.cap_bps <= econ.MAX_CAP_BPS and t.bonus_bps * econ.BONUS_CAP_DIVISOR <= t.cap_bps,
        t.min_stake > 0,
        t.data_share_bps <= BPS and t.data_slash_bps <= econ.MAX_DATA_SLASH_BPS,
    )
    if not all(rates):
        return "loop: a rate outside the protocol's bounds"
    task = (
        econ.MIN_WINDOW <= t.window <= econ.MAX_TASK_WINDOW,
        econ.MIN_CLOCK <= t.clock <= econ.MAX_TASK_CLOCK,
        econ.MIN_TASK_DURATION <= t.duration <= econ.MAX_TASK_DURATION,
        2 <= t.arity <= 32 and t.reward >= econ.MIN_REWARD,
        econ.MIN_CHALLENGER_BOND <= t.challenger_bond <= econ.MAX_CHALLENGER_BOND,
        t.challenger_bond <= t.solver_bond <= econ.MAX_SOLVER_BOND,
    )
    if not all(task):
        return "loop: task terms outside the market's ranges"
    data = (
        1 <= t.datasets <= MAX_DATASETS and 1 <= t.features <= MAX_LAGS,
        t.dataset_rows >= 1 and t.datasets * t.dataset_rows <= 1_024,
        1 <= t.k <= 64 and t.k <= t.datasets * t.dataset_rows,
    )
    if not all(data):
        return "loop: data shape outside the market's limits"
    return None


@dataclass(frozen=True)
class Schedule:
    commit_deadline: int
    reveal_deadline: int
    trade_at: int
    end: int
    result_deadline: int


def schedule(opened_at: int, t: LoopTerms) -> Schedule:
    """A period opened at `opened_at` (SPEC 12.3)."""
    commit = opened_at + t.commit_phase
    reveal = commit + t.reveal_phase
    trade_at = reveal + t.latency
    end = trade_at + t.hold
    return Schedule(commit, reveal, trade_at, end, end + t.average + t.latency)


def pool_and_budget(assets: int, t: LoopTerms) -> tuple[int, int]:
    """What a period takes from the vault when it opens: its pool and a budget of one reward
    per program."""
    return assets * t.fee_bps // BPS, 3 * t.reward


def features(labels: Sequence[int], t: LoopTerms) -> bytes:
    """A period's features X, int8 [1, F] (SPEC 12.5): byte f is the label (the sign of the
    realized return) of the (f + 1)-th period before it, 0 where there is none. `labels` are
    the labels of the periods before it, the latest last."""
    out = bytearray(t.features)
    for f, lab in enumerate(reversed(labels[-t.features :] if labels else [])):
        out[f] = lab % 256
    return bytes(out)


def max_stake(pool: int, t: LoopTerms) -> int:
    return econ.max_model_stake(pool, t.models, t.economics)


def position(assets: int, metamodel: int, t: LoopTerms, backing: int) -> int:
    """Tokens the vault spends on the asset for a metamodel value (SPEC 12.4): none for 0 or
    below, and at most `leverage` times the stake the revealed models reserved (`backing`)."""
    signal = min(max(metamodel, 0), PRED_MAX)
    return min(assets * t.max_position_bps * signal // (100 * BPS), backing * t.leverage)


def min_out(amount: int, price: int, t: LoopTerms, buying: bool) -> int:
    """The least a trade of `amount` accepts at an average `price` (token0 per token1, 18 decimals)."""
    worth = amount * E18 // price if buying else amount * price // E18
    return worth * (BPS - t.slippage_bps) // BPS


def label(entry_price: int, exit_price: int) -> int:
    """The sign of the realized return: the scores program's label."""
    return (exit_price > entry_price) - (exit_price < entry_price)


def prediction_byte(prediction: int) -> bytes:
    """A prediction as the one int8 byte `Loop.reveal` takes."""
    if not -128 <= prediction <= 127:
        raise ValueError(f"prediction {prediction} is not an int8; give the expected return in percent, -100..100.")
    return (prediction % 256).to_bytes(1, "big")


def prediction_commitment(period_id: int, model_id: int, prediction: int, salt: bytes) -> bytes:
    """keccak256(u256(period) || u256(model) || int8 prediction || salt) (SPEC 12.2)."""
    return econ.prediction_commitment(period_id, model_id, prediction_byte(prediction), salt)


def settlement(
    amounts: Sequence[int],
    revealed: Sequence[bool],
    scores: Sequence[int],
    t: LoopTerms,
    pool: int,
    budget: int,
    named: Sequence[Sequence[int]] = (),
    datasets: Sequence[econ.DatasetEntry] = (),
) -> econ.Settlement:
    """What `settle` pays and burns: SPEC 8.5's rule with the models' reservations;
    `scores` are the 2M recorded values (own scores, then leave-one-out scores). `datasets`
    are the period's dataset slots (reservation, value, active) and `named[i]` the slots of
    the datasets model slot i names, in its order (a dataset named twice, twice)."""
    m = t.models
    models = [
        econ.ModelEntry(a, a, scores[i], bool(r), tuple(named[i]) if named else (), scores[m + i])
        for i, (a, r) in enumerate(zip(amounts, revealed, strict=True))
    ]
    s = econ.payouts(models, datasets, t.economics, pool, budget, charge_bps=t.charge_bps)
    return _forfeits(s, revealed, t)


def void_settlement(revealed: Sequence[bool], t: LoopTerms, pool: int, budget: int) -> econ.Settlement:
    """What `void` pays: the pool split evenly among the revealed models (SPEC 12.5)."""
    pay, refund = econ.void_payouts([econ.ModelEntry(0, 0, 0, bool(r)) for r in revealed], pool, budget)
    s = econ.Settlement(pay, [], sum(pay), 0, 0, refund)
    return _forfeits(s, revealed, t)


def _forfeits(s: econ.Settlement, revealed: Sequence[bool], t: LoopTerms) -> econ.Settlement:
    # a commitment never revealed forfeits min_stake, burned (SPEC 12.2)
    pay = [p - (0 if r else t.min_stake) for p, r in zip(s.model_payouts, revealed, strict=True)]
    forfeits = t.min_stake * sum(not r for r in revealed)
    return econ.Settlement(pay, s.dataset_payouts, s.paid, s.slashed + forfeits, s.burned + forfeits, s.refund, s.returns_bps)


def shape(t: LoopTerms):  # noqa: ANN201 - onnx_models.market.Shape, imported lazily (onnx)
    """The market shape of the loop's programs: the terms' model and dataset slots, one row."""
    from onnx_models.market import Shape

    return Shape(
        models=t.models, datasets=t.datasets, rows=1, features=t.features, dataset_rows=t.dataset_rows, k=t.k
    ).check()


def program_refs(t: LoopTerms) -> list[tuple]:
    """`Loop.vy`'s `programs` argument: the metamodel's, the scores' and the data values'
    references for the terms' shape."""
    from onnx_models.market import METAMODEL, SCORES, VALUES, program_ref

    out = []
    for kind in (METAMODEL, SCORES, VALUES):
        r = program_ref(kind, shape(t))
        out.append((r.graph_root, r.n_nodes, r.n_slots, r.steps, r.data_base, r.out_slot, r.template))
    return out
