"""Backgrounds for compositing training samples (the paper's background augmentation).

Every source answers ``sample(rng, height, width) -> HxWx3 float32 in [0, 1]``:
:class:`ProceduralBackgrounds` draws gradients, fractal noise and bokeh;
:class:`ImageFolderBackgrounds` random crops of the photos in a folder (BG-20K for real
users, Debian wallpapers here, see ``scripts/fetch_backgrounds.sh``); :class:`MixedBackgrounds`
picks one of several sources.
Smooth patterns are drawn on a coarse grid and upsampled, which keeps them cheap.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from lpmatte.errors import LpmatteError


class BackgroundSource(Protocol):
    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A background HxWx3 float32 in [0, 1]."""


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """A colour (3,) float32 in [0, 1], uniform in HSV so that greys and vivid hues both occur."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0, 255), rng.uniform(20, 255)]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255


def _ramp(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """t (h, w) in [0, 1] -> blend of two random colours, (h, w, 3)."""
    start, end = random_colour(rng), random_colour(rng)
    return start + np.clip(t, 0, 1)[..., None] * (end - start)


COARSE = 64  # side of the grid smooth patterns are computed on before upsampling


def _upsample(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(image.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def _unit_grid() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:1:complex(0, COARSE), 0:1:complex(0, COARSE)]
    return y.astype(np.float32), x.astype(np.float32)


def linear_gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Two random colours blended along a random direction."""
    angle = rng.uniform(0, 2 * np.pi)
    y, x = _unit_grid()
    t = x * np.cos(angle) + y * np.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    return _upsample(_ramp(t, rng), height, width)


