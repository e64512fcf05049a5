"""A tiny, safe evaluator for parameter arithmetic in specs (`4*growth`, `2 if i == 0 else 1`).

Never Python `eval`: the text is parsed by `ast` and only a whitelist of node types is
turned into closures, each of which computes one node. Names resolve to block arguments
and the repeat index only; calls are to the functions in `functions.py` only (max, min,
round, floor, ceil, log2, make_divisible); there is no attribute access, subscript,
comprehension or lambda. Exponents and magnitudes are bounded so an expression cannot take unbounded
time or memory. A node outside the whitelist compiles to a closure that raises, so it is
an error exactly when evaluation reaches it (`1 if c else f()` with `c` true is fine).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from functools import lru_cache

from cnnstat.errors import did_you_mean
from cnnstat.spec import functions

Number = int | float | bool
Compiled = Callable[[Mapping[str, Number]], Number]
MAX_EXPR_CHARS = 500
MAX_EXPR_DEPTH = 100  # the evaluator recurses: 500 chars of `-` would blow Python's stack
MAX_EXPONENT = 64
MAX_MAGNITUDE = 10**30


class ExprError(ValueError):
    """Raised with a message only; the caller adds the location."""


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_CONSTANT_NAMES = {"true": True, "True": True, "false": False, "False": False}


def evaluate(text: str, env: Mapping[str, Number]) -> Number:
    """Evaluate `text` with `env` as the only names."""
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters")
    return compiled(text)(env)


@lru_cache(maxsize=4096)
def names_used(text: str) -> frozenset[str]:
    """The names an expression reads (raises ExprError for one that does not parse)."""
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters")
    return frozenset(n.id for n in ast.walk(_parse(text.strip())) if isinstance(n, ast.Name))


@lru_cache(maxsize=4096)
def compiled(text: str) -> Compiled:
    """Specs repeat the same few expressions thousands of times (DenseNet): parse and
    compile each once. A text that does not parse raises (and is not cached)."""
    return _compile(_parse(text.strip()))


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.expr:
    """The checked syntax tree (shared by `compiled` and `names_used`; never mutated)."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise ExprError(f"cannot parse expression {text!r}: {e.msg}") from None
    deepest, stack = 0, [(tree, 1)]
    while stack:  # iteratively: the check itself must not recurse
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    if deepest > MAX_EXPR_DEPTH:
        raise ExprError(f"expression nested deeper than {MAX_EXPR_DEPTH} levels")
    return tree


def _compile(node: ast.AST) -> Compiled:
    build = _BUILDERS.get(type(node))
    if build is None:
        return _refuse(f"'{type(node).__name__}' is not allowed in an expression")
    return build(node)


def _refuse(message: str) -> Compiled:
    def refuse(env: Mapping[str, Number]) -> Number:
        raise ExprError(message)

    return refuse


def _constant(node: ast.Constant) -> Compiled:
    if not isinstance(node.value, bool | int | float):
        return _refuse(f"only numbers are allowed in expressions, got {node.value!r}")
    try:
        value = _bounded(node.value)
    except ExprError as e:  # raised when evaluation reaches it, as for any node
        return _refuse(str(e))
    return lambda env: value


def _name(node: ast.Name) -> Compiled:
    ident = node.id
    fallback = _CONSTANT_NAMES.get(ident)

    def name(env: Mapping[str, Number]) -> Number:
        if ident in env:
            return _bounded(env[ident])
        if fallback is not None:
            return fallback
        raise ExprError(f"unknown name '{ident}'{did_you_mean(ident, env)}")

    return name


