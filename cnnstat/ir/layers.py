"""One frozen dataclass per layer kind, named and shaped like torch's modules.

Layers hold only their own attributes: `in_channels` / `in_features` are never stored,
they follow from the input shape at analysis time. Frontends normalise values
(`3` -> `(3, 3)`) before constructing a layer; `__post_init__` checks each layer's own
invariants and raises `ValueError`, which the frontend re-raises with a location.
"""

from __future__ import annotations

from typing import ClassVar

from cnnstat.ir.record import Record, record
from cnnstat.ir.torch_side import TorchModule

Pair = tuple[int, int]


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _non_negative(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _pair(name: str, value: Pair, check=_positive) -> None:
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ValueError(f"{name} must be an int or [h, w], got {value!r}")
    for v in value:
        check(name, v)


# Traits a kind declares; each analyzer registers one handler per trait (as fvcore's
# handle factories do), so a kind with traits needs no handler of its own there.
POINTWISE = "pointwise"  # an element-wise function: 1 op per output element
NO_PARAMS = "no_params"  # no learnable tensors and no buffers
SHAPE_PRESERVING = "shape_preserving"  # output shape = input shape, field unchanged
MERGE = "merge"  # takes several inputs (concat, add, multiply)

# Every kind, by its `kind` name, in declaration order: filled by `Layer.__init_subclass__`.
_KINDS: dict[str, type[Layer]] = {}


@record
class Layer(Record):
    """Base of every layer kind. `kind` is the stable name used in reports and specs.

    A subclass that sets its own `kind` registers itself (a base such as `_Pool` does
    not); `traits` name the shared handler families it takes (see docs/architecture.md).
    """

    kind: ClassVar[str] = "layer"
    traits: ClassVar[frozenset[str]] = frozenset()
    # A kind that is one torch.nn module, its fields the module's constructor arguments,
    # says so here (as text: the IR never imports torch); the builder then makes it and
    # the torch frontend converts it back with no code of the kind's own (ir/torch_side.py).
    torch_module: ClassVar[TorchModule | None] = None

    def __init_subclass__(cls, **kwargs) -> None:
        super(Layer, cls).__init_subclass__(**kwargs)  # noqa: UP008  zero-arg super breaks on slots
        # @record's slotted copy of a class registers again and replaces the first one.
        if "kind" in cls.__dict__:
            _KINDS[cls.kind] = cls


def kinds_with(trait: str) -> tuple[type[Layer], ...]:
    return tuple(k for k in _KINDS.values() if trait in k.traits)


def kinds_built_as_torch_modules() -> tuple[type[Layer], ...]:
    """The kinds that declare `torch_module`: one torch module each, built and converted
    from that declaration alone."""
    return tuple(k for k in _KINDS.values() if k.torch_module)


_ACTIVATION = frozenset({POINTWISE, NO_PARAMS, SHAPE_PRESERVING})


@record
class Input(Layer):
    """The graph's single input; its shape is chosen at analysis time."""

    kind: ClassVar[str] = "input"


@record
class Conv2d(Layer):
    kind: ClassVar[str] = "conv2d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "Conv2d", sized={"in_channels": 1}, requires={"padding_mode": "zeros"})
    out_channels: int
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Pair | str = (0, 0)  # (h, w) or "same"; "valid" is normalised to (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True

    def __post_init__(self) -> None:
        _positive("out_channels", self.out_channels)
        _pair("kernel_size", self.kernel_size)
        _pair("stride", self.stride)
        _pair("dilation", self.dilation)
        _positive("groups", self.groups)
        if self.padding == "same":
            if self.stride != (1, 1):
                raise ValueError("padding 'same' needs stride 1 (as in torch)")
        else:
            _pair("padding", self.padding, _non_negative)
        if self.out_channels % self.groups:
            raise ValueError(
                f"out_channels {self.out_channels} is not divisible by groups {self.groups}"
            )


@record
class ConvTranspose2d(Layer):
    kind: ClassVar[str] = "conv_transpose2d"
    out_channels: int
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    output_padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True

    def __post_init__(self) -> None:
        _positive("out_channels", self.out_channels)
        _pair("kernel_size", self.kernel_size)
        _pair("stride", self.stride)
        _pair("padding", self.padding, _non_negative)
        _pair("output_padding", self.output_padding, _non_negative)
        _pair("dilation", self.dilation)
        _positive("groups", self.groups)
        for axis in range(2):
            op, s, d = self.output_padding[axis], self.stride[axis], self.dilation[axis]
            if op >= max(s, d):
                raise ValueError(
                    f"output_padding {self.output_padding} must be smaller than "
                    f"stride or dilation (as in torch)"
                )
        if self.out_channels % self.groups:
            raise ValueError(
                f"out_channels {self.out_channels} is not divisible by groups {self.groups}"
            )


@record
class _Pool(Layer):
    kernel_size: Pair
    stride: Pair
    padding: Pair = (0, 0)
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        _pair("kernel_size", self.kernel_size)
        _pair("stride", self.stride)
        _pair("padding", self.padding, _non_negative)
        for p, k in zip(self.padding, self.kernel_size, strict=True):
            if 2 * p > k:
                raise ValueError(
                    f"padding {self.padding} must be at most half of kernel_size "
                    f"{self.kernel_size} (as in torch)"
                )


@record
class MaxPool2d(_Pool):
    kind: ClassVar[str] = "max_pool2d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "MaxPool2d", requires={"return_indices": False},
        function=("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"))
    dilation: Pair = (1, 1)

    def __post_init__(self) -> None:
        _Pool.__post_init__(self)
        _pair("dilation", self.dilation)


