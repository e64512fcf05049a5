"""Fuzzing: every zoo spec, mutated, and random valid specs, through the loader, every
analyzer and the CLI.

The property (issue 12): whatever the file holds, cnnstat either answers or raises a
`CnnstatError` whose location points into that file (its name, and a line between 1 and
the file's line count); through the CLI the exit code is 0 or 2 (1 only for `check`,
whose budgets a mutated model may exceed), never 70 and never a traceback.

Mutations are drawn through a `Chooser`, so hypothesis drives them here (seeded,
derandomized, shrinkable) and `benchmarks/fuzz_long.py` drives the same code with a plain
`random.Random` for long runs. The random *valid* specs have a second oracle: torch
(tests/oracles.py builds the module on the meta device and counts with torch's own
FlopCounterMode), so they must load, analyze and agree with torch, not merely not crash.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import note as _hypothesis_note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from typer.testing import CliRunner

from cnnstat.cli import app
from cnnstat.errors import CnnstatError

ROOT = Path(__file__).resolve().parents[1]
ZOO = tuple(sorted(p.stem for p in (ROOT / "specs").glob("*.yaml")))

# CI: bounded, seeded (derandomize) and without an example database, so every run tries
# the same inputs. The long run (-m fuzz_long, benchmarks/fuzz_long.py) goes much further.
# No shrinking: a failure prints the whole mutated file (hypothesis.note), which is what
# one needs, and shrinking an example that analyses DenseNet-201 takes minutes.
CI = settings(max_examples=3, deadline=None, derandomize=True, database=None,
              phases=(Phase.explicit, Phase.generate),
              suppress_health_check=list(HealthCheck))
LONG = settings(CI, max_examples=400)


# ---- choosing: hypothesis draws in tests, random.Random in the long benchmark --------------
class Chooser(Protocol):
    def below(self, n: int) -> int:
        """An int in [0, n)."""


class RandomChooser:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def below(self, n: int) -> int:
        return self.rng.randrange(n) if n > 1 else 0


class DrawChooser:
    def __init__(self, data: Any):
        self.data = data

    def below(self, n: int) -> int:
        return self.data.draw(st.integers(0, n - 1)) if n > 1 else 0


def pick(ch: Chooser, items: tuple | list) -> Any:
    return items[ch.below(len(items))]


def note(text: str) -> None:
    """hypothesis.note inside a test (a failure then prints the file); a no-op when the
    long benchmark calls these checks outside hypothesis."""
    with contextlib.suppress(InvalidArgument):
        _hypothesis_note(text)


class Raw(str):
    """A scalar written into the YAML exactly as given (an integer too long for Python's
    default int() digit limit, say), so the fuzz can write what yaml.dump would refuse."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Raw, lambda d, v: d.represent_scalar("tag:yaml.org,2002:int", str(v)))


# ---- hostile values --------------------------------------------------------------------------
HUGE = (10**6, 10**12, 10**30, 10**31, 10**100, Raw("1" + "0" * 5000), Raw("0x" + "f" * 5000),
        Raw("0b" + "1" * 20000))
NUMBERS = (0, -1, -2, 1, 2, 3, 7, 64, *HUGE, 0.5, 1.0, 2.5, -0.5, 1e300, math.inf, -math.inf,
           math.nan)
TEXTS = ("", " ", "é", "名前", "😀", "a.b", "a b", "input", "..", "-", "_", "x" * 600, "true",
         "null", "2**64", "9**9**9", "10**30 + 1", "1/0", "2 if i else", "k // 0",
         "__import__('os').system('true')", "().__class__", "(lambda: 1)()", "[1][0]",
         "open('x')", "i", "nan", "1e400", "-(-1)", "c * 10**29", "-" * 400 + "1",
         "1+" * 200 + "1", "(" * 150 + "1" + ")" * 150,
         # issue 24: complex-making expressions and literals too big for float()
         "(-8) ** 0.5", "(-1) ** 0.5", "(-2) ** 1.5 + 1", "-(-4) ** -0.5", "9" * 450,
         "0x" + "f" * 400)
