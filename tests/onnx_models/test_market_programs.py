"""The market's programs (onnx_models.market, docs/SPEC.md 8.2): engine runs equal the independent
numpy references exactly, KNN-Shapley against brute-force Shapley values, the round's stored
program reference, and the economic properties on the digits demo round."""

from __future__ import annotations

import itertools
import re
from fractions import Fraction
from math import factorial

import numpy as np
import pytest

from onnx_models.market import (
    FAR,
    KINDS,
    METAMODEL,
    SCORES,
    VALUES,
    Shape,
    coefficients,
    data_commitments,
    data_names,
    metamodel_program,
    metamodel_ref,
    others_metamodel_ref,
    program,
    program_ref,
    scores_program,
    scores_ref,
    template_hash,
    values_program,
    values_ref,
    weight_of,
)
from onnx_models.market_data import MODEL_DATASETS, demo_round, noise_predictions
from verifier.commit import commitments as commit
from verifier.commit.merkle import keccak
from verifier.core.errors import ProgramError, ShapeError
from verifier.engine.program import MAX_PROVABLE_SLOTS, load_program, step_slot_table

MAX_W = 2**40 - 1
SMALL = Shape(models=3, datasets=3, rows=6, features=4, dataset_rows=3, k=2)


def run(model, fast: bool = True) -> np.ndarray:
    result = load_program(model).run(fast=fast)
    assert len(result) == 1
    return next(iter(result.values()))


def rand_predictions(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """int8 predictions, often outside -100..100 (the programs clip them)."""
    return rng.integers(-128, 128, (m, n)).astype(np.int8)


def rand_weights(rng: np.random.Generator, m: int) -> np.ndarray:
    w = rng.integers(0, MAX_W + 1, m, dtype=np.int64)
    w[rng.random(m) < 0.3] = 0
    return w


# ---- shapes and helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, word",
    [
        ((0, 1, 1, 1, 1, 1), "models"),
        ((17, 1, 1, 1, 1, 1), "models"),
        ((1, 0, 1, 1, 1, 1), "datasets"),
        ((1, 9, 1, 1, 1, 1), "datasets"),
        ((1, 1, 0, 1, 1, 1), "rows"),
        ((1, 1, 2049, 1, 1, 1), "rows"),
        ((1, 1, 1, 0, 1, 1), "features"),
        ((1, 1, 1, 257, 1, 1), "features"),
        ((1, 1, 1, 1, 0, 1), "dataset_rows"),
        ((1, 1, 1, 1, 1, 0), "k"),
        ((1, 1, 1, 1, 64, 65), "k"),
        ((1, 2, 1, 1, 513, 1), "D * R"),
        ((1, 2, 1, 1, 2, 5), "k is 5"),
    ],
)
def test_shape_limits(fields, word):
    with pytest.raises(ProgramError, match=re.escape(word)) as e:
        Shape(*fields).check()
    assert "\n" not in str(e.value)


def test_shape_at_limits_is_accepted():
    Shape(16, 8, 2048, 256, 128, 64).check()
    Shape(1, 1, 1, 1, 1, 1).check()
    Shape(1, 1, 1, 1, 1024, 64).check()


def test_weight_of():
    assert weight_of(0) == 0
    assert weight_of(10**15 - 1) == 0
    assert weight_of(10**15) == 1
    assert weight_of(5 * 10**18 + 7) == 5000
    assert weight_of(10**40) == MAX_W


def test_coefficients():
    assert list(coefficients(5, 2)) == [500000, 500000, 333333, 250000, 200000]
    assert list(coefficients(3, 3)) == [333333, 333333, 333333]
    assert list(coefficients(1, 1)) == [1000000]


def test_data_outside_its_dtype_is_refused():
    with pytest.raises(ProgramError, match="int8"):
        metamodel_program(SMALL, predictions=[np.full(SMALL.rows, 200)])
    with pytest.raises(ShapeError, match="shape"):
        scores_program(SMALL, labels=np.zeros(SMALL.rows + 1, np.int8))
    with pytest.raises(ShapeError, match="slots"):
        values_program(SMALL, datasets=[None] * (SMALL.datasets + 1))
    with pytest.raises(ProgramError, match="kind"):
        program(3, SMALL)


