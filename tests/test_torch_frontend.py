"""The torch frontend (cnnstat.frontends) against torch itself.

Every module here is written in plain torch, in this file, and analyzed through
`graph_from_module` (fx trace, or the recorded-forward fallback). The oracles are torch's:
`sum(p.numel())`, FlopCounterMode / 2, the output shapes of a meta forward (real, for the
value-dependent module), and the gradient of the original module for receptive fields.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from oracles import EVERY_OUTPUT_RUNS, eval_path
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from cnnstat.analyzers import analyze_graph
from cnnstat.errors import AnalysisError, UnknownModelError, UsageError
from cnnstat.frontends import graph_from_module, resolve_reference
from cnnstat.frontends.torch_ref import parameters_on_meta, parse_kwargs, parse_reference

HERE = Path(__file__).resolve()


# --- test-local modules ----------------------------------------------------------------------

def conv_bn_relu(c_in: int, c_out: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class ConvStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn_relu(3, 16, 3, 2), conv_bn_relu(16, 32),
                                      conv_bn_relu(32, 32, 5))

    def forward(self, x):
        return self.features(x)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # in place, as torchvision writes it
        return self.relu(out)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn_relu(3, 16)
        self.layer1 = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2))
        self.head = nn.Conv2d(32, 8, 1)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        return self.head(x) + self.head(x).sigmoid()  # `+` of two computed tensors


class Branches(nn.Module):
    """An Inception module: four branches joined by torch.cat."""

    def __init__(self):
        super().__init__()
        self.b1 = nn.Conv2d(16, 8, 1)
        self.b2 = nn.Sequential(nn.Conv2d(16, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(16, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(16, 8, 1))
        self.stem = nn.Conv2d(3, 16, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GroupedDepthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.grouped = nn.Conv2d(32, 64, 3, padding=1, groups=4)
        self.depthwise = nn.Conv2d(64, 64, 3, stride=2, padding=2, dilation=2, groups=64,
                                   bias=False)
        self.pointwise = nn.Conv2d(64, 24, 1)
        self.act = nn.ReLU6()

    def forward(self, x):
        x = self.grouped(self.stem(x))
        x = F.channel_shuffle(x, 4)
        return self.pointwise(self.act(self.depthwise(x)))


class Transposed(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 16, 4, stride=2, padding=1)
        self.up1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(8, 8, 3, stride=2, padding=2, dilation=2, groups=2,
                                      output_padding=1, bias=False)

    def forward(self, x):
        return self.up2(F.relu(self.up1(self.down(x))))


class Functional(nn.Module):
    """Functional calls between modules, including a view-flatten and an SE gate."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.squeeze = nn.Linear(16, 4)
        self.excite = nn.Linear(4, 16)
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 3, 2, 1, ceil_mode=True)
        x = F.leaky_relu(self.conv2(x), 0.2)
        gate = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(gate))))
        x = x * gate.view(gate.size(0), -1, 1, 1)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.avg_pool2d(x, 4)
        x = F.dropout(x, 0.3, training=self.training)
        return self.fc(x.view(x.size(0), -1))


