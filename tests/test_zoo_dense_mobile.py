"""The DenseNet (121/161/169/201) and MobileNetV2 zoo specs.

Oracles, none of them written here: torchvision's published weight metadata, the DenseNet
and MobileNetV2 papers, torch itself on modules built from our graphs (tests/oracles.py:
parameters(), buffers(), FlopCounterMode and a meta-device forward pass), and a
hand-written torch dense layer (`torch.cat([x, new], 1)`) run on real tensors.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import torch
import yaml
from oracles import torch_truth

import cnnstat
from cnnstat.analyzers import ModelReport
from cnnstat.builder import build_module
from cnnstat.ir import Graph
from cnnstat.resolver import resolve
from cnnstat.spec import load_spec

SPECS = Path(__file__).resolve().parents[1] / "specs"

# torchvision's *_Weights.IMAGENET1K_V1 meta (pytorch/vision@9cb639a1, torchvision/models/
# densenet.py and mobilenetv2.py), via shared/reference/published-numbers.md §1: num_params
# exactly, and `_ops` = GMACs of conv + linear at 1x3x224x224 rounded with round(x, 3).
TORCHVISION = {
    "densenet121": (7_978_856, 2.834),
    "densenet161": (28_681_000, 7.728),
    "densenet169": (14_149_480, 3.36),
    "densenet201": (20_013_928, 4.291),
    "mobilenet_v2": (3_504_872, 0.301),
}
MODELS = tuple(TORCHVISION)
DENSENETS = tuple(n for n in MODELS if n.startswith("densenet"))

# (growth rate k, layers per dense block, stem channels): torchvision's builders, the same
# table published-numbers.md §1 quotes from the weight metadata.
DENSE_CONFIG = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
}

# MobileNetV2 paper (Sandler et al. 2018) Table 2: (expansion t, channels c, repeats n,
# stride s) per bottleneck row, after a 32-channel 3x3/2 stem.
MOBILENET_V2_ROWS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                     (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

# Hundreds of BatchNorms under FlopCounterMode on meta take seconds each.
SLOW = {"densenet161", "densenet169", "densenet201"}


def _param(name: str):
    return pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [], id=name)


@cache
def report(name: str) -> ModelReport:
    return cnnstat.analyze(name)


@cache
def graph(name: str) -> Graph:
    return resolve(name).graph


def _rows(rep: ModelReport, pattern: str):
    return [row for row in rep.layers if re.fullmatch(pattern, row.name)]


def _in_channels(rep: ModelReport, row) -> int:
    shapes = {r.name: r.output_shape for r in rep.layers}
    shapes["input"] = rep.input_shape
    return shapes[row.inputs[0]][1]


# ---- published torchvision figures ----------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_params_equal_torchvision_num_params(name):
    """Catches a wrong width anywhere (growth, bottleneck 4k, transition halving, expansion
    t, a missing expand conv): torchvision's num_params is exact."""
    assert report(name).totals.params == TORCHVISION[name][0]


@pytest.mark.parametrize("name", MODELS)
def test_macs_match_torchvision_ops_after_its_rounding(name):
    """Catches a wrong stride, pool or depthwise grouping (a dense 3x3 instead of a
    depthwise one costs ~10x): torchvision's `_ops` is round(conv+linear MACs / 1e9, 3)."""
    assert round(report(name).totals.macs / 1e9, 3) == TORCHVISION[name][1]


# ---- torch itself on our graphs ---------------------------------------------------------
@pytest.mark.parametrize("name", [_param(n) for n in MODELS])
def test_counts_and_every_shape_equal_torch(name):
    """Catches an analyzer and a builder that disagree on this graph: torch's parameters(),
    buffers() (BN running stats), FlopCounterMode MACs and the output shape of every layer
    in a meta forward pass must equal ours, layer for layer."""
    rep = report(name)
    truth = torch_truth(graph(name), (3, 224, 224))
    assert (rep.totals.params, rep.totals.buffers, rep.totals.macs) == (
        truth.params, truth.buffers, truth.macs)
    ours = {row.name: row.output_shape for row in rep.layers}
    assert ours == truth.shapes
    assert [shape for _, shape in rep.outputs] == [(1, 1000)]


