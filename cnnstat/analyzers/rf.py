"""Receptive fields per layer and per axis, through any graph (docs/receptive-field.md).

For one axis, output unit j of a layer reads a set of units of the layer's input; the
receptive field of j is the span (first to last pixel) of the input-image pixels it can
depend on. For convolution and pooling this is Araujo, Norris & Sim, "Computing Receptive
Fields of Convolutional Neural Networks", Distill 2019: with k_eff = d(k-1)+1,

    size_out  = size_in + (k_eff - 1) * jump_in
    jump_out  = jump_in * s
    start_out = start_in + ((k_eff - 1)/2 - p) * jump_in

Transposed convolution and upsampling make the jump fractional and the field depend on
where the unit sits between input pixels, so each axis keeps an exact periodic table:
for j = q*period + r, unit j covers [lo[r] + q*step, hi[r] + q*step] (step = period *
jump, an int). With period 1 the table is exactly Araujo's recurrences. Fields live on an
unbounded grid: a unit near the border may cover negative pixels (padding); `region`
clips them to the image. Merges take the union of their inputs' fields.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache
from itertools import starmap

from cnnstat.analyzers.registry import Registry
from cnnstat.analyzers.rf_fields import (  # noqa: F401  (Span: re-exported)
    IDENTITY_AXIS,
    NATURAL_LAYOUTS,
    AxisField,
    ReceptiveField,
    Span,
    UnitMap,
    axis_names,
    natural_layout,
    number,
    plain_axis,
)
from cnnstat.analyzers.shapes import Shape, conv_padding, permutation
from cnnstat.ir import Graph, Node
from cnnstat.ir import layers as L

MAX_PERIOD = 4096  # far above any real net (a U-Net's 4 x2 upsamplings give 16)


class RfUnsupported(Exception):
    """A layer whose field cannot be described here; the engine reports it, never raises."""


# --- unit maps: one per kind of spatial window ------------------------------------------------


@lru_cache(maxsize=1024)
def window_map(k: int, s: int, p: int, d: int = 1) -> UnitMap:
    """Convolution and pooling: unit j reads j*s - p + m*d for m in [0, k)."""
    return UnitMap(period=1, shift=s, reads=(tuple(-p + m * d for m in range(k)),))


def transposed_map(k: int, s: int, p: int, d: int = 1) -> UnitMap:
    """ConvTranspose2d: input i feeds output i*s - p + m*d, so output j reads every i with
    j + p - m*d = i*s for some m in [0, k). The pattern repeats every s outputs, one input
    further on (docs/receptive-field.md derives size and start from it)."""
    reads = []
    for r in range(s):
        reads.append(tuple((r + p - m * d) // s for m in range(k)
                           if (r + p - m * d) % s == 0))
    return UnitMap(period=s, shift=1, reads=tuple(reads))


def resample_map(scale: Fraction, mode: str, align_corners: bool | None) -> UnitMap:
    """Upsample, as torch indexes its source (`scale` = input units per output unit):
    nearest reads floor(j*scale); bilinear reads floor(src) and floor(src)+1 with
    src = (j + 1/2)*scale - 1/2 (j*scale with align_corners), the second only when its
    weight src - floor(src) is not zero."""
    period, shift = scale.denominator, scale.numerator
    reads = []
    for j in range(period):
        if mode == "nearest":
            reads.append((math.floor(j * scale),))
            continue
        src = j * scale if align_corners else (j + Fraction(1, 2)) * scale - Fraction(1, 2)
        first = math.floor(src)
        reads.append((first,) if src == first else (first, first + 1))
    return UnitMap(period=period, shift=shift, reads=tuple(reads))


def adaptive_map(n_in: int, n_out: int) -> UnitMap:
    """Adaptive pooling: output j pools [floor(j*n_in/n_out), ceil((j+1)*n_in/n_out))."""
    g = math.gcd(n_in, n_out)
    period, shift = n_out // g, n_in // g
    reads = []
    for j in range(period):
        first, end = (j * n_in) // n_out, -((-(j + 1) * n_in) // n_out)
        reads.append(tuple(range(first, end)))
    return UnitMap(period=period, shift=shift, reads=tuple(reads))


def compose(field: AxisField, umap: UnitMap) -> AxisField:
    """The field of a layer's output units from its input's field and its unit map."""
    if field.period == 1 and umap.period == 1:  # conv and pooling: Araujo's recurrences
        return _compose_plain(field, umap)
    repeats = field.period // math.gcd(umap.shift, field.period)
    period = umap.period * repeats
    if period > MAX_PERIOD:
        raise RfUnsupported(f"the field repeats only every {period} units")
    los: list[int | None] = []
    his: list[int | None] = []
    for j in range(period):
        q, r = divmod(j, umap.period)
        spans = [s for u in umap.reads[r] if (s := field.span(u + q * umap.shift)) is not None]
        los.append(min((s[0] for s in spans), default=None))
        his.append(max((s[1] for s in spans), default=None))
    jump = field.jump
    if umap.shift != umap.period:  # Fraction arithmetic is slow: skip it when s = 1
        jump = jump * umap.shift / umap.period
    return reduced(AxisField(jump=jump, period=period, lo=tuple(los), hi=tuple(his)))


def _compose_plain(field: AxisField, umap: UnitMap) -> AxisField:
    """size_out = size_in + (k_eff - 1)*jump_in and start_out = start_in + ((k_eff - 1)/2 -
    p)*jump_in, written as unit 0's first and last pixel; jump_out = jump_in*s."""
    reads, lo, hi, step = umap.reads[0], field.lo[0], field.hi[0], field.step
    jump = field.jump if umap.shift == 1 else _whole(step * umap.shift)  # period 1: an int
    if not reads or lo is None or hi is None:
        return plain_axis(jump, None, None)
    return plain_axis(jump, lo + min(reads) * step, hi + max(reads) * step)


