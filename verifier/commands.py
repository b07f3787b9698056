"""The logic behind the `bisectml` chain commands (deploy, task, claim, dispute, settle, finalize).

Every function here takes a `Session` (a chain, the account that signs, the recorded
deployment), does one user-level thing, and returns plain data (dicts of str/int/bool) that
`cli.py` renders as text or JSON. Nothing here prints. Refusals and bad input raise
`CommandError`; chain failures raise `ChainError`; both are one sentence ending with what to
do. As in `verifier.play`, state is re-derived from the chain on every call, so any command can
be re-run after an interruption.

Amounts are integers in the token's base units (10^-18 BOND); durations are seconds; times
are the chain's block timestamps, never the local clock (a dev chain's clock may be moved).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any

from .chain import KEY_ENV, Chain, ChainError, Deployment, deploy_suite
from .errors import BisectmlError
from .game import GameState, Level, Outcome, Role
from .play import Court, GamePlayer, program_task_args, whose_move
from .program import Program, load_program
from .trace import Trace
from .paths import home

UNIT = 10**18  # base units per BOND (the token has 18 decimals)
SYMBOL = "BOND"
# chains on which `deploy --mint` may mint: anvil/hardhat, geth --dev/ganache, the embedded chain
DEV_CHAIN_IDS = frozenset({31337, 1337, 131277322940537})
ZERO_ADDRESS = "0x" + "00" * 20

TASK_STATES = {1: "open", 2: "done", 3: "reclaimed"}
CLAIM_STATES = {1: "live", 2: "rejected", 3: "finalized"}
CHALLENGE_STATES = {1: "open", 2: "lost", 3: "won", 4: "void"}
TASK_FIELDS = (
    "poster", "program_id", "graph_root", "initial_root", "dataset_root", "n_nodes", "n_slots", "steps",
    "arity", "clock", "window", "reward", "solver_bond", "challenger_bond", "deadline", "claim_id", "state",
)  # fmt: skip
CLAIM_FIELDS = ("task_id", "solver", "final_root", "time", "challenges", "unsettled", "credit", "state")
CHALLENGE_FIELDS = ("claim_id", "challenger", "game_id", "state")

# the function each side calls at each level (used to narrate the other side's moves)
_SOLVER_FN = {
    Level.STEP: "reveal", Level.NODE: "reveal", Level.TERM: "reveal", Level.OUTPUT: "reveal_output",
    Level.DATA: "reveal_data", Level.CHUNK_REVEAL: "reveal_chunk",
}  # fmt: skip
_CHALLENGER_FN = {
    Level.STEP: "pick", Level.NODE: "pick", Level.TERM: "pick", Level.CHOOSE: "choose", Level.DATA: "pick_data",
    Level.ELEMENT: "pick_element", Level.PROVE_HEADER: "prove_header", Level.PROVE_ELEMENT: "prove_element",
    Level.PROVE_BOUNDARY: "prove_boundary",
}  # fmt: skip

TraceProgress = Callable[[int, int], None]


class CommandError(BisectmlError, ValueError):
    """Bad input, or a request refused because it would hurt the user (exit code 2)."""


# -- units ------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)?\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_amount(text: str, what: str = "amount") -> int:
    """'10' or '2.5' BOND, or '123wei' in base units, as base units."""
    s = text.strip().lower().replace("_", "")
    try:
        if s.endswith("wei"):
            value = int(s[:-3])
        else:
            d = Decimal(s.removesuffix("bond").strip()) * UNIT
            if d != d.to_integral_value():
                raise ValueError
            value = int(d)
    except (ValueError, InvalidOperation):
        raise CommandError(f"{what} '{text}' is not an amount; give BOND like 10 or 2.5, or base units like 5wei.") from None
    if value < 0:
        raise CommandError(f"{what} '{text}' is negative; give a positive amount.")
    return value


def parse_duration(text: str, what: str = "duration") -> int:
    """'86400', '90s', '30m', '6h', '1d' or '2w' as seconds."""
    m = _DURATION.match(text)
    if not m:
        raise CommandError(f"{what} '{text}' is not a duration; give seconds like 86400 or 1d, 6h, 30m.")
    return int(m.group(1)) * _SECONDS[(m.group(2) or "s").lower()]


def format_amount(value: int) -> str:
    whole, frac = divmod(int(value), UNIT)
    text = f"{whole:,}" + (f".{frac:018d}".rstrip("0") if frac else "")
    return f"{text} {SYMBOL}"


def format_duration(seconds: int) -> str:
    seconds = int(seconds)
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, n in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= n:
            parts.append(f"{seconds // n}{unit}")
            seconds %= n
    return " ".join(parts[:2])


def format_time(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(timestamp)))


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
    else:
        chain = _read_only(rpc_url)
    session = Session(chain)
    if need_deployment:
        session.deployment = load_deployment(chain)
    return session


def _read_only(rpc_url: str) -> Chain:
    """A connection for commands that only read: no key needed, calls come from address zero."""
    from web3 import HTTPProvider, Web3

    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    try:
        w3.eth.chain_id
    except Exception as e:  # noqa: BLE001 - any transport error means the same to the user
        raise ChainError(f"cannot reach {rpc_url} ({type(e).__name__}); start the node or fix --rpc-url.") from None
    return Chain(w3, ZERO_ADDRESS)


def load_deployment(chain: Chain) -> Deployment:
    d = Deployment.load(chain.chain_id, deployments_path())
    if not chain.w3.eth.get_code(d.addresses["Tasks"]):
        raise ChainError(
            f"no contract at the recorded Tasks address {d.addresses['Tasks']} on chain {chain.chain_id} "
            "(was the node reset?); run `bisectml deploy` again."
        )
    return d


def _record(names: tuple[str, ...], values: Any) -> dict[str, Any]:
    return dict(zip(names, values))


def _logs(event: Any, receipt: Any) -> list[Any]:
    from web3.logs import DISCARD

    return list(event().process_receipt(receipt, errors=DISCARD))


# -- deploy -----------------------------------------------------------------------------------


def deploy(session: Session, mint: int = 0) -> dict[str, Any]:
    """Deploy the suite, record it for the chain (not for the embedded chain), and mint."""
    chain = session.chain
    if mint and chain.chain_id not in DEV_CHAIN_IDS:
        raise CommandError(
            f"--mint is for development chains (chain ids {sorted(DEV_CHAIN_IDS)}), and this is chain "
            f"{chain.chain_id}; mint with the token owner's own tooling."
        )
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
    t = _record(TASK_FIELDS, court.tasks.functions.tasks(task_id).call())
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
) -> dict[str, Any]:
    """Approve the reward and post a task for the program; on the embedded chain, deploy first."""
    program = load_program(program_path, steps=steps)  # refuses programs the contracts cannot prove
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
    for flag, value in (("--solver-bond", solver_bond), ("--challenger-bond", challenger_bond)):
        if value <= 0:
            raise CommandError(f"{flag} must be positive: a free bond deters nothing.")
    if deadline_in <= window:
        raise CommandError(
            f"--deadline {format_duration(deadline_in)} leaves no time to claim and sit out the {format_duration(window)} "
            "challenge window; give a deadline longer than the window."
        )
    _require_funds(court, chain.account, reward, "the reward")
    _approve(court, reward)
    deadline = session.now() + deadline_in
    args = program_task_args(program)
    receipt = chain.send(
        court.tasks.functions.post_task(
            args["graph_root"], args["n_nodes"], args["n_slots"], args["initial_root"], args["dataset_root"],
            args["steps"], reward, window, clock, solver_bond, challenger_bond, arity, deadline,
        ),
        "post_task",
    )  # fmt: skip
    ev = _logs(court.tasks.events.TaskPosted, receipt)[0]["args"]
    if bytes(ev["program_id"]) != program.id:
        raise ChainError(
            "the contract computed another program id than this program's; the contracts and the engine disagree, report it."
        )
    return {
        "task_id": ev["task_id"],
        "program_id": hex32(program.id),
        "program": str(program_path),
        "steps": program.steps,
        "reward": str(reward),
        "deadline": deadline,
        "deadline_in": deadline_in,
        "embedded": session.embedded,
        "tasks": court.tasks.address,
        "tx": hex32(receipt["transactionHash"]),
    }


def show_task(session: Session, task_id: int) -> dict[str, Any]:
    court = session.court
    return _task_view(court, task_id, task_record(court, task_id), session.now())


def list_tasks(session: Session, open_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` tasks, newest first; `open_only` keeps those neither done nor reclaimed."""
    court, now = session.court, session.now()
    out = []
    for task_id in range(court.tasks.functions.task_count().call(), 0, -1):
        if len(out) >= limit:
            break
        t = _record(TASK_FIELDS, court.tasks.functions.tasks(task_id).call())
        if open_only and t["state"] != 1:
            continue
        out.append(_task_view(court, task_id, t, now))
    return out


