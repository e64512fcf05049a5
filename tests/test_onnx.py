"""The ONNX frontend on small graphs built with onnx.helper: each op's layer kind and
formula (worked out by hand below), the opaque ops, and the located errors.

Marked `oracle`: it needs the onnx package, so it runs in CI's second stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cnnstat.cli import app

pytestmark = pytest.mark.oracle


def _tensor(onnx, name, dims, value=0.0):
    size = 1
    for d in dims:
        size *= d
    return onnx.helper.make_tensor(name, onnx.TensorProto.FLOAT, dims, [value] * size)


def _model(tmp_path, nodes, out_dims, inits=(), in_dims=(1, 3, 8, 8), opset=17, name="m"):
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    graph = h.make_graph(
        nodes, name, [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(in_dims))],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, out_dims)],
        initializer=list(inits))
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return str(path)


def _report(path, input=None):
    from cnnstat.analyzers import analyze_graph
    from cnnstat.resolver import resolve

    return analyze_graph(resolve(path, input=input).graph, None)


def _kinds(path):
    from cnnstat.resolver import resolve

    return [n.kind for n in resolve(path).graph][1:]


def test_conv_relu_formula(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[2, 2], name="conv"),
             h.make_node("Relu", ["c"], ["y"], name="relu")]
    path = _model(tmp_path, nodes, [1, 16, 4, 4],
                  [_tensor(onnx, "w", [16, 3, 3, 3]), _tensor(onnx, "b", [16])])
    report = _report(path)
    assert _kinds(path) == ["conv2d", "relu"]
    # 16 filters x 3*3*3 taps at each of 4*4 outputs; params 16*27 + 16.
    assert report.totals.macs == 16 * 27 * 16
    assert report.totals.params == 16 * 27 + 16
    assert report.outputs[0][1] == (1, 16, 4, 4)


def test_grouped_conv_transpose_and_pools(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    nodes = [h.make_node("ConvTranspose", ["x", "w"], ["t"], kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("MaxPool", ["t"], ["p"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
             h.make_node("AveragePool", ["p"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    path = _model(tmp_path, nodes, [1, 4, 4, 4], [_tensor(onnx, "w", [3, 4, 2, 2])])
    report = _report(path)
    assert _kinds(path) == ["conv_transpose2d", "max_pool2d", "avg_pool2d"]
    # every input pixel (3 ch, 8x8) scatters a 4-channel 2x2 patch: 3*64*4*4 MACs
    assert report.totals.macs == 3 * 64 * 4 * 4
    assert report.outputs[0][1] == (1, 4, 4, 4)


def test_gemm_matmul_flatten_softmax(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    nodes = [h.make_node("GlobalAveragePool", ["x"], ["g"]),
             h.make_node("Flatten", ["g"], ["f"], axis=1),
             h.make_node("Gemm", ["f", "w", "b"], ["l"], transB=1),
             h.make_node("MatMul", ["l", "m"], ["k"]),
             h.make_node("Softmax", ["k"], ["y"], axis=1)]
    path = _model(tmp_path, nodes, [1, 5],
                  [_tensor(onnx, "w", [10, 3]), _tensor(onnx, "b", [10]),
                   _tensor(onnx, "m", [10, 5])])
    report = _report(path)
    assert _kinds(path) == ["adaptive_avg_pool2d", "flatten", "linear", "linear", "softmax"]
    assert report.totals.macs == 3 * 10 + 10 * 5
    assert report.totals.params == 30 + 10 + 50


def test_shared_initializer_counted_once(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    nodes = [h.make_node("Conv", ["x", "w"], ["a"], kernel_shape=[1, 1]),
             h.make_node("Conv", ["a", "w"], ["y"], kernel_shape=[1, 1])]
    path = _model(tmp_path, nodes, [1, 3, 8, 8], [_tensor(onnx, "w", [3, 3, 1, 1])])
    report = _report(path)
    assert report.totals.params == 9  # one 3x3x1x1 tensor, used twice
    assert report.totals.macs == 2 * 9 * 64


def test_merges_clip_and_batchnorm(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    nodes = [h.make_node("BatchNormalization", ["x", "s", "bb", "mu", "var"], ["n"]),
             h.make_node("Clip", ["n", "lo", "hi"], ["r6"]),
             h.make_node("Sigmoid", ["r6"], ["s1"]),
             h.make_node("Mul", ["r6", "s1"], ["m"]),
             h.make_node("HardSwish", ["m"], ["hs"]),
             h.make_node("Add", ["hs", "x"], ["a"]),
             h.make_node("Concat", ["a", "x"], ["c"], axis=1),
             h.make_node("Dropout", ["c"], ["d"]),
             h.make_node("Identity", ["d"], ["y"])]
    inits = [_tensor(onnx, n, [3]) for n in ("s", "bb", "mu", "var")]
    inits += [_tensor(onnx, "lo", [], 0.0), _tensor(onnx, "hi", [], 6.0)]
    path = _model(tmp_path, nodes, [1, 6, 8, 8], inits)
    assert _kinds(path) == ["batch_norm2d", "relu6", "sigmoid", "multiply", "hardswish", "add",
                            "concat", "dropout", "identity"]
    report = _report(path)
    assert report.totals.params == 6  # scale and bias; mean and var are buffers
    assert report.outputs[0][1] == (1, 6, 8, 8)


def test_resize_and_reshape(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    shape = onnx.helper.make_tensor("shape", onnx.TensorProto.INT64, [3], [1, 3, 256])
    scales = onnx.helper.make_tensor("scales", onnx.TensorProto.FLOAT, [4], [1, 1, 2, 2])
    nodes = [h.make_node("Resize", ["x", "", "scales"], ["r"], mode="linear"),
             h.make_node("Reshape", ["r", "shape"], ["y"])]
    path = _model(tmp_path, nodes, [1, 3, 256], [shape, scales])
    assert _kinds(path) == ["upsample", "reshape"]
    assert _report(path).totals.params == 0  # the scales are not weights


@pytest.mark.parametrize("op, kind", [("Softsign", None)])
def test_unmapped_ops_are_opaque_and_listed(tmp_path, op, kind) -> None:
    onnx = pytest.importorskip("onnx")
    inputs = ["x"]
    path = _model(tmp_path, [onnx.helper.make_node(op, inputs, ["y"], name="odd")], [1, 3, 8, 8])
    from cnnstat.resolver import resolve

    resolved = resolve(path)
    (layer,) = [r for r in _report(path).layers if r.name == "odd"]
    assert layer.macs is None and layer.other_ops is None  # n/a, never a zero
    assert any(f"odd ({op})" in line for line in resolved.diagnostics), resolved.diagnostics
    node = resolved.graph.node("odd")
    assert node.layer.op.startswith(f"onnx::{op}") and (kind is None or kind in node.layer.op)


def test_hardsigmoid_maps_only_with_torchs_slope(tmp_path) -> None:
    """Catches: ONNX's default HardSigmoid (alpha 0.2) taken for torch's (alpha 1/6)."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    torch_like = _model(tmp_path, [h.make_node("HardSigmoid", ["x"], ["y"], alpha=1 / 6)],
                        [1, 3, 8, 8], name="torch_like")
    assert _kinds(torch_like) == ["hardsigmoid"]
    # relu6(x + 3) / 6 costs what torch's nn.Hardsigmoid costs: elementwise, no MACs
    assert _report(torch_like).totals.macs == 0
    default = _model(tmp_path, [h.make_node("HardSigmoid", ["x"], ["y"])], [1, 3, 8, 8],
                     name="default_alpha")
    assert _kinds(default) == ["opaque"]


