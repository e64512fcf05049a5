"""1x1-reduction savings and kernel factorization (issue 5; docs/savings.md).

Oracles, none of them our own output: arithmetic done by hand in the comments; the VGG
paper's stack argument (Simonyan & Zisserman, arXiv:1409.1556, Sec. 2.3: three 3x3 convs
on C channels have 27C^2 weights against 49C^2 for one 7x7); torchvision's published
num_params / _ops (shared/reference/published-numbers.md §1); and torch itself
(parameters(), FlopCounterMode / 2) on modules written by hand in this file - not through
cnnstat's builder - both as the zoo model and as its variant without 1x1 reductions.
"""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from cnnstat.analyzers.savings import (
    analyze_savings,
    as_ratio,
    savings_totals,
    suggest_reductions,
)
from cnnstat.cli import app
from cnnstat.errors import UsageError
from cnnstat.ir import Graph
from cnnstat.resolver import resolve, zoo_names
from cnnstat.spec.loader import build_graph
from cnnstat.spec.yaml_tree import parse


def spec(text: str) -> Graph:
    return build_graph(parse(text, "<test>"), default_name="t", source=None)


def zoo(name: str) -> Graph:
    if name not in zoo_names():
        pytest.skip(f"zoo spec '{name}' is not written yet")
    return resolve(name).graph


def torch_counts(make: type[nn.Module] | object, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """torch's own (params, MACs) of a module built on the meta device."""
    with torch.device("meta"):
        module = make()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.empty(1, *input_shape, device="meta"))
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return sum(p.numel() for p in module.parameters()), flops // 2


def by_kernel(report, block: str, kernel: tuple[int, int]):
    [found] = [r for r in report.reductions if r.block.startswith(block)
               and r.baseline_convs[-1].layer.kernel_size == kernel]
    return found


# ---- GoogLeNet inception (3a): the acceptance numbers ----------------------------

INCEPTION_3A = """
name: inception_3a
input: [192, 28, 28]
layers:
  - name: inception_3a
    parallel:
      b1: [{conv: 64, k: 1}, relu]
      b2: [{conv: 96, k: 1}, relu, {conv: 128, k: 3, p: 1}, relu]
      b3: [{conv: 16, k: 1}, relu, {conv: 32, k: 5, p: 2}, relu]
      b4: [{maxpool: 3, s: 1, p: 1}, {conv: 32, k: 1}, relu]
    merge: concat
"""

# At 28x28 (784 positions) on 192 input channels (paper Table 1, inception (3a)):
#   5x5 direct:  784 * 32 * 192 * 25 = 120,422,400 MACs
#   5x5 reduced: 784 * 16 * 192      =   2,408,448  (1x1 192 -> 16)
#              + 784 * 32 * 16 * 25  =  10,035,200  (5x5 16 -> 32)
#                                    =  12,443,648; 120,422,400 / 12,443,648 = 9.677 -> 9.68x
#   3x3 direct:  784 * 128 * 192 * 9 = 173,408,256
#   3x3 reduced: 784 * 96 * 192      =  14,450,688  (1x1 192 -> 96)
#              + 784 * 128 * 96 * 9  =  86,704,128  (3x3 96 -> 128)
#                                    = 101,154,816
# Params (all convs with bias): 5x5 direct 25*192*32 + 32 = 153,632; reduced
# (192*16 + 16) + (25*16*32 + 32) = 3,088 + 12,832 = 15,920.
FIVE = {"actual_macs": 12_443_648, "baseline_macs": 120_422_400, "ratio": 9.68,
        "actual_params": 15_920, "baseline_params": 153_632}
THREE = {"actual_macs": 101_154_816, "baseline_macs": 173_408_256}


def check_inception_3a(report, block: str) -> None:
    five, three = by_kernel(report, block, (5, 5)), by_kernel(report, block, (3, 3))
    assert five.actual.macs == FIVE["actual_macs"]
    assert five.baseline.macs == FIVE["baseline_macs"]
    assert round(five.baseline.macs / five.actual.macs, 2) == FIVE["ratio"]
    assert (five.actual.params, five.baseline.params) == (
        FIVE["actual_params"], FIVE["baseline_params"])
    assert (three.actual.macs, three.baseline.macs) == (
        THREE["actual_macs"], THREE["baseline_macs"])
    assert five.rf_actual == five.rf_baseline == (5, 5)
    assert three.rf_actual == three.rf_baseline == (3, 3)


