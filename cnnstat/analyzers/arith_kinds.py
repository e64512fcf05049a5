"""Every analyzer's rules for the kinds of `cnnstat/ir/arith_layers.py`: arithmetic by a
number (`scalar`), `tensor_stack`, global response norm (`grn`), and the convolutions whose
weight is a fixed buffer (`fixed_conv2d`) or standardized at each forward (`std_conv2d`).

Registered into each analyzer's registry (imported by the package). `scalar` takes all
but its params from its traits (pointwise: one op per element, shape and field kept).
The two convolutions are conv2d for shape, MACs, minimum input and field: the output is
a convolution's, only where the weight comes from differs.
"""

from __future__ import annotations

import dataclasses
import math

from cnnstat.analyzers import min_input as M
from cnnstat.analyzers import rf as R
from cnnstat.analyzers.ops import OPS, OpCount
from cnnstat.analyzers.params import PARAMS, ParamCount
from cnnstat.analyzers.shapes import SHAPES, Shape
from cnnstat.ir import layers as L

# --- scalar -------------------------------------------------------------------------------


@PARAMS.register(L.Scalar)
def _scalar_params(layer: L.Scalar, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """None for a number in the code; one (a 0-d parameter) when `learned`."""
    return ParamCount(1, 0, "1") if layer.learned else ParamCount(0)


# --- stack --------------------------------------------------------------------------------


def _stack_axis(layer: L.Stack, rank: int) -> int:
    """The new dim's index in the output (rank + 1 dims), never the batch."""
    if not -(rank + 1) <= layer.dim <= rank:
        raise ValueError(f"dim {layer.dim} is out of range for stacking {rank}-d inputs")
    axis = layer.dim % (rank + 1)
    if axis == 0:
        raise ValueError(f"dim {layer.dim} is the batch; the batch stays at dim 0")
    return axis


@SHAPES.register(L.Stack)
def _stack(layer: L.Stack, ins: tuple[Shape, ...]) -> Shape:
    """torch.stack: every input of one shape; a dim of len(inputs) inserted at `dim`."""
    if any(s != ins[0] for s in ins[1:]):
        raise ValueError(f"stack needs inputs of one shape, got "
                         f"{' vs '.join(str(list(s)) for s in ins)}")
    axis = _stack_axis(layer, len(ins[0]))
    return (*ins[0][:axis], len(ins), *ins[0][axis:])


@OPS.register(L.Stack)
def _stack_ops(layer: L.Stack, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """A copy into one tensor, no arithmetic (as concat)."""
    return OpCount(0, 0)


@M.FORMS.register(L.Stack)
def _stack_form(layer: L.Stack, ins: tuple[M.Dims, ...]) -> M.Dims:
    """Inputs of one shape at every side, the new dim a constant."""
    if any(d != ins[0] for d in ins[1:]):
        raise M.NoForm("stacked sizes that may differ at some input side")
    axis = _stack_axis(layer, len(ins[0]))
    return (*ins[0][:axis], len(ins), *ins[0][axis:])


@R.RF.register(L.Stack)
def _stack_field(node, fields, ins, out, notes):
    """Unit (i, ..., h, w) of the output is unit (h, w) of input i: the union of the
    inputs' fields (as a merge), H and W one dim further when the new dim is before them."""
    same = dataclasses.replace(node, layer=L.Add())
    merged = R.RF.get(L.Add)(same, fields, ins, ins[0], notes)
    if merged.is_global:
        return merged
    axis = _stack_axis(node.layer, len(ins[0]))
    return dataclasses.replace(merged, layout=tuple(d + (d >= axis) for d in fields[0].layout))


# --- global response norm -----------------------------------------------------------------


def _grn_channels(layer: L.GlobalResponseNorm, shape: Shape) -> int:
    if len(shape) != 4:
        raise ValueError(f"grn needs an image tensor [N, C, H, W] (or [N, H, W, C] with "
                         f"channels_last), got {list(shape)}")
    return shape[-1] if layer.channels_last else shape[1]


@PARAMS.register(L.GlobalResponseNorm)
def _grn_params(layer: L.GlobalResponseNorm, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """weight and bias, one per channel."""
    c = _grn_channels(layer, ins[0])
    return ParamCount(2 * c, 0, f"2x{c}")


@OPS.register(L.GlobalResponseNorm)
def _grn_ops(layer: L.GlobalResponseNorm, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """Per element: square and sum for the norm, x * n, weight * that + bias, + x (6);
    per sample and channel: the square root, the mean over channels' add, the divide (3).
    No MACs (FlopCounterMode counts none either: no matmul or conv)."""
    c = _grn_channels(layer, ins[0])
    return OpCount(0, 6 * math.prod(ins[0]) + 3 * ins[0][0] * c)


@R.RF.register(L.GlobalResponseNorm)
def _grn_field(node, fields, ins, out, notes):
    """Global: each channel's norm is taken over the whole of H and W."""
    return R.global_field(fields[0].image)


# --- convolutions with a fixed or computed weight -------------------------------------------

_CONVS = L.COMPUTED_WEIGHT_CONVS


@SHAPES.register(*_CONVS)
def _conv_shape(layer, ins: tuple[Shape, ...]) -> Shape:
    """conv2d's."""
    return SHAPES.get(L.Conv2d)(layer.as_conv(), ins)


@M.FORMS.register(*_CONVS)
def _conv_form(layer, ins: tuple[M.Dims, ...]) -> M.Dims:
    return M.FORMS.get(L.Conv2d)(layer.as_conv(), ins)


@R.RF.register(*_CONVS)
def _conv_field(node, fields, ins, out, notes):
    """conv2d's: the weight's values do not change which pixels a unit sees."""
    conv = dataclasses.replace(node, layer=node.layer.as_conv())
    return R.RF.get(L.Conv2d)(conv, fields, ins, out, notes)


def _weight_elements(layer, ins: tuple[Shape, ...]) -> int:
    kh, kw = layer.kernel_size
    return kh * kw * (ins[0][1] // layer.groups) * layer.out_channels


@PARAMS.register(L.FixedConv2d)
def _fixed_params(layer: L.FixedConv2d, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """The filter is a buffer (k_h*k_w*(C_in/groups)*C_out); the bias a parameter."""
    bias = layer.out_channels if layer.bias else 0
    return ParamCount(bias, _weight_elements(layer, ins), f"{bias}" if bias else "")


@PARAMS.register(L.StdConv2d)
def _std_params(layer: L.StdConv2d, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """The weight as conv2d's, the bias, and one gain per output channel."""
    conv = PARAMS.get(L.Conv2d)(layer.as_conv(), ins, out)
    gain = layer.out_channels if layer.gain else 0
    return ParamCount(conv.params + gain, 0, conv.formula + (f" + {gain}" if gain else ""))


@OPS.register(L.FixedConv2d)
def _fixed_ops(layer: L.FixedConv2d, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """conv2d's MACs (N*C_out*H_out*W_out*(C_in/groups)*k_h*k_w) and bias adds."""
    return OPS.get(L.Conv2d)(layer.as_conv(), ins, out)


@OPS.register(L.StdConv2d)
def _std_ops(layer: L.StdConv2d, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """conv2d's MACs; in other ops, besides the bias adds, the standardization, once per
    forward whatever the batch: 6 per weight element (mean, variance, normalise, as layer
    norm's count) and 1 more with the gain."""
    conv = OPS.get(L.Conv2d)(layer.as_conv(), ins, out)
    standardize = (6 + layer.gain) * _weight_elements(layer, ins)
    return OpCount(conv.macs, conv.other_ops + standardize)
