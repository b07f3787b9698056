"""`bisectml challenger ...` (filled in by the watchtower)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run a challenger watchtower: re-execute claims, dispute wrong ones.", no_args_is_help=True)
