"""The solver daemon: takes tasks, posts claims with bonds, defends them, collects.

Every tick, re-derived from the chain:
1. each of our live claims: play our move in each of its games (or end a game on the
   challenger's clock), settle every game we won (its bond becomes our credit), finalize the
   claim once its window has closed and every challenge is settled; a settle or finalize that
   fails is simply tried again next tick, so no bond is ever forgotten;
2. each open task whose program we serve and whose terms we accept: compute the trace (a slice
   per tick, checkpointed and resumable), approve the bond and claim the final root.
"""

from __future__ import annotations

import time
from typing import Any

from web3.logs import DISCARD

from verifier.court.game import Outcome, Player, Role
from verifier.daemon.loop import Config, Daemon
from verifier.daemon.records import (
    CHALLENGE_OPEN,
    CLAIM_FINALIZED,
    CLAIM_LIVE,
    CLAIM_REJECTED,
    TASK_OPEN,
    View,
)
from verifier.daemon.traces import Traces

from .cheats import Cheat, parse_cheat


class GameDaemon(Daemon):
    """A daemon that plays games from its own traces: the solver and the watchtower."""

    def __init__(self, cfg: Config, stream: Any = None) -> None:
        super().__init__(cfg, stream)
        self.cheat: Cheat | None = parse_cheat(cfg.cheat)

    def setup(self) -> None:
        c = self.cheat
        self.traces = Traces(
            self.cfg.data_dir / "traces", self.log, c.transform if c else None, c.tag if c else ""
        )
        self.players: dict[int, Player] = {}


class Solver(GameDaemon):
    name = "solver"

    def setup(self) -> None:
        super().setup()
        self.watch("task", "claim")

    # -- discovery: events give the ids, views give the state -------------------------------------

    def discover(self) -> None:
        tasks = self.court.tasks
        posted, mine = self.scan((tasks.events.TaskPosted(), None), (tasks.events.ClaimPosted(), {"solver": self.me}))
        for log in posted:
            self.found("task", int(log["args"]["task_id"]))
        for log in mine:
            self.found("claim", int(log["args"]["claim_id"]))

    def tick(self) -> bool:
        self.traces.unfinished = False
        self.discover()
        v = View(self.court)
        for cid in sorted(self.open_items["claim"]):
            self.isolate("claim", cid, self.tend_claim, v, cid)
        budget = [self.cfg.trace_budget]
        for tid in sorted(self.open_items["task"], key=lambda i: v.task(i).deadline):
            self.isolate("task", tid, self.consider_task, v, tid, budget)
        return self.traces.unfinished

    # -- our claims --------------------------------------------------------------------------------

    def tend_claim(self, v: View, cid: int) -> None:
        c = v.claim(cid)
        if c.state == CLAIM_FINALIZED:
            t = v.task(c.task_id)
            self.log("claim_finalized", claim=cid, task=c.task_id, reward=t.reward, bond=t.solver_bond, credit=c.credit)
            self.close("claim", cid, "finalized")
            return
        if c.state == CLAIM_REJECTED:
            self.log.alert("claim_rejected", claim=cid, task=c.task_id, bond_lost=v.task(c.task_id).solver_bond)
            self.close("claim", cid, "rejected")
            self.give_up(c.task_id)
            return
        if c.state != CLAIM_LIVE:
            return
        t = v.task(c.task_id)
        program = self.registry.for_task(t)
        if program is None:
            self.log.once(f"lost:{cid}", "claim_program_missing", level="alert", claim=cid, task=c.task_id)
            return
        if self.traces.advance(program, 3600.0) is None:  # a defence needs the whole trace
            return
        trace = self.traces.get(program)
        for chid in v.challenges_of(cid):
            ch = v.challenge(chid)
            if ch.state == CHALLENGE_OPEN:
                self.isolate("game", ch.game_id, self.defend, v, cid, chid, ch.game_id, trace)
        if self.court.tasks.functions.finalizable(cid).call():
            self.sender.send(f"finalize:{cid}", self.court.tasks.functions.finalize(cid), claim=cid)

    def defend(self, v: View, cid: int, chid: int, gid: int, trace: Any) -> None:
        s = self.court.state(gid)
        if s.outcome == Outcome.PENDING:
            self.log.once(f"game:{gid}", "game_joined", game=gid, claim=cid, challenge=chid, challenger=s.challenger)
            if self.cheat is not None and self.cheat.silent:
                return
            player = self.players.setdefault(gid, Player(trace, self.court.oracle))
            self.play(v, gid, s, Role.SOLVER, player, honest=self.cheat is None)
            return  # its end is seen next tick
        if s.outcome == Outcome.SOLVER_WON:
            self.log.once(f"over:{gid}", "game_won", game=gid, challenge=chid, reason=self.game_over(gid)[1])
            self.settle(chid, "won")
        elif s.outcome == Outcome.CHALLENGER_WON:
            self.log.once(f"over:{gid}", "game_lost", level="alert", game=gid, challenge=chid, reason=self.game_over(gid)[1])

    def give_up(self, tid: int) -> None:
        """Our claim on the task was rejected: recomputing would say the same thing again."""
        self.log.once(f"norc:{tid}", "not_reclaiming", level="alert", task=tid, why="our earlier claim on this task was rejected")
        self.close("task", tid, "our claim was rejected")

    # -- new tasks ----------------------------------------------------------------------------------

    def consider_task(self, v: View, tid: int, budget: list[float]) -> None:
        t = v.task(tid)
        if t.state != TASK_OPEN:
            self.close("task", tid, "closed")
            return
        if v.now >= t.deadline:
            self.close("task", tid, "deadline passed")
            return
        program = self.registry.for_task(t)
        if program is None:
            self.log.once(f"ns:{tid}", "task_not_served", task=tid, program_id=bytes(t.program_id))
            self.close("task", tid, "program not served", persist=False)
            return
        if t.reward < self.cfg.min_reward:
            self.log.once(f"low:{tid}", "task_declined", task=tid, reward=t.reward, min_reward=self.cfg.min_reward)
            self.close("task", tid, "reward too low", persist=False)
            return
        if t.claim_id != 0:
            return  # a live claim (ours or another's); if it is rejected the task reopens
        prior = self.court.deployment.logs(self.court.tasks.events.ClaimPosted(), {"task_id": tid})
        if any(log["args"]["solver"] == self.me for log in prior):
            self.give_up(tid)
            return
        started = time.perf_counter()
        root = self.traces.advance(program, budget[0])
        budget[0] -= time.perf_counter() - started
        if root is None:
            return
        claimed = self.cheat.final_root(root) if self.cheat else root
        if not self.cfg.observe:
            if self.token_balance() < t.solver_bond:
                self.log.once(f"poor:{tid}", "cannot_afford_bond", level="alert", task=tid, bond=t.solver_bond)
                return
            if not self.ensure_allowance(t.solver_bond):
                return
        receipt = self.sender.send(
            f"claim:{tid}:{len(prior)}", self.court.tasks.functions.claim(tid, claimed), task=tid, final_root=claimed
        )
        if receipt is not None:
            for ev in self.court.tasks.events.ClaimPosted().process_receipt(receipt, errors=DISCARD):
                cid = int(ev["args"]["claim_id"])
                self.open_items["claim"].add(cid)
                self.log("claimed", task=tid, claim=cid, final_root=claimed, bond=t.solver_bond, deadline=ev["args"]["challenge_deadline"])


__all__ = ["Solver"]
