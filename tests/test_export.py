"""`cnnstat export`: any model as a readable spec that analyzes to the same numbers.

Oracles: torch itself (sum of numel, FlopCounterMode, a meta forward) on the ORIGINAL
module, compared with our analysis of the EXPORTED spec read back from disk; and
`tests/oracles.torch_truth` on the module the builder makes from the exported spec.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
from oracles import torch_truth
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from cnnstat.analyzers import analyze_graph
from cnnstat.cli import app
from cnnstat.frontends import graph_from_module
from cnnstat.resolver import load_zoo, zoo_names
from cnnstat.spec import load_spec
from cnnstat.writer import spec_from_graph

# --- test-local modules ------------------------------------------------------------------

class Block(nn.Module):
    """A residual block written as users write them: the identity added with `+=`, and
    one ReLU module called twice (fx names the second call `relu@1`)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.proj = None if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        identity = x if self.proj is None else self.proj(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class Stage(nn.Module):
    """Conv-BN-ReLU stages whose widths double: a repeat with `16 * 2 ** i`."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stages = nn.Sequential(Stage(3, 16), Stage(16, 32), Stage(32, 64))
        self.blocks = nn.Sequential(*[Block(64, 64, 1) for _ in range(4)])
        self.stage = nn.Sequential(Block(64, 128, 2), Block(128, 128, 1), Block(128, 128, 1))
        self.branch_a = nn.Conv2d(128, 32, 1)
        self.branch_b = nn.Sequential(nn.Conv2d(128, 16, 1), nn.ReLU(), nn.Conv2d(16, 32, 3,
                                                                                    padding=1))
        self.up = nn.ConvTranspose2d(64, 16, 4, stride=2, padding=1)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stage(self.blocks(self.stages(x)))
        x = torch.cat([self.branch_a(x), self.branch_b(x)], 1)
        x = self.up(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


UNEXPORTABLE = """
from torch import nn

class Unexportable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        return self.norm(self.conv(x).amax((2, 3)))
"""


SHAPE = (3, 64, 64)


def torch_counts(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, int, tuple]:
    """torch's params, MACs (FlopCounterMode / 2) and output shape, on a meta copy."""
    meta = module.to("meta").eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = meta(torch.empty(1, *shape, device="meta"))
    return sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2, \
        tuple(out.shape)


@pytest.fixture(scope="module")
def net_spec(tmp_path_factory) -> tuple[Path, str]:
    torch.manual_seed(0)
    module = Net()
    traced = graph_from_module(module, SHAPE, name="net")
    path = tmp_path_factory.mktemp("export") / "net.yaml"
    path.write_text(spec_from_graph(traced.graph).text)
    return path, path.read_text()


# --- a torch module -> spec -> numbers -------------------------------------------------------

def test_exported_spec_of_a_module_counts_what_torch_counts(net_spec):
    """Catches an export that drops or changes a layer: the spec read back from disk must
    give torch's own params, MACs and output shape for the ORIGINAL module."""
    path, _ = net_spec
    report = analyze_graph(load_spec(path))
    params, macs, out_shape = torch_counts(Net(), SHAPE)
    assert report.totals.params == params
    assert report.totals.macs == macs
    assert report.outputs[0][1] == out_shape


def test_exported_spec_builds_a_module_torch_agrees_with(net_spec):
    """The exported spec is a real spec: the builder turns it into a module whose params
    and FlopCounterMode MACs equal our analysis of it."""
    path, _ = net_spec
    graph = load_spec(path)
    truth = torch_truth(graph)
    report = analyze_graph(graph)
    assert (report.totals.params, report.totals.macs) == (truth.params, truth.macs)
    assert {s.name: s.output_shape for s in report.layers if s.name in truth.shapes} == \
        {name: shape for name, shape in truth.shapes.items()}


def test_repeated_structure_becomes_blocks_and_repeats(net_spec):
    """Readability: residual blocks with and without a projection are one block whose
    projection is optional (`when:`), called by repeats; the doubling stages are a repeat
    whose width is an expression of the index."""
    _, text = net_spec
    blocks = re.search(r"\{repeat: 4, (\w+): \{(.*)\}, name: blocks\}", text)
    stage = re.search(r"\{repeat: 3, (\w+): \{(.*)\}, name: stage\}", text)
    assert blocks and stage and blocks.group(1) == stage.group(1), text
    assert "with_proj: false" in blocks.group(2), text
    assert '"i == 0"' in stage.group(2) and '"2 if i == 0 else 1"' in stage.group(2), text
    assert "when: with_proj" in text and "from: [bn2, proj]" in text, text
    stages = re.search(r"\{repeat: 3, (\w+): \{(.*)\}, name: stages\}", text)
    assert stages and "16 * 2 ** i" in stages.group(2), text
    layer_lines = [line for line in text.splitlines() if line.lstrip().startswith("- {")]
    assert len(layer_lines) < 30  # 80 layers: written out flat, 80 lines


def test_names_a_spec_cannot_write_are_renamed_and_reported():
    """`relu@1` (a module called twice) is not a spec name: export renames it, says so,
    and the numbers do not change."""
    traced = graph_from_module(Block(8, 8, 1), (8, 16, 16), name="block")
    exported = spec_from_graph(traced.graph)
    assert exported.renamed == {"relu@1": "relu_1"}
    assert "name: relu_1" in exported.text


def test_zoo_resnet_stages_become_repeats():
    """ResNet-50's stages (a projection block, then identity blocks) are one repeat each."""
    text = spec_from_graph(load_zoo("resnet50")).text
    for stage, count in (("layer1", 3), ("layer2", 4), ("layer3", 6), ("layer4", 3)):
        assert re.search(rf"\{{repeat: {count}, \w+: \{{.*\}}, name: {stage}\}}", text), text


def test_export_is_stable(tmp_path):
    """spec -> export -> load -> export gives the same text (only the header's source
    line differs): the writer's output is a fixed point."""
    first = spec_from_graph(load_zoo("resnet50")).text
    path = tmp_path / "again.yaml"
    path.write_text(first)
    second = spec_from_graph(load_spec(path)).text

    def body(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("# Exported")]

    assert body(first) == body(second)


@pytest.mark.parametrize("name", zoo_names())
def test_every_zoo_spec_exports_and_reanalyzes_identically(name, tmp_path):
    """Every zoo spec (detection heads, aux heads, `backbone:` and `regions:` included)
    round-trips: the exported file analyzes to the same params, MACs, activations and
    per-layer shapes, and keeps its outputs."""
    original = load_zoo(name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(spec_from_graph(original).text)
    again = load_spec(path)
    a, b = analyze_graph(original, fields=False), analyze_graph(again, fields=False)
    assert a.totals == b.totals
    assert [(s.name, s.output_shape) for s in a.layers] == \
        [(s.name, s.output_shape) for s in b.layers]
    assert (again.outputs, again.aux_outputs) == (original.outputs, original.aux_outputs)


# --- the command --------------------------------------------------------------------------

runner = CliRunner()


def test_export_never_overwrites_without_force(tmp_path):
    target = tmp_path / "spec.yaml"
    target.write_text("mine\n")
    result = runner.invoke(app, ["export", "resnet18", "-o", str(target)])
    assert result.exit_code == 2
    assert "exists; pass --force" in result.stderr
    assert target.read_text() == "mine\n"
    result = runner.invoke(app, ["export", "resnet18", "-o", str(target), "--force"])
    assert result.exit_code == 0, result.stderr
    assert "loads back into the same graph" in result.stderr
    assert analyze_graph(load_spec(target)).totals == analyze_graph(load_zoo("resnet18")).totals


def test_export_to_stdout_and_flat():
    blocks = runner.invoke(app, ["export", "vgg16"])
    flat = runner.invoke(app, ["export", "vgg16", "--flat"])
    assert blocks.exit_code == flat.exit_code == 0
    assert "blocks:" in blocks.stdout and "blocks:" not in flat.stdout
    assert flat.stdout.count("{conv: ") == 13


def test_unexportable_layers_fail_with_their_names_and_leave_no_file(tmp_path, monkeypatch):
    """An op the spec language cannot express (a max over dims) is exit 3 naming the
    layer; nothing is written. (The LayerNorm after it is a kind now.)"""
    module_file = tmp_path / "unexportable.py"
    module_file.write_text(UNEXPORTABLE)
    target = tmp_path / "out.yaml"
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["export", "unexportable.py:Unexportable", "--input",
                                 "3x16x16", "-o", str(target)])
    assert result.exit_code == 3, result.stderr
    assert "cannot export" in result.stderr and "amax" in result.stderr
    assert "norm" not in result.stderr.split("cannot export", 1)[1]
    assert not target.exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# --- torchvision's own models ------------------------------------------------------------

TORCHVISION = ["resnet50", "densenet121", "googlenet", "inception_v3", "mobilenet_v2",
               "squeezenet1_0", "vgg16_bn", "alexnet", "resnext50_32x4d"]


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_export_and_round_trip(name, tmp_path):
    """torchvision's module (weights=None) -> exported spec -> torch's params and MACs of
    that same module, and the zoo spec's numbers where one follows it."""
    torchvision = pytest.importorskip("torchvision")
    shape = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    kwargs = {"aux_logits": False, "init_weights": False} if name in (
        "googlenet", "inception_v3") else {}
    with torch.device("meta"):
        module = torchvision.models.get_model(name, weights=None, **kwargs)
    traced = graph_from_module(module, shape, name=name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(spec_from_graph(traced.graph).text)
    report = analyze_graph(load_spec(path))
    params, macs, out_shape = torch_counts(module, shape)
    assert (report.totals.params, report.totals.macs, report.outputs[0][1]) == \
        (params, macs, out_shape)


def test_input_becomes_the_specs_default(tmp_path):
    """`--input` on a spec sets the exported spec's default input (a module is traced at
    it); one the model cannot take is a located error, and nothing is written."""
    target = tmp_path / "r.yaml"
    result = runner.invoke(app, ["export", "resnet50", "--input", "320", "-o", str(target)])
    assert result.exit_code == 0, result.stderr
    assert load_spec(target).meta.input == (3, 320, 320)
    assert analyze_graph(load_spec(target)).totals == \
        analyze_graph(load_zoo("resnet50"), (3, 320, 320)).totals
    bad = runner.invoke(app, ["export", "vgg16", "--input", "16", "-o", str(tmp_path / "v")])
    assert bad.exit_code == 2 and "vgg16.yaml:" in bad.stderr
    assert not (tmp_path / "v").exists()
