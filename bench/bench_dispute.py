"""Benchmark: a cheating claim on the bundled training program, from claim to slash, on anvil.

    python bench/bench_dispute.py [--runs N] [--arity K] [--cheat STRATEGY] [--check]
    python bench/bench_dispute.py --reduction 4096   # one wrong MatMul element summing 4,096 terms

Starts anvil (instant mining), deploys the contracts, posts a training task, and runs the
honest watchtower (`bisectml challenger watch`) and a cheating solver (`bisectml solver run
--cheat ...`) as separate processes, exactly as a user would. Measured in the same run, from
the daemons' JSON logs (wall-clock timestamps on this machine):

- claim -> slash: from the confirmation of the cheating claim's reveal (when its root becomes
  public; the commit comes just before it) to the confirmation of the settlement that rejects
  it (the goal is at most 10 s, also for a 4,096-term reduction: `--reduction 4096`);
- claim -> challenge, and the game itself (challenge -> game over);
- the watchtower's re-execution time (its trace of the claim's program) against the solver's
  execution time (the cheater's own trace of the same program), both including each process's
  one-time fast-path self-test.

With `--check` the script exits 1 if the median claim -> slash time misses the goal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from verifier.court import devnet  # noqa: E402
from verifier.court.devnet import ANVIL_KEYS  # noqa: E402

GOAL_SECONDS = 10.0
TOKEN = 10**18


def _logs(path: Path) -> list[dict[str, Any]]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _first(logs: list[dict[str, Any]], event: str, key_prefix: str = "") -> dict[str, Any] | None:
    for r in logs:
        if r.get("event") == event and str(r.get("key", "")).startswith(key_prefix):
            return r
    return None


def _wait_for(path: Path, event: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _first(_logs(path), event):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the daemon logging to {path} did not start (exit {proc.returncode})")
        time.sleep(0.1)


def one_run(url: str, work: Path, program_path: Path, arity: int, cheat: str, timeout: float) -> dict[str, float]:
    from web3.logs import DISCARD

    from verifier.court.chain import Chain, deploy_suite
    from verifier.court.play import Court, program_task_args
    from verifier.engine.program import load_program

    chain = Chain.connect(url, key=ANVIL_KEYS[0])
    d = deploy_suite(chain)
    dep = work / "deployments.json"
    d.save(dep)
    court = Court(chain, d)
    for k in ANVIL_KEYS:
        chain.send(court.token.functions.mint(chain.with_key(k).account, 10_000 * TOKEN), "mint")
    program = load_program(program_path)
    a = program_task_args(program)
    reward = 100 * TOKEN
    chain.send(court.token.functions.approve(court.tasks.address, reward), "approve")
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    receipt = chain.send(
        court.tasks.functions.post_task(
            a["graph_root"], a["n_nodes"], a["n_slots"], a["initial_root"], a["dataset_root"], a["steps"],
            reward, 172_800, 172_800, 50 * TOKEN, 250 * TOKEN, arity, now + 30 * 86_400,
        ),
        "post_task",
    )  # fmt: skip
    task_id = court.tasks.events.TaskPosted().process_receipt(receipt, errors=DISCARD)[0]["args"]["task_id"]

    procs: list[subprocess.Popen] = []
    dirs = {"tower": work / "tower", "cheater": work / "cheater"}
    try:
        for name, key, verb, extra in (
            ("tower", ANVIL_KEYS[1], ["challenger", "watch"], []),
            ("cheater", ANVIL_KEYS[2], ["solver", "run"], ["--cheat", cheat]),
        ):
            dirs[name].mkdir(parents=True)
            kf = work / f"{name}.key"
            kf.write_text(key)
            kf.chmod(0o600)
            argv = [sys.executable, "-m", "cli", *verb, "--rpc-url", url, "--deployment", str(dep), "--key-file", str(kf),
                    "--program", str(program_path), "--data-dir", str(dirs[name]), "--poll", "0.2", *extra]  # fmt: skip
            env = {k: v for k, v in os.environ.items() if k not in ("BISECTML_PRIVATE_KEY", "BISECTML_FAILPOINT")}
            with open(dirs[name] / "stderr.log", "wb") as err:
                procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err))
            # one at a time: the tower is up and idle before the cheater starts computing, so
            # neither trace shares the CPUs with the other process's start-up
            _wait_for(dirs[name] / "daemon.jsonl", "started", procs[-1], timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _first(_logs(dirs["tower"] / "daemon.jsonl"), "challenge_settled"):
                break
            for p in procs:
                if p.poll() is not None:
                    sys.exit(f"a daemon exited with {p.returncode}; see {work}")
            time.sleep(0.2)
        else:
            sys.exit(f"no slash within {timeout:.0f} s; see the logs under {work}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    tower, cheater = _logs(dirs["tower"] / "daemon.jsonl"), _logs(dirs["cheater"] / "daemon.jsonl")
    claim = _first(cheater, "sent", "reveal:")
    challenge = _first(tower, "sent", "challenge:")
    over = _first(tower, "game_won")
    slash = _first(tower, "sent", "settle:")
    t_tower, t_cheat = _first(tower, "trace_done"), _first(cheater, "trace_done")
    assert claim and challenge and over and slash and t_tower and t_cheat, f"incomplete logs under {work}"
    rejected = court.tasks.events.ClaimRejected().get_logs(from_block=0)
    cheater_claims = court.tasks.events.ClaimRevealed().get_logs(
        from_block=0, argument_filters={"solver": chain.with_key(ANVIL_KEYS[2]).account}
    )
    assert rejected and cheater_claims and rejected[0]["args"]["claim_id"] == cheater_claims[0]["args"]["claim_id"], (
        "the cheater was not slashed"
    )
    moves = [r for r in tower + cheater if r.get("event") == "sent" and str(r.get("key", "")).startswith("game:")]
    return {
        "claim_to_slash": slash["ts"] - claim["ts"],
        "claim_to_challenge": challenge["ts"] - claim["ts"],
        "game": over["ts"] - challenge["ts"],
        "moves": len(moves),
        "game_gas": sum(int(r.get("gas", 0)) for r in moves),
        "tower_reexec": float(t_tower["seconds"]),
        "solver_exec": float(t_cheat["seconds"]),
        "task": task_id,
    }


def main(argv: list[str] | None = None) -> int:
    from verifier.daemon.registry import resolve_program_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--program", default="mlp_train", help="program file or bundled name (default: mlp_train)")
    ap.add_argument("--runs", type=int, default=1, help="independent runs (fresh deployment and daemons); medians shown")
    ap.add_argument("--arity", type=int, default=16, help="dissection arity k of the task (2..32)")
    ap.add_argument("--cheat", default="wrong-element:625,26,-1,1048576", help="the cheating solver's strategy")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the slash of one run")
    ap.add_argument("--check", action="store_true", help=f"exit 1 if the median claim -> slash exceeds {GOAL_SECONDS:.0f} s")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (daemon logs and stores)")
    ap.add_argument(
        "--reduction", type=int, default=0, metavar="K",
        help="instead of --program/--cheat: the toy accumulator with a MatMul whose elements sum K terms, "
        "the cheat one wrong element of it",
    )  # fmt: skip
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-dispute-"))
    if args.reduction:
        import onnx

        from onnx_models.toy import accumulator_program

        program_path = work / f"matmul_{args.reduction}.onnx"
        onnx.save(accumulator_program(steps=8, width=2, inner=args.reduction), program_path)
        args.cheat = "wrong-element:5,2,0,1048576"  # step 5, node 2 (the MatMul), element 0
    else:
        program_path = resolve_program_path(args.program)
    try:
        anvil, url = devnet.start_anvil()
    except RuntimeError as e:
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(str(e))
    from verifier.engine.program import load_program

    p = load_program(program_path)
    results = []
    try:
        for i in range(args.runs):
            d = work / f"run{i}"
            d.mkdir()
            results.append(one_run(url, d, program_path, args.arity, args.cheat, args.timeout))
    finally:
        devnet.stop(anvil)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def med(k: str) -> float:
        return statistics.median(r[k] for r in results)

    print(f"dispute on anvil (instant mining): {program_path.name}, T={p.steps}, N={p.n_nodes}, arity {args.arity}, "
          f"cheat {args.cheat}, {args.runs} run(s), {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    rows = [
        ("claim -> slash (settled)", f"{med('claim_to_slash'):.1f} s", f"goal < {GOAL_SECONDS:.0f} s"),
        ("  claim -> challenge", f"{med('claim_to_challenge'):.1f} s", "re-execution + challenge tx"),
        ("  challenge -> game over", f"{med('game'):.1f} s", f"{med('moves'):.0f} moves, {med('game_gas') / 1e6:.1f} Mgas"),
        ("watchtower re-execution", f"{med('tower_reexec'):.2f} s", "its own trace of the claim's program"),
        ("solver execution", f"{med('solver_exec'):.2f} s", "the cheater's trace, same program"),
        ("re-execution / execution", f"{med('tower_reexec') / med('solver_exec'):.2f}x", "same run"),
    ]
    w = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"  {name:<{w}}  {value:>9}  {note}")
    if args.check and med("claim_to_slash") > GOAL_SECONDS:
        print(f"FAIL: claim -> slash {med('claim_to_slash'):.1f} s exceeds the {GOAL_SECONDS:.0f} s goal", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
