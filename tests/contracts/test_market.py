"""Unit tests of contracts/Market.vy (with contracts/Token.vy, contracts/Tasks.vy and
contracts/mocks/MockGame.vy).

One section per external function: the happy path with its payments and events, then every
revert with its reason, then the time edges one second on each side. Programs are never run:
a round's templates are arbitrary words, and a task's result is made DONE by a solver claiming
`state(T, 0, merkle(table))` for a table whose result slot holds the commitment of the values,
left unchallenged through its window and finalized. Settlement is cross-checked against
verifier/market/economics.py under hypothesis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import boa
import numpy as np
import pytest
from _court import CONTRACTS, check_reason_table, publish_tensor, tx_gas
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from verifier.commit.commitments import commit_tensor, data_root, state_root
from verifier.commit.merkle import keccak, merkle_proof, merkle_root
from verifier.core.dtypes import DType
from verifier.market import economics as econ

ROOT = Path(__file__).resolve().parents[2]
MARKET_SOURCE = CONTRACTS / "Market.vy"  # a mutated copy when BISECTML_CONTRACTS_DIR is set

E18 = 10**18
DAY = 86_400
FUNDS = 10**12 * E18
MAX_UINT = 2**256 - 1
TASK_OPEN, TASK_DONE, TASK_RECLAIMED = 1, 2, 3
ROUND_OPEN, ROUND_SETTLED, ROUND_VOID = 1, 2, 3
DATASET, MODEL, SPONSOR = 0, 1, 2
METAMODEL, SCORES, VALUES = 0, 1, 2

#: M, D, n, F, R, K
SHAPE = (3, 2, 8, 4, 16, 5)
ECONOMICS = econ.Economics(factor_bps=10_000, cap_bps=2_000, data_share_bps=1_000, data_slash_bps=500, bonus_bps=500)
#: reward, window, clock, solver_bond, challenger_bond, arity, duration
TERMS = (10 * E18, 2 * DAY, 2 * DAY, 500 * E18, econ.MIN_CHALLENGER_BOND, 4, 3 * DAY)
POOL = 1_000 * E18
BUDGET = 100 * E18
#: program layout: data slots start at DATA_BASE; the result is slot OUT_SLOT; EXTRA state slots
DATA_BASE, OUT_SLOT, EXTRA = 2, 0, 3

# --- helpers -------------------------------------------------------------------------------------


def word(*parts) -> bytes:
    return keccak(*[p if isinstance(p, bytes) else str(p).encode() for p in parts])


def i8(values) -> bytes:
    return bytes(v % 256 for v in values)


def commit_i8(values) -> bytes:
    """Commitment of an int8 vector given as ints or as its bytes."""
    if isinstance(values, bytes):
        values = [b - 256 if b > 127 else b for b in values]
    return econ.small_tensor_commitment(DType.INT8, list(values))


def commit_i64(values) -> bytes:
    return econ.small_tensor_commitment(DType.INT64, list(values))


def template_hash(slots) -> bytes:
    return keccak(abi_encode(["bytes32[]"], [list(slots)]))


def data_count(kind: int, shape) -> int:
    m, d = shape[0], shape[1]
    return (1 + m, 2 + m, 3 + 2 * d)[kind]


def events(contract, name: str) -> list:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


@dataclass
class Program:
    graph_root: bytes
    n_nodes: int
    n_slots: int
    steps: int
    data_base: int
    out_slot: int
    template: list[bytes]

    def ref(self) -> tuple:
        return (
            self.graph_root, self.n_nodes, self.n_slots, self.steps, self.data_base, self.out_slot,
            template_hash(self.template),
        )


def programs_for(shape, extra: int = EXTRA) -> list[Program]:
    """Three programs with arbitrary graphs and templates for the round's shape."""
    out = []
    for kind in range(3):
        n_slots = DATA_BASE + data_count(kind, shape) + extra
        steps = shape[2] if kind == VALUES else 1
        out.append(
            Program(word("graph", kind), 10 + kind, n_slots, steps, DATA_BASE, OUT_SLOT,
                    [word("template", kind, i) for i in range(n_slots)])
        )
    return out


@dataclass
class RoundShadow:
    shape: tuple
    schedule: tuple
    programs: list[Program]
    labels: bytes
    labels_salt: bytes
    features: bytes
    pool: int
    budget: int
    models: list[int] = field(default_factory=list)  # model id per slot
    stake: dict[int, int] = field(default_factory=dict)  # model id -> stake at risk
    preds: dict[int, bytes] = field(default_factory=dict)
    salts: dict[int, bytes] = field(default_factory=dict)
    revealed: set[int] = field(default_factory=set)
    datasets: list[int] = field(default_factory=list)  # dataset id per slot
    active: set[int] = field(default_factory=set)
    at_risk: dict[int, int] = field(default_factory=dict)


class World:
    """A test's view of the market: the contracts, the actors and a shadow of each round."""

    def __init__(self, market, token, tasks, people, availability):
        self.market, self.token, self.tasks, self.availability = market, token, tasks, availability
        self.p = people
        self.rounds: dict[int, RoundShadow] = {}
        self.datasets: dict[int, tuple] = {}  # id -> (owner, features, labels)
        self.models: dict[int, tuple] = {}  # id -> (owner, dataset ids)

    # -- datasets and models ------------------------------------------------------------------

    def publish(self, who=None, stake=100 * E18, rows=None, features=None) -> int:
        who = who or self.p.providers[0]
        r = SHAPE[4] if rows is None else rows
        f = SHAPE[3] if features is None else features
        rng = np.random.default_rng(len(self.datasets))
        x, y = rng.integers(-128, 128, (r, f)).astype(np.int8), rng.choice(np.array([-1, 1], np.int8), r)
        fc, lc = self.publish_bytes(x), self.publish_bytes(y)
        did = self.market.publish_dataset(f"bafy-data-{len(self.datasets)}", data_root(x), data_root(y), r, f, stake, sender=who)
        self.datasets[did] = (who, fc, lc)
        return did

    def publish_bytes(self, array) -> bytes:
        """Publishes the tensor's bytes on Availability.vy (SPEC 8.10); its commitment."""
        return publish_tensor(self.availability, array, sender=self.p.stranger)

    def register(self, who=None, datasets=(), stake=100 * E18) -> int:
        who = who or self.p.modelers[0]
        mid = self.market.register_model(f"bafy-model-{len(self.models)}", list(datasets), stake, sender=who)
        self.models[mid] = (who, list(datasets))
        return mid

    def populate(self, model_stakes=(300 * E18, 200 * E18, 100 * E18), dataset_stakes=(100 * E18, 50 * E18)):
        """Two datasets (one per provider) and three models: [d0], [d0, d1] and []."""
        d = [self.publish(self.p.providers[i], s) for i, s in enumerate(dataset_stakes)]
        names = ([d[0]], [d[0], d[1]], [])
        m = [self.register(self.p.modelers[i], names[i], s) for i, s in enumerate(model_stakes)]
        return d, m

    # -- rounds ---------------------------------------------------------------------------------

    def open(self, shape=SHAPE, economics=ECONOMICS, terms=TERMS, pool=POOL, budget=BUDGET, programs=None,
             schedule=None, labels=None, sponsor=None, join=True) -> int:
        """Opens a round; with `join`, every dataset published so far that fits its shape joins
        it, in id order, while dataset slots last."""
        now = boa.env.timestamp
        schedule = schedule or (now + DAY, now + 2 * DAY, now + 3 * DAY, now + 13 * DAY)
        programs = programs or programs_for(shape)
        n = shape[2]
        labels = i8(labels) if labels is not None else i8([(-1, 1, 0, 1)[r % 4] for r in range(n)])
        salt = word("labels salt", len(self.rounds))
        x = np.full((n, shape[3]), len(self.rounds) % 128, np.int8)
        features = self.publish_bytes(x)
        rid = self.market.open_round(
            shape, schedule, tuple(vars(economics).values()), terms, [p.ref() for p in programs], data_root(x),
            "bafy-round-features", econ.labels_commitment(labels, salt), pool, budget,
            sender=sponsor or self.p.sponsor,
        )
        self.rounds[rid] = RoundShadow(shape, schedule, programs, labels, salt, features, pool, budget)
        if join:
            for did in self.datasets:
                d = self.market.datasets(did)
                if len(self.rounds[rid].datasets) < shape[1] and (d.rows, d.n_features) == (shape[4], shape[3]):
                    self.join(rid, did)
        return rid

    def free(self, kind: str, id_: int) -> int:
        """The stake no round reserved."""
        s = self.market.models(id_) if kind == "model" else self.market.datasets(id_)
        return s.stake - s.reserved

    def join(self, rid: int, did: int, who=None, amount=None):
        """Joins the round reserving `amount` (all the free stake when None)."""
        amount = self.free("dataset", did) if amount is None else amount
        self.market.join_round(rid, did, amount, sender=who or self.datasets[did][0])
        out = self._take_slot(self.rounds[rid].datasets, did)
        self.rounds[rid].at_risk.pop(out, None)
        self.rounds[rid].at_risk[did] = amount

    def _take_slot(self, slots: list, id_: int) -> int | None:
        """Puts `id_` in the next slot, or in the one whose holder the call displaced (SPEC
        8.5); returns that holder."""
        displaced = events(self.market, "Displaced")
        if not displaced:
            slots.append(id_)
            return None
        slots[displaced[0].slot] = id_
        return displaced[0].id

    def preds(self, rid: int, mid: int) -> bytes:
        n = self.rounds[rid].shape[2]
        return i8([((mid * 37 + r * 11) % 201) - 100 for r in range(n)])

    def commit(self, rid: int, mid: int, preds=None, salt=None, who=None, amount=None):
        """Commits reserving `amount` (when None, the free stake up to the round's max_stake)."""
        r = self.rounds[rid]
        preds = self.preds(rid, mid) if preds is None else preds
        salt = salt or word("salt", rid, mid)
        c = econ.prediction_commitment(rid, mid, preds, salt)
        if amount is None:
            amount = min(self.free("model", mid), self.market.rounds(rid).max_stake)
        self.market.commit(rid, mid, c, amount, sender=who or self.models[mid][0])
        self._take_slot(r.models, mid)
        r.stake[mid] = amount
        r.preds[mid], r.salts[mid] = preds, salt

    def reveal(self, rid: int, mid: int, who=None):
        r = self.rounds[rid]
        self.market.reveal(rid, mid, r.preds[mid], r.salts[mid], sender=who or self.p.stranger)
        r.revealed.add(mid)
        r.active |= {d for d in self.models[mid][1] if d in r.datasets}

    def to(self, rid: int, which: str, offset: int = 0):
        """Travel to a deadline of the round (+ offset seconds)."""
        i = ("commit", "reveal", "labels", "result").index(which)
        boa.env.time_travel(seconds=self.rounds[rid].schedule[i] + offset - boa.env.timestamp)

    def reveal_labels(self, rid: int, who=None):
        r = self.rounds[rid]
        self.market.reveal_labels(rid, r.labels, r.labels_salt, sender=who or self.p.stranger)

    # -- programs and results -------------------------------------------------------------------

    def weights(self, rid: int) -> list[int]:
        r = self.rounds[rid]
        out = [0] * r.shape[0]
        for slot, mid in enumerate(r.models):
            if mid in r.revealed:
                out[slot] = econ.weight(r.stake[mid])
        return out

    def mask(self, rid: int) -> list[int]:
        r = self.rounds[rid]
        return [int(slot < len(r.datasets) and r.datasets[slot] in r.active) for slot in range(r.shape[1])]

    def table(self, rid: int, kind: int) -> list[bytes]:
        """The initial slot table the market must post for `kind` (SPEC 8.3)."""
        r = self.rounds[rid]
        prog = r.programs[kind]
        t = list(prog.template)
        b = prog.data_base
        if kind == VALUES:
            t[b] = commit_i64(self.mask(rid))
            t[b + 1] = commit_i8(r.labels)
            t[b + 2] = r.features
            for slot, d in enumerate(r.datasets):
                if d in r.active:
                    t[b + 3 + 2 * slot], t[b + 4 + 2 * slot] = self.datasets[d][1], self.datasets[d][2]
            return t
        t[b] = commit_i64(self.weights(rid))
        first = b + 1
        if kind == SCORES:
            t[first] = commit_i8(r.labels)
            first += 1
        for slot, mid in enumerate(r.models):
            if mid in r.revealed:
                t[first + slot] = commit_i8(r.preds[mid])
        return t

    def post(self, rid: int, kind: int, who=None, slots=None) -> int:
        slots = self.rounds[rid].programs[kind].template if slots is None else slots
        return self.market.post_task(rid, kind, slots, sender=who or self.p.stranger)

    def claim(self, rid: int, kind: int, leaf: bytes):
        """The solver claims a final table whose result slot holds `leaf`; returns
        (claim id, slots_root, proof)."""
        prog = self.rounds[rid].programs[kind]
        table = [word("final", rid, kind, i) for i in range(prog.n_slots)]
        table[prog.out_slot] = leaf
        root = merkle_root(table)
        tid, final, salt = self.market.task_of(rid, kind), state_root(prog.steps, 0, root), word("salt", rid, kind)
        com = self.tasks.claim_commitment(tid, final, self.p.solver, salt)
        cid = self.tasks.commit_claim(tid, com, sender=self.p.solver)
        self.tasks.reveal_claim(cid, final, salt, sender=self.p.solver)
        return cid, root, merkle_proof(table, prog.out_slot)

    def finish(self, rid: int, results: dict[int, object]) -> dict[int, tuple]:
        """Claims every kind's result, lets the window pass and finalizes; returns
        kind -> (slots_root, proof). A result is a list of ints (int64 values) or a commitment;
        scores may be M own scores (see `scores_of`)."""
        out, claims = {}, []
        for kind, res in results.items():
            if kind == SCORES and not isinstance(res, bytes):
                res = self.scores_of(rid, res)
            leaf = res if isinstance(res, bytes) else commit_i64(res)
            cid, root, proof = self.claim(rid, kind, leaf)
            claims.append(cid)
            out[kind] = (root, proof)
        boa.env.time_travel(seconds=TERMS[1])
        for cid in claims:
            self.tasks.finalize(cid, sender=self.p.stranger)
        return out

    def record(self, rid: int, kind: int, values, proofs):
        """Records `values` (scores may be M own scores, see `scores_of`)."""
        root, proof = proofs[kind]
        if kind == SCORES:
            values = self.scores_of(rid, values)
        self.market.record(rid, kind, root, proof, list(values), sender=self.p.stranger)

    def scores_of(self, rid: int, scores) -> list[int]:
        """The recorded scores, 2M values: `scores` as given, or M own scores with
        leave-one-out scores of 0."""
        m = self.market.rounds(rid).shape.models
        return list(scores) if len(scores) == 2 * m else [*scores, *[0] * (2 * m - len(scores))]

    def ready_to_settle(self, rid: int, scores, values) -> None:
        """From commits made: to the reveal deadline, labels, both tasks done and recorded.
        `scores` are the 2M recorded scores, or M own scores (leave-one-out scores 0)."""
        scores = self.scores_of(rid, scores)
        self.to(rid, "reveal")
        self.reveal_labels(rid)
        self.post(rid, SCORES)
        self.post(rid, VALUES)
        proofs = self.finish(rid, {SCORES: scores, VALUES: values})
        self.record(rid, SCORES, scores, proofs)
        self.record(rid, VALUES, values, proofs)

    def entries(self, rid: int, scores, values):
        """economics.ModelEntry / DatasetEntry lists of the round as it stands."""
        r = self.rounds[rid]
        scores = self.scores_of(rid, scores)
        m = len(scores) // 2
        models = [
            econ.ModelEntry(r.stake[mid], self.market.models(mid).stake, scores[slot], mid in r.revealed,
                            tuple(r.datasets.index(d) for d in self.models[mid][1] if d in r.datasets),
                            contribution=scores[m + slot],
                            unreleased=mid not in r.revealed and self.market.model_entries(rid, mid).locked)
            for slot, mid in enumerate(r.models)
        ]
        datasets = [
            econ.DatasetEntry(r.at_risk.get(d, 0), self.market.datasets(d).stake, values[slot], d in r.active)
            for slot, d in enumerate(r.datasets)
        ]
        return models, datasets

    def owners(self) -> set:
        return {self.p.sponsor, *self.p.providers, *self.p.modelers}

    def balances(self) -> dict:
        return {a: self.token.balanceOf(a) for a in self.owners()}

    def assert_solvent(self):
        pending = 0
        for rid in self.rounds:
            for kind in range(3):
                tid = self.market.task_of(rid, kind)
                if tid and self.tasks.tasks(tid).state == TASK_RECLAIMED:
                    pending += self.market.task_reward(rid, kind)
        assert self.token.balanceOf(self.market) == self.market.owed() + pending


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def market_deployer():
    return boa.load_partial(str(MARKET_SOURCE))


