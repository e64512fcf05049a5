"""Build a real `torch.nn.Module` (random init) from a Graph.

It is how the tests ask torch for the truth (parameters(), FlopCounterMode, shapes on
meta tensors), and what timing runs. Module paths equal node names, so
`named_modules()` and our reports line up row for row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from cnnstat.analyzers.engine import resolve_input, shapes_with_aux
from cnnstat.analyzers.registry import Registry
from cnnstat.analyzers.shapes import Shape
from cnnstat.ir import Graph
from cnnstat.ir import layers as L

BUILDERS: Registry[Callable[..., nn.Module]] = Registry("builder")


class Concat(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Multiply(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Reshape(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Permute(nn.Module):
    """`x.permute(*dims)`, as torchvision.ops.misc.Permute (not imported: the builder
    needs torch only)."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


@BUILDERS.register(L.ConvTranspose2d)
def _conv_transpose(layer: L.ConvTranspose2d, ins: tuple[Shape, ...]) -> nn.Module:
    return nn.ConvTranspose2d(ins[0][1], layer.out_channels, layer.kernel_size, layer.stride,
                              layer.padding, layer.output_padding, layer.groups, layer.bias,
                              layer.dilation)


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over dim 1 of [N, C, ...] (torchvision's ConvNeXt LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


class LayerScale(nn.Module):
    """x * gamma, one learned value per channel of dim 1."""

    def __init__(self, channels: int, rank: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels, *[1] * (rank - 2)), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class DropPath(nn.Module):
    """Stochastic depth, per sample; the identity at inference (and at p = 0)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], *[1] * (x.dim() - 1), device=x.device) >= self.p
        return x * keep / (1.0 - self.p)


@BUILDERS.register(L.LayerNorm)
def _layer_norm(layer: L.LayerNorm, ins: tuple[Shape, ...]) -> nn.Module:
    first = layer.data_format == "channels_first"
    cls = LayerNorm2d if first else nn.LayerNorm
    return cls(ins[0][1] if first else ins[0][-1], layer.eps, layer.elementwise_affine,
               layer.bias)


@BUILDERS.register(L.LayerScale)
def _layer_scale(layer: L.LayerScale, ins: tuple[Shape, ...]) -> nn.Module:
    return LayerScale(ins[0][1], len(ins[0]), layer.init_value)


_SIMPLE: dict[type[L.Layer], Callable[[L.Layer], nn.Module]] = {
    L.Softmax: lambda layer: nn.Softmax(layer.dim),
    L.DropPath: lambda layer: DropPath(layer.p),
    L.Concat: lambda layer: Concat(layer.dim),
    L.Add: lambda layer: Add(),
    L.Multiply: lambda layer: Multiply(),
    L.Reshape: lambda layer: Reshape(layer.shape),
    L.Permute: lambda layer: Permute(layer.dims),
    L.Upsample: lambda layer: UpsampleLike(layer) if layer.like else nn.Upsample(
        layer.size, layer.scale_factor, layer.mode, layer.align_corners),
}


@BUILDERS.register(*_SIMPLE)
def _simple(layer: L.Layer, ins: tuple[Shape, ...]) -> nn.Module:
    return _SIMPLE[type(layer)](layer)


@BUILDERS.register(*L.kinds_built_as_torch_modules())
def _declared(layer: L.Layer, ins: tuple[Shape, ...]) -> nn.Module:
    """A kind that declares its torch module (ir/torch_side.py): `nn.<name>` of its
    fields, and of the input's sizes its `sized` arguments name."""
    declared = layer.torch_module
    sized = {arg: ins[0][dim] for arg, dim in declared.sized.items()}
    fields = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}
    return getattr(nn, declared.name)(**sized, **fields)


@BUILDERS.register(L.Opaque)
def _opaque(layer: L.Opaque, ins: tuple[Shape, ...]) -> nn.Module:
    """An opaque op only stands for code cnnstat did not translate; it cannot be rebuilt."""
    raise NotImplementedError(
        f"cannot build opaque op '{layer.op}': it was counted by torch from the original "
        "module, which cnnstat did not translate; use that module instead"
    )


class SpatialPyramidPool(nn.Module):
    """Max pool to l x l per level, flattened and concatenated (torch's adaptive windows);
    with regions > 1 every region is the whole map (what cnnstat's ops count)."""

    def __init__(self, levels: tuple[int, ...], regions: int):
        super().__init__()
        self.levels, self.regions = levels, regions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([nn.functional.adaptive_max_pool2d(x, level).flatten(1)
                            for level in self.levels], dim=1)
        return pooled.repeat_interleave(self.regions, dim=0)


class RoIPool(nn.Module):
    """RoI max pooling with every box = the whole feature map (the boxes are data; this
    stands in for torchvision.ops.roi_pool, which it does not need): [N*R, C, oh, ow]."""

    def __init__(self, output_size: tuple[int, int], regions: int):
        super().__init__()
        self.output_size, self.regions = output_size, regions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_max_pool2d(x, self.output_size)
        return pooled.repeat_interleave(self.regions, dim=0)


