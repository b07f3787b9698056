"""Incentives of market rounds: an agent-based simulation over the REAL contracts.

contracts/Token.vy, contracts/Tasks.vy and contracts/Market.vy run on titanoboa exactly as
deployed; contracts/mocks/MockGame.vy stands in for the dispute game's verdict (no claim is
challenged here: the game's correctness is proven elsewhere). Each round's three programs are
the real ones of onnx_models/market.py (their `program_ref`: graph root, slot layout and
template), posted by the market as tasks on Tasks.vy. Their results are computed by the
programs' references from the agents' actual predictions, the round's labels and the datasets'
rows (`scores_ref`: own and leave-one-out scores; `values_ref`: KNN-Shapley data values;
`metamodel_ref`), claimed by a solver with a final slot table whose result slot holds the
commitment of those values (the rest of the table is not computed: a stand-in, as in
tests/contracts/test_market.py), left unchallenged through the window, finalized, recorded
and settled by Market.vy (docs/SPEC.md 8.3 - 8.5).

The world: rows have F features; the outcome of a row is the sign of a fixed hidden linear
function of its features plus noise (some rows are not scored, label 0). Every round draws
fresh rows; its sponsor commits their labels at `open_round`. Agents:

- skilled modelers (predictions from a noisy estimate of the hidden function, one skill level
  each), zero-skill modelers (uniform random predictions), a copier (fits the previous round's
  metamodel, public once revealed, on that round's features and applies it to this round's);
- a non-revealer (commits every round and never reveals: a slot griefer, who forfeits the
  round's `min_stake` each time);
- honest data providers (rows labelled by the hidden function) and an inverted-label provider
  (the same rows with every label flipped), each joining every round;
- sponsors: an honest one; a perfect-knowledge one that commits its own model predicting its
  labels perfectly with the largest stake allowed (the round's `max_stake`) and fills every
  slot left with sybil models doing the same (each its own address, each at `max_stake`); and a
  withholding one that sees the revealed predictions and never reveals its labels (the round is
  voided at the labels deadline), in every other of its rounds after filling the slots left with
  its own sybil models, so that the void's even split pays them too;
- a solver that claims each program's task. Permissionless calls are made by a stranger.

Every perfect-knowledge round is played twice on chain: as it is, then as a control round with
the same rows, labels and honest predictions but no sponsor models, so the honest modelers'
payouts with and without the sponsor's models are both the contract's.

Printed and written to bench/rounds_report.json:
- per agent type, total and mean net BOND per round and per BOND at risk (stake reserved, for
  sponsors pool + budget);
- every revealed model of every settled round against the floor its own score earns, computed
  here independently: `stake * r_own div BPS` (a loss: `-(stake * -r_own div BPS)`, as the
  contract rounds a slash), `r_own = clip(trunc(own * factor / BPS), -cap, cap)` (goal: the
  model's payout, gain before the data share or minus its slash, is never below it);
- the skilled modelers' payouts in each perfect-knowledge round and in its control;
- the perfect-knowledge sponsor's net from each attack, all its addresses together, without the
  compute budget (goal: <= 0: its models take back at most the pool it paid);
- the zero-skill modelers' mean return (own score about 0, the bonus a small positive part);
- each void round's payout per revealed model against the settlement its labels would have
  paid and against the largest settlement possible for its stake (goal: void >= both), and the
  withholding sponsor's net, its sybils included (goal: <= 0);
- funds held vs owed: Market.vy's token balance == `owed()` (and Tasks.vy's == its `owed()`)
  after every transaction.

Exit code: 1 when an invariant breaks (held != owed after any transaction; a settlement that
differs from this script's own computation of SPEC 8.5; an honest party losing stake: a skilled
modeler with a positive own score, or a dataset with a non-negative value, slashed). With
`--check` also 1 when a goal is missed.

    python bench/bench_rounds.py [--rounds 100] [--seed 1] [--rows 256] [--check]
        [--out bench/rounds_report.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
#: where the .vy sources are read from (a mutated copy when BISECTML_CONTRACTS_DIR is set, as in
#: tests/contracts/conftest.py)
CONTRACTS = Path(os.environ.get("BISECTML_CONTRACTS_DIR") or ROOT / "contracts")

import boa
import numpy as np

if os.environ.get("BISECTML_CONTRACTS_DIR"):
    boa.interpret.set_search_paths([str(CONTRACTS.parent)])

from onnx_models import market as mk
from verifier.commit.commitments import commit_tensor, data_root, state_root
from verifier.commit.merkle import keccak, merkle_proof, merkle_root
from verifier.core.dtypes import DType
from verifier.market import economics as econ
from verifier.market.economics import trunc_div

E18 = 10**18
BPS = 10_000
DAY = 86_400
MAX_UINT = 2**256 - 1
FUNDS = 10**9 * E18
METAMODEL, SCORES, VALUES = mk.METAMODEL, mk.SCORES, mk.VALUES
MODEL, DATASET, SPONSOR = 1, 0, 2

# round shape: M, D, n (--rows), F, R, K
MODELS, DATASETS, FEATURES, DATASET_ROWS, K = 16, 4, 8, 64, 8
# payout terms: factor, cap, data share, data slash, bonus (<= cap / 4), min stake
FACTOR_BPS, CAP_BPS, DATA_SHARE_BPS, DATA_SLASH_BPS, BONUS_BPS = 10_000, 2_500, 1_000, 1_000, 500
MIN_STAKE = 10 * E18
POOL = 3_200 * E18
# task terms: reward, window, clock, solver bond, challenger bond, arity, duration
REWARD = 10 * E18
TERMS = (REWARD, 2 * DAY, 2 * DAY, 500 * E18, econ.MIN_CHALLENGER_BOND, 4, 3 * DAY)
BUDGET = 3 * REWARD
MODEL_STAKE = 5_000 * E18
DATASET_STAKE = 2_000 * E18
DATASET_AT_RISK = 200 * E18
# skill of the skilled modelers: noise on their estimate of the hidden function, in units of it
SKILLS = (0.3, 0.7, 1.5, 3.0)
ZERO_SKILL = 3
LABEL_NOISE = 0.8  # outcome = sign(z + LABEL_NOISE * std(z) * N(0, 1))
UNSCORED = 0.05  # share of rows with label 0
# round kinds, in this order, repeated
CYCLE = ("honest", "attack", "void", "void-sybils", "honest", "honest")


class Invariant(Exception):
    pass


def bond(x: int) -> float:
    return x / E18


def i8(values) -> bytes:
    return bytes(int(v) % 256 for v in values)


def word(*parts) -> bytes:
    return keccak(*[p if isinstance(p, bytes) else str(p).encode() for p in parts])


def clip(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def own_floor(stake: int, own: int) -> int:
    """What a model's own score alone pays (SPEC 8.5), rounded as the contract rounds it."""
    r = clip(trunc_div(own * FACTOR_BPS, BPS), -CAP_BPS, CAP_BPS)
    return stake * r // BPS if r >= 0 else -(stake * -r // BPS)


