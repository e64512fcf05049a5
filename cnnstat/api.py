"""The Python API: `cnnstat.analyze(model, input=(3, 224, 224))`."""

from __future__ import annotations

from pathlib import Path

from cnnstat.analyzers import ModelReport, analyze_graph
from cnnstat.errors import UsageError
from cnnstat.ir import Graph
from cnnstat.models import resolve


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
    `224x224`, `224`. A model whose default input has another rank takes that rank:
    CxTxHxW (or TxHxW, or one size for H and W) for video, CxL (or L) for 1-D."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.lower().replace("×", "x").split("x")
        try:
            value = tuple(int(p) for p in parts)
        except ValueError:
            raise UsageError(f"--input takes CxHxW, HxW or a size, got '{value}'") from None
    dims = (value,) if isinstance(value, int) else tuple(value)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in dims):
        raise UsageError(f"input sizes must be positive integers, got {list(dims)}")
    default = graph.meta.input
    rank = len(default) if default else 3  # channels + spatial dims
    if len(dims) == 1 and rank >= 3:  # a square size: H = W, other dims from the default
        dims = (*(default or (0, 0, 0))[1:rank - 2], dims[0], dims[0])
    if len(dims) == rank - 1:
        if default is None:
            raise UsageError(f"model '{graph.meta.name}' has no default channels; give CxHxW")
        dims = (default[0], *dims)
    if len(dims) != rank:
        raise UsageError(f"input is {_FORMS.get(rank, 'CxHxW')} without batch (use --batch) "
                         f"for model '{graph.meta.name}', got {list(dims)}")
    return dims


_FORMS = {2: "CxL", 3: "CxHxW", 4: "CxTxHxW"}
