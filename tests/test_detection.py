"""Segmentation and detection: FCN, R-CNN, SPP-net, Fast/Faster R-CNN, YOLO v1 (issue 10).

Oracles: the papers' figures (FCN Table 1, YOLO Sec. 2, Faster R-CNN Sec. 3.3), VGG16's
fc6 size (torchvision vgg16 classifier.0: 25088 x 4096 + 4096), and torch itself
(tests/oracles.py: modules built on the meta device, FlopCounterMode, forward shapes).
"""

from __future__ import annotations

import json
import textwrap
from functools import cache
from pathlib import Path

import pytest
from oracles import torch_truth
from typer.testing import CliRunner

from cnnstat.analyzers.engine import analyze_graph, with_regions
from cnnstat.analyzers.ops import OPS
from cnnstat.analyzers.params import PARAMS
from cnnstat.analyzers.results import ModelReport
from cnnstat.analyzers.rf import RF
from cnnstat.analyzers.shapes import SHAPES
from cnnstat.builder.torch_module import BUILDERS
from cnnstat.cli import app
from cnnstat.errors import CnnstatError, SpecError, UsageError
from cnnstat.ir import Graph
from cnnstat.ir import layers as L
from cnnstat.spec import load_spec

SPECS = Path(__file__).resolve().parent.parent / "specs"
NEW_KINDS = (L.SpatialPyramidPool, L.RoIPool, L.RoIAlign, L.Crop)
FCNS = ("fcn32s", "fcn16s", "fcn8s")
VGG16_FC6_PARAMS = 25088 * 4096 + 4096  # torchvision vgg16 classifier.0 = 102,764,544


@cache
def graph(name: str) -> Graph:
    return load_spec(SPECS / f"{name}.yaml", shown_as=f"specs/{name}.yaml")


@cache
def report(name: str, input_shape: tuple[int, ...] | None = None) -> ModelReport:
    return analyze_graph(graph(name), input_shape)


def spec(tmp_path: Path, text: str) -> Graph:
    path = tmp_path / "net.yaml"
    path.write_text(textwrap.dedent(text))
    return load_spec(path)


# ---- FCN ------------------------------------------------------------------------------


def test_fcn32s_fc6_as_conv_holds_vgg16_fc6() -> None:
    """Catches a convolutionalized fc6 with the wrong kernel or padding: a 7x7 conv over
    pool5's 512 maps holds exactly VGG16's fc6 weights (7*7*512 = 25088 inputs)."""
    assert VGG16_FC6_PARAMS == 102_764_544
    assert report("fcn32s").layer("fc6").params == VGG16_FC6_PARAMS


def test_fcn32s_receptive_field_at_fc6_is_404() -> None:
    """FCN paper Table 1: FCN-VGG16's receptive field is 404 (max stride 32). Catches
    conv1_1's pad 100 or the ceil-mode pools changing the field (they must not)."""
    row = report("fcn32s").layer("fc6")
    assert row.rf["size"] == [404, 404]
    assert row.rf["stride"] == [32, 32]


@pytest.mark.parametrize("name", FCNS)
def test_fcn_500_input_gives_21_channel_score_map(name: str) -> None:
    """Catches wrong crop offsets or upsampling strides: the reference nets score every
    pixel of a 500x500 input (the paper's timing size) in 21 classes."""
    assert report(name).outputs == (("score", (1, 21, 500, 500)),)


@pytest.mark.parametrize("name", FCNS)
@pytest.mark.parametrize("size", [(1, 1), (32, 32), (224, 224), (333, 517), (1024, 768)])
def test_fcn_takes_any_input_size(name: str, size: tuple[int, int]) -> None:
    """Catches a missing pad 100 or floor-mode pools: with them, a crop window would not fit
    for some sizes; FCN scores an image of any size at its own resolution."""
    assert report(name, (3, *size)).outputs == (("score", (1, 21, *size)),)


def test_fcn32s_params_are_the_papers_134m() -> None:
    """FCN paper Table 1: FCN-VGG16 has 134M parameters. The learned ones (everything but
    upscore, fixed to bilinear interpolation in the reference net: lr_mult 0) round to it;
    catches a wrong fc6/fc7/score_fr size."""
    rep = report("fcn32s")
    learned = rep.totals.params - rep.layer("upscore").params
    assert round(learned / 1e6) == 134
    assert rep.layer("upscore").params == 64 * 64 * 21 * 21  # no bias


