# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title Prediction market: datasets, models, rounds, verified scoring and payouts
@notice Numerai-style rounds without an operator (docs/SPEC.md section 8). Data providers
        publish datasets and stake on them; modelers register models naming the datasets they
        trained on and stake on them. A dataset takes part in a round only if its owner joins
        it (`join_round`), a model only if its owner commits to it. A sponsor opens a round
        with a pool, a compute budget and the commitment of its held-out labels; models commit
        predictions before a deadline and reveal them after it (section 8.6); the sponsor then
        reveals the labels. The three
        programs of the round (metamodel, contribution scores, data values; section 8.2) are
        posted by this contract as tasks on `Tasks.vy`, paid from the budget, and their results
        are read from the finalized claims' final states (`record`). `settle` pays gains, slashes
        losses, passes the data providers' share on, burns and refunds (section 8.5).

        Round getters: `rounds(id)` returns the `Round` struct, which nests the round's
        `Shape`, `Schedule`, `Economics` and `TaskTerms`; `round_program(id, kind)` returns the
        `ProgramRef` of kind 0 (metamodel), 1 (scores) or 2 (values); `round_models(id)` and
        `round_datasets(id)` the model and dataset id of every slot in slot order;
        `model_entries(id, model_id)` and `dataset_entries(id, dataset_id)` the per-round
        records; `weights`, `mask`, `scores`, `values` the round's vectors; `task_of(id, kind)`
        and `task_reward(id, kind)` the kind's latest task and its reward while it may still
        come back. Content ids (of datasets, models and round features) live in the events
        only (`DatasetPublished`, `ModelRegistered`, `RoundOpened`), not in storage.
@custom:security Trust assumptions and choices:
                 - The token is the bisectml bond token (contracts/Token.vy): no fees, hooks or
                   blacklists. Payments are pushed; every mutating function is `@nonreentrant`
                   and updates storage before it calls out (the only calls are to the token and
                   to `Tasks.vy`, which is trusted and never calls back).
                 - The contract holds `owed` (stakes, and the pool and unspent budget of every
                   round neither settled nor void) plus task rewards that `Tasks.reclaim`
                   returned and `sync` has not yet accounted. Tokens sent to it directly stay
                   there for good.
                 - The market does not interpret programs: a round's sponsor names each
                   program's graph root, slot layout and template. Participants' clients rebuild
                   the programs from the round's shape and refuse rounds whose programs differ
                   (section 8.2); the dispute game then makes every recorded result the
                   program's true output.
                 - Results are recorded only from tasks that are DONE on `Tasks.vy`, so they are
                   as safe as that task's challenge window: the window must exceed worst-case
                   censorship, and `open_round` makes the result phase at least a task's claim
                   period plus its window plus both chess clocks.
                 - Every rate, phase and task term a sponsor chooses has a protocol bound
                   (MAX_CAP_BPS, MAX_DATA_SLASH_BPS, BONUS_CAP_DIVISOR, the phase and term bounds),
                   so a round closes within MAX_COMMIT_PHASE + 2 MAX_PHASE + MAX_RESULT_PHASE
                   of its opening, and its tasks stay claimable and challengeable.
                 - Once a model revealed, the pool is the participants': a void (labels
                   withheld, or results not recorded by `result_deadline`) splits it evenly
                   among the revealed models, and refunds the sponsor only the unspent budget.
                   A void never waits for a running task. Every stake is released untouched.
                 - The sponsor never receives slashed stake: every slash is burned, and gains
                   come out of the pool, which a model's reservation is sized to fit (commit).
                 - A model's payout rests on its own score against the labels; the
                   contribution part is a bonus, never negative and at most cap_bps / 4, so
                   another participant, even one who knows the labels, cannot lower it.
                 - A round reserves the stake it puts at risk (`commit`, `join_round`: an amount
                   of the free stake the owner chooses) until it is settled or void: the same
                   tokens never back two rounds, a round's gain is paid on its own reservation
                   only, its loss (at most cap_bps of it) never reaches stake another round
                   reserved, and withdrawals take only the free stake.
                 - `settle` and `void_round` exclude each other: results are recorded only
                   before `result_deadline`, and a round with both results recorded cannot be
                   voided, so a sponsor cannot void a round whose results went against it.
                 - A dataset is at risk only in rounds its owner joined, at that round's
                   published rates; a model naming a dataset that did not join puts nothing of
                   it at risk and passes it no share. Joining needs the round's `min_stake`, so
                   dust datasets cannot fill the dataset slots cheaply.
                 - Products of stakes and basis points overflow only for stakes above 2^240,
                   more than any token supply.
