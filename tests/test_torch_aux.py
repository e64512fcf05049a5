"""A head the eval forward never calls (Inception v3's AuxLogits, GoogLeNet's aux1/aux2)
is in the params, as `sum(p.numel() for p in model.parameters())` has it, and out of the
inference cost, as the zoo's spec marks it (`aux_outputs`). Oracles: torch's
`parameters()` and FlopCounterMode / 2 of the eval forward."""

from __future__ import annotations

from collections import namedtuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.analyzers.engine import analyze_graph
from cnnstat.frontends import graph_from_module

Outputs = namedtuple("Outputs", ["logits", "aux"])


class WithAux(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.aux = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 4, 1),
                                 nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 5))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))

    def forward(self, x):
        x = self.stem(x)
        aux = self.aux(x) if self.training else None
        logits = self.head(x)
        return Outputs(logits, aux) if self.training else logits


def test_a_training_only_head_is_in_params_not_in_macs():
    module = WithAux()
    traced = graph_from_module(module, (3, 16, 16))
    report = analyze_graph(traced.graph)
    assert module.training  # left as it was built
    assert traced.graph.aux_outputs == ("aux.4",)
    assert report.totals.params == sum(p.numel() for p in module.parameters())
    aux_params = sum(p.numel() for p in module.aux.parameters())
    assert report.totals.train_only_params == aux_params
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module.eval()(torch.randn(1, 3, 16, 16))
    assert 2 * report.totals.macs == counter.get_total_flops()
    assert any("training-mode forward also returns aux.4" in d for d in traced.diagnostics)
