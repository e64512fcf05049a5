"""pixel_shuffle (ESPCN's sub-pixel step, nn.PixelShuffle) against torch: shapes of a
forward on meta, parameters(), FlopCounterMode / 2, receptive fields by gradient; the
torch frontend on nn.PixelShuffle and F.pixel_shuffle; the spec entry, its error, export.
The kind was added as docs/architecture.md's worked example of a new kind.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import FnModule, gradient_and_field_spans, spec_graph
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers import analyze_graph
from cnnstat.errors import CnnstatError
from cnnstat.frontends import graph_from_module
from cnnstat.spec.loader import build_graph
from cnnstat.spec.yaml_tree import parse
from cnnstat.writer import spec_from_graph


def _spec(c: int, r: int, h: int, w: int) -> str:
    return (f"name: espcn\ninput: [{c}, {h}, {w}]\nlayers:\n"
            f"  - {{conv: {c * r * r}, k: 3, p: 1}}\n  - {{pixel_shuffle: {r}}}\n"
            f"  - {{conv: 2, k: 3}}\n")


def _espcn(c: int, r: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c, c * r * r, 3, padding=1), nn.PixelShuffle(r),
                         nn.Conv2d(c, 2, 3))


@settings(max_examples=20, deadline=None)
@given(c=st.integers(1, 4), r=st.integers(1, 4), h=st.integers(1, 9), w=st.integers(1, 9))
def test_shapes_params_and_macs_are_torchs(c, r, h, w) -> None:
    net = _espcn(c, r).to("meta").eval()
    x = torch.empty(2, c, h, w, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = net(x) if min(h, w) * r >= 3 else None
    if out is None:  # the last 3x3 conv does not fit
        with pytest.raises(CnnstatError, match="too small"):
            analyze_graph(spec_graph(_spec(c, r, h, w)), (c, h, w), batch=2)
        return
    report = analyze_graph(spec_graph(_spec(c, r, h, w)), (c, h, w), batch=2)
    assert [row.output_shape for row in report.layers] == [
        tuple(m(t).shape) for m, t in _outputs(net, x)]
    assert report.totals.params == sum(p.numel() for p in net.parameters())
    assert report.totals.macs == counter.get_total_flops() // 2


def _outputs(net: nn.Sequential, x):
    for module in net:
        yield module, x
        x = module(x)


@pytest.mark.parametrize("r", [2, 3])
def test_fields_equal_the_gradient(r) -> None:
    """Output unit j reads input unit j // r: a nearest upsample by r, measured unit by
    unit on the whole input."""
    graph = spec_graph(_spec(1, r, 5, 5))
    measured, ours = gradient_and_field_spans(graph, units=((0, 0), (1, 2), (3, 1), (4, 4)))
    assert measured == ours


@pytest.mark.parametrize("module", [nn.PixelShuffle(2), FnModule(lambda x: F.pixel_shuffle(x, 2))])
def test_the_torch_frontend_reads_the_module_and_the_function(module) -> None:
    traced = graph_from_module(module, (8, 5, 6))
    assert [n.kind for n in traced.graph][1:] == ["pixel_shuffle"]
    assert traced.graph.nodes[1].layer.upscale_factor == 2
    assert analyze_graph(traced.graph, (8, 5, 6)).layers[-1].output_shape == \
        tuple(module(torch.empty(1, 8, 5, 6, device="meta")).shape)


def test_channels_not_divisible_by_r_squared_say_so() -> None:
    graph = spec_graph("name: t\ninput: [6, 4, 4]\nlayers:\n  - {pixel_shuffle: 2}\n")
    with pytest.raises(CnnstatError, match="channels 6 are not divisible by upscale_factor"):
        analyze_graph(graph, (6, 4, 4))
    with pytest.raises(RuntimeError):  # torch refuses it too
        nn.PixelShuffle(2)(torch.empty(1, 6, 4, 4, device="meta"))


def test_export_loads_back_as_the_same_graph() -> None:
    graph = spec_graph(_spec(3, 2, 6, 6))
    again = build_graph(parse(spec_from_graph(graph).text, "e.yaml"), default_name="t",
                        source=None)
    assert [n.layer for n in again] == [n.layer for n in graph]
