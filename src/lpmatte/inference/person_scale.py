"""Person-size normalisation of the first pass: small people are matted on an enlarged image.

The low-res network was trained on people a few hundred pixels tall (photos of at most 800
px, cropped to 320 and zoomed 0.5-1.5x; composites with people at 8-100 % of the crop). The
two-pass mode shrinks every image to one long side, so the full-body people of a group
photo or a wide video frame reach it 80-250 px tall, and there its edges are twice as wide
as the truth and gaps between legs fill in (MODEL_CARD "Session 24"). When the tallest
person the first run finds is shorter than ``InferenceOptions.person_height`` in the first
pass, the image is matted again with the first pass enlarged so that this person is that
tall, and the new matte replaces the old one near the people found. Only near them: on an
enlarged image the low-res network also sees bokeh discs and textures at a scale where some
look like heads (false positives far from anyone, seen on training composites).

The functions here read a matte and return numbers or masks; the pipeline
(:func:`lpmatte.inference.pipeline.run_inference`) runs the passes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from lpmatte.model.region_selection import any_in_cells

CELL = 8  # people are measured on the 1/8 grid: exact enough, and cheap at 4K
MIN_PERSON_AREA = 0.002  # share of the image: smaller blobs are not people to zoom for
MAX_ENLARGEMENT = 2.0  # the zoomed first pass sees the image at most twice its size ...
MAX_SIDE_FACTOR = 2  # ... and a long side at most twice lowres_side (4x its pixels)
MIN_GAIN = 1.1  # a zoom below 10 % is not worth a second run
NEAR_FRACTION = 0.05  # the new matte is kept within 5 % of the tallest height of people


def person_cells(alpha: torch.Tensor) -> np.ndarray:
    """(1, 1, H, W) matte -> uint8 (ceil(H/8), ceil(W/8)) mask of the cells holding a pixel
    above 0.5 (any pixel, so thin limbs and far people are kept)."""
    return any_in_cells(alpha[:1, :1] > 0.5, CELL)[0, 0].to(torch.uint8).cpu().numpy()


def tallest_person(cells: np.ndarray) -> int:
    """Height in pixels of the tallest connected blob of :func:`person_cells` that covers at
    least :data:`MIN_PERSON_AREA` of the image (0 when there is none), to the nearest cell.
    People standing together count as one blob, which is as tall as the tallest of them."""
    # SciPy, not OpenCV's connectedComponents: that one started OpenCV's thread pool in the
    # parent, and DataLoader workers forked after it hung in their first OpenCV call
    labels, count = ndimage.label(cells, structure=np.ones((3, 3)))  # 8-connected
    if not count:
        return 0
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    heights = [box[0].stop - box[0].start for box in ndimage.find_objects(labels)]
    tall = [h for h, area in zip(heights, areas) if area >= MIN_PERSON_AREA * cells.size]
    return CELL * int(max(tall, default=0))


def zoom_scale(person_height: int, image_size: tuple[int, int], first_scale: float,
               target: int, lowres_side: int | None) -> float | None:
    """The first-pass scale (of the image) at which a person ``person_height`` px tall
    becomes ``target`` px tall, capped by :data:`MAX_ENLARGEMENT` and a long side of
    :data:`MAX_SIDE_FACTOR` x ``lowres_side``; None when no person was found or the zoom
    would gain less than :data:`MIN_GAIN` over ``first_scale`` (the scale that ran)."""
    if person_height <= 0:
        return None
    long_side = max(image_size)
    cap = MAX_ENLARGEMENT
    if lowres_side is not None:
        cap = min(cap, MAX_SIDE_FACTOR * lowres_side / long_side)
    scale = min(target / person_height, cap)
    return scale if scale >= MIN_GAIN * first_scale else None


def near_people(cells: np.ndarray, person_height: int, size: tuple[int, int]) -> torch.Tensor:
    """(1, 1, H, W) bool on the CPU for an image of ``size`` (H, W): within
    :data:`NEAR_FRACTION` of ``person_height`` (at least one cell) of a cell of
    :func:`person_cells`."""
    reach = max(1, round(NEAR_FRACTION * person_height / CELL))
    grown = F.max_pool2d(torch.from_numpy(cells).float()[None, None], 2 * reach + 1, 1,
                         reach) > 0
    full = grown.repeat_interleave(CELL, 2).repeat_interleave(CELL, 3)
    return full[..., :size[0], :size[1]]


def blend_weight(near: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) float weight of the enlarged pass's matte: 0 outside ``near``, rising
    evenly to 1 over the :data:`CELL` px inside its border, so that where the two mattes
    disagree at the border there is a ramp, not an 8x8 step."""
    half = CELL // 2
    inside = -F.max_pool2d(-near.float(), 2 * half + 1, 1, half)  # eroded by half a cell
    return F.avg_pool2d(inside, 2 * half + 1, 1, half, count_include_pad=False)
