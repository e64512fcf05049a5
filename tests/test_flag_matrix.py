"""The README's promise, walked in full: every per-model command takes every flag.

Commands and flags are read from the README sentence itself ("Every per-model command
(...) takes ..."), so the promise and the code cannot drift apart. Each pair must run
(exit 0, never typer's "No such option"), and the flags whose meaning can be checked
from the outside are: JSON parses, --no-color prints no escape code, --batch sets the
batch of the input shape. Output bound for a pipe (CliRunner's is one) has no line
ending in a space.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnstat.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
MODEL = "resnet18"  # branches, blocks to fold, a global pool: every flag has work to do


def promise() -> tuple[list[str], list[str]]:
    """(commands, backticked flag tokens) of the README's per-model sentence."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    sentence = re.search(r"Every per-model command \((.*?)\) takes (.*?)\. ", text)
    assert sentence, "README lost its 'Every per-model command (...) takes ...' sentence"
    commands = re.findall(r"`(\w+)`", sentence.group(1))
    tokens = re.findall(r"`([^`]+)`", sentence.group(2))
    return commands, tokens


def argvs(token: str) -> list[list[str]]:
    """The argv (or several, one per choice) a README token stands for."""
    if re.fullmatch(r"\d+(,\d+)+", token):  # a sweep
        return [["--input", token]]
    if re.fullmatch(r"\d+", token):  # a square size
        return [["--input", token]]
    flag, _, value = token.partition(" ")
    if value == "N":
        return [[flag, "2"]]
    if "|" in value:
        return [[flag, choice] for choice in value.split("|")]
    if flag == "--dtype":
        return [[flag, "fp16"]]
    return [[flag, value] if value else [flag]]


COMMANDS, TOKENS = promise()
PAIRS = [(command, argv) for command in COMMANDS for token in TOKENS for argv in argvs(token)]


def test_the_promise_has_six_commands_and_ten_flags() -> None:
    assert COMMANDS == ["params", "flops", "shapes", "summary", "rf", "savings"]
    assert len(TOKENS) == 10, TOKENS  # 6 x 10 = the 60 pairs of issue #22


@pytest.mark.parametrize(("command", "argv"), PAIRS,
                         ids=[f"{c}:{' '.join(a)}" for c, a in PAIRS])
def test_every_command_takes_every_promised_flag(command: str, argv: list[str]) -> None:
    result = CliRunner().invoke(app, [command, MODEL, *argv])
    assert "No such option" not in result.output
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert not [line for line in out.split("\n") if line.endswith(" ")], "trailing spaces"
    if argv in (["--json"], ["--format", "json"]):
        json.loads(out)
    if argv == ["--no-color"]:
        assert "\x1b[" not in out


@pytest.mark.parametrize("command", ["params", "flops", "shapes", "summary"])
def test_batch_means_the_same_on_every_view(command: str) -> None:
    data = json.loads(CliRunner().invoke(app, [command, MODEL, "--batch", "2", "--json"]).stdout)
    assert data["input_shape"][0] == 2


