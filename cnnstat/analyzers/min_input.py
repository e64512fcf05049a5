"""The smallest square input every layer accepts, from the shape rules alone.

The definition is a search: "too small" means some layer's output size is non-positive.
Output sizes never shrink when the input grows, so it is monotone in the input side, and
a doubling search followed by bisection finds the minimum with O(log size) shape passes.
A different error at some size (a branch mismatch at odd sizes in an encoder-decoder)
does not make the input "too small".

Most nets take a shortcut, one symbolic pass: a conv or pool maps a size x to
floor((x + b) / s), and such maps compose exactly: floor((floor((x + B) / S) + b) / s) =
floor((x + B + S*b) / (S*s)). So every layer's output size is a *form* floor((side + B)
/ S) of the input side, or a constant, positive exactly when side >= S - B: the minimum
is the largest S - B. When every merge also joins equal forms (so no other error depends
on the side) and the net runs at that side, the search's test is exactly "side < that
minimum" at every size, so the search would return the same side; two real shape passes
confirm it anyway (it runs, one less is too small). A kind without a form rule (transposed
conv, crop, reshape, opaque op), a merge of different forms, or a failed check falls back
to the search.
"""

from __future__ import annotations

import math

from cnnstat.analyzers.engine import infer_shapes, resolve_input
from cnnstat.analyzers.registry import Registry
from cnnstat.analyzers.shapes import SHAPES, pool_out
from cnnstat.errors import InputTooSmallError, ShapeError, UsageError
from cnnstat.ir import Graph
from cnnstat.ir import layers as L

MAX_SIDE = 1 << 16

# A spatial size as a function of the input side: an int (constant), a form (B, S) for
# floor((side + B) / S), or None (depends on the side in a way not followed here).
Dim = int | tuple[int, int] | None
Dims = tuple[Dim, ...]
FORMS: Registry = Registry("min_input")


class NoForm(Exception):
    """A size this module does not follow symbolically; the caller searches instead."""


def _floor_dim(dim: Dim, offset: int, stride: int) -> Dim:
    """floor((dim + offset) / stride): exact for a constant, composed for a form."""
    if type(dim) is int:
        return (dim + offset) // stride
    if dim is None:
        raise NoForm("a window over a size that is not a form")
    base, scale = dim
    return (base + scale * offset, scale * stride)


def _image(dims: Dims) -> Dims:
    if len(dims) != 4 or type(dims[0]) is not int or type(dims[1]) is not int:
        raise NoForm("not an image with a constant batch and channel count")
    return dims


def _conv_dim(x: Dim, k: int, s: int, p: int, d: int) -> Dim:
    """conv_out(x) = floor((x + 2p - d(k-1) - 1 + s) / s)."""
    return _floor_dim(x, 2 * p - d * (k - 1) - 1 + s, s)


@FORMS.register(L.Conv2d)
def _conv(layer: L.Conv2d, ins: tuple[Dims, ...]) -> Dims:
    """conv_out per axis (_conv_dim); 'same' keeps the size."""
    n, _, h, w = _image(ins[0])
    if layer.padding == "same":
        return (n, layer.out_channels, h, w)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
        layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    return (n, layer.out_channels, _conv_dim(h, kh, sh, ph, dh), _conv_dim(w, kw, sw, pw, dw))


def _pool_dim(x: Dim, k: int, s: int, p: int, d: int, ceil_mode: bool) -> Dim:
    """pool_out as a form: conv_out, with s - 1 more in the numerator in ceil mode, where
    torch's rule that the last window starts inside the input or left padding never
    applies when p + s <= d(k-1) + 1."""
    if type(x) is int:
        return pool_out(x, k, s, p, d, ceil_mode)
    if not ceil_mode:
        return _conv_dim(x, k, s, p, d)
    if p + s > d * (k - 1) + 1:
        raise NoForm("a ceil-mode pool that may drop its last window")
    return _floor_dim(x, 2 * p - d * (k - 1) - 1 + s + (s - 1), s)


