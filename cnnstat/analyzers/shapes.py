"""Output shapes (batch included) per layer kind, with torch's arithmetic.

Each handler takes the layer and its input shapes and returns the output shape, or
raises `ValueError` with what was expected and found; the engine adds the location.
Formulas follow torch's docs (`torch/nn/modules/conv.py`, `pooling.py`) and
Dumoulin & Visin, "A guide to convolution arithmetic" (arXiv:1603.07285).
"""

from __future__ import annotations

import math

from cnnstat.analyzers.registry import Registry
from cnnstat.ir import layers as L

Shape = tuple[int, ...]
SHAPES: Registry = Registry("shapes")
# Per spatial axis: sizes, kernels, strides, paddings, dilations (docs/limits.md). Far above
# any real network, and it keeps the receptive-field tables (one entry per kernel tap or
# output unit) small: a 10**12-px pool would otherwise allocate without end.
MAX_SPATIAL = 1 << 16


class TooSmall(ValueError):
    """The input is too small for this layer (a non-positive output size)."""


def _image(shape: Shape, what: str) -> tuple[int, int, int, int]:
    if len(shape) != 4:
        raise ValueError(f"needs an image input [N, C, H, W], got {list(shape)}")
    if shape[2] > MAX_SPATIAL or shape[3] > MAX_SPATIAL:
        _within(shape[2:], "input size")
    return shape  # type: ignore[return-value]


def _within(sizes, what: str) -> None:
    if max(sizes, default=0) > MAX_SPATIAL:
        raise ValueError(f"{what} {'x'.join(map(str, sizes))} is over the limit of "
                         f"{MAX_SPATIAL} px per axis (docs/limits.md)")


def _window(layer: L.Layer, *sizes: int) -> None:
    """The layer's window attributes (kernel_size, stride, ...) within MAX_SPATIAL. The
    caller passes their values for one max() (this runs for every conv and pool); only
    when one is over the limit are the attributes searched, for the message."""
    if max(sizes) <= MAX_SPATIAL:
        return
    for name in ("kernel_size", "stride", "padding", "dilation", "output_padding"):
        value = getattr(layer, name, None)
        if isinstance(value, tuple):
            _within(value, name)


def _positive_spatial(out_h: int, out_w: int, shape: Shape) -> None:
    if out_h <= 0 or out_w <= 0:
        raise TooSmall(
            f"output size would be {out_h}x{out_w} for input {shape[2]}x{shape[3]}: "
            "the input is too small"
        )
    if out_h > MAX_SPATIAL or out_w > MAX_SPATIAL:
        _within((out_h, out_w), "output size")


def _channels_divisible(channels: int, groups: int) -> None:
    if channels % groups:
        raise ValueError(f"in_channels {channels} is not divisible by groups {groups}")


def conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    """floor((i + 2p - d(k-1) - 1) / s) + 1  (torch Conv2d; conv arithmetic relation 15)."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_padding(layer: L.Conv2d) -> tuple[int, int]:
    """The (top, left) padding, resolving 'same' as torch does (extra padding at the end)."""
    if layer.padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(layer.kernel_size, layer.dilation,
                                                      strict=True))  # type: ignore[return-value]
    return layer.padding  # type: ignore[return-value]


def pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape, including the ceil_mode rule that the last window
    must start inside the input or left padding."""
    numerator = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = numerator // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


@SHAPES.register(L.Conv2d)
def _conv(layer: L.Conv2d, ins: tuple[Shape, ...]) -> Shape:
    n, c, h, w = _image(ins[0], "conv2d")
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    ph, pw = conv_padding(layer)
    _window(layer, kh, kw, sh, sw, ph, pw, dh, dw)
    _channels_divisible(c, layer.groups)
    if layer.padding == "same":
        out_h, out_w = h, w
    else:
        out_h, out_w = conv_out(h, kh, sh, ph, dh), conv_out(w, kw, sw, pw, dw)
    _positive_spatial(out_h, out_w, ins[0])
    return (n, layer.out_channels, out_h, out_w)


def conv_transpose_out(size: int, k: int, s: int, p: int, d: int, op: int) -> int:
    """(i - 1)s - 2p + d(k - 1) + output_padding + 1  (torch ConvTranspose2d)."""
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


@SHAPES.register(L.ConvTranspose2d)
def _conv_transpose(layer: L.ConvTranspose2d, ins: tuple[Shape, ...]) -> Shape:
    """(i - 1)s - 2p + d(k - 1) + output_padding + 1 per axis (conv_transpose_out)."""
    n, c, h, w = _image(ins[0], "conv_transpose2d")
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    (dh, dw), (oph, opw) = layer.dilation, layer.output_padding
    _window(layer, kh, kw, sh, sw, ph, pw, dh, dw, oph, opw)
    # The receptive-field table of a transposed conv costs kernel x stride per axis.
    _within((kh * sh, kw * sw), "kernel_size x stride")
    _channels_divisible(c, layer.groups)
    out_h = conv_transpose_out(h, kh, sh, ph, dh, oph)
    out_w = conv_transpose_out(w, kw, sw, pw, dw, opw)
    _positive_spatial(out_h, out_w, ins[0])
    return (n, layer.out_channels, out_h, out_w)


