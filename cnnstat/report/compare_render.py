"""Rendering of `cnnstat compare`: the metric table (with ratios and inline bars), the
per-stage table, Markdown, CSV and JSON. No counting happens here."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich import box
from rich.table import Table

from cnnstat import fmt
from cnnstat.analyzers.compare import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    METRICS,
    Metric,
    ModelColumn,
    ratio,
    stage_costs,
)

COMPARE_SCHEMA = "cnnstat.compare/1"
BAR_WIDTH = 8
CAPTION = ("Batch 1 unless --batch; activation memory at fp32 unless --dtype. MACs exclude "
           "bias; FLOPs = 2 x MACs; other ops are element-wise work. Ratios are each model "
           "against the first; better/worse say which side wins where that has a direction.")


def _cell(metric: Metric, value: Any, scale: int, suffix: str) -> str:
    if value is None:
        return "n/a"
    if metric.unit == "text" or not isinstance(value, int | float):
        return str(value)
    if metric.unit == "px":
        return f"{value} px"
    if metric.unit == "ms":
        return f"{value:,.2f} ms"
    if metric.unit == "per_s":
        return f"{value:,.1f} /s"
    text = fmt.scaled(value, scale)
    return f"{text} {suffix}".rstrip()


def ratio_text(metric: Metric, value: Any, first: Any) -> str:
    r = ratio(value, first)
    if r is None:
        return ""
    if r == 1:
        return "same"
    if r == 0:  # this model has none of it (a spec without weight layers: depth 0)
        return "none"
    if metric.better == LOWER_IS_BETTER:
        return f"{1 / r:.2f}x lower (better)" if r < 1 else f"{r:.2f}x higher (worse)"
    if metric.better == HIGHER_IS_BETTER:
        return f"{r:.2f}x higher (better)" if r > 1 else f"{1 / r:.2f}x lower (worse)"
    return f"{1 / r:.2f}x smaller" if r < 1 else f"{r:.2f}x larger"


def _bar(value: Any, biggest: int, glyph: str) -> str:
    if not isinstance(value, int) or biggest <= 0:
        return ""
    return glyph * max(1, round(BAR_WIDTH * value / biggest)) if value else ""


def _row_unit(metric: Metric, values: list[Any]) -> tuple[int, str]:
    ints = [v for v in values if isinstance(v, int)]
    if metric.unit not in ("count", "bytes") or not ints:
        return 1, ""
    return fmt.si_unit(ints, binary=metric.unit == "bytes")


def compare_table(columns: list[ModelColumn], ascii_only: bool = False) -> Table:
    glyph = "#" if ascii_only else "█"
    ok = [c for c in columns if c.error is None]
    first = ok[0] if ok else None
    table = Table(box=box.SIMPLE_HEAD, caption=CAPTION, caption_justify="left",
                  title="cnnstat compare", title_justify="left")
    table.add_column("Metric", overflow="fold", min_width=22)
    for i, col in enumerate(columns):
        table.add_column(col.name if col.error is None else f"{col.name} (failed)",
                         justify="right", overflow="fold")
        if i > 0 and first is not None and col is not first and col.error is None:
            table.add_column(f"vs {first.name}", overflow="fold")
    for metric in METRICS:
        values = [c.values.get(metric.key) for c in ok]
        if all(v is None for v in values):
            continue
        scale, suffix = _row_unit(metric, values)
        biggest = max((v for v in values if isinstance(v, int)), default=0)
        cells = [metric.label]
        for i, col in enumerate(columns):
            if col.error is not None:
                cells.append("error")
                continue
            value = col.values.get(metric.key)
            text = _cell(metric, value, scale, suffix)
            if metric.headline:
                text = f"{text} {_bar(value, biggest, glyph)}".rstrip()
            cells.append(text)
            if i > 0 and col is not first:
                cells.append(ratio_text(metric, value, first.values.get(metric.key)))
        table.add_row(*cells)
    return table


def errors_text(columns: list[ModelColumn]) -> list[str]:
    return [f"{c.name}: {c.error}" for c in columns if c.error is not None]


def stage_table(columns: list[ModelColumn]) -> Table:
    ok = [c for c in columns if c.error is None]
    stages = {c.name: stage_costs(c.report) for c in ok}
    keys: list[str] = []
    for costs in stages.values():
        keys += [k for k in costs if k not in keys]
    keys.sort(key=lambda k: (k == "head", float(k[1:]) if k != "head" else 0))
    table = Table(box=box.SIMPLE_HEAD, title="Where each model spends, per resolution stage",
                  title_justify="left", caption="Stage = input side / output side "
                  "(/4: a quarter of the input resolution); head = after flatten.",
                  caption_justify="left")
    table.add_column("Stage")
    units: dict[str, tuple[int, int]] = {}
    for c in ok:
        p_scale, p_unit = fmt.si_unit([stages[c.name].get(k, (0, 0))[0] for k in keys])
        m_scale, m_unit = fmt.si_unit([stages[c.name].get(k, (0, 0))[1] for k in keys])
        units[c.name] = (p_scale, m_scale)
        table.add_column(f"{c.name} params ({p_unit})", justify="right")
        table.add_column(f"{c.name} MACs ({m_unit})", justify="right")
    for k in keys:
        cells = [k]
        for c in ok:
            p, m = stages[c.name].get(k, (0, 0))
            cells += [fmt.scaled(p, units[c.name][0]), fmt.scaled(m, units[c.name][1])]
        table.add_row(*cells)
    return table


def compare_json(columns: list[ModelColumn], explanation: list[str] | None = None) -> str:
    models, errors = [], []
    for c in columns:
        if c.error is not None:
            errors.append({"model": c.name, "error": c.error})
            continue
        entry = c.report.to_dict()
        entry["metrics"] = dict(c.values)
        models.append(entry)
    extra = {"explanation": explanation} if explanation else {}
    return json.dumps({"schema": COMPARE_SCHEMA, "models": models, "errors": errors, **extra},
                      indent=2)


def compare_csv(columns: list[ModelColumn]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["metric", *[c.name for c in columns]])
    for metric in METRICS:
        row = [c.values.get(metric.key) if c.error is None else "error" for c in columns]
        if all(v is None for v in row):
            continue
        writer.writerow([metric.key, *["" if v is None else v for v in row]])
    return buf.getvalue()


def compare_markdown(columns: list[ModelColumn]) -> str:
    ok = [c for c in columns if c.error is None]
    first = ok[0] if ok else None
    header = ["Metric"]
    for c in columns:
        header.append(f"`{c.name}`" if c.error is None else f"`{c.name}` (failed)")
        if first is not None and c is not first and c.error is None:
            header.append(f"vs `{first.name}`")
    lines = ["| " + " | ".join(header) + " |",
             "|---|" + "|".join("---:" for _ in header[1:]) + "|"]
    for metric in METRICS:
        values = [c.values.get(metric.key) for c in ok]
        if all(v is None for v in values):
            continue
        scale, suffix = _row_unit(metric, values)
        cells = [metric.label]
        for c in columns:
            if c.error is not None:
                cells.append("error")
                continue
            cells.append(_cell(metric, c.values.get(metric.key), scale, suffix))
            if c is not first:
                cells.append(ratio_text(metric, c.values.get(metric.key),
                                        first.values.get(metric.key)))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"_{CAPTION}_"] + [f"- **{e}**" for e in errors_text(columns)]
    return "\n".join(lines) + "\n"
