"""Parameters per layer kind: learnable tensors, and buffers (BN running stats) apart.

Each handler returns `ParamCount(trainable, buffers, formula)`; the formula shows the
arithmetic in torch's weight-shape order so a reader can check it by hand.
"""

from __future__ import annotations

from typing import NamedTuple

from cnnstat.analyzers.registry import Registry
from cnnstat.analyzers.shapes import Shape
from cnnstat.ir import layers as L


class ParamCount(NamedTuple):
    """Immutable; a NamedTuple because one is built per layer per analysis, at about
    half the cost of a frozen dataclass."""

    params: int
    buffers: int = 0
    formula: str = ""


PARAMS: Registry = Registry("params")
_NONE = ParamCount(0)


def _kernel(k: tuple[int, int]) -> str:
    return f"{k[0]}x{k[1]}"


def _per_group(channels: int, groups: int) -> str:
    return f"({channels}/{groups})" if groups > 1 else str(channels)


@PARAMS.register(L.Conv2d)
def _conv(layer: L.Conv2d, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """k_h*k_w*(C_in/groups)*C_out + C_out (bias)."""
    c_in, (kh, kw), g = ins[0][1], layer.kernel_size, layer.groups
    weights = kh * kw * (c_in // g) * layer.out_channels
    bias = layer.out_channels if layer.bias else 0
    formula = f"{_kernel(layer.kernel_size)}x{_per_group(c_in, g)}x{layer.out_channels}"
    return ParamCount(weights + bias, 0, formula + (f" + {bias}" if bias else ""))


@PARAMS.register(L.ConvTranspose2d)
def _conv_transpose(layer: L.ConvTranspose2d, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """Weight [C_in, C_out/groups, k_h, k_w]: k_h*k_w*C_in*(C_out/groups) + C_out."""
    c_in, (kh, kw), g = ins[0][1], layer.kernel_size, layer.groups
    weights = kh * kw * c_in * (layer.out_channels // g)
    bias = layer.out_channels if layer.bias else 0
    formula = f"{_kernel(layer.kernel_size)}x{c_in}x{_per_group(layer.out_channels, g)}"
    return ParamCount(weights + bias, 0, formula + (f" + {bias}" if bias else ""))


@PARAMS.register(L.Linear)
def _linear(layer: L.Linear, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """in_features*out_features + out_features."""
    n_in = ins[0][-1]
    bias = layer.out_features if layer.bias else 0
    formula = f"{n_in}x{layer.out_features}" + (f" + {bias}" if bias else "")
    return ParamCount(n_in * layer.out_features + bias, 0, formula)


@PARAMS.register(L.BatchNorm2d)
def _batch_norm(layer: L.BatchNorm2d, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """gamma, beta: 2*C learnable; running mean, var: 2*C + num_batches_tracked: 1 buffer."""
    c = ins[0][1]
    params = 2 * c if layer.affine else 0
    buffers = 2 * c + 1 if layer.track_running_stats else 0
    return ParamCount(params, buffers, f"2x{c}" if params else "")


@PARAMS.register(L.LayerNorm)
def _layer_norm(layer: L.LayerNorm, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """weight and (with bias) bias, one per normalised channel; no buffers."""
    c = ins[0][1] if layer.data_format == "channels_first" else ins[0][-1]
    per = (1 + layer.bias) if layer.elementwise_affine else 0
    return ParamCount(per * c, 0, f"{per}x{c}" if per else "")


@PARAMS.register(L.LayerScale)
def _layer_scale(layer: L.LayerScale, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    c = ins[0][1]
    return ParamCount(c, 0, f"{c}")


@PARAMS.register(
    L.Input, L.MaxPool2d, L.AvgPool2d, L.AdaptiveAvgPool2d, L.AdaptiveMaxPool2d,
    L.LocalResponseNorm, L.Softmax, L.Dropout, L.Flatten, L.Reshape, L.Identity, L.Upsample,
    L.ChannelShuffle,
)
@PARAMS.register_trait(L.NO_PARAMS)
def _no_params(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """No learnable tensors and no buffers."""
    return _NONE


@PARAMS.register(L.Opaque)
def _opaque(layer: L.Opaque, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """The numel of the module tensors the op uses, read from the module (sizes on meta);
    a tensor shared by several calls is counted at its first call only."""
    formula = f"{layer.op}: from the module" if layer.params else ""
    return ParamCount(layer.params, layer.buffers, formula)


@PARAMS.register(L.SpatialPyramidPool, L.RoIPool, L.RoIAlign, L.Crop)
def _no_params_detection(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """Pyramid and RoI pooling, crop: no learnable tensors and no buffers."""
    return _NONE
