"""One error hierarchy; each error carries its exit code (docs/exit-codes.md) and a location.

The library raises these and never prints or exits; `cnnstat.cli` turns them into one
line on stderr and the exit code at a single boundary.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class Location:
    """Where something came from: a YAML position (1-based line/col) or a module path.

    Immutable, compared and hashed by value. Written by hand, not as a dataclass: every
    start would compile its generated methods, and a big spec makes one per layer."""

    __slots__ = ("file", "line", "col")

    def __init__(self, file: str | None = None, line: int | None = None,
                 col: int | None = None):
        _set = object.__setattr__
        _set(self, "file", file)
        _set(self, "line", line)
        _set(self, "col", col)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Location is immutable: cannot assign to {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Location:
            return NotImplemented
        return (self.file, self.line, self.col) == (other.file, other.line, other.col)

    def __hash__(self) -> int:
        return hash((self.file, self.line, self.col))

    def __repr__(self) -> str:
        return f"Location(file={self.file!r}, line={self.line!r}, col={self.col!r})"

    def __str__(self) -> str:
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)


class CnnstatError(Exception):
    """Base of every error cnnstat reports to a user."""

    exit_code = 70

    def __init__(self, message: str, loc: Location | None = None, *, layer: str | None = None,
                 kind: str | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.layer = layer
        self.kind = kind

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc is not None else ""
        what = ""
        if self.layer:
            what = f"layer '{self.layer}'" + (f" ({self.kind})" if self.kind else "") + ": "
        return f"{where}error: {what}{self.message}"


class UsageError(CnnstatError):
    """Bad command-line usage (a malformed --input, an unknown format)."""

    exit_code = 2


class SpecError(CnnstatError):
    """A spec or budget file that is malformed: YAML, keys, values, references."""

    exit_code = 2


class ShapeError(CnnstatError):
    """Shapes that do not compose: a non-positive size, a concat/add mismatch."""

    exit_code = 2


class InputTooSmallError(ShapeError):
    """A layer's output would have a non-positive spatial size for this input."""


class UnknownModelError(CnnstatError):
    """A MODEL argument that names no file, zoo spec or alias."""

    exit_code = 2


class LimitError(SpecError):
    """Input that would exceed a resource limit (node count, nesting, file size)."""


class AnalysisError(CnnstatError):
    """The model could not be analyzed (import/trace failure, unsupported under --strict)."""

    exit_code = 3


class DeviceUnavailableError(CnnstatError):
    """A required device (e.g. CUDA) is not available."""

    exit_code = 4


def listing(items: list[str], limit: int = 8) -> str:
    """The first `limit` items, comma-separated, and how many more: a diagnostic that
    names every opaque op of a big model would bury the line it belongs to."""
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


def did_you_mean(word: str, choices: Iterable[str], *, n: int = 3) -> str:
    """A ' (did you mean ...?)' suffix naming the closest matches (those about as close as
    the best one), or '' when nothing is close."""
    scored = []
    for choice in sorted(set(choices)):
        ratio = difflib.SequenceMatcher(None, word, choice).ratio()
        if ratio >= 0.6:
            scored.append((ratio, choice))
    if not scored:
        return ""
    best = max(r for r, _ in scored)
    matches = [c for r, c in sorted(scored, key=lambda t: -t[0]) if r >= best - 0.05][:n]
    return " (did you mean " + " or ".join(f"'{m}'" for m in matches) + "?)"
