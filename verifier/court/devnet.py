"""A local anvil node for tests and benchmarks: the pinned binary, its public development keys,
a start that waits until the node answers, and plain JSON-RPC calls (127.0.0.1 only).

The keys are anvil's well-known development accounts (the "test test ... junk" mnemonic):
anyone can spend from them on any chain, so they serve only local throwaway nodes.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ANVIL_VERSION = "1.7.1"  # pinned in .ci/package.json
ANVIL_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
]
CHECKOUT = Path(__file__).resolve().parents[2]  # where `npm ci --prefix .ci` installs anvil
INSTALL_HINT = "run `npm ci --prefix .ci` (the README's test command does)"


def anvil_binary() -> str | None:
    """The pinned anvil of this checkout's .ci, else one on PATH; None if there is neither."""
    local = CHECKOUT / ".ci" / "node_modules" / ".bin" / "anvil"
    return str(local) if local.exists() else shutil.which("anvil")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    """One JSON-RPC call, without web3 (also while web3 would be mid-retry)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["result"]


# anvil's pid -> the directory it writes old block states to; anvil leaves it behind when it is
# terminated (gigabytes after a long test), so `stop` removes it
_STATE_CACHES: dict[int, str] = {}


def start_anvil(*args: str, port: int | None = None, seconds: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Start anvil on 127.0.0.1 with `args` and wait until it answers: (process, url).
    Raises RuntimeError if it is not installed, exits, or stays silent for `seconds`. Stop it
    with `stop`, which also removes the directory it keeps old states in."""
    binary = anvil_binary()
    if binary is None:
        raise RuntimeError(f"anvil is not installed; {INSTALL_HINT}.")
    port = free_port() if port is None else port
    # where anvil itself would put them: on disk (a state cache can outgrow a tmpfs /tmp)
    parent = Path.home() / ".foundry" / "anvil" / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    cache = tempfile.mkdtemp(prefix="bisectml-", dir=parent)
    argv = [binary, "--host", "127.0.0.1", "--port", str(port), "--silent", "--cache-path", cache, *args]
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        shutil.rmtree(cache, ignore_errors=True)
        raise
    _STATE_CACHES[proc.pid] = cache
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop(proc)
            raise RuntimeError(f"anvil exited with code {proc.returncode} before it was ready")
        try:
            rpc(url, "eth_chainId")
            return proc, url
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"anvil did not answer within {seconds:.0f} s")


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate, then kill if it lingers; always reaped, and its state cache removed."""
    try:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    finally:
        cache = _STATE_CACHES.pop(proc.pid, None)
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)


__all__ = ["ANVIL_KEYS", "ANVIL_VERSION", "anvil_binary", "free_port", "rpc", "start_anvil", "stop"]
