"""Soft alpha mattes from binary person masks: boundary band -> closed-form matting.

A hand-labelled binary mask is right far from its outline and wrong near it (hair,
anti-aliasing, labelling slack). So the pixels within ``r`` of the outline become
"unknown" and closed-form matting (Levin et al. 2008, pymatting's ``estimate_alpha_cf``)
solves alpha there from the image colours; the rest keeps the mask's 0 or 1.

The band radius is relative to the image diagonal (a 1% band is 10 px on a 600x800
portrait) and grows towards the top of the person, where hair is: from ``hair_fraction``
at the top of the mask to ``band_fraction`` at ``hair_extent`` of the head size below it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from lpmatte.errors import LpmatteError

PYMATTING_UNKNOWN = 0.5  # pymatting's trimap value for "unknown" (not a class index)


@dataclass(frozen=True)
class BandConfig:
    """Unknown-band geometry, every length relative to the image diagonal or person size.

    band_fraction: band radius (each side of the outline) / image diagonal.
    hair_fraction: band radius at the top of the person / image diagonal.
    hair_extent: how far below the mask top the band stays wider, as a fraction of the
        head size, taken as min(0.35 * mask height, 0.6 * mask width).
    """

    band_fraction: float = 0.01
    hair_fraction: float = 0.02
    hair_extent: float = 1.0


def _mask_box(mask: np.ndarray) -> tuple[int, int, int]:
    """Top row, height and width of the mask's bounding box."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def band_radius(mask: np.ndarray, config: BandConfig = BandConfig()) -> np.ndarray:
    """Per-row band radius in pixels, (H,) float32: wide at the top of the person, then
    linearly down to the base radius over ``hair_extent`` times the head size."""
    height, width = mask.shape
    diagonal = float(np.hypot(height, width))
    base, hair = config.band_fraction * diagonal, config.hair_fraction * diagonal
    radius = np.full(height, base, np.float32)
    if not mask.any():
        return radius
    top, box_height, box_width = _mask_box(mask)
    head = min(0.35 * box_height, 0.6 * box_width)
    extent = max(config.hair_extent * head, 1.0)
    falloff = np.clip(1.0 - (np.arange(height) - top) / extent, 0.0, 1.0)
    return radius + (hair - base) * falloff.astype(np.float32)


