"""Module references (docs/architecture.md, "Naming a model") and building the module
they name, without weights.

    pkg.module:attr          imported like `python -c "import pkg.module"` (the current
                             directory is on the path)
    path/to/file.py:attr     the file is executed as a module; its directory goes on the path
    torchvision:NAME         torchvision.models.get_model(NAME, weights=None): never downloads

`attr` (dotted for nested attributes) is an `nn.Module` instance, an `nn.Module` class or
a factory returning one; classes and factories are called with the `--kwargs` JSON object.

LOADING A REFERENCE RUNS ITS CODE: importing the module executes it, and so does calling
the class or factory. Only analyze code you would run. No checkpoint is ever loaded.

Building: parameters are created on the meta device by intercepting parameter
registration, so a 600 M-parameter model costs no weight memory, while buffers and other
tensors the constructor computes stay real (docs/architecture.md: building regnet_y_128gf inside
`torch.device("meta")` fails because its constructor computes widths with tensors). If the
constructor cannot work with meta parameters, `torch.device("meta")` is tried, then a
plain build with real weights, each with a note.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnstat.errors import AnalysisError, Location, UnknownModelError, UsageError, did_you_mean

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
FORMS = "pkg.module:attr, path/to/file.py:attr or torchvision:NAME"


@dataclass(frozen=True, slots=True)
class ModuleRef:
    text: str
    kind: str  # "torchvision" | "file" | "module"
    target: str  # the torchvision model name, the file path, or the dotted module name
    attr: str


@dataclass(frozen=True, slots=True)
class Loaded:
    module: nn.Module
    name: str
    notes: tuple[str, ...]
    default_input: tuple[int, ...] | None = None
    follows: str | None = None


def parse_reference(text: str) -> ModuleRef:
    target, sep, attr = text.rpartition(":")
    if not sep or not target or not attr:
        raise UsageError(f"'{text}' is not a module reference; expected {FORMS}")
    if target == "torchvision":
        if not _DOTTED.match(attr):
            raise UsageError(f"'{attr}' is not a torchvision model name")
        return ModuleRef(text, "torchvision", attr, attr)
    if not _DOTTED.match(attr):
        raise UsageError(f"'{attr}' in '{text}' is not an attribute name; expected {FORMS}")
    if target.endswith(".py"):
        return ModuleRef(text, "file", target, attr)
    if not _DOTTED.match(target):
        raise UsageError(f"'{target}' in '{text}' is neither a .py file nor a dotted module "
                         f"name; expected {FORMS}")
    return ModuleRef(text, "module", target, attr)


def parse_kwargs(value: str | dict | None) -> dict[str, Any]:
    """The --kwargs JSON object for a class or factory."""
    if value is None or isinstance(value, dict):
        return dict(value or {})
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise UsageError(f"--kwargs is not valid JSON ({e.msg} at column {e.colno}): "
                         f"{value!r}") from None
    if not isinstance(parsed, dict):
        raise UsageError(f"--kwargs must be a JSON object like '{{\"num_classes\": 10}}', "
                         f"got {value!r}")
    return parsed


def load(ref: ModuleRef, kwargs: dict[str, Any]) -> Loaded:
    """Import (running the user's code) and build the module the reference names."""
    if ref.kind == "torchvision":
        return _load_torchvision(ref, kwargs)
    namespace = _import_file(ref) if ref.kind == "file" else _import_module(ref)
    obj = _attribute(namespace, ref)
    name = ref.attr.rsplit(".", 1)[-1]
    if isinstance(obj, nn.Module):
        if kwargs:
            raise UsageError(f"'{ref.text}' is already a module instance; --kwargs applies "
                             "to a class or a factory")
        return Loaded(obj, name, ("a module instance: built by its own code, with real "
                                  "weights",))
    if not callable(obj):
        raise UsageError(f"'{ref.text}' is a {type(obj).__name__}, not an nn.Module, a class "
                         "or a factory")
    module, note = construct(obj, kwargs, ref.text)
    return Loaded(module, name, (note,))


def construct(factory: Callable[..., Any], kwargs: dict[str, Any],
              what: str) -> tuple[nn.Module, str]:
    """Call `factory(**kwargs)`: parameters on meta if the constructor allows it."""
    attempts = (
        (parameters_on_meta, "built with parameters on the meta device (no weight memory)"),
        (lambda: torch.device("meta"), "built inside torch.device('meta') (the constructor "
                                       "failed with meta parameters only)"),
        (contextlib.nullcontext, "built with real weights (the constructor failed on the "
                                 "meta device)"),
    )
    _check_kwargs(factory, kwargs, what)
    errors = []
    for context, note in attempts:
        try:
            with context():
                module = factory(**kwargs)
        except Exception as e:  # noqa: BLE001 - the user's constructor may raise anything
            errors.append(e)
            continue
        if not isinstance(module, nn.Module):
            raise AnalysisError(f"'{what}' returned a {type(module).__name__}, not an "
                                "nn.Module", Location(what))
        return module, note
    raise AnalysisError(f"building '{what}' failed: {type(errors[-1]).__name__}: "
                        f"{errors[-1]}", Location(what)) from errors[-1]


def _check_kwargs(factory: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return  # no signature to check against (a builtin): let the call say
    try:
        signature.bind(**kwargs)
    except TypeError as e:
        raise UsageError(f"'{what}' does not take --kwargs {json.dumps(kwargs)}: {e}") from None


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Every parameter a constructor registers lands on meta; buffers and any other
    tensor stay real. (Most constructors create weights with torch.empty, which touches no
    memory, and initialise them after registering them, which on meta does nothing.)"""
    original = nn.Module.register_parameter

    def register(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        lazy = isinstance(param, nn.parameter.UninitializedParameter)
        if isinstance(param, nn.Parameter) and not lazy and param.device.type != "meta":
            param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
        original(self, name, param)

    nn.Module.register_parameter = register  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def _import_module(ref: ModuleRef) -> Any:
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(ref.target)
    except ModuleNotFoundError as e:
        if e.name and ref.target.startswith(e.name):
            raise UnknownModelError(f"no module named '{ref.target}' (from '{ref.text}')") \
                from None
        raise _import_failed(ref, e) from e
    except BaseException as e:  # noqa: BLE001 - importing runs the user's code
        raise _import_failed(ref, e) from e


def _import_file(ref: ModuleRef) -> Any:
    path = Path(ref.target)
    if not path.is_file():
        raise UnknownModelError(f"no such file '{ref.target}' (from '{ref.text}')")
    name = "cnnstat_user_" + re.sub(r"\W", "_", str(path.resolve().with_suffix("")))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import '{ref.target}' as a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the file can import its neighbours
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:  # noqa: BLE001 - executing the file runs the user's code
        sys.modules.pop(name, None)
        raise _import_failed(ref, e) from e
    return module


def _import_failed(ref: ModuleRef, e: BaseException) -> AnalysisError:
    return AnalysisError(f"importing '{ref.target}' failed: {type(e).__name__}: {e}",
                         Location(ref.text))


def _attribute(namespace: Any, ref: ModuleRef) -> Any:
    obj = namespace
    for part in ref.attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise UnknownModelError(f"'{ref.target}' has no attribute '{ref.attr}'"
                                    f"{did_you_mean(part, names)}")
        obj = getattr(obj, part)
    return obj


def _load_torchvision(ref: ModuleRef, kwargs: dict[str, Any]) -> Loaded:
    try:
        import torchvision.models as tvm
    except ImportError:
        raise AnalysisError(f"'{ref.text}' needs torchvision, which is not installed",
                            Location(ref.text)) from None
    names = tvm.list_models()
    if ref.target not in names:
        raise UnknownModelError(f"torchvision has no model '{ref.target}'"
                                f"{did_you_mean(ref.target, names)}")
    if "weights" in kwargs or "weights_backbone" in kwargs:
        raise UsageError("cnnstat never loads weights: drop 'weights' from --kwargs")
    args = {"weights": None, **kwargs}
    builder = tvm.get_model_builder(ref.target)
    if "weights_backbone" in inspect.signature(builder).parameters:
        args["weights_backbone"] = None  # its default would download a backbone
    module, note = construct(builder, args, ref.text)
    return Loaded(module, ref.target, (f"torchvision.models.get_model('{ref.target}', "
                                       f"weights=None): {note}",),
                  default_input=_torchvision_input(tvm, ref.target, module),
                  follows="torchvision")


def _torchvision_input(tvm: Any, name: str, module: nn.Module) -> tuple[int, ...] | None:
    """The input the built module takes: its own `image_size` where it fixes one (a ViT
    built without weights takes 224, though its DEFAULT weights were trained at 518),
    else the crop its published weights were evaluated at (299 for Inception v3)."""
    own = getattr(module, "image_size", None)
    if isinstance(own, int) and not isinstance(own, bool):
        return (first_in_channels(module) or 3, own, own)
    try:
        weights = tvm.get_model_weights(name).DEFAULT
        keywords = getattr(weights.transforms, "keywords", {})
    except (ValueError, AttributeError, KeyError):
        return None
    size = keywords.get("crop_size") or keywords.get("resize_size")
    if isinstance(size, list | tuple):
        size = size[0]
    if not isinstance(size, int):
        return None
    if getattr(getattr(weights.transforms, "func", None), "__name__", "") == "VideoClassification":
        frames = max(VIDEO_FRAMES, weights.meta.get("min_temporal_size") or 1)
        return (3, frames, size, size)
    return (3, size, size)


# Video weights give a crop, not a clip length: torchvision's video references sample clips
# of 16 frames (the length its published `_ops` of r3d_18 etc. are measured at).
VIDEO_FRAMES = 16


def first_in_channels(module: nn.Module) -> int | None:
    """in_channels of the first Conv2d registered: a better default than 3 for a
    grey-scale model."""
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            return sub.in_channels
    return None


def default_input(module: nn.Module) -> tuple[int, ...]:
    """The input of the first convolution's rank: C x 224 x 224 (Conv2d, or no conv),
    C x 224 (Conv1d), C x 16 x 112 x 112 (Conv3d: a video clip, as r3d_18 takes), with its
    in_channels."""
    for sub in module.modules():
        if isinstance(sub, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            spatial = {nn.Conv1d: (224,), nn.Conv3d: (VIDEO_FRAMES, 112, 112)}
            return (sub.in_channels, *spatial.get(type(sub), (224, 224)))
    return (3, 224, 224)
