"""scikit-learn's bundled digits dataset, a version-stable split, and fixed-point helpers.

The dataset (1797 8x8 images, pixels 0..16, labels 0..9) ships inside scikit-learn, so nothing
is downloaded. The train/test split and the training order come from a fixed integer hash of the
row index (splitmix64), not from any library RNG, so they cannot change with numpy or
scikit-learn versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

N_FEATURES = 64
N_CLASSES = 10
PIXEL_MAX = 16
# Pixels are integers 0..16; as fixed-point numbers in [0, 1] they have 4 fractional bits.
PIXEL_FRAC_BITS = 4
DEFAULT_TEST_SIZE = 360  # ~20% of 1797

_MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """The splitmix64 output function (Steele et al.), on Python ints: a fixed 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def fixed_permutation(n: int, seed: int = 0) -> np.ndarray:
    """A permutation of range(n) that depends only on (n, seed): indices sorted by hash."""
    keys = [(splitmix64((seed << 32) ^ i), i) for i in range(n)]
    keys.sort()
    return np.array([i for _, i in keys], dtype=np.int64)


@dataclass(frozen=True)
class DigitsSplit:
    """Digits as integers: `x_*` int8 pixels (n, 64) in 0..16, `y_*` int64 labels (n,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])


@lru_cache(maxsize=None)
def _load_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    data = np.asarray(d.data)
    x = data.astype(np.int8)
    if not np.array_equal(x.astype(data.dtype), data) or x.min() < 0 or x.max() > PIXEL_MAX:
        raise ValueError("digits pixels are expected to be integers 0..16")
    y = np.asarray(d.target).astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_digits_split(test_size: int = DEFAULT_TEST_SIZE, seed: int = 0) -> DigitsSplit:
    """Deterministic split: rows in `fixed_permutation` order; the first `test_size` are the
    test set, the rest (kept in that shuffled order, which is the training order) the train set.
    """
    x, y = _load_raw()
    n = x.shape[0]
    if not 0 < test_size < n:
        raise ValueError(f"test_size must be in 1..{n - 1}, got {test_size}")
    perm = fixed_permutation(n, seed)
    te, tr = perm[:test_size], perm[test_size:]
    return DigitsSplit(
        x_train=np.ascontiguousarray(x[tr]),
        y_train=np.ascontiguousarray(y[tr]),
        x_test=np.ascontiguousarray(x[te]),
        y_test=np.ascontiguousarray(y[te]),
    )


# ---- fixed point ---------------------------------------------------------------------------


def to_fixed(x: np.ndarray | float, frac_bits: int) -> np.ndarray:
    """Real -> int64 fixed point with `frac_bits` fractional bits, rounding half to even."""
    return np.rint(np.asarray(x, dtype=np.float64) * float(1 << frac_bits)).astype(np.int64)


def from_fixed(q: np.ndarray, frac_bits: int) -> np.ndarray:
    """int fixed point -> float64 (exact while |q| < 2^53)."""
    return np.asarray(q, dtype=np.float64) / float(1 << frac_bits)


def div_trunc(a: np.ndarray, d: int) -> np.ndarray:
    """Integer division truncating toward zero (the profile's Div), for a positive divisor."""
    a = np.asarray(a, dtype=np.int64)
    q = np.abs(a) // d
    return np.where(a < 0, -q, q)


def pixels_as_float(x: np.ndarray) -> np.ndarray:
    """int pixels 0..16 -> float32 in [0, 1] (exact: a pixel over 16)."""
    return (np.asarray(x, dtype=np.float32) / np.float32(PIXEL_MAX)).astype(np.float32)


__all__ = [
    "DEFAULT_TEST_SIZE",
    "N_CLASSES",
    "N_FEATURES",
    "PIXEL_FRAC_BITS",
    "PIXEL_MAX",
    "DigitsSplit",
    "div_trunc",
    "fixed_permutation",
    "from_fixed",
    "load_digits_split",
    "pixels_as_float",
    "splitmix64",
    "to_fixed",
]
