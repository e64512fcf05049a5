"""`compare --plot`: params and MACs per weight layer along depth, and receptive-field
growth, one line per model. matplotlib is optional (`pip install 'cnnstat[plot]'`)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from cnnstat.analyzers.compare import ModelColumn
from cnnstat.errors import UsageError
from cnnstat.files import atomic_write

FORMATS = (".png", ".svg")


def _series(column: ModelColumn) -> tuple[list[int], list[int], list[int]]:
    weights = [r for r in column.report.layers if r.is_weight_layer]
    # behind gates, the convolution path's field (docs/receptive-field.md, "Gates")
    local = [r.rf.get("local") or r.rf for r in column.report.layers
             if r.rf is not None and len(r.output_shape) == 4
             and (not r.rf["global"] or r.rf.get("local"))]
    fields = [max(int(Fraction(str(s))) for s in rf["size"]) for rf in local]
    return [r.params or 0 for r in weights], [r.macs or 0 for r in weights], fields


def write_plot(columns: list[ModelColumn], path: str, *, force: bool) -> Path:
    if Path(path).suffix.lower() not in FORMATS:
        raise UsageError(f"--plot writes .png or .svg, got '{path}'")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'cnnstat[plot]'") from None
    fig, axes = plt.subplots(3, 1, figsize=(9, 10), constrained_layout=True)
    for column in columns:
        params, macs, fields = _series(column)
        axes[0].plot(range(1, len(params) + 1), params, marker=".", label=column.name)
        axes[1].plot(range(1, len(macs) + 1), macs, marker=".", label=column.name)
        if fields:
            axes[2].plot(range(1, len(fields) + 1), fields, label=column.name)
    titles = ("Params per weight layer", "MACs per weight layer (FLOPs = 2 x MACs)",
              "Receptive field (px) along the spatial layers")
    xlabels = ("weight layer (conv / linear), input to output",) * 2 + ("spatial layer",)
    for ax, title, xlabel in zip(axes, titles, xlabels, strict=True):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    suffix = Path(path).suffix.lower().lstrip(".")
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format=suffix, dpi=110),
                            force=force)
    finally:
        plt.close(fig)
