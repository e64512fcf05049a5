"""Every analyzer's rules for the kinds of `cnnstat/ir/tensor_layers.py`: parts of a
tensor (split, chunk, unbind), reductions (mean, sum), pad, group norm and sub; and for
pixel_shuffle (cnnstat/ir/layers.py), another rearrangement of a tensor.

Kept in one module, registered into each analyzer's registry (imported by the package,
so any use of a registry sees them). Shape rules follow torch's: `torch.split`,
`torch.chunk` (parts of ceil(size / chunks), possibly fewer than `chunks`),
`torch.unbind`, `torch.mean` / `torch.sum` with `keepdim`, `F.pad`, `nn.GroupNorm`,
`nn.PixelShuffle`.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

from cnnstat.analyzers import min_input as M
from cnnstat.analyzers import rf as R
from cnnstat.analyzers.ops import OPS, OpCount
from cnnstat.analyzers.ops import _merge as merge_ops
from cnnstat.analyzers.params import PARAMS, ParamCount
from cnnstat.analyzers.shapes import SHAPES, Shape, TooSmall
from cnnstat.analyzers.shapes import _broadcast as broadcast
from cnnstat.analyzers.shapes import _image as image
from cnnstat.analyzers.shapes import _positive_spatial as positive_spatial
from cnnstat.ir import layers as L


def _axis(dim: int, rank: int) -> int:
    """`dim` counted from 0; never the batch (dim 0 of every tensor here)."""
    if not -rank <= dim < rank:
        raise ValueError(f"dim {dim} is out of range for a {rank}-d input")
    axis = dim % rank
    if axis == 0:
        raise ValueError(f"dim {dim} is the batch of a {rank}-d input; the batch stays")
    return axis


# --- parts --------------------------------------------------------------------------------


def part_span(layer: L.Layer, size: int) -> tuple[int, int]:
    """(offset, length) of the layer's part of a dim of `size`, as torch cuts it."""
    index = layer.index
    if isinstance(layer, L.Unbind):
        count, length, offset = size, 1, index
    elif isinstance(layer, L.Split) and len(layer.split_size) > 1:
        if sum(layer.split_size) != size:
            raise ValueError(f"split sizes {list(layer.split_size)} add up to "
                             f"{sum(layer.split_size)}, not the dim's {size}")
        count, length = len(layer.split_size), layer.split_size[index]
        offset = sum(layer.split_size[:index])
    else:
        step = layer.split_size[0] if isinstance(layer, L.Split) \
            else -(-size // layer.chunks)  # torch.chunk: ceil(size / chunks) per part
        count = -(-size // step) if step else 0
        offset = index * step
        length = min(step, size - offset)
    if index >= count:
        raise ValueError(f"part {index} does not exist: a dim of {size} gives {count} "
                         f"part{'s' if count != 1 else ''} here")
    return offset, length


def _part_shape(layer: L.Layer, sizes: tuple) -> tuple:
    axis = _axis(layer.dim, len(sizes))
    _, length = part_span(layer, sizes[axis])
    if isinstance(layer, L.Unbind):
        return (*sizes[:axis], *sizes[axis + 1:])
    return (*sizes[:axis], length, *sizes[axis + 1:])


@SHAPES.register(*L.PARTS)
def _part(layer: L.Layer, ins: tuple[Shape, ...]) -> Shape:
    """The part's size along `dim` (part_span); unbind drops the dim."""
    if len(ins[0]) < 2:
        raise ValueError(f"needs an input with a dim besides the batch, got {list(ins[0])}")
    return _part_shape(layer, ins[0])


@OPS.register(*L.PARTS, L.Pad)
def _view(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """A view, or (pad) a copy with fixed values: no arithmetic."""
    return OpCount(0, 0)


@M.FORMS.register(*L.PARTS)
def _part_form(layer: L.Layer, ins: tuple[M.Dims, ...]) -> M.Dims:
    """Along a dim of constant size (channels), a constant; a part of a spatial dim
    depends on the side in a way not followed here."""
    dims = ins[0]
    axis = _axis(layer.dim, len(dims)) if len(dims) > 1 else None
    if axis is None or type(dims[axis]) is not int:
        raise M.NoForm("a part of a dim whose size depends on the input side")
    return _part_shape(layer, dims)


@R.RF.register(*L.PARTS)
def _part_field(node, fields, ins, out, notes):
    """A part of the channels: unchanged. A part of a spatial axis (H, W, L, D) starting
    at offset o: unit j is input unit j + o (a window k=1, s=1, p=-o). An unbind of a
    spatial axis leaves one row or column of units: not described here."""
    field, layer = fields[0], node.layer
    axis = _axis(layer.dim, len(ins[0]))
    if isinstance(layer, L.Unbind):
        if axis in field.layout:
            raise R.RfUnsupported("an unbind along H or W")
        return dataclasses.replace(field, layout=tuple(d - (d > axis) for d in field.layout))
    if axis not in field.layout:
        return field
    offset, _ = part_span(layer, ins[0][axis])
    return _shifted(field, {axis: offset})


def _shifted(field: R.ReceptiveField, offsets: dict[int, int]) -> R.ReceptiveField:
    """Output unit j of dim d is input unit j + offsets[d] along each spatial axis."""
    axes = tuple(R.compose(a, R.window_map(1, 1, -offsets.get(d, 0)))
                 for a, d in zip(field.axes, field.layout, strict=True))
    return dataclasses.replace(field, axes=axes)


# --- reductions ---------------------------------------------------------------------------


def _reduced(layer: L.Layer, rank: int) -> tuple[int, ...]:
    axes = tuple(_axis(d, rank) for d in layer.dims)
    if len(set(axes)) != len(axes):
        raise ValueError(f"dims {list(layer.dims)} name a dim twice")
    return axes


def _reduce_sizes(layer: L.Layer, sizes: tuple) -> tuple:
    axes = _reduced(layer, len(sizes))
    if layer.keepdim:
        return tuple(1 if i in axes else s for i, s in enumerate(sizes))
    return tuple(s for i, s in enumerate(sizes) if i not in axes)


@SHAPES.register(*L.REDUCTIONS)
def _reduce(layer: L.Layer, ins: tuple[Shape, ...]) -> Shape:
    """The reduced dims become 1 (keepdim) or go."""
    return _reduce_sizes(layer, ins[0])


@OPS.register(*L.REDUCTIONS)
def _reduce_ops(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """One add per input element (the mean's divide per output folded in, as for average
    pooling: the same count as a global average pool over the same dims)."""
    return OpCount(0, math.prod(ins[0]))


@M.FORMS.register(*L.REDUCTIONS)
def _reduce_form(layer: L.Layer, ins: tuple[M.Dims, ...]) -> M.Dims:
    """The reduced dims become 1 or go, whatever their size."""
    return _reduce_sizes(layer, ins[0])


@R.RF.register(*L.REDUCTIONS)
def _reduce_field(node, fields, ins, out, notes):
    """Over H or W: every output sees the whole image (global). Over other dims: the
    field is unchanged, H and W move down when the dims go (no keepdim)."""
    field = fields[0]
    axes = _reduced(node.layer, len(ins[0]))
    if any(a in field.layout for a in axes):
        return R.global_field(field.image)
    if node.layer.keepdim:
        return field
    return dataclasses.replace(field, layout=tuple(
        d - sum(a < d for a in axes) for d in field.layout))


# --- pad ----------------------------------------------------------------------------------


def _pad_amounts(layer: L.Pad, rank: int) -> list[tuple[int, int]]:
    if len(layer.padding) // 2 > rank - 1:
        raise ValueError(f"padding {list(layer.padding)} pads {len(layer.padding) // 2} dims "
                         f"of a {rank}-d input; the batch is never padded")
    return layer.amounts(rank)


@SHAPES.register(L.Pad)
def _pad(layer: L.Pad, ins: tuple[Shape, ...]) -> Shape:
    """size + before + after per padded dim; reflect needs the padding smaller than the
    dim, circular at most the dim (torch's rules)."""
    rank = len(ins[0])
    if layer.mode != "constant" and len(layer.padding) != 2 * (rank - 2):
        raise ValueError(f"{layer.mode} padding pads every dim after [N, C] (torch's rule): "
                         f"{2 * (rank - 2)} values for a {rank}-d input, got "
                         f"{len(layer.padding)}")
    out = []
    for size, (before, after) in zip(ins[0], _pad_amounts(layer, rank), strict=True):
        limit = size - 1 if layer.mode == "reflect" else size
        if layer.mode in ("reflect", "circular") and max(before, after) > limit:
            raise ValueError(f"{layer.mode} padding ({before}, {after}) needs a dim larger "
                             f"than it, got {size}")
        out.append(size + before + after)
    if min(out) <= 0:
        raise TooSmall(f"padding {list(layer.padding)} leaves size {out} of input "
                       f"{list(ins[0])}: the input is too small")
    return tuple(out)


@M.FORMS.register(L.Pad)
def _pad_form(layer: L.Pad, ins: tuple[M.Dims, ...]) -> M.Dims:
    """floor((x + B) / S) + p = floor((x + B + p*S) / S): a form stays a form."""
    dims = ins[0]
    out: list[M.Dim] = []
    for dim, (before, after) in zip(dims, _pad_amounts(layer, len(dims)), strict=True):
        extra = before + after
        if not extra or dim is None:
            out.append(dim)
        else:
            out.append(dim + extra if type(dim) is int else (dim[0] + extra * dim[1], dim[1]))
    return tuple(out)


@R.RF.register(L.Pad)
def _pad_field(node, fields, ins, out, notes):
    """Output unit j is input unit j - before (a window k=1, s=1, p=before): the field
    shifts, its size does not change. NB: reflect, replicate and circular padding make
    the border units read pixels inside the image (a mirrored or wrapped copy); the rule
    is the zero-padding one, exact for every unit that reads no padding."""
    amounts = _pad_amounts(node.layer, len(ins[0]))
    return _shifted(fields[0], {d: -amounts[d][0] for d in fields[0].layout})


# --- group norm ---------------------------------------------------------------------------


@SHAPES.register(L.GroupNorm)
def _group_norm(layer: L.GroupNorm, ins: tuple[Shape, ...]) -> Shape:
    """The input's shape; channels (dim 1) divisible by num_groups."""
    if len(ins[0]) < 2:
        raise ValueError(f"needs an input [N, C, ...], got {list(ins[0])}")
    if ins[0][1] % layer.num_groups:
        raise ValueError(f"channels {ins[0][1]} are not divisible by num_groups "
                         f"{layer.num_groups}")
    return ins[0]


@PARAMS.register(L.GroupNorm)
def _group_norm_params(layer: L.GroupNorm, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """weight and bias, one per channel (affine); no buffers (no running statistics)."""
    c = ins[0][1]
    return ParamCount(2 * c, 0, f"2x{c}") if layer.affine else ParamCount(0)


@OPS.register(L.GroupNorm)
def _group_norm_ops(layer: L.GroupNorm, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """As layer norm (statistics at inference): 6 per element, 2 more for the affine."""
    return OpCount(0, (6 + 2 * layer.affine) * math.prod(out))


@R.RF.register(L.GroupNorm)
def _group_norm_field(node, fields, ins, out, notes):
    """Global: each group's mean and variance are taken over H and W, so every output
    depends on the whole image (unlike batch norm at inference, or a per-position layer
    norm)."""
    return R.global_field(fields[0].image)


# --- sub ----------------------------------------------------------------------------------


@SHAPES.register(L.Sub)
def _sub(layer: L.Sub, ins: tuple[Shape, ...]) -> Shape:
    """x - y: two inputs, broadcast as add's."""
    if len(ins) != 2:
        raise ValueError(f"sub takes two inputs (x - y), got {len(ins)}")
    return broadcast(layer, ins)


OPS.register(L.Sub)(merge_ops)  # 1 subtract per output element
M.FORMS.register(L.Sub)(M._broadcast)


# --- pixel shuffle ------------------------------------------------------------------------


@SHAPES.register(L.PixelShuffle)
def _pixel_shuffle(layer: L.PixelShuffle, ins: tuple[Shape, ...]) -> Shape:
    """[N, C*r*r, H, W] -> [N, C, H*r, W*r] (nn.PixelShuffle on an image)."""
    n, c, h, w = image(ins[0], "pixel_shuffle")
    r = layer.upscale_factor
    if c % (r * r):
        raise ValueError(f"channels {c} are not divisible by upscale_factor^2 = {r * r}")
    positive_spatial(h * r, w * r, ins[0])  # the size limit
    return (n, c // (r * r), h * r, w * r)


@OPS.register(L.PixelShuffle)
def _pixel_shuffle_ops(layer: L.PixelShuffle, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """A copy: no arithmetic."""
    return OpCount(0, 0)


@M.FORMS.register(L.PixelShuffle)
def _pixel_shuffle_form(layer: L.PixelShuffle, ins: tuple[M.Dims, ...]) -> M.Dims:
    """Constants scale by r; r * floor((x + B) / S) is not a form: searched."""
    n, c, h, w = M._image(ins[0])
    r = layer.upscale_factor
    if type(h) is not int or type(w) is not int:
        raise M.NoForm("an upscale of a size that depends on the input")
    return (n, c // (r * r), h * r, w * r)


@R.RF.register(L.PixelShuffle)
def _pixel_shuffle_field(node, fields, ins, out, notes):
    """Output unit j of an axis reads input unit floor(j / r) (of one of the r*r channels,
    which all share the field): a nearest upsample by r."""
    unit = R.resample_map(Fraction(1, node.layer.upscale_factor), "nearest", None)
    return R._per_axis(fields[0], (unit, unit))
