"""bench/bench_commit.py's layout bound: the keccak-f permutations it counts for a commitment are
the ones `commit` actually performs (leaves of whole padded chunks, inner nodes with an odd one
paired with padding, the tensor root), so the goal is judged only where the layout allows it."""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("bench_commit", ROOT / "bench" / "bench_commit.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("size", "raw", "commit"),
    [
        (512, 4, 16 + 1),  # one padded leaf and the tensor root
        (1 << 10, 8, 16 + 1),
        (2 << 10, 16, 16 + 1),
        (5 << 10, 38, 3 * 16 + 3 + 1),  # three leaves: two inner nodes below the root node
        (16 << 10, 121, 8 * 16 + 7 + 1),
    ],
)
def test_layout_bound__counts_every_permutation(bench, size: int, raw: int, commit: int) -> None:  # noqa: ANN001
    assert Fraction(bench.layout_bound(size)).limit_denominator(10_000) == Fraction(raw, commit)


def test_layout_bound__goal_unreachable_below_about_one_kib(bench) -> None:  # noqa: ANN001
    assert bench.layout_bound(512) < bench.GOAL
    assert bench.layout_bound(1 << 10) < bench.GOAL
    assert all(bench.layout_bound(s) >= bench.GOAL for s in bench.SIZES if s >= 2 << 10)
