"""Networks the tests did not write: random stacks of the layers the importer maps (1-D and 2-D
convolutions of any stride, padding, dilation and groups; max and average pools that pad,
stride or round their size up; BatchNorm; residual adds; concatenations; each channel less the
channel mean; scaling by a constant; every mapped activation, GELU, SiLU, Mish, PReLU and LogSoftmax among them), exported by both of
torch.onnx.export's exporters. Each imports, and on fresh rows its integer outputs stay within
3% of the float model's range with the same top class on at least 90% of rows. A network with a
layer outside the mapping is refused in one line naming the node."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch extra: pip install -e '.[test,torch]'")
nn = torch.nn

from _torch import export  # noqa: E402

from onnx_models import importer  # noqa: E402

ACTIVATIONS = [
    nn.ReLU, lambda: nn.LeakyReLU(0.1), nn.ReLU6, nn.Sigmoid, nn.Tanh, lambda: nn.Hardtanh(-0.5, 0.5), nn.Identity,
    nn.GELU, lambda: nn.GELU(approximate="tanh"), nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.ELU, nn.Mish,
    nn.PReLU, nn.SELU, nn.CELU, lambda: nn.LogSoftmax(dim=1),
]  # fmt: skip


class RandomNet(nn.Module):
    """A seeded random stack; `size` tracks the spatial extent so that every layer fits."""

    def __init__(self, seed: int, extra: nn.Module | None = None) -> None:
        super().__init__()
        rng = random.Random(seed)
        self.dims = rng.choice([1, 2])
        conv, bn = (nn.Conv2d, nn.BatchNorm2d) if self.dims == 2 else (nn.Conv1d, nn.BatchNorm1d)
        pools = (nn.MaxPool2d, nn.AvgPool2d) if self.dims == 2 else (nn.MaxPool1d, nn.AvgPool1d)
        self.channels, self.size = 3, (8 if self.dims == 2 else 16)
        c, size = self.channels, self.size
        self.layers = nn.ModuleList()
        self.plan: list[tuple[str, int]] = []
        for _ in range(rng.randint(2, 5)):
            kind = rng.choice(["conv", "act", "pool", "bn", "res", "cat", "center", "scale"])
            if kind == "conv":
                groups = rng.choice([g for g in (1, c) if c % g == 0])
                out, k, s, d, p = groups * rng.choice([1, 2]), rng.choice([1, 3]), rng.choice([1, 2]), rng.choice([1, 2]), rng.choice([0, 1])
                new = (size + 2 * p - d * (k - 1) - 1) // s + 1
                if new < 2:
                    continue
                self._add("layer", conv(c, out, k, stride=s, padding=p, dilation=d, groups=groups))
                c, size = out, new
            elif kind == "act":
                self._add("layer", rng.choice(ACTIVATIONS)())
            elif kind == "pool" and size >= 4:
                pool, k, s = rng.choice(pools), rng.choice([2, 3, 3]), rng.choice([1, 2])
                p, ceil = (rng.choice([0, 1, 1]) if k == 3 else 0), rng.random() < 0.3
                kw = {"count_include_pad": rng.random() < 0.5} if pool in (nn.AvgPool2d, nn.AvgPool1d) else {}
                layer = pool(k, s, padding=p, ceil_mode=ceil, **kw)
                self._add("layer", layer)
                size = int(layer(torch.zeros(1, 1, *[size] * self.dims)).shape[-1])
            elif kind == "bn":
                norm = bn(c)
                norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2), norm.weight.data.uniform_(0.5, 1.5)
                self._add("layer", norm)
            elif kind == "res":
                self._add("res", conv(c, c, 3, padding=1))
            elif kind == "cat":
                self._add("cat", conv(c, 2, 1))
                c += 2
            else:
                self.plan.append((kind, 0))
        if extra is not None:
            self._add("layer", extra)
        self.head = nn.Linear(c * size**self.dims, 10)

    def _add(self, how: str, layer: nn.Module) -> None:
        self.layers.append(layer)
        self.plan.append((how, len(self.layers) - 1))

    def forward(self, x):  # noqa: ANN001, ANN201
        for how, i in self.plan:
            if how == "layer":
                x = self.layers[i](x)
            elif how == "res":
                x = torch.relu(self.layers[i](x) + x)
            elif how == "cat":
                x = torch.cat([x, self.layers[i](x)], 1)
            elif how == "center":
                x = x - x.mean(dim=1, keepdim=True)
            else:
                x = x * 0.5
        return self.head(torch.flatten(x, 1))


def _exported(net: RandomNet, exporter: str) -> tuple[bytes, tuple[int, ...]]:
    shape = (net.channels, *[net.size] * net.dims)
    return export(net, shape, exporter), shape


@pytest.mark.parametrize("seed", range(20))
def test_random_network__imports_close_to_the_float_model(seed: int) -> None:
    torch.manual_seed(seed)
    net = RandomNet(seed).eval()
    model, shape = _exported(net, "torchscript" if seed % 2 else "dynamo")
    x = np.random.default_rng(seed).uniform(0, 1, (200, *shape)).astype(np.float32)
    imp = importer.import_model(model, x[:150], batch=16)
    floats = importer.run_float(importer.read_float_model(model), x[150:], ["output"])["output"]
    ints = importer.run_integer(imp, x[150:])[imp.model.graph.output[0].name] * float(imp.output_scale)
    span = float(np.abs(floats).max())
    assert np.abs(ints - floats).max() < 0.03 * span, net.plan
    assert np.mean(ints.argmax(axis=1) == floats.argmax(axis=1)) >= 0.9, net.plan


@pytest.mark.parametrize(
    ("layer", "refusal"),
    [(nn.Softsign(), "(Div): a quotient of two activations is not supported"),
     (nn.Hardshrink(), "(Or) is not supported by the importer"), (nn.LogSigmoid(), "(Log) is not supported by the importer")],
)  # fmt: skip
def test_random_network_with_an_unmapped_layer__refused_in_one_line(layer: nn.Module, refusal: str) -> None:
    torch.manual_seed(0)
    model, shape = _exported(RandomNet(3, extra=layer).eval(), "torchscript")
    with pytest.raises(importer.ImportRefused) as e:
        importer.import_model(model, np.random.default_rng(0).uniform(0, 1, (32, *shape)).astype(np.float32))
    text = str(e.value)
    assert refusal in text and "\n" not in text
