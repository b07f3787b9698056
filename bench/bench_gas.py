"""Gas of the dispute game as a chain charges it, on titanoboa (the real contracts, compiled by
the real compiler), checked against anvil's receipts in the same run.

1. An honest challenger against a single wrong element in a 10,000-step training claim of the
   bundled MLP program: every transaction's gas (the challenge, then every move), moves per
   party against 2 ceil(log_k N) + 4, and the total each side pays, for several arities k.
2. The one-step proof of every node of the training step, at the demo's shapes.
3. The same kind of game, at a smaller step count and one arity, played on titanoboa and
   replayed transaction for transaction on a real anvil node (started here, on 127.0.0.1, a
   free port, the Prague fork as py-evm's): every receipt's gasUsed against the count here.

Counting as a chain does: every call is its own transaction (tests/contracts/_court.py's
`cold_transactions`), so storage slots and accounts are cold in each (EIP-2929) and a slot's
original value is the one before that transaction (EIP-2200); titanoboa on its own keeps them
warm and dirty for a whole session. Each arity gets its own deployment (token, tasks, court), as
a fresh chain would. Transaction gas = intrinsic + calldata (EIP-2028) + execution, less the
storage refund (at most 1/5, EIP-3529), or EIP-7623's calldata floor if higher.

Goals: no transaction above 300,000 gas; the honest challenger below 1,200,000 in total; the
count within 3% of anvil's receipts in total. The table is written to bench/gas_snapshot.json;
`--check` exits non-zero if a goal is missed or the counts disagree.

    python bench/bench_gas.py [--steps 10000] [--arity 4 8 16] [--anvil-steps 1000]
                              [--anvil-arity 16] [--no-anvil] [--skip-one-steps] [--check]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "contracts"))
sys.path.insert(0, str(ROOT))

import boa  # noqa: E402
import test_game_rules  # noqa: E402
from _court import (  # noqa: E402
    BoaOracle,
    Court,
    Match,
    _deployer,
    as_cheat,
    cold_transactions,
    computation_gas,
)
from test_game_rules import WrongElement, new_match, play  # noqa: E402

from cli import resolve_program  # noqa: E402
from verifier.court.game import (
    Outcome,  # noqa: E402
    Player,  # noqa: E402
)
from verifier.engine.program import load_program  # noqa: E402
from verifier.engine.trace import Trace  # noqa: E402
from verifier.market.economics import MIN_CHALLENGER_BOND  # noqa: E402

TX_LIMIT = 300_000  # the gas issue's goals: the largest transaction meets it, the challenger's total not yet
CHALLENGER_LIMIT = 1_200_000
AGREEMENT = 0.03  # the count vs anvil's receipts, in total
DISPUTED_NODE = 26  # gW1 = xT @ dh: a 64-term reduction into the largest output
FUNDS = 10**24
SALT = bytes(32)


def mlp(steps: int, cls=None, **attrs):  # noqa: ANN001, ANN201
    p = load_program(resolve_program("mlp_train"), steps=steps)
    return as_cheat(p, cls, **attrs)


def traces(steps: int) -> tuple[Any, Trace, Trace, bytes]:
    """The honest program and trace, and a cheat's trace and claim: one wrong element of the
    disputed node at step 7/9 of the way."""
    honest_p = mlp(steps)
    started = time.perf_counter()
    honest = Trace(honest_p, checkpoint_every=100)
    honest.run()
    cheat = Trace(mlp(steps, WrongElement, target=(steps * 7 // 9, DISPUTED_NODE), element=-1, delta=1 << 30), checkpoint_every=100)
    claim = cheat.run()
    print(f"traced 2 x {steps} steps in {time.perf_counter() - started:.1f} s")
    return honest_p, honest, cheat, claim


def accounts() -> dict[str, str]:
    """Poster, solver and challenger: anvil's development accounts 1-3 (titanoboa pranks them;
    the anvil replay signs with their keys), so both chains see the same calldata."""
    from eth_account import Account

    from verifier.court.devnet import ANVIL_KEYS

    return {who: Account.from_key(ANVIL_KEYS[i]).address for i, who in ((1, "poster"), (2, "solver"), (3, "challenger"))}


@dataclass
class Tx:
    by: str
    call: str
    gas: int
    calldata: int


@dataclass
class Played:
    """One game on titanoboa: its transactions in order (the task's set-up, the challenge, the
    moves) and what the replay needs."""

    arity: int
    steps: int
    claim: bytes
    setup: list[Tx] = field(default_factory=list)  # mint, approve, post_task, commit, reveal
    match: Match | None = None
    challenge: Tx | None = None
    gid: int = 0
    challenge_again: int = 0  # the challenge of a second claim on the same deployment

    def txs(self) -> list[Tx]:
        return [*self.setup, self.challenge, *self.game_txs()]

    def game_txs(self) -> list[Tx]:
        assert self.match is not None
        return [Tx(w, f, g, n) for w, f, g, n in self.match.log]


def play_on_boa(honest_p, honest: Trace, cheat: Trace, claim: bytes, steps: int, k: int, who: dict[str, str]) -> Played:  # noqa: ANN001
    """A fresh deployment (court, token, tasks), a task, a revealed claim, the challenge and the
    game to its end, every call a cold transaction."""
    out = Played(k, steps, claim)
    court = Court.deploy()
    token = _deployer("Token").deploy()
    tasks = _deployer("Tasks").deploy(token.address, court.game.address, _deployer("Availability").deploy().address)

    def send(by: str, fn, *args):  # noqa: ANN001, ANN202
        boa.env.time_travel(seconds=1)  # a second between transactions, as between moves
        with boa.env.prank(who[by]) if by != "deployer" else nullcontext():
            ret = fn(*args)
        data = fn.prepare_calldata(*args)
        out.setup.append(Tx(by, fn.func_t.name, computation_gas(fn.contract._computation, data), len(data)))
        return ret

    for by in ("poster", "solver", "challenger"):
        send("deployer", token.mint, who[by], FUNDS)
    for by in ("poster", "solver", "challenger"):
        send(by, token.approve, tasks.address, FUNDS)
    now = boa.env.evm.patch.timestamp
    task = send("poster", tasks.post_task, *task_terms(honest_p, steps, k, now))
    claim_id = send("solver", tasks.commit_claim, task, tasks.claim_commitment(task, claim, who["solver"], SALT))
    send("solver", tasks.reveal_claim, claim_id, claim, SALT)
    challenge_id = send("challenger", tasks.challenge, claim_id)
    out.challenge = out.setup.pop()
    out.gid = tasks.challenges(challenge_id)[2]
    m = Match(court, out.gid, Player(cheat, BoaOracle(court)), Player(honest, BoaOracle(court)), who["solver"], who["challenger"])
    test_game_rules.ARITY = k
    outcome = play(m, "challenger")
    assert outcome == Outcome.CHALLENGER_WON, outcome
    out.match = m
    # the same challenge of a second claim on this deployment: the task, claim, challenge and
    # game counters are no longer zero, so it writes them for less (not replayed on anvil)
    setup = len(out.setup)
    task = send("poster", tasks.post_task, *task_terms(honest_p, steps, k, boa.env.evm.patch.timestamp))
    claim_id = send("solver", tasks.commit_claim, task, tasks.claim_commitment(task, claim, who["solver"], SALT))
    send("solver", tasks.reveal_claim, claim_id, claim, SALT)
    send("challenger", tasks.challenge, claim_id)
    out.challenge_again = out.setup[-1].gas
    del out.setup[setup:]
    return out


def task_terms(p, steps: int, k: int, now: int) -> tuple:  # noqa: ANN001
    """post_task's arguments: reward, windows, bonds, arity, deadline."""
    return (p.graph_root, p.n_nodes, p.n_slots, p.initial_state_root, p.data_root, steps,
            10**18, 172_800, 172_800, 10**18, MIN_CHALLENGER_BOND, k, now + 10**6)


