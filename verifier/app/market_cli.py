"""`bisectml data|model|round ...`: the market's verbs, one per thing a participant does.

Thin over `verifier.market.client.MarketClient`; every failure is one line ending with what to do (the
top-level `cli` module's error handling). Amounts are BOND (`10`, `2.5`) or base units (`5wei`);
durations are seconds or `1d`, `6h`, `30m`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from verifier.app.console import (
    AsJson,
    ContentDir,
    IpfsApi,
    IpfsGateway,
    KeyFile,
    RpcUrl,
    chain_errors,
    cli_session,
    emit,
    kv_table,
    say,
)

data_app = typer.Typer(help="Data providers: publish datasets and stake on them.\n\nExample: bisectml data publish digits.npz --stake 100", no_args_is_help=True)
model_app = typer.Typer(help="Modelers: register models, stake, commit and reveal predictions.\n\nExample: bisectml model commit 1 2 predictions.npy", no_args_is_help=True)
round_app = typer.Typer(help="Rounds: open one, follow it, post its programs, record results, settle.\n\nExample: bisectml round show 1", no_args_is_help=True)



def _client(
    rpc_url: str | None, key_file: Path | None, command: str, content: tuple[Path | None, str | None, str | None] | None,
    need_key: bool = True,
) -> Any:
    """The market client; `content` is (--content-dir, --ipfs-api, --ipfs-gateway), None for the
    commands that read no content (they keep the local store and ignore the IPFS settings)."""
    from verifier.market.client import MarketClient
    from verifier.market.content import ContentStore
    from verifier.market.ipfs import content_store

    # a bad IPFS URL is refused before the chain is touched
    store = content_store(*content) if content is not None else ContentStore()
    session = cli_session(rpc_url, key_file, command, need_key=need_key)
    return MarketClient(session.chain, session.deployment, store)


def _done(result: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        emit(result)
    else:
        say(text)


def _amount(text: str, what: str) -> int:
    from verifier.app.units import parse_amount

    return parse_amount(text, what)


def _duration(text: str, what: str) -> int:
    from verifier.app.units import parse_duration

    return parse_duration(text, what)


def _ints(path: Path, what: str) -> np.ndarray:
    """An integer array from .npy, or text with one integer per line (or comma-separated)."""
    from verifier.market.client import MarketError

    try:
        if path.suffix == ".npy":
            a = np.load(path, allow_pickle=False)
        else:
            a = np.array([int(v) for v in path.read_text().replace(",", " ").split()], dtype=np.int64)
    except (ValueError, UnicodeDecodeError, EOFError):
        raise MarketError(f"{path} is not a list of integers; give a .npy array or one integer per line.") from None
    if not np.issubdtype(a.dtype, np.integer):
        raise MarketError(f"{path} holds {a.dtype} values; quantize {what} to integers first.")
    return a


def _dataset_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from verifier.market.client import MarketError
    from verifier.market.content import decode_dataset

    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "features" in z and "labels" in z:
                    return z["features"], z["labels"]
        except (ValueError, OSError, EOFError) as e:
            raise MarketError(f"{path} is not a readable .npz file ({type(e).__name__}); save it with numpy.savez.") from None
        raise MarketError(f"{path} needs arrays named 'features' [R, F] and 'labels' [R].")
    return decode_dataset(path.read_bytes())


# -- data -------------------------------------------------------------------------------------


@data_app.command("publish")
def data_publish(
    file: Annotated[Path, typer.Argument(help=".npz with int8 'features' [R, F] and 'labels' [R] (-1/1), or a BMLD file.")],
    stake: Annotated[str, typer.Option("--stake", help="BOND staked on the dataset.")],
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
    content_dir: ContentDir = None, ipfs_api: IpfsApi = None, ipfs_gateway: IpfsGateway = None,
) -> None:
    """Publish a dataset (content id + commitments on-chain) and stake on it."""
    with chain_errors():
        x, y = _dataset_file(file)
        r = _client(rpc_url, key_file, "data publish", (content_dir, ipfs_api, ipfs_gateway)).publish_dataset(x, y, _amount(stake, "--stake"))
    _done(r, as_json, f"[green]published[/green] dataset {r['dataset_id']}: {r['rows']} rows x {r['n_features']} features, cid {r['cid']}")


@data_app.command("show")
def data_show(
    dataset_id: Annotated[int, typer.Argument(min=1)],
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
    content_dir: ContentDir = None, ipfs_api: IpfsApi = None, ipfs_gateway: IpfsGateway = None,
) -> None:
    """Show a dataset: owner, content id, commitments, stake and whether it is at risk."""
    with chain_errors():
        d = _client(rpc_url, key_file, "data show", (content_dir, ipfs_api, ipfs_gateway), need_key=False).dataset(dataset_id)
    d = _hexed(d)
    if as_json:
        return emit(d)
    say(kv_table(f"dataset {dataset_id}", list(d.items())))


@data_app.command("join")
def data_join(
    round_id: Annotated[int, typer.Argument(min=1)],
    dataset_id: Annotated[int, typer.Argument(min=1)],
    stake: Annotated[str | None, typer.Option("--stake", help="BOND of the free stake to reserve (default: all of it).")] = None,
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Put your dataset in a round (owner only, before its commit deadline), reserving part of
    its free stake: that part is at risk there, and earns there, until the round is settled or
    void, and no other round or withdrawal can take it meanwhile.

    Example: bisectml data join 3 1 --stake 50
    """
    with chain_errors():
        amount = None if stake is None else _amount(stake, "--stake")
        r = _client(rpc_url, key_file, "data join", None).join_round(round_id, dataset_id, amount)
    took = "" if r["displaced"] is None else f", the slot of dataset {r['displaced']}, whose reservation was smaller"
    _done(r, as_json, f"[green]joined[/green] round {round_id} with dataset {dataset_id} (slot {r['slot']}{took})")


