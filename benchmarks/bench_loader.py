"""Training loader throughput alone (images/s): what ``lpmatte train`` uses, from the data spec
to batches (SampleDraws + build_loader: decoding, augmentation, composites, collation).

    python benchmarks/bench_loader.py --data training/default.toml --size 320 \\
        --workers 1 2 --batch-size 4 --batches 30 [--group-composites 0 0.4 1]

Without ``--data`` it makes a small synthetic set (600x800 JPEG + PNG alpha/fg/bg) in a
temporary folder, so it runs anywhere. ``--group-composites`` overrides the spec's share of
multi-person composites (one measurement per value). The first batches (worker start-up,
cache warm-up) are not timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lpmatte.data.spec import SampleDraws, build_loader, draw_indices, parse_data_spec


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


def measure(draws: SampleDraws, workers: int, batch_size: int, batches: int,
            warmup: int = 3) -> float:
    indices = draw_indices(0, warmup + batches + 1, batch_size)
    loader = build_loader(draws, indices, batch_size, num_workers=workers)
    done, start = 0, time.perf_counter()
    for step, _batch in enumerate(loader):
        if step == warmup:
            start = time.perf_counter()
        elif step > warmup:
            done += batch_size
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a --data spec of lpmatte train (default: synthetic)")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batches", type=int, default=20, help="timed batches")
    parser.add_argument("--group-composites", type=float, nargs="+",
                        help="share(s) of composites to measure (default: the spec's)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        spec = parse_data_spec(args.data or synthetic_set(Path(scratch) / "synthetic"))
        shares = args.group_composites or [spec.group_composites]
        print(f"{len(spec)} samples, crop {args.size}, batch {args.batch_size}")
        for share in shares:
            draws = SampleDraws(replace(spec, group_composites=share), args.size)
            for workers in args.workers:
                rate = measure(draws, workers, args.batch_size, args.batches)
                print(f"group_composites={share:g} workers={workers}: {rate:.1f} images/s "
                      f"({rate * 3600:.0f} images/hour)")


if __name__ == "__main__":
    main()
