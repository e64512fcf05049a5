"""Rendering of `cnnstat time`: rich tables, the JSON `timing` section, CSV and Markdown.

No measuring here; it reads a `cnnstat.timing.TimingReport` (never imports torch).
One unit per column: FLOP/s columns share the SI prefix of their largest value.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cnnstat import fmt

RUN_FIELDS = ("mode", "batch_requested", "batch", "median_ms", "q1_ms", "q3_ms", "iqr_ms",
              "p90_ms", "min_ms", "mean_ms", "iters", "warmup_iters", "images_per_s", "flops",
              "achieved_flops_per_s", "peak_flops_per_s", "mfu", "mfu_spec",
              "peak_memory_bytes", "device", "device_name", "dtype", "torch", "notes")
LAYER_FIELDS = ("name", "kind", "median_ms", "time_share", "flops", "flops_share",
                "bytes_moved", "intensity_flops_per_byte", "achieved_flops_per_s",
                "achieved_bytes_per_s", "bound", "roofline_fraction")
SLOW_FACTOR = 1.5
FLOPS_NOTE = ("Achieved FLOP/s = cnnstat's FLOPs (2 x MACs, docs/conventions.md) / median "
              "latency. MFU = achieved / the peak measured now by a large matmul in the same "
              "dtype.")


def ms(value: float) -> str:
    return f"{value:,.3f}"


def rate(value: float) -> str:
    return f"{value:,.1f}"


def pct(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.1f}"


def _flops_unit(values: list[float | None]) -> tuple[int, str]:
    scale, suffix = fmt.si_unit([int(v) for v in values if v is not None])
    return scale, f"{suffix}FLOP/s"


def human_rate(value: float, unit: str) -> str:
    """One rate with its own SI prefix: 35.12 GFLOP/s, 3.35 TB/s."""
    scale, suffix = fmt.si_unit([int(value)])
    return f"{value / scale:,.2f} {suffix}{unit}"


def _scaled(value: float | None, scale: int) -> str:
    return "n/a" if value is None else fmt.scaled(round(value), scale)


def _title(model: str, timing: Any, what: str) -> str:
    env = timing.env
    layout = "channels-last" if env.channels_last else "channels-first"
    compiled = "torch.compile" if env.compiled else "eager"
    plural = "" if env.threads == 1 else "s"
    threads = f", {env.threads} thread{plural}" if env.device == "cpu" else ""
    return (f"{model}: {what} on {env.device_name} ({env.device}{threads}) | torch "
            f"{env.torch_version} | {env.dtype} | {layout} | {compiled}")


def runs_table(model: str, timing: Any, runs: tuple, what: str) -> Table:
    peak = timing.peak_flops_per_s
    scale, unit = _flops_unit([r.achieved_flops_per_s for r in runs] + [peak])
    train = what.startswith("training")
    table = Table(box=box.SIMPLE_HEAD, title=_title(model, timing, what), title_justify="left")
    headers = ["Batch", "Median (ms)", "IQR (ms)", "p90 (ms)", "Images/s",
               f"Achieved ({unit})", f"Peak, measured ({unit})", "MFU (%)"]
    if train:
        headers.append("Peak memory")
    for header in headers:
        table.add_column(header, justify="right", overflow="fold")
    for r in runs:
        batch = str(r.batch) if r.batch == r.batch_requested else \
            f"{r.batch} (asked {r.batch_requested})"
        cells = [batch, ms(r.median_ms), ms(r.stats.iqr_ms), ms(r.stats.p90_ms),
                 rate(r.images_per_s), _scaled(r.achieved_flops_per_s, scale),
                 _scaled(peak, scale), pct(r.mfu(peak))]
        if train:
            cells.append(fmt.human(r.peak_memory_bytes, binary=True))
        table.add_row(*cells)
    return table


def _method_lines(timing: Any) -> list[str]:
    method, runs = timing.method(), timing.runs + timing.train
    warmup = ", ".join(sorted({str(r.warmup_iters) for r in runs}))
    iters = ", ".join(sorted({str(r.iters) for r in runs}, key=int))
    warmup_text = f"warm-up until stable ({warmup} iterations)" \
        if method["warmup"] == "until stable" else f"{method['warmup']} warm-up iterations"
    lines = [f"method: {warmup_text}, then {iters} timed iterations each; {method['clock']}; "
             "median, IQR = q3 - q1, p90.", FLOPS_NOTE]
    if timing.train:
        lines.append("training step = forward + backward + SGD step; its FLOPs are 3 x the "
                     f"forward's (an estimate); peak memory: {timing.train[0].peak_memory_kind}.")
    return lines


def _peak_lines(timing: Any) -> list[str]:
    peak = timing.peak
    if peak is None:
        return ["peak: not measured (--no-peak); MFU n/a."]
    lines = [f"peak, measured now: {peak.matmul_n}x{peak.matmul_n} {peak.math_mode} matmul "
             f"{human_rate(peak.matmul_flops_per_s, 'FLOP/s')}; copy bandwidth "
             f"{human_rate(peak.bandwidth_bytes_per_s, 'B/s')}; ridge point "
             f"{peak.ridge_flops_per_byte:,.1f} FLOP/byte."]
    if peak.spec is not None:
        spec_flops = peak.spec_flops_per_s
        text = "n/a" if spec_flops is None else human_rate(spec_flops, "FLOP/s")
        mfus = ", ".join(f"batch {r.batch}: {pct(r.mfu(spec_flops))}%" for r in timing.runs)
        bandwidth = human_rate(peak.spec.bandwidth_tb_s * 1e12, "B/s")
        lines.append(f"spec sheet ({peak.spec.name}, {peak.math_mode} dense): {text}, "
                     f"{bandwidth}; MFU vs spec sheet: {mfus}.")
    return lines


def per_layer_table(per_layer: Any) -> Table:
    rows = per_layer.layers
    flops_scale, flops_unit = fmt.si_unit([r.flops for r in rows])
    bytes_scale, bytes_unit = fmt.si_unit([r.bytes_moved for r in rows], binary=True)
    rate_scale, rate_unit = _flops_unit([r.achieved_flops_per_s for r in rows])
    table = Table(box=box.SIMPLE_HEAD, title_justify="left",
                  title=f"per layer at batch {per_layer.batch} ({per_layer.dtype}, "
                        f"{per_layer.method}, median of {per_layer.iters})")
    headers = ("Layer", "Kind", "Time (ms)", "Time %", f"FLOPs ({flops_unit})", "FLOPs %",
               f"Bytes ({bytes_unit})", "FLOP/B", rate_unit, "Bound", "% roofline")
    # Names are what users search for: other columns fold before a name is split.
    name_width = min(max((len(r.name) for r in rows), default=5), 48)
    table.add_column("Layer", overflow="fold", min_width=name_width)
    for header in headers[1:]:
        table.add_column(header, justify="left" if header in ("Kind", "Bound") else "right",
                         overflow="fold")
    for r in rows:
        table.add_row(r.name, r.kind, ms(r.median_ms), pct(r.time_share),
                      fmt.scaled(r.flops, flops_scale), pct(r.flops_share),
                      fmt.scaled(r.bytes_moved, bytes_scale),
                      "n/a" if r.intensity is None else f"{r.intensity:,.1f}",
                      _scaled(r.achieved_flops_per_s, rate_scale), r.bound or "n/a",
                      pct(r.roofline_fraction))
    return table


def _per_layer_lines(per_layer: Any) -> list[str]:
    def names(rows, share) -> str:
        return ", ".join(f"{r.name} ({pct(share(r))}%)" for r in rows) or "none"

    by_time, by_flops = per_layer.top_by_time(), per_layer.top_by_flops()
    hot = [r.name for r in by_time if r.time_share > SLOW_FACTOR * (r.flops_share or 0)]
    lines = [f"dominate time: {names(by_time, lambda r: r.time_share)}",
             f"dominate FLOPs: {names(by_flops, lambda r: r.flops_share)}",
             f"slow for their FLOPs (top by time, time share > {SLOW_FACTOR} x FLOPs share): "
             f"{', '.join(hot) or 'none'}",
             f"sum of layer medians {ms(per_layer.layers_total_ms)} ms; whole forward with "
             f"hooks {ms(per_layer.hooked_forward_ms)} ms.",
             "bytes moved = (inputs + output + weights and buffers) x dtype bytes; bound: "
             "compute when FLOP/byte reaches the ridge point, else memory; views move 0."]
    if any((r.roofline_fraction or 0) > 1 for r in per_layer.layers):
        lines.append("over 100% of the roofline: that layer's data fit in cache, faster than "
                     "the large copy that measured the memory bandwidth.")
    return lines + list(per_layer.notes)


def render(model: str, timing: Any) -> Group:
    parts: list[Any] = [runs_table(model, timing, timing.runs, "forward latency")]
    if timing.train:
        parts.append(runs_table(model, timing, timing.train, "training step"))
    lines = _method_lines(timing) + _peak_lines(timing)
    lines += [f"note: {r.mode}, batch {r.batch_requested}: {n}"
              for r in timing.runs + timing.train for n in r.notes]
    parts += [Text(line) for line in lines]
    if timing.per_layer is not None:
        parts += [Text(""), per_layer_table(timing.per_layer)]
        parts += [Text(line) for line in _per_layer_lines(timing.per_layer)]
    return Group(*parts)


def to_json(report: Any, timing: Any) -> str:
    """The model report (docs/json.md) with a `timing` section (docs/timing.md)."""
    return json.dumps({**report.to_dict(), "timing": timing.to_dict()}, indent=2)


def to_csv(timing: Any) -> str:
    """One row per timed run (forward and train); with --per-layer, one row per layer."""
    buf = io.StringIO()
    if timing.per_layer is not None:
        writer = csv.DictWriter(buf, LAYER_FIELDS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(layer.to_dict() for layer in timing.per_layer.layers)
        return buf.getvalue()
    writer = csv.DictWriter(buf, RUN_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    data = timing.to_dict()
    env = {"device": data["device"], "device_name": data["device_name"],
           "dtype": data["dtype"], "torch": data["torch"]}
    for row in data["runs"] + data["train"]:
        writer.writerow({**row, **env, "peak_flops_per_s": timing.peak_flops_per_s,
                         "notes": "; ".join(row["notes"])})
    return buf.getvalue()


def to_markdown(model: str, timing: Any) -> str:
    peak = timing.peak_flops_per_s
    lines = [f"**{_title(model, timing, 'timing')}**", "",
             "| Mode | Batch | Median (ms) | IQR (ms) | p90 (ms) | Images/s | Achieved "
             "(TFLOP/s) | MFU (%) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in timing.runs + timing.train:
        lines.append(f"| {r.mode} | {r.batch} | {ms(r.median_ms)} | {ms(r.stats.iqr_ms)} | "
                     f"{ms(r.stats.p90_ms)} | {rate(r.images_per_s)} | "
                     f"{r.achieved_flops_per_s / 1e12:,.4f} | {pct(r.mfu(peak))} |")
    lines += [""] + [f"_{line}_" for line in _method_lines(timing) + _peak_lines(timing)]
    if timing.per_layer is not None:
        lines += ["", "| Layer | Kind | Time (ms) | Time % | FLOPs | FLOPs % | Bytes | "
                  "FLOP/byte | Bound |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in timing.per_layer.layers:
            intensity = "n/a" if r.intensity is None else f"{r.intensity:,.1f}"
            lines.append(f"| `{r.name}` | {r.kind} | {ms(r.median_ms)} | {pct(r.time_share)} "
                         f"| {fmt.human(r.flops)} | {pct(r.flops_share)} | "
                         f"{fmt.human(r.bytes_moved, binary=True)} | {intensity} | "
                         f"{r.bound or 'n/a'} |")
        lines += [""] + [f"_{line}_" for line in _per_layer_lines(timing.per_layer)]
    return "\n".join(lines) + "\n"
