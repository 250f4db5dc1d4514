"""Flicker (dtSSD) with and without temporal stabilisation, on a synthetic portrait clip.

Run: ``python benchmarks/bench_flicker.py [--model default|NAME|weights|oracle]
[--size 320x192] [--frames 36] [--noise 2] [--crf 20]``.

The clip has exact alpha: a soft-edged head and shoulders composited over a still, textured
background; the person stands still for the first third, walks across in the second and
stands still again in the last. Every frame gets fresh sensor noise (``--noise``, in 0..255
units) and the clip goes through H.264 (``--crf``), as a real recording would.
Each frame is matted on its own (``coarse_filter=None``) and with a
:class:`~lpmatte.inference.temporal.TemporalStabilizer`; the table gives dtSSD (flicker, as Robust
Video Matting's evaluation, :func:`lpmatte.inference.temporal.dtssd`) and MAD x 1e3 (accuracy; a lag
on motion would raise it in the moving third) over all frames and per third.

``--model oracle`` replaces the network by a stand-in with known, independent per-frame
errors: the exact alpha at 1/8 resolution plus Gaussian noise (std 0.05), passed through the
same ``coarse_filter`` hook and upsampled bilinearly. It isolates what the stabiliser does
when a model's errors change from frame to frame (untrained weights give no such signal).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lpmatte.inference.temporal import TemporalStabilizer, dtssd
from lpmatte.media.video.pyav import import_av
from lpmatte.media.video.reader import VideoSource


def person_alpha(height: int, width: int, centre_x: float, edge: float = 2.0) -> np.ndarray:
    """Exact soft alpha (H, W) in [0, 1] of a head-and-shoulders silhouette at ``centre_x``."""
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    head = np.hypot((xx - centre_x) / (0.13 * width), (yy - 0.38 * height) / (0.22 * height))
    head_distance = (head - 1.0) * 0.15 * height  # roughly pixels outside the head ellipse
    shoulders = np.maximum(0.6 * height - yy, np.abs(xx - centre_x) - 0.28 * width)
    distance = np.minimum(head_distance, shoulders)
    return np.clip(0.5 - distance / (2 * edge), 0, 1)


def portrait_clip(frames: int, height: int, width: int, seed: int = 0):
    """(images float (T, H, W, 3) before noise, alphas (T, H, W), centre x per frame)."""
    rng = np.random.default_rng(seed)
    import cv2

    background = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), 2)
    background = 0.25 + 0.5 * background
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    skin = np.stack([0.75 + 0.05 * np.sin(xx / 3), 0.55 + 0.05 * np.cos(yy / 4),
                     0.45 + 0 * xx], -1)
    third = frames // 3
    positions = np.concatenate([np.full(third, 0.35), np.linspace(0.35, 0.65, frames - 2 * third),
                                np.full(third, 0.65)]) * width
    alphas = np.stack([person_alpha(height, width, x) for x in positions])
    images = alphas[..., None] * skin + (1 - alphas[..., None]) * background
    return images, alphas, positions


def record(images: np.ndarray, noise: float, crf: int, folder: Path, seed: int = 1) -> list:
    """Add per-frame noise, encode with H.264 and decode again: uint8 (H, W, 3) frames."""
    av = import_av()
    rng = np.random.default_rng(seed)
    path = folder / "portrait.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.height, stream.width = images.shape[1:3]
    stream.pix_fmt = "yuv420p"
    stream.codec_context.options = {"crf": str(crf)}
    for index, image in enumerate(images):
        noisy = image * 255 + rng.normal(0, noise, image.shape)
        frame = av.VideoFrame.from_ndarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8), "rgb24")
        frame.pts = index
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    source = VideoSource(path)
    frames = [frame.image for frame in source.decode()]
    source.close()
    return frames



class FakeOutput:
    """What convert_video reads of Matter.run's output."""

    def __init__(self, alpha: np.ndarray):
        self.alpha = alpha

    def alpha_array(self) -> np.ndarray:
        return self.alpha

