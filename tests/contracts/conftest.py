"""Shared contract fixtures: session-scoped deployments over titanoboa, funded accounts.

titanoboa's pytest plugin runs every test (and every hypothesis example) inside
`boa.env.anchor()`, so session-scoped contracts start each test in the state they were
deployed in.
"""

from __future__ import annotations

import os
from pathlib import Path

import boa
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: where the .vy sources are read from; bench/mutation_check.py points this at a mutated copy
CONTRACTS = Path(os.environ.get("BISECTML_CONTRACTS_DIR") or ROOT / "contracts")
if os.environ.get("BISECTML_CONTRACTS_DIR"):
    # `from contracts import ..` inside the sources must resolve to the same copy
    boa.interpret.set_search_paths([str(CONTRACTS.parent)])

#: tokens minted to each funded account (18 decimals)
FUNDS = 10**6 * 10**18
MAX_UINT = 2**256 - 1


def load_partial(relpath: str):
    """A deployer for `contracts/<relpath>` (compiled once per call site)."""
    return boa.load_partial(str(CONTRACTS / relpath))


@pytest.fixture(scope="session")
def deployer():
    return boa.env.generate_address("deployer")


@pytest.fixture(scope="session")
def accounts():
    """Six fresh addresses: index 0 is usually the poster, 1 the solver, 2.. challengers."""
    return [boa.env.generate_address(f"account{i}") for i in range(6)]


@pytest.fixture(scope="session")
def token_deployer():
    return load_partial("Token.vy")


@pytest.fixture(scope="session")
def mock_game_deployer():
    return load_partial("mocks/MockGame.vy")


@pytest.fixture(scope="session")
def tasks_deployer():
    return load_partial("Tasks.vy")


@pytest.fixture(scope="session")
def token(token_deployer, deployer):
    with boa.env.prank(deployer):
        return token_deployer.deploy()


@pytest.fixture(scope="session")
def mock_game(mock_game_deployer, deployer):
    with boa.env.prank(deployer):
        return mock_game_deployer.deploy()


@pytest.fixture(scope="session")
def availability(deployer):
    """The data-availability registry where claims publish their results."""
    with boa.env.prank(deployer):
        return load_partial("Availability.vy").deploy()


@pytest.fixture(scope="session")
def tasks(tasks_deployer, token, mock_game, availability, deployer):
    """The task registry, wired to the token, the mock game and the availability registry."""
    with boa.env.prank(deployer):
        registry = tasks_deployer.deploy(token, mock_game, availability)
        mock_game.set_tasks(registry)
    return registry


@pytest.fixture(scope="session")
def funded(token, tasks, accounts, deployer):
    """`accounts`, each holding FUNDS tokens and an unlimited approval for `tasks`."""
    for a in accounts:
        with boa.env.prank(deployer):
            token.mint(a, FUNDS)
        with boa.env.prank(a):
            token.approve(tasks, MAX_UINT)
    return accounts


@pytest.fixture(scope="module")
def court():
    """The whole suite (token, one-step contracts, game, referee, registry), one per test module."""
    from _court import Court

    return Court.deploy()


@pytest.fixture(scope="module")
def oracle(court):
    """Asks the deployed one-step contracts, as players do."""
    from _court import BoaOracle

    return BoaOracle(court)


# the closed loop's own deployment, shared by tests/contracts/test_loop*.py
from _loop import loop_suite  # noqa: E402, F401
