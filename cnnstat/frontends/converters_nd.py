"""Converters of F.conv1d / F.conv3d and of attention (nn.MultiheadAttention,
F.scaled_dot_product_attention) to the kinds of cnnstat/ir/layers_nd.py; the 1-D / 3-D
conv, pool and norm modules and the pool functions convert from their kinds' declared
torch module (ir/torch_side.py, frontends/declared.py). Registered in
`cnnstat.frontends.converters`' registries, which import this module; the same rules
hold (None: the call stays opaque, counted by torch).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnstat.frontends.converters import Call, register_function, register_module
from cnnstat.ir import layers as L


def _sizes(value: Any, rank: int) -> tuple[int, ...]:
    """torch's int-or-tuple window argument as one int per spatial axis."""
    if isinstance(value, int):
        return (value,) * rank
    values = tuple(int(v) for v in value)
    return values * rank if len(values) == 1 else values


@register_function("conv1d", "conv3d", reads_weights=True)
def _conv_function(call: Call) -> L.Layer | None:
    """F.conv1d / F.conv3d(x, weight, bias, stride, padding, dilation, groups): what a
    traced-through subclass calls (torchvision's Conv3DSimple, Conv2Plus1D's parts)."""
    weight = call.arg(1, "weight")
    if not isinstance(weight, torch.Tensor) or weight.dim() not in (3, 5):
        return None
    rank = weight.dim() - 2
    kind = L.Conv1d if rank == 1 else L.Conv3d
    padding = call.arg(4, "padding", 0)
    padding = padding if isinstance(padding, str) else _sizes(padding, rank)
    return kind(out_channels=weight.shape[0], kernel_size=tuple(weight.shape[2:]),
                stride=_sizes(call.arg(3, "stride", 1), rank),
                padding=(0,) * rank if padding == "valid" else padding,
                dilation=_sizes(call.arg(5, "dilation", 1), rank),
                groups=call.arg(6, "groups", 1),
                bias=isinstance(call.arg(2, "bias"), torch.Tensor))


# --- attention ------------------------------------------------------------------------


@register_function("scaled_dot_product_attention")
def _sdpa(call: Call) -> L.Layer | None:
    """q, k, v only: a mask tensor, dropout (a training call) or grouped-query attention
    stays opaque, counted by torch."""
    if call.arg(3, "attn_mask") is not None or call.arg(4, "dropout_p", 0.0) \
            or call.arg(7, "enable_gqa", False):
        return None
    scale = call.arg(6, "scale")
    return L.ScaledDotProductAttention(is_causal=bool(call.arg(5, "is_causal", False)),
                                       scale=None if scale is None else float(scale))


# Modules returning (out, extras) whose layer stands for `out` (the torch frontend).
FIRST_OUTPUT_MODULES = frozenset({nn.MultiheadAttention})


@register_module(nn.MultiheadAttention)
def _mha(m: nn.MultiheadAttention, call: Call) -> L.Layer | None:
    """Plain attention only: masks, a bias or zero row added to key and value, or dropout
    in training keep the call opaque. Its output is (out, weights); the frontend takes
    the layer for `out` (the weights, when asked for, are part of the same work)."""
    masks = (call.arg(4, "key_padding_mask"), call.arg(6, "attn_mask"))
    if any(mask is not None for mask in masks) or call.arg(8, "is_causal", False):
        return None
    if m.bias_k is not None or m.add_zero_attn or (m.training and m.dropout):
        return None
    return L.MultiheadAttention(num_heads=m.num_heads, bias=m.in_proj_bias is not None,
                                batch_first=m.batch_first)
