"""Frozen, slotted, keyword-only dataclasses whose __eq__, __hash__ and __repr__ are
written once, in `Record`, instead of generated per class.

dataclass() compiles every method it generates with exec(); for the layer kinds that
was most of the import time of `cnnstat.ir`. `@record` still generates what must be per
class (__init__, and the frozen __setattr__ / __delattr__); the three methods here
behave as the generated ones do: fields compared in order, as a tuple, only with an
instance of the very same class; the hash of that tuple; `Name(field=value, ...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TypeVar

T = TypeVar("T", bound=type)

# Per class: the names of its compared, hashed and shown fields (dataclass's own rules).
_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}


def _names(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    names = _NAMES.get(cls)
    if names is None:
        all_fields = fields(cls)
        names = _NAMES[cls] = (
            tuple(f.name for f in all_fields if f.compare),
            tuple(f.name for f in all_fields if (f.compare if f.hash is None else f.hash)),
            tuple(f.name for f in all_fields if f.repr),
        )
    return names


class Record:
    """Base of every `@record` class: value equality, hash and repr over its fields."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        compared = _names(self.__class__)[0]
        return (tuple(getattr(self, n) for n in compared)
                == tuple(getattr(other, n) for n in compared))

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in _names(self.__class__)[1]))

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in _names(self.__class__)[2])
        return f"{self.__class__.__qualname__}({shown})"


def record(cls: T) -> T:
    """`@dataclass(frozen=True, slots=True, kw_only=True)` for a subclass of `Record`."""
    if not issubclass(cls, Record):
        raise TypeError(f"{cls.__name__} must subclass Record to get its __eq__ and __hash__")
    return dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)(cls)
