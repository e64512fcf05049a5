"""Zoo specs of the Inception family: googlenet, googlenet_2014, inception_v3.

Oracles: torchvision's published weight metadata (pytorch/vision@9cb639a1,
torchvision/models/googlenet.py and inception.py, `num_params` and `_ops`), the GoogLeNet
paper's Table 1 (Szegedy et al., arXiv:1409.4842), the Inception-v3 paper's abstract
(arXiv:1512.00567), and torch itself via tests/oracles.py.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import cache

import pytest
from oracles import torch_truth

from cnnstat.analyzers import ModelReport, analyze_graph
from cnnstat.ir import Graph
from cnnstat.ir import layers as L
from cnnstat.resolver import load_zoo

MODELS = ("googlenet", "googlenet_2014", "inception_v3")


@cache
def graph(name: str) -> Graph:
    return load_zoo(name)


@cache
def report(name: str) -> ModelReport:
    return analyze_graph(graph(name))


@cache
def truth(name: str):
    return torch_truth(graph(name))


def scope_rows(name: str, scope: str):
    return [r for r in report(name).layers if r.name == scope or r.name.startswith(scope + ".")]


# ---- torch as the oracle ------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_counts_equal_torch(name):
    """Our params, buffers and MACs equal torch's for the module built from the spec:
    catches a params/ops rule that miscounts a layer kind these specs use (BN, biasless
    conv, asymmetric kernels, LRN, pools with ceil_mode)."""
    torch_counts = truth(name)
    totals = report(name).totals
    assert (totals.params, totals.buffers, totals.macs) == (
        torch_counts.params, torch_counts.buffers, torch_counts.macs)


@pytest.mark.parametrize("name", MODELS)
def test_every_layer_shape_equals_torch(name):
    """Every layer's output shape equals torch's meta forward: catches a shape rule that
    rounds a pool differently (ceil_mode) or pads an asymmetric kernel the wrong way."""
    ours = {row.name: row.output_shape for row in report(name).layers}
    assert ours == truth(name).shapes


@pytest.mark.parametrize("name", MODELS)
def test_outputs_are_1000_way(name):
    """Every output (inception_v3's aux head included) is 1000 ImageNet logits."""
    rep = report(name)
    outputs = rep.outputs + rep.aux_outputs
    assert outputs and all(shape == (1, 1000) for _, shape in outputs)


# ---- torchvision's published metadata -----------------------------------------------
def test_googlenet_matches_torchvision_metadata():
    """GoogLeNet_Weights.IMAGENET1K_V1: num_params 6,624,904 (aux heads removed by the
    builder) and _ops 1.498 GMACs at 224x224 (round(macs / 1e9, 3)). Catches a 5x5 in
    branch3 (torchvision has 3x3, pytorch/vision#906), biases or kept aux heads."""
    totals = report("googlenet").totals
    assert totals.params == 6_624_904
    assert round(totals.macs / 1e9, 3) == 1.498


def aux_macs(name: str) -> int:
    return sum(row.macs or 0 for row in scope_rows(name, "AuxLogits"))


def test_inception_v3_matches_torchvision_metadata():
    """Inception_V3_Weights.IMAGENET1K_V1: num_params 27,161,264 counts AuxLogits, while
    _ops 5.713 GMACs at 299x299 was measured in eval mode, where AuxLogits does not run.
    Catches a missing aux head (params) or aux MACs counted as inference cost."""
    rep = report("inception_v3")
    assert rep.totals.params == 27_161_264
    assert round(rep.totals.macs / 1e9, 3) == 5.713
    assert rep.totals.train_only_macs == aux_macs("inception_v3") > 0
    aux_params = sum(row.params or 0 for row in scope_rows("inception_v3", "AuxLogits"))
    assert rep.totals.train_only_params == aux_params
    assert all(row.train_only for row in scope_rows("inception_v3", "AuxLogits"))


def test_inception_v3_aux_head_is_a_training_only_output():
    """The aux head branches off Mixed_6e and ends in an aux output, so inference (and
    the minimum input, torchvision's 75 px) never runs through it."""
    g = graph("inception_v3")
    assert g.outputs == ("fc",) and g.aux_outputs == ("AuxLogits.fc",)
    by_name = {node.name: node for node in g}
    assert by_name["AuxLogits.pool"].inputs == by_name["Mixed_7a.branch3x3.1.conv"].inputs
    small = analyze_graph(g, (3, 75, 75))
    assert small.aux_outputs == () and "cannot take this input" in small.diagnostics[0]


def test_inception_v3_paper_param_budget():
    """Szegedy et al. 2015 abstract: 'less than 25 million parameters' for the network
    without its training-only auxiliary classifier."""
    rep = report("inception_v3")
    aux_params = sum(row.params or 0 for row in scope_rows("inception_v3", "AuxLogits"))
    assert rep.totals.params - aux_params < 25_000_000


# ---- depth ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["googlenet", "googlenet_2014"])
def test_googlenet_is_22_layers_deep(name):
    """Szegedy et al. 2014 Sec. 5: 'The network is 22 layers deep when counting only
    layers with parameters'. totals.depth counts weight layers on the longest path:
    conv1, the two conv2 convs, 2 per inception module (9 modules), the linear layer."""
    assert report(name).totals.depth == 22


# ---- what distinguishes torchvision's GoogLeNet from the paper's ---------------------
def conv_kernels(name: str, suffix: str) -> set[tuple[int, int]]:
    return {node.layer.kernel_size for node in graph(name) if node.name.endswith(suffix)}


def test_branch3_kernel_torchvision_vs_paper():
    """torchvision's branch3 is 3x3 (pytorch/vision#906 'known bug'); Table 1's is 5x5."""
    assert conv_kernels("googlenet", ".branch3.3x3.conv") == {(3, 3)}
    assert conv_kernels("googlenet_2014", ".branch3.5x5.conv") == {(5, 5)}
    assert sum(n.name.endswith(".branch3.5x5.conv") for n in graph("googlenet_2014")) == 9


def test_paper_net_has_biases_lrn_and_no_batchnorm():
    """The 2014 net: convs with bias, no BatchNorm, LRN after pool1 and after conv2's 3x3
    (Figure 3: MaxPool, LocalRespNorm, Conv 1x1, Conv 3x3, LocalRespNorm, MaxPool)."""
    nodes = {node.name: node for node in graph("googlenet_2014")}
    convs = [n.layer for n in nodes.values() if isinstance(n.layer, L.Conv2d)]
    assert convs and all(conv.bias for conv in convs)
    assert not any(isinstance(n.layer, L.BatchNorm2d) for n in nodes.values())
    lrn = [name for name, n in nodes.items() if isinstance(n.layer, L.LocalResponseNorm)]
    assert lrn == ["norm1", "norm2"]
    assert nodes["norm1"].inputs == ("pool1",)
    assert nodes["norm2"].inputs == ("conv2.3x3.relu",)
    assert nodes["pool2"].inputs == ("norm2",)


# ---- GoogLeNet paper, Table 1 ----------------------------------------------------------
# row: (our scope, output (H, W, C), filters [#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5,
#       pool proj] or None, params "K", ops "M") as printed in Table 1 of arXiv:1409.4842.
TABLE1 = {
    "conv1": ("conv1", (112, 112, 64), None, "2.7", 34),
    "conv2": ("conv2", (56, 56, 192), None, "112", 360),
    "inception_3a": ("inception3a", (28, 28, 256), (64, 96, 128, 16, 32, 32), "159", 128),
    "inception_3b": ("inception3b", (28, 28, 480), (128, 128, 192, 32, 96, 64), "380", 304),
    "inception_4a": ("inception4a", (14, 14, 512), (192, 96, 208, 16, 48, 64), "364", 73),
    "inception_4b": ("inception4b", (14, 14, 512), (160, 112, 224, 24, 64, 64), "437", 88),
    "inception_4c": ("inception4c", (14, 14, 512), (128, 128, 256, 24, 64, 64), "463", 100),
    "inception_4d": ("inception4d", (14, 14, 528), (112, 144, 288, 32, 64, 64), "580", 119),
    "inception_4e": ("inception4e", (14, 14, 832), (256, 160, 320, 32, 128, 128), "840", 170),
    "inception_5a": ("inception5a", (7, 7, 832), (256, 160, 320, 32, 128, 128), "1072", 54),
    "inception_5b": ("inception5b", (7, 7, 1024), (384, 192, 384, 48, 128, 128), "1388", 71),
    "linear": ("fc", (1, 1, 1000), None, "1000", 1),
}

# Rounding that fits the rows that agree: params are conv/linear weights without biases
# in units of 1024, truncated to the printed digits (conv2 114,688 = 112.0 K; linear
# 1,024,000 = 1000.0 K; 3a 163,328 = 159.5 K printed 159); ops are multiply-adds in
# millions, rounded to nearest (4d 118.5 M printed 119, so not truncated).
# Rows whose printed figure the filter columns do not give (our figures: torch agrees):
PARAMS_DISAGREE = {
    "conv1": "7*7*3*64 = 9,408 weights = 9.1 K; the printed 2.7 K matches no 7x7x3 conv",
    "inception_3b": "388,096 weights = 379.0 K, printed 380 (biases in, rounded, fit "
                    "this row but then break 3a and linear)",
    "inception_4a": "375,552 weights = 366.8 K, printed 364",
    "inception_4b": "448,512 weights = 438.0 K, printed 437",
    "inception_4c": "509,440 weights = 497.5 K, printed 463",
    "inception_4d": "604,672 weights = 590.5 K, printed 580",
    "inception_4e": "867,328 weights = 847.0 K, printed 840",
    "inception_5a": "1,042,432 weights = 1018.0 K, printed 1072",
    "inception_5b": "1,442,816 weights = 1409.0 K, printed 1388",
}
# The printed ops of these rows equal the printed params x output H x W, so the ops were
# derived from the erroneous params (4a: 364 K x 196 = 73.1 M; 5a: 1072 K x 49 = 53.8 M;
# conv1: 2.7 K x 12,544 = 34 M); every other row's ops agree with the filter columns.
OPS_DISAGREE = {
    "conv1": "9,408 weights x 112 x 112 = 118.0 M, printed 34 M",
    "inception_4a": "375,552 x 14 x 14 = 73.6 M, printed 73 M",
    "inception_5a": "1,042,432 x 7 x 7 = 51.1 M, printed 54 M",
}


def row_figures(row: str) -> tuple[tuple[int, ...], int, int]:
    """(output (H, W, C), weights without biases, MACs) summed over a Table 1 row's scope."""
    scope = TABLE1[row][0]
    rows = scope_rows("googlenet_2014", scope)
    nodes = {node.name: node.layer for node in graph("googlenet_2014")}
    weights = 0
    for r in rows:
        layer = nodes[r.name]
        bias = r.output_shape[1] if isinstance(layer, L.Conv2d | L.Linear) and layer.bias else 0
        weights += (r.params or 0) - bias
    shape = rows[-1].output_shape
    hwc = (shape[2], shape[3], shape[1]) if len(shape) == 4 else (1, 1, shape[1])
    return hwc, weights, sum(r.macs or 0 for r in rows)


@pytest.mark.parametrize("row", TABLE1)
def test_table1_output_sizes(row):
    """Every Table 1 row's output size: catches floor-rounded pools (Table 1's 56/28/14/7
    need Caffe's round-up) or a wrong filter count in a module's concat."""
    assert row_figures(row)[0] == TABLE1[row][1]


@pytest.mark.parametrize("row", [r for r, v in TABLE1.items() if v[2] is not None])
def test_table1_filter_columns(row):
    """Each inception module's weights and MACs equal what Table 1's filter columns give
    (1x1 + 3x3 + 5x5 + pool proj, input depth from the previous row): catches a swapped
    filter number or a 3x3 in the 5x5 branch."""
    rows = list(TABLE1)
    c_in = TABLE1[rows[rows.index(row) - 1]][1][2]
    h, w, _ = TABLE1[row][1]
    n1, r3, n3, r5, n5, pool_proj = TABLE1[row][2]
    weights = c_in * (n1 + r3 + r5 + pool_proj) + 9 * r3 * n3 + 25 * r5 * n5
    assert row_figures(row)[1:] == (weights, weights * h * w)


def printed_params(weights: int, printed: str) -> Decimal:
    places = Decimal(1).scaleb(-len(printed.partition(".")[2]))
    return (Decimal(weights) / 1024).quantize(places, rounding=ROUND_DOWN)


@pytest.mark.parametrize("row", TABLE1)
def test_table1_params_column(row):
    """Rows that agree stay agreeing (weights in units of 1024, truncated); rows listed in
    PARAMS_DISAGREE really differ, so the documented paper inconsistencies stay true."""
    _, weights, _ = row_figures(row)
    printed = TABLE1[row][3]
    agrees = printed_params(weights, printed) == Decimal(printed)
    assert agrees == (row not in PARAMS_DISAGREE), PARAMS_DISAGREE.get(row, row)


@pytest.mark.parametrize("row", TABLE1)
def test_table1_ops_column(row):
    """Ops are multiply-adds (= our MACs) in millions, rounded to nearest; rows listed in
    OPS_DISAGREE really differ."""
    _, _, macs = row_figures(row)
    ours = (Decimal(macs) / 10**6).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    agrees = ours == TABLE1[row][4]
    assert agrees == (row not in OPS_DISAGREE), OPS_DISAGREE.get(row, row)
