"""`bisectml challenger ...`: run the watchtower, stop it, show what it has sent."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from solvers.cli import add_daemon_commands

app = typer.Typer(
    name="challenger", help="Run a challenger watchtower: re-execute claims, dispute wrong ones.", no_args_is_help=True
)

DEFAULT_DIR = Path(os.path.expanduser("~/.bisectml/challenger"))


def _watchtower() -> type:
    from challengers.watchtower import Watchtower

    return Watchtower


add_daemon_commands(
    app, "watch", _watchtower, DEFAULT_DIR, "watchtower",
    "Re-execute every revealed claim of the programs you serve; challenge wrong ones, win, collect.\n\n"
    '    Alerts (`wrong_claim`, `game_lost` and others) have "level": "alert" in the log.',
    "./tower",
)  # fmt: skip
