"""What to suggest for an unknown layer kind: torch's and other frameworks' names for the
kinds cnnstat has (`interpolate` is `upsample`), then spelling (`LayerNorm`, `layer_norm`
and `layernorm` are one word), then the nearest word."""

from __future__ import annotations

import re
from collections.abc import Iterable

from cnnstat.errors import did_you_mean

# Names people write from torch, Keras or papers -> the spec word for that kind. A target
# this build does not know is never suggested (the table may run ahead of the kinds).
OTHER_NAMES: dict[str, str] = {
    "interpolate": "upsample", "upsampling": "upsample", "resize": "upsample",
    "upsample_bilinear": "upsample", "upsample_nearest": "upsample",
    "dense": "linear", "fully_connected": "linear", "matmul": "linear",
    "conv2d_transpose": "conv_transpose2d", "transposed_conv": "conv_transpose2d",
    "batch_norm": "batch_norm2d", "batchnormalization": "batch_norm2d",
    "norm": "batch_norm2d", "layernorm2d": "layer_norm", "ln": "layer_norm",
    "gn": "group_norm", "hard_sigmoid": "hardsigmoid", "hard_swish": "hardswish",
    "hswish": "hardswish", "hsigmoid": "hardsigmoid", "dropout2d": "dropout",
    "drop_path": "drop_path", "stochastic_depth": "drop_path", "droppath": "drop_path",
    "sequential": "layers", "cat": "concat", "concatenate": "concat", "sum": "add",
    "plus": "add", "residual": "add", "prod": "multiply", "mult": "multiply",
    "global_average_pooling": "gap", "adaptive_avg_pool": "adaptive_avg_pool2d",
    "avg_pool2d_global": "gap", "depth_to_space": "pixel_shuffle", "squeeze": "flatten",
    "permute": "permute", "pad": "pad", "zero_pad": "pad", "zeropadding2d": "pad",
    "crop2d": "crop", "center_crop": "crop", "centercrop": "crop", "cropping2d": "crop",
    "mish": "silu", "prelu": "leaky_relu", "elu": "leaky_relu",
    "multiheadattention": "attention", "mha": "attention", "sdpa": "attention",
    "scaled_dot_product_attention": "attention",
}


def _folded(word: str) -> str:
    """Case, '_', '-' and a trailing '2d' ignored: LayerNorm2d ~ layer_norm."""
    return re.sub(r"[_\-]", "", word.lower()).removesuffix("2d")


_TARGETS = frozenset(_folded(t) for t in OTHER_NAMES.values())


def suggestion(word: str, kinds: Iterable[str], others: Iterable[str]) -> str:
    """A ' (did you mean ...?)' suffix for an unknown kind `word`: `kinds` are the kind
    words, `others` the blocks and structure keys an entry may also name."""
    kinds, others = list(kinds), list(others)
    known = set(kinds) | set(others)
    folded = _folded(word)
    target = OTHER_NAMES.get(word.lower()) or OTHER_NAMES.get(folded)
    if target in known:
        return f" (did you mean '{target}'?)"
    same = [k for k in kinds if _folded(k) == folded]
    if same:
        return f" (did you mean '{same[0]}'?)"
    if target or folded in _TARGETS:  # a kind this build lacks: no look-alike instead
        return ""
    return did_you_mean(word, kinds) or did_you_mean(word, others)