class RoIAlign(nn.Module):
    """RoI align with every box = the whole map: bilinear samples on an (oh*sr, ow*sr)
    grid (bin centres as torchvision's aligned=True), averaged per bin: [N*R, C, oh, ow]."""

    def __init__(self, output_size: tuple[int, int], sampling_ratio: int, regions: int):
        super().__init__()
        self.output_size, self.sr, self.regions = output_size, sampling_ratio, regions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (oh, ow), sr = self.output_size, self.sr
        samples = nn.functional.interpolate(x, size=(oh * sr, ow * sr), mode="bilinear",
                                            align_corners=False)
        pooled = nn.functional.avg_pool2d(samples, sr) if sr > 1 else samples
        return pooled.repeat_interleave(self.regions, dim=0)


class Crop(nn.Module):
    """Caffe Crop: x cut to the reference's H, W at a fixed offset."""

    def __init__(self, layer: L.Crop):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        h, w = reference.shape[-2:]
        oh, ow = self.layer.offsets(*x.shape[-2:], h, w)
        return x[:, :, oh:oh + h, ow:ow + w]


class UpsampleLike(nn.Module):
    """F.interpolate(x, size=reference.shape[-2:]) (DeepLab's head)."""

    def __init__(self, layer: L.Upsample):
        super().__init__()
        self.mode, self.align_corners = layer.mode, layer.align_corners

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, size=reference.shape[-2:], mode=self.mode,
                                         align_corners=self.align_corners)


@BUILDERS.register(L.SpatialPyramidPool)
def _spp(layer: L.SpatialPyramidPool, ins: tuple[Shape, ...]) -> nn.Module:
    return SpatialPyramidPool(layer.levels, layer.region_count)


@BUILDERS.register(L.RoIPool)
def _roi_pool(layer: L.RoIPool, ins: tuple[Shape, ...]) -> nn.Module:
    return RoIPool(layer.output_size, layer.region_count)


@BUILDERS.register(L.RoIAlign)
def _roi_align(layer: L.RoIAlign, ins: tuple[Shape, ...]) -> nn.Module:
    return RoIAlign(layer.output_size, layer.sampling_ratio, layer.region_count)


@BUILDERS.register(L.Crop)
def _crop(layer: L.Crop, ins: tuple[Shape, ...]) -> nn.Module:
    return Crop(layer)


class GraphModule(nn.Module):
    """Runs the graph's nodes in order; submodules sit at their dotted node paths."""

    def __init__(self, graph: Graph, input_shape: Shape | None = None):
        super().__init__()
        shape = resolve_input(graph, input_shape)
        graph, shapes, _ = shapes_with_aux(graph, shape, 1)
        self.input_shape = shape
        self._input = graph.input_node.name
        self._steps: list[tuple[str, tuple[str, ...]]] = []
        self._outputs = graph.outputs
        self._aux_outputs = graph.aux_outputs
        self._train_only = frozenset(n.name for n in graph if graph.is_train_only(n.name))
        last_use = {}
        for position, node in enumerate(graph):
            for src in node.inputs:
                last_use[src] = position
        self._free_after: list[tuple[str, ...]] = []
        self._callables: list[nn.Module] = []
        for position, node in enumerate(graph.nodes[1:], start=1):
            build = BUILDERS.get(type(node.layer))
            if build is None:
                raise NotImplementedError(f"no torch builder for layer kind '{node.kind}'")
            module = build(node.layer, tuple(shapes[i] for i in node.inputs))
            if node.frozen:  # a spec's `frozen: true`: torch's own way to say it
                module.requires_grad_(False)
            self._attach(node.name, module)
            self._callables.append(module)
            self._steps.append((node.name, node.inputs))
            self._free_after.append(tuple(
                src for src in node.inputs
                if last_use.get(src) == position
                and src not in graph.outputs and src not in graph.aux_outputs))

    def _attach(self, path: str, module: nn.Module) -> None:
        *scopes, leaf = path.split(".")
        parent: nn.Module = self
        for segment in scopes:
            child = parent._modules.get(segment)
            if child is None:
                child = nn.Module()
                parent.add_module(segment, child)
            parent = child
        parent.add_module(leaf, module)

    def forward(self, x: torch.Tensor):
        """Eval mode runs what inference runs and returns the outputs; training mode also
        runs the aux heads and returns (outputs..., aux outputs...), as torchvision's
        Inception does."""
        values = self.run(x, include_aux=self.training)
        names = self._outputs + (self._aux_outputs if self.training else ())
        outs = tuple(values[o] for o in names)
        return outs[0] if len(outs) == 1 else outs

    def run(self, x: torch.Tensor, *, include_aux: bool) -> dict[str, torch.Tensor]:
        """Every computed value that is still needed, by node name (outputs included)."""
        values = {self._input: x}
        steps = zip(self._steps, self._callables, self._free_after, strict=True)
        for (name, inputs), module, free in steps:
            if name in self._train_only and not include_aux:
                continue
            values[name] = module(*(values[i] for i in inputs))
            for src in free:
                values.pop(src, None)
        return values


def build_module(graph: Graph, input_shape: Shape | None = None) -> GraphModule:
    """A module with torch's default random init; build it under `torch.device("meta")`
    to get shapes and FLOPs without allocating weights."""
    return GraphModule(graph, input_shape).eval()


# 1-D / 3-D kinds and attention: their builders register into BUILDERS above.
from cnnstat.builder import modules_nd  # noqa: E402,F401  isort: skip
