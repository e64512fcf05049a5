"""Parts of a tensor (split, chunk, unbind), reductions (mean, sum), pad and group norm,
each checked against torch on modules written here: parameters(), FlopCounterMode / 2,
output shapes of a forward on meta, receptive fields by gradient; the torch frontend on
modules that call nn.GroupNorm / F.group_norm, nn.*Pad2d / F.pad, Tensor.mean / sum and
torch.split / chunk / unbind; spec entries, their errors and export.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from oracles import FnModule, gradient_and_field_spans
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers import analyze_graph
from cnnstat.analyzers.engine import infer_shapes
from cnnstat.analyzers.min_input import min_input_side
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


def _load(layers: str, input_shape="[8, 12, 10]") -> Graph:
    text = f"name: t\ninput: {input_shape}\nlayers:\n{layers}"
    return build_graph(parse(text, "t.yaml"), default_name="t", source="t.yaml")


def _torch(fn, shape, params: int = 0):
    """Output shape and MACs (FlopCounterMode / 2) of `fn` on a meta tensor."""
    x = torch.empty(2, *shape, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = fn(x)
    return tuple(out.shape), counter.get_total_flops() // 2



def _kinds(c: int):
    """(our layer, torch's module) pairs on a [N, c, H, W] input, c even."""
    return {
        "gn": (L.GroupNorm(num_groups=2), nn.GroupNorm(2, c)),
        "gn_plain": (L.GroupNorm(num_groups=1, affine=False), nn.GroupNorm(1, c, affine=False)),
        "zero_pad": (L.Pad(padding=(1, 2, 0, 3)), nn.ZeroPad2d((1, 2, 0, 3))),
        "crop_pad": (L.Pad(padding=(-1, 0, 1, -1)), FnModule(lambda x: F.pad(x, (-1, 0, 1, -1)))),
        "reflect": (L.Pad(padding=(1, 1, 2, 0), mode="reflect"), nn.ReflectionPad2d((1, 1, 2, 0))),
        "replicate": (L.Pad(padding=(2, 2, 2, 2), mode="replicate"), nn.ReplicationPad2d(2)),
        "circular": (L.Pad(padding=(1, 0, 1, 0), mode="circular"), nn.CircularPad2d((1, 0, 1, 0))),
        "chunk1": (L.Chunk(chunks=2, index=1), FnModule(lambda x: x.chunk(2, 1)[1])),
        "split_h": (L.Split(split_size=(2,), dim=2, index=0), FnModule(lambda x: x.split(2, 2)[0])),
        "mean_c": (L.Mean(dims=(1,), keepdim=True), FnModule(lambda x: x.mean(1, keepdim=True))),
        "sum_w": (L.Sum(dims=(-1,), keepdim=True), FnModule(lambda x: x.sum(-1, keepdim=True))),
    }


@settings(max_examples=30, deadline=None)
@given(c=st.sampled_from([2, 4, 6]), h=st.integers(4, 12), w=st.integers(4, 12),
       picks=st.lists(st.sampled_from(sorted(_kinds(2))), min_size=1, max_size=4))
@example(c=2, h=4, w=4, picks=["sum_w", "crop_pad"])  # W 1, cropped by 1: empty in torch
@example(c=4, h=4, w=4, picks=["chunk1", "gn"])  # half the channels, then a conv back to c
def test_stacks_of_tensor_kinds_match_torch(c, h, w, picks) -> None:
    """Shapes, params and MACs of random stacks equal torch's (each conv keeps c channels,
    so a channel reduction or a chunk is followed by a conv back to c)."""
    ours: list[L.Layer] = [L.Conv2d(out_channels=c, kernel_size=(3, 3), padding=(1, 1))]
    theirs: list[nn.Module] = [nn.Conv2d(c, c, 3, padding=1)]
    channels = c
    for pick in picks:
        layer, module = _kinds(c)[pick]
        if channels != c:
            ours.append(L.Conv2d(out_channels=c, kernel_size=(1, 1)))
            theirs.append(nn.Conv2d(channels, c, 1))
        ours.append(layer)
        theirs.append(module)
        channels = {"mean_c": 1, "chunk1": c // 2}.get(pick, c)  # c is even
    net = nn.Sequential(*theirs)
    try:
        shape, macs = _torch(net.to("meta").eval(), (c, h, w))
        sizes = _torch(lambda x: _smallest_size(net, x), (c, h, w))[0]
    except (RuntimeError, ValueError, IndexError):
        sizes = (0,)  # torch refuses (a reflect pad too big)
    if 0 in sizes:  # NB: torch pads to an empty dim without error; every kind here refuses
        with pytest.raises(CnnstatError):
            analyze_graph(_graph(ours), (c, h, w), batch=2)
        return
    report = analyze_graph(_graph(ours), (c, h, w), batch=2)
    assert report.layers[-1].output_shape == shape
    assert report.totals.params == sum(p.numel() for p in net.parameters())
    assert report.totals.macs == macs


def _smallest_size(net: nn.Sequential, x):
    """A tensor whose shape holds the smallest size any layer's output had (0: empty)."""
    smallest = min(x.shape)
    for module in net:
        x = module(x)
        smallest = min(smallest, *x.shape)
    return torch.empty(smallest, device="meta")


@pytest.mark.parametrize(("layer", "fn"), [
    (L.Split(split_size=(3, 5), dim=1, index=1), lambda x: torch.split(x, [3, 5], 1)[1]),
    (L.Split(split_size=(3,), dim=-1, index=3), lambda x: x.split(3, -1)[3]),
    (L.Chunk(chunks=3, dim=2, index=2), lambda x: x.chunk(3, 2)[2]),
    (L.Chunk(chunks=4, dim=1, index=3), lambda x: x.chunk(4, 1)[3]),
    (L.Unbind(dim=2, index=4), lambda x: x.unbind(2)[4]),
    (L.Mean(dims=(2, 3)), lambda x: x.mean((2, 3))),
    (L.Mean(dims=(1, -1), keepdim=True), lambda x: x.mean((1, -1), keepdim=True)),
    (L.Sum(dims=(2,)), lambda x: x.sum(2)),
    (L.Pad(padding=(1, 1, 1, 1, 2, 0)), lambda x: F.pad(x, (1, 1, 1, 1, 2, 0))),
    (L.Pad(padding=(3,  -2)), lambda x: F.pad(x, (3, -2))),
])
def test_each_shape_rule_is_torchs(layer, fn) -> None:
    """On [2, 8, 9, 10] (dim 3 of 10 in threes gives 4 parts, the last of 1)."""
    assert infer_shapes(_graph([layer]), (8, 9, 10), batch=2)["l0"] == _torch(fn, (8, 9, 10))[0]


@pytest.mark.parametrize(("layer", "message"), [
    (L.Chunk(chunks=4, dim=1, index=3), "part 3 does not exist: a dim of 5 gives 3 parts"),
    (L.Split(split_size=(2, 2), dim=1, index=0), "add up to 4, not the dim's 5"),
    (L.Unbind(dim=2, index=6), "part 6 does not exist"),
    (L.Mean(dims=(1, -3)), "name a dim twice"),
    (L.GroupNorm(num_groups=2), "channels 5 are not divisible by num_groups 2"),
    (L.Pad(padding=(6, 0, 0, 0), mode="reflect"), "needs a dim larger than it"),
    (L.Pad(padding=(1, 1), mode="reflect"), "pads every dim after [N, C]"),
])
def test_what_torch_refuses_is_refused_with_the_reason(layer, message) -> None:
    """torch.chunk of 5 channels in 4 gives 3 chunks of 2, 2, 1: there is no part 3."""
    if isinstance(layer, L.Chunk):
        assert len(torch.empty(1, 5, 6, 6).chunk(4, 1)) == 3
    with pytest.raises(CnnstatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        infer_shapes(_graph([layer]), (5, 6, 6))


def test_group_norm_counts_and_field() -> None:
    """2C params (no buffers), 8 other ops per element; the field is global: the
    gradient of one output reaches every input pixel through the group statistics."""
    report = analyze_graph(_graph([L.GroupNorm(num_groups=2)]), (4, 5, 6), batch=1)
    row = report.layers[-1]
    module = nn.GroupNorm(2, 4)
    assert (row.params, row.buffers) == (sum(p.numel() for p in module.parameters()), 0) == (8, 0)
    assert row.other_ops == 8 * 4 * 5 * 6
    x = torch.randn(1, 4, 5, 6, requires_grad=True)
    module(x)[0, :, 2, 3].sum().backward()
    assert bool((x.grad.abs().sum(dim=(0, 1)) > 0).all())
    fields, _ = receptive_fields(_graph([L.GroupNorm(num_groups=2)]), infer_shapes(
        _graph([L.GroupNorm(num_groups=2)]), (4, 5, 6)))
    assert fields["l0"].is_global


@pytest.mark.parametrize("layers", [
    [L.Pad(padding=(2, 1, 0, 3)), L.Conv2d(out_channels=2, kernel_size=(3, 3))],
    [L.Conv2d(out_channels=2, kernel_size=(3, 3)), L.Pad(padding=(-1, 2, 1, -2)),
     L.Conv2d(out_channels=2, kernel_size=(3, 3), stride=(2, 2))],
    [L.Conv2d(out_channels=4, kernel_size=(3, 3)), L.Split(split_size=(3, 6), dim=2, index=1),
     L.Conv2d(out_channels=2, kernel_size=(3, 3))],
    [L.Conv2d(out_channels=4, kernel_size=(3, 3)), L.Chunk(chunks=2, dim=-1, index=1),
     L.Mean(dims=(1,), keepdim=True), L.Conv2d(out_channels=2, kernel_size=(3, 3))],
])
def test_fields_equal_the_gradient(layers) -> None:
    """Pads and parts of H / W shift the field (unit j reads j - pad, or j + offset); a
    channel mean keeps it. Measured unit by unit on the whole 11x11 input."""
    measured, ours = gradient_and_field_spans(_graph(layers, input_shape=(2, 11, 11)))
    assert measured == ours


def test_a_spatial_reduction_is_global_and_the_layout_follows_a_channel_one() -> None:
    conv = L.Conv2d(out_channels=4, kernel_size=(3, 3))
    graph = _graph([conv, L.Mean(dims=(1,)), L.Permute(dims=(0, 1, 2)), L.Mean(dims=(-1,))])
    fields, _ = receptive_fields(graph, infer_shapes(graph, (3, 9, 9)))
    assert fields["l1"].size == (3, 3) and fields["l1"].layout == (1, 2)
    assert fields["l3"].is_global


def test_min_input_through_pad_equals_torchs() -> None:
    """pad 1 each side, then k5 s2, then k3: side + 2 >= 5 and (side + 2 - 5) // 2 + 1 >= 3,
    so side >= 7; torch's conv agrees at 7 and refuses 6."""
    layers = [L.Pad(padding=(1, 1, 1, 1)), L.Conv2d(out_channels=2, kernel_size=(5, 5),
                                                    stride=(2, 2)),
              L.Conv2d(out_channels=2, kernel_size=(3, 3))]
    graph = _graph(layers, input_shape=(3, 32, 32))
    net = nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(3, 2, 5, 2), nn.Conv2d(2, 2, 3))
    assert min_input_side(graph) == 7
    net(torch.empty(1, 3, 7, 7))
    with pytest.raises(RuntimeError):
        net(torch.empty(1, 3, 6, 6))


# --- the spec language --------------------------------------------------------------------


class ShuffleUnit(nn.Module):
    """torchvision's InvertedResidual (stride 1), as written there."""

    def __init__(self, c: int):
        super().__init__()
        half = c // 2
        self.branch2 = nn.Sequential(
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        return nn.functional.channel_shuffle(out, 2)


UNIT = """\
  - {chunk: 2, name: parts}
  - {conv: 4, k: 1, bias: false}
  - bn
  - relu
  - {conv: 4, k: 3, p: 1, g: 4, bias: false}
  - bn
  - {conv: 4, k: 1, bias: false}
  - bn
  - relu
  - {concat, from: [parts.0, relu2]}
  - {shuffle: 2}
"""


def test_a_chunk_entry_makes_one_node_per_part_and_equals_torch() -> None:
    graph = _load(UNIT)
    assert [n.name for n in graph.nodes[1:3]] == ["parts.0", "parts.1"]
    assert [n.layer.index for n in graph.nodes[1:3]] == [0, 1]
    assert graph.node("conv1").inputs == ("parts.1",)  # the next entry: the last part
    report = analyze_graph(graph, (8, 12, 10), batch=2)
    net = ShuffleUnit(8)
    shape, macs = _torch(net.to("meta").eval(), (8, 12, 10))
    assert report.layers[-1].output_shape == shape
    assert (report.totals.params, report.totals.macs) == (
        sum(p.numel() for p in net.parameters()), macs)


def test_the_torch_frontend_reads_the_same_unit_with_no_opaque_node() -> None:
    traced = graph_from_module(ShuffleUnit(8), (8, 12, 10))
    kinds = [n.kind for n in traced.graph]
    assert "opaque" not in kinds and kinds.count("chunk") == 2
    parts = [n for n in traced.graph if n.kind == "chunk"]
    assert [p.layer.index for p in parts] == [0, 1]
    assert analyze_graph(traced.graph, (8, 12, 10)).totals.macs == \
        analyze_graph(_load(UNIT), (8, 12, 10)).totals.macs


@pytest.mark.parametrize(("entries", "message"), [
    ("  - {unbind: 1}\n", "depends on the input: give 'index'"),
    ("  - {split: [3]}\n", "give 'index' (one part per entry), or the list of sizes"),
    ("  - {chunk: 2, index: 2}\n", "index 2 is past the 2 chunks"),
    ("  - {mean: [0, 2]}\n", "dims entry 0 is the batch"),
    ("  - {pad: [1, 1], mode: wrap}\n", "mode must be one of constant, reflect"),
    ("  - {chunk: 2, name: x}\n  - {relu, name: x}\n", "duplicate layer name 'x'"),
    ("  - {chunk: 2, name: p}\n  - {relu, from: p.2}\n", "'p.2' names no earlier layer"),
])
def test_spec_errors_say_where_and_why(entries, message) -> None:
    with pytest.raises(CnnstatError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        _load(entries)
    assert e.value.loc is not None and e.value.loc.line >= 4


def test_spec_entries_read_as_torchs_calls() -> None:
    graph = _load("  - {pad: [1, 2, 3, 4], mode: replicate}\n  - {gn: 4, eps: 0.001}\n"
                  "  - {split: [2, 6], dim: 1, name: s}\n  - {mean: [2, 3], keepdim: true}\n"
                  "  - {sum: [1], from: s.0}\n  - {unbind: 2, index: 1, from: s.0}\n")
    layers = [n.layer for n in graph.nodes[1:]]
    assert layers == [L.Pad(padding=(1, 2, 3, 4), mode="replicate"),
                      L.GroupNorm(num_groups=4, eps=0.001),
                      L.Split(split_size=(2, 6), index=0), L.Split(split_size=(2, 6), index=1),
                      L.Mean(dims=(2, 3), keepdim=True), L.Sum(dims=(1,)),
                      L.Unbind(dim=2, index=1)]
    assert graph.node("mean1").inputs == ("s.1",)


def test_parts_export_and_load_back() -> None:
    graph = _load(UNIT + "  - {gn: 2}\n  - {pad: [0, 1, 1, 0]}\n  - {sum: [1], keepdim: true}\n")
    exported = spec_from_graph(graph)  # verified when written: the same nodes and edges
    again = build_graph(parse(exported.text, "e.yaml"), default_name="t", source=None)
    assert analyze_graph(again, (8, 12, 10)).totals == analyze_graph(graph, (8, 12, 10)).totals


# --- the torch frontend -------------------------------------------------------------------


class Calls(nn.Module):
    """Each kind called as modules and as functions / methods."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.gn = nn.GroupNorm(4, 8)
        self.pad = nn.ZeroPad2d((1, 0, 2, 1))
        self.reflect = nn.ReflectionPad2d(1)
        self.head = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        x = self.reflect(self.pad(self.gn(self.conv(x))))
        x = F.pad(F.group_norm(x, 2), (1, 1, 0, 0), mode="constant", value=0.5)
        a, b = torch.split(x, [4, 4], dim=1)
        c, d = x.chunk(2, 1)
        rows = torch.unbind(self.head(b + d), dim=2)
        s = a.mean((2, 3), keepdim=True) + c.sum(dim=1, keepdim=True).mean(dim=[2, 3],
                                                                           keepdim=True)
        return rows[1].sum(-1) + torch.mean(s, (2, 3))


def test_module_and_function_calls_become_the_kinds() -> None:
    traced = graph_from_module(Calls(), (3, 12, 12))
    kinds = [n.kind for n in traced.graph]
    assert "opaque" not in kinds, traced.diagnostics
    assert {"group_norm", "pad", "split", "chunk", "unbind", "mean", "sum"} <= set(kinds)
    assert kinds.count("unbind") == 15  # one node per row: 12 - 2 + 3 (pad) + 2 (reflect)
    report = analyze_graph(traced.graph, (3, 12, 12), batch=2)
    net = Calls()
    shape, macs = _torch(net.to("meta").eval(), (3, 12, 12))
    assert report.layers[-1].output_shape == shape
    assert (report.totals.params, report.totals.macs) == (
        sum(p.numel() for p in net.parameters()), macs)


@pytest.mark.parametrize("fn", [lambda x: x.chunk(2, 0)[0], lambda x: x.mean(),
                                lambda x: torch.split(x, 1)[0]])
def test_calls_that_touch_the_batch_stay_opaque(fn) -> None:
    kinds = [n.kind for n in graph_from_module(FnModule(fn), (3, 4, 5)).graph]
    assert kinds[1:] and set(kinds[1:]) == {"opaque"}


class Difference(nn.Module):
    """conv(x) - mean over channels of conv(x): a broadcast subtract of two computed tensors."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y - y.mean(1, keepdim=True)


def test_sub_is_a_two_input_merge_that_broadcasts_as_torch() -> None:
    graph = _load("  - {conv: 4, k: 3, p: 1}\n  - {mean: [1], keepdim: true}\n"
                  "  - {sub, from: [conv1, mean1]}\n")
    report = analyze_graph(graph, (8, 12, 10), batch=2)
    net = Difference()
    shape, macs = _torch(net.to("meta").eval(), (8, 12, 10))
    assert report.layers[-1].output_shape == shape
    assert (report.totals.params, report.totals.macs) == (
        sum(p.numel() for p in net.parameters()), macs)
    assert report.layers[-1].other_ops == 2 * 4 * 12 * 10  # one subtract per output element
    with pytest.raises(CnnstatError, match="sub takes two inputs"):
        analyze_graph(_load("  - {conv: 4, k: 1}\n  - {sub, from: [conv1]}\n"), None)


def test_the_torch_frontend_reads_x_minus_y_as_sub() -> None:
    """torch's `y - y.mean(1, keepdim=True)` becomes the sub kind (no opaque node), with
    torch's output shape and counts; `x - 1` is no merge of two tensors but the scalar kind."""
    traced = graph_from_module(Difference(), (8, 12, 10))
    kinds = [n.kind for n in traced.graph]
    assert "opaque" not in kinds and kinds[-1] == "sub", traced.diagnostics
    report = analyze_graph(traced.graph, (8, 12, 10), batch=2)  # _torch runs batch 2
    shape, macs = _torch(Difference().to("meta").eval(), (8, 12, 10))
    assert (report.layers[-1].output_shape, report.totals.macs) == (shape, macs)
    scalar = [n.kind for n in graph_from_module(FnModule(lambda x: x - 1), (3, 4, 5)).graph]
    assert scalar[1:] == ["scalar"]