@record
class AvgPool2d(_Pool):
    kind: ClassVar[str] = "avg_pool2d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "AvgPool2d", requires={"divisor_override": None},
        function=("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                  "divisor_override"))
    count_include_pad: bool = True


@record
class AdaptiveAvgPool2d(Layer):
    kind: ClassVar[str] = "adaptive_avg_pool2d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "AdaptiveAvgPool2d", from_output=("output_size",), function=("output_size",))
    output_size: Pair

    def __post_init__(self) -> None:
        _pair("output_size", self.output_size)


@record
class AdaptiveMaxPool2d(Layer):
    kind: ClassVar[str] = "adaptive_max_pool2d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "AdaptiveMaxPool2d", requires={"return_indices": False}, from_output=("output_size",),
        function=("output_size", "return_indices"))
    output_size: Pair

    def __post_init__(self) -> None:
        _pair("output_size", self.output_size)


@record
class _BatchNorm(Layer):
    """The fields of torch's batch norms, of every rank (the 1-D / 3-D ones in layers_nd)."""

    eps: float = 1e-5
    momentum: float | None = 0.1  # None: a cumulative average, as in torch
    affine: bool = True
    track_running_stats: bool = True


@record
class BatchNorm2d(_BatchNorm):
    kind: ClassVar[str] = "batch_norm2d"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "BatchNorm2d", sized={"num_features": 1})


@record
class LocalResponseNorm(Layer):
    kind: ClassVar[str] = "local_response_norm"
    torch_module: ClassVar[TorchModule | None] = TorchModule("LocalResponseNorm")
    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    def __post_init__(self) -> None:
        _positive("size", self.size)


@record
class ReLU(Layer):
    kind: ClassVar[str] = "relu"
    traits: ClassVar[frozenset[str]] = _ACTIVATION
    torch_module: ClassVar[TorchModule | None] = TorchModule("ReLU")


@record
class ReLU6(Layer):
    kind: ClassVar[str] = "relu6"
    traits: ClassVar[frozenset[str]] = _ACTIVATION
    torch_module: ClassVar[TorchModule | None] = TorchModule("ReLU6")


@record
class LeakyReLU(Layer):
    kind: ClassVar[str] = "leaky_relu"
    traits: ClassVar[frozenset[str]] = _ACTIVATION
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "LeakyReLU", function=("negative_slope",))
    negative_slope: float = 0.01


@record
class Sigmoid(Layer):
    kind: ClassVar[str] = "sigmoid"
    traits: ClassVar[frozenset[str]] = _ACTIVATION
    torch_module: ClassVar[TorchModule | None] = TorchModule("Sigmoid")


@record
class Tanh(Layer):
    kind: ClassVar[str] = "tanh"
    traits: ClassVar[frozenset[str]] = _ACTIVATION
    torch_module: ClassVar[TorchModule | None] = TorchModule("Tanh")


@record
class GELU(Layer):
    kind: ClassVar[str] = "gelu"
    traits: ClassVar[frozenset[str]] = _ACTIVATION
    torch_module: ClassVar[TorchModule | None] = TorchModule("GELU", function=("approximate",))
    approximate: str = "none"

    def __post_init__(self) -> None:
        if self.approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {self.approximate!r}")


@record
class SiLU(Layer):
    kind: ClassVar[str] = "silu"
    traits: ClassVar[frozenset[str]] = _ACTIVATION
    torch_module: ClassVar[TorchModule | None] = TorchModule("SiLU")


