"""The budget gate: a file of limits, measured models, a result that fails closed.

    >>> result = cnnstat.check("budgets.yaml")          # doctest: +SKIP
    >>> result.passed, result.exit_code, result.failures  # doctest: +SKIP

and, inside a project's own test suite:

    >>> assert_budget("specs/mynet.yaml", max_params="5M", max_macs="1.5G")  # doctest: +SKIP

`spec` reads the file, `gate` compares (pure), `baseline` compares with a previous run;
this module resolves and measures the models in between. The library never prints.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from cnnstat.analyzers import ModelReport, analyze_graph
from cnnstat.budget import baseline as _baseline
from cnnstat.budget.gate import BudgetResult, CheckResult, ModelResult, evaluate, unmeasured
from cnnstat.budget.spec import (
    LAYER_METRICS,
    BudgetFile,
    ModelBudget,
    load_budgets,
    parse_budget,
)
from cnnstat.errors import CnnstatError, Location, UsageError, did_you_mean
from cnnstat.ir import Graph
from cnnstat.spec.yaml_tree import YMap, YNode, YScalar, YSeq

__all__ = ["BudgetFile", "BudgetResult", "CheckResult", "ModelResult", "assert_budget",
           "check", "load_budgets"]


def check(path: str | Path, *, baseline: str | Path | None = None,
          tolerance: str | float = "2%", update_baseline: bool = False,
          allow_code: bool = False) -> CheckResult:
    """Measure every model of a budget file and compare it with its limits (and with a
    baseline). A malformed file raises SpecError; a model that cannot be loaded is
    reported in the result (exit code 2) and the others are still measured.
    `allow_code` lets entries name module references (pkg.mod:Net, file.py:Net,
    torchvision:NAME): loading one imports and runs its code."""
    if update_baseline and baseline is None:
        raise UsageError("--update-baseline needs --baseline FILE (where to write it)")
    tol = _baseline.parse_tolerance(tolerance)
    budgets = load_budgets(path, allow_code=allow_code)
    base = _baseline.load(baseline) if baseline is not None and not update_baseline else None
    notes: list[str] = []
    models = tuple(_check_model(mb, base, tol, notes) for mb in budgets.models)
    result = CheckResult(file=budgets.path, models=models,
                         baseline=None if baseline is None else str(baseline),
                         tolerance_pct=float(tol * 100))
    if update_baseline:
        notes.append(_update(Path(baseline), result))
    return replace(result, notes=tuple(notes))


def _check_model(mb: ModelBudget, base: dict | None, tol: Fraction,
                 notes: list[str]) -> ModelResult:
    report = _measure(mb, notes)
    if isinstance(report, str):
        return ModelResult(budget=mb, report=None, error=report,
                           results=unmeasured(mb, "the model could not be loaded"))
    results = evaluate(mb, report)
    if base is not None:
        totals = _baseline.find(base, mb, report)
        if totals is None:
            notes.append(f"{mb.loc}: no baseline entry for '{mb.model}' at input "
                         f"{list(report.input_shape)}; nothing to compare (add it with "
                         "--update-baseline)")
        else:
            results += _baseline.compare(mb, report, totals, tol)
    return ModelResult(budget=mb, report=report, error=None, results=results)


def _measure(mb: ModelBudget, notes: list[str]) -> ModelReport | str:
    """The model's report, or why it could not be had (located at the budget's line)."""
    from cnnstat.api import input_shape
    from cnnstat.resolver import resolve

    try:
        resolved = resolve(_model_arg(mb), input=mb.input)  # references: traced at it
        if resolved.note:
            notes.append(f"{mb.loc}: {resolved.note}")
        shape = input_shape(mb.input, resolved.graph)
        wants_rf = any(b.metric == "min_rf" for b in mb.budgets)  # fields: half the work
        return analyze_graph(resolved.graph, shape, batch=mb.batch, dtype=mb.dtype,
                             fields=wants_rf)
    except CnnstatError as e:
        inner = str(e)
        inner = inner.removeprefix("error: ") if inner.startswith("error: ") \
            else inner.replace(": error: ", ": ", 1)
        return f"cannot load or measure model '{mb.model}': {inner}"


def _model_arg(mb: ModelBudget) -> str:
    """Relative spec, .onnx and file.py paths in a budget file are read from its own directory."""
    file, colon, attr = mb.model.rpartition(":")
    if colon and file.endswith(".py"):  # file.py:Net, read from there too
        path = Path(file)
        return mb.model if mb.base_dir is None or path.is_absolute() or not \
            (mb.base_dir / path).is_file() else f"{mb.base_dir / path}:{attr}"
    path = Path(mb.model)
    if mb.base_dir is None or path.is_absolute() or \
            path.suffix not in (".yaml", ".yml", ".onnx"):
        return mb.model
    return str(mb.base_dir / path)


def _update(path: Path, result: CheckResult) -> str:
    if result.exit_code == 2:
        return f"baseline '{path}' NOT written: some models could not be measured"
    _baseline.write(path, result)
    measured = sum(m.report is not None for m in result.models)
    return f"wrote baseline '{path}' ({measured} model entries)"


def assert_budget(model: str | Path | Graph, *, input: tuple[int, ...] | int | None = None,
                  batch: int = 1, dtype: str = "fp32", max_params: int | str | None = None,
                  max_macs: int | str | None = None, max_flops: int | str | None = None,
                  max_activation_bytes: int | str | None = None,
                  max_other_ops: int | str | None = None, max_depth: int | None = None,
                  min_rf: int | tuple[int, int] | None = None,
                  output_shape: tuple | list | None = None,
                  layers: dict[str, dict[str, Any]] | None = None) -> ModelReport:
    """For a project's own tests: raise AssertionError naming every broken budget (and
    every budget that could not be measured). Limits take the budget file's forms: 5M,
    "1.5G", "120MB" or ints. Returns the report, for further asserts."""
    from cnnstat.api import analyze

    given = {"max_params": max_params, "max_macs": max_macs, "max_flops": max_flops,
             "max_activation_bytes": max_activation_bytes, "max_other_ops": max_other_ops,
             "max_depth": max_depth, "min_rf": min_rf, "output_shape": output_shape}
    loc = Location("assert_budget")
    budgets = [parse_budget(k, _node(v, loc), loc) for k, v in given.items() if v is not None]
    for pattern, limits in (layers or {}).items():
        budgets += [parse_budget(k, _node(v, loc), loc, layers=pattern)
                    for k, v in limits.items() if _known(k)]
    if not budgets:
        raise TypeError("assert_budget needs at least one limit (max_params=..., ...)")
    report = analyze(model, input, batch=batch, dtype=dtype)
    name = model.meta.name if isinstance(model, Graph) else str(model)
    mb = ModelBudget(model=name, loc=loc, input=None, batch=batch, dtype=dtype,
                     budgets=tuple(budgets))
    broken = [r.message for r in evaluate(mb, report) if not r.passed]
    if broken:
        raise AssertionError("budget not met:\n  " + "\n  ".join(broken))
    return report


def _known(metric: str) -> bool:
    if metric not in LAYER_METRICS:
        raise TypeError(f"unknown per-layer limit '{metric}'"
                        f"{did_you_mean(metric, LAYER_METRICS)}")
    return True


def _node(value: Any, loc: Location) -> YNode:
    """Python values as located YAML nodes, so one parser reads both forms."""
    if isinstance(value, list | tuple):
        return YSeq(tuple(_node(v, loc) for v in value), loc)
    if isinstance(value, dict):
        return YMap({k: _node(v, loc) for k, v in value.items()}, dict.fromkeys(value, loc), loc)
    return YScalar(value, loc)