def distance_to_outline(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance (px) of every pixel to the nearest pixel of the other label.

    Returns (inside, outside), float32 HxW: the distance for mask pixels (0 elsewhere) and
    for the other pixels (0 on the mask). Pixels on each side of the outline are 1 apart.
    """
    mask8 = mask.astype(np.uint8)
    inside = cv2.distanceTransform(mask8, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - mask8, cv2.DIST_L2, 5)
    return inside, outside


def local_maximum(distance: np.ndarray, radius: int) -> np.ndarray:
    """Largest value within ``radius`` px (grey dilation): on a one-sided distance map, the
    half-width of a thin part (a gap between legs, a strap) seen from anywhere inside it."""
    size = 2 * radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate(distance, kernel)


def remove_specks(mask: np.ndarray, min_area: float) -> np.ndarray:
    """Fill holes and drop islands smaller than ``min_area`` px: labelling slips, which the
    thin-part rule of :func:`mask_to_trimap` would otherwise pin as known."""
    mask = mask.copy()
    for value in (False, True):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            (mask == value).astype(np.uint8), connectivity=8)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area)
        small = small[small > 0]  # label 0 is the pixels of the other value
        if len(small):
            mask[np.isin(labels, small) & (mask == value)] = not value
    return mask


def mask_to_trimap(mask: np.ndarray, config: BandConfig = BandConfig()) -> np.ndarray:
    """Binary mask HxW (bool or 0/255) -> pymatting trimap float64 HxW: 0 background,
    0.5 unknown, 1 foreground.

    Unknown: within :func:`band_radius` of the outline, except that the middle half of
    parts thinner than the band stays known, so that the solver keeps an anchor there
    (without it a narrow gap between legs fills with streaks of background). Holes and
    islands smaller than (2 x base radius)^2 are removed first.
    """
    mask = np.asarray(mask) > 0
    base = config.band_fraction * float(np.hypot(*mask.shape))
    mask = remove_specks(mask, (2 * base) ** 2)
    trimap = mask.astype(np.float64)
    if mask.all() or not mask.any():
        return trimap
    radius = band_radius(mask, config)[:, None]
    reach = int(np.ceil(radius.max()))
    inside, outside = distance_to_outline(mask)
    distance = np.where(mask, inside, outside)
    half_width = np.where(mask, local_maximum(inside, reach), local_maximum(outside, reach))
    trimap[distance <= np.minimum(radius, 0.5 * half_width)] = PYMATTING_UNKNOWN
    return trimap


def solve_alpha(image: np.ndarray, trimap: np.ndarray, max_side: int | None = None) -> np.ndarray:
    """Closed-form matting inside the trimap's unknown band.

    Args:
        image: HxWx3 float in [0, 1].
        trimap: HxW float, 0 / 0.5 / 1 (see :func:`mask_to_trimap`).
        max_side: solve on a copy downscaled to this longest side, then upsample the
            alpha bilinearly and re-impose the known pixels (cheaper on large images).
    Returns:
        alpha HxW float32 in [0, 1], equal to the trimap where it is 0 or 1.
    """
    from pymatting import estimate_alpha_cf

    unknown = trimap == PYMATTING_UNKNOWN
    if not unknown.any():
        return trimap.astype(np.float32)
    if not ((trimap == 0).any() and (trimap == 1).any()):
        raise LpmatteError("closed-form matting needs known foreground and background pixels")
    height, width = trimap.shape
    scale = 1.0 if max_side is None else min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small_image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        small_trimap = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
        alpha = solve_alpha(small_image, small_trimap)
        alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    else:
        # float rounding of a resized image can leave 1 + 1e-7, which pymatting warns about
        alpha = estimate_alpha_cf(np.clip(np.asarray(image, np.float64), 0, 1), trimap)
    return np.where(unknown, np.clip(alpha, 0, 1), trimap).astype(np.float32)


def soft_alpha_from_mask(image: np.ndarray, mask: np.ndarray,
                         config: BandConfig = BandConfig(),
                         max_side: int | None = None) -> np.ndarray:
    """Binary person mask -> soft alpha matte, float32 HxW in [0, 1].

    >>> image = np.zeros((40, 40, 3)); image[8:32, 8:32] = 1.0
    >>> mask = np.zeros((40, 40), bool); mask[10:30, 10:30] = True
    >>> alpha = soft_alpha_from_mask(image, mask, BandConfig(0.1, 0.1))  # 6 px band
    >>> float(abs(alpha - image[..., 0]).mean()) < 0.01
    True
    """
    image = np.asarray(image, np.float64)
    mask = np.asarray(mask)
    if image.shape[:2] != mask.shape[:2]:
        raise LpmatteError(f"mask {mask.shape[:2]} and image {image.shape[:2]} differ in size")
    trimap = mask_to_trimap(mask, config)
    if not ((trimap == 0).any() and (trimap == 1).any()):
        return (mask > 0).astype(np.float32)  # nothing to anchor the solver: keep the mask
    return solve_alpha(image, trimap, max_side)


# --- whole folders (``lpmatte data soft-alpha``) --------------------------------------------

GREEN = (0.0, 0.7, 0.0)


def pair_images_masks(images: str | os.PathLike,
                      masks: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(image, mask) paths matched by file stem, sorted; images without a mask are skipped."""
    from lpmatte.media.image_io import IMAGE_SUFFIXES

    images, masks = Path(images), Path(masks)
    for folder in (images, masks):
        if not folder.is_dir():
            raise LpmatteError(f"{folder}: no such folder")
    by_stem = {path.stem: path for path in masks.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES}
    pairs = [(path, by_stem[path.stem]) for path in sorted(images.iterdir())
             if path.suffix.lower() in IMAGE_SUFFIXES and path.stem in by_stem]
    if not pairs:
        raise LpmatteError(f"{images}: no image has a mask of the same name in {masks}")
    return pairs


def output_paths(out: Path, stem: str, suffix: str = "png") -> dict[str, Path]:
    """Where one converted image goes: alpha/<stem>.png, fg/<stem>.<suffix>, bg/<stem>.<suffix>."""
    return {"alpha": out / "alpha" / f"{stem}.png", "fg": out / "fg" / f"{stem}.{suffix}",
            "bg": out / "bg" / f"{stem}.{suffix}"}


def convert_pair(image_path: Path, mask_path: Path, out: Path, config: BandConfig = BandConfig(),
                 max_side: int | None = None, suffix: str = "png") -> None:
    """One image + binary mask -> soft alpha, foreground and background colours on disk."""
    from lpmatte.data.fg_bg import save_rgb
    from lpmatte.media.foreground import estimate_foreground_background
    from lpmatte.media.image_io import load_alpha, load_rgb, save_png, to_uint8

    image = load_rgb(image_path)
    mask = load_alpha(mask_path) > 0.5
    if mask.shape != image.shape[:2]:
        raise LpmatteError(f"{mask_path}: size {mask.shape[::-1]} differs from its image "
                           f"{image_path} {image.shape[1::-1]}")
    alpha = soft_alpha_from_mask(image, mask, config, max_side)
    alpha = to_uint8(alpha)  # what is saved is what F and B must explain
    fg, bg = estimate_foreground_background(image, alpha / np.float32(255))
    paths = output_paths(out, image_path.stem, suffix)
    save_rgb(paths["fg"], fg)
    save_rgb(paths["bg"], bg)
    save_png(paths["alpha"], alpha)  # written last: its presence marks the job as done


def write_source(out: Path, images: Path, masks: Path, config: BandConfig,
                 max_side: int | None) -> None:
    """OUT/source.json: where the original images are and how the alphas were made."""
    from lpmatte.files import atomic_write

    record = {"images": str(Path(images).resolve()), "masks": str(Path(masks).resolve()),
              "band": asdict(config), "max_side": max_side, "solver": "pymatting estimate_alpha_cf"}
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(out / "source.json", lambda tmp: Path(tmp).write_text(text))


def convert_folder(images: str | os.PathLike, masks: str | os.PathLike, out: str | os.PathLike,
                   workers: int = 1, config: BandConfig = BandConfig(),
                   max_side: int | None = None, limit: int | None = None,
                   suffix: str = "png", progress: bool = True) -> tuple[int, list[str]]:
    """Convert every image with a mask whose outputs are not all there yet (resumable).

    Returns (jobs attempted, error messages of the failed ones).
    """
    from lpmatte.data.fg_bg import run_in_processes

    out = Path(out)
    pairs = pair_images_masks(images, masks)[:limit]
    if out.resolve() in (Path(images).resolve(), Path(masks).resolve()):
        raise LpmatteError(f"{out}: the output folder must differ from the inputs")
    write_source(out, Path(images), Path(masks), config, max_side)
    jobs = [(image, mask, out, config, max_side, suffix) for image, mask in pairs
            if not all(path.exists() for path in output_paths(out, image.stem, suffix).values())]
    return len(jobs), run_in_processes(convert_pair, jobs, workers, "soft alpha", progress)


def _tile(array: np.ndarray, height: int) -> np.ndarray:
    width = max(1, round(array.shape[1] * height / array.shape[0]))
    tile = cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA)
    return np.repeat(tile[..., None], 3, axis=2) if tile.ndim == 2 else tile


