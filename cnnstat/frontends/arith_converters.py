"""Converters for the kinds of `cnnstat/ir/arith_layers.py` (imported by converters.py):
division and the reversed ops by a number (x / 2, 1 - x, 2 / x; add, sub and mul by a
number convert in converters.py and weighted.py, through `scalar_calls.scalar_layer`),
torch.stack, ConvNeXt V2's GlobalResponseNorm module, and which convolution a
`F.conv2d` call is when its weight is a buffer or standardized from a parameter.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from cnnstat.frontends.converters import NAMED_MODULES, Call, register_function
from cnnstat.frontends.scalar_calls import scalar_layer
from cnnstat.ir import layers as L


@register_function("div", "truediv", "itruediv", "divide", "rsub", "rdiv", "rtruediv")
def _by_number(call: Call) -> L.Layer | None:
    """x / 2, 1 - x, 2 / x (number op tensor); a division of two tensors stays opaque."""
    return scalar_layer(call)


@register_function("stack")
def _stack(call: Call) -> L.Layer | None:
    """torch.stack([x, y, ...], dim): every element a node (the assembler checks it); a
    stack along the batch (dim 0, the default) stays opaque."""
    tensors, dim = call.arg(0, "tensors"), call.arg(1, "dim", 0)
    if not isinstance(tensors, list | tuple) or not isinstance(dim, int) or dim == 0 \
            or not all(isinstance(t, torch.Tensor) for t in tensors):
        return None
    return L.Stack(dim=dim)


def _grn(module: nn.Module, call: Call) -> L.Layer | None:
    """timm's GlobalResponseNorm (ConvNeXt V2), kept whole: its layout is a field of it."""
    channels_last = getattr(module, "channel_dim", -1) == -1
    return L.GlobalResponseNorm(eps=float(module.eps), channels_last=channels_last)


def _built_grn(module: nn.Module, call: Call) -> L.Layer | None:
    """The builder's GRN module (builder/arith_modules.py), converted back to its kind."""
    return L.GlobalResponseNorm(eps=float(module.eps), channels_last=module.channels_last)


NAMED_MODULES["timm.layers.grn.GlobalResponseNorm"] = _grn
NAMED_MODULES["cnnstat.builder.arith_modules.GlobalResponseNorm"] = _built_grn


def computed_weight_conv(call: Call, conv: L.Conv2d) -> L.Layer:
    """F.conv2d's layer by where its weight comes from (`call.owned`: the parameter and
    buffer elements it reads first; `call.weight_ops`: what computed the weight):
    - a buffer read as it is, and at most a bias parameter: a fixed filter (anti-alias
      blur), `fixed_conv2d`;
    - computed with F.batch_norm from the parameter (weight standardization, as timm
      writes it), with a per-channel gain or not: `std_conv2d`;
    - else the plain conv, kept by the assembler only when the parameters are its own."""
    params, buffers = call.owned
    weight = call.arg(1, "weight")
    fields = {f.name: getattr(conv, f.name) for f in dataclasses.fields(conv)}
    bias = conv.out_channels if conv.bias else 0
    if not call.weight_ops and params == bias and buffers == weight.numel():
        return L.FixedConv2d(**fields)
    if "batch_norm" in call.weight_ops and buffers == 0:
        gain = params == weight.numel() + bias + conv.out_channels
        return L.StdConv2d(**fields, gain=gain)
    return conv
