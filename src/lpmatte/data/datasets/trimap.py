"""Evaluation trimaps: made from the alpha as the reference code does, cached on disk.

PPM-100 and PhotoMatte85 come without trimaps. Following the reference implementation,
``unknown = dilate(alpha > 0) - erode(alpha == 255)`` with a 30 px elliptic kernel, saved
0/128/255. Generated trimaps go to a cache folder, never into the dataset root (which may
be read-only or shared): ``$LPMATTE_CACHE``, else ``$XDG_CACHE_HOME/lpmatte``, else
``~/.cache/lpmatte``, under ``trimaps/<dataset>-<hash of its root>-k<kernel>/``. Pass
``trimap_cache=root / "trimap"`` to a dataset to write them next to the data instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import load_alpha, save_png
from lpmatte.metrics.quantize import to_8bit
from lpmatte.paths import cache_dir
from lpmatte.trimap import BACKGROUND, FOREGROUND, TRIMAP_VALUES, UNKNOWN

EVAL_KERNEL = 30


def generate_trimap(alpha: np.ndarray, kernel_size: int = EVAL_KERNEL) -> np.ndarray:
    """Trimap uint8 HxW (0/128/255) of an alpha matte (uint8, or float in [0, 1]).

    ``fg = erode(alpha == 255)``, ``unknown = dilate(alpha > 0) - fg``, both with an elliptic
    ``kernel_size`` structuring element (OpenCV's, borders do not erode); 8-bit values.
    """
    alpha8 = to_8bit(alpha)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    maybe_fg = cv2.dilate((alpha8 > 0).astype(np.uint8), kernel)
    sure_fg = cv2.erode((alpha8 == 255).astype(np.uint8), kernel)
    trimap = np.zeros(alpha8.shape, np.uint8)
    trimap[maybe_fg > 0] = TRIMAP_VALUES[UNKNOWN]
    trimap[sure_fg > 0] = TRIMAP_VALUES[FOREGROUND]
    return trimap


def trimap_classes(trimap: np.ndarray) -> np.ndarray:
    """A 0/128/255 trimap -> uint8 class indices BACKGROUND / UNKNOWN / FOREGROUND."""
    classes = np.full(trimap.shape, BACKGROUND, np.uint8)
    classes[trimap == TRIMAP_VALUES[UNKNOWN]] = UNKNOWN
    classes[trimap == TRIMAP_VALUES[FOREGROUND]] = FOREGROUND
    return classes


def load_trimap(path: str | Path) -> np.ndarray:
    """A trimap file -> uint8 HxW; an error naming the file unless its values are 0/128/255."""
    trimap = to_8bit(load_alpha(path))
    counts = np.bincount(trimap.ravel(), minlength=256)
    counts[list(TRIMAP_VALUES)] = 0
    if counts.any():
        values = np.flatnonzero(counts)[:5].tolist()
        raise LpmatteError(f"{path}: not a 0/128/255 trimap (also holds values {values})")
    return trimap


class TrimapCache:
    """Generated trimaps of one dataset, as ``<folder>/<name>.png``.

    A cached trimap older than its alpha file is regenerated; files are written atomically,
    so an interrupted run never leaves a truncated trimap.
    """

    def __init__(self, folder: str | Path, kernel_size: int = EVAL_KERNEL):
        self.folder = Path(folder)
        self.kernel_size = kernel_size

    @classmethod
    def for_dataset(cls, kind: str, root: Path, folder: str | Path | None = None,
                    kernel_size: int = EVAL_KERNEL) -> TrimapCache:
        """The cache of dataset ``kind`` at ``root``: ``folder`` if given, else the default."""
        if folder is None:
            digest = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:12]
            folder = cache_dir() / "trimaps" / f"{kind}-{digest}-k{kernel_size}"
        return cls(folder, kernel_size)

    def get(self, name: str, alpha: np.ndarray, alpha_path: Path | None = None) -> np.ndarray:
        """The trimap of sample ``name``, read from the cache or generated from ``alpha``."""
        path = self.folder / f"{name}.png"
        fresh = path.is_file() and (alpha_path is None
                                    or path.stat().st_mtime >= Path(alpha_path).stat().st_mtime)
        if fresh:
            trimap = load_trimap(path)
            if trimap.shape == alpha.shape:
                return trimap
        trimap = generate_trimap(alpha, self.kernel_size)
        try:
            save_png(path, trimap)
        except OSError as error:
            raise LpmatteError(f"{self.folder}: cannot write the trimap cache ({error}); "
                               "set LPMATTE_CACHE to a writable folder") from None
        return trimap
