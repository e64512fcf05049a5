"""The modern zoo specs: EfficientNet B0-B7 and V2-S/M/L, MobileNetV3 (and LR-ASPP on it),
MnasNet, Wide ResNet, ResNeXt-101, FCN and DeepLabV3 on ResNet-50/101.

Oracle, not written here: torchvision 0.29.1's weight metadata (`<Model>_Weights.DEFAULT.meta`
and `.transforms()`), read with `torchvision.models.get_model_weights(name).DEFAULT`:
`num_params` exactly, `_ops` = round(conv + linear MACs / 1e9, 3) at the weights' crop
(torchvision's test/common_extended_utils.py), `min_size`, and the crop the weights were
evaluated at. tests/test_torchvision_twins.py compares every layer with torchvision's
module where torchvision is installed; this file needs no torch.
"""

from __future__ import annotations

import json
from functools import cache

import pytest
from typer.testing import CliRunner

import cnnstat
from cnnstat.analyzers import ModelReport
from cnnstat.analyzers.min_input import min_input_side
from cnnstat.cli import app
from cnnstat.resolver import aliases, load_zoo, resolve

# name: (weights enum, num_params, _ops GMACs, crop, min_size) from torchvision 0.29.1.
TORCHVISION = {
    "efficientnet_b0": ("EfficientNet_B0_Weights.IMAGENET1K_V1", 5_288_548, 0.386, 224, 1),
    "efficientnet_b1": ("EfficientNet_B1_Weights.IMAGENET1K_V2", 7_794_184, 0.687, 240, 1),
    "efficientnet_b2": ("EfficientNet_B2_Weights.IMAGENET1K_V1", 9_109_994, 1.088, 288, 1),
    "efficientnet_b3": ("EfficientNet_B3_Weights.IMAGENET1K_V1", 12_233_232, 1.827, 300, 1),
    "efficientnet_b4": ("EfficientNet_B4_Weights.IMAGENET1K_V1", 19_341_616, 4.394, 380, 1),
    "efficientnet_b5": ("EfficientNet_B5_Weights.IMAGENET1K_V1", 30_389_784, 10.266, 456, 1),
    "efficientnet_b6": ("EfficientNet_B6_Weights.IMAGENET1K_V1", 43_040_704, 19.068, 528, 1),
    "efficientnet_b7": ("EfficientNet_B7_Weights.IMAGENET1K_V1", 66_347_960, 37.746, 600, 1),
    "efficientnet_v2_s": ("EfficientNet_V2_S_Weights.IMAGENET1K_V1", 21_458_488, 8.366, 384, 33),
    "efficientnet_v2_m": ("EfficientNet_V2_M_Weights.IMAGENET1K_V1", 54_139_356, 24.582, 480, 33),
    "efficientnet_v2_l": ("EfficientNet_V2_L_Weights.IMAGENET1K_V1", 118_515_272, 56.08, 480, 33),
    "mobilenet_v3_large": ("MobileNet_V3_Large_Weights.IMAGENET1K_V2", 5_483_032, 0.217, 224, 1),
    "mobilenet_v3_small": ("MobileNet_V3_Small_Weights.IMAGENET1K_V1", 2_542_856, 0.057, 224, 1),
    # segmentation: _ops at the 520 x 520 its weights' transforms resize to
    "lraspp_mobilenet_v3_large": ("LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1",
                                  3_221_538, 2.086, 520, 1),
    # with the aux head (aux_loss=True, as the weights have it), which eval mode runs too
    "fcn_resnet50": ("FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1", 35_322_218, 152.717, 520, 1),
    "fcn_resnet101": ("FCN_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1",
                      54_314_346, 232.738, 520, 1),
    "deeplabv3_resnet50": ("DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",
                           42_004_074, 178.722, 520, 1),
    "deeplabv3_resnet101": ("DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1",
                            60_996_202, 258.743, 520, 1),
    "mnasnet0_5": ("MNASNet0_5_Weights.IMAGENET1K_V1", 2_218_512, 0.104, 224, 1),
    "mnasnet0_75": ("MNASNet0_75_Weights.IMAGENET1K_V1", 3_170_208, 0.215, 224, 1),
    "mnasnet1_0": ("MNASNet1_0_Weights.IMAGENET1K_V1", 4_383_312, 0.314, 224, 1),
    "mnasnet1_3": ("MNASNet1_3_Weights.IMAGENET1K_V1", 6_282_256, 0.526, 224, 1),
    "wide_resnet50_2": ("Wide_ResNet50_2_Weights.IMAGENET1K_V2", 68_883_240, 11.398, 224, 1),
    "wide_resnet101_2": ("Wide_ResNet101_2_Weights.IMAGENET1K_V2", 126_886_696, 22.753, 224, 1),
    "resnext101_32x8d": ("ResNeXt101_32X8D_Weights.IMAGENET1K_V2", 88_791_336, 16.414, 224, 1),
    "resnext101_64x4d": ("ResNeXt101_64X4D_Weights.IMAGENET1K_V1", 83_455_272, 15.46, 224, 1),
}
MODELS = tuple(TORCHVISION)
EFFICIENTNETS = tuple(f"efficientnet_b{i}" for i in range(8))


