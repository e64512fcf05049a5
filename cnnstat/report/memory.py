"""The memory estimate `summary` prints, under the names and definitions torchinfo users
know (torchinfo's ModelStatistics), so its figures can be compared one to one:

- Input size: the input tensor's bytes at --dtype.
- Forward/backward pass size: 2 x the output bytes of every layer that holds parameters
  (torchinfo's rule: an output kept for the backward pass and its gradient).
- Params size: the parameters' bytes at --dtype (buffers apart: they get no gradient).
- Estimated Total Size: input + forward/backward + params.

Activations (forward) is cnnstat's own: every layer's output, which a forward pass
without autograd must be able to hold at worst.
"""

from __future__ import annotations

from math import prod

from cnnstat.analyzers.results import ModelReport


def memory(report: ModelReport) -> dict[str, int]:
    """Byte counts (exact ints) and the param split; JSON `memory` (docs/json.md)."""
    size = report.dtype_bytes
    t = report.totals
    input_bytes = prod(report.input_shape) * size
    forward_backward = 2 * sum(r.activations * size for r in report.layers
                               if (r.params or 0) > 0 and not r.train_only)
    params_bytes = t.params * size
    return {"trainable_params": t.trainable_params,
            "non_trainable_params": t.params - t.trainable_params,
            "buffers": t.buffers, "input_bytes": input_bytes,
            "activation_bytes_forward": t.activation_bytes,
            "forward_backward_bytes": forward_backward, "params_bytes": params_bytes,
            "buffers_bytes": t.buffers * size,
            "estimated_total_bytes": input_bytes + forward_backward + params_bytes}


def rows(report: ModelReport) -> list[tuple[str, str, str]]:
    """(label, exact, words) rows for the summary's headline, torchinfo's names first."""
    from cnnstat import fmt

    m = memory(report)

    def mb(key: str) -> str:  # torchinfo prints MB = 10**6 bytes, two decimals
        return f"{m[key] / 1e6:,.2f} MB"

    at = f"at {report.dtype}"
    return [
        ("Trainable params", fmt.exact(m["trainable_params"]), "requires_grad"),
        ("Non-trainable params", fmt.exact(m["non_trainable_params"]),
         "frozen: requires_grad=False, or a spec's `frozen: true`"),
        ("Input size", mb("input_bytes"), at),
        ("Forward/backward pass size", mb("forward_backward_bytes"),
         "2 x outputs of layers with params (torchinfo's rule)"),
        ("Activations (forward)", mb("activation_bytes_forward"), "every layer's output"),
        ("Params size", mb("params_bytes"), f"{at}; buffers {mb('buffers_bytes')} apart"),
        ("Estimated Total Size", mb("estimated_total_bytes"),
         "input + forward/backward + params"),
    ]
