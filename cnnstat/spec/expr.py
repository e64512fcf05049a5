"""A tiny, safe evaluator for parameter arithmetic in specs (`4*growth`, `2 if i == 0 else 1`).

Never Python `eval`: the text is parsed by `ast` and only a whitelist of node types is
walked. Names resolve to block arguments and the repeat index only; there is no
attribute access, subscript, call, comprehension or lambda. Exponents and magnitudes are
bounded so an expression cannot take unbounded time or memory.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from functools import lru_cache

from cnnstat.errors import did_you_mean

Number = int | float | bool
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


def evaluate(text: str, env: Mapping[str, Number]) -> Number:
    """Evaluate `text` with `env` as the only names."""
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters")
    return _Eval(env).visit(_parse(text.strip()))


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.expr:
    """Specs repeat the same few expressions thousands of times (DenseNet): parse once."""
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


class _Eval:
    def __init__(self, env: Mapping[str, Number]):
        self.env = env

    def visit(self, node: ast.AST) -> Number:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"'{type(node).__name__}' is not allowed in an expression")
        return _bounded(method(node))

    def visit_Constant(self, node: ast.Constant) -> Number:
        if isinstance(node.value, bool | int | float):
            return node.value
        raise ExprError(f"only numbers are allowed in expressions, got {node.value!r}")

    def visit_Name(self, node: ast.Name) -> Number:
        if node.id in self.env:
            return self.env[node.id]
        if node.id in ("true", "True"):
            return True
        if node.id in ("false", "False"):
            return False
        raise ExprError(f"unknown name '{node.id}'{did_you_mean(node.id, self.env)}")

    def visit_BinOp(self, node: ast.BinOp) -> Number:
        fn = _BINARY.get(type(node.op))
        if fn is None:
            raise ExprError(f"operator '{type(node.op).__name__}' is not allowed")
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ExprError(f"exponent {right} is larger than {MAX_EXPONENT}")
        try:
            return fn(left, right)
        except ZeroDivisionError:
            raise ExprError("division by zero") from None
        except OverflowError:
            raise ExprError("the value overflows") from None

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Number:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return +value
        if isinstance(node.op, ast.Not):
            return not value
        raise ExprError(f"operator '{type(node.op).__name__}' is not allowed")

    def visit_Compare(self, node: ast.Compare) -> Number:
        left = self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise ExprError(f"comparison '{type(op).__name__}' is not allowed")
            right = self.visit(right_node)
            if not fn(left, right):
                return False
            left = right
        return True

    def visit_BoolOp(self, node: ast.BoolOp) -> Number:
        values = [self.visit(v) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)

    def visit_IfExp(self, node: ast.IfExp) -> Number:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)


def _bounded(value: Number) -> Number:
    if isinstance(value, float) and value != value:
        raise ExprError("the value is not a number (NaN)")
    if isinstance(value, int | float) and abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"value {value:.3g} is larger than {MAX_MAGNITUDE:.0e}")
    return value