def test_inception_3a_by_hand() -> None:
    """The issue's numbers on a hand-built inception (3a); catches a baseline counted at
    the reduced width, or a 1x1 forgotten in the actual cost."""
    report = analyze_savings(spec(INCEPTION_3A))
    check_inception_3a(report, "inception_3a")
    # the pool projection (1x1 after a max-pool, into the concat) and branch 1 reduce
    # nothing that feeds a kxk conv: exactly two findings
    assert len(report.reductions) == 2


def test_googlenet_2014_inception_3a() -> None:
    """The same numbers inside the paper's GoogLeNet, whose inception (3a) input is
    28x28x192 (Table 1)."""
    graph = zoo("googlenet_2014")
    report = analyze_savings(graph)
    check_inception_3a(report, "inception3a")
    assert report.totals.reductions == 18  # 9 inception modules x (3x3, 5x5) branch


# ---- ResNet bottleneck, by hand ----------------------------------------------------------

BOTTLENECK = """
name: bottleneck
input: [256, 16, 16]
layers:
  - parallel:
      residual:
        - {{conv: 64, k: 1, s: {s1}, bias: false}}
        - bn
        - relu
        - {{conv: 64, k: 3, s: {s2}, p: 1, bias: false}}
        - bn
        - relu
        - {{conv: 512, k: 1, bias: false}}
        - bn
      shortcut: [{{conv: 512, k: 1, s: 2, bias: false}}, bn]
    merge: add
  - relu
"""


