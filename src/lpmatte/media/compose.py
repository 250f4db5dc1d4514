"""Turning an alpha matte into deliverables: cutouts, composites, background specs.

>>> parse_color("#00ff00")
(0.0, 1.0, 0.0)
>>> parse_color("white")
(1.0, 1.0, 1.0)
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import ImageColor

from lpmatte.errors import LpmatteError
from lpmatte.media.foreground import estimate_foreground
from lpmatte.media.image_io import load_rgb, to_uint8


def parse_color(spec: str) -> tuple[float, float, float]:
    """A colour name, ``#rrggbb`` or ``r,g,b`` (0-255) -> RGB floats in [0, 1]."""
    text = spec.strip()
    try:
        if "," in text:
            values = [int(v) for v in text.split(",")]
            if len(values) != 3 or not all(0 <= v <= 255 for v in values):
                raise ValueError
            rgb = tuple(values)
        else:
            rgb = ImageColor.getrgb(text)[:3]
    except ValueError:
        raise LpmatteError(f"'{spec}' is neither a colour (name, #rrggbb, r,g,b) "
                           "nor an image file") from None
    return tuple(v / 255.0 for v in rgb)


DEFAULT_BACKGROUND = "#00ff00"  # composites of photos and videos alike


def parse_background(spec: str | os.PathLike | None, default: str = DEFAULT_BACKGROUND):
    """A background spec -> RGB tuple, or a float32 HxWx3 image when ``spec`` is a file."""
    if spec is None:
        return parse_color(default)
    if Path(spec).is_file():
        return load_rgb(spec)
    return parse_color(str(spec))


def cover(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale ``image`` to cover (height, width) keeping its aspect ratio, then centre-crop."""
    if image.shape[:2] == (height, width):
        return image  # already the plate's size: nothing to resample
    scale = max(height / image.shape[0], width / image.shape[1])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, size, interpolation=interpolation)
    top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return resized[top:top + height, left:left + width]


def background_plate(background, height: int, width: int) -> np.ndarray:
    """A float32 HxWx3 plate from an RGB tuple or an image (scaled to cover)."""
    if isinstance(background, np.ndarray):
        return cover(background, height, width).astype(np.float32)
    return np.broadcast_to(np.asarray(background, np.float32), (height, width, 3))


def composite(foreground: np.ndarray, alpha: np.ndarray, background) -> np.ndarray:
    """alpha * F + (1 - alpha) * B, all float32 in [0, 1]; B a colour tuple or an image."""
    plate = background_plate(background, *alpha.shape)
    a = alpha[..., None]
    return foreground * a + plate * (1.0 - a)


def rgba(foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours (HxWx3) and alpha (HxW), float in [0, 1], as one uint8 HxWx4
    image (each converted on its own: no float HxWx4 copy)."""
    return np.concatenate([to_uint8(foreground), to_uint8(alpha)[..., None]], axis=2)


def cutout_image(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 HxWx4: estimated foreground colours of ``image`` (HxWx3, float in [0, 1] or
    uint8) with ``alpha``."""
    return rgba(estimate_foreground(float_rgb(image), alpha), alpha)


def composite_image(image: np.ndarray, alpha: np.ndarray, background) -> np.ndarray:
    """uint8 HxWx3: the estimated foreground of ``image`` (as :func:`cutout_image`'s) over
    ``background`` (a colour tuple or an image): what "composite" means for images, video,
    the API and the CLI."""
    return to_uint8(composite(estimate_foreground(float_rgb(image), alpha), alpha,
                              background))


def float_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 image as float32 in [0, 1]; a float image (already in [0, 1]) as it is."""
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image
