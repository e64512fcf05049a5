"""`compare` of detectors: where each model's MACs are, and why two of them differ.

A detector's cost has parts that scale differently: what runs once per image (backbone,
FPN, RPN: with the pixels the backbone sees) and what runs once per region (the RoI heads:
with the proposal count and the head's width). Each part comes from the model's own rows:
the stages its meta names (a torchvision detector), else its top-level blocks (a spec such
as faster_rcnn: features, rpn, head). Nothing here knows any model by name.
"""

from __future__ import annotations

import math
from typing import Any

from cnnstat import fmt
from cnnstat.analyzers.stages import stage_totals


def parts(report: Any) -> list[dict]:
    """name, MACs, params, regions (the largest count in the part; 1: once per image)."""
    stages = report.meta.stages or tuple(
        dict.fromkeys((r.name.split(".")[0], r.name.split(".")[0]) for r in report.layers))
    out = []
    for stage in stage_totals(report.layers, stages):
        rows = [r for r in report.layers if _in(r.name, stage["prefix"]) and not r.train_only]
        out.append({"name": stage["name"], "macs": stage["macs"], "params": stage["params"],
                    "regions": max((r.regions for r in rows), default=1)})
    return out


def _in(name: str, prefix: str | None) -> bool:
    return prefix is not None and (name == prefix or name.startswith(prefix + "."))


def explanation(columns: list[Any]) -> list[str]:
    """Lines for `compare` when a model has a per-region part; [] otherwise."""
    reports = [c for c in columns if c.error is None]
    if not any(r.regions > 1 for c in reports for r in c.report.layers):
        return []
    lines = ["Where the MACs are (per image):"]
    summary = {}
    for column in reports:
        report, split = column.report, parts(column.report)
        once = sum(p["macs"] or 0 for p in split if p["regions"] == 1)
        heads = [p for p in split if p["regions"] > 1]
        regions = max((p["regions"] for p in heads), default=0)
        per_region = sum(p["macs"] or 0 for p in heads)
        summary[column.name] = (report.input_shape[1:], once, regions, per_region,
                                sum(p["params"] or 0 for p in heads))
        text = ", ".join(f"{p['name']} {fmt.human(p['macs'])}MAC"
                         + (f" (x{p['regions']} regions)" if p["regions"] > 1 else "")
                         for p in split)
        lines.append(f"  {column.name}: input {fmt.shape(report.input_shape[1:])}; {text}")
    if len(summary) >= 2:
        lines += _why(summary)
    return lines


def _why(summary: dict[str, tuple]) -> list[str]:
    (a, (a_in, a_once, a_r, a_region, a_head)), (b, (b_in, b_once, b_r, b_region, b_head)) = \
        list(summary.items())[:2]
    lines = [f"Why {a} and {b} differ:"]
    a_px, b_px = math.prod(a_in[1:]), math.prod(b_in[1:])
    lines.append(f"  once per image: {fmt.human(a_once)}MAC vs {fmt.human(b_once)}MAC "
                 f"({_ratio(a_once, b_once)}) on {fmt.shape(a_in)} vs {fmt.shape(b_in)} "
                 f"inputs ({_ratio(a_px, b_px)} the pixels): the backbone, its feature "
                 "pyramid and the proposal network differ in width and depth")
    if a_r and b_r:
        one_a, one_b = a_region // a_r, b_region // b_r
        lines.append(f"  per region: {fmt.human(one_a)}MAC vs {fmt.human(one_b)}MAC "
                     f"({_ratio(one_a, one_b)}) x {a_r} vs {b_r} regions = "
                     f"{fmt.human(a_region)}MAC vs {fmt.human(b_region)}MAC; the per-region "
                     f"heads hold {fmt.human(a_head)} vs {fmt.human(b_head)} params")
    return lines


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}x" if b else "n/a"
