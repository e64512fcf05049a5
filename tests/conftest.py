"""Test-run policy shared by every test module.

Two CI stages (docs/testing.md): stage 1 runs the whole suite with the CPU build of torch and no
optional packages; stage 2 (`--oracle-stage`) runs the tests marked `oracle` in a venv with
torchvision, timm, onnx and matplotlib. Two rules keep an oracle from silently stopping:

- a test that skips because a package could not be imported must be marked `oracle`
  (otherwise stage 2 would never select it): in stage 1 such an unmarked skip fails;
- in stage 2 a skip for a missing package fails: the package is meant to be there.

Optional packages are imported inside tests or fixtures (`pytest.importorskip`), never at
module level, where a skip hides the module's marks; a module-level skip for a missing
package fails in both stages.
"""

import os

import pytest

# Deterministic rendering for golden tests: no colour, fixed width.
os.environ.setdefault("NO_COLOR", "1")
os.environ.setdefault("COLUMNS", "160")

# pytest.importorskip's reason text; a plain ImportError caught by hand says the same.
_MISSING_PACKAGE = ("could not import", "No module named")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--oracle-stage", action="store_true",
        help="CI's second stage: a skip for a missing package fails instead of skipping")


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _missing_package(report: pytest.TestReport | pytest.CollectReport) -> bool:
    return report.skipped and any(m in _skip_reason(report) for m in _MISSING_PACKAGE)


def _fail(report: pytest.TestReport | pytest.CollectReport, why: str) -> None:
    report.outcome = "failed"
    report.longrepr = f"{why}\n  (skip reason: {_skip_reason(report)})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if not _missing_package(report):
        return
    if item.config.getoption("--oracle-stage"):
        _fail(report, "oracle stage: a package this test needs is missing from the venv")
    elif item.get_closest_marker("oracle") is None:
        _fail(report, "this test skips for a missing package but is not marked "
                      "@pytest.mark.oracle, so CI's second stage would never run it")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    report = outcome.get_result()
    if _missing_package(report):
        _fail(report, "a module-level skip for a missing package hides the module from "
                      "both CI stages: import it inside an oracle-marked test or fixture")
