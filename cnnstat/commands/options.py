"""Options shared by the per-model commands (one definition, one help text)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from cnnstat.errors import UsageError


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Dtype(StrEnum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"
    fp64 = "fp64"
    int8 = "int8"


ModelArg = Annotated[str, typer.Argument(
    help="A spec path (.yaml), a zoo name (vgg16), a family alias (vgg), or a torch module "
    "reference: pkg.mod:attr, path/to/file.py:attr, torchvision:NAME. Loading a module "
    "reference RUNS ITS CODE (see docs/torch.md).", show_default=False)]
InputOpt = Annotated[str | None, typer.Option(
    "--input", "-i", help="Input without batch: CxHxW, HxW or a square size. Several, "
    "comma-separated (224,320,448), give a sweep.", show_default="the spec's input")]
InputsOpt = Annotated[list[str] | None, typer.Option(
    "--input", "-i", help="Input without batch: CxHxW, HxW or a square size (CxTxHxW for "
    "video, CxL for 1-D). Several, comma-separated (224,320,448), give a sweep. A module "
    "whose forward takes several tensors (RAFT's two frames) takes --input once per "
    "tensor.", show_default="the spec's input")]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
DepthOpt = Annotated[str | None, typer.Option(
    "--depth", "-d", help="Fold layers into blocks N name levels deep (tables, CSV and "
    "Markdown; JSON always lists every layer), or 'all' for every layer.",
    show_default="a table longer than 60 rows folds to the deepest level that fits")]


def parse_depth(text: str | None) -> int | str | None:
    """--depth: a positive int, 'all', or None (not given: tables fold to fit)."""
    if text is None or text == "all":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise UsageError(f"--depth takes a positive integer or 'all', got '{text}'")
DtypeOpt = Annotated[Dtype, typer.Option("--dtype", help="Element type for activation bytes.")]
NoColorOpt = Annotated[bool, typer.Option(
    "--no-color", help="No colour (NO_COLOR is honoured too).")]
MinInputOpt = Annotated[bool, typer.Option(
    "--min-input", help="Also report the smallest square input every layer accepts (stderr).")]
KwargsOpt = Annotated[str | None, typer.Option(
    "--kwargs", help="JSON object of arguments for a module reference's class or factory, "
    "e.g. '{\"num_classes\": 10}' (runs the user's code).", show_default=False)]
CrosscheckOpt = Annotated[bool, typer.Option(
    "--crosscheck", help="Also count with fvcore and torch's FlopCounterMode, per operator, "
    "and explain each difference (imports torch).")]
StrictOpt = Annotated[bool, typer.Option(
    "--strict", help="Exit 3 when any layer kind could not be counted.")]
RegionsOpt = Annotated[int | None, typer.Option(
    "--regions", min=1, help="Regions per image for a detection spec's per-region part "
    "(R-CNN's 2000 proposals, ...): its cost is multiplied by N; for a torchvision R-CNN, "
    "the proposals its box head runs on (docs/detection.md).",
    show_default=False)]
ProposalsOpt = Annotated[int | None, typer.Option(
    "--proposals", min=1, help="Same as --regions (Faster R-CNN's word for them).",
    show_default=False)]
