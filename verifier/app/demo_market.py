"""The market round of `bisectml demo`: two data providers (one of them noise), three modelers
(one of them worse than the metamodel), a sponsor with held-out labels, and the three programs
of the round (metamodel, contribution scores, data values) claimed, one of them by a cheater
who is caught, then recorded and settled on-chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table
from web3.logs import DISCARD

from solvers.cheats import WrongElement
from verifier.app.demo_loop import travel_to
from verifier.court.chain import Chain, Deployment
from verifier.court.game import Outcome, Role
from verifier.court.play import GamePlayer, play_out
from verifier.engine.trace import Trace
from verifier.market.client import (
    METAMODEL,
    SCORES,
    VALUES,
    MarketClient,
    RoundPrograms,
)
from verifier.market.content import ContentStore
from verifier.market.economics import MIN_CHALLENGER_BOND

TOKEN = 10**18
DAY = 86_400
DATA_STAKE = 100 * TOKEN
MODEL_STAKE = 200 * TOKEN
POOL = 300 * TOKEN  # every 200-BOND model fits: 4 slots at 30% need 240
TASK_REWARD = 5 * TOKEN
# the market's least challenger bond (SPEC 8.1: a lost challenge pays the solver's gas), and a
# solver bond above it
CHALLENGER_BOND = MIN_CHALLENGER_BOND
SOLVER_BOND = 2 * CHALLENGER_BOND
WINDOW = CLOCK = 2 * DAY  # the protocol's minimums (SPEC 7.2)


@dataclass
class Participant:
    name: str
    role: str
    client: MarketClient
    before: int = 0
    gas: int = 0
    ids: list[int] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.client.account


def run_round(demo: Any, chain: Chain, deployment: Deployment, accounts: list[str], store: ContentStore,
              honest: Any, cheater: Any, tower: Any) -> dict[str, Any]:  # fmt: skip
    """Play one round; `honest`, `cheater`, `tower` are the demo's solver actors (with courts)."""
    from onnx_models.market_data import demo_round

    say = demo.say
    demo.console.rule("[bold]a market round[/bold]: stake, predict, build the metamodel, score, pay")
    data = demo_round()
    shape = data.shape
    names = [
        ("clean data", "data provider (true labels)"),
        ("noise data", "data provider (random labels)"),
        ("modeler A", "model on the clean data"),
        ("modeler B", "weaker model, clean data"),
        ("modeler C", "model on the noise data"),
        ("sponsor", "wants predictions, pays the pool"),
    ]
    people = {
        n: Participant(n, role, MarketClient(chain.as_account(a), deployment, store))
        for (n, role), a in zip(names, accounts)
    }
    token = people["sponsor"].client.token
    minter = demo.actors["poster"].court
    for p in people.values():
        minter.chain.send(token.functions.mint(p.address, 1_000 * TOKEN), "mint")
        p.before = token.functions.balanceOf(p.address).call()
    # the court's actors post the round's bonds (the honest solver three at once); the mint is
    # not a gain, so it counts in their starting balance
    for actor in (honest, cheater, tower):
        minter.chain.send(token.functions.mint(actor.address, 3 * SOLVER_BOND), "mint")
        actor.before += 3 * SOLVER_BOND

    def gas(p: Participant, receipt_or_result: Any) -> None:
        """A receipt's gasUsed, or the "gas" a MarketClient result reports."""
        p.gas += int(receipt_or_result["gas"] if "gas" in receipt_or_result else receipt_or_result["gasUsed"])

    for (x, y), who in zip(data.datasets, ("clean data", "noise data")):
        r = people[who].client.publish_dataset(x, y, DATA_STAKE)
        gas(people[who], r)
        people[who].ids.append(r["dataset_id"])
        say(f"{who} publishes dataset {r['dataset_id']} ({x.shape[0]} rows, cid {r['cid'][:16]}…) and stakes "
            f"{DATA_STAKE // TOKEN} BOND")  # fmt: skip
    ds_ids = people["clean data"].ids + people["noise data"].ids
    modelers = ("modeler A", "modeler B", "modeler C")
    for who, uses in zip(modelers, data.model_datasets):
        r = people[who].client.register_model([ds_ids[i] for i in uses], MODEL_STAKE)
        gas(people[who], r)
        people[who].ids.append(r["model_id"])
    say(f"three modelers register models on datasets {[[ds_ids[i] for i in u] for u in data.model_datasets]} and stake "
        f"{MODEL_STAKE // TOKEN} BOND each")  # fmt: skip

    sponsor = people["sponsor"]
    now = chain.w3.eth.get_block("latest")["timestamp"]
    schedule = {"commit_deadline": now + DAY, "reveal_deadline": now + 2 * DAY, "labels_deadline": now + 3 * DAY,
                "result_deadline": now + 30 * DAY}  # fmt: skip
    economics = {"factor_bps": 10_000, "cap_bps": 2_500, "data_share_bps": 2_000, "data_slash_bps": 1_000, "bonus_bps": 500,
                 "min_stake": 10 * TOKEN}
    terms = {"reward": TASK_REWARD, "window": WINDOW, "clock": CLOCK, "solver_bond": SOLVER_BOND,
             "challenger_bond": CHALLENGER_BOND, "arity": 8, "duration": 7 * DAY}  # fmt: skip
    r = sponsor.client.open_round(shape, schedule, economics, terms, data.features, data.labels, POOL, 3 * TASK_REWARD)
    gas(sponsor, r)
    rid = r["round_id"]
    for who in ("clean data", "noise data"):
        for did in people[who].ids:
            gas(people[who], people[who].client.join_round(rid, did))
    say(f"sponsor opens round {rid}: {shape.rows} digits to classify, pool {POOL // TOKEN} BOND, labels committed "
        f"(hidden until the predictions are in); both data providers join it, putting their stakes at risk there")  # fmt: skip

    for who, preds in zip(modelers, data.predictions):
        gas(people[who], people[who].client.commit(rid, people[who].ids[0], preds))
    say("modelers commit their predictions (hashes only) before the deadline")
    travel_to(chain, schedule["commit_deadline"])
    for who in modelers:
        gas(people[who], people[who].client.reveal(rid, people[who].ids[0]))
    say("after the deadline they reveal; each reveal is checked against its commitment on-chain")
    travel_to(chain, schedule["reveal_deadline"])
    gas(sponsor, sponsor.client.reveal_labels(rid))
    say("the sponsor reveals the held-out labels; they match the commitment made when the round opened")

    # the round's three programs, posted as tasks by anyone (here the sponsor)
    task_ids = {}
    for kind in (METAMODEL, SCORES, VALUES):
        res = sponsor.client.post_task(rid, kind)
        gas(sponsor, res)
        task_ids[kind] = res["task_id"]
    say(f"the metamodel, contribution-score and data-value programs are posted as tasks {list(task_ids.values())}")

    # solvers rebuild each program from the chain and the content store, exactly as the daemons do
    rp = RoundPrograms(people["sponsor"].client)
    traces = {k: Trace(rp.program(rid, k)) for k in task_ids}
    roots = {k: tr.run() for k, tr in traces.items()}
    tasks = honest.court.tasks

    # a cheater claims the scores with one of them inflated; the watchtower catches it
    program = rp.program(rid, SCORES)
    bad = Trace(_cheat(program))
    bad_root = bad.run()
    cheater.send(honest.court.token.functions.approve(tasks.address, SOLVER_BOND), "approve bond")
    bad_claim = cheater.claim(task_ids[SCORES], bad_root)
    say("[red]cheater[/red] claims the scores task with modeler C's score raised by 2^20 bps")
    tower.send(honest.court.token.functions.approve(tasks.address, CHALLENGER_BOND), "approve bond")
    receipt = tower.send(tasks.functions.challenge(bad_claim), "challenge")
    challenge_id = tasks.events.Challenged().process_receipt(receipt, errors=DISCARD)[0]["args"]["challenge_id"]
    game_id = tasks.functions.challenges(challenge_id).call()[2]
    players = [
        GamePlayer.for_trace(cheater.court, game_id, Role.SOLVER, bad),
        GamePlayer.for_trace(tower.court, game_id, Role.CHALLENGER, traces[SCORES]),
    ]
    moves = [0]

    def count(p: GamePlayer, move: Any, receipt: Any, after: Any) -> None:
        moves[0] += 1
        (cheater if p.role == Role.SOLVER else tower).gas += receipt["gasUsed"]

    outcome = play_out(players, on_move=count)
    assert outcome == Outcome.CHALLENGER_WON, outcome
    tower.send(tasks.functions.settle(challenge_id), "settle")
    say(f"[cyan]watchtower[/cyan] disputes and wins game {game_id} in {moves[0]} moves; the cheater's bond is slashed")

    for kind, tid in task_ids.items():
        honest.send(honest.court.token.functions.approve(tasks.address, SOLVER_BOND), "approve bond")
        task_ids[kind] = (tid, honest.claim(tid, roots[kind]))
    say("the honest solver claims all three; nobody disputes")
    travel_to(chain, chain.w3.eth.get_block("latest")["timestamp"] + WINDOW + 1)
    for kind, (tid, cid) in task_ids.items():
        honest.send(tasks.functions.finalize(cid), "finalize")
    tower.send(tasks.functions.collect(challenge_id), "collect")
    for kind in task_ids:
        gas(sponsor, sponsor.client.record(rid, kind, rp))
    market = sponsor.client.market.functions
    recorded = [int(v) for v in market.scores(rid).call()]
    scores, contributions = recorded[: shape.models], recorded[shape.models :]
    values = [int(v) for v in market.values(rid).call()]
    say(f"results recorded from the finalized claims: own scores {scores[:3]} bps, contributions to the others' "
        f"metamodel {contributions[:3]} bps, data values {values[:2]}")  # fmt: skip
    result = sponsor.client.settle(rid)
    gas(sponsor, result)

    table = Table(title=f"round {rid}: payouts and slashes (BOND)")
    for col in ("who", "role", "score / value", "change", "gas"):
        table.add_column(col, justify="left" if col in ("who", "role") else "right")
    summary: dict[str, Any] = {"round_id": rid, "scores": scores[:3], "contributions": contributions[:3],
                               "values": values[:2], "outcome": outcome}  # fmt: skip
    for who, p in people.items():
        after = token.functions.balanceOf(p.address).call()
        stake = _stake(p, sponsor.client)
        change = after + stake - p.before
        metric = ""
        if who in modelers:
            i = modelers.index(who)
            metric = f"{scores[i]:+d} bps, adds {contributions[i]:+d}"
        elif who in ("clean data", "noise data"):
            metric = f"{values[('clean data', 'noise data').index(who)]:+,d}"
        table.add_row(who, p.role, metric, f"{change / TOKEN:+,.2f}", f"{p.gas:,}")
        summary[who] = change
    burned = int(market.burned().call())  # the round's burns (the cheater's burned bond is the court's)
    summary["burned"] = burned
    summary["market_balance"] = token.functions.balanceOf(sponsor.client.market.address).call()
    summary["market_owed"] = int(market.owed().call())
    table.add_row("(burned)", "slashed stake", "", f"{burned / TOKEN:,.2f}", "")
    demo.console.print(table)
    return summary


def _stake(p: Participant, client: MarketClient) -> int:
    """What the participant still has staked (counted in its change: stake is still its money)."""
    if p.name in ("clean data", "noise data"):
        return sum(int(client._dataset_state(i)["stake"]) for i in p.ids)
    if p.name.startswith("modeler"):
        return sum(int(client.model(i)["stake"]) for i in p.ids)
    return 0


def _cheat(program: Any) -> Any:
    import copy

    p = copy.copy(program)
    p.__class__ = WrongElement
    p.target = (0, program.n_nodes - 1)
    p.element = 2
    p.delta = 1 << 20  # the narration says: raised by 2^20 bps
    return p


__all__ = ["run_round"]
