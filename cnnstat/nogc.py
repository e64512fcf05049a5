"""Pausing the cyclic garbage collector while cnnstat builds big acyclic structures.

Loading, analyzing and writing a spec allocate a few objects per layer and almost no
cycles (a 100,000-layer spec leaves about 700 cyclic objects behind), but the collector
still walks every young object each 700 allocations and, as the heap grows, all of them
again: a tenth to a fifth of a big spec's time. Inside `paused()` it does not run; on
leaving, it is on again as before, so a program analyzing many models in a loop still
collects between them. Reference counting frees everything else as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import TypeVar

F = TypeVar("F", bound=Callable)


@contextmanager
def paused() -> Iterator[None]:
    if not gc.isenabled():  # already paused (nested), or turned off by the program
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def without_gc(function: F) -> F:
    """`function` runs inside `paused()`."""

    @wraps(function)
    def call(*args, **kwargs):
        with paused():
            return function(*args, **kwargs)

    return call  # type: ignore[return-value]