@pytest.fixture(scope="session")
def suite(token_deployer, mock_game_deployer, tasks_deployer, market_deployer, deployer):
    """A token, mock game, task registry, data-availability registry and market of the market
    tests' own, so that their minting never shows in the token of contracts/Tasks.vy's tests."""
    with boa.env.prank(deployer):
        token = token_deployer.deploy()
        game = mock_game_deployer.deploy()
        availability = boa.load_partial(str(CONTRACTS / "Availability.vy")).deploy()
        tasks = tasks_deployer.deploy(token, game, availability)
        game.set_tasks(tasks)
        market = market_deployer.deploy(token, tasks, availability)
    return SimpleNamespace(token=token, game=game, tasks=tasks, availability=availability, market=market)


@pytest.fixture(scope="session")
def token(suite):
    return suite.token


@pytest.fixture(scope="session")
def tasks(suite):
    return suite.tasks


@pytest.fixture(scope="session")
def market(suite):
    return suite.market


@pytest.fixture(scope="session")
def people(token, tasks, market, deployer):
    """Named actors, each holding FUNDS and approving both the market and the task registry."""
    g = boa.env.generate_address
    p = SimpleNamespace(
        sponsor=g("sponsor"),
        providers=[g("provider0"), g("provider1"), g("provider2")],
        modelers=[g("modeler0"), g("modeler1"), g("modeler2"), g("modeler3")],
        solver=g("solver"),
        stranger=g("stranger"),
    )
    for a in [p.sponsor, *p.providers, *p.modelers, p.solver, p.stranger]:
        token.mint(a, FUNDS, sender=deployer)
        token.approve(market, MAX_UINT, sender=a)
        token.approve(tasks, MAX_UINT, sender=a)
    return p


@pytest.fixture(scope="session")
def availability(suite):
    return suite.availability


@pytest.fixture
def w(market, token, tasks, people, availability) -> World:
    return World(market, token, tasks, people, availability)


@pytest.fixture
def committed(w):
    """A round with datasets d0, d1 and models m0 [d0], m1 [d0, d1], m2 [] committed."""
    d, m = w.populate()
    rid = w.open()
    for mid in m:
        w.commit(rid, mid)
    return SimpleNamespace(rid=rid, d=d, m=m)


@pytest.fixture
def revealed(w, committed):
    """`committed`, every model revealed, at the reveal deadline."""
    w.to(committed.rid, "commit")
    for mid in committed.m:
        w.reveal(committed.rid, mid)
    w.to(committed.rid, "reveal")
    return committed


# --- deployment and the revert table ---------------------------------------------------------


def test_init__wiring(market, token, tasks):
    assert market.token() == token.address
    assert market.tasks() == tasks.address
    assert (market.owed(), market.burned(), market.round_count()) == (0, 0, 0)
    assert (market.MAX_MODELS(), market.MAX_DATASETS(), market.MAX_ROWS()) == (16, 8, 2048)
    assert (market.WEIGHT_UNIT(), market.MAX_WEIGHT(), market.BPS()) == (10**15, 2**40 - 1, 10_000)


def test_init__zero_token__reverts(market_deployer, tasks, availability):
    with boa.reverts("market: token is the zero address"):
        market_deployer.deploy("0x" + "00" * 20, tasks, availability)


def test_init__zero_tasks__reverts(market_deployer, token, availability):
    with boa.reverts("market: tasks is the zero address"):
        market_deployer.deploy(token, "0x" + "00" * 20, availability)


def test_init__zero_availability__reverts(market_deployer, token, tasks):
    with boa.reverts("market: availability is the zero address"):
        market_deployer.deploy(token, tasks, "0x" + "00" * 20)


def test_init__tasks_of_another_token__reverts(market_deployer, tasks, availability, deployer):
    other = boa.load_partial(str(ROOT / "contracts" / "Token.vy")).deploy()
    with boa.reverts("market: tasks uses another token"):
        market_deployer.deploy(other, tasks, availability)


def test_reasons__every_code_names_exactly_one_reason():
    check_reason_table(MARKET_SOURCE, "market: ")


def test_token_call_failed__reverts(tasks_deployer, mock_game_deployer, market_deployer, availability):
    """A token that reports failure by returning False (Token.vy reverts instead) stops every
    pull, push and approve of the market: nothing is recorded as paid that did not move."""
    token = boa.load_partial(str(CONTRACTS / "mocks" / "FalseToken.vy")).deploy()
    tasks = tasks_deployer.deploy(token, mock_game_deployer.deploy(), availability)
    market = market_deployer.deploy(token, tasks, availability)
    g = boa.env.generate_address
    p = SimpleNamespace(sponsor=g("ft sponsor"), providers=[g("ft provider")], modelers=[g("ft modeler")],
                        solver=g("ft solver"), stranger=g("ft stranger"))
    for a in (p.sponsor, *p.providers, *p.modelers):
        token.mint(a, FUNDS)
        token.approve(market, MAX_UINT, sender=a)
    w = World(market, token, tasks, p, availability)
    d = [w.publish(p.providers[0], 10 * E18)]
    m = [w.register(p.modelers[0], d, 10 * E18)]
    rid = w.open()
    w.commit(rid, m[0])
    w.to(rid, "commit")
    w.reveal(rid, m[0])
    w.to(rid, "reveal")
    token.set_failing(True)
    with boa.reverts("market: token call failed"):  # _pull
        market.add_dataset_stake(d[0], 1, sender=p.providers[0])
    with boa.reverts("market: token call failed"):  # approve of a task's reward
        w.post(rid, METAMODEL)
    market.add_model_stake(m[0], 0, sender=p.modelers[0])  # nothing to move, nothing called
    token.set_failing(False)
    market.add_model_stake(m[0], 1, sender=p.modelers[0])
    token.set_failing(True)
    with boa.reverts("market: token call failed"):  # _push
        market.withdraw_model_stake(m[0], 1, sender=p.modelers[0])
    assert token.balanceOf(market) == market.owed()


def test_size__under_the_eip170_limit(market):
    assert len(boa.env.get_code(market.address)) <= 24_576


# --- economics.py twins ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from([DType.INT8, DType.INT64]),
    values=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=16),
)
def test_small_tensor_commitment__equals_commit_tensor(dtype, values):
    if dtype == DType.INT8:
        values = [v % 256 - 128 for v in values]
    arr = np.array(values, dtype=np.int8 if dtype == DType.INT8 else np.int64)
    assert econ.small_tensor_commitment(dtype, values) == commit_tensor(arr)


def test_small_tensor_commitment__full_chunk_of_predictions():
    values = [(r % 201) - 100 for r in range(2048)]
    assert econ.small_tensor_commitment(DType.INT8, values) == commit_tensor(np.array(values, dtype=np.int8))


@pytest.mark.parametrize("a, b, q", [(7, 2, 3), (-7, 2, -3), (7, -2, -3), (-7, -2, 3), (5, 0, 0), (0, 3, 0)])
def test_trunc_div__toward_zero(a, b, q):
    assert econ.trunc_div(a, b) == q


# --- datasets --------------------------------------------------------------------------------


def _published(w, rows=16, features=4):
    """Data roots of a dataset's features and labels, their bytes published on-chain."""
    x, y = np.ones((rows, features), np.int8), np.ones(rows, np.int8)
    w.publish_bytes(x)
    w.publish_bytes(y)
    return data_root(x), data_root(y)


def test_publish_dataset__stores_logs_and_pulls_stake(w, market, token, people):
    who = people.providers[0]
    before = token.balanceOf(who)
    did = market.publish_dataset("bafy-cid", *_published(w), 16, 4, 7 * E18, sender=who)
    fc, lc = commit_tensor(np.ones((16, 4), np.int8)), commit_tensor(np.ones(16, np.int8))
    (ev,) = events(market, "DatasetPublished")
    assert did == 1 and market.dataset_count() == 1
    assert (ev.dataset_id, ev.owner, ev.cid, ev.features, ev.labels) == (1, who, "bafy-cid", fc, lc)
    assert (ev.rows, ev.n_features, ev.stake) == (16, 4, 7 * E18)
    d = market.datasets(1)
    assert (d.owner, d.features, d.labels, d.rows, d.n_features, d.stake, d.reserved) == (
        who, fc, lc, 16, 4, 7 * E18, 0,
    )
    assert token.balanceOf(who) == before - 7 * E18
    assert market.owed() == 7 * E18
    w.assert_solvent()


@pytest.mark.parametrize(
    "rows, features, reason",
    [
        (0, 4, "market: dataset rows outside 1..1024"),
        (1025, 4, "market: dataset rows outside 1..1024"),
        (16, 0, "market: features outside 1..256"),
        (16, 257, "market: features outside 1..256"),
    ],
)
def test_publish_dataset__bad_shape__reverts(w, market, people, rows, features, reason):
    fc, lc = _published(w)
    with boa.reverts(reason):
        market.publish_dataset("c", fc, lc, rows, features, 0, sender=people.providers[0])


def test_publish_dataset__edges_accepted(w, market, people):
    market.publish_dataset("c", *_published(w, 1, 1), 1, 1, 0, sender=people.providers[0])
    market.publish_dataset("c", *_published(w, 1024, 256), 1024, 256, 0, sender=people.providers[0])


@pytest.mark.parametrize("missing", ["features", "labels", "both"])
def test_publish_dataset__data_not_on_chain__reverts(w, market, people, missing):
    """Issue 11.13: no program may take an input a verifier cannot fetch. A dataset whose
    features or labels were never published on Availability.vy (only their commitments are
    known) is refused, so a withholding provider cannot make the data-values task
    undisputable and finalize values of its own."""
    fc, lc = _published(w)  # data roots
    fc = word("withheld X") if missing in ("features", "both") else fc
    lc = word("withheld L") if missing in ("labels", "both") else lc
    with boa.reverts("market: data not published on Availability.vy"):
        market.publish_dataset("c", fc, lc, 16, 4, 0, sender=people.providers[0])


