"""Foreground and background colours behind an alpha matte: I = alpha * F + (1 - alpha) * B.

:func:`estimate_foreground_background` wraps pymatting's multilevel estimator
(Germer et al. 2021, ``estimate_foreground_ml``) at full resolution. :func:`estimate_foreground`
is the fast variant for cutouts: the same estimator on a downscaled copy gives smooth
colours F0, B0, then one closed-form step per full-resolution pixel adds back what they
miss of the image (see :func:`match_composite`).
"""

from __future__ import annotations

import cv2
import numpy as np

from lpmatte.errors import LpmatteError


def _check(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image, np.float32)
    alpha = np.asarray(alpha, np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or alpha.shape != image.shape[:2]:
        raise LpmatteError(f"expected an HxWx3 image and HxW alpha, got {image.shape} "
                           f"and {alpha.shape}")
    return np.ascontiguousarray(image), np.ascontiguousarray(alpha)


def estimate_foreground_background(image: np.ndarray, alpha: np.ndarray,
                                   regularization: float = 1e-5,
                                   gradient_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """pymatting's multilevel foreground and background estimation at full resolution.

    Args:
        image: HxWx3 float in [0, 1].
        alpha: HxW float in [0, 1].
    Returns:
        (F, B), each HxWx3 float32 in [0, 1]. The first call in a process compiles
        pymatting's numba kernel (about 5 s unless numba's cache already has it).
    """
    image, alpha = _check(image, alpha)
    try:
        from pymatting import estimate_foreground_ml
    except ImportError as error:  # pragma: no cover - pymatting is a dependency
        raise LpmatteError(f"pymatting is needed for foreground estimation ({error}); "
                           "pip install pymatting") from None
    fg, bg = estimate_foreground_ml(image, alpha, regularization=regularization,
                                    gradient_weight=gradient_weight, return_background=True)
    return fg.astype(np.float32), bg.astype(np.float32)


def match_composite(image: np.ndarray, alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray,
                    smoothness: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Move F and B as little as possible so that alpha * F + (1 - alpha) * B meets I.

    Per pixel, with v = (alpha, 1 - alpha) and residual r = I - (alpha F + (1 - alpha) B),
    the minimiser of |v . (dF, dB) - r|^2 + smoothness * (dF^2 + dB^2) is
    (dF, dB) = v r / (|v|^2 + smoothness). Where alpha = 1 this sets F to the image (B is
    left alone), where alpha = 0 the reverse. Arrays are HxWx3 (alpha HxW) float32; ``fg``
    and ``bg`` are updated in place (clipped to [0, 1]) and returned. Only the mixed pixels
    are computed, through flat indices, which is far faster than boolean masks on 3-D arrays.
    """
    # OpenCV's masked copy: the same values as np.copyto(..., where=) in a third of the time
    # (4.9 vs 14.8 ms for an HD image, two per cutout)
    cv2.copyTo(image, (alpha >= 1).view(np.uint8), fg)
    cv2.copyTo(image, (alpha <= 0).view(np.uint8), bg)
    mixed = np.flatnonzero((alpha > 0) & (alpha < 1))
    flat_fg, flat_bg, flat_image = fg.reshape(-1, 3), bg.reshape(-1, 3), image.reshape(-1, 3)
    a = np.take(alpha.reshape(-1), mixed)[:, None]
    f, b = np.take(flat_fg, mixed, axis=0), np.take(flat_bg, mixed, axis=0)
    residual = np.take(flat_image, mixed, axis=0) - (a * f + (1 - a) * b)
    step = residual / (a * a + (1 - a) * (1 - a) + smoothness)
    flat_fg[mixed] = np.clip(f + a * step, 0, 1)
    flat_bg[mixed] = np.clip(b + (1 - a) * step, 0, 1)
    return fg, bg


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, work_side: int = 512,
                        return_background: bool = False):
    """Fast foreground colours for a cutout: multilevel estimation on a copy at most
    ``work_side`` pixels on its longest side, upsampled, then :func:`match_composite`.

    Args:
        image: HxWx3 float in [0, 1].
        alpha: HxW float in [0, 1].
    Returns:
        F HxWx3 float32 in [0, 1] (and B if ``return_background``).
    """
    image, alpha = _check(image, alpha)
    height, width = alpha.shape
    scale = work_side / max(height, width)
    if scale >= 1.0:
        fg, bg = estimate_foreground_background(image, alpha)
    else:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small_fg, small_bg = estimate_foreground_background(
            cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(alpha, size, interpolation=cv2.INTER_AREA))
        fg = cv2.resize(small_fg, (width, height), interpolation=cv2.INTER_LINEAR)
        bg = cv2.resize(small_bg, (width, height), interpolation=cv2.INTER_LINEAR)
        fg, bg = match_composite(image, alpha, fg, bg)
    return (fg, bg) if return_background else fg
