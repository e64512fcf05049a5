"""Scope tree -> spec entries: names, `from:` references, groups, calls and repeats.

The loader names an unnamed entry `<kind><n>` counted per scope and resolves `from:`
lexically (current scope, then outwards; docs/spec.md), so the writer simulates both: it
omits a `name:` the counter would produce anyway, and writes the shortest reference that
resolves to the right layer from where it stands. Inside a block body the call's input
is written `$input`, which is what lets one body serve every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnstat.ir import Graph, Node
from cnnstat.spec import schema as S
from cnnstat.writer.entries import DEFAULTS, Entry, layer_entry
from cnnstat.writer.tree import Scope

BLOCK_INPUT = "$input"
LOCAL = "__local"  # the entry's local name, named or automatic; dropped when written
HIDDEN = (LOCAL, DEFAULTS)  # keys the writer uses and never writes


@dataclass(slots=True)
class Call:
    """How one scope is written as a call of a block."""

    block: str
    args: dict[str, Any]
    free: frozenset[str] = frozenset()  # arguments only a part the call skips reads


@dataclass(slots=True)
class Repeat:
    """Calls of one block in a row: a whole group (a named repeat) or a run inside one."""

    block: str
    count: int
    args: dict[str, Any]  # values or expressions of the index `i`
    each: str | None = None  # the iterations' names, where not `0`, `1`, ... (repeats.py)


@dataclass(slots=True)
class Plan:
    calls: dict[int, Call] = field(default_factory=dict)  # id(scope) -> call
    repeats: dict[int, Repeat] = field(default_factory=dict)  # id(scope) -> its repeat
    # id(scope) -> {index of a run's first child: the run, as an unnamed repeat}
    runs: dict[int, dict[int, Repeat]] = field(default_factory=dict)


class Emitter:
    def __init__(self, graph: Graph, root: Scope, plan: Plan | None = None):
        self.input_name = graph.nodes[0].name
        self.plan = plan or Plan()
        self.known = {n.name for n in graph.nodes} | {".".join(s.path) for s in root.scopes()}
        self.full = False  # write default numbers too (block bodies, before arguments)
        # For an optional part (`when:`; blocks.py): inputs written as another tensor,
        # inputs always written out (as the given text), and the flags of the groups and
        # layers that carry one (by id).
        self.alias: dict[str, str] = {}
        self.forced: dict[str, str] = {}
        self.optional: dict[int, str] = {}

    def body(self, scope: Scope, prev: str, bound: str | None) -> list[Entry]:
        """The entries of `scope`'s children, the first taking `prev` implicitly;
        `bound` is the tensor `$input` stands for (inside a block body)."""
        counters: dict[str, int] = {}
        entries = []
        runs = self.plan.runs.get(id(scope), {})
        at = 0
        while at < len(scope.children):
            child, run = scope.children[at], runs.get(at)
            if run is not None:
                last = scope.children[at + run.count - 1]
                entries.append(self.run_entry(run, child, scope.path, prev, bound))
                prev, at = last.nodes()[-1].name, at + run.count
                continue
            if isinstance(child, Node):
                entries.append(self.leaf(child, scope.path, prev, bound, counters))
                prev = child.name
            else:
                entries.append(self.scope_entry(child, scope.path, prev, bound))
                prev = child.nodes()[-1].name
            at += 1
        return entries

    def block_body(self, scope: Scope, *, alias: dict[str, str] | None = None,
                   forced: dict[str, str] | None = None,
                   optional: dict[int, str] | None = None) -> list[Entry]:
        """`scope` written as a block body: groups inside, its input as `$input`."""
        assert scope.entry is not None
        self.full = True
        self.alias, self.forced, self.optional = alias or {}, forced or {}, optional or {}
        try:
            return self.body(scope, scope.entry, scope.entry)
        finally:
            self.full = False
            self.alias, self.forced, self.optional = {}, {}, {}

    def scope_entry(self, scope: Scope, where: tuple[str, ...], prev: str,
                    bound: str | None) -> Entry:
        repeat = self.plan.repeats.get(id(scope))
        call = self.plan.calls.get(id(scope))
        if repeat is not None:
            entry: Entry = {"repeat": repeat.count, repeat.block: repeat.args or None}
        elif call is not None:
            entry = {call.block: call.args or None}
        elif id(scope) in self.optional:  # a named entry skipped by `when:` is its input
            entry = {"name": scope.local, "when": self.optional[id(scope)]}
            if scope.entry != prev:
                entry["from"] = self.ref(scope.entry, where, bound)
            return {**entry, "layers": self.body(scope, scope.entry, bound),
                    LOCAL: scope.local}
        else:
            return {"name": scope.local, "layers": self.body(scope, prev, bound),
                    LOCAL: scope.local}
        entry["name"] = scope.local
        if repeat is not None and repeat.each is not None:
            entry["each"] = repeat.each
        entry[LOCAL] = scope.local
        if scope.entry != prev:
            entry["from"] = self.ref(scope.entry, where, bound)
        return entry

    def run_entry(self, run: Repeat, first: Scope, where: tuple[str, ...], prev: str,
                  bound: str | None) -> Entry:
        """Calls in a row inside a group: an unnamed repeat whose `each:` names the
        iterations as the group's own scopes."""
        entry: Entry = {"repeat": run.count, run.block: run.args or None, "each": run.each,
                        LOCAL: first.local}
        if first.entry != prev:
            entry["from"] = self.ref(first.entry, where, bound)
        return entry

    def leaf(self, node: Node, where: tuple[str, ...], prev: str, bound: str | None,
             counters: dict[str, int]) -> Entry:
        entry = layer_entry(node.layer, node.name, full=self.full)
        local = node.name.rsplit(".", 1)[-1]
        short = S.KINDS[node.layer.kind].auto_name
        if local == f"{short}{counters.get(short, 0) + 1}":
            counters[short] = counters.get(short, 0) + 1  # the loader's own name
        else:
            entry["name"] = local
        entry[LOCAL] = local
        flag = self.optional.get(id(node))
        if flag is not None:  # a residual tail (blocks.py): skipped, it stands for its input
            entry["name"], entry["when"] = local, flag
        if node.frozen:  # a layer frozen in part (torch) has no spec equivalent: trainable
            entry["frozen"] = True
        inputs = tuple(self.alias.get(i, i) for i in node.inputs)
        if inputs != (prev,) or prev in self.forced:
            refs = [self.forced.get(i) or self.ref(i, where, bound) for i in inputs]
            entry["from"] = refs[0] if len(refs) == 1 else refs
        regions = getattr(node.layer, "regions", None)
        if regions is not None:  # only a per-region scope sets it
            return {"regions": regions, "layers": [entry], LOCAL: local}
        return entry

    def ref(self, target: str, where: tuple[str, ...], bound: str | None) -> str:
        """The shortest name that resolves to `target` from scope `where`."""
        if bound is not None and target == bound:
            return BLOCK_INPUT
        if target == self.input_name:
            return "input"
        parts = target.split(".")
        for size in range(1, len(parts) + 1):
            name = ".".join(parts[-size:])
            if self.resolves(name, where) == target:
                return name
        return target

    def resolves(self, name: str, where: tuple[str, ...]) -> str | None:
        for depth in range(len(where), -1, -1):
            candidate = ".".join((*where[:depth], name))
            if candidate in self.known:
                return candidate
        return None
