"""The smallest square input every layer accepts, from the shape rules alone.

Output sizes never shrink when the input grows (every rule is a non-decreasing function
of its input size), so "too small" is monotone in the input side and a doubling search
followed by bisection finds the exact minimum with O(log size) shape passes. Only
non-positive sizes count as too small: a branch mismatch at some size (e.g. odd sizes in
an encoder-decoder) is a different error and does not make the input "too small".
"""

from __future__ import annotations

from cnnstat.analyzers.engine import infer_shapes, resolve_input
from cnnstat.errors import InputTooSmallError, ShapeError, UsageError
from cnnstat.ir import Graph

MAX_SIDE = 1 << 16


def _too_small(graph: Graph, channels: int, side: int) -> bool:
    try:
        infer_shapes(graph, (channels, side, side))
    except InputTooSmallError:
        return True
    except ShapeError:
        return False
    return False


def min_input_side(graph: Graph) -> int:
    """The smallest S such that a CxSxS input gives every layer inference runs a positive
    output size (training-only aux heads excluded, as torchvision's eval-mode min_size)."""
    graph = graph.inference_graph()
    shape = resolve_input(graph, None)
    if len(shape) != 3:
        raise UsageError(f"model '{graph.meta.name}' does not take images [C, H, W]")
    channels = shape[0]
    high = 1
    while _too_small(graph, channels, high):
        high *= 2
        if high > MAX_SIDE:
            raise UsageError(f"model '{graph.meta.name}' needs an input over {MAX_SIDE} px")
    low = high // 2  # too small (or 0 when 1 already works)
    while high - low > 1:
        middle = (low + high) // 2
        if _too_small(graph, channels, middle):
            low = middle
        else:
            high = middle
    return high
