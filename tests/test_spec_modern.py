"""The spec constructs modern networks need when written by hand (docs/spec.md): sizes
taken from another tensor, expression functions, block arguments that name layers,
`when:` on a merge, `until:` a scope, and the errors a hand-writer meets first."""

from __future__ import annotations

import textwrap

import pytest

from cnnstat.analyzers import analyze_graph
from cnnstat.errors import SpecError
from cnnstat.spec.expr import ExprError, evaluate
from cnnstat.spec.functions import make_divisible
from cnnstat.spec.loader import build_graph
from cnnstat.spec.yaml_tree import parse


def load(text: str):
    return build_graph(parse(textwrap.dedent(text), "t.yaml"), default_name="t", source="t.yaml")


def shapes(text: str, shape=None) -> dict[str, tuple]:
    graph = load(text)
    report = analyze_graph(graph, shape) if shape else analyze_graph(graph)
    return {r.name: tuple(r.output_shape) for r in report.layers}


@pytest.mark.parametrize("text, value", [
    ("max(3, 2 * c)", 8), ("min(c, 2, 0.5)", 0.5), ("max(1, 2, 3, c)", 4),
    ("round(2.5)", 2), ("round(3.5)", 4), ("round(2.567, 1)", 2.6),
    ("floor(2.7)", 2), ("floor(-2.5)", -3), ("ceil(2.1)", 3), ("ceil(c * 1.1)", 5),
    ("log2(64)", 6.0), ("2 ** ceil(log2(c * 3))", 16),
    ("make_divisible(32 * 0.75, 8)", 24), ("make_divisible(10, 8)", 16),
    ("make_divisible(3, 8)", 8), ("make_divisible(3, 8, 1)", 9), ("make_divisible(c)", 8),
])
def test_expression_functions(text, value) -> None:
    result = evaluate(text, {"c": 4})
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("text, message", [
    ("foo(1)", "unknown function 'foo'"),
    ("flor(1.5)", "did you mean 'floor'"),
    ("max(1)", "max takes 2 to 64 arguments, got 1"),
    ("floor(1, 2)", "floor takes 1 arguments, got 2"),
    ("log2(0)", "log2 takes a positive number"),
    ("make_divisible(3, 0)", "divisor must be positive"),
    ("make_divisible(3, divisor=8)", "by position"),
    ("max(true, 1)", "numbers, not true/false"),
    ("round(2.5, 1.5)", "digits must be an integer"),
    ("ceil(1e29 * 10) * 100", "larger than"),
    ("c.bit_length()", "unknown function 'c.bit_length'"),
])
def test_expression_functions_refuse(text, message) -> None:
    with pytest.raises(ExprError, match=message):
        evaluate(text, {"c": 4})


@pytest.mark.parametrize("value, divisor", [
    (v * w, d) for v in (3, 16, 24, 32, 40, 96, 112, 160, 320, 960, 1280)
    for w in (0.35, 0.5, 0.75, 1.0, 1.1, 1.3, 2.0) for d in (4, 8, 16)
])
def test_make_divisible_keeps_torchvisions_promises(value, divisor) -> None:
    """The contract of torchvision's `_make_divisible` (its docstring: a multiple of the
    divisor, not below min_value, rounded down by at most 10%)."""
    got = make_divisible(value, divisor)
    assert got % divisor == 0 and got >= divisor and got >= 0.9 * value
    assert abs(got - value) <= divisor or got == divisor


@pytest.mark.oracle
def test_make_divisible_equals_torchvisions() -> None:
    """Oracle: torchvision's own function, on the values its models call it with and more."""
    utils = pytest.importorskip("torchvision.models._utils")
    for divisor in (1, 3, 4, 8, 16):
        for min_value in (None, 1, 16):
            for tenths in range(1, 20_000, 7):
                v = tenths / 10
                assert make_divisible(v, divisor, min_value) == \
                    utils._make_divisible(v, divisor, min_value), (v, divisor, min_value)


def test_functions_in_a_spec_are_located() -> None:
    with pytest.raises(SpecError, match="unknown function 'maxx'") as info:
        load("""
            input: [3, 8, 8]
            layers:
              - {conv: "maxx(1, 2)", k: 1}
        """)
    assert (info.value.loc.line, info.value.loc.col) == (4, 12)


@pytest.mark.parametrize("word, hint", [
    ("interpolate", "'upsample'"), ("Upsampling", "'upsample'"), ("BatchNorm2d", "'batch_norm2d'"),
    ("MaxPool2d", "'max_pool2d'"), ("Conv2d", "'conv2d'"), ("dense", "'linear'"),
    ("Hardswish", "'hardswish'"), ("reluu", "'relu'"), ("sequential", "'layers'"),
    ("PixelShuffle", "'pixel_shuffle'"), ("depth_to_space", "'pixel_shuffle'"),
])
def test_unknown_kinds_suggest_the_real_kind(word, hint) -> None:
    with pytest.raises(SpecError, match="did you mean " + hint):
        load(f"input: [3, 8, 8]\nlayers:\n  - {{{word}: 2}}\n")


@pytest.mark.parametrize("word", ["layer_norm", "LayerNorm", "GroupNorm", "drop_path"])
def test_kinds_by_other_names_never_suggest_a_look_alike(word) -> None:
    """`layer_norm` suggested 'layers' (a structure key). It suggests the kind when this
    build has it, and nothing else."""
    from cnnstat.spec import schema as S

    with pytest.raises(SpecError) as info:
        load(f"input: [3, 8, 8]\nlayers:\n  - {{{word}: 2}}\n")
    message = info.value.message
    assert "'layers'" not in message
    if "did you mean" in message:
        suggested = message.split("did you mean '")[1].split("'")[0]
        assert S.lookup_kind(suggested) is not None


