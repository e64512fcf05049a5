"""YAML -> a tree of values that remember their `file:line:col`.

Only YAML's own scalar/sequence/mapping tags are accepted: a `!!python/...` or custom
tag is a located error, so a spec can never construct an object. Aliases are expanded
with a node budget (the "billion laughs" guard), and duplicate keys are errors.
Budget files use the same reader, so their errors are located the same way.
"""

from __future__ import annotations

import operator
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from cnnstat.errors import LimitError, Location, SpecError
from cnnstat.files import read_bytes

MAX_FILE_BYTES = 4 * 1024 * 1024
# The alias ("billion laughs") bound is on the RATIO of values made to values written,
# so a big honest file (100,000 layers, no aliases) loads and a 1 kB bomb does not: past
# MAX_YAML_NODES values, a file may hold at most MAX_ALIAS_RATIO values per one written.
MAX_YAML_NODES = 200_000
MAX_ALIAS_RATIO = 10
MAX_YAML_VALUES = 2_500_000  # in all: a 4 MiB file of `1,` holds 2,097,152 values
MAX_YAML_DEPTH = 100

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_MAP_TAG = "tag:yaml.org,2002:map"
# The first characters for which the safe loader tries its implicit-tag patterns (bool,
# int, float, null, merge, ...): any other plain scalar is a string.
_IMPLICIT_FIRST = frozenset(key for key in yaml.SafeLoader.yaml_implicit_resolvers if key)


class _FastResolver:
    """The safe loader's tags with less Python per node. libyaml composes in C but calls
    back into Python for every node to resolve its tag (and twice more for path
    resolvers, which the safe loader has none of): most scalars of a spec are names,
    strings at a glance."""

    descend_resolver = operator.is_  # any C function of two arguments: a no-op
    ascend_resolver = tuple  # of none

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0] and (not value or value[0] in _IMPLICIT_FIRST):
                return yaml.SafeLoader.resolve(self, kind, value, implicit)  # type: ignore
            return _STR_TAG
        return _SEQ_TAG if kind is yaml.SequenceNode else _MAP_TAG


# libyaml composes ~13x faster (the whole zoo in 60 ms instead of 0.8 s); same marks.
_CLoader = getattr(yaml, "CSafeLoader", None)
_COMPOSER = yaml.SafeLoader if _CLoader is None else type(
    "_Composer", (_FastResolver, _CLoader), {})


class _Located:
    """Where a value was written. The `Location` is built on first use from the YAML
    mark: a spec has thousands of values, and only the entries that become layers and
    the values an error names ever need theirs."""

    __slots__ = ("_loc", "_mark", "_file")  # a Location, or a yaml Mark (0-based) and file

    @property
    def loc(self) -> Location:
        if self._loc is None:
            mark = self._mark
            self._loc = Location(self._file, mark.line + 1, mark.column + 1)
        return self._loc

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
        return f"{type(self).__name__}({fields}, loc={self.loc})"

    _shown: tuple[str, ...] = ()


# Plain slotted classes, read-only by convention: frozen dataclasses cost several times
# as much to construct, and parsing the zoo constructs about 7,000 of them.
class YScalar(_Located):
    __slots__ = ("value",)
    _shown = ("value",)

    def __init__(self, value: str | int | float | bool | None, loc: Location | None,
                 mark: Any = None, file: str | None = None):
        self.value = value
        self._loc, self._mark, self._file = loc, mark, file


class YWordBool(YScalar):
    """A bool YAML 1.1 read from a word (on, off, yes, no, y, n, ...): the word is kept so
    an error can say why a name became true/false, and how to quote it."""

    __slots__ = ("written",)

    def __init__(self, value: bool, written: str, mark: Any, file: str | None):
        super().__init__(value, None, mark, file)
        self.written = written


