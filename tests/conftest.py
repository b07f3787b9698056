"""Shared fixtures: a real anvil node on 127.0.0.1, started for the session and always stopped."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from verifier import devnet
from verifier.devnet import ANVIL_KEYS, ANVIL_VERSION  # noqa: F401 - re-exported to the tests

def anvil_binary() -> str:
    found = devnet.anvil_binary()
    if not found:
        pytest.fail(f"anvil is not installed; {devnet.INSTALL_HINT}.")
    return found


@dataclass
class Anvil:
    url: str
    process: subprocess.Popen
    keys: list[str]

    def rpc(self, method: str, params: list | None = None):  # noqa: ANN201
        return devnet.rpc(self.url, method, params)

    def advance(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block."""
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine")


def start_anvil(accounts: int = 30) -> Anvil:
    anvil_binary()  # a missing anvil fails the test with the install hint
    proc, url = devnet.start_anvil("--accounts", str(accounts))
    return Anvil(url, proc, ANVIL_KEYS)


def stop_anvil(node: Anvil) -> None:
    devnet.stop(node.process)


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    node = start_anvil()
    try:
        yield node
    finally:
        stop_anvil(node)
