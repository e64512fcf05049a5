"""Expanding spec entries into nodes: blocks, `repeat`, `parallel`, groups, per-region
scopes, backbones and references.

Names: every node gets a dotted path built from scopes (named groups, block instances,
named repeats and their iteration index, parallel branches) and a local name (given with
`name:` or counted per kind: `conv1`, `conv2`, `bn1`, ...). References (`from:`) resolve
lexically: the innermost scope first, then outwards, so a block can refer to its own layers.

A block body or a repeated entry is expanded many times; what depends only on its YAML
node (its kind, its name, its key checks) is worked out once, in a `Plan` per node
(syntax.py), and layers and bound arguments are memoized (memo.py).
"""

from __future__ import annotations

import dataclasses

from cnnstat.errors import LimitError, Location, SpecError, did_you_mean
from cnnstat.ir import Node
from cnnstat.ir.layers import MERGES, PARTS, REGION_ENTRIES, Layer, takes_reference
from cnnstat.spec import backbone as B
from cnnstat.spec import schema as S
from cnnstat.spec import syntax as Y
from cnnstat.spec import values as V
from cnnstat.spec.blocks import REF_PREFIX, Block, Call, LayerArg
from cnnstat.spec.iterations import IterationNames
from cnnstat.spec.layer_entry import LayerEntry
from cnnstat.spec.scope import BLOCK_INPUT, Scope
from cnnstat.spec.suggest import suggestion
from cnnstat.spec.syntax import Plan
from cnnstat.spec.yaml_tree import YMap, YNode, YSeq

MAX_NODES = 1_000_000
MAX_STEPS = 2_000_000
# Iterations that make no layer (an empty or `repeat: 0` body inside a repeat): each costs
# a few microseconds and is worth nothing; 2M of them (densenet169 with a `repeat: 10000`
# of a `repeat: 0` in each of its 82 dense layers: 820,000) took seconds.
MAX_EMPTY_ITERATIONS = 100_000
MAX_BLOCK_DEPTH = 32


