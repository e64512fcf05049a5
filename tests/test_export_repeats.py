"""`export` writes `repeat` where a torch model repeats, and keeps torch's layer names.

Oracles: torch's own counts of the ORIGINAL module (`parameters()`, FlopCounterMode / 2,
through `oracles.stack_counts`), and the torch path's graph: the exported spec must load
back with the very same layer names and, layer by layer, the same output shapes. The
`repeat` structure is asserted on the text, as a reader would see it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from oracles import spec_graph, stack_counts
from torch import nn

from cnnstat.analyzers import analyze_graph
from cnnstat.frontends import graph_from_module
from cnnstat.spec import load_spec
from cnnstat.writer import spec_from_graph

SHAPE = (3, 32, 32)


class Residual(nn.Module):
    """conv-bn-relu-conv-bn plus the input (a projection where the shape changes), then a
    dropout at the rate the test gives: ConvNeXt's and EfficientNet's per-block rates."""

    def __init__(self, c_in: int, c_out: int, stride: int, rate: float = 0.0,
                 residual: bool = True):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                               nn.BatchNorm2d(c_out), nn.ReLU(),
                               nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                               nn.BatchNorm2d(c_out))
        self.proj = None if not residual or (stride == 1 and c_in == c_out) else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.drop = nn.Dropout(rate)
        self.residual = residual

    def forward(self, x):
        out = self.drop(self.f(x))
        if not self.residual:
            return out
        return out + (x if self.proj is None else self.proj(x))


class RegNetLike(nn.Module):
    """Stages named as torchvision's RegNet names its blocks: `block2-0`, `block2-1`."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.trunk = nn.Sequential()
        widths = (8, 16, 32)
        stages = zip(widths, widths[1:], (3, 4), strict=False)
        for stage, (c_in, c_out, depth) in enumerate(stages, 1):
            blocks = nn.Sequential()
            for i in range(depth):
                blocks.add_module(f"block{stage}-{i}", Residual(c_in if i == 0 else c_out,
                                                                c_out, 2 if i == 0 else 1))
            self.trunk.add_module(f"block{stage}", blocks)

    def forward(self, x):
        return self.trunk(self.stem(x))


class ConvNeXtLike(nn.Module):
    """Stages of equal blocks whose rates grow over the whole network, computed as
    torchvision's ConvNeXt does: `prob * block_id / (total - 1.0)`."""

    def __init__(self, depths=(2, 3, 2), prob: float = 0.1):
        super().__init__()
        total, block_id = sum(depths), 0
        layers: list[nn.Module] = [nn.Conv2d(3, 8, 2, 2)]
        for depth in depths:
            stage = []
            for _ in range(depth):
                stage.append(Residual(8, 8, 1, prob * block_id / (total - 1.0)))
                block_id += 1
            layers += [nn.Sequential(*stage), nn.Conv2d(8, 8, 1)]
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x)


class EfficientNetLike(nn.Module):
    """A flat Sequential with EfficientNet's rates `prob * float(block_id) / total` over
    the whole network: blocks 1 to 3 are equal, then a stage whose first block has no
    residual (its stride and width change), as every EfficientNet stage starts."""

    def __init__(self, prob: float = 0.2):
        super().__init__()

        def rate(block_id: int) -> float:
            return prob * float(block_id) / 6

        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, 1, 1),
            *[Residual(8, 8, 1, rate(i)) for i in (0, 1, 2)],
            nn.Sequential(Residual(8, 16, 2, rate(3), residual=False),
                          Residual(16, 16, 1, rate(4)), Residual(16, 16, 1, rate(5))),
            nn.Conv2d(16, 4, 1))

    def forward(self, x):
        return self.features(x)


def repeats(text: str) -> list[tuple[int, str | None, str | None]]:
    """(count, name, each) of every `repeat` entry of a spec, in order."""
    import yaml

    found: list[tuple[int, str | None, str | None]] = []

    def walk(value) -> None:
        if isinstance(value, dict):
            if "repeat" in value:
                found.append((value["repeat"], value.get("name"), value.get("each")))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(yaml.safe_load(text)["layers"])
    return found


def rates(module: nn.Module, path: Path) -> tuple[list[float], list[float]]:
    """The dropout rates of the module and of the loaded spec, in order."""
    loaded = [n.layer.p for n in load_spec(path) if n.layer.kind in ("dropout", "drop_path")]
    return [m.p for m in module.modules() if isinstance(m, nn.Dropout)], loaded


