"""The budget gate's outputs: a table, JSON, JUnit XML, GitHub annotations, Markdown.

Each reads a `CheckResult` and counts nothing. Pass/fail is always spelled out (PASS,
FAIL, ERROR) next to the mark, so it reads without colour; `ascii_only` drops the marks
where stdout cannot encode them.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from cnnstat import fmt
from cnnstat.budget.gate import ERROR, FAIL, PASS, BudgetResult, CheckResult
from cnnstat.budget.spec import BYTES, COUNT, RF, SHAPE
from cnnstat.report.text_table import Styled, TextTable

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

SCHEMA = "cnnstat.check/1"
_MARKS = {PASS: "✓ PASS", FAIL: "✗ FAIL", ERROR: "! ERROR"}
_WORDS = {PASS: "PASS", FAIL: "FAIL", ERROR: "ERROR"}
_STYLES = {PASS: "green", FAIL: "bold red", ERROR: "bold yellow"}


def verdict(result: BudgetResult | str, ascii_only: bool = False) -> str:
    status = result if isinstance(result, str) else result.status
    return (_WORDS if ascii_only else _MARKS)[status]


def short(value: Any, unit: str) -> str:
    """A limit or actual in a table cell: one SI suffix per value; exact digits in JSON."""
    if value is None:
        return "n/a"
    if unit in (COUNT, BYTES):
        byte = "B" if unit == BYTES else ""
        return f"{value:,} {byte}".strip() if value < 1000 else f"{fmt.human(value)}{byte}"
    if unit == RF:
        return f"{value[0]}x{value[1]}"
    if unit == SHAPE:
        return ", ".join(fmt.shape(s) for s in value)
    return str(value)


def headroom(result: BudgetResult) -> str:
    return "n/a" if result.headroom_pct is None else f"{result.headroom_pct:+.1f}%"


def summary(result: CheckResult) -> str:
    counts = Counter(r.status for r in result.results)
    total = len(result.results)
    parts = [f"{counts[PASS]} passed", f"{counts[FAIL]} failed"]
    if counts[ERROR]:
        parts.append(f"{counts[ERROR]} could not be measured")
    outcome = "PASS" if result.passed else "FAIL"
    models = len(result.models)
    return (f"{total} budget{'s' * (total != 1)} in {models} model{'s' * (models != 1)}: "
            f"{', '.join(parts)} -> {outcome} (exit {result.exit_code})")


def _budget_cell(r: BudgetResult) -> str:
    return r.metric if r.layer is None else f"{r.metric} @ {r.layer}"


def table(result: CheckResult, ascii_only: bool = False) -> TextTable:
    """One row per model and budget: limit, actual, headroom, PASS/FAIL; the summary
    line under it."""
    t = TextTable(title=f"cnnstat check {result.file}",
                  caption="headroom: how far inside the limit (negative: over it)")
    t.add_column("Model")
    t.add_column("Budget")
    for name in ("Limit", "Actual", "Headroom"):
        t.add_column(name, right=True)
    t.add_column("Result")
    for m in result.models:
        for i, r in enumerate(m.results):
            t.add_row(m.model if i == 0 else "", _budget_cell(r), short(r.limit, r.unit),
                      short(r.actual, r.unit), headroom(r),
                      Styled(verdict(r, ascii_only), _STYLES[r.status]))
        t.add_section()
    t.summary = Styled(summary(result), "bold green" if result.passed else "bold red")
    return t


def to_dict(result: CheckResult) -> dict[str, Any]:
    counts = Counter(r.status for r in result.results)
    return {
        "schema": SCHEMA, "file": result.file, "passed": result.passed,
        "exit_code": result.exit_code, "baseline": result.baseline,
        "tolerance_pct": result.tolerance_pct,
        "summary": {"budgets": len(result.results), "passed": counts[PASS],
                    "failed": counts[FAIL], "errors": counts[ERROR]},
        "models": [_model_dict(m) for m in result.models],
        "notes": list(result.notes),
    }


def _model_dict(m) -> dict[str, Any]:
    report = m.report
    return {
        "model": m.model, "line": m.budget.loc.line, "col": m.budget.loc.col,
        "name": None if report is None else report.model,
        "input_shape": None if report is None else list(report.input_shape),
        "dtype": m.budget.dtype, "passed": m.passed, "error": m.error,
        "totals": None if report is None else report.totals.to_dict(),
        "budgets": [_budget_dict(r) for r in m.results],
    }


def _budget_dict(r: BudgetResult) -> dict[str, Any]:
    return {"metric": r.metric, "unit": r.unit, "limit": _plain(r.limit),
            "actual": _plain(r.actual), "headroom_pct": r.headroom_pct,
            "status": r.status, "passed": r.passed, "layer": r.layer,
            "line": r.loc.line, "col": r.loc.col, "message": r.message}


def _plain(value: Any) -> Any:
    """Tuples (receptive fields, shapes) as JSON lists; ints stay exact."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def to_json(result: CheckResult) -> str:
    return json.dumps(to_dict(result), indent=2)


