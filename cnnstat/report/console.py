"""The consoles: stdout for results, stderr for diagnostics.

Colour follows rich's detection (off when piped, NO_COLOR honoured) plus --no-color.
When stdout is not a terminal we widen the console so tables are never squeezed into 80
columns; numeric columns fold rather than truncate, so no digit is ever cut.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console


def stdout_console(no_color: bool = False) -> Console:
    width = None
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        width = 200
    return Console(file=sys.stdout, no_color=no_color or None, highlight=False, width=width,
                   emoji=False)


def stderr_console(no_color: bool = False) -> Console:
    return Console(file=sys.stderr, no_color=no_color or None, highlight=False, emoji=False)
