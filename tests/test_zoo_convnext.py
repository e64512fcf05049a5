"""The ConvNeXt zoo specs (tiny, small, base, large) against torchvision 0.29.1's weight
metadata, not written here: `ConvNeXt_<Size>_Weights.IMAGENET1K_V1.meta` read with
`torchvision.models.get_model_weights("convnext_<size>").DEFAULT` — `num_params` exactly,
`_ops` = round(conv + linear MACs / 1e9, 3) at the weights' crop (224, its
`.transforms().crop_size`), and `min_size` (32, 32). tests/test_torchvision_twins.py
compares every conv and linear with torchvision's module; this file needs no torch.
"""

from __future__ import annotations

from functools import cache

import pytest

import cnnstat
from cnnstat.analyzers import ModelReport
from cnnstat.analyzers.min_input import min_input_side
from cnnstat.resolver import load_zoo

# name: (num_params, _ops GMACs) from torchvision 0.29.1; crop 224, min_size 32 for all.
TORCHVISION = {
    "convnext_tiny": (28_589_128, 4.456),
    "convnext_small": (50_223_688, 8.684),
    "convnext_base": (88_591_464, 15.355),
    "convnext_large": (197_767_336, 34.361),
}


@cache
def report(name: str) -> ModelReport:
    return cnnstat.analyze(name)


@pytest.mark.parametrize("name", TORCHVISION)
def test_params_and_macs_equal_torchvision_metadata(name):
    """num_params catches a wrong width or a missing layer scale / norm; _ops a wrong depth,
    kernel or stride, or a linear not applied per position."""
    params, gmacs = TORCHVISION[name]
    rep = report(name)
    assert tuple(rep.input_shape) == (1, 3, 224, 224)
    assert rep.totals.params == params
    assert round(rep.totals.macs / 1e9, 3) == gmacs


@pytest.mark.parametrize("name", TORCHVISION)
def test_min_input_equals_torchvision_min_size(name):
    """The 4x4/4 stem and three 2x2/2 downsamples need 32 px, torchvision's min_size."""
    assert min_input_side(load_zoo(name)) == 32


def test_the_block_field_is_the_convolutions_not_global():
    """The MLP runs per position between its permutes, so after the first block the field
    is the stem's 4 px grown by the 7x7 depthwise conv at jump 4 (Araujo et al.'s
    r + (k - 1) * j = 4 + 6 * 4), not global and not unknown."""
    rep = report("convnext_tiny")
    rows = {row.name: row for row in rep.layers}
    stem, first = rows["features.0.conv1"], rows["features.1.cnblock1.add1"]
    assert stem.rf is not None and first.rf is not None
    assert first.rf["size"] == [28, 28] and first.rf["global"] is False
