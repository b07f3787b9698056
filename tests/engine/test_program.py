"""Programs: roles, validation, and running without commitments."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnx_models.toy import accumulator_numpy, accumulator_program, accumulator_step
from verifier.core.errors import ProgramError, ShapeError
from verifier.engine.graph import SlotKind
from verifier.engine.program import load_program, make_program


def test_program__slot_roles_in_spec_order() -> None:
    p = load_program(accumulator_program())
    kinds = [s.kind for s in p.graph.slots]
    assert kinds[:4] == [SlotKind.STEP, SlotKind.STATE, SlotKind.STATE, SlotKind.DATA]
    assert kinds == sorted(kinds)
    assert p.step_slot == 0 and p.state_slots == [1, 2] and p.data_slots == [3]
    # acc_next is a node output; w's next value is w itself
    assert p.graph.slots[p.next_slots[0]].name == "acc_next" and p.next_slots[1] == 2


@pytest.mark.parametrize("steps", [1, 7, 12])
def test_program__run_matches_independent_numpy(steps: int) -> None:
    p = load_program(accumulator_program(steps=steps))
    for fast in (False, True):
        np.testing.assert_array_equal(p.run(fast=fast)["acc"], accumulator_numpy(steps))


def test_program__id_is_deterministic_and_binds_steps_and_data() -> None:
    a = load_program(accumulator_program())
    b = load_program(accumulator_program().SerializeToString())
    assert a.id == b.id and len(a.id) == 32
    assert load_program(accumulator_program(), steps=11).id != a.id
    assert load_program(accumulator_program(seed=1)).id != a.id
    assert a.data_root != bytes(32)


def test_boundary_descriptor__layout() -> None:
    p = load_program(accumulator_program())
    d = p.boundary_descriptor()
    S, first = p.n_slots, p.graph.first_node_slot
    assert d == bytes([0xFF]) + S.to_bytes(2, "big") + first.to_bytes(2, "big") + (0).to_bytes(2, "big") + (2).to_bytes(
        2, "big"
    ) + b"".join(s.to_bytes(2, "big") + n.to_bytes(2, "big") for s, n in zip(p.state_slots, p.next_slots))


def one_line(e: BaseException) -> str:
    assert "\n" not in str(e) and str(e).endswith("."), str(e)
    return str(e)


def test_program__plain_graph_is_not_a_program() -> None:
    with pytest.raises(ProgramError) as e:
        load_program(accumulator_step())
    assert "bisectml.state" in one_line(e.value)


def test_program__state_changing_shape__refused() -> None:
    model = accumulator_program()
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 4
    with pytest.raises(ShapeError):
        load_program(model)


def test_program__bad_metadata__refused() -> None:
    def with_meta(**kv: str) -> onnx.ModelProto:
        m = accumulator_program()
        for p in m.metadata_props:
            key = p.key.removeprefix("bisectml.")
            if key in kv:
                p.value = kv[key]
        return m

    with pytest.raises(ProgramError) as e:
        load_program(with_meta(steps="ten"))
    assert "not an integer" in one_line(e.value)
    with pytest.raises(ProgramError):
        load_program(with_meta(steps="0"))
    with pytest.raises(ProgramError) as e:
        load_program(with_meta(data="x,acc"))
    assert "more than one role" in one_line(e.value)


def test_program__step_input_must_be_int64_scalar() -> None:
    nodes = [
        helper.make_node("Cast", ["t"], ["t64"], to=TensorProto.INT64, name="cast"),
        helper.make_node("Add", ["s", "t64"], ["s_next"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("t", TensorProto.INT32, []), helper.make_tensor_value_info("s", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("s_next", TensorProto.INT64, [1])],
    )
    step = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    bad = make_program(step, steps=3, state={"s": np.zeros(1, np.int64)})
    bad.graph.initializer.append(helper.make_tensor("t", TensorProto.INT32, [], [0]))
    bad.metadata_props.add(key="bisectml.step_input", value="t")
    with pytest.raises(ProgramError) as e:
        load_program(bad)
    assert "int64 scalar" in one_line(e.value)
