"""The YAML/zoo path never imports torch (it costs ~3 s of start-up on these machines)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from typer.testing import CliRunner
from cnnstat.cli import app
commands = (["params", "vgg16"], ["summary", "vgg16", "--json"], ["flops", "vgg16", "-f", "csv"],
            ["export", "resnet50"])
for command in commands:
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
import cnnstat
cnnstat.analyze("vgg16")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "fvcore", "numpy"))
print(heavy)
"""


def test_spec_path_imports_no_torch() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout
