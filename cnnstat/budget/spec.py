"""The budget file: YAML read with the spec loader's located reader, so every error says
`file:line:col`.

```yaml
defaults: {input: [3, 224, 224], batch: 1, dtype: fp32}
models:
  - model: specs/mynet.yaml          # any MODEL reference; relative paths: from this file
    max_params: 5M                   # k/M/G/T = powers of 1000, or a plain integer
    max_activation_bytes: 120MB      # B, kB, MB, GB (1000s) or KiB, MiB, GiB (1024s)
    layers: {"classifier.*": {max_params: 1M}}   # each matching layer, by glob
```

Parsing only checks the file; models are resolved and measured later (`cnnstat.budget`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from cnnstat.analyzers.results import DTYPE_BYTES
from cnnstat.errors import Location, SpecError, did_you_mean
from cnnstat.spec.yaml_tree import YMap, YNode, YScalar, YSeq, read_file

# How a limit's value is written and compared.
COUNT = "count"    # params, MACs, FLOPs, other ops: k/M/G/T suffixes
BYTES = "bytes"    # activation memory: byte units
INT = "int"        # depth: a plain integer
RF = "rf"          # receptive field: a size or [h, w]
SHAPE = "shape"    # output shape: a list of sizes (or a list of such lists)

MODEL_METRICS: dict[str, str] = {
    "max_params": COUNT, "max_macs": COUNT, "max_flops": COUNT, "max_other_ops": COUNT,
    "max_activation_bytes": BYTES, "max_depth": INT, "min_rf": RF, "output_shape": SHAPE,
}
LAYER_METRICS: dict[str, str] = {
    k: v for k, v in MODEL_METRICS.items() if k not in ("max_depth", "output_shape")
}
MODEL_SETTINGS = ("model", "input", "batch", "dtype", "layers")
DEFAULT_KEYS = ("input", "batch", "dtype")
ROOT_KEYS = ("defaults", "models")

COUNT_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
BYTE_UNITS = {"": 1, "B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
_QUANTITY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*([A-Za-z]*)")

Limit = int | tuple[int, int] | tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """One limit: `metric` (a key of MODEL_METRICS) on the model, or on each layer whose
    name matches `layers` (a glob). `loc` is the key's position in the budget file."""

    metric: str
    limit: Limit
    loc: Location
    layers: str | None = None

    @property
    def unit(self) -> str:
        return MODEL_METRICS[self.metric]

    @property
    def label(self) -> str:
        return self.metric if self.layers is None else f"{self.metric}[{self.layers}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelBudget:
    """The budgets of one `models:` entry, with the input it is measured at."""

    model: str
    loc: Location
    input: tuple[int, ...] | None
    batch: int
    dtype: str
    budgets: tuple[Budget, ...]
    base_dir: Path | None = None  # relative spec paths are read from here


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetFile:
    path: str
    models: tuple[ModelBudget, ...]


# A quantity or a tolerance is computed exactly (Fraction): 1e999999999 would build a
# billion-digit integer and never end.
MAX_NUMBER_CHARS = 40
MAX_EXPONENT = 30


def out_of_range(text: str, exponent: int) -> bool:
    return len(text) > MAX_NUMBER_CHARS or abs(exponent) > MAX_EXPONENT


def load_budgets(path: str | Path, shown_as: str | None = None, *,
                 allow_code: bool = False) -> BudgetFile:
    """Read and check a budget file; every problem is a located SpecError (exit 2).
    Module references are refused unless `allow_code` (loading one runs its code)."""
    path = Path(path)
    name = shown_as or str(path)
    root = read_file(path, name)
    top = _mapping(root, "the budget file")
    _check_keys(top, ROOT_KEYS, "the budget file")
    defaults = _defaults(top.get("defaults"))
    models = top.get("models")
    if models is None:
        raise SpecError("the budget file needs a 'models:' list", top.loc)
    if not isinstance(models, YSeq) or not models.items:
        raise SpecError("'models' must be a non-empty list of model entries", models.loc)
    entries = tuple(_model_entry(item, defaults, path.parent, allow_code) for item in models.items)
    return BudgetFile(path=name, models=entries)


