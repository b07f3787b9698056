# pragma version ~=0.4.3
"""
@title Test double of the dispute game
@notice Implements `IGame` for the task registry's tests: `create` records the game and
        answers `PENDING`; the test decides each outcome with `set_outcome` and the
        challenger's metered gas with `set_challenger_gas`.
@custom:security Test only. Anyone may set an outcome; never deploy this next to real funds.
"""

from contracts import IGame

implements: IGame

# outcomes, as IGame.vyi numbers them (interface constants are not importable)
PENDING: constant(uint8) = 0
SOLVER_WON: constant(uint8) = 1
CHALLENGER_WON: constant(uint8) = 2


struct Game:
    # solver of the disputed claim
    solver: address
    # challenger that opened the game
    challenger: address
    # agreed start, state(0, 0)
    initial_root: bytes32
    # the solver's claimed state(T, 0)
    final_root: bytes32
    # the program's graph root
    graph_root: bytes32
    # T
    steps: uint256
    # N
    n_nodes: uint256
    # S
    n_slots: uint256
    # dissection arity k
    arity: uint256
    # each party's chess clock, in seconds
    clock: uint256


event GameCreated:
    game_id: indexed(uint256)
    solver: indexed(address)
    challenger: indexed(address)


event OutcomeSet:
    game_id: indexed(uint256)
    outcome: uint8


event ChallengerGasSet:
    game_id: indexed(uint256)
    metered: uint256


# deployer, the only address that may point the mock at a task registry
admin: immutable(address)
# the task registry allowed to create games (set once)
tasks: public(address)
# number of games created; ids run from 1
game_count: public(uint256)
# game id => the arguments `create` received
games: public(HashMap[uint256, Game])
# game id => PENDING, SOLVER_WON or CHALLENGER_WON
outcome: public(HashMap[uint256, uint8])
# game id => the gas the challenger's moves metered (Game.vy's `challenger_gas`)
challenger_gas: public(HashMap[uint256, uint256])


@deploy
def __init__():
    admin = msg.sender


@external
def set_tasks(tasks: address):
    """
    @notice Points the mock at the task registry, once (the registry needs the game's address
            at deployment, so one of the two is configured after the fact).
    """
    assert msg.sender == admin, "game: not the admin"
    assert self.tasks == empty(address), "game: tasks already set"
    assert tasks != empty(address), "game: tasks is the zero address"
    self.tasks = tasks


@external
def create(
    solver: address,
    challenger: address,
    initial_root: bytes32,
    final_root: bytes32,
    graph_root: bytes32,
    steps: uint256,
    n_nodes: uint256,
    n_slots: uint256,
    arity: uint256,
    clock: uint256,
) -> uint256:
    assert msg.sender == self.tasks, "game: caller is not tasks"
    game_id: uint256 = self.game_count + 1
    self.game_count = game_id
    self.games[game_id] = Game(
        solver=solver,
        challenger=challenger,
        initial_root=initial_root,
        final_root=final_root,
        graph_root=graph_root,
        steps=steps,
        n_nodes=n_nodes,
        n_slots=n_slots,
        arity=arity,
        clock=clock,
    )
    log GameCreated(game_id=game_id, solver=solver, challenger=challenger)
    return game_id


@view
@external
def challenger_of(game_id: uint256) -> address:
    return self.games[game_id].challenger


@external
def set_outcome(game_id: uint256, outcome: uint8):
    """
    @notice Decides a game (or sets it back to PENDING), as the test wants.
    """
    assert game_id != 0 and game_id <= self.game_count, "game: unknown game"
    assert outcome <= CHALLENGER_WON, "game: bad outcome"
    self.outcome[game_id] = outcome
    log OutcomeSet(game_id=game_id, outcome=outcome)


@external
def set_challenger_gas(game_id: uint256, metered: uint256):
    """
    @notice Sets the challenger's metered gas of a game, as the test wants.
    """
    assert game_id != 0 and game_id <= self.game_count, "game: unknown game"
    self.challenger_gas[game_id] = metered
    log ChallengerGasSet(game_id=game_id, metered=metered)
