"""The RegNet zoo specs (torchvision's regnet_x_* and regnet_y_*) against torchvision's
published weight metadata (torchvision 0.29.1, torchvision/models/regnet.py, the
IMAGENET1K_V1 / IMAGENET1K_SWAG_E2E_V1 `meta` of each *_Weights enum): num_params, `_ops`
(GMACs of conv + linear at the weights' crop, round(x, 3)) and min_size (1x1).
The layer-by-layer comparison with torchvision's modules is tests/test_torchvision_twins.py.
"""

from __future__ import annotations

from functools import cache

import pytest

import cnnstat
from cnnstat.analyzers import ModelReport
from cnnstat.analyzers.min_input import min_input_side
from cnnstat.resolver import load_zoo

# name: (num_params, _ops in GMACs, crop side)
TORCHVISION = {
    "regnet_x_400mf": (5_495_976, 0.414, 224),
    "regnet_x_800mf": (7_259_656, 0.8, 224),
    "regnet_x_1_6gf": (9_190_136, 1.603, 224),
    "regnet_x_3_2gf": (15_296_552, 3.177, 224),
    "regnet_x_8gf": (39_572_648, 7.995, 224),
    "regnet_x_16gf": (54_278_536, 15.941, 224),
    "regnet_x_32gf": (107_811_560, 31.736, 224),
    "regnet_y_400mf": (4_344_144, 0.402, 224),
    "regnet_y_800mf": (6_432_512, 0.834, 224),
    "regnet_y_1_6gf": (11_202_430, 1.612, 224),
    "regnet_y_3_2gf": (19_436_338, 3.176, 224),
    "regnet_y_8gf": (39_381_472, 8.473, 224),
    "regnet_y_16gf": (83_590_140, 15.912, 224),
    "regnet_y_32gf": (145_046_770, 32.28, 224),
    # RegNet_Y_128GF_Weights has only SWAG weights, evaluated at a 384 crop
    "regnet_y_128gf": (644_812_894, 374.57, 384),
}


@cache
def report(name: str) -> ModelReport:
    side = TORCHVISION[name][2]
    return cnnstat.analyze(name, (3, side, side))


@pytest.mark.parametrize("name", TORCHVISION)
def test_params_equal_torchvision_published(name):
    """A wrong stage width, group count or SE squeeze width changes the count."""
    assert report(name).totals.params == TORCHVISION[name][0]


@pytest.mark.parametrize("name", TORCHVISION)
def test_macs_equal_torchvision_published_after_its_rounding(name):
    """Catches a stride on the wrong conv or a missing stage block (SE's 1x1 convs count)."""
    assert round(report(name).totals.macs / 1e9, 3) == TORCHVISION[name][1]


@pytest.mark.parametrize("name", TORCHVISION)
def test_min_input_equals_torchvision_min_size(name):
    assert min_input_side(load_zoo(name)) == 1
