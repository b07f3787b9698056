"""The training builder's convolution and pooling layers (docs/SPEC.md 10): the gradients its
step graph computes are the derivatives of the network onnxruntime runs with its own Conv,
MaxPool and AveragePool (central differences of the exported float model's loss); the integer
forward of a trained program predicts what the exported float model predicts; descriptions and
rows a layer cannot take are refused with one line."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

from onnx_models import train
from onnx_models.runtime import run_program_onnxruntime
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

CE = {"loss": "softmax_cross_entropy", "optimizer": {"type": "sgd", "lr": 0.25}, "schedule": {"steps": 1, "batch": 8}}
NETS = {
    "conv-relu-maxpool": [
        {"type": "conv2d", "out_channels": 3, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"}, {"type": "linear", "out": 4},
    ],
    "two convs, strides, leaky, avgpool": [
        {"type": "conv2d", "out_channels": 3, "kernel": 3, "stride": 2, "padding": 1}, {"type": "leaky_relu", "alpha": 0.1},
        {"type": "conv2d", "out_channels": 2, "kernel": 2}, {"type": "relu"},
        {"type": "avgpool2d", "kernel": 2, "stride": 1}, {"type": "linear", "out": 5}, {"type": "relu"},
        {"type": "linear", "out": 4},
    ],
}  # fmt: skip


def _rows(n: int, shape: tuple[int, ...], classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)), rng.integers(0, classes, n)


def _ce_loss(model, x: np.ndarray, y: np.ndarray) -> float:  # noqa: ANN001
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    p = sess.run(["probabilities"], {"x": x.astype(np.float32)})[0].astype(np.float64)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


@pytest.mark.parametrize("net", list(NETS))
def test_step_gradients__are_the_derivatives_of_the_exported_network(net) -> None:
    """One float32 SGD step from the initial weights gives every gradient g = (W - W') / lr;
    each sampled entry matches the central difference of the mean cross-entropy of the exported
    model (onnxruntime's Conv and pools) on the step's batch. A wrong patch index, a gradient
    scattered to the wrong input or a window routed to the wrong tap fails it."""
    shape = (2, 7, 6) if net.startswith("two") else (6, 6)
    x, y = _rows(40, shape, 4, seed=1)
    spec = train.parse_spec({**CE, "layers": NETS[net], "frac_bits": 16})
    twin = train.build_program(spec, x, y, fixed=False)
    after = run_program_onnxruntime(twin)
    info = train.program_info(train.build_program(spec, x, y))
    one = 2.0**spec.frac_bits
    w0 = {k: v.astype(np.float64) / one for k, v in train.init_weights(spec, info.row_shape).items()}
    batch = (x[: spec.batch], y[: spec.batch])  # step 0 reads rows 0 .. B-1
    # the exported model standardizes raw rows as the program did, without its 2^-8 rounding
    xq = train.quantize_features(batch[0], spec, info.x_mean, info.x_std).astype(np.float64) / 2**spec.input_frac_bits
    plain = train.ProgramInfo(spec, info.row_shape, info.x_frac_bits, None, None, None, None)

    def loss(params: dict[str, np.ndarray]) -> float:
        return _ce_loss(train.export_float_model(plain, {k: v * one for k, v in params.items()}), xq, batch[1])

    rng = np.random.default_rng(0)
    checked = 0
    for name, w in w0.items():
        g = (w - after[name].astype(np.float64)) / 0.25
        for flat in rng.choice(w.size, size=min(6, w.size), replace=False):
            eps = 1e-3
            hi, lo = {k: v.copy() for k, v in w0.items()}, {k: v.copy() for k, v in w0.items()}
            hi[name].flat[flat] += eps
            lo[name].flat[flat] -= eps
            numeric = (loss(hi) - loss(lo)) / (2 * eps)
            assert g.flat[flat] == pytest.approx(numeric, rel=0.05, abs=2e-3), (name, int(flat))
            checked += 1
    assert checked >= 4 * len(spec.linears)


def test_trained_convnet__integer_forward_predicts_what_the_exported_model_predicts() -> None:
    """After a few integer training steps on digit images, the integer eval program's classes
    equal the float export's on held-out rows (the layouts of both agree: NCHW Conv and Flatten
    in the export, positions-major in the program)."""
    x, y = load_digits(return_X_y=True)
    x = x.reshape(-1, 8, 8)
    spec = train.parse_spec({**CE, "layers": NETS["conv-relu-maxpool"][:-1] + [{"type": "linear", "out": 10}],
                             "schedule": {"steps": 60, "batch": 32}})  # fmt: skip
    program = train.build_program(spec, x[:1200], y[:1200])
    with Trace(load_program(program)) as tr:
        tr.run()
        state = tr.final_state()
    info = train.program_info(program)
    params = {k: state[k] for k in train.param_names(spec)}
    exported = train.export_float_model(info, params)
    label = ort.InferenceSession(exported.SerializeToString()).run(["label"], {"x": x[1200:].astype(np.float32)})[0]
    with Trace(load_program(train.build_eval_graph(info, params, x[1200:]))) as ev:
        ev.run()
        pred = ev.final_state()["out"].reshape(-1)
    assert np.mean(label == y[1200:]) > 0.8
    assert np.mean(pred == label) >= 0.99


@pytest.mark.parametrize(
    ("layers", "shape", "says"),
    [
        ([{"type": "conv2d", "out_channels": 2}, {"type": "linear", "out": 3}], (16,), "rows shaped (H, W) or (C, H, W)"),
        ([{"type": "linear", "out": 4}, {"type": "conv2d", "out_channels": 2}, {"type": "linear", "out": 3}], (4, 4),
         "put convolutions and pools first"),
        ([{"type": "conv2d", "out_channels": 2, "kernel": 5}, {"type": "linear", "out": 3}], (4, 4), "does not fit"),
        ([{"type": "maxpool2d", "kernel": 3}, {"type": "relu"}, {"type": "maxpool2d", "kernel": 3},
          {"type": "linear", "out": 3}], (5, 5), "does not fit"),
        ([{"type": "conv2d", "out_channels": 2, "kernel": 3, "padding": 3}, {"type": "linear", "out": 3}], (5, 5),
         "padding must be an integer in 0..2"),
        ([{"type": "batchnorm"}, {"type": "linear", "out": 3}], (5, 5), "not supported yet"),
    ],
)  # fmt: skip
def test_layers_that_cannot_take_the_rows__refused_with_one_line(layers, shape, says) -> None:
    x, y = _rows(16, shape, 3, seed=2)
    with pytest.raises(train.TrainRefused) as e:
        train.build_program(train.parse_spec({**CE, "layers": layers}), x, y)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_bounds__past_int64_refused_past_float64_built_and_traced_exactly() -> None:
    """The builder refuses only what could wrap int64: a 64-4096-3 network at F = 24 could reach
    2^75; the two-convolution network at F = 16 (worst case past 2^53, below 2^63) is built, and
    its integer trace reproduces a step computed with Python integers."""
    x, y = _rows(16, (16,), 3, seed=3)
    wide = {**CE, "layers": [{"type": "linear", "out": 4096}, {"type": "relu"}, {"type": "linear", "out": 3}], "frac_bits": 24}
    with pytest.raises(train.TrainRefused) as e:
        train.build_program(train.parse_spec(wide), x, y)
    assert "wrap int64" in str(e.value) and "lower frac_bits" in str(e.value)
    spec = train.parse_spec({**CE, "layers": NETS["two convs, strides, leaky, avgpool"], "frac_bits": 16})
    xs, ys = _rows(40, (2, 7, 6), 4, seed=1)
    bs = train.bounds(spec, 2**11, 8, (2, 7, 6))
    assert 2**53 <= max(bs.values()) < 2**63
    program = load_program(train.build_program(spec, xs, ys))
    with Trace(program) as tr:
        tr.run()
        fast = tr.final_state()
    exact = program.run_step(0, program.initial_state(), fast=False)[1]  # the reference kernels
    for name, v in zip([program.graph.slots[s].name for s in program.state_slots], exact):
        assert np.array_equal(fast[name], v), name


def _float_logits(spec: train.TrainSpec, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The builder's own forward (Gather im2col, windows, positions-major layout) in float32,
    run by onnxruntime."""
    b = train.GraphBuilder()
    n = x.shape[0]
    b.init("c_flat", np.array([n, int(np.prod(x.shape[1:]))], np.int64))
    b.init("c_zero", np.array(0, np.float32))
    alphas = [la.alpha_q for la in spec.layers if la.kind == "leaky_relu"]
    if alphas:
        b.init("c_alpha", np.array(alphas[0] / 2**train.SLOPE_BITS, np.float32))
    for k, v in params.items():
        b.init(k, v.astype(np.float32))
    z = train.forward(b, spec, "x", False, 0, x.shape[1:], n).z
    inputs = [("x", x.astype(np.float32))]
    model = train.make_model(b, "fwd", inputs, [(z, np.zeros((n, spec.layers[-1].out), np.float32))], {}, "")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.astype(np.float32)})[0]