KEY_WORDS = ("name", "from", "when", "as", "repeat", "layers", "parallel", "merge", "dim",
             "args", "blocks", "outputs", "aux_outputs", "input", "conv", "relu", "k", "s",
             "p", "g", "bias", "fc", "gap", "concat", "add", "bn", "reshape", "upsample",
             "é", "", "K", "Conv")
REFS = ("nope", "conv99", "features.nope", "input", "", "é", ["input", "nope"], [], ["input"],
        "features", "layer1", "classifier")
SNIPPETS = ("!!python/object/apply:os.system ['true']", "!!python/name:os.system", "&a",
            "*a", "<<: *a", "\t", "\x00", "\x1b[31m", "{", "[", "- ", ": ", "---", "%TAG ! x",
            "!custom 1", "? ", "'", '"', "|", "\ufeff", "#", "&a [*a, *a]", "\u2028", "\r")


def hostile_value(ch: Chooser) -> Any:
    """A number, text, container or constant that a spec author could write by mistake
    (or on purpose)."""
    family = ch.below(5)
    if family == 0:
        return pick(ch, NUMBERS)
    if family == 1:
        return pick(ch, TEXTS)
    if family == 2:
        return copy.deepcopy(pick(ch, ([], [1], [1, 2, 3], {}, {"x": 1}, [[[[1]]]],
                                       {"conv": 8}, ["relu"], [None])))
    if family == 3:
        return pick(ch, (None, True, False))
    return pick(ch, KEY_WORDS)


# ---- walking a plain YAML tree ---------------------------------------------------------------
Slot = tuple[Any, Any]  # (a dict or list, a key or index) whose value can be replaced


def slots(tree: Any) -> list[Slot]:
    found: list[Slot] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        pairs = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, value in pairs:
            found.append((node, key))
            stack.append(value)
    return found


def mappings(tree: Any) -> list[dict]:
    return [tree, *(c[k] for c, k in slots(tree) if isinstance(c[k], dict))] \
        if isinstance(tree, dict) else [c[k] for c, k in slots(tree) if isinstance(c[k], dict)]


def entries(tree: Any) -> list[dict]:
    """Mappings that sit in a list: layer entries (and whatever else the mutations made)."""
    return [c[k] for c, k in slots(tree) if isinstance(c, list) and isinstance(c[k], dict)]


def names(tree: Any) -> list[str]:
    return [c[k] for c, k in slots(tree) if k == "name" and isinstance(c[k], str)]


# ---- tree mutations: each changes `tree` in place (or does nothing when it cannot) ----------
def drop_key(ch: Chooser, tree: Any) -> None:
    maps = [m for m in mappings(tree) if m]
    if maps:
        m = pick(ch, maps)
        del m[pick(ch, list(m))]


def retype(ch: Chooser, tree: Any) -> None:
    found = slots(tree)
    if found:
        container, key = pick(ch, found)
        container[key] = hostile_value(ch)


def hostile_number(ch: Chooser, tree: Any) -> None:
    """Zero, negative, huge, float, inf or NaN where a number (or an expression) was."""
    found = [(c, k) for c, k in slots(tree)
             if isinstance(c[k], int | float | str) and not isinstance(c[k], bool)]
    if found:
        container, key = pick(ch, found)
        container[key] = pick(ch, NUMBERS)


def wrap(ch: Chooser, tree: Any) -> None:
    """Wrong nesting, one level too deep."""
    found = slots(tree)
    if found:
        container, key = pick(ch, found)
        value = container[key]
        container[key] = [value] if ch.below(2) else {pick(ch, KEY_WORDS): value}


def unwrap(ch: Chooser, tree: Any) -> None:
    """Wrong nesting, one level too shallow."""
    found = [(c, k) for c, k in slots(tree) if isinstance(c[k], list | dict) and c[k]]
    if found:
        container, key = pick(ch, found)
        value = container[key]
        container[key] = value[0] if isinstance(value, list) else next(iter(value.values()))


