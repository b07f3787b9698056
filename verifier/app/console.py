"""What every verb of the command line shares: consoles, one-line errors and exit codes,
option types, the chain session, and the small renderers (tables, amounts, times).

Imported by the top-level `cli.py`, `verifier/app/market_cli.py` and the daemons' CLIs; it
imports nothing above verifier.app, so the command line has no import circle.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click; older versions depend on it
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as _click_errors

class OneLineErrors(TyperGroup):
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
        except typer.Abort:
            err.print("error: aborted.", markup=False, highlight=False)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


out = Console()
err = Console(stderr=True)


EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


EXIT_LOST = 1
EXIT_INTERRUPTED = 130


def reflow(fn):  # noqa: ANN001, ANN202
    """Join each docstring paragraph into one line: the rich help keeps source line breaks."""
    import inspect

    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    fn.__doc__ = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    return fn


RpcUrl = Annotated[
    str | None,
    typer.Option(
        "--rpc-url",
        envvar="BISECTML_RPC_URL",
        help="JSON-RPC endpoint of the chain (default: env BISECTML_RPC_URL).",
    ),
]
KeyFile = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="The signing key: a hex file or an encrypted JSON keystore (password from BISECTML_KEY_PASSWORD, "
        "BISECTML_KEY_PASSWORD_FILE or a prompt), or set BISECTML_PRIVATE_KEY; keys are never taken on the command line.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (amounts as strings of base units).")]
ContentDir = Annotated[Path | None, typer.Option("--content-dir", help="Content store, the IPFS cache with --ipfs-* (default: $BISECTML_HOME/content).")]
IpfsApi = Annotated[str | None, typer.Option("--ipfs-api", envvar="BISECTML_IPFS_API", help="IPFS node RPC API to publish (add and pin) content on, e.g. http://127.0.0.1:5001.")]
IpfsGateway = Annotated[str | None, typer.Option("--ipfs-gateway", envvar="BISECTML_IPFS_GATEWAY", help="IPFS trustless gateway to fetch content from (checked against its CID), e.g. http://127.0.0.1:8080.")]

@contextmanager
def chain_errors() -> Iterator[None]:
    """Every failure as one line: ours (BisectmlError), the node's, or an interrupt."""
    from verifier.core.errors import BisectmlError

    try:
        yield
    except BisectmlError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted; nothing is lost, run the same command again to resume.", EXIT_INTERRUPTED)
    except OSError as e:
        fail(f"{type(e).__name__}: {' '.join(str(e).split())[:200]}; check the file or node named in the command and retry.")
    except Exception as e:
        from requests.exceptions import RequestException
        from web3.exceptions import Web3Exception

        if isinstance(e, (Web3Exception, RequestException)):
            fail(f"the node failed ({type(e).__name__}: {' '.join(str(e).split())[:160]}); check --rpc-url and retry.")
        raise


def cli_session(rpc_url: str | None, key_file: Path | None, command: str, **kw):  # noqa: ANN003, ANN202
    from verifier.app.session import open_session

    return open_session(rpc_url, key_file, command=command, **kw)


def note_embedded(session) -> None:  # noqa: ANN001
    if session.embedded:
        err.print(
            "note: no --rpc-url or BISECTML_RPC_URL, so this ran on a throwaway in-process chain "
            "that is gone when the command exits; nothing was recorded.",
            style="yellow",
            highlight=False,
            soft_wrap=True,
        )


def say(*objects: object, **kw: object) -> None:
    out.print(*objects, soft_wrap=True, **kw)


def emit(data: object) -> None:
    print(json.dumps(data, indent=None, default=str))


def kv_table(title: str | None, rows: list[tuple[str, object]]) -> Table:
    table = Table(title=title, show_header=False, box=None, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(k, str(v))
    return table


def amount_text(v: str | int) -> str:
    from verifier.app.units import format_amount

    return format_amount(int(v))


def due_in(seconds: int, stamp: int | None = None) -> str:
    from verifier.app.units import format_duration, format_time

    when = f"{format_time(stamp)}, " if stamp is not None else ""
    return f"{when}{'in ' + format_duration(seconds) if seconds > 0 else 'passed'}"


