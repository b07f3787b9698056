"""Games, disputes and settlement for the command line: a game's state and position in
words, opening a dispute (recompute, compare, challenge), playing a game to its end from one
side, and settling a challenge or finalizing a claim. Like commands.py, every function takes a
Session, re-derives state from the chain, and returns plain data; nothing here prints."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier.app.commands import (
    approve,
    challenge_ids,
    challenge_of_game,
    challenge_record,
    claim_record,
    describe,
    game_reason,
    game_state,
    game_view,
    require_funds,
    role_of,
    task_record,
)
from verifier.app.session import Session, event_logs, hex32
from verifier.app.units import CommandError, format_duration, format_time
from verifier.core.failpoints import failpoint
from verifier.core.paths import home
from verifier.court.chain import ChainError
from verifier.court.game import GameState, Level, Outcome, Role
from verifier.court.play import Court, GamePlayer, whose_move
from verifier.court.states import (
    CHALLENGE_COLLECTED,
    CHALLENGE_LOST,
    CHALLENGE_OPEN,
    CHALLENGE_STATES,
    CHALLENGE_WON,
    CLAIM_COMMITTED,
    CLAIM_LIVE,
    CLAIM_REJECTED,
    CLAIM_STATES,
)
from verifier.engine.program import Program, load_program
from verifier.engine.trace import Trace

# the function each side calls at each level (used to narrate the other side's moves)
_SOLVER_FN = {
    Level.STEP: "reveal", Level.NODE: "reveal", Level.TERM: "reveal", Level.OUTPUT: "reveal_output",
    Level.DATA: "reveal_data", Level.CHUNK_REVEAL: "reveal_chunk",
}  # fmt: skip
_CHALLENGER_FN = {
    Level.STEP: "pick", Level.NODE: "pick", Level.TERM: "pick", Level.DATA: "pick_data",
    Level.ELEMENT: "pick_element", Level.PROVE_ELEMENT: "prove_element",
    Level.PROVE_BOUNDARY: "prove_boundary",
}  # fmt: skip

TraceProgress = Callable[[int, int], None]


# -- disputes ---------------------------------------------------------------------------------


def _program_for_task(program_path: Path, task: dict[str, Any], task_id: int) -> Program:
    program = load_program(program_path, steps=task["steps"])
    if program.id != bytes(task["program_id"]):
        raise CommandError(
            f"{program_path} is not task {task_id}'s program: with {task['steps']} steps its id is {hex32(program.id)}, "
            f"the task's is {hex32(task['program_id'])}; pass the program file the task was posted with."
        )
    return program


def _trace_dir(program: Program, directory: Path | None) -> Path:
    return directory if directory is not None else home() / "traces" / program.id.hex()


def open_dispute(
    session: Session,
    claim_id: int,
    program_path: Path,
    directory: Path | None = None,
    force: bool = False,
    progress: TraceProgress | None = None,
) -> dict[str, Any]:
    """Recompute the claimed program; if the claim is wrong (or `force`), post the bond and
    challenge it. Returns the challenge and game ids."""
    court, chain = session.court, session.chain
    c = claim_record(court, claim_id)
    if c["state"] not in (CLAIM_LIVE, CLAIM_REJECTED):
        what = "not revealed yet: dispute it once its root is public" if c["state"] == CLAIM_COMMITTED else "closed"
        raise CommandError(f"claim {claim_id} is {CLAIM_STATES.get(c['state'])} ({what}); there is nothing to dispute now.")
    if c["solver"].lower() == chain.account.lower():
        raise CommandError(f"claim {claim_id} is your own ({chain.account}); the solver cannot challenge it.")
    task = task_record(court, c["task_id"])
    closes = c["time"] + task["window"]
    if session.now() >= closes:
        raise CommandError(f"claim {claim_id}'s challenge window closed at {format_time(closes)}; it can only be finalized now.")
    program = _program_for_task(program_path, task, c["task_id"])
    trace = Trace(program, _trace_dir(program, directory))
    ours = trace.run(progress=progress)
    claimed = bytes(c["final_root"])
    result = {
        "claim_id": claim_id,
        "task_id": c["task_id"],
        "bond": str(task["challenger_bond"]),
        "claimed_root": hex32(claimed),
        "your_root": hex32(ours),
        "trace_dir": str(trace.dir),
        "challenger": chain.account,
    }
    # Run twice, or again after Ctrl-C: resume the challenge this account already opened
    # rather than lock a second bond.
    mine = session.deployment.logs(court.tasks.events.Challenged(), {"claim_id": claim_id, "challenger": chain.account})
    if mine:
        ev = mine[0]["args"]
        return result | {"challenge_id": ev["challenge_id"], "game_id": ev["game_id"], "resumed": True,
                         "tx": hex32(mine[0]["transactionHash"])}  # fmt: skip
    if ours == claimed and not force:
        raise CommandError(
            f"claim {claim_id} is correct: your run of the program ends in the claimed root {hex32(claimed)}, "
            "so a challenge would lose its bond; pass --force to challenge anyway."
        )
    pending = chain.w3.eth.get_transaction_count(chain.account, "pending")
    if pending > chain.w3.eth.get_transaction_count(chain.account, "latest"):
        raise CommandError(
            f"a transaction from {chain.account} is not mined yet (it may be this challenge, sent before an "
            "interruption); wait for it to be mined, then run the same command again."
        )
    bond = task["challenger_bond"]
    require_funds(court, chain.account, bond, "the challenger bond")
    approve(court, bond)
    failpoint("dispute_open:before_challenge")
    receipt = chain.send(court.tasks.functions.challenge(claim_id), "challenge")
    failpoint("dispute_open:after_challenge")
    ev = event_logs(court.tasks.events.Challenged, receipt)[0]["args"]
    return result | {"challenge_id": ev["challenge_id"], "game_id": ev["game_id"], "resumed": False,
                     "tx": hex32(receipt["transactionHash"])}  # fmt: skip


@dataclass
class GameEvent:
    """One thing that happened in a game being played: a move (ours or theirs), a wait, the end."""

    kind: str  # "start" | "position" | "move" | "wait" | "over"
    state: GameState
    who: Role | None = None
    function: str | None = None
    mine: bool = False
    text: str = ""


def _inferred_move(court: Court, game_id: int, before: GameState, after: GameState) -> tuple[Role, str]:
    """Who moved from `before` to `after`, and how (for narrating the other side)."""
    mover = whose_move(before)
    reason = (game_reason(court, game_id) or "") if after.outcome != Outcome.PENDING else ""
    if "clock" in reason:
        return mover, "timeout"
    if reason == "header is wrong":
        # anyone's proof, sent during the data descent whoever's turn it was
        return Role.CHALLENGER, "prove_header"
    return mover, (_SOLVER_FN if mover == Role.SOLVER else _CHALLENGER_FN).get(before.level, "move")


def _fingerprint(s: GameState) -> tuple:
    return (s.level, s.turn, s.outcome, s.lo, s.hi, s.reveal_hash, s.index, s.height, s.turn_start, s.top_known)


def play(
    session: Session,
    game_id: int,
    program_path: Path,
    role: Role,
    directory: Path | None = None,
    poll: float = 2.0,
    on_event: Callable[[GameEvent], None] | None = None,
    progress: TraceProgress | None = None,
    max_failures: int = 3,
) -> dict[str, Any]:
    """Play `role` in the game to its end from a local trace; ends a stalled opponent's game by
    its clock. Returns the outcome and whether we won."""
    court, chain = session.court, session.chain
    emit = on_event or (lambda e: None)
    s = game_state(court, game_id)
    party = s.solver if role == Role.SOLVER else s.challenger
    if party.lower() != chain.account.lower():
        other = "challenger" if role == Role.SOLVER else "solver"
        hint = f" (you are its {other}: pass --as {other})" if role_of(s, chain.account) else ""
        raise CommandError(
            f"game {game_id}'s {role.name.lower()} is {party}, not {chain.account}{hint}; sign with that party's key."
        )
    challenge_id = challenge_of_game(court, game_id)
    if challenge_id is not None:
        ch = challenge_record(court, challenge_id)
        task_id = claim_record(court, ch["claim_id"])["task_id"]
        program = _program_for_task(program_path, task_record(court, task_id), task_id)
    else:
        program = load_program(program_path, steps=s.steps)
        if (program.graph_root, program.n_nodes, program.n_slots) != (bytes(s.graph_root), s.n_nodes, s.n_slots):
            raise CommandError(
                f"{program_path} is not the program game {game_id} plays; pass the program its task was posted with."
            )
    trace = Trace(program, _trace_dir(program, directory))
    trace.run(progress=progress)
    player = GamePlayer.for_trace(court, game_id, role, trace)
    moves = {"ours": 0, "theirs": 0}
    opponent = s.challenger if role == Role.SOLVER else s.solver
    other = "challenger" if role == Role.SOLVER else "solver"
    emit(GameEvent("start", s, who=role, text=f"game {game_id}: you are the {role.name.lower()}, the {other} is {opponent}"))
    emit(GameEvent("position", s, text=describe(s, program)))
    last = s
    failures = 0
    waiting_since: tuple | None = None
    while True:
        s = game_state(court, game_id)
        if _fingerprint(s) != _fingerprint(last):
            who, fn = _inferred_move(court, game_id, last, s)
            moves["theirs"] += 1
            emit(GameEvent("move", s, who=who, function=fn, mine=False, text=describe(s, program)))
            last = s
        if s.outcome != Outcome.PENDING:
            break
        if whose_move(s) == role:
            try:
                move, receipt = player.step()
            except ChainError as e:
                if "clock expired" in str(e):
                    emit(GameEvent("over", s, text="your clock ran out; the other side can end the game now"))
                    return _play_result(court, game_id, role, s, challenge_id, moves, lost_on_time=True)
                failures += 1
                if failures >= max_failures:
                    raise
                time.sleep(poll)
                continue
            failures = 0
            if move is None:  # the state moved under us; re-derive
                time.sleep(poll)
                continue
            # the game as our move left it: the other side may have moved since, and its move
            # is narrated from the next poll, not folded into ours
            s = game_state(court, game_id, block=receipt["blockNumber"] if receipt else None)
            moves["ours"] += 1
            emit(GameEvent("move", s, who=role, function=move.function, mine=True, text=describe(s, program)))
            last = s
            continue
        # the other side's move: end the game if its clock has run out, else wait for it
        solver_left, challenger_left = court.game.functions.time_left(game_id).call()
        mover_left = solver_left if s.turn == Role.SOLVER else challenger_left
        if mover_left == 0:
            try:
                chain.send(court.game.functions.timeout(game_id), "timeout")
            except ChainError:
                pass  # the clock reads 0 a second before timeout is allowed
            else:
                s = game_state(court, game_id)
                moves["ours"] += 1
                emit(GameEvent("move", s, who=role, function="timeout", mine=True, text=describe(s, program)))
                last = s
                continue
        if waiting_since != _fingerprint(s):
            waiting_since = _fingerprint(s)
            emit(GameEvent("wait", s, who=whose_move(s), text=f"{format_duration(mover_left)} left on its clock"))
        time.sleep(poll)
    emit(GameEvent("over", s, text=game_reason(court, game_id) or ""))
    return _play_result(court, game_id, role, s, challenge_id, moves)


def _play_result(
    court: Court, game_id: int, role: Role, s: GameState, challenge_id: int | None, moves: dict[str, int],
    lost_on_time: bool = False,
) -> dict[str, Any]:  # fmt: skip
    won = {Role.SOLVER: Outcome.SOLVER_WON, Role.CHALLENGER: Outcome.CHALLENGER_WON}[role] == s.outcome
    return {
        "game_id": game_id,
        "challenge_id": challenge_id,
        "role": role.name.lower(),
        "outcome": "lost on time" if lost_on_time else s.outcome.name.lower(),
        "won": won and not lost_on_time,
        "reason": game_reason(court, game_id),
        "moves": moves["ours"],
        "their_moves": moves["theirs"],
    }


# -- settlement -------------------------------------------------------------------------------


def _end_if_timed_out(session: Session, game_id: int) -> bool:
    """Call Game.timeout if the party to move has run out of time; True if it ended the game."""
    court = session.court
    s = game_state(court, game_id)
    if s.outcome != Outcome.PENDING:
        return False
    solver_left, challenger_left = court.game.functions.time_left(game_id).call()
    left = solver_left if s.turn == Role.SOLVER else challenger_left
    if left != 0:
        return False
    try:
        session.chain.send(court.game.functions.timeout(game_id), "timeout")
    except ChainError:
        return False
    return True


def settle(session: Session, challenge_id: int) -> dict[str, Any]:
    """Settle a challenge whose game is over (ending it first if a clock ran out)."""
    court, chain = session.court, session.chain
    ch = challenge_record(court, challenge_id)
    if ch["state"] != CHALLENGE_OPEN:
        raise CommandError(f"challenge {challenge_id} is already settled ({CHALLENGE_STATES.get(ch['state'])}); nothing to do.")
    timed_out = False
    if not court.tasks.functions.settleable(challenge_id).call():
        timed_out = _end_if_timed_out(session, ch["game_id"])
        if not timed_out:
            g = game_view(court, ch["game_id"])
            left = g["clock_solver"] if g["to_move"] == "solver" else g["clock_challenger"]
            raise CommandError(
                f"challenge {challenge_id}'s game {ch['game_id']} is still on (level {g['level']}, the {g['to_move']} to move "
                f"with {format_duration(left)} on its clock); play it with `bisectml dispute play {ch['game_id']}` "
                "or settle once it ends."
            )
    receipt = chain.send(court.tasks.functions.settle(challenge_id), "settle")
    ev = event_logs(court.tasks.events.ChallengeSettled, receipt)[0]["args"]
    slashed = event_logs(court.tasks.events.BondSlashed, receipt)
    rejected = event_logs(court.tasks.events.ClaimRejected, receipt)
    return {
        "challenge_id": challenge_id,
        "claim_id": ev["claim_id"],
        "game_id": ch["game_id"],
        "ended_by_timeout": timed_out,
        "result": CHALLENGE_STATES.get(ev["state"], str(ev["state"])),
        "challenger": ev["challenger"],
        "paid_to_challenger": str(ev["paid"]),
        "slashed": str(slashed[0]["args"]["bond"]) if slashed else "0",
        "burned": str(slashed[0]["args"]["burned"]) if slashed else "0",
        "loser": slashed[0]["args"]["loser"] if slashed else None,
        "claim_rejected": bool(rejected),
        "solver_bond_burned": str(rejected[0]["args"]["burned"]) if rejected else "0",
        "prize_to_share": str(rejected[0]["args"]["prize"]) if rejected else "0",
        "tx": hex32(receipt["transactionHash"]),
    }


def finalize(session: Session, claim_id: int) -> dict[str, Any]:
    """Pay a claim whose window has closed and whose challenges the solver all won."""
    court, chain = session.court, session.chain
    c = claim_record(court, claim_id)
    if c["state"] != CLAIM_LIVE:
        raise CommandError(f"claim {claim_id} is {CLAIM_STATES.get(c['state'])}; only a live claim can be finalized.")
    task = task_record(court, c["task_id"])
    closes = c["time"] + task["window"]
    now = session.now()
    if now < closes:
        raise CommandError(
            f"claim {claim_id}'s challenge window is open until {format_time(closes)} ({format_duration(closes - now)} "
            "from now); finalize after it closes."
        )
    if c["unsettled"]:
        open_ids = [
            cid for cid in challenge_ids(court, claim_id, c["challenges"])
            if court.tasks.functions.challenges(cid).call()[3] == CHALLENGE_OPEN
        ]  # fmt: skip
        raise CommandError(
            f"claim {claim_id} has {c['unsettled']} unsettled challenge(s) ({', '.join(map(str, open_ids))}); "
            f"settle them first with `bisectml settle {open_ids[0] if open_ids else 'ID'}`."
        )
    receipt = chain.send(court.tasks.functions.finalize(claim_id), "finalize")
    ev = event_logs(court.tasks.events.ClaimFinalized, receipt)[0]["args"]
    return {
        "claim_id": claim_id,
        "task_id": ev["task_id"],
        "solver": ev["solver"],
        "reward": str(ev["reward"]),
        "bond": str(ev["bond"]),
        "paid": str(ev["reward"] + ev["bond"]),
        "tx": hex32(receipt["transactionHash"]),
    }


def collect(session: Session, challenge_id: int) -> dict[str, Any]:
    """Pay a winning challenger its share of the rejected claim's prize, in proportion to its
    metered gas (SPEC 7.5)."""
    court, chain = session.court, session.chain
    ch = challenge_record(court, challenge_id)
    if ch["state"] == CHALLENGE_COLLECTED:
        raise CommandError(f"challenge {challenge_id}'s share was already collected; nothing is left to collect.")
    if ch["state"] == CHALLENGE_LOST:
        raise CommandError(f"challenge {challenge_id} lost its game (its bond was slashed); it has no share to collect.")
    if ch["state"] != CHALLENGE_WON:
        raise CommandError(
            f"challenge {challenge_id} is {CHALLENGE_STATES.get(ch['state'])}: only a settled, won challenge collects a share; "
            f"settle it first with `bisectml settle {challenge_id}` if its game is over."
        )
    if not court.tasks.functions.collectable(challenge_id).call():
        c = claim_record(court, ch["claim_id"])
        closes = c["time"] + task_record(court, c["task_id"])["window"]
        raise CommandError(
            f"claim {ch['claim_id']}'s winners are not final yet (window until {format_time(closes)}, "
            f"{c['unsettled']} challenge(s) unsettled); collect once the window has closed and every game is settled."
        )
    receipt = chain.send(court.tasks.functions.collect(challenge_id), "collect")
    ev = event_logs(court.tasks.events.PrizeCollected, receipt)[0]["args"]
    return {
        "challenge_id": challenge_id,
        "claim_id": ev["claim_id"],
        "challenger": ev["challenger"],
        "share": str(ev["share"]),
        "dust_burned": str(ev["dust_burned"]),
        "tx": hex32(receipt["transactionHash"]),
    }


def expire(session: Session, claim_id: int) -> dict[str, Any]:
    """Burn the bond of a claim whose solver never revealed it, and reopen its task (SPEC 7.3)."""
    court, chain = session.court, session.chain
    c = claim_record(court, claim_id)
    if c["state"] != CLAIM_COMMITTED:
        raise CommandError(f"claim {claim_id} is {CLAIM_STATES.get(c['state'])}; only an unrevealed claim can expire.")
    due = int(court.tasks.functions.reveal_deadline(claim_id).call())
    if session.now() < due:
        raise CommandError(f"claim {claim_id} may still be revealed until {format_time(due)}; expire it after that.")
    receipt = chain.send(court.tasks.functions.expire_claim(claim_id), "expire claim")
    ev = event_logs(court.tasks.events.ClaimExpired, receipt)[0]["args"]
    return {"claim_id": claim_id, "task_id": ev["task_id"], "burned": str(ev["burned"]), "tx": hex32(receipt["transactionHash"])}


__all__ = ["GameEvent", "collect", "expire", "finalize", "open_dispute", "play", "settle"]
