"""Analytic receptive fields (cnnstat.analyzers.rf) against published tables, and `cnnstat rf`.

Oracles, none written here:
- kkrunal77/EVA@2ddce81e 7.md, "Calculate Receptive Field for VGG16" (after
  zike.io/posts/calculate-receptive-field-for-vgg-16): VGG16 per-layer RF and jump at 224x224;
- google-research/receptive_field@cfbfe6ba receptive_field/RECEPTIVE_FIELD_TABLE.md (Araujo,
  Norris & Sim, the Distill 2019 paper's library, on TF-Slim models): RF, effective stride and
  effective padding per end-point of vgg_a (= VGG-11), vgg_16, alexnet_v2 and inception_v3;
- Long, Shelhamer & Darrell, "Fully Convolutional Networks", CVPR 2015, Table 1: rf size of
  the classifier nets with fc6 as a convolution: AlexNet 355, VGG16 404, GoogLeNet 907.
Gradient checks on built modules live in tests/test_rf_gradient.py.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from fractions import Fraction

import pytest
from typer.testing import CliRunner

import cnnstat
from cnnstat.analyzers.engine import infer_shapes
from cnnstat.analyzers.rf import RF, ReceptiveField, receptive_fields
from cnnstat.cli import app
from cnnstat.ir import Graph, ModelMeta, Node
from cnnstat.ir import layers as L
from cnnstat.resolver import resolve, zoo_names


def fields_of(graph: Graph, input_shape: tuple[int, ...] | None = None):
    shapes = infer_shapes(graph, input_shape or graph.meta.input)
    return receptive_fields(graph, shapes)


def zoo(name: str) -> Graph:
    if name not in zoo_names():
        pytest.skip(f"zoo spec '{name}' is not present")
    return resolve(name).graph


def run(*args: str):
    return CliRunner().invoke(app, list(args))


# --- published tables ------------------------------------------------------------------------

# published-numbers.md §2.4 (layer, RF_out, jump_out), in our vgg16 spec's names.
VGG16_TABLE = [
    ("block1.conv1", 3, 1), ("block1.conv2", 5, 1), ("block1.pool", 6, 2),
    ("block2.conv1", 10, 2), ("block2.conv2", 14, 2), ("block2.pool", 16, 4),
    ("block3.conv1", 24, 4), ("block3.conv2", 32, 4), ("block3.conv3", 40, 4),
    ("block3.pool", 44, 8), ("block4.conv1", 60, 8), ("block4.conv2", 76, 8),
    ("block4.conv3", 92, 8), ("block4.pool", 100, 16), ("block5.conv1", 132, 16),
    ("block5.conv2", 164, 16), ("block5.conv3", 196, 16), ("block5.pool", 212, 32),
]


def test_vgg16_every_layer_matches_the_published_table() -> None:
    """Per-layer RF and jump of VGG16 (§2.4); a wrong pooling jump shows from pool1 on."""
    fields, diagnostics = fields_of(zoo("vgg16"))
    assert diagnostics == ()
    for name, size, jump in VGG16_TABLE:
        field = fields[f"features.{name}"]
        assert field.size == (size, size), name
        assert field.stride == (jump, jump), name


# RECEPTIVE_FIELD_TABLE.md rows (end-point: RF, effective stride, effective padding).
TF_SLIM = {
    "vgg11": [("features.block1.conv1", 3, 1, 1), ("features.block1.pool", 4, 2, 1),
              ("features.block2.conv1", 8, 2, 3), ("features.block2.pool", 10, 4, 3),
              ("features.block3.conv1", 18, 4, 7), ("features.block3.conv2", 26, 4, 11),
              ("features.block3.pool", 30, 8, 11), ("features.block4.conv1", 46, 8, 19),
              ("features.block4.conv2", 62, 8, 27), ("features.block4.pool", 70, 16, 27),
              ("features.block5.conv1", 102, 16, 43), ("features.block5.conv2", 134, 16, 59),
              ("features.block5.pool", 150, 32, 59)],
    "vgg16": [("features.block1.conv1", 3, 1, 1), ("features.block1.pool", 6, 2, 2),
              ("features.block2.conv1", 10, 2, 4), ("features.block2.pool", 16, 4, 6),
              ("features.block3.conv1", 24, 4, 10), ("features.block3.conv2", 32, 4, 14),
              ("features.block3.pool", 44, 8, 18), ("features.block4.conv1", 60, 8, 26),
              ("features.block4.conv2", 76, 8, 34), ("features.block4.pool", 100, 16, 42),
              ("features.block5.conv1", 132, 16, 58), ("features.block5.conv2", 164, 16, 74),
              ("features.block5.pool", 212, 32, 90)],
    "alexnet_2012": [("features.conv1", 11, 4, 0), ("features.pool1", 19, 8, 0),
                     ("features.conv2", 51, 8, 16), ("features.conv3", 99, 16, 32),
                     ("features.conv4", 131, 16, 48), ("features.conv5", 163, 16, 64),
                     ("features.pool5", 195, 32, 64)],
    "inception_v3": [("maxpool1", 15, 4, 2), ("maxpool2", 31, 8, 2),
                     ("Mixed_5b.concat1", 63, 8, 18), ("Mixed_5c.concat1", 95, 8, 34),
                     ("Mixed_5d.concat1", 127, 8, 50), ("Mixed_6a.concat1", 159, 16, 58),
                     ("Mixed_6b.concat1", 351, 16, 154), ("Mixed_6c.concat1", 543, 16, 250),
                     ("Mixed_6d.concat1", 735, 16, 346), ("Mixed_6e.concat1", 927, 16, 442),
                     ("Mixed_7a.concat1", 1055, 32, 490), ("Mixed_7b.concat1", 1183, 32, 554),
                     ("Mixed_7c.concat1", 1311, 32, 618)],
}


@pytest.mark.parametrize("model", sorted(TF_SLIM))
def test_end_points_match_araujos_table(model: str) -> None:
    """RF, effective stride and effective padding per end-point. Inception v3's concats of
    1x1, 3x3, 5x5 (1x7/7x1) and pool branches catch a merge that keeps one branch only."""
    graph = zoo(model)
    fields, _ = fields_of(graph)
    for name, size, stride, padding in TF_SLIM[model]:
        if name not in graph:
            pytest.skip(f"{model} has no layer '{name}' (spec renamed?)")
        field = fields[name]
        assert (field.size, field.stride, field.padding) == (
            (size, size), (stride, stride), (padding, padding)), name


def with_fc6_as_conv(graph: Graph, last: str, kernel: int) -> Graph:
    """The features up to `last` plus fc6 as a k x k convolution (FCN's convolutionalised
    classifier)."""
    keep = [n for n in graph.nodes[: graph.position(last) + 1]]
    fc6 = Node(name="fc6", layer=L.Conv2d(out_channels=8, kernel_size=(kernel, kernel)),
               inputs=(last,))
    return Graph((*keep, fc6), ("fc6",), graph.meta)


@pytest.mark.parametrize("model, last, kernel, input_hw, rf", [
    ("vgg16", "features.block5.pool", 7, 224, 404),
    ("alexnet_2012", "features.pool5", 6, 227, 355),
])
def test_fcn_table_1_rf_with_fc6_as_conv(model, last, kernel, input_hw, rf) -> None:
    """FCN Table 1: the field of the convolutionalised fc6 (212 + 6*32 = 404 for VGG16)."""
    graph = with_fc6_as_conv(zoo(model), last, kernel)
    fields, _ = fields_of(graph, (3, input_hw, input_hw))
    assert fields["fc6"].size == (rf, rf)


def test_fcn_table_1_googlenet_907() -> None:
    """FCN Table 1's FCN-GoogLeNet rf 907: the paper GoogLeNet up to its 7x7 average pool."""
    fields, _ = fields_of(zoo("googlenet_2014"))
    assert fields["avgpool"].size == (907, 907)


