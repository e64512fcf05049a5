"""Converter registries: a torch module call or function call -> one IR layer.

Two registries, filled by decorators (registering a target twice raises):
`MODULES` is keyed by the exact `nn.Module` class (a subclass may override `forward`, so it
is not assumed to behave like its parent) and `FUNCTIONS` by a canonical op name shared
by `torch.add`, `operator.add`, `Tensor.add`, `Tensor.__iadd__` and `x + y` alike.

A converter receives a `Call` whose arguments and output are concrete values from the
meta-tensor run (tensors are meta tensors, sizes are ints) and returns a layer, or None
when this particular call cannot be expressed (then the op stays opaque and torch counts
it). The caller checks every returned layer against torch's own shape and parameter
sizes, so a converter that is wrong for some corner case degrades to opaque, never to a
wrong number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnstat.frontends.scalar_calls import scalar_layer
from cnnstat.ir import layers as L

ModuleConverter = Callable[[nn.Module, "Call"], L.Layer | None]
FunctionConverter = Callable[["Call"], L.Layer | None]

MODULES: dict[type[nn.Module], ModuleConverter] = {}
# Modules from outside torch, by qualified class name: registering the class itself would
# import torchvision on every trace.
NAMED_MODULES: dict[str, ModuleConverter] = {}
FUNCTIONS: dict[str, FunctionConverter] = {}

# Ops that only change how a tensor is held, not its values or shape: the node is skipped
# and its consumers read the producer directly.
ALIASES = frozenset({"contiguous", "clone", "detach", "to", "float", "requires_grad"})
# Views that broadcast their input to another tensor's shape (`y.expand_as(x)` before
# `x * y`): skipped too, as the merge that reads them broadcasts anyway; a consumer that
# does not is checked against torch's shape like any layer.
BROADCASTS = frozenset({"expand_as"})
# Ops whose second tensor only gives a shape (`x.reshape_as(y)`, `x.view_as(y)`).
SHAPE_OF_SECOND = BROADCASTS | {"reshape_as", "view_as"}

_CANONICAL = {"iadd": "add", "radd": "add", "imul": "mul", "rmul": "mul", "multiply": "mul",
              "isub": "sub", "subtract": "sub",
              "concat": "cat", "concatenate": "cat", "upsample": "interpolate"}
_TRUSTED_MODULES = ("torch", "_operator", "operator")
# Functions from outside torch that are known by what they compute, by qualified name:
# torchvision wraps them with fx.wrap, so fx keeps the call instead of tracing into it.
_KNOWN_FUNCTIONS = {"torchvision.ops.stochastic_depth.stochastic_depth": "stochastic_depth",
                    "torchvision.models.swin_transformer._patch_merging_pad": "patch_merge"}
# Ops whose converter reads module tensors (weights, running stats) passed as arguments:
# those arguments may be constants, their sizes checked as a module's are.
READS_WEIGHTS: set[str] = set()


@dataclass(frozen=True, slots=True)
class Call:
    """One call as it ran: concrete args/kwargs (meta tensors, ints) and output.
    `constants`: how many tensor arguments are module tensors rather than values computed
    from the input (set for the ops of READS_WEIGHTS); `owned`: the (parameter, buffer)
    elements among them no earlier node counted; `weight_ops`: the ops that computed those
    tensors from module tensors (empty: read as they are), for function calls."""

    op: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    out: Any = None
    constants: int = 0
    owned: tuple[int, int] = (0, 0)
    weight_ops: frozenset[str] = frozenset()

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """Positional `index` (counting the input tensor as 0) or keyword `name`."""
        if len(self.args) > index:
            return self.args[index]
        return self.kwargs.get(name, default)

    @property
    def tensor_args(self) -> list[torch.Tensor]:
        leaves = torch.utils._pytree.tree_leaves((self.args, self.kwargs))
        return [a for a in leaves if isinstance(a, torch.Tensor)]


def canonical_op(target: Any) -> str | None:
    """`Tensor.__iadd__`, `operator.iadd`, `torch.add` -> "add"; None for a function from
    outside torch (a user function wrapped with fx.wrap is not what its name says)."""
    if isinstance(target, str):
        name = target
    else:
        module = getattr(target, "__module__", None)
        known = _KNOWN_FUNCTIONS.get(f"{module}.{getattr(target, '__qualname__', '')}")
        if known is not None:
            return known
        if module is not None and not module.startswith(_TRUSTED_MODULES):
            return None
        name = getattr(target, "__name__", "")
    name = name.strip("_")
    return _CANONICAL.get(name, name) or None


def op_label(target: Any) -> str:
    """A readable name for reports: `torch.cat`, `F.relu`, `Tensor.view`, `nn.LayerNorm`."""
    if isinstance(target, nn.Module):
        cls = type(target)
        module = cls.__module__
        return f"nn.{cls.__name__}" if module.startswith("torch.nn") else \
            f"{module}.{cls.__qualname__}"
    if isinstance(target, str):
        return f"Tensor.{target}"
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", repr(target))
    if qualname.startswith("TensorBase."):
        return "Tensor." + qualname.split(".", 1)[1]
    if qualname.startswith("_VariableFunctionsClass."):  # torch.chunk, torch.cat, ...
        return "torch." + qualname.split(".", 1)[1]
    module = getattr(target, "__module__", None) or ""
    module = {"torch.nn.functional": "F", "_operator": "operator"}.get(module, module)
    return f"{module}.{qualname}" if module else qualname


def module_converter(module: nn.Module) -> ModuleConverter | None:
    cls = type(module)
    return MODULES.get(cls) or NAMED_MODULES.get(f"{cls.__module__}.{cls.__qualname__}")


def convert_module(module: nn.Module, call: Call) -> L.Layer | None:
    converter = module_converter(module)
    return None if converter is None else converter(module, call)


def convert_function(call: Call) -> L.Layer | None:
    converter = FUNCTIONS.get(call.op)
    return None if converter is None else converter(call)


def register_module(*classes: type[nn.Module]):
    """Decorator: `converter(module, call) -> Layer | None` for calls of these exact module
    classes. Public: how a user's own module is counted as a layer kind (docs/torch.md,
    "Your own modules and functions"). Registering a class twice raises ValueError."""
    def register(converter: ModuleConverter) -> ModuleConverter:
        for cls in classes:
            if cls in MODULES:
                raise ValueError(f"module converter for {cls.__name__} registered twice")
            MODULES[cls] = converter
        return converter
    return register


def register_function(*ops: str, reads_weights: bool = False):
    """Decorator: `converter(call) -> Layer | None` for calls of these canonical op names
    (`canonical_op`). Public, as `register_module`. `reads_weights`: the call takes module
    tensors as arguments (`F.conv2d(x, self.weight)`), which are then the layer's own."""
    def register(converter: FunctionConverter) -> FunctionConverter:
        for op in ops:
            if op in FUNCTIONS:
                raise ValueError(f"function converter for '{op}' registered twice")
            FUNCTIONS[op] = converter
            if reads_weights:
                READS_WEIGHTS.add(op)
        return converter
    return register


