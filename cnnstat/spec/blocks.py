"""Block definitions (`blocks:`) and binding a call's arguments to a block's parameters."""

from __future__ import annotations

import re

from cnnstat.errors import Location, SpecError, did_you_mean
from cnnstat.ir.record import Record, record
from cnnstat.spec import schema as S
from cnnstat.spec import values as V
from cnnstat.spec.memo import env_key, variables_read
from cnnstat.spec.syntax import STRUCTURE_KEYS, as_seq, check_keys, segment
from cnnstat.spec.yaml_tree import YMap, YNode, YScalar, YSeq

# A call's argument that is a bare name no variable has: a layer, for `from:` and
# `size_of:` in the body (a U-Net decoder block's skip connection).
_LAYER_NAME = re.compile(r"\$input|[A-Za-z_][\w.-]*")
_NOT_LAYERS = frozenset({"true", "True", "false", "False"})
REF_PREFIX = "$ref:"  # env key of a layer argument: no expression can read it


@record(kw_only=False)
class LayerArg(Record):
    """A block argument naming a layer, resolved where the call is written."""

    node: YScalar


@record(kw_only=False)
class Block(Record):
    name: str
    params: tuple[str, ...]
    defaults: dict[str, YNode]
    body: YSeq
    loc: Location


def parse_blocks(node: YNode | None) -> dict[str, Block]:
    if node is None:
        return {}
    if not isinstance(node, YMap):
        raise SpecError("blocks is a mapping of block names to definitions", node.loc)
    blocks = {}
    for name, body in node.items.items():
        loc = node.keys[name]
        segment(name, loc)
        if S.lookup_kind(name) or name in STRUCTURE_KEYS or name in S.COMMON_KEYS:
            raise SpecError(f"block name '{name}' is already a layer kind or key", loc)
        if not isinstance(body, YMap):
            raise SpecError(f"block '{name}' needs 'layers' (and optionally 'args')", body.loc)
        check_keys(body, ("args", "layers"), f"block '{name}'")
        params, defaults = _params(body.get("args"))
        if "layers" not in body.items:
            raise SpecError(f"block '{name}' needs 'layers'", body.loc)
        blocks[name] = Block(name, params, defaults, as_seq(body.items["layers"], "layers"), loc)
    return blocks


def _params(node: YNode | None) -> tuple[tuple[str, ...], dict[str, YNode]]:
    if node is None:
        return (), {}
    if isinstance(node, YSeq):
        return tuple(segment(V.text(p, "an argument name"), p.loc) for p in node.items), {}
    if isinstance(node, YMap):
        defaults = {k: v for k, v in node.items.items()
                    if not (isinstance(v, YScalar) and v.value is None)}
        return tuple(segment(k, node.keys[k]) for k in node.items), defaults
    raise SpecError("args is a list of names, or a mapping of names to defaults", node.loc)


def bind(block: Block, args: YNode, env: dict) -> dict:
    """Evaluate a call's arguments in the caller's variables; defaults see earlier args."""
    given: dict[str, YNode] = {}
    if isinstance(args, YSeq):
        if len(args.items) > len(block.params):
            raise SpecError(f"block '{block.name}' takes {len(block.params)} arguments, "
                            f"got {len(args.items)}", args.loc)
        given = dict(zip(block.params, args.items, strict=False))
    elif isinstance(args, YMap):
        for key in args.items:
            if key not in block.params:
                raise SpecError(f"block '{block.name}' has no argument '{key}'"
                                f"{did_you_mean(key, block.params)}", args.keys[key])
        given = dict(args.items)
    elif not (isinstance(args, YScalar) and args.value is None):
        if not block.params:
            raise SpecError(f"block '{block.name}' takes no arguments", args.loc)
        given = {block.params[0]: args}
    bound: dict = {}
    for param in block.params:
        node = given.get(param, block.defaults.get(param))
        if node is None:
            raise SpecError(f"block '{block.name}' needs argument '{param}'", args.loc)
        bound[param] = _argument(node, env if param in given else bound, param)
    return bound


def _argument(node: YNode, env: dict, param: str):
    if isinstance(node, YScalar) and isinstance(node.value, str):
        text = node.value.strip()
        if _LAYER_NAME.fullmatch(text) and text not in env and text not in _NOT_LAYERS and \
                REF_PREFIX + text not in env:
            return LayerArg(node)
        if REF_PREFIX + text in env:  # passed on from an enclosing block's layer argument
            return LayerArg(node)
    return V.number(node, env, param)


class Call:
    """One call entry of a block: its bound arguments, memoized per values of the
    caller's variables they read (the dict is shared: a scope never changes its env)."""

    __slots__ = ("block", "args", "reads", "bound")

    def __init__(self, block: Block, args: YNode):
        self.block = block
        self.args = args
        self.reads = variables_read([args])
        self.bound: dict[tuple, dict] = {}

    def bind(self, env: dict) -> dict:
        key = None if self.reads is None else env_key(self.reads, env)
        bound = None if key is None else self.bound.get(key)
        if bound is None:
            bound = bind(self.block, self.args, env)
            if key is not None:
                self.bound[key] = bound
        return bound