# --- the record and its JSON form ----------------------------------------------------------------


def chain(*layers: L.Layer, input_shape=(1, 16, 16)) -> Graph:
    nodes = [Node(name="input", layer=L.Input())]
    for i, layer in enumerate(layers):
        nodes.append(Node(name=f"l{i}", layer=layer, inputs=(nodes[-1].name,)))
    return Graph(tuple(nodes), (nodes[-1].name,), ModelMeta(name="chain", input=input_shape))


def test_fractional_stride_renders_as_a_string_and_json_stays_valid() -> None:
    """A x2 transposed conv halves the jump: 1/2 is written "1/2", never a float."""
    graph = chain(L.ConvTranspose2d(out_channels=1, kernel_size=(2, 2), stride=(2, 2)))
    field = fields_of(graph)[0]["l0"]
    assert field.stride == (Fraction(1, 2), Fraction(1, 2))
    as_json = json.loads(json.dumps(field.to_dict()))
    assert as_json["stride"] == ["1/2", "1/2"]
    # k2 s2 p0: output j reads input j // 2 only, so every unit sees one pixel, centred on it.
    assert as_json["size"] == [1, 1] and as_json["start"] == [0, 0]


def test_pool_start_is_half_a_pixel() -> None:
    """A 2x2/2 pool's unit 0 covers pixels 0..1: centre 1/2 (Araujo's start), padding 0."""
    field = fields_of(chain(L.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))))[0]["l0"]
    assert field.to_dict() == {"size": [2, 2], "stride": [2, 2], "start": ["1/2", "1/2"],
                               "padding": [0, 0], "global": False, "exceeds_input": False}


