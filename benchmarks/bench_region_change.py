"""How much the refiner changes each second-pass cell at HD, and what skipping cells would
cost: issue 16's "fewer regions at equal quality" question, measured before guessing.

    python benchmarks/bench_region_change.py --images ../shared/data/flickr-portraits/images \
        --count 12 --size 1792

Each photo is upscaled so its long side is ``--size`` and matted with the default model (two
passes). For every cell of the second pass this records the mean |patch - base| (what the
refiner changed over the bilinearly upsampled first pass) and cheap features a skip rule
could use: the base's range in the cell, its distance from 0.5, and the image's largest
neighbour difference and channel std. For each feature and skip fraction it prints the
share of all the refiner's change that skipping those cells would throw away. A feature
that predicts "the refiner does little here" loses much less change than the fraction
it skips.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import lpmatte
import lpmatte.inference.pipeline as pipeline
from lpmatte.model.region_selection import crop_regions

FEATURES = ("base range", "distance from 0.5", "image gradient", "image std")


def cell_features(padded: torch.Tensor, base: torch.Tensor, regions: torch.Tensor,
                  patches: torch.Tensor) -> np.ndarray:
    """(N, 5): change, then :data:`FEATURES`, for the refined cells."""
    before = crop_regions(base, regions)
    image = crop_regions(padded, regions)
    gray = image.mean(1, keepdim=True)
    change = (patches - before).abs().mean((1, 2, 3))
    spread = before.amax((1, 2, 3)) - before.amin((1, 2, 3))
    middle = (before - 0.5).abs().amin((1, 2, 3))
    dx = (gray[..., :, 1:] - gray[..., :, :-1]).abs().amax((1, 2, 3))
    dy = (gray[..., 1:, :] - gray[..., :-1, :]).abs().amax((1, 2, 3))
    std = image.std((2, 3)).amax(1)
    return torch.stack([change, spread, middle, torch.maximum(dx, dy), std], 1).numpy()


def record_second_pass(rows: list) -> None:
    """Wrap the pipeline's refine_cells so that second-pass calls (those given a base)
    append their cells' features to ``rows``."""
    original = pipeline.refine_cells

    def recording(networks, padded, coarse, probs, cells, valid, clock, base=None, **kw):
        before = None if base is None else base.clone()
        alpha, regions, patches = original(networks, padded, coarse, probs, cells, valid,
                                           clock, base, **kw)
        if before is not None and len(regions):
            rows.append(cell_features(padded, before, regions, patches))
        return alpha, regions, patches

    pipeline.refine_cells = recording


def upscaled(path: Path, side: int) -> np.ndarray:
    image = Image.open(path).convert("RGB")
    scale = side / max(image.size)
    size = tuple(max(8, round(n * scale) // 8 * 8) for n in image.size)
    return np.asarray(image.resize(size, Image.BICUBIC))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--size", type=int, default=1792, help="long side (HD: 1792)")
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    matter = lpmatte.load(args.model, settle=False)  # the base as the refiner saw it
    rows: list = []
    record_second_pass(rows)
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    for path in files[:args.count]:
        matter.run(upscaled(path, args.size))
    table = np.concatenate(rows)
    change = table[:, 0]
    quantiles = ", ".join(f"{q:.0%} {v:.3f}" for q, v in
                          zip((0.1, 0.5, 0.9), np.quantile(change, [0.1, 0.5, 0.9])))
    print(f"{len(table)} second-pass cells of {min(args.count, len(files))} images at long "
          f"side {args.size}: mean change {change.mean():.3f} (quantiles {quantiles})")
    print("| skip the cells with the lowest | skipped | share of the change lost |")
    print("|---|---|---|")
    for column, name in enumerate(FEATURES, start=1):
        feature = table[:, column] if name != "distance from 0.5" else -table[:, column]
        for fraction in (0.2, 0.4):
            skip = feature < np.quantile(feature, fraction)
            lost = change[skip].sum() / change.sum()
            label = name if name != "distance from 0.5" else "closeness to 0.5"
            print(f"| {label} | {skip.mean():.0%} | {lost:.0%} |")


if __name__ == "__main__":
    main()
