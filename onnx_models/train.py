"""Training programs from a model description (docs/SPEC.md 10): a network of Conv2d, MaxPool2d,
AvgPool2d, Flatten, Linear, ReLU and LeakyReLU layers, MSE or softmax cross-entropy, SGD with
momentum and weight decay, lowered to one fixed-point integer step graph (forward, backward,
update, batch selection).

A convolution is a Gather of its patches (im2col, out-of-image taps reading an appended zero)
and a MatMul; its input gradient is the transpose, a Gather of every patch entry that read an
input position followed by a ReduceSum. Pools Gather their windows and reduce them (ReduceMax
and ArgMax, first maximum, for max; ReduceSum and Div for mean). Spatial activations are held
flat per row, positions-major and channels-minor after a convolution or pool.

Every product of two fixed-point numbers is brought back to F fractional bits by a Div by a
power of two (truncation toward zero, the profile's Div); the SGD step lr/B * g is one Div by
2^(lr_shift + log2 B + extra fractional bits of g). `float_twin=True` emits the same network in
float32 (same initial weights, batches, loss, schedule, no rescaling): the accuracy baseline.
Worst-case bounds of every tensor are computed before anything is emitted and a configuration
that could reach 2^63 (wrap int64) is refused; below 2^53 the engine can prove its float64
kernels exact and compile the step, above it runs the exact integer kernels where it cannot.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import isqrt

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from verifier.core.errors import ProgramError

OPSET = 18
IR_VERSION = 10
PRODUCER = "bisectml.onnx_models"

WEIGHT_CLIP_LOG2 = 3  # |parameter| <= 8 (and |velocity| <= 8)
ERR_CLIP_LOG2 = 2  # MSE: |z - target| clipped to 4
INT64_LOG2 = 63  # a bound at or past 2^63 could wrap int64 and change the arithmetic
SLOPE_BITS = 16  # LeakyReLU slope, momentum and weight decay are integers over 2^16
EXP_BITS = 8  # softmax: exp looked up at steps of 2^-8 ...
EXP_RANGE = 16  # ... over [-16, 0] (exp(-16) * 2^F rounds to 0 for F <= 20)
INPUT_CLIP = 8.0  # standardized features (and regression targets) are clipped to +-8
DEFAULT_INPUT_FRAC_BITS = 8
META = "bisectml.train."

STEP_INPUT = "t"
LAYERS = ("linear", "relu", "leaky_relu", "flatten", "conv2d", "maxpool2d", "avgpool2d")
PARAM_LAYERS = ("linear", "conv2d")
SPATIAL = ("conv2d", "maxpool2d", "avgpool2d")
LATER = ("batchnorm", "batchnorm2d", "dropout")
ALIASES = {"conv": "conv2d", "maxpool": "maxpool2d", "avgpool": "avgpool2d", "dense": "linear"}
LOSSES = ("softmax_cross_entropy", "mse")


class TrainRefused(ProgramError):
    """A model description, dataset or configuration the builder refuses; one line, with what to change."""


@dataclass(frozen=True)
class Layer:
    kind: str
    out: int = 0  # linear: output width; conv2d: output channels
    alpha_q: int = 0  # leaky_relu: slope * 2^SLOPE_BITS
    kernel: int = 0  # conv2d, maxpool2d, avgpool2d: square kernel side
    stride: int = 1
    padding: int = 0  # conv2d: zeros on every side


@dataclass(frozen=True)
class TrainSpec:
    layers: tuple[Layer, ...]
    loss: str = "mse"
    task: str = "classification"
    batch: int = 64
    steps: int = 1000
    frac_bits: int = 16
    lr_shift: int = 2
    momentum_q: int = 0  # momentum * 2^SLOPE_BITS
    weight_decay_q: int = 0  # weight decay * 2^SLOPE_BITS
    seed: int = 0
    input_frac_bits: int = DEFAULT_INPUT_FRAC_BITS
    normalize: bool = True
    input_shape: tuple[int, ...] = ()  # flat rows are reshaped to this (e.g. (8, 8) for a convnet)

    @property
    def log2_batch(self) -> int:
        return self.batch.bit_length() - 1

    @property
    def linears(self) -> list[int]:
        """Indices of the layers with parameters (linear and conv2d), W1/b1 first."""
        return [i for i, la in enumerate(self.layers) if la.kind in PARAM_LAYERS]

    def to_json(self) -> dict[str, object]:
        layers: list[dict[str, object]] = []
        for la in self.layers:
            d: dict[str, object] = {"type": la.kind}
            if la.kind == "linear":
                d["out"] = la.out
            if la.kind == "conv2d":
                d["out_channels"] = la.out
            if la.kind in SPATIAL:
                d |= {"kernel": la.kernel, "stride": la.stride}
            if la.kind == "conv2d":
                d["padding"] = la.padding
            if la.kind == "leaky_relu":
                d["alpha"] = la.alpha_q / 2**SLOPE_BITS
            layers.append(d)
        return {
            "layers": layers,
            "loss": self.loss,
            "task": self.task,
            "optimizer": {
                "type": "sgd",
                "lr": 2.0**-self.lr_shift,
                "momentum": self.momentum_q / 2**SLOPE_BITS,
                "weight_decay": self.weight_decay_q / 2**SLOPE_BITS,
            },
            "schedule": {"steps": self.steps, "batch": self.batch},
            "frac_bits": self.frac_bits,
            "input_frac_bits": self.input_frac_bits,
            "normalize": self.normalize,
            "seed": self.seed,
        } | ({"input_shape": list(self.input_shape)} if self.input_shape else {})


def _q16(v: float, what: str, lo: float, hi: float) -> int:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
        raise TrainRefused(f"{what} must be a number in [{lo}, {hi}], got {v!r}.")
    q = int(math.floor(abs(v) * 2**SLOPE_BITS + 0.5))  # half away from zero
    if v != 0 and q == 0:
        raise TrainRefused(f"{what} {v} is below 2^-{SLOPE_BITS}, the finest step it is held at; use 0 or a larger value.")
    return q


def _int(d: Mapping[str, object], key: str, default: int, lo: int, hi: int, where: str = "") -> int:
    v = d.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise TrainRefused(f"{where}{key} must be an integer in {lo}..{hi}, got {v!r}.")
    return v


def parse_spec(d: object) -> TrainSpec:
    """The model description (a dict read from JSON) -> TrainSpec, refusing with one line."""
    if not isinstance(d, dict):
        raise TrainRefused("the model description must be a JSON object with 'layers'.")
    known = {"layers", "loss", "task", "optimizer", "schedule", "frac_bits", "input_frac_bits", "normalize", "seed",
             "input_shape"}
    extra = sorted(set(d) - known)
    if extra:
        raise TrainRefused(f"unknown key {extra[0]!r} in the model description; known: {', '.join(sorted(known))}.")
    raw = d.get("layers")
    if not isinstance(raw, list) or not raw:
        raise TrainRefused("'layers' must be a non-empty list such as [{\"type\": \"linear\", \"out\": 10}].")
    layers = []
    for i, la in enumerate(raw):
        kind = str(la.get("type", "")).lower() if isinstance(la, dict) else ""
        kind = ALIASES.get(kind, kind)
        if kind in LATER:
            raise TrainRefused(f"layer {i} ({kind}) is not supported yet; supported: {', '.join(LAYERS)}.")
        if kind not in LAYERS:
            raise TrainRefused(f"layer {i} has type {kind or la!r}; supported: {', '.join(LAYERS)}.")
        if kind == "linear":
            layers.append(Layer("linear", out=_int(la, "out", 0, 1, 4096, f"layer {i}: ")))
        elif kind == "conv2d":
            if "out" in la and "out_channels" not in la:
                la = {**la, "out_channels": la["out"]}
            k = _int(la, "kernel", 3, 1, 15, f"layer {i}: ")
            layers.append(Layer("conv2d", out=_int(la, "out_channels", 0, 1, 512, f"layer {i}: "), kernel=k,
                                stride=_int(la, "stride", 1, 1, 15, f"layer {i}: "),
                                padding=_int(la, "padding", 0, 0, k - 1, f"layer {i}: ")))
        elif kind in ("maxpool2d", "avgpool2d"):
            k = _int(la, "kernel", 2, 1, 15, f"layer {i}: ")
            layers.append(Layer(kind, kernel=k, stride=_int(la, "stride", k, 1, 15, f"layer {i}: ")))
        elif kind == "leaky_relu":
            alpha = la.get("alpha", 0.01)
            if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
                raise TrainRefused(f"layer {i}: leaky_relu alpha must be in (0, 1), got {alpha!r}.")
            layers.append(Layer("leaky_relu", alpha_q=_q16(alpha, f"layer {i}: alpha", 0, 1)))
        else:
            layers.append(Layer(kind))
    loss = d.get("loss", "softmax_cross_entropy")
    if loss not in LOSSES:
        raise TrainRefused(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}.")
    task = d.get("task", "classification")
    if task not in ("classification", "regression"):
        raise TrainRefused(f"task must be classification or regression, got {task!r}.")
    if loss == "softmax_cross_entropy" and task != "classification":
        raise TrainRefused("softmax_cross_entropy needs task classification; use loss mse for regression.")
    opt = d.get("optimizer", {})
    if not isinstance(opt, dict) or opt.get("type", "sgd") != "sgd":
        raise TrainRefused("optimizer must be {\"type\": \"sgd\", \"lr\": ..., \"momentum\": ..., \"weight_decay\": ...}.")
    lr = opt.get("lr", 0.25)
    if not isinstance(lr, (int, float)) or not 0 < lr <= 1:
        raise TrainRefused(f"optimizer lr must be in (0, 1], got {lr!r}.")
    lr_shift = round(-math.log2(lr))
    if 2.0**-lr_shift != lr or lr_shift > 30:
        raise TrainRefused(f"optimizer lr must be a power of two (the step is a shift), e.g. {2.0 ** -min(30, lr_shift)}; got {lr}.")
    sched = d.get("schedule", {})
    if not isinstance(sched, dict):
        raise TrainRefused("schedule must be {\"steps\": N, \"batch\": B} or {\"epochs\": E, \"batch\": B}.")
    batch = _int(sched, "batch", 32, 1, 4096, "schedule ")
    if batch & (batch - 1):
        raise TrainRefused(f"schedule batch must be a power of two (the mean over the batch is a shift), got {batch}.")
    spec = TrainSpec(
        layers=tuple(layers),
        loss=loss,
        task=task,
        batch=batch,
        steps=_int(sched, "steps", 1, 1, 10**9, "schedule ") if "steps" in sched else 0,
        frac_bits=_int(d, "frac_bits", 16, 8, 24),
        lr_shift=lr_shift,
        momentum_q=_q16(opt.get("momentum", 0), "optimizer momentum", 0, 0.999),
        weight_decay_q=_q16(opt.get("weight_decay", 0), "optimizer weight_decay", 0, 1),
        seed=_int(d, "seed", 0, 0, 2**63 - 1),
        input_frac_bits=_int(d, "input_frac_bits", DEFAULT_INPUT_FRAC_BITS, 0, 24),
        normalize=bool(d.get("normalize", True)),
        input_shape=_shape(d.get("input_shape")),
    )
    if "steps" in sched and "epochs" in sched:
        raise TrainRefused("schedule takes steps or epochs, not both.")
    if "epochs" in sched:
        _int(sched, "epochs", 1, 1, 10**6, "schedule ")
        spec = _with(spec, steps=-int(sched["epochs"]))  # resolved against the dataset size
    elif "steps" not in sched:
        raise TrainRefused("schedule needs steps (or epochs), e.g. {\"steps\": 500, \"batch\": 32}.")
    _check_layers(spec)
    return spec


def _shape(v: object) -> tuple[int, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not 1 <= len(v) <= 3 or any(not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 4096 for d in v):
        raise TrainRefused(f"input_shape must be a list of 1 to 3 sizes such as [8, 8] or [3, 32, 32], got {v!r}.")
    return tuple(v)


def _shaped(spec: TrainSpec, x: np.ndarray) -> np.ndarray:
    """Rows in the description's input_shape (flat rows of as many features are reshaped)."""
    if not spec.input_shape or x.shape[1:] == spec.input_shape:
        return x
    if int(np.prod(x.shape[1:])) != int(np.prod(spec.input_shape)):
        raise TrainRefused(f"rows hold {int(np.prod(x.shape[1:]))} features but input_shape {list(spec.input_shape)} needs "
                           f"{int(np.prod(spec.input_shape))}; fix input_shape or the rows.")
    return x.reshape(x.shape[0], *spec.input_shape)