def test_open_round__features_not_on_chain__reverts(w, market, people):
    """Issue 11.13: a round's features, like a dataset, must be on-chain before the round opens."""
    now = boa.env.timestamp
    args = (SHAPE, (now + DAY, now + 2 * DAY, now + 3 * DAY, now + 13 * DAY), tuple(vars(ECONOMICS).values()), TERMS,
            [p.ref() for p in programs_for(SHAPE)])  # fmt: skip
    with boa.reverts("market: data not published on Availability.vy"):
        market.open_round(*args, word("withheld X"), "bafy", word("labels"), POOL, BUDGET, sender=people.sponsor)


def test_publish_dataset__data_of_another_shape__reverts(w, market, people):
    """Issue 11.13: the market computes a dataset's commitments from the shape it declares, so
    bytes published as another tensor (the same 64 bytes as int8 [16, 4], declared [8, 8]; or as
    int64) never join a round whose values program could not read them: the task would find no
    solver and the round would void, the provider's stake never valued."""
    x, y = np.full((16, 4), 77, np.int8), np.ones(16, np.int8)
    w.publish_bytes(x)
    w.publish_bytes(y)
    who = people.providers[0]
    with boa.reverts("market: data not published on Availability.vy"):
        market.publish_dataset("c", data_root(x), data_root(np.ones(8, np.int8)), 8, 8, 0, sender=who)
    wide = np.full((16, 4), 77, np.int64)
    w.publish_bytes(wide)
    with boa.reverts("market: data not published on Availability.vy"):
        market.publish_dataset("c", data_root(wide), data_root(y), 16, 4, 0, sender=who)
    assert market.publish_dataset("c", data_root(x), data_root(y), 16, 4, 0, sender=who) == 1
    d = market.datasets(1)
    assert (d.features, d.labels) == (commit_tensor(x), commit_tensor(y))


def test_open_round__features_of_another_shape__revert(w, market, people):
    """The round's features likewise: their commitment is the round shape's, so bytes of another
    shape published on Availability.vy do not open a round whose programs cannot read them."""
    now = boa.env.timestamp
    args = (SHAPE, (now + DAY, now + 2 * DAY, now + 3 * DAY, now + 13 * DAY), tuple(vars(ECONOMICS).values()), TERMS,
            [p.ref() for p in programs_for(SHAPE)])  # fmt: skip
    rows, features = SHAPE[2], SHAPE[3]
    transposed = np.full((features, rows), 77, np.int8)  # the same bytes as a [rows, features] of 77s
    w.publish_bytes(transposed)
    assert rows != features
    with boa.reverts("market: data not published on Availability.vy"):
        market.open_round(*args, data_root(transposed), "bafy", word("labels"), POOL, BUDGET, sender=people.sponsor)


def test_dataset_stake__add_and_withdraw(w, market, token, people):
    who = people.providers[0]
    did = w.publish(who, stake=10)
    market.add_dataset_stake(did, 5, sender=who)
    (ev,) = events(market, "StakeChanged")
    assert (ev.kind, ev.id, ev.stake) == (DATASET, did, 15)
    before = token.balanceOf(who)
    market.withdraw_dataset_stake(did, 15, sender=who)
    (ev,) = events(market, "StakeChanged")
    assert (ev.kind, ev.id, ev.stake) == (DATASET, did, 0)
    assert token.balanceOf(who) == before + 15
    assert market.datasets(did).stake == 0 and market.owed() == 0
    w.assert_solvent()


def test_dataset_stake__non_owner__reverts(w, market, people):
    did = w.publish(people.providers[0], stake=10)
    with boa.reverts("market: not the dataset owner"):
        market.add_dataset_stake(did, 1, sender=people.stranger)
    with boa.reverts("market: not the dataset owner"):
        market.withdraw_dataset_stake(did, 1, sender=people.stranger)


def test_dataset_stake__no_such_dataset__reverts(market, people):
    with boa.reverts("market: no such dataset"):
        market.add_dataset_stake(1, 1, sender=people.stranger)
    with boa.reverts("market: no such dataset"):
        market.withdraw_dataset_stake(0, 1, sender=people.stranger)


def test_withdraw_dataset_stake__above_stake__reverts(w, market, people):
    did = w.publish(people.providers[0], stake=10)
    with boa.reverts("market: amount exceeds the free stake"):
        market.withdraw_dataset_stake(did, 11, sender=people.providers[0])


def test_withdraw_dataset_stake__reserved_once_joined__reverts(w, market, people):
    owner = people.providers[0]
    d, _ = w.populate()
    # free until the dataset joins a round
    market.withdraw_dataset_stake(d[0], 1, sender=owner)
    market.add_dataset_stake(d[0], 1, sender=owner)
    rid = w.open()
    assert market.datasets(d[0]).reserved == 100 * E18
    with boa.reverts("market: amount exceeds the free stake"):
        market.withdraw_dataset_stake(d[0], 1, sender=owner)
    # adding is always allowed, is free, and is not at risk in a round joined before
    market.add_dataset_stake(d[0], 3, sender=owner)
    assert market.dataset_entries(rid, d[0]).at_risk == 100 * E18
    with boa.reverts("market: amount exceeds the free stake"):
        market.withdraw_dataset_stake(d[0], 4, sender=owner)
    market.withdraw_dataset_stake(d[0], 3, sender=owner)
    w.assert_solvent()


# --- models ----------------------------------------------------------------------------------


def test_register_model__stores_and_logs(w, market, token, people):
    d0, d1 = w.publish(), w.publish(people.providers[1])
    who = people.modelers[0]
    before = token.balanceOf(who)
    mid = market.register_model("bafy-m", [d1, d0], 3 * E18, sender=who)
    (ev,) = events(market, "ModelRegistered")
    assert (mid, ev.model_id, ev.owner, ev.cid, list(ev.datasets)) == (1, 1, who, "bafy-m", [d1, d0])
    m = market.models(mid)
    assert (m.owner, list(m.datasets), m.stake, m.reserved) == (who, [d1, d0], 3 * E18, 0)
    assert token.balanceOf(who) == before - 3 * E18
    w.assert_solvent()


def test_register_model__no_datasets_allowed(market, people):
    assert market.register_model("m", [], 0, sender=people.modelers[0]) == 1


@pytest.mark.parametrize("bad", [0, 3])
def test_register_model__no_such_dataset__reverts(w, market, people, bad):
    w.publish(), w.publish()
    with boa.reverts("market: no such dataset"):
        market.register_model("m", [1, bad], 0, sender=people.modelers[0])


def test_register_model__dataset_named_twice__reverts(w, market, people):
    w.publish(), w.publish()
    with boa.reverts("market: a dataset is named twice"):
        market.register_model("m", [1, 2, 1], 0, sender=people.modelers[0])


def test_model_stake__add_and_withdraw(w, market, token, people):
    who = people.modelers[0]
    mid = w.register(who, stake=10)
    market.add_model_stake(mid, 5, sender=who)
    (ev,) = events(market, "StakeChanged")
    assert (ev.kind, ev.id, ev.stake) == (MODEL, mid, 15)
    before = token.balanceOf(who)
    market.withdraw_model_stake(mid, 4, sender=who)
    assert token.balanceOf(who) == before + 4
    assert market.models(mid).stake == 11 and market.owed() == 11
    w.assert_solvent()


def test_model_stake__non_owner_and_missing__revert(w, market, people):
    mid = w.register(people.modelers[0], stake=10)
    with boa.reverts("market: not the model owner"):
        market.add_model_stake(mid, 1, sender=people.stranger)
    with boa.reverts("market: not the model owner"):
        market.withdraw_model_stake(mid, 1, sender=people.modelers[1])
    with boa.reverts("market: no such model"):
        market.add_model_stake(mid + 1, 1, sender=people.stranger)
    with boa.reverts("market: amount exceeds the free stake"):
        market.withdraw_model_stake(mid, 11, sender=people.modelers[0])


def test_withdraw_model_stake__reserved_from_commit_to_release(w, market, people, committed):
    mid, who = committed.m[2], people.modelers[2]
    assert market.models(mid).reserved == 100 * E18
    with boa.reverts("market: amount exceeds the free stake"):
        market.withdraw_model_stake(mid, 1, sender=who)
    w.to(committed.rid, "reveal")
    market.release(committed.rid, mid, sender=people.stranger)
    assert market.models(mid).reserved == 0
    market.withdraw_model_stake(mid, 100 * E18, sender=who)
    w.assert_solvent()


# --- open_round ------------------------------------------------------------------------------


def test_open_round__stores_logs_and_pulls(w, market, token, people):
    before = token.balanceOf(people.sponsor)
    rid = w.open()
    r = w.rounds[rid]
    (ev,) = events(market, "RoundOpened")
    assert (rid, ev.round_id, ev.sponsor, ev.features, ev.features_cid) == (1, 1, people.sponsor, r.features, "bafy-round-features")
    assert (ev.labels_hash, ev.pool, ev.budget) == (econ.labels_commitment(r.labels, r.labels_salt), POOL, BUDGET)
    on = market.rounds(rid)
    assert on.sponsor == people.sponsor
    assert tuple(on.shape) == SHAPE and tuple(on.schedule) == r.schedule and tuple(on.terms) == TERMS
    assert tuple(on.economics) == tuple(vars(ECONOMICS).values())
    assert (on.pool, on.budget, on.state, on.labels_revealed, on.recorded) == (POOL, BUDGET, ROUND_OPEN, False, 0)
    for kind in range(3):
        assert tuple(market.round_program(rid, kind)) == r.programs[kind].ref()
    assert token.balanceOf(people.sponsor) == before - POOL - BUDGET
    assert market.owed() == POOL + BUDGET
    w.assert_solvent()


def _shape(**over):
    s = dict(zip(("models", "datasets", "rows", "features", "dataset_rows", "k"), SHAPE))
    s.update(over)
    return tuple(s.values())


@pytest.mark.parametrize(
    "shape, reason",
    [
        (_shape(models=0), "market: models outside 1..16"),
        (_shape(models=17), "market: models outside 1..16"),
        (_shape(datasets=0), "market: datasets outside 1..8"),
        (_shape(datasets=9), "market: datasets outside 1..8"),
        (_shape(rows=0), "market: rows outside 1..2048"),
        (_shape(rows=2049), "market: rows outside 1..2048"),
        (_shape(features=0), "market: features outside 1..256"),
        (_shape(features=257), "market: features outside 1..256"),
        (_shape(dataset_rows=0), "market: dataset rows outside 1..1024"),
        (_shape(dataset_rows=1025, datasets=1), "market: dataset rows outside 1..1024"),
        (_shape(k=0), "market: k outside 1..64"),
        (_shape(k=65), "market: k outside 1..64"),
        (_shape(datasets=2, dataset_rows=513), "market: datasets * dataset rows above 1024"),
        (_shape(datasets=1, dataset_rows=4, k=5), "market: k above datasets * dataset rows"),
    ],
)
def test_open_round__shape_outside_limits__reverts(w, shape, reason):
    with boa.reverts(reason):
        w.open(shape=shape)


def test_open_round__largest_shape_accepted(w):
    shape = (16, 8, 2048, 256, 128, 64)
    w.open(shape=shape, programs=programs_for(shape, extra=1))


def test_open_round__schedule__reverts(w):
    now = boa.env.timestamp
    with boa.reverts("market: commit deadline not in the future"):
        w.open(schedule=(now, now + 2 * DAY, now + 3 * DAY, now + 13 * DAY))
    c = now + DAY
    bad = [
        (c, c, c + DAY, c + 11 * DAY),  # deadlines not increasing: a phase of 0 ..
        (c, c - 1, c + DAY, c + 11 * DAY),  # .. or wrapped around
        (c, c + DAY, c + DAY - 1, c + 11 * DAY),
        (c, c + DAY, c + 2 * DAY, c + 2 * DAY - 1),
        (now + MAX_COMMIT_PHASE + 1, now + MAX_COMMIT_PHASE + 1 + DAY, now + MAX_COMMIT_PHASE + 1 + 2 * DAY,
         now + MAX_COMMIT_PHASE + 1 + 12 * DAY),
        (c, c + DAY - 1, c + 2 * DAY, c + 12 * DAY),
        (c, c + 7 * DAY + 1, c + 8 * DAY + 1, c + 18 * DAY),
        (c, c + DAY, c + 2 * DAY - 1, c + 12 * DAY),
        (c, c + DAY, c + 8 * DAY + 1, c + 18 * DAY),
        (c, c + DAY, c + 2 * DAY, c + 32 * DAY + 1),
    ]
    for sched in bad:
        with boa.reverts("market: a phase outside the protocol's bounds"):
            w.open(schedule=sched)
    # every bound exactly
    w.open(schedule=(now + MAX_COMMIT_PHASE, now + MAX_COMMIT_PHASE + 7 * DAY, now + MAX_COMMIT_PHASE + 14 * DAY,
                     now + MAX_COMMIT_PHASE + 44 * DAY))
    w.open(schedule=(c, c + DAY, c + 2 * DAY, c + 2 * DAY + NEED))


MAX_COMMIT_PHASE = econ.MAX_COMMIT_PHASE
#: what TERMS need between the labels and result deadlines: claim period, window, both clocks
NEED = TERMS[6] + TERMS[1] + 2 * TERMS[2]


