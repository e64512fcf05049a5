"""torchvision models exported to ONNX (`torch.onnx.export(..., dynamo=False)`, eval mode)
against the module they came from: the same MACs as the torch frontend and as
FlopCounterMode / 2 on the module, params equal to the file's float initializers (read
with onnx itself), and the file analyzed in a process where torch cannot be imported.

The exporter folds each BatchNorm into the Conv before it, so the file holds fewer params
than the module (a bias of C instead of 2C + 2C buffers): params are checked against the
file, MACs (unchanged by the folding) against the module. Exported at 64x64 to stay fast.

Marked `oracle`: it needs torchvision and onnx, so it runs in CI's second stage."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.oracle

SIZE = 64
MODELS = ("resnet50", "densenet121", "efficientnet_b0", "mobilenet_v3_large", "fcn_resnet50")


def _module(name):
    tv = pytest.importorskip("torchvision")
    if name == "fcn_resnet50":
        return tv.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None,
                                                   aux_loss=False).eval()
    return getattr(tv.models, name)(weights=None).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    folder = tmp_path_factory.mktemp("onnx")
    files, modules = {}, {}
    for name in MODELS:
        module = _module(name)
        path = folder / f"{name}.onnx"
        with torch.no_grad():
            torch.onnx.export(module, torch.randn(1, 3, SIZE, SIZE), str(path), dynamo=False)
        files[name], modules[name] = str(path), module
    return files, modules


def _file_sizes(path) -> tuple[int, int]:
    """(float initializer elements, of them BatchNormalization's running mean and var),
    read with onnx itself."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(path, load_external_data=False)
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
    size = {t.name: _numel(t.dims) for t in model.graph.initializer if t.data_type in floats}
    norms = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    # The exporter stores equal tensors once (a zero running mean becomes an Identity of
    # a zero bias): only stats that are initializers of their own are buffers.
    stats = {name for n in norms for name in n.input[3:5] if name in size}
    return sum(size.values()), sum(size[name] for name in stats)


def _numel(dims) -> int:
    total = 1
    for d in dims:
        total *= d
    return total


NO_TORCH = """
import sys, json
sys.modules["torch"] = None  # importing torch now fails
from cnnstat.analyzers import analyze_graph
from cnnstat.resolver import resolve
out = {}
for path in sys.argv[1:]:
    report = analyze_graph(resolve(path).graph, None)
    out[path] = [report.totals.macs, report.totals.params, report.totals.buffers]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def without_torch(exported):
    files, _ = exported
    out = subprocess.run([sys.executable, "-c", NO_TORCH, *files.values()],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("name", MODELS)
def test_exported_model_matches_its_module(exported, without_torch, name) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from cnnstat.analyzers import analyze_graph
    from cnnstat.frontends import graph_from_module

    files, modules = exported
    macs, params, _ = without_torch[files[name]]
    module = modules[name]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.randn(1, 3, SIZE, SIZE))
    assert 2 * macs == counter.get_total_flops()
    traced = graph_from_module(module, (3, SIZE, SIZE)).graph
    assert macs == analyze_graph(traced, None).totals.macs
    floats, stats = _file_sizes(files[name])
    assert params == floats - stats  # BN's running stats are buffers, as in torch


@pytest.mark.parametrize("command", ["shapes", "rf", "savings", "summary"])
def test_commands_on_exported_resnet50(exported, command) -> None:
    from typer.testing import CliRunner

    from cnnstat.cli import app

    files, _ = exported
    result = CliRunner().invoke(app, [command, files["resnet50"]])
    assert result.exit_code == 0, result.output
    assert result.output.strip()


def test_mobilenet_v3_maps_its_hardsigmoids(exported) -> None:
    from cnnstat.resolver import resolve

    files, _ = exported
    resolved = resolve(files["mobilenet_v3_large"])
    kinds = [n.kind for n in resolved.graph]
    assert kinds.count("hardsigmoid") == 8  # one per SE block (torchvision's config)
    opaque = [n.layer.op for n in resolved.graph if n.kind == "opaque"]
    # the exporter stores equal (zero-initialized) biases once: those convs share weights
    assert all("shared weights" in op for op in opaque), opaque
    assert bool(opaque) == any("earlier node holds" in line for line in resolved.diagnostics)
