"""One bad spec per error class: exit code 2, a located one-line error, no traceback.

Each file in tests/bad_specs/ carries its expectation in its first line:
`# expect: LINE:COL: message`. The test asserts the CLI prints
`<path>:LINE:COL: error: ...message...` on stderr, nothing on stdout, and exits 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnstat.cli import app
from cnnstat.errors import CnnstatError
from cnnstat.spec import load_spec

BAD = sorted((Path(__file__).parent / "bad_specs").glob("*.yaml"))


def expectation(path: Path) -> tuple[str, str]:
    header = path.read_text().splitlines()[0]
    assert header.startswith("# expect: "), f"{path.name} lacks its expectation header"
    line, col, message = header.removeprefix("# expect: ").split(":", 2)
    return f"{line}:{col}", message.strip()


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_spec_through_cli(path: Path) -> None:
    where, message = expectation(path)
    result = CliRunner().invoke(app, ["params", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    err = result.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"{path}:{where}: error: "), err
    assert message in err, err


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_spec_through_library(path: Path) -> None:
    """The library raises a located CnnstatError (never prints, never exits)."""
    from cnnstat.api import analyze

    where, _ = expectation(path)
    with pytest.raises(CnnstatError) as info:
        analyze(load_spec(path))
    assert str(info.value).startswith(f"{path}:{where}:")


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    result = CliRunner().invoke(app, ["params", str(empty)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{empty}:1:1: error: the file is empty"


def test_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\nlayers: [relu]\n")
    result = CliRunner().invoke(app, ["params", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{bad}:1: error: file is not UTF-8")


def test_directory_and_missing_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["params", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.stderr
    result = CliRunner().invoke(app, ["params", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "no such spec file" in result.stderr
