"""The `bisectml` command: thin verbs over the packages (verifier, solvers, challengers).

One module on purpose: it is the command's table of verbs and their options; the logic lives
in verifier/app/, the shared helpers in verifier/app/console.py."""

from __future__ import annotations

import enum
import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from verifier.app.console import (
    EXIT_LOST,
    AsJson,
    ContentDir,
    IpfsApi,
    IpfsGateway,
    KeyFile,
    OneLineErrors,
    RpcUrl,
    amount_text,
    chain_errors,
    cli_session,
    due_in,
    emit,
    err,
    fail,
    kv_table,
    note_embedded,
    out,
    reflow,
    say,
)

if TYPE_CHECKING:
    from rich.progress import Progress

app = typer.Typer(
    name="bisectml",
    help="bisectml: an ML marketplace whose computations are verified by a bisection game.",
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"bisectml {version('bisectml')}")
        except PackageNotFoundError:
            print("bisectml (not installed; run from a checkout)")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version)
    ] = False,
    threads: Annotated[
        str | None,
        typer.Option("--threads", help="Threads for the engine's kernels (default: $BISECTML_THREADS, else 1).", show_default=False),
    ] = None,
) -> None:
    """bisectml: an ML marketplace whose computations are verified by a bisection game."""
    from verifier.core.errors import BisectmlError
    from verifier.engine.memory import keep_freed_memory
    from verifier.engine.threads import set_threads, thread_count

    keep_freed_memory()
    try:
        set_threads(thread_count(threads))
    except BisectmlError as e:
        fail(str(e))


def _register_daemons() -> None:
    from challengers.cli import app as challenger_app
    from solvers.cli import app as solver_app

    app.add_typer(solver_app, name="solver")
    app.add_typer(challenger_app, name="challenger")
    from verifier.app.loop_cli import register as register_loop
    from verifier.app.market_cli import register

    register(app)
    register_loop(app)


_register_daemons()

COMPLETE_VAR = "_BISECTML_COMPLETE"
if COMPLETE_VAR in os.environ:
    # a shell asking for completions: typer's shell classes are registered only then, since
    # registering them at every start (typer's add_completion) costs about a second
    from typer._completion_classes import completion_init

    completion_init()


@app.command("completion")
def completion(shell: Annotated[str, typer.Argument(help="bash, zsh, fish or powershell.")]) -> None:
    """Print the shell completion script for SHELL.

    Example: eval "$(bisectml completion bash)"   (or add that line to ~/.bashrc)
    """
    from typer._completion_shared import get_completion_script

    if shell not in ("bash", "zsh", "fish", "powershell"):
        fail(f"no completion for the shell '{shell}'; use bash, zsh, fish or powershell.")
    print(get_completion_script(prog_name="bisectml", complete_var=COMPLETE_VAR, shell=shell))


def resolve_program(name_or_path: str) -> Path:
    """A path to an .onnx file, or the name of a program bundled in onnx_models."""
    from onnx_models.files import bundled_names, find_program

    path = find_program(name_or_path)
    if path is not None:
        return path
    names = bundled_names()
    fail(f"no file or bundled program named '{name_or_path}'; give a path or one of: {', '.join(names) or '(none built)'}.")


def _progress(label: str, enabled: bool) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not enabled,
        transient=True,
    )


