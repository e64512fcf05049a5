"""`--crosscheck`: fvcore's and torch's FLOP counters beside cnnstat, per operator, with
each difference explained by the convention that causes it.

The conventions, read from the installed sources:
- torch `torch.utils.flop_counter.FlopCounterMode`: 2 per multiply-add of convolution,
  mm/addmm/bmm/baddbmm and attention (`mm_flop` returns `m * n * 2 * k`); nothing else
  (no BN, activation, pooling, add). Transposed conv: input spatial size.
- fvcore `FlopCountAnalysis` (fvcore/nn/flop_count.py, jit_handles.py): 1 "flop" per
  multiply-add (`conv_flop_count`, `addmm_flop_jit`, `linear_flop_jit`, `matmul_flop_jit`,
  `bmm_flop_jit`, einsum); plus, inside the same total, `aten::batch_norm` at inference
  = 1 per input element, 2 with affine (`batchnorm_flop_jit`; training: 4 or 5),
  group/layer norm 5 per element with affine (4 without), instance norm 5 (4),
  `adaptive_avg_pool2d` 1 per input element, `upsample_nearest2d` 1 and
  `upsample_bilinear2d` 4 per output element, `grid_sampler` 4 per output element.
  Ops in its `_IGNORED_OPS` (relu, cat, flatten, dropout, view, ...) are skipped
  silently; any other op without a handle (add, max_pool2d, mean, ...) is skipped and
  reported as unsupported.
- cnnstat: MACs of conv, transposed conv and linear only (FLOPs = 2 x MACs); element-wise
  work (BN 2/element, activations, pooling, adds) in `other_ops`, never in MACs.
fvcore traces with torch.jit on real tensors, so it needs the weights in memory; torch
counts on meta tensors.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from cnnstat.analyzers.results import ModelReport

SCHEMA = "cnnstat.crosscheck/1"
# aten ops that only allocate, alias or move data: no tool counts them, by design.
DATA_MOVEMENT = frozenset({
    "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "t", "view", "_unsafe_view",
    "reshape", "expand", "permute", "transpose", "as_strided", "detach", "alias", "clone",
    "copy_", "_to_copy", "slice", "select", "unsqueeze", "squeeze", "cat", "stack", "split",
    "split_with_sizes", "chunk", "unbind", "flatten", "contiguous", "lift_fresh",
})
FVCORE_MAX_ELEMENTS = 2**28  # fvcore runs the model for real: 1 GiB of fp32 weights at most


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    our_kinds: tuple[str, ...]
    our_field: str  # "macs" or "other_ops"
    fvcore_ops: tuple[str, ...]
    torch_ops: tuple[str, ...]
    convention: str


CATEGORIES = (
    Category("conv", ("conv2d", "conv_transpose2d"), "macs", ("conv",),
             ("convolution", "_convolution", "cudnn_convolution", "_slow_conv2d_forward",
              "convolution_overrideable"),
             "fvcore counts 1 per multiply-add (= cnnstat MACs); torch 2 (= cnnstat FLOPs)"),
    Category("linear / matmul", ("linear",), "macs",
             ("addmm", "linear", "matmul", "mm", "bmm", "einsum"),
             ("mm", "addmm", "bmm", "baddbmm"),
             "fvcore counts 1 per multiply-add (= cnnstat MACs); torch 2 (= cnnstat FLOPs)"),
    Category("batch_norm", ("batch_norm2d",), "other_ops", ("batch_norm",), (),
             "fvcore adds BN to its total: 1 per element, 2 with affine (inference); cnnstat "
             "counts 2 per element as other ops, never as MACs; torch does not count BN"),
    Category("norms", (), "other_ops", ("group_norm", "layer_norm", "instance_norm"), (),
             "fvcore: 5 per element with affine, 4 without; torch does not count norms; "
             "cnnstat keeps them opaque (element-wise work not counted)"),
    Category("adaptive_avg_pool2d", ("adaptive_avg_pool2d",), "other_ops",
             ("adaptive_avg_pool2d",), (),
             "fvcore: 1 per input element; cnnstat: the sum of torch's pooling windows "
             "(the same when windows do not overlap); torch does not count pooling"),
    Category("upsample", ("upsample",), "other_ops",
             ("upsample_nearest2d", "upsample_bilinear2d", "grid_sampler"), (),
             "fvcore: nearest 1, bilinear 4 per output element; cnnstat: nearest 0 (a copy), "
             "bilinear 7 per output element; torch does not count resampling"),
    Category("opaque (counted by torch)", ("opaque",), "macs", (), (),
             "cnnstat takes torch's count for ops it does not translate (FlopCounterMode / 2)"),
)


@dataclass(frozen=True, slots=True)
class Row:
    operator: str
    cnnstat_macs: int | None
    cnnstat_other_ops: int | None
    fvcore: int | None  # fvcore's "flops": multiply-adds, plus its element-wise handlers
    torch_flops: int | None  # torch FlopCounterMode: 2 per multiply-add
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {"operator": self.operator, "cnnstat_macs": self.cnnstat_macs,
                "cnnstat_other_ops": self.cnnstat_other_ops, "fvcore": self.fvcore,
                "torch_flops": self.torch_flops, "explanation": self.explanation}


@dataclass(frozen=True, slots=True)
class Crosscheck:
    input_shape: tuple[int, ...]
    rows: tuple[Row, ...]
    cnnstat_macs: int
    cnnstat_other_ops: int
    fvcore_total: int | None
    torch_total: int | None
    fvcore_unsupported: dict[str, int] = field(default_factory=dict)
    fvcore_ignored: dict[str, int] = field(default_factory=dict)
    torch_uncounted: dict[str, int] = field(default_factory=dict)
    summary: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "input_shape": list(self.input_shape),
            "totals": {"cnnstat_macs": self.cnnstat_macs,
                       "cnnstat_flops": 2 * self.cnnstat_macs,
                       "cnnstat_other_ops": self.cnnstat_other_ops,
                       "fvcore": self.fvcore_total, "torch_flops": self.torch_total},
            "operators": [r.to_dict() for r in self.rows],
            "skipped": {"fvcore_unsupported": self.fvcore_unsupported,
                        "fvcore_ignored": self.fvcore_ignored,
                        "torch_uncounted": self.torch_uncounted},
            "summary": list(self.summary), "notes": list(self.notes),
        }


def crosscheck(module: nn.Module, report: ModelReport) -> Crosscheck:
    """Count `module` at the report's input with torch and fvcore, beside the report."""
    shape = tuple(report.input_shape)
    torch_counts, torch_other = torch_count(module, shape)
    fv = fvcore_count(module, shape)
    notes = [] if fv.error is None else [fv.error]
    rows = _rows(report, torch_counts, fv.by_operator if fv.error is None else None)
    rows += _elementwise_rows(report, fv, torch_other)
    fvcore_total = None if fv.error else sum(fv.by_operator.values())
    torch_total = sum(torch_counts.values())
    return Crosscheck(
        input_shape=shape, rows=tuple(rows), cnnstat_macs=report.totals.macs,
        cnnstat_other_ops=report.totals.other_ops, fvcore_total=fvcore_total,
        torch_total=torch_total, fvcore_unsupported=dict(fv.unsupported),
        fvcore_ignored=dict(fv.ignored), torch_uncounted=dict(torch_other),
        summary=tuple(_summary(report, rows, fvcore_total, torch_total)), notes=tuple(notes))


