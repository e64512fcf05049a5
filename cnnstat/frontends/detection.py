"""torchvision's detectors (GeneralizedRCNN: Faster / Mask / Keypoint R-CNN; RetinaNet,
FCOS, SSD) -> the network their eval forward runs, as one traceable module.

Their `forward` takes a list of images and does work that is data, not network: resizing
(GeneralizedRCNNTransform), anchors, box decoding, NMS, pasting masks. torch counts none
of it (FlopCounterMode counts convolutions and matmuls), and none of it can run on meta
tensors. So the model's own transform is run once on a zero image of the user's size to
learn the tensor the backbone sees, and a stand-in module is traced at that size. It holds
the model's own submodules under their own names (`backbone.body.layer1.0.conv1`,
`rpn.head.conv.0.0`, `roi_heads.box_head.fc6`), so parameters and names are the model's:

    backbone -> [features] -> rpn.head                      (two-stage: R-CNN family)
                            -> roi_heads.box_roi_pool (R regions) -> box_head -> box_predictor
                            -> roi_heads.mask_roi_pool (D regions) -> mask_head -> mask_predictor
    backbone -> [features] -> head                           (dense: RetinaNet, FCOS, SSD)

R is the RPN's eval proposal count (`rpn.post_nms_top_n()` in eval), D the detections kept
per image (`roi_heads.detections_per_img`), both read from the model; `regions` overrides R.
MultiScaleRoIAlign becomes an `roi_align` layer on the first feature map with R (or D)
regions: its output has the same size whichever level each box is pooled from
(docs/detection.md).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from torch import nn

from cnnstat.errors import AnalysisError, Location, UsageError
from cnnstat.frontends.converters import register_module
from cnnstat.ir import layers as L

TWO_STAGE = (("backbone", "backbone.body"), ("FPN", "backbone.fpn"), ("RPN", "rpn"),
             ("RoI heads", "roi_heads"))
WITH_FPN = (("backbone", "backbone.body"), ("FPN", "backbone.fpn"), ("head", "head"))
PLAIN = (("backbone", "backbone"), ("head", "head"))
# The per-region heads of GeneralizedRCNN's RoIHeads: (pool, head, predictor).
_HEADS = (("box_roi_pool", "box_head", "box_predictor"),
          ("mask_roi_pool", "mask_head", "mask_predictor"),
          ("keypoint_roi_pool", "keypoint_head", "keypoint_predictor"))


@dataclass(frozen=True, slots=True)
class Plan:
    """What to trace for a detector: `module` at `input` (what the backbone sees)."""

    module: nn.Module
    input: tuple[int, ...]
    stages: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]


def kind_of(model: nn.Module) -> str | None:
    """'two_stage', 'dense' or None (not a torchvision detector)."""
    if "torchvision" not in sys.modules:
        return None  # no torchvision imported: the model cannot be one of its detectors
    try:
        from torchvision.models.detection.fcos import FCOS
        from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
        from torchvision.models.detection.retinanet import RetinaNet
        from torchvision.models.detection.ssd import SSD
    except ImportError:
        return None
    if isinstance(model, GeneralizedRCNN):
        return "two_stage"
    return "dense" if isinstance(model, RetinaNet | FCOS | SSD) else None


def default_image(model: nn.Module) -> tuple[int, int, int]:
    """An image the transform keeps as it is: its fixed size (SSD300), else its
    eval min_size square (800 for Faster R-CNN)."""
    transform = model.transform
    if transform.fixed_size is not None:
        width, height = transform.fixed_size
        return (3, height, width)
    side = transform.min_size[-1]
    return (3, side, side)


def plan(model: nn.Module, image: tuple[int, ...], regions: int | None = None,
         source: str = "") -> Plan:
    """The stand-in for `model`'s network at `image` (CxHxW, the image handed to forward)."""
    if len(image) != 3:
        raise UsageError(f"a detector takes one CxHxW image size, got {list(image)}")
    try:
        return _plan(model, image, regions, source)
    except AttributeError as e:  # a subclass that moved or renamed torchvision's parts
        raise AnalysisError(f"{type(model).__name__} does not have torchvision's detector "
                            f"layout ({e})", Location(source)) from e


def _plan(model: nn.Module, image: tuple[int, ...], regions: int | None, source: str) -> Plan:
    try:
        seen = backbone_input(model, image)
    except RuntimeError as e:  # the transform's own checks (3 channel means, ...)
        raise AnalysisError(f"the model's transform refused a {_text(image)} image: "
                            f"{str(e).splitlines()[0]}", Location(source)) from e
    notes = [f"{type(model.transform).__name__} turns the {_text(image)} image into "
             f"{_text(seen)} (resized, then padded to a multiple of "
             f"{model.transform.size_divisible}): the counts are those of the backbone's "
             f"{_text(seen)} input"]
    if kind_of(model) == "dense":
        stages = WITH_FPN if _has_fpn(model) else PLAIN
        notes.append("anchors, box decoding and NMS are not network layers: not counted "
                     "(torch's FlopCounterMode counts none of them either)")
        return Plan(_Dense(model), seen, stages, tuple(notes))
    return _two_stage(model, seen, regions, notes)


