"""Training samples: a foreground and its alpha over a new background (or its own), augmented.

One sample, from uint8 sources to float32 S x S tensors:

1. Geometry (paper: flip, crop, affine; reference code: scale 0.5-1.5, shear, aspect ratio,
   thin-plate-spline warp): a single backward map, so each array is resampled once,
   straight into the crop, with ``cv2.remap``. The crop is placed around a random pixel
   of the alpha's soft edge most of the time, so that most crops hold hair or outline.
2. Colour (paper: hue, saturation, brightness) as one 3x3 matrix. These three are linear in
   RGB (hue = rotation about the grey axis), so I = alpha F + (1 - alpha) B still holds.
3. Strong augmentation (Dai's thesis, ch. 5): "AF" and "AFB" augment the foreground and the
   background separately before compositing, so alpha needs no change whatever the
   operation; "AC" augments the composite, kept only for the linear pixel-wise operations
   (applied alike to F, B and I, they keep the matting equation). AC with pseudo-labels
   (non-linear or region operations on the composite) needs the model and is left out.
4. The composite, and the trimap target (7-px ellipse: unknown = dilate(alpha > 0) -
   erode(alpha == 1)).

A sample keeps its original photo as background with ``original_background_probability``
(then only operations that act alike on I, F and B are used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Protocol

import cv2
import numpy as np
import torch

from lpmatte.data.datasets.trimap import generate_trimap, trimap_classes
from lpmatte.errors import LpmatteError

TRIMAP_KERNEL = 7  # px, ellipse (reference code)


@dataclass(frozen=True)
class AugmentConfig:
    """Every knob of the sample pipeline; angles in degrees, lengths relative to the crop."""

    crop_size: int = 896  # the paper's training size
    original_background_probability: float = 0.5
    scale_range: tuple[float, float] = (0.5, 1.5)  # times "short side = crop size"
    aspect_range: tuple[float, float] = (0.8, 1.25)  # width / height stretch
    max_rotation: float = 10.0
    max_shear: float = 0.1
    flip_probability: float = 0.5
    tps_probability: float = 0.5
    tps_strength: float = 0.015  # std of control point moves / crop size
    tps_grid: int = 4  # control points per side
    edge_crop_probability: float = 0.8
    hue_shift: float = 0.05  # turns of the colour wheel, each way
    saturation_range: tuple[float, float] = (0.7, 1.3)
    brightness_range: tuple[float, float] = (0.7, 1.3)
    strong_probability: float = 0.25  # AF, and independently AFB
    composite_probability: float = 0.1  # AC (linear operations only)


# --- sources ---------------------------------------------------------------------------------

@dataclass
class ForegroundItem:
    """What a source gives: uint8 ``fg`` HxWx3 and ``alpha`` HxW, and when asked for the
    original scene, ``image`` and ``bg`` HxWx3 (``bg`` may be None: then the image is used)."""

    fg: np.ndarray
    alpha: np.ndarray
    image: np.ndarray | None = None
    bg: np.ndarray | None = None


class ForegroundSource(Protocol):
    def __len__(self) -> int: ...

    def load_foreground(self, index: int, original: bool) -> ForegroundItem:
        """Item ``index``; with ``original`` also its photo and background colours."""


def _read_rgb8(path) -> np.ndarray:
    """uint8 HxWx3 RGB; PNG through OpenCV (1.6x faster than Pillow for a 600x800 foreground)."""
    from lpmatte.media.image_io import load_rgb, open_image, to_uint8

    if str(path).lower().endswith(".png"):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    image = open_image(path)
    if image.mode in ("RGB", "RGBA", "L", "P", "CMYK", "YCbCr", "LA"):
        return np.asarray(image.convert("RGB"))
    return to_uint8(load_rgb(image))


def _read_alpha8(path) -> np.ndarray:
    from lpmatte.media.image_io import load_alpha, open_image, to_uint8

    image = open_image(path)
    return np.asarray(image) if image.mode == "L" else to_uint8(load_alpha(path))


def _same_size(reference: np.ndarray, array: np.ndarray, path) -> np.ndarray:
    if array.shape[:2] != reference.shape[:2]:
        raise LpmatteError(f"{path}: size {array.shape[1]}x{array.shape[0]} differs from its "
                           f"alpha ({reference.shape[1]}x{reference.shape[0]})")
    return array


class DatasetSource:
    """Adapter from a :mod:`lpmatte.data.datasets` dataset (``ds[i]`` -> MattingSample).

    Datasets that list their files (``ds.files``, :class:`~lpmatte.data.datasets.SampleFiles`)
    are read selectively as uint8: only alpha and foreground for a new background, which
    halves decoding. Without ``fg`` the image stands in for the foreground colours.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def load_foreground(self, index: int, original: bool) -> ForegroundItem:
        files = getattr(self.dataset, "files", None)
        if files is None:
            return self._from_sample(self.dataset[index], original)
        entry = files[index]
        alpha = _read_alpha8(entry.alpha)
        read = lambda path: _same_size(alpha, _read_rgb8(path), path)  # noqa: E731
        fg = read(entry.fg) if entry.fg is not None else None
        image = read(entry.image) if original or fg is None else None
        bg = read(entry.bg) if original and entry.bg is not None else None
        return ForegroundItem(fg if fg is not None else image, alpha, image, bg)

    @staticmethod
    def _from_sample(sample, original: bool) -> ForegroundItem:
        from lpmatte.media.image_io import to_uint8

        image = to_uint8(sample.image)
        fg = to_uint8(sample.fg) if getattr(sample, "fg", None) is not None else image
        bg = to_uint8(sample.bg) if getattr(sample, "bg", None) is not None else None
        return ForegroundItem(fg, to_uint8(sample.alpha), image if original else None,
                              bg if original else None)


