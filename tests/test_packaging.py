"""What a user installs: every package ships, and the zoo ships inside it.

A non-editable install is the real test (`pip install .` then `cnnstat params vgg16`
from another directory); it builds a wheel, so it is marked slow.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "cnnstat").rglob("__init__.py")}
    assert on_disk <= listed, f"not packaged: {sorted(on_disk - listed)}"
    assert "cnnstat.zoo_specs" in listed


@pytest.mark.slow
def test_non_editable_install_finds_the_zoo(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(ROOT)],
                   check=True, capture_output=True)
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "cnnstat", "params", "vgg16", "--json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert '"params": 138357544' in out.stdout
    assert str(target) in subprocess.run(
        [sys.executable, "-c", "import cnnstat.resolver as m; print(m.zoo_dir())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
