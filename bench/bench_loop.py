"""Benchmark: the closed loop (docs/SPEC.md 12) over many periods and seeds.

    python bench/bench_loop.py [--periods 10] [--seeds 1 2 3 4 5] [--report bench/loop_report.json]

For each seed, `verifier.app.demo_loop.run_loop` plays `--periods` periods on the in-process
chain with the real contracts and programs: a skilled model (a noisy view of the next return)
and an unskilled one (uniform guesses), an honest solver, a cheater whose wrong metamodel claim
in period 2 the watchtower catches with the real game, an arbitrageur moving the pool along
the synthetic series (SPEC 11.3), and two data providers joining every period (past-label
patterns from a seeded history of the series: the informative one with the history's next
labels, named by the skilled model; the noisy one with them flipped, named by the unskilled
model). Printed per seed: the vault's return, the depositors' and each model's profit or loss,
each data provider's total payout (shares of its model's gains less slashes) and the periods its
dataset was valued above zero, slashes, whether every contract held what it owed after every
period, the seconds per period and the gas of each call. Goals: the vault profits on average
over the seeds and skill is paid over the unskilled model in most of them; funds held equal
funds owed always; every data payout and slash is what the settlement rule gives (SPEC 12.5);
every cheat is caught. Also printed, not a goal: in how many seeds the informative dataset
earned more than the noisy one. One period's data values are near coin flips (past labels
predict the next one only weakly), so that count measures, it does not test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = 10**18


def _gas_by_call(chain, contracts) -> dict[str, dict[str, int]]:  # noqa: ANN001
    """Each function of the loop and the vault that was called: its calls, mean and largest gas
    (receipts of the in-process chain, every transaction to either contract)."""
    by_address = {c.address: c for c in contracts}
    seen: dict[str, list[int]] = {}
    for n in range(int(chain.w3.eth.block_number) + 1):
        for tx in chain.w3.eth.get_block(n, full_transactions=True)["transactions"]:
            c = by_address.get(tx["to"])
            if c is None:
                continue
            fn, _ = c.decode_function_input(tx.get("input", tx.get("data")))
            seen.setdefault(fn.fn_name, []).append(int(chain.w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"]))
    return {k: {"calls": len(v), "mean": sum(v) // len(v), "max": max(v)} for k, v in sorted(seen.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--report", type=Path)
    args = ap.parse_args(argv)

    from verifier.app.demo_loop import Plan, run_loop
    from verifier.court.chain import Chain, deploy_suite
    from verifier.engine.threads import set_threads, thread_count

    threads = set_threads(thread_count())
    print(f"threads {threads} (BISECTML_THREADS), cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")

    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        chain = Chain.embedded()
        deployment = deploy_suite(chain)
        deployed = []
        run = run_loop(chain, deployment, chain.w3.eth.accounts[:10], Plan(periods=args.periods, seed=seed, cheat_period=1),
                       on_deployed=deployed.append)  # fmt: skip
        secs = time.perf_counter() - t0
        gas = _gas_by_call(chain, [deployed[0].loop, deployed[0].vault])
        row = {
            "seed": seed,
            "periods": len(run.rows),
            "vault_return_bps": round((run.rows[-1].share_price / run.start_price - 1) * 10_000, 1),
            "depositors": [round(d / TOKEN, 2) for d in run.depositor_change],
            "skilled_pnl": round(run.model_pnl[0] / TOKEN, 2),
            "unskilled_pnl": round(run.model_pnl[1] / TOKEN, 2),
            "unskilled_slashed_periods": sum(r.payouts[1] < 0 for r in run.rows),
            "informative_data_pnl": round(run.data_pnl[0] / TOKEN, 2),
            "noisy_data_pnl": round(run.data_pnl[1] / TOKEN, 2),
            "informative_valued_above_zero": sum((r.data_values[0] or 0) > 0 for r in run.rows),
            "noisy_valued_above_zero": sum((r.data_values[1] or 0) > 0 for r in run.rows),
            "informative_slashed_periods": sum(r.data_payouts[0] < 0 for r in run.rows),
            "noisy_slashed_periods": sum(r.data_payouts[1] < 0 for r in run.rows),
            "data_settled_as_the_rule": all(
                r.data_payouts == r.data_paid == r.settled.expected_data() for r in run.rows if r.settled is not None
            ),
            "burned": round(run.burned / TOKEN, 2),
            "caught": sum(r.caught for r in run.rows),
            "traded_periods": sum(r.spent > 0 for r in run.rows),
            "held_equals_owed": run.balanced,
            "seconds_per_period": round(secs / len(run.rows), 2),
            "gas": gas,
        }
        rows.append(row)
        print(
            f"seed {seed}: vault {row['vault_return_bps']:+.1f} bps, skilled {row['skilled_pnl']:+,.1f} BOND, "
            f"unskilled {row['unskilled_pnl']:+,.1f} (slashed in {row['unskilled_slashed_periods']} periods), "
            f"informative data {row['informative_data_pnl']:+,.1f} (valued above 0 in {row['informative_valued_above_zero']} "
            f"periods), noisy data {row['noisy_data_pnl']:+,.1f} ({row['noisy_valued_above_zero']}), "
            f"caught {row['caught']}, held = owed {row['held_equals_owed']}, {row['seconds_per_period']:.1f} s/period"
        )
    goals = {
        "the vault profits on average over the seeds": sum(r["vault_return_bps"] for r in rows) > 0,
        "skill is paid over the unskilled model in most seeds": 2 * sum(r["skilled_pnl"] > r["unskilled_pnl"] for r in rows) > len(rows),
        "funds held equal funds owed after every period": all(r["held_equals_owed"] for r in rows),
        "every data payout and slash is the settlement rule's": all(r["data_settled_as_the_rule"] for r in rows),
        "every cheat caught": all(r["caught"] == 1 for r in rows),
    }
    print("gas per call (the last seed): " + ", ".join(f"{k} {v['mean']:,}" for k, v in rows[-1]["gas"].items()))
    data_wins = sum(r["informative_data_pnl"] > r["noisy_data_pnl"] for r in rows)
    print(f"the informative dataset earned more than the noisy one in {data_wins} of {len(rows)} seeds "
          f"(in all: {sum(r['informative_data_pnl'] for r in rows):+,.1f} against {sum(r['noisy_data_pnl'] for r in rows):+,.1f} BOND)")
    for goal, met in goals.items():
        print(f"{'met   ' if met else 'MISSED'} {goal}")
    print(f"threads {threads}, cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    report = {
        "command": "python bench/bench_loop.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "threads": threads, "load": os.getloadavg()[0],
        },
        "runs": rows,
        "informative_data_ahead_in_seeds": data_wins,
        "goals": goals,
    }
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
