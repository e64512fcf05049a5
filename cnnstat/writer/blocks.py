"""Finding the structure that repeats: blocks with arguments, and repeats over them.

Two scopes share a block when their bodies are written alike except for numbers (channel
counts, strides, kernel sizes). The numbers that differ between calls become the block's
arguments; one that is always a fixed multiple of another is written as an expression of
it (`"4 * conv1_out"`), as a person would. A group whose children are calls `0..n-1` of
one block, each taking the previous one's output, becomes a named repeat whose arguments
are expressions of the index (`"2 if i == 0 else 1"`, `"64 * 2 ** i"`).

Scopes are chosen outermost first, shapes with three or more calls before those with two
(so ResNet's bottlenecks win over a pair of similar stages); the scopes inside a chosen
block are written as groups in its body. A block has at least three layers.
"""

from __future__ import annotations

import json
import keyword
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cnnstat.spec import schema as S
from cnnstat.writer.emit import HIDDEN, LOCAL, Call, Emitter, Plan, Repeat
from cnnstat.writer.entries import DEFAULTS, Entry
from cnnstat.writer.tree import Scope

_RESERVED = {"i", "input"} | set(keyword.kwlist) | set(S.all_kind_words())


@dataclass(slots=True)
class Block:
    name: str
    params: list[str]
    body: list[Entry]  # numbers that vary replaced by argument names or expressions
    used_by: list[str]


@dataclass(slots=True)
class _Candidate:
    scope: Scope
    body: list[Entry]
    key: str
    values: list[Any]
    labels: list[str]


def plan_blocks(root: Scope, emitter: Emitter) -> tuple[Plan, list[Block]]:
    candidates = {id(s): _candidate(s, emitter) for s in root.scopes()[1:]
                  if s.entry is not None and len(s.nodes()) >= 2}
    by_key: dict[str, list[_Candidate]] = {}
    for cand in candidates.values():
        by_key.setdefault(cand.key, []).append(cand)
    refused: set[str] = set()
    while True:  # drop keys that end up with one call once outer blocks took the rest
        chosen = _choose(root, candidates, by_key, refused)
        uses: dict[str, list[_Candidate]] = {}
        for cand in chosen:
            uses.setdefault(cand.key, []).append(cand)
        lonely = {k for k, c in uses.items() if len(c) < 2}
        if not lonely:
            break
        refused |= lonely
    return _plan(root, uses, emitter)


def _candidate(scope: Scope, emitter: Emitter) -> _Candidate:
    body = emitter.block_body(scope)
    values, labels = [], []
    for value, label in _numbers(body, ()):
        values.append(value)
        labels.append(label)
    key = json.dumps(_blank(body), default=str)
    return _Candidate(scope, body, key, values, labels)


def _choose(root: Scope, candidates: dict[int, _Candidate],
            by_key: dict[str, list[_Candidate]], refused: set[str]) -> list[_Candidate]:
    """Outermost first: a scope whose shape has 3+ calls is a block call; then, among
    the scopes left, those whose shape has 2 calls and 3+ layers. Scopes inside a call
    are written as groups in the block's body."""
    chosen: list[_Candidate] = []

    def visit(scope: Scope, min_count: int) -> None:
        for child in scope.children:
            if not isinstance(child, Scope):
                continue
            if id(child) in taken:
                continue
            cand = candidates.get(id(child))
            holds_call = any(id(s) in taken for s in child.scopes())
            if cand is not None and cand.key not in refused and not holds_call and \
                    len(by_key[cand.key]) >= min_count and len(child.nodes()) >= 3:
                chosen.append(cand)
                taken.update(id(s) for s in child.scopes())
                continue
            visit(child, min_count)

    taken: set[int] = set()
    visit(root, 3)
    visit(root, 2)
    return chosen


