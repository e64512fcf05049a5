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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


def resolve_reference(text: str, *, input: Any = None, kwargs: Any = None) -> FrontendGraph:
    """`pkg.mod:attr`, `file.py:attr` or `torchvision:NAME` -> a traced graph.
    RUNS THE REFERENCED CODE (import, then the class or factory)."""
    from cnnstat.frontends import torch_fx, torch_ref

    ref = torch_ref.parse_reference(text)
    loaded = torch_ref.load(ref, torch_ref.parse_kwargs(kwargs))
    shape = _input_shape(loaded, input)
    traced = torch_fx.trace_module(
        loaded.module, shape, name=loaded.name, source=text,
        meta={"title": f"torch module {type(loaded.module).__name__}", "follows": loaded.follows,
              "notes": "; ".join(loaded.notes)})
    return FrontendGraph(traced.graph, diagnostics=(*loaded.notes, *traced.diagnostics),
                         module=loaded.module)


def graph_from_module(module: Any, input: Any = (3, 224, 224), *, name: str | None = None,
                      source: str | None = None) -> Traced:
    """Trace an `nn.Module` at input `(1, *input)`; the module itself is left untouched
    (its parameters are swapped for meta stand-ins while it runs)."""
    from cnnstat.frontends import torch_fx

    label = name or type(module).__name__
    return torch_fx.trace_module(module, tuple(input), name=label, source=source or label)


def _input_shape(loaded: Any, value: Any) -> tuple[int, ...]:
    """The requested input, else torchvision's evaluation crop, else 224x224 with the
    channels of the first conv."""
    from cnnstat.frontends.torch_ref import first_in_channels
    from cnnstat.inputs import input_dims

    default = loaded.default_input or (first_in_channels(loaded.module) or 3, 224, 224)
    return input_dims(value, default, loaded.name) or default
