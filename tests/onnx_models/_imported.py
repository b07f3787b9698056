"""Float models as real exporters write them, built in the tests from scikit-learn's bundled data."""

from __future__ import annotations

from functools import cache

import numpy as np
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

DATASETS = {"breast_cancer": load_breast_cancer, "digits": load_digits}


@cache
def split(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = DATASETS[dataset](return_X_y=True)
    return tuple(
        train_test_split(x.astype(np.float32), y, test_size=0.3, random_state=0)
    )  # type: ignore[return-value]


@cache
def exported(dataset: str, kind: str) -> bytes:
    """skl2onnx's export (with its ZipMap tail) of a scikit-learn pipeline fitted on the split."""
    x_train, _, y_train, _ = split(dataset)
    est = (
        MLPClassifier((16,), max_iter=500, random_state=0)
        if kind == "mlp"
        else LogisticRegression(max_iter=2000)
    )
    model = make_pipeline(StandardScaler(), est).fit(x_train, y_train)
    return to_onnx(model, x_train[:1]).SerializeToString()
