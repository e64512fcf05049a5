"""Text streams without rich: what a pipe or a file receives (imported by the entry
point for every command, so nothing here may import more than the standard library)."""

from __future__ import annotations

import sys
from typing import Any, TextIO


class Rstripped:
    """A text stream that drops the spaces ending each line: a table padded to its width
    is noise in a file, a diff or a CI log. Spaces at the end of one write are held back
    until the next write shows whether the line goes on."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._held = ""

    def write(self, text: str) -> int:
        if not self._held and " \n" not in text and not text.endswith(" "):
            return self.stream.write(text)  # JSON, CSV: nothing to strip, no copy
        lines = (self._held + text).split("\n")
        last = lines[-1]
        kept = last.rstrip(" ")
        self._held = last[len(kept):]
        self.stream.write("\n".join([line.rstrip(" ") for line in lines[:-1]] + [kept]))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding: the stream's own
        return getattr(self.stream, name)


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def rstripped_stdout() -> None:
    """Everything cnnstat writes to a pipe or a file, help included, without trailing
    spaces; a terminal gets what rich draws."""
    if not is_terminal(sys.stdout) and not isinstance(sys.stdout, Rstripped):
        sys.stdout = Rstripped(sys.stdout)  # type: ignore[assignment]
