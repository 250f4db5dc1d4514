"""Training loader throughput alone (images/s): decoding, augmentation, compositing, collation.

    python benchmarks/bench_loader.py --soft-alpha OUT [--soft-alpha OUT2] \\
        [--backgrounds DIR] --size 512 --workers 2 --batch-size 8 --batches 30

Without sources it makes a small synthetic set (600x800 JPEG + PNG alpha/fg/bg) in a
temporary folder, so it runs anywhere. The first batches (worker start-up, numba and
cache warm-up) are not timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lpmatte.data.augment import AugmentConfig, TrainingDataset, collate
from lpmatte.data.backgrounds import ImageFolderBackgrounds, MixedBackgrounds, ProceduralBackgrounds


def synthetic_set(root: Path, count: int = 16, size=(800, 600)) -> Path:
    """images/ (JPEG) + alpha/ + fg/ + bg/ (PNG) of blurry ellipses, like a portrait set."""
    rng = np.random.default_rng(0)
    height, width = size
    for name in ("images", "alpha", "fg", "bg"):
        (root / name).mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width]
    for i in range(count):
        cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
        inside = ((y - cy) / (0.4 * height)) ** 2 + ((x - cx) / (0.3 * width)) ** 2
        alpha = np.clip((1.1 - inside) * 5, 0, 1)
        fg = rng.uniform(0, 1, (height // 8, width // 8, 3))
        fg = np.asarray(Image.fromarray((fg * 255).astype(np.uint8)).resize((width, height)))
        bg = np.full((height, width, 3), rng.integers(0, 256, 3), np.uint8)
        image = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"{i:03d}.jpg", quality=92)
        Image.fromarray((alpha * 255).astype(np.uint8)).save(root / "alpha" / f"{i:03d}.png")
        Image.fromarray(fg).save(root / "fg" / f"{i:03d}.png")
        Image.fromarray(bg).save(root / "bg" / f"{i:03d}.png")
    return root


def folder_with_colours(root: Path):
    """images/ + alpha/, with fg/ and bg/ when present, as a matting dataset."""
    from lpmatte.data.datasets import MattingDataset
    from lpmatte.data.datasets.folder import folder_files

    return MattingDataset(folder_files(root, "images", "alpha", None, "fg", "bg"))


def build_sources(args, scratch: Path):
    from lpmatte.data.soft_alpha import soft_alpha_dataset

    sources = [soft_alpha_dataset(path) for path in args.soft_alpha]
    sources += [folder_with_colours(Path(path)) for path in args.folder]
    return sources or [folder_with_colours(synthetic_set(scratch / "synthetic"))]


def measure(dataset, workers: int, batch_size: int, batches: int, warmup: int = 3) -> float:
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, collate_fn=collate,
        drop_last=True,
        prefetch_factor=4 if workers else None)
    done, start = 0, None
    for step, _batch in enumerate(loader):
        if step == warmup:
            start = time.perf_counter()
        elif step > warmup:
            done += batch_size
        if step == warmup + batches:
            break
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soft-alpha", action="append", default=[],
                        help="an output folder of 'lpmatte data soft-alpha'")
    parser.add_argument("--folder", action="append", default=[],
                        help="images/ + alpha/ (+ fg/, bg/)")
    parser.add_argument("--backgrounds", help="image folder (default: procedural only)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20, help="timed batches")
    args = parser.parse_args()

    torch.set_num_threads(1)
    backgrounds = ProceduralBackgrounds()
    if args.backgrounds:
        folder = ImageFolderBackgrounds(args.backgrounds)
        start = time.perf_counter()
        folder.preload(args.size, args.size)  # the forked workers inherit the cache
        print(f"{len(folder)} backgrounds preloaded in {time.perf_counter() - start:.1f} s")
        backgrounds = MixedBackgrounds([backgrounds, folder], [0.3, 0.7])
    with tempfile.TemporaryDirectory() as scratch:
        sources = build_sources(args, Path(scratch))
        dataset = TrainingDataset(sources, backgrounds, AugmentConfig(crop_size=args.size), seed=0)
        # an epoch must outlast warm-up + timed batches
        repeats = -(-(args.batches + 4) * args.batch_size // len(dataset))
        dataset = torch.utils.data.ConcatDataset([dataset] * repeats)
        print(f"{len(dataset)} samples per epoch, crop {args.size}, batch {args.batch_size}")
        for workers in args.workers:
            rate = measure(dataset, workers, args.batch_size, args.batches)
            print(f"workers={workers}: {rate:.1f} images/s ({rate * 3600:.0f} images/hour)")


if __name__ == "__main__":
    main()
