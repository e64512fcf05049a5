"""What 1x1 reductions save, and what a large kernel would cost against a stack of small
ones: pure functions of a Graph and its shapes. The definitions are in docs/savings.md.

A *finding* replaces some nodes of the graph by *baseline* convs whose output shape is
the shape of the node they replace, so the rest of the network is untouched and the
model without its reductions is the model minus `actual` plus `baseline`, finding by
finding (findings never share a node). Costs come from the same params/ops handlers as
every other count: a baseline conv is counted exactly as if it were in the spec.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from cnnstat.analyzers.engine import analyze_graph
from cnnstat.analyzers.ops import OPS
from cnnstat.analyzers.params import PARAMS
from cnnstat.analyzers.results import ModelReport
from cnnstat.analyzers.shapes import SHAPES, Shape, conv_padding
from cnnstat.errors import UsageError
from cnnstat.ir import Graph, Node
from cnnstat.ir import layers as L

__all__ = [
    "Compression", "ConvPlan", "Cost", "Factorization", "Reduction", "SavingsReport",
    "SavingsTotals", "Suggestion", "SuggestReport", "analyze_savings", "savings_totals",
    "suggest_reductions",
]

Pair = tuple[int, int]
# Nodes a reduction may pass through on its way to the kxk conv: they keep the channel
# count and cost nothing that depends on it except BN's 2*C (which goes with the 1x1).
PASS_THROUGH: tuple[type[L.Layer], ...] = (
    L.BatchNorm2d, *L.ELEMENTWISE_ACTIVATIONS, L.Dropout, L.Identity)
POOLS = (L.AvgPool2d, L.MaxPool2d)
SCHEMA = "cnnstat.savings/1"
SUGGEST_SCHEMA = "cnnstat.suggest/1"
_OUTPUT = "<output>"  # a pseudo-consumer: a graph output can never be removed


# ---- result records ------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Cost:
    params: int
    macs: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(params=self.params + other.params, macs=self.macs + other.macs)

    def to_dict(self) -> dict[str, int]:
        return {"params": self.params, "macs": self.macs}


def ratio(baseline: int, actual: int) -> float | None:
    """baseline / actual: how many times cheaper the actual design is (None if free)."""
    return baseline / actual if actual else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConvPlan:
    """A conv that is not in the graph (a baseline, a large kernel, a suggested 1x1):
    enough to build it in torch, with its cost from the registered handlers."""

    replaces: str  # the node whose output this conv would produce ('' for an insertion)
    in_channels: int
    layer: L.Conv2d
    input_shape: Shape
    output_shape: Shape
    cost: Cost

    def to_dict(self) -> dict[str, Any]:
        lay = self.layer
        return {"replaces": self.replaces, "in_channels": self.in_channels,
                "out_channels": lay.out_channels, "kernel_size": list(lay.kernel_size),
                "stride": list(lay.stride), "dilation": list(lay.dilation),
                "padding": lay.padding if isinstance(lay.padding, str) else list(lay.padding),
                "bias": lay.bias, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape), **self.cost.to_dict()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Reduction:
    """A 1x1 reduction (kind 'reduction') or a residual bottleneck (kind 'bottleneck'):
    the `nodes` it costs, and the `baseline` convs that would replace them."""

    kind: str
    block: str  # the scope shared by its nodes
    reduce: str  # the 1x1 conv
    convs: tuple[str, ...]  # every conv of the design, in order (reduce first)
    nodes: tuple[str, ...]  # every node the baseline removes (convs, and BN/act between)
    in_channels: int
    reduced_channels: int
    widths: tuple[int, ...]  # out_channels of each conv in `convs`
    actual: Cost
    baseline_convs: tuple[ConvPlan, ...]
    rf_actual: Pair
    rf_baseline: Pair

    @property
    def baseline(self) -> Cost:
        return sum((p.cost for p in self.baseline_convs), Cost(params=0, macs=0))

    @property
    def saved(self) -> Cost:
        base = self.baseline
        return Cost(params=base.params - self.actual.params, macs=base.macs - self.actual.macs)

    def to_dict(self) -> dict[str, Any]:
        base, saved = self.baseline, self.saved
        return {"kind": self.kind, "block": self.block, "reduce": self.reduce,
                "convs": list(self.convs), "nodes": list(self.nodes),
                "in_channels": self.in_channels, "reduced_channels": self.reduced_channels,
                "widths": list(self.widths), "actual": self.actual.to_dict(),
                "baseline": base.to_dict(), "saved": saved.to_dict(),
                "params_ratio": ratio(base.params, self.actual.params),
                "macs_ratio": ratio(base.macs, self.actual.macs),
                "rf_actual": list(self.rf_actual), "rf_baseline": list(self.rf_baseline),
                "baseline_convs": [p.to_dict() for p in self.baseline_convs]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Compression:
    """A 1x1 conv that cuts channels right before a pooling layer (DenseNet's
    transition): reported with its own cost and channel ratio, no baseline."""

    conv: str
    pool: str
    in_channels: int
    out_channels: int
    cost: Cost

    @property
    def channel_ratio(self) -> float:
        return self.out_channels / self.in_channels

    def to_dict(self) -> dict[str, Any]:
        return {"conv": self.conv, "pool": self.pool, "in_channels": self.in_channels,
                "out_channels": self.out_channels, "channel_ratio": self.channel_ratio,
                **self.cost.to_dict()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Factorization:
    """A stack of stride-1 convs against the one large kernel with the same field."""

    block: str  # the scope shared by its nodes
    convs: tuple[str, ...]
    nodes: tuple[str, ...]
    kernels: tuple[Pair, ...]
    channels: tuple[int, ...]  # C_0 (stack input), then each conv's output
    whole_run: bool  # the whole chain, or a consecutive pair inside a longer one
    stack: Cost
    large: ConvPlan
    rf_stack: Pair
    rf_large: Pair

    def to_dict(self) -> dict[str, Any]:
        large = self.large.cost
        return {"block": self.block, "convs": list(self.convs), "nodes": list(self.nodes),
                "kernels": [list(k) for k in self.kernels], "channels": list(self.channels),
                "whole_run": self.whole_run, "stack": self.stack.to_dict(),
                "large": self.large.to_dict(),
                "large_kernel": list(self.large.layer.kernel_size),
                "params_ratio": ratio(large.params, self.stack.params),
                "macs_ratio": ratio(large.macs, self.stack.macs),
                "rf_stack": list(self.rf_stack), "rf_large": list(self.rf_large)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SavingsTotals:
    """The model, and the same model without its 1x1 reductions (and bottlenecks)."""

    model: str
    input_shape: Shape
    actual: Cost  # the whole model, as `analyze` counts it
    baseline: Cost  # the whole model with every finding replaced by its baseline
    reductions: int
    bottlenecks: int

    @property
    def saved(self) -> Cost:
        return Cost(params=self.baseline.params - self.actual.params,
                    macs=self.baseline.macs - self.actual.macs)

    @property
    def saved_params_share(self) -> float:
        """The share of the unreduced model's params that the reductions remove."""
        return self.saved.params / self.baseline.params if self.baseline.params else 0.0

    @property
    def saved_macs_share(self) -> float:
        return self.saved.macs / self.baseline.macs if self.baseline.macs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "input_shape": list(self.input_shape),
                "reductions": self.reductions, "bottlenecks": self.bottlenecks,
                "actual": self.actual.to_dict(), "baseline": self.baseline.to_dict(),
                "saved": self.saved.to_dict(), "saved_params_share": self.saved_params_share,
                "saved_macs_share": self.saved_macs_share}


