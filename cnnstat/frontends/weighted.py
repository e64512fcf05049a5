"""Converters of functional calls that take module tensors as arguments, and of the
functions torchvision keeps whole.

A module that subclasses a torch.nn one but overrides `forward` (timm's BatchNormAct2d,
torchvision's LayerNorm2d, timm's Linear) is traced through, so its forward reaches here
as `F.batch_norm(x, self.running_mean, ...)`, `F.layer_norm(...)`, `F.linear(...)`. The
tensors it passes are the module's own: the assembler counts them as this layer's
parameters and buffers and keeps the layer only when they are the sizes its kind has.
"""

from __future__ import annotations

import torch

from cnnstat.frontends.arith_converters import computed_weight_conv
from cnnstat.frontends.converters import (
    NAMED_MODULES,
    Call,
    conv_layer,
    register_function,
    two_tensors,
)
from cnnstat.frontends.scalar_calls import scalar_layer
from cnnstat.ir import layers as L


def _given(value: object) -> bool:
    return isinstance(value, torch.Tensor)


@register_function("mul", reads_weights=True)
def _mul(call: Call) -> L.Layer | None:
    """x * y of two values; x * gamma by a per-channel module tensor is a layer scale, by
    a 0-d one a learned scalar gain (NFNet's skipinit); x * 0.5 a scalar."""
    if not two_tensors(call):
        return scalar_layer(call)
    if call.constants == 0:
        return L.Multiply()
    x, gamma = sorted(call.args[:2], key=lambda t: t.shape != call.out.shape)
    if call.constants != 1 or x.shape != call.out.shape or x.dim() < 2:
        return None
    if gamma.dim() == 0:
        return L.Scalar(op="mul", learned=True)
    per_channel = (1, x.shape[1], *[1] * (x.dim() - 2))
    aligned = (1,) * (x.dim() - gamma.dim()) + tuple(gamma.shape)
    return L.LayerScale() if aligned == per_channel else None


@register_function("batch_norm", reads_weights=True)
def _batch_norm(call: Call) -> L.Layer | None:
    """F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)."""
    x = call.args[0]
    mean, var = call.arg(1, "running_mean"), call.arg(2, "running_var")
    weight, bias = call.arg(3, "weight"), call.arg(4, "bias")
    if not _given(x) or x.dim() != 4 or _given(mean) != _given(var) \
            or _given(weight) != _given(bias):
        return None
    momentum = call.arg(6, "momentum", 0.1)
    return L.BatchNorm2d(eps=call.arg(7, "eps", 1e-5),
                         momentum=0.1 if momentum is None else momentum,
                         affine=_given(weight), track_running_stats=_given(mean))


@register_function("layer_norm", reads_weights=True)
def _layer_norm(call: Call) -> L.Layer | None:
    """F.layer_norm over the last dim (after a permute to [N, H, W, C], ConvNeXt's
    LayerNorm2d); over several dims it stays opaque."""
    x, shape = call.args[0], tuple(call.arg(1, "normalized_shape") or ())
    weight, bias = call.arg(2, "weight"), call.arg(3, "bias")
    if not _given(x) or len(shape) != 1 or shape[0] != x.shape[-1] \
            or (_given(bias) and not _given(weight)):
        return None
    return L.LayerNorm(data_format="channels_last", eps=call.arg(4, "eps", 1e-5),
                       elementwise_affine=_given(weight), bias=_given(bias))


@register_function("conv2d", reads_weights=True)
def _conv2d(call: Call) -> L.Layer | None:
    """F.conv2d(x, weight, bias, stride, padding, dilation, groups)."""
    weight = call.arg(1, "weight")
    if not _given(weight) or weight.dim() != 4:
        return None
    conv = conv_layer(weight.shape[0], tuple(weight.shape[2:]), call.arg(3, "stride", 1),
                      call.arg(4, "padding", 0), call.arg(5, "dilation", 1),
                      call.arg(6, "groups", 1), _given(call.arg(2, "bias")))
    return computed_weight_conv(call, conv)  # a weight buffer, or standardized


@register_function("linear", reads_weights=True)
def _linear(call: Call) -> L.Layer | None:
    weight = call.arg(1, "weight")
    if not _given(weight) or weight.dim() != 2:
        return None
    return L.Linear(out_features=weight.shape[0], bias=_given(call.arg(2, "bias")))


@register_function("stochastic_depth")
def _stochastic_depth(call: Call) -> L.Layer | None:
    """torchvision's stochastic_depth(x, p, mode, training): the identity at inference."""
    if call.arg(3, "training", True):
        return None
    return L.DropPath(p=float(call.arg(1, "p")))


def _stochastic_depth_module(module, call: Call) -> L.Layer | None:
    """torchvision's StochasticDepth module, kept whole so that its node is its path."""
    return None if module.training else L.DropPath(p=float(module.p))


NAMED_MODULES["torchvision.ops.stochastic_depth.StochasticDepth"] = _stochastic_depth_module


@register_function("transpose", "swapaxes")
def _transpose(call: Call) -> L.Layer | None:
    """x.transpose(a, b) is the permute swapping two dims; one that moves the batch stays
    opaque."""
    x = call.args[0]
    a, b = call.arg(1, "dim0"), call.arg(2, "dim1")
    if not _given(x) or not isinstance(a, int) or not isinstance(b, int):
        return None
    dims = list(range(x.dim()))
    dims[a], dims[b] = dims[b], dims[a]
    return L.Permute(dims=tuple(dims)) if dims[0] == 0 else None
