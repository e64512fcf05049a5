"""Moved to `cnnstat.fmt` (the budget gate formats its messages with it too, and budget
must not import report). This name stays for code written against it."""

from cnnstat.fmt import exact, human, percent, scaled, shape, si_unit, typical_unit

__all__ = ["exact", "human", "percent", "scaled", "shape", "si_unit", "typical_unit"]
