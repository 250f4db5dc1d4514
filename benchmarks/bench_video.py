"""End-to-end video fps (decode + model + encode, overlapped) against model-only fps.

Run: ``python benchmarks/bench_video.py [--model lpm-s|sleep:MS] [--size 640x360] [--frames 40]
[--formats prores webm png composite] [--threads 2] [--backend auto]``.

Writes a synthetic H.264 clip, prints its decoding-only fps, then per output format:
- encode-only fps: composing and encoding precomputed alphas;
- model-only fps: ``Matter.predict`` on frames already decoded into memory;
- serial fps: decode, predict and encode one after the other in one thread (no overlap);
- end-to-end fps: :func:`lpmatte.apps.video.convert_video` (threads and queues), and its
  ratio to model-only fps (100% means decoding and encoding cost nothing extra).
With spare CPU cores (or the model on a GPU), end to end approaches the slowest stage;
serial approaches 1 / (sum of the stages' times per frame).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import lpmatte
from lpmatte.apps.video import composer, convert_video, make_background, make_writer, resolve_target
from lpmatte.inference.temporal import video_predictor
from lpmatte.media.video.output import AtomicOutput
from lpmatte.media.video.pyav import import_av
from lpmatte.media.video.reader import VideoSource

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



class FakeOutput:
    """What convert_video reads of Matter.run's output."""

    def __init__(self, alpha: np.ndarray):
        self.alpha = alpha

    def alpha_array(self) -> np.ndarray:
        return self.alpha

class SleepingMatter:
    """A stand-in for a model on a GPU: ``predict`` waits ``seconds`` without using the CPU
    (as a CUDA call does) and returns a fixed soft disc. Shows how much of the model's
    speed the pipeline keeps when decoding and encoding have the CPU to themselves."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"SleepingMatter({self.seconds * 1e3:.0f} ms per frame)"

    def run(self, image, coarse_filter=None):
        return FakeOutput(self.alpha(image))

    def alpha(self, image):
        time.sleep(self.seconds)
        height, width = image.shape[:2]
        yy, xx = np.mgrid[:height, :width]
        distance = np.hypot(yy - height / 2, xx - width / 2) - min(height, width) / 3
        return np.clip(0.5 - distance / 4, 0, 1).astype(np.float32)


def model_only_fps(matter, images: list[np.ndarray], stabilize: bool) -> float:
    """Frames per second of the model alone, with the same stabilisation as the video run
    (:func:`~lpmatte.inference.temporal.video_predictor`: the coarse filter and the hold)."""
    predict = video_predictor(matter, stabilize)
    started = time.perf_counter()
    for image in images:
        predict(image)
    return len(images) / (time.perf_counter() - started)


def decoded(clip: Path) -> tuple[list[np.ndarray], float]:
    """All frames of ``clip`` and the decoding speed in fps."""
    started = time.perf_counter()
    source = VideoSource(clip)
    images = [frame.image for frame in source.decode()]
    source.close()
    return images, len(images) / (time.perf_counter() - started)


def encode_only_fps(images: list[np.ndarray], alphas: list[np.ndarray], output: Path,
                    format: str, frame_rate: int = 25) -> float:
    """Frames per second of composing and encoding alone."""
    from fractions import Fraction

    from lpmatte.media.video.writer import ContainerWriter, PngSequenceWriter

    target = resolve_target(output, format)
    compose = composer(format, make_background(format, None))
    started = time.perf_counter()
    with AtomicOutput(target.path, folder=target.is_folder) as tmp:
        writer = PngSequenceWriter(tmp) if target.is_folder else ContainerWriter(
            tmp, target.container, target.encoder, Fraction(frame_rate), Fraction(1, frame_rate))
        for index, (image, alpha) in enumerate(zip(images, alphas, strict=True)):
            writer.write(*compose(image, alpha), index)
        writer.close()
    return len(images) / (time.perf_counter() - started)


def serial_fps(matter, clip: Path, output: Path, format: str, stabilize: bool) -> float:
    """Decode, predict, compose and encode in one thread, frame after frame."""
    target = resolve_target(output, format)
    source = VideoSource(clip)
    compose = composer(format, make_background(format, None))
    predict = video_predictor(matter, stabilize)
    started = time.perf_counter()
    frames = 0
    with AtomicOutput(target.path, folder=target.is_folder) as tmp:
        writer = make_writer(target, source, tmp, audio=False, notice=lambda message: None)
        for frame in source.decode():
            alpha = predict(frame.image)
            writer.write(*compose(frame.image, alpha), frame.pts)
            frames += 1
        writer.close()
    source.close()
    return frames / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lpm-s",
                        help="model name or weights file, or sleep:MS for a stand-in GPU model")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--formats", nargs="+", default=["prores", "webm", "png", "composite"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-stabilize", dest="stabilize", action="store_false")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.model.startswith("sleep:"):
        matter = SleepingMatter(float(args.model.split(":")[1]) / 1e3)
    else:
        matter = lpmatte.load(args.model, device=args.device, backend=args.backend)
    with tempfile.TemporaryDirectory() as folder:
        clip = write_clip(Path(folder) / "clip.mp4", args.frames, width, height)
        images, decode_fps = decoded(clip)
        alphas = [matter.predict(image) for image in images]  # also the warm-up
        print(f"{matter!r}, {width}x{height}, {args.frames} frames, "
              f"torch threads {torch.get_num_threads()}, stabilize {args.stabilize}")
        print(f"decoding only: {decode_fps:.1f} fps")
        for format in args.formats:  # model-only measured next to each run: shared machines drift
            output = Path(folder) / f"out_{format}{SUFFIX[format]}"
            encode_fps = encode_only_fps(images, alphas, output, format)
            model_fps = model_only_fps(matter, images, args.stabilize)
            serial = serial_fps(matter, clip, output, format, args.stabilize)
            result = convert_video(clip, output, format=format, matter=matter,
                                   stabilize=args.stabilize, progress=False)
            print(f"{format:9s}: encode only {encode_fps:6.1f} | model only {model_fps:6.2f} | "
                  f"serial {serial:6.2f} | end to end {result.fps:6.2f} fps "
                  f"= {result.fps / model_fps:4.0%} of model only")


if __name__ == "__main__":
    main()