def settle_expected(slots: list[dict], dsets: list[dict], scores: list[int], values: list[int], pool: int) -> dict:
    """SPEC 8.5 through verifier/market/economics.py's `payouts` (the contract tests hold it equal
    to Market.vy), keyed by id. `slots`: per model slot {mid, stake, revealed, datasets (ids)};
    `dsets`: per dataset slot {did, at_risk, active}. Returns per revealed model id the gross
    payout (gain, or minus the slash), per model id the payment to the owner, per dataset id its
    payment (minus its slash), paid, burned, and the pool's refund."""
    slot_of = {d["did"]: j for j, d in enumerate(dsets)}
    models = [econ.ModelEntry(s["stake"], s["stake"], scores[i], s["revealed"],
                              tuple(slot_of[d] for d in s["datasets"] if d in slot_of), contribution=scores[MODELS + i])
              for i, s in enumerate(slots)]  # fmt: skip
    datasets = [econ.DatasetEntry(d["at_risk"], d["at_risk"], values[j], d["active"]) for j, d in enumerate(dsets)]
    e = econ.Economics(FACTOR_BPS, CAP_BPS, DATA_SHARE_BPS, DATA_SLASH_BPS, BONUS_BPS, MIN_STAKE)
    settled = econ.payouts(models, datasets, e, pool)
    gross = {s["mid"]: s["stake"] * r // BPS if r >= 0 else -(s["stake"] * -r // BPS)
             for s, r in zip(slots, settled.returns_bps) if s["revealed"]}  # fmt: skip
    return {"gross": gross, "to_model": {s["mid"]: v for s, v in zip(slots, settled.model_payouts)},
            "to_data": {d["did"]: v for d, v in zip(dsets, settled.dataset_payouts)}, "paid": settled.paid,
            "burned": settled.burned, "refund_pool": settled.refund}  # fmt: skip


@dataclass
class Agent:
    name: str
    kind: str
    addrs: list = field(default_factory=list)
    models: list = field(default_factory=list)  # model ids
    datasets: list = field(default_factory=list)  # dataset ids
    skill: float | None = None


