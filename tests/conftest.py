"""Shared fixtures: a real anvil node on 127.0.0.1, started for the session and always stopped."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from verifier.court import devnet
from verifier.court.devnet import ANVIL_KEYS, ANVIL_VERSION  # noqa: F401 - re-exported to the tests

TRACE_DIRS = "bisectml-trace-*"


def pytest_configure(config: pytest.Config) -> None:
    """Each test process (each xdist worker) gets a temporary folder of its own, so what it
    leaves behind is its own doing; the session's last teardown checks it and removes it."""
    private = tempfile.mkdtemp(prefix="bisectml-tests-")
    os.environ["TMPDIR"] = private
    tempfile.tempdir = private
    config._bisectml_tmp = private  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    private = getattr(config, "_bisectml_tmp", None)
    if private:
        shutil.rmtree(private, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def no_trace_left_behind() -> Iterator[None]:
    """Resources have owners: every trace made without a directory is removed once its owner
    is done with it (close(), `with`, or the finalizer when it is collected). A trace still
    alive here (the last test's fixtures) is removed by its finalizer at exit, which
    tests/app/test_cli.py checks for whole processes; a directory no live trace owns is a leak."""
    yield
    from verifier.engine.trace import Trace

    gc.collect()
    owned = {o.dir.name for o in gc.get_objects() if isinstance(o, Trace)}
    left = sorted(p.name for p in Path(tempfile.gettempdir()).glob(TRACE_DIRS) if p.name not in owned)
    assert not left, f"{len(left)} trace directories left in the temporary folder: {left[:5]}"


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
