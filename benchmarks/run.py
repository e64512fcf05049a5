"""Whole-process benchmark of cnnstat against the tools that run the model (issue 11).

    python benchmarks/run.py [--runs N] [--quick] [--out FILE]

Run it with a Python that has cnnstat and the `bench` extra installed
(`pip install -e '.[bench]'`): fvcore, torchinfo, ptflops, thop (tools that are missing
are reported as such). Every measurement is a fresh process, what a user pays: interpreter
start, imports, loading, analysis, output. One warm-up round, then `--runs` rounds; each
round runs every case once, in turn, so a busy machine slows every case alike and the
ratios (cnnstat / other, computed in this same run) stay meaningful. Per case: the median
wall time, its spread (min-max), the median CPU time (user + system) and the peak RSS of
the child (`os.wait4`'s rusage, per child). Writes a Markdown report (default
benchmarks/RESULTS.md) with the machine, the versions, the date and the issue's targets.
Children run with the bytecode cache on (PYTHONDONTWRITEBYTECODE unset; the warm-up round
writes cnnstat's .pyc files), as a user's install has it. Last, the in-process throughput
of `cnnstat.analyze` on the resnet50 and densenet121 specs (analyses per CPU second).

The torch modules are plain torch written by hand (benchmarks/plain_models.py: resnet50,
densenet121, wide_vgg in benchmarks/models.py) or, for vgg16, the zoo spec built by cnnstat's
builder; every tool sees the same network: cnnstat through its torch frontend (parameters on the
meta device), the others with real weights on the CPU and a 1x3x224x224 input.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))
import big_specs  # noqa: E402  (benchmarks/ is no package)

MODELS = ("vgg16", "resnet50", "densenet121")
# Hand-written plain torch (benchmarks/plain_models.py): no tool's run imports cnnstat.
PLAIN = ("resnet50", "densenet121")
BIG = "wide_vgg"  # 615 M parameters (benchmarks/models.py)
TOOLS = ("fvcore", "torchinfo", "ptflops", "thop", "FlopCounterMode")
VERSIONS = ("torch", "fvcore", "torchinfo", "ptflops", "thop", "typer", "rich", "PyYAML",
            "pydantic", "pyinstrument")

# A child that builds the network with real weights and prints {"params", "macs"}.
_BUILD = f"""
import json, sys
import torch
sys.path.insert(0, {str(BENCH)!r})
import importlib
torch.manual_seed(0)
model = getattr(importlib.import_module(sys.argv[2]), sys.argv[1])().eval()
x = torch.randn(1, 3, 224, 224)
params = sum(p.numel() for p in model.parameters())
"""
_COUNT = {
    "fvcore": """
from fvcore.nn import FlopCountAnalysis
with torch.no_grad():
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    macs = analysis.total()  # fvcore counts one "flop" per multiply-add
""",
    "torchinfo": """
from torchinfo import summary
with torch.no_grad():
    macs = summary(model, input_data=x, verbose=0).total_mult_adds
""",
    "ptflops": """
from ptflops import get_model_complexity_info
with torch.no_grad():
    macs, _ = get_model_complexity_info(model, (3, 224, 224), as_strings=False,
                                        print_per_layer_stat=False, verbose=False)
""",
    "thop": """
from thop import profile
with torch.no_grad():
    macs, _ = profile(model, inputs=(x,), verbose=False)
""",
    "FlopCounterMode": """
from torch.utils.flop_counter import FlopCounterMode
with torch.no_grad(), FlopCounterMode(display=False) as counter:
    model(x)
