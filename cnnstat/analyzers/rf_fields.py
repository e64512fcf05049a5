"""The receptive-field records (docs/receptive-field.md): per axis, the exact field of
every unit (`AxisField`), and per layer, every spatial axis of the input (one for a
sequence, two for an image, three for a volume or clip) or a global field
(`ReceptiveField`).
The rules that compute them are in `cnnstat.analyzers.rf`.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

from cnnstat.ir.record import Record, record

Span = tuple[int, int]


@record(kw_only=False)
class UnitMap(Record):
    """Along one axis, the layer-input units that output unit j reads:
    for j = q*period + r, reads(j) = {u + q*shift for u in reads[r]}."""

    period: int
    shift: int
    reads: tuple[tuple[int, ...], ...]


@record(kw_only=False)
class AxisField(Record):
    """The exact field of every unit along one axis (see the module docstring)."""

    jump: Fraction
    period: int
    lo: tuple[int | None, ...]  # None: that unit reads no input pixel (only a bias)
    hi: tuple[int | None, ...]
    step: int = dataclasses.field(init=False, repr=False, compare=False)  # period * jump, an int
    # The widest unit's field; equal for every unit when period is 1. Computed once: JSON
    # and the tables read it several times per layer (a 100,000-layer spec: 480,000 reads).
    size: int = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        jump, lo, hi = self.jump, self.lo, self.hi
        if self.period == 1 == len(lo) == len(hi) and jump.denominator == 1:  # most fields
            object.__setattr__(self, "step", jump.numerator)
            object.__setattr__(self, "size", 0 if lo[0] is None else hi[0] - lo[0] + 1)
            return
        step = self.period * (jump.numerator if jump.denominator == 1 else jump)
        if step.denominator != 1 or len(self.lo) != self.period or len(self.hi) != self.period:
            raise ValueError(f"inconsistent field table: {self!r}")
        object.__setattr__(self, "step", int(step))
        object.__setattr__(self, "size", max(
            (h - lo + 1 for lo, h in zip(self.lo, self.hi, strict=True) if lo is not None),
            default=0))

    def span(self, unit: int) -> Span | None:
        """First and last input pixel (unbounded grid) that unit `unit` can depend on."""
        q, r = divmod(unit, self.period)
        lo = self.lo[r]
        if lo is None:
            return None
        shift = q * self.step
        return lo + shift, self.hi[r] + shift  # type: ignore[operator]

    @property
    def start(self) -> Fraction | None:
        """Centre of unit 0's field in input pixels (Araujo's start)."""
        span = self.span(0)
        return None if span is None else Fraction(span[0] + span[1], 2)

    @property
    def padding(self) -> int | None:
        """Effective padding: how far unit 0's field reaches left of pixel 0."""
        span = self.span(0)
        return None if span is None else -span[0]


IDENTITY_AXIS = AxisField(jump=Fraction(1), period=1, lo=(0,), hi=(0,))
_SLOT_SETTERS = tuple(getattr(AxisField, name).__set__
                      for name in ("jump", "period", "lo", "hi", "step", "size"))


def plain_axis(jump: Fraction, lo: int | None, hi: int | None) -> AxisField:
    """`AxisField(jump=jump, period=1, lo=(lo,), hi=(hi,))` for an integral `jump`, set
    slot by slot without `__post_init__`'s checks, which such a field always passes: the
    field of nearly every conv and pool (a 100,000-layer spec makes 66,666)."""
    field = object.__new__(AxisField)
    set_jump, set_period, set_lo, set_hi, set_step, set_size = _SLOT_SETTERS
    set_jump(field, jump)
    set_period(field, 1)
    set_lo(field, (lo,))
    set_hi(field, (hi,))
    set_step(field, jump.numerator)
    set_size(field, 0 if lo is None else hi - lo + 1)  # type: ignore[operator]
    return field


# The axes' names, as a field's rank gives them: a sequence [N, C, L], an image
# [N, C, H, W], a volume or clip [N, C, D, H, W] (D: depth, or time).
AXIS_NAMES: dict[int, tuple[str, ...]] = {1: ("l",), 2: ("h", "w"), 3: ("d", "h", "w")}


def axis_names(rank: int) -> tuple[str, ...]:
    return AXIS_NAMES.get(rank) or tuple(f"x{i}" for i in range(rank))


def natural_layout(rank: int) -> tuple[int, ...]:
    """The dims holding the spatial axes before any permute: 2, 3, ... (after N, C)."""
    return _NATURAL.get(rank) or tuple(range(2, 2 + rank))


_NATURAL = {rank: tuple(range(2, 2 + rank)) for rank in (1, 2, 3)}
# The natural layouts, for a set lookup on the per-layer path (no call per input).
NATURAL_LAYOUTS = frozenset(_NATURAL.values())


