"""`cnnstat.frontends.counting.FlopCount` counts what torch's FlopCounterMode counts, op by
op (issue 23): every op that carries FLOPs in torch's registry (convolutions of each rank,
transposed, grouped, dilated; mm, addmm, bmm, baddbmm and the matmuls and linears that
decompose into them; scaled dot-product attention, einsum, multi-head attention) and ops
that carry none, on meta tensors as a trace runs them, and on CPU tensors as the
real-tensor fallback does."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.frontends.counting import MISSING_FORMULAS, FlopCount


def _t(*shape):
    return torch.randn(*shape)


CASES = {
    "conv1d": lambda: F.conv1d(_t(1, 3, 20), _t(6, 3, 5), _t(6), stride=2),
    "conv2d": lambda: F.conv2d(_t(1, 4, 9, 9), _t(8, 2, 3, 3), padding=1, groups=2),
    "conv2d_dilated": lambda: F.conv2d(_t(2, 3, 16, 16), _t(4, 3, 3, 3), dilation=2),
    "conv3d": lambda: F.conv3d(_t(1, 2, 4, 6, 6), _t(3, 2, 3, 3, 3), padding=1),
    "conv_transpose2d": lambda: F.conv_transpose2d(_t(1, 4, 5, 5), _t(4, 6, 2, 2), stride=2),
    "conv_transpose1d": lambda: F.conv_transpose1d(_t(1, 4, 5), _t(4, 2, 3), groups=2),
    "linear": lambda: F.linear(_t(2, 7, 16), _t(5, 16), _t(5)),
    "linear_no_bias": lambda: F.linear(_t(3, 16), _t(5, 16)),
    "mm": lambda: torch.mm(_t(4, 6), _t(6, 3)),
    "addmm": lambda: torch.addmm(_t(3), _t(4, 6), _t(6, 3)),
    "bmm": lambda: torch.bmm(_t(2, 4, 6), _t(2, 6, 3)),
    "baddbmm": lambda: torch.baddbmm(_t(2, 4, 3), _t(2, 4, 6), _t(2, 6, 3)),
    "matmul_4d": lambda: _t(2, 3, 4, 6) @ _t(2, 3, 6, 5),
    "matmul_vector": lambda: _t(6) @ _t(6, 4),
    "matmul_broadcast": lambda: _t(2, 1, 4, 6) @ _t(3, 6, 5),
    "einsum": lambda: torch.einsum("bij,bjk->bik", _t(2, 3, 4), _t(2, 4, 5)),
    "sdpa": lambda: F.scaled_dot_product_attention(_t(1, 2, 5, 8), _t(1, 2, 7, 8),
                                                   _t(1, 2, 7, 8)),
    "sdpa_causal": lambda: F.scaled_dot_product_attention(_t(1, 2, 5, 8), _t(1, 2, 5, 8),
                                                          _t(1, 2, 5, 8), is_causal=True),
    "attention_module": lambda: nn.MultiheadAttention(16, 4, batch_first=True)(
        _t(1, 5, 16), _t(1, 5, 16), _t(1, 5, 16))[0],
    "batch_norm": lambda: F.batch_norm(_t(1, 4, 5, 5), _t(4), _t(4).abs(), _t(4), _t(4)),
    "elementwise": lambda: torch.relu(_t(3, 4)) * 2 + _t(4),
    "cat_softmax": lambda: torch.cat([_t(2, 3), _t(2, 3)]).softmax(-1).mean(),
}


def _count(mode, device: str, case) -> int:
    with torch.device(device), torch.no_grad(), mode:
        case()
    return mode.get_total_flops()


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_counts_equal_flop_counter_mode(name, device):
    torch.manual_seed(0)
    ours = _count(FlopCount(), device, CASES[name])
    theirs = _count(FlopCounterMode(display=False, custom_mapping=MISSING_FORMULAS), device,
                    CASES[name])
    assert ours == theirs, (name, device)
    # and what the op costs is the same on meta tensors, where every op is in torch's
    # registry, as on CPU tensors, where attention runs a kernel it is not
    assert ours == _count(FlopCounterMode(display=False), "meta", CASES[name]), name
    carries = name not in {"batch_norm", "elementwise", "cat_softmax"}
    assert (ours > 0) == carries, name


def test_cpu_attention_is_not_a_silent_zero():
    """On CPU tensors attention runs torch's flash kernel, which the registry of torch
    2.13 and 2.14 has no formula for: FlopCounterMode alone counts it as nothing, and the
    real-tensor fallback reported zero MACs for it. Both counters the frontend uses count
    it. By hand: 2 FLOPs per multiply-add of QK^T (5x8 by 8x7) and AV (5x7 by 7x8), two
    heads."""
    by_hand = 2 * 2 * (5 * 8 * 7 + 5 * 7 * 8)
    assert _count(FlopCount(), "cpu", CASES["sdpa"]) == by_hand
    recorder_counter = FlopCounterMode(display=False, custom_mapping=MISSING_FORMULAS)
    assert _count(recorder_counter, "cpu", CASES["sdpa"]) == by_hand


class _MaskedAttention(nn.Module):
    """nn.MultiheadAttention with a mask stays one opaque node; `reads_values` makes the
    forward depend on a tensor's value, so fx and meta tensors fail and it runs on CPU."""

    def __init__(self, reads_values: bool):
        super().__init__()
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.register_buffer("mask", torch.zeros(16, 16, dtype=torch.bool))
        self.reads_values = reads_values

    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2)
        if self.reads_values and tokens.sum() > -1e9:
            tokens = tokens + 0
        return self.attention(tokens, tokens, tokens, attn_mask=self.mask,
                              need_weights=False)[0]


def test_opaque_attention_on_the_real_tensor_fallback_counts_its_matmuls():
    from cnnstat.analyzers import analyze_graph
    from cnnstat.frontends import graph_from_module

    projections = 16 * 16 * 3 * 16 + 16 * 16 * 16  # in and out, 16 tokens of 16
    attention = 2 * 16 * 16 * 16  # QK^T and AV over 16 tokens, 16 channels in all
    meta = graph_from_module(_MaskedAttention(reads_values=False).eval(), (16, 4, 4))
    real = graph_from_module(_MaskedAttention(reads_values=True).eval(), (16, 4, 4))
    assert "real tensors" in real.diagnostics[0]
    for traced in (meta, real):
        assert analyze_graph(traced.graph).totals.macs == projections + attention


def test_counts_add_up_across_ops_and_modes():
    """A total over several ops, entered twice: each entry adds on."""
    counter, reference = FlopCount(), FlopCounterMode(display=False)
    for mode in (counter, reference):
        with torch.device("meta"), torch.no_grad(), mode:
            for name in ("conv2d", "linear", "sdpa"):
                CASES[name]()
    with torch.device("meta"), counter:
        CASES["mm"]()
    assert counter.total_flops == reference.get_total_flops() + 2 * 4 * 6 * 3