@SHAPES.register(L.MaxPool2d, L.AvgPool2d)
def _pool(layer: L.MaxPool2d | L.AvgPool2d, ins: tuple[Shape, ...]) -> Shape:
    n, c, h, w = _image(ins[0], layer.kind)
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    dh, dw = getattr(layer, "dilation", (1, 1))
    _window(layer, kh, kw, sh, sw, ph, pw, dh, dw)
    out_h = pool_out(h, kh, sh, ph, dh, layer.ceil_mode)
    out_w = pool_out(w, kw, sw, pw, dw, layer.ceil_mode)
    _positive_spatial(out_h, out_w, ins[0])
    return (n, c, out_h, out_w)


@SHAPES.register(L.AdaptiveAvgPool2d, L.AdaptiveMaxPool2d)
def _adaptive(layer: L.AdaptiveAvgPool2d, ins: tuple[Shape, ...]) -> Shape:
    n, c, _, _ = _image(ins[0], layer.kind)
    _within(layer.output_size, "output size")
    return (n, c, *layer.output_size)


@SHAPES.register(L.BatchNorm2d, L.LocalResponseNorm)
def _norm(layer: L.Layer, ins: tuple[Shape, ...]) -> Shape:
    return _image(ins[0], layer.kind)


@SHAPES.register_trait(L.SHAPE_PRESERVING)
@SHAPES.register(L.Dropout, L.Identity)
def _same(layer: L.Layer, ins: tuple[Shape, ...]) -> Shape:
    return ins[0]


def _dim(dim: int, rank: int, what: str) -> int:
    if not -rank <= dim < rank:
        raise ValueError(f"{what} {dim} is out of range for a {rank}-d input")
    return dim % rank


@SHAPES.register(L.Softmax)
def _softmax(layer: L.Softmax, ins: tuple[Shape, ...]) -> Shape:
    _dim(layer.dim, len(ins[0]), "dim")
    return ins[0]


@SHAPES.register(L.Flatten)
def _flatten(layer: L.Flatten, ins: tuple[Shape, ...]) -> Shape:
    shape = ins[0]
    start = _dim(layer.start_dim, len(shape), "start_dim")
    end = _dim(layer.end_dim, len(shape), "end_dim")
    if start > end:
        raise ValueError(f"start_dim {layer.start_dim} comes after end_dim {layer.end_dim}")
    return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])


@SHAPES.register(L.Linear)
def _linear(layer: L.Linear, ins: tuple[Shape, ...]) -> Shape:
    """Acts on the last dimension, as torch's Linear does (flatten first for [N, C, H, W])."""
    if len(ins[0]) < 2:
        raise ValueError(f"needs an input [N, features], got {list(ins[0])}")
    return (*ins[0][:-1], layer.out_features)


@SHAPES.register(L.Concat)
def _concat(layer: L.Concat, ins: tuple[Shape, ...]) -> Shape:
    rank = len(ins[0])
    dim = _dim(layer.dim, rank, "dim")
    if dim == 0:
        raise ValueError("concat along the batch dimension is not supported")
    before, after = ins[0][:dim], ins[0][dim + 1:]
    for shape in ins[1:]:
        if len(shape) != rank or shape[:dim] != before or shape[dim + 1:] != after:
            raise ValueError(
                "inputs must match except along dim "
                f"{layer.dim}: {' vs '.join(str(list(s)) for s in ins)}"
            )
    return (*before, sum(s[dim] for s in ins), *after)


@SHAPES.register(L.Add, L.Multiply)
def _broadcast(layer: L.Layer, ins: tuple[Shape, ...]) -> Shape:
    """Torch broadcasting, except that the batch dimension must agree."""
    if ins.count(ins[0]) == len(ins):  # the usual case (a residual add): nothing to broadcast
        return ins[0]
    rank = max(len(s) for s in ins)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in ins]
    out = []
    for sizes in zip(*padded, strict=True):
        big = {s for s in sizes if s != 1}
        if len(big) > 1:
            raise ValueError(
                "inputs do not broadcast: "
                f"{' vs '.join(str(list(s)) for s in ins)}"
            )
        out.append(big.pop() if big else 1)
    if any(len(s) != rank or s[0] != out[0] for s in ins):
        raise ValueError("inputs must agree in rank and batch: "
                         f"{' vs '.join(str(list(s)) for s in ins)}")
    return tuple(out)


@SHAPES.register(L.Permute)
def _permute(layer: L.Permute, ins: tuple[Shape, ...]) -> Shape:
    """torch's rule: dims is a permutation of every dim of the input."""
    shape = ins[0]
    if len(layer.dims) != len(shape):
        raise ValueError(f"dims {list(layer.dims)} must list all {len(shape)} dims of "
                         f"the input {list(shape)}")
    dims = permutation(layer.dims, len(shape))
    return tuple(shape[d] for d in dims)


