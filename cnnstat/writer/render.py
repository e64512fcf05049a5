"""Spec entries -> YAML text in the zoo's house style.

One layer per line as a flow mapping (`- {conv: 64, k: 3, p: 1}`), groups and repeats
with `layers:` in block style, blocks first. Strings are written plain where YAML reads
them back as the same string, else double-quoted (JSON's escapes are YAML's).
"""

from __future__ import annotations

import json
import re
from typing import Any

from cnnstat.ir import Graph
from cnnstat.writer.blocks import Block
from cnnstat.writer.emit import HIDDEN
from cnnstat.writer.entries import Entry

_PLAIN = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.\-]*")
# YAML 1.1 words PyYAML reads as booleans or null.
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"}


def spec_text(graph: Graph, blocks: list[Block], layers: list[Entry], header: str) -> str:
    meta = graph.meta
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines.append(f"name: {scalar(meta.name)}")
    for key in ("title", "family", "year", "paper", "follows"):
        value = getattr(meta, key)
        if value is not None:
            lines.append(f"{key}: {scalar(value)}")
    if meta.input is not None:
        lines.append(f"input: {flow(list(meta.input))}")
    if meta.notes:
        lines.append(f"notes: {scalar(meta.notes)}")
    if blocks:
        lines += ["", "blocks:"]
        for block in blocks:
            lines += _block(block)
    lines += ["", "layers:"]
    lines += _entries(layers, "  ")
    last = graph.nodes[-1].name
    if graph.outputs != (last,):
        lines.append(f"outputs: {flow(list(graph.outputs))}")
    if graph.aux_outputs:
        lines.append(f"aux_outputs: {flow(list(graph.aux_outputs))}")
    return "\n".join(lines) + "\n"


def _block(block: Block) -> list[str]:
    used = ", ".join(block.used_by[:4]) + (", ..." if len(block.used_by) > 4 else "")
    lines = [f"  # used {len(block.used_by)} times: {used}", f"  {block.name}:"]
    if block.params:
        lines.append(f"    args: {flow(block.params)}")
    lines.append("    layers:")
    return lines + _entries(block.body, "      ")


def _entries(entries: list[Entry], indent: str) -> list[str]:
    lines = []
    for entry in entries:
        visible = {k: v for k, v in entry.items() if k not in HIDDEN}
        if "layers" not in visible:
            lines.append(f"{indent}- {_flow_entry(visible)}")
            continue
        keys = [k for k in visible if k != "layers"]
        first = True
        for key in keys:
            lead = "- " if first else "  "
            lines.append(f"{indent}{lead}{key}: {flow(visible[key])}")
            first = False
        lines.append(f"{indent}{'- ' if first else '  '}layers:")
        lines += _entries(visible["layers"], indent + "    ")
    return lines


def _flow_entry(entry: Entry) -> str:
    items = list(entry.items())
    if len(items) == 1 and items[0][1] is None:
        return scalar(items[0][0])  # `relu`, `bn`: a kind word alone
    parts = [scalar(k) if v is None else f"{scalar(k)}: {flow(v)}" for k, v in items]
    return "{" + ", ".join(parts) + "}"


def flow(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    return scalar(value)


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def _float(value: float) -> str:
    """A float PyYAML reads back as the same float: YAML 1.1 wants a dot before `e`."""
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text
