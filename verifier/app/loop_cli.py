"""`bisectml loop ...`: the closed loop's verbs (docs/SPEC.md 12), one per thing a depositor,
modeler, data provider (`bisectml loop data ...`) or keeper does. Thin over
`verifier.market.loop_client.LoopClient`; every failure is one line ending with what to do.
Amounts are BOND (`10`, `2.5`) or base units (`5wei`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from verifier.app.console import (
    AsJson,
    KeyFile,
    RpcUrl,
    amount_text,
    chain_errors,
    cli_session,
    emit,
    kv_table,
    reflow,
    say,
)

loop_app = typer.Typer(
    help="The closed loop: a vault that trades a verified metamodel.\n\nExample: bisectml loop show",
    no_args_is_help=True,
)
KINDS = {"metamodel": 0, "scores": 1, "values": 2}


def _session(rpc_url: str | None, key_file: Path | None, command: str, need_key: bool = True) -> Any:
    return cli_session(rpc_url, key_file, f"loop {command}", need_key=need_key)


def _client(rpc_url: str | None, key_file: Path | None, command: str, need_key: bool = True) -> Any:
    from verifier.market.loop_client import LoopClient, LoopError

    session = _session(rpc_url, key_file, command, need_key)
    address = session.deployment.addresses.get("Loop")
    if address is None:
        raise LoopError("no loop in this chain's deployment; run `bisectml loop deploy --pool ADDRESS` first.")
    return LoopClient.at(session.chain, address, session.deployment.block)


def _amount(text: str, what: str) -> int:
    from verifier.app.units import parse_amount

    return parse_amount(text, what)


def _kind(text: str) -> int:
    from verifier.market.loop_client import LoopError

    if text not in KINDS:
        raise LoopError(f"kind '{text}' is not a loop program; use metamodel, scores or values.")
    return KINDS[text]


def _salt(client: Any, period_id: int, model_id: int) -> bytes | None:
    """A prediction's salt, derived from the signing key, so that `reveal` finds it again in
    another process; None (random) for a key the node holds."""
    from verifier.commit.merkle import keccak

    key = client.chain.key
    if key is None:
        return None
    tag = b"bisectml loop prediction" + bytes.fromhex(client.loop.address[2:])
    return keccak(bytes(key.key), tag, period_id.to_bytes(32, "big"), model_id.to_bytes(32, "big"))


@loop_app.command("deploy")
def loop_deploy(
    pool: Annotated[str, typer.Option("--pool", help="The Pool.vy of the bond token and the asset to trade.")],
    models: Annotated[int, typer.Option("--models", min=1, max=16, help="Model slots of every period.")] = 2,
    datasets: Annotated[int | None, typer.Option("--datasets", help="Dataset slots of every period (1..8).")] = None,
    features: Annotated[int | None, typer.Option("--features", help="Features of a dataset row: the labels of that many past periods (1..16).")] = None,
    dataset_rows: Annotated[int | None, typer.Option("--dataset-rows", help="Rows of every dataset (datasets x rows at most 1,024).")] = None,
    k: Annotated[int | None, typer.Option("--k", help="Neighbours of the KNN-Shapley data valuation.")] = None,
    data_share_bps: Annotated[int | None, typer.Option("--data-share-bps", help="Share of a model's gain paid to its positively valued datasets.")] = None,
    data_slash_bps: Annotated[int | None, typer.Option("--data-slash-bps", help="Slash of a negatively valued dataset, bps of its reservation.")] = None,
    terms_file: Annotated[Path | None, typer.Option("--terms", help="JSON of the loop's terms (SPEC 12.1), over the options; default: the demo's.")] = None,
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Deploy a vault and a loop on this chain's suite, trading on --pool, and record them."""
    import dataclasses
    import json

    from verifier.app.demo_loop import TERMS
    from verifier.app.session import deployments_path
    from verifier.market.loop import LoopTerms, terms_error
    from verifier.market.loop_client import LoopClient, LoopError

    with chain_errors():
        data = {"datasets": datasets, "features": features, "dataset_rows": dataset_rows, "k": k,
                "data_share_bps": data_share_bps, "data_slash_bps": data_slash_bps}  # fmt: skip
        terms = dataclasses.replace(TERMS, models=models, **{f: v for f, v in data.items() if v is not None})
        if terms_file is not None:
            try:
                fields = json.loads(terms_file.read_text())
                terms = LoopTerms(**(dataclasses.asdict(terms) | {f: int(v) for f, v in fields.items()}))
            except (ValueError, TypeError) as e:
                raise LoopError(f"{terms_file}: not the loop's terms ({e}); give a JSON object of LoopTerms fields.") from None
        reason = terms_error(terms)
        if reason is not None:
            raise LoopError(f"{reason}; see docs/SPEC.md 12.1 for each bound.")
        if negative := [f for f, v in dataclasses.asdict(terms).items() if v < 0]:
            raise LoopError(f"{negative[0]} is negative; every term is a count, a duration, an amount or bps.")
        session = _session(rpc_url, key_file, "deploy")
        d = session.deployment
        pool_c = session.chain.contract("Pool", pool)
        try:
            asset = pool_c.functions.token1().call()
        except Exception:  # noqa: BLE001
            raise LoopError(f"{pool} is not a pool; give the address of a Pool.vy.") from None
        client = LoopClient.deploy(session.chain, terms, d.addresses["Token"], d.addresses["Tasks"], asset, pool, d.block)
        d.addresses |= {"Pool": pool, "Vault": client.addresses["Vault"], "Loop": client.addresses["Loop"]}
        d.save(deployments_path())
    result = {"loop": client.addresses["Loop"], "vault": client.addresses["Vault"], "pool": pool, "asset": asset}
    if as_json:
        return emit(result)
    say(f"[green]deployed[/green] loop {result['loop']} and vault {result['vault']}, trading on pool {pool}")


