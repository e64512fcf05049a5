"""`cnnstat rf MODEL`: the receptive field of every layer (docs/receptive-field.md).

Size, effective stride (jump), centre of unit (0, 0) and effective padding per layer, in
input pixels; `--unit` maps one output unit to the input region it sees; `--empirical`
measures fields by gradient on the built module (cnnstat.empirical_rf, torch) and reports
the effective receptive field. Nothing here imports torch unless `--empirical` is given.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start
# (see check.py).

import csv
import io
import json
import sys
from fractions import Fraction
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
from cnnstat.errors import AnalysisError, UsageError, did_you_mean

SCHEMA = "cnnstat.rf/1"
SWEEP_SCHEMA = "cnnstat.rf-sweep/1"
CAPTION = (
    "Sizes, strides (jumps), starts and paddings are in input pixels, one value when h and w "
    "agree, else 'h, w'. Start: centre of output unit (0, 0)'s field; padding: how far that "
    "field reaches before pixel 0 (Araujo et al., Distill 2019). 'global': the whole image "
    "(global pooling, flatten, linear). With a fractional stride (transposed conv, "
    "upsampling) fields differ from unit to unit: size is the widest. See "
    "docs/receptive-field.md."
)

LayerOpt = Annotated[str | None, typer.Option(
    "--layer", "-l", help="Show this layer only (its full dotted name).", show_default=False)]
UnitOpt = Annotated[str | None, typer.Option(
    "--unit", "-u", help="Y,X: the input region that output unit (Y, X) of --layer sees.",
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
    depth = None if depth == "all" else depth
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
        _emit_unit(graph.meta.name, layer, _parse_unit(unit), fields[layer], shapes[layer], fmt,
                   no_color)
        return
    rows = [_row(graph.node(n), shapes[n], fields[n]) for n in ([layer] if layer else names)]
    extra: dict[str, Any] = {}
    if empirical:
        extra = _measure(graph, shape, layer, fields, shapes, rows)
    head = {"schema": SCHEMA, "model": graph.meta.name, "source": graph.meta.source,
            "input_shape": [1, *shape]}
    if fmt is not Format.json:
        rows = fold_rows(rows, depth)
    _emit(head, rows, extra, list(diagnostics), fmt, no_color)


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


def fold_rows(rows: list[dict[str, Any]], depth: int | None) -> list[dict[str, Any]]:
    """`--depth N`: one row per block N name levels deep, holding the field of its last
    layer (what the block's output sees)."""
    if depth is None:
        return rows
    blocks: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = ".".join(row["name"].split(".")[:depth])
        blocks[key] = row if key == row["name"] else {**row, "name": key, "kind": "block"}
    return list(blocks.values())


def _sweep(graph, sizes: list[str], layer: str | None, depth: int | None, fmt: Format,
           strict: bool, no_color: bool) -> None:
    """One field per layer (it does not depend on the input) and, per input, whether it
    exceeds that input."""
    runs = []
    for size in sizes:
        shape, shapes, fields, diagnostics = _fields(graph, size, strict)
        names = [layer] if layer else [n.name for n in graph.nodes[1:]]
        runs.append({"input_shape": [1, *shape], "diagnostics": list(diagnostics),
                     "layers": [_row(graph.node(n), shapes[n], fields[n]) for n in names]})
    if fmt is Format.json:
        print(json.dumps({"schema": SWEEP_SCHEMA, "model": graph.meta.name,
                          "source": graph.meta.source, "inputs": runs}, indent=2))
        return
    inputs = ["x".join(map(str, run["input_shape"][1:])) for run in runs]
    headers = ["Layer", "Kind", "RF size", "Stride"] + [f"Exceeds {i}" for i in inputs]
    table = []
    for rows in zip(*(fold_rows(run["layers"], depth) for run in runs), strict=True):
        cells = _cells(rows[-1], False)[:2] + _cells(rows[-1], False)[3:5]
        table.append(cells + [_cells(row, False)[-1] for row in rows])
    title = f"{graph.meta.name}: receptive fields, input sweep"
    render_plain(title, headers, table, fmt, no_color)


def render_plain(title: str, headers: list[str], rows: list[list[str]], fmt: Format,
                 no_color: bool) -> None:
    """A small table as CSV, Markdown, or a table on the console."""
    if fmt is Format.csv:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([headers, *rows])
        sys.stdout.write(buf.getvalue())
    elif fmt is Format.markdown:
        lines = [f"**{title}**", "", "| " + " | ".join(headers) + " |",
                 "|" + "|".join(["---"] * len(headers)) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in rows]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        from rich import box
        from rich.table import Table

        from cnnstat.report.console import stdout_console

        table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", caption=CAPTION,
                      caption_justify="left")
        for i, header in enumerate(headers):
            table.add_column(header, justify="left" if i < 2 else "right", overflow="fold")
        for cells in rows:
            table.add_row(*cells)
        stdout_console(no_color).print(table)


