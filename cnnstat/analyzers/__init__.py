"""Analyzers: pure functions of a Graph, each with one registry of per-kind handlers."""

from cnnstat.analyzers.engine import analyze_graph, infer_shapes, weight_depth
from cnnstat.analyzers import tensor_kinds  # noqa: F401  (registers its kinds' rules)
from cnnstat.analyzers.results import LayerStats, ModelReport, Totals

__all__ = ["LayerStats", "ModelReport", "Totals", "analyze_graph", "infer_shapes",
           "weight_depth"]
