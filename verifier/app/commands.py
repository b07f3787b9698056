"""The logic behind the `bisectml` chain commands (deploy, task, claim, dispute, settle, finalize).

Every function here takes a `Session` (a chain, the account that signs, the recorded
deployment), does one user-level thing, and returns plain data (dicts of str/int/bool) that
`cli.py` renders as text or JSON. Nothing here prints. Refusals and bad input raise
`CommandError`; chain failures raise `ChainError`; both are one sentence ending with what to
do. As in `verifier.court.play`, state is re-derived from the chain on every call, so any command can
be re-run after an interruption.

Amounts are integers in the token's base units (10^-18 BOND); durations are seconds; times
are the chain's block timestamps, never the local clock (a dev chain's clock may be moved).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from verifier.app.session import Session, as_record, deployments_path, event_logs, hex32
from verifier.app.units import SYMBOL, CommandError, format_amount, format_duration
from verifier.core.errors import BisectmlError
from verifier.court.chain import ChainError, Deployment, deploy_suite
from verifier.court.game import GameState, Level, Outcome, Role
from verifier.court.play import Court, challenge_ids, program_task_args, whose_move
from verifier.court.states import (
    CHALLENGE_FIELDS,
    CHALLENGE_STATES,
    CLAIM_COMMITTED,
    CLAIM_FIELDS,
    CLAIM_STATES,
    TASK_DONE,
    TASK_FIELDS,
    TASK_STATES,
)
from verifier.engine.graph import read_model
from verifier.engine.program import Program, load_program

# chains on which `deploy --mint` may mint: anvil/hardhat, geth --dev/ganache, the embedded chain
DEV_CHAIN_IDS = frozenset({31337, 1337, 131277322940537})



# -- deploy -----------------------------------------------------------------------------------


def require_dev_chain(chain_id: int, option: str, otherwise: str) -> None:
    """Refuse `option` (minting, a faucet) on any chain but a development one."""
    if chain_id not in DEV_CHAIN_IDS:
        raise CommandError(
            f"{option} is for development chains (chain ids {sorted(DEV_CHAIN_IDS)}), and this is chain {chain_id}; {otherwise}."
        )


def deploy(session: Session, mint: int = 0) -> dict[str, Any]:
    """Deploy the suite, record it for the chain (not for the embedded chain), and mint."""
    chain = session.chain
    if mint:
        require_dev_chain(chain.chain_id, "--mint", "mint with the token owner's own tooling")
    replaced = None
    if not session.embedded:
        try:
            replaced = Deployment.load(chain.chain_id, deployments_path()).addresses.get("Tasks")
        except ChainError:
            pass
    d = deploy_suite(chain)
    session.deployment = d
    if mint:
        chain.send(session.court.token.functions.mint(chain.account, mint), "mint")
    recorded = None
    if not session.embedded:
        path = deployments_path()
        d.save(path)
        recorded = str(path)
    return {
        "chain_id": d.chain_id,
        "embedded": session.embedded,
        "deployer": chain.account,
        "addresses": d.addresses,
        "recorded_in": recorded,
        "replaced_tasks": replaced,
        "minted": str(mint),
        "balance": str(session.court.token.functions.balanceOf(chain.account).call()),
    }


# -- tasks ------------------------------------------------------------------------------------


def task_record(court: Court, task_id: int) -> dict[str, Any]:
    t = as_record(TASK_FIELDS, court.tasks.functions.tasks(task_id).call())
    if t["state"] == 0:
        count = court.tasks.functions.task_count().call()
        raise CommandError(f"there is no task {task_id} (tasks run 1..{count}); list them with `bisectml task list`.")
    return t


def _task_view(court: Court, task_id: int, t: dict[str, Any], now: int) -> dict[str, Any]:
    state = TASK_STATES.get(t["state"], str(t["state"]))
    if state == "open":
        if t["claim_id"]:
            status = f"claimed (claim {t['claim_id']})"
        elif now < t["deadline"]:
            status = "claimable"
        else:
            status = "expired (reclaimable)"
    else:
        status = state
    return {
        "task_id": task_id,
        "state": state,
        "status": status,
        "poster": t["poster"],
        "program_id": hex32(t["program_id"]),
        "graph_root": hex32(t["graph_root"]),
        "initial_root": hex32(t["initial_root"]),
        "dataset_root": hex32(t["dataset_root"]),
        "steps": t["steps"],
        "nodes": t["n_nodes"],
        "slots": t["n_slots"],
        "arity": t["arity"],
        "clock": t["clock"],
        "window": t["window"],
        "reward": str(t["reward"]),
        "solver_bond": str(t["solver_bond"]),
        "challenger_bond": str(t["challenger_bond"]),
        "deadline": t["deadline"],
        "deadline_in": max(0, t["deadline"] - now),
        "claim_id": t["claim_id"] or None,
    }


def post_task(
    session: Session,
    program_path: Path,
    *,
    reward: int,
    window: int,
    clock: int,
    solver_bond: int,
    challenger_bond: int,
    arity: int,
    deadline_in: int,
    steps: int | None = None,
    result: bool = True,
    store: Any = None,
    result_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Approve the reward and post a task for the program; on the embedded chain, deploy first.

    The program file is put in the content store (`store`: a verifier.market.content store;
    the local one by default) and its CID logged with the task, so that solvers fetch it
    themselves. With `result`, the program's state slots are the task's result (SPEC 7.11):
    a claim is finalized only once the solver has published them on-chain."""
    from verifier.market import results
    from verifier.market.content import ContentStore, digest_of

    program = load_program(program_path, steps=steps)  # refuses programs the contracts cannot prove
    if result_names and not result:
        raise CommandError("--result-state names part of a result, and --no-result asks for none; drop one of them.")
    result_slots = results.default_result(program, result_names) if result else 0
    if reward <= 0:
        raise CommandError("--reward must be positive; nobody claims a task that pays nothing.")
    if session.embedded:
        deploy(session, mint=reward)
    court, chain = session.court, session.chain
    limits = court.tasks.functions
    for flag, value, lo, hi in (
        ("--window", window, limits.MIN_WINDOW().call(), limits.MAX_WINDOW().call()),
        ("--clock", clock, limits.MIN_CLOCK().call(), limits.MAX_CLOCK().call()),
    ):
        if not lo <= value <= hi:
            raise CommandError(
                f"{flag} {format_duration(value)} is outside the contract's {format_duration(lo)} .. {format_duration(hi)}; "
                f"pass {flag} {lo} or more, up to {hi} (seconds, or 1d, 6h)."
            )
    lo, hi = limits.MIN_ARITY().call(), limits.MAX_ARITY().call()
    if not lo <= arity <= hi:
        raise CommandError(f"--arity {arity} is outside the contract's {lo}..{hi}; pick an arity in that range.")
    if solver_bond <= 0:
        raise CommandError("--solver-bond must be positive: a free bond deters nothing.")
    lo, hi = limits.MIN_CHALLENGER_BOND().call(), limits.MAX_CHALLENGER_BOND().call()
    if not lo <= challenger_bond <= hi:
        raise CommandError(
            f"--challenger-bond {format_amount(challenger_bond)} is outside the contract's {format_amount(lo)} .. "
            f"{format_amount(hi)}: below, a swarm of challenges costs a solver more than their bonds pay it; "
            "above, no watchtower could challenge. Pass a bond in that range."
        )
    if deadline_in <= window:
        raise CommandError(
            f"--deadline {format_duration(deadline_in)} leaves no time to claim and sit out the {format_duration(window)} "
            "challenge window; give a deadline longer than the window."
        )
    # the deadline differs between runs: the journal knows an interrupted post by its program
    journal_key = f"post_task:{hex32(program.id)}"
    receipt = chain.resume(key=journal_key)
    resumed = receipt is not None
    if not resumed:
        require_funds(court, chain.account, reward, "the reward")
        approve(court, reward)
        deadline = session.now() + deadline_in
        args = program_task_args(program)
        cid = (store or ContentStore()).put(Path(program_path).read_bytes())
        receipt = chain.send(
            court.tasks.functions.post_task(
                args["graph_root"], args["n_nodes"], args["n_slots"], args["initial_root"], args["dataset_root"],
                args["steps"], reward, window, clock, solver_bond, challenger_bond, arity, deadline,
                result_slots, digest_of(cid),
            ),
            "post_task",
            key=journal_key,
        )  # fmt: skip
    ev = event_logs(court.tasks.events.TaskPosted, receipt)[0]["args"]
    if bytes(ev["program_id"]) != program.id:
        raise ChainError(
            "the contract computed another program id than this program's; the contracts and the engine disagree, report it."
        )
    t = task_record(court, ev["task_id"])
    return {
        "task_id": ev["task_id"],
        "resumed": resumed,
        "program_id": hex32(program.id),
        "program": str(program_path),
        "program_cid": _cid_or_none(bytes(ev["program_cid"])),
        "result_slots": results.slots_of(int(court.tasks.functions.result_slots(ev["task_id"]).call())),
        "steps": program.steps,
        "reward": str(reward),
        "deadline": t["deadline"],
        "deadline_in": max(0, t["deadline"] - session.now()),
        "embedded": session.embedded,
        "tasks": court.tasks.address,
        "tx": hex32(receipt["transactionHash"]),
    }


