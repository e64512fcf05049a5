"""YAML spec -> `Graph`: expands blocks, `repeat`, `parallel` and references into nodes.

The language is documented key by key in docs/spec.md. Names: every node gets a dotted
path built from scopes (named groups, block instances, named repeats and their
iteration index, parallel branches) and a local name (given with `name:` or counted per
kind: `conv1`, `conv2`, `bn1`, ...). References (`from:`) resolve lexically: the
innermost scope first, then outwards, so a block can refer to its own layers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from cnnstat.errors import LimitError, Location, SpecError, did_you_mean
from cnnstat.ir import Graph, ModelMeta, Node
from cnnstat.ir.layers import MERGES, REGION_ENTRIES, TWO_INPUTS, Input, Layer
from cnnstat.spec import schema as S
from cnnstat.spec import values as V
from cnnstat.spec.yaml_tree import YMap, YNode, YScalar, YSeq, plain, read_file

MAX_NODES = 1_000_000
MAX_STEPS = 2_000_000
MAX_BLOCK_DEPTH = 32
INPUT_NAME = "input"
BLOCK_INPUT = "$input"  # in `from:`: the input of the enclosing block call or repeat iteration

TOP_KEYS = (
    "name", "title", "family", "year", "paper", "follows", "input", "notes", "blocks",
    "layers", "outputs", "aux_outputs",
)
STRUCTURE_KEYS = ("repeat", "parallel", "layers", "backbone", "regions")
REPEAT_KEYS = ("repeat", "as", "layers", *S.COMMON_KEYS)
PARALLEL_KEYS = ("parallel", "merge", "dim", *S.COMMON_KEYS)
GROUP_KEYS = ("layers", *S.COMMON_KEYS)
REGIONS_KEYS = ("regions", "layers", *S.COMMON_KEYS)
BACKBONE_KEYS = ("backbone", "until", "patch", *S.COMMON_KEYS)
_LOADING_BACKBONES: list[str] = []  # zoo specs being inlined now (to stop cycles)
MERGE_WORDS = {"concat": "concat", "cat": "concat", "add": "add", "multiply": "multiply",
               "mul": "multiply"}


def load_spec(path: str | Path, shown_as: str | None = None) -> Graph:
    """Load a spec file into a validated graph."""
    path = Path(path)
    root = read_file(path, shown_as)
    return build_graph(root, default_name=path.stem, source=shown_as or str(path))


def build_graph(root: YNode, *, default_name: str, source: str | None) -> Graph:
    if not isinstance(root, YMap):
        raise SpecError("a spec is a mapping with at least a 'layers' list", root.loc)
    _check_keys(root, TOP_KEYS, "spec")
    if "layers" not in root.items:
        raise SpecError("a spec needs a 'layers' list", root.loc)
    meta = _meta(root, default_name, source)
    blocks = _blocks(root.get("blocks"))
    expander = _Expander(blocks)
    scope = _Scope(path=(), env={})
    expander.add(INPUT_NAME, Input(), (), root.loc)
    last = expander.seq(_seq(root.items["layers"], "layers"), scope, INPUT_NAME)
    outputs = _output_refs(expander, scope, root.get("outputs")) or (last,)
    aux = _output_refs(expander, scope, root.get("aux_outputs"))
    for name in aux:
        if name in outputs:  # Graph refuses it too, but without a location
            raise SpecError(f"'{name}' is both an output and an aux output",
                            root.items["aux_outputs"].loc)
    return Graph(tuple(expander.nodes), outputs, meta, aux)


def _output_refs(expander: _Expander, scope: _Scope, node: YNode | None) -> tuple[str, ...]:
    if node is None:
        return ()
    refs = node.items if isinstance(node, YSeq) else (node,)
    return tuple(expander.resolve(ref, scope) for ref in refs)


@dataclass(frozen=True, slots=True)
class _Block:
    name: str
    params: tuple[str, ...]
    defaults: dict[str, YNode]
    body: YSeq
    loc: Location


@dataclass(slots=True)
class _Scope:
    path: tuple[str, ...]
    env: dict
    parent: _Scope | None = None
    counters: dict[str, int] = field(default_factory=dict)
    # What `$input` names: the input of the innermost block call or repeat iteration.
    entry: str = INPUT_NAME

    def child(self, segment: str, env: dict | None = None) -> _Scope:
        return _Scope(self.path + (segment,), self.env if env is None else env, self,
                      entry=self.entry)

    def with_env(self, env: dict) -> _Scope:
        """Same names and counters, other variables (an unnamed repeat's iteration)."""
        return _Scope(self.path, env, self.parent, self.counters, self.entry)

    def entered(self, inp: str) -> _Scope:
        """This scope with `$input` naming `inp` (a block call or repeat iteration)."""
        self.entry = inp
        return self

    def full(self, local: str) -> str:
        return ".".join((*self.path, local))

    def auto(self, short: str) -> str:
        self.counters[short] = self.counters.get(short, 0) + 1
        return f"{short}{self.counters[short]}"


class _Expander:
    def __init__(self, blocks: dict[str, _Block]):
        self.blocks = blocks
        self.nodes: list[Node] = []
        self.names: set[str] = set()
        self.scope_outputs: dict[str, str] = {}
        self.depth = 0
        self.steps = 0
        self.in_regions = False  # inside a per-region scope (they do not nest)
        self.pending_regions: int | None = None  # for the scope's entry layer

    # ---- emitting -------------------------------------------------------------------
    def add(self, name: str, layer: Layer, inputs: tuple[str, ...], loc: Location) -> str:
        if name in self.names or name in self.scope_outputs:
            raise SpecError(f"duplicate layer name '{name}'", loc, layer=name)
        if len(self.nodes) >= MAX_NODES:
            raise LimitError(f"the spec expands to more than {MAX_NODES} layers", loc)
        self.nodes.append(Node(name=name, layer=layer, inputs=inputs, loc=loc))
        self.names.add(name)
        return name

    def seq(self, entries: YSeq, scope: _Scope, inp: str) -> str:
        for entry in entries.items:
            inp = self.entry(entry, scope, inp)
        return inp

    def entry(self, node: YNode, scope: _Scope, inp: str) -> str:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise LimitError(f"the spec takes more than {MAX_STEPS} expansion steps", node.loc)
        node = _as_map(node)
        when = node.get("when")
        if when is not None and not V.boolean(when, scope.env, "when"):
            return inp
        sources = self.sources(node, scope, inp)
        if "repeat" in node.items:
            return self.repeat(node, scope, self.single(sources, node))
        if "parallel" in node.items:
            return self.parallel(node, scope, self.single(sources, node))
        if "backbone" in node.items:
            return self.backbone(node, scope, self.single(sources, node))
        if "regions" in node.items:
            return self.regions(node, scope, self.single(sources, node))
        if "layers" in node.items:
            return self.group(node, scope, self.single(sources, node))
        head = self.head(node)
        if head in self.blocks:
            return self.call(node, head, scope, self.single(sources, node))
        return self.layer(node, head, scope, sources)

    def sources(self, node: YMap, scope: _Scope, inp: str) -> tuple[str, ...]:
        ref = node.get("from")
        if ref is None:
            return (inp,)
        refs = ref.items if isinstance(ref, YSeq) else (ref,)
        if not refs:
            raise SpecError("'from' lists no layer", ref.loc)
        return tuple(self.resolve(r, scope) for r in refs)

    @staticmethod
    def single(sources: tuple[str, ...], node: YMap) -> str:
        if len(sources) != 1:
            raise SpecError("only merge layers (concat, add, multiply) take several inputs",
                            node.keys.get("from", node.loc))
        return sources[0]

    def head(self, node: YMap) -> str:
        candidates = [k for k in node.items if k in self.blocks or S.lookup_kind(k)]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise SpecError(f"an entry names one layer kind or block, got {candidates}",
                            node.loc)
        unknown = [k for k in node.items if k not in S.COMMON_KEYS and k not in S.FIELD_ALIASES]
        word = unknown[0] if unknown else next(iter(node.items), "")
        where = node.keys.get(word, node.loc)
        choices = [*S.all_kind_words(), *self.blocks, *STRUCTURE_KEYS]
        raise SpecError(f"unknown layer kind or block '{word}'{did_you_mean(word, choices)}",
                        where)

    # ---- structure ------------------------------------------------------------------
    def repeat(self, node: YMap, scope: _Scope, inp: str) -> str:
        count = V.integer(node.items["repeat"], scope.env, "repeat", minimum=0)
        var = V.text(node.items["as"], "as") if "as" in node.items else "i"
        name = self.local_name(node)
        if "layers" in node.items:
            _check_keys(node, REPEAT_KEYS, "repeat")
            body: YSeq | YMap = _seq(node.items["layers"], "layers")
        else:
            body = _without(node, ("repeat", "as", *S.COMMON_KEYS))
            if not body.items:
                raise SpecError("repeat needs 'layers' or a layer kind or block", node.loc)
        if count > MAX_STEPS:
            raise LimitError(f"repeat {count} is more than {MAX_STEPS} iterations", node.loc)
        base = scope.child(name) if name else scope
        for index in range(count):
            self.steps += 1  # an iteration is a step: nested empty repeats must end too
            if self.steps > MAX_STEPS:
                raise LimitError(f"the spec takes more than {MAX_STEPS} expansion steps",
                                 node.loc)
            env = {**scope.env, var: index}
            iteration = (base.child(str(index), env) if name else scope.with_env(env)
                         ).entered(inp)
            before = len(self.nodes)
            inp = self.iteration(body, iteration, inp, inline=bool(name))
            per_iteration = len(self.nodes) - before
            if index == 0 and len(self.nodes) + per_iteration * (count - 1) > MAX_NODES:
                raise LimitError(f"the spec expands to more than {MAX_NODES} layers "
                                 f"(repeat {count} x {per_iteration} layers)", node.loc)
        if name:
            self.scope_outputs[".".join(base.path)] = inp
        return inp

    def iteration(self, body: YSeq | YMap, scope: _Scope, inp: str, *, inline: bool) -> str:
        if isinstance(body, YSeq):
            return self.seq(body, scope, inp)
        head = self.head(body) if "parallel" not in body.items else None
        if inline and head in self.blocks and "name" not in body.items:
            return self.call(body, head, scope, inp, inline=True)
        return self.entry(body, scope, inp)

    def parallel(self, node: YMap, scope: _Scope, inp: str) -> str:
        _check_keys(node, PARALLEL_KEYS, "parallel")
        spec = _merge_kind(node)
        name = self.local_name(node)
        base = scope.child(name) if name else scope
        branches = node.items["parallel"]
        if isinstance(branches, YSeq):
            # numbered like layers, so two unnamed parallels in one scope never collide
            named = [(base.auto("branch"), b) for b in branches.items]
        elif isinstance(branches, YMap):
            named = [(_segment(k, branches.keys[k]), b) for k, b in branches.items.items()]
        else:
            raise SpecError("parallel takes a list of branches (each a list of layers)",
                            branches.loc)
        if not named:
            raise SpecError("parallel needs at least one branch", branches.loc)
        outs = tuple(self.seq(_seq(b, "a branch"), base.child(bname), inp) for bname, b in named)
        kwargs = {}
        if "dim" in node.items:
            if spec.name != "concat":
                raise SpecError("'dim' applies to merge: concat only", node.keys["dim"])
            kwargs["dim"] = V.integer(node.items["dim"], scope.env, "dim", minimum=None)
        merge_name = base.full(spec.auto_name) if name else scope.full(scope.auto(spec.auto_name))
        self.add(merge_name, spec.layer(**kwargs), outs, node.loc)
        if name:
            self.scope_outputs[scope.full(name)] = merge_name
        return merge_name

    def group(self, node: YMap, scope: _Scope, inp: str) -> str:
        _check_keys(node, GROUP_KEYS, "a group of layers")
        name = self.local_name(node)
        inner = scope.child(name) if name else scope
        out = self.seq(_seq(node.items["layers"], "layers"), inner, inp)
        if name:
            self.scope_outputs[scope.full(name)] = out
        return out

    def regions(self, node: YMap, scope: _Scope, inp: str) -> str:
        """A per-region scope: its first layer (roi_pool, roi_align or spp) cuts R regions
        out of its input, so every layer inside runs on a batch R times larger."""
        _check_keys(node, REGIONS_KEYS, "a per-region scope")
        count = V.integer(node.items["regions"], scope.env, "regions")
        if self.in_regions:
            raise SpecError("per-region scopes do not nest", node.keys["regions"])
        if "layers" not in node.items:
            raise SpecError("a per-region scope needs 'layers'", node.loc)
        body = _seq(node.items["layers"], "layers")
        if not body.items or not self.is_region_entry(body.items[0]):
            raise SpecError("a per-region scope starts with the layer that cuts the regions: "
                            "roi_pool, roi_align or spp", body.loc)
        name = self.local_name(node)
        inner = scope.child(name) if name else scope
        self.in_regions, self.pending_regions = True, count
        try:
            out = self.seq(body, inner, inp)
        finally:
            self.in_regions, self.pending_regions = False, None
        if name:
            self.scope_outputs[scope.full(name)] = out
        return out

    def is_region_entry(self, entry: YNode) -> bool:
        entry = _as_map(entry)
        if any(k in entry.items for k in STRUCTURE_KEYS) or "when" in entry.items:
            return False
        found = S.lookup_kind(self.head(entry)) if self.head(entry) not in self.blocks else None
        return found is not None and issubclass(found[0].layer, REGION_ENTRIES)

    def backbone(self, node: YMap, scope: _Scope, inp: str) -> str:
        """Inline a zoo spec's layers up to `until` (its ancestors, in order), named as there
        under this entry's scope; `patch` changes fields of named layers."""
        _check_keys(node, BACKBONE_KEYS, "a backbone")
        graph = _zoo_graph(node.items["backbone"])
        until = node.get("until")
        last = graph.outputs[0] if until is None else V.text(until, "until")
        if last not in graph:
            raise SpecError(f"backbone '{graph.meta.name}' has no layer '{last}'"
                            f"{did_you_mean(last, [n.name for n in graph])}", until.loc)
        patches = _patches(node.get("patch"), graph, last)
        name = self.local_name(node)
        base = scope.child(name) if name else scope
        keep = _ancestors(graph, last)
        renamed = {graph.input_node.name: inp}
        for src in graph.nodes[1:]:
            if src.name not in keep:
                continue
            layer = src.layer
            if src.name in patches:
                layer = self.patched(layer, patches[src.name], scope, base.full(src.name))
            full = self.add(base.full(src.name), layer,
                            tuple(renamed[i] for i in src.inputs), src.loc)
            renamed[src.name] = full
            parts = src.name.split(".")
            for depth in range(1, len(parts)):  # its scopes answer `from:` as in the zoo spec
                self.scope_outputs[base.full(".".join(parts[:depth]))] = full
        if name:
            self.scope_outputs[scope.full(name)] = renamed[last]
        return renamed[last]

    def patched(self, layer: Layer, fields: YMap, scope: _Scope, full: str) -> Layer:
        spec = S.KINDS[layer.kind]
        kwargs = {}
        for key, value in fields.items.items():
            canonical = key if key in spec.fields else S.FIELD_ALIASES.get(key, key)
            if canonical not in spec.fields:
                raise SpecError(f"no key '{key}'{did_you_mean(key, _valid_keys(spec))}",
                                fields.keys[key], layer=full, kind=spec.name)
            kwargs[canonical] = self.field(spec, canonical, value, scope, full)
        try:
            return dataclasses.replace(layer, **kwargs)
        except ValueError as e:
            raise SpecError(str(e), fields.loc, layer=full, kind=spec.name) from None

    def call(self, node: YMap, head: str, scope: _Scope, inp: str, *, inline=False) -> str:
        block = self.blocks[head]
        _check_keys(node, (head, *S.COMMON_KEYS), f"a call of block '{head}'")
        env = _bind(block, node.items[head], scope.env)
        if self.depth >= MAX_BLOCK_DEPTH:
            raise LimitError(f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels "
                             f"(does block '{head}' use itself?)", node.loc)
        if inline:
            inner = _Scope(scope.path, env, scope.parent, scope.counters, inp)
        else:
            local = self.local_name(node) or scope.auto(head)
            inner = scope.child(local, env).entered(inp)
        self.depth += 1
        try:
            out = self.seq(block.body, inner, inp)
        finally:
            self.depth -= 1
        if inner.path:
            self.scope_outputs[".".join(inner.path)] = out
        return out

    # ---- one layer ------------------------------------------------------------------
    def layer(self, node: YMap, head: str, scope: _Scope, sources: tuple[str, ...]) -> str:
        spec, presets = S.lookup_kind(head)
        full = scope.full(self.local_name(node) or scope.auto(spec.auto_name))
        kwargs = dict(presets)
        primary = node.items[head]
        if not (isinstance(primary, YScalar) and (primary.value is None or primary.value is True)):
            if spec.primary is None:
                raise SpecError(f"{spec.name} takes no value; write '{head}' alone or "
                                f"'{{{head}: null}}'", primary.loc, layer=full)
            kwargs[spec.primary] = self.field(spec, spec.primary, primary, scope, full)
        for key, value in node.items.items():
            if key == head or key in S.COMMON_KEYS:
                continue
            canonical = key if key in spec.fields else S.FIELD_ALIASES.get(key, key)
            if canonical not in spec.fields:
                raise SpecError(f"no key '{key}'{did_you_mean(key, _valid_keys(spec))}",
                                node.keys[key], layer=full, kind=spec.name)
            if canonical in kwargs and canonical not in presets:
                raise SpecError(f"'{key}' sets {canonical} twice", node.keys[key], layer=full)
            kwargs[canonical] = self.field(spec, canonical, value, scope, full)
        missing = [f for f in spec.required if f not in kwargs]
        if missing:
            raise SpecError(f"needs {', '.join(_with_alias(f) for f in missing)}",
                            node.loc, layer=full, kind=spec.name)
        if "stride" in spec.fields and "stride" not in kwargs and "kernel_size" in kwargs \
                and spec.name in ("max_pool2d", "avg_pool2d"):
            kwargs["stride"] = kwargs["kernel_size"]  # torch: stride defaults to the kernel
        try:
            layer = spec.layer(**kwargs)
        except ValueError as e:
            raise SpecError(str(e), node.loc, layer=full, kind=spec.name) from None
        return self.add(full, self.placed(layer, node, full, sources), sources, node.loc)

    def placed(self, layer: Layer, node: YMap, full: str, sources: tuple[str, ...]) -> Layer:
        """Checks the number of inputs; a per-region scope's entry gets its region count."""
        if isinstance(layer, TWO_INPUTS) and len(sources) != 2:
            raise SpecError(f"{layer.kind} takes two inputs: from: [tensor, reference]",
                            node.keys.get("from", node.loc), layer=full, kind=layer.kind)
        if len(sources) != 1 and not isinstance(layer, (*MERGES, *TWO_INPUTS)):
            self.single(sources, node)
        if self.pending_regions is not None and isinstance(layer, REGION_ENTRIES):
            layer = dataclasses.replace(layer, regions=self.pending_regions)
            self.pending_regions = None
        return layer

    @staticmethod
    def field(spec: S.KindSpec, name: str, value: YNode, scope: _Scope, full: str):
        try:
            return V.field_value(value, spec.fields[name], scope.env, name,
                                 spec.choices.get(name, ()))
        except SpecError as e:
            raise SpecError(e.message, e.loc, layer=full, kind=spec.name) from None

    @staticmethod
    def local_name(node: YMap) -> str | None:
        name = node.get("name")
        return None if name is None else _segment(V.text(name, "name"), name.loc)

    def resolve(self, ref: YNode, scope: _Scope) -> str:
        name = V.text(ref, "a layer reference")
        if name == BLOCK_INPUT:
            return scope.entry
        at: _Scope | None = scope
        while at is not None:
            candidate = at.full(name)
            if candidate in self.names:
                return candidate
            if candidate in self.scope_outputs:
                return self.scope_outputs[candidate]
            at = at.parent
        known = [*self.names, *self.scope_outputs]
        elsewhere = sorted(n for n in known if n.endswith("." + name))
        if elsewhere:  # it exists, but in a scope this entry cannot see by its short name
            raise SpecError(f"'{name}' is not visible from here; write its full name: "
                            f"{' or '.join(repr(n) for n in elsewhere[:3])}", ref.loc)
        suffixes = {n.rsplit(".", 1)[-1] for n in known}
        raise SpecError(f"'{name}' names no earlier layer{did_you_mean(name, [*known, *suffixes])}",
                        ref.loc)


# ---- helpers ------------------------------------------------------------------------
def _zoo_graph(ref: YNode) -> Graph:
    """The zoo spec a `backbone:` names, loaded once per name (a cycle is an error)."""
    from cnnstat.models import load_zoo, zoo_names  # models imports this module

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


def _ancestors(graph: Graph, last: str) -> set[str]:
    seen: set[str] = set()
    stack = [last]
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(graph.node(name).inputs)
    return seen


def _patches(node: YNode | None, graph: Graph, last: str) -> dict[str, YMap]:
    """`patch: {layer name: {key: value}}`, each naming an inlined layer."""
    if node is None:
        return {}
    if not isinstance(node, YMap):
        raise SpecError("patch maps layer names to {key: value} changes", node.loc)
    keep = _ancestors(graph, last)
    for key, value in node.items.items():
        if key not in keep or key == graph.input_node.name:
            raise SpecError(f"patch: '{key}' is not an inlined layer of '{graph.meta.name}'"
                            f"{did_you_mean(key, sorted(keep))}", node.keys[key])
        if not isinstance(value, YMap):
            raise SpecError(f"patch: '{key}' takes a mapping of keys to new values", value.loc)
    return dict(node.items)  # type: ignore[arg-type]


def _as_map(node: YNode) -> YMap:
    if isinstance(node, YScalar) and isinstance(node.value, str) and node.value:
        return YMap({node.value: YScalar(None, node.loc)}, {node.value: node.loc}, node.loc)
    if isinstance(node, YMap) and node.items:
        return node
    raise SpecError("a layer entry is a kind name (relu) or a mapping ({conv: 64, k: 3})",
                    node.loc)


def _seq(node: YNode, what: str) -> YSeq:
    if isinstance(node, YSeq):
        return node
    if isinstance(node, YScalar) and node.value is None:
        return YSeq((), node.loc)
    raise SpecError(f"{what} must be a list of layers", node.loc)


def _merge_kind(node: YMap) -> S.KindSpec:
    merge_node = node.get("merge")
    if merge_node is None:
        raise SpecError("parallel needs 'merge: concat', 'merge: add' or 'merge: multiply'",
                        node.loc)
    word = V.text(merge_node, "merge")
    if word not in MERGE_WORDS:
        raise SpecError(f"merge must be concat, add or multiply, got '{word}'"
                        f"{did_you_mean(word, MERGE_WORDS)}", merge_node.loc)
    return S.KINDS[MERGE_WORDS[word]]


def _without(node: YMap, keys: tuple[str, ...]) -> YMap:
    items = {k: v for k, v in node.items.items() if k not in keys}
    return YMap(items, {k: node.keys[k] for k in items}, node.loc)


def _check_keys(node: YMap, allowed: tuple[str, ...], what: str) -> None:
    for key in node.items:
        if key not in allowed:
            raise SpecError(f"{what} has no key '{key}'{did_you_mean(key, allowed)}",
                            node.keys[key])


def _segment(name: str, loc: Location) -> str:
    if not name or not all(c.isalnum() or c in "_-" for c in name) or not name.isascii():
        raise SpecError(f"a name is letters, digits, '_' or '-' (no dots), got '{name}'", loc)
    return name


def _valid_keys(spec: S.KindSpec) -> list[str]:
    aliases = [a for a, f in S.FIELD_ALIASES.items() if f in spec.fields]
    return [*spec.fields, *aliases, *S.COMMON_KEYS]


def _with_alias(field_name: str) -> str:
    short = [a for a, f in S.FIELD_ALIASES.items() if f == field_name]
    return f"{field_name} ({short[0]})" if short else field_name


def _blocks(node: YNode | None) -> dict[str, _Block]:
    if node is None:
        return {}
    if not isinstance(node, YMap):
        raise SpecError("blocks is a mapping of block names to definitions", node.loc)
    blocks = {}
    for name, body in node.items.items():
        loc = node.keys[name]
        _segment(name, loc)
        if S.lookup_kind(name) or name in STRUCTURE_KEYS or name in S.COMMON_KEYS:
            raise SpecError(f"block name '{name}' is already a layer kind or key", loc)
        if not isinstance(body, YMap):
            raise SpecError(f"block '{name}' needs 'layers' (and optionally 'args')", body.loc)
        _check_keys(body, ("args", "layers"), f"block '{name}'")
        params, defaults = _params(body.get("args"))
        if "layers" not in body.items:
            raise SpecError(f"block '{name}' needs 'layers'", body.loc)
        blocks[name] = _Block(name, params, defaults, _seq(body.items["layers"], "layers"), loc)
    return blocks


def _params(node: YNode | None) -> tuple[tuple[str, ...], dict[str, YNode]]:
    if node is None:
        return (), {}
    if isinstance(node, YSeq):
        return tuple(_segment(V.text(p, "an argument name"), p.loc) for p in node.items), {}
    if isinstance(node, YMap):
        defaults = {k: v for k, v in node.items.items()
                    if not (isinstance(v, YScalar) and v.value is None)}
        return tuple(_segment(k, node.keys[k]) for k in node.items), defaults
    raise SpecError("args is a list of names, or a mapping of names to defaults", node.loc)


def _bind(block: _Block, args: YNode, env: dict) -> dict:
    """Evaluate a call's arguments in the caller's variables; defaults see earlier args."""
    given: dict[str, YNode] = {}
    if isinstance(args, YSeq):
        if len(args.items) > len(block.params):
            raise SpecError(f"block '{block.name}' takes {len(block.params)} arguments, "
                            f"got {len(args.items)}", args.loc)
        given = dict(zip(block.params, args.items, strict=False))
    elif isinstance(args, YMap):
        for key in args.items:
            if key not in block.params:
                raise SpecError(f"block '{block.name}' has no argument '{key}'"
                                f"{did_you_mean(key, block.params)}", args.keys[key])
        given = dict(args.items)
    elif not (isinstance(args, YScalar) and args.value is None):
        if not block.params:
            raise SpecError(f"block '{block.name}' takes no arguments", args.loc)
        given = {block.params[0]: args}
    bound: dict = {}
    for param in block.params:
        node = given.get(param, block.defaults.get(param))
        if node is None:
            raise SpecError(f"block '{block.name}' needs argument '{param}'", args.loc)
        bound[param] = V.number(node, env if param in given else bound, param)
    return bound


def _meta(root: YMap, default_name: str, source: str | None) -> ModelMeta:
    def text(key: str) -> str | None:
        node = root.get(key)
        return None if node is None else V.text(node, key)

    year = root.get("year")
    input_node = root.get("input")
    shape = None
    if input_node is not None:
        if not isinstance(input_node, YSeq) or not 1 <= len(input_node.items) <= 3:
            raise SpecError("input is a list [C, H, W] (batch excluded)", input_node.loc)
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
