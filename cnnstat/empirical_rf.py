"""Receptive fields measured by gradient on the built module (docs/architecture.md,
"Verification").

The oracle for `cnnstat.analyzers.rf`: torch's own convolutions decide which input pixels
an output unit depends on. The graph is first made gradient-friendly without changing any
window: max-pool becomes avg-pool with the same kernel, stride, padding and ceil_mode (a
max passes gradient to one pixel only), ReLU6 becomes ReLU (it would cut the gradient
above 6), a softmax across channels becomes the identity (the sum of its outputs is
constant, so its gradient is exactly zero). Weights are positive (1/fan_in, so values stay
near 1), biases zero, BatchNorm in eval with identity statistics, everything in float64
(DenseNet's field edges get gradients near 1e-100), the input all ones. The gradient of
the sum over all channels at the central output unit is then nonzero exactly on the
unit's field (one channel alone would miss the wider branches of a concat).

Deep nets have fields of thousands of pixels, so each axis is measured on a strip that is
long along it and as short as the net allows across it: every window is a product of an h
window and a w window, so the extent along one axis does not depend on the other. A strip
whose gradient reaches its border is clipped and is measured again, twice as long.

The effective receptive field (Luo, Li, Urtasun & Zemel, "Understanding the Effective
Receptive Field in Deep Convolutional Neural Networks", NIPS 2016) uses the net as built,
with torch's random init and random inputs: the side of the smallest centred square that
holds 95% of the mean |gradient|.

torch is imported inside the functions: importing this module stays torch-free.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from cnnstat.analyzers.engine import infer_shapes, resolve_input
from cnnstat.analyzers.rf import AxisField, ReceptiveField, Span, receptive_fields
from cnnstat.analyzers.shapes import Shape
from cnnstat.errors import AnalysisError, CnnstatError, UsageError
from cnnstat.ir import Graph
from cnnstat.ir import layers as L

MAX_ATTEMPTS = 4


def size_dependent(layer: L.Layer) -> bool:
    """Windows that depend on the input size (adaptive pooling, an upsampling to a fixed
    size or with aligned corners): a strip would not measure the field they have at the
    analysed input, so neither they nor anything after them is measured."""
    if isinstance(layer, L.Upsample):
        return layer.size is not None or bool(layer.align_corners)
    return isinstance(layer, (L.AdaptiveAvgPool2d, L.AdaptiveMaxPool2d))
@dataclass(frozen=True, slots=True)
class AxisMeasure:
    unit: int  # the output unit measured: the central one of its strip
    span: Span | None  # first and last input pixel with a nonzero gradient
    length: int  # the strip's length along this axis
    clipped: bool  # the gradient reached the strip's end, so the span may be cut

    @property
    def size(self) -> int:
        return 0 if self.span is None else self.span[1] - self.span[0] + 1


@dataclass(frozen=True, slots=True)
class Measured:
    layer: str
    h: AxisMeasure
    w: AxisMeasure

    @property
    def size(self) -> tuple[int, int]:
        return self.h.size, self.w.size

    def agrees(self, field: ReceptiveField) -> bool:
        """The measured spans equal the analytic spans of the same units, on both axes."""
        return not (self.h.clipped or self.w.clipped) and all(
            axis.span(m.unit) == m.span for axis, m in zip(field.axes, (self.h, self.w),
                                                           strict=True))


@dataclass(frozen=True, slots=True)
class Erf:
    layer: str
    side: int  # smallest centred square holding `mass` of the gradient
    mass: float
    input_side: int
    clipped: bool  # the input is smaller than the theoretical field
    seeds: int


def analytic(graph: Graph, input_shape: Shape | None = None
             ) -> tuple[dict[str, ReceptiveField | None], dict[str, Shape]]:
    shapes = infer_shapes(graph, resolve_input(graph, input_shape))
    return receptive_fields(graph, shapes)[0], shapes


def measurable_layers(graph: Graph, fields: dict[str, ReceptiveField | None],
                      shapes: dict[str, Shape]) -> list[str]:
    """Image-shaped layers with a local field and no size-dependent layer before them."""
    tainted: set[str] = set()
    out = []
    for node in graph.nodes[1:]:
        if size_dependent(node.layer) or any(i in tainted for i in node.inputs):
            tainted.add(node.name)
            continue
        field = fields.get(node.name)
        if field is not None and not field.is_global and len(shapes[node.name]) == 4:
            out.append(node.name)
    return out


def checkpoints(graph: Graph, fields: dict[str, ReceptiveField | None],
                shapes: dict[str, Shape]) -> list[str]:
    """The end of each stage (the last layer at each effective stride) and the last
    measurable layer, in graph order."""
    names = measurable_layers(graph, fields, shapes)
    last_at: dict[tuple, str] = {}
    for name in names:
        last_at[fields[name].stride] = name  # type: ignore[union-attr]
    chosen = set(last_at.values()) | set(names[-1:])
    return [n for n in names if n in chosen]


def subgraph(graph: Graph, outputs: Sequence[str]) -> Graph:
    """The nodes the given outputs depend on, with those outputs."""
    keep = set(outputs)
    for node in reversed(graph.nodes):
        if node.name in keep:
            keep.update(node.inputs)
    nodes = tuple(n for n in graph.nodes if n.name in keep)
    ordered = tuple(n.name for n in nodes if n.name in set(outputs))
    return Graph(nodes, ordered, graph.meta)


def gradient_friendly(graph: Graph) -> Graph:
    """The same windows with a gradient wherever the field reaches (module docstring)."""
    nodes = []
    for node in graph.nodes:
        layer = node.layer
        if isinstance(layer, L.MaxPool2d):
            if layer.dilation != (1, 1):
                raise AnalysisError("a dilated max-pool has no avg-pool twin to measure with",
                                    node.loc, layer=node.name)
            layer = L.AvgPool2d(kernel_size=layer.kernel_size, stride=layer.stride,
                                padding=layer.padding, ceil_mode=layer.ceil_mode)
        elif isinstance(layer, L.AdaptiveMaxPool2d):
            layer = L.AdaptiveAvgPool2d(output_size=layer.output_size)
        elif isinstance(layer, L.ReLU6):
            layer = L.ReLU()
        elif isinstance(layer, L.Softmax) and layer.dim in (1, -3):
            layer = L.Identity()
        nodes.append(dataclasses.replace(node, layer=layer))
    return Graph(tuple(nodes), graph.outputs, graph.meta)


def symmetric(graph: Graph) -> bool:
    """Every [h, w] attribute of every layer has h == w, so both axes measure alike."""
    for node in graph.nodes:
        for f in dataclasses.fields(node.layer):
            value = getattr(node.layer, f.name)
            if isinstance(value, tuple) and len(value) == 2 and value[0] != value[1]:
                return False
    return True


def isolate_axis(graph: Graph, axis: int) -> Graph:
    """A copy whose windows along w are the original's along `axis` and whose windows
    along h are one pixel (kernel 1, stride 1, dilation 1, no padding, scale 1): on a
    1 x n strip it measures the same extent as the original along `axis`, since every
    window is a product of an h and a w window. (Along w, because torch's float64
    convolution is several times faster along the contiguous axis.)"""
    nodes = []
    for node in graph.nodes:
        changes = {}
        for name, neutral in _NEUTRAL.items():
            value = getattr(node.layer, name, None)
            if isinstance(value, tuple):
                changes[name] = (neutral, value[axis])
        layer = dataclasses.replace(node.layer, **changes) if changes else node.layer
        nodes.append(dataclasses.replace(node, layer=layer))
    return Graph(tuple(nodes), graph.outputs, graph.meta)


_NEUTRAL = {"kernel_size": 1, "stride": 1, "dilation": 1, "padding": 0, "output_padding": 0,
            "scale_factor": 1.0, "offset": 0}  # offset: FCN's crop, which a strip cannot fit
METHODS = ("strip", "axis")


def measure(graph: Graph, layers: Sequence[str], input_shape: Shape | None = None, *,
            method: str = "strip", both_axes: bool = False,
            seed: int | None = None) -> dict[str, Measured]:
    """Gradient-measured fields of `layers` (measurable ones only) on the part of the graph
    they depend on: one forward pass per axis, one backward pass per layer. method "strip":
    the module as built, on the shortest strip that holds the fields; "axis": on an
    `isolate_axis` copy (same channels, same windows along the measured axis), one pixel
    across. A graph symmetric in h and w is measured along w alone unless `both_axes`.
    `seed`: positive weights drawn at random instead of uniform ones (_positive_module)."""
    if method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)}, got '{method}'")
    fields, shapes = analytic(graph, input_shape)
    allowed = set(measurable_layers(graph, fields, shapes))
    for name in layers:
        if name not in allowed:
            raise UsageError(f"layer '{name}' cannot be measured by gradient: its field is "
                             "global or follows a size-dependent (adaptive) pooling")
    targets = [n.name for n in graph.nodes if n.name in set(layers)]
    sub = gradient_friendly(subgraph(graph, targets))
    local = {t: fields[t] for t in targets}
    channels = shapes[graph.input_node.name][1]
    # w first: torch's float64 convolution is several times faster along the last axis
    w = _measure_axis(sub, local, 1, channels, method, seed)  # type: ignore[arg-type]
    h = (w if symmetric(sub) and not both_axes
         else _measure_axis(sub, local, 0, channels, method, seed))  # type: ignore[arg-type]
    return {t: Measured(t, h[t], w[t]) for t in targets}


def unit_spans(graph: Graph, layer: str, units: Sequence[tuple[int, int]],
               input_shape: Shape | None = None) -> list[tuple[Span | None, Span | None]]:
    """The measured (h, w) spans of chosen units of `layer` on the full input (one backward
    pass per unit; meant for small inputs). Spans touching the border may be clipped."""
    import torch

    shape = resolve_input(graph, input_shape)
    sub = gradient_friendly(subgraph(graph, [layer]))
    module = _positive_module(sub, shape)
    x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
    y = module(x)
    found = []
    for uy, ux in units:
        (grad,) = torch.autograd.grad(y[0, :, uy, ux].sum(), x, retain_graph=True)
        found.append(tuple(_nonzero_span(grad.abs().sum(dim=(0, 1, 3 - a))) for a in (0, 1)))
    return found  # type: ignore[return-value]


def _nonzero_span(profile) -> Span | None:
    import torch

    nonzero = torch.nonzero(profile).flatten().tolist()
    return (nonzero[0], nonzero[-1]) if nonzero else None


def _valid(graph: Graph, shape: Shape) -> dict[str, Shape] | None:
    try:
        return infer_shapes(graph, shape)
    except CnnstatError:
        return None


def _first_valid(graph: Graph, start: int, shape_of, fits=lambda n, shapes: True) -> int:
    for n in range(max(start, 1), max(start, 1) + 1024):
        shapes = _valid(graph, shape_of(n))
        if shapes is not None and fits(n, shapes):
            return n
    raise AnalysisError(f"no input size from {start} on suits '{graph.meta.name}'")


def _measure_axis(graph: Graph, fields: dict[str, ReceptiveField], axis: int, channels: int,
                  method: str, seed: int | None = None) -> dict[str, AxisMeasure]:
    """Each layer's central unit's span along `axis`, on a strip about as long as the
    largest field. The analytic fields only pick the strip's length: a strip found too
    short is doubled, and the spans are compared afterwards."""
    along = axis  # the tensor axis the strip runs along: 0 = h, 1 = w
    # across the strip, a unit whose field is not empty (a k1 s2 transposed conv leaves
    # every other unit without input); one-pixel windows never do
    across = {name: f.axes[1 - axis] for name, f in fields.items()}
    if method == "axis":
        graph, short, along, across = isolate_axis(graph, axis), 1, 1, {}
    else:
        jump = max(math.ceil(s) for f in fields.values() for s in f.stride)  # type: ignore
        short = _first_valid(graph, jump, lambda n: (channels, n, n))

    def shape_of(n: int) -> Shape:
        return (channels, n, short) if along == 0 else (channels, short, n)

    def holds_centres(n: int, shapes: dict[str, Shape]) -> bool:
        for name, field in fields.items():
            span = field.axes[axis].span(shapes[name][2 + along] // 2)
            if span is not None and (span[0] < 1 or span[1] > n - 2):
                return False
        return True

    biggest = max(f.axes[axis].size for f in fields.values())
    length = _first_valid(graph, biggest + 2, shape_of, holds_centres)
    module = _positive_module(graph, shape_of(length), seed)
    for _ in range(MAX_ATTEMPTS):
        found = _gradient_spans(module, graph.outputs, shape_of(length), along, across)
        if not any(m.clipped for m in found.values()):
            break
        length = _first_valid(graph, 2 * length, shape_of)
    return found


def _positive_module(graph: Graph, shape: Shape, seed: int | None = None):
    """Weights 1 / fan_in (with `seed`: times a random factor in [1/2, 3/2), and every
    other weight, a layer norm's or a layer scale's, random in [1/2, 3/2) too), biases 0.
    Uniform weights make channels equal, and a layer norm over equal channels, summed over
    channels by the next uniform conv or the probe, is a constant: no gradient passes."""
    import torch
    from torch import nn

    from cnnstat.builder import build_module

    with torch.device("meta"):
        module = build_module(graph, shape)
    module = module.to(torch.float64).to_empty(device="cpu").eval()
    with torch.no_grad():
        for p in module.parameters():  # a layer scale's gamma, and whatever is set below
            p.fill_(1.0)
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                outputs = m.out_features if isinstance(m, nn.Linear) else m.out_channels
                m.weight.fill_(outputs / m.weight.numel())  # 1 / fan_in
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()  # mean 0, var 1, gamma 1, beta 0
            elif isinstance(m, nn.LayerNorm):
                m.reset_parameters()  # gamma 1, beta 0
        if seed is not None:
            rng = torch.Generator().manual_seed(seed)
            for name, p in module.named_parameters():
                if not name.endswith("bias"):
                    p.mul_(0.5 + torch.rand(p.shape, generator=rng, dtype=p.dtype))
    module.requires_grad_(False)
    return module


def _gradient_spans(module, targets: tuple[str, ...], shape: Shape, axis: int,
                    across: dict[str, AxisField]) -> dict[str, AxisMeasure]:
    import torch

    x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
    outs = module(x)
    outs = outs if isinstance(outs, tuple) else (outs,)
    length = shape[1 + axis]
    found = {}
    for name, y in zip(targets, outs, strict=True):
        unit = [y.shape[2] // 2, y.shape[3] // 2]
        if name in across:
            unit[1 - axis] = _nonempty_near(across[name], unit[1 - axis], y.shape[3 - axis])
        (grad,) = torch.autograd.grad(y[0, :, unit[0], unit[1]].sum(), x, retain_graph=True)
        span = _nonzero_span(grad.abs().sum(dim=(0, 1, 3 if axis == 0 else 2)))
        clipped = span is not None and (span[0] == 0 or span[1] == length - 1)
        found[name] = AxisMeasure(unit=unit[axis], span=span, length=length, clipped=clipped)
    return found


def _nonempty_near(axis: AxisField, centre: int, n: int) -> int:
    """The unit nearest `centre` (in [0, n)) whose field is not empty."""
    for unit in sorted(range(n), key=lambda u: abs(u - centre)):
        if axis.span(unit) is not None:
            return unit
    return centre


def effective_rf(graph: Graph, layer: str, input_shape: Shape | None = None, *,
                 seeds: int = 3, mass: float = 0.95, max_side: int = 512) -> Erf:
    """Luo et al.'s effective receptive field of `layer`'s central unit: torch's random
    init (biases zero, BatchNorm in eval with identity statistics), standard normal
    inputs, the mean |gradient| over `seeds` draws, and the side of the smallest square
    centred on the unit's field that holds `mass` of it. The input is the field's size
    (the whole field fits) up to `max_side` (then `clipped`)."""
    import torch

    fields, shapes = analytic(graph, input_shape)
    if layer not in measurable_layers(graph, fields, shapes):
        raise UsageError(f"layer '{layer}' has no effective field to measure: its field is "
                         "global or follows a size-dependent (adaptive) pooling")
    field, sub = fields[layer], subgraph(graph, [layer])
    channels = shapes[graph.input_node.name][1]
    wanted = max(field.size) + 2  # type: ignore[union-attr]

    def centred(n: int, sizes: dict[str, Shape]) -> bool:
        spans = [a.span(sizes[layer][2 + i] // 2) for i, a in enumerate(field.axes)]
        return all(s is None or (s[0] >= 1 and s[1] <= n - 2) for s in spans)

    clipped = wanted > max_side
    side = _first_valid(sub, min(wanted, max_side), lambda n: (channels, n, n),
                        (lambda n, s: True) if clipped else centred)
    grads = _random_gradients(sub, (channels, side, side), seeds, torch)
    out = infer_shapes(sub, (channels, side, side))[layer]
    centre = [_centre(a, out[2 + i] // 2) for i, a in enumerate(field.axes)]
    return Erf(layer=layer, side=_smallest_square(grads, centre, mass), mass=mass,
               input_side=side, clipped=clipped, seeds=seeds)


def _centre(axis, unit: int) -> int:
    span = axis.span(unit)
    return 0 if span is None else (span[0] + span[1]) // 2


def _random_gradients(graph: Graph, shape: Shape, seeds: int, torch):
    """Mean over seeds of |d(sum over channels of the central unit) / d input|, per pixel."""
    from cnnstat.builder import build_module

    with torch.device("meta"):
        module = build_module(graph, shape)
    module = module.to_empty(device="cpu").eval()
    total = torch.zeros(shape[1:], dtype=torch.float64)
    with torch.random.fork_rng():
        for seed in range(seeds):
            torch.manual_seed(seed)
            with torch.no_grad():
                for m in module.modules():
                    if m is not module and hasattr(m, "reset_parameters"):
                        m.reset_parameters()
                    if getattr(m, "bias", None) is not None:
                        m.bias.zero_()
            module.requires_grad_(False)
            x = torch.randn(1, *shape, requires_grad=True)
            y = module(x)
            unit = (y.shape[2] // 2, y.shape[3] // 2)
            (grad,) = torch.autograd.grad(y[0, :, unit[0], unit[1]].sum(), x)
            total += grad[0].abs().sum(dim=0).double()
    return total / seeds


def _smallest_square(grads, centre: list[int], mass: float) -> int:
    """Side of the smallest (2r+1)-square centred at `centre` holding `mass` of the sum."""
    import torch

    n_h, n_w = grads.shape
    prefix = torch.zeros(n_h + 1, n_w + 1, dtype=torch.float64)
    prefix[1:, 1:] = grads.cumsum(0).cumsum(1)
    goal = mass * float(prefix[-1, -1])
    cy, cx = centre
    for r in range(max(n_h, n_w) + 1):
        y0, y1 = max(cy - r, 0), min(cy + r + 1, n_h)
        x0, x1 = max(cx - r, 0), min(cx + r + 1, n_w)
        inside = prefix[y1, x1] - prefix[y0, x1] - prefix[y1, x0] + prefix[y0, x0]
        if float(inside) >= goal:
            return 2 * r + 1
    return 2 * max(n_h, n_w) + 1
