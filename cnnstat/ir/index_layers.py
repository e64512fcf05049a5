"""Layer kinds that index a tensor, and the learned tensors a vision transformer puts
around its tokens: `slice` (x[:, a:b:s] along one dim), `select` (x[:, i], which drops
the dim), `class_token` (learned tokens prepended to [N, S, D]) and
`position_embedding` (a learned tensor of the input's shape added to it).

Declared here and imported by `cnnstat.ir.layers` before it derives `ALL_KINDS`, so they
register like every other kind; use them as `L.Slice`, `L.Select`, ....
"""

from __future__ import annotations

from typing import ClassVar

from cnnstat.ir.layers import NO_PARAMS, SHAPE_PRESERVING, Layer, _positive
from cnnstat.ir.record import record


def _int_or_none(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{name} must be an int or absent, got {value!r}")


def _not_batch(dim: int) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise ValueError(f"dim must be an int, got {dim!r}")
    if dim == 0:
        raise ValueError("dim 0 is the batch, which every kind keeps at dim 0")


@record
class Slice(Layer):
    """x[..., start:stop:step] along `dim` (torch.narrow when step is 1): Python's slice
    rules, so a negative start or stop counts from the end and either may be absent (the
    whole dim); step positive, as torch requires. A view of the input."""

    kind: ClassVar[str] = "slice"
    traits: ClassVar[frozenset[str]] = frozenset({NO_PARAMS})
    dim: int = 1
    start: int | None = None
    stop: int | None = None
    step: int = 1

    def __post_init__(self) -> None:
        _not_batch(self.dim)
        _int_or_none("start", self.start)
        _int_or_none("stop", self.stop)
        _positive("step", self.step)

    def span(self, size: int) -> range:
        """The input indices along `dim` that the output keeps, for a dim of `size`."""
        return range(*slice(self.start, self.stop, self.step).indices(size))


@record
class Select(Layer):
    """x.select(dim, index), as x[:, index]: the slice at `index` (negative counts from
    the end), without that dim. A view of the input."""

    kind: ClassVar[str] = "select"
    traits: ClassVar[frozenset[str]] = frozenset({NO_PARAMS})
    index: int
    dim: int = 1

    def __post_init__(self) -> None:
        _not_batch(self.dim)
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise ValueError(f"index must be an int, got {self.index!r}")


@record
class ClassToken(Layer):
    """torch.cat([token.expand(N, -1, -1), x], dim=1) on tokens x [N, S, D], token a
    learned [1, tokens, D] (ViT's class token; 2 with DeiT's distillation token)."""

    kind: ClassVar[str] = "class_token"
    tokens: int = 1

    def __post_init__(self) -> None:
        _positive("tokens", self.tokens)


@record
class PositionEmbedding(Layer):
    """x + embedding, a learned tensor of the input's shape without the batch (ViT's
    pos_embedding [1, S, D]), broadcast over the batch."""

    kind: ClassVar[str] = "position_embedding"
    traits: ClassVar[frozenset[str]] = frozenset({SHAPE_PRESERVING})


INDEXING: tuple[type[Layer], ...] = (Slice, Select)
INDEX_KINDS: tuple[type[Layer], ...] = (Slice, Select, ClassToken, PositionEmbedding)
