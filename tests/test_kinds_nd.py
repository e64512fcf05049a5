"""1-D and 3-D conv, pooling and batch norm, checked against torch's own modules built
here (nn.Conv1d, nn.MaxPool3d, ...): parameters(), buffers(), FlopCounterMode / 2 and
output shapes on meta, on random stacks (hypothesis); the spec language, the builder,
export and the torch frontend (modules and F. calls) round-trip to the same numbers.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import stack_counts
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers import analyze_graph
from cnnstat.builder.torch_module import build_module
from cnnstat.errors import InputTooSmallError
from cnnstat.frontends import graph_from_module
from cnnstat.ir import layers as L
from cnnstat.ir.graph import Graph, ModelMeta, Node
from cnnstat.spec.loader import build_graph
from cnnstat.spec.yaml_tree import parse
from cnnstat.writer import spec_from_graph


def load_spec_text(text: str, name: str) -> Graph:
    return build_graph(parse(text, name), default_name="t", source=name)


def chain(layers: list[L.Layer]) -> Graph:
    nodes = [Node(name="input", layer=L.Input())]
    for i, layer in enumerate(layers):
        nodes.append(Node(name=f"l{i}", layer=layer, inputs=(nodes[-1].name,)))
    return Graph(tuple(nodes), (nodes[-1].name,), ModelMeta(name="t"))


def _pick(rank: int, draw, c: int):
    """One (our layer, torch's module, channels out) triple of a random kind."""
    nd = {1: (L.Conv1d, L.MaxPool1d, L.AvgPool1d, L.BatchNorm1d, L.AdaptiveAvgPool1d),
          3: (L.Conv3d, L.MaxPool3d, L.AvgPool3d, L.BatchNorm3d, L.AdaptiveAvgPool3d)}[rank]
    tnn = {1: (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d, nn.BatchNorm1d, nn.AdaptiveAvgPool1d),
           3: (nn.Conv3d, nn.MaxPool3d, nn.AvgPool3d, nn.BatchNorm3d, nn.AdaptiveAvgPool3d)}[rank]
    which = draw(st.sampled_from(["conv", "max", "avg", "bn", "adaptive", "adaptive_max"]))
    k = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    if which == "conv":
        groups = draw(st.sampled_from([g for g in (1, 2, c) if c % g == 0]))
        out = groups * draw(st.integers(1, 3))
        d = tuple(draw(st.integers(1, 2)) for _ in range(rank))
        p = tuple(draw(st.integers(0, 2)) for _ in range(rank))
        bias = draw(st.booleans())
        return (nd[0](out_channels=out, kernel_size=k, stride=s, padding=p, dilation=d,
                      groups=groups, bias=bias),
                tnn[0](c, out, k, s, p, d, groups, bias), out)
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    ceil = draw(st.booleans())
    if which == "max":
        return nd[1](kernel_size=k, stride=s, padding=p, ceil_mode=ceil), \
            tnn[1](k, s, p, ceil_mode=ceil), c
    if which == "avg":
        include = draw(st.booleans())
        return nd[2](kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                     count_include_pad=include), tnn[2](k, s, p, ceil, include), c
    if which == "bn":
        affine = draw(st.booleans())
        return nd[3](affine=affine), tnn[3](c, affine=affine), c
    size = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    if which == "adaptive_max":
        return (L.AdaptiveMaxPool1d if rank == 1 else L.AdaptiveMaxPool3d)(output_size=size), \
            (nn.AdaptiveMaxPool1d if rank == 1 else nn.AdaptiveMaxPool3d)(size), c
    return nd[4](output_size=size), tnn[4](size), c


@pytest.mark.parametrize("rank", [1, 3])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_random_stacks_match_torch(rank, data) -> None:
    c = data.draw(st.integers(1, 4))
    sizes = tuple(data.draw(st.integers(6, 12)) for _ in range(rank))
    ours, theirs, channels = [], [], c
    for _ in range(data.draw(st.integers(1, 4))):
        layer, module, channels = _pick(rank, data.draw, channels)
        ours.append(layer)
        theirs.append(module)
    try:
        shapes, params, buffers, macs = stack_counts(theirs, (c, *sizes))
    except RuntimeError as refused:  # torch refuses the stack (too small an input): so must we
        with pytest.raises(InputTooSmallError):
            analyze_graph(chain(ours), (c, *sizes), batch=2)
            pytest.fail(f"torch refused {ours}: {refused}")
        return
    report = analyze_graph(chain(ours), (c, *sizes), batch=2)
    assert [row.output_shape for row in report.layers] == shapes
    assert (report.totals.params, report.totals.buffers) == (params, buffers)
    assert report.totals.macs == macs


def test_batch_norm1d_takes_features_after_a_flatten() -> None:
    ours = chain([L.Flatten(), L.BatchNorm1d()])
    shapes, params, buffers, _ = stack_counts([nn.Flatten(), nn.BatchNorm1d(48)], (3, 4, 4))
    report = analyze_graph(ours, (3, 4, 4), batch=2)
    assert report.layers[-1].output_shape == shapes[-1]
    assert (report.totals.params, report.totals.buffers) == (params, buffers) == (96, 97)


def test_other_ops_follow_the_2d_conventions() -> None:
    """Conv bias 1 add per output, pooling prod(k) per output, BN 2 per element (the
    batch_norm2d / max_pool2d lines of docs/conventions.md), by hand on one small case."""
    report = analyze_graph(chain([
        L.Conv3d(out_channels=2, kernel_size=(3, 3, 3)),  # 3x4x4 -> 1x2x2 per channel
        L.BatchNorm3d(), L.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2)),
    ]), (1, 3, 4, 4))
    conv, bn, pool = report.layers
    assert (conv.macs, conv.other_ops) == (2 * 1 * 2 * 2 * 27, 2 * 1 * 2 * 2)
    assert (bn.other_ops, pool.other_ops, pool.output_shape) == (16, 4 * 2, (1, 2, 1, 1, 1))