@lru_cache(maxsize=256)
def _whole(n: int) -> Fraction:
    """Fraction(n), made once per stride (making a Fraction is slow)."""
    return Fraction(n)


def reduced(field: AxisField) -> AxisField:
    """The same field with its smallest period (a stride-2 conv after a x2 upsampling
    brings the period back to 1)."""
    for period in range(1, field.period):
        if field.period % period or (period * field.jump).denominator != 1:
            continue
        step = int(period * field.jump)
        if all(_shifted(field.lo, j, period, step) and _shifted(field.hi, j, period, step)
               for j in range(field.period - period)):
            return AxisField(jump=field.jump, period=period, lo=field.lo[:period],
                             hi=field.hi[:period])
    return field


def _shifted(table: tuple[int | None, ...], j: int, period: int, step: int) -> bool:
    a, b = table[j], table[j + period]
    return a is None if b is None else a is not None and a + step == b


# --- per-kind handlers ------------------------------------------------------------------------

Handler = Callable[[Node, tuple[ReceptiveField, ...], tuple[Shape, ...], Shape, list[str]],
                   ReceptiveField]
RF: Registry[Handler] = Registry("rf")


def _per_axis(field: ReceptiveField, maps: tuple[UnitMap, ...]) -> ReceptiveField:
    """One unit map per spatial axis of the input (L; H, W; D, H, W), in that order."""
    if len(maps) != len(field.axes):  # type: ignore[arg-type]
        raise RfUnsupported(f"a {len(maps)}-axis window on a {len(field.axes)}-axis "
                            "input (after a reshape of the spatial axes)")
    return ReceptiveField(tuple(map(compose, field.axes, maps)),  # type: ignore[arg-type]
                          field.image, field.layout)  # (the lengths are equal: checked)


def global_field(image: tuple[int, ...]) -> ReceptiveField:
    return ReceptiveField(None, image, natural_layout(len(image)))


