"""Group and small-person composites: 1-6 person cutouts pasted into one frame.

The single-subject samples of :mod:`lpmatte.data.augment` show one person, centred, at the
framing of the photos (head-and-shoulders or full body). A composite instead pastes cutouts
(soft alpha + estimated foreground) of several training photos into one S x S frame:

- the back layer is a background (wallpaper or procedural), or with
  ``photo_base_probability`` another training photo, re-composited from its own ``fg``/``bg``
  with its person kept as the back-most person (its ``bg/`` alone still shows the removed
  person as a pale silhouette, so it is never used without that person);
- each cutout's height is log-uniform in ``height_range`` times the frame height, its
  position random, up to ``max_outside`` of it outside the frame; a cutout whose person
  was cut by its photo's border (a bust cut at the bottom) keeps that cut outside the frame;
- cutouts are layered back to front, smallest (farthest) first, each over what is below:
  ``P = a_i F_i + (1 - a_i) P``, ``A = a_i + (1 - a_i) A`` (P = premultiplied foreground).
  Then the target is the union alpha ``A = 1 - prod(1 - a_i)``, ``F = P / A`` and
  ``I = P + (1 - A) B = A F + (1 - A) B`` exactly, as for a single subject.

One cutout alone is the "zoom-out": one person small, anywhere, or cut by the frame.
:class:`GroupBuilder` turns one draw into a :class:`~lpmatte.data.augment.TrainingSample`;
the share of composites among the training draws is the data spec's ``group_composites``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lpmatte.data.augment import (
    AugmentConfig,
    ForegroundItem,
    apply_colour,
    linear_augment,
    pick_anchor,
    random_affine,
    random_colour_matrix,
    shrink_for_matrix,
    strong_augment,
    training_sample,
)

EDGE_TOUCH_PX = 2  # a person this close to its photo's border was cut by the frame


@dataclass(frozen=True)
class CompositeConfig:
    """Knobs of a composite; lengths relative to the frame (crop) side."""

    crop_size: int = 896
    count_weights: tuple[float, ...] = (0.25, 0.2, 0.15, 0.15, 0.125, 0.125)  # 1..6 people
    height_range: tuple[float, float] = (0.08, 1.0)  # person height / frame height
    max_outside: float = 0.4  # share of a cutout's width / height that may leave the frame
    photo_base_probability: float = 0.4
    max_rotation: float = 8.0  # degrees
    flip_probability: float = 0.5
    strong_probability: float = 0.25  # AF per cutout, AFB on the background
    composite_probability: float = 0.1  # AC (linear, on all layers alike)


@dataclass
class Layer:
    """One person in frame coordinates: float32 fg (S, S, 3) and alpha (S, S) in [0, 1]."""

    fg: np.ndarray
    alpha: np.ndarray
    height: float  # on-frame person height in px, for the depth order


def person_box(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the pixels with alpha > 0, exclusive end; None if there are none."""
    rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def cut_sides(box: tuple[int, int, int, int], shape: tuple[int, int]) -> set[str]:
    """The sides of its photo where the person runs into the border ("left", "right",
    "top", "bottom")."""
    x0, y0, x1, y1 = box
    height, width = shape
    touch = {"left": x0 <= EDGE_TOUCH_PX, "right": x1 >= width - EDGE_TOUCH_PX,
             "top": y0 <= EDGE_TOUCH_PX, "bottom": y1 >= height - EDGE_TOUCH_PX}
    return {side for side, touches in touch.items() if touches}


def pasteable_box(alpha: np.ndarray) -> tuple[tuple[int, int, int, int], set[str]] | None:
    """The part of a photo's person to paste and the sides where it is cut.

    A person cut by the photo's left or right border (a portrait's shoulders) is cut again
    just above the first row that runs into that border: the rest is cut at the bottom
    only, so it can be pasted with the cut below the frame. None when what is left is not
    pasteable (cut at both the top and the bottom, or less than a third of the person).
    """
    box = person_box(alpha)
    if box is None:
        return None
    sides = cut_sides(box, alpha.shape)
    if sides & {"left", "right"}:
        y0, y1 = box[1], box[3]
        side_pixels = alpha[:, :EDGE_TOUCH_PX + 1].any(1) | alpha[:, -EDGE_TOUCH_PX - 1:].any(1)
        cut = int(np.flatnonzero(side_pixels)[0])
        if cut - y0 < (y1 - y0) / 3:
            return None
        box = person_box(alpha[:cut])
        sides = cut_sides(box, alpha[:cut].shape)
    if {"top", "bottom"} <= sides:
        return None
    return box, sides


