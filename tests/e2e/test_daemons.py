"""The daemons as separate processes against anvil: an honest claim is paid, cheats of every
kind are caught and slashed, the bundled training program end to end, and the refusals."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from _e2e import (
    CHALLENGER_BOND,
    CLOCK,
    FUNDS,
    PRIZE,
    REWARD,
    ROOT,
    SOLVER_BOND,
    WINDOW,
    assert_chain_moves_unique,
    assert_no_move_twice,
    program,
    running,
    wait_until,
)
from verifier.court.states import (
    CHALLENGE_COLLECTED as COLLECTED,
    CHALLENGE_WON as WON,
    CLAIM_FINALIZED as FINALIZED,
    CLAIM_LIVE as LIVE,
    CLAIM_REJECTED as REJECTED,
)
from verifier.daemon.registry import resolve_program_path

UNFUNDED = 9  # an anvil account with ether that the suite gives no BOND


def test_honest_claim__finalizes_and_pays(suite, fleet, toys) -> None:
    p = toys(0)
    tid = suite.post_task(program(p))
    # the same program run for more steps is another program id, served from the same file
    longer = suite.post_task(program(toys(0, steps=16)))
    cheap = suite.post_task(program(p), reward=REWARD - 1)  # below the solver's --min-reward
    # a challenger bond below the solver's --min-challenger-bond: swarms against it would be cheap
    swarmable = suite.post_task(program(p), challenger_bond=CHALLENGER_BOND - 1)
    solver = fleet("solver", 1, [p], "solver",
                   extra=["--min-reward", str(REWARD), "--min-challenger-bond", str(CHALLENGER_BOND)])  # fmt: skip
    tower = fleet("challenger", 2, [p], "tower")
    with running(solver, tower):
        cids = wait_until(
            "the claims", lambda: [suite.task(t).claim_id for t in (tid, longer)] if suite.task(longer).claim_id else None,
            60, [solver, tower],
        )  # fmt: skip
        cid = cids[0]
        wait_until("the watchtower to agree", lambda: len(tower.events("claim_ok")) == 2, 60, [solver, tower])
        assert suite.claim(cid).state == LIVE  # the window is open: not finalized yet
        declined = {r["task"]: r for r in solver.events("task_declined")}
        assert cheap in declined and declined[swarmable]["min_challenger_bond"] == CHALLENGER_BOND
        # idempotent start: a second daemon on the same data dir leaves at once, exit 0
        again = fleet("challenger", 2, [p], "tower").start()
        assert again.proc is not None and again.proc.wait(timeout=60) == 0
        assert '"event":"already_running"' in (tower.data_dir / "stderr.log").read_text()
        suite.anvil.advance(WINDOW + 1)
        wait_until("finalization", lambda: all(suite.claim(c).state == FINALIZED for c in cids), 60, [solver, tower])
        wait_until("the solver to log it", lambda: len(solver.events("claim_finalized")) == 2, 30, [solver])
        # two-phase: each claim was committed, then revealed by its committer
        assert {r["claim"] for r in solver.events("committed")} == set(cids) == {r["claim"] for r in solver.events("revealed")}
        assert {e.args["claim_id"] for e in suite.events("tasks", "ClaimRevealed", solver=solver.address)} == set(cids)
        assert suite.task(cheap).claim_id == 0 and suite.task(swarmable).claim_id == 0
        # clean shutdown: SIGTERM, exit 0, a "stopped" line, then `stop` finds nothing running
        assert solver.terminate() == 0 and tower.terminate() == 0
    assert solver.events("stopped") and tower.events("stopped")
    out = subprocess.run(
        [sys.executable, "-m", "cli", "solver", "stop", "--data-dir", str(solver.data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0 and '"running": false' in out.stdout
    assert suite.balance(solver.address) == FUNDS + 2 * REWARD
    assert suite.balance(tower.address) == FUNDS
    assert suite.nonce(tower.address) == tower.nonce0  # nothing to dispute, nothing sent
    assert_no_move_twice(suite, solver)


def test_cheating_solvers__caught_slashed_and_the_task_paid_to_an_honest_solver(suite, fleet, toys) -> None:
    strategies = ["wrong-element:5,3", "wrong-boundary:4", "final-output", "final-root", "silent"]
    paths = [toys(10 + i) for i in range(len(strategies))]
    tids = [suite.post_task(program(p)) for p in paths]
    cheaters = [fleet("solver", 3 + i, [p], f"cheat{i}", cheat=c) for i, (p, c) in enumerate(zip(paths, strategies))]
    tower = fleet("challenger", 2, paths, "tower", extra=["--metrics", "127.0.0.1:0"])
    # an observe-only watchtower with no key, watching as a fresh address: alerts, would-sends, sends nothing
    watched = suite.chain.w3.eth.account.from_key("0x" + secrets.token_hex(32)).address
    observer = fleet("challenger", None, paths, "observer", extra=["--observe", "--address", watched])
    honest = fleet("solver", 1, paths, "honest")
    procs = [*cheaters, tower, observer, honest]
    with running(*cheaters, observer):
        cheat_claims = wait_until(
            "the cheaters' claims", lambda: [suite.task(t).claim_id for t in tids] if all(suite.task(t).claim_id for t in tids) else None,
            90, procs,
        )  # fmt: skip
        wait_until("the observer's alerts", lambda: len(observer.events("wrong_claim")) == len(tids), 60, procs)
        tower.start()
        honest.start()  # the tasks are taken; it gets them once the cheats are rejected
        active = cheat_claims[:-1]
        wait_until("every active cheat rejected", lambda: all(suite.claim(c).state == REJECTED for c in active), 120, procs)
        # the reopened tasks are claimed again, committed and revealed, and checked by the tower
        # before the clock jumps (a real chain never jumps two days between a commit and its reveal)
        def reclaimed(ts: list[int]) -> list[int] | None:
            cs = [suite.task(t).claim_id for t in ts]
            if all(c not in (0, *cheat_claims) and suite.claim(c).state in (LIVE, FINALIZED) for c in cs):
                return cs
            return None

        wait_until("the active tasks re-claimed honestly", lambda: reclaimed(tids[:-1]), 90, procs)
        wait_until("the tower to agree", lambda: len(tower.events("claim_ok")) == len(tids) - 1, 60, procs)
        # the silent cheater never moves: once its clock has run out the tower ends the game
        assert suite.claim(cheat_claims[-1]).state == LIVE
        suite.anvil.advance(CLOCK + 1)
        wait_until("the silent cheat timed out", lambda: suite.claim(cheat_claims[-1]).state == REJECTED, 60, procs)
        honest_claims = wait_until("every task re-claimed honestly", lambda: reclaimed(tids), 90, procs)
        wait_until("the tower to agree", lambda: len(tower.events("claim_ok")) == len(tids), 60, procs)
        suite.anvil.advance(WINDOW + 1)
        wait_until("honest claims finalized", lambda: all(suite.claim(c).state == FINALIZED for c in honest_claims), 60, procs)
        # the cheats' windows have closed and every game is settled: the tower collects each prize
        wait_until("every prize collected", lambda: all(ch.state == COLLECTED for _, ch in suite.challenges()), 60, procs)
        metrics = _scrape(tower.events("metrics_serving")[0]["url"])
        # a clean stop finishes the transaction in flight, so every intent below is reconciled
        for d in (*cheaters, tower, honest):
            assert d.terminate() == 0
    challenges = suite.challenges()
    assert len(challenges) == len(tids)
    # the tower's Prometheus endpoint counted what it did, while it ran
    assert metrics['bisectml_games_total{outcome="won"}'] == len(tids)
    assert metrics.get('bisectml_games_total{outcome="lost"}', 0) == 0
    assert metrics["bisectml_moves_total"] > 0 and metrics["bisectml_gas_used_total"] > 0
    assert metrics['bisectml_events_total{event="challenged"}'] == len(tids)
    assert metrics["bisectml_bond_balance"] > 0 and metrics["bisectml_chain_head"] > 0
    assert all(ch.state == COLLECTED and ch.challenger == tower.address for _, ch in challenges)
    assert not suite.events("tasks", "BondSlashed")  # no challenger lost a game
    assert len(suite.events("tasks", "PrizeCollected", challenger=tower.address)) == len(tids)
    assert suite.balance(tower.address) == FUNDS + len(tids) * PRIZE
    assert suite.balance(honest.address) == FUNDS + len(tids) * REWARD
    for c in cheaters:
        assert suite.balance(c.address) == FUNDS - SOLVER_BOND
        assert c.events("not_reclaiming")
    # the observer said what it would do for every cheat, and did nothing
    would = {r["key"] for r in observer.events("would_send")}
    assert {f"challenge:{c}" for c in cheat_claims} <= would
    assert suite.chain.w3.eth.get_transaction_count(watched) == 0
    assert observer.events("started")[0]["account"] == watched
    reasons = {e.args["reason"] for e in suite.events("game", "GameResolved")}
    assert {"boundary is wrong", "element is wrong", "solver's clock ran out"} <= reasons
    for d in (*cheaters, tower, honest):
        assert_no_move_twice(suite, d)
    assert_chain_moves_unique(suite)


@pytest.mark.slow
def test_bundled_training_program__cheat_caught_end_to_end(suite, fleet) -> None:
    path = resolve_program_path("mlp_train")
    tid = suite.post_task(program(path), arity=16)
    cheater = fleet("solver", 3, [path], "cheat", cheat="wrong-element:625,26,-1,1048576")
    tower = fleet("challenger", 2, [path], "tower")
    with running(cheater, tower) as procs:
        cid = wait_until("the claim", lambda: suite.task(tid).claim_id, 120, list(procs))
        wait_until("the slash", lambda: suite.claim(cid).state == REJECTED, 180, list(procs))
        wait_until("the settlement", lambda: suite.challenges() and suite.challenges()[0][1].state == WON, 60, list(procs))
        suite.anvil.advance(WINDOW + 1)
        wait_until("the prize collected", lambda: suite.challenges()[0][1].state == COLLECTED, 60, list(procs))
        # the chain shows the collection before the tower has read its receipt: a clean stop
        # lets it finish, so no intent is left unreconciled
        assert tower.terminate() == 0 and cheater.terminate() == 0
    levels = {r.get("game_level") for r in tower.events("sent")} | {r.get("game_level") for r in cheater.events("sent")}
    assert {"STEP", "NODE", "OUTPUT", "TERM", "PROVE_ELEMENT"} <= levels
    assert_no_move_twice(suite, tower)
    assert_no_move_twice(suite, cheater)


def _scrape(url: str) -> dict[str, float]:
    """A Prometheus text page as {'name{labels}': value}."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as page:  # loopback only: the test's own daemon
        text = page.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _run_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    e = {k: v for k, v in os.environ.items() if k != "BISECTML_PRIVATE_KEY"} | (env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args], cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_refusals__one_line_exit_2_nothing_changed(suite, toys, tmp_path) -> None:
    p = str(toys(0))
    base = ["--rpc-url", suite.anvil.url, "--deployment", str(suite.deployment_file), "--program", p]
    poor = tmp_path / "poor-key"
    poor.write_text("0x" + secrets.token_hex(32))
    poor.chmod(0o600)
    cases = {
        "no key": (["challenger", "watch", *base, "--data-dir", str(tmp_path / "a")], None, "--key-file"),
        "no funds": (["solver", "run", *base, "--data-dir", str(tmp_path / "b"), "--key-file", str(poor)], None, "no ether"),
        "bad key": (["solver", "run", *base, "--data-dir", str(tmp_path / "c")], {"BISECTML_PRIVATE_KEY": "nope"}, "not a valid"),
        "bad cheat": (
            ["solver", "run", *base, "--data-dir", str(tmp_path / "d"), "--key-file", str(suite.key_file(1)), "--cheat", "x"],
            None, "unknown cheat",
        ),
        "no program": (
            ["challenger", "watch", "--rpc-url", suite.anvil.url, "--deployment", str(suite.deployment_file),
             "--program", str(tmp_path / "missing.onnx"), "--data-dir", str(tmp_path / "e"), "--key-file", str(suite.key_file(2))],
            None, "no program file",
        ),
        "address without observe": (
            ["challenger", "watch", *base, "--data-dir", str(tmp_path / "f"), "--address", suite.address(1)],
            None, "--observe",
        ),
        "bad address": (
            ["challenger", "watch", *base, "--data-dir", str(tmp_path / "g"), "--observe", "--address", "0x12"],
            None, "not an account address",
        ),
        "no bond": (  # ether for gas but no BOND: a solver can lock no claim bond
            ["solver", "run", *base, "--data-dir", str(tmp_path / "h"), "--key-file", str(suite.key_file(UNFUNDED))],
            None, "holds no BOND",
        ),
    }  # fmt: skip
    nonces = {i: suite.nonce(suite.address(i)) for i in (1, 2)}
    procs = {name: _run_cli(args, env) for name, (args, env, _) in cases.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        want = cases[name][2]
        assert proc.returncode == 2, f"{name}: exit {proc.returncode}: {err}"
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and want in lines[0], f"{name}: {err!r}"
    for d in "abcdefgh":
        assert not (tmp_path / d).exists()  # nothing created
    assert {i: suite.nonce(suite.address(i)) for i in (1, 2)} == nonces  # nothing sent