SPEC_1D = """
name: audio
input: [2, 64]
layers:
  - {conv1d: 8, k: 5, s: 2, p: same}
  - bn1d
  - relu
  - {maxpool1d: 3, s: 2, p: 1}
  - {conv1d: 16, k: 3, d: 2, g: 2, bias: false}
  - {avgpool1d: 2, ceil_mode: true}
  - gap1d
  - flatten
  - {fc: 5}
"""

SPEC_3D = """
name: clip
input: [3, 8, 32, 32]
layers:
  - {conv3d: 8, k: [3, 7, 7], s: [1, 2, 2], p: [1, 3, 3], bias: false}
  - bn3d
  - relu
  - {maxpool3d: [1, 3, 3], s: [1, 2, 2], p: [0, 1, 1]}
  - {conv3d: 8, k: 3, p: same, g: 4}
  - {avgpool3d: 2, count_include_pad: false}
  - {adaptive_avgpool3d: [1, 2, 2]}
  - {adaptive_maxpool3d: [1, 2, 1]}
  - gap3d
"""


def _torch_1d() -> list[nn.Module]:
    return [nn.Conv1d(2, 8, 5, 2, padding=2), nn.BatchNorm1d(8), nn.ReLU(),
            nn.MaxPool1d(3, 2, 1), nn.Conv1d(8, 16, 3, dilation=2, groups=2, bias=False),
            nn.AvgPool1d(2, ceil_mode=True), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
            nn.Linear(16, 5)]


def _torch_3d() -> list[nn.Module]:
    return [nn.Conv3d(3, 8, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False), nn.BatchNorm3d(8),
            nn.ReLU(), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            nn.Conv3d(8, 8, 3, padding="same", groups=4),
            nn.AvgPool3d(2, count_include_pad=False), nn.AdaptiveAvgPool3d((1, 2, 2)),
            nn.AdaptiveMaxPool3d((1, 2, 1)), nn.AdaptiveAvgPool3d(1)]


@pytest.mark.parametrize(("text", "modules", "shape"), [
    (SPEC_1D, _torch_1d, (2, 64)), (SPEC_3D, _torch_3d, (3, 8, 32, 32)),
], ids=["1d", "3d"])
def test_specs_equal_torch_and_export_reads_back(text, modules, shape) -> None:
    """Every layer's shape, params, buffers and MACs; the exported spec reads back to the
    same totals. (SPEC_1D's strided 'same' conv is refused, as torch refuses it: the next
    test; here it is written with its explicit padding.)"""
    graph = load_spec_text(text.replace("s: 2, p: same", "s: 2, p: 2"), "t.yaml")
    shapes, params, buffers, macs = stack_counts(modules(), shape, batch=1)
    report = analyze_graph(graph)
    assert [row.output_shape for row in report.layers] == shapes
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == \
        (params, buffers, macs)
    again = analyze_graph(load_spec_text(spec_from_graph(graph).text, "again.yaml"))
    assert again.totals == report.totals
    assert [r.output_shape for r in again.layers] == shapes


def test_same_padding_with_a_stride_is_refused_as_torch_refuses_it() -> None:
    with pytest.raises(ValueError, match="stride"):
        nn.Conv1d(2, 8, 5, 2, padding="same")
    with pytest.raises(Exception, match="padding 'same' needs stride 1"):
        load_spec_text(SPEC_1D, "t.yaml")


