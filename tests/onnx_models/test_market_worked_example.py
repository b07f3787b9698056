"""docs/SPEC.md 8.7, number for number: the three programs through the engine, then the payouts."""

from __future__ import annotations

import numpy as np

from onnx_models.market import Shape, program, weight_of
from verifier.engine.program import load_program

TOKEN = 10**18
SHAPE = Shape(models=2, datasets=1, rows=4, features=1, dataset_rows=2, k=1)
STAKES = [300 * TOKEN, 100 * TOKEN]
P_A = np.array([80, -60, 40, -20], np.int8)
P_B = np.array([-100, 100, 100, 0], np.int8)
Y = np.array([1, -1, 1, 0], np.int8)
X = np.array([[1], [9], [2], [5]], np.int8)
DATASET = (np.array([[0], [10]], np.int8), np.array([1, -1], np.int8))


def run(kind: int, **data) -> np.ndarray:
    out = load_program(program(kind, SHAPE, **data)).run()
    (result,) = out.values()
    return result


def test_weights():
    assert [weight_of(s) for s in STAKES] == [300_000, 100_000]


def test_metamodel():
    w = np.array([weight_of(s) for s in STAKES], np.int64)
    assert run(0, weights=w, predictions=[P_A, P_B]).tolist() == [35, -20, 55, -15]


def test_scores():
    w = np.array([weight_of(s) for s in STAKES], np.int64)
    # own scores, then leave-one-out scores
    assert run(1, weights=w, labels=Y, predictions=[P_A, P_B]).tolist() == [6_000, -3_333, 9_333, -9_333]


def test_data_value():
    v = run(2, mask=np.array([1], np.int64), labels=Y, features=X, datasets=[DATASET])
    assert v.tolist() == [3_000_000]


def test_payouts():
    from verifier.market.economics import (
        DatasetEntry,
        Economics,
        ModelEntry,
        max_model_stake,
        payouts,
    )

    econ = Economics(factor_bps=10_000, cap_bps=2_500, data_share_bps=2_000, data_slash_bps=1_000, bonus_bps=500)
    pool = 240 * TOKEN
    assert max_model_stake(pool, SHAPE.models, econ) == pool * 10_000 // 6_001 >= STAKES[0]
    models = [ModelEntry(STAKES[0], STAKES[0], 6_000, True, (0,), contribution=9_333),
              ModelEntry(STAKES[1], STAKES[1], -3_333, True, (0,), contribution=-9_333)]  # fmt: skip
    datasets = [DatasetEntry(50 * TOKEN, 50 * TOKEN, 3_000_000, True)]
    s = payouts(models, datasets, econ, pool=pool)
    assert s.returns_bps == [2_500 + 500, -2_500]
    assert s.model_payouts == [72 * TOKEN, -25 * TOKEN]
    assert s.dataset_payouts == [18 * TOKEN]
    # gains come out of the pool: the sponsor gets back 240 - 90, and the slashed 25 is burned
    assert s.burned == 25 * TOKEN
    assert s.refund == 150 * TOKEN
