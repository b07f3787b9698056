"""Bundled bisectml programs: an integer MLP trained on scikit-learn's digits, its float32 twin,
and the eval program. `python -m onnx_models.build` regenerates the bundled .onnx files."""

from __future__ import annotations

from .digits import DigitsSplit, load_digits_split
from .files import MLP_TRAIN_FLOAT_PATH, MLP_TRAIN_PATH, MODELS_DIR
from .mlp import (
    DEFAULT_BATCH,
    DEFAULT_FRAC_BITS,
    DEFAULT_HIDDEN,
    DEFAULT_LR_SHIFT,
    DEFAULT_SEED,
    DEFAULT_STEPS,
    build_eval_program,
    build_float_training_graph,
    build_training_program,
    float_correct,
    init_params,
    overflow_bound,
)
from .runtime import run_program_onnxruntime

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_FRAC_BITS",
    "DEFAULT_HIDDEN",
    "DEFAULT_LR_SHIFT",
    "DEFAULT_SEED",
    "DEFAULT_STEPS",
    "MLP_TRAIN_FLOAT_PATH",
    "MLP_TRAIN_PATH",
    "MODELS_DIR",
    "DigitsSplit",
    "build_eval_program",
    "build_float_training_graph",
    "build_training_program",
    "float_correct",
    "init_params",
    "load_digits_split",
    "overflow_bound",
    "run_program_onnxruntime",
]