# ---- programs against the references --------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_metamodel_matches_reference(seed):
    rng = np.random.default_rng(seed)
    shape = Shape(models=int(rng.integers(1, 6)), datasets=1, rows=int(rng.integers(1, 40)), features=1, dataset_rows=1, k=1)
    w, P = rand_weights(rng, shape.models), rand_predictions(rng, shape.models, shape.rows)
    assert np.array_equal(run(metamodel_program(shape, w, P)), metamodel_ref(w, P))


@pytest.mark.parametrize("seed", range(4))
def test_scores_match_reference(seed):
    rng = np.random.default_rng(100 + seed)
    shape = Shape(models=int(rng.integers(1, 6)), datasets=1, rows=int(rng.integers(1, 40)), features=1, dataset_rows=1, k=1)
    w, P = rand_weights(rng, shape.models), rand_predictions(rng, shape.models, shape.rows)
    y = rng.integers(-128, 128, shape.rows).astype(np.int8)  # clipped to -1..1
    assert np.array_equal(run(scores_program(shape, w, y, P)), scores_ref(w, y, P))


def test_metamodel_and_scores_edge_cases():
    shape = Shape(models=4, datasets=1, rows=9, features=1, dataset_rows=1, k=1)
    rng = np.random.default_rng(5)
    P = rand_predictions(rng, 4, 9)
    y = rng.choice(np.array([-1, 1], np.int8), 9)
    # all weights 0: W = 0, every division is by 0
    zero = np.zeros(4, np.int64)
    assert not run(metamodel_program(shape, zero, P)).any()
    assert np.array_equal(run(scores_program(shape, zero, y, P)), scores_ref(zero, y, P))
    # one model alone: the metamodel is its clipped predictions, it is scored against m_-i = 0
    alone = np.array([0, 7, 0, 0], np.int64)
    m = run(metamodel_program(shape, alone, P))
    assert np.array_equal(m, np.clip(P[1].astype(np.int64), -100, 100))
    s = run(scores_program(shape, alone, y, P))
    assert np.array_equal(s, scores_ref(alone, y, P))
    assert s[1] == int(Fraction(100 * int((m * y).sum()), 9))  # int() truncates toward zero
    # max weights, extreme predictions: exact in int64
    big = np.full(4, MAX_W, np.int64)
    ext = np.array([[127] * 9, [-128] * 9, [100] * 9, [-100] * 9], np.int8)
    assert np.array_equal(run(metamodel_program(shape, big, ext)), metamodel_ref(big, ext))
    assert np.array_equal(run(scores_program(shape, big, y, ext)), scores_ref(big, y, ext))
    # labels all 0: nothing is scored
    assert not run(scores_program(shape, big, np.zeros(9, np.int8), P)).any()
    # absent predictions (None) are zeros
    assert np.array_equal(
        run(metamodel_program(shape, big, [P[0], None, P[2]])), metamodel_ref(big, [P[0], None, P[2], None])
    )


def test_truncation_is_toward_zero():
    shape = Shape(models=2, datasets=1, rows=2, features=1, dataset_rows=1, k=1)
    w = np.array([1, 2], np.int64)
    P = np.array([[-1, 1], [-1, 1]], np.int8)  # sums -3, 3 over W = 3: exact
    assert list(run(metamodel_program(shape, w, P))) == [-1, 1]
    P = np.array([[-2, 2], [0, 0]], np.int8)  # -2/3 -> 0, 2/3 -> 0 (floor would give -1)
    assert list(run(metamodel_program(shape, w, P))) == [0, 0]
    assert list(metamodel_ref(w, P)) == [0, 0]


