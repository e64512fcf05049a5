"""Receptive fields of 1-D (CxL) and 3-D (CxDxHxW, video CxTxHxW) networks, checked by
gradient on torch modules built here (docs/receptive-field.md).

The oracle is torch: the input pixels with a nonzero gradient from one output unit
(positive weights, zero bias, float64, the sum over all channels, an input of ones; a
max-pool measured as the average pool of the same window, since a max sends gradient to
one pixel only). Our fields come from the torch frontend's graph of the module with the
max-pools, so their rule is the one checked. Regions are compared clipped to the input,
where the gradient lives. Stage 2: torchvision's r3d_18, mc3_18 and r2plus1d_18 on a small
CPU clip, at the end of each stage.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from typer.testing import CliRunner

from cnnstat.analyzers import analyze_graph
from cnnstat.analyzers.engine import infer_shapes
from cnnstat.analyzers.rf import receptive_fields
from cnnstat.cli import app
from cnnstat.errors import CnnstatError
from cnnstat.frontends import graph_from_module

CONV = {1: nn.Conv1d, 3: nn.Conv3d}
MAX = {1: nn.MaxPool1d, 3: nn.MaxPool3d}
AVG = {1: nn.AvgPool1d, 3: nn.AvgPool3d}
BN = {1: nn.BatchNorm1d, 3: nn.BatchNorm3d}
ADAPTIVE = {1: nn.AdaptiveAvgPool1d, 3: nn.AdaptiveAvgPool3d}


def positive(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random positive weights (no cancellation can hide a pixel), zero biases, float64."""
    gen = torch.Generator().manual_seed(seed)
    module = module.double().eval()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen, dtype=torch.float64)
                               + 0.5)
                m.weight /= m.weight[0].numel()
                if m.bias is not None:
                    m.bias.zero_()
    return module


def gradient_regions(module: nn.Module, shape: tuple[int, ...],
                     taps: dict[str, nn.Module] | None = None) -> dict[str, tuple]:
    """Per tap (a submodule's output; '' for the module's), the output unit at the centre
    and, per spatial axis, the first and last input pixel with a nonzero gradient."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: outputs.__setitem__(n, out))
             for n, m in (taps or {}).items()]
    x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
    outputs[""] = module(x)
    for hook in hooks:
        hook.remove()
    found = {}
    for name, y in outputs.items():
        unit = tuple(n // 2 for n in y.shape[2:])
        x.grad = None
        y[(0, slice(None), *unit)].sum().backward(retain_graph=True)
        grad = x.grad[0].abs().sum(0)
        spans = []
        for axis in range(grad.dim()):
            rest = tuple(d for d in range(grad.dim()) if d != axis)
            nonzero = (grad.sum(rest) if rest else grad).nonzero().flatten()
            spans.append((int(nonzero.min()), int(nonzero.max())))
        found[name] = (unit, tuple(spans))
    return found


def analytic_fields(module: nn.Module, shape: tuple[int, ...]):
    graph = graph_from_module(module, shape).graph
    shapes = infer_shapes(graph, shape)
    fields, diagnostics = receptive_fields(graph, shapes)
    return graph, shapes, fields, diagnostics


def assert_agrees(module: nn.Module, twin: nn.Module, shape: tuple[int, ...]) -> None:
    """The analytic region of the last layer's central unit, from the graph of `module`,
    is the gradient's on `twin` (the same windows, max-pools as average pools)."""
    graph, shapes, fields, _ = analytic_fields(module, shape)
    (unit, spans), = gradient_regions(positive(twin), shape).values()
    field = fields[graph.outputs[0]]
    assert field is not None and not field.is_global
    assert field.region(unit, clipped=True) == spans, (field.to_dict(), unit, spans)


# --- hand-made traps ------------------------------------------------------------------------