# -- claims -----------------------------------------------------------------------------------


def claim_record(court: Court, claim_id: int) -> dict[str, Any]:
    c = _record(CLAIM_FIELDS, court.tasks.functions.claims(claim_id).call())
    if c["state"] == 0:
        count = court.tasks.functions.claim_count().call()
        raise CommandError(
            f"there is no claim {claim_id} (claims run 1..{count}); a task's claim shows in `bisectml task show ID`."
        )
    return c


def challenge_record(court: Court, challenge_id: int) -> dict[str, Any]:
    ch = _record(CHALLENGE_FIELDS, court.tasks.functions.challenges(challenge_id).call())
    if ch["state"] == 0:
        count = court.tasks.functions.challenge_count().call()
        raise CommandError(
            f"there is no challenge {challenge_id} (challenges run 1..{count}); "
            "a claim's challenges show in `bisectml claim show ID`."
        )
    return ch


def _challenge_ids(court: Court, claim_id: int, n: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < n:
        page = court.tasks.functions.challenges_of(claim_id, len(ids), 256).call()
        if not page:
            break
        ids.extend(page)
    return ids


def show_claim(session: Session, claim_id: int) -> dict[str, Any]:
    court, now = session.court, session.now()
    c = claim_record(court, claim_id)
    t = task_record(court, c["task_id"])
    closes = c["time"] + t["window"]
    challenges = []
    for cid in _challenge_ids(court, claim_id, c["challenges"]):
        ch = _record(CHALLENGE_FIELDS, court.tasks.functions.challenges(cid).call())
        g = game_view(court, ch["game_id"], now) if ch["game_id"] else None
        challenges.append(
            {
                "challenge_id": cid,
                "challenger": ch["challenger"],
                "state": CHALLENGE_STATES.get(ch["state"], str(ch["state"])),
                "game_id": ch["game_id"],
                "settleable": bool(court.tasks.functions.settleable(cid).call()),
                "game": g,
            }
        )
    return {
        "claim_id": claim_id,
        "task_id": c["task_id"],
        "solver": c["solver"],
        "final_root": hex32(c["final_root"]),
        "state": CLAIM_STATES.get(c["state"], str(c["state"])),
        "posted": c["time"],
        "challenge_deadline": closes,
        "challenge_window_left": max(0, closes - now),
        "task_deadline": t["deadline"],
        "reward": str(t["reward"]),
        "solver_bond": str(t["solver_bond"]),
        "challenger_bond": str(t["challenger_bond"]),
        "credit": str(c["credit"]),
        "unsettled": c["unsettled"],
        "finalizable": bool(court.tasks.functions.finalizable(claim_id).call()),
        "challenges": challenges,
    }


# -- games ------------------------------------------------------------------------------------


def game_state(court: Court, game_id: int) -> GameState:
    raw = court.game.functions.games(game_id).call()
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
    if s.level == Level.CHOOSE:
        return "output", f"step {s.step}, {node}: header or data?"
    if s.level == Level.PROVE_HEADER:
        return "proof", f"step {s.step}, {node}: the output header is re-derived on-chain"
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
    if s.level in (Level.OUTPUT, Level.CHOOSE):
        return 0.72
    if s.level in (Level.DATA, Level.CHUNK_REVEAL, Level.ELEMENT):
        return 0.8
    if s.level == Level.TERM:
        return 0.85 + 0.1 * narrowed(s.lo, s.hi, max(s.terms, 1))
    return 0.97


def _role_of(s: GameState, account: str) -> Role | None:
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
    you = _role_of(s, account) if account else None
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


# -- disputes ---------------------------------------------------------------------------------


def _program_for_task(program_path: Path, task: dict[str, Any], task_id: int) -> Program:
    program = load_program(program_path, steps=task["steps"])
    if program.id != bytes(task["program_id"]):
        raise CommandError(
            f"{program_path} is not task {task_id}'s program: with {task['steps']} steps its id is {hex32(program.id)}, "
            f"the task's is {hex32(task['program_id'])}; pass the program file the task was posted with."
        )
    return program


def _trace_dir(program: Program, directory: Path | None) -> Path:
    return directory if directory is not None else home() / "traces" / program.id.hex()


def _require_funds(court: Court, account: str, amount: int, what: str) -> None:
    have = court.token.functions.balanceOf(account).call()
    if have < amount:
        raise CommandError(
            f"{account} holds {format_amount(have)} but {what} is {format_amount(amount)}; get more {SYMBOL} and retry."
        )


def _approve(court: Court, amount: int) -> None:
    """Let the task registry pull `amount`, unless it already may."""
    token, me = court.token, court.chain.account
    if token.functions.allowance(me, court.tasks.address).call() < amount:
        court.chain.send(token.functions.approve(court.tasks.address, amount), "approve")


def open_dispute(
    session: Session,
    claim_id: int,
    program_path: Path,
    directory: Path | None = None,
    force: bool = False,
    progress: TraceProgress | None = None,
) -> dict[str, Any]:
    """Recompute the claimed program; if the claim is wrong (or `force`), post the bond and
    challenge it. Returns the challenge and game ids."""
    court, chain = session.court, session.chain
    c = claim_record(court, claim_id)
    if c["state"] != 1:
        raise CommandError(f"claim {claim_id} is {CLAIM_STATES.get(c['state'])}: there is nothing left to dispute.")
    if c["solver"].lower() == chain.account.lower():
        raise CommandError(f"claim {claim_id} is your own ({chain.account}); the solver cannot challenge it.")
    task = task_record(court, c["task_id"])
    closes = c["time"] + task["window"]
    if session.now() >= closes:
        raise CommandError(f"claim {claim_id}'s challenge window closed at {format_time(closes)}; it can only be finalized now.")
    program = _program_for_task(program_path, task, c["task_id"])
    trace = Trace(program, _trace_dir(program, directory))
    ours = trace.run(progress=progress)
    claimed = bytes(c["final_root"])
    if ours == claimed and not force:
        raise CommandError(
            f"claim {claim_id} is correct: your run of the program ends in the claimed root {hex32(claimed)}, "
            "so a challenge would lose its bond; pass --force to challenge anyway."
        )
    bond = task["challenger_bond"]
    _require_funds(court, chain.account, bond, "the challenger bond")
    _approve(court, bond)
    receipt = chain.send(court.tasks.functions.challenge(claim_id), "challenge")
    ev = _logs(court.tasks.events.Challenged, receipt)[0]["args"]
    return {
        "claim_id": claim_id,
        "task_id": c["task_id"],
        "challenge_id": ev["challenge_id"],
        "game_id": ev["game_id"],
        "bond": str(bond),
        "claimed_root": hex32(claimed),
        "your_root": hex32(ours),
        "trace_dir": str(trace.dir),
        "challenger": chain.account,
        "tx": hex32(receipt["transactionHash"]),
    }


@dataclass
class GameEvent:
    """One thing that happened in a game being played: a move (ours or theirs), a wait, the end."""

    kind: str  # "start" | "position" | "move" | "wait" | "over"
    state: GameState
    who: Role | None = None
    function: str | None = None
    mine: bool = False
    text: str = ""


def _inferred_move(court: Court, game_id: int, before: GameState, after: GameState) -> tuple[Role, str]:
    """Who moved from `before` to `after`, and how (for narrating the other side)."""
    mover = whose_move(before)
    if after.outcome != Outcome.PENDING and "clock" in (game_reason(court, game_id) or ""):
        return mover, "timeout"
    return mover, (_SOLVER_FN if mover == Role.SOLVER else _CHALLENGER_FN).get(before.level, "move")


def _fingerprint(s: GameState) -> tuple:
    return (s.level, s.turn, s.outcome, s.lo, s.hi, s.reveal_hash, s.index, s.height, s.turn_start, s.top_known)


def play(
    session: Session,
    game_id: int,
    program_path: Path,
    role: Role,
    directory: Path | None = None,
    poll: float = 2.0,
    on_event: Callable[[GameEvent], None] | None = None,
    progress: TraceProgress | None = None,
    max_failures: int = 3,
) -> dict[str, Any]:
    """Play `role` in the game to its end from a local trace; ends a stalled opponent's game by
    its clock. Returns the outcome and whether we won."""
    court, chain = session.court, session.chain
    emit = on_event or (lambda e: None)
    s = game_state(court, game_id)
    party = s.solver if role == Role.SOLVER else s.challenger
    if party.lower() != chain.account.lower():
        other = "challenger" if role == Role.SOLVER else "solver"
        hint = f" (you are its {other}: pass --as {other})" if _role_of(s, chain.account) else ""
        raise CommandError(
            f"game {game_id}'s {role.name.lower()} is {party}, not {chain.account}{hint}; sign with that party's key."
        )
    challenge_id = challenge_of_game(court, game_id)
    if challenge_id is not None:
        ch = challenge_record(court, challenge_id)
        task_id = claim_record(court, ch["claim_id"])["task_id"]
        program = _program_for_task(program_path, task_record(court, task_id), task_id)
    else:
        program = load_program(program_path, steps=s.steps)
        if (program.graph_root, program.n_nodes, program.n_slots) != (bytes(s.graph_root), s.n_nodes, s.n_slots):
            raise CommandError(
                f"{program_path} is not the program game {game_id} plays; pass the program its task was posted with."
            )
    trace = Trace(program, _trace_dir(program, directory))
    trace.run(progress=progress)
    player = GamePlayer.for_trace(court, game_id, role, trace)
    moves = {"ours": 0, "theirs": 0}
    opponent = s.challenger if role == Role.SOLVER else s.solver
    other = "challenger" if role == Role.SOLVER else "solver"
    emit(GameEvent("start", s, who=role, text=f"game {game_id}: you are the {role.name.lower()}, the {other} is {opponent}"))
    emit(GameEvent("position", s, text=describe(s, program)))
    last = s
    failures = 0
    waiting_since: tuple | None = None
    while True:
        s = game_state(court, game_id)
        if _fingerprint(s) != _fingerprint(last):
            who, fn = _inferred_move(court, game_id, last, s)
            moves["theirs"] += 1
            emit(GameEvent("move", s, who=who, function=fn, mine=False, text=describe(s, program)))
            last = s
        if s.outcome != Outcome.PENDING:
            break
        if whose_move(s) == role:
            try:
                move, _ = player.step()
            except ChainError as e:
                if "clock expired" in str(e):
                    emit(GameEvent("over", s, text="your clock ran out; the other side can end the game now"))
                    return _play_result(court, game_id, role, s, challenge_id, moves, lost_on_time=True)
                failures += 1
                if failures >= max_failures:
                    raise
                time.sleep(poll)
                continue
            failures = 0
            if move is None:  # the state moved under us; re-derive
                time.sleep(poll)
                continue
            s = game_state(court, game_id)
            moves["ours"] += 1
            emit(GameEvent("move", s, who=role, function=move.function, mine=True, text=describe(s, program)))
            last = s
            continue
        # the other side's move: end the game if its clock has run out, else wait for it
        solver_left, challenger_left = court.game.functions.time_left(game_id).call()
        mover_left = solver_left if s.turn == Role.SOLVER else challenger_left
        if mover_left == 0:
            try:
                chain.send(court.game.functions.timeout(game_id), "timeout")
            except ChainError:
                pass  # the clock reads 0 a second before timeout is allowed
            else:
                s = game_state(court, game_id)
                moves["ours"] += 1
                emit(GameEvent("move", s, who=role, function="timeout", mine=True, text=describe(s, program)))
                last = s
                continue
        if waiting_since != _fingerprint(s):
            waiting_since = _fingerprint(s)
            emit(GameEvent("wait", s, who=whose_move(s), text=f"{format_duration(mover_left)} left on its clock"))
        time.sleep(poll)
    emit(GameEvent("over", s, text=game_reason(court, game_id) or ""))
    return _play_result(court, game_id, role, s, challenge_id, moves)


def _play_result(
    court: Court, game_id: int, role: Role, s: GameState, challenge_id: int | None, moves: dict[str, int],
    lost_on_time: bool = False,
) -> dict[str, Any]:  # fmt: skip
    won = {Role.SOLVER: Outcome.SOLVER_WON, Role.CHALLENGER: Outcome.CHALLENGER_WON}[role] == s.outcome
    return {
        "game_id": game_id,
        "challenge_id": challenge_id,
        "role": role.name.lower(),
        "outcome": "lost on time" if lost_on_time else s.outcome.name.lower(),
        "won": won and not lost_on_time,
        "reason": game_reason(court, game_id),
        "moves": moves["ours"],
        "their_moves": moves["theirs"],
    }


# -- settlement -------------------------------------------------------------------------------


def _end_if_timed_out(session: Session, game_id: int) -> bool:
    """Call Game.timeout if the party to move has run out of time; True if it ended the game."""
    court = session.court
    s = game_state(court, game_id)
    if s.outcome != Outcome.PENDING:
        return False
    solver_left, challenger_left = court.game.functions.time_left(game_id).call()
    left = solver_left if s.turn == Role.SOLVER else challenger_left
    if left != 0:
        return False
    try:
        session.chain.send(court.game.functions.timeout(game_id), "timeout")
    except ChainError:
        return False
    return True


def settle(session: Session, challenge_id: int) -> dict[str, Any]:
    """Settle a challenge whose game is over (ending it first if a clock ran out)."""
    court, chain = session.court, session.chain
    ch = challenge_record(court, challenge_id)
    if ch["state"] != 1:
        raise CommandError(f"challenge {challenge_id} is already settled ({CHALLENGE_STATES.get(ch['state'])}); nothing to do.")
    timed_out = False
    if not court.tasks.functions.settleable(challenge_id).call():
        timed_out = _end_if_timed_out(session, ch["game_id"])
        if not timed_out:
            g = game_view(court, ch["game_id"])
            left = g["clock_solver"] if g["to_move"] == "solver" else g["clock_challenger"]
            raise CommandError(
                f"challenge {challenge_id}'s game {ch['game_id']} is still on (level {g['level']}, the {g['to_move']} to move "
                f"with {format_duration(left)} on its clock); play it with `bisectml dispute play {ch['game_id']}` "
                "or settle once it ends."
            )
    receipt = chain.send(court.tasks.functions.settle(challenge_id), "settle")
    ev = _logs(court.tasks.events.ChallengeSettled, receipt)[0]["args"]
    slashed = _logs(court.tasks.events.BondSlashed, receipt)
    rejected = _logs(court.tasks.events.ClaimRejected, receipt)
    return {
        "challenge_id": challenge_id,
        "claim_id": ev["claim_id"],
        "game_id": ch["game_id"],
        "ended_by_timeout": timed_out,
        "result": CHALLENGE_STATES.get(ev["state"], str(ev["state"])),
        "challenger": ev["challenger"],
        "paid_to_challenger": str(ev["paid"]),
        "slashed": str(slashed[0]["args"]["bond"]) if slashed else "0",
        "burned": str(slashed[0]["args"]["burned"]) if slashed else "0",
        "loser": slashed[0]["args"]["loser"] if slashed else None,
        "claim_rejected": bool(rejected),
        "credit_paid_to_solver": str(rejected[0]["args"]["credit_paid"]) if rejected else "0",
        "tx": hex32(receipt["transactionHash"]),
    }


def finalize(session: Session, claim_id: int) -> dict[str, Any]:
    """Pay a claim whose window has closed and whose challenges the solver all won."""
    court, chain = session.court, session.chain
    c = claim_record(court, claim_id)
    if c["state"] != 1:
        raise CommandError(f"claim {claim_id} is already {CLAIM_STATES.get(c['state'])}; nothing to finalize.")
    task = task_record(court, c["task_id"])
    closes = c["time"] + task["window"]
    now = session.now()
    if now < closes:
        raise CommandError(
            f"claim {claim_id}'s challenge window is open until {format_time(closes)} ({format_duration(closes - now)} "
            "from now); finalize after it closes."
        )
    if c["unsettled"]:
        open_ids = [
            cid for cid in _challenge_ids(court, claim_id, c["challenges"])
            if court.tasks.functions.challenges(cid).call()[3] == 1
        ]  # fmt: skip
        raise CommandError(
            f"claim {claim_id} has {c['unsettled']} unsettled challenge(s) ({', '.join(map(str, open_ids))}); "
            f"settle them first with `bisectml settle {open_ids[0] if open_ids else 'ID'}`."
        )
    receipt = chain.send(court.tasks.functions.finalize(claim_id), "finalize")
    ev = _logs(court.tasks.events.ClaimFinalized, receipt)[0]["args"]
    return {
        "claim_id": claim_id,
        "task_id": ev["task_id"],
        "solver": ev["solver"],
        "reward": str(ev["reward"]),
        "bond": str(ev["bond"]),
        "credit": str(ev["credit"]),
        "paid": str(ev["reward"] + ev["bond"] + ev["credit"]),
        "tx": hex32(receipt["transactionHash"]),
    }


__all__ = [
    "CommandError",
    "GameEvent",
    "Session",
    "claim_record",
    "deploy",
    "describe",
    "finalize",
    "format_amount",
    "format_duration",
    "game_status",
    "list_tasks",
    "open_dispute",
    "open_session",
    "parse_amount",
    "parse_duration",
    "play",
    "post_task",
    "settle",
    "show_claim",
    "show_task",
]