@dataclass(frozen=True, slots=True, kw_only=True)
class SavingsReport:
    """Every finding for one model at one input shape; totals checked on construction."""

    model: str
    source: str | None
    totals: SavingsTotals
    reductions: tuple[Reduction, ...]
    compressions: tuple[Compression, ...]
    factorizations: tuple[Factorization, ...]

    def __post_init__(self) -> None:
        saved = sum((r.saved for r in self.reductions), Cost(params=0, macs=0))
        if saved != self.totals.saved:
            raise AssertionError(f"savings: totals {self.totals.saved} != findings {saved}")
        seen: set[str] = set()
        for r in self.reductions:
            if seen & set(r.nodes):
                raise AssertionError(f"savings: findings share nodes {seen & set(r.nodes)}")
            seen |= set(r.nodes)

    @property
    def runs(self) -> tuple[Factorization, ...]:
        return tuple(f for f in self.factorizations if f.whole_run)

    def to_dict(self) -> dict[str, Any]:
        stack = sum((f.stack for f in self.runs), Cost(params=0, macs=0))
        large = sum((f.large.cost for f in self.runs), Cost(params=0, macs=0))
        return {"schema": SCHEMA, "model": self.model, "source": self.source,
                "input_shape": list(self.totals.input_shape),
                "totals": self.totals.to_dict(),
                "reductions": [r.to_dict() for r in self.reductions],
                "compressions": [c.to_dict() for c in self.compressions],
                "factorizations": [f.to_dict() for f in self.factorizations],
                "factorization_totals": {"runs": len(self.runs), "stack": stack.to_dict(),
                                         "large": large.to_dict()}}


