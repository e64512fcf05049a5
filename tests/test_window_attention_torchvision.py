"""torchvision's Swin against cnnstat's window kinds (oracle stage): the builder's
WindowAttention computes what torchvision's ShiftedWindowAttention and V2 compute (one
state dict, the same output, padding and shift included), each Swin model traces to no
opaque node with params == parameters() == `num_params` and MACs == the published `_ops`
(torchvision's "GFLOPS" are GMACs), and `cnnstat rf` has a field on every layer."""

from __future__ import annotations

import pytest
import torch

from cnnstat.analyzers import analyze_graph
from cnnstat.builder.window_modules import WindowAttention
from cnnstat.frontends import graph_from_module
from cnnstat.ir import layers as L

pytestmark = pytest.mark.oracle


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(("h", "w", "shift"), [(8, 8, [2, 2]), (10, 9, [2, 1]), (3, 9, [2, 2])])
def test_builder_module_computes_torchvisions(version, h, w, shift) -> None:
    swin = pytest.importorskip("torchvision.models.swin_transformer")
    cls = swin.ShiftedWindowAttention if version == 1 else swin.ShiftedWindowAttentionV2
    theirs = cls(8, [4, 4], shift, 2).eval()
    layer = L.WindowAttention(num_heads=2, window_size=(4, 4), shift_size=tuple(shift),
                              version=version)
    ours = WindowAttention(layer, 8).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, h, w, 8)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("name", ["swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s",
                                  "swin_v2_b"])
def test_swin_converts_and_matches_published_numbers(name) -> None:
    models = pytest.importorskip("torchvision.models")
    from cnnstat.analyzers.engine import infer_shapes
    from cnnstat.analyzers.rf import receptive_fields

    weights = models.get_model_weights(name).DEFAULT
    model = models.get_model(name)  # weights=None: metadata only, nothing downloaded
    side = 256 if "v2" in name else 224  # the input the weights' transforms give
    graph = graph_from_module(model, (3, side, side)).graph
    kinds = [node.kind for node in graph.nodes]
    assert "opaque" not in kinds
    assert kinds.count("window_attention") == sum(model.features[i].__len__()
                                                  for i in (1, 3, 5, 7))
    assert kinds.count("patch_merge") == 3
    report = analyze_graph(graph)
    assert report.totals.params == sum(p.numel() for p in model.parameters()) \
        == weights.meta["num_params"]
    assert round(report.totals.macs / 1e9, 3) == weights.meta["_ops"]
    fields, _ = receptive_fields(graph, infer_shapes(graph, graph.meta.input))
    assert [n for n, f in fields.items() if f is None] == []
