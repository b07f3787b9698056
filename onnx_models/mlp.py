"""A one-hidden-layer MLP trained on digits, as a bisectml program (docs/SPEC.md, section 3).

It is one instance of the model-description builder (onnx_models.train, SPEC section 10): the
description `linear(H), relu, linear(10)`, MSE, SGD without momentum, pixels held with 4
fractional bits and not standardized; this module keeps the demo's defaults, its bounds and its
metadata (`mlp.*`). `build_training_program` emits the *integer* step graph; `build_float_training_graph` emits
its float32 twin (same network, loss, initial weights, batches and schedule; no rescaling),
which is the accuracy baseline and the onnxruntime speed baseline. `build_eval_program` counts
correct test predictions of trained fixed-point weights, as a 1-step integer program.

Network and loss (reals; the fixed-point version below computes the same thing)::

    x  = pixels / 16                        (B, 64)   batch rows: (t*B + arange(B)) mod n_train
    a1 = x @ W1 + b1 ; h = relu(a1)         (B, H)
    z  = h @ W2 + b2                        (B, 10)
    dz = clip(z - onehot(y), -E, E)         gradient of 1/2 ||z - onehot||^2 (clip never
                                            binds in practice; it bounds every value)
    gW2 = h^T dz ; gb2 = sum_rows dz
    dh  = (dz @ W2^T) * [a1 > 0]
    gW1 = x^T dh ; gb1 = sum_rows dh
    p  <- clip(p - lr/B * g_p, -C, C)       lr = 2^-lr_shift, B a power of two

Fixed point: weights, biases and activations carry F = frac_bits fractional bits, pixels 4
(they are the raw integers 0..16). Each product of two fixed-point numbers is brought back to
F fractional bits with Div by a power of two (truncation toward zero), and the SGD step
`lr/B * g` is a single Div by 2^(lr_shift + log2 B + extra bits of g), so no precision is lost
before the update.

Overflow bound (computed by `overflow_bound`, enforced by the builders): with C = 2^(F+3)
(|W|, |b| <= 8 after every step, by the Clip; the initial weights are far smaller),
E = 2^(F+2) (|dz| <= 4), pixels <= 16, H hidden units, batch B:
  |x @ W1|    <= 64*16*C        = 2^(F+13)
  |a1|, |h|   <= 64*C + C       = 65C < 2^(F+10)
  |h @ W2|    <= H * 65C * C    < H * 2^(2F+13)      (F=16, H=64: 4160 * 2^38 ~ 2^50.02)
  |h^T dz|    <= B * 65C * E    < B * 2^(2F+12)      (F=16, B=64: ~ 2^49.02)
  |dz @ W2^T| <= 10 * E * C     < 2^(2F+9)
  |dh|        <  2^(F+9) ;  |x^T dh| <= B*16*|dh| < B * 2^(F+13) ; |sum_rows| <= B * max
Each of these is max|a| * max|b| * K for a MatMul (K the contraction length), which bounds every
partial sum in any summation order, and is exactly the engine's fast-path test
(`max|a| * max|b| * K < 2^53`), so with the default hyper-parameters (max ~ 2^50.02) every
MatMul takes the exact float64-BLAS path whatever the training does, and nothing gets near int64
wrap-around. The builders refuse hyper-parameters whose bound reaches 2^53 (e.g. F=16 allows
H, B up to 256; F=17 allows 64; F=18 allows 16). In practice the values stay ~2^8 below these
bounds (the trained |W| stays below 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto

from . import train
from .digits import (
    N_CLASSES,
    N_FEATURES,
    PIXEL_FRAC_BITS,
    PIXEL_MAX,
    DigitsSplit,
    load_digits_split,
    pixels_as_float,
)

OPSET = 18
IR_VERSION = 10  # onnx 1.23 writes 12 by default; onnxruntime 1.20+ reads 10.
PRODUCER = "bisectml.onnx_models"

# Defaults of the demo program (onnx_models/mlp_train.onnx): 64-64-10, batch 64, lr 1/4,
# 1000 steps (~45 epochs of the 1437 training images). Fixed point and the float32 twin both
# reach 96.4% on the 360 test images (seeds 0..3: 95.8-97.2%, fixed and float identical on each).
DEFAULT_HIDDEN = 64
DEFAULT_BATCH = 64
DEFAULT_STEPS = 1000
DEFAULT_FRAC_BITS = 16
DEFAULT_LR_SHIFT = 2
DEFAULT_SEED = 0

WEIGHT_CLIP_LOG2 = 3  # |parameter| <= 8
ERR_CLIP_LOG2 = 2  # |z - onehot| clipped to 4
FLOAT64_EXACT_LOG2 = 53

STATE_NAMES = ("W1", "b1", "W2", "b2")
STEP_INPUT = "t"
DATA_NAMES = ("X", "Y")


@dataclass(frozen=True)
class MLPConfig:
    hidden: int = DEFAULT_HIDDEN
    batch: int = DEFAULT_BATCH
    steps: int = DEFAULT_STEPS
    frac_bits: int = DEFAULT_FRAC_BITS
    lr_shift: int = DEFAULT_LR_SHIFT
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.steps < 1:
            raise ValueError("hidden and steps must be positive")
        if self.batch < 1 or self.batch & (self.batch - 1):
            raise ValueError(f"batch must be a power of two (the SGD step is a shift), got {self.batch}")
        if not 0 <= self.lr_shift <= 30:
            raise ValueError(f"lr_shift must be in 0..30, got {self.lr_shift}")
        if not 4 <= self.frac_bits <= 24:
            raise ValueError(f"frac_bits must be in 4..24, got {self.frac_bits}")

    @property
    def log2_batch(self) -> int:
        return self.batch.bit_length() - 1

    @property
    def lr(self) -> float:
        return 2.0**-self.lr_shift


def overflow_bound(hidden: int, batch: int, frac_bits: int, rows: int | None = None) -> int:
    """Largest |value| (and |partial sum|) any tensor of the training step can hold, as an int.

    `rows` is the batch for training; the eval program uses the test-set size (it has no
    backward pass, so only the forward bounds apply, and those do not depend on rows).
    """
    f = frac_bits
    c = 1 << (f + WEIGHT_CLIP_LOG2)  # |W|, |b|
    e = 1 << (f + ERR_CLIP_LOG2)  # |dz|
    b = batch if rows is None else rows
    xw1 = N_FEATURES * PIXEL_MAX * c
    h = xw1 // (1 << PIXEL_FRAC_BITS) + c
    hw2 = hidden * h * c
    z = hw2 // (1 << f) + c
    bounds = [xw1, h, hw2, z + (1 << f)]
    if rows is None:
        dzw2 = N_CLASSES * e * c
        dh = dzw2 // (1 << f)
        bounds += [b * h * e, b * e, dzw2, dh, b * PIXEL_MAX * dh, b * dh, c + c]
    return max(bounds)


def _check_bound(hidden: int, batch: int, frac_bits: int, rows: int | None = None) -> None:
    m = overflow_bound(hidden, batch, frac_bits, rows)
    if m >= 1 << FLOAT64_EXACT_LOG2:
        raise ValueError(
            f"hidden={hidden}, batch={batch}, frac_bits={frac_bits}: intermediate values may reach "
            f"2^{m.bit_length()}, past the 2^53 exact-float64 bound; lower frac_bits, hidden or batch."
        )


# ---- initial weights -----------------------------------------------------------------------


def init_params(
    hidden: int = DEFAULT_HIDDEN, frac_bits: int = DEFAULT_FRAC_BITS, seed: int = DEFAULT_SEED
) -> dict[str, np.ndarray]:
    """Deterministic fixed-point initial weights (int64): He-uniform W1, Glorot-uniform W2, zero
    biases, drawn as the model-description builder draws them (onnx_models.train.init_weights)."""
    return train.init_weights(_spec(MLPConfig(hidden=hidden, frac_bits=frac_bits, seed=seed)), (N_FEATURES,))


def params_to_float(params: Mapping[str, np.ndarray], frac_bits: int) -> dict[str, np.ndarray]:
    """Fixed-point params -> float32 (exact: they are below 2^24 in magnitude)."""
    s = np.float32(2.0**-frac_bits)
    return {k: (np.asarray(v).astype(np.float32) * s).astype(np.float32) for k, v in params.items()}


# ---- graph construction --------------------------------------------------------------------


def _spec(c: MLPConfig) -> train.TrainSpec:
    """The model description this program is an instance of (onnx_models.train)."""
    return train.TrainSpec(
        layers=(train.Layer("linear", out=c.hidden), train.Layer("relu"), train.Layer("linear", out=N_CLASSES)),
        loss="mse", batch=c.batch, steps=c.steps, frac_bits=c.frac_bits, lr_shift=c.lr_shift, seed=c.seed,
        input_frac_bits=PIXEL_FRAC_BITS, normalize=False,
    )  # fmt: skip


def _build_train(cfg: MLPConfig, fixed: bool, split: DigitsSplit) -> onnx.ModelProto:
    """The step graph, as the model-description builder (onnx_models.train) emits it for a
    64-H-10 ReLU MLP with MSE on one-hot targets and pixels held with 4 fractional bits."""
    _check_bound(cfg.hidden, cfg.batch, cfg.frac_bits)
    spec = _spec(cfg)
    data = train.TrainData(split.x_train, split.y_train.astype(np.int64).reshape(-1, 1), PIXEL_FRAC_BITS, N_CLASSES)
    meta = {
        "mlp.kind": "train-fixed" if fixed else "train-float32",
        "mlp.hidden": str(cfg.hidden),
        "mlp.batch": str(cfg.batch),
        "mlp.frac_bits": str(cfg.frac_bits),
        "mlp.lr_shift": str(cfg.lr_shift),
        "mlp.seed": str(cfg.seed),
    }
    kind = "integer fixed-point" if fixed else "float32 twin of the integer"
    doc = (
        f"bisectml: {kind} SGD training step of a 64-{cfg.hidden}-10 ReLU MLP on scikit-learn digits "
        f"(MSE on one-hot, batch {cfg.batch}, lr 2^-{cfg.lr_shift}, {cfg.steps} steps, "
        f"{cfg.frac_bits} fractional bits). Built by onnx_models.mlp."
    )
    name = "mlp_train" if fixed else "mlp_train_float32"
    return train.build_train_graph(spec, data, fixed, graph_name=name, metadata=meta, doc=doc)


def build_training_program(
    hidden: int = DEFAULT_HIDDEN,
    batch: int = DEFAULT_BATCH,
    steps: int = DEFAULT_STEPS,
    frac_bits: int = DEFAULT_FRAC_BITS,
    lr_shift: int = DEFAULT_LR_SHIFT,
    seed: int = DEFAULT_SEED,
    split: DigitsSplit | None = None,
) -> onnx.ModelProto:
    """The integer training program: step graph over int64 fixed point, applied `steps` times.

    State: W1 (64,H), b1 (H,), W2 (H,10), b2 (10,), all int64 with `frac_bits` fractional bits.
    Data: X (n_train, 64) int8 pixels 0..16, Y (n_train, 1) int64 labels. Step input: t.
    """
    cfg = MLPConfig(hidden, batch, steps, frac_bits, lr_shift, seed)
    return _build_train(cfg, True, split or load_digits_split())


def build_float_training_graph(
    hidden: int = DEFAULT_HIDDEN,
    batch: int = DEFAULT_BATCH,
    steps: int = DEFAULT_STEPS,
    frac_bits: int = DEFAULT_FRAC_BITS,
    lr_shift: int = DEFAULT_LR_SHIFT,
    seed: int = DEFAULT_SEED,
    split: DigitsSplit | None = None,
) -> onnx.ModelProto:
    """The float32 twin of `build_training_program` with the same arguments: same initial
    weights (the fixed-point ones divided by 2^frac_bits, exactly), batches, loss, lr and
    clipping, with no rescaling. Same metadata convention (it is not in the integer profile, so
    run it with `onnx_models.runtime.run_program_onnxruntime`)."""
    cfg = MLPConfig(hidden, batch, steps, frac_bits, lr_shift, seed)
    return _build_train(cfg, False, split or load_digits_split())


def build_eval_program(
    params: Mapping[str, np.ndarray],
    frac_bits: int = DEFAULT_FRAC_BITS,
    split: DigitsSplit | None = None,
) -> onnx.ModelProto:
    """A 1-step integer program whose final state `correct` (int64 scalar) is the number of test
    images whose predicted class (ArgMax of the fixed-point logits, ties -> first) equals the
    label. The trained weights and the test set are its data inputs."""
    split = split or load_digits_split()
    w = {k: np.asarray(params[k], dtype=np.int64) for k in STATE_NAMES}
    hidden = int(w["W1"].shape[1])
    if w["W1"].shape != (N_FEATURES, hidden) or w["b1"].shape != (hidden,):
        raise ValueError("W1 must be (64, H) and b1 (H,)")
    if w["W2"].shape != (hidden, N_CLASSES) or w["b2"].shape != (N_CLASSES,):
        raise ValueError("W2 must be (H, 10) and b2 (10,)")
    c = 1 << (frac_bits + WEIGHT_CLIP_LOG2)
    if any(np.abs(v).max(initial=0) > c for v in w.values()):
        raise ValueError(f"parameters must satisfy |p| <= 2^{frac_bits + WEIGHT_CLIP_LOG2} (the training clip)")
    _check_bound(hidden, 1, frac_bits, rows=split.n_test)

    x_test = split.x_test
    y_test = split.y_test.astype(np.int64).reshape(-1, 1)
    correct0 = np.array(0, np.int64)
    b = train.GraphBuilder()
    b.init("correct", correct0)
    for k in STATE_NAMES:
        b.init(k, w[k])
    b.init("X", x_test)
    b.init("Y", y_test)
    b.init("c_pix_scale", np.array(1 << PIXEL_FRAC_BITS, np.int64))
    b.init("c_one", np.array(1 << frac_bits, np.int64))
    b.init("c_axes01", np.array([0, 1], np.int64))
    x = b.node("Cast", ["X"], "x", to=TensorProto.INT64)
    z = train.forward(b, _spec(MLPConfig(hidden=hidden, frac_bits=frac_bits)), x, True, PIXEL_FRAC_BITS, (N_FEATURES,), split.n_test).z
    pred = b.node("ArgMax", [z], "pred", axis=1, keepdims=1)
    ok = b.node("Equal", [pred, "Y"], "is_correct")
    ok = b.node("Cast", [ok], "is_correct_int", to=TensorProto.INT64)
    n = b.node("ReduceSum", [ok, "c_axes01"], "n_correct", keepdims=0)
    out = b.node("Add", ["correct", n], "correct_next")
    meta = {
        "bisectml.steps": "1",
        "bisectml.state": "correct",
        "bisectml.data": ",".join(STATE_NAMES + DATA_NAMES),
        "mlp.kind": "eval-fixed",
        "mlp.hidden": str(hidden),
        "mlp.frac_bits": str(frac_bits),
        "mlp.n_test": str(split.n_test),
    }
    inputs = [("correct", correct0)] + [(k, w[k]) for k in STATE_NAMES] + [("X", x_test), ("Y", y_test)]
    doc = (
        f"bisectml: number of correct predictions of a fixed-point 64-{hidden}-10 ReLU MLP on the "
        f"{split.n_test} digits test images. Built by onnx_models.mlp."
    )
    return train.make_model(b, "mlp_eval", inputs, [(out, correct0)], meta, doc)


def float_correct(params: Mapping[str, np.ndarray], split: DigitsSplit | None = None) -> int:
    """Correct test predictions of float32 params (numpy float32 forward, ties -> first)."""
    split = split or load_digits_split()
    x = pixels_as_float(split.x_test)
    p = {k: np.asarray(params[k], np.float32) for k in STATE_NAMES}
    h = np.maximum(x @ p["W1"] + p["b1"], np.float32(0))
    z = h @ p["W2"] + p["b2"]
    return int((z.argmax(axis=1) == split.y_test).sum())


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_FRAC_BITS",
    "DEFAULT_HIDDEN",
    "DEFAULT_LR_SHIFT",
    "DEFAULT_SEED",
    "DEFAULT_STEPS",
    "MLPConfig",
    "build_eval_program",
    "build_float_training_graph",
    "build_training_program",
    "float_correct",
    "init_params",
    "overflow_bound",
    "params_to_float",
]