def _windows(field: ReceptiveField, make: Callable[..., UnitMap], *pairs) -> ReceptiveField:
    """One unit map per axis from per-axis attributes (kernel, stride, padding, ...:
    [h, w] for 2-D kinds, [l] or [d, h, w] for 1-D and 3-D ones)."""
    return _per_axis(field, tuple(starmap(make, zip(*pairs, strict=True))))


@RF.register(L.Conv2d)
def _conv(node, fields, ins, out, notes):
    """Araujo's recurrences with k_eff = d(k-1)+1; 'same' pads d(k-1)//2 on the left."""
    layer = node.layer
    return _windows(fields[0], window_map, layer.kernel_size, layer.stride,
                    conv_padding(layer), layer.dilation)


@RF.register(L.MaxPool2d, L.AvgPool2d)
def _pool(node, fields, ins, out, notes):
    """As conv. NB: ceil_mode only adds output units at the far end, so the recurrences
    (which describe unit j's window, not how many units exist) do not change."""
    layer = node.layer
    return _windows(fields[0], window_map, layer.kernel_size, layer.stride, layer.padding,
                    getattr(layer, "dilation", (1, 1)))


@RF.register(L.ConvTranspose2d)
def _conv_transpose(node, fields, ins, out, notes):
    """jump / s; each output unit reads the inputs of transposed_map (output_padding only
    appends units at the far end)."""
    layer = node.layer
    return _windows(fields[0], transposed_map, layer.kernel_size, layer.stride,
                    layer.padding, layer.dilation)


@RF.register(L.Upsample)
def _upsample(node, fields, ins, out, notes):
    """jump * scale, with torch's source indexing (resample_map)."""
    layer = node.layer
    maps = []
    for axis in range(len(out) - 2):
        n_in, n_out = ins[0][2 + axis], out[2 + axis]
        if layer.align_corners:
            scale = Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
        elif layer.scale_factor is not None:
            scale = 1 / Fraction(layer.scale_factor[axis]).limit_denominator(10_000)
        else:
            scale = Fraction(n_in, n_out)
        maps.append(resample_map(scale, layer.mode, layer.align_corners))
    return _per_axis(fields[0], tuple(maps))


@RF.register(L.AdaptiveAvgPool2d, L.AdaptiveMaxPool2d)
def _adaptive(node, fields, ins, out, notes):
    """Global when it pools a whole axis to one unit; else torch's adaptive windows (a
    plain k = s = n_in/n_out pool when n_out divides n_in; VGG's 7x7 pool of a 7x7 map is
    the identity)."""
    sizes = tuple(zip(ins[0][2:], out[2:], strict=True))
    if any(n_out == 1 < n_in for n_in, n_out in sizes):
        return global_field(fields[0].image)
    return _per_axis(fields[0], tuple(adaptive_map(n_in, n_out) for n_in, n_out in sizes))


@RF.register_trait(L.SHAPE_PRESERVING)
@RF.register(L.BatchNorm2d, L.LocalResponseNorm, L.Dropout, L.Identity, L.ChannelShuffle)
def _same(node, fields, ins, out, notes):
    """Element-wise or across channels only (LRN normalises across channels, not space):
    the field is unchanged."""
    return fields[0]


@RF.register(L.LayerNorm)
def _layer_norm(node, fields, ins, out, notes):
    """Over the channels of each position: unchanged. Over the last dim of an image
    [N, C, H, W] it mixes a whole row: global; after a permute to [N, H, W, C] the last
    dim is C again: unchanged."""
    axis = 1 if node.layer.data_format == "channels_first" else len(ins[0]) - 1
    return _mixing(fields[0], axis)


@RF.register(L.Linear)
def _linear(node, fields, ins, out, notes):
    """Over the last dim: after flatten, global; on [N, H, W, C] (ConvNeXt's MLP after its
    permute) it mixes the channels of each position only: unchanged."""
    return _mixing(fields[0], len(ins[0]) - 1)


def _mixing(field: ReceptiveField, axis: int) -> ReceptiveField:
    """A layer mixing the values along one tensor dim: global if that dim is H or W."""
    return global_field(field.image) if axis in field.layout else field


