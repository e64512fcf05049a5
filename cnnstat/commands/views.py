"""`cnnstat params | flops | shapes | summary MODEL`: one model, one table."""

# No `from __future__ import annotations`: typer reads these signatures at every start
# (see check.py).

from contextlib import nullcontext

from cnnstat.commands.app import app, note
from cnnstat.commands.options import (
    BatchOpt,
    CrosscheckOpt,
    DepthOpt,
    Dtype,
    DtypeOpt,
    Format,
    FormatOpt,
    InputsOpt,
    JsonOpt,
    KwargsOpt,
    MinInputOpt,
    ModelArg,
    NoColorOpt,
    ProposalsOpt,
    RegionsOpt,
    StrictOpt,
    parse_depth,
)
from cnnstat.commands.output import check_unsupported, emit, sweep_sizes, unsupported_message
from cnnstat.commands.torch_cmds import (
    emit_with_crosscheck,
    resolve_model,
    traced_input,
    with_diagnostics,
)
from cnnstat.errors import UsageError
from cnnstat.nogc import paused


def _run_view(view: str, model: str, input: list[str] | None, batch: int, format: Format,
              as_json: bool, depth: str | None, dtype: Dtype, no_color: bool,
              strict: bool, min_input: bool = False, kwargs: str | None = None,
              crosscheck: bool = False, regions: int | None = None) -> None:
    from cnnstat.analyzers import analyze_graph
    from cnnstat.api import input_shape

    reference = ":" in model
    if input is not None and len(input) > 1 and any("," in i for i in input):
        raise UsageError("a sweep (--input 224,320) takes one --input")
    if crosscheck and input is not None and any("," in i for i in input):
        raise UsageError("--crosscheck takes one input, not a sweep")
    resolved = resolve_model(model, input, kwargs, regions if reference else None)
    input = input[0] if input is not None and len(input) == 1 else None  # a size or a sweep
    input = traced_input(model, input)  # a reference was traced at its single input
    if reference and input is not None and resolved.graph.meta.stages:
        raise UsageError("a detector resizes its input: analyze one --input size per run")
    if regions is not None and not reference:
        import dataclasses

        from cnnstat.analyzers.engine import with_regions

        resolved = dataclasses.replace(resolved, graph=with_regions(resolved.graph, regions))
    format = Format.json if as_json else format
    depth = parse_depth(depth)
    notes = [{"code": "model", "message": line}
             for line in (resolved.note, *resolved.diagnostics) if line]
    extra = _min_input(resolved.graph, notes) if min_input else {}
    reports = [analyze_graph(resolved.graph, input_shape(size, resolved.graph), batch=batch,
                             dtype=dtype.value) for size in sweep_sizes(input)]
    report = with_diagnostics(reports[-1], resolved)
    message = unsupported_message(report)
    if message is not None:
        notes.append({"code": "unsupported", "message": message,
                      "layers": sorted({u.layer for u in report.unsupported})})
    extra["notes"] = notes
    check_unsupported(report, strict)  # before any output: a refused result prints nothing
    per_report = None
    if view == "summary":  # its memory estimate: of the one input, or of each in a sweep
        from cnnstat.report.memory import memory

        if len(reports) > 1:
            def per_report(r):
                return {"memory": memory(r)}
        else:
            extra["memory"] = memory(report)
    if len(reports) > 1:
        _emit_sweep(reports, format, no_color, extra, per_report)
    elif crosscheck:
        emit_with_crosscheck(resolved, report, view, format, depth, no_color, _emit, extra)
    else:
        _emit(report, view, format, depth, no_color, extra)


def _min_input(graph, notes: list[dict]) -> dict:
    """--min-input: said on stderr, and carried in the JSON report."""
    from cnnstat.analyzers.min_input import min_input_side

    side = min_input_side(graph)
    message = f"minimum input of {graph.meta.name}: {side} px square"
    note(message)
    notes.append({"code": "min_input", "message": message})
    channels = graph.meta.input[0] if graph.meta.input else None
    return {"min_input": {"side": side, "shape": [channels, side, side]}}


def _emit_sweep(reports, format: Format, no_color: bool, extra: dict, per_report=None) -> None:
    from cnnstat.report import sweep

    emit(format, no_color, json=lambda: sweep.sweep_json(reports, extra, per_report),
         csv=lambda: sweep.sweep_csv(reports), markdown=lambda: sweep.sweep_markdown(reports),
         table=lambda console: console.print(sweep.sweep_table(reports)))


def _emit(report, view: str, format: Format, depth: int | str | None, no_color: bool,
          extra: dict | None = None) -> None:
    from cnnstat.report import export

    def table(console) -> None:
        from cnnstat.report.tables import render

        console.print(render(report, view, depth))

    fixed = None if depth == "all" else depth  # machine formats fold only when told to
    emit(format, no_color, json=lambda: export.to_json(report, extra),
         csv=lambda: export.to_csv(report, fixed),
         markdown=lambda: export.to_markdown(report, view, fixed), table=table)


def _command(view: str, doc: str):
    def command(model: ModelArg, input: InputsOpt = None, batch: BatchOpt = 1,
                format: FormatOpt = Format.table, as_json: JsonOpt = False,
                depth: DepthOpt = None, dtype: DtypeOpt = Dtype.fp32,
                no_color: NoColorOpt = False, strict: StrictOpt = False,
                min_input: MinInputOpt = False, kwargs: KwargsOpt = None,
                crosscheck: CrosscheckOpt = False, regions: RegionsOpt = None,
                proposals: ProposalsOpt = None) -> None:
        if regions is not None and proposals is not None and regions != proposals:
            raise UsageError(f"--regions {regions} and --proposals {proposals} disagree; "
                             "they set the same count")
        # A spec makes no cyclic garbage: the collector stays paused from loading to the
        # last line written, rather than walking each phase's new objects when it resumes
        # (a tracing torch frontend does make some, and collects as usual).
        with paused() if ":" not in model else nullcontext():
            _run_view(view, model, input, batch, format, as_json, depth, dtype, no_color,
                      strict, min_input, kwargs, crosscheck, regions or proposals)

    command.__doc__ = doc
    app.command(view)(command)


_command("params", "Parameters per layer, with the k x in x out formula and % share.")
_command("flops", "MACs, FLOPs (= 2 x MACs) and other element-wise ops per layer.")
_command("shapes", "Output shape, activation elements and memory per layer.")
_command("summary", "Every column: shapes, params, MACs, other ops, activations.")


