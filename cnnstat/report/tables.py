"""One model's per-layer table and headline totals, as plain data (report/text_table.py:
text on a pipe, rich on a terminal); the columns are in columns.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cnnstat import fmt
from cnnstat.analyzers.results import LayerStats, ModelReport, fold
from cnnstat.report.columns import CONVENTION, columns_for, has_regions
from cnnstat.report.text_table import TextGrid, TextGroup, TextLine, TextTable


def layer_table(report: ModelReport, view: str, depth: int | None = None,
                top: int = 3, limit: int | None = None) -> TextTable:
    """One row per layer (or per folded block) with one SI unit per numeric column; past
    `limit` rows, the rest is one line saying how many (the totals count them)."""
    rows = fold(report.layers, depth)
    cols = columns_for(view, report)
    ranked = _top(rows, cols[0].value, top)
    # No cell is ever folded: the stdout console prints a table at its natural width.
    title = f"{report.model}: {_title(view)} at input {fmt.shape(report.input_shape)}"
    table = TextTable(caption=CONVENTION, title=title)
    table.add_column("Layer", footer="Total")
    table.add_column("Kind")
    table.add_column("Output")
    runs = has_regions(report)
    if runs:
        table.add_column("Runs", right=True)  # x R: once per region
    units = []
    for col in cols:
        values = [col.value(r) for r in rows]
        scale, suffix = fmt.si_unit(values, col.binary)
        units.append(scale)
        header = f"{col.header} ({suffix})" if suffix else col.header
        total = sum(v or 0 for v in values)
        table.add_column(header, right=True, footer=fmt.scaled(total, scale))
        if col.share_of is not None:
            table.add_column(f"% {col.header}", right=True)
    if view == "params":
        table.add_column("Formula (k x in x out + bias)")
    if view == "summary":
        table.add_column("RF (px)", right=True)
    table.add_column("Top", right=True)
    shown = rows if limit is None else rows[:limit]
    for row in shown:
        cells = [row.name, row.kind, fmt.shape(row.output_shape)]
        if runs:
            cells.append(f"x{row.regions}" if row.regions > 1 else "")
        cells += _count_cells(row, report, cols, units)
        if view == "params":
            cells.append(row.formula)
        if view == "summary":
            cells.append(rf_text(row.rf))
        cells.append(f"#{ranked[row.name]}" if row.name in ranked else "")
        table.add_row(*cells)
    if len(shown) < len(rows):
        table.add_row(f"... {len(rows) - len(shown)} more", *[""] * (len(table.columns) - 1))
    return table


def _count_cells(row: LayerStats, report: ModelReport, cols: Sequence,
                 units: Sequence[int]) -> list[str]:
    """A row's numbers in the columns' units, each with its share where it has one."""
    cells = []
    for col, scale in zip(cols, units, strict=True):
        value = col.value(row)
        cells.append(fmt.scaled(value, scale))
        if col.share_of is not None:
            cells.append(fmt.percent(value, col.share_of(report)))
    return cells


def rf_text(rf: dict | None) -> str:
    """`212` for a square field, `7x3` otherwise (`3x7x7` for D x H x W, one value when
    every axis agrees), `global` once it spans the input; behind gates, the convolution
    path's field and the gates' context: `851 + global`."""
    if rf is None:
        return "n/a"
    if rf.get("local"):
        return f"{rf_text(rf['local'])} + global"
    if rf.get("global"):
        return "global"
    sizes = [str(s) for s in rf["size"]]
    return sizes[0] if len(set(sizes)) == 1 else "x".join(sizes)


def _title(view: str) -> str:
    return {"params": "parameters", "flops": "MACs and FLOPs", "shapes": "output shapes",
            "summary": "summary"}[view]


def _top(rows: tuple[LayerStats, ...], value: Callable[[LayerStats], int | None],
         n: int) -> dict[str, int]:
    scored = sorted(((value(r) or 0, r.name) for r in rows), key=lambda t: -t[0])
    return {name: i + 1 for i, (v, name) in enumerate(scored[:n]) if v > 0}


def headline(report: ModelReport, view: str = "params") -> TextGrid:
    """Totals, exact and in human units, with the unit named on every line."""
    t = report.totals
    grid = TextGrid(right=(False, True, False))
    source = f" ({report.source})" if report.source else ""
    grid.add_row("Model", report.model, f"{report.meta.title or ''}{source}".strip())
    grid.add_row("Input", fmt.shape(report.input_shape), f"batch {report.input_shape[0]}")
    grid.add_row("Params", fmt.exact(t.params),
                 f"{fmt.human(t.params)}; buffers {fmt.exact(t.buffers)}")
    grid.add_row("MACs", fmt.exact(t.macs), f"{fmt.human(t.macs)}MAC")
    grid.add_row("FLOPs", fmt.exact(t.flops), f"{fmt.human(t.flops)}FLOP (= 2 x MACs)")
    grid.add_row("Other ops", fmt.exact(t.other_ops), "element-wise, not in MACs")
    grid.add_row("Activations", fmt.exact(t.activations),
                 f"elements; {fmt.human(t.activation_bytes, binary=True)} at {report.dtype}")
    grid.add_row("Depth", str(t.depth), "weight layers on the longest path")
    if has_regions(report):
        _region_rows(grid, report)
    for stage in report.stages() if report.meta.stages else ():
        grid.add_row(f"Stage {stage['name']}", fmt.exact(stage["macs"]),
                     f"{fmt.human(stage['macs'])}MAC; params {fmt.exact(stage['params'])} "
                     f"({stage['prefix'] or 'outside every stage'})")
    for name, out_shape in report.outputs:
        grid.add_row("Output", fmt.shape(out_shape), name)
    if view == "summary":
        from cnnstat.report.memory import rows

        for row in rows(report):
            grid.add_row(*row)
    if report.unsupported:
        names = ", ".join(sorted({f"{u.layer} ({u.kind})" for u in report.unsupported}))
        grid.add_row("Unsupported", str(len(report.unsupported)), f"not counted: {names}")
    return grid


def _region_rows(grid: TextGrid, report: ModelReport) -> None:
    """Per-region part: one region's MACs x R = per image, and what runs once per image."""
    inside = [r for r in report.layers if r.regions > 1 and not r.train_only]
    outside = sum(r.macs or 0 for r in report.layers if r.regions == 1 and not r.train_only)
    for count in sorted({r.regions for r in inside}):
        per_image = sum(r.macs or 0 for r in inside if r.regions == count)
        one = per_image // count
        grid.add_row("Per region", fmt.exact(one),
                     f"{fmt.human(one)}MAC x {count} regions = {fmt.human(per_image)}MAC "
                     "per image")
    grid.add_row("Once per image", fmt.exact(outside), f"{fmt.human(outside)}MAC")


