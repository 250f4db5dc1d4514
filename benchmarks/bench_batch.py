"""Folder throughput: images/s with decoding, inference and encoding one after the other
(serial) vs overlapped in three threads, in the same run on the same images, next to the
model alone (``Matter.predict`` on the decoded images in memory): the rate overlapping
approaches when decoding and encoding hide behind inference.

    python benchmarks/bench_batch.py --count 200 --model default
    python benchmarks/bench_batch.py --images /work/shared/data/flickr-portraits/images \
        --size hd --count 16
    python benchmarks/bench_batch.py --images DIR --size hd --count 12 --format rgba \
        --png-compression 6 1      # PNG levels side by side: each mode runs once per level

Images are made under a temporary folder and deleted afterwards: crops of
examples/astronaut.png (see :func:`make_images`), or with --images the first --count photos
of a folder resized to --size as `lpmatte profile` does and saved as JPEG (quality 90).
The images/s figure is the one `lpmatte matte` prints after a folder (its BatchResult).
The CPU is printed with the numbers.
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
from lpmatte.media.image_io import PNG_COMPRESSION

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


def photos(folder: Path, source: str, count: int, size: str) -> list[Path]:
    """The first ``count`` photos of ``source`` resized to ``size``, as JPEGs in ``folder``."""
    from lpmatte.evaluation.profiler import parse_size, profile_inputs

    paths = []
    for index, array in enumerate(profile_inputs(parse_size(size), source).images[:count]):
        path = folder / f"photo{index:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path, quality=90)
        paths.append(path)
    return paths


def model_rate(matter, paths: list[Path]) -> float:
    """Images/s of the model alone on the images decoded as ``lpmatte matte`` decodes them
    (uint8 for 8-bit files), one warm-up call first."""
    from lpmatte.media.image_io import read_rgb

    images = [read_rgb(path) for path in paths]
    matter.predict(images[0])
    started = time.perf_counter()
    for image in images:
        matter.predict(image)
    return len(images) / (time.perf_counter() - started)


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
    parser.add_argument("--images", default=None, help="real photos instead of crops")
    parser.add_argument("--size", default="hd", help="with --images: hd, 4k or WxH")
    parser.add_argument("--png-compression", type=int, nargs="+", default=[PNG_COMPRESSION],
                        metavar="LEVEL", help="zlib levels of the outputs, taking turns")
    args = parser.parse_args(argv)
    matter = lpmatte.load(args.model, device="cpu")
    backend = getattr(matter.backend, "name", type(matter.backend).__name__)
    what = (f"photos of {args.images} at {args.size}" if args.images else "images 64-128 px")
    print(f"CPU: {cpu_name()}; model {args.model}, backend {backend}, "
          f"{args.count} {what}, format {args.format}")
    with tempfile.TemporaryDirectory(prefix="lpmatte-bench-batch-") as folder:
        folder = Path(folder)
        paths = (photos(folder / "in", args.images, args.count, args.size) if args.images
                 else make_images(folder / "in", args.count))
        args.count = len(paths)
        matte_files(matter, [str(folder / "in")], folder / "warm", args.format,
                    progress=False)  # warm-up: lazy exports, caches, allocator
        modes = [f"{mode}, level {level}" for level in args.png_compression
                 for mode in ("serial", "overlapped")] + ["model alone"]
        rates: dict[str, list[float]] = {mode: [] for mode in modes}
        for round_ in range(args.repeats):
            for mode in rates:
                written = ""
                if mode == "model alone":
                    rates[mode].append(model_rate(matter, paths))
                else:
                    name, level = mode.split(", level ")
                    out = folder / f"{name}{level}-{round_}"
                    result = matte_files(matter, [str(folder / "in")], out, args.format,
                                         progress=False, overlap=name == "overlapped",
                                         png_compression=int(level))
                    assert len(result.written) == args.count, result.failures[:3]
                    rates[mode].append(result.images_per_second)
                    megabytes = sum(path.stat().st_size for path in result.written) / 1e6
                    written = f", {megabytes:.1f} MB written"
                print(f"  round {round_} {mode:22s} {rates[mode][-1]:7.2f} images/s{written}")
    for mode, values in rates.items():
        print(f"{mode:22s} best {max(values):.2f} images/s, median "
              f"{sorted(values)[len(values) // 2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
