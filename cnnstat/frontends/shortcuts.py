"""Outputs a trace on meta tensors can have without running a meta kernel (issue 23).

Batch norm has no meta kernel of its own in torch: on meta tensors it runs its Python
decomposition, about ten element-wise refs with their type promotion and broadcasting,
1-2 ms a call and half of a ResNet's trace, for an output known in advance. In inference
(running statistics, `eval()`, as a trace runs it) the output of a torch.nn BatchNorm1d/2d/3d
is a new tensor of the input's shape and dtype, and torch counts no FLOPs for it. That is
all `batch_norm_output` gives, and only where torch's forward is certain to give the same:
the module's own class and forward, no hooks, a row-major meta tensor of the rank the
class takes, running statistics, weight and bias of its channels and dtype; else None, and
the module runs as usual (raising what it raises). tests/test_shortcuts.py compares it with
the forward's output.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as _module

# The ranks each class takes (BatchNorm1d: (N, C) or (N, C, L)) and its forward.
_BATCH_NORMS = {cls: (ranks, cls.forward) for cls, ranks in (
    (nn.BatchNorm1d, (2, 3)), (nn.BatchNorm2d, (4,)), (nn.BatchNorm3d, (5,)))}


def batch_norm_output(module: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor | None:
    ranks, forward = _BATCH_NORMS.get(type(module), ((), None))
    if forward is None or not _plain_call(module, forward, args, kwargs):
        return None
    x = args[0]
    if type(x) is not torch.Tensor or not x.is_meta or x.dim() not in ranks \
            or not x.dtype.is_floating_point or x.stride() != _row_major(x.shape):
        return None
    stats = (module.running_mean, module.running_var)
    affine = tuple(t for t in (module.weight, module.bias) if t is not None)
    if any(t is None for t in stats) or not all(_per_channel(t, x) for t in stats + affine):
        return None
    return torch.empty(x.shape, dtype=x.dtype, device="meta")


def _plain_call(module: nn.Module, forward, args: tuple, kwargs: dict) -> bool:
    """`module(*args)` would run the class's own forward on one input, in inference."""
    return type(module).forward is forward and "forward" not in vars(module) \
        and not module.training and not kwargs and len(args) == 1 and not _hooked(module)


def _per_channel(t: torch.Tensor, x: torch.Tensor) -> bool:
    return type(t) in (torch.Tensor, nn.Parameter) and t.is_meta and t.dtype == x.dtype \
        and t.shape == (x.shape[1],)


def _row_major(shape: torch.Size) -> tuple[int, ...]:
    """The strides of a new contiguous tensor of `shape` (what torch.empty gives)."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _hooked(module: nn.Module) -> bool:
    """Any hook `Module.__call__` would run (its own test for calling forward directly)."""
    return bool(module._backward_hooks or module._backward_pre_hooks or module._forward_hooks
                or module._forward_pre_hooks or _module._global_backward_pre_hooks
                or _module._global_backward_hooks or _module._global_forward_hooks
                or _module._global_forward_pre_hooks)
