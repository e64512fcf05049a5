"""`cnnstat zoo`, minimum input sizes and input sweeps, checked against torchvision's
published metadata and against torch itself."""

from __future__ import annotations

import json

import pytest
import torch
from oracles import torch_truth
from typer.testing import CliRunner

from cnnstat.analyzers.min_input import min_input_side
from cnnstat.builder import build_module
from cnnstat.cli import app
from cnnstat.resolver import FAMILY_ALIASES, load_zoo, resolve, zoo_names

# torchvision weights' meta["min_size"] (reference §1, pytorch/vision@9cb639a1).
PUBLISHED_MIN_SIZE = {
    "alexnet": 63, "vgg11": 32, "vgg11_bn": 32, "vgg13": 32, "vgg13_bn": 32, "vgg16": 32,
    "vgg16_bn": 32, "vgg19": 32, "vgg19_bn": 32, "googlenet": 15, "inception_v3": 75,
    "resnet18": 1, "resnet34": 1, "resnet50": 1, "resnet101": 1, "resnet152": 1,
    "resnext50_32x4d": 1, "densenet121": 29, "densenet161": 29, "densenet169": 29,
    "densenet201": 29, "mobilenet_v2": 1, "squeezenet1_0": 21, "squeezenet1_1": 17,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_MIN_SIZE))
def test_min_input_equals_torchvision(name: str) -> None:
    assert min_input_side(load_zoo(name)) == PUBLISHED_MIN_SIZE[name]


@pytest.mark.parametrize("name", zoo_names())
def test_min_input_is_where_torch_starts_to_run(name: str) -> None:
    """torch is the judge: the module built for S runs at S, and at S - 1 torch itself
    fails in a spatial layer (conv/pool), not in a classifier whose width was fixed at S
    (AlexNet-2012 flattens a fixed 6x6 map into its first FC layer)."""
    graph = load_zoo(name)
    side = min_input_side(graph)
    channels = graph.meta.input[0]
    with torch.device("meta"):
        module = build_module(graph, (channels, side, side))
    entered: list[torch.nn.Module] = []
    for sub in module.modules():
        sub.register_forward_pre_hook(lambda m, args: entered.append(m))
    with torch.no_grad():
        module(torch.empty(1, channels, side, side, device="meta"))
        if side == 1:
            return
        entered.clear()
        with pytest.raises(RuntimeError):
            module(torch.empty(1, channels, side - 1, side - 1, device="meta"))
    assert not isinstance(entered[-1], torch.nn.Linear), f"failed in {entered[-1]}"


def test_zoo_json_lists_every_spec_with_published_figures() -> None:
    result = CliRunner().invoke(app, ["zoo", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == "cnnstat.zoo/1"
    rows = {m["name"]: m for m in data["models"]}
    assert set(rows) == set(zoo_names())
    # torchvision VGG16_Weights / ResNet50_Weights metadata.
    assert rows["vgg16"]["params"] == 138_357_544 and rows["vgg16"]["min_input"] == 32
    assert rows["resnet50"]["params"] == 25_557_032
    assert round(rows["resnet50"]["macs"] / 1e9, 3) == 4.089
    assert all(m["flops"] == 2 * m["macs"] for m in data["models"])


def test_zoo_family_filter_and_unknown_family() -> None:
    result = CliRunner().invoke(app, ["zoo", "--family", "vgg", "-f", "csv"])
    names = [line.split(",")[0] for line in result.stdout.splitlines()[1:]]
    assert names and all(n.startswith("vgg") for n in names)
    bad = CliRunner().invoke(app, ["zoo", "--family", "vgq"])
    assert bad.exit_code == 2 and "did you mean 'vgg'" in bad.stderr


@pytest.mark.parametrize("alias, target", [(a, t) for a, t in FAMILY_ALIASES.items()
                                          if t in zoo_names() and a not in zoo_names()])
def test_family_aliases(alias: str, target: str) -> None:
    resolved = resolve(alias)
    assert resolved.graph.meta.name == target
    assert target in resolved.note


def test_issue_aliases_exist() -> None:
    """The aliases the product promises (issue: Zoo) all resolve."""
    for alias, target in {"vgg": "vgg16", "inception": "googlenet", "resnet": "resnet50",
                          "densenet": "densenet121", "mobilenet": "mobilenet_v2",
                          "squeezenet": "squeezenet1_0", "lenet": "lenet5"}.items():
        assert resolve(alias).graph.meta.name == target


def test_sweep_matches_torch_at_every_size() -> None:
    result = CliRunner().invoke(app, ["flops", "resnet50", "--input", "224,320,97", "--json"])
    data = json.loads(result.stdout)
    assert data["schema"] == "cnnstat.sweep/1"
    graph = load_zoo("resnet50")
    for report, side in zip(data["reports"], (224, 320, 97), strict=True):
        truth = torch_truth(graph, (3, side, side))
        assert report["input_shape"] == [1, 3, side, side]
        assert report["totals"]["macs"] == truth.macs


def test_min_input_flag_reports_on_stderr() -> None:
    result = CliRunner().invoke(app, ["params", "alexnet", "--min-input", "--json"])
    json.loads(result.stdout)
    assert "minimum input of alexnet: 63 px" in result.stderr
