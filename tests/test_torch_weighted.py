"""Functional calls that read module tensors become layer kinds, not opaque nodes.

The modules below are written the way timm and torchvision write theirs: a BatchNorm2d
subclass calling `F.batch_norm` with its own running stats (timm's BatchNormAct2d), a
LayerNorm subclass permuting to channels-last around `F.layer_norm` (torchvision's
ConvNeXt LayerNorm2d), a layer scale `gamma * x` (ConvNeXt), `F.conv2d` / `F.linear` with
`self.weight` (timm's Conv2dSame / Linear), `x.transpose(1, 2)`. Oracles: torch's
`parameters()`, `buffers()`, FlopCounterMode / 2 and the output shape of a meta forward.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers.engine import analyze_graph, infer_shapes
from cnnstat.analyzers.rf import receptive_fields
from cnnstat.frontends import graph_from_module


class BatchNormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d: BN by F.batch_norm, then an activation module."""

    def __init__(self, channels: int):
        super().__init__(channels)
        self.act = nn.ReLU()

    def forward(self, x):
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         False, self.momentum, self.eps)
        return self.act(x)


class LayerNorm2d(nn.LayerNorm):
    """torchvision's ConvNeXt LayerNorm2d."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class FunctionalConv(nn.Conv2d):
    """timm's Conv2dSame: F.conv2d with the module's own weight and bias."""

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class FunctionalLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class Block(nn.Module):
    """A ConvNeXt-like block: depthwise conv, channels-first layer norm, layer scale."""

    def __init__(self, c: int):
        super().__init__()
        self.dw = FunctionalConv(c, c, 7, padding=3, groups=c)
        self.norm = LayerNorm2d(c, eps=1e-6)
        self.pw = nn.Conv2d(c, c, 1)
        self.layer_scale = nn.Parameter(torch.full((c, 1, 1), 1e-6))
        self.gamma = nn.Parameter(torch.ones(c))

    def forward(self, x):
        y = self.layer_scale * self.pw(self.norm(self.dw(x)))
        y = y.mul(self.gamma.reshape(1, -1, 1, 1))  # timm's form of the same scale
        return x + y


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.bn = BatchNormAct(16)
        self.block = Block(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = FunctionalLinear(16, 10)

    def forward(self, x):
        x = self.block(self.bn(self.stem(x)))
        n, c, h, w = x.shape
        x = x.reshape(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.fc(torch.flatten(self.pool(x), 1))


SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def traced():
    torch.manual_seed(0)
    module = Net()
    return module, graph_from_module(module, SHAPE)


def _torch_flops(module: nn.Module) -> tuple[int, tuple[int, ...]]:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = module.eval()(torch.randn(1, *SHAPE))
    return counter.get_total_flops(), tuple(out.shape)


def test_every_call_becomes_a_kind(traced):
    _, result = traced
    kinds = {node.name: node.kind for node in result.graph}
    assert "opaque" not in kinds.values(), result.diagnostics
    assert kinds["bn.batch_norm"] == "batch_norm2d" and kinds["bn.act"] == "relu"
    assert kinds["block.norm.layer_norm"] == "layer_norm"
    assert kinds["block.dw.conv2d"] == "conv2d" and kinds["fc.linear"] == "linear"
    assert kinds["block.mul"] == kinds["block.mul_1"] == "scale"
    # ShuffleNet's view / transpose / view is one channel shuffle, named as its last call
    assert kinds["reshape_1"] == "channel_shuffle" and "transpose" not in kinds


def test_totals_equal_torch(traced):
    """The module's tensors read by the calls are the layers' own: params and buffers are
    torch's (BN's num_batches_tracked included, though F.batch_norm does not read it at
    inference); MACs are FlopCounterMode / 2."""
    module, result = traced
    report = analyze_graph(result.graph)
    flops, out = _torch_flops(module)
    assert report.totals.params == sum(p.numel() for p in module.parameters())
    assert report.totals.buffers == sum(b.numel() for b in module.buffers())
    assert 2 * report.totals.macs == flops
    assert report.outputs[-1][1] == out


def test_layer_norm_through_permutes_keeps_the_receptive_field(traced):
    """Channels-first layer norm, traced as permute / layer_norm / permute: the field
    follows the axes, so the 7x7 depthwise conv after the 3x3 stem reads 3 + 6*2 = 15."""
    _, result = traced
    fields, _ = receptive_fields(result.graph, infer_shapes(result.graph, SHAPE))
    assert all(fields[node.name] is not None for node in result.graph)
    assert fields["block.norm.permute_1"].size == (15, 15)
    assert fields["block.add"].size == (15, 15)


class Branches(nn.Module):
    """HRNet's fuse layer: nn.Upsample with a float scale factor; and two calls of a
    function returning several tensors in one scope (CoaT's split of its heads)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")

    def forward(self, x):
        x = self.up(self.conv(x))
        a, b = torch.split(x, [4, 4], dim=1)
        c, d = torch.split(a + b, [2, 2], dim=1)
        return c + d


def test_float_scale_factor_and_repeated_multi_output_calls():
    """Used to fail with "TypeError: 'float' object is not iterable" (timm's hrnet_w18)
    and "duplicate layer name 'split[0]'" (timm's coat_tiny)."""
    module = Branches()
    result = graph_from_module(module, SHAPE)
    names = [node.name for node in result.graph]
    assert len(names) == len(set(names))
    assert result.graph.node("up").kind == "upsample"
    report = analyze_graph(result.graph)
    flops, out = _torch_flops(module)
    assert report.totals.params == sum(p.numel() for p in module.parameters())
    assert 2 * report.totals.macs == flops and report.outputs[-1][1] == out


class ConstantWork(nn.Module):
    """Swin v2's continuous position bias: an MLP run on a constant coordinate table,
    whose result is added to the activations. torch counts the MLP's multiply-adds."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("table", torch.zeros(32 * 32, 2))
        self.mlp = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 4))

    def forward(self, x):
        bias = self.mlp(self.table).transpose(0, 1).reshape(1, 4, 32, 32)
        return self.conv(x) + bias


def test_work_on_constants_is_counted_once_where_it_is_used():
    """Used to be dropped: Swin v2's MACs were 0.31 % below FlopCounterMode."""
    module = ConstantWork()
    report = analyze_graph(graph_from_module(module, SHAPE).graph)
    flops, _ = _torch_flops(module)
    assert 2 * report.totals.macs == flops
    assert report.totals.params == sum(p.numel() for p in module.parameters())


class Transposed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x).transpose(2, 3).transpose(-1, -2)