def exported(module: nn.Module, tmp_path: Path) -> tuple[str, Path, object]:
    torch.manual_seed(0)
    traced = graph_from_module(module, SHAPE, name="net").graph
    path = tmp_path / "net.yaml"
    path.write_text(spec_from_graph(traced).text)
    return path.read_text(), path, traced


def assert_same_as_torch(module: nn.Module, path: Path, traced) -> None:
    """Torch's params and MACs of the original module; the torch path's names and
    every layer's shape."""
    loaded = load_spec(path)
    report = analyze_graph(loaded, fields=False)
    _, params, _, macs = stack_counts([module], SHAPE, batch=1)
    assert (report.totals.params, report.totals.macs) == (params, macs)
    torch_path = analyze_graph(traced, fields=False)
    assert [(s.name, s.output_shape) for s in report.layers] == \
        [(s.name, s.output_shape) for s in torch_path.layers]


def test_regnet_blocks_are_repeats_that_keep_torchs_names(tmp_path):
    """`block2-0`, `block2-1`, ... are iterations of a repeat named by `each:`."""
    module = RegNetLike()
    text, path, traced = exported(module, tmp_path)
    for stage, depth in ((1, 3), (2, 4)):
        assert re.search(rf"\{{repeat: {depth}, \w+: \{{.*\}}, name: block{stage}, "
                         rf'each: "block{stage}-{{i}}"\}}', text), text
    assert any(n.name.startswith("trunk.block2.block2-3.") for n in load_spec(path))
    assert_same_as_torch(module, path, traced)


def test_convnext_stages_are_repeats_with_their_rate_formula(tmp_path):
    """Each stage is a repeat of the block, not a stage block spelling out its blocks;
    the rate is written as torchvision computes it, and loads back bit for bit."""
    module = ConvNeXtLike()
    text, path, traced = exported(module, tmp_path)
    found = re.findall(r'\{repeat: (\d+), \w+: \{\w+: "([^"]+)"\}, name: "(\d)"\}', text)
    assert found == [("2", "0.1 * i / 6", "1"), ("3", "0.1 * (2 + i) / 6", "3"),
                     ("2", "0.1 * (5 + i) / 6", "5")], text
    mine, loaded = rates(module, path)
    assert loaded == mine  # exactly, not approximately
    assert_same_as_torch(module, path, traced)


def test_runs_inside_a_group_and_stages_without_a_first_residual_are_repeats(tmp_path):
    """`features.1..3` (between layers of other kinds) keep their names through
    `each: "{i + 1}"`; the stage whose first block has no residual add is one repeat
    whose add carries `when: residual`, `residual: "i != 0"`."""
    module = EfficientNetLike()
    text, path, traced = exported(module, tmp_path)
    assert repeats(text) == [(3, None, "{i + 1}"), (3, "4", None)], text
    assert 'residual: "i != 0"' in text and "when: residual" in text, text
    mine, loaded = rates(module, path)
    assert loaded == mine  # exactly, not approximately
    assert_same_as_torch(module, path, traced)


def test_rates_no_formula_gives_stay_calls_with_their_own_rates(tmp_path):
    """Rates that do not grow by one step are written call by call, each exact."""
    module = nn.Sequential(nn.Conv2d(3, 8, 1),
                           nn.Sequential(*[Residual(8, 8, 1, p) for p in (0.1, 0.3, 0.31)]))
    text, path, traced = exported(module, tmp_path)
    assert "repeat:" not in text and "0.31" in text, text
    mine, loaded = rates(module, path)
    assert loaded == mine
    assert_same_as_torch(module, path, traced)


def test_two_calls_told_apart_by_the_index_stay_two_calls(tmp_path):
    """Two blocks that differ in their first call (stride, projection) inside a larger
    group: `x if i == 0 else y` in every argument would only hide that they differ."""
    module = nn.Sequential(nn.Conv2d(3, 8, 1), Residual(8, 16, 2), Residual(16, 16, 1),
                           nn.Conv2d(16, 4, 1))
    text, path, traced = exported(module, tmp_path)
    assert "repeat:" not in text
    assert_same_as_torch(module, path, traced)


# --- the spec language's `each:` ---------------------------------------------------------

