"""The `bisectml` command: thin verbs over the packages (verifier, solvers, challengers)."""

from __future__ import annotations

import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click; older versions depend on it
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as _click_errors

class _OneLineErrors(TyperGroup):
    """Usage errors (a missing option, a bad value) on one line, like every other error."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):  # noqa: ANN002, ANN003, ANN201
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except getattr(_click_errors, "NoArgsIsHelpError", ()) as e:
            e.show()
            sys.exit(e.exit_code)
        except _click_errors.ClickException as e:
            where = f"; see `{e.ctx.command_path} --help`" if getattr(e, "ctx", None) is not None else ""
            message = " ".join(e.format_message().split()).rstrip(".")
            err.print(f"error: {message}{where}.", markup=False, highlight=False, soft_wrap=True)
            sys.exit(e.exit_code)
        except _click_errors.Abort:
            err.print("error: aborted.", markup=False, highlight=False)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="bisectml",
    help="bisectml: an ML marketplace whose computations are verified by a bisection game.",
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


def _register_daemons() -> None:
    from challengers.cli import app as challenger_app
    from solvers.cli import app as solver_app

    app.add_typer(solver_app, name="solver")
    app.add_typer(challenger_app, name="challenger")


_register_daemons()

EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def resolve_program(name_or_path: str) -> Path:
    """A path to an .onnx file, or the name of a program bundled in onnx_models."""
    path = Path(name_or_path)
    if path.exists():
        return path
    bundled = resources.files("onnx_models") / f"{name_or_path.removesuffix('.onnx')}.onnx"
    if bundled.is_file():
        return Path(str(bundled))
    names = sorted(p.name.removesuffix(".onnx") for p in resources.files("onnx_models").iterdir() if p.name.endswith(".onnx"))
    _fail(f"no file or bundled program named '{name_or_path}'; give a path or one of: {', '.join(names) or '(none built)'}.")


def _progress(label: str, enabled: bool) -> Progress:
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
    from verifier.demo import run
    from verifier.errors import BisectmlError

    try:
        raise typer.Exit(run(out, steps))
    except BisectmlError as e:
        _fail(str(e))


@app.command()
def check(
    model: Annotated[str, typer.Argument(help="An .onnx file or a bundled program name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Check that a model or program is inside the integer profile, and summarize it.

    Example: bisectml check mlp_train
    """
    from verifier.errors import BisectmlError
    from verifier.graph import load_graph, read_model
    from verifier.program import META_STATE, load_program

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
        _fail(str(e))
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


@app.command()
def trace(
    program: Annotated[str, typer.Argument(help="A program .onnx file or a bundled program name (e.g. mlp_train).")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Persist the trace here; re-running resumes it.")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Override the program's step count.")] = None,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints.")] = 100,
    node_roots: Annotated[
        int | None, typer.Option("--node-roots", help="Also print the node-level roots of this step.")
    ] = None,
    reference: Annotated[bool, typer.Option("--reference", help="Use only the reference kernels.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Run a program as a committed trace and print its roots.

    Example: bisectml trace mlp_train --dir ./trace --json
    """
    from verifier.errors import BisectmlError
    from verifier.program import load_program
    from verifier.trace import Trace

    path = resolve_program(program)
    try:
        prog = load_program(path, steps=steps)
        started = time.perf_counter()
        tr = Trace(prog, directory, checkpoint_every=checkpoint_every, fast=not reference)
        resumed_from = tr.steps_done
        with _progress("tracing", not as_json and sys.stderr.isatty()) as bar:
            task = bar.add_task("steps", total=prog.steps, completed=resumed_from)
            final = tr.run(progress=lambda done, total: bar.update(task, completed=done))
        elapsed = time.perf_counter() - started
        nodes = tr.node_roots(node_roots) if node_roots is not None else None
    except BisectmlError as e:
        _fail(str(e))
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
        "seconds": round(elapsed, 3),
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