# --- geometry --------------------------------------------------------------------------------

def pick_anchor(alpha: np.ndarray, rng: np.random.Generator,
                edge_probability: float) -> tuple[float, float]:
    """(x, y) source pixel to centre the crop on: with ``edge_probability`` a random pixel of
    the soft edge (0 < alpha < 255, searched on a 1/4 grid for speed), else any pixel."""
    height, width = alpha.shape
    if rng.random() < edge_probability:
        step = 4
        coarse = alpha[::step, ::step]
        edge = np.flatnonzero((coarse > 0) & (coarse < 255))
        if len(edge):
            row, col = divmod(int(edge[rng.integers(len(edge))]), coarse.shape[1])
            return col * step + rng.uniform(0, step), row * step + rng.uniform(0, step)
    return rng.uniform(0, width), rng.uniform(0, height)


def random_affine(shape: tuple[int, int], anchor: tuple[float, float], config: AugmentConfig,
                  rng: np.random.Generator, cover: bool = False) -> np.ndarray:
    """2x3 matrix from source pixels to crop pixels.

    Scale is relative to "short side = crop size", times a random factor from
    ``config.scale_range`` (at least 1 when ``cover``), with aspect stretch, shear, rotation
    and flip; the anchor lands at a random point of the middle of the crop. With ``cover``
    the crop is then moved inside the transformed image where it fits (no borders).
    """
    height, width = shape
    size = config.crop_size
    low, high = config.scale_range
    scale = size / min(height, width) * rng.uniform(max(low, 1.0) if cover else low,
                                                    max(high, 1.0) if cover else high)
    aspect = math.exp(rng.uniform(*np.log(config.aspect_range)))
    flip = -1.0 if rng.random() < config.flip_probability else 1.0
    angle = math.radians(rng.uniform(-config.max_rotation, config.max_rotation))
    shear = rng.uniform(-config.max_shear, config.max_shear)
    rotate = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = rotate @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag(
        [flip * scale * math.sqrt(aspect), scale / math.sqrt(aspect)])
    if cover:  # the stretched image must still span the crop
        linear = linear * max(1.0, size / float(_extent(linear, shape).min()))
    target = rng.uniform(0.25 * size, 0.75 * size, 2)
    offset = target - linear @ np.asarray(anchor)
    if cover:
        offset = _keep_inside(linear, offset, shape, size)
    return np.concatenate([linear, offset[:, None]], axis=1)


