"""Video models from the CLI (issue #19 item 4): the default clip is 3 x 16 frames at the
crop of the weights' transforms, `--input` takes CxTxHxW. Oracles: torchvision's published
`num_params` and `_ops` (GFLOPS there are multiply-adds, measured at 16 frames) and
FlopCounterMode on the meta device."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.oracle


def cli(*args: str):
    from cnnstat.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18", "s3d"])
def test_default_clip_matches_published_counts(name):
    tvm = pytest.importorskip("torchvision.models")
    meta = tvm.get_model_weights(name).DEFAULT.meta
    result = cli("flops", f"torchvision:{name}", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    crop = tvm.get_model_weights(name).DEFAULT.transforms.keywords["crop_size"][0]
    assert report["input_shape"] == [1, 3, 16, crop, crop]
    assert report["totals"]["params"] == meta["num_params"]
    assert round(report["totals"]["macs"] / 1e9, 3) == pytest.approx(meta["_ops"], abs=0.001)
    assert any("x 3x16x" in n["message"] for n in report["notes"])  # says which input


def test_clip_from_the_command_line_equals_torch():
    tvm = pytest.importorskip("torchvision.models")
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = tvm.get_model("r3d_18", weights=None).eval()
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, 8, 64, 64))
    result = cli("flops", "torchvision:r3d_18", "--input", "3x8x64x64", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["input_shape"] == [1, 3, 8, 64, 64]
    assert report["totals"]["macs"] == counter.get_total_flops() // 2
