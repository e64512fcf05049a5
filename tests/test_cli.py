"""The CLI's contracts: formats, exit codes (docs/exit-codes.md), stdout/stderr separation."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from cnnstat import __version__
from cnnstat.analyzers import ops
from cnnstat.cli import app
from cnnstat.ir import layers as L

# torchvision VGG16_Weights.IMAGENET1K_V1 metadata (reference §1): num_params, _ops GMACs.
VGG16_PARAMS = 138_357_544
VGG16_GMACS = 15.47


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_json_is_the_only_stdout_and_exact() -> None:
    result = run("summary", "vgg16", "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "cnnstat.report/1"
    assert report["totals"]["params"] == VGG16_PARAMS
    assert round(report["totals"]["macs"] / 1e9, 2) == VGG16_GMACS
    assert report["totals"]["flops"] == 2 * report["totals"]["macs"]
    assert report["outputs"][0]["shape"] == [1, 1000]
    assert report["input_shape"] == [1, 3, 224, 224]
    assert sum(layer["params"] for layer in report["layers"]) == report["totals"]["params"]


def test_json_flag_equals_format_json() -> None:
    assert run("params", "vgg16", "--json").stdout == run("params", "vgg16", "-f", "json").stdout


def test_alias_note_goes_to_stderr() -> None:
    result = run("params", "vgg", "--json")
    assert result.exit_code == 0
    json.loads(result.stdout)  # nothing but JSON on stdout
    assert "'vgg' -> zoo spec 'vgg16'" in result.stderr


def test_csv_parses_with_exact_ints() -> None:
    result = run("flops", "vgg16", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sum(int(r["params"]) for r in rows) == VGG16_PARAMS
    assert all(int(r["flops"]) == 2 * int(r["macs"]) for r in rows)


def test_markdown_is_a_table() -> None:
    lines = run("params", "vgg16", "--format", "markdown").stdout.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len({line.count("|") for line in table}) == 1  # every row has the same columns
    assert set(table[1].replace("|", "").replace(":", "")) == {"-"}


@pytest.mark.parametrize("view", ["params", "flops", "shapes", "summary"])
def test_table_views_render_totals(view: str) -> None:
    result = run(view, "vgg16", "--no-color")
    assert result.exit_code == 0, result.stderr
    assert "138,357,544" in result.stdout  # the headline carries the exact total
    # the caption states the convention (it may wrap anywhere)
    assert "FLOPs = 2 x MACs" in " ".join(result.stdout.split())
    assert "\x1b[" not in result.stdout


def test_depth_folds_rows_and_keeps_totals() -> None:
    rows = list(csv.DictReader(io.StringIO(run("params", "vgg16", "-f", "csv", "-d", "2").stdout)))
    assert [r["name"] for r in rows][:5] == [f"features.block{i}" for i in range(1, 6)]
    assert sum(int(r["params"]) for r in rows) == VGG16_PARAMS


def test_input_and_batch() -> None:
    report = json.loads(run("shapes", "vgg16", "--input", "3x32x32", "-b", "4", "--json").stdout)
    assert report["input_shape"] == [4, 3, 32, 32]
    # torchvision's VGG: 32 px (its published min_size) gives a 1x1 map before the 7x7 pool.
    pool5 = next(layer for layer in report["layers"] if layer["name"] == "features.block5.pool")
    assert pool5["output_shape"] == [4, 512, 1, 1]


@pytest.mark.parametrize("bad", ["3x0x9", "axb", "1x2x3x4x5"])
def test_bad_input_exits_2(bad: str) -> None:
    result = run("params", "vgg16", "--input", bad)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


def test_input_too_small_is_located() -> None:
    result = run("params", "vgg16", "--input", "16")
    assert result.exit_code == 2
    assert "specs/vgg16.yaml:" in result.stderr and "output size would be 0x0" in result.stderr


def test_unknown_model_suggests() -> None:
    result = run("params", "vgg61")
    assert result.exit_code == 2
    assert "did you mean" in result.stderr and "'vgg16'" in result.stderr
    assert result.stdout == ""


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"cnnstat {__version__}"


def test_strict_exits_3_on_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    """An analyzer without a handler for a kind reports it; --strict turns that into exit 3."""
    monkeypatch.delitem(ops.OPS._traits, L.POINTWISE)  # ReLU's ops come from its trait
    monkeypatch.delitem(ops.OPS._handlers, L.ReLU, raising=False)  # and its cached lookup
    lenient = run("flops", "vgg16", "--json")
    assert lenient.exit_code == 0
    report = json.loads(lenient.stdout)
    assert {u["kind"] for u in report["unsupported"]} == {"relu"}
    relu = next(layer for layer in report["layers"] if layer["kind"] == "relu")
    assert relu["macs"] is None and relu["other_ops"] is None  # not a silent zero
    assert "unsupported" in lenient.stderr
    strict = run("flops", "vgg16", "--strict")
    assert strict.exit_code == 3


def test_internal_error_exits_70_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args):
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(ops.OPS._handlers, L.ReLU, broken)
    result = run("flops", "vgg16")
    assert result.exit_code == 70
    assert "Traceback" not in result.stderr
    assert "internal error: ZeroDivisionError: boom" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    debug = run("--debug", "flops", "vgg16")
    assert debug.exit_code == 70 and "Traceback" in debug.stderr


def test_bad_option_is_usage_error() -> None:
    assert run("params", "vgg16", "--format", "xml").exit_code == 2


@pytest.mark.parametrize("argv", [["--help"], ["params", "--help"], ["params", "densenet121"],
                                  ["zoo"], ["export", "densenet121"]])
def test_a_closed_pipe_exits_141_not_1(argv) -> None:
    """`cnnstat ... | head`: the reader goes away. Exit 1 would read as "budget
    exceeded" to a CI script; shell tools exit 128 + SIGPIPE. rich and click both chose 1."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "cnnstat", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first write
    stderr = proc.stderr.read().decode()
    assert proc.wait() == 141, stderr
    assert "Traceback" not in stderr