class Sim:
    def __init__(self, seed: int, rows: int):
        self.rng = np.random.default_rng(seed)
        self.rows = rows
        self.shape = mk.Shape(MODELS, DATASETS, rows, FEATURES, DATASET_ROWS, K)
        self.refs = [mk.program_ref(k, self.shape) for k in mk.KINDS]
        g = boa.env.generate_address
        self.deployer = g("deployer")
        load = lambda rel: boa.load_partial(str(CONTRACTS / rel))
        with boa.env.prank(self.deployer):
            self.token = load("Token.vy").deploy()
            game = load("mocks/MockGame.vy").deploy()
            self.availability = load("Availability.vy").deploy()
            self.tasks = load("Tasks.vy").deploy(self.token, game, self.availability)
            game.set_tasks(self.tasks)
            self.market = load("Market.vy").deploy(self.token, self.tasks, self.availability)
        self.txs = 0
        self.solver, self.stranger = g("solver"), g("stranger")
        self.beta = self.rng.normal(size=FEATURES)
        self.agents: list[Agent] = []
        self.dataset_rows: dict[int, tuple] = {}  # did -> (X_d, L_d) as int8 arrays
        self.model_datasets: dict[int, list] = {}
        self.model_owner: dict[int, object] = {}
        for a in (self.solver, self.stranger):
            self.fund(a)

    # -- transactions ---------------------------------------------------------------------------

    def fund(self, a):
        self.token.mint(a, FUNDS, sender=self.deployer)
        self.token.approve(self.market, MAX_UINT, sender=a)
        self.token.approve(self.tasks, MAX_UINT, sender=a)

    def tx(self, contract, fn: str, *args, sender, logs: bool = False):
        """One transaction, then funds held vs owed of both contracts; with `logs`, returns
        (result, the transaction's events)."""
        out = getattr(contract, fn)(*args, sender=sender)
        self.txs += 1
        events = contract.get_logs() if logs else None
        held, owed = self.token.balanceOf(self.market), self.market.owed()
        if held != owed:
            raise Invariant(f"after {fn}: Market holds {held} but owes {owed}")
        held_t, owed_t = self.token.balanceOf(self.tasks), self.tasks.owed()
        if held_t != owed_t:
            raise Invariant(f"after {fn}: Tasks holds {held_t} but owes {owed_t}")
        return (out, events) if logs else out

    def on_chain(self, array: np.ndarray, sender) -> bytes:
        """Publishes the tensor's bytes on Availability.vy (SPEC 8.10), as the market requires
        of datasets and round features; its data root, from which the market computes the
        commitment of the shape it expects."""
        from verifier.market.availability import calldata, payload

        out = bytes(boa.env.raw_call(self.availability.address, data=calldata(*payload(array)), sender=sender).output)
        self.txs += 1
        if out != commit_tensor(array):
            raise Invariant("Availability.vy committed other bytes than it was sent")
        return data_root(array)

    # -- the world --------------------------------------------------------------------------------

    def features(self, n: int) -> np.ndarray:
        return self.rng.integers(-50, 51, size=(n, FEATURES)).astype(np.int8)

    def outcome(self, X: np.ndarray, noise: float = LABEL_NOISE) -> np.ndarray:
        z = X.astype(np.float64) @ self.beta
        z = z + noise * z.std() * self.rng.normal(size=len(z))
        return np.where(z >= 0, 1, -1).astype(np.int8)

    def labels(self, X: np.ndarray) -> np.ndarray:
        y = self.outcome(X)
        y[self.rng.random(len(y)) < UNSCORED] = 0
        return y

    @staticmethod
    def to_preds(z: np.ndarray) -> np.ndarray:
        s = z.std() or 1.0
        return np.clip(np.rint(50 * z / s), -100, 100).astype(np.int8)

    def wealth(self, agent: Agent) -> int:
        w = sum(self.token.balanceOf(a) for a in agent.addrs)
        w += sum(self.market.models(m).stake for m in agent.models)
        w += sum(self.market.datasets(d).stake for d in agent.datasets)
        return w

    def add_agent(self, name: str, kind: str, n_addrs: int = 1, **kw) -> Agent:
        a = Agent(name, kind, [boa.env.generate_address(f"{name} {i}") for i in range(n_addrs)], **kw)
        for addr in a.addrs:
            self.fund(addr)
        self.agents.append(a)
        return a

    def publish(self, agent: Agent, inverted: bool):
        X_d = self.features(DATASET_ROWS)
        L_d = self.outcome(X_d, noise=0.3)
        if inverted:
            L_d = (-L_d).astype(np.int8)
        did = self.tx(self.market, "publish_dataset", f"bafy-{agent.name}", self.on_chain(X_d, agent.addrs[0]),
                      self.on_chain(L_d, agent.addrs[0]),
                      DATASET_ROWS, FEATURES, DATASET_STAKE, sender=agent.addrs[0])
        self.dataset_rows[did] = (X_d, L_d)
        agent.datasets.append(did)

    def register(self, agent: Agent, datasets: list, addr=None):
        addr = addr or agent.addrs[0]
        mid = self.tx(self.market, "register_model", f"bafy-{agent.name}-{len(agent.models)}", datasets, MODEL_STAKE,
                      sender=addr)
        agent.models.append(mid)
        self.model_datasets[mid] = list(datasets)
        self.model_owner[mid] = addr

    def populate(self):
        prov = [self.add_agent(f"provider {i}", "honest provider") for i in range(3)]
        bad = self.add_agent("inverted provider", "inverted-label provider")
        for p in prov:
            self.publish(p, inverted=False)
        self.publish(bad, inverted=True)
        h = [p.datasets[0] for p in prov]
        g = bad.datasets[0]
        for i, s in enumerate(SKILLS):
            a = self.add_agent(f"skilled {i}", "skilled modeler", skill=s)
            self.register(a, [h[i % 3], h[(i + 1) % 3]])
        for i in range(ZERO_SKILL):
            a = self.add_agent(f"zero-skill {i}", "zero-skill modeler")
            # the first names the inverted dataset: a model trained on it makes it part of the round
            self.register(a, [[g, h[0]], [h[1]], []][i % 3])
        self.register(self.add_agent("copier", "copier"), [])
        self.register(self.add_agent("non-revealer", "non-revealer"), [h[2]])
        self.honest_sponsor = self.add_agent("honest sponsor", "honest sponsor")
        n_honest = len(SKILLS) + ZERO_SKILL + 2
        n_sponsor = MODELS - n_honest
        self.withholder = self.add_agent("withholding sponsor", "withholding sponsor", n_addrs=n_sponsor)
        for addr in self.withholder.addrs:  # its sybils, for the rounds it fills the slots left
            self.register(self.withholder, [], addr=addr)
        self.attacker = self.add_agent("perfect-knowledge sponsor", "perfect-knowledge sponsor", n_addrs=n_sponsor)
        for addr in self.attacker.addrs:  # its own model, then its sybils, each from its own address
            self.register(self.attacker, [], addr=addr)
        self.solver_agent = Agent("solver", "solver", [self.solver])
        self.agents.append(self.solver_agent)

    # -- a round ----------------------------------------------------------------------------------

    def predictions(self, agent: Agent, X: np.ndarray, y: np.ndarray, prev) -> np.ndarray | None:
        if agent.kind == "skilled modeler":
            est = self.beta + agent.skill * np.abs(self.beta).mean() * self.rng.normal(size=FEATURES)
            return self.to_preds(X.astype(np.float64) @ est)
        if agent.kind == "zero-skill modeler":
            return self.rng.integers(-100, 101, size=len(X)).astype(np.int8)
        if agent.kind == "copier":
            if prev is None:
                return None
            Xp, mp = prev
            coef, *_ = np.linalg.lstsq(Xp.astype(np.float64), mp.astype(np.float64), rcond=None)
            return np.clip(np.rint(X.astype(np.float64) @ coef), -100, 100).astype(np.int8)
        if agent.kind == "non-revealer":
            return self.rng.integers(-100, 101, size=len(X)).astype(np.int8)
        if agent.kind in ("perfect-knowledge sponsor", "withholding sponsor"):
            return (100 * y.astype(np.int64)).astype(np.int8)
        raise AssertionError(agent.kind)

    def play(self, kind: str, X: np.ndarray, y: np.ndarray, preds: dict | None, prev) -> dict:
        """One round of `kind` ("honest", "attack", "control", "void", "void-sybils") on rows X with
        labels y.
        `preds` (model id -> predictions) replays a round's honest predictions (the control)."""
        sponsor = {"honest": self.honest_sponsor, "control": self.honest_sponsor, "void": self.withholder,
                   "void-sybils": self.withholder,
                   "attack": self.attacker}[kind]
        before = {a.name: self.wealth(a) for a in self.agents}
        now = boa.env.timestamp
        schedule = (now + DAY, now + 2 * DAY, now + 3 * DAY, now + 13 * DAY)
        salt = word("labels", now, kind)
        economics = (FACTOR_BPS, CAP_BPS, DATA_SHARE_BPS, DATA_SLASH_BPS, BONUS_BPS, MIN_STAKE)
        refs = [(r.graph_root, r.n_nodes, r.n_slots, r.steps, r.data_base, r.out_slot, r.template) for r in self.refs]
        rid = self.tx(self.market, "open_round", (MODELS, DATASETS, self.rows, FEATURES, DATASET_ROWS, K), schedule, economics, TERMS, refs,
                      self.on_chain(X, sponsor.addrs[0]), "bafy-round-features", econ.labels_commitment(i8(y), salt),
                      POOL, BUDGET,
                      sender=sponsor.addrs[0])
        max_stake = self.market.rounds(rid).max_stake
        # datasets join, in publication order
        dsets = []
        for a in self.agents:
            for did in a.datasets:
                amount = min(self.market.datasets(did).stake - self.market.datasets(did).reserved, DATASET_AT_RISK)
                if amount < MIN_STAKE:
                    continue  # slashed below the round's minimum: it cannot join any more
                self.tx(self.market, "join_round", rid, did, amount, sender=a.addrs[0])
                dsets.append({"did": did, "at_risk": amount, "active": False, "agent": a})
        # models commit: the modelers, then (attack) the sponsor's model and sybils in the slots left
        slots, preds_of = [], {} if preds is None else dict(preds)
        order = [a for a in self.agents if a.kind in ("skilled modeler", "zero-skill modeler", "copier", "non-revealer")]
        if kind == "attack":
            order.append(self.attacker)
        if kind == "void-sybils":
            order.append(self.withholder)
        for a in order:
            for j, mid in enumerate(a.models):
                p = preds_of[mid] if mid in preds_of else self.predictions(a, X, y, prev)
                if p is None:
                    continue
                preds_of[mid] = p
                stake = min(self.market.models(mid).stake - self.market.models(mid).reserved, max_stake)
                if stake < MIN_STAKE:
                    continue
                msalt = word("salt", rid, mid)
                com = econ.prediction_commitment(rid, mid, i8(p), msalt)
                self.tx(self.market, "commit", rid, mid, com, stake, sender=self.model_owner[mid])
                slots.append({"mid": mid, "stake": stake, "revealed": False, "datasets": self.model_datasets[mid],
                              "agent": a, "salt": msalt, "preds": p})
        boa.env.time_travel(seconds=schedule[0] - boa.env.timestamp)
        for s in slots:
            if s["agent"].kind == "non-revealer":
                continue
            self.tx(self.market, "reveal", rid, s["mid"], i8(s["preds"]), s["salt"], sender=self.stranger)
            s["revealed"] = True
            for d in dsets:
                if d["did"] in s["datasets"]:
                    d["active"] = True
        boa.env.time_travel(seconds=schedule[1] - boa.env.timestamp)
        for s in slots:
            if not s["revealed"]:
                self.tx(self.market, "release", rid, s["mid"], sender=self.stranger)
        # the programs' data, as the market posts them (revealed models only; empty slots absent)
        w = [econ.weight(s["stake"]) if s["revealed"] else 0 for s in slots] + [0] * (MODELS - len(slots))
        P = [s["preds"] if s["revealed"] else None for s in slots]
        mask = [int(d["active"]) for d in dsets] + [0] * (DATASETS - len(dsets))
        data = [self.dataset_rows[d["did"]] if d["active"] else None for d in dsets]
        scores = [int(v) for v in mk.scores_ref(w, y, P)]
        values = [int(v) for v in mk.values_ref(self.shape, mask, y, X, data)]
        meta = mk.metamodel_ref(w, P)
        expected = settle_expected(slots, dsets, scores, values, POOL)
        out = {"round": rid, "kind": kind, "slots": slots, "dsets": dsets, "scores": scores, "values": values,
               "expected": expected, "max_stake": max_stake, "preds": preds_of, "meta": meta, "sponsor": sponsor}
        if kind.startswith("void"):
            # the sponsor has seen the predictions and keeps its labels
            boa.env.time_travel(seconds=schedule[2] - boa.env.timestamp)
            _, logs = self.tx(self.market, "void_round", rid, sender=self.stranger, logs=True)
            out["paid"] = self.paid_of(logs)
        else:
            self.tx(self.market, "reveal_labels", rid, i8(y), salt, sender=self.stranger)
            leaves = {
                METAMODEL: econ.small_tensor_commitment(DType.INT64, [int(v) for v in meta]),
                SCORES: econ.small_tensor_commitment(DType.INT64, scores),
                VALUES: econ.small_tensor_commitment(DType.INT64, values),
            }
            claims, tables = [], {}
            for k in mk.KINDS:
                self.tx(self.market, "post_task", rid, k, list(self.refs[k].slots), sender=self.stranger)
                tid = self.market.task_of(rid, k)
                table = [word("final", rid, k, i) for i in range(self.refs[k].n_slots)]
                table[self.refs[k].out_slot] = leaves[k]
                root = merkle_root(table)
                final, csalt = state_root(self.refs[k].steps, 0, root), word("claim", rid, k)
                com = self.tasks.claim_commitment(tid, final, self.solver, csalt)
                cid = self.tx(self.tasks, "commit_claim", tid, com, sender=self.solver)
                self.tx(self.tasks, "reveal_claim", cid, final, csalt, sender=self.solver)
                claims.append(cid)
                tables[k] = (root, merkle_proof(table, self.refs[k].out_slot))
            boa.env.time_travel(seconds=TERMS[1])
            for cid in claims:
                self.tx(self.tasks, "finalize", cid, sender=self.stranger)
            self.tx(self.market, "record_metamodel", rid, *tables[METAMODEL], leaves[METAMODEL], sender=self.stranger)
            self.tx(self.market, "record", rid, SCORES, *tables[SCORES], scores, sender=self.stranger)
            self.tx(self.market, "record", rid, VALUES, *tables[VALUES], values, sender=self.stranger)
            _, logs = self.tx(self.market, "settle", rid, sender=self.stranger, logs=True)
            out["paid"] = paid = self.paid_of(logs)
            # the contract's settlement is SPEC 8.5 exactly
            want = {(MODEL, m): v for m, v in expected["to_model"].items() if v}
            want.update({(DATASET, d): v for d, v in expected["to_data"].items() if v})
            want[(SPONSOR, rid)] = expected["refund_pool"] + BUDGET - 3 * REWARD
            want = {k: v for k, v in want.items() if v}
            if paid != want:
                raise Invariant(f"round {rid}: the contract paid {paid}, SPEC 8.5 says {want}")
        out["net"] = {a.name: self.wealth(a) - before[a.name] for a in self.agents}
        return out

    @staticmethod
    def paid_of(logs) -> dict:
        out = defaultdict(int)
        for e in logs:
            if type(e).__name__ == "Paid":
                out[(int(e.kind), int(e.id))] += int(e.amount)
        return dict(out)