def contact_sheet(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                  tile_height: int = 320) -> np.ndarray:
    """Rows of (image HxWx3, mask HxW, alpha HxW, fg HxWx3), floats in [0, 1] -> uint8 sheet
    with columns image | mask | soft alpha | composite over green."""
    from lpmatte.media.image_io import to_uint8

    lines = []
    for image, mask, alpha, fg in rows:
        a = alpha[..., None]
        composite = a * fg + (1 - a) * np.asarray(GREEN, np.float32)
        tiles = [_tile(x.astype(np.float32), tile_height) for x in (image, mask, alpha, composite)]
        lines.append(np.concatenate(tiles, axis=1))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 2), (0, width - line.shape[1]), (0, 0)), constant_values=1.0)
             for line in lines]
    return to_uint8(np.concatenate(lines, axis=0))


def write_contact_sheet(out: str | os.PathLike, path: str | os.PathLike, count: int = 12,
                        tile_height: int = 320) -> int:
    """Contact sheet of the first ``count`` converted images of ``out``; returns how many."""
    from lpmatte.media.image_io import load_alpha, load_rgb, save_png

    out = Path(out)
    source = json.loads((out / "source.json").read_text())
    pairs = {image.stem: (image, mask)
             for image, mask in pair_images_masks(source["images"], source["masks"])}
    alphas = sorted((out / "alpha").glob("*.png"))[:count]
    rows = []
    for alpha_path in alphas:
        image, mask = pairs[alpha_path.stem]
        fg = next((out / "fg").glob(f"{alpha_path.stem}.*"))
        rows.append((load_rgb(image), load_alpha(mask), load_alpha(alpha_path), load_rgb(fg)))
    if rows:
        save_png(path, contact_sheet(rows, tile_height))
    return len(rows)


def soft_alpha_dataset(out: str | os.PathLike):
    """The converted set as a :class:`lpmatte.data.datasets.MattingDataset`: original images (found
    through OUT/source.json) with OUT/alpha, OUT/fg and OUT/bg; only finished items."""
    from lpmatte.data.datasets import MattingDataset, SampleFiles
    from lpmatte.data.datasets.files import files_by_stem

    out = Path(out)
    if not (out / "source.json").is_file():
        raise LpmatteError(f"{out}: no source.json (not made by 'lpmatte data soft-alpha')")
    source = json.loads((out / "source.json").read_text())
    images = files_by_stem(source["images"])
    found = {kind: files_by_stem(out / kind) if (out / kind).is_dir() else {}
             for kind in ("alpha", "fg", "bg")}
    files = [SampleFiles(stem, images[stem], alpha, fg=found["fg"].get(stem),
                         bg=found["bg"].get(stem))
             for stem, alpha in found["alpha"].items() if stem in images]
    if not files:
        raise LpmatteError(f"{out}: no converted images yet")
    return MattingDataset(files, None, f"soft-alpha set at {out}")
