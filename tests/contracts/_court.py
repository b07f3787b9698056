"""The court on titanoboa: the game, the referee and the one-step contracts, and a referee-less
driver that plays two `Player`s against each other move by move, as the daemons would."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boa

from verifier.court.game import GameState, Level, Move, Outcome, Player, Role
from verifier.court.play import whose_move

FAMILIES = ("OneStepElementwise", "OneStepShape", "OneStepReduce", "OneStepLinalg")
#: where the .vy sources are read from (as in conftest.CONTRACTS); bench/mutation_check.py
#: points BISECTML_CONTRACTS_DIR at a mutated copy
CONTRACTS = Path(os.environ.get("BISECTML_CONTRACTS_DIR") or Path(__file__).resolve().parents[2] / "contracts")
if os.environ.get("BISECTML_CONTRACTS_DIR"):
    # `from contracts import ..` inside the sources must resolve to the same copy
    boa.interpret.set_search_paths([str(CONTRACTS.parent)])


_DEPLOYERS: dict[str, object] = {}


def _deployer(name: str):  # noqa: ANN202
    """Compile each contract once per process; deploying again is then cheap."""
    if name not in _DEPLOYERS:
        _DEPLOYERS[name] = boa.load_partial(str(CONTRACTS / f"{name}.vy"))
    return _DEPLOYERS[name]


@dataclass
class Court:
    game: object
    referee: object
    families: dict[str, object]

    @classmethod
    def deploy(cls) -> Court:
        fams = {name: _deployer(name).deploy() for name in FAMILIES}
        game = _deployer("Game").deploy()
        referee = _deployer("Referee").deploy(
            game.address,
            fams["OneStepElementwise"].address,
            fams["OneStepShape"].address,
            fams["OneStepReduce"].address,
            fams["OneStepLinalg"].address,
        )
        game.set_referee(referee.address)
        return cls(game, referee, fams)

    def family(self, desc: bytes):  # noqa: ANN201
        op = desc[0]
        if 1 <= op <= 24:
            return self.families["OneStepElementwise"]
        if 25 <= op <= 33:
            return self.families["OneStepShape"]
        if 34 <= op <= 38:
            return self.families["OneStepReduce"]
        return self.families["OneStepLinalg"]

    def state(self, gid: int) -> GameState:
        return GameState.from_tuple(self.game.games(gid))


@dataclass
class BoaOracle:
    """OneStepOracle over the deployed one-step contracts."""

    court: Court

    def terms(self, desc, headers):  # noqa: ANN001, ANN201
        return self.court.family(desc).terms(desc, headers)

    def needs(self, desc, headers, out_index, phase, k, values):  # noqa: ANN001, ANN201
        return [tuple(n) for n in self.court.family(desc).needs(desc, headers, out_index, phase, k, values)]

    def compute(self, desc, headers, out_index, phase, k, acc, values):  # noqa: ANN001, ANN201
        return self.court.family(desc).compute(desc, headers, out_index, phase, k, acc, values)

    def finalize(self, desc, headers, acc):  # noqa: ANN001, ANN201
        return self.court.family(desc).finalize(desc, headers, acc)


def tx_gas(execution: int, calldata: bytes, refund: int = 0) -> int:
    """A transaction's gas on a Prague chain: intrinsic + calldata (EIP-2028) + execution, less
    the storage refund (at most a fifth of that sum, EIP-3529), or the EIP-7623 calldata floor
    if that is higher."""
    zeros = calldata.count(0)
    tokens = zeros + 4 * (len(calldata) - zeros)
    used = 21_000 + 4 * tokens + execution
    return max(used - min(max(refund, 0), used // 5), 21_000 + 10 * tokens)


def computation_gas(computation, calldata: bytes) -> int:  # noqa: ANN001
    """tx_gas of a top-level titanoboa computation, refund included (what a receipt says)."""
    return tx_gas(computation.get_gas_used(), calldata, 0 if computation.is_error else computation.get_gas_refund())


@contextmanager
def cold_transactions(env=None):  # noqa: ANN001, ANN201
    """Every top-level call and deployment on `env` (default boa.env) runs as its own
    transaction, as on a chain: titanoboa otherwise keeps one EIP-2929 access list and one set
    of EIP-2200 original values for the whole session, so a slot or an account read by an
    earlier call (a view call included) is warm, and a slot written earlier is dirty. Before each
    call this locks the state (the original values become the current ones), empties the access
    list and the transient storage, and marks the sender and the callee warm, as py-evm's
    transaction executor does (precompiles are always warm; COINBASE is marked by the
    computation, EIP-3651). Not for use inside boa.env.anchor(): locking flattens the journal."""
    env = env or boa.env
    evm = env.evm

    def begin(sender, to) -> None:  # noqa: ANN001
        state = evm.vm.state
        state.lock_changes()  # also empties the access list (py-evm AccountDB.lock_changes)
        if hasattr(state, "clear_transient_storage"):
            state.clear_transient_storage()
        state.mark_address_warm(sender.canonical_address)
        state.mark_address_warm(to.canonical_address)

    execute_code, deploy_code = evm.execute_code, evm.deploy_code

    def cold_execute(*args, **kw):  # noqa: ANN002, ANN003, ANN202
        begin(kw["sender"], kw["to"])
        return execute_code(*args, **kw)

    def cold_deploy(*args, **kw):  # noqa: ANN002, ANN003, ANN202
        begin(kw["sender"], kw["target_address"])
        return deploy_code(*args, **kw)

    evm.execute_code, evm.deploy_code = cold_execute, cold_deploy
    try:
        yield
    finally:
        del evm.execute_code, evm.deploy_code  # the class's methods again


def as_cheat(program, cls=None, **attrs):  # noqa: ANN001, ANN201
    """`program` turned into an instance of the cheating subclass `cls` with `attrs` set (the
    adversaries' programs are the honest one with a step that lies); unchanged without `cls`."""
    if cls is not None:
        program.__class__ = cls
        for k, v in attrs.items():
            setattr(program, k, v)
    return program


# A strategy turns (state, honest move) into the move actually sent (or None to stall).
Strategy = Callable[[GameState, Move | None], Move | None]


def honest(_: GameState, move: Move | None) -> Move | None:
    return move


@dataclass
class Match:
    """Two players, their addresses and strategies, and the moves each sent."""

    court: Court
    gid: int
    solver: Player
    challenger: Player
    solver_addr: str
    challenger_addr: str
    solver_strategy: Strategy = honest
    challenger_strategy: Strategy = honest
    sent: dict[str, list[str]] = field(default_factory=lambda: {"solver": [], "challenger": []})
    gas: dict[str, int] = field(default_factory=lambda: {"solver": 0, "challenger": 0})
    max_gas: int = 0
    log: list[tuple[str, str, int, int]] = field(default_factory=list)
    moves: list[tuple[str, Move]] = field(default_factory=list)  # (who, move) as sent, to replay
    _revealed: list | None = None

    def send(self, who: str, move: Move) -> None:
        target = self.court.game if move.target == "game" else self.court.referee
        addr = self.solver_addr if who == "solver" else self.challenger_addr
        before = self.court.state(self.gid)
        with boa.env.prank(addr):
            getattr(target, move.function)(self.gid, *move.args)
        data = getattr(target, move.function).prepare_calldata(self.gid, *move.args)
        used = computation_gas(target._computation, data)
        self.moves.append((who, move))
        self.gas[who] += used
        self.max_gas = max(self.max_gas, used)
        self.sent[who].append(move.function)
        self.log.append((who, move.function, used, len(data)))
        if move.function in ("reveal", "reveal_data"):
            self._revealed = list(move.args[0])
            if move.function == "reveal" and before.level == Level.TERM and not before.top_known:
                self._revealed = self._revealed[:-1]  # the last value was s_K
        elif move.function == "reveal_chunk":
            self._revealed = [move.args[0]]

    def play(self, max_moves: int = 400, clock_step: int = 1) -> Outcome:
        for _ in range(max_moves):
            s = self.court.state(self.gid)
            if s.outcome != Outcome.PENDING:
                return s.outcome
            if whose_move(s) == Role.SOLVER:
                move = self.solver_strategy(s, self.solver.solver_move(s))
                who = "solver"
            else:
                move = self.challenger_strategy(s, self.challenger.challenger_move(s, self._revealed))
                who = "challenger"
            if move is None:
                # the party to move stalls: let its clock run out, then anyone times it out
                left = max(s.clock_solver, s.clock_challenger)
                boa.env.time_travel(seconds=left + 1)
                self.court.game.timeout(self.gid)
                continue
            boa.env.time_travel(seconds=clock_step)
            self.send(who, move)
        raise AssertionError("the game did not end")



class Refused(Exception):
    """A raw call reverted; the message is its revert reason."""


def publish_raw(availability, header: bytes, data: bytes, sender=None):  # noqa: ANN001, ANN201
    """Availability.publish(header) with `data` as the raw calldata after it (SPEC 8.10): the
    computation (its output is the commitment), or Refused with the revert reason."""
    from eth.exceptions import Revert
    from eth_abi import decode as abi_decode

    from verifier.market.availability import calldata

    try:
        return boa.env.raw_call(availability.address, data=calldata(header, data), sender=sender)
    except Revert as e:
        out = bytes(e.args[0])
        raise Refused(abi_decode(["string"], out[4:])[0] if out[:4] == bytes.fromhex("08c379a0") else out.hex()) from None


def publish_tensor(availability, array, sender=None) -> bytes:  # noqa: ANN001
    """Publishes `array`'s bytes on Availability.vy; its commitment."""
    from verifier.market.availability import payload

    return bytes(publish_raw(availability, *payload(array), sender=sender).output)


def check_reason_table(source: Path, prefix: str) -> None:
    """A contract that keeps its revert reasons in one REASONS string (Market.vy, Loop.vy):
    each E_ code slices one whole reason out of it; every reason has a code, is used, and is
    one line; `_check` puts `prefix` in front of it (once, not once per check)."""
    src = source.read_text()
    block = re.search(r"REASONS: constant\(String\[(\d+)\]\) = \(\n((?:    \".*\"\n)+)\)", src)
    reasons = re.findall(r'"(.*)"', block.group(2))
    assert int(block.group(1)) == len("".join(reasons))
    codes = {n: eval(v) for n, v in re.findall(r"(?m)^(E_\w+): constant\(uint256\) = (.+)$", src)}  # noqa: S307
    starts, off = {}, 0
    for r in reasons:
        starts[off] = r
        off += len(r)
    named = {}
    for name, code in codes.items():
        offset, length = code >> 8, code & 255
        assert offset in starts and len(starts[offset]) == length, name
        named[name] = starts[offset]
    assert sorted(named.values()) == sorted(reasons)
    for name in codes:
        assert len(re.findall(rf"\b{name}\b", src)) >= 2, f"{name} is never checked"
    assert all(not r.startswith(prefix) and "\n" not in r for r in reasons)
    assert f'concat("{prefix}", slice(self._reasons' in src and "self._reasons = REASONS" in src
