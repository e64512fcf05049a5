"""Gates (squeeze-and-excitation, an image-pooling branch) make fields global; cnnstat
also reports the field of the convolution path beside them (docs/receptive-field.md,
"Gates"). The oracle is the gradient (cnnstat.empirical_rf) on the module with every
gate's global branch cut: the convolution path alone. `compare` prints that path's size
with a note, and no number where a field is unknown.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnstat import empirical_rf as E
from cnnstat.analyzers import analyze_graph
from cnnstat.analyzers.compare import last_spatial_rf
from cnnstat.analyzers.engine import infer_shapes
from cnnstat.analyzers.rf import receptive_fields
from cnnstat.cli import app
from cnnstat.ir import Graph, ModelMeta, Node
from cnnstat.ir import layers as L
from cnnstat.spec import load_spec

SPECS = Path(__file__).resolve().parent.parent / "specs"
GATES = (L.Multiply, L.Add, L.Concat)


def graph(*nodes: tuple[str, L.Layer, tuple[str, ...]], input_shape=(2, 40, 40)) -> Graph:
    built = [Node(name="input", layer=L.Input())]
    built += [Node(name=name, layer=layer, inputs=inputs) for name, layer, inputs in nodes]
    return Graph(tuple(built), (built[-1].name,), ModelMeta(name="gates", input=input_shape))


def conv(k: int, s: int = 1, p: int = 0, c: int = 2) -> L.Conv2d:
    return L.Conv2d(out_channels=c, kernel_size=(k, k), stride=(s, s), padding=(p, p))


def fields_of(g: Graph):
    return receptive_fields(g, infer_shapes(g, g.meta.input))[0]


def without_gates(g: Graph) -> Graph:
    """The convolution path: each merge with a global input (a gate) keeps only its inputs
    whose field is local or only gated; left with one, it becomes an identity. The cut
    branches stay in the graph, unused (measuring takes the part a layer depends on)."""
    fields = fields_of(g)

    def on_path(name: str) -> bool:
        f = fields[name]
        return f is not None and (not f.is_global or f.local is not None)

    nodes = []
    for node in g.nodes:
        if isinstance(node.layer, GATES) and not all(map(on_path, node.inputs)):
            kept = tuple(filter(on_path, node.inputs))
            layer = node.layer if len(kept) > 1 else L.Identity()
            node = Node(name=node.name, layer=layer, inputs=kept, loc=node.loc)
        nodes.append(node)
    return Graph(tuple(nodes), g.outputs, g.meta)


def se(prefix: str, x: str, c: int = 2) -> list[tuple[str, L.Layer, tuple[str, ...]]]:
    """x * sigmoid(conv1x1(gap(x))), as torchvision's SqueezeExcitation."""
    return [(f"{prefix}.gap", L.AdaptiveAvgPool2d(output_size=(1, 1)), (x,)),
            (f"{prefix}.fc", conv(1, c=c), (f"{prefix}.gap",)),
            (f"{prefix}.gate", L.Sigmoid(), (f"{prefix}.fc",)),
            (f"{prefix}.scale", L.Multiply(), (x, f"{prefix}.gate"))]


def assert_path_measured(g: Graph, layer: str) -> None:
    """The gated layer's `local` field is the cut graph's field, and the gradient of the
    cut graph's module agrees with it (both axes)."""
    local = fields_of(g)[layer].local
    cut = without_gates(g)
    assert fields_of(cut)[layer] == local
    measured = E.measure(cut, [layer], both_axes=True)[layer]
    assert measured.agrees(local), (local.size, measured)


def test_se_block_keeps_the_convolution_path_beside_the_global_gate() -> None:
    """conv3 -> SE -> conv3 -> SE, residual add -> conv3/2: the gates make every field after
    the first global (the gradient reaches the corners: tests/test_rf_gradient.py); the
    path reads 3, then 5 after the second conv, the add keeps the union (5), the strided
    conv 5 + 2 = 7."""
    g = graph(("a", conv(3, p=1), ("input",)), *se("se1", "a"),
              ("b", conv(3, p=1), ("se1.scale",)), *se("se2", "b"),
              ("add", L.Add(), ("se2.scale", "a")),
              ("c", conv(3, s=2, p=1), ("add",)))
    fields = fields_of(g)
    for name, size in (("se1.scale", 3), ("b", 5), ("se2.scale", 5), ("add", 5), ("c", 7)):
        assert fields[name].is_global and fields[name].size == (40, 40)
        assert fields[name].local.size == (size, size), name
    assert fields["se2.gap"].local is None  # a pool to one unit is global in itself
    assert fields["c"].to_dict()["local"] == {"size": [7, 7], "stride": [2, 2],
                                              "start": [0, 0], "padding": [3, 3]}
    assert_path_measured(g, "c")


