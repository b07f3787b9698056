"""Shared fixtures: a real anvil node and a real IPFS node on 127.0.0.1, each started for the session
(the IPFS node only where a test asks for it) and always stopped."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from verifier.court import devnet
from verifier.court.devnet import ANVIL_KEYS, ANVIL_VERSION  # noqa: F401 - re-exported to the tests

TRACE_DIRS = "bisectml-trace-*"


# Property tests draw the same examples on every run (a seed derived from each test), so the
# suite passes or fails the same way everywhere; HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance on a library's deprecated lazy objects warns
        owned = {o.dir.name for o in gc.get_objects() if isinstance(o, Trace) and o.dir is not None}
    left = sorted(p.name for p in Path(tempfile.gettempdir()).glob(TRACE_DIRS) if p.name not in owned)
    assert not left, f"{len(left)} trace directories left in the temporary folder: {left[:5]}"


@pytest.fixture(autouse=True)
def fresh_storage_traces() -> Iterator[None]:
    """titanoboa describes a reverting contract by decoding every storage key ever written at its
    address, by the layout of the contract there now. Anchors rewind nonces, so an address is
    reused by contracts of other layouts across tests, and a key of another layout breaks the
    description (and the test) instead of the revert. Each test starts with no keys written."""
    boa = sys.modules.get("boa")
    if boa is not None:
        boa.env.sstore_trace.clear()
        boa.env.sha3_trace.clear()
    yield


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


# -- a real IPFS node (js-ipfs, pinned in .ci/package.json), for the content tests ----------------

IPFS_VERSION = "0.66.1"  # the `ipfs` package pinned in .ci/package.json
JSIPFS = devnet.CHECKOUT / ".ci" / "node_modules" / ".bin" / "jsipfs"


@dataclass
class IpfsNode:
    api: str  # the Kubo-compatible RPC API (/api/v0)
    gateway: str  # the HTTP gateway (/ipfs/{cid})
    process: subprocess.Popen
    log: Path

    def rpc(self, command: str, **args: str) -> dict:
        """One RPC API call (always POST, as Kubo requires), its JSON answer; CIDs in base32, as
        bisectml writes them."""
        query = urllib.parse.urlencode({"cid-base": "base32", **args})
        with urllib.request.urlopen(urllib.request.Request(f"{self.api}/api/v0/{command}?{query}", b""), timeout=10) as r:
            return json.loads(r.read())


def _free_ports(n: int) -> list[int]:
    """`n` distinct free ports on 127.0.0.1 (held together while picked, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def start_ipfs(directory: Path, seconds: float = 60.0) -> IpfsNode:
    """Start js-ipfs offline on 127.0.0.1 with a fresh repo in `directory` and wait until both its
    API and its gateway answer. Fails the test with the install hint when it is not installed."""
    if not JSIPFS.exists():
        pytest.fail(f"js-ipfs is not installed; {devnet.INSTALL_HINT}.")
    api_port, gateway_port, grpc_port = _free_ports(3)
    config = {
        "Addresses": {
            "API": f"/ip4/127.0.0.1/tcp/{api_port}",
            "Gateway": f"/ip4/127.0.0.1/tcp/{gateway_port}",
            "RPC": f"/ip4/127.0.0.1/tcp/{grpc_port}",
            "Swarm": [],  # no peers: everything stays on loopback
            "Delegates": [],
        },
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
    }
    (directory / "config.json").write_text(json.dumps(config))
    log = directory / "ipfs.log"
    argv = [str(JSIPFS), "daemon", "--offline", "--enable-preload=false", "--init-profile", "test",
            "--init-config", str(directory / "config.json")]  # fmt: skip
    env = os.environ | {"IPFS_PATH": str(directory / "repo")}
    with open(log, "wb") as out:  # the child keeps its own handle
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    node = IpfsNode(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{gateway_port}", proc, log)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop_ipfs(node)
            pytest.fail(f"js-ipfs exited with code {proc.returncode} before it was ready: {log.read_text()[-2000:]}")
        try:
            node.rpc("id")
            socket.create_connection(("127.0.0.1", gateway_port), timeout=1).close()
            return node
        except OSError:
            time.sleep(0.1)
    stop_ipfs(node)
    pytest.fail(f"js-ipfs did not answer within {seconds:.0f} s: {log.read_text()[-2000:]}")


def stop_ipfs(node: IpfsNode) -> None:
    """Terminate the node's whole process group, then kill it if it lingers; always reaped."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, sig)
        try:
            node.process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def ipfs() -> Iterator[IpfsNode]:
    directory = Path(tempfile.mkdtemp(prefix="bisectml-ipfs-"))
    try:
        node = start_ipfs(directory)
        try:
            yield node
        finally:
            stop_ipfs(node)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