@FORMS.register(L.MaxPool2d, L.AvgPool2d)
def _pool(layer: L.MaxPool2d | L.AvgPool2d, ins: tuple[Dims, ...]) -> Dims:
    """pool_out per axis (_pool_dim)."""
    n, c, h, w = _image(ins[0])
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    dh, dw = getattr(layer, "dilation", (1, 1))
    return (n, c, _pool_dim(h, kh, sh, ph, dh, layer.ceil_mode),
            _pool_dim(w, kw, sw, pw, dw, layer.ceil_mode))


@FORMS.register(L.AdaptiveAvgPool2d, L.AdaptiveMaxPool2d, L.RoIPool, L.RoIAlign)
def _fixed_grid(layer: L.Layer, ins: tuple[Dims, ...]) -> Dims:
    """A fixed output grid from any input size (regions multiply the batch)."""
    n, c, _, _ = _image(ins[0])
    return (n * getattr(layer, "region_count", 1), c, *layer.output_size)


@FORMS.register(L.Upsample)
def _upsample(layer: L.Upsample, ins: tuple[Dims, ...]) -> Dims:
    """A fixed size; a scale factor gives floor(x * f), not a form."""
    n, c, _, _ = _image(ins[0])
    if layer.like:
        return (n, c, *_image(ins[1])[2:])
    if layer.size is None:
        raise NoForm("upsampling by a scale factor")
    return (n, c, *layer.size)


@FORMS.register(L.SpatialPyramidPool)
def _spp(layer: L.SpatialPyramidPool, ins: tuple[Dims, ...]) -> Dims:
    """A fixed-length vector from any input size."""
    n, c, _, _ = _image(ins[0])
    return (n * layer.region_count, c * sum(level * level for level in layer.levels))


@FORMS.register_trait(L.SHAPE_PRESERVING)
@FORMS.register(L.BatchNorm2d, L.LocalResponseNorm, L.Dropout, L.Identity, L.Softmax)
def _same(layer: L.Layer, ins: tuple[Dims, ...]) -> Dims:
    """The input's sizes."""
    return ins[0]


@FORMS.register(L.Permute)
def _permute(layer: L.Permute, ins: tuple[Dims, ...]) -> Dims:
    """The input's sizes, reordered."""
    if len(layer.dims) != len(ins[0]):
        raise NoForm("dims that do not list every dim")
    return tuple(ins[0][_axis(d, len(ins[0]))] for d in layer.dims)


@FORMS.register(L.ChannelShuffle)
def _shuffle(layer: L.ChannelShuffle, ins: tuple[Dims, ...]) -> Dims:
    """The input's sizes (its channel count, checked by the shape rule, is a constant)."""
    return _image(ins[0])


def _axis(dim: int, rank: int) -> int:
    if not -rank <= dim < rank:
        raise NoForm("a dim out of range")
    return dim % rank


@FORMS.register(L.Flatten)
def _flatten(layer: L.Flatten, ins: tuple[Dims, ...]) -> Dims:
    """The product of the flattened sizes, when they are all constants."""
    dims = ins[0]
    start, end = _axis(layer.start_dim, len(dims)), _axis(layer.end_dim, len(dims))
    merged = dims[start:end + 1]
    size = math.prod(merged) if all(type(d) is int for d in merged) else None
    return (*dims[:start], size, *dims[end + 1:])


@FORMS.register(L.Linear)
def _linear(layer: L.Linear, ins: tuple[Dims, ...]) -> Dims:
    """The last size becomes out_features."""
    if len(ins[0]) < 2:
        raise NoForm("not a [N, features] input")
    return (*ins[0][:-1], layer.out_features)


def _same_size(sizes: Dims) -> Dim:
    if sizes[0] is None or sizes.count(sizes[0]) != len(sizes):
        raise NoForm("merged sizes that may differ at some input side")
    return sizes[0]


@FORMS.register(L.Concat)
def _concat(layer: L.Concat, ins: tuple[Dims, ...]) -> Dims:
    """Equal forms on every other dim; the concat dim adds up (constants only)."""
    rank = len(ins[0])
    dim = _axis(layer.dim, rank)
    if any(len(dims) != rank for dims in ins):
        raise NoForm("inputs of different ranks")
    sizes_per_dim = list(zip(*ins, strict=True))
    joined = sizes_per_dim[dim]
    return tuple(_same_size(sizes) if i != dim
                 else sum(joined) if all(type(d) is int for d in joined) else None
                 for i, sizes in enumerate(sizes_per_dim))


