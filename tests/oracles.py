"""Torch as the oracle: counts and shapes from a module built from our graph.

Everything runs on the meta device (no weight memory, no arithmetic), so checking even
VGG-16 takes milliseconds. These are torch's numbers, not ours: parameters(),
buffers(), FlopCounterMode (which counts 2 per multiply-add of conv/linear/matmul and
nothing else) and the shapes a real forward pass produces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers.engine import resolve_input
from cnnstat.builder import build_module
from cnnstat.ir import Graph
from cnnstat.spec.loader import build_graph
from cnnstat.spec.yaml_tree import parse


@dataclass(frozen=True)
class TorchTruth:
    params: int
    buffers: int
    macs: int
    shapes: dict[str, tuple[int, ...]]  # module path -> output shape, from a meta forward
    # `macs` is what eval mode runs: training-only aux heads are excluded, as in torchvision


def torch_truth(graph: Graph, input_shape: tuple[int, ...] | None = None,
                batch: int = 1) -> TorchTruth:
    shape = resolve_input(graph, input_shape)
    with torch.device("meta"):
        module = build_module(graph, shape)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, sub in module.named_modules():
        if name and not list(sub.children()):
            def record(_m, _i, out, name=name):
                shapes[name] = tuple(out.shape)
            hooks.append(sub.register_forward_hook(record))
    x = torch.empty(batch, *shape, device="meta")
    with torch.no_grad():
        module.run(x, include_aux=True)  # shapes of every layer, aux heads included
    for hook in hooks:
        hook.remove()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)  # eval mode: what inference runs, as torchvision's _ops counts it
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return TorchTruth(
        params=sum(p.numel() for p in module.parameters()),
        buffers=sum(b.numel() for b in module.buffers()),
        macs=flops // 2,
        shapes=shapes,
    )


def stack_counts(modules: list[torch.nn.Module], shape: tuple[int, ...], batch: int = 2):
    """A stack of torch modules run in order on meta: torch's shapes (after each module),
    params, buffers and MACs (FlopCounterMode / 2)."""
    x = torch.empty(batch, *shape, device="meta")
    shapes, counter = [], FlopCounterMode(display=False)
    with counter, torch.no_grad():
        for m in modules:
            x = m.to("meta").eval()(x)
            shapes.append(tuple(x.shape))
    params = sum(p.numel() for m in modules for p in m.parameters())
    buffers = sum(b.numel() for m in modules for b in m.buffers())
    return shapes, params, buffers, counter.get_total_flops() // 2


# torchvision's segmentation models whose zoo specs keep the aux head their weights have:
# `_SimpleSegmentationModel.forward` runs `aux_classifier` whenever it exists, in eval too.
EVERY_OUTPUT_RUNS = frozenset(f"{h}_resnet{d}" for h in ("fcn", "deeplabv3") for d in (50, 101))


def eval_path(graph: Graph, every_output: bool = False) -> set[str]:
    """The nodes eval mode runs: every node when every output runs, else the ancestors of
    the main output. With several outputs (aux classifiers that only training runs) the
    main one is the deepest, i.e. the one with the most ancestors."""
    if every_output:
        return {node.name for node in graph}
    ancestors: dict[str, set[str]] = {}
    for node in graph:
        ancestors[node.name] = {node.name}.union(*(ancestors[i] for i in node.inputs))
    return max((ancestors[o] for o in graph.outputs), key=len)


def gradient_and_field_spans(graph: Graph, units=((0, 0), (1, 1), (2, 0))):
    """(measured by gradient, our field) of the output's `units`, each a (h, w) span
    clipped to the image: equal when our receptive-field rules are right."""
    from cnnstat import empirical_rf
    from cnnstat.analyzers.engine import infer_shapes
    from cnnstat.analyzers.rf import receptive_fields

    fields, _ = receptive_fields(graph, infer_shapes(graph, graph.meta.input))
    last = graph.outputs[0]
    measured = empirical_rf.unit_spans(graph, last, list(units))
    expected = [fields[last].region(u, clipped=True) for u in units]
    return measured, [tuple(e) if e else (None, None) for e in expected]


class FnModule(nn.Module):
    """A function as a module, so a test can trace one call (`x[:, 0]`, `x * 0.5`)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def spec_graph(text: str) -> Graph:
    """The graph of a spec written in a test."""
    return build_graph(parse(text, "t.yaml"), default_name="t", source="t.yaml")
