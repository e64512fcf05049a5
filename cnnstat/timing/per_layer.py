"""`--per-layer`: time per layer beside its FLOPs and bytes moved, and a roofline verdict.

Timing: a forward pre-hook and a forward hook on every layer's module (module paths are
our node names). On CUDA each hook records an event (no per-layer stall; one synchronise
per forward); on CPU the hooks read a wall clock (CPU kernels are synchronous); on MPS they
synchronise first. The median over many forwards is kept per layer.

Bytes moved by a layer = (input activations + output activations + weights and buffers)
x the dtype's bytes: the least traffic the layer can cause. Views that copy nothing
(flatten, reshape, identity, dropout in eval) move 0. Arithmetic intensity = FLOPs (2 x MACs)
/ bytes; a layer whose intensity reaches the ridge point (measured peak FLOP/s / measured
bandwidth) is compute-bound, else memory-bound.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch

from cnnstat.analyzers.results import DTYPE_BYTES, LayerStats, ModelReport
from cnnstat.timing.measure import (
    OnProgress,
    TimingOptions,
    autocast,
    grad_mode,
    make_clock,
    make_input,
    sample,
    synchronize,
    warm_up,
)
from cnnstat.timing.peak import Peak

VIEW_KINDS = frozenset({"flatten", "reshape", "identity", "dropout"})
TOP = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerTiming:
    name: str
    kind: str
    median_ms: float
    flops: int | None  # ours, 2 x MACs; None where the kind is unsupported
    bytes_moved: int
    time_share: float  # of the sum of layer medians
    flops_share: float | None
    bound: str | None  # "compute" | "memory" | "view" | None without measured peaks
    roofline_fraction: float | None  # achieved / the roofline's ceiling at this intensity

    @property
    def intensity(self) -> float | None:
        if self.flops is None or self.bytes_moved == 0:
            return None
        return self.flops / self.bytes_moved

    @property
    def achieved_flops_per_s(self) -> float | None:
        return None if self.flops is None else self.flops / (self.median_ms / 1e3)

    @property
    def achieved_bytes_per_s(self) -> float:
        return self.bytes_moved / (self.median_ms / 1e3)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "median_ms": self.median_ms,
                "time_share": self.time_share, "flops": self.flops,
                "flops_share": self.flops_share, "bytes_moved": self.bytes_moved,
                "intensity_flops_per_byte": self.intensity,
                "achieved_flops_per_s": self.achieved_flops_per_s,
                "achieved_bytes_per_s": self.achieved_bytes_per_s, "bound": self.bound,
                "roofline_fraction": self.roofline_fraction}


@dataclass(frozen=True, slots=True, kw_only=True)
class PerLayer:
    batch: int
    dtype: str
    iters: int
    hooked_forward_ms: float  # median whole forward with the hooks in place
    layers: tuple[LayerTiming, ...]
    method: str
    notes: tuple[str, ...] = ()

    @property
    def layers_total_ms(self) -> float:
        return sum(layer.median_ms for layer in self.layers)

    def top_by_time(self, n: int = TOP) -> tuple[LayerTiming, ...]:
        return tuple(sorted(self.layers, key=lambda r: -r.median_ms)[:n])

    def top_by_flops(self, n: int = TOP) -> tuple[LayerTiming, ...]:
        ranked = sorted((r for r in self.layers if r.flops), key=lambda r: -(r.flops or 0))
        return tuple(ranked[:n])

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "dtype": self.dtype, "iters": self.iters,
                "method": self.method, "hooked_forward_ms": self.hooked_forward_ms,
                "layers_total_ms": self.layers_total_ms,
                "top_by_time": [r.name for r in self.top_by_time()],
                "top_by_flops": [r.name for r in self.top_by_flops()],
                "layers": [r.to_dict() for r in self.layers], "notes": list(self.notes)}


# ---- bytes and the roofline (pure functions of our report) -----------------------------

def bytes_moved(row: LayerStats, report: ModelReport,
                shapes: dict[str, tuple[int, ...]] | None = None) -> int:
    """(inputs + output + params + buffers) elements x bytes per element at the dtype."""
    if row.kind in VIEW_KINDS:
        return 0
    shapes = shapes if shapes is not None else {r.name: r.output_shape for r in report.layers}
    in_elements = sum(math.prod(shapes.get(i, report.input_shape)) for i in row.inputs)
    weights = (row.params or 0) + (row.buffers or 0)
    return (in_elements + math.prod(row.output_shape) + weights) * DTYPE_BYTES[report.dtype]


def classify(flops: int | None, moved_bytes: int, peak: Peak | None) -> str | None:
    if moved_bytes == 0:
        return "view"
    if peak is None or flops is None:
        return None
    return "compute" if flops / moved_bytes >= peak.ridge_flops_per_byte else "memory"


def roofline_fraction(flops: int | None, moved_bytes: int, median_ms: float, bound: str | None,
                      peak: Peak | None) -> float | None:
    """Compute-bound: achieved FLOP/s / peak FLOP/s; memory-bound: achieved bytes/s /
    bandwidth (the same as FLOP/s over intensity x bandwidth when FLOPs > 0)."""
    if peak is None or median_ms <= 0 or bound not in ("compute", "memory"):
        return None
    if bound == "compute":
        return (flops or 0) / (median_ms / 1e3) / peak.matmul_flops_per_s
    return moved_bytes / (median_ms / 1e3) / peak.bandwidth_bytes_per_s


def layer_rows(report: ModelReport, medians_ms: dict[str, float],
               peak: Peak | None) -> tuple[LayerTiming, ...]:
    """Our per-layer FLOPs and bytes beside the measured medians (layers that did not run,
    like training-only aux heads, are left out)."""
    ran = [r for r in report.layers if r.name in medians_ms]
    total_ms = sum(medians_ms[r.name] for r in ran) or 1.0
    total_flops = sum(r.flops or 0 for r in ran)
    shapes = {r.name: r.output_shape for r in report.layers}
    rows = []
    for r in ran:
        moved, ms = bytes_moved(r, report, shapes), medians_ms[r.name]
        bound = classify(r.flops, moved, peak)
        rows.append(LayerTiming(
            name=r.name, kind=r.kind, median_ms=ms, flops=r.flops, bytes_moved=moved,
            time_share=ms / total_ms,
            flops_share=None if r.flops is None or not total_flops else r.flops / total_flops,
            bound=bound, roofline_fraction=roofline_fraction(r.flops, moved, ms, bound, peak)))
    return tuple(rows)


# ---- the hooks -------------------------------------------------------------------------

class _Recorder:
    """Per-layer latencies from pre/post forward hooks."""

    def __init__(self, device: torch.device):
        self.device = device
        self.samples_ms: dict[str, list[float]] = defaultdict(list)
        self._open: dict[str, Any] = {}
        self._pending: list[tuple[str, Any, Any]] = []
        self._stream = torch.cuda.current_stream(device) if device.type == "cuda" else None

    def before(self, name: str) -> None:
        if self.device.type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record(self._stream)
            self._open[name] = event
        else:
            synchronize(self.device)
            self._open[name] = time.perf_counter_ns()

    def after(self, name: str) -> None:
        start = self._open.pop(name)
        if self.device.type == "cuda":
            end = torch.cuda.Event(enable_timing=True)
            end.record(self._stream)
            self._pending.append((name, start, end))
        else:
            synchronize(self.device)
            self.samples_ms[name].append((time.perf_counter_ns() - start) / 1e6)

    def flush(self) -> None:
        """After a forward: read the CUDA events (one synchronise for all layers)."""
        if self._pending:
            self._pending[-1][2].synchronize()
        for name, start, end in self._pending:
            self.samples_ms[name].append(start.elapsed_time(end))
        self._pending.clear()

    def attach(self, module: torch.nn.Module, names: list[str]) -> list[Any]:
        handles = []
        for name in names:
            sub = module.get_submodule(name)
            handles.append(sub.register_forward_pre_hook(
                lambda _m, _a, name=name: self.before(name)))
            handles.append(sub.register_forward_hook(
                lambda _m, _a, _o, name=name: self.after(name)))
        return handles


def time_layers(module: torch.nn.Module, report: ModelReport, device: torch.device,
                options: TimingOptions, peak: Peak | None,
                on_progress: OnProgress | None = None) -> PerLayer:
    """Per-layer medians for `report`'s batch and dtype (the module is run eager: hooks
    cannot see inside a compiled graph)."""
    eager = getattr(module, "_orig_mod", module)
    batch, shape = report.input_shape[0], report.input_shape[1:]
    x = make_input(batch, tuple(shape), device, options)
    recorder = _Recorder(device)
    handles = recorder.attach(eager, [r.name for r in report.layers if not r.train_only])
    clock = make_clock(device)

    def run_once() -> float:
        ms = clock(lambda: eager(x))
        recorder.flush()
        return ms

    try:
        with grad_mode(options), autocast(device, options.dtype):
            warm_up(run_once, 2)
            recorder.samples_ms.clear()
            stats = sample(run_once, options.iters, options.min_time_s, on_progress,
                           f"per-layer, batch {batch}")
    finally:
        for handle in handles:
            handle.remove()
    medians = {name: statistics.median(values) for name, values in recorder.samples_ms.items()}
    method = ("CUDA events in forward hooks" if device.type == "cuda"
              else "wall clock in forward hooks" + (" after synchronise" if
                                                    device.type == "mps" else ""))
    notes = ("per-layer times are eager: the compiled graph fuses layers",) \
        if options.compile else ()
    return PerLayer(batch=batch, dtype=options.dtype, iters=len(stats.samples_ms),
                    hooked_forward_ms=stats.median_ms, layers=layer_rows(report, medians, peak),
                    method=method, notes=notes)
