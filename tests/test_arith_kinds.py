"""Arithmetic by a number (`scalar`), `tensor_stack`, global response norm (`grn`) and the
convolutions with a fixed filter buffer (`fixed_conv2d`) or a standardized weight
(`std_conv2d`), checked against torch on modules written here, each as the networks that
have it write it (Inception-ResNet's `x * 0.17`, SK attention's torch.stack, PoolFormer's
F.group_norm, timm's BlurPool2d and ScaledStdConv2d, ConvNeXt V2's GRN): parameters(),
FlopCounterMode / 2, output shapes, receptive fields by gradient; spec entries, the
builder and export.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from oracles import FnModule
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat import empirical_rf as E
from cnnstat.analyzers import analyze_graph
from cnnstat.analyzers.engine import infer_shapes
from cnnstat.analyzers.rf import receptive_fields
from cnnstat.builder import build_module
from cnnstat.errors import CnnstatError
from cnnstat.frontends import graph_from_module
from cnnstat.ir import layers as L
from cnnstat.ir.graph import Graph, ModelMeta, Node
from cnnstat.spec.loader import build_graph
from cnnstat.spec.yaml_tree import parse
from cnnstat.writer import spec_from_graph


def _torch_counts(module: nn.Module, shape) -> tuple[int, int, int, tuple]:
    """params, buffers, MACs (FlopCounterMode / 2) and output shape of `module` at batch 1."""
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = module.eval()(torch.randn(1, *shape))
    return params, buffers, counter.get_total_flops() // 2, tuple(out.shape)


def _traced(module: nn.Module, shape):
    traced = graph_from_module(module, shape)
    report = analyze_graph(traced.graph, shape)
    return traced.graph, report


def _kinds(graph: Graph) -> list[str]:
    return [n.kind for n in graph.nodes[1:]]


def _assert_torchs_counts(module: nn.Module, shape, report) -> None:
    params, buffers, macs, out = _torch_counts(module, shape)
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == \
        (params, buffers, macs)
    assert report.layers[-1].output_shape == out


def _load(layers: str, input_shape="[8, 12, 10]") -> Graph:
    text = f"name: t\ninput: {input_shape}\nlayers:\n{layers}"
    return build_graph(parse(text, "t.yaml"), default_name="t", source="t.yaml")


# --- scalar -------------------------------------------------------------------------------


class Numbers(nn.Module):
    """Every way a model writes arithmetic by a number."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.gain = nn.Parameter(torch.tensor(0.0))  # NFNet's skipinit

    def forward(self, x):
        y = self.conv(x) * 0.17 + x  # Inception-ResNet's residual scale
        y = (y + x) / 2  # RepViT's distillation mean
        y = 2.0 * y
        y = 1 - y
        y = y - 0.5
        y = y.mul_(1.7)  # GammaAct
        y = 3 / (y + 1e-6)
        return y * self.gain


def test_arithmetic_by_a_number_is_the_scalar_kind_with_torchs_counts() -> None:
    graph, report = _traced(Numbers(), (4, 6, 5))
    scalars = [n.layer for n in graph.nodes if n.kind == "scalar"]
    assert "opaque" not in _kinds(graph)
    assert [(s.op, s.value, s.learned) for s in scalars] == [
        ("mul", 0.17, False), ("div", 2.0, False), ("mul", 2.0, False), ("rsub", 1.0, False),
        ("sub", 0.5, False), ("mul", 1.7, False), ("add", 1e-6, False), ("rdiv", 3.0, False),
        ("mul", 1.0, True)]
    _assert_torchs_counts(Numbers(), (4, 6, 5), report)
    rows = [r for r in report.layers if r.kind == "scalar"]
    assert {(r.macs, r.other_ops) for r in rows} == {(0, 4 * 6 * 5)}  # one op per element
    assert [r.params for r in rows][-1] == 1



@pytest.mark.parametrize("fn", [lambda x: torch.div(x, 2, rounding_mode="floor"),
                                lambda x: x.add(1, alpha=2), lambda x: x / x.sum(1, True)])
def test_calls_other_than_x_op_number_are_not_scalar(fn) -> None:
    """A rounding division, x + alpha * 1, a tensor divided by a tensor: not this kind."""
    graph, _ = _traced(FnModule(fn), (3, 4, 4))
    assert "scalar" not in _kinds(graph)