def random_values_case(rng: np.random.Generator, shape: Shape, feature_max: int = 3):
    n, F, R, D = shape.rows, shape.features, shape.dataset_rows, shape.datasets
    mask = (rng.random(D) < 0.75).astype(np.int64)
    mask[rng.integers(D)] = 1
    labels = rng.integers(-3, 4, n).astype(np.int8)  # clipped; 0 rows value nobody
    X = rng.integers(-feature_max, feature_max + 1, (n, F)).astype(np.int8)
    datasets = []
    for d in range(D):
        if rng.random() < 0.2:
            datasets.append(None)
            continue
        xd = rng.integers(-feature_max, feature_max + 1, (R, F)).astype(np.int8)
        if R > 1:
            xd[-1] = xd[0]  # a duplicate row: a tie in every distance
        ld = rng.choice(np.array([-1, 1, 2], np.int8), R)  # 2 is clipped to 1
        datasets.append((xd, ld))
    return mask, labels, X, datasets


@pytest.mark.parametrize("seed", range(5))
def test_values_match_reference(seed):
    rng = np.random.default_rng(200 + seed)
    D, R = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    shape = Shape(models=1, datasets=D, rows=int(rng.integers(1, 6)), features=int(rng.integers(1, 4)), dataset_rows=R,
                  k=int(rng.integers(1, D * R + 1)))
    case = random_values_case(rng, shape)
    assert np.array_equal(run(values_program(shape, *case)), values_ref(shape, *case))


def test_values_extreme_features_and_absent_datasets():
    rng = np.random.default_rng(9)
    shape = Shape(models=1, datasets=4, rows=4, features=5, dataset_rows=3, k=3)
    mask, labels, X, _ = random_values_case(rng, shape, feature_max=127)
    X[0] = -128
    datasets = [(np.full((3, 5), 127, np.int8), np.array([1, -1, 1], np.int8)), None,
                (rng.integers(-128, 128, (3, 5)).astype(np.int8), np.array([1, 1, -1], np.int8)), None]
    mask = np.array([1, 0, 1, 0], np.int64)  # a gap, and a trailing absent slot
    v = run(values_program(shape, mask, labels, X, datasets))
    assert np.array_equal(v, values_ref(shape, mask, labels, X, datasets))
    assert v[1] == 0 and v[3] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_fast_and_reference_kernels_agree(kind):
    rng = np.random.default_rng(31 + kind)
    w, P = rand_weights(rng, SMALL.models), rand_predictions(rng, SMALL.models, SMALL.rows)
    y = rng.integers(-2, 3, SMALL.rows).astype(np.int8)
    data = {
        METAMODEL: dict(weights=w, predictions=P),
        SCORES: dict(weights=w, labels=y, predictions=P),
        VALUES: dict(zip(("mask", "labels", "features", "datasets"), random_values_case(rng, SMALL))),
    }[kind]
    model = program(kind, SMALL, **data)
    fast, slow = run(model, fast=True), run(model, fast=False)
    assert np.array_equal(fast, slow)
    ref = {METAMODEL: lambda: metamodel_ref(w, P), SCORES: lambda: scores_ref(w, y, P),
           VALUES: lambda: values_ref(SMALL, **data)}[kind]()
    assert np.array_equal(fast, ref)


# ---- KNN-Shapley against brute force ------------------------------------------------------


