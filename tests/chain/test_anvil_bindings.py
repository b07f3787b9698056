"""The bindings against a real node: anvil, over JSON-RPC, with signed transactions."""

from __future__ import annotations

import pytest

from verifier.chain import Chain, ChainError, Deployment, deploy_suite


def test_anvil__version_is_pinned(anvil) -> None:
    import subprocess

    from tests.conftest import ANVIL_VERSION, anvil_binary

    out = subprocess.run([anvil_binary(), "--version"], capture_output=True, text=True, timeout=30).stdout
    assert f"anvil Version: {ANVIL_VERSION}" in out


def test_anvil__deploy_and_record(anvil, tmp_path) -> None:
    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    d = deploy_suite(chain)
    assert set(d.addresses) >= {"Tasks", "Game", "Referee", "Token"}
    d.save(tmp_path / "deployments.json")
    again = Deployment.load(chain.chain_id, tmp_path / "deployments.json")
    assert again.addresses == d.addresses
    game = d.contracts(chain)["Game"]
    assert game.functions.referee().call() == d.addresses["Referee"]
    with pytest.raises(ChainError) as e:
        Deployment.load(999, tmp_path / "deployments.json")
    assert "bisectml deploy" in str(e.value)


def test_anvil__no_key__refused(anvil, monkeypatch) -> None:
    monkeypatch.delenv("BISECTML_PRIVATE_KEY", raising=False)
    with pytest.raises(ChainError) as e:
        Chain.connect(anvil.url)
    assert "--key-file" in str(e.value)


def test_anvil__unreachable_node__one_line_error() -> None:
    with pytest.raises(ChainError) as e:
        Chain.connect("http://127.0.0.1:9", key="0x" + "11" * 32)
    assert "cannot reach" in str(e.value) and "\n" not in str(e.value)
