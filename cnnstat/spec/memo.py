"""Memo keys for expanding a block body again and again: the variables a piece of spec
can read, and their values in one environment.

Between two calls of a block with the same arguments only node names differ, so a layer
entry's `Layer` and a call's bound arguments are memoized per values of what they read.
A build that fails is never memoized, so its error is raised again, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cnnstat.spec.expr import ExprError, names_used
from cnnstat.spec.yaml_tree import YMap, YNode, YSeq

_ABSENT = object()  # a variable that is read but not bound


def variables_read(values: Iterable[YNode]) -> tuple[str, ...] | None:
    """Every name in every text of `values` (nested lists and mappings included), or
    None when a text is no expression: what holds one is built afresh every time."""
    names: set[str] = set()
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, YSeq):
            stack.extend(value.items)
        elif isinstance(value, YMap):
            stack.extend(value.items.values())
        elif isinstance(value.value, str):
            try:
                names |= names_used(value.value)
            except ExprError:
                return None
    return tuple(sorted(names))


def env_key(names: tuple[str, ...], env: Mapping) -> tuple | None:
    """The values of `names` in `env` as a memo key, or None when one is not an int or
    a bool (a float: -0.0 == 0.0 would share a key; floats are rare here)."""
    key = []
    for name in names:
        value = env.get(name, _ABSENT)
        kind = type(value)
        if kind is int or value is _ABSENT:
            key.append(value)
        elif kind is bool:  # True == 1 as a key: keep them apart
            key.append((bool, value))
        else:
            return None
    return tuple(key)
