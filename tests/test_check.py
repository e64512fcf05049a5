"""`cnnstat check`: the CI budget gate, through the CLI and through the Python API.

Limits come from published numbers, never from cnnstat's output:
- torchvision VGG16_Weights.IMAGENET1K_V1: num_params 138,357,544; _ops 15.47 GMACs
  (rounded to 2 decimals, so the true value lies in [15.465, 15.475) G); output 1000 classes.
- torchvision ResNet50_Weights.IMAGENET1K_V1: num_params 25,557,032.
- VGG-16 = 13 conv + 3 FC weight layers (Simonyan & Zisserman, configuration D).
- VGG-16 receptive field at pool5: 212 (reference/published-numbers.md §2.4).
- fc6 params from the paper's architecture: 7*7*512*4096 + 4096 = 102,764,544.
(see /work/shared/reference/published-numbers.md)
"""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cnnstat
import cnnstat.commands.check  # noqa: F401  (attaches `check` to the app)
from cnnstat.budget import assert_budget, gate
from cnnstat.budget.spec import load_budgets
from cnnstat.commands.app import app
from cnnstat.errors import SpecError
from cnnstat.resolver import zoo_names

VGG16_PARAMS = 138_357_544          # torchvision VGG16_Weights num_params
RESNET50_PARAMS = 25_557_032        # torchvision ResNet50_Weights num_params
VGG16_FC6_PARAMS = 7 * 7 * 512 * 4096 + 4096  # = 102,764,544 (paper, configuration D)
VGG16_POOL5_RF = 212                # published-numbers.md §2.4


