"""`cnnstat savings MODEL [--suggest [--ratio R]]`: what 1x1 reductions save, what a
large kernel would cost against a stack of small ones, and where a reduction would help."""

# No `from __future__ import annotations`: typer reads these signatures at every start
# (see check.py).

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
from cnnstat.commands.output import emit

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
    from cnnstat.report import savings_tables as out

    format = Format.json if as_json else format
    if suggest:
        found = suggest_reductions(resolved.graph, shape, frac)
        emit(format, no_color, json=lambda: out.to_json(found),
             csv=lambda: out.suggest_csv(found), markdown=lambda: out.suggest_markdown(found),
             table=lambda console: console.print(out.render_suggest(found)))
    else:
        report = analyze_savings(resolved.graph, shape)
        emit(format, no_color, json=lambda: out.to_json(report),
             csv=lambda: out.to_csv(report), markdown=lambda: out.to_markdown(report),
             table=lambda console: console.print(out.render(report)))
