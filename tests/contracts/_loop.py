"""The closed loop's contract tests' world (tests/contracts/test_loop*.py): the loop's own
deployment (Token, asset, Pool, Tasks with the mock game, Availability, Vault, Loop with
arbitrary program templates), its actors, and the steps of a period."""

from __future__ import annotations

from types import SimpleNamespace

import boa
import numpy as np
import pytest
from _court import CONTRACTS, publish_tensor

from verifier.commit.commitments import commit_tensor, data_root, state_root
from verifier.commit.merkle import keccak, merkle_proof, merkle_root
from verifier.core.dtypes import DType
from verifier.market import economics as econ
from verifier.market import loop as rules

E18 = 10**18
DAY = 86_400
HOUR = 3_600
MAX_UINT = 2**256 - 1
TASK_OPEN, TASK_DONE, TASK_RECLAIMED = 1, 2, 3
PERIOD_OPEN, PERIOD_SETTLED, PERIOD_VOID = 1, 2, 3
METAMODEL, SCORES, VALUES = 0, 1, 2
M = 3
D, F, R = 2, 3, 4
TERMS = rules.LoopTerms(
    models=M, commit_phase=DAY, reveal_phase=DAY, hold=2 * DAY, average=HOUR, max_position_bps=5_000, leverage=50,
    slippage_bps=100, fee_bps=100, factor_bps=10_000, cap_bps=2_000, bonus_bps=500, min_stake=10 * E18,
    reward=10 * E18, window=2 * DAY, clock=2 * DAY, duration=DAY, solver_bond=500 * E18,
    challenger_bond=econ.MIN_CHALLENGER_BOND, arity=4, datasets=D, features=F, dataset_rows=R, k=2,
    data_share_bps=2_000, data_slash_bps=500,
)  # fmt: skip
DATA_BASE, OUT_SLOT, EXTRA = 2, 0, 3
POOL_BOND, POOL_ASSET = 10**8 * E18, 25 * 10**6 * E18  # price 4 BOND per asset
DEPOSITS = (100_000 * E18, 50_000 * E18)
STAKE = 1_000 * E18
VIRTUAL_SHARES = 1_000  # Vault.vy's, over one virtual token unit


def word(*parts) -> bytes:
    return keccak(repr(parts).encode())


def fake_programs(models: int = M, datasets: int = D) -> list[tuple]:
    """Programs with arbitrary graphs and templates: kind 0 has 1 + M data slots, kind 1 2 + M,
    kind 2 3 + 2D."""
    out = []
    for kind in (METAMODEL, SCORES, VALUES):
        n_data = 3 + 2 * datasets if kind == VALUES else kind + 1 + models
        n_slots = DATA_BASE + n_data + EXTRA
        template = [word("template", kind, i) for i in range(n_slots)]
        out.append((word("graph", kind), 10 + kind, n_slots, 1, DATA_BASE, OUT_SLOT, econ_template(template), template))
    return out


def econ_template(slots) -> bytes:
    from onnx_models.market import template_hash

    return template_hash(slots)


def commit_i8(values) -> bytes:
    return econ.small_tensor_commitment(DType.INT8, list(values))


def commit_i64(values) -> bytes:
    return econ.small_tensor_commitment(DType.INT64, list(values))


