"""Forward-latency measurement with a sound method.

Method (docs/timing.md): warm up until the latency is stable, synchronise the device
around every timed iteration (CUDA events on a CUDA device, a wall clock after
`synchronize` elsewhere), take many iterations (`iters`, or as many as fit in
`min_time_s`) and report the median with the IQR and p90, never a single run. FLOPs come
from our analysis (2 x MACs at the batch that ran), never from a counter at timing time.

The library never prints: progress goes to an optional `on_progress(label, fraction)`.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import torch

from cnnstat.errors import AnalysisError, DeviceUnavailableError, UsageError
from cnnstat.ir import Graph

OnProgress = Callable[[str, float], None]
T = TypeVar("T")

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
MIN_ITERS = 5  # with --min-time: never a median of fewer samples than this
WARMUP_MIN_ITERS = 3
WARMUP_WINDOW = 3  # stable: the median of the last 3 is within 5% of the 3 before
WARMUP_REL_TOL = 0.05
WARMUP_MAX_ITERS = 100
WARMUP_MAX_S = 10.0  # after the first iteration (which may compile): stop warming up anyway
PROGRESS_EVERY_S = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class TimingOptions:
    """How to time. `warmup=None` warms up until stable; `iters=None` runs for `min_time_s`."""

    dtype: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    warmup: int | None = None
    min_time_s: float = 1.0
    iters: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, got '{self.dtype}'")
        for name in ("iters", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name} must be at least 1, got {value}")
        if self.warmup is not None and self.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more, got {self.warmup}")
        if not self.min_time_s > 0:
            raise UsageError(f"--min-time must be positive seconds, got {self.min_time_s}")


def quantile(sorted_values: tuple[float, ...], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's and torch.quantile's default)."""
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Stats:
    """Per-iteration latencies in milliseconds and their robust summaries."""

    samples_ms: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples_ms:
            raise ValueError("no timed iterations")

    def q(self, q: float) -> float:
        return quantile(tuple(sorted(self.samples_ms)), q)

    @property
    def median_ms(self) -> float:
        return self.q(0.5)

    @property
    def iqr_ms(self) -> float:
        return self.q(0.75) - self.q(0.25)

    @property
    def p90_ms(self) -> float:
        return self.q(0.9)

    def to_dict(self) -> dict[str, float | int]:
        return {"median_ms": self.median_ms, "q1_ms": self.q(0.25), "q3_ms": self.q(0.75),
                "iqr_ms": self.iqr_ms, "p90_ms": self.p90_ms, "min_ms": min(self.samples_ms),
                "mean_ms": sum(self.samples_ms) / len(self.samples_ms),
                "iters": len(self.samples_ms)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """What ran: device, dtype, torch and the knobs that change speed."""

    device: str
    device_name: str
    torch_version: str
    dtype: str
    channels_last: bool
    compiled: bool
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "device_name": self.device_name,
                "torch": self.torch_version, "dtype": self.dtype,
                "channels_last": self.channels_last, "compiled": self.compiled,
                "threads": self.threads}


@dataclass(frozen=True, slots=True, kw_only=True)
class TimingResult:
    """One timed configuration: forward (inference) or a training step at one batch."""

    env: Environment
    mode: str  # "forward" | "train"
    batch_requested: int
    batch: int  # smaller than requested after an out-of-memory back-off
    input_shape: tuple[int, ...]
    flops: int  # ours: 2 x MACs at `batch` (train: 3 x forward, see train.py)
    stats: Stats
    warmup_iters: int
    warmup_stable: bool | None  # None: --warmup fixed the count, stability not checked
    notes: tuple[str, ...] = ()
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None

    @property
    def median_ms(self) -> float:
        return self.stats.median_ms

    @property
    def iters(self) -> int:
        return len(self.stats.samples_ms)

    @property
    def images_per_s(self) -> float:
        return self.batch / (self.median_ms / 1e3)

    @property
    def achieved_flops_per_s(self) -> float:
        return self.flops / (self.median_ms / 1e3)

    def mfu(self, peak_flops_per_s: float | None) -> float | None:
        """Model FLOPs utilisation as a fraction of `peak_flops_per_s`."""
        return None if not peak_flops_per_s else self.achieved_flops_per_s / peak_flops_per_s

    def to_dict(self, peak_flops_per_s: float | None = None,
                spec_flops_per_s: float | None = None) -> dict[str, Any]:
        """`mfu` is against the measured peak, `mfu_spec` against the spec sheet."""
        return {"mode": self.mode, "batch_requested": self.batch_requested,
                "batch": self.batch, "input_shape": list(self.input_shape),
                "flops": self.flops, **self.stats.to_dict(),
                "warmup_iters": self.warmup_iters, "warmup_stable": self.warmup_stable,
                "images_per_s": self.images_per_s,
                "achieved_flops_per_s": self.achieved_flops_per_s,
                "mfu": self.mfu(peak_flops_per_s), "mfu_spec": self.mfu(spec_flops_per_s),
                "peak_memory_bytes": self.peak_memory_bytes,
                "peak_memory_kind": self.peak_memory_kind, "notes": list(self.notes)}