def test_scalar_values_torch_refuses_or_that_are_no_gain_are_refused() -> None:
    with pytest.raises(ValueError, match="op must be one of"):
        L.Scalar(op="pow", value=2.0)
    with pytest.raises(ValueError, match="division by 0"):
        L.Scalar(op="div", value=0.0)
    with pytest.raises(ValueError, match="a gain"):
        L.Scalar(op="add", learned=True)
    with pytest.raises(CnnstatError, match="op"):
        _load("  - {scalar: pow, value: 2}\n")


# --- stack --------------------------------------------------------------------------------


class SelectiveKernel(nn.Module):
    """timm's SelectiveKernel: two branches stacked on dim 1, a softmax over them."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.paths = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1),
                                    nn.Conv2d(c, c, 3, padding=2, dilation=2)])
        self.fc_reduce = nn.Conv2d(c, 4, 1)
        self.fc_select = nn.Conv2d(4, 2 * c, 1)

    def forward(self, x):
        x = torch.stack([op(x) for op in self.paths], dim=1)
        a = self.fc_select(self.fc_reduce(x.sum(1).mean((2, 3), keepdim=True)))
        b, c, h, w = a.shape
        a = torch.softmax(a.view(b, 2, c // 2, h, w), dim=1)
        return torch.sum(x * a, dim=1)


def test_sk_attention_stacks_with_torchs_counts_and_no_opaque_node() -> None:
    graph, report = _traced(SelectiveKernel(), (8, 9, 7))
    assert "opaque" not in _kinds(graph) and "tensor_stack" in _kinds(graph)
    stack = next(r for r in report.layers if r.kind == "tensor_stack")
    assert stack.output_shape == (1, 2, 8, 9, 7) and (stack.macs, stack.other_ops) == (0, 0)
    _assert_torchs_counts(SelectiveKernel(), (8, 9, 7), report)


def _two_branches(*tail: L.Layer) -> Graph:
    nodes = [Node(name="input", layer=L.Input()),
             Node(name="a", layer=L.Conv2d(out_channels=2, kernel_size=(3, 3), padding=(1, 1)),
                  inputs=("input",)),
             Node(name="b", layer=L.Conv2d(out_channels=2, kernel_size=(5, 5), padding=(2, 2)),
                  inputs=("input",)),
             Node(name="s", layer=L.Stack(dim=1), inputs=("a", "b"))]
    for i, layer in enumerate(tail):
        nodes.append(Node(name=f"t{i}", layer=layer, inputs=(nodes[-1].name,)))
    return Graph(tuple(nodes), (nodes[-1].name,), ModelMeta(name="t", input=(2, 11, 11)))


def test_the_stacked_field_is_the_union_and_equals_the_gradient() -> None:
    """After stack and a sum over the new dim, unit (h, w) sees both branches' windows
    (the 5x5 one): measured by gradient on the whole input."""
    graph = _two_branches(L.Sum(dims=(1,)))
    fields, _ = receptive_fields(graph, infer_shapes(graph, (2, 11, 11)))
    assert fields["s"].layout == (3, 4) and fields["t0"].layout == (2, 3)
    units = [(0, 0), (5, 5), (10, 3)]
    expected = [tuple(fields["t0"].region(u, clipped=True)) for u in units]
    assert E.unit_spans(graph, "t0", units) == expected
    assert fields["t0"].size == (5, 5)


def test_stack_shapes_and_refusals_are_torchs() -> None:
    shapes = infer_shapes(_two_branches(), (2, 11, 11))
    assert shapes["s"] == tuple(torch.stack([torch.empty(1, 2, 11, 11)] * 2, 1).shape)
    assert infer_shapes(_two_branches(L.Permute(dims=(0, 2, 1, 3, 4))), (2, 11, 11))["t0"] == \
        (1, 2, 2, 11, 11)
    with pytest.raises(CnnstatError, match="one shape"):
        analyze_graph(_load("  - {conv: 4, k: 1}\n  - {conv: 2, k: 1, from: input}\n"
                            "  - {tensor_stack: 1, from: [conv1, conv2]}\n"), None)
    with pytest.raises(ValueError, match="batch"):
        L.Stack(dim=0)


# --- group norm as a function ---------------------------------------------------------------


class GroupNorm1(nn.GroupNorm):
    """PoolFormer's GroupNorm1: F.group_norm with the module's own weight and bias."""

    def __init__(self, c: int):
        super().__init__(1, c)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


def test_f_group_norm_with_the_modules_weights_is_the_group_norm_kind() -> None:
    module = nn.Sequential(nn.Conv2d(3, 8, 3), GroupNorm1(8))
    graph, report = _traced(module, (3, 9, 9))
    assert _kinds(graph) == ["conv2d", "group_norm"]
    _assert_torchs_counts(module, (3, 9, 9), report)


# --- convolutions with a fixed filter or a standardized weight ------------------------------


class BlurPool(nn.Module):
    """timm's BlurPool2d: reflect pad, then a fixed binomial filter per channel, stride 2."""

    def __init__(self, c: int):
        super().__init__()
        coeffs = torch.tensor([1.0, 2.0, 1.0]) / 4
        self.register_buffer("filt", (coeffs[:, None] * coeffs[None, :]).repeat(c, 1, 1, 1))
        self.c = c

    def forward(self, x):
        return F.conv2d(F.pad(x, [1, 1, 1, 1], mode="reflect"), self.filt, stride=2,
                        groups=self.c)


