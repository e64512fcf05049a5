"""Terminal robustness (issue 12): every command renders under NO_COLOR=1, COLUMNS=40,
LANG=C with an ASCII stdout, and when piped, without crashing and without cutting a
number.

"Not cut" is checked against numbers nobody here computed where they exist: torchvision's
published parameter counts and GMACs (/work/shared/reference/published-numbers.md, §1:
vgg16 138,357,544 params and 15.47 GMACs, googlenet 6,624,904, resnet50 25,557,032) and
the VGG-16 receptive field of pool5, 212 px (§2.4). A table squeezed into 40 columns used
to fold them across lines (`138,357,5` / `44`) or elide them (`15,470,264,…`).

The ASCII case runs in a subprocess, so the stream really is an ASCII pipe; the rest
runs in process with typer's CliRunner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from cnnstat.cli import app

ROOT = Path(__file__).resolve().parents[1]
VGG16_PARAMS = "138,357,544"    # torchvision VGG16_Weights.IMAGENET1K_V1 num_params
VGG16_GMACS = "15.47"           # torchvision VGG16 _ops (GMACs)
VGG16_PARAMS_M = "138.36"       # the same count in millions, as SI columns print it
GOOGLENET_PARAMS = "6,624,904"  # torchvision GoogLeNet_Weights.IMAGENET1K_V1 num_params
RESNET50_PARAMS_M = "25.56"     # torchvision ResNet50 num_params 25,557,032, in millions
VGG16_POOL5_RF = "212"          # VGG-16 pool5 receptive field (published-numbers.md 2.4)
NET_PY = """import torch.nn as nn
def make():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
"""
NET_PARAMS = str(3 * 3 * 3 * 8 + 8)  # torch.nn.Conv2d(3, 8, 3): weight [8, 3, 3, 3] + bias 8


def commands(tmp: Path) -> list[tuple[list[str], list[str]]]:
    """(argv, numbers that must appear unbroken on stdout) for every command."""
    budget = tmp / "budgets.yaml"
    budget.write_text("models:\n  - model: vgg16\n    max_params: 140M\n", encoding="utf-8")
    (tmp / "net.py").write_text(NET_PY, encoding="utf-8")
    cases = [
        (["params", "vgg16"], [VGG16_PARAMS, VGG16_GMACS]),
        (["flops", "vgg16"], [VGG16_PARAMS, VGG16_GMACS]),
        (["shapes", "vgg16"], [VGG16_PARAMS]),
        (["summary", "vgg16"], [VGG16_PARAMS, VGG16_GMACS]),
        (["summary", "vgg16", "--depth", "1"], [VGG16_PARAMS]),
        (["params", "vgg16", "--input", "224,448"], [VGG16_PARAMS, VGG16_GMACS]),
        (["rf", "vgg16"], [VGG16_POOL5_RF]),
        (["savings", "googlenet"], [GOOGLENET_PARAMS]),
        (["savings", "googlenet", "--suggest"], []),
        (["compare", "vgg16", "googlenet"], [VGG16_PARAMS_M, VGG16_GMACS]),
        (["zoo"], [VGG16_PARAMS_M, RESNET50_PARAMS_M]),
        (["check", str(budget)], [VGG16_PARAMS_M]),
        (["export", "googlenet"], []),
    ]
    exact = VGG16_PARAMS.replace(",", "")
    cases += [(["check", str(budget), "--format", f], shown) for f, shown in (
        ("json", [exact, VGG16_PARAMS]), ("junit", []), ("github", []),
        ("markdown", [VGG16_PARAMS_M]))]
    cases += [([*argv, "--format", f], []) for argv, _ in cases[:11]
              for f in ("json", "csv", "markdown") if argv[0] != "check"]
    if "time" in typer.main.get_command(app).commands:
        cases.append((["time", "lenet5", "--device", "cpu", "--iters", "3", "--warmup", "1",
                       "--no-peak"], []))
    cases.append((["params", f"{tmp / 'net.py'}:make", "--input", "3x8x8"], [NET_PARAMS]))
    return cases


def test_every_command_is_covered(tmp_path: Path) -> None:
    """Catches: a new command that nobody checked on a narrow, non-UTF-8 terminal."""
    covered = {argv[0] for argv, _ in commands(tmp_path)}
    assert set(typer.main.get_command(app).commands) <= covered


def check_output(argv: list[str], code: int, stdout: str, stderr: str,
                 numbers: list[str]) -> None:
    shown = f"cnnstat {' '.join(argv)} -> {code}\n{stderr[-1500:]}\n{stdout[:2000]}"
    assert code == 0, shown
    assert "Traceback" not in stderr and "internal error" not in stderr, shown
    assert "\x1b[" not in stdout, "colour codes under NO_COLOR"
    for number in numbers:
        assert number in stdout, f"{number} missing or cut in:\n{shown}"
    if "--format" in argv and argv[argv.index("--format") + 1] == "json":
        json.loads(stdout)  # still one parseable document


def test_narrow_no_color_in_process(tmp_path: Path) -> None:
    """Catches: numbers folded or elided in a 40-column table (UTF-8, no colour)."""
    runner = CliRunner()
    for argv, numbers in commands(tmp_path):
        if argv[0] == "time" or any(a.endswith(":make") for a in argv):
            continue  # torch: covered once, in the subprocess below
        result = runner.invoke(app, argv, env={"NO_COLOR": "1", "COLUMNS": "40"})
        check_output(argv, result.exit_code, result.stdout, result.stderr, numbers)


DRIVER = """
import json, sys
from cnnstat.cli import app
for i, argv in enumerate(json.loads(sys.argv[1])):
    try:
        app(argv, prog_name="cnnstat")
        code = 0
    except SystemExit as e:
        code = e.code or 0
    sys.stdout.flush()
    sys.stderr.flush()
    print(f"\\n@@@ {i} {code}", flush=True)
    print(f"\\n@@@ {i} {code}", file=sys.stderr, flush=True)
