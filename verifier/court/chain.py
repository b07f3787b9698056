"""Chain bindings: compiled contracts, deployment, dry-run-then-send transactions, events.

The contracts are compiled by the real Vyper compiler into `contracts/artifacts.json`, which
ships with the package (so `bisectml demo` starts in seconds); a test recompiles every source
and requires byte-identical output, so the shipped artifacts can never drift from the code.
Rebuild them with `python -m verifier.court.chain build`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from verifier.core.errors import BisectmlError
from verifier.core.failpoints import failpoint
from verifier.core.paths import home
from verifier.court.keys import KEY_ENV, KeyFileError, read_key_file

SUITE = (
    "Token",
    "OneStepElementwise",
    "OneStepShape",
    "OneStepReduce",
    "OneStepLinalg",
    "Game",
    "Referee",
    "Tasks",
    "Attestations",
    "Availability",
    "Loop",
    "Market",
    "Pool",
    "Vault",
)
DEPLOYMENTS = home() / "deployments.json"


class ChainError(BisectmlError, RuntimeError):
    """A transaction would revert, an RPC call failed, or a deployment is missing."""


# -- artifacts ----------------------------------------------------------------------------------


def contracts_dir() -> Path:
    return Path(str(resources.files("contracts")))


def _sources_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.vy*")):
        if "mocks" in p.parts:
            continue
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def compile_contract(name: str, root: Path | None = None) -> dict[str, Any]:
    """ABI and deployment bytecode of contracts/<name>.vy, from the Vyper compiler."""
    from vyper.compiler import compile_code
    from vyper.compiler.input_bundle import FilesystemInputBundle

    root = root or contracts_dir()
    src = root / f"{name}.vy"
    search = [root.parent, *[Path(p) for p in sys.path if p and Path(p).is_dir()]]
    out = compile_code(
        src.read_text(),
        contract_path=f"contracts/{name}.vy",
        resolved_path=src,
        input_bundle=FilesystemInputBundle(search),
        output_formats=["abi", "bytecode"],
    )
    return {"abi": out["abi"], "bytecode": out["bytecode"]}


def build_artifacts(root: Path | None = None) -> dict[str, Any]:
    import vyper

    root = root or contracts_dir()
    return {
        "vyper": vyper.__version__,
        "sources": _sources_digest(root),
        "contracts": {name: compile_contract(name, root) for name in SUITE},
    }


def load_artifacts() -> dict[str, Any]:
    root = contracts_dir()
    path = root / "artifacts.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ChainError(f"{path} is missing or corrupt; run `python -m verifier.court.chain build`.") from None
    if data.get("sources") != _sources_digest(root):
        raise ChainError(
            "contracts/artifacts.json is stale: the Vyper sources changed; run `python -m verifier.court.chain build`."
        )
    return data["contracts"]


# -- the chain ----------------------------------------------------------------------------------


@dataclass
class Chain:
    """A web3 connection and the account that signs for this process."""

    w3: Any
    account: str
    key: Any = None  # eth_account LocalAccount; None when the node holds the key (embedded chain)
    artifacts: dict[str, Any] = field(default_factory=load_artifacts, repr=False)
    # a one-shot command's record of what it sent (verifier.app.journal), when it keeps one
    journal: Any = field(default=None, repr=False)

    @classmethod
    def embedded(cls) -> Chain:
        """An in-process chain (py-evm through eth-tester): nothing to start, gone on exit."""
        from web3 import Web3

        from verifier.court.embedded import EmbeddedProvider

        w3 = Web3(EmbeddedProvider())
        return cls(w3, w3.eth.accounts[0])

    @classmethod
    def connect(
        cls,
        rpc_url: str,
        key: str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        address: str | None = None,
    ) -> Chain:
        """A JSON-RPC node; the key comes from `key`, `key_file` or the environment. With none of
        them, `address` gives a watch-only account that can read and dry-run but not sign."""
        from eth_account import Account
        from web3 import Web3

        w3 = rpc_web3(rpc_url)
        try:
            w3.eth.chain_id
        except Exception as e:  # noqa: BLE001 - any transport error means the same to the user
            raise ChainError(f"cannot reach {rpc_url} ({type(e).__name__}); start the node or fix --rpc-url.") from None
        secret = key
        if secret is None and key_file is not None:
            try:
                secret = read_key_file(key_file)
            except KeyFileError as e:
                raise ChainError(str(e)) from None
        if secret is None:
            secret = os.environ.get(KEY_ENV)
        if secret is None and address is not None:
            if not Web3.is_address(address):
                raise ChainError(f"{address} is not an account address; give 0x and 40 hex digits.")
            return cls(w3, Web3.to_checksum_address(address), None)
        if secret is None:
            raise ChainError(f"no key: pass --key-file or set {KEY_ENV}; keys are never taken on the command line.")
        try:
            acct = Account.from_key(secret)
        except Exception:  # noqa: BLE001
            raise ChainError(
                "the key is not a valid private key; give 32 bytes of hex or an encrypted JSON keystore."
            ) from None
        return cls(w3, acct.address, acct)

    def with_key(self, key: str) -> Chain:
        from eth_account import Account

        acct = Account.from_key(key)
        return Chain(self.w3, acct.address, acct, self.artifacts)

    def as_account(self, address: str) -> Chain:
        """The same chain signing as another node-held account (embedded chain, dev nodes)."""
        return Chain(self.w3, address, None, self.artifacts)

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def contract(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(address=address, abi=self.artifacts[name]["abi"])

    def deploy(self, name: str, *args: Any) -> Any:
        art = self.artifacts[name]
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = self._send(factory.constructor(*args), f"deploy {name}")
        return self.contract(name, receipt["contractAddress"])

    def send(self, fn: Any, what: str | None = None, key: str | None = None) -> Any:
        """Dry-run `fn` (eth_call), then send it; raises ChainError with the revert reason.
        `key` names the action for the journal when its calldata differs between runs."""
        return self._send(fn, what or fn.fn_name, key)

    def resume(self, fn: Any = None, key: str | None = None) -> Any:
        """The receipt of this account's interrupted send of `fn` (or under `key`), waiting for
        it if it is still pending; None when there is none to resume or it reverted. A command
        asks before checking funds that the interrupted send may already have spent."""
        if self.journal is None or self.key is None:
            return None
        target, data = _call_target(fn) if fn is not None else ("", "")
        return self.journal.adopt(key, target, data)

    def send_raw(self, to: str, data: bytes, what: str) -> Any:
        """Send calldata built by hand (a call whose arguments are not all ABI-encoded), with the
        same dry run, gas estimate and errors as `send`."""
        return self._send(RawCall(self.w3, to, data, what), what)

    def call(self, fn: Any) -> Any:
        try:
            return fn.call({"from": self.account})
        except Exception as e:  # noqa: BLE001
            raise ChainError(f"{fn.fn_name}: {revert_reason(e)}") from None

    def gas_limit(self, fn: Any, tx: dict[str, Any]) -> int:
        """The gas to send `fn` with: the node's estimate with a margin, or the embedded chain's
        fixed limit (verifier.court.embedded)."""
        fixed = getattr(self.w3.provider, "send_gas", None)
        return int(fixed) if fixed else int(fn.estimate_gas(tx) * 1.2) + 10_000

    def read(self, fn: Any, block: int) -> Any:
        """`fn`'s eth_call at `block`, decoded as web3 decodes it. Over JSON-RPC it is one
        request without web3's per-request middleware, half the cost of `fn.call` (a daemon
        reads every open record on every block)."""
        from web3 import HTTPProvider

        if not isinstance(self.w3.provider, HTTPProvider):
            return fn.call(block_identifier=block)
        return _decoded(self.w3, fn, self.w3.provider.make_request("eth_call", _call_params(fn, block)))

    def read_many(self, fns: Sequence[Any], block: int) -> list[Any]:
        """What `read` answers for each of `fns`, in one JSON-RPC batch per READ_BATCH calls: a
        daemon's tick costs a round trip, not one per open record. A node that takes no batches
        is read call by call; any call it refuses raises ChainError naming it."""
        from web3 import HTTPProvider

        provider = self.w3.provider
        if not isinstance(provider, HTTPProvider):
            return [fn.call(block_identifier=block) for fn in fns]
        out: list[Any] = []
        for i in range(0, len(fns), READ_BATCH):
            part = fns[i : i + READ_BATCH]
            responses = provider.make_batch_request([("eth_call", _call_params(fn, block)) for fn in part])
            if not isinstance(responses, list) or len(responses) != len(part):  # batches refused
                out.extend(self.read(fn, block) for fn in part)
                continue
            out.extend(_decoded(self.w3, fn, r) for fn, r in zip(part, responses, strict=True))
        return out

    def _send(self, fn: Any, what: str, key: str | None = None) -> Any:
        journal = self.journal if self.key is not None else None
        if journal is not None:
            target, data = _call_target(fn)
            earlier = journal.adopt(key, target, data)
            if earlier is not None:
                return earlier
        tx = {"from": self.account}
        try:
            if hasattr(fn, "call"):
                fn.call(tx)  # dry run: a doomed transaction is never broadcast
            tx["gas"] = self.gas_limit(fn, tx)
        except Exception as e:  # noqa: BLE001
            raise ChainError(f"{what} would revert: {revert_reason(e)}") from None
        row = None
        if self.key is None:
            tx_hash = fn.transact(tx)
        else:
            tx["nonce"] = self.w3.eth.get_transaction_count(self.account, "pending")
            tx["chainId"] = self.chain_id
            built = fn.build_transaction(tx)
            signed = self.key.sign_transaction(built)
            if journal is not None:  # on disk before the broadcast: a re-run finds it
                row = journal.record(
                    key, what, str(built.get("to") or ""), _hex(built.get("data", b"")), int(tx["nonce"]),
                    _hex(signed.hash), _hex(signed.raw_transaction),
                )  # fmt: skip
                failpoint(f"recorded:{what}")  # tests: interrupted before the broadcast
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            if row is not None:
                journal.broadcast(row)
        failpoint(f"sent:{what}")  # tests: interrupted between broadcast and mining
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if row is not None:
            journal.mined(row, receipt)
        if receipt["status"] != 1:
            raise ChainError(f"{what} reverted on-chain in block {receipt['blockNumber']}; the state moved, re-derive and retry.")
        return receipt


def rpc_web3(rpc_url: str) -> Any:
    """web3 over JSON-RPC. The chain id is asked once: web3's validation asks it again before
    every eth_call and send, which doubled the daemons' requests (a third of their time)."""
    from web3 import HTTPProvider, Web3
    from web3.types import RPCEndpoint

    provider = HTTPProvider(
        rpc_url, request_kwargs={"timeout": 30}, cache_allowed_requests=True, cacheable_requests={RPCEndpoint("eth_chainId")}
    )
    return Web3(provider)


