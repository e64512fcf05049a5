"""The layer graph: nodes with explicit input edges, validated once, never mutated."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cnnstat.errors import Location, SpecError
from cnnstat.ir.layers import MERGES, Input, Layer

ChwShape = tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One layer instance. `name` is its full dotted path (`layer3.1.conv2`)."""

    name: str
    layer: Layer
    inputs: tuple[str, ...] = ()
    loc: Location | None = None

    @property
    def kind(self) -> str:
        return self.layer.kind


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelMeta:
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


@dataclass(frozen=True, slots=True)
class Graph:
    """A DAG in topological order: every node's inputs come earlier in `nodes`.

    The first node is the single `Input`. `outputs` name the nodes whose values the model
    returns. Construction validates all of this, so analyzers can trust the structure.
    """

    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    meta: ModelMeta
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            _check_node(node, i, index)
            index[node.name] = i
        if not self.nodes or not isinstance(self.nodes[0].layer, Input):
            raise SpecError("a graph starts with its input node")
        if not self.outputs:
            raise SpecError("a graph has at least one output")
        for out in self.outputs:
            if out not in index:
                raise SpecError(f"output '{out}' names no layer")
        object.__setattr__(self, "_index", MappingProxyType(index))

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
    else:
        expected_ok = arity == 1
    if not expected_ok:
        raise SpecError(
            f"{node.kind} takes {'no' if is_input else 'one'} input, got {arity}",
            node.loc,
            layer=node.name,
        )
