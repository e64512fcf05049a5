"""Converters for the kinds of `cnnstat/ir/tensor_layers.py` (imported by converters.py):
nn.GroupNorm and F.group_norm, the nn.*Pad* modules and F.pad, Tensor.mean / sum and
torch.mean / sum, and torch.split / chunk / unbind (Tensor methods too).

A split, chunk or unbind returns a tuple: its converter gives part 0's layer and the
assembler makes one node per part, `name[i]`, each with its own `index`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cnnstat.frontends.converters import Call, register_function, register_module
from cnnstat.ir import layers as L


def _or_none(make: Callable[[], L.Layer]) -> L.Layer | None:
    """The layer, or None where its own checks refuse this call (a split of the batch):
    then the op stays opaque and torch counts it."""
    try:
        return make()
    except ValueError:
        return None


def _rank(call: Call) -> int:
    x = call.args[0] if call.args else None
    return x.dim() if isinstance(x, torch.Tensor) else 0


def _dim(call: Call, index: int, default: Any) -> int | None:
    """The call's dim, counted from 0, or None for the batch or no tensor."""
    dim, rank = call.arg(index, "dim", default), _rank(call)
    if not isinstance(dim, int) or rank < 2 or not -rank <= dim < rank or dim % rank == 0:
        return None
    return dim


# --- group norm ---------------------------------------------------------------------------

@register_function("group_norm", reads_weights=True)
def _group_norm(call: Call) -> L.Layer | None:
    """F.group_norm(x, num_groups, weight, bias, eps); affine when a weight is passed (the
    assembler keeps it as a plain layer only when the weights are the module's own)."""
    groups = call.arg(1, "num_groups")
    weight, bias = call.arg(2, "weight"), call.arg(3, "bias")
    if not isinstance(groups, int) or (weight is None) != (bias is None):
        return None
    return _or_none(lambda: L.GroupNorm(num_groups=groups, eps=call.arg(4, "eps", 1e-5),
                                        affine=weight is not None))


# --- pad ----------------------------------------------------------------------------------

_PAD_MODES: dict[type[nn.Module], str] = {
    **{cls: "constant" for cls in (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d,
                                   nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d)},
    **{cls: "reflect" for cls in (nn.ReflectionPad1d, nn.ReflectionPad2d,
                                  nn.ReflectionPad3d)},
    **{cls: "replicate" for cls in (nn.ReplicationPad1d, nn.ReplicationPad2d,
                                    nn.ReplicationPad3d)},
    **{cls: "circular" for cls in (nn.CircularPad1d, nn.CircularPad2d, nn.CircularPad3d)},
}


@register_module(*_PAD_MODES)
def _pad_module(m: nn.Module, call: Call) -> L.Layer | None:
    mode = _PAD_MODES[type(m)]
    value = float(getattr(m, "value", 0.0)) if mode == "constant" else 0.0
    return _or_none(lambda: L.Pad(padding=tuple(m.padding), mode=mode, value=value))


@register_function("pad")
def _pad(call: Call) -> L.Layer | None:
    """F.pad(x, pad, mode="constant", value=None)."""
    pad, mode = call.arg(1, "pad"), call.arg(2, "mode", "constant")
    value = call.arg(3, "value")
    if pad is None or not all(isinstance(p, int) for p in pad):
        return None
    return _or_none(lambda: L.Pad(padding=tuple(pad), mode=mode,
                                  value=0.0 if value is None else float(value)))


# --- reductions ---------------------------------------------------------------------------

_REDUCTIONS = {"mean": L.Mean, "sum": L.Sum}


@register_function(*_REDUCTIONS)
def _reduce(call: Call) -> L.Layer | None:
    """x.mean(dims, keepdim) and torch.mean(x, dims, keepdim); a reduction over every dim
    (no dim) drops the batch and stays opaque."""
    dims = call.arg(1, "dim")
    if dims is None or not isinstance(call.args[0], torch.Tensor):
        return None
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return _or_none(lambda: _REDUCTIONS[call.op](dims=dims,
                                                 keepdim=bool(call.arg(2, "keepdim", False))))


# --- parts --------------------------------------------------------------------------------

@register_function("split", "split_with_sizes")
def _split(call: Call) -> L.Layer | None:
    """torch.split(x, size_or_sizes, dim=0) and Tensor.split: part 0."""
    sizes = call.arg(1, "split_size_or_sections",
                     call.kwargs.get("split_size", call.kwargs.get("split_sizes")))
    dim = _dim(call, 2, 0)
    if dim is None or sizes is None:
        return None
    sizes = (sizes,) if isinstance(sizes, int) else tuple(sizes)
    return _or_none(lambda: L.Split(split_size=sizes, dim=dim))


@register_function("chunk")
def _chunk(call: Call) -> L.Layer | None:
    dim = _dim(call, 2, 0)
    chunks = call.arg(1, "chunks")
    if dim is None or not isinstance(chunks, int):
        return None
    return _or_none(lambda: L.Chunk(chunks=chunks, dim=dim))


@register_function("unbind")
def _unbind(call: Call) -> L.Layer | None:
    dim = _dim(call, 1, 0)
    return None if dim is None else L.Unbind(dim=dim)
