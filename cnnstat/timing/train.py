"""`--train`: one training step (forward + backward + optimizer step), timed, with peak memory.

The step: zero the gradients, forward under autocast in training mode (aux heads run, as
in torchvision), a surrogate loss (the mean of every output: its cost is negligible beside
the network's, and it needs no labels), backward, SGD with momentum 0.9. fp16 on CUDA
uses a GradScaler, as real fp16 training must.

FLOPs of a step are estimated as 3 x the forward FLOPs (backward costs about twice the
forward: one product for the input gradient and one for the weight gradient), aux heads
included; labelled as an estimate wherever shown.
"""

from __future__ import annotations

import contextlib
import resource
import sys
from collections.abc import Callable

import torch

from cnnstat.errors import UsageError
from cnnstat.ir import Graph
from cnnstat.timing.measure import (
    OnProgress,
    TimingOptions,
    TimingResult,
    autocast,
    build,
    environment,
    make_clock,
    make_input,
    sample,
    warm_up,
    with_oom_backoff,
)

TRAIN_FLOPS_FACTOR = 3
LEARNING_RATE = 1e-3


def train_flops(graph: Graph, input_shape: tuple[int, ...], batch: int) -> int:
    """3 x (2 x MACs) of what training runs: the inference graph plus aux heads."""
    from cnnstat.analyzers import analyze_graph

    totals = analyze_graph(graph, input_shape, batch=batch).totals
    return TRAIN_FLOPS_FACTOR * 2 * (totals.macs + totals.train_only_macs)


def _surrogate_loss(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    outs = out if isinstance(out, tuple) else (out,)
    return sum(o.float().mean() for o in outs)  # type: ignore[return-value]


def make_step(module: torch.nn.Module, x: torch.Tensor, device: torch.device,
              dtype: str) -> Callable[[], None]:
    optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type) if dtype == "fp16" and device.type == "cuda" \
        else None

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            loss = _surrogate_loss(module(x))
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    return step


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> tuple[int | None, str | None]:
    """(bytes, what the number is): exact tensor memory on CUDA, coarser elsewhere."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "cuda max_memory_allocated"
    if device.type == "mps":
        return torch.mps.driver_allocated_memory(), "mps driver_allocated_memory"
    with contextlib.suppress(AttributeError, OSError):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # NB: ru_maxrss is KiB on Linux and bytes on macOS; the whole process's high mark.
        return (rss if sys.platform == "darwin" else rss * 1024), "process peak RSS"
    return None, None


def _train_once(graph: Graph, input_shape: tuple[int, ...], batch: int, device: torch.device,
                options: TimingOptions, on_progress: OnProgress | None) -> TimingResult:
    module = build(graph, input_shape, device, options, train=True)
    x = make_input(batch, input_shape, device, options)
    step = make_step(module, x, device, options.dtype)
    clock = make_clock(device)
    run_once = lambda: clock(step)  # noqa: E731
    warmup_iters, stable = warm_up(run_once, options.warmup, on_progress,
                                   f"train, batch {batch}: warm-up")
    _reset_peak(device)
    stats = sample(run_once, options.iters, options.min_time_s, on_progress,
                   f"train, batch {batch}: timing")
    memory_bytes, memory_kind = peak_memory(device)
    notes = () if stable is not False else (
        f"step time still moving after {warmup_iters} warm-up iterations; timed anyway",)
    return TimingResult(env=environment(device, options), mode="train",
                        batch_requested=batch, batch=batch, input_shape=tuple(x.shape),
                        flops=train_flops(graph, input_shape, batch), stats=stats,
                        warmup_iters=warmup_iters, warmup_stable=stable, notes=notes,
                        peak_memory_bytes=memory_bytes, peak_memory_kind=memory_kind)


def time_train(graph: Graph, input_shape: tuple[int, ...], batch: int, device: torch.device,
               options: TimingOptions, on_progress: OnProgress | None = None) -> TimingResult:
    """A timed training step at `batch`, halving the batch on out-of-memory."""
    from dataclasses import replace

    try:
        result, _, notes = with_oom_backoff(
            batch, lambda b: _train_once(graph, input_shape, b, device, options, on_progress),
            device)
    except ValueError as e:  # BatchNorm with one value per channel cannot train
        raise UsageError(f"--train at batch {batch}: {e}") from None
    return replace(result, batch_requested=batch, notes=(*notes, *result.notes))
