"""Receptive fields checked by gradient on built modules (docs/architecture.md, "Verification").

The oracle is torch: which input pixels get a nonzero gradient from one output unit
(cnnstat.empirical_rf: max-pool as avg-pool, positive weights, zero bias, float64, the sum
over all channels). Each trap graph's docstring names the naive algorithm it catches; its
hand arithmetic is in comments. The zoo tests compare every shipped spec, at the end of each
stage and at the last spatial layer, with the real channel counts.
"""

from __future__ import annotations

import json
import time
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cnnstat import empirical_rf as E
from cnnstat.analyzers.engine import infer_shapes
from cnnstat.analyzers.rf import receptive_fields
from cnnstat.cli import app
from cnnstat.errors import CnnstatError
from cnnstat.ir import Graph, ModelMeta, Node
from cnnstat.ir import layers as L
from cnnstat.spec import load_spec

SPECS = Path(__file__).resolve().parent.parent / "specs"


def graph(*nodes: tuple[str, L.Layer, tuple[str, ...]], input_shape=(2, 40, 40)) -> Graph:
    built = [Node(name="input", layer=L.Input())]
    built += [Node(name=name, layer=layer, inputs=inputs) for name, layer, inputs in nodes]
    return Graph(tuple(built), (built[-1].name,), ModelMeta(name="trap", input=input_shape))


def conv(k: int, s: int = 1, p: int = 0, d: int = 1, c: int = 3) -> L.Conv2d:
    return L.Conv2d(out_channels=c, kernel_size=(k, k), stride=(s, s), padding=(p, p),
                    dilation=(d, d))


def analytic(g: Graph):
    return receptive_fields(g, infer_shapes(g, g.meta.input))


def assert_measured(g: Graph, layer: str | None = None) -> None:
    """The gradient's extent equals the analytic span of the same unit, on both axes."""
    layer = layer or g.outputs[0]
    fields, _ = analytic(g)
    measured = E.measure(g, [layer], both_axes=True)[layer]
    assert measured.agrees(fields[layer]), (fields[layer].size, measured)


# --- traps ---------------------------------------------------------------------------------------


def test_residual_add_with_different_fields() -> None:
    """Catches the sequential algorithm that follows one input of a merge (here inputs[0], the
    identity shortcut): the add sees the union, 3 + 4 + 4 = 11, not the shortcut's 3."""
    g = graph(("stem", conv(3, p=1), ("input",)),
              ("res1", conv(5, p=2), ("stem",)),
              ("res2", conv(5, p=2), ("res1",)),
              ("add", L.Add(), ("stem", "res2")))
    fields, diagnostics = analytic(g)
    assert fields["add"].size == (11, 11) and fields["add"].padding == (5, 5)
    assert diagnostics == ()  # both centred on pixel 0: aligned
    assert_measured(g)


def test_inception_concat() -> None:
    """Catches the algorithm that takes a concat's first branch (the 1x1: 3) and the gradient
    check that backprops from channel 0 only (also the 1x1 branch). After a 3x3/2 stem
    (size 3, jump 2): 1x1 -> 3, 3x3 -> 3 + 2*2 = 7, 1x1 + 5x5 -> 3 + 4*2 = 11,
    pool 3x3/1 + 1x1 -> 7; the union is 11."""
    g = graph(("stem", conv(3, s=2, p=1), ("input",)),
              ("b1", conv(1), ("stem",)),
              ("b2", conv(3, p=1), ("stem",)),
              ("b3a", conv(1), ("stem",)),
              ("b3", conv(5, p=2), ("b3a",)),
              ("b4a", L.MaxPool2d(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)), ("stem",)),
              ("b4", conv(1), ("b4a",)),
              ("cat", L.Concat(), ("b1", "b2", "b3", "b4")))
    fields, diagnostics = analytic(g)
    assert fields["cat"].size == (11, 11) and fields["cat"].stride == (2, 2)
    assert diagnostics == ()
    assert_measured(g)


def test_dilation() -> None:
    """Catches ignoring dilation (3 + 2 = 5): k_eff = d(k-1)+1 gives 5, then 5 + 8 = 13.
    The dilated field has holes; its extent (first to last pixel) is still 13."""
    g = graph(("a", conv(3, p=2, d=2), ("input",)), ("b", conv(3, p=4, d=4), ("a",)))
    assert analytic(g)[0]["b"].size == (13, 13)
    assert_measured(g)