def test_non_square_kernels_give_per_axis_fields() -> None:
    """A 1x7 then 7x1 (Inception v3) must not mix the axes: 7 on each after both."""
    graph = chain(L.Conv2d(out_channels=2, kernel_size=(1, 7), padding=(0, 3)),
                  L.Conv2d(out_channels=2, kernel_size=(7, 1), padding=(3, 0)))
    fields = fields_of(graph)[0]
    assert fields["l0"].size == (1, 7) and fields["l1"].size == (7, 7)


def test_same_padding_puts_the_extra_pixel_at_the_end() -> None:
    """'same' with an even kernel pads d(k-1)//2 = 1 before and 2 after (torch): unit 0
    covers -1..2, so its centre is 1/2 and its effective padding 1."""
    field = fields_of(chain(L.Conv2d(out_channels=1, kernel_size=(4, 4), padding="same")))[0]
    assert field["l0"].padding == (1, 1) and field["l0"].start == (Fraction(1, 2),) * 2


def test_global_pooling_makes_every_later_field_the_whole_image() -> None:
    """Global average pooling, flatten and linear see the whole image, flagged as global."""
    graph = chain(L.Conv2d(out_channels=2, kernel_size=(3, 3)),
                  L.AdaptiveAvgPool2d(output_size=(1, 1)), L.Flatten(),
                  L.Linear(out_features=3), input_shape=(1, 20, 30))
    fields = fields_of(graph)[0]
    assert not fields["l0"].is_global
    for name in ("l1", "l2", "l3"):
        d = fields[name].to_dict()
        assert d["global"] and d["size"] == [20, 30] and d["stride"] == [None, None]
        assert not d["exceeds_input"]


def test_exceeds_input_when_the_field_is_larger_than_the_image() -> None:
    """VGG-16's pool5 field (212, §2.4) fits a 224 image but not a 200 one: the flag
    compares the field with the analysed input, which does not change the field itself."""
    vgg16 = fields_of(zoo("vgg16"))[0]["features.block5.pool"]
    assert vgg16.size == (212, 212) and not vgg16.exceeds_input
    small = fields_of(zoo("vgg16"), (3, 200, 200))[0]["features.block5.pool"]
    assert small.exceeds_input  # the field is the same, the image smaller