def _hex(b: Any) -> str:
    return b if isinstance(b, str) else "0x" + bytes(b).hex()


def _call_target(fn: Any) -> tuple[str, str]:
    """The contract and calldata a send goes to (both empty for a deployment)."""
    if isinstance(fn, RawCall):
        return str(fn.fields["to"]), _hex(fn.fields["data"])
    try:
        return str(fn.address), _hex(fn._encode_transaction_data())
    except AttributeError:
        return "", ""


class RawCall:
    """Hand-built calldata with the part of a web3 ContractFunction's interface that `_send` and
    the daemons' sender use."""

    def __init__(self, w3: Any, to: str, data: bytes, fn_name: str = "raw call") -> None:
        self.w3, self.fields, self.fn_name = w3, {"to": to, "data": "0x" + bytes(data).hex()}, fn_name

    def call(self, tx: dict[str, Any]) -> Any:
        return self.w3.eth.call({**tx, **self.fields})

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        return self.w3.eth.estimate_gas({**tx, **self.fields})

    def transact(self, tx: dict[str, Any]) -> Any:
        return self.w3.eth.send_transaction({**tx, **self.fields})

    def build_transaction(self, tx: dict[str, Any]) -> dict[str, Any]:
        from web3._utils.transactions import fill_transaction_defaults

        return fill_transaction_defaults(self.w3, {**tx, **self.fields})


