"""A hostile sweep of issue 24's families, each case a real `cnnstat` process with a time
bound: complex-making expressions, huge literals, special files (fifo, /dev/zero,
/dev/urandom) as MODEL, budget file and baseline, over-long MODEL paths, type swaps in
budget files and baselines, extreme --tolerance, writes onto a fifo, and the inputs that
once hung (many anchors, recursive block fan-out, a 4 MB one-line spec).

    .venv/bin/python benchmarks/hostile_sweep.py [--timeout 20] [--minutes 10]

Prints the count of each exit code per family and every violation: exit 70 (or any code
but the expected ones), a traceback, a run over --timeout, a broken input that passed
(exit 0 or 1 where the input is malformed), or a fifo that a write replaced. Exits 1 on
any violation.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SPEC = "input: [3, 8, 8]\nlayers:\n  - {{conv: 4, k: 3}}\n  - {layer}\n"
BUDGET = "models:\n  - model: {model}\n    max_params: {quantity}\n"
ENTRY = {"model": "lenet5", "input_shape": [1, 1, 32, 32], "dtype": "fp32"}
COMPLEX = ("(-8) ** 0.5", "(-1) ** 0.5", "(-2) ** 1.5", "(-27) ** (1/3)", "-(-4) ** -0.5",
           "2 * (-1) ** 0.5", "((-1) ** 0.5) ** 2")
HUGE = ("9" * 5000, "0x" + "f" * 5000, "0" + "7" * 6000, "0b" + "1" * 20000,
        '"' + "9" * 450 + '"', '"0x' + "f" * 400 + '"', "1e999", "-1e999", '"10 ** 64"',
        '"2 ** 64 ** 2"')
SWAPS = (True, False, None, {}, {"a": 1}, [], [1, 2], -1, 1.5, "61750", 1e308)
# An expected outcome: the exit codes allowed, and whether a fifo must survive.
Case = tuple[str, list[str], tuple[int, ...], Path | None]


def spec_cases(work: Path) -> Iterator[Case]:
    fields = ("conv: {v}, k: 3", "dropout: {v}", "upsample: {v}", "conv: 4, k: {v}",
              "maxpool: {v}")
    values = [f'"{c}"' for c in COMPLEX] + list(HUGE)
    for i, (field, value) in enumerate((f, v) for f in fields for v in values):
        path = work / f"spec{i}.yaml"
        path.write_text(SPEC.format(layer="{" + field.format(v=value) + "}"), encoding="utf-8")
        yield "spec: complex/huge values", ["params", str(path)], (2,), None


def special_files(work: Path) -> Iterator[Case]:
    budget = work / "budget.yaml"
    budget.write_text(BUDGET.format(model="lenet5", quantity="1M"), encoding="utf-8")
    for n, target in enumerate(("fifo", "/dev/zero", "/dev/urandom", "/dev/null", "dir")):
        for role in ("model", "budget", "baseline"):
            path = work / f"special{n}-{role}.yaml"
            if target == "fifo":
                os.mkfifo(path)
            elif target == "dir":
                path.mkdir()
            else:
                path.symlink_to(target)
            args = {"model": ["params", str(path)], "budget": ["check", str(path)],
                    "baseline": ["check", str(budget), "--baseline", str(path)]}[role]
            yield f"special file as {role}", args, (2,), None


def long_paths(work: Path) -> Iterator[Case]:
    for n in (256, 300, 5000, 100_000):
        yield "over-long MODEL path", ["params", "a" * n + ".yaml"], (2,), None
    yield "over-long MODEL path", ["params", "/".join(["d" * 200] * 30) + ".yaml"], (2,), None
    yield "over-long MODEL path", ["params", "a" * 5000], (2,), None


def budget_swaps(work: Path) -> Iterator[Case]:
    quantities = ["true", "false", "null", "[]", "{}", "[5M]", "{max: 5M}", '"(-8) ** 0.5"',
                  "1e999999999", "1e-999999999", "9" * 5000, "0x" + "f" * 5000, "-5M"]
    for i, quantity in enumerate(quantities):
        path = work / f"budget{i}.yaml"
        path.write_text(BUDGET.format(model="lenet5", quantity=quantity), encoding="utf-8")
        yield "budget file: type swaps", ["check", str(path)], (2,), None
    for i, model in enumerate(["true", "[]", "{}", "0x" + "f" * 5000, '"' + "a" * 5000 + '"']):
        path = work / f"budget-model{i}.yaml"
        path.write_text(BUDGET.format(model=model, quantity="1M"), encoding="utf-8")
        yield "budget file: type swaps", ["check", str(path)], (2,), None


def baseline_swaps(work: Path) -> Iterator[Case]:
    budget = work / "budget.yaml"
    trees = []
    for metric in ("params", "macs", "other_ops", "activation_bytes"):
        trees += [{**ENTRY, "totals": {metric: value}} for value in SWAPS]
    for key in ("model", "input_shape", "dtype", "totals"):
        trees += [{**ENTRY, "totals": {"params": 1}, key: value} for value in SWAPS]
    trees += [{"models": value} for value in SWAPS]
    texts = [json.dumps(t) for t in trees]
    texts += ["[" * n + "]" * n for n in (1000, 10_000, 100_000)]
    texts += ['{"a":' * 50_000 + "1" + "}" * 50_000, "NaN", "", "\xff"]
    for i, text in enumerate(texts):
        path = work / f"baseline{i}.json"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        good = i < len(trees) and _readable(trees[i])
        yield ("baseline: type swaps", ["check", str(budget), "--baseline", str(path)],
               (0, 1, 2) if good else (2,), None)


def _readable(tree: dict) -> bool:
    """A swap that leaves a valid baseline (a total the gate can compare, or a key it
    ignores): the gate may pass or fail it; anything else must exit 2."""
    totals = tree.get("totals")
    shape, models = tree.get("input_shape"), tree.get("models")
    if models is not None:
        return models == []  # no entry: nothing to compare (a note), well formed
    return (isinstance(tree.get("model"), str) and isinstance(shape, list) and shape != []
            and all(type(v) is int and v > 0 for v in shape)
            and isinstance(tree.get("dtype"), str | None) and isinstance(totals, dict)
            and all(type(v) is int and v >= 0 for v in totals.values()))


def tolerances(work: Path) -> Iterator[Case]:
    budget, baseline = work / "budget.yaml", work / "tolerance.json"
    baseline.write_text(json.dumps({**ENTRY, "totals": {"params": 61750}}), encoding="utf-8")
    for tol in ("1e999999999%", "1e-999999999%", "9" * 100, "1e31", "-1%", "nan", "inf",
                "1/0", "(-8)**0.5", "0x10", "1e30", "1e-30"):
        allowed = (0, 1) if tol in ("1e30", "1e-30") else (2,)  # extreme but valid
        yield ("--tolerance", ["check", str(budget), "--baseline", str(baseline),
                               "--tolerance", tol], allowed, None)


def writes(work: Path) -> Iterator[Case]:
    budget = work / "budget.yaml"
    for n, args in enumerate((["export", "lenet5", "-o"], ["export", "lenet5", "--force", "-o"],
                              ["check", str(budget), "--update-baseline", "--baseline"],
                              ["compare", "lenet5", "alexnet", "--force", "--plot"])):
        fifo = work / f"out{n}.fifo"
        os.mkfifo(fifo)
        yield "writes onto a fifo", [*args, str(fifo)], (2,), fifo
    yield "writes to stdout", ["export", "lenet5", "-o", "-"], (0,), None
    yield "writes to stdout", ["export", "lenet5", "-o", "/dev/stdout"], (0,), None


def once_hung(work: Path) -> Iterator[Case]:
    anchors = work / "anchors.yaml"  # 200,000 anchors, each aliased once
    anchors.write_text("input: [3, 8, 8]\nx: [" + ", ".join(f"&a{i} {i}" for i in range(
        200_000)) + "]\ny: [" + ", ".join(f"*a{i}" for i in range(200_000)) + "]\n")
    yield "once hung", ["params", str(anchors)], (2,), None
    fan = work / "fan.yaml"
    lines = ["input: [3, 8, 8]", "blocks:"]
    for i in range(30):
        body = [f"      - b{i + 1}: null"] * 2 if i < 29 else ["      - {relu: null}"]
        lines += [f"  b{i}:", "    layers:", *body]
    fan.write_text("\n".join([*lines, "layers:", "  - b0: null"]) + "\n", encoding="utf-8")
    yield "once hung", ["params", str(fan)], (2,), None
    oneline = work / "oneline.yaml"  # 4 MB on one line: a name, then layers
    oneline.write_text("{name: " + "a" * 4_000_000 + ", input: [3, 8, 8], layers: ["
                       + ", ".join(["{relu: null}"] * 1000) + "]}\n", encoding="utf-8")
    yield "once hung", ["params", str(oneline)], (0, 2), None
    bigger = work / "oneline-big.yaml"  # over the 4 MiB bound: refused before parsing
    bigger.write_text("{layers: [" + ", ".join(["{relu: null}"] * 320_000) + "]}\n")
    yield "once hung", ["params", str(bigger)], (2,), None


FAMILIES = (spec_cases, special_files, long_paths, budget_swaps, baseline_swaps, tolerances,
            writes, once_hung)


def run(args: list[str], timeout: float) -> tuple[int | str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "cnnstat", *args], capture_output=True,
                              text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return "hang", ""
    return done.returncode, done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--minutes", type=float, default=15.0, help="stop after this long")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cnnstat-hostile-"))
    codes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    violations: list[str] = []
    start = time.perf_counter()
    deadline = start + 60 * options.minutes
    for family in FAMILIES:
        for name, args, allowed, fifo in family(work):
            if time.perf_counter() > deadline:
                break
            code, stderr = run(args, options.timeout)
            codes[name][code] += 1
            shown = " ".join(a if len(a) < 80 else a[:40] + "..." for a in args)
            if code not in allowed or "Traceback" in stderr:
                violations.append(f"{name}: exit {code} (allowed {allowed}): {shown}: "
                                  f"{stderr.strip()[-300:]}")
            if fifo is not None and not stat.S_ISFIFO(fifo.lstat().st_mode):
                violations.append(f"{name}: the fifo was replaced: {shown}")
    total = sum(sum(c.values()) for c in codes.values())
    print(f"hostile_sweep: {total} cases in {time.perf_counter() - start:.0f} s "
          f"(timeout {options.timeout:g} s per case)")
    for name, counter in codes.items():
        shown = ", ".join(f"exit {code}: {n}" for code, n in sorted(counter.items(), key=str))
        print(f"  {name:28s} {sum(counter.values()):4d}  {shown}")
    everything = sum(codes.values(), collections.Counter())
    print("all: " + ", ".join(f"exit {c}: {n}" for c, n in sorted(everything.items(), key=str)))
    print(f"violations: {len(violations)}")
    for line in violations:
        print("  " + line)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