SIZED = """
    input: [3, 64, 64]
    layers:
      - {conv: 8, k: 3, name: skip}
      - {conv: 8, k: 3, s: 2}
      - {conv: 8, k: 3, name: deep}
      - {crop: center, from: skip, size_of: deep, name: cropped}
      - {upsample: null, size_of: input, mode: bilinear, align_corners: false, from: deep,
         name: full}
"""


@pytest.mark.parametrize("h, w", [(64, 64), (97, 70), (33, 40)])
def test_sizes_taken_from_another_tensor_hold_at_every_input(h, w) -> None:
    """Catches: offsets typed for one input size (the spec is wrong at any other)."""
    out = shapes(SIZED, (3, h, w))
    deep = out["deep"]
    assert out["cropped"] == (1, 8, *deep[2:])
    assert out["full"] == (1, 8, h, w)


def test_centre_crop_offset_and_field_at_odd_differences() -> None:
    """(H - H_ref) // 2, as `x[..., o:o + h]` in U-Net implementations; the builder's
    module crops the same window as torch slicing does."""
    torch = pytest.importorskip("torch")
    from cnnstat.builder import build_module

    graph = load("""
        input: [1, 9, 8]
        layers:
          - {avgpool: 4, s: 1, name: small}
          - {crop: center, from: input, size_of: small}
    """)
    x = torch.arange(72.0).reshape(1, 1, 9, 8)
    got = build_module(graph)(x)
    assert torch.equal(got, x[:, :, 1:7, 1:6])


def test_size_of_applies_to_upsample_and_crop_only() -> None:
    with pytest.raises(SpecError, match="'size_of' applies to upsample and crop only"):
        load("input: [3, 8, 8]\nlayers:\n  - {conv: 4, k: 1, size_of: input}\n")


def test_when_on_a_merge() -> None:
    """`{add, from: [...], when: ...}` was refused ("only merge layers ... take several
    inputs"); left out, its name stands for its first input."""
    text = """
        input: [4, 8, 8]
        blocks:
          res:
            args: [shortcut]
            layers:
              - {conv: 4, k: 3, p: 1}
              - {add, from: [conv1, $input], when: shortcut, name: out}
              - {relu, from: out}
        layers: [{res: [true], name: a}, {res: [false], name: b}]
    """
    graph = load(text)
    nodes = {n.name: n for n in graph}
    assert nodes["a.out"].inputs == ("a.conv1", "input")
    assert "b.out" not in nodes and nodes["b.relu1"].inputs == ("b.conv1",)


def test_until_a_scope_means_its_last_layer() -> None:
    """resnet18's layer4 ends at layer4.1.relu: 512 x 7 x 7 at 224 (torchvision)."""
    by_scope = load("input: [3, 224, 224]\nlayers:\n  - {backbone: resnet18, until: layer4}\n")
    by_layer = load("input: [3, 224, 224]\nlayers:\n"
                    "  - {backbone: resnet18, until: layer4.1.relu}\n")
    assert [n.name for n in by_scope] == [n.name for n in by_layer]
    assert shapes("input: [3, 224, 224]\nlayers:\n  - {backbone: resnet18, until: layer4}\n"
                  )["layer4.1.relu"] == (1, 512, 7, 7)
    with pytest.raises(SpecError, match=r"no layer or scope 'layer5' \(did you mean 'layer1'"):
        load("input: [3, 224, 224]\nlayers:\n  - {backbone: resnet18, until: layer5}\n")


def test_block_arguments_name_layers() -> None:
    """A decoder block takes its skip connection as an argument: resolved where the call
    is written, passed on through an enclosing block, and never readable as a number."""
    graph = load("""
        input: [3, 32, 32]
        blocks:
          up:
            args: [c, skip]
            layers:
              - {convt: c, k: 2, s: 2}
              - {crop: center, from: skip, size_of: convt1}
              - {concat, from: [crop1, convt1]}
          outer:
            args: [skip]
            layers: [{up: [4, skip]}]
        layers:
          - {conv: 4, k: 3, name: e1}
          - {maxpool: 2}
          - {up: {c: 4, skip: e1}, name: u}
          - {maxpool: 2}
          - {outer: [e1], name: o}
    """)
    nodes = {n.name: n for n in graph}
    assert nodes["u.crop1"].inputs == ("e1", "u.convt1")
    assert nodes["o.up1.crop1"].inputs == ("e1", "o.up1.convt1")
    with pytest.raises(SpecError, match="'e2' names no earlier layer") as info:
        load("""
            input: [3, 32, 32]
            blocks:
              b: {args: [skip], layers: [{add, from: [$input, skip]}]}
            layers: [{conv: 3, k: 1}, {b: [e2]}]
        """)
    assert info.value.loc.line == 5
    with pytest.raises(SpecError, match="unknown name 'skip'"):
        load("""
            input: [3, 32, 32]
            blocks:
              b: {args: [skip], layers: [{conv: skip, k: 1}]}
            layers: [{conv: 3, k: 1, name: e1}, {b: [e1]}]
        """)


def test_a_misspelt_variable_passed_to_a_block_is_said_to_be_one() -> None:
    """A bare name is a layer argument only when no variable has it: a typo of a variable
    says so, rather than only 'names no earlier layer'."""
    with pytest.raises(SpecError, match="'chanels' is neither a variable \\(did you mean "
                                        "'channels'\\?\\) nor an earlier layer"):
        load("""
            input: [3, 8, 8]
            blocks:
              inner: {args: [c], layers: [{conv: c, k: 1}]}
              outer: {args: [channels], layers: [{inner: [chanels]}]}
            layers: [{outer: [4]}]
        """)
