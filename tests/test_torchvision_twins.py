"""Zoo specs that say `follows: torchvision` against the torchvision model they copy.

The oracle is torchvision's own module (weights=None, built on the meta device, so nothing
is downloaded or allocated): its parameters(), FlopCounterMode MACs in eval mode, and the
output shape of every Conv2d and Linear in forward order. Our side is the analyzers' report
for the spec; the conv/linear layers are compared in graph order, so a spec that reorders
layers (or drops one and adds another of the same size) fails too.

Marked `oracle`: it needs torchvision, so it runs in CI's second stage (docs/testing.md).
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import torch
from oracles import EVERY_OUTPUT_RUNS, eval_path
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers.engine import analyze_graph
from cnnstat.analyzers.results import ModelReport
from cnnstat.ir import Graph
from cnnstat.spec import load_spec

pytestmark = pytest.mark.oracle

SPECS = Path(__file__).resolve().parents[1] / "specs"

# zoo spec -> torchvision.models builder
TWINS = {
    "alexnet": "alexnet",
    **{f"vgg{d}{bn}": f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")},
    "squeezenet1_0": "squeezenet1_0",
    "squeezenet1_1": "squeezenet1_1",
    "googlenet": "googlenet",
    "inception_v3": "inception_v3",
    **{f"resnet{d}": f"resnet{d}" for d in (18, 34, 50, 101, 152)},
    "resnext50_32x4d": "resnext50_32x4d",
    **{f"densenet{d}": f"densenet{d}" for d in (121, 161, 169, 201)},
    "mobilenet_v2": "mobilenet_v2",
    "mobilenet_v3_large": "mobilenet_v3_large",
    "mobilenet_v3_small": "mobilenet_v3_small",
    "lraspp_mobilenet_v3_large": "lraspp_mobilenet_v3_large",
    **{f"efficientnet_b{i}": f"efficientnet_b{i}" for i in range(8)},
    **{f"efficientnet_v2_{v}": f"efficientnet_v2_{v}" for v in "sml"},
    **{n: n for n in ("wide_resnet50_2", "wide_resnet101_2", "resnext101_32x8d",
                      "resnext101_64x4d", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0",
                      "mnasnet1_3")},
    **{f"regnet_{f}_{s}": f"regnet_{f}_{s}" for f in "xy"
       for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")},
    "regnet_y_128gf": "regnet_y_128gf",
    **{f"convnext_{s}": f"convnext_{s}" for s in ("tiny", "small", "base", "large")},
    **{f"{h}_resnet{d}": f"{h}_resnet{d}" for h in ("fcn", "deeplabv3") for d in (50, 101)},
    **{f"shufflenet_v2_{w}": f"shufflenet_v2_{w}" for w in ("x0_5", "x1_0", "x1_5", "x2_0")},
}
# init_weights=False: skip scipy truncnorm init (pointless on meta). GoogLeNet without aux
# heads is what torchvision publishes (num_params 6624904); Inception v3 keeps AuxLogits,
# whose params torchvision's num_params includes although eval mode never runs it.
BUILD_KWARGS = {
    "googlenet": {"aux_logits": False, "init_weights": False},
    "inception_v3": {"aux_logits": True, "init_weights": False},
    "lraspp_mobilenet_v3_large": {"weights_backbone": None},  # its default would download
    # the COCO_WITH_VOC_LABELS_V1 weights (and their num_params, _ops) have the aux head
    **{n: {"weights_backbone": None, "aux_loss": True} for n in EVERY_OUTPUT_RUNS},
}
AUX_MODULES = {"googlenet": ("aux1", "aux2"), "inception_v3": ("AuxLogits",)}
# torchvision measured _ops at the weights' crop size, 224 else
INPUT_SIZE = {"inception_v3": 299, "efficientnet_b1": 240, "efficientnet_b2": 288,
              "efficientnet_b3": 300, "efficientnet_b4": 380, "efficientnet_b5": 456,
              "efficientnet_b6": 528, "efficientnet_b7": 600, "efficientnet_v2_s": 384,
              "efficientnet_v2_m": 480, "efficientnet_v2_l": 480,
              "regnet_y_128gf": 384,  # RegNet_Y_128GF_Weights (SWAG): crop 384
              "lraspp_mobilenet_v3_large": 520,  # its weights' transforms resize to 520
              **{n: 520 for n in EVERY_OUTPUT_RUNS}}
SLOW = {"inception_v3", "resnet101", "resnet152", "densenet121", "densenet161", "densenet169",
        "densenet201", "wide_resnet101_2", "resnext101_32x8d", "resnext101_64x4d",
        *(f"efficientnet_b{i}" for i in range(3, 8)), "efficientnet_v2_m", "efficientnet_v2_l",
        "fcn_resnet101", "deeplabv3_resnet101"}


# A second, odd input for the specs written by hand from docs/spec.md (issue: modern kinds):
# floor/ceil of every stride and the global pools' windows must follow torch there too.
SECOND_SIZE = {"convnext_tiny": 199, "mobilenet_v3_large": 199,
               **{f"shufflenet_v2_{w}": 193 for w in ("x0_5", "x1_0", "x1_5", "x2_0")}}

CASES = [pytest.param(name, INPUT_SIZE.get(name, 224),
                      marks=[pytest.mark.slow] if name in SLOW else [], id=name)
         for name in TWINS]
CASES += [pytest.param(name, size, id=f"{name}@{size}") for name, size in SECOND_SIZE.items()
          if name in TWINS]


def widths_on_cpu(torchvision):
    """RegNet's builders derive their widths with torch.arange(...).tolist(), which has no
    data on the meta device: run that derivation on the CPU, the modules stay on meta."""
    block_params = torchvision.models.regnet.BlockParams
    derive = block_params.from_init_params.__func__

    def on_cpu(cls, *args, **kwargs):
        with torch.device("cpu"):
            return derive(cls, *args, **kwargs)
    return mock.patch.object(block_params, "from_init_params", classmethod(on_cpu))


class TorchvisionTwin:
    """Torchvision's counts and conv/linear output shapes for one builder, in eval mode."""

    def __init__(self, builder: str, size: int):
        torchvision = pytest.importorskip("torchvision")
        with torch.device("meta"), widths_on_cpu(torchvision):
            # get_model finds the segmentation builders too (not attributes of models)
            model = torchvision.models.get_model(
                builder, weights=None, **BUILD_KWARGS.get(builder, {}))
        model.eval()
        aux = AUX_MODULES.get(builder, ())
        self.params = sum(p.numel() for p in model.parameters())
        self.main_params = sum(p.numel() for n, p in model.named_parameters()
                               if n.split(".")[0] not in aux)
        self.has_aux = self.params != self.main_params
        self.shapes: list[tuple[int, ...]] = []
        hooks = [m.register_forward_hook(self._record) for m in model.modules()
                 if isinstance(m, nn.Conv2d | nn.Linear)]
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
        for hook in hooks:
            hook.remove()
        self.macs = counter.get_total_flops() // 2

    def _record(self, _module, _inputs, out) -> None:
        self.shapes.append(tuple(out.shape))