def test_transposed_conv_upsampling() -> None:
    """Catches treating a transposed conv as a conv (jump * 2 = 4) and the continuous
    recurrence size + (k-1)*jump/s = 3 + 3*2/2 = 6. After a 3x3/2 conv (size 3, jump 2), a
    k4 s2 p1 transposed conv's output j reads inputs {(j+1)//2 - 1, (j+1)//2}: two inputs,
    so 3 + 2 = 5 at jump 1; a 3x3 conv after it then sees 3 consecutive outputs = 3 inputs
    -> 3 + 2*2 = 7 for every unit."""
    g = graph(("down", conv(3, s=2, p=1), ("input",)),
              ("up", L.ConvTranspose2d(out_channels=3, kernel_size=(4, 4), stride=(2, 2),
                                       padding=(1, 1)), ("down",)),
              ("post", conv(3, p=1), ("up",)))
    fields, _ = analytic(g)
    assert fields["up"].size == (5, 5) and fields["up"].stride == (1, 1)
    assert fields["post"].size == (7, 7)
    assert_measured(g, "up")
    assert_measured(g)


def test_transposed_conv_fields_alternate_unit_by_unit() -> None:
    """Catches any single-size formula for a k3 s2 transposed conv: output 2i reads inputs i
    and i-1 (size 2), output 2i+1 reads input i only (size 1); the widest is reported."""
    g = graph(("up", L.ConvTranspose2d(out_channels=2, kernel_size=(3, 3), stride=(2, 2)),
               ("input",)), input_shape=(1, 12, 12))
    field = analytic(g)[0]["up"]
    assert field.size == (2, 2) and field.stride == (Fraction(1, 2),) * 2
    units = [(y, y) for y in range(4, 12)]
    measured = E.unit_spans(g, "up", units)
    for (y, x), spans in zip(units, measured, strict=True):
        assert spans == (field.h.span(y), field.w.span(x)), (y, spans)  # type: ignore
        assert spans[0][1] - spans[0][0] + 1 == (2 if y % 2 == 0 else 1)  # type: ignore


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsampling(mode: str) -> None:
    """Catches an upsample that leaves the jump at 2 (a 3x3 conv after it would then see
    3 + 2*2 = 7 with nearest) and bilinear treated as nearest. After a 3x3/2 conv (size 3,
    jump 2): x2 nearest unit j copies input j // 2 (size 3, jump 1), so a 3x3 conv after it
    sees 3 units = 2 inputs: 3 + 2 = 5. Bilinear unit j reads floor(j/2 - 1/4) and the
    next input (3 + 2 = 5), and the 3x3 conv after it 3 inputs: 3 + 2*2 = 7."""
    g = graph(("down", conv(3, s=2, p=1), ("input",)),
              ("up", L.Upsample(scale_factor=(2.0, 2.0), mode=mode), ("down",)),
              ("post", conv(3, p=1), ("up",)))
    fields, _ = analytic(g)
    assert fields["up"].stride == (1, 1)
    assert fields["up"].size == ((3, 3) if mode == "nearest" else (5, 5))
    assert fields["post"].size == ((5, 5) if mode == "nearest" else (7, 7))
    units = [(y, y) for y in range(8, 16)]
    for layer in ("up", "post"):
        measured = E.unit_spans(g, layer, units)
        expected = [(fields[layer].h.span(y), fields[layer].w.span(x)) for y, x in units]
        assert measured == expected, layer


def test_ceil_mode_pooling() -> None:
    """Catches changing the recurrences for ceil_mode: it only adds output units at the far
    end (SqueezeNet, GoogLeNet pools), so 3x3/2 after a 3x3 conv gives 3 + 2 = 5, jump 2."""
    g = graph(("a", conv(3), ("input",)),
              ("pool", L.MaxPool2d(kernel_size=(3, 3), stride=(2, 2), ceil_mode=True), ("a",)),
              ("b", conv(3), ("pool",)), input_shape=(2, 41, 41))
    fields, _ = analytic(g)
    assert fields["pool"].size == (5, 5) and fields["b"].size == (9, 9)
    assert_measured(g)


