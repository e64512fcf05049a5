"""Rendering of `cnnstat rf`: the per-layer field table, the input sweep, one unit's
input region, and the empirical check (JSON, CSV, Markdown and rich tables).

Rows are plain dicts (`{"name", "kind", "output_shape", "rf", "measured"?}`, the JSON
form): the command builds them, this module only shows them. Nothing here counts.
"""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from typing import Any

SCHEMA = "cnnstat.rf/1"
SWEEP_SCHEMA = "cnnstat.rf-sweep/1"
CAPTION = (
    "Sizes, strides (jumps), starts and paddings are in input pixels, one value when h and w "
    "agree, else 'h, w' (1-D: l; 3-D: d x h x w, as 3x7x7). Start: centre of output unit "
    "(0, 0)'s field; padding: how far that "
    "field reaches before pixel 0 (Araujo et al., Distill 2019). 'global': the whole image "
    "(global pooling, flatten, linear, attention); 'conv path + global (gates)': behind a "
    "squeeze-and-excitation gate, the convolution path's field, the gate adding the whole "
    "image as context. With a fractional stride (transposed conv, "
    "upsampling) fields differ from unit to unit: size is the widest. See "
    "docs/receptive-field.md."
)
COLUMNS = ("Layer", "Kind", "Output", "RF size", "Stride", "Start", "Eff. padding",
           "Exceeds input")
QUANTITIES = ("size", "stride", "start", "padding")


def csv_fields(axes: tuple[str, ...]) -> tuple[str, ...]:
    """A column per quantity and axis: size_h, size_w, ... (size_l; size_d, size_h, ...)."""
    per_axis = tuple(f"{q}_{a}" for q in QUANTITIES for a in axes)
    return ("name", "kind", "output_shape", *per_axis, "global", "exceeds_input")


CSV_FIELDS = csv_fields(("h", "w"))

Row = dict[str, Any]


# --- folding -----------------------------------------------------------------------------

def fold_to_fit(rows: list[Row], depth: int | str | None, table: bool
                ) -> tuple[list[Row], str | None]:
    """--depth N folds; 'all' shows every layer; not given, a `table` longer than a screen
    folds to the deepest level that fits and says so (CSV and Markdown fold only when
    told, as the other per-layer commands do). Returns the rows and that line, if any."""
    if depth == "all" or (depth is None and not table):
        return rows, None
    if depth is not None:
        return fold_rows(rows, depth), None  # type: ignore[arg-type]
    from cnnstat.report.tables import fit_depth, fold_line

    auto = fit_depth([r["name"] for r in rows], lambda d: len(fold_rows(rows, d)))
    if auto is None:
        return rows, None
    return fold_rows(rows, auto), fold_line(auto, len(rows))


def fold_rows(rows: list[Row], depth: int | None) -> list[Row]:
    """`--depth N`: one row per block N name levels deep, holding the field of its last
    layer (what the block's output sees)."""
    if depth is None:
        return rows
    blocks: dict[str, Row] = {}
    for row in rows:
        key = ".".join(row["name"].split(".")[:depth])
        blocks[key] = row if key == row["name"] else {**row, "name": key, "kind": "block"}
    return list(blocks.values())


# --- cells -------------------------------------------------------------------------------

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
    """One value per axis: an image's 'h, w' (one value when they agree), a sequence's l,
    a volume's or clip's d x h x w (as 3x7x7; one value when all agree)."""
    texts = [_value(v) for v in values]
    if len(set(texts)) == 1:
        return texts[0]
    return ", ".join(texts) if len(texts) == 2 else "x".join(texts)


