"""Which settling rule: the default model's mattes of held-out images snapped to 0 / 1 in
several ways, scored as ``benchmarks/validate_default.py`` scores them.

    python benchmarks/sweep_settle.py --views /work/runs/val_s14_final/data --count 25

``--views`` holds validate_default's folder views (``<set>/images``, ``<set>/alpha``). Each
image is matted once without settling; the rules then act on that matte, knowing which cells
were refined: ``unrefined m`` snaps values within m of 0 or 1 outside the refined cells (what
``InferenceOptions.settle`` does, m = 0.1); ``+ refined m2`` also snaps within m2 inside
them; ``everywhere m`` ignores the cells. Mattes are scored as 8-bit PNGs would be.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import lpmatte
from lpmatte.inference.pipeline import TRANSITION_MARGIN
from lpmatte.media.image_io import load_alpha, load_rgb, to_uint8

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_default import scores  # noqa: E402

# name -> (margin outside refined cells, margin inside them)
RULES = {"none": (0.0, 0.0), "unrefined 0.05": (0.05, 0.0),
         f"unrefined {TRANSITION_MARGIN}": (TRANSITION_MARGIN, 0.0),
         "+ refined 0.02": (TRANSITION_MARGIN, 0.02), "+ refined 0.05": (TRANSITION_MARGIN, 0.05),
         f"everywhere {TRANSITION_MARGIN}": (TRANSITION_MARGIN, TRANSITION_MARGIN)}
SHOWN = ("MAD", "Grad", "band MAD", "texture")


def refined_pixels(regions: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = (shape[0] + 7) // 8, (shape[1] + 7) // 8
    cells = np.zeros((rows, cols), bool)
    regions = regions.numpy()
    cells[regions[:, 1], regions[:, 2]] = True
    return np.kron(cells, np.ones((8, 8), bool))[:shape[0], :shape[1]]


def snapped(alpha: np.ndarray, refined: np.ndarray, outside: float, inside: float):
    out = alpha.copy()
    for where, margin in ((~refined, outside), (refined, inside)):
        out[where & (out <= margin)] = 0.0
        out[where & (out >= 1 - margin)] = 1.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=Path, required=True)
    parser.add_argument("--count", type=int, default=25, help="first N images of each set")
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    matter = lpmatte.load(args.model, backend="eager-fp32", settle=False)
    print("| set | rule | " + " | ".join(SHOWN) + " |")
    print("|---|---|" + "---|" * len(SHOWN))
    for view in sorted(p for p in args.views.iterdir() if (p / "images").is_dir()):
        results: dict[str, list] = {rule: [] for rule in RULES}
        for image in sorted((view / "images").iterdir())[:args.count]:
            truth = load_alpha(view / "alpha" / f"{image.stem}.png")
            output = matter.run(load_rgb(image))
            alpha = output.alpha_array()
            refined = refined_pixels(output.regions, alpha.shape)
            for rule, (outside, inside) in RULES.items():
                matte = to_uint8(snapped(alpha, refined, outside, inside)) / 255.0
                results[rule].append(scores(matte.astype(np.float32), truth))
        for rule, rows in results.items():
            means = " | ".join(f"{np.nanmean([row[k] for row in rows]):.5f}" for k in SHOWN)
            print(f"| {view.name} | {rule} | {means} |")


if __name__ == "__main__":
    main()