def _with(spec: TrainSpec, **kw: object) -> TrainSpec:
    d = {f: getattr(spec, f) for f in spec.__dataclass_fields__}
    d.update(kw)
    return TrainSpec(**d)  # type: ignore[arg-type]


def _check_layers(spec: TrainSpec) -> None:
    layers = spec.layers
    if not any(la.kind == "linear" for la in layers):
        raise TrainRefused("the model needs at least one linear layer.")
    if layers[-1].kind != "linear":
        raise TrainRefused(f"the last layer must be linear (the loss reads its output), got {layers[-1].kind}.")
    prev = None
    flat = False  # a linear or flatten layer was seen: activations are flat from here on
    for i, la in enumerate(layers):
        if la.kind in SPATIAL and flat:
            raise TrainRefused(f"layer {i}: {la.kind} after a flatten or linear layer; put convolutions and pools first.")
        if la.kind == "flatten" and flat:
            raise TrainRefused(f"layer {i}: flatten only before the first linear layer (activations are already flat).")
        if la.kind in ("relu", "leaky_relu") and prev not in ("linear", "conv2d", "maxpool2d", "avgpool2d"):
            raise TrainRefused(f"layer {i}: {la.kind} must follow a linear, conv2d or pool layer.")
        flat = flat or la.kind in ("flatten", "linear")
        prev = la.kind


# ---- dataset ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainData:
    """The training rows as the program holds them: `x` integers with `x_frac_bits` fractional
    bits (int8 or int32, any row shape), `y` (n, 1) int64 class labels or (n, k) int64 targets
    with F fractional bits. `x_bound` is max |x|. Normalization stats go into the metadata."""

    x: np.ndarray
    y: np.ndarray
    x_frac_bits: int
    n_outputs: int
    x_mean: np.ndarray | None = None
    x_std: np.ndarray | None = None
    y_mean: np.ndarray | None = None
    y_std: np.ndarray | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def x_bound(self) -> int:
        return int(np.abs(self.x.astype(np.int64)).max(initial=0))

    @property
    def features(self) -> int:
        return int(np.prod(self.x.shape[1:]))


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_features(x: np.ndarray, spec: TrainSpec, mean: np.ndarray | None, std: np.ndarray | None) -> np.ndarray:
    """Float rows -> the program's integers: standardize (if the spec says so), clip to +-8, times
    2^input_frac_bits rounded half away from zero."""
    v = np.asarray(x, dtype=np.float64)
    if mean is not None and std is not None:
        v = np.clip((v - mean) / std, -INPUT_CLIP, INPUT_CLIP)
    q = _round_half_away(v * 2.0**spec.input_frac_bits)
    if np.abs(q).max(initial=0) > 2**31 - 1:
        raise TrainRefused(
            f"features reach {np.abs(v).max():.4g}, which at input_frac_bits {spec.input_frac_bits} does not fit int32; "
            "set normalize true or lower input_frac_bits."
        )
    return q.astype(np.int8 if np.abs(q).max(initial=0) <= 127 else np.int32)


