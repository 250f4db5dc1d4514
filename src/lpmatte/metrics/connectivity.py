"""Connectivity error (Conn): penalises matte pieces cut off from the main body.

For thresholds ``t_k = k / 10`` (k = 1..10), the largest 4-connected component of
``(p >= t_k) & (a >= t_k)`` is found. A pixel that is outside it and not yet assigned gets
the level ``l = t_(k-1)``; pixels never assigned get ``l = 1``. With ``d = alpha - l`` and
``phi = 1 - d * [d >= 0.15]``, the error is ``sum_{i in R} |phi_p - phi_a| / 1000``.

The component is of the intersection's True pixels only: the background is never a
candidate (a common port bug labels it and lets it win).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lpmatte.metrics.quantize import to_8bit, to_float32

FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
STEPS = 10


def largest_component(mask: np.ndarray, column_major: bool = False) -> np.ndarray:
    """Largest 4-connected component of the True pixels of a bool HxW mask.

    Ties go to the component met first in scan order: row-major like ``skimage.measure.label``
    (P3M), or column-major like MATLAB ``bwconncomp`` (DIM). An all-False mask gives all-False.
    """
    labels, count = ndimage.label(mask, structure=FOUR_CONNECTED)
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0  # label 0 is the background, never a component
    if column_major and np.count_nonzero(sizes == sizes.max()) > 1:
        return largest_component(mask.T, column_major=False).T  # tie: scan order decides
    return labels == int(np.argmax(sizes))


def level_indices(intersection, skip_empty: bool, column_major: bool,
                  shape: tuple[int, int]) -> np.ndarray:
    """Index ``j`` of each pixel's level ``l = t_j`` (uint8 HxW, 0..10; ``t_10 = 1``).

    Args:
        intersection: callable ``k -> (p >= t_k) & (a >= t_k)`` (bool HxW), k = 1..10.
        skip_empty: P3M skips a threshold whose intersection is empty; DIM assigns then.
        column_major: tie-breaking order of :func:`largest_component`.

    A pixel still waiting after step k has ``j >= k``, so counting the steps it waited gives
    ``j`` directly: assigned at step k means ``j = k - 1``, never assigned means ``j = 10``.
    """
    waiting = np.ones(shape, dtype=bool)
    index = np.zeros(shape, dtype=np.uint8)
    for k in range(1, STEPS + 1):
        mask = intersection(k)
        if not (skip_empty and not mask.any()):
            waiting &= largest_component(mask, column_major)
        if not waiting.any():
            break
        index += waiting
    return index


def phi(alpha: np.ndarray, level: np.ndarray) -> np.ndarray:
    """``phi = 1 - d * [d >= 0.15]`` with ``d = alpha - level`` (same dtype as the inputs)."""
    d = alpha - level
    return 1 - d * (d >= 0.15)


def dim_connectivity_error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-pixel DIM ``|phi_p - phi_a|`` (float64 HxW) for 8-bit (or [0, 1] float) alphas.

    Thresholds are compared exactly on 8-bit values, ``10 v >= 255 k``, so 153 counts as
    >= 0.6 as it does in the MATLAB code's single precision. Ties between largest
    components go to the first in column-major order, as MATLAB's ``bwconncomp`` + ``max``.
    """
    pred8, gt8 = to_8bit(pred), to_8bit(gt)
    smallest = [(255 * k + 9) // 10 for k in range(STEPS + 1)]  # min v with 10 v >= 255 k
    index = level_indices(lambda k: (pred8 >= smallest[k]) & (gt8 >= smallest[k]),
                          skip_empty=False, column_major=True, shape=pred8.shape)
    # phi depends only on (8-bit value, level index): look it up in a 256 x 11 table.
    table = phi(np.arange(256)[:, None] / 255.0, np.arange(STEPS + 1)[None, :] / STEPS)
    return np.abs(table[pred8, index] - table[gt8, index])


def conn_error_dim(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None) -> float:
    """DIM connectivity error ``sum_{i in R} |phi_p - phi_a| / 1000`` (see module docstring).

    Args:
        pred, gt: alpha mattes HxW, uint8 (floats in [0, 1] are rounded to 8 bits first).
        region: optional bool HxW (DIM: trimap == 128); whole image when None.
    """
    error = dim_connectivity_error_map(pred, gt)
    return float((error if region is None else error[region]).sum() / 1000.0)


def conn_error_p3m(pred: np.ndarray, gt: np.ndarray) -> float:
    """P3M connectivity error over the whole image (``compute_connectivity_loss_whole_image``).

    Alphas are float32 in [0, 1] compared with float64 thresholds ``np.arange(0, 1.1, 0.1)``
    (float32 keeps 153/255 >= 0.6); an empty intersection is skipped; phi in float32.
    """
    pred32, gt32 = to_float32(pred), to_float32(gt)
    thresholds = np.arange(0, 1.1, 0.1)
    index = level_indices(lambda k: (pred32 >= thresholds[k]) & (gt32 >= thresholds[k]),
                          skip_empty=True, column_major=False, shape=pred32.shape)
    level = thresholds.astype(np.float32)[index]
    error = np.abs(phi(pred32, level) - phi(gt32, level))
    return float(error.sum(dtype=np.float64) / 1000.0)
