"""The spec's vocabulary: layer kind names and aliases, their keys, and each key's type.

A layer kind is in the spec language by one `KindSpec` entry here; the other files a
kind touches are listed in docs/architecture.md, and tests/test_kind_coverage.py fails,
naming the kind, when this entry is missing.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from cnnstat.ir import layers as L
from cnnstat.ir.record import Record, record

# Field types, interpreted by `cnnstat.spec.values`.
INT = "int"  # a positive int (or an expression giving one)
NONNEG = "nonneg"  # an int >= 0
SIGNED = "signed"  # any int (dims)
PAIR = "pair"  # int or [h, w]
NONNEG_PAIR = "nonneg_pair"
PADDING = "padding"  # int, [h, w], 'same' or 'valid'
FLOAT = "float"
FPAIR = "fpair"  # float or [h, w]
BOOL = "bool"
SHAPE = "shape"  # list of ints, one may be -1
STR = "str"
SIGNED_LIST = "signed_list"  # list of any ints (dims)


@record(kw_only=False)
class KindSpec(Record):
    layer: type[L.Layer]
    fields: dict[str, str]
    primary: str | None = None
    required: tuple[str, ...] = ()
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    auto_name: str = ""

    @property
    def name(self) -> str:
        return self.layer.kind


_CONV = {
    "out_channels": INT, "kernel_size": PAIR, "stride": PAIR, "padding": PADDING,
    "dilation": PAIR, "groups": INT, "bias": BOOL,
}
_CONVT = {
    "out_channels": INT, "kernel_size": PAIR, "stride": PAIR, "padding": NONNEG_PAIR,
    "output_padding": NONNEG_PAIR, "dilation": PAIR, "groups": INT, "bias": BOOL,
}
_POOL = {"kernel_size": PAIR, "stride": PAIR, "padding": NONNEG_PAIR, "ceil_mode": BOOL}

KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec(L.Conv2d, _CONV, "out_channels", ("out_channels", "kernel_size"),
                 auto_name="conv"),
        KindSpec(L.ConvTranspose2d, _CONVT, "out_channels", ("out_channels", "kernel_size"),
                 auto_name="convt"),
        KindSpec(L.MaxPool2d, {**_POOL, "dilation": PAIR}, "kernel_size", ("kernel_size",),
                 auto_name="maxpool"),
        KindSpec(L.AvgPool2d, {**_POOL, "count_include_pad": BOOL}, "kernel_size",
                 ("kernel_size",), auto_name="avgpool"),
        KindSpec(L.AdaptiveAvgPool2d, {"output_size": PAIR}, "output_size", ("output_size",),
                 auto_name="avgpool"),
        KindSpec(L.AdaptiveMaxPool2d, {"output_size": PAIR}, "output_size", ("output_size",),
                 auto_name="maxpool"),
        KindSpec(L.BatchNorm2d, {"eps": FLOAT, "momentum": FLOAT, "affine": BOOL,
                                 "track_running_stats": BOOL}, auto_name="bn"),
        KindSpec(L.LocalResponseNorm, {"size": INT, "alpha": FLOAT, "beta": FLOAT, "k": FLOAT},
                 "size", ("size",), auto_name="lrn"),
        KindSpec(L.ReLU, {}, auto_name="relu"),
        KindSpec(L.ReLU6, {}, auto_name="relu"),
        KindSpec(L.LeakyReLU, {"negative_slope": FLOAT}, "negative_slope", auto_name="relu"),
        KindSpec(L.Sigmoid, {}, auto_name="sigmoid"),
        KindSpec(L.Tanh, {}, auto_name="tanh"),
        KindSpec(L.GELU, {"approximate": STR}, choices={"approximate": ("none", "tanh")},
                 auto_name="gelu"),
        KindSpec(L.SiLU, {}, auto_name="silu"),
        KindSpec(L.Hardswish, {}, auto_name="hardswish"),
        KindSpec(L.Hardsigmoid, {}, auto_name="hardsigmoid"),
        KindSpec(L.Softmax, {"dim": SIGNED}, "dim", auto_name="softmax"),
        KindSpec(L.Dropout, {"p": FLOAT}, "p", auto_name="dropout"),
        KindSpec(L.DropPath, {"p": FLOAT}, "p", auto_name="drop_path"),
        KindSpec(L.LayerNorm, {"data_format": STR, "eps": FLOAT, "elementwise_affine": BOOL,
                               "bias": BOOL}, "data_format",
                 choices={"data_format": ("channels_first", "channels_last")}, auto_name="ln"),
        KindSpec(L.LayerScale, {"init_value": FLOAT}, "init_value", auto_name="scale"),
        KindSpec(L.Flatten, {"start_dim": SIGNED, "end_dim": SIGNED}, "start_dim",
                 auto_name="flatten"),
        KindSpec(L.Linear, {"out_features": INT, "bias": BOOL}, "out_features",
                 ("out_features",), auto_name="fc"),
        KindSpec(L.Concat, {"dim": SIGNED}, "dim", auto_name="concat"),
        KindSpec(L.Add, {}, auto_name="add"),
        KindSpec(L.Multiply, {}, auto_name="mul"),
        KindSpec(L.Reshape, {"shape": SHAPE}, "shape", ("shape",), auto_name="reshape"),
        KindSpec(L.Permute, {"dims": SIGNED_LIST}, "dims", ("dims",), auto_name="permute"),
        KindSpec(L.Identity, {}, auto_name="identity"),
        KindSpec(L.Upsample, {"scale_factor": FPAIR, "size": PAIR, "mode": STR,
                              "align_corners": BOOL, "like": BOOL}, "scale_factor",
                 choices={"mode": ("nearest", "bilinear")}, auto_name="upsample"),
        KindSpec(L.ChannelShuffle, {"groups": INT}, "groups", ("groups",), auto_name="shuffle"),
        # Detection (docs/detection.md). `regions` is not a key: a per-region scope sets it.
        KindSpec(L.SpatialPyramidPool, {"levels": SHAPE}, "levels", ("levels",),
                 auto_name="spp"),
        KindSpec(L.RoIPool, {"output_size": PAIR, "spatial_scale": FLOAT}, "output_size",
                 ("output_size",), auto_name="roi_pool"),
        KindSpec(L.RoIAlign, {"output_size": PAIR, "spatial_scale": FLOAT,
                              "sampling_ratio": INT}, "output_size", ("output_size",),
                 auto_name="roi_align"),
        KindSpec(L.Crop, {"offset": NONNEG_PAIR, "center": BOOL}, "offset", auto_name="crop"),
    )
}

# Spec-level aliases: name -> (kind, preset fields). Presets make `gap` a 1x1 adaptive pool.
KIND_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "conv": ("conv2d", {}),
    "deconv": ("conv_transpose2d", {}),
    "convt": ("conv_transpose2d", {}),
    "conv_transpose": ("conv_transpose2d", {}),
    "maxpool": ("max_pool2d", {}),
    "max_pool": ("max_pool2d", {}),
    "avgpool": ("avg_pool2d", {}),
    "avg_pool": ("avg_pool2d", {}),
    "adaptive_avgpool": ("adaptive_avg_pool2d", {}),
    "adaptive_maxpool": ("adaptive_max_pool2d", {}),
    "gap": ("adaptive_avg_pool2d", {"output_size": (1, 1)}),
    "global_avg_pool": ("adaptive_avg_pool2d", {"output_size": (1, 1)}),
    "global_max_pool": ("adaptive_max_pool2d", {"output_size": (1, 1)}),
    "bn": ("batch_norm2d", {}),
    "ln": ("layer_norm", {}),
    "layer_scale": ("scale", {}),
    "stochastic_depth": ("drop_path", {}),
    "batchnorm": ("batch_norm2d", {}),
    "lrn": ("local_response_norm", {}),
    "lrelu": ("leaky_relu", {}),
    "swish": ("silu", {}),
    "fc": ("linear", {}),
    "cat": ("concat", {}),
    "mul": ("multiply", {}),
    "view": ("reshape", {}),
    "shuffle": ("channel_shuffle", {}),
    "spp": ("spatial_pyramid_pool", {}),
    "roi_max_pool": ("roi_pool", {}),
}

# Short keys accepted for a kind's fields, when the kind has that field.
FIELD_ALIASES: dict[str, str] = {
    "k": "kernel_size",
    "s": "stride",
    "p": "padding",
    "d": "dilation",
    "g": "groups",
    "op": "output_padding",
}

# Keys any layer entry may carry besides its kind and fields.
COMMON_KEYS = ("name", "from", "when")


def lookup_kind(word: str) -> tuple[KindSpec, dict[str, Any]] | None:
    """The kind a spec word names (kind name or alias) and its preset fields."""
    if word in KINDS:
        return KINDS[word], {}
    alias = KIND_ALIASES.get(word)
    if alias is None:
        return None
    kind, presets = alias
    return KINDS[kind], presets


def all_kind_words() -> list[str]:
    return [*KINDS, *KIND_ALIASES]
