"""The kinds modern CNNs are made of (ConvNeXt's layer norm and layer scale, stochastic
depth, MobileNetV3's hardsigmoid), each checked against torch modules written here, as
torchvision writes them: parameters(), FlopCounterMode / 2 and output shapes on meta.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import stack_counts
from torch import nn

from cnnstat.analyzers import analyze_graph
from cnnstat.analyzers.engine import infer_shapes
from cnnstat.analyzers.rf import receptive_fields
from cnnstat.builder.torch_module import build_module
from cnnstat.ir import layers as L
from cnnstat.ir.graph import Graph, ModelMeta, Node


class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d, as written there."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Scale(nn.Module):
    """ConvNeXt's CNBlock layer_scale: a (C, 1, 1) parameter multiplied in."""

    def __init__(self, c: int):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.ones(c, 1, 1) * 1e-6)

    def forward(self, x):
        return self.layer_scale * x


def _graph(layers: list[L.Layer]) -> Graph:
    nodes = [Node(name="input", layer=L.Input())]
    for i, layer in enumerate(layers):
        nodes.append(Node(name=f"l{i}", layer=layer, inputs=(nodes[-1].name,)))
    return Graph(tuple(nodes), (nodes[-1].name,), ModelMeta(name="t"))


def fields_of(graph: Graph):
    return receptive_fields(graph, infer_shapes(graph, (4, 16, 16)))


def _torch(modules: list[nn.Module], shape):
    shapes, params, _, macs = stack_counts(modules, shape)
    return shapes, params, macs


def _kinds(c: int):
    """(our layer, torch's module) pairs on a [N, c, H, W] input."""
    return {
        "ln_first": (L.LayerNorm(eps=1e-6), LayerNorm2d(c, eps=1e-6)),
        "ln_first_no_bias": (L.LayerNorm(bias=False), LayerNorm2d(c, bias=False)),
        "scale": (L.LayerScale(), Scale(c)),
        "drop_path": (L.DropPath(p=0.1), nn.Identity()),
        "hardsigmoid": (L.Hardsigmoid(), nn.Hardsigmoid()),
    }


@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 8), h=st.integers(3, 12), w=st.integers(3, 12),
       picks=st.lists(st.sampled_from(sorted(_kinds(1))), min_size=1, max_size=4))
def test_stacks_of_modern_kinds_match_torch(c, h, w, picks) -> None:
    ours = [L.Conv2d(out_channels=c, kernel_size=(3, 3), padding=(1, 1))]
    theirs: list[nn.Module] = [nn.Conv2d(c, c, 3, padding=1)]
    for pick in picks:
        layer, module = _kinds(c)[pick]
        ours.append(layer)
        theirs.append(module)
    report = analyze_graph(_graph(ours), (c, h, w), batch=2)
    shapes, params, macs = _torch(theirs, (c, h, w))
    assert [row.output_shape for row in report.layers] == shapes
    assert report.totals.params == params
    assert report.totals.macs == macs


def test_layer_norm_over_the_last_dim_matches_nn_layer_norm() -> None:
    """channels_last on a token tensor [N, T, D] (a transformer block's norm)."""
    graph = _graph([L.Flatten(start_dim=2), L.LayerNorm(data_format="channels_last")])
    report = analyze_graph(graph, (3, 4, 5), batch=2)
    shapes, params, macs = _torch([nn.Flatten(2), nn.LayerNorm(20)], (3, 4, 5))
    assert [row.output_shape for row in report.layers] == shapes
    assert (report.totals.params, report.totals.macs) == (params, macs) == (40, 0)


@pytest.mark.parametrize("pick", sorted(_kinds(1)))
def test_built_module_counts_as_torch_module(pick) -> None:
    """The builder's module for each kind has torch's parameter count and output shape."""
    layer, module = _kinds(6)[pick]
    graph = _graph([L.Conv2d(out_channels=6, kernel_size=(1, 1)), layer])
    built = build_module(graph, (6, 7, 9))
    shapes, params, _ = _torch([nn.Conv2d(6, 6, 1), module], (6, 7, 9))
    assert sum(p.numel() for p in built.parameters()) == params
    assert tuple(built.to("meta")(torch.empty(2, 6, 7, 9, device="meta")).shape) == shapes[-1]


def test_drop_path_is_the_identity_at_inference() -> None:
    """Said so in the docs and counted so: 0 params, 0 ops, the input's shape."""
    report = analyze_graph(_graph([L.DropPath(p=0.5)]), (3, 8, 8), batch=1)
    row = report.layers[-1]
    assert (row.params, row.macs, row.other_ops, row.output_shape) == (0, 0, 0, (1, 3, 8, 8))


def test_per_position_norms_keep_the_field_and_a_row_norm_makes_it_global() -> None:
    conv = L.Conv2d(out_channels=4, kernel_size=(3, 3))
    kept = fields_of(_graph([conv, L.LayerNorm(), L.LayerScale(), L.DropPath()]))[0]
    row = fields_of(_graph([conv, L.LayerNorm(data_format="channels_last")]))[0]
    assert kept["l3"].size == (3, 3)
    assert row["l1"].is_global