def test_layer_normalization_over_the_last_axis(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    nodes = [h.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)]
    path = _model(tmp_path, nodes, [1, 3, 8, 16],
                  [_tensor(onnx, "g", [16]), _tensor(onnx, "b", [16])], in_dims=(1, 3, 8, 16))
    assert _kinds(path) == ["layer_norm"]
    assert _report(path).totals.params == 2 * 16  # scale and bias over the last dim
    wide = [h.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=1)]
    path = _model(tmp_path, wide, [1, 3, 8, 16],
                  [_tensor(onnx, "g", [3, 8, 16]), _tensor(onnx, "b", [3, 8, 16])],
                  in_dims=(1, 3, 8, 16), name="wide")
    assert _kinds(path) == ["opaque"]  # over C, H and W: not a kind of ours


def test_transpose_is_a_permute_unless_it_moves_the_batch(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    path = _model(tmp_path, [h.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])],
                  [1, 8, 8, 3])
    assert _kinds(path) == ["permute"]
    assert _report(path).layers[-1].output_shape == (1, 8, 8, 3)  # NCHW -> NHWC
    moved = _model(tmp_path, [h.make_node("Transpose", ["x"], ["y"], perm=[1, 0, 2, 3])],
                   [3, 1, 8, 8], name="moved")
    assert _kinds(moved) == ["opaque"]


