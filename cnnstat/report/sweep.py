"""Rendering of an input-size sweep (`--input 224,320,448`): how shapes and cost grow."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from rich import box
from rich.table import Table

from cnnstat import fmt
from cnnstat.analyzers.results import ModelReport

SWEEP_SCHEMA = "cnnstat.sweep/1"
_FIELDS = ("input_shape", "output_shapes", "params", "macs", "flops", "other_ops",
           "activations", "activation_bytes", "macs_ratio")


def _ratio(report: ModelReport, first: ModelReport) -> str:
    return f"{report.totals.macs / first.totals.macs:.2f}x" if first.totals.macs else "n/a"


def _outputs(report: ModelReport) -> str:
    return ", ".join(fmt.shape(s) for _, s in report.outputs)


def sweep_table(reports: list[ModelReport]) -> Table:
    first = reports[0]
    table = Table(box=box.SIMPLE_HEAD, title_justify="left", caption_justify="left",
                  title=f"{first.model}: input sweep",
                  caption="MACs exclude bias; FLOPs = 2 x MACs. Params do not depend on the "
                  "input unless a layer's width does (flatten -> linear).")
    macs_scale, macs_unit = fmt.si_unit([r.totals.macs for r in reports])
    act_scale, act_unit = fmt.si_unit([r.totals.activation_bytes for r in reports], binary=True)
    headers = ("Input", "Output", "Params", f"MACs ({macs_unit})", f"FLOPs ({macs_unit})",
               f"Act. memory ({act_unit})", f"MACs vs {fmt.shape(first.input_shape)}")
    for header in headers:
        table.add_column(header, justify="left" if header in ("Input", "Output") else "right",
                         overflow="fold")
    for r in reports:
        table.add_row(fmt.shape(r.input_shape), _outputs(r), fmt.exact(r.totals.params),
                      fmt.scaled(r.totals.macs, macs_scale),
                      fmt.scaled(r.totals.flops, macs_scale),
                      fmt.scaled(r.totals.activation_bytes, act_scale), _ratio(r, first))
    return table


def sweep_json(reports: list[ModelReport], extra: dict | None = None,
               per_report: Callable[[ModelReport], dict] | None = None) -> str:
    """Every report (with what `per_report` adds to each: summary's memory), and the
    table's rows (with the MACs ratio to the first input)."""
    docs = [{**r.to_dict(), **(per_report(r) if per_report else {})} for r in reports]
    return json.dumps({"schema": SWEEP_SCHEMA, "model": reports[0].model,
                       "rows": [_row(r, reports[0]) for r in reports],
                       "reports": docs, **(extra or {})}, indent=2)


def _row(r: ModelReport, first: ModelReport) -> dict:
    t = r.totals
    return {"input_shape": fmt.shape(r.input_shape), "output_shapes": _outputs(r),
            "params": t.params, "macs": t.macs, "flops": t.flops, "other_ops": t.other_ops,
            "activations": t.activations, "activation_bytes": t.activation_bytes,
            "macs_ratio": f"{t.macs / first.totals.macs:.4f}" if first.totals.macs else ""}


def sweep_csv(reports: list[ModelReport]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, _FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in reports:
        writer.writerow(_row(r, reports[0]))
    return buf.getvalue()


def sweep_markdown(reports: list[ModelReport]) -> str:
    lines = [f"**{reports[0].model}**: input sweep", "",
             "| Input | Output | Params | MACs | FLOPs | Act. memory | MACs ratio |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in reports:
        t = r.totals
        lines.append(f"| {fmt.shape(r.input_shape)} | {_outputs(r)} | {fmt.exact(t.params)} | "
                     f"{fmt.human(t.macs)} | {fmt.human(t.flops)} | "
                     f"{fmt.human(t.activation_bytes, binary=True)} | {_ratio(r, reports[0])} |")
    return "\n".join(lines) + "\n"