def write(tmp_path: Path, text: str, name: str = "budgets.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run(*args: str, charset: str = "utf-8"):
    return CliRunner(charset=charset).invoke(app, ["check", *args])


def needs(name: str) -> None:
    if name not in zoo_names():
        pytest.skip(f"zoo spec {name} not present yet")


# -- passing and failing -------------------------------------------------------------------

PASSING = """\
    defaults: {input: [3, 224, 224], batch: 1}
    models:
      - model: vgg16
        max_params: 138357544      # published exactly: a limit equal to the actual passes
        max_macs: 15.48G           # published 15.47 G (2 decimals) < 15.475 G
        max_flops: 30.95G          # 2 x MACs < 30.95 G
        output_shape: [1, 1000]    # ImageNet classes
        max_depth: 16              # VGG-16: 16 weight layers
        layers: {"classifier.fc6": {max_params: 102764544}}
"""


def test_passing_file_exits_0(tmp_path: Path) -> None:
    """Catches a gate that fails on an exact limit (< instead of <=) or mis-reads 15.48G."""
    result = run(str(write(tmp_path, PASSING)))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.count("✓ PASS") == 6
    assert "FAIL" not in result.stdout
    assert result.stderr == ""


def test_passing_file_through_api(tmp_path: Path) -> None:
    """cnnstat.check returns the result object; params headroom is exactly 0 at the limit."""
    result = cnnstat.check(write(tmp_path, PASSING))
    assert result.passed and result.exit_code == 0
    assert result.failures == ()
    assert len(result.results) == 6
    params = next(r for r in result.results if r.metric == "max_params")
    assert params.actual == VGG16_PARAMS
    assert params.headroom_pct == 0.0


def test_exceeded_limit_exits_1_naming_model_metric_limit_actual(tmp_path: Path) -> None:
    """Catches an exceeded budget that exits 0, or a message that hides the numbers."""
    path = write(tmp_path, """\
        models:
          - model: vgg16
            max_params: 138357543   # one below torchvision's 138,357,544
            max_depth: 16
    """)
    result = run(str(path))
    assert result.exit_code == 1, result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith(f"{path}:3:5: error: "), line       # the max_params key
    for part in ("vgg16", "max_params", "138,357,543", "138,357,544"):
        assert part in line, line
    assert "FAIL" in result.stdout and "PASS" in result.stdout


def test_exceeded_limit_through_api(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        models:
          - model: vgg16
            max_params: 138M
    """)
    result = cnnstat.check(path)
    assert not result.passed and result.exit_code == 1
    (failure,) = result.failures
    assert (failure.model, failure.metric, failure.limit, failure.actual) == (
        "vgg16", "max_params", 138_000_000, VGG16_PARAMS)
    assert failure.loc.line == 3
    assert failure.headroom_pct < 0


def test_per_layer_glob_names_the_worst_layer(tmp_path: Path) -> None:
    """`classifier.*` holds each matching layer to the limit: fc6 is the one over it."""
    path = write(tmp_path, """\
        models:
          - model: vgg16
            layers: {"classifier.*": {max_params: 102764543}}
    """)
    result = cnnstat.check(path)
    (failure,) = result.failures
    assert failure.layer == "classifier.fc6"
    assert failure.actual == VGG16_FC6_PARAMS
    assert result.exit_code == 1
    table = run(str(path)).stdout
    assert "max_params[classifier.*] @ classifier.fc6" in table  # not eaten as rich markup


def test_glob_matching_no_layer_fails_closed(tmp_path: Path) -> None:
    """A limit on nothing must not pass vacuously (a typo in a glob would hide a budget)."""
    path = write(tmp_path, """\
        models:
          - model: vgg16
            layers: {"clasifier.*": {max_params: 1M}}
    """)
    result = run(str(path))
    assert result.exit_code == 2
    assert "matches no layer" in result.stderr
    assert f"{path}:3:30:" in result.stderr  # the max_params key inside the glob's limits


def test_output_shape_and_depth_fail_with_exit_1(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        models:
          - model: vgg16
            output_shape: [1, 10]
            max_depth: 15
    """)
    result = cnnstat.check(path)
    assert result.exit_code == 1
    assert {f.metric for f in result.failures} == {"output_shape", "max_depth"}
    depth = next(f for f in result.failures if f.metric == "max_depth")
    assert depth.actual == 16


@pytest.mark.slow  # imports torch and builds VGG-16 on the meta device
def test_activation_bytes_against_torch_shapes(tmp_path: Path) -> None:
    """The activation budget counts every layer's output at fp32, as torch's shapes say."""
    from oracles import torch_truth

    from cnnstat.resolver import resolve

    truth = torch_truth(resolve("vgg16").graph)
    fp32_bytes = 4 * sum(_prod(s) for s in truth.shapes.values())
    ok = write(tmp_path, f"models: [{{model: vgg16, max_activation_bytes: {fp32_bytes}}}]")
    assert cnnstat.check(ok).passed
    over = write(tmp_path, f"models: [{{model: vgg16, max_activation_bytes: {fp32_bytes - 1}}}]",
                 "over.yaml")
    assert cnnstat.check(over).exit_code == 1


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def test_several_models_report_each(tmp_path: Path) -> None:
    needs("resnet50")
    path = write(tmp_path, """\
        models:
          - model: vgg16
            max_params: 140M
          - model: resnet50
            max_params: 25557031    # one below torchvision's 25,557,032
    """)
    result = cnnstat.check(path)
    assert [m.passed for m in result.models] == [True, False]
    assert result.failures[0].actual == RESNET50_PARAMS


# -- receptive field: measured, or fail closed -----------------------------------------------

def _has_rf() -> bool:
    return any(layer.rf for layer in cnnstat.analyze("vgg16").layers)


def test_min_rf_against_published_vgg16(tmp_path: Path) -> None:
    """VGG-16's last 7x7 map (pool5, then an identity 7x7 adaptive pool) sees 212 px."""
    if not _has_rf():
        pytest.skip("the receptive-field analyzer is not wired into reports yet")
    ok = write(tmp_path, f"models: [{{model: vgg16, min_rf: {VGG16_POOL5_RF}}}]")
    assert cnnstat.check(ok).passed
    short = write(tmp_path, f"models: [{{model: vgg16, min_rf: {VGG16_POOL5_RF + 1}}}]", "b.yaml")
    result = cnnstat.check(short)
    assert result.exit_code == 1
    assert result.failures[0].actual == (VGG16_POOL5_RF, VGG16_POOL5_RF)


def test_min_rf_without_rf_fails_closed(tmp_path: Path, monkeypatch) -> None:
    """No receptive field in the report must give exit 2 'cannot measure', never a pass."""
    import cnnstat.budget as budget

    real = budget.analyze_graph

    def without_rf(*args, **kwargs):
        report = real(*args, **kwargs)
        layers = tuple(dataclasses.replace(row, receptive_field=None) for row in report.layers)
        return dataclasses.replace(report, layers=layers)

    monkeypatch.setattr(budget, "analyze_graph", without_rf)
    path = write(tmp_path, """\
        models:
          - model: vgg16
            min_rf: 1
    """)
    result = run(str(path))
    assert result.exit_code == 2
    assert "cannot measure min_rf" in result.stderr
    assert f"{path}:3:5:" in result.stderr


def test_unsupported_layer_fails_closed() -> None:
    """Totals that exclude an uncounted layer must not pass a params budget."""
    from cnnstat.analyzers.results import Unsupported

    report = cnnstat.analyze("vgg16")
    blind = dataclasses.replace(report, unsupported=(
        Unsupported(layer="features.block1.conv1", kind="conv2d", analyzer="params"),))
    budgets = load_budgets_text("models: [{model: vgg16, max_params: 1G}]")
    (result,) = gate.evaluate(budgets.models[0], blind)
    assert result.status == gate.ERROR
    assert "cannot measure max_params" in result.message


def load_budgets_text(text: str):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "b.yaml"
        path.write_text(text)
        return load_budgets(path)


# -- malformed budget files: exit 2 with file:line:col ----------------------------------------

BAD = {
    "bad_yaml": """\
        # expect: 4:19: mapping values are not allowed
        models:
          - model: vgg16
            max_params: 5M: 3
    """,
    "unknown_key": """\
        # expect: 4:5: has no key 'max_param' (did you mean 'max_params'?)
        models:
          - model: vgg16
            max_param: 5M
    """,
    "bad_unit": """\
        # expect: 4:17: unknown unit 'Q' in '5Q'
        models:
          - model: vgg16
            max_params: 5Q
    """,
    "byte_unit_on_count": """\
        # expect: 4:15: unknown unit 'MB' in '1MB'
        models:
          - model: vgg16
            max_macs: 1MB
    """,
    "unknown_top_key": """\
        # expect: 2:1: the budget file has no key 'model' (did you mean 'models'?)
        model:
          - model: vgg16
    """,
    "no_limits": """\
        # expect: 3:5: sets no budget
        models:
          - model: vgg16
    """,
    "fractional_count": """\
        # expect: 4:17: must come to a whole number
        models:
          - model: vgg16
            max_params: 1.5
    """,
}


def _expect(text: str) -> tuple[str, str]:
    header = textwrap.dedent(text).splitlines()[0]
    where, message = header.removeprefix("# expect: ").split(": ", 1)
    return where, message


@pytest.mark.parametrize("name", BAD)
def test_malformed_file_exits_2_located(tmp_path: Path, name: str) -> None:
    """Each bad file names its expected line:col; the CLI prints exactly that location."""
    path = write(tmp_path, BAD[name])
    where, message = _expect(BAD[name])
    result = run(str(path))
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"{path}:{where}: error: "), err
    assert message in err, err


