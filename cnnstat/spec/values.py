"""Turn located YAML values into typed layer field values, evaluating expressions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnnstat.errors import SpecError
from cnnstat.spec import schema as S
from cnnstat.spec.expr import MAX_MAGNITUDE, ExprError, Number, evaluate, magnitude
from cnnstat.spec.yaml_tree import YMap, YNode, YScalar, YSeq, YWordBool

Env = Mapping[str, Number]


def number(node: YNode, env: Env, what: str) -> Number:
    """A scalar number, or a string expression evaluated in `env`."""
    if not isinstance(node, YScalar):
        raise SpecError(f"{what} must be a number, got a {_describe(node)}", node.loc)
    value = node.value
    if isinstance(value, str):
        try:
            return evaluate(value, env)
        except ExprError as e:
            shown = value if len(value) <= 60 else value[:57] + "..."
            raise SpecError(f"{what}: {e} (in '{shown}')", node.loc) from None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if value != value or abs(value) > MAX_MAGNITUDE:  # as for expressions: NaN, inf, 1e100
            raise SpecError(f"{what} must be a number within +-{MAX_MAGNITUDE:.0e}, got "
                            f"{magnitude(value)}", node.loc)
        return value
    raise SpecError(f"{what} must be a number, got {_show(value)}", node.loc)


def integer(node: YNode, env: Env, what: str, *, minimum: int | None = 1) -> int:
    value = number(node, env, what)
    if isinstance(value, bool):
        raise SpecError(f"{what} must be an integer, got {_show(value)}{word_hint(node)}",
                        node.loc)
    if isinstance(value, float):
        if not value.is_integer():
            raise SpecError(f"{what} must be an integer, got {value:g}", node.loc)
        value = int(value)
    if minimum is not None and value < minimum:
        kind = "positive" if minimum == 1 else f"at least {minimum}"
        raise SpecError(f"{what} must be {kind}, got {value}", node.loc)
    return value


def boolean(node: YNode, env: Env, what: str) -> bool:
    value = number(node, env, what)
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise SpecError(f"{what} must be true or false, got {_show(value)}", node.loc)


def real(node: YNode, env: Env, what: str) -> float:
    value = number(node, env, what)
    if isinstance(value, bool):
        raise SpecError(f"{what} must be a number, got {_show(value)}{word_hint(node)}",
                        node.loc)
    return float(value)


def field_value(
    node: YNode, ftype: str, env: Env, what: str, choices: tuple[str, ...] = ()
) -> Any:
    """Convert one field of a layer entry to the type its dataclass expects."""
    if ftype in _SIZES:
        return _sizes(node, env, what, *_SIZES[ftype])
    convert = _FIELD_TYPES.get(ftype)
    if convert is None:
        raise AssertionError(f"unknown field type {ftype}")
    return convert(node, env, what, choices)


def _padding(node: YNode, env: Env, what: str) -> tuple[int, int] | str:
    if isinstance(node, YScalar) and node.value in ("same", "valid"):
        return "same" if node.value == "same" else (0, 0)
    return _pair(node, lambda n: integer(n, env, what, minimum=0), what)


# Each field type's conversion: (node, env, what, choices) -> the dataclass's value.
_FIELD_TYPES: dict[str, Any] = {
    S.INT: lambda node, env, what, _: integer(node, env, what),
    S.NONNEG: lambda node, env, what, _: integer(node, env, what, minimum=0),
    S.SIGNED: lambda node, env, what, _: integer(node, env, what, minimum=None),
    S.PAIR: lambda node, env, what, _: _pair(
        node, lambda n: integer(n, env, what, minimum=1), what),
    S.NONNEG_PAIR: lambda node, env, what, _: _pair(
        node, lambda n: integer(n, env, what, minimum=0), what),
    S.PADDING: lambda node, env, what, _: _padding(node, env, what),
    S.FLOAT: lambda node, env, what, _: real(node, env, what),
    S.FPAIR: lambda node, env, what, _: _pair(node, lambda n: real(n, env, what), what),
    S.BOOL: lambda node, env, what, _: boolean(node, env, what),
    S.SHAPE: lambda node, env, what, _: _shape(node, env, what),
    S.SIGNED_LIST: lambda node, env, what, _: _signed_list(node, env, what),
    S.STR: lambda node, _env, what, choices: _choice(node, choices, what),
}


def _pair(node: YNode, one, what: str) -> tuple:
    if isinstance(node, YSeq):
        if len(node.items) != 2:
            raise SpecError(f"{what} must be one value or [h, w], got {len(node.items)} values",
                            node.loc)
        return (one(node.items[0]), one(node.items[1]))
    value = one(node)
    return (value, value)


# 1-D / 3-D window types: (rank, smallest value, 'same'/'valid' accepted).
_SIZES = {S.SIZES1: (1, 1, False), S.NONNEG_SIZES1: (1, 0, False), S.PADDING1: (1, 0, True),
          S.SIZES3: (3, 1, False), S.NONNEG_SIZES3: (3, 0, False), S.PADDING3: (3, 0, True)}


def _sizes(node: YNode, env: Env, what: str, rank: int, minimum: int,
           padding: bool) -> tuple[int, ...] | str:
    """An int (the same on every axis) or a list of `rank` ints; padding also takes
    'same' and 'valid' (= 0)."""
    if padding and isinstance(node, YScalar) and node.value in ("same", "valid"):
        return "same" if node.value == "same" else (0,) * rank
    if isinstance(node, YSeq):
        if len(node.items) != rank:
            axes = "[l]" if rank == 1 else "[d, h, w]"
            raise SpecError(f"{what} must be one value or {axes}, got {len(node.items)} "
                            "values", node.loc)
        return tuple(integer(n, env, what, minimum=minimum) for n in node.items)
    return (integer(node, env, what, minimum=minimum),) * rank


def _shape(node: YNode, env: Env, what: str) -> tuple[int, ...]:
    if not isinstance(node, YSeq):
        raise SpecError(f"{what} must be a list of sizes, got a {_describe(node)}", node.loc)
    sizes = []
    for item in node.items:
        size = integer(item, env, what, minimum=-1)
        if size == 0:
            raise SpecError(f"{what}: sizes must be positive or -1, got 0", item.loc)
        sizes.append(size)
    return tuple(sizes)


def _signed_list(node: YNode, env: Env, what: str) -> tuple[int, ...]:
    if not isinstance(node, YSeq):
        raise SpecError(f"{what} must be a list of dims, got a {_describe(node)}", node.loc)
    return tuple(integer(item, env, what, minimum=None) for item in node.items)


def _choice(node: YNode, choices: tuple[str, ...], what: str) -> str:
    if not isinstance(node, YScalar) or not isinstance(node.value, str):
        raise SpecError(f"{what} must be one of {', '.join(choices)}{word_hint(node)}",
                        node.loc)
    if choices and node.value not in choices:
        raise SpecError(
            f"{what} must be one of {', '.join(choices)}, got '{node.value}'", node.loc
        )
    return node.value


def text(node: YNode, what: str) -> str:
    if not isinstance(node, YScalar) or node.value is None or isinstance(node.value, bool):
        raise SpecError(f"{what} must be text, got a {_describe(node)}{word_hint(node)}",
                        node.loc)
    return str(node.value)


def word_hint(node: YNode) -> str:
    """Why a word became a bool (YAML 1.1 reads on/off/yes/no as true/false)."""
    if not isinstance(node, YWordBool):
        return ""
    shown = "true" if node.value else "false"
    return f" (YAML reads the word {node.written} as {shown}; quote it: '{node.written}')"


def _describe(node: YNode) -> str:
    if isinstance(node, YSeq):
        return "list"
    if isinstance(node, YMap):
        return "mapping"
    return type(node.value).__name__


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)