class YSeq(_Located):
    __slots__ = ("items",)
    _shown = ("items",)

    def __init__(self, items: tuple[YNode, ...], loc: Location | None, mark: Any = None,
                 file: str | None = None):
        self.items = items
        self._loc, self._mark, self._file = loc, mark, file


class YMap(_Located):
    """A mapping with string keys; `keys` gives each key's own location."""

    __slots__ = ("items", "_keys", "_key_nodes")
    _shown = ("items",)

    def __init__(self, items: dict[str, YNode], keys: dict[str, Location] | None,
                 loc: Location | None, mark: Any = None, file: str | None = None,
                 key_nodes: dict[str, YScalar] | None = None):
        self.items = items
        self._keys = keys
        self._key_nodes = key_nodes  # the parsed keys, when `keys` is not given
        self._loc, self._mark, self._file = loc, mark, file

    @property
    def keys(self) -> dict[str, Location]:
        if self._keys is None:
            self._keys = {k: node.loc for k, node in self._key_nodes.items()}  # type: ignore
        return self._keys

    def get(self, key: str) -> YNode | None:
        return self.items.get(key)


YNode = YScalar | YSeq | YMap


def read_file(path: Path, shown_as: str | None = None) -> YNode:
    """Read and parse a YAML file; errors name `shown_as` (default: the path given)."""
    name = shown_as or str(path)
    raw = read_bytes(path, MAX_FILE_BYTES, name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(f"file is not UTF-8 (byte {e.start})", Location(name, line)) from e
    return parse(text, name)


def parse(text: str, file: str) -> YNode:
    """Parse one YAML document into located nodes."""
    try:
        root = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = _mark_location(text, file, mark) if mark else Location(file, 1, 1)
        problem = e.problem or e.context or "malformed YAML"
        if e.context and e.context_mark and e.problem:
            started = f"{e.context_mark.line + 1}:{e.context_mark.column + 1}"
            problem += f" ({e.context} that starts at {started})"
        raise SpecError(f"malformed YAML: {problem}", loc) from e
    except yaml.reader.ReaderError as e:  # a control character: no mark, only an offset
        char = e.character if isinstance(e.character, int) else ord(e.character)
        loc = Location(file, text.count("\n", 0, e.position) + 1,
                       e.position - text.rfind("\n", 0, e.position))
        raise SpecError(f"malformed YAML: character #x{char:04x}: {e.reason}", loc) from e
    except yaml.YAMLError as e:
        raise SpecError(f"malformed YAML: {e}", Location(file, 1, 1)) from e
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == "" and not
                        root.style):  # nothing, or `---` with nothing after it
        raise SpecError("the file is empty", Location(file, 1, 1))
    return _Converter(file).convert(root, 0)


_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # YAML's line breaks


def _mark_location(text: str, file: str, mark: yaml.Mark) -> Location:
    """A YAML error mark as FILE:LINE:COL. At the end of a file that does not end with a
    line break, libyaml counts one anyway (line N+1 of N): point at the end of the last
    line instead, where an editor puts the cursor."""
    parts = _BREAK.split(text)
    if mark.line < len(parts):
        return Location(file, mark.line + 1, mark.column + 1)
    return Location(file, len(parts), len(parts[-1]) + 1)


