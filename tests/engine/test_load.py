"""Loading: what the profile accepts, and one-line refusals for everything else."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnx_models.toy import make_model
from verifier.core.errors import (
    BisectmlError,
    ModelLoadError,
    ShapeError,
    UnsupportedOpError,
)
from verifier.engine.graph import SlotKind, load_graph

I64 = TensorProto.INT64


def vi(name, dtype=I64, shape=(2, 2)):
    return helper.make_tensor_value_info(name, dtype, list(shape))


def one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text and text.endswith("."), text
    return text


def test_load__slots_in_spec_order_and_constants_folded() -> None:
    nodes = [
        helper.make_node("Shape", ["a"], ["s"], name="shape"),
        helper.make_node("Add", ["a", "b"], ["c"], name="add"),
        helper.make_node("Reshape", ["c", "s"], ["d"], name="reshape"),
    ]
    model = make_model(nodes, [vi("a")], [vi("d")], [numpy_helper.from_array(np.ones((2, 2), np.int64), "b")])
    g = load_graph(model)
    assert [(s.name, s.kind) for s in g.slots] == [
        ("a", SlotKind.INPUT),
        ("b", SlotKind.CONST),
        ("s", SlotKind.CONST),
        ("c", SlotKind.NODE),
        ("d", SlotKind.NODE),
    ]
    assert g.first_node_slot == 3
    np.testing.assert_array_equal(g.slots[2].value, [2, 2])
    out = g.run({"a": np.arange(4, dtype=np.int64).reshape(2, 2)})["d"]
    np.testing.assert_array_equal(out, [[1, 2], [3, 4]])


def test_descriptor__byte_layout() -> None:
    model = make_model([helper.make_node("Add", ["a", "b"], ["c"], name="add")], [vi("a"), vi("b")], [vi("c")])
    (node,) = load_graph(model).nodes
    # op 2, two inputs (slots 0 and 1), output slot 2, no attributes
    assert node.descriptor() == bytes([2, 2, 0, 0, 0, 1, 0, 2, 0])


def test_load__malformed_bytes__refused(tmp_path) -> None:
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x08\x07this is not protobuf\xff\xff")
    with pytest.raises(ModelLoadError) as e:
        load_graph(p)
    assert "not a valid ONNX file" in one_line(e.value)


def test_load__missing_file__refused(tmp_path) -> None:
    with pytest.raises(ModelLoadError) as e:
        load_graph(tmp_path / "nope.onnx")
    assert "cannot read" in one_line(e.value)


def test_load__float_input__names_input_and_dtype() -> None:
    model = make_model([helper.make_node("Relu", ["a"], ["b"], name="r")], [vi("a", TensorProto.FLOAT)], [vi("b", TensorProto.FLOAT)])
    with pytest.raises(UnsupportedOpError) as e:
        load_graph(model)
    msg = one_line(e.value)
    assert "input 'a'" in msg and "FLOAT" in msg and "quantize" in msg


def test_load__unsupported_op__names_node_and_op() -> None:
    model = make_model([helper.make_node("Softmax", ["a"], ["b"], name="probs")], [vi("a")], [vi("b")])
    with pytest.raises(UnsupportedOpError) as e:
        load_graph(model)
    msg = one_line(e.value)
    assert "node 'probs'" in msg and "'Softmax'" in msg and "outside the integer profile" in msg


def test_load__custom_domain__refused() -> None:
    node = helper.make_node("Add", ["a", "a"], ["b"], name="x", domain="com.example")
    model = make_model([node], [vi("a")], [vi("b")], opset=[helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)])
    with pytest.raises(UnsupportedOpError) as e:
        load_graph(model)
    assert "com.example" in one_line(e.value)


def test_load__symbolic_dim__refused() -> None:
    model = make_model([helper.make_node("Relu", ["a"], ["b"], name="r")], [vi("a", shape=("N", 2))], [vi("b", shape=("N", 2))])
    with pytest.raises(ShapeError) as e:
        load_graph(model)
    assert "symbolic dimension 'N'" in one_line(e.value)


def test_load__oversized_tensor__refused() -> None:
    model = make_model([helper.make_node("Relu", ["a"], ["b"], name="r")], [vi("a", shape=(64, 64))], [vi("b", shape=(64, 64))])
    with pytest.raises(ShapeError) as e:
        load_graph(model, max_elements=1000)
    assert "4096 elements" in one_line(e.value)


def test_load__old_op_schema__refused() -> None:
    model = make_model([helper.make_node("Relu", ["a"], ["b"], name="r")], [vi("a")], [vi("b")], opset=[helper.make_opsetid("", 9)])
    with pytest.raises(UnsupportedOpError) as e:
        load_graph(model)
    assert "opset-6 form of Relu" in one_line(e.value)


def test_load__output_declared_wrong__refused() -> None:
    model = make_model([helper.make_node("Relu", ["a"], ["b"], name="r")], [vi("a")], [vi("b", shape=(3, 3))])
    with pytest.raises(BisectmlError) as e:
        load_graph(model)
    assert "output 'b'" in one_line(e.value)


def test_run__wrong_input_shape__refused_without_running() -> None:
    model = make_model([helper.make_node("Relu", ["a"], ["b"], name="r")], [vi("a")], [vi("b")])
    g = load_graph(model)
    with pytest.raises(ShapeError) as e:
        g.run({"a": np.zeros((3, 2), np.int64)})
    assert "input 'a' expects int64[2, 2], got int64[3, 2]" in one_line(e.value)
    with pytest.raises(ShapeError):
        g.run({"a": np.zeros((2, 2), np.int32)})
    with pytest.raises(ShapeError):
        g.run({})


def test_load__newer_opset_than_supported__refused() -> None:
    model = make_model([helper.make_node("Relu", ["a"], ["b"], name="r")], [vi("a")], [vi("b")], opset=[helper.make_opsetid("", 29)])
    model.ir_version = 11
    with pytest.raises(BisectmlError) as e:
        load_graph(model)
    assert "29" in one_line(e.value)


def test_load__bind_turns_input_into_constant() -> None:
    nodes = [helper.make_node("Reshape", ["a", "shape"], ["b"], name="reshape")]
    model = make_model(nodes, [vi("a"), vi("shape", shape=(1,))], [vi("b", shape=(4,))])
    with pytest.raises(UnsupportedOpError) as e:
        load_graph(model)
    assert "must be a constant" in one_line(e.value)
    g = load_graph(model, bind={"shape": np.array([4], np.int64)})
    np.testing.assert_array_equal(g.run({"a": np.arange(4, dtype=np.int64).reshape(2, 2)})["b"], [0, 1, 2, 3])
    with pytest.raises(ShapeError):
        load_graph(model, bind={"shape": np.array([4, 1], np.int64)})


def test_load__node_with_more_inputs_than_contracts_prove__refused() -> None:
    names = [f"a{i}" for i in range(17)]
    model = make_model(
        [helper.make_node("Concat", names, ["b"], axis=0, name="wide")],
        [vi(n, shape=(1,)) for n in names],
        [vi("b", shape=(17,))],
    )
    with pytest.raises(UnsupportedOpError) as e:
        load_graph(model)
    assert "node 'wide'" in one_line(e.value) and "at most 16" in one_line(e.value)
    sixteen = make_model(
        [helper.make_node("Concat", names[:16], ["b"], axis=0, name="ok")],
        [vi(n, shape=(1,)) for n in names[:16]],
        [vi("b", shape=(16,))],
    )
    assert len(load_graph(sixteen).nodes[0].inputs) == 16
