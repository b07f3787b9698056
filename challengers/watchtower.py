"""The challenger watchtower: re-executes every claim, disputes wrong ones, collects.

Every tick, re-derived from the chain:
1. each of our open challenges: play our move in its game (or end it on the solver's clock),
   then settle it: won (our bond back plus the solver's bond minus the burn) or void (another
   challenger already rejected the claim: our bond back). A settle that fails is tried again
   next tick, so no bond is ever forgotten;
2. each live claim on a task whose program we serve, nearest window first: re-execute the
   program (one trace per program, a slice per tick, checkpointed and resumable), compare our
   final root with the claim's, and challenge a wrong claim with a bond before its window
   closes.
"""

from __future__ import annotations

import time

from web3.logs import DISCARD

from solvers.daemon import GameDaemon
from verifier.court.game import Outcome, Player, Role
from verifier.daemon.records import (
    CHALLENGE_NAMES,
    CHALLENGE_OPEN,
    CLAIM_LIVE,
    CLAIM_REJECTED,
    GAME_MAX_ARITY,
    GAME_MAX_SLOTS,
    View,
)

# alert when a claim's window closes within this many seconds and it is still unverified
URGENT = 3_600


class Watchtower(GameDaemon):
    name = "challenger"

    def setup(self) -> None:
        super().setup()
        self.challenged: set[int] = set()  # claim ids we have challenged
        self.watch("claim", "challenge")

    # -- discovery -----------------------------------------------------------------------------------

    def discover(self) -> None:
        tasks = self.court.tasks
        claims, mine = self.scan((tasks.events.ClaimPosted(), None), (tasks.events.Challenged(), {"challenger": self.me}))
        for log in claims:
            self.found("claim", int(log["args"]["claim_id"]))
        for log in mine:
            self.challenged.add(int(log["args"]["claim_id"]))
            self.found("challenge", int(log["args"]["challenge_id"]))

    def tick(self) -> bool:
        self.traces.unfinished = False
        self.discover()
        v = View(self.court)
        for chid in sorted(self.open_items["challenge"]):
            self.isolate("challenge", chid, self.tend_challenge, v, chid)
        budget = [self.cfg.trace_budget]

        def deadline(cid: int) -> int:
            c = v.claim(cid)
            return c.time + v.task(c.task_id).window

        for cid in sorted(self.open_items["claim"], key=deadline):
            self.isolate("claim", cid, self.verify_claim, v, cid, budget)
        return self.traces.unfinished

    # -- our challenges ------------------------------------------------------------------------------

    def tend_challenge(self, v: View, chid: int) -> None:
        ch = v.challenge(chid)
        if ch.state != CHALLENGE_OPEN:
            self.log("challenge_settled", challenge=chid, claim=ch.claim_id, result=CHALLENGE_NAMES.get(ch.state))
            self.close("challenge", chid, CHALLENGE_NAMES.get(ch.state, "?"))
            return
        claim = v.claim(ch.claim_id)
        if claim.state == CLAIM_REJECTED:
            self.settle(chid, "void")  # another challenger rejected the claim: our bond back
            return
        gid = ch.game_id
        s = self.court.state(gid)
        if s.outcome == Outcome.PENDING:
            self.log.once(f"game:{gid}", "game_joined", game=gid, claim=ch.claim_id, challenge=chid, solver=s.solver)
            if self.cheat is not None and self.cheat.silent:
                return
            program = self.registry.for_task(v.task(claim.task_id))
            if program is None:
                self.log.once(f"lost:{chid}", "challenge_program_missing", level="alert", challenge=chid)
                return
            if self.traces.advance(program, 3600.0) is None:
                return
            player = self.players.setdefault(gid, Player(self.traces.get(program), self.court.oracle))
            self.play(v, gid, s, Role.CHALLENGER, player, honest=self.cheat is None)
            return  # its end is seen next tick
        if s.outcome == Outcome.CHALLENGER_WON:
            self.log.once(f"over:{gid}", "game_won", game=gid, challenge=chid, reason=self.game_over(gid)[1])
            self.settle(chid, "won")
        elif s.outcome == Outcome.SOLVER_WON:
            self.log.once(f"over:{gid}", "game_lost", level="alert", game=gid, challenge=chid, reason=self.game_over(gid)[1])

    # -- claims to verify --------------------------------------------------------------------------

    def verify_claim(self, v: View, cid: int, budget: list[float]) -> None:
        c = v.claim(cid)
        if c.state != CLAIM_LIVE:
            self.close("claim", cid, "not live")
            return
        if cid in self.challenged:
            self.close("claim", cid, "challenged")
            return
        t = v.task(c.task_id)
        deadline = c.time + t.window
        if v.now >= deadline:
            self.close("claim", cid, "window closed")
            return
        if c.solver == self.me:
            self.close("claim", cid, "our own claim")
            return
        program = self.registry.for_task(t)
        if program is None:
            self.log.once(f"ns:{cid}", "claim_not_served", claim=cid, task=c.task_id, program_id=bytes(t.program_id))
            self.close("claim", cid, "program not served", persist=False)
            return
        if t.reward < self.cfg.min_reward:
            self.close("claim", cid, "reward too low", persist=False)
            return
        if t.arity > GAME_MAX_ARITY or t.n_slots > GAME_MAX_SLOTS:
            self.log.alert("claim_unchallengeable", claim=cid, task=c.task_id, arity=t.arity, slots=t.n_slots)
            self.close("claim", cid, "beyond the game's limits")
            return
        started = time.perf_counter()
        root = self.traces.advance(program, budget[0])
        budget[0] -= time.perf_counter() - started
        if root is None:
            if deadline - v.now < URGENT:
                self.log.once(f"urgent:{cid}", "window_closing_unverified", level="alert", claim=cid, closes_in=deadline - v.now)
            return
        wrong = bytes(c.final_root) != root or (self.cheat is not None and self.cheat.lies_about_root)
        if not wrong:
            self.log("claim_ok", claim=cid, task=c.task_id, final_root=root)
            self.close("claim", cid, "correct")
            return
        self.log.once(
            f"wrong:{cid}", "wrong_claim", level="alert", claim=cid, task=c.task_id, solver=c.solver,
            claimed=bytes(c.final_root), ours=root, closes_in=deadline - v.now,
        )  # fmt: skip
        if not self.cfg.observe:
            if self.token_balance() < t.challenger_bond:
                self.log.once(f"poor:{cid}", "cannot_afford_bond", level="alert", claim=cid, bond=t.challenger_bond)
                return
            if not self.ensure_allowance(t.challenger_bond):
                return
        receipt = self.sender.send(f"challenge:{cid}", self.court.tasks.functions.challenge(cid), claim=cid)
        if receipt is not None:
            for ev in self.court.tasks.events.Challenged().process_receipt(receipt, errors=DISCARD):
                chid = int(ev["args"]["challenge_id"])
                self.open_items["challenge"].add(chid)
                self.challenged.add(cid)
                self.log("challenged", claim=cid, challenge=chid, game=int(ev["args"]["game_id"]), bond=t.challenger_bond)
            self.close("claim", cid, "challenged")


__all__ = ["Watchtower"]