def rename_key(ch: Chooser, tree: Any) -> None:
    maps = [m for m in mappings(tree) if m]
    if not maps:
        return
    m = pick(ch, maps)
    old, new = pick(ch, list(m)), pick(ch, (*KEY_WORDS, *TEXTS[:6]))
    items = [(new if k == old else k, v) for k, v in m.items()]
    m.clear()
    m.update(items)


def set_name(ch: Chooser, tree: Any) -> None:
    """Unicode, empty, dotted or duplicate names."""
    found = entries(tree)
    if found:
        pick(ch, found)["name"] = pick(ch, (*TEXTS[:11], *names(tree), 7, None))


def dangling_reference(ch: Chooser, tree: Any) -> None:
    found = entries(tree)
    if isinstance(tree, dict) and (not found or ch.below(4) == 0):
        tree[pick(ch, ("outputs", "aux_outputs"))] = copy.deepcopy(pick(ch, REFS))
    elif found:
        pick(ch, found)["from"] = copy.deepcopy(pick(ch, REFS))


def cyclic_reference(ch: Chooser, tree: Any) -> None:
    """`from:` an entry's own name or a later layer's: a cycle if it were ever allowed."""
    found = entries(tree)
    if not found:
        return
    entry = pick(ch, found)
    known = names(tree) or ["x"]
    own = entry.setdefault("name", pick(ch, known)) if ch.below(2) else pick(ch, known)
    entry["from"] = own if ch.below(2) else [own, pick(ch, known)]
    if isinstance(tree, dict) and ch.below(3) == 0:
        tree["outputs"] = [own, own]
        tree["aux_outputs"] = [own]


def self_referencing_block(ch: Chooser, tree: Any) -> None:
    """A block that calls itself, two blocks that call each other, or a new looping block."""
    if not isinstance(tree, dict):
        return
    blocks = tree.get("blocks")
    usable = [n for n, b in blocks.items() if isinstance(b, dict)
              and isinstance(b.get("layers"), list)] if isinstance(blocks, dict) else []
    if not usable:
        tree["blocks"] = {"loop": {"layers": ["relu", {"loop": None}]}}
        if isinstance(tree.get("layers"), list):
            tree["layers"].append({"loop": None})
        return
    first, second = pick(ch, usable), pick(ch, usable)
    args = tree["blocks"][first].get("args")
    call = {first: copy.deepcopy(list(args) if isinstance(args, dict) else args)}
    tree["blocks"][first]["layers"].insert(0, call)
    if second != first:
        tree["blocks"][second]["layers"].append({first: None})


def list_item(ch: Chooser, tree: Any) -> None:
    """Drop, duplicate (duplicate names follow) or swap entries of a list."""
    lists = [c[k] for c, k in slots(tree) if isinstance(c[k], list) and c[k]]
    if not lists:
        return
    items = pick(ch, lists)
    i, j = ch.below(len(items)), ch.below(len(items))
    how = ch.below(3)
    if how == 0:
        del items[i]
    elif how == 1:
        items.insert(i, copy.deepcopy(items[i]))
    else:
        items[i], items[j] = items[j], items[i]


def huge_repeat(ch: Chooser, tree: Any) -> None:
    """Repeat an entry (a huge or nested number of times)."""
    found = [(c, k) for c, k in slots(tree) if isinstance(c, list) and isinstance(c[k], dict)]
    if found:
        container, key = pick(ch, found)
        count = pick(ch, (0, 2, 1000, 10**6, 10**12, "10**7", "2**20", "i + 1", -1, 2.5))
        inner = {"repeat": count, "layers": [container[key]]}
        container[key] = {"repeat": pick(ch, (2, 1000, 10**4)), "layers": [inner]} \
            if ch.below(3) == 0 else inner


def deep_nesting(ch: Chooser, tree: Any) -> None:
    """Lists or mappings nested past any sane depth (YAML depth, group scopes)."""
    found = slots(tree)
    if not found:
        return
    container, key = pick(ch, found)
    value: Any = container[key]
    for _ in range(pick(ch, (20, 60, 150))):
        value = [value] if ch.below(3) else {"layers": [value]}
    container[key] = value


