"""`cnnstat time MODEL`: forward latency (and a training step) on CPU or GPU, with MFU.

Nothing here imports torch at import time (`cnnstat params` must stay fast); the timing
package is imported when the command runs. Results go to stdout at the very end, so
Ctrl-C (exit 130 at the app's boundary) leaves no partial output.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start
# (see check.py).

import contextlib
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

import typer

from cnnstat.commands.app import app, note
from cnnstat.commands.options import (
    Format,
    FormatOpt,
    InputOpt,
    JsonOpt,
    KwargsOpt,
    ModelArg,
    NoColorOpt,
)
from cnnstat.commands.torch_cmds import resolve_model, traced_input, with_diagnostics
from cnnstat.errors import UsageError


class TimeDtype(StrEnum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


DeviceOpt = Annotated[str, typer.Option(
    "--device", help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps. A device "
    "that is not there exits 4.")]
BatchesOpt = Annotated[str, typer.Option(
    "--batch", "-b", help="Batch size, or several comma-separated for a sweep: 1,8,64. "
    "Out of memory halves a batch (and says so).")]
TimeDtypeOpt = Annotated[TimeDtype, typer.Option(
    "--dtype", help="fp32, or fp16/bf16 under autocast (weights stay fp32).")]
ChannelsLastOpt = Annotated[bool, typer.Option(
    "--channels-last", help="NHWC memory format for the weights and the input.")]
CompileOpt = Annotated[bool, typer.Option(
    "--compile", help="torch.compile the module first (compiling happens in the warm-up).")]
WarmupOpt = Annotated[int | None, typer.Option(
    "--warmup", min=0, help="Warm-up iterations [default: until the latency is stable].",
    show_default=False)]
MinTimeOpt = Annotated[float, typer.Option(
    "--min-time", min=0.001, help="Seconds of timed iterations per batch (at least 5 "
    "iterations); ignored with --iters.")]
ItersOpt = Annotated[int | None, typer.Option(
    "--iters", min=1, help="Exactly this many timed iterations [default: --min-time].",
    show_default=False)]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", min=1, help="torch intra-op threads on CPU [default: torch's].",
    show_default=False)]
PerLayerOpt = Annotated[bool, typer.Option(
    "--per-layer", help="Time every layer; FLOPs, bytes moved, arithmetic intensity and a "
    "compute/memory-bound verdict against the measured peaks.")]
TrainOpt = Annotated[bool, typer.Option(
    "--train", help="Also time a training step (forward + backward + SGD step) with peak "
    "memory.")]
NoPeakOpt = Annotated[bool, typer.Option(
    "--no-peak", help="Skip the peak FLOP/s and bandwidth calibration (~1 s; MFU and the "
    "roofline verdict become n/a).")]


def parse_batches(text: str) -> list[int]:
    """'1,8,64' -> [1, 8, 64]; every entry a positive integer."""
    batches = []
    for part in text.split(","):
        try:
            value = int(part.strip())
        except ValueError:
            raise UsageError(f"--batch takes positive integers separated by commas, got "
                             f"'{text}'") from None
        if value < 1:
            raise UsageError(f"--batch sizes must be at least 1, got {value}")
        batches.append(value)
    return batches


@contextlib.contextmanager
def progress_bar(no_color: bool) -> Iterator:
    """A rich progress bar on stderr (only on a terminal); yields on_progress(label, f)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cnnstat.report.console import stderr_console

    console = stderr_console(no_color)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("starting", total=1.0)

        def on_progress(label: str, fraction: float) -> None:
            bar.update(task, description=label, completed=fraction)

        yield on_progress


@app.command("time")
def time_command(model: ModelArg, device: DeviceOpt = "auto", batch: BatchesOpt = "1",
                 dtype: TimeDtypeOpt = TimeDtype.fp32, channels_last: ChannelsLastOpt = False,
                 compile: CompileOpt = False, warmup: WarmupOpt = None,
                 min_time: MinTimeOpt = 1.0, iters: ItersOpt = None,
                 threads: ThreadsOpt = None, per_layer: PerLayerOpt = False,
                 train: TrainOpt = False, no_peak: NoPeakOpt = False,
                 format: FormatOpt = Format.table, as_json: JsonOpt = False,
                 no_color: NoColorOpt = False, input: InputOpt = None,
                 kwargs: KwargsOpt = None) -> None:
    """Time the model (random weights): latency, throughput, achieved TFLOP/s and MFU.

    Median latency, IQR, p90, images/s, achieved TFLOP/s and MFU against the device's
    measured peak. See docs/timing.md."""
    from cnnstat.analyzers import analyze_graph
    from cnnstat.analyzers.engine import resolve_input
    from cnnstat.api import input_shape

    batches = parse_batches(batch)
    if input is not None and "," in input:
        raise UsageError("time takes one --input; sweep the batch with --batch 1,8,64")
    resolved = resolve_model(model, input, kwargs)
    graph, input = resolved.graph, traced_input(model, input)
    shape = resolve_input(graph, input_shape(input, graph))
    analyze_graph(graph, shape, batch=batches[0])  # bad shapes fail before torch loads

    from cnnstat.timing import TimingOptions, run_timing

    options = TimingOptions(dtype=dtype.value, channels_last=channels_last, compile=compile,
                            warmup=warmup, min_time_s=min_time, iters=iters, threads=threads)
    with progress_bar(no_color) as on_progress:
        timing = run_timing(graph, shape, batches, device, options, per_layer=per_layer,
                            train=train, peak=not no_peak, on_progress=on_progress)
    for result in timing.runs + timing.train:
        for line in result.notes:
            note(f"{result.mode}, batch {result.batch_requested}: {line}")
    report = with_diagnostics(analyze_graph(graph, shape, batch=timing.runs[0].batch,
                                            dtype=dtype.value), resolved)
    _emit(report, timing, Format.json if as_json else format, no_color)


def _emit(report, timing, format: Format, no_color: bool) -> None:
    from cnnstat.report import timing_render as render

    if format is Format.json:
        print(render.to_json(report, timing))
    elif format is Format.csv:
        sys.stdout.write(render.to_csv(timing))
    elif format is Format.markdown:
        sys.stdout.write(render.to_markdown(report.model, timing))
    else:
        from cnnstat.report.console import stdout_console

        stdout_console(no_color).print(render.render(report.model, timing))