def test_open_round__result_phase_shorter_than_a_task_needs__reverts(w):
    """A task posted at the labels deadline must be claimable, challengeable and played out (both
    chess clocks) before the result deadline: the sponsor cannot choose a window longer than the
    time left to record results."""
    now = boa.env.timestamp
    c = now + DAY
    with boa.reverts("market: result phase shorter than a task needs"):
        w.open(schedule=(c, c + DAY, c + 2 * DAY, c + 2 * DAY + NEED - 1))
    terms = (TERMS[0], 7 * DAY, 7 * DAY, *TERMS[3:6], 7 * DAY)
    with boa.reverts("market: result phase shorter than a task needs"):
        w.open(terms=terms, schedule=(c, c + DAY, c + 2 * DAY, c + 2 * DAY + 28 * DAY - 1))
    w.open(terms=terms, schedule=(c, c + DAY, c + 2 * DAY, c + 2 * DAY + 28 * DAY))


@pytest.mark.parametrize(
    "field_, value, ok",
    [
        ("factor_bps", 1_000_001, 1_000_000),
        ("cap_bps", econ.MAX_CAP_BPS + 1, econ.MAX_CAP_BPS),
        ("data_share_bps", 10_001, 10_000),
        ("data_slash_bps", econ.MAX_DATA_SLASH_BPS + 1, econ.MAX_DATA_SLASH_BPS),
        ("bonus_bps", ECONOMICS.cap_bps // econ.BONUS_CAP_DIVISOR + 1, ECONOMICS.cap_bps // econ.BONUS_CAP_DIVISOR),
    ],
)
def test_open_round__economics_out_of_range__reverts(w, field_, value, ok):
    """Slash, cap and bonus rates are bounded by protocol constants, not by the sponsor: the
    contribution bonus stays at most a quarter of the cap, so payouts rest on own scores."""
    e = econ.Economics(**{**vars(ECONOMICS), field_: value})
    reason = "market: factor above 1_000_000 bps" if field_ == "factor_bps" else "market: a rate outside the protocol's bounds"
    with boa.reverts(reason):
        w.open(economics=e)
    w.open(economics=econ.Economics(**{**vars(ECONOMICS), field_: ok}))


@pytest.mark.parametrize(
    "i, value",
    [(1, 2 * DAY - 1), (1, 7 * DAY + 1), (2, 2 * DAY - 1), (2, 7 * DAY + 1), (5, 1), (5, 33), (6, DAY - 1), (6, 7 * DAY + 1)],
)
def test_open_round__task_terms_out_of_range__reverts(w, i, value):
    terms = list(TERMS)
    terms[i] = value
    with boa.reverts("market: task terms outside the market's ranges"):
        w.open(terms=tuple(terms))


@pytest.mark.parametrize(
    "solver_bond, challenger_bond, ok",
    [
        (500 * E18, 0, False),
        (500 * E18, econ.MIN_CHALLENGER_BOND - 1, False),  # below the solver's gas of a game
        (500 * E18, econ.MIN_CHALLENGER_BOND, True),
        (300 * E18, 300 * E18 + 1, False),  # above the solver bond
        (300 * E18, 300 * E18, True),
        (econ.MAX_SOLVER_BOND, econ.MAX_CHALLENGER_BOND + 1, False),
        (econ.MAX_SOLVER_BOND, econ.MAX_CHALLENGER_BOND, True),
        (econ.MAX_SOLVER_BOND + 1, econ.MIN_CHALLENGER_BOND, False),
        (0, 0, False),
    ],
)
def test_open_round__bonds_bounded__reverts(w, solver_bond, challenger_bond, ok):
    """A sponsor cannot make its tasks unchallengeable (a challenger bond no watchtower can
    post) nor unclaimable (a solver bond no solver can post): both have protocol maxima, and
    the challenger bond is at most the solver bond. Nor can it make a swarm cheap: a lost
    challenge pays the solver at least the gas of a whole game (MIN_CHALLENGER_BOND)."""
    terms = (TERMS[0], TERMS[1], TERMS[2], solver_bond, challenger_bond, TERMS[5], TERMS[6])
    if ok:
        w.open(terms=terms)
        return
    with boa.reverts("market: bonds outside the protocol's bounds"):
        w.open(terms=terms)


@pytest.mark.parametrize(
    "reward, budget, ok",
    [(0, 0, False), (E18 - 1, 3 * E18, False), (E18, 3 * E18 - 1, False), (E18, 3 * E18, True),
     (10 * E18, 29 * E18, False)],
)
def test_open_round__reward_and_budget_bounded__reverts(w, reward, budget, ok):
    """Every task pays at least 1 token and the budget pays all three tasks, so a round's
    results can always be bought."""
    terms = (reward, *TERMS[1:])
    if ok:
        w.open(terms=terms, budget=budget)
        return
    with boa.reverts("market: reward below 1 token or budget below 3 rewards"):
        w.open(terms=terms, budget=budget)


def test_bounds__economics_py_mirrors_market_vy():
    """verifier/economics.py's bounds are Market.vy's constants."""
    src = MARKET_SOURCE.read_text()
    names = ["MAX_CAP_BPS", "MAX_DATA_SLASH_BPS", "BONUS_CAP_DIVISOR", "MAX_FACTOR_BPS", "MAX_COMMIT_PHASE", "MIN_PHASE",
             "MAX_PHASE", "MAX_RESULT_PHASE", "MIN_WINDOW", "MAX_TASK_WINDOW", "MIN_CLOCK", "MAX_TASK_CLOCK",
             "MIN_TASK_DURATION", "MAX_TASK_DURATION", "MIN_REWARD", "MAX_SOLVER_BOND"]
    # the challenger bond's range is Tasks.vy's own (test_tasks.py checks it against economics.py)
    assert "Tasks.MIN_CHALLENGER_BOND" in src and "Tasks.MAX_CHALLENGER_BOND" in src
    for name in names:
        (value,) = re.findall(rf"(?m)^{name}: (?:public\()?constant\(uint256\)\)? = (.+)$", src)
        assert eval(value.replace("_", "")) == getattr(econ, name), name  # noqa: S307


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(n_slots=0), "market: program outside Tasks.vy's limits"),
        (dict(n_slots=513), "market: program outside Tasks.vy's limits"),
        (dict(n_nodes=2**32 - 1), "market: program outside Tasks.vy's limits"),
        (dict(steps=0), "market: program outside Tasks.vy's limits"),
        (dict(steps=2**63), "market: program outside Tasks.vy's limits"),
        (dict(data_base=DATA_BASE + EXTRA + 1), "market: program slots past its slot table"),
        (dict(out_slot=None), "market: program slots past its slot table"),
    ],
)
@pytest.mark.parametrize("kind", [0, 1, 2])
def test_open_round__program_out_of_range__reverts(w, kind, change, reason):
    programs = programs_for(SHAPE)
    p = programs[kind]
    for k, v in change.items():
        setattr(p, k, p.n_slots if v is None else v)
    with boa.reverts(reason):
        w.open(programs=programs)


# --- commit ----------------------------------------------------------------------------------


def test_commit__slots_stake_and_datasets(w, market, people):
    d, m = w.populate()
    rid = w.open()
    w.commit(rid, m[1])
    (ev,) = events(market, "Committed")
    assert (ev.round_id, ev.model_id, ev.slot, ev.stake) == (rid, m[1], 0, 200 * E18)
    w.commit(rid, m[0])
    assert list(market.round_models(rid)) == [m[1], m[0]]
    assert list(market.round_datasets(rid)) == [d[0], d[1]]
    e = market.model_entries(rid, m[0])
    assert (e.slot, e.stake, e.state, e.locked) == (1, 300 * E18, 1, True)
    de = market.dataset_entries(rid, d[1])
    assert (de.slot, de.reserved, de.active, de.at_risk) == (1, True, False, 50 * E18)
    assert market.models(m[0]).reserved == 300 * E18 and market.datasets(d[0]).reserved == 100 * E18
    assert market.model_entries(rid, m[0]).state == 1


def test_commit__time_edges(w, market):
    _, m = w.populate()
    rid = w.open()
    w.to(rid, "commit", -1)
    w.commit(rid, m[0])
    boa.env.time_travel(seconds=1)
    with boa.reverts("market: commit deadline passed"):
        w.commit(rid, m[1])


def test_commit__reverts(w, market, people):
    d, m = w.populate()
    rid = w.open()
    with boa.reverts("market: no such round"):
        market.commit(rid + 1, m[0], word("c"), E18, sender=people.modelers[0])
    with boa.reverts("market: not the model owner"):
        market.commit(rid, m[0], word("c"), E18, sender=people.modelers[1])
    with boa.reverts("market: no such model"):
        market.commit(rid, 99, word("c"), E18, sender=people.modelers[1])
    empty = w.register(people.modelers[3], [], 0)
    with boa.reverts("market: amount exceeds the free stake"):
        market.commit(rid, empty, word("c"), 1, sender=people.modelers[3])
    # min_stake is 0 here: only the nothing-at-risk check refuses a zero reservation
    with boa.reverts("market: no stake reserved"):
        market.commit(rid, empty, word("c"), 0, sender=people.modelers[3])
    with boa.reverts("market: amount exceeds the free stake"):
        market.commit(rid, m[0], word("c"), 300 * E18 + 1, sender=people.modelers[0])
    w.commit(rid, m[0])
    with boa.reverts("market: model already committed"):
        market.commit(rid, m[0], word("c"), E18, sender=people.modelers[0])


def test_commit__stake_below_the_round_minimum__reverts(w, market, people):
    """A per-round floor keeps dust sybils from filling the model (and dataset) slots."""
    dust = w.register(people.modelers[3], [], 1)
    rid = w.open(economics=econ.Economics(**{**vars(ECONOMICS), "min_stake": 2}))
    with boa.reverts("market: stake below the round's minimum"):
        market.commit(rid, dust, word("c"), 1, sender=people.modelers[3])
    assert market.round_models(rid) == []
    market.add_model_stake(dust, 1, sender=people.modelers[3])  # now exactly the minimum
    w.commit(rid, dust)
    assert market.round_models(rid) == [dust]


def test_commit__full_slots__a_larger_reservation_displaces_the_smallest(w, market, people):
    """Model slots are not first come: once the M slots are full, a larger reservation takes the
    slot of the smallest (the first of equals), whose reservation is freed and which may commit
    again with more; an equal one is refused (SPEC 8.5). Sybils committing min_stake first no
    longer shut skilled models out of a round."""
    _, m = w.populate()
    rid = w.open()
    for mid, amount in zip(m, (30, 20, 20), strict=True):
        w.commit(rid, mid, amount=amount * E18)
    extra = w.register(people.modelers[3], [], 100 * E18)
    with boa.reverts("market: model slots full of reservations at least as large"):
        w.commit(rid, extra, amount=20 * E18)
    w.commit(rid, extra, amount=20 * E18 + 1)
    logs = [(type(e).__name__, e.round_id, e.slot) for e in market.get_logs()]
    assert logs == [("Displaced", rid, 1), ("Committed", rid, 1)]
    (ev,) = events(market, "Displaced")
    assert (ev.kind, ev.id) == (MODEL, m[1])
    assert list(market.round_models(rid)) == [m[0], extra, m[2]]
    assert tuple(market.model_entries(rid, m[1])) == (0, b"\x00" * 32, 0, 0, False)
    assert (market.models(m[1]).reserved, market.models(extra).reserved) == (0, 20 * E18 + 1)
    w.commit(rid, m[1], amount=25 * E18)  # the displaced model bids again: the smallest is now m2's
    assert list(market.round_models(rid)) == [m[0], extra, m[1]]
    assert market.models(m[2]).reserved == 0
    w.to(rid, "commit")
    with boa.reverts("market: model not committed"):
        market.reveal(rid, m[2], w.preds(rid, m[2]), word("salt", rid, m[2]), sender=people.stranger)
    for mid in (m[0], extra, m[1]):
        w.reveal(rid, mid)
    assert [market.model_entries(rid, mid).stake for mid in market.round_models(rid)] == [30 * E18, 20 * E18 + 1, 25 * E18]
    w.assert_solvent()


def test_release__a_commitment_never_revealed_forfeits_min_stake(w, market, token, people):
    """A model that commits and never reveals loses the round's min_stake, burned, when its
    reservation is freed (by `release`, or by the round's settlement or void): M silent
    commitments would otherwise hold every slot for nothing (SPEC 8.5). A revealed model, or
    one released once already, loses nothing more."""
    _, m = w.populate()
    rid = w.open(economics=econ.Economics(**{**vars(ECONOMICS), "min_stake": 7 * E18}))
    for mid in m[:2]:
        w.commit(rid, mid, amount=50 * E18)
    w.to(rid, "commit")
    w.reveal(rid, m[0])
    w.to(rid, "reveal")
    stake, owed, burned, supply = market.models(m[1]).stake, market.owed(), market.burned(), token.totalSupply()
    market.release(rid, m[1], sender=people.stranger)
    (paid,) = events(market, "Paid")
    assert (paid.kind, paid.id, paid.amount) == (MODEL, m[1], -7 * E18)
    assert (market.models(m[1]).stake, market.models(m[1]).reserved) == (stake - 7 * E18, 0)
    assert (market.owed(), market.burned(), token.totalSupply()) == (owed - 7 * E18, burned + 7 * E18, supply - 7 * E18)
    assert not market.model_entries(rid, m[1]).locked
    with boa.reverts("market: stake already released"):
        market.release(rid, m[1], sender=people.stranger)
    with boa.reverts("market: model revealed; its stake is at risk"):
        market.release(rid, m[0], sender=people.stranger)
    w.assert_solvent()


