"""Attention kinds against torch: F.scaled_dot_product_attention and nn.MultiheadAttention
on meta tensors (output shapes, parameters(), FlopCounterMode / 2 = the QK^T and AV
matmuls plus, for nn.MultiheadAttention, its four projections), random sizes by
hypothesis; a spec with both, built and exported; the torch frontend on modules written
here (module calls with and without need_weights, and F.scaled_dot_product_attention on
q, k, v from separate projections); and their global receptive field.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import spec_graph, torch_truth
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers import analyze_graph
from cnnstat.analyzers.attention import _SCORE_OPS
from cnnstat.analyzers.ops import OPS
from cnnstat.analyzers.params import PARAMS
from cnnstat.analyzers.shapes import SHAPES
from cnnstat.frontends import graph_from_module
from cnnstat.ir import layers as L
from cnnstat.ir.graph import Graph, ModelMeta, Node
from cnnstat.writer import spec_from_graph


def _meta(*shape: int) -> torch.Tensor:
    return torch.empty(*shape, device="meta")


def _counted(fn, *args, **kwargs):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = fn(*args, **kwargs)
    return out, counter.get_total_flops() // 2


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), heads=st.integers(1, 4), length=st.integers(1, 9),
       keys=st.integers(1, 9), e=st.integers(1, 8), ev=st.integers(1, 8),
       causal=st.booleans(), self_attention=st.booleans())
def test_sdpa_matches_torch(n, heads, length, keys, e, ev, causal, self_attention) -> None:
    q, k, v = (n, heads, length, e), (n, heads, keys, e), (n, heads, keys, ev)
    if self_attention:
        k = v = q
    ins = (q,) if self_attention else (q, k, v)
    layer = L.ScaledDotProductAttention(is_causal=causal)
    out, macs = _counted(F.scaled_dot_product_attention, _meta(*q), _meta(*k), _meta(*v),
                         is_causal=causal)
    shape = SHAPES.get(L.ScaledDotProductAttention)(layer, ins)
    assert shape == tuple(out.shape)
    assert OPS.get(L.ScaledDotProductAttention)(layer, ins, shape).macs == macs
    assert PARAMS.get(L.ScaledDotProductAttention)(layer, ins, shape).params == 0


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), heads=st.integers(1, 4), head_dim=st.integers(1, 4),
       length=st.integers(1, 7), keys=st.integers(1, 7), kdim=st.integers(1, 9),
       vdim=st.integers(1, 9), bias=st.booleans(), batch_first=st.booleans(),
       self_attention=st.booleans(), need_weights=st.booleans())
def test_multihead_attention_matches_torch(n, heads, head_dim, length, keys, kdim, vdim, bias,
                                           batch_first, self_attention, need_weights) -> None:
    e = heads * head_dim
    if self_attention:
        keys, kdim, vdim = length, e, e
    module = nn.MultiheadAttention(e, heads, bias=bias, kdim=kdim, vdim=vdim,
                                   batch_first=batch_first, device="meta").eval()

    def tokens(count: int, dim: int) -> tuple[int, int, int]:
        return (n, count, dim) if batch_first else (count, n, dim)

    q, k, v = tokens(length, e), tokens(keys, kdim), tokens(keys, vdim)
    x = _meta(*q)
    args = (x, x, x) if self_attention else (x, _meta(*k), _meta(*v))
    (out, _), macs = _counted(module, *args, need_weights=need_weights)
    layer = L.MultiheadAttention(num_heads=heads, bias=bias, batch_first=batch_first)
    ins = (q,) if self_attention else (q, k, v)
    shape = SHAPES.get(L.MultiheadAttention)(layer, ins)
    assert shape == tuple(out.shape)
    assert PARAMS.get(L.MultiheadAttention)(layer, ins, shape).params == \
        sum(p.numel() for p in module.parameters())
    assert OPS.get(L.MultiheadAttention)(layer, ins, shape).macs == macs


def test_other_ops_by_hand() -> None:
    """SDPA: 4 per score (scale, exp, sum, divide), 5 causal; MHA: 4 per score per head,
    plus the bias adds of q, k, v and out (N*L*E each for self-attention)."""
    sdpa = L.ScaledDotProductAttention(is_causal=True)
    ins = ((2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 6))
    assert OPS.get(type(sdpa))(sdpa, ins, (2, 3, 5, 6)).other_ops == 2 * 3 * 5 * 7 * 5
    mha = L.MultiheadAttention(num_heads=2)
    assert OPS.get(type(mha))(mha, ((1, 6, 8),), (1, 6, 8)).other_ops == \
        _SCORE_OPS * 2 * 6 * 6 + 4 * 6 * 8


def test_shape_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        SHAPES.get(L.MultiheadAttention)(L.MultiheadAttention(num_heads=3), ((1, 4, 8),))
    with pytest.raises(ValueError, match="last dim"):
        SHAPES.get(L.ScaledDotProductAttention)(
            L.ScaledDotProductAttention(), ((1, 2, 4, 8), (1, 2, 4, 6), (1, 2, 4, 6)))
    with pytest.raises(ValueError, match="one input .* or three"):
        SHAPES.get(L.ScaledDotProductAttention)(
            L.ScaledDotProductAttention(), ((1, 2, 4, 8), (1, 2, 4, 8)))


SPEC = """
name: tokens
input: [16, 32]
layers:
  - {ln: channels_last, name: norm}
  - {mha: 4, name: attn}
  - {add, from: [attn, input], name: res}
  - {fc: 64, name: q}
  - {fc: 64, from: res, name: k}
  - {fc: 48, from: res, name: v}
  - {reshape: [16, 4, 16], from: q, name: q4}
  - {permute: [0, 2, 1, 3], name: qh}
  - {reshape: [16, 4, 16], from: k, name: k4}
  - {permute: [0, 2, 1, 3], name: kh}
  - {reshape: [16, 4, 12], from: v, name: v4}
  - {permute: [0, 2, 1, 3], name: vh}
  - {sdpa: null, from: [qh, kh, vh], is_causal: true, name: heads}
  - {mha: 2, from: [res, q, v], bias: false, name: cross}
