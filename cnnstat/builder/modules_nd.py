"""Builders of attention (cnnstat/ir/layers_nd.py): thin wrappers where a kind takes
(q, k, v) or one input for all three. The 1-D / 3-D conv, pool and norm kinds declare
their torch module and need no builder here (ir/torch_side.py)."""

from __future__ import annotations

import torch
from torch import nn

from cnnstat.analyzers.shapes import Shape
from cnnstat.builder.torch_module import BUILDERS
from cnnstat.ir import layers as L


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
