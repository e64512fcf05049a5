"""The layer graph: nodes with explicit input edges, validated once, never mutated."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import field
from types import MappingProxyType

from cnnstat.errors import Location, SpecError
from cnnstat.ir.layers import MERGES, Input, Layer, takes_reference
from cnnstat.ir.record import Record, record

ChwShape = tuple[int, ...]


@record
class Node(Record):
    """One layer instance. `name` is its full dotted path (`layer3.1.conv2`)."""

    name: str
    layer: Layer
    inputs: tuple[str, ...] = ()
    loc: Location | None = None
    # Parameters that get no gradient (torchinfo's "non-trainable"): every one of the
    # layer's when `frozen` (a spec's `frozen: true`, or a torch layer whose parameters
    # all have requires_grad=False), else `frozen_params` of them (a torch layer frozen
    # in part, e.g. only its bias). The count of a spec layer is known only once its
    # input channels are, hence the flag.
    frozen: bool = False
    frozen_params: int = 0

    @property
    def kind(self) -> str:
        return self.layer.kind


@record
class ModelMeta(Record):
    """What a spec says about itself; `input` is the default input shape without batch."""

    name: str
    title: str | None = None
    family: str | None = None
    year: int | None = None
    paper: str | None = None
    follows: str | None = None
    input: ChwShape | None = None
    notes: str | None = None
    source: str | None = None
    # (label, name prefix) per stage of a detector (backbone, FPN, RPN, RoI heads): reports
    # add each stage's totals; a layer belongs to the first stage whose prefix it starts with.
    stages: tuple[tuple[str, str], ...] = ()


@record(kw_only=False)
class Graph(Record):
    """A DAG in topological order: every node's inputs come earlier in `nodes`.

    The first node is the single `Input`. `outputs` name the nodes whose values the model
    returns. Construction validates all of this, so analyzers can trust the structure.
    """

    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    meta: ModelMeta
    # Training-only outputs (Inception's auxiliary classifiers): their parameters exist,
    # but inference never runs the layers that only feed them.
    aux_outputs: tuple[str, ...] = ()
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    _inference: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            _check_node(node, i, index)
            index[node.name] = i
        if not self.nodes or not isinstance(self.nodes[0].layer, Input):
            raise SpecError("a graph starts with its input node")
        if not self.outputs:
            raise SpecError("a graph has at least one output")
        for out in (*self.outputs, *self.aux_outputs):
            if out not in index:
                raise SpecError(f"output '{out}' names no layer")
        for out in self.aux_outputs:
            if out in self.outputs:
                raise SpecError(f"'{out}' is both an output and an aux output")
        object.__setattr__(self, "_index", MappingProxyType(index))
        object.__setattr__(self, "_inference", self._ancestors(self.outputs))

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def node(self, name: str) -> Node:
        return self.nodes[self._index[name]]

    def position(self, name: str) -> int:
        return self._index[name]

    @property
    def input_node(self) -> Node:
        return self.nodes[0]

    def _ancestors(self, names: tuple[str, ...]) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.node(name).inputs)
        return frozenset(seen)

    def is_train_only(self, name: str) -> bool:
        """True for a layer that only feeds aux outputs (skipped at inference)."""
        return bool(self.aux_outputs) and name not in self._inference

    def train_only_names(self) -> frozenset[str]:
        """Every layer that only feeds aux outputs (empty without aux outputs)."""
        if not self.aux_outputs:
            return frozenset()
        return frozenset(n.name for n in self.nodes if n.name not in self._inference)

    def inference_graph(self) -> Graph:
        """The graph inference runs: without the layers that only feed aux outputs."""
        if not self.aux_outputs:
            return self
        nodes = tuple(n for n in self.nodes if n.name in self._inference)
        return Graph(nodes, self.outputs, self.meta)


def _check_node(node: Node, position: int, index: Mapping[str, int]) -> None:
    if node.name in index:
        raise SpecError(f"duplicate layer name '{node.name}'", node.loc, layer=node.name)
    is_input = isinstance(node.layer, Input)
    if is_input != (position == 0):
        raise SpecError("the input node must come first, and only once", node.loc)
    for src in node.inputs:
        if src not in index:
            raise SpecError(
                f"input '{src}' is not an earlier layer", node.loc, layer=node.name
            )
    arity = len(node.inputs)
    if is_input:
        expected_ok = arity == 0
    elif isinstance(node.layer, MERGES):
        expected_ok = arity >= 1
    elif takes_reference(node.layer):
        expected_ok = arity == 2
    else:
        expected_ok = arity == 1
    if not expected_ok:
        wanted = "no" if is_input else "two" if takes_reference(node.layer) else "one"
        raise SpecError(
            f"{node.kind} takes {wanted} input{'s' if wanted == 'two' else ''}, got {arity}",
            node.loc,
            layer=node.name,
        )
