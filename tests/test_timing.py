"""`cnnstat time` and cnnstat.timing: the method, options, JSON, back-off and exit codes.

Tiny specs and few iterations keep this fast; no assert depends on how fast anything ran
(speed comparisons live in benchmarks/). Oracles: torch itself (FlopCounterMode via
tests/oracles.py, shapes and parameters seen by hooks, torch.quantile), NVIDIA's data
sheets for the spec-sheet peaks. The CUDA paths run here without a GPU, through fakes.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import cnnstat.timing
from cnnstat.builder.torch_module import GraphModule
from cnnstat.cli import app
from cnnstat.errors import DeviceUnavailableError, UsageError
from cnnstat.spec import load_spec
from cnnstat.timing import measure, peak, per_layer, train
from cnnstat.timing.measure import Stats, TimingOptions, time_model
from tests.oracles import torch_truth

TINY = """
name: tiny
input: [3, 16, 16]
layers:
  - {conv: 8, k: 3, p: 1, name: conv1}
  - {bn, name: bn1}
  - {relu, name: relu1}
  - {conv: 8, k: 3, p: 1, bias: false, name: conv2}
  - {gap, name: pool}
  - {flatten, name: flat}
  - {fc: 10, name: fc}
"""

BN_AFTER_POOL = """
name: bn_after_pool
input: [3, 8, 8]
layers:
  - {conv: 4, k: 3, p: 1}
  - gap
  - bn
  - flatten
  - {fc: 2}
"""

FAST = ["--iters", "3", "--warmup", "1"]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def run(*args: str | Path):
    return CliRunner().invoke(app, ["time", *map(str, args)])


def timing_json(*args: str | Path) -> dict:
    result = run(*args, *FAST, "--no-peak", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def fake_peak(flops_per_s: float = 1e11, bytes_per_s: float = 1e10) -> peak.Peak:
    return peak.Peak(matmul_flops_per_s=flops_per_s, matmul_n=64, math_mode="fp32",
                     bandwidth_bytes_per_s=bytes_per_s, copy_bytes=1 << 20)


# ---- the statistics and the method ------------------------------------------------------

def test_quantiles_match_torch_quantile() -> None:
    """Catches an off-by-one rank (nearest-rank vs interpolated) in median/IQR/p90."""
    samples = (5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 7.5)
    stats = Stats(samples)
    t = torch.tensor(samples, dtype=torch.float64)
    for value, q in ((stats.median_ms, 0.5), (stats.p90_ms, 0.9)):
        assert value == pytest.approx(torch.quantile(t, q).item())
    iqr = torch.quantile(t, 0.75) - torch.quantile(t, 0.25)
    assert stats.iqr_ms == pytest.approx(iqr.item())


def test_warm_up_runs_until_two_windows_agree() -> None:
    """Catches a warm-up that stops after a fixed count while latency is still falling
    (a first compile or cache fill would then be timed)."""
    times = iter([100.0, 60.0, 30.0, 20.0, 10.0, 10.2, 9.9, 10.1, 10.0, 10.0, 10.0, 10.0])
    calls = []

    def run_once() -> float:
        calls.append(1)
        return next(times)

    iters, stable = measure.warm_up(run_once, None, now=lambda: 0.0)
    assert stable
    # Window medians: [20, 10, 10.2] -> 10.2 and [9.9, 10.1, 10.0] -> 10.0 are the first
    # consecutive pair within 5%; every earlier pair still includes the fall from 30 ms.
    assert iters == len(calls) == 9


def test_warm_up_gives_up_when_latency_never_settles() -> None:
    """Catches an endless warm-up on a noisy machine."""
    flip = iter(lambda: None, 0)  # infinite
    times = (10.0 if i % 2 else 30.0 for i, _ in enumerate(flip))
    iters, stable = measure.warm_up(lambda: next(times), None, now=lambda: 0.0)
    assert (iters, stable) == (measure.WARMUP_MAX_ITERS, False)


def test_fixed_warmup_and_iters_run_exactly_as_asked() -> None:
    """Catches --warmup/--iters being treated as minimums or ignored."""
    calls = []
    run_once = lambda: calls.append(1) or 1.0  # noqa: E731
    assert measure.warm_up(run_once, 4) == (4, None)  # fixed: stability not checked
    stats = measure.sample(run_once, 6, min_time_s=100.0)
    assert len(stats.samples_ms) == 6 and len(calls) == 10


def test_min_time_takes_at_least_the_minimum_iterations() -> None:
    """Catches a --min-time loop that stops after one long iteration (a median of 1)."""
    clock = iter(range(1000))
    stats = measure.sample(lambda: 1.0, None, min_time_s=0.5, now=lambda: float(next(clock)))
    assert len(stats.samples_ms) == measure.MIN_ITERS


def test_time_model_runs_the_iterations_and_counts_our_flops(tiny: Path) -> None:
    """The API `compare --time` uses: warm-up + iters forward passes really ran, the
    median is positive, and the FLOPs are 2 x torch's multiply-adds at that batch."""
    graph = load_spec(tiny)
    forwards = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: forwards.append(1) if isinstance(m, GraphModule) else None)
    try:
        result = time_model(graph, None, 3, "cpu",
                            options=TimingOptions(warmup=2, iters=5))
    finally:
        hook.remove()
    assert len(forwards) == 2 + 5
    assert result.iters == 5 and result.warmup_iters == 2
    assert result.median_ms > 0 and result.images_per_s > 0
    assert result.flops == 2 * torch_truth(graph, batch=3).macs
    assert result.achieved_flops_per_s == pytest.approx(result.flops / result.median_ms * 1e3)
    assert result.env.device == "cpu" and result.env.torch_version == torch.__version__


