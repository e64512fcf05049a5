"""Engine scaling on generated specs of 1k, 10k and 100k layers (issue 11).

    python benchmarks/scaling.py [--sizes 1000,10000,100000] [--markdown]

Two shapes of network, both written with `repeat` so the YAML stays small and the
expansion, not the parser, is what grows:

- sequential: conv-bn-relu, over and over (a 100k-layer VGG);
- branched: an Inception-like module (four parallel branches merged by concat) followed by
  a residual block (a two-conv branch added to an identity shortcut), over and over.

Each is analyzed in this process, phase by phase (YAML parse, expansion into the graph,
analysis: shapes, params, MACs, receptive fields, totals; the JSON report as the CLI
writes it), timed with
`time.process_time` (CPU seconds: the machine is shared, and CPU time is what the code
costs) and `perf_counter` (wall), best of a few repeats, then once more under
`tracemalloc` for the peak of Python allocations. Linear growth means a constant time and
memory per layer: the table gives the per-layer ratios between consecutive sizes (1.0 is
perfectly linear; 10 would be quadratic at a 10x step). Never imports torch.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnstat.analyzers.engine import analyze_graph  # noqa: E402
from cnnstat.report.export import to_json  # noqa: E402
from cnnstat.spec.loader import build_graph  # noqa: E402
from cnnstat.spec.yaml_tree import parse  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
LINEAR_LIMIT = 1.5  # per-layer ratio above which a step is called superlinear
TARGET_100K_S = 3.0  # issue 11: 100k layers in < 3 s

SEQUENTIAL_LAYERS_PER_STEP = 3
SEQUENTIAL = """
name: sequential_{n}
input: [16, 32, 32]
layers:
  - {{repeat: {steps}, layers: [{{conv: 16, k: 3, p: 1, bias: false}}, bn, relu]}}
"""

# One step: inception (1 + 2 + 2 + 2 layers, concat) = 8, residual (conv bn relu conv bn,
# add, relu) = 7.
BRANCHED_LAYERS_PER_STEP = 15
BRANCHED = """
name: branched_{n}
input: [32, 32, 32]
blocks:
  inception:
    layers:
      - parallel:
          - [{{conv: 8, k: 1}}]
          - [{{conv: 8, k: 1}}, {{conv: 8, k: 3, p: 1}}]
          - [{{conv: 8, k: 1}}, {{conv: 8, k: 5, p: 2}}]
          - [{{maxpool: 3, s: 1, p: 1}}, {{conv: 8, k: 1}}]
        merge: concat
  residual:
    layers:
      - parallel:
          body: [{{conv: 32, k: 3, p: 1, bias: false}}, bn, relu,
                 {{conv: 32, k: 3, p: 1, bias: false}}, bn]
          shortcut: []
        merge: add
      - relu
layers:
  - {{repeat: {steps}, name: stage, layers: [inception, residual]}}
"""


def spec_text(shape: str, layers: int) -> str:
    """A spec of about `layers` layers (rounded down to whole steps, plus the input)."""
    if shape == "sequential":
        return SEQUENTIAL.format(n=layers, steps=layers // SEQUENTIAL_LAYERS_PER_STEP)
    return BRANCHED.format(n=layers, steps=layers // BRANCHED_LAYERS_PER_STEP)


@dataclass
class Phases:
    layers: int
    cpu_s: dict[str, float]
    wall_s: dict[str, float]
    peak_bytes: int = 0


def _phases(text: str) -> list[tuple[str, Callable[[object], object]]]:
    return [
        ("parse", lambda _: parse(text, "generated.yaml")),
        ("expand", lambda root: build_graph(root, default_name="generated", source=None)),
        ("analyze", lambda graph: analyze_graph(graph)),
        ("json", lambda report: to_json(report)),  # the CLI's writer
    ]


def run_once(text: str) -> tuple[dict[str, float], dict[str, float], int]:
    cpu: dict[str, float] = {}
    wall: dict[str, float] = {}
    value: object = None
    layers = 0
    for name, step in _phases(text):
        c0, w0 = time.process_time(), time.perf_counter()
        value = step(value)
        cpu[name], wall[name] = time.process_time() - c0, time.perf_counter() - w0
        if name == "expand":
            layers = len(value) - 1  # type: ignore[arg-type]
    return cpu, wall, layers


def measure(shape: str, size: int, repeats: int) -> Phases:
    text = spec_text(shape, size)
    best: Phases | None = None
    for _ in range(repeats):
        gc.collect()
        cpu, wall, layers = run_once(text)
        if best is None or sum(cpu.values()) < sum(best.cpu_s.values()):
            best = Phases(layers, cpu, wall)
    gc.collect()
    tracemalloc.start()
    run_once(text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    best.peak_bytes = peak  # type: ignore[union-attr]
    return best  # type: ignore[return-value]


def per_layer_ratios(rows: list[Phases], value: Callable[[Phases], float]) -> list[str]:
    """Per-layer cost at this size / per-layer cost at the previous size."""
    out = ["-"]
    for before, after in zip(rows, rows[1:], strict=False):
        out.append(f"{(value(after) / after.layers) / (value(before) / before.layers):.2f}")
    return out


def table(shape: str, rows: list[Phases]) -> list[str]:
    total = [sum(r.cpu_s.values()) for r in rows]
    cpu_ratio = per_layer_ratios(rows, lambda r: sum(r.cpu_s.values()))
    mem_ratio = per_layer_ratios(rows, lambda r: r.peak_bytes)
    lines = [f"**{shape}**", "",
             "| layers | parse | expand | analyze | json | total CPU (s) | total wall (s) "
             "| us/layer | per-layer time ratio | peak MiB | per-layer memory ratio |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(rows):
        phases = " | ".join(f"{r.cpu_s[p]:.3f}" for p in ("parse", "expand", "analyze", "json"))
        lines.append(f"| {r.layers:,} | {phases} | {total[i]:.2f} | "
                     f"{sum(r.wall_s.values()):.2f} | {total[i] / r.layers * 1e6:.0f} | "
                     f"{cpu_ratio[i]} | {r.peak_bytes / 2**20:.1f} | {mem_ratio[i]} |")
    return lines


def verdict(rows: list[Phases]) -> str:
    cpu = [float(x) for x in per_layer_ratios(rows, lambda r: sum(r.cpu_s.values()))[1:]]
    mem = [float(x) for x in per_layer_ratios(rows, lambda r: r.peak_bytes)[1:]]
    linear = all(x <= LINEAR_LIMIT for x in cpu + mem)
    largest = rows[-1]
    seconds = sum(largest.cpu_s.values())
    text = (f"{'linear' if linear else 'NOT linear'} (every per-layer ratio <= "
            f"{LINEAR_LIMIT}: time {', '.join(map(str, cpu))}; memory "
            f"{', '.join(map(str, mem))})")
    if largest.layers >= 100_000:
        met = "met" if seconds < TARGET_100K_S else "not met"
        text += f"; {largest.layers:,} layers in {seconds:.2f} s CPU (target < 3 s: {met})"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeats", type=int, default=3, help="best of N (sizes < 100k)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    lines = ["CPU seconds per phase (best of "
             f"{args.repeats} below 100k layers, 1 at 100k); peak MiB: tracemalloc's peak "
             "over all phases.", ""]
    for shape in ("sequential", "branched"):
        rows = [measure(shape, n, args.repeats if n < 100_000 else 1) for n in sizes]
        lines += [*table(shape, rows), "", f"{shape}: {verdict(rows)}", ""]
        print(f"{shape} done", file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
