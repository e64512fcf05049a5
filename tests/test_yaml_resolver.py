"""The spec reader's faster tag resolution gives exactly the safe loader's tags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cnnstat.spec import yaml_tree

ROOT = Path(__file__).resolve().parents[1]
TRICKY = """
words: [yes, no, on, off, y, n, Yes, NO, True, false, ~, null, Null, '', "", x, relu]
numbers: [1, -1, +1, 0x1f, 0o7, 0b101, 1_000, 1e3, -1.5e-3, .5, .inf, -.Inf, .nan, 12:30]
odd: [=, <<, 2001-12-14, !!int '3', !!str 3, ! a, '1', "true", "", -, -a, .a, 0a]
nested: [[a, {b: c}], {d: [1, e]}]
"""


def _tags(node: yaml.Node) -> list:
    out = [(type(node).__name__, node.tag, node.value if isinstance(node, yaml.ScalarNode)
            else None)]
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            out += _tags(child)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out += _tags(key) + _tags(value)
    return out


@pytest.mark.parametrize("text", [TRICKY, *(p.read_text() for p in sorted(
    (ROOT / "specs").glob("*.yaml")))], ids=lambda t: t[:20])
def test_fast_resolver_tags_as_the_safe_loader(text: str) -> None:
    reference = yaml.compose(text, Loader=yaml.SafeLoader)
    assert _tags(yaml.compose(text, Loader=yaml_tree._COMPOSER)) == _tags(reference)