def _cells(row: Row, empirical: bool) -> list[str]:
    rf = row["rf"]
    shape = "x".join(str(d) for d in row["output_shape"])
    if rf is None:
        cells = [row["name"], row["kind"], shape] + ["n/a"] * 5
    else:
        exceeds = "global" if rf["global"] else ("yes" if rf["exceeds_input"] else "no")
        if rf.get("local"):  # behind gates: the convolution path, and the gates' context
            rf, exceeds = rf["local"], "conv path + global (gates)"
        cells = [row["name"], row["kind"], shape, _pair(rf["size"]), _pair(rf["stride"]),
                 _pair(rf["start"]), _pair(rf["padding"]), exceeds]
    if empirical:
        m = row.get("measured")
        cells += ["", ""] if m is None else [_pair(m["size"]), "ok" if m["agrees"] else "DIFFERS"]
    return cells


def _headers(empirical: bool) -> list[str]:
    return list(COLUMNS) + (["Measured", "Check"] if empirical else [])


# --- one input ---------------------------------------------------------------------------

def title(head: dict, bold: str = "", code: str = "") -> str:
    """`vgg16: receptive fields at input 1x3x224x224`; for a sequence or a clip the axes
    the values are given in: `(d x h x w)`."""
    axes = head.get("axes", ["h", "w"])
    per_axis = "" if len(axes) == 2 else f" ({' x '.join(axes)})"
    shape = "x".join(map(str, head["input_shape"]))
    return f"{bold}{head['model']}{bold}: receptive fields{per_axis} at input {code}{shape}{code}"


def fields_json(head: dict, rows: list[Row], extra: dict, diagnostics: list[str]) -> str:
    return json.dumps({**head, "layers": rows, **extra, "diagnostics": diagnostics}, indent=2)


def fields_csv(rows: list[Row], empirical: bool, axes: tuple[str, ...] = ("h", "w")) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(csv_fields(axes)
                    + (("measured_h", "measured_w", "agrees") if empirical else ()))
    for row in rows:
        rf = row["rf"] or {}
        cells = [row["name"], row["kind"], "x".join(map(str, row["output_shape"]))]
        for key in QUANTITIES:
            cells += ["" if v is None else v for v in rf.get(key, [None] * len(axes))]
        cells += [_flag(rf.get("global")), _flag(rf.get("exceeds_input"))]
        if empirical:
            m = row.get("measured")
            cells += ["", "", ""] if m is None else [*m["size"], _flag(m["agrees"])]
        writer.writerow(cells)
    return buf.getvalue()


def _flag(value: bool | None) -> str:
    return "" if value is None else str(value).lower()


def fields_markdown(head: dict, rows: list[Row], extra: dict) -> str:
    empirical = "erf" in extra
    headers = _headers(empirical)
    lines = [title(head, "**", "`"), "",
             "| " + " | ".join(headers) + " |",
             "|" + "|".join(["---"] * 3 + ["---:"] * (len(headers) - 3)) + "|"]
    for row in rows:
        cells = _cells(row, empirical)
        cells[0] = f"`{cells[0]}`"
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"_{CAPTION}_", ""]
    if empirical:
        lines += [erf_line(extra["erf"]), ""]
    return "\n".join(lines)


def fields_table(head: dict, rows: list[Row], extra: dict, folded: str | None):
    """The table, the fold line when it was folded to fit, and the ERF line."""
    from rich.console import Group
    from rich.text import Text

    empirical = "erf" in extra
    table = _table(title(head), _headers(empirical),
                   [_cells(row, empirical) for row in rows], left=3)
    lines = [line for line in (folded, erf_line(extra["erf"]) if empirical else None) if line]
    return Group(table, *(Text(line) for line in lines))


def _table(title: str, headers: list[str], rows: list[list[str]], left: int):
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", caption=CAPTION,
                  caption_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i < left else "right", overflow="fold")
    for cells in rows:
        table.add_row(*cells)
    return table


def erf_line(erf: dict[str, Any]) -> str:
    clipped = " (input smaller than the field: clipped)" if erf["clipped"] else ""
    return (f"Effective receptive field of {erf['layer']}: {erf['size']} px square holding "
            f"{erf['mass']:.0%} of the gradient (Luo et al. 2016; random init, "
            f"{erf['seeds']} seeds, input {erf['input']}x{erf['input']}{clipped}). "
            "Measured: nonzero extent of the gradient on the built module (max-pool as "
            "avg-pool, positive weights, float64).")