def prepare_data(spec: TrainSpec, x: np.ndarray, y: np.ndarray | None) -> TrainData:
    """Check the user's rows and labels and quantize them; refuse with one line."""
    if y is None:
        raise TrainRefused("the dataset has no labels; give y in the .npz, a label/y/target column in the .csv, or --labels for .npy.")
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 2 or x.shape[0] < 1:
        raise TrainRefused(f"features must be rows (n, features...), got shape {list(x.shape)}.")
    if y.shape[0] != x.shape[0] or y.ndim > 2:
        raise TrainRefused(f"{x.shape[0]} feature rows but labels of shape {list(y.shape)}; give one label (row) per row.")
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise TrainRefused("features and labels must be numeric.")
    x = _shaped(spec, x)
    if not np.isfinite(x.astype(np.float64)).all() or not np.isfinite(y.astype(np.float64)).all():
        raise TrainRefused("the dataset holds NaN or infinite values; drop or impute those rows first.")
    if x.ndim > 2 and spec.layers[0].kind not in ("flatten", *SPATIAL):
        raise TrainRefused(f"rows have shape {list(x.shape[1:])}; start the layers with {{\"type\": \"flatten\"}} or a conv2d.")
    geometry(spec, x.shape[1:])  # refuses rows a convolution or pool cannot read
    out = spec.layers[-1].out
    xf = x.astype(np.float64)
    mean = std = None
    if spec.normalize:
        mean = xf.mean(axis=0)
        std = xf.std(axis=0)
        std = np.where(std > 0, std, 1.0)
    xq = quantize_features(xf, spec, mean, std)
    one = 1 << spec.frac_bits
    if spec.task == "classification":
        yi = y.reshape(-1)
        if y.ndim == 2 and y.shape[1] != 1 or not np.array_equal(yi, np.round(yi)):
            raise TrainRefused("classification labels must be one integer class per row (0..K-1).")
        yi = yi.astype(np.int64)
        if yi.min() < 0 or yi.max() >= out:
            raise TrainRefused(f"labels run {yi.min()}..{yi.max()} but the last linear layer has {out} outputs; set its out to the number of classes.")
        return TrainData(xq, yi.reshape(-1, 1), spec.input_frac_bits, out, mean, std)
    yf = y.astype(np.float64).reshape(y.shape[0], -1)
    if yf.shape[1] != out:
        raise TrainRefused(f"targets have {yf.shape[1]} columns but the last linear layer has {out} outputs.")
    ym = ys = None
    if spec.normalize:
        ym = yf.mean(axis=0)
        ys = yf.std(axis=0)
        ys = np.where(ys > 0, ys, 1.0)
        yf = np.clip((yf - ym) / ys, -INPUT_CLIP, INPUT_CLIP)
    yq = _round_half_away(yf * one)
    if np.abs(yq).max(initial=0) > (1 << (spec.frac_bits + WEIGHT_CLIP_LOG2)):
        raise TrainRefused("regression targets exceed 8 in magnitude; set normalize true or rescale them.")
    return TrainData(xq, yq.astype(np.int64), spec.input_frac_bits, out, mean, std, ym, ys)


# ---- geometry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geo:
    """The activation a layer receives, per row: flat (`c` features, h = w = 0) or spatial with
    its flat layout, "chw" (the input rows) or "hwc" (after a convolution or pool)."""

    c: int
    h: int = 0
    w: int = 0
    layout: str = "chw"

    @property
    def spatial(self) -> bool:
        return self.h > 0

    @property
    def size(self) -> int:
        return self.c * self.h * self.w if self.spatial else self.c

    def index(self, c: int, h: int, w: int) -> int:
        if self.layout == "chw":
            return (c * self.h + h) * self.w + w
        return (h * self.w + w) * self.c + c


def geometry(spec: TrainSpec, row_shape: Sequence[int]) -> list[Geo]:
    """The input of every layer, then the output of the last: refuses shapes that do not fit."""
    shape = tuple(int(v) for v in row_shape)
    if any(la.kind in SPATIAL for la in spec.layers):
        if len(shape) not in (2, 3):
            raise TrainRefused(f"{spec.layers[0].kind} needs rows shaped (H, W) or (C, H, W), got {list(shape)}; "
                               "save the features with their image shape.")
        g = Geo(1, *shape) if len(shape) == 2 else Geo(*shape)
    else:
        g = Geo(int(np.prod(shape)))
    out = [g]
    for i, la in enumerate(spec.layers):
        if la.kind in SPATIAL:
            pad = la.padding if la.kind == "conv2d" else 0
            oh = (g.h + 2 * pad - la.kernel) // la.stride + 1
            ow = (g.w + 2 * pad - la.kernel) // la.stride + 1
            if oh < 1 or ow < 1:
                raise TrainRefused(f"layer {i} ({la.kind}, kernel {la.kernel}) does not fit its {g.h}x{g.w} input; "
                                   "use a smaller kernel or more padding.")
            g = Geo(la.out if la.kind == "conv2d" else g.c, oh, ow, "hwc")
        elif la.kind == "flatten":
            g = Geo(g.size)
        elif la.kind == "linear":
            g = Geo(la.out)
        out.append(g)
    return out


def conv_indices(g: Geo, la: Layer, positions: Sequence[tuple[int, int]] | None = None) -> tuple[np.ndarray, np.ndarray, Geo]:
    """im2col: for each output position (oh, ow) and tap (kh, kw, c), the input element it reads
    (g.size: the appended zero, for taps outside the image); and for each input element, every
    patch entry that read it (padded with the patch array's length, the zero of the gradient).
    The positions come in raster order, or in the order `positions` lists them."""
    k, s, pad = la.kernel, la.stride, la.padding
    oh, ow = (g.h + 2 * pad - k) // s + 1, (g.w + 2 * pad - k) // s + 1
    order = [(y, x) for y in range(oh) for x in range(ow)] if positions is None else positions
    idx = np.full((len(order), k, k, g.c), g.size, np.int64)
    for q, (y, x) in enumerate(order):
        for kh in range(k):
            for kw in range(k):
                ih, iw = y * s + kh - pad, x * s + kw - pad
                if 0 <= ih < g.h and 0 <= iw < g.w:
                    idx[q, kh, kw] = [g.index(c, ih, iw) for c in range(g.c)]
    idx = idx.reshape(-1)
    return idx, _inverse(idx, g.size), Geo(la.out, oh, ow, "hwc")


def window_positions(g_out: Geo, pool: Layer) -> list[tuple[int, int]]:
    """The positions a max pool's windows read, offset-major: (kh, kw, pooled position)."""
    k, s = pool.kernel, pool.stride
    return [(y * s + kh, x * s + kw) for kh in range(k) for kw in range(k) for y in range(g_out.h) for x in range(g_out.w)]


def pool_indices(g: Geo, la: Layer) -> tuple[np.ndarray, np.ndarray, Geo]:
    """Each output (position, channel)'s window of kernel^2 input elements, and the inverse."""
    k, s = la.kernel, la.stride
    oh, ow = (g.h - k) // s + 1, (g.w - k) // s + 1
    idx = np.zeros((oh, ow, g.c, k * k), np.int64)
    for y in range(oh):
        for x in range(ow):
            for c in range(g.c):
                idx[y, x, c] = [g.index(c, y * s + kh, x * s + kw) for kh in range(k) for kw in range(k)]
    idx = idx.reshape(oh * ow * g.c, k * k)
    return idx, _inverse(idx.reshape(-1), g.size), Geo(g.c, oh, ow, "hwc")


def _inverse(idx: np.ndarray, n_in: int) -> np.ndarray:
    """(n_in, M): the positions of `idx` holding each input element, padded with len(idx)."""
    lists: list[list[int]] = [[] for _ in range(n_in)]
    for q, j in enumerate(idx.tolist()):
        if j < n_in:
            lists[j].append(q)
    m = max(1, max(len(v) for v in lists))
    inv = np.full((n_in, m), len(idx), np.int64)
    for j, v in enumerate(lists):
        inv[j, : len(v)] = v
    return inv


# ---- bounds ----------------------------------------------------------------------------------


