"""`cnnstat export MODEL [-o spec.yaml]`: any model as a readable, verified spec."""

# No `from __future__ import annotations`: typer reads these signatures at every start
# (see check.py).

import sys
from typing import Annotated

import typer

from cnnstat.commands.app import app, note
from cnnstat.commands.options import KwargsOpt, ModelArg


@app.command("export")
def export(
    model: ModelArg,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Write the spec to this file (atomically; an existing file "
        "only with --force).", show_default="stdout")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    flat: Annotated[bool, typer.Option(
        "--flat", help="Write every layer out: no blocks, no repeats.")] = False,
    input: Annotated[str | None, typer.Option(
        "--input", "-i", help="The input written as the spec's default (CxHxW, HxW or a "
        "size); a module reference is traced at it.", show_default=False)] = None,
    kwargs: KwargsOpt = None,
) -> None:
    """Write MODEL (a torch module, a zoo name or a spec) as a readable spec.

    One layer per line, blocks and repeats where the structure repeats. The spec is
    loaded back and compared with the model, layer by layer, before anything is written
    (docs/export.md)."""
    from cnnstat.commands.torch_cmds import resolve_model, traced_input
    from cnnstat.files import atomic_write_text, check_writable
    from cnnstat.writer import spec_from_graph

    if output is not None:
        check_writable(output, force)  # before a long trace, not after
    if input is not None and "," in input:
        from cnnstat.errors import UsageError

        raise UsageError("export takes one --input size, not a sweep")
    resolved = resolve_model(model, input, kwargs)
    graph, input = resolved.graph, traced_input(model, input)
    if input is not None:  # a module was traced at it; a spec gets it as its default
        import dataclasses

        from cnnstat.analyzers.engine import infer_shapes
        from cnnstat.api import input_shape

        shape = input_shape(input, graph)
        infer_shapes(graph, shape)  # an input the model cannot take fails here, located
        graph = dataclasses.replace(graph, meta=dataclasses.replace(graph.meta, input=shape))
    exported = spec_from_graph(graph, source=model, blocks=not flat)
    if exported.renamed:
        shown = ", ".join(f"{a} -> {b}" for a, b in list(exported.renamed.items())[:3])
        more = len(exported.renamed) - 3
        note(f"renamed {len(exported.renamed)} layer(s) whose names a spec cannot write: "
             f"{shown}{f' and {more} more' if more > 0 else ''}")
    if output is None:
        sys.stdout.write(exported.text)
        return
    atomic_write_text(output, exported.text, force=force)
    note(f"wrote {output}: {len(resolved.graph) - 1} layers, {exported.blocks} block(s); it "
         "loads back into the same graph (checked)")