def _plan(root: Scope, uses: dict[str, list[_Candidate]], emitter: Emitter
          ) -> tuple[Plan, list[Block]]:
    plan, blocks = Plan(), []
    taken: set[str] = set()
    ordered = sorted(uses.values(), key=lambda cands: _position(root, cands[0].scope))
    for cands in ordered:
        name = _block_name([c.scope for c in cands], taken)
        params, body, per_call = _arguments(cands)
        blocks.append(Block(name, params, body, [".".join(c.scope.path) for c in cands]))
        for cand, args in zip(cands, per_call, strict=True):
            plan.calls[id(cand.scope)] = Call(name, args)
    for scope in root.scopes()[1:]:
        repeat = _repeat(scope, plan)
        if repeat is not None:
            plan.repeats[id(scope)] = repeat
    emitter.plan = plan
    return plan, blocks


def _position(root: Scope, scope: Scope) -> int:
    return next(i for i, s in enumerate(root.scopes()) if s is scope)


# ---- arguments ------------------------------------------------------------------------
def _arguments(cands: list[_Candidate]) -> tuple[list[str], list[Entry], list[dict]]:
    """Block parameters, the body with them substituted, and each call's values."""
    columns = list(zip(*(c.values for c in cands), strict=True))
    params: list[str] = []
    param_columns: list[tuple] = []
    formulas: list[Any] = []
    for label, column in zip(cands[0].labels, columns, strict=True):
        if len(set(map(repr, column))) == 1:
            formulas.append(column[0])
            continue
        formula = _derived(column, params, param_columns)
        if formula is None:
            name = _param_name(label, params)
            params.append(name)
            param_columns.append(column)
            formula = name
        formulas.append(formula)
    body = _without_defaults(_substitute(cands[0].body, iter(formulas)))
    per_call = [{p: col[k] for p, col in zip(params, param_columns, strict=True)}
                for k in range(len(cands))]
    return params, body, per_call


def _derived(column: tuple, params: list[str], columns: list[tuple]) -> str | None:
    """An earlier parameter this column equals, or is a whole multiple or divisor of."""
    if not all(type(v) is int for v in column):
        return next((p for p, c in zip(params, columns, strict=True) if c == column), None)
    for name, other in zip(params, columns, strict=True):
        if other == column:
            return name
        if not all(type(v) is int and v > 0 for v in other):
            continue
        if all(v % o == 0 for v, o in zip(column, other, strict=True)):
            factors = {v // o for v, o in zip(column, other, strict=True)}
            if len(factors) == 1:
                return f"{factors.pop()} * {name}"
        if all(v > 0 and o % v == 0 for v, o in zip(column, other, strict=True)):
            divisors = {o // v for v, o in zip(column, other, strict=True)}
            if len(divisors) == 1:
                return f"{name} // {divisors.pop()}"
    return None


def _param_name(label: str, taken: list[str]) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in label)
    if not name[0].isalpha():
        name = "x" + name
    base, n = name, 2
    while name in taken or name in _RESERVED:
        name, n = f"{base}_{n}", n + 1
    return name


# ---- walking the numbers of a body ----------------------------------------------------
_SKIP = frozenset({"name", "from", "layers", "regions", *HIDDEN})
_OUT = frozenset({"conv", "convt", "fc"})


def _numbers(entries: list[Entry], prefix: tuple[str, ...]) -> Iterator[tuple[Any, str]]:
    for entry in entries:
        if "layers" in entry:  # a group (its name is a scope) or a per-region scope
            inner = (*prefix, entry["name"]) if "name" in entry else prefix
            yield from _numbers(entry["layers"], inner)
            continue
        for key, value in entry.items():
            if key not in _SKIP:
                label = "_".join((*prefix, entry[LOCAL], "out" if key in _OUT else key))
                yield from _leaves(value, label)


def _leaves(value: Any, label: str) -> Iterator[tuple[Any, str]]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        yield value, label
    elif isinstance(value, list):
        suffixes = ("h", "w") if len(value) == 2 else tuple(map(str, range(len(value))))
        for item, suffix in zip(value, suffixes, strict=True):
            yield from _leaves(item, f"{label}_{suffix}")


def _blank(entries: list[Entry]) -> Any:
    return _substitute(entries, _Hashes())


class _Hashes:
    def __next__(self) -> str:
        return "#"

    def __iter__(self) -> _Hashes:
        return self


def _substitute(entries: list[Entry], formulas: Iterator[Any]) -> list[Entry]:
    """`entries` with each number, in `_numbers` order, replaced by the next formula."""
    out = []
    for entry in entries:
        new: Entry = {}
        for key, value in entry.items():
            if key == DEFAULTS and isinstance(formulas, _Hashes):
                continue  # not part of a body's shape
            if key == "layers":
                new[key] = _substitute(value, formulas)
            elif key in _SKIP or "layers" in entry:
                new[key] = value
            else:
                new[key] = _replace(value, formulas)
        out.append(new)
    return out


def _without_defaults(entries: list[Entry]) -> list[Entry]:
    """Drop keys that ended up a constant at the loader's default (`s: 1`, `p: 0`)."""
    out = []
    for entry in entries:
        defaults = entry.get(DEFAULTS, {})
        new = {k: v for k, v in entry.items() if k not in defaults or v != defaults[k]}
        if "layers" in new:
            new["layers"] = _without_defaults(new["layers"])
        out.append(new)
    return out


def _replace(value: Any, formulas: Iterator[Any]) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return next(formulas)
    if isinstance(value, list):
        return [_replace(v, formulas) for v in value]
    return value


# ---- names and repeats ----------------------------------------------------------------
def _block_name(scopes: list[Scope], taken: set[str]) -> str:
    """What the calls' names have in common: `denselayer1..24` -> `denselayer`,
    `Mixed_5b..5d` -> `Mixed_5`; numbered calls (`layer1.0`) take their parent's name."""
    names = [_own_name(s) for s in scopes]
    base = os.path.commonprefix(names).rstrip("_-")
    if len(base) < 2 or base.isdigit():
        base = "block"
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in base)
    if not base[0].isalpha():
        base = "block_" + base
    name, n = base, 2
    while name in taken or name in _RESERVED or name in _KEYS:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _own_name(scope: Scope) -> str:
    words = [s for s in scope.path if not s.isdigit()]
    return words[-1] if words else "block"