class World:
    """The deployed loop and its actors, with the steps of a period."""

    def __init__(self, s, terms=TERMS):
        self.__dict__.update(vars(s))
        self.terms = terms
        self.salts: dict = {}
        self.preds: dict = {}
        self.data: dict = {}

    # -- pool and time
    def now(self) -> int:
        return boa.env.evm.patch.timestamp

    def poke(self) -> None:
        """A dust trade: records an observation of the pool's average at this block."""
        self.pool.swap(self.token, 10**6, 0, self.p.keeper, sender=self.p.keeper)

    def travel_to(self, t: int) -> None:
        """Moves time to `t`, leaving an observation one average window plus a minute before it."""
        before = t - self.terms.average - 60
        if self.now() < before:
            boa.env.time_travel(seconds=before - self.now())
            self.poke()
        if self.now() < t:
            boa.env.time_travel(seconds=t - self.now())

    def move_price(self, bps: int) -> None:
        """Moves the pool's spot price by about `bps` (buying the asset raises it)."""
        r0, r1 = self.pool.reserve0(), self.pool.reserve1()
        if bps > 0:
            self.pool.swap(self.token, r0 * bps // 20_000, 0, self.p.keeper, sender=self.p.keeper)
        else:
            self.pool.swap(self.asset, r1 * -bps // 20_000, 0, self.p.keeper, sender=self.p.keeper)

    # -- vault and models
    def fund_vault(self) -> None:
        for who, amount in zip(self.p.depositors, DEPOSITS, strict=False):
            self.vault.deposit(amount, sender=who)

    def models(self, stakes=(STAKE,) * M, named=()) -> list[int]:
        """Registers and stakes a model per stake; `named[i]`: the datasets model i names."""
        out = []
        for i, (who, stake) in enumerate(zip(self.p.modelers, stakes, strict=False)):
            mid = self.loop.register(list(named[i]) if i < len(named) else [], sender=who)
            self.loop.add_stake(mid, stake, sender=who)
            out.append(mid)
        return out

    def dataset(self, who, seed: int = 0, stake=STAKE, arrays=None) -> int:
        """Publishes a dataset of the loop's shape, `arrays` or drawn from `seed` (its bytes on
        Availability.vy first), and stakes it; its id."""
        x, y = arrays if arrays is not None else dataset_arrays(seed, self.terms)
        for a in (x, y):
            if not self.availability.available(commit_tensor(a)):
                publish_tensor(self.availability, a, sender=who)
        did = self.loop.publish_dataset(data_root(x), data_root(y), stake, sender=who)
        self.data[did] = (x, y)
        return did

    def schedule(self, pid: int):
        per = self.loop.periods(pid)
        return rules.Schedule(per.commit_deadline, per.reveal_deadline, per.trade_at, per.end, per.result_deadline)

    def commit(self, pid: int, mid: int, prediction: int, amount=STAKE, who=None) -> None:
        salt = word("salt", pid, mid, prediction)
        com = rules.prediction_commitment(pid, mid, prediction, salt)
        self.loop.commit(pid, mid, com, amount, sender=who or self.owner_of(mid))
        self.salts[pid, mid], self.preds[pid, mid] = salt, prediction

    def reveal(self, pid: int, mid: int) -> None:
        pred = rules.prediction_byte(self.preds[pid, mid])
        self.loop.reveal(pid, mid, pred, self.salts[pid, mid], sender=self.p.stranger)

    def owner_of(self, mid: int):
        return self.loop.models(mid).owner

    def slot_table(self, pid: int, kind: int) -> list[bytes]:
        """The initial slot table the loop must post for `kind` (SPEC 12.5)."""
        t = list(self.programs[kind][7])
        b = DATA_BASE
        per = self.loop.periods(pid)
        slots = [self.loop.slot_model(pid, s) for s in range(per.models)]
        revealed = [self.loop.entries(pid, mid).state == 2 for mid in slots]
        weights = [econ.weight(self.loop.entries(pid, mid).amount) if r else 0 for mid, r in zip(slots, revealed, strict=True)]
        t[b] = commit_i64(weights + [0] * (M - len(weights)))
        first = b + 1
        if kind == VALUES:
            ids = [self.loop.slot_dataset(pid, s) for s in range(per.datasets)]
            active = [self.loop.data_entries(pid, d).active for d in ids]
            t[b] = commit_i64([int(a) for a in active] + [0] * (self.terms.datasets - len(ids)))
            t[b + 1] = commit_i8([per.label])
            t[b + 2] = commit_tensor(features_of(self.loop.features(pid), self.terms))
            for s, (d, a) in enumerate(zip(ids, active, strict=True)):
                if a:
                    ds = self.loop.datasets(d)
                    t[b + 3 + 2 * s], t[b + 4 + 2 * s] = ds.features, ds.labels
            return t
        if kind == SCORES:
            t[first] = commit_i8([per.label])
            first += 1
        for s, (mid, r) in enumerate(zip(slots, revealed, strict=True)):
            if r:
                t[first + s] = commit_i8([self.preds[pid, mid]])
        return t

    def post(self, pid: int, kind: int) -> int:
        return self.loop.post_task(pid, kind, self.programs[kind][7], sender=self.p.stranger)

    def claim(self, pid: int, kind: int, values) -> tuple[int, bytes, list]:
        """The solver claims a final table whose result slot holds `values` (int64)."""
        _, _, n_slots, steps, _, out_slot, _, _ = self.programs[kind]
        table = [word("final", pid, kind, i) for i in range(n_slots)]
        table[out_slot] = commit_i64(values)
        root = merkle_root(table)
        tid, final, salt = self.loop.task_of(pid, kind), state_root(steps, 0, root), word("claim", pid, kind)
        com = self.tasks.claim_commitment(tid, final, self.p.solver, salt)
        cid = self.tasks.commit_claim(tid, com, sender=self.p.solver)
        self.tasks.reveal_claim(cid, final, salt, sender=self.p.solver)
        return cid, root, merkle_proof(table, out_slot)

    def finish(self, pid: int, kind: int, values) -> None:
        """Posts the kind's task, claims `values`, lets the window pass, finalizes and records."""
        self.post(pid, kind)
        cid, root, proof = self.claim(pid, kind, values)
        boa.env.time_travel(seconds=self.terms.window)
        self.tasks.finalize(cid, sender=self.p.stranger)
        self.loop.record(pid, kind, root, proof, list(values), sender=self.p.stranger)

    # -- money
    def assert_solvent(self) -> None:
        """Each contract holds exactly what it owes (no task reward is reclaimed outside sync)."""
        assert self.token.balanceOf(self.loop) == self.loop.owed()
        assert self.token.balanceOf(self.vault) == self.vault.owed()
        pid = self.loop.period_count()
        held = self.loop.periods(pid).position if pid else 0
        assert self.asset.balanceOf(self.loop) == held


@pytest.fixture(scope="module")
def loop_suite(deployer):
    """Token, asset, pool, task registry (mock game), vault and loop of this module's own."""
    d = {}
    with boa.env.prank(deployer):
        token_deployer = boa.load_partial(str(CONTRACTS / "Token.vy"))
        d["token"], d["asset"] = token_deployer.deploy(), token_deployer.deploy()
        d["pool"] = boa.load_partial(str(CONTRACTS / "Pool.vy")).deploy(d["token"], d["asset"])
        game = boa.load_partial(str(CONTRACTS / "mocks" / "MockGame.vy")).deploy()
        availability = boa.load_partial(str(CONTRACTS / "Availability.vy")).deploy()
        d["availability"] = availability
        d["tasks"] = boa.load_partial(str(CONTRACTS / "Tasks.vy")).deploy(d["token"], game, availability)
        game.set_tasks(d["tasks"])
        d["game"] = game
        d["vault"] = boa.load_partial(str(CONTRACTS / "Vault.vy")).deploy(d["token"])
        d["programs"] = fake_programs()
        d["loop_deployer"] = boa.load_partial(str(CONTRACTS / "Loop.vy"))
        d["loop"] = d["loop_deployer"].deploy(
            d["token"], d["asset"], d["pool"], d["tasks"], d["vault"], TERMS.as_tuple(), [p[:7] for p in d["programs"]]
        )
        d["vault"].set_manager(d["loop"])
    g = boa.env.generate_address
    p = SimpleNamespace(
        depositors=[g("depositor0"), g("depositor1"), g("depositor2")],
        modelers=[g(f"modeler{i}") for i in range(5)], providers=[g(f"provider{i}") for i in range(3)],
        solver=g("solver"), stranger=g("stranger"), keeper=g("keeper"),
    )  # fmt: skip
    for a in [*p.depositors, *p.modelers, *p.providers, p.solver, p.stranger, p.keeper]:
        for t in (d["token"], d["asset"]):
            t.mint(a, 10**9 * E18, sender=deployer)
        for spender in (d["vault"], d["loop"], d["tasks"], d["pool"]):
            d["token"].approve(spender, MAX_UINT, sender=a)
            d["asset"].approve(spender, MAX_UINT, sender=a)
    d["pool"].add_liquidity(POOL_BOND, POOL_ASSET, 0, p.keeper, sender=p.keeper)
    boa.env.time_travel(seconds=DAY)
    d["pool"].swap(d["token"], 10**6, 0, p.keeper, sender=p.keeper)
    return SimpleNamespace(p=p, **d)


def dataset_arrays(seed: int, terms=TERMS) -> tuple[np.ndarray, np.ndarray]:
    """A dataset of the loop's shape: int8 features, labels -1 or 1."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-20, 21, (terms.dataset_rows, terms.features), dtype=np.int8)
    return x, rng.choice(np.array([-1, 1], np.int8), terms.dataset_rows)


def features_of(word: bytes, terms=TERMS) -> np.ndarray:
    """A period's features X, int8 [1, F], from the word `Loop.features` holds."""
    return np.frombuffer(bytes(word)[: terms.features], np.int8).reshape(1, -1)


def revealed(w, opened, predictions=(60, 20, -40)):
    """Every model of `opened` committed `predictions` and revealed; time at the reveal deadline."""
    pid = opened.pid
    for mid, pred in zip(opened.mids, predictions, strict=True):
        w.commit(pid, mid, pred)
    sch = w.schedule(pid)
    boa.env.time_travel(seconds=sch.commit_deadline - w.now())
    for mid in opened.mids:
        w.reveal(pid, mid)
    boa.env.time_travel(seconds=sch.reveal_deadline - w.now())
    return sch


def metamodel_of(predictions, amounts=(STAKE,) * M) -> int:
    from onnx_models.market import metamodel_ref

    weights = [econ.weight(a) for a in amounts]
    return int(metamodel_ref(weights, [[p] for p in predictions])[0])

def own_scores(predictions, label) -> list[int]:
    from onnx_models.market import scores_ref

    weights = [econ.weight(STAKE)] * M
    return [int(v) for v in scores_ref(weights, [label], [[p] for p in predictions])]
