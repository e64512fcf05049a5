"""`cnnstat savings MODEL [--suggest [--ratio R]]`: what 1x1 reductions save, what a
large kernel would cost against a stack of small ones, and where a reduction would help."""

# No `from __future__ import annotations`: typer reads these signatures at every start
# (see check.py).

from typing import Annotated

import typer

from cnnstat.commands.app import app
from cnnstat.commands.options import (
    BatchOpt,
    DepthOpt,
    Dtype,
    DtypeOpt,
    Format,
    FormatOpt,
    InputOpt,
    JsonOpt,
    KwargsOpt,
    ModelArg,
    NoColorOpt,
    StrictOpt,
    parse_depth,
)
from cnnstat.commands.output import check_unsupported, emit, sweep_sizes
from cnnstat.commands.torch_cmds import resolve_model, traced_input

SuggestOpt = Annotated[bool, typer.Option(
    "--suggest", help="Rank the kxk convs where a 1x1 reduction would save the most MACs.")]
RatioOpt = Annotated[str, typer.Option(
    "--ratio", help="With --suggest: reduce to floor(RATIO x C_in) channels, 0 < RATIO < 1.")]


@app.command("savings")
def savings(model: ModelArg, input: InputOpt = None, suggest: SuggestOpt = False,
            ratio: RatioOpt = "0.25", batch: BatchOpt = 1, format: FormatOpt = Format.table,
            as_json: JsonOpt = False, depth: DepthOpt = None, dtype: DtypeOpt = Dtype.fp32,
            no_color: NoColorOpt = False, strict: StrictOpt = False,
            kwargs: KwargsOpt = None) -> None:
    """1x1-reduction savings (per finding and model totals) and kernel factorization.

    Savings are params and MACs per image, listed per finding: --batch, --dtype and
    --depth are accepted and change nothing."""
    from cnnstat.analyzers import analyze_graph
    from cnnstat.analyzers.savings import analyze_savings, as_ratio, suggest_reductions
    from cnnstat.api import input_shape
    from cnnstat.report import savings_tables as out

    frac = as_ratio(ratio)  # a bad --ratio fails before any work
    parse_depth(depth)  # accepted (findings are not layers), but checked like everywhere
    graph = resolve_model(model, input, kwargs).graph  # a reference is traced at --input
    input = traced_input(model, input)
    format = Format.json if as_json else format
    reports = []
    for size in sweep_sizes(input):
        shape = input_shape(size, graph)
        check_unsupported(analyze_graph(graph, shape), strict)
        reports.append(suggest_reductions(graph, shape, frac) if suggest
                       else analyze_savings(graph, shape))
    if len(reports) > 1:
        emit(format, no_color, json=lambda: out.sweep_json(reports),
             csv=lambda: _sweep_csv(out, reports, suggest),
             markdown=lambda: "\n".join(_markdown(out, r, suggest) for r in reports),
             table=lambda console: console.print(*(_table(out, r, suggest) for r in reports)))
        return
    report = reports[0]
    emit(format, no_color, json=lambda: out.to_json(report),
         csv=lambda: _csv(out, report, suggest), markdown=lambda: _markdown(out, report, suggest),
         table=lambda console: console.print(_table(out, report, suggest)))


def _csv(out, report, suggest: bool) -> str:
    return out.suggest_csv(report) if suggest else out.to_csv(report)


def _sweep_csv(out, reports, suggest: bool) -> str:
    """One CSV, its first column the input each row was counted at."""
    lines: list[str] = []
    for report in reports:
        shape = getattr(report, "input_shape", None) or report.totals.input_shape
        head, *rows = _csv(out, report, suggest).splitlines()
        lines += [] if lines else [f"input_shape,{head}"]
        lines += [f"{'x'.join(map(str, shape))},{row}" for row in rows]
    return "\n".join(lines) + "\n"


def _markdown(out, report, suggest: bool) -> str:
    return out.suggest_markdown(report) if suggest else out.to_markdown(report)


def _table(out, report, suggest: bool):
    return out.render_suggest(report) if suggest else out.render(report)