@record
class Hardswish(Layer):
    kind: ClassVar[str] = "hardswish"
    traits: ClassVar[frozenset[str]] = _ACTIVATION
    torch_module: ClassVar[TorchModule | None] = TorchModule("Hardswish")


@record
class Hardsigmoid(Layer):
    """relu6(x + 3) / 6, MobileNetV3's gate (torch's nn.Hardsigmoid)."""

    kind: ClassVar[str] = "hardsigmoid"
    traits: ClassVar[frozenset[str]] = _ACTIVATION
    torch_module: ClassVar[TorchModule | None] = TorchModule("Hardsigmoid")


@record
class LayerNorm(Layer):
    """Layer norm over the channels of each position: `channels_first` is ConvNeXt's
    LayerNorm2d on [N, C, H, W]; `channels_last` is nn.LayerNorm over the last dim."""

    kind: ClassVar[str] = "layer_norm"
    traits: ClassVar[frozenset[str]] = frozenset({SHAPE_PRESERVING})
    data_format: str = "channels_first"
    eps: float = 1e-5
    elementwise_affine: bool = True
    bias: bool = True

    def __post_init__(self) -> None:
        if self.data_format not in ("channels_first", "channels_last"):
            raise ValueError("data_format must be 'channels_first' or 'channels_last', "
                             f"got {self.data_format!r}")


@record
class LayerScale(Layer):
    """A learned per-channel scale (ConvNeXt's layer_scale, CaiT's LayerScale): x * gamma,
    gamma of C values on dim 1."""

    kind: ClassVar[str] = "scale"
    traits: ClassVar[frozenset[str]] = frozenset({SHAPE_PRESERVING})
    init_value: float = 1e-6


@record
class DropPath(Layer):
    """Stochastic depth (torchvision's StochasticDepth, timm's DropPath): drops a whole
    residual branch in training; the identity at inference, which is what is counted."""

    kind: ClassVar[str] = "drop_path"
    traits: ClassVar[frozenset[str]] = frozenset({NO_PARAMS, SHAPE_PRESERVING})
    p: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p!r}")


@record
class Softmax(Layer):
    kind: ClassVar[str] = "softmax"
    dim: int = 1


@record
class Dropout(Layer):
    kind: ClassVar[str] = "dropout"
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "Dropout", function=("p",), also=("Dropout2d",))
    p: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p!r}")


@record
class Flatten(Layer):
    kind: ClassVar[str] = "flatten"
    # The module only: torch.flatten's start_dim is 0, its converter is written out.
    torch_module: ClassVar[TorchModule | None] = TorchModule("Flatten")
    start_dim: int = 1
    end_dim: int = -1


@record
class Linear(Layer):
    kind: ClassVar[str] = "linear"
    torch_module: ClassVar[TorchModule | None] = TorchModule("Linear", sized={"in_features": -1})
    out_features: int
    bias: bool = True

    def __post_init__(self) -> None:
        _positive("out_features", self.out_features)


@record
class Concat(Layer):
    kind: ClassVar[str] = "concat"
    traits: ClassVar[frozenset[str]] = frozenset({MERGE, NO_PARAMS})
    dim: int = 1


@record
class Add(Layer):
    kind: ClassVar[str] = "add"
    traits: ClassVar[frozenset[str]] = frozenset({MERGE, NO_PARAMS})


@record
class Multiply(Layer):
    kind: ClassVar[str] = "multiply"
    traits: ClassVar[frozenset[str]] = frozenset({MERGE, NO_PARAMS})


@record
class Reshape(Layer):
    """Reshape of everything but the batch dimension; one entry may be -1."""

    kind: ClassVar[str] = "reshape"
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.shape:
            raise ValueError("shape must list at least one size")
        if sum(1 for s in self.shape if s == -1) > 1:
            raise ValueError(f"shape may hold at most one -1, got {list(self.shape)}")
        for s in self.shape:
            if s != -1:
                _positive("shape entries", s)


@record
class Permute(Layer):
    """torch's `x.permute(*dims)` (torchvision's Permute module): `dims` over the whole
    tensor, batch included, as torch writes them (ConvNeXt's [0, 2, 3, 1] to NHWC). The
    batch stays at dim 0, as every other kind assumes; a negative dim counts from the end."""

    kind: ClassVar[str] = "permute"
    traits: ClassVar[frozenset[str]] = frozenset({NO_PARAMS})
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.dims) < 2:
            raise ValueError(f"dims must list every dim, batch included, got {list(self.dims)}")
        if self.dims[0] not in (0, -len(self.dims)):
            raise ValueError(f"dims must keep the batch at dim 0, got {list(self.dims)}")