TREE_MUTATIONS: tuple[Callable[[Chooser, Any], None], ...] = (
    drop_key, retype, hostile_number, wrap, unwrap, rename_key, set_name, dangling_reference,
    cyclic_reference, self_referencing_block, list_item, huge_repeat, deep_nesting)


# ---- text and byte mutations (what a tree cannot express: duplicate keys, tags, bad bytes) ---
def text_mutation(ch: Chooser, text: str) -> str:
    lines = text.splitlines(keepends=True) or [""]
    i = ch.below(len(lines))
    how = ch.below(5)
    if how == 0:  # duplicate a line: a duplicate key in block style
        lines.insert(i, lines[i])
    elif how == 1:
        del lines[i]
    elif how == 2:
        return text[: ch.below(len(text) + 1)]
    elif how == 3:
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        lines.insert(i, indent + pick(ch, SNIPPETS) + "\n")
    else:
        col = ch.below(len(lines[i]) + 1)
        lines[i] = lines[i][:col] + pick(ch, SNIPPETS) + lines[i][col:]
    return "".join(lines)


def byte_mutation(ch: Chooser, raw: bytes) -> bytes:
    at = ch.below(len(raw) + 1)
    return raw[:at] + pick(ch, (b"\xff", b"\xc3", b"\xfe\xff", b"\x00", b"\xef\xbb\xbf")) \
        + raw[at:]


# ---- assembling a mutated spec ---------------------------------------------------------------
@cache
def zoo_text(name: str) -> str:
    return (ROOT / "specs" / f"{name}.yaml").read_text(encoding="utf-8")


@cache
def zoo_tree(name: str) -> Any:
    return yaml.safe_load(zoo_text(name))


def dump(ch: Chooser, tree: Any) -> str:
    return yaml.dump(tree, Dumper=_Dumper, sort_keys=False, allow_unicode=bool(ch.below(2)),
                     default_flow_style=pick(ch, (False, None)), width=pick(ch, (80, 10**6)))


def mutate_tree(ch: Chooser, tree: Any, rounds: int = 3) -> Any:
    tree = copy.deepcopy(tree)
    done: set = set()
    for _ in range(1 + ch.below(rounds)):
        mutation = pick(ch, TREE_MUTATIONS)
        if mutation is deep_nesting and mutation in done:
            continue  # twice 150 levels: yaml.dump itself would overflow Python's stack
        mutation(ch, tree)
        done.add(mutation)
    return tree


def mutated_bytes(ch: Chooser, tree: Any) -> tuple[bytes, list[str]]:
    """A mutated file's bytes, and the names of the mutations made (for reports)."""
    done = []
    if ch.below(8):
        tree = mutate_tree(ch, tree)
        done.append("tree")
    text = dump(ch, tree)
    if ch.below(4) == 0:
        text = text_mutation(ch, text)
        done.append("text")
    raw = text.encode("utf-8")
    if ch.below(10) == 0:
        raw = byte_mutation(ch, raw)
        done.append("bytes")
    return raw, done


def mutated_spec(ch: Chooser, name: str | None = None) -> tuple[str, bytes]:
    name = name or pick(ch, ZOO)
    return name, mutated_bytes(ch, zoo_tree(name))[0]


# ---- the property --------------------------------------------------------------------------
def line_count(raw: bytes) -> int:
    """Lines as YAML counts them (it also breaks at NEL, LS and PS), plus the line after
    the last break: an error at the end of the stream points there, at column 1."""
    return 1 + len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", raw.decode("utf-8", "replace")))


def assert_located(error: CnnstatError, path: Path, raw: bytes) -> None:
    loc = error.loc
    assert loc is not None, f"unlocated {type(error).__name__}: {error}"
    if loc.file != str(path):  # a `backbone:` inlines a zoo spec, whose layers keep their
        stem = Path(loc.file or "").stem  # own locations (docs/spec.md)
        assert loc.file == f"specs/{stem}.yaml" and stem in ZOO, \
            f"located in {loc.file!r}, not {path}: {error}"
        raw = zoo_text(stem).encode("utf-8")
    assert loc.line is not None and 1 <= loc.line <= line_count(raw), \
        f"line {loc.line} is outside the file's {line_count(raw)} lines: {error}"