def game_row(honest_p, played: Played) -> dict:  # noqa: ANN001
    m = played.match
    assert m is not None and played.challenge is not None
    k, steps = played.arity, played.steps
    node = honest_p.graph.nodes[DISPUTED_NODE]
    out_type = honest_p.graph.slots[node.output].type
    K = 64
    positions = steps * (honest_p.n_nodes + 2) * out_type.size * (K + 1)
    moves = [played.challenge, *played.game_txs()]
    return {
        "arity": k,
        "positions": positions,
        "move_bound": 2 * math.ceil(math.log(positions, k)) + 4,
        "solver_moves": len(m.sent["solver"]),
        "challenger_moves": len(m.sent["challenger"]),
        "solver_gas": m.gas["solver"],
        "challenger_gas": m.gas["challenger"] + played.challenge.gas,
        "max_tx_gas": max(t.gas for t in moves),
        "challenge_gas_used_deployment": played.challenge_again,
        "moves": [{"by": t.by, "call": t.call, "gas": t.gas, "calldata": t.calldata} for t in moves],
    }


def long_claim(steps: int, arities: list[int], who: dict[str, str]) -> list[dict]:
    honest_p, honest, cheat, claim = traces(steps)
    return [game_row(honest_p, play_on_boa(honest_p, honest, cheat, claim, steps, k, who)) for k in arities]