macs = counter.get_total_flops() // 2  # torch counts FLOPs = 2 x MACs
""",
}
# Children may write bytecode caches, as a user's Python does (the warm-up round writes
# them): with PYTHONDONTWRITEBYTECODE set, every run would recompile cnnstat from source.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
_PRINT = 'print(json.dumps({"params": int(params), "macs": int(macs)}))\n'
_TOOL_MODULE = {"FlopCounterMode": "torch"}


@dataclass(frozen=True)
class Case:
    key: str  # unique: "fvcore/resnet50"
    label: str  # the row's first column
    model: str | None
    argv: tuple[str, ...]
    parse: bool = False  # stdout's last JSON holds params and MACs


@dataclass
class Measure:
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    reported: dict | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.walls)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)

    @property
    def rss_mib(self) -> float:
        return max(self.rss_kib) / 1024


# ---- running one child ---------------------------------------------------------------------


def run_child(argv: tuple[str, ...], keep_stdout: bool = True
              ) -> tuple[float, float, int, int, str, str]:
    """Wall s, CPU s (user + system), peak RSS KiB, exit code, stdout, stderr of one fresh
    process. `os.wait4` gives this child's own rusage (RUSAGE_CHILDREN would give the
    maximum over every child so far). Linux counts the parent's RSS at the fork in a
    child's peak, so this process never reads a big output (a 100k-layer report is 40 MB
    of JSON): `keep_stdout=False` sends it to /dev/null."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out if keep_stdout else subprocess.DEVNULL,
                                stderr=err, cwd=ROOT, env=CHILD_ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        texts = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss, proc.returncode, *texts


def reported(stdout: str) -> dict | None:
    """params and MACs from a child's JSON (a tool snippet's last line, or cnnstat's
    report)."""
    text = stdout.strip()
    for candidate in (text, text.splitlines()[-1] if text else ""):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        totals = data.get("totals", data) if isinstance(data, dict) else {}
        if "params" in totals and "macs" in totals:
            return {"params": totals["params"], "macs": totals["macs"]}
    return None


def measure_once(case: Case, result: Measure, keep: bool) -> None:
    wall, cpu, rss, code, stdout, stderr = run_child(case.argv, keep_stdout=case.parse)
    if code != 0:
        lines = stderr.strip().splitlines() or [f"exit {code}"]
        result.error = f"exit {code}: {lines[-1][:160]}"
        return
    if case.parse and result.reported is None:
        result.reported = reported(stdout)
    if keep:
        result.walls.append(wall)
        result.cpus.append(cpu)
        result.rss_kib.append(rss)


def measure_all(cases: list[Case], runs: int, log) -> dict[str, Measure]:
    """One warm-up round, then `runs` rounds of every case in turn; a case that fails is
    not run again."""
    results = {case.key: Measure() for case in cases}
    for round_index in range(runs + 1):
        keep = round_index > 0
        log(f"round {round_index}/{runs}" + ("" if keep else " (warm-up)"))
        for case in cases:
            result = results[case.key]
            if result.error is None:
                measure_once(case, result, keep)
                if result.error:
                    log(f"  {case.key}: {result.error}")
    return results


# ---- what to run ---------------------------------------------------------------------------


def cnnstat_argv() -> tuple[str, ...]:
    """The `cnnstat` console script next to this Python (what users run), else -m."""
    script = Path(sys.executable).with_name("cnnstat")
    return (str(script),) if script.exists() else (sys.executable, "-m", "cnnstat")


def installed(tool: str) -> bool:
    return importlib.util.find_spec(_TOOL_MODULE.get(tool, tool)) is not None


def floor_cases() -> list[Case]:
    py = sys.executable
    return [
        Case("floor/pass", "`python -c pass`", None, (py, "-c", "pass")),
        Case("floor/deps", "`python -c 'import yaml, rich, typer'`", None,
             (py, "-c", "import yaml, rich, typer")),
        Case("floor/torch", "`python -c 'import torch'`", None, (py, "-c", "import torch")),
    ]


def model_cases(model: str, tools: tuple[str, ...]) -> list[Case]:
    cli = cnnstat_argv()
    module = "plain_models" if model in PLAIN else "models"
    reference = f"benchmarks/{module}.py:{model}"
    cases = [
        Case(f"spec/{model}", f"`cnnstat params {model}`", model, (*cli, "params", model)),
        Case(f"spec-json/{model}", f"`cnnstat params {model} --json`", model,
             (*cli, "params", model, "--json"), parse=True),
        Case(f"torch/{model}", "`cnnstat params <module> --json`", model,
             (*cli, "params", reference, "--json"), parse=True),
    ]
    for tool in tools:
        code = _BUILD + _COUNT[tool] + _PRINT
        argv = (sys.executable, "-c", code, model, module)
        cases.append(Case(f"{tool}/{model}", tool, model, argv, parse=True))
    return cases


