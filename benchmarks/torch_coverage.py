"""How much of real networks the torch frontend understands layer by layer.

Runs every torchvision classification and segmentation model and the timm sample of
tests/test_torch_coverage.py through the frontend (parameters on meta, meta-tensor trace)
and prints, per model, its opaque nodes, then the opaque op labels by how many models keep
them, and the share of models with no opaque node:

    .venv-oracle/bin/python benchmarks/torch_coverage.py [--only torchvision|timm] [NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from torch_models import TIMM_SAMPLE, timm_input, torchvision_models  # noqa: E402

from cnnstat.frontends.torch_fx import trace_module  # noqa: E402
from cnnstat.frontends.torch_ref import construct, load, parse_reference  # noqa: E402


def _torchvision(name: str):
    loaded = load(parse_reference(f"torchvision:{name}"), {})
    return loaded.module, loaded.default_input or (3, 224, 224)


def _timm(name: str):
    import timm

    module, _ = construct(lambda: timm.create_model(name, pretrained=False), {}, name)
    return module, timm_input(module)


def measure(source: str, name: str) -> tuple[list[str] | None, str]:
    """The opaque nodes' op labels of one model, or None and why it failed."""
    try:
        module, shape = (_torchvision if source == "torchvision" else _timm)(name)
        traced = trace_module(module, shape, name=name, source=f"{source}:{name}")
    except Exception as e:  # noqa: BLE001 - a model that fails is a finding, not a crash
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    labels = [n.layer.op for n in traced.graph.nodes if n.layer.kind == "opaque"]
    return labels, traced.method


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("torchvision", "timm"))
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    todo = [("torchvision", n) for n in torchvision_models()] + \
        [("timm", n) for n in TIMM_SAMPLE]
    if args.only:
        todo = [t for t in todo if t[0] == args.only]
    if args.names:
        todo = [t for t in todo if t[1] in args.names]
    by_op: dict[str, Counter[str]] = {}
    clean: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for source, name in todo:
        start = time.perf_counter()
        labels, how = measure(source, name)
        took = time.perf_counter() - start
        total[source] += 1
        if labels is None:
            print(f"FAIL {source}:{name} ({took:.1f} s): {how}", flush=True)
            continue
        clean[source] += not labels
        for label in set(labels):
            by_op.setdefault(label, Counter())[name] += labels.count(label)
        summary = ", ".join(f"{k} x{v}" for k, v in Counter(labels).most_common(6))
        print(f"{'ok  ' if not labels else 'OPQ '} {source}:{name} ({took:.1f} s) "
              f"{len(labels)} opaque {summary}", flush=True)
    print("\nopaque op labels by number of models:")
    for label, models in sorted(by_op.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(models):3d} models, {sum(models.values()):5d} nodes  {label}  "
              f"({', '.join(sorted(models)[:5])})")
    for source in total:
        print(f"{source}: {clean[source]} of {total[source]} models with no opaque node "
              f"({100 * clean[source] / total[source]:.1f} %)")


if __name__ == "__main__":
    main()