# --- join_round ------------------------------------------------------------------------------


def test_join_round__takes_the_next_slot(w, market, people):
    d, _ = w.populate()
    rid = w.open(join=False)
    w.join(rid, d[1], amount=20 * E18)
    (ev,) = events(market, "Joined")
    assert (ev.round_id, ev.dataset_id, ev.slot, ev.stake) == (rid, d[1], 0, 20 * E18)
    assert market.dataset_entries(rid, d[1]).at_risk == market.datasets(d[1]).reserved == 20 * E18
    w.join(rid, d[0])
    assert list(market.round_datasets(rid)) == [d[1], d[0]]
    de = market.dataset_entries(rid, d[0])
    assert (de.slot, de.reserved, de.active, de.at_risk) == (1, True, False, 100 * E18)
    # the stake is at risk, and reserved, from the moment the dataset can earn
    assert market.datasets(d[0]).reserved == 100 * E18
    with boa.reverts("market: amount exceeds the free stake"):
        market.withdraw_dataset_stake(d[0], 1, sender=people.providers[0])


def test_join_round__reverts(w, market, people):
    d, _ = w.populate()
    rid = w.open(join=False)
    with boa.reverts("market: no such round"):
        market.join_round(rid + 1, d[0], E18, sender=people.providers[0])
    with boa.reverts("market: not the dataset owner"):
        market.join_round(rid, d[0], E18, sender=people.stranger)
    with boa.reverts("market: no such dataset"):
        market.join_round(rid, 99, E18, sender=people.stranger)
    w.join(rid, d[0])
    with boa.reverts("market: dataset already in the round"):
        market.join_round(rid, d[0], E18, sender=people.providers[0])


def test_join_round__time_edges(w, market, people):
    d, _ = w.populate()
    rid = w.open(join=False)
    w.to(rid, "commit", -1)
    w.join(rid, d[0])
    boa.env.time_travel(seconds=1)
    with boa.reverts("market: commit deadline passed"):
        market.join_round(rid, d[1], E18, sender=people.providers[1])


def test_join_round__full_slots__a_larger_reservation_displaces_the_smallest(w, market, people):
    """Dataset slots are not first come either: once the D slots are full, a larger reservation
    takes the slot of the smallest, whose reservation is freed; an equal one is refused."""
    d, _ = w.populate()  # D = 2
    d2 = w.publish(people.providers[2])
    rid = w.open(join=False)
    w.join(rid, d[0], amount=30 * E18)
    w.join(rid, d[1], amount=20 * E18)
    with boa.reverts("market: dataset slots full of reservations at least as large"):
        w.join(rid, d2, amount=20 * E18)
    w.join(rid, d2, amount=20 * E18 + 1)
    (ev,) = events(market, "Displaced")
    assert (ev.round_id, ev.kind, ev.id, ev.slot) == (rid, DATASET, d[1], 1)
    assert list(market.round_datasets(rid)) == [d[0], d2]
    assert tuple(market.dataset_entries(rid, d[1])) == (0, False, False, 0)
    assert (market.datasets(d[1]).reserved, market.datasets(d2).reserved) == (0, 20 * E18 + 1)
    assert market.dataset_entries(rid, d2).slot == 1
    w.join(rid, d[1], amount=25 * E18)  # back in, in the slot of the smallest: d2's
    assert list(market.round_datasets(rid)) == [d[0], d[1]]
    assert market.datasets(d2).reserved == 0
    w.assert_solvent()


def test_join_round__stake_below_the_round_minimum__reverts(w, market, people):
    """The floor that keeps dust sybils out of the model slots keeps them out of the dataset
    slots too."""
    dust = w.publish(people.providers[2], stake=1)
    rid = w.open(economics=econ.Economics(**{**vars(ECONOMICS), "min_stake": 2}), join=False)
    with boa.reverts("market: stake below the round's minimum"):
        market.join_round(rid, dust, 1, sender=people.providers[2])
    market.add_dataset_stake(dust, 1, sender=people.providers[2])
    w.join(rid, dust)


@pytest.mark.parametrize("rows, features", [(10, SHAPE[3]), (SHAPE[4], 5)])
def test_join_round__dataset_of_another_shape__reverts(w, market, people, rows, features):
    odd = w.publish(people.providers[2], rows=rows, features=features)
    rid = w.open()
    with boa.reverts("market: dataset shape is not the round's"):
        market.join_round(rid, odd, E18, sender=people.providers[2])


def test_commit__datasets_not_in_the_round_are_left_out(w, market, people):
    """A model may name datasets that did not join: they take no slot, and its reveal puts
    nothing of theirs at risk."""
    d, m = w.populate()
    rid = w.open(join=False)
    w.join(rid, d[1])
    w.commit(rid, m[1])  # names d0 and d1; only d1 joined
    assert list(market.round_datasets(rid)) == [d[1]]
    w.to(rid, "commit")
    w.reveal(rid, m[1])
    assert market.datasets(d[0]).reserved == 0 and not market.dataset_entries(rid, d[0]).active
    assert market.datasets(d[1]).reserved == 50 * E18 and market.dataset_entries(rid, d[1]).active
    with boa.reverts("market: amount exceeds the free stake"):
        market.withdraw_dataset_stake(d[1], 1, sender=people.providers[1])
    market.withdraw_dataset_stake(d[0], 1, sender=people.providers[0])


# --- reveal ----------------------------------------------------------------------------------


def test_reveal__stores_commitment_activates_datasets(w, market, people, committed):
    rid, d, m = committed.rid, committed.d, committed.m
    w.to(rid, "commit")
    w.reveal(rid, m[1])
    (ev,) = events(market, "Revealed")
    assert (ev.round_id, ev.model_id, ev.slot, ev.predictions) == (rid, m[1], 1, w.rounds[rid].preds[m[1]])
    assert market.prediction_commitment(rid, 1) == commit_i8(w.rounds[rid].preds[m[1]])
    assert market.model_entries(rid, m[1]).state == 2
    for did, stake in ((d[0], 100 * E18), (d[1], 50 * E18)):
        de = market.dataset_entries(rid, did)
        assert (de.active, de.at_risk) == (True, stake)
        assert market.datasets(did).reserved == stake
    w.reveal(rid, m[0])  # d0 already active: its at-risk stays, its reservation is not taken twice
    assert market.datasets(d[0]).reserved == 100 * E18
    # what post_task commits: the revealed models' weights and the active datasets' mask
    w.to(rid, "reveal")
    w.reveal_labels(rid)
    assert _posts_vector(w, rid, METAMODEL, [300_000, 200_000, 0])
    assert _posts_vector(w, rid, VALUES, [1, 1])


def _posts_vector(w, rid: int, kind: int, expected: list[int]) -> bool:
    """Whether the task the market posts for `kind` commits `expected` as its weights (kinds 0,
    1) or mask (kind 2), the other data slots as the shadow has them."""
    tid = w.post(rid, kind)
    table = w.table(rid, kind)
    table[DATA_BASE] = commit_i64(expected)
    return w.tasks.tasks(tid).dataset_root == merkle_root(table[DATA_BASE : DATA_BASE + data_count(kind, SHAPE)])


def test_reveal__weights_are_capped(w, market, people):
    big = 2**40 * 10**15 + 5
    mid = w.register(people.modelers[0], [], big)
    rid = w.open(pool=big)
    w.commit(rid, mid)
    w.to(rid, "commit")
    w.reveal(rid, mid)
    w.to(rid, "reveal")
    assert _posts_vector(w, rid, METAMODEL, [2**40 - 1, 0, 0])


def test_reveal__time_edges(w, market, committed):
    rid, m = committed.rid, committed.m
    w.to(rid, "commit", -1)
    with boa.reverts("market: commit deadline not reached"):
        w.reveal(rid, m[0])
    boa.env.time_travel(seconds=1)
    w.reveal(rid, m[0])
    w.to(rid, "reveal", -1)
    w.reveal(rid, m[1])
    boa.env.time_travel(seconds=1)
    with boa.reverts("market: reveal deadline passed"):
        w.reveal(rid, m[2])


def test_reveal__mismatches__revert(w, market, people, committed):
    rid, m = committed.rid, committed.m
    r = w.rounds[rid]
    w.to(rid, "commit")
    preds, salt = r.preds[m[0]], r.salts[m[0]]
    with boa.reverts("market: predictions do not match the commitment"):
        market.reveal(rid, m[0], preds, word("wrong salt"), sender=people.stranger)
    with boa.reverts("market: predictions do not match the commitment"):
        market.reveal(rid, m[0], i8([1] * len(preds)), salt, sender=people.stranger)
    # m1 copies m0's commitment preimage: the model id is bound, so it does not open as m1
    with boa.reverts("market: predictions do not match the commitment"):
        market.reveal(rid, m[1], preds, salt, sender=people.stranger)
    with boa.reverts("market: predictions are not n bytes"):
        market.reveal(rid, m[0], preds + b"\x00", salt, sender=people.stranger)
    with boa.reverts("market: model not committed"):
        market.reveal(rid, 99, preds, salt, sender=people.stranger)
    w.reveal(rid, m[0])
    with boa.reverts("market: model already revealed"):
        market.reveal(rid, m[0], preds, salt, sender=people.stranger)


def test_reveal__copied_commitment_cannot_reveal_the_original(w, market, people):
    """A copycat commits the victim's commitment word for its own model: after the victim
    reveals, the copycat cannot open it with the now public predictions."""
    _, m = w.populate()
    rid = w.open()
    w.commit(rid, m[0])
    victim = econ.prediction_commitment(rid, m[0], w.rounds[rid].preds[m[0]], w.rounds[rid].salts[m[0]])
    market.commit(rid, m[1], victim, E18, sender=people.modelers[1])
    w.to(rid, "commit")
    w.reveal(rid, m[0])
    with boa.reverts("market: predictions do not match the commitment"):
        market.reveal(rid, m[1], w.rounds[rid].preds[m[0]], w.rounds[rid].salts[m[0]], sender=people.modelers[1])


# --- release ---------------------------------------------------------------------------------


def test_release__unlocks_an_unrevealed_model(w, market, people, committed):
    rid, m = committed.rid, committed.m
    w.to(rid, "commit")
    w.reveal(rid, m[0])
    w.to(rid, "reveal", -1)
    with boa.reverts("market: reveal deadline not reached"):
        market.release(rid, m[2], sender=people.stranger)
    boa.env.time_travel(seconds=1)
    market.release(rid, m[2], sender=people.stranger)
    (ev,) = events(market, "Released")
    assert (ev.round_id, ev.model_id) == (rid, m[2])
    assert market.models(m[2]).reserved == 0 and not market.model_entries(rid, m[2]).locked
    with boa.reverts("market: stake already released"):
        market.release(rid, m[2], sender=people.stranger)
    with boa.reverts("market: model revealed; its stake is at risk"):
        market.release(rid, m[0], sender=people.stranger)
    with boa.reverts("market: model not committed"):
        market.release(rid, 99, sender=people.stranger)
    with boa.reverts("market: no such round"):
        market.release(rid + 1, m[2], sender=people.stranger)


# --- reveal_labels ---------------------------------------------------------------------------


def test_reveal_labels__stores_commitment(w, market, committed):
    rid = committed.rid
    w.to(rid, "reveal")
    w.reveal_labels(rid)
    (ev,) = events(market, "LabelsRevealed")
    assert (ev.round_id, ev.labels) == (rid, w.rounds[rid].labels)
    on = market.rounds(rid)
    assert on.labels_revealed and on.labels == commit_i8(w.rounds[rid].labels)


def test_reveal_labels__time_edges(w, committed):
    rid = committed.rid
    w.to(rid, "reveal", -1)
    with boa.reverts("market: reveal deadline not reached"):
        w.reveal_labels(rid)
    w.to(rid, "labels", -1)
    w.reveal_labels(rid)


def test_reveal_labels__after_deadline__reverts(w, committed):
    w.to(committed.rid, "labels")
    with boa.reverts("market: labels deadline passed"):
        w.reveal_labels(committed.rid)


def test_reveal_labels__mismatches__revert(w, market, people, committed):
    rid = committed.rid
    r = w.rounds[rid]
    w.to(rid, "reveal")
    with boa.reverts("market: labels do not match the commitment"):
        market.reveal_labels(rid, r.labels, word("x"), sender=people.stranger)
    with boa.reverts("market: labels do not match the commitment"):
        market.reveal_labels(rid, i8([1] * len(r.labels)), r.labels_salt, sender=people.stranger)
    with boa.reverts("market: labels are not n bytes"):
        market.reveal_labels(rid, r.labels[:-1], r.labels_salt, sender=people.stranger)
    w.reveal_labels(rid)
    with boa.reverts("market: labels already revealed"):
        w.reveal_labels(rid)