def analyze_everything(path: Path) -> None:
    """The loader, then every analyzer a command runs on a spec (shapes, params, ops and
    receptive fields via the engine; min input; compare's metrics; savings; suggestions)."""
    from cnnstat.analyzers import analyze_graph
    from cnnstat.analyzers.compare import metric_values
    from cnnstat.analyzers.min_input import min_input_side
    from cnnstat.analyzers.savings import analyze_savings, suggest_reductions
    from cnnstat.spec import load_spec

    graph = load_spec(path)
    report = analyze_graph(graph)
    report.to_dict()
    metric_values(report, graph, {"min_input": lambda: min_input_side(graph)})
    analyze_savings(graph)
    suggest_reductions(graph)


def check_spec_bytes(raw: bytes, directory: Path, stem: str = "fuzzed") -> str:
    """Write the bytes and run the property; returns 'ok' or the error class's name."""
    path = directory / f"{stem}.yaml"
    path.write_bytes(raw)
    note(f"{path}:\n{raw.decode('utf-8', 'replace')[:20000]}")
    try:
        analyze_everything(path)
    except CnnstatError as e:
        assert_located(e, path, raw)
        return type(e).__name__
    return "ok"


# ---- through the CLI -------------------------------------------------------------------------
FORMATS = ("table", "json", "csv", "markdown")
INPUTS = (None, None, None, "0", "-1", "3x0x0", "1e9", "10000000000", "224", "3x224",
          "3x224x224x1", "abc", "", "32,,64", "1x1", "65537")


def cli_args(ch: Chooser, spec: str, budget: str) -> tuple[list[str], tuple[int, ...]]:
    """A command line over the fuzzed spec, and the exit codes it may end with."""
    command = pick(ch, ("params", "flops", "shapes", "summary", "rf", "savings", "savings",
                        "compare", "check"))
    if command == "check":
        return ["check", budget, "--format", pick(ch, ("table", "json", "junit", "github",
                                                       "markdown"))], (0, 1, 2)
    args = [command, spec] if command != "compare" else ["compare", spec, "lenet5"]
    if command == "savings" and ch.below(2):
        args += ["--suggest", "--ratio", pick(ch, ("0.25", "0", "1", "x", "0.5"))]
    if command in ("params", "flops", "shapes", "summary") and ch.below(3) == 0:
        args += ["--depth", pick(ch, ("1", "2", "0"))]
    given_input = pick(ch, INPUTS)
    if given_input is not None:
        args += ["--input", given_input]
    return [*args, "--format", pick(ch, FORMATS)], (0, 2)


def run_cli(args: list[str], allowed: tuple[int, ...]) -> int:
    result = CliRunner().invoke(app, args)
    shown = f"cnnstat {' '.join(args)} -> {result.exit_code}\n{result.stderr[-2000:]}"
    assert result.exit_code in allowed, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert "internal error" not in result.stderr, shown
    return result.exit_code


def check_cli(ch: Chooser, raw: bytes, directory: Path) -> int:
    spec = directory / "fuzzed.yaml"
    spec.write_bytes(raw)
    note(f"{spec}:\n{raw.decode('utf-8', 'replace')[:20000]}")
    budget = directory / "budget.yaml"
    budget.write_text(f"models:\n  - model: {spec}\n    max_params: 1000T\n    max_macs: 1000T\n",
                      encoding="utf-8")
    return run_cli(*cli_args(ch, str(spec), str(budget)))


