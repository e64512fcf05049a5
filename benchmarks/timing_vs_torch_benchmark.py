"""Does cnnstat's timing agree with torch.utils.benchmark? ResNet-18, batch 1, on CPU.

    /work/venv/bin/python benchmarks/timing_vs_torch_benchmark.py [--rounds 5]
        [--threads N] [--min-time 1.5] [--model resnet18] [--batch 1]

One module (our resnet18 spec, random init, eval) and one input; in each round, cnnstat's
method (warm-up until stable, per-iteration synchronised timing, median over --min-time)
and `torch.utils.benchmark.Timer.blocked_autorange` (median of blocks over the same
time), both under inference_mode with the same thread count (Timer defaults to ONE
thread: it is given ours). The two alternate, so a change in machine load hits both
alike. Prints each round's medians and ratio; the verdict is on the median of the
per-round ratios, target within 10% (exit 1 outside it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.utils.benchmark as tb  # noqa: E402

from cnnstat.analyzers.engine import resolve_input  # noqa: E402
from cnnstat.resolver import resolve  # noqa: E402
from cnnstat.timing.measure import (  # noqa: E402
    TimingOptions,
    build,
    cpu_threads,
    forward_once,
    make_input,
)

TOLERANCE = 0.10


def torch_median_ms(module, x, threads: int, min_time_s: float) -> tuple[float, int]:
    timer = tb.Timer(stmt="module(x)", globals={"module": module, "x": x},
                     num_threads=threads, label="torch.utils.benchmark")
    with torch.inference_mode():
        measurement = timer.blocked_autorange(min_run_time=min_time_s)
    return measurement.median * 1e3, len(measurement.times) * measurement.number_per_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--min-time", type=float, default=1.5)
    args = parser.parse_args()

    graph = resolve(args.model).graph
    shape = resolve_input(graph, None)
    device = torch.device("cpu")
    options = TimingOptions(min_time_s=args.min_time, threads=args.threads)
    ours, theirs = [], []
    with cpu_threads(args.threads) as threads:
        module = build(graph, shape, device, options)
        x = make_input(args.batch, shape, device, options)
        print(f"{args.model} batch {args.batch} on CPU, {threads} threads, torch "
              f"{torch.__version__}; {args.rounds} rounds of ~{args.min_time} s each side")
        for i in range(args.rounds):
            result = forward_once(module, graph, shape, args.batch, device, options)
            torch_ms, torch_iters = torch_median_ms(module, x, threads, args.min_time)
            ours.append(result.median_ms)
            theirs.append(torch_ms)
            print(f"round {i + 1}: cnnstat {result.median_ms:8.3f} ms (IQR "
                  f"{result.stats.iqr_ms:.3f}, {result.iters} iters, warm-up "
                  f"{result.warmup_iters})   torch.utils.benchmark {torch_ms:8.3f} ms "
                  f"({torch_iters} runs)   ratio {result.median_ms / torch_ms:.3f}")
    # Each round pairs two measurements taken seconds apart: the median of the per-round
    # ratios cancels slow drift in machine load better than a ratio of overall medians.
    ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    verdict = "PASS" if abs(ratio - 1) <= TOLERANCE else "FAIL"
    print(f"medians over rounds: cnnstat {statistics.median(ours):.3f} ms, "
          f"torch.utils.benchmark {statistics.median(theirs):.3f} ms "
          f"(ratio {statistics.median(ours) / statistics.median(theirs):.3f})")
    print(f"median of per-round ratios: {ratio:.3f} (target 1 +/- {TOLERANCE:.0%}): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
