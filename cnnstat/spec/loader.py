"""YAML spec -> `Graph`: expands blocks, `repeat`, `parallel` and references into nodes.

The language is documented key by key in docs/spec.md; `expander.py` has the semantics
of entries and names, `layer_entry.py` of one layer's keys, `blocks.py` of block
definitions and calls, `backbone.py` of inlined zoo specs.
"""

from __future__ import annotations

from pathlib import Path

from cnnstat.errors import SpecError
from cnnstat.ir import Graph, ModelMeta
from cnnstat.ir.layers import Input
from cnnstat.nogc import without_gc
from cnnstat.spec import values as V
from cnnstat.spec.blocks import parse_blocks
from cnnstat.spec.expander import (
    MAX_BLOCK_DEPTH,
    MAX_EMPTY_ITERATIONS,
    MAX_NODES,
    MAX_STEPS,
    Expander,
)
from cnnstat.spec.scope import BLOCK_INPUT, INPUT_NAME, Scope
from cnnstat.spec.syntax import TOP_KEYS, as_seq, check_keys
from cnnstat.spec.yaml_tree import YMap, YNode, YSeq, plain, read_file

__all__ = ["BLOCK_INPUT", "INPUT_NAME", "MAX_BLOCK_DEPTH", "MAX_EMPTY_ITERATIONS", "MAX_NODES",
           "MAX_STEPS", "build_graph", "load_spec"]
_Expander = Expander  # the name tests/test_scaling.py counts calls on


@without_gc
def load_spec(path: str | Path, shown_as: str | None = None) -> Graph:
    """Load a spec file into a validated graph."""
    path = Path(path)
    root = read_file(path, shown_as)
    return build_graph(root, default_name=path.stem, source=shown_as or str(path))


def build_graph(root: YNode, *, default_name: str, source: str | None) -> Graph:
    if not isinstance(root, YMap):
        raise SpecError("a spec is a mapping with at least a 'layers' list", root.loc)
    check_keys(root, TOP_KEYS, "spec")
    if "layers" not in root.items:
        raise SpecError("a spec needs a 'layers' list", root.loc)
    meta = _meta(root, default_name, source)
    expander = _Expander(parse_blocks(root.get("blocks")))
    scope = Scope(path=(), env={})
    expander.add(INPUT_NAME, Input(), (), root.loc)
    last = expander.seq(as_seq(root.items["layers"], "layers"), scope, INPUT_NAME)
    outputs = _output_refs(expander, scope, root.get("outputs")) or (last,)
    aux = _output_refs(expander, scope, root.get("aux_outputs"))
    for name in aux:
        if name in outputs:  # Graph refuses it too, but without a location
            raise SpecError(f"'{name}' is both an output and an aux output",
                            root.items["aux_outputs"].loc)
    return Graph(tuple(expander.nodes), outputs, meta, aux)


def _output_refs(expander: Expander, scope: Scope, node: YNode | None) -> tuple[str, ...]:
    if node is None:
        return ()
    refs = node.items if isinstance(node, YSeq) else (node,)
    return tuple(expander.resolve(ref, scope) for ref in refs)


def _meta(root: YMap, default_name: str, source: str | None) -> ModelMeta:
    def text(key: str) -> str | None:
        node = root.get(key)
        return None if node is None else V.text(node, key)

    year = root.get("year")
    input_node = root.get("input")
    shape = None
    if input_node is not None:
        if not isinstance(input_node, YSeq) or not 1 <= len(input_node.items) <= 4:
            raise SpecError("input is a list [C, H, W] (batch excluded; [C, L] for 1-D, "
                            "[C, D, H, W] for 3-D)", input_node.loc)
        shape = tuple(V.integer(n, {}, "input size") for n in input_node.items)
    notes = root.get("notes")
    return ModelMeta(
        name=text("name") or default_name,
        title=text("title"),
        family=text("family"),
        year=None if year is None else V.integer(year, {}, "year"),
        paper=text("paper"),
        follows=text("follows"),
        input=shape,
        notes=None if notes is None else str(plain(notes)).strip(),
        source=source,
    )
