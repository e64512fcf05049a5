"""Frozen result records. Totals are checked against the per-layer rows on construction.

All counts are Python ints; FLOPs are derived as exactly 2 x MACs.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from cnnstat.ir import ModelMeta
from cnnstat.ir.record import Record, record
from cnnstat.nogc import without_gc

SCHEMA = "cnnstat.report/1"
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp64": 8, "int8": 1}


@record
class LayerStats(Record):
    name: str
    kind: str
    inputs: tuple[str, ...]
    output_shape: tuple[int, ...]
    params: int | None
    buffers: int | None
    formula: str
    macs: int | None
    other_ops: int | None
    activations: int
    is_weight_layer: bool = False
    train_only: bool = False  # feeds only aux outputs: in params, not in inference cost
    # The receptive-field record (cnnstat.analyzers.rf.ReceptiveField); its dict form is
    # built on demand by `rf`, since most callers never read it (zoo-wide work halves).
    receptive_field: Any = None
    unsupported: tuple[str, ...] = ()
    # Runs per image: R inside a per-region scope (docs/detection.md), else 1. The counts
    # above are per image (R x the per-region cost); `per_region` divides them back.
    regions: int = 1
    # Of `params`, those that get no gradient (a frozen layer: requires_grad=False).
    non_trainable_params: int = 0

    @property
    def flops(self) -> int | None:
        return None if self.macs is None else 2 * self.macs

    def per_region(self, value: int | None) -> int | None:
        """One region's share of a per-image count of this row (exact: R divides it)."""
        return None if value is None else value // self.regions

    @property
    def rf(self) -> dict[str, Any] | None:
        """{"size", "stride", "start", "padding", "global", "exceeds_input"} or None."""
        return None if self.receptive_field is None else self.receptive_field.to_dict()

    def to_dict(self, dtype_bytes: int, rf: Any = None) -> dict[str, Any]:
        """The row's JSON form. `rf`, when given, stands in for the receptive field's
        dict (the JSON writer splices in the field's text, encoded once per field)."""
        out = {
            "name": self.name, "kind": self.kind, "inputs": list(self.inputs),
            "output_shape": list(self.output_shape), "params": self.params,
            "buffers": self.buffers, "formula": self.formula, "macs": self.macs,
            "flops": self.flops, "other_ops": self.other_ops,
            "activations": self.activations,
            "activation_bytes": self.activations * dtype_bytes,
        }
        if self.train_only:
            out["train_only"] = True
        if self.non_trainable_params:
            out["non_trainable_params"] = self.non_trainable_params
        if self.regions > 1:
            out["regions"] = self.regions
            out["macs_per_region"] = self.per_region(self.macs)
        if self.receptive_field is not None:
            out["rf"] = self.rf if rf is None else rf
        if self.unsupported:
            out["unsupported"] = list(self.unsupported)
        return out


@record
class Totals(Record):
    params: int
    trainable_params: int
    buffers: int
    macs: int
    other_ops: int
    activations: int
    activation_bytes: int
    depth: int
    train_only_params: int = 0  # inside `params`: layers that only feed aux outputs
    train_only_macs: int = 0  # NOT inside `macs`: inference never runs those layers

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict[str, int]:
        return {
            "params": self.params, "trainable_params": self.trainable_params,
            "buffers": self.buffers, "macs": self.macs, "flops": self.flops,
            "other_ops": self.other_ops, "activations": self.activations,
            "activation_bytes": self.activation_bytes, "depth": self.depth,
            "train_only_params": self.train_only_params,
            "train_only_macs": self.train_only_macs,
        }


@record
class Unsupported(Record):
    layer: str
    kind: str
    analyzer: str

    def to_dict(self) -> dict[str, str]:
        return {"layer": self.layer, "kind": self.kind, "analyzer": self.analyzer}