def _corners(linear: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    return linear @ np.array([[0, width, 0, width], [0, 0, height, height]], float)


def _extent(linear: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(width, height) of the transformed image's bounding box."""
    return np.ptp(_corners(linear, shape), axis=1)


def _keep_inside(linear: np.ndarray, offset: np.ndarray, shape: tuple[int, int],
                 size: int) -> np.ndarray:
    """Shift ``offset`` so that [0, size]^2 lies in the transformed image's bounding box
    (rotation may still leave thin corners outside)."""
    corners = _corners(linear, shape)
    low, high = corners.min(axis=1) + offset, corners.max(axis=1) + offset
    shift = np.clip(0.0, size - high, -low)  # the smallest move into [size - high, -low]
    return offset + shift


def thin_plate_spline_offsets(rng: np.random.Generator, size: int, grid: int = 4,
                              strength: float = 0.015, coarse: int = 32):
    """A smooth random warp of a size x size crop: control points on a ``grid`` x ``grid``
    lattice move by N(0, (strength * size)^2) px; a thin-plate spline
    d(p) = a0 + a1 x + a2 y + sum_i w_i U(|p - c_i|), U(r) = r^2 log r^2, interpolates the
    moves. Evaluated on a ``coarse`` grid and upsampled. Returns (dx, dy) float32 size x size.
    """
    t = np.linspace(0.0, 1.0, grid)
    points = np.stack(np.meshgrid(t, t), -1).reshape(-1, 2)  # (K, 2) as (x, y) in [0, 1]
    moves = rng.normal(0.0, strength * size, points.shape)
    count = len(points)
    system = np.zeros((count + 3, count + 3))
    affine = np.c_[np.ones(count), points]  # (K, 3)
    system[:count, :count] = _tps_kernel(points, points)
    system[:count, count:], system[count:, :count] = affine, affine.T
    weights = np.linalg.solve(system, np.r_[moves, np.zeros((3, 2))])  # (K + 3, 2)
    centres = (np.arange(coarse) + 0.5) / coarse  # where cv2.resize puts coarse pixels
    where = np.stack(np.meshgrid(centres, centres), -1).reshape(-1, 2)
    basis = np.c_[_tps_kernel(where, points), np.ones(len(where)), where]
    offsets = (basis @ weights).reshape(coarse, coarse, 2).astype(np.float32)
    offsets = cv2.resize(offsets, (size, size), interpolation=cv2.INTER_LINEAR)
    return offsets[..., 0], offsets[..., 1]


def _tps_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return squared * np.log(np.maximum(squared, 1e-12))


def backward_maps(matrix: np.ndarray, size: int, offsets=None):
    """For each crop pixel p the source pixel matrix^-1 (p + offsets(p)), as cv2.remap maps
    converted to fixed point (faster when several arrays share them)."""
    inverse = cv2.invertAffineTransform(matrix).astype(np.float32)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    if offsets is not None:
        xs, ys = xs + offsets[0], ys + offsets[1]
    map_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    map_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)


def shrink_for_matrix(arrays: list, matrix: np.ndarray):
    """Downsample the sources by 2^k (area) when the warp shrinks them more than 2x, so that
    bilinear resampling does not alias; returns the arrays and the matching matrix."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    factor = 1
    while scale * factor * 2 <= 0.5:
        factor *= 2
    if factor == 1:
        return arrays, matrix
    shrunk = []
    for array in arrays:
        if array is None:
            shrunk.append(None)
            continue
        size = (max(1, array.shape[1] // factor), max(1, array.shape[0] // factor))
        shrunk.append(cv2.resize(array, size, interpolation=cv2.INTER_AREA))
    adjusted = matrix.copy()
    adjusted[:, :2] *= factor
    return shrunk, adjusted


def remap(array: np.ndarray | None, maps, size: int, reflect: bool) -> np.ndarray | None:
    """Resample ``array`` into the size x size crop (bilinear); borders are zero, or mirrored
    when the photo's own background is kept."""
    if array is None:
        return None
    border = cv2.BORDER_REFLECT_101 if reflect else cv2.BORDER_CONSTANT
    return cv2.remap(array, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=border)


# --- colour ----------------------------------------------------------------------------------

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def colour_matrix(hue: float = 0.0, saturation: float = 1.0, brightness: float = 1.0):
    """3x3 RGB matrix: rotate hue by ``hue`` turns about the grey axis (Rodrigues), blend
    with luma by ``saturation`` (0 = grey), then scale by ``brightness``. Greys stay grey
    under the rotation; the whole is linear, so it keeps I = alpha F + (1 - alpha) B."""
    axis = np.ones(3) / np.sqrt(3.0)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = 2 * np.pi * hue
    rotate = (np.cos(angle) * np.eye(3) + np.sin(angle) * cross
              + (1 - np.cos(angle)) * np.outer(axis, axis))
    desaturate = saturation * np.eye(3) + (1 - saturation) * np.outer(np.ones(3), LUMA)
    return (brightness * desaturate @ rotate).astype(np.float32)


def random_colour_matrix(rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    return colour_matrix(rng.uniform(-config.hue_shift, config.hue_shift),
                         rng.uniform(*config.saturation_range),
                         rng.uniform(*config.brightness_range))


def apply_colour(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """HxWx3 times a 3x3 colour matrix: float32 clipped to [0, 1], or uint8 (saturated)."""
    out = cv2.transform(image, matrix)
    return out if out.dtype == np.uint8 else np.clip(out, 0.0, 1.0)


# --- strong augmentation (Dai, ch. 5); each op maps a list of images with one draw ---------

def linear_contrast(images, rng):
    c = rng.uniform(0.6, 1.4)
    return [np.clip((x - 0.5) * c + 0.5, 0, 1) for x in images]


def brightness_shift(images, rng):
    b = rng.uniform(-0.15, 0.15)
    return [np.clip(x + b, 0, 1) for x in images]


def channel_multiply(images, rng):
    m = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    return [np.clip(x * m, 0, 1) for x in images]


def channel_shuffle(images, rng):
    order = rng.permutation(3)
    return [np.ascontiguousarray(x[..., order]) for x in images]


def invert(images, rng):
    return [1.0 - x for x in images]


def gaussian_noise(images, rng):
    noise = rng.normal(0, rng.uniform(0.01, 0.06), images[0].shape).astype(np.float32)
    return [np.clip(x + noise, 0, 1) for x in images]


def salt_and_pepper(images, rng):
    mask = rng.random(images[0].shape[:2]) < rng.uniform(0.001, 0.01)
    values = (rng.random(int(mask.sum())) < 0.5).astype(np.float32)[:, None]
    out = [x.copy() for x in images]
    for x in out:
        x[mask] = values
    return out


def gamma_contrast(images, rng):
    g = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
    return [np.power(x, g) for x in images]


def hue_saturation(images, rng):
    matrix = colour_matrix(rng.uniform(-0.15, 0.15), rng.uniform(0.3, 1.7))
    return [apply_colour(x, matrix) for x in images]


def equalize(images, rng):
    out = []
    for x in images:
        ycrcb = cv2.cvtColor((x * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2YCrCb)
        ycrcb[..., 0] = cv2.equalizeHist(ycrcb[..., 0])
        out.append(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB).astype(np.float32) / 255)
    return out


def gaussian_blur(images, rng):
    sigma = rng.uniform(0.5, 2.0)
    return [cv2.GaussianBlur(x, (0, 0), sigma) for x in images]


def jpeg_compression(images, rng):
    quality = int(rng.integers(30, 91))
    out = []
    for x in images:
        _, data = cv2.imencode(".jpg", (x * 255 + 0.5).astype(np.uint8),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(cv2.imdecode(data, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255)
    return out


LINEAR_OPS = (linear_contrast, brightness_shift, channel_multiply, channel_shuffle, invert,
              gaussian_noise, salt_and_pepper)
NONLINEAR_OPS = (gamma_contrast, hue_saturation, equalize)
REGION_OPS = (gaussian_blur, jpeg_compression)
SEPARATE_WEIGHTS = (0.8, 0.1, 0.1)  # AF / AFB: linear, non-linear, region (thesis 5.7.3)


def strong_augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random operation on one layer (F or B alone): category drawn with
    :data:`SEPARATE_WEIGHTS`, then an operation uniformly within it."""
    category = (LINEAR_OPS, NONLINEAR_OPS, REGION_OPS)[rng.choice(3, p=SEPARATE_WEIGHTS)]
    return category[rng.integers(len(category))]([image], rng)[0]


def linear_augment(images: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One random linear pixel-wise operation, identical on every image (I, F and B)."""
    return LINEAR_OPS[rng.integers(len(LINEAR_OPS))](images, rng)


# --- targets and the sample ------------------------------------------------------------------

def trimap_target(alpha: np.ndarray, kernel_size: int = TRIMAP_KERNEL) -> np.ndarray:
    """uint8 alpha HxW -> uint8 classes 0 background, 1 unknown, 2 foreground, with
    unknown = dilate(alpha > 0) - erode(alpha == 255) by a ``kernel_size`` ellipse."""
    return trimap_classes(generate_trimap(alpha, kernel_size))


@dataclass
class TrainingSample:
    """One sample (shapes below) or, after :func:`collate`, a batch (a leading B).

    As the dataset yields it, every tensor is uint8 (a quarter of the bytes to pass between
    DataLoader processes, which on a CPU machine caps float32 batches at about 30 crops/s
    of 512 px): image, fg, bg (3, S, S) and alpha (1, S, S) in 0..255, trimap (S, S) in
    0 / 1 / 2. :meth:`as_float` gives what the losses take: image, fg, bg, alpha float32
    in [0, 1], trimap int64. image = alpha fg + (1 - alpha) bg holds to 8-bit rounding for
    composites, and up to the estimation error of F and B for kept photos.
    """

    image: torch.Tensor
    alpha: torch.Tensor
    trimap: torch.Tensor
    fg: torch.Tensor
    bg: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> TrainingSample:
        return TrainingSample(*(getattr(self, f.name).to(device, non_blocking=non_blocking)
                                for f in fields(self)))

    def as_float(self) -> TrainingSample:
        """float32 image, alpha, fg, bg in [0, 1] and int64 trimap (done on the device)."""
        if self.image.is_floating_point():
            return self
        scale = lambda t: t.float() / 255  # noqa: E731
        return TrainingSample(scale(self.image), scale(self.alpha), self.trimap.long(),
                              scale(self.fg), scale(self.bg))


def collate(samples: list[TrainingSample]) -> TrainingSample:
    """Stack samples into a batch (``DataLoader(collate_fn=collate)``)."""
    return TrainingSample(*(torch.stack([getattr(s, f.name) for s in samples])
                            for f in fields(TrainingSample)))


def training_sample(alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray,
                    image: np.ndarray | None = None) -> TrainingSample:
    """A :class:`TrainingSample` from HxW alpha and HxWx3 fg, bg (uint8, or float in [0, 1]).

    Without ``image`` it is composited here, from the 8-bit alpha that the sample stores,
    so I = alpha F + (1 - alpha) B holds to 8-bit rounding of I, F and B.
    """
    alpha8 = alpha if alpha.dtype == np.uint8 else _to_uint8(alpha)
    if image is None:
        a = alpha8[..., None].astype(np.float32) / 255
        image = a * _as_float(fg) + (1 - a) * _as_float(bg)
    chw = lambda x: torch.from_numpy(np.ascontiguousarray(  # noqa: E731
        _as_uint8(x).transpose(2, 0, 1)))
    return TrainingSample(chw(image), torch.from_numpy(np.ascontiguousarray(alpha8))[None],
                          torch.from_numpy(trimap_target(alpha8)), chw(fg), chw(bg))


def _as_float(image: np.ndarray) -> np.ndarray:
    return _to_float(image) if image.dtype == np.uint8 else image


def _as_uint8(image: np.ndarray) -> np.ndarray:
    return image if image.dtype == np.uint8 else _to_uint8(image)


class SampleBuilder:
    """Turns one :class:`ForegroundItem` source entry into a :class:`TrainingSample`."""

    def __init__(self, backgrounds, config: AugmentConfig = AugmentConfig()):
        self.backgrounds = backgrounds
        self.config = config

    def __call__(self, source: ForegroundSource, index: int,
                 rng: np.random.Generator) -> TrainingSample:
        original = rng.random() < self.config.original_background_probability
        item = source.load_foreground(index, original)
        alpha8, fg, image, bg = self.warp(item, rng, original)
        if original:
            image, fg, bg = self._shared_colour([image, fg, bg if bg is not None else image], rng)
            return training_sample(alpha8, fg, bg, image)
        fg, bg = self._separate_colour(fg, rng)
        return training_sample(alpha8, fg, bg)

    def warp(self, item: ForegroundItem, rng: np.random.Generator, original: bool):
        """uint8 crops: alpha (S, S), fg, image, bg (S, S, 3); image and bg are None unless
        the photo is kept."""
        size = self.config.crop_size
        anchor = pick_anchor(item.alpha, rng, self.config.edge_crop_probability)
        matrix = random_affine(item.alpha.shape, anchor, self.config, rng, cover=original)
        arrays, matrix = shrink_for_matrix([item.alpha, item.fg, item.image, item.bg], matrix)
        offsets = None
        if rng.random() < self.config.tps_probability:
            offsets = thin_plate_spline_offsets(rng, size, self.config.tps_grid,
                                                self.config.tps_strength)
        maps = backward_maps(matrix, size, offsets)
        return tuple(remap(x, maps, size, original) for x in arrays)

    def _shared_colour(self, layers: list[np.ndarray], rng: np.random.Generator):
        """The same colour matrix (and AC operation) on uint8 I, F and B; uint8 out."""
        matrix = random_colour_matrix(rng, self.config)
        layers = [apply_colour(x, matrix) for x in layers]
        if rng.random() < self.config.composite_probability:
            layers = [_to_uint8(x) for x in linear_augment([_to_float(x) for x in layers], rng)]
        return layers

    def _separate_colour(self, fg: np.ndarray, rng: np.random.Generator):
        """uint8 fg -> float fg and a new float bg, each with its own colour and strong
        augmentation (AF, AFB), then a shared linear one (AC)."""
        config, size = self.config, self.config.crop_size
        bg = np.asarray(self.backgrounds.sample(rng, size, size), np.float32)
        fg = _to_float(apply_colour(fg, random_colour_matrix(rng, config)))
        bg = apply_colour(bg, random_colour_matrix(rng, config))
        if rng.random() < config.strong_probability:
            fg = strong_augment(fg, rng)  # AF
        if rng.random() < config.strong_probability:
            bg = strong_augment(bg, rng)  # AFB
        if rng.random() < config.composite_probability:
            fg, bg = linear_augment([fg, bg], rng)  # AC, linear: same as on the composite
        return fg, bg


def _to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) * np.float32(1 / 255)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
