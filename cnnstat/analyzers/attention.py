"""Shapes, parameters and work of attention (cnnstat/ir/layers_nd.py).

MACs are the matmuls, as torch's FlopCounterMode counts them (docs/conventions.md): for
scaled dot-product attention QK^T (L*S*E per batch and head) and AV (L*S*Ev); for
nn.MultiheadAttention also its projections, counted as linear layers (rows * in * out).
Other ops: 1 per attention score for the scale, 3 for the softmax (as `softmax`), 1 more
for a causal mask; the projections' bias adds.
"""

from __future__ import annotations

import math

from cnnstat.analyzers.ops import OPS, OpCount
from cnnstat.analyzers.params import PARAMS, ParamCount
from cnnstat.analyzers.shapes import SHAPES, Shape
from cnnstat.ir import layers as L

_SCORE_OPS = 4  # scale, then softmax's exp, sum and divide


def _qkv(layer: L.Layer, ins: tuple[Shape, ...]) -> tuple[Shape, Shape, Shape]:
    """(query, key, value): one input is all three (self-attention)."""
    if len(ins) == 1:
        return ins[0], ins[0], ins[0]
    if len(ins) != 3:
        raise ValueError(f"{layer.kind} takes one input (self-attention) or three "
                         f"(query, key, value), got {len(ins)}")
    return ins  # type: ignore[return-value]


def _shown(*shapes: Shape) -> str:
    return " vs ".join(str(list(s)) for s in shapes)


@SHAPES.register(L.ScaledDotProductAttention)
def _sdpa(layer: L.ScaledDotProductAttention, ins: tuple[Shape, ...]) -> Shape:
    """q [..., L, E], k [..., S, E], v [..., S, Ev] -> [..., L, Ev] (torch's rule, without
    broadcasting the leading dims)."""
    q, k, v = _qkv(layer, ins)
    if len(q) < 3 or not len(q) == len(k) == len(v):
        raise ValueError("needs query, key, value [N, ..., L, E] of one rank, got "
                         f"{_shown(q, k, v)}")
    if not q[:-2] == k[:-2] == v[:-2]:
        raise ValueError("query, key and value must agree in their leading dims: "
                         f"{_shown(q, k, v)}")
    if q[-1] != k[-1] or k[-2] != v[-2]:
        raise ValueError("key must have the query's last dim and value the key's length: "
                         f"{_shown(q, k, v)}")
    return (*q[:-1], v[-1])


def _scores(q: Shape, k: Shape) -> int:
    """Attention scores: one per (batch and head) x query position x key position."""
    return math.prod(q[:-2]) * q[-2] * k[-2]


@PARAMS.register(L.ScaledDotProductAttention)
def _sdpa_params(layer: L.Layer, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    return ParamCount(0)


@OPS.register(L.ScaledDotProductAttention)
def _sdpa_ops(layer: L.ScaledDotProductAttention, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """MACs = scores * (E + Ev) (QK^T, then AV); other = scores * (4, + 1 causal mask)."""
    q, k, v = _qkv(layer, ins)
    scores = _scores(q, k)
    return OpCount(scores * (q[-1] + v[-1]), scores * (_SCORE_OPS + layer.is_causal))


def _mha_dims(layer: L.MultiheadAttention, ins: tuple[Shape, ...]
              ) -> tuple[int, int, int, int, int, int, int]:
    """(N, L, S, E, kdim, vdim, head_dim) of a multi-head attention call."""
    q, k, v = _qkv(layer, ins)
    if not len(q) == len(k) == len(v) == 3:
        layout = "[N, L, E]" if layer.batch_first else "[L, N, E]"
        raise ValueError(f"needs query, key, value {layout}, got {_shown(q, k, v)}")
    if not layer.batch_first:
        q, k, v = ((s[1], s[0], s[2]) for s in (q, k, v))
    n, length, embed = q
    if k[0] != n or v[0] != n or k[1] != v[1]:
        raise ValueError(f"key and value must have the query's batch and one length: "
                         f"{_shown(q, k, v)}")
    if embed % layer.num_heads:
        raise ValueError(f"embed_dim {embed} is not divisible by num_heads {layer.num_heads}")
    return n, length, k[1], embed, k[2], v[2], embed // layer.num_heads


@SHAPES.register(L.MultiheadAttention)
def _mha(layer: L.MultiheadAttention, ins: tuple[Shape, ...]) -> Shape:
    _mha_dims(layer, ins)
    return ins[0]


@PARAMS.register(L.MultiheadAttention)
def _mha_params(layer: L.MultiheadAttention, ins: tuple[Shape, ...], out: Shape) -> ParamCount:
    """Input projections E*E + E*kdim + E*vdim (+ 3E bias), output projection E*E (+ E)."""
    _, _, _, e, kdim, vdim, _ = _mha_dims(layer, ins)
    weights = e * (e + kdim + vdim) + e * e
    bias = 4 * e if layer.bias else 0
    formula = f"{e}x({e}+{kdim}+{vdim}) + {e}x{e}" + (f" + 4x{e}" if bias else "")
    return ParamCount(weights + bias, 0, formula)


@OPS.register(L.MultiheadAttention)
def _mha_ops(layer: L.MultiheadAttention, ins: tuple[Shape, ...], out: Shape) -> OpCount:
    """MACs = projections N*L*E*E (q), N*S*kdim*E (k), N*S*vdim*E (v), N*L*E*E (out), plus
    QK^T and AV, N*L*S*E each (summed over the heads); other = 4 per score (scale and
    softmax, per head) and, with bias, 1 add per projected element."""
    n, length, s, e, kdim, vdim, _ = _mha_dims(layer, ins)
    projections = n * length * e * e + n * s * (kdim + vdim) * e + n * length * e * e
    attention = 2 * n * length * s * e
    scores = n * layer.num_heads * length * s
    bias = (2 * n * length * e + 2 * n * s * e) if layer.bias else 0
    return OpCount(projections + attention, _SCORE_OPS * scores + bias)
