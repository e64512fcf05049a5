"""Swin's kinds against torch: `window_attention` (versions 1 and 2) and `patch_merge`, on
modules the builder makes, on meta tensors: output shapes, parameters(), buffers() and
FlopCounterMode / 2 (random sizes by hypothesis, odd sizes that need padding, shifts
that the rule drops); a spec with both, built, exported and traced back; receptive fields
against gradients. torchvision's own modules and models are checked in
tests/test_window_attention_torchvision.py (oracle stage).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import spec_graph, torch_truth
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers import analyze_graph
from cnnstat.analyzers.ops import OPS
from cnnstat.analyzers.params import PARAMS
from cnnstat.analyzers.shapes import SHAPES
from cnnstat.builder.window_modules import PatchMerge, WindowAttention
from cnnstat.frontends import graph_from_module
from cnnstat.ir import layers as L
from cnnstat.writer import spec_from_graph


def _counted(module: torch.nn.Module, shape: tuple[int, ...]):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = module.to("meta").eval()(torch.empty(*shape, device="meta"))
    return tuple(out.shape), counter.get_total_flops() // 2


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(1, 9), w=st.integers(1, 9), heads=st.integers(1, 3),
       head_dim=st.integers(1, 3), wh=st.integers(1, 4), ww=st.integers(1, 4),
       shift=st.booleans(), qkv_bias=st.booleans(), proj_bias=st.booleans(),
       version=st.sampled_from([1, 2]))
def test_window_attention_matches_torch(n, h, w, heads, head_dim, wh, ww, shift, qkv_bias,
                                        proj_bias, version) -> None:
    """Sizes that are not multiples of the window are padded; a shift is dropped on an axis
    one window covers: both change the counts, as in torchvision."""
    c = heads * head_dim
    layer = L.WindowAttention(num_heads=heads, window_size=(wh, ww),
                              shift_size=(wh // 2, ww // 2) if shift else (0, 0),
                              qkv_bias=qkv_bias, proj_bias=proj_bias, version=version)
    module = WindowAttention(layer, c)
    ins = ((n, h, w, c),)
    out, macs = _counted(module, ins[0])
    shape = SHAPES.get(L.WindowAttention)(layer, ins)
    counted = PARAMS.get(L.WindowAttention)(layer, ins, shape)
    assert shape == out
    assert counted.params == sum(p.numel() for p in module.parameters())
    assert counted.buffers == sum(b.numel() for b in module.buffers())
    assert OPS.get(L.WindowAttention)(layer, ins, shape).macs == macs


def test_macs_by_hand() -> None:
    """Swin-T's first block: 56x56 tokens of C = 96, 3 heads, 7x7 windows. qkv and proj:
    3136*96*288 + 3136*96*96 = 115,605,504; QK^T and AV: 2*3136*49*96 = 29,503,488.
    Swin v2 adds its bias MLP on the 13x13 table: 169*(2*512 + 512*3) = 432,640."""
    ins = ((1, 56, 56, 96),)
    v1 = L.WindowAttention(num_heads=3, window_size=(7, 7))
    v2 = L.WindowAttention(num_heads=3, window_size=(7, 7), version=2)
    assert OPS.get(L.WindowAttention)(v1, ins, ins[0]).macs == 115_605_504 + 29_503_488
    assert OPS.get(L.WindowAttention)(v2, ins, ins[0]).macs == \
        115_605_504 + 29_503_488 + 432_640


def test_other_ops_by_hand() -> None:
    """8x8 tokens of C = 4, 2 heads, 4x4 windows (T = 16), shifted: scores 64*2*16 = 2048,
    6 each (scale, bias, softmax's 3, mask); bias adds 64*(12 + 4)."""
    layer = L.WindowAttention(num_heads=2, window_size=(4, 4), shift_size=(2, 2))
    ins = ((1, 8, 8, 4),)
    assert OPS.get(L.WindowAttention)(layer, ins, ins[0]).other_ops == 2048 * 6 + 64 * 16


@pytest.mark.parametrize(("h", "w"), [(4, 6), (5, 7), (1, 1)])
def test_patch_merge_matches_torch(h, w) -> None:
    ins = ((2, h, w, 3),)
    out, macs = _counted(PatchMerge(), ins[0])
    assert SHAPES.get(L.PatchMerge)(L.PatchMerge(), ins) == out
    assert macs == 0 == OPS.get(L.PatchMerge)(L.PatchMerge(), ins, out).macs


def test_layer_checks_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="smaller than window_size"):
        L.WindowAttention(num_heads=1, window_size=(4, 4), shift_size=(4, 0))
    with pytest.raises(ValueError, match="version must be 1"):
        L.WindowAttention(num_heads=1, window_size=(4, 4), version=3)
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        SHAPES.get(L.WindowAttention)(L.WindowAttention(num_heads=3, window_size=(2, 2)),
                                      ((1, 4, 4, 8),))
    with pytest.raises(ValueError, match=r"tokens \[N, H, W, C\]"):
        SHAPES.get(L.PatchMerge)(L.PatchMerge(), ((1, 8, 8),))


