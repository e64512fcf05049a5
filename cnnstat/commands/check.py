"""`cnnstat check FILE`: the CI budget gate.

Exit 0 when every budget passes, 1 when one is exceeded (or a metric regressed past the
baseline tolerance), 2 when the budget file is malformed or anything could not be loaded
or measured: the gate fails closed. stdout carries the chosen format only; the located
error lines and notes go to stderr.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start,
# and each string annotation would cost it a compile and an eval.

import sys
from enum import StrEnum
from typing import Annotated

import typer

from cnnstat.commands.app import app, error, note
from cnnstat.commands.options import NoColorOpt


class CheckFormat(StrEnum):
    table = "table"
    json = "json"
    junit = "junit"
    github = "github"
    markdown = "markdown"


FileArg = Annotated[str, typer.Argument(
    help="The budget file (YAML): defaults and a list of models with their limits.",
    metavar="FILE", show_default=False)]
CheckFormatOpt = Annotated[CheckFormat, typer.Option(
    "--format", "-f", help="table for people; json, junit (XML), github (annotations) or "
    "markdown (a PR comment) for CI.")]
BaselineOpt = Annotated[str | None, typer.Option(
    "--baseline", help="A previous run's numbers (JSON) to compare with; fail when a metric "
    "grew past --tolerance.", metavar="FILE", show_default=False)]
ToleranceOpt = Annotated[str, typer.Option(
    "--tolerance", metavar="PCT",
    help="How much a metric may grow over the baseline, e.g. 2% or 0.5%.")]
AllowCodeOpt = Annotated[bool, typer.Option(
    "--allow-code", help="Let budget entries name module references (pkg.mod:Net, "
    "file.py:Net, torchvision:NAME). Loading one IMPORTS AND RUNS ITS CODE.")]
UpdateOpt = Annotated[bool, typer.Option(
    "--update-baseline", help="Write this run's numbers to the --baseline file (atomically; "
    "not written when a model could not be measured).")]


@app.command("check")
def check(file: FileArg, format: CheckFormatOpt = CheckFormat.table,
          baseline: BaselineOpt = None, tolerance: ToleranceOpt = "2%",
          update_baseline: UpdateOpt = False, allow_code: AllowCodeOpt = False,
          no_color: NoColorOpt = False) -> None:
    """Check models against a budget file: exit 0 pass, 1 over budget, 2 not measurable."""
    from cnnstat.budget import check as run_check

    result = run_check(file, baseline=baseline, tolerance=tolerance,
                       update_baseline=update_baseline, allow_code=allow_code)
    _emit(result, format, no_color)
    for line in result.notes:
        note(line)
    for line in result.problems():
        error(line)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _emit(result, format: CheckFormat, no_color: bool) -> None:
    from cnnstat.report import budget_render as render

    ascii_only = not _utf8_stdout()
    if format is CheckFormat.table:
        from cnnstat.commands.output import Stdout

        Stdout(no_color).print(render.table(result, ascii_only))
        return
    text = {
        CheckFormat.json: lambda: render.to_json(result) + "\n",
        CheckFormat.junit: lambda: render.to_junit(result),
        CheckFormat.github: lambda: render.to_github(result),
        CheckFormat.markdown: lambda: render.to_markdown(result, ascii_only),
    }[format]()
    sys.stdout.write(text if not ascii_only else text.encode("ascii", "replace").decode())


def _utf8_stdout() -> bool:
    encoding = (getattr(sys.stdout, "encoding", None) or "utf-8").lower().replace("-", "")
    return encoding.startswith("utf")
