"""torchvision's 12 detection models and RAFT through the torch frontend (docs/detection.md,
"Detectors from torchvision").

Oracles, all computed here from torch, never from cnnstat's output:
- params: `sum(p.numel() for p in model.parameters())` of the model torchvision builds;
- the size the backbone sees: a forward pre-hook on `model.backbone` in a real forward;
- MACs per stage: `FlopCounterMode`'s per-module FLOPs / 2 of a real eval forward
  (`model([image])`, random weights and image, on CPU) for the modules of each stage
  (`backbone.body`, `backbone.fpn`, `rpn`, `roi_heads`; `head` for dense detectors);
- region counts: forward hooks on the RoI pools count the boxes torch actually pooled.

The real forwards run small: the R-CNN family, RetinaNet and FCOS are built with
min_size = max_size = 128 (the transform then resizes the 160x120 image to 128x96), and
the R-CNN family with 50 proposals and 20 detections (`box_score_thresh` 0 so torch keeps
them all); SSD300 and SSDlite320 take their fixed sizes. The defaults (800 px, 1000
proposals, 100 detections) are checked on the meta device.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.oracle

DETECTORS = (
    "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn", "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2",
    "keypointrcnn_resnet50_fpn", "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large",
)
IMAGE = (3, 160, 120)
SMALL = {"min_size": 128, "max_size": 128}
REGIONS = {"rpn_post_nms_top_n_test": 50, "box_detections_per_img": 20,
           "box_score_thresh": 0.0}


def small_kwargs(name: str) -> dict:
    if name.startswith("ssd"):
        return {}
    return {**SMALL, **(REGIONS if "rcnn" in name else {})}


def cli(*args: str):
    from cnnstat.cli import app

    return CliRunner().invoke(app, list(args))


def real_forward(model, image):
    """FlopCounterMode per module, the backbone's input shape and the boxes each RoI pool
    took, from one eval forward."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    seen, pooled, handles = {}, {}, []

    def backbone_input(_module, args) -> None:
        seen.setdefault("shape", tuple(args[0].shape))

    handles.append(model.backbone.register_forward_pre_hook(backbone_input))
    def boxes(module, args, _out) -> None:
        pooled.setdefault(module.cnnstat_test_name, sum(len(b) for b in args[1]))

    for pool in ("box_roi_pool", "mask_roi_pool", "keypoint_roi_pool"):
        module = getattr(getattr(model, "roi_heads", None), pool, None)
        if module is not None:
            module.cnnstat_test_name = pool
            handles.append(module.register_forward_hook(boxes))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model([image])
    for handle in handles:
        handle.remove()
    flops = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return flops, seen["shape"], pooled


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_params_and_macs_per_stage_equal_torch(name):
    tvm = pytest.importorskip("torchvision.models")
    import torch

    from cnnstat.analyzers import analyze_graph
    from cnnstat.frontends import resolve_reference

    kwargs = small_kwargs(name)
    torch.manual_seed(0)
    model = tvm.get_model(name, weights=None, weights_backbone=None, **kwargs).eval()
    flops, seen, pooled = real_forward(model, torch.rand(IMAGE))
    resolved = resolve_reference(f"torchvision:{name}", input="x".join(map(str, IMAGE)),
                                 kwargs=kwargs)
    report = analyze_graph(resolved.graph)
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.input_shape == seen  # the size the backbone saw in torch's forward
    root = type(model).__name__
    stages = report.stages()
    assert {s["name"] for s in stages} == {label for label, _ in resolved.graph.meta.stages}
    for stage in stages:
        assert 2 * stage["macs"] == flops.get(f"{root}.{stage['prefix']}", 0), stage["name"]
    assert report.totals.flops == flops["Global"]
    regions = {row.name.rsplit(".", 1)[-1]: row.regions for row in report.layers
               if row.kind == "roi_align"}
    assert regions == pooled
    if "rcnn" in name:
        assert pooled["box_roi_pool"] == 50
        assert all(pooled[p] == 20 for p in pooled if p != "box_roi_pool")


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_defaults_on_meta(name):
    """Default image, the model's own proposal and detection counts, params exact; the
    CLI exits 0 and says which size the backbone saw."""
    tvm = pytest.importorskip("torchvision.models")
    import torch

    with torch.device("meta"):
        model = tvm.get_model(name, weights=None, weights_backbone=None).eval()
    result = cli("params", f"torchvision:{name}", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["totals"]["params"] == sum(p.numel() for p in model.parameters())
    expected = {"ssd300_vgg16": 300, "ssdlite320_mobilenet_v3_large": 320,
                "fasterrcnn_mobilenet_v3_large_320_fpn": 320}.get(name, 800)
    assert report["input_shape"] == [1, 3, expected, expected]
    notes = [n["message"] for n in report["notes"]]
    assert any(f"3x{expected}x{expected} input" in n for n in notes)
    regions = {row["name"].rsplit(".", 1)[-1]: row["regions"] for row in report["layers"]
               if row["kind"] == "roi_align"}
    if "rcnn" in name:
        assert regions.pop("box_roi_pool") == model.rpn._post_nms_top_n["testing"]
        assert set(regions.values()) <= {model.roi_heads.detections_per_img}
    else:
        assert not regions
    assert sum(s["macs"] for s in report["stages"]) == report["totals"]["macs"]


@pytest.mark.parametrize(("name", "image", "backbone"), [
    ("fasterrcnn_resnet50_fpn", "3x800x800", [1, 3, 800, 800]),
    ("fasterrcnn_resnet50_fpn", "3x480x640", [1, 3, 800, 1088]),  # 800 / 480, padded to 32
    ("fasterrcnn_mobilenet_v3_large_320_fpn", "3x800x800", [1, 3, 320, 320]),
    ("ssd300_vgg16", "3x480x640", [1, 3, 300, 300]),
])
def test_the_backbone_input_follows_the_models_transform(name, image, backbone):
    pytest.importorskip("torchvision.models")
    result = cli("flops", f"torchvision:{name}", "--input", image, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["input_shape"] == backbone


def test_regions_sets_the_proposals_and_says_so():
    pytest.importorskip("torchvision.models")
    result = cli("flops", "torchvision:maskrcnn_resnet50_fpn", "--regions", "300", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {row["name"]: row for row in report["layers"]}
    assert rows["roi_heads.box_roi_pool"]["regions"] == 300
    assert rows["roi_heads.mask_roi_pool"]["regions"] == 100  # detections_per_img
    assert rows["roi_heads.box_head.fc6"]["macs"] == 300 * 256 * 7 * 7 * 1024
    assert any("300 proposals (--regions)" in n["message"] for n in report["notes"])
    refused = cli("params", "torchvision:resnet18", "--regions", "3")
    assert refused.exit_code == 2


@pytest.mark.parametrize("name", ["raft_small", "raft_large"])
def test_raft_takes_two_frames(name):
    """Two --input, one per frame; params and MACs equal torch's on a real forward."""
    tvm = pytest.importorskip("torchvision.models")
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from cnnstat.analyzers import analyze_graph
    from cnnstat.frontends import resolve_reference

    model = tvm.get_model(name, weights=None).eval()
    frames = torch.rand(1, 3, 128, 128), torch.rand(1, 3, 128, 128)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*frames)
    resolved = resolve_reference(f"torchvision:{name}", input=["3x128x128", "3x128x128"])
    report = analyze_graph(resolved.graph)
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.totals.macs == counter.get_total_flops() // 2
    assert any("image2 3x128x128" in d for d in resolved.diagnostics)


def test_raft_cli_defaults_to_one_size_for_both_frames():
    pytest.importorskip("torchvision.models")
    result = cli("params", "torchvision:raft_small", "--json")
    assert result.exit_code == 0, result.output
    notes = [n["message"] for n in json.loads(result.stdout)["notes"]]
    assert any("image1 3x224x224, image2 3x224x224" in n for n in notes)


def test_compare_explains_the_fpn_detector_against_the_2015_spec():
    """Exit 0 (no column fails on the traced graph's min input), the lines name each
    model's parts with the regions they run on, and the explanation's once-per-image and
    per-region sums are the reports' own rows."""
    pytest.importorskip("torchvision.models")
    result = cli("compare", "torchvision:fasterrcnn_resnet50_fpn", "faster_rcnn", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    lines = data["explanation"]
    assert lines[0] == "Where the MACs are (per image):"
    assert "input 3x800x800; backbone" in lines[1] and "(x1000 regions)" in lines[1]
    assert "input 3x600x1000; features" in lines[2] and "(x300 regions)" in lines[2]
    assert any(line.startswith("  per region:") and "x 1000 vs 300 regions" in line
               for line in lines)
    torchvision_model = data["models"][0]
    assert [s["name"] for s in torchvision_model["stages"]] == [
        "backbone", "FPN", "RPN", "RoI heads"]
    table = cli("compare", "torchvision:fasterrcnn_resnet50_fpn", "faster_rcnn")
    assert table.exit_code == 0 and "Why fasterrcnn_resnet50_fpn and faster_rcnn differ" in \
        table.stdout


# torchvision's published `_ops` (GFLOPS there are multiply-adds) where its measurement
# ran the same network: every head on its full count. The MobileNet R-CNNs (rpn_score_thresh
# 0.05) were measured with no proposal passing: their `_ops` are the stages before the
# RoI heads (docs/detection.md).
PUBLISHED_WHOLE = ("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2",
                   "maskrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn",
                   "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn", "ssd300_vgg16",
                   "ssdlite320_mobilenet_v3_large")
PUBLISHED_BEFORE_ROI = ("fasterrcnn_mobilenet_v3_large_fpn",
                        "fasterrcnn_mobilenet_v3_large_320_fpn")


@pytest.mark.parametrize("name", PUBLISHED_WHOLE + PUBLISHED_BEFORE_ROI)
def test_default_macs_match_torchvisions_published_ops(name):
    tvm = pytest.importorskip("torchvision.models")
    published = tvm.get_model_weights(name).DEFAULT.meta["_ops"]
    result = cli("flops", f"torchvision:{name}", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    macs = report["totals"]["macs"] if name in PUBLISHED_WHOLE else sum(
        s["macs"] for s in report["stages"] if s["name"] != "RoI heads")
    assert round(macs / 1e9, 3) == pytest.approx(published, abs=0.0011)


def test_an_image_the_transform_refuses_is_a_clear_error():
    """Not a traceback and not exit 70: the transform's own complaint, exit 3."""
    pytest.importorskip("torchvision.models")
    result = cli("params", "torchvision:fasterrcnn_resnet50_fpn", "--input", "4x64x64")
    assert result.exit_code == 3
    assert "the model's transform refused a 4x64x64 image" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["rf", "savings", "compare", "export"])
def test_every_command_analyzes_a_detector_at_its_backbone_input(command, tmp_path):
    """The graph was traced at what the transform made of --input (ssdlite: 320x320 from
    a 480x640 image); no command analyzes it again at the image size."""
    pytest.importorskip("torchvision.models")
    model = "torchvision:ssdlite320_mobilenet_v3_large"
    extra = {"compare": [model, "torchvision:resnet18"], "export": [model, "-o",
                                                                   str(tmp_path / "s.yaml")]}
    result = cli(command, *extra.get(command, [model]), "--input", "3x480x640",
                 *(["--json"] if command in ("rf", "compare") else []))
    assert result.exit_code == 0, result.output
    if command == "rf":
        assert json.loads(result.stdout)["input_shape"] == [1, 3, 320, 320]
    if command == "compare":
        assert json.loads(result.stdout)["models"][0]["input_shape"] == [1, 3, 320, 320]
    if command == "export":
        assert "input: [3, 320, 320]" in (tmp_path / "s.yaml").read_text()
