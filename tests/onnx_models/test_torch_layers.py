"""`bisectml build train --torch net.py`: a PyTorch nn.Sequential as the training builder's
layer list. The same layers give the same program as their JSON description (same program id),
and what the builder does not build is refused with one line that names the layer, writing
nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="the torch extra: pip install -e '.[test,torch]'")

from cli import app  # noqa: E402
from onnx_models import torch_layers  # noqa: E402
from onnx_models.train import TrainRefused  # noqa: E402

REST = {"loss": "softmax_cross_entropy", "optimizer": {"lr": 0.25, "momentum": 0.5}, "schedule": {"steps": 4, "batch": 16}}
CONVNET = """
from torch import nn
model = nn.Sequential(
    nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.125)),
    nn.MaxPool2d(2), nn.Conv2d(4, 4, (3, 3), stride=1), nn.ReLU(), nn.AvgPool2d(2, stride=2),
    nn.Flatten(), nn.Linear(4, 10),
)
"""
LAYERS = [
    {"type": "conv2d", "out_channels": 4, "kernel": 3, "stride": 1, "padding": 1},
    {"type": "leaky_relu", "alpha": 0.125},
    {"type": "maxpool2d", "kernel": 2, "stride": 2},
    {"type": "conv2d", "out_channels": 4, "kernel": 3, "stride": 1, "padding": 0},
    {"type": "relu"},
    {"type": "avgpool2d", "kernel": 2, "stride": 2},
    {"type": "flatten"},
    {"type": "linear", "out": 10},
]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    x, y = load_digits(return_X_y=True)
    np.savez(tmp_path / "train.npz", X=x[:200].reshape(-1, 8, 8), y=y[:200])
    (tmp_path / "net.py").write_text(CONVNET)
    (tmp_path / "rest.json").write_text(json.dumps(REST))
    (tmp_path / "full.json").write_text(json.dumps({**REST, "layers": LAYERS}))
    return {"data": tmp_path / "train.npz", "net": tmp_path / "net.py", "rest": tmp_path / "rest.json",
            "full": tmp_path / "full.json", "out": tmp_path / "out"}  # fmt: skip


def _build(files: dict[str, Path], *args: str):  # noqa: ANN202
    return CliRunner().invoke(app, ["build", "train", *args, "--data", str(files["data"]), "--json"])


def test_sequential__same_program_as_its_json_description(files: dict[str, Path]) -> None:
    module = torch_layers.load_sequential(str(files["net"]))
    assert torch_layers.layers_of(module) == LAYERS
    from_torch = _build(files, str(files["rest"]), "--torch", str(files["net"]), "--out", str(files["out"]) + "-t.onnx")
    from_json = _build(files, str(files["full"]), "--out", str(files["out"]) + "-j.onnx")
    assert from_torch.exit_code == 0, from_torch.output
    assert from_json.exit_code == 0, from_json.output
    a, b = json.loads(from_torch.stdout), json.loads(from_json.stdout)
    assert a["program_id"] == b["program_id"] and a["layers"] == b["layers"]
    assert Path(a["out"]).read_bytes() == Path(b["out"]).read_bytes()


BAD_LAYERS = {
    "dropout": ("nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, 10))", "layer 1 (Dropout) is not supported"),
    "batchnorm": ("nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(72, 10))", "layer 1 (BatchNorm2d) is not supported"),
    "groups": ("nn.Sequential(nn.Conv2d(1, 2, 3, groups=1, dilation=2), nn.Flatten(), nn.Linear(32, 10))", "layer 0 (Conv2d): only bias=True, groups=1 and dilation=1"),
    "rectangle": ("nn.Sequential(nn.Conv2d(1, 2, (3, 1)), nn.Flatten(), nn.Linear(96, 10))", "layer 0 (Conv2d): kernel (3, 1) is not square"),
    "no bias": ("nn.Sequential(nn.Flatten(), nn.Linear(64, 10, bias=False))", "layer 1 (Linear): bias=False is not supported"),
    "pool padding": ("nn.Sequential(nn.MaxPool2d(2, padding=1), nn.Flatten(), nn.Linear(25, 10))", "layer 0 (MaxPool2d): padding, dilation and ceil_mode"),
    "not sequential": ("nn.Linear(64, 10)", "the torch model is a Linear, not an nn.Sequential"),
    "wrong width": ("nn.Sequential(nn.Flatten(), nn.Linear(63, 10))", "the torch model does not take rows of shape [8, 8]"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_LAYERS))
def test_refused__one_line_names_the_layer_nothing_written(files: dict[str, Path], case: str) -> None:
    source, message = BAD_LAYERS[case]
    files["net"].write_text(f"from torch import nn\nmodel = {source}\n")
    res = _build(files, str(files["rest"]), "--torch", str(files["net"]), "--out", str(files["out"]))
    assert res.exit_code == 2
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not files["out"].exists()


def test_refused__file_name_and_layers_twice(files: dict[str, Path]) -> None:
    cases = [
        (str(files["rest"]), str(files["net"]) + ":net", "defines no 'net'"),
        (str(files["full"]), str(files["net"]), "has its own layers"),
        (str(files["rest"]), str(files["net"].with_name("missing.py")), "no Python file"),
    ]
    files["net"].with_name("raises.py").write_text("raise ValueError('broken on purpose')\n")
    cases.append((str(files["rest"]), str(files["net"].with_name("raises.py")), "ValueError: broken on purpose"))
    for description, reference, message in cases:
        res = _build(files, description, "--torch", reference, "--out", str(files["out"]))
        assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not files["out"].exists()


def test_layers_of__refuses_an_empty_sequential() -> None:
    with pytest.raises(TrainRefused, match="has no layers"):
        torch_layers.layers_of(torch.nn.Sequential())
