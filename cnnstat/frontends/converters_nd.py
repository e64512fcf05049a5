"""Converters of torch's 1-D / 3-D conv, pooling and norm modules and functions, and of
attention (nn.MultiheadAttention, F.scaled_dot_product_attention), to the kinds of
cnnstat/ir/layers_nd.py. Registered in `cnnstat.frontends.converters`' registries, which
import this module; the same rules hold (None: the call stays opaque, counted by torch).
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


def _out_sizes(call: Call, rank: int) -> tuple[int, ...]:
    return tuple(call.out.shape[-rank:])


_CONVS = {nn.Conv1d: (L.Conv1d, 1), nn.Conv3d: (L.Conv3d, 3)}


@register_module(*_CONVS)
def _conv(m: nn.Conv1d | nn.Conv3d, call: Call) -> L.Layer | None:
    kind, rank = _CONVS[type(m)]
    if m.padding_mode != "zeros":
        return None  # reflect / replicate / circular padding: a pad op the kind has not
    padding = m.padding if isinstance(m.padding, str) else _sizes(m.padding, rank)
    return kind(out_channels=m.out_channels, kernel_size=_sizes(m.kernel_size, rank),
                stride=_sizes(m.stride, rank),
                padding=(0,) * rank if padding == "valid" else padding,
                dilation=_sizes(m.dilation, rank), groups=m.groups, bias=m.bias is not None)


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


_MAX_POOLS = {nn.MaxPool1d: (L.MaxPool1d, 1), nn.MaxPool3d: (L.MaxPool3d, 3)}
_AVG_POOLS = {nn.AvgPool1d: (L.AvgPool1d, 1), nn.AvgPool3d: (L.AvgPool3d, 3)}


def _max_pool(kind: type[L.Layer], rank: int, kernel: Any, stride: Any, padding: Any,
              dilation: Any, ceil_mode: bool) -> L.Layer:
    k = _sizes(kernel, rank)
    return kind(kernel_size=k, stride=_sizes(stride, rank) if stride else k,
                padding=_sizes(padding, rank), dilation=_sizes(dilation, rank),
                ceil_mode=bool(ceil_mode))


def _avg_pool(kind: type[L.Layer], rank: int, kernel: Any, stride: Any, padding: Any,
              ceil_mode: bool, count_include_pad: bool) -> L.Layer:
    k = _sizes(kernel, rank)
    return kind(kernel_size=k, stride=_sizes(stride, rank) if stride else k,
                padding=_sizes(padding, rank), ceil_mode=bool(ceil_mode),
                count_include_pad=bool(count_include_pad))


@register_module(*_MAX_POOLS)
def _max_pool_module(m: nn.MaxPool1d | nn.MaxPool3d, call: Call) -> L.Layer | None:
    if m.return_indices:
        return None
    return _max_pool(*_MAX_POOLS[type(m)], m.kernel_size, m.stride, m.padding, m.dilation,
                     m.ceil_mode)


@register_module(*_AVG_POOLS)
def _avg_pool_module(m: nn.AvgPool1d | nn.AvgPool3d, call: Call) -> L.Layer | None:
    if getattr(m, "divisor_override", None) is not None:
        return None
    return _avg_pool(*_AVG_POOLS[type(m)], m.kernel_size, m.stride, m.padding, m.ceil_mode,
                     m.count_include_pad)


_ADAPTIVE = {nn.AdaptiveAvgPool1d: (L.AdaptiveAvgPool1d, 1),
             nn.AdaptiveAvgPool3d: (L.AdaptiveAvgPool3d, 3),
             nn.AdaptiveMaxPool1d: (L.AdaptiveMaxPool1d, 1),
             nn.AdaptiveMaxPool3d: (L.AdaptiveMaxPool3d, 3)}


@register_module(*_ADAPTIVE)
def _adaptive_module(m: nn.Module, call: Call) -> L.Layer | None:
    if getattr(m, "return_indices", False):
        return None
    kind, rank = _ADAPTIVE[type(m)]
    return kind(output_size=_out_sizes(call, rank))  # None sizes: what torch produced


_NORMS = {nn.BatchNorm1d: L.BatchNorm1d, nn.BatchNorm3d: L.BatchNorm3d}


@register_module(*_NORMS)
def _batch_norm(m: nn.BatchNorm1d | nn.BatchNorm3d, call: Call) -> L.Layer:
    return _NORMS[type(m)](eps=m.eps, momentum=m.momentum, affine=m.affine,
                           track_running_stats=m.track_running_stats)


@register_function("max_pool1d", "max_pool3d")
def _max_pool_function(call: Call) -> L.Layer | None:
    if call.arg(6, "return_indices", False):
        return None
    kind, rank = (L.MaxPool1d, 1) if call.op == "max_pool1d" else (L.MaxPool3d, 3)
    return _max_pool(kind, rank, call.arg(1, "kernel_size"), call.arg(2, "stride"),
                     call.arg(3, "padding", 0), call.arg(4, "dilation", 1),
                     call.arg(5, "ceil_mode", False))


@register_function("avg_pool1d", "avg_pool3d")
def _avg_pool_function(call: Call) -> L.Layer | None:
    if call.arg(6, "divisor_override") is not None:
        return None
    kind, rank = (L.AvgPool1d, 1) if call.op == "avg_pool1d" else (L.AvgPool3d, 3)
    return _avg_pool(kind, rank, call.arg(1, "kernel_size"), call.arg(2, "stride"),
                     call.arg(3, "padding", 0), call.arg(4, "ceil_mode", False),
                     call.arg(5, "count_include_pad", True))


_ADAPTIVE_FUNCTIONS = {"adaptive_avg_pool1d": (L.AdaptiveAvgPool1d, 1),
                       "adaptive_avg_pool3d": (L.AdaptiveAvgPool3d, 3),
                       "adaptive_max_pool1d": (L.AdaptiveMaxPool1d, 1),
                       "adaptive_max_pool3d": (L.AdaptiveMaxPool3d, 3)}


@register_function(*_ADAPTIVE_FUNCTIONS)
def _adaptive_function(call: Call) -> L.Layer | None:
    if call.arg(2, "return_indices", False):
        return None
    kind, rank = _ADAPTIVE_FUNCTIONS[call.op]
    return kind(output_size=_out_sizes(call, rank))


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
