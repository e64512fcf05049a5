"""An .onnx file -> a Graph, without torch (docs/onnx.md).

The file is read with `load_external_data=False`: only the graph and the initializers'
shapes matter, so an external-data model is analyzed without its weights on disk or in
memory. Shapes come from onnx.shape_inference at the file's input (or `--input`). Each
node becomes the layer kind its op maps to (frontends/onnx_ops.py) when that layer's
rules reproduce the inferred shape and the initializers' sizes; otherwise an opaque node
(shape known, counts n/a, listed). Tensors computed without the graph input (shape
arithmetic, Constant nodes) are constants, not nodes. Each initializer is counted once,
at the first node that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnstat.analyzers.ops import OPS
from cnnstat.analyzers.params import PARAMS
from cnnstat.analyzers.shapes import SHAPES
from cnnstat.errors import (
    Location,
    ShapeError,
    SpecError,
    UnknownModelError,
    UsageError,
    listing,
)
from cnnstat.files import require_regular_file
from cnnstat.frontends.onnx_ops import (
    BUFFERS,
    CONVERTERS,
    OPERANDS,
    PENDING_KINDS,
    Op,
    split_parts,
)
from cnnstat.ir import Graph, ModelMeta, Node
from cnnstat.ir import layers as L

Shape = tuple[int, ...]
MIN_OPSET = 7  # the first opset with today's Conv/BatchNormalization/Upsample semantics
SHAPE_OPS = ("Shape", "Size")  # read a value's shape, not its data: the result is a constant
_FLOAT_TYPES = (1, 10, 11, 16)  # float, float16, double, bfloat16 (TensorProto enum)
_INT_TYPES = (6, 7)  # int32, int64


def load_onnx(model: str, input: str | None = None):
    from cnnstat.frontends import FrontendGraph

    onnx = _import_onnx()
    proto = _read(onnx, model)
    opset = _opset(onnx, proto, model)
    proto = _with_input(proto, model, input)
    try:
        proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True, data_prop=True)
    except Exception as e:  # onnx raises InferenceError, ValidationError or RuntimeError
        raise ShapeError(f"ONNX shape inference failed: {_first_line(e)}",
                         Location(model)) from None
    builder = _Builder(onnx, proto, model, opset)
    graph = builder.build()
    return FrontendGraph(graph, diagnostics=tuple(builder.diagnostics))


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise UsageError("reading .onnx files needs the onnx package: "
                         "pip install 'cnnstat[onnx]'") from None
    return onnx


def _first_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def _read(onnx: Any, model: str):
    path = Path(model)
    if not path.exists():
        raise UnknownModelError(f"no such ONNX file '{model}'")
    if path.is_dir():
        raise UsageError(f"'{model}' is a directory, not an ONNX file")
    require_regular_file(path, model)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise SpecError(f"not a readable ONNX model: {_first_line(e)}", Location(model)) from None
    if not proto.graph.node:
        raise SpecError("not a readable ONNX model: the graph has no nodes", Location(model))
    return proto


def _opset(onnx: Any, proto: Any, model: str) -> int:
    versions = {o.domain: o.version for o in proto.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    newest = onnx.defs.onnx_opset_version()
    if opset is None or not MIN_OPSET <= opset <= newest:
        raise SpecError(f"ONNX opset {opset} is not one cnnstat reads "
                        f"({MIN_OPSET}..{newest} with onnx {onnx.__version__})",
                        Location(model))
    return opset


def _with_input(proto: Any, model: str, input: str | None):
    """Fixes the one graph input's dims: a symbolic batch becomes 1, `--input` (CxHxW)
    replaces the rest; any other symbolic dim is an error that says which."""
    inputs = _graph_inputs(proto)
    if len(inputs) != 1:
        raise SpecError(f"the graph has {len(inputs)} inputs "
                        f"({', '.join(i.name for i in inputs) or 'none'}); cnnstat analyzes "
                        "single-input models", Location(model))
    dims = inputs[0].type.tensor_type.shape.dim
    wanted = _wanted(input, dims, model) if input else None
    for i, dim in enumerate(dims):
        if wanted is not None and i > 0:
            dim.dim_value = wanted[i - 1]
        elif not dim.HasField("dim_value"):
            if i > 0:
                raise ShapeError(f"input '{inputs[0].name}' dim {i} is symbolic "
                                 f"('{dim.dim_param or '?'}'); give --input to fix it",
                                 Location(model))
            dim.dim_value = 1
    return proto


def _wanted(input: Any, dims: Any, model: str) -> tuple[int, ...]:
    """CxHxW, or HxW / a square size with the file's channels."""
    from cnnstat.inputs import parse_dims

    text = input if isinstance(input, str) else "x".join(str(d) for d in input)
    sizes = parse_dims(input)
    if len(dims) == 4 and len(sizes) in (1, 2) and dims[1].HasField("dim_value"):
        sizes = (dims[1].dim_value, *(sizes * 2)[:2])
    if len(sizes) != len(dims) - 1 or any(s <= 0 for s in sizes):
        raise UsageError(f"--input for '{model}' gives {len(dims) - 1} positive sizes "
                         f"(its input has rank {len(dims)} with the batch), got '{text}'")
    return sizes


