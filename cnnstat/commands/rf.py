"""`cnnstat rf MODEL`: the receptive field of every layer (docs/receptive-field.md).

Size, effective stride (jump), centre of unit (0, 0) and effective padding per layer, in
input pixels; `--unit` maps one output unit to the input region it sees; `--empirical`
measures fields by gradient on the built module (cnnstat.empirical_rf, torch) and reports
the effective receptive field. Nothing here imports torch unless `--empirical` is given.
The rendering is report/rf_render.py's.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start
# (see check.py).

import sys
from typing import Annotated, Any

import typer

from cnnstat.commands.app import app
from cnnstat.commands.options import (
    BatchOpt,
    DepthOpt,
    Dtype,
    DtypeOpt,
    Format,
    FormatOpt,
    InputOpt,
    JsonOpt,
    KwargsOpt,
    ModelArg,
    NoColorOpt,
    StrictOpt,
    parse_depth,
)
from cnnstat.commands.output import emit
from cnnstat.errors import AnalysisError, UsageError, did_you_mean

LayerOpt = Annotated[str | None, typer.Option(
    "--layer", "-l", help="Show this layer only (its full dotted name).", show_default=False)]
UnitOpt = Annotated[str | None, typer.Option(
    "--unit", "-u", help="Y,X: the input region that output unit (Y, X) of --layer sees "
    "(D,Y,X for a volume or clip, L for a sequence).",
    show_default=False)]
EmpiricalOpt = Annotated[bool, typer.Option(
    "--empirical", help="Also measure fields by gradient on the built module (needs torch; "
    "at the end of each stage and the last spatial layer, or at --layer) and the effective "
    "receptive field (Luo et al. 2016).")]


@app.command("rf")
def rf(model: ModelArg, input: InputOpt = None, layer: LayerOpt = None, unit: UnitOpt = None,
       batch: BatchOpt = 1, format: FormatOpt = Format.table, as_json: JsonOpt = False,
       depth: DepthOpt = None, dtype: DtypeOpt = Dtype.fp32, empirical: EmpiricalOpt = False,
       no_color: NoColorOpt = False, strict: StrictOpt = False,
       kwargs: KwargsOpt = None) -> None:
    """Receptive field per layer: size, effective stride, start, effective padding.

    A field depends on neither --batch nor --dtype: both are accepted and change nothing."""
    from cnnstat.commands.torch_cmds import resolve_model, traced_input

    graph = resolve_model(model, input, kwargs).graph  # a reference is traced at --input
    input = traced_input(model, input)
    fmt = Format.json if as_json else format
    depth = parse_depth(depth)
    names = [n.name for n in graph.nodes[1:]]
    if layer is not None and layer not in names:
        raise UsageError(f"no layer '{layer}' in '{graph.meta.name}'{did_you_mean(layer, names)}")
    if input is not None and "," in input:
        if unit is not None or empirical:
            raise UsageError("--unit and --empirical take one input, not a sweep")
        _sweep(graph, [size.strip() for size in input.split(",")], layer, depth, fmt, strict,
               no_color)
        return
    shape, shapes, fields, diagnostics = _fields(graph, input, strict)
    if unit is not None:
        if layer is None:
            raise UsageError("--unit needs --layer: which layer's unit?")
        _emit_unit(graph.meta.name, layer, _parse_unit(unit, len(shape) - 1), fields[layer],
                   shapes[layer], fmt, no_color)
        return
    if empirical and len(shape) != 3:
        raise UsageError("--empirical measures image models [C, H, W]; this input is "
                         f"{'x'.join(map(str, shape))}")
    rows = [_row(graph.node(n), shapes[n], fields[n]) for n in ([layer] if layer else names)]
    extra: dict[str, Any] = {}
    if empirical:
        extra = _measure(graph, shape, layer, fields, shapes, rows)
    _emit_fields(graph, shape, rows, extra, list(diagnostics), depth, fmt, no_color)


def _fields(graph, size: str | None, strict: bool):
    """Input shape, shapes, fields and diagnostics at one input; under --strict a layer
    whose field is unknown exits 3."""
    from cnnstat.analyzers.engine import infer_shapes, resolve_input
    from cnnstat.analyzers.rf import receptive_fields
    from cnnstat.api import input_shape

    shape = resolve_input(graph, input_shape(size, graph))
    shapes = infer_shapes(graph, shape)
    fields, diagnostics = receptive_fields(graph, shapes)
    for line in diagnostics:
        print(line, file=sys.stderr)
    if strict and diagnostics:
        raise AnalysisError(f"{len(diagnostics)} layer field(s) are unknown and --strict is set")
    return shape, shapes, fields, diagnostics


def _emit_fields(graph, shape, rows, extra, diagnostics, depth, fmt: Format,
                 no_color: bool) -> None:
    from cnnstat.analyzers.rf_fields import axis_names
    from cnnstat.report import rf_render as out

    head = {"schema": out.SCHEMA, "model": graph.meta.name, "source": graph.meta.source,
            "input_shape": [1, *shape], "axes": list(axis_names(len(shape) - 1))}
    folded = None
    if fmt is not Format.json:  # JSON always lists every layer
        rows, folded = out.fold_to_fit(rows, depth, fmt is Format.table)
    emit(fmt, no_color, json=lambda: out.fields_json(head, rows, extra, diagnostics),
         csv=lambda: out.fields_csv(rows, "erf" in extra, tuple(head["axes"])),
         markdown=lambda: out.fields_markdown(head, rows, extra),
         table=lambda console: console.print(out.fields_table(head, rows, extra, folded)))


def _sweep(graph, sizes: list[str], layer: str | None, depth: int | str | None, fmt: Format,
           strict: bool, no_color: bool) -> None:
    """The fields at each input (a field does not depend on it; whether it exceeds the
    input does)."""
    from cnnstat.report import rf_render as out

    runs = []
    for size in sizes:
        shape, shapes, fields, diagnostics = _fields(graph, size, strict)
        names = [layer] if layer else [n.name for n in graph.nodes[1:]]
        runs.append({"input_shape": [1, *shape], "diagnostics": list(diagnostics),
                     "layers": [_row(graph.node(n), shapes[n], fields[n]) for n in names]})
    head = {"model": graph.meta.name, "source": graph.meta.source}
    plain = out.sweep_plain(graph.meta.name, runs, depth, fmt is Format.table)
    emit(fmt, no_color, json=lambda: out.sweep_json(head, runs), csv=plain.csv,
         markdown=plain.markdown, table=lambda console: console.print(plain.table()))


def _row(node, out_shape: tuple[int, ...], field) -> dict[str, Any]:
    return {"name": node.name, "kind": node.kind, "output_shape": list(out_shape),
            "rf": None if field is None else field.to_dict()}


def _parse_unit(text: str, rank: int) -> tuple[int, ...]:
    """Y,X for an image; L for a sequence; D,Y,X for a volume or clip."""
    forms = {1: "L (one integer)", 2: "Y,X (two integers)", 3: "D,Y,X (three integers)"}
    try:
        unit = tuple(int(part) for part in text.split(","))
    except ValueError:
        unit = ()
    if len(unit) != rank:
        raise UsageError(f"--unit takes {forms.get(rank, f'{rank} integers')} for this "
                         f"input, got '{text}'")
    return unit


def _measure(graph, shape, layer, fields, shapes, rows) -> dict[str, Any]:
    """Adds 'measured' to the measured rows; returns the ERF section."""
    from cnnstat import empirical_rf

    targets = [layer] if layer else empirical_rf.checkpoints(graph, fields, shapes)
    if not targets:
        raise UsageError("no layer of this model has a local field to measure")
    print(f"measuring {len(targets)} layer(s) by gradient ...", file=sys.stderr)
    measured = empirical_rf.measure(graph, targets, shape)
    for row in rows:
        m = measured.get(row["name"])
        if m is not None:
            ok = m.agrees(fields[row["name"]])
            row["measured"] = {"size": list(m.size), "agrees": ok,
                               "spans": [list(a.span or ()) for a in (m.h, m.w)],
                               "units": [m.h.unit, m.w.unit]}
            if not ok:
                print(f"warning: layer '{row['name']}': measured field {m.size} differs from "
                      f"the analytic one {fields[row['name']].size}", file=sys.stderr)
    erf = empirical_rf.effective_rf(graph, targets[-1], shape)
    return {"erf": {"layer": erf.layer, "size": erf.side, "mass": erf.mass,
                    "input": erf.input_side, "clipped": erf.clipped, "seeds": erf.seeds}}


def _emit_unit(model: str, layer: str, unit: tuple[int, ...], field, out_shape, fmt: Format,
               no_color: bool) -> None:
    import json

    from cnnstat.analyzers.rf_fields import axis_names
    from cnnstat.report import rf_render as out

    rank = len(unit)
    limits = tuple(out_shape[2:]) if len(out_shape) == rank + 2 else (1,) * rank
    if not all(0 <= u < n for u, n in zip(unit, limits, strict=True)):
        raise UsageError(f"unit {','.join(map(str, unit))} is outside layer '{layer}', whose "
                         f"output is {'x'.join(map(str, limits))}")
    if field is None:
        raise UsageError(f"layer '{layer}' has no receptive field (see the diagnostics)")
    axes = axis_names(rank)
    unclipped = field.region(unit, clipped=False)
    clipped = field.region(unit, clipped=True)
    data = {"schema": out.SCHEMA, "model": model, "layer": layer, "unit": list(unit),
            "global": field.is_global, "image": list(field.image),
            "unclipped": out.region_dict(unclipped, axes),
            "clipped": out.region_dict(clipped, axes)}
    cells = out.unit_cells(unclipped, clipped, axes)
    emit(fmt, no_color, json=lambda: json.dumps(data, indent=2), csv=lambda: out.unit_csv(cells),
         markdown=lambda: out.unit_markdown(layer, unit, cells),
         table=lambda console: console.print(out.unit_table(model, layer, unit, field.image,
                                                            cells)))