def test_unit_region_clipped_and_unclipped() -> None:
    """Unit (y, x) of VGG16 pool5 covers -90 + 32*x .. 121 + 32*x (padding 90, size 212)."""
    field = fields_of(zoo("vgg16"))[0]["features.block5.pool"]
    assert field.region((3, 0), clipped=False) == ((6, 217), (-90, 121))
    assert field.region((3, 0), clipped=True) == ((6, 217), (0, 121))
    assert field.region((6, 6), clipped=True) == ((102, 223), (102, 223))


def test_every_layer_kind_has_a_receptive_field_rule() -> None:
    """Adding a layer kind must come with its receptive-field rule (tests/test_kind_coverage.py
    checks every registry)."""
    missing = [k.kind for k in L.ALL_KINDS if k is not L.Input and RF.get(k) is None]
    assert missing == []


def test_no_zoo_spec_has_misaligned_merges() -> None:
    """Every shipped net's merges are aligned (torchvision's designs are); a diagnostic
    here means a spec or the merge rule is wrong."""
    for name in zoo_names():
        graph = resolve(name).graph
        assert fields_of(graph)[1] == (), name


# --- the JSON report and the CLI ----------------------------------------------------------------


def test_json_report_carries_rf_per_layer() -> None:
    """`summary --json` includes the rf of each layer (docs/json.md)."""
    report = json.loads(json.dumps(cnnstat.analyze("vgg16").to_dict()))
    by_name = {layer["name"]: layer for layer in report["layers"]}
    assert by_name["features.block5.pool"]["rf"]["size"] == [212, 212]
    assert by_name["features.block1.pool"]["rf"]["start"] == ["1/2", "1/2"]
    assert by_name["classifier.fc8"]["rf"]["global"] is True


def test_rf_command_json() -> None:
    result = run("rf", "vgg16", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == "cnnstat.rf/1"
    rows = {row["name"]: row for row in data["layers"]}
    assert rows["features.block3.pool"]["rf"]["size"] == [44, 44]  # §2.4
    assert rows["features.block3.pool"]["rf"]["padding"] == [18, 18]  # RF table


def test_rf_command_one_layer_table_and_csv() -> None:
    table = run("rf", "vgg16", "--layer", "features.block5.pool")
    assert table.exit_code == 0 and "212" in table.stdout and "block4" not in table.stdout
    rows = list(csv.DictReader(io.StringIO(run("rf", "vgg16", "-f", "csv").stdout)))
    pool5 = next(r for r in rows if r["name"] == "features.block5.pool")
    assert (pool5["size_h"], pool5["stride_w"], pool5["start_h"]) == ("212", "32", "31/2")


def test_rf_command_markdown_rows_have_equal_columns() -> None:
    lines = run("rf", "vgg16", "-f", "markdown").stdout.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) > 30 and len({line.count("|") for line in table}) == 1


def test_rf_command_unit() -> None:
    result = run("rf", "vgg16", "-l", "features.block5.pool", "--unit", "3,0", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["unclipped"] == {"rows": [6, 217], "cols": [-90, 121]}
    assert data["clipped"] == {"rows": [6, 217], "cols": [0, 121]}


@pytest.mark.parametrize("args, message", [
    (["--layer", "features.block5.pol"], "did you mean 'features.block5.pool'"),
    (["--unit", "1,1"], "--unit needs --layer"),
    (["-l", "features.block5.pool", "--unit", "7,0"], "outside layer"),
    (["-l", "features.block5.pool", "--unit", "a"], "Y,X"),
])
def test_rf_command_usage_errors_exit_2(args, message) -> None:
    result = run("rf", "vgg16", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_rf_command_does_not_import_torch() -> None:
    """Like every zoo path, `cnnstat rf` without --empirical stays torch-free."""
    probe = ("import sys\nfrom typer.testing import CliRunner\nfrom cnnstat.cli import app\n"
             "r = CliRunner().invoke(app, ['rf', 'vgg16', '--json'])\nassert r.exit_code == 0\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_a_field_is_a_frozen_record() -> None:
    field = fields_of(zoo("vgg16"))[0]["features.block1.conv1"]
    assert isinstance(field, ReceptiveField)
    with pytest.raises(AttributeError):
        field.image = (1, 1)  # type: ignore[misc]