def _graph_inputs(proto: Any) -> list[Any]:
    """Older exporters list the initializers among the inputs too."""
    weights = {t.name for t in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in weights]


def _shape_of(value_info: Any) -> Shape | None:
    dims = value_info.type.tensor_type.shape.dim
    if not value_info.type.tensor_type.HasField("shape") or \
            any(not d.HasField("dim_value") for d in dims):
        return None
    return tuple(d.dim_value for d in dims)


@dataclass
class _Builder:
    onnx: Any
    proto: Any
    source: str
    opset: int
    diagnostics: list[str] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    values: dict[str, tuple[str, Shape]] = field(default_factory=dict)  # tensor -> node, shape
    constants: dict[str, frozenset[str]] = field(default_factory=dict)  # -> initializers
    opaque: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)  # weight layers whose tensors repeat
    _counted: set[str] = field(default_factory=set)

    def build(self) -> Graph:
        g = self.proto.graph
        self.init = {t.name: t for t in g.initializer}
        self.shapes = {v.name: _shape_of(v) for v in (*g.value_info, *g.output, *g.input)}
        self.constants = {name: frozenset({name}) for name in self.init}
        first = _graph_inputs(self.proto)[0]
        self._add("input", L.Input(), (), first.name, self.shapes[first.name])
        for i, node in enumerate(g.node):
            self._node(node, i)
        outputs = [self.values[o.name][0] for o in g.output if o.name in self.values]
        if not outputs:
            raise SpecError("no graph output is computed from the input", self._loc())
        self._notes()
        meta = ModelMeta(name=Path(self.source).stem, input=self.shapes[first.name][1:],
                         source=self.source, notes=self._meta_notes())
        return Graph(nodes=tuple(self.nodes), outputs=tuple(dict.fromkeys(outputs)), meta=meta)

    def _node(self, node: Any, index: int) -> None:
        ins = [i for i in node.input if i in self.values]
        if not ins or node.op_type in SHAPE_OPS:
            used = frozenset().union(*(self.constants.get(i, frozenset()) for i in node.input))
            for out in node.output:
                self.constants[out] = used
            return
        name = self._unique(_readable(node.name) or f"{node.op_type}_{index}")
        outs = [o for o in node.output if o]
        params = self._claim(node)
        if len(outs) > 1 and node.op_type != "Dropout":
            parts = self._parts(node, ins, outs) if len(set(ins)) == 1 else None
            for k, out in enumerate(outs):
                if parts is not None:
                    part = f"{name}.{k}"
                    self._add(part, parts[k], (self.values[ins[0]][0],), out,
                              self._out_shape(node, out))
                else:
                    self._opaque(f"{name}[{k}]", node, ins, out, params if k == 0 else (0, 0))
            return
        layer = self._convert(node, name, ins, outs[0], params)
        if layer is None:
            self._opaque(name, node, ins, outs[0], params)
            return
        # A merge keeps a repeated input (x - x, cat(x, x)); any other kind has one.
        sources = tuple(self.values[i][0] for i in ins)
        self._add(name, layer, sources if isinstance(layer, L.MERGES) else sources[:1], outs[0],
                  self._out_shape(node, outs[0]))

    def _op(self, node: Any, ins: list[str], out: str) -> Op:
        return Op(node.op_type, {**self._attrs(node), "_opset": self.opset},
                  tuple(self.values[i][1] for i in ins), self._out_shape(node, out),
                  tuple(self._weight_shape(i) for i in node.input),
                  tuple(self._scalar(i) for i in node.input),
                  tuple(self._ints(i) for i in node.input))

    def _parts(self, node: Any, ins: list[str], outs: list[str]) -> list[L.Layer] | None:
        """A Split's parts, each checked against its inferred shape; None: all opaque."""
        if node.op_type != "Split":
            return None
        op = self._op(node, ins, outs[0])
        shapes = tuple(self._out_shape(node, o) for o in outs)
        try:
            parts = split_parts(op, shapes)
            if parts is None or any(tuple(SHAPES.get(L.Split)(p, op.ins)) != s
                                    for p, s in zip(parts, shapes, strict=True)):
                return None
        except ValueError:
            return None
        return parts

    def _convert(self, node: Any, name: str, ins: list[str], out: str,
                 params: tuple[int, int]) -> L.Layer | None:
        converter = CONVERTERS.get(node.op_type)
        if converter is None:
            return None
        op = self._op(node, ins, out)
        try:
            layer = converter(op)
        except (ValueError, KeyError, IndexError, TypeError):
            layer = None
        if layer is None:
            return None
        if not isinstance(layer, L.MERGES) and len(set(ins)) != 1:
            return None  # a second computed input that the layer kind has no edge for
        return self._checked(layer, name, op, params)

    def _checked(self, layer: L.Layer, name: str, op: Op,
                 sizes: tuple[int, int]) -> L.Layer | None:
        """The layer stands for the node only when its rules give ONNX's shape and sizes."""
        try:
            shape = SHAPES.get(type(layer))(layer, op.ins)
        except (ValueError, ShapeError):
            return None
        if tuple(shape) != op.out:
            self.diagnostics.append(f"{name}: cnnstat's {layer.kind} shape {list(shape)} != "
                                    f"ONNX's {list(op.out)}; kept opaque")
            return None
        params, buffers = sizes
        if PARAMS.get(type(layer))(layer, op.ins, shape).params == params:
            return layer  # (BN's buffers: torch's num_batches_tracked adds 1 to ONNX's)
        if isinstance(layer, L.WEIGHT_LAYERS):  # weights an earlier node counted: shared
            macs = OPS.get(type(layer))(layer, op.ins, shape).macs
            self.shared.append(name)
            return L.Opaque(op=f"onnx::{op.op_type}, shared weights ({layer.kind} MACs)",
                            in_shape=op.ins[0], out_shape=op.out, macs=macs, params=params,
                            buffers=buffers)
        return None  # a constant operand (Add of a bias, Mul by a scale): not the layer

    def _opaque(self, name: str, node: Any, ins: list[str], out: str,
                sizes: tuple[int, int]) -> None:
        pending = PENDING_KINDS.get(node.op_type)
        label = f"onnx::{node.op_type}" + (f" (kind '{pending}' pending)" if pending else "")
        self.opaque.append(f"{name} ({node.op_type})")
        first = self.values[ins[0]]
        if len(set(ins)) > 1:
            self.diagnostics.append(f"{name}: opaque op {node.op_type} also reads "
                                    f"{', '.join(sorted(set(ins[1:])))}; the graph keeps only "
                                    f"its edge from {first[0]} (receptive fields are partial)")
        shape = self._out_shape(node, out)
        layer = L.Opaque(op=label, in_shape=first[1], out_shape=shape, macs=None, params=sizes[0],
                         buffers=sizes[1])
        self._add(name, layer, (first[0],), out, shape)

    # --- tensors -------------------------------------------------------------------------

    def _out_shape(self, node: Any, out: str) -> Shape:
        shape = self.shapes.get(out)
        if shape is None:
            raise ShapeError(f"ONNX shape inference gave no static shape for output '{out}' "
                             f"of {node.op_type}; give --input, or simplify the model",
                             self._loc(), layer=node.name or out)
        return shape

    def _weight_shape(self, name: str) -> Shape | None:
        tensor = self.init.get(name)
        return tuple(tensor.dims) if tensor is not None else None

    def _scalar(self, name: str) -> float | None:
        """Single-element initializers and Constant outputs (Clip bounds); nothing bigger
        is ever turned into an array."""
        tensor = self.init.get(name) or self._constant_tensor(name)
        if tensor is None or _numel(tensor.dims) != 1 or tensor.data_location == 1:
            return None
        return float(self.onnx.numpy_helper.to_array(tensor).reshape(-1)[0])

    def _ints(self, name: str) -> tuple[int, ...] | None:
        """A small int initializer or Constant (Pad's pads, ReduceMean's axes, 64 values at
        most); anything else is never turned into an array."""
        tensor = self.init.get(name) or self._constant_tensor(name)
        if tensor is None or tensor.data_type not in _INT_TYPES or _numel(tensor.dims) > 64 \
                or tensor.data_location == 1:
            return None
        return tuple(int(v) for v in self.onnx.numpy_helper.to_array(tensor).reshape(-1))

    def _constant_tensor(self, name: str) -> Any:
        for node in self.proto.graph.node:
            if node.op_type == "Constant" and name in node.output:
                attr = next((a for a in node.attribute if a.name == "value"), None)
                return attr.t if attr is not None else None
        return None

    def _claim(self, node: Any) -> tuple[int, int]:
        """Params and buffers: the float initializers the node reads (directly or through
        constant arithmetic) that no earlier node counted."""
        sizes = [0, 0]
        skip = OPERANDS.get(node.op_type, ())
        for position, name in enumerate(node.input):
            if position in skip:
                continue
            for init in sorted(self.constants.get(name, ())):
                tensor = self.init[init]
                if init not in self._counted and tensor.data_type in _FLOAT_TYPES:
                    self._counted.add(init)
                    sizes[position in BUFFERS.get(node.op_type, ())] += _numel(tensor.dims)
        return sizes[0], sizes[1]

    def _attrs(self, node: Any) -> dict[str, Any]:
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        return {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}

    # --- nodes and notes -----------------------------------------------------------------

    def _add(self, name: str, layer: L.Layer, inputs: tuple[str, ...], tensor: str,
             shape: Shape | None) -> None:
        if shape is None:
            raise ShapeError(f"no static shape for '{tensor}'", self._loc(), layer=name)
        self.nodes.append(Node(name=name, layer=layer, inputs=inputs, loc=self._loc()))
        self.values[tensor] = (name, shape)

    def _unique(self, base: str) -> str:
        taken = {n.name for n in self.nodes}
        name, n = base, 0
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        return name

    def _loc(self) -> Location:
        return Location(self.source)

    def _notes(self) -> None:
        unused = [n for n, t in self.init.items()
                  if n not in self._counted and t.data_type in _FLOAT_TYPES and
                  _numel(t.dims) > 1 and any(n in c for c in self.constants.values())]
        if self.opaque:
            self.diagnostics.append(
                f"{len(self.opaque)} ONNX op(s) kept opaque, shape from ONNX shape inference, "
                f"MACs and other ops not counted (n/a): {listing(self.opaque)}")
        if self.shared:
            self.diagnostics.append(
                f"{len(self.shared)} weight layer(s) read initializers an earlier node holds "
                f"(the exporter stores equal tensors once): kept opaque with their MACs "
                f"counted and those params counted once; fields stop there: "
                f"{listing(self.shared)}")
        if unused:
            self.diagnostics.append(f"{len(unused)} float initializer(s) feed no node computed "
                                    "from the input; not in the totals")

    def _meta_notes(self) -> str:
        return ("From ONNX; params are the file's float initializers, each counted once. "
                "Exporters usually fold BatchNorm into the preceding Conv, so params and "
                "layer counts can differ from the framework model's.")


def _readable(name: str) -> str:
    """torch's exporter names a node by its module scope: `/layer1/layer1.0/conv1/Conv`
    -> `layer1.0.conv1.Conv` (each segment repeats its parent's path)."""
    parts = [p for p in name.split("/") if p]
    kept = [p for i, p in enumerate(parts)
            if not (i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    return ".".join(kept)


def _numel(dims: Any) -> int:
    size = 1
    for d in dims:
        size *= d
    return size