_KEYS = frozenset({*S.COMMON_KEYS, "repeat", "parallel", "layers", "backbone", "regions",
                   "merge", "as", "args", "until", "patch", "dim"})


def _repeat(scope: Scope, plan: Plan) -> Repeat | None:
    """A group of calls `0..n-1` of one block, each fed by the one before."""
    kids = scope.children
    if len(kids) < 2 or not all(isinstance(k, Scope) and id(k) in plan.calls for k in kids):
        return None
    calls = [plan.calls[id(k)] for k in kids]
    if len({c.block for c in calls}) != 1:
        return None
    for index, kid in enumerate(kids):
        if kid.local != str(index):
            return None
        if index and kid.entry != kids[index - 1].nodes()[-1].name:
            return None
    args = {}
    for param in calls[0].args:
        formula = index_formula([c.args[param] for c in calls])
        if formula is None:
            return None
        args[param] = formula
    return Repeat(calls[0].block, len(kids), args)


def index_formula(values: list[Any]) -> Any:
    """`values[i]` as a constant or an expression of `i`, or None."""
    first, rest = values[0], values[1:]
    if all(v == first and type(v) is type(first) for v in rest):
        return first
    if all(v == rest[0] and type(v) is type(rest[0]) for v in rest):
        return f"{first!r} if i == 0 else {rest[0]!r}"
    if not all(type(v) is int for v in values):
        return None
    step = values[1] - values[0]
    if all(b - a == step for a, b in zip(values, values[1:], strict=False)):
        return _linear(values[0], step)
    if values[0] and all(b == 2 * a for a, b in zip(values, values[1:], strict=False)):
        return f"{values[0]} * 2 ** i"
    return None


def _linear(start: int, step: int) -> str:
    term = "i" if step == 1 else f"{step} * i"
    if start == 0:
        return term if step > 0 else f"-{abs(step)} * i"
    sign = "+" if step > 0 else "-"
    term = "i" if abs(step) == 1 else f"{abs(step)} * i"
    return f"{start} {sign} {term}"
