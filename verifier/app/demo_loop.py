"""The closed loop (docs/SPEC.md 12) played on a chain: depositors fund the vault, a skilled and
an unskilled modeler predict each period's return, the metamodel is claimed through the game
(a cheater's wrong claim is caught before any trade uses it), the vault trades on the pool,
an arbitrageur moves the pool along the documented synthetic series (SPEC 11.3), and each
period's scores pay the models, who pass a share of their gains on to their data providers by
the data values (SPEC 12.5). `run_loop` is the demo's act, `bench/bench_loop.py`'s run and the
periods test's; it returns what happened, period by period.

Skill is modelled as information: the skilled model sees the next period's return with noise
(`skill_noise_bps`); the unskilled one guesses uniformly. Both lean by the same scale, so what
separates their payouts is being right.

Two data providers publish a dataset each and join every period. Each row is a pattern of past
labels (as the loop's features, `verifier.market.loop.features`) and its label the label that
followed, from a seeded history of the same synthetic series: the informative provider's labels
are the history's, the noisy provider's are flipped (systematically wrong). The skilled model
names the informative dataset, the unskilled one the noisy dataset. The series' signal is weak
(a lag-one correlation of 0.2 in returns, about 0.13 in their signs), so one period's data
values are close to coin flips; what a provider earns also depends on the gains of the model
that names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from web3.logs import DISCARD

from verifier.court.chain import Chain, Deployment
from verifier.court.game import Outcome, Role
from verifier.court.play import Court, GamePlayer, play_out
from verifier.engine.program import Program, load_program
from verifier.engine.trace import Trace
from verifier.market import economics as econ
from verifier.market import loop as rules
from verifier.market.exchange import E18, Arbitrageur, returns_bps, synthetic_series
from verifier.market.loop import LoopTerms
from verifier.market.loop_client import METAMODEL, SCORES, VALUES, LoopClient

TOKEN = 10**18
DAY = 86_400
HOUR = 3_600
#: the protocol's shortest phases and task terms (SPEC 12.1, 8.1), two model slots; two dataset
#: slots of 32 rows whose features are the labels of the two periods before, valued with 5
#: neighbours; a model passes 20% of a gain on to its positively valued datasets, and a
#: negatively valued dataset loses 5% of its reservation
TERMS = LoopTerms(
    models=2, commit_phase=HOUR, reveal_phase=DAY, hold=DAY, average=HOUR, max_position_bps=5_000, leverage=50,
    slippage_bps=100, fee_bps=100, factor_bps=10_000, cap_bps=2_500, bonus_bps=500, min_stake=10 * TOKEN,
    reward=TOKEN, window=2 * DAY, clock=2 * DAY, duration=DAY, solver_bond=500 * TOKEN, challenger_bond=250 * TOKEN,
    arity=8, datasets=2, features=2, dataset_rows=32, k=5, data_share_bps=2_000, data_slash_bps=500,
)  # fmt: skip
POOL_BOND = 4 * 10**8 * TOKEN  # a pool a hundred times the vault: a trade moves it little
DEPOSITS = (150_000 * TOKEN, 50_000 * TOKEN)
MODEL_STAKE = 1_000 * TOKEN
DATA_STAKE = 1_000 * TOKEN  # each data provider's stake
DATA_JOIN = 500 * TOKEN  # what a dataset reserves each period (5% of it is slashed on a negative value)
#: the data providers' histories: their own seeds, apart from the period series' (Plan.seed)
DATA_SEEDS = (1_000, 2_000)


@dataclass
class Plan:
    periods: int = 3
    seed: int = 7
    noise_bps: int = 400  # the series' per-period return spread
    skill_noise_bps: int = 150  # what the skilled model's view of the next return is off by
    cheat_period: int | None = 1  # the period whose metamodel a cheater claims wrong (None: none)


@dataclass
class PeriodRow:
    period: int
    true_return_bps: int
    predictions: list[int]
    metamodel: int
    label: int
    spent: int
    proceeds: int
    payouts: list[int]
    vault_assets: int
    share_price: float
    caught: bool = False
    # by data provider (informative, noisy): what each gained (+) or lost (-) this period, from
    # its balance and its dataset's stake; the DataPaid amounts settle logged; the recorded
    # data values (None when its dataset was not active)
    data_payouts: list[int] = field(default_factory=list)
    data_paid: list[int] = field(default_factory=list)
    data_values: list[int | None] = field(default_factory=list)
    # what settle read, from the chain just before it (None for a period not settled)
    settled: SettleInputs | None = None


@dataclass
class SettleInputs:
    """What `settle` pays from, read from the chain before it: `verifier.market.loop.settlement`'s
    arguments, and which dataset slot each data provider held."""

    amounts: list[int]
    revealed: list[bool]
    scores: list[int]
    named: list[list[int]]
    datasets: list[econ.DatasetEntry]
    pool: int
    budget: int
    provider_slots: list[int | None]

    def expected(self, terms: LoopTerms = TERMS) -> econ.Settlement:
        return rules.settlement(
            self.amounts, self.revealed, self.scores, terms, self.pool, self.budget, self.named, self.datasets
        )

    def expected_data(self, terms: LoopTerms = TERMS) -> list[int]:
        """The settlement's data payouts by data provider (0 for a dataset not in the period)."""
        pay = self.expected(terms).dataset_payouts
        return [0 if s is None else pay[s] for s in self.provider_slots]


