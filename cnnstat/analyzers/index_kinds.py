"""Every analyzer's rules for the kinds of `cnnstat/ir/index_layers.py`: slice, select,
class_token and position_embedding.

Kept in one module, registered into each analyzer's registry (imported by the package).
Shape rules follow torch's: basic indexing `x[:, a:b:s]` (Python's slice rules, step > 0),
`Tensor.select`, `torch.cat` of a learned token before the tokens, a broadcast add.
"""

from __future__ import annotations

import dataclasses
import math

from cnnstat.analyzers import min_input as M
from cnnstat.analyzers import rf as R
from cnnstat.analyzers.ops import OPS, OpCount
from cnnstat.analyzers.params import PARAMS, ParamCount
from cnnstat.analyzers.shapes import SHAPES, Shape, TooSmall
from cnnstat.analyzers.tensor_kinds import _axis as axis_of
from cnnstat.ir import layers as L

# --- slice and select ---------------------------------------------------------------------


def _selected(layer: L.Select, size: int) -> int:
    """The index counted from 0, as torch resolves a negative one."""
    if not -size <= layer.index < size:
        raise ValueError(f"index {layer.index} is out of range for a dim of {size}")
    return layer.index % size


def _indexed(layer: L.Layer, sizes: tuple) -> tuple:
    axis = axis_of(layer.dim, len(sizes))
    if isinstance(layer, L.Select):
        _selected(layer, sizes[axis])
        return (*sizes[:axis], *sizes[axis + 1:])
    length = len(layer.span(sizes[axis]))
    if length == 0:
        raise TooSmall(f"slice {_text(layer)} of a dim of {sizes[axis]} is empty: the input "
                       f"is too small")
    return (*sizes[:axis], length, *sizes[axis + 1:])


def _text(layer: L.Slice) -> str:
    start, stop = ("" if v is None else v for v in (layer.start, layer.stop))
    return f"{start}:{stop}" + (f":{layer.step}" if layer.step != 1 else "")


@SHAPES.register(*L.INDEXING)
def _index(layer: L.Layer, ins: tuple[Shape, ...]) -> Shape:
    """slice: the dim becomes len(range(start, stop, step)) as Python clips it (an empty
    slice is refused); select: the dim goes."""
    if len(ins[0]) < 2:
        raise ValueError(f"needs an input with a dim besides the batch, got {list(ins[0])}")
    return _indexed(layer, ins[0])


@OPS.register(*L.INDEXING)
def _view(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """A view (torch copies nothing): no arithmetic."""
    return OpCount(0, 0)


@M.FORMS.register(*L.INDEXING)
def _index_form(layer: L.Layer, ins: tuple[M.Dims, ...]) -> M.Dims:
    """Along a dim of constant size (channels), a constant; along a dim that depends on
    the input side, not followed (the search finds the minimum)."""
    dims = ins[0]
    axis = axis_of(layer.dim, len(dims)) if len(dims) > 1 else None
    if axis is None or type(dims[axis]) is not int:
        raise M.NoForm("an index into a dim whose size depends on the input side")
    return _indexed(layer, dims)


@R.RF.register(L.Slice)
def _slice_field(node, fields, ins, out, notes):
    """Of the channels: unchanged. Of H or W: output unit j is input unit start + j*step
    (a window k=1, s=step, p=-start), so the field keeps its size and its jump grows by
    the step."""
    field, layer = fields[0], node.layer
    axis = axis_of(layer.dim, len(ins[0]))
    if field.is_global or axis not in field.layout:
        return field
    kept = layer.span(ins[0][axis])
    axes = tuple(R.compose(a, R.window_map(1, kept.step, -kept.start)) if d == axis else a
                 for a, d in zip(field.axes, field.layout, strict=True))
    return dataclasses.replace(field, axes=axes)


@R.RF.register(L.Select)
def _select_field(node, fields, ins, out, notes):
    """Of the channels: unchanged, H and W move down a dim when it comes before them. Of H
    or W: one row or column of units is left, which a 2-D field does not describe."""
    field, layer = fields[0], node.layer
    axis = axis_of(layer.dim, len(ins[0]))
    if axis in field.layout:
        raise R.RfUnsupported("an index into H or W leaves one row or column")
    return dataclasses.replace(field, layout=tuple(d - (d > axis) for d in field.layout))


# --- learned tokens -----------------------------------------------------------------------


def _tokens(layer: L.ClassToken, sizes: tuple) -> tuple:
    if len(sizes) != 3:
        raise ValueError(f"class_token takes tokens [N, S, D], got {list(sizes)}")
    n, s, d = sizes
    return (n, s + layer.tokens, d)


@SHAPES.register(L.ClassToken)
def _class_token(layer: L.ClassToken, ins: tuple[Shape, ...]) -> Shape:
    """[N, S, D] -> [N, S + tokens, D]."""
    return _tokens(layer, ins[0])


@PARAMS.register(L.ClassToken)
def _class_token_params(layer: L.ClassToken, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """The learned tokens: tokens x D."""
    return ParamCount(layer.tokens * ins[0][-1], 0, f"{layer.tokens}x{ins[0][-1]}")


@OPS.register(L.ClassToken)
def _class_token_ops(layer: L.ClassToken, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """A copy into a longer tensor, as concat: no arithmetic."""
    return OpCount(0, 0)


@M.FORMS.register(L.ClassToken)
def _class_token_form(layer: L.ClassToken, ins: tuple[M.Dims, ...]) -> M.Dims:
    """The token count grows by `tokens`; a count that depends on the side is not followed."""
    if len(ins[0]) != 3 or type(ins[0][1]) is not int:
        raise M.NoForm("tokens whose count depends on the input side")
    return _tokens(layer, ins[0])


@R.RF.register(L.ClassToken)
def _class_token_field(node, fields, ins, out, notes):
    """After a flatten of H and W into tokens the field is global already (and stays so);
    tokens prepended along H or W would read no pixel at all: not described."""
    raise R.RfUnsupported("learned tokens prepended along H or W")


@PARAMS.register(L.PositionEmbedding)
def _position_params(layer: L.PositionEmbedding, ins: tuple[Shape, ...],
                     out: Shape) -> ParamCount:
    """One learned value per input element of one sample: prod(shape[1:])."""
    shape = ins[0][1:]
    return ParamCount(math.prod(shape), 0, "x".join(map(str, shape)))


@OPS.register(L.PositionEmbedding)
def _position_ops(layer: L.PositionEmbedding, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """One add per output element."""
    return OpCount(0, math.prod(out))
