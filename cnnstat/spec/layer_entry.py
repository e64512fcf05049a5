"""One layer entry (`{conv: c, k: 3, s: 2}`) -> a `Layer`: kind presets, key aliases,
required fields and each value's type.

A block body is expanded again for every call (DenseNet-201's 98 dense layers, every
ResNet bottleneck): the `Layer` is memoized per entry and per values of the variables
the entry reads (see `memo.py`).
"""

from __future__ import annotations

from collections.abc import Mapping

from cnnstat.errors import SpecError, did_you_mean
from cnnstat.ir.layers import Layer
from cnnstat.spec import schema as S
from cnnstat.spec import values as V
from cnnstat.spec.memo import env_key, variables_read
from cnnstat.spec.yaml_tree import YMap, YNode, YScalar, YWordBool


class LayerEntry:
    """A layer entry whose kind (`head`) is known, with its Layers built so far."""

    __slots__ = ("node", "head", "spec", "presets", "reads", "built")

    def __init__(self, node: YMap, head: str):
        self.node = node
        self.head = head
        self.spec, self.presets = S.lookup_kind(head)  # type: ignore[misc]
        self.reads = variables_read(v for k, v in node.items.items() if k not in S.COMMON_KEYS)
        self.built: dict[tuple, Layer] = {}

    def layer(self, env: Mapping, full: str) -> Layer:
        """The entry's Layer in `env`; `full` (the node's name) is only for errors."""
        names = self.reads  # None: never memoized; (): one Layer for every use
        key = None if names is None else env_key(names, env) if names else ()
        layer = None if key is None else self.built.get(key)
        if layer is None:
            layer = _construct(self, env, full)
            if key is not None:
                self.built[key] = layer
        return layer


# `size_of: NAME` gives these kinds their reference input, and sets these fields.
SIZE_OF = {"upsample": {"like": True}, "crop": {}}


def _construct(entry: LayerEntry, env: Mapping, full: str) -> Layer:
    node, head, spec, presets = entry.node, entry.head, entry.spec, entry.presets
    kwargs = dict(presets)
    if "size_of" in node.items:
        if spec.name not in SIZE_OF:
            raise SpecError(f"'size_of' applies to {' and '.join(SIZE_OF)} only",
                            node.keys["size_of"], layer=full, kind=spec.name)
        kwargs.update(SIZE_OF[spec.name])
    kwargs.update(_primary(entry, env, full))
    for key, value in node.items.items():
        if key == head or key in S.COMMON_KEYS or key == "size_of":
            continue
        canonical = key if key in spec.fields else S.FIELD_ALIASES.get(key, key)
        if canonical not in spec.fields:
            raise SpecError(f"no key '{key}'{did_you_mean(key, valid_keys(spec))}",
                            node.keys[key], layer=full, kind=spec.name)
        if canonical in kwargs and canonical not in presets:
            raise SpecError(f"'{key}' sets {canonical} twice", node.keys[key], layer=full)
        kwargs[canonical] = field(spec, canonical, value, env, full)
    missing = [f for f in spec.required if f not in kwargs]
    if missing:
        raise SpecError(f"needs {', '.join(_with_alias(f) for f in missing)}",
                        node.loc, layer=full, kind=spec.name)
    if "stride" in spec.fields and "stride" not in kwargs and "kernel_size" in kwargs \
            and spec.name in S.STRIDE_IS_KERNEL:
        kwargs["stride"] = kwargs["kernel_size"]  # torch: stride defaults to the kernel
    try:
        return spec.layer(**kwargs)
    except ValueError as e:
        raise SpecError(str(e), node.loc, layer=full, kind=spec.name) from None


def _primary(entry: LayerEntry, env: Mapping, full: str) -> dict:
    """The field the kind's own key sets (`{conv: 64}`), if its value sets one."""
    head, spec = entry.head, entry.spec
    primary = entry.node.items[head]
    if isinstance(primary, YScalar) and isinstance(primary.value, str) and \
            spec.fields.get(primary.value) == S.BOOL:
        return {primary.value: True}  # `{crop: center}`: a flag named as the value
    if isinstance(primary, YScalar) and (primary.value is None or primary.value is True) \
            and not isinstance(primary, YWordBool):  # `{conv: on}`: said so in the error
        return {}  # `relu` alone, `{relu: null}`
    if spec.primary is None:
        raise SpecError(f"{spec.name} takes no value; write '{head}' alone or "
                        f"'{{{head}: null}}'", primary.loc, layer=full)
    return {spec.primary: field(spec, spec.primary, primary, env, full)}


def field(spec: S.KindSpec, name: str, value: YNode, env: Mapping, full: str):
    try:
        return V.field_value(value, spec.fields[name], env, name, spec.choices.get(name, ()))
    except SpecError as e:
        raise SpecError(e.message, e.loc, layer=full, kind=spec.name) from None


def valid_keys(spec: S.KindSpec) -> list[str]:
    aliases = [a for a, f in S.FIELD_ALIASES.items() if f in spec.fields]
    return [*spec.fields, *aliases, *S.COMMON_KEYS]


def _with_alias(field_name: str) -> str:
    short = [a for a, f in S.FIELD_ALIASES.items() if f == field_name]
    return f"{field_name} ({short[0]})" if short else field_name
