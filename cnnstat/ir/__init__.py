"""The intermediate representation: layer kinds and the validated graph."""

from cnnstat.ir.graph import Graph, ModelMeta, Node
from cnnstat.ir.layers import ALL_KINDS, Layer

__all__ = ["ALL_KINDS", "Graph", "Layer", "ModelMeta", "Node"]