def brute_force_shapley(dist: list[int], match: list[int], k: int) -> list[Fraction]:
    """Exact Shapley values of U(S) = (1/K) sum over the min(K, |S|) nearest of S of u (+1 agrees,
    -1 disagrees),
    nearest by (distance, index), by enumerating subsets."""
    n = len(dist)

    def utility(s: tuple[int, ...]) -> Fraction:
        nearest = sorted(s, key=lambda j: (dist[j], j))[:k]
        return Fraction(sum(match[j] for j in nearest), k)

    out = []
    for j in range(n):
        others = [i for i in range(n) if i != j]
        total = Fraction(0)
        for size in range(n):
            weight = Fraction(factorial(size) * factorial(n - size - 1), factorial(n))
            for s in itertools.combinations(others, size):
                total += weight * (utility(tuple(sorted(s + (j,)))) - utility(s))
        out.append(total)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_values_are_floor_rounded_shapley_values(seed):
    """One dataset slot per point (R = 1): the program's v[j] is 10^6 times point j's Shapley
    value summed over test rows, each coefficient rounded down once (error < 2N per row)."""
    rng = np.random.default_rng(300 + seed)
    N = int(rng.integers(1, 8))
    K = int(rng.integers(1, min(3, N) + 1))
    n = 2
    shape = Shape(models=1, datasets=N, rows=n, features=2, dataset_rows=1, k=K)
    mask = np.ones(N, np.int64)
    mask[rng.random(N) < 0.2] = 0
    X = rng.integers(0, 3, (n, 2)).astype(np.int8)  # few distinct distances: many ties
    labels = rng.choice(np.array([-1, 1], np.int8), n)
    pts = rng.integers(0, 3, (N, 2)).astype(np.int8)
    lab = rng.choice(np.array([-1, 1], np.int8), N)
    datasets = [(pts[j : j + 1], lab[j : j + 1]) for j in range(N)]
    v = run(values_program(shape, mask, labels, X, datasets))
    assert np.array_equal(v, values_ref(shape, mask, labels, X, datasets))
    exact = [Fraction(0)] * N
    for t in range(n):
        dist = [int(((pts[j].astype(int) - X[t].astype(int)) ** 2).sum()) if mask[j] else FAR for j in range(N)]
        match = [int(lab[j]) * int(labels[t]) if mask[j] else 0 for j in range(N)]
        for j, phi in enumerate(brute_force_shapley(dist, match, K)):
            exact[j] += phi
    for j in range(N):
        err = Fraction(10**6) * exact[j] - int(v[j])
        assert abs(err) < 2 * N * n, (j, float(err))  # |u_k - next_k| <= 2 per rounded coefficient
        if not mask[j]:
            assert v[j] == 0 and exact[j] == 0


def test_absent_dataset_slots_change_nothing():
    rng = np.random.default_rng(77)
    shape = Shape(models=1, datasets=2, rows=5, features=3, dataset_rows=4, k=3)
    mask, labels, X, _ = random_values_case(rng, shape)
    datasets = [(rng.integers(-3, 4, (4, 3)).astype(np.int8), rng.choice(np.array([-1, 1], np.int8), 4)) for _ in range(2)]
    base = run(values_program(shape, np.ones(2, np.int64), labels, X, datasets))
    wider = Shape(models=1, datasets=4, rows=5, features=3, dataset_rows=4, k=3)
    junk = (rng.integers(-3, 4, (4, 3)).astype(np.int8), np.ones(4, np.int8))  # masked out: ignored
    for extra_mask, extra in (([0, 0], [None, None]), ([0, 0], [junk, junk])):
        for order in ((0, 1, 2, 3), (2, 0, 3, 1)):
            slots = (list(datasets) + extra)
            m = np.array([1, 1] + extra_mask, np.int64)
            ds = [slots[i] for i in order]
            v = run(values_program(wider, m[list(order)], labels, X, ds))
            got = {order[i]: int(v[i]) for i in range(4)}
            assert got[0] == base[0] and got[1] == base[1]
            assert got[2] == 0 and got[3] == 0


def test_unscored_rows_value_nobody():
    rng = np.random.default_rng(4)
    mask, _, X, datasets = random_values_case(rng, SMALL)
    assert not run(values_program(SMALL, mask, np.zeros(SMALL.rows, np.int8), X, datasets)).any()