def place_position(size: int, extent: float, cut_low: bool, cut_high: bool,
                   max_outside: float, rng: np.random.Generator) -> float:
    """Where a cutout of ``extent`` px starts along one axis of a ``size`` frame: anywhere
    with at most ``max_outside`` of it outside, or, when its photo cut it on the low / high
    side, with that cut at or beyond the frame's edge."""
    slack = max_outside * extent
    if cut_high and not cut_low:
        return size - extent + rng.uniform(0, slack)
    if cut_low and not cut_high:
        return -rng.uniform(0, slack)
    low, high = -slack, size - extent + slack
    return rng.uniform(min(low, high), max(low, high))


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def cutout_matrix(box, sides: set[str], config: CompositeConfig, rng: np.random.Generator):
    """2x3 matrix from photo pixels to frame pixels and the person's on-frame height."""
    size = config.crop_size
    x0, y0, x1, y1 = box
    box_w, box_h = x1 - x0, y1 - y0
    height = size * log_uniform(rng, *config.height_range)
    scale = height / box_h
    width = box_w * scale
    flip = rng.random() < config.flip_probability
    left_cut, right_cut = ("right", "left") if flip else ("left", "right")
    left = place_position(size, width, left_cut in sides, right_cut in sides,
                          config.max_outside, rng)
    top = place_position(size, height, "top" in sides, "bottom" in sides,
                         config.max_outside, rng)
    # scale (and mirror) the box onto [left, left + width] x [top, top + height] ...
    sx = -scale if flip else scale
    matrix = np.array([[sx, 0.0, (left + width if flip else left) - sx * x0],
                       [0.0, scale, top - scale * y0]])
    # ... then rotate a little about the box centre
    angle = rng.uniform(-config.max_rotation, config.max_rotation)
    centre = (left + width / 2, top + height / 2)
    rotate = np.vstack([cv2.getRotationMatrix2D(centre, angle, 1.0), [0, 0, 1]])
    return rotate[:2] @ np.vstack([matrix, [0, 0, 1]]), height


def warp_layer(fg: np.ndarray, alpha: np.ndarray, matrix: np.ndarray, size: int,
               reflect: bool = False):
    """uint8 fg and alpha resampled into the frame; area-filtered first when shrunk a lot,
    so small people do not alias. Outside the source: zero, or mirrored with ``reflect``."""
    (alpha, fg), matrix = shrink_for_matrix([alpha, fg], matrix)
    border = cv2.BORDER_REFLECT_101 if reflect else cv2.BORDER_CONSTANT
    warp = lambda x: cv2.warpAffine(x, matrix, (size, size), flags=cv2.INTER_LINEAR,  # noqa: E731
                                    borderMode=border)
    return warp(fg), warp(alpha)


def layer_union(layers: list[Layer], background: np.ndarray):
    """Composite ``layers`` back to front (list order) over ``background``.

    Returns float32 image, union alpha and foreground with image = A F + (1 - A) B; where
    no layer covers a pixel, F is 0.
    """
    premultiplied = np.zeros_like(background)
    coverage = np.zeros(background.shape[:2], np.float32)
    for layer in layers:
        a = layer.alpha[..., None]
        premultiplied = a * layer.fg + (1 - a) * premultiplied
        coverage = layer.alpha + (1 - layer.alpha) * coverage
    covered = coverage[..., None]
    image = premultiplied + (1 - covered) * background
    fg = np.where(covered > 0, premultiplied / np.maximum(covered, 1e-12), 0).astype(np.float32)
    return image, coverage, fg


def _to_float(image8: np.ndarray) -> np.ndarray:
    return image8.astype(np.float32) * np.float32(1 / 255)


