"""The digits MLP programs of onnx_models: determinism, profile conformance, exactness against an
independent numpy int64 loop, and accuracy of the fixed-point training vs its float32 twin."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from onnx_models.digits import fixed_permutation, load_digits_split, splitmix64
from onnx_models.files import MLP_TRAIN_FLOAT_PATH, MLP_TRAIN_PATH
from onnx_models.mlp import (
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
from onnx_models.runtime import program_roles, run_program_onnxruntime

PROFILE_OPS = set(
    "Identity Add Sub Mul Div Mod Neg Abs Sign Relu Max Min Clip Where Equal Less Greater "
    "LessOrEqual GreaterOrEqual Not And Or Xor Cast Reshape Flatten Squeeze Unsqueeze Transpose "
    "Concat Slice Gather Expand ReduceSum ReduceMax ReduceMin ArgMax ArgMin MatMul Gemm "
    "MatMulInteger ConvInteger Constant Shape Size".split()
)
PROFILE_DTYPES = {onnx.TensorProto.INT8, onnx.TensorProto.INT32, onnx.TensorProto.INT64, onnx.TensorProto.BOOL}
N_TEST = 360

SPLIT = load_digits_split()


# ---- independent numpy int64 reference ------------------------------------------------------


def _tdiv(a: np.ndarray, d: int) -> np.ndarray:
    """Truncating division by a positive int (toward zero), written independently of the package."""
    a = np.asarray(a, dtype=np.int64)
    return np.sign(a) * (np.abs(a) // d)


def train_reference_numpy(
    steps: int,
    hidden: int = DEFAULT_HIDDEN,
    batch: int = DEFAULT_BATCH,
    frac_bits: int = DEFAULT_FRAC_BITS,
    lr_shift: int = DEFAULT_LR_SHIFT,
    seed: int = DEFAULT_SEED,
) -> dict[str, np.ndarray]:
    """The fixed-point SGD of onnx_models.mlp as a plain numpy int64 loop (no ONNX involved)."""
    F = frac_bits
    p = {k: v.copy() for k, v in init_params(hidden, F, seed).items()}
    X = SPLIT.x_train.astype(np.int64)
    Y = SPLIT.y_train.astype(np.int64)
    n = X.shape[0]
    one = 1 << F
    onehot = np.eye(10, dtype=np.int64) * one
    eclip, wclip = 4 * one, 8 * one
    shift = lr_shift + (batch.bit_length() - 1)
    for t in range(steps):
        rows = (t * batch + np.arange(batch)) % n
        x, y = X[rows], onehot[Y[rows]]
        a1 = _tdiv(x @ p["W1"], 16) + p["b1"]
        h = np.maximum(a1, 0)
        z = _tdiv(h @ p["W2"], one) + p["b2"]
        dz = np.clip(z - y, -eclip, eclip)
        dh = np.where(a1 > 0, _tdiv(dz @ p["W2"].T, one), 0)
        g = {"W1": (x.T @ dh, 1 << (shift + 4)), "b1": (dh.sum(0), 1 << shift),
             "W2": (h.T @ dz, 1 << (shift + F)), "b2": (dz.sum(0), 1 << shift)}
        p = {k: np.clip(p[k] - _tdiv(gk, d), -wclip, wclip) for k, (gk, d) in g.items()}
    return p


def correct_reference_numpy(p: dict[str, np.ndarray], frac_bits: int = DEFAULT_FRAC_BITS) -> int:
    one = 1 << frac_bits
    x = SPLIT.x_test.astype(np.int64)
    h = np.maximum(_tdiv(x @ p["W1"], 16) + p["b1"], 0)
    z = _tdiv(h @ p["W2"], one) + p["b2"]
    return int((z.argmax(1) == SPLIT.y_test).sum())


# ---- engine access --------------------------------------------------------------------------


def _engine():
    import verifier.engine.program as vp

    return vp


def run_engine(model: onnx.ModelProto, fast: bool = True) -> dict[str, np.ndarray]:
    return _engine().load_program(model).run(fast=fast)


def with_steps(model: onnx.ModelProto, steps: int) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for prop in m.metadata_props:
        if prop.key == "bisectml.steps":
            prop.value = str(steps)
    return m


# ---- builders ---------------------------------------------------------------------------------


def test_split_is_fixed() -> None:
    # splitmix64 reference value (seed 0 state 0 -> first output of the standard generator).
    assert splitmix64(0) == 0xE220A8397B1DCDAF
    perm = fixed_permutation(1797)
    assert sorted(perm.tolist()) == list(range(1797))
    assert SPLIT.n_test == N_TEST and SPLIT.n_train == 1797 - N_TEST
    assert SPLIT.x_train.dtype == np.int8 and SPLIT.x_train.min() >= 0 and SPLIT.x_train.max() <= 16
    # Every class is present in both parts and the split is disjoint and complete.
    assert set(SPLIT.y_test.tolist()) == set(range(10)) == set(SPLIT.y_train.tolist())
    # Pinned: the split and the training order must never change silently.
    assert perm[:8].tolist() == [558, 1048, 1486, 992, 1144, 1223, 196, 1035]
    assert int(SPLIT.x_train.astype(np.int64).sum()) == 448797
    assert int(SPLIT.x_test.astype(np.int64).sum()) == 112921


def test_builders_are_deterministic() -> None:
    a = build_training_program().SerializeToString()
    b = build_training_program().SerializeToString()
    assert a == b
    assert build_float_training_graph().SerializeToString() == build_float_training_graph().SerializeToString()
    p = init_params()
    assert build_eval_program(p).SerializeToString() == build_eval_program(p).SerializeToString()
    # Different hyper-parameters give different programs.
    assert build_training_program(seed=1).SerializeToString() != a


def test_bundled_files_are_up_to_date() -> None:
    assert MLP_TRAIN_PATH.read_bytes() == build_training_program().SerializeToString()
    assert MLP_TRAIN_FLOAT_PATH.read_bytes() == build_float_training_graph().SerializeToString()
    r = subprocess.run([sys.executable, "-m", "onnx_models.build", "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("which", ["train", "float", "eval"])
def test_check_model(which: str) -> None:
    model = {
        "train": build_training_program,
        "float": build_float_training_graph,
        "eval": lambda: build_eval_program(init_params()),
    }[which]()
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def _shape_inputs(node: onnx.NodeProto) -> list[str]:
    """Inputs the profile requires to be constants."""
    idx = {"Reshape": [1], "Slice": [1, 2, 3, 4], "Squeeze": [1], "Unsqueeze": [1], "Expand": [1],
           "ReduceSum": [1], "ReduceMax": [1], "ReduceMin": [1]}.get(node.op_type, [])
    return [node.input[i] for i in idx if i < len(node.input) and node.input[i]]


@pytest.mark.parametrize("which", ["train", "eval"])
def test_programs_are_in_the_profile(which: str) -> None:
    model = build_training_program() if which == "train" else build_eval_program(init_params())
    g = model.graph
    roles = program_roles(model)
    inits = {t.name: t for t in g.initializer}
    input_names = [i.name for i in g.input]
    expected = ([roles.step_input] if roles.step_input else []) + list(roles.state) + list(roles.data)
    assert sorted(input_names) == sorted(expected)
    assert all(n in inits for n in input_names), "every input has an initializer"
    assert model.opset_import[0].version >= 17
    assert all(t.data_type in PROFILE_DTYPES for t in g.initializer)
    for node in g.node:
        assert node.op_type in PROFILE_OPS, node.op_type
        for a in node.attribute:
            if node.op_type == "Cast":
                assert a.i in PROFILE_DTYPES
        for name in _shape_inputs(node):
            assert name in inits and name not in input_names, (node.name, name)
    # Every value has a profile dtype (full inference).
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        assert vi.type.tensor_type.elem_type in PROFILE_DTYPES, vi.name
    # Outputs are the next state, same order, dtype and shape.
    assert len(g.output) == len(roles.state)
    by_name = {i.name: i for i in g.input}
    for out, name in zip(g.output, roles.state):
        assert out.type == by_name[name].type
    if roles.step_input:
        t = numpy_helper.to_array(inits[roles.step_input])
        assert t.dtype == np.int64 and t.shape == () and t == 0


def test_overflow_bound() -> None:
    assert overflow_bound(DEFAULT_HIDDEN, DEFAULT_BATCH, DEFAULT_FRAC_BITS) < 2**51
    assert overflow_bound(128, 128, 16) < 2**53
    with pytest.raises(ValueError, match="2\\^53"):
        build_training_program(hidden=512, batch=128, frac_bits=20)
    with pytest.raises(ValueError, match="power of two"):
        build_training_program(batch=48)


def test_float_twin_starts_from_the_same_weights() -> None:
    fi = {t.name: numpy_helper.to_array(t) for t in build_float_training_graph().graph.initializer}
    for k, v in init_params().items():
        assert fi[k].dtype == np.float32
        np.testing.assert_array_equal(fi[k].astype(np.float64) * 2.0**DEFAULT_FRAC_BITS, v.astype(np.float64))


# ---- exactness --------------------------------------------------------------------------------


def test_reference_evaluator_step_matches_numpy_loop() -> None:
    """onnx.reference (ONNX semantics, int Div truncates) on 3 single steps, explicit feeds."""
    from onnx.reference import ReferenceEvaluator

    model = build_training_program()
    ev = ReferenceEvaluator(model)
    roles = program_roles(model)
    state = init_params()
    for t in range(3):
        feeds = {"t": np.array(t, np.int64), **state}
        outs = ev.run(None, feeds)
        state = dict(zip(roles.state, outs))
        ref = train_reference_numpy(t + 1)
        for k in roles.state:
            np.testing.assert_array_equal(state[k], ref[k], err_msg=f"{k} after step {t + 1}")


def test_onnxruntime_int_graph_matches_numpy_loop_full_run() -> None:
    """onnxruntime's integer kernels agree with the profile on these (bounded) values: the whole
    default training, bit for bit."""
    got = run_program_onnxruntime(build_training_program())
    ref = train_reference_numpy(DEFAULT_STEPS)
    for k in ref:
        assert got[k].dtype == np.int64
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hidden=st.sampled_from([1, 5, 16]),
    batch=st.sampled_from([1, 4, 32]),
    frac_bits=st.integers(8, 18),
    lr_shift=st.integers(0, 4),
    seed=st.integers(0, 2**32),
)
def test_small_configs_match_numpy_loop(hidden: int, batch: int, frac_bits: int, lr_shift: int, seed: int) -> None:
    steps = 3
    model = build_training_program(hidden, batch, steps, frac_bits, lr_shift, seed)
    got = run_program_onnxruntime(model)
    ref = train_reference_numpy(steps, hidden, batch, frac_bits, lr_shift, seed)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)


def test_engine_matches_numpy_loop_few_steps() -> None:
    steps = 5
    ref = train_reference_numpy(steps)
    model = build_training_program(steps=steps)
    for fast in (False, True):
        got = run_engine(model, fast=fast)
        for k in ref:
            np.testing.assert_array_equal(np.asarray(got[k]), ref[k], err_msg=f"{k} fast={fast}")


def test_engine_eval_program() -> None:
    p = train_reference_numpy(20)
    got = run_engine(build_eval_program(p), fast=False)
    assert int(got["correct"]) == correct_reference_numpy(p)


# ---- accuracy (full training) -------------------------------------------------------------------


@pytest.mark.slow
def test_fixed_point_training_accuracy_vs_float32_twin() -> None:
    model = onnx.load(str(MLP_TRAIN_PATH))
    fixed = run_engine(model, fast=True)
    ref = train_reference_numpy(DEFAULT_STEPS)
    for k in ref:
        np.testing.assert_array_equal(np.asarray(fixed[k]), ref[k], err_msg=k)
    fixed_correct = int(run_engine(build_eval_program(fixed))["correct"])
    assert fixed_correct == correct_reference_numpy(fixed)

    flt = run_program_onnxruntime(build_float_training_graph(), threads=1)
    float_acc = float_correct(flt) / N_TEST
    fixed_acc = fixed_correct / N_TEST
    assert fixed_acc >= 0.90, fixed_acc
    assert abs(fixed_acc - float_acc) <= 0.03, (fixed_acc, float_acc)
    # Nothing came near the clips (they only make the overflow bound unconditional).
    assert max(int(np.abs(v).max()) for v in fixed.values()) < 2 ** (DEFAULT_FRAC_BITS + 2)


def test_bench_script_smoke() -> None:
    _engine()
    import pathlib

    script = pathlib.Path(__file__).resolve().parents[2] / "bench" / "bench_train.py"
    r = subprocess.run(
        [sys.executable, str(script), "--steps", "20", "--repeat", "1", "--no-accuracy"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "ratio" in r.stdout and "intra_op_num_threads=1" in r.stdout
