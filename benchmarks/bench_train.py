"""Training throughput: images/hour per model, crop, precision and memory format, and the
loader alone.

    python benchmarks/bench_train.py --quick                       # lpm-s, 512, fp32 + bf16
    python benchmarks/bench_train.py --models lpm,lpm-s --crops 512,896 --data DIR
    python benchmarks/bench_train.py --models mmnet --crops 256 --batch-size 8 \
        --precisions fp32,bf16 --memory-formats contiguous,channels-last --data SPEC

Each configuration times ``--steps`` optimisation steps after ``--warmup`` untimed ones,
with real data loading (the trainer's DataLoader, ``--workers`` processes) on ``--data``
or, by default, a synthetic folder of 600x800 portraits made in a temporary directory.
The loader line is the same pipeline without the model. Timings depend on the machine's
other load; the number of torch threads is printed.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_synthetic_folder(root: Path, count: int = 16, height: int = 800, width: int = 600):
    """``root/images`` + ``root/alpha``: a soft-edged head-and-shoulders blob over a gradient."""
    for folder in ("images", "alpha"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(count):
        rng = np.random.default_rng(i)
        head = np.hypot((yy - 0.35 * height) / (0.2 * height), (xx - 0.5 * width) / (0.2 * width))
        body = np.hypot((yy - height) / (0.45 * height), (xx - 0.5 * width) / (0.45 * width))
        alpha = np.clip((1.05 - np.minimum(head, body)) * 10, 0, 1)
        fg = np.array([0.8, 0.6, 0.5]) + rng.normal(0, 0.08, (height, width, 3))
        bg = np.stack([xx / width, yy / height, 0.4 + 0 * xx], -1)
        image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(
            root / "images" / f"s{i:03d}.jpg", quality=92)
        Image.fromarray((alpha * 255).astype(np.uint8)).save(root / "alpha" / f"s{i:03d}.png")


def trainer_for(data: str, model: str, crop: int, precision: str, args, train_dir: Path,
                memory_format: str = "auto"):
    from lpmatte.training.config import TrainConfig
    from lpmatte.training.trainer import Trainer

    config = TrainConfig(str(train_dir), data, model_version=model, crop=crop,
                         batch_size=args.batch_size, precision=precision,
                         memory_format=memory_format,
                         steps=args.warmup + args.steps, val_every=0, progress=False,
                         num_workers=args.workers, seed=0,
                         max_train_regions=args.max_train_regions)
    return Trainer(config)


def time_loader(data: str, crop: int, args, train_dir: Path) -> float:
    """Images per second of the DataLoader alone."""
    trainer = trainer_for(data, "lpm-s", crop, "fp32", args, train_dir)
    batches = iter(trainer.loader(args.warmup + args.loader_steps))
    for _ in range(args.warmup):
        next(batches)
    start = time.perf_counter()
    count = sum(len(batch.image) for batch in itertools.islice(batches, args.loader_steps))
    return count / (time.perf_counter() - start)


def time_training(data: str, model: str, crop: int, precision: str, memory_format: str, args,
                  train_dir: Path) -> tuple[float, float]:
    """(seconds per step, images per hour) over the timed steps."""
    trainer = trainer_for(data, model, crop, precision, args, train_dir, memory_format)
    batches = iter(trainer.loader(args.warmup + args.steps))
    for _ in range(args.warmup):
        trainer.train_step(next(batches))
    start = time.perf_counter()
    for batch in batches:
        trainer.train_step(batch)
    seconds = (time.perf_counter() - start) / args.steps
    return seconds, args.batch_size / seconds * 3600


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lpm,lpm-s")
    parser.add_argument("--crops", default="512,896")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--memory-formats", default="auto",
                        help="comma-separated: auto, contiguous, channels-last")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--loader-steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=None, help="default: cores - 1")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--data", default=None, help="a --data SPEC (default: synthetic)")
    parser.add_argument("--max-train-regions", type=int, default=None,
                        help="cap on refined cells per image (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="lpm-s at 512 only, 3 timed steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.crops, args.steps, args.loader_steps = "lpm-s", "512", 3, 6
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from lpmatte.devices import cpu_has_native_bf16

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"native CPU bf16: {cpu_has_native_bf16()}, batch {args.batch_size}, "
          f"max train regions {args.max_train_regions}")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = str(Path(tmp) / "data")
            make_synthetic_folder(Path(data))
        crops = [int(c) for c in args.crops.split(",")]
        for crop in crops:
            rate = time_loader(data, crop, args, Path(tmp) / f"loader{crop}")
            print(f"loader  crop {crop:4d}: {rate:7.2f} images/s ({rate * 3600:9.0f} images/hour)",
                  flush=True)
        grid = itertools.product(args.models.split(","), crops, args.precisions.split(","),
                                 args.memory_formats.split(","))
        for model, crop, precision, layout in grid:
            run_dir = Path(tmp) / f"{model}-{crop}-{precision}-{layout}"
            seconds, per_hour = time_training(data, model, crop, precision, layout, args,
                                              run_dir)
            print(f"train   {model:6s} crop {crop:4d} {precision:5s} {layout:13s}: "
                  f"{seconds:7.2f} s/step {per_hour:9.0f} images/hour", flush=True)


if __name__ == "__main__":
    main()