@cache
def report(name: str) -> ModelReport:
    return cnnstat.analyze(name)


@pytest.mark.parametrize("name", MODELS)
def test_params_equal_torchvision_num_params(name):
    """Catches a wrong width anywhere (a make-divisible rounding, an SE squeeze taken from
    the expanded width instead of the block input, ResNeXt's groups): num_params is exact."""
    assert report(name).totals.params == TORCHVISION[name][1]


@pytest.mark.parametrize("name", MODELS)
def test_macs_match_torchvision_ops_at_the_weights_crop(name):
    """Catches a wrong depth (ceil(n * d)), stride or kernel, and a spec evaluated at the
    wrong input: `_ops` was measured at the crop, which is the spec's default input."""
    _, _, gmacs, crop, _ = TORCHVISION[name]
    rep = report(name)
    assert tuple(rep.input_shape) == (1, 3, crop, crop)
    assert round(rep.totals.macs / 1e9, 3) == gmacs


# torchvision's EfficientNetV2 metadata says min_size 33, a claim of its recipe: the
# module itself runs on a 1x1 input (test_efficientnet_v2_runs_on_1x1_in_torchvision).
ARCHITECTURE_MIN = {f"efficientnet_v2_{v}": 1 for v in "sml"}


@pytest.mark.parametrize("name", MODELS)
def test_min_input_equals_torchvision_min_size(name):
    """Catches a pool or stride that would refuse torchvision's smallest accepted input."""
    side = min_input_side(load_zoo(name))
    assert side <= TORCHVISION[name][4]
    assert side == ARCHITECTURE_MIN.get(name, TORCHVISION[name][4])