def test_rf_sweep_says_where_the_field_exceeds_each_input() -> None:
    """VGG-16's pool5 field is 212 px (published-numbers.md §2.4): larger than a 128 px
    input, smaller than a 224 px one."""
    result = CliRunner().invoke(app, ["rf", "vgg16", "--input", "128,224", "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["inputs"]
    pool5 = [next(r for r in run["layers"] if r["name"] == "features.block5.pool")
             for run in runs]
    assert [p["rf"]["size"] for p in pool5] == [[212, 212], [212, 212]]
    assert [p["rf"]["exceeds_input"] for p in pool5] == [True, False]


def test_strict_passes_a_fully_counted_model_on_rf_and_savings() -> None:
    for command in ("rf", "savings"):
        assert CliRunner().invoke(app, [command, "vgg16", "--strict"]).exit_code == 0


def test_min_input_and_notes_are_in_the_json() -> None:
    """VGG-16 has five 2x2/2 max-pools (Simonyan & Zisserman, configuration D), so it
    needs at least 2**5 = 32 px; a script reads that from the JSON, not from stderr."""
    result = CliRunner().invoke(app, ["shapes", "vgg16", "--min-input", "--format", "json"])
    data = json.loads(result.stdout)
    assert data["min_input"] == {"side": 2 ** 5, "shape": [3, 32, 32]}
    assert [n["code"] for n in data["notes"]] == ["min_input"]


def test_a_sweep_json_carries_the_table_rows() -> None:
    result = CliRunner().invoke(app, ["flops", "vgg16", "--input", "112,224", "--json"])
    data = json.loads(result.stdout)
    assert [r["input_shape"] for r in data["rows"]] == ["1x3x112x112", "1x3x224x224"]
    macs = [r["totals"]["macs"] for r in data["reports"]]
    assert data["rows"][1]["macs_ratio"] == f"{macs[1] / macs[0]:.4f}"


def _torchvision_densenet121_convs() -> int:
    """DenseNet-121 (Huang et al. 2017): 1 stem conv + 2 per dense layer x (6+12+24+16)
    + 3 transition convs = 120 convs (the classifier makes the 121 of its name)."""
    return 1 + 2 * (6 + 12 + 24 + 16) + 3


def test_a_long_table_folds_to_fit_and_says_so() -> None:
    folded = CliRunner().invoke(app, ["params", "densenet121"]).stdout
    full = CliRunner().invoke(app, ["params", "densenet121", "--depth", "all"]).stdout
    note = [line for line in folded.splitlines() if line.startswith("folded to depth")]
    assert len(note) == 1 and "--depth all shows every layer" in note[0]
    assert "#1" in note[0]  # the heaviest layers stay named
    assert len(folded.splitlines()) <= 60 + 30  # rows plus title, caption and totals
    convs = [line for line in full.splitlines() if " conv2d " in line]
    assert len(convs) == _torchvision_densenet121_convs()
    assert not [line for line in full.splitlines() if line.startswith("folded")]


@pytest.mark.parametrize("extra", [[], ["--input", "224,320"]], ids=["one", "sweep"])
def test_a_long_rf_table_folds_like_the_others(extra: list[str]) -> None:
    folded = CliRunner().invoke(app, ["rf", "densenet121", *extra]).stdout
    full = CliRunner().invoke(app, ["rf", "densenet121", "--depth", "all", *extra]).stdout
    note = [line for line in folded.splitlines() if line.startswith("folded to depth")]
    assert len(note) == 1 and "--depth all shows every layer" in note[0]
    assert len(folded.splitlines()) <= 60 + 30
    convs = [line for line in full.splitlines() if " conv2d " in line]
    assert len(convs) == _torchvision_densenet121_convs()
    assert "folded" not in full


def test_rf_csv_and_json_carry_every_layer() -> None:
    data = json.loads(CliRunner().invoke(app, ["rf", "densenet121", "--json"]).stdout)
    csv_rows = CliRunner().invoke(app, ["rf", "densenet121", "--format", "csv"]).stdout
    assert len([r for r in data["layers"] if r["kind"] == "conv2d"]) == \
        _torchvision_densenet121_convs()
    assert len(csv_rows.splitlines()) == len(data["layers"]) + 1


def test_json_and_csv_carry_every_layer_of_a_long_table() -> None:
    data = json.loads(CliRunner().invoke(app, ["params", "densenet121", "--json"]).stdout)
    csv_rows = CliRunner().invoke(app, ["params", "densenet121", "--format", "csv"]).stdout
    convs = [r for r in data["layers"] if r["kind"] == "conv2d"]
    assert len(convs) == _torchvision_densenet121_convs()
    assert len(csv_rows.splitlines()) == len(data["layers"]) + 1


def test_depth_rejects_what_is_neither_a_level_nor_all() -> None:
    result = CliRunner().invoke(app, ["params", "vgg16", "--depth", "deep"])
    assert result.exit_code == 2 and "'all'" in result.output