def whole_zoo_cases(budget_file: Path) -> list[Case]:
    cli = cnnstat_argv()
    return [
        Case("zoo", "`cnnstat zoo`", None, (*cli, "zoo")),
        Case("zoo-json", "`cnnstat zoo --json`", None, (*cli, "zoo", "--json")),
        Case("check", "`cnnstat check <zoo-wide budgets>`", None,
             (*cli, "check", str(budget_file))),
    ]


def zoo_budget_file(directory: Path) -> Path:
    """The budget file of benchmarks/check_zoo.py: one budget per zoo model."""
    sys.path.insert(0, str(BENCH))
    from check_zoo import zoo_budget_file as generate

    return generate(directory)[0]


def all_cases(models: tuple[str, ...], budget_file: Path, big: bool) -> list[Case]:
    tools = tuple(t for t in TOOLS if installed(t))
    cases = floor_cases() + whole_zoo_cases(budget_file)
    if big:  # issue 23: 100k-layer specs, with repeat and flat
        cases += big_specs.cases(Case, cnnstat_argv(), budget_file.parent)
    for model in models:
        cases += model_cases(model, tools)
    if big:
        cases += [c for c in model_cases(BIG, ("fvcore",) if "fvcore" in tools else ())
                  if not c.key.startswith("spec")]
    return cases


# ---- the report ----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    for name in VERSIONS:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return {"cpu": model, "nproc": str(cpus), "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", "versions": ", ".join(versions)}


def seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def ratio(a: Measure | None, b: Measure | None) -> str:
    if a is None or b is None or not (a.ok and b.ok):
        return "-"
    return f"{a.wall / b.wall:.3f}" if a.wall < b.wall / 10 else f"{a.wall / b.wall:.2f}"


