"""Resolve a MODEL argument (docs/architecture.md, "Naming a model") to a Graph.

Order: an existing .yaml/.yml path; a zoo name; a family alias; a module reference
(`pkg.mod:attr`, `file.py:attr`, `torchvision:NAME`); an .onnx file is read by
frontends/onnx_graph.py at `input`. Unknown names fail with close
matches. Zoo specs ship inside the package (`cnnstat.zoo_specs`), so this works from any
directory after a plain `pip install`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from cnnstat.errors import SpecError, UnknownModelError, UsageError, did_you_mean
from cnnstat.ir import Graph
from cnnstat.ir.record import Record, record
from cnnstat.spec import load_spec

# Family aliases: the spec a family name picks. Only aliases whose spec exists are offered.
FAMILY_ALIASES = {
    "lenet": "lenet5",
    "alexnet": "alexnet",
    "vgg": "vgg16",
    "inception": "googlenet",
    "googlenet": "googlenet",
    "resnet": "resnet50",
    "resnext": "resnext50_32x4d",
    "densenet": "densenet121",
    "mobilenet": "mobilenet_v2",
    "squeezenet": "squeezenet1_0",
    "fcn": "fcn32s",
    "yolo": "yolov1",
    "efficientnet": "efficientnet_b0",
    "efficientnet_v2": "efficientnet_v2_s",
    "mnasnet": "mnasnet1_0",
    "wide_resnet": "wide_resnet50_2",
    "mobilenet_v3": "mobilenet_v3_large",
    "regnet": "regnet_y_400mf",
    "convnext": "convnext_tiny",
    "shufflenet": "shufflenet_v2_x1_0",
}


@record(kw_only=False)
class Resolved(Record):
    graph: Graph
    note: str | None = None  # what an alias picked, for stderr
    diagnostics: tuple[str, ...] = ()  # what the torch frontend did (method, opaque ops)
    module: object | None = None  # the nn.Module a module reference built (for --crosscheck)


@lru_cache(maxsize=1)
def zoo_dir() -> Path:
    """The installed zoo's folder. The package's own import spec says where it is (also in
    an editable install); importlib.resources would say the same but imports zipfile,
    tempfile and random (~15 ms of every start)."""
    return Path(find_spec("cnnstat.zoo_specs").origin).parent  # type: ignore[union-attr, arg-type]


@lru_cache(maxsize=1)
def zoo_names() -> tuple[str, ...]:
    # listdir, not glob: glob compiles its pattern into a regex, a millisecond of each start
    return tuple(sorted(n[:-5] for n in os.listdir(zoo_dir()) if n.endswith(".yaml")))


def aliases() -> dict[str, str]:
    names = set(zoo_names())
    return {a: t for a, t in FAMILY_ALIASES.items() if t in names and a not in names}


@lru_cache(maxsize=256)
def load_zoo(name: str) -> Graph:
    return load_spec(zoo_dir() / f"{name}.yaml", shown_as=f"specs/{name}.yaml")


def resolve(model: str, *, input: object = None, kwargs: str | dict | None = None) -> Resolved:
    """`input` (CxHxW text or a tuple) and `kwargs` (JSON text or a dict) only matter for
    module references, which are traced at that input and built with those arguments."""
    if not model or not model.strip():
        raise UnknownModelError("MODEL is empty; give a spec path or a zoo name (cnnstat zoo)")
    path = Path(model)
    if path.suffix.lower() == ".onnx":  # imports onnx, never torch (docs/onnx.md)
        from cnnstat.frontends.onnx_graph import load_onnx

        return load_onnx(model, input=input)
    try:
        exists = path.exists()
    except OSError as e:  # a name longer than the OS allows
        raise UsageError(f"MODEL '{model[:60]}...' ({len(model)} characters): "
                         f"{e.strerror or e}") from None
    if path.suffix in (".yaml", ".yml") or exists:
        if path.is_dir():
            raise UsageError(f"'{model}' is a directory, not a spec file")
        if not exists:
            raise UnknownModelError(f"no such spec file '{model}'")
        if path.suffix not in (".yaml", ".yml"):
            raise UsageError(f"'{model}' is not a .yaml/.yml spec")
        return Resolved(load_spec(path, shown_as=model))
    if ":" in model:  # no zoo name or alias has one
        # Imports torch, then RUNS the referenced code (docs/torch.md).
        from cnnstat.frontends import resolve_reference

        return resolve_reference(model, input=input, kwargs=kwargs)
    if model in zoo_names():
        return Resolved(load_zoo(model))
    alias = aliases().get(model)
    if alias is not None:
        return Resolved(load_zoo(alias), note=f"'{model}' -> zoo spec '{alias}'")
    choices = [*zoo_names(), *aliases()]
    raise UnknownModelError(
        f"unknown model '{model}'{did_you_mean(model, choices)}; "
        "`cnnstat zoo` lists the built-in specs"
    )


def safe_resolve(model: str) -> Resolved | SpecError:
    """For callers that report per-model failures without stopping (compare)."""
    try:
        return resolve(model)
    except SpecError as e:
        return e