def _cli(*args):
    return CliRunner().invoke(app, list(args))


def test_symbolic_dim_needs_input(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    nodes = [onnx.helper.make_node("Relu", ["x"], ["y"])]
    path = _model(tmp_path, nodes, ["N", 3, "H", "W"], in_dims=("N", 3, "H", "W"))
    result = _cli("params", path)
    assert result.exit_code == 2
    assert f"{path}: error: input 'x' dim 2 is symbolic ('H'); give --input" in result.output
    assert _report(path, input="3x32x16").input_shape == (1, 3, 32, 16)
    assert _cli("shapes", path, "--input", "3x32x32").exit_code == 0


def test_missing_malformed_and_unknown_opset(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    missing = _cli("params", str(tmp_path / "nope.onnx"))
    assert missing.exit_code == 2 and "no such ONNX file" in missing.output
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a protobuf at all\xff" * 10)
    result = _cli("params", str(bad))
    assert result.exit_code == 2
    assert result.output.startswith(f"{bad}: error: not a readable ONNX model")
    path = _model(tmp_path, [onnx.helper.make_node("Relu", ["x"], ["y"])], [1, 3, 8, 8],
                  opset=99, name="future")
    result = _cli("params", path)
    assert result.exit_code == 2 and f"{path}: error: ONNX opset 99 is not one" in result.output
    for r in (missing, result):
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_special_files_are_refused_before_onnx_opens_them(tmp_path) -> None:
    """Catches: onnx.load blocking forever on a fifo, or reading /dev/zero to the end."""
    pytest.importorskip("onnx")
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.onnx"
    zero.symlink_to("/dev/zero")
    for path, kind in ((fifo, "a fifo"), (zero, "a character device")):
        result = _cli("params", str(path))
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"{path}: error: the file is {kind}"), result.output


def test_commands_on_onnx(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    nodes = [h.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], name="conv"),
             h.make_node("Relu", ["c"], ["y"])]
    path = _model(tmp_path, nodes, [1, 8, 6, 6], [_tensor(onnx, "w", [8, 3, 3, 3])])
    for command in (["shapes", path], ["rf", path], ["savings", path], ["summary", path],
                    ["flops", path], ["compare", path, "lenet5"], ["export", path]):
        result = _cli(*command)
        assert result.exit_code == 0, (command, result.output)
    # 8 filters x 27 taps x 36 outputs = 7776 MACs; 216 params
    budget = tmp_path / "budget.yaml"
    budget.write_text("models:\n  - model: m.onnx\n    max_params: 216\n    max_macs: 7776\n")
    assert _cli("check", str(budget)).exit_code == 0
    budget.write_text("models:\n  - model: m.onnx\n    max_macs: 7775\n")
    assert _cli("check", str(budget)).exit_code == 1


