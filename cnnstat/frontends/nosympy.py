"""Run torch's meta kernels without importing sympy (issue 23).

Every `torch._check` in a meta kernel (the first is `meta_conv`'s shape check) imports
`torch.fx.experimental.symbolic_shapes` for `expect_true`, and with it sympy: about 0.5 s
and 30 MiB, to learn that a plain `True` is true; batch norm's decomposition imports sympy
itself, for `isinstance(x, sympy.Basic)`. Symbolic sizes (`SymInt`, `SymBool`) only exist
where a ShapeEnv made them, which is that module's; a trace of cnnstat's on meta tensors
has plain ints and bools. While `no_sympy_import()` is active and neither module has been
imported, stand-ins hold their places. That of symbolic_shapes answers the handful of
names meta kernels ask for (those below: traces over torchvision's classifiers,
segmenters and video networks ask for nothing else) on plain values, as the real
functions do; that of sympy answers `Basic` with a class nothing is an instance of (the
real one once sympy is loaded). Anything else, and any argument that is not plain, goes
to the real module, imported then (both stand-ins step aside). On exit they are removed;
a function of theirs that a module imported meanwhile keeps working, since it defers to
the real one for every value that is not plain. Limits: importing a submodule of sympy
(`import sympy.abc`) while the stand-in holds its place fails (it is no package); not for
threads that run symbolic shapes (a compile, an export) while a trace runs.
"""

from __future__ import annotations

import functools
import importlib
import operator
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_SHAPES = "torch.fx.experimental.symbolic_shapes"
_SYMPY = "sympy"
_PARENT, _, _CHILD = _SHAPES.rpartition(".")


def _real(name: str) -> types.ModuleType:
    """The real module `name`, imported now if need be. Both stand-ins go first: the real
    symbolic_shapes imports sympy's submodules, which a stand-in cannot hold."""
    for stood in (_SHAPES, _SYMPY):
        if isinstance(sys.modules.get(stood), _StandIn):
            del sys.modules[stood]
    return importlib.import_module(name)


_SHAPE_TYPES = (tuple, list, torch.Size)


def _is_bool(a) -> bool:
    return type(a) is bool


def expect_true(a, skip: int = 0):
    return a if _is_bool(a) else _real(_SHAPES).expect_true(a, skip + 1)  # +1: this frame


def guard_or_false(a):
    return a if _is_bool(a) else _real(_SHAPES).guard_or_false(a)


def guard_or_true(a):
    return a if _is_bool(a) else _real(_SHAPES).guard_or_true(a)


def statically_known_true(x):
    return x if _is_bool(x) else _real(_SHAPES).statically_known_true(x)


def statically_known_false(x):
    return (not x) if _is_bool(x) else _real(_SHAPES).statically_known_false(x)


def guard_bool(a):
    return a if _is_bool(a) else _real(_SHAPES).guard_bool(a)


def guard_size_oblivious(expr):
    return expr if _is_bool(expr) else _real(_SHAPES).guard_size_oblivious(expr)


def sym_and(x, *others):
    if _is_bool(x) and all(map(_is_bool, others)):
        return functools.reduce(operator.and_, others, x)
    return _real(_SHAPES).sym_and(x, *others)


def sym_or(x, *others):
    if _is_bool(x) and all(map(_is_bool, others)):
        return functools.reduce(operator.or_, others, x)
    return _real(_SHAPES).sym_or(x, *others)


def sym_eq(x, y):
    if type(x) in _SHAPE_TYPES and type(y) in _SHAPE_TYPES and len(x) == len(y) \
            and all(type(v) is int for v in x) and all(type(v) is int for v in y):
        return tuple(x) == tuple(y)  # two shapes: the common case, without recursion
    same = _plain_eq(x, y)
    return _real(_SHAPES).sym_eq(x, y) if same is None else same


def _plain_eq(x, y) -> bool | None:
    """The real `sym_eq` on plain ints and (nested) sequences of them: lengths first, then
    `==` element by element; None where it would meet anything else."""
    if isinstance(x, tuple | list) and isinstance(y, tuple | list):
        if len(x) != len(y):
            return False
        same = [_plain_eq(a, b) for a, b in zip(x, y, strict=True)]
        return None if None in same else all(same)
    if type(x) in (int, bool) and type(y) in (int, bool):
        return x == y
    return None


def is_nested_int(s):
    return _real(_SHAPES).is_nested_int(s) if isinstance(s, torch.SymInt) else False


def _deferred(name: str):
    """A function of the real module that no plain trace calls, asked for with the ones
    that it does (`from ... import guard_or_false, has_guarding_hint`): the real one, run
    when called."""
    def call(*args, **kwargs):
        return getattr(_real(_SHAPES), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


class _NoSympyObject:
    """`sympy.Basic` while sympy is not imported: no value is one."""


_ANSWERS = {fn.__name__: fn for fn in (
    expect_true, guard_or_false, guard_or_true, statically_known_true,
    statically_known_false, guard_bool, guard_size_oblivious, sym_and, sym_or, sym_eq,
    is_nested_int)}
_ANSWERS.update((name, _deferred(name)) for name in ("has_guarding_hint",
                                                      "guarding_hint_or_throw"))


class _StandIn(types.ModuleType):
    """Answers what it holds; asked anything else, the real module does (imported then)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):  # hasattr(m, "__path__"), inspect's "__file__": not ours
            raise AttributeError(name)
        if name == "Basic" and self.__name__ == _SYMPY and not _loaded(_SYMPY):
            return _NoSympyObject  # looked up each time: the real one once sympy is loaded
        return getattr(_real(self.__name__), name)


def _loaded(name: str) -> bool:
    module = sys.modules.get(name)
    return module is not None and not isinstance(module, _StandIn)


@contextmanager
def no_sympy_import() -> Iterator[None]:
    if _SHAPES in sys.modules or _SYMPY in sys.modules:  # imported, or an outer trace's
        yield
        return
    shapes = _StandIn(_SHAPES, "cnnstat's stand-in while tracing on meta tensors")
    shapes.__dict__.update(_ANSWERS)
    shapes.__path__ = []  # `from it import a, b` then looks each up, not `__path__`: faster
    stand_ins = {_SHAPES: shapes, _SYMPY: _StandIn(_SYMPY, shapes.__doc__)}
    parent = sys.modules.get(_PARENT)
    sys.modules.update(stand_ins)
    if parent is not None and not hasattr(parent, _CHILD):
        setattr(parent, _CHILD, shapes)  # `torch.fx.experimental.symbolic_shapes.x`
    try:
        yield
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
        if parent is not None and parent.__dict__.get(_CHILD) is shapes:
            delattr(parent, _CHILD)
