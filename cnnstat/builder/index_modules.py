"""Torch modules for the kinds of `cnnstat/ir/index_layers.py`, registered into the
builder's registry (imported by the package). Each does what the torch code it stands for
does (`x[:, a:b]`, `x[:, i]`, torchvision ViT's class token and position embedding), so
tracing the built module converts back to the same kind."""

from __future__ import annotations

import torch
from torch import nn

from cnnstat.analyzers.shapes import Shape
from cnnstat.builder.torch_module import BUILDERS
from cnnstat.ir import layers as L


class Index(nn.Module):
    """x[..., start:stop:step] or x[..., index] along one dim, by Python indexing."""

    def __init__(self, layer: L.Layer, rank: int):
        super().__init__()
        axis = layer.dim % rank
        what = layer.index if isinstance(layer, L.Select) else \
            slice(layer.start, layer.stop, layer.step)
        self.key = (*[slice(None)] * axis, what)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.key]


class ClassToken(nn.Module):
    """torchvision's ViT: a learned [1, tokens, D] expanded over the batch, before x."""

    def __init__(self, tokens: int, dim: int):
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, tokens, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)


class PositionEmbedding(nn.Module):
    """torchvision's ViT encoder: x + a learned [1, *x.shape[1:]]."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, *shape).normal_(std=0.02))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embedding


@BUILDERS.register(*L.INDEXING)
def _index(layer: L.Layer, ins: tuple[Shape, ...]) -> nn.Module:
    return Index(layer, len(ins[0]))


@BUILDERS.register(L.ClassToken)
def _class_token(layer: L.ClassToken, ins: tuple[Shape, ...]) -> nn.Module:
    return ClassToken(layer.tokens, ins[0][-1])


@BUILDERS.register(L.PositionEmbedding)
def _position_embedding(layer: L.PositionEmbedding, ins: tuple[Shape, ...]) -> nn.Module:
    return PositionEmbedding(tuple(ins[0][1:]))