# --- torch ---------------------------------------------------------------------------------

class _SeenOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func._overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def torch_count(module: nn.Module, shape: tuple[int, ...]) -> tuple[Counter[str], Counter[str]]:
    """FlopCounterMode per aten op on meta tensors, and the aten ops it did not count."""
    from cnnstat.frontends.torch_fx import state_copy, with_state

    counter, seen = FlopCounterMode(display=False), _SeenOps()

    def run(inner: nn.Module, x: torch.Tensor) -> None:
        with counter, seen:
            inner(x)

    was_training = module.training
    module.eval()
    try:
        with_state(module, state_copy(module, "meta"), run, torch.empty(shape, device="meta"))
    finally:
        module.train(was_training)
    counts = Counter({getattr(op, "__name__", str(op)): n
                      for op, n in counter.get_flop_counts().get("Global", {}).items()})
    skip = {getattr(op, "__name__", str(op)) for op in flop_registry} | DATA_MOVEMENT
    return counts, Counter({op: n for op, n in seen.ops.items() if op not in skip})


# --- fvcore --------------------------------------------------------------------------------

@dataclass
class _Fvcore:
    by_operator: Counter[str] = field(default_factory=Counter)
    unsupported: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    error: str | None = None


def fvcore_count(module: nn.Module, shape: tuple[int, ...]) -> _Fvcore:
    try:
        with warnings.catch_warnings():  # fvcore's imports use APIs newer torch deprecates
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis
    except ImportError:
        return _Fvcore(error="fvcore is not installed: its column is empty")
    size = sum(t.numel() for t in [*module.parameters(), *module.buffers()])
    if size > FVCORE_MAX_ELEMENTS:
        return _Fvcore(error=f"fvcore skipped: it needs real weights ({size:,} elements) and "
                             "cannot run on meta tensors")

    class Analysis(FlopCountAnalysis):
        seen_ignored: Counter[str] = Counter()

        def _should_ignore_node(self, node) -> bool:  # records what fvcore skips silently
            ignore = super()._should_ignore_node(node)
            if ignore and not node.kind().startswith("prim::"):
                self.seen_ignored[node.kind()] += 1
            return ignore

    real = _materialized(module).eval()
    analysis = Analysis(real, (torch.zeros(shape),))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            by_operator = Counter(analysis.by_operator())
    except Exception as e:  # noqa: BLE001 - fvcore's jit trace fails on many models
        return _Fvcore(error=f"fvcore failed: {type(e).__name__}: {str(e).splitlines()[0]}")
    return _Fvcore(by_operator=by_operator, unsupported=Counter(analysis.unsupported_ops()),
                   ignored=Analysis.seen_ignored)


