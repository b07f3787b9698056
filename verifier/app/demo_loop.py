"""The closed loop (docs/SPEC.md 12) played on a chain: depositors fund the vault, a skilled and
an unskilled modeler predict each period's return, the metamodel is claimed through the game
(a cheater's wrong claim is caught before any trade uses it), the vault trades on the pool,
an arbitrageur moves the pool along the documented synthetic series (SPEC 11.3), and each
period's scores pay the models. `run_loop` is the demo's act, `bench/bench_loop.py`'s run and
the periods test's; it returns what happened, period by period.

Skill is modelled as information: the skilled model sees the next period's return with noise
(`skill_noise_bps`); the unskilled one guesses uniformly. Both lean by the same scale, so what
separates their payouts is being right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from web3.logs import DISCARD

from verifier.court.chain import Chain, Deployment
from verifier.court.game import Outcome, Role
from verifier.court.play import Court, GamePlayer, play_out
from verifier.engine.trace import Trace
from verifier.market.exchange import E18, Arbitrageur, returns_bps, synthetic_series
from verifier.market.loop import LoopTerms
from verifier.market.loop_client import METAMODEL, SCORES, LoopClient

TOKEN = 10**18
DAY = 86_400
HOUR = 3_600
#: the protocol's shortest phases and task terms (SPEC 12.1, 8.1), two model slots
TERMS = LoopTerms(
    models=2, commit_phase=HOUR, reveal_phase=DAY, hold=DAY, average=HOUR, max_position_bps=5_000, leverage=50,
    slippage_bps=100, fee_bps=100, factor_bps=10_000, cap_bps=2_500, bonus_bps=500, min_stake=10 * TOKEN,
    reward=TOKEN, window=2 * DAY, clock=2 * DAY, duration=DAY, solver_bond=500 * TOKEN, challenger_bond=250 * TOKEN,
    arity=8,
)  # fmt: skip
POOL_BOND = 4 * 10**8 * TOKEN  # a pool a hundred times the vault: a trade moves it little
DEPOSITS = (150_000 * TOKEN, 50_000 * TOKEN)
MODEL_STAKE = 1_000 * TOKEN


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


@dataclass
class LoopRun:
    rows: list[PeriodRow] = field(default_factory=list)
    start_price: float = 0.0
    model_pnl: list[int] = field(default_factory=list)
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
    skilled and the unskilled modeler, an honest solver, a cheater and a watchtower; the first
    must be able to mint the deployment's token."""
    keeper, dep0, dep1, skilled, unskilled, solver_account, cheater, tower = accounts[:8]
    court = Court(chain.as_account(keeper), deployment)
    token = court.token
    asset = chain.as_account(keeper).deploy("Token")
    pool = chain.as_account(keeper).deploy("Pool", token.address, asset.address)
    k = chain.as_account(keeper)
    series = synthetic_series(plan.periods, plan.seed, noise_bps=plan.noise_bps)
    for who in accounts[:8]:
        k.send(token.functions.mint(who, 10**6 * TOKEN), "mint")
    k.send(token.functions.mint(keeper, 10 * POOL_BOND), "mint")
    k.send(asset.functions.mint(keeper, 10 * POOL_BOND * E18 // series[0]), "mint")
    arb = Arbitrageur(k, pool, token, asset)
    arb.approve()
    k.send(pool.functions.add_liquidity(POOL_BOND, POOL_BOND * E18 // series[0], 0, keeper), "add liquidity")
    client = LoopClient.deploy(k, TERMS, token.address, deployment.addresses["Tasks"], asset.address, pool.address)
    if on_deployed is not None:
        on_deployed(client)
    say(f"deployed a pool (BOND / ASSET at {series[0] / E18:.2f}), a vault and a loop with {TERMS.models} model slots; "
        f"a period is at least {(TERMS.commit_phase + TERMS.reveal_phase + TERMS.latency + TERMS.hold) / DAY:.1f} days, "
        f"as the latency bound (claim period + window + both clocks) requires")  # fmt: skip

    depositors = [client.as_account(a) for a in (dep0, dep1)]
    for d, amount in zip(depositors, DEPOSITS, strict=True):
        d.deposit(amount)
    modelers = [client.as_account(a) for a in (skilled, unskilled)]
    mids = [m.register(MODEL_STAKE) for m in modelers]
    for who in (solver_account, cheater, tower):
        c = chain.as_account(who)
        c.send(token.functions.approve(deployment.addresses["Tasks"], 2**256 - 1), "approve bonds")
    rng = np.random.default_rng(plan.seed)
    true_returns = returns_bps(series)
    run = LoopRun()
    wallet = {m.account: int(token.functions.balanceOf(m.account).call()) for m in modelers}
    honest, bad, watch = (Court(chain.as_account(a), deployment) for a in (solver_account, cheater, tower))

    def poke() -> None:
        k.send(pool.functions.swap(token.address, 10**6, 0, keeper), "poke the pool")

    def at(t: int) -> None:
        """To time `t`, with an observation of the pool one average window before it."""
        travel_to(chain, t - TERMS.average - 60)
        poke()
        travel_to(chain, t)

    def solve(pid: int, kind: int, trace: Trace, cheat: bool) -> bool:
        """Posts the kind's task, has it solved (by `solver`, or here: honestly, after a
        cheater's wrong claim that the watchtower catches when `cheat`) and records the result.
        True when a cheat was caught."""
        tid = client.post_task(pid, kind)
        trace.run()
        caught = solver(pid, kind, tid, trace, cheat) if solver is not None else claim_here(tid, trace, cheat)
        client.record(pid, kind, trace)
        return caught

    def claim_here(tid: int, trace: Trace, cheat: bool) -> bool:
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
        claim_id = honest.claim(tid, root)
        travel_to(chain, chain.w3.eth.get_block("latest")["timestamp"] + TERMS.window + 1)
        honest.chain.send(honest.tasks.functions.finalize(claim_id), "finalize")
        return caught

    for t in range(plan.periods):
        pid = client.open_period()
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
        caught = solve(pid, METAMODEL, Trace(client.program(pid, METAMODEL)), plan.cheat_period == t)
        at(sch.trade_at)
        client.trade(pid)
        arb.move_to(series[t + 1])
        at(sch.end)
        arb.move_to(series[t + 1])  # the vault's own trade left the pool a little off the series
        client.close(pid)
        per = client.period(pid)
        if per["state"] == 1:  # a label: the scores decide the payouts
            solve(pid, SCORES, Trace(client.program(pid, SCORES)), False)
            client.settle(pid)
        paid = []
        for m, mid in zip(modelers, mids, strict=True):
            now = int(token.functions.balanceOf(m.account).call()) + client.stake(mid)[0]
            paid.append(now - wallet[m.account] - MODEL_STAKE)
            wallet[m.account] = now - MODEL_STAKE
        row = PeriodRow(
            period=pid, true_return_bps=true_returns[t], predictions=preds, metamodel=int(per["metamodel"]),
            label=int(per["label"]), spent=int(per["spent"]), proceeds=int(per["proceeds"]), payouts=paid,
            vault_assets=int(client.vault.functions.assets().call()), share_price=_share_price(client), caught=caught,
        )  # fmt: skip
        run.rows.append(row)
        run.balanced &= _balanced(client)
        say(f"period {pid}: predictions {preds}, metamodel {row.metamodel} → "
            f"{'bought ' + format(row.spent / TOKEN, ',.0f') + ' BOND of the asset' if row.spent else 'no position'}; "
            f"the asset moved {row.true_return_bps:+d} bps (label {row.label:+d}); "
            f"models paid {[round(p / TOKEN, 1) for p in paid]} BOND")  # fmt: skip
    run.model_pnl = [sum(r.payouts[i] for r in run.rows) for i in range(TERMS.models)]
    run.burned = int(client.loop.functions.burned().call())
    run.depositor_change = [d.equity() - a for d, a in zip(depositors, DEPOSITS, strict=True)]
    return run


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


__all__ = ["Plan", "LoopRun", "PeriodRow", "Solver", "TERMS", "equity_chart", "run_loop"]
