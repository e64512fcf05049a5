"""The plain-text table writer against rich itself: same characters, or it falls back.

cnnstat writes zoo/check tables to a pipe without rich (report/text_table.py); rich is the
oracle for what those bytes must be. Each test names the layout mistake it would catch.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.measure import measure_renderables

from cnnstat.report.console import _UncutConsole
from cnnstat.report.text_table import Styled, TextTable, plain_stream


def rich_plain(table: TextTable, width: int = 200) -> str:
    """rich alone, on a pipe (no colour), printing the rich twin of `table` on a console
    `width` wide, widened to the table's measured width if narrower (as cnnstat's stdout
    console promises)."""
    console = Console(file=io.StringIO(), width=1 << 16, highlight=False, emoji=False)
    needed = measure_renderables(console, console.options, [table]).maximum
    console.width = max(width, needed)
    console.print(table)
    return console.file.getvalue()


def sample(title: str, caption: str, rows: list[tuple[str, ...]], sections=(),
           summary: str | None = None) -> TextTable:
    t = TextTable(title=title, caption=caption)
    for i, right in enumerate((False, True, False)):
        t.add_column(f"C{i}", right=right)
    for i, row in enumerate(rows):
        t.add_row(*row[:2], Styled(row[2], "bold red"))
        if i in sections:
            t.add_section()
    if summary is not None:
        t.summary = Styled(summary, "bold green")
    return t


def test_sections_caption_and_summary_match_rich() -> None:
    """Catches: a blank line after the last section, a caption not wrapped to the table's
    width, or a summary padded like a caption."""
    t = sample("cnnstat check budgets.yaml", "headroom: how far inside the limit (negative: "
               "over it) and some more words to wrap", [("a", "1", "✓ PASS"), ("", "22", "x"),
                                                        ("bb[c.*]", "333", "✗ FAIL")],
               sections={1, 2}, summary="3 budgets in 2 models: 1 failed -> FAIL (exit 1)")
    assert t.plain_ok()
    assert t.plain() == rich_plain(t)


def test_long_title_is_folded_like_rich() -> None:
    """Catches: a title word longer than the table (a long budget-file path) printed past
    the table's width instead of cut into table-wide pieces."""
    t = sample("cnnstat check /a/very/long/path/" + "x" * 80 + "/budgets.yaml end", "",
               [("m", "1", "ok")])
    assert t.plain() == rich_plain(t)


def test_wide_or_control_characters_fall_back_to_rich() -> None:
    """Catches: a CJK name (two cells wide in a terminal) or a tab measured as one cell."""
    assert not sample("t", "", [("网络", "1", "x")]).plain_ok()
    assert not sample("t", "", [("a\tb", "1", "x")]).plain_ok()


def test_only_a_utf8_pipe_is_plain(monkeypatch) -> None:
    """Catches: plain text (no colour) on a terminal, or Unicode rules on an ASCII pipe,
    where rich draws ASCII boxes."""

    class Stream(io.StringIO):
        def __init__(self, tty: bool, encoding: str):
            super().__init__()
            self.tty, self._encoding = tty, encoding

        @property
        def encoding(self) -> str:
            return self._encoding

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    assert plain_stream(Stream(False, "utf-8"))
    assert not plain_stream(Stream(True, "utf-8"))
    assert not plain_stream(Stream(False, "ascii"))
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not plain_stream(Stream(False, "utf-8"))


_TEXT = st.text(st.sampled_from("abcXYZ019 .,:-_[]/()%+*✓✗×…"), max_size=30)


@settings(max_examples=60, deadline=None)
@given(title=_TEXT, caption=st.text(st.sampled_from("ab c  de"), max_size=120),
       rows=st.lists(st.tuples(_TEXT, _TEXT, _TEXT), max_size=6),
       sections=st.sets(st.integers(0, 5)), summary=st.none() | _TEXT,
       width=st.integers(10, 200))