@dataclass
class LoopRun:
    rows: list[PeriodRow] = field(default_factory=list)
    start_price: float = 0.0
    model_pnl: list[int] = field(default_factory=list)
    data_pnl: list[int] = field(default_factory=list)  # informative, noisy
    depositor_change: list[int] = field(default_factory=list)
    burned: int = 0
    balanced: bool = True  # every contract held what it owed after every period


def travel_to(chain: Chain, to: int) -> None:
    """To time `to` on the in-process chain or a development node (anvil)."""
    if to <= chain.w3.eth.get_block("latest")["timestamp"]:
        return
    from web3 import EthereumTesterProvider

    if isinstance(chain.w3.provider, EthereumTesterProvider):
        chain.w3.testing.timeTravel(to)
        chain.w3.testing.mine()
    else:
        chain.w3.provider.make_request("evm_setNextBlockTimestamp", [to])
        chain.w3.provider.make_request("evm_mine", [])


def history_dataset(
    seed: int, terms: LoopTerms = TERMS, noise_bps: int = 400, flip: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A dataset of the loop's shape from a seeded history of the synthetic series (SPEC 11.3),
    computed here: row i holds the labels of the F periods before history period i, latest
    first and 0 before the history began (exactly as the loop computes a period's features), and
    its label is period i's own label; `flip` reverses every label. A period without a move
    (label 0, unscored in the loop) gives no row."""
    rows: list[bytes] = []
    out: list[int] = []
    labels: list[int] = []
    n = 2 * terms.dataset_rows + 8
    for r in returns_bps(synthetic_series(n, seed, noise_bps=noise_bps)):
        y = (r > 0) - (r < 0)
        if y and len(out) < terms.dataset_rows:
            rows.append(rules.features(labels, terms))
            out.append(-y if flip else y)
        labels.append(y)
    if len(out) < terms.dataset_rows:
        raise RuntimeError(f"the history of seed {seed} has fewer than {terms.dataset_rows} periods with a move")
    x = np.frombuffer(b"".join(rows), np.int8).reshape(terms.dataset_rows, terms.features).copy()
    return x, np.array(out, np.int8)


#: (period, kind, task id, the honest trace, cheat) -> whether a cheat was caught; returns once
#: the task is DONE. The default claims in this process; the end-to-end test waits for daemons.
Solver = Callable[[int, int, int, Trace, bool], bool]


def run_loop(
    chain: Chain,
    deployment: Deployment,
    accounts: list[str],
    plan: Plan,
    say: Callable[[str], None] = lambda _: None,
    solver: Solver | None = None,
    on_deployed: Callable[[LoopClient], None] | None = None,
) -> LoopRun:
    """Plays `plan.periods` periods. `accounts`: keeper (and arbitrageur), two depositors, the
    skilled and the unskilled modeler, an honest solver, a cheater, a watchtower, and the
    informative and the noisy data provider; the first must be able to mint the deployment's
    token."""
    keeper, dep0, dep1, skilled, unskilled, solver_account, cheater, tower, good_data, noisy_data = accounts[:10]
    court = Court(chain.as_account(keeper), deployment)
    token = court.token
    asset = chain.as_account(keeper).deploy("Token")
    pool = chain.as_account(keeper).deploy("Pool", token.address, asset.address)
    k = chain.as_account(keeper)
    series = synthetic_series(plan.periods, plan.seed, noise_bps=plan.noise_bps)
    for who in accounts[:10]:
        k.send(token.functions.mint(who, 10**6 * TOKEN), "mint")
    k.send(token.functions.mint(keeper, 10 * POOL_BOND), "mint")
    k.send(asset.functions.mint(keeper, 10 * POOL_BOND * E18 // series[0]), "mint")
    arb = Arbitrageur(k, pool, token, asset)
    arb.approve()
    k.send(pool.functions.add_liquidity(POOL_BOND, POOL_BOND * E18 // series[0], 0, keeper), "add liquidity")
    client = LoopClient.deploy(k, TERMS, token.address, deployment.addresses["Tasks"], asset.address, pool.address, deployment.block)
    if on_deployed is not None:
        on_deployed(client)
    say(f"deployed a pool (BOND / ASSET at {series[0] / E18:.2f}), a vault and a loop with {TERMS.models} model slots; "
        f"a period is at least {(TERMS.commit_phase + TERMS.reveal_phase + TERMS.latency + TERMS.hold) / DAY:.1f} days, "
        f"as the latency bound (claim period + window + both clocks) requires")  # fmt: skip

    depositors = [client.as_account(a) for a in (dep0, dep1)]
    for d, amount in zip(depositors, DEPOSITS, strict=True):
        d.deposit(amount)
    providers = [client.as_account(a) for a in (good_data, noisy_data)]
    published = [history_dataset(plan.seed + s, TERMS, plan.noise_bps, flip=i == 1) for i, s in enumerate(DATA_SEEDS)]
    dids = [p.publish_dataset(x, y, DATA_STAKE) for p, (x, y) in zip(providers, published, strict=True)]
    arrays = dict(zip(dids, published, strict=True))
    modelers = [client.as_account(a) for a in (skilled, unskilled)]
    # the skilled model was trained on the informative dataset, the unskilled one on the noisy
    named = {}
    for m, did in zip(modelers, dids, strict=True):
        named[m.register(MODEL_STAKE, (did,))] = (did,)
    mids = list(named)
    say(f"two data providers publish {TERMS.dataset_rows} rows of past-label patterns each "
        f"(datasets {dids}: the history's next labels, and the same kind of history with its labels flipped); "
        f"the skilled model names the first, the unskilled one the second")  # fmt: skip
    for who in (solver_account, cheater, tower):
        c = chain.as_account(who)
        c.send(token.functions.approve(deployment.addresses["Tasks"], 2**256 - 1), "approve bonds")
    rng = np.random.default_rng(plan.seed)
    true_returns = returns_bps(series)
    run = LoopRun()
    wallet = {m.account: int(token.functions.balanceOf(m.account).call()) for m in modelers}

    def data_holding(p: LoopClient, did: int) -> int:
        return int(token.functions.balanceOf(p.account).call()) + int(client.loop.functions.datasets(did).call()[3])

    data_wallet = [data_holding(p, d) for p, d in zip(providers, dids, strict=True)]
    honest, bad, watch = (Court(chain.as_account(a), deployment) for a in (solver_account, cheater, tower))

    def poke() -> None:
        k.send(pool.functions.swap(token.address, 10**6, 0, keeper), "poke the pool")

    def at(t: int) -> None:
        """To time `t`, with an observation of the pool one average window before it."""
        travel_to(chain, t - TERMS.average - 60)
        poke()
        travel_to(chain, t)

    def solve(pid: int, jobs: list[tuple[int, Trace, bool]]) -> bool:
        """Posts each (kind, trace, cheat) job's task, all before any is solved (solvers work
        on them together), has each solved (by `solver`, or here: honestly, after a cheater's
        wrong claim that the watchtower catches when `cheat`) and records the results. True when
        a cheat was caught."""
        tids = [client.post_task(pid, kind) for kind, _, _ in jobs]
        caught = False
        claims = []
        for tid, (kind, trace, cheat) in zip(tids, jobs, strict=True):
            trace.run()
            if solver is not None:
                caught |= solver(pid, kind, tid, trace, cheat)
            else:
                claim_id, cheat_caught = claim_here(tid, trace, cheat)
                claims.append(claim_id)
                caught |= cheat_caught
        if claims:  # the claims' windows pass together
            travel_to(chain, chain.w3.eth.get_block("latest")["timestamp"] + TERMS.window + 1)
            for claim_id in claims:
                honest.chain.send(honest.tasks.functions.finalize(claim_id), "finalize")
        for kind, trace, _ in jobs:
            client.record(pid, kind, trace)
        return caught

    def claim_here(tid: int, trace: Trace, cheat: bool) -> tuple[int, bool]:
        """The honest claim's id (after a cheater's wrong claim that the watchtower catches when
        `cheat`), and whether a cheat was caught."""
        root = trace.final_root
        caught = False
        if cheat:
            import copy

            from solvers.cheats import WrongElement

            wrong = copy.copy(trace.program)
            wrong.__class__ = WrongElement
            wrong.target, wrong.element, wrong.delta = (0, trace.program.n_nodes - 1), 0, 60
            bad_trace = Trace(wrong)
            bad_root = bad_trace.run()
            bad_claim = bad.claim(tid, bad_root)
            receipt = watch.chain.send(watch.tasks.functions.challenge(bad_claim), "challenge")
            challenge_id = watch.tasks.events.Challenged().process_receipt(receipt, errors=DISCARD)[0]["args"]["challenge_id"]
            game_id = watch.tasks.functions.challenges(challenge_id).call()[2]
            players = [GamePlayer.for_trace(bad, game_id, Role.SOLVER, bad_trace),
                       GamePlayer.for_trace(watch, game_id, Role.CHALLENGER, trace)]  # fmt: skip
            outcome = play_out(players)
            if outcome != Outcome.CHALLENGER_WON:
                raise RuntimeError(f"the watchtower did not win the metamodel game: {outcome}")
            watch.chain.send(watch.tasks.functions.settle(challenge_id), "settle")
            caught = True
            say(f"  [red]cheater[/red] claims the metamodel raised by 60; the [cyan]watchtower[/cyan] wins game "
                f"{game_id} and the claim is rejected before any trade could use it")  # fmt: skip
        return honest.claim(tid, root), caught

    for t in range(plan.periods):
        pid = client.open_period()
        for p, did in zip(providers, dids, strict=True):
            p.join(pid, did, DATA_JOIN)
        if t == 0:
            for d in depositors:
                d.claim()
            # the price the deposits bought at, before the first period's pool and budget were lent
            run.start_price = (sum(DEPOSITS) + 1) / (int(client.vault.functions.total_shares().call()) + 1_000) * 1_000
        sch = client.schedule(pid)
        view = true_returns[t] + int(rng.normal(0, plan.skill_noise_bps))
        preds = [int(np.clip(view // 10, -100, 100)), int(rng.integers(-40, 41))]
        for m, mid, p in zip(modelers, mids, preds, strict=True):
            stake, reserved = m.stake(mid)
            m.commit(pid, mid, p, min(MODEL_STAKE, stake - reserved))
        travel_to(chain, sch.commit_deadline)
        for m, mid in zip(modelers, mids, strict=True):
            m.reveal(pid, mid)
        travel_to(chain, sch.reveal_deadline)
        caught = solve(pid, [(METAMODEL, Trace(client.program(pid, METAMODEL)), plan.cheat_period == t)])
        at(sch.trade_at)
        client.trade(pid)
        arb.move_to(series[t + 1])
        at(sch.end)
        arb.move_to(series[t + 1])  # the vault's own trade left the pool a little off the series
        client.close(pid)
        per = client.period(pid)
        settled, data_paid, values = None, [0, 0], [None, None]
        if per["state"] == 1:  # a label: the scores (and the data values) decide the payouts
            jobs = [(SCORES, Trace(client.program(pid, SCORES)), False)]
            dslots = client.dataset_slots(pid)  # fixed since the commit deadline
            if per["active"]:  # a revealed model names a joined dataset: the values are due too
                jobs.append((VALUES, Trace(_values_program(client, pid, int(per["label"]), dslots, arrays)), False))
            solve(pid, jobs)
            settled = _settle_inputs(client, pid, named, dids, dslots)
            receipt = client.settle(pid)
            for e in client.loop.events.DataPaid().process_receipt(receipt, errors=DISCARD):
                data_paid[dids.index(int(e["args"]["dataset_id"]))] += int(e["args"]["amount"])
            values = [None if s is None or not settled.datasets[s].active else settled.datasets[s].value
                      for s in settled.provider_slots]  # fmt: skip
        paid = []
        for m, mid in zip(modelers, mids, strict=True):
            now = int(token.functions.balanceOf(m.account).call()) + client.stake(mid)[0]
            paid.append(now - wallet[m.account] - MODEL_STAKE)
            wallet[m.account] = now - MODEL_STAKE
        data_now = [data_holding(p, d) for p, d in zip(providers, dids, strict=True)]
        data_paid_here = [n - w for n, w in zip(data_now, data_wallet, strict=True)]
        data_wallet = data_now
        row = PeriodRow(
            period=pid, true_return_bps=true_returns[t], predictions=preds, metamodel=int(per["metamodel"]),
            label=int(per["label"]), spent=int(per["spent"]), proceeds=int(per["proceeds"]), payouts=paid,
            vault_assets=int(client.vault.functions.assets().call()), share_price=_share_price(client), caught=caught,
            data_payouts=data_paid_here, data_paid=data_paid, data_values=values, settled=settled,
        )  # fmt: skip
        run.rows.append(row)
        run.balanced &= _balanced(client)
        say(f"period {pid}: predictions {preds}, metamodel {row.metamodel} → "
            f"{'bought ' + format(row.spent / TOKEN, ',.0f') + ' BOND of the asset' if row.spent else 'no position'}; "
            f"the asset moved {row.true_return_bps:+d} bps (label {row.label:+d}); "
            f"models paid {[round(p / TOKEN, 1) for p in paid]} BOND, data providers "
            f"{[round(p / TOKEN, 1) for p in data_paid_here]} (data values {', '.join(_fractions(values))})")  # fmt: skip
    run.model_pnl = [sum(r.payouts[i] for r in run.rows) for i in range(TERMS.models)]
    run.data_pnl = [sum(r.data_payouts[i] for r in run.rows) for i in range(len(providers))]
    run.burned = int(client.loop.functions.burned().call())
    run.depositor_change = [d.equity() - a for d, a in zip(depositors, DEPOSITS, strict=True)]
    return run


def _values_program(
    client: LoopClient,
    pid: int,
    label: int,
    dslots: list[tuple[int, int, bool]],
    arrays: dict[int, tuple[np.ndarray, np.ndarray]],
) -> Program:
    """The period's data-values program: its mask, label and features read from the chain, the
    datasets' bytes as their providers published them. A copy that differed from what the loop
    committed could not be recorded (the task's initial state commits to the datasets, and
    `record` checks the result against the finalized claim). `LoopClient.program` reads the bytes
    back from Availability.vy's calldata instead, as the daemons do (tests/e2e/
    test_loop_daemons.py); on the in-process chain that read costs seconds a tensor."""
    from onnx_models.market import program

    mask = np.zeros(TERMS.datasets, np.int64)
    sets: list[tuple[np.ndarray, np.ndarray] | None] = [None] * TERMS.datasets
    for s, (did, _, active) in enumerate(dslots):
        if active:
            mask[s], sets[s] = 1, arrays[did]
    features = np.frombuffer(bytes(client.loop.functions.features(pid).call())[: TERMS.features], np.int8)
    data = {"mask": mask, "labels": np.array([label], np.int8), "features": features.reshape(1, -1), "datasets": sets}
    return load_program(program(VALUES, rules.shape(TERMS), **data))


def _settle_inputs(
    client: LoopClient, pid: int, named: dict[int, tuple[int, ...]], dids: list[int], dslots: list[tuple[int, int, bool]]
) -> SettleInputs:
    """What `settle` will read for the period: reservations, reveals, scores, each model's
    datasets as slots of the period, the datasets' reservations, values and activity."""
    f = client.loop.functions
    per = client.period(pid)
    slots = client.slots(pid)
    slot_of = {did: s for s, (did, _, _) in enumerate(dslots)}
    recorded = int(per["recorded"])
    values = [int(v) for v in f.values(pid).call()] if recorded & (1 << VALUES) else [0] * TERMS.datasets
    entries = [econ.DatasetEntry(at_risk, int(f.datasets(did).call()[3]), values[s], active)
               for s, (did, at_risk, active) in enumerate(dslots)]  # fmt: skip
    return SettleInputs(
        amounts=[a for _, a, _ in slots], revealed=[p is not None for _, _, p in slots],
        scores=[int(v) for v in f.scores(pid).call()],
        named=[[slot_of[d] for d in named.get(mid, ()) if d in slot_of] for mid, _, _ in slots],
        datasets=entries, pool=int(per["pool"]), budget=int(per["budget"]),
        provider_slots=[slot_of.get(d) for d in dids],
    )  # fmt: skip


