"""The spec language, construct by construct (docs/spec.md), and the safe evaluator."""

from __future__ import annotations

import textwrap

import pytest

from cnnstat.analyzers import analyze_graph
from cnnstat.errors import SpecError
from cnnstat.ir import layers as L
from cnnstat.spec.expr import ExprError, evaluate
from cnnstat.spec.loader import build_graph
from cnnstat.spec.yaml_tree import parse


def load(text: str):
    return build_graph(parse(textwrap.dedent(text), "t.yaml"), default_name="t", source="t.yaml")


def names(text: str) -> list[str]:
    return [n.name for n in load(text)][1:]


def test_sequential_auto_names_count_per_kind() -> None:
    assert names("""
        input: [3, 8, 8]
        layers: [{conv: 4, k: 3}, relu, {conv: 4, k: 1}, relu, flatten, {fc: 2}]
    """) == ["conv1", "relu1", "conv2", "relu2", "flatten1", "fc1"]


def test_block_args_defaults_and_expressions() -> None:
    graph = load("""
        input: [3, 8, 8]
        blocks:
          cbr:
            args: {c: null, k: 3, out: "2 * c"}   # a default may use earlier args
            layers: [{conv: out, k: k, p: "k // 2", bias: false}, bn, relu]
        layers:
          - {cbr: [4], name: a}
          - {cbr: {c: 8, k: 5}}
    """)
    conv_a, conv_b = graph.node("a.conv1").layer, graph.node("cbr1.conv1").layer
    assert (conv_a.out_channels, conv_a.kernel_size, conv_a.padding) == (8, (3, 3), (1, 1))
    assert (conv_b.out_channels, conv_b.kernel_size, conv_b.padding) == (16, (5, 5), (2, 2))
    assert conv_a.bias is False


def test_named_repeat_of_a_block_reads_like_torchvision() -> None:
    graph = load("""
        input: [3, 16, 16]
        blocks:
          unit:
            args: [c, s]
            layers: [{conv: c, k: 3, s: s, p: 1}, relu]
        layers:
          - {repeat: 3, name: layer1, unit: [8, "2 if i == 0 else 1"]}
    """)
    assert [n.name for n in graph][1:3] == ["layer1.0.conv1", "layer1.0.relu1"]
    strides = [n.layer.stride for n in graph if isinstance(n.layer, L.Conv2d)]
    assert strides == [(2, 2), (1, 1), (1, 1)]


def test_repeat_index_can_be_renamed_and_grow_widths() -> None:
    graph = load("""
        input: [3, 8, 8]
        layers:
          - {repeat: 3, as: j, layers: [{conv: "8 * (j + 1)", k: 1}]}
    """)
    assert [n.layer.out_channels for n in graph.nodes[1:]] == [8, 16, 24]


def test_parallel_branches_and_identity() -> None:
    graph = load("""
        input: [4, 8, 8]
        layers:
          - parallel:
              residual: [{conv: 4, k: 3, p: 1}]
              shortcut: []
            merge: add
          - parallel:
              - [{conv: 2, k: 1}]
              - []
            merge: concat
    """)
    add = graph.node("add1")
    assert add.inputs == ("residual.conv1", "input")
    concat = graph.node("concat1")
    assert concat.inputs == ("branch1.conv1", "add1")
    report = analyze_graph(graph)
    assert report.layer("concat1").output_shape == (1, 6, 8, 8)  # 2 + 4 channels


def test_unnamed_parallels_in_one_scope_do_not_collide() -> None:
    found = names("""
        input: [4, 8, 8]
        layers:
          - {parallel: [[relu], []], merge: add}
          - {parallel: [[relu], []], merge: add}
    """)
    assert found == ["branch1.relu1", "add1", "branch3.relu1", "add2"]


def test_when_skips_entries() -> None:
    found = names("""
        input: [4, 8, 8]
        blocks:
          maybe:
            args: [proj]
            layers: [{conv: 4, k: 1, when: proj}, relu]
        layers: [{maybe: 1}, {maybe: 0}]
    """)
    assert found == ["maybe1.conv1", "maybe1.relu1", "maybe2.relu1"]


def test_references_resolve_lexically_and_to_scopes() -> None:
    graph = load("""
        input: [4, 8, 8]
        layers:
          - {name: stem, layers: [{conv: 4, k: 1, name: a}, relu]}
          - {conv: 4, k: 1, from: input, name: side}
          - {add: null, from: [stem, side]}
          - {conv: 4, k: 1, from: stem.a}
        outputs: [add1, conv1]
    """)
    assert graph.node("add1").inputs == ("stem.relu1", "side")
    assert graph.node("conv1").inputs == ("stem.a",)
    assert graph.outputs == ("add1", "conv1")


