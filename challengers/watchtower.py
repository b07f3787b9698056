"""The challenger watchtower: re-executes every revealed claim, disputes wrong ones, collects.

Every tick, re-derived from the chain:
1. each of our challenges: play our move in its game to the end (or end it on the solver's
   clock), whatever the claim's state (another challenger may have rejected it first: every
   game still settles by its own outcome), then settle it: won, our bond comes back at once.
   Once the claim's window has closed and all its challenges are settled, `collect` our equal
   share of the prize (the solver's bond minus the burn); a settled challenge of another that
   holds up the collection is settled (or its game ended on a clock) by us, since anyone may.
   A challenge is closed once collected, or lost. A settle or collect that fails is tried again
   next tick, so no bond is ever forgotten;
2. each revealed claim (found by `ClaimRevealed`) on a task whose program we serve, nearest
   window first: re-execute the program (one trace per program, a slice per tick, checkpointed
   and resumable), compare our final root with the claim's, and challenge a wrong claim with a
   bond before its window closes, whether it is live or already rejected (a rejected claim's
   prize is shared by every winning challenge of its window);
3. as a public service, expire committed claims never revealed by their reveal deadline, and
   claims whose result is still withheld when their window has closed (the
   solver's bond is burned and the task reopens);
4. verification fees (docs/SPEC.md 7.10): a claim found right, on a task with a fee, is attested
   at once (a commitment to our final slot table root, salt derived from the key); once its
   window has closed the attestation is revealed, and once the reveal period is over and the
   claim finalized (by us if nobody has) our share of the fee is collected. Found again from
   `Attested` events after a restart, so no fee is forgotten.
"""

from __future__ import annotations

import time

from web3.logs import DISCARD

from solvers.daemon import GameDaemon
from verifier.commit.commitments import state_root
from verifier.court.attest import (
    ATTEST_COLLECTED,
    ATTEST_COMMITTED,
    ATTEST_NONE,
    ATTEST_REVEALED,
    Attester,
    final_slots_root,
)
from verifier.court.game import GameState, Outcome, Player, Role
from verifier.court.play import whose_move
from verifier.court.states import (
    CHALLENGE_COLLECTED,
    CHALLENGE_LOST,
    CHALLENGE_OPEN,
    CHALLENGE_STATES,
    CHALLENGE_WON,
    CLAIM_COMMITTED,
    CLAIM_FINALIZED,
    CLAIM_LIVE,
    CLAIM_REJECTED,
)
from verifier.daemon.records import (
    GAME_MAX_ARITY,
    GAME_MAX_SLOTS,
    ClaimRec,
    DaemonError,
    View,
)
from verifier.engine.program import Program

# alert when a claim's window closes within this many seconds and it is still unverified
URGENT = 3_600