# ---- budget files ----------------------------------------------------------------------------
BUDGET = {
    "defaults": {"input": [1, 32, 32], "batch": 1, "dtype": "fp32"},
    "models": [{"model": "lenet5", "max_params": "5M", "max_macs": "1.5G",
                "max_activation_bytes": "120MB", "max_depth": 10, "min_rf": 5,
                "output_shape": [1, 10], "layers": {"features.*": {"max_params": "1M"}}},
               {"model": "alexnet", "input": [3, 64, 64], "max_flops": "2G"}],
}
QUANTITIES = ("1e999999999", "1e-999999999", "5m", "1.5", "-5M", "5 M", "0x10", "1_000", "∞",
              "5MiB", "1e30T", "1.5e-3G", ".5k", "5.", "99999999999999999999999T", "10**9",
              # issue 24: type swaps (a bool is not a number) and complex-making text
              True, False, None, [], {}, ["5M"], {"max": "5M"}, "(-8) ** 0.5", 1e300)


def budget_mutation(ch: Chooser, tree: Any) -> None:
    """Budget-file specific: hostile quantities and model references."""
    found = [(c, k) for c, k in slots(tree) if k in ("model", "max_params", "max_macs",
                                                     "max_flops", "max_activation_bytes")]
    if found:
        container, key = pick(ch, found)
        container[key] = pick(ch, (*QUANTITIES, "nope", "specs/missing.yaml", "/", ".",
                                   "os:system", "evil.py:make", "torchvision:resnet18"))


def mutated_budget(ch: Chooser) -> bytes:
    tree = copy.deepcopy(BUDGET)
    if ch.below(2):
        budget_mutation(ch, tree)
    return mutated_bytes(ch, tree)[0]


def check_budget_bytes(raw: bytes, directory: Path) -> str:
    from cnnstat.budget import check

    path = directory / "budget.yaml"
    path.write_bytes(raw)
    note(f"{path}:\n{raw.decode('utf-8', 'replace')[:20000]}")
    try:
        result = check(path)
    except CnnstatError as e:
        assert_located(e, path, raw)
        return type(e).__name__
    assert result.exit_code in (0, 1, 2)
    for line in result.problems():
        assert line.startswith(f"{path}:"), line
    return f"exit {result.exit_code}"


# ---- baselines (issue 24): type swaps must fail the gate closed ------------------------------
BASELINE = {"schema": "cnnstat.baseline/1", "models": [
    {"model": "lenet5", "source": "specs/lenet5.yaml", "input_shape": [1, 1, 32, 32],
     "dtype": "fp32", "totals": {"params": 61750, "macs": 418096, "other_ops": 22482,
                                 "activation_bytes": 71496}}]}
JSON_SWAPS = (True, False, None, {}, {"a": 1}, [], [1, 2], -1, 1.5, "61750", 10**40, 1e308)


def baseline_mutation(ch: Chooser) -> tuple[Any, bool]:
    """A baseline with one value swapped for another JSON type; True when the swap put
    something other than a whole number >= 0 where a total belongs (the gate must refuse)."""
    tree = copy.deepcopy(BASELINE)
    if ch.below(4) == 0:
        depth = 1000 + ch.below(50_000)
        return "[" * depth + "]" * depth, True
    totals = tree["models"][0]["totals"]
    container, key = pick(ch, slots(tree))
    value = pick(ch, JSON_SWAPS)
    container[key] = value
    is_total = container is totals
    bad = is_total and (isinstance(value, bool) or not isinstance(value, int) or value < 0)
    return tree, bad


def check_baseline(ch: Chooser, directory: Path) -> str:
    from cnnstat.budget import check

    tree, bad = baseline_mutation(ch)
    path = directory / "baseline.json"
    path.write_text(tree if isinstance(tree, str) else json.dumps(tree), encoding="utf-8")
    budget = directory / "budget.yaml"
    budget.write_text("models:\n  - model: lenet5\n    max_params: 1M\n", encoding="utf-8")
    note(f"{path}: {path.read_text(encoding='utf-8')[:2000]}")
    try:
        result = check(budget, baseline=path)
    except CnnstatError as e:
        assert e.exit_code == 2 and e.loc is not None and e.loc.file == str(path), e
        return type(e).__name__
    assert not bad, f"the gate read a broken baseline: exit {result.exit_code}"
    assert result.exit_code in (0, 1, 2)
    return f"exit {result.exit_code}"