class ScaledStdConv(nn.Conv2d):
    """timm's ScaledStdConv2d (gain) and StdConv2d (no gain)."""

    def __init__(self, c_in: int, c_out: int, k: int, gain: bool, **kwargs):
        super().__init__(c_in, c_out, k, **kwargs)
        self.gain = nn.Parameter(torch.ones(c_out, 1, 1, 1)) if gain else None
        self.scale = self.weight[0].numel() ** -0.5

    def forward(self, x):
        gain = None if self.gain is None else (self.gain * self.scale).view(-1)
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                              weight=gain, training=True, momentum=0.0,
                              eps=1e-6).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


def test_a_fixed_filter_buffer_is_fixed_conv2d_with_torchs_counts() -> None:
    module = nn.Sequential(nn.Conv2d(3, 6, 3), BlurPool(6))
    graph, report = _traced(module, (3, 12, 11))
    assert _kinds(graph) == ["conv2d", "pad", "fixed_conv2d"]
    blur = report.layers[-1]
    assert (blur.params, blur.buffers) == (0, 6 * 9)
    _assert_torchs_counts(module, (3, 12, 11), report)


@pytest.mark.parametrize(("gain", "bias"), [(True, False), (False, True), (True, True)])
def test_a_standardized_weight_is_std_conv2d_with_torchs_counts(gain, bias) -> None:
    module = nn.Sequential(ScaledStdConv(3, 8, 3, gain, bias=bias, stride=2, padding=1),
                           nn.ReLU(), ScaledStdConv(8, 8, 3, gain, bias=bias, groups=2))
    graph, report = _traced(module, (3, 13, 12))
    assert _kinds(graph) == ["std_conv2d", "relu", "std_conv2d"]
    assert [n.layer.gain for n in graph.nodes if n.kind == "std_conv2d"] == [gain, gain]
    _assert_torchs_counts(module, (3, 13, 12), report)
    conv = next(r for r in report.layers if r.kind == "std_conv2d")
    weights = 8 * 3 * 3 * 3
    adds = math.prod(conv.output_shape) if bias else 0
    assert conv.other_ops == adds + (6 + gain) * weights  # the standardization, once


def test_a_weight_computed_otherwise_stays_opaque() -> None:
    """weight_norm-like `v * g / ||v||`: not a standardization, not a plain conv."""

    class Normed(nn.Conv2d):
        def __init__(self):
            super().__init__(3, 4, 3, bias=False)
            self.g = nn.Parameter(torch.ones(4, 1, 1, 1))

        def forward(self, x):
            return F.conv2d(x, self.weight * self.g / self.weight.norm())

    graph, report = _traced(Normed(), (3, 8, 8))
    assert _kinds(graph) == ["opaque"]
    _assert_torchs_counts(Normed(), (3, 8, 8), report)


def test_computed_weight_convs_have_conv2ds_shape_field_and_minimum_input() -> None:
    from cnnstat.analyzers.min_input import min_input_side

    args = {"out_channels": 4, "kernel_size": (3, 3), "stride": (2, 2), "dilation": (2, 1)}
    for layer in (L.FixedConv2d(**args), L.StdConv2d(**args, gain=True)):
        ours = Graph((Node(name="input", layer=L.Input()),
                      Node(name="c", layer=layer, inputs=("input",))), ("c",),
                     ModelMeta(name="t", input=(4, 15, 14)))
        plain = Graph((Node(name="input", layer=L.Input()),
                       Node(name="c", layer=L.Conv2d(**args), inputs=("input",))), ("c",),
                      ModelMeta(name="t", input=(4, 15, 14)))
        assert infer_shapes(ours, (4, 15, 14)) == infer_shapes(plain, (4, 15, 14))
        fields = [receptive_fields(g, infer_shapes(g, (4, 15, 14)))[0]["c"] for g in (ours, plain)]
        assert fields[0] == fields[1]
        assert min_input_side(ours) == min_input_side(plain)


