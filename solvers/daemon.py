"""The solver daemon: takes tasks, commits and reveals claims with bonds, defends them, collects.

Every tick, re-derived from the chain:
1. each of our claims (found by `ClaimCommitted(solver=me)`):
   - committed: reveal the committed root (recomputed from the trace, salt derived from the
     signing key, so a restart between commit and reveal reveals all the same), alerting when
     the reveal deadline is near or past;
   - live: publish the result slots its task asks for (each tensor's bytes on Availability.vy,
     its proof on Tasks.vy; SPEC 7.11), play our move in each of its games (or end a game on
     the challenger's clock), settle
     every game we won (the challenger's bond minus the burn is paid at once), finalize the
     claim once it is finalizable;
   - rejected: keep defending its games to their end (each game won still slashes that
     challenger and pays us) and settle them; close it once its window has closed and nothing
     is left unsettled;
   - expired or finalized: log (an expiry is an alert) and close;
   a settle, reveal or finalize that fails is simply tried again next tick, so no bond is ever
   forgotten;
2. each open task whose program we serve, whose terms we accept and whose result we can
   publish: compute the trace (a slice
   per tick, checkpointed and resumable), approve the bond, commit to the final root, reveal.
"""

from __future__ import annotations

import time
from typing import Any

from web3.logs import DISCARD

from verifier.court.game import Outcome, Player, Role
from verifier.court.states import (
    CHALLENGE_OPEN,
    CLAIM_COMMITTED,
    CLAIM_EXPIRED,
    CLAIM_FINALIZED,
    CLAIM_LIVE,
    CLAIM_REJECTED,
    TASK_OPEN,
    claim_commitment,
)
from verifier.daemon.loop import Config, Daemon
from verifier.daemon.records import View
from verifier.daemon.traces import Traces
from verifier.market import availability as av
from verifier.market import mirrors, results
from verifier.market.content import ContentError, cid_of_digest

from .cheats import Cheat, parse_cheat