class HandBottleneck(nn.Module):
    """256 -> 512 channels, 16x16 -> 8x8, written with torch.nn; `reduce=False` is the
    baseline: one 3x3 conv 256 -> 512 with the block's stride, then the block's last BN."""

    def __init__(self, reduce: bool = True, v1: bool = False):
        super().__init__()
        s1, s2 = (2, 1) if v1 else (1, 2)
        if reduce:
            self.residual = nn.Sequential(
                nn.Conv2d(256, 64, 1, s1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                nn.Conv2d(64, 64, 3, s2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                nn.Conv2d(64, 512, 1, bias=False), nn.BatchNorm2d(512))
        else:
            self.residual = nn.Sequential(nn.Conv2d(256, 512, 3, 2, 1, bias=False),
                                          nn.BatchNorm2d(512))
        self.shortcut = nn.Sequential(nn.Conv2d(256, 512, 1, 2, bias=False),
                                      nn.BatchNorm2d(512))

    def forward(self, x):
        return torch.relu(self.residual(x) + self.shortcut(x))


@pytest.mark.parametrize("v1", [False, True], ids=["v1.5", "v1"])
def test_bottleneck_by_hand(v1: bool) -> None:
    """One bottleneck, stride on the 3x3 (torchvision v1.5) or on the first 1x1 (paper v1).
    Baseline: 3x3 256 -> 512, stride 2, at the block's 8x8 output:
    9*256*512 = 1,179,648 params; 8*8*512*256*9 = 75,497,472 MACs. Actual (v1.5):
    1x1 16*16*64*256 = 4,194,304 + 3x3 8*8*64*64*9 = 2,359,296 + 1x1 8*8*512*64 = 2,097,152
    = 8,650,752 MACs; params 16,384 + 128 (bn) + 36,864 + 128 (bn) + 32,768 = 86,272.
    v1 runs its first 1x1 at 8x8: 8*8*64*256 = 1,048,576, so 5,505,024 MACs. Catches a
    baseline at the input size, or a stride that is lost with the strided 1x1."""
    graph = spec(BOTTLENECK.format(s1=2 if v1 else 1, s2=1 if v1 else 2))
    report = analyze_savings(graph)
    [b] = report.reductions
    assert b.kind == "bottleneck"
    assert (b.in_channels, b.widths) == (256, (64, 64, 512))
    [plan] = b.baseline_convs
    assert (plan.layer.kernel_size, plan.layer.stride, plan.output_shape) == (
        (3, 3), (2, 2), (1, 512, 8, 8))
    assert (b.baseline.params, b.baseline.macs) == (1_179_648, 75_497_472)
    assert b.actual.params == 86_272
    assert b.actual.macs == (5_505_024 if v1 else 8_650_752)
    # the field: a 1x1 with stride 2 before the 3x3 spreads its taps: 1 + 2*(3-1) = 5
    assert (b.rf_actual, b.rf_baseline) == (((5, 5) if v1 else (3, 3)), (3, 3))
    # torch's counts of the hand-written block, with and without its reduction
    t = report.totals
    assert torch_counts(lambda: HandBottleneck(True, v1), (256, 16, 16)) == (
        t.actual.params, t.actual.macs)
    assert torch_counts(lambda: HandBottleneck(False, v1), (256, 16, 16)) == (
        t.baseline.params, t.baseline.macs)


# ---- what is not a reduction -------------------------------------------------------------

NOT_REDUCTIONS = {
    # a 1x1 that keeps the width: nothing is reduced
    "same width": "- {conv: 64, k: 1}\n- relu\n- {conv: 64, k: 3, p: 1}",
    # a reduced tensor that also goes somewhere no conv can be widened (a pool)
    "shared output": """
- {conv: 16, k: 1, name: r}
- relu
- parallel: [[{conv: 32, k: 3, p: 1}], [{maxpool: 3, s: 1, p: 1}]]
  merge: concat""",
    # a 1x1 into a concat only (GoogLeNet's branch 1)
    "no kxk": "- parallel: [[{conv: 16, k: 1}], [{conv: 16, k: 1}]]\n  merge: concat",
    # strided, grouped or padded 1x1s change more than the width
    "strided": "- {conv: 16, k: 1, s: 2}\n- {conv: 32, k: 3, p: 1}",
    "grouped": "- {conv: 16, k: 1, g: 2}\n- {conv: 32, k: 3, p: 1}",
    "padded": "- {conv: 16, k: 1, p: 1}\n- {conv: 32, k: 3, p: 1}",
    # a reduction that is also an output of the model cannot be removed
    "output": "- {conv: 16, k: 1, name: r}\n- {conv: 32, k: 3, p: 1}\noutputs: [r, conv1]",
}


@pytest.mark.parametrize("case", NOT_REDUCTIONS)
def test_what_is_not_a_reduction(case: str) -> None:
    """Each of these would give a 'baseline' that is not the same network minus a 1x1."""
    graph = spec(f"name: t\ninput: [64, 8, 8]\nlayers:\n{NOT_REDUCTIONS[case]}")
    report = analyze_savings(graph)
    assert report.reductions == ()
    assert report.totals.baseline == report.totals.actual


def test_fire_module_squeeze_feeds_two_convs() -> None:
    """SqueezeNet's fire2 (96 -> squeeze 16 -> expand 64 1x1 + 64 3x3, biases): the squeeze
    feeds two convs; the baseline widens both. Params: actual (96*16+16) + (16*64+64) +
    (9*16*64+64) = 1,552 + 1,088 + 9,280 = 11,920; baseline (96*64+64) + (9*96*64+64) =
    6,208 + 55,360 = 61,568. MACs at 55x55 (3,025): actual 3025*(16*96 + 64*16 + 64*16*9)
    = 3025*11,776 = 35,622,400; baseline 3025*(64*96 + 64*96*9) = 3025*61,440 = 185,856,000."""
    graph = spec("""
name: fire
input: [96, 55, 55]
layers:
  - {conv: 16, k: 1, name: squeeze}
  - relu
  - parallel:
      expand1x1: [{conv: 64, k: 1}, relu]
      expand3x3: [{conv: 64, k: 3, p: 1}, relu]
    merge: concat
""")
    [r] = analyze_savings(graph).reductions
    assert (r.in_channels, r.widths) == (96, (16, 64, 64))
    assert (r.actual.params, r.baseline.params) == (11_920, 61_568)
    assert (r.actual.macs, r.baseline.macs) == (35_622_400, 185_856_000)
    assert r.rf_actual == r.rf_baseline == (3, 3)


def test_transition_is_a_compression_not_a_reduction() -> None:
    """DenseNet's transition (BN-ReLU-1x1 halving-avgpool) feeds no kxk conv: it is listed
    apart, with its own cost (64*32 = 2,048 params; 8*8*32*64 = 131,072 MACs), and does
    not enter the model totals."""
    graph = spec("""
name: transition
input: [64, 8, 8]
layers: [bn, relu, {conv: 32, k: 1, bias: false}, {avgpool: 2, s: 2}]
""")
    report = analyze_savings(graph)
    [c] = report.compressions
    assert (c.in_channels, c.out_channels, c.channel_ratio) == (64, 32, 0.5)
    assert (c.cost.params, c.cost.macs) == (2_048, 131_072)
    assert report.reductions == ()
    assert report.totals.baseline == report.totals.actual


def test_the_same_template_with_a_reduction_finds_it() -> None:
    """The control for the cases above: the template itself does not hide findings."""
    graph = spec("name: t\ninput: [64, 8, 8]\nlayers:\n"
                 "- {conv: 16, k: 1}\n- relu\n- {conv: 32, k: 3, p: 1}")
    [r] = analyze_savings(graph).reductions
    # baseline 8*8*32*64*9 = 1,179,648 MACs; actual 8*8*16*64 + 8*8*32*16*9 = 65,536 +
    # 294,912 = 360,448
    assert (r.kind, r.actual.macs, r.baseline.macs) == ("reduction", 360_448, 1_179_648)


# ---- the zoo models against hand-written torch modules -----------------------------------
# Each network is written here with torch.nn from its published configuration (torchvision's
# builders, the papers' tables); `reduce=False` drops the 1x1 reductions. The modules with
# reductions must reproduce torchvision's published num_params and _ops (GMACs of conv +
# linear, round 3), which shows the hand-written network is the zoo's; the modules without
# must give exactly our baseline totals.

def conv_bn(c_in: int, c_out: int, k: int = 1, s: int = 1, p: int = 0, eps: float = 1e-5):
    return [nn.Conv2d(c_in, c_out, k, s, p, bias=False), nn.BatchNorm2d(c_out, eps=eps),
            nn.ReLU()]


def basic(c_in: int, c_out: int, k: int = 1, p: int = 0, s: int = 1) -> nn.Sequential:
    """torchvision's GoogLeNet BasicConv2d: conv (no bias), BN eps 0.001, ReLU."""
    return nn.Sequential(*conv_bn(c_in, c_out, k, s, p, eps=0.001))


# GoogLeNet Table 1 filters (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj);
# torchvision's branch 3 uses a 3x3 where the paper has 5x5 (pytorch/vision#906).
GOOGLENET = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), "pool",
             (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64),
             (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
             (256, 160, 320, 32, 128, 128), "pool2", (256, 160, 320, 32, 128, 128),
             (384, 192, 384, 48, 128, 128)]


class Inception(nn.Module):
    def __init__(self, c_in: int, cfg: tuple[int, ...], reduce: bool):
        super().__init__()
        c1, c3r, c3, c5r, c5, pp = cfg
        self.b1 = basic(c_in, c1)
        if reduce:
            self.b2 = nn.Sequential(basic(c_in, c3r), basic(c3r, c3, 3, 1))
            self.b3 = nn.Sequential(basic(c_in, c5r), basic(c5r, c5, 3, 1))
        else:  # the 3x3 convs read all c_in channels
            self.b2, self.b3 = basic(c_in, c3, 3, 1), basic(c_in, c5, 3, 1)
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), basic(c_in, pp))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def googlenet(reduce: bool) -> nn.Module:
    layers: list[nn.Module] = [basic(3, 64, 7, 3, 2), nn.MaxPool2d(3, 2, ceil_mode=True),
                               basic(64, 64), basic(64, 192, 3, 1),
                               nn.MaxPool2d(3, 2, ceil_mode=True)]
    c = 192
    for cfg in GOOGLENET:
        if isinstance(cfg, str):
            layers.append(nn.MaxPool2d(3 if cfg == "pool" else 2, 2, ceil_mode=True))
        else:
            layers.append(Inception(c, cfg, reduce))
            c = cfg[0] + cfg[2] + cfg[4] + cfg[5]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(c, 1000))


