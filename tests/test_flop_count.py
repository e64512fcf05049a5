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

from cnnstat.frontends.counting import FlopCount


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
    theirs = _count(FlopCounterMode(display=False), device, CASES[name])
    assert ours == theirs, (name, device)
    carries = name not in {"batch_norm", "elementwise", "cat_softmax"}
    if device == "cpu" and name.startswith("sdpa"):  # CPU's flash kernel: torch counts none
        carries = False
    assert (ours > 0) == carries, name


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