class MobileGate(nn.Module):
    """MobileNetV3's squeeze-excitation: a hardsigmoid gate, as a module and as a call."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.act = nn.Hardswish()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(16, 8, 1)
        self.fc2 = nn.Conv2d(8, 16, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        x = self.act(self.conv(x))
        scale = self.gate(self.fc2(F.relu(self.fc1(self.pool(x)))))
        return F.hardsigmoid(x * scale)


class ShapeDependent(nn.Module):
    """Control flow on sizes: fx cannot trace it, a meta forward can run it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.refine = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        if x.shape[-1] > 16:
            x = F.avg_pool2d(x, 2)
        for _ in range(x.shape[1] // 4):
            x = F.relu(self.refine(x))
        return x


class ValueDependent(nn.Module):
    """Control flow on values: neither fx nor meta tensors can run it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.finite = nn.Conv2d(8, 4, 3, padding=1)
        self.fallback = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = self.conv(x)
        if torch.isfinite(x).all():
            return self.finite(x)
        return self.fallback(x)


class WithOpaque(nn.Module):
    """An InstanceNorm, a max over dims, a module called twice, a parameter used directly."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.shared = nn.Conv2d(8, 8, 3, padding=1)
        self.scale = nn.Parameter(torch.ones(1, 8, 16, 16))  # per position: no kind
        self.norm = nn.InstanceNorm2d(8, affine=True)  # no kind (yet): opaque
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = self.shared(self.shared(self.stem(x)))
        x = x * self.scale
        return self.fc(self.norm(x).amax((2, 3)))


class SelfPadding(nn.Module):
    """Convolutions with reflect, replicate and circular `padding_mode`: torch's forward
    pads, then convolves with no padding; each is a scope of a `pad` and a conv."""

    def __init__(self):
        super().__init__()
        self.reflect = nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
        self.circular = nn.Conv2d(8, 8, 3, stride=2, padding=(1, 2), padding_mode="circular")
        self.replicate = nn.Conv2d(8, 4, 5, padding=2, dilation=2, bias=False,
                                   padding_mode="replicate")
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = self.replicate(torch.relu(self.circular(torch.relu(self.reflect(x)))))
        return self.fc(x.mean((2, 3)))


CASES = {
    "conv_stack": (ConvStack, (3, 32, 32)),
    "residual": (Residual, (3, 32, 32)),
    "branches": (Branches, (3, 28, 28)),
    "grouped_depthwise": (GroupedDepthwise, (3, 32, 32)),
    "transposed": (Transposed, (3, 20, 20)),
    "functional": (Functional, (3, 32, 32)),
    "mobile_gate": (MobileGate, (3, 16, 16)),
    "shape_dependent": (ShapeDependent, (3, 32, 32)),
    "value_dependent": (ValueDependent, (3, 16, 16)),
    "with_opaque": (WithOpaque, (3, 16, 16)),
    "self_padding": (SelfPadding, (3, 24, 24)),
}


# --- torch's truth ------------------------------------------------------------------------------

def torch_oracle(module: nn.Module, shape: tuple[int, ...]):
    """params and buffers (sum of numel, less the modules the forward never called),
    FlopCounterMode FLOPs and per-call module output shapes, from a meta forward of a meta
    copy (a real forward when the forward reads values)."""
    try:
        flops, shapes, out = _forward(copy.deepcopy(module).to("meta").eval(),
                                      torch.empty(1, *shape, device="meta"))
    except RuntimeError:  # Tensor.item() on meta: run it for real
        flops, shapes, out = _forward(copy.deepcopy(module).eval(), torch.randn(1, *shape))
    called = {path.split("@")[0] for path in shapes}
    uncalled = [m for path, m in module.named_modules()
                if path and not list(m.children()) and path not in called]
    params = sum(p.numel() for p in module.parameters()) - \
        sum(p.numel() for m in uncalled for p in m.parameters())
    buffers = sum(b.numel() for b in module.buffers()) - \
        sum(b.numel() for m in uncalled for b in m.buffers())
    return params, buffers, flops, shapes, out


def _forward(module: nn.Module, x: torch.Tensor):
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for path, sub in module.named_modules():
        if path and not list(sub.children()):
            def record(_m, _i, out, path=path):
                calls = sum(1 for k in shapes if k == path or k.startswith(path + "@"))
                shapes[path if calls == 0 else f"{path}@{calls}"] = tuple(out.shape)
            hooks.append(sub.register_forward_hook(record))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = module(x)
    for hook in hooks:
        hook.remove()
    return counter.get_total_flops(), shapes, tuple(out.shape)


def ours(name: str):
    factory, shape = CASES[name]
    torch.manual_seed(0)
    module = factory()
    traced = graph_from_module(module, shape)
    return module, shape, traced, analyze_graph(traced.graph)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    module, shape, traced, report = ours(request.param)
    return request.param, module, shape, traced, report, torch_oracle(module, shape)


# --- counts and shapes -----------------------------------------------------------------------

def test_params_equal_sum_of_numel(case):
    """Catches a parameter counted twice (a module called twice, a shared weight) or lost
    (a parameter read directly by a functional op), and BN stats counted as params. Only
    value_dependent has a module its forward never calls; its params are named apart."""
    name, module, _, traced, report, (params, buffers, *_rest) = case
    assert report.totals.params == params, name
    assert report.totals.buffers == buffers, name
    unused = sum(p.numel() for p in module.parameters()) - params
    if unused:
        assert any(f"never called are not in the totals: fallback ({unused})" in d
                   for d in traced.diagnostics)


def test_macs_equal_flop_counter_mode(case):
    """Catches a converter that maps a call to the wrong layer (groups, transposed conv
    on the output size, a dilation dropped): torch's FlopCounterMode / 2 is the truth."""
    name, _, _, _, report, (_, _, flops, _, _) = case
    assert 2 * report.totals.macs == flops, name


def test_shapes_equal_a_meta_forward(case):
    """Every module call's output shape and the model's output equal what torch produced;
    node names are the module paths (`layer1.1.conv2`, `@1` for a second call)."""
    name, _, _, _, report, (_, _, _, shapes, out_shape) = case
    rows = {row.name: row.output_shape for row in report.layers}
    for path, shape in shapes.items():
        # a module traced through (a conv that pads itself): its scope's last node
        inner = [out for row, out in rows.items() if row.startswith(f"{path}.")]
        assert rows.get(path, inner[-1] if inner else None) == shape, f"{name}: {path}"
    assert report.outputs[-1][1] == out_shape, name


def test_functional_calls_become_layer_kinds():
    """`+` / `+=`, torch.cat, F.relu, pools, views and the SE multiply are translated, not
    left opaque: each becomes its IR kind, named in the scope of the module that made it."""
    _, _, traced, _ = ours("functional")
    kinds = {node.name: node.kind for node in traced.graph}
    assert kinds["max_pool2d"] == "max_pool2d" and kinds["leaky_relu"] == "leaky_relu"
    assert kinds["adaptive_avg_pool2d"] == "adaptive_avg_pool2d"
    assert kinds["mul"] == "multiply" and kinds["interpolate"] == "upsample"
    assert kinds["view_1"] == "flatten" and kinds["avg_pool2d"] == "avg_pool2d"
    assert "opaque" not in kinds.values()
    _, _, residual, _ = ours("residual")
    kinds = {node.name: node.kind for node in residual.graph}
    assert kinds["layer1.0.add"] == kinds["layer1.1.add"] == kinds["add"] == "add"
    assert residual.graph.node("layer1.1.add").inputs == ("layer1.1.bn2", "layer1.1.downsample.1")
    _, _, branches, _ = ours("branches")
    assert branches.graph.node("cat").inputs == ("b1", "b2.2", "b3.2", "b4.1")


def test_a_convolution_that_pads_itself_is_a_pad_and_the_convolution():
    """Its kind pads with zeros, so the module is traced through: torch's own `F.pad`
    (the mode kept) and the convolution with no padding, in the module's scope, in both
    the fx trace and the recorded forward; the export writes them and loads back."""
    _, _, traced, report = ours("self_padding")
    kinds = {node.name: node.kind for node in traced.graph}
    for path in ("reflect", "circular", "replicate"):
        assert (kinds[f"{path}.pad"], kinds[f"{path}.conv2d"]) == ("pad", "conv2d")
    modes = {node.name: node.layer.mode for node in traced.graph if node.kind == "pad"}
    assert modes == {"reflect.pad": "reflect", "circular.pad": "circular",
                     "replicate.pad": "replicate"}
    assert "opaque" not in kinds.values()
    conv1d = nn.Sequential(nn.Conv1d(3, 4, 5, padding=2, padding_mode="reflect"))
    assert [n.kind for n in graph_from_module(conv1d, (3, 20)).graph] == \
        ["input", "pad", "conv1d"]
    from oracles import spec_graph

    from cnnstat.writer import spec_from_graph

    again = analyze_graph(spec_graph(spec_from_graph(traced.graph).text))
    assert (again.totals.params, again.totals.macs) == (report.totals.params,
                                                        report.totals.macs)

    class Recorded(SelfPadding):  # reads a value: fx and meta fail, hooks record it
        def forward(self, x):
            return super().forward(x) if x.sum() > -1e9 else x

    recorded = graph_from_module(Recorded(), (3, 24, 24))
    assert "real tensors" in recorded.diagnostics[0]
    assert {n.name: n.kind for n in recorded.graph if n.kind in ("pad", "conv2d")} == \
        {k: v for k, v in kinds.items() if v in ("pad", "conv2d")}
    assert analyze_graph(recorded.graph).totals.macs == report.totals.macs


def test_hardsigmoid_module_and_call_become_the_kind():
    _, _, traced, _ = ours("mobile_gate")
    kinds = {node.name: node.kind for node in traced.graph}
    assert kinds["gate"] == kinds["hardsigmoid"] == "hardsigmoid"
    assert "opaque" not in kinds.values()


def test_opaque_ops_are_counted_by_torch_not_zeroed():
    """An InstanceNorm, an amax, a shared-weight second call and `x * parameter` stay opaque:
    torch's count as MACs, the parameter counted once, element-wise work shown as unknown
    (None), and all of them listed in the diagnostics."""
    _, _, traced, report = ours("with_opaque")
    opaque = {row.name: row for row in report.layers if row.kind == "opaque"}
    assert set(opaque) == {"shared@1", "mul", "amax", "norm"}
    # 16*16 outputs x 8 channels x 8*3*3 multiply-adds, counted by torch for the 2nd call
    assert opaque["shared@1"].macs == 16 * 16 * 8 * 8 * 9 and opaque["shared@1"].params == 0
    assert opaque["mul"].params == 8 * 16 * 16 and opaque["norm"].params == 16
    assert all(row.other_ops is None for row in opaque.values())
    assert any("kept opaque" in d and "norm (nn.InstanceNorm2d)" in d for d in traced.diagnostics)


def test_fallbacks_say_how_the_graph_was_made():
    """fx for static code; module hooks on meta tensors when fx meets control flow on
    sizes; real tensors when the forward reads values (and the untaken branch's weights
    are reported, not silently dropped)."""
    assert ours("residual")[2].method.startswith("torch.fx")
    shape_dep = ours("shape_dependent")[2]
    assert shape_dep.method == "module hooks on meta tensors (fx fallback)"
    assert any("torch.fx could not trace" in d for d in shape_dep.diagnostics)
    assert [n.name for n in shape_dep.graph][-2:] == ["refine@1", "relu_1"]
    value_dep = ours("value_dependent")[2]
    assert "real tensors" in value_dep.method
    assert any("fallback (36)" in d for d in value_dep.diagnostics)  # 8*4*1*1 + 4


def test_the_users_module_is_left_untouched():
    """Tracing swaps in meta stand-ins through functional_call: the module keeps its real
    weights and its training flag."""
    module = Functional().train()
    before = module.conv1.weight.clone()
    graph_from_module(module, (3, 32, 32))
    assert module.training and not module.conv1.weight.is_meta
    assert torch.equal(module.conv1.weight, before)


# --- receptive fields --------------------------------------------------------------------------

def _gradient_region(module: nn.Module, layer: str, shape: tuple[int, ...]):
    """Rows and columns of the input with a nonzero gradient from the sum over channels at
    the central unit of `layer` (docs/architecture.md, "Verification": positive weights,
    zero bias, identity BN, float64, input of ones)."""
    module = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.fill_(1.0 / max(1, p[0].numel()) if name.endswith("weight") else 0.0)
    captured = {}
    module.get_submodule(layer).register_forward_hook(lambda m, i, o: captured.update(out=o))
    x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
    module(x)
    out = captured["out"]
    cy, cx = out.shape[2] // 2, out.shape[3] // 2
    out[0, :, cy, cx].sum().backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = x.grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()
    return (cy, cx), ((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1])))