class Bottleneck(nn.Module):
    """torchvision's v1.5 Bottleneck; without reduction: 3x3 c_in -> 4*planes + its BN."""

    def __init__(self, c_in: int, planes: int, stride: int, reduce: bool):
        super().__init__()
        c_out = 4 * planes
        if reduce:
            self.residual = nn.Sequential(
                *conv_bn(c_in, planes), *conv_bn(planes, planes, 3, stride, 1),
                nn.Conv2d(planes, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        else:
            self.residual = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                                          nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        return torch.relu(self.residual(x) + self.shortcut(x))


RESNET50 = [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]  # planes, blocks, stride


def resnet50(reduce: bool) -> nn.Module:
    layers: list[nn.Module] = [*conv_bn(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, 1)]
    c = 64
    for planes, blocks, stride in RESNET50:
        for i in range(blocks):
            layers.append(Bottleneck(c, planes, stride if i == 0 else 1, reduce))
            c = 4 * planes
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000))


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 (4k) - BN-ReLU-3x3 (k), concatenated after its input. Without reduction:
    BN-ReLU-3x3 on all c_in channels - but only where the 1x1 cuts channels (c_in > 4k);
    a 1x1 that widens is no reduction and stays."""

    def __init__(self, c_in: int, growth: int, reduce: bool):
        super().__init__()
        width = 4 * growth
        layers: list[nn.Module] = [nn.BatchNorm2d(c_in), nn.ReLU()]
        if reduce or c_in <= width:
            layers += [*conv_bn(c_in, width), nn.Conv2d(width, growth, 3, 1, 1, bias=False)]
        else:
            layers.append(nn.Conv2d(c_in, growth, 3, 1, 1, bias=False))
        self.new = nn.Sequential(*layers)

    def forward(self, x):
        return torch.cat([x, self.new(x)], 1)


def densenet121(reduce: bool) -> nn.Module:
    layers: list[nn.Module] = [*conv_bn(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, 1)]
    c = 64
    for i, n in enumerate((6, 12, 24, 16)):
        for _ in range(n):
            layers.append(DenseLayer(c, 32, reduce))
            c += 32
        if i < 3:  # transition: BN-ReLU-1x1 halving-avgpool 2x2
            layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False),
                       nn.AvgPool2d(2, 2)]
            c //= 2
    return nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(c, 1000))


# torchvision *_Weights.IMAGENET1K_V1 meta: num_params, _ops (GMACs, round 3)
PUBLISHED = {"googlenet": (6_624_904, 1.498), "resnet50": (25_557_032, 4.089),
             "densenet121": (7_978_856, 2.834)}
HAND = {"googlenet": googlenet, "resnet50": resnet50, "densenet121": densenet121}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HAND))
def test_model_without_reductions_equals_torch(name: str) -> None:
    """Our 'without its 1x1 reductions' totals equal torch's parameters() and
    FlopCounterMode / 2 on the hand-written network without them. First the oracle's own
    check: with reductions, the hand-written module has torchvision's published counts and
    our model totals (so a slip in this file cannot pass the comparison that follows)."""
    totals = savings_totals(zoo(name), (3, 224, 224))
    params, macs = torch_counts(lambda: HAND[name](True), (3, 224, 224))
    assert (params, round(macs / 1e9, 3)) == PUBLISHED[name]
    assert (params, macs) == (totals.actual.params, totals.actual.macs)
    assert torch_counts(lambda: HAND[name](False), (3, 224, 224)) == (
        totals.baseline.params, totals.baseline.macs)


def test_googlenet_findings_follow_its_table() -> None:
    """Two reductions per inception module, with the table's widths, in order."""
    report = analyze_savings(zoo("googlenet"))
    expected, c = [], 192
    for cfg in (g for g in GOOGLENET if not isinstance(g, str)):
        expected += [(c, (cfg[1], cfg[2])), (c, (cfg[3], cfg[4]))]
        c = cfg[0] + cfg[2] + cfg[4] + cfg[5]
    assert [(r.in_channels, r.widths) for r in report.reductions] == expected
    assert {r.kind for r in report.reductions} == {"reduction"}


