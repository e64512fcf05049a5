"""The functions spec expressions may call: what model definitions compute channel and
layer counts with (`make_divisible(c * width, 8)`, `ceil(n * depth)`).

Each takes and returns plain numbers; a wrong argument raises ValueError naming the
function (the evaluator turns it into an expression error, located like any other).
"""

from __future__ import annotations

import math
from collections.abc import Callable

Number = int | float | bool


def make_divisible(value: Number, divisor: Number = 8, min_value: Number | None = None) -> int:
    """torchvision's `_make_divisible` (MobileNetV2/V3, EfficientNet): the nearest multiple
    of `divisor`, at least `min_value` (default: `divisor`), and never more than 10% below
    `value`."""
    if divisor <= 0:
        raise ValueError(f"make_divisible: divisor must be positive, got {divisor}")
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _log2(value: Number) -> float:
    if value <= 0:
        raise ValueError(f"log2 takes a positive number, got {value}")
    return math.log2(value)


def _round(value: Number, digits: int | None = None) -> Number:
    """Python's round: halves to even (`round(2.5)` is 2), as torch model code computes."""
    if digits is not None and (isinstance(digits, bool) or not isinstance(digits, int)):
        raise ValueError(f"round: digits must be an integer, got {digits}")
    return round(value) if digits is None else round(value, digits)


def _extreme(pick: Callable) -> Callable[..., Number]:
    def extreme(*values: Number) -> Number:
        if len(values) < 2:
            raise ValueError(f"{pick.__name__} takes two or more numbers")
        return pick(values)

    return extreme


# name -> (function, fewest arguments, most arguments)
FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "max": (_extreme(max), 2, 64),
    "min": (_extreme(min), 2, 64),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "log2": (_log2, 1, 1),
    "make_divisible": (make_divisible, 1, 3),
}


def call(name: str, args: list[Number]) -> Number:
    """Call a spec function by name (already known to be in FUNCTIONS)."""
    fn, fewest, most = FUNCTIONS[name]
    if not fewest <= len(args) <= most:
        many = str(fewest) if fewest == most else f"{fewest} to {most}"
        raise ValueError(f"{name} takes {many} arguments, got {len(args)}")
    if any(isinstance(a, bool) for a in args):
        raise ValueError(f"{name} takes numbers, not true/false")
    try:
        return fn(*args)
    except OverflowError:
        raise ValueError(f"{name}: the value overflows") from None
