"""A PyTorch nn.Sequential as the training builder's layer list (docs/SPEC.md 10).

`layers_of(module)` reads the module's layers (Linear, Conv2d, ReLU, LeakyReLU, MaxPool2d,
AvgPool2d, Flatten; nested Sequentials are read in order) into the description's `layers`, so
`bisectml build train DESCRIPTION --torch net.py` builds the same program as the same layers
written in JSON. Only the architecture is read: the initial weights come from the description's
`seed`, as for any description, so that the program id depends only on the description and the
rows. torch is imported only here and only when asked for; bisectml never needs it otherwise.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

from onnx_models.train import TrainRefused

SUPPORTED = "Linear, Conv2d, ReLU, LeakyReLU, MaxPool2d, AvgPool2d, Flatten"


def _square(v: Any, what: str, where: str) -> int:
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or pair[0] != pair[1]:
        raise TrainRefused(f"{where}: {what} {v!r} is not square; the builder takes one size for both sides.")
    return int(pair[0])


def _walk(module: Any) -> list[Any]:
    from torch import nn

    if not isinstance(module, nn.Sequential):
        raise TrainRefused(
            f"the torch model is a {type(module).__name__}, not an nn.Sequential; write its layers as one nn.Sequential."
        )
    out: list[Any] = []
    for child in module:
        out.extend(_walk(child) if isinstance(child, nn.Sequential) else [child])
    return out


def layers_of(module: Any) -> list[dict[str, Any]]:
    """The description's `layers` for an nn.Sequential, refusing with one line what the
    training builder does not build (naming the layer and what to change)."""
    from torch import nn

    layers: list[dict[str, Any]] = []
    for i, la in enumerate(_walk(module)):
        where = f"layer {i} ({type(la).__name__})"
        if isinstance(la, nn.Linear):
            if la.bias is None:
                raise TrainRefused(f"{where}: bias=False is not supported; the builder's linear layers have a bias.")
            layers.append({"type": "linear", "out": int(la.out_features)})
        elif isinstance(la, nn.Conv2d):
            if la.bias is None or la.groups != 1 or _square(la.dilation, "dilation", where) != 1:
                raise TrainRefused(f"{where}: only bias=True, groups=1 and dilation=1 are supported; change the layer.")
            if la.padding_mode != "zeros" or isinstance(la.padding, str):
                raise TrainRefused(f"{where}: padding must be a number of zeros (padding_mode 'zeros').")
            layers.append({
                "type": "conv2d", "out_channels": int(la.out_channels), "kernel": _square(la.kernel_size, "kernel", where),
                "stride": _square(la.stride, "stride", where), "padding": _square(la.padding, "padding", where),
            })  # fmt: skip
        elif isinstance(la, (nn.MaxPool2d, nn.AvgPool2d)):
            kind = "maxpool2d" if isinstance(la, nn.MaxPool2d) else "avgpool2d"
            dilation = getattr(la, "dilation", 1)
            if _square(la.padding, "padding", where) != 0 or la.ceil_mode or _square(dilation, "dilation", where) != 1:
                raise TrainRefused(f"{where}: padding, dilation and ceil_mode are not supported for pooling; remove them.")
            if kind == "avgpool2d" and la.divisor_override is not None:
                raise TrainRefused(f"{where}: divisor_override is not supported; remove it.")
            kernel = _square(la.kernel_size, "kernel", where)
            layers.append({"type": kind, "kernel": kernel, "stride": _square(la.stride or kernel, "stride", where)})
        elif isinstance(la, nn.Flatten):
            if la.start_dim != 1 or la.end_dim != -1:
                raise TrainRefused(f"{where}: only Flatten() over every dimension but the batch is supported.")
            layers.append({"type": "flatten"})
        elif isinstance(la, nn.ReLU):
            layers.append({"type": "relu"})
        elif isinstance(la, nn.LeakyReLU):
            layers.append({"type": "leaky_relu", "alpha": float(la.negative_slope)})
        else:
            raise TrainRefused(f"{where} is not supported by the training builder; use {SUPPORTED}.")
    if not layers:
        raise TrainRefused("the torch model has no layers; give an nn.Sequential of " + SUPPORTED + ".")
    return layers


def load_sequential(reference: str) -> Any:
    """The module a Python file defines, `FILE.py` (its `model`) or `FILE.py:NAME`. The file is
    run as the user's own code, as `python FILE.py` would."""
    path_text, _, name = reference.partition(":")
    path, name = Path(path_text), name or "model"
    if not path.is_file():
        raise TrainRefused(f"no Python file '{path}'; pass --torch FILE.py or FILE.py:NAME.")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise TrainRefused("--torch needs PyTorch; install it (pip install torch) or write the layers in JSON.") from None
    try:
        namespace = runpy.run_path(str(path), run_name="__bisectml__")
    except Exception as e:  # noqa: BLE001 - the user's file may raise anything
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise TrainRefused(f"running '{path}' failed: {type(e).__name__}: {first}; fix the file.") from None
    if name not in namespace:
        raise TrainRefused(f"'{path}' defines no '{name}'; name the module, as in --torch {path}:NAME.")
    return namespace[name]


def check_rows(module: Any, row_shape: tuple[int, ...]) -> None:
    """The module must take rows of the data's shape, as the description will be built on them."""
    import torch
    from torch import nn

    shape = tuple(row_shape)
    first = _walk(module)[0]
    if len(shape) == 2 and isinstance(first, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        shape = (1, *shape)  # rows (H, W) are one channel to the builder
    try:
        with torch.no_grad():
            module.eval()(torch.zeros((1, *shape)))
    except Exception as e:  # noqa: BLE001 - a shape mismatch surfaces as a RuntimeError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TrainRefused(
            f"the torch model does not take rows of shape {list(row_shape)}: {first}; match its first layer to the data."
        ) from None


__all__ = ["check_rows", "layers_of", "load_sequential"]