def test_resnet50_every_bottleneck_and_its_baseline() -> None:
    """All 16 bottlenecks (3+4+6+3); each baseline is one 3x3 conv C_in -> C_out with the
    block's stride at the block's output size (56, 28, 14, 7 at 224x224)."""
    report = analyze_savings(zoo("resnet50"))
    assert report.totals.bottlenecks == 16 and report.totals.reductions == 0
    expected, c = [], 64
    for (planes, blocks, stride), size in zip(RESNET50, (56, 28, 14, 7), strict=True):
        for i in range(blocks):
            s = stride if i == 0 else 1
            expected.append((c, (planes, planes, 4 * planes), (s, s), (1, 4 * planes, size,
                                                                        size)))
            c = 4 * planes
    found = []
    for b in report.reductions:
        [plan] = b.baseline_convs
        assert plan.layer.kernel_size == (3, 3) and plan.in_channels == b.in_channels
        found.append((b.in_channels, b.widths, plan.layer.stride, plan.output_shape))
        assert b.rf_actual == b.rf_baseline == (3, 3)
    assert found == expected


def test_densenet121_reductions_and_transitions() -> None:
    """58 dense layers; the 1x1 (-> 128) cuts channels in all but the 4 whose input has at
    most 128 channels (64, 96, 128 in block 1; 128 at the start of block 2): 54
    reductions. The 3 transitions are compressions to half the channels."""
    report = analyze_savings(zoo("densenet121"))
    assert report.totals.reductions == 54 and report.totals.bottlenecks == 0
    assert all(r.reduced_channels == 128 < r.in_channels for r in report.reductions)
    assert [(c.in_channels, c.out_channels) for c in report.compressions] == [
        (256, 128), (512, 256), (1024, 512)]


