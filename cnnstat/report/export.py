"""Machine formats: JSON (the versioned report), CSV (exact ints), Markdown."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from json.encoder import encode_basestring_ascii

from cnnstat import fmt
from cnnstat.analyzers.results import ModelReport, fold
from cnnstat.nogc import without_gc
from cnnstat.report.columns import CONVENTION, columns_for

CSV_FIELDS = ("name", "kind", "output_shape", "params", "buffers", "macs", "flops",
              "other_ops", "activations", "activation_bytes", "formula")


_LAYERS_HOLE = "\x00layers"
_ROWS_PER_BATCH = 1000
# The C encoder, without the check for cycles (a report has none): json.dumps's defaults.
_encode = json.JSONEncoder(check_circular=False).encode
_int = int.__repr__  # what the encoder writes for an int (TypeError for anything else)
_string = encode_basestring_ascii  # and for a str (TypeError for anything else)

# A row as `_encode(row.to_dict(size))` writes it, for the rows that have none of the
# optional keys: the keys are written once here, not escaped again for every row (the C
# encoder on each row's dict was half of a 100,000-layer report).
_ROW = '{"name": %s, "kind": %s, "inputs": [%s], %s'
_COUNTS = ('"output_shape": [%s], "params": %s, "buffers": %s, "formula": %s, "macs": %s, '
           '"flops": %s, "other_ops": %s, "activations": %s, "activation_bytes": %s')


@without_gc
def to_json(report: ModelReport, extra: dict | None = None) -> str:
    """The report, with what the command adds to it (min_input, notes: docs/json.md).

    Indented, with each layer on one line: readable, diff-friendly, and fast. json's
    indenting encoder is pure Python (~0.15 ms a layer: 18 s for a 120,000-layer spec);
    each row is written compactly, as the C encoder writes its dict (`_row_text`), and the
    rows are joined a thousand at a time into the text around them (one copy of the
    rows' text at a time, never the rows, their join and the document all at once)."""
    doc = {**report.to_dict(layers=False), **(extra or {})}
    if not report.layers or "layers" in (extra or {}):
        return json.dumps(doc, indent=2)
    before, after = _around(doc)
    return "".join([before, "[\n    ", ",\n    ".join(_batches(report)), "\n  ]", after])


def _around(doc: dict) -> tuple[str, str]:
    """The indented document's text before and after its layers' list: a marker string
    stands in for the list, one that no other value of the document holds."""
    marker = _LAYERS_HOLE
    while True:
        doc["layers"] = marker
        parts = json.dumps(doc, indent=2).split(json.dumps(marker))
        if len(parts) == 2:
            return parts[0], parts[1]
        marker += "\x00"  # a model or note named like the marker: a longer one


def _batches(report: ModelReport) -> Iterator[str]:
    """The compact JSON of the layers' rows, a thousand rows to a string. Within a batch,
    a text is made once and reused: a receptive field's, by the rows sharing it (a norm
    or activation shares its conv's; the field is two fifths of a row), and a row's
    counts, by the rows with the same ones (a repeated block's layers)."""
    size, layers = report.dtype_bytes, report.layers
    for start in range(0, len(layers), _ROWS_PER_BATCH):
        fields: dict[int, str] = {}  # by the field's identity: the rows keep it alive
        counts: dict[tuple, str] = {}
        rows = []
        for row in layers[start:start + _ROWS_PER_BATCH]:
            field, rf = row.receptive_field, ""
            if field is not None:
                rf = fields.get(id(field))
                if rf is None:
                    rf = fields[id(field)] = _encode(field.to_dict())
            try:
                rows.append(_row_text(row, size, rf, counts))
            except TypeError:  # a value the template does not write (a float)
                rows.append(_encode(row.to_dict(size)))
        yield ",\n    ".join(rows)


def _row_text(row, size: int, rf: str, counts: dict[tuple, str]) -> str:
    """`_encode(row.to_dict(size))`, given the text of the row's field ("" for none) and
    the texts of counts written before. The encoder's own functions write the values:
    `encode_basestring_ascii` each str (a subclass as a str), `int.__repr__` each int;
    anything else (a float) raises TypeError. A report's counts are ints made by
    arithmetic, never bools or floats (equal to an int, one would take its text)."""
    if row.train_only or row.non_trainable_params or row.regions > 1 or row.unsupported:
        return _encode(row.to_dict(size))  # the optional keys: rare, encoded plainly
    key = (row.output_shape, row.params, row.buffers, row.formula, row.macs, row.other_ops,
           row.activations)
    numbers = counts.get(key)
    if numbers is None:
        numbers = counts[key] = _counts_text(*key, size)
    text = _ROW % (_string(row.name), _string(row.kind), ", ".join(map(_string, row.inputs)),
                   numbers)
    return f'{text}, "rf": {rf}}}' if rf else text + "}"


def _counts_text(shape, params, buffers, formula, macs, other_ops, activations,
                 size: int) -> str:
    return _COUNTS % (
        ", ".join(map(_int, shape)),
        "null" if params is None else _int(params), "null" if buffers is None else _int(buffers),
        _string(formula), "null" if macs is None else _int(macs),
        "null" if macs is None else _int(2 * macs),
        "null" if other_ops is None else _int(other_ops), _int(activations),
        _int(activations * size))


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
