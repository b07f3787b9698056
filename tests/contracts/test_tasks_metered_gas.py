"""Prize shares in proportion to metered gas, over the real Game.vy and Tasks.vy (docs/SPEC.md 7.5).

A cheater's wrong claim of the accumulator program is challenged three times: an honest
watchtower plays its game to the one-step proof, a second one wins a shorter game when the
cheater stops answering, and the cheater's sybil wins a game the cheater concedes at once. The
game meters only the challenger's own moves; Tasks adds the challenge transaction and splits the
prize as floor(prize * gas / G).
"""

from __future__ import annotations

import boa
import pytest
from _court import CONTRACTS, BoaOracle, Match, tx_gas
from test_game_rules import ARITY, STEPS, WrongElement, cheat_program

from onnx_models.toy import accumulator_program
from verifier.court.game import Outcome, Player, Role
from verifier.court.play import PROOF_LEVELS, whose_move
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

WINDOW = CLOCK = 172_800
SOLVER_BOND, CHALLENGER_BOND, REWARD = 10**21 + 1, 250 * 10**18, 10**20
SALT = b"\x07" * 32


def burn_of(b: int) -> int:
    return -(-b * 5_000 // 10_000)


PRIZE = SOLVER_BOND - burn_of(SOLVER_BOND)



@pytest.fixture(scope="module")
def program():  # noqa: ANN201
    return load_program(accumulator_program(steps=STEPS))


@pytest.fixture(scope="module")
def honest(program) -> Trace:
    tr = Trace(program, checkpoint_every=4)
    tr.run()
    return tr


@pytest.fixture(scope="module")
def cheat() -> Trace:
    tr = Trace(cheat_program(WrongElement, target=(5, 2), element=2), checkpoint_every=4)
    tr.run()
    return tr


@pytest.fixture
def setup(court, program, cheat):  # noqa: ANN001, ANN201
    """Token and Tasks over the real game; a task of the program and the cheater's live claim."""
    token = boa.load_partial(str(CONTRACTS / "Token.vy")).deploy()
    availability = boa.load_partial(str(CONTRACTS / "Availability.vy")).deploy()
    tasks = boa.load_partial(str(CONTRACTS / "Tasks.vy")).deploy(token.address, court.game.address, availability.address)
    names = ("poster", "cheater", "tower", "tower2", "sybil")
    who = {n: boa.env.generate_address(n) for n in names}
    for a in who.values():
        token.mint(a, 10**24)
        with boa.env.prank(a):
            token.approve(tasks.address, 2**256 - 1)
    with boa.env.prank(who["poster"]):
        tid = tasks.post_task(
            program.graph_root, program.n_nodes, program.n_slots, program.initial_state_root, program.data_root,
            STEPS, REWARD, WINDOW, CLOCK, SOLVER_BOND, CHALLENGER_BOND, ARITY, boa.env.timestamp + 10**6,
        )  # fmt: skip
    claim = cheat.final_root
    with boa.env.prank(who["cheater"]):
        cid = tasks.commit_claim(tid, tasks.claim_commitment(tid, claim, who["cheater"], SALT))
        tasks.reveal_claim(cid, claim, SALT)
    return token, tasks, who, cid


def solvent(token, tasks) -> None:  # noqa: ANN001
    assert token.balanceOf(tasks) == tasks.owed()


def open_game(court, tasks, who, cid, name, cheat, honest):  # noqa: ANN001, ANN201
    with boa.env.prank(who[name]):
        chid = tasks.challenge(cid)
    gid = tasks.challenges(chid).game_id
    m = Match(court, gid, Player(cheat, BoaOracle(court)), Player(honest, BoaOracle(court)), who["cheater"], who[name])
    return chid, m


def drive(m: Match, challenger_moves: int | None = None, to_proof: bool = False) -> list[tuple[str, str, int, int]]:
    """Plays honestly until the game ends, or until the challenger has made `challenger_moves`
    moves and the solver is to move (the cheater then stops answering), or (`to_proof`) until the
    one-step proof is due. Returns, per move, who sent it, the call, the meter's increase and the
    gas the sender paid net of refunds."""
    out = []
    made = 0
    for _ in range(200):
        s = m.court.state(m.gid)
        if s.outcome != Outcome.PENDING or (to_proof and s.level in PROOF_LEVELS):
            return out
        solver_turn = whose_move(s) == Role.SOLVER
        if solver_turn and challenger_moves is not None and made >= challenger_moves:
            return out
        who = "solver" if solver_turn else "challenger"
        move = m.solver.solver_move(s) if solver_turn else m.challenger.challenger_move(s, m._revealed)
        before = m.court.game.challenger_gas(m.gid)
        boa.env.time_travel(seconds=1)
        m.send(who, move)
        target = m.court.game if move.target == "game" else m.court.referee
        comp = target._computation
        gross = tx_gas(comp.get_gas_used(), target.__getattribute__(move.function).prepare_calldata(m.gid, *move.args))
        net = gross - min(comp.get_gas_refund(), gross // 5)
        out.append((who, move.function, m.court.game.challenger_gas(m.gid) - before, net))
        made += who == "challenger"
    raise AssertionError("the game did not end")


def test_meter__counts_only_the_challengers_own_moves_and_never_more_than_it_paid(court, setup, cheat, honest) -> None:
    _, tasks, who, cid = setup
    _, m = open_game(court, tasks, who, cid, "tower", cheat, honest)
    moves = drive(m)
    assert court.game.outcome(m.gid) == 2  # CHALLENGER_WON, by the one-step proof
    metered = [(f, d, net) for w, f, d, net in moves if w == "challenger" and d]
    # every dissection and data move of the challenger, and its element choice, is metered
    assert {f for f, _, _ in metered} >= {"pick", "pick_element"}
    for w, f, d, net in moves:
        if w == "solver" or f.startswith("prove"):
            assert d == 0, (w, f)  # the solver's moves and the proof (anyone may send it) weigh nothing
        else:
            # weight is never bought below cost: at most what the challenger paid net of refunds
            assert 0 < d <= net, (f, d, net)
    for f, d, net in metered:
        if f != "pick_element":  # through the referee only the game's part is metered
            assert d >= net // 2, (f, d, net)
    assert court.game.challenger_gas(m.gid) == sum(d for _, _, d, _ in moves)
    # the meter lives in the clock's slot, but the clock reads as seconds
    assert court.state(m.gid).clock_challenger <= CLOCK


def test_meter__third_party_calls_on_the_challengers_behalf__weigh_nothing(court, setup, cheat, honest) -> None:
    """A stranger's timeout, a stranger's one-step proof and a stranger's raw move do not move
    the challenger's meter."""
    _, tasks, who, cid = setup
    stranger = boa.env.generate_address("stranger")
    _, m = open_game(court, tasks, who, cid, "tower", cheat, honest)
    _, m2 = open_game(court, tasks, who, cid, "tower2", cheat, honest)
    # a proof sent by a stranger at the challenger's proof level
    drive(m2, to_proof=True)
    s = court.state(m2.gid)
    assert s.level in PROOF_LEVELS
    gas = court.game.challenger_gas(m2.gid)
    assert gas > 0
    move = m2.challenger.challenger_move(s, m2._revealed)
    with boa.env.prank(stranger):
        getattr(court.referee, move.function)(m2.gid, *move.args)
    assert court.game.outcome(m2.gid) == 2
    assert court.game.challenger_gas(m2.gid) == gas

    # a stranger's timeout of a solver that stopped answering
    drive(m, challenger_moves=2)
    s = court.state(m.gid)
    assert s.turn == Role.SOLVER
    gas = court.game.challenger_gas(m.gid)
    assert gas > 0
    boa.env.time_travel(seconds=CLOCK + 1)
    with boa.env.prank(stranger):
        court.game.timeout(m.gid)  # the solver's clock ran out: the challenger wins
    assert court.game.outcome(m.gid) == 2
    assert court.game.challenger_gas(m.gid) == gas


def test_meter__a_strangers_pick__reverts_and_weighs_nothing(court, setup, cheat, honest) -> None:
    _, tasks, who, cid = setup
    _, m = open_game(court, tasks, who, cid, "tower", cheat, honest)
    s = court.state(m.gid)
    m.send("solver", m.solver.solver_move(s))
    pick = m.challenger.challenger_move(court.state(m.gid), m._revealed)
    assert pick.function == "pick"
    for outsider in (who["cheater"], boa.env.generate_address("stranger")):
        with boa.env.prank(outsider), boa.reverts("game: only the challenger"):
            court.game.pick(m.gid, *pick.args)
    assert court.game.challenger_gas(m.gid) == 0
    m.send("challenger", pick)
    assert court.game.challenger_gas(m.gid) > 0


def test_create__clock_above_64_bits__reverts(court) -> None:
    """The clock shares its slot with the meter: a longer one would spill into it."""
    a, b = boa.env.generate_address("a"), boa.env.generate_address("b")
    args = (a, b, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, 5, 3, 4, 2)
    with boa.reverts("game: clock too long"):
        court.game.create(*args, 2**64)
    gid = court.game.create(*args, 2**64 - 1)
    assert court.game.challenger_gas(gid) == 0
    assert court.game.games(gid).clock_challenger == 2**64 - 1
    assert court.game.time_left(gid) == (2**64 - 1, 2**64 - 1)


def test_shares__proportional_to_metered_gas_of_real_games(court, setup, cheat, honest) -> None:
    """Three winners: a full game, a shorter one the cheater abandons, and the cheater's sybil
    whose game it concedes at once. Each share is floor(prize * gas / G); the sybil weighs only
    its challenge transaction and gets far less than the watchtower that played to the end; the
    dust is burned and the contract holds what it owes after every step."""
    token, tasks, who, cid = setup
    stranger = boa.env.generate_address("stranger")
    full, m_full = open_game(court, tasks, who, cid, "tower", cheat, honest)
    short, m_short = open_game(court, tasks, who, cid, "tower2", cheat, honest)
    syb, m_syb = open_game(court, tasks, who, cid, "sybil", cheat, honest)
    solvent(token, tasks)
    drive(m_full)
    drive(m_short, challenger_moves=2)
    boa.env.time_travel(seconds=CLOCK + 1)
    with boa.env.prank(stranger):
        court.game.timeout(m_short.gid)
        court.game.timeout(m_syb.gid)
    ids = (full, short, syb)
    games = [m_full.gid, m_short.gid, m_syb.gid]
    assert [court.game.outcome(g) for g in games] == [2, 2, 2]
    meters = [court.game.challenger_gas(g) for g in games]
    assert meters[0] > meters[1] > meters[2] == 0
    tx = [tasks.challenges(i).gas for i in ids]
    for i in ids:
        with boa.env.prank(stranger):
            tasks.settle(i)
        solvent(token, tasks)
    weights = [t + g for t, g in zip(tx, meters)]
    assert [tasks.challenges(i).gas for i in ids] == weights
    assert tasks.claims(cid).gas == sum(weights)
    shares = [PRIZE * w // sum(weights) for w in weights]
    assert [tasks.prize_share(i) for i in ids] == shares
    assert shares[0] > shares[1] > shares[2]
    assert shares[0] > 1.5 * shares[2]  # the sybil weighs its challenge transaction only
    boa.env.time_travel(seconds=tasks.challenge_deadline(cid) - boa.env.timestamp)
    supply = token.totalSupply()
    for k, i in enumerate(ids):
        payee = tasks.challenges(i).challenger
        before = token.balanceOf(payee)
        with boa.env.prank(stranger):
            tasks.collect(i)
        assert token.balanceOf(payee) == before + shares[k]
        solvent(token, tasks)
    assert token.totalSupply() == supply - (PRIZE - sum(shares))
    assert tasks.owed() == REWARD


def test_meter__clock_still_runs_in_seconds(court, program, cheat, honest) -> None:
    """A game created outside Tasks plays as before: clocks in seconds, meter only moves on the
    challenger's turns."""
    s_addr, c_addr = boa.env.generate_address("s"), boa.env.generate_address("c")
    gid = court.game.create(s_addr, c_addr, program.initial_state_root, cheat.final_root, program.graph_root,
                            STEPS, program.n_nodes, program.n_slots, ARITY, 3_600)  # fmt: skip
    m = Match(court, gid, Player(cheat, BoaOracle(court)), Player(honest, BoaOracle(court)), s_addr, c_addr)
    moves = drive(m, to_proof=True)
    left = court.game.time_left(gid)
    assert 0 < left[1] < 3_600 and court.state(gid).clock_challenger == left[1]
    assert all(d == 0 for w, _, d, _ in moves if w == "solver")
    assert court.game.challenger_gas(gid) == sum(d for _, _, d, _ in moves) > 0
