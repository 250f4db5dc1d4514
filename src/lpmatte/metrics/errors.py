"""Pixel-wise errors of an alpha matte: SAD, MSE and MAD.

All take float alphas in [0, 1] (computed in float64) and an optional boolean region.
The DIM protocol uses the region ``trimap == 128`` for its -T variants; the P3M protocol's
-T variants are different and live in :func:`p3m_trimap_errors`.
"""

from __future__ import annotations

import numpy as np

from lpmatte.metrics.quantize import unit_float64


def _in_region(values: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    return values if region is None else values[region]


def sad(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None) -> float:
    """Sum of absolute differences in thousands: ``sum_{i in R} |p_i - a_i| / 1000``.

    Args:
        pred, gt: alpha mattes HxW in [0, 1] (uint8/uint16 are scaled to [0, 1]).
        region: optional bool HxW region R; the whole image when None.
    Returns:
        SAD (unit: thousands of fully wrong pixels).
    """
    diff = np.abs(unit_float64(pred) - unit_float64(gt))
    return float(_in_region(diff, region).sum() / 1000.0)


def mse(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean squared error ``mean_{i in R} (p_i - a_i)^2`` with alphas in [0, 1] (not scaled).

    NaN when the region is empty (the DIM code divides 0 by 0 there too).
    """
    diff = unit_float64(pred) - unit_float64(gt)
    values = _in_region(diff * diff, region)
    return float(values.mean()) if values.size else float("nan")


def mad(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean absolute difference ``mean_{i in R} |p_i - a_i|`` with alphas in [0, 1].

    NaN when the region is empty.
    """
    values = _in_region(np.abs(unit_float64(pred) - unit_float64(gt)), region)
    return float(values.mean()) if values.size else float("nan")


def clamp_to_trimap(pred: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """P3M's trimap clamp: prediction forced to 1 where trimap == 255 and 0 where trimap == 0.

    Returns a float64 copy; ``pred`` is not modified.
    """
    clamped = unit_float64(pred).copy()
    clamped[trimap == 255] = 1.0
    clamped[trimap == 0] = 0.0
    return clamped


def p3m_trimap_errors(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    """P3M-Net's trimap errors: SAD-T, MSE-T, MAD-T.

    With ``p'`` the prediction clamped by :func:`clamp_to_trimap` and ``n`` the number of
    pixels with trimap == 128 (sums run over the whole image)::

        SAD-T = sum |p' - a| / 1000,  MSE-T = sum (p' - a)^2 / n,  MAD-T = sum |p' - a| / n

    MSE-T and MAD-T are NaN when the trimap has no unknown pixel.
    """
    diff = clamp_to_trimap(pred, trimap) - unit_float64(gt)
    absolute = np.abs(diff).sum()
    unknown = int(np.count_nonzero(trimap == 128))
    per_pixel = (lambda total: float(total / unknown)) if unknown else (lambda total: float("nan"))
    return {
        "SAD-T": float(absolute / 1000.0),
        "MSE-T": per_pixel((diff * diff).sum()),
        "MAD-T": per_pixel(absolute),
    }