@RF.register(L.Permute)
def _permute(node, fields, ins, out, notes):
    """Follows the axes: H and W keep their fields and move where the dims put them; a
    layer that reads space (conv, pool, merge) needs them back at dims 2, 3 (_field_of)."""
    dims = permutation(node.layer.dims, len(ins[0]))
    field = fields[0]
    return dataclasses.replace(field, layout=tuple(dims.index(d) for d in field.layout))


@RF.register(L.Softmax)
def _softmax(node, fields, ins, out, notes):
    """Across a spatial axis every output sees the whole axis: global; across channels
    (or another dim): unchanged."""
    return _mixing(fields[0], node.layer.dim % len(ins[0]))


@RF.register(L.Opaque)
def _opaque(node, fields, ins, out, notes):
    """An op the torch frontend could not translate: its spatial behaviour is unknown."""
    raise RfUnsupported(f"opaque op '{node.layer.op}' has no known receptive field")


@RF.register(L.Flatten, L.Reshape)
def _global(node, fields, ins, out, notes):
    """Mixes every position (flatten -> linear), so the field is the whole image."""
    return global_field(fields[0].image)


@RF.register(L.SpatialPyramidPool, L.RoIPool, L.RoIAlign)
def _detection_pool(node, fields, ins, out, notes):
    """Global. SPP's level-1 bin pools the whole map and its output is a flat vector (as
    flatten); an RoI's box is data (any part of the image), so its units can see anything."""
    return global_field(fields[0].image)


@RF.register(L.Crop)
def _crop(node, fields, ins, out, notes):
    """Output unit j is input unit j + offset (a window of k=1, s=1, p=-offset): the field
    shifts, its size does not change. The reference input only gives the output size."""
    offset = node.layer.offsets(*ins[0][2:], *ins[1][2:])
    return _windows(fields[0], window_map, (1, 1), (1, 1), tuple(-o for o in offset), (1, 1))


@RF.register_trait(L.MERGE)
def _merge(node, fields, ins, out, notes):
    """The union of the inputs' fields, unit by unit; notes when the inputs' strides
    differ or the centres of their unit 0 do not coincide. The spatial axes may be wherever
    a permute put them (Swin's residual adds on [N, H, W, C]), the same in every input."""
    image, layout = fields[0].image, fields[0].layout
    if any(f.layout != layout for f in fields):
        raise RfUnsupported("its inputs hold the spatial axes at different dims")
    rank = len(image) + 2
    spatial = [out[d] for d in layout] if len(out) == rank else None
    if spatial is None or any(len(s) != rank or [s[d] for d in layout] != spatial for s in ins):
        notes.append("an input is broadcast over space or concatenated along a spatial "
                     "axis, so units do not see shifted copies of one region; treated as "
                     "global")
        return global_field(image)
    axes = tuple(_union([f.axes[i] for f in fields], name, node.inputs, notes)
                 for i, name in enumerate(axis_names(len(image))))
    return ReceptiveField(axes, image, layout)


def _union(axes: list[AxisField], axis: str, sources: tuple[str, ...],
           notes: list[str]) -> AxisField:
    _check_alignment(axes, axis, sources, notes)
    jump = axes[0].jump
    same_jump = all(a.jump == jump for a in axes)
    if same_jump and all(a.period == 1 for a in axes):  # the common case, kept cheap
        los = [a.lo[0] for a in axes if a.lo[0] is not None]
        his = [a.hi[0] for a in axes if a.hi[0] is not None]
        return AxisField(jump=jump, period=1, lo=(min(los, default=None),),
                         hi=(max(his, default=None),))
    widest = max(axes, key=lambda a: a.jump)
    if not same_jump:
        listed = ", ".join(f"'{s}' {number(a.jump)}" for s, a in zip(sources, axes, strict=True))
        notes.append(f"inputs' strides differ along {axis} ({listed}): their fields drift "
                     f"apart from unit to unit; the union is exact for unit 0 and the "
                     f"largest stride is kept")
    period = math.lcm(*(a.period for a in axes))
    if period > MAX_PERIOD:
        raise RfUnsupported(f"the merged field repeats only every {period} units")
    los, his = [], []
    for j in range(period):
        spans = [s for a in axes if (s := a.span(j)) is not None]
        los.append(min((s[0] for s in spans), default=None))
        his.append(max((s[1] for s in spans), default=None))
    merged = AxisField(jump=widest.jump, period=period, lo=tuple(los), hi=tuple(his))
    return merged if period == 1 else reduced(merged)


