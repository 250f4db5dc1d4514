"""lpmatte vs MediaPipe selfie segmentation on CPU: latency and quality in one run.

MediaPipe (mediapipe==0.10.21; its legacy Selfie Segmentation solution, whose two TFLite
models, "general" 256x256 and "landscape" 144x256, ship inside the wheel) runs in a virtual
environment of its own, created on first use under $LPMATTE_CACHE/bench-mediapipe (default
~/.cache/lpmatte), never in lpmatte's environment. If it cannot be installed, the script
says so and reports lpmatte alone.

Both tools get the same uint8 RGB images: synthetic portraits with exact alpha
(lpmatte.data.synthetic, the default) or real photos with --images and --masks (binary person
masks, e.g. flickr-portraits). Latency: per image, the median of --repeat calls after one
warm-up, in-memory image to full-resolution matte; the table gives the median over images.
Quality: the same metric code for both (lpmatte.metrics): SAD (thousands), MSE x 1e3,
MAD x 1e3 inside the ground truth's soft boundary band, IoU of alpha > 0.5.

    python benchmarks/bench_mediapipe.py --model lpm --size hd --count 5 [--out table.md]
    python benchmarks/bench_mediapipe.py --images DIR --masks DIR --count 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import lpmatte
from lpmatte.data.synthetic import synthetic_portrait
from lpmatte.evaluation.profiler import hardware_name, parse_size
from lpmatte.files import atomic_write
from lpmatte.media.image_io import load_alpha, open_image
from lpmatte.metrics import mad, mse, sad

MEDIAPIPE = "mediapipe==0.10.21"
SELECTIONS = {0: "general 256x256", 1: "landscape 144x256"}

WORKER = r'''
import json, sys, time
import numpy as np
import mediapipe as mp

folder, repeat = sys.argv[1], int(sys.argv[2])
names = json.load(open(f"{folder}/names.json"))
result = {}
for selection in (0, 1):
    solution = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=selection)
    times = []
    for name in names:
        rgb = np.load(f"{folder}/{name}.npy")
        solution.process(rgb)  # warm-up
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            mask = solution.process(rgb).segmentation_mask
            runs.append(time.perf_counter() - start)
        times.append(float(np.median(runs)) * 1e3)
        np.save(f"{folder}/{name}.mp{selection}.npy", np.asarray(mask, np.float32))
    solution.close()
    result[selection] = times
json.dump({"times": result, "version": mp.__version__}, open(f"{folder}/mediapipe.json", "w"))
'''


def cache_dir() -> Path:
    return Path(os.environ.get("LPMATTE_CACHE", Path.home() / ".cache" / "lpmatte"))


def mediapipe_python() -> tuple[Path | None, str]:
    """The venv's python with mediapipe installed (created on first use), or (None, why)."""
    venv = cache_dir() / "bench-mediapipe"
    python = venv / "bin" / "python"
    if python.is_file() and _run([str(python), "-c", "import mediapipe"], 120)[0]:
        return python, ""
    print(f"creating {venv} and installing {MEDIAPIPE} (once) ...", file=sys.stderr)
    ok, log = _run([sys.executable, "-m", "venv", "--clear", str(venv)], 300)
    if ok:
        ok, log = _run([str(python), "-m", "pip", "install", "-q", MEDIAPIPE], 1200)
    if ok:
        ok, log = _run([str(python), "-c", "import mediapipe"], 120)
    return (python, "") if ok else (None, log.strip().splitlines()[-1] if log.strip() else "?")


def _run(command: list[str], timeout: int) -> tuple[bool, str]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, str(error)
    return done.returncode == 0, done.stdout + done.stderr


def load_scenes(args) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """[(name, uint8 HxWx3 image, float HxW ground truth in [0, 1])]."""
    size = parse_size(args.size) if args.size else None
    if args.images is None:
        height, width = size or parse_size("hd")
        return [(f"synthetic{seed}", *synthetic_portrait(height, width, seed))
                for seed in range(args.count)]
    scenes = []
    for path in sorted(Path(args.images).iterdir())[: args.count]:
        mask = next(Path(args.masks).glob(f"{path.stem}.*"), None)
        if mask is None:
            continue
        image, alpha = np.asarray(open_image(path).convert("RGB")), load_alpha(mask)
        if size:
            image = cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(alpha, size[::-1], interpolation=cv2.INTER_AREA)
        scenes.append((path.stem, image, alpha))
    if not scenes:
        sys.exit(f"no image in {args.images} has a mask of the same name in {args.masks}")
    return scenes


