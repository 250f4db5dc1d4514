"""End-to-end video fps (decode + model + encode, overlapped) against model-only fps.

Run: ``python benchmarks/bench_video.py [--model lpm-s] [--size 640x360] [--frames 40]
[--formats prores webm png composite] [--threads 2]``.

Writes a synthetic H.264 clip, then prints, per output format:
- model-only fps: ``Matter.predict`` on frames already decoded into memory;
- serial fps: decode, predict and encode one after the other in one thread (no overlap);
- end-to-end fps: :func:`lpmatte.video.convert_video` (threads and queues), and its
  ratio to model-only fps (1.0 means decoding and encoding cost nothing extra).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import lpmatte
from lpmatte.video import composer, convert_video, make_background, make_writer, resolve_target
from lpmatte.video_io import AtomicOutput, VideoSource, import_av

SUFFIX = {"prores": ".mov", "webm": ".webm", "png": "", "alpha": ".mp4", "green": ".mp4",
          "composite": ".mp4"}


def write_clip(path: Path, frames: int, width: int, height: int, fps: int = 25) -> Path:
    """A textured background with a moving head-and-shoulders blob, H.264 (yuv420p)."""
    av = import_av()
    rng = np.random.default_rng(0)
    texture = (rng.random((height, width * 2, 3)) * 255).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    for index in range(frames):
        image = texture[:, index * 4 % width: index * 4 % width + width].copy()
        cx = width * (0.4 + 0.2 * np.sin(index / 10))
        head = ((xx - cx) / (0.12 * width)) ** 2 + ((yy - 0.35 * height) / (0.2 * height)) ** 2 < 1
        body = (yy > 0.55 * height) & (np.abs(xx - cx) < 0.25 * width)
        image[head | body] = (200, 150, 120)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return path


def model_only_fps(matter, clip: Path) -> float:
    source = VideoSource(clip)
    images = [frame.image for frame in source.decode()]
    source.close()
    matter.predict(images[0])  # warm-up
    started = time.perf_counter()
    for image in images:
        matter.predict(image)
    return len(images) / (time.perf_counter() - started)


def serial_fps(matter, clip: Path, output: Path, format: str) -> float:
    """Decode, predict, compose and encode in one thread, frame after frame."""
    target = resolve_target(output, format)
    source = VideoSource(clip)
    compose = composer(format, make_background(format, None))
    started = time.perf_counter()
    frames = 0
    with AtomicOutput(target.path, folder=target.is_folder) as tmp:
        writer = make_writer(target, source, tmp, audio=False, notice=lambda message: None)
        for frame in source.decode():
            writer.write(*compose(frame.image, matter.predict(frame.image)), frame.pts)
            frames += 1
        writer.close()
    source.close()
    return frames / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lpm-s")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--formats", nargs="+", default=["prores", "webm", "png", "composite"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-stabilize", dest="stabilize", action="store_false")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    matter = lpmatte.load(args.model, device=args.device)
    with tempfile.TemporaryDirectory() as folder:
        clip = write_clip(Path(folder) / "clip.mp4", args.frames, width, height)
        model_fps = model_only_fps(matter, clip)
        print(f"{matter!r}, {width}x{height}, {args.frames} frames, "
              f"torch threads {torch.get_num_threads()}")
        print(f"model only: {model_fps:.2f} fps")
        for format in args.formats:
            output = Path(folder) / f"out_{format}{SUFFIX[format]}"
            serial = serial_fps(matter, clip, output, format)
            result = convert_video(clip, output, format=format, matter=matter,
                                   stabilize=args.stabilize, progress=False)
            print(f"{format:9s}: end to end {result.fps:.2f} fps "
                  f"({result.fps / model_fps:.0%} of model only; model inside the run "
                  f"{result.model_fps:.2f} fps), serial {serial:.2f} fps")


if __name__ == "__main__":
    main()
