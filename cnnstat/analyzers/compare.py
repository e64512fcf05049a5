"""Side-by-side metrics for several models: pure data, rendered by report/compare_render.

Each metric knows its unit and which direction is "better" (fewer params is better; a
larger receptive field is neither), so ratios can say "20.9x fewer" without colour.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from cnnstat.analyzers.results import LayerStats, ModelReport
from cnnstat.analyzers.rf_fields import axis_names
from cnnstat.ir import Graph
from cnnstat.ir.layers import Conv1d, Conv2d, Conv3d, ConvTranspose2d, Linear

LOWER_IS_BETTER = "lower"
HIGHER_IS_BETTER = "higher"
NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    unit: str  # "count", "bytes", "text", "px", "ms", "per_s"
    better: str = LOWER_IS_BETTER
    headline: bool = False  # gets an inline bar


METRICS: tuple[Metric, ...] = (
    Metric("params", "Params", "count", headline=True),
    Metric("macs", "MACs", "count", headline=True),
    Metric("flops", "FLOPs (= 2 x MACs)", "count"),
    Metric("other_ops", "Other ops (element-wise)", "count"),
    Metric("activation_bytes", "Activation memory", "bytes", headline=True),
    Metric("depth", "Depth (weight layers)", "count", NEUTRAL),
    Metric("params_conv", "Params in conv layers", "count"),
    Metric("params_fc", "Params in FC layers", "count"),
    Metric("rf", "Receptive field (last spatial layer)", "px", NEUTRAL),
    # Why `rf` reads as it does, where a plain size would mislead: gates, unknown fields.
    Metric("rf_note", "Receptive field: note", "text", NEUTRAL),
    Metric("min_input", "Min input", "px"),
    Metric("reduction_savings", "MACs saved by 1x1 reductions", "count", NEUTRAL),
    # Detection nets: how often the per-region part runs, and what it costs per image.
    Metric("regions", "Regions per image (per-region part runs xR)", "count", NEUTRAL),
    Metric("region_macs", "MACs in the per-region part (all regions)", "count"),
    Metric("output", "Output shape", "text", NEUTRAL),
    # Only with --time: measured, so floats; the method is in docs/timing.md.
    Metric("latency_ms", "Latency (median)", "ms"),
    Metric("images_per_s", "Throughput", "per_s", HIGHER_IS_BETTER),
)


@dataclass(frozen=True, slots=True)
class ModelColumn:
    """One model's metrics, or the error that stopped it."""

    name: str
    report: ModelReport | None = None
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int = 0


def _params_of(report: ModelReport, kinds: tuple[str, ...]) -> int:
    return sum(row.params or 0 for row in report.layers if row.kind in kinds)


def last_spatial_rf(report: ModelReport) -> tuple[int | None, str | None]:
    """The largest side of the receptive field of the last spatial layer (an output of
    the input's rank, past the pooled head whose fields are global), and a note where that
    number needs one. Behind gates (squeeze-and-excitation) the field is global; the
    number is then the field of the convolution path, noted. A field that is unknown there
    gives no number, never one taken from an earlier layer. A sequence's or a clip's note
    gives the field per axis (`d x h x w: 3x11x11`)."""
    rank = len(report.input_shape)
    if rank < 3:
        return None, None  # no spatial axis: no field (docs/receptive-field.md)
    row = last_spatial_row(report, rank)
    if row is None:
        return None, None
    rf = row.rf
    if rf is None or ("local" in rf and rf["local"] is None):
        return None, f"unknown at '{row.name}' (see the diagnostics)"
    if rf["global"] and "local" not in rf:
        return None, f"global at '{row.name}': every unit sees the whole input"
    notes = [] if rank == 4 else [_per_axis(rf.get("local") or rf, rank - 2)]
    if "local" in rf:
        notes.append("convolution path; gates add global context")
    return _larger((rf.get("local") or rf)["size"]), "; ".join(notes) or None


def last_spatial_row(report: ModelReport, rank: int) -> LayerStats | None:
    """The last layer with an output of `rank` dims, past the pooled head: layers whose
    field is global (not through gates, which keep the convolution path's) on one spatial
    unit, read channels-first ([N, C, 1, 1]) or channels-last ([N, 1, 1, C]: ConvNeXt's
    head permutes the pooled map for its LayerNorm). compare and the min_rf budget both
    read the field there."""
    for row in reversed(report.layers):
        shape, rf = row.output_shape, row.rf
        if len(shape) != rank:
            continue
        pooled = rf is None or (rf["global"] and not rf.get("local"))
        if not (pooled and (math.prod(shape[2:]) == 1 or math.prod(shape[1:-1]) == 1)):
            return row
    return None


def _larger(size: list) -> int:
    return max(int(Fraction(str(s))) for s in size)


def _per_axis(rf: dict, rank: int) -> str:
    return f"{' x '.join(axis_names(rank))}: {'x'.join(str(s) for s in rf['size'])}"


def _region_values(report: ModelReport) -> dict[str, int | None]:
    """None for models without a per-region part, so the rows stay hidden for them."""
    per_region = [row for row in report.layers if getattr(row, "regions", 1) > 1]
    if not per_region:
        return {"regions": None, "region_macs": None}
    return {"regions": max(row.regions for row in per_region),
            "region_macs": sum(row.macs or 0 for row in per_region)}


def metric_values(report: ModelReport, graph: Graph,
                  extra: dict[str, Callable[[], Any]] | None = None) -> dict[str, Any]:
    t = report.totals
    values = {
        "params": t.params, "macs": t.macs, "flops": t.flops, "other_ops": t.other_ops,
        "activation_bytes": t.activation_bytes, "depth": t.depth,
        "params_conv": _params_of(report, (Conv2d.kind, ConvTranspose2d.kind, Conv1d.kind,
                                           Conv3d.kind)),
        "params_fc": _params_of(report, (Linear.kind,)),
        **dict(zip(("rf", "rf_note"), last_spatial_rf(report), strict=True)),
        **_region_values(report),
        "output": ", ".join("x".join(map(str, s)) for _, s in report.outputs),
    }
    for key, compute in (extra or {}).items():
        values[key] = compute()
    return values


def ratio(value: Any, first: Any) -> float | None:
    numbers = (int, float)
    if isinstance(value, bool) or not isinstance(value, numbers) \
            or not isinstance(first, numbers) or first == 0:
        return None
    return value / first


def sort_columns(columns: list[ModelColumn], key: str | None) -> list[ModelColumn]:
    if key is None:
        return columns
    good = [c for c in columns if c.error is None and isinstance(c.values.get(key), int)]
    rest = [c for c in columns if c not in good]
    return sorted(good, key=lambda c: c.values[key]) + rest


def stage_key(report: ModelReport, output_shape: tuple[int, ...]) -> str:
    """A layer's resolution stage as its downsampling factor: `/4` means H_in / H_out = 4.
    Factors align stages across models with different inputs; non-spatial layers
    (after flatten) form the `head`."""
    if len(output_shape) != 4:
        return "head"
    factor = Fraction(report.input_shape[2], output_shape[2])
    if factor.denominator == 1:
        return f"/{factor.numerator}"
    return f"/{float(factor):.3g}"


def stage_costs(report: ModelReport) -> dict[str, tuple[int, int]]:
    """(params, MACs) per resolution stage, in order of first appearance."""
    stages: dict[str, list[int]] = {}
    for row in report.layers:
        key = stage_key(report, row.output_shape)
        entry = stages.setdefault(key, [0, 0])
        entry[0] += row.params or 0
        entry[1] += row.macs or 0
    return {key: (p, m) for key, (p, m) in stages.items()}
