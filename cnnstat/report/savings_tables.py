"""Rendering of `cnnstat savings`: rich tables, Markdown, CSV and JSON. No counting here.

Every table is described once as a list of columns; the rich and the Markdown renderers
read the same description, so the two never disagree. Count columns share one SI unit.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cnnstat import fmt
from cnnstat.analyzers.savings import (
    Reduction,
    SavingsReport,
    SavingsTotals,
    SuggestReport,
    ratio,
)

CAPTION = (
    "MACs: multiply-accumulates of convs, bias excluded (FLOPs = 2 x MACs). Actual = the "
    "convs of the design plus the BN between them; base = the same kxk conv(s) on the "
    "unreduced input at the same output size (kernel shown); x = base / actual (below 1: "
    "the design costs more). RF: receptive field of the design / of the base. "
    "See docs/savings.md."
)
FACTOR_CAPTION = (
    "A stack of stride-1 convs against one conv whose kernel is the stack's receptive field "
    "(C_0 -> C_n, same output size). Params, MACs: the stack's (BN between included); "
    "x = large kernel / stack. Pairs inside a longer run "
    "are listed too; totals count whole runs only. See docs/savings.md."
)
SUGGEST_CAPTION = (
    "What-if: a 1x1 conv to floor(ratio x C_in) channels inserted before each dense kxk "
    "conv (bias as the kxk conv's, no BN). Projected = the 1x1 + the kxk on the reduced "
    "input (new). x = current / new. Ranked by MACs saved. See docs/savings.md."
)


@dataclass(frozen=True, slots=True)
class Col:
    header: str
    value: Callable[[Any], Any]
    count: bool = False  # an int column: one SI unit for the whole column


def _numeric(col: Col) -> bool:
    return col.count or col.header.endswith(" x") or col.header.startswith("%")


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _hw(pair: Sequence[int]) -> str:
    return f"{pair[0]}x{pair[1]}"


def _local(name: str, scope: str) -> str:
    return name[len(scope) + 1:] if scope and name.startswith(scope + ".") else name


def _widths(r: Reduction) -> str:
    if r.kind == "bottleneck":
        return " -> ".join(str(c) for c in (r.in_channels, *r.widths))
    outs = "+".join(str(c) for c in r.widths[1:])
    return f"{r.in_channels} -> {r.reduced_channels} -> {outs}"


def _kernels(r: Reduction) -> str:
    return "+".join(_hw(p.layer.kernel_size) for p in r.baseline_convs)


REDUCTION_COLS = (
    Col("Block", lambda r: r.block or "(top)"),
    Col("Kind", lambda r: r.kind),
    Col("Channels", _widths),
    Col("Kernel", _kernels),
    Col("RF", lambda r: f"{_hw(r.rf_actual)} / {_hw(r.rf_baseline)}"),
    Col("Params", lambda r: r.actual.params, True),
    Col("Base params", lambda r: r.baseline.params, True),
    Col("Params x", lambda r: _times(ratio(r.baseline.params, r.actual.params))),
    Col("MACs", lambda r: r.actual.macs, True),
    Col("Base MACs", lambda r: r.baseline.macs, True),
    Col("Saved MACs", lambda r: r.saved.macs, True),
    Col("MACs x", lambda r: _times(ratio(r.baseline.macs, r.actual.macs))),
)
COMPRESSION_COLS = (
    Col("Conv", lambda c: c.conv),
    Col("Then", lambda c: c.pool),
    Col("Channels", lambda c: f"{c.in_channels} -> {c.out_channels}"),
    Col("Kept", lambda c: f"{c.channel_ratio:.2f}"),
    Col("Params", lambda c: c.cost.params, True),
    Col("MACs", lambda c: c.cost.macs, True),
)


FACTOR_COLS = (
    Col("Block", lambda f: f.block or "(top)"),
    Col("Stack", lambda f: " -> ".join(_local(c, f.block) for c in f.convs)),
    Col("Run", lambda f: "whole" if f.whole_run else "pair"),
    Col("Kernels", lambda f: "+".join(_hw(k) for k in f.kernels)),
    Col("Channels", lambda f: " -> ".join(str(c) for c in f.channels)),
    Col("Equivalent", lambda f: _hw(f.large.layer.kernel_size)),
    Col("RF", lambda f: f"{_hw(f.rf_stack)} / {_hw(f.rf_large)}"),
    Col("Params", lambda f: f.stack.params, True),
    Col("Large params", lambda f: f.large.cost.params, True),
    Col("Params x", lambda f: _times(ratio(f.large.cost.params, f.stack.params))),
    Col("MACs", lambda f: f.stack.macs, True),
    Col("Large MACs", lambda f: f.large.cost.macs, True),
    Col("MACs x", lambda f: _times(ratio(f.large.cost.macs, f.stack.macs))),
)


def suggest_cols(report: SuggestReport) -> tuple[Col, ...]:
    total = report.model_cost.macs
    return (
        Col("Conv", lambda s: s.conv),
        Col("Kernel", lambda s: _hw(s.conv_after.layer.kernel_size)),
        Col("Channels", lambda s: f"{s.in_channels} -> {s.reduce.layer.out_channels} -> "
                                  f"{s.conv_after.layer.out_channels}"),
        Col("Params", lambda s: s.current.params, True),
        Col("New params", lambda s: s.projected.params, True),
        Col("MACs", lambda s: s.current.macs, True),
        Col("New MACs", lambda s: s.projected.macs, True),
        Col("Saved MACs", lambda s: s.saved.macs, True),
        Col("MACs x", lambda s: _times(ratio(s.current.macs, s.projected.macs))),
        Col("% model MACs", lambda s: fmt.percent(s.saved.macs, total)),
        Col("Note", lambda s: "behind a 1x1 already" if s.fed_by_reduction else ""),
    )


def cells(cols: Sequence[Col], items: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    """Headers (with each count column's unit) and formatted rows."""
    headers: list[str] = []
    columns: list[list[str]] = []
    for col in cols:
        values = [col.value(item) for item in items]
        if col.count:
            scale, suffix = fmt.si_unit(values)
            headers.append(f"{col.header} ({suffix})" if suffix else col.header)
            columns.append([fmt.scaled(v, scale) for v in values])
        else:
            headers.append(col.header)
            columns.append([str(v) for v in values])
    return headers, [list(row) for row in zip(*columns, strict=True)]


def rich_table(title: str, cols: Sequence[Col], items: Sequence[Any], caption: str) -> Table:
    headers, rows = cells(cols, items)
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", caption=caption,
                  caption_justify="left")
    for col, header in zip(cols, headers, strict=True):
        table.add_column(header, justify="right" if _numeric(col) else "left",
                         overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def totals_lines(t: SavingsTotals) -> list[str]:
    """The model-level sentence, exact numbers first."""
    found = f"{t.reductions} reductions and {t.bottlenecks} bottlenecks"
    if not t.reductions and not t.bottlenecks:
        return [f"{t.model} has {fmt.exact(t.actual.params)} params / "
                f"{fmt.exact(t.actual.macs)} MACs and no 1x1 reductions."]
    return [
        f"{t.model} has {fmt.exact(t.actual.params)} params / {fmt.exact(t.actual.macs)} MACs "
        f"({fmt.human(t.actual.params)} / {fmt.human(t.actual.macs)}MAC);",
        f"without its 1x1 reductions ({found}) it would have "
        f"{fmt.exact(t.baseline.params)} params / {fmt.exact(t.baseline.macs)} MACs "
        f"({fmt.human(t.baseline.params)} / {fmt.human(t.baseline.macs)}MAC):",
        f"the reductions remove {100 * t.saved_params_share:.1f}% of its params and "
        f"{100 * t.saved_macs_share:.1f}% of its MACs "
        f"(saved {fmt.exact(t.saved.params)} params, {fmt.exact(t.saved.macs)} MACs).",
    ]


def _factor_line(report: SavingsReport) -> str | None:
    runs = report.runs
    if not runs:
        return None
    stack = sum(f.stack.params for f in runs), sum(f.stack.macs for f in runs)
    large = sum(f.large.cost.params for f in runs), sum(f.large.cost.macs for f in runs)
    return (f"Its {len(runs)} conv stacks have {fmt.exact(stack[0])} params / "
            f"{fmt.exact(stack[1])} MACs; one large kernel each would have "
            f"{fmt.exact(large[0])} params / {fmt.exact(large[1])} MACs.")


def _sections(report: SavingsReport) -> list[tuple[str, Sequence[Col], Sequence[Any], str]]:
    shape = fmt.shape(report.totals.input_shape)
    out = []
    if report.reductions:
        out.append((f"{report.model}: 1x1 reductions at input {shape}", REDUCTION_COLS,
                    report.reductions, CAPTION))
    if report.compressions:
        out.append((f"{report.model}: channel compressions (1x1 before a pool; no baseline)",
                    COMPRESSION_COLS, report.compressions, ""))
    if report.factorizations:
        out.append((f"{report.model}: kernel factorization at input {shape}", FACTOR_COLS,
                    report.factorizations, FACTOR_CAPTION))
    return out


def render(report: SavingsReport) -> Group:
    parts: list[Any] = [rich_table(*section) for section in _sections(report)]
    lines = totals_lines(report.totals)
    factor = _factor_line(report)
    parts.append(Text("\n".join(lines + ([factor] if factor else []))))
    return Group(*parts)


def render_suggest(report: SuggestReport) -> Group:
    title = (f"{report.model}: where a 1x1 reduction to {float(report.ratio):g} x C_in would "
             f"save the most, at input {fmt.shape(report.input_shape)}")
    if not report.suggestions:
        return Group(Text(f"{report.model}: no dense kxk conv would get cheaper with a 1x1 "
                          f"reduction to {float(report.ratio):g} x C_in."))
    return Group(rich_table(title, suggest_cols(report), report.suggestions, SUGGEST_CAPTION))


# ---- machine formats -----------------------------------------------------------------

def to_json(report: SavingsReport | SuggestReport) -> str:
    return json.dumps(report.to_dict(), indent=2)


SWEEP_SCHEMA = "cnnstat.savings-sweep/1"


def sweep_json(reports: Sequence[SavingsReport | SuggestReport]) -> str:
    return json.dumps({"schema": SWEEP_SCHEMA, "model": reports[0].model,
                       "reports": [r.to_dict() for r in reports]}, indent=2)


def _md_table(title: str, cols: Sequence[Col], items: Sequence[Any], caption: str) -> list[str]:
    headers, rows = cells(cols, items)
    align = ["---:" if _numeric(c) else "---" for c in cols]
    lines = [f"**{title}**", "", "| " + " | ".join(headers) + " |",
             "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + ([""] + [f"_{caption}_"] if caption else []) + [""]


def to_markdown(report: SavingsReport) -> str:
    lines: list[str] = []
    for section in _sections(report):
        lines += _md_table(*section)
    factor = _factor_line(report)
    lines += [" ".join(totals_lines(report.totals))] + ([factor] if factor else []) + [""]
    return "\n".join(lines)


def suggest_markdown(report: SuggestReport) -> str:
    title = f"{report.model}: 1x1 reduction to {float(report.ratio):g} x C_in, ranked"
    return "\n".join(_md_table(title, suggest_cols(report), report.suggestions,
                               SUGGEST_CAPTION))


CSV_FIELDS = ("section", "name", "kind", "channels", "kernel", "rf_actual", "rf_baseline",
              "actual_params", "baseline_params", "actual_macs", "baseline_macs",
              "saved_params", "saved_macs")


def _csv_rows(report: SavingsReport) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for r in report.reductions:
        base = r.baseline
        rows.append(("reduction", r.block, r.kind, _widths(r), _kernels(r), _hw(r.rf_actual),
                     _hw(r.rf_baseline), r.actual.params, base.params, r.actual.macs,
                     base.macs, r.saved.params, r.saved.macs))
    for c in report.compressions:
        rows.append(("compression", c.conv, "compression", f"{c.in_channels} -> "
                     f"{c.out_channels}", "1x1", "", "", c.cost.params, "", c.cost.macs, "",
                     "", ""))
    for f in report.factorizations:
        large = f.large.cost
        rows.append(("factorization", " ".join(f.convs), "whole" if f.whole_run else "pair",
                     " -> ".join(map(str, f.channels)), "+".join(_hw(k) for k in f.kernels),
                     _hw(f.rf_stack), _hw(f.rf_large), f.stack.params, large.params,
                     f.stack.macs, large.macs, large.params - f.stack.params,
                     large.macs - f.stack.macs))
    t = report.totals
    rows.append(("model", t.model, "total", "", "", "", "", t.actual.params, t.baseline.params,
                 t.actual.macs, t.baseline.macs, t.saved.params, t.saved.macs))
    return rows


def to_csv(report: SavingsReport) -> str:
    """One row per finding (section column), and a last row with the model totals;
    exact ints. For a factorization, actual = the stack and baseline = the large kernel."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    writer.writerows(_csv_rows(report))
    return buf.getvalue()


SUGGEST_FIELDS = ("rank", "conv", "kernel", "in_channels", "reduced_channels", "out_channels",
                  "params", "projected_params", "macs", "projected_macs", "saved_macs",
                  "fed_by_reduction")


def suggest_csv(report: SuggestReport) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SUGGEST_FIELDS)
    for rank, s in enumerate(report.suggestions, 1):
        writer.writerow((rank, s.conv, _hw(s.conv_after.layer.kernel_size), s.in_channels,
                         s.reduce.layer.out_channels, s.conv_after.layer.out_channels,
                         s.current.params, s.projected.params, s.current.macs,
                         s.projected.macs, s.saved.macs, s.fed_by_reduction))
    return buf.getvalue()
