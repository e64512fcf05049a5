"""torch's FLOP count of each op, without FlopCounterMode's per-module bookkeeping (issue 23).

`FlopCounterMode` keeps a count per module and op, and to know the module it hooks every
module call in the process (`ModuleTracker`) and flattens every call's arguments; a trace
wants one total. `FlopCount` is a dispatch mode that does what FlopCounterMode's own mode
does with each op, with torch's own formulas (`torch.utils.flop_counter.flop_registry`):
it lets torch decompose a composite op and sees its parts (linear's addmm), skips the
queries of sizes and strides, runs the op and adds the formula's count for its overload
packet. Higher-order operators (`torch.cond`), whose branches FlopCounterMode counts
apart, are not handled: the trace that meets one fails over to the recorded forward,
which counts with FlopCounterMode itself (given `MISSING_FORMULAS` too).
tests/test_flop_count.py checks the counts equal FlopCounterMode's, op by op.

`MISSING_FORMULAS` fills a hole in torch's registry that would be a silent zero: on CPU
tensors (the real-tensor fallback), scaled dot-product attention runs as
`_scaled_dot_product_flash_attention_for_cpu`, which torch 2.13 and 2.14 register no
formula for, so FlopCounterMode counts its QK^T and AV matmuls as nothing (on meta
tensors the same call decomposes into bmm and is counted). It gets torch's own SDPA
formula, `sdpa_flop_count`; a formula torch registers later takes precedence.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, sdpa_flop_count

aten = torch.ops.aten
# Asked of every tensor by torch itself: FlopCounterMode lets them through too.
_QUERIES = frozenset({
    aten.sym_is_contiguous.default, aten.is_contiguous.default,
    aten.is_contiguous.memory_format, aten.is_strides_like_format.default,
    aten.is_non_overlapping_and_dense.default, aten.size.default, aten.sym_size.default,
    aten.stride.default, aten.sym_stride.default, aten.storage_offset.default,
    aten.sym_storage_offset.default, aten.numel.default, aten.sym_numel.default,
    aten.dim.default, torch.ops.prim.layout.default})


def _fused_attention_flops(query, key, value, *args, out_val=None, **kwargs) -> int:
    """torch's SDPA count (2 per multiply-add of QK^T and of AV; grouped-query heads
    broadcast) for a fused attention kernel, from its [B, H, L, E] query, key, value."""
    return sdpa_flop_count(query.shape, key.shape, value.shape)


# FlopCounterMode hands a custom formula the tensors, not only their shapes, when marked so
_fused_attention_flops._get_raw = True  # type: ignore[attr-defined]

# Ops that carry multiply-adds and that torch's registry has no formula for (see above).
MISSING_FORMULAS = {
    packet: _fused_attention_flops
    for packet in (getattr(aten, name, None) for name in (
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_fused_attention_overrideable"))
    if packet is not None and packet not in flop_registry}


class FlopCount(TorchDispatchMode):
    """`total_flops`: torch's FLOPs (2 per multiply-add) of every op run inside."""

    def __init__(self) -> None:
        super().__init__()
        self.total_flops = 0

    def get_total_flops(self) -> int:  # FlopCounterMode's name, for the recorder
        return self.total_flops

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _QUERIES:
            return NotImplemented
        if func is not torch.ops.prim.device.default:
            with self:  # the parts of a composite op come back here
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket) or MISSING_FORMULAS.get(
            func._overloadpacket)
        if formula is not None:
            self.total_flops += formula(*args, **kwargs, out_val=out)
        return out
