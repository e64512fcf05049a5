"""`backbone:` entries: another zoo spec's layers, inlined up to `until`, with `patch`es."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from cnnstat.errors import Location, SpecError, did_you_mean
from cnnstat.ir import Graph
from cnnstat.ir.layers import Layer
from cnnstat.spec import schema as S
from cnnstat.spec import values as V
from cnnstat.spec.layer_entry import field, valid_keys
from cnnstat.spec.yaml_tree import YMap, YNode

_LOADING_BACKBONES: list[str] = []  # zoo specs being inlined now (to stop cycles)


def zoo_graph(ref: YNode) -> Graph:
    """The zoo spec a `backbone:` names, loaded once per name (a cycle is an error)."""
    from cnnstat.spec.zoo import load_zoo, zoo_names  # zoo imports the loader

    zoo = V.text(ref, "backbone")
    if zoo not in zoo_names():
        raise SpecError(f"backbone '{zoo}' is not a zoo spec{did_you_mean(zoo, zoo_names())}",
                        ref.loc)
    if zoo in _LOADING_BACKBONES:
        raise SpecError(f"backbone '{zoo}' uses itself "
                        f"({' -> '.join((*_LOADING_BACKBONES, zoo))})", ref.loc)
    _LOADING_BACKBONES.append(zoo)
    try:
        return load_zoo(zoo)
    finally:
        _LOADING_BACKBONES.pop()


def ancestors(graph: Graph, last: str) -> set[str]:
    seen: set[str] = set()
    stack = [last]
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(graph.node(name).inputs)
    return seen


def patches(node: YNode | None, graph: Graph, last: str) -> dict[str, YMap]:
    """`patch: {layer name: {key: value}}`, each naming an inlined layer."""
    if node is None:
        return {}
    if not isinstance(node, YMap):
        raise SpecError("patch maps layer names to {key: value} changes", node.loc)
    keep = ancestors(graph, last)
    for key, value in node.items.items():
        if key not in keep or key == graph.input_node.name:
            raise SpecError(f"patch: '{key}' is not an inlined layer of '{graph.meta.name}'"
                            f"{did_you_mean(key, sorted(keep))}", node.keys[key])
        if not isinstance(value, YMap):
            raise SpecError(f"patch: '{key}' takes a mapping of keys to new values", value.loc)
    return dict(node.items)  # type: ignore[arg-type]


def patched(layer: Layer, fields: YMap, env: Mapping, full: str) -> Layer:
    """`layer` with the fields a patch sets (`full` is the inlined node's name)."""
    spec = S.KINDS[layer.kind]
    kwargs = {}
    for key, value in fields.items.items():
        canonical = key if key in spec.fields else S.FIELD_ALIASES.get(key, key)
        if canonical not in spec.fields:
            raise SpecError(f"no key '{key}'{did_you_mean(key, valid_keys(spec))}",
                            fields.keys[key], layer=full, kind=spec.name)
        kwargs[canonical] = field(spec, canonical, value, env, full)
    try:
        return dataclasses.replace(layer, **kwargs)
    except ValueError as e:
        raise SpecError(str(e), fields.loc, layer=full, kind=spec.name) from None


def last_layer(graph: Graph, name: str, loc: Location) -> str:
    """`until:`'s layer: a layer's name, or a scope's (`layer4`), meaning its last layer."""
    if name in graph:
        return name
    inside = [n.name for n in graph if n.name.startswith(name + ".")]
    if inside:
        return inside[-1]
    scopes = {".".join(n.name.split(".")[:depth]) for n in graph
              for depth in range(1, n.name.count(".") + 1)}
    raise SpecError(f"backbone '{graph.meta.name}' has no layer or scope '{name}'"
                    f"{did_you_mean(name, [*(n.name for n in graph), *scopes])}", loc)
