"""Torch modules for the kinds of `cnnstat/ir/tensor_layers.py`, registered into the
builder's registry (imported by the package): each calls the torch function the kind
is named after, so tracing the built module converts back to the same kind. (Group norm
declares its torch module, nn.GroupNorm, and needs no builder here.)"""

from __future__ import annotations

import torch
from torch import nn

from cnnstat.analyzers.shapes import Shape
from cnnstat.builder.torch_module import BUILDERS
from cnnstat.ir import layers as L


class Part(nn.Module):
    """One part of torch.split / torch.chunk / torch.unbind."""

    def __init__(self, layer: L.Layer):
        super().__init__()
        self.kind, self.dim, self.index = layer.kind, layer.dim, layer.index
        sizes = getattr(layer, "split_size", ())
        self.split_size = sizes[0] if len(sizes) == 1 else list(sizes)
        self.chunks = getattr(layer, "chunks", 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "split":
            return torch.split(x, self.split_size, self.dim)[self.index]
        if self.kind == "chunk":
            return torch.chunk(x, self.chunks, self.dim)[self.index]
        return torch.unbind(x, self.dim)[self.index]


class Reduce(nn.Module):
    """torch.mean or torch.sum over `dims`."""

    def __init__(self, layer: L.Layer):
        super().__init__()
        self.sum, self.dims, self.keepdim = layer.kind == "sum", list(layer.dims), layer.keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduce = torch.sum if self.sum else torch.mean
        return reduce(x, self.dims, keepdim=self.keepdim)


class Pad(nn.Module):
    """F.pad(x, padding, mode, value)."""

    def __init__(self, layer: L.Pad):
        super().__init__()
        self.padding, self.mode = list(layer.padding), layer.mode
        self.value = layer.value if layer.mode == "constant" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x, self.padding, self.mode, self.value)


class Sub(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x - y


@BUILDERS.register(L.Sub)
def _sub(layer: L.Sub, ins: tuple[Shape, ...]) -> nn.Module:
    return Sub()


@BUILDERS.register(*L.PARTS)
def _part(layer: L.Layer, ins: tuple[Shape, ...]) -> nn.Module:
    return Part(layer)


@BUILDERS.register(*L.REDUCTIONS)
def _reduce(layer: L.Layer, ins: tuple[Shape, ...]) -> nn.Module:
    return Reduce(layer)


@BUILDERS.register(L.Pad)
def _pad(layer: L.Pad, ins: tuple[Shape, ...]) -> nn.Module:
    return Pad(layer)
