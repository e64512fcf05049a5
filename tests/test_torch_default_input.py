"""The default input of a module reference comes from the module that was built.

`torchvision:vit_h_14` is built with weights=None, so its image_size is 224 (torchvision's
constructor default); its DEFAULT weights (SWAG E2E) were trained at 518, and a 518 input
fails in the model built ("Wrong image height"). Oracles: torch's `parameters()` and
FlopCounterMode (MACs = flops / 2) on the meta device, at the model's own image_size.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.oracle


def test_vit_h_14_defaults_to_the_size_it_was_built_for():
    tvm = pytest.importorskip("torchvision.models")
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from cnnstat.analyzers import analyze_graph
    from cnnstat.frontends import resolve_reference

    with torch.device("meta"):
        module = tvm.vit_h_14(weights=None).eval()
    assert module.image_size == 224  # what was built, not the weights' 518
    resolved = resolve_reference("torchvision:vit_h_14")
    assert tuple(resolved.graph.meta.input) == (3, 224, 224)
    report = analyze_graph(resolved.graph)
    assert report.input_shape == (1, 3, 224, 224)
    assert report.totals.params == sum(p.numel() for p in module.parameters())
    with FlopCounterMode(display=False) as counter:
        module(torch.empty(1, 3, 224, 224, device="meta"))
    assert report.totals.macs == counter.get_total_flops() // 2


def test_inception_v3_keeps_its_weights_crop():
    """No image_size on the module: the crop of its weights (299) still applies."""
    pytest.importorskip("torchvision.models")
    from cnnstat.frontends import resolve_reference

    resolved = resolve_reference("torchvision:inception_v3")
    assert tuple(resolved.graph.meta.input) == (3, 299, 299)