@record
class Identity(Layer):
    kind: ClassVar[str] = "identity"
    torch_module: ClassVar[TorchModule | None] = TorchModule("Identity")


@record
class Upsample(Layer):
    """Exactly one of `size`, `scale_factor` and `like` is set (as in torch, plus `like`:
    inputs (x, reference), x resized to the reference's H, W, as DeepLab's
    `F.interpolate(x, size=input.shape[-2:])`, so the spec holds at every input size)."""

    kind: ClassVar[str] = "upsample"
    size: Pair | None = None
    scale_factor: tuple[float, float] | None = None
    mode: str = "nearest"
    align_corners: bool | None = None
    like: bool = False

    def __post_init__(self) -> None:
        if sum((self.size is not None, self.scale_factor is not None, self.like)) != 1:
            raise ValueError("give exactly one of size, scale_factor and size_of")
        if self.size is not None:
            _pair("size", self.size)
        if self.scale_factor is not None and not all(f > 0 for f in self.scale_factor):
            raise ValueError(f"scale_factor must be positive, got {self.scale_factor!r}")
        if self.mode not in ("nearest", "bilinear"):
            raise ValueError(f"mode must be 'nearest' or 'bilinear', got {self.mode!r}")
        if self.mode == "nearest" and self.align_corners is not None:
            raise ValueError("align_corners only applies to mode 'bilinear'")


@record
class ChannelShuffle(Layer):
    kind: ClassVar[str] = "channel_shuffle"
    torch_module: ClassVar[TorchModule | None] = TorchModule("ChannelShuffle", function=("groups",))
    groups: int

    def __post_init__(self) -> None:
        _positive("groups", self.groups)


@record
class PixelShuffle(Layer):
    """Shi et al. 2016 (ESPCN)'s sub-pixel convolution step, torch's nn.PixelShuffle:
    [N, C*r*r, H, W] -> [N, C, H*r, W*r], each r x r block of outputs from the r*r
    channels of one input position. A rearrangement: no params, no arithmetic."""

    kind: ClassVar[str] = "pixel_shuffle"
    traits: ClassVar[frozenset[str]] = frozenset({NO_PARAMS})
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "PixelShuffle", function=("upscale_factor",))
    upscale_factor: int

    def __post_init__(self) -> None:
        _positive("upscale_factor", self.upscale_factor)


@record
class Opaque(Layer):
    """An operation the torch frontend could not map to a layer kind (a LayerNorm, a
    `x.mean()`, a shared-weight call). Its shapes come from meta-tensor propagation at the
    traced input and its MACs from torch's FlopCounterMode ("counted by torch"); `macs`
    is None when torch could not count it. `params` / `buffers` are the sizes of the
    module tensors it uses. Valid only at the traced input shape (the batch may differ).
    """

    kind: ClassVar[str] = "opaque"
    op: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    macs: int | None = None
    params: int = 0
    buffers: int = 0

    def __post_init__(self) -> None:
        if not self.op:
            raise ValueError("an opaque layer names the torch op it stands for")
        for name in ("params", "buffers"):
            _non_negative(name, getattr(self, name))
        if self.macs is not None:
            _non_negative("macs", self.macs)


def _regions(value: int | None) -> None:
    if value is not None:
        _positive("regions", value)


@record
class SpatialPyramidPool(Layer):
    """He et al. 2014 (SPP-net): a max pool per pyramid level (an l x l grid of adaptive
    windows), flattened and concatenated: [N, C, H, W] -> [N*regions, C * sum(l*l)] from
    any H, W. `regions` is set when it pools each of R windows of one feature map (set by a
    per-region scope, docs/detection.md)."""

    kind: ClassVar[str] = "spatial_pyramid_pool"
    levels: tuple[int, ...]
    regions: int | None = None  # None: not per-region (one output per image)

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("levels must list at least one pyramid level")
        for level in self.levels:
            _positive("levels entries", level)
        _regions(self.regions)

    @property
    def region_count(self) -> int:
        return self.regions or 1


@record
class _RoI(Layer):
    output_size: Pair
    spatial_scale: float = 1.0
    regions: int | None = None  # None: one region per image

    def __post_init__(self) -> None:
        _pair("output_size", self.output_size)
        if not self.spatial_scale > 0:
            raise ValueError(f"spatial_scale must be positive, got {self.spatial_scale!r}")
        _regions(self.regions)

    @property
    def region_count(self) -> int:
        return self.regions or 1