def _materialized(module: nn.Module) -> nn.Module:
    """A copy with real, zero-filled weights when the module's are on meta."""
    tensors = [*module.parameters(), *module.buffers()]
    if not any(t.is_meta for t in tensors):
        return module
    try:
        real = copy.deepcopy(module)
    except Exception:  # noqa: BLE001 - some modules cannot be copied: fill in place
        real = module
    real = real.to_empty(device="cpu")
    with torch.no_grad():
        for t in [*real.parameters(), *real.buffers()]:
            t.zero_()
    return real


# --- rows ----------------------------------------------------------------------------------

def _ours(report: ModelReport, kinds: tuple[str, ...], attr: str) -> int | None:
    rows = [r for r in report.layers if r.kind in kinds]
    if not rows:
        return None
    return sum(getattr(r, attr) or 0 for r in rows)


def _rows(report: ModelReport, torch_counts: Counter[str],
          fvcore: Counter[str] | None) -> list[Row]:
    rows = []
    for cat in CATEGORIES:
        macs = _ours(report, cat.our_kinds, "macs") if cat.our_field == "macs" else None
        other = _ours(report, cat.our_kinds, "other_ops") if cat.our_field == "other_ops" \
            else None
        fv = None if fvcore is None else sum(fvcore.get(op, 0) for op in cat.fvcore_ops)
        tc = sum(torch_counts.get(op, 0) for op in cat.torch_ops) if cat.torch_ops else None
        if not any((macs, other, fv, tc)):
            continue
        rows.append(Row(cat.name, macs, other, fv if cat.fvcore_ops else None, tc,
                        _explain(cat, macs, other, fv, tc)))
    return rows


def _explain(cat: Category, macs: int | None, other: int | None, fv: int | None,
             tc: int | None) -> str:
    if cat.our_field == "macs" and cat.torch_ops:
        checks = []
        if fv is not None:
            checks.append("fvcore = MACs" if fv == (macs or 0) else
                          f"fvcore - MACs = {fv - (macs or 0):,}")
        if tc is not None:
            checks.append("torch = 2 x MACs" if tc == 2 * (macs or 0) else
                          f"torch - 2 x MACs = {tc - 2 * (macs or 0):,}")
        return f"{cat.convention}: {'; '.join(checks)}"
    if cat.name == "batch_norm" and fv is not None and other is not None:
        same = "fvcore = cnnstat other ops (affine)" if fv == other else \
            f"fvcore - cnnstat other ops = {fv - other:,}"
        return f"{cat.convention}: {same}"
    return cat.convention


def _elementwise_rows(report: ModelReport, fv: _Fvcore, torch_other: Counter[str]) -> list[Row]:
    """Kinds whose work only cnnstat counts (as other ops): activations, pooling, adds."""
    covered = {k for cat in CATEGORIES for k in cat.our_kinds}
    kinds = sorted({r.kind for r in report.layers if (r.other_ops or 0) > 0} - covered)
    rows = []
    for kind in kinds:
        other = _ours(report, (kind,), "other_ops")
        rows.append(Row(kind, None, other, None, None,
                        "element-wise: cnnstat other ops only; fvcore and torch skip it "
                        "(see the skipped ops below)"))
    return rows


def _summary(report: ModelReport, rows: list[Row], fvcore_total: int | None,
             torch_total: int | None) -> list[str]:
    macs = report.totals.macs
    lines = []
    if torch_total is not None:
        verdict = "agrees" if torch_total == 2 * macs else \
            f"differs by {torch_total - 2 * macs:,} FLOPs"
        lines.append(f"torch FlopCounterMode {torch_total:,} = 2 x {torch_total // 2:,}; "
                     f"cnnstat FLOPs {2 * macs:,}: {verdict} (both 2 per multiply-add)")
    if fvcore_total is not None:
        extra = {r.operator: r.fvcore for r in rows if r.fvcore and r.operator not in
                 ("conv", "linear / matmul")}
        parts = ", ".join(f"{op} {n:,}" for op, n in extra.items())
        lines.append(f"fvcore {fvcore_total:,} = multiply-adds "
                     f"{fvcore_total - sum(extra.values()):,} (cnnstat MACs {macs:,})"
                     + (f" + element-wise work it counts: {parts}" if parts else ""))
    return lines
