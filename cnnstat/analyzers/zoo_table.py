"""One summary row per zoo spec: metadata, params, MACs, minimum input (no torch)."""

from __future__ import annotations

from dataclasses import asdict

from cnnstat.analyzers.engine import analyze_graph
from cnnstat.analyzers.min_input import min_input_side
from cnnstat.ir import Graph
from cnnstat.ir.record import Record, record


@record
class ZooRow(Record):
    name: str
    title: str | None
    family: str | None
    year: int | None
    paper: str | None
    follows: str | None
    input: tuple[int, ...] | None
    min_input: int
    params: int
    macs: int

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict:
        out = asdict(self)
        out["input"] = list(self.input) if self.input else None
        out["flops"] = self.flops
        return out


def zoo_row(graph: Graph) -> ZooRow:
    report = analyze_graph(graph, fields=False)  # the zoo table shows no fields
    meta = graph.meta
    return ZooRow(name=meta.name, title=meta.title, family=meta.family, year=meta.year,
                  paper=meta.paper, follows=meta.follows, input=meta.input,
                  min_input=min_input_side(graph), params=report.totals.params,
                  macs=report.totals.macs)