"""


def run_in_a_pipe(cases, env_extra: dict[str, str], tmp: Path,
                  encoding: str = "ascii") -> list[tuple[int, str, str]]:
    """Every case in one subprocess whose stdout and stderr are pipes with `env_extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps([a for a, _ in cases])],
                          capture_output=True, env=env, cwd=tmp, timeout=600)
    # Chunk k >= 1 starts with "k-1 CODE" (the marker after case k-1), then case k's text.
    outs, errs = proc.stdout.split(b"\n@@@ "), proc.stderr.split(b"\n@@@ ")
    assert len(outs) == len(cases) + 1, proc.stderr.decode(errors="replace")[-3000:]

    def body(chunk: bytes, i: int) -> bytes:
        return chunk if i == 0 else chunk.split(b"\n", 1)[1]

    return [(int(outs[i + 1].split(b"\n", 1)[0].split()[1]), body(outs[i], i).decode(encoding),
             body(errs[i], i).decode("utf-8", "replace")) for i in range(len(cases))]


@pytest.mark.slow
def test_ascii_stdout_narrow_pipe(tmp_path: Path) -> None:
    """Catches: UnicodeEncodeError (exit 70) from box drawing, ellipses or marks when
    stdout is ASCII (LANG=C, PYTHONIOENCODING=ascii), and numbers cut at COLUMNS=40.
    The output must decode as ASCII: nothing was written that the stream cannot hold."""
    cases = commands(tmp_path)
    env = {"LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "ascii", "NO_COLOR": "1",
           "COLUMNS": "40"}
    for (argv, numbers), (code, out, err) in zip(cases, run_in_a_pipe(cases, env, tmp_path),
                                                 strict=True):
        check_output(argv, code, out, err, numbers)


def test_piped_without_columns_under_c_locale(tmp_path: Path) -> None:
    """Catches: a pipe with no COLUMNS squeezing tables into 80 columns, or LANG=C (which
    Python coerces to UTF-8) breaking the tables."""
    cases = [(a, n) for a, n in commands(tmp_path)[:12]]
    env = {"LANG": "C", "LC_ALL": "C", "NO_COLOR": "1"}
    results = run_in_a_pipe(cases, env, tmp_path, "utf-8")
    for (argv, numbers), (code, out, err) in zip(cases, results, strict=True):
        check_output(argv, code, out, err, numbers)
        assert max(len(line) for line in out.splitlines()) <= 200 or argv[0] == "savings"


@pytest.mark.parametrize("charset", ["ascii", "latin-1"])
def test_non_utf8_stdout_in_process(charset: str) -> None:
    """Catches: a non-ASCII character (an ellipsis, a check mark, a box corner) reaching a
    stream that cannot encode it, for tables and the gate's own formats."""
    runner = CliRunner(charset=charset)
    for argv in (["summary", "vgg16"], ["zoo"], ["compare", "vgg16", "googlenet"],
                 ["savings", "googlenet"], ["rf", "vgg16"]):
        result = runner.invoke(app, argv, env={"NO_COLOR": "1", "COLUMNS": "40"})
        check_output(argv, result.exit_code, result.stdout, result.stderr, [])


def test_help_on_a_narrow_ascii_terminal(tmp_path: Path) -> None:
    """Catches: --help crashing (a traceback, exit 1) when it elides text with '…' on an
    ASCII stdout 40 columns wide."""
    env = {"LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "ascii", "NO_COLOR": "1",
           "COLUMNS": "40"}
    cases = [(["--help"], []), (["params", "--help"], []), (["check", "--help"], [])]
    for (argv, numbers), (code, out, err) in zip(cases, run_in_a_pipe(cases, env, tmp_path),
                                                 strict=True):
        check_output(argv, code, out, err, numbers)


def test_non_ascii_model_names_in_plain_formats_on_an_ascii_stdout(tmp_path: Path) -> None:
    """Catches: a spec named 'Réseau' crashing markdown and CSV output (exit 70) on an
    ASCII stdout."""
    spec = tmp_path / "uni.yaml"
    spec.write_text("name: Réseau\ninput: [3, 8, 8]\nlayers: [{conv: 4, k: 3}]\n",
                    encoding="utf-8")
    runner = CliRunner(charset="ascii")
    for argv in (["params", str(spec), "-f", "markdown"], ["savings", str(spec), "-f", "csv"]):
        result = runner.invoke(app, argv)
        check_output(argv, result.exit_code, result.stdout, result.stderr, [])
