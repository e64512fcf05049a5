"""Baselines: compare this run's totals with a previous run's, within a tolerance.

A baseline is what `cnnstat check --update-baseline` writes (schema cnnstat.baseline/1),
or any JSON report with totals: one `cnnstat.report/1` object (`cnnstat summary --format
json`) or `{"models": [report, ...]}` (`cnnstat compare --format json`). Entries match a
budget by model reference (or the report's model name/source), input shape and dtype:
comparing MACs measured at two different inputs would mean nothing.

Writing is atomic: a temporary file in the same directory, fsync, then os.replace, so
a run that fails at any point leaves the previous baseline byte-for-byte as it was.
"""

from __future__ import annotations

import json
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

from cnnstat.analyzers.results import ModelReport
from cnnstat.budget.gate import FAIL, PASS, BudgetResult, CheckResult, show
from cnnstat.budget.spec import (
    BYTES,
    COUNT,
    MAX_EXPONENT,
    MAX_NUMBER_CHARS,
    ModelBudget,
    out_of_range,
)
from cnnstat.errors import Location, SpecError, UsageError
from cnnstat.files import atomic_write_text, read_bytes

SCHEMA = "cnnstat.baseline/1"
# Compared metrics; FLOPs are exactly 2 x MACs, so comparing both would only repeat a line.
METRICS = {"params": COUNT, "macs": COUNT, "other_ops": COUNT, "activation_bytes": BYTES}

Key = tuple[str, tuple[int, ...], str]
MAX_BASELINE_BYTES = 16 * 1024 * 1024  # a compare of the whole zoo is about 60 KB


def parse_tolerance(value: str | float | int) -> Fraction:
    """'2%', '2' or 2 -> 2/100 (a plain number is a percentage, as in --tolerance 2)."""
    text = str(value).strip().removesuffix("%").strip()
    try:
        exponent = re.search(r"[eE]([+-]?\d+)$", text)
        if out_of_range(text, int(exponent[1]) if exponent else 0):
            raise ValueError
        pct = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"--tolerance takes a percentage such as 2% or 0.5% (at most "
                         f"{MAX_NUMBER_CHARS} characters, exponent within +-{MAX_EXPONENT}), got "
                         f"'{str(value)[:60]}'"
                         ) from None
    if pct < 0:
        raise UsageError(f"--tolerance must not be negative, got '{value}'")
    return pct / 100


