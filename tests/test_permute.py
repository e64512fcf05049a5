"""`permute` and `linear` over the last dim of [N, H, W, C] (ConvNeXt's block), checked
against torch: output shapes on meta, parameters(), FlopCounterMode / 2, and the
receptive field against the input gradient of the real module."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers import analyze_graph
from cnnstat.analyzers.engine import infer_shapes
from cnnstat.analyzers.rf import receptive_fields
from cnnstat.builder.torch_module import build_module
from cnnstat.errors import ShapeError
from cnnstat.frontends import graph_from_module
from cnnstat.ir import layers as L
from tests.test_modern_kinds import _graph
from tests.test_spec_modern import load

BLOCK = """
name: cnblock
input: [8, 14, 14]
layers:
  - {conv: 8, k: 7, p: 3, groups: 8, name: dwconv}
  - {permute: [0, 2, 3, 1], name: to_nhwc}
  - {layer_norm: channels_last, eps: 1.0e-6, name: norm}
  - {linear: 32, name: fc1}
  - gelu
  - {linear: 8, name: fc2}
  - {permute: [0, 3, 1, 2], name: to_nchw}
  - {scale: 1.0e-6, name: layer_scale}
  - {drop_path: 0.1, name: drop}
  - {add: null, from: [input, drop]}
"""


class CNBlock(nn.Module):
    """torchvision.models.convnext.CNBlock's arithmetic, as written there (its Permute is
    `torch.permute(x, dims)`)."""

    def __init__(self, c: int):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.fc1, self.act, self.fc2 = nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)
        self.layer_scale = nn.Parameter(torch.ones(c, 1, 1) * 1e-6)

    def forward(self, x):
        y = torch.permute(self.dwconv(x), [0, 2, 3, 1])
        y = self.fc2(self.act(self.fc1(self.norm(y))))
        return x + self.layer_scale * y.permute(0, 3, 1, 2)


def _torch_counts(module: nn.Module, shape):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = module.to("meta")(torch.empty(2, *shape, device="meta"))
    return tuple(out.shape), sum(p.numel() for p in module.parameters()), \
        counter.get_total_flops() // 2


def test_a_convnext_block_spec_equals_torch() -> None:
    report = analyze_graph(load(BLOCK), batch=2)
    shape, params, macs = _torch_counts(CNBlock(8), (8, 14, 14))
    rows = {row.name: row for row in report.layers}
    assert rows["to_nhwc"].output_shape == (2, 14, 14, 8)
    assert report.layers[-1].output_shape == shape
    assert report.totals.params == params
    assert report.totals.macs == macs
    assert (rows["to_nhwc"].params, rows["to_nhwc"].macs, rows["to_nhwc"].other_ops) == (0, 0, 0)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_over_the_last_dim_of_an_image_tensor(bias) -> None:
    """nn.Linear on [N, H, W, C]: params in*out (+ out), MACs N*H*W*in*out."""
    graph = _graph([L.Permute(dims=(0, 2, 3, 1)), L.Linear(out_features=10, bias=bias)])
    report = analyze_graph(graph, (6, 5, 7), batch=2)
    shape, params, macs = _torch_counts(
        nn.Sequential(Nhwc(), nn.Linear(6, 10, bias=bias)), (6, 5, 7))
    assert report.layers[-1].output_shape == shape == (2, 5, 7, 10)
    assert report.totals.params == params == 6 * 10 + (10 if bias else 0)
    assert report.totals.macs == macs == 2 * 5 * 7 * 6 * 10


class Nhwc(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4), data=st.data())
def test_permute_shape_equals_torch(sizes, data) -> None:
    rank = len(sizes) + 1
    rest = data.draw(st.permutations(range(1, rank)))
    negative = data.draw(st.booleans())
    dims = tuple([0, *rest])
    written = tuple(d - rank if negative and d else d for d in dims)
    x = torch.empty(3, *sizes, device="meta")
    graph = _graph([L.Permute(dims=written)])
    assert infer_shapes(graph, tuple(sizes), batch=3)["l0"] == tuple(x.permute(dims).shape)
    built = build_module(graph, tuple(sizes))
    assert tuple(built.to("meta")(x).shape) == tuple(x.permute(dims).shape)


@pytest.mark.parametrize("dims", [(0, 1, 2), (0, 1, 1, 2), (0, 1, 2, 4), (1, 0, 2, 3)])
def test_permute_refuses_what_torch_refuses(dims) -> None:
    x = torch.empty(1, 2, 3, 4, device="meta")
    if dims[0] == 0:
        with pytest.raises((RuntimeError, IndexError)):
            x.permute(dims)
    with pytest.raises((ValueError, ShapeError), match="dim"):
        infer_shapes(_graph([L.Permute(dims=dims)]), (2, 3, 4))


def test_the_block_field_follows_the_axes_and_equals_the_gradient() -> None:
    """Through permute -> norm -> linear -> permute back the field is the 7x7 dwconv's
    (the MLP mixes channels only), as the input gradient of CNBlock says."""
    graph = load(BLOCK)
    fields, notes = receptive_fields(graph, infer_shapes(graph, (8, 14, 14)))
    assert notes == () and fields["fc1"].size == fields["add1"].size == (7, 7)
    assert fields["fc1"].layout == (1, 2) and fields["to_nchw"].layout == (2, 3)
    unit, measured = _gradient_region(CNBlock(8), (8, 14, 14))
    assert fields["add1"].region(unit, clipped=True) == measured == ((4, 10), (4, 10))


def _gradient_region(module: nn.Module, shape):
    """Input rows and columns the central output unit's gradient reaches. Random weights
    and input (a constant input makes a layer norm's gradient vanish), float64."""
    torch.manual_seed(0)
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand_like(p) + 0.1)
    x = torch.rand(1, *shape, dtype=torch.float64, requires_grad=True)
    out = module(x)
    cy, cx = out.shape[2] // 2, out.shape[3] // 2
    out[0, :, cy, cx].sum().backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = x.grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()
    return (cy, cx), ((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1])))