# ---- the round's stored program reference -------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_program_ref_template_and_data_slots(kind):
    ref = program_ref(kind, SMALL)
    assert ref is program_ref(kind, SMALL)  # cached
    names = data_names(kind, SMALL)
    absent = load_program(program(kind, SMALL))
    assert absent.data_slots == list(range(ref.data_base, ref.data_base + len(names)))
    assert [absent.graph.slots[s].name for s in absent.data_slots] == names
    assert ref.out_slot == absent.state_slots[0]
    assert ref.steps == (SMALL.rows if kind == VALUES else 1)
    assert len(ref.slots) == ref.n_slots == absent.n_slots
    assert ref.template == keccak(bytes.fromhex("20".rjust(64, "0")) + len(ref.slots).to_bytes(32, "big") + b"".join(ref.slots))
    assert ref.template == template_hash(ref.slots)

    rng = np.random.default_rng(kind)
    w, P = rand_weights(rng, SMALL.models), rand_predictions(rng, SMALL.models, SMALL.rows)
    y = rng.integers(-1, 2, SMALL.rows).astype(np.int8)
    data = {
        METAMODEL: dict(weights=w, predictions=P),
        SCORES: dict(weights=w, labels=y, predictions=P),
        VALUES: dict(zip(("mask", "labels", "features", "datasets"), random_values_case(rng, SMALL))),
    }[kind]
    real = load_program(program(kind, SMALL, **data))
    filled = ref.with_data(data_commitments(kind, SMALL, **data))
    table = step_slot_table(real, 0, real.initial_state())
    assert filled == table.commitments
    assert commit.state_root(0, 0, commit.SlotTable(ref.n_slots, filled).root) == real.initial_state_root
    assert ref.n_data == len(names)
    assert commit.dataset_root(filled[ref.data_base : ref.data_base + ref.n_data]) == real.data_root
    assert (real.graph_root, real.n_nodes, real.n_slots, real.steps) == (ref.graph_root, ref.n_nodes, ref.n_slots, ref.steps)
    # the template's data slots are the absent data's commitments, and real data changes them
    assert list(ref.slots[ref.data_base : ref.data_base + ref.n_data]) == data_commitments(kind, SMALL)
    assert filled != list(ref.slots)


@pytest.mark.parametrize("kind", KINDS)
def test_programs_load_at_the_largest_shape(kind):
    shape = Shape(models=16, datasets=8, rows=2048, features=256, dataset_rows=128, k=64)
    p = load_program(program(kind, shape))  # the loader refuses any node it cannot prove
    assert p.n_slots <= MAX_PROVABLE_SLOTS
    assert len(p.data_slots) == len(data_names(kind, shape))


# ---- economics on the demo round ----------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    return demo_round()


def test_demo_round_is_deterministic_and_well_formed(demo):
    again = demo_round()
    assert np.array_equal(demo.features, again.features) and np.array_equal(demo.labels, again.labels)
    assert all(np.array_equal(a, b) for a, b in zip(demo.predictions, again.predictions))
    n, F, R = demo.shape.rows, demo.shape.features, demo.shape.dataset_rows
    assert demo.features.shape == (n, F) and demo.features.dtype == np.int8
    assert demo.features.min() >= 0 and demo.features.max() <= 16
    assert set(np.unique(demo.labels)) == {-1, 1}
    assert abs(int(demo.labels.sum())) <= n // 4  # roughly balanced
    ids = demo.row_ids
    assert not set(ids["round"]) & set(ids["clean"]) and not set(ids["round"]) & set(ids["noise"])
    assert not set(ids["clean"]) & set(ids["noise"])
    for xd, ld in demo.datasets:
        assert xd.shape == (R, F) and ld.shape == (R,) and set(np.unique(ld)) <= {-1, 1}
    for p in demo.predictions:
        assert p.dtype == np.int8 and p.shape == (n,) and np.abs(p).max() <= 100
    assert len(demo.model_datasets) == len(demo.predictions) and demo.model_datasets == MODEL_DATASETS
    noise = noise_predictions(n, 3)
    assert noise.dtype == np.int8 and np.abs(noise).max() <= 100 and np.array_equal(noise, noise_predictions(n, 3))