def task_program(
    session: Session, task_id: int, store: Any = None, program_path: Path | None = None
) -> tuple[Program, onnx.ModelProto] | None:
    """The task's program and its file: from `program_path`, else fetched by the CID its poster
    logged (each byte checked against the CID); None when neither is at hand. Refused when it
    is not the program the task pays for."""
    from verifier.market.content import (
        ContentError,
        ContentMissing,
        ContentStore,
    )

    court = session.court
    t = task_record(court, task_id)
    if program_path is not None:
        where = str(program_path)
        model = read_model(program_path)
    else:
        found = program_cid(court, task_id)
        if found is None:
            return None
        where = found
        try:
            data = (store or ContentStore()).get(where)
        except ContentMissing:
            return None
        except ContentError as e:  # wrong bytes for the CID, or a node that fails: nothing is written
            raise CommandError(str(e)) from None
        model = read_model(data)
    program = load_program(model, steps=t["steps"])
    if program.id != bytes(t["program_id"]):
        raise CommandError(f"{where} is not task {task_id}'s program (another program id); pass the file the task was posted with.")
    return program, model


def task_result(
    session: Session, task_id: int, out: Path, onnx_out: Path | None = None, store: Any = None, program_path: Path | None = None
) -> dict[str, Any]:
    """The result of a task's finalized claim (SPEC 7.11): each result tensor read from its IPFS
    mirror when `store` reads IPFS, else from the chain, and checked against the commitment
    Tasks.vy proved to be that slot of the claimed final state, written to `out` as .npz (named
    by the program's slots when the program is at hand) and, for a training program of
    `bisectml build train`, as a float ONNX model to `onnx_out`. Nothing is written unless
    everything checks."""
    from onnx_models import train
    from verifier.app.bring import _write_atomic
    from verifier.core.paths import write_atomic
    from verifier.market import results

    court = session.court
    t = task_record(court, task_id)
    if t["state"] != TASK_DONE:
        state = _task_view(court, task_id, t, session.now())["status"]
        raise CommandError(f"task {task_id} is {state}: no claim of it is final yet; its result comes with `bisectml finalize`.")
    fetched = results.fetch(court, task_id, t["claim_id"], store)
    arrays = fetched.arrays
    found = task_program(session, task_id, store, program_path)
    names = {s: found[0].graph.slots[s].name if found else f"slot_{s}" for s in arrays}
    model = None
    if onnx_out is not None:
        if found is None:
            raise CommandError("--onnx needs the task's program: pass --program FILE, or fetch it by its CID (--ipfs-gateway).")
        try:
            info = train.program_info(found[1])
        except BisectmlError as e:
            raise CommandError(f"--onnx: {e}") from None
        by_name = {names[s]: a for s, a in arrays.items()}
        missing = [n for n in train.param_names(info.spec) if n not in by_name]
        if missing:
            raise CommandError(f"--onnx: the result lacks {', '.join(missing)}; the task did not ask for the trained parameters.")
        model = train.export_float_model(info, {n: by_name[n] for n in train.param_names(info.spec)})
    buf = io.BytesIO()
    np.savez(buf, **{names[s]: a for s, a in arrays.items()})
    write_atomic(out, buf.getvalue())
    if model is not None and onnx_out is not None:
        _write_atomic(model, onnx_out)
    claim = as_record(CLAIM_FIELDS, court.tasks.functions.claims(t["claim_id"]).call())
    return {
        "task_id": task_id,
        "claim_id": t["claim_id"],
        "final_root": hex32(claim["final_root"]),
        "out": str(out),
        "onnx": str(onnx_out) if model is not None else None,
        "tensors": {
            names[s]: {"slot": s, "shape": list(a.shape), "dtype": str(a.dtype), "source": fetched.sources[s]}
            for s, a in arrays.items()
        },
        "refused_mirrors": fetched.refused,
        "accuracy": _verified_accuracy(found[1] if found else None, {names[s]: a for s, a in arrays.items()}),
    }


