"""A chain session for the command line (the chain, the signing account, the recorded
deployment), the recorded deployments file, and the units the commands read and print:
amounts in BOND (18 decimals), durations, times.

Amounts are integers in the token's base units (10^-18 BOND); durations are seconds; times
are the chain's block timestamps, never the local clock (a dev chain's clock may be moved).
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any

from verifier.core.errors import BisectmlError
from verifier.core.paths import home
from verifier.court.chain import KEY_ENV, Chain, ChainError, Deployment
from verifier.court.play import Court

UNIT = 10**18  # base units per BOND (the token has 18 decimals)
SYMBOL = "BOND"
ZERO_ADDRESS = "0x" + "00" * 20


class CommandError(BisectmlError, ValueError):
    """Bad input, or a request refused because it would hurt the user (exit code 2)."""


# -- units ------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)?\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_amount(text: str, what: str = "amount") -> int:
    """'10' or '2.5' BOND, or '123wei' in base units, as base units."""
    s = text.strip().lower().replace("_", "")
    try:
        if s.endswith("wei"):
            value = int(s[:-3])
        else:
            d = Decimal(s.removesuffix("bond").strip()) * UNIT
            if d != d.to_integral_value():
                raise ValueError
            value = int(d)
    except (ValueError, InvalidOperation):
        raise CommandError(f"{what} '{text}' is not an amount; give BOND like 10 or 2.5, or base units like 5wei.") from None
    if value < 0:
        raise CommandError(f"{what} '{text}' is negative; give a positive amount.")
    return value


def parse_duration(text: str, what: str = "duration") -> int:
    """'86400', '90s', '30m', '6h', '1d' or '2w' as seconds."""
    m = _DURATION.match(text)
    if not m:
        raise CommandError(f"{what} '{text}' is not a duration; give seconds like 86400 or 1d, 6h, 30m.")
    return int(m.group(1)) * _SECONDS[(m.group(2) or "s").lower()]


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)


def parse_size(text: str, what: str = "size") -> int:
    """'1073741824', '500M', '2G' or '1GiB' as bytes (K, M, G, T are powers of 1,024)."""
    m = _SIZE.match(text)
    if not m or int(m.group(1)) == 0:
        raise CommandError(f"{what} '{text}' is not a positive size; give bytes like 1073741824 or 500M, 2G.")
    unit = (m.group(2) or "b")[0].lower()
    return int(m.group(1)) << {"b": 0, "k": 10, "m": 20, "g": 30, "t": 40}[unit]


def format_amount(value: int) -> str:
    whole, frac = divmod(int(value), UNIT)
    text = f"{whole:,}" + (f".{frac:018d}".rstrip("0") if frac else "")
    return f"{text} {SYMBOL}"


def format_duration(seconds: int) -> str:
    seconds = int(seconds)
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, n in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= n:
            parts.append(f"{seconds // n}{unit}")
            seconds %= n
    return " ".join(parts[:2])


def format_time(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(timestamp)))


def hex32(b: bytes) -> str:
    return "0x" + bytes(b).hex()


# -- sessions ---------------------------------------------------------------------------------


def deployments_path() -> Path:
    return home() / "deployments.json"


@dataclass
class Session:
    """A chain, the account signing for this command, and the suite recorded for the chain."""

    chain: Chain
    embedded: bool = False
    deployment: Deployment | None = None

    @cached_property
    def court(self) -> Court:
        if self.deployment is None:
            raise CommandError("no deployment loaded; run `bisectml deploy` first.")
        return Court(self.chain, self.deployment)

    @property
    def account(self) -> str:
        return self.chain.account

    def now(self) -> int:
        """The chain's time: the latest block's timestamp."""
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])


def open_session(
    rpc_url: str | None,
    key_file: str | os.PathLike[str] | None,
    *,
    command: str,
    need_key: bool = True,
    embedded_ok: bool = False,
    need_deployment: bool = True,
) -> Session:
    """Connect for one command. Without an RPC URL, only commands that make sense on a
    throwaway chain (`embedded_ok`) run, on the in-process chain; the others explain."""
    if not rpc_url:
        if not embedded_ok:
            raise CommandError(
                f"`bisectml {command}` works on state that earlier commands left on a chain; "
                "pass --rpc-url or set BISECTML_RPC_URL."
            )
        return Session(Chain.embedded(), embedded=True)
    if need_key or key_file is not None or os.environ.get(KEY_ENV):
        chain = Chain.connect(rpc_url, key_file=key_file)
        chain.journal = _journal(chain)
    else:
        chain = Chain.connect(rpc_url, address=ZERO_ADDRESS)  # read-only: calls come from address zero
    session = Session(chain)
    if need_deployment:
        session.deployment = load_deployment(chain)
    return session


def _journal(chain: Chain) -> Any:
    """What this account's commands sent on this chain: an interrupted one resumes, not repeats."""
    from verifier.app.journal import SendJournal, journal_path

    def note(message: str) -> None:
        print(f"note: {message}", file=sys.stderr)

    return SendJournal(chain.w3, chain.account, journal_path(chain.chain_id, chain.account), note)


def load_deployment(chain: Chain) -> Deployment:
    d = Deployment.load(chain.chain_id, deployments_path())
    if not chain.w3.eth.get_code(d.addresses["Tasks"]):
        raise ChainError(
            f"no contract at the recorded Tasks address {d.addresses['Tasks']} on chain {chain.chain_id} "
            "(was the node reset?); run `bisectml deploy` again."
        )
    return d


def as_record(names: tuple[str, ...], values: Any) -> dict[str, Any]:
    return dict(zip(names, values))


def event_logs(event: Any, receipt: Any) -> list[Any]:
    from web3.logs import DISCARD

    return list(event().process_receipt(receipt, errors=DISCARD))
