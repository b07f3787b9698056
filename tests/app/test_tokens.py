"""`bisectml token balance|transfer|approve` and `deploy --fund` against anvil: human units in,
base units in JSON, transfers checked before anything is sent, the faucet on dev chains only."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
UNIT = 10**18
NEWCOMER = Account.from_key("0x" + "42" * 32)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BISECTML_HOME", str(tmp_path / "home"))
    for var in ("BISECTML_RPC_URL", "BISECTML_PRIVATE_KEY"):
        monkeypatch.delenv(var, raising=False)


def _key(tmp_path, key: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(key)
    path.chmod(0o600)
    return str(path)


def _ok(args: list[str]) -> dict:
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return json.loads(res.stdout)


def _refused(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_fund_then_balance_transfer_approve(anvil, tmp_path) -> None:
    rpc = ["--rpc-url", anvil.url]
    deployer = _key(tmp_path, anvil.keys[7], "deployer.key")
    out = _ok(["deploy", "--fund", NEWCOMER.address, "--mint", "50", *rpc, "--key-file", deployer])
    assert out["funded"] == [{"address": NEWCOMER.address, "bond": str(50 * UNIT), "ether": str(10 * UNIT)}]
    newcomer = _key(tmp_path, NEWCOMER.key.hex(), "newcomer.key")
    assert _ok(["token", "balance", NEWCOMER.address, *rpc])["bond"] == str(50 * UNIT)

    friend = Account.from_key("0x" + "43" * 32).address
    sent = _ok(["token", "transfer", friend, "12.5", *rpc, "--key-file", newcomer])
    assert sent["balance"] == str(int(37.5 * UNIT))
    assert _ok(["token", "balance", friend, *rpc])["bond"] == str(int(12.5 * UNIT))

    nonce = anvil.rpc("eth_getTransactionCount", [NEWCOMER.address, "latest"])
    line = _refused(["token", "transfer", friend, "1000", *rpc, "--key-file", newcomer])
    assert "holds 37.5 BOND" in line and "1,000 BOND" in line
    assert "is not an account address" in _refused(["token", "transfer", "0x1234", "1", *rpc, "--key-file", newcomer])
    assert anvil.rpc("eth_getTransactionCount", [NEWCOMER.address, "latest"]) == nonce

    approved = _ok(["token", "approve", "tasks", "5", *rpc, "--key-file", newcomer])
    assert approved["allowance"] == str(5 * UNIT)
    assert _ok(["token", "balance", *rpc, "--key-file", newcomer])["allowances"]["Tasks"] == str(5 * UNIT)


def test_fund__refused_off_development_chains_before_deploying(anvil, tmp_path, monkeypatch) -> None:
    """The faucet mints: on a chain that is not a dev chain it must refuse, and deploy nothing."""
    monkeypatch.setattr("verifier.app.commands.DEV_CHAIN_IDS", frozenset())
    deployer = _key(tmp_path, anvil.keys[6], "deployer.key")
    who = Account.from_key(anvil.keys[6]).address
    nonce = anvil.rpc("eth_getTransactionCount", [who, "latest"])
    line = _refused(["deploy", "--fund", NEWCOMER.address, "--rpc-url", anvil.url, "--key-file", deployer])
    assert "--fund is for development chains" in line
    assert anvil.rpc("eth_getTransactionCount", [who, "latest"]) == nonce


def test_version() -> None:
    from importlib.metadata import version

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"bisectml {version('bisectml')}"


def test_balance__maximum_allowance__shown_as_unlimited() -> None:
    """The daemons approve 2^256 - 1 once; a 78-digit BOND figure would read as a balance."""
    from verifier.app.tokens import describe

    rows = dict(describe({"address": "0x0", "bond": "0", "ether": "0", "allowances": {"Tasks": str(2**256 - 1), "Market": str(5 * UNIT)}}))
    assert rows["Tasks may pull"] == "unlimited" and rows["Market may pull"] == "5 BOND"
