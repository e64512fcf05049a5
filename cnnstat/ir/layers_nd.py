"""Layer kinds of 1-D and 3-D tensors (sequences [N, C, L], volumes and clips
[N, C, D, H, W]) and attention, declared as `cnnstat.ir.layers` declares the 2-D kinds.

Window attributes are tuples of one entry per spatial axis (`(3,)` for a 1-D kernel,
`(3, 3, 3)` for a 3-D one), as torch stores them; `rank` is the number of spatial axes.
The classes register themselves (`Layer.__init_subclass__`) when `cnnstat.ir.layers`
imports this module, before it derives `ALL_KINDS`.
"""

from __future__ import annotations

from typing import ClassVar

from cnnstat.ir.layers import MERGE, NO_PARAMS, Layer, _BatchNorm, _non_negative, _positive
from cnnstat.ir.record import record
from cnnstat.ir.torch_side import TorchModule

Sizes = tuple[int, ...]


def _sizes(name: str, value: Sizes, rank: int, check=_positive) -> None:
    if not (isinstance(value, tuple) and len(value) == rank):
        shape = "an int or [l]" if rank == 1 else "an int or [d, h, w]"
        raise ValueError(f"{name} must be {shape}, got {value!r}")
    for v in value:
        check(name, v)


def _check_conv(layer: _ConvNd) -> None:
    rank = layer.rank
    _positive("out_channels", layer.out_channels)
    _sizes("kernel_size", layer.kernel_size, rank)
    _sizes("stride", layer.stride, rank)
    _sizes("dilation", layer.dilation, rank)
    _positive("groups", layer.groups)
    if layer.padding == "same":
        if layer.stride != (1,) * rank:
            raise ValueError("padding 'same' needs stride 1 (as in torch)")
    else:
        _sizes("padding", layer.padding, rank, _non_negative)
    if layer.out_channels % layer.groups:
        raise ValueError(
            f"out_channels {layer.out_channels} is not divisible by groups {layer.groups}")


def _check_pool(layer: Layer) -> None:
    rank = layer.rank
    _sizes("kernel_size", layer.kernel_size, rank)
    _sizes("stride", layer.stride, rank)
    _sizes("padding", layer.padding, rank, _non_negative)
    _sizes("dilation", getattr(layer, "dilation", (1,) * rank), rank)
    for p, k in zip(layer.padding, layer.kernel_size, strict=True):
        if 2 * p > k:
            raise ValueError(f"padding {list(layer.padding)} must be at most half of "
                             f"kernel_size {list(layer.kernel_size)} (as in torch)")


@record
class _ConvNd(Layer):
    out_channels: int
    kernel_size: Sizes
    groups: int = 1
    bias: bool = True

    def __post_init__(self) -> None:
        _check_conv(self)


@record
class Conv1d(_ConvNd):
    kind: ClassVar[str] = "conv1d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "Conv1d", sized={"in_channels": 1}, requires={"padding_mode": "zeros"})
    rank: ClassVar[int] = 1
    stride: Sizes = (1,)
    padding: Sizes | str = (0,)  # or "same"; "valid" is normalised to (0,)
    dilation: Sizes = (1,)


@record
class Conv3d(_ConvNd):
    kind: ClassVar[str] = "conv3d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "Conv3d", sized={"in_channels": 1}, requires={"padding_mode": "zeros"})
    rank: ClassVar[int] = 3
    stride: Sizes = (1, 1, 1)
    padding: Sizes | str = (0, 0, 0)
    dilation: Sizes = (1, 1, 1)


@record
class _PoolNd(Layer):
    kernel_size: Sizes
    stride: Sizes
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        _check_pool(self)


@record
class MaxPool1d(_PoolNd):
    kind: ClassVar[str] = "max_pool1d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "MaxPool1d", requires={"return_indices": False},
        function=("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"))
    rank: ClassVar[int] = 1
    padding: Sizes = (0,)
    dilation: Sizes = (1,)


@record
class MaxPool3d(_PoolNd):
    kind: ClassVar[str] = "max_pool3d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "MaxPool3d", requires={"return_indices": False},
        function=("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"))
    rank: ClassVar[int] = 3
    padding: Sizes = (0, 0, 0)
    dilation: Sizes = (1, 1, 1)


