"""PhotoMatte85 (Lin et al., BackgroundMattingV2, 2021): 85 RGBA portrait PNGs.

Layout (as the reference code reads it)::

    PhotoMatte85/rgba_image/*.png     (or the PNGs directly in the root)
    PhotoMatte85/background/*.jpg     (or ``background_dir=``)

Pairing is deterministic: portraits and backgrounds are sorted by name and portrait i
gets background ``i mod len(backgrounds)`` (the reference zips the two sorted lists, which
is the same when there are at least as many backgrounds). Each background is cropped to
the portrait's aspect ratio from its left edge (full height), resized bilinearly to the
portrait's size, and composited ``I = floor(255 (F a + B (1 - a)))`` in float32, as the
reference does. Trimaps: ``trimap/`` in the root if present, else generated and cached.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lpmatte.data.datasets.base import MattingDataset
from lpmatte.data.datasets.files import files_by_stem, require_dir
from lpmatte.data.datasets.sample import MattingSample, SampleFiles
from lpmatte.data.datasets.trimap import TrimapCache
from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import open_image


def fit_background(background: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 HbxWbx3 -> uint8 height x width x 3: left crop to the aspect ratio, then resize."""
    crop_width = int(background.shape[0] * width / height)
    cropped = np.ascontiguousarray(background[:, :crop_width])
    return cv2.resize(cropped, (width, height), interpolation=cv2.INTER_LINEAR)


def composite_8bit(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``floor(255 (F a + B (1 - a)))`` of uint8 RGBA and uint8 RGB, computed in float32."""
    alpha = rgba[..., 3:].astype(np.float32) / 255
    fg = rgba[..., :3].astype(np.float32) / 255
    bg = background.astype(np.float32) / 255
    return (255 * (fg * alpha + bg * (1 - alpha))).astype(np.uint8)


def read_rgba(path: Path) -> np.ndarray:
    """uint8 HxWx4 of an RGBA portrait; an error naming the file if it has no alpha."""
    image = open_image(path)
    if "A" not in image.mode and "transparency" not in image.info:
        raise LpmatteError(f"{path}: not an RGBA portrait (mode {image.mode}, no alpha channel)")
    return np.asarray(image.convert("RGBA"))


class PhotoMatte85(MattingDataset):
    """PhotoMatte85 portraits composited onto backgrounds (module docstring)."""

    def __init__(self, root: str | Path, background_dir: str | Path | None = None,
                 trimap_cache: str | Path | None = None):
        self.root = Path(root)
        portraits_dir = self.root / "rgba_image"
        if not portraits_dir.is_dir():
            portraits_dir = require_dir(self.root, "PhotoMatte85 RGBA portraits")
        portraits = files_by_stem(portraits_dir, (".png",))
        if not portraits:
            raise LpmatteError(f"{portraits_dir}: no RGBA portrait PNGs found")
        backgrounds_dir = Path(background_dir) if background_dir else self.root / "background"
        if not backgrounds_dir.is_dir():
            raise LpmatteError(f"{backgrounds_dir}: no such folder; PhotoMatte85 needs "
                               "background images there (or pass background_dir)")
        backgrounds = list(files_by_stem(backgrounds_dir).values())
        if not backgrounds:
            raise LpmatteError(f"{backgrounds_dir}: no background images found")
        trimaps = files_by_stem(self.root / "trimap") if (self.root / "trimap").is_dir() else {}
        files = [SampleFiles(stem, path, path, trimap=trimaps.get(stem),
                             bg=backgrounds[i % len(backgrounds)])
                 for i, (stem, path) in enumerate(portraits.items())]
        cache = TrimapCache.for_dataset("photomatte85", self.root, trimap_cache)
        super().__init__(files, cache, f"PhotoMatte85 at {self.root}")

    def load(self, files: SampleFiles) -> MattingSample:
        rgba = read_rgba(files.image)
        height, width = rgba.shape[:2]
        background = np.asarray(open_image(files.bg).convert("RGB"))
        background = fit_background(background, height, width)
        alpha = rgba[..., 3].astype(np.float32) / 255
        return MattingSample(
            name=files.name,
            image=composite_8bit(rgba, background).astype(np.float32) / 255,
            alpha=alpha,
            trimap=self.trimap_of(files, alpha),
            fg=rgba[..., :3].astype(np.float32) / 255,
            bg=background.astype(np.float32) / 255,
        )
