"""The market commands as a user runs them: separate `bisectml` processes against a real anvil
node, state carried between them by the chain and $BISECTML_HOME/deployments.json.

A poster deploys and posts a task for the toy program; a cheater claims a wrong result
straight through web3 and defends it move by move from its doctored trace; the user disputes
the claim by hand (`dispute open`, `dispute play`), wins, and `settle` pays them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import onnx
import pytest
from typer.testing import CliRunner

from cli import app
from onnx_models.toy import accumulator_program
from verifier.court.chain import Chain, Deployment
from verifier.court.game import Outcome, Role
from verifier.court.play import Court, GamePlayer
from verifier.engine.program import Program, load_program
from verifier.engine.trace import Trace

BOND = 10**18
REWARD, SOLVER_BOND, CHALLENGER_BOND, FUNDS = 10 * BOND, 6 * BOND, 250 * BOND, 1_000 * BOND
WINDOW = 172_800  # the task's window and clock: the protocol's minimums (SPEC 7.2)
STEPS = 8
CHEAT_STEP, CHEAT_NODE = 3, 2  # the cheater's matmul output in step 3 is off by one
TIMEOUT = 120  # seconds any single command may take


class WrongMatmul(Program):
    """The cheater's program: one element of one node's output in one step is off by one."""

    def run_step(self, t, state, fast=True, on_node=None):  # noqa: ANN001, ANN201
        values = self.step_values(t, state)
        for n, node in enumerate(self.graph.nodes):
            out = self.graph.run_node(node, values, fast)
            if (t, n) == (CHEAT_STEP, CHEAT_NODE):
                out = out.copy()
                out.reshape(-1)[1] += 1
            values[node.output] = out
            if on_node is not None:
                on_node(n, out)
        return values, [values[s] for s in self.next_slots]


def _bisectml() -> list[str]:
    script = Path(sys.executable).with_name("bisectml")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


class User:
    """Runs `bisectml` with one key file: in a subprocess, as a person at a terminal would, or
    in-process (typer's CliRunner) for quick looks at the state the processes left."""

    def __init__(self, env: dict[str, str], key_file: Path) -> None:
        self.env, self.key_file = env, key_file

    def run(self, *args: str, json_out: bool = False, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        cmd = [*_bisectml(), *args, "--key-file", str(self.key_file), *(["--json"] if json_out else [])]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen:
        cmd = [*_bisectml(), *args, "--key-file", str(self.key_file)]
        return subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def json(self, *args: str) -> dict:
        res = self.run(*args, json_out=True)
        assert res.returncode == 0, f"{args}: {res.stderr}"
        return json.loads(res.stdout)

    def look(self, *args: str) -> Any:
        """A read-only command in-process, its --json output parsed."""
        env = {k: self.env.get(k) for k in ("BISECTML_HOME", "BISECTML_RPC_URL", "BISECTML_PRIVATE_KEY")}
        res = CliRunner().invoke(app, [*args, "--key-file", str(self.key_file), "--json"], env=env)
        assert res.exit_code == 0, f"{args}: {res.stderr}"
        return json.loads(res.stdout)


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("program") / "toy.onnx"
    onnx.save(accumulator_program(steps=STEPS), path)
    return path


@pytest.fixture(scope="module")
def market(anvil, tmp_path_factory, toy_file):  # noqa: ANN201
    """A deployed suite with a posted toy task, and three funded users: poster, cheater, challenger."""
    root = tmp_path_factory.mktemp("market")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISECTML_")}
    env |= {"BISECTML_HOME": str(root / "home"), "BISECTML_RPC_URL": anvil.url, "COLUMNS": "200"}
    keys = {}
    for i, name in enumerate(("rival", "poster", "cheater", "challenger", "honest"), start=4):
        keys[name] = root / f"{name}.key"
        keys[name].write_text(anvil.keys[i] + "\n")
        keys[name].chmod(0o600)
    poster = User(env, keys["poster"])

    deployed = poster.json("deploy", "--mint", "10000")
    assert deployed["recorded_in"] == str(root / "home" / "deployments.json") and deployed["minted"] == str(10_000 * BOND)

    chain = Chain.connect(anvil.url, key=anvil.keys[5])
    court = Court(chain, Deployment.load(chain.chain_id, root / "home" / "deployments.json"))
    assert court.tasks.address == deployed["addresses"]["Tasks"]
    accounts = {name: Chain.connect(anvil.url, key_file=keys[name]).account for name in keys}
    for name in ("cheater", "challenger", "honest", "rival"):
        chain.send(court.token.functions.transfer(accounts[name], FUNDS))

    # the final root alone: these claims are made by hand (results: tests/app/test_task_result.py)
    posted = poster.json(
        "task", "post", str(toy_file), "--reward", "10", "--solver-bond", "6", "--challenger-bond", "250",
        "--window", "2d", "--clock", "2d", "--arity", "4", "--deadline", "7d", "--no-result",
    )  # fmt: skip
    assert posted["program_id"] == "0x" + load_program(toy_file).id.hex()
    return {
        "env": env, "root": root, "keys": keys, "accounts": accounts, "court": court, "task_id": posted["task_id"],
        "anvil": anvil, "users": {name: User(env, keys[name]) for name in keys},
    }  # fmt: skip


def _claim(market, who: str, root: bytes) -> int:
    """Commit and reveal a claim straight through web3, as a solver outside the CLI would."""
    anvil, court = market["anvil"], market["court"]
    chain = Chain.connect(anvil.url, key_file=market["keys"][who])
    mine = court.as_account(chain)
    chain.send(mine.token.functions.approve(mine.tasks.address, SOLVER_BOND))
    return mine.claim(market["task_id"], root)


def _defend(court: Court, game_id: int, trace: Trace, stop: threading.Event, errors: list) -> None:
    """The cheater defends its claim from its own (doctored) trace until the game ends."""
    player = GamePlayer.for_trace(court, game_id, Role.SOLVER, trace)
    try:
        while not stop.is_set() and player.outcome() == Outcome.PENDING:
            move, _ = player.step()
            if move is None:
                time.sleep(0.05)
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


def _invoke(market, who: str, *args: str):  # noqa: ANN001, ANN202
    """A command in-process (CliRunner) as `who`, against the market's chain and home."""
    env = {k: market["env"].get(k) for k in ("BISECTML_HOME", "BISECTML_RPC_URL", "BISECTML_PRIVATE_KEY")}
    return CliRunner().invoke(app, [*args, "--key-file", str(market["keys"][who])], env=env)


def _program(toy_file: Path, tmp_path: Path) -> list[str]:
    return ["--program", str(toy_file), "--dir", str(tmp_path / "mine")]


def _balance(court: Court, address: str) -> int:
    return court.token.functions.balanceOf(address).call()


def test_market__user_disputes_a_cheating_claim_by_hand_and_is_paid(market, toy_file, tmp_path) -> None:
    court, accounts, users = market["court"], market["accounts"], market["users"]
    cheat = load_program(toy_file)
    cheat.__class__ = WrongMatmul
    cheat_trace = Trace(cheat, tmp_path / "cheat")
    claim_id = _claim(market, "cheater", cheat_trace.run())

    shown = users["challenger"].look("claim", "show", str(claim_id))
    assert shown["state"] == "live" and shown["challenges"] == []
    before = _balance(court, accounts["challenger"])

    opened = users["challenger"].json("dispute", "open", str(claim_id), *_program(toy_file, tmp_path))
    game_id, challenge_id = opened["game_id"], opened["challenge_id"]
    assert opened["claimed_root"] != opened["your_root"]
    assert _balance(court, accounts["challenger"]) == before - CHALLENGER_BOND

    status = users["challenger"].look("dispute", "status", str(game_id))
    assert status["level"] == "step" and status["to_move"] == "solver" and status["your_role"] == "challenger"
    assert status["challenge_id"] == challenge_id and status["clock_challenger"] == WINDOW

    stop, errors = threading.Event(), []
    cheater_court = court.as_account(Chain.connect(market["anvil"].url, key_file=market["keys"]["cheater"]))
    defender = threading.Thread(target=_defend, args=(cheater_court, game_id, cheat_trace, stop, errors), daemon=True)
    defender.start()
    try:
        played = users["challenger"].run(
            "dispute", "play", str(game_id), "--program", str(toy_file), "--as", "challenger",
            "--dir", str(tmp_path / "mine"), "--poll", "0.1",
        )  # fmt: skip
    finally:
        stop.set()
        defender.join(timeout=30)
    assert not errors, errors
    assert played.returncode == 0, played.stderr
    assert "you won" in played.stdout and f"bisectml settle {challenge_id}" in played.stdout
    narration = played.stderr
    for level in ("step ", "node ", "output ", "element ", "term ", "proof "):
        assert level in narration, f"no {level.strip()} level in the narration:\n{narration}"
    assert narration.index("steps ") < narration.index("positions ") < narration.index(f"node {CHEAT_NODE}")
    assert "prove_element" in narration and "you (challenger)" in narration and "solver" in narration

    over = users["challenger"].look("dispute", "status", str(game_id))
    assert over["outcome"] == "challenger_won" and over["to_move"] is None and over["reason"]

    settled = users["challenger"].json("settle", str(challenge_id))
    burn = -(-SOLVER_BOND // 2)
    assert settled["result"] == "won" and settled["claim_rejected"]
    assert int(settled["paid_to_challenger"]) == CHALLENGER_BOND and int(settled["prize_to_share"]) == SOLVER_BOND - burn
    assert _balance(court, accounts["challenger"]) == before  # its bond back at once
    assert _balance(court, accounts["cheater"]) == FUNDS - SOLVER_BOND
    # the prize is shared once the winners are final: not before the window closes
    early = _invoke(market, "challenger", "collect", str(challenge_id))
    assert early.exit_code == 2 and "not final yet" in early.stderr and len(early.stderr.strip().splitlines()) == 1
    market["anvil"].advance(WINDOW)
    collected = users["challenger"].json("collect", str(challenge_id))
    assert int(collected["share"]) == SOLVER_BOND - burn  # the only winner takes the whole prize
    assert _balance(court, accounts["challenger"]) == before + SOLVER_BOND - burn
    # the registry holds exactly what it owes: the reward, escrowed again for the next claim
    owed = court.tasks.functions.owed().call()
    assert owed == REWARD and _balance(court, court.tasks.address) == owed
    twice = _invoke(market, "challenger", "collect", str(challenge_id))
    assert twice.exit_code == 2 and "already collected; nothing is left" in twice.stderr

    again = _invoke(market, "challenger", "settle", str(challenge_id))
    assert again.exit_code == 2 and again.stderr.startswith("error: ") and "already settled" in again.stderr
    claim = users["poster"].look("claim", "show", str(claim_id))
    assert claim["state"] == "rejected" and claim["challenges"][0]["state"] == "collected"
    task = users["poster"].look("task", "show", str(market["task_id"]))
    assert task["status"] == "claimable" and task["claim_id"] is None


def test_market__silent_cheater__games_end_by_the_clock(market, toy_file, tmp_path) -> None:
    """Two challengers dispute a made-up root that nobody defends. The solver's clock runs
    out in both games; `dispute play` ends one game by the clock, `settle` ends the other.
    Whoever settles first, both showed the claim wrong, so both share the prize, in proportion to
    the gas each metered (its challenge transaction: neither had a move to make)."""
    court, accounts, users, anvil = market["court"], market["accounts"], market["users"], market["anvil"]
    claim_id = _claim(market, "cheater", b"\x66" * 32)
    start = {who: _balance(court, accounts[who]) for who in ("challenger", "rival")}
    opened = users["challenger"].json("dispute", "open", str(claim_id), *_program(toy_file, tmp_path))
    rival = _invoke(market, "rival", "dispute", "open", str(claim_id), *_program(toy_file, tmp_path), "--json")
    assert rival.exit_code == 0, rival.stderr
    rival = json.loads(rival.stdout)
    anvil.advance(WINDOW + 1)  # the solver's two-day clock runs out without a move (and the window closes)

    played = users["challenger"].run(
        "dispute", "play", str(opened["game_id"]), "--program", str(toy_file), "--as", "challenger",
        "--dir", str(tmp_path / "mine"), "--poll", "0.1",
    )  # fmt: skip
    assert played.returncode == 0, played.stderr
    assert "timeout" in played.stderr and "solver's clock ran out" in played.stderr and "you won" in played.stdout

    # the rival settles first: its game is ended by the clock and the claim is rejected; the
    # first challenger's game was won too, and it is not voided: it shares the prize
    first = _invoke(market, "rival", "settle", str(rival["challenge_id"]), "--json")
    assert first.exit_code == 0, first.stderr
    first = json.loads(first.stdout)
    assert first["ended_by_timeout"] and first["result"] == "won" and first["claim_rejected"]
    second = users["challenger"].json("settle", str(opened["challenge_id"]))
    assert second["result"] == "won" and not second["claim_rejected"] and int(second["paid_to_challenger"]) == CHALLENGER_BOND

    burn = -(-SOLVER_BOND // 2)
    ids = (("rival", rival["challenge_id"]), ("challenger", opened["challenge_id"]))
    weights = {chid: court.tasks.functions.challenges(chid).call()[4] for _, chid in ids}
    assert court.tasks.functions.claims(claim_id).call()[10] == sum(weights.values())
    assert all(w > 0 for w in weights.values())
    for who, chid in ids:
        share = (SOLVER_BOND - burn) * weights[chid] // sum(weights.values())
        assert int(users[who].json("collect", str(chid))["share"]) == share
        assert _balance(court, accounts[who]) == start[who] + share
    assert court.tasks.functions.owed().call() == REWARD == _balance(court, court.tasks.address)


def test_market__correct_claim_is_refused__a_forced_challenge_loses__then_finalized(market, toy_file, tmp_path) -> None:
    court, accounts, users, anvil = market["court"], market["accounts"], market["users"], market["anvil"]
    honest = Trace(load_program(toy_file), tmp_path / "honest")
    claim_id = _claim(market, "honest", honest.run())
    before = _balance(court, accounts["challenger"])

    refused = users["challenger"].run("dispute", "open", str(claim_id), *_program(toy_file, tmp_path))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and len(refused.stderr.strip().splitlines()) == 1
    assert "is correct" in refused.stderr and "--force" in refused.stderr
    assert _balance(court, accounts["challenger"]) == before
    assert court.tasks.functions.claims(claim_id).call()[5] == 0  # no challenge was opened

    forced = users["challenger"].json(
        "dispute", "open", str(claim_id), "--program", str(toy_file), "--dir", str(tmp_path / "mine"), "--force"
    )
    # both sides from the command line at once: the honest solver defends, the challenger loses
    game = ["dispute", "play", str(forced["game_id"]), "--program", str(toy_file), "--poll", "0.1"]
    defending = users["honest"].start(*game, "--as", "solver", "--dir", str(tmp_path / "solver"), "--json")
    try:
        played = users["challenger"].run(*game, "--as", "challenger", "--dir", str(tmp_path / "mine"))
        defended_out, defended_err = defending.communicate(timeout=TIMEOUT)
    finally:
        defending.kill()
    assert played.returncode == 1, played.stderr  # the game was played to its end and lost
    assert "you lost" in played.stdout and "solver won" in played.stdout
    assert defending.returncode == 0, defended_err
    defended = json.loads(defended_out)
    assert defended["won"] and defended["role"] == "solver" and defended["outcome"] == "solver_won" and defended["moves"] >= 2

    early = _invoke(market, "poster", "finalize", str(claim_id))
    assert early.exit_code == 2 and "window is open" in early.stderr
    anvil.advance(WINDOW)
    unsettled = _invoke(market, "poster", "finalize", str(claim_id))
    assert unsettled.exit_code == 2 and f"bisectml settle {forced['challenge_id']}" in unsettled.stderr

    lost = users["poster"].json("settle", str(forced["challenge_id"]))
    burn = -(-CHALLENGER_BOND // 2)
    assert lost["result"] == "lost" and int(lost["paid_to_challenger"]) == 0 and int(lost["burned"]) == burn
    done = users["poster"].json("finalize", str(claim_id))
    assert int(done["paid"]) == REWARD + SOLVER_BOND and done["solver"] == accounts["honest"]
    # an honest solver never loses: its bond back, the reward, and the challenger's bond less the burn
    assert _balance(court, accounts["honest"]) == FUNDS + REWARD + CHALLENGER_BOND - burn
    assert _balance(court, accounts["challenger"]) == before - CHALLENGER_BOND
    assert court.tasks.functions.owed().call() == 0 == _balance(court, court.tasks.address)
    listed = users["poster"].look("task", "list")
    assert [t["status"] for t in listed if t["task_id"] == market["task_id"]] == ["done"]
    assert all(t["task_id"] != market["task_id"] for t in users["poster"].look("task", "list", "--open"))


def test_market__unknown_task__one_line_exit_2(market) -> None:
    res = market["users"]["poster"].run("task", "show", "999")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: there is no task 999") and "task list" in lines[0]


def test_market__state_commands_need_an_rpc_url(market) -> None:
    env = {k: v for k, v in market["env"].items() if k != "BISECTML_RPC_URL"}
    res = User(env, market["keys"]["challenger"]).run("dispute", "status", "1")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--rpc-url" in lines[0] and lines[0].startswith("error: ")


def test_market__unrevealed_claim__cannot_be_disputed__expires_from_the_command_line(market, toy_file, tmp_path) -> None:
    """A claim whose solver commits and never reveals holds the task only until its reveal
    deadline: nobody can dispute an unknown root, and then anyone burns its bond and reopens the
    task. Each refusal is one line and changes nothing."""
    court, users, anvil = market["court"], market["users"], market["anvil"]
    task_id = users["poster"].json(
        "task", "post", str(toy_file), "--reward", "10", "--solver-bond", "6", "--challenger-bond", "250",
        "--window", "2d", "--clock", "2d", "--arity", "4", "--deadline", "7d",
    )["task_id"]  # fmt: skip
    chain = Chain.connect(anvil.url, key_file=market["keys"]["cheater"])
    mine = court.as_account(chain)
    chain.send(mine.token.functions.approve(mine.tasks.address, SOLVER_BOND))
    claim_id, _ = mine.commit_claim(task_id, b"\x42" * 32)
    owed = court.tasks.functions.owed().call()
    supply = court.token.functions.totalSupply().call()

    shown = users["challenger"].look("claim", "show", str(claim_id))
    assert shown["state"] == "committed" and shown["final_root"] is None
    refused = _invoke(market, "challenger", "dispute", "open", str(claim_id), *_program(toy_file, tmp_path))
    assert refused.exit_code == 2 and "not revealed yet" in refused.stderr
    early = _invoke(market, "poster", "claim", "expire", str(claim_id))
    assert early.exit_code == 2 and "may still be revealed" in early.stderr and len(early.stderr.strip().splitlines()) == 1
    assert court.tasks.functions.claims(claim_id).call()[9] == 1  # still committed

    anvil.advance(WINDOW)
    expired = users["poster"].json("claim", "expire", str(claim_id))
    assert int(expired["burned"]) == SOLVER_BOND and expired["task_id"] == task_id
    assert court.token.functions.totalSupply().call() == supply - SOLVER_BOND  # burned, nobody paid
    assert users["poster"].look("task", "show", str(task_id))["status"] == "claimable"
    again = _invoke(market, "poster", "claim", "expire", str(claim_id))
    assert again.exit_code == 2 and "expired" in again.stderr
    assert court.tasks.functions.owed().call() == owed - SOLVER_BOND == _balance(court, court.tasks.address)