def _stake_verbs(app: typer.Typer, verb: str, noun: str) -> None:
    """`<verb> stake ID AMOUNT` and `<verb> withdraw ID AMOUNT` (owner only)."""

    def stake(
        item_id: Annotated[int, typer.Argument(min=1, metavar="ID")], amount: Annotated[str, typer.Argument()],
        rpc_url: RpcUrl = None, key_file: KeyFile = None,
    ) -> None:
        with chain_errors():
            getattr(_client(rpc_url, key_file, f"{verb} stake", None), f"stake_{noun}")(item_id, _amount(amount, "amount"))
        say(f"staked {amount} BOND more on {noun} {item_id}")

    def withdraw(
        item_id: Annotated[int, typer.Argument(min=1, metavar="ID")], amount: Annotated[str, typer.Argument()],
        rpc_url: RpcUrl = None, key_file: KeyFile = None,
    ) -> None:
        with chain_errors():
            getattr(_client(rpc_url, key_file, f"{verb} withdraw", None), f"withdraw_{noun}")(item_id, _amount(amount, "amount"))
        say(f"withdrew {amount} BOND from {noun} {item_id}")

    stake.__doc__ = f"Add stake to your {noun}."
    withdraw.__doc__ = f"Withdraw free stake from your {noun} (what no round has reserved)."
    app.command("stake")(stake)
    app.command("withdraw")(withdraw)


_stake_verbs(data_app, "data", "dataset")
_stake_verbs(model_app, "model", "model")


# -- models -----------------------------------------------------------------------------------


@model_app.command("register")
def model_register(
    dataset: Annotated[list[int], typer.Option("--dataset", help="A dataset id the model was trained on; repeat.")],
    stake: Annotated[str, typer.Option("--stake", help="BOND staked on the model.")],
    description: Annotated[Path | None, typer.Option("--file", help="The model file, published by content id.")] = None,
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
    content_dir: ContentDir = None, ipfs_api: IpfsApi = None, ipfs_gateway: IpfsGateway = None,
) -> None:
    """Register a model, naming the datasets it trained on, and stake on it."""
    with chain_errors():
        blob = description.read_bytes() if description else b""
        r = _client(rpc_url, key_file, "model register", (content_dir, ipfs_api, ipfs_gateway)).register_model(list(dataset), _amount(stake, "--stake"), blob)
    _done(r, as_json, f"[green]registered[/green] model {r['model_id']} (datasets {r['datasets']}), cid {r['cid']}")