def test_progress_is_reported_between_zero_and_one(tiny: Path) -> None:
    """Catches the progress callback being skipped or fed fractions past 1."""
    seen: list[tuple[str, float]] = []
    time_model(load_spec(tiny), None, 1, "cpu", options=TimingOptions(warmup=1, iters=2),
               on_progress=lambda label, f: seen.append((label, f)))
    assert seen and all(0 <= f <= 1 for _, f in seen)
    assert any("warm-up" in label for label, _ in seen) and seen[-1][1] == 1.0


# ---- the command ----------------------------------------------------------------------

def test_batch_sweep_json_has_every_batch_and_field(tiny: Path) -> None:
    """Catches a sweep that times one batch, and FLOPs not scaled to each batch."""
    data = timing_json(tiny, "--batch", "1,2,4")
    macs_per_image = torch_truth(load_spec(tiny)).macs
    timing = data["timing"]
    assert data["schema"] == "cnnstat.report/1" and data["input_shape"] == [1, 3, 16, 16]
    assert timing["schema"] == "cnnstat.timing/1"
    assert [r["batch"] for r in timing["runs"]] == [1, 2, 4]
    for r in timing["runs"]:
        assert r["flops"] == 2 * macs_per_image * r["batch"]
        assert r["iters"] == 3 and r["warmup_iters"] == 1 and r["median_ms"] > 0
        assert r["q1_ms"] <= r["median_ms"] <= r["q3_ms"] and r["p90_ms"] >= r["median_ms"]
        assert r["images_per_s"] == pytest.approx(r["batch"] / r["median_ms"] * 1e3)
        assert r["mfu"] is None  # --no-peak
    for key in ("device", "device_name", "torch", "dtype", "threads", "method", "peak"):
        assert key in timing
    assert timing["torch"] == torch.__version__ and timing["train"] == []


@pytest.mark.parametrize("args", [
    ["--batch", "1,x"], ["--batch", "0"], ["--dtype", "fp64"], ["--iters", "0"],
    ["--threads", "0"], ["--min-time", "0"], ["--warmup", "-1"], ["--device", "tpu"],
    ["--input", "16,32"], ["--format", "yaml"],
])
def test_bad_options_exit_2(tiny: Path, args: list[str]) -> None:
    """Every malformed option is a usage error (exit 2), never a crash (70)."""
    result = run(tiny, *args, "--no-peak")
    assert result.exit_code == 2, (args, result.stderr)