def test_pooled_branch_concatenated_keeps_the_other_branches() -> None:
    """DeepLab's ASPP: a 3x3 dilated branch, a 1x1 branch and an image-pooling branch
    (pooled, 1x1 conv, upsampled back) concatenated: the path is the union of the first
    two, 1 + 2*2 = 5."""
    g = graph(("b1", L.Conv2d(out_channels=2, kernel_size=(3, 3), padding=(2, 2),
                              dilation=(2, 2)), ("input",)),
              ("b2", conv(1), ("input",)),
              ("pool", L.AdaptiveAvgPool2d(output_size=(1, 1)), ("input",)),
              ("pconv", conv(1), ("pool",)),
              ("up", L.Upsample(like=True, mode="bilinear", align_corners=False),
               ("pconv", "b1")),
              ("cat", L.Concat(), ("b1", "b2", "up")),
              ("proj", conv(1), ("cat",)))
    fields = fields_of(g)
    assert fields["up"].is_global and fields["up"].local is None
    assert fields["proj"].is_global and fields["proj"].local.size == (5, 5)
    assert_path_measured(g, "proj")


def test_global_by_itself_ends_the_path() -> None:
    g = graph(("a", conv(3, p=1), ("input",)), *se("se", "a"),
              ("attn", L.ScaledDotProductAttention(), ("se.scale",)),
              ("b", conv(3, p=1), ("attn",)))
    fields = fields_of(g)
    assert fields["se.scale"].local is not None
    assert fields["attn"].local is None and fields["b"].local is None


SE_NETS = ["efficientnet_b0", "mobilenet_v3_large"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SE_NETS)
def test_zoo_gated_nets_path_equals_gradient(name: str) -> None:
    """At the last spatial layer of the SE nets, with the real channel counts, on
    one-pixel strips (as tests/test_rf_gradient.py's zoo test)."""
    g = load_spec(SPECS / f"{name}.yaml")
    fields, shapes = E.analytic(g)
    last = [n.name for n in g.nodes if len(shapes[n.name]) == 4
            and fields[n.name] is not None and fields[n.name].local is not None][-1]
    local = fields[last].local
    cut = without_gates(g)
    cut_fields, _ = E.analytic(cut)
    assert cut_fields[last] == local
    measured = E.measure(cut, [last], method="axis")[last]
    assert measured.agrees(local), (local.size, measured)


def test_compare_reads_the_path_of_the_last_spatial_layer_not_the_stem() -> None:
    """EfficientNet-B0 read 7 px (a layer before the first SE block) before gates kept the
    convolution path; now the path at features.8 and a note."""
    report = analyze_graph(load_spec(SPECS / "efficientnet_b0.yaml"))
    row = [r for r in report.layers if r.name == "features.8.silu1"][0]
    rf, note = last_spatial_rf(report)
    assert rf == row.rf["local"]["size"][0] > 224 and "gates" in note
    assert last_spatial_rf(analyze_graph(load_spec(SPECS / "resnet50.yaml"))) == (427, None)


