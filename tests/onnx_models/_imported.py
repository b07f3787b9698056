"""Float models as real exporters write them, built in the tests from scikit-learn's bundled data."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
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
    return tuple(train_test_split(x.astype(np.float32), y, test_size=0.3, random_state=0))  # type: ignore[return-value]


@cache
def exported(dataset: str, kind: str) -> bytes:
    """skl2onnx's export (with its ZipMap tail) of a scikit-learn pipeline fitted on the split."""
    x_train, _, y_train, _ = split(dataset)
    est = MLPClassifier((16,), max_iter=500, random_state=0) if kind == "mlp" else LogisticRegression(max_iter=2000)
    model = make_pipeline(StandardScaler(), est).fit(x_train, y_train)
    return to_onnx(model, x_train[:1]).SerializeToString()


def _digit_images() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return tuple(train_test_split(x, y, test_size=0.3, random_state=0))  # type: ignore[return-value]


def _convnet_graph(residual: bool, head: tuple[np.ndarray, np.ndarray] | None) -> onnx.ModelProto:
    """A small convnet on 8x8 digits as torch.onnx.export writes one (node names, opset 17,
    a dynamic batch): conv-relu, then conv-batchnorm with a residual add (or a plain relu),
    max-pool, flatten and, given a head, a Gemm."""
    rng = np.random.default_rng(0)
    c = 8
    arrays = {
        "conv1.weight": rng.normal(0, 0.5, (c, 1, 3, 3)), "conv1.bias": rng.normal(0, 0.1, c),
        "conv2.weight": rng.normal(0, 0.3, (c, c, 3, 3)), "bn.weight": rng.uniform(0.5, 1.5, c),
        "bn.bias": rng.normal(0, 0.1, c), "bn.running_mean": rng.normal(0, 0.1, c), "bn.running_var": rng.uniform(0.5, 2, c),
    }  # fmt: skip
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrays.items()]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["/conv1/Conv_output_0"], name="/conv1/Conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["/conv1/Conv_output_0"], ["/relu1/Relu_output_0"], name="/relu1/Relu"),
        helper.make_node("Conv", ["/relu1/Relu_output_0", "conv2.weight"], ["/conv2/Conv_output_0"], name="/conv2/Conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["/conv2/Conv_output_0", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
                         ["/bn/BatchNormalization_output_0"], name="/bn/BatchNormalization"),
    ]  # fmt: skip
    last = "/bn/BatchNormalization_output_0"
    if residual:
        nodes.append(helper.make_node("Add", [last, "/relu1/Relu_output_0"], ["/Add_output_0"], name="/Add"))
        last = "/Add_output_0"
    nodes += [
        helper.make_node("Relu", [last], ["/relu2/Relu_output_0"], name="/relu2/Relu"),
        helper.make_node("MaxPool", ["/relu2/Relu_output_0"], ["/pool/MaxPool_output_0"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["/pool/MaxPool_output_0"], ["/Flatten_output_0"], name="/Flatten", axis=1),
    ]  # fmt: skip
    out = helper.make_tensor_value_info("/Flatten_output_0", TensorProto.FLOAT, ["batch", c * 16])
    if head is not None:
        inits += [numpy_helper.from_array(head[0], "fc.weight"), numpy_helper.from_array(head[1], "fc.bias")]
        nodes.append(
            helper.make_node(
                "Gemm", ["/Flatten_output_0", "fc.weight", "fc.bias"], ["output"], name="/fc/Gemm", transB=1
            )
        )
        out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 10])
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])
    model = helper.make_model(
        helper.make_graph(nodes, "main_graph", [inp], [out], inits),
        opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8,
    )
    model.producer_name = "pytorch"
    return model


@cache
def convnet(residual: bool) -> bytes:
    """The convnet with its fully connected head fitted (by logistic regression) on the
    features of its fixed convolutions: a real classifier, trained without torch."""
    x_train, _, y_train, _ = image_split()
    session = ort.InferenceSession(
        _convnet_graph(residual, None).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    features = session.run(None, {"input": x_train})[0]
    head = LogisticRegression(max_iter=3000).fit(features, y_train)
    return _convnet_graph(
        residual, (head.coef_.astype(np.float32), head.intercept_.astype(np.float32))
    ).SerializeToString()


@cache
def image_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return _digit_images()


@cache
def quantized(model: bytes, fmt: str, calibration_key: str) -> bytes:
    """onnxruntime's quantization tools: static QDQ or QOperator (per-channel weights,
    calibrated on 256 training rows) or dynamic. "digits/16" calibrates on the digits as the
    torch models take them: pixels in [0, 1], shaped as the model's input."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_dynamic, quantize_static

    proto = onnx.load_model_from_string(model)
    name = proto.graph.input[0].name
    if calibration_key == "digits/16":
        row = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim[1:]]
        x_train = (split("digits")[0] / 16).astype(np.float32).reshape(-1, *row)
    else:
        x_train = image_split()[0] if calibration_key == "images" else split(calibration_key)[0]

    class Rows(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{name: x_train[i : i + 16]} for i in range(0, 256, 16)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(prefix="bisectml-quant-") as d:
        src, dst = Path(d) / "float.onnx", Path(d) / "quant.onnx"
        src.write_bytes(model)
        if fmt == "dynamic":
            quantize_dynamic(src, dst)
        else:
            quantize_static(
                src,
                dst,
                Rows(),
                quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                per_channel=True,
            )
        return dst.read_bytes()
