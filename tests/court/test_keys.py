"""Keys as users keep them (verifier/court/keys.py): encrypted JSON keystores in eth-account's
format, raw hex files, warnings for files others can read, and `bisectml key new/address`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from cli import app
from verifier.court.chain import Chain
from verifier.court.keys import (
    PASSWORD_ENV,
    PASSWORD_FILE_ENV,
    KeyFileError,
    read_key_file,
    write_keystore,
)

KEY = "0x" + "11" * 32
ADDRESS = Account.from_key(KEY).address
runner = CliRunner()


def _keystore(tmp_path: Path, password: str = "correct horse", mode: int = 0o600) -> Path:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(Account.encrypt(KEY, password)))
    path.chmod(mode)
    return path


def test_keystore__round_trip_with_the_password_from_env_or_file(tmp_path, monkeypatch) -> None:
    path = _keystore(tmp_path)
    monkeypatch.setenv(PASSWORD_ENV, "correct horse")
    assert read_key_file(path) == KEY
    monkeypatch.delenv(PASSWORD_ENV)
    (tmp_path / "pw").write_text("correct horse\n")
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(tmp_path / "pw"))
    assert read_key_file(path) == KEY
    monkeypatch.delenv(PASSWORD_FILE_ENV)
    assert read_key_file(path, prompt=lambda _: "correct horse") == KEY


def test_keystore__wrong_or_missing_password__one_line(tmp_path, monkeypatch) -> None:
    path = _keystore(tmp_path)
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(KeyFileError, match="the password does not open") as e:
        read_key_file(path)
    assert "\n" not in str(e.value)
    monkeypatch.delenv(PASSWORD_ENV)
    monkeypatch.setattr("sys.stdin", None)
    with pytest.raises(KeyFileError, match=f"set {PASSWORD_ENV} or {PASSWORD_FILE_ENV}"):
        read_key_file(path)


def test_key_file_others_can_read__warns(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "correct horse")
    read_key_file(_keystore(tmp_path, mode=0o600))
    assert "warning" not in capsys.readouterr().err
    raw = tmp_path / "raw.key"
    raw.write_text(KEY + "\n")
    raw.chmod(0o644)
    assert read_key_file(raw) == KEY
    assert "can be read by other users (mode 0644); chmod 600 it" in capsys.readouterr().err


def test_json_that_is_not_a_keystore__refused(tmp_path) -> None:
    (tmp_path / "k.json").write_text('{"address": "0x00"}')
    (tmp_path / "k.json").chmod(0o600)
    with pytest.raises(KeyFileError, match="not a keystore"):
        read_key_file(tmp_path / "k.json")


def test_write_keystore__mode_0600_and_never_over_a_file(tmp_path) -> None:
    path = tmp_path / "new.json"
    assert write_keystore(path, KEY, "pw") == ADDRESS
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="exists"):
        write_keystore(path, "0x" + "22" * 32, "pw")
    assert path.read_bytes() == before
    with pytest.raises(KeyFileError, match="empty password"):
        write_keystore(tmp_path / "other.json", KEY, "")


def test_cli_key_new_then_address(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    res = runner.invoke(app, ["key", "new", "--out", str(tmp_path / "me.json"), "--json"])
    assert res.exit_code == 0, res.output
    made = json.loads(res.stdout)
    assert made["encrypted"] is True
    res = runner.invoke(app, ["key", "address", "--key-file", str(tmp_path / "me.json"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["address"] == made["address"]
    again = runner.invoke(app, ["key", "new", "--out", str(tmp_path / "me.json")])
    assert again.exit_code != 0 and "exists" in again.output
    res = runner.invoke(app, ["key", "new", "--raw", "--out", str(tmp_path / "raw.key"), "--json"])
    assert res.exit_code == 0 and oct((tmp_path / "raw.key").stat().st_mode & 0o777) == "0o600"
    assert Account.from_key((tmp_path / "raw.key").read_text().strip()).address == json.loads(res.stdout)["address"]


def test_chain_connect__signs_with_a_keystore(anvil, tmp_path, monkeypatch) -> None:
    """What every command and daemon does with --key-file, against a real node."""
    monkeypatch.setenv(PASSWORD_ENV, "correct horse")
    chain = Chain.connect(anvil.url, key_file=_keystore(tmp_path))
    assert chain.account == ADDRESS


def test_chain_connect__wrong_password__chain_error_in_one_line(anvil, tmp_path, monkeypatch) -> None:
    from verifier.court.chain import ChainError

    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(ChainError, match="the password does not open") as e:
        Chain.connect(anvil.url, key_file=_keystore(tmp_path))
    assert "\n" not in str(e.value)
