"""One registry of per-layer-kind handlers per analyzer (as torch's flop_counter does).

A kind is either handled (possibly as zero, on purpose) or absent; absent kinds are
reported as unsupported by the engine, never counted as a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from cnnstat.ir.layers import Layer

H = TypeVar("H", bound=Callable)


class Registry(Generic[H]):
    def __init__(self, analyzer: str):
        self.analyzer = analyzer
        self._handlers: dict[type[Layer], H] = {}

    def register(self, *kinds: type[Layer]) -> Callable[[H], H]:
        def decorate(handler: H) -> H:
            for kind in kinds:
                if kind in self._handlers:
                    raise ValueError(f"{self.analyzer}: {kind.kind} registered twice")
                self._handlers[kind] = handler
            return handler

        return decorate

    def get(self, kind: type[Layer]) -> H | None:
        return self._handlers.get(kind)

    def lookup(self) -> Callable[[type[Layer]], H | None]:
        """`get` without the method call, for a pass over every node (take it once per pass)."""
        return self._handlers.get

    def kinds(self) -> frozenset[type[Layer]]:
        return frozenset(self._handlers)