def to_junit(result: CheckResult) -> str:
    """JUnit XML: one <testsuite> per model entry, one <testcase> per budget; an exceeded
    budget is a <failure>, one that could not be measured an <error>."""
    import xml.etree.ElementTree as ET  # JUnit output only

    suites = ET.Element("testsuites", name=f"cnnstat check {result.file}")
    names = Counter(m.model for m in result.models)
    for m in result.models:
        suite_name = m.model if names[m.model] == 1 else f"{m.model} (line {m.budget.loc.line})"
        suite = ET.SubElement(suites, "testsuite", name=suite_name, file=result.file)
        counts = Counter(r.status for r in m.results)
        suite.set("tests", str(len(m.results)))
        suite.set("failures", str(counts[FAIL]))
        suite.set("errors", str(counts[ERROR]))
        suite.set("skipped", "0")
        for r in m.results:
            _testcase(suite, r, result.file, m.error)
    totals = Counter(r.status for r in result.results)
    suites.set("tests", str(len(result.results)))
    suites.set("failures", str(totals[FAIL]))
    suites.set("errors", str(totals[ERROR]))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _testcase(suite: ET.Element, r: BudgetResult, file: str, model_error: str | None) -> None:
    import xml.etree.ElementTree as ET

    case = ET.SubElement(suite, "testcase", name=_budget_cell(r),
                         classname=f"cnnstat.check.{r.model.replace('.', '_')}", file=file,
                         line=str(r.loc.line or 0), time="0")
    if r.status == FAIL:
        child = ET.SubElement(case, "failure", message=r.message, type="BudgetExceeded")
        child.text = f"{r.loc}: {r.message}"
    elif r.status == ERROR:
        why = model_error or r.message
        child = ET.SubElement(case, "error", message=why, type="NotMeasured")
        child.text = f"{r.loc}: {why}"


def to_github(result: CheckResult) -> str:
    """GitHub Actions workflow commands: an ::error annotation at the budget file's line
    for each problem, then a plain summary line."""
    lines = []
    for loc, what, message in result.problem_items():
        props = {"file": loc.file or result.file, "line": loc.line, "col": loc.col,
                 "title": f"cnnstat check: {what}"}
        shown = ",".join(f"{k}={_escape_property(str(v))}" for k, v in props.items()
                         if v is not None)
        lines.append(f"::error {shown}::{_escape_data(message)}")
    lines.append(summary(result))
    return "\n".join(lines) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def to_markdown(result: CheckResult, ascii_only: bool = False) -> str:
    """For a pull-request comment: a headline, the table, then every problem."""
    ok = result.passed
    icon = "" if ascii_only else ("✅ " if ok else "❌ ")
    lines = [f"### {icon}cnnstat check `{result.file}`: {'passed' if ok else 'FAILED'}", "",
             summary(result), "",
             "| Model | Budget | Limit | Actual | Headroom | Result |",
             "|---|---|---:|---:|---:|---|"]
    for r in result.results:
        cells = [f"`{r.model}`", f"`{_budget_cell(r)}`", short(r.limit, r.unit),
                 short(r.actual, r.unit), headroom(r), f"**{verdict(r, ascii_only)}**"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    problems = result.problems()
    if problems:
        lines += ["", "**Problems**", ""] + [f"- `{_code(p)}`" for p in problems]
    return "\n".join(lines) + "\n"


def _code(text: str) -> str:
    """Text for an inline code span: a backtick inside would end it early."""
    return _cell(text).replace("`", "'")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
