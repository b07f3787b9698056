"""Playing games and tasks on a real chain: the glue between `verifier.court.game` and web3.

Everything is re-derived from the chain on every call (op-challenger's rule): the game's
state from `Game.games`, the solver's last reveal from the game's events. A move is computed
by a `Player` from the caller's own trace, dry-run, and sent; losing a race (the state moved
under us) surfaces as a ChainError and the next call simply re-derives.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from web3.logs import DISCARD

from verifier.court.chain import Chain, ChainError, ChainOracle, Deployment
from verifier.court.game import GameState, Level, Move, Outcome, Player, Role
from verifier.court.states import claim_commitment, claim_salt
from verifier.engine.program import Program
from verifier.engine.trace import Trace

PROOF_LEVELS = (Level.PROVE_ELEMENT, Level.PROVE_BOUNDARY)
# salts of node-held dev accounts (no key to derive them from), for this process only
_DEV_SALTS: dict[tuple[str, int, bytes], bytes] = {}


@dataclass
class Court:
    """The deployed game, referee and task registry, seen from one account."""

    chain: Chain
    deployment: Deployment

    def __post_init__(self) -> None:
        c = self.deployment.contracts(self.chain)
        self.game, self.referee, self.tasks, self.token = c["Game"], c["Referee"], c["Tasks"], c["Token"]
        self.availability = c["Availability"]  # where claims publish their results (SPEC 7.11)
        self.oracle = ChainOracle(self.chain, self.deployment)

    def as_account(self, chain: Chain) -> Court:
        return Court(chain, self.deployment)

    def claim_salt(self, task_id: int, final_root: bytes) -> bytes:
        """The salt of this account's claim of `final_root` on the task (SPEC 7.3): derived from
        the signing key, so a solver that crashes between commit and reveal derives it again. A
        node-held dev account has no key here: its salt is random and lives only as long as this
        process (the demo's accounts), so such a claim is lost if the process dies before the
        reveal."""
        if self.chain.key is not None:
            return claim_salt(bytes(self.chain.key.key), task_id, final_root)
        return _DEV_SALTS.setdefault((self.chain.account, task_id, final_root), os.urandom(32))

    def commit_claim(self, task_id: int, final_root: bytes) -> tuple[int, Any]:
        """Takes the task's claim slot with a commitment to `final_root` (bond approved before)."""
        salt = self.claim_salt(task_id, final_root)
        commitment = claim_commitment(task_id, final_root, self.chain.account, salt)
        receipt = self.chain.send(self.tasks.functions.commit_claim(task_id, commitment), "commit claim")
        ev = self.tasks.events.ClaimCommitted().process_receipt(receipt, errors=DISCARD)[0]
        return int(ev["args"]["claim_id"]), receipt

    def reveal_claim(self, claim_id: int, final_root: bytes) -> Any:
        task_id = int(self.tasks.functions.claims(claim_id).call()[0])
        salt = self.claim_salt(task_id, final_root)
        return self.chain.send(self.tasks.functions.reveal_claim(claim_id, final_root, salt), "reveal claim")

    def claim(self, task_id: int, final_root: bytes) -> int:
        """Commit and reveal at once: the slot is already ours when the root becomes public."""
        claim_id, _ = self.commit_claim(task_id, final_root)
        self.reveal_claim(claim_id, final_root)
        return claim_id

    def state(self, game_id: int) -> GameState:
        return GameState.from_tuple(self.game.functions.games(game_id).call())

    def revealed(self, game_id: int, state: GameState) -> list[bytes] | None:
        """The solver's last reveal at the current level (what the challenger picks from)."""
        if state.level == Level.ELEMENT:
            logs = self.deployment.logs(self.game.events.ChunkRevealed(), {"game_id": game_id})
            return [bytes(logs[-1]["args"]["chunk"])] if logs else None
        logs = self.deployment.logs(self.game.events.Revealed(), {"game_id": game_id})
        if not logs:
            return None
        values = [bytes(v) for v in logs[-1]["args"]["values"]]
        if state.level == Level.TERM and len(values) == len(_interior(state)) + 1:
            values = values[:-1]  # the first TERM reveal also carried s_K
        return values

    def send(self, game_id: int, move: Move) -> Any:
        target = self.game if move.target == "game" else self.referee
        return self.chain.send(getattr(target.functions, move.function)(game_id, *move.args), move.function)


def challenge_ids(court: Court, claim_id: int, n: int, block: int | str = "latest") -> list[int]:
    """The claim's `n` challenge ids in the order they were opened, read at `block` through
    Tasks.challenges_of's pages (newest first, each page before the last id of the one before)."""
    newest_first: list[int] = []
    before = 0
    while len(newest_first) < n:
        page = [int(i) for i in court.tasks.functions.challenges_of(claim_id, before, 256).call(block_identifier=block)]
        if not page:
            break
        newest_first.extend(page)
        before = page[-1]
    return newest_first[::-1]


def _interior(s: GameState) -> list[int]:
    from verifier.court.game import interior

    return interior(s.lo, s.hi, s.arity)


def whose_move(s: GameState) -> Role:
    """Proofs are the challenger's to send (anyone may); everything else follows `turn`."""
    if s.level in PROOF_LEVELS:
        return Role.CHALLENGER
    return s.turn


@dataclass
class GamePlayer:
    """One side of one game, played from the player's own trace."""

    court: Court
    game_id: int
    role: Role
    player: Player

    @classmethod
    def for_trace(cls, court: Court, game_id: int, role: Role, trace: Trace) -> GamePlayer:
        return cls(court, game_id, role, Player(trace, court.oracle))

    def next_move(self) -> Move | None:
        """The move this side should send now, or None (not our turn, or the game is over)."""
        s = self.court.state(self.game_id)
        if s.outcome != Outcome.PENDING or whose_move(s) != self.role:
            return None
        if self.role == Role.SOLVER:
            return self.player.solver_move(s)
        return self.player.challenger_move(s, self.court.revealed(self.game_id, s))

    def step(self) -> tuple[Move | None, Any]:
        """Send one move if it is ours; returns (move, receipt)."""
        move = self.next_move()
        if move is None:
            return None, None
        return move, self.court.send(self.game_id, move)

    def outcome(self) -> Outcome:
        return self.court.state(self.game_id).outcome


def play_out(
    players: list[GamePlayer],
    on_move: Callable[[GamePlayer, Move, Any, GameState], None] | None = None,
    max_moves: int = 500,
) -> Outcome:
    """Alternate the given players until their game ends (single-process play: demo, CLI, tests)."""
    court, gid = players[0].court, players[0].game_id
    for _ in range(max_moves):
        s = court.state(gid)
        if s.outcome != Outcome.PENDING:
            return s.outcome
        for p in players:
            move, receipt = p.step()
            if move is not None:
                if on_move is not None:
                    on_move(p, move, receipt, p.court.state(gid))
                break
        else:
            raise ChainError(f"game {gid}: nobody here can move at level {s.level.name}; wait for the other party.")
    raise ChainError(f"game {gid} did not end within {max_moves} moves.")


def program_task_args(program: Program) -> dict[str, Any]:
    """The program fields `Tasks.post_task` takes, from a loaded program."""
    return {
        "graph_root": program.graph_root,
        "n_nodes": program.n_nodes,
        "n_slots": program.n_slots,
        "initial_root": program.initial_state_root,
        "dataset_root": program.data_root,
        "steps": program.steps,
    }


__all__ = ["Court", "GamePlayer", "PROOF_LEVELS", "play_out", "program_task_args", "whose_move"]