"""


def test_spec_with_attention_equals_the_built_torch_module_and_exports() -> None:
    graph = spec_graph(SPEC)
    report = analyze_graph(graph)
    truth = torch_truth(graph)
    assert report.totals.params == truth.params
    assert report.totals.macs == truth.macs
    shapes = {row.name: row.output_shape for row in report.layers}
    assert shapes["heads"] == truth.shapes["heads"] == (1, 4, 16, 12)
    assert shapes["cross"] == (1, 16, 32)
    again = analyze_graph(spec_graph(spec_from_graph(graph).text))
    assert again.totals == report.totals


class Block(nn.Module):
    """A transformer block: torch's attention module, then SDPA on separate projections
    split into heads with reshape and permute (as timm's Attention, without its fused
    qkv)."""

    def __init__(self, e: int = 16, heads: int = 4, need_weights: bool = True):
        super().__init__()
        self.attn = nn.MultiheadAttention(e, heads, batch_first=True)
        self.q, self.k, self.v = nn.Linear(e, e), nn.Linear(e, e), nn.Linear(e, e)
        self.heads, self.need_weights = heads, need_weights

    def forward(self, x):
        x = x + self.attn(x, x, x, need_weights=self.need_weights)[0]
        n, length, e = x.shape

        def split(t):
            return t.reshape(n, length, self.heads, e // self.heads).permute(0, 2, 1, 3)

        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return y.permute(0, 2, 1, 3).reshape(n, length, e)


@pytest.mark.parametrize("need_weights", [False, True])
def test_torch_frontend_converts_attention(need_weights) -> None:
    model = Block(need_weights=need_weights)
    traced = graph_from_module(model, (10, 16))
    kinds = {node.name: node.kind for node in traced.graph.nodes}
    assert "multihead_attention" in kinds.values()
    assert "scaled_dot_product_attention" in kinds.values()
    opaque = [name for name, kind in kinds.items() if kind == "opaque"]
    # The averaged weights torch also returns when asked: an extra output, no work of its own.
    assert opaque == (["attn[1]"] if need_weights else [])
    report = analyze_graph(traced.graph)
    out, macs = _counted(model.to("meta").eval(), _meta(1, 10, 16))
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.totals.macs == macs
    assert report.layers[-1].output_shape == tuple(out.shape)


def _image_graph(*layers: L.Layer) -> Graph:
    nodes = [Node(name="input", layer=L.Input())]
    for i, layer in enumerate(layers):
        nodes.append(Node(name=f"l{i}", layer=layer, inputs=(nodes[-1].name,)))
    return Graph(tuple(nodes), (nodes[-1].name,), ModelMeta(name="t"))


@pytest.mark.parametrize("moved", [False, True], ids=["nchw", "after-permute"])
def test_attention_makes_the_field_global(moved) -> None:
    permute = [L.Permute(dims=(0, 2, 3, 1))] if moved else []
    graph = _image_graph(L.Conv2d(out_channels=4, kernel_size=(3, 3)), *permute,
                         L.ScaledDotProductAttention())
    report = analyze_graph(graph, (3, 12, 12))
    assert report.layers[0].receptive_field.size == (3, 3)
    assert report.layers[-1].receptive_field.is_global
    assert report.diagnostics == ()


@pytest.mark.oracle
def test_torchvision_vit_attention_converts_and_matches_published_ops() -> None:
    """torchvision's ViT-B/16 calls nn.MultiheadAttention(x, x, x, need_weights=False) in
    each of its 12 encoder blocks: each becomes one multihead_attention layer, and the
    totals equal parameters() and the published `_ops` (GFLOPS there = GMACs here) and
    `num_params` of ViT_B_16_Weights (torchvision's model docs)."""
    models = pytest.importorskip("torchvision.models")
    weights = models.ViT_B_16_Weights.IMAGENET1K_V1
    model = models.vit_b_16()  # weights=None: metadata only, nothing downloaded
    graph = graph_from_module(model, (3, 224, 224)).graph
    assert sum(node.kind == "multihead_attention" for node in graph.nodes) == 12
    report = analyze_graph(graph)
    assert report.totals.params == sum(p.numel() for p in model.parameters()) \
        == weights.meta["num_params"]
    assert round(report.totals.macs / 1e9, 3) == weights.meta["_ops"]
