"""Trainable and non-trainable params (torchinfo's split): a spec's `frozen:` and torch's
`requires_grad`, each checked against torch's own
`sum(p.numel() for p in module.parameters() if p.requires_grad)`.

For a spec the oracle is the module the builder makes from it (`frozen: true` is
`requires_grad_(False)` there); for a module reference it is the user's module itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnstat import analyze
from cnnstat.cli import app
from cnnstat.spec import load_spec

# A layer, a group with a layer thawed inside, a repeat frozen by its index, a block call.
FROZEN_SPEC = """\
name: frozen_parts
input: [3, 32, 32]
blocks:
  unit:
    args: [c]
    layers:
      - {conv: c, k: 3, p: 1}
      - bn
      - relu
layers:
  - {conv: 8, k: 3, frozen: true}
  - bn
  - relu
  - name: stage
    frozen: true
    layers:
      - {conv: 16, k: 3}
      - {bn: null, frozen: false}
  - repeat: 3
    as: i
    layers:
      - {conv: 16, k: 3, p: 1, frozen: "i < 2"}
  - {unit: [24], frozen: true}
  - global_avg_pool
  - flatten
  - {fc: 10, frozen: true}
"""


def _torch_split(module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


@pytest.fixture()
def frozen_spec(tmp_path: Path) -> Path:
    path = tmp_path / "frozen_parts.yaml"
    path.write_text(FROZEN_SPEC)
    return path


def test_spec_frozen_matches_requires_grad_of_the_built_module(frozen_spec: Path):
    torch = pytest.importorskip("torch")
    from cnnstat.builder import build_module

    graph = load_spec(frozen_spec)
    with torch.device("meta"):
        total, trainable = _torch_split(build_module(graph))
    totals = analyze(graph).totals
    assert (totals.params, totals.trainable_params) == (total, trainable)
    assert 0 < trainable < total  # the spec freezes some layers, not all


def test_frozen_is_per_layer_in_the_json(frozen_spec: Path):
    """Each frozen layer carries its non-trainable share; the rows sum to the totals."""
    data = json.loads(CliRunner().invoke(app, ["summary", str(frozen_spec), "--json"]).stdout)
    rows = {r["name"]: r for r in data["layers"]}
    # conv1: 3x3x3x8 + 8 = 224, all frozen; stage.bn1 thawed inside a frozen group
    assert rows["conv1"]["non_trainable_params"] == rows["conv1"]["params"] == 224
    assert "non_trainable_params" not in rows["stage.bn1"]
    assert rows["stage.conv1"]["non_trainable_params"] == rows["stage.conv1"]["params"]
    # the repeat freezes iterations 0 and 1 only (`i < 2`)
    frozen = [n for n in ("conv2", "conv3", "conv4") if "non_trainable_params" in rows[n]]
    assert frozen == ["conv2", "conv3"]
    assert rows["unit1.bn1"]["non_trainable_params"] == 2 * 24  # gamma and beta
    non_trainable = sum(r.get("non_trainable_params", 0) for r in data["layers"])
    totals, memory = data["totals"], data["memory"]
    assert totals["trainable_params"] == totals["params"] - non_trainable
    assert memory["trainable_params"] == totals["trainable_params"]
    assert memory["non_trainable_params"] == non_trainable


def test_zoo_specs_are_fully_trainable():
    # torchvision resnet50: every parameter requires grad; 25,557,032 of them (num_params)
    totals = analyze("resnet50").totals
    assert totals.trainable_params == totals.params == 25_557_032


def test_summary_table_shows_the_split(frozen_spec: Path):
    out = CliRunner().invoke(app, ["summary", str(frozen_spec), "--no-color"]).stdout
    report = analyze(frozen_spec).totals
    assert f"{report.trainable_params:,}" in out
    assert f"{report.params - report.trainable_params:,}" in out


def _small_net():
    """A stem, two blocks and a head, with a parameter read functionally (layer scale)."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Scaled(nn.Module):
        def __init__(self, c: int):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1)
            self.gamma = nn.Parameter(torch.ones(c, 1, 1))

        def forward(self, x):
            return x + self.conv(x) * self.gamma

    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), Scaled(8),
                         Scaled(8), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def _freeze_stem(net) -> None:
    for p in [*net[0].parameters(), *net[1].parameters()]:
        p.requires_grad_(False)


def _freeze_biases(net) -> None:
    for name, p in net.named_parameters():
        if name.endswith("bias"):
            p.requires_grad_(False)


def _freeze_layer_scale(net) -> None:
    net[3].gamma.requires_grad_(False)


def _freeze_all(net) -> None:
    net.requires_grad_(False)


@pytest.mark.parametrize("freeze", [_freeze_stem, _freeze_biases, _freeze_layer_scale,
                                    _freeze_all, lambda net: None])
def test_torch_frontend_reads_requires_grad_per_parameter(freeze):
    from cnnstat.frontends import graph_from_module

    net = _small_net()
    freeze(net)
    totals = analyze(graph_from_module(net, (3, 16, 16)).graph).totals
    assert (totals.params, totals.trainable_params) == _torch_split(net)


@pytest.mark.oracle
def test_a_torchvision_backbone_frozen_as_fine_tuning_does():
    """Fine-tuning's usual freeze (the first stages and every BN affine pair): torchinfo's
    trainable count, which is `requires_grad` summed over parameters()."""
    tvm = pytest.importorskip("torchvision.models")
    from torch import nn

    from cnnstat.frontends import graph_from_module

    net = tvm.mobilenet_v3_small(weights=None)
    net.features[:4].requires_grad_(False)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.requires_grad_(False)
    totals = analyze(graph_from_module(net, (3, 224, 224)).graph).totals
    assert (totals.params, totals.trainable_params) == _torch_split(net)


def test_export_keeps_frozen_layers(frozen_spec: Path, tmp_path: Path):
    """`export` writes `frozen: true` where a layer is frozen: the spec loads back with
    the same split (export checks it as it writes)."""
    result = CliRunner().invoke(app, ["export", str(frozen_spec)])
    assert result.exit_code == 0, result.output
    again = tmp_path / "again.yaml"
    again.write_text(result.stdout)
    assert "frozen: true" in result.stdout
    before, after = analyze(frozen_spec).totals, analyze(again).totals
    assert (after.params, after.trainable_params) == (before.params, before.trainable_params)
