"""Help as a new user reads it, through a real pipe (`cnnstat --help | less`): no line
ends in a space, no text in square brackets is eaten by rich's markup, and the command
list shows one short sentence per command."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _piped(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "cnnstat", *args], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("args", [["--help"], ["params", "--help"], ["rf", "--help"],
                                  ["summary", "resnet50"]], ids=" ".join)
def test_piped_output_has_no_trailing_spaces(args: list[str]):
    out = _piped(*args)
    assert out.strip()
    assert [line for line in out.splitlines() if line.endswith(" ")] == []


def test_bracketed_help_text_survives_rich_markup():
    """rich reads `[plot]` and `[default: ...]` as style tags and drops them."""
    assert "'cnnstat[plot]'" in _piped("compare", "--help")
    params = " ".join(_piped("params", "--help").split())
    assert "the spec's input" in params
    assert "60 rows folds" in params


def test_the_command_list_shows_only_each_first_paragraph():
    top = _piped("--help")
    assert "Receptive field per layer" in top
    assert "A field depends on neither" not in top  # rf's second paragraph