def radial_gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Two random colours blended with the distance from a random centre (a vignette or spot)."""
    cy, cx = rng.uniform(0, 1, 2)
    y, x = _unit_grid()
    t = np.sqrt((y - cy) ** 2 + (x - cx) ** 2) / rng.uniform(0.5, 1.5)
    return _upsample(_ramp(t, rng), height, width)


def fractal_noise(rng: np.random.Generator, height: int, width: int,
                  coarsest: int = 2, persistence: float | None = None) -> np.ndarray:
    """Sum of random colour grids upsampled bicubically, from ``coarsest`` cells across up
    to the pixel grid, each octave weighted ``persistence`` ** octave: clouds when the
    persistence is low, grain when it is high. Normalised to fill [0, 1] per channel."""
    persistence = rng.uniform(0.3, 0.8) if persistence is None else persistence
    total = np.zeros((height, width, 3), np.float32)
    cells, weight = coarsest, 1.0
    while cells <= max(height, width):
        grid = rng.random((max(2, cells * height // max(height, width)),
                           max(2, cells * width // max(height, width)), 3), np.float32)
        total += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        cells, weight = cells * 2, weight * persistence
    low, high = total.min(axis=(0, 1)), total.max(axis=(0, 1))
    return (total - low) / np.maximum(high - low, 1e-6)


def tinted_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Fractal noise mapped between two random colours (a textured wall or foliage), with
    pixel grain half of the time. The fractal part is drawn at a quarter resolution."""
    noise = fractal_noise(rng, max(2, height // 4), max(2, width // 4))
    image = _upsample(_ramp(noise.mean(axis=2), rng) * 0.7 + 0.3 * noise, height, width)
    if rng.random() < 0.5:
        grain = rng.random((height, width, 1), np.float32) - 0.5
        image = np.clip(image + rng.uniform(0.02, 0.15) * grain, 0, 1)
    return image


def bokeh(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Out-of-focus lights: bright discs of random colours over a dark smooth base, blurred."""
    scale = 4  # drawn at a quarter resolution: the blur hides it
    h, w = max(8, height // scale), max(8, width // scale)
    image = fractal_noise(rng, h, w, persistence=0.3) * rng.uniform(0.1, 0.6)
    lights = np.zeros_like(image)
    for _ in range(int(rng.integers(5, 60))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        radius = max(1, int(rng.uniform(0.02, 0.12) * max(h, w)))
        cv2.circle(lights, centre, radius, random_colour(rng).tolist(), -1, cv2.LINE_AA)
        image += lights * rng.uniform(0.2, 0.8)
        lights[:] = 0
    sigma = rng.uniform(0.5, 2.0)
    image = cv2.GaussianBlur(np.clip(image, 0, 1), (0, 0), sigma)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def defocus(image: np.ndarray, rng: np.random.Generator, max_sigma: float = 0.01) -> np.ndarray:
    """Gaussian blur of random strength, sigma up to ``max_sigma`` times the longer side,
    as a shallow depth of field does behind a portrait."""
    sigma = rng.uniform(0, max_sigma) * max(image.shape[:2])
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma >= 0.5 else image


PATTERNS = {"linear": linear_gradient, "radial": radial_gradient, "noise": tinted_noise,
            "bokeh": bokeh}


class ProceduralBackgrounds:
    """Random gradients, noise and bokeh; ``weights`` by pattern name (default equal)."""

    def __init__(self, weights: dict[str, float] | None = None, blur_probability: float = 0.3):
        weights = weights or dict.fromkeys(PATTERNS, 1.0)
        unknown = set(weights) - set(PATTERNS)
        if unknown:
            raise LpmatteError(f"unknown background pattern(s) {sorted(unknown)}; "
                               f"choose from {sorted(PATTERNS)}")
        self.names = list(weights)
        total = sum(weights.values())
        self.probabilities = [weights[name] / total for name in self.names]
        self.blur_probability = blur_probability

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        name = self.names[rng.choice(len(self.names), p=self.probabilities)]
        image = PATTERNS[name](rng, height, width)
        if rng.random() < self.blur_probability:
            image = defocus(image, rng)
        return np.ascontiguousarray(image, np.float32)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Raster images under ``folder`` (recursively), sorted; SVG and the like, and hidden
    files (half-written ``.name.part.png``), are skipped."""
    from lpmatte.media.image_io import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise LpmatteError(f"{folder}: no such folder")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".") and p.is_file())
    if not paths:
        raise LpmatteError(f"{folder}: no images found")
    return paths


def decode_at_least(path: Path, height: int, width: int) -> np.ndarray:
    """Decode ``path`` as uint8 RGB, letting JPEG decode at 1/2, 1/4 or 1/8 scale when
    the result still covers ``height`` x ``width`` (several times faster on large photos)."""
    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("RGB", (width, height))
        return np.asarray(image.convert("RGB"))


def random_crop(image: np.ndarray, rng: np.random.Generator, height: int, width: int,
                min_fraction: float = 0.5) -> np.ndarray:
    """A random crop of the target aspect ratio covering ``min_fraction``..1 of the largest
    one that fits, resized to height x width and flipped left-right half of the time."""
    source_h, source_w = image.shape[:2]
    fit = min(source_h / height, source_w / width) * rng.uniform(min_fraction, 1.0)
    crop_h = max(1, min(source_h, round(height * fit)))
    crop_w = max(1, min(source_w, round(width * fit)))
    top = int(rng.integers(0, source_h - crop_h + 1))
    left = int(rng.integers(0, source_w - crop_w + 1))
    crop = image[top:top + crop_h, left:left + crop_w]
    shrink = crop_h > height
    crop = cv2.resize(crop, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


class ImageFolderBackgrounds:
    """Random crops of the images in a folder (any layout, searched recursively).

    Decoded images are kept in a per-process cache of ``cache_size`` entries, shrunk to
    ``cache_scale`` times the requested size on their longer side (large PNG wallpapers
    take 0.1-0.5 s to decode; a shrunk one is about 1 MB at 512 px crops).
    Unreadable files are skipped (another image is drawn).
    """

    def __init__(self, folder: str | os.PathLike, blur_probability: float = 0.2,
                 cache_size: int = 256, cache_scale: float = 1.5):
        self.paths = list_images(folder)
        self.blur_probability = blur_probability
        self.cache_size, self.cache_scale = cache_size, cache_scale
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int, height: int, width: int) -> np.ndarray:
        """Image ``index`` as uint8 RGB, its longer side at most cache_scale * max(h, w)."""
        side = round(self.cache_scale * max(height, width))
        key = (index, side)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        image = decode_at_least(self.paths[index], side, side)
        scale = side / max(image.shape[:2])
        if scale < 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if self.cache_size:
            self._cache[key] = image
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return image

    def preload(self, height: int, width: int) -> None:
        """Fill the cache (up to ``cache_size`` images) for crops of height x width; done
        before a DataLoader forks its workers, they all start with it."""
        for index in range(min(len(self.paths), self.cache_size)):
            try:
                self.load(index, height, width)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                self._bad.add(index)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        for _ in range(10):
            index = int(rng.integers(len(self.paths)))
            if index in self._bad:
                continue
            try:
                image = self.load(index, height, width)
                break
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                self._bad.add(index)
        else:
            raise LpmatteError(f"{self.paths[0].parent}: could not read background images")
        crop = random_crop(image, rng, height, width).astype(np.float32) / 255
        if rng.random() < self.blur_probability:
            crop = defocus(crop, rng)
        return np.ascontiguousarray(crop)


class MixedBackgrounds:
    """Pick one of several sources per sample, with the given probabilities."""

    def __init__(self, sources: list[BackgroundSource], weights: list[float] | None = None):
        if not sources:
            raise LpmatteError("no background sources given")
        weights = weights or [1.0] * len(sources)
        self.sources = sources
        self.probabilities = np.asarray(weights, np.float64) / sum(weights)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        source = self.sources[rng.choice(len(self.sources), p=self.probabilities)]
        return source.sample(rng, height, width)
