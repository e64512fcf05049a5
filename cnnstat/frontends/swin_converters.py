"""Converters of Swin's window attention and patch merge (cnnstat/ir/window_layers.py):
torchvision's ShiftedWindowAttention and ShiftedWindowAttentionV2 modules, kept whole
(their forward calls `shifted_window_attention`, which torchvision keeps whole for fx
anyway), the builder's own WindowAttention and PatchMerge, and torchvision's
`_patch_merging_pad` function. Registered into `cnnstat.frontends.converters`' registries
(by qualified class name: neither torchvision nor the builder is imported here); the same
rules hold: None keeps the call opaque, and a layer stands only when its shape, params
and buffers are torch's.
"""

from __future__ import annotations

from torch import nn

from cnnstat.frontends.converters import NAMED_MODULES, Call, register_function
from cnnstat.ir import layers as L

_TORCHVISION = "torchvision.models.swin_transformer"
_BUILT = "cnnstat.builder.window_modules"


def _window_attention(m: nn.Module, call: Call) -> L.Layer | None:
    """Swin's attention with its position bias: version 2 when it has v2's position-bias
    MLP and logit scale. Dropout in a training call keeps it opaque."""
    if m.training and (getattr(m, "attention_dropout", 0) or getattr(m, "dropout", 0)):
        return None
    window, shift = tuple(m.window_size), tuple(m.shift_size)
    qkv, proj = getattr(m, "qkv", None), getattr(m, "proj", None)
    if len(window) != 2 or len(shift) != 2 or not isinstance(qkv, nn.Linear) \
            or not isinstance(proj, nn.Linear):
        return None
    version = 2 if hasattr(m, "cpb_mlp") and hasattr(m, "logit_scale") else 1
    try:
        return L.WindowAttention(num_heads=int(m.num_heads), window_size=window,
                                 shift_size=shift, qkv_bias=qkv.bias is not None,
                                 proj_bias=proj.bias is not None, version=version)
    except ValueError:  # a shift as large as the window: not Swin's rule
        return None


for _name in (f"{_TORCHVISION}.ShiftedWindowAttention",
              f"{_TORCHVISION}.ShiftedWindowAttentionV2", f"{_BUILT}.WindowAttention"):
    NAMED_MODULES[_name] = _window_attention


def _patch_merge_module(m: nn.Module, call: Call) -> L.Layer:
    return L.PatchMerge()


NAMED_MODULES[f"{_BUILT}.PatchMerge"] = _patch_merge_module


@register_function("patch_merge")
def _patch_merge(call: Call) -> L.Layer:
    """torchvision's `_patch_merging_pad(x)` (PatchMerging's gather, before its norm and
    linear)."""
    return L.PatchMerge()
