"""Converters of the kinds that declare their torch module (cnnstat/ir/torch_side.py):
one per kind, made from the declaration, registered into `cnnstat.frontends.converters`'
registries (which import this module), so such a kind has no converter written out.

Each field is read from the module attribute (or the function argument) of its name and
normalised as the spec reads a value of that field's type (cnnstat/spec/schema.py), so a
value torch keeps as `3`, `[3]`, `"valid"` or a bias tensor becomes the layer's `(3, 3)`,
`(0, 0)` or True, as the spec loader would make it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cnnstat.frontends.converters import Call, register_function, register_module
from cnnstat.ir import layers as L
from cnnstat.spec import schema as S

# Spec types of a window: the number of entries (one per spatial axis), and whether the
# value may be 'same' / 'valid'.
_AXES = {S.PAIR: 2, S.NONNEG_PAIR: 2, S.FPAIR: 2, S.PADDING: 2,
         S.SIZES1: 1, S.NONNEG_SIZES1: 1, S.PADDING1: 1,
         S.SIZES3: 3, S.NONNEG_SIZES3: 3, S.PADDING3: 3}
_SCALARS: dict[str, Callable[[Any], Any]] = {
    S.INT: int, S.NONNEG: int, S.SIGNED: int, S.FLOAT: float, S.BOOL: bool, S.STR: str,
    S.SHAPE: lambda v: tuple(int(x) for x in v),
    S.SIGNED_LIST: lambda v: tuple(int(x) for x in v),
}


def torch_value(ftype: str | None, value: Any, default: Any) -> Any:
    """A module attribute or function argument as the layer field of spec type `ftype`
    holds it (`default`: the field's own, or MISSING)."""
    if isinstance(value, torch.Tensor):
        return True  # an optional parameter that is there (a bias)
    if value is None:  # an absent parameter (bias=False), or torch's own None (momentum)
        return False if ftype == S.BOOL and default is not None else None
    axes = _AXES.get(ftype)
    if axes is None:
        return _SCALARS.get(ftype, lambda v: v)(value)
    if isinstance(value, str):
        return (0,) * axes if value == "valid" else value  # 'same' stays
    cast = float if ftype == S.FPAIR else int
    values = (value,) if isinstance(value, int | float) else tuple(value)
    return tuple(cast(v) for v in (values * axes if len(values) == 1 else values))


def _layer(kind: type[L.Layer], read: Callable[[str, Any], Any], out: Any) -> L.Layer:
    """The layer of `kind` whose fields `read(name, default)` gives, those the declaration
    takes from the output from `out`'s trailing sizes."""
    declared, spec = kind.torch_module, S.KINDS.get(kind.kind)
    types = spec.fields if spec is not None else {}
    values = {}
    for f in dataclasses.fields(kind):
        ftype = types.get(f.name)
        if f.name in declared.from_output:
            values[f.name] = tuple(out.shape[-_AXES[ftype]:])
            continue
        default = None if f.default is dataclasses.MISSING else f.default
        values[f.name] = torch_value(ftype, read(f.name, default), default)
    if kind.kind in S.STRIDE_IS_KERNEL and not values.get("stride"):
        values["stride"] = values["kernel_size"]  # stride=None: the kernel, as in torch
    return kind(**values)


def _module_converter(kind: type[L.Layer]):
    required = kind.torch_module.requires

    def convert(m: nn.Module, call: Call) -> L.Layer | None:
        if any(getattr(m, name, value) != value for name, value in required.items()):
            return None
        return _layer(kind, lambda name, default: getattr(m, name), call.out)

    return convert


def _function_converter(kind: type[L.Layer], names: tuple[str, ...]):
    """`names`: the function's arguments after the input, in order."""
    position = {name: i + 1 for i, name in enumerate(names)}
    required = kind.torch_module.requires

    def arg(call: Call, name: str, default: Any) -> Any:
        if name in position:
            return call.arg(position[name], name, default)
        return call.kwargs.get(name, default)

    def convert(call: Call) -> L.Layer | None:
        if any(arg(call, name, value) != value for name, value in required.items()):
            return None
        return _layer(kind, lambda name, default: arg(call, name, default), call.out)

    return convert


def _named_function(kind: type[L.Layer]) -> tuple[str, ...] | None:
    """The arguments of the torch function named like the kind that converts to it: as
    declared, or none for a kind without fields where torch has that function."""
    declared = kind.torch_module.function
    if declared is None and not dataclasses.fields(kind) \
            and (hasattr(nn.functional, kind.kind) or hasattr(torch, kind.kind)):
        return ()
    return declared


def _register(kind: type[L.Layer]) -> None:
    declared = kind.torch_module
    modules = (getattr(nn, name) for name in (declared.name, *declared.also))
    register_module(*modules)(_module_converter(kind))
    names = _named_function(kind)
    if names is not None:
        register_function(kind.kind)(_function_converter(kind, names))


for _kind in L.kinds_built_as_torch_modules():
    _register(_kind)