def revert_reason(e: BaseException) -> str:
    """The contract's revert string from a web3 error, or the error's first line."""
    msg = str(getattr(e, "message", None) or (e.args[0] if e.args else e))
    for prefix in ("execution reverted: ", "VM Exception while processing transaction: revert "):
        if prefix in msg:
            return msg.split(prefix, 1)[1].strip().strip("'\"")
    return msg.splitlines()[0] if msg else type(e).__name__


# -- the suite ----------------------------------------------------------------------------------


LOG_RANGE = 5_000  # blocks per eth_getLogs request: public RPC providers cap the range
READ_BATCH = 100  # eth_calls per JSON-RPC batch: public RPC providers cap a batch's size


def _call_params(fn: Any, block: int) -> list[Any]:
    return [{"to": fn.address, "data": fn._encode_transaction_data()}, hex(block)]


def _decoded(w3: Any, fn: Any, response: Any) -> Any:
    """An eth_call's JSON-RPC response decoded as web3 decodes `fn`'s outputs."""
    from eth_utils.abi import get_abi_output_types
    from web3._utils.abi import map_abi_data
    from web3._utils.normalizers import BASE_RETURN_NORMALIZERS

    if "error" in response:
        error = response["error"]
        raise ChainError(f"{fn.fn_name}: {error.get('message', error) if isinstance(error, dict) else error}")
    types = get_abi_output_types(fn.abi)
    try:
        values = map_abi_data(BASE_RETURN_NORMALIZERS, types, w3.codec.decode(types, bytes.fromhex(response["result"][2:])))
    except Exception as e:  # noqa: BLE001 - no result, or not the outputs' encoding
        raise ChainError(f"{fn.fn_name}: the node's answer does not decode ({type(e).__name__}); is {fn.address} the contract?") from None
    return values[0] if len(values) == 1 else values


