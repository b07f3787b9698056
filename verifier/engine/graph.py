"""Loading an ONNX graph into the integer profile: slots, canonical nodes, static types.

Everything a program can do is decided here, at load: every op, dtype and shape is checked
against the profile and anything outside it is refused with one line that names the node.
Nothing is ever refused at run time, because a trace must be provable to the last step.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from verifier.core.dtypes import DEFAULT_MAX_ELEMENTS, DType, TensorType, type_of
from verifier.core.errors import ModelLoadError, ShapeError, UnsupportedOpError
from verifier.engine.ops import REGISTRY, CanonContext, Op

MIN_OPSET = 1  # older schemas are refused per op (Op.min_since)
MAX_OPSET = 28
# Inputs that determine an output's shape, which the profile requires to be constant.
SHAPE_INPUTS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,),
    "Expand": (1,),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "Slice": (1, 2, 3, 4),
    "ReduceSum": (1,),
    "ReduceMax": (1,),
    "ReduceMin": (1,),
}
MAX_SLOTS = 0xFFFF  # u16 slot ids; 0xFFFF is "absent"
ABSENT = 0xFFFF
_FOLDED = ("Constant", "Shape", "Size")
IN_MAX = 16  # inputs per node the one-step contracts accept
ATTR_MAX = 64  # canonical attributes per node they accept


class SlotKind(enum.IntEnum):
    """What a slot holds; the order is the slot table order (docs/SPEC.md 3.1)."""

    STEP = 0
    STATE = 1
    DATA = 2
    INPUT = 3  # a runtime input of a plain (non-program) graph
    CONST = 4
    NODE = 5


@dataclass(frozen=True)
class Slot:
    name: str
    kind: SlotKind
    type: TensorType
    # Constant value for CONST slots (and initial value for STATE/DATA in programs).
    value: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Node:
    """A canonical node: the op, its input and output slots, its integer attributes."""

    op: Op
    inputs: tuple[int | None, ...]
    output: int
    attrs: tuple[int, ...]
    name: str

    def descriptor(self) -> bytes:
        """The node descriptor bytes (docs/SPEC.md 3.2)."""
        out = bytearray([self.op.code, len(self.inputs)])
        for s in self.inputs:
            out += (ABSENT if s is None else s).to_bytes(2, "big")
        out += self.output.to_bytes(2, "big")
        out.append(len(self.attrs))
        for a in self.attrs:
            out += int(a).to_bytes(8, "big", signed=True)
        return bytes(out)


@dataclass
class Graph:
    slots: list[Slot]
    nodes: list[Node]
    inputs: list[int]  # slots fed at run time (INPUT, or STEP/STATE/DATA in a program)
    outputs: list[int]
    output_names: list[str]
    opset: int
    first_node_slot: int
    by_name: dict[str, int]

    @property
    def n_slots(self) -> int:
        return len(self.slots)

    def check_feed(self, slot: int, value: np.ndarray) -> np.ndarray:
        """Refuse a run-time input whose dtype or shape differs from the declared one."""
        want = self.slots[slot].type
        arr = np.asarray(value)
        got = type_of(arr, f"input '{self.slots[slot].name}'")
        if got != want:
            raise ShapeError(
                f"input '{self.slots[slot].name}' expects {want}, got {got}; "
                "pass a tensor of the declared dtype and shape."
            )
        return np.asarray(order="C", a=arr)

    def initial_values(self) -> list[np.ndarray | None]:
        """A value table with constants filled in and everything else empty."""
        return [s.value if s.kind is SlotKind.CONST else None for s in self.slots]

    def run_node(self, node: Node, values: list[np.ndarray | None], fast: bool = True) -> np.ndarray:
        from verifier.engine.fastpath import run_op

        args = [None if i is None else values[i] for i in node.inputs]
        out = run_op(node.op, args, node.attrs, fast)
        want = self.slots[node.output].type
        if out.dtype != want.dtype.np or out.shape != want.shape:
            # A kernel disagreeing with its own shape inference is an engine bug, never input.
            raise AssertionError(f"{node.name}: kernel gave {out.dtype}{list(out.shape)}, inferred {want}")
        return out

    def execute(
        self,
        values: list[np.ndarray | None],
        fast: bool = True,
        on_node: Callable[[int, np.ndarray], None] | None = None,
    ) -> None:
        """Run every node in order, writing outputs into `values` in place."""
        # run_node inlined (its import and run_op's dispatch cost ~1 us a node): the same
        # choice of kernel, the same check of the output against the inferred type.
        from verifier.engine.ops import FAST

        kernels: Mapping[str, Callable[..., np.ndarray]] = {}
        if fast:
            from verifier.engine.fastpath import ensure_fast_path

            ensure_fast_path()  # self-tests once per process; failing kernels stay off
            kernels = FAST
        slots = self.slots
        for n, node in enumerate(self.nodes):
            args = [None if i is None else values[i] for i in node.inputs]
            kernel = kernels.get(node.op.name)
            out = kernel(args, node.attrs) if kernel is not None else node.op.run(args, node.attrs)
            want = slots[node.output].type
            if out.dtype != want.dtype.np or out.shape != want.shape:
                # A kernel disagreeing with its own shape inference is an engine bug, never input.
                raise AssertionError(f"{node.name}: kernel gave {out.dtype}{list(out.shape)}, inferred {want}")
            values[node.output] = out
            if on_node is not None:
                on_node(n, out)

    def run(self, feeds: Mapping[str, np.ndarray], fast: bool = True) -> dict[str, np.ndarray]:
        """Plain inference: feed the inputs by name, return the outputs by name."""
        names = {self.slots[i].name for i in self.inputs}
        missing = sorted(names - set(feeds))
        if missing:
            raise ShapeError(f"missing input(s) {missing}; feed every graph input by name.")
        extra = sorted(set(feeds) - names)
        if extra:
            raise ShapeError(f"unknown input(s) {extra}; the graph's inputs are {sorted(names)}.")
        values = self.initial_values()
        for i in self.inputs:
            values[i] = self.check_feed(i, feeds[self.slots[i].name])
        self.execute(values, fast)
        return {name: values[s] for name, s in zip(self.output_names, self.outputs)}  # type: ignore[misc]


def read_model(source: str | os.PathLike[str] | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Parse and structurally check an ONNX model, or refuse it in one line."""
    if isinstance(source, onnx.ModelProto):
        model = source
        label = "model"
    else:
        if isinstance(source, bytes):
            data, label = source, "model bytes"
        else:
            label = str(source)
            try:
                data = Path(source).read_bytes()
            except OSError as e:
                raise ModelLoadError(f"cannot read '{label}': {e.strerror}; check the path.") from None
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except Exception:
            raise ModelLoadError(f"'{label}' is not a valid ONNX file; re-export the model.") from None
        if not model.graph.node and not model.graph.output:
            raise ModelLoadError(f"'{label}' is not a valid ONNX file (no graph); re-export the model.")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises several unrelated types here
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"'{label}' is malformed: {first}; fix or re-export the model.") from None
    return model


