"""`summary`'s memory estimate against torchinfo, the tool whose names it borrows.

The oracle is torchinfo's own ModelStatistics on torchvision's ResNet-50 (weights=None),
the model the zoo spec resnet50 follows: input size, forward/backward pass size, params
size, estimated total and the trainable split, in bytes.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cnnstat.cli import app


@pytest.mark.oracle
def test_summary_memory_equals_torchinfo_on_resnet50():
    tvm = pytest.importorskip("torchvision.models")
    torchinfo = pytest.importorskip("torchinfo")

    stats = torchinfo.summary(tvm.resnet50(weights=None), input_size=(1, 3, 224, 224),
                              verbose=0)
    result = CliRunner().invoke(app, ["summary", "resnet50", "--json"])
    m = json.loads(result.stdout)["memory"]
    # torchinfo sizes the input with sys.getsizeof of its storage, which adds Python's
    # object header (64 bytes here); the tensor's own bytes are the elements x 4.
    assert m["input_bytes"] == 1 * 3 * 224 * 224 * 4
    assert 0 <= stats.total_input - m["input_bytes"] <= 128
    assert m["forward_backward_bytes"] == stats.total_output_bytes
    assert m["params_bytes"] == stats.total_param_bytes
    assert m["estimated_total_bytes"] == (m["input_bytes"] + stats.total_output_bytes
                                          + stats.total_param_bytes)
    assert m["trainable_params"] == stats.trainable_params
    assert m["non_trainable_params"] == stats.total_params - stats.trainable_params


def test_params_size_follows_dtype():
    """fp16 is 2 bytes an element, fp32 4 (IEEE 754): the same params, half the bytes."""
    sizes = {}
    for dtype in ("fp32", "fp16"):
        out = CliRunner().invoke(app, ["summary", "vgg16", "--dtype", dtype, "--json"]).stdout
        data = json.loads(out)
        sizes[dtype] = data["memory"]["params_bytes"]
        assert data["memory"]["input_bytes"] == 3 * 224 * 224 * (4 if dtype == "fp32" else 2)
    # torchvision VGG16_Weights.IMAGENET1K_V1 num_params = 138,357,544
    assert sizes == {"fp32": 138_357_544 * 4, "fp16": 138_357_544 * 2}


def test_the_summary_table_prints_torchinfo_names():
    out = CliRunner().invoke(app, ["summary", "vgg16"]).stdout
    for label in ("Trainable params", "Non-trainable params", "Input size",
                  "Forward/backward pass size", "Params size", "Estimated Total Size"):
        assert label in out


def test_a_summary_sweep_carries_each_inputs_memory():
    """One memory estimate per input, each the one a single-input summary gives."""
    sweep = json.loads(CliRunner().invoke(app, ["summary", "vgg16", "--input", "224,320",
                                                "--json"]).stdout)
    assert "memory" not in sweep  # it would be one input's, read as the sweep's
    for report, side in zip(sweep["reports"], (224, 320), strict=True):
        single = json.loads(CliRunner().invoke(app, ["summary", "vgg16", "--input",
                                                     str(side), "--json"]).stdout)
        assert report["memory"] == single["memory"]
        assert report["memory"]["input_bytes"] == 3 * side * side * 4  # fp32: 4 bytes
        # torchvision VGG16_Weights.IMAGENET1K_V1 num_params = 138,357,544 at any input
        assert report["memory"]["params_bytes"] == 138_357_544 * 4


def test_markdown_summary_carries_the_memory_estimate():
    out = CliRunner().invoke(app, ["summary", "vgg16", "--format", "markdown"]).stdout
    data = json.loads(CliRunner().invoke(app, ["summary", "vgg16", "--json"]).stdout)
    # torchinfo prints MB = 10**6 bytes with two decimals
    total = f"{data['memory']['estimated_total_bytes'] / 1e6:,.2f} MB"
    assert f"| Estimated Total Size | {total} |" in out
    assert f"| Trainable params | {data['totals']['trainable_params']:,} |" in out
