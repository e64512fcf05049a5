"""`--strict` (README: exit 3 when anything could not be counted) on `rf` and `savings`,
where it has work to do, and on an opaque op whose element-wise work torch cannot count.

Each case runs twice: lenient (exit 0, a warning on stderr) and strict (exit 3, one
error line, nothing on stdout), so a strict exit is never mistaken for a crash.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnstat.analyzers import ops
from cnnstat.cli import app
from cnnstat.ir import layers as L

# conv2 reads space after a permute moved H and W off dims 2, 3: its field is unknown
# (docs/spec.md, `permute`); every count is still known.
PERMUTED = """\
name: permuted
input: [3, 32, 32]
layers:
  - {conv: 8, k: 3}
  - {permute: [0, 2, 3, 1]}
  - {conv: 8, k: 3}
  - gap
  - flatten
  - {fc: 4}
"""

# torch.cumsum has no converter: an opaque node, its MACs from torch, its element-wise
# work unknown (docs/torch.md, "Opaque and unsupported").
OPAQUE = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.cumsum(self.conv(x), dim=2).flatten(2).amax(-1))
"""


def _both(args: list[str]):
    lenient = CliRunner().invoke(app, args)
    strict = CliRunner().invoke(app, [*args, "--strict"])
    return lenient, strict


def _refused(result) -> str:
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "--strict is set" in error[0], result.stderr
    assert "Traceback" not in result.stderr
    return error[0]


@pytest.fixture()
def permuted(tmp_path: Path) -> str:
    path = tmp_path / "permuted.yaml"
    path.write_text(PERMUTED)
    return str(path)


@pytest.mark.parametrize("extra", [[], ["--json"], ["--input", "32,48"]],
                         ids=["table", "json", "sweep"])
def test_rf_strict_exits_3_on_an_unknown_field(permuted: str, extra: list[str]):
    lenient, strict = _both(["rf", permuted, *extra])
    assert lenient.exit_code == 0, lenient.output
    assert "later fields are unknown" in lenient.stderr
    assert "unknown" in _refused(strict)


def test_counts_stay_strict_clean_when_only_a_field_is_unknown(permuted: str):
    """A field is not a count: flops --strict passes the same spec rf --strict refuses."""
    assert CliRunner().invoke(app, ["flops", permuted, "--strict"]).exit_code == 0


@pytest.fixture()
def no_relu_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    """ReLU without an ops handler: every ReLU's other ops are unsupported."""
    monkeypatch.delitem(ops.OPS._traits, L.POINTWISE)  # ReLU's ops come from its trait
    monkeypatch.delitem(ops.OPS._handlers, L.ReLU, raising=False)  # and its cached lookup


@pytest.mark.parametrize("extra", [[], ["--suggest"], ["--input", "160,224"], ["--json"]],
                         ids=["findings", "suggest", "sweep", "json"])
def test_savings_strict_exits_3_on_unsupported_layers(no_relu_ops, extra: list[str]):
    lenient, strict = _both(["savings", "googlenet", *extra])
    assert lenient.exit_code == 0, lenient.output
    assert "unsupported" in lenient.stderr
    assert "relu" in _refused(strict)


@pytest.fixture()
def opaque_ref(tmp_path: Path) -> str:
    pytest.importorskip("torch")
    (tmp_path / "opaque_net.py").write_text(OPAQUE)
    return f"{tmp_path / 'opaque_net.py'}:Net"


@pytest.mark.parametrize("command", ["flops", "summary", "savings"])
def test_strict_refuses_an_opaque_op_whose_work_is_not_counted(opaque_ref: str, command: str):
    lenient, strict = _both([command, opaque_ref, "--input", "3x16x16"])
    assert lenient.exit_code == 0, lenient.output
    assert "kept opaque" in lenient.stderr
    assert "cumsum" in _refused(strict)


def test_rf_strict_refuses_a_field_through_an_opaque_op(opaque_ref: str):
    lenient, strict = _both(["rf", opaque_ref, "--input", "3x16x16"])
    assert lenient.exit_code == 0, lenient.output
    _refused(strict)
