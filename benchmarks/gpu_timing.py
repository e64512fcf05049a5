"""The GPU acceptance check of the timing issue: cnnstat vs torch.utils.benchmark.

    python benchmarks/gpu_timing.py              # on a CUDA machine (about a minute)
    python benchmarks/gpu_timing.py --dry-run    # CPU, batch 1, short: the script works

For each model (default resnet50 and vgg16, bf16 autocast, channels-last, batch 256): one
module built from our zoo spec (random init, eval) and one input; cnnstat's method
(warm-up until stable, CUDA events around every iteration, median, out-of-memory
back-off) and `torch.utils.benchmark.Timer.blocked_autorange` (same module and input,
under the same inference_mode + autocast; it synchronises the device itself) alternate
for --rounds rounds. Prints both medians, their ratio, images/s, achieved TFLOP/s (our
FLOPs = 2 x MACs / median) and MFU against the peak measured now (a large bf16 matmul)
and against the spec sheet when the GPU is recognised. With $OUT set, also writes
$OUT/gpu_timing.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.utils.benchmark as tb  # noqa: E402

from cnnstat.errors import CnnstatError  # noqa: E402
from cnnstat.resolver import resolve  # noqa: E402
from cnnstat.timing.measure import (  # noqa: E402
    TimingOptions,
    autocast,
    build,
    cudnn_autotune,
    free_memory,
    make_input,
    resolve_device,
    time_forward,
)
from cnnstat.timing.peak import measure_peak  # noqa: E402


def torch_median_ms(module, x, device, dtype: str, min_time_s: float) -> float:
    timer = tb.Timer(stmt="module(x)", globals={"module": module, "x": x},
                     num_threads=torch.get_num_threads())
    with torch.inference_mode(), autocast(device, dtype):
        return timer.blocked_autorange(min_run_time=min_time_s).median * 1e3


def time_one(name: str, device, args, peak) -> dict:
    graph = resolve(name).graph
    shape = tuple(graph.meta.input)
    options = TimingOptions(dtype=args.dtype, channels_last=True, min_time_s=args.min_time)
    module = build(graph, shape, device, options)
    rounds = []
    for _ in range(args.rounds):
        ours = time_forward(module, graph, shape, args.batch, device, options)
        x = make_input(ours.batch, shape, device, options)
        theirs_ms = torch_median_ms(module, x, device, args.dtype, args.min_time)
        del x
        rounds.append((ours, theirs_ms))
    del module
    free_memory(device)
    ours = min((r for r, _ in rounds), key=lambda r: r.median_ms)  # rates: the faster round
    ratio = statistics.median(r.median_ms / t for r, t in rounds)
    return {"model": name, "batch_requested": args.batch, "batch": ours.batch,
            "notes": list(ours.notes), "flops": ours.flops,
            "cnnstat_median_ms": [r.median_ms for r, _ in rounds],
            "cnnstat_iqr_ms": [r.stats.iqr_ms for r, _ in rounds],
            "cnnstat_iters": [r.iters for r, _ in rounds],
            "torch_benchmark_median_ms": [t for _, t in rounds], "ratio": ratio,
            "images_per_s": ours.images_per_s,
            "achieved_tflop_s": ours.achieved_flops_per_s / 1e12,
            "mfu_measured": ours.mfu(peak.matmul_flops_per_s),
            "mfu_spec": ours.mfu(peak.spec_flops_per_s)}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def print_row(row: dict) -> None:
    print(f"{row['model']:>10} batch {row['batch']:>3}: cnnstat "
          f"{', '.join(f'{v:.2f}' for v in row['cnnstat_median_ms'])} ms | torch.utils."
          f"benchmark {', '.join(f'{v:.2f}' for v in row['torch_benchmark_median_ms'])} ms | "
          f"ratio {row['ratio']:.3f} | {row['images_per_s']:,.0f} img/s | "
          f"{row['achieved_tflop_s']:.1f} TFLOP/s | MFU {_pct(row['mfu_measured'])} of "
          f"measured peak, {_pct(row['mfu_spec'])} of spec sheet", flush=True)
    for line in row["notes"]:
        print(f"{'':>10} note: {line}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,vgg16")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dtype", default="bf16", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--min-time", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU, batch 1, short runs: check the script, not the GPU")
    args = parser.parse_args()
    if args.dry_run:
        args.device, args.batch, args.min_time, args.rounds = "cpu", 1, 0.1, 1
    return args


def main() -> int:
    args = parse_args()
    try:
        device = resolve_device(args.device)
    except CnnstatError as e:
        print(e, file=sys.stderr)
        return e.exit_code
    small = {"max_n": 256, "copy_bytes": 8 << 20, "min_time_s": 0.05} if args.dry_run else {}
    with cudnn_autotune(device):
        peak = measure_peak(device, args.dtype, **small)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"{name} | torch {torch.__version__} | CUDA {torch.version.cuda} | cuDNN "
              f"{torch.backends.cudnn.version()} | {args.dtype} autocast, channels-last")
        print(f"peak measured now: {peak.matmul_n}^2 {peak.math_mode} matmul "
              f"{peak.matmul_flops_per_s / 1e12:.1f} TFLOP/s, copy "
              f"{peak.bandwidth_bytes_per_s / 1e9:.0f} GB/s; spec sheet: "
              f"{'n/a' if peak.spec is None else peak.spec.name} "
              f"{(peak.spec_flops_per_s or 0) / 1e12:.1f} TFLOP/s", flush=True)
        rows = []
        for model in args.models.split(","):
            rows.append(time_one(model.strip(), device, args, peak))
            print_row(rows[-1])
    if os.environ.get("OUT"):
        summary = {"device": name, "torch": torch.__version__, "dtype": args.dtype,
                   "peak": peak.to_dict(), "models": rows}
        Path(os.environ["OUT"], "gpu_timing.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
