"""DeepLabV3-ResNet50 written by hand in the spec language
(tests/specs/deeplabv3_resnet50.yaml): dilated backbone, ASPP whose pooling branch is
resized to the size of the feature map, output resized to the size of the input."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnstat.analyzers import analyze_graph
from cnnstat.spec import load_spec

SPEC = Path(__file__).parent / "specs" / "deeplabv3_resnet50.yaml"

# torchvision's DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1.meta (docs table):
# num_params 42,004,074 and _ops 178.722 GFLOPS (their GFLOPS are multiply-adds), at
# 520 x 520, both with the auxiliary FCNHead on layer3 that aux_loss=False leaves out.
TORCHVISION_PARAMS = 42_004_074
TORCHVISION_GMACS = 178.722


def aux_head(h: int, w: int) -> tuple[int, int]:
    """(params, MACs) of torchvision's FCNHead(1024, 21) on layer3's 1024 x h x w map:
    3x3 conv to 256 (no bias), BN, ReLU, dropout, 1x1 conv to 21 (bias)."""
    params = 1024 * 256 * 9 + 2 * 256 + 256 * 21 + 21
    macs = h * w * (1024 * 256 * 9 + 256 * 21)
    return params, macs


def test_deeplabv3_matches_torchvisions_published_figures() -> None:
    report = analyze_graph(load_spec(SPEC))
    feature = report.layer("backbone.layer3.5.relu").output_shape
    aux_params, aux_macs = aux_head(*feature[2:])
    assert report.totals.params + aux_params == TORCHVISION_PARAMS
    assert round((report.totals.macs + aux_macs) / 1e9, 3) == TORCHVISION_GMACS


@pytest.mark.parametrize("h, w", [(520, 520), (333, 250)])
def test_deeplabv3_output_is_the_input_size_at_every_input(h: int, w: int) -> None:
    report = analyze_graph(load_spec(SPEC), (3, h, w))
    stride8 = (-(-h // 8), -(-w // 8))
    assert tuple(report.layer("backbone.layer4.2.relu").output_shape) == (1, 2048, *stride8)
    assert tuple(report.layer("classifier.0.convs.4.interpolate").output_shape) == \
        (1, 256, *stride8)
    assert tuple(report.layers[-1].output_shape) == (1, 21, h, w)


@pytest.mark.oracle
@pytest.mark.parametrize("h, w", [(520, 520), (333, 250)])
def test_deeplabv3_equals_torchvision(h: int, w: int) -> None:
    """Oracle: torchvision's module on the meta device: parameters, FlopCounterMode / 2,
    and the output shape of every module our nodes are named after."""
    torch = pytest.importorskip("torch")
    segmentation = pytest.importorskip("torchvision.models.segmentation")
    from torch.utils.flop_counter import FlopCounterMode

    report = analyze_graph(load_spec(SPEC), (3, h, w))
    with torch.device("meta"):
        model = segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None,
                                                aux_loss=False).eval()
        x = torch.empty(1, 3, h, w)
    seen: dict[str, tuple[int, ...]] = {}

    def keep_first_shape(path: str):
        # a forward hook that returns a value replaces the module's output: return None
        def hook(module, inputs, output) -> None:
            seen.setdefault(path, tuple(output.shape))
        return hook

    for path, module in model.named_modules():
        if path and not list(module.children()):
            module.register_forward_hook(keep_first_shape(path))
    with FlopCounterMode(display=False) as flops:
        out = model(x)["out"]
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.totals.macs == flops.get_total_flops() // 2
    # our bottleneck keeps its main path under `residual`; torchvision calls one ReLU
    # module three times per bottleneck (the hook sees the first call), so those are left out
    ours = {layer.name.replace(".residual.", "."): tuple(layer.output_shape)
            for layer in report.layers}
    shared = {p for p in seen.keys() & ours.keys()
              if not (p.startswith("backbone.layer") and p.endswith(".relu"))}
    # every leaf module torchvision runs has a node of the same path
    assert not seen.keys() - ours.keys(), sorted(seen.keys() - ours.keys())[:10]
    assert len(shared) > 100
    assert {p: ours[p] for p in shared} == {p: seen[p] for p in shared}
    assert ours["out"] == tuple(out.shape)


@pytest.mark.parametrize("h, w", [(520, 520), (333, 250)])
def test_deeplabv3_counts_what_torch_counts_on_its_module(h: int, w: int) -> None:
    """Torch's own counts and shapes on the module built from the spec: the resize to
    another tensor's size runs as F.interpolate(x, size=ref.shape[-2:])."""
    pytest.importorskip("torch")
    from oracles import torch_truth

    graph = load_spec(SPEC)
    report = analyze_graph(graph, (3, h, w))
    truth = torch_truth(graph, (3, h, w))
    assert (report.totals.params, report.totals.macs) == (truth.params, truth.macs)
    ours = {layer.name: tuple(layer.output_shape) for layer in report.layers}
    assert {n: ours[n] for n in truth.shapes} == truth.shapes


@pytest.mark.parametrize("spec", ["deeplabv3_resnet50", "unet_2015"])
def test_sized_specs_export_and_load_back(spec: str) -> None:
    """The writer writes sizes taken from another tensor so they load back equal (it
    verifies the round trip itself and raises if the graphs differ)."""
    from cnnstat.writer import spec_from_graph

    text = spec_from_graph(load_spec(SPEC.parent / f"{spec}.yaml")).text
    assert ("like: true" in text) == (spec == "deeplabv3_resnet50")
    assert ("center: true" in text) == (spec == "unet_2015")
