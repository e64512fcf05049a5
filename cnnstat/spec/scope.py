"""Scopes: where node names are made, and what a name or `$input` refers to there."""

from __future__ import annotations

INPUT_NAME = "input"
BLOCK_INPUT = "$input"  # in `from:`: the input of the enclosing block call or repeat iteration


class Scope:
    """Where names are made: the dotted path, the variables, and the auto-name counters."""

    __slots__ = ("path", "env", "parent", "counters", "entry", "prefix")

    def __init__(self, path: tuple[str, ...], env: dict, parent: Scope | None = None,
                 counters: dict[str, int] | None = None, entry: str = INPUT_NAME,
                 prefix: str | None = None):
        self.path = path
        self.env = env
        self.parent = parent
        self.counters = {} if counters is None else counters
        # What `$input` names: the input of the innermost block call or repeat iteration.
        self.entry = entry
        # of every full name made here: "layer1.0." (names are made once per layer)
        self.prefix = "".join(f"{p}." for p in path) if prefix is None else prefix

    def child(self, segment: str, env: dict | None = None, entry: str | None = None
              ) -> Scope:
        """A named scope inside this one; `entry`: it is a block call's or an iteration's
        (what `$input` names there)."""
        return Scope(self.path + (segment,), self.env if env is None else env, self,
                     entry=self.entry if entry is None else entry,
                     prefix=f"{self.prefix}{segment}.")

    def with_env(self, env: dict) -> Scope:
        """Same names and counters, other variables (an unnamed repeat's iteration)."""
        return Scope(self.path, env, self.parent, self.counters, self.entry, self.prefix)

    def entered(self, inp: str) -> Scope:
        """This scope with `$input` naming `inp` (a block call or repeat iteration)."""
        self.entry = inp
        return self

    def full(self, local: str) -> str:
        return self.prefix + local

    def auto(self, short: str) -> str:
        self.counters[short] = count = self.counters.get(short, 0) + 1
        return f"{short}{count}"