# alert when a committed claim is still unrevealed this many seconds before its reveal deadline
REVEAL_URGENT = 6 * 3_600
# the failpoint hit right after a commit is confirmed, before its reveal is sent (tests only)
COMMITTED = "committed"


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
    bond_needed = "claim"

    def setup(self) -> None:
        super().setup()
        self.watch("task", "claim")
        # mirrors our IPFS node failed to take: not tried again in this process, so a node that
        # times out delays the result's publication on the chain once, not every tick
        self.unmirrored: set[str] = set()

    # -- discovery: events give the ids, views give the state -------------------------------------

    def discover(self) -> None:
        tasks = self.court.tasks
        posted, mine = self.scan((tasks.events.TaskPosted(), None), (tasks.events.ClaimCommitted(), {"solver": self.me}))
        for log in posted:
            self.found("task", int(log["args"]["task_id"]))
        for log in mine:
            self.found("claim", int(log["args"]["claim_id"]))

    def tick(self) -> bool:
        self.traces.unfinished = False
        self.discover()
        v = View(self.court)
        v.prefetch(tasks=self.open_items["task"], claims=self.open_items["claim"])
        for cid in sorted(self.open_items["claim"]):
            self.isolate("claim", cid, self.tend_claim, v, cid)
        budget = [self.cfg.trace_budget]
        for tid in sorted(self.open_items["task"], key=lambda i: v.task(i).deadline):
            self.isolate("task", tid, self.consider_task, v, tid, budget)
        return self.traces.unfinished

    # -- our claims --------------------------------------------------------------------------------

    def claimed_root(self, root: bytes) -> bytes:
        """The root we claim for a trace ending in `root` (a cheat's lie is deterministic too)."""
        return self.cheat.final_root(root) if self.cheat else root

    def tend_claim(self, v: View, cid: int) -> None:
        c = v.claim(cid)
        t = v.task(c.task_id)
        if c.state == CLAIM_FINALIZED:
            self.log("claim_finalized", claim=cid, task=c.task_id, reward=t.reward, bond=t.solver_bond)
            self.close("claim", cid, "finalized")
            return
        if c.state == CLAIM_EXPIRED:
            self.log.alert("claim_expired", claim=cid, task=c.task_id, bond_lost=t.solver_bond)
            self.close("claim", cid, "expired")
            return
        if c.state == CLAIM_COMMITTED:
            self.reveal(v, cid)
            return
        if c.state == CLAIM_REJECTED:
            self.log.once(f"rej:{cid}", "claim_rejected", level="alert", claim=cid, task=c.task_id, bond_lost=t.solver_bond)
            self.give_up(c.task_id)
            if v.now >= c.time + t.window and c.unsettled == 0:
                self.log("claim_closed", claim=cid, task=c.task_id, challenges=c.challenges, winners=c.winners)
                self.close("claim", cid, "rejected")
                return
        elif c.state != CLAIM_LIVE:
            return
        if c.state == CLAIM_LIVE:
            self.publish_result(v, cid)
        unsettled = [chid for chid in v.challenges_of(cid) if v.challenge(chid).state == CHALLENGE_OPEN]
        if not unsettled:
            if c.state == CLAIM_LIVE and self.court.tasks.functions.finalizable(cid).call():
                self.sender.send(f"finalize:{cid}", self.court.tasks.functions.finalize(cid), claim=cid)
            return
        program = self.registry.for_task(t)
        if program is None:
            self.log.once(f"lost:{cid}", "claim_program_missing", level="alert", claim=cid, task=c.task_id)
            return
        if self.traces.advance(program, 3600.0) is None:  # a defence needs the whole trace
            return
        trace = self.traces.get(program)
        for chid in unsettled:  # every game to its end, whether the claim is live or rejected
            gid = v.challenge(chid).game_id
            self.isolate("game", gid, self.defend, v, cid, chid, gid, trace)

    def reveal(self, v: View, cid: int) -> None:
        """Reveal our committed claim: the same root, recomputed from the trace, and the salt
        derived from the signing key, so a crash between commit and reveal loses nothing."""
        c = v.claim(cid)
        t = v.task(c.task_id)
        deadline = c.time + t.clock
        if v.now >= deadline:
            self.log.once(f"rdl:{cid}", "reveal_deadline_passed", level="alert", claim=cid, task=c.task_id,
                          deadline=deadline, bond_at_risk=t.solver_bond)  # fmt: skip
            return
        if deadline - v.now < REVEAL_URGENT:
            self.log.once(f"rdn:{cid}", "reveal_deadline_near", level="alert", claim=cid, task=c.task_id,
                          closes_in=deadline - v.now)  # fmt: skip
        program = self.registry.for_task(t)
        if program is None:
            self.log.once(f"lost:{cid}", "claim_program_missing", level="alert", claim=cid, task=c.task_id)
            return
        root = self.traces.advance(program, 3600.0)  # urgent: the bond is at stake
        if root is None:
            return
        claimed = self.claimed_root(root)
        salt = self.court.claim_salt(c.task_id, claimed)
        if claim_commitment(c.task_id, claimed, self.me, salt) != bytes(c.commitment):
            self.log.once(f"cm:{cid}", "commitment_mismatch", level="alert", claim=cid, task=c.task_id,
                          final_root=claimed, commitment=bytes(c.commitment), deadline=deadline)  # fmt: skip
            return
        fn = self.court.tasks.functions.reveal_claim(cid, claimed, salt)
        receipt = self.sender.send(f"reveal:{cid}", fn, claim=cid, task=c.task_id, final_root=claimed)
        if receipt is not None:
            for ev in self.court.tasks.events.ClaimRevealed().process_receipt(receipt, errors=DISCARD):
                self.log("revealed", task=c.task_id, claim=cid, final_root=claimed,
                         challenge_deadline=int(ev["args"]["challenge_deadline"]))  # fmt: skip

    def publish_result(self, v: View, cid: int) -> None:
        """Make our live claim's result available (SPEC 7.11): each result slot's bytes on
        Availability.vy, then its proof on Tasks.vy. Until every slot is recorded the claim
        cannot be finalized, and once its window has closed it can be expired, its bond burned."""
        c = v.claim(cid)
        missing = v.result_slots(c.task_id) & ~v.published(cid)
        if not missing or (self.cheat is not None and self.cheat.withholds):
            return
        program = self.registry.for_task(v.task(c.task_id))
        if program is None:
            self.log.once(f"lost:{cid}", "claim_program_missing", level="alert", claim=cid, task=c.task_id)
            return
        if self.traces.advance(program, 3600.0) is None:  # urgent: the bond is at stake
            return
        court = self.court
        try:
            pending = results.openings(self.traces.get(program), missing)
        except results.ResultError as e:  # never claimed: consider_task declines such a task
            self.log.once(f"nores:{cid}", "result_unpublishable", level="alert", claim=cid, why=str(e))
            return
        for slot, value, opening in pending:
            self.mirror(cid, slot, value, opening.commitment)
            if not court.availability.functions.available(opening.commitment).call():
                for key, call in av.publications(court.chain.w3, court.availability, value):
                    # each call is one not yet on the chain: until it is confirmed, neither the next
                    # (the assembly needs every part) nor the proof can pass
                    if self.sender.send(f"avail:{cid}:{slot}:{key}", call, claim=cid, slot=slot, bytes=int(value.nbytes)) is None:
                        return
            receipt = self.sender.send(f"result:{cid}:{slot}", results.record_call(court.tasks, cid, opening), claim=cid, slot=slot)
            if receipt is not None:
                self.log("result_published", claim=cid, task=c.task_id, slot=slot, commitment=opening.commitment)

    def mirror(self, cid: int, slot: int, value: Any, commitment: bytes) -> None:
        """With an IPFS node (--ipfs-api), put a result tensor there and announce it on
        Availability.vy, so readers fetch it from IPFS (SPEC 8.10). Best effort: the claim
        needs only the chain's copy, so a failing node is reported once and skipped."""
        key = f"mirror:{cid}:{slot}"
        if not mirrors.publishes(self.content) or key in self.unmirrored or self.sender.done(key):
            return
        try:
            manifest = mirrors.put(self.content, value)
        except ContentError as e:
            self.unmirrored.add(key)
            self.log("result_not_mirrored", level="warn", claim=cid, slot=slot, why=str(e))
            return
        call = mirrors.announce_call(self.court.availability, commitment, manifest)
        if self.sender.send(key, call, claim=cid, slot=slot, manifest=manifest) is not None:
            self.log("result_mirrored", claim=cid, slot=slot, cid=cid_of_digest(manifest))

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
            self.settle(chid, "won")  # the challenger's bond is slashed: our share is paid at once
        elif s.outcome == Outcome.CHALLENGER_WON:
            self.log.once(f"over:{gid}", "game_lost", level="alert", game=gid, challenge=chid, reason=self.game_over(gid)[1])

    def give_up(self, tid: int) -> None:
        """Our claim on the task was rejected (or expired): recomputing would say the same again."""
        self.log.once(f"norc:{tid}", "not_reclaiming", level="alert", task=tid, why="our earlier claim on this task failed")
        self.close("task", tid, "our claim failed")

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
        if t.challenger_bond < self.cfg.min_challenger_bond:
            self.log.once(f"cb:{tid}", "task_declined", task=tid, challenger_bond=t.challenger_bond,
                          min_challenger_bond=self.cfg.min_challenger_bond)  # fmt: skip
            self.close("task", tid, "challenger bond too low", persist=False)
            return
        if t.claim_id != 0:
            return  # a committed or live claim (ours or another's); if it fails the task reopens
        prior = self.court.deployment.logs(self.court.tasks.events.ClaimCommitted(), {"task_id": tid})
        for log in prior:
            if log["args"]["solver"] == self.me:
                ours = int(log["args"]["claim_id"])
                if ours in self.open_items["claim"]:
                    return  # ours and not closed (committed, live, or rejected with games to play)
                if v.claim(ours).state in (CLAIM_REJECTED, CLAIM_EXPIRED):
                    self.give_up(tid)
                    return
        started = time.perf_counter()
        root = self.traces.advance(program, budget[0])
        budget[0] -= time.perf_counter() - started
        if root is None:
            return
        claimed = self.claimed_root(root)
        mask = v.result_slots(tid)
        if mask:
            why = results.unpublishable(self.traces.get(program).values_at(program.steps, 0), mask)
            if why is not None:  # the claim could never be finalized: its bond would burn
                self.log.once(f"unres:{tid}", "task_declined", task=tid, why=why)
                self.close("task", tid, "result cannot be published", persist=False)
                return
        if not self.cfg.observe:
            if self.token_balance() < t.solver_bond:
                self.log.once(f"poor:{tid}", "cannot_afford_bond", level="alert", task=tid, bond=t.solver_bond)
                return
            if not self.ensure_allowance(t.solver_bond):
                return
        # the commitment hides the root until the slot is ours; the salt is derived again at reveal
        commitment = claim_commitment(tid, claimed, self.me, self.court.claim_salt(tid, claimed))
        fn = self.court.tasks.functions.commit_claim(tid, commitment)
        receipt = self.sender.send(f"commit:{tid}:{len(prior)}", fn, task=tid, commitment=commitment)
        if receipt is None:
            return
        for ev in self.court.tasks.events.ClaimCommitted().process_receipt(receipt, errors=DISCARD):
            cid = int(ev["args"]["claim_id"])
            self.found("claim", cid)
            self.log("committed", task=tid, claim=cid, final_root=claimed, bond=t.solver_bond,
                     reveal_deadline=int(ev["args"]["reveal_deadline"]))  # fmt: skip
            self.sender.failpoints.hit(COMMITTED)
            self.isolate("claim", cid, self.reveal, View(self.court), cid)  # reveal at once


__all__ = ["Solver"]
