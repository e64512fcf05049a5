"""Block arguments from the numbers of several calls, and repeats' index expressions.

Per number position, the values across calls: all equal -> a literal in the body; equal
to an earlier argument's column, or a whole multiple or divisor of it -> that argument or
an expression of it (`"4 * conv1_out"`); otherwise a new argument. A call whose block
skips an optional group has no values there (None): they match anything.
"""

from __future__ import annotations

import keyword
from typing import Any

from cnnstat.spec import schema as S
from cnnstat.spec.expr import evaluate
from cnnstat.writer.entries import Entry
from cnnstat.writer.numbers import substitute, without_defaults

RESERVED = {"i", "input"} | set(keyword.kwlist) | set(S.all_kind_words())
# The largest divisor a rate formula is searched for (a network of 1,000 blocks).
MAX_RATE_DIVISOR = 1000

def infer(body: list[Entry], labels: list[str], calls: list[list[Any]],
          flags: dict[str, list[bool]] | None = None
          ) -> tuple[list[str], list[Entry], list[dict[str, Any]], list[frozenset[str]]]:
    """Parameters, the body with formulas in place of numbers, each call's arguments, and
    each call's free arguments (numbers of an optional part the call skips: any value
    fits). `calls[k]` are call k's numbers in `numbers()` order (None where it has none);
    `flags` are boolean parameters given outright (an optional group's `when:`)."""
    params: list[str] = list(flags or {})
    columns: list[tuple] = [tuple(v) for v in (flags or {}).values()]
    holes: dict[str, tuple[bool, ...]] = {}  # a parameter -> the calls that skip it
    numbers = list(zip(*calls, strict=True)) or [() for _ in labels]
    formulas: list[Any] = [None] * len(labels)
    # Numbers every call has come first: one an optional group alone has (RegNet's
    # projection width) is then written as the argument it equals where present.
    order = sorted(range(len(labels)), key=lambda n: None in numbers[n])
    for n in order:
        column = numbers[n]
        known = {repr(v) for v in column if v is not None}
        if len(known) == 1:
            formulas[n] = next(v for v in column if v is not None)
            continue
        formula = _derived(column, params, columns)
        if formula is None:
            first = next(v for v in column if v is not None)
            params.append(_param_name(labels[n], params))
            columns.append(tuple(first if v is None else v for v in column))
            holes[params[-1]] = tuple(v is None for v in column)
            formula = params[-1]
        formulas[n] = formula
    written = without_defaults(substitute(body, iter(formulas)))
    per_call = [{p: col[k] for p, col in zip(params, columns, strict=True)}
                for k in range(len(calls))]
    free = [frozenset(p for p, hole in holes.items() if hole[k]) for k in range(len(calls))]
    return params, written, per_call, free


def _derived(column: tuple, params: list[str], columns: list[tuple]) -> str | None:
    """An earlier parameter this column equals, or is a whole multiple or divisor of
    (positions where the column has no value match anything)."""
    for name, other in zip(params, columns, strict=True):
        pairs = [(v, o) for v, o in zip(column, other, strict=True) if v is not None]
        if all(v == o and type(v) is type(o) for v, o in pairs):
            return name
        if not all(type(v) is int and type(o) is int and v > 0 and o > 0 for v, o in pairs):
            continue
        if all(v % o == 0 for v, o in pairs) and len({v // o for v, o in pairs}) == 1:
            return f"{pairs[0][0] // pairs[0][1]} * {name}"
        if all(o % v == 0 for v, o in pairs) and len({o // v for v, o in pairs}) == 1:
            return f"{name} // {pairs[0][1] // pairs[0][0]}"
    return None


def _param_name(label: str, taken: list[str]) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in label)
    if not name[0].isalpha():
        name = "x" + name
    base, n = name, 2
    while name in taken or name in RESERVED:
        name, n = f"{base}_{n}", n + 1
    return name


def index_formula(values: list[Any]) -> Any:
    """`values[i]` as a constant or an expression of the repeat index `i`, or None.
    A None is a call whose block skips the number (an optional part): any value fits."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    (i0, first), kinds = known[0], {type(v) for _, v in known}
    if len(kinds) == 1 and all(v == first for _, v in known):
        return first
    if kinds == {float}:
        return rate_formula(known)
    rest = [v for i, v in known if i > 0]
    if i0 == 0 and all(v == rest[0] and type(v) is type(rest[0]) for v in rest):
        if isinstance(first, bool):
            return "i == 0" if first else "i != 0"
        return f"{first!r} if i == 0 else {rest[0]!r}"
    if kinds != {int}:
        return None
    (i1, second) = known[1]
    if (second - first) % (i1 - i0):
        return None
    step = (second - first) // (i1 - i0)
    start = first - step * i0
    if all(v == start + step * i for i, v in known):
        return _linear(start, step)
    if len(known) == len(values) and first and \
            all(b == 2 * a for a, b in zip(values, values[1:], strict=False)):
        return f"{first} * 2 ** i"
    return None


def _linear(start: int, step: int) -> str:
    term = "i" if abs(step) == 1 else f"{abs(step)} * i"
    if start == 0:
        return term if step > 0 else f"-{term}"
    return f"{start} {'+' if step > 0 else '-'} {term}"


def rate_formula(known: list[tuple[int, float]]) -> str | None:
    """Rates that grow linearly with the block's number, as torchvision computes them:
    `p * (k + i) / d` (ConvNeXt: `prob * block_id / (total - 1.0)`; EfficientNet:
    `prob * block_id / total`), given `(i, rate)` pairs. Found by search over short `p`
    and small `d`, kept only where the spec's own evaluator gives every rate bit for bit,
    so rounding can never differ."""
    (a, rate_a), (b, rate_b) = known[0], known[1]
    step = (rate_b - rate_a) / (b - a)
    if step <= 0:
        return None
    for digits in range(1, 7):  # the shortest rate first: 0.1 over 17, not 0.00588 over 1
        for d in range(1, MAX_RATE_DIVISOR + 1):
            p = round(step * d, digits)
            if p <= 0:
                continue
            k = round(rate_a * d / p) - a
            if k < 0 or abs((k + a) * p / d - rate_a) > 1e-9 * max(1.0, rate_a):
                continue
            index = "i" if k == 0 else f"({k} + i)"
            text = f"{p!r} * {index}" + ("" if d == 1 else f" / {d}")
            if all(_evaluates(text, i, v) for i, v in known):
                return text
    return None


def _evaluates(text: str, index: int, value: float) -> bool:
    got = evaluate(text, {"i": index})
    return type(got) is float and got == value
