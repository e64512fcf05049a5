"""`cnnstat zoo`: every built-in spec with its headline numbers."""

# No `from __future__ import annotations`: typer reads these signatures at every start,
# and each string annotation would cost it a compile and an eval.

from typing import Annotated

import typer

from cnnstat.commands.app import app
from cnnstat.commands.options import Format, FormatOpt, JsonOpt, NoColorOpt
from cnnstat.commands.output import emit
from cnnstat.errors import UsageError, did_you_mean


@app.command("zoo")
def zoo(
    family: Annotated[str | None, typer.Option(
        "--family", help="Only this family (vgg, resnet, inception, ...).",
        show_default=False)] = None,
    format: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    no_color: NoColorOpt = False,
) -> None:
    """List the built-in networks: family, year, params, MACs, default and minimum input."""
    from cnnstat.analyzers.zoo_table import zoo_row
    from cnnstat.report import zoo_render
    from cnnstat.resolver import load_zoo, zoo_names

    graphs = [load_zoo(name) for name in zoo_names()]
    if family is not None:
        families = {g.meta.family for g in graphs if g.meta.family}
        if family not in families:
            raise UsageError(f"no family '{family}'{did_you_mean(family, families)}; "
                             f"families: {', '.join(sorted(families))}")
        graphs = [g for g in graphs if g.meta.family == family]
    rows = sorted((zoo_row(g) for g in graphs),
                  key=lambda r: (r.family or "", r.year or 0, r.params, r.name))
    emit(Format.json if as_json else format, no_color,
         json=lambda: zoo_render.zoo_json(rows), csv=lambda: zoo_render.zoo_csv(rows),
         markdown=lambda: zoo_render.zoo_markdown(rows),
         table=lambda console: console.print(zoo_render.zoo_table(rows)))
