"""Machine formats: JSON (the versioned report), CSV (exact ints), Markdown."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

from cnnstat import fmt
from cnnstat.analyzers.results import ModelReport, fold
from cnnstat.nogc import without_gc
from cnnstat.report.columns import CONVENTION, columns_for

CSV_FIELDS = ("name", "kind", "output_shape", "params", "buffers", "macs", "flops",
              "other_ops", "activations", "activation_bytes", "formula")


_LAYERS_HOLE = "\x00layers"  # no key or value of a report can hold a NUL
_ROWS_PER_CALL = 1000
# Between two rows of a compact list of rows; nowhere else: a row's first key is "name",
# no dict inside a row starts with it, and a '"' inside a string is always escaped.
_BETWEEN_ROWS = '}, {"name": '


@without_gc
def to_json(report: ModelReport, extra: dict | None = None) -> str:
    """The report, with what the command adds to it (min_input, notes: docs/json.md).

    Indented, with each layer on one line: readable, diff-friendly, and fast. json's
    indenting encoder is pure Python (~0.15 ms a layer: 18 s for a 120,000-layer spec);
    the rows go through the C encoder, a thousand per call, each row's dict made just
    before (all of them at once: ~2 KiB a layer)."""
    doc = {**report.to_dict(layers=False), **(extra or {})}
    if not report.layers or "layers" in (extra or {}):
        return json.dumps(doc, indent=2)
    doc["layers"] = _LAYERS_HOLE
    rows = ",\n    ".join(_rows(report))
    return json.dumps(doc, indent=2).replace(json.dumps(_LAYERS_HOLE), f"[\n    {rows}\n  ]", 1)


def _rows(report: ModelReport) -> Iterator[str]:
    """The compact JSON of each layer's row, in order."""
    layers, size = report.layers, report.dtype_bytes
    for start in range(0, len(layers), _ROWS_PER_CALL):
        batch = json.dumps([row.to_dict(size) for row in layers[start:start + _ROWS_PER_CALL]])
        yield batch[1:-1].replace(_BETWEEN_ROWS, '},\n    {"name": ')


def to_csv(report: ModelReport, depth: int | None = None) -> str:
    import csv  # here: only --csv needs it

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in fold(report.layers, depth):
        d = row.to_dict(report.dtype_bytes)
        d["output_shape"] = fmt.shape(row.output_shape)
        writer.writerow(["" if d.get(f) is None else d.get(f) for f in CSV_FIELDS])
    return buf.getvalue()


def to_markdown(report: ModelReport, view: str, depth: int | None = None) -> str:
    rows = fold(report.layers, depth)
    cols = columns_for(view, report)
    units = [fmt.si_unit([c.value(r) for r in rows], c.binary) for c in cols]
    header = ["Layer", "Kind", "Output"] + [
        f"{c.header} ({suffix})" if suffix else c.header
        for c, (_, suffix) in zip(cols, units, strict=True)]
    lines = [
        f"**{report.model}** at input `{fmt.shape(report.input_shape)}`: "
        f"{fmt.exact(report.totals.params)} params, {fmt.exact(report.totals.macs)} MACs "
        f"({fmt.human(report.totals.macs)}MAC), {fmt.exact(report.totals.flops)} FLOPs",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * len(cols)) + "|",
    ]
    for row in rows:
        cells = [f"`{row.name}`", row.kind, fmt.shape(row.output_shape)]
        cells += [fmt.scaled(c.value(row), scale)
                  for c, (scale, _) in zip(cols, units, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"_{CONVENTION}_", ""]
    if view == "summary":  # the memory estimate the table's headline shows
        from cnnstat.report.memory import rows as memory_rows

        lines += ["| Memory (torchinfo's names) | Value | |", "|---|---:|---|"]
        lines += [f"| {label} | {value} | {words} |" for label, value, words in
                  memory_rows(report)]
        lines.append("")
    return "\n".join(lines)
