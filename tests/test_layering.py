"""Imports point one way (docs/architecture.md): commands -> report, budget, timing ->
resolver, api -> analyzers, frontends, spec, builder, writer -> ir and the leaves.

Every `import` in the package is read, the lazy ones inside functions too (a lazy import
back up is still a circle, only a later one). Each rule names the circle it once was.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnnstat"

LOWER = ("analyzers", "frontends", "spec", "builder", "writer", "ir")
ABOVE_LOWER = ("resolver", "models", "api", "report", "budget", "commands", "cli")
RULES = [
    # (packages whose modules are checked, what they must not import, why)
    (LOWER, ABOVE_LOWER, "frontends/__init__ imported api and models, which import it"),
    (("budget",), ("report", "commands", "cli"), "budget.gate and report.budget_render"),
    (("report",), ("commands", "cli"), "rendering never reaches back to the CLI"),
    (("errors", "fmt", "inputs"), ("analyzers", "frontends", "spec", "report", "budget",
                                   "api", "resolver"), "the leaves import nothing above"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("cnnstat.")}


def _top(name: str) -> str:
    return name.split(".")[1]


MODULES = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize(("checked", "banned", "why"), RULES, ids=[r[2] for r in RULES])
def test_imports_point_down(checked, banned, why):
    wrong = sorted(f"{module} imports {name}" for module, names in MODULES.items()
                   if module.count(".") and _top(module) in checked
                   for name in names if _top(name) in banned)
    assert wrong == [], why


def test_the_rules_see_the_package():
    """A rule over no module passes for nothing: the walk must find the layers."""
    tops = {_top(m) for m in MODULES if m.count(".")}
    assert {*LOWER, "budget", "report", "resolver", "inputs", "fmt"} <= tops