@dataclass(frozen=True, slots=True, kw_only=True)
class Suggestion:
    """A kxk conv with a 1x1 reduction inserted before it (the what-if)."""

    conv: str
    in_channels: int
    current: Cost
    reduce: ConvPlan  # the inserted 1x1
    conv_after: ConvPlan  # the kxk conv on the reduced input
    fed_by_reduction: bool  # the conv already sits behind a 1x1 reduction

    @property
    def projected(self) -> Cost:
        return self.reduce.cost + self.conv_after.cost

    @property
    def saved(self) -> Cost:
        proj = self.projected
        return Cost(params=self.current.params - proj.params,
                    macs=self.current.macs - proj.macs)

    def to_dict(self) -> dict[str, Any]:
        return {"conv": self.conv, "in_channels": self.in_channels,
                "reduced_channels": self.reduce.layer.out_channels,
                "out_channels": self.conv_after.layer.out_channels,
                "kernel_size": list(self.conv_after.layer.kernel_size),
                "current": self.current.to_dict(), "projected": self.projected.to_dict(),
                "saved": self.saved.to_dict(),
                "macs_ratio": ratio(self.current.macs, self.projected.macs),
                "fed_by_reduction": self.fed_by_reduction,
                "reduce": self.reduce.to_dict(), "conv_after": self.conv_after.to_dict()}


@dataclass(frozen=True, slots=True, kw_only=True)
class SuggestReport:
    model: str
    source: str | None
    input_shape: Shape
    ratio: Fraction
    model_cost: Cost
    suggestions: tuple[Suggestion, ...]  # best first

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SUGGEST_SCHEMA, "model": self.model, "source": self.source,
                "input_shape": list(self.input_shape), "ratio": float(self.ratio),
                "model_cost": self.model_cost.to_dict(),
                "suggestions": [s.to_dict() for s in self.suggestions]}


