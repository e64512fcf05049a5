"""Resource limits and unsafe constructs (issue 12, docs/limits.md): one test per limit.

Each hostile input must end quickly with exit 2 and one located error line, never with a
traceback, a hang, a blown-up memory or code that ran. Where a limit could reject a real
network, a test shows the zoo stays far below it. The budget gate must fail closed: every
way it can fail to load, parse or measure a model exits 2 (a bug exits 70), never 0 or 1.
"""

from __future__ import annotations

import json
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnstat.analyzers import analyze_graph
from cnnstat.analyzers.shapes import MAX_SPATIAL
from cnnstat.cli import app
from cnnstat.errors import CnnstatError, LimitError, SpecError
from cnnstat.resolver import zoo_dir, zoo_names
from cnnstat.spec import load_spec
from cnnstat.spec.expr import MAX_EXPONENT, MAX_EXPR_CHARS, MAX_EXPR_DEPTH
from cnnstat.spec.loader import MAX_BLOCK_DEPTH, MAX_EMPTY_ITERATIONS, MAX_NODES, MAX_STEPS
from cnnstat.spec.yaml_tree import (
    MAX_FILE_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    YMap,
    YSeq,
    parse,
)

# A limit check must not take long; generous, for a loaded CI machine.
QUICK_S = 30
SPEC_COMMANDS = ("params", "flops", "shapes", "summary", "rf", "savings")


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def write(tmp_path: Path, text: str | bytes, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def assert_refused(result, where: str, message: str) -> None:
    """Exit 2, nothing on stdout, one error line starting with `where`, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in err and "internal error" not in err, err
    assert result.stdout == "", result.stdout
    assert len(err.splitlines()) == 1, err
    assert err.startswith(where), err
    assert message in err, err


def load_fails(path: Path, error: type[CnnstatError], message: str) -> CnnstatError:
    start = time.perf_counter()
    with pytest.raises(error) as info:
        analyze_graph(load_spec(path))
    assert time.perf_counter() - start < QUICK_S
    assert message in str(info.value), str(info.value)
    return info.value


# ---- YAML: aliases, tags, depth, size, encoding, emptiness ------------------------------------
@pytest.mark.slow
def test_billion_laughs_stops_at_the_yaml_value_limit(tmp_path: Path) -> None:
    """Catches: alias expansion without a budget (10**9 values from a 1 kB file)."""
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path = write(tmp_path, "\n".join([*lines, "layers: *a9"]) + "\n")
    assert path.stat().st_size < 1000
    start = time.perf_counter()
    assert_refused(cli("params", str(path)), f"{path}:",
                   f"expands to more than {MAX_YAML_NODES} values (aliases that multiply?")
    assert time.perf_counter() - start < QUICK_S


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/object/apply:builtins.exec ['open(\"{marker}\", \"w\")']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!custom {{a: 1}}",
    "!!binary aGk=",
    "!!set {{a: null}}",
])
def test_object_constructing_tags_are_refused_and_never_run(tmp_path: Path, tag: str) -> None:
    """Catches: a YAML loader that builds Python objects (yaml.load / unsafe_load), which
    would run `os.system` from a spec or a budget file."""
    marker = tmp_path / "PWNED"
    value = tag.format(marker=marker)
    spec = write(tmp_path, f"input: [3, 8, 8]\nlayers:\n  - relu\nnotes: {value}\n")
    assert_refused(cli("params", str(spec)), f"{spec}:4:8:", "is not allowed")
    budget = write(tmp_path, f"models:\n  - model: lenet5\n    max_params: {value}\n",
                   "budget.yaml")
    assert_refused(cli("check", str(budget)), f"{budget}:3:17:", "is not allowed")
    assert not marker.exists()


def test_yaml_nesting_depth_is_limited(tmp_path: Path) -> None:
    """Catches: unbounded recursion over nested YAML (a RecursionError, exit 70)."""
    depth = MAX_YAML_DEPTH + 50
    path = write(tmp_path, "input: [3, 8, 8]\nlayers: " + "[" * depth + "]" * depth + "\n")
    load_fails(path, LimitError, f"nested deeper than {MAX_YAML_DEPTH} levels")
    deeper = write(tmp_path, "layers: " + "[" * 100_000 + "]" * 100_000 + "\n", "deep.yaml")
    assert_refused(cli("params", str(deeper)), f"{deeper}:1:", "nesting depth")


def test_ten_megabyte_spec_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """Catches: reading (and parsing) any size of file into memory."""
    path = write(tmp_path, "input: [3, 8, 8]\nlayers: [relu]\n" + "#" * 10_000_000 + "\n")
    assert path.stat().st_size > MAX_FILE_BYTES
    load_fails(path, LimitError, f"the limit is {MAX_FILE_BYTES} bytes")
    assert_refused(cli("summary", str(path)), f"{path}: error: file is", "bytes")


def test_non_utf8_bytes_are_located(tmp_path: Path) -> None:
    """Catches: a UnicodeDecodeError escaping (exit 70), or an error without its line."""
    path = write(tmp_path, b"input: [3, 8, 8]\nlayers:\n  - relu # caf\xe9\n")
    assert_refused(cli("params", str(path)), f"{path}:3: error: ", "not UTF-8")
    utf16 = write(tmp_path, "layers: [relu]\n".encode("utf-16"), "utf16.yaml")
    assert_refused(cli("flops", str(utf16)), f"{utf16}:1: error: ", "not UTF-8")


def test_control_characters_are_located(tmp_path: Path) -> None:
    """Catches: YAML's reader error (no mark, only an offset) reported without a line."""
    path = write(tmp_path, "input: [3, 8, 8]\nlayers:\n  - relu\n  - \x01conv\n")
    assert_refused(cli("params", str(path)), f"{path}:4:5: ", "control characters")


@pytest.mark.parametrize("text", ["", "   \n\n", "# nothing but a comment\n", "---\n"])
@pytest.mark.parametrize("command", SPEC_COMMANDS)
def test_empty_file(tmp_path: Path, text: str, command: str) -> None:
    """Catches: a None document reaching the loader (AttributeError, exit 70)."""
    path = write(tmp_path, text)
    assert_refused(cli(command, str(path)), f"{path}:1:1: error: ", "the file is empty")


@pytest.mark.parametrize("command", [*SPEC_COMMANDS, "compare"])
def test_directory_or_missing_path_as_model(tmp_path: Path, command: str) -> None:
    """Catches: IsADirectoryError / FileNotFoundError escaping, for every command."""
    folder = tmp_path / "specs.yaml"
    folder.mkdir()
    for model, message in ((str(tmp_path), "is a directory"), (str(folder), "is a directory"),
                           (str(tmp_path / "missing.yaml"), "no such spec file"),
                           (str(tmp_path / "missing"), "unknown model")):
        result = cli(command, model)
        assert result.exit_code == 2, (model, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("make", ["directory", "missing", "empty"])
def test_directory_missing_or_empty_budget_file(tmp_path: Path, make: str) -> None:
    path = tmp_path / "budgets.yaml"
    if make == "directory":
        path.mkdir()
    elif make == "empty":
        path.write_text("")
    result = cli("check", str(path))
    assert result.exit_code == 2 and result.stderr.startswith(f"{path}"), result.stderr
    assert "Traceback" not in result.stderr


# ---- the spec language: repeat, blocks, expressions, numbers ----------------------------------
def test_huge_repeat_is_refused_before_it_expands(tmp_path: Path) -> None:
    """Catches: a repeat that allocates millions of nodes before any check."""
    path = write(tmp_path, "input: [3, 8, 8]\nlayers:\n  - {repeat: 10000000, layers: "
                           "[relu]}\n")
    load_fails(path, LimitError, f"is more than {MAX_STEPS} iterations")
    wide = write(tmp_path, "input: [3, 8, 8]\nlayers:\n  - {repeat: 1500000, layers: [relu]}\n",
                 "wide.yaml")
    load_fails(wide, LimitError, f"expands to more than {MAX_NODES} layers")


def test_nested_repeats_are_refused_at_the_first_outer_iteration(tmp_path: Path) -> None:
    """Catches: nested repeats whose product (10**6 x 10**3) is only found after building
    it all."""
    path = write(tmp_path, "input: [3, 8, 8]\nlayers:\n  - repeat: 1000\n    layers:\n"
                           "      - {repeat: 1001, layers: [relu]}\n")
    load_fails(path, LimitError, f"more than {MAX_NODES} layers (repeat 1000 x 1001 layers)")


def test_nested_empty_repeats_end(tmp_path: Path) -> None:
    """Catches: iterations that make no layer and so were never counted: 2M x 2M empty
    iterations ran for ever."""
    path = write(tmp_path, "input: [3, 8, 8]\nlayers:\n  - repeat: 1999999\n    layers:\n"
                           "      - {repeat: 1999999, layers: []}\n")
    error = load_fails(path, LimitError, f"more than {MAX_EMPTY_ITERATIONS} iterations that "
                                         "make no layer")
    assert error.loc.line == 5


def test_iterations_that_make_no_layer_are_bounded(tmp_path: Path) -> None:
    """Catches: #24's densenet169 mutant, a `repeat: 10000` of a `repeat: 0` in each of
    its 82 dense layers: 820,000 empty iterations, seconds in-process (a step each, far
    under MAX_STEPS); what makes layers is not counted against this bound."""
    zoo = (zoo_dir() / "densenet169.yaml").read_text(encoding="utf-8")
    conv2 = "- {conv: growth, k: 3, p: 1, bias: false, name: conv2}"
    assert conv2 in zoo
    mutant = zoo.replace(conv2, "- {repeat: 10000, layers: [{repeat: 0, layers: [relu]}]}")
    load_fails(write(tmp_path, mutant), LimitError,
               f"more than {MAX_EMPTY_ITERATIONS} iterations that make no layer")
    honest = write(tmp_path, "input: [3, 8, 8]\nlayers:\n  - {repeat: 300000, layers: [relu]}\n",
                   "honest.yaml")
    assert len(load_spec(honest).nodes) == 300_001


@pytest.mark.parametrize("blocks, message", [
    ("  loop: {layers: [relu, {loop: null}]}\n", "does block 'loop' use itself?"),
    ("  ping: {layers: [{pong: null}]}\n  pong: {layers: [{ping: null}]}\n", "use itself?"),
])
def test_recursive_blocks_stop_at_the_nesting_limit(tmp_path: Path, blocks: str,
                                                     message: str) -> None:
    """Catches: a block that calls itself (directly or through another) recursing until
    Python's stack overflows."""
    first = blocks.split(":")[0].strip()
    path = write(tmp_path, f"input: [3, 8, 8]\nblocks:\n{blocks}layers:\n  - {{{first}: null}}\n")
    load_fails(path, LimitError, f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels")
    assert message in str(pytest.raises(LimitError, load_spec, path).value)


def nested_blocks(depth: int) -> str:
    """b0 calls b1 ... calls b{depth-1}, which holds one relu: `depth` nested calls."""
    lines = ["input: [3, 8, 8]", "blocks:"]
    lines += [f"  b{i}: {{layers: [{{b{i + 1}: null}}]}}" for i in range(depth - 1)]
    lines += [f"  b{depth - 1}: {{layers: [relu]}}", "layers:", "  - {b0: null}"]
    return "\n".join(lines) + "\n"


def test_block_nesting_limit_allows_deep_honest_nesting(tmp_path: Path) -> None:
    """Catches: a limit that is off by one or too tight: 32 nested blocks load (the zoo
    nests at most 3), 33 do not."""
    ok = load_spec(write(tmp_path, nested_blocks(MAX_BLOCK_DEPTH), "ok.yaml"))
    assert ok.nodes[-1].name == ".".join(f"b{i}1" for i in range(MAX_BLOCK_DEPTH)) + ".relu1"
    load_fails(write(tmp_path, nested_blocks(MAX_BLOCK_DEPTH + 1)), LimitError,
               f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels")


@pytest.mark.parametrize("expression, message", [
    ("1 + " * 130 + "1", f"longer than {MAX_EXPR_CHARS} characters"),
    ("-" * 400 + "1", f"nested deeper than {MAX_EXPR_DEPTH} levels"),
    ("not " * 120 + "1", f"nested deeper than {MAX_EXPR_DEPTH} levels"),
    (f"2 ** {MAX_EXPONENT + 1}", f"is larger than {MAX_EXPONENT}"),
    ("9 ** 9 ** 9", f"is larger than {MAX_EXPONENT}"),
    ("10 ** 30 * 10", "is larger than 1e+30"),
    ("(1e300 * 1e300)", "larger than"),
    ("__import__('os').system('true')", "unknown function"),
    ("().__class__", "'Attribute' is not allowed"),
])
def test_expressions_are_bounded(tmp_path: Path, expression: str, message: str) -> None:
    """Catches: an expression that takes unbounded time or stack (a RecursionError from
    500 unary minuses was exit 70), or that reaches Python (calls, attributes)."""
    path = write(tmp_path, f"input: [3, 8, 8]\nlayers:\n  - {{conv: \"{expression}\", k: 1}}\n")
    error = load_fails(path, SpecError, message)
    assert (error.loc.line, error.loc.col) == (3, 12)


@pytest.mark.parametrize("literal, message", [
    ("1" + "0" * 5000, "has 5001 digits"),
    ("1" + "0" * 31, "within +-1e+30"),
    ("1.0e+300", "within +-1e+30"),
    (".inf", "within +-1e+30"),
    (".nan", "within +-1e+30"),
])
def test_number_literals_are_bounded(tmp_path: Path, literal: str, message: str) -> None:
    """Catches: YAML literals escaping the evaluator's bounds: a 5000-digit int (Python's
    int() refuses it: exit 70), or 10**31 / inf / NaN channels."""
    path = write(tmp_path, f"input: [3, 8, 8]\nlayers:\n  - {{conv: {literal}, k: 1}}\n")
    error = load_fails(path, SpecError, message)
    assert error.loc.line == 3


# ---- sizes: exact big counts, bounded spatial work --------------------------------------------
TERA = 10**12


def test_a_tera_channel_layer_counts_exactly_without_allocating(tmp_path: Path) -> None:
    """Catches: counts done in floats (rounded) or in arrays (allocated): 10**12 channels
    must give torch's formulas exactly, with a few hundred kB of Python memory.
    Oracle: torch.nn.Conv2d's weight is [out, in/groups, kh, kw] plus a bias of `out`;
    Linear's is [out, in] plus `out`; MACs follow torch's FlopCounterMode (output
    elements x in/groups x kh x kw for a conv; rows x in x out for a linear)."""
    path = write(tmp_path, f"input: [3, 8, 8]\nlayers:\n  - {{conv: {TERA}, k: 3, p: 1}}\n"
                           f"  - {{conv: {TERA}, k: 1, g: {TERA}}}\n  - gap\n  - flatten\n"
                           f"  - {{fc: {TERA}}}\n")
    tracemalloc.start()
    report = analyze_graph(load_spec(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    conv1 = TERA * 3 * 3 * 3 + TERA
    depthwise = TERA * 1 * 1 * 1 + TERA
    fc = TERA * TERA + TERA
    assert report.totals.params == conv1 + depthwise + fc
    assert report.totals.macs == 8 * 8 * TERA * 3 * 9 + 8 * 8 * TERA * 1 + TERA * TERA
    assert isinstance(report.totals.params, int)
    assert peak < 5 * 2**20, f"{peak} bytes traced"
    result = cli("params", str(path), "--format", "json")
    assert json.loads(result.stdout)["totals"]["params"] == conv1 + depthwise + fc
    assert f"{conv1 + depthwise + fc:,}" in cli("params", str(path)).stdout


@pytest.mark.parametrize("layers, message", [
    ("[{adaptive_avgpool: 1000000000000}]", "output size"),
    ("[{gap: 100000}]", "output size"),
    ("[{upsample: null, size: [100000, 8]}]", "output size"),
    ("[{upsample: 10000}]", "output size"),
    ("[{conv: 8, k: 1000000001, p: 500000000}]", "kernel_size"),
    ("[{maxpool: 2, s: 1000000}]", "stride"),
    ("[{deconv: 8, k: 2, s: 1000000000}]", "stride"),
    ("[{deconv: 1, k: 65536, s: 65536, p: 32768}]", "kernel_size x stride"),
])
def test_spatial_sizes_are_bounded(tmp_path: Path, layers: str, message: str) -> None:
    """Catches: per-pixel and per-tap work (receptive-field tables, adaptive windows)
    driven by a huge size: `gap: 10**30` ran out of memory before this limit, and a
    transposed conv with kernel and stride 65,536 built a 4e9-entry table (hours)."""
    path = write(tmp_path, f"input: [3, 8, 8]\nlayers: {layers}\n")
    error = load_fails(path, CnnstatError, f"is over the limit of {MAX_SPATIAL} px per axis")
    assert message in str(error) and error.loc.line == 2


def test_spatial_limit_admits_large_inputs_and_refuses_larger() -> None:
    """Catches: a limit tighter than real use: VGG-16 at 4096 px analyses; past 65,536 px
    (an --input the user typed) is exit 2 with the layer that met it."""
    assert cli("params", "vgg16", "--input", "4096", "-f", "json").exit_code == 0
    result = cli("params", "vgg16", "--input", f"3x{MAX_SPATIAL + 1}x224")
    assert_refused(result, "specs/vgg16.yaml:", f"over the limit of {MAX_SPATIAL} px")
    assert_refused(cli("flops", "resnet18", "--input", "10000000000"), "specs/resnet18.yaml:",
                   "over the limit")


def yaml_stats(node) -> tuple[int, int]:
    """(values, depth) of a located YAML tree."""
    children = node.items if isinstance(node, YSeq) else \
        tuple(node.items.values()) if isinstance(node, YMap) else ()
    stats = [yaml_stats(child) for child in children]
    return 1 + len(children) + sum(s[0] for s in stats), 1 + max((s[1] for s in stats),
                                                                  default=0)


def test_no_limit_comes_near_a_real_network() -> None:
    """Catches: a limit that rejects (or nearly rejects) a real network: every zoo spec
    stays at least 10x below each limit it could meet."""
    for name in zoo_names():
        path = zoo_dir() / f"{name}.yaml"
        text = path.read_text(encoding="utf-8")
        values, depth = yaml_stats(parse(text, name))
        graph = load_spec(path)
        report = analyze_graph(graph)
        spatial = max(max(r.output_shape[2:]) for r in report.layers
                      if len(r.output_shape) == 4)
        assert len(text.encode()) * 10 < MAX_FILE_BYTES, name
        assert values * 10 < MAX_YAML_NODES and depth * 5 < MAX_YAML_DEPTH, name
        assert len(graph.nodes) * 100 < MAX_NODES, name
        assert spatial * 10 < MAX_SPATIAL, name


# ---- budget files -----------------------------------------------------------------------------
@pytest.mark.parametrize("quantity", ["1e999999999", "1" + "0" * 5000, "1e-999999999"])
def test_budget_quantities_are_bounded(tmp_path: Path, quantity: str) -> None:
    """Catches: `max_params: 1e999999999` computing 10**999999999 (it ran for ever)."""
    path = write(tmp_path, f"models:\n  - model: lenet5\n    max_params: {quantity}\n",
                 "budget.yaml")
    start = time.perf_counter()
    assert_refused(cli("check", str(path)), f"{path}:3:17: error: ", "")
    assert time.perf_counter() - start < QUICK_S


def test_only_the_command_line_imports_code(tmp_path: Path, monkeypatch) -> None:
    """Catches: a budget file (data from many hands) naming `module:attr` and so running
    that module's code: only a reference typed on the command line may (docs/limits.md).
    A spec has no way to name a module at all."""
    marker = tmp_path / "PWNED"
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                         "def make():\n    raise SystemExit(0)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for ref in ("evilmod:make", "evilmod.py:make", f"{tmp_path / 'evilmod.py'}:make"):
        budget = write(tmp_path, f"models:\n  - model: '{ref}'\n    max_params: 1G\n",
                       "budget.yaml")
        assert_refused(cli("check", str(budget)), f"{budget}:2:", "--allow-code")
    spec = write(tmp_path, "input: [3, 8, 8]\nlayers:\n  - {evilmod:make: 1}\n")
    assert_refused(cli("params", str(spec)), f"{spec}:3:", "unknown layer kind")
    assert not marker.exists() and "evilmod" not in sys.modules


# ---- the gate fails closed --------------------------------------------------------------------
GOOD = "models:\n  - model: lenet5\n    max_params: 1M\n"
FAILURE_MODES = {
    "unloadable model (malformed spec)": ("bad.yaml", GOOD.replace("lenet5", "bad.yaml")),
    "unknown model": (None, GOOD.replace("lenet5", "lenet7")),
    "missing spec file": (None, GOOD.replace("lenet5", "missing.yaml")),
    "model that does not compose at its input":
        (None, GOOD.replace("max_params", "input: [1, 4, 4]\n    max_params")),
    "bad budget file: malformed YAML": (None, "models: [\n"),
    "bad budget file: unknown metric": (None, GOOD.replace("max_params", "max_parms")),
    "bad budget file: bad quantity": (None, GOOD.replace("1M", "1 apple")),
    "bad budget file: no models": (None, "defaults: {batch: 1}\n"),
    "bad budget file: an entry without limits": (None, "models:\n  - model: lenet5\n"),
    "bad budget file: a module reference": (None, GOOD.replace("lenet5", "os:getcwd")),
    "unmeasurable metric: a glob that matches no layer":
        (None, GOOD + "    layers: {'nothing.*': {max_params: 1M}}\n"),
    "unmeasurable metric: no spatial layer for min_rf":
        ("flat.yaml", GOOD.replace("lenet5", "flat.yaml").replace("max_params", "min_rf")),
}
FLAT = "input: [16]\nlayers: [{fc: 4}]\n"
BAD = "input: [3, 8, 8]\nlayers: [{conv: 0, k: 3}]\n"


@pytest.mark.parametrize("mode", list(FAILURE_MODES))
def test_the_gate_fails_closed(tmp_path: Path, monkeypatch, mode: str) -> None:
    """Catches: a gate that passes (exit 0) or merely fails (exit 1) when it could not load,
    parse or measure something: each failure mode exits 2 with a located error line."""
    extra, budget_text = FAILURE_MODES[mode]
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "flat.yaml").write_text(FLAT)
    monkeypatch.chdir(tmp_path)
    budget = write(tmp_path, budget_text, "budgets.yaml")
    for fmt in ("table", "json", "junit", "github", "markdown"):
        result = cli("check", str(budget), "--format", fmt)
        assert result.exit_code == 2, (mode, fmt, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert any(line.startswith(f"{budget}:") and ": error: " in line
                   for line in result.stderr.splitlines()), (mode, result.stderr)


def test_the_gate_fails_closed_on_baseline_problems(tmp_path: Path) -> None:
    """Catches: a missing or corrupt baseline, a bad tolerance, or --update-baseline after
    a failed measurement being treated as 'nothing to compare' (exit 0)."""
    budget = write(tmp_path, GOOD, "budgets.yaml")
    corrupt = write(tmp_path, "{not json", "baseline.json")
    for args in (["--baseline", str(tmp_path / "none.json")], ["--baseline", str(corrupt)],
                 ["--tolerance", "lots"], ["--update-baseline"]):
        result = cli("check", str(budget), *args)
        assert result.exit_code == 2, (args, result.stderr)
    broken = write(tmp_path, GOOD.replace("lenet5", "lenet7"), "broken.yaml")
    target = write(tmp_path, "previous\n", "kept.json")
    result = cli("check", str(broken), "--baseline", str(target), "--update-baseline")
    assert result.exit_code == 2 and target.read_text() == "previous\n"


def test_the_gate_fails_closed_on_an_unmeasurable_count(tmp_path: Path, monkeypatch) -> None:
    """Catches: a layer kind without a params handler counted as a silent zero (a pass):
    simulated by removing conv2d's params handler."""
    from cnnstat.analyzers.params import PARAMS
    from cnnstat.ir.layers import Conv2d

    monkeypatch.delitem(PARAMS._handlers, Conv2d)
    budget = write(tmp_path, GOOD, "budgets.yaml")
    result = cli("check", str(budget))
    assert result.exit_code == 2 and "conv2d" in result.stderr, result.stderr


@pytest.mark.parametrize("raised, code", [(RuntimeError("a bug"), 70),
                                          (KeyboardInterrupt(), 130)])
def test_the_gate_never_passes_after_a_crash(tmp_path: Path, monkeypatch, raised,
                                             code: int) -> None:
    """Catches: an internal error or an interrupt in the middle of measuring ending as a
    pass: a bug exits 70, Ctrl-C 130, never 0 or 1."""
    import cnnstat.budget as budget_module

    def explode(*args, **kwargs):
        raise raised

    monkeypatch.setattr(budget_module, "analyze_graph", explode)
    budget = write(tmp_path, GOOD, "budgets.yaml")
    result = cli("check", str(budget))
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
