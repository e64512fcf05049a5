"""Finding the structure that repeats: blocks with arguments, and repeats over them.

Two scopes share a block when their bodies are written alike except for numbers (channel
counts, strides, kernel sizes). The numbers that differ between calls become the block's
arguments; one that is always a fixed multiple of another is written as an expression of
it (`"4 * conv1_out"`), as a person would. Calls in a row become repeats (repeats.py).

Two shapes that differ by one named group fed by the call's input (torchvision's
`downsample`) are one block whose group carries `when: with_<group>`; two that differ by
the residual tail (`x + drop_path(f(x))`: EfficientNet's first block of a stage has none)
are one block whose tail carries `when: residual`. Scopes are chosen outermost first,
shapes with three or more calls before those with two (so ResNet's bottlenecks win over
a pair of similar stages), and a scope whose children are all one shape in a row is left
to be a repeat of them; the scopes inside a chosen block are written as groups in its
body. A block has at least three layers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cnnstat.ir import Node
from cnnstat.spec import schema as S
from cnnstat.spec.syntax import STRUCTURE_KEYS
from cnnstat.writer.arguments import RESERVED, infer
from cnnstat.writer.emit import Call, Emitter, Plan
from cnnstat.writer.entries import Entry
from cnnstat.writer.numbers import numbers, shape_key
from cnnstat.writer.repeats import numbering, plan_repeats
from cnnstat.writer.tree import Scope


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
    flags: dict[str, bool] = field(default_factory=dict)  # optional group -> present


def plan_blocks(root: Scope, emitter: Emitter) -> tuple[Plan, list[Block]]:
    candidates = {id(s): _candidate(s, emitter) for s in root.scopes()[1:]
                  if s.entry is not None and len(s.nodes()) >= 2}
    by_key: dict[str, list[_Candidate]] = {}
    for cand in candidates.values():
        by_key.setdefault(cand.key, []).append(cand)
    _merge_optional(by_key, emitter)
    _merge_residual(by_key, emitter)
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
    pairs = list(numbers(body, ()))
    return _Candidate(scope, body, shape_key(body), [v for v, _ in pairs],
                      [label for _, label in pairs])


# ---- optional groups: torchvision's `downsample` ----------------------------------------
def _merge_optional(by_key: dict[str, list[_Candidate]], emitter: Emitter) -> None:
    """Merge shape A with shape B when B is A without one named group G fed by the
    block's input (its output replaced by that input): one block whose G carries
    `when: with_G`, as ResNet's first block of a stage and the others are one block.
    A skipped named entry stands for its input (docs/spec.md), so every use of G's
    output is written `from: G`."""
    for key in list(by_key):
        group_a = by_key.get(key)
        if not group_a or any(c.flags for c in group_a):
            continue
        first = group_a[0]
        for index, group in enumerate(first.scope.children):
            if not _optional_ok(first.scope, group):
                continue
            reduced = _without_group(first.scope, group, emitter)
            group_b = by_key.get(reduced)
            if reduced == key or not group_b or any(c.flags for c in group_b):
                continue
            _merge(group_a, group_b, index, group, emitter)
            merged = f"optional {group.local}: {reduced}"
            by_key[merged] = [*by_key.pop(key), *by_key.pop(reduced)]
            for cand in by_key[merged]:
                cand.key = merged
            break


def _merge_residual(by_key: dict[str, list[_Candidate]], emitter: Emitter) -> None:
    """Merge shape A with shape B when B is A without its residual tail (the stochastic
    depth and the add of the block's input): one block whose tail carries
    `when: residual`, as EfficientNet's and MobileNet's first block of a stage (no
    residual: the shapes differ) and the others are one block. A skipped add stands for
    its first input, a skipped stochastic depth for its input (docs/spec.md)."""
    for key in list(by_key):
        group_a = by_key.get(key)
        if not group_a or any(c.flags for c in group_a):
            continue
        scope = group_a[0].scope
        start = _residual_tail(scope)
        if start is None:
            continue
        rest = Scope(scope.path, scope.children[:start], scope.entry)
        reduced = shape_key(emitter.block_body(rest))
        group_b = by_key.get(reduced)
        if reduced == key or not group_b or any(c.flags for c in group_b):
            continue
        flag = "residual"
        body = emitter.block_body(scope, optional={id(n): flag for n in scope.children[start:]})
        width = len(list(numbers(group_a[0].body[start:], ())))
        for cand in group_a:
            cand.body, cand.flags = body, {flag: True}
        for cand in group_b:
            cand.values = [*cand.values, *[None] * width]
            cand.body, cand.labels, cand.flags = body, group_a[0].labels, {flag: False}
        merged = f"residual: {reduced}"
        by_key[merged] = [*by_key.pop(key), *by_key.pop(reduced)]
        for cand in by_key[merged]:
            cand.key = merged


def _residual_tail(scope: Scope) -> int | None:
    """The index of the first child of the trailing `x + drop_path(f(x))`, if any."""
    kids = scope.children
    add = kids[-1] if kids else None
    if not isinstance(add, Node) or add.layer.kind != "add" or len(add.inputs) != 2 or \
            scope.entry not in add.inputs:
        return None
    start = len(kids) - 1
    while start > 1 and isinstance(kids[start - 1], Node) and \
            kids[start - 1].layer.kind == "drop_path":
        start -= 1
    if start < 1:
        return None
    out = kids[start - 1].nodes()[-1] if isinstance(kids[start - 1], Scope) else kids[start - 1]
    for node in kids[start:-1]:
        if node.inputs != (out.name,):
            return None
        out = node
    other = [i for i in add.inputs if i != scope.entry]
    return start if other == [out.name] else None


def _optional_ok(scope: Scope, group: Scope | Any) -> bool:
    if not isinstance(group, Scope) or group.entry != scope.entry:
        return False
    inner = {n.name for n in group.nodes()}
    last = group.nodes()[-1].name
    outside = [n for n in scope.nodes() if n.name not in inner]
    return all(i == last or i not in inner for n in outside for i in n.inputs)


def _without_group(scope: Scope, group: Scope, emitter: Emitter) -> str:
    rest = Scope(scope.path, [c for c in scope.children if c is not group], scope.entry)
    body = emitter.block_body(rest, alias={group.nodes()[-1].name: scope.entry})
    return shape_key(body)


def _merge(group_a: list[_Candidate], group_b: list[_Candidate], index: int,
           group: Scope, emitter: Emitter) -> None:
    """A's calls keep their numbers; B's get None where G's numbers are."""
    flag = "with_" + "".join(c if c.isalnum() else "_" for c in group.local)
    scope = group_a[0].scope
    body = emitter.block_body(scope, forced={group.nodes()[-1].name: group.local},
                              optional={id(group): flag})
    start = len(list(numbers(group_a[0].body[:index], ())))
    width = len(list(numbers(group_a[0].body[index:index + 1], ())))
    for cand in group_a:
        cand.body, cand.flags = body, {flag: True}
    for cand in group_b:
        cand.values = [*cand.values[:start], *[None] * width, *cand.values[start:]]
        cand.body, cand.labels, cand.flags = body, group_a[0].labels, {flag: False}


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
                    len(by_key[cand.key]) >= min_count and len(child.nodes()) >= 3 and \
                    not _sequence_of_one_shape(child, candidates, refused):
                chosen.append(cand)
                taken.update(id(s) for s in child.scopes())
                continue
            visit(child, min_count)

    taken: set[int] = set()
    visit(root, 3)
    visit(root, 2)
    return chosen


def _sequence_of_one_shape(scope: Scope, candidates: dict[int, _Candidate],
                           refused: set[str]) -> bool:
    """Children that are all one shape, each fed by the one before and numbered (an
    `nn.Sequential` of equal blocks): the children are the blocks, so the scope can be
    a repeat, rather than the scope a block whose body spells each child out (ConvNeXt's
    stages of 3, 3, 9 and 3 blocks: a repeat each, not a stage block called 3 times)."""
    kids = scope.children
    cands = [candidates.get(id(k)) for k in kids]
    if len(kids) < 2 or any(c is None or len(c.scope.nodes()) < 3 for c in cands):
        return False
    keys = {c.key for c in cands}
    counted = numbering(kids[0].local, kids[1].local)
    return len(keys) == 1 and not keys & refused and counted is not None and all(
        kid.local == counted.name(n) and (n == 0 or kid.entry == kids[n - 1].nodes()[-1].name)
        for n, kid in enumerate(kids))


def _plan(root: Scope, uses: dict[str, list[_Candidate]], emitter: Emitter
          ) -> tuple[Plan, list[Block]]:
    plan, blocks = Plan(), []
    taken: set[str] = set()
    position = {id(s): i for i, s in enumerate(root.scopes())}
    ordered = sorted(uses.values(), key=lambda cands: position[id(cands[0].scope)])
    for cands in ordered:
        name = _block_name([c.scope for c in cands], taken)
        flags = {f: [c.flags[f] for c in cands] for f in cands[0].flags}
        params, body, per_call, free = infer(cands[0].body, cands[0].labels,
                                             [c.values for c in cands], flags)
        blocks.append(Block(name, params, body, [".".join(c.scope.path) for c in cands]))
        for cand, args, unused in zip(cands, per_call, free, strict=True):
            plan.calls[id(cand.scope)] = Call(name, args, unused)
    plan_repeats(root, plan)
    emitter.plan = plan
    return plan, blocks


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
    while name in taken or name in RESERVED or name in _KEYS:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _own_name(scope: Scope) -> str:
    words = [s for s in scope.path if not s.isdigit()]
    return words[-1] if words else "block"


# The names the loader refuses for a block, and the other keys of the entries the writer
# puts a call in (a block called `as` would be read as a repeat's index name).
_KEYS = frozenset({*S.COMMON_KEYS, *STRUCTURE_KEYS, "merge", "as", "each", "args", "until",
                   "patch", "dim"})