def test_misaligned_merge_is_diagnosed() -> None:
    """Catches a merge that only compares sizes: a 3x3/2 p1 conv (unit 0 on -1..1, centre 0)
    added to a 2x2/2 shortcut (0..1, centre 1/2), as in ResNet-D-style shortcuts, are
    misaligned by 1/2 px; the union (-1..1 with 0..1) is -1..1, size 3."""
    g = graph(("main", conv(3, s=2, p=1), ("input",)),
              ("short", L.AvgPool2d(kernel_size=(2, 2), stride=(2, 2)), ("input",)),
              ("add", L.Add(), ("main", "short")), input_shape=(3, 40, 40))
    fields, diagnostics = analytic(g)
    assert fields["add"].size == (3, 3)
    assert len(diagnostics) == 2  # one per axis
    assert diagnostics[0].startswith("warning: layer 'add' (add)")
    assert "misaligned along h by 1/2 px" in diagnostics[0]
    assert "'short' at 1/2" in diagnostics[0]
    assert_measured(g)


def test_merge_of_different_strides_is_diagnosed() -> None:
    """Catches a merge that silently keeps one stride: at 8 px, a 5x5 conv (jump 1) and a
    2x2/2 conv (jump 2) both give 4 units, but their fields drift apart unit by unit."""
    g = graph(("a", conv(5), ("input",)), ("b", conv(2, s=2), ("input",)),
              ("cat", L.Concat(), ("a", "b")), input_shape=(1, 8, 8))
    fields, diagnostics = analytic(g)
    assert any("strides differ along h" in d for d in diagnostics)
    assert fields["cat"].h.span(0) == (0, 4)  # unit 0: 0..4 with 0..1
    # torch agrees for unit 0 (the union is exact there)
    assert E.unit_spans(g, "cat", [(0, 0)])[0] == ((0, 4), (0, 4))


def test_squeeze_excitation_multiply_is_global() -> None:
    """Catches following a multiply's first input only: x * sigmoid(fc(gap(x))) depends on
    every pixel, because the gate sees the whole image."""
    g = graph(("a", conv(3, p=1), ("input",)),
              ("gap", L.AdaptiveAvgPool2d(output_size=(1, 1)), ("a",)),
              ("fc", L.Conv2d(out_channels=3, kernel_size=(1, 1)), ("gap",)),
              ("gate", L.Sigmoid(), ("fc",)),
              ("scale", L.Multiply(), ("a", "gate")), input_shape=(2, 16, 16))
    fields, _ = analytic(g)
    assert fields["scale"].is_global and fields["scale"].size == (16, 16)
    # torch: the centre unit's gradient reaches the image corners
    assert E.unit_spans(g, "scale", [(8, 8)])[0] == ((0, 15), (0, 15))


# --- random stacks (hypothesis) ----------------------------------------------------------------