def permutation(dims: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """`dims` with negative entries counted from the end; each dim exactly once."""
    out = tuple(_dim(d, rank, "dim") for d in dims)
    if sorted(out) != list(range(rank)):
        raise ValueError(f"dims {list(dims)} repeat a dim: each of 0..{rank - 1} once")
    return out


@SHAPES.register(L.Reshape)
def _reshape(layer: L.Reshape, ins: tuple[Shape, ...]) -> Shape:
    n, rest = ins[0][0], ins[0][1:]
    total = math.prod(rest)
    known = math.prod(s for s in layer.shape if s != -1)
    if -1 in layer.shape:
        if total % known:
            raise ValueError(f"cannot reshape {list(rest)} ({total} values) to {list(layer.shape)}")
        shape = tuple(total // known if s == -1 else s for s in layer.shape)
    else:
        shape = layer.shape
    if math.prod(shape) != total:
        raise ValueError(f"cannot reshape {list(rest)} ({total} values) to {list(layer.shape)}")
    return (n, *shape)


@SHAPES.register(L.Upsample)
def _upsample(layer: L.Upsample, ins: tuple[Shape, ...]) -> Shape:
    """torch.nn.Upsample: size, or floor(input * scale_factor); `like`: the reference's."""
    n, c, h, w = _image(ins[0], "upsample")
    if layer.like:
        return (n, c, *_image(ins[1], "upsample")[2:])
    if layer.size is not None:
        _within(layer.size, "output size")
        return (n, c, *layer.size)
    fh, fw = layer.scale_factor  # type: ignore[misc]
    out_h, out_w = math.floor(h * fh), math.floor(w * fw)
    _positive_spatial(out_h, out_w, ins[0])
    return (n, c, out_h, out_w)


@SHAPES.register(L.ChannelShuffle)
def _shuffle(layer: L.ChannelShuffle, ins: tuple[Shape, ...]) -> Shape:
    n, c, h, w = _image(ins[0], "channel_shuffle")
    if c % layer.groups:
        raise ValueError(f"channels {c} are not divisible by groups {layer.groups}")
    return ins[0]


@SHAPES.register(L.Opaque)
def _opaque(layer: L.Opaque, ins: tuple[Shape, ...]) -> Shape:
    """The shape torch produced at the traced input. A different batch is accepted when
    the op keeps the batch first (out[0] == in[0]); any other input size needs a new trace
    (NB: an opaque op's arithmetic is unknown to cnnstat, so it cannot be re-derived)."""
    traced_in, traced_out = layer.in_shape, layer.out_shape
    if tuple(ins[0]) == traced_in:
        return traced_out
    batch_first = bool(traced_out) and traced_out[0] == traced_in[0]
    if batch_first and tuple(ins[0][1:]) == traced_in[1:]:
        return (ins[0][0], *traced_out[1:])
    raise ValueError(
        f"'{layer.op}' was traced at input {list(traced_in)}, got {list(ins[0])}; "
        "analyze the torch module at this input (--input) so it is traced again"
    )


@SHAPES.register(L.SpatialPyramidPool)
def _spp(layer: L.SpatialPyramidPool, ins: tuple[Shape, ...]) -> Shape:
    """[N, C, H, W] -> [N*regions, C * sum(l*l for l in levels)], for any H, W >= 1
    (He et al. 2014, Sec. 2.3: a fixed-length vector from any input size)."""
    n, c, _, _ = _image(ins[0], "spatial_pyramid_pool")
    return (n * layer.region_count, c * sum(level * level for level in layer.levels))


@SHAPES.register(L.RoIPool, L.RoIAlign)
def _roi(layer: L.RoIPool | L.RoIAlign, ins: tuple[Shape, ...]) -> Shape:
    """[N, C, H, W] -> [N*regions, C, oh, ow]: one pooled map per region (torchvision.ops
    roi_pool / roi_align return [K, C, oh, ow] for K boxes)."""
    n, c, _, _ = _image(ins[0], layer.kind)
    return (n * layer.region_count, c, *layer.output_size)


@SHAPES.register(L.Crop)
def _crop(layer: L.Crop, ins: tuple[Shape, ...]) -> Shape:
    """Caffe Crop (axis 2): x[:, :, o_h:o_h + H_ref, o_w:o_w + W_ref]; the window must fit
    inside x (o + size_ref <= size_x on both axes)."""
    n, c, h, w = _image(ins[0], "crop")
    _, _, ref_h, ref_w = _image(ins[1], "crop")
    (oh, ow) = layer.offsets(h, w, ref_h, ref_w)
    if min(oh, ow) < 0 or oh + ref_h > h or ow + ref_w > w:
        raise ValueError(
            f"cannot crop {ref_h}x{ref_w} at offset ({oh}, {ow}) from a {h}x{w} input "
            f"(the window must fit: offset + reference size <= input size)"
        )
    return (n, c, ref_h, ref_w)