class _Converter:
    def __init__(self, file: str):
        self.file = file
        self.count = 0
        self.written: set[int] = set()  # ids of the composed nodes: an alias repeats one

    def loc(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def convert(self, node: yaml.Node, depth: int) -> YNode:
        self.count += 1
        self.written.add(id(node))
        if self.count > MAX_YAML_NODES and self.count > MAX_ALIAS_RATIO * len(self.written):
            raise LimitError(
                f"the YAML expands to more than {MAX_YAML_NODES} values (aliases that "
                f"multiply? {len(self.written)} written, {MAX_ALIAS_RATIO}x that made; "
                "see docs/limits.md)", self.loc(node))
        if self.count > MAX_YAML_VALUES:
            raise LimitError(f"the YAML expands to more than {MAX_YAML_VALUES} values (see "
                             "docs/limits.md)", self.loc(node))
        if depth > MAX_YAML_DEPTH:
            raise LimitError(f"YAML nested deeper than {MAX_YAML_DEPTH} levels", self.loc(node))
        tag = node.tag
        if isinstance(node, yaml.ScalarNode) and tag in _SCALAR_TAGS:
            if tag == _STR_TAG:  # most values: the text as written
                return YScalar(node.value, None, node.start_mark, self.file)
            if tag == _BOOL_TAG and node.value.lower() not in ("true", "false"):
                return YWordBool(_resolve_scalar(node), node.value, node.start_mark, self.file)
            try:
                value = _resolve_scalar(node)
            except ValueError:  # an int longer than Python's int() digit limit (4300)
                value = None
            if value is None and tag == _INT_TAG or _unprintable(value):  # 0xfff...: int()
                text = node.value  # takes it, but str() of it (in any message) would fail
                raise LimitError(f"the number {text[:20]}... has {len(text)} digits",
                                 self.loc(node)) from None
            return YScalar(value, None, node.start_mark, self.file)
        if isinstance(node, yaml.SequenceNode) and tag == _SEQ_TAG:
            items = tuple([self.convert(child, depth + 1) for child in node.value])
            return YSeq(items, None, node.start_mark, self.file)
        if isinstance(node, yaml.MappingNode) and tag == _MAP_TAG:
            return self.mapping(node, depth)
        raise SpecError(
            f"YAML tag '{node.tag}' is not allowed (specs hold plain data only)", self.loc(node)
        )

    def mapping(self, node: yaml.MappingNode, depth: int) -> YMap:
        items: dict[str, YNode] = {}
        keys: dict[str, YScalar] = {}
        for key_node, value_node in node.value:
            key = self.convert(key_node, depth + 1)
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys ('<<') are not supported", key.loc)
            if not isinstance(key, YScalar) or not isinstance(key.value, str | int):
                raise SpecError("mapping keys must be plain names", key.loc)
            # a key is always a name: `no:` (YAML 1.1 reads false) means the word written
            name = key.written if isinstance(key, YWordBool) else \
                key.value if type(key.value) is str else str(key.value)
            if name in items:
                raise SpecError(f"duplicate key '{name}'", key.loc)
            keys[name] = key
            items[name] = self.convert(value_node, depth + 1)
        return YMap(items, None, None, node.start_mark, self.file, keys)


_SCALAR_LOADER = yaml.SafeLoader("")
_CONSTRUCTORS = {
    "tag:yaml.org,2002:int": yaml.SafeLoader.construct_yaml_int,
    "tag:yaml.org,2002:float": yaml.SafeLoader.construct_yaml_float,
    "tag:yaml.org,2002:bool": yaml.SafeLoader.construct_yaml_bool,
    "tag:yaml.org,2002:null": yaml.SafeLoader.construct_yaml_null,
}


def _resolve_scalar(node: yaml.ScalarNode) -> Any:
    """A non-string scalar's value, as PyYAML's safe loader constructs it."""
    text = node.value
    if node.tag == _INT_TAG and text.isdigit() and text.isascii() and text[0] != "0":
        return int(text)  # plain decimal: what construct_yaml_int returns, without its steps
    return _CONSTRUCTORS[node.tag](_SCALAR_LOADER, node)


def _unprintable(value: Any) -> bool:
    """An int with more decimal digits than Python converts to text (4,300 by default)."""
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    return (type(value) is int and limit > 0
            and value.bit_length() * 0.30103 > limit - 1)


def plain(node: YNode) -> Any:
    """The node as plain Python data (for metadata and tests)."""
    if isinstance(node, YScalar):
        return node.value
    if isinstance(node, YSeq):
        return [plain(item) for item in node.items]
    return {key: plain(value) for key, value in node.items.items()}
