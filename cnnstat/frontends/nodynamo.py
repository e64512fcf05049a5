"""Run torch on meta tensors without importing `torch._dynamo` (issue 23).

torch 2.13 wraps many of its own Python functions (the meta kernels of `torch._refs`,
the dispatch of any TorchDispatchMode, FlopCounterMode's included) in
`torch._disable_dynamo`, which imports `torch._dynamo` at the first call only to ask it for
a function that runs the original outside a compile: 1-2 s and ~40 MiB that a process
which never compiles does not need. While `no_dynamo_import()` is active and
`torch._dynamo` has not been imported, a stand-in module answers that one question with
the original function, which is what the real one runs when nothing is being compiled.
On exit the stand-in is removed and every cached answer dropped, so a later
`torch.compile` in the same process imports the real `torch._dynamo` as if we had never
run. Not for threads that compile while a trace runs.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_NAME = "torch._dynamo"
_CACHE = "__dynamo_disable"  # the attribute torch._compile._disable_dynamo caches on fn


@contextmanager
def no_dynamo_import() -> Iterator[None]:
    if _NAME in sys.modules:  # already paid for: use the real one
        yield
        return
    import torch

    answered: list[Callable] = []

    def disable(fn: Callable, recursive: bool = True, wrapping: bool = True) -> Callable:
        answered.append(fn)
        return fn

    stand_in = types.ModuleType(_NAME, "cnnstat's stand-in while tracing (never compiles)")
    stand_in.disable = disable  # type: ignore[attr-defined]
    sys.modules[_NAME] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(_NAME) is stand_in:
            del sys.modules[_NAME]
        if torch.__dict__.get("_dynamo") is stand_in:
            del torch._dynamo
        for fn in answered:
            if getattr(fn, _CACHE, None) is fn:
                delattr(fn, _CACHE)