# --- post_task -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [METAMODEL, SCORES, VALUES])
def test_post_task__fills_data_slots_and_pays_from_budget(w, market, tasks, token, people, kind):
    d, m = w.populate()
    rid = w.open()
    for mid in m:
        w.commit(rid, mid)
    w.to(rid, "commit")
    w.reveal(rid, m[0])  # m1 never reveals: its slot and d1 keep the template
    w.reveal(rid, m[2])
    w.to(rid, "reveal")
    w.reveal_labels(rid)
    tasks_before = token.balanceOf(tasks)
    tid = w.post(rid, kind)
    (ev,) = events(market, "RoundTaskPosted")
    assert (ev.round_id, ev.kind, ev.task_id, market.task_of(rid, kind)) == (rid, kind, tid, tid)

    table = w.table(rid, kind)
    prog = w.rounds[rid].programs[kind]
    assert table != prog.template
    count = data_count(kind, SHAPE)
    t = tasks.tasks(tid)
    assert t.poster == market.address
    assert t.initial_root == state_root(0, 0, merkle_root(table))
    assert t.dataset_root == merkle_root(table[DATA_BASE : DATA_BASE + count])
    assert (t.graph_root, t.n_nodes, t.n_slots, t.steps) == (prog.graph_root, prog.n_nodes, prog.n_slots, prog.steps)
    assert (t.reward, t.window, t.clock, t.solver_bond, t.challenger_bond, t.arity) == TERMS[:6]
    assert t.deadline == boa.env.timestamp + TERMS[6]
    assert market.rounds(rid).budget == BUDGET - TERMS[0]
    assert market.task_reward(rid, kind) == TERMS[0]
    assert token.balanceOf(tasks) == tasks_before + TERMS[0]
    assert market.owed() == POOL + BUDGET - TERMS[0] + sum(s for s in (300, 200, 100, 100, 50)) * E18
    w.assert_solvent()


def test_post_task__kind_order__reverts(w, market, people, committed):
    rid = committed.rid
    w.to(rid, "reveal", -1)
    with boa.reverts("market: reveal deadline not reached"):
        w.post(rid, METAMODEL)
    boa.env.time_travel(seconds=1)
    w.post(rid, METAMODEL)
    for kind in (SCORES, VALUES):
        with boa.reverts("market: labels not revealed"):
            w.post(rid, kind)
    with boa.reverts("market: kind is not 0, 1 or 2"):
        w.post(rid, 3, slots=[])
    with boa.reverts("market: no such round"):
        market.post_task(rid + 1, 0, [], sender=people.stranger)


def test_post_task__wrong_template__reverts(w, committed):
    rid = committed.rid
    w.to(rid, "reveal")
    slots = list(w.rounds[rid].programs[METAMODEL].template)
    with boa.reverts("market: slots are not the program's template"):
        w.post(rid, METAMODEL, slots=[*slots[:-1], word("other")])
    with boa.reverts("market: slots are not the program's template"):
        w.post(rid, METAMODEL, slots=slots[:-1])
    with boa.reverts("market: slots are not the program's template"):
        w.post(rid, METAMODEL, slots=w.rounds[rid].programs[SCORES].template)


def test_post_task__twice_then_done__reverts(w, market, committed):
    rid = committed.rid
    w.to(rid, "reveal")
    w.post(rid, METAMODEL)
    with boa.reverts("market: a round task is still running"):
        w.post(rid, METAMODEL)
    w.finish(rid, {METAMODEL: word("metamodel")})
    with boa.reverts("market: task of this kind is done"):
        w.post(rid, METAMODEL)


def test_post_task__budget_pays_every_kind_and_its_reposts(w, market, tasks, committed):
    """The budget holds three rewards (open_round), so every kind can always be posted, and a
    reclaimed task's reward comes back before its kind is posted again."""
    rid = w.open(budget=3 * TERMS[0], join=False)
    mid = w.register(w.p.modelers[3], [], 10 * E18)  # the committed models' stakes are reserved
    w.commit(rid, mid)
    w.to(rid, "commit")
    w.reveal(rid, mid)
    w.to(rid, "reveal")
    w.reveal_labels(rid)
    first = w.post(rid, METAMODEL)
    w.post(rid, SCORES)
    w.post(rid, VALUES)
    assert market.rounds(rid).budget == 0
    boa.env.time_travel(seconds=TERMS[6])
    assert tasks.reclaimable(first)
    w.post(rid, METAMODEL)
    assert market.rounds(rid).budget == 0
    w.assert_solvent()


def test_post_task__after_result_deadline__reverts(w, committed):
    w.to(committed.rid, "result")
    with boa.reverts("market: result deadline passed"):
        w.post(committed.rid, METAMODEL)


def test_post_task__reposts_after_its_own_reclaim(w, market, tasks, committed):
    rid = committed.rid
    w.to(rid, "reveal")
    first = w.post(rid, METAMODEL)
    boa.env.time_travel(seconds=TERMS[6])
    assert tasks.reclaimable(first)
    second = w.post(rid, METAMODEL)
    (returned,) = events(market, "TaskRewardReturned")
    assert (returned.round_id, returned.kind, returned.task_id, returned.amount) == (rid, METAMODEL, first, TERMS[0])
    assert tasks.tasks(first).state == TASK_RECLAIMED and second == first + 1
    assert market.rounds(rid).budget == BUDGET - TERMS[0]
    w.assert_solvent()


def test_sync__returns_a_third_party_reclaim_once(w, market, tasks, token, people, committed):
    rid = committed.rid
    w.to(rid, "reveal")
    tid = w.post(rid, METAMODEL)
    boa.env.time_travel(seconds=TERMS[6])
    tasks.reclaim(tid, sender=people.stranger)
    # the reward is back in the market's balance, not yet in its books
    assert token.balanceOf(market) == market.owed() + TERMS[0]
    w.assert_solvent()
    market.sync(rid, sender=people.stranger)
    assert market.rounds(rid).budget == BUDGET and market.task_reward(rid, METAMODEL) == 0
    assert token.balanceOf(market) == market.owed()
    market.sync(rid, sender=people.stranger)
    assert market.rounds(rid).budget == BUDGET
    assert events(market, "TaskRewardReturned") == []
    with boa.reverts("market: no such round"):
        market.sync(rid + 1, sender=people.stranger)


def test_sync__reclaims_itself(w, market, tasks, committed):
    rid = committed.rid
    w.to(rid, "reveal")
    tid = w.post(rid, METAMODEL)
    boa.env.time_travel(seconds=TERMS[6])
    market.sync(rid)
    assert tasks.tasks(tid).state == TASK_RECLAIMED and market.rounds(rid).budget == BUDGET


# --- record ----------------------------------------------------------------------------------


def test_record_metamodel__stores_the_product(w, market, people, committed):
    rid = committed.rid
    w.to(rid, "reveal")
    w.post(rid, METAMODEL)
    mm = word("metamodel commitment")
    proofs = w.finish(rid, {METAMODEL: mm})
    root, proof = proofs[METAMODEL]
    with boa.reverts("market: slots root is not the final state's"):
        market.record_metamodel(rid, word("x"), proof, mm, sender=people.stranger)
    with boa.reverts("market: proof does not open the result slot"):
        market.record_metamodel(rid, root, proof, word("x"), sender=people.stranger)
    with boa.reverts("market: proof does not open the result slot"):
        market.record_metamodel(rid, root, [word("y"), *proof[1:]], mm, sender=people.stranger)
    with boa.reverts("market: wrong proof length"):
        market.record_metamodel(rid, root, proof[:-1], mm, sender=people.stranger)
    market.record_metamodel(rid, root, proof, mm, sender=people.stranger)
    (ev,) = events(market, "Recorded")
    assert (ev.round_id, ev.kind, ev.commitment) == (rid, METAMODEL, mm)
    assert market.rounds(rid).metamodel == mm and market.rounds(rid).recorded == 1
    with boa.reverts("market: result already recorded"):
        market.record_metamodel(rid, root, proof, mm, sender=people.stranger)


def test_record__before_the_task_is_done__reverts(w, market, people, committed):
    rid = committed.rid
    w.to(rid, "reveal")
    with boa.reverts("market: no task of this kind"):
        market.record_metamodel(rid, word("r"), [], word("c"), sender=people.stranger)
    w.post(rid, METAMODEL)
    _, root, proof = w.claim(rid, METAMODEL, word("c"))
    with boa.reverts("market: task not done; finalize a claim first"):
        market.record_metamodel(rid, root, proof, word("c"), sender=people.stranger)


def test_record__scores_and_values(w, market, people, revealed):
    rid = revealed.rid
    w.reveal_labels(rid)
    w.post(rid, SCORES)
    w.post(rid, VALUES)
    scores, values = [120, -(2**63), 2**63 - 1, 0, -1, 5], [-5, 7]
    proofs = w.finish(rid, {SCORES: scores, VALUES: values})
    with boa.reverts("market: proof does not open the result slot"):
        w.record(rid, SCORES, [121, *scores[1:]], proofs)
    with boa.reverts("market: values are not 2M scores or D values"):  # M values: the own scores alone
        market.record(rid, SCORES, *proofs[SCORES], scores[:3], sender=people.stranger)
    with boa.reverts("market: values are not 2M scores or D values"):
        w.record(rid, VALUES, scores, proofs)
    with boa.reverts("market: value outside int64"):
        w.record(rid, VALUES, [2**63, 7], proofs)
    with boa.reverts("market: value outside int64"):
        w.record(rid, VALUES, [-(2**63) - 1, 7], proofs)
    with boa.reverts("market: kind is not 1 or 2; use record_metamodel"):
        w.record(rid, METAMODEL, scores, proofs | {METAMODEL: proofs[SCORES]})
    with boa.reverts("market: results not recorded"):
        market.settle(rid, sender=people.stranger)
    w.record(rid, SCORES, scores, proofs)
    (ev,) = events(market, "Recorded")
    assert (ev.kind, ev.commitment) == (SCORES, commit_i64(scores))
    with boa.reverts("market: result already recorded"):
        w.record(rid, SCORES, scores, proofs)
    with boa.reverts("market: results not recorded"):
        market.settle(rid, sender=people.stranger)
    w.record(rid, VALUES, values, proofs)
    assert list(market.scores(rid)) == scores and list(market.values(rid)) == values
    assert market.rounds(rid).recorded == 6


def test_record__after_result_deadline__reverts(w, revealed):
    rid = revealed.rid
    w.reveal_labels(rid)
    w.post(rid, SCORES)
    proofs = w.finish(rid, {SCORES: [1, 2, 3, 4, 5, 6]})
    w.to(rid, "result", -1)
    w.record(rid, SCORES, [1, 2, 3, 4, 5, 6], proofs)
    boa.env.time_travel(seconds=1)
    with boa.reverts("market: result deadline passed"):
        w.record(rid, VALUES, [1, 2], proofs | {VALUES: proofs[SCORES]})


# --- settle ----------------------------------------------------------------------------------


def _settle_and_check(w, rid, scores, values, economics=ECONOMICS, budget_left=None):
    """Settles and checks every balance, stake, lock and event against economics.payouts."""
    market, token = w.market, w.token
    models, datasets = w.entries(rid, scores, values)
    r = w.rounds[rid]
    # settle first takes back the reward of every reclaimable or reclaimed task of the round
    budget = market.rounds(rid).budget
    for kind in range(3):
        tid = market.task_of(rid, kind)
        if tid and (w.tasks.reclaimable(tid) or w.tasks.tasks(tid).state == TASK_RECLAIMED):
            budget += market.task_reward(rid, kind)
    expected = econ.payouts(models, datasets, economics, r.pool, budget)
    # the sponsor never receives slashed stake: at most its pool and the unspent budget return
    assert expected.refund <= r.pool + budget
    before = w.balances()
    stakes_m = {mid: market.models(mid).stake for mid in r.models}
    stakes_d = {d: market.datasets(d).stake for d in r.datasets}
    # each reservation the round still holds is freed once
    locks_m = {mid: market.models(mid).reserved - market.model_entries(rid, mid).locked * r.stake[mid]
               for mid in r.models}
    locks_d = {d: market.datasets(d).reserved - r.at_risk[d] for d in r.datasets}
    supply, burned = token.totalSupply(), market.burned()

    market.settle(rid, sender=w.p.stranger)
    paid_events = events(market, "Paid")
    settled_events = events(market, "Settled")

    got = {a: token.balanceOf(a) - before[a] for a in before}
    want = dict.fromkeys(before, 0)
    want_events = []
    for slot, mid in enumerate(r.models):
        owner = w.models[mid][0]
        amount = expected.model_payouts[slot]
        if amount > 0:
            want[owner] += amount
        assert market.models(mid).stake == stakes_m[mid] + min(amount, 0)
        assert market.models(mid).reserved == locks_m[mid]
        if amount:
            want_events.append((owner, MODEL, mid, amount))
    for slot, d in enumerate(r.datasets):
        owner = w.datasets[d][0]
        amount = expected.dataset_payouts[slot]
        if amount > 0:
            want[owner] += amount
        assert market.datasets(d).stake == stakes_d[d] + min(amount, 0)
        assert market.datasets(d).reserved == locks_d[d]
        if amount:
            want_events.append((owner, DATASET, d, amount))
    want[w.p.sponsor] += expected.refund
    if expected.refund:
        want_events.append((w.p.sponsor, SPONSOR, rid, expected.refund))
    assert got == want
    assert sorted((e.account, e.kind, e.id, e.amount) for e in paid_events) == sorted(want_events)
    (settled,) = settled_events
    assert (settled.paid, settled.slashed, settled.burned, settled.refunded) == (
        expected.paid, expected.slashed, expected.burned, expected.refund,
    )
    assert token.totalSupply() == supply - expected.burned
    assert market.burned() == burned + expected.burned
    assert market.rounds(rid).state == ROUND_SETTLED
    w.assert_solvent()
    return expected


