"""Run every analyzer over a graph at one input shape and collect a `ModelReport`.

Shapes are required by everything else, so a layer kind without a shape rule stops
the analysis (AnalysisError). A kind without a params or ops handler is recorded as
unsupported: its row shows no number and the totals say they exclude it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

from cnnstat.analyzers.ops import OPS, OpCount
from cnnstat.analyzers.params import PARAMS, ParamCount
from cnnstat.analyzers.results import (
    DTYPE_BYTES,
    LayerStats,
    ModelReport,
    Totals,
    Unsupported,
)
from cnnstat.analyzers.shapes import SHAPES, Shape, TooSmall
from cnnstat.errors import AnalysisError, InputTooSmallError, ShapeError, UsageError
from cnnstat.ir import Graph
from cnnstat.ir.layers import REGION_ENTRIES, WEIGHT_LAYERS, Layer
from cnnstat.nogc import without_gc


def infer_shapes(graph: Graph, input_shape: Shape, batch: int = 1) -> dict[str, Shape]:
    """Output shape of every node (batch first), or a located ShapeError."""
    first = graph.nodes[0]  # the Input: the graph checks it comes first, and only there
    shapes: dict[str, Shape] = {first.name: (batch, *input_shape)}
    rule_for, output_of = SHAPES.lookup(), shapes.__getitem__
    for node in graph.nodes[1:]:
        handler = rule_for(type(node.layer))
        if handler is None:
            raise AnalysisError("no shape rule for this layer kind", node.loc,
                                layer=node.name, kind=node.kind)
        try:
            shapes[node.name] = handler(node.layer, tuple(map(output_of, node.inputs)))
        except TooSmall as e:
            raise InputTooSmallError(str(e), node.loc, layer=node.name, kind=node.kind) from None
        except ValueError as e:
            raise ShapeError(str(e), node.loc, layer=node.name, kind=node.kind) from None
    return shapes


def weight_depth(graph: Graph) -> int:
    """Weight layers (conv, transposed conv, linear) on the longest input-output path."""
    depth: dict[str, int] = {}
    for node in graph:
        inputs = node.inputs
        # most nodes have one input: skip max() and its iterator for them
        before = (depth[inputs[0]] if len(inputs) == 1
                  else max(map(depth.__getitem__, inputs), default=0))
        depth[node.name] = before + isinstance(node.layer, WEIGHT_LAYERS)
    return max(depth[o] for o in graph.outputs)


def resolve_input(graph: Graph, input_shape: Shape | None) -> Shape:
    shape = input_shape or graph.meta.input
    if shape is None:
        raise UsageError(f"model '{graph.meta.name}' declares no input shape; pass --input",
                         graph.input_node.loc)  # a spec: where its `input:` would go
    return tuple(shape)


@without_gc
def analyze_graph(graph: Graph, input_shape: Shape | None = None, *, batch: int = 1,
                  dtype: str = "fp32", fields: bool = True) -> ModelReport:
    """Every analyzer at one input. `fields=False` skips receptive fields (about half the
    work) for callers that only need counts, such as `cnnstat zoo`."""
    if batch < 1:
        raise UsageError(f"batch must be positive, got {batch}")
    if dtype not in DTYPE_BYTES:
        raise UsageError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got '{dtype}'")
    shape = resolve_input(graph, input_shape)
    graph, shapes, notes = shapes_with_aux(graph, shape, batch)
    rf_of, rf_diagnostics = {}, ()
    if fields:  # imported here: `cnnstat zoo` and most budget checks never need fields
        from cnnstat.analyzers.rf import receptive_fields

        rf_of, rf_diagnostics = receptive_fields(graph, shapes)
    rows = _rows(graph, shapes, rf_of)
    unsupported = tuple(Unsupported(layer=row.name, kind=row.kind, analyzer=a)
                        for row in rows for a in row.unsupported)
    return ModelReport(
        model=graph.meta.name, source=graph.meta.source, meta=graph.meta,
        input_shape=(batch, *shape), dtype=dtype, totals=_totals(graph, rows, dtype),
        layers=tuple(rows), outputs=tuple((o, shapes[o]) for o in graph.outputs),
        aux_outputs=tuple((o, shapes[o]) for o in graph.aux_outputs),
        unsupported=unsupported, diagnostics=(*notes, *rf_diagnostics),
    )


def shapes_with_aux(graph: Graph, shape: Shape, batch: int):
    """Shapes of the whole graph; if only a training-only aux head cannot take this input
    (Inception v3's needs 299 px, inference runs from 75), analyze the inference graph
    and say so, as torchvision's eval mode would run it."""
    try:
        return graph, infer_shapes(graph, shape, batch), ()
    except ShapeError as e:
        if e.layer is None or not graph.is_train_only(e.layer):
            raise
        inference = graph.inference_graph()
        note = (f"the training-only aux outputs ({', '.join(graph.aux_outputs)}) cannot take "
                f"this input ({e.message}); showing the inference graph without them")
        return inference, infer_shapes(inference, shape, batch), (note,)


def _totals(graph: Graph, rows: list[LayerStats], dtype: str) -> Totals:
    """Params count every layer (they exist in the model); inference cost and activations
    count only the layers inference runs."""
    params = buffers = macs = other_ops = activations = train_params = train_macs = 0
    frozen = 0
    for r in rows:  # one loop, not one sum() per total: this runs for every layer
        params += r.params or 0
        frozen += r.non_trainable_params
        buffers += r.buffers or 0
        if r.train_only:
            train_params += r.params or 0
            train_macs += r.macs or 0
        else:
            macs += r.macs or 0
            other_ops += r.other_ops or 0
            activations += r.activations
    return Totals(
        params=params, trainable_params=params - frozen, buffers=buffers, macs=macs,
        other_ops=other_ops, activations=activations,
        activation_bytes=activations * DTYPE_BYTES[dtype], depth=weight_depth(graph),
        train_only_params=train_params, train_only_macs=train_macs,
    )


class _KindInfo(NamedTuple):
    """What the row pass needs about a layer kind, looked up once per kind and pass."""

    params_of: Callable | None
    ops_of: Callable | None
    missing: tuple[str, ...]  # the analyzers without a handler: reported as unsupported
    is_weight: bool
    is_region_entry: bool


def _kind_info(kind: type[Layer]) -> _KindInfo:
    params_of, ops_of = PARAMS.get(kind), OPS.get(kind)
    missing = tuple(name for name, h in (("params", params_of), ("ops", ops_of)) if h is None)
    return _KindInfo(params_of, ops_of, missing, issubclass(kind, WEIGHT_LAYERS),
                     issubclass(kind, REGION_ENTRIES))


# A row's numbers when its kind has no handler: shown as missing, not as zero.
_NO_PARAMS, _NO_OPS = ParamCount(None, None, ""), OpCount(None, None)  # type: ignore[arg-type]


def _rows(graph: Graph, shapes: dict[str, Shape], rf_of: dict) -> list[LayerStats]:
    """One row per layer but the input, with params, ops and the region multiplier: how
    many times the layer runs per image (a per-region entry such as RoI pooling multiplies
    by its region count, every other layer inherits its inputs' count). The shapes already
    carry it (batch x R), so MACs and activations are per image."""
    kinds: dict[type, _KindInfo] = {}
    runs = {graph.nodes[0].name: 1}
    train_only = graph.train_only_names()
    rows = []
    for node in graph.nodes[1:]:
        layer, name, inputs = node.layer, node.name, node.inputs
        kind = kinds.get(type(layer))
        if kind is None:
            kind = kinds[type(layer)] = _kind_info(type(layer))
        ins, out = tuple(map(shapes.__getitem__, inputs)), shapes[name]
        params = _NO_PARAMS if kind.params_of is None else kind.params_of(layer, ins, out)
        ops = _NO_OPS if kind.ops_of is None else kind.ops_of(layer, ins, out)
        # most layers have one input: skip max() and its iterator for them
        regions = runs[inputs[0]] if len(inputs) == 1 else max(map(runs.__getitem__, inputs))
        if kind.is_region_entry:
            regions *= layer.region_count
        runs[name] = regions
        rows.append(LayerStats(
            name=name, kind=layer.kind, inputs=inputs, output_shape=out,
            params=params.params, buffers=params.buffers, formula=params.formula,
            macs=ops.macs, other_ops=ops.other_ops, activations=math.prod(out),
            is_weight_layer=kind.is_weight, receptive_field=rf_of.get(name),
            train_only=name in train_only, unsupported=kind.missing, regions=regions,
            non_trainable_params=(_frozen(node, params.params)
                                  if node.frozen or node.frozen_params else 0),
        ))
    return rows


def _frozen(node, params: int | None) -> int:
    """The layer's parameters that get no gradient (docs/conventions.md)."""
    if params is None:  # not counted: neither is its frozen share
        return 0
    if node.frozen:
        return params
    if node.frozen_params > params:
        raise AnalysisError(f"{node.frozen_params} frozen parameters, but the layer has "
                            f"{params}", node.loc, layer=node.name, kind=node.kind)
    return node.frozen_params


def with_regions(graph: Graph, count: int) -> Graph:
    """The graph with every per-region scope set to `count` regions (--regions N)."""
    if count < 1:
        raise UsageError(f"the number of regions must be positive, got {count}")
    nodes, changed = [], False
    for node in graph:
        if isinstance(node.layer, REGION_ENTRIES) and node.layer.regions is not None:
            node = dataclasses.replace(node, layer=dataclasses.replace(node.layer, regions=count))
            changed = True
        nodes.append(node)
    if not changed:
        raise UsageError(f"model '{graph.meta.name}' has no per-region part for --regions / "
                         "--proposals to set (docs/detection.md)")
    return Graph(tuple(nodes), graph.outputs, graph.meta, graph.aux_outputs)