def load(path: str | Path) -> dict[Key, dict[str, int]]:
    """Baseline entries by (model, input shape with batch, dtype)."""
    path = Path(path)
    if not os.path.lexists(path):
        raise UsageError(f"no baseline file '{path}'; create it with --update-baseline",
                         Location(str(path)))
    try:
        data = json.loads(read_bytes(path, MAX_BASELINE_BYTES).decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UsageError(f"cannot read baseline: {e}", Location(str(path))) from None
    except json.JSONDecodeError as e:
        raise SpecError(f"baseline is not valid JSON: {e.msg}",
                        Location(str(path), e.lineno, e.colno)) from None
    except RecursionError:  # thousands of nested [[[...: no baseline is like that
        raise SpecError("baseline JSON is nested too deeply", Location(str(path))) from None
    entries = data.get("models") if isinstance(data, dict) and "models" in data else [data]
    if not isinstance(entries, list):
        raise SpecError("baseline 'models' must be a list of reports", Location(str(path)))
    out: dict[Key, dict[str, int]] = {}
    for i, entry in enumerate(entries):
        for key in _keys(entry, path, i):
            out[key] = entry["totals"]
    return out


def _keys(entry: Any, path: Path, index: int) -> list[Key]:
    ok = (isinstance(entry, dict) and isinstance(entry.get("model"), str)
          and isinstance(entry.get("totals"), dict)
          and isinstance(entry.get("input_shape"), list))
    if not ok:
        raise SpecError(f"baseline entry {index} needs 'model', 'input_shape' and 'totals' "
                        "(write baselines with --update-baseline)", Location(str(path)))
    where = f"baseline entry {index} ('{entry['model'][:60]}')"
    shape = tuple(entry["input_shape"])
    if not shape or not all(_is_count(size) and size > 0 for size in shape):
        raise SpecError(f"{where}: 'input_shape' must be a list of positive integers",
                        Location(str(path)))
    dtype = entry.get("dtype")
    dtype = "fp32" if dtype is None else dtype  # `or` would take false, {} or [] as fp32
    if not isinstance(dtype, str) or not isinstance(entry.get("source"), str | None):
        raise SpecError(f"{where}: 'dtype' and 'source' must be text", Location(str(path)))
    for metric, value in entry["totals"].items():
        if not _is_count(value):  # a bool, a map, a list, a float or a negative number
            raise SpecError(f"{where}: totals '{str(metric)[:40]}' must be a whole number "
                            f">= 0, got {_json_kind(value)} (a gate never passes a baseline "
                            "it cannot read)", Location(str(path)))
    names = {entry["model"], entry.get("source")} - {None}
    return [(name, shape, dtype) for name in names]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    kinds = {dict: "an object", list: "a list", str: "text", float: "a fraction",
             type(None): "null"}
    return kinds.get(type(value), repr(value)[:20])


def find(base: dict[Key, dict[str, int]], budget: ModelBudget, report: ModelReport
         ) -> dict[str, int] | None:
    for name in (budget.model, report.model, report.source):
        totals = base.get((name, report.input_shape, report.dtype)) if name else None
        if totals is not None:
            return totals
    return None


def compare(budget: ModelBudget, report: ModelReport, totals: dict[str, int],
            tolerance: Fraction) -> tuple[BudgetResult, ...]:
    """A result per metric: it fails when it grew past baseline x (1 + tolerance)."""
    results = []
    now = report.totals.to_dict()
    for metric, unit in METRICS.items():
        before = totals.get(metric)
        if isinstance(before, bool) or not isinstance(before, int):
            continue  # an older report without this total: nothing to compare
        results.append(_compare_one(budget, metric, unit, now[metric], before, tolerance))
    return tuple(results)


def _compare_one(budget: ModelBudget, metric: str, unit: str, actual: int, before: int,
                 tolerance: Fraction) -> BudgetResult:
    allowed = before * (1 + tolerance)
    passed = actual <= allowed
    headroom = float(100 * (allowed - actual) / allowed) if allowed else None
    growth = f"{float(100 * (actual - before) / before):+.1f}%" if before else "from 0"
    pct = f"{float(tolerance * 100):g}%"
    if passed:
        message = (f"{budget.model}: {metric} {show(actual, unit)} vs baseline "
                   f"{show(before, unit)} ({growth}, tolerance {pct})")
    else:
        message = (f"{budget.model}: {metric} regressed past the baseline: actual "
                   f"{show(actual, unit)} vs baseline {show(before, unit)} ({growth}, "
                   f"tolerance {pct})")
    return BudgetResult(model=budget.model, metric=f"{metric} vs baseline", unit=unit,
                        limit=int(allowed), actual=actual, headroom_pct=headroom,
                        status=PASS if passed else FAIL, message=message, loc=budget.loc)


def snapshot(result: CheckResult) -> dict[str, Any]:
    """The baseline object for every measured model of a run."""
    models = []
    for m in result.models:
        if m.report is None:
            continue
        models.append({"model": m.model, "source": m.report.source,
                       "input_shape": list(m.report.input_shape), "dtype": m.report.dtype,
                       "totals": m.report.totals.to_dict()})
    return {"schema": SCHEMA, "budget_file": result.file, "models": models}


def write(path: str | Path, result: CheckResult) -> None:
    # never half-written, never over a fifo or device; `-` or /dev/stdout: to stdout
    atomic_write_text(path, json.dumps(snapshot(result), indent=2) + "\n", force=True)
