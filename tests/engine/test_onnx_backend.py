"""Conformance: every integer case of ONNX's own backend node suite inside the profile.

The selection is computed, never skipped: a case whose ops and dtypes are in the profile must
load and reproduce ONNX's expected outputs bit for bit, on the reference and the fast path.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from verifier.core.dtypes import DType
from verifier.engine.graph import _FOLDED, SHAPE_INPUTS, load_graph
from verifier.engine.ops import REGISTRY

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the suite's own float builders warn on overflow
    from onnx.backend.test.case.node import collect_testcases

    _ALL = collect_testcases()

_PROFILE_DTYPES = {int(d) for d in DType}
# The suite holds 62 such cases for onnx 1.23; fewer means the selection silently shrank.
MIN_CASES = 60


def _in_profile(case) -> bool:
    if case.model is None:
        return False
    g = case.model.graph
    ops = {n.op_type for n in g.node}
    if not ops <= set(REGISTRY) | set(_FOLDED):
        return False
    types = {vi.type.tensor_type.elem_type for vi in list(g.input) + list(g.output)}
    types |= {t.data_type for t in g.initializer}
    return types <= _PROFILE_DTYPES


CASES = sorted((c for c in _ALL if _in_profile(c)), key=lambda c: c.name)


def test_selection_is_not_empty() -> None:
    assert len(CASES) >= MIN_CASES, [c.name for c in CASES]


@pytest.mark.parametrize("fast", [False, True], ids=["reference", "fast"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backend_case(case, fast: bool) -> None:
    g = case.model.graph
    names = [vi.name for vi in g.input if vi.name not in {t.name for t in g.initializer}]
    # Inputs that set a shape (e.g. Reduce axes) are bound as constants, as the profile requires.
    shape_names = {n.input[i] for n in g.node for i in SHAPE_INPUTS.get(n.op_type, ()) if i < len(n.input)}
    assert case.data_sets, case.name
    for inputs, expected in case.data_sets:
        feeds = dict(zip(names, inputs))
        bind = {k: v for k, v in feeds.items() if k in shape_names}
        graph = load_graph(case.model, bind=bind)
        got = graph.run({k: v for k, v in feeds.items() if k not in bind}, fast=fast)
        for name, want in zip(graph.output_names, expected):
            want = np.asarray(want)
            assert got[name].dtype == want.dtype, (name, got[name].dtype, want.dtype)
            assert got[name].shape == want.shape, (name, got[name].shape, want.shape)
            np.testing.assert_array_equal(got[name], want)
