"""Receptive-field rules of attention and the 1-D / 3-D kinds (docs/receptive-field.md).

A field has one axis per spatial axis of the input (`ReceptiveField.axes`): L for a
sequence [N, C, L], D, H and W for a volume or clip [N, C, D, H, W]. The 1-D and 3-D
windows are the 2-D rules (Araujo's recurrences, torch's adaptive windows) on each of
their axes; a window whose rank is not the field's (after a reshape of the spatial axes,
which has already made the field global) is reported, never guessed. Attention mixes
every token (each query reads every key), so its units see the whole input: global.
"""

from __future__ import annotations

from cnnstat.analyzers import rf as R
from cnnstat.analyzers.windows_nd import padding_of
from cnnstat.ir import layers as L


@R.RF.register(*L.ATTENTION)
def _attention(node, fields, ins, out, notes):
    """Every query position reads every key position: global."""
    return R.global_field(fields[0].image)


@R.RF.register(L.Conv1d, L.Conv3d)
def _conv(node, fields, ins, out, notes):
    """Per axis, as Conv2d: k_eff = d(k-1)+1; 'same' pads d(k-1)//2 before the first unit."""
    layer = node.layer
    return R._windows(fields[0], R.window_map, layer.kernel_size, layer.stride,
                      padding_of(layer), layer.dilation)


@R.RF.register(L.MaxPool1d, L.MaxPool3d, L.AvgPool1d, L.AvgPool3d)
def _pool(node, fields, ins, out, notes):
    """As conv (ceil_mode only adds units at the far end, as for the 2-D pools)."""
    layer = node.layer
    return R._windows(fields[0], R.window_map, layer.kernel_size, layer.stride,
                      layer.padding, getattr(layer, "dilation", (1,) * layer.rank))


# Adaptive pooling: global along an axis pooled to one unit, else torch's windows; batch
# norm at inference is element-wise. The 2-D rules hold on any number of axes.
R.RF.register(L.AdaptiveAvgPool1d, L.AdaptiveAvgPool3d, L.AdaptiveMaxPool1d,
              L.AdaptiveMaxPool3d)(R._adaptive)
R.RF.register(*L.ND_NORMS)(R._same)