def quality(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    band = cv2.dilate(((gt > 0.01) & (gt < 0.99)).astype(np.uint8), np.ones((15, 15), np.uint8))
    if not band.any():  # binary ground truth: a band around the mask edge
        edge = cv2.morphologyEx((gt > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT,
                                np.ones((3, 3), np.uint8))
        band = cv2.dilate(edge, np.ones((15, 15), np.uint8))
    fg, truth = pred > 0.5, gt > 0.5
    iou = (fg & truth).sum() / max((fg | truth).sum(), 1)
    return {"SAD": sad(pred, gt), "MSE x1e3": mse(pred, gt) * 1e3,
            "band MAD x1e3": mad(pred, gt, band > 0) * 1e3, "IoU": float(iou)}


def time_lpmatte(args, scenes):
    matter = lpmatte.load(args.model, device="cpu", backend=args.backend)
    times, preds = [], []
    for _, image, _ in scenes:
        matter.predict(image)  # warm-up
        runs = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            alpha = matter.predict(image)
            runs.append((time.perf_counter() - start) * 1e3)
        times.append(float(np.median(runs)))
        preds.append(alpha)
    label = f"lpmatte {matter.name} ({matter.backend.name}" + (
        ", untrained)" if matter.untrained else ")")
    return label, times, preds


def time_mediapipe(args, scenes):
    """{label: (times, preds)}, or a reason string when MediaPipe is unavailable."""
    python, why = mediapipe_python()
    if python is None:
        return f"MediaPipe skipped: {MEDIAPIPE} could not be installed ({why})"
    with tempfile.TemporaryDirectory(prefix="bench-mediapipe-") as folder:
        names = [name for name, _, _ in scenes]
        Path(folder, "names.json").write_text(json.dumps(names))
        for name, image, _ in scenes:
            np.save(Path(folder, f"{name}.npy"), image)
        Path(folder, "worker.py").write_text(WORKER)
        ok, log = _run([str(python), str(Path(folder, "worker.py")), folder, str(args.repeat)],
                       1800)
        if not ok:
            return f"MediaPipe skipped: its run failed ({log.strip().splitlines()[-1]})"
        report = json.loads(Path(folder, "mediapipe.json").read_text())
        return {f"MediaPipe {report['version']} selfie {SELECTIONS[s]}":
                (report["times"][str(s)],
                 [np.load(Path(folder, f"{n}.mp{s}.npy")) for n in names])
                for s in SELECTIONS}


def table(results: dict, scenes) -> str:
    metrics = list(quality(scenes[0][2], scenes[0][2]))
    lines = ["| method | ms (median) | FPS | " + " | ".join(metrics) + " |",
             "|" + "---|" * (3 + len(metrics))]
    for label, (times, preds) in results.items():
        scores = [quality(p, gt) for p, (_, _, gt) in zip(preds, scenes)]
        means = [np.mean([s[m] for s in scores]) for m in metrics]
        ms = float(np.median(times))
        lines.append(f"| {label} | {ms:.1f} | {1e3 / ms:.1f} | "
                     + " | ".join(f"{v:.3f}" for v in means) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--size", default=None, help="hd, 4k or WxH (default: hd for the "
                        "synthetic portraits, native size for --images)")
    parser.add_argument("--count", type=int, default=5, help="images (default 5)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per image")
    parser.add_argument("--images", default=None, help="folder of photos")
    parser.add_argument("--masks", default=None, help="folder of their masks (same stems)")
    parser.add_argument("--out", default=None, help="also write the markdown here")
    args = parser.parse_args()
    if (args.images is None) != (args.masks is None):
        parser.error("--images and --masks go together")
    scenes = load_scenes(args)
    label, times, preds = time_lpmatte(args, scenes)
    results = {label: (times, preds)}
    other = time_mediapipe(args, scenes)
    note = other if isinstance(other, str) else ""
    if not note:
        results.update(other)
    height, width = scenes[0][1].shape[:2]
    source = args.images or "synthetic portraits (lpmatte.data.synthetic)"
    text = (f"CPU: {hardware_name(torch.device('cpu'))}, lpmatte with {torch.get_num_threads()} "
            f"threads; {len(scenes)} images of {width}x{height} from {source}.\n"
            f"Command: python benchmarks/bench_mediapipe.py {' '.join(sys.argv[1:])}\n\n"
            + table(results, scenes) + "\n" + (f"\n{note}\n" if note else ""))
    print(text)
    if note:
        print(note, file=sys.stderr)
    if args.out:
        atomic_write(Path(args.out), lambda tmp: Path(tmp).write_text(text))


if __name__ == "__main__":
    main()