def _row(node, out_shape: tuple[int, ...], field) -> dict[str, Any]:
    return {"name": node.name, "kind": node.kind, "output_shape": list(out_shape),
            "rf": None if field is None else field.to_dict()}


def _parse_unit(text: str) -> tuple[int, int]:
    try:
        y, x = (int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--unit takes Y,X (two integers), got '{text}'") from None
    return y, x


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


# --- rendering ---------------------------------------------------------------------------------

COLUMNS = ("Layer", "Kind", "Output", "RF size", "Stride", "Start", "Eff. padding",
           "Exceeds input")


def _value(v: Any) -> str:
    """A JSON number or "p/q" string as text; exact decimals where they are short."""
    if v is None:
        return "-"
    if isinstance(v, str):
        frac = Fraction(v)
        den = frac.denominator
        while den % 2 == 0:
            den //= 2
        while den % 5 == 0:
            den //= 5
        return str(float(frac)) if den == 1 and len(str(float(frac))) <= 8 else v
    return str(v)


def _pair(values: list[Any]) -> str:
    a, b = (_value(v) for v in values)
    return a if a == b else f"{a}, {b}"


def _cells(row: dict[str, Any], empirical: bool) -> list[str]:
    rf = row["rf"]
    shape = "x".join(str(d) for d in row["output_shape"])
    if rf is None:
        cells = [row["name"], row["kind"], shape] + ["n/a"] * 5
    else:
        exceeds = "global" if rf["global"] else ("yes" if rf["exceeds_input"] else "no")
        cells = [row["name"], row["kind"], shape, _pair(rf["size"]), _pair(rf["stride"]),
                 _pair(rf["start"]), _pair(rf["padding"]), exceeds]
    if empirical:
        m = row.get("measured")
        cells += ["", ""] if m is None else [_pair(m["size"]), "ok" if m["agrees"] else "DIFFERS"]
    return cells


def _emit(head, rows, extra, diagnostics, fmt: Format, no_color: bool) -> None:
    empirical = "erf" in extra
    headers = list(COLUMNS) + (["Measured", "Check"] if empirical else [])
    if fmt is Format.json:
        print(json.dumps({**head, "layers": rows, **extra, "diagnostics": diagnostics},
                         indent=2))
    elif fmt is Format.csv:
        sys.stdout.write(_csv(rows, empirical))
    elif fmt is Format.markdown:
        lines = [f"**{head['model']}**: receptive fields at input "
                 f"`{'x'.join(map(str, head['input_shape']))}`", "",
                 "| " + " | ".join(headers) + " |",
                 "|" + "|".join(["---"] * 3 + ["---:"] * (len(headers) - 3)) + "|"]
        for row in rows:
            cells = _cells(row, empirical)
            cells[0] = f"`{cells[0]}`"
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"_{CAPTION}_", ""]
        if empirical:
            lines += [_erf_line(extra["erf"]), ""]
        sys.stdout.write("\n".join(lines))
    else:
        _print_table(head, rows, extra, headers, empirical, no_color)


def _print_table(head, rows, extra, headers, empirical: bool, no_color: bool) -> None:
    from rich import box
    from rich.table import Table

    from cnnstat.report.console import stdout_console

    shape = "x".join(map(str, head["input_shape"]))
    table = Table(box=box.SIMPLE_HEAD, title=f"{head['model']}: receptive fields at input "
                  f"{shape}", title_justify="left", caption=CAPTION, caption_justify="left")
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i < 3 else "right", overflow="fold")
    for row in rows:
        table.add_row(*_cells(row, empirical))
    console = stdout_console(no_color)
    console.print(table)
    if empirical:
        console.print(_erf_line(extra["erf"]))