SCREEN_ROWS = 60  # a table longer than this folds unless --depth says otherwise


def fit_depth(names: Sequence[str], folded_rows: Callable[[int], int],
              rows: int = SCREEN_ROWS) -> int | None:
    """The deepest fold of these layer names that fits in `rows` (1 when none does);
    None: no fold needed. `folded_rows(d)` counts the rows folding to depth d leaves."""
    if len(names) <= rows:
        return None
    deepest = max(n.count(".") + 1 for n in names)
    return next((d for d in range(deepest - 1, 0, -1) if folded_rows(d) <= rows), 1)


def fold_line(depth: int, layers: int, cut: str = "") -> str:
    """`cut`: what a table that still runs past a screen at that depth leaves out."""
    return f"folded to depth {depth} ({layers} layers){cut}: --depth all shows every layer"


def fold_note(report: ModelReport, view: str, depth: int) -> TextLine:
    """One line saying the table is folded, naming the heaviest layers inside the blocks."""
    value = columns_for(view, report)[0].value
    top = ", ".join(f"#{i} {name}" for name, i in _top(report.layers, value, 3).items())
    rows = len(fold(report.layers, depth))
    cut = (f", the first {SCREEN_ROWS} of its {rows} rows shown" if rows > SCREEN_ROWS
           else "")
    return TextLine(fold_line(depth, len(report.layers), cut)
                    + (f"; heaviest: {top}" if top else ""))


def render(report: ModelReport, view: str, depth: int | str | None = None) -> TextGroup:
    """`depth`: an int folds; 'all' shows every layer; None folds a long table to fit."""
    if depth == "all":
        return TextGroup((layer_table(report, view), TextLine(""), headline(report, view)))
    layers = report.layers
    auto = None if depth is not None else \
        fit_depth([r.name for r in layers], lambda d: len(fold(layers, d)))
    # A flat spec of 100,000 layers still has 100,000 rows at depth 1: rich would take
    # minutes to draw them, and no screen shows them
    parts = [layer_table(report, view, auto or depth, limit=None if auto is None else SCREEN_ROWS)]
    if auto is not None:
        parts.append(fold_note(report, view, auto))
    return TextGroup((*parts, TextLine(""), headline(report, view)))
