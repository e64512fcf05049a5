"""Rendering of `cnnstat zoo`: a table, JSON, CSV, Markdown."""

from __future__ import annotations

import csv
import io
import json

from cnnstat import fmt
from cnnstat.analyzers.zoo_table import ZooRow
from cnnstat.report.text_table import TextTable

ZOO_SCHEMA = "cnnstat.zoo/1"
_FIELDS = ("name", "family", "year", "follows", "input", "min_input", "params", "macs",
           "flops", "title")


def zoo_table(rows: list[ZooRow]) -> TextTable:
    params_scale, params_unit = fmt.typical_unit([r.params for r in rows])
    macs_scale, macs_unit = fmt.typical_unit([r.macs for r in rows])
    table = TextTable(title="cnnstat zoo",
                      caption="MACs at each model's default input, batch 1 (FLOPs = 2 x MACs). "
                      "Min input: the smallest square input every layer accepts.")
    table.add_column("Model")
    table.add_column("Family")
    table.add_column("Year", right=True)
    table.add_column(f"Params ({params_unit})", right=True)
    table.add_column(f"MACs ({macs_unit})", right=True)
    table.add_column("Input", right=True)
    table.add_column("Min input", right=True)
    table.add_column("Follows")
    for r in rows:
        table.add_row(r.name, r.family or "", str(r.year or ""),
                      fmt.scaled(r.params, params_scale), fmt.scaled(r.macs, macs_scale),
                      fmt.shape(r.input or ()), str(r.min_input), r.follows or "")
    return table


def zoo_json(rows: list[ZooRow]) -> str:
    return json.dumps({"schema": ZOO_SCHEMA, "models": [r.to_dict() for r in rows]}, indent=2)


def zoo_csv(rows: list[ZooRow]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_FIELDS)
    for r in rows:
        d = r.to_dict()
        d["input"] = fmt.shape(r.input or ())
        writer.writerow([d[f] if d[f] is not None else "" for f in _FIELDS])
    return buf.getvalue()


def zoo_markdown(rows: list[ZooRow]) -> str:
    lines = ["| Model | Family | Year | Params | MACs | Input | Min input | Follows |",
             "|---|---|---:|---:|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| `{r.name}` | {r.family or ''} | {r.year or ''} | "
                     f"{fmt.human(r.params)} | {fmt.human(r.macs)} | "
                     f"{fmt.shape(r.input or ())} | {r.min_input} | {r.follows or ''} |")
    return "\n".join(lines) + "\n"
