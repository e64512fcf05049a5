"""A repeat's `each:`: the pattern that names its iterations (`"block2-{i}"`).

Without it a named repeat's iterations are `0`, `1`, ...; torch models name theirs
otherwise (torchvision's RegNet: `block2-0`, `block2-1`), and a spec that keeps those names
keeps what users match layers by. Each `{...}` holds an expression (the repeat index, the
enclosing block's arguments: `{i}`, `{i + 1}`) whose value must be an integer.
"""

from __future__ import annotations

import re
from functools import lru_cache

from cnnstat.errors import SpecError
from cnnstat.spec import syntax as Y
from cnnstat.spec import values as V
from cnnstat.spec.yaml_tree import YNode, YScalar

_FIELD = re.compile(r"\{([^{}]*)\}")
EXAMPLE = '"block-{i}"'


class IterationNames:
    """Names the iterations of one repeat from its `each:` node, and refuses two alike."""

    __slots__ = ("node", "parts", "seen")

    def __init__(self, node: YNode):
        if not isinstance(node, YScalar) or not isinstance(node.value, str):
            raise SpecError(f"each must be a name pattern such as {EXAMPLE}", node.loc)
        self.node = node
        self.parts = _parts(node.value, node)
        self.seen: dict[str, int] = {}

    def name(self, env: dict, index: int) -> str:
        """The scope name of iteration `index` (its variables in `env`)."""
        pieces = []
        for literal, expr in self.parts:
            pieces.append(literal)
            if expr is not None:
                value = V.integer(YScalar(expr, self.node.loc), env, f"each: {{{expr}}}",
                                  minimum=None)
                pieces.append(str(value))
        text = "".join(pieces)
        try:
            Y.segment(text, self.node.loc)
        except SpecError:
            raise SpecError(f"each: iteration {index} would be named '{text}'; a name is "
                            "letters, digits, '_' or '-' (no dots)", self.node.loc) from None
        first = self.seen.setdefault(text, index)
        if first != index:
            raise SpecError(f"each: iterations {first} and {index} are both named '{text}'",
                            self.node.loc)
        return text


@lru_cache(maxsize=256)
def _split(pattern: str) -> tuple[tuple[str, str | None], ...] | str:
    """(literal, expression) pairs, or the reason the pattern is malformed."""
    parts, at = [], 0
    for match in _FIELD.finditer(pattern):
        parts.append((pattern[at:match.start()], match.group(1).strip()))
        at = match.end()
    rest = pattern[at:]
    if any(c in "{}" for literal, _ in parts for c in literal) or any(c in "{}" for c in rest):
        return f"each: unbalanced '{{' or '}}' in '{pattern}'"
    if not parts:
        return (f"each: '{pattern}' names every iteration alike; put the index in it, as "
                f"in {EXAMPLE}")
    if any(not expr for _, expr in parts):
        return f"each: an empty {{}} in '{pattern}'; write the index inside, as in {EXAMPLE}"
    return (*parts, (rest, None))


def _parts(pattern: str, node: YNode) -> tuple[tuple[str, str | None], ...]:
    parts = _split(pattern)
    if isinstance(parts, str):
        raise SpecError(parts, node.loc)
    return parts
