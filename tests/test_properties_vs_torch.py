"""Hypothesis: random layer stacks; our shapes, params and MACs equal torch's.

The torch side is built here, directly from the drawn hyper-parameters with torch.nn,
not through cnnstat's builder, so a shared mistake in our builder cannot hide one in the
analyzers. We also require that we reject a stack exactly when torch does (an input too
small for a kernel, say): a tool that accepts what torch rejects reports numbers for a
network that cannot run. NB: torch lets a transposed conv produce an *empty* tensor (a
zero-size dimension) where a conv would raise; we reject zero-size outputs in both cases,
so "torch rejects" here means it raises or yields an empty tensor.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers import analyze_graph
from cnnstat.errors import ShapeError
from cnnstat.ir import Graph, ModelMeta, Node
from cnnstat.ir import layers as L

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def conv(draw, c_in: int):
    groups = draw(st.sampled_from(divisors(c_in)))
    out = groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    bias = draw(st.booleans())
    ours = L.Conv2d(out_channels=out, kernel_size=k, stride=s, padding=p, dilation=d,
                    groups=groups, bias=bias)
    return ours, nn.Conv2d(c_in, out, k, s, p, d, groups, bias), out


@st.composite
def conv_transpose(draw, c_in: int):
    groups = draw(st.sampled_from(divisors(c_in)))
    out = groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    op = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d, strict=True))
    bias = draw(st.booleans())
    ours = L.ConvTranspose2d(out_channels=out, kernel_size=k, stride=s, padding=p,
                             output_padding=op, dilation=d, groups=groups, bias=bias)
    return ours, nn.ConvTranspose2d(c_in, out, k, s, p, op, groups, bias, d), out


@st.composite
def pool(draw, c_in: int):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    ceil = draw(st.booleans())
    if draw(st.booleans()):
        d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        return (L.MaxPool2d(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil),
                nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), c_in)
    return (L.AvgPool2d(kernel_size=k, stride=s, padding=p, ceil_mode=ceil),
            nn.AvgPool2d(k, s, p, ceil), c_in)


@st.composite
def elementwise(draw, c_in: int):
    choice = draw(st.sampled_from(["bn", "relu", "hardsigmoid", "adaptive"]))
    if choice == "bn":
        return L.BatchNorm2d(), nn.BatchNorm2d(c_in), c_in
    if choice == "relu":
        return L.ReLU(), nn.ReLU(), c_in
    if choice == "hardsigmoid":
        return L.Hardsigmoid(), nn.Hardsigmoid(), c_in
    size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return L.AdaptiveAvgPool2d(output_size=size), nn.AdaptiveAvgPool2d(size), c_in


@st.composite
def stacks(draw):
    channels = draw(st.integers(1, 6))
    shape = (channels, draw(st.integers(1, 20)), draw(st.integers(1, 20)))
    ours, theirs = [], []
    for _ in range(draw(st.integers(1, 5))):
        make = draw(st.sampled_from([conv, conv, conv_transpose, pool, elementwise]))
        layer, module, channels = draw(make(channels))
        ours.append(layer)
        theirs.append(module)
    if draw(st.booleans()):
        out = draw(st.integers(1, 10))
        ours += [L.Flatten(), L.Linear(out_features=out, bias=draw(st.booleans()))]
        theirs += [nn.Flatten(), None]  # the Linear needs in_features: filled in below
    return shape, ours, theirs


def graph_of(layers: list[L.Layer]) -> Graph:
    nodes = [Node(name="input", layer=L.Input())]
    for i, layer in enumerate(layers):
        nodes.append(Node(name=f"l{i}", layer=layer, inputs=(nodes[-1].name,)))
    return Graph(tuple(nodes), (nodes[-1].name,), ModelMeta(name="random"))


def torch_run(shape, layers, modules):
    """Forward on meta tensors: per-layer shapes, params, FlopCounterMode/2."""
    x = torch.empty(2, *shape, device="meta")
    shapes = []
    counter = FlopCounterMode(display=False)
    built = []
    with counter, torch.no_grad():
        for layer, module in zip(layers, modules, strict=True):
            if module is None:
                module = nn.Linear(x.shape[-1], layer.out_features, layer.bias, device="meta")
            else:
                module = module.to("meta")
            built.append(module)
            x = module(x)
            shapes.append(tuple(x.shape))
    params = sum(p.numel() for m in built for p in m.parameters())
    return shapes, params, counter.get_total_flops() // 2


@SETTINGS
@given(stacks())
def test_random_stacks_match_torch(case) -> None:
    shape, layers, modules = case
    graph = graph_of(layers)
    try:
        report = analyze_graph(graph, shape, batch=2)
    except ShapeError:
        try:
            shapes, _, _ = torch_run(shape, layers, modules)
        except RuntimeError:
            return
        assert any(0 in s for s in shapes), f"torch accepted it: {shapes}"
        return
    shapes, params, macs = torch_run(shape, layers, modules)
    assert [row.output_shape for row in report.layers] == shapes
    assert report.totals.params == params
    assert report.totals.macs == macs


def torch_accepts(side: int, channels: int, modules) -> bool:
    """torch runs the stack on a 1 x C x side x side meta tensor to a non-empty output."""
    x = torch.empty(1, channels, side, side, device="meta")
    try:
        with torch.no_grad():
            for module in modules:
                x = module.to("meta").eval()(x)  # eval: BatchNorm takes 1x1 maps
                if 0 in x.shape:
                    return False
    except RuntimeError:
        return False
    return True


@SETTINGS
@given(stacks())
def test_min_input_is_the_smallest_side_torch_accepts(case) -> None:
    """Catches a wrong closed form in the minimum-input pass (or its fallback search):
    torch must run the stack at the reported side and refuse one pixel less."""
    shape, layers, modules = case
    if modules[-1] is None:  # a Linear fixes the size: no "minimum" to speak of
        layers, modules = layers[:-2], modules[:-2]
        if not layers:
            return
    nodes = [Node(name="input", layer=L.Input())]
    for i, layer in enumerate(layers):
        nodes.append(Node(name=f"l{i}", layer=layer, inputs=(nodes[-1].name,)))
    graph = Graph(tuple(nodes), (nodes[-1].name,),
                  ModelMeta(name="random", input=(shape[0], 8, 8)))
    from cnnstat.analyzers.min_input import min_input_side

    try:
        side = min_input_side(graph)
    except ShapeError:  # no size works (a kernel wider than an adaptive pool's output)
        assert not any(torch_accepts(s, shape[0], modules) for s in (1, 7, 64, 513))
        return
    assert torch_accepts(side, shape[0], modules), side
    assert side == 1 or not torch_accepts(side - 1, shape[0], modules), side