"""

from ethereum.ercs import IERC20
from contracts import Tasks
from contracts.lib import merkle


interface IBurnable:
    def burn(amount: uint256): nonpayable


interface IAvailability:
    def available(commitment: bytes32) -> bool: view


# limits of a round (docs/SPEC.md section 8.1)
MAX_MODELS: public(constant(uint256)) = 16
MAX_DATASETS: public(constant(uint256)) = 8
MAX_ROWS: public(constant(uint256)) = 2048
MAX_FEATURES: public(constant(uint256)) = 256
MAX_POINTS: public(constant(uint256)) = 1024
MAX_K: public(constant(uint256)) = 64
# weights count whole 10^15 token units, at most 2^40 - 1 (so products fit int64)
WEIGHT_UNIT: public(constant(uint256)) = 10**15
MAX_WEIGHT: public(constant(uint256)) = 2**40 - 1
BPS: public(constant(uint256)) = 10_000
# the score factor is at most 100x, so score * factor_bps cannot overflow
MAX_FACTOR_BPS: public(constant(uint256)) = 1_000_000
# longest content id (an IPFS CIDv1 in base32 is 59 characters)
CID_MAX: constant(uint256) = 100
# the longest list of datasets a model names
MODEL_DATASETS: constant(uint256) = 8
# one tensor chunk (SPEC 1.3): predictions and labels are at most one
CHUNK: constant(uint256) = 2048
# slot tables and slot proofs (Tasks.vy MAX_SLOTS = 2^9)
MAX_SLOTS: constant(uint256) = 512
MAX_PROOF: constant(uint256) = 9

# program kinds
KIND_METAMODEL: constant(uint256) = 0
KIND_SCORES: constant(uint256) = 1
KIND_VALUES: constant(uint256) = 2
KINDS: constant(uint256) = 3
# bits of Round.recorded: both must be set before `settle`
RECORDED_SCORES_AND_VALUES: constant(uint256) = 6

# round states
ROUND_OPEN: constant(uint8) = 1
ROUND_SETTLED: constant(uint8) = 2
ROUND_VOID: constant(uint8) = 3

# a model's state in a round
ENTRY_COMMITTED: constant(uint8) = 1
ENTRY_REVEALED: constant(uint8) = 2

# whose stake or payment an event is about (StakeChanged.kind, Paid.kind)
DATASET: constant(uint8) = 0
MODEL: constant(uint8) = 1
SPONSOR: constant(uint8) = 2

# task states, as Tasks.vy numbers them (module constants are not importable)
TASK_OPEN: constant(uint8) = 1
TASK_DONE: constant(uint8) = 2
TASK_RECLAIMED: constant(uint8) = 3

# Protocol bounds on what a sponsor chooses (SPEC 8.1). Nobody who chooses a round's inputs
# may choose the rates its slashes are taken at, nor terms that freeze stakes or make a task
# unchallengeable. verifier/economics.py mirrors these; tests compare them.
# largest gain or loss of a model in one round, bps of its stake at risk
MAX_CAP_BPS: constant(uint256) = 2_500
# largest slash of a dataset in one round, bps of its stake at risk
MAX_DATA_SLASH_BPS: constant(uint256) = 1_000
# the contribution bonus is at most a quarter of the cap: payouts rest on each model's own
# score, which nobody else's predictions change (SPEC 8.5)
BONUS_CAP_DIVISOR: constant(uint256) = 4
# commit phase (now .. commit deadline) at most thirty days
MAX_COMMIT_PHASE: constant(uint256) = 2_592_000
# reveal and labels phases each one to seven days (MIN_PHASE: like Tasks.vy's MIN_WINDOW,
# longer than worst-case censorship of a reveal)
MIN_PHASE: constant(uint256) = 86_400
MAX_PHASE: constant(uint256) = 604_800
# result phase (labels deadline .. result deadline) at most thirty days, and at least a task's
# claim period plus its challenge window plus both chess clocks
MAX_RESULT_PHASE: constant(uint256) = 2_592_000
# task terms: within Tasks.vy's ranges (its MIN_/MAX_ constants) and tighter where a long term
# would hold the round: window, clock and claim period each at most seven days
MIN_WINDOW: constant(uint256) = 172_800
MAX_TASK_WINDOW: constant(uint256) = 604_800
MIN_CLOCK: constant(uint256) = 172_800
MAX_TASK_CLOCK: constant(uint256) = 604_800
MIN_ARITY: constant(uint256) = 2
MAX_ARITY: constant(uint256) = 32
MIN_TASK_DURATION: constant(uint256) = 86_400
MAX_TASK_DURATION: constant(uint256) = 604_800
MAX_NODES: constant(uint256) = 4_294_967_294
MAX_STEPS: constant(uint256) = 9_223_372_036_854_775_807
# a task reward worth a solver's while: at least 1 token; the budget pays all three tasks
MIN_REWARD: constant(uint256) = 10**18
# bonds (SPEC 8.1, priced at 1 token = 0.001 ETH and 100 gwei): the challenger bond lies in
# Tasks.vy's range (a lost challenge pays the solver at least the ~1.05 M gas of defending a
# whole game; any honest watchtower can post it); any honest solver can post <= 10_000 tokens
MAX_SOLVER_BOND: constant(uint256) = 10**22

# int64 range (values recorded as int64 tensors)
INT64_MIN: constant(int256) = -(2**63)
INT64_MAX: constant(int256) = 2**63 - 1
# element types (SPEC 1.1)
DT_INT8: constant(uint256) = 3
DT_INT64: constant(uint256) = 7

# Revert reasons. Checks call `_check(ok, E_...)`, which reverts with Error(string) where
# the string is REASONS[code >> 8 : (code >> 8) + (code & 255)]: one shared revert keeps
# the contract under the 24_576-byte limit (an inline `assert ..., "reason"` costs ~130
# bytes each), and so does keeping the table in storage (`_reasons`).
# tests/contracts/test_market.py checks every code against this table.
REASONS: constant(String[1920]) = (
    "no such round"
    "round already settled"
    "round is void"
    "no such dataset"
    "not the dataset owner"
    "no such model"
    "not the model owner"
    "amount exceeds the free stake"
    "token call failed"
    "a dataset is named twice"
    "models outside 1..16"
    "datasets outside 1..8"
    "rows outside 1..2048"
    "features outside 1..256"
    "dataset rows outside 1..1024"
    "k outside 1..64"
    "datasets * dataset rows above 1024"
    "k above datasets * dataset rows"
    "commit deadline not in the future"
    "factor above 1_000_000 bps"
    "a rate outside the protocol's bounds"
    "task terms outside the market's ranges"
    "program outside Tasks.vy's limits"
    "program slots past its slot table"
    "commit deadline passed"
    "no stake reserved"
    "stake below the round's minimum"
    "model already committed"
    "model slots full of reservations at least as large"
    "dataset slots full of reservations at least as large"
    "dataset shape is not the round's"
    "model not committed"
    "model already revealed"
    "commit deadline not reached"
    "reveal deadline passed"
    "predictions are not n bytes"
    "predictions do not match the commitment"
    "model revealed; its stake is at risk"
    "stake already released"
    "reveal deadline not reached"
    "labels already revealed"
    "labels deadline passed"
    "labels are not n bytes"
    "labels do not match the commitment"
    "kind is not 0, 1 or 2"
    "result deadline passed"
    "labels not revealed"
    "a round task is still running"
    "task of this kind is done"
    "slots are not the program's template"
    "result already recorded"
    "no task of this kind"
    "task not done; finalize a claim first"
    "slots root is not the final state's"
    "wrong proof length"
    "proof does not open the result slot"
    "kind is not 1 or 2; use record_metamodel"
    "values are not 2M scores or D values"
    "value outside int64"
    "results not recorded"
    "labels deadline not reached"
    "results recorded; settle the round"
    "result deadline not reached"
    "a phase outside the protocol's bounds"
    "result phase shorter than a task needs"
    "bonds outside the protocol's bounds"
    "reward below 1 token or budget below 3 rewards"
    "dataset already in the round"
    "stake above the round's maximum"
    "data not published on Availability.vy"
)
E_NO_ROUND: constant(uint256) = 0 << 8 | 13
E_SETTLED: constant(uint256) = 13 << 8 | 21
E_VOID: constant(uint256) = 34 << 8 | 13
E_NO_DATASET: constant(uint256) = 47 << 8 | 15
E_NOT_DATASET_OWNER: constant(uint256) = 62 << 8 | 21
E_NO_MODEL: constant(uint256) = 83 << 8 | 13
E_NOT_MODEL_OWNER: constant(uint256) = 96 << 8 | 19
E_FREE: constant(uint256) = 115 << 8 | 29
E_TOKEN: constant(uint256) = 144 << 8 | 17
E_NAMED_TWICE: constant(uint256) = 161 << 8 | 24
E_MODELS: constant(uint256) = 185 << 8 | 20
E_DATASETS: constant(uint256) = 205 << 8 | 21
E_ROWS: constant(uint256) = 226 << 8 | 20
E_FEATURES: constant(uint256) = 246 << 8 | 23
E_DATASET_ROWS: constant(uint256) = 269 << 8 | 28
E_K: constant(uint256) = 297 << 8 | 15
E_POINTS: constant(uint256) = 312 << 8 | 34
E_K_POINTS: constant(uint256) = 346 << 8 | 31
E_COMMIT_NOT_FUTURE: constant(uint256) = 377 << 8 | 33
E_FACTOR: constant(uint256) = 410 << 8 | 26
E_BPS: constant(uint256) = 436 << 8 | 36
E_TERMS: constant(uint256) = 472 << 8 | 38
E_PROGRAM: constant(uint256) = 510 << 8 | 33
E_LAYOUT: constant(uint256) = 543 << 8 | 33
E_COMMIT_DEADLINE: constant(uint256) = 576 << 8 | 22
E_NO_STAKE: constant(uint256) = 598 << 8 | 17
E_MIN_STAKE: constant(uint256) = 615 << 8 | 31
E_COMMITTED: constant(uint256) = 646 << 8 | 23
E_MODELS_FULL: constant(uint256) = 669 << 8 | 50
E_DATASETS_FULL: constant(uint256) = 719 << 8 | 52
E_DATASET_SHAPE: constant(uint256) = 771 << 8 | 32
E_NOT_COMMITTED: constant(uint256) = 803 << 8 | 19
E_REVEALED: constant(uint256) = 822 << 8 | 22
E_BEFORE_COMMIT_DEADLINE: constant(uint256) = 844 << 8 | 27
E_REVEAL_DEADLINE: constant(uint256) = 871 << 8 | 22
E_PREDICTIONS_LENGTH: constant(uint256) = 893 << 8 | 27
E_PREDICTIONS: constant(uint256) = 920 << 8 | 39
E_RELEASE_REVEALED: constant(uint256) = 959 << 8 | 36
E_RELEASED: constant(uint256) = 995 << 8 | 22
E_BEFORE_REVEAL_DEADLINE: constant(uint256) = 1017 << 8 | 27
E_LABELS_REVEALED: constant(uint256) = 1044 << 8 | 23
E_LABELS_DEADLINE: constant(uint256) = 1067 << 8 | 22
E_LABELS_LENGTH: constant(uint256) = 1089 << 8 | 22
E_LABELS: constant(uint256) = 1111 << 8 | 34
E_KIND: constant(uint256) = 1145 << 8 | 21
E_RESULT_DEADLINE: constant(uint256) = 1166 << 8 | 22
E_NO_LABELS: constant(uint256) = 1188 << 8 | 19
E_RUNNING: constant(uint256) = 1207 << 8 | 29
E_TASK_DONE: constant(uint256) = 1236 << 8 | 25
E_TEMPLATE: constant(uint256) = 1261 << 8 | 36
E_RECORDED: constant(uint256) = 1297 << 8 | 23
E_NO_TASK: constant(uint256) = 1320 << 8 | 20
E_NOT_DONE: constant(uint256) = 1340 << 8 | 37
E_FINAL_STATE: constant(uint256) = 1377 << 8 | 35
E_PROOF_LENGTH: constant(uint256) = 1412 << 8 | 18
E_PROOF: constant(uint256) = 1430 << 8 | 35
E_RECORD_KIND: constant(uint256) = 1465 << 8 | 40
E_VALUES_LENGTH: constant(uint256) = 1505 << 8 | 36
E_INT64: constant(uint256) = 1541 << 8 | 19
E_NOT_RECORDED: constant(uint256) = 1560 << 8 | 20
E_BEFORE_LABELS_DEADLINE: constant(uint256) = 1580 << 8 | 27
E_RESULTS_RECORDED: constant(uint256) = 1607 << 8 | 34
E_BEFORE_RESULT_DEADLINE: constant(uint256) = 1641 << 8 | 27
E_PHASES: constant(uint256) = 1668 << 8 | 37
E_RESULT_PHASE: constant(uint256) = 1705 << 8 | 38
E_BONDS: constant(uint256) = 1743 << 8 | 35
E_REWARD: constant(uint256) = 1778 << 8 | 46
E_JOINED: constant(uint256) = 1824 << 8 | 28
E_MAX_STAKE: constant(uint256) = 1852 << 8 | 31
E_UNAVAILABLE: constant(uint256) = 1883 << 8 | 37


struct Shape:
    # M, model slots
    models: uint256
    # D, dataset slots
    datasets: uint256
    # n, rows predicted and scored
    rows: uint256
    # F, features per row
    features: uint256
    # R, rows of every dataset
    dataset_rows: uint256
    # K, neighbours of the KNN-Shapley valuation
    k: uint256


struct Schedule:
    # commits accepted while now < commit_deadline
    commit_deadline: uint256
    # reveals accepted while commit_deadline <= now < reveal_deadline
    reveal_deadline: uint256
    # labels accepted while reveal_deadline <= now < labels_deadline
    labels_deadline: uint256
    # scores and values recorded while now < result_deadline
    result_deadline: uint256


struct Economics:
    # scales a score (basis points of a perfect score) into a return on stake
    factor_bps: uint256
    # largest return, gain or loss, in basis points of the stake
    cap_bps: uint256
    # share of a model's gain passed on to its positively valued datasets
    data_share_bps: uint256
    # share of a dataset's stake at risk slashed when its value is negative
    data_slash_bps: uint256
    # largest contribution bonus, bps of the stake at risk (at most cap_bps / 4)
    bonus_bps: uint256
    # a commit or join reserves at least this stake (token base units)
    min_stake: uint256


struct TaskTerms:
    # paid from the budget to the solver of each program's task
    reward: uint256
    # challenge window of each task, seconds
    window: uint256
    # each party's chess clock per game, seconds
    clock: uint256
    # locked by every claim
    solver_bond: uint256
    # locked by every challenge
    challenger_bond: uint256
    # dissection arity of every game
    arity: uint256
    # a task posted now takes claims until now + duration
    duration: uint256


struct ProgramRef:
    # Merkle root of the node descriptors and the step boundary (SPEC 3.2)
    graph_root: bytes32
    # N
    n_nodes: uint256
    # S
    n_slots: uint256
    # T
    steps: uint256
    # first data slot
    data_base: uint256
    # the state slot holding the result
    out_slot: uint256
    # keccak256(abi.encode(bytes32[] slots)) of the initial slot table with nobody present
    template: bytes32


struct Dataset:
    # who published it and moves its stake
    owner: address
    # tensor commitment of X_d, int8 [rows, n_features]
    features: bytes32
    # tensor commitment of L_d, int8 [rows]
    labels: bytes32
    # R of the rounds it can join
    rows: uint256
    # F of the rounds it can join
    n_features: uint256
    # staked tokens
    stake: uint256
    # part of the stake reserved by rounds not yet settled or void; only the rest is free
    reserved: uint256


struct Model:
    # who registered it and moves its stake
    owner: address
    # the datasets it was trained on
    datasets: DynArray[uint256, MODEL_DATASETS]
    # staked tokens
    stake: uint256
    # part of the stake reserved by rounds not yet settled or void; only the rest is free
    reserved: uint256


struct Round:
    # who opened the round, paid the pool and budget, and holds the labels
    sponsor: address
    # M, D, n, F, R, K
    shape: Shape
    # the four deadlines
    schedule: Schedule
    # payout parameters
    economics: Economics
    # terms of every task the round posts
    terms: TaskTerms
    # tensor commitment of the round features X, int8 [n, F] (its content id is in RoundOpened)
    features: bytes32
    # keccak256(labels || salt), the sponsor's commitment
    labels_hash: bytes32
    # tensor commitment of the labels y, int8 [n], once revealed
    labels: bytes32
    # whether the labels were revealed
    labels_revealed: bool
    # paid to models (and their datasets) by their gains; the rest goes back to the sponsor
    pool: uint256
    # compute budget not spent on tasks (rewards in Tasks.vy not included)
    budget: uint256
    # the most a model may reserve: at full return (cap_bps + bonus_bps) every model slot's
    # gain fits its share of the pool, so gains never need scaling down (SPEC 8.5)
    max_stake: uint256
    # the metamodel's tensor commitment, int64 [n], once recorded
    metamodel: bytes32
    # bit k set once the result of kind k is recorded
    recorded: uint256
    # ROUND_OPEN, ROUND_SETTLED or ROUND_VOID
    state: uint8


struct ModelEntry:
    # the model's slot in the round (commit order)
    slot: uint256
    # keccak256(u256(round_id) || u256(model_id) || predictions || salt)
    commitment: bytes32
    # the stake it reserved when it committed: its stake at risk, weight and gain base
    stake: uint256
    # ENTRY_COMMITTED or ENTRY_REVEALED (0: not in the round)
    state: uint8
    # whether the round still holds the reservation (until release, settle or void)
    locked: bool


struct DatasetEntry:
    # the dataset's slot in the round
    slot: uint256
    # whether the dataset has a slot in the round (its owner joined it: `join_round`)
    reserved: bool
    # whether a model naming it revealed (it is then in the mask: valued, and slashed if negative)
    active: bool
    # the stake it reserved when it joined, held until the round is settled or void
    at_risk: uint256


event DatasetPublished:
    dataset_id: indexed(uint256)
    owner: indexed(address)
    cid: String[CID_MAX]
    features: bytes32
    labels: bytes32
    rows: uint256
    n_features: uint256
    stake: uint256


event ModelRegistered:
    model_id: indexed(uint256)
    owner: indexed(address)
    cid: String[CID_MAX]
    datasets: DynArray[uint256, MODEL_DATASETS]


event StakeChanged:
    # 0 dataset, 1 model
    kind: uint8
    id: indexed(uint256)
    # the new stake
    stake: uint256


event RoundOpened:
    round_id: indexed(uint256)
    sponsor: indexed(address)
    features: bytes32
    features_cid: String[CID_MAX]
    labels_hash: bytes32
    pool: uint256
    budget: uint256


event Joined:
    round_id: indexed(uint256)
    dataset_id: indexed(uint256)
    slot: uint256
    # the stake it reserved (its stake at risk in the round)
    stake: uint256


event Committed:
    round_id: indexed(uint256)
    model_id: indexed(uint256)
    slot: uint256
    stake: uint256


event Revealed:
    round_id: indexed(uint256)
    model_id: indexed(uint256)
    slot: uint256
    predictions: Bytes[CHUNK]


event Released:
    round_id: indexed(uint256)
    model_id: indexed(uint256)


event Displaced:
    round_id: indexed(uint256)
    # 0 dataset, 1 model
    kind: uint8
    # the dataset or model whose slot a larger reservation took
    id: uint256
    slot: uint256


event LabelsRevealed:
    round_id: indexed(uint256)
    labels: Bytes[CHUNK]


event RoundTaskPosted:
    round_id: indexed(uint256)
    kind: uint256
    task_id: uint256


event TaskRewardReturned:
    round_id: indexed(uint256)
    kind: uint256
    task_id: uint256
    # added to the budget, or paid to the sponsor if the round is closed
    amount: uint256


event Recorded:
    round_id: indexed(uint256)
    kind: uint256
    commitment: bytes32


event Paid:
    round_id: indexed(uint256)
    account: indexed(address)
    # 0 dataset, 1 model, 2 sponsor
    kind: uint8
    # the dataset or model id; the round id for the sponsor
    id: uint256
    # paid to the account; negative: slashed from the stake
    amount: int256


event Settled:
    round_id: indexed(uint256)
    # gains paid to models and datasets
    paid: uint256
    # stake slashed
    slashed: uint256
    # part of the slashed stake burned
    burned: uint256
    # pool left and unspent budget, paid back to the sponsor
    refunded: uint256


event Voided:
    round_id: indexed(uint256)
    reason: String[64]


# the stake, pool and reward token
token: public(immutable(IERC20))
# the task registry that runs the round's programs
tasks: public(immutable(Tasks.__interface__))
# where datasets' and round features' bytes are published on-chain (contracts/Availability.vy)
availability: immutable(IAvailability)
# REASONS, written once at deployment (~1.2 M gas more): out of the runtime code, which EIP-170
# bounds; a revert reads only the words of its own reason
_reasons: String[1920]

# number of datasets published; ids run from 1
dataset_count: public(uint256)
# number of models registered; ids run from 1
model_count: public(uint256)
# number of rounds opened; ids run from 1
round_count: public(uint256)
# dataset id => dataset
datasets: public(HashMap[uint256, Dataset])
# model id => model
models: public(HashMap[uint256, Model])
# round id => round
rounds: public(HashMap[uint256, Round])
# round id => kind => the program
round_program: public(HashMap[uint256, ProgramRef[KINDS]])
# round id => model id of each model slot, in commit order
_round_models: HashMap[uint256, DynArray[uint256, MAX_MODELS]]
# round id => dataset id of each dataset slot, in reservation order
_round_datasets: HashMap[uint256, DynArray[uint256, MAX_DATASETS]]
# round id => model id => the model's record in the round
model_entries: public(HashMap[uint256, HashMap[uint256, ModelEntry]])
# round id => dataset id => the dataset's record in the round
dataset_entries: public(HashMap[uint256, HashMap[uint256, DatasetEntry]])
# round id => model slot => tensor commitment of the revealed predictions, int8 [n]
prediction_commitment: public(HashMap[uint256, HashMap[uint256, bytes32]])
# round id => kind => id of the kind's latest task on Tasks.vy (0: none)
task_of: public(HashMap[uint256, HashMap[uint256, uint256]])
# round id => kind => the latest task's reward while it may still return (0 once accounted)
task_reward: public(HashMap[uint256, HashMap[uint256, uint256]])
# round id => recorded scores, int64 [2M]: the models' own scores, then their leave-one-out scores
_scores: HashMap[uint256, DynArray[int256, 2 * MAX_MODELS]]
# round id => recorded data values, int64 [D]
_values: HashMap[uint256, DynArray[int256, MAX_DATASETS]]
# stakes + pool and unspent budget of every open round
owed: public(uint256)
# total burned by settlements
burned: public(uint256)


@deploy
def __init__(token_: IERC20, tasks_: address, availability_: IAvailability):
    """
    @param token_ The stake token (contracts/Token.vy).
    @param tasks_ The task registry (contracts/Tasks.vy) over the same token.
    @param availability_ The data-availability registry (contracts/Availability.vy).
    """
    assert token_.address != empty(address), "market: token is the zero address"
    assert tasks_ != empty(address), "market: tasks is the zero address"
    assert availability_.address != empty(address), "market: availability is the zero address"
    assert (staticcall Tasks.__interface__(tasks_).token()).address == token_.address, "market: tasks uses another token"
    token = token_
    tasks = Tasks.__interface__(tasks_)
    availability = availability_
    self._reasons = REASONS


# --- datasets and models ----------------------------------------------------------------------


@external
@nonreentrant
def publish_dataset(
    cid: String[CID_MAX], features_root: bytes32, labels_root: bytes32, rows: uint256, n_features: uint256, stake: uint256
) -> uint256:
    """
    @notice Publishes a dataset (its tensors' data roots and content id) and pulls `stake`.
            Both tensors' bytes must be on Availability.vy first (SPEC 8.10).
    @param features_root Data root of the features, int8 [rows, n_features].
    @param labels_root Data root of the labels, int8 [rows], each -1 or 1.
    @return uint256 The dataset id.
    """
    self._check(rows >= 1 and rows <= MAX_POINTS, E_DATASET_ROWS)
    self._check(n_features >= 1 and n_features <= MAX_FEATURES, E_FEATURES)
    # the market writes the commitments of the shape declared: a tensor of another shape, which
    # no values program could read, cannot join a round
    features: bytes32 = self._matrix_commitment(rows, n_features, features_root)
    labels: bytes32 = self._vector_commitment(DT_INT8, rows, labels_root)
    # no program may take an input a verifier cannot fetch: the bytes are in the chain's history
    self._require_available(features)
    self._require_available(labels)
    dataset_id: uint256 = self.dataset_count + 1
    self.dataset_count = dataset_id
    self.datasets[dataset_id] = Dataset(
        owner=msg.sender, features=features, labels=labels, rows=rows, n_features=n_features, stake=stake, reserved=0
    )
    self.owed += stake
    log DatasetPublished(
        dataset_id=dataset_id,
        owner=msg.sender,
        cid=cid,
        features=features,
        labels=labels,
        rows=rows,
        n_features=n_features,
        stake=stake,
    )
    self._pull(stake)
    return dataset_id


@external
@nonreentrant
def add_dataset_stake(dataset_id: uint256, amount: uint256):
    """
    @notice Adds `amount` to the dataset's free stake (owner only). It is at risk only in
            rounds that reserve it afterwards (`join_round`).
    """
    self._move_stake(DATASET, dataset_id, amount, True)


@external
@nonreentrant
def withdraw_dataset_stake(dataset_id: uint256, amount: uint256):
    """
    @notice Withdraws `amount` of the dataset's free stake (what no round reserved) to its
            owner (owner only).
    """
    self._move_stake(DATASET, dataset_id, amount, False)


@external
@nonreentrant
def register_model(cid: String[CID_MAX], datasets: DynArray[uint256, MODEL_DATASETS], stake: uint256) -> uint256:
    """
    @notice Registers a model trained on `datasets` (existing, distinct; the list may be
            empty) and pulls `stake`.
    @return uint256 The model id.
    """
    for i: uint256 in range(len(datasets), bound=MODEL_DATASETS):
        self._check(datasets[i] != 0 and datasets[i] <= self.dataset_count, E_NO_DATASET)
        for j: uint256 in range(i, bound=MODEL_DATASETS):
            self._check(datasets[j] != datasets[i], E_NAMED_TWICE)
    model_id: uint256 = self.model_count + 1
    self.model_count = model_id
    self.models[model_id] = Model(owner=msg.sender, datasets=datasets, stake=stake, reserved=0)
    self.owed += stake
    log ModelRegistered(model_id=model_id, owner=msg.sender, cid=cid, datasets=datasets)
    self._pull(stake)
    return model_id


@external
@nonreentrant
def add_model_stake(model_id: uint256, amount: uint256):
    """
    @notice Adds `amount` to the model's free stake (owner only). It is at risk only in
            rounds that reserve it afterwards (`commit`).
    """
    self._move_stake(MODEL, model_id, amount, True)


@external
@nonreentrant
def withdraw_model_stake(model_id: uint256, amount: uint256):
    """
    @notice Withdraws `amount` of the model's free stake (what no round reserved) to its
            owner (owner only).
    """
    self._move_stake(MODEL, model_id, amount, False)


# --- rounds -----------------------------------------------------------------------------------


@external
@nonreentrant
def open_round(
    shape: Shape,
    schedule: Schedule,
    economics: Economics,
    terms: TaskTerms,
    programs: ProgramRef[KINDS],
    features_root: bytes32,
    features_cid: String[CID_MAX],
    labels_hash: bytes32,
    pool: uint256,
    budget: uint256,
) -> uint256:
    """
    @notice Opens a round and pulls `pool + budget` from the caller, its sponsor.
    @param programs The metamodel, scores and values programs (kinds 0, 1, 2).
    @param features_root Data root of the round features, int8 [n, F].
    @param labels_hash keccak256(labels || salt) of the labels, int8 [n] (SPEC 8.6).
    @return uint256 The round id.
    """
    self._require_shape(shape)
    features: bytes32 = self._matrix_commitment(shape.rows, shape.features, features_root)
    self._require_available(features)
    self._check(schedule.commit_deadline > block.timestamp, E_COMMIT_NOT_FUTURE)
    # every phase bounded; a deadline not after the one before it wraps its phase around to
    # above 2^255 (or leaves it 0), which the bounds refuse
    reveal_phase: uint256 = unsafe_sub(schedule.reveal_deadline, schedule.commit_deadline)
    labels_phase: uint256 = unsafe_sub(schedule.labels_deadline, schedule.reveal_deadline)
    result_phase: uint256 = unsafe_sub(schedule.result_deadline, schedule.labels_deadline)
    self._check(
        # the commit deadline is in the future, checked just above
        unsafe_sub(schedule.commit_deadline, block.timestamp) <= MAX_COMMIT_PHASE
        and reveal_phase >= MIN_PHASE
        and reveal_phase <= MAX_PHASE
        and labels_phase >= MIN_PHASE
        and labels_phase <= MAX_PHASE
        and result_phase <= MAX_RESULT_PHASE,
        E_PHASES,
    )
    self._check(economics.factor_bps <= MAX_FACTOR_BPS, E_FACTOR)
    self._check(
        economics.cap_bps <= MAX_CAP_BPS
        and economics.data_share_bps <= BPS
        and economics.data_slash_bps <= MAX_DATA_SLASH_BPS
        and economics.bonus_bps * BONUS_CAP_DIVISOR <= economics.cap_bps,
        E_BPS,
    )
    # within Tasks.vy's ranges, so that no program's task can be refused, and short enough
    # that a task posted by the labels deadline ends before the result deadline
    self._check(
        terms.window >= MIN_WINDOW
        and terms.window <= MAX_TASK_WINDOW
        and terms.clock >= MIN_CLOCK
        and terms.clock <= MAX_TASK_CLOCK
        and terms.arity >= MIN_ARITY
        and terms.arity <= MAX_ARITY
        and terms.duration >= MIN_TASK_DURATION
        and terms.duration <= MAX_TASK_DURATION,
        E_TERMS,
    )
    # a task posted at the labels deadline is claimed, challenged and played out before the
    # result deadline (each term is at most seven days, so the sum cannot overflow)
    self._check(result_phase >= terms.duration + terms.window + 2 * terms.clock, E_RESULT_PHASE)
    self._check(
        terms.challenger_bond >= Tasks.MIN_CHALLENGER_BOND
        and terms.challenger_bond <= Tasks.MAX_CHALLENGER_BOND
        and terms.challenger_bond <= terms.solver_bond
        and terms.solver_bond <= MAX_SOLVER_BOND,
        E_BONDS,
    )
    # the budget pays all three tasks; 3 * reward overflows (and reverts) only above 2^254
    self._check(terms.reward >= MIN_REWARD and 3 * terms.reward <= budget, E_REWARD)
    for kind: uint256 in range(KINDS):
        p: ProgramRef = programs[kind]
        self._check(
            p.n_slots >= 1 and p.n_slots <= MAX_SLOTS and p.n_nodes <= MAX_NODES and p.steps >= 1 and p.steps <= MAX_STEPS,
            E_PROGRAM,
        )
        self._check(p.data_base + self._data_count(kind, shape) <= p.n_slots and p.out_slot < p.n_slots, E_LAYOUT)

    round_id: uint256 = self.round_count + 1
    self.round_count = round_id
    self.rounds[round_id] = Round(
        sponsor=msg.sender,
        shape=shape,
        schedule=schedule,
        economics=economics,
        terms=terms,
        features=features,
        labels_hash=labels_hash,
        labels=empty(bytes32),
        labels_revealed=False,
        pool=pool,
        budget=budget,
        # cap + bonus <= 3_125 and models <= 16 (checked above), so the rate cannot overflow;
        # the 1 keeps the divisor positive (a round with no return) and only rounds down
        max_stake=pool * BPS // unsafe_add(unsafe_mul(unsafe_add(economics.cap_bps, economics.bonus_bps), shape.models), 1),
        metamodel=empty(bytes32),
        recorded=0,
        state=ROUND_OPEN,
    )
    self.round_program[round_id] = programs
    self.owed += pool + budget
    log RoundOpened(
        round_id=round_id,
        sponsor=msg.sender,
        features=features,
        features_cid=features_cid,
        labels_hash=labels_hash,
        pool=pool,
        budget=budget,
    )
    self._pull(pool + budget)
    return round_id


@external
@nonreentrant
def join_round(round_id: uint256, dataset_id: uint256, amount: uint256):
    """
    @notice Puts the dataset in the round (dataset owner, before the commit deadline): it
            takes the next dataset slot, or once they are full the slot of the smallest
            reservation if `amount` is larger (as `commit`), and reserves `amount` of its free
            stake (at least the round's `min_stake`) as its stake at risk until the round is
            settled or void. It
            is valued (and may be slashed, at the round's `data_slash_bps`) only if a model
            naming it reveals; a dataset that did not join is never at risk in the round,
            whatever models name it.
    """
    self._require_open_round(round_id)
    self._check(block.timestamp < self.rounds[round_id].schedule.commit_deadline, E_COMMIT_DEADLINE)
    self._require_owner(DATASET, dataset_id)
    self._check(not self.dataset_entries[round_id][dataset_id].reserved, E_JOINED)
    shape: Shape = self.rounds[round_id].shape
    self._check(
        self.datasets[dataset_id].rows == shape.dataset_rows and self.datasets[dataset_id].n_features == shape.features,
        E_DATASET_SHAPE,
    )
    # at risk from the moment the dataset can earn, until the round is settled or void
    self._reserve(round_id, DATASET, dataset_id, amount)
    n: uint256 = len(self._round_datasets[round_id])
    if n == shape.datasets:
        n = self._displace(round_id, DATASET, dataset_id, amount)
    else:
        self._round_datasets[round_id].append(dataset_id)
    self.dataset_entries[round_id][dataset_id] = DatasetEntry(slot=n, reserved=True, active=False, at_risk=amount)
    log Joined(round_id=round_id, dataset_id=dataset_id, slot=n, stake=amount)


@external
@nonreentrant
def commit(round_id: uint256, model_id: uint256, commitment: bytes32, amount: uint256):
    """
    @notice Commits the model's predictions (model owner, before the commit deadline): the
            model takes the next model slot and reserves `amount` of its free stake (at least
            the round's `min_stake`) as its stake at risk: its weight, and the base of its
            gain or loss. Once the slots are full, a larger reservation takes the slot of the
            smallest (the first of equals), whose reservation is freed (SPEC 8.5). Of the
            datasets it names, only those whose owners joined the round (`join_round`) take
            part in it.
    @param commitment keccak256(u256(round_id) || u256(model_id) || predictions || salt).
    @param amount The stake to reserve; the rest stays free for other rounds or withdrawal.
    """
    self._require_open_round(round_id)
    self._check(block.timestamp < self.rounds[round_id].schedule.commit_deadline, E_COMMIT_DEADLINE)
    self._require_owner(MODEL, model_id)
    self._check(self.model_entries[round_id][model_id].state == 0, E_COMMITTED)
    self._reserve(round_id, MODEL, model_id, amount)
    # gains are never scaled down, so a large stake cannot dilute what other models' own
    # predictions earn
    self._check(amount <= self.rounds[round_id].max_stake, E_MAX_STAKE)
    slot: uint256 = len(self._round_models[round_id])
    if slot == self.rounds[round_id].shape.models:
        slot = self._displace(round_id, MODEL, model_id, amount)
    else:
        self._round_models[round_id].append(model_id)
    self.model_entries[round_id][model_id] = ModelEntry(
        slot=slot, commitment=commitment, stake=amount, state=ENTRY_COMMITTED, locked=True
    )
    log Committed(round_id=round_id, model_id=model_id, slot=slot, stake=amount)


@external
@nonreentrant
def reveal(round_id: uint256, model_id: uint256, predictions: Bytes[CHUNK], salt: bytes32):
    """
    @notice Reveals a committed model's predictions (anyone with the preimage) between the
            commit and reveal deadlines. Activates the model's datasets that joined the round
            (they are in the mask, so valued and possibly slashed).
    @param predictions n int8 values.
    """
    self._require_open_round(round_id)
    entry: ModelEntry = self.model_entries[round_id][model_id]
    self._check(entry.state != 0, E_NOT_COMMITTED)
    self._check(entry.state != ENTRY_REVEALED, E_REVEALED)
    self._check(block.timestamp >= self.rounds[round_id].schedule.commit_deadline, E_BEFORE_COMMIT_DEADLINE)
    self._check(block.timestamp < self.rounds[round_id].schedule.reveal_deadline, E_REVEAL_DEADLINE)
    n: uint256 = self.rounds[round_id].shape.rows
    self._check(len(predictions) == n, E_PREDICTIONS_LENGTH)
    self._check(
        keccak256(concat(convert(round_id, bytes32), convert(model_id, bytes32), predictions, salt)) == entry.commitment,
        E_PREDICTIONS,
    )

    self.model_entries[round_id][model_id].state = ENTRY_REVEALED
    self.prediction_commitment[round_id][entry.slot] = self._int8_commitment(predictions, n)
    for d: uint256 in self.models[model_id].datasets:
        # only datasets whose owners joined the round take part
        if self.dataset_entries[round_id][d].reserved:
            self.dataset_entries[round_id][d].active = True
    log Revealed(round_id=round_id, model_id=model_id, slot=entry.slot, predictions=predictions)


@external
@nonreentrant
def release(round_id: uint256, model_id: uint256):
    """
    @notice Frees the stake reserved by a model that committed but did not reveal (anyone,
            from the reveal deadline on), less the round's `min_stake`, burned: a slot is not
            free to hold (SPEC 8.5).
    """
    self._require_round(round_id)
    entry: ModelEntry = self.model_entries[round_id][model_id]
    self._check(entry.state != 0, E_NOT_COMMITTED)
    self._check(entry.state != ENTRY_REVEALED, E_RELEASE_REVEALED)
    self._check(entry.locked, E_RELEASED)
    self._check(block.timestamp >= self.rounds[round_id].schedule.reveal_deadline, E_BEFORE_REVEAL_DEADLINE)
    self._burn(self._unlock(round_id, model_id))
    log Released(round_id=round_id, model_id=model_id)


@external
@nonreentrant
def reveal_labels(round_id: uint256, labels: Bytes[CHUNK], salt: bytes32):
    """
    @notice Reveals the round's labels (anyone with the preimage) between the reveal and
            labels deadlines.
    @param labels n int8 values, each -1, 0 (row not scored) or 1.
    """
    self._require_open_round(round_id)
    self._check(not self.rounds[round_id].labels_revealed, E_LABELS_REVEALED)
    self._check(block.timestamp >= self.rounds[round_id].schedule.reveal_deadline, E_BEFORE_REVEAL_DEADLINE)
    self._check(block.timestamp < self.rounds[round_id].schedule.labels_deadline, E_LABELS_DEADLINE)
    n: uint256 = self.rounds[round_id].shape.rows
    self._check(len(labels) == n, E_LABELS_LENGTH)
    self._check(keccak256(concat(labels, salt)) == self.rounds[round_id].labels_hash, E_LABELS)
    self.rounds[round_id].labels = self._int8_commitment(labels, n)
    self.rounds[round_id].labels_revealed = True
    log LabelsRevealed(round_id=round_id, labels=labels)


@external
@nonreentrant
def post_task(round_id: uint256, kind: uint256, slots: DynArray[bytes32, MAX_SLOTS]) -> uint256:
    """
    @notice Posts the program of `kind` as a task on Tasks.vy (anyone), paying the reward from
            the round's budget (SPEC 8.3). `slots` is the program's template; the market
            writes the round's data into its data slots. One task per kind at a time: a
            reclaimable task of the kind is reclaimed first and its reward returns to the
            budget.
    @return uint256 The task id.
    """
    self._require_open_round(round_id)
    self._check(kind < KINDS, E_KIND)
    self._check(block.timestamp < self.rounds[round_id].schedule.result_deadline, E_RESULT_DEADLINE)
    if kind == KIND_METAMODEL:
        self._check(block.timestamp >= self.rounds[round_id].schedule.reveal_deadline, E_BEFORE_REVEAL_DEADLINE)
    else:
        self._check(self.rounds[round_id].labels_revealed, E_NO_LABELS)
    state: uint8 = self._sync_kind(round_id, kind)
    self._check(state != TASK_OPEN, E_RUNNING)
    self._check(state != TASK_DONE, E_TASK_DONE)
    prog: ProgramRef = self.round_program[round_id][kind]
    self._check(len(slots) == prog.n_slots and keccak256(abi_encode(slots)) == prog.template, E_TEMPLATE)
    terms: TaskTerms = self.rounds[round_id].terms

    # the template with the round's data in the program's data slots; absent models and
    # empty dataset slots keep the template's value
    table: DynArray[bytes32, MAX_SLOTS] = slots
    base: uint256 = prog.data_base
    if kind == KIND_VALUES:
        table[base] = self._int64_commitment(self._mask(round_id))
        table[base + 1] = self.rounds[round_id].labels
        table[base + 2] = self.rounds[round_id].features
        for d: uint256 in self._round_datasets[round_id]:
            entry: DatasetEntry = self.dataset_entries[round_id][d]
            if entry.active:
                table[base + 3 + 2 * entry.slot] = self.datasets[d].features
                table[base + 4 + 2 * entry.slot] = self.datasets[d].labels
    else:
        table[base] = self._int64_commitment(self._weights(round_id))
        first: uint256 = base + 1
        if kind == KIND_SCORES:
            table[first] = self.rounds[round_id].labels
            first += 1
        for m: uint256 in self._round_models[round_id]:
            entry: ModelEntry = self.model_entries[round_id][m]
            if entry.state == ENTRY_REVEALED:
                table[first + entry.slot] = self.prediction_commitment[round_id][entry.slot]
    data: DynArray[bytes32, MAX_SLOTS] = []
    for i: uint256 in range(self._data_count(kind, self.rounds[round_id].shape), bound=MAX_SLOTS):
        data.append(table[base + i])
    initial: bytes32 = merkle._state_root(0, 0, merkle._merkle(table))
    dataset_root: bytes32 = merkle._merkle(data)

    # the budget holds three rewards (open_round) and a kind is reposted only after its task's
    # reward came back, so this never underflows; if it did, it would revert
    self.rounds[round_id].budget -= terms.reward
    self.owed -= terms.reward
    self.task_reward[round_id][kind] = terms.reward
    self._check(extcall token.approve(tasks.address, terms.reward, default_return_value=True), E_TOKEN)
    task_id: uint256 = extcall tasks.post_task(
        prog.graph_root,
        prog.n_nodes,
        prog.n_slots,
        initial,
        dataset_root,
        prog.steps,
        terms.reward,
        terms.window,
        terms.clock,
        terms.solver_bond,
        terms.challenger_bond,
        terms.arity,
        block.timestamp + terms.duration,
    )
    self.task_of[round_id][kind] = task_id
    log RoundTaskPosted(round_id=round_id, kind=kind, task_id=task_id)
    return task_id


@external
@nonreentrant
def sync(round_id: uint256):
    """
    @notice Reclaims the round's reclaimable tasks and returns the reward of every reclaimed
            task (reclaimed by anyone) to the round's budget, once each; for a settled or void
            round the reward goes to the sponsor.
    """
    self._require_round(round_id)
    self._sync(round_id)


@external
@nonreentrant
def record_metamodel(round_id: uint256, slots_root: bytes32, proof: DynArray[bytes32, MAX_PROOF], commitment: bytes32):
    """
    @notice Records the metamodel's tensor commitment, int64 [n], from the finalized claim of
            the kind 0 task (anyone, once): `slots_root` is the final slot table's root and
            `proof` opens its result slot to `commitment` (SPEC 8.4).
    """
    self._require_round(round_id)
    self._check(self.rounds[round_id].recorded & 1 == 0, E_RECORDED)
    self._require_result(round_id, KIND_METAMODEL, slots_root, proof, commitment)
    self.rounds[round_id].metamodel = commitment
    self.rounds[round_id].recorded |= 1
    log Recorded(round_id=round_id, kind=KIND_METAMODEL, commitment=commitment)


@external
@nonreentrant
def record(
    round_id: uint256,
    kind: uint256,
    slots_root: bytes32,
    proof: DynArray[bytes32, MAX_PROOF],
    values: DynArray[int256, 2 * MAX_MODELS],
):
    """
    @notice Records the scores (kind 1, 2M values: own scores, then leave-one-out scores) or the data values (kind 2, D values) from
            the finalized claim of the kind's task (anyone, once per kind, before the result
            deadline): `proof` opens the final table's result slot to the commitment of
            `values` as an int64 tensor (SPEC 8.4).
    """
    self._require_open_round(round_id)
    self._check(kind == KIND_SCORES or kind == KIND_VALUES, E_RECORD_KIND)
    self._check(self.rounds[round_id].recorded & (1 << kind) == 0, E_RECORDED)
    self._check(block.timestamp < self.rounds[round_id].schedule.result_deadline, E_RESULT_DEADLINE)
    length: uint256 = 2 * self.rounds[round_id].shape.models
    if kind == KIND_VALUES:
        length = self.rounds[round_id].shape.datasets
    self._check(len(values) == length, E_VALUES_LENGTH)
    elements: DynArray[uint256, 2 * MAX_MODELS] = []
    for v: int256 in values:
        self._check(v >= INT64_MIN and v <= INT64_MAX, E_INT64)
        # two's complement in 64 bits
        elements.append(convert(v + 2**64 if v < 0 else v, uint256))
    commitment: bytes32 = self._int64_commitment(elements)
    self._require_result(round_id, kind, slots_root, proof, commitment)
    if kind == KIND_SCORES:
        self._scores[round_id] = values
    else:
        stored: DynArray[int256, MAX_DATASETS] = []
        for v: int256 in values:
            stored.append(v)
        self._values[round_id] = stored
    self.rounds[round_id].recorded |= 1 << kind
    log Recorded(round_id=round_id, kind=kind, commitment=commitment)


@external
@nonreentrant
def settle(round_id: uint256):
    """
    @notice Settles the round once its scores and values are recorded (anyone, once): slashes
            losses, pays gains, passes the data share on, burns, refunds the sponsor and
            frees every stake the round reserved (SPEC 8.5).
    """
    self._require_open_round(round_id)
    self._check(self.rounds[round_id].recorded & RECORDED_SCORES_AND_VALUES == RECORDED_SCORES_AND_VALUES, E_NOT_RECORDED)
    self._sync(round_id)

    econ: Economics = self.rounds[round_id].economics
    model_ids: DynArray[uint256, MAX_MODELS] = self._round_models[round_id]
    scores: DynArray[int256, 2 * MAX_MODELS] = self._scores[round_id]
    values: DynArray[int256, MAX_DATASETS] = self._values[round_id]
    # slot i's own score is scores[i], its leave-one-out score scores[M + i]
    loo: uint256 = self.rounds[round_id].shape.models
    cap: int256 = convert(econ.cap_bps, int256)
    factor: int256 = convert(econ.factor_bps, int256)
    gains: uint256[MAX_MODELS] = empty(uint256[MAX_MODELS])
    self.rounds[round_id].state = ROUND_SETTLED
    # a loss is at most cap_bps (<= BPS) of what this round reserved, so once the reservation
    # is freed it comes out of that part of the stake and never out of another round's
    total_loss: uint256 = self._unlock_all(round_id)

    # losses leave the stakes at once; gains are paid once the data shares are known
    for i: uint256 in range(len(model_ids), bound=MAX_MODELS):
        entry: ModelEntry = self.model_entries[round_id][model_ids[i]]
        if entry.state != ENTRY_REVEALED:
            continue
        # the own score's return plus a contribution bonus that is never negative, so nobody
        # else's predictions can lower what a model's own predictions earn. |score| < 2^63 and
        # factor <= 10^6, so no overflow; signed // truncates toward zero
        r: int256 = min(max(scores[i] * factor // 10_000, -cap), cap) + min(
            max(scores[loo + i] * factor // 10_000, 0), convert(econ.bonus_bps, int256)
        )
        if r > 0:
            gains[i] = entry.stake * convert(r, uint256) // BPS
        elif r < 0:
            total_loss += self._slash(round_id, MODEL, model_ids[i], entry.stake * convert(-r, uint256) // BPS)
    for d: uint256 in self._round_datasets[round_id]:
        entry: DatasetEntry = self.dataset_entries[round_id][d]
        if entry.active and values[entry.slot] < 0:
            total_loss += self._slash(round_id, DATASET, d, entry.at_risk * econ.data_slash_bps // BPS)

    pool: uint256 = self.rounds[round_id].pool
    budget: uint256 = self.rounds[round_id].budget
    # the pool and budget leave now, as gains and refund; the losses leave burned (_burn)
    self.owed -= pool + budget

    paid: uint256 = 0
    dpay: uint256[MAX_DATASETS] = empty(uint256[MAX_DATASETS])
    for i: uint256 in range(len(model_ids), bound=MAX_MODELS):
        g: uint256 = gains[i]
        if g == 0:
            continue
        paid += g
        share: uint256 = g * econ.data_share_bps // BPS
        # the model's positively valued datasets in the round (those that joined it are
        # active: the model revealed)
        ds: DynArray[uint256, MODEL_DATASETS] = self.models[model_ids[i]].datasets
        v_sum: uint256 = 0
        for d: uint256 in ds:
            v: int256 = self._value(round_id, d, values)
            if v > 0:
                v_sum += convert(v, uint256)
        if v_sum != 0:
            for d: uint256 in ds:
                v: int256 = self._value(round_id, d, values)
                if v > 0:
                    part: uint256 = share * convert(v, uint256) // v_sum
                    dpay[self.dataset_entries[round_id][d].slot] += part
                    # the parts are floored shares of share <= g
                    g = unsafe_sub(g, part)
        self._pay(round_id, self.models[model_ids[i]].owner, MODEL, model_ids[i], g)
    for d: uint256 in self._round_datasets[round_id]:
        slot: uint256 = self.dataset_entries[round_id][d].slot
        self._pay(round_id, self.datasets[d].owner, DATASET, d, dpay[slot])
    # every reservation is at most the round's maximum (commit), so the gains fit the pool;
    # every slash is burned, so the sponsor's refund is the same whoever is slashed
    refund: uint256 = pool - paid + budget
    self._pay(round_id, self.rounds[round_id].sponsor, SPONSOR, round_id, refund)
    log Settled(round_id=round_id, paid=paid, slashed=total_loss, burned=total_loss, refunded=refund)
    self._burn(total_loss)


@external
@nonreentrant
def void_round(round_id: uint256):
    """
    @notice Voids a round whose sponsor did not reveal the labels by the labels deadline, or
            whose scores and values were not both recorded by the result deadline (anyone).
            Once predictions are revealed the pool belongs to the participants: it is split
            evenly among the revealed models (the sponsor gets it back only if none revealed),
            and the unspent budget goes back to the sponsor. Tasks still running do not hold
            the round: reclaimable ones are reclaimed, and the reward of one reclaimed later
            goes to the sponsor (`sync`). Every stake the round reserved is freed untouched,
            but for the `min_stake` a commitment never revealed forfeits.
    """
    self._require_open_round(round_id)
    withheld: bool = not self.rounds[round_id].labels_revealed
    if withheld:
        self._check(block.timestamp >= self.rounds[round_id].schedule.labels_deadline, E_BEFORE_LABELS_DEADLINE)
    else:
        self._check(
            self.rounds[round_id].recorded & RECORDED_SCORES_AND_VALUES != RECORDED_SCORES_AND_VALUES, E_RESULTS_RECORDED
        )
        self._check(block.timestamp >= self.rounds[round_id].schedule.result_deadline, E_BEFORE_RESULT_DEADLINE)
    self._sync(round_id)

    pool: uint256 = self.rounds[round_id].pool
    budget: uint256 = self.rounds[round_id].budget
    self.owed -= pool + budget
    self.rounds[round_id].state = ROUND_VOID
    self._burn(self._unlock_all(round_id))
    # an even split, not one by stake: a sponsor's own large model cannot take the pool back
    left: uint256 = 0
    for m: uint256 in self._round_models[round_id]:
        if self.model_entries[round_id][m].state == ENTRY_REVEALED:
            left += 1
    for m: uint256 in self._round_models[round_id]:
        if self.model_entries[round_id][m].state == ENTRY_REVEALED:
            # left >= 1 here: it counts the revealed models not yet paid
            part: uint256 = pool // left
            pool = unsafe_sub(pool, part)
            left = unsafe_sub(left, 1)
            self._pay(round_id, self.models[m].owner, MODEL, m, part)
    self._pay(round_id, self.rounds[round_id].sponsor, SPONSOR, round_id, pool + budget)
    reason: String[32] = "results not recorded"
    if withheld:
        reason = "labels not revealed"
    log Voided(round_id=round_id, reason=reason)


# --- views ------------------------------------------------------------------------------------


@external
@view
def round_models(round_id: uint256) -> DynArray[uint256, MAX_MODELS]:
    """
    @notice The model id of every model slot of the round, in commit order.
    """
    return self._round_models[round_id]


@external
@view
def round_datasets(round_id: uint256) -> DynArray[uint256, MAX_DATASETS]:
    """
    @notice The dataset id of every reserved dataset slot of the round, in slot order.
    """
    return self._round_datasets[round_id]


@external
@view
def scores(round_id: uint256) -> DynArray[int256, 2 * MAX_MODELS]:
    """
    @notice The recorded scores, 2M values: the models' own scores, then their leave-one-out
            scores (empty until recorded).
    """
    return self._scores[round_id]


@external
@view
def values(round_id: uint256) -> DynArray[int256, MAX_DATASETS]:
    """
    @notice The recorded data values, D values (empty until recorded).
    """
    return self._values[round_id]


# --- internal ---------------------------------------------------------------------------------


@internal
@pure
def _data_count(kind: uint256, shape: Shape) -> uint256:
    # data slots of each program: [w, p..], [w, y, p..], [a, y, X, (X_d, L_d)..]
    if kind == KIND_METAMODEL:
        return 1 + shape.models
    if kind == KIND_SCORES:
        return 2 + shape.models
    return 3 + 2 * shape.datasets


@internal
@view
def _weights(round_id: uint256) -> DynArray[uint256, MAX_MODELS]:
    # M values, slots without a revealed model 0
    out: DynArray[uint256, MAX_MODELS] = []
    for i: uint256 in range(self.rounds[round_id].shape.models, bound=MAX_MODELS):
        out.append(0)
    for m: uint256 in self._round_models[round_id]:
        entry: ModelEntry = self.model_entries[round_id][m]
        if entry.state == ENTRY_REVEALED:
            out[entry.slot] = min(entry.stake // WEIGHT_UNIT, MAX_WEIGHT)
    return out


@internal
@view
def _mask(round_id: uint256) -> DynArray[uint256, MAX_DATASETS]:
    # D values, slots without an active dataset 0
    out: DynArray[uint256, MAX_DATASETS] = []
    for i: uint256 in range(self.rounds[round_id].shape.datasets, bound=MAX_DATASETS):
        out.append(0)
    for d: uint256 in self._round_datasets[round_id]:
        entry: DatasetEntry = self.dataset_entries[round_id][d]
        if entry.active:
            out[entry.slot] = 1
    return out


@internal
@view
def _value(round_id: uint256, d: uint256, values: DynArray[int256, MAX_DATASETS]) -> int256:
    # the recorded value of a dataset active in the round, 0 for one not in it
    entry: DatasetEntry = self.dataset_entries[round_id][d]
    if not entry.active:
        return 0
    return values[entry.slot]


@internal
@view
def _require_result(round_id: uint256, kind: uint256, slots_root: bytes32, proof: DynArray[bytes32, MAX_PROOF], leaf: bytes32):
    # the kind's task is DONE, its finalized claim ends in state(T, 0, slots_root), and the
    # proof opens the program's result slot of slots_root to `leaf` (SPEC 8.4)
    task_id: uint256 = self.task_of[round_id][kind]
    self._check(task_id != 0, E_NO_TASK)
    task: Tasks.Task = staticcall tasks.tasks(task_id)
    self._check(task.state == TASK_DONE, E_NOT_DONE)
    final_root: bytes32 = (staticcall tasks.claims(task.claim_id)).final_root
    prog: ProgramRef = self.round_program[round_id][kind]
    self._check(merkle._state_root(prog.steps, 0, slots_root) == final_root, E_FINAL_STATE)
    self._check(len(proof) == merkle._depth(prog.n_slots), E_PROOF_LENGTH)
    self._check(merkle._fold(leaf, prog.out_slot, proof, prog.n_slots) == slots_root, E_PROOF)


@internal
def _sync_kind(round_id: uint256, kind: uint256) -> uint8:
    # the state of the kind's latest task (0: none), after reclaiming it if it can be; the
    # reward of a reclaimed task returns once, to the budget (or the sponsor once closed)
    task_id: uint256 = self.task_of[round_id][kind]
    if task_id == 0:
        return 0
    if staticcall tasks.reclaimable(task_id):
        extcall tasks.reclaim(task_id)
    state: uint8 = (staticcall tasks.tasks(task_id)).state
    amount: uint256 = self.task_reward[round_id][kind]
    if state != TASK_RECLAIMED or amount == 0:
        return state
    self.task_reward[round_id][kind] = 0
    log TaskRewardReturned(round_id=round_id, kind=kind, task_id=task_id, amount=amount)
    if self.rounds[round_id].state == ROUND_OPEN:
        self.rounds[round_id].budget += amount
        self.owed += amount
    else:
        self._pay(round_id, self.rounds[round_id].sponsor, SPONSOR, round_id, amount)
    return state


@internal
def _sync(round_id: uint256):
    for kind: uint256 in range(KINDS):
        self._sync_kind(round_id, kind)


@internal
def _slash(round_id: uint256, kind: uint8, id: uint256, loss: uint256) -> uint256:
    # takes `loss`, at most what the round reserved (so at most the stake), from the stake
    if loss == 0:
        return 0
    stake: uint256 = 0
    owner: address = empty(address)
    if kind == MODEL:
        stake = self.models[id].stake - loss
        self.models[id].stake = stake
        owner = self.models[id].owner
    else:
        stake = self.datasets[id].stake - loss
        self.datasets[id].stake = stake
        owner = self.datasets[id].owner
    log Paid(round_id=round_id, account=owner, kind=kind, id=id, amount=-convert(loss, int256))
    log StakeChanged(kind=kind, id=id, stake=stake)
    return loss


@internal
def _pay(round_id: uint256, account: address, kind: uint8, id: uint256, amount: uint256):
    # logs and pushes a payment (nothing for 0)
    if amount == 0:
        return
    log Paid(round_id=round_id, account=account, kind=kind, id=id, amount=convert(amount, int256))
    self._push(account, amount)


@internal
def _move_stake(kind: uint8, id: uint256, amount: uint256, add: bool):
    # the owner adds to or withdraws from a dataset's or model's stake
    self._require_owner(kind, id)
    stake: uint256 = 0
    reserved: uint256 = 0
    if kind == MODEL:
        stake = self.models[id].stake
        reserved = self.models[id].reserved
    else:
        stake = self.datasets[id].stake
        reserved = self.datasets[id].reserved
    if add:
        stake += amount
        self.owed += amount
    else:
        # only the free stake: what rounds reserved stays until they end
        self._check(amount <= stake - reserved, E_FREE)
        # checked just above
        stake = unsafe_sub(stake, amount)
        self.owed -= amount
    if kind == MODEL:
        self.models[id].stake = stake
    else:
        self.datasets[id].stake = stake
    log StakeChanged(kind=kind, id=id, stake=stake)
    if add:
        self._pull(amount)
    else:
        self._push(msg.sender, amount)


@internal
def _unlock(round_id: uint256, model_id: uint256) -> uint256:
    # frees a model's reservation; one never revealed forfeits min_stake of it (returned, to
    # burn): otherwise M silent commitments would hold every slot for nothing
    self.model_entries[round_id][model_id].locked = False
    self.models[model_id].reserved -= self.model_entries[round_id][model_id].stake
    if self.model_entries[round_id][model_id].state == ENTRY_REVEALED:
        return 0
    return self._slash(round_id, MODEL, model_id, self.rounds[round_id].economics.min_stake)


@internal
def _burn(amount: uint256):
    # slashed stake leaves the market burned: nobody who can cause a slash gains from it
    if amount != 0:
        self.owed -= amount
        self.burned += amount
        extcall IBurnable(token.address).burn(amount)


@internal
def _displace(round_id: uint256, kind: uint8, id: uint256, amount: uint256) -> uint256:
    # once the round's slots of this kind are full: the slot of the smallest reservation (the
    # first of equals), which `amount` must exceed, goes to `id`; its holder's entry is erased
    # and its reservation freed. Taken first come, sybils reserving min_stake first would hold
    # every slot (SPEC 8.5)
    ids: DynArray[uint256, MAX_MODELS] = []
    if kind == MODEL:
        ids = self._round_models[round_id]
    else:
        ids = self._round_datasets[round_id]
    slot: uint256 = 0
    least: uint256 = max_value(uint256)
    for s: uint256 in range(len(ids), bound=MAX_MODELS):
        held: uint256 = 0
        if kind == MODEL:
            held = self.model_entries[round_id][ids[s]].stake
        else:
            held = self.dataset_entries[round_id][ids[s]].at_risk
        if held < least:
            slot = s
            least = held
    out: uint256 = ids[slot]
    if kind == MODEL:
        self._check(amount > least, E_MODELS_FULL)
        self.models[out].reserved -= least
        self.model_entries[round_id][out] = empty(ModelEntry)
        self._round_models[round_id][slot] = id
    else:
        self._check(amount > least, E_DATASETS_FULL)
        self.datasets[out].reserved -= least
        self.dataset_entries[round_id][out] = empty(DatasetEntry)
        self._round_datasets[round_id][slot] = id
    log Displaced(round_id=round_id, kind=kind, id=out, slot=slot)
    return slot


@internal
def _unlock_all(round_id: uint256) -> uint256:
    # frees every reservation the round still holds; returns what unrevealed models forfeit
    forfeited: uint256 = 0
    for m: uint256 in self._round_models[round_id]:
        if self.model_entries[round_id][m].locked:
            forfeited += self._unlock(round_id, m)
    # every dataset of the round joined it and holds its reservation until now
    for d: uint256 in self._round_datasets[round_id]:
        self.datasets[d].reserved -= self.dataset_entries[round_id][d].at_risk
    return forfeited


@internal
def _reserve(round_id: uint256, kind: uint8, id: uint256, amount: uint256):
    # reserves `amount` of the free stake for the round: the same tokens never back two
    # rounds, so no round pays gains on stake another round holds at risk
    stake: uint256 = 0
    reserved: uint256 = 0
    if kind == MODEL:
        stake = self.models[id].stake
        reserved = self.models[id].reserved
    else:
        stake = self.datasets[id].stake
        reserved = self.datasets[id].reserved
    self._check(amount <= stake - reserved, E_FREE)
    # nothing at risk earns nothing; the floor keeps dust sybils out of the round's slots
    self._check(amount > 0, E_NO_STAKE)
    self._check(amount >= self.rounds[round_id].economics.min_stake, E_MIN_STAKE)
    if kind == MODEL:
        self.models[id].reserved = reserved + amount
    else:
        self.datasets[id].reserved = reserved + amount


@internal
@view
def _require_available(commitment: bytes32):
    self._check(staticcall availability.available(commitment), E_UNAVAILABLE)


@internal
@pure
def _int8_commitment(data: Bytes[CHUNK], n: uint256) -> bytes32:
    # int8 [n] in one chunk: the data root is the leaf of the zero-padded chunk (SPEC 1.3)
    zeros: Bytes[CHUNK] = abi_encode(empty(uint256[CHUNK // 32]))
    return self._vector_commitment(DT_INT8, n, keccak256(concat(b"\x00", data, slice(zeros, 0, CHUNK - len(data)))))


@internal
@pure
def _int64_commitment(elements: DynArray[uint256, 2 * MAX_MODELS]) -> bytes32:
    # int64 [len(elements)], each element given as its 64-bit two's complement pattern; at
    # most 32 elements, 256 bytes of one chunk (SPEC 1.3)
    words: uint256[CHUNK // 32] = empty(uint256[CHUNK // 32])
    for i: uint256 in range(len(elements), bound=2 * MAX_MODELS):
        words[i // 4] |= elements[i] << (64 * (3 - i % 4))
    return self._vector_commitment(DT_INT64, len(elements), keccak256(concat(b"\x00", abi_encode(words))))


@internal
@pure
def _matrix_commitment(rows: uint256, cols: uint256, data_root: bytes32) -> bytes32:
    # the int8 [rows, cols] tensor's commitment (SPEC 1.3), both below 2^32
    return keccak256(concat(b"\x02", convert(DT_INT8 << 248 | 2 << 240 | rows << 208 | cols << 176, bytes32), data_root))


@internal
@pure
def _vector_commitment(dtype: uint256, n: uint256, data_root: bytes32) -> bytes32:
    # H(0x02 || header || data_root) of a rank-1 tensor of n < 2^32 elements (SPEC 1.3); the
    # header u8(dtype) || u8(1) || u32(n) || zeros is tensor._header(dtype, [n]), written out
    return keccak256(concat(b"\x02", convert(dtype << 248 | 1 << 240 | n << 208, bytes32), data_root))


@internal
@view
def _require_shape(shape: Shape):
    # the limits of SPEC 8.1
    self._check(shape.models >= 1 and shape.models <= MAX_MODELS, E_MODELS)
    self._check(shape.datasets >= 1 and shape.datasets <= MAX_DATASETS, E_DATASETS)
    self._check(shape.rows >= 1 and shape.rows <= MAX_ROWS, E_ROWS)
    self._check(shape.features >= 1 and shape.features <= MAX_FEATURES, E_FEATURES)
    self._check(shape.dataset_rows >= 1 and shape.dataset_rows <= MAX_POINTS, E_DATASET_ROWS)
    self._check(shape.k >= 1 and shape.k <= MAX_K, E_K)
    self._check(shape.datasets * shape.dataset_rows <= MAX_POINTS, E_POINTS)
    self._check(shape.k <= shape.datasets * shape.dataset_rows, E_K_POINTS)


@internal
@view
def _require_round(round_id: uint256):
    self._check(self.rounds[round_id].state != 0, E_NO_ROUND)


@internal
@view
def _require_open_round(round_id: uint256):
    state: uint8 = self.rounds[round_id].state
    self._check(state != 0, E_NO_ROUND)
    self._check(state != ROUND_SETTLED, E_SETTLED)
    self._check(state != ROUND_VOID, E_VOID)


@internal
@view
def _require_owner(kind: uint8, id: uint256):
    if kind == MODEL:
        owner: address = self.models[id].owner
        self._check(owner != empty(address), E_NO_MODEL)
        self._check(owner == msg.sender, E_NOT_MODEL_OWNER)
    else:
        owner: address = self.datasets[id].owner
        self._check(owner != empty(address), E_NO_DATASET)
        self._check(owner == msg.sender, E_NOT_DATASET_OWNER)


@internal
def _push(to: address, amount: uint256):
    if amount != 0:
        self._check(extcall token.transfer(to, amount, default_return_value=True), E_TOKEN)


@internal
def _pull(amount: uint256):
    if amount != 0:
        self._check(extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), E_TOKEN)


@internal
@view
def _check(ok: bool, code: uint256):
    # reverts with the reason `code` names: REASONS[code >> 8 : (code >> 8) + (code & 255)]
    if not ok:
        reason: String[2500] = concat("market: ", slice(self._reasons, code >> 8, code & 255))
        raw_revert(abi_encode(reason, method_id=method_id("Error(string)")))