def test_demo_scores_and_values(demo):
    shape = demo.shape
    w = demo.weights()
    w[3] = weight_of(50 * 10**18)
    good, decent, worse = demo.predictions
    # slot 3 submits exactly the others' metamodel: it scores 0
    copy = others_metamodel_ref(w, [good, decent, worse, None], 3).astype(np.int8)
    preds = [good, decent, worse, copy]
    m = run(program(METAMODEL, shape, weights=w, predictions=preds))
    assert np.array_equal(m, metamodel_ref(w, preds))
    s = run(program(SCORES, shape, weights=w, labels=demo.labels, predictions=preds))
    assert np.array_equal(s, scores_ref(w, demo.labels, preds))
    own, loo = s[:4], s[4:]
    assert loo[3] == 0 and own[3] > 0  # a copy adds nothing, though its own predictions are good
    assert loo[0] > 0 and loo[0] > loo[2] and loo[1] > loo[2]
    assert own[0] > own[2] and own[1] > own[2]
    # slot 3 submits noise: it scores below 0 on both counts
    noisy = [good, decent, worse, noise_predictions(shape.rows, 1)]
    s = run(program(SCORES, shape, weights=w, labels=demo.labels, predictions=noisy))
    assert np.array_equal(s, scores_ref(w, demo.labels, noisy))
    assert s[7] < 0


def _settle(scores, values, model_datasets):  # noqa: ANN001, ANN202
    from verifier.market.economics import DatasetEntry, Economics, ModelEntry, payouts

    stake = 100 * 10**18
    econ = Economics(factor_bps=10_000, cap_bps=2_500, data_share_bps=2_000, data_slash_bps=1_000, bonus_bps=500)
    m = len(scores) // 2
    models = [ModelEntry(stake, stake, int(scores[i]), True, tuple(ds), contribution=int(scores[m + i]))
              for i, ds in enumerate(model_datasets)]  # fmt: skip
    datasets = [DatasetEntry(stake, stake, int(v), True) for v in values]
    return payouts(models, datasets, econ, pool=1_000 * 10**18)


def test_copying_the_metamodel_earns_no_bonus_nor_does_noise(demo):
    """Through the programs and the payout rule: a copy of the others' metamodel earns what its
    own predictions earn and no contribution bonus; a noise model gets no bonus and an own
    score near 0; the noise dataset is slashed while the clean one is paid."""
    shape = demo.shape
    w = demo.weights()
    w[3] = weight_of(50 * 10**18)
    good, decent, worse = demo.predictions
    values = run(program(VALUES, shape, **demo.data(VALUES)))[:2]
    for seed in range(4):
        copy = others_metamodel_ref(w, [good, decent, worse, None], 3).astype(np.int8)
        for fourth, expect in ((copy, "copy"), (noise_predictions(shape.rows, seed), "slashed")):
            preds = [good, decent, worse, fourth]
            s = run(program(SCORES, shape, weights=w, labels=demo.labels, predictions=preds))
            paid = _settle(s, values, [(0,), (0,), (1,), (0,)])
            if expect == "copy":
                assert s[7] == 0 and paid.returns_bps[3] == min(s[3], 2_500) > 0
            else:  # noise: no bonus, and an own score near 0, far below the skilled models'
                assert s[7] < 0 and paid.returns_bps[3] == min(s[3], 2_500) and abs(s[3]) < s[0] // 4
            assert paid.dataset_payouts[0] > 0 > paid.dataset_payouts[1]


def test_demo_data_values(demo):
    shape = demo.shape
    data = demo.data(VALUES)
    v = run(program(VALUES, shape, **data))
    assert np.array_equal(v, values_ref(shape, **data))
    clean, noise = v[0], v[1]
    assert clean > noise
    assert not v[len(demo.datasets) :].any()  # empty slots


@pytest.mark.parametrize("kind", KINDS)
def test_demo_programs_agree_with_onnxruntime(demo, kind):
    """A cross-check by another runtime (no division by zero occurs in the demo round)."""
    from onnx_models.runtime import run_program_onnxruntime

    model = program(kind, demo.shape, **demo.data(kind))
    (ort,) = run_program_onnxruntime(model).values()
    assert np.array_equal(ort, run(model))