@dataclass
class Deployment:
    """Addresses of one deployed suite on one chain, and the block it was deployed from (no
    event of the suite is older, so event reads start there)."""

    chain_id: int
    addresses: dict[str, str]
    block: int = 0

    def contracts(self, chain: Chain) -> dict[str, Any]:
        return {name: chain.contract(name, addr) for name, addr in self.addresses.items()}

    def save(self, path: Path = DEPLOYMENTS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[str(self.chain_id)] = {"block": self.block, "addresses": self.addresses}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, chain_id: int, path: Path = DEPLOYMENTS) -> Deployment:
        try:
            entry = json.loads(path.read_text())[str(chain_id)]
            if "addresses" not in entry:  # the first format: the addresses alone
                entry = {"block": 0, "addresses": entry}
            return cls(chain_id, dict(entry["addresses"]), int(entry["block"]))
        except (OSError, ValueError, KeyError, TypeError):
            raise ChainError(f"no bisectml deployment recorded for chain {chain_id}; run `bisectml deploy` first.") from None

    def logs(self, event: Any, filters: dict[str, Any] | None = None, from_block: int = 0, to_block: int | None = None) -> list[Any]:
        """`event`'s logs from max(from_block, the deployment's block) to `to_block` (default:
        the head), read LOG_RANGE blocks per request."""
        return [log for window in log_windows(event, filters, max(from_block, self.block), to_block) for log in window]