EACH = """
name: t
input: [3, 16, 16]
blocks:
  cb:
    args: [c]
    layers: [{conv: c, k: 3, p: 1}, relu]
layers:
  - {repeat: 2, name: block2, each: "block2-{i}", cb: ["8 * (i + 1)"]}
  - {repeat: 2, each: "stage{i + 1}", cb: [16]}
  - {repeat: 2, name: r, as: j, each: "x{2 * j}", layers: [relu]}
  - {conv: 16, k: 1, from: block2.block2-1}
  - {add, from: [conv1, stage2]}
"""


def test_each_names_iterations_and_they_can_be_referenced():
    graph = spec_graph(EACH)
    assert [n.name for n in graph][1:] == [
        "block2.block2-0.conv1", "block2.block2-0.relu1", "block2.block2-1.conv1",
        "block2.block2-1.relu1", "stage1.conv1", "stage1.relu1", "stage2.conv1",
        "stage2.relu1", "r.x0.relu1", "r.x2.relu1", "conv1", "add1"]
    add = graph.nodes[-1]
    assert add.inputs == ("conv1", "stage2.relu1")
    assert graph.nodes[-2].inputs == ("block2.block2-1.relu1",)


@pytest.mark.parametrize(("pattern", "message"), [
    ('"b"', "names every iteration alike"),
    ('"b{}"', "an empty {}"),
    ('"b{i}}"', "unbalanced"),
    ('"b{i // 2}"', "iterations 0 and 1 are both named 'b0'"),
    ('"b{i / 2}"', "each: {i / 2} must be an integer, got 0.5"),
    ('"b {i}"', "would be named 'b 0'"),
    ("[1]", "each must be a name pattern"),
])
def test_bad_each_is_a_located_error(pattern, message):
    from cnnstat.errors import SpecError

    text = EACH.replace('"block2-{i}"', pattern)
    with pytest.raises(SpecError) as info:
        spec_graph(text)
    assert message in str(info.value)
    assert str(info.value).startswith("t.yaml:9:")


# --- torchvision's own models ------------------------------------------------------------

TORCHVISION_REPEATS = {
    "regnet_y_400mf": [(3, "block2", "block2-{i}"), (6, "block3", "block3-{i}"),
                       (6, "block4", "block4-{i}")],
    "convnext_tiny": [(3, "1", None), (3, "3", None), (9, "5", None), (3, "7", None)],
    "efficientnet_b0": [(2, "2", None), (2, "3", None), (3, "4", None), (3, "5", None),
                        (4, "6", None)],
    "resnet50": [(3, "layer1", None), (4, "layer2", None), (6, "layer3", None),
                 (3, "layer4", None)],
    "mobilenet_v3_large": [(3, None, "{i + 4}"), (3, None, "{i + 8}"), (3, None, "{i + 13}")],
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(TORCHVISION_REPEATS))
def test_torchvision_models_export_with_repeats_and_load_back_the_same(name, tmp_path):
    """The exported spec repeats where the model does (RegNet's blocks by their own
    names, ConvNeXt's stages with their drop-path rates) and loads back with torch's
    params and MACs of the module, and the torch path's names and per-layer shapes."""
    torchvision = pytest.importorskip("torchvision")
    module = torchvision.models.get_model(name, weights=None)  # RegNet cannot build on meta
    shape = (3, 224, 224)
    traced = graph_from_module(module, shape, name=name).graph
    path = tmp_path / f"{name}.yaml"
    written = spec_from_graph(traced)
    path.write_text(written.text)
    assert repeats(path.read_text()) == TORCHVISION_REPEATS[name]
    loaded = load_spec(path)
    report = analyze_graph(loaded, fields=False)
    _, params, _, macs = stack_counts([module], shape, batch=1)
    assert (report.totals.params, report.totals.macs) == (params, macs)
    torch_path = analyze_graph(traced, fields=False)
    renamed = written.renamed  # ResNet's `relu@1` (one module called twice) -> `relu_1`
    assert [(s.name, s.output_shape) for s in report.layers] == \
        [(renamed.get(s.name, s.name), s.output_shape) for s in torch_path.layers]
    drops = [n for n in loaded if n.layer.kind == "drop_path"]
    assert [n.layer.p for n in drops] == [module.get_submodule(n.name).p for n in drops]