class Watchtower(GameDaemon):
    name = "challenger"

    def setup(self) -> None:
        super().setup()
        self.challenged: set[int] = set()  # claim ids we have challenged
        self.watch("claim", "challenge", "commit", "attest")
        # verification fees, where the deployment has them (an older one does not)
        self.attester = Attester.available(self.chain, self.court.deployment)

    # -- discovery -----------------------------------------------------------------------------------

    def discover(self) -> None:
        tasks = self.court.tasks
        queries = [
            (tasks.events.ClaimRevealed(), None),
            (tasks.events.Challenged(), {"challenger": self.me}),
            (tasks.events.ClaimCommitted(), None),
        ]
        if self.attester is not None:
            queries.append((self.attester.contract.events.Attested(), {"verifier": self.me}))
        revealed, mine, committed, *attested = self.scan(*queries)
        for log in attested[0] if attested else []:
            self.found("attest", int(log["args"]["claim_id"]))
        for log in revealed:
            self.found("claim", int(log["args"]["claim_id"]))
        for log in mine:
            self.challenged.add(int(log["args"]["claim_id"]))
            self.found("challenge", int(log["args"]["challenge_id"]))
        for log in committed:
            self.found("commit", int(log["args"]["claim_id"]))

    def tick(self) -> bool:
        self.traces.unfinished = False
        self.discover()
        v = View(self.court)
        claims = self.open_items["claim"] | self.open_items["commit"] | self.open_items["attest"]
        v.prefetch(claims=claims, challenges=self.open_items["challenge"])
        for chid in sorted(self.open_items["challenge"]):
            self.isolate("challenge", chid, self.tend_challenge, v, chid)
        budget = [self.cfg.trace_budget]

        def deadline(cid: int) -> int:
            c = v.claim(cid)
            return c.time + v.task(c.task_id).window

        for cid in sorted(self.open_items["claim"], key=deadline):
            self.isolate("claim", cid, self.verify_claim, v, cid, budget)
        for cid in sorted(self.open_items["commit"]):
            self.isolate("commit", cid, self.expire_if_due, v, cid)
        for cid in sorted(self.open_items["attest"]):
            self.isolate("attest", cid, self.tend_attestation, v, cid, budget)
        return self.traces.unfinished

    # -- our challenges ------------------------------------------------------------------------------

    def tend_challenge(self, v: View, chid: int) -> None:
        ch = v.challenge(chid)
        if ch.state != CHALLENGE_OPEN:
            self.log.once(f"settled:{chid}", "challenge_settled", challenge=chid, claim=ch.claim_id,
                          result=CHALLENGE_STATES.get(ch.state))  # fmt: skip
        if ch.state == CHALLENGE_LOST:
            self.close("challenge", chid, "lost")
            return
        if ch.state == CHALLENGE_COLLECTED:
            self.log("prize_collected", challenge=chid, claim=ch.claim_id)
            self.close("challenge", chid, "collected")
            return
        if ch.state == CHALLENGE_WON:
            self.collect(v, chid)
            return
        if ch.state != CHALLENGE_OPEN:
            return
        claim = v.claim(ch.claim_id)
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
            self.settle(chid, "won")  # our bond back at once; the prize share is collected later
        elif s.outcome == Outcome.SOLVER_WON:
            self.log.once(f"over:{gid}", "game_lost", level="alert", game=gid, challenge=chid, reason=self.game_over(gid)[1])

    def collect(self, v: View, chid: int) -> None:
        """Our won challenge's share of the prize, once the claim is closed (window over, every
        challenge settled); settles (or times out) the other challenges that hold it up."""
        ch = v.challenge(chid)
        c = v.claim(ch.claim_id)
        closes = c.time + v.task(c.task_id).window
        if v.now < closes:
            return
        tasks = self.court.tasks.functions
        if c.unsettled:
            for other in v.challenges_of(ch.claim_id):
                if other != chid and v.challenge(other).state == CHALLENGE_OPEN:
                    self.isolate("challenge", other, self.unblock, v, other)
            return
        if tasks.collectable(chid).call():
            receipt = self.sender.send(f"collect:{chid}", tasks.collect(chid), challenge=chid, claim=ch.claim_id)
            if receipt is not None:
                for ev in self.court.tasks.events.PrizeCollected().process_receipt(receipt, errors=DISCARD):
                    a = ev["args"]
                    self.log("prize_collected", challenge=chid, claim=ch.claim_id, share=int(a["share"]),
                             dust_burned=int(a["dust_burned"]), winners=c.winners)  # fmt: skip
                self.close("challenge", chid, "collected")

    def unblock(self, v: View, chid: int) -> None:
        """Another's challenge keeps our prize share locked: settle it if its game is over, or
        end its game if a clock has run out (both permissionless, and they pay whom they owe)."""
        ch = v.challenge(chid)
        if self.court.tasks.functions.settleable(chid).call():
            self.settle(chid, "unblock")
            return
        s: GameState = self.court.state(ch.game_id)
        if s.outcome != Outcome.PENDING:
            return
        clock = s.clock_solver if s.turn == Role.SOLVER else s.clock_challenger
        if v.now - s.turn_start > clock:
            self.log.once(f"unblock:{chid}", "timeout_other", challenge=chid, game=ch.game_id, mover=whose_move(s))
            self.sender.send(f"game:{ch.game_id}:timeout", self.court.game.functions.timeout(ch.game_id), game=ch.game_id)

    # -- claims to verify --------------------------------------------------------------------------

    def verify_claim(self, v: View, cid: int, budget: list[float]) -> None:
        c = v.claim(cid)
        if c.state == CLAIM_COMMITTED:
            return  # not revealed yet (a reorg): seen again once it is
        if c.state not in (CLAIM_LIVE, CLAIM_REJECTED):
            self.close("claim", cid, "closed")
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
            self.log.once(f"ok:{cid}", "claim_ok", claim=cid, task=c.task_id, final_root=root)
            if self.attest(v, cid, program):
                self.close("claim", cid, "correct")
            return
        self.log.once(
            f"wrong:{cid}", "wrong_claim", level="alert", claim=cid, task=c.task_id, solver=c.solver,
            claimed=bytes(c.final_root), ours=root, closes_in=deadline - v.now, rejected=c.state == CLAIM_REJECTED,
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
                self.found("challenge", chid)
                self.challenged.add(cid)
                self.log("challenged", claim=cid, challenge=chid, game=int(ev["args"]["game_id"]), bond=t.challenger_bond)
            self.close("claim", cid, "challenged")

    # -- verification fees (SPEC 7.10) ------------------------------------------------------------

    def attest(self, v: View, cid: int, program: Program) -> bool:
        """Commit to our final slot table root of a claim we found right, if its task pays a fee.
        False while the task has no fee: the claim stays watched until its window closes, so a
        fee funded later is earned too. A failure raises and the next tick tries again (the key
        is sent once)."""
        if self.attester is None or self.cheat is not None:
            return True
        c = v.claim(cid)
        if c.state != CLAIM_LIVE or c.challenges:
            return True  # a challenged claim takes no attestations (SPEC 7.10)
        fee = self.attester.fee(c.task_id)
        if fee == 0:
            return False
        slots = final_slots_root(self.traces.get(program))
        receipt = self.sender.send(f"attest:{cid}", self.attester.attest_fn(cid, slots), claim=cid)
        if receipt is not None:
            self.found("attest", cid)
            self.log("attested", claim=cid, task=c.task_id, fee=fee)
        return True

    def tend_attestation(self, v: View, cid: int, budget: list[float]) -> None:
        """Our attestation of `cid`: reveal it once the window has closed, collect the share once
        the reveal period is over and the claim is finalized (finalizing it if nobody has)."""
        att = self.attester
        assert att is not None
        state = att.state(cid)
        c = v.claim(cid)
        if state == ATTEST_NONE:
            return  # not mined yet (a reorg): seen again once it is
        if state == ATTEST_COLLECTED:
            self.close("attest", cid, "collected")
            return
        if c.state == CLAIM_REJECTED:
            self.log("attestation_unpaid", claim=cid, why="claim rejected")
            self.close("attest", cid, "claim rejected")
            return
        opens, closes = att.reveal_period(cid)
        if v.now < opens:
            return
        if state == ATTEST_COMMITTED:
            if v.now >= closes:
                self.log.alert("attestation_not_revealed", claim=cid, reveal_closed=closes)
                self.close("attest", cid, "reveal period missed")
                return
            slots = self._slots_root(v, c, budget)
            if slots is None:
                return
            self.sender.send(f"attest-reveal:{cid}", att.reveal_fn(cid, slots), claim=cid)
            return
        if state != ATTEST_REVEALED or v.now < closes:
            return
        tasks = self.court.tasks.functions
        if c.state == CLAIM_LIVE and tasks.finalizable(cid).call():
            self.sender.send(f"finalize:{cid}", tasks.finalize(cid), claim=cid, why="attested")
            return
        if c.state != CLAIM_FINALIZED:
            return  # a game of the claim is still running
        receipt = self.sender.send(f"attest-collect:{cid}", att.collect_fn(cid), claim=cid)
        if receipt is not None:
            for ev in att.contract.events.FeeCollected().process_receipt(receipt, errors=DISCARD):
                a = ev["args"]
                self.log("fee_collected", claim=cid, task=c.task_id, share=int(a["share"]), dust_burned=int(a["dust_burned"]))
            self.close("attest", cid, "collected")

    def _slots_root(self, v: View, c: ClaimRec, budget: list[float]) -> bytes | None:
        """Our final slot table root of the claim's program (recomputed after a restart)."""
        t = v.task(c.task_id)
        program = self.registry.for_task(t)
        if program is None:
            return None
        started = time.perf_counter()
        root = self.traces.advance(program, budget[0])
        budget[0] -= time.perf_counter() - started
        if root is None:
            return None
        slots = final_slots_root(self.traces.get(program))
        if state_root(t.steps, 0, slots) != bytes(c.final_root):
            raise DaemonError(f"our final state no longer matches claim {c.final_root.hex()}; the trace directory is corrupt, delete it.")
        return slots

    # -- a public service ------------------------------------------------------------------------------

    def expire_if_due(self, v: View, cid: int) -> None:
        """A claim that forfeits its bond: committed and never revealed by its deadline, or
        standing with its result withheld once its window has closed and its games are settled
        (SPEC 7.11). Expire it (its bond burns, the task reopens). Anyone may; nobody is paid."""
        c = v.claim(cid)
        t = v.task(c.task_id)
        withheld = c.state == CLAIM_LIVE and v.result_slots(c.task_id) & ~v.published(cid)
        if c.state != CLAIM_COMMITTED and not withheld:
            self.close("commit", cid, "revealed or expired")
            return
        if v.now < c.time + (t.clock if c.state == CLAIM_COMMITTED else t.window) or c.unsettled:
            return
        receipt = self.sender.send(f"expire:{cid}", self.court.tasks.functions.expire_claim(cid), claim=cid)
        if receipt is not None:
            self.log("claim_expired", claim=cid, task=c.task_id, solver=c.solver)
            self.close("commit", cid, "expired by us")


__all__ = ["Watchtower"]