@FORMS.register(L.Add, L.Multiply)
def _broadcast(layer: L.Layer, ins: tuple[Dims, ...]) -> Dims:
    """Equal forms, or a constant 1 that broadcasts."""
    rank = max(len(dims) for dims in ins)
    padded = [(1,) * (rank - len(dims)) + dims for dims in ins]
    return tuple(_same_size(tuple(s for s in sizes if s != 1) or (1,))
                 for sizes in zip(*padded, strict=True))


def _certified_side(graph: Graph, channels: int) -> int | None:
    """The largest S - B over every form, when every layer's sizes follow a form rule (or
    its inputs are constants, where the shape rule itself is exact); else None."""
    dims: dict[str, Dims] = {graph.nodes[0].name: (1, channels, (0, 1), (0, 1))}
    varies = {graph.nodes[0].name}  # the nodes whose sizes depend on the input side
    form_rule, shape_rule, dims_of = FORMS.lookup(), SHAPES.lookup(), dims.__getitem__
    side = 1
    for node in graph.nodes[1:]:
        constant_in = varies.isdisjoint(node.inputs)
        rule = (shape_rule if constant_in else form_rule)(type(node.layer))
        if rule is None:
            return None
        ins = tuple(map(dims_of, node.inputs))
        try:
            out = rule(node.layer, ins)
        except (NoForm, ValueError):
            return None
        dims[node.name] = out
        if constant_in:
            continue
        if out is ins[0]:  # the input's sizes (an activation, a norm): nothing new
            varies.add(node.name)
            continue
        forms = [d for d in out if type(d) is not int]
        if forms:
            varies.add(node.name)
            side = max(side, *(d[1] - d[0] for d in forms if d is not None), 1)
    return side


def _failure(graph: Graph, channels: int, side: int) -> ShapeError | None:
    """What one shape pass at a CxSxS input raises, or None when every layer fits."""
    try:
        infer_shapes(graph, (channels, side, side))
    except ShapeError as e:
        return e
    return None


def _too_small(graph: Graph, channels: int, side: int) -> bool:
    """Only a non-positive size counts (a branch mismatch is a different error)."""
    return isinstance(_failure(graph, channels, side), InputTooSmallError)


def _search(graph: Graph, channels: int) -> int:
    high = 1
    while _too_small(graph, channels, high):
        high *= 2
        if high > MAX_SIDE:
            try:  # the layer that no size satisfies, for the message
                infer_shapes(graph, (channels, MAX_SIDE, MAX_SIDE))
            except InputTooSmallError as e:
                raise InputTooSmallError(f"no square input up to {MAX_SIDE} px works: "
                                         f"{e.message}", e.loc, layer=e.layer,
                                         kind=e.kind) from None
            raise UsageError(f"model '{graph.meta.name}' needs an input over {MAX_SIDE} px")
    low = high // 2  # too small (or 0 when 1 already works)
    while high - low > 1:
        middle = (low + high) // 2
        if _too_small(graph, channels, middle):
            low = middle
        else:
            high = middle
    failure = _failure(graph, channels, high)
    if failure is not None:  # not too small, but wrong at every size (a kernel past a 1x1 pool)
        raise failure
    return high


def min_input_side(graph: Graph) -> int:
    """The smallest S such that a CxSxS input gives every layer inference runs a positive
    output size (training-only aux heads excluded, as torchvision's eval-mode min_size)."""
    graph = graph.inference_graph()
    shape = resolve_input(graph, None)
    if len(shape) != 3:
        raise UsageError(f"model '{graph.meta.name}' does not take images [C, H, W]")
    channels = shape[0]
    side = _certified_side(graph, channels)
    if (side is not None and side <= MAX_SIDE and _failure(graph, channels, side) is None
            and (side == 1 or _too_small(graph, channels, side - 1))):
        return side
    return _search(graph, channels)