@settings(max_examples=40, deadline=None)
@given(
    c=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(3, 9), k=st.integers(1, 4), stride=st.integers(1, 3),
    pad=st.integers(0, 3), out=st.integers(1, 3), pool=st.sampled_from(["maxpool2d", "avgpool2d", None]),
    pk=st.integers(1, 3), ps=st.integers(1, 3), act=st.sampled_from(["relu", "leaky_relu"]), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_forward__equals_onnxruntime_conv_and_pools_on_the_exported_model(c, h, w, k, stride, pad, out, pool, pk, ps, act, seed) -> None:
    """For any geometry (channels, image size, kernel, stride, padding, pool), the builder's
    forward equals the exported model's: ONNX Conv with the reordered kernel, MaxPool or
    AveragePool, Flatten of NCHW with the first linear layer's rows permuted."""
    pad = min(pad, k - 1)
    layers = [{"type": "conv2d", "out_channels": out, "kernel": k, "stride": stride, "padding": pad}, {"type": act}]
    if pool:
        layers.append({"type": pool, "kernel": pk, "stride": ps})
    layers += [{"type": "flatten"}, {"type": "linear", "out": 3}]
    spec = train.parse_spec({**CE, "layers": layers})
    try:
        geo = train.geometry(spec, (c, h, w))
    except train.TrainRefused:
        return  # a kernel that does not fit: refused, nothing to compare
    rng = np.random.default_rng(seed)
    params = {}
    for i, la in enumerate(la for la in spec.layers if la.kind in ("conv2d", "linear")):
        fan_in = k * k * c if la.kind == "conv2d" else geo[-2].size
        params[f"W{i + 1}"] = rng.normal(size=(fan_in, la.out)).astype(np.float32)
        params[f"b{i + 1}"] = rng.normal(size=la.out).astype(np.float32)
    x = rng.normal(size=(5, c, h, w)).astype(np.float32)
    ours = _float_logits(spec, params, x)
    plain = train.ProgramInfo(spec, (c, h, w), 0, None, None, None, None)
    exported = train.export_float_model(plain, {key: v.astype(np.float64) * 2**spec.frac_bits for key, v in params.items()})
    probs = ort.InferenceSession(exported.SerializeToString()).run(["probabilities"], {"x": x})[0]
    e = np.exp(ours - ours.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), probs, rtol=1e-4, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    c=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(3, 9), k=st.integers(1, 4), stride=st.integers(1, 2),
    pad=st.integers(0, 3), out=st.integers(1, 3), pk=st.integers(1, 3), ps=st.integers(1, 3),
    act=st.sampled_from(["relu", "leaky_relu", None]), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_eval_program__pools_first_and_gives_the_same_integers(c, h, w, k, stride, pad, out, pk, ps, act, seed) -> None:
    """The eval program takes a max pool's windows over a convolution's products, before their
    rescale, bias and activation, wherever the windows do not overlap: for any geometry and
    weights its outputs equal, integer for integer, those of the training step's layer order
    (the windows before the fold would read other positions, the rescale after it would round
    differently, a bias on the wrong channel would shift other values)."""
    pad = min(pad, k - 1)
    layers = [{"type": "conv2d", "out_channels": out, "kernel": k, "stride": stride, "padding": pad}]
    layers += [{"type": act, "alpha": 0.1} if act == "leaky_relu" else {"type": act}] if act else []
    layers += [{"type": "maxpool2d", "kernel": pk, "stride": ps}, {"type": "flatten"}, {"type": "linear", "out": 3}]
    spec = train.parse_spec({"task": "regression", "loss": "mse", "optimizer": {"type": "sgd", "lr": 0.25},
                             "schedule": {"steps": 1, "batch": 8}, "layers": layers})  # fmt: skip
    try:
        train.geometry(spec, (c, h, w))
    except train.TrainRefused:
        return  # a kernel that does not fit: refused, nothing to compare
    rng = np.random.default_rng(seed)
    limit = 1 << (spec.frac_bits + train.WEIGHT_CLIP_LOG2)
    params = {key: rng.integers(-limit, limit, v.shape) for key, v in train.init_weights(spec, (c, h, w)).items()}
    x = rng.normal(size=(6, c, h, w))
    info = train.ProgramInfo(spec, (c, h, w), 8, None, None, None, None)
    outs, folded = [], []
    for first in (True, False):
        model = train.build_eval_graph(info, params, x, pool_first=first)
        folded.append(any(n.op_type == "ReduceMax" and n.name == "conv1_pooled" for n in model.graph.node))
        outs.append(load_program(model).run()["out"])
    assert folded == [ps >= pk, False]
    assert np.array_equal(outs[0], outs[1])
