"""The fallback when torch.fx cannot trace a forward (data-dependent control flow):
run the forward once and record what actually ran.

Forward hooks on every module mark where leaf modules (the ones fx would also keep
whole) start and end; a TorchFunctionMode records the torch functions and tensor methods
called outside leaf modules (`torch.cat`, `x + y`, `F.relu`, `x.view(...)`). Values are
followed by tensor identity, so in-place ops (`out += identity`) chain correctly. The
recording is of the path this one input took: a branch not taken is not in the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.frontends.assemble import Step
from cnnstat.frontends.converters import MODULES, Call, canonical_op, op_label, pads_itself


def is_leaf(module: nn.Module) -> bool:
    """The modules fx keeps whole by default: those defined in torch.nn, except
    containers."""
    name = type(module).__module__
    return name.startswith(("torch.nn", "torch.ao.nn")) and \
        not isinstance(module, nn.Sequential | nn.ModuleList | nn.ModuleDict)


class Recorder(TorchFunctionMode):
    """Collects `Step`s while the forward runs; `tensor_names` maps the id of each state
    tensor handed to functional_call to its qualified name."""

    def __init__(self, root: nn.Module, tensor_names: dict[int, str], counter: FlopCounterMode):
        super().__init__()
        self.steps: list[Step] = []
        self._paths = {id(m): path for path, m in root.named_modules()}
        self._root = root
        self._tensor_names = tensor_names
        self._counter = counter
        self._tracked: dict[int, torch.Tensor] = {}  # id -> tensor, kept alive: ids stay unique
        self._scopes: list[tuple[str, bool, int]] = []  # (path, is_leaf, flops at entry)
        self._leaf_depth = 0
        self._handles: list[Any] = []

    # --- hooks ------------------------------------------------------------------------

    def attach(self) -> None:
        for module in self._root.modules():
            if module is self._root:
                continue
            self._handles.append(module.register_forward_pre_hook(self._enter, with_kwargs=True))
            self._handles.append(module.register_forward_hook(self._leave, with_kwargs=True,
                                                              always_call=True))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()

    def _enter(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        # as the fx tracer keeps them (torch_fx._Tracer.is_leaf_module)
        leaf = not pads_itself(module) and (type(module) in MODULES or is_leaf(module))
        self._scopes.append((self._paths.get(id(module), ""), leaf, self._flops()))
        self._leaf_depth += leaf

    def _leave(self, module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        path, leaf, flops_before = self._scopes.pop()
        self._leaf_depth -= leaf
        if leaf and self._leaf_depth == 0:
            call = Call(op="", args=tuple(args), kwargs=dict(kwargs), out=out)
            self._record(call, op_label(module), self._flops() - flops_before, path)

    # --- functions ----------------------------------------------------------------------

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if self._leaf_depth:
            return func(*args, **kwargs)
        before = self._flops()
        out = func(*args, **kwargs)
        if any(isinstance(t, torch.Tensor) for t in tree_leaves(out)):
            call = Call(op=canonical_op(func) or "", args=tuple(args), kwargs=kwargs, out=out)
            self._record(call, op_label(func), self._flops() - before, None)
        return out

    def track_input(self, tensor: torch.Tensor) -> int:
        self._tracked[id(tensor)] = tensor
        return id(tensor)

    def _record(self, call: Call, label: str, flops: int, module_path: str | None) -> None:
        arg_keys, names = [], []
        for leaf in tree_leaves((call.args, call.kwargs)):
            if not isinstance(leaf, torch.Tensor):
                continue
            if id(leaf) in self._tracked:
                arg_keys.append(id(leaf))
            elif id(leaf) in self._tensor_names:
                names.append(self._tensor_names[id(leaf)])
        if not arg_keys and not names and not flops:
            return  # a tensor made from nothing the model owns (torch.zeros(...)): ignore
        outs = call.out if isinstance(call.out, tuple | list) else (call.out,)
        for out in outs:
            if isinstance(out, torch.Tensor):
                self._tracked[id(out)] = out
        scope = self._scopes[-1][0] if self._scopes else ""
        self.steps.append(Step(
            key=id(call.out), call=call, label=label, scope=scope, arg_keys=tuple(arg_keys),
            flops=flops, module_path=module_path, tensor_names=tuple(names),
            element_keys=tuple(id(o) for o in outs) if outs is call.out else ()))

    def _flops(self) -> int:
        return self._counter.get_total_flops()