@record
class AvgPool1d(_PoolNd):
    kind: ClassVar[str] = "avg_pool1d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "AvgPool1d", requires={"divisor_override": None},
        function=("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"))
    rank: ClassVar[int] = 1
    padding: Sizes = (0,)
    count_include_pad: bool = True


@record
class AvgPool3d(_PoolNd):
    kind: ClassVar[str] = "avg_pool3d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "AvgPool3d", requires={"divisor_override": None},
        function=("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                  "divisor_override"))
    rank: ClassVar[int] = 3
    padding: Sizes = (0, 0, 0)
    count_include_pad: bool = True


@record
class _AdaptiveNd(Layer):
    output_size: Sizes

    def __post_init__(self) -> None:
        _sizes("output_size", self.output_size, self.rank)


@record
class AdaptiveAvgPool1d(_AdaptiveNd):
    kind: ClassVar[str] = "adaptive_avg_pool1d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "AdaptiveAvgPool1d", from_output=("output_size",), function=("output_size",))
    rank: ClassVar[int] = 1


@record
class AdaptiveAvgPool3d(_AdaptiveNd):
    kind: ClassVar[str] = "adaptive_avg_pool3d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "AdaptiveAvgPool3d", from_output=("output_size",), function=("output_size",))
    rank: ClassVar[int] = 3


@record
class AdaptiveMaxPool1d(_AdaptiveNd):
    kind: ClassVar[str] = "adaptive_max_pool1d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "AdaptiveMaxPool1d", requires={"return_indices": False}, from_output=("output_size",),
        function=("output_size", "return_indices"))
    rank: ClassVar[int] = 1


@record
class AdaptiveMaxPool3d(_AdaptiveNd):
    kind: ClassVar[str] = "adaptive_max_pool3d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "AdaptiveMaxPool3d", requires={"return_indices": False}, from_output=("output_size",),
        function=("output_size", "return_indices"))
    rank: ClassVar[int] = 3


@record
class BatchNorm1d(_BatchNorm):
    """Over dim 1 of [N, C] or [N, C, L], as nn.BatchNorm1d."""

    kind: ClassVar[str] = "batch_norm1d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "BatchNorm1d", sized={"num_features": 1})
    rank: ClassVar[int] = 1


@record
class BatchNorm3d(_BatchNorm):
    kind: ClassVar[str] = "batch_norm3d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "BatchNorm3d", sized={"num_features": 1})
    rank: ClassVar[int] = 3


# --- attention ------------------------------------------------------------------------


@record
class ScaledDotProductAttention(Layer):
    """torch's F.scaled_dot_product_attention(q, k, v): inputs q [N, ..., L, E], k
    [N, ..., S, E], v [N, ..., S, Ev] (one input: q = k = v) -> [N, ..., L, Ev]. No
    weights; dropout is off at inference, which is what is counted."""

    kind: ClassVar[str] = "scaled_dot_product_attention"
    traits: ClassVar[frozenset[str]] = frozenset({MERGE, NO_PARAMS})  # several inputs
    is_causal: bool = False
    scale: float | None = None  # None: 1/sqrt(E), as in torch

    def __post_init__(self) -> None:
        if self.scale is not None and not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale!r}")


@record
class MultiheadAttention(Layer):
    """nn.MultiheadAttention: inputs query [N, L, E] and key, value [N, S, kdim / vdim]
    (one input: self-attention). The input projections, QK^T, softmax, AV and the output
    projection; embed_dim, kdim and vdim follow from the inputs. `batch_first` is True
    here (the batch stays at dim 0, as every kind assumes); False takes torch's [L, N, E]."""

    kind: ClassVar[str] = "multihead_attention"
    traits: ClassVar[frozenset[str]] = frozenset({MERGE})  # several inputs
    num_heads: int
    bias: bool = True
    batch_first: bool = True

    def __post_init__(self) -> None:
        _positive("num_heads", self.num_heads)


ND_WINDOWS: tuple[type[Layer], ...] = (Conv1d, Conv3d, MaxPool1d, MaxPool3d, AvgPool1d,
                                        AvgPool3d, AdaptiveAvgPool1d, AdaptiveAvgPool3d,
                                        AdaptiveMaxPool1d, AdaptiveMaxPool3d)
ND_NORMS: tuple[type[Layer], ...] = (BatchNorm1d, BatchNorm3d)
ATTENTION: tuple[type[Layer], ...] = (ScaledDotProductAttention, MultiheadAttention)

