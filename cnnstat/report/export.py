"""Machine formats: JSON (the versioned report), CSV (exact ints), Markdown."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from itertools import chain

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
# The same between two receptive fields' dicts, whose first key is "size" (a nested
# "local" dict follows a key, never '}, ').
_FIELD_START = '{"size": '
_BETWEEN_FIELDS = "}, " + _FIELD_START
_RF_HOLE = "\x00rf"  # a row's stand-in for its field's dict
_RF_HOLE_JSON = json.dumps(_RF_HOLE)
# The C encoder, without the check for cycles (a report has none): json.dumps's defaults.
_encode = json.JSONEncoder(check_circular=False).encode


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
    """The compact JSON of each layer's row, in order. A norm or activation shares its
    conv's receptive field: each field is encoded once per batch and its text spliced into
    the rows that show it (the field is two fifths of a row's JSON)."""
    layers, size = report.layers, report.dtype_bytes
    for start in range(0, len(layers), _ROWS_PER_CALL):
        batch = layers[start:start + _ROWS_PER_CALL]
        fields = [row.receptive_field for row in batch if row.receptive_field is not None]
        text = _encode([row.to_dict(size, _RF_HOLE) for row in batch])
        parts = text.split(_RF_HOLE_JSON)
        if len(parts) != len(fields) + 1:  # a name holding the marker: encode plainly
            text = _encode([row.to_dict(size) for row in batch])
        else:
            texts = _field_texts(fields)
            text = "".join([parts[0], *chain.from_iterable(
                zip(map(texts.__getitem__, map(id, fields)), parts[1:], strict=True))])
        yield text[1:-1].replace(_BETWEEN_ROWS, '},\n    {"name": ')


def _field_texts(fields: list) -> dict[int, str]:
    """The JSON of each distinct field (by identity: the rows keep them alive), encoded in
    one call and cut apart where one field's dict ends and the next begins."""
    distinct = {id(f): f for f in fields}
    text = _encode([f.to_dict() for f in distinct.values()])[1:-1]
    parts = text.split(_BETWEEN_FIELDS)
    if len(parts) != len(distinct):  # a field whose dict starts otherwise: one by one
        return {key: _encode(f.to_dict()) for key, f in distinct.items()}
    last = len(parts) - 1
    return {key: ("" if i == 0 else _FIELD_START) + part + ("" if i == last else "}")
            for i, (key, part) in enumerate(zip(distinct, parts, strict=True))}


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