# --- the simulation and its report -----------------------------------------------------------------


def run(args) -> dict:
    t0 = time.time()
    sim = Sim(args.seed, args.rows)
    sim.populate()
    rounds, prev = [], None
    for i in range(args.rounds):
        kind = CYCLE[i % len(CYCLE)]
        X = sim.features(args.rows)
        y = sim.labels(X)
        r = sim.play(kind, X, y, None, prev)
        rounds.append(r)
        if kind == "attack":
            honest_preds = {m: p for m, p in r["preds"].items() if m not in sim.attacker.models}
            c = sim.play("control", X, y, honest_preds, prev)
            c["twin_of"] = r["round"]
            r["control"] = c
            rounds.append(c)
        prev = (X, r["meta"])
    elapsed = time.time() - t0
    return {"sim": sim, "rounds": rounds, "elapsed": elapsed}


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


def stderr(xs):
    xs = list(xs)
    if len(xs) < 2:
        return 0.0
    m = mean(xs)
    return (sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)) ** 0.5


def summarize(args, res) -> dict:
    sim, rounds = res["sim"], res["rounds"]
    by_name = {a.name: a for a in sim.agents}
    violations, goal_fail = [], []

    # per agent type: net and stake at risk per round the agent took part in
    types = defaultdict(lambda: {"rounds": 0, "net": 0, "at_risk": 0, "nets": []})
    for r in rounds:
        risk = defaultdict(int)
        for s in r["slots"]:
            risk[s["agent"].name] += s["stake"]
        for d in r["dsets"]:
            risk[d["agent"].name] += d["at_risk"]
        risk[r["sponsor"].name] += POOL + BUDGET
        for name, net in r["net"].items():
            a = by_name[name]
            if name not in risk and not (a.kind == "solver" and not r["kind"].startswith("void")):
                if net != 0:
                    raise Invariant(f"round {r['round']}: {name} took no part and its wealth moved by {net}")
                continue
            t = types[a.kind]
            t["rounds"] += 1
            t["net"] += net
            t["at_risk"] += risk.get(name, 0)
            t["nets"].append(net)
    per_type = {
        k: {
            "agent_rounds": v["rounds"],
            "total_net_bond": round(bond(v["net"]), 3),
            "mean_net_bond_per_round": round(bond(v["net"]) / v["rounds"], 3),
            "mean_at_risk_bond": round(bond(v["at_risk"]) / v["rounds"], 3),
            "net_per_bond_at_risk": round(v["net"] / v["at_risk"], 5) if v["at_risk"] else None,
            "min_net_bond": round(bond(min(v["nets"])), 3),
            "max_net_bond": round(bond(max(v["nets"])), 3),
        }
        for k, v in sorted(types.items())
    }

    # every revealed model of every settled round against its own score's floor
    floors = {"models_checked": 0, "below_floor": 0, "min_margin_bond": None, "examples": []}
    honest_models = {"checked": 0, "slashed": 0}
    honest_datasets = {"checked": 0, "slashed": 0}
    zero_skill_returns, zero_own, zero_bonus = [], [], []
    by_skill = defaultdict(list)  # skill -> (own score, payout, stake) per settled round
    for r in rounds:
        if r["kind"].startswith("void"):
            continue
        for i, s in enumerate(r["slots"]):
            if not s["revealed"]:
                continue
            own, loo = r["scores"][i], r["scores"][MODELS + i]
            gross = r["expected"]["gross"].get(s["mid"], 0)
            fl = own_floor(s["stake"], own)
            floors["models_checked"] += 1
            margin = gross - fl
            if floors["min_margin_bond"] is None or bond(margin) < floors["min_margin_bond"]:
                floors["min_margin_bond"] = round(bond(margin), 6)
            if margin < 0:
                floors["below_floor"] += 1
                if len(floors["examples"]) < 5:
                    floors["examples"].append({"round": r["round"], "model": s["mid"], "payout": gross, "floor": fl})
            if s["agent"].kind == "skilled modeler" and own > 0:
                honest_models["checked"] += 1
                if gross < 0:
                    honest_models["slashed"] += 1
                    violations.append(f"round {r['round']}: skilled model {s['mid']} with own score {own} slashed")
            if s["agent"].kind == "skilled modeler":
                by_skill[s["agent"].skill].append((own, gross, s["stake"]))
            if s["agent"].kind == "zero-skill modeler":
                zero_skill_returns.append(BPS * gross / s["stake"])
                zero_own.append(own)
                zero_bonus.append(clip(trunc_div(loo * FACTOR_BPS, BPS), 0, BONUS_BPS))
        for j, d in enumerate(r["dsets"]):
            if d["active"] and r["values"][j] >= 0:
                honest_datasets["checked"] += 1
                if r["paid"].get((DATASET, d["did"]), 0) < 0:
                    honest_datasets["slashed"] += 1
                    violations.append(f"round {r['round']}: dataset {d['did']} with value {r['values'][j]} slashed")
    floors["goal_never_below"] = "pass" if floors["below_floor"] == 0 else "FAIL"
    if floors["below_floor"]:
        goal_fail.append("every model's payout >= its own score's floor")

    # the perfect-knowledge sponsor: skilled payouts with and without its models; its net
    attacks = []
    for r in rounds:
        if r["kind"] != "attack":
            continue
        c = r["control"]
        skilled = []
        for s in r["slots"]:
            if s["agent"].kind != "skilled modeler":
                continue
            cs = next(x for x in c["slots"] if x["mid"] == s["mid"])
            i, ci = r["slots"].index(s), c["slots"].index(cs)
            skilled.append({
                "model": s["mid"],
                "own_score": r["scores"][i],
                "loo_with": r["scores"][MODELS + i],
                "loo_without": c["scores"][MODELS + ci],
                "stake_with_bond": round(bond(s["stake"]), 3),
                "stake_without_bond": round(bond(cs["stake"]), 3),
                "payout_with_bond": round(bond(r["expected"]["gross"].get(s["mid"], 0)), 3),
                "payout_without_bond": round(bond(c["expected"]["gross"].get(s["mid"], 0)), 3),
                "own_floor_bond": round(bond(own_floor(s["stake"], r["scores"][i])), 3),
            })
        spent = 3 * REWARD  # the compute budget the tasks took
        net = r["net"][sim.attacker.name]
        ctrl_sponsor = c["net"][sim.honest_sponsor.name]
        sponsor_models = [s for s in r["slots"] if s["agent"] is sim.attacker]
        attacks.append({
            "round": r["round"],
            "control_round": c["round"],
            "sponsor_models": len(sponsor_models),
            "sponsor_stake_at_risk_bond": round(bond(sum(s["stake"] for s in sponsor_models)), 3),
            "sponsor_models_gains_bond": round(bond(sum(r["expected"]["gross"].get(s["mid"], 0)
                                                         for s in sponsor_models)), 3),
            "sponsor_net_bond": round(bond(net), 3),
            "sponsor_net_without_compute_bond": round(bond(net + spent), 3),
            "control_sponsor_net_without_compute_bond": round(bond(ctrl_sponsor + spent), 3),
            "skilled": skilled,
        })
    att_net = [a["sponsor_net_without_compute_bond"] for a in attacks]
    skilled_with = [s["payout_with_bond"] for a in attacks for s in a["skilled"]]
    skilled_without = [s["payout_without_bond"] for a in attacks for s in a["skilled"]]
    attack_summary = {
        "rounds": len(attacks),
        "sponsor_net_without_compute_bond_max": max(att_net) if att_net else None,
        "sponsor_net_without_compute_bond_mean": round(mean(att_net), 3),
        "control_sponsor_net_without_compute_bond_mean": round(
            mean(a["control_sponsor_net_without_compute_bond"] for a in attacks), 3),
        "goal_sponsor_gains_nothing": "pass" if all(x <= 0 for x in att_net) else "FAIL",
        "sponsor_saving_vs_control_mean_bond": round(
            mean(a["sponsor_net_without_compute_bond"] - a["control_sponsor_net_without_compute_bond"]
                 for a in attacks), 3),
        "skilled_payout_with_sponsor_models_mean_bond": round(mean(skilled_with), 3),
        "skilled_payout_without_sponsor_models_mean_bond": round(mean(skilled_without), 3),
        "skilled_below_own_floor_with_sponsor_models": sum(
            1 for a in attacks for s in a["skilled"] if s["payout_with_bond"] < s["own_floor_bond"]),
        "skilled_bonus_lost_to_sponsor_models_mean_bond": round(mean(skilled_without) - mean(skilled_with), 3),
        "note": "the sponsor's perfect models take the metamodel, so the skilled models' leave-one-out "
        "scores fall and their bonus (at most bonus_bps) with them; their own-score return is unchanged. "
        "The bonuses it withholds are its saving against the control round: it still pays out more than "
        "its models take back. "
        "The sponsor's net counts all its addresses and excludes the compute budget its tasks took",
        "per_round": attacks,
    }
    if attack_summary["goal_sponsor_gains_nothing"] == "FAIL":
        goal_fail.append("the perfect-knowledge sponsor gains nothing beyond its pool back")

    # void rounds: each revealed model's share against what settling could have paid it
    voids = []
    for r in rounds:
        if not r["kind"].startswith("void"):
            continue
        for i, s in enumerate(r["slots"]):
            if not s["revealed"]:
                continue
            part = r["paid"].get((MODEL, s["mid"]), 0)
            best = s["stake"] * (CAP_BPS + BONUS_BPS) // BPS
            labels_would = r["expected"]["gross"].get(s["mid"], 0)
            voids.append({"round": r["round"], "round_kind": r["kind"], "model": s["mid"], "kind": s["agent"].kind,
                          "void": part,
                          "settlement": labels_would, "best": best})
        n_rev = sum(1 for s in r["slots"] if s["revealed"])
        if sum(r["paid"].get((MODEL, s["mid"]), 0) for s in r["slots"]) != (POOL if n_rev else 0):
            raise Invariant(f"void round {r['round']}: the revealed models did not split the pool")
    void_summary = {
        "rounds": len({v["round"] for v in voids}),
        "models": len(voids),
        "void_payout_mean_bond": round(bond(mean(v["void"] for v in voids)), 3),
        "void_payout_min_bond": round(bond(min((v["void"] for v in voids), default=0)), 3),
        "settlement_payout_mean_bond": round(bond(mean(v["settlement"] for v in voids)), 3),
        "best_settlement_max_bond": round(bond(max((v["best"] for v in voids), default=0)), 3),
        "models_void_below_settlement": sum(1 for v in voids if v["void"] < v["settlement"]),
        "models_void_below_best": sum(1 for v in voids if v["void"] < v["best"]),
        "withholding_sponsor_net_mean_bond": round(
            bond(mean(r["net"][sim.withholder.name] for r in rounds if r["kind"] == "void")), 3),
        "withholding_sponsor_with_sybils_net_mean_bond": round(
            bond(mean(r["net"][sim.withholder.name] for r in rounds if r["kind"] == "void-sybils")), 3),
        "withholding_sponsor_with_sybils_net_max_bond": round(
            bond(max((r["net"][sim.withholder.name] for r in rounds if r["kind"] == "void-sybils"), default=0)), 3),
        "others_void_payout_with_sybils_mean_bond": round(bond(mean(
            v["void"] for v in voids if v["round_kind"] == "void-sybils" and v["kind"] != "withholding sponsor")), 3),
        "note": "void-sybils: the withholding sponsor also fills the slots left with its own models, "
        "then withholds its labels; the even split gives each of them one share of its own pool",
    }
    void_summary["goal_withholder_gains_nothing"] = (
        "pass" if void_summary["withholding_sponsor_with_sybils_net_max_bond"] <= 0
        and all(r["net"][sim.withholder.name] <= 0 for r in rounds if r["kind"].startswith("void")) else "FAIL")
    if void_summary["goal_withholder_gains_nothing"] == "FAIL":
        goal_fail.append("the withholding sponsor gains nothing beyond its pool back")
    void_summary["goal_void_at_least_best"] = (
        "pass" if void_summary["models_void_below_best"] == 0 and void_summary["models_void_below_settlement"] == 0
        else "FAIL")
    if void_summary["goal_void_at_least_best"] == "FAIL":
        goal_fail.append("a void pays every revealed model at least its best settlement")

    zero = {
        "model_rounds": len(zero_skill_returns),
        "mean_return_bps": round(mean(zero_skill_returns), 2),
        "mean_return_bps_stderr": round(stderr(zero_skill_returns), 2),
        "model_rounds_with_bonus": sum(1 for b in zero_bonus if b > 0),
        "mean_own_score_bps": round(mean(zero_own), 2),
        "mean_bonus_bps": round(mean(zero_bonus), 2),
        "bonus_cap_bps": BONUS_BPS,
        "note": "return = payout / stake at risk over settled rounds; own score near 0 in expectation, "
        "the bonus is paid only when a model beats the others' metamodel, which the skilled models make "
        "far better than chance here, so random predictions never earn it",
    }
    skilled = {
        str(k): {
            "model_rounds": len(v),
            "mean_own_score_bps": round(mean(o for o, _, _ in v), 1),
            "mean_payout_bond": round(bond(mean(g for _, g, _ in v)), 3),
            "mean_return_bps": round(mean(BPS * g / st for _, g, st in v), 1),
            "rounds_slashed": sum(1 for _, g, _ in v if g < 0),
        }
        for k, v in sorted(by_skill.items())
    }
    if violations:
        raise Invariant("; ".join(violations[:5]))
    kinds = defaultdict(int)
    for r in rounds:
        kinds[r["kind"]] += 1
    return {
        "command": " ".join(["python bench/bench_rounds.py", *args.argv]),
        "runtime_s": round(res["elapsed"], 1),
        "seed": args.seed,
        "rounds": dict(kinds),
        "shape": {"M": MODELS, "D": DATASETS, "n": args.rows, "F": FEATURES, "R": DATASET_ROWS, "K": K},
        "economics": {"factor_bps": FACTOR_BPS, "cap_bps": CAP_BPS, "bonus_bps": BONUS_BPS,
                      "data_share_bps": DATA_SHARE_BPS, "data_slash_bps": DATA_SLASH_BPS,
                      "min_stake_bond": bond(MIN_STAKE), "pool_bond": bond(POOL), "budget_bond": bond(BUDGET),
                      "max_stake_bond": round(bond(rounds[0]["max_stake"]), 3), "reward_bond": bond(REWARD)},
        "agents": {"skilled_modelers": len(SKILLS), "skills": list(SKILLS), "zero_skill_modelers": ZERO_SKILL,
                   "copier": 1, "non_revealer": 1, "honest_providers": 3, "inverted_providers": 1,
                   "sponsor_models_in_attack": len(sim.attacker.models)},
        "transactions": sim.txs,
        "funds_held_vs_owed": {"checked_after_every_transaction": True, "unequal": 0,
                               "owed_at_end_bond": bond(sim.market.owed()),
                               "burned_total_bond": round(bond(sim.market.burned()), 3)},
        "settlements_match_spec_8_5": True,
        "honest_parties_never_lose_stake": {"skilled_models_positive_own": honest_models,
                                            "datasets_non_negative_value": honest_datasets},
        "per_agent_type": per_type,
        "own_score_floor": floors,
        "perfect_knowledge_sponsor": attack_summary,
        "skilled_by_skill": skilled,
        "zero_skill": zero,
        "void": void_summary,
        "goals_failed": goal_fail,
    }