class Expander:
    """Expands one spec's entries into `nodes`, in order; each entry method returns the
    name of the node its entry's output is (what the next entry takes as input)."""

    def __init__(self, blocks: dict[str, Block]):
        self.blocks = blocks
        self.nodes: list[Node] = []
        self.names: set[str] = set()
        self.scope_outputs: dict[str, str] = {}
        self.plans: dict[int, Plan] = {}
        self.depth = 0
        self.steps = 0
        self.empty_iterations = 0
        self.in_regions = False  # inside a per-region scope (they do not nest)
        self.pending_regions: int | None = None  # for the scope's entry layer
        self.frozen = False  # inside an entry with `frozen: true` (its params get no grad)

    # ---- emitting -------------------------------------------------------------------
    def add(self, name: str, layer: Layer, inputs: tuple[str, ...], loc: Location) -> str:
        if name in self.names or name in self.scope_outputs:
            raise SpecError(f"duplicate layer name '{name}'", loc, layer=name)
        if len(self.nodes) >= MAX_NODES:
            raise LimitError(f"the spec expands to more than {MAX_NODES} layers", loc)
        self.nodes.append(Node(name=name, layer=layer, inputs=inputs, loc=loc,
                               frozen=self.frozen))
        self.names.add(name)
        return name

    def seq(self, entries: YSeq, scope: Scope, inp: str) -> str:
        for entry in entries.items:
            inp = self.entry(entry, scope, inp)
        return inp

    def plan(self, node: YNode) -> Plan:
        plan = self.plans.get(id(node))
        if plan is None:
            plan = self.plans[id(node)] = Plan(node)
        return plan

    def entry(self, node: YNode, scope: Scope, inp: str) -> str:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise LimitError(f"the spec takes more than {MAX_STEPS} expansion steps", node.loc)
        plan = self.plans.get(id(node)) or self.plan(node)
        if plan.when is not None and not V.boolean(plan.when, scope.env, "when"):
            return self.skipped(plan, scope, inp)
        if plan.frozen is not None:
            return self.frozen_entry(plan, scope, inp)
        return self.expand(plan, scope, inp)

    def frozen_entry(self, plan: Plan, scope: Scope, inp: str) -> str:
        """`frozen: true` freezes every layer the entry makes (a layer, block call, group,
        repeat, ...); `frozen: false` inside it thaws a part again. The innermost says."""
        outer, self.frozen = self.frozen, V.boolean(plan.frozen, scope.env, "frozen")
        try:
            return self.expand(plan, scope, inp)
        finally:
            self.frozen = outer

    def expand(self, plan: Plan, scope: Scope, inp: str) -> str:
        sources = (inp,) if plan.ref is None else self.sources(plan.ref, scope)
        structure = plan.structure
        if structure is not None:
            return self.structure(structure, plan, scope, self.single(sources, plan.map))
        if (plan.head or self.head(plan)) in self.blocks:
            return self.call(plan, scope, self.single(sources, plan.map))
        return self.layer(plan, scope, sources)

    def structure(self, key: str, plan: Plan, scope: Scope, inp: str) -> str:
        if key == "repeat":
            return self.repeat(plan, scope, inp)
        if key == "parallel":
            return self.parallel(plan, scope, inp)
        if key == "backbone":
            return self.backbone(plan, scope, inp)
        if key == "regions":
            return self.regions(plan, scope, inp)
        return self.group(plan, scope, inp)

    def skipped(self, plan: Plan, scope: Scope, inp: str) -> str:
        """An entry that `when:` leaves out; if named, its name stands for its input
        (`from:` or the previous layer), so one block body serves both cases
        (torchvision's optional `downsample`)."""
        name = self.local_name(plan)
        if name:
            sources = (inp,) if plan.ref is None else self.sources(plan.ref, scope)
            if len(sources) > 1 and self.is_merge(plan):
                sources = sources[:1]  # a merge left out stands for its first input
            self.scope_outputs[scope.full(name)] = self.single(sources, plan.map)
        return inp

    def is_merge(self, plan: Plan) -> bool:
        if plan.structure is not None or self.head(plan) in self.blocks:
            return False
        found = S.lookup_kind(self.head(plan))
        return found is not None and issubclass(found[0].layer, MERGES)

    def sources(self, ref: YNode, scope: Scope) -> tuple[str, ...]:
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

    def head(self, plan: Plan) -> str:
        """The one key of the entry that names a layer kind or a block."""
        if plan.head is None:
            plan.head = self._find_head(plan.map)
        return plan.head

    def _find_head(self, node: YMap) -> str:
        candidates = [k for k in node.items if k in self.blocks or S.lookup_kind(k)]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise SpecError(f"an entry names one layer kind or block, got {candidates}",
                            node.loc)
        unknown = [k for k in node.items if k not in S.COMMON_KEYS and k not in S.FIELD_ALIASES]
        word = unknown[0] if unknown else next(iter(node.items), "")
        where = node.keys.get(word, node.loc)
        hint = suggestion(word, S.all_kind_words(), [*self.blocks, *Y.STRUCTURE_KEYS])
        raise SpecError(f"unknown layer kind or block '{word}'{hint}", where)

    def check_keys(self, plan: Plan, allowed: tuple[str, ...], what: str) -> None:
        if not plan.keys_ok:
            Y.check_keys(plan.map, allowed, what)
            plan.keys_ok = True

    def local_name(self, plan: Plan) -> str | None:
        if plan.name is Y.UNSET:
            plan.name = Y.local_name(plan.map)
        return plan.name  # type: ignore[return-value]

    # ---- structure ------------------------------------------------------------------
    def repeat(self, plan: Plan, scope: Scope, inp: str) -> str:
        node = plan.map
        count = V.integer(node.items["repeat"], scope.env, "repeat", minimum=0)
        var = V.text(node.items["as"], "as") if "as" in node.items else "i"
        name = self.local_name(plan)
        body = self.repeat_body(plan) if plan.body is None else plan.body
        if count > MAX_STEPS:
            raise LimitError(f"repeat {count} is more than {MAX_STEPS} iterations", node.loc)
        base = scope.child(name) if name else scope
        each = IterationNames(node.items["each"]) if "each" in node.items else None
        scoped = bool(name) or each is not None  # each iteration is a scope
        for index in range(count):
            self.steps += 1  # an iteration is a step: nested empty repeats must end too
            if self.steps > MAX_STEPS:
                raise LimitError(f"the spec takes more than {MAX_STEPS} expansion steps",
                                 node.loc)
            env = {**scope.env, var: index}
            local = str(index) if each is None else each.name(env, index)
            iteration = base.child(local, env, inp) if scoped else \
                scope.with_env(env).entered(inp)
            before = len(self.nodes)
            inp = self.iteration(body, iteration, inp, inline=scoped)
            per_iteration = len(self.nodes) - before
            if per_iteration == 0:
                self.empty_iterations += 1
                if self.empty_iterations > MAX_EMPTY_ITERATIONS:
                    raise LimitError(f"the spec repeats more than {MAX_EMPTY_ITERATIONS} "
                                     "iterations that make no layer (an empty repeat inside "
                                     "a repeat?)", node.loc)
            if index == 0 and len(self.nodes) + per_iteration * (count - 1) > MAX_NODES:
                raise LimitError(f"the spec expands to more than {MAX_NODES} layers "
                                 f"(repeat {count} x {per_iteration} layers)", node.loc)
        if name:
            self.scope_outputs[".".join(base.path)] = inp
        return inp

    def repeat_body(self, plan: Plan) -> YSeq | YMap:
        """What a repeat repeats: its `layers`, or the entry without the repeat's keys."""
        node = plan.map
        if "layers" in node.items:
            Y.check_keys(node, Y.REPEAT_KEYS, "repeat")
            plan.body = Y.as_seq(node.items["layers"], "layers")
        else:
            body = Y.without(node, ("repeat", "as", "each", *S.COMMON_KEYS))
            if not body.items:
                raise SpecError("repeat needs 'layers' or a layer kind or block", node.loc)
            plan.body = body
        return plan.body

    def iteration(self, body: YSeq | YMap, scope: Scope, inp: str, *, inline: bool) -> str:
        if isinstance(body, YSeq):
            return self.seq(body, scope, inp)
        plan = self.plan(body)
        head = self.head(plan) if "parallel" not in body.items else None
        if inline and head in self.blocks and "name" not in body.items:
            return self.call(plan, scope, inp, inline=True)
        return self.entry(body, scope, inp)

    def parallel(self, plan: Plan, scope: Scope, inp: str) -> str:
        node = plan.map
        self.check_keys(plan, Y.PARALLEL_KEYS, "parallel")
        spec = Y.merge_kind(node)
        name = self.local_name(plan)
        base = scope.child(name) if name else scope
        branches = node.items["parallel"]
        if isinstance(branches, YSeq):
            # numbered like layers, so two unnamed parallels in one scope never collide
            named = [(base.auto("branch"), b) for b in branches.items]
        elif isinstance(branches, YMap):
            if plan.body is None:  # the checked names, once per entry
                plan.body = [(Y.segment(k, branches.keys[k]), b)
                             for k, b in branches.items.items()]
            named = plan.body
        else:
            raise SpecError("parallel takes a list of branches (each a list of layers)",
                            branches.loc)
        if not named:
            raise SpecError("parallel needs at least one branch", branches.loc)
        outs = tuple(self.seq(Y.as_seq(b, "a branch"), base.child(bname), inp)
                     for bname, b in named)
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

    def group(self, plan: Plan, scope: Scope, inp: str) -> str:
        self.check_keys(plan, Y.GROUP_KEYS, "a group of layers")
        name = self.local_name(plan)
        inner = scope.child(name) if name else scope
        out = self.seq(Y.as_seq(plan.map.items["layers"], "layers"), inner, inp)
        if name:
            self.scope_outputs[scope.full(name)] = out
        return out

    def regions(self, plan: Plan, scope: Scope, inp: str) -> str:
        """A per-region scope: its first layer (roi_pool, roi_align or spp) cuts R regions
        out of its input, so every layer inside runs on a batch R times larger."""
        node = plan.map
        self.check_keys(plan, Y.REGIONS_KEYS, "a per-region scope")
        count = V.integer(node.items["regions"], scope.env, "regions")
        if self.in_regions:
            raise SpecError("per-region scopes do not nest", node.keys["regions"])
        if "layers" not in node.items:
            raise SpecError("a per-region scope needs 'layers'", node.loc)
        body = Y.as_seq(node.items["layers"], "layers")
        if not body.items or not self.is_region_entry(body.items[0]):
            raise SpecError("a per-region scope starts with the layer that cuts the regions: "
                            "roi_pool, roi_align or spp", body.loc)
        name = self.local_name(plan)
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
        plan = self.plan(entry)
        if any(k in plan.map.items for k in Y.STRUCTURE_KEYS) or "when" in plan.map.items:
            return False
        head = self.head(plan)
        found = S.lookup_kind(head) if head not in self.blocks else None
        return found is not None and issubclass(found[0].layer, REGION_ENTRIES)

    def backbone(self, plan: Plan, scope: Scope, inp: str) -> str:
        """Inline a zoo spec's layers up to `until` (its ancestors, in order), named as there
        under this entry's scope; `patch` changes fields of named layers."""
        node = plan.map
        self.check_keys(plan, Y.BACKBONE_KEYS, "a backbone")
        graph = B.zoo_graph(node.items["backbone"])
        until = node.get("until")
        last = graph.outputs[0] if until is None else B.last_layer(graph, V.text(until, "until"),
                                                                   until.loc)
        patches = B.patches(node.get("patch"), graph, last)
        name = self.local_name(plan)
        base = scope.child(name) if name else scope
        keep = B.ancestors(graph, last)
        renamed = {graph.input_node.name: inp}
        for src in graph.nodes[1:]:
            if src.name not in keep:
                continue
            layer = src.layer
            if src.name in patches:
                layer = B.patched(layer, patches[src.name], scope.env, base.full(src.name))
            full = self.add(base.full(src.name), layer,
                            tuple(renamed[i] for i in src.inputs), src.loc)
            renamed[src.name] = full
            parts = src.name.split(".")
            for depth in range(1, len(parts)):  # its scopes answer `from:` as in the zoo spec
                self.scope_outputs[base.full(".".join(parts[:depth]))] = full
        if name:
            self.scope_outputs[scope.full(name)] = renamed[last]
        return renamed[last]

    def call(self, plan: Plan, scope: Scope, inp: str, *, inline=False) -> str:
        node, head = plan.map, self.head(plan)
        if plan.call is None:
            self.check_keys(plan, (head, *S.COMMON_KEYS), f"a call of block '{head}'")
            plan.call = Call(self.blocks[head], node.items[head])
        env = self.layer_args(plan.call.bind(scope.env), scope)
        if self.depth >= MAX_BLOCK_DEPTH:
            raise LimitError(f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels "
                             f"(does block '{head}' use itself?)", node.loc)
        if inline:
            inner = Scope(scope.path, env, scope.parent, scope.counters, inp, scope.prefix)
        else:
            local = self.local_name(plan) or scope.auto(head)
            inner = scope.child(local, env, inp)
        self.depth += 1
        try:
            out = self.seq(plan.call.block.body, inner, inp)
        finally:
            self.depth -= 1
        if inner.path:
            self.scope_outputs[".".join(inner.path)] = out
        return out

    def layer_args(self, env: dict, scope: Scope) -> dict:
        """Arguments that name layers, resolved in the caller's scope (kept apart from the
        numbers: an expression cannot read them)."""
        if not any(isinstance(v, LayerArg) for v in env.values()):
            return env
        return {(REF_PREFIX + k if isinstance(v, LayerArg) else k):
                (self.layer_arg(v, scope) if isinstance(v, LayerArg) else v)
                for k, v in env.items()}

    def layer_arg(self, arg: LayerArg, scope: Scope) -> str:
        try:
            return self.resolve(arg.node, scope)
        except SpecError:  # a misspelt variable reads as a layer name: say both
            name = str(arg.node.value).strip()
            hint = did_you_mean(name, [k for k in scope.env if not k.startswith(REF_PREFIX)])
            if not hint:
                raise
            raise SpecError(f"'{name}' is neither a variable{hint} nor an earlier layer",
                            arg.node.loc) from None

    # ---- one layer ------------------------------------------------------------------
    def layer(self, plan: Plan, scope: Scope, sources: tuple[str, ...]) -> str:
        entry = plan.layer
        if entry is None:
            entry = plan.layer = LayerEntry(plan.map, self.head(plan))
        name = plan.name if plan.name is not Y.UNSET else self.local_name(plan)
        full = scope.prefix + (name or scope.auto(entry.spec.auto_name))  # type: ignore
        layer = entry.layer(scope.env, full)
        size_of = plan.map.get("size_of")
        if size_of is not None:  # the reference a crop or upsample takes its size from
            sources = (*sources, self.resolve(size_of, scope))
        if len(sources) != 1 or self.pending_regions is not None or takes_reference(layer):
            layer = self.placed(layer, plan.map, full, sources)
        if isinstance(layer, PARTS) and "index" not in plan.map.items:
            return self.parts(layer, plan, full, sources)
        return self.add(full, layer, sources, plan.loc)

    def parts(self, layer: Layer, plan: Plan, full: str, sources: tuple[str, ...]) -> str:
        """A split / chunk entry without `index`: one node per part, `full.i` (a scope,
        whose name means its last part, as every scope's); the next entry continues from
        the last part (docs/spec.md)."""
        count = layer.parts
        if count is None:
            raise SpecError(f"{layer.kind} gives a number of parts that depends on the input: "
                            "give 'index' (one part per entry)"
                            + (", or the list of sizes" if layer.kind == "split" else ""),
                            plan.loc, layer=full, kind=layer.kind)
        if full in self.names or full in self.scope_outputs:
            raise SpecError(f"duplicate layer name '{full}'", plan.loc, layer=full)
        for index in range(count):
            out = self.add(f"{full}.{index}", dataclasses.replace(layer, index=index),
                           sources, plan.loc)
        self.scope_outputs[full] = out
        return out

    def placed(self, layer: Layer, node: YMap, full: str, sources: tuple[str, ...]) -> Layer:
        """Checks the number of inputs; a per-region scope's entry gets its region count."""
        if takes_reference(layer) and len(sources) != 2:
            raise SpecError(f"{layer.kind} takes two inputs: from: [tensor, reference], or "
                            "size_of: reference", node.keys.get("from", node.loc),
                            layer=full, kind=layer.kind)
        if len(sources) != 1 and not (isinstance(layer, MERGES) or takes_reference(layer)):
            self.single(sources, node)
        if self.pending_regions is not None and isinstance(layer, REGION_ENTRIES):
            layer = dataclasses.replace(layer, regions=self.pending_regions)
            self.pending_regions = None
        return layer

    def resolve(self, ref: YNode, scope: Scope) -> str:
        name = V.text(ref, "a layer reference")
        if name == BLOCK_INPUT:
            return scope.entry
        argument = scope.env.get(REF_PREFIX + name)
        if argument is not None:  # a block argument naming a layer
            return argument
        at: Scope | None = scope
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
