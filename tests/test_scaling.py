"""Performance guards that are not timing tests (issue 11).

1. The spec path never imports torch: every command that reads specs or zoo names
   (`zoo`, `compare`, `check`, `savings`, `rf`, the views) runs in a fresh interpreter
   and leaves no torch, fvcore or numpy in `sys.modules` (tests/test_no_torch.py covers
   `params`, `summary`, `flops` and the Python API).
2. The engine's work is linear in the number of layers. Work is counted, not timed:
   handler calls per registry, loader steps, receptive-field merges, DAG visits, and the
   number of cnnstat source lines executed (a `sys.settrace` line counter), on generated
   networks of n, 2n and 4n repeated steps. Deterministic work that is linear in n is
   exactly affine, so the increments must be equal: count(4n) - count(2n) ==
   2 * (count(2n) - count(n)). Any pass that is quadratic anywhere in cnnstat's Python
   code breaks the equality; the exact 4x checks catch a handler called more than once.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import cnnstat
from cnnstat.analyzers import engine
from cnnstat.analyzers import rf as rf_module
from cnnstat.analyzers.ops import OPS
from cnnstat.analyzers.params import PARAMS
from cnnstat.analyzers.rf import RF
from cnnstat.analyzers.shapes import SHAPES
from cnnstat.ir import Graph
from cnnstat.spec import loader
from cnnstat.spec.loader import build_graph
from cnnstat.spec.yaml_tree import parse

PACKAGE_DIR = str(Path(cnnstat.__file__).parent)

# ---- 1. the spec path imports no torch ---------------------------------------------------------

NO_TORCH_PROBE = """
import sys
from typer.testing import CliRunner
from cnnstat.cli import app
budgets = sys.argv[1]
commands = (
    ["zoo", "--json"], ["compare", "vgg16", "resnet50", "googlenet"], ["check", budgets],
    ["savings", "googlenet"], ["rf", "resnet50", "--json"],
)
for command in commands:
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, (command, result.exit_code, result.output)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "fvcore", "numpy"))
print(heavy)
"""

BUDGETS = """
defaults: {input: [3, 224, 224]}
models:
  - {model: vgg16, max_params: 200M, max_macs: 20G}
  - {model: resnet50, max_params: 30M}
  - {model: googlenet, max_depth: 100}
"""


def test_spec_commands_import_no_torch(tmp_path) -> None:
    """Catches a module-level `import torch` (or fvcore/numpy) creeping into any command
    that works from specs: it would cost every such call seconds of start-up."""
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS)
    out = subprocess.run([sys.executable, "-c", NO_TORCH_PROBE, str(budgets)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


# ---- 2. linear work ----------------------------------------------------------------------------

SEQUENTIAL = """
name: seq
input: [8, 64, 64]
layers:
  - {{repeat: {steps}, layers: [{{conv: 8, k: 3, p: 1, bias: false}}, bn, relu]}}
  - gap
  - flatten
  - {{fc: 10}}
"""

# Inception-like parallels (concat), residual adds, a named reference (`from:`) and a
# training-only aux head every run, so the DAG walks (ancestors, inference graph) have
# something to do.
BRANCHED = """
name: branched
input: [16, 256, 256]
blocks:
  inception:
    layers:
      - parallel:
          - [{{conv: 4, k: 1}}]
          - [{{conv: 4, k: 1}}, {{conv: 4, k: 3, p: 1}}]
          - [{{conv: 4, k: 1}}, {{conv: 4, k: 5, p: 2}}]
          - [{{maxpool: 3, s: 1, p: 1}}, {{conv: 4, k: 1}}]
        merge: concat
  residual:
    layers:
      - parallel:
          body: [{{conv: 16, k: 3, p: 1, bias: false}}, bn, relu,
                 {{conv: 16, k: 3, p: 1, bias: false}}, bn]
          shortcut: []
        merge: add
      - relu
layers:
  - repeat: {steps}
    name: stage
    layers:
      - inception
      - residual
      - {{conv: 16, k: 1, from: inception1, name: side}}
      - {{add: null, from: [residual1, side], name: join}}
  - {{name: aux, from: stage.0.join, layers: [gap, flatten, {{fc: 10}}]}}
  - {{gap: null, from: stage}}
  - flatten
  - {{fc: 10, name: head}}