@app.command()
def demo(
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps (default: the program's 1000).")] = None,
) -> None:
    """Watch a cheater get caught: deploy, post a training task, a wrong claim, the dispute
    narrowed step -> node -> element on-chain, the slash, and the honest claim paid.
    Runs on an in-process chain; nothing else to start.

    Example: bisectml demo
    """
    from verifier.app.demo import run
    from verifier.core.errors import BisectmlError

    try:
        raise typer.Exit(run(out, steps))
    except BisectmlError as e:
        fail(str(e))


@app.command()
def check(
    model: Annotated[str, typer.Argument(help="An .onnx file or a bundled program name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Check that a model or program is inside the integer profile, and summarize it.

    Example: bisectml check mlp_train
    """
    from verifier.core.errors import BisectmlError
    from verifier.engine.graph import load_graph, read_model
    from verifier.engine.program import META_STATE, load_program

    path = resolve_program(model)
    try:
        proto = read_model(path)
        is_program = any(p.key == META_STATE for p in proto.metadata_props)
        if is_program:
            program = load_program(proto)
            graph = program.graph
        else:
            graph = load_graph(proto)
    except BisectmlError as e:
        fail(str(e))
    ops: dict[str, int] = {}
    for n in graph.nodes:
        ops[n.op.name] = ops.get(n.op.name, 0) + 1
    summary = {
        "file": str(path),
        "kind": "program" if is_program else "graph",
        "opset": graph.opset,
        "nodes": len(graph.nodes),
        "slots": graph.n_slots,
        "ops": dict(sorted(ops.items())),
    }
    if is_program:
        summary |= {"steps": program.steps, "program_id": "0x" + program.id.hex(), "graph_root": "0x" + program.graph_root.hex()}
    if as_json:
        print(json.dumps(summary))
        return
    out.print(f"[green]ok[/green] {path} is inside the integer profile")
    for k, v in summary.items():
        if k != "file":
            out.print(f"  {k:<11} {v}")


@app.command("import")
def import_(
    model: Annotated[Path, typer.Argument(help="A float .onnx model (torch.onnx.export, skl2onnx, tf2onnx).")],
    calibration: Annotated[
        Path, typer.Option("--calibration", help="Rows that set the scales: .npz (X, y), .npy or .csv.")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the integer model.")],
    held_out: Annotated[
        Path | None, typer.Option("--held-out", help="Rows to report accuracy on (.npz with y for a metric).")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", help="Rows per step of the programs built from it.", min=1)] = 32,
    max_loss: Annotated[
        float | None, typer.Option("--max-loss", help="Fail (writing nothing) if accuracy drops by more points.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Import a float ONNX model as an exact integer model, and report what it costs in accuracy.

    Example: bisectml import model.onnx --calibration train.npz --held-out test.npz --out model.int.onnx
    """
    from verifier.app.bring import import_model
    from verifier.core.errors import BisectmlError

    try:
        result = import_model(str(model), str(calibration), str(out_file), str(held_out) if held_out else None, batch, max_loss)
    except BisectmlError as e:
        fail(str(e))
    if as_json:
        print(json.dumps(result))
        return
    out.print(f"[green]ok[/green] wrote {result['out']}: integer {result['task']} model, {result['nodes']} nodes, batch {result['batch']}")
    table = Table("rows", "set", "metric", "float", "integer", "loss", "agreement %", "max |err|")
    for name in ("calibration", "held_out"):
        r = result.get(name)
        if r is None:
            continue
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        table.add_row(str(r["rows"]), name, r["metric"], fmt(r["float"]), fmt(r["integer"]), fmt(r["loss"]), fmt(r["agreement"]), f"{r['max_abs_error']:.4g}")
    out.print(table)
    judged = result.get("held_out") or result["calibration"]
    layers = Table("layer (source tensor)", "max |err|", "relative")
    for r in judged["layers"]:
        layers.add_row(r["tensor"], f"{r['max_abs_error']:.4g}", f"{r['relative']:.2%}")
    out.print(layers)
    if result["worst_layer"]:
        out.print(f"the layer that loses the most: {result['worst_layer']}")


@app.command()
def infer(
    model: Annotated[Path, typer.Argument(help="An integer model written by `bisectml import`.")],
    data: Annotated[Path, typer.Option("--data", help="The rows to run it on: .npz (X), .npy or .csv.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the program.")],
    labels: Annotated[
        bool,
        typer.Option("--labels/--no-labels", help="Count correct predictions in the state when the data has labels (y)."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Build a program that runs an imported model over a dataset, one batch per step.

    Its final state holds every row's output and, when the data has labels, how many rows the
    model got right (`correct`): a verified accuracy. Post it with `bisectml task post`.

    Example: bisectml infer model.int.onnx --data rows.npz --out infer.onnx
    """
    from verifier.app.bring import infer_program
    from verifier.core.errors import BisectmlError

    try:
        result = infer_program(str(model), str(data), str(out_file), labels)
    except BisectmlError as e:
        fail(str(e))
    if as_json:
        print(json.dumps(result))
        return
    counted = ", correct predictions counted against the labels" if result["labels"] else ""
    out.print(f"[green]ok[/green] wrote {result['out']}: {result['rows']} rows in {result['steps']} steps{counted}")
    out.print(f"  program_id {result['program_id']}")


build_app = typer.Typer(
    help="Training programs from a model description, and the trained model back as float ONNX.\n\n"
    "Example: bisectml build train model.json --data train.npz --out train.onnx",
    no_args_is_help=True,
)
app.add_typer(build_app, name="build")


@build_app.command("train")
def build_train(
    description: Annotated[Path, typer.Argument(help="The model description, JSON (layers, loss, optimizer, schedule).")],
    data: Annotated[Path, typer.Option("--data", help="The training rows with labels: .npz (X, y), .npy or .csv.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the training program.")],
    torch_model: Annotated[
        str | None,
        typer.Option("--torch", help="The layers as a PyTorch nn.Sequential: FILE.py (its `model`) or FILE.py:NAME."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Build a fixed-point training program (forward, backward, SGD update, batch selection).

    The description, e.g. {"layers": [{"type": "linear", "out": 32}, {"type": "relu"},
    {"type": "linear", "out": 10}], "loss": "softmax_cross_entropy", "optimizer": {"type":
    "sgd", "lr": 0.5, "momentum": 0.5}, "schedule": {"epochs": 10, "batch": 32}}; layers are
    conv2d (out_channels, kernel, stride, padding), maxpool2d and avgpool2d (kernel, stride) on
    rows shaped (H, W) or (C, H, W), then flatten, linear, relu and leaky_relu; losses
    softmax_cross_entropy and mse.

    With --torch, the layers come from an nn.Sequential of Linear, Conv2d, ReLU, LeakyReLU,
    MaxPool2d, AvgPool2d and Flatten, and the description holds the rest (its architecture
    only: the initial weights come from the description's seed).

    Example: bisectml build train model.json --data train.npz --out train.onnx
    """
    from verifier.app.build import build_train as build
    from verifier.core.errors import BisectmlError

    try:
        result = build(str(description), str(data), str(out_file), torch_model)
    except BisectmlError as e:
        fail(str(e))
    if as_json:
        print(json.dumps(result))
        return
    out.print(f"[green]ok[/green] wrote {result['out']}: {result['steps']} steps of {result['batch']} rows over {result['rows']} rows")
    out.print(f"  layers     {' -> '.join(result['layers'])}, loss {result['loss']}")
    out.print(f"  program_id {result['program_id']}")
    if not result["compiled"]:
        out.print(f"  [yellow]slow[/yellow]     the engine runs each step node by node: {result['compile_note']}; "
                  "lower frac_bits or the widths to compile it")


@build_app.command("export")
def build_export(
    program: Annotated[Path, typer.Argument(help="A training program written by `bisectml build train`.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the trained float32 model.")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="The program's trace directory (resumed, or kept here).")
    ] = None,
    held_out: Annotated[
        Path | None, typer.Option("--held-out", help="Rows with labels to measure the trained model on.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Run a training program's trace and write the trained weights as a float32 ONNX model.

    Example: bisectml build export train.onnx --held-out test.npz --out trained.onnx
    """
    from verifier.app.build import export_trained
    from verifier.core.errors import BisectmlError

    try:
        result = export_trained(str(program), str(out_file), str(directory) if directory else None, str(held_out) if held_out else None)
    except BisectmlError as e:
        fail(str(e))
    if as_json:
        print(json.dumps(result))
        return
    out.print(f"[green]ok[/green] wrote {result['out']}: trained in {result['steps']} steps, final root {result['final_root']}")
    if result["held_out"]:
        metric = ", ".join(f"{k} {v:.2f}" for k, v in result["held_out"].items() if k != "rows")
        out.print(f"  held out   {result['held_out']['rows']} rows: {metric}")


@app.command()
def trace(
    program: Annotated[str, typer.Argument(help="A program .onnx file or a bundled program name (e.g. mlp_train).")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Persist the trace here; re-running resumes it.")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Override the program's step count.")] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option("--checkpoint-every", help="Steps between checkpoints (default: 100, widened to fit --disk-budget)."),
    ] = None,
    disk_budget: Annotated[
        str, typer.Option("--disk-budget", help="Most disk the checkpoints may take: bytes, or 500M, 2G.")
    ] = "1G",
    node_roots: Annotated[
        int | None, typer.Option("--node-roots", help="Also print the node-level roots of this step.")
    ] = None,
    reference: Annotated[bool, typer.Option("--reference", help="Use only the reference kernels.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Run a program as a committed trace and print its roots.

    Example: bisectml trace mlp_train --dir ./trace --json
    """
    from verifier.app.units import parse_size
    from verifier.core.errors import BisectmlError
    from verifier.engine.program import load_program
    from verifier.engine.trace import Trace

    path = resolve_program(program)
    try:
        budget = parse_size(disk_budget, "--disk-budget")
        prog = load_program(path, steps=steps)
        started = time.perf_counter()
        tr = Trace(prog, directory, checkpoint_every=checkpoint_every, fast=not reference, disk_budget=budget)
        resumed_from = tr.steps_done
        with _progress("tracing", not as_json and sys.stderr.isatty()) as bar:
            task = bar.add_task("steps", total=prog.steps, completed=resumed_from)
            final = tr.run(progress=lambda done, total: bar.update(task, completed=done))
        elapsed = time.perf_counter() - started
        nodes = tr.node_roots(node_roots) if node_roots is not None else None
    except BisectmlError as e:
        fail(str(e))
    result = {
        "program_id": "0x" + prog.id.hex(),
        "graph_root": "0x" + prog.graph_root.hex(),
        "data_root": "0x" + prog.data_root.hex(),
        "initial_root": "0x" + tr.step_root(0).hex(),
        "final_root": "0x" + final.hex(),
        "steps": prog.steps,
        "nodes": prog.n_nodes,
        "slots": prog.n_slots,
        "resumed_from": resumed_from,
        "checkpoint_every": tr.checkpoint_every,
        "seconds": round(elapsed, 3),
        # how the steps ran (the roots are the same either way)
        "engine": "reference" if reference else "compiled" if prog.compiled else f"node by node ({prog.compile_note})",
    }
    if nodes is not None:
        result["node_roots"] = {"step": node_roots, "roots": ["0x" + r.hex() for r in nodes]}
    tr.close()
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"trace of {path.name}", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold", no_wrap=False)
    for k, v in result.items():
        if k != "node_roots":
            table.add_row(k, str(v))
    out.print(table)
    if nodes is not None:
        out.print(f"node roots of step {node_roots} (state(t, n) for n = 0..N, then state(t+1, 0)):")
        for n, r in enumerate(nodes):
            out.print(f"  {n:>4}  0x{r.hex()}")


# -- the market on a chain: deploy, task, claim, dispute, settle, finalize ----------------------
# The logic lives in verifier/app/commands.py and verifier/app/disputes.py; these functions parse options and render results.

task_app = typer.Typer(
    help="Post, show and list tasks (a program to run and the reward for running it).\n\nExample: bisectml task list --open",
    no_args_is_help=True,
)
claim_app = typer.Typer(
    help="Inspect claims: a solver's result, its challenges and their games.\n\nExample: bisectml claim show 1",
    no_args_is_help=True,
)
dispute_app = typer.Typer(
    help="Challenge a wrong claim and play its dispute game.\n\n"
    "Example: bisectml dispute open 1 --program task.onnx && bisectml dispute play 1 --program task.onnx --as challenger",
    no_args_is_help=True,
)
app.add_typer(task_app, name="task")
app.add_typer(claim_app, name="claim")
app.add_typer(dispute_app, name="dispute")

@app.command()
@reflow
def status(
    address: Annotated[str | None, typer.Option("--address", help="The account (default: the key's).")] = None,
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """One account's standing: balances, its tasks, claims, challenges and their games (both
    clocks), what it should do next, and the BOND it received from and paid to the contracts.

    Example: bisectml status --rpc-url http://127.0.0.1:8545 --key-file me.json
    """
    from verifier.app.status import account_status
    from verifier.app.units import format_duration

    with chain_errors():
        session = cli_session(rpc_url, key_file, "status", need_key=address is None)
        result = account_status(session, address)
    if as_json:
        return emit(result)
    say(kv_table(result["address"], [
        ("BOND", amount_text(result["bond"])), ("ether", f"{int(result['ether']) / 10**18:g} ETH"),
        ("received from contracts", amount_text(result["received"])), ("paid to contracts", amount_text(result["paid"])),
        ("still held for you", amount_text(result["held"])), ("net so far", amount_text(int(result["profit"]))
                                                              if int(result["profit"]) >= 0 else "-" + amount_text(-int(result["profit"]))),
    ]))  # fmt: skip
    for name, rows, cols in (
        ("tasks", result["tasks"], ("task_id", "state", "claim_id")),
        ("claims", result["claims"], ("claim_id", "task_id", "state", "challenges", "unsettled")),
        ("challenges", result["challenges"], ("challenge_id", "claim_id", "game_id", "state")),
    ):
        if rows:
            table = Table(*cols, title=name, title_justify="left")
            for r in rows:
                table.add_row(*(str(r[c]) for c in cols))
            say(table)
    if result["games"]:
        table = Table("game", "you are", "position", "to move", "solver's clock", "challenger's clock", "outcome", title="games", title_justify="left")
        for g in result["games"]:
            table.add_row(str(g["game_id"]), str(g["your_role"]), g["position"], str(g["to_move"]),
                          format_duration(g["clock_solver"]), format_duration(g["clock_challenger"]), g["outcome"])  # fmt: skip
        say(table)
    say("to do: " + ("; ".join(result["todo"]) if result["todo"] else "nothing"))


token_app = typer.Typer(
    help="The bond token: balances, transfers and allowances (BOND with 18 decimals; --json in base units).\n\n"
    "Example: bisectml token balance --rpc-url http://127.0.0.1:8545 --key-file me.json",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")


@token_app.command("balance")
@reflow
def token_balance(
    address: Annotated[str | None, typer.Argument(help="The account (default: the key's).")] = None,
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Show an account's BOND, its ether, and what the contracts may pull from it.

    Example: bisectml token balance 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --rpc-url http://127.0.0.1:8545
    """
    from verifier.app import tokens

    with chain_errors():
        session = cli_session(rpc_url, key_file, "token balance", need_key=address is None)
        result = tokens.balance(session, address)
    if as_json:
        return emit(result)
    say(kv_table(None, tokens.describe(result)))


@token_app.command("transfer")
@reflow
def token_transfer(
    to: Annotated[str, typer.Argument(help="The recipient's address.")],
    amount: Annotated[str, typer.Argument(help="BOND (10, 2.5) or base units (5wei).")],
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Send BOND to another account (checked against your balance before anything is sent).

    Example: bisectml token transfer 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 100 --key-file me.json
    """
    from verifier.app import tokens
    from verifier.app.units import parse_amount

    with chain_errors():
        value = parse_amount(amount)
        session = cli_session(rpc_url, key_file, "token transfer")
        result = tokens.transfer(session, to, value)
    if as_json:
        return emit(result)
    sent = "already sent" if result["resumed"] else "sent"
    say(f"[green]{sent}[/green] {amount_text(value)} to {result['to']}; you hold {amount_text(result['balance'])}")


@token_app.command("approve")
@reflow
def token_approve(
    spender: Annotated[str, typer.Argument(help="tasks, market, attestations, or an address.")],
    amount: Annotated[str, typer.Argument(help="The allowance: BOND (10, 2.5) or base units (5wei); 0 revokes.")],
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Set how much BOND a contract may pull from you (the commands approve what they need themselves).

    Example: bisectml token approve tasks 500 --key-file me.json
    """
    from verifier.app import tokens
    from verifier.app.units import parse_amount

    with chain_errors():
        value = parse_amount(amount)
        session = cli_session(rpc_url, key_file, "token approve")
        result = tokens.approve(session, spender, value)
    if as_json:
        return emit(result)
    say(f"[green]approved[/green] {result['spender']} to pull {amount_text(result['allowance'])}")


key_app = typer.Typer(
    help="Make and inspect signing keys (encrypted JSON keystores or raw hex files).\n\n"
    "Example: bisectml key new --out me.json && bisectml key address --key-file me.json",
    no_args_is_help=True,
)
app.add_typer(key_app, name="key")


@key_app.command("new")
def key_new(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the key (never over an existing file).")],
    raw: Annotated[bool, typer.Option("--raw", help="Write the key as plain hex instead of an encrypted keystore.")] = False,
    as_json: AsJson = False,
) -> None:
    """Make a new key: an encrypted keystore (password from BISECTML_KEY_PASSWORD, the file
    BISECTML_KEY_PASSWORD_FILE names, or a prompt), or with --raw a hex file; mode 0600 either way.

    Example: bisectml key new --out me.json
    """
    import secrets

    from verifier.court.keys import (
        KeyFileError,
        password_from_env,
        write_keystore,
        write_raw_key,
    )

    key = "0x" + secrets.token_bytes(32).hex()
    try:
        if raw:
            address = write_raw_key(out_file, key)
        else:
            password = password_from_env()
            if password is None:
                password = typer.prompt("password for the new keystore", hide_input=True, confirmation_prompt=True)
            address = write_keystore(out_file, key, password)
    except KeyFileError as e:
        fail(str(e))
    if as_json:
        emit({"address": address, "file": str(out_file), "encrypted": not raw})
        return
    say(f"[green]ok[/green] {address} in {out_file} ({'hex, keep it private' if raw else 'encrypted keystore'})")


@key_app.command("address")
def key_address(key_file: KeyFile = None, as_json: AsJson = False) -> None:
    """Print the account address of a key (a keystore asks for its password).

    Example: bisectml key address --key-file me.json
    """
    import os

    from eth_account import Account

    from verifier.court.keys import KEY_ENV, KeyFileError, read_key_file

    try:
        secret = read_key_file(key_file) if key_file is not None else os.environ.get(KEY_ENV)
        if secret is None:
            fail(f"no key: pass --key-file or set {KEY_ENV}.")
        address = Account.from_key(secret).address
    except KeyFileError as e:
        fail(str(e))
    except ValueError:
        fail("the key is not a valid private key; give 32 bytes of hex or an encrypted JSON keystore.")
    if as_json:
        emit({"address": address})
        return
    out.print(address)


class Side(str, enum.Enum):
    challenger = "challenger"
    solver = "solver"


@app.command()
@reflow
def deploy(
    mint: Annotated[
        str | None, typer.Option("--mint", help="On a dev chain, mint this much BOND to the deployer (e.g. 1000).")
    ] = None,
    fund: Annotated[
        list[str] | None,
        typer.Option("--fund", help="On a dev chain, give this account 1000 BOND (or --mint's amount) and 10 ETH; repeatable."),
    ] = None,
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Deploy the contracts and record their addresses for the chain.

    Deploys the token, the one-step contracts, the game, the referee, the task registry and the market,
    and records them in $BISECTML_HOME/deployments.json (default ~/.bisectml). Without
    --rpc-url it deploys to a throwaway in-process chain and records nothing.

    Example: bisectml deploy --rpc-url http://127.0.0.1:8545 --key-file ./deployer.key --mint 1000
    """
    from verifier.app import commands, tokens
    from verifier.app.units import parse_amount

    with chain_errors():
        amount = parse_amount(mint, "--mint") if mint is not None else 0
        session = cli_session(rpc_url, key_file, "deploy", embedded_ok=True, need_deployment=False)
        if fund:  # refused before anything is deployed
            commands.require_dev_chain(session.chain.chain_id, "--fund", "fund accounts with your own tooling")
        with err.status("deploying the contracts…", spinner="dots") if not as_json else nullcontext():
            result = commands.deploy(session, mint=amount)
        if fund:
            result["funded"] = tokens.fund(session, fund, amount or 1000 * 10**18)
        note_embedded(session)
    if as_json:
        return emit(result)
    say(f"[green]deployed[/green] the bisectml suite on chain {result['chain_id']} from {result['deployer']}")
    say(kv_table(None, [(k, v) for k, v in result["addresses"].items()]))
    if result["recorded_in"]:
        say(f"recorded in {result['recorded_in']}" + (" (replacing the earlier deployment)" if result["replaced_tasks"] else ""))
    if amount:
        say(f"minted {amount_text(amount)} to {result['deployer']}")
    for f in result.get("funded", []):
        say(f"funded {f['address']}: {amount_text(f['bond'])} and {int(f['ether']) / 10**18:g} ETH")


@task_app.command("post")
@reflow
def task_post(
    program: Annotated[str, typer.Argument(help="The program .onnx file (or a bundled program name).")],
    reward: Annotated[str, typer.Option("--reward", help="Paid to the solver whose claim stands, in BOND (10, 2.5 or 5wei).")],
    solver_bond: Annotated[str, typer.Option("--solver-bond", help="Locked by every claim, in BOND.")],
    challenger_bond: Annotated[str, typer.Option("--challenger-bond", help="Locked by every challenge, in BOND.")],
    window: Annotated[str, typer.Option("--window", help="How long a revealed claim can be challenged: seconds, or 2d, 48h (at least 2d).")] = "2d",
    clock: Annotated[str, typer.Option("--clock", help="Each party's chess clock per dispute game, and a solver's time to reveal its claim (at least 2d).")] = "2d",
    arity: Annotated[int, typer.Option("--arity", help="Points revealed per bisection move (2..32).")] = 8,
    deadline: Annotated[str, typer.Option("--deadline", help="Claims are accepted for this long from now.")] = "7d",
    steps: Annotated[int | None, typer.Option("--steps", help="Override the program's step count.")] = None,
    result: Annotated[bool, typer.Option("--result/--no-result", help="Ask for the program's final state (its trained weights) as the result: a claim is paid only once the solver has published it on-chain. --no-result: the final root alone.")] = True,
    result_state: Annotated[list[str] | None, typer.Option("--result-state", help="Ask only for this state tensor as the result (repeat for more), e.g. correct for an inference program's verified accuracy.")] = None,
    content_dir: ContentDir = None,
    ipfs_api: IpfsApi = None,
    ipfs_gateway: IpfsGateway = None,
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Post a task: escrow a reward for running a program.

    Approves the reward, publishes the program file under its CID (the local content store, or
    IPFS with --ipfs-api) for solvers to fetch, posts the program's id, CID and terms, and
    prints the task id. Without --rpc-url it is a dry run on a throwaway chain (deploys, mints,
    posts).

    Example: bisectml task post train.onnx --reward 100 --solver-bond 50 --challenger-bond 250 --window 2d
    --clock 2d --arity 8 --deadline 7d
    """
    from verifier.app import commands as c
    from verifier.app.units import parse_amount, parse_duration
    from verifier.market.ipfs import content_store

    path = resolve_program(program)
    with chain_errors():
        store = content_store(content_dir, ipfs_api, ipfs_gateway)  # a bad URL is refused before the chain
        terms = {
            "reward": parse_amount(reward, "--reward"),
            "solver_bond": parse_amount(solver_bond, "--solver-bond"),
            "challenger_bond": parse_amount(challenger_bond, "--challenger-bond"),
            "window": parse_duration(window, "--window"),
            "clock": parse_duration(clock, "--clock"),
            "deadline_in": parse_duration(deadline, "--deadline"),
            "arity": arity,
        }
        session = cli_session(rpc_url, key_file, "task post", embedded_ok=True, need_deployment=True)
        posted = c.post_task(session, path, steps=steps, result=result, store=store, result_names=result_state, **terms)
        note_embedded(session)
    if as_json:
        return emit(posted)
    verb = "already posted" if posted["resumed"] else "posted"
    say(f"[green]{verb}[/green] task {posted['task_id']} (reward {amount_text(posted['reward'])}, {posted['steps']} steps)")
    say(f"  program id  {posted['program_id']}")
    say(f"  program     {posted['program_cid'] or '-'}")
    say(f"  result      {'slots ' + ', '.join(map(str, posted['result_slots'])) if posted['result_slots'] else 'the final root only'}")
    say(f"  deadline    {due_in(posted['deadline_in'], posted['deadline'])}")
    if not posted["embedded"]:
        say(f"follow it with: bisectml task show {posted['task_id']}")


def _task_rows(t: dict) -> list[tuple[str, object]]:
    from verifier.app.units import format_duration

    return [
        ("status", t["status"]),
        ("poster", t["poster"]),
        ("program id", t["program_id"]),
        ("steps", f"{t['steps']} ({t['nodes']} nodes, {t['slots']} slots a step)"),
        ("reward", amount_text(t["reward"])),
        ("solver bond", amount_text(t["solver_bond"])),
        ("challenger bond", amount_text(t["challenger_bond"])),
        ("window", format_duration(t["window"])),
        ("clock", format_duration(t["clock"])),
        ("arity", t["arity"]),
        ("deadline", due_in(t["deadline_in"], t["deadline"])),
        ("claim", t["claim_id"] if t["claim_id"] else "-"),
        ("program file", t.get("program_cid") or "-"),
        ("result", ("slots " + ", ".join(map(str, t["result_slots"]))) if t.get("result_slots") else "the final root only"),
    ]


@task_app.command("show")
@reflow
def task_show(
    task_id: Annotated[int, typer.Argument(help="The task id.", min=1)],
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Show a task: its program, terms, deadline and live claim.

    Example: bisectml task show 3 --json
    """
    from verifier.app import commands as c

    with chain_errors():
        result = c.show_task(cli_session(rpc_url, key_file, "task show", need_key=False), task_id)
    if as_json:
        return emit(result)
    say(kv_table(f"task {task_id}", _task_rows(result)))
    if result["claim_id"]:
        say(f"its claim: bisectml claim show {result['claim_id']}")


@task_app.command("result")
@reflow
def task_result(
    task_id: Annotated[int, typer.Argument(help="The task id.", min=1)],
    out: Annotated[Path, typer.Option("--out", help="Write the result tensors here, as .npz (named by the program's slots).")],
    onnx_out: Annotated[Path | None, typer.Option("--onnx", help="Also write the trained network as a float ONNX model (programs of `bisectml build train`).")] = None,
    program: Annotated[Path | None, typer.Option("--program", help="The task's program file, to name the tensors (default: fetched by the CID the task logged).")] = None,
    content_dir: ContentDir = None,
    ipfs_api: IpfsApi = None,
    ipfs_gateway: IpfsGateway = None,
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Fetch a finalized task's result: the tensors its solver published, each checked against
    the claimed final root (from the solver's IPFS mirror with --ipfs-gateway or --ipfs-api,
    else from the chain), written as .npz and, for a training program, as a float ONNX
    model. Nothing is written unless every check passes.

    Example: bisectml task result 3 --out weights.npz --onnx trained.onnx
    """
    from verifier.app import commands as c
    from verifier.market.ipfs import content_store

    with chain_errors():
        store = content_store(content_dir, ipfs_api, ipfs_gateway)
        session = cli_session(rpc_url, key_file, "task result", need_key=False)
        r = c.task_result(session, task_id, out, onnx_out, store, program)
    if as_json:
        return emit(r)
    for line in r["refused_mirrors"]:
        say(f"[yellow]refused a mirror[/yellow] of {line}")
    say(f"[green]wrote[/green] task {task_id}'s result (claim {r['claim_id']}, final root {r['final_root']}) to {r['out']}")
    for name, t in r["tensors"].items():
        say(f"  {name:<24} slot {t['slot']:<4} {t['dtype']} {tuple(t['shape'])}, from {t['source']}")
    if r["onnx"]:
        say(f"  float ONNX model: {r['onnx']}")
    if r["accuracy"]:
        a = r["accuracy"]
        say(f"  verified accuracy: {a['correct']} of {a['rows']} labelled rows, {100 * a['accuracy']:.2f}%")


@task_app.command("list")
@reflow
def task_list(
    open_only: Annotated[bool, typer.Option("--open", help="Only tasks neither finalized nor reclaimed.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many, newest first.", min=1)] = 50,
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """List tasks, newest first.

    Example: bisectml task list --open --limit 20
    """
    from verifier.app import commands as c

    with chain_errors():
        rows = c.list_tasks(cli_session(rpc_url, key_file, "task list", need_key=False), open_only, limit)
    if as_json:
        return emit(rows)
    if not rows:
        say("no open tasks" if open_only else "no tasks yet; post one with `bisectml task post`")
        return
    table = Table("id", "status", "reward", "steps", "deadline", "program id", box=None)
    for t in rows:
        short = t["program_id"][:18] + "…"
        table.add_row(str(t["task_id"]), t["status"], amount_text(t["reward"]), str(t["steps"]), due_in(t["deadline_in"]), short)
    say(table)


@claim_app.command("show")
@reflow
def claim_show(
    claim_id: Annotated[int, typer.Argument(help="The claim id.", min=1)],
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Show a claim, its challenges and where their games stand, and its deadlines.

    Example: bisectml claim show 1
    """
    from verifier.app import commands as c

    with chain_errors():
        result = c.show_claim(cli_session(rpc_url, key_file, "claim show", need_key=False), claim_id)
    if as_json:
        return emit(result)
    say(
        kv_table(
            f"claim {claim_id} on task {result['task_id']}",
            [
                ("state", result["state"] + (" (finalizable)" if result["finalizable"] else "")),
                ("solver", result["solver"]),
                ("final root", result["final_root"] or f"not revealed (commitment {result['commitment']})"),
                (
                    ("challenges until", due_in(result["challenge_window_left"], result["challenge_deadline"]))
                    if result["final_root"]
                    else ("reveal by", due_in(result["reveal_deadline"] - result["posted"], result["reveal_deadline"]))
                ),
                ("solver bond", amount_text(result["solver_bond"])),
                ("challenger bond", amount_text(result["challenger_bond"])),
                ("result published", (f"slots {', '.join(map(str, result['published_slots'])) or 'none'} of "
                                      f"{', '.join(map(str, result['result_slots']))}") if result["result_slots"] else "not asked for"),
                ("unsettled", result["unsettled"]),
                ("winners", f"{result['winners']} (shares in proportion to metered gas, {result['metered_gas']:,} in all)" if result["winners"] else "0"),
            ],
        )
    )
    if not result["challenges"]:
        say("no challenges")
        return
    table = Table("challenge", "challenger", "state", "game", "level", "to move", "outcome", "share", box=None)
    for ch in result["challenges"]:
        g = ch["game"] or {}
        table.add_row(
            str(ch["challenge_id"]), ch["challenger"],
            ch["state"] + (" (settleable)" if ch["settleable"] else "") + (" (collectable)" if ch["collectable"] else ""),
            str(ch["game_id"]), g.get("level", "-"), g.get("to_move") or "-", g.get("outcome", "-").replace("_", " "),
            amount_text(ch["prize_share"]) if ch["prize_share"] != "0" else "-",
        )  # fmt: skip
    say(table)


@dispute_app.command("open")
@reflow
def dispute_open(
    claim_id: Annotated[int, typer.Argument(help="The claim to challenge.", min=1)],
    program: Annotated[str, typer.Option("--program", help="The task's program .onnx file, to recompute it.")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Keep the trace here (default $BISECTML_HOME/traces/<program id>).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Challenge even though your run agrees with the claim.")] = False,
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Challenge a wrong claim: recompute it, post the bond, open a game.

    Recomputes the program locally; if the claim is wrong, approves and posts the challenger
    bond and prints the game id. A correct claim is refused unless --force.

    Example: bisectml dispute open 1 --program task.onnx --dir ./trace --key-file ./me.key
    """
    from verifier.app import disputes as d

    path = resolve_program(program)
    with chain_errors():
        session = cli_session(rpc_url, key_file, "dispute open")
        with _progress("recomputing", not as_json and sys.stderr.isatty()) as bar:
            job = bar.add_task("steps", total=None)
            result = d.open_dispute(
                session, claim_id, path, directory, force, progress=lambda d, t: bar.update(job, completed=d, total=t)
            )
    if as_json:
        return emit(result)
    say(
        f"[green]challenged[/green] claim {claim_id}: challenge {result['challenge_id']}, game {result['game_id']} "
        f"(bond {amount_text(result['bond'])})"
    )
    say(f"  claimed root  {result['claimed_root']}")
    say(f"  your root     {result['your_root']}")
    say(
        f"play it: bisectml dispute play {result['game_id']} --program {program} --as challenger --dir {result['trace_dir']}",
    )


def _narration(ev) -> str:  # noqa: ANN001
    """One line of a game's narration, from a verifier.app.disputes.GameEvent."""
    from rich.markup import escape

    if ev.kind == "start":
        return f"[bold]{escape(ev.text)}[/bold]"
    if ev.kind == "position":
        return f"  {'':<17} {'':<15} {escape(ev.text)}"
    if ev.kind == "move":
        who = f"you ({ev.who.name.lower()})" if ev.mine else ev.who.name.lower()
        style = "cyan" if ev.mine else "magenta"
        return f"  [{style}]{who:<17}[/{style}] {ev.function:<15} {escape(ev.text)}"
    if ev.kind == "wait":
        return f"  [dim]{'waiting':<17} {'':<15} for the {ev.who.name.lower()} ({escape(ev.text)})[/dim]"
    return f"  [bold]{'over':<17}[/bold] {'':<15} {escape(ev.text)}"


@dispute_app.command("play")
@reflow
def dispute_play(
    game_id: Annotated[int, typer.Argument(help="The game id (printed by `dispute open`).", min=1)],
    program: Annotated[str, typer.Option("--program", help="The task's program .onnx file.")],
    side: Annotated[Side, typer.Option("--as", help="Which side you are.", case_sensitive=False)],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="The trace directory (default $BISECTML_HOME/traces/<program id>).")
    ] = None,
    poll: Annotated[
        float, typer.Option("--poll", help="Seconds between looks at the chain while the other side moves.", min=0.05)
    ] = 2.0,
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Play your side of a dispute game to its end.

    Moves come from your own run of the program, narrated move by move as the game narrows
    step -> node -> element -> proof. If the other side stops moving, the game is ended by
    its clock. Exit code 0: you won; 1: you lost; 2: bad input.

    Example: bisectml dispute play 1 --program task.onnx --as challenger --key-file ./me.key
    """
    from rich.progress import BarColumn, Progress, TextColumn

    from verifier.app import commands as c
    from verifier.app import disputes as d
    from verifier.court.game import Role

    path = resolve_program(program)
    role = Role.CHALLENGER if side == Side.challenger else Role.SOLVER
    narrate = not as_json
    with chain_errors():
        session = cli_session(rpc_url, key_file, "dispute play")
        bars = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[where]}"),
            console=err, disable=not (narrate and sys.stderr.isatty()), transient=True,
        )  # fmt: skip
        with bars:
            tracing = bars.add_task("recomputing", total=None, where="")
            game = bars.add_task("game", total=1.0, visible=False, where="")

            def on_event(ev) -> None:  # noqa: ANN001
                bars.update(tracing, visible=False)
                bars.update(game, visible=True, completed=c.progress_fraction(ev.state), where=ev.state.level.name.lower())
                if narrate:
                    bars.console.print(_narration(ev), highlight=False, soft_wrap=True)

            result = d.play(
                session, game_id, path, role, directory, poll=poll, on_event=on_event,
                progress=lambda d, t: bars.update(tracing, completed=d, total=t),
            )  # fmt: skip
    if as_json:
        emit(result)
    else:
        verdict = "[green]you won[/green]" if result["won"] else "[red]you lost[/red]"
        why = f": {result['reason']}" if result["reason"] else ""
        say(f"{verdict} game {game_id} as the {result['role']} ({result['outcome'].replace('_', ' ')}{why})")
        if result["challenge_id"]:
            say(f"settle it: bisectml settle {result['challenge_id']}")
    if not result["won"]:
        raise typer.Exit(EXIT_LOST)


@dispute_app.command("status")
@reflow
def dispute_status(
    game_id: Annotated[int, typer.Argument(help="The game id.", min=1)],
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Show where a game stands: level, disputed range, whose turn, clocks, outcome.

    Example: bisectml dispute status 1 --json
    """
    from verifier.app import commands as c
    from verifier.app.units import format_duration

    with chain_errors():
        g = c.game_status(cli_session(rpc_url, key_file, "dispute status", need_key=False), game_id)
    if as_json:
        return emit(g)
    rows: list[tuple[str, object]] = [
        ("level", g["level"]),
        ("position", g["position"]),
        ("outcome", g["outcome"].replace("_", " ") + (f" ({g['reason']})" if g["reason"] else "")),
    ]
    if g["range"]:
        rows.append(("range", f"{g['range'][0]}..{g['range'][1]}"))
    if g["to_move"]:
        rows.append(("to move", g["to_move"] + (" (you)" if g["your_move"] else "")))
    rows += [
        ("solver", g["solver"] + (" (you)" if g["your_role"] == "solver" else "")),
        ("challenger", g["challenger"] + (" (you)" if g["your_role"] == "challenger" else "")),
        ("solver clock", format_duration(g["clock_solver"]) + " left"),
        ("challenger clock", format_duration(g["clock_challenger"]) + " left"),
        ("challenge", g["challenge_id"] or "-"),
    ]
    say(kv_table(f"game {game_id}", rows))


@app.command()
@reflow
def settle(
    challenge_id: Annotated[int, typer.Argument(help="The challenge id (see `bisectml claim show`).", min=1)],
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Settle a challenge whose game is over, paying the winner (anyone may).

    If the party to move has run out of time, the game is ended by the clock first.

    Example: bisectml settle 1 --key-file ./me.key
    """
    from verifier.app import disputes as d

    with chain_errors():
        r = d.settle(cli_session(rpc_url, key_file, "settle"), challenge_id)
    if as_json:
        return emit(r)
    how = " (its game ended by the clock)" if r["ended_by_timeout"] else ""
    say(f"[green]settled[/green] challenge {challenge_id}{how}: the challenger {r['result']}")
    if int(r["paid_to_challenger"]):
        say(f"  paid {amount_text(r['paid_to_challenger'])} to the challenger {r['challenger']}")
    if int(r["slashed"]):
        say(f"  slashed {amount_text(r['slashed'])} from {r['loser']}, burned {amount_text(r['burned'])}")
    if r["claim_rejected"]:
        say(
            f"  claim {r['claim_id']} rejected; its task is open for a new claim; {amount_text(r['prize_to_share'])} "
            "goes to every challenger whose game shows the claim wrong, in proportion to the gas its own moves "
            "metered (`bisectml collect`)"
        )


@app.command()
@reflow
def collect(
    challenge_id: Annotated[int, typer.Argument(help="A won challenge (see `bisectml claim show`).", min=1)],
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Pay a winning challenger its share of the rejected claim's bond (anyone may).

    Once the claim's window has closed and all its games are settled, the prize is split among
    the challenges that showed the claim wrong, in proportion to the gas each challenger metered
    (its challenge transaction and its own moves in its game).

    Example: bisectml collect 3 --key-file ./me.key
    """
    from verifier.app import disputes as d

    with chain_errors():
        r = d.collect(cli_session(rpc_url, key_file, "collect"), challenge_id)
    if as_json:
        return emit(r)
    say(f"[green]collected[/green] {amount_text(r['share'])} for challenge {challenge_id} to {r['challenger']}")


@claim_app.command("expire")
@reflow
def claim_expire(
    claim_id: Annotated[int, typer.Argument(help="A claim whose solver did not reveal it in time.", min=1)],
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Burn the bond of a claim never revealed, and reopen its task (anyone may).

    Example: bisectml claim expire 4 --key-file ./me.key
    """
    from verifier.app import disputes as d

    with chain_errors():
        r = d.expire(cli_session(rpc_url, key_file, "claim expire"), claim_id)
    if as_json:
        return emit(r)
    say(f"[green]expired[/green] claim {claim_id}: {amount_text(r['burned'])} burned; task {r['task_id']} is open again")


@app.command()
@reflow
def finalize(
    claim_id: Annotated[int, typer.Argument(help="The claim id.", min=1)],
    rpc_url: RpcUrl = None,
    key_file: KeyFile = None,
    as_json: AsJson = False,
) -> None:
    """Finalize a claim that stood: pay the solver (anyone may).

    Needs the claim's challenge window closed and every challenge settled in the solver's
    favour; pays the solver the reward and its bond (games it won paid it as they settled).

    Example: bisectml finalize 1 --key-file ./me.key
    """
    from verifier.app import disputes as d

    with chain_errors():
        r = d.finalize(cli_session(rpc_url, key_file, "finalize"), claim_id)
    if as_json:
        return emit(r)
    say(
        f"[green]finalized[/green] claim {claim_id} of task {r['task_id']}: paid {amount_text(r['paid'])} to {r['solver']} "
        f"(reward {amount_text(r['reward'])}, bond {amount_text(r['bond'])})"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
