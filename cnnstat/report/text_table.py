"""Tables as plain data: written as text to a pipe, handed to rich on a terminal.

`cnnstat zoo`, `cnnstat check` and the per-layer tables of `params`, `flops`, `shapes`
and `summary` print dozens of rows. Where rich would write no escape
codes (a UTF-8 pipe or file), importing rich and laying out every cell through it cost
more than the rest of the command, so `plain()` writes the very characters rich would:
its SIMPLE_HEAD box at the table's natural width (the stdout console never squeezes a
table, see console.py), title and caption word-wrapped to that width. On a terminal, or
when a cell holds text whose width rich measures differently, `__rich__` builds the
equivalent rich table instead. Nothing here imports rich until it is needed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

# Characters beyond printable ASCII that our tables use, each one terminal cell wide.
_NARROW = frozenset("✓✗×…—–→≤≥±µ·")
_WORD = re.compile(r"\s*\S+\s*")  # a word and the blanks around it, as rich splits lines


class Styled(NamedTuple):
    """A cell or line with a rich style (colour on terminals only; the words carry the
    meaning)."""

    text: str
    style: str


Cell = str | Styled


@dataclass(frozen=True, slots=True)
class TextColumn:
    header: str
    right: bool = False  # right-justified (numbers)
    footer: str | None = None  # a totals row under the table when any column has one


@dataclass(slots=True)
class TextTable:
    """Title, header, rows (with optional blank lines between sections), caption, and an
    optional summary line under the table."""

    title: str
    caption: str = ""
    columns: list[TextColumn] = field(default_factory=list)
    rows: list[tuple[Cell, ...]] = field(default_factory=list)
    section_ends: set[int] = field(default_factory=set)  # rows followed by a blank line
    summary: Styled | None = None

    def add_column(self, header: str, *, right: bool = False, footer: str | None = None) -> None:
        self.columns.append(TextColumn(header, right, footer))

    def add_row(self, *cells: Cell) -> None:
        self.rows.append(cells)

    def add_section(self) -> None:
        if self.rows:
            self.section_ends.add(len(self.rows) - 1)

    def plain_ok(self) -> bool:
        """Every text's width is its length (rich would measure it the same)."""
        texts = [self.title, self.caption, *(c.header for c in self.columns)]
        texts += [c.footer for c in self.columns if c.footer]
        texts += [_text(cell) for row in self.rows for cell in row]
        if self.summary is not None:
            texts.append(self.summary.text)
        return bool(self.columns) and all(_narrow(t) for t in texts)

    def plain(self) -> str:
        """The table as rich prints it without colour, at its natural width."""
        rows = [[_text(cell) for cell in row] for row in self.rows]
        footers = self._footers()
        widths = [max([len(col.header)] + [len(row[i]) for row in rows]
                      + ([len(footers[i])] if footers else []))
                  for i, col in enumerate(self.columns)]
        total = sum(widths) + 3 * len(widths) + 1  # one blank each side of a cell, 1 between
        blank = " " * total
        lines = _wrap(self.title, total) + [blank, self._line(
            [c.header for c in self.columns], widths), " " + "─" * (total - 2) + " "]
        for i, row in enumerate(rows):
            lines.append(self._line(row, widths))
            if i in self.section_ends and i != len(rows) - 1:
                lines.append(blank)
        if footers:  # SIMPLE_HEAD's foot rule is blank
            lines += [blank, self._line(footers, widths)]
        lines += [blank] + _wrap(self.caption, total)
        if self.summary is not None:
            lines.append(self.summary.text)
        return "\n".join(lines) + "\n"

    def _footers(self) -> list[str] | None:
        if all(col.footer is None for col in self.columns):
            return None
        return [col.footer or "" for col in self.columns]

    def _line(self, cells: list[str], widths: list[int]) -> str:
        # rich measures a cell with its trailing blanks but justifies it without them
        shown = [cell.rstrip().rjust(w) if col.right else cell.rstrip().ljust(w)
                 for cell, w, col in zip(cells, widths, self.columns, strict=True)]
        return "  " + "   ".join(shown) + "  "

    def __rich__(self) -> Any:
        from rich import box
        from rich.console import Group
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, title=_rich_text(Styled(self.title, "table.title")),
                      title_justify="left", caption_justify="left",
                      caption=_rich_text(Styled(self.caption, "table.caption")) or None,
                      show_footer=self._footers() is not None)
        for col in self.columns:
            table.add_column(_rich_text(col.header), justify="right" if col.right else "left",
                             footer=_rich_text(col.footer or ""))
        for i, row in enumerate(self.rows):
            table.add_row(*(_rich_text(cell) for cell in row), end_section=i in self.section_ends)
        return table if self.summary is None else Group(table, _rich_text(self.summary))