def view_gas(runs: int = 3) -> list[int]:
    """The execution gas of a view call that reads the whole game struct (~33 storage words),
    `runs` times on a fresh court: the same each time when every call is its own transaction,
    ~2,000 gas a word less from the second call on when titanoboa keeps the slots warm."""
    court = Court.deploy()
    out = []
    for _ in range(runs):
        court.game.games(0)
        out.append(court.game._computation.get_gas_used())
    return out


# -- anvil ----------------------------------------------------------------------------------------


def replay_on_anvil(honest_p, played: Played, who: dict[str, str]) -> list[int]:  # noqa: ANN001
    """The same transactions on a fresh anvil (a fresh suite), each sent through the project's web3
    path (Chain.send: dry run, estimate, sign, wait); their receipts' gasUsed in order. anvil is
    stopped (its process group killed) however this ends."""
    import signal
    import subprocess

    from verifier.court import devnet
    from verifier.court.chain import Chain, deploy_suite
    from verifier.court.play import Court as ChainCourt

    binary = devnet.anvil_binary()
    if binary is None:
        raise RuntimeError(f"anvil is not installed; {devnet.INSTALL_HINT}.")
    port = devnet.free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [binary, "--host", "127.0.0.1", "--port", str(port), "--silent", "--hardfork", "prague", "--accounts", "5"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"anvil exited with code {proc.returncode} before it was ready")
            try:
                devnet.rpc(url, "eth_chainId")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("anvil did not answer within 30 s") from None
                time.sleep(0.1)
        deployer = Chain.connect(url, key=devnet.ANVIL_KEYS[0])
        d = deploy_suite(deployer)
        signer = {"deployer": deployer} | {by: deployer.with_key(devnet.ANVIL_KEYS[i]) for i, by in ((1, "poster"), (2, "solver"), (3, "challenger"))}
        for by, chain in signer.items():
            assert by == "deployer" or chain.account == who[by]
        c = {name: deployer.contract(name, d.addresses[name]) for name in ("Token", "Tasks")}
        gas: list[int] = []

        def next_second() -> None:
            # a second passes before every transaction, as on titanoboa: on a chain blocks are
            # seconds apart, and a transaction in the same second as the last would find words
            # that hold a timestamp (the clocks) unchanged, 2,800 gas less a word
            ts = int(deployer.w3.eth.get_block("latest")["timestamp"])
            devnet.rpc(url, "evm_setNextBlockTimestamp", [ts + 1])

        def send(by: str, name: str, fn: str, *args):  # noqa: ANN202
            f = getattr(signer[by].contract(name, d.addresses[name]).functions, fn)(*args)
            ret = f.call({"from": signer[by].account})  # the value the transaction will return
            next_second()
            gas.append(int(signer[by].send(f, fn)["gasUsed"]))
            return ret

        for by in ("poster", "solver", "challenger"):
            send("deployer", "Token", "mint", who[by], FUNDS)
        for by in ("poster", "solver", "challenger"):
            send(by, "Token", "approve", d.addresses["Tasks"], FUNDS)
        now = int(deployer.w3.eth.get_block("latest")["timestamp"])
        task = send("poster", "Tasks", "post_task", *task_terms(honest_p, played.steps, played.arity, now))
        commitment = c["Tasks"].functions.claim_commitment(task, played.claim, who["solver"], SALT).call()
        claim_id = send("solver", "Tasks", "commit_claim", task, commitment)
        send("solver", "Tasks", "reveal_claim", claim_id, played.claim, SALT)
        challenge_id = send("challenger", "Tasks", "challenge", claim_id)
        gid = int(c["Tasks"].functions.challenges(challenge_id).call()[2])
        assert gid == played.gid, (gid, played.gid)
        assert played.match is not None
        for by, move in played.match.moves:
            next_second()
            gas.append(int(ChainCourt(signer[by], d).send(gid, move)["gasUsed"]))
        game = ChainCourt(deployer, d).state(gid)
        assert game.outcome == Outcome.CHALLENGER_WON, game.outcome
        return gas
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def anvil_check(steps: int, k: int, who: dict[str, str]) -> dict:
    honest_p, honest, cheat, claim = traces(steps)
    played = play_on_boa(honest_p, honest, cheat, claim, steps, k, who)
    started = time.perf_counter()
    receipts = replay_on_anvil(honest_p, played, who)
    txs = played.txs()
    assert len(receipts) == len(txs), (len(receipts), len(txs))
    rows = [{"by": t.by, "call": t.call, "boa": t.gas, "anvil": r, "diff": t.gas - r} for t, r in zip(txs, receipts)]
    n_setup = len(played.setup)
    challenger = [r for r in rows[n_setup:] if r["by"] == "challenger"]
    total_boa, total_anvil = sum(r["boa"] for r in rows), sum(r["anvil"] for r in rows)
    ch_boa, ch_anvil = sum(r["boa"] for r in challenger), sum(r["anvil"] for r in challenger)
    return {
        "steps": steps,
        "arity": k,
        "anvil": f"{_anvil_version()} --hardfork prague",
        "seconds_on_anvil": round(time.perf_counter() - started, 1),
        "transactions": len(rows),
        "total_boa": total_boa,
        "total_anvil": total_anvil,
        "total_rel_diff": (total_boa - total_anvil) / total_anvil,
        "challenger_boa": ch_boa,
        "challenger_anvil": ch_anvil,
        "challenger_rel_diff": (ch_boa - ch_anvil) / ch_anvil,
        "max_abs_tx_diff": max(abs(r["diff"]) for r in rows),
        "txs": rows,
    }