# A small Swin: patch embedding, two blocks (plain and shifted windows), a patch merge with
# its norm and reduction, a v2 block on an odd-sized map (padded), and the head.
SPEC = """
name: tiny_swin
input: [3, 30, 34]
layers:
  - {conv: 8, k: 2, s: 2, name: embed}
  - {permute: [0, 2, 3, 1], name: tokens}
  - {ln: channels_last, name: norm1}
  - {window_attention: 2, window_size: 4, name: attn1}
  - {add, from: [attn1, tokens], name: res1}
  - {window_attention: 2, window_size: 4, shift_size: 2, from: res1, name: attn2}
  - {add, from: [attn2, res1], name: res2}
  - {patch_merge, name: merge}
  - {ln: channels_last, name: norm2}
  - {fc: 16, bias: false, name: reduction}
  - {window_attention: 4, window_size: [3, 5], shift_size: [1, 2], version: 2, qkv_bias: false,
     name: attn3}
  - {permute: [0, 3, 1, 2], name: back}
  - {gap, name: pool}
  - {flatten, name: flat}
  - {fc: 10, name: head}
"""


def test_spec_equals_the_built_module_exports_and_traces_back() -> None:
    graph = spec_graph(SPEC)
    report = analyze_graph(graph)
    truth = torch_truth(graph)
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == \
        (truth.params, truth.buffers, truth.macs)
    shapes = {row.name: row.output_shape for row in report.layers}
    assert shapes["merge"] == (1, 8, 9, 32) and shapes["head"] == (1, 10)
    again = analyze_graph(spec_graph(spec_from_graph(graph).text))
    assert again.totals == report.totals
    from cnnstat.builder import build_module

    traced = graph_from_module(build_module(graph, (3, 30, 34)), (3, 30, 34)).graph
    kinds = {node.name: node.kind for node in traced.nodes}
    assert "opaque" not in kinds.values()
    assert [kinds[n] for n in ("attn1", "attn2", "merge", "attn3")] == \
        ["window_attention", "window_attention", "patch_merge", "window_attention"]
    assert analyze_graph(traced).totals == report.totals


def _measured_span(module, name, shape, unit, axis) -> tuple[int, int]:
    """Input pixels (along `axis`) whose gradient at token `unit` of layer `name` is above
    1e-30 of the largest: the masked tokens weigh e^-100 (the mask's -100), taken as
    unread."""
    seen = []
    hook = module.get_submodule(name).register_forward_hook(lambda m, i, o: seen.append(o))
    x = torch.randn(1, *shape, dtype=torch.float64, requires_grad=True)
    module(x)
    hook.remove()
    seen[0][(0, *unit)].sum().backward()
    grad = x.grad.abs().sum(dim=(0, 1, 3 - axis))
    hit = (grad > grad.max() * 1e-30).nonzero().flatten()
    return int(hit.min()), int(hit.max())


def test_receptive_fields_equal_gradients_token_by_token() -> None:
    """The field is window-bounded and differs from token to token (periodic with the
    window): checked for every token of every window layer, per axis."""
    from cnnstat.analyzers.engine import infer_shapes
    from cnnstat.analyzers.rf import receptive_fields
    from cnnstat.builder import build_module

    graph = spec_graph(SPEC)
    shapes = infer_shapes(graph, (3, 30, 34))
    fields, notes = receptive_fields(graph, shapes)
    assert notes == ()
    module = build_module(graph, (3, 30, 34)).double().eval()
    for name in ("attn1", "attn2", "merge", "attn3"):
        _, h, w, _ = shapes[name]
        for axis, size in ((0, h), (1, w)):
            for unit in range(size):
                token = (unit, 0) if axis == 0 else (0, unit)
                want = fields[name].region(token, clipped=True)[axis]
                assert _measured_span(module, name, (3, 30, 34), token, axis) == want, \
                    (name, axis, unit)
    assert fields["pool"].is_global
