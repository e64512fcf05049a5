"""The consoles: stdout for results, stderr for diagnostics.

Colour follows rich's detection (off when piped, NO_COLOR honoured) plus --no-color.
When stdout is not a terminal we widen the console so tables are never squeezed into 80
columns. A renderable is never printed narrower than its natural width (rich's maximum
measure: every cell on one line), so no digit is ever folded onto the next line or cut to
an ellipsis; on a narrow terminal (COLUMNS=40) the terminal wraps the long lines instead.
When stdout cannot encode Unicode (LANG=C with PYTHONIOENCODING=ascii, a latin-1 pipe),
rich draws ASCII boxes and the few other non-ASCII characters are transliterated, never a
crash.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from rich.console import Console, Group
from rich.measure import measure_renderables
from rich.protocol import rich_cast
from rich.table import Table
from rich.text import Text

from cnnstat.report.streams import Rstripped, is_terminal

# What a table may hold beyond ASCII, and its ASCII spelling.
_ASCII = str.maketrans({"…": "...", "×": "x", "—": "-", "–": "-", "→": "->", "✓": "v",
                        "✗": "x", "≤": "<=", "≥": ">=", "±": "+-", "█": "#", "▏": "|",
                        "µ": "u", "·": "."})


class _Encodable:
    """A text stream that never raises UnicodeEncodeError: what its encoding cannot hold
    is transliterated (or replaced with '?')."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        safe = text.translate(_ASCII).encode(self.encoding, "replace").decode(self.encoding)
        return self.stream.write(safe)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno: the stream's own
        return getattr(self.stream, name)


def _file(stream: TextIO) -> Any:
    """The stream to print on: ASCII-safe where it cannot encode Unicode, and without
    trailing spaces unless it is a terminal (where tables stay as rich draws them)."""
    out: Any = stream if _utf(stream) else _Encodable(stream)
    return out if is_terminal(stream) else Rstripped(out)


def _utf(stream: TextIO) -> bool:
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "")
    return encoding.startswith("utf")


_UNBOUNDED = 1 << 16


class _UncutConsole(Console):
    def on_broken_pipe(self) -> None:
        """rich would exit 1 (`check`'s "budget exceeded"); the CLI boundary exits 141."""
        self.quiet = True
        raise BrokenPipeError

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not kwargs and all(_own_width(o) for o in objects):
            # Printed at its own width on any wider console: skip the measuring pass, which
            # costs rich nearly as much as the rendering itself.
            needed = _UNBOUNDED
        else:
            unbounded = self.options.update_width(_UNBOUNDED)  # else rich caps it at width
            needed = measure_renderables(self, unbounded, objects).maximum if objects else 0
        if needed <= self.width:
            super().print(*objects, **kwargs)
            return
        width = self.width
        self.width = needed
        try:
            super().print(*objects, **kwargs)
        finally:
            self.width = width


def _own_width(obj: Any) -> bool:
    """Whether `obj` prints the same on every console at least as wide as it: text that
    is not justified (which pads to the console's width), tables that do not expand and
    hold only text, and groups of those."""
    obj = rich_cast(obj)
    if isinstance(obj, str):
        return True
    if isinstance(obj, Text):
        return obj.justify in (None, "default")
    if isinstance(obj, Group):
        return all(_own_width(o) for o in obj.renderables)
    if isinstance(obj, Table):
        cells = (c for col in obj.columns for c in (col.header, col.footer, *col.cells))
        return not obj.expand and obj.width is None and all(
            isinstance(c, str | Text) for c in cells)
    return False


def stdout_console(no_color: bool = False) -> Console:
    width = None
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        width = 200
    return _UncutConsole(file=_file(sys.stdout), no_color=no_color or None, highlight=False,
                         width=width, emoji=False)


def stderr_console(no_color: bool = False) -> Console:
    return Console(file=_file(sys.stderr), no_color=no_color or None, highlight=False, emoji=False)