@pytest.mark.parametrize("name", BAD)
def test_malformed_file_raises_located_spec_error(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, BAD[name])
    where, _ = _expect(BAD[name])
    with pytest.raises(SpecError) as info:
        cnnstat.check(path)
    assert f"{info.value.loc.line}:{info.value.loc.col}" == where


def test_unknown_model_exits_2_and_still_reports_the_others(tmp_path: Path) -> None:
    """One bad reference must not hide the other models' results (report all, exit 2)."""
    path = write(tmp_path, """\
        models:
          - model: vgg16
            max_params: 140M
          # expect: 5:12: unknown model 'vgg17' (did you mean ... 'vgg16' ...)
          - model: vgg17
            max_params: 140M
    """)
    result = run(str(path))
    assert result.exit_code == 2
    assert f"{path}:5:12: error: " in result.stderr
    assert "unknown model 'vgg17'" in result.stderr and "'vgg16'" in result.stderr
    assert "PASS" in result.stdout and "ERROR" in result.stdout
    api = cnnstat.check(path)
    assert api.exit_code == 2 and api.models[0].passed and api.models[1].error


def test_relative_spec_path_is_read_from_the_budget_files_directory(tmp_path: Path,
                                                                   monkeypatch) -> None:
    """CI may run from anywhere: `specs/mine.yaml` means beside the budget file."""
    from cnnstat.resolver import zoo_dir

    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mine.yaml").write_text((zoo_dir() / "vgg16.yaml").read_text())
    path = write(tmp_path, "models: [{model: specs/mine.yaml, max_params: 138357544}]")
    monkeypatch.chdir("/")
    assert cnnstat.check(path).passed