def test_metadata() -> None:
    meta = load("""
        name: net
        title: A net
        family: demo
        year: 2024
        paper: somewhere
        follows: paper
        input: [1, 28, 28]
        notes: |
          free text
        layers: [relu]
    """).meta
    assert (meta.name, meta.family, meta.year, meta.input, meta.notes) == (
        "net", "demo", 2024, (1, 28, 28), "free text")


def test_pool_stride_defaults_to_kernel_like_torch() -> None:
    assert load("input: [1, 8, 8]\nlayers: [{maxpool: 3}]").node("maxpool1").layer.stride == (3, 3)


def test_alias_and_full_key_twice_is_an_error() -> None:
    with pytest.raises(SpecError, match="sets kernel_size twice"):
        load("input: [1, 8, 8]\nlayers: [{conv: 2, k: 3, kernel_size: 3}]")


def test_billion_laughs_is_bounded() -> None:
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    with pytest.raises(SpecError, match="expands to more than"):
        parse("\n".join(lines + ["layers: *a8"]), "laughs.yaml")


@pytest.mark.parametrize("text, env, value", [
    ("4*growth", {"growth": 32}, 128),
    ("2 if i == 0 else 1", {"i": 0}, 2),
    ("2 if i == 0 else 1", {"i": 3}, 1),
    ("(c + 1) // 2", {"c": 5}, 3),
    ("2 ** 10", {}, 1024),
    ("not proj and c > 3", {"proj": False, "c": 4}, True),
    ("-c % 3", {"c": 1}, 2),
])
def test_evaluator_arithmetic(text, env, value) -> None:
    assert evaluate(text, env) == value


@pytest.mark.parametrize("text, message", [
    ("__import__('os')", "unknown function '__import__'"),
    ("c.real", "'Attribute' is not allowed"),
    ("c[0]", "'Subscript' is not allowed"),
    ("[x for x in c]", "'ListComp' is not allowed"),
    ("lambda: 1", "'Lambda' is not allowed"),
    ("2 ** 1000", "exponent 1000 is larger than 64"),
    ("10 ** 40", "larger than"),
    ("1 / 0", "division by zero"),
    ("'text'", "only numbers"),
    ("nope", "unknown name 'nope'"),
    ("1e999 - 1e999", "larger than"),
])
def test_evaluator_refuses(text, message) -> None:
    with pytest.raises(ExprError, match=message):
        evaluate(text, {"c": 1})


def test_block_input_names_the_calls_input() -> None:
    """`$input` inside a block is the tensor that call received (each call its own), in a
    repeat iteration the iteration's input, and at the top level the model's input."""
    graph = load("""
        input: [4, 8, 8]
        blocks:
          res:
            layers:
              - {conv: 4, k: 3, p: 1}
              - bn
              - {add, from: [bn1, $input]}
        layers:
          - {conv: 4, k: 1, name: stem}
          - {res, name: a}
          - {res, name: b}
          - {repeat: 2, name: r, layers: [{conv: 4, k: 1}, {add, from: [conv1, $input]}]}
          - {add, from: [r, $input]}
    """)
    inputs = {n.name: n.inputs for n in graph}
    assert inputs["a.add1"] == ("a.bn1", "stem")
    assert inputs["b.add1"] == ("b.bn1", "a.add1")
    assert inputs["r.0.add1"] == ("r.0.conv1", "b.add1")
    assert inputs["r.1.add1"] == ("r.1.conv1", "r.0.add1")
    assert inputs["add1"] == ("r.1.add1", "input")


def test_a_named_entry_skipped_by_when_stands_for_its_input() -> None:
    """torchvision's `identity = x if downsample is None else downsample(x)`: a named
    entry that `when:` skips names its input, so one block body serves both cases."""
    graph = load("""
        input: [4, 8, 8]
        blocks:
          res:
            args: {c: null, proj: false}
            layers:
              - {conv: c, k: 3, p: 1}
              - {name: downsample, when: proj, from: $input, layers: [{conv: c, k: 1}]}
              - {add, from: [conv1, downsample]}
        layers:
          - {res: {c: 8, proj: true}, name: a}
          - {res: {c: 8}, name: b}
    """)
    inputs = {n.name: n.inputs for n in graph}
    assert inputs["a.add1"] == ("a.conv1", "a.downsample.conv1")
    assert inputs["a.downsample.conv1"] == ("input",)
    assert inputs["b.add1"] == ("b.conv1", "a.add1")
    assert "b.downsample.conv1" not in inputs
