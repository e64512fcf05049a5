"""Frontends beyond the YAML spec loader: live PyTorch modules.

Nothing here imports torch until a module reference is actually analyzed, so the
YAML/zoo path stays torch-free. `resolve_reference` serves `cnnstat.models.resolve`;
`graph_from_module` is the Python entry point for a module already in hand:

    >>> from cnnstat.frontends import graph_from_module
    >>> traced = graph_from_module(my_module, (3, 224, 224))
    >>> cnnstat.analyze(traced.graph)
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnstat.frontends.torch_fx import Traced
    from cnnstat.models import Resolved


def resolve_reference(text: str, *, input: Any = None, kwargs: Any = None) -> Resolved:
    """`pkg.mod:attr`, `file.py:attr` or `torchvision:NAME` -> a traced graph.
    RUNS THE REFERENCED CODE (import, then the class or factory)."""
    from cnnstat.frontends import torch_fx, torch_ref
    from cnnstat.models import Resolved

    ref = torch_ref.parse_reference(text)
    loaded = torch_ref.load(ref, torch_ref.parse_kwargs(kwargs))
    shape = _input_shape(loaded, input)
    traced = torch_fx.trace_module(
        loaded.module, shape, name=loaded.name, source=text,
        meta={"title": f"torch module {type(loaded.module).__name__}", "follows": loaded.follows,
              "notes": "; ".join(loaded.notes)})
    return Resolved(traced.graph, diagnostics=(*loaded.notes, *traced.diagnostics),
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
    from cnnstat.api import input_shape
    from cnnstat.frontends.torch_ref import first_in_channels

    default = loaded.default_input or (first_in_channels(loaded.module) or 3, 224, 224)
    if value is None:
        return default
    stub = SimpleNamespace(meta=SimpleNamespace(input=default, name=loaded.name))
    return input_shape(value, stub)  # type: ignore[arg-type]
