"""Where the bundled program files live (written by `python -m onnx_models.build`)."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
MLP_TRAIN_PATH = MODELS_DIR / "mlp_train.onnx"
MLP_TRAIN_FLOAT_PATH = MODELS_DIR / "mlp_train_float32.onnx"

__all__ = ["MLP_TRAIN_FLOAT_PATH", "MLP_TRAIN_PATH", "MODELS_DIR"]
