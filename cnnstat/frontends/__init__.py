"""Frontends beyond the YAML spec loader: live PyTorch modules.

Nothing here imports torch until a module reference is actually analyzed, so the
YAML/zoo path stays torch-free. `resolve_reference` serves the MODEL resolver
(`cnnstat.resolver`, above every frontend: nothing here imports it back);
`graph_from_module` is the Python entry point for a module already in hand:

    >>> from cnnstat.frontends import graph_from_module
    >>> traced = graph_from_module(my_module, (3, 224, 224))
    >>> cnnstat.analyze(traced.graph)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnstat.errors import UsageError
from cnnstat.nogc import without_gc

if TYPE_CHECKING:
    from cnnstat.frontends.torch_fx import Traced
    from cnnstat.ir import Graph


@dataclass(frozen=True, slots=True)
class FrontendGraph:
    """What a frontend made of a model file or reference: the graph, what it did to get
    it (method, opaque ops: for stderr), and the nn.Module it built (for --crosscheck)."""

    graph: Graph
    diagnostics: tuple[str, ...] = ()
    module: object | None = None


# Importing torch (and a model's package) and tracing allocate hundreds of thousands of
# objects, which the cyclic collector walks again at every collection: with it running,
# that walking was a third of the torch path's work after `import torch` (resnet50
# 0.32 -> 0.23 s CPU, densenet121 0.56 -> 0.40 s paused). A trace leaves little cyclic
# garbage (8k-18k objects on those two), collected as usual once the collector resumes.
@without_gc
def resolve_reference(text: str, *, input: Any = None, kwargs: Any = None,
                      regions: int | None = None) -> FrontendGraph:
    """`pkg.mod:attr`, `file.py:attr` or `torchvision:NAME` -> a traced graph.
    RUNS THE REFERENCED CODE (import, then the class or factory). `input` is one input
    (CxHxW text or a tuple) or a list of them, one per tensor the forward takes; `regions`
    sets a detector's proposal count (docs/detection.md)."""
    from cnnstat.frontends import detection, torch_fx, torch_ref

    ref = torch_ref.parse_reference(text)
    loaded = torch_ref.load(ref, torch_ref.parse_kwargs(kwargs))
    module, stages, notes = loaded.module, (), list(loaded.notes)
    if detection.kind_of(module):
        loaded = dataclasses.replace(loaded, default_input=detection.default_image(module))
        shapes = _input_shapes(loaded, input, count=1)
        plan = detection.plan(module, shapes[0], regions, source=text)
        module, shapes, stages = plan.module, [plan.input], plan.stages
        notes += plan.notes
    elif regions is not None:
        raise UsageError(f"'{text}' is not a detector with a per-region part for --regions "
                         "/ --proposals (docs/detection.md)")
    else:
        shapes = _input_shapes(loaded, input, count=_tensor_arguments(module))
        notes += _inputs_note(module, shapes, input)
    traced = torch_fx.trace_module(
        module, shapes[0], name=loaded.name, source=text, more_inputs=tuple(shapes[1:]),
        meta={"title": f"torch module {type(loaded.module).__name__}", "follows": loaded.follows,
              "notes": "; ".join(notes), "stages": stages})
    return FrontendGraph(traced.graph, diagnostics=(*notes, *traced.diagnostics),
                         module=module)  # a detector: the network traced, for --crosscheck


@without_gc
def graph_from_module(module: Any, input: Any = (3, 224, 224), *, name: str | None = None,
                      source: str | None = None) -> Traced:
    """Trace an `nn.Module` at input `(1, *input)`; the module itself is left untouched
    (its parameters are swapped for meta stand-ins while it runs)."""
    from cnnstat.frontends import torch_fx

    label = name or type(module).__name__
    return torch_fx.trace_module(module, tuple(input), name=label, source=source or label)


def _input_shapes(loaded: Any, value: Any, count: int) -> list[tuple[int, ...]]:
    """One shape per tensor the forward takes: the requested inputs (one given for a
    forward of several is used for each), else torchvision's evaluation crop (a 16-frame
    clip for video), else 224x224 with the channels of the first conv (224 long for a
    Conv1d, 16x112x112 for a Conv3d)."""
    from cnnstat.frontends.torch_ref import default_input
    from cnnstat.inputs import input_dims

    default = loaded.default_input or default_input(loaded.module)
    values = [value] if value is None or isinstance(value, str | int) or \
        (isinstance(value, tuple) and all(isinstance(v, int) for v in value)) else list(value)
    if len(values) > max(count, 1):
        raise UsageError(f"'{loaded.name}' takes {count} tensor input(s); --input was given "
                         f"{len(values)} times")
    shapes = [default if v is None else input_dims(v, default, loaded.name) for v in values]
    return shapes + [shapes[-1]] * (count - len(shapes))


def _tensor_arguments(module: Any) -> int:
    """How many arguments the forward requires (RAFT: image1, image2); at least 1."""
    import inspect

    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return 1
    required = [p for p in parameters if p.default is p.empty and
                p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return max(len(required), 1)


def _inputs_note(module: Any, shapes: list[tuple[int, ...]], value: Any) -> list[str]:
    from cnnstat.frontends.torch_fx import input_names

    given = "given" if value is not None else "the default"
    names = input_names(module, len(shapes))
    return [f"traced at {given} input(s): " + ", ".join(
        f"{n} {'x'.join(map(str, s))}" for n, s in zip(names, shapes, strict=True))]
