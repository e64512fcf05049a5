"""A flat spec (no blocks, so nothing to fold) longer than a screen: the table shows its
first rows and says how many it left out; --depth all and --json keep every layer."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cnnstat.cli import app
from cnnstat.report.tables import SCREEN_ROWS

LAYERS = 500


def _flat(tmp_path: Path) -> Path:
    spec = tmp_path / "flat.yaml"  # one conv 3->4, 3x3, then relus
    body = ", ".join(["{conv: 4, k: 3, p: 1}"] + ["relu"] * (LAYERS - 1))
    spec.write_text(f"{{name: flat, input: [3, 8, 8], layers: [{body}]}}\n")
    return spec


def test_a_flat_table_shows_a_screen_and_counts_the_rest(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["params", str(_flat(tmp_path))])
    assert result.exit_code == 0, result.output
    shown = [line for line in result.stdout.splitlines() if line.strip().startswith("relu")]
    assert len(shown) == SCREEN_ROWS - 1  # the conv is the first row
    assert f"... {LAYERS - SCREEN_ROWS} more" in result.stdout
    assert f"the first {SCREEN_ROWS} of its {LAYERS} rows shown" in result.stdout
    params = next(line for line in result.stdout.splitlines() if line.startswith("Params"))
    assert params.split()[1] == "112"  # the totals count every row: 3*3*3*4 weights + 4 biases


def test_depth_all_and_json_keep_every_layer(tmp_path: Path) -> None:
    spec = str(_flat(tmp_path))
    table = CliRunner().invoke(app, ["params", spec, "--depth", "all"]).stdout
    assert sum(line.strip().startswith("relu") for line in table.splitlines()) == LAYERS - 1
    report = json.loads(CliRunner().invoke(app, ["params", spec, "--json"]).stdout)
    assert len(report["layers"]) == LAYERS
    assert report["totals"]["params"] == 3 * 3 * 3 * 4 + 4