@record
class ModelReport(Record):
    """Everything the analyzers found about one model at one input shape."""

    model: str
    source: str | None
    meta: ModelMeta
    input_shape: tuple[int, ...]
    dtype: str
    totals: Totals
    layers: tuple[LayerStats, ...]
    outputs: tuple[tuple[str, tuple[int, ...]], ...]
    aux_outputs: tuple[tuple[str, tuple[int, ...]], ...] = ()
    unsupported: tuple[Unsupported, ...] = ()
    diagnostics: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        params = macs = other_ops = activations = frozen = 0
        for row in self.layers:  # one pass, not one per total: a zoo has thousands of rows
            params += row.params or 0
            frozen += row.non_trainable_params
            if not row.train_only:
                macs += row.macs or 0
                other_ops += row.other_ops or 0
                activations += row.activations
        sums = {"macs": macs, "other_ops": other_ops, "activations": activations}
        for attr, total in sums.items():
            value = getattr(self.totals, attr)
            if total != value:
                raise AssertionError(f"{attr}: total {value} != sum of layers {total}")
        if params != self.totals.params:
            raise AssertionError("params: total != sum of layers")
        if params - frozen != self.totals.trainable_params:
            raise AssertionError("trainable_params: total != params - frozen layers' params")

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    def layer(self, name: str) -> LayerStats:
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(name)

    @without_gc  # 100,000 rows: full collections would walk the growing heap again and again
    def to_dict(self, *, layers: bool = True) -> dict[str, Any]:
        """The JSON report (docs/json.md); integers stay exact. `layers=False` leaves the
        per-layer rows out (an empty list) for a writer that streams them."""
        meta = self.meta
        return {
            "schema": SCHEMA,
            "model": self.model,
            "source": self.source,
            "title": meta.title, "family": meta.family, "year": meta.year,
            "input_shape": list(self.input_shape),
            "dtype": self.dtype,
            "totals": self.totals.to_dict(),
            "outputs": [{"name": n, "shape": list(s)} for n, s in self.outputs],
            "aux_outputs": [{"name": n, "shape": list(s)} for n, s in self.aux_outputs],
            "layers": [row.to_dict(self.dtype_bytes) for row in self.layers] if layers else [],
            "unsupported": [u.to_dict() for u in self.unsupported],
            "diagnostics": list(self.diagnostics),
            **({"stages": self.stages()} if meta.stages else {}),
        }

    def stages(self) -> list[dict]:
        """Per-stage totals (backbone, FPN, RPN, RoI heads) when the model names stages."""
        from cnnstat.analyzers.stages import stage_totals

        return stage_totals(self.layers, self.meta.stages)


def fold(layers: tuple[LayerStats, ...], depth: int | None) -> tuple[LayerStats, ...]:
    """Merge consecutive rows that share their first `depth` name segments into one row
    (`--depth 1` shows `layer1`, `layer2`, ...). Sums stay exact; the shape is the last
    row's output. `None` or a depth deeper than every name leaves rows as they are."""
    if depth is None:
        return layers
    groups: list[list[LayerStats]] = []
    keys: list[str] = []
    for row in layers:
        key = ".".join(row.name.split(".")[:depth])
        if keys and keys[-1] == key:
            groups[-1].append(row)
        else:
            groups.append([row])
            keys.append(key)
    return tuple(_merge_rows(key, rows) for key, rows in zip(keys, groups, strict=True))


def _sum(rows: list[LayerStats], attr: str) -> int | None:
    values = [getattr(r, attr) for r in rows]
    return None if any(v is None for v in values) else sum(values)


def _merge_rows(key: str, rows: list[LayerStats]) -> LayerStats:
    if len(rows) == 1 and rows[0].name == key:
        return rows[0]
    kinds = {r.kind for r in rows}
    return LayerStats(
        name=key,
        kind=kinds.pop() if len(kinds) == 1 else f"block ({len(rows)} layers)",
        inputs=rows[0].inputs,
        output_shape=rows[-1].output_shape,
        params=_sum(rows, "params"),
        buffers=_sum(rows, "buffers"),
        non_trainable_params=sum(r.non_trainable_params for r in rows),
        formula="",
        macs=_sum(rows, "macs"),
        other_ops=_sum(rows, "other_ops"),
        activations=sum(r.activations for r in rows),
        is_weight_layer=any(r.is_weight_layer for r in rows),
        train_only=all(r.train_only for r in rows),
        receptive_field=rows[-1].receptive_field,
        unsupported=tuple(sorted({u for r in rows for u in r.unsupported})),
        regions=rows[-1].regions if len({r.regions for r in rows}) == 1 else 1,
    )
