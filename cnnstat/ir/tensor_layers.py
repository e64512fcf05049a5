"""Layer kinds that cut, reduce, pad or group-normalise a tensor: `split` / `chunk` /
`unbind` (one node per part), `mean` / `sum` over dims, `pad` (F.pad) and `group_norm`;
and `sub`, the two-input merge x - y.

Declared here and imported by `cnnstat.ir.layers` before it derives `ALL_KINDS`, so they
register like every other kind; use them as `L.Split`, `L.Pad`, ....

A multi-output op is one node per part: the graph's nodes have one output each, and a
network only ever reads one part at a time (ShuffleNetV2's `x1, x2 = x.chunk(2, dim=1)`).
Each part node carries its `index`; a spec entry without `index` stands for all of its
parts, named `NAME.0`, `NAME.1`, ... (docs/spec.md).
"""

from __future__ import annotations

from typing import ClassVar

from cnnstat.ir.layers import (
    MERGE,
    NO_PARAMS,
    SHAPE_PRESERVING,
    Layer,
    _non_negative,
    _positive,
)
from cnnstat.ir.record import record
from cnnstat.ir.torch_side import TorchModule

_PART = frozenset({NO_PARAMS})


def _batch_kept(dim: int, what: str) -> None:
    if dim == 0:
        raise ValueError(f"{what} 0 is the batch, which every kind keeps at dim 0")


@record
class Split(Layer):
    """Part `index` of torch.split(x, split_size, dim): one size gives parts of that size
    (the last one smaller), several give the parts' sizes, which must add up to the dim."""

    kind: ClassVar[str] = "split"
    traits: ClassVar[frozenset[str]] = _PART
    split_size: tuple[int, ...]
    dim: int = 1
    index: int = 0

    def __post_init__(self) -> None:
        if not self.split_size:
            raise ValueError("split_size must give at least one size")
        for size in self.split_size:
            _positive("split_size entries", size)
        _batch_kept(self.dim, "dim")
        _non_negative("index", self.index)
        if len(self.split_size) > 1 and self.index >= len(self.split_size):
            raise ValueError(f"index {self.index} is past the {len(self.split_size)} parts")

    @property
    def parts(self) -> int | None:
        """How many parts a spec entry stands for; None when it depends on the input."""
        return len(self.split_size) if len(self.split_size) > 1 else None


@record
class Chunk(Layer):
    """Part `index` of torch.chunk(x, chunks, dim): parts of ceil(size / chunks); as in
    torch there may be fewer than `chunks` parts (a dim of 5 in 4 chunks gives 3)."""

    kind: ClassVar[str] = "chunk"
    traits: ClassVar[frozenset[str]] = _PART
    chunks: int
    dim: int = 1
    index: int = 0

    def __post_init__(self) -> None:
        _positive("chunks", self.chunks)
        _batch_kept(self.dim, "dim")
        _non_negative("index", self.index)
        if self.index >= self.chunks:
            raise ValueError(f"index {self.index} is past the {self.chunks} chunks")

    @property
    def parts(self) -> int | None:
        return self.chunks


@record
class Unbind(Layer):
    """Part `index` of torch.unbind(x, dim): the slice at `index`, without that dim."""

    kind: ClassVar[str] = "unbind"
    traits: ClassVar[frozenset[str]] = _PART
    dim: int = 1
    index: int = 0

    def __post_init__(self) -> None:
        _batch_kept(self.dim, "dim")
        _non_negative("index", self.index)

    @property
    def parts(self) -> int | None:
        return None


PARTS: tuple[type[Layer], ...] = (Split, Chunk, Unbind)


@record
class _Reduce(Layer):
    traits: ClassVar[frozenset[str]] = frozenset({NO_PARAMS})
    dims: tuple[int, ...]
    keepdim: bool = False

    def __post_init__(self) -> None:
        if not self.dims:
            raise ValueError("dims must list at least one dim (a reduction over every dim "
                             "would drop the batch)")
        for dim in self.dims:
            _batch_kept(dim, "dims entry")


@record
class Mean(_Reduce):
    """x.mean(dims, keepdim): torch.mean over the listed dims (SE's squeeze, mean over
    (2, 3) with keepdim, is a global average pool)."""

    kind: ClassVar[str] = "mean"


@record
class Sum(_Reduce):
    """x.sum(dims, keepdim)."""

    kind: ClassVar[str] = "sum"


REDUCTIONS: tuple[type[Layer], ...] = (Mean, Sum)
PAD_MODES = ("constant", "reflect", "replicate", "circular")


@record
class Pad(Layer):
    """F.pad(x, padding, mode, value): `padding` as torch orders it, pairs from the last
    dim backwards ([left, right] of W, then [top, bottom] of H, ...); negative values crop
    (constant mode, as in torch). nn.ZeroPad2d / ConstantPad2d / ReflectionPad2d / ... are
    this with 4 values."""

    kind: ClassVar[str] = "pad"
    traits: ClassVar[frozenset[str]] = frozenset({NO_PARAMS})
    padding: tuple[int, ...]
    mode: str = "constant"
    value: float = 0.0

    def __post_init__(self) -> None:
        if not self.padding or len(self.padding) % 2:
            raise ValueError(f"padding must give [before, after] pairs, got {list(self.padding)}")
        if self.mode not in PAD_MODES:
            raise ValueError(f"mode must be one of {', '.join(PAD_MODES)}, got {self.mode!r}")
        if self.mode != "constant" and min(self.padding) < 0:
            raise ValueError(f"negative padding crops in constant mode only, got {self.mode!r}")

    def amounts(self, rank: int) -> list[tuple[int, int]]:
        """(before, after) for each of the `rank` dims, batch first."""
        pairs = [(0, 0)] * rank
        for i in range(len(self.padding) // 2):
            pairs[rank - 1 - i] = (self.padding[2 * i], self.padding[2 * i + 1])
        return pairs


@record
class GroupNorm(Layer):
    """nn.GroupNorm(num_groups, C): statistics over (C / groups, H, W) of each sample,
    computed at inference too, then a per-channel affine."""

    kind: ClassVar[str] = "group_norm"
    traits: ClassVar[frozenset[str]] = frozenset({SHAPE_PRESERVING})
    # F.group_norm passes its weights: its converter is written out (tensor_converters.py).
    torch_module: ClassVar[TorchModule | None] = TorchModule(
        "GroupNorm", sized={"num_channels": 1})
    num_groups: int
    eps: float = 1e-5
    affine: bool = True

    def __post_init__(self) -> None:
        _positive("num_groups", self.num_groups)


@record
class Sub(Layer):
    """x - y (torch.sub, ONNX Sub): inputs (x, y), broadcast as in torch."""

    kind: ClassVar[str] = "sub"
    traits: ClassVar[frozenset[str]] = frozenset({MERGE, NO_PARAMS})