@model_app.command("commit")
def model_commit(
    round_id: Annotated[int, typer.Argument(min=1)], model_id: Annotated[int, typer.Argument(min=1)],
    predictions: Annotated[Path, typer.Argument(help=".npy or text: one integer in -100..100 per round row.")],
    stake: Annotated[str | None, typer.Option("--stake", help="BOND of the free stake to reserve (default: all of it).")] = None,
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Commit predictions for a round (saved locally with their salt until you reveal),
    reserving part of the model's free stake as its stake at risk there: its weight and the
    base of its gain or loss. Split a stake across rounds by reserving part in each.

    Example: bisectml model commit 3 2 preds.npy --stake 100
    """
    with chain_errors():
        amount = None if stake is None else _amount(stake, "--stake")
        r = _client(rpc_url, key_file, "model commit", None).commit(round_id, model_id, _ints(predictions, "predictions"), amount)
    r["commitment"] = "0x" + r["commitment"].hex()
    took = "" if r["displaced"] is None else f", the slot of model {r['displaced']}, whose reservation was smaller"
    _done(r, as_json, f"[green]committed[/green] model {model_id} in round {round_id} (slot {r['slot']}{took}); "
                      "reveal after the commit deadline")  # fmt: skip


@model_app.command("reveal")
def model_reveal(
    round_id: Annotated[int, typer.Argument(min=1)], model_id: Annotated[int, typer.Argument(min=1)],
    rpc_url: RpcUrl = None, key_file: KeyFile = None,
) -> None:
    """Reveal the predictions you committed (from the saved secret)."""
    with chain_errors():
        _client(rpc_url, key_file, "model reveal", None).reveal(round_id, model_id)
    say(f"[green]revealed[/green] model {model_id}'s predictions in round {round_id}")


@model_app.command("release")
def model_release(
    round_id: Annotated[int, typer.Argument(min=1)], model_id: Annotated[int, typer.Argument(min=1)],
    rpc_url: RpcUrl = None, key_file: KeyFile = None,
) -> None:
    """Unlock the stake of a model that committed but did not reveal (after the reveal deadline),
    less the round's minimum stake, which a commitment never revealed forfeits (burned)."""
    with chain_errors():
        _client(rpc_url, key_file, "model release", None).release(round_id, model_id)
    say(f"released model {model_id}'s stake from round {round_id}")


# -- rounds -----------------------------------------------------------------------------------


@round_app.command("open")
def round_open(
    features: Annotated[Path, typer.Argument(help=".npy int8 [n, F]: the rows to predict.")],
    labels: Annotated[Path, typer.Argument(help=".npy or text: the held-out labels (-1, 0, 1), committed now, revealed later.")],
    pool: Annotated[str, typer.Option("--pool", help="BOND paid out to contributors.")],
    budget: Annotated[str, typer.Option("--budget", help="BOND for the three tasks' rewards (and reposts).")],
    task_reward: Annotated[str, typer.Option("--task-reward", help="Reward of each of the round's tasks.")],
    solver_bond: Annotated[str, typer.Option("--solver-bond")],
    challenger_bond: Annotated[str, typer.Option("--challenger-bond")],
    models: Annotated[int, typer.Option("--models", help="Model slots (1..16).")] = 4,
    datasets: Annotated[int, typer.Option("--datasets", help="Dataset slots (1..8).")] = 4,
    dataset_rows: Annotated[int, typer.Option("--dataset-rows", help="Rows of every dataset in the round.")] = 64,
    k: Annotated[int, typer.Option("--k", help="Neighbours of the KNN-Shapley data valuation.")] = 5,
    commit_in: Annotated[str, typer.Option("--commit-in", help="Commit deadline, from now.")] = "1d",
    reveal_for: Annotated[str, typer.Option("--reveal-for", help="Reveal window after the commit deadline.")] = "1d",
    labels_for: Annotated[str, typer.Option("--labels-for", help="Labels window after the reveal deadline.")] = "1d",
    results_for: Annotated[str, typer.Option("--results-for", help="Time to record results after the labels deadline.")] = "30d",
    factor_bps: Annotated[int, typer.Option("--factor-bps", help="Payout rate per score point, in bps.")] = 10_000,
    cap_bps: Annotated[int, typer.Option("--cap-bps", help="Largest gain or loss, in bps of stake (at most 2_500).")] = 2_500,
    data_share_bps: Annotated[int, typer.Option("--data-share-bps", help="Share of a model's gain paid to its datasets.")] = 2_000,
    data_slash_bps: Annotated[int, typer.Option("--data-slash-bps", help="Slash of a dataset with negative value, bps of stake (at most 1_000).")] = 1_000,
    bonus_bps: Annotated[int, typer.Option("--bonus-bps", help="Largest contribution bonus, in bps of stake (at most a quarter of --cap-bps).")] = 500,
    min_stake: Annotated[str, typer.Option("--min-stake", help="Least stake a model needs to commit (keeps dust sybils out).")] = "1",
    window: Annotated[str, typer.Option("--window", help="Each task's challenge window, 2d..7d.")] = "2d",
    clock: Annotated[str, typer.Option("--clock", help="Each task's chess clock per game, 2d..7d.")] = "2d",
    arity: Annotated[int, typer.Option("--arity")] = 8,
    task_duration: Annotated[str, typer.Option("--task-duration", help="How long each task accepts claims.")] = "7d",
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
    content_dir: ContentDir = None, ipfs_api: IpfsApi = None, ipfs_gateway: IpfsGateway = None,
) -> None:
    """Open a round: publish its features, commit its labels, escrow the pool and the task budget.

    Every rate, phase and task term has a protocol bound (docs/SPEC.md 8.1); terms outside them
    are refused before anything is sent.

    Example: bisectml round open X.npy y.npy --pool 100 --budget 30 --task-reward 10 --solver-bond 500 --challenger-bond 250
    """
    from onnx_models.market import Shape
    from verifier.market.client import MarketError

    with chain_errors():
        x = _ints(features, "features")
        y = _ints(labels, "labels")
        if x.ndim != 2:
            raise MarketError(f"{features} must hold a 2-D array [n, F] of round features.")
        client = _client(rpc_url, key_file, "round open", (content_dir, ipfs_api, ipfs_gateway))
        shape = Shape(models, datasets, x.shape[0], x.shape[1], dataset_rows, k)
        now = client.now()
        c = now + _duration(commit_in, "--commit-in")
        r_ = c + _duration(reveal_for, "--reveal-for")
        lab = r_ + _duration(labels_for, "--labels-for")
        schedule = {"commit_deadline": c, "reveal_deadline": r_, "labels_deadline": lab,
                    "result_deadline": lab + _duration(results_for, "--results-for")}  # fmt: skip
        economics = {"factor_bps": factor_bps, "cap_bps": cap_bps, "data_share_bps": data_share_bps,
                     "data_slash_bps": data_slash_bps, "bonus_bps": bonus_bps,
                     "min_stake": _amount(min_stake, "--min-stake")}  # fmt: skip
        terms = {"reward": _amount(task_reward, "--task-reward"), "window": _duration(window, "--window"),
                 "clock": _duration(clock, "--clock"), "solver_bond": _amount(solver_bond, "--solver-bond"),
                 "challenger_bond": _amount(challenger_bond, "--challenger-bond"), "arity": arity,
                 "duration": _duration(task_duration, "--task-duration")}  # fmt: skip
        r = client.open_round(shape, schedule, economics, terms, x, y, _amount(pool, "--pool"), _amount(budget, "--budget"))
    _done(r, as_json, f"[green]opened[/green] round {r['round_id']}; features {r['features_cid']}; labels committed (secret kept locally)")


def round_summary(client: Any, round_id: int) -> dict[str, Any]:
    r = client.round(round_id)
    try:
        client.verify_round(r)
        verified = "canonical programs"
    except Exception as e:  # noqa: BLE001 - shown, not raised: `show` must work on any round
        verified = f"NOT CANONICAL: {e}"
    m = client.market.functions
    tasks = {name: int(m.task_of(round_id, k).call()) for k, name in enumerate(("metamodel", "scores", "values"))}
    from verifier.market.client import ROUND_STATES

    return {
        "round_id": round_id, "sponsor": r.sponsor, "state": ROUND_STATES.get(r.state, str(r.state)),
        "shape": {f: getattr(r.shape, f) for f in ("models", "datasets", "rows", "features", "dataset_rows", "k")},
        "schedule": r.schedule, "economics": r.economics, "terms": {k: str(v) for k, v in r.terms.items()},
        "pool": str(r.pool), "budget": str(r.budget), "max_stake": str(r.max_stake), "features_cid": r.features_cid,
        "programs": verified,
        "models": [int(v) for v in m.round_models(round_id).call()],
        "datasets": [int(v) for v in m.round_datasets(round_id).call()],
        "weights": client.round_weights(r),
        "scores": [int(v) for v in m.scores(round_id).call()],
        "values": [int(v) for v in m.values(round_id).call()],
        "tasks": tasks,
    }  # fmt: skip


@round_app.command("show")
def round_show(
    round_id: Annotated[int, typer.Argument(min=1)],
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Show a round: shape, schedule, economics, models, datasets, tasks, results; and whether its
    programs are the canonical ones for its shape (never stake in a round where they are not)."""
    with chain_errors():
        client = _client(rpc_url, key_file, "round show", None, need_key=False)
        s = round_summary(client, round_id)
        now = client.now()  # the chain's clock: deadlines are the chain's, not this machine's
    if as_json:
        return emit(s)
    say(kv_table(f"round {round_id}", _readable(s, now)))


def _readable(s: dict[str, Any], now: int) -> list[tuple[str, object]]:
    """`round show`'s rows for people: deadlines as UTC times with what is left, token amounts
    in BOND, rates in bps (`--json` keeps base units and Unix times)."""
    from verifier.app.console import amount_text, due_in
    from verifier.app.units import format_duration

    rows: list[tuple[str, object]] = []
    for k, v in s.items():
        if k == "schedule":
            rows += [(name.replace("_", " "), due_in(int(t) - now, int(t))) for name, t in v.items()]
        elif k == "economics":
            rows += [(name.replace("_", " "), amount_text(b) if name == "min_stake" else f"{int(b):,} bps")
                     for name, b in v.items()]  # fmt: skip
        elif k == "terms":
            rows += [(f"task {name}", amount_text(t) if name in ("reward", "solver_bond", "challenger_bond")
                      else format_duration(int(t)) if name in ("window", "clock", "duration") else t)
                     for name, t in v.items()]  # fmt: skip
        elif k in ("pool", "budget", "max_stake"):
            rows.append((k.replace("_", " "), amount_text(v)))
        else:
            rows.append((k, ", ".join(f"{a} {b}" for a, b in v.items()) if isinstance(v, dict) else v))
    return rows


def _simple(verb: str, method: str, help_: str) -> None:
    def command(
        round_id: Annotated[int, typer.Argument(min=1)],
        rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
    ) -> None:
        with chain_errors():
            receipt = getattr(_client(rpc_url, key_file, f"round {verb}", None), method)(round_id)
        _done({"round_id": round_id, "gas": receipt["gasUsed"]}, as_json, f"round {round_id}: {verb} done")

    command.__doc__ = help_
    round_app.command(verb)(command)


_simple("reveal-labels", "reveal_labels", "Reveal the round's labels (sponsor; from the saved secret).")
_simple("void", "void", "Void a round whose labels or results did not come in time: stakes released, pool refunded.")
_simple("sync", "sync", "Return the rewards of reclaimed tasks to the round's budget.")


@round_app.command("post")
def round_post(
    round_id: Annotated[int, typer.Argument(min=1)],
    kind: Annotated[str, typer.Argument(help="metamodel, scores or values.")],
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Post one of the round's programs as a task (anyone may; paid from the round's budget)."""
    from verifier.market.client import kind_of

    with chain_errors():
        r = _client(rpc_url, key_file, "round post", None).post_task(round_id, kind_of(kind))
    _done(r, as_json, f"[green]posted[/green] round {round_id}'s {r['kind']} program as task {r['task_id']}")


@round_app.command("record")
def round_record(
    round_id: Annotated[int, typer.Argument(min=1)],
    kind: Annotated[str, typer.Argument(help="metamodel, scores or values.")],
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
    content_dir: ContentDir = None, ipfs_api: IpfsApi = None, ipfs_gateway: IpfsGateway = None,
) -> None:
    """Prove a finalized task's result against its claim and store it on the market (anyone may)."""
    from verifier.market.client import kind_of

    with chain_errors():
        r = _client(rpc_url, key_file, "round record", (content_dir, ipfs_api, ipfs_gateway)).record(round_id, kind_of(kind))
    _done(r, as_json, f"[green]recorded[/green] round {round_id}'s {r['kind']}: {r['result']}")


@round_app.command("settle")
def round_settle(
    round_id: Annotated[int, typer.Argument(min=1)],
    rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False,
) -> None:
    """Settle a round: pay gains, slash losses, pay the data providers' share, burn, refund (anyone may, once)."""
    from verifier.app.units import format_amount

    with chain_errors():
        r = _client(rpc_url, key_file, "round settle", None).settle(round_id)
    if as_json:
        return emit(r)
    names = {0: "dataset", 1: "model", 2: "sponsor"}
    for p in r["payments"]:
        amt = int(p["amount"])
        sign = "+" if amt >= 0 else "-"
        say(f"  {names.get(int(p['kind']), '?')} {p['id']}: {sign}{format_amount(abs(amt))} ({p['account']})")
    say(f"[green]settled[/green] round {round_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.add_typer(model_app, name="model")
    app.add_typer(round_app, name="round")


def _hexed(d: dict[str, Any]) -> dict[str, Any]:
    return {k: ("0x" + bytes(v).hex() if isinstance(v, (bytes, bytearray)) else v) for k, v in d.items()}


@data_app.command("list")
def data_list(rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False) -> None:
    """List the published datasets with their current stake."""
    with chain_errors():
        c = _client(rpc_url, key_file, "data list", None, need_key=False)
        rows = [_hexed(ev | c._dataset_state(int(ev["dataset_id"]))) for ev in c._logs("DatasetPublished")]
    if as_json:
        return emit(rows)
    from rich.table import Table

    from verifier.app.units import format_amount

    t = Table("id", "owner", "rows x features", "stake", "reserved", "cid", box=None)
    for r in rows:
        t.add_row(str(r["dataset_id"]), r["owner"], f"{r['rows']} x {r['n_features']}", format_amount(r["stake"]),
                  format_amount(r["reserved"]), r["cid"])  # fmt: skip
    say(t if rows else "no datasets yet; publish one with `bisectml data publish`")


@model_app.command("list")
def model_list(rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False) -> None:
    """List the registered models with their datasets and current stake."""
    with chain_errors():
        c = _client(rpc_url, key_file, "model list", None, need_key=False)
        rows = [_hexed(c.model(int(ev["model_id"]))) for ev in c._logs("ModelRegistered")]
    if as_json:
        return emit(rows)
    from rich.table import Table

    from verifier.app.units import format_amount

    t = Table("id", "owner", "datasets", "stake", "reserved", box=None)
    for r in rows:
        t.add_row(str(r["model_id"]), r["owner"], str(list(r["datasets"])), format_amount(r["stake"]), format_amount(r["reserved"]))
    say(t if rows else "no models yet; register one with `bisectml model register`")


@model_app.command("show")
def model_show(
    model_id: Annotated[int, typer.Argument(min=1)], rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False
) -> None:
    """Show a model: owner, datasets, stake and whether a round has it at risk."""
    with chain_errors():
        d = _hexed(_client(rpc_url, key_file, "model show", None, need_key=False).model(model_id))
    if as_json:
        return emit(d)
    say(kv_table(f"model {model_id}", list(d.items())))


@round_app.command("list")
def round_list(rpc_url: RpcUrl = None, key_file: KeyFile = None, as_json: AsJson = False) -> None:
    """List the rounds, newest first."""
    from verifier.market.client import ROUND_STATES

    with chain_errors():
        c = _client(rpc_url, key_file, "round list", None, need_key=False)
        rows = []
        for rid in range(c.round_count(), 0, -1):
            r = c.round(rid)
            rows.append({"round_id": rid, "state": ROUND_STATES.get(r.state, str(r.state)), "sponsor": r.sponsor,
                         "rows": r.shape.rows, "models": r.shape.models, "pool": str(r.pool),
                         "commit_deadline": r.schedule["commit_deadline"]})  # fmt: skip
    if as_json:
        return emit(rows)
    from rich.table import Table

    from verifier.app.units import format_amount, format_time

    t = Table("id", "state", "rows", "model slots", "pool", "commit deadline", box=None)
    for r in rows:
        t.add_row(str(r["round_id"]), r["state"], str(r["rows"]), str(r["models"]), format_amount(int(r["pool"])),
                  format_time(r["commit_deadline"]))  # fmt: skip
    say(t if rows else "no rounds yet; open one with `bisectml round open`")


EXAMPLES = {
    ("data", "publish"): "bisectml data publish digits.npz --stake 100",
    ("data", "show"): "bisectml data show 1 --json",
    ("data", "list"): "bisectml data list",
    ("data", "stake"): "bisectml data stake 1 50",
    ("data", "withdraw"): "bisectml data withdraw 1 50",
    ("model", "register"): "bisectml model register --dataset 1 --dataset 2 --stake 200",
    ("model", "show"): "bisectml model show 1",
    ("model", "list"): "bisectml model list --json",
    ("model", "stake"): "bisectml model stake 1 50",
    ("model", "withdraw"): "bisectml model withdraw 1 50",
    ("model", "commit"): "bisectml model commit 3 1 predictions.npy",
    ("model", "reveal"): "bisectml model reveal 3 1",
    ("model", "release"): "bisectml model release 3 1",
    ("round", "open"): "bisectml round open X.npy y.npy --pool 100 --budget 30 --task-reward 10 --solver-bond 500 "
    "--challenger-bond 250 --models 4 --datasets 4 --dataset-rows 64",
    ("round", "show"): "bisectml round show 3",
    ("round", "list"): "bisectml round list",
    ("round", "reveal-labels"): "bisectml round reveal-labels 3",
    ("round", "void"): "bisectml round void 3",
    ("round", "sync"): "bisectml round sync 3",
    ("round", "post"): "bisectml round post 3 scores",
    ("round", "record"): "bisectml round record 3 values",
    ("round", "settle"): "bisectml round settle 3",
}


def _add_examples() -> None:
    """Each verb's help ends with an example, like every other `bisectml` command."""
    for group, app in (("data", data_app), ("model", model_app), ("round", round_app)):
        for info in app.registered_commands:
            name = info.name or info.callback.__name__.replace("_", "-")
            example = EXAMPLES.get((group, name))
            if example and "Example:" not in (info.callback.__doc__ or ""):
                info.callback.__doc__ = f"{(info.callback.__doc__ or '').strip()}\n\nExample: {example}"


_add_examples()