def test_dtype_and_channels_last_reach_torch(tiny: Path) -> None:
    """Catches --dtype/--channels-last being recorded in the report but not applied."""
    seen = []

    def record(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            seen.append((output.dtype, inputs[0].is_contiguous(
                memory_format=torch.channels_last)))

    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        data = timing_json(tiny, "--dtype", "bf16", "--channels-last")
    finally:
        hook.remove()
    assert seen and all(s == (torch.bfloat16, True) for s in seen)
    assert data["timing"]["dtype"] == "bf16" and data["timing"]["channels_last"] is True


def test_threads_apply_during_the_run_and_are_restored(tiny: Path) -> None:
    """Catches --threads ignored, or left changed for the rest of the process."""
    before = torch.get_num_threads()
    during = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: during.append(torch.get_num_threads()))
    try:
        data = timing_json(tiny, "--threads", "1")
    finally:
        hook.remove()
    assert set(during) == {1} and data["timing"]["threads"] == 1
    assert torch.get_num_threads() == before


def test_compile_flag_compiles(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches --compile being accepted but never calling torch.compile."""
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda m: compiled.append(m) or m)
    data = timing_json(tiny, "--compile")
    assert len(compiled) == 1 and data["timing"]["compiled"] is True


# ---- out of memory, missing devices, Ctrl-C ----------------------------------------------

def _oom_above(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    real = GraphModule.forward

    def forward(self, x):
        if x.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB "
                                         "(simulated)")
        return real(self, x)

    monkeypatch.setattr(GraphModule, "forward", forward)


def test_out_of_memory_halves_the_batch_and_says_so(tiny: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches an OOM that aborts the run, or a smaller batch reported as the asked one."""
    _oom_above(monkeypatch, 2)
    result = run(tiny, "--batch", "8,1", *FAST, "--no-peak", "--json")
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)["timing"]["runs"]
    assert [(r["batch_requested"], r["batch"]) for r in runs] == [(8, 2), (1, 1)]
    assert runs[0]["notes"][:2] == [
        "out of memory at batch 8; halved the batch to 4",
        "out of memory at batch 4; halved the batch to 2"]
    assert "out of memory at batch 8" in result.stderr
    assert json.loads(result.stdout)["input_shape"][0] == 2  # the report is what ran


