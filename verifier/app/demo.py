"""`bisectml demo`: the whole story on an in-process chain, nothing else to start.

A poster pays for training the bundled digits MLP. A cheater claims a result with one wrong
number buried in one step of a thousand; the watchtower re-executes, disputes, and the game
narrows step -> node -> element -> term until one multiply-add is re-executed on-chain. The
cheater is slashed, an honest solver claims, the window passes and it is paid.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from web3.logs import DISCARD

from solvers.cheats import WrongElement
from verifier.court.chain import Chain, deploy_suite
from verifier.court.game import GameState, Level, Move, Outcome, Role
from verifier.court.play import Court, GamePlayer, play_out, program_task_args
from verifier.engine.program import Program, load_program
from verifier.engine.trace import Trace
from verifier.market import results

TOKEN = 10**18
REWARD = 100 * TOKEN
SOLVER_BOND = 50 * TOKEN
CHALLENGER_BOND = 250 * TOKEN  # the protocol minimum (SPEC 7.2)
WINDOW = 172_800  # the protocol's minimums (SPEC 7.2)
CLOCK = 172_800
ARITY = 8
CHEAT_DELTA = 1 << 20  # the cheater's one wrong number is off by this much


@dataclass
class Actor:
    name: str
    role: str
    court: Court
    gas: int = 0
    before: int = 0

    @property
    def address(self) -> str:
        return self.court.chain.account

    def send(self, fn: Any, what: str) -> Any:
        receipt = self.court.chain.send(fn, what)
        self.gas += receipt["gasUsed"]
        return receipt

    def claim(self, task_id: int, root: bytes) -> int:
        """Commit to the root (taking the task's slot), then reveal it (SPEC 7.3)."""
        claim_id, receipt = self.court.commit_claim(task_id, root)
        self.gas += receipt["gasUsed"] + self.court.reveal_claim(claim_id, root)["gasUsed"]
        return claim_id


@dataclass
class Demo:
    console: Console
    steps: int | None = None
    market: bool = True  # also play a market round after the training dispute
    actors: dict[str, Actor] = field(default_factory=dict)
    # what happened, for scripts and tests: balance changes, burned, escrow, outcome, accuracy
    summary: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def run(self) -> int:
        started = time.perf_counter()
        c = self.console
        c.rule("[bold]bisectml demo[/bold]: verified ML training on an in-process chain")
        chain = Chain.embedded()
        deployment = deploy_suite(chain)
        accounts = chain.w3.eth.accounts
        for i, (name, role) in enumerate(
            [("poster", "pays for training"), ("honest", "honest solver"), ("cheater", "cheating solver"), ("watchtower", "challenger")]
        ):
            self.actors[name] = Actor(name, role, Court(chain.as_account(accounts[i]), deployment))
        poster, honest, cheater, tower = (self.actors[n] for n in ("poster", "honest", "cheater", "watchtower"))
        token, tasks = poster.court.token, poster.court.tasks
        for a in self.actors.values():
            poster.court.chain.send(token.functions.mint(a.address, 1_000 * TOKEN), "mint")
        for a in self.actors.values():
            a.before = token.functions.balanceOf(a.address).call()
        self.say(f"deployed the court (game, referee, 4 one-step contracts, task registry, bond token) on chain {chain.chain_id}")

        program = load_program(_bundled("mlp_train"), steps=self.steps)
        n_nodes = program.n_nodes
        self.say(
            f"program: fixed-point MLP on digits, {program.steps} training steps x {n_nodes} integer ONNX nodes, "
            f"program id 0x{program.id.hex()[:16]}…"
        )
        poster.send(token.functions.approve(tasks.address, REWARD), "approve reward")
        now = chain.w3.eth.get_block("latest")["timestamp"]
        args = program_task_args(program)
        # the poster wants the trained weights, not only their root: they are the task's result
        result_slots = results.default_result(program)
        receipt = poster.send(
            tasks.functions.post_task(
                args["graph_root"], args["n_nodes"], args["n_slots"], args["initial_root"], args["dataset_root"],
                args["steps"], REWARD, WINDOW, CLOCK, SOLVER_BOND, CHALLENGER_BOND, ARITY, now + 7 * WINDOW,
                result_slots,
            ),
            "post task",
        )
        task_id = tasks.events.TaskPosted().process_receipt(receipt, errors=DISCARD)[0]["args"]["task_id"]
        self.say(f"poster posts task {task_id}: reward {REWARD // TOKEN} BOND, solver bond {SOLVER_BOND // TOKEN}, "
                 f"challenger bond {CHALLENGER_BOND // TOKEN}, {WINDOW // 3600} h window, {ARITY}-ary dissection")

        # the watchtower's (and the honest solver's) view of the result
        t0 = time.perf_counter()
        tower_trace = Trace(program)
        tower_root = tower_trace.run()
        tower_secs = time.perf_counter() - t0

        # the cheater front-runs with a wrong result: one product in the weight gradient of one
        # step (an error that a later Relu or clip absorbs would not change the result, so the
        # cheater picks one that does)
        bad_step = program.steps * 5 // 8
        bad_node = max(i for i, n in enumerate(program.graph.nodes) if n.op.name == "MatMul")
        t0 = time.perf_counter()
        for element in (-1, 0, 1, 4095, 2048, 100):
            cheat_program = load_program(_bundled("mlp_train"), steps=self.steps)
            cheat_program.__class__ = WrongElement
            cheat_program.target, cheat_program.element = (bad_step, bad_node), element
            cheat_program.delta = CHEAT_DELTA
            cheat_trace = Trace(cheat_program)
            cheat_root = cheat_trace.run()
            if cheat_root != tower_root:
                break
        cheat_secs = time.perf_counter() - t0
        cheater.send(token.functions.approve(tasks.address, SOLVER_BOND), "approve bond")
        bad_claim = cheater.claim(task_id, cheat_root)
        self.say(
            f"[red]cheater[/red] commits to a claim, then reveals 0x{cheat_root.hex()[:16]}… after {cheat_secs:.1f} s "
            "(the commitment binds the claim to its solver, so nobody can copy it): one number in the output of "
            f"node {bad_node} ({program.graph.nodes[bad_node].op.name}) at step {bad_step} is off by 2^20"
        )

        # the watchtower re-executed the program and disputes the claim that differs
        if tower_root == cheat_root:
            raise RuntimeError("the planted error did not change the result; nothing to dispute")
        self.say(f"[cyan]watchtower[/cyan] re-executed in {tower_secs:.1f} s: root 0x{tower_root.hex()[:16]}… "
                 "≠ claim → challenge")
        tower.send(token.functions.approve(tasks.address, CHALLENGER_BOND), "approve bond")
        receipt = tower.send(tasks.functions.challenge(bad_claim), "challenge")
        challenge_id = tasks.events.Challenged().process_receipt(receipt, errors=DISCARD)[0]["args"]["challenge_id"]
        game_id = tasks.functions.challenges(challenge_id).call()[2]

        c.rule(f"game {game_id}: the cheater defends, the watchtower points")
        players = [
            GamePlayer.for_trace(cheater.court, game_id, Role.SOLVER, cheat_trace),
            GamePlayer.for_trace(tower.court, game_id, Role.CHALLENGER, tower_trace),
        ]
        by_role = {Role.SOLVER: cheater, Role.CHALLENGER: tower}

        def narrate(p: GamePlayer, move: Move, receipt: Any, after: GameState) -> None:
            actor = by_role[p.role]
            actor.gas += receipt["gasUsed"]
            self.say(f"  {_describe(p.role, move, after, program)}  [dim]({receipt['gasUsed']:,} gas)[/dim]")

        outcome = play_out(players, on_move=narrate)
        final = cheater.court.state(game_id)
        assert outcome == Outcome.CHALLENGER_WON, outcome
        self.say(f"[bold green]the watchtower wins game {game_id}[/bold green] (level {final.level.name}): "
                 "the chain recomputed the disputed value itself")
        tower.send(tasks.functions.settle(challenge_id), "settle")
        self.say(f"settled: the watchtower's bond is back, the cheater's {SOLVER_BOND // TOKEN} BOND bond is slashed "
                 "(half burned, half shared by every challenger whose game shows the claim wrong), the task reopens")

        # the honest solver claims; nobody disputes; the window passes
        c.rule("the honest claim")
        honest_trace = Trace(program)
        honest_root = honest_trace.run()
        honest.send(token.functions.approve(tasks.address, SOLVER_BOND), "approve bond")
        good_claim = honest.claim(task_id, honest_root)
        for receipt in results.publish(honest.court, honest_trace, good_claim, result_slots):
            honest.gas += receipt["gasUsed"]
        self.say(f"[green]honest solver[/green] claims 0x{honest_root.hex()[:16]}… and publishes the trained weights "
                 f"on-chain ({', '.join(program.state_names)}: the task's result); the watchtower agrees and stays quiet")
        chain.w3.testing.timeTravel(chain.w3.eth.get_block("latest")["timestamp"] + WINDOW + 1)
        chain.w3.testing.mine()
        honest.send(tasks.functions.finalize(good_claim), "finalize")
        share = tasks.functions.prize_share(challenge_id).call()
        tower.send(tasks.functions.collect(challenge_id), "collect")
        self.say(f"both windows over: the watchtower, the only challenger to show the cheat, collects {share / TOKEN:,.0f} BOND")
        # the poster reads the result back from the chain, each tensor checked against the claim
        fetched = results.fetch(poster.court, task_id, good_claim)
        weights = {program.graph.slots[slot].name: value for slot, value in fetched.arrays.items()}
        accuracy = _accuracy(weights)
        self.say(f"window over, claim {good_claim} finalized: reward and bond paid. The poster reads the trained "
                 f"weights back from the chain; the model scores [bold]{accuracy:.1%}[/bold] on the 360 held-out digits.")

        if self.market:
            from verifier.app.demo_market import run_round
            from verifier.market.content import ContentStore

            with tempfile.TemporaryDirectory(prefix="bisectml-demo-") as content:
                self.summary["market"] = run_round(
                    self, chain, deployment, accounts[4:10], ContentStore(Path(content)), honest, cheater, tower
                )

        table = Table(title="balances (BOND) and gas", show_lines=False)
        for col in ("account", "role", "before", "after", "change", "gas spent"):
            table.add_column(col, justify="right" if col not in ("account", "role") else "left")
        for a in self.actors.values():
            after = token.functions.balanceOf(a.address).call()
            table.add_row(a.name, a.role, _fmt(a.before), _fmt(after), _fmt(after - a.before, signed=True), f"{a.gas:,}")
            self.summary[a.name] = after - a.before
        burned = tasks.functions.burned().call()  # the court's burns; the market round shows its own
        held = token.functions.balanceOf(tasks.address).call()
        self.summary |= {"burned": burned, "escrow": held, "outcome": outcome, "accuracy": accuracy,
                         "gas": {a.name: a.gas for a in self.actors.values()}}
        table.add_row("(burned)", "half of every lost bond", "", "", _fmt(burned), "")
        table.add_row("task registry", "escrow", "", _fmt(held), "", "")
        c.print(table)
        if self.market:
            self.summary["loop"] = self._loop_act(chain, deployment, accounts)
        self.say(f"demo finished in {time.perf_counter() - started:.0f} s")
        return 0

    def _loop_act(self, chain: Chain, deployment: Any, accounts: list[str]) -> dict[str, Any]:
        """The closed loop: a vault trades the verified metamodel for three periods, and the
        models pass a share of their gains on to their data providers (SPEC 12)."""
        from verifier.app.demo_loop import Plan, equity_chart, run_loop

        self.console.rule("[bold]the closed loop[/bold]: a vault trades the verified metamodel on an exchange")
        who = [accounts[0], *accounts[4:8], *(self.actors[n].address for n in ("honest", "cheater", "watchtower")),
               *accounts[8:10]]  # fmt: skip
        run = run_loop(chain, deployment, who, Plan(periods=3, seed=7, cheat_period=1), say=self.say)
        table = Table(title="the loop, period by period (BOND)")
        for col in ("period", "skilled", "unskilled", "metamodel", "bought", "asset\nmoved", "skilled\npaid",
                    "unskilled\npaid", "informative\ndata paid", "noisy data\npaid", "share\nprice"):  # fmt: skip
            table.add_column(col, justify="right")
        for r in run.rows:
            table.add_row(str(r.period), f"{r.predictions[0]:+d}", f"{r.predictions[1]:+d}", f"{r.metamodel:+d}",
                          f"{r.spent / TOKEN:,.0f}", f"{r.true_return_bps / 100:+.2f}%", f"{r.payouts[0] / TOKEN:+,.1f}",
                          f"{r.payouts[1] / TOKEN:+,.1f}", *(f"{p / TOKEN:+,.1f}" for p in r.data_payouts),
                          f"{r.share_price:.4f}")  # fmt: skip
        self.console.print(table)
        for line in equity_chart([run.start_price] + [r.share_price for r in run.rows]):
            self.say(f"  [dim]share price[/dim] {line}")
        self.say(f"depositors {[f'{d / TOKEN:+,.0f}' for d in run.depositor_change]} BOND, skilled model "
                 f"{run.model_pnl[0] / TOKEN:+,.1f}, unskilled {run.model_pnl[1] / TOKEN:+,.1f}, informative data "
                 f"{run.data_pnl[0] / TOKEN:+,.1f}, noisy data {run.data_pnl[1] / TOKEN:+,.1f}, burned "
                 f"{run.burned / TOKEN:,.1f}; vault and loop hold exactly what they owe: {run.balanced}")  # fmt: skip
        self.say("  [dim]each period values the datasets against one outcome, so three periods are mostly noise; "
                 "over ten, the informative dataset leads in most seeds (bench/loop_report.json, SPEC 12.8)[/dim]")
        return {"periods": len(run.rows), "caught": sum(r.caught for r in run.rows), "model_pnl": run.model_pnl,
                "data_pnl": run.data_pnl, "rows": run.rows, "depositor_change": run.depositor_change,
                "balanced": run.balanced, "share_price": [run.start_price] + [r.share_price for r in run.rows]}  # fmt: skip


def _bundled(name: str) -> str:
    from importlib import resources

    return str(resources.files("onnx_models") / f"{name}.onnx")


def _accuracy(weights: dict[str, np.ndarray]) -> float:
    from onnx_models import build_eval_program, load_digits_split

    split = load_digits_split()
    correct = load_program(build_eval_program(weights, split=split)).run()["correct"]
    return int(correct) / split.n_test


def _fmt(wei: int, signed: bool = False) -> str:
    v = wei / TOKEN
    return f"{v:+,.0f}" if signed else f"{v:,.0f}"


def _describe(role: Role, move: Move, s: GameState, program: Program) -> str:
    """One line per move, in the game's own terms."""
    who = "[red]cheater   [/red]" if role == Role.SOLVER else "[cyan]watchtower[/cyan]"
    f = move.function
    if f == "reveal":
        what = {Level.STEP: "step roots", Level.NODE: f"node roots of step {s.step}", Level.TERM: "partial sums"}.get(s.level, "values")
        return f"{who} reveals {len(move.args[0])} {what}"
    if f == "pick":
        if s.level == Level.STEP:
            return f"{who} disputes steps [{s.lo}, {s.hi}]"
        if s.level == Level.NODE:
            return f"{who} narrows to step {s.step}, nodes [{s.lo}, {s.hi}]"
        if s.level == Level.OUTPUT:
            node = program.graph.nodes[s.node]
            return f"{who} narrows to step {s.step}, node {s.node} ({node.op.name})"
        if s.level in (Level.TERM, Level.PROVE_ELEMENT):
            return f"{who} narrows to partial sums [{s.lo}, {s.hi}] of {s.terms}"
        return f"{who} picks"
    if f == "reveal_output":
        return f"{who} shows node {s.node} changed only its output slot"
    if f == "reveal_data":
        return f"{who} reveals {len(move.args[0])} subtrees of the output tensor"
    if f == "pick_data":
        return f"{who} descends into subtree {s.index} (height {s.height})"
    if f == "reveal_chunk":
        return f"{who} reveals chunk {s.index} of the output (2 KiB)"
    if f == "pick_element":
        return f"{who} disputes element {s.elem_index}: the cheater says {s.elem_value}" + (
            f"; {s.terms}-term reduction" if s.terms else ""
        )
    if f == "prove_header":
        return f"{who} proves the output's header wrong: the referee re-derives it on-chain"
    if f.startswith("prove"):
        return f"{who} sends the one-step proof: the referee recomputes it on-chain"
    return f"{who} {f}"


def run(console: Console | None = None, steps: int | None = None) -> int:
    return Demo(console or Console(), steps).run()
