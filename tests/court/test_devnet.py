"""The anvil that tests and benchmarks start (verifier.court.devnet): its old block states go to a
directory of its own, and `stop` removes it. Terminated anvil leaves that cache behind, gigabytes
after a long test: the suite once filled a disk with them."""

from __future__ import annotations

import os

import pytest

from verifier.court import devnet


def test_stop__removes_the_state_cache_anvil_wrote() -> None:
    if devnet.anvil_binary() is None:
        pytest.fail(f"anvil is not installed; {devnet.INSTALL_HINT}.")
    proc, url = devnet.start_anvil()
    try:
        cache = devnet._STATE_CACHES[proc.pid]
        # past the blocks anvil keeps in memory, each with a change of state: it writes them out
        for i in range(30):
            devnet.rpc(url, "anvil_setBalance", ["0x" + "11" * 20, hex(10**18 + i)])
            devnet.rpc(url, "anvil_mine", [hex(100)])
        written = [os.path.join(d, f) for d, _, files in os.walk(cache) for f in files]
        assert written, "anvil wrote no state where --cache-path told it to"
    finally:
        devnet.stop(proc)
    assert proc.returncode is not None
    assert not os.path.exists(cache) and proc.pid not in devnet._STATE_CACHES