def _fractions(values: list[int | None]) -> list[str]:
    """Data values as fractions of one: the values program's 10^6 is every neighbour agreeing."""
    return ["-" if v is None else f"{v / 1e6:+.2f}" for v in values]


def _share_price(client: LoopClient) -> float:
    assets, supply = int(client.vault.functions.assets().call()), int(client.vault.functions.total_shares().call())
    return (assets + 1) / (supply + 1_000) * 1_000


def _balanced(client: LoopClient) -> bool:
    token, loop, vault = client.token.functions, client.loop.functions, client.vault.functions
    return (
        int(token.balanceOf(client.loop.address).call()) == int(loop.owed().call())
        and int(token.balanceOf(client.vault.address).call()) == int(vault.owed().call())
    )


def equity_chart(prices: list[float], width: int = 40) -> list[str]:
    """A terminal chart of the vault's share price, one bar per period."""
    lo, hi = min(prices), max(prices)
    span = (hi - lo) or 1.0
    return [f"{i:>3} {p:10.4f} " + "█" * (1 + int((p - lo) / span * (width - 1))) for i, p in enumerate(prices)]


__all__ = [
    "Plan", "LoopRun", "PeriodRow", "SettleInputs", "Solver", "TERMS", "equity_chart", "history_dataset", "run_loop",
]  # fmt: skip
