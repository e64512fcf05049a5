"""The one number formatter: exact ints in data, SI suffixes only here, one per column.

Below report and budget, which both format numbers (a budget message says "actual
1,814,073,344 (1.81 G)"), so neither imports the other for it."""

from __future__ import annotations

from collections.abc import Iterable

_SI = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k"), (1, ""))
_BINARY = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B"))


def si_unit(values: Iterable[int | None], binary: bool = False) -> tuple[int, str]:
    """The largest unit the biggest value reaches: every row of a column shares it."""
    biggest = max((abs(v) for v in values if v is not None), default=0)
    for scale, suffix in (_BINARY if binary else _SI):
        if biggest >= scale:
            return scale, suffix
    return 1, "B" if binary else ""


def typical_unit(values: Iterable[int | None], binary: bool = False) -> tuple[int, str]:
    """One unit for a column whose values span orders of magnitude (the zoo: LeNet's
    0.4 M MACs to R-CNN's 1.4 T): the unit of the median, so most rows read naturally
    and the largest ones simply carry more digits (1,440.79 G)."""
    present = sorted(abs(v) for v in values if v)
    return si_unit(present[len(present) // 2:len(present) // 2 + 1], binary)


def scaled(value: int | None, scale: int, digits: int = 2) -> str:
    """`value` in a column whose unit is `scale`; never prints a nonzero value as 0."""
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    if scale == 1:
        return f"{value:,}"
    text = f"{value / scale:,.{digits}f}"
    if float(text.replace(",", "")) == 0:
        return f"<{10 ** -digits:.{digits}f}"
    return text


def human(value: int | None, binary: bool = False, digits: int = 2) -> str:
    """One value with its own suffix: 138.36 M, 15.47 G, 1.25 MiB."""
    if value is None:
        return "n/a"
    scale, suffix = si_unit([value], binary)
    if scale == 1:
        return f"{value:,}" + (" B" if binary else "")
    return f"{value / scale:,.{digits}f} {suffix}"


def exact(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def shape(dims: Iterable[int]) -> str:
    return "x".join(str(d) for d in dims)


def percent(part: int | None, whole: int) -> str:
    if part is None:
        return "n/a"
    if whole == 0 or part == 0:
        return "0"
    share = 100 * part / whole
    return "<0.1" if share < 0.05 else f"{share:.1f}"