@pytest.mark.oracle
def test_efficientnet_v2_runs_on_1x1_in_torchvision():
    """The oracle for ARCHITECTURE_MIN: torchvision's own V2-S (eval mode, meta device)
    accepts a 1x1 input, so the 33 in its metadata is not the network's minimum."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        model = torchvision.models.efficientnet_v2_s(weights=None).eval()
        out = model(torch.empty(1, 3, 1, 1))
    assert tuple(out.shape) == (1, 1000)


def _stage_widths(rep: ModelReport) -> list[int]:
    """Output width of each MBConv stage features.1 .. features.7 (its last layer)."""
    last = {}
    for row in rep.layers:
        parts = row.name.split(".")
        if parts[0] == "features" and parts[1] in "1234567" and len(parts[1]) == 1:
            last[parts[1]] = row.output_shape[1]
    return [last[s] for s in "1234567"]


def test_efficientnet_b0_stages_follow_the_papers_table_1():
    """EfficientNet paper Table 1 (B0): stage widths 16, 24, 40, 80, 112, 192, 320 after a
    32-wide stem, and a 1280-wide head conv."""
    rep = report("efficientnet_b0")
    assert _stage_widths(rep) == [16, 24, 40, 80, 112, 192, 320]
    head = [r for r in rep.layers if r.name.startswith("features.8")]
    assert head[-1].output_shape[1] == 1280


def test_efficientnet_b7_widths_are_make_divisible_of_twice_b0():
    """Catches plain multiplication in place of torchvision's _make_divisible(c * 2.0, 8):
    at width 2.0 every B0 width doubles (all are multiples of 4), head 4 * 640."""
    rep = report("efficientnet_b7")
    assert _stage_widths(rep) == [32, 48, 80, 160, 224, 384, 640]
    assert [r for r in rep.layers if r.name.startswith("features.8")][-1].output_shape[1] == 2560


def test_family_aliases_pick_existing_specs():
    """Every offered alias resolves to a zoo spec; the modern families are offered."""
    offered = aliases()
    for alias in ("efficientnet", "efficientnet_v2", "mobilenet_v3", "mnasnet",
                  "wide_resnet"):
        assert alias in offered
    for alias, target in offered.items():
        assert resolve(alias).graph.meta.name == target


def test_compare_family_efficientnet_lists_b0_to_b7_and_v2():
    result = CliRunner().invoke(app, ["compare", "--family", "efficientnet", "--json"])
    assert result.exit_code == 0, result.output
    names = {m["model"] for m in json.loads(result.stdout)["models"]}
    assert names == {*EFFICIENTNETS, "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"}


def test_zoo_lists_the_modern_specs_with_published_counts():
    result = CliRunner().invoke(app, ["zoo", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {r["name"]: r for r in data["models"]}
    for name, (_, params, gmacs, crop, min_size) in TORCHVISION.items():
        row = rows[name]
        assert row["params"] == params
        assert round(row["macs"] / 1e9, 3) == gmacs
        assert row["input"] == [3, crop, crop]
        assert row["min_input"] == ARCHITECTURE_MIN.get(name, min_size)
        assert row["family"] and row["year"]


def _block_widths(rep: ModelReport, blocks: int) -> list[int]:
    """Output width of each bottleneck features.1 .. features.<blocks> (its last layer)."""
    last = {}
    for row in rep.layers:
        parts = row.name.split(".")
        if parts[0] == "features" and parts[1].isdigit() and 1 <= int(parts[1]) <= blocks:
            last[int(parts[1])] = row.output_shape[1]
    return [last[i] for i in range(1, blocks + 1)]


# MobileNetV3 paper (Howard et al. 2019) Table 1 (Large) and Table 2 (Small): the #out
# column of the bneck rows, the SE column (the rows with a squeeze-and-excitation) and the
# width of the 1x1 conv after the last bneck.
MOBILENET_V3_TABLES = {
    "mobilenet_v3_large": ([16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160],
                           {4, 5, 6, 11, 12, 13, 14, 15}, 960),
    "mobilenet_v3_small": ([16, 24, 24, 40, 40, 40, 48, 48, 96, 96, 96],
                           {1, 4, 5, 6, 7, 8, 9, 10, 11}, 576),
}


@pytest.mark.parametrize("name", tuple(MOBILENET_V3_TABLES))
def test_mobilenet_v3_follows_the_papers_table(name):
    """Catches a row of the bneck table left out, swapped or given SE where the paper has none."""
    widths, se_rows, head = MOBILENET_V3_TABLES[name]
    rep = report(name)
    assert _block_widths(rep, len(widths)) == widths
    with_se = {int(r.name.split(".")[1]) for r in rep.layers if ".se." in r.name}
    assert with_se == se_rows
    last = [r for r in rep.layers if r.name.startswith(f"features.{len(widths) + 1}.")]
    assert last[-1].output_shape[1] == head


@pytest.mark.parametrize("side", [(520, 520), (224, 320), (97, 161)])
def test_lraspp_output_is_the_input_size(side):
    """torchvision's LRASPP resizes its 21-class map to the input (F.interpolate to
    input.shape[-2:]), at any input, odd sizes included."""
    rep = cnnstat.analyze("lraspp_mobilenet_v3_large", input=(3, *side))
    assert tuple(rep.layers[-1].output_shape) == (1, 21, *side)
