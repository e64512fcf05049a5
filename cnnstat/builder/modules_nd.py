"""Builders of the 1-D / 3-D kinds and attention (cnnstat/ir/layers_nd.py): torch's own
modules, and thin wrappers where a kind takes (q, k, v) or one input for all three."""

from __future__ import annotations

import torch
from torch import nn

from cnnstat.analyzers.shapes import Shape
from cnnstat.builder.torch_module import BUILDERS
from cnnstat.ir import layers as L

_CONVS = {L.Conv1d: nn.Conv1d, L.Conv3d: nn.Conv3d}


@BUILDERS.register(*_CONVS)
def _conv(layer: L.Conv1d | L.Conv3d, ins: tuple[Shape, ...]) -> nn.Module:
    return _CONVS[type(layer)](ins[0][1], layer.out_channels, layer.kernel_size, layer.stride,
                               layer.padding, layer.dilation, layer.groups, layer.bias)


@BUILDERS.register(L.MaxPool1d, L.MaxPool3d)
def _max_pool(layer: L.MaxPool1d | L.MaxPool3d, ins: tuple[Shape, ...]) -> nn.Module:
    cls = nn.MaxPool1d if layer.rank == 1 else nn.MaxPool3d
    return cls(layer.kernel_size, layer.stride, layer.padding, layer.dilation,
               ceil_mode=layer.ceil_mode)


@BUILDERS.register(L.AvgPool1d, L.AvgPool3d)
def _avg_pool(layer: L.AvgPool1d | L.AvgPool3d, ins: tuple[Shape, ...]) -> nn.Module:
    cls = nn.AvgPool1d if layer.rank == 1 else nn.AvgPool3d
    return cls(layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode,
               layer.count_include_pad)


_ADAPTIVE = {L.AdaptiveAvgPool1d: nn.AdaptiveAvgPool1d, L.AdaptiveAvgPool3d: nn.AdaptiveAvgPool3d,
             L.AdaptiveMaxPool1d: nn.AdaptiveMaxPool1d, L.AdaptiveMaxPool3d: nn.AdaptiveMaxPool3d}


@BUILDERS.register(*_ADAPTIVE)
def _adaptive(layer: L.Layer, ins: tuple[Shape, ...]) -> nn.Module:
    return _ADAPTIVE[type(layer)](layer.output_size)


@BUILDERS.register(L.BatchNorm1d, L.BatchNorm3d)
def _batch_norm(layer: L.BatchNorm1d | L.BatchNorm3d, ins: tuple[Shape, ...]) -> nn.Module:
    cls = nn.BatchNorm1d if layer.rank == 1 else nn.BatchNorm3d
    return cls(ins[0][1], layer.eps, layer.momentum, layer.affine, layer.track_running_stats)


class ScaledDotProductAttention(nn.Module):
    """F.scaled_dot_product_attention(q, k, v); one input is q = k = v."""

    def __init__(self, layer: L.ScaledDotProductAttention):
        super().__init__()
        self.is_causal, self.scale = layer.is_causal, layer.scale

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        q, k, v = xs if len(xs) == 3 else (xs[0],) * 3
        return nn.functional.scaled_dot_product_attention(q, k, v, is_causal=self.is_causal,
                                                          scale=self.scale)


class MultiheadAttention(nn.Module):
    """nn.MultiheadAttention at `attn`, returning only its output (need_weights=False)."""

    def __init__(self, layer: L.MultiheadAttention, ins: tuple[Shape, ...]):
        super().__init__()
        q, k, v = ins if len(ins) == 3 else (ins[0],) * 3
        self.attn = nn.MultiheadAttention(q[-1], layer.num_heads, bias=layer.bias,
                                          kdim=k[-1], vdim=v[-1],
                                          batch_first=layer.batch_first)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        q, k, v = xs if len(xs) == 3 else (xs[0],) * 3
        return self.attn(q, k, v, need_weights=False)[0]


@BUILDERS.register(L.ScaledDotProductAttention)
def _sdpa(layer: L.ScaledDotProductAttention, ins: tuple[Shape, ...]) -> nn.Module:
    return ScaledDotProductAttention(layer)


@BUILDERS.register(L.MultiheadAttention)
def _mha(layer: L.MultiheadAttention, ins: tuple[Shape, ...]) -> nn.Module:
    return MultiheadAttention(layer, ins)
