"""Shapes, parameters and work of the 1-D and 3-D kinds (cnnstat/ir/layers_nd.py):
conv, max / average / adaptive average pooling and batch norm over [N, C, L] and
[N, C, D, H, W], with the 2-D kinds' arithmetic (torch's formulas) on every spatial axis.
"""

from __future__ import annotations

import math

from cnnstat.analyzers.ops import OPS, OpCount, adaptive_windows
from cnnstat.analyzers.params import PARAMS, ParamCount
from cnnstat.analyzers.shapes import SHAPES, Shape, TooSmall, _within, conv_out, pool_out
from cnnstat.ir import layers as L

_LAYOUT = {1: "[N, C, L]", 3: "[N, C, D, H, W]"}


def spatial(shape: Shape, rank: int) -> tuple[int, ...]:
    """The spatial sizes of an input with `rank` spatial axes, or a ValueError."""
    if len(shape) != rank + 2:
        raise ValueError(f"needs an input {_LAYOUT[rank]}, got {list(shape)}")
    _within(shape[2:], "input size")
    return tuple(shape[2:])


def _positive(sizes: tuple[int, ...], shape: Shape) -> None:
    if min(sizes) <= 0:
        raise TooSmall(f"output size would be {'x'.join(map(str, sizes))} for input "
                       f"{'x'.join(map(str, shape[2:]))}: the input is too small")
    _within(sizes, "output size")


def padding_of(layer: L.Conv1d | L.Conv3d) -> tuple[int, ...]:
    """The padding before the first pixel of each axis; 'same' pads d(k-1)//2 there and
    the rest at the end, as torch."""
    if layer.padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(layer.kernel_size, layer.dilation,
                                                      strict=True))
    return layer.padding  # type: ignore[return-value]


def _window_limits(layer: L.Layer) -> None:
    for name in ("kernel_size", "stride", "padding", "dilation"):
        value = getattr(layer, name, None)
        if isinstance(value, tuple):
            _within(value, name)


@SHAPES.register(L.Conv1d, L.Conv3d)
def _conv(layer: L.Conv1d | L.Conv3d, ins: tuple[Shape, ...]) -> Shape:
    sizes = spatial(ins[0], layer.rank)
    _window_limits(layer)
    if ins[0][1] % layer.groups:
        raise ValueError(f"in_channels {ins[0][1]} is not divisible by groups {layer.groups}")
    if layer.padding == "same":
        out = sizes
    else:
        out = tuple(conv_out(*args) for args in zip(
            sizes, layer.kernel_size, layer.stride, layer.padding, layer.dilation, strict=True))
    _positive(out, ins[0])
    return (ins[0][0], layer.out_channels, *out)


@SHAPES.register(L.MaxPool1d, L.MaxPool3d, L.AvgPool1d, L.AvgPool3d)
def _pool(layer: L.Layer, ins: tuple[Shape, ...]) -> Shape:
    sizes = spatial(ins[0], layer.rank)
    _window_limits(layer)
    if isinstance(layer, L.AvgPool3d) and any(
            n < k for n, k in zip(sizes, layer.kernel_size, strict=True)):
        # torch's avg_pool3d refuses it whatever the padding (pool3d_shape_check)
        raise TooSmall(f"input {'x'.join(map(str, sizes))} is smaller than the kernel "
                       f"{'x'.join(map(str, layer.kernel_size))} (torch's avg_pool3d "
                       "refuses it, whatever the padding)")
    dilation = getattr(layer, "dilation", (1,) * layer.rank)
    out = tuple(pool_out(n, k, s, p, d, layer.ceil_mode) for n, k, s, p, d in zip(
        sizes, layer.kernel_size, layer.stride, layer.padding, dilation, strict=True))
    _positive(out, ins[0])
    return (*ins[0][:2], *out)


@SHAPES.register(L.AdaptiveAvgPool1d, L.AdaptiveAvgPool3d, L.AdaptiveMaxPool1d,
                 L.AdaptiveMaxPool3d)
def _adaptive(layer: L.Layer, ins: tuple[Shape, ...]) -> Shape:
    spatial(ins[0], layer.rank)
    _within(layer.output_size, "output size")
    return (*ins[0][:2], *layer.output_size)


@SHAPES.register(L.BatchNorm1d, L.BatchNorm3d)
def _norm(layer: L.Layer, ins: tuple[Shape, ...]) -> Shape:
    """BatchNorm1d takes [N, C] too (after a flatten), as torch's."""
    if not (layer.rank == 1 and len(ins[0]) == 2):
        spatial(ins[0], layer.rank)
    return ins[0]


@PARAMS.register(L.Conv1d, L.Conv3d)
def _conv_params(layer: L.Conv1d | L.Conv3d, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """prod(k) * (C_in/groups) * C_out + C_out (bias)."""
    c_in, g = ins[0][1], layer.groups
    weights = math.prod(layer.kernel_size) * (c_in // g) * layer.out_channels
    bias = layer.out_channels if layer.bias else 0
    per_group = f"({c_in}/{g})" if g > 1 else str(c_in)
    formula = f"{'x'.join(map(str, layer.kernel_size))}x{per_group}x{layer.out_channels}"
    return ParamCount(weights + bias, 0, formula + (f" + {bias}" if bias else ""))


@PARAMS.register(L.BatchNorm1d, L.BatchNorm3d)
def _norm_params(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """gamma, beta: 2*C; running mean, var and num_batches_tracked: 2*C + 1 buffers."""
    c = ins[0][1]
    params = 2 * c if layer.affine else 0
    buffers = 2 * c + 1 if layer.track_running_stats else 0
    return ParamCount(params, buffers, f"2x{c}" if params else "")


@PARAMS.register(L.MaxPool1d, L.MaxPool3d, L.AvgPool1d, L.AvgPool3d, L.AdaptiveAvgPool1d,
                 L.AdaptiveAvgPool3d, L.AdaptiveMaxPool1d, L.AdaptiveMaxPool3d)
def _no_params(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    return ParamCount(0)


@OPS.register(L.Conv1d, L.Conv3d)
def _conv_ops(layer: L.Conv1d | L.Conv3d, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """MACs = output elements * (C_in/groups) * prod(k); other = 1 add per output if bias."""
    elements = math.prod(out)
    macs = elements * (ins[0][1] // layer.groups) * math.prod(layer.kernel_size)
    return OpCount(macs, elements if layer.bias else 0)


@OPS.register(L.MaxPool1d, L.MaxPool3d, L.AvgPool1d, L.AvgPool3d)
def _pool_ops(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """prod(k) per output element (one compare, or one add, per window element)."""
    return OpCount(0, math.prod(out) * math.prod(layer.kernel_size))


@OPS.register(L.AdaptiveAvgPool1d, L.AdaptiveAvgPool3d, L.AdaptiveMaxPool1d,
              L.AdaptiveMaxPool3d)
def _adaptive_ops(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """One add (or compare) per window element, with torch's exact windows on every axis."""
    windows = math.prod(adaptive_windows(n_in, n_out)
                        for n_in, n_out in zip(ins[0][2:], out[2:], strict=True))
    return OpCount(0, ins[0][0] * ins[0][1] * windows)


@OPS.register(L.BatchNorm1d, L.BatchNorm3d)
def _norm_ops(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """Inference: one multiply and one add per element, as batch_norm2d."""
    return OpCount(0, 2 * math.prod(out))
