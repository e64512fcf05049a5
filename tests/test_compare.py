"""`cnnstat compare`: published numbers, a golden table with invariants, formats, plots,
and a failing model that does not stop the others."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cnnstat.cli import app
from cnnstat.commands.compare import _column
from cnnstat.report.compare_render import compare_table

GOLDENS = Path(__file__).parent / "goldens"
# torchvision weights metadata (reference §1): num_params and _ops (GMACs).
PUBLISHED = {"vgg16": (138_357_544, 15.47), "googlenet": (6_624_904, 1.498)}


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_vgg_vs_inception_json() -> None:
    result = run("compare", "vgg", "inception", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == "cnnstat.compare/1" and data["errors"] == []
    by_name = {m["model"]: m for m in data["models"]}
    assert list(by_name) == ["vgg16", "googlenet"]
    for name, (params, gmacs) in PUBLISHED.items():
        assert by_name[name]["totals"]["params"] == params
        assert round(by_name[name]["totals"]["macs"] / 1e9, len(str(gmacs).split(".")[1])) == gmacs
    ratio = by_name["vgg16"]["totals"]["params"] / by_name["googlenet"]["totals"]["params"]
    assert round(ratio, 1) == 20.9


def _render(width: int = 140) -> str:
    columns = [_column(m, None, 1, "fp32") for m in ("vgg16", "googlenet")]
    console = Console(width=width, no_color=True, file=io.StringIO(), color_system=None)
    console.print(compare_table(columns, ascii_only=True))
    return console.file.getvalue()


def test_golden_table_and_its_invariants() -> None:
    text = _render()
    golden = GOLDENS / "compare_vgg16_googlenet.txt"
    if os.environ.get("CNNSTAT_UPDATE_GOLDENS"):
        golden.write_text(text)
    assert text == golden.read_text()
    # Invariants on the rendered numbers themselves: each ratio is the quotient of the
    # two values printed in the same row (to the printed precision).
    units = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "MiB": 2**20, "KiB": 2**10, "": 1,
             "px": 1}
    checked = 0
    for line in text.splitlines():
        match = re.search(r"([\d.,]+) (\w*)[ #]*\s+([\d.,]+) (\w*)[ #]*\s+"
                          r"([\d.]+)x (lower|higher)", line)
        if not match:
            continue
        a = float(match[1].replace(",", "")) * units[match[2]]
        b = float(match[3].replace(",", "")) * units[match[4]]
        shown = float(match[5])
        expected = a / b if match[6] == "lower" else b / a
        assert abs(shown - expected) / expected < 0.01, line
        checked += 1
    assert checked >= 5


def test_markdown_and_csv_parse() -> None:
    md = run("compare", "vgg16", "googlenet", "-f", "markdown").stdout
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in table}) == 1
    rows = list(csv.reader(io.StringIO(run("compare", "vgg16", "googlenet", "-f", "csv").stdout)))
    assert rows[0] == ["metric", "vgg16", "googlenet"]
    params = next(r for r in rows if r[0] == "params")
    assert [int(v) for v in params[1:]] == [138_357_544, 6_624_904]


def test_per_stage_sums_to_totals() -> None:
    from cnnstat.analyzers.compare import stage_costs

    column = _column("resnet50", None, 1, "fp32")
    stages = stage_costs(column.report)
    assert sum(p for p, _ in stages.values()) == column.report.totals.params
    assert sum(m for _, m in stages.values()) == column.report.totals.macs
    assert list(stages)[:3] == ["/2", "/4", "/8"]


def test_one_bad_model_does_not_stop_the_others(tmp_path: Path) -> None:
    result = run("compare", "vgg16", "nosuchnet", "googlenet", "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert [m["model"] for m in data["models"]] == ["vgg16", "googlenet"]
    assert data["errors"][0]["model"] == "nosuchnet"
    assert "unknown model 'nosuchnet'" in result.stderr


def test_input_too_small_for_one_model() -> None:
    result = run("compare", "resnet50", "vgg16", "--input", "16")
    assert result.exit_code == 2
    assert "vgg16 (failed)" in result.stdout and "output size would be" in result.stderr


def test_family_expands_and_sort() -> None:
    data = json.loads(run("compare", "--family", "resnet", "--sort", "params", "--json").stdout)
    names = [m["model"] for m in data["models"]]
    assert names == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


@pytest.mark.oracle
def test_plot_writes_png_and_never_overwrites(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "cmp.png"
    assert run("compare", "vgg16", "googlenet", "--plot", str(target)).exit_code == 0
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
    again = run("compare", "vgg16", "--plot", str(target))
    assert again.exit_code == 2 and "--force" in again.stderr
    assert target.read_bytes() == data
    assert run("compare", "vgg16", "--plot", str(target), "--force").exit_code == 0
    assert list(tmp_path.iterdir()) == [target]  # no temp files left behind


def test_module_reference_is_traced_at_the_compared_input(tmp_path: Path) -> None:
    """A torch module beside a spec: traced at --input, counted as torch counts it."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    source = tmp_path / "tiny_net.py"
    source.write_text(
        "import torch.nn as nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))\n")
    result = run("compare", f"{source}:make", "vgg16", "--input", "64", "--json")
    assert result.exit_code == 0, result.stderr
    ours = json.loads(result.stdout)["models"][0]
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                 torch.nn.Linear(8, 10))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.zeros(1, 3, 64, 64))
    assert ours["input_shape"] == [1, 3, 64, 64]
    assert ours["totals"]["macs"] == counter.get_total_flops() // 2
    assert ours["totals"]["params"] == sum(p.numel() for p in module.parameters())


def test_time_adds_latency_and_throughput_rows() -> None:
    """--time builds and times each model; throughput follows from the median latency."""
    result = run("compare", "lenet5", "--time", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)["models"][0]["metrics"]
    assert metrics["latency_ms"] > 0
    assert abs(metrics["images_per_s"] - 1000 / metrics["latency_ms"]) / metrics["images_per_s"] \
        < 1e-6
    assert run("compare", "lenet5", "--time", "--device", "cuda").exit_code in (0, 4)


def test_region_rows_tell_where_detection_cost_sits() -> None:
    """R-CNN runs everything once per region; Fast R-CNN runs only its head per region:
    per-image MACs = backbone once + regions x per-region head."""
    data = json.loads(run("compare", "rcnn", "fast_rcnn", "vgg16", "--json").stdout)
    by_name = {m["model"]: m for m in data["models"]}
    rcnn, fast = by_name["rcnn"], by_name["fast_rcnn"]
    assert rcnn["metrics"]["regions"] == fast["metrics"]["regions"] == 2000
    assert rcnn["metrics"]["region_macs"] == rcnn["totals"]["macs"]
    head = [layer for layer in fast["layers"] if layer.get("regions", 1) > 1]
    assert fast["metrics"]["region_macs"] == sum(layer["macs"] for layer in head)
    assert all(layer["macs"] % 2000 == 0 for layer in head)  # R identical regions
    assert by_name["vgg16"]["metrics"]["regions"] is None  # no per-region part
