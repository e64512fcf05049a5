"""`cnnstat savings MODEL [--suggest [--ratio R]]`: what 1x1 reductions save, what a
large kernel would cost against a stack of small ones, and where a reduction would help."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cnnstat.commands.app import app, note
from cnnstat.commands.options import (
    Format,
    FormatOpt,
    InputOpt,
    JsonOpt,
    ModelArg,
    NoColorOpt,
)

SuggestOpt = Annotated[bool, typer.Option(
    "--suggest", help="Rank the kxk convs where a 1x1 reduction would save the most MACs.")]
RatioOpt = Annotated[str, typer.Option(
    "--ratio", help="With --suggest: reduce to floor(RATIO x C_in) channels, 0 < RATIO < 1.")]


@app.command("savings")
def savings(model: ModelArg, input: InputOpt = None, suggest: SuggestOpt = False,
            ratio: RatioOpt = "0.25", format: FormatOpt = Format.table,
            as_json: JsonOpt = False, no_color: NoColorOpt = False) -> None:
    """1x1-reduction savings (per finding and model totals) and kernel factorization."""
    from cnnstat.analyzers.savings import analyze_savings, as_ratio, suggest_reductions
    from cnnstat.api import input_shape
    from cnnstat.models import resolve

    frac = as_ratio(ratio)  # a bad --ratio fails before any work
    resolved = resolve(model, input=input)  # a module reference is traced at --input
    if resolved.note:
        note(resolved.note)
    shape = input_shape(input, resolved.graph)
    format = Format.json if as_json else format
    if suggest:
        _emit_suggest(suggest_reductions(resolved.graph, shape, frac), format, no_color)
    else:
        _emit(analyze_savings(resolved.graph, shape), format, no_color)


def _emit(report, format: Format, no_color: bool) -> None:
    from cnnstat.report import savings_tables as out

    if format is Format.json:
        print(out.to_json(report))
    elif format is Format.csv:
        sys.stdout.write(out.to_csv(report))
    elif format is Format.markdown:
        sys.stdout.write(out.to_markdown(report))
    else:
        from cnnstat.report.console import stdout_console

        stdout_console(no_color).print(out.render(report))


def _emit_suggest(report, format: Format, no_color: bool) -> None:
    from cnnstat.report import savings_tables as out

    if format is Format.json:
        print(out.to_json(report))
    elif format is Format.csv:
        sys.stdout.write(out.suggest_csv(report))
    elif format is Format.markdown:
        sys.stdout.write(out.suggest_markdown(report))
    else:
        from cnnstat.report.console import stdout_console

        stdout_console(no_color).print(out.render_suggest(report))
