"""Every layer kind is wired everywhere a kind must be (docs/architecture.md, "Adding a
layer kind"): each analyzer registry, the spec schema, the builder, the torch converters,
the writer and the kind table of docs/spec.md. The set of kinds is the one the classes
declare (`ALL_KINDS` is derived from them), so forgetting a place fails here, by name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from pathlib import Path

import pytest

from cnnstat.analyzers.min_input import FORMS
from cnnstat.analyzers.ops import OPS
from cnnstat.analyzers.params import PARAMS
from cnnstat.analyzers.rf import RF
from cnnstat.analyzers.shapes import SHAPES
from cnnstat.ir import layers as L
from cnnstat.spec import schema as S
from cnnstat.writer.entries import layer_entry

DOCS = Path(__file__).resolve().parent.parent / "docs"

# Kinds a place leaves out on purpose, with the reason; anything else missing is a bug.
NOT_IN_SPEC = {L.Input: "the graph's input, not an entry", L.Opaque: "torch frontend only"}
NO_SHAPE_RULE = {L.Input: "its shape is chosen at analysis time", L.Opaque: "traced shapes"}
# Without a closed form the smallest input is found by search (analyzers/min_input.py).
NO_MIN_INPUT_RULE = {
    L.Input: "the start of the search", L.Opaque: "valid at one input only",
    L.ConvTranspose2d: "searched", L.Crop: "searched", L.Reshape: "searched",
    **{k: "the minimum input is a square image; not on 1-D / 3-D inputs"
       for k in (*L.ND_WINDOWS, *L.ND_NORMS)},
    **{k: "searched (attention keeps its query's sizes)" for k in L.ATTENTION},
}
NO_RF_RULE = {L.Input: "the start of every field"}
NO_BUILDER = {L.Input: "the module's argument"}

_SAMPLE_VALUES = {
    S.INT: 2, S.NONNEG: 0, S.SIGNED: 1, S.PAIR: (1, 1), S.NONNEG_PAIR: (0, 0),
    S.PADDING: (0, 0), S.FLOAT: 1.0, S.FPAIR: (2.0, 2.0), S.BOOL: True, S.SHAPE: (1,),
    S.STR: "none", S.SIGNED_LIST: (0, 2, 3, 1),
    S.SIZES1: (1,), S.NONNEG_SIZES1: (0,), S.PADDING1: (0,),
    S.SIZES3: (1, 1, 1), S.NONNEG_SIZES3: (0, 0, 0), S.PADDING3: (0, 0, 0),
}


# Kinds whose fields the sample values above would make invalid (a reduction of dim 0).
_SAMPLE_OVERRIDES = {L.Mean: {"dims": (2, 3)}, L.Sum: {"dims": (2, 3)},
                     L.Pad: {"padding": (1, 1)}, L.Unbind: {"dim": 1}}


def _sample(spec: S.KindSpec) -> L.Layer:
    """The smallest valid layer of a kind: its main argument and its fields without a
    default at small values."""
    needed = {f.name for f in dataclasses.fields(spec.layer)
              if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    needed.update([spec.primary] if spec.primary else [])
    values = {f: spec.choices[f][0] if f in spec.choices else _SAMPLE_VALUES[spec.fields[f]]
              for f in needed}
    return spec.layer(**{**values, **_SAMPLE_OVERRIDES.get(spec.layer, {})})


def _missing(registry, exempt) -> list[str]:
    return sorted(k.kind for k in L.ALL_KINDS if k not in exempt and registry.get(k) is None)


def _subclasses(cls: type) -> set[type]:
    return {sub for child in cls.__subclasses__() for sub in (child, *_subclasses(child))}


def test_all_kinds_is_every_declared_kind() -> None:
    """Every class that sets a `kind`, wherever it is declared (a module `ir/layers.py`
    does not import would register too late for ALL_KINDS), is in ALL_KINDS, and so is
    seen by every test here."""
    declared = {cls.kind for cls in _subclasses(L.Layer) if "kind" in cls.__dict__}
    assert sorted(declared - {k.kind for k in L.ALL_KINDS}) == [], \
        "declared in a module ir/layers.py does not import"
    assert len({k.kind for k in L.ALL_KINDS}) == len(L.ALL_KINDS)


@pytest.mark.parametrize(("registry", "exempt"), [
    (SHAPES, NO_SHAPE_RULE), (PARAMS, {}), (OPS, {}), (RF, NO_RF_RULE),
    (FORMS, NO_MIN_INPUT_RULE),
], ids=lambda r: getattr(r, "analyzer", ""))
def test_every_kind_has_a_handler_in_every_analyzer(registry, exempt) -> None:
    assert _missing(registry, exempt) == [], f"{registry.analyzer}: no handler for these kinds"


def test_every_kind_is_in_the_spec_schema() -> None:
    missing = sorted(k.kind for k in L.ALL_KINDS if k not in NOT_IN_SPEC and k.kind not in S.KINDS)
    assert missing == [], "spec/schema.py has no KindSpec for these kinds"


def test_schema_keys_are_the_layer_fields() -> None:
    wrong = {name: sorted(set(spec.fields) - {f.name for f in dataclasses.fields(spec.layer)})
             for name, spec in S.KINDS.items()}
    assert {n: w for n, w in wrong.items() if w} == {}


def test_every_kind_in_the_schema_is_written_back_by_the_writer() -> None:
    for name, spec in S.KINDS.items():
        entry = layer_entry(_sample(spec), name)
        word = next(iter(entry))
        found = S.lookup_kind(word)
        assert found is not None and found[0].name == name, (name, entry)


def test_every_spec_kind_has_a_row_in_docs_spec_md() -> None:
    text = (DOCS / "spec.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    documented = {w for row in rows for w in re.findall(r"`([a-z0-9_]+)`", row)}
    assert sorted(set(S.KINDS) - documented) == [], "docs/spec.md has no row for these kinds"


def test_every_kind_has_a_builder() -> None:
    from cnnstat.builder.torch_module import BUILDERS  # torch: only here

    assert _missing(BUILDERS, NO_BUILDER) == [], (
        "no builder for these: declare `torch_module` on the class (ir/torch_side.py) or "
        "register one in cnnstat/builder/")


def test_every_torch_module_the_builder_makes_has_a_converter() -> None:
    """The torch module a kind is built as converts back to that kind (else a real
    network using it turns opaque)."""
    from cnnstat.builder.torch_module import BUILDERS
    from cnnstat.frontends.converters import MODULES

    wrong = []
    for name, spec in S.KINDS.items():
        layer = _sample(spec)
        try:
            module = BUILDERS.get(spec.layer)(layer, ((1, 4, 8, 8), (1, 4, 8, 8)))
        except (ValueError, NotImplementedError):
            continue
        if type(module).__module__.startswith("torch.nn") and type(module) not in MODULES:
            wrong.append(f"{name}: nn.{type(module).__name__}")
    assert wrong == [], "no module converter for these (frontends/, or `torch_module`)"


# F.<kind> calls left to torch on purpose (they stay opaque, counted by FlopCounterMode).
FUNCTION_LEFT_TO_TORCH = {
    "conv2d": "weights passed as tensors", "conv_transpose2d": "weights passed as tensors",
    "linear": "weights passed as tensors", "layer_norm": "weights passed as tensors",
    "conv1d": "weights passed as tensors", "conv3d": "weights passed as tensors",
    "local_response_norm": "rare as a call",
    "upsample": "canonicalised to interpolate",
}


def test_every_kind_named_like_a_torch_module_or_function_has_a_converter() -> None:
    """Kinds are named like torch's modules (L.ChannelShuffle, nn.ChannelShuffle) and
    functions (F.channel_shuffle): both must convert to the kind."""
    import torch.nn.functional as F
    from torch import nn

    from cnnstat.frontends.converters import FUNCTIONS, MODULES

    modules = [k.__name__ for k in L.ALL_KINDS
               if hasattr(nn, k.__name__) and getattr(nn, k.__name__) not in MODULES]
    functions = [k.kind for k in L.ALL_KINDS if hasattr(F, k.kind) and k.kind not in FUNCTIONS
                 and k.kind not in FUNCTION_LEFT_TO_TORCH]
    assert modules == [], ("no module converter for nn.<these>: declare `torch_module` on "
                           "the class (ir/torch_side.py) or register one in frontends/")
    assert functions == [], ("no function converter for F.<these>: declare the arguments "
                             "(`TorchModule(function=...)`) or register one in frontends/")


def _declared_sample(kind: type[L.Layer]):
    """A kind's sample layer and an input of its rank, on the meta device."""
    import torch

    spatial = [8] * getattr(kind, "rank", 2)  # the 1-D / 3-D kinds say their rank
    return _sample(S.KINDS[kind.kind]), torch.empty(1, 4, *spatial, device="meta")


