"""Figures for the artefacts a refiner of 8x8 cells can paint, which the standard metrics
(SAD, MSE, Grad, Conn) barely register: dotted or blocky texture where the truth is flat,
and steps at the cell borders.

- :func:`texture_figures`: mean |alpha - box3x3(alpha)| over the pixels where the ground
  truth is flat (0 for a smooth matte), and its part away from the matte's own edges;
- :func:`cell_border_excess`: how much larger the steps between neighbouring pixels are
  across the 8-px cell borders than elsewhere (0 without 8x8 blocks).

Both take float HxW mattes in [0, 1] (numpy) and are what ``benchmarks/validate_default.py``
reports as "texture", "texture off edges" and "blocks".
"""

from __future__ import annotations

import cv2
import numpy as np

FLAT_PX = 5  # a pixel is flat when no ground-truth edge is this close
FLAT_TOLERANCE = 0.02  # ground-truth variation below this is "no edge"
OWN_EDGE_PX = 3  # "texture off edges" leaves out pixels this close to the matte's 0.5 contour


def flat_region(gt: np.ndarray, radius: int = FLAT_PX) -> np.ndarray:
    """Pixels whose (2 radius + 1)^2 neighbourhood of the ground truth is flat."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    gt = gt.astype(np.float32)
    spread = cv2.dilate(gt, kernel) - cv2.erode(gt, kernel)
    return spread < FLAT_TOLERANCE


def own_edges(pred: np.ndarray, radius: int = OWN_EDGE_PX) -> np.ndarray:
    """Pixels within ``radius`` px of the matte's own 0.5 contour."""
    fg = (pred >= 0.5).astype(np.uint8)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(fg, kernel) != cv2.erode(fg, kernel)


def texture_figures(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """``texture``: mean |alpha - box3x3(alpha)| where the ground truth is flat (0 if
    nowhere): dotted or blocky patterns, but also the step of every edge the matte draws
    where the truth has none. ``texture off edges``: the same sum without the pixels near
    the matte's own edges (false blobs, holes, bystanders), over the same count, so it never
    exceeds ``texture``."""
    flat = flat_region(gt)
    if not flat.any():
        return {"texture": 0.0, "texture off edges": 0.0}
    pred = pred.astype(np.float32)
    smooth = cv2.blur(pred, (3, 3), borderType=cv2.BORDER_REFLECT)
    residual, count = np.abs(pred - smooth).astype(np.float64), flat.sum()
    return {"texture": float(residual[flat].sum() / count),
            "texture off edges": float(residual[flat & ~own_edges(pred)].sum() / count)}


def cell_border_excess(pred: np.ndarray, cell: int = 8) -> float:
    """Mean |step| between neighbouring pixels across the ``cell``-px borders minus the mean
    elsewhere, over both axes: 0 for a matte without blocks of that size (JPEG's own 8x8
    blocks give a soft ground truth about 5e-4)."""
    pred = np.asarray(pred)
    across, inside = [], []
    for steps in (np.abs(np.diff(pred, axis=1)), np.abs(np.diff(pred, axis=0)).T):
        on_border = (np.arange(steps.shape[1]) + 1) % cell == 0
        if on_border.any() and (~on_border).any():
            across.append(steps[:, on_border].mean())
            inside.append(steps[:, ~on_border].mean())
    return float(np.mean(across) - np.mean(inside)) if across else 0.0
