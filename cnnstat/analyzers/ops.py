"""Work per layer kind: MACs (multiply-accumulates of conv / transposed conv / linear)
and `other_ops` (element-wise work), never mixed.

MACs follow torchvision's `_ops`, fvcore and thop: bias is excluded from MACs. FLOPs are
exactly 2 x MACs and are derived in the result records, never stored separately here.
`other_ops` conventions are documented in docs/conventions.md, one line per kind; each
handler's docstring states its own.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from cnnstat.analyzers.registry import Registry
from cnnstat.analyzers.shapes import Shape
from cnnstat.ir import layers as L


class OpCount(NamedTuple):
    """Immutable; a NamedTuple because one is built per layer per analysis, at about
    half the cost of a frozen dataclass."""

    macs: int
    other_ops: int


OPS: Registry = Registry("ops")


def _elements(shape: Shape) -> int:
    return math.prod(shape)


@OPS.register(L.Conv2d)
def _conv(layer: L.Conv2d, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """MACs = N*C_out*H_out*W_out * (C_in/groups)*k_h*k_w; other = 1 add per output if bias."""
    kh, kw = layer.kernel_size
    macs = _elements(out) * (ins[0][1] // layer.groups) * kh * kw
    return OpCount(macs, _elements(out) if layer.bias else 0)


@OPS.register(L.ConvTranspose2d)
def _conv_transpose(layer: L.ConvTranspose2d, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """MACs = N*H_in*W_in*C_in * (C_out/groups)*k_h*k_w: every input pixel is scattered
    through the kernel (the input spatial size, not the output's); bias as for conv."""
    n, c_in, h, w = ins[0]
    kh, kw = layer.kernel_size
    macs = n * h * w * c_in * (layer.out_channels // layer.groups) * kh * kw
    return OpCount(macs, _elements(out) if layer.bias else 0)


@OPS.register(L.Linear)
def _linear(layer: L.Linear, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """MACs = rows * in_features * out_features; other = 1 add per output if bias."""
    return OpCount(_elements(out) * ins[0][-1], _elements(out) if layer.bias else 0)


@OPS.register(L.BatchNorm2d)
def _batch_norm(layer: L.BatchNorm2d, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """Inference: normalisation and affine fold into one multiply and one add per element."""
    return OpCount(0, 2 * _elements(out))


@OPS.register(L.LayerNorm)
def _layer_norm(layer: L.LayerNorm, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """Statistics are computed at inference too: per element 1 add (mean), 3 for the
    variance (subtract, square, add), 2 to normalise (subtract, multiply by rsqrt), and 2
    for the affine (multiply, add; 1 without bias)."""
    affine = (1 + layer.bias) if layer.elementwise_affine else 0
    return OpCount(0, (6 + affine) * _elements(out))


@OPS.register(L.LayerScale)
def _layer_scale(layer: L.LayerScale, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """One multiply per element."""
    return OpCount(0, _elements(out))


@OPS.register(L.LocalResponseNorm)
def _lrn(layer: L.LocalResponseNorm, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """Per element: `size` squares and `size` adds for the window sum, then scale+offset,
    power and divide: 2*size + 3."""
    return OpCount(0, (2 * layer.size + 3) * _elements(out))


@OPS.register_trait(L.POINTWISE)
def _activation(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """1 op per element, whatever the function (thop's convention for ReLU)."""
    return OpCount(0, _elements(out))


@OPS.register(L.Softmax)
def _softmax(layer: L.Softmax, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """Per element: exp, add to the sum, divide: 3."""
    return OpCount(0, 3 * _elements(out))


@OPS.register(L.MaxPool2d, L.AvgPool2d)
def _pool(layer: L.MaxPool2d | L.AvgPool2d, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """k_h*k_w per output element (one compare, or one add, per window element)."""
    kh, kw = layer.kernel_size
    return OpCount(0, _elements(out) * kh * kw)


def adaptive_windows(size_in: int, size_out: int) -> int:
    """Sum of torch's adaptive window lengths along one axis:
    start = floor(i*in/out), end = ceil((i+1)*in/out)."""
    return sum(-(-((i + 1) * size_in) // size_out) - (i * size_in) // size_out
               for i in range(size_out))


@OPS.register(L.AdaptiveAvgPool2d, L.AdaptiveMaxPool2d)
def _adaptive(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """One op per window element, with torch's exact (possibly overlapping) windows."""
    n, c, h, w = ins[0]
    oh, ow = out[2], out[3]
    return OpCount(0, n * c * adaptive_windows(h, oh) * adaptive_windows(w, ow))


@OPS.register(L.Add, L.Multiply)
def _merge(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """(inputs - 1) adds or multiplies per output element."""
    return OpCount(0, (len(ins) - 1) * _elements(out))


@OPS.register(L.Upsample)
def _upsample(layer: L.Upsample, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """nearest: a copy, 0; bilinear: 4 multiplies and 3 adds per output element."""
    return OpCount(0, 7 * _elements(out) if layer.mode == "bilinear" else 0)


@OPS.register(L.Input, L.Dropout, L.DropPath, L.Flatten, L.Permute, L.Concat, L.Reshape,
              L.Identity, L.ChannelShuffle)
def _data_movement(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """No arithmetic: copies, views, or (dropout) the identity at inference."""
    return OpCount(0, 0)


@OPS.register(L.Opaque)
def _opaque(layer: L.Opaque, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """MACs counted by torch: FlopCounterMode's total for the op at the traced shape / 2
    (torch counts conv, matmul and attention only), scaled linearly with the batch.
    `other_ops` is None: cnnstat does not know the op's element-wise work, and says so
    rather than write a zero."""
    traced_batch = layer.in_shape[0] if layer.in_shape else 1
    batch = ins[0][0] if ins and ins[0] else traced_batch
    macs = None if layer.macs is None else layer.macs * batch // traced_batch
    return OpCount(macs, None)  # type: ignore[arg-type]


@OPS.register(L.SpatialPyramidPool)
def _spp(layer: L.SpatialPyramidPool, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """Per level l, an adaptive max pool to l x l with torch's windows: one compare per
    window element, sum over levels of regions*N*C*windows_h(l)*windows_w(l). Each of the
    regions is modelled as the whole map (an upper bound: real windows are smaller)."""
    n, c, h, w = ins[0]
    per_map = sum(adaptive_windows(h, level) * adaptive_windows(w, level)
                  for level in layer.levels)
    return OpCount(0, layer.region_count * n * c * per_map)


@OPS.register(L.RoIPool)
def _roi_pool(layer: L.RoIPool, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """One compare per bin element: regions*N*C*windows_h*windows_w, each region modelled
    as the whole feature map cut into adaptive bins (an upper bound: the boxes are data,
    and real proposals are smaller than the image)."""
    n, c, h, w = ins[0]
    oh, ow = layer.output_size
    per_map = adaptive_windows(h, oh) * adaptive_windows(w, ow)
    return OpCount(0, layer.region_count * n * c * per_map)


@OPS.register(L.RoIAlign)
def _roi_align(layer: L.RoIAlign, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """Per output element, sampling_ratio^2 bilinear samples of 7 ops each (4 multiplies,
    3 adds, as for bilinear upsampling) and one add each for the bin's mean: 8*sr^2.
    Independent of the box size."""
    return OpCount(0, 8 * layer.sampling_ratio ** 2 * _elements(out))


@OPS.register(L.Crop)
def _crop(layer: L.Crop, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """A slice (a view): no arithmetic."""
    return OpCount(0, 0)