@pytest.mark.parametrize("kind", L.kinds_built_as_torch_modules(), ids=lambda k: k.kind)
def test_a_kind_declaring_its_torch_module_is_built_and_converted_back_by_that_alone(kind):
    """`torch_module` (ir/torch_side.py) is the only place such a kind names torch: the
    builder makes exactly that module, and converting the module back gives the very layer
    it was built from (so the fields are the module's arguments and attributes)."""
    import torch
    from torch import nn

    from cnnstat.builder.torch_module import BUILDERS
    from cnnstat.frontends.converters import MODULES, Call

    layer, x = _declared_sample(kind)
    with torch.device("meta"):
        module = BUILDERS.get(kind)(layer, (tuple(x.shape),)).eval()
    assert type(module) is getattr(nn, kind.torch_module.name), kind.kind
    out = module(x)
    assert tuple(out.shape) == SHAPES.get(kind)(layer, (tuple(x.shape),)), kind.kind
    back = MODULES[type(module)](module, Call(op="", args=(x,), out=out))
    assert back == layer, f"{kind.kind}: nn.{kind.torch_module.name} converts back to {back}"


def _function_args(kind: type[L.Layer], layer: L.Layer) -> dict:
    fields = {f.name for f in dataclasses.fields(kind)}
    return {name: getattr(layer, name) if name in fields else kind.torch_module.requires[name]
            for name in kind.torch_module.function or ()}