def test_compare_prints_no_number_for_an_unknown_field(tmp_path: Path) -> None:
    """A conv after a permute has no known field: `compare` says unknown at that layer,
    never an earlier layer's size."""
    spec = tmp_path / "moved.yaml"
    spec.write_text("name: moved\ninput: [3, 32, 32]\nlayers:\n"
                    "  - {conv: 8, k: 3}\n  - {permute: [0, 1, 3, 2]}\n"
                    "  - {conv: 8, k: 3, name: late}\n  - gap\n  - flatten\n  - {fc: 10}\n")
    result = CliRunner().invoke(app, ["compare", str(spec), "resnet18", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["models"][0]["metrics"]
    assert metrics["rf"] is None and "unknown at 'late'" in metrics["rf_note"]
    table = CliRunner().invoke(app, ["compare", str(spec), "resnet18"]).stdout
    rf_line = next(line for line in table.splitlines() if "Receptive field (" in line)
    assert "n/a" in rf_line and "3 px" not in rf_line


def gate_over_an_opaque_branch() -> Graph:
    """An SE gate, then a residual whose branch holds an opaque op (torchvision's
    stochastic_depth as the torch frontend keeps it when unconverted), then a conv."""
    return graph(("a", conv(3, p=1), ("input",)), *se("se", "a"),
                 ("b", conv(5, p=2), ("se.scale",)),
                 ("drop", L.Opaque(op="stochastic_depth", in_shape=(1, 2, 40, 40),
                                   out_shape=(1, 2, 40, 40)), ("b",)),
                 ("add", L.Add(), ("drop", "se.scale")),
                 ("c", conv(3, p=1), ("add",)), input_shape=(2, 40, 40))


def test_an_op_without_a_rule_makes_the_path_unknown_not_shorter() -> None:
    """An opaque op (the torch frontend's stand-in for an unconverted call, here torchvision's
    stochastic_depth on a residual branch) behind a gate: the path is unknown from there, as
    is every merge it joins; dropping that branch would report the shortcut's field alone."""
    g = gate_over_an_opaque_branch()
    fields, diagnostics = receptive_fields(g, infer_shapes(g, (2, 40, 40), 1))
    assert fields["b"].local.size == (7, 7)
    for name in ("drop", "add", "c"):
        assert fields[name].is_global and fields[name].gated and fields[name].local is None
    assert fields["c"].to_dict()["local"] is None
    assert [d for d in diagnostics if "convolution path behind the gates" in d
            and "'drop'" in d]


CHANNELS_LAST_HEAD = """
input: [3, 64, 64]
layers:
  - {conv: 8, k: 4, s: 4, name: stem}
  - {conv: 8, k: 3, p: 1, name: stage}
  - {gap, name: pool}
  - {permute: [0, 2, 3, 1], name: to_last}
  - {layer_norm: channels_last, name: norm}
  - {permute: [0, 3, 1, 2], name: to_first}
  - {flatten, name: flat}
  - {linear: 10, name: fc}
"""


def test_a_pooled_head_in_channels_last_layout_is_skipped(tmp_path: Path) -> None:
    """ConvNeXt's head permutes the pooled map to [N, 1, 1, C] for its LayerNorm; compare
    printed 'global at classifier.0.layer_norm' for torchvision's convnext_tiny, and the
    min_rf budget read that global field, which passes any limit. Both read the last
    stage: by hand 4 + 2 x 4 = 12 px, and by the gradient."""
    from oracles import spec_graph

    g = spec_graph(CHANNELS_LAST_HEAD)
    measured = E.measure(g, ["stage"], method="axis")["stage"]
    assert measured.agrees(fields_of(g)["stage"])
    assert last_spatial_rf(analyze_graph(g)) == (12, None)
    spec = tmp_path / "head.yaml"
    spec.write_text(CHANNELS_LAST_HEAD)
    for limit, code in ((12, 0), (13, 1)):
        budgets = tmp_path / f"b{limit}.yaml"
        budgets.write_text(f"models: [{{model: {spec}, min_rf: {limit}}}]\n")
        result = CliRunner().invoke(app, ["check", str(budgets)])
        assert result.exit_code == code, result.output
        assert "min_rf @ stage" in result.output  # was '@ norm', 64x64: a pass at any limit


def test_min_rf_behind_gates_reads_the_convolution_path(tmp_path: Path) -> None:
    """EfficientNet-B0's last spatial layer sits behind squeeze-and-excitation gates: its
    field is global, and the budget read the input's 224 px, while compare printed the
    convolution path's 851. The budget reads that path too (measured by gradient above)."""
    path_rf, _ = last_spatial_rf(analyze_graph(load_spec(SPECS / "efficientnet_b0.yaml")))
    for limit, code in ((path_rf, 0), (path_rf + 1, 1)):
        budgets = tmp_path / f"b{limit}.yaml"
        budgets.write_text(f"models: [{{model: efficientnet_b0, min_rf: {limit}}}]\n")
        result = CliRunner().invoke(app, ["check", str(budgets)])
        assert result.exit_code == code, result.output
        assert f"{path_rf}x{path_rf}" in result.output
    assert "the convolution path; gates add global context" in result.output


def test_min_rf_behind_gates_with_an_unknown_path_cannot_be_measured() -> None:
    """Behind a gate whose convolution path is unknown (an op without a rule), the field is
    global: reading it would pass any limit up to the input size. It is an error."""
    from cnnstat.budget.gate import evaluate
    from cnnstat.budget.spec import Budget, ModelBudget
    from cnnstat.errors import Location

    g = gate_over_an_opaque_branch()
    report = analyze_graph(g)
    assert report.layers[-1].rf["global"] and report.layers[-1].rf["local"] is None
    budget = ModelBudget(model="gates", loc=Location(), input=None, batch=1, dtype="fp32",
                         budgets=(Budget(metric="min_rf", limit=(1, 1), loc=Location()),))
    [result] = evaluate(budget, report)
    assert result.status == "error" and "cannot measure" in result.message, result
