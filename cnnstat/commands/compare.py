"""`cnnstat compare A B [C ...]`: models side by side."""

# No `from __future__ import annotations`: typer reads these signatures at every start
# (see check.py).

from typing import Annotated

import typer

from cnnstat.commands.app import app, error, note
from cnnstat.commands.options import (
    BatchOpt,
    Dtype,
    DtypeOpt,
    Format,
    FormatOpt,
    InputOpt,
    JsonOpt,
    NoColorOpt,
)
from cnnstat.commands.output import emit
from cnnstat.errors import CnnstatError, UsageError, did_you_mean

SORT_KEYS = ("params", "macs", "flops", "other_ops", "activation_bytes", "depth", "min_input")


def _expand(models: list[str], family: str | None) -> list[str]:
    from cnnstat.analyzers.engine import analyze_graph
    from cnnstat.resolver import load_zoo, zoo_names

    if family is None:
        return models
    graphs = {n: load_zoo(n) for n in zoo_names()}
    members = [n for n, g in graphs.items() if g.meta.family == family]
    # smallest first (names sort 16gf before 1_6gf and 400mf after 32gf)
    members.sort(key=lambda n: analyze_graph(graphs[n], fields=False).totals.macs)
    if not members:
        families = {g.meta.family for g in graphs.values()} - {None}
        raise UsageError(f"no family '{family}'{did_you_mean(family, families)}")
    return models + [m for m in members if m not in models]


def _column(model: str, input: str | None, batch: int, dtype: str, time_on: str | None = None):
    """Analyze one model; a failure becomes the column's error, never the others'."""
    from cnnstat.analyzers import analyze_graph
    from cnnstat.analyzers.compare import ModelColumn, metric_values
    from cnnstat.analyzers.min_input import min_input_side
    from cnnstat.api import input_shape
    from cnnstat.commands.torch_cmds import traced_input
    from cnnstat.resolver import resolve

    try:
        # a module reference is traced at the compared input (a spec ignores it)
        resolved = resolve(model, input=input if input and "," not in input else None)
        if resolved.note:
            note(resolved.note)
        graph = resolved.graph
        shape = input_shape(traced_input(model, input), graph)
        report = analyze_graph(graph, shape, batch=batch, dtype=dtype)
        # the minimum input is a square image's side: none for sequences, clips, tokens
        image = len(shape or graph.meta.input or ()) == 3
        extra = {"min_input": lambda: _min_input(graph, min_input_side) if image else None,
                 "reduction_savings": lambda: _reduction_savings(graph, shape)}
        if time_on is not None:
            extra.update(_timing(graph, shape, batch, time_on))
        return ModelColumn(report.model, report, metric_values(report, graph, extra))
    except CnnstatError as e:
        return ModelColumn(model, error=str(e), exit_code=e.exit_code)


def _min_input(graph, min_input_side) -> int | None:
    """None (shown n/a) for a traced module with opaque nodes, valid at its traced input
    only, and for a graph whose smaller inputs fail (a reshape to fixed sizes, as a traced
    detector head has): the other metrics of the column still stand."""
    from cnnstat.errors import ShapeError

    if any(node.kind == "opaque" for node in graph):
        return None
    try:
        return min_input_side(graph)
    except ShapeError:
        return None


def _timing(graph, shape, batch: int, device: str) -> dict:
    """Latency and throughput rows (imports torch: only with --time)."""
    from cnnstat.timing import time_model

    result = time_model(graph, shape, batch, device)
    note(f"{graph.meta.name}: timed on {result.env.device_name}, batch {result.batch}")
    return {"latency_ms": lambda: result.median_ms, "images_per_s": lambda: result.images_per_s}


def _reduction_savings(graph, shape) -> int | None:
    """MACs the model's 1x1 reductions save (baseline - actual), from the savings analyzer."""
    try:
        from cnnstat.analyzers.savings import savings_totals
    except ImportError:
        return None
    return savings_totals(graph, shape).saved.macs


@app.command("compare")
def compare(
    models: Annotated[list[str] | None, typer.Argument(
        help="Models: zoo names, aliases (vgg, inception), spec paths.", show_default=False)]
    = None,
    family: Annotated[str | None, typer.Option(
        "--family", help="Add every zoo model of this family (resnet, vgg, ...).",
        show_default=False)] = None,
    input: InputOpt = None,
    batch: BatchOpt = 1,
    dtype: DtypeOpt = Dtype.fp32,
    sort: Annotated[str | None, typer.Option(
        "--sort", help=f"Order models by a metric: {', '.join(SORT_KEYS)}.",
        show_default=False)] = None,
    per_stage: Annotated[bool, typer.Option(
        "--per-stage", help="Also compare params and MACs per resolution stage.")] = False,
    plot: Annotated[str | None, typer.Option(
        "--plot", help="Write a PNG or SVG of params, MACs and receptive field along depth "
        "(needs matplotlib: pip install 'cnnstat\\[plot]').", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --plot file.")]
    = False,
    time: Annotated[bool, typer.Option(
        "--time", help="Also measure latency and throughput (builds each model; imports "
        "torch; see `cnnstat time` for every option).")] = False,
    device: Annotated[str, typer.Option(
        "--device", help="Where --time runs: auto, cpu, cuda[:N], mps.")] = "auto",
    format: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    no_color: NoColorOpt = False,
) -> None:
    """Compare models side by side: params, MACs, memory, depth, receptive field, ..."""
    from cnnstat.analyzers.compare import sort_columns

    names = _expand(list(models or []), family)
    if not names:
        raise UsageError("give at least one model, or --family")
    if sort is not None and sort not in SORT_KEYS:
        raise UsageError(f"--sort takes one of {', '.join(SORT_KEYS)}, got '{sort}'"
                         f"{did_you_mean(sort, SORT_KEYS)}")
    if plot is not None:
        from cnnstat.files import check_writable

        check_writable(plot, force)  # fail before the work, not after
    time_on = device if time else None
    columns = sort_columns([_column(m, input, batch, dtype.value, time_on) for m in names],
                           sort)
    _emit(columns, Format.json if as_json else format, per_stage, no_color)
    if plot is not None:
        from cnnstat.report.compare_plot import write_plot

        write_plot([c for c in columns if c.error is None], plot, force=force)
        note(f"wrote {plot}")
    failed = [c for c in columns if c.error is not None]
    for c in failed:
        error(f"{c.name}: {c.error}")
    if failed:
        raise typer.Exit(max(c.exit_code for c in failed))


def _emit(columns, format: Format, per_stage: bool, no_color: bool) -> None:
    from cnnstat.report import compare_render as render
    from cnnstat.report.compare_detection import explanation

    lines = explanation(columns)

    def table(console) -> None:
        from rich.text import Text

        ascii_only = not (console.encoding or "").lower().startswith("utf")
        console.print(render.compare_table(columns, ascii_only))
        if per_stage and any(c.error is None for c in columns):
            console.print(render.stage_table(columns))
        for line in lines:
            console.print(Text(line))

    emit(format, no_color, json=lambda: render.compare_json(columns, lines),
         csv=lambda: render.compare_csv(columns),
         markdown=lambda: render.compare_markdown(columns), table=table)
