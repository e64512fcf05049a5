"""Budgets against measured reports -> frozen result records. Pure: no I/O, no printing.

The gate fails closed: a number that cannot be measured (a layer kind with no params or
ops handler, a receptive field the analysis did not provide, a glob that matches no layer)
gives an `error` result, never a pass.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from cnnstat import fmt
from cnnstat.analyzers.compare import last_spatial_row
from cnnstat.analyzers.results import LayerStats, ModelReport
from cnnstat.budget.spec import BYTES, COUNT, RF, SHAPE, Budget, Limit, ModelBudget
from cnnstat.errors import Location, did_you_mean

PASS, FAIL, ERROR = "pass", "fail", "error"

# metric -> (totals attribute, the analyzer whose handlers it needs; None: shapes only)
_TOTALS = {
    "max_params": ("params", "params"), "max_macs": ("macs", "ops"),
    "max_flops": ("flops", "ops"), "max_other_ops": ("other_ops", "ops"),
    "max_activation_bytes": ("activation_bytes", None), "max_depth": ("depth", None),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetResult:
    """One budget of one model. `headroom_pct` is how far inside the limit the actual value
    is (negative when over); None where it has no meaning (shapes, a zero limit)."""

    model: str
    metric: str  # the budget's label: max_params, max_params[classifier.*], params vs baseline
    unit: str
    limit: Limit | None
    actual: Limit | None
    headroom_pct: float | None
    status: str
    message: str
    loc: Location
    layer: str | None = None  # the layer that decided a per-layer or receptive-field budget

    @property
    def passed(self) -> bool:
        return self.status == PASS


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResult:
    budget: ModelBudget
    report: ModelReport | None
    error: str | None  # why the model could not be loaded or measured
    results: tuple[BudgetResult, ...]

    @property
    def model(self) -> str:
        return self.budget.model

    @property
    def passed(self) -> bool:
        return self.error is None and all(r.passed for r in self.results)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """The whole gate: `.passed`, `.failures`, `.results` (every budget), `.exit_code`."""

    file: str
    models: tuple[ModelResult, ...]
    notes: tuple[str, ...] = ()
    baseline: str | None = None
    tolerance_pct: float | None = None

    @property
    def results(self) -> tuple[BudgetResult, ...]:
        return tuple(r for m in self.models for r in m.results)

    @property
    def failures(self) -> tuple[BudgetResult, ...]:
        """Every budget that did not pass: exceeded (`fail`) or not measurable (`error`)."""
        return tuple(r for r in self.results if not r.passed)

    @property
    def errors(self) -> tuple[BudgetResult, ...]:
        return tuple(r for r in self.results if r.status == ERROR)

    @property
    def passed(self) -> bool:
        return not self.failures and all(m.error is None for m in self.models)

    @property
    def exit_code(self) -> int:
        """docs/exit-codes.md: 2 when anything could not be measured (fail closed), 1 when a
        budget was exceeded, 0 when every budget passed."""
        if self.errors or any(m.error is not None for m in self.models):
            return 2
        return 1 if self.failures else 0

    def problem_items(self) -> list[tuple[Location, str, str]]:
        """(where, what, message) per model that could not be measured and per budget that
        did not pass; a model's own error stands for all of its budgets."""
        items = []
        for m in self.models:
            if m.error is not None:
                items.append((m.budget.loc, m.model, m.error))
                continue
            items += [(r.loc, f"{m.model} {r.metric}", r.message)
                      for r in m.results if not r.passed]
        return items

    def problems(self) -> list[str]:
        """One located error line per problem, for stderr."""
        return [f"{loc}: error: {message}" for loc, _, message in self.problem_items()]


def evaluate(budget: ModelBudget, report: ModelReport) -> tuple[BudgetResult, ...]:
    """Every budget of one model entry against its report."""
    return tuple(_one(budget.model, b, report) for b in budget.budgets)


def unmeasured(budget: ModelBudget, why: str) -> tuple[BudgetResult, ...]:
    """Error results for every budget of a model that could not be loaded or measured."""
    return tuple(_error(budget.model, b, f"{budget.model}: {b.label} not measured: {why}")
                 for b in budget.budgets)


def _one(model: str, budget: Budget, report: ModelReport) -> BudgetResult:
    if budget.layers is not None:
        return _per_layer(model, budget, report)
    if budget.unit == SHAPE:
        return _output_shape(model, budget, report)
    if budget.unit == RF:
        row = last_spatial_layer(report)
        if row is None:
            return _error(model, budget, f"{model}: cannot measure min_rf: the model has no "
                                         "spatial (N, C, H, W) layer")
        return _rf(model, budget, row)
    attr, analyzer = _TOTALS[budget.metric]
    missing = sorted({u.kind for u in report.unsupported if u.analyzer == analyzer})
    if missing:
        return _error(model, budget, f"{model}: cannot measure {budget.metric}: layer kinds "
                                     f"without a {analyzer} count: {', '.join(missing)}")
    return _maximum(model, budget, getattr(report.totals, attr))


def _maximum(model: str, budget: Budget, actual: int, layer: str | None = None
             ) -> BudgetResult:
    limit = budget.limit
    assert isinstance(limit, int)
    headroom = (100 * (limit - actual) / limit if limit else (0.0 if actual == 0 else None))
    passed = actual <= limit
    where = f" (layer '{layer}')" if layer else ""
    shown_actual, shown_limit = show(actual, budget.unit), show(limit, budget.unit)
    if passed:
        message = f"{model}: {budget.label}{where} {shown_actual} <= {shown_limit}"
    else:
        over = f", {-headroom:.1f}% over" if headroom is not None else ""
        message = (f"{model}: {budget.label} exceeded{where}: actual {shown_actual} > limit "
                   f"{shown_limit}{over}")
    return _result(model, budget, actual, headroom, passed, message, layer)


