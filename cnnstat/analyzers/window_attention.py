"""Every analyzer's rules for the window kinds of cnnstat/ir/window_layers.py: Swin's
window attention and patch merge, on tokens [N, H, W, C].

Window attention, as torchvision runs it: H, W are padded with zero tokens to Hp, Wp
(multiples of the window wh x ww), and a shift is dropped on an axis that one window
covers (window >= Hp). With T = wh*ww tokens per window, nW = (Hp/wh)(Wp/ww) windows and
M = N*Hp*Wp tokens, FlopCounterMode counts (MACs):

    qkv and output projections   M*C*3C + M*C*C   (linear layers over C)
    QK^T and AV                  2 * M*T*C        (per head T*T*C/heads, over all heads)
    Swin v2's position-bias MLP  P*(2*512 + 512*heads), P = (2wh-1)(2ww-1): run once per
                                 forward on a constant coordinate table, independent of
                                 the batch and of the input size; counted because torch
                                 counts it (and torchvision's published `_ops` include it)

Other ops, per attention score (N*nW*heads*T*T): 5 (the scale, the bias add, softmax's 3),
+1 for the shift mask; the projections' bias adds (1 per biased output element); v2 also
normalises q and k (3 per element), scales the bias table by 16*sigmoid (2 per entry)
and runs the MLP's bias add and ReLU (2 per hidden unit). The pad, roll and window
partition are copies: 0.
"""

from __future__ import annotations

import math

from cnnstat.analyzers import min_input as M
from cnnstat.analyzers.ops import OPS, OpCount
from cnnstat.analyzers.params import PARAMS, ParamCount
from cnnstat.analyzers.rf import RF, RfUnsupported, UnitMap, compose, window_map
from cnnstat.analyzers.rf_fields import ReceptiveField
from cnnstat.analyzers.shapes import SHAPES, Shape
from cnnstat.ir import layers as L
from cnnstat.ir.window_layers import CPB_HIDDEN

_SCORE_OPS = 5  # the q scale (v1) or logit scale (v2), the bias add, softmax's exp, sum, divide


def _tokens(layer: L.Layer, ins: tuple[Shape, ...]) -> Shape:
    x = ins[0]
    if len(ins) != 1 or len(x) != 4:
        raise ValueError(f"{layer.kind} takes one input of tokens [N, H, W, C], got "
                         f"{' and '.join(str(list(s)) for s in ins)}")
    return x


