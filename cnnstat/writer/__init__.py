"""Graph -> a readable spec that loads back into the same graph (`cnnstat export`).

    >>> from cnnstat.writer import spec_from_graph
    >>> text = spec_from_graph(graph).text

The writer reads node names as scopes (`layer3.1.conv2`), finds the scopes written alike
(blocks with arguments, repeats), and writes one layer per line. Before returning, it
loads its own text with the spec loader and compares the result with the graph it was
given, node by node (name, layer with every field, inputs) and output by output: a spec
that would analyze differently is never written. Layers the spec language cannot express
(opaque torch ops) and names that are not spec names are refused with the layer's path.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnstat.errors import AnalysisError, CnnstatError, listing
from cnnstat.ir import Graph
from cnnstat.ir.layers import Opaque
from cnnstat.writer.blocks import plan_blocks
from cnnstat.writer.emit import Emitter
from cnnstat.writer.render import spec_text
from cnnstat.writer.tree import scope_tree, spec_names, with_names


class ExportMismatchError(CnnstatError):
    """The written spec would not load back into the same graph: a writer bug."""


@dataclass(frozen=True, slots=True)
class Exported:
    text: str
    blocks: int
    renamed: dict[str, str]  # node names that are not spec names -> the names written


def spec_from_graph(graph: Graph, *, source: str | None = None, blocks: bool = True
                    ) -> Exported:
    """The spec for `graph`, verified to load back into an equal graph (up to `renamed`:
    torch names such as `layer1.0.relu@1`, a module called twice, become `relu_1`)."""
    from cnnstat import __version__

    opaque = [f"{n.name} ({n.layer.op})" for n in graph if isinstance(n.layer, Opaque)]
    if opaque:
        raise AnalysisError(f"cannot export: {len(opaque)} layer(s) have no spec equivalent "
                            f"(counted by torch, not by the spec language): "
                            f"{listing(opaque, limit=5)}")
    renamed = spec_names(graph)
    graph = with_names(graph, renamed)
    root = scope_tree(graph)
    emitter = Emitter(graph, root)
    found = plan_blocks(root, emitter)[1] if blocks else []
    layers = emitter.body(root, graph.nodes[0].name, None)
    header = (f"Exported by cnnstat {__version__} from {source or graph.meta.source or '?'}.\n"
              "Loading this spec gives the same layers, shapes and counts as the original "
              "(checked when written).")
    text = spec_text(graph, found, layers, header)
    verify(graph, text)
    return Exported(text, len(found), renamed)


def verify(graph: Graph, text: str) -> None:
    """Raise ExportMismatchError unless `text` loads into a graph equal to `graph`."""
    from cnnstat.spec.loader import build_graph
    from cnnstat.spec.yaml_tree import parse

    try:
        loaded = build_graph(parse(text, "<exported spec>"), default_name=graph.meta.name,
                             source=None)
    except CnnstatError as e:
        raise ExportMismatchError(f"the exported spec does not load: {e}") from None
    rename = {graph.nodes[0].name: loaded.nodes[0].name}

    def named(name: str) -> str:
        return rename.get(name, name)

    if len(loaded.nodes) != len(graph.nodes):
        raise ExportMismatchError(f"the exported spec has {len(loaded.nodes)} layers, the "
                                  f"model {len(graph.nodes)}")
    for mine, theirs in zip(graph.nodes[1:], loaded.nodes[1:], strict=True):
        if (mine.name, mine.layer, tuple(map(named, mine.inputs)), mine.frozen) != \
                (theirs.name, theirs.layer, theirs.inputs, theirs.frozen):
            raise ExportMismatchError(f"layer '{mine.name}' would load as '{theirs.name}' "
                                      f"{theirs.layer} from {theirs.inputs}")
    if tuple(map(named, graph.outputs)) != loaded.outputs or \
            tuple(map(named, graph.aux_outputs)) != loaded.aux_outputs:
        raise ExportMismatchError("the exported spec's outputs differ from the model's")


__all__ = ["ExportMismatchError", "Exported", "spec_from_graph", "verify"]
