"""A 2015 U-Net written by hand in the spec language (tests/specs/unet_2015.yaml) equals
the network as torch computes it: a module written here from the paper (Ronneberger et
al. 2015, Fig. 1: unpadded 3x3 convs, 2x2 up-convs, centre-cropped skips), checked for
parameters, MACs (FlopCounterMode / 2) and the shape of every layer, at several inputs
(the crop offsets are not typed in the spec, so it must hold at each)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from cnnstat.analyzers import analyze_graph  # noqa: E402
from cnnstat.spec import load_spec  # noqa: E402

SPEC = Path(__file__).parent / "specs" / "unet_2015.yaml"


class PaperUNet(nn.Module):
    """U-Net from the paper's figure; records (kind, shape) of every step it runs."""

    def __init__(self) -> None:
        super().__init__()
        widths = (64, 128, 256, 512, 1024)
        self.encoders = nn.ModuleList(
            self.double(c_in, c) for c_in, c in zip((1, *widths[:-1]), widths, strict=True))
        self.upconvs = nn.ModuleList(nn.ConvTranspose2d(c, c // 2, 2, 2) for c in widths[:0:-1])
        self.decoders = nn.ModuleList(self.double(c, c // 2) for c in widths[:0:-1])
        self.head = nn.Conv2d(64, 2, 1)
        self.trace: list[tuple[str, tuple[int, ...]]] = []

    @staticmethod
    def double(c_in: int, c: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(c_in, c, 3), nn.ReLU(), nn.Conv2d(c, c, 3), nn.ReLU())

    def step(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        self.trace.append((kind, tuple(x.shape)))
        return x

    def run(self, block: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        for layer in block:
            x = self.step("conv2d" if isinstance(layer, nn.Conv2d) else "relu", layer(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for index, encoder in enumerate(self.encoders):
            if index:
                x = self.step("max_pool2d", nn.functional.max_pool2d(x, 2))
            x = self.run(encoder, x)
            skips.append(x)
        for upconv, decoder, skip in zip(self.upconvs, self.decoders, skips[-2::-1],
                                         strict=True):
            x = self.step("conv_transpose2d", upconv(x))
            h, w = x.shape[-2:]
            top, left = (skip.shape[-2] - h) // 2, (skip.shape[-1] - w) // 2
            cropped = self.step("crop", skip[:, :, top:top + h, left:left + w])
            x = self.step("concat", torch.cat([cropped, x], dim=1))
            x = self.run(decoder, x)
        return self.step("conv2d", self.head(x))


@pytest.mark.parametrize("h, w", [(572, 572), (188, 252), (201, 190)])
def test_unet_2015_equals_the_paper_network_in_torch(h: int, w: int) -> None:
    report = analyze_graph(load_spec(SPEC), (1, h, w))
    with torch.device("meta"):
        model = PaperUNet()
        x = torch.empty(1, 1, h, w)
    with FlopCounterMode(display=False) as flops:
        out = model(x)
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.totals.macs == flops.get_total_flops() // 2
    ours = [(layer.kind, tuple(layer.output_shape)) for layer in report.layers]
    assert ours == model.trace
    assert ours[-1][1] == tuple(out.shape)


def test_unet_2015_paper_figures() -> None:
    """The paper's Fig. 1: a 572 x 572 tile gives a 388 x 388 output map."""
    report = analyze_graph(load_spec(SPEC))
    assert tuple(report.layers[-1].output_shape) == (1, 2, 388, 388)