class NoisyOracle:
    """A stand-in matter: exact coarse alpha + independent per-frame noise (see module doc)."""

    def __init__(self, alphas: np.ndarray, noise: float = 0.05, seed: int = 2):
        self.alphas, self.noise = alphas, noise
        self.rng = torch.Generator().manual_seed(seed)
        self.index = 0

    def run(self, image, coarse_filter=None):
        height, width = image.shape[:2]
        rows, cols = -(-height // 8), -(-width // 8)
        exact = torch.from_numpy(self.alphas[self.index])[None, None]
        self.index += 1
        coarse = F.adaptive_avg_pool2d(exact, (rows, cols))
        coarse = (coarse + torch.randn(coarse.shape, generator=self.rng) * self.noise).clamp(0, 1)
        unknown = 1 - (2 * coarse - 1).abs()
        probs = torch.cat([(1 - coarse) * (1 - unknown), unknown, coarse * (1 - unknown)], 1)
        probs = probs / probs.sum(1, keepdim=True)
        if coarse_filter is not None:
            lowres = F.adaptive_avg_pool2d(torch.from_numpy(image).permute(2, 0, 1)[None] / 255.0,
                                           (rows, cols))
            coarse, probs = coarse_filter(lowres, coarse, probs)
        alpha = F.interpolate(coarse, scale_factor=8, mode="bilinear", align_corners=False)
        return alpha[0, 0, :height, :width].numpy()


def matte(frames: list, make_matter, stabilize: bool) -> np.ndarray:
    matter = make_matter()
    stabilizer = TemporalStabilizer() if stabilize else None
    return np.stack([matter.run(frame, coarse_filter=stabilizer).alpha_array() for frame in frames])


def scores(pred: np.ndarray, true: np.ndarray) -> list[float]:
    """[dtSSD all, static, moving, static] + [MAD x1e3 all, static, moving, static]."""
    third = len(true) // 3
    parts = [slice(None), slice(0, third), slice(third, len(true) - third),
             slice(len(true) - third, None)]
    flicker = [dtssd(pred[part], true[part]) for part in parts]
    mad = [float(np.abs(pred[part] - true[part]).mean() * 1e3) for part in parts]
    return flicker + mad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="name, weights file, or 'oracle'")
    parser.add_argument("--backend", default="eager-fp32")
    parser.add_argument("--size", default="320x192", help="WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--noise", type=float, default=2.0, help="sensor noise std (0..255)")
    parser.add_argument("--crf", type=int, default=20, help="H.264 quality of the recording")
    args = parser.parse_args()
    torch.set_num_threads(1)
    width, height = (int(v) for v in args.size.lower().split("x"))
    images, alphas, _ = portrait_clip(args.frames, height, width)
    with tempfile.TemporaryDirectory() as folder:
        frames = record(images, args.noise, args.crf, Path(folder))
    if args.model == "oracle":
        def make_matter():
            return NoisyOracle(alphas)
        label = "noisy oracle (exact alpha at 1/8 + N(0, 0.05))"
    else:
        import lpmatte

        loaded = lpmatte.load(args.model, device="cpu", backend=args.backend)

        def make_matter():
            return loaded
        label = repr(loaded)
    print(f"{label}; {width}x{height}, {args.frames} frames, noise {args.noise}, crf {args.crf}")
    print(f"{'':12s} {'dtSSD: all':>10s} {'still':>6s} {'moving':>6s} {'still':>6s}"
          f" | {'MADx1e3: all':>12s} {'still':>6s} {'moving':>6s} {'still':>6s}")
    for stabilize in (False, True):
        values = scores(matte(frames, make_matter, stabilize), alphas)
        name = "stabilized" if stabilize else "per frame"
        print(f"{name:12s} {values[0]:10.3f} {values[1]:6.3f} {values[2]:6.3f} {values[3]:6.3f}"
              f" | {values[4]:12.2f} {values[5]:6.2f} {values[6]:6.2f} {values[7]:6.2f}")


if __name__ == "__main__":
    main()
