"""Totals per stage of a model whose meta names stages (a detector's backbone, FPN, RPN,
RoI heads): sums of the per-layer rows, so they add up to the model's totals exactly."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

OTHER = "other"


def stage_of(name: str, stages: tuple[tuple[str, str], ...]) -> str:
    for label, prefix in stages:
        if name == prefix or name.startswith(prefix + "."):
            return label
    return OTHER


def stage_totals(rows: Iterable[Any], stages: tuple[tuple[str, str], ...]) -> list[dict]:
    """One dict per stage, in the declared order (then `other`, if any layer is in none):
    name, prefix, layers, params, macs, flops, other_ops (None when a row's is unknown).
    Layers that only feed aux outputs are left out, as the totals' MACs leave them out."""
    totals = {label: {"name": label, "prefix": prefix, "layers": 0, "params": 0, "macs": 0,
                      "other_ops": 0} for label, prefix in stages}
    for row in rows:
        if row.train_only:
            continue
        label = stage_of(row.name, stages)
        entry = totals.setdefault(label, {"name": label, "prefix": None, "layers": 0,
                                          "params": 0, "macs": 0, "other_ops": 0})
        entry["layers"] += 1
        for key in ("params", "macs", "other_ops"):
            value = getattr(row, key)
            entry[key] = None if value is None or entry[key] is None else entry[key] + value
    for entry in totals.values():
        entry["flops"] = None if entry["macs"] is None else 2 * entry["macs"]
    return list(totals.values())