def _pair(value: Any) -> tuple[Any, Any]:
    """An int or float (nn.Upsample(scale_factor=2.0)) or a sequence of one or two."""
    if isinstance(value, int | float):
        return (value, value)
    values = tuple(value)
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


# --- modules ---------------------------------------------------------------------------

def pads_itself(module: nn.Module) -> bool:
    """A convolution with a `padding_mode` other than zeros: its forward is `F.pad` (reflect,
    replicate, circular) then the convolution with no padding, two calls that convert to
    kinds, so it is traced through rather than kept whole (its kind pads with zeros)."""
    return isinstance(module, nn.modules.conv._ConvNd) and module.padding_mode != "zeros"


def conv_layer(out_channels: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
               groups: int, bias: bool) -> L.Conv2d:
    """nn.Conv2d's and F.conv2d's arguments -> the layer ("valid" is padding 0)."""
    padding = padding if isinstance(padding, str) else _pair(padding)
    return L.Conv2d(out_channels=out_channels, kernel_size=_pair(kernel_size),
                    stride=_pair(stride), padding=(0, 0) if padding == "valid" else padding,
                    dilation=_pair(dilation), groups=groups, bias=bias)


@register_module(nn.ConvTranspose2d)
def _conv_transpose(m: nn.ConvTranspose2d, call: Call) -> L.Layer | None:
    if call.arg(1, "output_size") is not None:
        return None  # output_padding chosen at call time
    return L.ConvTranspose2d(
        out_channels=m.out_channels, kernel_size=_pair(m.kernel_size), stride=_pair(m.stride),
        padding=_pair(m.padding), output_padding=_pair(m.output_padding),
        dilation=_pair(m.dilation), groups=m.groups, bias=m.bias is not None)


@register_module(nn.LayerNorm)
def _layer_norm(m: nn.LayerNorm, call: Call) -> L.Layer | None:
    """Over the last dim only; a LayerNorm over several dims stays opaque."""
    if len(m.normalized_shape) != 1:
        return None
    return L.LayerNorm(data_format="channels_last", eps=m.eps,
                       elementwise_affine=m.elementwise_affine,
                       bias=getattr(m, "bias", None) is not None)


@register_module(nn.Softmax)
def _softmax_module(m: nn.Softmax, call: Call) -> L.Layer | None:
    return None if m.dim is None else L.Softmax(dim=m.dim)


@register_module(nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d)
def _upsample_module(m: nn.Upsample, call: Call) -> L.Layer | None:
    return _upsample(m.size, m.scale_factor, m.mode, m.align_corners)


def _upsample(size: Any, scale: Any, mode: str, align_corners: bool | None) -> L.Layer | None:
    if mode not in ("nearest", "bilinear"):
        return None
    return L.Upsample(
        size=None if size is None else _pair(size),
        scale_factor=None if scale is None else tuple(float(f) for f in _pair(scale)),
        mode=mode, align_corners=align_corners if mode == "bilinear" else None)


# --- functions and methods -------------------------------------------------------------