@pytest.mark.parametrize("name", FCNS)
def test_fcn_counts_and_shapes_equal_torch(name: str) -> None:
    """Catches any disagreement with torch on the crop, the transposed convs or the skip
    fusions, layer by layer, at an odd input size."""
    rep, truth = report(name, (3, 97, 131)), torch_truth(graph(name), (3, 97, 131))
    assert rep.totals.params == truth.params
    assert rep.totals.macs == truth.macs
    assert {r.name: r.output_shape for r in rep.layers} == truth.shapes


# ---- YOLO v1 --------------------------------------------------------------------------


def test_yolov1_output_is_7x7x30_at_448() -> None:
    """YOLO paper Sec. 2: "a 7 x 7 x 30 tensor" at 448x448, from 24 convolutional layers
    and 2 fully connected ones (Sec. 2.1)."""
    rep = report("yolov1")
    assert rep.input_shape == (1, 3, 448, 448)
    assert rep.outputs == (("detector.predictions", (1, 7, 7, 30)),)
    kinds = [r.kind for r in rep.layers]
    assert kinds.count("conv2d") == 24 and kinds.count("linear") == 2
    truth = torch_truth(graph("yolov1"))
    assert (rep.totals.params, rep.totals.macs) == (truth.params, truth.macs)


# ---- the R-CNN family: per-region cost ------------------------------------------------


def test_rcnn_per_image_is_2000_times_one_region() -> None:
    """R-CNN runs the whole CNN per warped region: per-image MACs equal 2000 x the MACs of
    the module torch builds for one region (AlexNet at 227 + the SVMs). Catches a
    multiplier applied twice, or not to every layer of the scope."""
    one_region = torch_truth(with_regions(graph("rcnn"), 1))
    rep = report("rcnn")
    assert rep.totals.macs == 2000 * one_region.macs
    assert all(r.regions == 2000 for r in rep.layers)
    assert rep.layer("per_region.features.conv1").output_shape == (2000, 96, 55, 55)


def test_fast_rcnn_is_backbone_once_plus_2000_heads() -> None:
    """Fast R-CNN runs VGG16's convs once and the head per region. From torch at 1 and 2
    regions: head = t(2) - t(1), backbone = t(1) - head; ours must equal backbone + 2000 x
    head, and its per-image params must not depend on the regions."""
    t1 = torch_truth(with_regions(graph("fast_rcnn"), 1))
    t2 = torch_truth(with_regions(graph("fast_rcnn"), 2))
    head_macs = t2.macs - t1.macs
    backbone_macs = t1.macs - head_macs
    rep = report("fast_rcnn")
    assert rep.totals.macs == backbone_macs + 2000 * head_macs
    assert rep.totals.params == t1.params == t2.params
    assert rep.layer("head.roi_pool5").output_shape == (2000, 512, 7, 7)
    assert rep.layer("features.block5.conv3").regions == 1
    assert rep.layer("head.fc6").regions == 2000


def test_sppnet_backbone_once_spp_per_window() -> None:
    """SPP-net: conv5 once per image, the 4-level pyramid (6x6+3x3+2x2+1x1 = 50 bins x 256
    maps = 12,800, He et al. Sec. 4) per window; counts equal torch's."""
    rep, truth = report("sppnet"), torch_truth(graph("sppnet"))
    assert rep.layer("head.spp5").output_shape == (2000, 12_800)
    assert rep.layer("features.conv5").regions == 1
    assert (rep.totals.params, rep.totals.macs) == (truth.params, truth.macs)
    assert {r.name: r.output_shape for r in rep.layers} == truth.shapes


def test_faster_rcnn_anchors_at_600x1000() -> None:
    """Faster R-CNN Sec. 3.3: "roughly 20000 (~60x40x9) anchors" for a 1000x600 image. The
    anchor count (rpn.cls_prob's last dimension) is conv5_3's H x W x 9 as torch computes
    it; the head runs on 300 proposals."""
    truth = torch_truth(graph("faster_rcnn"))
    _, _, h, w = truth.shapes["features.block5.conv3"]
    rep = report("faster_rcnn")
    anchors = rep.layer("rpn.cls_prob").output_shape[-1]
    assert anchors == h * w * 9
    assert 19_000 <= anchors <= 21_000
    assert rep.layer("head.cls_score").output_shape == (300, 21)
    assert rep.layer("head.bbox_pred").output_shape == (300, 84)
    assert (rep.totals.params, rep.totals.macs) == (truth.params, truth.macs)


def test_regions_override_is_linear() -> None:
    """Catches a --regions that misses a layer: MACs at R regions are affine in R."""
    macs = [analyze_graph(with_regions(graph("faster_rcnn"), r)).totals.macs
            for r in (1, 2, 4)]
    assert macs[2] - macs[1] == 2 * (macs[1] - macs[0]) > 0


