"""The shape of spec entries: which keys each construct takes, and the checks that depend
only on the YAML node (so the expander can answer them once per node, not per use)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cnnstat.errors import Location, SpecError, did_you_mean
from cnnstat.spec import schema as S
from cnnstat.spec import values as V
from cnnstat.spec.yaml_tree import YMap, YNode, YScalar, YSeq

if TYPE_CHECKING:
    from cnnstat.spec.blocks import Call
    from cnnstat.spec.layer_entry import LayerEntry

TOP_KEYS = (
    "name", "title", "family", "year", "paper", "follows", "input", "notes", "blocks",
    "layers", "outputs", "aux_outputs",
)
# In the order the expander tries them: an entry with `repeat` and `layers` is a repeat.
STRUCTURE_KEYS = ("repeat", "parallel", "layers", "backbone", "regions")
DISPATCH_ORDER = ("repeat", "parallel", "backbone", "regions", "layers")
_STRUCTURE = frozenset(STRUCTURE_KEYS)
REPEAT_KEYS = ("repeat", "as", "each", "layers", *S.COMMON_KEYS)
PARALLEL_KEYS = ("parallel", "merge", "dim", *S.COMMON_KEYS)
GROUP_KEYS = ("layers", *S.COMMON_KEYS)
REGIONS_KEYS = ("regions", "layers", *S.COMMON_KEYS)
BACKBONE_KEYS = ("backbone", "until", "patch", *S.COMMON_KEYS)
_SEGMENT = re.compile("[A-Za-z0-9_-]+")  # ASCII letters, digits, '_' and '-'
UNSET: Any = object()  # a Plan's `name` before it is looked at
MERGE_WORDS = {"concat": "concat", "cat": "concat", "add": "add", "multiply": "multiply",
               "mul": "multiply"}


def as_map(node: YNode) -> YMap:
    """A layer entry as a mapping: `relu` is `{relu: null}`."""
    if isinstance(node, YScalar) and isinstance(node.value, str) and node.value:
        return YMap({node.value: YScalar(None, node.loc)}, {node.value: node.loc}, node.loc)
    if isinstance(node, YMap) and node.items:
        return node
    raise SpecError("a layer entry is a kind name (relu) or a mapping ({conv: 64, k: 3})",
                    node.loc)


def as_seq(node: YNode, what: str) -> YSeq:
    if isinstance(node, YSeq):
        return node
    if isinstance(node, YScalar) and node.value is None:
        return YSeq((), node.loc)
    raise SpecError(f"{what} must be a list of layers", node.loc)


def merge_kind(node: YMap) -> S.KindSpec:
    merge_node = node.get("merge")
    if merge_node is None:
        raise SpecError("parallel needs 'merge: concat', 'merge: add' or 'merge: multiply'",
                        node.loc)
    word = V.text(merge_node, "merge")
    if word not in MERGE_WORDS:
        raise SpecError(f"merge must be concat, add or multiply, got '{word}'"
                        f"{did_you_mean(word, MERGE_WORDS)}", merge_node.loc)
    return S.KINDS[MERGE_WORDS[word]]


def without(node: YMap, keys: tuple[str, ...]) -> YMap:
    items = {k: v for k, v in node.items.items() if k not in keys}
    return YMap(items, {k: node.keys[k] for k in items}, node.loc)


def check_keys(node: YMap, allowed: tuple[str, ...], what: str) -> None:
    for key in node.items:
        if key not in allowed:
            raise SpecError(f"{what} has no key '{key}'{did_you_mean(key, allowed)}",
                            node.keys[key])


def segment(name: str, loc: Location) -> str:
    if not _SEGMENT.fullmatch(name):
        raise SpecError(f"a name is letters, digits, '_' or '-' (no dots), got '{name}'", loc)
    return name


def local_name(node: YMap) -> str | None:
    """The entry's `name:` (its scope segment), or None for an automatic name."""
    name = node.get("name")
    return None if name is None else segment(V.text(name, "name"), name.loc)


class Plan:
    """What one YAML entry is, found once: its mapping, its structure key, its kind or
    block (`head`), its `name:`, whether its keys passed the check. A check that fails
    leaves its slot unset, so the next use raises the same error at the same point."""

    __slots__ = ("source", "map", "loc", "when", "frozen", "ref", "structure", "head", "name",
                 "keys_ok", "body", "layer", "call")

    def __init__(self, source: YNode):
        self.source = source  # kept alive: the plans are keyed by id(source)
        self.map = as_map(source)
        self.loc = self.map.loc
        self.when = self.map.get("when")
        self.frozen = self.map.get("frozen")
        self.ref = self.map.get("from")
        self.structure: str | None = None  # the key that makes it a repeat, group, ...
        if not _STRUCTURE.isdisjoint(self.map.items):  # most entries are layers
            self.structure = next(k for k in DISPATCH_ORDER if k in self.map.items)
        self.head: str | None = None
        self.name: object = UNSET
        self.keys_ok = False
        self.body: Any = None  # a repeat's body, a parallel's named branches
        self.layer: LayerEntry | None = None
        self.call: Call | None = None
