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
# 1-D and 3-D windows: an int or a list of one size per spatial axis ([l] or [d, h, w]).
SIZES1, NONNEG_SIZES1, PADDING1 = "sizes1", "nonneg_sizes1", "padding1"
SIZES3, NONNEG_SIZES3, PADDING3 = "sizes3", "nonneg_sizes3", "padding3"


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
        KindSpec(L.PixelShuffle, {"upscale_factor": INT}, "upscale_factor", ("upscale_factor",),
                 auto_name="pixel_shuffle"),
        # Detection (docs/detection.md). `regions` is not a key: a per-region scope sets it.
        KindSpec(L.SpatialPyramidPool, {"levels": SHAPE}, "levels", ("levels",),
                 auto_name="spp"),
        KindSpec(L.RoIPool, {"output_size": PAIR, "spatial_scale": FLOAT}, "output_size",
                 ("output_size",), auto_name="roi_pool"),
        KindSpec(L.RoIAlign, {"output_size": PAIR, "spatial_scale": FLOAT,
                              "sampling_ratio": INT}, "output_size", ("output_size",),
                 auto_name="roi_align"),
        KindSpec(L.Crop, {"offset": NONNEG_PAIR, "center": BOOL}, "offset", auto_name="crop"),
        # Parts of a tensor (one node each; without `index`, an entry stands for every
        # part: docs/spec.md), reductions, padding and group norm (ir/tensor_layers.py).
        KindSpec(L.Split, {"split_size": SHAPE, "dim": SIGNED, "index": NONNEG}, "split_size",
                 ("split_size",), auto_name="split"),
        KindSpec(L.Chunk, {"chunks": INT, "dim": SIGNED, "index": NONNEG}, "chunks",
                 ("chunks",), auto_name="chunk"),
        KindSpec(L.Unbind, {"dim": SIGNED, "index": NONNEG}, "dim", auto_name="unbind"),
        KindSpec(L.Mean, {"dims": SIGNED_LIST, "keepdim": BOOL}, "dims", ("dims",),
                 auto_name="mean"),
        KindSpec(L.Sum, {"dims": SIGNED_LIST, "keepdim": BOOL}, "dims", ("dims",),
                 auto_name="sum"),
        KindSpec(L.Pad, {"padding": SIGNED_LIST, "mode": STR, "value": FLOAT}, "padding",
                 ("padding",), choices={"mode": L.PAD_MODES}, auto_name="pad"),
        KindSpec(L.Sub, {}, auto_name="sub"),
        KindSpec(L.GroupNorm, {"num_groups": INT, "eps": FLOAT, "affine": BOOL}, "num_groups",
                 ("num_groups",), auto_name="gn"),
        # Arithmetic by a number, stack, GRN, convs with a fixed / standardized weight
        # (ir/arith_layers.py).
        KindSpec(L.Scalar, {"op": STR, "value": FLOAT, "learned": BOOL}, "op", ("op",),
                 choices={"op": L.SCALAR_OPS}, auto_name="scalar"),
        KindSpec(L.Stack, {"dim": SIGNED}, "dim", auto_name="tensor_stack"),
        KindSpec(L.GlobalResponseNorm, {"eps": FLOAT, "channels_last": BOOL},
                 auto_name="grn"),
        KindSpec(L.FixedConv2d, _CONV, "out_channels", ("out_channels", "kernel_size"),
                 auto_name="conv"),
        KindSpec(L.StdConv2d, {**_CONV, "gain": BOOL}, "out_channels",
                 ("out_channels", "kernel_size"), auto_name="conv"),
        # Indexing and a vision transformer's learned tokens (ir/index_layers.py).
        KindSpec(L.Slice, {"dim": SIGNED, "start": SIGNED, "stop": SIGNED, "step": INT}, "dim",
                 auto_name="slice"),
        KindSpec(L.Select, {"index": SIGNED, "dim": SIGNED}, "index", ("index",),
                 auto_name="select"),
        KindSpec(L.ClassToken, {"tokens": INT}, "tokens", auto_name="cls"),
        KindSpec(L.PositionEmbedding, {}, auto_name="pos_embed"),
    )
}