def test_transpose_is_the_permute_of_two_dims():
    result = graph_from_module(Transposed(), (3, 8, 12))
    layers = {node.name: node.layer for node in result.graph}
    assert layers["transpose"].dims == (0, 1, 3, 2) and layers["transpose_1"].dims == (0, 1, 3, 2)
    assert analyze_graph(result.graph).outputs[-1][1] == (1, 4, 6, 10)


class SkippedBranch(nn.Module):
    """timm's MobileOne block: branches summed onto `0` when a branch is left out."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        identity = 0
        out = 0
        out += self.conv(x)
        out += identity
        return out


def test_adding_a_left_out_branch_is_the_identity():
    result = graph_from_module(SkippedBranch(), SHAPE)
    kinds = [node.kind for node in result.graph]
    assert "opaque" not in kinds and "identity" in kinds


class Gate(nn.Module):
    """timm's ECA / SE gate written `x * y.expand_as(x)`."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        x = self.conv(x)
        return x * self.gate(self.pool(x)).expand_as(x)


def test_expand_as_before_a_broadcasting_multiply_is_skipped():
    module = Gate()
    result = graph_from_module(module, SHAPE)
    assert result.graph.node("mul").kind == "multiply"
    assert result.graph.node("mul").inputs == ("conv", "gate")
    report = analyze_graph(result.graph)
    flops, out = _torch_flops(module)
    assert 2 * report.totals.macs == flops and report.outputs[-1][1] == out


class ReshapeAs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        flat = y.flatten(2)
        return flat.reshape_as(y) + y


def test_reshape_as_is_a_reshape_to_the_other_tensors_shape():
    result = graph_from_module(ReshapeAs(), SHAPE)
    node = result.graph.node("reshape")
    assert node.kind == "reshape" and node.inputs == ("flatten",)
    assert "opaque" not in [n.kind for n in result.graph]


class LastPart(nn.Module):
    """Res2Net: `spx = torch.split(x, w, 1)`, then `torch.cat((..., spx[-1]), 1)`."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        parts = torch.split(self.conv(x), 4, 1)
        return torch.cat((parts[0], parts[-1]), 1)


def test_an_element_taken_from_the_end_is_that_element():
    result = graph_from_module(LastPart(), SHAPE)
    cat = result.graph.node("cat")
    assert cat.kind == "concat" and len(cat.inputs) == 2 and cat.inputs[1].endswith("[1]")
