"""The torch modules the benchmark gives every tool (benchmarks/run.py).

`vgg16`, `resnet50`, `densenet121`: the zoo specs built into `nn.Module`s by cnnstat's
builder (the zoo specs match torchvision's networks layer for layer, and torchvision is
not needed; benchmarks/run.py gives the tools the hand-written plain-torch resnet50 and
densenet121 of benchmarks/plain_models.py instead). `wide_vgg`: a 600 M-parameter network
for the memory target. Each is a factory, so `cnnstat params benchmarks/models.py:resnet50`
builds it with its parameters on the meta device, while the other tools call it to get
real weights on the CPU.
"""

from __future__ import annotations

from torch import nn


def _zoo(name: str) -> nn.Module:
    # Imported here so that `wide_vgg`'s runs do not import cnnstat.
    from cnnstat.builder import build_module
    from cnnstat.resolver import load_zoo

    return build_module(load_zoo(name))


def vgg16() -> nn.Module:
    return _zoo("vgg16")


def resnet50() -> nn.Module:
    return _zoo("resnet50")


def densenet121() -> nn.Module:
    return _zoo("densenet121")


# VGG-16's 13 convolutions at twice the width, then two 9216-wide FC layers.
WIDE_STAGES = ((128, 2), (256, 2), (512, 3), (1024, 3), (1024, 3))
WIDE_HIDDEN = 9216


class WideVGG(nn.Module):
    """615,438,952 parameters: 2.3 GiB of fp32 weights, most of them in the FC layers."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 3
        for width, convs in WIDE_STAGES:
            for _ in range(convs):
                blocks += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = width
            blocks.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(7)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * 49, WIDE_HIDDEN), nn.ReLU(inplace=True),
            nn.Linear(WIDE_HIDDEN, WIDE_HIDDEN), nn.ReLU(inplace=True),
            nn.Linear(WIDE_HIDDEN, classes))

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


def wide_vgg() -> nn.Module:
    return WideVGG()


FACTORIES = {"vgg16": vgg16, "resnet50": resnet50, "densenet121": densenet121,
             "wide_vgg": wide_vgg}
