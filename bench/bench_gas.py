"""Gas of the dispute game, on titanoboa (the real contracts, compiled by the real compiler).

1. An honest challenger against a single wrong element in a 10,000-step training claim of the
   bundled MLP program: every move's gas, moves per party against 2 ceil(log_k N) + 4, and the
   total each side pays, for several arities k.
2. The one-step proof of every node of the training step, at the demo's shapes.

Transaction gas = intrinsic + calldata (EIP-2028, with EIP-7623's floor) + execution.
Goals: no transaction above 1,000,000 gas; the honest challenger below 2,000,000 in total.
The table is written to bench/gas_snapshot.json; `--check` exits non-zero if a goal is missed.

    python bench/bench_gas.py [--steps 10000] [--arity 4 8 16] [--check]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "contracts"))
sys.path.insert(0, str(ROOT))

import boa  # noqa: E402
import test_game_rules  # noqa: E402
from _court import BoaOracle, Court, Match, tx_gas  # noqa: E402
from test_game_rules import WrongElement, new_match, play  # noqa: E402

from cli import resolve_program  # noqa: E402
from verifier.court.game import (
    Outcome,  # noqa: E402
    Player,  # noqa: E402
)
from verifier.engine.program import load_program  # noqa: E402
from verifier.engine.trace import Trace  # noqa: E402

TX_LIMIT = 1_000_000
CHALLENGER_LIMIT = 2_000_000
DISPUTED_NODE = 26  # gW1 = xT @ dh: a 64-term reduction into the largest output


def mlp(steps: int, cls=None, **attrs):  # noqa: ANN001, ANN201
    p = load_program(resolve_program("mlp_train"), steps=steps)
    if cls is not None:
        p.__class__ = cls
        for k, v in attrs.items():
            setattr(p, k, v)
    return p


def long_claim(court: Court, steps: int, arities: list[int]) -> list[dict]:
    honest_p = mlp(steps)
    started = time.perf_counter()
    honest = Trace(honest_p, checkpoint_every=100)
    honest.run()
    cheat = Trace(mlp(steps, WrongElement, target=(steps * 7 // 9, DISPUTED_NODE), element=-1, delta=1 << 30), checkpoint_every=100)
    claim = cheat.run()
    print(f"traced 2 x {steps} steps in {time.perf_counter() - started:.1f} s")
    out = []
    token = boa.load("contracts/Token.vy")
    tasks = boa.load("contracts/Tasks.vy", token.address, court.game.address)
    poster, solver, challenger = (boa.env.generate_address(n) for n in ("poster", "solver", "challenger"))
    for a in (poster, solver, challenger):
        token.mint(a, 10**24)
        with boa.env.prank(a):
            token.approve(tasks.address, 10**24)
    for k in arities:
        # the honest challenger's bill starts with the challenge itself (bond + game creation)
        now = boa.env.evm.patch.timestamp
        with boa.env.prank(poster):
            task = tasks.post_task(honest_p.graph_root, honest_p.n_nodes, honest_p.n_slots, honest_p.initial_state_root,
                                   honest_p.data_root, steps, 10**18, 172_800, 172_800, 10**18, 10**18, k, now + 10**6)
        with boa.env.prank(solver):  # commit, then reveal (SPEC 7.3)
            salt = bytes(32)
            claim_id = tasks.commit_claim(task, tasks.claim_commitment(task, claim, solver, salt))
            tasks.reveal_claim(claim_id, claim, salt)
        with boa.env.prank(challenger):
            challenge_id = tasks.challenge(claim_id)
        challenge_gas = tx_gas(tasks._computation.get_gas_used(), tasks.challenge.prepare_calldata(claim_id))
        gid = tasks.challenges(challenge_id)[2]
        m = Match(court, gid, Player(cheat, BoaOracle(court)), Player(honest, BoaOracle(court)), solver, challenger)
        test_game_rules.ARITY = k
        outcome = play(m, "challenger")
        m.gas["challenger"] += challenge_gas
        m.max_gas = max(m.max_gas, challenge_gas)
        m.log.insert(0, ("challenger", "challenge", challenge_gas, len(tasks.challenge.prepare_calldata(claim_id))))
        assert outcome == Outcome.CHALLENGER_WON, outcome
        node = honest_p.graph.nodes[DISPUTED_NODE]
        out_type = honest_p.graph.slots[node.output].type
        K = 64
        positions = steps * (honest_p.n_nodes + 2) * out_type.size * (K + 1)
        bound = 2 * math.ceil(math.log(positions, k)) + 4
        out.append(
            {
                "arity": k,
                "positions": positions,
                "move_bound": bound,
                "solver_moves": len(m.sent["solver"]),
                "challenger_moves": len(m.sent["challenger"]),
                "solver_gas": m.gas["solver"],
                "challenger_gas": m.gas["challenger"],
                "max_tx_gas": m.max_gas,
                "moves": [{"by": w, "call": f, "gas": g, "calldata": n} for w, f, g, n in m.log],
            }
        )
    return out


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--arity", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--skip-one-steps", action="store_true", help="only the long claim")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--snapshot", type=Path, default=ROOT / "bench" / "gas_snapshot.json")
    args = ap.parse_args()
    court = Court.deploy()

    games = long_claim(court, args.steps, args.arity)
    print(f"\nhonest challenger vs one wrong element in a {args.steps}-step MLP training claim")
    print(f"{'k':>3} {'solver moves':>12} {'challenger moves':>16} {'bound':>6} {'max tx gas':>11} {'solver gas':>11} {'challenger gas':>15}")
    for g in games:
        print(f"{g['arity']:>3} {g['solver_moves']:>12} {g['challenger_moves']:>16} {g['move_bound']:>6} {g['max_tx_gas']:>11,} "
              f"{g['solver_gas']:>11,} {g['challenger_gas']:>15,}")
    best = min(games, key=lambda g: g["challenger_gas"])
    print(f"\nmoves of the cheapest game (k = {best['arity']}):")
    for mv in best["moves"]:
        print(f"  {mv['by']:<10} {mv['call']:<15} {mv['gas']:>9,} gas  {mv['calldata']:>6} calldata bytes")

    rows = [] if args.skip_one_steps else one_steps(court)
    print("\ndeciding one-step per node of the training step (demo shapes)")
    print(f"{'node':>4} {'op':<14} {'output':<18} {'proof':<15} {'gas':>9} {'game max tx':>12}")
    for r in rows:
        print(f"{r['node']:>4} {r['op']:<14} {r['output']:<18} {r['proof']:<15} {r['gas']:>9,} {r['game_max_tx']:>12,}")

    max_tx = max([g["max_tx_gas"] for g in games] + [r["game_max_tx"] for r in rows])
    ok = (
        max_tx <= TX_LIMIT
        and best["challenger_gas"] <= CHALLENGER_LIMIT
        and all(max(g["solver_moves"], g["challenger_moves"]) <= g["move_bound"] for g in games)
    )
    print(f"\nlargest transaction {max_tx:,} gas (goal <= {TX_LIMIT:,}); "
          f"honest challenger total {best['challenger_gas']:,} gas at k = {best['arity']} (goal <= {CHALLENGER_LIMIT:,}); "
          f"moves within 2 ceil(log_k N) + 4: {all(max(g['solver_moves'], g['challenger_moves']) <= g['move_bound'] for g in games)}")
    args.snapshot.write_text(json.dumps({"steps": args.steps, "games": games, "one_steps": rows}, indent=1) + "\n")
    print(f"snapshot written to {args.snapshot.relative_to(ROOT)}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