def test_regions_override_needs_a_per_region_part() -> None:
    """Catches --regions silently ignored on a classification net."""
    with pytest.raises(UsageError, match="no per-region part"):
        with_regions(load_spec(SPECS / "vgg16.yaml"), 10)


# ---- every new kind: handlers and a torch cross-check -----------------------------------


def test_every_kind_has_every_handler() -> None:
    """Adding a kind must come with its shape, params, MACs, receptive-field and builder
    handlers (docs/architecture.md: no silent zeros)."""
    registries = {"shapes": SHAPES, "params": PARAMS, "ops": OPS, "rf": RF,
                  "builder": BUILDERS}
    missing = [(name, k.kind) for name, reg in registries.items()
               for k in L.ALL_KINDS if k is not L.Input and reg.get(k) is None]
    assert missing == []
    assert all(k in L.ALL_KINDS for k in NEW_KINDS)


KIND_SPECS = {
    "spp": """
        name: t
        input: [3, 13, 17]
        layers:
          - {conv: 8, k: 3}
          - {spp: [4, 2, 1]}
          - {fc: 10}
        """,
    "roi_pool": """
        name: t
        input: [3, 23, 19]
        layers:
          - {conv: 8, k: 3, s: 2}
          - regions: 5
            layers:
              - {roi_pool: [3, 2], spatial_scale: 0.5}
              - flatten
              - {fc: 6}
        """,
    "roi_align": """
        name: t
        input: [3, 20, 20]
        layers:
          - {conv: 4, k: 3}
          - regions: 3
            layers:
              - {roi_align: 5, sampling_ratio: 2}
              - {conv: 2, k: 3}
        """,
    "crop": """
        name: t
        input: [3, 21, 18]
        layers:
          - {conv: 4, k: 3, s: 2}
          - {deconv: 4, k: 4, s: 2, name: up}
          - {conv: 4, k: 3, from: input, name: ref}
          - {crop: [1, 2], from: [up, ref]}
          - {conv: 2, k: 1}
        """,
    "spp_per_window": """
        name: t
        input: [3, 16, 16]
        layers:
          - {conv: 8, k: 3}
          - regions: 7
            layers:
              - {spp: [2, 1]}
              - {fc: 3}
        """,
}


@pytest.mark.parametrize("case", sorted(KIND_SPECS))
def test_new_kind_counts_and_shapes_equal_torch(tmp_path: Path, case: str) -> None:
    """Catches a shape, params or MACs rule of a new kind (or the per-region multiplier)
    that disagrees with a real torch module, layer by layer."""
    g = spec(tmp_path, KIND_SPECS[case])
    rep, truth = analyze_graph(g), torch_truth(g)
    assert {r.name: r.output_shape for r in rep.layers} == truth.shapes
    assert rep.totals.params == truth.params
    assert rep.totals.macs == truth.macs > 0


def test_crop_shifts_the_receptive_field(tmp_path: Path) -> None:
    """Caffe crop takes units offset.. of its input: unit j's field is the input's unit
    j + offset, same size (catches a crop that moves nothing, or changes the size)."""
    from cnnstat.analyzers.engine import infer_shapes
    from cnnstat.analyzers.rf import receptive_fields

    g = spec(tmp_path, KIND_SPECS["crop"])
    fields, _ = receptive_fields(g, infer_shapes(g, g.meta.input))
    up, crop = fields["up"], fields["crop1"]
    assert crop.h.span(0) == up.h.span(1) and crop.w.span(0) == up.w.span(2)
    assert crop.size == up.size


def test_spp_other_ops_follow_adaptive_windows(tmp_path: Path) -> None:
    """An SPP level is an adaptive max pool: its compares equal the sum of the levels'
    adaptive pools (catches counting one op per bin instead of per window element)."""
    g = spec(tmp_path, KIND_SPECS["spp"])
    single = spec(tmp_path, KIND_SPECS["spp"].replace("{spp: [4, 2, 1]}",
                                                     "{adaptive_maxpool: 4}"))
    spp_ops = analyze_graph(g).layer("spp1").other_ops
    pool_ops = analyze_graph(single).layer("maxpool1").other_ops
    assert spp_ops > pool_ops > 0


# ---- spec language: backbone reuse and per-region scopes ---------------------------------