def _opset(model: onnx.ModelProto) -> int:
    version = None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            version = imp.version
    if version is None:
        raise UnsupportedOpError("the model imports no default ONNX opset; export it with opset 13 or later.")
    if not MIN_OPSET <= version <= MAX_OPSET:
        raise UnsupportedOpError(
            f"the model uses opset {version}; bisectml supports opsets {MIN_OPSET}..{MAX_OPSET}. "
            "Convert it with onnx.version_converter."
        )
    return version


def _value_type(vi: onnx.ValueInfoProto, where: str, max_elements: int) -> TensorType:
    if vi.type.WhichOneof("value") != "tensor_type":
        raise UnsupportedOpError(f"{where} is not a tensor; the profile handles tensors only.")
    tt = vi.type.tensor_type
    dtype = DType.from_onnx(tt.elem_type, where)
    if not tt.HasField("shape"):
        raise ShapeError(f"{where} has no declared shape; export the model with static shapes.")
    dims = []
    for d in tt.shape.dim:
        if d.WhichOneof("value") != "dim_value":
            raise ShapeError(
                f"{where} has a symbolic dimension '{d.dim_param or '?'}'; export the model with static shapes."
            )
        dims.append(int(d.dim_value))
    return TensorType(dtype, tuple(dims)).check(where, max_elements)