# ---- DenseNet paper (Huang et al., CVPR 2017) -------------------------------------------
def test_densenet201_has_the_papers_20m_parameters():
    """Huang et al. (ImageNet results): "a DenseNet-201 with 20M parameters". Catches a
    DenseNet-201 built with the wrong block sizes (DenseNet-169 has 14M)."""
    assert round(report("densenet201").totals.params / 1e6) == 20


@pytest.mark.parametrize("name", DENSENETS)
def test_densenet_has_four_dense_blocks_of_the_configured_sizes(name):
    """Huang et al. (implementation details): 4 dense blocks on ImageNet; torchvision's
    block sizes. Catches a lost or extra block or a repeat count off by one."""
    _, blocks, _ = DENSE_CONFIG[name]
    rows = _rows(report(name), r"features\.denseblock(\d)\.denselayer(\d+)\.concat1")
    counts: dict[str, int] = {}
    for row in rows:
        block = row.name.split(".")[1]
        counts[block] = counts.get(block, 0) + 1
    assert list(counts.values()) == list(blocks)


@pytest.mark.parametrize("name", DENSENETS)
def test_each_dense_layer_adds_k_channels_through_a_4k_bottleneck(name):
    """Huang et al.: growth rate k (32 on ImageNet; 48 for the wide DenseNet-161) and a 1x1
    bottleneck to 4k maps. Catches a concat that drops its input (width k, not +k) or a
    bottleneck sized from the input width."""
    growth, _, _ = DENSE_CONFIG[name]
    rep = report(name)
    concats = _rows(rep, r".*\.denselayer\d+\.concat1")
    assert concats
    for row in concats:
        assert row.output_shape[1] - _in_channels(rep, row) == growth, row.name
    for row in _rows(rep, r".*\.new_features\.conv1"):
        assert row.output_shape[1] == 4 * growth, row.name


@pytest.mark.parametrize("name", DENSENETS)
def test_transitions_halve_the_channels_and_the_stem_is_7x7_stride_2(name):
    """Huang et al.: compression theta = 0.5 in each transition (then 2x2 average pool)
    and a 7x7 stride-2 stem of 2k convs (torchvision: init features 64 or 96). Catches a
    transition width not derived from its input, and a stem with the wrong stride."""
    _, _, init = DENSE_CONFIG[name]
    rep = report(name)
    convs = _rows(rep, r"features\.transition\d\.conv")
    assert len(convs) == 3
    for row in convs:
        assert row.output_shape[1] == _in_channels(rep, row) // 2, row.name
    assert rep.layer("features.conv0").output_shape == (1, init, 112, 112)
    assert rep.layer("features.denseblock4.denselayer1.new_features.conv2").output_shape[2:] \
        == (7, 7)


@pytest.mark.parametrize("name", DENSENETS)
def test_dense_layer_concat_puts_the_input_first(name):
    """torchvision concatenates torch.cat([prev_features..., new_features], 1): the layer's
    input first. Catches swapped parallel branches, which no count or shape can see."""
    g = graph(name)
    nodes = {node.name: node for node in g}
    concats = [node for node in g if re.fullmatch(r".*\.denselayer\d+\.concat1", node.name)]
    for node in concats:
        scope = node.name.rsplit(".", 1)[0]
        assert node.inputs == (nodes[f"{scope}.new_features.norm1"].inputs[0],
                               f"{scope}.new_features.conv2"), node.name


def _tiny_dense_block_spec(tmp_path: Path) -> Graph:
    """The zoo's own densenet121 blocks, called as one 2-layer dense block (growth 3) on a
    4x6x6 input, so the test runs the shipped block definition, not a copy."""
    spec = yaml.safe_load((SPECS / "densenet121.yaml").read_text())
    spec.update(name="tiny_dense_block", input=[4, 6, 6],
                layers=[{"dense_block": [2, 3], "name": "block"}])
    path = tmp_path / "tiny_dense_block.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_spec(path)