NO_TORCH = """
import sys, json
sys.modules["torch"] = None  # importing torch now fails
from cnnstat.analyzers import analyze_graph
from cnnstat.resolver import resolve
report = analyze_graph(resolve(sys.argv[1]).graph, None)
print(json.dumps([report.totals.macs, sorted(m for m in sys.modules if m.startswith("torch"))]))
"""


def test_onnx_path_imports_no_torch(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    nodes = [onnx.helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])]
    path = _model(tmp_path, nodes, [1, 2, 8, 8], [_tensor(onnx, "w", [2, 3, 1, 1])])
    out = subprocess.run([sys.executable, "-c", NO_TORCH, path], capture_output=True,
                         text=True, check=True)
    macs, loaded = json.loads(out.stdout)
    assert macs == 2 * 3 * 64 and loaded == ["torch"]  # only the blocker entry


def _ints(onnx, name, values):
    return onnx.helper.make_tensor(name, onnx.TensorProto.INT64, [len(values)], list(values))


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split_becomes_one_part_node_per_output(tmp_path, opset) -> None:
    """Split of 8 channels into 3 + 5 (an attribute before opset 13, an input after), each
    part read by a later node; the parts cost nothing (views)."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    sizes, inits = {"split": [3, 5]}, []
    inputs = ["c"]
    if opset >= 13:
        sizes, inits, inputs = {}, [_ints(onnx, "sizes", [3, 5])], ["c", "sizes"]
    nodes = [h.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
             h.make_node("Split", inputs, ["a", "b"], axis=1, name="split", **sizes),
             h.make_node("Concat", ["b", "a"], ["y"], axis=1)]
    path = _model(tmp_path, nodes, [1, 8, 8, 8], [_tensor(onnx, "w", [8, 3, 1, 1]), *inits],
                  opset=opset)
    from cnnstat.resolver import resolve

    graph = resolve(path).graph
    assert _kinds(path) == ["conv2d", "split", "split", "concat"]
    assert [graph.node(f"split.{k}").layer.index for k in (0, 1)] == [0, 1]
    assert graph.nodes[-1].inputs == ("split.1", "split.0")
    report = _report(path)
    assert [r.output_shape for r in report.layers if r.kind == "split"] == [
        (1, 3, 8, 8), (1, 5, 8, 8)]
    assert report.totals.params == 8 * 3 and report.totals.macs == 8 * 3 * 64


def test_equal_split_without_sizes_takes_the_inferred_parts(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    nodes = [h.make_node("Split", ["x"], ["a", "b", "c"], axis=2, name="split"),
             h.make_node("Add", ["a", "c"], ["y"])]
    path = _model(tmp_path, nodes, [1, 3, 3, 9], in_dims=(1, 3, 9, 9))
    assert _kinds(path) == ["split", "split", "split", "add"]
    assert _report(path).outputs[0][1] == (1, 3, 3, 9)


@pytest.mark.parametrize(("mode", "kind_mode"), [("constant", "constant"),
                                                 ("reflect", "reflect"), ("edge", "replicate")])
def test_pad_is_the_pad_kind_in_torchs_order(tmp_path, mode, kind_mode) -> None:
    """ONNX pads [0, 0, 1, 2, 0, 0, 3, 4] are begin (N, C, H, W) then end: H 1 + 3, W 2 + 4,
    which F.pad writes [2, 4, 1, 3] (last dim first): 8x8 -> 12x14."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    node = h.make_node("Pad", ["x", "pads"], ["y"], mode=mode, name="pad")
    path = _model(tmp_path, [node], [1, 3, 12, 14], [_ints(onnx, "pads", [0, 0, 1, 2, 0, 0, 3, 4])],
                  opset=13)
    from cnnstat.resolver import resolve

    layer = resolve(path).graph.node("pad").layer
    assert (layer.padding, layer.mode) == ((2, 4, 1, 3), kind_mode)
    report = _report(path)
    assert report.outputs[0][1] == (1, 3, 12, 14) and report.totals.params == 0


