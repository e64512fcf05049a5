"""`--crosscheck`: fvcore, torch and cnnstat side by side, each difference explained.

The oracles are the two other tools, called directly here: fvcore's FlopCountAnalysis
(total, by_operator, unsupported_ops) and torch's FlopCounterMode. The crosscheck must
report exactly what they say, and its explanation must add up: fvcore's total = the
multiply-adds + the element-wise work it has handlers for (BN, adaptive pooling).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from cnnstat.analyzers import analyze_graph
from cnnstat.frontends import graph_from_module
from cnnstat.frontends.crosscheck import crosscheck

fvcore_nn = pytest.importorskip("fvcore.nn")


class Bottleneck(nn.Module):
    def __init__(self, c: int, mid: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None if stride == 1 else nn.Sequential(
            nn.Conv2d(c, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class ResNetLike(nn.Module):
    """A small ResNet-50 in shape: stem, max-pool, bottlenecks, global pool, fc."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Bottleneck(16, 8, 1), Bottleneck(16, 8, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


SHAPE = (3, 64, 64)


@pytest.fixture(scope="module")
def checked():
    torch.manual_seed(0)
    module = ResNetLike().eval()
    report = analyze_graph(graph_from_module(module, SHAPE).graph)
    return module, report, crosscheck(module, report)


def _fvcore(module: nn.Module):
    analysis = fvcore_nn.FlopCountAnalysis(module, (torch.zeros(1, *SHAPE),))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analysis.total(), analysis.by_operator(), analysis.unsupported_ops()


def test_totals_are_what_each_tool_reports(checked):
    """fvcore's and torch's columns are those tools' own totals, not a re-derivation."""
    module, report, check = checked
    fv_total, fv_ops, fv_unsupported = _fvcore(module)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.zeros(1, *SHAPE))
    assert check.fvcore_total == fv_total
    assert check.torch_total == counter.get_total_flops()
    assert check.fvcore_unsupported == dict(fv_unsupported)
    assert {"aten::add_", "aten::max_pool2d"} <= set(check.fvcore_unsupported)
    assert check.cnnstat_macs == report.totals.macs


def test_each_difference_is_explained_by_a_convention(checked):
    """torch = 2 x our MACs; fvcore's conv/linear = our MACs (1 per multiply-add); the rest
    of fvcore's total is BN at 2 per element (affine, eval) and 1 per input element of
    the adaptive pool, which we count as other ops."""
    _, report, check = checked
    rows = {r.operator: r for r in check.rows}
    assert check.torch_total == 2 * report.totals.macs
    assert rows["conv"].fvcore == rows["conv"].cnnstat_macs
    assert rows["conv"].torch_flops == 2 * rows["conv"].cnnstat_macs
    assert rows["linear / matmul"].fvcore == 16 * 10  # fc: 16 in x 10 out
    bn_elements = sum(r.activations for r in report.layers if r.kind == "batch_norm2d")
    assert rows["batch_norm"].fvcore == 2 * bn_elements == rows["batch_norm"].cnnstat_other_ops
    assert rows["adaptive_avg_pool2d"].fvcore == 16 * 8 * 8  # its input: 16 x 8 x 8
    assert check.fvcore_total == report.totals.macs + rows["batch_norm"].fvcore + \
        rows["adaptive_avg_pool2d"].fvcore
    assert any("agrees" in line for line in check.summary)
    assert {"relu", "add", "max_pool2d"} <= set(rows)  # work only cnnstat counts


def test_skipped_ops_are_listed(checked):
    """fvcore's silent skips (its ignore list) and the aten ops torch ran uncounted are
    named, so a user can see what each total leaves out."""
    _, _, check = checked
    assert "aten::relu_" in check.fvcore_ignored
    assert {"native_batch_norm", "max_pool2d_with_indices", "add_"} <= set(check.torch_uncounted)


def test_json_form_is_versioned(checked):
    data = checked[2].to_dict()
    assert data["schema"] == "cnnstat.crosscheck/1"
    assert data["totals"]["cnnstat_flops"] == 2 * data["totals"]["cnnstat_macs"]
    assert json.loads(json.dumps(data)) == data


MODULE_FILE = Path(__file__).resolve()


