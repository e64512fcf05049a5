"""Torch modules for the kinds of `cnnstat/ir/arith_layers.py`, registered into the
builder's registry (imported by the package). Each computes what the kind stands for the
way the networks that have it do (timm's GlobalResponseNorm, BlurPool2d, ScaledStdConv2d),
so tracing the built module converts back to the same kind."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from cnnstat.analyzers.shapes import Shape
from cnnstat.builder.torch_module import BUILDERS
from cnnstat.ir import layers as L


class Scalar(nn.Module):
    """x op value; a learned gain is a 0-d parameter."""

    def __init__(self, layer: L.Scalar):
        super().__init__()
        self.op = layer.op
        self.value = nn.Parameter(torch.tensor(layer.value)) if layer.learned else layer.value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = self.value
        if self.op == "mul":
            return x * value
        if self.op == "div":
            return x / value
        if self.op == "add":
            return x + value
        if self.op == "sub":
            return x - value
        return value - x if self.op == "rsub" else value / x


class Stack(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.stack(xs, self.dim)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's GRN, as timm computes it."""

    def __init__(self, channels: int, layer: L.GlobalResponseNorm):
        super().__init__()
        self.eps, self.channels_last = layer.eps, layer.channels_last
        self.weight = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial, channel = ((1, 2), -1) if self.channels_last else ((2, 3), 1)
        shape = (1, 1, 1, -1) if self.channels_last else (1, -1, 1, 1)
        g = x.norm(p=2, dim=spatial, keepdim=True)
        n = g / (g.mean(dim=channel, keepdim=True) + self.eps)
        return x + torch.addcmul(self.bias.view(shape), self.weight.view(shape), x * n)


class _ComputedWeightConv(nn.Module):
    def __init__(self, in_channels: int, layer):
        super().__init__()
        conv = layer.as_conv()
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.weight_shape = (conv.out_channels, in_channels // conv.groups, *conv.kernel_size)
        self.bias = nn.Parameter(torch.zeros(conv.out_channels)) if conv.bias else None

    def conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class FixedConv2d(_ComputedWeightConv):
    """A convolution with a fixed filter buffer (a box filter here, as a blur)."""

    def __init__(self, in_channels: int, layer: L.FixedConv2d):
        super().__init__(in_channels, layer)
        filt = torch.ones(self.weight_shape) / (self.weight_shape[2] * self.weight_shape[3])
        self.register_buffer("filt", filt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x, self.filt)


class StdConv2d(_ComputedWeightConv):
    """Weight standardization as timm's ScaledStdConv2d (gain) / StdConv2d (no gain)."""

    def __init__(self, in_channels: int, layer: L.StdConv2d):
        super().__init__(in_channels, layer)
        self.weight = nn.Parameter(torch.randn(self.weight_shape))
        out = self.weight_shape[0]
        self.gain = nn.Parameter(torch.ones(out, 1, 1, 1)) if layer.gain else None
        self.scale = self.weight[0].numel() ** -0.5 if layer.gain else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.weight_shape[0]
        gain = None if self.gain is None else (self.gain * self.scale).view(-1)
        weight = F.batch_norm(self.weight.reshape(1, out, -1), None, None, weight=gain,
                              training=True, momentum=0.0, eps=1e-6).reshape_as(self.weight)
        return self.conv(x, weight)


@BUILDERS.register(L.Scalar)
def _scalar(layer: L.Scalar, ins: tuple[Shape, ...]) -> nn.Module:
    return Scalar(layer)


@BUILDERS.register(L.Stack)
def _stack(layer: L.Stack, ins: tuple[Shape, ...]) -> nn.Module:
    return Stack(layer.dim)


@BUILDERS.register(L.GlobalResponseNorm)
def _grn(layer: L.GlobalResponseNorm, ins: tuple[Shape, ...]) -> nn.Module:
    return GlobalResponseNorm(ins[0][-1] if layer.channels_last else ins[0][1], layer)


@BUILDERS.register(L.FixedConv2d)
def _fixed_conv(layer: L.FixedConv2d, ins: tuple[Shape, ...]) -> nn.Module:
    return FixedConv2d(ins[0][1], layer)


@BUILDERS.register(L.StdConv2d)
def _std_conv(layer: L.StdConv2d, ins: tuple[Shape, ...]) -> nn.Module:
    return StdConv2d(ins[0][1], layer)