def our_side(name: str, size: int) -> tuple[Graph, ModelReport]:
    path = SPECS / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"specs/{name}.yaml is not written yet")
    graph = load_spec(path, shown_as=f"specs/{name}.yaml")
    if graph.meta.follows != "torchvision":
        pytest.skip(f"specs/{name}.yaml does not say follows: torchvision")
    return graph, analyze_graph(graph, (3, size, size))


@pytest.mark.parametrize(("name", "size"), CASES)
def test_spec_twins_torchvision(name, size):
    """Catches any drift from the torchvision model a spec copies: a wrong width or kernel
    (params), a wrong stride or padding (MACs and shapes), layers out of torchvision's order
    (the conv/linear shape sequence). Aux classifiers that eval mode skips are compared by
    params only, and only when both sides have them."""
    graph, report = our_side(name, size)
    twin = TorchvisionTwin(TWINS[name], size)
    main = eval_path(graph, name in EVERY_OUTPUT_RUNS)
    rows = [row for row in report.layers if row.name in main]
    assert sum(row.params or 0 for row in rows) == twin.main_params, "params on the eval path"
    if twin.has_aux and len(main) < len(graph.nodes):
        assert report.totals.params == twin.params, "params with the aux classifier"
    assert sum(row.macs or 0 for row in rows) == twin.macs, "MACs in eval mode"
    ours = [row.output_shape for row in rows if row.kind in ("conv2d", "linear")]
    assert ours == twin.shapes, "conv/linear output shapes in forward order"

