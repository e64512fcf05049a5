"""Timing runs: forward latency, the device's measured peaks, per-layer roofline, training.

Imports torch: only `cnnstat time` (and `compare --time`) import this package, lazily.
`time_model(graph, input_shape, batch, device)` is the one-call entry point; `run_timing`
is everything `cnnstat time` does (the sweep, peaks, per-layer, training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cnnstat.ir import Graph
from cnnstat.timing.measure import (
    Environment,
    OnProgress,
    Stats,
    TimingOptions,
    TimingResult,
    build,
    cpu_threads,
    cudnn_autotune,
    environment,
    free_memory,
    resolve_device,
    time_forward,
    time_model,
)
from cnnstat.timing.peak import Peak, measure_peak
from cnnstat.timing.per_layer import PerLayer, time_layers
from cnnstat.timing.train import time_train

TIMING_SCHEMA = "cnnstat.timing/1"

__all__ = ["TIMING_SCHEMA", "Environment", "Peak", "PerLayer", "Stats", "TimingOptions",
           "TimingReport", "TimingResult", "run_timing", "time_model"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TimingReport:
    """Everything one `cnnstat time` run measured."""

    env: Environment
    options: TimingOptions
    runs: tuple[TimingResult, ...]  # forward, one per requested batch
    train: tuple[TimingResult, ...] = ()
    peak: Peak | None = None
    per_layer: PerLayer | None = None

    @property
    def peak_flops_per_s(self) -> float | None:
        return None if self.peak is None else self.peak.matmul_flops_per_s

    def method(self) -> dict[str, Any]:
        options = self.options
        cuda = self.env.device.startswith("cuda")
        clock = "CUDA events" if cuda else "wall clock after device synchronise"
        return {"warmup": "until stable" if options.warmup is None else options.warmup,
                "min_time_s": None if options.iters is not None else options.min_time_s,
                "iters": options.iters, "clock": clock, "statistic": "median",
                "autocast": options.dtype != "fp32", "cudnn_benchmark": cuda,
                "flops": "cnnstat's 2 x MACs at the batch that ran; train: 3 x forward "
                         "(an estimate)"}

    def to_dict(self) -> dict[str, Any]:
        peak, spec = self.peak_flops_per_s, None if self.peak is None \
            else self.peak.spec_flops_per_s
        return {"schema": TIMING_SCHEMA, **self.env.to_dict(), "method": self.method(),
                "peak": None if self.peak is None else self.peak.to_dict(),
                "runs": [r.to_dict(peak, spec) for r in self.runs],
                "train": [r.to_dict(peak, spec) for r in self.train],
                "per_layer": None if self.per_layer is None else self.per_layer.to_dict()}


def run_timing(graph: Graph, input_shape: tuple[int, ...], batches: Sequence[int],
               device: str = "auto", options: TimingOptions | None = None, *,
               per_layer: bool = False, train: bool = False, peak: bool = True,
               on_progress: OnProgress | None = None) -> TimingReport:
    """Time the forward pass at every batch (out-of-memory halves it), then measure the
    device's peaks, then per-layer (at the largest batch that ran) and training steps."""
    from cnnstat.analyzers import analyze_graph

    options = options or TimingOptions()
    torch_device = resolve_device(device)
    with cpu_threads(options.threads), cudnn_autotune(torch_device):
        env = environment(torch_device, options)
        module = build(graph, input_shape, torch_device, options)
        runs = tuple(time_forward(module, graph, input_shape, b, torch_device, options,
                                  on_progress) for b in batches)
        measured = measure_peak(torch_device, options.dtype, on_progress=on_progress) \
            if peak else None
        layers = None
        if per_layer:
            report = analyze_graph(graph, input_shape, batch=max(r.batch for r in runs),
                                   dtype=options.dtype)
            layers = time_layers(module, report, torch_device, options, measured, on_progress)
        del module  # training builds its own; give the memory back first
        free_memory(torch_device)
        trains = tuple(time_train(graph, input_shape, b, torch_device, options, on_progress)
                       for b in batches) if train else ()
    return TimingReport(env=env, options=options, runs=runs, train=trains, peak=measured,
                        per_layer=layers)
