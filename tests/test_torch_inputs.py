"""Inputs of module references: `--input` once per tensor the forward takes, and inputs
of other ranks (CxL for a Conv1d model, CxTxHxW for a Conv3d one). Oracles: torch's
`parameters()` and FlopCounterMode (MACs = flops / 2) on the modules defined here."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from cnnstat.cli import app

TWO_INPUTS = textwrap.dedent('''
    import torch
    from torch import nn

    class Pair(nn.Module):
        """An image and a smaller map, merged after pooling the image to the map's size."""

        def __init__(self):
            super().__init__()
            self.image = nn.Conv2d(3, 8, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.map = nn.Conv2d(1, 8, 1)
            self.head = nn.Conv2d(8, 4, 3)

        def forward(self, image, small):
            return self.head(self.pool(self.image(image)) + self.map(small))

    class Same(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3)
            self.b = nn.Conv2d(3, 4, 5, padding=1)

        def forward(self, left, right):
            return self.a(left) * self.b(right)

    class Wave(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 6, 5, stride=2)
            self.fc = nn.Linear(6, 3)

        def forward(self, x):
            return self.fc(self.conv(x).mean(-1))

    class Clip(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 4, 3)

        def forward(self, x):
            return self.conv(x)
''')


@pytest.fixture
def nets(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(TWO_INPUTS)
    namespace: dict = {}
    exec(compile(TWO_INPUTS, str(path), "exec"), namespace)  # the same classes, for torch
    return path, namespace


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def torch_macs(module: nn.Module, *shapes: tuple[int, ...]) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*(torch.rand(1, *s) for s in shapes))
    return counter.get_total_flops() // 2


def test_input_once_per_tensor(nets):
    path, namespace = nets
    result = cli("flops", f"{path}:Pair", "--input", "3x32x32", "--input", "1x16x16", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    module = namespace["Pair"]()
    assert report["totals"]["params"] == sum(p.numel() for p in module.parameters())
    assert report["totals"]["macs"] == torch_macs(module, (3, 32, 32), (1, 16, 16))
    rows = {row["name"]: row for row in report["layers"]}
    assert rows["small"]["output_shape"] == [1, 1, 16, 16]  # the second input, as a node
    assert rows["head"]["output_shape"] == [1, 4, 14, 14]
    notes = [n["message"] for n in report["notes"]]
    assert any("image 3x32x32, small 1x16x16" in n for n in notes)


def test_one_input_for_a_forward_of_two_is_used_for_both(nets):
    path, namespace = nets
    result = cli("flops", f"{path}:Same", "--input", "3x20x20", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["totals"]["macs"] == torch_macs(namespace["Same"](), (3, 20, 20), (3, 20, 20))
    assert any("left 3x20x20, right 3x20x20" in n["message"] for n in report["notes"])


def test_too_many_inputs_and_a_spec_with_two_are_usage_errors(nets):
    path, _ = nets
    assert cli("params", f"{path}:Pair", "-i", "3x8x8", "-i", "1x4x4", "-i", "1x4x4"
               ).exit_code == 2
    assert cli("params", "resnet18", "-i", "3x8x8", "-i", "3x8x8").exit_code == 2


def test_conv1d_takes_c_by_l(nets):
    path, namespace = nets
    result = cli("flops", f"{path}:Wave", "--input", "2x101", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["input_shape"] == [1, 2, 101]
    assert report["totals"]["macs"] == torch_macs(namespace["Wave"](), (2, 101))
    default = json.loads(cli("params", f"{path}:Wave", "--json").stdout)
    assert default["input_shape"] == [1, 2, 224]


def test_conv3d_takes_a_clip(nets):
    path, namespace = nets
    result = cli("flops", f"{path}:Clip", "--input", "3x8x20x20", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["input_shape"] == [1, 3, 8, 20, 20]
    assert report["totals"]["macs"] == torch_macs(namespace["Clip"](), (3, 8, 20, 20))
    default = json.loads(cli("params", f"{path}:Clip", "--json").stdout)
    assert default["input_shape"] == [1, 3, 16, 112, 112]
    assert cli("params", f"{path}:Clip", "--input", "3x8x20x20x2").exit_code == 2


class TwoUnbinds(nn.Module):
    """SSD's heads call unbind in one scope twice: element names must stay unique."""

    def forward(self, x):
        first = torch.unbind(x, 1)
        second = torch.unbind(x * 2, 1)
        return first[0] + second[1]


def test_a_second_multi_output_call_gets_its_own_names():
    from cnnstat.analyzers import analyze_graph
    from cnnstat.frontends import graph_from_module

    traced = graph_from_module(TwoUnbinds(), (3, 4, 4))
    names = [node.name for node in traced.graph]
    assert len(names) == len(set(names))
    assert {"unbind[0]", "unbind_1[1]"} <= set(names)
    report = analyze_graph(traced.graph)
    assert report.outputs[0][1] == tuple(TwoUnbinds()(torch.rand(1, 3, 4, 4)).shape)