# -- baselines --------------------------------------------------------------------------------

def _baseline(tmp_path: Path, params: int) -> Path:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"schema": "cnnstat.baseline/1", "models": [
        {"model": "vgg16", "input_shape": [1, 3, 224, 224], "dtype": "fp32",
         "totals": {"params": params}}]}))
    return path


SIMPLE = "models: [{model: vgg16, max_params: 140M}]\n"


def test_regression_past_tolerance_exits_1(tmp_path: Path) -> None:
    """Params grew 3% over the baseline: past the default 2%, so the gate fails."""
    base = _baseline(tmp_path, VGG16_PARAMS * 100 // 103)
    result = run(str(write(tmp_path, SIMPLE)), "--baseline", str(base))
    assert result.exit_code == 1, result.stderr
    assert "params regressed past the baseline" in result.stderr
    assert "138,357,544" in result.stderr


def test_regression_within_tolerance_exits_0(tmp_path: Path) -> None:
    base = _baseline(tmp_path, VGG16_PARAMS * 100 // 101)   # +1% < 2%
    result = run(str(write(tmp_path, SIMPLE)), "--baseline", str(base))
    assert result.exit_code == 0, result.stderr
    wider = _baseline(tmp_path, VGG16_PARAMS * 100 // 103)  # +3% < 5%
    result = run(str(write(tmp_path, SIMPLE)), "--baseline", str(wider), "--tolerance", "5%")
    assert result.exit_code == 0, result.stderr


def test_update_baseline_writes_valid_json(tmp_path: Path) -> None:
    budgets = write(tmp_path, SIMPLE)
    base = tmp_path / "baseline.json"
    result = run(str(budgets), "--baseline", str(base), "--update-baseline")
    assert result.exit_code == 0, result.stderr
    data = json.loads(base.read_text())
    assert data["models"][0]["totals"]["params"] == VGG16_PARAMS
    assert run(str(budgets), "--baseline", str(base)).exit_code == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_failed_baseline_write_leaves_the_old_file(tmp_path: Path, monkeypatch, step) -> None:
    """A failure mid-write must leave the previous baseline byte-identical, no temp file."""
    base = tmp_path / "baseline.json"
    old = b'{"schema": "cnnstat.baseline/1", "models": []}\n'
    base.write_bytes(old)
    seen = []

    def boom(*args, **kwargs):
        seen.extend(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, step, boom)
    result = run(str(write(tmp_path, SIMPLE)), "--baseline", str(base), "--update-baseline")
    assert result.exit_code == 2
    assert "No space left on device" in result.stderr
    assert seen, "the new baseline was not being written beside the old one"
    assert base.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_report_json_works_as_baseline(tmp_path: Path) -> None:
    """A JSON report (what `cnnstat summary --format json` prints) works as a baseline."""
    from cnnstat.report.export import to_json

    base = tmp_path / "report.json"
    base.write_text(to_json(cnnstat.analyze("vgg16")))
    result = cnnstat.check(write(tmp_path, SIMPLE), baseline=base)
    assert result.passed
    assert any(r.metric == "params vs baseline" for r in result.results)


def test_update_baseline_to_dash_writes_stdout(tmp_path: Path, monkeypatch) -> None:
    """Catches: `--baseline - --update-baseline` creating a file named '-' (docs/limits.md:
    `-` or /dev/stdout as FILE writes to stdout)."""
    monkeypatch.chdir(tmp_path)
    result = run(str(write(tmp_path, SIMPLE)), "--baseline", "-", "--update-baseline")
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "-").exists()
    start = result.stdout.index('{\n  "schema": "cnnstat.baseline/1"')
    snapshot, _ = json.JSONDecoder().raw_decode(result.stdout[start:])
    assert snapshot["models"][0]["totals"]["params"] == VGG16_PARAMS


def test_update_baseline_needs_a_path(tmp_path: Path) -> None:
    result = run(str(write(tmp_path, SIMPLE)), "--update-baseline")
    assert result.exit_code == 2
    assert "--baseline" in result.stderr


# -- CI formats -------------------------------------------------------------------------------

MIXED = """\
    models:
      - model: vgg16
        max_params: 140M
        max_macs: 1G           # line 4, col 5: far below the published 15.47 GMACs: fails
        output_shape: [1, 1000]
"""


def test_junit_is_xml_with_one_testcase_per_budget(tmp_path: Path) -> None:
    result = run(str(write(tmp_path, MIXED)), "--format", "junit")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    cases = root.findall(".//testcase")
    assert len(cases) == 3
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["max_macs"]
    assert failed[0].get("line") == "4"
    assert root.get("tests") == "3" and root.get("failures") == "1"


def test_github_annotations_carry_the_budget_line(tmp_path: Path) -> None:
    path = write(tmp_path, MIXED)
    result = run(str(path), "--format", "github")
    assert result.exit_code == 1
    annotations = [ln for ln in result.stdout.splitlines() if ln.startswith("::error ")]
    assert len(annotations) == 1
    assert annotations[0].startswith(f"::error file={path},line=4,col=5,")
    assert "max_macs" in annotations[0]


def test_json_and_markdown_formats(tmp_path: Path) -> None:
    path = write(tmp_path, MIXED)
    data = json.loads(run(str(path), "--format", "json").stdout)
    assert data["exit_code"] == 1 and data["passed"] is False
    budgets = {b["metric"]: b for b in data["models"][0]["budgets"]}
    assert budgets["max_params"]["actual"] == VGG16_PARAMS
    assert budgets["max_macs"]["status"] == "fail"
    markdown = run(str(path), "--format", "markdown").stdout
    assert "| Model | Budget | Limit | Actual | Headroom | Result |" in markdown
    assert "FAIL" in markdown


def test_ascii_stdout_gets_ascii_only(tmp_path: Path) -> None:
    """Under a non-UTF-8 stdout the table still says PASS/FAIL, in plain ASCII."""
    result = run(str(write(tmp_path, MIXED)), charset="ascii")
    assert result.exit_code == 1
    text = result.stdout_bytes.decode("ascii")  # raises if anything is not ASCII
    assert "PASS" in text and "FAIL" in text


# -- pytest helper ----------------------------------------------------------------------------

def test_assert_budget_passes_and_fails_clearly() -> None:
    report = assert_budget("vgg16", max_params=VGG16_PARAMS, max_macs="15.48G",
                           input=(3, 224, 224))
    assert report.totals.params == VGG16_PARAMS
    with pytest.raises(AssertionError) as info:
        assert_budget("vgg16", max_params="138M")
    message = str(info.value)
    for part in ("vgg16", "max_params", "138,000,000", "138,357,544"):
        assert part in message, message


def test_assert_budget_needs_a_limit() -> None:
    with pytest.raises(TypeError):
        assert_budget("vgg16")


def test_check_never_imports_torch(tmp_path: Path) -> None:
    """The gate reads YAML specs only; torch would cost seconds per CI run."""
    import subprocess
    import sys

    path = write(tmp_path, SIMPLE)
    code = ("import sys, cnnstat; r = cnnstat.check(sys.argv[1]); "
            "assert r.passed; assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
