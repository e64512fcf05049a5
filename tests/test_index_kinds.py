"""slice, select, class_token and position_embedding, each checked against torch on
modules written here: parameters(), FlopCounterMode / 2, output shapes of a forward on
meta, receptive fields by gradient; the torch frontend on `x[...]`, Tensor.select,
torch.narrow, a ViT-style class token and position embedding; spec entries and export.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import FnModule, gradient_and_field_spans
from torch import nn

from cnnstat.analyzers import analyze_graph
from cnnstat.analyzers.engine import infer_shapes
from cnnstat.analyzers.rf import receptive_fields
from cnnstat.errors import CnnstatError
from cnnstat.frontends import graph_from_module
from cnnstat.ir import layers as L
from cnnstat.ir.graph import Graph, ModelMeta, Node
from cnnstat.spec.loader import build_graph
from cnnstat.spec.yaml_tree import parse
from cnnstat.writer import spec_from_graph


def _graph(layers: list[L.Layer], input_shape=None) -> Graph:
    nodes = [Node(name="input", layer=L.Input())]
    for i, layer in enumerate(layers):
        nodes.append(Node(name=f"l{i}", layer=layer, inputs=(nodes[-1].name,)))
    return Graph(tuple(nodes), (nodes[-1].name,), ModelMeta(name="t", input=input_shape))



def _torch_shape(fn, shape):
    with torch.no_grad():
        return tuple(fn(torch.empty(2, *shape, device="meta")).shape)


@pytest.mark.parametrize(("layer", "fn"), [
    (L.Slice(stop=3), lambda x: x[:, :3]),
    (L.Slice(start=2), lambda x: x[:, 2:]),
    (L.Slice(dim=2, start=1, stop=-1), lambda x: x[:, :, 1:-1]),
    (L.Slice(dim=-1, step=2), lambda x: x[..., ::2]),
    (L.Slice(dim=3, start=-4, stop=50, step=3), lambda x: x[:, :, :, -4:50:3]),
    (L.Select(index=0), lambda x: x[:, 0]),
    (L.Select(dim=2, index=-1), lambda x: x[:, :, -1]),
    (L.Select(dim=-1, index=3), lambda x: x.select(-1, 3)),
])
def test_each_shape_rule_is_torchs(layer, fn) -> None:
    assert infer_shapes(_graph([layer]), (8, 9, 10), batch=2)["l0"] == \
        _torch_shape(fn, (8, 9, 10))


@pytest.mark.parametrize(("layer", "message"), [
    (L.Slice(start=8), "is empty"), (L.Select(index=8), "index 8 is out of range"),
    (L.ClassToken(), r"class_token takes tokens \[N, S, D\]"),
])
def test_what_torch_cannot_do_is_refused(layer, message) -> None:
    with pytest.raises(CnnstatError, match=message):
        infer_shapes(_graph([layer]), (8, 9, 10))


@pytest.mark.parametrize("bad", [{"dim": 0}, {"step": 0}, {"start": 1.5}])
def test_invalid_slices_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        L.Slice(**bad)


@settings(max_examples=30, deadline=None)
@given(c=st.integers(2, 6), h=st.integers(3, 10),
       picks=st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.integers(-4, 4),
                                st.integers(-4, 4), st.integers(1, 3)),
                      min_size=1, max_size=3))
def test_stacks_of_slices_match_torch(c, h, picks) -> None:
    """Random slices between 3x3 convs: shapes, params and MACs equal torch's, and an
    empty slice is refused where torch makes an empty tensor."""
    ours: list[L.Layer] = [L.Conv2d(out_channels=c, kernel_size=(3, 3), padding=(1, 1))]
    theirs: list[nn.Module] = [nn.Conv2d(c, c, 3, padding=1)]
    for dim, start, stop, step in picks:
        ours += [L.Slice(dim=dim, start=start, stop=stop, step=step),
                 L.Conv2d(out_channels=c, kernel_size=(1, 1))]
        key = (*[slice(None)] * dim, slice(start, stop, step))
        theirs += [FnModule(lambda x, key=key: x[key]), nn.LazyConv2d(c, 1)]
    net = nn.Sequential(*theirs)
    x = torch.zeros(1, c, h, h)
    try:
        with torch.no_grad():
            out = net(x)
    except RuntimeError:  # a conv on an empty tensor
        out = None
    if out is None or 0 in out.shape:
        with pytest.raises(CnnstatError):
            analyze_graph(_graph(ours), (c, h, h), batch=1)
        return
    report = analyze_graph(_graph(ours), (c, h, h), batch=1)
    assert report.layers[-1].output_shape == tuple(out.shape)
    assert report.totals.params == sum(p.numel() for p in net.parameters())
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(x)
    assert 2 * report.totals.macs == counter.get_total_flops()


@pytest.mark.parametrize("layers", [
    [L.Conv2d(out_channels=2, kernel_size=(3, 3)), L.Slice(dim=2, start=2, step=2),
     L.Conv2d(out_channels=2, kernel_size=(3, 3))],
    [L.Conv2d(out_channels=4, kernel_size=(3, 3)), L.Slice(stop=2),
     L.Slice(dim=-1, start=-5), L.Conv2d(out_channels=2, kernel_size=(3, 3))],
])
def test_fields_equal_the_gradient(layers) -> None:
    measured, ours = gradient_and_field_spans(_graph(layers, input_shape=(2, 15, 15)))
    assert measured == ours


def test_a_select_of_h_has_no_field_and_of_channels_keeps_it() -> None:
    conv = L.Conv2d(out_channels=4, kernel_size=(3, 3))
    graph = _graph([conv, L.Select(index=1), L.Select(dim=1, index=0)])
    fields, notes = receptive_fields(graph, infer_shapes(graph, (3, 9, 9)))
    assert fields["l1"].size == (3, 3) and fields["l1"].layout == (1, 2)
    assert fields["l2"] is None and "one row or column" in notes[0]


# --- the ViT pieces -----------------------------------------------------------------------


class TinyViT(nn.Module):
    """torchvision's VisionTransformer, in miniature and as written there: patches,
    class token, position embedding, one encoder layer, x[:, 0], the head."""

    def __init__(self, dim=16, patch=4, image=16):
        super().__init__()
        self.conv_proj = nn.Conv2d(3, dim, patch, patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        self.layer = nn.TransformerEncoderLayer(dim, 2, 32, batch_first=True)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        n = x.shape[0]
        x = self.conv_proj(x).flatten(2).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        x = self.layer(x + self.pos_embedding)
        return self.head(x[:, 0])


def test_vit_tokens_convert_with_torchs_params_and_a_global_field() -> None:
    model = TinyViT()
    traced = graph_from_module(model, (3, 16, 16))
    kinds = [n.kind for n in traced.graph]
    assert {"class_token", "position_embedding", "select"} <= set(kinds)
    report = analyze_graph(traced.graph)
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    rows = {r.name: r for r in report.layers}
    token = next(r for r in report.layers if r.kind == "class_token")
    pos = next(r for r in report.layers if r.kind == "position_embedding")
    assert (token.params, token.output_shape, token.other_ops) == (16, (1, 17, 16), 0)
    assert (pos.params, pos.other_ops) == (17 * 16, 17 * 16)
    last = rows[traced.graph.outputs[0]]
    assert last.receptive_field is not None and last.receptive_field.is_global


def test_learned_tokens_build_and_trace_back() -> None:
    graph = _graph([L.ClassToken(tokens=2), L.PositionEmbedding(), L.Select(index=0)],
                   input_shape=(5, 8))
    from cnnstat.builder import build_module

    module = build_module(graph)
    assert sum(p.numel() for p in module.parameters()) == 2 * 8 + 7 * 8 == \
        analyze_graph(graph).totals.params
    assert tuple(module(torch.zeros(1, 5, 8)).shape) == (1, 8)
    again = [n.kind for n in graph_from_module(module, (5, 8)).graph]
    assert again == ["input", "class_token", "position_embedding", "select"]


@pytest.mark.parametrize(("fn", "kind"), [
    (lambda x: x[:, 1:3], "slice"), (lambda x: x[..., ::2], "slice"),
    (lambda x: x[:, :, 1], "select"), (lambda x: torch.narrow(x, 1, -2, 2), "slice"),
    (lambda x: x.select(2, -1), "select"), (lambda x: x[:, :2, :, :], "slice"),
])
def test_indexing_calls_convert(fn, kind) -> None:
    traced = graph_from_module(FnModule(fn), (4, 6, 6))
    assert [n.kind for n in traced.graph][1:] == [kind]
    shape = infer_shapes(traced.graph, (4, 6, 6), batch=2)[traced.graph.outputs[0]]
    assert shape == _torch_shape(fn, (4, 6, 6))


@pytest.mark.parametrize("fn", [
    lambda x: x[0], lambda x: x[:, 1:3, 2:], lambda x: x[:, None], lambda x: x[:, [0, 2]],
    lambda x: x[:, x.new_ones(4, dtype=torch.bool)], lambda x: x.narrow(0, 0, 1),
])
def test_other_indexing_stays_opaque(fn) -> None:
    kinds = [n.kind for n in graph_from_module(FnModule(fn), (4, 6, 6)).graph]
    assert kinds[1:] and set(kinds[1:]) == {"opaque"}


def test_spec_entries_export_and_load_back() -> None:
    text = ("name: t\ninput: [8, 12, 10]\nlayers:\n  - {slice: 1, stop: 4}\n"
            "  - {slice: 2, start: 1, stop: -1, step: 2}\n  - {select: 0, dim: 3}\n"
            "  - {flatten: 2}\n  - {permute: [0, 2, 1]}\n  - {class_token: 1}\n"
            "  - position_embedding\n  - {select: 0}\n")
    graph = build_graph(parse(text, "t.yaml"), default_name="t", source="t.yaml")
    assert [n.layer for n in graph.nodes[1:4]] == [
        L.Slice(stop=4), L.Slice(dim=2, start=1, stop=-1, step=2), L.Select(index=0, dim=3)]
    report = analyze_graph(graph)
    assert report.layers[-1].output_shape == (1, 4)
    assert report.totals.params == 4 + 6 * 4  # token 1 x D; embedding (5 + 1) x D
    again = build_graph(parse(spec_from_graph(graph).text, "e.yaml"), default_name="t",
                        source=None)
    assert analyze_graph(again).totals == report.totals


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"])
def test_torchvision_vits_have_no_opaque_node_and_torchvisions_numbers(name) -> None:
    """Class token, position embedding and x[:, 0] convert: no opaque node; params equal
    parameters() and the published num_params, MACs the published `_ops` (GFLOPS there are
    GMACs; FlopCounterMode on CPU misses fused attention, so the published figure is the
    oracle), torchvision's model docs via `weights.meta`. The field after the patch
    tokens is global, never a number."""
    models = pytest.importorskip("torchvision.models")
    from cnnstat.frontends.torch_ref import load, parse_reference

    loaded = load(parse_reference(f"torchvision:{name}"), {})
    # The weights of the model as built (224 x 224): vit_h_14's DEFAULT is at 518, with a
    # longer position embedding; its SWAG_LINEAR weights are at 224.
    which = "IMAGENET1K_SWAG_LINEAR_V1" if name == "vit_h_14" else "IMAGENET1K_V1"
    weights = models.get_model_weights(name)[which]
    graph = graph_from_module(loaded.module, loaded.default_input or (3, 224, 224)).graph
    assert [n.name for n in graph if n.kind == "opaque"] == []
    report = analyze_graph(graph)
    assert report.totals.params == sum(p.numel() for p in loaded.module.parameters()) \
        == weights.meta["num_params"]
    assert round(report.totals.macs / 1e9, 3) == weights.meta["_ops"]
    token = next(r for r in report.layers if r.kind in ("select", "class_token"))
    assert token.receptive_field is not None and token.receptive_field.is_global
