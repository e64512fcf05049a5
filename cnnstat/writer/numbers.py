"""The numbers in a block body, in one fixed order: what may become a block argument.

Ints and floats of layer fields (not names, references, booleans or strings) are the
"numbers"; `numbers()` walks them with a readable label each (`conv1_out`,
`downsample_0_s`), `substitute()` puts formulas back in the same order, and `shape_key()`
is the body with every number blanked, so bodies that differ only in numbers compare equal.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from cnnstat.writer.emit import HIDDEN, LOCAL
from cnnstat.writer.entries import DEFAULTS, Entry

_SKIP = frozenset({"name", "from", "layers", "regions", *HIDDEN})
_OUT = frozenset({"conv", "convt", "fc"})


def numbers(entries: list[Entry], prefix: tuple[str, ...]) -> Iterator[tuple[Any, str]]:
    for entry in entries:
        if "layers" in entry:  # a group (its name is a scope) or a per-region scope
            inner = (*prefix, entry["name"]) if "name" in entry else prefix
            yield from numbers(entry["layers"], inner)
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


def shape_key(entries: list[Entry]) -> str:
    # DEFAULTS stays in: it depends only on each layer's kind, so it never tells apart
    # two bodies of the same shape.
    return json.dumps(substitute(entries, itertools.repeat("#")), default=str)


def substitute(entries: list[Entry], formulas: Iterator[Any]) -> list[Entry]:
    """`entries` with each number, in `numbers()` order, replaced by the next formula."""
    out = []
    for entry in entries:
        new: Entry = {}
        for key, value in entry.items():
            if key == "layers":
                new[key] = substitute(value, formulas)
            elif key in _SKIP or "layers" in entry:
                new[key] = value
            else:
                new[key] = _replace(value, formulas)
        out.append(new)
    return out


def without_defaults(entries: list[Entry]) -> list[Entry]:
    """Drop keys that ended up a constant at the loader's default (`s: 1`, `p: 0`)."""
    out = []
    for entry in entries:
        defaults = entry.get(DEFAULTS, {})
        new = {k: v for k, v in entry.items() if k not in defaults or v != defaults[k]}
        if "layers" in new:
            new["layers"] = without_defaults(new["layers"])
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
