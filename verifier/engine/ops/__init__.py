"""The integer profile: every op bisectml runs, one class per op (see docs/SPEC.md, "Ops")."""

from __future__ import annotations

from ._base import BY_CODE, FAST, REGISTRY, CanonContext, Canonical, Op, register

# Importing the modules registers their ops.
from . import elementwise, linalg, reduce, shape  # noqa: E402,F401

__all__ = ["BY_CODE", "FAST", "REGISTRY", "CanonContext", "Canonical", "Op", "register"]