def _check_alignment(axes: list[AxisField], axis: str, sources: tuple[str, ...],
                     notes: list[str]) -> None:
    """Notes when the centres of the inputs' unit 0 differ (compared as lo + hi, in ints).
    Only for period-1 fields: after a transposed conv or an upsampling, units differ by
    phase and a span's centre is not where the kernel's weight sits (FCN's bilinear 4x4/2
    upsampling reads 2 inputs weighted 1/4 and 3/4), so the centres do not say whether
    the inputs are aligned (FCN-16s's crop offsets, Caffe's coord_map, align them)."""
    if any(a.period > 1 for a in axes):
        return
    doubled = [(s, span[0] + span[1]) for s, a in zip(sources, axes, strict=True)
               if (span := a.span(0)) is not None]
    values = [v for _, v in doubled]
    if values and max(values) != min(values):
        listed = ", ".join(f"'{s}' at {number(Fraction(v, 2))}" for s, v in doubled)
        gap = number(Fraction(max(values) - min(values), 2))
        notes.append(f"inputs are misaligned along {axis} by {gap} px (centre of unit 0: "
                     f"{listed})")


# --- the pass over a graph --------------------------------------------------------------------


def receptive_fields(graph: Graph, shapes: dict[str, Shape]
                     ) -> tuple[dict[str, ReceptiveField | None], tuple[str, ...]]:
    """Every node's field (None when the input has no spatial axis, or after a layer whose
    field is unknown) and the diagnostics, each starting with its location and layer path.
    The input is [N, C, *spatial]: a sequence, an image, a volume or a clip."""
    image = tuple(shapes[graph.input_node.name][2:])
    if not image:  # [N, C] (features, not a signal): no field to speak of
        return {node.name: None for node in graph}, ()
    fields: dict[str, ReceptiveField | None] = {graph.input_node.name: ReceptiveField(
        (IDENTITY_AXIS,) * len(image), image, natural_layout(len(image)))}
    diagnostics: list[str] = []
    for node in graph.nodes[1:]:
        fields[node.name] = _field_of(node, fields, shapes, diagnostics)
    return fields, tuple(diagnostics)


# Kinds whose field rule holds wherever a permute put H and W: element-wise kinds and those
# whose rule reads the layout.
_ANY_LAYOUT = (L.Permute, L.LayerNorm, L.Linear, L.LayerScale, L.DropPath, L.Dropout,
               L.Identity, L.GroupNorm, L.Pad, *L.PARTS, *L.REDUCTIONS, *L.ATTENTION,
               L.GlobalResponseNorm, L.Stack, *L.WINDOW_KINDS, *L.INDEX_KINDS)


def _follows_layout(kind: type[L.Layer]) -> bool:
    return issubclass(kind, _ANY_LAYOUT) or bool({L.POINTWISE, L.MERGE} & kind.traits)


@lru_cache(maxsize=1)
def _same_field() -> frozenset[type[L.Layer]]:
    """Kinds whose field is their input's (`_same`), for `_field_of`'s short way, which a
    100,000-layer spec takes for two layers in three. Asked at the first analysis: every
    module has registered its rules by then (asking RF earlier would fix a trait's handler
    before a kind's own)."""
    return frozenset(k for k in L.ALL_KINDS if RF.get(k) is _same)


