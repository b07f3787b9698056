"""Benchmark: what the loop's payout rule pays a model without skill (docs/SPEC.md 12.5).

    python bench/bench_loop_charge.py [--periods 100000] [--seed 1] [--report bench/loop_charge_report.json]

A loop period has one row, so a guess beats the others' metamodel about half the time and the
contribution bonus, never negative, has a positive expectation; the participation charge of
`bonus_bps / 2` that every revealed model pays cancels it (SPEC 12.5 proves that no prediction
without skill earns in expectation). This plays `--periods` one-row periods of two equal
reservations with the demo's terms (`verifier.app.demo_loop`): the next return is drawn from the
synthetic series (SPEC 11.3), the skilled model sees it with 150 bps of noise, a guesser draws
uniformly in -40..40 and a bold guesser in -100..100 (the guess whose bonus comes closest to
`bonus_bps / 2`); the label is the return's sign. Scores come from `onnx_models.market.scores_ref`
and payouts from `verifier.market.loop.settlement` (the twin of `Loop.settle`), once with the
charge and once without it (the rule before it), on the same periods.
Printed: each model's mean return in basis points a period with its standard error, for a skilled
model beside a guesser, two guessers and two bold guessers. Goals, under the charge: the guesser
beside a skilled model loses by more than three standard errors, no guesser gains by more than
three, and the skilled model gains by more than three. The report also gives the goals under the
rule without the charge, where the second fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = 10**18
RESERVATION = 1_000 * TOKEN


def _mean_and_error(xs: list[int]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a)))


def simulate(periods: int, seed: int) -> dict:
    from onnx_models.market import scores_ref, weight_of
    from verifier.app.demo_loop import TERMS, Plan
    from verifier.market import economics as econ
    from verifier.market import loop as rules
    from verifier.market.exchange import returns_bps, synthetic_series

    plan = Plan()
    terms = dataclasses.replace(TERMS, models=2)
    rng = np.random.default_rng(seed)
    # in series of 1,000 periods: a price series long enough drifts to nothing in integers
    true_returns = []
    for chunk in range(0, periods, 1_000):
        series = synthetic_series(min(1_000, periods - chunk), seed * 1_000_003 + chunk, noise_bps=plan.noise_bps)
        true_returns += returns_bps(series)
    views = [x + int(rng.normal(0, plan.skill_noise_bps)) for x in true_returns]
    guesses = rng.integers(-40, 41, size=(periods, 2)).tolist()
    bold = rng.integers(-100, 101, size=(periods, 2)).tolist()
    pool = 10**9 * TOKEN  # large enough for any gain: the pool does not change a return
    weights = [weight_of(RESERVATION)] * 2
    pairs = {
        "skilled_and_guesser": lambda t: [int(np.clip(views[t] // 10, -100, 100)), guesses[t][0]],
        "two_guessers": lambda t: guesses[t],
        "two_bold_guessers": lambda t: bold[t],
    }
    out = {}
    for name, predict in pairs.items():
        with_charge: list[list[int]] = [[], []]
        without: list[list[int]] = [[], []]
        bonus: list[list[int]] = [[], []]
        for t in range(periods):
            y = (true_returns[t] > 0) - (true_returns[t] < 0)
            scores = [int(v) for v in scores_ref(weights, [y], [[p] for p in predict(t)])]
            now = rules.settlement([RESERVATION] * 2, [True, True], scores, terms, pool, 0).returns_bps
            entries = [econ.ModelEntry(RESERVATION, RESERVATION, scores[i], True, (), scores[2 + i]) for i in range(2)]
            old = econ.payouts(entries, [], terms.economics, pool).returns_bps
            for i in range(2):
                with_charge[i].append(now[i])
                without[i].append(old[i])
                bonus[i].append(max(0, min(terms.bonus_bps, scores[2 + i] * terms.factor_bps // 10_000)))
        models = ["skilled", "guesser"] if name == "skilled_and_guesser" else ["guesser_a", "guesser_b"]
        out[name] = {m: _summary(with_charge[i], without[i], bonus[i]) for i, m in enumerate(models)}
    return out


def _summary(with_charge: list[int], without: list[int], bonus: list[int]) -> dict:
    mean, error = _mean_and_error(with_charge)
    mean_before, error_before = _mean_and_error(without)
    return {
        "mean_return_bps": round(mean, 1),
        "standard_error_bps": round(error, 1),
        "mean_return_without_charge_bps": round(mean_before, 1),
        "standard_error_without_charge_bps": round(error_before, 1),
        "mean_bonus_bps": round(_mean_and_error(bonus)[0], 1),
    }


def goals(result: dict, suffix: str = "") -> dict[str, bool]:
    """The goals under the charge, or with `suffix="_without_charge"` under the rule before it."""

    def mean(v: dict) -> float:
        return v[f"mean_return{suffix}_bps"]

    def error(v: dict) -> float:
        return v[f"standard_error{suffix}_bps"]

    guessers = [v for pair in result.values() for k, v in pair.items() if k.startswith("guesser")]
    beside_skill = result["skilled_and_guesser"]["guesser"]
    skilled = result["skilled_and_guesser"]["skilled"]
    return {
        "a guesser beside a skilled model loses": mean(beside_skill) + 3 * error(beside_skill) < 0,
        "no guesser gains": all(mean(g) - 3 * error(g) < 0 for g in guessers),
        "the skilled model gains": mean(skilled) - 3 * error(skilled) > 0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report", type=Path)
    args = ap.parse_args(argv)
    result = simulate(args.periods, args.seed)
    met = goals(result)
    for pair, models in result.items():
        for m, v in models.items():
            print(
                f"{pair:>20} {m:>9}: {v['mean_return_bps']:+8.1f} ± {v['standard_error_bps']:.1f} bps a period "
                f"(bonus {v['mean_bonus_bps']:+.1f}; without the charge {v['mean_return_without_charge_bps']:+.1f})"
            )
    before = goals(result, "_without_charge")
    for goal, ok in met.items():
        print(f"{'pass' if ok else 'FAIL'}: {goal} (without the charge: {'holds' if before[goal] else 'fails'})")
    if args.report:
        report = {"periods": args.periods, "seed": args.seed, "result": result}
        report |= {"goals": met, "goals_without_charge": before}
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
