"""The two resamplings of the two-pass pipeline, fast on the CPU.

The first pass sees the image area-downscaled; the second pass pastes its patches into the
first pass's matte upsampled bilinearly. At HD and 4K PyTorch's own kernels for both were a
quarter of everything between the two networks (one host thread): a float copy of the
whole image only to average it, and a single-plane bilinear upsampling that ran 6-10x
slower than OpenCV's. Both functions compute what ``F.interpolate`` does (area: the same input
windows, summed exactly; bilinear: to within 1e-4) and fall back to it off the CPU.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from lpmatte.model.region_selection import unit_float

# cv2.integral's int32 sums are exact while the whole image's sum fits in an int32
INT32_SUM_LIMIT = 2**31 - 1


def pooling_windows(length: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each of ``size`` windows over ``length`` pixels, as
    adaptive average pooling (``F.interpolate(mode="area")``) takes them: window i covers
    floor(i length / size) .. ceil((i + 1) length / size)."""
    index = np.arange(size, dtype=np.int64)
    return index * length // size, -(-(index + 1) * length // size)


def area_downscale(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 3, H, W) image, uint8 (0..255) or float in [0, 1] -> (B, 3, h, w) float32 in
    [0, 1], each pixel the mean of its input window (:func:`pooling_windows`).

    A uint8 image on the CPU is summed over an integral image (OpenCV) in its own memory
    layout, so no float copy of the full-resolution image is made: at 4K on one thread,
    76 ms of conversion and pooling became 22 ms (12.4 -> 6.9 ms at HD; AMD EPYC)."""
    if image.dtype != torch.uint8 or image.device.type != "cpu":
        return F.interpolate(unit_float(image), size=size, mode="area")
    return torch.stack([_integral_mean(plane, size) for plane in image])


def _integral_mean(plane: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) uint8 -> (3, h, w) float32 window means / 255."""
    pixels = plane.permute(1, 2, 0).numpy()  # H x W x 3; a view when the source was one
    height, width = pixels.shape[:2]
    exact_int32 = 255 * height * width <= INT32_SUM_LIMIT
    sums = cv2.integral(np.ascontiguousarray(pixels),
                        sdepth=cv2.CV_32S if exact_int32 else cv2.CV_64F)
    top, bottom = pooling_windows(height, size[0])
    left, right = pooling_windows(width, size[1])
    rows = sums[bottom] - sums[top]  # rows first: the column gathers then read h rows only
    total = np.take(rows, right, axis=1) - np.take(rows, left, axis=1)
    area = (bottom - top)[:, None, None] * (right - left)[None, :, None] * 255.0
    means = (total / area).astype(np.float32)
    return torch.from_numpy(means).permute(2, 0, 1).contiguous()


def bilinear_upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(x, size, mode="bilinear", align_corners=False)`` for a (B, C, h, w)
    float32 map; on the CPU with OpenCV's resize (the same sampling, half-pixel centres and
    clamped borders; within 1e-4 of PyTorch's result), one plane at a time."""
    height, width = size
    if x.device.type != "cpu" or x.dtype != torch.float32 or max(size) >= 2**15:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    planes = x.detach().reshape(-1, *x.shape[-2:]).numpy()
    out = np.empty((len(planes), height, width), np.float32)
    for plane, target in zip(planes, out):
        cv2.resize(plane, (width, height), dst=target, interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(out).view(*x.shape[:2], height, width)