def test_settle__happy_path(w, market, people, revealed):
    rid = revealed.rid
    scores, values = [900, -3_000, 40], [25_000, -4_000]
    w.ready_to_settle(rid, scores, values)
    s = _settle_and_check(w, rid, scores, values)
    # m0 gains 9% (r = 900), m1 loses the cap (20%), m2 gains 0.4%; d1 is slashed 5%
    assert s.model_payouts[1] == -40 * E18 and s.dataset_payouts[1] == -(50 * E18 * 500 // 10_000)
    # the pool covers the gains, so the whole slashed stake is burned and the sponsor gets back
    # exactly what the gains left of its pool: no slash refunds the party who chose the inputs
    assert s.dataset_payouts[0] > 0 and s.burned == s.slashed == 40 * E18 + 25 * 10**17
    with boa.reverts("market: round already settled"):
        market.settle(rid, sender=people.stranger)
    with boa.reverts("market: round already settled"):
        market.void_round(rid, sender=people.stranger)
    # every stake of the round is free again
    market.withdraw_model_stake(revealed.m[1], 1, sender=people.modelers[1])
    market.withdraw_dataset_stake(revealed.d[1], 1, sender=people.providers[1])


def test_commit__above_the_round_s_max_stake__reverts(w, market, people):
    """Issue 11.7: gains are never scaled down, so no stake can dilute what another model's
    own predictions earn. A model reserves at most max_stake = pool * BPS / ((cap_bps +
    bonus_bps) * M), and at full return every model's gain then fits the pool."""
    e = econ.Economics(10_000, 2_500, 0, 0, 500)
    _, m = w.populate(model_stakes=(300 * E18, 300 * E18, 300 * E18))
    pool = 90 * E18
    rid = w.open(pool=pool, economics=e)
    cap = market.rounds(rid).max_stake
    assert cap == econ.max_model_stake(pool, 3, e) == pool * 10_000 // (3_000 * 3 + 1)
    with boa.reverts("market: stake above the round's maximum"):
        w.commit(rid, m[0], amount=cap + 1)
    for mid in m:
        w.commit(rid, mid, amount=cap)
    w.to(rid, "commit")
    for mid in m:
        w.reveal(rid, mid)
    # every model at the cap and the full bonus: the gains take the whole pool, unscaled
    scores = [20_000, 20_000, 20_000, 20_000, 20_000, 20_000]
    w.ready_to_settle(rid, scores, [0, 0])
    s = _settle_and_check(w, rid, scores, [0, 0], e)
    assert s.model_payouts == [cap * 3_000 // 10_000] * 3
    assert pool - 10**16 < s.paid <= pool and s.refund == pool - s.paid + BUDGET - 2 * TERMS[0]


def test_commit__a_zero_pool_round_takes_no_stake(w, market, people):
    """A round without a pool can pay no gain, so it puts no stake at risk either."""
    _, m = w.populate()
    rid = w.open(pool=0)
    assert market.rounds(rid).max_stake == 0
    with boa.reverts("market: stake above the round's maximum"):
        w.commit(rid, m[0], amount=E18)


def test_settle__contribution_bonus_is_bounded_and_never_negative(w, market, people):
    """Issue 11.7: a model's return is its own score's, clipped to the cap, plus a bonus for
    beating the others' metamodel that is never negative and at most bonus_bps: however bad
    its leave-one-out score, it earns what its own predictions earn."""
    e = econ.Economics(10_000, 2_000, 0, 0, 500)
    _, m = w.populate(model_stakes=(100 * E18, 100 * E18, 100 * E18))
    rid = w.open(economics=e)
    for mid in m:
        w.commit(rid, mid)
    w.to(rid, "commit")
    for mid in m:
        w.reveal(rid, mid)
    # own scores 10%, 10%, -5%; leave-one-out scores far below 0, 3%, 1%
    scores = [1_000, 1_000, -500, -20_000, 300, 100]
    w.ready_to_settle(rid, scores, [0, 0])
    s = _settle_and_check(w, rid, scores, [0, 0], e)
    assert s.returns_bps == [1_000, 1_000 + 300, -500 + 100]
    assert s.model_payouts == [10 * E18, 13 * E18, -4 * E18]


def _ready_many(w, rounds, scores, values):
    """Every round of `rounds` (opened together, commits made) revealed, labelled, and its
    scores and values recorded; the tasks are claimed within their claim periods and
    finalized together."""
    w.to(rounds[0], "commit")
    for rid in rounds:
        for mid in w.rounds[rid].models:
            w.reveal(rid, mid)
    w.to(rounds[0], "reveal")
    for rid in rounds:
        w.reveal_labels(rid)
        w.post(rid, SCORES)
        w.post(rid, VALUES)
    proofs, claims = {}, []
    scores = w.scores_of(rounds[0], scores)
    for rid in rounds:
        proofs[rid] = {}
        for kind, res in ((SCORES, scores), (VALUES, values)):
            cid, root, proof = w.claim(rid, kind, commit_i64(res))
            claims.append(cid)
            proofs[rid][kind] = (root, proof)
    boa.env.time_travel(seconds=TERMS[1])
    for cid in claims:
        w.tasks.finalize(cid, sender=w.p.stranger)
    for rid in rounds:
        w.record(rid, SCORES, scores, proofs[rid])
        w.record(rid, VALUES, values, proofs[rid])


def test_commit__a_stake_backs_one_round_at_a_time(w, market, people):
    """Tokens reserved by one round cannot be reserved by another: a model whose whole stake
    backs round A cannot commit to round B until it adds stake or A ends."""
    mid = w.register(people.modelers[0], [], 10 * E18)
    did = w.publish(people.providers[0], stake=10 * E18)
    a, b = w.open(join=False), w.open(join=False)
    w.commit(a, mid)
    w.join(a, did)
    with boa.reverts("market: amount exceeds the free stake"):
        market.commit(b, mid, word("c"), 1, sender=people.modelers[0])
    with boa.reverts("market: amount exceeds the free stake"):
        market.join_round(b, did, 1, sender=people.providers[0])
    market.add_model_stake(mid, 3, sender=people.modelers[0])
    w.commit(b, mid)
    assert market.model_entries(b, mid).stake == 3 and market.models(mid).reserved == 10 * E18 + 3
    w.assert_solvent()


def test_settle__gains_of_rounds_sharing_a_stake_add_up_to_one_stake(w, market, people):
    """Issue 11.11: a stake split across rounds earns in each on its part only, so five rounds
    at the cap pay 25% of the stake in all, not 25% in each."""
    e = econ.Economics(10_000, econ.MAX_CAP_BPS, 0, 0, 0)
    mid = w.register(people.modelers[0], [], 10 * E18)
    rounds = [w.open(economics=e) for _ in range(5)]
    for rid in rounds:
        w.commit(rid, mid, amount=2 * E18)
    assert w.free("model", mid) == 0
    scores, values = [10_000, 0, 0], [0, 0]
    _ready_many(w, rounds, scores, values)
    paid = 0
    for rid in rounds:
        paid += _settle_and_check(w, rid, scores, values, e).paid
    assert paid == 10 * E18 * econ.MAX_CAP_BPS // econ.BPS
    assert market.models(mid).reserved == 0 and market.models(mid).stake == 10 * E18


def test_settle__a_loss_never_takes_stake_another_round_reserved(w, market, people):
    """A round's loss comes out of its own reservation: round A's maximal loss leaves the
    stake round B reserved whole, B then loses its full share of it, and only the free stake
    can be withdrawn meanwhile."""
    e = econ.Economics(10_000, econ.MAX_CAP_BPS, 0, 0, 0)
    who = people.modelers[0]
    mid = w.register(who, [], 10 * E18)
    a, b = w.open(economics=e), w.open(economics=e)
    w.commit(a, mid, amount=4 * E18)
    w.commit(b, mid, amount=6 * E18)
    scores, values = [-10_000, 0, 0], [0, 0]
    _ready_many(w, [a, b], scores, values)
    s = _settle_and_check(w, a, scores, values, e)
    assert s.slashed == E18  # 25% of A's 4, nothing of B's 6
    m = market.models(mid)
    assert (m.stake, m.reserved) == (9 * E18, 6 * E18)
    with boa.reverts("market: amount exceeds the free stake"):
        market.withdraw_model_stake(mid, 3 * E18 + 1, sender=who)
    s = _settle_and_check(w, b, scores, values, e)
    assert s.slashed == 15 * E18 // 10  # 25% of B's 6, uncapped by A's loss
    m = market.models(mid)
    assert (m.stake, m.reserved) == (75 * E18 // 10, 0)
    market.withdraw_model_stake(mid, 75 * E18 // 10, sender=who)
    w.assert_solvent()


def test_settle__dataset_loss_is_its_own_reservation(w, market, people):
    """A dataset in two rounds loses, in each, data_slash_bps of what that round reserved."""
    e = econ.Economics(10_000, econ.MAX_CAP_BPS, 0, econ.MAX_DATA_SLASH_BPS, 0)
    who = people.providers[0]
    did = w.publish(who, stake=10 * E18)
    mid = w.register(people.modelers[0], [did], 10 * E18)
    a, b = w.open(economics=e, join=False), w.open(economics=e, join=False)
    w.join(a, did, amount=3 * E18)
    w.join(b, did, amount=7 * E18)
    w.commit(a, mid, amount=5 * E18)
    w.commit(b, mid, amount=5 * E18)
    scores, values = [0, 0, 0], [-1, 0]
    _ready_many(w, [a, b], scores, values)
    assert _settle_and_check(w, a, scores, values, e).slashed == 3 * E18 // 10
    assert (market.datasets(did).stake, market.datasets(did).reserved) == (97 * E18 // 10, 7 * E18)
    assert _settle_and_check(w, b, scores, values, e).slashed == 7 * E18 // 10
    assert (market.datasets(did).stake, market.datasets(did).reserved) == (9 * E18, 0)


def test_settle__reclaims_an_idle_task_first(w, market, tasks, people, revealed):
    """The metamodel task nobody solved is reclaimed by settle; its reward joins the refund."""
    rid = revealed.rid
    meta = w.post(rid, METAMODEL)
    w.ready_to_settle(rid, [1, 2, 3], [1, 1])
    boa.env.time_travel(seconds=TERMS[6])
    assert tasks.reclaimable(meta)
    s = _settle_and_check(w, rid, [1, 2, 3], [1, 1])
    assert tasks.tasks(meta).state == TASK_RECLAIMED and market.task_reward(rid, METAMODEL) == 0
    assert s.refund == POOL - s.paid + BUDGET - 2 * TERMS[0]


@pytest.mark.parametrize("end", ["settle", "void"])
def test_settle_and_void__a_commitment_never_revealed_forfeits_min_stake(w, market, people, end):
    """A commitment still unrevealed and unreleased when its round settles or voids forfeits the
    round's min_stake there, burned, once (SPEC 8.5): the settlement matches economics.payouts
    with `unreleased`, the void frees every other stake untouched; a revealed model, and one
    released before, lose nothing to it."""
    e = econ.Economics(**{**vars(ECONOMICS), "min_stake": 7 * E18})
    _, m = w.populate()
    rid = w.open(economics=e)
    for mid in m:
        w.commit(rid, mid, amount=50 * E18)
    w.to(rid, "commit")
    w.reveal(rid, m[2])
    w.to(rid, "reveal")
    market.release(rid, m[0], sender=people.stranger)  # forfeits here, and not again below
    if end == "settle":
        scores, values = [0, 0, 0], [0, 0]
        w.ready_to_settle(rid, scores, values)
        s = _settle_and_check(w, rid, scores, values, e)
        assert s.model_payouts == [0, -7 * E18, 0] and s.burned == 7 * E18
    else:
        w.to(rid, "labels")
        _void_and_check(w, rid, "labels not revealed")
    assert [market.models(mid).stake for mid in m] == [293 * E18, 193 * E18, 100 * E18]
    assert [market.models(mid).reserved for mid in m] == [0, 0, 0]


def test_settle__unrevealed_models_keep_everything(w, market, people, committed):
    rid = committed.rid
    w.to(rid, "commit")
    w.reveal(rid, committed.m[2])  # names no dataset: d0, d1 stay inactive
    scores, values = [-20_000, -20_000, 20_000], [-9, -9]
    w.ready_to_settle(rid, scores, values)
    s = _settle_and_check(w, rid, scores, values)
    assert s.model_payouts[:2] == [0, 0] and s.dataset_payouts == [0, 0]


model_stakes = st.integers(1, 10**24)
economics_st = st.builds(
    econ.Economics,
    factor_bps=st.integers(0, 1_000_000),
    cap_bps=st.integers(0, econ.MAX_CAP_BPS),
    data_share_bps=st.integers(0, 10_000),
    data_slash_bps=st.integers(0, econ.MAX_DATA_SLASH_BPS),
    bonus_bps=st.integers(0, econ.MAX_CAP_BPS // econ.BONUS_CAP_DIVISOR),
).filter(lambda e: e.bonus_bps * econ.BONUS_CAP_DIVISOR <= e.cap_bps)


@settings(
    max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    stakes=st.lists(model_stakes, min_size=3, max_size=3),
    data_stakes=st.lists(st.integers(1, 10**24), min_size=2, max_size=2),  # a round reserves > 0
    reveals=st.lists(st.booleans(), min_size=3, max_size=3),
    scores=st.lists(st.one_of(st.integers(-20_000, 20_000), st.integers(-(2**63), 2**63 - 1)), min_size=6, max_size=6),
    values=st.lists(st.one_of(st.integers(-(10**6), 10**6), st.just(0)), min_size=2, max_size=2),
    economics=economics_st,
    pool=st.one_of(st.just(0), st.integers(0, 10**24)),
)
@example(
    stakes=[300 * E18, 200 * E18, 100 * E18], data_stakes=[100 * E18, 50 * E18], reveals=[True, True, True],
    scores=[20_000, 20_000, -5, 20_000, -20_000, 3], values=[-1, 0], economics=ECONOMICS, pool=10**4,
)
@example(
    stakes=[E18, E18, E18], data_stakes=[E18, 1], reveals=[True, True, False],
    scores=[100, 300, 0, 0, 50, 0], values=[0, 5], economics=econ.Economics(10_000, 2_500, 10_000, 1_000, 625), pool=E18,
)
def test_settle__matches_economics(market, token, tasks, people, availability, stakes, data_stakes, reveals, scores,
                                   values, economics, pool):
    w = World(market, token, tasks, people, availability)
    d, m = w.populate(stakes, data_stakes)
    rid = w.open(economics=economics, pool=pool)
    if market.rounds(rid).max_stake == 0:  # a pool too small to pay any gain takes no stake
        with boa.reverts("market: no stake reserved"):
            w.commit(rid, m[0])
        return
    for mid in m:
        w.commit(rid, mid)
    w.to(rid, "commit")
    for mid, yes in zip(m, reveals):
        if yes:
            w.reveal(rid, mid)
    w.ready_to_settle(rid, scores, values)
    s = _settle_and_check(w, rid, scores, values, economics)
    # an honest party never loses stake, and gains fit the pool unscaled
    assert s.paid <= pool
    for slot, mid in enumerate(m):
        if not reveals[slot] or scores[slot] >= 0:
            assert s.model_payouts[slot] >= 0
    for slot in range(2):
        if values[slot] >= 0:
            assert s.dataset_payouts[slot] >= 0


# --- void_round ------------------------------------------------------------------------------


def _void_and_check(w, rid, reason):
    """Voids and checks every balance, stake, lock and event against economics.void_payouts."""
    market, r = w.market, w.rounds[rid]
    budget = market.rounds(rid).budget
    for kind in range(3):
        tid = market.task_of(rid, kind)
        if tid and (w.tasks.reclaimable(tid) or w.tasks.tasks(tid).state == TASK_RECLAIMED):
            budget += market.task_reward(rid, kind)
    models, _ = w.entries(rid, [0] * r.shape[0], [0] * r.shape[1])
    pay, refund = econ.void_payouts(models, r.pool, budget)
    # a commitment never revealed (nor released) forfeits min_stake, burned
    min_stake = market.rounds(rid).economics.min_stake
    forfeits = {mid: min_stake for mid, e in zip(r.models, models, strict=True) if e.unreleased}
    stakes = {m: market.models(m).stake - forfeits.get(m, 0) for m in w.models}
    stakes |= {("d", d): market.datasets(d).stake for d in w.datasets}
    before, supply, burned = w.balances(), w.token.totalSupply(), market.burned()
    market.void_round(rid, sender=w.p.stranger)
    want = dict.fromkeys(before, 0)
    for slot, mid in enumerate(r.models):
        want[w.models[mid][0]] += pay[slot]
    want[w.p.sponsor] += refund
    assert {a: w.token.balanceOf(a) - before[a] for a in before} == want
    (ev,) = events(market, "Voided")
    assert (ev.round_id, ev.reason) == (rid, reason)
    assert market.rounds(rid).state == ROUND_VOID
    # nobody loses stake but what a silent commitment forfeits, and every stake the round held is free
    assert stakes == {m: market.models(m).stake for m in w.models} | {("d", d): market.datasets(d).stake for d in w.datasets}
    assert (market.burned(), w.token.totalSupply()) == (burned + sum(forfeits.values()), supply - sum(forfeits.values()))
    for mid in r.models:
        assert not market.model_entries(rid, mid).locked
    w.assert_solvent()
    return pay, refund


def test_void_round__labels_withheld_splits_the_pool_evenly(w, market, token, people, committed):
    rid, m = committed.rid, committed.m
    w.to(rid, "commit")
    w.reveal(rid, m[0])
    w.reveal(rid, m[1])
    w.to(rid, "labels", -1)
    with boa.reverts("market: labels deadline not reached"):
        market.void_round(rid, sender=people.stranger)
    boa.env.time_travel(seconds=1)
    pay, refund = _void_and_check(w, rid, "labels not revealed")
    assert pay == [POOL // 2, POOL // 2, 0] and refund == BUDGET
    for mid in m:
        assert market.models(mid).reserved == 0
    for d in committed.d:
        assert market.datasets(d).reserved == 0
    assert market.owed() == (300 + 200 + 100 + 100 + 50) * E18
    with boa.reverts("market: round is void"):
        market.void_round(rid, sender=people.stranger)
    with boa.reverts("market: round is void"):
        market.settle(rid, sender=people.stranger)


def test_void_payouts__parts_add_up_to_the_pool():
    models = [econ.ModelEntry(1, 1, 0, r) for r in (True, False, True, True)]
    assert econ.void_payouts(models, 10, 5) == ([3, 0, 3, 4], 5)
    assert econ.void_payouts(models[1:2], 10, 5) == ([0], 15)


def test_void_round__nobody_revealed_refunds_the_sponsor(w, market, token, people, committed):
    w.to(committed.rid, "labels")
    before = token.balanceOf(people.sponsor)
    market.void_round(committed.rid, sender=people.stranger)
    assert token.balanceOf(people.sponsor) == before + POOL + BUDGET


def test_void_round__results_missing_pays_the_pool_to_the_revealed_models(w, market, token, people, revealed):
    """Once predictions are revealed the pool is the participants': a sponsor who has seen
    them and the labels cannot take the pool back by letting the results go unrecorded."""
    rid = revealed.rid
    w.reveal_labels(rid)
    w.post(rid, SCORES)
    w.post(rid, VALUES)
    proofs = w.finish(rid, {SCORES: [1, 2, 3], VALUES: [1, 1]})
    w.record(rid, SCORES, [1, 2, 3], proofs)
    w.to(rid, "result", -1)
    with boa.reverts("market: result deadline not reached"):
        market.void_round(rid, sender=people.stranger)
    boa.env.time_travel(seconds=1)
    pay, refund = _void_and_check(w, rid, "results not recorded")
    assert pay == [POOL // 3, POOL // 3, POOL - 2 * (POOL // 3)] and refund == BUDGET - 2 * TERMS[0]


def test_void_round__results_recorded__reverts(w, market, people, revealed):
    rid = revealed.rid
    w.ready_to_settle(rid, [1, 2, 3], [1, 1])
    w.to(rid, "result")
    with boa.reverts("market: results recorded; settle the round"):
        market.void_round(rid, sender=people.stranger)
    market.settle(rid, sender=people.stranger)


def test_void_round__does_not_wait_for_a_live_claim(w, market, tasks, token, people, revealed):
    """A task still running at the result deadline does not hold the round: void reclaims what
    it can, releases every stake, and a reward that comes back later goes to the sponsor."""
    rid = revealed.rid
    meta = w.post(rid, METAMODEL)
    w.reveal_labels(rid)
    w.post(rid, SCORES)
    cid, _, _ = w.claim(rid, SCORES, word("whatever"))
    w.to(rid, "result")
    assert tasks.tasks(market.task_of(rid, SCORES)).state == TASK_OPEN
    _void_and_check(w, rid, "results not recorded")
    assert tasks.tasks(meta).state == TASK_RECLAIMED
    assert market.task_reward(rid, SCORES) == TERMS[0]  # still out, with the live claim
    tasks.finalize(cid, sender=people.stranger)  # the solver is paid; nothing comes back
    market.sync(rid, sender=people.stranger)
    assert token.balanceOf(market) == market.owed()


def test_sync__after_settle_pays_the_sponsor(w, market, tasks, token, people, revealed):
    rid = revealed.rid
    meta = w.post(rid, METAMODEL)
    w.ready_to_settle(rid, [1, 2, 3], [1, 1])
    market.settle(rid, sender=people.stranger)
    boa.env.time_travel(seconds=TERMS[6])
    tasks.reclaim(meta, sender=people.stranger)
    before = token.balanceOf(people.sponsor)
    market.sync(rid, sender=people.stranger)
    assert token.balanceOf(people.sponsor) == before + TERMS[0]
    w.assert_solvent()
    assert token.balanceOf(market) == market.owed()


# --- gas -------------------------------------------------------------------------------------


def _gas(fn, *args, **kw) -> int:
    fn(*args, **kw)
    data = fn.prepare_calldata(*args)
    return tx_gas(fn.contract._computation.get_gas_used(), data)


def test_gas__happy_path(w, market, tasks, people):
    """Gas of each call of one round (n = 96, a 60-slot template, 3 models, 2 datasets)."""
    shape = (3, 2, 96, 4, 16, 5)
    programs = programs_for(shape, extra=60 - DATA_BASE - data_count(SCORES, shape))
    d, m = w.populate()
    rid = w.open(shape=shape, programs=programs)
    gas = {}
    r = w.rounds[rid]
    for mid in m:
        preds, salt = w.preds(rid, mid), word("salt", rid, mid)
        c = econ.prediction_commitment(rid, mid, preds, salt)
        stake = market.models(mid).stake
        gas[f"commit m{mid}"] = _gas(market.commit, rid, mid, c, stake, sender=w.models[mid][0])
        r.models.append(mid)
        r.stake[mid] = stake
        r.preds[mid], r.salts[mid] = preds, salt
    r.datasets = list(market.round_datasets(rid))
    w.to(rid, "commit")
    for mid in m:
        gas[f"reveal m{mid} (n=96)"] = _gas(market.reveal, rid, mid, r.preds[mid], r.salts[mid], sender=people.stranger)
    w.to(rid, "reveal")
    gas["reveal_labels (n=96)"] = _gas(market.reveal_labels, rid, r.labels, r.labels_salt, sender=people.stranger)
    for kind in range(3):
        gas[f"post_task kind {kind} ({programs[kind].n_slots} slots)"] = _gas(
            market.post_task, rid, kind, programs[kind].template, sender=people.stranger
        )
    scores, values = [300, -200, 100, 40, -30, 20], [50, -5]
    proofs = w.finish(rid, {SCORES: scores, VALUES: values, METAMODEL: word("mm")})
    root, proof = proofs[METAMODEL]
    gas["record_metamodel"] = _gas(market.record_metamodel, rid, root, proof, word("mm"), sender=people.stranger)
    for kind, vals in ((SCORES, scores), (VALUES, values)):
        root, proof = proofs[kind]
        gas[f"record kind {kind}"] = _gas(market.record, rid, kind, root, proof, vals, sender=people.stranger)
    gas["settle (3 models, 2 datasets)"] = _gas(market.settle, rid, sender=people.stranger)
    for k, v in gas.items():
        print(f"{k:40s} {v:>9,}")
    assert all(v < 1_000_000 for v in gas.values())


# --- bounds twin -------------------------------------------------------------------------------


def _around(*values):
    """Each value and its neighbours one either side."""
    return st.sampled_from(sorted({x + d for x in values for d in (-1, 0, 1) if x + d >= 0}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    phases=st.tuples(_around(1, econ.MAX_COMMIT_PHASE), _around(econ.MIN_PHASE, econ.MAX_PHASE),
                     _around(econ.MIN_PHASE, econ.MAX_PHASE), _around(NEED, econ.MAX_RESULT_PHASE)),
    rates=st.tuples(_around(econ.MAX_CAP_BPS), _around(econ.MAX_DATA_SLASH_BPS),
                    _around(econ.MAX_CAP_BPS // econ.BONUS_CAP_DIVISOR)),
    terms=st.tuples(_around(econ.MIN_REWARD), _around(econ.MIN_WINDOW, econ.MAX_TASK_WINDOW),
                    _around(econ.MIN_CLOCK, econ.MAX_TASK_CLOCK), _around(econ.MAX_SOLVER_BOND, 5 * E18),
                    _around(econ.MAX_CHALLENGER_BOND, 5 * E18, 0), st.sampled_from([1, 2, 32, 33]),
                    _around(econ.MIN_TASK_DURATION, econ.MAX_TASK_DURATION)),
    budget_rewards=st.sampled_from([0, 2, 3]),
)
def test_round_bounds_error__is_open_round_s_verdict(w, phases, rates, terms, budget_rewards):
    """verifier/economics.round_bounds_error refuses exactly what open_round refuses, with its
    reason, so that a client can check a round's terms before it pays gas."""
    now = boa.env.timestamp
    c = now + phases[0]
    schedule = (c, c + phases[1], c + phases[1] + phases[2], c + phases[1] + phases[2] + phases[3])
    e = econ.Economics(**{**vars(ECONOMICS), "cap_bps": rates[0], "data_slash_bps": rates[1], "bonus_bps": rates[2]})
    budget = budget_rewards * terms[0] + (budget_rewards == 3)
    reason = econ.round_bounds_error(now, schedule, e, terms, budget)
    if reason is None:
        w.open(schedule=schedule, economics=e, terms=terms, budget=budget)
    else:
        with boa.reverts(reason):
            w.open(schedule=schedule, economics=e, terms=terms, budget=budget)
