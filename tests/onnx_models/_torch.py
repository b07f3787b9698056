"""Real PyTorch models, trained in the test on scikit-learn's bundled digits and written by
torch.onnx.export itself: the TorchScript exporter (opset 17) and the torch.export-based one
(opset 18), each with a dynamic batch, as a user would export them."""

from __future__ import annotations

import io
import warnings
from functools import cache

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch extra: pip install -e '.[test,torch]'")
nn = torch.nn

from _imported import split  # noqa: E402

EXPORTERS = ("torchscript", "dynamo")


class Residual(nn.Module):
    """conv-relu, then conv-batchnorm added back to its input, relu, max-pool and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):  # noqa: ANN001, ANN201
        h = torch.relu(self.conv1(x))
        y = torch.relu(self.bn(self.conv2(h)) + h)
        return self.fc(torch.flatten(self.pool(y), 1))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.LeakyReLU(0.1), nn.Dropout(0.1), nn.Linear(32, 10))


def _mlp_softmax() -> nn.Module:
    """Probabilities as the output: the Softmax is computed, not dropped."""
    return nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 16), nn.Sigmoid(), nn.Linear(16, 10), nn.Softmax(dim=1))


def _convnet() -> nn.Module:
    """ReLU6 (Clip), average pooling, a grouped convolution, global average pooling (a ReduceMean
    from the torch.export exporter)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU6(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, groups=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


class Padded(nn.Module):
    """Pools that pad, as a ResNet stem and Keras' padding='same' write them: a max pool of
    3 by 3 with stride 2 and padding 1, each channel less the row's channel mean (a Sub that
    broadcasts), an average pool that leaves the padding out of its count and one in ceil_mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.avg = nn.AvgPool2d(3, 1, padding=1, count_include_pad=False)
        self.ceil = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):  # noqa: ANN001, ANN201
        h = self.pool(torch.relu(self.conv(x)))
        h = self.avg(h - h.mean(dim=1, keepdim=True))
        return self.fc(torch.flatten(self.ceil(h), 1))


def _gated() -> nn.Module:
    """Gates that multiply two activations: SiLU (x * sigmoid(x)), GELU (x * phi(x)), Mish."""
    return nn.Sequential(nn.Linear(64, 32), nn.SiLU(), nn.Linear(32, 16), nn.GELU(), nn.Linear(16, 16), nn.Mish(), nn.Linear(16, 10))


def _conv1d() -> nn.Module:
    return nn.Sequential(nn.Conv1d(1, 4, 5, stride=2, padding=2), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(64, 10))


MODELS = {
    "mlp": (_mlp, (64,)),
    "mlp_softmax": (_mlp_softmax, (64,)),
    "convnet": (_convnet, (1, 8, 8)),
    "residual": (Residual, (1, 8, 8)),
    "padded": (Padded, (1, 8, 8)),
    "gated": (_gated, (64,)),
    "conv1d": (_conv1d, (1, 64)),
}


@cache
def digits(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits split, pixels in [0, 1], rows shaped as the model takes them."""
    x_train, x_test, y_train, y_test = split("digits")
    shape = (-1, *MODELS[name][1])
    return (x_train / 16).reshape(shape), (x_test / 16).reshape(shape), y_train, y_test


@cache
def trained(name: str) -> nn.Module:
    """The model trained with Adam for 40 epochs (one thread, seeded: the same weights every run)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = MODELS[name][0]()
    x_train, _, y_train, _ = digits(name)
    x, y = torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    for _ in range(40):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            out = model(x[i : i + 64])
            if name == "mlp_softmax":
                loss = nn.functional.nll_loss(torch.log(out + 1e-9), y[i : i + 64])
            else:
                loss = nn.functional.cross_entropy(out, y[i : i + 64])
            loss.backward()
            opt.step()
    return model.eval()


@cache
def exported(name: str, exporter: str) -> bytes:
    """The trained model as torch.onnx.export writes it."""
    return export(trained(name), MODELS[name][1], exporter)


def export(model: nn.Module, row: tuple[int, ...], exporter: str) -> bytes:
    """`model` (rows of shape `row`) as `exporter` writes it, with a dynamic batch."""
    example = (torch.zeros((2, *row)),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        if exporter == "torchscript":
            f = io.BytesIO()
            torch.onnx.export(
                model, example, f, dynamo=False, opset_version=17, input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            )  # fmt: skip
            return f.getvalue()
        program = torch.onnx.export(
            model, example, dynamo=True, opset_version=18, input_names=["input"], output_names=["output"],
            dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False,
        )  # fmt: skip
        return program.model_proto.SerializeToString()


def float_accuracy(name: str) -> float:
    _, x_test, _, y_test = digits(name)
    with torch.no_grad():
        scores = trained(name)(torch.tensor(x_test, dtype=torch.float32)).numpy()
    return float(np.mean(scores.argmax(axis=1) == y_test)) * 100