def _binop(node: ast.BinOp) -> Compiled:
    fn = _BINARY.get(type(node.op))
    if fn is None:
        return _refuse(f"operator '{type(node.op).__name__}' is not allowed")
    left, right = _compile(node.left), _compile(node.right)
    is_pow = isinstance(node.op, ast.Pow)

    def binop(env: Mapping[str, Number]) -> Number:
        a, b = left(env), right(env)
        if is_pow and abs(b) > MAX_EXPONENT:
            raise ExprError(f"exponent {b} is larger than {MAX_EXPONENT}")
        try:
            return _bounded(fn(a, b))
        except ZeroDivisionError:
            raise ExprError("division by zero") from None
        except OverflowError:
            raise ExprError("the value overflows") from None

    return binop


def _unary(node: ast.UnaryOp) -> Compiled:
    operand = _compile(node.operand)
    if isinstance(node.op, ast.USub):
        return lambda env: _bounded(-operand(env))
    if isinstance(node.op, ast.UAdd):
        return lambda env: _bounded(+operand(env))
    if isinstance(node.op, ast.Not):
        return lambda env: not operand(env)
    message = f"operator '{type(node.op).__name__}' is not allowed"

    def refuse(env: Mapping[str, Number]) -> Number:
        operand(env)  # the operand's own error comes first, as in evaluation order
        raise ExprError(message)

    return refuse


def _compare(node: ast.Compare) -> Compiled:
    first = _compile(node.left)
    steps = [(_COMPARE.get(type(op)), type(op).__name__, _compile(right))
             for op, right in zip(node.ops, node.comparators, strict=True)]

    def compare(env: Mapping[str, Number]) -> Number:
        left = first(env)
        for fn, op_name, right_fn in steps:
            if fn is None:
                raise ExprError(f"comparison '{op_name}' is not allowed")
            right = right_fn(env)
            if not fn(left, right):
                return False
            left = right
        return True

    return compare


def _boolop(node: ast.BoolOp) -> Compiled:
    values = [_compile(v) for v in node.values]
    combine = all if isinstance(node.op, ast.And) else any
    return lambda env: combine([v(env) for v in values])  # every operand, no short cut


def _ifexp(node: ast.IfExp) -> Compiled:
    test, body, orelse = _compile(node.test), _compile(node.body), _compile(node.orelse)
    return lambda env: body(env) if test(env) else orelse(env)


def _call(node: ast.Call) -> Compiled:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    if name not in functions.FUNCTIONS:
        shown = name or ast.unparse(node.func)[:40]
        return _refuse(f"unknown function '{shown}'{did_you_mean(shown, functions.FUNCTIONS)};"
                       f" expressions may call {', '.join(functions.FUNCTIONS)}")
    if node.keywords:
        return _refuse(f"{name} takes its arguments by position, not by name")
    args = [_compile(a) for a in node.args]

    def call(env: Mapping[str, Number]) -> Number:
        values = [a(env) for a in args]
        try:
            return _bounded(functions.call(name, values))
        except ValueError as e:
            raise ExprError(str(e)) from None

    return call


_BUILDERS: dict[type, Callable[..., Compiled]] = {
    ast.Constant: _constant, ast.Name: _name, ast.BinOp: _binop, ast.UnaryOp: _unary,
    ast.Compare: _compare, ast.BoolOp: _boolop, ast.IfExp: _ifexp, ast.Call: _call,
}


def _bounded(value: Number) -> Number:
    if isinstance(value, complex):  # (-8) ** 0.5: a size or a rate is never complex
        raise ExprError("the value is a complex number (a fractional power of a negative "
                        "number?); expressions must stay real")
    if isinstance(value, float) and value != value:
        raise ExprError("the value is not a number (NaN)")
    if isinstance(value, int | float) and abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"value {magnitude(value)} is larger than {MAX_MAGNITUDE:.0e}")
    return value


def magnitude(value: int | float) -> str:
    """A too-big number, shown without converting it: str() of a 5,000-digit int is
    refused by Python, and float() of a 400-digit one overflows."""
    if isinstance(value, float):
        return f"{value:.3g}"
    digits = int(abs(value).bit_length() * 0.30103) + 1
    return f"{value:.3g}" if digits < 300 else f"~1e{digits - 1}"