# --- an input sweep ----------------------------------------------------------------------

def sweep_json(head: dict, runs: list[dict]) -> str:
    return json.dumps({"schema": SWEEP_SCHEMA, **head, "inputs": runs}, indent=2)


class Plain:
    """A small table of text cells (the sweep, one unit's region) in every format."""

    def __init__(self, title: str, headers: list[str], rows: list[list[str]],
                 folded: str | None = None, left: int = 2, caption: bool = True):
        self.title, self.headers, self.rows = title, headers, rows
        self.folded, self.left, self.caption = folded, left, caption

    def csv(self) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([self.headers, *self.rows])
        return buf.getvalue()

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.headers) + " |",
                 "|" + "|".join(["---"] * len(self.headers)) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in self.rows]
        return "\n".join(lines) + "\n"

    def table(self):
        from rich.console import Group
        from rich.text import Text

        table = _table(self.title, self.headers, self.rows, self.left)
        if not self.caption:
            table.caption = None
        return Group(table, *([Text(self.folded)] if self.folded else []))


def sweep_plain(model: str, runs: list[dict], depth: int | str | None, table: bool) -> Plain:
    """One field per layer (it does not depend on the input) and, per input, whether it
    exceeds that input."""
    inputs = ["x".join(map(str, run["input_shape"][1:])) for run in runs]
    headers = ["Layer", "Kind", "RF size", "Stride"] + [f"Exceeds {i}" for i in inputs]
    folded, per_run = None, []
    for run in runs:  # the same names at every input: each folds to the same depth
        rows, folded = fold_to_fit(run["layers"], depth, table)
        per_run.append(rows)
    cells = []
    for rows in zip(*per_run, strict=True):
        last = _cells(rows[-1], False)
        cells.append(last[:2] + last[3:5] + [_cells(row, False)[-1] for row in rows])
    return Plain(f"{model}: receptive fields, input sweep", headers, cells, folded)


# --- one unit ----------------------------------------------------------------------------

# The keys of one unit's region in JSON, and the rows of its table, by the input's rank.
_REGION_KEYS = {2: ("rows", "cols")}
_REGION_ROWS = {2: ("rows (h)", "cols (w)")}


def region_dict(region, axes: tuple[str, ...] = ("h", "w")) -> dict[str, list[int]] | None:
    """An image's {"rows", "cols"}; a sequence's {"l"}; a volume's {"d", "h", "w"}."""
    keys = _REGION_KEYS.get(len(axes), axes)
    return None if region is None else {k: list(span) for k, span in zip(keys, region,
                                                                         strict=True)}


def _span(region, axis: int) -> str:
    if region is None:
        return "none"
    lo, hi = region[axis]
    return f"{lo}..{hi} ({hi - lo + 1} px)"


def unit_cells(unclipped, clipped, axes: tuple[str, ...] = ("h", "w")) -> list[list[str]]:
    return [[name, _span(unclipped, i), _span(clipped, i)]
            for i, name in enumerate(_REGION_ROWS.get(len(axes), axes))]


def unit_csv(cells: list[list[str]]) -> str:
    return "axis,unclipped,clipped\n" + "".join(",".join(c) + "\n" for c in cells)


def unit_markdown(layer: str, unit: tuple[int, ...], cells: list[list[str]]) -> str:
    return (f"`{layer}` unit ({', '.join(map(str, unit))}) sees:\n\n"
            "| Axis | Unclipped | Clipped to the image |\n|---|---|---|\n"
            + "".join(f"| {' | '.join(c)} |\n" for c in cells))


def unit_table(model: str, layer: str, unit: tuple[int, ...], image: tuple[int, ...],
               cells: list[list[str]]):
    title = (f"{model}: input region of {layer} unit ({', '.join(map(str, unit))}) "
             f"(input {'x'.join(map(str, image))}, pixels inclusive)")
    return Plain(title, ["Axis", "Unclipped", "Clipped to the image"], cells, left=3,
                 caption=False).table()
