"""One way to print a result in the chosen format: JSON, CSV and Markdown as text on
stdout, tables through the rich console (which honours NO_COLOR and pipes), or, for a
plain-data table (report/text_table.py) bound for a pipe, as the same text without rich."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from cnnstat.commands.options import Format


def emit(format: Format, no_color: bool, *, json: Callable[[], str], csv: Callable[[], str],
         markdown: Callable[[], str], table: Callable[..., None]) -> None:
    """Call only the renderer the format needs (rich is imported for tables alone)."""
    if format is Format.json:
        print(json())
    elif format is Format.csv:
        sys.stdout.write(csv())
    elif format is Format.markdown:
        sys.stdout.write(markdown())
    else:
        table(Stdout(no_color))


def unsupported_message(report) -> str | None:
    if not report.unsupported:
        return None
    kinds = sorted({u.kind for u in report.unsupported})
    return f"{len(report.unsupported)} layer counts are unsupported ({', '.join(kinds)})"


def check_unsupported(report, strict: bool) -> None:
    """What could not be counted: a note, or under --strict exit 3 (AnalysisError). Strict
    also refuses counts a layer kind has but that are not known for this layer: an opaque
    op's element-wise work (the frontend's diagnostics already said so)."""
    from cnnstat.commands.app import note
    from cnnstat.errors import AnalysisError

    message = unsupported_message(report)
    if strict:
        problems = [m for m in (message, _unknown_message(report)) if m]
        if problems:
            raise AnalysisError("; ".join(problems) + " and --strict is set")
    elif message is not None:
        note(message + "; totals exclude them")


def _unknown_message(report) -> str | None:
    from cnnstat.errors import listing

    unknown = [f"{r.name} ({r.kind})" for r in report.layers if not r.unsupported
               and None in (r.params, r.macs, r.other_ops)]
    if not unknown:
        return None
    return f"the MACs or element-wise work of {len(unknown)} layer(s) are not counted: "\
           f"{listing(unknown)}"


def sweep_sizes(input: str | None) -> list[str | None]:
    """`--input 224,320` as its sizes; one input (or none: the default) as one."""
    return [size.strip() for size in input.split(",")] if input and "," in input else [input]


class Stdout:
    """What a table is printed on: the rich stdout console, made on first use. A plain-data
    table (report/text_table.py) bound for a pipe is written as text without it: the same
    characters, without the cost of importing rich and laying out each cell through it."""

    def __init__(self, no_color: bool = False):
        self.no_color = no_color
        self._console: Any = None

    @property
    def console(self) -> Any:
        if self._console is None:
            from cnnstat.report.console import stdout_console

            self._console = stdout_console(self.no_color)
        return self._console

    def print(self, *objects: Any) -> None:
        from cnnstat.report.text_table import PLAIN, plain_stream

        if objects and plain_stream(sys.stdout) and all(
                isinstance(o, PLAIN) and o.plain_ok() for o in objects):
            from cnnstat.report.streams import Rstripped

            Rstripped(sys.stdout).write("".join(o.plain() for o in objects))
        else:
            self.console.print(*objects)

    def __getattr__(self, name: str) -> Any:  # encoding, width: the rich console's own
        return getattr(self.console, name)