def log_windows(
    event: Any, filters: dict[str, Any] | None = None, from_block: int = 0, to_block: int | None = None, newest_first: bool = False
) -> Iterator[list[Any]]:
    """`event`'s logs from `from_block` to `to_block` (default: the head, by number: a node's
    log index serves a numbered range, "latest" may mean a scan), one request of LOG_RANGE
    blocks at a time, so that a reader looking for any one log stops at the first that serves."""
    head = int(event.w3.eth.block_number) if to_block is None else to_block
    starts = range(from_block, head + 1, LOG_RANGE)
    for lo in reversed(starts) if newest_first else starts:
        yield event.get_logs(from_block=lo, to_block=min(head, lo + LOG_RANGE - 1), argument_filters=filters or None)


def deploy_suite(chain: Chain) -> Deployment:
    """Deploy the token, the one-step contracts, the game, the referee, the task registry, its
    verification fees (Attestations), the data-availability registry and the market."""
    first = int(chain.w3.eth.block_number) + 1  # every contract is created in this block or later
    token = chain.deploy("Token")
    fams = [chain.deploy(n) for n in ("OneStepElementwise", "OneStepShape", "OneStepReduce", "OneStepLinalg")]
    game = chain.deploy("Game")
    referee = chain.deploy("Referee", game.address, *[f.address for f in fams])
    chain.send(game.functions.set_referee(referee.address), "bind the referee")
    availability = chain.deploy("Availability")
    tasks = chain.deploy("Tasks", token.address, game.address, availability.address)
    attestations = chain.deploy("Attestations", tasks.address)
    market = chain.deploy("Market", token.address, tasks.address, availability.address)
    names = ("OneStepElementwise", "OneStepShape", "OneStepReduce", "OneStepLinalg")
    addresses = {"Token": token.address, **{n: f.address for n, f in zip(names, fams)}}
    addresses |= {"Game": game.address, "Referee": referee.address, "Tasks": tasks.address}
    addresses |= {"Attestations": attestations.address, "Availability": availability.address, "Market": market.address}
    return Deployment(chain.chain_id, addresses, first)


@dataclass
class ChainOracle:
    """verifier.court.game.OneStepOracle over deployed one-step contracts (eth_call)."""

    chain: Chain
    deployment: Deployment

    def _family(self, desc: bytes) -> Any:
        op = desc[0]
        name = (
            "OneStepElementwise" if op <= 24 else "OneStepShape" if op <= 33 else "OneStepReduce" if op <= 38 else "OneStepLinalg"
        )
        return self.chain.contract(name, self.deployment.addresses[name])

    def terms(self, desc: bytes, headers: Sequence[bytes]) -> int:
        return self._family(desc).functions.terms(desc, list(headers)).call()

    def needs(self, desc, headers, out_index, phase, k, values):  # noqa: ANN001, ANN201
        fn = self._family(desc).functions.needs(desc, list(headers), out_index, phase, k, list(values))
        return [tuple(n) for n in fn.call()]

    def compute(self, desc, headers, out_index, phase, k, acc, values):  # noqa: ANN001, ANN201
        return self._family(desc).functions.compute(desc, list(headers), out_index, phase, k, acc, list(values)).call()

    def finalize(self, desc, headers, acc):  # noqa: ANN001, ANN201
        return self._family(desc).functions.finalize(desc, list(headers), acc).call()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["build"]:
        print("usage: python -m verifier.court.chain build", file=sys.stderr)
        return 2
    root = contracts_dir()
    data = build_artifacts(root)
    (root / "artifacts.json").write_text(json.dumps(data, indent=None, sort_keys=True) + "\n")
    print(f"wrote {root / 'artifacts.json'} ({len(data['contracts'])} contracts, vyper {data['vyper']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