@record
class RoIPool(_RoI):
    """Fast R-CNN RoI max pooling: each of `regions` boxes is cut into an output_size grid
    of bins, max-pooled: [N, C, H, W] -> [N*regions, C, oh, ow]. The boxes are data (from
    selective search or an RPN); `spatial_scale` maps image to feature-map coordinates."""

    kind: ClassVar[str] = "roi_pool"


@record
class RoIAlign(_RoI):
    """Mask R-CNN RoI align: bilinear samples (sampling_ratio^2 per bin), averaged per bin.
    Also R-CNN's warp of each proposal to 227x227 (spatial_scale 1 on the image)."""

    kind: ClassVar[str] = "roi_align"
    sampling_ratio: int = 2

    def __post_init__(self) -> None:
        _RoI.__post_init__(self)
        _positive("sampling_ratio", self.sampling_ratio)


@record
class Crop(Layer):
    """Caffe's Crop (as FCN uses it): inputs (x, reference); x cropped to the reference's
    spatial size starting at `offset` (h, w): [N, C, H, W] -> [N, C, H_ref, W_ref].
    `center`: the offset is ((H - H_ref) // 2, (W - W_ref) // 2) at whatever input comes
    (U-Net's crop of the skip connection)."""

    kind: ClassVar[str] = "crop"
    offset: Pair = (0, 0)
    center: bool = False

    def offsets(self, h: int, w: int, ref_h: int, ref_w: int) -> Pair:
        """The (h, w) offset used for an input of h x w and a reference of ref_h x ref_w."""
        return ((h - ref_h) // 2, (w - ref_w) // 2) if self.center else self.offset

    def __post_init__(self) -> None:
        _pair("offset", self.offset, _non_negative)


# Kinds declared in their own modules (they import this one's base and helpers): imported
# here, before the derived tuples below and ALL_KINDS, so they are kinds like every other.
from cnnstat.ir.index_layers import (  # noqa: E402, F401
    INDEX_KINDS,
    INDEXING,
    ClassToken,
    PositionEmbedding,
    Select,
    Slice,
)
from cnnstat.ir.layers_nd import (  # noqa: E402, F401
    ATTENTION,
    ND_NORMS,
    ND_WINDOWS,
    AdaptiveAvgPool1d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool3d,
    AvgPool1d,
    AvgPool3d,
    BatchNorm1d,
    BatchNorm3d,
    Conv1d,
    Conv3d,
    MaxPool1d,
    MaxPool3d,
    MultiheadAttention,
    ScaledDotProductAttention,
)
from cnnstat.ir.tensor_layers import (  # noqa: E402, F401
    PAD_MODES,
    PARTS,
    REDUCTIONS,
    Chunk,
    GroupNorm,
    Mean,
    Pad,
    Split,
    Sub,
    Sum,
    Unbind,
)
from cnnstat.ir.window_layers import (  # noqa: E402, F401
    WINDOW_KINDS,
    PatchMerge,
    WindowAttention,
)

# Arithmetic by a number, stack, GRN and the convs with a computed or fixed weight.
from cnnstat.ir.arith_layers import (  # noqa: E402, F401  isort: skip
    COMPUTED_WEIGHT_CONVS,
    SCALAR_OPS,
    FixedConv2d,
    GlobalResponseNorm,
    Scalar,
    Stack,
    StdConv2d,
)

ELEMENTWISE_ACTIVATIONS: tuple[type[Layer], ...] = kinds_with(POINTWISE)
MERGES: tuple[type[Layer], ...] = kinds_with(MERGE)
WEIGHT_LAYERS: tuple[type[Layer], ...] = (Conv2d, ConvTranspose2d, Linear, Conv1d, Conv3d)
# Kinds that take exactly two inputs: (the tensor, a reference it is shaped after).
TWO_INPUTS: tuple[type[Layer], ...] = (Crop,)


def takes_reference(layer: Layer) -> bool:
    """Inputs (tensor, reference): a crop, or an upsample to the reference's size."""
    return isinstance(layer, TWO_INPUTS) or (isinstance(layer, Upsample) and layer.like)
# Kinds that can cut R regions out of one image or feature map: [N, ...] -> [N*R, ...].
REGION_ENTRIES: tuple[type[Layer], ...] = (RoIPool, RoIAlign, SpatialPyramidPool)

# Derived, never hand-kept: a new class is in it by being declared.
ALL_KINDS: tuple[type[Layer], ...] = tuple(_KINDS.values())