def padded(layer: L.WindowAttention, h: int, w: int) -> tuple[int, int]:
    """H and W padded up to multiples of the window (torchvision's F.pad before it)."""
    wh, ww = layer.window_size
    return -(-h // wh) * wh, -(-w // ww) * ww


def effective_shift(layer: L.WindowAttention, h: int, w: int) -> tuple[int, int]:
    """The shift per axis; none on an axis one window covers (as torchvision sets it)."""
    hp, wp = padded(layer, h, w)
    return tuple(0 if window >= size else shift for shift, window, size in  # type: ignore
                 zip(layer.shift_size, layer.window_size, (hp, wp), strict=True))


@SHAPES.register(L.WindowAttention)
def _attention_shape(layer: L.WindowAttention, ins: tuple[Shape, ...]) -> Shape:
    """The input's [N, H, W, C]; C must divide into the heads."""
    x = _tokens(layer, ins)
    if x[3] % layer.num_heads:
        raise ValueError(f"channels {x[3]} are not divisible by num_heads {layer.num_heads}")
    return x


@PARAMS.register(L.WindowAttention)
def _attention_params(layer: L.WindowAttention, ins: tuple[Shape, ...], out: Shape
                      ) -> ParamCount:
    """qkv C*3C (+3C), proj C*C (+C); v1: the bias table P*heads; v2: the logit scale
    (heads) and the MLP 2*512 + 512 + 512*heads. Buffers: the relative position index T*T,
    and v2's coordinate table P*2."""
    c, heads, t = ins[0][3], layer.num_heads, math.prod(layer.window_size)
    projections = 4 * c * c + 3 * c * layer.qkv_bias + c * layer.proj_bias
    formula = f"{c}x{3 * c} + {c}x{c}"
    formula += "".join(f" + {b}" for b, on in ((3 * c, layer.qkv_bias), (c, layer.proj_bias))
                       if on)
    if layer.version == 1:
        bias, buffers = layer.positions * heads, t * t
        formula += f" + {layer.positions}x{heads}"
    else:
        bias = heads + 2 * CPB_HIDDEN + CPB_HIDDEN + CPB_HIDDEN * heads
        buffers = t * t + 2 * layer.positions
        formula += f" + {heads} + 2x{CPB_HIDDEN} + {CPB_HIDDEN} + {CPB_HIDDEN}x{heads}"
    return ParamCount(projections + bias, buffers, formula)


@OPS.register(L.WindowAttention)
def _attention_ops(layer: L.WindowAttention, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """See the module docstring."""
    n, h, w, c = ins[0]
    hp, wp = padded(layer, h, w)
    heads, t = layer.num_heads, math.prod(layer.window_size)
    tokens = n * hp * wp
    macs = tokens * 4 * c * c + 2 * tokens * t * c
    scores = tokens * heads * t  # N * nW * heads * T * T
    other = scores * (_SCORE_OPS + any(effective_shift(layer, h, w)))
    other += tokens * (3 * c * layer.qkv_bias + c * layer.proj_bias)
    if layer.version == 2:
        macs += layer.positions * CPB_HIDDEN * (2 + heads)
        other += 2 * 3 * tokens * c + 2 * heads * t * t + 2 * layer.positions * CPB_HIDDEN
    return OpCount(macs, other)


@SHAPES.register(L.PatchMerge)
def _merge_shape(layer: L.PatchMerge, ins: tuple[Shape, ...]) -> Shape:
    """[N, H, W, C] -> [N, ceil(H/2), ceil(W/2), 4C]."""
    n, h, w, c = _tokens(layer, ins)
    return (n, -(-h // 2), -(-w // 2), 4 * c)


@OPS.register(L.PatchMerge)
def _merge_ops(layer: L.PatchMerge, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """A pad, strided views and a concat: copies, 0 ops."""
    return OpCount(0, 0)


# --- receptive field ----------------------------------------------------------------------


def window_unit_map(window: int, shift: int) -> UnitMap:
    """Along one axis, token j reads the tokens of its window. The windows start at
    shift + k*window (the roll by -shift, then the partition); with a shift, the window the
    roll wraps around the border is masked into its two sides, so tokens [0, shift) read
    only each other: the window [shift - window, shift) on the unbounded grid, whose
    negative part is padding. For j = q*window + r: reads [shift - window, shift) + q*window
    when r < shift, else [shift, shift + window) + q*window.

    NB: torchvision's mask adds -100, not -inf, to the masked scores: a masked token weighs
    e^-100 (about 4e-44) of the others. The field treats it as unread, as the mask means."""
    reads = tuple(tuple(range(shift - window, shift)) if r < shift
                  else tuple(range(shift, shift + window)) for r in range(window))
    return UnitMap(period=window, shift=window, reads=reads)


def _token_axes(node, field: ReceptiveField) -> None:
    if field.layout != (1, 2):
        raise RfUnsupported(f"{node.kind} reads H and W at dims 1, 2 ([N, H, W, C]); here "
                            f"they are at dims {list(field.layout)}")


@RF.register(L.WindowAttention)
def _attention_rf(node, fields, ins, out, notes):
    """Window-bounded and exact unit by unit: each token sees the fields of the tokens of
    its (shifted) window, so the field is periodic with the window (`window_unit_map`).
    Tokens of the zero padding read no pixel (beyond the image on the unbounded grid)."""
    field = fields[0]
    _token_axes(node, field)
    _, h, w, _ = ins[0]
    shifts = effective_shift(node.layer, h, w)
    axes = (compose(a, window_unit_map(window, shift)) for a, window, shift in
            zip(field.axes, node.layer.window_size, shifts, strict=True))
    return ReceptiveField(tuple(axes), field.image, field.layout)


@RF.register(L.PatchMerge)
def _merge_rf(node, fields, ins, out, notes):
    """Token j reads tokens 2j and 2j + 1 per axis: a 2x2 window of stride 2."""
    field = fields[0]
    _token_axes(node, field)
    axes = (compose(a, window_map(2, 2, 0)) for a in field.axes)
    return ReceptiveField(tuple(axes), field.image, field.layout)


# --- minimum input ------------------------------------------------------------------------


@M.FORMS.register(L.WindowAttention)
def _attention_form(layer: L.Layer, ins: tuple[M.Dims, ...]) -> M.Dims:
    """Any H, W: padded to the window. The input's sizes."""
    return ins[0]


@M.FORMS.register(L.PatchMerge)
def _merge_form(layer: L.Layer, ins: tuple[M.Dims, ...]) -> M.Dims:
    """ceil(x / 2) = floor((x + 1) / 2) on H and W; 4C."""
    if len(ins[0]) != 4 or type(ins[0][3]) is not int:
        raise M.NoForm("not tokens [N, H, W, C] with a constant channel count")
    n, h, w, c = ins[0]
    return (n, M._floor_dim(h, 1, 2), M._floor_dim(w, 1, 2), 4 * c)
