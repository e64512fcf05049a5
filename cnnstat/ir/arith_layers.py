"""Layer kinds of arithmetic by a number, stacking, global response norm and the
convolutions whose weight is not a plain parameter:

- `scalar`: x * 0.17, x / 2, x + eps, 1 - x (a Python number in the model's code), or x
  times one learned number (NFNet's skipinit gain);
- `tensor_stack`: torch.stack of same-shaped tensors along a new dim (SK attention's branches);
- `grn`: ConvNeXt V2's global response norm;
- `fixed_conv2d`: a convolution with a fixed filter held in a buffer (anti-alias blur);
- `std_conv2d`: a convolution whose weight is standardized from its parameter at each
  forward (weight standardization: timm's StdConv2d, ScaledStdConv2d, NFNets).

Declared here and imported by `cnnstat.ir.layers` before it derives `ALL_KINDS`.
"""

from __future__ import annotations

from typing import ClassVar

from cnnstat.ir.layers import (
    MERGE,
    NO_PARAMS,
    POINTWISE,
    SHAPE_PRESERVING,
    Conv2d,
    Layer,
    Pair,
)
from cnnstat.ir.record import record

# x op value: "rsub" is value - x, "rdiv" value / x.
SCALAR_OPS = ("mul", "div", "add", "sub", "rsub", "rdiv")


@record
class Scalar(Layer):
    """x op value, element by element, value a number fixed in the model's code; with
    `learned`, value is one learned parameter (a 0-d tensor, its initial value given)."""

    kind: ClassVar[str] = "scalar"
    traits: ClassVar[frozenset[str]] = frozenset({POINTWISE, SHAPE_PRESERVING})
    op: str
    value: float = 1.0
    learned: bool = False

    def __post_init__(self) -> None:
        if self.op not in SCALAR_OPS:
            raise ValueError(f"op must be one of {', '.join(SCALAR_OPS)}, got {self.op!r}")
        if self.op in ("div", "rdiv") and self.value == 0:
            raise ValueError("a division by 0")
        if self.learned and self.op != "mul":
            raise ValueError(f"a learned value is a gain: op mul, got {self.op!r}")


@record
class Stack(Layer):
    """torch.stack(xs, dim): inputs of one shape, a new dim of len(xs) at `dim`."""

    kind: ClassVar[str] = "tensor_stack"
    traits: ClassVar[frozenset[str]] = frozenset({MERGE, NO_PARAMS})
    dim: int = 1

    def __post_init__(self) -> None:
        if self.dim == 0:
            raise ValueError("dim 0 is the batch, which every kind keeps at dim 0")


@record
class GlobalResponseNorm(Layer):
    """ConvNeXt V2's GRN: g = ||x|| over H, W per channel, n = g / (mean_C(g) + eps),
    out = x + weight * (x * n) + bias; weight and bias per channel (the last dim with
    `channels_last`, an [N, H, W, C] tensor; else dim 1)."""

    kind: ClassVar[str] = "grn"
    traits: ClassVar[frozenset[str]] = frozenset({SHAPE_PRESERVING})
    eps: float = 1e-6
    channels_last: bool = True


@record
class _ComputedWeightConv(Layer):
    out_channels: int
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Pair | str = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = False

    def __post_init__(self) -> None:
        self.as_conv()  # conv2d's own checks

    def as_conv(self) -> Conv2d:
        """The plain convolution computing the same output (shapes, MACs, field)."""
        return Conv2d(out_channels=self.out_channels, kernel_size=self.kernel_size,
                      stride=self.stride, padding=self.padding, dilation=self.dilation,
                      groups=self.groups, bias=self.bias)


@record
class FixedConv2d(_ComputedWeightConv):
    """A convolution with a fixed filter, a buffer (timm's BlurPool2d: a binomial blur):
    the filter's elements are buffers, not parameters; the bias, if any, a parameter."""

    kind: ClassVar[str] = "fixed_conv2d"


@record
class StdConv2d(_ComputedWeightConv):
    """A convolution whose weight is standardized from its parameter at each forward
    (mean 0, variance 1 per output channel, then times a learned per-channel `gain`):
    timm's StdConv2d (no gain) and ScaledStdConv2d (gain), NFNet's convolutions."""

    kind: ClassVar[str] = "std_conv2d"
    gain: bool = False


COMPUTED_WEIGHT_CONVS: tuple[type[Layer], ...] = (FixedConv2d, StdConv2d)
