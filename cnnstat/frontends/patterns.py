"""Patterns of several traced calls that are one layer kind.

torchvision's ShuffleNetV2 writes its channel shuffle as
`x.view(n, g, c // g, h, w)`, `torch.transpose(x, 1, 2)`, `x.view(n, c, h, w)`: three nodes
(reshape, permute, reshape) that are exactly `channel_shuffle` with `groups=g`. One kind
reads as the paper does, exports as one line and has one receptive-field rule.
"""

from __future__ import annotations

from collections import Counter

from cnnstat.ir import Node
from cnnstat.ir import layers as L

Shape = tuple[int, ...]


def fuse_channel_shuffles(nodes: list[Node], outputs: list[str],
                          shapes: dict[str, Shape]) -> list[Node]:
    """`nodes` with each reshape-transpose-reshape shuffle replaced by one node, named as
    the last of the three (its consumers keep their inputs)."""
    uses = Counter(i for n in nodes for i in n.inputs) + Counter(outputs)
    by_name = {n.name: n for n in nodes}
    dropped: set[str] = set()
    fused: dict[str, Node] = {}
    for node in nodes:
        chain = _shuffle_chain(node, by_name, shapes, uses)
        if chain is not None:
            first, permute, groups = chain
            dropped |= {first.name, permute.name}
            fused[node.name] = Node(name=node.name, layer=L.ChannelShuffle(groups=groups),
                                    inputs=first.inputs, loc=node.loc)
    return [fused.get(n.name, n) for n in nodes if n.name not in dropped]


def _shuffle_chain(node: Node, by_name: dict[str, Node], shapes: dict[str, Shape],
                   uses: Counter) -> tuple[Node, Node, int] | None:
    if not isinstance(node.layer, L.Reshape) or len(node.inputs) != 1:
        return None
    permute = by_name[node.inputs[0]]
    if not isinstance(permute.layer, L.Permute) or permute.layer.dims != (0, 2, 1, 3, 4) \
            or uses[permute.name] != 1:
        return None
    first = by_name[permute.inputs[0]]
    if not isinstance(first.layer, L.Reshape) or uses[first.name] != 1 or not first.inputs:
        return None
    source, split, out = shapes[first.inputs[0]], shapes[first.name], shapes[node.name]
    if len(source) != 4 or out != source or len(split) != 5:
        return None
    n, c, h, w = source
    if split[0] != n or split[3:] != (h, w) or split[1] * split[2] != c:
        return None
    return first, permute, split[1]