def bounds(spec: TrainSpec, x_bound: int, x_frac_bits: int, row_shape: Sequence[int], train: bool = True) -> dict[str, int]:
    """Worst-case |value| (and |partial sum|: a MatMul's bound is max|a| * max|b| * K) of every
    kind of tensor of the step, whatever the data and training do, as ints."""
    f = spec.frac_bits
    c = 1 << (f + WEIGHT_CLIP_LOG2)
    one = 1 << f
    geo = geometry(spec, row_shape)
    out: dict[str, int] = {}
    a, p = x_bound, x_frac_bits
    # per parameter layer: (input bound, fan_in, fan_out, positions per row, taps per input element)
    params: list[tuple[int, int, int, int, int]] = []
    back: list[tuple[str, int]] = []  # the parameterless layers' gradient factors, in order
    li = 0
    for i, la in enumerate(spec.layers):
        g, g_out = geo[i], geo[i + 1]
        if la.kind in PARAM_LAYERS:
            li += 1
            if la.kind == "conv2d":
                fan_in, positions = la.kernel * la.kernel * g.c, g_out.h * g_out.w
                taps = conv_indices(g, la)[1].shape[1]
            else:
                fan_in, positions, taps = g.size, 1, 1
            params.append((a, fan_in, la.out, positions, taps))
            back.append(("param", li))
            mm = fan_in * a * c
            out[f"input @ W{li}"] = mm
            a = mm // (1 << p) + c
            out[f"a{li}"] = a
            p = f
        elif la.kind == "leaky_relu":
            out[f"a{li} * slope"] = a * la.alpha_q
            back.append(("leaky", la.alpha_q))
        elif la.kind == "avgpool2d":
            out[f"pool{i} sum"] = la.kernel * la.kernel * a
            back.append(("pool", pool_indices(g, la)[1].shape[1]))
        elif la.kind == "maxpool2d":
            back.append(("pool", pool_indices(g, la)[1].shape[1]))
    z = a
    if not train:
        return out
    if spec.loss == "mse":
        target = (1 << (f + WEIGHT_CLIP_LOG2)) if spec.task == "regression" else one
        out["z - target"] = z + target
        d = 1 << (f + ERR_CLIP_LOG2)
    else:
        out["exp * 2^F"] = one * one
        out["z - max z"] = 2 * z
        d = one
    b = spec.batch
    for kind, v in reversed(back):
        if kind == "leaky":
            out[f"d * slope ({v})"] = d * v
        elif kind == "pool":
            d *= v  # an input element's gradient sums the windows that hold it
        else:
            a_in, fan_in, fan_out, positions, taps = params[v - 1]
            out[f"gW{v}"] = b * positions * a_in * d
            out[f"gb{v}"] = b * positions * d
            if v == 1:
                break
            dp = fan_out * d * c
            out[f"d @ W{v}^T"] = dp
            d = dp // one * taps
            out[f"d{v - 1}"] = d
    out["update"] = 4 * c + c * (spec.momentum_q + spec.weight_decay_q)
    return out


def check_bounds(spec: TrainSpec, x_bound: int, x_frac_bits: int, row_shape: Sequence[int], train: bool = True) -> None:
    bs = bounds(spec, x_bound, x_frac_bits, row_shape, train)
    name, m = max(bs.items(), key=lambda kv: kv[1])
    if m >= 1 << INT64_LOG2:
        widths = [la.out for la in spec.layers if la.kind in PARAM_LAYERS]
        raise TrainRefused(
            f"{name} could reach 2^{m.bit_length() - 1} or more and wrap int64 (frac_bits {spec.frac_bits}, "
            f"batch {spec.batch}, widths {widths}, |x| <= {x_bound}); lower frac_bits, the batch or the layer widths."
        )


# ---- initial weights -------------------------------------------------------------------------


def _uniform_ints(rng: np.random.PCG64, shape: tuple[int, ...], limit: int) -> np.ndarray:
    """Integers uniform in [-limit, limit] from raw PCG64 output (the bit stream is version-stable;
    Generator's distribution methods are not promised to be)."""
    n = int(np.prod(shape))
    raw = rng.random_raw(n) if n else np.zeros(0, np.uint64)
    vals = (raw % np.uint64(2 * limit + 1)).astype(np.int64) - limit
    return vals.reshape(shape)


def param_names(spec: TrainSpec) -> list[str]:
    return [n for i in range(1, len(spec.linears) + 1) for n in (f"W{i}", f"b{i}")]


def init_weights(spec: TrainSpec, row_shape: Sequence[int]) -> dict[str, np.ndarray]:
    """Deterministic fixed-point initial weights: He-uniform before an activation, Glorot-uniform
    otherwise (the output layer), zero biases; drawn in layer order from PCG64(seed). A
    convolution's W is (kernel * kernel * C_in, C_out), rows in (kh, kw, c) order."""
    rng = np.random.PCG64(spec.seed)
    one2 = 1 << (2 * spec.frac_bits)
    geo = geometry(spec, row_shape)
    params: dict[str, np.ndarray] = {}
    li = 0
    for i, la in enumerate(spec.layers):
        if la.kind not in PARAM_LAYERS:
            continue
        li += 1
        kk = la.kernel * la.kernel if la.kind == "conv2d" else 1
        fan_in = kk * geo[i].c if la.kind == "conv2d" else geo[i].size
        nxt = spec.layers[i + 1].kind if i + 1 < len(spec.layers) else None
        if nxt in ("relu", "leaky_relu"):
            lim = isqrt(6 * one2 // fan_in)  # sqrt(6 / fan_in) * 2^F
        else:
            lim = isqrt(6 * one2 // (fan_in + kk * la.out))  # sqrt(6 / (fan_in + fan_out)) * 2^F
        params[f"W{li}"] = _uniform_ints(rng, (fan_in, la.out), lim)
        params[f"b{li}"] = np.zeros(la.out, np.int64)
    return params


# ---- graph construction ----------------------------------------------------------------------


class GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._names: set[str] = set()

    def _fresh(self, name: str) -> str:
        if name in self._names:
            raise ValueError(f"duplicate value name {name}")
        self._names.add(name)
        return name

    def init(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.array(value, order="C", copy=True), self._fresh(name)))
        return name

    def node(self, op: str, inputs: list[str], out: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [self._fresh(out)], name=out, **attrs))
        return out


def _vi(name: str, arr: np.ndarray) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape)


def make_model(
    b: GraphBuilder,
    graph_name: str,
    inputs: list[tuple[str, np.ndarray]],
    outputs: list[tuple[str, np.ndarray]],
    metadata: dict[str, str],
    doc: str,
) -> onnx.ModelProto:
    g = helper.make_graph(
        b.nodes, graph_name, [_vi(n, a) for n, a in inputs], [_vi(n, a) for n, a in outputs], initializer=b.inits
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER, doc_string=doc)
    m.ir_version = IR_VERSION
    helper.set_model_props(m, metadata)
    return m


def _act_name(i: int) -> str:
    return "h" if i == 1 else f"h{i}"  # the digits program's names for one hidden layer


@dataclass
class _Stage:
    """One layer as the forward emitted it, with what its backward reads."""

    kind: str
    inp: str  # the layer's input value
    li: int = 0  # parameter layers: the index of W/b
    base: str = ""  # linear: name base of the input's transpose
    patches: str = ""  # conv2d: the (B * positions, taps) patch matrix
    inv: str = ""  # conv2d, pools: the inverse index constant
    win: str = ""  # maxpool2d: the (B, N, k * k) windows
    rows: str = ""  # conv2d, pools: the reshape constants' name stem
    mask: str = ""  # activations: the name of Greater(input, 0)
    active: str = ""  # ... where the forward made it (LeakyReLU)
    alpha: int = 0


@dataclass
class _Fwd:
    z: str
    stages: list[_Stage]


def _pool_after(spec: TrainSpec, i: int) -> int | None:
    """The index of a max pool without overlapping windows that reads conv2d layer i's output,
    directly or through one activation: every map between them is monotone, so the pool may
    come first."""
    j = i + 1
    if j < len(spec.layers) and spec.layers[j].kind in ("relu", "leaky_relu"):
        j += 1
    if j < len(spec.layers) and spec.layers[j].kind == "maxpool2d" and spec.layers[j].stride >= spec.layers[j].kernel:
        return j
    return None