def _defaults(node: YNode | None) -> dict:
    base = {"input": None, "batch": 1, "dtype": "fp32"}
    if node is None:
        return base
    entry = _mapping(node, "'defaults'")
    _check_keys(entry, DEFAULT_KEYS, "'defaults'")
    return _settings(entry, base)


def _settings(entry: YMap, base: dict) -> dict:
    """The input/batch/dtype an entry sets, over `base`."""
    out = dict(base)
    if "input" in entry.items:
        out["input"] = input_size(entry.items["input"])
    if "batch" in entry.items:
        out["batch"] = _positive(entry.items["batch"], "batch")
    if "dtype" in entry.items:
        out["dtype"] = _dtype(entry.items["dtype"])
    return out


def _model_entry(node: YNode, defaults: dict, base_dir: Path,
                 allow_code: bool = False) -> ModelBudget:
    entry = _mapping(node, "a model entry")
    _check_keys(entry, (*MODEL_SETTINGS, *MODEL_METRICS), "a model entry")
    ref = entry.get("model")
    if ref is None:
        raise SpecError("a model entry needs 'model:' (a spec path or zoo name)", entry.loc)
    if not isinstance(ref, YScalar) or not isinstance(ref.value, str) or not ref.value.strip():
        raise SpecError("'model' must be a spec path or a zoo name", ref.loc)
    if not allow_code and is_module_reference(ref.value):
        # Importing runs the module's code; a budget file is data unless the user says
        # otherwise (docs/limits.md).
        raise SpecError(f"'{ref.value}' is a module reference: loading it runs its code, "
                        "which a budget file does only with --allow-code "
                        "(check(..., allow_code=True)); or give a spec path or a zoo name",
                        ref.loc)
    own = _settings(entry, defaults)
    budgets = [parse_budget(key, value, entry.keys[key])
               for key, value in entry.items.items() if key in MODEL_METRICS]
    if "layers" in entry.items:
        budgets += _layer_budgets(entry.items["layers"])
    if not budgets:
        raise SpecError(
            f"model '{ref.value}' sets no budget; add one of {', '.join(MODEL_METRICS)} "
            "(an entry without limits would always pass)", entry.loc)
    return ModelBudget(model=ref.value, loc=ref.loc, input=own["input"], batch=own["batch"],
                       dtype=own["dtype"], budgets=tuple(budgets), base_dir=base_dir)


def is_module_reference(model: str) -> bool:
    return ":" in model and Path(model).suffix not in (".yaml", ".yml")


def _layer_budgets(node: YNode) -> list[Budget]:
    globs = _mapping(node, "'layers'")
    if not globs.items:
        raise SpecError("'layers' maps layer-name globs to limits; it is empty", globs.loc)
    budgets = []
    for pattern, limits_node in globs.items.items():
        limits = _mapping(limits_node, f"the limits of layers '{pattern}'")
        if not limits.items:
            raise SpecError(f"layers '{pattern}' sets no limit", limits.loc)
        _check_keys(limits, tuple(LAYER_METRICS), f"a per-layer limit ('{pattern}')")
        budgets += [parse_budget(key, value, limits.keys[key], layers=pattern)
                    for key, value in limits.items.items()]
    return budgets


def parse_budget(metric: str, node: YNode, loc: Location, layers: str | None = None) -> Budget:
    """One `metric: value` pair, the value read as its metric's unit requires."""
    unit = MODEL_METRICS[metric]
    if unit in (COUNT, BYTES):
        limit: Limit = quantity(node, unit, metric)
    elif unit == INT:
        limit = _positive(node, metric, minimum=0)
    elif unit == RF:
        limit = _rf(node, metric)
    else:
        limit = _output_shape(node, metric)
    return Budget(metric=metric, limit=limit, loc=loc, layers=layers)


