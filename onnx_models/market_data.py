"""A small, deterministic market round on scikit-learn's bundled digits (nothing is downloaded).

Target: `+1` if the digit is 5..9, `-1` if it is 0..4 (about balanced). Rows come from the
version-stable `fixed_permutation` of onnx_models.digits (a splitmix64 hash, no library RNG),
so the round is the same on every machine and numpy version:

- round rows (`X`, `y`): the first n rows of the permutation;
- dataset 0, "clean": the next R rows with their true labels;
- dataset 1, "noise": the next R rows with labels from a fixed hash (random +-1);
  both datasets are disjoint from the round rows and from each other.

Three modelers, all trained with integer arithmetic only (exact, no BLAS summation order):

| slot | model | trained on (dataset indices) | what it is |
| --- | --- | --- | --- |
| 0 | `knn-clean` | (0,) | 5-nearest-neighbour vote on the clean dataset: the good model |
| 1 | `centroid-clean` | (0,) | nearest-centroid classifier on the clean dataset: a decent model |
| 2 | `knn-noise` | (1,) | 5-nearest-neighbour vote on the noise dataset: worse than the metamodel |

Model slot 3 is left empty (absent) for a test or a demo to fill, e.g. with
`noise_predictions`. `MODEL_DATASETS` says which datasets each model names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .digits import N_FEATURES, _load_raw, fixed_permutation, splitmix64
from .market import METAMODEL, PRED_MAX, SCORES, VALUES, Shape, weight_of

DEMO_SEED = 7
DEMO_SHAPE = Shape(models=4, datasets=4, rows=96, features=N_FEATURES, dataset_rows=64, k=5)
TOKEN = 10**18

MODEL_NAMES = ("knn-clean", "centroid-clean", "knn-noise")
MODEL_DATASETS = ((0,), (0,), (1,))  # model slot -> dataset slots it trained on (and names)
DATASET_NAMES = ("clean", "noise")
MODEL_STAKES = (100 * TOKEN, 60 * TOKEN, 40 * TOKEN)
NEIGHBOURS = 5  # the kNN models' k (not the valuation's K)
CENTROID_GAIN = 4


def binary_target(digits: np.ndarray) -> np.ndarray:
    """+1 for digits 5..9, -1 for 0..4, as int8."""
    return np.where(np.asarray(digits) >= 5, 1, -1).astype(np.int8)


def _hash_bits(n: int, seed: int, salt: int) -> list[int]:
    return [splitmix64(((seed & 0xFFFFFFFF) << 32) ^ (salt << 24) ^ i) for i in range(n)]


def noise_labels(n: int, seed: int) -> np.ndarray:
    """n labels +-1 from a fixed hash of (seed, index), int8."""
    return np.array([1 if h & 1 else -1 for h in _hash_bits(n, seed, 1)], dtype=np.int8)


def noise_predictions(n: int, seed: int) -> np.ndarray:
    """n predictions uniform-ish in -100..100 from a fixed hash of (seed, index), int8."""
    return np.array([h % (2 * PRED_MAX + 1) - PRED_MAX for h in _hash_bits(n, seed, 2)], dtype=np.int8)


def knn_predictions(x_train: np.ndarray, l_train: np.ndarray, x: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """100 * (mean label of the k nearest training rows), truncated; ties: lower index nearer."""
    xt = np.asarray(x_train, dtype=np.int64)
    lt = np.asarray(l_train, dtype=np.int64)
    out = []
    for row in np.asarray(x, dtype=np.int64):
        dist = ((xt - row) ** 2).sum(axis=1)
        nearest = sorted(range(len(dist)), key=lambda j: (int(dist[j]), j))[:k]
        vote = int(lt[nearest].sum()) * PRED_MAX
        out.append(vote // k if vote >= 0 else -((-vote) // k))
    return np.array(out, dtype=np.int8)


def centroid_predictions(
    x_train: np.ndarray, l_train: np.ndarray, x: np.ndarray, gain: int = CENTROID_GAIN
) -> np.ndarray:
    """Nearest-centroid margin m(x), as clip(trunc(100 * gain * m(x) / mean |m(training row)|)).

    With class sums S+ (n+ rows) and S- (n- rows), d = n- S+ - n+ S- and the margin of x is
    2 n+ n- x.d - (n- S+ + n+ S-).d, which is 2 (n+ n-)^2 times the distance difference
    |x - mu-|^2 - |x - mu+|^2; all in exact integers. With gain 4 most predictions are +-100
    (a confident classifier).
    """
    xt = np.asarray(x_train, dtype=np.int64)
    lt = np.asarray(l_train)
    pos, neg = xt[lt > 0], xt[lt <= 0]
    npos, nneg = max(len(pos), 1), max(len(neg), 1)
    sp, sn = pos.sum(axis=0), neg.sum(axis=0)
    d = sp * nneg - sn * npos
    offset = int(((sp * nneg + sn * npos) * d).sum())

    def margin(rows: np.ndarray) -> list[int]:
        return [2 * npos * nneg * int(r @ d) - offset for r in np.asarray(rows, dtype=np.int64)]

    train = margin(xt)
    scale = max(sum(abs(m) for m in train) // len(train), 1)
    out = []
    for m in margin(x):
        q = abs(m) * PRED_MAX * gain // scale
        out.append(max(-PRED_MAX, min(PRED_MAX, q if m >= 0 else -q)))
    return np.array(out, dtype=np.int8)


@dataclass(frozen=True, eq=False)
class DemoRound:
    """A round's data: shape, features/labels, datasets (slot order) and model predictions (slot order)."""

    shape: Shape
    features: np.ndarray  # X, int8 [n, F], pixels 0..16
    labels: np.ndarray  # y, int8 [n], +-1
    datasets: tuple[tuple[np.ndarray, np.ndarray], ...]  # (X_d int8 [R, F], L_d int8 [R]) per dataset
    predictions: tuple[np.ndarray, ...]  # int8 [n] per model
    stakes: tuple[int, ...]  # per model, token base units
    model_names: tuple[str, ...] = MODEL_NAMES
    model_datasets: tuple[tuple[int, ...], ...] = MODEL_DATASETS
    dataset_names: tuple[str, ...] = DATASET_NAMES
    row_ids: dict[str, np.ndarray] = field(default_factory=dict, compare=False)  # digits row indices

    def weights(self) -> np.ndarray:
        """w, int64 [M]: weight_of(stake) for each model, 0 for empty slots."""
        w = np.zeros(self.shape.models, dtype=np.int64)
        w[: len(self.stakes)] = [weight_of(s) for s in self.stakes]
        return w

    def mask(self) -> np.ndarray:
        """a, int64 [D]: 1 for the slots holding a dataset."""
        a = np.zeros(self.shape.datasets, dtype=np.int64)
        a[: len(self.datasets)] = 1
        return a

    def data(self, kind: int) -> dict[str, Any]:
        """Keyword arguments of onnx_models.market.program(kind, shape, ...) for this round."""
        if kind == METAMODEL:
            return {"weights": self.weights(), "predictions": list(self.predictions)}
        if kind == SCORES:
            return {"weights": self.weights(), "labels": self.labels, "predictions": list(self.predictions)}
        if kind == VALUES:
            return {"mask": self.mask(), "labels": self.labels, "features": self.features, "datasets": list(self.datasets)}
        raise ValueError(f"kind {kind} is not a market program; use 0, 1 or 2.")


