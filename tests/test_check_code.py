"""`cnnstat check --allow-code`: budget entries that name a PyTorch module reference.

The limits are derived from torch's own `parameters()` of the same module (the oracle),
never from cnnstat's output. Without the flag the refusal stays, and names the flag.
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cnnstat
import cnnstat.commands.check  # noqa: F401  (attaches `check` to the app)
from cnnstat.commands.app import app
from cnnstat.errors import SpecError

NET = """\
    import torch.nn as nn


    class Net(nn.Sequential):
        def __init__(self):
            super().__init__(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
"""


def torch_params(tmp_path: Path) -> int:
    """The oracle: torch's own count of the module the budget names."""
    import importlib.util

    (tmp_path / "mynets.py").write_text(textwrap.dedent(NET))
    spec = importlib.util.spec_from_file_location("mynets_oracle", tmp_path / "mynets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return sum(p.numel() for p in mod.Net().parameters())


def budget(tmp_path: Path, max_params: int) -> Path:
    (tmp_path / "mynets.py").write_text(textwrap.dedent(NET))
    path = tmp_path / "budgets.yaml"
    path.write_text(textwrap.dedent(f"""\
        defaults: {{input: [3, 32, 32]}}
        models:
          - model: mynets.py:Net
            max_params: {max_params}
        """))
    return path


def run(*args: str):
    return CliRunner().invoke(app, ["check", *args])


def test_within_budget_passes_with_allow_code(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = budget(tmp_path, torch_params(tmp_path))
    result = run(str(path), "--allow-code")
    assert result.exit_code == 0, result.output


def test_over_budget_fails_with_allow_code(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = budget(tmp_path, torch_params(tmp_path) - 1)
    result = run(str(path), "--allow-code")
    assert result.exit_code == 1, result.output


def test_without_the_flag_the_refusal_names_it(tmp_path: Path) -> None:
    path = budget(tmp_path, 1000)
    result = run(str(path))
    assert result.exit_code == 2
    assert f"{path}:3:" in result.output
    assert "--allow-code" in result.output and "runs its code" in result.output
    with pytest.raises(SpecError, match="allow_code=True"):
        cnnstat.check(path)


def test_python_api_takes_allow_code(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    n = torch_params(tmp_path)
    assert cnnstat.check(budget(tmp_path, n), allow_code=True).exit_code == 0
    assert cnnstat.check(budget(tmp_path, n - 1), allow_code=True).exit_code == 1


def test_baseline_junit_and_annotations_work_for_references(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    n = torch_params(tmp_path)
    path = budget(tmp_path, n)
    base = tmp_path / "baseline.json"
    assert run(str(path), "--allow-code", "--baseline", str(base),
               "--update-baseline").exit_code == 0
    assert str(n) in base.read_text()
    assert run(str(path), "--allow-code", "--baseline", str(base)).exit_code == 0
    junit = run(str(path), "--allow-code", "--format", "junit")
    suites = [s.get("name") for s in ET.fromstring(junit.stdout).iter("testsuite")]
    assert suites == ["mynets.py:Net"]
    over = budget(tmp_path, n - 1)
    github = run(str(over), "--allow-code", "--format", "github")
    assert github.exit_code == 1
    assert f"file={over}" in github.stdout and "line=4" in github.stdout