@st.composite
def stacks(draw):
    nodes, prev = [], "input"
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "conv", "max", "avg", "convt", "up"]))
        k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
        s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        if kind == "conv":
            d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
            p = tuple(draw(st.integers(0, kk // 2 + 1)) for kk in k)
            layer = L.Conv2d(out_channels=2, kernel_size=k, stride=s, padding=p, dilation=d)
        elif kind == "up":
            mode = draw(st.sampled_from(["nearest", "bilinear"]))
            layer = L.Upsample(scale_factor=(float(s[0]), float(s[1])), mode=mode)
        elif kind == "convt":
            p = tuple(draw(st.integers(0, kk - 1)) for kk in k)
            layer = L.ConvTranspose2d(out_channels=2, kernel_size=k, stride=s, padding=p)
        else:
            p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
            cls = L.MaxPool2d if kind == "max" else L.AvgPool2d
            layer = cls(kernel_size=k, stride=s, padding=p, ceil_mode=draw(st.booleans()))
        nodes.append((f"l{i}", layer, (prev,)))
        prev = f"l{i}"
    return graph(*nodes, input_shape=(2, 64, 64))


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.filter_too_much])
@given(stacks())
def test_random_stacks_analytic_equals_gradient(g: Graph) -> None:
    """Random conv / pool / transposed-conv / upsampling stacks (non-square, strided,
    dilated, padded, ceil_mode): the analytic span of the central unit is the gradient's,
    on both axes."""
    try:
        infer_shapes(g, g.meta.input)
    except CnnstatError:
        return  # a stack that shrinks the image to nothing is not a network
    assert_measured(g)


# --- the effective receptive field ---------------------------------------------------------------


def plain_stack(n: int) -> Graph:
    nodes, prev = [], "input"
    for i in range(n):
        nodes += [(f"conv{i}", conv(3, p=1, c=16), (prev,)), (f"relu{i}", L.ReLU(), (f"conv{i}",))]
        prev = f"relu{i}"
    return graph(*nodes, input_shape=(3, 80, 80))


def test_effective_field_grows_like_the_square_root_of_depth() -> None:
    """Luo et al. 2016 (Sec. 2.2): with random weights the ERF grows as O(sqrt(n)) while the
    theoretical field grows as O(n), so ERF / TRF shrinks with depth. 8 -> 32 layers: TRF
    17 -> 65 (x3.8), the ERF about x2 (sqrt(4))."""
    erf8 = E.effective_rf(plain_stack(8), "relu7", seeds=4)
    erf32 = E.effective_rf(plain_stack(32), "relu31", seeds=4)
    assert not erf8.clipped and not erf32.clipped
    assert 1 <= erf8.side <= 17 and erf32.side <= 65
    assert erf32.side / 65 < erf8.side / 17
    assert 1.4 < erf32.side / erf8.side < 2.8


# --- the CLI -------------------------------------------------------------------------------------


def test_rf_empirical_cli_on_lenet5() -> None:
    """`--empirical` measures at the stage ends and shows agreement, plus the ERF."""
    if not (SPECS / "lenet5.yaml").exists():
        pytest.skip("no lenet5 spec")
    result = CliRunner().invoke(app, ["rf", "lenet5", "--empirical", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    measured = [row for row in data["layers"] if "measured" in row]
    assert measured and all(row["measured"]["agrees"] for row in measured)
    assert all(row["measured"]["size"] == row["rf"]["size"] for row in measured)
    assert 1 <= data["erf"]["size"] <= measured[-1]["rf"]["size"][0]


# --- every zoo spec (slow) -----------------------------------------------------------------------

ZOO = sorted(p.stem for p in SPECS.glob("*.yaml"))
TIMINGS: dict[str, float] = {}
# Specs where every layer sits behind a region entry (roi_align on the image), so every
# field is global with respect to the image: there is no local field to measure.
NO_LOCAL_FIELD = {"rcnn": "R-CNN warps each region from the image: all fields are global"}
# Wider copies of a measured spec (same blocks, depths, kernels and strides: only channel
# counts differ, which fields do not depend on): their fields must equal that spec's, layer
# by layer; the gradient itself is measured on the narrower one (the random-weight probe
# of a 192-channel-wide ConvNeXt costs half a minute).
WIDER = {"convnext_base": "convnext_small", "convnext_large": "convnext_small"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_zoo_analytic_equals_gradient(name: str) -> None:
    """At the end of each stage and the last spatial layer, with the real channel counts:
    the analytic span of the central unit equals the gradient's. Measured on one-pixel
    strips (empirical_rf.isolate_axis: the same windows along the measured axis)."""
    if name in NO_LOCAL_FIELD:
        pytest.skip(NO_LOCAL_FIELD[name])
    # ConvNeXt: with uniform weights every channel is equal, and a layer norm over equal
    # channels summed over channels (by the next uniform conv, or the probe) is constant:
    # no gradient reaches the input. Random positive weights break the symmetry.
    seed = 0 if name.startswith("convnext") else None
    graph = load_spec(SPECS / f"{name}.yaml")
    fields, shapes = E.analytic(graph)
    if name in WIDER:
        narrow, _ = E.analytic(load_spec(SPECS / f"{WIDER[name]}.yaml"))
        assert {n: f.to_dict() for n, f in fields.items() if f is not None} == \
            {n: f.to_dict() for n, f in narrow.items() if f is not None}
        return
    layers = E.checkpoints(graph, fields, shapes)
    assert layers, "no layer with a local field"
    start = time.perf_counter()
    measured = E.measure(graph, layers, method="axis", seed=seed)
    TIMINGS[name] = time.perf_counter() - start
    wrong = {n: (fields[n].size, measured[n].size) for n in layers
             if not measured[n].agrees(fields[n])}
    assert wrong == {}


STRIP_CROSS_CHECK = ["vgg16", "resnet18", "googlenet", "squeezenet1_1", "mobilenet_v2"]


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in STRIP_CROSS_CHECK if n in ZOO])
def test_zoo_last_layer_on_the_module_as_built(name: str) -> None:
    """The module as built (all windows 2-D, every layer) on a strip as short as the net
    allows, at the last spatial layer: the analytic span, as on the one-pixel strips of
    test_zoo_analytic_equals_gradient. These nets are symmetric in h and w, so w is
    measured."""
    graph = load_spec(SPECS / f"{name}.yaml")
    fields, shapes = E.analytic(graph)
    last = E.measurable_layers(graph, fields, shapes)[-1]
    built = E.measure(graph, [last], method="strip")[last]
    assert built.agrees(fields[last])
    assert built.size == fields[last].size
