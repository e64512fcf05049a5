"""`cnnstat.frontends.shortcuts.batch_norm_output` gives what torch's forward gives, and
nothing where it might not (issue 23): the output's shape, dtype, strides and device equal
those of the module's own forward on meta tensors over the batch-norm classes, ranks,
dtypes and affine or not; every condition it needs, broken, makes it decline; a fx trace
counts the same with and without it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnstat.frontends import shortcuts
from cnnstat.frontends.shortcuts import batch_norm_output

GIVEN = [(nn.BatchNorm1d, (2, 6)), (nn.BatchNorm1d, (3, 6, 7)), (nn.BatchNorm2d, (1, 6, 5, 4)),
         (nn.BatchNorm2d, (2, 6, 1, 1)), (nn.BatchNorm3d, (1, 6, 2, 3, 3)),
         (nn.BatchNorm2d, (0, 6, 3, 3))]


def _module(cls=nn.BatchNorm2d, dtype=torch.float32, **kwargs) -> nn.Module:
    return cls(6, device="meta", dtype=dtype, **kwargs).eval()


def _same(ours: torch.Tensor, theirs: torch.Tensor) -> bool:
    return (ours.shape, ours.dtype, ours.stride(), ours.device) == \
        (theirs.shape, theirs.dtype, theirs.stride(), theirs.device)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16,
                                   torch.bfloat16])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize(("cls", "shape"), GIVEN)
def test_output_is_the_forward_s(cls, shape, affine, dtype):
    module = _module(cls, dtype, affine=affine)
    x = torch.empty(shape, device="meta", dtype=dtype)
    ours = batch_norm_output(module, (x,), {})
    with torch.no_grad():
        theirs = module(x)
    assert ours is not None and _same(ours, theirs)


def _declines(module: nn.Module, x: torch.Tensor, kwargs: dict | None = None) -> bool:
    return batch_norm_output(module, (x,), kwargs or {}) is None


def test_declines_where_the_forward_might_differ():
    x = torch.empty(1, 6, 4, 4, device="meta")
    assert _declines(_module().train(), x)  # batch statistics
    assert _declines(_module(track_running_stats=False), x)
    assert _declines(_module(), torch.empty(1, 5, 4, 4, device="meta"))  # channels
    assert _declines(_module(), torch.empty(6, 4, 4, device="meta"))  # rank
    assert _declines(_module(nn.BatchNorm1d), x)
    assert _declines(_module(), x.to(memory_format=torch.channels_last))
    assert _declines(_module(), torch.empty(1, 6, 4, 4, device="meta").as_strided(
        (1, 6, 4, 4), (999, 16, 4, 1)))  # a row-major layout but for a size-1 stride
    assert _declines(_module(), x.to(torch.float64))  # dtype of the statistics
    assert _declines(_module(), torch.empty(1, 6, 4, 4, dtype=torch.int64, device="meta"))
    assert _declines(_module(), torch.empty(1, 6, 4, 4))  # a real tensor
    assert _declines(_module(), x, {"extra": 1})
    assert _declines(type("Mine", (nn.BatchNorm2d,), {})(6, device="meta").eval(), x)
    assert _declines(nn.SyncBatchNorm(6, device="meta").eval(), x)
    assert _declines(nn.InstanceNorm2d(6, device="meta").eval(), x)


def test_declines_where_a_hook_or_another_forward_would_run():
    x = torch.empty(1, 6, 4, 4, device="meta")
    hooked = _module()
    hooked.register_forward_hook(lambda m, i, o: o)
    assert _declines(hooked, x)
    own = _module()
    own.forward = lambda t: t
    assert _declines(own, x)
    handle = nn.modules.module.register_module_forward_pre_hook(lambda m, i: None)
    try:
        assert _declines(_module(), x)
    finally:
        handle.remove()
    assert not _declines(_module(), x)


def test_a_trace_counts_the_same_without_it(monkeypatch):
    from cnnstat.analyzers import analyze_graph
    from cnnstat.frontends import graph_from_module

    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(1),
                        nn.Linear(8 * 6 * 6, 10), nn.BatchNorm1d(10))

    def rows():
        report = analyze_graph(graph_from_module(net, (3, 8, 8)).graph)
        return [(r.name, r.kind, r.output_shape, r.macs, r.params) for r in report.layers]

    fast = rows()
    monkeypatch.setattr(shortcuts, "_BATCH_NORMS", {})
    from cnnstat.frontends import torch_fx

    assert torch_fx.batch_norm_output is shortcuts.batch_norm_output
    assert rows() == fast
    assert [kind for _, kind, *_ in fast].count("batch_norm2d") == 1