def quantity(node: YNode, unit: str, what: str) -> int:
    """`5M`, `1.5G`, `120MB`, `64MiB` or a plain integer -> an exact int (no float error:
    the digits are read as a Fraction)."""
    units = COUNT_UNITS if unit == COUNT else BYTE_UNITS
    if not isinstance(node, YScalar) or isinstance(node.value, bool) or node.value is None:
        raise SpecError(f"{what} must be a number such as 5M, got {_describe(node)}", node.loc)
    text = str(node.value).replace("_", "").replace(",", "").strip()
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise SpecError(f"{what} must be a number such as {_example(unit)}, got '{node.value}'",
                        node.loc)
    digits, exponent, suffix = match.groups()
    if out_of_range(text, int(exponent or 0)):
        raise SpecError(f"{what}: '{text[:MAX_NUMBER_CHARS]}' is out of range (at most "
                        f"{MAX_NUMBER_CHARS} characters and an exponent within "
                        f"+-{MAX_EXPONENT})", node.loc)
    if suffix not in units:
        # Units are case-sensitive (m would be milli); a case slip gets the right spelling.
        same = [u for u in units if u and u.lower() == suffix.lower()]
        hint = (f" (did you mean '{same[0]}'?)" if same
                else did_you_mean(suffix, [u for u in units if u]))
        raise SpecError(
            f"{what}: unknown unit '{suffix}' in '{node.value}'; {_unit_help(unit)}{hint}",
            node.loc)
    value = Fraction(digits) * Fraction(10) ** int(exponent or 0) * units[suffix]
    if value.denominator != 1:
        raise SpecError(f"{what} must come to a whole number, got '{node.value}' = "
                        f"{float(value):g}", node.loc)
    return int(value)


def _unit_help(unit: str) -> str:
    if unit == COUNT:
        return "counts take k, M, G or T (powers of 1000), or no unit"
    return "bytes take B, kB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024)"


def _example(unit: str) -> str:
    return "5M or 1.5G" if unit == COUNT else "120MB or 64MiB"


def input_size(node: YNode) -> tuple[int, ...]:
    """`input`: [C, H, W], [H, W] (channels from the spec) or a square size."""
    if isinstance(node, YScalar):
        return (_positive(node, "input"),) * 2
    if not isinstance(node, YSeq) or not 2 <= len(node.items) <= 3:
        raise SpecError("input must be [C, H, W], [H, W] or a size, without the batch",
                        node.loc)
    return tuple(_positive(item, "input") for item in node.items)


def _rf(node: YNode, what: str) -> tuple[int, int]:
    if isinstance(node, YSeq):
        if len(node.items) != 2:
            raise SpecError(f"{what} must be a size or [h, w]", node.loc)
        return (_positive(node.items[0], what), _positive(node.items[1], what))
    size = _positive(node, what)
    return (size, size)


def _output_shape(node: YNode, what: str) -> tuple[tuple[int, ...], ...]:
    """One shape `[1, 1000]`, or one per model output `[[1, 21, 500, 500], [1, 10]]`."""
    if not isinstance(node, YSeq) or not node.items:
        raise SpecError(f"{what} must be a list of sizes such as [1, 1000]", node.loc)
    shapes = node.items if all(isinstance(i, YSeq) for i in node.items) else (node,)
    out = []
    for shape in shapes:
        if not isinstance(shape, YSeq) or not shape.items:
            raise SpecError(f"{what} must be a list of sizes such as [1, 1000]", shape.loc)
        out.append(tuple(_positive(item, what) for item in shape.items))
    return tuple(out)


def _positive(node: YNode, what: str, minimum: int = 1) -> int:
    value = node.value if isinstance(node, YScalar) else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise SpecError(f"{what} must be {kind}, got {_describe(node)}", node.loc)
    return value


def _dtype(node: YNode) -> str:
    value = node.value if isinstance(node, YScalar) else None
    if not isinstance(value, str) or value not in DTYPE_BYTES:
        shown = value if isinstance(value, str) else _describe(node)
        raise SpecError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got '{shown}'"
                        f"{did_you_mean(str(shown), DTYPE_BYTES)}", node.loc)
    return value


def _mapping(node: YNode, what: str) -> YMap:
    if not isinstance(node, YMap):
        raise SpecError(f"{what} must be a mapping (key: value), got {_describe(node)}",
                        node.loc)
    return node


def _check_keys(node: YMap, allowed: tuple[str, ...], what: str) -> None:
    for key, loc in node.keys.items():
        if key not in allowed:
            raise SpecError(f"{what} has no key '{key}'{did_you_mean(key, allowed)}", loc)


def _describe(node: YNode) -> str:
    if isinstance(node, YSeq):
        return "a list"
    if isinstance(node, YMap):
        return "a mapping"
    if node.value is None:
        return "nothing (null)"
    return repr(node.value)
