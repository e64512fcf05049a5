"""Analyzers: pure functions of a Graph, each with one registry of per-kind handlers."""

from cnnstat.analyzers import tensor_kinds  # noqa: F401  (registers its kinds' rules)
from cnnstat.analyzers.engine import analyze_graph, infer_shapes, weight_depth
from cnnstat.analyzers.results import LayerStats, ModelReport, Totals

# Handlers of the 1-D / 3-D kinds and attention, in their own modules: registered on import.
from cnnstat.analyzers import attention, windows_nd  # noqa: E402,F401  isort: skip
from cnnstat.analyzers import window_attention  # noqa: E402,F401  isort: skip  (Swin's kinds)
# Arithmetic by a number, stack, GRN, fixed / standardized-weight convs.
from cnnstat.analyzers import arith_kinds  # noqa: E402,F401  isort: skip
# Handlers of slice, select, class_token and position_embedding: registered on import.
from cnnstat.analyzers import index_kinds  # noqa: E402,F401  isort: skip

__all__ = ["LayerStats", "ModelReport", "Totals", "analyze_graph", "infer_shapes",
           "weight_depth"]