def test_3d_stem_and_pool_fields_are_per_axis() -> None:
    """A video stem: conv 3x7x7 /1x2x2 p1x3x3 -> size 3x7x7, jump 1x2x2; a 1x3x3/1x2x2 max
    pool then adds (3-1)*2 = 4 along H and W only: 3x11x11, jump 1x4x4."""
    layers = [nn.Conv3d(2, 4, (3, 7, 7), (1, 2, 2), (1, 3, 3)), nn.BatchNorm3d(4), nn.ReLU()]
    model = nn.Sequential(*layers, nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
    twin = nn.Sequential(*layers, nn.AvgPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
    graph, _, fields, diagnostics = analytic_fields(model, (2, 8, 40, 40))
    stem, pool = (fields[n.name] for n in graph.nodes if n.kind in ("conv3d", "max_pool3d"))
    assert stem.size == (3, 7, 7) and stem.stride == (1, 2, 2) and stem.padding == (1, 3, 3)
    assert pool.size == (3, 11, 11) and pool.stride == (1, 4, 4)
    assert diagnostics == ()
    assert_agrees(model, twin, (2, 8, 40, 40))


def test_1d_dilated_strided_stack() -> None:
    """conv k5 s2 p2 (size 5, jump 2), dilated conv k3 d3 (k_eff 7: 5 + 6*2 = 17), avg pool
    k3 s2 (17 + 2*2 = 21, jump 4)."""
    model = nn.Sequential(nn.Conv1d(2, 3, 5, 2, 2), nn.Conv1d(3, 3, 3, dilation=3),
                          nn.AvgPool1d(3, 2))
    graph, _, fields, _ = analytic_fields(model, (2, 90))
    field = fields[graph.outputs[0]]
    assert field.size == (21,) and field.stride == (4,)
    assert field.to_dict()["size"] == [21] and field.to_dict()["stride"] == [4]
    assert_agrees(model, model, (2, 90))


class Residual3d(nn.Module):
    """r3d's basic block: a shortcut (1x1x1 /2) added to two 3x3x3 convs (the first /2):
    the add's field is the union, the convs' 3 + 2*2 = 7 per axis, not the shortcut's 1."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv3d(2, 3, 3, 2, 1)
        self.b = nn.Conv3d(3, 3, 3, 1, 1)
        self.short = nn.Conv3d(2, 3, 1, 2)

    def forward(self, x):
        return torch.relu(self.b(torch.relu(self.a(x))) + self.short(x))


def test_3d_residual_add_is_the_union() -> None:
    graph, _, fields, diagnostics = analytic_fields(Residual3d(), (2, 9, 17, 17))
    assert fields[graph.outputs[0]].size == (7, 7, 7)
    assert diagnostics == ()
    assert_agrees(Residual3d(), Residual3d(), (2, 9, 17, 17))


class Gated3d(nn.Module):
    """x * sigmoid(conv(gap3d(x))) after a 3x3x3 conv: global, with the conv path's 3x3x3
    beside it (`local`)."""

    def __init__(self, gate: bool = True):
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, 1, 1)
        self.fc = nn.Conv3d(4, 4, 1)
        self.gate = gate

    def forward(self, x):
        x = self.conv(x)
        if not self.gate:
            return x
        return x * torch.sigmoid(self.fc(nn.functional.adaptive_avg_pool3d(x, 1)))


def test_3d_gate_keeps_the_convolution_path_beside_global() -> None:
    graph, _, fields, _ = analytic_fields(Gated3d(), (2, 6, 10, 10))
    field = fields[graph.outputs[0]]
    assert field.is_global and field.size == (6, 10, 10)
    as_json = field.to_dict()
    assert as_json["local"]["size"] == [3, 3, 3] and as_json["global"] is True
    # the gradient reaches the whole clip; the path alone (gate cut) is the 3x3x3 conv
    (unit, spans), = gradient_regions(positive(Gated3d()), (2, 6, 10, 10)).values()
    assert spans == ((0, 5), (0, 9), (0, 9))
    (unit, spans), = gradient_regions(positive(Gated3d(False)), (2, 6, 10, 10)).values()
    assert field.local.region(unit, clipped=True) == spans


class Tokens1d(nn.Module):
    """A 1-D conv, then attention over its positions ([N, L, C] tokens): global."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 8, 3, padding=1)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        t = self.conv(x).transpose(1, 2)
        return self.attn(t, t, t, need_weights=False)[0]


def test_1d_attention_over_positions_is_global() -> None:
    graph, _, fields, _ = analytic_fields(Tokens1d(), (2, 12))
    assert fields[graph.outputs[0]].is_global
    assert any(not f.is_global and f.size == (3,) for f in fields.values() if f)


# --- random stacks (hypothesis) -------------------------------------------------------------


@st.composite
def stacks(draw, rank: int):
    """(module, twin, input shape): conv / max / avg / adaptive pools and batch norms with
    per-axis kernels, strides, paddings and dilations (convs), ceil_mode pools."""
    model, twin, c = [], [], 2
    for _ in range(draw(st.integers(1, 4))):
        which = draw(st.sampled_from(["conv", "conv", "max", "avg", "bn", "adaptive"]))
        k = tuple(draw(st.integers(1, 4)) for _ in range(rank))
        s = tuple(draw(st.integers(1, 2)) for _ in range(rank))
        if which == "conv":
            d = tuple(draw(st.integers(1, 2)) for _ in range(rank))
            p = tuple(draw(st.integers(0, kk // 2 + 1)) for kk in k)
            layer = CONV[rank](c, 3, k, s, p, d)
            c = 3
        elif which in ("max", "avg"):
            p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
            ceil = draw(st.booleans())
            twin.append(AVG[rank](k, s, p, ceil_mode=ceil))
            model.append((MAX if which == "max" else AVG)[rank](k, s, p, ceil_mode=ceil))
            continue
        elif which == "bn":
            layer = BN[rank](c)
        else:
            layer = ADAPTIVE[rank](tuple(draw(st.integers(2, 6)) for _ in range(rank)))
        model.append(layer)
        twin.append(layer)
    shape = (2, 40) if rank == 1 else (2, 9, 12, 14)
    return nn.Sequential(*model), nn.Sequential(*twin), shape


@pytest.mark.parametrize("rank", [1, 3])
def test_random_stacks_analytic_equals_gradient(rank: int) -> None:
    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(stacks(rank))
    def check(stack) -> None:
        model, twin, shape = stack
        try:
            with torch.no_grad():
                twin.double()(torch.ones(1, *shape, dtype=torch.float64))
            analyze_graph(graph_from_module(model, shape).graph)
        except (RuntimeError, CnnstatError):
            return  # a stack that shrinks the input to nothing is not a network
        assert_agrees(model, twin, shape)

    check()


# --- the CLI --------------------------------------------------------------------------------

CLIP = """name: clip
input: [3, 8, 32, 32]
layers:
  - {conv3d: 4, k: [3, 7, 7], s: [1, 2, 2], p: [1, 3, 3]}
  - relu
  - {maxpool3d: [1, 3, 3], s: [1, 2, 2], p: [0, 1, 1]}
  - gap3d
"""


def test_rf_cli_shows_3d_fields_as_d_x_h_x_w(tmp_path) -> None:
    """Table: 3x7x7 for D x H x W (one value only where every axis agrees); JSON: one value
    per axis; CSV: a column per axis."""
    spec = tmp_path / "clip.yaml"
    spec.write_text(CLIP)
    runner = CliRunner()
    table = runner.invoke(app, ["rf", str(spec), "--format", "table"])
    assert table.exit_code == 0, table.output
    assert "3x7x7" in table.stdout and "3x11x11" in table.stdout and "1x4x4" in table.stdout
    data = json.loads(runner.invoke(app, ["rf", str(spec), "--json"]).stdout)
    conv = data["layers"][0]["rf"]
    assert conv["size"] == [3, 7, 7] and conv["stride"] == [1, 2, 2]
    assert data["axes"] == ["d", "h", "w"] and data["diagnostics"] == []
    csv = runner.invoke(app, ["rf", str(spec), "--format", "csv"]).stdout.splitlines()
    assert csv[0].startswith("name,kind,output_shape,size_d,size_h,size_w,stride_d")
    unit = runner.invoke(app, ["rf", str(spec), "--layer", "conv1", "--unit", "0,0,0",
                               "--json"])
    assert unit.exit_code == 0, unit.output
    assert json.loads(unit.stdout)["clipped"] == {"d": [0, 1], "h": [0, 3], "w": [0, 3]}


def test_compare_gives_a_3d_field(tmp_path) -> None:
    spec = tmp_path / "clip.yaml"
    spec.write_text(CLIP)
    result = CliRunner().invoke(app, ["compare", str(spec), "resnet18", "--json"])
    assert result.exit_code == 0, result.output
    clip = json.loads(result.stdout)["models"][0]["metrics"]
    assert clip["rf"] == 11 and "3x11x11" in clip["rf_note"]


# --- torchvision's video models (stage 2) ---------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_torchvision_video_fields_equal_gradient(name: str) -> None:
    """At the end of the stem and of each stage, on a 3x6x40x40 clip on the CPU: our field's
    region of the central unit (clipped to the clip) is the gradient's."""
    tvm = pytest.importorskip("torchvision.models.video")
    model = getattr(tvm, name)(weights=None).eval()
    shape = (3, 6, 40, 40)
    graph, shapes, fields, diagnostics = analytic_fields(model, shape)
    assert diagnostics == ()
    stages = ["stem", "layer1", "layer2", "layer3", "layer4"]
    measured = gradient_regions(positive(model), shape,
                                {s: getattr(model, s) for s in stages})
    for stage in stages:
        last = [n.name for n in graph.nodes if n.name.startswith(f"{stage}.")][-1]
        unit, spans = measured[stage]
        field = fields[last]
        assert field is not None and not field.is_global, (stage, last)
        assert field.region(unit, clipped=True) == spans, (stage, field.to_dict(), spans)
    assert fields[graph.outputs[0]].is_global


@pytest.mark.parametrize("model", ["resnet18", "CLIP"])
@pytest.mark.parametrize("text", ["3xabc", "16x", "3*224*224"])
def test_a_bad_input_says_every_form_accepted(tmp_path, model: str, text: str) -> None:
    """An image model and a clip alike: exit 2, one line naming CxL, CxHxW and CxTxHxW, no
    traceback (the message once said only 'CxHxW, HxW or a size', even for video)."""
    if model == "CLIP":
        model = str(tmp_path / "clip.yaml")
        (tmp_path / "clip.yaml").write_text(CLIP)
    result = CliRunner().invoke(app, ["params", model, "--input", text])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"got '{text}'" in lines[0], result.stderr
    assert all(form in lines[0] for form in ("CxL", "CxHxW", "CxTxHxW"))
    assert "Traceback" not in result.output