def print_table(rep: dict, out: str):
    e = rep["economics"]
    print(f"bisectml market rounds: {rep['rounds']}, {rep['transactions']} transactions, Market and Tasks held == "
          f"owed() after each; {rep['runtime_s']} s")
    print(f"terms: pool {e['pool_bond']:g} BOND, max_stake {e['max_stake_bond']:g}, cap {e['cap_bps']} bps, bonus "
          f"{e['bonus_bps']} bps, factor {e['factor_bps']}, data share {e['data_share_bps']}, data slash "
          f"{e['data_slash_bps']}")
    print(f"{'agent type':28} {'rounds':>6} {'total BOND':>11} {'mean/round':>11} {'at risk':>9} {'per BOND':>9}"
          f" {'min':>9} {'max':>9}")
    for k, v in rep["per_agent_type"].items():
        per = "" if v["net_per_bond_at_risk"] is None else f"{v['net_per_bond_at_risk']:9.4f}"
        print(f"{k:28} {v['agent_rounds']:6} {v['total_net_bond']:11.1f} {v['mean_net_bond_per_round']:11.2f} "
              f"{v['mean_at_risk_bond']:9.1f} {per:>9} {v['min_net_bond']:9.1f} {v['max_net_bond']:9.1f}")
    f = rep["own_score_floor"]
    print(f"own-score floor: {f['models_checked']} model payouts checked, {f['below_floor']} below "
          f"(min margin {f['min_margin_bond']} BOND): {f['goal_never_below']}")
    a = rep["perfect_knowledge_sponsor"]
    print(f"perfect-knowledge sponsor, {a['rounds']} rounds: its net without compute max "
          f"{a['sponsor_net_without_compute_bond_max']} BOND, mean {a['sponsor_net_without_compute_bond_mean']} "
          f"(honest sponsor of the control rounds {a['control_sponsor_net_without_compute_bond_mean']}, saving "
          f"{a['sponsor_saving_vs_control_mean_bond']}): "
          f"{a['goal_sponsor_gains_nothing']}")
    print(f"  skilled payouts with its models {a['skilled_payout_with_sponsor_models_mean_bond']} BOND, without "
          f"{a['skilled_payout_without_sponsor_models_mean_bond']} (bonus lost "
          f"{a['skilled_bonus_lost_to_sponsor_models_mean_bond']}); below own floor: "
          f"{a['skilled_below_own_floor_with_sponsor_models']}")
    print("skilled modelers by estimate noise (settled rounds): " + ", ".join(
        f"{k}: own {v['mean_own_score_bps']} bps, return {v['mean_return_bps']} bps, slashed {v['rounds_slashed']}"
        for k, v in rep["skilled_by_skill"].items()))
    z = rep["zero_skill"]
    print(f"zero-skill modelers: mean return {z['mean_return_bps']} +- {z['mean_return_bps_stderr']} bps of stake "
          f"(own score {z['mean_own_score_bps']} bps, bonus {z['mean_bonus_bps']} bps in "
          f"{z['model_rounds_with_bonus']} of {z['model_rounds']} model rounds, cap {z['bonus_cap_bps']})")
    v = rep["void"]
    print(f"void, {v['rounds']} rounds: {v['models']} revealed models paid {v['void_payout_mean_bond']} BOND mean "
          f"(min {v['void_payout_min_bond']}), settlement would pay {v['settlement_payout_mean_bond']}, best "
          f"{v['best_settlement_max_bond']}; below settlement {v['models_void_below_settlement']}, below best "
          f"{v['models_void_below_best']}: {v['goal_void_at_least_best']}; withholding sponsor net "
          f"{v['withholding_sponsor_net_mean_bond']} BOND per round")
    print(f"  with sybils in the slots left: withholding sponsor net {v['withholding_sponsor_with_sybils_net_mean_bond']}"
          f" BOND mean, {v['withholding_sponsor_with_sybils_net_max_bond']} max (goal <= 0: "
          f"{v['goal_withholder_gains_nothing']}); the other revealed models got "
          f"{v['others_void_payout_with_sybils_mean_bond']} BOND each")
    h = rep["honest_parties_never_lose_stake"]
    print(f"honest parties slashed: skilled models with own > 0 {h['skilled_models_positive_own']['slashed']}/"
          f"{h['skilled_models_positive_own']['checked']}, datasets with value >= 0 "
          f"{h['datasets_non_negative_value']['slashed']}/{h['datasets_non_negative_value']['checked']}")
    print(f"goals missed: {rep['goals_failed'] or 'none'}; written to {os.path.relpath(out, ROOT)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=100, help="rounds played (each attack round adds its control)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rows", type=int, default=256, help="n, rows per round (<= 256: one chunk of int64 metamodel)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    ap.add_argument("--out", default=str(ROOT / "bench" / "rounds_report.json"))
    args = ap.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    try:
        res = run(args)
        rep = summarize(args, res)
    except Invariant as e:
        print(f"INVARIANT BROKEN: {e}")
        return 1
    Path(args.out).write_text(json.dumps(rep, indent=1) + "\n")
    print_table(rep, args.out)
    if args.check and rep["goals_failed"]:
        print("goals missed: " + "; ".join(rep["goals_failed"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