def count(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if value >= size:
            return f"{value / size:.3f} {unit}"
    return str(value)


def row(case: Case, m: Measure, spec: Measure | None, torch_path: Measure | None) -> str:
    if not m.ok:
        return f"| {case.label} | {m.error or 'not run'} | | | | | | | |"
    got = m.reported or {}
    spread = f"{seconds(min(m.walls))}-{seconds(max(m.walls))}"
    return (f"| {case.label} | {seconds(m.wall)} | {spread} | {seconds(m.cpu)} | "
            f"{m.rss_mib:.0f} | {count(got.get('params'))} | {count(got.get('macs'))} | "
            f"{ratio(spec, m)} | {ratio(torch_path, m)} |")


HEADER = ("| process | wall median (s) | spread (s) | CPU median (s) | peak RSS (MiB) | params "
          "| MACs | cnnstat spec / this | cnnstat torch / this |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def table(cases: list[Case], results: dict[str, Measure]) -> list[str]:
    lines: list[str] = []
    current = object()
    for case in cases:
        if case.model != current:
            current = case.model
            lines += ["", f"**{case.model or 'floors and whole-zoo commands'}**", "", HEADER]
        spec = results.get(f"spec/{case.model}")
        torch_path = results.get(f"torch/{case.model}")
        lines.append(row(case, results[case.key], spec, torch_path))
    return lines


# ---- the targets -------------------------------------------------------------------


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**not met**")


def _wall(results: dict[str, Measure], key: str) -> float | None:
    m = results.get(key)
    return m.wall if m is not None and m.ok else None


def _target_spec(results: dict[str, Measure]) -> list[tuple[str, bool | None, str]]:
    spec, deps = _wall(results, "spec/vgg16"), _wall(results, "floor/deps")
    fv = _wall(results, "fvcore/vgg16")
    out = []
    if spec and deps:
        cpu = results["spec/vgg16"].cpu / results["floor/deps"].cpu
        out.append(("spec path: `cnnstat params vgg16` <= 2x the floor "
                    "`import yaml, rich, typer`", spec / deps <= 2,
                    f"{seconds(spec)} s / {seconds(deps)} s = {spec / deps:.1f}x wall "
                    f"({cpu:.1f}x CPU)"))
    else:
        out.append(("spec path <= 2x the import floor", None, "-"))
    if spec and fv:
        cpu = results["fvcore/vgg16"].cpu / results["spec/vgg16"].cpu
        out.append(("spec path >= 25x faster than fvcore on vgg16", fv / spec >= 25,
                    f"fvcore {seconds(fv)} s / cnnstat {seconds(spec)} s = {fv / spec:.1f}x "
                    f"wall ({cpu:.1f}x CPU)"))
    else:
        out.append(("spec path >= 25x faster than fvcore on vgg16", None, "fvcore not run"))
    return out


def _target_zoo(results: dict[str, Measure]) -> list[tuple[str, bool | None, str]]:
    out = []
    for key, text in (("zoo", "`cnnstat zoo` (every spec) < 0.5 s"),
                      ("check", "`cnnstat check` over a zoo-wide budget file < 0.5 s")):
        wall = _wall(results, key)
        out.append((text, None if wall is None else wall < 0.5,
                    "-" if wall is None else f"{seconds(wall)} s wall median, "
                    f"{seconds(results[key].cpu)} s CPU"))
    return out


def _target_torch(results: dict[str, Measure],
                  models: tuple[str, ...]) -> list[tuple[str, bool | None, str]]:
    pairs = [(m, _wall(results, f"torch/{m}"), _wall(results, f"fvcore/{m}")) for m in models]
    measured = [(m, t / f, results[f"torch/{m}"].cpu / results[f"fvcore/{m}"].cpu)
                for m, t, f in pairs if t and f]
    text = "torch path: `cnnstat params <module>` <= 0.8x fvcore's wall"
    out = [(text, all(r <= 0.8 for _, r, _ in measured) if measured else None,
            ", ".join(f"{m} {r:.2f}x ({c:.2f}x CPU)" for m, r, c in measured) or "-")]
    big = results.get(f"torch/{BIG}")
    if big is not None and big.ok:
        params = (big.reported or {}).get("params")
        fv = results.get(f"fvcore/{BIG}")
        extra = f"; fvcore with real weights: {fv.rss_mib:.0f} MiB" if fv and fv.ok else ""
        out.append((f"a 600 M-parameter network ({count(params)} params) under 1 GB peak RSS",
                    big.rss_mib * 2**20 < 10**9,
                    f"{big.rss_mib:.0f} MiB peak RSS, {seconds(big.wall)} s{extra}"))
    else:
        out.append(("a 600 M-parameter network under 1 GB peak RSS", None,
                    big.error if big else "not run"))
    return out


def targets(results: dict[str, Measure], models: tuple[str, ...]) -> list[str]:
    rows = [*big_specs.targets(results, _wall, seconds), *_target_spec(results),
            *_target_zoo(results), *_target_torch(results, models)]
    lines = ["| target | verdict | measured |", "|---|---|---|"]
    lines += [f"| {text} | {_verdict(ok)} | {figures} |" for text, ok, figures in rows]
    return lines


# ---- main ----------------------------------------------------------------------------------


def report(cases: list[Case], results: dict[str, Measure], info: dict[str, str],
           models: tuple[str, ...]) -> str:
    lines = [
        "# cnnstat benchmark results",
        "",
        f"Written by `python benchmarks/run.py {info['args']}` on {info['date']}; "
        "docs/performance.md explains the method. Every figure is a whole process; the "
        "ratios are wall-time medians from this same run (below 1: cnnstat is faster).",
        "",
        f"- machine: {info['cpu']}, {info['nproc']} CPUs, {info['os']}; load average "
        f"{info['load_before']} before, {info['load_after']} after (other jobs shared it)",
        f"- python {info['python']} ({sys.executable}); {info['versions']}",
        f"- {info['runs']} measured runs per case after one warm-up round, run in turn "
        f"(round-robin); total {info['elapsed']}",
        f"- tools not installed (no rows): {info['missing'] or 'none'}",
        "- spread: fastest-slowest run; CPU: user + system; peak RSS: the child's "
        "`ru_maxrss` (largest run)",
        "- torch modules: resnet50 and densenet121 plain torch written by hand "
        "(benchmarks/plain_models.py), vgg16 the zoo spec built by cnnstat's builder "
        "(benchmarks/models.py); bytecode cache on (warmed by the warm-up round); "
        "cnnstat traces them with parameters on the meta device, the other tools run them "
        "with real weights on a 1x3x224x224 input",
        "",
        "## Targets (issues 23 and 11)",
        "",
        *targets(results, models),
        "",
        "## All measurements",
        *table(cases, results),
        "",
    ]
    if info.get("throughput"):
        lines += ["## In-process throughput (`cnnstat.analyze(NAME)`, load + analyze)", "",
                  info["throughput"], ""]
    if info.get("scaling"):
        lines += ["## Engine scaling (benchmarks/scaling.py, in one process)", "",
                  info["scaling"], ""]
    return "\n".join(lines)


def scaling() -> str:
    """benchmarks/scaling.py's Markdown, run in its own process after the timings."""
    done = subprocess.run([sys.executable, str(BENCH / "scaling.py")], capture_output=True,
                          text=True, cwd=ROOT, env=CHILD_ENV)
    if done.returncode != 0:
        return f"scaling.py failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"
    return done.stdout.strip()


# In-process throughput for design-space sweeps: load and analyze a spec again and again.
_THROUGHPUT = """
import sys, time
import cnnstat
name = sys.argv[1]
cnnstat.analyze(name)  # warm: imports, the zoo index
count, start = 0, time.process_time()
while time.process_time() - start < 2.0:
    cnnstat.analyze(name)
    count += 1
print(f"{count / (time.process_time() - start):.0f}")
"""


def throughput(models: tuple[str, ...]) -> str:
    """analyses per CPU second of `cnnstat.analyze(NAME)` (load + analyze) in one process."""
    lines = ["| spec | analyses per CPU second | ms each |", "|---|---:|---:|"]
    for name in models:
        done = subprocess.run([sys.executable, "-c", _THROUGHPUT, name], capture_output=True,
                              text=True, cwd=ROOT, env=CHILD_ENV)
        if done.returncode != 0:
            lines.append(f"| {name} | failed: {done.stderr.strip()[-160:]} | |")
            continue
        rate = float(done.stdout.strip())
        lines.append(f"| {name} | {rate:.0f} | {1000 / rate:.2f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="measured runs per case "
                        "(default 5, 2 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="vgg16 only, no 600 M-parameter network: a smoke run")
    parser.add_argument("--models", default=None, help="comma-separated (default: "
                        + ",".join(MODELS) + ")")
    parser.add_argument("--no-big", action="store_true", help="skip the 600 M network")
    parser.add_argument("--no-scaling", action="store_true", help="skip benchmarks/scaling.py")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 2 if args.quick else 5
    if args.models is None:
        args.models = "vgg16" if args.quick else ",".join(MODELS)
    args.big = not (args.quick or args.no_big)
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = tuple(m for m in args.models.split(",") if m)
    info = machine()
    info["load_before"] = f"{os.getloadavg()[0]:.1f}"
    info["missing"] = ", ".join(t for t in TOOLS if not installed(t))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cases = all_cases(models, zoo_budget_file(Path(tmp)), args.big)
        log(f"{len(cases)} cases, {args.runs} runs each after a warm-up, {sys.executable}")
        results = measure_all(cases, args.runs, log)
    log("in-process throughput")
    info["throughput"] = throughput(PLAIN)
    if not (args.quick or args.no_scaling):
        log("engine scaling (benchmarks/scaling.py)")
        info["scaling"] = scaling()
    info.update(load_after=f"{os.getloadavg()[0]:.1f}", runs=str(args.runs),
                elapsed=f"{(time.perf_counter() - started) / 60:.1f} min",
                date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                args=" ".join(sys.argv[1:] if argv is None else argv))
    text = report(cases, results, info, models)
    args.out.write_text(text)
    print(text)
    log(f"wrote {args.out}")
    return 0 if all(results[c.key].ok for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
