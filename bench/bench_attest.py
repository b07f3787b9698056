"""The verifier's dilemma, measured: a watchtower's income per task when nobody cheats.

contracts/Token.vy, contracts/Tasks.vy and contracts/Attestations.vy run on titanoboa exactly
as deployed (contracts/mocks/MockGame.vy stands in for the game, which no episode here opens:
every claim is honest). Each episode posts a task, funds its verification fee, lets an honest
solver claim it, and lets `h` honest watchtowers attest, reveal and collect (docs/SPEC.md 7.10);
a rational solver adds the number `k` of sybil attestations that maximizes its own take,
`F * k / (h + k) - k * c`, where `c` is the gas of one attestation's three transactions. Every
call's gas is measured (intrinsic + calldata + execution, as bench/bench_gas.py counts it), every
share is what the token actually paid, and the contract must hold exactly `owed()` after every
call.

Printed and written to bench/attest_report.json:
- the gas of fund, attest, reveal_attestation and collect_fee (the last collection also burns
  the rounding dust), and `c` in BOND at `--gwei` and `--bond-eth`;
- per fee level and honest watchtower count: the rational sybil count, an honest watchtower's
  share and income after its gas, with and without the sybils, and the solver's sybil profit;
- the goal of issue 11 item 14: the honest watchtower's income with zero cheaters is > 0 for
  every fee above `h * c`, and the rational sybils never push it to or below 0.

The off-chain cost of re-executing the program is not counted: a fee must also cover it.

    python bench/bench_attest.py [--gwei 100] [--bond-eth 0.001] [--fees 5 20 50 100 500 1000]
        [--honest 1 2 5 10] [--out bench/attest_report.json]

Exit code: 1 when an invariant breaks (a balance != owed(), a share other than floor(F / n)),
or when the goal is missed for a fee above `h * c`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boa

from verifier.commit.commitments import keccak, state_root

E18 = 10**18
WINDOW = CLOCK = REVEAL_PERIOD = 172_800
STEPS = 1_000
SLOTS = keccak(b"final slot table")
FINAL = state_root(STEPS, 0, SLOTS)
SOLVER_BOND, CHALLENGER_BOND, REWARD = 100 * E18, 250 * E18, 200 * E18


class Invariant(Exception):
    pass


def tx_gas(execution: int, calldata: bytes) -> int:
    """Intrinsic + calldata (EIP-2028, EIP-7623 floor) + execution (as bench/bench_gas.py)."""
    zeros = calldata.count(0)
    tokens = zeros + 4 * (len(calldata) - zeros)
    return max(21_000 + 4 * tokens + execution, 21_000 + 10 * tokens)


def word(addr: str) -> bytes:
    return bytes(12) + bytes.fromhex(str(addr)[2:])


class Chain:
    """Token, MockGame, Tasks and Attestations on one boa chain; gas of every call by name."""

    def __init__(self) -> None:
        load = lambda rel: boa.load_partial(str(ROOT / "contracts" / rel))
        self.owner = boa.env.generate_address("deployer")
        with boa.env.prank(self.owner):
            self.token = load("Token.vy").deploy()
            mock = load("mocks/MockGame.vy").deploy()
            self.tasks = load("Tasks.vy").deploy(self.token.address, mock.address, load("Availability.vy").deploy().address)
            mock.set_tasks(self.tasks.address)
            self.att = load("Attestations.vy").deploy(self.tasks.address)
        self.gas: dict[str, list[int]] = {}
        self.n = 0

    def party(self, name: str) -> str:
        self.n += 1
        a = boa.env.generate_address(f"{name}{self.n}")
        with boa.env.prank(self.owner):
            self.token.mint(a, 10**7 * E18)
        with boa.env.prank(a):
            self.token.approve(self.tasks.address, 2**256 - 1)
            self.token.approve(self.att.address, 2**256 - 1)
        return a

    def call(self, contract, who: str, fn: str, *args) -> int:
        """`who` sends `fn`; returns its gas, recorded under `fn`."""
        f = getattr(contract, fn)
        data = f.prepare_calldata(*args)
        with boa.env.prank(who):
            f(*args)
        g = tx_gas(contract._computation.get_gas_used(), data)
        self.gas.setdefault(fn, []).append(g)
        if self.token.balanceOf(self.att.address) != self.att.owed():
            raise Invariant(f"after {fn}: Attestations holds {self.token.balanceOf(self.att.address)}, owes {self.att.owed()}")
        return g

    def episode(self, fee: int, honest: int, sybils: int) -> dict:
        """One task, fee `fee`, `honest` watchtowers and `sybils` solver sybils: each honest
        watchtower's token gain and gas."""
        poster, solver = self.party("poster"), self.party("solver")
        towers = [self.party("tower") for _ in range(honest)]
        fakes = [self.party("sybil") for _ in range(sybils)]
        tid = self.tasks.post_task(
            keccak(b"g"), 12, 30, keccak(b"i"), keccak(b"d"), STEPS, REWARD, WINDOW, CLOCK, SOLVER_BOND,
            CHALLENGER_BOND, 4, boa.env.timestamp + 20 * 86_400, sender=poster,
        )  # fmt: skip
        self.call(self.att, poster, "fund", tid, fee)
        salt = keccak(b"s")
        cid = self.tasks.commit_claim(tid, keccak(tid.to_bytes(32, "big"), FINAL, word(solver), salt), sender=solver)
        self.tasks.reveal_claim(cid, FINAL, salt, sender=solver)
        everyone = towers + fakes
        start = {a: self.token.balanceOf(a) for a in everyone}
        spent = dict.fromkeys(everyone, 0)

        def commit(a: str) -> bytes:
            return keccak(cid.to_bytes(32, "big"), SLOTS, word(a), keccak(b"salt", word(a)))

        for a in everyone:
            spent[a] += self.call(self.att, a, "attest", cid, commit(a))
        boa.env.time_travel(seconds=self.tasks.challenge_deadline(cid) - boa.env.timestamp)
        self.tasks.finalize(cid)
        for a in everyone:
            spent[a] += self.call(self.att, a, "reveal_attestation", cid, SLOTS, keccak(b"salt", word(a)))
        boa.env.time_travel(seconds=REVEAL_PERIOD)
        for a in everyone:
            spent[a] += self.call(self.att, a, "collect_fee", cid, a)
        n = honest + sybils
        gains = [self.token.balanceOf(a) - start[a] for a in everyone]
        if gains != [fee // n] * n:
            raise Invariant(f"shares {gains} != floor({fee} / {n})")
        if self.att.owed() != 0:
            raise Invariant(f"owed {self.att.owed()} after every share was collected")
        return {"share": gains[0], "gas": [spent[a] for a in towers], "sybil_gas": [spent[a] for a in fakes]}


def rational_sybils(fee: float, honest: int, cost: float, cap: int = 10_000) -> int:
    """The k >= 0 maximizing the solver's take F * k / (h + k) - k * c (first maximum)."""
    best, best_k = 0.0, 0
    for k in range(1, cap):
        take = fee * k / (honest + k) - k * cost
        if take > best:
            best, best_k = take, k
        elif take < best:
            break  # concave in k: past the maximum
    return best_k


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gwei", type=float, default=100.0, help="gas price")
    ap.add_argument("--bond-eth", type=float, default=0.001, help="price of 1 BOND in ETH")
    ap.add_argument("--fees", type=int, nargs="*", default=[5, 20, 50, 100, 500, 1000], help="fee levels, BOND")
    ap.add_argument("--honest", type=int, nargs="*", default=[1, 2, 5, 10], help="honest watchtowers per task")
    ap.add_argument("--out", default=str(ROOT / "bench/attest_report.json"))
    args = ap.parse_args(argv)
    bond_per_gas = args.gwei * 1e-9 / args.bond_eth
    t0 = time.perf_counter()
    chain = Chain()
    try:
        # the gas of one attestation's three transactions, from a first episode
        chain.episode(100 * E18, 3, 0)
        g = {fn: max(v) for fn, v in chain.gas.items()}
        c_gas = g["attest"] + g["reveal_attestation"] + g["collect_fee"]
        c = c_gas * bond_per_gas
        rows = []
        for fee_bond in args.fees:
            for h in args.honest:
                k = rational_sybils(fee_bond, h, c)
                fee = fee_bond * E18
                base = chain.episode(fee, h, 0)
                with_sybils = base if k == 0 else chain.episode(fee, h, k)
                share0 = base["share"] / E18
                share = with_sybils["share"] / E18
                income0 = share0 - max(base["gas"]) * bond_per_gas
                income = share - max(with_sybils["gas"]) * bond_per_gas
                sybil_profit = k * share - sum(with_sybils["sybil_gas"]) * bond_per_gas
                rows.append({
                    "fee_bond": fee_bond, "honest": h, "breakeven_fee_bond": round(h * c, 4),
                    "share_no_sybils_bond": round(share0, 6), "income_no_sybils_bond": round(income0, 6),
                    "rational_sybils": k, "share_with_sybils_bond": round(share, 6),
                    "income_with_sybils_bond": round(income, 6), "solver_sybil_profit_bond": round(sybil_profit, 6),
                    "goal_met": income0 > 0 and income > 0,
                })  # fmt: skip
    except Invariant as e:
        print(f"INVARIANT BROKEN: {e}")
        return 1
    missed = [r for r in rows if r["fee_bond"] > r["breakeven_fee_bond"] and not r["goal_met"]]
    calls = {fn: {"max": max(v), "min": min(v), "calls": len(v)} for fn, v in sorted(chain.gas.items())}
    report = {
        "assumptions": {
            "gwei": args.gwei, "bond_eth": args.bond_eth, "bond_per_gas": bond_per_gas,
            "reveal_period_s": REVEAL_PERIOD, "window_s": WINDOW,
            "sybil_cost": "a sybil pays the same three transactions as an honest attester",
            "excluded": "the off-chain cost of re-executing the program; funding a sybil's ether",
        },
        "gas": calls,
        "attestation_gas": c_gas,
        "attestation_cost_bond": round(c, 6),
        "attestation_cost_eth": round(c_gas * args.gwei * 1e-9, 8),
        "rows": rows,
        "goal": {
            "statement": "an honest watchtower's income per task with zero cheaters > 0 (issue 11 item 14)",
            "met_above_breakeven": not missed,
            "missed": missed,
            "sybils_never_push_income_to_zero": all(
                r["income_with_sybils_bond"] > 0 for r in rows if r["rational_sybils"] > 0
            ),
        },
        "seconds": round(time.perf_counter() - t0, 2),
    }
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"gas: attest {g['attest']}, reveal {g['reveal_attestation']}, collect {g['collect_fee']} (max, incl. dust burn)")
    print(f"one attestation: {c_gas} gas = {c:.4f} BOND at {args.gwei:g} gwei, 1 BOND = {args.bond_eth:g} ETH")
    print(f"{'fee':>6} {'h':>3} {'share':>9} {'income':>9} {'k*':>3} {'share_k':>9} {'income_k':>9} {'solver':>9}")
    for r in rows:
        print(
            f"{r['fee_bond']:>6} {r['honest']:>3} {r['share_no_sybils_bond']:>9.3f} {r['income_no_sybils_bond']:>9.3f} "
            f"{r['rational_sybils']:>3} {r['share_with_sybils_bond']:>9.3f} {r['income_with_sybils_bond']:>9.3f} "
            f"{r['solver_sybil_profit_bond']:>9.3f}"
        )
    print(f"goal (income > 0 above the break-even fee h * c): {'met' if not missed else 'MISSED'}; report: {args.out}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
