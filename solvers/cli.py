"""`bisectml solver ...` (filled in by the solver daemon)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run a solver: take tasks, post claims, defend them, collect.", no_args_is_help=True)
