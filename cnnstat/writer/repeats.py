"""Repeats: runs of calls of one block, each fed by the one before, numbered by name.

A group whose children are all such calls (an `nn.Sequential` of equal blocks) becomes a
named repeat; its iterations keep torch's names: `0`, `1`, ... as a repeat names them, any
other numbering (`block2-0`, `block2-1`: RegNet) through `each:` (docs/spec.md). A run
in the middle of a group (EfficientNet's stage `features.4`: a first block of its own,
then blocks `1` and `2` alike) becomes an unnamed repeat with `each: "{i + 1}"`, so the
iterations are the group's own scopes. Arguments are expressions of the index
(arguments.py); a run that has none written so stays calls.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cnnstat.ir import Node
from cnnstat.writer.arguments import index_formula
from cnnstat.writer.emit import Call, Plan, Repeat
from cnnstat.writer.tree import Scope

_NUMBER = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class Numbering:
    """Names `prefix{start + i}suffix`."""

    prefix: str
    start: int
    suffix: str

    def name(self, index: int) -> str:
        return f"{self.prefix}{self.start + index}{self.suffix}"

    def pattern(self) -> str | None:
        """The `each:` pattern, or None for a repeat's own names (`0`, `1`, ...)."""
        if (self.prefix, self.start, self.suffix) == ("", 0, ""):
            return None
        field = "{i}" if self.start == 0 else f"{{i + {self.start}}}"
        return f"{self.prefix}{field}{self.suffix}"


def plan_repeats(root: Scope, plan: Plan) -> None:
    """Find the repeats of every group whose children are calls (`plan.calls`)."""
    for scope in root.scopes():
        # Two calls whose arguments differ read better as two calls (any two values fit
        # a formula of the index), unless they are a whole `nn.Sequential`, numbered from
        # 0 (ResNet-18's stages of two blocks, RegNet's `block2-0`, `block2-1`).
        runs = [run for run in _runs(scope, plan) if run[1] > 2 or not any(
            isinstance(a, str) for a in run[3].values())
            or (run[1] == len(scope.children) and run[4].start == 0)]
        if len(runs) == 1 and runs[0][1] == len(scope.children) and scope is not root:
            _, count, block, args, counted = runs[0]
            plan.repeats[id(scope)] = Repeat(block, count, args, counted.pattern())
            continue
        for start, count, block, args, counted in runs:  # unnamed: `each:` names them
            plan.runs.setdefault(id(scope), {})[start] = \
                Repeat(block, count, args, counted.pattern() or "{i}")


def numbering(first: str, second: str) -> Numbering | None:
    """How two consecutive names count: `block2-0`, `block2-1` -> `block2-{i}`."""
    prefix = os.path.commonprefix([first, second]).rstrip("0123456789")
    tail = os.path.commonprefix([first[::-1], second[::-1]])[::-1]
    suffix = tail.lstrip("0123456789")
    a, b = (name[len(prefix):len(name) - len(suffix)] for name in (first, second))
    if not (_NUMBER.fullmatch(a) and _NUMBER.fullmatch(b)) or int(b) != int(a) + 1:
        return None
    return Numbering(prefix, int(a), suffix)


def _runs(scope: Scope, plan: Plan) -> Iterator[tuple[int, int, str, dict, Numbering]]:
    """(first child, length, block, arguments, numbering) of each run of two or more
    chained calls of one block whose names count up and whose arguments the index can
    express."""
    kids = scope.children
    start = 0
    while start < len(kids) - 1:
        length, counted = _run_at(kids, start, plan)
        args = _index_args(kids[start:start + length], plan) if counted else None
        if args is None:
            start += 1
            continue
        yield start, length, plan.calls[id(kids[start])].block, args, counted
        start += length


def _run_at(kids: list, start: int, plan: Plan) -> tuple[int, Numbering | None]:
    """How many children from `start` on are chained calls of one block, numbered."""
    first = _call(kids[start], plan)
    if first is None or not isinstance(kids[start + 1], Scope):
        return 1, None
    counted = numbering(kids[start].local, kids[start + 1].local)
    if counted is None:
        return 1, None
    length = 1
    while start + length < len(kids):
        kid, call = kids[start + length], _call(kids[start + length], plan)
        if call is None or call.block != first.block or kid.local != counted.name(length) \
                or kid.entry != kids[start + length - 1].nodes()[-1].name:
            break
        length += 1
    return length, (counted if length >= 2 else None)


def _call(kid: Scope | Node, plan: Plan) -> Call | None:
    return plan.calls.get(id(kid)) if isinstance(kid, Scope) else None


def _index_args(kids: list[Scope], plan: Plan) -> dict[str, Any] | None:
    """The calls' arguments as expressions of the index, or None if one has none."""
    calls = [plan.calls[id(k)] for k in kids]
    args = {}
    for param in calls[0].args:
        values = [None if param in c.free else c.args[param] for c in calls]
        formula = index_formula(values) if any(v is not None for v in values) else \
            calls[0].args[param]
        if formula is None:
            return None
        args[param] = formula
    return args