@pytest.mark.parametrize("kind", [k for k in L.kinds_built_as_torch_modules()
                                  if k.torch_module.function is not None
                                  or not dataclasses.fields(k)], ids=lambda k: k.kind)
def test_a_kind_declaring_its_torch_function_converts_it_back(kind):
    """`function` lists the arguments of the torch function named like the kind (none for
    a kind without fields, F.relu): called with the layer's values, by keyword and by
    position, it converts back to the layer."""
    import torch
    import torch.nn.functional as F

    from cnnstat.frontends.converters import FUNCTIONS, Call

    layer, x = _declared_sample(kind)
    function = getattr(F, kind.kind, None) or getattr(torch, kind.kind, None)
    if function is None:  # nn.Identity: torch has no function of that name
        assert kind.torch_module.function is None and kind.kind not in FUNCTIONS
        return
    kwargs = _function_args(kind, layer)
    calls = [Call(op=kind.kind, args=(x,), kwargs=kwargs, out=function(x, **kwargs))]
    with contextlib.suppress(TypeError):  # some of torch's functions take keywords only
        calls.append(Call(op=kind.kind, args=(x, *kwargs.values()),
                          out=function(x, *kwargs.values())))
    for call in calls:
        assert tuple(call.out.shape) == SHAPES.get(kind)(layer, (tuple(x.shape),)), kind.kind
        back = FUNCTIONS[kind.kind](call)
        assert back == layer, f"{kind.kind}: F.{kind.kind} converts back to {back}"
