"""`bisectml challenger ...`: run the watchtower, stop it, show what it has sent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from solvers.cli import (
    BumpAfter,
    Cheat,
    ContentDir,
    DataDir,
    DeploymentFile,
    KeyFile,
    MaxFeeGwei,
    MaxTicks,
    MinReward,
    NoMarket,
    Observe,
    Poll,
    Programs,
    ProofGrace,
    RpcUrl,
    TraceBudget,
    config,
)

app = typer.Typer(help="Run a challenger watchtower: re-execute claims, dispute wrong ones.", no_args_is_help=True)

DEFAULT_DIR = Path(os.path.expanduser("~/.bisectml/challenger"))


@app.command()
def watch(
    program: Programs = None,
    data_dir: DataDir = DEFAULT_DIR,
    rpc_url: RpcUrl = "http://127.0.0.1:8545",
    key_file: KeyFile = None,
    deployment: DeploymentFile = None,
    observe: Observe = False,
    poll: Poll = 1.0,
    min_reward: MinReward = 0,
    cheat: Cheat = None,
    trace_budget: TraceBudget = 5.0,
    proof_grace: ProofGrace = 30,
    max_ticks: MaxTicks = 0,
    content_dir: ContentDir = None,
    no_market: NoMarket = False,
    bump_after: BumpAfter = 60.0,
    max_fee_gwei: MaxFeeGwei = None,
) -> None:
    """Re-execute every live claim of the programs you serve; challenge wrong ones and win.

    Runs until SIGINT/SIGTERM; logs JSON lines to stderr and to DATA_DIR/daemon.jsonl
    (`wrong_claim`, `game_lost` and other alerts have "level": "alert").
    Exit codes: 0 stopped (or already running), 2 refused (no key, no funds, bad options).

    Example: bisectml challenger watch --rpc-url http://127.0.0.1:8545 --key-file key.txt --program mlp_train --data-dir ./tower
    """
    from challengers.watchtower import Watchtower
    from verifier.daemon import main

    cfg = config(rpc_url, key_file, program, data_dir, deployment, observe, poll, min_reward, cheat, trace_budget,
                 proof_grace, max_ticks, content_dir, no_market, bump_after, max_fee_gwei)  # fmt: skip
    raise typer.Exit(main(Watchtower, cfg))


@app.command()
def stop(data_dir: DataDir = DEFAULT_DIR) -> None:
    """Stop the watchtower serving DATA_DIR (SIGTERM; it finishes the transaction in flight). Idempotent.

    Example: bisectml challenger stop --data-dir ./tower
    """
    from verifier.daemon import stop as stop_daemon

    print(json.dumps(stop_daemon(data_dir)))


@app.command()
def status(data_dir: DataDir = DEFAULT_DIR) -> None:
    """Show whether the watchtower runs and what its store has sent, as JSON.

    Example: bisectml challenger status --data-dir ./tower
    """
    from verifier.daemon import status as daemon_status

    print(json.dumps(daemon_status(data_dir)))
