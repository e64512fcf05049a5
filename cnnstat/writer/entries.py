"""One IR layer -> the spec entry a person would write for it.

The inverse of the spec loader's layer rules (`cnnstat.spec.schema`): the shortest kind
word, the main argument as the kind's value, every other field only where it differs
from torch's default, under its short key (`k`, `s`, `p`, ...). Square pairs are written
as one number. An `Entry` is an ordered mapping of YAML-ready values; `name`/`from` are
added by the caller, which knows the scopes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cnnstat.errors import UsageError
from cnnstat.ir import layers as L
from cnnstat.spec import schema as S

Entry = dict[str, Any]
DEFAULTS = "__defaults"  # in a full entry: key -> the value the loader assumes if absent

# The word each kind is written with: the shortest alias a reader knows from the docs.
_WORDS = {
    "conv2d": "conv", "conv_transpose2d": "convt", "max_pool2d": "maxpool",
    "avg_pool2d": "avgpool", "adaptive_avg_pool2d": "adaptive_avgpool",
    "adaptive_max_pool2d": "adaptive_maxpool", "batch_norm2d": "bn",
    "local_response_norm": "lrn", "linear": "fc", "multiply": "mul",
    "channel_shuffle": "shuffle", "spatial_pyramid_pool": "spp",
    "batch_norm1d": "bn1d", "batch_norm3d": "bn3d", "scaled_dot_product_attention": "sdpa",
    "multihead_attention": "mha",
}
_SHORT_KEYS = {field: short for short, field in S.FIELD_ALIASES.items()}
# Fields that a scope or the loader sets, never a key of the entry itself.
_NOT_KEYS = frozenset({"regions"})
# Fields written even at their default: a split / chunk entry without `index` stands for
# all of its parts, so part 0 must say `index: 0`.
_ALWAYS_KEYS = frozenset({"index"})


def layer_entry(layer: L.Layer, where: str, *, full: bool = False) -> Entry:
    """The entry for `layer` (a node named `where`, for the error message). `full` also
    writes numeric fields at their defaults, recorded under DEFAULTS, so that entries of
    one shape line up key by key when blocks are compared."""
    spec = S.KINDS.get(layer.kind)  # opaque layers are refused, all at once, by the caller
    if spec is None:
        raise UsageError(f"layer '{where}' ({layer.kind}) has no spec equivalent")
    word = _global_pool_word(layer)
    if word is not None:
        return {word: None}
    values, defaults = _fields(layer, full)
    word = _WORDS.get(layer.kind, layer.kind)
    entry: Entry = {word: values.pop(spec.primary, None) if spec.primary else None}
    for field, value in values.items():
        entry[_SHORT_KEYS.get(field, field)] = value
    if full:
        entry[DEFAULTS] = {_SHORT_KEYS.get(f, f): v for f, v in defaults.items()}
    return entry


def _global_pool_word(layer: L.Layer) -> str | None:
    if isinstance(layer, L.AdaptiveAvgPool2d) and layer.output_size == (1, 1):
        return "gap"
    if isinstance(layer, L.AdaptiveMaxPool2d) and layer.output_size == (1, 1):
        return "global_max_pool"
    if isinstance(layer, (L.AdaptiveAvgPool1d, L.AdaptiveAvgPool3d)) \
            and set(layer.output_size) == {1}:
        return f"gap{layer.rank}d"
    return None


def _fields(layer: L.Layer, full: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Field -> YAML value for the fields a spec must state to rebuild `layer` (with
    `full`, numeric ones at their defaults too), and those defaults."""
    out: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for field in dataclasses.fields(layer):
        if field.name in _NOT_KEYS:
            continue
        value = getattr(layer, field.name)
        has_default = field.default is not dataclasses.MISSING
        if field.name in _ALWAYS_KEYS:
            pass
        elif full and has_default and _numeric(field.default):
            defaults[field.name] = yaml_value(field.default)
        elif has_default and value == field.default:
            continue
        if field.name == "stride" and layer.kind in S.STRIDE_IS_KERNEL \
                and value == layer.kernel_size:
            continue  # the spec's default, as torch's: stride = kernel
        out[field.name] = yaml_value(value, S.KINDS[layer.kind].fields.get(field.name))
    return out, defaults


def _numeric(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_numeric(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# 1-D / 3-D window sizes: one int stands for the same size on every axis.
_SIZES = frozenset({S.SIZES1, S.NONNEG_SIZES1, S.PADDING1, S.SIZES3, S.NONNEG_SIZES3,
                    S.PADDING3})


def yaml_value(value: Any, ftype: str | None = None) -> Any:
    """A field value as the spec writes it: (3, 3) -> 3, (1, 7) -> [1, 7]; for 1-D / 3-D
    window sizes (3, 3, 3) -> 3, (3,) -> 3."""
    if ftype in _SIZES and isinstance(value, tuple):
        return value[0] if len(set(value)) == 1 else list(value)
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == value[1]:
            return value[0]
        return list(value)
    return value
