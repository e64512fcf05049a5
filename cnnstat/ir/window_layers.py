"""Layer kinds of Swin-style transformers, on tokens kept as [N, H, W, C] (channels last,
as torchvision's Swin keeps them between its first and last permute):

- `window_attention`: multi-head self-attention inside non-overlapping windows, shifted
  or not (torchvision's ShiftedWindowAttention, and its V2 with cosine attention and a
  continuous position bias);
- `patch_merge`: Swin's 2x2 gather of PatchMerging (pad H and W to even, concatenate the
  four tokens of each 2x2 patch): [N, H, W, C] -> [N, ceil(H/2), ceil(W/2), 4C]. Its norm
  and linear reduction are ordinary `layer_norm` and `linear` layers.

Declared here and imported by `cnnstat.ir.layers` before it derives `ALL_KINDS`.
"""

from __future__ import annotations

from typing import ClassVar

from cnnstat.ir.layers import NO_PARAMS, Layer, Pair, _non_negative, _pair, _positive
from cnnstat.ir.record import record

# Swin v2's continuous position-bias MLP: Linear(2, 512), ReLU, Linear(512, heads), as in
# the paper (Liu et al. 2022, section 3.3) and torchvision.
CPB_HIDDEN = 512
VERSIONS = (1, 2)


@record
class WindowAttention(Layer):
    """Self-attention within windows of `window_size` tokens of an [N, H, W, C] input,
    the windows first rolled by `shift_size` (Swin's shifted windows; the tokens a roll
    brings together from opposite borders are masked apart), H and W first padded with
    zero tokens up to multiples of the window, as torchvision does. Inside: the qkv and
    output projections (linear layers over C), per-head attention and a learned relative
    position bias. `version` 1 is Swin's (a bias table of (2wh-1)(2ww-1) x heads entries,
    q scaled by head_dim^-0.5); 2 is Swin v2's (cosine attention scaled by a learned
    logit per head, the bias made by a 2-512-heads MLP from a constant coordinate table)."""

    kind: ClassVar[str] = "window_attention"
    num_heads: int
    window_size: Pair
    shift_size: Pair = (0, 0)
    qkv_bias: bool = True
    proj_bias: bool = True
    version: int = 1

    def __post_init__(self) -> None:
        _positive("num_heads", self.num_heads)
        _pair("window_size", self.window_size)
        _pair("shift_size", self.shift_size, _non_negative)
        for shift, window in zip(self.shift_size, self.window_size, strict=True):
            if shift >= window:
                raise ValueError(f"shift_size {list(self.shift_size)} must be smaller than "
                                 f"window_size {list(self.window_size)}")
        if self.version not in VERSIONS:
            raise ValueError(f"version must be 1 (Swin) or 2 (Swin v2), got {self.version!r}")

    @property
    def positions(self) -> int:
        """Relative positions in a window: (2wh - 1) * (2ww - 1)."""
        return (2 * self.window_size[0] - 1) * (2 * self.window_size[1] - 1)


@record
class PatchMerge(Layer):
    """The four tokens of each 2x2 patch of [N, H, W, C] concatenated along C, in
    torchvision's order (0, 0), (1, 0), (0, 1), (1, 1); an odd H or W is first padded by
    one zero row or column at the bottom or right."""

    kind: ClassVar[str] = "patch_merge"
    traits: ClassVar[frozenset[str]] = frozenset({NO_PARAMS})


WINDOW_KINDS: tuple[type[Layer], ...] = (WindowAttention, PatchMerge)