def _anvil_version() -> str:
    import subprocess

    from verifier.court import devnet

    try:
        out = subprocess.run([devnet.anvil_binary() or "anvil", "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
        return out.split("\n")[0].strip() or "anvil"
    except (OSError, subprocess.TimeoutExpired):
        return "anvil"


def one_steps(court: Court) -> list[dict]:
    """The deciding transaction of a dispute at each node of the training step."""
    steps = 3
    honest_p = mlp(steps)
    honest = Trace(honest_p, checkpoint_every=2)
    honest.run()
    rows = []
    tries = [(-1, 1)] + [(e, d) for e in (-1, 0, 1, 7, 100, 1000, -100) for d in (1 << 30, -(1 << 30))]
    for n, node in enumerate(honest_p.graph.nodes):
        for element, delta in tries:
            cheat = Trace(mlp(steps, WrongElement, target=(1, n), element=element, delta=delta), checkpoint_every=2)
            claim = cheat.run()
            if claim != honest.final_root:
                break
        m = new_match(court, BoaOracle(court), cheat, honest, claim, honest_p)
        assert play(m, "challenger") == Outcome.CHALLENGER_WON
        who, fn, gas, size = m.log[-1]
        out_type = honest_p.graph.slots[node.output].type
        rows.append({"node": n, "op": node.op.name, "output": str(out_type), "proof": fn, "gas": gas, "calldata": size,
                     "game_max_tx": m.max_gas})
    return rows


#: the snapshot before each transaction was counted cold (commit f89d9be: titanoboa warm across
#: calls, one deployment for all arities), 10,000 steps: arity -> (challenger gas, largest tx)
WARM_SNAPSHOT = {4: (1_746_348, 606_721), 8: (1_597_399, 560_421), 16: (1_574_745, 560_421)}
#: counted cold, before the game's and the challenge's storage was packed (a game created as ~33
#: words, one word per field): arity -> (challenger gas, solver gas, largest tx)
UNPACKED_SNAPSHOT = {4: (2_616_846, 1_598_445, 684_896), 8: (2_387_604, 1_302_983, 684_896),
                     16: (2_278_798, 1_194_327, 684_896)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--arity", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--anvil-steps", type=int, default=1_000, help="steps of the claim replayed on anvil")
    ap.add_argument("--anvil-arity", type=int, default=16)
    ap.add_argument("--no-anvil", action="store_true", help="skip the anvil replay")
    ap.add_argument("--skip-one-steps", action="store_true", help="only the long claim")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--snapshot", type=Path, default=ROOT / "bench" / "gas_snapshot.json")
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    who = accounts()

    warm_runs = view_gas()  # titanoboa as it is
    with cold_transactions():
        cold_runs = view_gas()
        cold = {"view": "Game.games(0)", "cold_execution_gas": cold_runs, "warm_execution_gas": warm_runs,
                "same_each_time": len(set(cold_runs)) == 1 and cold_runs[0] == warm_runs[0]}
        games = long_claim(args.steps, args.arity, who)
        rows = [] if args.skip_one_steps else one_steps(Court.deploy())
        agreement = None if args.no_anvil else anvil_check(args.anvil_steps, args.anvil_arity, who)
    print(f"cold counting: {cold['view']} three times, execution gas {cold['cold_execution_gas']} "
          f"({'the same each time' if cold['same_each_time'] else 'NOT the same: slots stay warm'}); "
          f"titanoboa without it: {cold['warm_execution_gas']}")

    print(f"\nhonest challenger vs one wrong element in a {args.steps}-step MLP training claim "
          "(each transaction cold, one deployment per arity)")
    print(f"{'k':>3} {'solver moves':>12} {'challenger moves':>16} {'bound':>6} {'max tx gas':>11} {'solver gas':>11} {'challenger gas':>15}")
    for g in games:
        print(f"{g['arity']:>3} {g['solver_moves']:>12} {g['challenger_moves']:>16} {g['move_bound']:>6} {g['max_tx_gas']:>11,} "
              f"{g['solver_gas']:>11,} {g['challenger_gas']:>15,}")
    best = min(games, key=lambda g: g["challenger_gas"])
    for g in games:
        print(f"  k = {g['arity']}: on a deployment that already holds a game the challenge costs "
              f"{g['challenge_gas_used_deployment']:,} gas, {g['moves'][0]['gas'] - g['challenge_gas_used_deployment']:,} less "
              "(its counters are written from non-zero values)")
    print(f"\nmoves of the cheapest game (k = {best['arity']}):")
    for mv in best["moves"]:
        print(f"  {mv['by']:<10} {mv['call']:<15} {mv['gas']:>9,} gas  {mv['calldata']:>6} calldata bytes")
    if args.steps == 10_000:
        print("\nagainst the snapshot before cold counting (titanoboa warm across calls, one deployment for all arities):")
        print(f"{'k':>3} {'challenger before':>18} {'now':>11} {'change':>8} {'max tx before':>14} {'now':>9}")
        for g in games:
            if g["arity"] in WARM_SNAPSHOT:
                before, tx = WARM_SNAPSHOT[g["arity"]]
                print(f"{g['arity']:>3} {before:>18,} {g['challenger_gas']:>11,} "
                      f"{g['challenger_gas'] / before - 1:>+8.1%} {tx:>14,} {g['max_tx_gas']:>9,}")
        print("\nagainst the cold count before packed storage (a game created as ~33 words):")
        print(f"{'k':>3} {'challenger before':>18} {'now':>11} {'ratio':>6} {'solver before':>14} {'now':>11} {'ratio':>6} "
              f"{'max tx before':>14} {'now':>9}")
        for g in games:
            if g["arity"] in UNPACKED_SNAPSHOT:
                ch, so, tx = UNPACKED_SNAPSHOT[g["arity"]]
                print(f"{g['arity']:>3} {ch:>18,} {g['challenger_gas']:>11,} {g['challenger_gas'] / ch:>6.2f} {so:>14,} "
                      f"{g['solver_gas']:>11,} {g['solver_gas'] / so:>6.2f} {tx:>14,} {g['max_tx_gas']:>9,}")

    print("\ndeciding one-step per node of the training step (demo shapes)")
    print(f"{'node':>4} {'op':<14} {'output':<18} {'proof':<15} {'gas':>9} {'game max tx':>12}")
    for r in rows:
        print(f"{r['node']:>4} {r['op']:<14} {r['output']:<18} {r['proof']:<15} {r['gas']:>9,} {r['game_max_tx']:>12,}")

    agree = True
    if agreement is not None:
        a = agreement
        print(f"\nthe same game on anvil ({a['anvil']}): {a['steps']}-step claim, k = {a['arity']}, "
              f"{a['transactions']} transactions (set-up, challenge, moves) in {a['seconds_on_anvil']} s")
        print(f"  {'by':<10} {'call':<15} {'counted':>10} {'receipt':>10} {'diff':>7}")
        for r in a["txs"]:
            print(f"  {r['by']:<10} {r['call']:<15} {r['boa']:>10,} {r['anvil']:>10,} {r['diff']:>+7,}")
        print(f"  total: counted {a['total_boa']:,}, receipts {a['total_anvil']:,} ({a['total_rel_diff']:+.3%}); "
              f"honest challenger {a['challenger_boa']:,} vs {a['challenger_anvil']:,} ({a['challenger_rel_diff']:+.3%}); "
              f"largest difference in one transaction {a['max_abs_tx_diff']:,} gas")
        agree = abs(a["total_rel_diff"]) <= AGREEMENT and abs(a["challenger_rel_diff"]) <= AGREEMENT
        print(f"  within {AGREEMENT:.0%} of anvil's receipts: {agree}")

    max_tx = max([g["max_tx_gas"] for g in games] + [r["game_max_tx"] for r in rows])
    within = all(max(g["solver_moves"], g["challenger_moves"]) <= g["move_bound"] for g in games)
    goals = {
        f"largest transaction <= {TX_LIMIT:,}": max_tx <= TX_LIMIT,
        f"honest challenger <= {CHALLENGER_LIMIT:,} (cheapest arity)": best["challenger_gas"] <= CHALLENGER_LIMIT,
        "moves within 2 ceil(log_k N) + 4": within,
        f"count within {AGREEMENT:.0%} of anvil": agree,
        "every transaction cold": cold["same_each_time"],
    }
    print(f"\nlargest transaction {max_tx:,} gas; honest challenger total {best['challenger_gas']:,} gas at k = {best['arity']}")
    for goal, ok in goals.items():
        print(f"  {'pass' if ok else 'MISSED'}: {goal}")
    snap = {"steps": args.steps, "counting": "each transaction cold (EIP-2929 access list and EIP-2200 original values per "
            "transaction), one deployment per arity, refunds (EIP-3529) and the EIP-7623 floor applied",
            "games": games, "one_steps": rows, "cold_check": cold}
    if agreement is not None:
        snap["anvil"] = agreement
    args.snapshot.write_text(json.dumps(snap, indent=1) + "\n")
    where = args.snapshot.relative_to(ROOT) if args.snapshot.is_relative_to(ROOT) else args.snapshot
    print(f"snapshot written to {where}")
    return 0 if all(goals.values()) or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