def demo_round(seed: int = DEMO_SEED, shape: Shape = DEMO_SHAPE) -> DemoRound:
    """The demo round (see the module docstring); deterministic in (seed, shape)."""
    shape.check()
    if shape.features != N_FEATURES:
        raise ValueError(f"digits have {N_FEATURES} features; use a shape with features={N_FEATURES}.")
    if shape.models < len(MODEL_NAMES) or shape.datasets < len(DATASET_NAMES):
        raise ValueError(f"the demo needs >= {len(MODEL_NAMES)} model slots and >= {len(DATASET_NAMES)} dataset slots.")
    x, digit = _load_raw()
    n, R = shape.rows, shape.dataset_rows
    if n + 2 * R > len(x):
        raise ValueError(f"n + 2R = {n + 2 * R} rows exceed the {len(x)} digits; use a smaller shape.")
    perm = fixed_permutation(len(x), seed)
    rows, clean_rows, noise_rows = perm[:n], perm[n : n + R], perm[n + R : n + 2 * R]
    X = np.ascontiguousarray(x[rows])
    y = binary_target(digit[rows])
    clean = (np.ascontiguousarray(x[clean_rows]), binary_target(digit[clean_rows]))
    noise = (np.ascontiguousarray(x[noise_rows]), noise_labels(R, seed))
    predictions = (
        knn_predictions(*clean, X),
        centroid_predictions(*clean, X),
        knn_predictions(*noise, X),
    )
    return DemoRound(
        shape=shape,
        features=X,
        labels=y,
        datasets=(clean, noise),
        predictions=predictions,
        stakes=MODEL_STAKES,
        row_ids={"round": rows, "clean": clean_rows, "noise": noise_rows},
    )


__all__ = [
    "DATASET_NAMES",
    "DEMO_SEED",
    "DEMO_SHAPE",
    "MODEL_DATASETS",
    "MODEL_NAMES",
    "MODEL_STAKES",
    "DemoRound",
    "binary_target",
    "centroid_predictions",
    "demo_round",
    "knn_predictions",
    "noise_labels",
    "noise_predictions",
]