def test_train_backs_off_too(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches the back-off being wired to the forward timing only."""
    _oom_above(monkeypatch, 1)
    result = time_train(tiny, batch=4)
    assert (result.batch_requested, result.batch) == (4, 1)


def test_out_of_memory_at_batch_one_exits_4(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _oom_above(monkeypatch, 0)
    result = run(tiny, *FAST, "--no-peak")
    assert result.exit_code == 4
    assert "out of memory" in result.stderr and result.stdout == ""


def test_other_runtime_errors_are_not_taken_for_oom(tiny: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a back-off that swallows every RuntimeError (a real bug would be hidden)."""
    def forward(self, x):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(GraphModule, "forward", forward)
    with pytest.raises(RuntimeError, match="shapes"):
        measure.with_oom_backoff(4, lambda b: GraphModule.forward(None, b), torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_exits_4_with_one_line(tiny: Path) -> None:
    result = run(tiny, "--device", "cuda", *FAST)
    assert result.exit_code == 4
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert "CUDA is not available" in result.stderr


@pytest.mark.skipif(measure._mps_available(), reason="this machine has MPS")
def test_mps_without_mps_exits_4(tiny: Path) -> None:
    assert run(tiny, "--device", "mps", *FAST).exit_code == 4


def test_cuda_index_past_the_last_gpu_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated one-GPU machine: cuda:0 resolves, cuda:3 is exit 4, auto picks CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert measure.resolve_device("cuda:0") == torch.device("cuda", 0)
    assert measure.resolve_device("auto") == torch.device("cuda", 0)
    with pytest.raises(DeviceUnavailableError, match="no CUDA device 3"):
        measure.resolve_device("cuda:3")
    with pytest.raises(UsageError):
        measure.resolve_device("gpu")


def test_ctrl_c_exits_130_with_no_output(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a KeyboardInterrupt swallowed by the back-off or printed as a partial table."""
    before = torch.get_num_threads()

    def forward(self, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(GraphModule, "forward", forward)
    result = run(tiny, *FAST, "--threads", "1", "--no-peak")
    assert result.exit_code == 130 and result.stdout == ""
    assert torch.get_num_threads() == before


# ---- CUDA paths, simulated ----------------------------------------------------------------

class FakeEvent:
    log: list[str] = []

    def __init__(self, enable_timing: bool = False):
        assert enable_timing
        self.t = None

    def record(self, stream=None):
        assert stream == "stream of cuda:0"  # the timed device's stream, not the current one
        FakeEvent.log.append("record")
        self.t = len(FakeEvent.log)

    def synchronize(self):
        FakeEvent.log.append("sync")

    def elapsed_time(self, end: FakeEvent) -> float:
        return 2.5 * (end.t - self.t)


def fake_cuda_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device: f"stream of {device}")


def test_cuda_clock_records_events_around_the_call_and_waits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a GPU timer that reads the host clock without synchronising (it would time
    kernel launches only)."""
    fake_cuda_events(monkeypatch)
    FakeEvent.log = []
    clock = measure.make_clock(torch.device("cuda", 0))
    ms = clock(lambda: FakeEvent.log.append("work"))
    assert FakeEvent.log == ["record", "work", "record", "sync"]
    assert ms == 2.5 * 2


def test_per_layer_cuda_recorder_syncs_once_per_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-layer CUDA path: events in hooks, one synchronise, then elapsed times."""
    fake_cuda_events(monkeypatch)
    FakeEvent.log = []
    recorder = per_layer._Recorder(torch.device("cuda", 0))
    for name in ("a", "b"):
        recorder.before(name)
        recorder.after(name)
    recorder.flush()
    assert FakeEvent.log.count("sync") == 1 and FakeEvent.log[-1] == "sync"
    assert recorder.samples_ms == {"a": [2.5], "b": [2.5]}


def test_cuda_oom_backoff_frees_the_cache_and_reads_cuda_peak_memory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated CUDA: each halving empties the caching allocator first (else the retry
    sees the same fragmented pool), and peak memory is the allocator's high-water mark."""
    freed = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: freed.append(1))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 123 << 20)

    def attempt(batch: int) -> int:
        if batch > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return batch

    cuda = torch.device("cuda", 0)
    result, ran, notes = measure.with_oom_backoff(16, attempt, cuda)
    assert (result, ran, len(notes), len(freed)) == (2, 2, 3, 3)
    assert train.peak_memory(cuda) == (123 << 20, "cuda max_memory_allocated")


# ---- peaks ----------------------------------------------------------------------------

def test_spec_sheet_peaks_are_nvidias_dense_numbers() -> None:
    """NVIDIA H100 (SXM5) data sheet: BF16 tensor 1,979 TFLOPS with sparsity = 989.4 dense,
    FP32 67 TFLOPS, 3.35 TB/s; A100 data sheet: BF16 312 TFLOPS (624 sparse), TF32 156.
    Catches the sparse figure (2x) being used, and a MIG slice taking the full chip's."""
    h100 = peak.spec_sheet("NVIDIA H100 80GB HBM3")
    assert h100 is not None and h100.bf16 == 989.4 and h100.bandwidth_tb_s == 3.35
    assert peak.spec_flops_per_s(h100, "bf16") == pytest.approx(989.4e12)
    a100 = peak.spec_sheet("NVIDIA A100-SXM4-80GB")
    assert a100 is not None and (a100.bf16, a100.tf32) == (312.0, 156.0)
    assert peak.spec_sheet("NVIDIA A100-SXM4-40GB MIG 1g.5gb") is None
    assert peak.spec_sheet("Some Unknown GPU") is None
    assert peak.spec_sheet("NVIDIA H100 PCIe").name == "NVIDIA H100 PCIe"


def test_matmul_flop_count_agrees_with_torch() -> None:
    """Catches an n^3 (MACs) vs 2n^3 (FLOPs) slip in the calibration's numerator."""
    from torch.utils.flop_counter import FlopCounterMode

    n = 48
    counter = FlopCounterMode(display=False)
    with counter:
        torch.randn(n, n) @ torch.randn(n, n)
    assert peak.matmul_flops(n) == counter.get_total_flops()


def test_measure_peak_on_cpu_is_positive_and_consistent() -> None:
    measured = peak.measure_peak(torch.device("cpu"), "fp32", max_n=128, copy_bytes=1 << 20,
                                 min_time_s=0.01)
    assert measured.matmul_n <= 128 and measured.matmul_flops_per_s > 0
    assert measured.bandwidth_bytes_per_s > 0 and measured.spec is None
    assert measured.ridge_flops_per_byte == pytest.approx(
        measured.matmul_flops_per_s / measured.bandwidth_bytes_per_s)


def test_fp32_on_cuda_calibrates_with_tf32_like_cudnn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches an fp32 MFU over 100%: cuDNN convs use TF32 by default, so must the peak."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    assert peak.math_mode(torch.device("cuda", 0), "fp32") == "tf32"
    assert peak.math_mode(torch.device("cuda", 0), "bf16") == "bf16"
    assert peak.math_mode(torch.device("cpu"), "fp32") == "fp32"


# ---- per layer ------------------------------------------------------------------------

def test_roofline_classification_and_fraction() -> None:
    """Ridge = 1e11 / 1e10 = 10 FLOP/byte. 1000 FLOPs over 50 bytes (20/byte) is
    compute-bound; over 500 bytes (2/byte) memory-bound; 0 bytes is a view."""
    p = fake_peak()
    assert per_layer.classify(1000, 50, p) == "compute"
    assert per_layer.classify(1000, 500, p) == "memory"
    assert per_layer.classify(0, 0, p) == "view"
    assert per_layer.classify(1000, 50, None) is None
    # 1000 FLOPs in 1e-5 ms = 1e11 FLOP/s = the whole peak.
    assert per_layer.roofline_fraction(1000, 50, 1e-5, "compute", p) == pytest.approx(1.0)
    # 500 bytes in 1e-4 ms = 5e9 B/s = half the bandwidth.
    assert per_layer.roofline_fraction(1000, 500, 1e-4, "memory", p) == pytest.approx(0.5)


def _torch_traffic(graph, batch: int) -> dict[str, int]:
    """Elements each leaf module reads and writes, seen by torch on a meta forward:
    inputs + output + parameters + buffers."""
    with torch.device("meta"):
        module = cnnstat.timing.build(graph, graph.meta.input, torch.device("meta"),
                                      TimingOptions())
    traffic = {}

    def record(name):
        def hook(m, inputs, output):
            weights = sum(t.numel() for t in [*m.parameters(), *m.buffers()])
            traffic[name] = sum(x.numel() for x in inputs) + output.numel() + weights
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in module.named_modules()
               if n and not list(m.children())]
    with torch.no_grad():
        module(torch.empty(batch, *graph.meta.input, device="meta"))
    for h in handles:
        h.remove()
    return traffic


