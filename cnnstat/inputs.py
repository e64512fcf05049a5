"""An input shape as a user writes it: `3x224x224`, `224x224`, `224`, an int or a tuple,
without the batch. One rule for the CLI, the Python API, budget files and every
frontend, none of which needs more than the model's default input to apply it."""

from __future__ import annotations

from cnnstat.errors import UsageError

Dims = tuple[int, ...]


def parse_dims(value: Dims | int | str) -> Dims:
    """The sizes `value` gives, each a positive int (text: `3x224x224`, `224`)."""
    if isinstance(value, str):
        parts = value.lower().replace("×", "x").split("x")
        try:
            value = tuple(int(p) for p in parts)
        except ValueError:
            raise UsageError(f"--input takes CxHxW, HxW or a size, got '{value}'") from None
    dims = (value,) if isinstance(value, int) else tuple(value)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in dims):
        raise UsageError(f"input sizes must be positive integers, got {list(dims)}")
    return dims


def input_dims(value: Dims | int | str | None, default: Dims | None, model: str
               ) -> Dims | None:
    """CxHxW from (C, H, W), an HxW or a square size (channels from `default`, the
    model's own input); None stays None (the caller's default input)."""
    if value is None:
        return None
    dims = parse_dims(value)
    if len(dims) == 1:
        dims = (dims[0], dims[0])  # a square size; channels come from the model
    if len(dims) == 2:
        if default is None or len(default) != 3:
            raise UsageError(f"model '{model}' has no default channels; give CxHxW")
        dims = (default[0], *dims)
    if len(dims) > 3:
        raise UsageError(f"input is CxHxW without batch (use --batch), got {list(dims)}")
    return dims