# ---- devices ---------------------------------------------------------------------------

def resolve_device(spec: str = "auto") -> torch.device:
    """auto | cpu | cuda[:N] | mps -> a torch.device; a device that is not there raises
    DeviceUnavailableError (exit 4)."""
    text = spec.strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps" if _mps_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UsageError(f"--device takes auto, cpu, cuda, cuda:N or mps, got '{spec}'") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        return _cuda_device(device, spec)
    if device.type == "mps":
        if not _mps_available():
            raise DeviceUnavailableError(f"--device {spec}: MPS is not available on this "
                                         "machine (it needs Apple silicon and a torch with MPS)")
        return device
    raise UsageError(f"--device takes auto, cpu, cuda, cuda:N or mps, got '{spec}'")


def _cuda_device(device: torch.device, spec: str) -> torch.device:
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(f"--device {spec}: CUDA is not available (torch "
                                     f"{torch.__version__}, no usable NVIDIA GPU or driver)")
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if device.index is None else device.index
    if index >= count:
        raise DeviceUnavailableError(f"--device {spec}: there is no CUDA device {index} "
                                     f"(this machine has {count})")
    return torch.device("cuda", index)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple {platform.machine()} GPU (MPS)"
    return _cpu_name()


def _cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "CPU"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def free_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def make_clock(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """A function that runs `fn` once and returns its latency in ms, synchronised."""
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        # The stream of *this* device: the current device may be another GPU.
        stream = torch.cuda.current_stream(device)

        def cuda_clock(fn: Callable[[], object]) -> float:
            # NB: the queue is empty when `start` is recorded (the previous iteration
            # synchronised), so launch gaps inside `fn` count, as a user would see them.
            start.record(stream)
            fn()
            end.record(stream)
            end.synchronize()
            return start.elapsed_time(end)

        return cuda_clock

    def wall_clock(fn: Callable[[], object]) -> float:
        synchronize(device)
        t0 = time.perf_counter_ns()
        fn()
        synchronize(device)
        return (time.perf_counter_ns() - t0) / 1e6

    return wall_clock


# ---- the method ------------------------------------------------------------------------

def _is_stable(times_ms: list[float]) -> bool:
    if len(times_ms) < max(WARMUP_MIN_ITERS, 2 * WARMUP_WINDOW):
        return False
    last = sorted(times_ms[-WARMUP_WINDOW:])[WARMUP_WINDOW // 2]
    before = sorted(times_ms[-2 * WARMUP_WINDOW:-WARMUP_WINDOW])[WARMUP_WINDOW // 2]
    return abs(last - before) <= WARMUP_REL_TOL * before


def warm_up(run_once: Callable[[], float], fixed: int | None,
            on_progress: OnProgress | None = None, label: str = "warm-up",
            now: Callable[[], float] = time.perf_counter) -> tuple[int, bool | None]:
    """Run `fixed` iterations, or until two consecutive windows of latencies agree within
    5% (capped at 100 iterations / 10 s after the first). Returns (iterations, stable);
    stable is None after a fixed warm-up (not checked)."""
    if fixed is not None:
        for i in range(fixed):
            run_once()
            _report(on_progress, label, (i + 1) / fixed)
        return fixed, None
    times_ms = [run_once()]
    started = now()  # the first iteration may compile: it does not eat the budget
    while not _is_stable(times_ms):
        if len(times_ms) >= WARMUP_MAX_ITERS or now() - started > WARMUP_MAX_S:
            return len(times_ms), False
        times_ms.append(run_once())
        _report(on_progress, label, len(times_ms) / (2 * WARMUP_WINDOW))
    return len(times_ms), True


def sample(run_once: Callable[[], float], iters: int | None, min_time_s: float,
           on_progress: OnProgress | None = None, label: str = "timing",
           now: Callable[[], float] = time.perf_counter) -> Stats:
    """Exactly `iters` timed iterations, or at least MIN_ITERS and `min_time_s` of them."""
    samples: list[float] = []
    started = last_report = now()
    while True:
        samples.append(run_once())
        elapsed = now() - started
        if iters is not None:
            done, fraction = len(samples) >= iters, len(samples) / iters
        else:
            done = len(samples) >= MIN_ITERS and elapsed >= min_time_s
            fraction = min(elapsed / min_time_s, len(samples) / MIN_ITERS)
        if done:
            break
        if on_progress is not None and elapsed - (last_report - started) >= PROGRESS_EVERY_S:
            last_report = now()
            on_progress(label, min(fraction, 1.0))
    _report(on_progress, label, 1.0)
    return Stats(tuple(samples))


def _report(on_progress: OnProgress | None, label: str, fraction: float) -> None:
    if on_progress is not None:
        on_progress(label, min(fraction, 1.0))


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[int]:
    """torch's intra-op threads for the block (restored after, Ctrl-C included)."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def cudnn_autotune(device: torch.device) -> Iterator[None]:
    """cuDNN picks the fastest conv algorithm per shape (timm's benchmark does the same);
    the search runs during the warm-up. Restored after."""
    before = torch.backends.cudnn.benchmark
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    """fp16/bf16 run under autocast (weights stay fp32, as mixed-precision users run)."""
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def is_oom(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error)
    # CPU's allocator, MPS, and cuDNN/cuBLAS workspace failures raise plain RuntimeErrors.
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
        or "ALLOC_FAILED" in text)


def with_oom_backoff(batch: int, attempt: Callable[[int], T], device: torch.device
                     ) -> tuple[T, int, tuple[str, ...]]:
    """attempt(batch); on out-of-memory halve the batch and retry, saying so. Returns
    (result, batch that ran, notes). Out of memory at batch 1 raises (exit 4)."""
    notes: list[str] = []
    while True:
        try:
            return attempt(batch), batch, tuple(notes)
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not is_oom(e):
                raise
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        # Outside the except block: the traceback and the tensors it held are released.
        free_memory(device)
        if batch == 1:
            raise DeviceUnavailableError(f"out of memory on {device} even at batch 1 "
                                         f"({reason})")
        notes.append(f"out of memory at batch {batch}; halved the batch to {batch // 2}")
        batch //= 2


# ---- forward timing --------------------------------------------------------------------

def build(graph: Graph, input_shape: tuple[int, ...], device: torch.device,
          options: TimingOptions, *, train: bool = False) -> torch.nn.Module:
    """Our module (random init) on `device`, in eval (or train) mode, channels-last and
    compiled as asked."""
    from cnnstat.analyzers import analyze_graph
    from cnnstat.builder import build_module

    _check_fits_in_memory(graph, analyze_graph(graph, input_shape, fields=False).totals)
    try:
        module = build_module(graph, input_shape)
    except NotImplementedError as e:
        raise AnalysisError(f"cannot build '{graph.meta.name}' to time it: {e}") from None
    except (MemoryError, RuntimeError) as e:  # an allocation the estimate did not foresee
        raise AnalysisError(f"cannot build '{graph.meta.name}' to time it: {e}") from None
    module = module.train(train).to(device)
    if options.channels_last:
        module = module.to(memory_format=torch.channels_last)
    if options.compile:
        module = torch.compile(module)
    return module


def _check_fits_in_memory(graph: Graph, totals) -> None:
    """Refuse, before allocating anything, a model whose fp32 weights and buffers plus its
    batch-1 activations (all layer outputs: an upper bound on what is live at once)
    exceed the memory available now. A 10^8-channel spec would otherwise try tens of GB
    and be killed by the kernel, with no message at all."""
    needed = 4 * (totals.params + totals.buffers) + totals.activation_bytes
    available = _available_bytes()
    if available is not None and needed > available:
        raise AnalysisError(f"'{graph.meta.name}' needs about {needed / 2**30:,.1f} GiB (fp32 "
                            f"weights and batch-1 activations); {available / 2**30:,.1f} GiB "
                            "is available")


def _available_bytes() -> int | None:
    """MemAvailable on Linux, else free physical pages, else None (no check)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def make_input(batch: int, input_shape: tuple[int, ...], device: torch.device,
               options: TimingOptions) -> torch.Tensor:
    x = torch.randn(batch, *input_shape, device=device)
    if options.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def environment(device: torch.device, options: TimingOptions) -> Environment:
    return Environment(device=str(device), device_name=device_name(device),
                       torch_version=torch.__version__, dtype=options.dtype,
                       channels_last=options.channels_last, compiled=options.compile,
                       threads=torch.get_num_threads())


def grad_mode(options: TimingOptions) -> contextlib.AbstractContextManager:
    # NB: torch.compile and inference_mode tensors do not always mix; no_grad is as cheap.
    return torch.no_grad() if options.compile else torch.inference_mode()


def forward_once(module: torch.nn.Module, graph: Graph, input_shape: tuple[int, ...],
                 batch: int, device: torch.device, options: TimingOptions,
                 on_progress: OnProgress | None = None) -> TimingResult:
    """Time the forward pass of an already built module at one batch (no back-off)."""
    from cnnstat.analyzers import analyze_graph

    flops = analyze_graph(graph, input_shape, batch=batch).totals.flops
    x = make_input(batch, input_shape, device, options)
    clock = make_clock(device)
    with grad_mode(options), autocast(device, options.dtype):
        def run_once() -> float:
            return clock(lambda: module(x))

        warmup_iters, stable = warm_up(run_once, options.warmup, on_progress,
                                       f"batch {batch}: warm-up")
        stats = sample(run_once, options.iters, options.min_time_s, on_progress,
                       f"batch {batch}: timing")
    notes = () if stable is not False else (
        f"latency still moving after {warmup_iters} warm-up iterations; timed anyway",)
    return TimingResult(env=environment(device, options), mode="forward",
                        batch_requested=batch, batch=batch, input_shape=tuple(x.shape),
                        flops=flops, stats=stats, warmup_iters=warmup_iters,
                        warmup_stable=stable, notes=notes)


def time_forward(module: torch.nn.Module, graph: Graph, input_shape: tuple[int, ...],
                 batch: int, device: torch.device, options: TimingOptions,
                 on_progress: OnProgress | None = None) -> TimingResult:
    """forward_once with the out-of-memory back-off: the result says what ran."""
    result, ran, notes = with_oom_backoff(
        batch, lambda b: forward_once(module, graph, input_shape, b, device, options,
                                      on_progress), device)
    return _requested(result, batch, notes)


def _requested(result: TimingResult, batch: int, notes: tuple[str, ...]) -> TimingResult:
    return replace(result, batch_requested=batch, notes=(*notes, *result.notes))


def time_model(graph: Graph, input_shape: tuple[int, ...] | None = None, batch: int = 1,
               device: str = "auto", *, options: TimingOptions | None = None,
               on_progress: OnProgress | None = None) -> TimingResult:
    """Build `graph` (random init, eval) on `device` and time its forward pass at `batch`.

    The entry point for other commands (`compare --time`): `.median_ms`,
    `.images_per_s`, `.achieved_flops_per_s`, `.env.device_name`, `.notes`."""
    from cnnstat.analyzers.engine import resolve_input

    options = options or TimingOptions()
    shape = resolve_input(graph, input_shape)
    torch_device = resolve_device(device)
    with cpu_threads(options.threads), cudnn_autotune(torch_device):
        module = build(graph, shape, torch_device, options)
        return time_forward(module, graph, shape, batch, torch_device, options, on_progress)