def test_any_table_matches_rich(title, caption, rows, sections, summary, width) -> None:
    """Catches any difference from rich in padding, justification, wrapping or section
    lines, at any console width (the console never squeezes a table)."""
    t = sample(title, caption, rows, sections, summary)
    assert t.plain() == rich_plain(t, width)


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_cli_tables_plain_equal_rich_without_escape_codes(tmp_path, monkeypatch) -> None:
    """Catches: `cnnstat zoo` / `cnnstat check` on a pipe (plain writer) printing other
    characters than on a terminal (rich, here forced with FORCE_COLOR) once rich's colour
    codes are removed."""
    from typer.testing import CliRunner

    from cnnstat.cli import app

    budgets = tmp_path / "b.yaml"
    budgets.write_text("models:\n  - {model: vgg16, max_params: 100M, min_rf: 200,\n"
                       "     layers: {'classifier.*': {max_params: 50M}}}\n"
                       "  - {model: nosuchmodel, max_params: 1M}\n")
    for argv in (["zoo"], ["zoo", "--family", "resnet"], ["check", str(budgets)]):
        monkeypatch.delenv("FORCE_COLOR", raising=False)
        plain = CliRunner().invoke(app, argv, env={"COLUMNS": None})
        coloured = CliRunner().invoke(app, argv, env={"FORCE_COLOR": "1", "COLUMNS": None})
        assert "\x1b[" in coloured.stdout and "\x1b[" not in plain.stdout
        # Neither is a terminal, so trailing spaces are dropped (where colour codes do not
        # follow them): compare line by line without them.
        assert [line.rstrip(" ") for line in _strip_ansi(coloured.stdout).split("\n")] \
            == plain.stdout.split("\n")


def test_unmeasured_print_equals_rich_at_the_measured_width() -> None:
    """Catches: the stdout console's unmeasured fast path (printing at a huge width) padding
    or wrapping anything differently from rich at exactly the width rich measures."""
    import cnnstat
    from cnnstat.report.tables import render

    group = render(cnnstat.analyze("resnet50"), "summary")
    oracle = Console(file=io.StringIO(), width=1 << 16, highlight=False, emoji=False)
    oracle.width = measure_renderables(oracle, oracle.options, [group]).maximum
    oracle.print(group)
    ours = _UncutConsole(file=io.StringIO(), width=80, highlight=False, emoji=False)
    ours.print(group)
    assert ours.file.getvalue() == oracle.file.getvalue()


def test_footer_row_matches_rich() -> None:
    """Catches: the totals row of a per-layer table without the blank foot rule above it,
    or a footer wider than every cell not widening its column."""
    t = sample("m: parameters", "caption", [("conv1", "1.00", "3x3x3x64"), ("fc", "22", "")])
    t.columns[0] = type(t.columns[0])("C0", False, "Total")
    t.columns[1] = type(t.columns[1])("C1", True, "123456789.00")
    assert t.plain() == rich_plain(t)


_CELL = st.text(st.sampled_from("abcXYZ019 .,:;-_[]/()%+*×…"), max_size=20)


_WORDS = _CELL.filter(lambda s: s.strip() != "")


@settings(max_examples=60, deadline=None)
@given(first=st.tuples(_WORDS, _WORDS, _WORDS),
       rows=st.lists(st.tuples(_CELL, _CELL, _CELL), max_size=8), width=st.integers(10, 200))
def test_any_grid_matches_rich(first, rows, width) -> None:
    """Catches: the headline grid padded at its edges, more or fewer than two blanks between
    columns, or a value justified the wrong way, at any console width. (Every column has
    words, as every headline's do: rich measures an all-blank column narrower than it
    draws it.)"""
    from cnnstat.report.text_table import TextGrid

    grid = TextGrid(right=(False, True, False), rows=[first, *rows])
    assert grid.plain() == rich_plain(grid, width)


@pytest.mark.parametrize("name", ["lenet5", "vgg16", "googlenet", "resnet50",
                                  "mobilenet_v3_large", "faster_rcnn"])
def test_model_tables_plain_equal_rich(name) -> None:
    """Catches: a per-layer table or headline (params, flops, shapes, summary; folded and
    whole; a plain chain, branches, gated fields, per-region counts) whose plain text
    differs from what rich prints."""
    import cnnstat
    from cnnstat.report.tables import render

    report = cnnstat.analyze(name)
    for view in ("params", "flops", "shapes", "summary"):
        for depth in (None, "all", 1):
            doc = render(report, view, depth)
            assert doc.plain_ok(), (view, depth)
            assert doc.plain() == rich_plain(doc), (view, depth)
