"""Choose a model's two-pass threshold (``lowres_side``) on training images, not held-out ones.

For each image size (the photo's own, and bicubic-upscaled copies standing in for larger
photos) and each candidate ``lowres_side`` (0 = one full-resolution pass), the model mattes
every image and the MAD and Grad (P3M's) against the soft-alpha target (at the target's
size) and the number of refined regions are averaged.

    python benchmarks/sweep_lowres_side.py --model runs/x/last.pt --soft /work/data/soft \
        --sides 0,320,400,480,640 --scales 1,2 --count 40 [--flip-tta on]

Run it with ``--flip-tta on`` and ``off`` to choose mirror averaging the same way, and with
``--margins 0.02,0.1`` to choose which cells the second pass refines
(``InferenceOptions.transition_margin``, ``--transition-margin``; one table per margin).
Images come from the shared sets minus the held-out ids (training/val_ids.txt), every
n-th sorted stem, so the choice is not tuned on the validation split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import lpmatte
from lpmatte.cli.common import parse_switch
from lpmatte.inference.options import TRANSITION_MARGIN
from lpmatte.media.image_io import load_alpha, load_rgb
from lpmatte.metrics import grad_error_p3m

ROOT = Path(__file__).resolve().parents[1]
SETS = ("flickr-portraits", "ccp-people")


def training_pairs(shared: Path, soft: Path, val_ids: Path, count: int):
    """(image path, alpha path) of ``count`` training images per set, spread evenly."""
    held_out = set(val_ids.read_text().split())
    pairs = []
    for set_name in SETS:
        stems = sorted(p.stem for p in (soft / set_name / "alpha").glob("*.png")
                       if f"{set_name}/{p.stem}" not in held_out)
        for stem in stems[:: max(1, len(stems) // count)][:count]:
            image = next((shared / set_name / "images").glob(f"{stem}.*"))
            pairs.append((image, soft / set_name / "alpha" / f"{stem}.png"))
    return pairs


def scores_at_scale(matter, image: np.ndarray, alpha: np.ndarray,
                    scale: float) -> tuple[float, float, int]:
    """(MAD, Grad, refined regions) of ``image`` matted at ``scale`` times its size, the
    matte area-averaged back to the target's size."""
    height, width = image.shape[:2]
    if scale != 1:
        size = (round(width * scale), round(height * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    output = matter.run(np.clip(image, 0, 1))
    pred = cv2.resize(output.alpha_array(), alpha.shape[::-1], interpolation=cv2.INTER_AREA)
    return (float(np.abs(pred - alpha).mean()), grad_error_p3m(pred, alpha),
            len(output.regions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--soft", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--val-ids", type=Path, default=ROOT / "training" / "val_ids.txt")
    parser.add_argument("--sides", default="0,320,400,480,640")
    parser.add_argument("--scales", default="1,2")
    parser.add_argument("--count", type=int, default=40, help="images per set")
    parser.add_argument("--flip-tta", default="auto", type=parse_switch, metavar="on|off",
                        help="mirror averaging (lpmatte.load); default: the weights'")
    parser.add_argument("--margins", default=str(TRANSITION_MARGIN),
                        help="second-pass transition margins to compare (default: the "
                             "package's)")
    args = parser.parse_args()
    sides = [int(s) for s in args.sides.split(",")]
    scales = [float(s) for s in args.scales.split(",")]
    pairs = [(load_rgb(i), load_alpha(a)) for i, a in
             training_pairs(args.shared, args.soft, args.val_ids, args.count)]
    for margin in [float(m) for m in args.margins.split(",")]:
        print(f"\n{len(pairs)} training images, flip_tta {args.flip_tta}, transition margin "
              f"{margin:g}; MAD / Grad / refined regions by image scale (rows) and "
              "lowres_side (columns)")
        print_table(args.model, pairs, sides, scales, args.flip_tta, margin)


def print_table(model: str, pairs, sides: list[int], scales: list[float], flip_tta,
                margin: float) -> None:
    print("| scale | " + " | ".join(f"side {s or 'off'}" for s in sides) + " |")
    print("|---|" + "---|" * len(sides))
    for scale in scales:
        cells = []
        for side in sides:
            matter = lpmatte.load(model, device="cpu", backend="eager-fp32",
                                  lowres_side=side, flip_tta=flip_tta,
                                  transition_margin=margin)
            cells.append(np.mean([scores_at_scale(matter, image, alpha, scale)
                                  for image, alpha in pairs], axis=0))
        print(f"| x{scale:g} | " + " | ".join(f"{m:.4f} / {g:.2f} / {n:.0f}" for m, g, n in cells)
              + " |", flush=True)


if __name__ == "__main__":
    main()
