"""The long fuzz run of issue 12: many mutated zoo specs, budget files and random valid
specs, with the properties of tests/test_fuzz.py (whose mutation code it reuses).

    /work/venv/bin/python benchmarks/fuzz_long.py [--specs 5000] [--seed 0] [--minutes 30]

Each mutated spec goes through the loader and every analyzer; one in `--cli-every`
also through a CLI command, one in `--budget-every` comes with a mutated budget file,
one in `--baseline-every` with a type-swapped baseline (issue 24: the gate must refuse it), and
`--valid` random valid specs are checked against torch. Each example runs under a time
alarm (--timeout) and an address-space cap, so a hang or a memory blow-up is reported like
a crash (a spec near the layer limit legitimately takes minutes: raise --timeout to tell).
Prints how many inputs it tried, what they ended as (answer or which CnnstatError), and
every violation, whose file it keeps; exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import collections
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import test_fuzz as fz  # noqa: E402  (tests/ on the path first)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_one(kind: str, check: Callable[[], str], raw: bytes, keep: Path, seconds: int,
            outcomes: collections.Counter, violations: list[str]) -> None:
    """One example: its outcome counted, a violation kept as a file."""
    signal.alarm(seconds)
    try:
        outcomes[f"{kind}: {check()}"] += 1
    except BaseException as e:  # noqa: BLE001 - every failure is a finding here
        if isinstance(e, KeyboardInterrupt):
            raise
        what = f"over {seconds} s" if isinstance(e, Hang) else type(e).__name__
        saved = keep / f"{kind}-{len(violations)}.yaml"
        saved.write_bytes(raw)
        detail = traceback.format_exc(limit=-3) if not isinstance(e, AssertionError) else str(e)
        violations.append(f"{kind}: {what} ({saved})\n    " + detail.strip()[-1500:])
        outcomes[f"{kind}: VIOLATION {what}"] += 1
    finally:
        signal.alarm(0)


def main() -> int:  # noqa: C901  one loop over the kinds of example, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=5000, help="mutated zoo specs to try")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cli-every", type=int, default=5)
    parser.add_argument("--budget-every", type=int, default=4)
    parser.add_argument("--baseline-every", type=int, default=4,
                        help="one in N comes with a type-swapped baseline (issue 24)")
    parser.add_argument("--valid", type=int, default=200, help="random valid specs vs torch")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per example")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="address-space cap")
    parser.add_argument("--minutes", type=float, default=60.0, help="stop after this long")
    args = parser.parse_args()

    cap = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    signal.signal(signal.SIGALRM, _alarm)
    keep = Path(tempfile.mkdtemp(prefix="cnnstat-fuzz-"))
    work = Path(tempfile.mkdtemp(prefix="cnnstat-fuzz-work-"))
    ch = fz.RandomChooser(args.seed)
    outcomes: collections.Counter = collections.Counter()
    violations: list[str] = []
    tried = collections.Counter()
    start = time.perf_counter()
    deadline = start + 60 * args.minutes
    for i in range(args.specs):
        if time.perf_counter() > deadline:
            break
        try:
            name, raw = fz.mutated_spec(ch)
        except RecursionError:  # the mutation harness (yaml.dump), not cnnstat
            tried["mutations the YAML dumper could not write"] += 1
            continue
        tried["mutated specs"] += 1
        run_one("spec", lambda raw=raw: fz.check_spec_bytes(raw, work), raw, keep,
                args.timeout, outcomes, violations)
        if i % args.cli_every == 0:
            tried["CLI runs"] += 1
            run_one("cli", lambda raw=raw: f"exit {fz.check_cli(ch, raw, work)}", raw, keep,
                    args.timeout, outcomes, violations)
        if i % args.budget_every == 0:
            try:
                budget = fz.mutated_budget(ch)
            except RecursionError:
                continue
            tried["mutated budget files"] += 1
            run_one("budget", lambda b=budget: fz.check_budget_bytes(b, work), budget, keep,
                    args.timeout, outcomes, violations)
        if i % args.baseline_every == 0:
            tried["type-swapped baselines"] += 1
            run_one("baseline", lambda: fz.check_baseline(ch, work), b"(see baseline.json)",
                    keep, args.timeout, outcomes, violations)
    for _ in range(args.valid):
        if time.perf_counter() > deadline:
            break
        spec = fz.valid_spec(ch)
        tried["random valid specs (vs torch)"] += 1
        raw = fz.yaml.safe_dump(spec, sort_keys=False).encode()
        run_one("valid", lambda s=spec: fz.check_valid_against_torch(s, work) or "ok", raw,
                keep, args.timeout, outcomes, violations)
    elapsed = time.perf_counter() - start

    print(f"fuzz_long: seed {args.seed}, {elapsed:.0f} s")
    for what, count in tried.items():
        print(f"  tried {count:6d} {what}")
    print("outcomes (answer, or the CnnstatError class a located error was):")
    for outcome, count in sorted(outcomes.items()):
        print(f"  {count:6d}  {outcome}")
    print(f"violations: {len(violations)}" + (f" (files kept in {keep})" if violations else ""))
    for line in violations:
        print("  " + line)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
