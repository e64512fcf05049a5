"""One registry of per-layer-kind handlers per analyzer (as torch's flop_counter does).

A handler is registered for kinds, or for a trait (`cnnstat.ir.layers.POINTWISE`, ...):
a kind with no handler of its own takes the handler of its first trait that has one.
A kind is either handled (possibly as zero, on purpose) or absent; absent kinds are
reported as unsupported by the engine, never counted as a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from cnnstat.ir.layers import ALL_KINDS, Layer

H = TypeVar("H", bound=Callable)


class Registry(Generic[H]):
    def __init__(self, analyzer: str):
        self.analyzer = analyzer
        self._handlers: dict[type[Layer], H] = {}
        self._traits: dict[str, H] = {}

    def register(self, *kinds: type[Layer]) -> Callable[[H], H]:
        def decorate(handler: H) -> H:
            for kind in kinds:
                if kind in self._handlers:
                    raise ValueError(f"{self.analyzer}: {kind.kind} registered twice")
                self._handlers[kind] = handler
            return handler

        return decorate

    def register_trait(self, trait: str) -> Callable[[H], H]:
        """The handler of every kind with `trait` that has no handler of its own."""
        def decorate(handler: H) -> H:
            if trait in self._traits:
                raise ValueError(f"{self.analyzer}: trait {trait} registered twice")
            self._traits[trait] = handler
            return handler

        return decorate

    def get(self, kind: type[Layer]) -> H | None:
        handler = self._handlers.get(kind)
        if handler is None:
            for trait in sorted(kind.traits):
                handler = self._traits.get(trait)
                if handler is not None:
                    self._handlers[kind] = handler  # resolved once, then a dict hit
                    break
        return handler

    def lookup(self) -> Callable[[type[Layer]], H | None]:
        """`get` for a pass over every node (take it once per pass): a dict hit for every
        kind already resolved."""
        handlers, get = self._handlers, self.get

        def find(kind: type[Layer]) -> H | None:
            handler = handlers.get(kind)
            return handler if handler is not None else get(kind)

        return find

    def kinds(self) -> frozenset[type[Layer]]:
        return frozenset(k for k in ALL_KINDS if self.get(k) is not None)
