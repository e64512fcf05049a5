"""Receptive-field rules of attention and the 1-D / 3-D kinds (docs/receptive-field.md).

Fields are computed per axis of an image [N, C, H, W]. Attention mixes every token (each
query reads every key), so its units see the whole input: global. A 1-D or 3-D window
has no H x W field here: in a graph whose input is an image it can only follow a layer
that already made the field global (a flatten, a reshape), where the engine stops before
asking this rule; any other case is reported as unknown, never guessed.
"""

from __future__ import annotations

from cnnstat.analyzers.rf import RF, RfUnsupported, global_field
from cnnstat.ir import layers as L


@RF.register(*L.ATTENTION)
def _attention(node, fields, ins, out, notes):
    """Every query position reads every key position: global."""
    return global_field(fields[0].image)


@RF.register(*L.ND_WINDOWS, *L.ND_NORMS)
def _nd(node, fields, ins, out, notes):
    raise RfUnsupported(f"{node.kind} has no field on the H x W axes of an image input")
