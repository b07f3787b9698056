"""The units the commands read and print: amounts in BOND (18 decimals), durations, sizes,
times; and the error for bad input. Imports nothing heavy, so that commands which never touch
a chain (trace, check) do not load one.

Amounts are integers in the token's base units (10^-18 BOND); durations are seconds; times
are the chain's block timestamps, never the local clock (a dev chain's clock may be moved).
"""

from __future__ import annotations

import re
import time
from decimal import Decimal, InvalidOperation

from verifier.core.errors import BisectmlError

UNIT = 10**18  # base units per BOND (the token has 18 decimals)
SYMBOL = "BOND"


class CommandError(BisectmlError, ValueError):
    """Bad input, or a request refused because it would hurt the user (exit code 2)."""


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


__all__ = [
    "SYMBOL",
    "UNIT",
    "CommandError",
    "format_amount",
    "format_duration",
    "format_time",
    "parse_amount",
    "parse_duration",
    "parse_size",
]