def test_space_read_while_permuted_is_unknown_not_guessed() -> None:
    """A conv whose dims 2, 3 are W and C (or a linear over W) has no field here."""
    conv = L.Conv2d(out_channels=4, kernel_size=(3, 3))
    graph = _graph([L.Permute(dims=(0, 2, 3, 1)), conv, L.ReLU()])
    fields, notes = receptive_fields(graph, infer_shapes(graph, (4, 16, 16)))
    assert fields["l1"] is None and fields["l2"] is None
    assert len(notes) == 1 and "a permute moved them" in notes[0]
    swapped = _graph([L.Permute(dims=(0, 1, 3, 2)), L.Linear(out_features=3)])
    fields, _ = receptive_fields(swapped, infer_shapes(swapped, (4, 16, 16)))
    assert fields["l1"].is_global


@pytest.mark.parametrize("how", ["method_args", "method_tuple", "function"])
def test_permute_calls_become_the_kind(how) -> None:
    calls = {"method_args": lambda x: x.permute(0, 2, 3, 1),
             "method_tuple": lambda x: x.permute((0, -2, -1, 1)),
             "function": lambda x: torch.permute(x, [0, 2, 3, 1])}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 4, 3), nn.Linear(4, 5)

        def forward(self, x):
            return self.fc(calls[how](self.conv(x)))

    traced = graph_from_module(Net(), (3, 10, 12))
    kinds = [node.kind for node in traced.graph]
    assert kinds == ["input", "conv2d", "permute", "linear"]
    report = analyze_graph(traced.graph, (3, 10, 12), batch=2)
    assert report.totals.macs == _torch_counts(Net(), (3, 10, 12))[2]


def test_a_permute_that_moves_the_batch_stays_opaque() -> None:
    class Net(nn.Module):
        def forward(self, x):
            return x.permute(1, 0, 2, 3)

    kinds = [node.kind for node in graph_from_module(Net(), (3, 4, 5)).graph]
    assert kinds == ["input", "opaque"]


@pytest.mark.oracle
def test_torchvision_permute_module_becomes_the_kind() -> None:
    misc = pytest.importorskip("torchvision.ops.misc")
    net = nn.Sequential(nn.Conv2d(3, 4, 1), misc.Permute([0, 2, 3, 1]), nn.LayerNorm(4),
                        misc.Permute([0, 3, 1, 2]))
    kinds = [node.kind for node in graph_from_module(net, (3, 8, 8)).graph]
    assert kinds == ["input", "conv2d", "permute", "layer_norm", "permute"]


def test_permute_is_exported_and_read_back() -> None:
    from cnnstat.writer.entries import layer_entry

    entry = layer_entry(L.Permute(dims=(0, -1, 1, 2)), "p")
    assert entry == {"permute": [0, -1, 1, 2]}
    text = f"name: t\ninput: [3, 4, 5]\nlayers:\n  - {{permute: {entry['permute']}}}\n"
    assert load(text).nodes[1].layer == L.Permute(dims=(0, -1, 1, 2))