# ---- random valid specs (a grammar), checked against torch -----------------------------------
def _conv(ch: Chooser, state: list[int]) -> dict:
    c_out, k, s = 1 + ch.below(12), pick(ch, (1, 3, 5)), pick(ch, (1, 1, 2))
    g = pick(ch, [d for d in range(1, c_out + 1) if c_out % d == 0 and state[0] % d == 0])
    state[:] = [c_out, (state[1] - 1) // s + 1]
    return {"conv": c_out, "k": k, "s": s, "p": k // 2, "g": g, "bias": bool(ch.below(2))}


def _pointwise(ch: Chooser, state: list[int]) -> Any:
    return copy.deepcopy(pick(ch, ("relu", "relu6", "sigmoid", "tanh", "gelu", "silu",
                                   "hardswish", "bn", "identity", {"lrelu": 0.1},
                                   {"dropout": 0.5}, {"bn": None, "eps": 0.001})))


def _pool(ch: Chooser, state: list[int]) -> dict:
    if state[1] < 2 or ch.below(2):
        return {"avgpool": 3, "s": 1, "p": 1}
    state[1] //= 2
    return {"maxpool": 2, "s": 2}


def _parallel(ch: Chooser, state: list[int]) -> dict:
    if ch.below(2):  # add: every branch keeps the same shape
        width = state[0] if ch.below(2) else 1 + ch.below(8)
        branches = [[{"conv": width, "k": pick(ch, (1, 3)), "p": "same"}, "relu"]
                    for _ in range(1 + ch.below(3))]
        if width == state[0]:
            branches.append([])  # identity
        state[0] = width
        return {"parallel": branches, "merge": "add"}
    widths = [1 + ch.below(6) for _ in range(2 + ch.below(2))]
    state[0] = sum(widths)
    return {"parallel": {f"b{i}": [{"conv": w, "k": 1}] for i, w in enumerate(widths)},
            "merge": "concat", "name": "inception"}  # mapping branches need their own scope


def _repeat(ch: Chooser, state: list[int]) -> dict:
    if ch.below(2):
        return {"repeat": 1 + ch.below(3), "layers": [{"conv": state[0], "k": 3, "p": 1},
                                                     "relu"]}
    return {"repeat": 1 + ch.below(3), "name": f"stage{ch.below(1000)}",
            "unit": {"c": state[0], "k": pick(ch, (1, 3))}}


def _block(ch: Chooser, state: list[int]) -> dict:
    state[0] = 1 + ch.below(12)
    return {"unit": [state[0], pick(ch, (1, 3, 5))]}


def _resample(ch: Chooser, state: list[int]) -> dict:
    if state[1] > 32:
        return {"avgpool": 2}
    state[1] *= 2
    if ch.below(2):
        return {"upsample": 2, "mode": pick(ch, ("nearest", "bilinear"))}
    state[0] = 1 + ch.below(8)
    return {"deconv": state[0], "k": 2, "s": 2}


GRAMMAR = (_conv, _conv, _pointwise, _pool, _parallel, _repeat, _block, _resample)


def valid_spec(ch: Chooser) -> dict:
    """A spec that torch can run: shapes are tracked so every layer fits its input."""
    state = [pick(ch, (1, 3, 4)), pick(ch, (8, 12, 16, 32))]
    spec: dict[str, Any] = {"name": "random", "input": [state[0], state[1], state[1]]}
    spec["blocks"] = {"unit": {"args": {"c": None, "k": 3}, "layers": [
        {"conv": "c", "k": "k", "p": "k // 2", "bias": False}, "bn", "relu"]}}
    layers: list[Any] = []
    for _ in range(1 + ch.below(6)):
        entry = pick(ch, GRAMMAR)(ch, state)
        layers.append(entry)
        if isinstance(entry, dict) and "name" in entry:
            entry["name"] = f"{entry['name']}_{len(layers)}"  # unique scope names
    if ch.below(2):
        layers += ["gap", "flatten", {"fc": 1 + ch.below(20)}]
    spec["layers"] = layers
    return spec


def check_valid_against_torch(spec: dict, directory: Path) -> None:
    from oracles import torch_truth

    from cnnstat.analyzers import analyze_graph
    from cnnstat.spec import load_spec

    path = directory / "valid.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    graph = load_spec(path)
    report = analyze_graph(graph)
    truth = torch_truth(graph)
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == \
        (truth.params, truth.buffers, truth.macs), yaml.safe_dump(spec)
    for row in report.layers:
        if row.name in truth.shapes:
            assert row.output_shape == truth.shapes[row.name], (row.name, yaml.safe_dump(spec))


# ---- the tests -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ZOO)
@CI
@given(data=st.data())
def test_mutated_zoo_spec_answers_or_fails_located(name: str, data: Any,
                                                    tmp_path_factory) -> None:
    """Catches: an exception that is not a CnnstatError (a crash, exit 70), an error with no
    location or a line outside the file, and a hang or memory blow-up (the run would not
    finish) on drop/duplicate/retype/huge/float/nested/unicode/dangling/cyclic mutations
    of every zoo spec."""
    ch = DrawChooser(data)
    _, raw = mutated_spec(ch, name)
    check_spec_bytes(raw, tmp_path_factory.mktemp("fuzz"))


@settings(CI, max_examples=40)
@given(data=st.data())
def test_mutated_specs_through_the_cli(data: Any, tmp_path_factory) -> None:
    """Catches: a command (any view or format, rf, savings, compare, check) that crashes,
    prints a traceback or exits with anything but 0 or 2 (check: 0, 1 or 2) on a mutated
    spec or a hostile --input."""
    ch = DrawChooser(data)
    _, raw = mutated_spec(ch)
    check_cli(ch, raw, tmp_path_factory.mktemp("cli"))


@settings(CI, max_examples=60)
@given(data=st.data())
def test_mutated_budget_files_answer_or_fail_located(data: Any, tmp_path_factory) -> None:
    """Catches: a budget file (untrusted input in CI) that crashes the gate, hangs it with a
    quantity such as 1e999999999, or fails with an unlocated error."""
    ch = DrawChooser(data)
    check_budget_bytes(mutated_budget(ch), tmp_path_factory.mktemp("budget"))


@settings(CI, max_examples=40)
@given(data=st.data())
def test_mutated_baselines_fail_the_gate_closed(data: Any, tmp_path_factory) -> None:
    """Catches: a baseline with a bool, map, list or nested-deep value where a number
    belongs that crashes the gate (exit 70) or passes it (issue 24)."""
    check_baseline(DrawChooser(data), tmp_path_factory.mktemp("baseline"))


@settings(CI, max_examples=15)
@given(data=st.data())
def test_random_valid_specs_load_and_match_torch(data: Any, tmp_path_factory) -> None:
    """Catches: a valid spec (convs, groups, pools, add/concat branches, repeats, blocks,
    upsampling, transposed convs) that cnnstat rejects or counts differently from torch."""
    check_valid_against_torch(valid_spec(DrawChooser(data)), tmp_path_factory.mktemp("valid"))


def _long_run_selected(config: pytest.Config) -> bool:
    """Only when asked for by name: `-m fuzz_long` (addopts deselects it, but a CI line
    with its own -m, such as -m "not slow", would replace that)."""
    expression = config.option.markexpr or ""
    return "fuzz_long" in expression and "not fuzz_long" not in expression


@pytest.mark.fuzz_long
@LONG
@given(data=st.data())
def test_long_fuzz_of_every_zoo_spec(data: Any, tmp_path_factory, pytestconfig) -> None:
    """The same properties as above, many more examples (run with -m fuzz_long)."""
    if not _long_run_selected(pytestconfig):
        pytest.skip("the long fuzz runs with -m fuzz_long only")
    ch = DrawChooser(data)
    directory = tmp_path_factory.mktemp("long")
    _, raw = mutated_spec(ch)
    check_spec_bytes(raw, directory)
    if ch.below(4) == 0:
        check_cli(ch, raw, directory)
    if ch.below(4) == 0:
        check_budget_bytes(mutated_budget(ch), directory)
    if ch.below(4) == 0:
        check_baseline(ch, directory)