outputs: [head]
aux_outputs: [aux]
"""

SPECS = {"sequential": SEQUENTIAL, "branched": BRANCHED}
STEPS = (6, 12, 24)  # n, 2n, 4n
GLOBAL_TAIL = {"sequential": 2, "branched": 4}  # flatten + fc after each global pool


def _graph(shape: str, steps: int) -> Graph:
    text = SPECS[shape].format(steps=steps)
    return build_graph(parse(text, f"{shape}.yaml"), default_name=shape, source=None)


def _assert_linear(counts: list[int], what: str, slack: float = 0.0) -> None:
    """Equal increments between n, 2n and 4n (the second is twice the first), within
    `slack` (a fraction) for data-dependent short-circuits such as `any()`; a quadratic
    term would make the second increment about 4x the first instead of 2x."""
    first, second = counts[1] - counts[0], counts[2] - counts[1]
    assert first > 0, f"{what}: no work counted ({counts})"
    assert abs(second - 2 * first) <= slack * 2 * first, (
        f"{what}: not linear in the number of layers: {counts}")


class _Counting:
    """Wraps every handler of the given registries (and some functions) with counters."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls: Counter[str] = Counter()
        self.monkeypatch = monkeypatch

    def registries(self, **registries) -> None:
        for label, registry in registries.items():
            for table in ("_handlers", "_traits"):  # a kind's own handlers, and its traits'
                wrapped = {key: self._wrap(label, handler)
                           for key, handler in getattr(registry, table).items()}
                self.monkeypatch.setattr(registry, table, wrapped)

    def functions(self, owner: object, *names: str) -> None:
        for name in names:
            self.monkeypatch.setattr(owner, name, self._wrap(name, getattr(owner, name)))

    def _wrap(self, label: str, fn: Callable) -> Callable:
        def counted(*args, **kwargs):
            self.calls[label] += 1
            return fn(*args, **kwargs)

        return counted


def _count_analysis(monkeypatch: pytest.MonkeyPatch, shape: str, steps: int) -> Counter[str]:
    with monkeypatch.context() as patch:
        counting = _Counting(patch)
        counting.registries(shapes=SHAPES, params=PARAMS, ops=OPS, rf=RF)
        counting.functions(rf_module, "_union", "_field_of", "compose")
        counting.functions(loader._Expander, "entry", "add", "layer", "call", "parallel",
                           "resolve")
        counting.functions(Graph, "node")
        graph = _graph(shape, steps)
        report = engine.analyze_graph(graph)
        graph.inference_graph()
        engine.weight_depth(graph)
        report.to_dict()
        counting.calls["nodes"] = len(graph)
        # norms and activations pass their input's field on, without a handler call
        counting.calls["same_field"] = sum(
            type(n.layer) in rf_module._same_field() and len(n.inputs) == 1 for n in graph)
        return counting.calls


@pytest.mark.parametrize("shape", ["sequential", "branched"])
def test_handlers_run_once_per_layer(monkeypatch, shape) -> None:
    """Every analyzer's handler runs exactly once per layer: 4x the layers, exactly 4x
    the calls. Catches a handler re-run per consumer or per output (an exponential
    blow-up on branched nets)."""
    runs = [_count_analysis(monkeypatch, shape, steps) for steps in STEPS]
    for label in ("shapes", "params", "ops", "rf", "_field_of", "entry", "add", "layer",
                  "nodes"):
        _assert_linear([r[label] for r in runs], label)
    for run in runs:
        for label in ("shapes", "params", "ops", "_field_of"):
            # every node but the input, once: each analyzer has a rule for every kind here
            assert run[label] == run["nodes"] - 1, (label, run)
        # after global pooling (flatten, fc) the field is global without a handler call;
        # a norm or activation hands its input's field on
        assert run["rf"] == run["nodes"] - 1 - GLOBAL_TAIL[shape] - run["same_field"], run


def test_receptive_field_merges_and_dag_walks_are_linear(monkeypatch) -> None:
    """Receptive-field unions, reference lookups and DAG visits (`Graph.node`, which the
    ancestor walk behind `inference_graph` uses) grow linearly on a branched net with
    references and an aux head. Catches a walk that restarts from every node (quadratic)."""
    runs = [_count_analysis(monkeypatch, "branched", steps) for steps in STEPS]
    for label in ("_union", "compose", "resolve", "node", "call", "parallel"):
        _assert_linear([r[label] for r in runs], label)
    merges_per_step = 3  # the inception concat, the residual add, the join add
    # one union per merge and axis (h, w), nothing else merges fields
    assert runs[1]["_union"] - runs[0]["_union"] == merges_per_step * 2 * (STEPS[1] - STEPS[0])


def _traced_lines(fn: Callable[[], object]) -> int:
    """Lines of cnnstat's own code executed while `fn` runs (the library's total work,
    not the time it took)."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def calls(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(PACKAGE_DIR) else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return count


@pytest.mark.parametrize("shape", ["sequential", "branched"])
def test_lines_executed_grow_linearly(shape) -> None:
    """All of cnnstat's Python work from YAML text to the JSON report (parse, expand,
    validate, shapes, params, MACs, receptive fields, totals, inference graph, depth)
    is linear: catches a quadratic loop anywhere, even one that calls no handler."""
    engine.analyze_graph(_graph(shape, 1))  # warm the caches (lru_cache'd unit maps)

    def whole(steps: int) -> Callable[[], object]:
        def run():
            graph = _graph(shape, steps)
            graph.inference_graph()
            return engine.analyze_graph(graph).to_dict()

        return run

    counts = [_traced_lines(whole(steps)) for steps in STEPS]
    _assert_linear(counts, "lines executed", slack=0.01)