def _rf(model: str, budget: Budget, row: LayerStats) -> BudgetResult:
    field = row.rf or {}
    gated = "local" in field
    # behind gates, the convolution path's field, as compare shows it, not the input's
    # size that the gates' global context spans (an unknown path: cannot measure)
    rf = (field["local"] or {}) if gated else field
    size = rf.get("size")
    if not isinstance(size, list | tuple) or len(size) != 2:
        return _error(model, budget, f"{model}: cannot measure {budget.label}: no receptive "
                                     f"field for layer '{row.name}' (the receptive-field "
                                     "analysis did not run or does not cover this layer)",
                      row.name)
    actual = (int(size[0]), int(size[1]))
    limit = budget.limit
    assert isinstance(limit, tuple)
    headroom = min(100 * (a - m) / m for a, m in zip(actual, limit, strict=True))
    passed = all(a >= m for a, m in zip(actual, limit, strict=True))
    whole = " (it covers the whole input)" if rf.get("global") else \
        " (the convolution path; gates add global context)" if gated else ""
    shown = f"{show(actual, RF)} at layer '{row.name}'{whole}"
    if passed:
        message = f"{model}: {budget.label} {shown} >= {show(limit, RF)}"
    else:
        message = (f"{model}: {budget.label} not met: actual receptive field {shown} < limit "
                   f"{show(limit, RF)}")
    return _result(model, budget, actual, headroom, passed, message, row.name)


def last_spatial_layer(report: ModelReport) -> LayerStats | None:
    """The (N, C, H, W) layer whose field compare shows (`last_spatial_row`): the pooled
    head summarises the whole input and would pass any min_rf. Falls back to the last 4-D
    layer when every map is pooled to one unit."""
    return last_spatial_row(report, 4) or next(
        (row for row in reversed(report.layers) if len(row.output_shape) == 4), None)


def _output_shape(model: str, budget: Budget, report: ModelReport) -> BudgetResult:
    expected = budget.limit
    actual = tuple(shape for _, shape in report.outputs)
    passed = actual == expected
    shown = show(actual, SHAPE)
    if passed:
        message = f"{model}: output_shape {shown} as expected"
    else:
        message = (f"{model}: output_shape mismatch: limit (expected) {show(expected, SHAPE)}"
                   f", actual {shown}")
    return _result(model, budget, actual, None, passed, message)


def _per_layer(model: str, budget: Budget, report: ModelReport) -> BudgetResult:
    """Each layer whose name matches the glob must keep the limit; the worst one decides."""
    rows = [r for r in report.layers if fnmatch.fnmatchcase(r.name, budget.layers or "")]
    if not rows:
        hint = did_you_mean(budget.layers or "", [r.name for r in report.layers])
        return _error(model, budget, f"{model}: layers '{budget.layers}' matches no layer"
                                     f"{hint}; a budget on nothing cannot pass")
    if budget.unit == RF:
        spatial = [r for r in rows if len(r.output_shape) == 4]
        if not spatial:
            return _error(model, budget, f"{model}: cannot measure {budget.label}: no "
                                         "matching layer has a spatial output")
        results = [_rf(model, budget, r) for r in spatial]
        return min(results, key=_severity)
    value = _LAYER_VALUES[budget.metric]
    measured = [(value(r, report), r.name) for r in rows]
    blind = [name for v, name in measured if v is None]
    if blind:
        return _error(model, budget, f"{model}: cannot measure {budget.label}: no count for "
                                     f"layer '{blind[0]}' (kind {report.layer(blind[0]).kind})",
                      blind[0])
    actual, name = max(measured, key=lambda t: t[0])
    return _maximum(model, budget, actual, name)


def _severity(result: BudgetResult) -> tuple[int, float]:
    rank = {ERROR: 0, FAIL: 1, PASS: 2}[result.status]
    return rank, result.headroom_pct if result.headroom_pct is not None else 0.0


_LAYER_VALUES: dict[str, Callable[[LayerStats, ModelReport], int | None]] = {
    "max_params": lambda r, _: r.params,
    "max_macs": lambda r, _: r.macs,
    "max_flops": lambda r, _: r.flops,
    "max_other_ops": lambda r, _: r.other_ops,
    "max_activation_bytes": lambda r, m: r.activations * m.dtype_bytes,
}


def _result(model: str, budget: Budget, actual: Limit, headroom: float | None, passed: bool,
            message: str, layer: str | None = None) -> BudgetResult:
    return BudgetResult(model=model, metric=budget.label, unit=budget.unit,
                        limit=budget.limit, actual=actual, headroom_pct=headroom,
                        status=PASS if passed else FAIL, message=message, loc=budget.loc,
                        layer=layer)


def _error(model: str, budget: Budget, message: str, layer: str | None = None) -> BudgetResult:
    return BudgetResult(model=model, metric=budget.label, unit=budget.unit,
                        limit=budget.limit, actual=None, headroom_pct=None, status=ERROR,
                        message=message, loc=budget.loc, layer=layer)


def show(value: Limit | None, unit: str) -> str:
    """A limit or an actual value for messages and tables: exact digits for counts and
    bytes, with the SI form beside them when it helps."""
    if value is None:
        return "n/a"
    if unit in (COUNT, BYTES) and isinstance(value, int):
        byte = "B" if unit == BYTES else ""
        if value < 1000:
            return f"{value} {byte}".strip()
        return f"{fmt.exact(value)} {byte}".strip() + f" ({fmt.human(value)}{byte})"
    if unit == RF and isinstance(value, tuple):
        return f"{value[0]}x{value[1]}"
    if unit == SHAPE and isinstance(value, tuple):
        return ", ".join(str(list(s)) for s in value)
    return str(value)

