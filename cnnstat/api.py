"""The Python API: `cnnstat.analyze(model, input=(3, 224, 224))`."""

from __future__ import annotations

from pathlib import Path

from cnnstat.analyzers import ModelReport, analyze_graph
from cnnstat.inputs import input_dims
from cnnstat.ir import Graph
from cnnstat.resolver import resolve


def analyze(model: str | Path | Graph, input: tuple[int, ...] | int | None = None, *,
            batch: int = 1, dtype: str = "fp32") -> ModelReport:
    """Analyze a zoo name, alias, spec path or Graph; the same numbers as the CLI.

    `input` is (C, H, W) without batch, a square size (channels from the spec), or None
    for the spec's default input.
    """
    graph = model if isinstance(model, Graph) else resolve(str(model)).graph
    return analyze_graph(graph, input_shape(input, graph), batch=batch, dtype=dtype)


def input_shape(value: tuple[int, ...] | int | str | None, graph: Graph) -> tuple[int, ...] | None:
    """Accepts (C, H, W), an int (square, channels from the spec), or text `3x224x224`,
    `224x224`, `224`, in the rank of the model's input (CxTxHxW for video, CxL for 1-D;
    cnnstat.inputs)."""
    return input_dims(value, graph.meta.input, graph.meta.name)
