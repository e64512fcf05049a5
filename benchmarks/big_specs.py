"""Issue 23's cases and targets for benchmarks/run.py: big specs as whole processes, the
spec path against the import floor, the torch path's work after `import torch`.

- `cnnstat params FILE --json` on a 100,000-layer spec written with `repeat` (scaling.py's
  sequential conv-bn-relu) and on a flat one (the same layers, one entry each: 1.9 MB of
  YAML, no alias, no repeat);
- targets: spec path <= 1.4x the floor `import yaml, rich, typer`; the torch path's work
  after `import torch` (its wall minus the `import torch` floor of the same run) at most
  fvcore's on the plain resnet50 and densenet121; 100k layers < 3 s and < 300 MiB peak
  RSS; the flat 100k-layer spec loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LAYERS = 100_000
STEPS = LAYERS // 3  # conv, bn, relu per step
REPEATED = """name: repeat_100k
input: [16, 32, 32]
layers:
  - {{repeat: {steps}, layers: [{{conv: 16, k: 3, p: 1, bias: false}}, bn, relu]}}
"""


def write_specs(directory: Path) -> dict[str, Path]:
    repeated = directory / "repeat_100k.yaml"
    repeated.write_text(REPEATED.format(steps=STEPS))
    flat = directory / "flat_100k.yaml"
    step = ["  - {conv: 16, k: 3, p: 1, bias: false}", "  - bn", "  - relu"]
    flat.write_text("\n".join(["name: flat_100k", "input: [16, 32, 32]", "layers:",
                               *step * STEPS]) + "\n")
    return {"repeat": repeated, "flat": flat}


def cases(case: type, cli: tuple[str, ...], directory: Path) -> list[Any]:
    specs = write_specs(directory)
    return [case(f"big/{name}", f"`cnnstat params <{name} {3 * STEPS:,} layers> --json`",
                 None, (*cli, "params", str(path), "--json"))  # 40 MB of JSON: not read
            for name, path in specs.items()]


def targets(results: dict, wall: Any, seconds: Any) -> list[tuple[str, bool | None, str]]:
    out = []
    deps = wall(results, "floor/deps")
    for key, text in (("spec-json/vgg16", "`cnnstat params vgg16 --json`"),
                      ("spec/vgg16", "`cnnstat params vgg16` (table)")):
        spec = wall(results, key)
        out.append((f"spec path: {text} <= 1.4x the floor `import yaml, rich, typer`",
                    None if not (spec and deps) else spec / deps <= 1.4,
                    "-" if not (spec and deps) else
                    f"{seconds(spec)} s / {seconds(deps)} s = {spec / deps:.2f}x wall"))
    torch_floor = wall(results, "floor/torch")
    for model in ("resnet50", "densenet121"):
        ours, fv = wall(results, f"torch/{model}"), wall(results, f"fvcore/{model}")
        if not (ours and fv and torch_floor):
            out.append((f"torch path's work after import torch <= fvcore's ({model})", None,
                        "-"))
            continue
        a, b = ours - torch_floor, fv - torch_floor
        out.append((f"torch path's work after `import torch` <= fvcore's ({model}, plain "
                    "torch module)", a <= b,
                    f"cnnstat {seconds(ours)} - {seconds(torch_floor)} = {seconds(a)} s; "
                    f"fvcore {seconds(fv)} - {seconds(torch_floor)} = {seconds(b)} s"))
    big = results.get("big/repeat")
    ok = big is not None and big.ok
    out.append(("100,000 layers (with repeat) < 3 s and < 300 MiB peak RSS",
                None if not ok else big.wall < 3 and big.rss_mib < 300,
                "-" if not ok else f"{seconds(big.wall)} s wall ({seconds(big.cpu)} s CPU), "
                f"{big.rss_mib:.0f} MiB"))
    flat = results.get("big/flat")
    out.append(("a flat 100,000-layer spec (no repeat, no alias) loads",
                None if flat is None else flat.ok,
                "-" if flat is None or not flat.ok else
                f"{seconds(flat.wall)} s wall ({seconds(flat.cpu)} s CPU), "
                f"{flat.rss_mib:.0f} MiB" if flat.ok else str(flat.error)))
    return out
