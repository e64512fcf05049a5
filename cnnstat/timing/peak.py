"""What the device can do: achievable FLOP/s and memory bandwidth, measured on the spot.

- Peak FLOP/s: a short, large square matmul in the timing dtype (2·n³ FLOPs per
  product), grown until one product takes long enough to time well. This is the
  denominator of MFU: what this machine, this torch and this dtype reach now.
- Bandwidth: a large device-to-device copy (each byte read once and written once).
- Spec sheets: for recognised NVIDIA GPUs, the vendor's dense (no sparsity) peaks, shown
  beside the measured ones. A MIG slice has a fraction of the SMs: no spec applies.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from cnnstat.timing.measure import (
    DTYPES,
    OnProgress,
    make_clock,
    sample,
    warm_up,
)

MATMUL_START_N = 256
MATMUL_MAX_N = {"cpu": 2048, "mps": 4096, "cuda": 8192}
MATMUL_TARGET_MS = 20.0  # one product at least this long: timer noise is negligible
COPY_BYTES = {"cpu": 128 * 2**20, "mps": 512 * 2**20, "cuda": 1024 * 2**20}
CALIBRATION_S = 0.3


@dataclass(frozen=True, slots=True)
class SpecSheet:
    """Dense peaks in TFLOP/s (None where the chip has no such path) and TB/s."""

    name: str
    fp32: float
    tf32: float | None
    fp16: float | None
    bf16: float | None
    bandwidth_tb_s: float


# NVIDIA data sheets, dense (the sparse figures are twice these). fp16/bf16: tensor cores
# with fp32 accumulation. Matched in order against torch.cuda.get_device_name().
SPEC_SHEETS: tuple[tuple[str, SpecSheet], ...] = (
    (r"H200 NVL", SpecSheet("NVIDIA H200 NVL", 60.0, 417.5, 835.0, 835.0, 4.8)),
    (r"H200", SpecSheet("NVIDIA H200 SXM", 66.9, 494.7, 989.4, 989.4, 4.8)),
    (r"H100 NVL", SpecSheet("NVIDIA H100 NVL", 60.0, 417.5, 835.0, 835.0, 3.9)),
    (r"H100 PCIe", SpecSheet("NVIDIA H100 PCIe", 51.2, 378.0, 756.0, 756.0, 2.0)),
    (r"H100", SpecSheet("NVIDIA H100 SXM", 66.9, 494.7, 989.4, 989.4, 3.35)),
    (r"A100.*SXM4?-80GB", SpecSheet("NVIDIA A100 SXM 80GB", 19.5, 156.0, 312.0, 312.0, 2.039)),
    (r"A100 80GB PCIe", SpecSheet("NVIDIA A100 PCIe 80GB", 19.5, 156.0, 312.0, 312.0, 1.935)),
    (r"A100", SpecSheet("NVIDIA A100 40GB", 19.5, 156.0, 312.0, 312.0, 1.555)),
    (r"L40S", SpecSheet("NVIDIA L40S", 91.6, 183.0, 362.0, 362.0, 0.864)),
    (r"\bL4\b", SpecSheet("NVIDIA L4", 30.3, 60.0, 121.0, 121.0, 0.3)),
    (r"\bA10\b", SpecSheet("NVIDIA A10", 31.2, 62.5, 125.0, 125.0, 0.6)),
    (r"V100.*PCIE", SpecSheet("NVIDIA V100 PCIe", 14.0, None, 112.0, None, 0.9)),
    (r"V100", SpecSheet("NVIDIA V100 SXM2", 15.7, None, 125.0, None, 0.9)),
    (r"\bT4\b", SpecSheet("NVIDIA T4", 8.1, None, 65.0, None, 0.32)),
    (r"RTX 4090", SpecSheet("NVIDIA GeForce RTX 4090", 82.6, 82.6, 165.2, 165.2, 1.008)),
    (r"RTX 3090", SpecSheet("NVIDIA GeForce RTX 3090", 35.6, 35.6, 71.0, 71.0, 0.936)),
)


def spec_sheet(name: str) -> SpecSheet | None:
    """The data-sheet entry for a CUDA device name, or None (unknown, or a MIG slice)."""
    if "MIG" in name:
        return None
    for pattern, sheet in SPEC_SHEETS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return sheet
    return None


def spec_flops_per_s(sheet: SpecSheet | None, math_mode: str) -> float | None:
    value = None if sheet is None else getattr(sheet, math_mode, None)
    return None if value is None else value * 1e12


@dataclass(frozen=True, slots=True, kw_only=True)
class Peak:
    """Measured peaks (median of timed runs), with the spec sheet where one applies."""

    matmul_flops_per_s: float
    matmul_n: int
    math_mode: str  # fp32 | tf32 | fp16 | bf16: what the matmul (and the model) ran in
    bandwidth_bytes_per_s: float
    copy_bytes: int
    spec: SpecSheet | None = None

    @property
    def spec_flops_per_s(self) -> float | None:
        return spec_flops_per_s(self.spec, self.math_mode)

    @property
    def spec_bandwidth_bytes_per_s(self) -> float | None:
        return None if self.spec is None else self.spec.bandwidth_tb_s * 1e12

    @property
    def ridge_flops_per_byte(self) -> float:
        """Roofline ridge point: below it a kernel cannot reach peak FLOP/s."""
        return self.matmul_flops_per_s / self.bandwidth_bytes_per_s

    def to_dict(self) -> dict[str, Any]:
        spec = None if self.spec is None else {
            "name": self.spec.name, "flops_per_s": self.spec_flops_per_s,
            "bandwidth_bytes_per_s": self.spec_bandwidth_bytes_per_s}
        return {"matmul_flops_per_s": self.matmul_flops_per_s, "matmul_n": self.matmul_n,
                "math_mode": self.math_mode,
                "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
                "copy_bytes": self.copy_bytes,
                "ridge_flops_per_byte": self.ridge_flops_per_byte, "spec_sheet": spec}


def matmul_flops(n: int) -> int:
    """An n x n by n x n product: n·n output elements, n multiply-adds each, 2 FLOPs each."""
    return 2 * n * n * n


def math_mode(device: torch.device, dtype: str) -> str:
    """fp32 convs on CUDA run on TF32 tensor cores when cuDNN allows it (torch's default),
    so the fp32 calibration must too, or MFU would exceed 100%."""
    if dtype == "fp32" and device.type == "cuda" and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return dtype


@contextlib.contextmanager
def _matmul_tf32(enabled: bool) -> Iterator[None]:
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def measure_matmul(device: torch.device, dtype: str, *, max_n: int | None = None,
                   min_time_s: float = CALIBRATION_S,
                   on_progress: OnProgress | None = None) -> tuple[float, int, str]:
    """(FLOP/s, n, math mode) of the median n x n matmul in `dtype` on `device`."""
    mode = math_mode(device, dtype)
    limit = max_n or MATMUL_MAX_N.get(device.type, 2048)
    clock = make_clock(device)
    n = min(MATMUL_START_N, limit)
    with _matmul_tf32(mode == "tf32") if device.type == "cuda" else contextlib.nullcontext():
        while True:
            a = torch.randn(n, n, device=device).to(DTYPES[dtype])
            b = torch.randn(n, n, device=device).to(DTYPES[dtype])
            one_ms = min(clock(lambda a=a, b=b: a @ b) for _ in range(2))
            if one_ms >= MATMUL_TARGET_MS or n * 2 > limit:
                break
            n *= 2
        with torch.inference_mode():
            run = lambda: clock(lambda: a @ b)  # noqa: E731
            warm_up(run, 2)
            stats = sample(run, None, min_time_s, on_progress, f"peak: {n}x{n} {mode} matmul")
    return matmul_flops(n) / (stats.median_ms / 1e3), n, mode


def measure_bandwidth(device: torch.device, *, copy_bytes: int | None = None,
                      min_time_s: float = CALIBRATION_S,
                      on_progress: OnProgress | None = None) -> tuple[float, int]:
    """(bytes/s, bytes copied) of the median large copy: 2 x bytes moved per copy."""
    size = copy_bytes or COPY_BYTES.get(device.type, COPY_BYTES["cpu"])
    src = torch.empty(size, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    clock = make_clock(device)
    run = lambda: clock(lambda: dst.copy_(src))  # noqa: E731
    warm_up(run, 2)
    stats = sample(run, None, min_time_s, on_progress, "peak: memory copy")
    return 2 * size / (stats.median_ms / 1e3), size


def measure_peak(device: torch.device, dtype: str, *, max_n: int | None = None,
                 copy_bytes: int | None = None, min_time_s: float = CALIBRATION_S,
                 on_progress: OnProgress | None = None) -> Peak:
    """Measure both peaks now (about a second), in the same dtype as the model's run."""
    flops_per_s, n, mode = measure_matmul(device, dtype, max_n=max_n, min_time_s=min_time_s,
                                          on_progress=on_progress)
    bandwidth, size = measure_bandwidth(device, copy_bytes=copy_bytes, min_time_s=min_time_s,
                                        on_progress=on_progress)
    sheet = spec_sheet(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    return Peak(matmul_flops_per_s=flops_per_s, matmul_n=n, math_mode=mode,
                bandwidth_bytes_per_s=bandwidth, copy_bytes=size, spec=sheet)