@pytest.mark.parametrize("name, layer", [
    ("conv_stack", "features.2.0"), ("residual", "layer1.1.conv2"),
    ("grouped_depthwise", "pointwise"), ("transposed", "up2"), ("branches", "b3.2"),
    ("self_padding", "circular"), ("self_padding", "replicate"),
])
def test_receptive_fields_equal_the_gradient(name, layer):
    """The traced graph's analytic field of a unit equals the input region that unit's
    gradient reaches in the ORIGINAL module (a wrong stride, padding or dilation in a
    converter, or a residual edge to the wrong node, moves it)."""
    rf = pytest.importorskip("cnnstat.analyzers.rf")
    from cnnstat.analyzers.engine import infer_shapes

    factory, _ = CASES[name]
    shape = (3, 48, 48)
    torch.manual_seed(0)
    module = factory()
    graph = graph_from_module(module, shape).graph
    fields, _ = rf.receptive_fields(graph, infer_shapes(graph, shape))
    unit, measured = _gradient_region(module, layer, shape)
    # a module traced through (a conv that pads itself): its scope's last node
    node = layer if layer in fields else [n for n in fields if n.startswith(f"{layer}.")][-1]
    assert fields[node].region(unit, clipped=True) == measured


# --- references, building, the CLI ---------------------------------------------------------------