def test_cli_crosscheck_on_a_module_reference():
    """`cnnstat flops FILE:Class --crosscheck` prints the three totals with the reasons;
    with --json they sit in one object under `crosscheck`."""
    from cnnstat.cli import app

    runner = CliRunner()
    ref = f"{MODULE_FILE}:ResNetLike"
    table = runner.invoke(app, ["flops", ref, "--crosscheck", "-i", "3x64x64"])
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    for needle in ("fvcore", "torch FLOPs", "cnnstat MACs", "1 per multiply-add",
                   "fvcore skipped, reported as unsupported: add_ x2, max_pool2d x1"):
        assert needle in text
    result = runner.invoke(app, ["flops", ref, "--crosscheck", "-i", "3x64x64", "--json"])
    data = json.loads(result.stdout)
    assert data["crosscheck"]["totals"]["torch_flops"] == 2 * data["totals"]["macs"]


SPEC = """
name: tiny
input: [3, 32, 32]
layers:
  - {conv: 8, k: 3, p: 1, bias: false}
  - bn
  - relu
  - {maxpool: 2}
  - gap
  - flatten
  - {fc: 4}
"""


def test_cli_crosscheck_on_a_spec(tmp_path):
    """A spec is built (weights on meta for torch, materialised for fvcore) and checked the
    same way: torch = 2 x MACs, fvcore = MACs + BN + adaptive pool."""
    from cnnstat.cli import app

    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(app, ["flops", str(spec), "--crosscheck", "--json"])
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)["crosscheck"]["totals"]
    # conv 32*32*8*27 = 221184, fc 8*4 = 32; BN 2 x 8*32*32 = 16384; gap input 8*16*16
    assert totals["torch_flops"] == 2 * (221184 + 32)
    assert totals["fvcore"] == 221184 + 32 + 16384 + 2048


def test_crosscheck_json_carries_what_the_plain_json_does(tmp_path):
    """--crosscheck adds a member; the notes, min_input and memory the command adds to its
    report stay (they were dropped once: the crosscheck JSON was the bare report)."""
    from cnnstat.cli import app

    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    args = ["summary", str(spec), "--min-input", "--json"]
    plain = json.loads(CliRunner().invoke(app, args).stdout)
    result = CliRunner().invoke(app, [*args, "--crosscheck"])
    assert result.exit_code == 0, result.output
    checked = json.loads(result.stdout)
    assert {"notes", "min_input", "memory"} <= plain.keys()
    assert {k: v for k, v in checked.items() if k != "crosscheck"} == plain


def test_crosscheck_refuses_a_sweep():
    from cnnstat.cli import app

    result = CliRunner().invoke(app, ["flops", "vgg11", "--crosscheck", "--input", "64,96"])
    assert result.exit_code == 2
    assert "--crosscheck takes one input" in result.stderr


@pytest.mark.oracle
@pytest.mark.slow
def test_resnet50_crosscheck():
    """torchvision's resnet50: cnnstat's MACs are the published 4.089 GMACs (torchvision
    ResNet50_Weights.IMAGENET1K_V1 meta _ops), torch counts twice that, fvcore that plus BN
    and the global pool."""
    pytest.importorskip("torchvision")
    from cnnstat.frontends import resolve_reference

    resolved = resolve_reference("torchvision:resnet50")
    report = analyze_graph(resolved.graph)
    check = crosscheck(resolved.module, report)
    assert round(report.totals.macs / 1e9, 3) == 4.089 and report.totals.params == 25557032
    assert check.torch_total == 2 * report.totals.macs
    rows = {r.operator: r for r in check.rows}
    assert check.fvcore_total == report.totals.macs + rows["batch_norm"].fvcore + \
        rows["adaptive_avg_pool2d"].fvcore
    # 2048 x 7 x 7 inputs to the global pool
    assert rows["adaptive_avg_pool2d"].fvcore == 2048 * 49


def test_functional_model_rows():
    """Functional BN-free code: only conv/linear rows carry fvcore counts; F.relu appears
    among fvcore's silent skips."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return F.relu(self.conv(x))

    module = Net().eval()
    report = analyze_graph(graph_from_module(module, (3, 10, 10)).graph)
    check = crosscheck(module, report)
    assert check.fvcore_total == report.totals.macs == 8 * 8 * 4 * 27
    assert "aten::relu" in check.fvcore_ignored
