"""ShuffleNetV2 0.5x / 1.0x / 1.5x / 2.0x zoo specs against torchvision's published figures.

Oracle, not written here: torchvision 0.29.1's weight metadata
(`ShuffleNet_V2_X*_Weights.IMAGENET1K_V1.meta`): `num_params` exactly, `_ops` =
round(conv + linear MACs / 1e9, 3) at the 224 crop, `min_size` (1, 1). Read from
torchvision where it is installed, pinned here otherwise. tests/test_torchvision_twins.py
compares every layer with torchvision's module, at two input sizes.
"""

from __future__ import annotations

import pytest

import cnnstat
from cnnstat.analyzers.min_input import min_input_side
from cnnstat.resolver import aliases, load_zoo, resolve

# name: (weights enum, num_params, _ops GMACs, min_size) from torchvision 0.29.1.
TORCHVISION = {
    "shufflenet_v2_x0_5": ("ShuffleNet_V2_X0_5_Weights", 1_366_792, 0.04, 1),
    "shufflenet_v2_x1_0": ("ShuffleNet_V2_X1_0_Weights", 2_278_604, 0.145, 1),
    "shufflenet_v2_x1_5": ("ShuffleNet_V2_X1_5_Weights", 3_503_624, 0.296, 1),
    "shufflenet_v2_x2_0": ("ShuffleNet_V2_X2_0_Weights", 7_393_996, 0.583, 1),
}


@pytest.mark.parametrize("name", TORCHVISION)
def test_params_macs_and_min_input_equal_the_published_figures(name):
    """Catches a wrong width (params), stride or depth (MACs at 224) and a pool or stride
    that refuses torchvision's smallest input."""
    _, params, gmacs, min_size = TORCHVISION[name]
    report = cnnstat.analyze(name)
    assert tuple(report.input_shape) == (1, 3, 224, 224)
    assert report.totals.params == params
    assert round(report.totals.macs / 1e9, 3) == gmacs
    assert min_input_side(load_zoo(name)) == min_size


@pytest.mark.oracle
@pytest.mark.parametrize("name", TORCHVISION)
def test_the_pinned_figures_are_torchvisions_metadata(name):
    models = pytest.importorskip("torchvision.models")
    enum, params, gmacs, min_size = TORCHVISION[name]
    meta = getattr(models, enum).IMAGENET1K_V1.meta
    assert (meta["num_params"], meta["_ops"], meta["min_size"]) == (params, gmacs,
                                                                     (min_size, min_size))


def test_the_stride_1_units_chunk_their_input_and_the_first_units_do_not():
    """torchvision's InvertedResidual: x.chunk(2, dim=1) only when the stride is 1."""
    graph = load_zoo("shufflenet_v2_x1_0")
    chunks = [n.name for n in graph if n.kind == "chunk"]
    assert len(chunks) == 2 * (3 + 7 + 3)
    assert "net.stage2.0.x.0" not in chunks and "net.stage2.1.x.1" in chunks
    assert graph.node("net.stage2.1.branch2.0").inputs == ("net.stage2.1.x.1",)
    assert graph.node("net.stage2.0.branch2.0").inputs == ("net.maxpool",)


def test_the_shufflenet_family_alias_picks_1_0x():
    assert aliases()["shufflenet"] == "shufflenet_v2_x1_0"
    assert resolve("shufflenet").graph.meta.name == "shufflenet_v2_x1_0"