def _hand_written_dense_block(module, x: torch.Tensor, *, input_first: bool) -> torch.Tensor:
    """torchvision's _DenseLayer/_DenseBlock by hand, with the built module's weights."""
    relu = torch.nn.functional.relu
    for index in (1, 2):
        layer = getattr(module.block, f"denselayer{index}").new_features
        new = layer.conv2(relu(layer.norm2(layer.conv1(relu(layer.norm1(x))))))
        x = torch.cat([x, new] if input_first else [new, x], 1)
    return x


def test_dense_block_output_equals_torch_cat_input_then_new_features(tmp_path):
    """Runs real numbers through the zoo's dense_block and through torch.cat([x, new], 1)
    written by hand. Catches [new, x] order (the same shapes and counts, different
    tensors) and any mix-up of which BN/conv feeds which; the swapped order is checked to
    differ, so the test can fail."""
    torch.manual_seed(0)
    module = build_module(_tiny_dense_block_spec(tmp_path))
    for sub in module.modules():  # non-default BN stats, so each BN matters
        if isinstance(sub, torch.nn.BatchNorm2d):
            sub.running_mean.uniform_(-0.5, 0.5)
            sub.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(sub.weight, 0.5, 1.5)
            torch.nn.init.uniform_(sub.bias, -0.5, 0.5)
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        ours = module(x)
        expected = _hand_written_dense_block(module, x, input_first=True)
        swapped = _hand_written_dense_block(module, x, input_first=False)
    assert ours.shape == (2, 4 + 2 * 3, 6, 6)
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    assert not torch.allclose(ours, swapped)


# ---- MobileNetV2 paper (Sandler et al., CVPR 2018) --------------------------------------
def test_mobilenet_v2_matches_paper_table_4_as_truncated():
    """Sandler et al. Table 4: 3.4M params, 300M MAdds. Both figures read as truncated,
    not rounded: the MAdds are 300.77M (torchvision publishes 0.301 G), which rounds to
    301M. Read the same way, 3.4M bounds the conv + linear weights, [3.4M, 3.5M); the BN
    scale and shift (+34112, torchvision's 3504872) are not in the paper's figure (its
    TF-slim BN learns no scale). Catches a missing stage or a dense 3x3 (both move the
    figures by more than the last printed digit)."""
    rep = report("mobilenet_v2")
    weight_params = sum(row.params for row in rep.layers if row.kind in ("conv2d", "linear"))
    assert weight_params // 100_000 == 34
    assert rep.totals.macs // 1_000_000 == 300


def test_mobilenet_v2_bottlenecks_follow_table_2():
    """Sandler et al. Table 2 rows (t, c, n, s): n bottlenecks of width c per row, stride
    s on the first only, expansion 1x1 to t*c_in only when t > 1, a depthwise 3x3 (groups
    == width) and a shortcut add exactly when stride 1 keeps the width. Catches a stage
    given the wrong input width (wrong expansion and groups) or a lost shortcut."""
    rep = report("mobilenet_v2")
    nodes = {node.name: node for node in graph("mobilenet_v2")}
    c_in = 32
    for number, (t, c, n, s) in enumerate(MOBILENET_V2_ROWS, start=1):
        for index in range(n):
            scope = f"features.stage{number}.bottleneck{index + 1}"
            stride = s if index == 0 else 1
            names = {row.name for row in rep.layers if row.name.startswith(scope + ".")}
            assert (f"{scope}.conv.expand.conv1" in names) == (t != 1), scope
            depthwise = nodes[f"{scope}.conv.depthwise.conv1"].layer
            assert depthwise.out_channels == depthwise.groups == c_in * t, scope
            assert depthwise.stride == (stride, stride), scope
            assert rep.layer(f"{scope}.conv.project.bn1").output_shape[1] == c, scope
            assert (f"{scope}.add1" in names) == (stride == 1 and c_in == c), scope
            c_in = c
    assert rep.layer("features.last_conv.conv1").output_shape == (1, 1280, 7, 7)


@pytest.mark.parametrize("name", DENSENETS)
def test_densenet_depth_is_the_number_in_its_name(name):
    """Huang et al. name DenseNet-L by its L weight layers: stem conv, two convs per dense
    layer, three transition convs and the classifier, all on the longest path (a concat
    passes the deepest branch on). Catches a lost transition conv or dense layer."""
    assert report(name).totals.depth == int(name.removeprefix("densenet"))