@record(kw_only=False)
class ReceptiveField(Record):
    """One layer's field on every spatial axis of the input: `axes` holds one AxisField
    per axis (L; H, W; D, H, W), or is None when the field is global (it depends on the
    whole input: global pooling, flatten, linear). `image` is the input's spatial size
    and `layout` the tensor dims holding the axes (a permute moves them).

    `gated` marks a global field that only gates made global (a squeeze-and-excitation
    `x * gate`, a pooled branch added in); `local` is then the field of the convolution
    path, which the gates' global context is added to, or None where that path's field is
    unknown (after an op without a rule). Both unset on every other field."""

    axes: tuple[AxisField, ...] | None
    image: tuple[int, ...]
    layout: tuple[int, ...]
    local: ReceptiveField | None = None
    gated: bool = False
    # to_dict's values, made at its first call: the layers after a conv (norm, activation)
    # share its field, and the JSON reads each once
    _json: tuple | None = dataclasses.field(default=None, init=False, repr=False,
                                            compare=False)

    @property
    def is_global(self) -> bool:
        return self.axes is None

    @property
    def rank(self) -> int:
        return len(self.image)

    @property
    def h(self) -> AxisField | None:
        """The H axis (the second to last spatial axis) of an image or a volume."""
        return None if self.axes is None or len(self.axes) < 2 else self.axes[-2]

    @property
    def w(self) -> AxisField | None:
        return None if self.axes is None or len(self.axes) < 2 else self.axes[-1]

    def _each(self, attr: str, whole: tuple) -> tuple:
        return whole if self.axes is None else tuple(getattr(a, attr) for a in self.axes)

    @property
    def size(self) -> tuple[int, ...]:
        """Global: the image."""
        return self._each("size", self.image)

    @property
    def stride(self) -> tuple[Fraction | None, ...]:
        """The jump; global: None (one unit, or units that all see the whole image)."""
        return self._each("jump", (None,) * self.rank)

    @property
    def start(self) -> tuple[Fraction | None, ...]:
        """Global: the centre of the image."""
        return self._each("start", tuple(Fraction(n - 1, 2) for n in self.image))

    @property
    def padding(self) -> tuple[int | None, ...]:
        return self._each("padding", (0,) * self.rank)

    @property
    def exceeds_input(self) -> bool:
        """One unit's field is larger than the image on some axis (global fields are
        exactly the image, so False)."""
        return not self.is_global and any(
            s > n for s, n in zip(self.size, self.image, strict=True))

    def region(self, unit: tuple[int, ...], *, clipped: bool) -> tuple[Span, ...] | None:
        """Input pixels (inclusive) that output unit `unit` sees, per axis: for an image,
        its rows and columns."""
        if self.axes is None:
            return tuple((0, n - 1) for n in self.image)
        spans = [a.span(u) for a, u in zip(self.axes, unit, strict=True)]
        if clipped:
            spans = [s and _clip(s, n) for s, n in zip(spans, self.image, strict=True)]
        return None if any(s is None for s in spans) else tuple(spans)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: one value per axis; Fractions as ints when integral, else as
        "p/q" strings."""
        values = self._json
        if values is None:
            values = self._json_values()
            object.__setattr__(self, "_json", values)
        size, stride, start, padding, is_global, exceeds = values
        out = {"size": list(size), "stride": list(stride), "start": list(start),
               "padding": list(padding), "global": is_global, "exceeds_input": exceeds}
        if self.gated:  # only on a field gates made global; null: the path is unknown
            local = None if self.local is None else self.local.to_dict()
            out["local"] = None if local is None else {
                k: local[k] for k in ("size", "stride", "start", "padding")}
        return out

    def _json_values(self) -> tuple:
        axes = self.axes
        if axes is not None and len(axes) == 2:  # most layers: an image's, written out
            h, w = axes
            size = [h.size, w.size]
            return (size, [number(h.jump), number(w.jump)], [_centre(h), _centre(w)],
                    [_padding(h), _padding(w)], False,
                    size[0] > self.image[0] or size[1] > self.image[1])
        if axes is not None:  # read the tables, no Fraction made
            size = [a.size for a in axes]
            return (size, [number(a.jump) for a in axes], [_centre(a) for a in axes],
                    [_padding(a) for a in axes], False,
                    any(s > n for s, n in zip(size, self.image, strict=True)))
        return ([*self.image], [None] * self.rank, [number(v) for v in self.start],
                [0] * self.rank, True, False)


def _centre(axis: AxisField) -> int | str | None:
    """`number(axis.start)`: the centre of unit 0's field, in halves."""
    lo, hi = axis.lo[0], axis.hi[0]
    if lo is None:
        return None
    twice = lo + hi  # type: ignore[operator]
    return twice // 2 if twice % 2 == 0 else f"{twice}/2"


def _padding(axis: AxisField) -> int | None:
    lo = axis.lo[0]
    return None if lo is None else -lo


def number(value: Fraction | int | None) -> int | str | None:
    if value is None or isinstance(value, int):
        return value
    return value.numerator if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _clip(span: Span, n: int) -> Span | None:
    lo, hi = max(span[0], 0), min(span[1], n - 1)
    return (lo, hi) if lo <= hi else None