def test_pad_value_axes_and_what_stays_opaque(tmp_path) -> None:
    """Opset 18's axes input: pads [1, 1] on axis 3 only, value 0.5; padding the batch has
    no kind (torch's layers never pad it): opaque."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    value = onnx.helper.make_tensor("v", onnx.TensorProto.FLOAT, [], [0.5])
    node = h.make_node("Pad", ["x", "pads", "v", "axes"], ["y"], name="pad")
    path = _model(tmp_path, [node], [1, 3, 8, 10], [_ints(onnx, "pads", [1, 1]), value,
                                                     _ints(onnx, "axes", [3])], opset=18)
    from cnnstat.ir import layers as L
    from cnnstat.resolver import resolve

    assert resolve(path).graph.node("pad").layer == L.Pad(padding=(1, 1), value=0.5)
    batch = h.make_node("Pad", ["x", "pads"], ["y"], name="pad")
    path = _model(tmp_path, [batch], [3, 3, 8, 8], [_ints(onnx, "pads", [1, 0, 0, 0, 1, 0, 0, 0])],
                  opset=13, name="batch")
    assert _kinds(path) == ["opaque"]


@pytest.mark.parametrize("opset", [13, 18])
def test_reduce_mean_over_space_with_and_without_keepdims(tmp_path, opset) -> None:
    """Mean over H, W: 1 add per input element (3*8*8 = 192 other ops); keepdims 0 drops
    the axes; no axes at all reduces the batch too: opaque."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    axes = {"axes": [2, 3]} if opset < 18 else {}
    inputs = ["x"] if opset < 18 else ["x", "axes"]
    inits = [] if opset < 18 else [_ints(onnx, "axes", [2, 3])]
    node = h.make_node("ReduceMean", inputs, ["y"], keepdims=0, name="mean", **axes)
    path = _model(tmp_path, [node], [1, 3], inits, opset=opset)
    assert _kinds(path) == ["mean"]
    report = _report(path)
    assert report.outputs[0][1] == (1, 3) and report.totals.other_ops == 3 * 8 * 8
    everything = h.make_node("ReduceMean", ["x"], ["y"], keepdims=0, name="mean")
    path = _model(tmp_path, [everything], [], opset=opset, name="all")
    assert _kinds(path) == ["opaque"]


def test_sub_of_two_computed_tensors_and_of_a_constant(tmp_path) -> None:
    """relu(x) - sigmoid(x): 1 op per output element (3*8*8); x - x keeps both edges;
    x - a constant (a mean to subtract) has one computed input: opaque, listed."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    nodes = [h.make_node("Relu", ["x"], ["r"]), h.make_node("Sigmoid", ["x"], ["s"]),
             h.make_node("Sub", ["r", "s"], ["y"], name="sub")]
    path = _model(tmp_path, nodes, [1, 3, 8, 8])
    assert _kinds(path) == ["relu", "sigmoid", "sub"]
    sub = [r for r in _report(path).layers if r.name == "sub"][0]
    assert (sub.macs, sub.other_ops) == (0, 3 * 8 * 8)
    path = _model(tmp_path, [h.make_node("Sub", ["x", "x"], ["y"], name="sub")], [1, 3, 8, 8],
                  name="self")
    from cnnstat.resolver import resolve

    assert resolve(path).graph.node("sub").inputs == ("input", "input")
    path = _model(tmp_path, [h.make_node("Sub", ["x", "m"], ["y"], name="sub")], [1, 3, 8, 8],
                  [_tensor(onnx, "m", [1, 3, 1, 1])], name="const")
    assert _kinds(path) == ["opaque"]