# --- global response norm -----------------------------------------------------------------


def _grn_by_the_paper(x, gamma, beta, eps):
    """ConvNeXt V2, Algorithm 1 (channels last)."""
    gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
    nx = gx / (gx.mean(dim=-1, keepdim=True) + eps)
    return gamma * (x * nx) + beta + x


def test_grn_counts_and_its_module_computes_the_papers_grn() -> None:
    layer = L.GlobalResponseNorm()
    graph = Graph((Node(name="input", layer=L.Input()),
                   Node(name="p", layer=L.Permute(dims=(0, 2, 3, 1)), inputs=("input",)),
                   Node(name="g", layer=layer, inputs=("p",))), ("g",), ModelMeta(name="t"))
    module = build_module(graph, (6, 5, 4))
    grn = module.get_submodule("g")
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    x = torch.randn(2, 6, 5, 4)
    expected = _grn_by_the_paper(x.permute(0, 2, 3, 1), grn.weight, grn.bias, 1e-6)
    torch.testing.assert_close(module(x), expected)
    report = analyze_graph(graph, (6, 5, 4), batch=2)
    row = report.layers[-1]
    params, buffers, macs, out = _torch_counts(module, (6, 5, 4))
    assert (row.params, report.totals.macs, row.output_shape[1:]) == (params, macs, out[1:])
    assert row.params == 2 * 6 and row.other_ops == 6 * 2 * 6 * 5 * 4 + 3 * 2 * 6
    fields, _ = receptive_fields(graph, infer_shapes(graph, (6, 5, 4)))
    assert fields["g"].is_global
    traced = graph_from_module(module, (6, 5, 4)).graph
    assert _kinds(traced) == ["permute", "grn"]


# --- the spec, the builder and export -------------------------------------------------------

SPEC = """\
  - {conv: 8, k: 3, p: 1}
  - {scalar: mul, value: 0.17}
  - {add, from: [input, scalar1], name: res}
  - {std_conv2d: 8, k: 3, p: 1, gain: true}
  - {scalar: mul, learned: true, value: 0.0}
  - {conv: 8, k: 1, from: res, name: b}
  - {tensor_stack: 1, from: [scalar2, b]}
  - {sum: [1]}
  - {fixed_conv2d: 8, k: 3, s: 2, groups: 8}
  - {scalar: rdiv, value: 2}
  - {permute: [0, 2, 3, 1]}
  - {grn, eps: 0.00001}
"""


def test_a_spec_of_every_kind_equals_the_module_the_builder_makes() -> None:
    graph = _load(SPEC, "[8, 12, 10]")
    report = analyze_graph(graph, (8, 12, 10))
    with torch.device("meta"):
        module = build_module(graph, (8, 12, 10))
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = module(torch.empty(1, 8, 12, 10, device="meta"))
    assert (report.totals.params, report.totals.buffers, 2 * report.totals.macs) == \
        (params, buffers, counter.get_total_flops())
    assert report.layers[-1].output_shape == tuple(out.shape)


def test_the_built_module_traces_back_to_the_same_kinds() -> None:
    graph = _load(SPEC, "[8, 12, 10]")
    module = build_module(graph, (8, 12, 10))
    traced = graph_from_module(module, (8, 12, 10)).graph
    assert _kinds(traced) == _kinds(graph)
    assert analyze_graph(traced, (8, 12, 10)).totals == analyze_graph(graph, (8, 12, 10)).totals


def test_every_kind_exports_and_loads_back() -> None:
    graph = _load(SPEC, "[8, 12, 10]")
    exported = spec_from_graph(graph)
    for word in ("scalar", "std_conv2d", "tensor_stack", "fixed_conv2d", "grn", "learned"):
        assert word in exported.text
    again = build_graph(parse(exported.text, "e.yaml"), default_name="t", source=None)
    assert analyze_graph(again, (8, 12, 10)).totals == analyze_graph(graph, (8, 12, 10)).totals
    assert [n.layer for n in again.nodes] == [n.layer for n in graph.nodes]