def _folded_value(node: onnx.NodeProto, in_types: list[TensorType | None], opset: int, where: str) -> np.ndarray:
    """The value of a Constant, Shape or Size node, all known at load."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Constant":
        if "value" in attrs:
            value = numpy_helper.to_array(attrs["value"])
        elif "value_int" in attrs:
            value = np.array(attrs["value_int"], dtype=np.int64)
        elif "value_ints" in attrs:
            value = np.array(list(attrs["value_ints"]), dtype=np.int64)
        else:
            raise UnsupportedOpError(f"{where} holds a non-integer constant; use an int64, int32, int8 or bool tensor.")
        DType.from_numpy(value.dtype, where)
        return np.asarray(order="C", a=value)
    (src,) = in_types[:1] or [None]
    if src is None:
        raise ModelLoadError(f"{where} has no input; fix the model.")
    if node.op_type == "Size":
        return np.array(src.size, dtype=np.int64)
    rank = len(src.shape)
    start = int(attrs.get("start", 0))
    end = int(attrs.get("end", rank))
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return np.array(src.shape[start:end], dtype=np.int64)


def load_graph(
    source: str | os.PathLike[str] | bytes | onnx.ModelProto,
    *,
    roles: Mapping[str, SlotKind] | None = None,
    bind: Mapping[str, np.ndarray] | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Graph:
    """Load a graph into the profile.

    Without `roles`, every graph input without an initializer is a run-time INPUT and every
    initializer is a constant. With `roles` (programs), the named inputs take those kinds, in
    the mapping's order, and keep their initializers as initial values. `bind` turns named
    inputs into constants with the given values (for instance a shape input, which the profile
    requires to be constant).
    """
    model = read_model(source)
    opset = _opset(model)
    g = model.graph
    inits: dict[str, onnx.TensorProto] = {t.name: t for t in g.initializer}
    if g.sparse_initializer:
        raise UnsupportedOpError("the model has sparse initializers; store them dense.")

    # (kind, creation order) sorts entries into slot-table order at the end.
    entries: list[tuple[SlotKind, int, Slot]] = []
    temp: dict[str, int] = {}  # value name -> entry index

    def add(name: str, kind: SlotKind, ttype: TensorType, value: np.ndarray | None = None) -> int:
        if name in temp:
            raise ModelLoadError(f"value '{name}' is defined twice; ONNX graphs must be in SSA form.")
        temp[name] = len(entries)
        entries.append((kind, len(entries), Slot(name, kind, ttype, value)))
        return temp[name]

    input_names = [vi.name for vi in g.input]
    vi_by_name = {vi.name: vi for vi in g.input}
    bind = dict(bind or {})
    for name, value in bind.items():
        if name not in vi_by_name or (roles is not None and name in roles):
            raise ModelLoadError(f"cannot bind '{name}': it is not a free graph input; bind one of {input_names}.")
        where = f"input '{name}'"
        value = np.asarray(order="C", a=value)
        want = _value_type(vi_by_name[name], where, max_elements)
        if type_of(value, f"bound {where}") != want:
            raise ShapeError(f"bound {where} is {type_of(value)} but the input is {want}; bind a matching tensor.")
        add(name, SlotKind.CONST, want, value)
    if roles is None:
        for vi in g.input:
            if vi.name not in inits and vi.name not in bind:
                add(vi.name, SlotKind.INPUT, _value_type(vi, f"input '{vi.name}'", max_elements))
    else:
        unknown = [n for n in roles if n not in vi_by_name]
        if unknown:
            raise ModelLoadError(f"role names {unknown} are not graph inputs; fix the program's metadata.")
        for name in input_names:
            if name not in roles and name not in inits and name not in bind:
                raise ModelLoadError(
                    f"input '{name}' has no role and no initializer; list it in bisectml.state or bisectml.data."
                )
        for name, kind in roles.items():
            where = f"input '{name}'"
            ttype = _value_type(vi_by_name[name], where, max_elements)
            value = None
            if name in inits:
                value = np.asarray(order="C", a=numpy_helper.to_array(inits[name]))
                got = type_of(value, f"initializer of {where}")
                if got != ttype:
                    raise ShapeError(f"the initial value of {where} is {got} but the input is {ttype}; make them agree.")
            add(name, kind, ttype, value)
    for t in g.initializer:
        if t.name in temp:
            continue
        where = f"initializer '{t.name}'"
        DType.from_onnx(t.data_type, where)
        value = np.asarray(order="C", a=numpy_helper.to_array(t))
        add(t.name, SlotKind.CONST, type_of(value, where).check(where, max_elements), value)

    pending: list[tuple[Op, tuple[int | None, ...], int, tuple[int, ...], str]] = []
    for k, node in enumerate(g.node):
        where = f"node '{node.name or node.output[0] if node.output else k}' ({node.op_type})"
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(
                f"{where} is from domain '{node.domain}', outside the integer profile; "
                "use standard ONNX ops only."
            )
        outs = [o for o in node.output if o]
        if len(outs) != 1 or node.output[0] == "":
            raise UnsupportedOpError(f"{where} has {len(outs)} used outputs; profile ops produce exactly one.")
        for name in node.input:
            if name and name not in temp:
                raise ModelLoadError(f"{where} reads '{name}', which is not defined before it; sort the graph.")
        in_types = [entries[temp[n]][2].type if n else None for n in node.input]
        if node.op_type in _FOLDED:
            value = _folded_value(node, in_types, opset, where)
            add(outs[0], SlotKind.CONST, type_of(value, where).check(where, max_elements), value)
            continue
        op = REGISTRY.get(node.op_type)
        if op is None:
            raise UnsupportedOpError(
                f"{where} uses op '{node.op_type}', which is outside the integer profile; "
                f"rewrite it with the profile's ops ({', '.join(sorted(REGISTRY))})."
            )
        since = onnx.defs.get_schema(node.op_type, opset, "").since_version
        if since < op.min_since:
            raise UnsupportedOpError(
                f"{where} uses the opset-{since} form of {node.op_type}, whose semantics differ; "
                f"convert the model to opset {max(13, op.min_since)} or later with onnx.version_converter."
            )
        const_values = tuple(
            entries[temp[n]][2].value if n and entries[temp[n]][0] is SlotKind.CONST else None for n in node.input
        )
        ctx = CanonContext(node=node, opset=opset, in_types=tuple(in_types), const_values=const_values)
        canon = op.canonicalize(ctx)
        # The one-step contracts carry at most IN_MAX input headers and ATTR_MAX attributes
        # (docs/SPEC.md section 5): a node beyond them could never be disputed, so refuse it.
        if len(canon.inputs) > IN_MAX or len(canon.attrs) > ATTR_MAX:
            raise UnsupportedOpError(
                f"{where} has {len(canon.inputs)} inputs and {len(canon.attrs)} attributes; the verifier "
                f"proves at most {IN_MAX} and {ATTR_MAX}. Split it into smaller nodes."
            )
        op_inputs = tuple(None if i is None else temp[node.input[i]] for i in canon.inputs)
        out_type = op.infer([None if i is None else entries[i][2].type for i in op_inputs], canon.attrs)
        out_type.check(f"output of {where}", max_elements)
        out = add(outs[0], SlotKind.NODE, out_type)
        pending.append((op, op_inputs, out, canon.attrs, where))

    order = sorted(range(len(entries)), key=lambda i: (entries[i][0], entries[i][1]))
    if len(order) >= MAX_SLOTS:
        raise ShapeError(f"the graph has {len(order)} values; the profile allows at most {MAX_SLOTS - 1}. Split it.")
    remap = {old: new for new, old in enumerate(order)}
    slots = [entries[i][2] for i in order]
    nodes = [
        Node(op, tuple(None if i is None else remap[i] for i in ins), remap[out], attrs, where)
        for op, ins, out, attrs, where in pending
    ]
    by_name = {s.name: i for i, s in enumerate(slots)}
    outputs: list[int] = []
    for vi in g.output:
        if vi.name not in by_name:
            raise ModelLoadError(f"output '{vi.name}' is never computed; fix the graph.")
        s = by_name[vi.name]
        tt = vi.type.tensor_type
        if tt.elem_type:
            declared = DType.from_onnx(tt.elem_type, f"output '{vi.name}'")
            if declared != slots[s].type.dtype:
                raise ShapeError(
                    f"output '{vi.name}' is declared {declared.name.lower()} but computes {slots[s].type}; fix the declaration."
                )
        if tt.HasField("shape") and all(d.WhichOneof("value") == "dim_value" for d in tt.shape.dim):
            declared_shape = tuple(int(d.dim_value) for d in tt.shape.dim)
            if declared_shape != slots[s].type.shape:
                raise ShapeError(
                    f"output '{vi.name}' is declared {list(declared_shape)} but computes {slots[s].type}; fix the declaration."
                )
        outputs.append(s)
    first_node = next((i for i, s in enumerate(slots) if s.kind is SlotKind.NODE), len(slots))
    inputs = [i for i, s in enumerate(slots) if s.kind in (SlotKind.STEP, SlotKind.STATE, SlotKind.DATA, SlotKind.INPUT)]
    return Graph(
        slots=slots,
        nodes=nodes,
        inputs=inputs,
        outputs=outputs,
        output_names=[vi.name for vi in g.output],
        opset=opset,
        first_node_slot=first_node,
        by_name=by_name,
    )


def descriptors(graph: Graph) -> list[bytes]:
    return [n.descriptor() for n in graph.nodes]


__all__: Sequence[str] = ["ABSENT", "SHAPE_INPUTS", "Graph", "Node", "Slot", "SlotKind", "descriptors", "load_graph", "read_model"]
