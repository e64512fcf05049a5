"""x * 0.5, x / 2, x + eps, 1 - x: a call of a tensor and a Python number -> the `scalar`
kind. Apart from the converters so that converters.py (add, sub) and weighted.py (mul)
use it as arith_converters.py (div, rsub) does: it imports none of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from cnnstat.ir import layers as L

if TYPE_CHECKING:
    from cnnstat.frontends.converters import Call

# The op with the number first: 2 * x is x * 2, 1 - x is rsub, 2 / x is rdiv.
_NUMBER_FIRST = {"mul": "mul", "add": "add", "sub": "rsub", "div": "rdiv"}
# Ops that already are "number op x" with the tensor first (Tensor.__rsub__(x, 1) is 1 - x).
_REVERSED_OPS = {"rsub": "rsub", "rdiv": "rdiv", "rtruediv": "rdiv"}
_DIVIDES = ("div", "truediv", "itruediv", "divide")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def scalar_layer(call: Call) -> L.Layer | None:
    """The scalar layer of `x op number` or `number op x`, or None (x + alpha * 2, a
    rounding division, two tensors: not this kind)."""
    op = "div" if call.op in _DIVIDES else call.op
    if len(call.args) != 2 or set(call.kwargs) - {"alpha"} or call.kwargs.get("alpha", 1) != 1:
        return None
    a, b = call.args
    if isinstance(a, torch.Tensor) and _number(b):
        op = _REVERSED_OPS.get(op, op)
        value = b
    elif _number(a) and isinstance(b, torch.Tensor) and op in _NUMBER_FIRST:
        op, value = _NUMBER_FIRST[op], a
    else:
        return None
    if op not in L.SCALAR_OPS or (op in ("div", "rdiv") and value == 0):
        return None
    return L.Scalar(op=op, value=float(value))
