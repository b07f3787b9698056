"""A chain session for the command line (the chain, the signing account, the recorded
deployment) and the recorded deployments file. The units commands read and print are in
verifier.app.units.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from verifier.app.units import CommandError
from verifier.core.paths import home
from verifier.court.chain import KEY_ENV, Chain, ChainError, Deployment
from verifier.court.play import Court

ZERO_ADDRESS = "0x" + "00" * 20


def hex32(b: bytes) -> str:
    return "0x" + bytes(b).hex()


# -- sessions ---------------------------------------------------------------------------------


def deployments_path() -> Path:
    return home() / "deployments.json"


@dataclass
class Session:
    """A chain, the account signing for this command, and the suite recorded for the chain."""

    chain: Chain
    embedded: bool = False
    deployment: Deployment | None = None

    @cached_property
    def court(self) -> Court:
        if self.deployment is None:
            raise CommandError("no deployment loaded; run `bisectml deploy` first.")
        return Court(self.chain, self.deployment)

    @property
    def account(self) -> str:
        return self.chain.account

    def now(self) -> int:
        """The chain's time: the latest block's timestamp."""
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])


def open_session(
    rpc_url: str | None,
    key_file: str | os.PathLike[str] | None,
    *,
    command: str,
    need_key: bool = True,
    embedded_ok: bool = False,
    need_deployment: bool = True,
) -> Session:
    """Connect for one command. Without an RPC URL, only commands that make sense on a
    throwaway chain (`embedded_ok`) run, on the in-process chain; the others explain."""
    if not rpc_url:
        if not embedded_ok:
            raise CommandError(
                f"`bisectml {command}` works on state that earlier commands left on a chain; "
                "pass --rpc-url or set BISECTML_RPC_URL."
            )
        return Session(Chain.embedded(), embedded=True)
    if need_key or key_file is not None or os.environ.get(KEY_ENV):
        chain = Chain.connect(rpc_url, key_file=key_file)
        chain.journal = _journal(chain)
    else:
        chain = Chain.connect(rpc_url, address=ZERO_ADDRESS)  # read-only: calls come from address zero
    session = Session(chain)
    if need_deployment:
        session.deployment = load_deployment(chain)
    return session


def _journal(chain: Chain) -> Any:
    """What this account's commands sent on this chain: an interrupted one resumes, not repeats."""
    from verifier.app.journal import SendJournal, journal_path

    def note(message: str) -> None:
        print(f"note: {message}", file=sys.stderr)

    return SendJournal(chain.w3, chain.account, journal_path(chain.chain_id, chain.account), note)


def load_deployment(chain: Chain) -> Deployment:
    d = Deployment.load(chain.chain_id, deployments_path())
    if not chain.w3.eth.get_code(d.addresses["Tasks"]):
        raise ChainError(
            f"no contract at the recorded Tasks address {d.addresses['Tasks']} on chain {chain.chain_id} "
            "(was the node reset?); run `bisectml deploy` again."
        )
    return d


def as_record(names: tuple[str, ...], values: Any) -> dict[str, Any]:
    return dict(zip(names, values))


def event_logs(event: Any, receipt: Any) -> list[Any]:
    from web3.logs import DISCARD

    return list(event().process_receipt(receipt, errors=DISCARD))