@dataclass(slots=True)
class TextGrid:
    """Rows of label, value and words without rules or headers (rich's `Table.grid` with
    two blanks between columns): the totals under a per-layer table. `right`: which
    columns are right-justified; the first column is bold on a terminal."""

    right: tuple[bool, ...]
    rows: list[tuple[Cell, ...]] = field(default_factory=list)

    def add_row(self, *cells: Cell) -> None:
        self.rows.append(cells)

    def plain_ok(self) -> bool:
        return all(_narrow(_text(cell)) for row in self.rows for cell in row)

    def plain(self) -> str:
        rows = [[_text(cell) for cell in row] for row in self.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.right))] if rows else []
        if widths:  # rich keeps one cell for the last column even when all of it is empty
            widths[-1] = max(widths[-1], 1)
        # measured with trailing blanks, justified without them (as in TextTable._line)
        return "".join("  ".join(cell.rstrip().rjust(w) if right else cell.rstrip().ljust(w)
                                 for cell, w, right in zip(row, widths, self.right, strict=True))
                       + "\n" for row in rows)

    def __rich__(self) -> Any:
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        for i, right in enumerate(self.right):
            grid.add_column(justify="right" if right else "left", style="bold" if i == 0 else "")
        for row in self.rows:
            grid.add_row(*(_rich_text(cell) for cell in row))
        return grid


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line of words, never wrapped (the console prints a line at its own width)."""

    text: Cell

    def plain_ok(self) -> bool:
        return _narrow(_text(self.text))

    def plain(self) -> str:
        return _text(self.text) + "\n"

    def __rich__(self) -> Any:
        return _rich_text(self.text)


@dataclass(frozen=True, slots=True)
class TextGroup:
    """Tables and lines printed one under the other."""

    parts: tuple[TextTable | TextGrid | TextLine, ...]

    def plain_ok(self) -> bool:
        return all(part.plain_ok() for part in self.parts)

    def plain(self) -> str:
        return "".join(part.plain() for part in self.parts)

    def __rich__(self) -> Any:
        from rich.console import Group

        return Group(*(part.__rich__() for part in self.parts))


PLAIN = (TextTable, TextGrid, TextLine, TextGroup)  # what Stdout may write without rich


def _text(cell: Cell) -> str:
    return cell.text if isinstance(cell, Styled) else cell


def _rich_text(cell: Cell) -> Any:
    """Text, never a str: a glob such as [classifier.*] must not be read as rich markup."""
    from rich.text import Text

    return Text(cell.text, style=cell.style) if isinstance(cell, Styled) else Text(cell)


def _narrow(text: str) -> bool:
    if text.isascii():
        return text.isprintable()
    return all(ch in _NARROW or (ch.isascii() and ch.isprintable()) for ch in text)


def _wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap, as rich wraps a title or caption: a word that does not fit starts
    a new line, a word longer than a line is cut into line-long pieces; every line is
    padded to the width (left-justified)."""
    if not text:
        return []
    lines, line = [], ""
    for word in _WORD.findall(text):
        word_len = len(word.rstrip())
        if len(line) + word_len <= width:
            line += word
        elif word_len > width:
            pieces = [word[i:i + width] for i in range(0, len(word), width)]
            lines += ([line] if line else []) + pieces[:-1]
            line = pieces[-1]
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return [ln.rstrip().ljust(width) for ln in lines]


def plain_stream(stream: TextIO) -> bool:
    """Whether rich would write `stream` as plain text: UTF-8 (else it draws ASCII boxes)
    and not a terminal by rich's own test (TTY_COMPATIBLE, FORCE_COLOR, then isatty)."""
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "")
    if not encoding.startswith("utf"):
        return False
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "0"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color == ""
    isatty = getattr(stream, "isatty", None)
    try:
        return isatty is None or not isatty()
    except ValueError:  # a closed stream: rich calls it no terminal
        return True
