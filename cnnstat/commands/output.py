"""One way to print a result in the chosen format: JSON, CSV and Markdown as text on
stdout, tables through the rich console (which honours NO_COLOR and pipes)."""

from __future__ import annotations

import sys
from collections.abc import Callable

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
        from cnnstat.report.console import stdout_console

        table(stdout_console(no_color))