def _field_of(node: Node, fields: dict[str, ReceptiveField | None], shapes: dict[str, Shape],
              diagnostics: list[str]) -> ReceptiveField | None:
    kind, inputs = type(node.layer), node.inputs
    if len(inputs) == 1:  # most layers: no tuple and any() over one input
        field = fields[inputs[0]]
        if field is None:
            return None
        if kind in _same_field() and not field.gated and (field.layout == (2, 3)
                                                          or _follows_layout(kind)):
            return field  # unchanged, as `_same` gives it (a gated path goes the long way)
        ins: tuple[ReceptiveField, ...] = (field,)
        is_global = field.axes is None
    else:
        gathered = tuple(map(fields.__getitem__, inputs))
        if any(f is None for f in gathered):
            return None
        ins = gathered  # type: ignore[assignment]
        is_global = any(f.axes is None for f in ins)
    notes: list[str] = []
    rule = _gated if is_global else _local
    field = rule(node, ins, shapes, notes)  # type: ignore[arg-type]
    if not notes:
        return field
    where = f"{node.loc}: " if node.loc is not None else ""
    diagnostics += [f"{where}warning: layer '{node.name}' ({node.kind}): receptive field: {n}"
                    for n in notes]
    return field


def _local(node: Node, ins: tuple[ReceptiveField, ...], shapes: dict[str, Shape],
           notes: list[str]) -> ReceptiveField | None:
    """The kind's rule on inputs with local fields; None (and a note) where unknown."""
    handler = RF.get(type(node.layer))
    field = None
    if handler is None:
        notes.append("no receptive-field rule for this kind; later fields are unknown")
    elif (any(f.layout not in NATURAL_LAYOUTS for f in ins)
          and not _follows_layout(type(node.layer))):
        notes.append("the spatial axes are not at dims 2, 3, ... here (a permute moved "
                     "them) and this kind's field is known only there; later fields are "
                     "unknown")
    else:
        try:
            field = handler(node, ins, tuple(map(shapes.__getitem__, node.inputs)),
                            shapes[node.name], notes)
        except RfUnsupported as e:
            notes.append(f"{e}; later fields are unknown")
    return field


# Merges where a gate's global context joins a convolution path: squeeze-and-excitation's
# x * gate, an added or concatenated globally pooled branch (DeepLab's image pooling).
_GATES = (L.Multiply, L.Add, L.Concat)


def _gated(node: Node, ins: tuple[ReceptiveField, ...], shapes: dict[str, Shape],
           notes: list[str]) -> ReceptiveField:
    """The global field of a layer with a global input and, when only gates made it global
    (`gated`), the field of the convolution path (`local`): a gate merge drops its global
    inputs (the gates) and takes the union of the others, any other layer applies its own
    rule to its input's path. A layer global in itself (a pool to one unit, flatten,
    attention) ends the path; an op without a rule makes it unknown (local None, noted)."""
    image = ins[0].image
    items = list(zip(node.inputs, ins, strict=True))
    if isinstance(node.layer, _GATES):
        items = [(name, f) for name, f in items if not f.is_global or f.gated]
    if not items or any(f.is_global and not f.gated for _, f in items):
        return global_field(image)
    unknown = ReceptiveField(None, image, natural_layout(len(image)), gated=True)
    if any(f.is_global and f.local is None for _, f in items):
        return unknown  # noted where the path became unknown
    names = tuple(name for name, _ in items)
    paths = tuple(f.local if f.is_global else f for _, f in items)
    path_notes: list[str] = []
    local = _local(dataclasses.replace(node, inputs=names), paths, shapes, path_notes)
    if local is None:
        notes += ["the convolution path behind the gates: "
                  + n.replace("later fields", "later paths") for n in path_notes[:1]]
        return unknown
    return global_field(image) if local.is_global else ReceptiveField(
        None, image, natural_layout(len(image)), local=local, gated=True)


# Attention and 1-D / 3-D kinds: their rules register into RF above.
from cnnstat.analyzers import rf_nd  # noqa: E402,F401  isort: skip