def two_tensors(call: Call) -> bool:
    return len(call.args) >= 2 and all(isinstance(a, torch.Tensor) for a in call.args[:2])


@register_function("sub")
def _sub(call: Call) -> L.Layer | None:
    """x - y of two tensors (a DoG, PoolFormer's pool(x) - x); x - alpha * y and x - 1 stay
    opaque; x - 1 is the scalar kind. (`rsub`, a number minus a tensor, is never a merge.)"""
    if not two_tensors(call):
        return scalar_layer(call)  # x - 1
    return L.Sub() if call.kwargs.get("alpha", 1) == 1 else None


@register_function("add", reads_weights=True)
def _add(call: Call) -> L.Layer | None:
    if call.constants:  # x + self.pos_embedding (index_converters.py)
        return position_embedding(call)
    if call.kwargs.get("alpha", 1) != 1:
        return None  # x + alpha * y: not a plain merge
    if two_tensors(call):
        return L.Add()
    # `out = 0; out += branch(x)`, a branch a model leaves out (timm's MobileOne): x + 0
    others = [a for a in call.args[:2] if not isinstance(a, torch.Tensor)]
    if len(call.args) == 2 and others in ([0], [0.0]):
        return L.Identity()
    return scalar_layer(call)  # x + eps


@register_function("cat", reads_weights=True)
def _cat(call: Call) -> L.Layer | None:
    if call.constants:  # torch.cat([self.class_token.expand(n, -1, -1), x], 1)
        return learned_tokens(call)
    return L.Concat(dim=call.arg(1, "dim", 0))


@register_function("dropout2d")
def _dropout2d(call: Call) -> L.Layer:
    return L.Dropout(p=call.arg(1, "p", 0.5))


@register_function("softmax")
def _softmax(call: Call) -> L.Layer | None:
    dim = call.arg(1, "dim")
    return None if dim is None else L.Softmax(dim=dim)


@register_function("flatten")
def _flatten(call: Call) -> L.Layer:
    # torch.flatten and Tensor.flatten default to start_dim=0 (nn.Flatten to 1).
    return L.Flatten(start_dim=call.arg(1, "start_dim", 0), end_dim=call.arg(2, "end_dim", -1))


@register_function("view", "reshape")
def _reshape(call: Call) -> L.Layer | None:
    """`x.view(x.size(0), -1)` is a flatten; any other view keeps the batch and fixes the
    rest to what torch produced. A view that changes the batch stays opaque."""
    src, out = call.args[0], call.out
    if not isinstance(src, torch.Tensor) or src.dim() < 1 or out.dim() < 1:
        return None
    if out.shape[0] != src.shape[0]:
        return None
    if out.dim() == 2 and src.dim() > 2:
        return L.Flatten(start_dim=1, end_dim=-1)
    return L.Reshape(shape=tuple(out.shape[1:])) if out.dim() > 1 else None


@register_function("permute")
def _permute(call: Call) -> L.Layer | None:
    """`x.permute(0, 2, 3, 1)`, `x.permute((0, 2, 3, 1))`, `torch.permute(x, dims)` (what
    torchvision's Permute module calls). A permute that moves the batch stays opaque."""
    dims = call.args[1:] if len(call.args) > 2 else call.arg(1, "dims")
    if dims is None:
        return None
    dims = tuple(int(d) for d in dims)
    ndim = call.args[0].dim() if isinstance(call.args[0], torch.Tensor) else 0
    if len(dims) < 2 or len(dims) != ndim or dims[0] % ndim != 0:
        return None
    return L.Permute(dims=dims)


@register_function("interpolate")
def _interpolate(call: Call) -> L.Layer | None:
    return _upsample(call.arg(1, "size"), call.arg(2, "scale_factor"),
                     call.arg(3, "mode", "nearest"), call.arg(4, "align_corners"))



# The converters of the kinds that declare their torch module (ir/torch_side.py), made
# from that declaration; then those of ir/tensor_layers.py's kinds. Each module registers
# here through the decorators above, so they are imported last.
from cnnstat.frontends import declared  # noqa: E402, F401  isort: skip
from cnnstat.frontends import tensor_converters  # noqa: E402, F401  isort: skip

# Arithmetic by a number, stack, GRN and the convs with a fixed or standardized weight.
from cnnstat.frontends import arith_converters  # noqa: E402,F401  isort: skip
# Indexing, and the learned tokens / embedding that `_cat` and `_add` hand on to.
from cnnstat.frontends.index_converters import (  # noqa: E402  isort: skip
    learned_tokens,
    position_embedding,
)

# 1-D / 3-D kinds and attention: their converters register into the registries above.
from cnnstat.frontends.converters_nd import FIRST_OUTPUT_MODULES  # noqa: E402,F401  isort: skip
# Converters of calls that read module tensors, and of torchvision's own functions.
from cnnstat.frontends import weighted  # noqa: E402,F401  isort: skip - registers them
# Swin's window attention and patch merge (torchvision's modules and the builder's).
from cnnstat.frontends import swin_converters  # noqa: E402,F401  isort: skip - registers them
