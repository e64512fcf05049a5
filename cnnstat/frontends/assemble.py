"""Recorded torch calls -> a Graph. Shared by the fx tracer and the eager fallback.

Each tracer reports the input, then one `Step` per call in execution order, then the
output keys. A step whose output is a tensor computed from the input becomes a node:
the converter's layer when it reproduces torch's output shape and tensor sizes exactly,
else an `Opaque` node carrying torch's shape and FlopCounterMode count. Tensors computed
only from module attributes (a parameter, `torch.zeros(...)`) are constants: not nodes,
their sizes go to the first node that uses them. Each parameter and buffer is counted
once, at its first use, so params == sum(p.numel()) over everything the forward uses.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from cnnstat.analyzers.ops import OPS
from cnnstat.analyzers.params import PARAMS
from cnnstat.analyzers.shapes import SHAPES
from cnnstat.errors import AnalysisError, Location, SpecError, listing
from cnnstat.frontends.converters import (
    ALIASES,
    BROADCASTS,
    FIRST_OUTPUT_MODULES,
    READS_WEIGHTS,
    SHAPE_OF_SECOND,
    Call,
    convert_function,
    convert_module,
)
from cnnstat.frontends.patterns import fuse_channel_shuffles
from cnnstat.ir import Graph, ModelMeta, Node
from cnnstat.ir import layers as L

Key = Hashable
INPUT_NAME = "input"


@dataclass(frozen=True, slots=True)
class Step:
    """One recorded call. `module_path` is set for a module call; `tensor_names` are
    module attributes (parameters, buffers, constants) the call read directly."""

    key: Key
    call: Call
    label: str
    scope: str
    arg_keys: tuple[Key, ...]
    flops: int
    module_path: str | None = None
    tensor_names: tuple[str, ...] = ()
    element_keys: tuple[Key, ...] = ()


@dataclass(frozen=True, slots=True)
class _Value:
    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Const:
    """A tensor computed from module attributes only; `flops`: torch's count of that
    computation (Swin v2's position-bias MLP on its coordinate table), carried to the
    first node that reads it."""

    tensor_names: tuple[str, ...]
    flops: int = 0
    ops: frozenset[str] = frozenset()  # the ops that computed it (none: an attribute as is)


class Assembler:
    def __init__(self, root: nn.Module, source: str, original: nn.Module | None = None):
        """`root` runs the forward (fx's GraphModule holds only the tensors the forward
        reads); `original` is the user's module, which holds them all."""
        self.root = root
        self.original = original or root
        self.source = source
        self.nodes: list[Node] = []
        self.output_keys: list[Key] = []  # set by the tracer once the forward has run
        self.diagnostics: list[str] = []
        self.opaque: list[str] = []
        self._entries: dict[Key, _Value | _Const] = {}
        self._names: set[str] = set()
        self._reserved = {path for path, _ in root.named_modules() if path}
        self._module_calls: Counter[str] = Counter()
        self._counted: set[int] = set()
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._carrying: set[Key] = set()  # steps that took on a constant's torch count
        self.unused: dict[str, int] = {}  # top-level module -> params the forward never read
        # Parameter elements claimed for the next node added (the one that claimed them),
        # all and those with requires_grad=False: its non-trainable share, per parameter.
        self._claimed = self._frozen_claimed = 0

    # --- the tracer's interface -------------------------------------------------------

    def input(self, key: Key, value: torch.Tensor, name: str = INPUT_NAME) -> None:
        """The forward's tensor arguments. The graph has one input node: a later argument
        of the same shape reads it too (RAFT's two frames), one of another shape becomes
        an opaque node `name` fed from it, which carries its shape."""
        shape = tuple(value.shape)
        if not self.nodes:
            self._add(INPUT_NAME, L.Input(), (), shape, key)
            self._input_key = key
            return
        first = self._entries[self._input_key]
        if shape == first.shape:
            self._entries[key] = first
            self.diagnostics.append(f"input '{name}' ({'x'.join(map(str, shape[1:]))}) has the "
                                    f"shape of the first input: both are the graph's "
                                    f"'{INPUT_NAME}' node")
            return
        node = self._unique(name)
        self.diagnostics.append(f"input '{name}' has another shape than the first: the "
                                f"opaque node '{node}' stands for it (the graph has one input)")
        self._add(node, L.Opaque(op=f"input {name}", in_shape=first.shape, out_shape=shape,
                                 macs=0), (INPUT_NAME,), shape, key)

    def constant(self, key: Key, tensor_name: str) -> None:
        """A module attribute read by the forward (fx `get_attr`)."""
        self._entries[key] = _Const((tensor_name,))

    def alias(self, key: Key, source: Key) -> None:
        if source in self._entries:
            self._entries[key] = self._entries[source]

    def step(self, step: Step) -> None:
        step = self._with_constant_work(step)
        out = step.call.out
        if isinstance(out, torch.Tensor):
            self._tensor_step(step)
        elif isinstance(out, tuple | list) and any(isinstance(o, torch.Tensor) for o in out):
            self._multi_step(step)

    def finish(self, output_keys: Iterable[Key], meta: ModelMeta) -> Graph:
        outputs = []
        for key in output_keys:
            entry = self._entries.get(key)
            if isinstance(entry, _Value) and entry.name not in outputs:
                outputs.append(entry.name)
        if not outputs:
            raise AnalysisError("the model returns no tensor computed from its input",
                                Location(self.source))
        self._report_unused()
        if self.opaque:
            self.diagnostics.append(
                f"{len(self.opaque)} op(s) kept opaque, their MACs counted by torch "
                f"(FlopCounterMode / 2) and their element-wise work not counted: "
                f"{listing(self.opaque)}")
        nodes = fuse_channel_shuffles(self.nodes, outputs, self._shapes)
        try:
            return Graph(nodes=tuple(nodes), outputs=tuple(outputs), meta=meta)
        except SpecError as e:  # our own naming or wiring: never the user's spec error
            raise RuntimeError(f"the torch frontend built an invalid graph: {e}") from e

    # --- steps --------------------------------------------------------------------------

    def _inputs(self, step: Step) -> tuple[list[_Value], list[str]]:
        values, tensors = [], list(step.tensor_names)
        for key in step.arg_keys:
            entry = self._entries.get(key)
            if isinstance(entry, _Value):
                values.append(entry)
            elif isinstance(entry, _Const):
                tensors += entry.tensor_names
        tensors += self._batch_counters(tensors)
        if step.module_path is not None and self._module_calls[step.module_path] == 0:
            module = self.root.get_submodule(step.module_path)
            prefix = step.module_path
            tensors += [f"{prefix}.{n}" for n, _ in module.named_parameters()]
            tensors += [f"{prefix}.{n}" for n, _ in module.named_buffers()]
        return values, tensors

    def _tensor_step(self, step: Step) -> None:
        values, tensors = self._inputs(step)
        if not values and step.flops:
            self._constant_work(step, tensors)
            return
        if not values:
            self._entries[step.key] = _Const(tuple(tensors), step.flops,
                                             self._const_ops(step) | {step.call.op or ""})
            return
        if step.call.op in ALIASES and len({v.name for v in values}) == 1 \
                and not self._uncounted(tensors):
            self._entries[step.key] = values[0]
            return
        if step.call.op in SHAPE_OF_SECOND and step.arg_keys and not tensors \
                and self._entries.get(step.arg_keys[0]) is values[0]:
            if step.call.op in BROADCASTS:
                self._entries[step.key] = values[0]
                return
            # x.reshape_as(y) is x.reshape(y.shape): y gives only a shape, not an edge
            call = dataclasses.replace(step.call, op="reshape", args=step.call.args[:1])
            step, values = dataclasses.replace(step, call=call), values[:1]
        params, buffers = self._claim(tensors)
        name = self._name(step)
        layer = self._convert(step, name, values, params, buffers)
        if layer is None:
            shared = step.module_path is not None and name != step.module_path
            label = f"{step.label}, weights of {step.module_path}" if shared else None
            layer = self._opaque(step, name, values, step.call.out, step.flops, params, buffers,
                                 op=label)
            values = values[:1]
        self._add(name, layer, tuple(v.name for v in values), tuple(step.call.out.shape),
                  step.key)

    def _constant_work(self, step: Step, tensors: list[str]) -> None:
        """Counted work on a tensor not computed from the input (RAFT's first flow update
        convolves a grid of coordinates): an opaque node hung from the input, so torch's
        MACs are in the totals."""
        params, buffers = self._claim(tensors)
        name = self._name(step)
        first = self._entries[self._input_key]
        label = f"{step.label} on a tensor not computed from the input"
        self.opaque.append(f"{name} ({label})")
        layer = L.Opaque(op=label, in_shape=first.shape, out_shape=tuple(step.call.out.shape),
                         macs=step.flops // 2, params=params, buffers=buffers)
        self._add(name, layer, (INPUT_NAME,), tuple(step.call.out.shape), step.key)

    def _multi_step(self, step: Step) -> None:
        values, tensors = self._inputs(step)
        params, buffers = self._claim(tensors) if values else (0, 0)
        name, flops = self._name(step), step.flops
        self._names.add(name)  # its elements are `name[i]`: the next such call is `name_1`
        if values and self._first_output(step, name, values, params, buffers):
            return
        part = self._part(step, values)
        for i, (out, key) in enumerate(zip(step.call.out, step.element_keys, strict=False)):
            if not isinstance(out, torch.Tensor):
                continue
            if not values:
                self._entries[key] = _Const(tuple(tensors))
                continue
            element = f"{name}[{i}]"
            layer = None if part is None else self._checked(
                dataclasses.replace(part, index=i), element, (values[0].shape,), out,
                params, buffers, flops)
            if layer is None:
                layer = self._opaque(step, element, values, out, flops, params, buffers,
                                     op=f"{step.label}[{i}]")
            self._add(element, layer, (values[0].name,), tuple(out.shape), key)
            flops, params, buffers = 0, 0, 0  # the first element carries the call's counts
        if step.module_path is not None:
            self._module_calls[step.module_path] += 1

    def _part(self, step: Step, values: list[_Value]) -> L.Layer | None:
        """Part 0's layer of a split, chunk or unbind of one node (each part node gets its
        own index), or None: the parts stay opaque."""
        if step.module_path is not None or len(values) != 1 \
                or len(step.call.tensor_args) != 1:
            return None
        layer = convert_function(step.call) if step.call.op else None
        return layer if isinstance(layer, L.PARTS) else None

    def _first_output(self, step: Step, name: str, values: list[_Value], params: int,
                      buffers: int) -> bool:
        """A module returning (out, extras), as nn.MultiheadAttention's (out, weights),
        converted for `out`; an extra tensor stays opaque, its work counted in `out`'s."""
        path = step.module_path
        first = step.call.out[0] if step.call.out else None
        if path is None or not isinstance(first, torch.Tensor) \
                or type(self.root.get_submodule(path)) not in FIRST_OUTPUT_MODULES:
            return False
        call = dataclasses.replace(step.call, out=first)
        layer = self._convert(dataclasses.replace(step, call=call), name, values, params,
                              buffers)
        if layer is None:
            return False
        self._add(name, layer, tuple(v.name for v in values), tuple(first.shape),
                  step.element_keys[0])
        for i, (out, key) in enumerate(zip(step.call.out, step.element_keys, strict=False)):
            if i and isinstance(out, torch.Tensor):
                element = f"{name}[{i}]"
                extra = self._opaque(step, element, values[:1], out, 0, 0, 0,
                                     op=f"{step.label}[{i}]")
                self._add(element, extra, (values[0].name,), tuple(out.shape), key)
        self._module_calls[path] += 1
        return True

    def _convert(self, step: Step, name: str, values: list[_Value], params: int,
                 buffers: int) -> L.Layer | None:
        if step.key in self._carrying:
            return None  # a layer kind would not count the constant's work: torch's count
        call, weighted = step.call, step.module_path is None and step.call.op in READS_WEIGHTS
        constants = len(call.tensor_args) - len(values)
        if constants and not weighted:
            return None  # a tensor argument that is not a node (a constant): not a plain layer
        if step.module_path is not None:
            layer = convert_module(self.root.get_submodule(step.module_path), call)
        else:
            layer = convert_function(dataclasses.replace(
                call, constants=constants, owned=(params, buffers),
                weight_ops=self._const_ops(step))) if call.op else None
        if layer is None:
            return None
        distinct = {v.name for v in values}
        if not isinstance(layer, L.MERGES) and len(distinct) != 1:
            return None
        return self._checked(layer, name, tuple(v.shape for v in values), call.out, params,
                             buffers, step.flops)

    def _checked(self, layer: L.Layer, name: str, ins: tuple[tuple[int, ...], ...],
                 out: torch.Tensor, params: int, buffers: int, flops: int) -> L.Layer | None:
        """The layer only stands for the call when our rules give torch's numbers."""
        try:
            shape = SHAPES.get(type(layer))(layer, ins)
        except ValueError:
            return None
        if tuple(shape) != tuple(out.shape):
            self.diagnostics.append(f"{name}: cnnstat's {layer.kind} shape {list(shape)} != "
                                    f"torch's {list(out.shape)}; kept opaque")
            return None
        counted = PARAMS.get(type(layer))(layer, ins, shape)
        if (counted.params, counted.buffers) != (params, buffers):
            return None  # shared or extra tensors: the module's own sizes decide
        if isinstance(layer, L.WEIGHT_LAYERS):
            macs = OPS.get(type(layer))(layer, ins, shape).macs
            if 2 * macs != flops:
                self.diagnostics.append(f"{name}: cnnstat counts {macs} MACs, torch's "
                                        f"FlopCounterMode {flops} FLOPs")
        return layer

    def _opaque(self, step: Step, name: str, values: list[_Value], out: torch.Tensor,
                flops: int, params: int, buffers: int, op: str | None = None) -> L.Opaque:
        label = op or step.label
        self.opaque.append(f"{name} ({label})")
        extra = sorted({v.name for v in values[1:]} - {values[0].name})
        if extra:
            self.diagnostics.append(
                f"{name}: opaque op '{label}' also reads {', '.join(extra)}; the graph keeps "
                f"only its edge from {values[0].name} (receptive fields through it are partial)")
        return L.Opaque(op=label, in_shape=values[0].shape, out_shape=tuple(out.shape),
                        macs=flops // 2, params=params, buffers=buffers)

    def _const_ops(self, step: Step) -> frozenset[str]:
        """The ops that computed the constants `step` reads (a standardized weight)."""
        entries = [self._entries.get(key) for key in step.arg_keys]
        return frozenset().union(*(e.ops for e in entries if isinstance(e, _Const)))

    def _with_constant_work(self, step: Step) -> Step:
        """The step with the torch count of the constants it reads, each counted once."""
        carried = 0
        for key in step.arg_keys:
            entry = self._entries.get(key)
            if isinstance(entry, _Const) and entry.flops:
                carried += entry.flops
                self._entries[key] = dataclasses.replace(entry, flops=0)
        if not carried:
            return step
        self._carrying.add(step.key)
        return dataclasses.replace(step, flops=step.flops + carried)

    # --- names, tensors, nodes ----------------------------------------------------------

    def _name(self, step: Step) -> str:
        path = step.module_path
        if path is not None:
            calls = self._module_calls[path]
            if step.call.out is not None and not isinstance(step.call.out, tuple | list):
                self._module_calls[path] += 1
            # A module called again gets torch's own suffix for repeated calls: `relu@1`.
            return self._unique(path if calls == 0 else f"{path}@{calls}", reserved_ok=True)
        op = step.call.op or step.label.rsplit(".", 1)[-1]
        return self._unique(f"{step.scope}.{op}" if step.scope else op)

    def _unique(self, base: str, reserved_ok: bool = False) -> str:
        name, n = base, 0
        while name in self._names or (not reserved_ok and name in self._reserved):
            n += 1
            name = f"{base}_{n}"
        return name

    def _tensor(self, name: str) -> tuple[torch.Tensor | None, str]:
        owner, _, attr = name.rpartition(".")
        module = self.root.get_submodule(owner)
        if not hasattr(module, attr) and self.original is not self.root:
            module = self.original.get_submodule(owner)
        kind = "param" if attr in module._parameters else \
            "buffer" if attr in module._buffers else "constant"
        return getattr(module, attr, None), kind

    def _batch_counters(self, names: list[str]) -> list[str]:
        """A batch norm traced through (timm's BatchNormAct2d calls F.batch_norm) reads its
        running stats but, at inference, not the `num_batches_tracked` counter it updates
        in training: that buffer belongs to the same layer, as in nn.BatchNorm2d."""
        counters = []
        for name in names:
            owner, _, attr = name.rpartition(".")
            if attr == "running_mean":
                counter = f"{owner}.num_batches_tracked" if owner else "num_batches_tracked"
                if self._tensor(counter)[0] is not None:
                    counters.append(counter)
        return counters

    def _uncounted(self, names: list[str]) -> bool:
        return any(self._tensor(n)[1] != "constant" and id(self._tensor(n)[0]) not in
                   self._counted for n in names)

    def _claim(self, names: list[str]) -> tuple[int, int]:
        sizes = {"param": 0, "buffer": 0, "constant": 0}
        for name in names:
            tensor, kind = self._tensor(name)
            if tensor is None or id(tensor) in self._counted:
                continue
            self._counted.add(id(tensor))
            sizes[kind] += tensor.numel()
            if kind == "param":
                self._claimed += tensor.numel()
                self._frozen_claimed += 0 if tensor.requires_grad else tensor.numel()
        return sizes["param"], sizes["buffer"]

    def _add(self, name: str, layer: L.Layer, inputs: tuple[str, ...],
             shape: tuple[int, ...], key: Key) -> None:
        self._names.add(name)
        self._shapes[name] = shape
        whole = 0 < self._frozen_claimed == self._claimed  # a spec can say `frozen: true`
        self.nodes.append(Node(name=name, layer=layer, inputs=inputs, loc=self._loc(),
                               frozen=whole, frozen_params=0 if whole else self._frozen_claimed))
        self._claimed = self._frozen_claimed = 0
        self._entries[key] = _Value(name, shape)

    def _loc(self) -> Location:
        return Location(self.source)

    def _report_unused(self) -> None:
        unused: Counter[str] = Counter()
        for path, module in self.original.named_modules():
            for tensor in module.parameters(recurse=False):
                if id(tensor) not in self._counted:
                    self._counted.add(id(tensor))
                    unused[path.split(".")[0] or "(root)"] += tensor.numel()
        self.unused = dict(unused)
        if unused:
            self.diagnostics.append(
                "parameters of modules the forward never called are not in the totals: "
                + listing([f"{p} ({n:,})" for p, n in unused.items()]))