def _verified_accuracy(model: Any, by_name: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """For an inference program of `bisectml infer` with labels: the rows it got right (its
    verified `correct`) out of the labelled rows (the program's `labels` data, padding -1)."""
    from onnx import numpy_helper

    if model is None or "correct" not in by_name:
        return None
    labels = next((numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "labels"), None)
    if labels is None:
        return None
    rows, correct = int(np.sum(labels >= 0)), int(by_name["correct"])
    return {"correct": correct, "rows": rows, "accuracy": correct / rows if rows else None}


def program_cid(court: Court, task_id: int) -> str | None:
    """The CID of the program file the task's poster logged (`TaskPosted.program_cid`), or None."""
    logs = court.deployment.logs(court.tasks.events.TaskPosted(), {"task_id": task_id})
    return _cid_or_none(bytes(logs[0]["args"]["program_cid"])) if logs else None


def _cid_or_none(digest: bytes) -> str | None:
    from verifier.market.content import cid_of_digest

    return cid_of_digest(digest) if any(digest) else None


def show_task(session: Session, task_id: int) -> dict[str, Any]:
    from verifier.market import results

    court = session.court
    view = _task_view(court, task_id, task_record(court, task_id), session.now())
    view["program_cid"] = program_cid(court, task_id)
    view["result_slots"] = results.slots_of(int(court.tasks.functions.result_slots(task_id).call()))
    return view


def list_tasks(session: Session, open_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` tasks, newest first; `open_only` keeps those neither done nor reclaimed."""
    court, now = session.court, session.now()
    out = []
    for task_id in range(court.tasks.functions.task_count().call(), 0, -1):
        if len(out) >= limit:
            break
        t = as_record(TASK_FIELDS, court.tasks.functions.tasks(task_id).call())
        if open_only and t["state"] != 1:
            continue
        out.append(_task_view(court, task_id, t, now))
    return out


# -- claims -----------------------------------------------------------------------------------


def claim_record(court: Court, claim_id: int) -> dict[str, Any]:
    c = as_record(CLAIM_FIELDS, court.tasks.functions.claims(claim_id).call())
    if c["state"] == 0:
        count = court.tasks.functions.claim_count().call()
        raise CommandError(
            f"there is no claim {claim_id} (claims run 1..{count}); a task's claim shows in `bisectml task show ID`."
        )
    return c


def challenge_record(court: Court, challenge_id: int) -> dict[str, Any]:
    ch = as_record(CHALLENGE_FIELDS, court.tasks.functions.challenges(challenge_id).call())
    if ch["state"] == 0:
        count = court.tasks.functions.challenge_count().call()
        raise CommandError(
            f"there is no challenge {challenge_id} (challenges run 1..{count}); "
            "a claim's challenges show in `bisectml claim show ID`."
        )
    return ch


def show_claim(session: Session, claim_id: int) -> dict[str, Any]:
    from verifier.market.results import slots_of

    court, now = session.court, session.now()
    c = claim_record(court, claim_id)
    t = task_record(court, c["task_id"])
    revealed = c["state"] != CLAIM_COMMITTED
    closes = c["time"] + t["window"] if revealed else 0
    challenges = []
    for cid in challenge_ids(court, claim_id, c["challenges"]):
        ch = as_record(CHALLENGE_FIELDS, court.tasks.functions.challenges(cid).call())
        g = game_view(court, ch["game_id"], now) if ch["game_id"] else None
        challenges.append(
            {
                "challenge_id": cid,
                "challenger": ch["challenger"],
                "state": CHALLENGE_STATES.get(ch["state"], str(ch["state"])),
                "game_id": ch["game_id"],
                "settleable": bool(court.tasks.functions.settleable(cid).call()),
                "collectable": bool(court.tasks.functions.collectable(cid).call()),
                "metered_gas": ch["gas"],
                "prize_share": str(court.tasks.functions.prize_share(cid).call()),
                "game": g,
            }
        )
    return {
        "claim_id": claim_id,
        "task_id": c["task_id"],
        "solver": c["solver"],
        "final_root": hex32(c["final_root"]) if revealed else None,
        "commitment": hex32(c["commitment"]),
        "state": CLAIM_STATES.get(c["state"], str(c["state"])),
        "posted": c["time"],
        "reveal_deadline": int(court.tasks.functions.reveal_deadline(claim_id).call()),
        "challenge_deadline": closes,
        "challenge_window_left": max(0, closes - now) if revealed else 0,
        "task_deadline": t["deadline"],
        "reward": str(t["reward"]),
        "solver_bond": str(t["solver_bond"]),
        "challenger_bond": str(t["challenger_bond"]),
        "unsettled": c["unsettled"],
        "winners": c["winners"],
        "metered_gas": c["gas"],
        "finalizable": bool(court.tasks.functions.finalizable(claim_id).call()),
        "result_slots": slots_of(int(court.tasks.functions.result_slots(c["task_id"]).call())),
        "published_slots": slots_of(int(court.tasks.functions.published(claim_id).call())),
        "challenges": challenges,
    }


def require_funds(court: Court, account: str, amount: int, what: str) -> None:
    have = court.token.functions.balanceOf(account).call()
    if have < amount:
        raise CommandError(
            f"{account} holds {format_amount(have)} but {what} is {format_amount(amount)}; get more {SYMBOL} and retry."
        )


def approve(court: Court, amount: int) -> None:
    """Let the task registry pull `amount`, unless it already may."""
    token, me = court.token, court.chain.account
    if token.functions.allowance(me, court.tasks.address).call() < amount:
        court.chain.send(token.functions.approve(court.tasks.address, amount), "approve")


# -- games ------------------------------------------------------------------------------------


def game_state(court: Court, game_id: int, block: int | None = None) -> GameState:
    """The game as it stands, or as it stood after block `block`."""
    raw = court.game.functions.games(game_id).call(block_identifier="latest" if block is None else block)
    if raw[3] == 0:  # steps: every created game has at least one
        count = court.game.functions.game_count().call()
        raise CommandError(
            f"there is no game {game_id} (games run 1..{count}); a claim's games show in `bisectml claim show ID`."
        )
    return GameState.from_tuple(raw)


def game_reason(court: Court, game_id: int) -> str | None:
    logs = court.deployment.logs(court.game.events.GameResolved(), {"game_id": game_id})
    return str(logs[-1]["args"]["reason"]) if logs else None


def challenge_of_game(court: Court, game_id: int) -> int | None:
    """The challenge that opened this game (games can also be created outside the registry)."""
    for log in court.deployment.logs(court.tasks.events.Challenged()):
        if log["args"]["game_id"] == game_id:
            return int(log["args"]["challenge_id"])
    return None


def describe(s: GameState, program: Program | None = None) -> str:
    """Where the game stands, in words: the level, then what is disputed there."""
    level, detail = position(s, program)
    return f"{level:<8} {detail}"


def position(s: GameState, program: Program | None = None) -> tuple[str, str]:
    """(level word, what is disputed at it): step, node, output, element, term, proof, over."""
    node = f"node {s.node}"
    if program is not None and s.node < program.n_nodes:
        n = program.graph.nodes[s.node]
        node += " " + (n.name.removeprefix("node ") if n.name else f"({n.op.name})")
    if s.level == Level.STEP:
        return "step", f"steps {s.lo}..{s.hi} of {s.steps} disputed"
    if s.level == Level.NODE:
        return "node", f"step {s.step}, positions {s.lo}..{s.hi} of {s.n_nodes + 1} disputed"
    if s.level == Level.OUTPUT:
        return "output", f"step {s.step}, {node}: the solver shows its output"
    if s.level == Level.DATA:
        return "element", f"step {s.step}, {node}: data tree, height {s.height}, index {s.index}"
    if s.level == Level.CHUNK_REVEAL:
        return "element", f"step {s.step}, {node}: chunk {s.index}"
    if s.level == Level.ELEMENT:
        return "element", f"step {s.step}, {node}: chunk {s.index} revealed, element to pick"
    if s.level == Level.TERM:
        return "term", f"step {s.step}, {node}, element {s.elem_index}: terms {s.lo}..{s.hi} of {s.terms}"
    if s.level == Level.PROVE_ELEMENT:
        return "proof", f"step {s.step}, {node}, element {s.elem_index}: one computation re-executed on-chain"
    if s.level == Level.PROVE_BOUNDARY:
        return "proof", f"step {s.step}: the step boundary re-executed on-chain"
    return "over", s.outcome.name.lower().replace("_", " ")


def progress_fraction(s: GameState) -> float:
    """How far down the game is, 0..1: steps, then nodes, then the element, then the proof."""
    import math

    def narrowed(lo: int, hi: int, total: int) -> float:
        if total <= 1:
            return 1.0
        return 1.0 - math.log(max(hi - lo, 1)) / math.log(total)

    if s.outcome != Outcome.PENDING or s.level == Level.OVER:
        return 1.0
    if s.level == Level.STEP:
        return 0.45 * narrowed(s.lo, s.hi, s.steps)
    if s.level == Level.NODE:
        return 0.45 + 0.25 * narrowed(s.lo, s.hi, s.n_nodes + 1)
    if s.level == Level.OUTPUT:
        return 0.72
    if s.level in (Level.DATA, Level.CHUNK_REVEAL, Level.ELEMENT):
        return 0.8
    if s.level == Level.TERM:
        return 0.85 + 0.1 * narrowed(s.lo, s.hi, max(s.terms, 1))
    return 0.97


def role_of(s: GameState, account: str) -> Role | None:
    if account.lower() == s.challenger.lower():
        return Role.CHALLENGER
    if account.lower() == s.solver.lower():
        return Role.SOLVER
    return None


def game_view(court: Court, game_id: int, now: int | None = None, account: str | None = None) -> dict[str, Any]:
    s = game_state(court, game_id)
    solver_left, challenger_left = court.game.functions.time_left(game_id).call()
    over = s.outcome != Outcome.PENDING
    mover = whose_move(s)
    you = role_of(s, account) if account else None
    return {
        "game_id": game_id,
        "level": s.level.name.lower(),
        "position": position(s)[1],
        "range": [s.lo, s.hi] if s.level in (Level.STEP, Level.NODE, Level.TERM) else None,
        "step": s.step if s.level not in (Level.STEP,) else None,
        "node": s.node if s.level not in (Level.STEP, Level.NODE) else None,
        "steps": s.steps,
        "arity": s.arity,
        "to_move": None if over else mover.name.lower(),
        "your_role": you.name.lower() if you else None,
        "your_move": (not over) and you is not None and mover == you,
        "solver": s.solver,
        "challenger": s.challenger,
        "clock_solver": int(solver_left),
        "clock_challenger": int(challenger_left),
        "outcome": s.outcome.name.lower(),
        "reason": game_reason(court, game_id) if over else None,
        "progress": round(progress_fraction(s), 3),
    }


def game_status(session: Session, game_id: int) -> dict[str, Any]:
    court = session.court
    view = game_view(court, game_id, session.now(), session.account)
    view["challenge_id"] = challenge_of_game(court, game_id)
    return view


__all__ = [
    "claim_record",
    "deploy",
    "describe",
    "game_status",
    "game_view",
    "list_tasks",
    "post_task",
    "show_claim",
    "show_task",
    "task_record",
]