def forward(
    b: GraphBuilder, spec: TrainSpec, x: str, fixed: bool, x_frac_bits: int, row_shape: Sequence[int], batch: int,
    p: str = "",
    pool_first: bool = False,
) -> _Fwd:
    """x (B, row...) -> logits/values z, emitting the layers in order. Spatial layers create
    their index constants (and the (B, 1) zero column they pad with) here. With `pool_first`
    (inference: no backward reads the windows), a max pool after a convolution takes the
    windows' max of the convolution's products, before their rescale, bias and activation: the
    same values (trunc, + b and the activations never decrease, so each commutes with max), and
    those three on kernel^2 times fewer values, without the pool's Gather."""
    geo = geometry(spec, row_shape)
    dt = np.int64 if fixed else np.float32
    cur, base, first = x, "x", True
    fw = _Fwd("", [])
    if len(row_shape) > 1:
        cur = b.node("Reshape", [cur, f"{p}c_flat"], f"{p}x_flat")
    zcol = ""
    li = 0
    pooled = -1  # the max pool a convolution already applied
    for i, la in enumerate(spec.layers):
        g = geo[i]
        if la.kind == "flatten":
            continue
        if i == pooled:  # the windows were taken before the activation: only flatten them
            cur = b.node("Reshape", [cur, b.init(f"{p}c_pool{i}_flat_shape", np.array([batch, geo[i + 1].size], np.int64))], f"{p}pool{i}")
            base = f"pool{i}"
            continue
        if la.kind in SPATIAL and not zcol:
            zcol = b.init(f"{p}c_zcol", np.zeros((batch, 1), dt))
            b.init(f"{p}c_axis2", np.array([2], np.int64))
        if la.kind in PARAM_LAYERS:
            li += 1
            st = _Stage(la.kind, cur, li=li, base=base)
            scale = f"{p}c_pix_scale" if first else f"{p}c_one"
            last = li == len(spec.linears)
            if la.kind == "linear":
                mm = b.node("MatMul", [cur, f"W{li}"], f"{p}{base}W{li}")
                if fixed:
                    mm = b.node("Div", [mm, scale], f"{mm}_rescaled")
                cur = b.node("Add", [mm, f"b{li}"], f"{p}z" if last else f"{p}a{li}")
                base = "" if last else _act_name(li)
            else:
                j = _pool_after(spec, i) if pool_first else None
                # pooled first: only the positions some window reads, window offset-major
                order = None if j is None else window_positions(geo[j + 1], spec.layers[j])
                idx, inv, _ = conv_indices(g, la, order)
                taps = la.kernel * la.kernel * g.c
                positions = len(idx) // taps
                st.rows = f"{p}c_conv{li}"
                b.init(f"{st.rows}_idx", idx)
                st.inv = b.init(f"{st.rows}_inv", inv)
                b.init(f"{st.rows}_patch_shape", np.array([batch * positions, taps], np.int64))
                b.init(f"{st.rows}_out_shape", np.array([batch, positions * la.out], np.int64))
                b.init(f"{st.rows}_grad_shape", np.array([batch * positions, la.out], np.int64))
                b.init(f"{st.rows}_dpatch_shape", np.array([batch, positions * taps], np.int64))
                padded = b.node("Concat", [cur, zcol], f"{p}conv{li}_in", axis=1)
                cols = b.node("Gather", [padded, f"{st.rows}_idx"], f"{p}conv{li}_cols", axis=1)
                st.patches = b.node("Reshape", [cols, f"{st.rows}_patch_shape"], f"{p}conv{li}_patches")
                mm = b.node("MatMul", [st.patches, f"W{li}"], f"{p}conv{li}_mm")
                if j is not None:
                    pooled, offsets = j, spec.layers[j].kernel ** 2
                    shape = [batch, offsets, positions // offsets, la.out]
                    windows = b.node("Reshape", [mm, b.init(f"{st.rows}_window_shape", np.array(shape, np.int64))], f"{p}conv{li}_windows")
                    mm = b.node("ReduceMax", [windows, b.init(f"{st.rows}_axis1", np.array([1], np.int64))], f"{p}conv{li}_pooled", keepdims=0)
                if fixed:
                    mm = b.node("Div", [mm, scale], f"{mm}_rescaled")
                pre = b.node("Add", [mm, f"b{li}"], f"{p}conv{li}_biased")
                cur = pre if j is not None else b.node("Reshape", [pre, f"{st.rows}_out_shape"], f"{p}c{li}")
                base = f"c{li}"
            fw.stages.append(st)
            first = False
            continue
        if la.kind in ("maxpool2d", "avgpool2d"):
            idx, inv, _ = pool_indices(g, la)
            kk = la.kernel * la.kernel
            st = _Stage(la.kind, cur, rows=f"{p}c_pool{i}")
            b.init(f"{st.rows}_idx", idx)
            st.inv = b.init(f"{st.rows}_inv", inv)
            b.init(f"{st.rows}_col_shape", np.array([batch, idx.shape[0], 1], np.int64))
            b.init(f"{st.rows}_flat_shape", np.array([batch, idx.size], np.int64))
            win = b.node("Gather", [cur, f"{st.rows}_idx"], f"{p}pool{i}_win", axis=1)
            if la.kind == "maxpool2d":
                st.win = win
                b.init(f"{st.rows}_taps", np.arange(kk, dtype=np.int64))
                cur = b.node("ReduceMax", [win, f"{p}c_axis2"], f"{p}pool{i}", keepdims=0)
            else:
                b.init(f"{st.rows}_ones", np.ones(kk, dt))
                b.init(f"{st.rows}_kk", np.array(kk, dt))
                tot = b.node("ReduceSum", [win, f"{p}c_axis2"], f"{p}pool{i}_sum", keepdims=0)
                cur = b.node("Div", [tot, f"{st.rows}_kk"], f"{p}pool{i}")
            fw.stages.append(st)
            base = f"pool{i}"
            continue
        # an activation
        # after linear layer li: the bundled digits program's names (h, active)
        after_linear = spec.layers[i - 1].kind == "linear"
        name = f"{p}{_act_name(li)}" if after_linear else f"{p}{base}_act"
        mask = (f"{p}active" if li == 1 else f"{p}active{li}") if after_linear else f"{cur}_active"
        st = _Stage(la.kind, cur, li=li if after_linear else 0, mask=mask, alpha=la.alpha_q)
        if la.kind == "relu":
            out = b.node("Relu", [cur], name)
        else:
            st.active = b.node("Greater", [cur, f"{p}c_zero"], mask)
            leak = b.node("Mul", [cur, f"{p}c_alpha"], f"{name}_leak")
            if fixed:
                leak = b.node("Div", [leak, f"{p}c_alpha_den"], f"{leak}_rescaled")
            out = b.node("Where", [st.active, cur, leak], name)
        fw.stages.append(st)
        cur, base = out, name.removeprefix(p)
    fw.z = cur
    return fw


def backward(b: GraphBuilder, fw: _Fwd, dz: str, fixed: bool) -> dict[str, tuple[str, str]]:
    """The gradients of every W/b from dz, walking the stages back to the first parameter layer:
    name -> (gradient value, its update step constant)."""
    grads: dict[str, tuple[str, str]] = {}
    d = dz
    for st in reversed(fw.stages):
        if st.kind in ("relu", "leaky_relu"):
            # after linear layer li: the bundled digits program's name (dh)
            dname = f"d{_act_name(st.li)}" if st.li else f"d_{st.inp}"
            act = st.active or b.node("Greater", [st.inp, "c_zero"], st.mask)
            if st.kind == "relu":
                d = b.node("Where", [act, d, "c_zero"], dname)
            else:
                leak = b.node("Mul", [d, "c_alpha"], f"{dname}_leak")
                if fixed:
                    leak = b.node("Div", [leak, "c_alpha_den"], f"{leak}_rescaled")
                d = b.node("Where", [act, d, leak], dname)
            continue
        if st.kind in ("maxpool2d", "avgpool2d"):
            col = b.node("Reshape", [d, f"{st.rows}_col_shape"], f"{d}_col")
            if st.kind == "maxpool2d":
                first_max = b.node("ArgMax", [st.win], f"{st.win}_argmax", axis=2, keepdims=1)
                hot = b.node("Equal", [first_max, f"{st.rows}_taps"], f"{st.win}_hot")
                dwin = b.node("Where", [hot, col, "c_zero"], f"{d}_win")
            else:
                share = b.node("Div", [col, f"{st.rows}_kk"], f"{d}_share")
                dwin = b.node("Mul", [share, f"{st.rows}_ones"], f"{d}_win")
            d = _scatter(b, dwin, st, f"{st.rows}_flat_shape", f"d_{st.inp}")
            continue
        # a convolution is a linear layer on its patch matrix, applied at every position
        li, conv = st.li, st.kind == "conv2d"
        rows = b.node("Reshape", [d, f"{st.rows}_grad_shape"], f"{d}_rows") if conv else d
        inp_t = b.node("Transpose", [st.patches if conv else st.inp], f"{st.patches}T" if conv else f"{st.base}T", perm=[1, 0])
        grads[f"W{li}"] = (b.node("MatMul", [inp_t, rows], f"gW{li}"), f"c_step_w{li}")
        grads[f"b{li}"] = (b.node("ReduceSum", [rows, "c_axis0"], f"gb{li}", keepdims=0), "c_step_b")
        if li == 1:
            break
        wt = b.node("Transpose", [f"W{li}"], f"W{li}T", perm=[1, 0])
        dp = b.node("MatMul", [rows, wt], f"{d}_patches" if conv else f"{d}W{li}T")
        if fixed:
            dp = b.node("Div", [dp, "c_one"], f"{dp}_rescaled")
        d = _scatter(b, dp, st, f"{st.rows}_dpatch_shape", f"d_{st.inp}") if conv else dp
    return grads


def _scatter(b: GraphBuilder, spread: str, st: _Stage, flat_shape: str, out: str) -> str:
    """Sum every gathered entry's gradient back onto the input element it was read from."""
    flat = b.node("Reshape", [spread, flat_shape], f"{spread}_flat")
    padded = b.node("Concat", [flat, "c_zcol"], f"{spread}_padded", axis=1)
    per_input = b.node("Gather", [padded, st.inv], f"{spread}_per_input", axis=1)
    return b.node("ReduceSum", [per_input, "c_axis2"], out, keepdims=0)


def build_train_graph(
    spec: TrainSpec,
    data: TrainData,
    fixed: bool = True,
    *,
    graph_name: str | None = None,
    metadata: dict[str, str] | None = None,
    doc: str | None = None,
) -> onnx.ModelProto:
    """The step graph (integer, or its float32 twin) of `spec` on `data`, as a program."""
    if spec.steps < 1:
        raise TrainRefused("schedule steps must be positive.")
    row_shape = data.x.shape[1:]
    check_bounds(spec, data.x_bound, data.x_frac_bits, row_shape)
    f = spec.frac_bits
    params = init_weights(spec, row_shape)
    names = param_names(spec)
    classify = spec.task == "classification"
    if fixed:
        state = dict(params)
        x_data = data.x  # Cast to int64 after the Gather
        dt = np.int64
        one, zero = np.int64(1 << f), np.int64(0)
        wclip = np.int64(1 << (f + WEIGHT_CLIP_LOG2))
        eclip = np.int64(1 << (f + ERR_CLIP_LOG2))
        y_data = data.y
    else:
        s = np.float32(2.0**-f)
        state = {k: (v.astype(np.float32) * s).astype(np.float32) for k, v in params.items()}
        x_data = (data.x.astype(np.float32) / np.float32(2.0**data.x_frac_bits)).astype(np.float32)
        dt = np.float32
        one, zero = np.float32(1.0), np.float32(0.0)
        wclip = np.float32(2.0**WEIGHT_CLIP_LOG2)
        eclip = np.float32(2.0**ERR_CLIP_LOG2)
        y_data = data.y if classify else (data.y.astype(np.float64) / 2.0**f).astype(np.float32)
    momentum = spec.momentum_q > 0
    vel = {k: f"v_{k}" for k in names} if momentum else {}
    for k in names:
        if momentum:
            state[vel[k]] = np.zeros_like(state[k])
    state_names = names + list(vel.values())
    t0 = np.array(0, np.int64)

    b = GraphBuilder()
    # Inputs with their initial values (SPEC 3.1: every graph input has an initializer).
    b.init(STEP_INPUT, t0)
    for k in state_names:
        b.init(k, state[k])
    b.init("X", x_data)
    b.init("Y", y_data)
    # Constants.
    b.init("c_batch", np.array(spec.batch, np.int64))
    b.init("c_arange", np.arange(spec.batch, dtype=np.int64))
    b.init("c_ntrain", np.array(data.n, np.int64))
    if classify:
        b.init("c_classes", np.arange(data.n_outputs, dtype=np.int64))
    b.init("c_one", np.array(one, dt))
    b.init("c_zero", np.array(zero, dt))
    if spec.loss == "mse":
        b.init("c_eclip_lo", np.array(-eclip, dt))
        b.init("c_eclip_hi", np.array(eclip, dt))
    b.init("c_wclip_lo", np.array(-wclip, dt))
    b.init("c_wclip_hi", np.array(wclip, dt))
    b.init("c_axis0", np.array([0], np.int64))
    # SGD step: lr/B * g. Fixed point: Div by 2^(lr_shift + log2 B + extra fractional bits of g).
    sh = spec.lr_shift + spec.log2_batch
    n_lin = len(spec.linears)
    if fixed:
        b.init("c_pix_scale", np.array(1 << data.x_frac_bits, np.int64))  # the input's scale
        for li in range(1, n_lin + 1):
            extra = data.x_frac_bits if li == 1 else f
            b.init(f"c_step_w{li}", np.array(1 << (sh + extra), np.int64))  # gW: F + extra frac bits
        b.init("c_step_b", np.array(1 << sh, np.int64))  # gb: F frac bits
    else:
        b.init("c_lr", np.array(2.0**-sh, np.float32))
    # Only what the digits program lacks comes after this point.
    if len(row_shape) > 1:
        b.init("c_flat", np.array([spec.batch, data.features], np.int64))
    if any(la.kind == "leaky_relu" for la in spec.layers):
        alpha = next(la.alpha_q for la in spec.layers if la.kind == "leaky_relu")
        if len({la.alpha_q for la in spec.layers if la.kind == "leaky_relu"}) > 1:
            raise TrainRefused("every leaky_relu layer must use the same alpha in this pass.")
        if fixed:
            b.init("c_alpha", np.array(alpha, np.int64))
            b.init("c_alpha_den", np.array(1 << SLOPE_BITS, np.int64))
        else:
            b.init("c_alpha", np.array(alpha / 2**SLOPE_BITS, np.float32))
    if spec.loss == "softmax_cross_entropy":
        b.init("c_axis1", np.array([1], np.int64))
        if fixed:
            if f < EXP_BITS:
                raise TrainRefused(f"softmax_cross_entropy needs frac_bits >= {EXP_BITS}.")
            steps = np.arange(EXP_RANGE * (1 << EXP_BITS) + 1, dtype=np.float64)
            table = _round_half_away(np.exp(-steps / (1 << EXP_BITS)) * (1 << f)).astype(np.int64)
            b.init("c_exp_table", table)
            b.init("c_exp_step", np.array(1 << (f - EXP_BITS), np.int64))
            b.init("c_exp_last", np.array(len(table) - 1, np.int64))
    if momentum:
        if fixed:
            b.init("c_mu", np.array(spec.momentum_q, np.int64))
            b.init("c_slope_den", np.array(1 << SLOPE_BITS, np.int64))
        else:
            b.init("c_mu", np.array(spec.momentum_q / 2**SLOPE_BITS, np.float32))
    if spec.weight_decay_q:
        if fixed:
            b.init("c_wd", np.array(spec.weight_decay_q, np.int64))
            b.init("c_wd_den", np.array(1 << (SLOPE_BITS + spec.lr_shift), np.int64))  # lr * wd * w
        else:
            b.init("c_wd", np.array(spec.weight_decay_q / 2 ** (SLOPE_BITS + spec.lr_shift), np.float32))

    # Batch selection inside the graph.
    tb = b.node("Mul", [STEP_INPUT, "c_batch"], "tB")
    pos = b.node("Add", [tb, "c_arange"], "batch_pos")
    idx = b.node("Mod", [pos, "c_ntrain"], "batch_idx")
    xb = b.node("Gather", ["X", idx], "xb_raw" if fixed else "xb", axis=0)
    if fixed:
        xb = b.node("Cast", [xb], "xb", to=TensorProto.INT64)
    yb = b.node("Gather", ["Y", idx], "yb", axis=0)
    if classify:
        hot = b.node("Equal", [yb, "c_classes"], "y_hot")
        target = b.node("Where", [hot, "c_one", "c_zero"], "target")
    else:
        target = yb

    fw = forward(b, spec, xb, fixed, data.x_frac_bits, row_shape, spec.batch)
    z = fw.z

    # Loss gradient with respect to z.
    if spec.loss == "mse":
        err = b.node("Sub", [z, target], "err")
        dz = b.node("Clip", [err, "c_eclip_lo", "c_eclip_hi"], "dz")
    else:
        zmax = b.node("ReduceMax", [z, "c_axis1"], "z_max", keepdims=1)
        if fixed:
            gap = b.node("Sub", [zmax, z], "z_gap")  # >= 0
            ix = b.node("Div", [gap, "c_exp_step"], "exp_idx_raw")
            ix = b.node("Min", [ix, "c_exp_last"], "exp_idx")
            e = b.node("Gather", ["c_exp_table", ix], "exp", axis=0)
            tot = b.node("ReduceSum", [e, "c_axis1"], "exp_sum", keepdims=1)  # >= 2^F (the max's entry)
            num = b.node("Mul", [e, "c_one"], "exp_scaled")
            # 0 <= e <= sum(e), so prob is in [0, 2^F] already; the Clip only tells the engine's
            # interval analysis, which does not relate a quotient's terms, so that the step compiles
            ratio = b.node("Div", [num, tot], "prob_raw")
            prob = b.node("Clip", [ratio, "c_zero", "c_one"], "prob")
        else:
            gap = b.node("Sub", [z, zmax], "z_gap")
            e = b.node("Exp", [gap], "exp")
            tot = b.node("ReduceSum", [e, "c_axis1"], "exp_sum", keepdims=1)
            prob = b.node("Div", [e, tot], "prob")
        dz = b.node("Sub", [prob, target], "dz")

    grads = backward(b, fw, dz, fixed)

    # SGD update (momentum, weight decay) with clipping.
    nxt: dict[str, str] = {}
    for k in names:
        g, step = grads[k]
        if fixed:
            u = b.node("Div", [g, step], f"{k}_update")
        else:
            u = b.node("Mul", [g, "c_lr"], f"{k}_update")
        if spec.weight_decay_q:
            dec = b.node("Mul", [k, "c_wd"], f"{k}_decay")
            if fixed:
                dec = b.node("Div", [dec, "c_wd_den"], f"{k}_decay_rescaled")
            u = b.node("Add", [u, dec], f"{k}_update_wd")
        if momentum:
            v = b.node("Mul", [vel[k], "c_mu"], f"{vel[k]}_mu")
            if fixed:
                v = b.node("Div", [v, "c_slope_den"], f"{v}_rescaled")
            v = b.node("Add", [v, u], f"{vel[k]}_sum")
            u = nxt[vel[k]] = b.node("Clip", [v, "c_wclip_lo", "c_wclip_hi"], f"{vel[k]}_next")
        nk = b.node("Sub", [k, u], f"{k}_sgd")
        nxt[k] = b.node("Clip", [nk, "c_wclip_lo", "c_wclip_hi"], f"{k}_next")
    outputs = [(nxt[k], state[k]) for k in state_names]

    meta = {
        "bisectml.steps": str(spec.steps),
        "bisectml.step_input": STEP_INPUT,
        "bisectml.state": ",".join(state_names),
        "bisectml.data": "X,Y",
    }
    if metadata is None:
        meta |= train_metadata(spec, data, fixed)
    else:
        meta |= metadata
    if doc is None:
        widths = "-".join(str(w) for w in [data.features] + [la.out for la in spec.layers if la.kind == "linear"])
        doc = (
            f"bisectml: {'integer fixed-point' if fixed else 'float32 twin of the integer'} SGD training step of a "
            f"{widths} MLP ({spec.loss}, batch {spec.batch}, lr 2^-{spec.lr_shift}, {spec.steps} steps, "
            f"{spec.frac_bits} fractional bits). Built by onnx_models.train."
        )
    inputs = [(STEP_INPUT, t0)] + [(k, state[k]) for k in state_names] + [("X", x_data), ("Y", y_data)]
    name = graph_name or ("train" if fixed else "train_float32")
    return make_model(b, name, inputs, outputs, meta, doc)


def _floats(v: np.ndarray | None) -> str:
    return json.dumps(None if v is None else [float(a) for a in np.asarray(v, np.float64).reshape(-1)])


def train_metadata(spec: TrainSpec, data: TrainData, fixed: bool = True) -> dict[str, str]:
    """What `build export` and `build eval` read back: the description and the normalization."""
    return {
        META + "kind": "train-fixed" if fixed else "train-float32",
        META + "spec": json.dumps(spec.to_json(), sort_keys=True),
        META + "row_shape": json.dumps(list(data.x.shape[1:])),
        META + "x_frac_bits": str(data.x_frac_bits),
        META + "x_mean": _floats(data.x_mean),
        META + "x_std": _floats(data.x_std),
        META + "y_mean": _floats(data.y_mean),
        META + "y_std": _floats(data.y_std),
    }


def resolve_steps(spec: TrainSpec, n_rows: int) -> TrainSpec:
    """An epochs schedule (held as -epochs) -> steps: ceil(epochs * n / batch)."""
    if spec.steps >= 1:
        return spec
    return _with(spec, steps=-(-(-spec.steps) * n_rows // spec.batch))


def build_program(spec: TrainSpec, x: np.ndarray, y: np.ndarray | None, fixed: bool = True) -> onnx.ModelProto:
    """The integer training program (or its float32 twin) of a description on the user's rows."""
    data = prepare_data(spec, x, y)
    return build_train_graph(resolve_steps(spec, data.n), data, fixed)


# ---- reading a built program back ------------------------------------------------------------


@dataclass(frozen=True)
class ProgramInfo:
    spec: TrainSpec
    row_shape: tuple[int, ...]
    x_frac_bits: int
    x_mean: np.ndarray | None
    x_std: np.ndarray | None
    y_mean: np.ndarray | None
    y_std: np.ndarray | None


def program_info(model: onnx.ModelProto) -> ProgramInfo:
    meta = {p.key: p.value for p in model.metadata_props}
    if META + "spec" not in meta:
        raise TrainRefused("this program was not written by `bisectml build train` (no bisectml.train.spec); build it first.")

    def arr(key: str) -> np.ndarray | None:
        v = json.loads(meta[META + key])
        return None if v is None else np.asarray(v, np.float64)

    row_shape = tuple(json.loads(meta[META + "row_shape"]))
    xm, xs = arr("x_mean"), arr("x_std")
    if xm is not None and xs is not None:
        xm, xs = xm.reshape(row_shape), xs.reshape(row_shape)
    spec = parse_spec(json.loads(meta[META + "spec"]))
    steps = int(meta["bisectml.steps"])
    return ProgramInfo(_with(spec, steps=steps), row_shape, int(meta[META + "x_frac_bits"]), xm, xs, arr("y_mean"), arr("y_std"))


def build_eval_graph(
    info: ProgramInfo, params: Mapping[str, np.ndarray], x: np.ndarray, *, pool_first: bool = True
) -> onnx.ModelProto:
    """A 1-step integer program whose final state `out` holds the fixed-point forward of every
    row: (n, 1) predicted classes (ArgMax, ties -> first) or (n, k) values with F fractional bits.
    The same values whether max pools come first (`forward`) or not."""
    spec = info.spec
    x = _shaped(spec, np.asarray(x, np.float64)) if x.ndim >= 2 else np.asarray(x, np.float64)
    if x.shape[1:] != info.row_shape:
        raise TrainRefused(f"rows have shape {list(x.shape[1:])}; the program was trained on rows of shape {list(info.row_shape)}.")
    if not np.isfinite(x).all():
        raise TrainRefused("the rows hold NaN or infinite values; drop or impute those rows first.")
    xq = quantize_features(x, spec, info.x_mean, info.x_std)
    names = param_names(spec)
    w = {k: np.asarray(params[k], np.int64) for k in names}
    c = 1 << (spec.frac_bits + WEIGHT_CLIP_LOG2)
    if any(np.abs(v).max(initial=0) > c for v in w.values()):
        raise TrainRefused(f"parameters exceed the training clip 2^{spec.frac_bits + WEIGHT_CLIP_LOG2}; pass the program's own final state.")
    feats = int(np.prod(info.row_shape))
    check_bounds(spec, int(np.abs(xq.astype(np.int64)).max(initial=0)), info.x_frac_bits, info.row_shape, train=False)
    classify = spec.task == "classification"
    n = xq.shape[0]
    out0 = np.zeros((n, 1 if classify else spec.layers[-1].out), np.int64)
    b = GraphBuilder()
    b.init("out", out0)
    for k in names:
        b.init(k, w[k])
    b.init("X", xq)
    b.init("c_pix_scale", np.array(1 << info.x_frac_bits, np.int64))
    b.init("c_one", np.array(1 << spec.frac_bits, np.int64))
    b.init("c_zero", np.array(0, np.int64))
    if len(info.row_shape) > 1:
        b.init("c_flat", np.array([n, feats], np.int64))
    alphas = [la.alpha_q for la in spec.layers if la.kind == "leaky_relu"]
    if alphas:
        b.init("c_alpha", np.array(alphas[0], np.int64))
        b.init("c_alpha_den", np.array(1 << SLOPE_BITS, np.int64))
    xi = b.node("Cast", ["X"], "x", to=TensorProto.INT64)
    z = forward(b, spec, xi, True, info.x_frac_bits, info.row_shape, n, pool_first=pool_first).z
    if classify:
        z = b.node("ArgMax", [z], "pred", axis=1, keepdims=1)
    res = b.node("Add", ["out", z], "out_next")
    meta = {"bisectml.steps": "1", "bisectml.state": "out", "bisectml.data": ",".join(names + ["X"]), META + "kind": "eval-fixed"}
    inputs = [("out", out0)] + [(k, w[k]) for k in names] + [("X", xq)]
    doc = f"bisectml: fixed-point forward of a trained network over {n} rows. Built by onnx_models.train."
    return make_model(b, "train_eval", inputs, [(res, out0)], meta, doc)


def export_float_model(info: ProgramInfo, params: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """The trained weights, divided by 2^F, as a float32 inference model any ONNX runtime runs:
    input `x` (N, row...) raw features; outputs `probabilities` and `label` (classification) or
    `value` (regression, in the targets' own units)."""
    spec = info.spec
    s = 2.0**-spec.frac_bits
    b = GraphBuilder()
    cur = "x"
    if spec.input_shape:
        # the user's rows are flat: shape them as the program did
        b.init("row_shape", np.array([-1, *info.row_shape], np.int64))
        cur = b.node("Reshape", [cur, "row_shape"], "x_rows")
    if info.x_mean is not None and info.x_std is not None:
        b.init("x_mean", info.x_mean.astype(np.float32))
        b.init("x_std", info.x_std.astype(np.float32))
        cur = b.node("Sub", [cur, "x_mean"], "x_centered")
        cur = b.node("Div", [cur, "x_std"], "x_standard")
        b.init("x_lo", np.array(-INPUT_CLIP, np.float32))
        b.init("x_hi", np.array(INPUT_CLIP, np.float32))
        cur = b.node("Clip", [cur, "x_lo", "x_hi"], "x_clipped")
    geo = geometry(spec, info.row_shape)
    if geo[0].spatial and len(info.row_shape) == 2:
        b.init("image_shape", np.array([-1, 1, *info.row_shape], np.int64))
        cur = b.node("Reshape", [cur, "image_shape"], "image")
    li = 0
    flattened: Geo | None = None  # the spatial activation the next linear reads flat
    for i, la in enumerate(spec.layers):
        g = geo[i]
        w = np.asarray(params.get(f"W{li + 1}", np.zeros(0)), np.float64) * s
        if la.kind == "flatten" or la.kind == "linear" and g.spatial:
            cur = b.node("Flatten", [cur], f"flat{i}", axis=1)
            flattened = g if g.spatial else flattened
        if la.kind == "linear":
            li += 1
            if flattened is not None and flattened.layout == "hwc":
                # the program holds (h, w, c) order, ONNX's Flatten of NCHW gives (c, h, w)
                f_ = flattened
                w = w[[f_.index(c, y, x) for c in range(f_.c) for y in range(f_.h) for x in range(f_.w)]]
            flattened = None
            b.init(f"W{li}", w.astype(np.float32))
            b.init(f"b{li}", (np.asarray(params[f"b{li}"], np.float64) * s).astype(np.float32))
            cur = b.node("Gemm", [cur, f"W{li}", f"b{li}"], f"linear{li}")
        elif la.kind == "conv2d":
            li += 1
            k = la.kernel
            b.init(f"W{li}", w.reshape(k, k, g.c, la.out).transpose(3, 2, 0, 1).astype(np.float32))
            b.init(f"b{li}", (np.asarray(params[f"b{li}"], np.float64) * s).astype(np.float32))
            cur = b.node("Conv", [cur, f"W{li}", f"b{li}"], f"conv{li}", kernel_shape=[k, k],
                         strides=[la.stride] * 2, pads=[la.padding] * 4)
        elif la.kind == "maxpool2d":
            cur = b.node("MaxPool", [cur], f"maxpool{i}", kernel_shape=[la.kernel] * 2, strides=[la.stride] * 2)
        elif la.kind == "avgpool2d":
            cur = b.node("AveragePool", [cur], f"avgpool{i}", kernel_shape=[la.kernel] * 2, strides=[la.stride] * 2)
        elif la.kind == "relu":
            cur = b.node("Relu", [cur], f"relu{i}")
        elif la.kind == "leaky_relu":
            cur = b.node("LeakyRelu", [cur], f"leaky_relu{i}", alpha=la.alpha_q / 2**SLOPE_BITS)
    n_out = spec.layers[-1].out
    if spec.task == "classification":
        probs = b.node("Softmax", [cur], "probabilities", axis=1)
        label = b.node("ArgMax", [cur], "label", axis=1, keepdims=0)
        outs = [helper.make_tensor_value_info(probs, TensorProto.FLOAT, ["N", n_out]),
                helper.make_tensor_value_info(label, TensorProto.INT64, ["N"])]  # fmt: skip
    else:
        if info.y_mean is not None and info.y_std is not None:
            b.init("y_std", info.y_std.astype(np.float32))
            b.init("y_mean", info.y_mean.astype(np.float32))
            cur = b.node("Mul", [cur, "y_std"], "value_scaled")
            cur = b.node("Add", [cur, "y_mean"], "value")
        else:
            cur = b.node("Identity", [cur], "value")
        outs = [helper.make_tensor_value_info(cur, TensorProto.FLOAT, ["N", n_out])]
    inp = helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", int(np.prod(info.row_shape))] if spec.input_shape else ["N", *info.row_shape]
    )
    g = helper.make_graph(b.nodes, "trained", [inp], outs, initializer=b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER)
    m.ir_version = IR_VERSION
    helper.set_model_props(m, {META + "spec": json.dumps(spec.to_json(), sort_keys=True)})
    return m


__all__ = [
    "Layer",
    "ProgramInfo",
    "TrainData",
    "TrainRefused",
    "TrainSpec",
    "bounds",
    "build_eval_graph",
    "build_program",
    "build_train_graph",
    "check_bounds",
    "export_float_model",
    "init_weights",
    "parse_spec",
    "prepare_data",
    "program_info",
    "quantize_features",
]
