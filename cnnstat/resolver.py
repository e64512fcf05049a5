"""The MODEL resolver: a MODEL argument (docs/architecture.md, "Naming a model") to a
Graph, in one place above the spec loader and the frontends (neither imports it).

Order: an existing .yaml/.yml path; a zoo name; a family alias; a module reference
(`pkg.mod:attr`, `file.py:attr`, `torchvision:NAME`); an .onnx file is read by
frontends/onnx_graph.py at `input`. Unknown names fail with close matches.
"""

from __future__ import annotations

from pathlib import Path

from cnnstat.errors import SpecError, UnknownModelError, UsageError, did_you_mean
from cnnstat.ir import Graph
from cnnstat.ir.record import Record, record
from cnnstat.spec import load_spec
from cnnstat.spec.zoo import load_zoo, zoo_dir, zoo_names

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
    "deeplab": "deeplabv3_resnet50",
    "deeplabv3": "deeplabv3_resnet50",
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


def aliases() -> dict[str, str]:
    names = set(zoo_names())
    return {a: t for a, t in FAMILY_ALIASES.items() if t in names and a not in names}


def resolve(model: str, *, input: object = None, kwargs: str | dict | None = None,
            regions: int | None = None) -> Resolved:
    """`input` (CxHxW text or a tuple, or a list of them: one per tensor the forward
    takes), `kwargs` (JSON text or a dict) and `regions` (a detector's proposals) only
    matter for module references, which are traced at that input and built with those
    arguments."""
    if not model or not model.strip():
        raise UnknownModelError("MODEL is empty; give a spec path or a zoo name (cnnstat zoo)")
    path = Path(model)
    if path.suffix.lower() == ".onnx":  # imports onnx, never torch (docs/onnx.md)
        from cnnstat.frontends.onnx_graph import load_onnx

        return _from_frontend(load_onnx(model, input=input))
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

        return _from_frontend(resolve_reference(model, input=input, kwargs=kwargs,
                                                  regions=regions))
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


def _from_frontend(made) -> Resolved:
    return Resolved(made.graph, diagnostics=made.diagnostics, module=made.module)


def safe_resolve(model: str) -> Resolved | SpecError:
    """For callers that report per-model failures without stopping (compare)."""
    try:
        return resolve(model)
    except SpecError as e:
        return e


__all__ = ["FAMILY_ALIASES", "Resolved", "aliases", "load_zoo", "resolve", "safe_resolve",
           "zoo_dir", "zoo_names"]
