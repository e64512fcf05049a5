"""Torch modules for the window kinds of `cnnstat/ir/window_layers.py`, registered into
the builder's registry (imported by the package).

`WindowAttention` computes what torchvision's ShiftedWindowAttention (version 1) and
ShiftedWindowAttentionV2 (version 2) compute, with the same parameter and buffer names, so
a state dict moves between them (the tests compare outputs that way); torchvision is not
imported: the builder needs torch only. The torch frontend converts both modules, kept
whole, back to `window_attention`, and `PatchMerge` back to `patch_merge`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnstat.analyzers.shapes import Shape
from cnnstat.builder.torch_module import BUILDERS
from cnnstat.ir import layers as L
from cnnstat.ir.window_layers import CPB_HIDDEN

MASKED = -100.0  # what torchvision adds to the scores of tokens a roll brought together


def position_index(wh: int, ww: int) -> torch.Tensor:
    """For tokens a, b of a window (row-major), the row of the bias table for their offset:
    (ya - yb + wh - 1) * (2ww - 1) + (xa - xb + ww - 1), flattened to T*T."""
    ys, xs = (g.flatten() for g in torch.meshgrid(torch.arange(wh), torch.arange(ww),
                                                  indexing="ij"))
    dy, dx = ys[:, None] - ys[None, :] + wh - 1, xs[:, None] - xs[None, :] + ww - 1
    return (dy * (2 * ww - 1) + dx).flatten()


def coords_table(wh: int, ww: int) -> torch.Tensor:
    """Swin v2's log-spaced relative coordinates [1, 2wh-1, 2ww-1, 2]: each offset over
    (window - 1), times 8, then sign(x) * log2(|x| + 1) / 3."""
    axes = [torch.arange(-(n - 1), n, dtype=torch.float32) / max(n - 1, 1) for n in (wh, ww)]
    table = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).unsqueeze(0) * 8
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / 3.0


def _regions(size: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """Along one rolled axis: 0 before the last window, 1 in it before the wrapped
    tokens, 2 for the `shift` tokens the roll brought from the other border."""
    label = torch.zeros(size, dtype=torch.long, device=device)
    if shift:
        label[size - window:] = 1
        label[size - shift:] = 2
    return label


class WindowAttention(nn.Module):
    def __init__(self, layer: L.WindowAttention, dim: int):
        super().__init__()
        wh, ww = layer.window_size
        self.window_size, self.shift_size = list(layer.window_size), list(layer.shift_size)
        self.num_heads, self.version = layer.num_heads, layer.version
        self.qkv = nn.Linear(dim, 3 * dim, bias=layer.qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=layer.proj_bias)
        if layer.version == 1:
            self.relative_position_bias_table = nn.Parameter(
                torch.randn(layer.positions, layer.num_heads) * 0.02)
        else:
            self.logit_scale = nn.Parameter(torch.full((layer.num_heads, 1, 1), math.log(10)))
            self.cpb_mlp = nn.Sequential(nn.Linear(2, CPB_HIDDEN), nn.ReLU(),
                                         nn.Linear(CPB_HIDDEN, layer.num_heads, bias=False))
            self.register_buffer("relative_coords_table", coords_table(wh, ww))
        self.register_buffer("relative_position_index", position_index(wh, ww))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad to whole windows, roll, attend per window, roll back, cut the padding."""
        n, h, w, c = x.shape
        (wh, ww), heads = self.window_size, self.num_heads
        x = F.pad(x, (0, 0, 0, -w % ww, 0, -h % wh))
        hp, wp = x.shape[1], x.shape[2]
        shift = [0 if window >= size else s
                 for s, window, size in zip(self.shift_size, (wh, ww), (hp, wp), strict=True)]
        if any(shift):
            x = torch.roll(x, (-shift[0], -shift[1]), (1, 2))
        grid = (n, hp // wh, wh, wp // ww, ww, c)
        windows = x.view(grid).permute(0, 1, 3, 2, 4, 5).reshape(-1, wh * ww, c)
        out = self._attend(windows, heads, self._mask(hp, wp, shift, x))
        out = out.view(n, hp // wh, wp // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
        out = out.reshape(n, hp, wp, c)
        if any(shift):
            out = torch.roll(out, (shift[0], shift[1]), (1, 2))
        return out[:, :h, :w].contiguous()

    def _attend(self, windows: torch.Tensor, heads: int, mask: torch.Tensor | None
                ) -> torch.Tensor:
        count, t, c = windows.shape
        bias = self.qkv.bias
        if self.version == 2 and bias is not None:  # v2's keys take no bias
            bias = torch.cat([bias[:c], torch.zeros_like(bias[c:2 * c]), bias[2 * c:]])
        qkv = F.linear(windows, self.qkv.weight, bias)
        q, k, v = qkv.reshape(count, t, 3, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        if self.version == 1:
            scores = (q * (c // heads) ** -0.5) @ k.transpose(-2, -1)
        else:  # cosine attention, a learned temperature per head (at most 100)
            scores = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
            scores = scores * torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        scores = scores + self._position_bias(t, heads)
        if mask is not None:
            per_image = scores.view(-1, mask.shape[0], heads, t, t) + mask[None, :, None]
            scores = per_image.view(count, heads, t, t)
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(count, t, c)
        return self.proj(out)

    def _position_bias(self, t: int, heads: int) -> torch.Tensor:
        if self.version == 1:
            table = self.relative_position_bias_table
        else:
            table = self.cpb_mlp(self.relative_coords_table).view(-1, heads)
        bias = table[self.relative_position_index].view(t, t, heads).permute(2, 0, 1)
        bias = bias.unsqueeze(0)
        return bias if self.version == 1 else 16 * torch.sigmoid(bias)

    def _mask(self, hp: int, wp: int, shift: list[int], like: torch.Tensor
              ) -> torch.Tensor | None:
        """[windows, T, T]: -100 between tokens of different regions of a window."""
        if not any(shift):
            return None
        wh, ww = self.window_size
        rows = _regions(hp, wh, shift[0], like.device)
        cols = _regions(wp, ww, shift[1], like.device)
        label = (rows[:, None] * 3 + cols[None, :]).view(hp // wh, wh, wp // ww, ww)
        label = label.permute(0, 2, 1, 3).reshape(-1, wh * ww)
        apart = label[:, :, None] != label[:, None, :]
        zeros = torch.zeros(apart.shape, dtype=like.dtype, device=like.device)
        return zeros.masked_fill(apart, MASKED)


class PatchMerge(nn.Module):
    """Pad H, W to even, then the four tokens of each 2x2 patch along C."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1], x.shape[2]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        return torch.cat([x[:, r::2, c::2] for c in (0, 1) for r in (0, 1)], dim=-1)


@BUILDERS.register(L.WindowAttention)
def _window_attention(layer: L.WindowAttention, ins: tuple[Shape, ...]) -> nn.Module:
    return WindowAttention(layer, ins[0][-1])


@BUILDERS.register(L.PatchMerge)
def _patch_merge(layer: L.PatchMerge, ins: tuple[Shape, ...]) -> nn.Module:
    return PatchMerge()