def _two_stage(model: nn.Module, seen: tuple[int, ...], regions: int | None,
               notes: list[str]) -> Plan:
    proposals = regions or model.rpn._post_nms_top_n["testing"]
    detections = model.roi_heads.detections_per_img
    if regions is not None:
        classes = _classes(model)
        detections = min(detections, regions * max(classes - 1, 1))
    heads = [h for h in _HEADS if getattr(model.roi_heads, h[1], None) is not None]
    counts = {"box_roi_pool": proposals, "mask_roi_pool": detections,
              "keypoint_roi_pool": detections}
    runs = [f"roi_heads.box_head on {proposals} proposals "
            f"({'--regions' if regions else 'rpn.post_nms_top_n at eval'})"]
    runs += [f"roi_heads.{head} on {detections} detections (roi_heads.detections_per_img)"
             for _, head, _ in heads[1:]]
    notes.append(f"per-region heads: {'; '.join(runs)}. Anchors, box decoding, NMS and "
                 "mask pasting are not network layers: not counted")
    if getattr(model.rpn, "score_thresh", 0.0) > 0 and regions is None:
        notes.append(f"rpn.score_thresh is {model.rpn.score_thresh}: on real images fewer "
                     f"than {proposals} proposals may pass it, so the RoI heads' count is an "
                     "upper bound (--regions N counts N)")
    module = _TwoStage(model, {pool: counts[pool] for pool, _, _ in heads}, seen)
    return Plan(module, seen, TWO_STAGE, tuple(notes))


def backbone_input(model: nn.Module, image: tuple[int, ...]) -> tuple[int, ...]:
    """The size of `images.tensors` after the model's own transform (resize and pad)."""
    transform = model.transform
    was_training = transform.training
    transform.eval()
    try:
        with torch.no_grad():
            batch, _ = transform([torch.zeros(image)])
    finally:
        transform.train(was_training)
    return tuple(batch.tensors.shape[1:])


def _classes(model: nn.Module) -> int:
    predictor = model.roi_heads.box_predictor
    score = getattr(predictor, "cls_score", None)
    return score.out_features if isinstance(score, nn.Linear) else 2


def _has_fpn(model: nn.Module) -> bool:
    return hasattr(model.backbone, "fpn") and hasattr(model.backbone, "body")


def _text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


class RegionCut(nn.Module):
    """Stands for MultiScaleRoIAlign: `regions` boxes pooled to `output_size`, taken from
    the first feature map ([1, C, H, W] -> [regions, C, oh, ow])."""

    def __init__(self, pool: nn.Module, regions: int, image: tuple[int, ...]):
        super().__init__()
        size = pool.output_size
        self.output_size = tuple(size) if isinstance(size, list | tuple) else (size, size)
        self.sampling_ratio = pool.sampling_ratio
        self.regions = regions
        self.image_width = image[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_empty(x.shape[0] * self.regions, x.shape[1], *self.output_size)


@register_module(RegionCut)
def _region_cut(module: RegionCut, call) -> L.Layer:
    scale = call.arg(0, "x").shape[-1] / module.image_width
    return L.RoIAlign(output_size=module.output_size, spatial_scale=scale,
                      sampling_ratio=max(module.sampling_ratio, 1), regions=module.regions)


class _Dense(nn.Module):
    """RetinaNet / FCOS / SSD: backbone, then the head on every feature map."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.backbone = model.backbone
        self.head = model.head

    def forward(self, x: torch.Tensor):
        features = self.backbone(x)
        if isinstance(features, torch.Tensor):
            features = {"0": features}
        return self.head(list(features.values()))


class _TwoStage(nn.Module):
    """GeneralizedRCNN: backbone, the RPN head on every feature map, then each RoI head
    on its regions of the first map."""

    def __init__(self, model: nn.Module, regions: dict[str, int], image: tuple[int, ...]):
        super().__init__()
        self.backbone = model.backbone
        self.rpn = nn.Module()
        self.rpn.head = model.rpn.head
        self.roi_heads = nn.Module()
        self._heads = []
        for pool, head, predictor in _HEADS:
            if pool not in regions:
                continue
            source = model.roi_heads
            setattr(self.roi_heads, pool, RegionCut(getattr(source, pool), regions[pool], image))
            setattr(self.roi_heads, head, getattr(source, head))
            setattr(self.roi_heads, predictor, getattr(source, predictor))
            self._heads.append((pool, head, predictor))

    def forward(self, x: torch.Tensor):
        features = self.backbone(x)
        if isinstance(features, torch.Tensor):
            features = {"0": features}
        maps = list(features.values())
        outputs = [self.rpn.head(maps)]
        for pool, head, predictor in self._heads:
            regions = getattr(self.roi_heads, pool)(maps[0])
            outputs.append(getattr(self.roi_heads, predictor)(
                getattr(self.roi_heads, head)(regions)))
        return outputs
