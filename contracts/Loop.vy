# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title The closed loop: a vault that trades a verified metamodel, and trading periods
@notice Depositors pool the bond token in a vault; modelers stake models and, each period,
        commit and reveal a prediction of the asset's next return (docs/SPEC.md section 12).
        The stake-weighted metamodel is computed by the market's metamodel program, posted
        here as a task on `Tasks.vy`, and only once its claim is final does the vault buy the
        asset on `Pool.vy` (a position bounded by the loop's terms, with a slippage limit
        against the pool's average price). At the period's end the vault sells, and the
        realized return, read from the pool's average price at the entry and at the exit,
        becomes the label of the market's scores program, also claimed through the game.
        `settle` pays each model from the period's pool by its own score against the
        realized return plus a bounded contribution bonus, less a participation charge, and
        burns every loss.
@custom:security Trust assumptions and choices:
                 - The token is the bisectml bond token and the asset a plain ERC-20; the pool
                   is contracts/Pool.vy over them, and the task registry contracts/Tasks.vy over
                   the token. All are trusted not to call back; every mutating function is
                   `@nonreentrant` anyway and writes storage before it calls out.
                 - Nobody chooses a period's outcome: it is the pool's average price, which a
                   push held for h seconds of the average's window W moves by at most h / W of
                   the push (SPEC 11.4), while every arbitrageur trades against it.
                 - Every term is bounded by a protocol constant at deployment: phases, task
                   terms (Market.vy's ranges), position size, slippage, fee and rates. A
                   period closes within a bounded time of its opening.
                 - A trade never runs on a metamodel whose claim is not final: the metamodel is
                   recorded only from a DONE task, and the trade waits for the record. The
                   period's schedule leaves the task's claim period, challenge window and both
                   chess clocks between the reveal deadline and `trade_at` (SPEC 12.3).
                 - Deposits and withdrawals are requests that take effect together when the
                   next period opens, when the vault holds only the bond token and nothing is
                   pending: nobody can enter or leave at a price that a known outcome, a
                   pending settlement or an open position is about to move. A request not yet
                   taken in can be cancelled.
                 - Every slash is burned, so nobody gains from another's loss; gains come out
                   of the period's pool, which each model's reservation is sized to fit.
                 - The contract holds `owed()`: the vault, requests, unclaimed withdrawals,
                   stakes, and the open period's pool and budget, plus task rewards that
                   `Tasks.reclaim` returned and `sync` has not yet accounted.
"""

from ethereum.ercs import IERC20
from contracts import Tasks
from contracts.lib import merkle


interface IBurnable:
    def burn(amount: uint256): nonpayable


interface IVault:
    def token() -> address: view
    def assets() -> uint256: view
    def turn() -> uint256: nonpayable
    def lend(amount: uint256): nonpayable
    def repay(amount: uint256): nonpayable


interface IAvailability:
    def available(commitment: bytes32) -> bool: view


interface IPool:
    def token0() -> address: view
    def token1() -> address: view
    def twap(window: uint256) -> (uint256, uint256): view
    def swap(token_in: address, amount_in: uint256, min_out: uint256, to: address) -> uint256: nonpayable


# --- constants (docs/SPEC.md 12.1; verifier/market/economics.py mirrors them) ----------------

MAX_MODELS: constant(uint256) = 16
# the values program's limits (Market.vy's, SPEC 8.1); a model names at most MODEL_DATASETS
MAX_DATASETS: constant(uint256) = 8
MODEL_DATASETS: constant(uint256) = 8
MAX_POINTS: constant(uint256) = 1_024
MAX_K: constant(uint256) = 64
# a period's features are the labels of the `features` periods before it
MAX_LAGS: constant(uint256) = 16
MAX_DATA_SLASH_BPS: constant(uint256) = 1_000
BPS: constant(uint256) = 10_000
WEIGHT_UNIT: constant(uint256) = 10**15
MAX_WEIGHT: constant(uint256) = 2**40 - 1
MAX_FACTOR_BPS: constant(uint256) = 1_000_000
MAX_CAP_BPS: constant(uint256) = 2_500
BONUS_CAP_DIVISOR: constant(uint256) = 4
# every revealed model pays bonus_bps / 2 a period (rounded up), burned: a zero-skill
# prediction's bonus is worth at most that in expectation (SPEC 12.5)
CHARGE_DIVISOR: constant(uint256) = 2
# a period's pool is at most 2% of the vault; a position at most half of it
MAX_FEE_BPS: constant(uint256) = 200
MAX_POSITION_BPS: constant(uint256) = 5_000
MAX_LEVERAGE: constant(uint256) = 100
# the slippage limit lies between the pool's fee (0.3%) and 5%
MIN_SLIPPAGE_BPS: constant(uint256) = 30
MAX_SLIPPAGE_BPS: constant(uint256) = 500
# commit phase 1 hour .. 30 days; reveal phase 1 .. 7 days (longer than censorship of a reveal)
MIN_COMMIT_PHASE: constant(uint256) = 3_600
MAX_COMMIT_PHASE: constant(uint256) = 2_592_000
MIN_PHASE: constant(uint256) = 86_400
MAX_PHASE: constant(uint256) = 604_800
# holding period 1 hour .. 30 days; the average's window 10 minutes .. the holding period
MIN_HOLD: constant(uint256) = 3_600
MAX_HOLD: constant(uint256) = 2_592_000
MIN_AVERAGE: constant(uint256) = 600
# task terms: Market.vy's ranges (SPEC 8.1)
MIN_WINDOW: constant(uint256) = 172_800
MAX_TASK_WINDOW: constant(uint256) = 604_800
MIN_CLOCK: constant(uint256) = 172_800
MAX_TASK_CLOCK: constant(uint256) = 604_800
MIN_ARITY: constant(uint256) = 2
MAX_ARITY: constant(uint256) = 32
MIN_TASK_DURATION: constant(uint256) = 86_400
MAX_TASK_DURATION: constant(uint256) = 604_800
MIN_REWARD: constant(uint256) = 10**18
MAX_SOLVER_BOND: constant(uint256) = 10**22
MAX_NODES: constant(uint256) = 4_294_967_294
MAX_STEPS: constant(uint256) = 9_223_372_036_854_775_807
# the prediction's and the metamodel's range (the programs clip predictions to it)
PRED_MAX: constant(int256) = 100

CHUNK: constant(uint256) = 2048
MAX_SLOTS: constant(uint256) = 512
MAX_PROOF: constant(uint256) = 9
INT64_MIN: constant(int256) = -(2**63)
INT64_MAX: constant(int256) = 2**63 - 1
DT_INT8: constant(uint256) = 3
DT_INT64: constant(uint256) = 7

# Revert reasons. Checks call `_check(ok, E_...)`, which reverts with Error(string) where
# the string is REASONS[code >> 8 : (code >> 8) + (code & 255)], as in Market.vy: one shared
# revert instead of ~130 bytes of code per inline reason keeps the loop under EIP-170's
# 24_576 bytes. tests/contracts/test_loop.py checks every code against this table.
REASONS: constant(String[1784]) = (
    "zero token"
    "pool of other tokens"
    "tasks uses another token"
    "vault of another token"
    "program outside Tasks.vy's limits"
    "program slots past its slot table"
    "models outside 1..16"
    "a phase outside its bounds"
    "a rate outside the protocol's bounds"
    "task terms outside the market's ranges"
    "amount exceeds the free stake"
    "the vault cannot pay the period's pool and tasks"
    "a period is open"
    "the last period's position is not sold; call unwind"
    "commit deadline passed"
    "model already committed"
    "stake below the minimum"
    "stake above the period's maximum"
    "model slots full of reservations at least as large"
    "commit deadline not reached"
    "reveal deadline passed"
    "model not committed or already revealed"
    "a prediction is one byte"
    "prediction does not match the commitment"
    "no model revealed"
    "reveal deadline not reached"
    "the period's exit passed"
    "position not closed"
    "result deadline passed"
    "the kind's task is still running"
    "the kind's task is done"
    "slots are not the program's template"
    "token call failed"
    "result already recorded"
    "wrong number of values"
    "value outside int64"
    "no task of this kind"
    "task not done; finalize a claim first"
    "not the claim's final state"
    "wrong proof length"
    "proof does not open the result"
    "trade_at not reached"
    "nothing to trade; the entry was missed or the metamodel is not recorded"
    "the period's exit not reached"
    "position already closed"
    "no position to sell"
    "the pool refused the exit; call unwind once its price is back near its average"
    "scores not recorded"
    "result deadline not reached"
    "the pool's average price is 0"
    "no such period"
    "period already ended"
    "no such model"
    "not the model owner"
    "kind is not 0, 1 or 2"
    "results recorded; settle the period"
    "data shape outside the market's limits"
    "no such dataset"
    "not the dataset owner"
    "data not published on Availability.vy"
    "dataset already joined"
    "dataset slots full of reservations at least as large"
    "no dataset active"
    "data values not recorded"
)
E_ZERO_TOKEN: constant(uint256) = 0 << 8 | 10
E_POOL_OTHER_TOKENS: constant(uint256) = 10 << 8 | 20
E_TASKS_USES_ANOTHER_TOKEN: constant(uint256) = 30 << 8 | 24
E_VAULT_ANOTHER_TOKEN: constant(uint256) = 54 << 8 | 22
E_PROGRAM_OUTSIDE_LIMITS: constant(uint256) = 76 << 8 | 33
E_SLOTS_PAST_TABLE: constant(uint256) = 109 << 8 | 33
E_MODELS_OUTSIDE_1_16: constant(uint256) = 142 << 8 | 20
E_PHASE_OUTSIDE_BOUNDS: constant(uint256) = 162 << 8 | 26
E_RATE_OUTSIDE_BOUNDS: constant(uint256) = 188 << 8 | 36
E_TASK_TERMS_OUTSIDE: constant(uint256) = 224 << 8 | 38
E_ABOVE_FREE_STAKE: constant(uint256) = 262 << 8 | 29
E_VAULT_CANNOT_PAY: constant(uint256) = 291 << 8 | 48
E_PERIOD_OPEN: constant(uint256) = 339 << 8 | 16
E_POSITION_NOT_SOLD: constant(uint256) = 355 << 8 | 51
E_COMMIT_DEADLINE_PASSED: constant(uint256) = 406 << 8 | 22
E_MODEL_ALREADY_COMMITTED: constant(uint256) = 428 << 8 | 23
E_STAKE_BELOW_MINIMUM: constant(uint256) = 451 << 8 | 23
E_STAKE_ABOVE_MAXIMUM: constant(uint256) = 474 << 8 | 32
E_MODEL_SLOTS_FULL: constant(uint256) = 506 << 8 | 50
E_COMMIT_DEADLINE_NOT_REACHED: constant(uint256) = 556 << 8 | 27
E_REVEAL_DEADLINE_PASSED: constant(uint256) = 583 << 8 | 22
E_NOT_COMMITTED_OR_REVEALED: constant(uint256) = 605 << 8 | 39
E_PREDICTION_ONE_BYTE: constant(uint256) = 644 << 8 | 24
E_PREDICTION_DOES_NOT_MATCH: constant(uint256) = 668 << 8 | 40
E_NO_MODEL_REVEALED: constant(uint256) = 708 << 8 | 17
E_REVEAL_DEADLINE_NOT_REACHED: constant(uint256) = 725 << 8 | 27
E_PERIOD_EXIT_PASSED: constant(uint256) = 752 << 8 | 24
E_POSITION_NOT_CLOSED: constant(uint256) = 776 << 8 | 19
E_RESULT_DEADLINE_PASSED: constant(uint256) = 795 << 8 | 22
E_KIND_TASK_RUNNING: constant(uint256) = 817 << 8 | 32
E_KIND_TASK_DONE: constant(uint256) = 849 << 8 | 23
E_SLOTS_ARE_NOT_PROGRAM: constant(uint256) = 872 << 8 | 36
E_TOKEN_FAILED: constant(uint256) = 908 << 8 | 17
E_RESULT_ALREADY_RECORDED: constant(uint256) = 925 << 8 | 23
E_WRONG_NUMBER_VALUES: constant(uint256) = 948 << 8 | 22
E_VALUE_OUTSIDE_INT64: constant(uint256) = 970 << 8 | 19
E_NO_TASK_OF_KIND: constant(uint256) = 989 << 8 | 20
E_TASK_NOT_DONE: constant(uint256) = 1009 << 8 | 37
E_NOT_FINAL_STATE: constant(uint256) = 1046 << 8 | 27
E_WRONG_PROOF_LENGTH: constant(uint256) = 1073 << 8 | 18
E_PROOF_DOES_NOT_OPEN: constant(uint256) = 1091 << 8 | 30
E_TRADE_AT_NOT_REACHED: constant(uint256) = 1121 << 8 | 20
E_NOTHING_TO_TRADE: constant(uint256) = 1141 << 8 | 71
E_PERIOD_EXIT_NOT_REACHED: constant(uint256) = 1212 << 8 | 29
E_POSITION_ALREADY_CLOSED: constant(uint256) = 1241 << 8 | 23
E_NO_POSITION_SELL: constant(uint256) = 1264 << 8 | 19
E_POOL_REFUSED_EXIT: constant(uint256) = 1283 << 8 | 78
E_SCORES_NOT_RECORDED: constant(uint256) = 1361 << 8 | 19
E_RESULT_DEADLINE_NOT_REACHED: constant(uint256) = 1380 << 8 | 27
E_AVERAGE_PRICE_ZERO: constant(uint256) = 1407 << 8 | 29
E_NO_SUCH_PERIOD: constant(uint256) = 1436 << 8 | 14
E_PERIOD_ALREADY_ENDED: constant(uint256) = 1450 << 8 | 20
E_NO_SUCH_MODEL: constant(uint256) = 1470 << 8 | 13
E_NOT_MODEL_OWNER: constant(uint256) = 1483 << 8 | 19
E_KIND: constant(uint256) = 1502 << 8 | 21
E_RESULTS_RECORDED: constant(uint256) = 1523 << 8 | 35
E_DATA_SHAPE: constant(uint256) = 1558 << 8 | 38
E_NO_SUCH_DATASET: constant(uint256) = 1596 << 8 | 15
E_NOT_DATASET_OWNER: constant(uint256) = 1611 << 8 | 21
E_DATA_NOT_PUBLISHED: constant(uint256) = 1632 << 8 | 37
E_DATASET_ALREADY_JOINED: constant(uint256) = 1669 << 8 | 22
E_DATASET_SLOTS_FULL: constant(uint256) = 1691 << 8 | 52
E_NO_DATASET_ACTIVE: constant(uint256) = 1743 << 8 | 17
E_VALUES_NOT_RECORDED: constant(uint256) = 1760 << 8 | 24

KIND_METAMODEL: constant(uint256) = 0
KIND_SCORES: constant(uint256) = 1
KIND_VALUES: constant(uint256) = 2
KINDS: constant(uint256) = 3

PERIOD_OPEN: constant(uint8) = 1
PERIOD_SETTLED: constant(uint8) = 2
PERIOD_VOID: constant(uint8) = 3

ENTRY_COMMITTED: constant(uint8) = 1
ENTRY_REVEALED: constant(uint8) = 2
ENTRY_RELEASED: constant(uint8) = 3

TASK_OPEN: constant(uint8) = 1
TASK_DONE: constant(uint8) = 2
TASK_RECLAIMED: constant(uint8) = 3


# --- structs ---------------------------------------------------------------------------------


struct ProgramRef:
    graph_root: bytes32
    n_nodes: uint256
    n_slots: uint256
    steps: uint256
    data_base: uint256
    out_slot: uint256
    template: bytes32


struct Terms:
    # model slots of every period (the programs are built for this many)
    models: uint256
    commit_phase: uint256
    reveal_phase: uint256
    # seconds from the entry to the exit
    hold: uint256
    # window W of the pool's average price read at the entry and at the exit
    average: uint256
    # largest position, bps of the vault, at the strongest signal (|metamodel| = 100)
    max_position_bps: uint256
    # and at most this many times the stake the revealed models reserved: skin behind the signal
    leverage: uint256
    # the least a trade accepts, bps below the average price's worth
    slippage_bps: uint256
    # the period's pool, bps of the vault when it opens
    fee_bps: uint256
    factor_bps: uint256
    cap_bps: uint256
    bonus_bps: uint256
    min_stake: uint256
    # terms of the period's two tasks
    reward: uint256
    window: uint256
    clock: uint256
    duration: uint256
    solver_bond: uint256
    challenger_bond: uint256
    arity: uint256
    # D dataset slots of every period, each dataset R rows of F features (the values program
    # is built for them, with k neighbours); F is also how many past labels a period's features hold
    datasets: uint256
    features: uint256
    dataset_rows: uint256
    k: uint256
    # what a model passes on of its gain to its positively valued datasets, and what a
    # negatively valued dataset loses of its reservation, burned (SPEC 8.5)
    data_share_bps: uint256
    data_slash_bps: uint256


struct Period:
    state: uint8
    commit_deadline: uint256
    reveal_deadline: uint256
    # earliest entry; the entry's average must be read before trade_at + average
    trade_at: uint256
    # the exit: trade_at + hold
    end: uint256
    # the scores must be recorded before this, or the period voids
    result_deadline: uint256
    pool: uint256
    budget: uint256
    max_stake: uint256
    # model slots taken and models revealed
    models: uint256
    revealed: uint256
    # the stake the revealed models reserved
    backing: uint256
    # bit k: the result of kind k is recorded
    recorded: uint256
    metamodel: int256
    # average prices (18 decimals) at the entry and the exit; 0: not read
    entry_price: uint256
    exit_price: uint256
    # what the vault paid for its position, the asset it holds and what the exit returned
    spent: uint256
    position: uint256
    proceeds: uint256
    traded: bool
    closed: bool
    # sign of the realized return: the scores program's label (0: unscored)
    label: int256
    # dataset slots taken, and datasets active (joined and named by a revealed model)
    datasets: uint256
    active: uint256


struct Entry:
    slot: uint256
    amount: uint256
    state: uint8
    commitment: bytes32


struct Model:
    owner: address
    stake: uint256
    reserved: uint256


struct Dataset:
    owner: address
    # tensor commitments of X_d, int8 [dataset_rows, features], and L_d, int8 [dataset_rows]
    features: bytes32
    labels: bytes32
    stake: uint256
    reserved: uint256


struct DataEntry:
    slot: uint256
    # its reservation, 0 once freed
    at_risk: uint256
    joined: bool
    # a revealed model names it: valued, and slashed if its value is negative
    active: bool


# --- events ----------------------------------------------------------------------------------


event ModelRegistered:
    model_id: indexed(uint256)
    owner: indexed(address)
    datasets: DynArray[uint256, MODEL_DATASETS]


event StakeChanged:
    model_id: indexed(uint256)
    stake: uint256
    reserved: uint256


event DatasetPublished:
    dataset_id: indexed(uint256)
    owner: indexed(address)
    features: bytes32
    labels: bytes32
    stake: uint256


event DataStakeChanged:
    dataset_id: indexed(uint256)
    stake: uint256
    reserved: uint256


event Joined:
    period_id: indexed(uint256)
    dataset_id: indexed(uint256)
    slot: uint256
    amount: uint256


event DataDisplaced:
    period_id: indexed(uint256)
    dataset_id: indexed(uint256)
    slot: uint256


event DataPaid:
    period_id: indexed(uint256)
    dataset_id: indexed(uint256)
    amount: int256


event PeriodOpened:
    period_id: indexed(uint256)
    pool: uint256
    budget: uint256
    max_stake: uint256
    trade_at: uint256
    end: uint256


event Committed:
    period_id: indexed(uint256)
    model_id: indexed(uint256)
    slot: uint256
    amount: uint256


event Displaced:
    period_id: indexed(uint256)
    model_id: indexed(uint256)
    slot: uint256


event Revealed:
    period_id: indexed(uint256)
    model_id: indexed(uint256)
    prediction: Bytes[1]


event TaskPosted:
    period_id: indexed(uint256)
    kind: uint256
    task_id: uint256


event Recorded:
    period_id: indexed(uint256)
    kind: uint256
    commitment: bytes32


event Traded:
    period_id: indexed(uint256)
    entry_price: uint256
    spent: uint256
    position: uint256


event Closed:
    period_id: indexed(uint256)
    exit_price: uint256
    label: int256


event Unwound:
    period_id: indexed(uint256)
    sold: uint256
    proceeds: uint256


event Paid:
    period_id: indexed(uint256)
    model_id: indexed(uint256)
    amount: int256


event PeriodEnded:
    period_id: indexed(uint256)
    state: uint8
    burned: uint256
    to_vault: uint256


# --- storage ---------------------------------------------------------------------------------

token: public(immutable(IERC20))
asset: public(immutable(IERC20))
pool: public(immutable(IPool))
tasks: public(immutable(Tasks.__interface__))
vault: public(immutable(IVault))
availability: public(immutable(IAvailability))

terms: public(Terms)
# kind 0 (metamodel), 1 (scores) and 2 (data values), built for the terms' shape and one row
programs: public(ProgramRef[KINDS])

models: public(HashMap[uint256, Model])
# model => the datasets it was trained on: their share of its gains (SPEC 12.5; ModelRegistered logs them)
named: HashMap[uint256, DynArray[uint256, MODEL_DATASETS]]
model_count: public(uint256)

periods: public(HashMap[uint256, Period])
period_count: public(uint256)
entries: public(HashMap[uint256, HashMap[uint256, Entry]])
# period => slot => model id (slots in commit order)
slot_model: public(HashMap[uint256, HashMap[uint256, uint256]])
# period => slot => the revealed prediction and its commitment as an int8 [1] tensor
predictions: public(HashMap[uint256, HashMap[uint256, Bytes[1]]])
prediction_commitment: HashMap[uint256, HashMap[uint256, bytes32]]
# period => 2M values: own scores, then leave-one-out scores
_scores: HashMap[uint256, DynArray[int256, 2 * MAX_MODELS]]
# period => D values of the datasets' slots
_values: HashMap[uint256, DynArray[int256, MAX_DATASETS]]
datasets: public(HashMap[uint256, Dataset])
dataset_count: public(uint256)
data_entries: public(HashMap[uint256, HashMap[uint256, DataEntry]])
# period => slot => dataset id (slots in join order)
slot_dataset: public(HashMap[uint256, HashMap[uint256, uint256]])
# period => its features X, int8 [1, F], in the first F bytes: the labels of the F periods before it
features: public(HashMap[uint256, bytes32])
task_of: public(HashMap[uint256, HashMap[uint256, uint256]])
task_reward: public(HashMap[uint256, HashMap[uint256, uint256]])

# everything the contract owes (see owed())
owed: public(uint256)
burned: public(uint256)
# REASONS, written once at deployment: out of the runtime code, which EIP-170 bounds
_reasons: String[1784]


@deploy
def __init__(
    token_: IERC20, asset_: IERC20, pool_: IPool, tasks_: address, vault_: IVault, terms_: Terms, programs_: ProgramRef[KINDS]
):
    self._reasons = REASONS
    self._check(token_.address != empty(address) and asset_.address != empty(address), E_ZERO_TOKEN)
    self._check(staticcall pool_.token0() == token_.address and staticcall pool_.token1() == asset_.address, E_POOL_OTHER_TOKENS)
    self._check((staticcall Tasks.__interface__(tasks_).token()).address == token_.address, E_TASKS_USES_ANOTHER_TOKEN)
    self._check(staticcall vault_.token() == token_.address, E_VAULT_ANOTHER_TOKEN)
    self._require_terms(terms_)
    for p: ProgramRef in programs_:
        self._check(p.n_nodes <= MAX_NODES and p.steps >= 1 and p.steps <= MAX_STEPS, E_PROGRAM_OUTSIDE_LIMITS)
        self._check(p.n_slots >= 1 and p.n_slots <= MAX_SLOTS, E_PROGRAM_OUTSIDE_LIMITS)
        self._check(p.out_slot < p.n_slots, E_SLOTS_PAST_TABLE)
    self._check(programs_[0].data_base + 1 + terms_.models <= programs_[0].n_slots, E_SLOTS_PAST_TABLE)
    self._check(programs_[1].data_base + 2 + terms_.models <= programs_[1].n_slots, E_SLOTS_PAST_TABLE)
    self._check(programs_[2].data_base + 3 + 2 * terms_.datasets <= programs_[2].n_slots, E_SLOTS_PAST_TABLE)
    token = token_
    asset = asset_
    pool = pool_
    tasks = Tasks.__interface__(tasks_)
    vault = vault_
    availability = IAvailability((staticcall Tasks.__interface__(tasks_).availability()).address)
    self.terms = terms_
    self.programs = programs_


@internal
@view
def _require_terms(t: Terms):
    self._check(t.models >= 1 and t.models <= MAX_MODELS, E_MODELS_OUTSIDE_1_16)
    self._check(t.commit_phase >= MIN_COMMIT_PHASE and t.commit_phase <= MAX_COMMIT_PHASE, E_PHASE_OUTSIDE_BOUNDS)
    self._check(t.reveal_phase >= MIN_PHASE and t.reveal_phase <= MAX_PHASE, E_PHASE_OUTSIDE_BOUNDS)
    self._check(t.hold >= MIN_HOLD and t.hold <= MAX_HOLD, E_PHASE_OUTSIDE_BOUNDS)
    self._check(t.average >= MIN_AVERAGE and t.average <= t.hold, E_PHASE_OUTSIDE_BOUNDS)
    self._check(t.max_position_bps <= MAX_POSITION_BPS, E_RATE_OUTSIDE_BOUNDS)
    self._check(t.leverage >= 1 and t.leverage <= MAX_LEVERAGE, E_RATE_OUTSIDE_BOUNDS)
    self._check(t.slippage_bps >= MIN_SLIPPAGE_BPS and t.slippage_bps <= MAX_SLIPPAGE_BPS, E_RATE_OUTSIDE_BOUNDS)
    self._check(t.fee_bps <= MAX_FEE_BPS and t.factor_bps <= MAX_FACTOR_BPS, E_RATE_OUTSIDE_BOUNDS)
    self._check(t.cap_bps <= MAX_CAP_BPS and t.bonus_bps * BONUS_CAP_DIVISOR <= t.cap_bps, E_RATE_OUTSIDE_BOUNDS)
    self._check(t.min_stake > 0, E_RATE_OUTSIDE_BOUNDS)
    self._check(t.data_share_bps <= BPS and t.data_slash_bps <= MAX_DATA_SLASH_BPS, E_RATE_OUTSIDE_BOUNDS)
    ok: bool = t.window >= MIN_WINDOW and t.window <= MAX_TASK_WINDOW
    ok = ok and t.clock >= MIN_CLOCK and t.clock <= MAX_TASK_CLOCK
    ok = ok and t.duration >= MIN_TASK_DURATION and t.duration <= MAX_TASK_DURATION
    ok = ok and t.arity >= MIN_ARITY and t.arity <= MAX_ARITY and t.reward >= MIN_REWARD
    ok = ok and t.challenger_bond >= Tasks.MIN_CHALLENGER_BOND and t.challenger_bond <= Tasks.MAX_CHALLENGER_BOND
    ok = ok and t.solver_bond >= t.challenger_bond and t.solver_bond <= MAX_SOLVER_BOND
    self._check(ok, E_TASK_TERMS_OUTSIDE)
    ok = t.datasets >= 1 and t.datasets <= MAX_DATASETS and t.features >= 1 and t.features <= MAX_LAGS
    ok = ok and t.dataset_rows >= 1 and t.datasets * t.dataset_rows <= MAX_POINTS
    ok = ok and t.k >= 1 and t.k <= MAX_K and t.k <= t.datasets * t.dataset_rows
    self._check(ok, E_DATA_SHAPE)


# --- models ----------------------------------------------------------------------------------


@external
def register(datasets: DynArray[uint256, MODEL_DATASETS] = []) -> uint256:
    """
    @notice Registers a model owned by the caller, trained on `datasets`: a share of its gains
            goes to those of them that join a period and are valued positively in it (SPEC
            12.5). The list is the modeler's word and is not checked: a dataset named twice
            counts twice in the proportion, an id never published never joins.
    """
    model_id: uint256 = self.model_count + 1
    self.model_count = model_id
    self.models[model_id].owner = msg.sender
    self.named[model_id] = datasets
    log ModelRegistered(model_id=model_id, owner=msg.sender, datasets=datasets)
    return model_id


@external
@nonreentrant
def add_stake(model_id: uint256, amount: uint256):
    self._require_model_owner(model_id)
    self.models[model_id].stake += amount
    self.owed += amount
    log StakeChanged(model_id=model_id, stake=self.models[model_id].stake, reserved=self.models[model_id].reserved)
    self._pull(amount)


@external
@nonreentrant
def withdraw_stake(model_id: uint256, amount: uint256):
    """@notice Takes back free stake (stake not reserved by a period)."""
    self._require_model_owner(model_id)
    stake: uint256 = self.models[model_id].stake
    reserved: uint256 = self.models[model_id].reserved
    self._check(amount <= stake - reserved, E_ABOVE_FREE_STAKE)
    self.models[model_id].stake = stake - amount
    self.owed -= amount
    log StakeChanged(model_id=model_id, stake=stake - amount, reserved=reserved)
    self._push(msg.sender, amount)


# --- datasets --------------------------------------------------------------------------------


@external
@nonreentrant
def publish_dataset(features_root: bytes32, labels_root: bytes32, stake: uint256) -> uint256:
    """
    @notice Publishes a dataset of the loop's shape and pulls `stake`: `features_root` and
            `labels_root` are the data roots of X_d, int8 [dataset_rows, features], and L_d,
            int8 [dataset_rows] (-1 or 1), whose bytes must be on Availability.vy first. The
            loop computes both commitments itself, so no dataset of another shape can join.
    """
    rows: uint256 = self.terms.dataset_rows
    features: bytes32 = self._tensor_commitment(DT_INT8 << 248 | 2 << 240 | rows << 208 | self.terms.features << 176, features_root)
    labels: bytes32 = self._tensor_commitment(DT_INT8 << 248 | 1 << 240 | rows << 208, labels_root)
    # no program may take an input a verifier cannot fetch: the bytes are in the chain's history
    self._check(staticcall availability.available(features) and staticcall availability.available(labels), E_DATA_NOT_PUBLISHED)
    dataset_id: uint256 = self.dataset_count + 1
    self.dataset_count = dataset_id
    self.datasets[dataset_id] = Dataset(owner=msg.sender, features=features, labels=labels, stake=stake, reserved=0)
    self.owed += stake
    log DatasetPublished(dataset_id=dataset_id, owner=msg.sender, features=features, labels=labels, stake=stake)
    self._pull(stake)
    return dataset_id


@external
@nonreentrant
def add_data_stake(dataset_id: uint256, amount: uint256):
    self._require_dataset_owner(dataset_id)
    self.datasets[dataset_id].stake += amount
    self.owed += amount
    log DataStakeChanged(dataset_id=dataset_id, stake=self.datasets[dataset_id].stake, reserved=self.datasets[dataset_id].reserved)
    self._pull(amount)


@external
@nonreentrant
def withdraw_data_stake(dataset_id: uint256, amount: uint256):
    """@notice Takes back free stake (stake not reserved by a period)."""
    self._require_dataset_owner(dataset_id)
    d: Dataset = self.datasets[dataset_id]
    self._check(amount <= d.stake - d.reserved, E_ABOVE_FREE_STAKE)
    self.datasets[dataset_id].stake = d.stake - amount
    self.owed -= amount
    log DataStakeChanged(dataset_id=dataset_id, stake=d.stake - amount, reserved=d.reserved)
    self._push(msg.sender, amount)


@external
def join(period_id: uint256, dataset_id: uint256, amount: uint256):
    """
    @notice Puts the dataset in the period (its owner, before the commit deadline) and reserves
            `amount` of its free stake until the period ends. Once the D slots are full, a
            larger reservation takes the slot of the smallest (the first of equals), whose
            reservation is freed (SPEC 12.5). It is valued, and may be slashed, only if a
            model naming it reveals.
    """
    self._require_dataset_owner(dataset_id)
    self._require_open(period_id)
    self._check(block.timestamp < self.periods[period_id].commit_deadline, E_COMMIT_DEADLINE_PASSED)
    self._check(not self.data_entries[period_id][dataset_id].joined, E_DATASET_ALREADY_JOINED)
    self._check(amount >= self.terms.min_stake, E_STAKE_BELOW_MINIMUM)
    d: Dataset = self.datasets[dataset_id]
    self._check(amount <= d.stake - d.reserved, E_ABOVE_FREE_STAKE)
    slot: uint256 = self.periods[period_id].datasets
    if slot == self.terms.datasets:
        out: uint256 = 0
        least: uint256 = 0
        slot, out, least = self._smallest(period_id, True)
        self._check(amount > least, E_DATASET_SLOTS_FULL)
        self.datasets[out].reserved -= least
        self.data_entries[period_id][out] = empty(DataEntry)
        log DataDisplaced(period_id=period_id, dataset_id=out, slot=slot)
    else:
        self.periods[period_id].datasets = slot + 1
    self.datasets[dataset_id].reserved = d.reserved + amount
    self.data_entries[period_id][dataset_id] = DataEntry(slot=slot, at_risk=amount, joined=True, active=False)
    self.slot_dataset[period_id][slot] = dataset_id
    log Joined(period_id=period_id, dataset_id=dataset_id, slot=slot, amount=amount)


# --- periods ---------------------------------------------------------------------------------


@external
@nonreentrant
def open_period() -> uint256:
    """
    @notice Opens the next period (anyone), once the last one is settled or void: takes in
            the requests, then sets the period's pool and task budget aside from the vault.
    """
    last: uint256 = self._require_between_periods()
    # the vault takes in its requests now, when nothing of the last period is pending
    assets: uint256 = extcall vault.turn()
    t: Terms = self.terms
    fee: uint256 = assets * t.fee_bps // BPS
    budget: uint256 = KINDS * t.reward
    self._check(assets >= fee + budget, E_VAULT_CANNOT_PAY)
    self.owed += fee + budget
    p: uint256 = last + 1
    self.period_count = p
    # the task's claim period, challenge window and both chess clocks: a claim posted at the
    # reveal deadline is final (or rejected) by trade_at, and the scores' by result_deadline
    latency: uint256 = t.duration + t.window + 2 * t.clock
    commit_deadline: uint256 = block.timestamp + t.commit_phase
    reveal_deadline: uint256 = commit_deadline + t.reveal_phase
    trade_at: uint256 = reveal_deadline + latency
    end: uint256 = trade_at + t.hold
    # at the largest return every slot's gain fits its 1/M of the pool (SPEC 8.5)
    max_stake: uint256 = fee * BPS // ((t.cap_bps + t.bonus_bps) * t.models + 1)
    # a new period's storage is all zero: only what is not zero is written
    self.periods[p].state = PERIOD_OPEN
    self.periods[p].commit_deadline = commit_deadline
    self.periods[p].reveal_deadline = reveal_deadline
    self.periods[p].trade_at = trade_at
    self.periods[p].end = end
    self.periods[p].result_deadline = end + t.average + latency
    self.periods[p].pool = fee
    self.periods[p].budget = budget
    self.periods[p].max_stake = max_stake
    # X: the labels (signs of the realized returns) of the F periods before this one, latest
    # first, as int8; known to all before anyone commits
    word: uint256 = 0
    for f: uint256 in range(min(t.features, last), bound=MAX_LAGS):
        word |= convert(self.periods[last - f].label + 256, uint256) % 256 << (248 - 8 * f)
    self.features[p] = convert(word, bytes32)
    log PeriodOpened(period_id=p, pool=fee, budget=budget, max_stake=max_stake, trade_at=trade_at, end=end)
    extcall vault.lend(fee + budget)
    return p


@external
@nonreentrant
def turn():
    """
    @notice Takes in the vault's requests between periods (anyone): depositors can leave even
            when the vault has become too small to open a period.
    """
    self._require_between_periods()
    extcall vault.turn()


@internal
@view
def _require_between_periods() -> uint256:
    # the last period ended and its position is sold: the vault holds only the bond token
    last: uint256 = self.period_count
    self._check(last == 0 or self.periods[last].state != PERIOD_OPEN, E_PERIOD_OPEN)
    self._check(self.periods[last].position == 0, E_POSITION_NOT_SOLD)
    return last


@external
def commit(period_id: uint256, model_id: uint256, commitment: bytes32, amount: uint256):
    """
    @notice Commits the model's prediction and reserves `amount` of its free stake for the
            period. Once the `M` slots are full, a larger reservation takes the slot of the
            smallest (the first of equals), whose reservation is freed (SPEC 12.2).
    """
    self._require_model_owner(model_id)
    self._require_open(period_id)
    self._check(block.timestamp < self.periods[period_id].commit_deadline, E_COMMIT_DEADLINE_PASSED)
    self._check(self.entries[period_id][model_id].state == 0, E_MODEL_ALREADY_COMMITTED)
    self._check(amount >= self.terms.min_stake, E_STAKE_BELOW_MINIMUM)
    self._check(amount <= self.periods[period_id].max_stake, E_STAKE_ABOVE_MAXIMUM)
    reserved: uint256 = self.models[model_id].reserved
    self._check(amount <= self.models[model_id].stake - reserved, E_ABOVE_FREE_STAKE)
    slot: uint256 = self.periods[period_id].models
    if slot == self.terms.models:
        # full: first come would let sybils hold every slot for min_stake each
        out: uint256 = 0
        least: uint256 = 0
        slot, out, least = self._smallest(period_id, False)
        self._check(amount > least, E_MODEL_SLOTS_FULL)
        self.models[out].reserved -= least
        self.entries[period_id][out] = empty(Entry)
        log Displaced(period_id=period_id, model_id=out, slot=slot)
    else:
        self.periods[period_id].models = slot + 1
    self.models[model_id].reserved = reserved + amount
    self.entries[period_id][model_id] = Entry(slot=slot, amount=amount, state=ENTRY_COMMITTED, commitment=commitment)
    self.slot_model[period_id][slot] = model_id
    log Committed(period_id=period_id, model_id=model_id, slot=slot, amount=amount)


@external
def reveal(period_id: uint256, model_id: uint256, prediction: Bytes[1], salt: bytes32):
    """
    @notice Reveals a committed prediction (anyone with the preimage): one int8, the return
            in percent the model expects, -100 ..= 100 (SPEC 12.2).
    """
    self._require_open(period_id)
    self._check(block.timestamp >= self.periods[period_id].commit_deadline, E_COMMIT_DEADLINE_NOT_REACHED)
    self._check(block.timestamp < self.periods[period_id].reveal_deadline, E_REVEAL_DEADLINE_PASSED)
    entry: Entry = self.entries[period_id][model_id]
    self._check(entry.state == ENTRY_COMMITTED, E_NOT_COMMITTED_OR_REVEALED)
    self._check(len(prediction) == 1, E_PREDICTION_ONE_BYTE)
    preimage: Bytes[97] = concat(convert(period_id, bytes32), convert(model_id, bytes32), prediction, salt)
    self._check(keccak256(preimage) == entry.commitment, E_PREDICTION_DOES_NOT_MATCH)
    self.entries[period_id][model_id].state = ENTRY_REVEALED
    self.predictions[period_id][entry.slot] = prediction
    self.prediction_commitment[period_id][entry.slot] = self._int8_commitment(prediction)
    self.periods[period_id].revealed = self.periods[period_id].revealed + 1
    self.periods[period_id].backing += entry.amount
    # joining precedes every reveal (the commit deadline), so a model's datasets are all known
    for d: uint256 in self.named[model_id]:
        if self.data_entries[period_id][d].joined and not self.data_entries[period_id][d].active:
            self.data_entries[period_id][d].active = True
            self.periods[period_id].active += 1
    log Revealed(period_id=period_id, model_id=model_id, prediction=prediction)


@external
@nonreentrant
def post_task(period_id: uint256, kind: uint256, slots: DynArray[bytes32, MAX_SLOTS]) -> uint256:
    """
    @notice Posts the metamodel (kind 0, after the reveal deadline) or the scores (kind 1,
            after the exit) as a task on Tasks.vy (anyone), paid from the period's budget.
            `slots` is the program's template; the loop writes the period's data into it.
    """
    self._require_open(period_id)
    self._check(kind < KINDS, E_KIND)
    self._check(self.periods[period_id].revealed > 0, E_NO_MODEL_REVEALED)
    self._check(kind != KIND_VALUES or self.periods[period_id].active > 0, E_NO_DATASET_ACTIVE)
    if kind == KIND_METAMODEL:
        self._check(block.timestamp >= self.periods[period_id].reveal_deadline, E_REVEAL_DEADLINE_NOT_REACHED)
        self._check(block.timestamp < self.periods[period_id].end, E_PERIOD_EXIT_PASSED)
    else:
        self._check(self.periods[period_id].closed, E_POSITION_NOT_CLOSED)
        self._check(block.timestamp < self.periods[period_id].result_deadline, E_RESULT_DEADLINE_PASSED)
    state: uint8 = self._sync_kind(period_id, kind)
    self._check(state != TASK_OPEN, E_KIND_TASK_RUNNING)
    self._check(state != TASK_DONE, E_KIND_TASK_DONE)
    prog: ProgramRef = self.programs[kind]
    self._check(len(slots) == prog.n_slots and keccak256(abi_encode(slots)) == prog.template, E_SLOTS_ARE_NOT_PROGRAM)
    t: Terms = self.terms

    table: DynArray[bytes32, MAX_SLOTS] = slots
    base: uint256 = prog.data_base
    label: Bytes[1] = b"\x01"
    if self.periods[period_id].label < 0:
        label = b"\xff"
    n_data: uint256 = 3 + 2 * t.datasets
    if kind == KIND_VALUES:
        # in the order of SPEC 8.2: a, y, X, then X_d, L_d of every active slot
        table[base] = self._int64_commitment(self._mask(period_id))
        table[base + 1] = self._int8_commitment(label)
        features: bytes32 = self.features[period_id]
        table[base + 2] = self._tensor_commitment(
            DT_INT8 << 248 | 2 << 240 | 1 << 208 | t.features << 176,
            keccak256(concat(b"\x00", features, slice(abi_encode(empty(uint256[CHUNK // 32])), 0, CHUNK - 32))),
        )
        for slot: uint256 in range(self.periods[period_id].datasets, bound=MAX_DATASETS):
            d: uint256 = self.slot_dataset[period_id][slot]
            if self.data_entries[period_id][d].active:
                table[base + 3 + 2 * slot] = self.datasets[d].features
                table[base + 4 + 2 * slot] = self.datasets[d].labels
    else:
        table[base] = self._int64_commitment(self._weights(period_id))
        first: uint256 = base + 1
        if kind == KIND_SCORES:
            table[first] = self._int8_commitment(label)
            first += 1
        for slot: uint256 in range(self.periods[period_id].models, bound=MAX_MODELS):
            if self.entries[period_id][self.slot_model[period_id][slot]].state == ENTRY_REVEALED:
                table[first + slot] = self.prediction_commitment[period_id][slot]
        n_data = first + t.models - base
    data: DynArray[bytes32, MAX_SLOTS] = []
    for i: uint256 in range(n_data, bound=3 + 2 * MAX_DATASETS):
        data.append(table[base + i])

    self.periods[period_id].budget = self.periods[period_id].budget - t.reward
    self.owed -= t.reward
    self.task_reward[period_id][kind] = t.reward
    self._check(extcall token.approve(tasks.address, t.reward, default_return_value=True), E_TOKEN_FAILED)
    task_id: uint256 = extcall tasks.post_task(
        prog.graph_root, prog.n_nodes, prog.n_slots, merkle._state_root(0, 0, merkle._merkle(table)),
        merkle._merkle(data), prog.steps, t.reward, t.window, t.clock, t.solver_bond, t.challenger_bond,
        t.arity, block.timestamp + t.duration,
    )
    self.task_of[period_id][kind] = task_id
    log TaskPosted(period_id=period_id, kind=kind, task_id=task_id)
    return task_id


@external
@nonreentrant
def record(
    period_id: uint256, kind: uint256, slots_root: bytes32, proof: DynArray[bytes32, MAX_PROOF], values: DynArray[int256, 2 * MAX_MODELS]
):
    """
    @notice Records the metamodel (kind 0, one value) or the scores (kind 1, 2M values) from
            the finalized claim of the kind's task (anyone, once per kind): `proof` opens the
            final slot table's result slot to the commitment of `values` as an int64 tensor.
    """
    self._require_open(period_id)
    self._check(kind < KINDS, E_KIND)
    self._check(self.periods[period_id].recorded & (1 << kind) == 0, E_RESULT_ALREADY_RECORDED)
    if kind == KIND_METAMODEL:
        self._check(len(values) == 1, E_WRONG_NUMBER_VALUES)
        self._check(block.timestamp < self.periods[period_id].end, E_PERIOD_EXIT_PASSED)
    else:
        length: uint256 = 2 * self.terms.models
        if kind == KIND_VALUES:
            length = self.terms.datasets
        self._check(len(values) == length, E_WRONG_NUMBER_VALUES)
        self._check(block.timestamp < self.periods[period_id].result_deadline, E_RESULT_DEADLINE_PASSED)
    elements: DynArray[uint256, 2 * MAX_MODELS] = []
    for v: int256 in values:
        self._check(v >= INT64_MIN and v <= INT64_MAX, E_VALUE_OUTSIDE_INT64)
        elements.append(convert(v + 2**64 if v < 0 else v, uint256))
    commitment: bytes32 = self._int64_commitment(elements)
    task_id: uint256 = self.task_of[period_id][kind]
    self._check(task_id != 0, E_NO_TASK_OF_KIND)
    task: Tasks.Task = staticcall tasks.tasks(task_id)
    self._check(task.state == TASK_DONE, E_TASK_NOT_DONE)
    prog: ProgramRef = self.programs[kind]
    final_root: bytes32 = (staticcall tasks.claims(task.claim_id)).final_root
    self._check(merkle._state_root(prog.steps, 0, slots_root) == final_root, E_NOT_FINAL_STATE)
    self._check(len(proof) == merkle._depth(prog.n_slots), E_WRONG_PROOF_LENGTH)
    self._check(merkle._fold(commitment, prog.out_slot, proof, prog.n_slots) == slots_root, E_PROOF_DOES_NOT_OPEN)
    if kind == KIND_METAMODEL:
        self.periods[period_id].metamodel = values[0]
    elif kind == KIND_SCORES:
        self._scores[period_id] = values
    else:
        stored: DynArray[int256, MAX_DATASETS] = []
        for v: int256 in values:
            stored.append(v)
        self._values[period_id] = stored
    self.periods[period_id].recorded = self.periods[period_id].recorded | (1 << kind)
    log Recorded(period_id=period_id, kind=kind, commitment=commitment)


@external
@nonreentrant
def trade(period_id: uint256):
    """
    @notice The entry (anyone, from trade_at): reads the pool's average price once, within
            `average` seconds of trade_at; and once the metamodel is recorded, buys the asset
            for `min(vault * max_position_bps * signal / (100 * BPS), backing * leverage)`
            (backing: the revealed models' reservations; signal: the metamodel
            clipped to 0 ..= 100), refusing less than the average price's worth minus the
            slippage limit. A signal of 0 or below holds no position.
    """
    self._require_open(period_id)
    trade_at: uint256 = self.periods[period_id].trade_at
    self._check(block.timestamp >= trade_at, E_TRADE_AT_NOT_REACHED)
    self._check(block.timestamp < self.periods[period_id].end, E_PERIOD_EXIT_PASSED)
    acted: bool = False
    entry_price: uint256 = self.periods[period_id].entry_price
    if entry_price == 0 and block.timestamp < trade_at + self.terms.average:
        entry_price = self._average()
        self.periods[period_id].entry_price = entry_price
        acted = True
    if self.periods[period_id].recorded & 1 != 0 and not self.periods[period_id].traded and entry_price != 0:
        self.periods[period_id].traded = True
        acted = True
        signal: uint256 = convert(min(max(self.periods[period_id].metamodel, 0), PRED_MAX), uint256)
        spent: uint256 = min(
            staticcall vault.assets() * self.terms.max_position_bps * signal // (100 * BPS),
            self.periods[period_id].backing * self.terms.leverage,
        )
        if spent > 0:
            worth: uint256 = spent * 10**18 // entry_price
            self.periods[period_id].spent = spent
            extcall vault.lend(spent)
            self._check(extcall token.approve(pool.address, spent, default_return_value=True), E_TOKEN_FAILED)
            bought: uint256 = extcall pool.swap(token.address, spent, worth * (BPS - self.terms.slippage_bps) // BPS, self)
            self.periods[period_id].position = bought
    self._check(acted, E_NOTHING_TO_TRADE)
    log Traded(
        period_id=period_id, entry_price=entry_price, spent=self.periods[period_id].spent,
        position=self.periods[period_id].position,
    )


@external
@nonreentrant
def close(period_id: uint256):
    """
    @notice The exit (anyone, from the period's end): reads the pool's average price and sets
            the label to the sign of the realized return (exit average against entry average)
            if it is read within `average` seconds of the end, else 0 (an unscored period
            ends here); then sells the position, refusing less than the average price's worth
            minus the slippage limit. A sale the pool refuses is left to `unwind`.
    """
    self._require_open(period_id)
    self._check(block.timestamp >= self.periods[period_id].end, E_PERIOD_EXIT_NOT_REACHED)
    self._check(not self.periods[period_id].closed, E_POSITION_ALREADY_CLOSED)
    price: uint256 = self._average()
    label: int256 = 0
    if self.periods[period_id].entry_price != 0 and block.timestamp < self.periods[period_id].end + self.terms.average:
        if price > self.periods[period_id].entry_price:
            label = 1
        elif price < self.periods[period_id].entry_price:
            label = -1
    self.periods[period_id].closed = True
    self.periods[period_id].exit_price = price
    self.periods[period_id].label = label
    log Closed(period_id=period_id, exit_price=price, label=label)
    self._sell(period_id, price, False)
    if label == 0 or self.periods[period_id].revealed == 0:
        self._end(period_id, PERIOD_SETTLED, empty(DynArray[uint256, MAX_MODELS]), empty(DynArray[uint256, MAX_DATASETS]), 0)


@external
@nonreentrant
def unwind(period_id: uint256):
    """@notice Sells a closed period's position that the pool refused at `close` (anyone)."""
    self._check(self.periods[period_id].closed, E_POSITION_NOT_CLOSED)
    self._check(self.periods[period_id].position > 0, E_NO_POSITION_SELL)
    self._sell(period_id, self._average(), True)


@internal
def _sell(period_id: uint256, price: uint256, must: bool):
    # sells the whole position for at least its worth at `price` minus the slippage limit;
    # a refusal reverts when `must`, else leaves the position for `unwind`
    held: uint256 = self.periods[period_id].position
    if held == 0:
        return
    min_out: uint256 = held * price // 10**18 * (BPS - self.terms.slippage_bps) // BPS
    self.periods[period_id].position = 0
    self._check(extcall asset.approve(pool.address, held, default_return_value=True), E_TOKEN_FAILED)
    ok: bool = False
    response: Bytes[32] = b""
    ok, response = raw_call(
        pool.address,
        abi_encode(asset.address, held, min_out, self, method_id=method_id("swap(address,uint256,uint256,address)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    if not ok:
        self._check(not must, E_POOL_REFUSED_EXIT)
        self.periods[period_id].position = held
        return
    out: uint256 = extract32(response, 0, output_type=uint256)
    self.periods[period_id].proceeds = out
    log Unwound(period_id=period_id, sold=held, proceeds=out)
    self._repay(out)


@external
@nonreentrant
def settle(period_id: uint256):
    """
    @notice Pays the models once the scores are recorded, and the data values when a dataset
            is active (anyone, once): model i's return is
            clip(own_i * factor / BPS, +-cap) + clip(score_i * factor / BPS, 0, bonus)
            - ceil(bonus / CHARGE_DIVISOR) bps of its reservation; gains come from the pool,
            and data_share_bps of each goes on to the model's positively valued datasets in
            proportion to their values; losses (a model's, and data_slash_bps of a negatively
            valued dataset's reservation) are burned, the rest of the pool and budget returns
            to the vault, and every reservation is freed.
    """
    self._require_open(period_id)
    self._check(self.periods[period_id].recorded & 2 != 0, E_SCORES_NOT_RECORDED)
    self._check(self.periods[period_id].active == 0 or self.periods[period_id].recorded & 4 != 0, E_VALUES_NOT_RECORDED)
    # fields, not a copy of the whole Terms: code size
    bonus: int256 = convert(self.terms.bonus_bps, int256)
    models: uint256 = self.terms.models
    scores: DynArray[int256, 2 * MAX_MODELS] = self._scores[period_id]
    cap: int256 = convert(self.terms.cap_bps, int256)
    factor: int256 = convert(self.terms.factor_bps, int256)
    charge: int256 = (bonus + convert(CHARGE_DIVISOR, int256) - 1) // convert(CHARGE_DIVISOR, int256)
    gains: DynArray[uint256, MAX_MODELS] = []
    burned: uint256 = 0
    for slot: uint256 in range(self.periods[period_id].models, bound=MAX_MODELS):
        model_id: uint256 = self.slot_model[period_id][slot]
        entry: Entry = self.entries[period_id][model_id]
        gain: uint256 = 0
        if entry.state == ENTRY_REVEALED:
            r: int256 = max(min(scores[slot] * factor // 10_000, cap), -cap)
            r += min(max(scores[models + slot] * factor // 10_000, 0), bonus) - charge
            if r > 0:
                gain = entry.amount * convert(r, uint256) // BPS
            elif r < 0:
                loss: uint256 = entry.amount * convert(-r, uint256) // BPS
                self._release(period_id, model_id, entry.amount)
                self.models[model_id].stake -= loss
                self.owed -= loss
                burned += loss
                log Paid(period_id=period_id, model_id=model_id, amount=-convert(loss, int256))
        gains.append(gain)

    # the data share: each gain passes data_share_bps of itself on to the model's datasets
    # active in the period with a positive value, in proportion to their values (SPEC 8.5)
    values: DynArray[int256, MAX_DATASETS] = self._values[period_id]
    to_data: DynArray[uint256, MAX_DATASETS] = []
    for slot: uint256 in range(self.periods[period_id].datasets, bound=MAX_DATASETS):
        to_data.append(0)
    for slot: uint256 in range(len(gains), bound=MAX_MODELS):
        if gains[slot] == 0:
            continue
        share: uint256 = gains[slot] * self.terms.data_share_bps // BPS
        named: DynArray[uint256, MODEL_DATASETS] = self.named[self.slot_model[period_id][slot]]
        total: uint256 = 0
        for d: uint256 in named:
            total += self._positive_value(period_id, d, values)
        if total == 0:
            continue
        for d: uint256 in named:
            part: uint256 = share * self._positive_value(period_id, d, values) // total
            if part == 0:
                continue
            to_data[self.data_entries[period_id][d].slot] += part
            # the parts are floored shares of share <= the gain
            gains[slot] -= part
    # a negatively valued dataset loses data_slash_bps of its reservation, freed first, burned
    for slot: uint256 in range(len(to_data), bound=MAX_DATASETS):
        d: uint256 = self.slot_dataset[period_id][slot]
        e: DataEntry = self.data_entries[period_id][d]
        self._release_data(period_id, d)
        if not e.active:
            continue
        if values[slot] < 0:
            loss: uint256 = e.at_risk * self.terms.data_slash_bps // BPS
            self.datasets[d].stake -= loss
            self.owed -= loss
            burned += loss
            log DataPaid(period_id=period_id, dataset_id=d, amount=-convert(loss, int256))
    self._end(period_id, PERIOD_SETTLED, gains, to_data, burned)


@external
@nonreentrant
def void(period_id: uint256):
    """
    @notice Ends a period whose scores were not recorded by the result deadline (anyone): the
            pool is split evenly among the revealed models, every reservation is freed
            untouched, and the unspent budget returns to the vault.
    """
    self._require_open(period_id)
    self._check(self.periods[period_id].closed, E_POSITION_NOT_CLOSED)
    self._check(block.timestamp >= self.periods[period_id].result_deadline, E_RESULT_DEADLINE_NOT_REACHED)
    recorded: uint256 = self.periods[period_id].recorded
    settleable: bool = recorded & 2 != 0 and (self.periods[period_id].active == 0 or recorded & 4 != 0)
    self._check(not settleable, E_RESULTS_RECORDED)
    gains: DynArray[uint256, MAX_MODELS] = []
    left: uint256 = self.periods[period_id].pool
    unpaid: uint256 = self.periods[period_id].revealed
    for slot: uint256 in range(self.periods[period_id].models, bound=MAX_MODELS):
        part: uint256 = 0
        if self.entries[period_id][self.slot_model[period_id][slot]].state == ENTRY_REVEALED:
            part = left // unpaid
            left -= part
            unpaid -= 1
        gains.append(part)
    self._end(period_id, PERIOD_VOID, gains, empty(DynArray[uint256, MAX_DATASETS]), 0)


@external
@nonreentrant
def sync(period_id: uint256):
    """@notice Takes back the rewards of the period's reclaimable tasks (anyone)."""
    for kind: uint256 in range(KINDS):
        self._sync_kind(period_id, kind)


@external
@view
def scores(period_id: uint256) -> DynArray[int256, 2 * MAX_MODELS]:
    return self._scores[period_id]


@external
@view
def values(period_id: uint256) -> DynArray[int256, MAX_DATASETS]:
    return self._values[period_id]


@internal
def _end(
    period_id: uint256, state: uint8, gains: DynArray[uint256, MAX_MODELS], to_data: DynArray[uint256, MAX_DATASETS], slashed: uint256
):
    # pays `gains` and `to_data` by slot out of the pool, frees every reservation still held (a
    # commitment never revealed forfeits min_stake: a slot is not free to take), returns the
    # rest of the pool and the unspent budget to the vault and burns every slash
    burned: uint256 = slashed
    for slot: uint256 in range(self.periods[period_id].datasets, bound=MAX_DATASETS):
        self._release_data(period_id, self.slot_dataset[period_id][slot])
    for slot: uint256 in range(self.periods[period_id].models, bound=MAX_MODELS):
        model_id: uint256 = self.slot_model[period_id][slot]
        entry: Entry = self.entries[period_id][model_id]
        if entry.state != ENTRY_RELEASED:
            self._release(period_id, model_id, entry.amount)
        if entry.state == ENTRY_COMMITTED:
            # amount >= min_stake (commit)
            self.models[model_id].stake -= self.terms.min_stake
            self.owed -= self.terms.min_stake
            burned += self.terms.min_stake
            log Paid(period_id=period_id, model_id=model_id, amount=-convert(self.terms.min_stake, int256))
    paid: uint256 = 0
    for g: uint256 in gains:
        paid += g
    for g: uint256 in to_data:
        paid += g
    # gains fit the pool: every reservation is at most max_stake (commit), the void's parts add up to it
    to_vault: uint256 = self.periods[period_id].pool - paid + self.periods[period_id].budget
    self.periods[period_id].state = state
    self.periods[period_id].pool = 0
    self.periods[period_id].budget = 0
    self.owed -= paid + to_vault
    self.burned += burned
    log PeriodEnded(period_id=period_id, state=state, burned=burned, to_vault=to_vault)
    for slot: uint256 in range(len(gains), bound=MAX_MODELS):
        if gains[slot] > 0:
            model_id: uint256 = self.slot_model[period_id][slot]
            log Paid(period_id=period_id, model_id=model_id, amount=convert(gains[slot], int256))
            self._push(self.models[model_id].owner, gains[slot])
    for slot: uint256 in range(len(to_data), bound=MAX_DATASETS):
        if to_data[slot] > 0:
            d: uint256 = self.slot_dataset[period_id][slot]
            log DataPaid(period_id=period_id, dataset_id=d, amount=convert(to_data[slot], int256))
            self._push(self.datasets[d].owner, to_data[slot])
    if burned > 0:
        extcall IBurnable(token.address).burn(burned)
    self._repay(to_vault)
    # rewards of tasks already reclaimable come back to the vault now
    for kind: uint256 in range(KINDS):
        self._sync_kind(period_id, kind)


@internal
def _release_data(period_id: uint256, dataset_id: uint256):
    # frees the dataset's reservation once; its entry stays for the record
    at_risk: uint256 = self.data_entries[period_id][dataset_id].at_risk
    if at_risk > 0:
        self.data_entries[period_id][dataset_id].at_risk = 0
        self.datasets[dataset_id].reserved -= at_risk


@internal
@view
def _positive_value(period_id: uint256, dataset_id: uint256, values: DynArray[int256, MAX_DATASETS]) -> uint256:
    # the recorded value of a dataset active in the period, if positive; 0 otherwise
    e: DataEntry = self.data_entries[period_id][dataset_id]
    if not e.active:
        return 0
    return convert(max(values[e.slot], 0), uint256)


@internal
@view
def _mask(period_id: uint256) -> DynArray[uint256, MAX_DATASETS]:
    # D values: 1 for a slot whose dataset is active, 0 otherwise
    out: DynArray[uint256, MAX_DATASETS] = []
    for slot: uint256 in range(self.terms.datasets, bound=MAX_DATASETS):
        a: uint256 = 0
        if slot < self.periods[period_id].datasets and self.data_entries[period_id][self.slot_dataset[period_id][slot]].active:
            a = 1
        out.append(a)
    return out


@internal
@view
def _smallest(period_id: uint256, data: bool) -> (uint256, uint256, uint256):
    # the slot of the smallest reservation among the full model (or dataset) slots, the first
    # of equals: its slot, its holder and the amount
    n: uint256 = self.terms.models
    if data:
        n = self.terms.datasets
    slot: uint256 = 0
    out: uint256 = 0
    least: uint256 = max_value(uint256)
    for s: uint256 in range(n, bound=MAX_MODELS):
        holder: uint256 = 0
        held: uint256 = 0
        if data:
            holder = self.slot_dataset[period_id][s]
            held = self.data_entries[period_id][holder].at_risk
        else:
            holder = self.slot_model[period_id][s]
            held = self.entries[period_id][holder].amount
        if held < least:
            slot = s
            out = holder
            least = held
    return slot, out, least


@internal
def _release(period_id: uint256, model_id: uint256, amount: uint256):
    self.entries[period_id][model_id].state = ENTRY_RELEASED
    self.models[model_id].reserved -= amount


@internal
def _sync_kind(period_id: uint256, kind: uint256) -> uint8:
    # the state of the kind's latest task (0: none), after reclaiming it if it can be; a
    # reclaimed reward returns once: to the budget while the period is open, else to the vault
    task_id: uint256 = self.task_of[period_id][kind]
    if task_id == 0:
        return 0
    if staticcall tasks.reclaimable(task_id):
        extcall tasks.reclaim(task_id)
    state: uint8 = (staticcall tasks.tasks(task_id)).state
    amount: uint256 = self.task_reward[period_id][kind]
    if state != TASK_RECLAIMED or amount == 0:
        return state
    self.task_reward[period_id][kind] = 0
    if self.periods[period_id].state == PERIOD_OPEN:
        self.periods[period_id].budget += amount
        self.owed += amount
    else:
        self._repay(amount)
    return state


@internal
@view
def _average() -> uint256:
    price: uint256 = (staticcall pool.twap(self.terms.average))[0]
    self._check(price > 0, E_AVERAGE_PRICE_ZERO)
    return price


@internal
@view
def _weights(period_id: uint256) -> DynArray[uint256, MAX_MODELS]:
    out: DynArray[uint256, MAX_MODELS] = []
    for slot: uint256 in range(self.terms.models, bound=MAX_MODELS):
        w: uint256 = 0
        entry: Entry = self.entries[period_id][self.slot_model[period_id][slot]]
        if slot < self.periods[period_id].models and entry.state == ENTRY_REVEALED:
            w = min(entry.amount // WEIGHT_UNIT, MAX_WEIGHT)
        out.append(w)
    return out


@internal
@view
def _require_open(period_id: uint256):
    state: uint8 = self.periods[period_id].state
    self._check(state != 0, E_NO_SUCH_PERIOD)
    self._check(state == PERIOD_OPEN, E_PERIOD_ALREADY_ENDED)


@internal
@view
def _require_dataset_owner(dataset_id: uint256):
    owner: address = self.datasets[dataset_id].owner
    self._check(owner != empty(address), E_NO_SUCH_DATASET)
    self._check(owner == msg.sender, E_NOT_DATASET_OWNER)


@internal
@view
def _require_model_owner(model_id: uint256):
    owner: address = self.models[model_id].owner
    self._check(owner != empty(address), E_NO_SUCH_MODEL)
    self._check(owner == msg.sender, E_NOT_MODEL_OWNER)


@internal
@pure
def _int8_commitment(data: Bytes[1]) -> bytes32:
    # int8 [1] in one chunk: the data root is the leaf of the zero-padded chunk (SPEC 1.3)
    zeros: Bytes[CHUNK] = abi_encode(empty(uint256[CHUNK // 32]))
    return self._vector_commitment(DT_INT8, 1, keccak256(concat(b"\x00", data, slice(zeros, 0, CHUNK - 1))))


@internal
@pure
def _int64_commitment(elements: DynArray[uint256, 2 * MAX_MODELS]) -> bytes32:
    # int64 [len(elements)], each as its 64-bit two's complement pattern, in one chunk (SPEC 1.3)
    words: uint256[CHUNK // 32] = empty(uint256[CHUNK // 32])
    for i: uint256 in range(len(elements), bound=2 * MAX_MODELS):
        words[i // 4] |= elements[i] << (64 * (3 - i % 4))
    return self._vector_commitment(DT_INT64, len(elements), keccak256(concat(b"\x00", abi_encode(words))))


@internal
@pure
def _tensor_commitment(header: uint256, data_root: bytes32) -> bytes32:
    # H(0x02 || header || data_root), the header one word (SPEC 1.3)
    return keccak256(concat(b"\x02", convert(header, bytes32), data_root))


@internal
@pure
def _vector_commitment(dtype: uint256, n: uint256, data_root: bytes32) -> bytes32:
    # a rank-1 tensor of n < 2^32 elements (SPEC 1.3)
    return self._tensor_commitment(dtype << 248 | 1 << 240 | n << 208, data_root)


@internal
def _push(to: address, amount: uint256):
    if amount != 0:
        self._check(extcall token.transfer(to, amount, default_return_value=True), E_TOKEN_FAILED)


@internal
def _repay(amount: uint256):
    # returns `amount` to the vault
    if amount != 0:
        self._check(extcall token.approve(vault.address, amount, default_return_value=True), E_TOKEN_FAILED)
        extcall vault.repay(amount)


@internal
def _pull(amount: uint256):
    if amount != 0:
        self._check(extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), E_TOKEN_FAILED)


@internal
@view
def _check(ok: bool, code: uint256):
    # reverts with the reason `code` names: REASONS[code >> 8 : (code >> 8) + (code & 255)]
    if not ok:
        reason: String[2000] = concat("loop: ", slice(self._reasons, code >> 8, code & 255))
        raw_revert(abi_encode(reason, method_id=method_id("Error(string)")))