# ---- kernel factorization ---------------------------------------------------------------

def test_vgg16_pairs_and_triples_against_large_kernels() -> None:
    """VGG16's stages are runs of 2, 2, 3, 3, 3 3x3 convs (bias on). Each consecutive pair
    has the field of a 5x5, each stage of three that of a 7x7. Weights: a stack costs
    sum 9*c_i*c_(i+1), the large kernel K^2*c_0*c_n; with equal channels C that is the
    paper's 18C^2 vs 25C^2 (pair) and 27C^2 vs 49C^2 (triple), biases n*C vs C."""
    report = analyze_savings(zoo("vgg16"))
    runs = [f.channels for f in report.factorizations if f.whole_run]
    assert runs == [(3, 64, 64), (64, 128, 128), (128, 256, 256, 256),
                    (256, 512, 512, 512), (512, 512, 512, 512)]
    pairs = [f for f in report.factorizations if len(f.convs) == 2]
    assert len(pairs) == 2 + 3 * 2  # stages 1 and 2 are pairs; 2 pairs in each triple
    for f in report.factorizations:
        n, chans = len(f.convs), f.channels
        size = 2 * n + 1
        assert f.large.layer.kernel_size == f.rf_stack == f.rf_large == (size, size)
        stack_weights = sum(9 * a * b for a, b in zip(chans, chans[1:], strict=False))
        assert f.stack.params == stack_weights + sum(chans[1:])
        assert f.large.cost.params == size * size * chans[0] * chans[-1] + chans[-1]
        if len(set(chans)) == 1:
            c = chans[0]
            assert f.stack.params == (18 if n == 2 else 27) * c * c + n * c
            assert f.large.cost.params == (25 if n == 2 else 49) * c * c + c
    assert sum(len(set(f.channels)) == 1 and len(f.convs) == 2
               for f in report.factorizations) == 4  # conv3_2/3_3, 4_2/4_3, 5_1/5_2, 5_2/5_3


