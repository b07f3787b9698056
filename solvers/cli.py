"""`bisectml solver ...`: run the solver daemon, stop it, show what it has sent."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="solver", help="Run a solver: take tasks, post claims, defend them, collect.", no_args_is_help=True
)

RpcUrl = Annotated[
    str, typer.Option("--rpc-url", envvar="BISECTML_RPC_URL", help="JSON-RPC endpoint of the chain.")
]
KeyFile = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="A hex key file or an encrypted JSON keystore (password from BISECTML_KEY_PASSWORD, BISECTML_KEY_PASSWORD_FILE "
        "or a prompt), or set BISECTML_PRIVATE_KEY; never on argv.",
    ),
]
Programs = Annotated[
    list[str] | None,
    typer.Option(
        "--program",
        help="A program .onnx file (or bundled name) to serve; repeat for more. Without one, a task's program is "
        "fetched by the CID its poster logged (--ipfs-gateway), and the market's are rebuilt from the chain.",
    ),
]
ContentDir = Annotated[
    Path | None,
    typer.Option("--content-dir", help="Datasets and round features by content id (default: $BISECTML_HOME/content)."),
]
IpfsApi = Annotated[
    str | None,
    typer.Option("--ipfs-api", envvar="BISECTML_IPFS_API", help="IPFS node RPC API to fetch content from, e.g. http://127.0.0.1:5001."),
]
IpfsGateway = Annotated[
    str | None,
    typer.Option(
        "--ipfs-gateway", envvar="BISECTML_IPFS_GATEWAY",
        help="IPFS trustless gateway to fetch content from (checked against its CID), e.g. http://127.0.0.1:8080.",
    ),
]
NoMarket = Annotated[bool, typer.Option("--no-market", help="Do not serve the market's tasks.")]
DataDir = Annotated[Path, typer.Option("--data-dir", help="Store, traces and logs live here; one daemon per directory.")]
DeploymentFile = Annotated[
    Path | None,
    typer.Option("--deployment", help="deployments.json naming the contracts (default: $BISECTML_HOME/deployments.json)."),
]
Observe = Annotated[bool, typer.Option("--observe", help="Log and alert what would be sent; send nothing.")]
Poll = Annotated[float, typer.Option("--poll", min=0.01, help="Seconds between ticks.")]
MinReward = Annotated[int, typer.Option("--min-reward", min=0, help="Ignore tasks paying less (token base units).")]
MinChallengerBond = Annotated[
    int,
    typer.Option(
        "--min-challenger-bond", min=0,
        help="Solver: ignore tasks whose challenger bond is below this (token base units); each challenge the solver "
        "wins pays it the bond less the burn, which should cover its gas to play a game.",
    ),
]  # fmt: skip
Cheat = Annotated[
    str | None,
    typer.Option(
        "--cheat",
        help="TESTS AND DEMOS ONLY: play dishonestly (wrong-element:t,n[,e[,d]], wrong-boundary:t, "
        "final-output, final-root, silent).",
    ),
]
TraceBudget = Annotated[
    float, typer.Option("--trace-budget", min=0.05, help="Seconds of trace computation per tick, after urgent moves.")
]
ProofGrace = Annotated[
    int, typer.Option("--proof-grace", min=0, help="Chain seconds before sending a proof the other side has not sent.")
]
MaxTicks = Annotated[int, typer.Option("--max-ticks", min=0, hidden=True, help="Stop after N ticks (tests).")]
BumpAfter = Annotated[
    float,
    typer.Option("--bump-after", min=1.0, help="Seconds a transaction may stay unmined before it is re-sent with higher fees."),
]
WatchAddress = Annotated[
    str | None,
    typer.Option("--address", help="With --observe and no key: the account to watch as (dry runs only, nothing signed)."),
]
MetricsAt = Annotated[
    str | None,
    typer.Option("--metrics", help="Serve Prometheus metrics on HOST:PORT (e.g. 127.0.0.1:9101); off by default."),
]
MaxFeeGwei = Annotated[
    float | None,
    typer.Option("--max-fee-gwei", min=0.0, help="Never bid more than this per gas when raising fees (default: no cap)."),
]


def config(rpc_url, key_file, program, data_dir, deployment, observe, poll, min_reward, cheat, trace_budget,  # noqa: ANN001, ANN201
           proof_grace, max_ticks, content_dir=None, no_market=False, bump_after=60.0, max_fee_gwei=None,
           address=None, metrics=None, ipfs_api=None, ipfs_gateway=None, min_challenger_bond=0):  # fmt: skip
    from verifier.daemon.loop import Config

    return Config(
        rpc_url=rpc_url, data_dir=data_dir, programs=list(program or []), key_file=str(key_file) if key_file else None,
        deployment=deployment, observe=observe, poll=poll, min_reward=min_reward, cheat=cheat,
        trace_budget=trace_budget, proof_grace=proof_grace, max_ticks=max_ticks,
        market=not no_market, content_dir=content_dir, bump_after=bump_after, max_fee_gwei=max_fee_gwei,
        address=address, metrics=metrics, ipfs_api=ipfs_api, ipfs_gateway=ipfs_gateway,
        min_challenger_bond=min_challenger_bond,
    )  # fmt: skip


def add_daemon_commands(
    app: typer.Typer, verb: str, load: Callable[[], type], default_dir: Path, what: str, doc: str, example_dir: str,
    example_args: str = "--program mlp_train ", serves_tasks: bool = True,
) -> None:
    """Register `verb` (run the daemon), `stop` and `status` on `app`: the solver's and the
    watchtower's command lines differ only in these arguments. A daemon that serves no tasks
    (`serves_tasks=False`, the loop's keeper) takes only the options of the machinery."""
    group = app.info.name or ""

    def start(
        program: Programs = None,
        data_dir: DataDir = default_dir,
        rpc_url: RpcUrl = "http://127.0.0.1:8545",
        key_file: KeyFile = None,
        deployment: DeploymentFile = None,
        observe: Observe = False,
        poll: Poll = 1.0,
        min_reward: MinReward = 0,
        min_challenger_bond: MinChallengerBond = 0,
        cheat: Cheat = None,
        trace_budget: TraceBudget = 5.0,
        proof_grace: ProofGrace = 30,
        max_ticks: MaxTicks = 0,
        content_dir: ContentDir = None,
        no_market: NoMarket = False,
        bump_after: BumpAfter = 60.0,
        max_fee_gwei: MaxFeeGwei = None,
        address: WatchAddress = None,
        metrics: MetricsAt = None,
        ipfs_api: IpfsApi = None,
        ipfs_gateway: IpfsGateway = None,
    ) -> None:
        from verifier.daemon.loop import main

        cfg = config(rpc_url, key_file, program, data_dir, deployment, observe, poll, min_reward, cheat, trace_budget,
                     proof_grace, max_ticks, content_dir, no_market, bump_after, max_fee_gwei, address,
                     metrics, ipfs_api, ipfs_gateway, min_challenger_bond)  # fmt: skip
        raise typer.Exit(main(load(), cfg))

    def lean_start(
        data_dir: DataDir = default_dir,
        rpc_url: RpcUrl = "http://127.0.0.1:8545",
        key_file: KeyFile = None,
        deployment: DeploymentFile = None,
        observe: Observe = False,
        poll: Poll = 1.0,
        max_ticks: MaxTicks = 0,
        bump_after: BumpAfter = 60.0,
        max_fee_gwei: MaxFeeGwei = None,
        address: WatchAddress = None,
        metrics: MetricsAt = None,
    ) -> None:
        # `start` with the task-serving options at their defaults; no_market: it serves no task,
        # so no program source is built at start
        start(data_dir=data_dir, rpc_url=rpc_url, key_file=key_file, deployment=deployment, observe=observe,
              poll=poll, max_ticks=max_ticks, no_market=True, bump_after=bump_after, max_fee_gwei=max_fee_gwei,
              address=address, metrics=metrics)  # fmt: skip

    # a daemon that serves no task runs the same command without the task-serving options
    run = start if serves_tasks else lean_start

    def stop(data_dir: DataDir = default_dir) -> None:
        from verifier.daemon.loop import stop as stop_daemon

        print(json.dumps(stop_daemon(data_dir)))

    def status(data_dir: DataDir = default_dir) -> None:
        from verifier.daemon.loop import status as daemon_status

        print(json.dumps(daemon_status(data_dir)))

    run.__doc__ = (
        f"{doc}\n\n    Runs until SIGINT/SIGTERM; logs JSON lines to stderr and to DATA_DIR/daemon.jsonl.\n"
        "    Exit codes: 0 stopped (or already running), 2 refused (no key, no funds, bad options).\n\n"
        f"    Example: bisectml {group} {verb} --rpc-url http://127.0.0.1:8545 --key-file key.txt "
        f"{example_args}--data-dir {example_dir}\n    "
    )
    stop.__doc__ = (
        f"Stop the {what} serving DATA_DIR (SIGTERM; it finishes the transaction in flight). Idempotent.\n\n"
        f"    Example: bisectml {group} stop --data-dir {example_dir}\n    "
    )
    status.__doc__ = (
        f"Show whether the {what} runs and what its store has sent, as JSON.\n\n"
        f"    Example: bisectml {group} status --data-dir {example_dir}\n    "
    )
    app.command(verb)(run)
    app.command("stop")(stop)
    app.command("status")(status)


def _solver() -> type:
    from solvers.daemon import Solver

    return Solver


add_daemon_commands(
    app, "run", _solver, Path(os.path.expanduser("~/.bisectml/solver")), "daemon",
    "Claim tasks whose program you serve, defend every claim, settle and collect.", "./solver",
)  # fmt: skip
