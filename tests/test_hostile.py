"""Hostile input, round two (issue 24): each case once ended in exit 70 or a hang, or let
the budget gate pass a broken baseline. Each now ends with one error line and exit 2."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.test_limits import assert_refused, cli, write

SPEC = "input: [3, 8, 8]\nlayers:\n  - {{conv: 4, k: 3}}\n  - {layer}\n"
BUDGET = "models:\n  - model: lenet5\n    max_params: 1M\n"
LENET_ENTRY = {"model": "lenet5", "input_shape": [1, 1, 32, 32], "dtype": "fp32"}
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no fifos on this OS")
needs_dev_zero = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")


# ---- the expression evaluator keeps values real and bounded ----------------------------------
@pytest.mark.parametrize("layer, field", [
    ('{conv: "(-8) ** 0.5", k: 3}', "out_channels"),
    ('{dropout: "(-1) ** 0.5"}', "p"),
    ('{upsample: "(-4) ** 0.5"}', "upsample"),
])
def test_a_complex_result_is_a_located_error(tmp_path: Path, layer: str, field: str) -> None:
    """Catches: `(-8) ** 0.5` giving a complex number that crashed a comparison or float()."""
    path = write(tmp_path, SPEC.format(layer=layer))
    result = cli("params", str(path))
    assert_refused(result, f"{path}:4:", "complex number")


@pytest.mark.parametrize("literal, message", [
    ("0x" + "f" * 5000, "has 5002 digits"),  # int() takes hex, but str() of it is refused
    ("0" + "7" * 6000, "has 6001 digits"),   # YAML 1.1 octal
    ("0b" + "1" * 20000, "has 20002 digits"),
    ('"' + "9" * 450 + '"', "~1e450 is larger than 1e+30"),  # too big for float() too
    ("0x" + "f" * 200, "must be a number within +-1e+30"),
])
def test_a_huge_literal_is_a_located_error(tmp_path: Path, literal: str, message: str) -> None:
    """Catches: "Exceeds the limit (4300 digits)" and float() overflow while showing it."""
    path = write(tmp_path, SPEC.format(layer=f"{{conv: {literal}, k: 3}}"))
    assert_refused(cli("params", str(path)), f"{path}:4:", message)


def test_a_huge_hex_literal_as_a_name_is_a_located_error(tmp_path: Path) -> None:
    """Catches: str() of a 5,000-digit hex int used as a layer name (found by the fuzzer)."""
    path = write(tmp_path, SPEC.format(layer="{relu: null, name: 0x" + "f" * 5000 + "}"))
    assert_refused(cli("params", str(path)), f"{path}:4:", "has 5002 digits")


def test_a_model_path_longer_than_the_os_allows_is_exit_2() -> None:
    """Catches: OSError ENAMETOOLONG from Path.exists()."""
    result = cli("params", "a" * 5000 + ".yaml")
    assert_refused(result, "error: MODEL 'aaa", "5005 characters")


@pytest.mark.parametrize("tolerance", ["1e999999999%", "1e-999999999%", "9" * 100])
def test_a_huge_or_tiny_tolerance_is_refused_at_once(tmp_path: Path, tolerance: str) -> None:
    """Catches: Fraction('1e999999999') building a billion-digit integer (a hang)."""
    budget = write(tmp_path, BUDGET, "budgets.yaml")
    baseline = write(tmp_path, json.dumps({**LENET_ENTRY, "totals": {"params": 1}}), "b.json")
    result = cli("check", str(budget), "--baseline", str(baseline), "--tolerance", tolerance)
    assert_refused(result, "error: --tolerance", "exponent within +-30")


# ---- baselines are validated: a gate never passes one it cannot read -------------------------
@pytest.mark.parametrize("value, shown", [
    (True, "got true"), ({"a": 1}, "got an object"), ([1, 2], "got a list"),
    (1.5, "got a fraction"), ("61750", "got text"), (-1, "got -1"), (None, "got null"),
])
def test_a_baseline_total_that_is_not_a_count_fails_closed(tmp_path: Path, value, shown) -> None:
    """Catches: {"params": true} passing the gate (exit 0) and dict/list totals crashing."""
    budget = write(tmp_path, BUDGET, "budgets.yaml")
    baseline = write(tmp_path, json.dumps({**LENET_ENTRY, "totals": {"params": value}}), "b.json")
    result = cli("check", str(budget), "--baseline", str(baseline))
    assert_refused(result, f"{baseline}:", shown)


@pytest.mark.parametrize("entry, message", [
    ({**LENET_ENTRY, "input_shape": [1, True, 32, 32]}, "'input_shape'"),
    ({**LENET_ENTRY, "input_shape": [[1], 1]}, "'input_shape'"),
    ({**LENET_ENTRY, "dtype": {"a": 1}}, "'dtype'"),
    ({**LENET_ENTRY, "dtype": False}, "'dtype'"),  # once read as fp32 (found by the sweep)
    ({**LENET_ENTRY, "dtype": []}, "'dtype'"),
    ({**LENET_ENTRY, "input_shape": []}, "'input_shape'"),
])
def test_a_baseline_key_of_the_wrong_type_fails_closed(tmp_path: Path, entry, message) -> None:
    budget = write(tmp_path, BUDGET, "budgets.yaml")
    baseline = write(tmp_path, json.dumps({**entry, "totals": {"params": 1}}), "b.json")
    assert_refused(cli("check", str(budget), "--baseline", str(baseline)), f"{baseline}:",
                   message)


def test_a_baseline_nested_thousands_deep_is_exit_2(tmp_path: Path) -> None:
    """Catches: RecursionError from json.loads."""
    budget = write(tmp_path, BUDGET, "budgets.yaml")
    depth = sys.getrecursionlimit() * 10
    baseline = write(tmp_path, "[" * depth + "]" * depth, "b.json")
    assert_refused(cli("check", str(budget), "--baseline", str(baseline)), f"{baseline}:",
                   "nested too deeply")


def test_a_bool_in_a_budget_is_not_a_number(tmp_path: Path) -> None:
    budget = write(tmp_path, "models:\n  - model: lenet5\n    max_params: true\n", "b.yaml")
    assert_refused(cli("check", str(budget)), f"{budget}:3:", "must be a number")


# ---- special files are refused before they are opened ----------------------------------------
def _special(tmp_path: Path, kind: str, name: str) -> Path:
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block until a writer came
    else:
        path.symlink_to(kind)
    return path


SPECIAL = [pytest.param("fifo", "a fifo (named pipe)", marks=needs_fifo),
           pytest.param("/dev/zero", "a character device", marks=needs_dev_zero),
           pytest.param("/dev/urandom", "a character device", marks=needs_dev_zero)]


@pytest.mark.parametrize("kind, shown", SPECIAL)
def test_a_special_file_as_model_is_refused(tmp_path: Path, kind: str, shown: str) -> None:
    """Catches: a fifo MODEL hanging, /dev/zero read whole (MemoryError)."""
    path = _special(tmp_path, kind, "net.yaml")
    assert_refused(cli("params", str(path)), f"{path}:", f"the file is {shown}; only regular files")


@pytest.mark.parametrize("kind, shown", SPECIAL)
def test_a_special_file_as_budget_file_is_refused(tmp_path: Path, kind: str, shown: str) -> None:
    path = _special(tmp_path, kind, "budgets.yaml")
    assert_refused(cli("check", str(path)), f"{path}:", f"the file is {shown}; only regular files")


@pytest.mark.parametrize("kind, shown", SPECIAL)
def test_a_special_file_as_baseline_is_refused(tmp_path: Path, kind: str, shown: str) -> None:
    budget = write(tmp_path, BUDGET, "budgets.yaml")
    path = _special(tmp_path, kind, "b.json")
    assert_refused(cli("check", str(budget), "--baseline", str(path)), f"{path}:",
                   f"the file is {shown}; only regular files")


# ---- writes never replace a non-regular file -------------------------------------------------
@needs_fifo
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_export_never_replaces_a_fifo(tmp_path: Path, force: list[str]) -> None:
    """Catches: `export -o NODE --force` turning a device node into a 1,907-byte file."""
    fifo = _special(tmp_path, "fifo", "out.yaml")
    result = cli("export", "lenet5", "-o", str(fifo), *force)
    assert result.exit_code == 2, result.stderr
    assert "is a fifo (named pipe); only a regular file is replaced" in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_export_to_dash_writes_stdout(tmp_path: Path) -> None:
    result = cli("export", "lenet5", "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("name: lenet5") or "lenet5" in result.stdout.splitlines()[0]
    assert not (tmp_path / "-").exists() and not Path("-").exists()


@needs_fifo
def test_update_baseline_never_replaces_a_fifo(tmp_path: Path) -> None:
    budget = write(tmp_path, BUDGET, "budgets.yaml")
    fifo = _special(tmp_path, "fifo", "b.json")
    result = cli("check", str(budget), "--baseline", str(fifo), "--update-baseline")
    assert result.exit_code == 2, result.stderr
    assert "only a regular file is replaced" in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@needs_fifo
def test_plot_never_replaces_a_fifo(tmp_path: Path) -> None:
    fifo = _special(tmp_path, "fifo", "plot.png")
    result = cli("compare", "lenet5", "alexnet", "--plot", str(fifo), "--force")
    assert result.exit_code == 2, result.stderr
    assert "only a regular file is replaced" in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


# ---- the alias bound is a ratio: big honest files load, bombs do not --------------------------
def test_a_flat_file_of_more_values_than_the_alias_floor_parses() -> None:
    """Catches: the alias bound refusing an honest 100,000-layer file (issue 23 item 3)."""
    from cnnstat.spec.yaml_tree import MAX_YAML_NODES, YSeq, parse

    layers = MAX_YAML_NODES // 2 + 10  # each `{relu: null}` is 3 values
    text = "input: [3, 8, 8]\nlayers:\n" + "  - {relu: null}\n" * layers
    root = parse(text, "flat.yaml")
    assert isinstance(root.items["layers"], YSeq) and len(root.items["layers"].items) == layers


def test_aliases_that_multiply_a_big_file_are_refused_too() -> None:
    """Catches: a ratio bound with no floor being escaped by writing many values first."""
    from cnnstat.errors import LimitError
    from cnnstat.spec.yaml_tree import MAX_ALIAS_RATIO, parse

    filler = "  - {relu: null}\n" * 30_000  # 90,000 values written
    bomb = "a: &a [" + ", ".join(["0"] * 1000) + "]\nb: [" + ", ".join(["*a"] * 2000) + "]\n"
    with pytest.raises(LimitError, match=f"{MAX_ALIAS_RATIO}x that made"):
        parse("layers:\n" + filler + bomb, "bomb.yaml")
