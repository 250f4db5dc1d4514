"""Folder throughput: images/s with decoding, inference and encoding one after the other
(serial) vs overlapped in three threads, in the same run on the same images.

    python benchmarks/bench_batch.py --count 200 --model default

Images are made under a temporary folder (crops of examples/astronaut.png, see
:func:`make_images`) and deleted afterwards. The CPU is printed with the numbers.
"""

from __future__ import annotations

import argparse
import platform
import random
import subprocess
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageEnhance

import lpmatte
from lpmatte.apps.images import matte_files

ROOT = Path(__file__).resolve().parents[1]


def make_images(folder: Path, count: int, low: int = 64, high: int = 128, seed: int = 0,
                suffix: str = ".jpg") -> list[Path]:
    """``count`` crops of the astronaut photo, sides in [low, high], flipped and brightened
    at random, spread over sub-folders of 500."""
    rng = random.Random(seed)
    with Image.open(ROOT / "examples" / "astronaut.png") as source:
        source = source.convert("RGB")
    paths = []
    for index in range(count):
        side = rng.randint(low, high)
        scale = rng.uniform(0.3, 1.0)
        crop = int(min(source.size) * scale)
        x, y = rng.randint(0, source.width - crop), rng.randint(0, source.height - crop)
        image = source.crop((x, y, x + crop, y + crop)).resize((side, rng.randint(low, high)))
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
        path = folder / f"part{index // 500:02d}" / f"img{index:05d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=90) if suffix == ".jpg" else image.save(path)
        paths.append(path)
    return paths


def cpu_name() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    names = [line.split(":", 1)[1].strip() for line in text.splitlines()
             if line.startswith("Model name")]
    return names[0] if names else "unknown CPU"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--model", default="default")
    parser.add_argument("--format", default="alpha")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds per mode")
    args = parser.parse_args(argv)
    matter = lpmatte.load(args.model, device="cpu")
    backend = getattr(matter.backend, "name", type(matter.backend).__name__)
    print(f"CPU: {cpu_name()}; model {args.model}, backend {backend}, "
          f"{args.count} images 64-128 px, format {args.format}")
    with tempfile.TemporaryDirectory(prefix="lpmatte-bench-batch-") as folder:
        folder = Path(folder)
        make_images(folder / "in", args.count)
        matte_files(matter, [str(folder / "in")], folder / "warm", args.format,
                    progress=False)  # warm-up: lazy exports, caches, allocator
        rates: dict[str, list[float]] = {"serial": [], "overlapped": []}
        for round_ in range(args.repeats):
            for mode in rates:
                out = folder / f"{mode}{round_}"
                started = time.perf_counter()
                result = matte_files(matter, [str(folder / "in")], out, args.format,
                                     progress=False, overlap=mode == "overlapped")
                seconds = time.perf_counter() - started
                assert len(result.written) == args.count, result.failures[:3]
                rates[mode].append(args.count / seconds)
                print(f"  round {round_} {mode:10s} {args.count / seconds:7.1f} images/s")
    for mode, values in rates.items():
        print(f"{mode:10s} best {max(values):.1f} images/s, median "
              f"{sorted(values)[len(values) // 2]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