def test_built_modules_are_torch_modules_with_its_counts() -> None:
    graph = load_spec_text(SPEC_3D, "t.yaml")
    built = build_module(graph)
    kinds = {type(m) for m in built.modules()}
    assert {nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AvgPool3d,
            nn.AdaptiveAvgPool3d} <= kinds
    _, params, buffers, _ = stack_counts(_torch_3d(), (3, 8, 32, 32), batch=1)
    assert sum(p.numel() for p in built.parameters()) == params
    assert sum(b.numel() for b in built.buffers()) == buffers


class Functional1d(nn.Module):
    """The F. spellings of the 1-D / 3-D pools."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 6, 3)
        self.conv3 = nn.Conv3d(6, 4, 1)

    def forward(self, x):
        x = F.max_pool1d(self.conv(x), 2, ceil_mode=True)
        x = F.avg_pool1d(x, 3, 1, 1)
        x = F.adaptive_max_pool1d(F.adaptive_avg_pool1d(x, 5), 4)
        x = self.conv3(x.reshape(x.shape[0], 6, 1, 2, 2))
        x = F.max_pool3d(x, (1, 2, 1))
        x = F.avg_pool3d(x, 1)
        return F.adaptive_max_pool3d(F.adaptive_avg_pool3d(x, 1), 1)


@pytest.mark.parametrize(("module", "shape"), [
    (lambda: nn.Sequential(*_torch_1d()), (2, 64)),
    (lambda: nn.Sequential(*_torch_3d()), (3, 8, 32, 32)),
    (Functional1d, (3, 20)),
], ids=["1d-modules", "3d-modules", "functions"])
def test_torch_frontend_converts_every_call(module, shape) -> None:
    model = module()
    traced = graph_from_module(model, shape)
    kinds = [node.kind for node in traced.graph.nodes[1:]]
    assert "opaque" not in kinds, kinds
    report = analyze_graph(traced.graph)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = model.to("meta").eval()(torch.empty(1, *shape, device="meta"))
    assert report.layers[-1].output_shape == tuple(out.shape)
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.totals.macs == counter.get_total_flops() // 2


def test_avg_pool3d_refuses_an_input_smaller_than_its_kernel_as_torch_does() -> None:
    """torch's avg_pool3d checks the input against the kernel before padding (a padded
    1x3x1 window on a 2-high input would otherwise give 2 outputs); max_pool3d does not."""
    x = torch.empty(1, 1, 6, 2, 6, device="meta")
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        nn.AvgPool3d((1, 3, 1), 1, (0, 1, 0))(x)
    assert tuple(nn.MaxPool3d((1, 3, 1), 1, (0, 1, 0))(x).shape) == (1, 1, 6, 2, 6)
    avg = L.AvgPool3d(kernel_size=(1, 3, 1), stride=(1, 1, 1), padding=(0, 1, 0))
    with pytest.raises(InputTooSmallError, match="smaller than the kernel"):
        analyze_graph(chain([avg]), (1, 6, 2, 6))
    mx = L.MaxPool3d(kernel_size=(1, 3, 1), stride=(1, 1, 1), padding=(0, 1, 0))
    assert analyze_graph(chain([mx]), (1, 6, 2, 6)).layers[-1].output_shape == (1, 1, 6, 2, 6)


@pytest.mark.parametrize(("input_", "entries", "message"), [
    ("[3, 8, 32, 32]", ["{conv3d: 8, k: [3, 3]}"],
     "4:20: error: layer 'conv1' (conv3d): kernel_size must be one value or [d, h, w]"),
    ("[3, 32, 32]", ["{conv1d: 8, k: 3}"],
     "4:5: error: layer 'conv1' (conv1d): needs an input [N, C, L], got [1, 3, 32, 32]"),
    ("[16, 30]", ["{mha: 4}"], "embed_dim 30 is not divisible by num_heads 4"),
    ("[16, 32]", ["{fc: 8, name: a}", "{sdpa: null, from: [a, input]}"],
     "takes one input (self-attention) or three (query, key, value), got 2"),
], ids=["3d-kernel", "1d-on-image", "heads", "sdpa-inputs"])
def test_bad_specs_fail_with_a_located_line_and_exit_2(tmp_path, input_, entries,
                                                       message) -> None:
    from typer.testing import CliRunner

    from cnnstat.cli import app

    spec = tmp_path / "bad.yaml"
    spec.write_text(f"name: bad\ninput: {input_}\nlayers:\n"
                    + "".join(f"  - {e}\n" for e in entries))
    result = CliRunner().invoke(app, ["summary", str(spec)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