def _nd_kinds() -> tuple[KindSpec, ...]:
    """1-D / 3-D conv, pooling and norm, and attention (cnnstat/ir/layers_nd.py)."""
    specs = []
    for rank, (sizes, nonneg, padding) in ((1, (SIZES1, NONNEG_SIZES1, PADDING1)),
                                           (3, (SIZES3, NONNEG_SIZES3, PADDING3))):
        conv = {"out_channels": INT, "kernel_size": sizes, "stride": sizes, "padding": padding,
                "dilation": sizes, "groups": INT, "bias": BOOL}
        pool = {"kernel_size": sizes, "stride": sizes, "padding": nonneg, "ceil_mode": BOOL}
        layer = {1: (L.Conv1d, L.MaxPool1d, L.AvgPool1d, L.AdaptiveAvgPool1d,
                     L.AdaptiveMaxPool1d, L.BatchNorm1d),
                 3: (L.Conv3d, L.MaxPool3d, L.AvgPool3d, L.AdaptiveAvgPool3d,
                     L.AdaptiveMaxPool3d, L.BatchNorm3d)}
        conv_k, max_k, avg_k, adaptive_k, adaptive_max_k, bn_k = layer[rank]
        specs += [
            KindSpec(conv_k, conv, "out_channels", ("out_channels", "kernel_size"),
                     auto_name="conv"),
            KindSpec(max_k, {**pool, "dilation": sizes}, "kernel_size", ("kernel_size",),
                     auto_name="maxpool"),
            KindSpec(avg_k, {**pool, "count_include_pad": BOOL}, "kernel_size",
                     ("kernel_size",), auto_name="avgpool"),
            KindSpec(adaptive_k, {"output_size": sizes}, "output_size", ("output_size",),
                     auto_name="avgpool"),
            KindSpec(adaptive_max_k, {"output_size": sizes}, "output_size",
                     ("output_size",), auto_name="maxpool"),
            KindSpec(bn_k, {"eps": FLOAT, "momentum": FLOAT, "affine": BOOL,
                            "track_running_stats": BOOL}, auto_name="bn"),
        ]
    specs += [
        KindSpec(L.ScaledDotProductAttention, {"is_causal": BOOL, "scale": FLOAT},
                 auto_name="attn"),
        KindSpec(L.MultiheadAttention, {"num_heads": INT, "bias": BOOL, "batch_first": BOOL},
                 "num_heads", ("num_heads",), auto_name="attn"),
    ]
    return tuple(specs)


KINDS.update((spec.name, spec) for spec in _nd_kinds())
# Swin's kinds on tokens [N, H, W, C] (ir/window_layers.py).
KINDS.update((spec.name, spec) for spec in (
    KindSpec(L.WindowAttention, {"num_heads": INT, "window_size": PAIR,
                                 "shift_size": NONNEG_PAIR, "qkv_bias": BOOL,
                                 "proj_bias": BOOL, "version": INT},
             "num_heads", ("num_heads", "window_size"), auto_name="attn"),
    KindSpec(L.PatchMerge, {}, auto_name="merge"),
))
# Pools whose stride defaults to the kernel, as in torch.
STRIDE_IS_KERNEL = frozenset({"max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d",
                              "max_pool3d", "avg_pool3d"})

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
    "gn": ("group_norm", {}),
    "layer_scale": ("scale", {}),
    "stochastic_depth": ("drop_path", {}),
    "batchnorm": ("batch_norm2d", {}),
    "lrn": ("local_response_norm", {}),
    "lrelu": ("leaky_relu", {}),
    "swish": ("silu", {}),
    "fc": ("linear", {}),
    "cat": ("concat", {}),
    "mul": ("multiply", {}),
    "subtract": ("sub", {}),
    "view": ("reshape", {}),
    "shuffle": ("channel_shuffle", {}),
    "spp": ("spatial_pyramid_pool", {}),
    "roi_max_pool": ("roi_pool", {}),
    # 1-D / 3-D and attention
    "maxpool1d": ("max_pool1d", {}),
    "maxpool3d": ("max_pool3d", {}),
    "avgpool1d": ("avg_pool1d", {}),
    "avgpool3d": ("avg_pool3d", {}),
    "adaptive_avgpool1d": ("adaptive_avg_pool1d", {}),
    "adaptive_avgpool3d": ("adaptive_avg_pool3d", {}),
    "adaptive_maxpool1d": ("adaptive_max_pool1d", {}),
    "adaptive_maxpool3d": ("adaptive_max_pool3d", {}),
    "gap1d": ("adaptive_avg_pool1d", {"output_size": (1,)}),
    "gap3d": ("adaptive_avg_pool3d", {"output_size": (1, 1, 1)}),
    "bn1d": ("batch_norm1d", {}),
    "bn3d": ("batch_norm3d", {}),
    "sdpa": ("scaled_dot_product_attention", {}),
    "mha": ("multihead_attention", {}),
    "shifted_window_attention": ("window_attention", {}),
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
COMMON_KEYS = ("name", "from", "when", "frozen")


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
