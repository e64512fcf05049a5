"""Frozen, slotted, keyword-only dataclasses whose methods are written once, in `Record`,
or compiled only when a class is first used.

dataclass() compiles every method it generates with exec(), and no bytecode cache keeps
them: for the ~60 record classes (layer kinds, nodes, results) that was about half of
the spec path's start-up, though a model uses a handful of kinds. `@record` lets
dataclass() only collect the fields (so `dataclasses.fields` and `replace` work as
before) and adds the rest:

- `__init__` (keyword-only, then `__post_init__`): a stub that, at the class's first
  construction, compiles the code dataclass would generate (each value set through its
  slot's descriptor) and puts it in its place; later constructions run that code;
- the frozen `__setattr__` / `__delattr__`, and `__eq__`, `__hash__`, `__repr__`, here,
  behaving as the generated ones: fields compared in order, as a tuple, only with an
  instance of the very same class; the hash of that tuple; `Name(field=value, ...)`.
"""

from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from typing import Any, TypeVar

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
    """Base of every `@record` class: frozen, with value equality, hash and repr over its
    fields."""

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

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


def _compiled_init(cls: type, kw_only: bool) -> Any:
    """The __init__ dataclass would generate for `cls`."""
    scope: dict[str, Any] = {}
    params, body = [], []
    for i, f in enumerate(fields(cls)):
        scope[f"_set{i}"] = getattr(cls, f.name).__set__  # the slot's own setter
        if f.default_factory is not MISSING:
            scope[f"_factory{i}"] = f.default_factory
        if not f.init:  # set by __post_init__, or a default dataclass would set here
            if f.default_factory is not MISSING:
                body.append(f"    _set{i}(self, _factory{i}())")
            elif f.default is not MISSING:
                scope[f"_default{i}"] = f.default
                body.append(f"    _set{i}(self, _default{i})")
            continue
        if f.default_factory is not MISSING:
            params.append(f"{f.name}=_MISSING")
            body.append(f"    _set{i}(self, _factory{i}() if {f.name} is _MISSING else {f.name})")
            continue
        if f.default is MISSING:
            params.append(f.name)
        else:
            scope[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        body.append(f"    _set{i}(self, {f.name})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    scope["_MISSING"] = MISSING
    signature = ", ".join(["self", *(["*"] if kw_only and params else []), *params])
    exec(f"def __init__({signature}):\n" + "\n".join(body or ["    pass"]), scope)  # noqa: S102
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _first_init(cls: type, kw_only: bool) -> Any:
    """Compiles the class's __init__ at its first construction, then steps aside."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if cls.__dict__.get("__init__") is __init__:
            cls.__init__ = _compiled_init(cls, kw_only)  # type: ignore[misc]
        cls.__init__(self, *args, **kwargs)  # type: ignore[misc]

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def record(cls: T | None = None, *, kw_only: bool = True) -> Any:
    """`@dataclass(frozen=True, slots=True, kw_only=True)` for a subclass of `Record`;
    `@record(kw_only=False)` takes positional arguments too, as a plain dataclass."""
    if cls is None:
        return lambda c: record(c, kw_only=kw_only)
    if not issubclass(cls, Record):
        raise TypeError(f"{cls.__name__} must subclass Record to get its __eq__ and __hash__")
    if cls.__doc__ is None:  # dataclass would build one from inspect.signature
        cls.__doc__ = cls.__name__
    cls = dataclass(init=False, slots=True, kw_only=kw_only, eq=False, repr=False)(cls)
    cls.__init__ = _first_init(cls, kw_only)  # type: ignore[misc]
    return cls