def test_backbone_reuse_keeps_names_and_counts() -> None:
    """Fast R-CNN inlines VGG16 up to conv5_3's ReLU: the same layer names and exactly
    VGG16's conv parameters (torch's count of the VGG16 module's `features`)."""
    vgg = torch_truth(load_spec(SPECS / "vgg16.yaml"))
    rep = report("fast_rcnn")
    conv_params = sum(r.params for r in rep.layers if r.name.startswith("features."))
    fc_params = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert conv_params == vgg.params - fc_params
    assert "features.block5.pool" not in {r.name for r in rep.layers}


BAD = {
    "unknown backbone": ("- {backbone: vgg61}", "vgg16"),
    "unknown until": ("- {backbone: vgg16, until: features.block9.pool}", "no layer"),
    "bad patch key": ("- {backbone: vgg16, until: features.block1.pool, "
                      "patch: {features.block1.conv1: {pad: 3}}}", "no key 'pad'"),
    "patch of no layer": ("- {backbone: vgg16, until: features.block1.pool, "
                          "patch: {features.block2.conv1: {p: 3}}}", "not an inlined layer"),
    "scope without entry": ("- {regions: 3, layers: [{conv: 4, k: 1}]}", "starts with"),
    "nested scopes": ("- {regions: 3, layers: [{roi_pool: 2}, {regions: 2, layers: "
                      "[{roi_pool: 1}]}]}", "do not nest"),
    "crop with one input": ("- {crop: 1}", "two inputs"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_detection_specs_fail_located(tmp_path: Path, case: str) -> None:
    """Each mistake fails with a SpecError that points at the spec line and says what is
    wrong (catches a traceback or an error without a location)."""
    entry, message = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\ninput: [3, 32, 32]\nlayers:\n  {entry}\n")
    with pytest.raises(SpecError, match=message) as info:
        load_spec(path)
    assert info.value.loc is not None and info.value.loc.line >= 1


# ---- the CLI ----------------------------------------------------------------------------


def test_cli_regions_show_per_region_cost() -> None:
    """`--regions` changes the count; the table shows the multiplier, the per-region MACs
    and the per-image total separately (issue 10, item 4)."""
    result = CliRunner().invoke(app, ["flops", "fast_rcnn", "--regions", "100", "--depth", "1"])
    assert result.exit_code == 0, result.output
    assert "x100" in result.stdout and "MACs / region" in result.stdout
    assert "Per region" in result.stdout and "Once per image" in result.stdout


def test_cli_proposals_and_json() -> None:
    """--proposals is --regions; JSON rows carry the multiplier and the per-region MACs."""
    result = CliRunner().invoke(app, ["flops", "faster_rcnn", "--proposals", "10", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)["layers"]}
    assert rows["head.fc6"]["regions"] == 10
    assert rows["head.fc6"]["macs"] == 10 * rows["head.fc6"]["macs_per_region"]
    assert "regions" not in rows["rpn.conv"]


def test_cli_regions_errors() -> None:
    """Disagreeing --regions/--proposals, or --regions on a net without regions, are usage
    errors, not silently ignored."""
    runner = CliRunner()
    clash = runner.invoke(app, ["flops", "rcnn", "--regions", "5", "--proposals", "6"])
    assert clash.exit_code != 0 and "disagree" in clash.stderr
    plain = runner.invoke(app, ["flops", "vgg16", "--regions", "5"])
    assert plain.exit_code != 0 and "per-region" in plain.stderr
    assert issubclass(UsageError, CnnstatError)


def test_compare_of_detectors_says_where_the_macs_are():
    """`compare` splits each detector into what runs once per image and what runs per
    region; the sums are those of the per-layer rows, and the Fast R-CNN head is
    VGG16's fc6 (the oracle above) on each of the 2000 vs 300 regions."""
    result = CliRunner().invoke(app, ["compare", "fast_rcnn", "faster_rcnn", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    lines = data["explanation"]
    assert lines[0] == "Where the MACs are (per image):"
    assert "Why fast_rcnn and faster_rcnn differ:" in lines
    for model, line in zip(data["models"], lines[1:3], strict=True):
        regions = max(row.get("regions", 1) for row in model["layers"])
        assert line.startswith(f"  {model['model']}: input ") and f"(x{regions} regions)" in line
    fc6 = next(r for r in data["models"][0]["layers"] if r["name"].endswith("fc6"))
    assert fc6["params"] == VGG16_FC6_PARAMS
    assert any(line.startswith("  per region:") and "x 2000 vs 300 regions" in line
               for line in lines)
    plain = CliRunner().invoke(app, ["compare", "resnet18", "vgg16", "--json"])
    assert "explanation" not in json.loads(plain.stdout)
