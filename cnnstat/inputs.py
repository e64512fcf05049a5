"""An input shape as a user writes it: `3x224x224`, `224x224`, `224`, an int or a tuple,
without the batch. One rule for the CLI, the Python API, budget files and every
frontend, none of which needs more than the model's default input to apply it."""

from __future__ import annotations

from cnnstat.errors import UsageError

Dims = tuple[int, ...]

# What `--input` accepts, said in every parse error (an image, a sequence and a clip alike).
ACCEPTED = ("sizes without the batch joined by 'x': CxHxW, HxW or one size (an image), CxL "
            "(a sequence), CxTxHxW or TxHxW (a video clip)")


def parse_dims(value: Dims | int | str) -> Dims:
    """The sizes `value` gives, each a positive int (text: `3x224x224`, `224`)."""
    if isinstance(value, str):
        parts = value.lower().replace("×", "x").split("x")
        try:
            value = tuple(int(p) for p in parts)
        except ValueError:
            raise UsageError(f"--input takes {ACCEPTED}, got '{value}'") from None
    dims = (value,) if isinstance(value, int) else tuple(value)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in dims):
        raise UsageError(f"input sizes must be positive integers, got {list(dims)}")
    return dims


def input_dims(value: Dims | int | str | None, default: Dims | None, model: str
               ) -> Dims | None:
    """The input without batch, in the rank of `default` (the model's own input): CxHxW
    from (C, H, W), an HxW or a square size; CxTxHxW (or TxHxW, or one size for H and W)
    for video; CxL (or L) for 1-D. Channels (and frames) missing come from `default`;
    None stays None (the caller's default input)."""
    if value is None:
        return None
    dims = parse_dims(value)
    rank = len(default) if default else 3  # channels + the data dims
    if len(dims) == 1 and rank >= 3:  # a square size: H = W, other dims from the default
        dims = (*(default or (0, 0, 0))[1:rank - 2], dims[0], dims[0])
    if len(dims) == rank - 1:
        if default is None:
            raise UsageError(f"model '{model}' has no default channels; give CxHxW")
        dims = (default[0], *dims)
    if len(dims) != rank:
        raise UsageError(f"input is {_FORMS.get(rank, 'CxHxW')} without batch (use --batch) "
                         f"for model '{model}', got {list(dims)}")
    return dims


_FORMS = {2: "CxL", 3: "CxHxW", 4: "CxTxHxW"}
