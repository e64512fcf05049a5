"""ONNX operators -> cnnstat layer kinds. One converter per op type; each gets the node's
attributes and shapes (batch first, from onnx.shape_inference) and returns a layer, or
None when the op's attributes have no layer kind (the frontend then keeps it opaque).

No torch and no onnx import here: a converter sees plain Python values only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnstat.ir import layers as L

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Op:
    """One ONNX node as a converter sees it. `weights` holds the shape of each input
    that is an initializer (None for a computed value); `scalars` the value of each
    single-element constant input (Clip's min and max)."""

    op_type: str
    attrs: dict[str, Any]
    ins: tuple[Shape, ...]  # shapes of the inputs computed from the graph input
    out: Shape
    weights: tuple[Shape | None, ...]
    scalars: tuple[float | None, ...]
    # the values of each small constant int input (Pad's pads, ReduceMean's axes)
    ints: tuple[tuple[int, ...] | None, ...] = ()

    def weight(self, i: int) -> Shape | None:
        return self.weights[i] if i < len(self.weights) else None

    def int_input(self, i: int) -> tuple[int, ...] | None:
        return self.ints[i] if i < len(self.ints) else None


Converter = Callable[[Op], "L.Layer | None"]
CONVERTERS: dict[str, Converter] = {}

# Ops whose layer kind is being added to cnnstat/ir/layers.py: opaque until then (shape
# from inference, counts n/a, listed). Mapping one is a single line in CONVERTERS.
PENDING_KINDS: dict[str, str] = {}


# Input positions that hold no weights: bounds, scales, pads, ratios (not params), and
# BatchNormalization's running statistics (buffers, as in torch).
OPERANDS = {"Clip": (1, 2), "Resize": (1, 2, 3), "Upsample": (1,), "Pad": (1, 2, 3),
            "Dropout": (1, 2), "Split": (1,), "ReduceMean": (1,)}
BUFFERS = {"BatchNormalization": (3, 4)}


def converts(*op_types: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for op_type in op_types:
            CONVERTERS[op_type] = fn
        return fn
    return register


def _symmetric(pads: list[int] | None) -> tuple[int, int] | None:
    """ONNX pads are [top, left, bottom, right]; torch's layers pad both sides alike."""
    if not pads:
        return (0, 0)
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        return None
    return (pads[0], pads[1])


def _window(op: Op) -> dict[str, Any] | None:
    """kernel, stride, padding, dilation of a 2-D conv or pool; None for what no torch
    layer does (asymmetric or automatic padding, not 2-D)."""
    a = op.attrs
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or len(op.ins[0]) != 4:
        return None
    padding = _symmetric(a.get("pads"))
    if padding is None:
        return None
    return {"stride": tuple(a.get("strides", (1, 1))), "padding": padding,
            "dilation": tuple(a.get("dilations", (1, 1)))}


@converts("Conv")
def _conv(op: Op) -> L.Layer | None:
    w, window = op.weight(1), _window(op)
    if w is None or len(w) != 4 or window is None:
        return None
    return L.Conv2d(out_channels=w[0], kernel_size=(w[2], w[3]), groups=op.attrs.get("group", 1),
                    bias=op.weight(2) is not None, **window)


@converts("ConvTranspose")
def _conv_transpose(op: Op) -> L.Layer | None:
    w, window = op.weight(1), _window(op)
    if w is None or len(w) != 4 or window is None or "output_shape" in op.attrs:
        return None
    groups = op.attrs.get("group", 1)
    return L.ConvTranspose2d(out_channels=w[1] * groups, kernel_size=(w[2], w[3]),
                             output_padding=tuple(op.attrs.get("output_padding", (0, 0))),
                             groups=groups, bias=op.weight(2) is not None, **window)


@converts("Gemm")
def _gemm(op: Op) -> L.Layer | None:
    w = op.weight(1)
    if w is None or len(w) != 2 or op.attrs.get("transA", 0):
        return None
    out_features = w[0] if op.attrs.get("transB", 0) else w[1]
    return L.Linear(out_features=out_features, bias=op.weight(2) is not None)


@converts("MatMul")
def _matmul(op: Op) -> L.Layer | None:
    w = op.weight(1)
    return L.Linear(out_features=w[1], bias=False) if w is not None and len(w) == 2 else None


@converts("BatchNormalization")
def _batch_norm(op: Op) -> L.Layer | None:
    return L.BatchNorm2d(eps=op.attrs.get("epsilon", 1e-5)) if len(op.ins[0]) == 4 else None


@converts("Clip")
def _clip(op: Op) -> L.Layer | None:
    """ReLU6 is Clip(0, 6): min and max are attributes before opset 11, inputs after."""
    low = op.attrs.get("min", op.scalars[1] if len(op.scalars) > 1 else None)
    high = op.attrs.get("max", op.scalars[2] if len(op.scalars) > 2 else None)
    if low == 0 and high == 6:
        return L.ReLU6()
    return L.ReLU() if low == 0 and high is None else None


def _pool(op: Op, cls: type[L.MaxPool2d] | type[L.AvgPool2d], **extra: Any) -> L.Layer | None:
    window = _window(op)
    if window is None:
        return None
    kernel = tuple(op.attrs["kernel_shape"])
    if cls is L.AvgPool2d and window.pop("dilation") != (1, 1):
        return None
    return cls(kernel_size=kernel, ceil_mode=bool(op.attrs.get("ceil_mode", 0)),
               **window, **extra)


@converts("MaxPool")
def _max_pool(op: Op) -> L.Layer | None:
    return _pool(op, L.MaxPool2d)


@converts("AveragePool")
def _avg_pool(op: Op) -> L.Layer | None:
    return _pool(op, L.AvgPool2d,
                 count_include_pad=bool(op.attrs.get("count_include_pad", 0)))


@converts("Flatten")
def _flatten(op: Op) -> L.Layer | None:
    """ONNX always flattens to 2-D; torch's flatten(1) does the same from axis 1 only."""
    return L.Flatten(start_dim=1) if op.attrs.get("axis", 1) == 1 else None


@converts("Reshape")
def _reshape(op: Op) -> L.Layer | None:
    """The target shape is a computed tensor in most exports: take the inferred one."""
    if len(op.out) < 2 or op.out[0] != op.ins[0][0]:
        return None
    return L.Reshape(shape=tuple(op.out[1:]))


@converts("Resize", "Upsample")
def _resize(op: Op) -> L.Layer | None:
    mode = {"nearest": "nearest", "linear": "bilinear"}.get(op.attrs.get("mode", "nearest"))
    if mode is None or len(op.out) != 4:
        return None
    corners = op.attrs.get("coordinate_transformation_mode") == "align_corners"
    return L.Upsample(size=(op.out[2], op.out[3]), mode=mode,
                      align_corners=corners if mode == "bilinear" else None)


@converts("Concat")
def _concat(op: Op) -> L.Layer:
    return L.Concat(dim=op.attrs["axis"])


@converts("Softmax")
def _softmax(op: Op) -> L.Layer:
    return L.Softmax(dim=op.attrs.get("axis", -1 if op.attrs.get("_opset", 13) >= 13 else 1))


@converts("GlobalAveragePool")
def _global_avg(op: Op) -> L.Layer:
    return L.AdaptiveAvgPool2d(output_size=(1, 1))


@converts("HardSigmoid")
def _hardsigmoid(op: Op) -> L.Layer | None:
    """max(0, min(1, alpha*x + beta)): torch's nn.Hardsigmoid is alpha 1/6, beta 1/2
    (ONNX's default alpha is 0.2, another function: kept opaque)."""
    alpha, beta = op.attrs.get("alpha", 0.2), op.attrs.get("beta", 0.5)
    return L.Hardsigmoid() if abs(alpha - 1 / 6) < 1e-6 and abs(beta - 0.5) < 1e-6 else None


@converts("LayerNormalization")
def _layer_norm(op: Op) -> L.Layer | None:
    """Normalizes over axes [axis, rank): our kind covers the last axis alone (nn.LayerNorm
    over the last dim); a scale without a bias input is not that kind's params."""
    rank = len(op.ins[0])
    if op.attrs.get("axis", -1) not in (-1, rank - 1) or op.weight(2) is None:
        return None
    return L.LayerNorm(data_format="channels_last", eps=op.attrs.get("epsilon", 1e-5))


@converts("Transpose")
def _transpose(op: Op) -> L.Layer | None:
    """ONNX's perm is torch's permute dims (batch included); no perm reverses every dim,
    which moves the batch: kept opaque, as a permute that moves it is."""
    perm = op.attrs.get("perm")
    return L.Permute(dims=tuple(perm)) if perm and perm[0] == 0 else None


def _plain(cls: type[L.Layer]) -> Converter:
    return lambda op: cls()


CONVERTERS.update({
    "Relu": _plain(L.ReLU), "Sigmoid": _plain(L.Sigmoid), "HardSwish": _plain(L.Hardswish),
    "Add": _plain(L.Add), "Mul": _plain(L.Multiply), "Identity": _plain(L.Identity),
    "Dropout": _plain(L.Dropout),
})


@converts("Sub")
def _sub(op: Op) -> L.Layer:
    """x - y, both computed (a constant operand, x - mean, keeps it opaque: one edge)."""
    return L.Sub()


# ONNX Pad's modes -> F.pad's ('wrap' from opset 19).
_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
              "wrap": "circular"}


@converts("Pad")
def _pad(op: Op) -> L.Layer | None:
    """ONNX pads are [begin of each dim..., end of each dim...] (an attribute before opset
    11, input 1 after; input 3 the axes they apply to, opset 18); torch's F.pad pairs run
    from the last dim backwards. The batch is never padded."""
    rank = len(op.ins[0])
    pads = op.attrs.get("pads") if op.attrs.get("_opset", 13) < 11 else op.int_input(1)
    axes = op.int_input(3) or tuple(range(rank))
    mode = _PAD_MODES.get(op.attrs.get("mode", "constant"))
    if pads is None or mode is None or len(pads) != 2 * len(axes):
        return None
    begin, end = [0] * rank, [0] * rank
    for k, axis in enumerate(axes):
        begin[axis % rank], end[axis % rank] = pads[k], pads[k + len(axes)]
    if begin[0] or end[0] or (mode != "constant" and (begin[1] or end[1])):
        return None  # the batch, or the channels in a mode that F.pad pads spatially only
    last = 2 if mode != "constant" else \
        next((d for d in range(1, rank) if begin[d] or end[d]), rank - 1)
    padding = tuple(v for d in range(rank - 1, last - 1, -1) for v in (begin[d], end[d]))
    value = op.attrs.get("value", op.scalars[2] if len(op.scalars) > 2 else None)
    return L.Pad(padding=padding, mode=mode, value=float(value or 0.0))


@converts("ReduceMean")
def _reduce_mean(op: Op) -> L.Layer | None:
    """Over `axes` (an attribute before opset 18, input 1 after), `keepdims` 1 by default;
    no axes reduces every dim, the batch too: kept opaque."""
    axes = op.attrs.get("axes") if op.attrs.get("_opset", 13) < 18 else op.int_input(1)
    if not axes:
        return None
    return L.Mean(dims=tuple(axes), keepdim=bool(op.attrs.get("keepdims", 1)))


def split_parts(op: Op, outs: tuple[Shape, ...]) -> list[L.Layer] | None:
    """The parts of an ONNX Split, one layer each: the sizes along `axis` are those shape
    inference gave its outputs (whether `split` is an attribute, an input or absent)."""
    rank = len(op.ins[0])
    axis = op.attrs.get("axis", 0)
    if not -rank <= axis < rank or axis % rank == 0 or any(len(o) != rank for o in outs):
        return None
    sizes = tuple(o[axis] for o in outs)
    return [L.Split(split_size=sizes, dim=axis % rank, index=k) for k in range(len(outs))]