def _erf_line(erf: dict[str, Any]) -> str:
    clipped = " (input smaller than the field: clipped)" if erf["clipped"] else ""
    return (f"Effective receptive field of {erf['layer']}: {erf['size']} px square holding "
            f"{erf['mass']:.0%} of the gradient (Luo et al. 2016; random init, "
            f"{erf['seeds']} seeds, input {erf['input']}x{erf['input']}{clipped}). "
            "Measured: nonzero extent of the gradient on the built module (max-pool as "
            "avg-pool, positive weights, float64).")


CSV_FIELDS = ("name", "kind", "output_shape", "size_h", "size_w", "stride_h", "stride_w",
              "start_h", "start_w", "padding_h", "padding_w", "global", "exceeds_input")


def _csv(rows, empirical: bool) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS + (("measured_h", "measured_w", "agrees") if empirical else ()))
    for row in rows:
        rf = row["rf"] or {}
        cells = [row["name"], row["kind"], "x".join(map(str, row["output_shape"]))]
        for key in ("size", "stride", "start", "padding"):
            cells += ["" if v is None else v for v in rf.get(key, [None, None])]
        cells += [_flag(rf.get("global")), _flag(rf.get("exceeds_input"))]
        if empirical:
            m = row.get("measured")
            cells += ["", "", ""] if m is None else [*m["size"], _flag(m["agrees"])]
        writer.writerow(cells)
    return buf.getvalue()


def _flag(value: bool | None) -> str:
    return "" if value is None else str(value).lower()


def _emit_unit(model: str, layer: str, unit: tuple[int, int], field, out_shape, fmt: Format,
               no_color: bool) -> None:
    limits = tuple(out_shape[2:]) if len(out_shape) == 4 else (1, 1)
    if not all(0 <= u < n for u, n in zip(unit, limits, strict=True)):
        raise UsageError(f"unit {unit[0]},{unit[1]} is outside layer '{layer}', whose output "
                         f"is {limits[0]}x{limits[1]}")
    if field is None:
        raise UsageError(f"layer '{layer}' has no receptive field (see the diagnostics)")
    unclipped = field.region(unit, clipped=False)
    clipped = field.region(unit, clipped=True)
    data = {"schema": SCHEMA, "model": model, "layer": layer, "unit": list(unit),
            "global": field.is_global, "image": list(field.image),
            "unclipped": _region(unclipped), "clipped": _region(clipped)}
    if fmt is Format.json:
        print(json.dumps(data, indent=2))
        return
    cells = [[name, _span(unclipped, i), _span(clipped, i)]
             for i, name in enumerate(("rows (h)", "cols (w)"))]
    if fmt is Format.csv:
        sys.stdout.write("axis,unclipped,clipped\n" + "".join(",".join(c) + "\n" for c in cells))
    elif fmt is Format.markdown:
        sys.stdout.write(f"`{layer}` unit ({unit[0]}, {unit[1]}) sees:\n\n"
                         "| Axis | Unclipped | Clipped to the image |\n|---|---|---|\n"
                         + "".join(f"| {' | '.join(c)} |\n" for c in cells))
    else:
        from rich import box
        from rich.table import Table

        from cnnstat.report.console import stdout_console

        title = (f"{model}: input region of {layer} unit ({unit[0]}, {unit[1]}) "
                 f"(image {field.image[0]}x{field.image[1]}, pixels inclusive)")
        table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left")
        for header in ("Axis", "Unclipped", "Clipped to the image"):
            table.add_column(header)
        for c in cells:
            table.add_row(*c)
        stdout_console(no_color).print(table)


def _region(region) -> dict[str, list[int]] | None:
    return None if region is None else {"rows": list(region[0]), "cols": list(region[1])}


def _span(region, axis: int) -> str:
    if region is None:
        return "none"
    lo, hi = region[axis]
    return f"{lo}..{hi} ({hi - lo + 1} px)"
