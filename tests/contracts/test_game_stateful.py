"""Stateful property test of the game: honest and random moves interleaved with time travel.

Invariants, each with its reason:
- a game resolves exactly once: after the outcome is set it never changes and every move reverts;
- the level never goes back (levels are ordered along every path of the game), so no move can
  reopen a settled question;
- within a dissection level the disputed range only shrinks;
- clocks only run down, and only the mover's;
- an honest challenger against a wrong claim never loses, whatever the cheater sends.
"""

from __future__ import annotations

import boa
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from _court import BoaOracle, Court
from onnx_models.toy import accumulator_program
from test_game_rules import WrongElement, cheat_program
from verifier.court.game import Level, Outcome, Player, Role
from verifier.commit.merkle import keccak
from verifier.court.play import PROOF_LEVELS
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

STEPS = 9
_CACHE: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _close_cached_traces():  # noqa: ANN202
    """The machine's traces live across examples; the module owns them and removes them."""
    yield
    for tr in [_CACHE.get("honest"), *_CACHE.get("cheats", [])]:
        if tr is not None:
            tr.close()
    _CACHE.clear()


def _setup():  # noqa: ANN202
    if not _CACHE:
        court = Court.deploy()
        honest_p = load_program(accumulator_program(steps=STEPS))
        honest = Trace(honest_p, checkpoint_every=3)
        honest.run()
        cheats = []
        for target in ((1, 2), (4, 3), (STEPS - 1, 4)):
            tr = Trace(cheat_program(WrongElement, target=target), checkpoint_every=3)
            tr.run()
            cheats.append(tr)
        _CACHE.update(court=court, program=honest_p, honest=honest, cheats=cheats, oracle=BoaOracle(court))
    return _CACHE


class GameMachine(RuleBasedStateMachine):
    @initialize(which=st.integers(0, 2), arity=st.sampled_from([2, 3, 4, 8]))
    def start(self, which: int, arity: int) -> None:
        c = _setup()
        if not boa.env.get_code(c["court"].game.address):
            # titanoboa rolled the deployment back with an earlier example: deploy again
            c["court"] = Court.deploy()
            c["oracle"] = BoaOracle(c["court"])
        # every example starts at the same time with a fresh game, so examples replay identically
        self._time = boa.env.evm.patch.timestamp
        self.court = c["court"]
        self.cheat = c["cheats"][which]
        p = c["program"]
        self.solver, self.challenger = boa.env.generate_address("s"), boa.env.generate_address("c")
        self.gid = self.court.game.create(
            self.solver, self.challenger, p.initial_state_root, self.cheat.final_root, p.graph_root, p.steps,
            p.n_nodes, p.n_slots, arity, 3_600,
        )
        self.solver_player = Player(self.cheat, c["oracle"])
        self.challenger_player = Player(c["honest"], c["oracle"])
        self.revealed = None
        self.prev = self.court.state(self.gid)
        self.resolved_as = None

    def teardown(self) -> None:
        if hasattr(self, "_time"):
            boa.env.evm.patch.timestamp = self._time

    def _state(self):  # noqa: ANN202
        return self.court.state(self.gid)

    def _try(self, who: str, fn: str, *args) -> bool:  # noqa: ANN002
        target = self.court.referee if fn in ("pick_element", "prove_header", "prove_element", "prove_boundary") else self.court.game
        addr = self.solver if who == "solver" else self.challenger
        try:
            with boa.env.prank(addr):
                getattr(target, fn)(self.gid, *args)
            return True
        except Exception:  # noqa: BLE001 - a rejected move is part of the exploration
            return False

    @rule()
    def honest_move(self) -> None:
        s = self._state()
        if s.outcome != Outcome.PENDING:
            return
        if s.turn == Role.SOLVER and s.level not in PROOF_LEVELS:
            move, who = self.solver_player.solver_move(s), "solver"
        else:
            move, who = self.challenger_player.challenger_move(s, self.revealed), "challenger"
        if move is None:
            return
        before = self._state()
        accepted = self._try(who, move.function, *move.args)
        if who == "challenger":
            assert accepted, f"the honest challenger's {move.function} was rejected"
        if accepted and move.function in ("reveal", "reveal_data"):
            self.revealed = list(move.args[0])
            if move.function == "reveal" and before.level == Level.TERM and not before.top_known:
                self.revealed = self.revealed[:-1]
        elif accepted and move.function == "reveal_chunk":
            self.revealed = [move.args[0]]

    @rule(n=st.integers(1, 8), seed=st.integers(0, 2**16))
    def cheater_sends_garbage(self, n: int, seed: int) -> None:
        # made-up values in place of a reveal: accepted when the count fits, and then they are
        # what the honest challenger must answer (it reads them as the daemons read events)
        values = [keccak(seed.to_bytes(4, "big"), bytes([i])) for i in range(n)]
        for fn in ("reveal", "reveal_data"):
            before = self._state()
            if self._try("solver", fn, values):
                self.revealed = values
                if fn == "reveal" and before.level == Level.TERM and not before.top_known:
                    self.revealed = values[:-1]

    @rule(seconds=st.sampled_from([1, 60, 3_599, 3_600, 3_601]))
    def cheater_stalls(self, seconds: int) -> None:
        # time passes only on the cheater's turns: the honest challenger always answers in time
        s = self._state()
        if s.outcome == Outcome.PENDING and s.turn == Role.SOLVER and s.level not in PROOF_LEVELS:
            boa.env.time_travel(seconds=seconds)

    @rule()
    def anyone_calls_timeout(self) -> None:
        try:
            self.court.game.timeout(self.gid)
        except Exception:  # noqa: BLE001 - not expired yet
            pass

    @invariant()
    def resolves_once_and_only_forward(self) -> None:
        s = self._state()
        p = self.prev
        if self.resolved_as is not None:
            assert s.outcome == self.resolved_as and s.level == Level.OVER
        elif s.outcome != Outcome.PENDING:
            self.resolved_as = s.outcome
        assert s.level >= p.level, (p.level, s.level)
        if s.level == p.level and s.level in (Level.STEP, Level.NODE, Level.TERM):
            assert p.lo <= s.lo and s.hi <= p.hi
        assert s.clock_solver <= p.clock_solver and s.clock_challenger <= p.clock_challenger
        self.prev = s

    @invariant()
    def honest_challenger_never_loses(self) -> None:
        # it only loses on its clock if it stops moving; here it always moves when asked, so the
        # only way to lose would be a wrong decision
        s = self._state()
        if s.outcome == Outcome.SOLVER_WON:
            assert s.level == Level.OVER
            raise AssertionError("a wrong claim beat the honest challenger")


GameMachine.TestCase.settings = settings(
    max_examples=5, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
TestGameMachine = GameMachine.TestCase