class GroupBuilder:
    """One composite from a pool of foreground sources (training ids only: the pool is the
    training part of the data spec, after :func:`lpmatte.data.spec.split_validation`)."""

    def __init__(self, sources, probabilities, backgrounds, config: CompositeConfig,
                 augment: AugmentConfig | None = None):
        self.sources = list(sources)
        self.probabilities = np.asarray(probabilities, np.float64)
        self.backgrounds = list(backgrounds)  # one background source per foreground source
        self.config = config
        self.augment = augment or AugmentConfig(crop_size=config.crop_size)

    def pick(self, rng: np.random.Generator) -> tuple[int, int]:
        which = int(rng.choice(len(self.sources), p=self.probabilities))
        return which, int(rng.integers(len(self.sources[which])))

    def __call__(self, rng: np.random.Generator):
        config = self.config
        weights = np.asarray(config.count_weights, np.float64)
        count = 1 + int(rng.choice(len(weights), p=weights / weights.sum()))
        if rng.random() < config.photo_base_probability:
            back, background = self.photo_base(rng)
        else:
            back, background = [], self.wallpaper(rng)
        people = [layer for layer in (self.cutout(rng) for _ in range(count)) if layer]
        layers = back + sorted(people, key=lambda layer: layer.height)  # far (small) first
        if rng.random() < config.composite_probability:  # AC: linear, alike on every layer
            stacked = linear_augment([background] + [layer.fg for layer in layers], rng)
            background = stacked[0]
            for layer, fg in zip(layers, stacked[1:]):
                layer.fg = fg
        _, alpha, fg = layer_union(layers, background)
        return training_sample(alpha, fg, background)

    def cutout(self, rng: np.random.Generator, tries: int = 4) -> Layer | None:
        """One person of the pool, coloured (and strongly augmented) on its own, placed;
        None when ``tries`` picks found no pasteable person."""
        for _ in range(tries):
            which, index = self.pick(rng)
            item: ForegroundItem = self.sources[which].load_foreground(index, False)
            found = pasteable_box(item.alpha)
            if found is not None:
                break
        else:
            return None
        box, sides = found
        matrix, height = cutout_matrix(box, sides, self.config, rng)
        x0, y0, x1, y1 = box
        fg8 = item.fg[y0:y1, x0:x1]
        matrix = matrix @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
        fg, alpha = warp_layer(np.ascontiguousarray(fg8),
                               np.ascontiguousarray(item.alpha[y0:y1, x0:x1]), matrix,
                               self.config.crop_size)
        fg = _to_float(apply_colour(fg, random_colour_matrix(rng, self.augment)))
        if rng.random() < self.config.strong_probability:
            fg = strong_augment(fg, rng)  # AF
        return Layer(fg, _to_float(alpha), height)

    def wallpaper(self, rng: np.random.Generator) -> np.ndarray:
        size = self.config.crop_size
        which = int(rng.choice(len(self.sources), p=self.probabilities))
        background = np.asarray(self.backgrounds[which].sample(rng, size, size), np.float32)
        background = apply_colour(background, random_colour_matrix(rng, self.augment))
        if rng.random() < self.config.strong_probability:
            background = strong_augment(background, rng)  # AFB
        return background

    def photo_base(self, rng: np.random.Generator) -> tuple[list[Layer], np.ndarray]:
        """A training photo covering the frame, re-composited from its fg and bg so that the
        matting equation is exact; its person is the back layer."""
        which, index = self.pick(rng)
        item: ForegroundItem = self.sources[which].load_foreground(index, True)
        bg8 = item.bg if item.bg is not None else item.image
        size = self.config.crop_size
        anchor = pick_anchor(item.alpha, rng, 0.0)
        matrix = random_affine(item.alpha.shape, anchor, self.augment, rng, cover=True)
        fg, alpha = warp_layer(item.fg, item.alpha, matrix, size, reflect=True)
        bg, _ = warp_layer(bg8, item.alpha, matrix, size, reflect=True)
        colour = random_colour_matrix(rng, self.augment)  # one photo: one colour change
        fg, bg = (_to_float(apply_colour(x, colour)) for x in (fg, bg))
        return [Layer(fg, _to_float(alpha), 0.0)], bg
