"""Base class and registry for the profile's ops, in the manner of onnx.reference.

An op has three parts that must agree with docs/SPEC.md and with the on-chain verifier:
- `canonicalize`: turns an ONNX node (any supported opset) into the canonical form that the
  node descriptor commits to: which inputs stay runtime inputs, and a tuple of ints `attrs`
  (shape-determining constant inputs such as Reshape's shape are folded into `attrs`; static
  shapes make every such value known at load).
- `infer`: static output type from input types and `attrs`.
- `run`: the reference semantics over numpy arrays (the definition of the profile).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import onnx

from verifier.core.dtypes import DType, TensorType
from verifier.core.errors import ShapeError, UnsupportedOpError


@dataclass(frozen=True)
class CanonContext:
    """What `canonicalize` may know about a node at load time."""

    node: onnx.NodeProto
    opset: int
    # Static types of node.input[i]; None for an absent optional input ("").
    in_types: tuple[TensorType | None, ...]
    # Values of node.input[i] when they are constants (initializers or folded), else None.
    const_values: tuple[np.ndarray | None, ...]

    @property
    def where(self) -> str:
        name = self.node.name or (self.node.output[0] if self.node.output else "?")
        return f"node '{name}' ({self.node.op_type})"

    def attr(self, name: str, default: object = None) -> object:
        for a in self.node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def attr_names(self) -> set[str]:
        return {a.name for a in self.node.attribute}

    def unsupported(self, what: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.where}: {what}")

    def shape_error(self, what: str) -> ShapeError:
        return ShapeError(f"{self.where}: {what}")

    def require_const(self, i: int, what: str) -> np.ndarray:
        """Value of a shape-determining input, which the profile requires to be constant."""
        v = self.const_values[i] if i < len(self.const_values) else None
        if v is None:
            raise self.unsupported(
                f"input {i} ({what}) must be a constant (initializer or Constant node) so that "
                "every shape is static; compute it ahead of time."
            )
        return v


@dataclass(frozen=True)
class Canonical:
    """Result of canonicalization: `inputs` are indices into node.input (None = absent)."""

    inputs: tuple[int | None, ...]
    attrs: tuple[int, ...] = ()


class Op:
    """One op of the profile. Subclasses set `name`, `code` and implement the three parts."""

    name: ClassVar[str]
    code: ClassVar[int]
    # ONNX op_types that canonicalize to this op (defaults to (name,)).
    onnx_names: ClassVar[tuple[str, ...]] = ()
    # Oldest ONNX schema version whose semantics this op implements; before opset 7, most ops
    # broadcast only with a `broadcast` attribute, so older schemas are refused at load.
    min_since: ClassVar[int] = 7

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        raise NotImplementedError

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        raise NotImplementedError

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError


REGISTRY: dict[str, Op] = {}  # ONNX op_type -> op
BY_CODE: dict[int, Op] = {}  # descriptor op code -> op


def register(cls: type[Op]) -> type[Op]:
    op = cls()
    if op.code in BY_CODE:
        raise RuntimeError(f"op code {op.code} registered twice ({BY_CODE[op.code].name}, {op.name})")
    BY_CODE[op.code] = op
    for n in cls.onnx_names or (cls.name,):
        REGISTRY[n] = op
    return cls


# Fast backends: op name -> callable with the same signature as Op.run, proven equal to the
# reference by verifier.engine.fastpath's self-test before use.
FastKernel = Callable[[Sequence["np.ndarray | None"], tuple[int, ...]], "np.ndarray"]
FAST: dict[str, FastKernel] = {}


__all__ = [
    "BY_CODE",
    "FAST",
    "REGISTRY",
    "CanonContext",
    "Canonical",
    "DType",
    "FastKernel",
    "Op",
    "TensorType",
    "register",
]