MODELS_FILE = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, num_classes=10, width=8):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)
        self.register_buffer("scale", torch.arange(3.0))

    def forward(self, x):
        x = self.bn(self.conv(x)).relu()
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

def make(depth=2):
    return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(depth)])

class ReadsWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.gain = float(self.conv.weight.detach().abs().max())  # impossible on meta

    def forward(self, x):
        return self.conv(x)

instance = nn.Conv2d(3, 2, 1)
not_a_model = 42
'''


@pytest.fixture(scope="module")
def models_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("refs") / "user_models.py"
    path.write_text(MODELS_FILE)
    return path


def test_class_is_built_with_parameters_on_meta(models_file):
    """Parameters land on meta (no weight memory) while buffers the constructor computes
    stay real; kwargs reach the constructor; the input's channels come from the first conv."""
    resolved = resolve_reference(f"{models_file}:Net", kwargs='{"num_classes": 5, "width": 4}')
    module = resolved.module
    assert all(p.is_meta for p in module.parameters())
    assert not module.scale.is_meta and module.scale.tolist() == [0.0, 1.0, 2.0]
    report = analyze_graph(resolved.graph)
    assert report.totals.params == sum(p.numel() for p in module.parameters())
    assert report.input_shape == (1, 1, 224, 224) and report.outputs[0][1] == (1, 5)


def test_constructor_that_reads_weights_falls_back_with_a_note(models_file):
    resolved = resolve_reference(f"{models_file}:ReadsWeights")
    assert not resolved.module.conv.weight.is_meta
    assert any("real weights" in d for d in resolved.diagnostics)


def test_factory_and_instance_references(models_file):
    factory = resolve_reference(f"{models_file}:make", kwargs={"depth": 3}, input="3x8x8")
    assert [n.name for n in factory.graph][1:] == ["0", "1", "2"]
    instance = resolve_reference(f"{models_file}:instance", input=(3, 4, 4))
    assert analyze_graph(instance.graph).totals.params == 3 * 2 + 2


@pytest.mark.parametrize("text, kind, target, attr", [
    ("torchvision:resnet50", "torchvision", "resnet50", "resnet50"),
    ("pkg.models:Net", "module", "pkg.models", "Net"),
    ("nets/my model.py:Outer.make", "file", "nets/my model.py", "Outer.make"),
])
def test_parse_reference(text, kind, target, attr):
    ref = parse_reference(text)
    assert (ref.kind, ref.target, ref.attr) == (kind, target, attr)


@pytest.mark.parametrize("text, kwargs, error, message", [
    ("{models}:Net", "{num_classes: 3}", UsageError, "not valid JSON"),
    ("{models}:Net", "[1, 2]", UsageError, "must be a JSON object"),
    ("{models}:Net", '{"classes": 3}', UsageError, "does not take --kwargs"),
    ("{models}:instance", '{"a": 1}', UsageError, "already a module instance"),
    ("{models}:Nett", None, UnknownModelError, "did you mean 'Net'"),
    ("{models}:not_a_model", None, UsageError, "not an nn.Module"),
    ("no/such/file.py:Net", None, UnknownModelError, "no such file"),
    ("cnnstat_no_such_pkg.mod:Net", None, UnknownModelError, "no module named"),
    ("pkg.mod:1x", None, UsageError, "not an attribute name"),
])
def test_bad_references_fail_with_a_message(models_file, text, kwargs, error, message):
    """Each mistake a user can make in MODEL or --kwargs gets its own message and the
    exit code of its error class (2 for usage, unknown names)."""
    with pytest.raises(error, match=message) as caught:
        resolve_reference(text.format(models=models_file), kwargs=kwargs)
    assert caught.value.exit_code == 2


def test_import_failure_is_an_analysis_error(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise RuntimeError('boom')\n")
    with pytest.raises(AnalysisError, match="RuntimeError: boom") as caught:
        resolve_reference(f"{broken}:Net")
    assert caught.value.exit_code == 3


def test_parameters_on_meta_restores_registration():
    with parameters_on_meta():
        inside = nn.Linear(4, 4)
    outside = nn.Linear(4, 4)
    assert inside.weight.is_meta and not outside.weight.is_meta


def test_parse_kwargs_accepts_a_dict_or_nothing():
    assert parse_kwargs(None) == {} and parse_kwargs({"a": 1}) == {"a": 1}


def test_cli_analyzes_a_file_reference(models_file):
    """Every per-model command accepts a module reference with --kwargs; --help says that
    loading one runs its code; --kwargs on a spec is a usage error."""
    from cnnstat.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["params", f"{models_file}:Net", "--kwargs",
                                 '{"num_classes": 3}', "-i", "1x32x32", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # conv 1*8*3*3 + 8, BN 2*8, fc 8*3 + 3
    assert report["totals"]["params"] == 80 + 16 + 27
    assert any("traced by torch.fx" in d for d in report["diagnostics"])
    assert "RUNS ITS CODE" in " ".join(runner.invoke(app, ["flops", "--help"]).output.split())
    assert runner.invoke(app, ["params", "vgg16", "--kwargs", "{}"]).exit_code == 2


# --- torchvision twins ---------------------------------------------------------------------------

def _twin_cases():
    specs = HERE.parents[1] / "specs"
    names = sorted(p.stem for p in specs.glob("*.yaml"))
    slow = {"inception_v3", "resnet101", "resnet152", "densenet121", "densenet161", "densenet169",
            "densenet201", "vgg19_bn", "vgg16_bn", "vgg13_bn"}
    return [pytest.param(n, marks=[pytest.mark.slow] if n in slow else [], id=n) for n in names]


# googlenet without aux heads is what torchvision publishes; init_weights=False skips an
# init that is pointless here. Inception v3 keeps AuxLogits (eval mode never runs it).
TWIN_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False},
               "inception_v3": {"init_weights": False}}
# Segmentation specs keep the aux head their weights have (eval mode runs it too).
TWIN_KWARGS.update({n: {"aux_loss": True} for n in EVERY_OUTPUT_RUNS})


@pytest.mark.oracle
@pytest.mark.parametrize("name", _twin_cases())
def test_torchvision_twin_matches_its_spec(name):
    """The torchvision model a zoo spec copies, traced by this frontend, gives the spec's
    numbers: params (a training-only aux head in both, Inception v3's AuxLogits), MACs
    and the conv/linear output shapes on the path eval mode runs."""
    tvm = pytest.importorskip("torchvision.models")
    from cnnstat.spec import load_spec

    graph = load_spec(HERE.parents[1] / "specs" / f"{name}.yaml")
    if graph.meta.follows != "torchvision" or name not in tvm.list_models():
        pytest.skip(f"{name} does not follow a torchvision model")
    traced = resolve_reference(f"torchvision:{name}", kwargs=TWIN_KWARGS.get(name))
    size = traced.graph.meta.input
    spec = analyze_graph(graph, size)
    twin = analyze_graph(traced.graph)
    every = name in EVERY_OUTPUT_RUNS
    main = eval_path(graph, every)
    spec_rows = [r for r in spec.layers if r.name in main]
    assert twin.totals.params == spec.totals.params
    assert twin.totals.train_only_params == spec.totals.train_only_params
    assert twin.totals.macs == sum(r.macs or 0 for r in spec_rows)

    def weight_shapes(rows):
        return [r.output_shape for r in rows if r.kind in ("conv2d", "linear")]
    twin_main = eval_path(traced.graph, every)
    assert weight_shapes([r for r in twin.layers if r.name in twin_main]) == \
        weight_shapes(spec_rows)


# --- memory ------------------------------------------------------------------------------------

WIDE_VGG = '''
from torch import nn

