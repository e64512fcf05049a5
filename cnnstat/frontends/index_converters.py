"""Converters for the kinds of `cnnstat/ir/index_layers.py` (imported by converters.py):
`x[...]` (operator.getitem, Tensor.__getitem__) with slices and ints, Tensor.select and
torch.narrow; and the two calls of a vision transformer that read a learned module
tensor, `torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)` and
`x + self.pos_embedding` (reached from the `cat` and `add` converters when a tensor
argument is a module tensor).

Indexing converts only what one layer says: one dim sliced or indexed, every other
entry `:` (or `...`). Anything else (several dims at once, `None`, a tensor or a list as
an index, a negative step, the batch) stays opaque: torch counts it, nothing is guessed.
"""

from __future__ import annotations

from typing import Any

import torch

from cnnstat.frontends.converters import Call, register_function
from cnnstat.ir import layers as L

_FULL = slice(None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(value: Any) -> bool:
    """An index entry one layer can stand for: an int, or a slice of ints (step > 0)."""
    if _is_int(value):
        return True
    if not isinstance(value, slice):
        return False
    ends = (value.start, value.stop)
    return all(v is None or _is_int(v) for v in ends) and (
        value.step is None or _is_int(value.step) and value.step > 0)


def _dims(key: Any, rank: int) -> list[tuple[int, Any]] | None:
    """(dim, entry) of each entry that is not `:` (dims before a `...` counted from 0,
    after it from the end), or None for an index no layer stands for."""
    key = key if isinstance(key, tuple) else (key,)
    if sum(k is Ellipsis for k in key) > 1:
        return None
    cut = key.index(Ellipsis) if Ellipsis in key else len(key)
    before, after = key[:cut], key[cut + 1:]
    if len(before) + len(after) > rank or not all(map(_entry, before + after)):
        return None
    placed = [*enumerate(before), *((i - len(after), k) for i, k in enumerate(after))]
    return [(dim, k) for dim, k in placed if k != _FULL and k != slice(None, None, 1)]


def index_layer(x: Any, key: Any) -> L.Layer | None:
    """The layer for x[key], or None (opaque): see the module docstring."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        return None
    dims = _dims(key, x.dim())
    if dims is None or len(dims) > 1:
        return None
    if not dims:
        return L.Identity()  # x[:], x[...]
    (dim, entry), = dims
    if dim % x.dim() == 0:
        return None  # the batch
    if _is_int(entry):
        return L.Select(dim=dim, index=entry)
    return L.Slice(dim=dim, start=entry.start, stop=entry.stop, step=entry.step or 1)


@register_function("getitem")
def _getitem(call: Call) -> L.Layer | None:
    """x[:, a:b], x[:, :, ::2], x[..., -1], x[:, 0] (ViT's class token read out)."""
    if len(call.args) != 2:
        return None
    return index_layer(call.args[0], call.args[1])


@register_function("select")
def _select(call: Call) -> L.Layer | None:
    """x.select(dim, index) and torch.select(x, dim, index)."""
    x, dim, index = call.args[0], call.arg(1, "dim"), call.arg(2, "index")
    if not isinstance(x, torch.Tensor) or not _is_int(dim) or not _is_int(index) \
            or not -x.dim() <= dim < x.dim():
        return None
    return index_layer(x, (*[_FULL] * (dim % x.dim()), index))


@register_function("narrow")
def _narrow(call: Call) -> L.Layer | None:
    """torch.narrow(x, dim, start, length): x[..., start:start + length] along dim (a
    negative start counts from the end, as in torch)."""
    x, dim = call.args[0], call.arg(1, "dim")
    start, length = call.arg(2, "start"), call.arg(3, "length")
    if not isinstance(x, torch.Tensor) or not all(map(_is_int, (dim, start, length))) \
            or not -x.dim() <= dim < x.dim():
        return None
    start = start % x.shape[dim] if start < 0 else start
    return index_layer(x, (*[_FULL] * (dim % x.dim()), slice(start, start + length)))


# --- learned tokens and embeddings (called by the cat and add converters) ------------------


def learned_tokens(call: Call) -> L.Layer | None:
    """torch.cat([tokens..., x], dim=1) with the tokens module tensors ([1, t, D] each,
    expanded over the batch) and x [N, S, D]: a class_token layer of sum(t) tokens. The
    assembler checks that the tensors read hold exactly tokens x D parameters (no buffer).
    NB: the trace gives the number of module tensors, not their places; the tokens are
    taken to come first, as in torchvision's and timm's ViTs (a cat with them last has
    the same shape and counts)."""
    tensors, dim = call.arg(0, "tensors"), call.arg(1, "dim", 0)
    if not isinstance(tensors, list | tuple) or not _is_int(dim) \
            or call.constants != len(tensors) - 1 or len(tensors) < 2:
        return None
    if not all(isinstance(t, torch.Tensor) and t.dim() == 3 for t in tensors) \
            or dim % 3 != 1:
        return None
    *tokens, x = tensors
    if any(t.shape[0] != x.shape[0] or t.shape[2] != x.shape[2] for t in tokens):
        return None
    return L.ClassToken(tokens=sum(t.shape[1] for t in tokens))


def position_embedding(call: Call) -> L.Layer | None:
    """x + embedding, the embedding one module tensor of x's shape without the batch
    ([1, *x.shape[1:]] or x.shape[1:]), so the sum has x's shape."""
    if call.constants != 1 or len(call.args) != 2 or call.kwargs.get("alpha", 1) != 1:
        return None
    a, b = call.args
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.dim() < 2:
        return None
    out = tuple(call.out.shape)
    shapes = {tuple(a.shape), tuple(b.shape)}
    return L.PositionEmbedding() if out in shapes and \
        shapes <= {out, out[1:], (1, *out[1:])} else None
