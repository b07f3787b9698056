"""Signing keys as users keep them: a raw hex key file, an encrypted JSON keystore (the Web3
Secret Storage format geth, foundry's `cast wallet` and eth-account write), or the environment.

A keystore's password comes from BISECTML_KEY_PASSWORD, from the file BISECTML_KEY_PASSWORD_FILE
names, or from a prompt when a terminal is attached; never from the command line. A key file
that other users can read is used, with a warning.
"""

from __future__ import annotations

import getpass
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from verifier.core.errors import BisectmlError

KEY_ENV = "BISECTML_PRIVATE_KEY"

PASSWORD_ENV = "BISECTML_KEY_PASSWORD"
PASSWORD_FILE_ENV = "BISECTML_KEY_PASSWORD_FILE"


class KeyFileError(BisectmlError):
    """A key that cannot be read or decrypted; the message says what to do."""


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def exposed_to_others(path: Path) -> bool:
    """Whether group or other users may read or write the file (POSIX modes only)."""
    if os.name != "posix":
        return False
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def password_from_env() -> str | None:
    """The keystore password from BISECTML_KEY_PASSWORD or the file BISECTML_KEY_PASSWORD_FILE
    names; None if neither is set."""
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    if PASSWORD_FILE_ENV in os.environ:
        file = Path(os.environ[PASSWORD_FILE_ENV])
        try:
            return file.read_text().rstrip("\r\n")
        except OSError as e:
            raise KeyFileError(f"cannot read the password file {file}: {e.strerror}; check {PASSWORD_FILE_ENV}.") from None
    return None


def _password(path: Path, prompt: Callable[[str], str] | None) -> str:
    password = password_from_env()
    if password is not None:
        return password
    if prompt is not None:
        return prompt(f"password for {path}: ")
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"password for {path}: ")
    raise KeyFileError(
        f"{path} is an encrypted keystore; set {PASSWORD_ENV} or {PASSWORD_FILE_ENV}, or run in a terminal to be asked."
    )


def read_key_file(path: str | os.PathLike[str], prompt: Callable[[str], str] | None = None) -> str:
    """The private key in a key file: raw hex, or decrypted from a JSON keystore."""
    from eth_account import Account

    p = Path(path)
    try:
        text = p.read_text().strip()
    except OSError as e:
        raise KeyFileError(f"cannot read key file {p}: {e.strerror}; check the path.") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"{p} is not a key file (not text); give a hex key or a JSON keystore.") from None
    if exposed_to_others(p):
        _warn(f"key file {p} can be read by other users (mode {stat.S_IMODE(p.stat().st_mode):04o}); chmod 600 it.")
    if not text.startswith("{"):
        return text
    try:
        keystore = json.loads(text)
    except json.JSONDecodeError:
        raise KeyFileError(f"{p} looks like JSON but does not parse; give a hex key or a JSON keystore.") from None
    if not isinstance(keystore, dict) or not ("crypto" in keystore or "Crypto" in keystore):
        raise KeyFileError(f"{p} is JSON but not a keystore (no crypto section); give a hex key or a JSON keystore.")
    password = _password(p, prompt)
    try:
        return "0x" + bytes(Account.decrypt(keystore, password)).hex()
    except ValueError:
        raise KeyFileError(f"the password does not open {p}; check {PASSWORD_ENV} or the password you typed.") from None


def _create_private(p: Path) -> int:
    """A new file only its owner can read (mode 0600), never over an existing one."""
    try:
        return os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{p} exists; choose another path (a key file is never overwritten).") from None
    except OSError as e:
        raise KeyFileError(f"cannot create {p}: {e.strerror}; check the path.") from None


def write_keystore(path: str | os.PathLike[str], private_key: str | bytes, password: str) -> str:
    """Encrypt a key into a new keystore file (mode 0600, never over an existing file); its address."""
    from eth_account import Account

    if not password:
        raise KeyFileError("an empty password does not protect a keystore; choose one.")
    keystore = Account.encrypt(private_key, password)
    with os.fdopen(_create_private(Path(path)), "w") as f:
        json.dump(keystore, f)
    return Account.from_key(private_key).address


def write_raw_key(path: str | os.PathLike[str], private_key: str) -> str:
    """Write a key as hex into a new file (mode 0600, never over an existing file); its address."""
    from eth_account import Account

    with os.fdopen(_create_private(Path(path)), "w") as f:
        f.write(private_key + "\n")
    return Account.from_key(private_key).address


__all__ = ["KEY_ENV", "PASSWORD_ENV", "PASSWORD_FILE_ENV", "KeyFileError", "password_from_env", "read_key_file", "write_keystore", "write_raw_key"]
