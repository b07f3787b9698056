"""Exception hierarchy: one root, builtin mixins, messages that end with what to do."""

from __future__ import annotations


class BisectmlError(Exception):
    """Root of every error bisectml raises on purpose."""


class ModelLoadError(BisectmlError, ValueError):
    """The ONNX file cannot be read or is not a well-formed model."""


class UnsupportedOpError(BisectmlError, ValueError):
    """A node uses an op, attribute or dtype outside the integer profile."""


class ShapeError(BisectmlError, ValueError):
    """Shapes do not fit: wrong input shape, bad broadcast, oversized tensor."""


class ProgramError(BisectmlError, ValueError):
    """A program's roles, initial state or step count are inconsistent."""


class ProofError(BisectmlError, ValueError):
    """An opening or Merkle proof does not verify."""


class TraceError(BisectmlError, RuntimeError):
    """A trace directory is missing, corrupt or belongs to another program."""