class WideVGG(nn.Module):
    """VGG-16 at twice the width with 9216-wide FC layers: 615,438,952 parameters."""

    def __init__(self, width=2, hidden=9216):
        super().__init__()
        layers, c = [], 3
        for w, n in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]:
            for _ in range(n):
                layers += [nn.Conv2d(c, w * width, 3, padding=1), nn.ReLU(inplace=True)]
                c = w * width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(c * 49, hidden), nn.ReLU(True), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(), nn.Linear(hidden, 1000))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))
'''

MEASURE = '''
import json, resource, sys, time
start = time.perf_counter()


def peak_rss_kib():
    # VmHWM is this address space's own peak. ru_maxrss is not: Linux carries it across
    # exec, so a child forked from a large pytest process would report the parent's size.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

from cnnstat.analyzers import analyze_graph
from cnnstat.frontends import resolve_reference
resolved = resolve_reference(sys.argv[1])
report = analyze_graph(resolved.graph)
print(json.dumps({"params": report.totals.params, "macs": report.totals.macs,
                  "numel": sum(p.numel() for p in resolved.module.parameters()),
                  "seconds": time.perf_counter() - start,
                  "peak_rss_kib": peak_rss_kib()}))
'''


@pytest.mark.slow
def test_600m_parameter_model_analyzes_in_under_1_gb(tmp_path):
    """Parameters on meta: a 615 M-parameter model (2.3 GiB of fp32 weights) is built,
    traced and analyzed with a peak RSS under 1 GB (the child's own VmHWM, in a fresh
    process, so the figure includes importing torch)."""
    path = tmp_path / "wide_vgg.py"
    path.write_text(textwrap.dedent(WIDE_VGG))
    # A clean environment: the test process may carry state torch set for itself (e.g.
    # TORCHINDUCTOR_CACHE_DIR after earlier tests touched dynamo), which a user's fresh
    # `cnnstat` process would not have.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
           "PYTHONPATH": str(HERE.parents[1])}
    out = subprocess.run([sys.executable, "-c", MEASURE, f"{path}:WideVGG"], env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    # convs: VGG-16's 13 at twice the width; fc: 1024*49*9216 + 9216, 9216^2 + 9216,
    # 9216*1000 + 1000
    convs = sum(9 * a * b + b for a, b in [
        (3, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512),
        (512, 1024), (1024, 1024), (1024, 1024), (1024, 1024), (1024, 1024), (1024, 1024)])
    fcs = 50176 * 9216 + 9216 + 9216 * 9216 + 9216 + 9216 * 1000 + 1000
    assert figures["params"] == figures["numel"] == convs + fcs == 615_438_952
    assert figures["peak_rss_kib"] * 1024 < 10**9, figures
    print(f"\n600M-param analysis: peak RSS {figures['peak_rss_kib'] / 1024:.0f} MiB, "
          f"{figures['seconds']:.1f} s")


class MyGate(nn.Module):
    """A user's own module (a subclass torch's converters do not know by class)."""

    def forward(self, x):
        return torch.clamp(x / 6 + 0.5, 0, 1)


def test_a_users_own_module_converts_through_the_public_registry():
    """docs/torch.md, "Your own modules and functions": a registered converter turns the
    call into a kind; torch's FlopCounterMode and shapes still decide whether it fits."""
    from cnnstat.frontends.converters import MODULES, register_module
    from cnnstat.ir import layers as L

    model = nn.Sequential(nn.Conv2d(3, 4, 3), MyGate())
    before = graph_from_module(model, (3, 8, 8)).graph
    # x / 6 and + 0.5 are scalar kinds, the clamp stays opaque: no hardsigmoid yet
    assert "opaque" in {node.kind for node in before if node.name.startswith("1.")}
    register_module(MyGate)(lambda module, call: L.Hardsigmoid())
    try:
        with pytest.raises(ValueError, match="registered twice"):
            register_module(MyGate)(lambda module, call: None)
        traced = graph_from_module(nn.Sequential(nn.Conv2d(3, 4, 3), MyGate()), (3, 8, 8))
        assert traced.graph.node("1").kind == "hardsigmoid"
        assert analyze_graph(traced.graph).layers[-1].output_shape == (1, 4, 6, 6)
    finally:
        del MODULES[MyGate]


# --- the cyclic collector -------------------------------------------------------------------

class _SeesCollector(nn.Module):
    """Records whether the cyclic collector ran while its forward was traced."""

    seen: list[bool] = []

    def forward(self, x):
        import gc

        _SeesCollector.seen.append(gc.isenabled())
        return x + 1


def test_tracing_pauses_the_collector_and_restores_it(models_file):
    """Import and trace run with the collector paused (it walked every torch object again
    at each collection: a third of the torch path's work); it is on again afterwards, also
    when the trace fails, and a program that turned it off keeps it off."""
    import gc

    _SeesCollector.seen.clear()
    graph_from_module(nn.Sequential(nn.Conv2d(3, 4, 3), _SeesCollector()), (3, 8, 8))
    assert _SeesCollector.seen and not any(_SeesCollector.seen)
    assert gc.isenabled()
    with pytest.raises(UnknownModelError):
        resolve_reference(f"{models_file}:NoSuchModel")
    assert gc.isenabled()
    gc.disable()
    try:
        resolve_reference(f"{models_file}:Net")
        assert not gc.isenabled()
    finally:
        gc.enable()
