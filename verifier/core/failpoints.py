"""Failpoints: named places where a test can make a command stop as if interrupted (Ctrl-C),
to check that running it again resumes instead of repeating what it had sent.

Set BISECTML_FAILPOINT to a failpoint's name; nothing else reads it. Unset (always, outside
tests), `failpoint` does nothing."""

from __future__ import annotations

import os

FAILPOINT_ENV = "BISECTML_FAILPOINT"


def failpoint(name: str) -> None:
    """Raise KeyboardInterrupt here if the test asked for this failpoint."""
    if os.environ.get(FAILPOINT_ENV) == name:
        raise KeyboardInterrupt(f"failpoint {name}")
