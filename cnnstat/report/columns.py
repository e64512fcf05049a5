"""The numeric columns of the per-layer views and the counting convention under them.

Shared by the rich tables (tables.py) and the text formats (export.py); no rich here, so
JSON, CSV and Markdown never import it.
"""

from __future__ import annotations

from collections.abc import Callable

from cnnstat.analyzers.results import LayerStats, ModelReport
from cnnstat.ir.record import Record, record

CONVENTION = (
    "params: learnable tensors (BN running stats are buffers, counted apart). "
    "MACs: multiply-accumulates of conv, transposed conv and linear, bias excluded; "
    "FLOPs = 2 x MACs. Other ops: element-wise work (bias, BN, activations, pooling, "
    "adds), never inside MACs. See docs/conventions.md."
)


@record(kw_only=False)
class Column(Record):
    header: str
    value: Callable[[LayerStats], int | None]
    binary: bool = False
    share_of: Callable[[ModelReport], int] | None = None


def _bytes(report: ModelReport) -> Callable[[LayerStats], int]:
    return lambda r: r.activations * report.dtype_bytes


def columns_for(view: str, report: ModelReport) -> list[Column]:
    params = Column("Params", lambda r: r.params, share_of=lambda m: m.totals.params)
    macs = Column("MACs", lambda r: r.macs, share_of=lambda m: m.totals.macs)
    flops = Column("FLOPs", lambda r: r.flops)
    other = Column("Other ops", lambda r: r.other_ops)
    acts = Column("Activations", lambda r: r.activations)
    memory = Column(f"Memory ({report.dtype})", _bytes(report), binary=True)
    cols = {
        "params": [params],
        "flops": [macs, flops, other],
        "shapes": [acts, memory],
        "summary": [params, macs, other, acts],
    }[view]
    if has_regions(report) and macs in cols:  # the per-region cost next to the per-image
        per_region = Column("MACs / region",
                            lambda r: r.per_region(r.macs) if r.regions > 1 else None)
        cols.insert(cols.index(macs) + 1, per_region)
    return cols


def has_regions(report: ModelReport) -> bool:
    return any(r.regions > 1 for r in report.layers)
