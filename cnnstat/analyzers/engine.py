"""Run every analyzer over a graph at one input shape and collect a `ModelReport`.

Shapes are required by everything else, so a layer kind without a shape rule stops
the analysis (AnalysisError). A kind without a params or ops handler is recorded as
unsupported: its row shows no number and the totals say they exclude it.
"""

from __future__ import annotations

import dataclasses
import math

from cnnstat.analyzers.ops import OPS
from cnnstat.analyzers.params import PARAMS
from cnnstat.analyzers.results import (
    DTYPE_BYTES,
    LayerStats,
    ModelReport,
    Totals,
    Unsupported,
)
from cnnstat.analyzers.rf import receptive_fields
from cnnstat.analyzers.shapes import SHAPES, Shape, TooSmall
from cnnstat.errors import AnalysisError, InputTooSmallError, ShapeError, UsageError
from cnnstat.ir import Graph, Node
from cnnstat.ir.layers import REGION_ENTRIES, WEIGHT_LAYERS, Input


def infer_shapes(graph: Graph, input_shape: Shape, batch: int = 1) -> dict[str, Shape]:
    """Output shape of every node (batch first), or a located ShapeError."""
    shapes: dict[str, Shape] = {}
    for node in graph:
        if isinstance(node.layer, Input):
            shapes[node.name] = (batch, *input_shape)
            continue
        handler = SHAPES.get(type(node.layer))
        if handler is None:
            raise AnalysisError("no shape rule for this layer kind", node.loc,
                                layer=node.name, kind=node.kind)
        try:
            shapes[node.name] = handler(node.layer, tuple(shapes[i] for i in node.inputs))
        except TooSmall as e:
            raise InputTooSmallError(str(e), node.loc, layer=node.name, kind=node.kind) from None
        except ValueError as e:
            raise ShapeError(str(e), node.loc, layer=node.name, kind=node.kind) from None
    return shapes


def weight_depth(graph: Graph) -> int:
    """Weight layers (conv, transposed conv, linear) on the longest input-output path."""
    depth: dict[str, int] = {}
    for node in graph:
        before = max((depth[i] for i in node.inputs), default=0)
        depth[node.name] = before + isinstance(node.layer, WEIGHT_LAYERS)
    return max(depth[o] for o in graph.outputs)


def resolve_input(graph: Graph, input_shape: Shape | None) -> Shape:
    shape = input_shape or graph.meta.input
    if shape is None:
        raise UsageError(f"model '{graph.meta.name}' declares no input shape; pass --input",
                         graph.input_node.loc)  # a spec: where its `input:` would go
    return tuple(shape)


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
    rf_of, rf_diagnostics = receptive_fields(graph, shapes) if fields else ({}, ())
    rows, unsupported = [], []
    per_region = region_multipliers(graph)
    for node in graph.nodes[1:]:
        row = _layer_stats(node, shapes, rf=rf_of.get(node.name),
                           train_only=graph.is_train_only(node.name))
        if per_region[node.name] > 1:
            row = dataclasses.replace(row, regions=per_region[node.name])
        rows.append(row)
        unsupported += [Unsupported(layer=node.name, kind=node.kind, analyzer=a)
                        for a in row.unsupported]
    return ModelReport(
        model=graph.meta.name, source=graph.meta.source, meta=graph.meta,
        input_shape=(batch, *shape), dtype=dtype, totals=_totals(graph, rows, dtype),
        layers=tuple(rows), outputs=tuple((o, shapes[o]) for o in graph.outputs),
        aux_outputs=tuple((o, shapes[o]) for o in graph.aux_outputs),
        unsupported=tuple(unsupported), diagnostics=(*notes, *rf_diagnostics),
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
    run = [r for r in rows if not r.train_only]
    activations = sum(r.activations for r in run)
    return Totals(
        params=sum(r.params or 0 for r in rows),
        trainable_params=sum(r.params or 0 for r in rows),
        buffers=sum(r.buffers or 0 for r in rows),
        macs=sum(r.macs or 0 for r in run),
        other_ops=sum(r.other_ops or 0 for r in run),
        activations=activations,
        activation_bytes=activations * DTYPE_BYTES[dtype],
        depth=weight_depth(graph),
        train_only_params=sum(r.params or 0 for r in rows if r.train_only),
        train_only_macs=sum(r.macs or 0 for r in rows if r.train_only),
    )


def _layer_stats(node: Node, shapes: dict[str, Shape], rf: object = None,
                 train_only: bool = False) -> LayerStats:
    ins = tuple(shapes[i] for i in node.inputs)
    out = shapes[node.name]
    missing = []
    params_handler, ops_handler = PARAMS.get(type(node.layer)), OPS.get(type(node.layer))
    params = ops = None
    if params_handler is None:
        missing.append("params")
    else:
        params = params_handler(node.layer, ins, out)
    if ops_handler is None:
        missing.append("ops")
    else:
        ops = ops_handler(node.layer, ins, out)
    return LayerStats(
        name=node.name, kind=node.kind, inputs=node.inputs, output_shape=out,
        params=None if params is None else params.params,
        buffers=None if params is None else params.buffers,
        formula="" if params is None else params.formula,
        macs=None if ops is None else ops.macs,
        other_ops=None if ops is None else ops.other_ops,
        activations=math.prod(out),
        is_weight_layer=isinstance(node.layer, WEIGHT_LAYERS), receptive_field=rf,
        train_only=train_only,
        unsupported=tuple(missing),
    )


def region_multipliers(graph: Graph) -> dict[str, int]:
    """How many times each layer runs per image: a per-region entry (RoI pooling, SPP on R
    windows) multiplies by its region count, every other layer inherits its inputs' count.
    The shapes already carry it (batch x R), so MACs and activations are per image."""
    runs: dict[str, int] = {}
    for node in graph:
        before = max((runs[i] for i in node.inputs), default=1)
        own = node.layer.region_count if isinstance(node.layer, REGION_ENTRIES) else 1
        runs[node.name] = before * own
    return runs


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
