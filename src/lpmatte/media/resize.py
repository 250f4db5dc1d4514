"""Resizing arrays to an area budget, the one policy benchmarks and validation share."""

from __future__ import annotations

import math

import cv2
import numpy as np


def fit_area(image: np.ndarray, max_area: int | None,
             interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """``image`` (HxW or HxWxC) downscaled, aspect kept, so that H*W <= ``max_area``; the
    same array when it is already small enough (or ``max_area`` is None)."""
    height, width = image.shape[:2]
    if not max_area or height * width <= max_area:
        return image
    scale = math.sqrt(max_area / (height * width))
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return cv2.resize(image, size, interpolation=interpolation)