def test_large_kernel_counts_equal_torch() -> None:
    """Each large-kernel equivalent, built by hand in torch (K x K, padding K//2, bias),
    has our params and MACs, and the stack's output size."""
    report = analyze_savings(zoo("vgg16"))
    for f in report.factorizations:
        plan = f.large
        c0, cn, k = f.channels[0], f.channels[-1], plan.layer.kernel_size[0]
        params, macs = torch_counts(lambda c0=c0, cn=cn, k=k: nn.Conv2d(c0, cn, k, 1, k // 2),
                                    plan.input_shape[1:])
        assert (params, macs) == (plan.cost.params, plan.cost.macs)


def test_one_by_n_then_n_by_one_is_n_by_n() -> None:
    """Inception-v3's 1x7 followed by 7x1 sees a 7x7 window. 64 -> 48 -> 32 at 17x17 (289):
    stack weights 7*64*48 + 7*48*32 = 21,504 + 10,752 = 32,256, MACs 289*32,256 =
    9,321,984; one 7x7 64 -> 32: 49*64*32 = 100,352 weights, 289*100,352 = 29,001,728."""
    graph = spec("""
name: asym
input: [64, 17, 17]
layers:
  - {conv: 48, k: [1, 7], p: [0, 3], bias: false}
  - bn
  - relu
  - {conv: 32, k: [7, 1], p: [3, 0], bias: false}
""")
    [f] = analyze_savings(graph).factorizations
    assert f.kernels == ((1, 7), (7, 1)) and f.large.layer.kernel_size == (7, 7)
    assert f.large.layer.padding == (3, 3) and f.rf_stack == f.rf_large == (7, 7)
    assert f.stack.params == 32_256 + 2 * 48  # and the BN between (gamma, beta)
    assert f.stack.macs == 9_321_984
    assert (f.large.cost.params, f.large.cost.macs) == (100_352, 29_001_728)


def test_strided_or_dilated_convs_do_not_stack() -> None:
    """A stride or dilation changes what a stack sees; neither is a plain factorization."""
    for layer in ("{conv: 8, k: 3, s: 2, p: 1}", "{conv: 8, k: 3, d: 2, p: 2}"):
        graph = spec(f"name: t\ninput: [8, 16, 16]\nlayers:\n- {layer}\n"
                     "- {conv: 8, k: 3, p: 1}")
        assert analyze_savings(graph).factorizations == ()


# ---- what-if: --suggest ------------------------------------------------------------------

SUGGEST = """
name: two
input: [64, 8, 8]
layers:
  - {conv: 64, k: 3, p: 1, bias: false}
  - relu
  - {conv: 128, k: 3, p: 1, bias: false}
"""


def test_suggest_projects_and_ranks_by_macs_saved() -> None:
    """At 8x8 (64 positions), ratio 1/4. conv1 64 -> 64: now 64*64*64*9 = 2,359,296 MACs;
    with a 1x1 to 16: 64*16*64 = 65,536 + 64*64*16*9 = 589,824 -> 655,360, saving
    1,703,936. conv2 64 -> 128: now 64*128*64*9 = 4,718,592; 65,536 + 64*128*16*9 =
    1,179,648 -> 1,245,184, saving 3,473,408: conv2 ranks first. Params of conv2:
    now 9*64*128 = 73,728, then 64*16 + 9*16*128 = 1,024 + 18,432 = 19,456."""
    report = suggest_reductions(spec(SUGGEST))
    assert [s.conv for s in report.suggestions] == ["conv2", "conv1"]
    first, second = report.suggestions
    assert first.reduce.layer.out_channels == 16
    assert (first.current.macs, first.projected.macs) == (4_718_592, 1_245_184)
    assert (first.current.params, first.projected.params) == (73_728, 19_456)
    assert (second.current.macs, second.projected.macs) == (2_359_296, 655_360)


def test_suggest_ratio_is_read_exactly() -> None:
    """0.29 x 100 channels is 29, though 0.29 * 100 == 28.999999999999996 in floats."""
    graph = spec("name: t\ninput: [100, 4, 4]\nlayers: [{conv: 100, k: 3, p: 1}]")
    [s] = suggest_reductions(graph, ratio=0.29).suggestions
    assert s.reduce.layer.out_channels == 29
    assert as_ratio("1/3") == Fraction(1, 3)
    for bad in (0, 1, 1.5, -0.2, "abc"):
        with pytest.raises(UsageError):
            as_ratio(bad)


def test_suggest_skips_convs_a_reduction_would_not_help() -> None:
    """Not ranked: a depthwise 3x3 (groups = channels; a 1x1 in front is another design),
    a 1x1, and a dense 3x3 with few outputs where the inserted 1x1 costs more than it
    saves. At 8x8 (64 positions), 64 -> 2 channels: now 64*2*64*9 = 73,728 MACs; with a
    1x1 to 16: 64*16*64 = 65,536 + 64*2*16*9 = 18,432 -> 83,968, more."""
    graph = spec("""
name: t
input: [64, 8, 8]
layers:
  - {conv: 64, k: 3, p: 1, g: 64}
  - {conv: 64, k: 1}
  - {conv: 2, k: 3, p: 1}
""")
    assert suggest_reductions(graph).suggestions == ()
    graph = spec("name: t\ninput: [64, 8, 8]\nlayers: [{conv: 3, k: 3, p: 1}]")
    # the control: 3 outputs tip it (27 * 3 > 64): 64*3*64*9 = 110,592 now, 65,536 +
    # 64*3*16*9 = 27,648 -> 93,184 projected
    [s] = suggest_reductions(graph).suggestions
    assert (s.current.macs, s.projected.macs) == (110_592, 93_184)


# ---- the command -------------------------------------------------------------------------

def run(*args: str):
    return CliRunner().invoke(app, ["savings", *args])


@pytest.fixture()
def inception_file(tmp_path):
    path = tmp_path / "inception_3a.yaml"
    path.write_text(INCEPTION_3A)
    return str(path)


def test_cli_json_is_exact_and_consistent(inception_file: str) -> None:
    """--json prints one object with exact ints; the totals equal the findings' sums."""
    result = run(inception_file, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == "cnnstat.savings/1"
    assert data["input_shape"] == [1, 192, 28, 28]
    macs = {tuple(r["baseline_convs"][0]["kernel_size"]): r for r in data["reductions"]}
    assert macs[(5, 5)]["baseline"]["macs"] == FIVE["baseline_macs"]
    assert macs[(5, 5)]["actual"]["macs"] == FIVE["actual_macs"]
    totals = data["totals"]
    assert totals["saved"]["macs"] == sum(r["saved"]["macs"] for r in data["reductions"])
    assert totals["baseline"]["macs"] - totals["actual"]["macs"] == totals["saved"]["macs"]
    assert run(inception_file, "--format", "json").stdout == result.stdout


def test_cli_csv_and_markdown(inception_file: str) -> None:
    """CSV: one row per finding plus the model row, exact ints; Markdown: a table."""
    result = run(inception_file, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["section"] for r in rows] == ["reduction", "reduction", "model"]
    assert {int(r["baseline_macs"]) for r in rows[:2]} == {
        FIVE["baseline_macs"], THREE["baseline_macs"]}
    md = run(inception_file, "--format", "markdown")
    assert md.exit_code == 0 and "| Block |" in md.stdout and "9.68x" in md.stdout


def test_cli_table_states_the_totals(inception_file: str) -> None:
    """The table run prints the ratio and the model sentence, and nothing on stderr."""
    result = run(inception_file, "--no-color")
    assert result.exit_code == 0, result.stderr
    assert "9.68x" in result.stdout
    assert "without its 1x1 reductions" in result.stdout
    assert result.stderr == ""


def test_cli_suggest(tmp_path) -> None:
    """--suggest --ratio reaches the analyzer (a dropped --ratio would project 1/4)."""
    path = tmp_path / "two.yaml"
    path.write_text(SUGGEST)
    data = json.loads(run(str(path), "--suggest", "--ratio", "0.5", "--json").stdout)
    assert data["schema"] == "cnnstat.suggest/1" and data["ratio"] == 0.5
    assert [s["conv"] for s in data["suggestions"]] == ["conv2", "conv1"]
    # conv2 at ratio 1/2: 1x1 64 -> 32 then 3x3 32 -> 128: 64*32*64 + 64*128*32*9 =
    # 131,072 + 2,359,296 = 2,490,368 MACs
    assert data["suggestions"][0]["projected"]["macs"] == 2_490_368
    table = run(str(path), "--suggest", "--no-color")
    assert table.exit_code == 0 and "conv2" in table.stdout
    assert run(str(path), "--suggest", "-f", "csv").stdout.startswith("rank,conv,")


@pytest.mark.parametrize("args", [("--ratio", "2"), ("--ratio", "x"), ("--input", "0")])
def test_cli_bad_usage_exits_2(inception_file: str, args: tuple[str, str]) -> None:
    """Bad options are usage errors (exit 2, one line on stderr), never a crash (70)."""
    result = run(inception_file, "--suggest", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert "error" in result.stderr


def test_cli_unknown_model_exits_2() -> None:
    """The MODEL argument resolves like every other command's."""
    result = run("no_such_model")
    assert result.exit_code == 2 and "unknown model" in result.stderr
