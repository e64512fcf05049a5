"""The scope tree of a graph: node names `a.b.conv1` read as nested scopes `a` > `b`.

A spec can only write a scope as one contiguous run of entries, so the tree follows the
graph's (topological) node order: a scope that is left and entered again becomes two
sibling groups of the same name, which the loader accepts (node names stay unique).

For each scope the tree also records what a block call needs: its single outside input
(`entry`, the tensor a call would receive) when every layer inside takes its inputs from
inside the scope or from that one tensor. Scopes that reach further out can only be
written as plain groups.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cnnstat.ir import Graph, Node


@dataclass(eq=False, slots=True)
class Scope:
    path: tuple[str, ...]
    children: list[Scope | Node] = field(default_factory=list)
    entry: str | None = None  # the one tensor from outside, when self-contained

    @property
    def local(self) -> str:
        return self.path[-1]

    def nodes(self) -> list[Node]:
        out: list[Node] = []
        for child in self.children:
            out.extend(child.nodes() if isinstance(child, Scope) else (child,))
        return out

    def scopes(self) -> list[Scope]:
        """This scope and every scope inside it, outermost first."""
        out = [self]
        for child in self.children:
            if isinstance(child, Scope):
                out.extend(child.scopes())
        return out


def scope_tree(graph: Graph) -> Scope:
    """The root scope of `graph`'s non-input nodes, with `entry` set where possible."""
    root = Scope(())
    stack = [root]
    for node in graph.nodes[1:]:
        *path, _ = node.name.split(".")
        keep = 0
        while keep < min(len(path), len(stack) - 1) and stack[keep + 1].local == path[keep]:
            keep += 1
        del stack[keep + 1:]
        for depth in range(keep, len(path)):
            scope = Scope(tuple(path[:depth + 1]))
            stack[-1].children.append(scope)
            stack.append(scope)
        stack[-1].children.append(node)
    for scope in root.scopes()[1:]:
        scope.entry = _single_outside_input(scope)
    return root


def _single_outside_input(scope: Scope) -> str | None:
    nodes = scope.nodes()
    inside = {n.name for n in nodes}
    outside = {i for n in nodes for i in n.inputs if i not in inside}
    return outside.pop() if len(outside) == 1 else None


def spec_names(graph: Graph) -> dict[str, str]:
    """Node names that a spec cannot write (`relu@1`) -> a free name that it can."""
    taken = {n.name for n in graph.nodes}
    renamed: dict[str, str] = {}
    for node in graph.nodes[1:]:
        parts = node.name.split(".")
        fixed = [_spec_segment(p) for p in parts]
        if fixed == parts:
            continue
        name, n = ".".join(fixed), 2
        while name in taken:
            name, n = f"{'.'.join(fixed)}_{n}", n + 1
        taken.add(name)
        renamed[node.name] = name
    return renamed


def _spec_segment(segment: str) -> str:
    fixed = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in segment)
    return fixed or "_"


def with_names(graph: Graph, renamed: dict[str, str]) -> Graph:
    if not renamed:
        return graph

    def name(n: str) -> str:
        return renamed.get(n, n)

    nodes = tuple(dataclasses.replace(n, name=name(n.name), inputs=tuple(map(name, n.inputs)))
                  for n in graph.nodes)
    return Graph(nodes, tuple(map(name, graph.outputs)), graph.meta,
                 tuple(map(name, graph.aux_outputs)))
