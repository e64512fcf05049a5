"""Command plumbing for torch modules: resolving a MODEL with --input/--kwargs, the
frontend's diagnostics, and `--crosscheck`. Nothing here imports torch at import time."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from cnnstat.commands.app import note
from cnnstat.commands.options import Format
from cnnstat.errors import UsageError


def resolve_model(model: str, input: str | list[str] | None, kwargs: str | None,
                  regions: int | None = None):
    """resolve() with the torch options: a module reference is traced at `--input`
    (a single size, or one per tensor its forward takes; a sweep traces at the default),
    built with `--kwargs`, and a detector keeps `regions` proposals. Says on stderr which
    spec an alias picked, or how the frontend built the graph."""
    from cnnstat.resolver import resolve

    is_reference = ":" in model
    if kwargs is not None and not is_reference:
        raise UsageError("--kwargs only applies to a module reference (pkg.mod:Class, "
                         "file.py:factory, torchvision:NAME)")
    if isinstance(input, list) and len(input) == 1:
        input = input[0]
    if isinstance(input, list) and not is_reference:
        raise UsageError("--input is given once per tensor input of a module reference; "
                         "a spec takes one input")
    trace_input = input if isinstance(input, list) or (input is not None and "," not in input) \
        else None
    if is_reference:
        resolved = resolve(model, input=trace_input, kwargs=kwargs, regions=regions)
    else:  # an .onnx file is shape-inferred at --input; specs ignore it here
        resolved = resolve(model, input=trace_input)
    for line in (resolved.note, *resolved.diagnostics):
        if line:
            note(line)
    return resolved


def traced_input(model: str, input: str | None) -> str | None:
    """The input to analyze a resolved MODEL at: a module reference was traced at a single
    --input already (a detector at what its transform makes of it), so None, its graph's
    own input; a spec, an .onnx file or a sweep keeps `input`."""
    if ":" in model and input is not None and "," not in input:
        return None
    return input


def with_diagnostics(report, resolved):
    """The report, carrying what the frontend said about how it built the graph."""
    if not resolved.diagnostics:
        return report
    return dataclasses.replace(report, diagnostics=(*report.diagnostics, *resolved.diagnostics))


def emit_with_crosscheck(resolved, report, view: str, format: Format, depth: int | None,
                         no_color: bool, emit: Callable[..., None], extra: dict) -> None:
    """The view, then fvcore / torch / cnnstat per operator (JSON: the report, with
    what the command adds to it (`extra`: notes, min_input, memory) and a `crosscheck`
    member)."""
    check = _crosscheck(resolved, report)
    if format is Format.json:
        from cnnstat.report.export import to_json

        print(to_json(report, {**extra, "crosscheck": check.to_dict()}))
        return
    emit(report, view, format, depth, no_color, extra)
    if format is Format.table:
        from cnnstat.report.console import stdout_console

        stdout_console(no_color).print(render(check))
    else:
        print(json.dumps({"crosscheck": check.to_dict()}, indent=2))


def _crosscheck(resolved, report):
    from cnnstat.frontends.crosscheck import crosscheck

    module = resolved.module
    if module is None:  # a spec: its module from the builder, weights on meta
        import torch

        from cnnstat.builder import build_module

        with torch.device("meta"):
            module = build_module(resolved.graph, report.input_shape[1:])
    return crosscheck(module, report)


def render(check: Any):
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from cnnstat import fmt

    table = Table(box=box.SIMPLE_HEAD, title_justify="left", caption_justify="left",
                  title=f"crosscheck at input {fmt.shape(check.input_shape)}: cnnstat vs "
                        "fvcore vs torch, per operator",
                  caption="fvcore: 1 per multiply-add plus the element-wise work it has "
                          "handlers for; torch: 2 per multiply-add, nothing else.")
    for header in ("Operator", "cnnstat MACs", "cnnstat other ops", "fvcore", "torch FLOPs",
                   "Why"):
        table.add_column(header, justify="left" if header in ("Operator", "Why") else "right",
                         overflow="fold")
    for row in check.rows:
        table.add_row(row.operator, fmt.exact(row.cnnstat_macs),
                      fmt.exact(row.cnnstat_other_ops), fmt.exact(row.fvcore),
                      fmt.exact(row.torch_flops), row.explanation)
    table.add_row("Total", fmt.exact(check.cnnstat_macs), fmt.exact(check.cnnstat_other_ops),
                  fmt.exact(check.fvcore_total), fmt.exact(check.torch_total), "", style="bold")
    lines = [*check.summary, *_skipped(check), *check.notes]
    return Group(table, *(Text(line) for line in lines))


def _skipped(check: Any) -> list[str]:
    def listing(counts: dict[str, int]) -> str:
        return ", ".join(f"{op.removeprefix('aten::')} x{n}" for op, n in
                         sorted(counts.items())) or "none"

    return [f"fvcore skipped, reported as unsupported: {listing(check.fvcore_unsupported)}",
            f"fvcore skipped silently (its ignore list): {listing(check.fvcore_ignored)}",
            f"torch ran without counting (data movement left out): "
            f"{listing(check.torch_uncounted)}"]