class _Context:
    """The graph with its shapes, per-node costs and consumers, built once."""

    def __init__(self, graph: Graph, report: ModelReport):
        self.graph = graph
        self.report = report
        self.shapes: dict[str, Shape] = {graph.input_node.name: report.input_shape}
        self.costs: dict[str, Cost] = {}
        for row in report.layers:
            self.shapes[row.name] = row.output_shape
            self.costs[row.name] = Cost(params=row.params or 0, macs=row.macs or 0)
        self.consumers: dict[str, list[str]] = {n.name: [] for n in graph}
        for node in graph:
            for src in node.inputs:
                self.consumers[src].append(node.name)
        for out in graph.outputs:
            self.consumers[out].append(_OUTPUT)

    def in_shape(self, node: Node) -> Shape:
        return self.shapes[node.inputs[0]]

    def follow(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Walk from `name` through single-consumer pass-through nodes; return the nodes
        passed and the consumers of the last one."""
        passed: list[str] = []
        current = name
        while True:
            users = self.consumers[current]
            if len(users) == 1 and users[0] != _OUTPUT:
                node = self.graph.node(users[0])
                if isinstance(node.layer, PASS_THROUGH):
                    passed.append(node.name)
                    current = node.name
                    continue
            return tuple(passed), tuple(users)

    def single(self, users: tuple[str, ...]) -> Node | None:
        if len(users) != 1 or users[0] == _OUTPUT:
            return None
        return self.graph.node(users[0])

    def cost(self, names: Iterable[str]) -> Cost:
        return sum((self.costs[n] for n in names), Cost(params=0, macs=0))


def _context(graph: Graph, input_shape: Shape | None) -> _Context:
    return _Context(graph, analyze_graph(graph, input_shape))


# ---- conv predicates and plans -------------------------------------------------------

def _is_pointwise(node: Node, any_stride: bool = False) -> bool:
    """A plain 1x1 conv: no padding, no groups (and stride 1 unless `any_stride`)."""
    layer = node.layer
    return (isinstance(layer, L.Conv2d) and layer.kernel_size == (1, 1)
            and layer.groups == 1 and conv_padding(layer) == (0, 0)
            and (any_stride or layer.stride == (1, 1)))


def _is_spatial(node: Node) -> bool:
    """A conv that looks at neighbours: kernel larger than 1x1 on some axis."""
    return isinstance(node.layer, L.Conv2d) and node.layer.kernel_size != (1, 1)


def plan_conv(replaces: str, in_shape: Shape, layer: L.Conv2d) -> ConvPlan | None:
    """Count `layer` on `in_shape` with the registered handlers; None if it cannot run."""
    ins = (in_shape,)
    try:
        out = SHAPES.get(L.Conv2d)(layer, ins)
    except ValueError:
        return None
    cost = Cost(params=PARAMS.get(L.Conv2d)(layer, ins, out).params,
                macs=OPS.get(L.Conv2d)(layer, ins, out).macs)
    return ConvPlan(replaces=replaces, in_channels=in_shape[1], layer=layer,
                    input_shape=in_shape, output_shape=out, cost=cost)


def _widened(replaces: str, like: L.Conv2d, in_shape: Shape, out_channels: int,
             stride: Pair, bias: bool) -> ConvPlan | None:
    """`like` (kernel, padding, dilation) as a dense conv on `in_shape`."""
    padding = like.padding
    if padding == "same" and stride != (1, 1):
        padding = conv_padding(like)  # torch forbids 'same' with a stride; pad explicitly
    layer = L.Conv2d(out_channels=out_channels, kernel_size=like.kernel_size, stride=stride,
                     padding=padding, dilation=like.dilation, groups=1, bias=bias)
    return plan_conv(replaces, in_shape, layer)


def field(layers: Iterable[L.Conv2d]) -> Pair:
    """Receptive field of a chain of convs (per axis): r += d*(k-1)*j; j *= s
    (Araujo et al., Distill 2019, eq. 1-2, with dilation)."""
    size, jump = [1, 1], [1, 1]
    for layer in layers:
        for a in range(2):
            size[a] += layer.dilation[a] * (layer.kernel_size[a] - 1) * jump[a]
            jump[a] *= layer.stride[a]
    return size[0], size[1]


def _widest(fields: Iterable[Pair]) -> Pair:
    return max(fields, key=lambda f: f[0] * f[1])


def common_scope(names: Iterable[str]) -> str:
    """The longest dotted prefix shared by `names` ('' when none)."""
    parts = [n.split(".")[:-1] for n in names]
    common: list[str] = []
    for segments in zip(*parts, strict=False):
        if len(set(segments)) != 1:
            break
        common.append(segments[0])
    return ".".join(common)


# ---- 1x1 reductions, bottlenecks, compressions ---------------------------------------

def _bottleneck(ctx: _Context, reduce: Node, between: tuple[str, ...],
                users: tuple[str, ...]) -> Reduction | None:
    """1x1 (C_in -> w) -> kxk (-> w2) -> 1x1 (-> C_out) -> [BN...] -> add, with a middle
    narrower than the output (w, w2 < C_out). Baseline: one kxk conv C_in -> C_out with
    the block's stride, producing what the expand conv produced."""
    kxk = ctx.single(users)
    if kxk is None or not _is_spatial(kxk):
        return None
    mid, users2 = ctx.follow(kxk.name)
    expand = ctx.single(users2)
    if expand is None or not _is_pointwise(expand):
        return None
    end = ctx.single(ctx.follow(expand.name)[1])
    c_out = expand.layer.out_channels
    if (end is None or not isinstance(end.layer, L.Add)
            or max(reduce.layer.out_channels, kxk.layer.out_channels) >= c_out):
        return None
    # NB: a strided 1x1 (ResNet v1) moves its stride onto the baseline's kxk conv.
    stride = tuple(a * b for a, b in zip(reduce.layer.stride, kxk.layer.stride, strict=True))
    in_shape = ctx.in_shape(reduce)
    plan = _widened(expand.name, kxk.layer, in_shape, c_out, stride, expand.layer.bias)
    if plan is None or plan.output_shape != ctx.shapes[expand.name]:
        return None
    nodes = (reduce.name, *between, kxk.name, *mid, expand.name)
    return Reduction(
        kind="bottleneck", block=common_scope(nodes), reduce=reduce.name,
        convs=(reduce.name, kxk.name, expand.name), nodes=nodes, in_channels=in_shape[1],
        reduced_channels=reduce.layer.out_channels,
        widths=(reduce.layer.out_channels, kxk.layer.out_channels, c_out),
        actual=ctx.cost(nodes), baseline_convs=(plan,),
        rf_actual=field([reduce.layer, kxk.layer, expand.layer]), rf_baseline=field([plan.layer]))


def _reduction(ctx: _Context, reduce: Node, between: tuple[str, ...],
               users: tuple[str, ...]) -> Reduction | None:
    """1x1 (C_in -> r < C_in, stride 1) whose output feeds only convs, one of them kxk.
    Baseline: each of those convs applied to the unreduced input."""
    in_shape = ctx.in_shape(reduce)
    if (reduce.layer.stride != (1, 1) or reduce.layer.out_channels >= in_shape[1]
            or not users or _OUTPUT in users):
        return None
    targets = [ctx.graph.node(u) for u in users]
    if (not all(isinstance(t.layer, L.Conv2d) for t in targets)
            or not any(_is_spatial(t) for t in targets)):
        return None
    plans = []
    for t in targets:
        plan = _widened(t.name, t.layer, in_shape, t.layer.out_channels, t.layer.stride,
                        t.layer.bias)
        if plan is None or plan.output_shape != ctx.shapes[t.name]:
            return None
        plans.append(plan)
    nodes = (reduce.name, *between, *(t.name for t in targets))
    return Reduction(
        kind="reduction", block=common_scope(nodes), reduce=reduce.name,
        convs=(reduce.name, *(t.name for t in targets)), nodes=nodes,
        in_channels=in_shape[1], reduced_channels=reduce.layer.out_channels,
        widths=(reduce.layer.out_channels, *(t.layer.out_channels for t in targets)),
        actual=ctx.cost(nodes), baseline_convs=tuple(plans),
        rf_actual=_widest(field([reduce.layer, t.layer]) for t in targets),
        rf_baseline=_widest(field([p.layer]) for p in plans))


def _compression(ctx: _Context, reduce: Node, between: tuple[str, ...],
                 users: tuple[str, ...]) -> Compression | None:
    """1x1 (C_in -> r < C_in, stride 1) straight into a pooling layer."""
    pool = ctx.single(users)
    c_in = ctx.in_shape(reduce)[1]
    if (pool is None or not isinstance(pool.layer, POOLS) or reduce.layer.stride != (1, 1)
            or reduce.layer.out_channels >= c_in):
        return None
    return Compression(conv=reduce.name, pool=pool.name, in_channels=c_in,
                       out_channels=reduce.layer.out_channels,
                       cost=ctx.cost((reduce.name, *between)))


def find_reductions(ctx: _Context) -> tuple[tuple[Reduction, ...], tuple[Compression, ...]]:
    """Every 1x1 conv, in graph order: a bottleneck if it starts one, else a reduction,
    else a compression. A node belongs to one finding at most (the first)."""
    used: set[str] = set()
    reductions: list[Reduction] = []
    compressions: list[Compression] = []
    for node in ctx.graph:
        if node.name in used or not _is_pointwise(node, any_stride=True):
            continue
        between, users = ctx.follow(node.name)
        found = (_bottleneck(ctx, node, between, users)
                 or _reduction(ctx, node, between, users))
        if found is None:
            squeeze = _compression(ctx, node, between, users)
            compressions += [squeeze] if squeeze else []
        elif not used & set(found.nodes):
            reductions.append(found)
            used |= set(found.nodes)
    return tuple(reductions), tuple(compressions)


def _totals(ctx: _Context, reductions: tuple[Reduction, ...]) -> SavingsTotals:
    t = ctx.report.totals
    actual = Cost(params=t.params, macs=t.macs)
    removed = ctx.cost(n for r in reductions for n in r.nodes)
    added = sum((r.baseline for r in reductions), Cost(params=0, macs=0))
    baseline = Cost(params=actual.params - removed.params + added.params,
                    macs=actual.macs - removed.macs + added.macs)
    bottlenecks = sum(r.kind == "bottleneck" for r in reductions)
    return SavingsTotals(model=ctx.graph.meta.name, input_shape=ctx.report.input_shape,
                         actual=actual, baseline=baseline,
                         reductions=len(reductions) - bottlenecks, bottlenecks=bottlenecks)


# ---- kernel factorization ------------------------------------------------------------

def _stackable(node: Node) -> bool:
    layer = node.layer
    return (_is_spatial(node) and layer.stride == (1, 1) and layer.dilation == (1, 1)
            and layer.groups == 1)


_Link = tuple[Node, tuple[str, ...]]  # a conv of a run, and the nodes between it and the last


def _runs(ctx: _Context) -> list[list[_Link]]:
    """Maximal chains of stackable convs, each feeding the next through pass-throughs."""
    after: dict[str, _Link] = {}
    for node in ctx.graph:
        if _stackable(node):
            between, users = ctx.follow(node.name)
            nxt = ctx.single(users)
            if nxt is not None and _stackable(nxt):
                after[node.name] = (nxt, between)
    linked = {nxt.name for nxt, _ in after.values()}
    runs = []
    for node in ctx.graph:
        if node.name in after and node.name not in linked:
            run: list[_Link] = [(node, ())]
            while run[-1][0].name in after:
                run.append(after[run[-1][0].name])
            runs.append(run)
    return runs


def _factorization(ctx: _Context, links: list[_Link], whole: bool) -> Factorization | None:
    """The stack against one conv whose kernel is the stack's field, padded by the sum of
    the stack's paddings (so the output size is the same), C_0 -> C_n."""
    convs = [n for n, _ in links]
    nodes = [convs[0].name]
    for node, between in links[1:]:
        nodes += [*between, node.name]
    rf = field(c.layer for c in convs)
    pads = [conv_padding(c.layer) for c in convs]
    last, in_shape = convs[-1], ctx.in_shape(convs[0])
    layer = L.Conv2d(out_channels=last.layer.out_channels, kernel_size=rf,
                     padding=(sum(p[0] for p in pads), sum(p[1] for p in pads)),
                     bias=last.layer.bias)
    plan = plan_conv(last.name, in_shape, layer)
    if plan is None or plan.output_shape != ctx.shapes[last.name]:
        return None
    return Factorization(
        block=common_scope(nodes), convs=tuple(c.name for c in convs), nodes=tuple(nodes),
        kernels=tuple(c.layer.kernel_size for c in convs),
        channels=(in_shape[1], *(c.layer.out_channels for c in convs)), whole_run=whole,
        stack=ctx.cost(nodes), large=plan, rf_stack=rf, rf_large=field([layer]))


def find_factorizations(ctx: _Context) -> tuple[Factorization, ...]:
    """Each run of two or more convs; in a longer run, also each consecutive pair."""
    found = []
    for run in _runs(ctx):
        windows = [(run, True)]
        if len(run) > 2:
            windows += [(run[i:i + 2], False) for i in range(len(run) - 1)]
        for links, whole in windows:
            item = _factorization(ctx, links, whole)
            found += [item] if item else []
    return tuple(found)


# ---- the public functions ------------------------------------------------------------

def analyze_savings(graph: Graph, input_shape: Shape | None = None) -> SavingsReport:
    """Reductions, bottlenecks, compressions, factorizations and model totals."""
    ctx = _context(graph, input_shape)
    reductions, compressions = find_reductions(ctx)
    return SavingsReport(model=graph.meta.name, source=graph.meta.source,
                         totals=_totals(ctx, reductions), reductions=reductions,
                         compressions=compressions, factorizations=find_factorizations(ctx))


def savings_totals(graph: Graph, input_shape: Shape | None = None) -> SavingsTotals:
    """The model's params/MACs with and without its 1x1 reductions (for `compare`)."""
    ctx = _context(graph, input_shape)
    return _totals(ctx, find_reductions(ctx)[0])


def as_ratio(value: float | str | Fraction) -> Fraction:
    """A reduction ratio in (0, 1), read exactly: 0.3 means 3/10, not a binary float."""
    try:
        frac = Fraction(str(value)) if isinstance(value, float) else Fraction(value)
    except (ValueError, TypeError, ZeroDivisionError):
        raise UsageError(f"--ratio takes a number between 0 and 1, got {value!r}") from None
    if not 0 < frac < 1:
        raise UsageError(f"--ratio must be between 0 and 1 (exclusive), got {value}")
    return frac


def _suggest(ctx: _Context, node: Node, frac: Fraction, fed: bool) -> Suggestion | None:
    in_shape = ctx.in_shape(node)
    c_in = in_shape[1]
    reduced = max(1, int(frac * c_in))  # floor, at least one channel
    if reduced >= c_in:
        return None
    inserted = L.Conv2d(out_channels=reduced, kernel_size=(1, 1), bias=node.layer.bias)
    reduce = plan_conv("", in_shape, inserted)
    after = plan_conv(node.name, (in_shape[0], reduced, *in_shape[2:]), node.layer)
    if reduce is None or after is None:
        return None
    return Suggestion(conv=node.name, in_channels=c_in, current=ctx.costs[node.name],
                      reduce=reduce, conv_after=after, fed_by_reduction=fed)


def suggest_reductions(graph: Graph, input_shape: Shape | None = None,
                       ratio: float | str | Fraction = Fraction(1, 4)) -> SuggestReport:
    """Every dense kxk conv with a 1x1 to floor(ratio * C_in) channels inserted before
    it, ranked by the MACs that would save (only those that save any)."""
    frac = as_ratio(ratio)
    ctx = _context(graph, input_shape)
    behind = {c for r in find_reductions(ctx)[0] for c in r.convs[1:]}
    found = []
    for node in ctx.graph:
        if _is_spatial(node) and node.layer.groups == 1:
            item = _suggest(ctx, node, frac, node.name in behind)
            if item is not None and item.saved.macs > 0:
                found.append(item)
    found.sort(key=lambda s: (-s.saved.macs, ctx.graph.position(s.conv)))
    t = ctx.report.totals
    return SuggestReport(model=graph.meta.name, source=graph.meta.source,
                         input_shape=ctx.report.input_shape, ratio=frac,
                         model_cost=Cost(params=t.params, macs=t.macs),
                         suggestions=tuple(found))