@loop_app.command("show")
def loop_show(
    period_id: Annotated[int | None, typer.Argument(min=1, help="A period; default: the latest.")] = None,
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """The loop's vault, terms and a period: schedule, slots, metamodel, position, label, datasets and their values."""
    import dataclasses

    from verifier.app.console import due_in
    from verifier.market.loop_client import PERIOD_STATES

    with chain_errors():
        c = _client(rpc_url, key_file, "show", need_key=False)
        v = c.vault.functions
        pid = period_id or int(c.loop.functions.period_count().call())
        out: dict[str, Any] = {
            "loop": c.addresses["Loop"], "vault_assets": int(v.assets().call()), "total_shares": int(v.total_shares().call()),
            "pending_deposits": int(v.pending_deposits().call()), "epoch": int(v.epoch().call()),
            "periods": int(c.loop.functions.period_count().call()), "datasets": c.dataset_count(),
            "terms": dataclasses.asdict(c.terms),
        }  # fmt: skip
        if pid:
            per = c.period(pid)
            if not per["state"]:
                from verifier.market.loop_client import LoopError

                raise LoopError(f"there is no period {pid}; the loop has {out['periods']}.")
            out["period"] = {k: (int(x) if not isinstance(x, bool) else x) for k, x in per.items()}
            out["period"]["id"] = pid
            out["slots"] = [{"model": m, "amount": a, "prediction": p} for m, a, p in c.slots(pid)]
            values = c.values(pid)
            out["data_slots"] = [{"dataset": d, "amount": a, "active": act, "value": None if values is None else values[i]}
                                 for i, (d, a, act) in enumerate(c.dataset_slots(pid))]  # fmt: skip
        now = int(c.chain.w3.eth.get_block("latest")["timestamp"])
    if as_json:
        return emit(out)
    rows: list[tuple[str, object]] = [
        ("loop", out["loop"]), ("vault", amount_text(out["vault_assets"])), ("shares", f"{out['total_shares']:,}"),
        ("requested deposits", amount_text(out["pending_deposits"])), ("periods", out["periods"]),
        ("datasets", out["datasets"]), ("data side", _data_side(out["terms"])),
    ]  # fmt: skip
    if pid:
        p = out["period"]
        rows += [("period", f"{pid} ({PERIOD_STATES.get(p['state'], '?')})")]
        rows += [(k.replace("_", " "), due_in(p[k] - now, p[k])) for k in ("commit_deadline", "reveal_deadline", "trade_at", "end", "result_deadline")]
        rows += [("pool", amount_text(p["pool"])), ("max stake", amount_text(p["max_stake"])), ("metamodel", p["metamodel"]),
                 ("position", f"{amount_text(p['spent'])} spent, {p['position']:,} asset held"), ("label", p["label"])]  # fmt: skip
        rows += [(f"slot {i}", f"model {s['model']}, {amount_text(s['amount'])}, prediction {s['prediction']}") for i, s in enumerate(out["slots"])]
        for i, s in enumerate(out["data_slots"]):
            state = "active" if s["active"] else "joined, named by no revealed model"
            rows += [(f"dataset slot {i}", f"dataset {s['dataset']}, {amount_text(s['amount'])}, {state}, value {s['value']}")]
    say(kv_table("the loop", rows))


def _data_side(t: dict[str, int]) -> str:
    if not t["data_share_bps"] and not t["data_slash_bps"]:
        return "none (no data share, no data slash)"
    return (f"{t['datasets']} dataset slots of {t['dataset_rows']} rows x {t['features']} features, k {t['k']}; "
            f"share {t['data_share_bps'] / 100:g}% of gains, slash {t['data_slash_bps'] / 100:g}%")  # fmt: skip


@loop_app.command("deposit")
def loop_deposit(amount: Annotated[str, typer.Argument()], rpc_url: RpcUrl = None, key_file: KeyFile = None) -> None:
    """Request a deposit into the vault: it buys shares when the next period opens."""
    with chain_errors():
        _client(rpc_url, key_file, "deposit").deposit(_amount(amount, "amount"))
    say(f"requested a deposit of {amount} BOND; `bisectml loop claim` gives you its shares once the next period opens")


@loop_app.command("withdraw")
def loop_withdraw(shares: Annotated[int, typer.Argument(min=1)], rpc_url: RpcUrl = None, key_file: KeyFile = None) -> None:
    """Request to redeem shares: they are paid when the next period opens (or at `loop turn`)."""
    with chain_errors():
        _client(rpc_url, key_file, "withdraw").withdraw(shares)
    say(f"requested to redeem {shares:,} shares; `bisectml loop claim` pays them once the next period opens")


@loop_app.command("claim")
def loop_claim(
    account: Annotated[str | None, typer.Argument(help="Whose request; default: yours.")] = None,
    rpc_url: RpcUrl = None, key_file: KeyFile = None,
) -> None:
    """Collect the shares or tokens of a request the vault took in."""
    with chain_errors():
        c = _client(rpc_url, key_file, "claim")
        c.claim(account)
        held = c.shares(account)
    say(f"claimed; {account or c.account} holds {held:,} shares")


@loop_app.command("register")
def loop_register(
    stake: Annotated[str, typer.Option("--stake", help="BOND staked on the model.")],
    dataset: Annotated[list[int] | None, typer.Option("--dataset", min=1, help="A dataset id the model trained on; repeat.")] = None,
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Register a model of yours on the loop, naming the datasets it trained on, and stake on it."""
    named = list(dataset or [])
    with chain_errors():
        model_id = _client(rpc_url, key_file, "register").register(_amount(stake, "--stake"), tuple(named))
    if as_json:
        return emit({"model_id": model_id, "datasets": named})
    trained = f" (datasets {named})" if named else ""
    say(f"[green]registered[/green] model {model_id}{trained} with {stake} BOND staked")


@loop_app.command("commit")
def loop_commit(
    period_id: Annotated[int, typer.Argument(min=1)], model_id: Annotated[int, typer.Argument(min=1)],
    prediction: Annotated[int, typer.Argument(min=-100, max=100, help="The return you expect, in percent.")],
    stake: Annotated[str, typer.Option("--stake", help="BOND of the model's free stake to reserve.")],
    rpc_url: RpcUrl = None, key_file: KeyFile = None,
) -> None:
    """Commit a prediction of the period's return, reserving stake (reveal it after the commit deadline)."""
    with chain_errors():
        c = _client(rpc_url, key_file, "commit")
        c.commit(period_id, model_id, prediction, _amount(stake, "--stake"), salt=_salt(c, period_id, model_id))
    say(f"[green]committed[/green] model {model_id}'s prediction in period {period_id}; "
        f"reveal it with `bisectml loop reveal {period_id} {model_id} {prediction}` after the commit deadline")  # fmt: skip


@loop_app.command("reveal")
def loop_reveal(
    period_id: Annotated[int, typer.Argument(min=1)], model_id: Annotated[int, typer.Argument(min=1)],
    prediction: Annotated[int, typer.Argument(min=-100, max=100)],
    rpc_url: RpcUrl = None, key_file: KeyFile = None,
) -> None:
    """Reveal the prediction you committed (the same number; the salt comes from your key)."""
    with chain_errors():
        c = _client(rpc_url, key_file, "reveal")
        salt = _salt(c, period_id, model_id)
        if salt is None:
            from verifier.market.loop_client import LoopError

            raise LoopError("this account's key is held by the node; reveal from the process that committed.")
        c.secrets[period_id, model_id] = (prediction, salt)
        c.reveal(period_id, model_id)
    say(f"[green]revealed[/green] model {model_id}'s prediction {prediction:+d} in period {period_id}")


@loop_app.command("post")
def loop_post(
    period_id: Annotated[int, typer.Argument(min=1)], kind: Annotated[str, typer.Argument(help="metamodel, scores or values.")],
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Post the period's metamodel, scores or data values program as a task (anyone; paid from the period's budget)."""
    with chain_errors():
        task_id = _client(rpc_url, key_file, "post").post_task(period_id, _kind(kind))
    if as_json:
        return emit({"task_id": task_id})
    say(f"[green]posted[/green] period {period_id}'s {kind} as task {task_id}")


@loop_app.command("record")
def loop_record(
    period_id: Annotated[int, typer.Argument(min=1)], kind: Annotated[str, typer.Argument(help="metamodel, scores or values.")],
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Run the period's program from the chain's data and record its finalized result (anyone)."""
    from verifier.engine.trace import Trace

    with chain_errors():
        c = _client(rpc_url, key_file, "record")
        c.recordable(period_id, _kind(kind))  # before the program is run
        with Trace(c.program(period_id, _kind(kind))) as trace:
            trace.run()
            values = c.record(period_id, _kind(kind), trace)
    if as_json:
        return emit({"values": values})
    say(f"[green]recorded[/green] period {period_id}'s {kind}: {values}")


def _simple(verb: str, method: str, help_: str) -> None:
    def command(
        period_id: Annotated[int, typer.Argument(min=1)], rpc_url: RpcUrl = None, key_file: KeyFile = None,
    ) -> None:
        with chain_errors():
            c = _client(rpc_url, key_file, verb)
            c.chain.send(getattr(c.loop.functions, method)(period_id), verb)
        say(f"period {period_id}: {verb} done")

    command.__doc__ = help_
    loop_app.command(verb)(command)


_simple("trade", "trade", "Read the entry price (from trade_at) and buy on the recorded metamodel (anyone).")
_simple("close", "close", "Read the exit price and sell the position (anyone, from the period's end).")
_simple("unwind", "unwind", "Sell a closed period's position the pool refused at close (anyone).")
_simple("settle", "settle", "Pay the models by their recorded scores and their datasets by their values (anyone, once).")
_simple("void", "void", "End a period whose scores did not come by the result deadline (anyone).")
_simple("sync", "sync", "Take back the rewards of the period's reclaimable tasks (anyone).")


@loop_app.command("open")
def loop_open(rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False) -> None:
    """Open the next period (anyone, once the last one ended and its position is sold)."""
    with chain_errors():
        pid = _client(rpc_url, key_file, "open").open_period()
    if as_json:
        return emit({"period_id": pid})
    say(f"[green]opened[/green] period {pid}")


@loop_app.command("turn")
def loop_turn(rpc_url: RpcUrl = None, key_file: KeyFile = None) -> None:
    """Take in the vault's requests between periods (anyone)."""
    with chain_errors():
        c = _client(rpc_url, key_file, "turn")
        c.chain.send(c.loop.functions.turn(), "turn")
    say("the vault took in its requests; `bisectml loop claim` collects yours")


data_app = typer.Typer(
    name="loop data",
    help="Data providers: publish datasets on the loop, stake on them and join periods; a model naming a "
    "dataset passes it a share of its gains when the period values it positively (SPEC 12.5).\n\n"
    "Example: bisectml loop data publish prices.npz --stake 100",
    no_args_is_help=True,
)


def _dataset_row(c: Any, dataset_id: int) -> dict[str, Any]:
    d = c.dataset(dataset_id)
    return {"dataset_id": dataset_id, "owner": d["owner"], "features": "0x" + d["features"].hex(),
            "labels": "0x" + d["labels"].hex(), "stake": d["stake"], "reserved": d["reserved"]}  # fmt: skip


@data_app.command("publish")
def data_publish(
    file: Annotated[Path, typer.Argument(help=".npz with int8 'features' [R, F] and 'labels' [R] (-1/1), or a BMLD file, of the loop's shape.")],
    stake: Annotated[str, typer.Option("--stake", help="BOND staked on the dataset.")],
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Publish a dataset on the loop (its bytes on-chain first) and stake on it."""
    from verifier.app.market_cli import _dataset_file

    with chain_errors():
        x, y = _dataset_file(file)
        c = _client(rpc_url, key_file, "data publish")
        amount = _amount(stake, "--stake")
        x, y = c.dataset_of_shape(x, y)  # refused before the node is asked for anything else
        dataset_id = c.publish_dataset(x, y, amount)
    if as_json:
        return emit({"dataset_id": dataset_id, "rows": int(x.shape[0]), "features": int(x.shape[1]), "stake": amount})
    say(f"[green]published[/green] dataset {dataset_id}: {x.shape[0]} rows x {x.shape[1]} features, {stake} BOND staked; "
        f"join a period with `bisectml loop data join PERIOD {dataset_id}` before its commit deadline")  # fmt: skip


@data_app.command("stake")
def data_stake(
    dataset_id: Annotated[int, typer.Argument(min=1)], amount: Annotated[str, typer.Argument()],
    rpc_url: RpcUrl = None, key_file: KeyFile = None,
) -> None:
    """Add stake to your dataset."""
    with chain_errors():
        c = _client(rpc_url, key_file, "data stake")
        c.add_data_stake(dataset_id, _amount(amount, "amount"))
        d = c.dataset(dataset_id)
    say(f"staked {amount} BOND more on dataset {dataset_id}; it holds {amount_text(d['stake'])}")


@data_app.command("withdraw")
def data_withdraw(
    dataset_id: Annotated[int, typer.Argument(min=1)], amount: Annotated[str, typer.Argument()],
    rpc_url: RpcUrl = None, key_file: KeyFile = None,
) -> None:
    """Withdraw free stake from your dataset (what no open period reserved)."""
    with chain_errors():
        c = _client(rpc_url, key_file, "data withdraw")
        c.withdraw_data_stake(dataset_id, _amount(amount, "amount"))
        d = c.dataset(dataset_id)
    say(f"withdrew {amount} BOND from dataset {dataset_id}; it holds {amount_text(d['stake'])}")


@data_app.command("join")
@reflow
def data_join(
    period_id: Annotated[int, typer.Argument(min=1)], dataset_id: Annotated[int, typer.Argument(min=1)],
    stake: Annotated[str | None, typer.Option("--stake", help="BOND of the free stake to reserve (default: all of it).")] = None,
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Put your dataset in a period (owner only, before its commit deadline), reserving part of
    its free stake until the period ends: it earns a share of the gains of the revealed models
    that name it if the period values it positively, and loses data_slash_bps of the
    reservation if negatively."""
    with chain_errors():
        c = _client(rpc_url, key_file, "data join")
        c.join(period_id, dataset_id, None if stake is None else _amount(stake, "--stake"))
        slots = c.dataset_slots(period_id)
    slot = next(i for i, (d, _, _) in enumerate(slots) if d == dataset_id)
    if as_json:
        return emit({"period_id": period_id, "dataset_id": dataset_id, "slot": slot, "amount": slots[slot][1]})
    say(f"[green]joined[/green] period {period_id} with dataset {dataset_id} (slot {slot}, {amount_text(slots[slot][1])} reserved)")


@data_app.command("show")
def data_show(
    dataset_id: Annotated[int, typer.Argument(min=1)],
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Show a dataset: owner, commitments, stake and what open periods reserve of it."""
    with chain_errors():
        row = _dataset_row(_client(rpc_url, key_file, "data show", need_key=False), dataset_id)
    if as_json:
        return emit(row)
    row |= {"stake": amount_text(row["stake"]), "reserved": amount_text(row["reserved"])}
    say(kv_table(f"dataset {dataset_id}", [(k, v) for k, v in row.items() if k != "dataset_id"]))


@data_app.command("list")
def data_list(rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False) -> None:
    """List the loop's datasets with their stake."""
    from rich.table import Table

    with chain_errors():
        c = _client(rpc_url, key_file, "data list", need_key=False)
        rows = [_dataset_row(c, i) for i in range(1, c.dataset_count() + 1)]
    if as_json:
        return emit(rows)
    t = Table("id", "owner", "stake", "reserved", box=None)
    for r in rows:
        t.add_row(str(r["dataset_id"]), r["owner"], amount_text(r["stake"]), amount_text(r["reserved"]))
    say(t if rows else "no datasets yet; publish one with `bisectml loop data publish`")


keeper_app = typer.Typer(
    name="loop keeper",
    help="Run a keeper: make each call of a loop period when it falls due.\n\n"
    "Example: bisectml loop keeper run --key-file key.txt --data-dir ./keeper",
    no_args_is_help=True,
)


def _keeper() -> type:
    from verifier.app.keeper import Keeper

    return Keeper


def _add_keeper() -> None:
    import os

    from solvers.cli import add_daemon_commands

    add_daemon_commands(
        keeper_app, "run", _keeper, Path(os.path.expanduser("~/.bisectml/keeper")), "keeper",
        "Open each period, post its programs as tasks, record their finalized results, read the entry and exit\n"
        "    prices in their windows, and settle or void it: every permissionless call of the loop, on time.\n"
        "    Needs ether for gas, no BOND; another keeper only races it (nothing is sent twice).",
        "./keeper", example_args="", serves_tasks=False,
    )  # fmt: skip
    loop_app.add_typer(keeper_app, name="keeper")


def register(app: typer.Typer) -> None:
    app.add_typer(loop_app, name="loop")


def _add_examples() -> None:
    """Every verb's help ends with an example, as the other command groups' do."""
    examples = {
        "deploy": "--pool 0xPOOL", "deposit": "1000", "withdraw": "500", "register": "--stake 100 --dataset 1",
        "commit": "1 2 30 --stake 50", "reveal": "1 2 30", "post": "1 metamodel", "record": "1 metamodel",
        "show": "1", "claim": "", "open": "", "turn": "",
    }  # fmt: skip
    data = {"publish": "prices.npz --stake 100", "stake": "1 50", "withdraw": "1 50", "join": "1 1 --stake 50",
            "show": "1", "list": ""}  # fmt: skip
    for group, app, args in (("loop", loop_app, examples), ("loop data", data_app, data)):
        for info in app.registered_commands:
            name = info.name or info.callback.__name__
            text = (info.help or info.callback.__doc__ or "").rstrip()
            info.help = f"{text}\n\nExample: bisectml {group} {name} {args.get(name, '1')}".rstrip()


_add_examples()
_add_keeper()
loop_app.add_typer(data_app, name="data")