def test_per_layer_rows_bytes_and_verdicts(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches per-layer rows that miss layers, bytes that forget the weights or the input,
    and verdicts not taken against the measured ridge point."""
    monkeypatch.setattr(cnnstat.timing, "measure_peak", lambda *a, **k: fake_peak())
    result = run(tiny, "--per-layer", "--batch", "2", *FAST, "--json")
    assert result.exit_code == 0, result.stderr
    layers = json.loads(result.stdout)["timing"]["per_layer"]
    graph = load_spec(tiny)
    traffic = _torch_traffic(graph, batch=2)
    rows = {r["name"]: r for r in layers["layers"]}
    assert set(rows) == set(torch_truth(graph).shapes)
    for name, row in rows.items():
        expected = 0 if row["kind"] == "flatten" else traffic[name] * 4  # fp32
        assert row["bytes_moved"] == expected, name
        assert row["median_ms"] > 0
        if row["bytes_moved"] and row["flops"]:
            intensity = row["flops"] / row["bytes_moved"]
            assert row["bound"] == ("compute" if intensity >= 10 else "memory"), name
    assert math.isclose(sum(r["time_share"] for r in rows.values()), 1.0)
    assert layers["batch"] == 2 and layers["iters"] == 3
    assert layers["top_by_flops"][0] in ("conv1", "conv2")


def test_per_layer_table_names_the_dominant_layers(tiny: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cnnstat.timing, "measure_peak", lambda *a, **k: fake_peak())
    result = run(tiny, "--per-layer", *FAST, "--no-color")
    assert result.exit_code == 0, result.stderr
    for text in ("dominate time:", "dominate FLOPs:", "FLOP/byte", "Bound", "conv2"):
        assert text in result.stdout


# ---- training -------------------------------------------------------------------------

def time_train(spec: Path, batch: int = 2, **options):
    graph = load_spec(spec)
    return train.time_train(graph, graph.meta.input, batch, torch.device("cpu"),
                            TimingOptions(warmup=1, iters=3, **options))


def test_train_step_runs_backward_and_the_optimizer(tiny: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a 'training' timing that only runs forward: every step calls SGD.step
    with gradients present."""
    steps = []
    real = torch.optim.SGD.step

    def step(self, *a, **k):
        steps.append(all(p.grad is not None for g in self.param_groups for p in g["params"]))
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    result = time_train(tiny)
    assert steps == [True] * (1 + 3)
    assert result.mode == "train" and result.median_ms > 0
    assert result.flops == 3 * 2 * torch_truth(load_spec(tiny), batch=2).macs
    assert result.peak_memory_bytes and result.peak_memory_bytes > 0


def test_train_in_the_json_report(tiny: Path) -> None:
    data = timing_json(tiny, "--train", "--batch", "2")
    (row,) = data["timing"]["train"]
    assert row["mode"] == "train" and row["batch"] == 2 and row["peak_memory_kind"]


def test_train_batchnorm_at_batch_one_is_a_usage_error(tmp_path: Path) -> None:
    """BatchNorm after a global pool sees one value per channel at batch 1 and cannot
    train: a clear exit 2, not an internal error."""
    spec = tmp_path / "bn.yaml"
    spec.write_text(BN_AFTER_POOL)
    result = run(spec, "--train", *FAST, "--no-peak")
    assert result.exit_code == 2 and "--train at batch 1" in result.stderr


# ---- output formats -------------------------------------------------------------------

def test_table_shows_the_environment_and_mfu(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cnnstat.timing, "measure_peak", lambda *a, **k: fake_peak())
    result = run(tiny, *FAST, "--no-color")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in (measure.device_name(torch.device("cpu")), torch.__version__, "fp32",
                 "Median (ms)", "IQR (ms)", "p90 (ms)", "Images/s", "MFU (%)", "Peak, measured"):
        assert text in out, text


def test_csv_has_a_row_per_batch_and_markdown_is_a_table(tiny: Path) -> None:
    result = run(tiny, "--batch", "1,2", *FAST, "--no-peak", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["batch"]) for r in rows] == [1, 2]
    assert all(float(r["median_ms"]) > 0 and r["mode"] == "forward" for r in rows)
    lines = run(tiny, *FAST, "--no-peak", "-f", "markdown").stdout.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 3 and len({line.count("|") for line in table}) == 1


def test_a_model_that_cannot_fit_is_refused_before_allocating(monkeypatch) -> None:
    """A spec too big for this machine exits 3 with a sentence, instead of being killed
    by the kernel mid-allocation (which no error handler can report)."""
    from typer.testing import CliRunner

    from cnnstat.cli import app
    from cnnstat.timing import measure

    monkeypatch.setattr(measure, "_available_bytes", lambda: 1024)
    result = CliRunner().invoke(app, ["time", "lenet5", "--no-peak", "--iters", "1"])
    assert result.exit_code == 3
    assert "GiB is available" in result.stderr and "Traceback" not in result.stderr
