"""Which deblocking filter: the default model's mattes of held-out images, deblocked with
several guide widths, scored as ``benchmarks/validate_default.py`` scores them.

    python benchmarks/sweep_deblock.py --views /work/runs/val_s14_final/data --count 25

``--views`` holds validate_default's folder views (``<set>/images``, ``<set>/alpha``). Each
image is matted once without deblocking (settled, as the default runs); then
:func:`lpmatte.inference.pipeline.deblock` acts on that matte with guide width sigma
(``unguided``: every excess step at a cell border is smoothed, also where the image has an
edge; ``none``: the matte as it was). Mattes are scored as 8-bit PNGs would be.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import lpmatte
from lpmatte.inference.pipeline import deblock
from lpmatte.media.image_io import load_alpha, load_rgb, to_uint8

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_default import scores  # noqa: E402

SIGMAS = {"none": None, "sigma 0.04": 0.04, "sigma 0.1": 0.1, "sigma 0.25": 0.25,
          "unguided": float("inf")}
SHOWN = ("MAD", "Grad", "band MAD", "texture", "texture off edges", "blocks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=Path, required=True)
    parser.add_argument("--count", type=int, default=25, help="first N images of each set")
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    matter = lpmatte.load(args.model, backend="eager-fp32", deblock=False)
    print("| set | filter | " + " | ".join(SHOWN) + " |")
    print("|---|---|" + "---|" * len(SHOWN))
    for view in sorted(p for p in args.views.iterdir() if (p / "images").is_dir()):
        results: dict[str, list] = {name: [] for name in SIGMAS}
        for path in sorted((view / "images").iterdir())[:args.count]:
            truth = load_alpha(view / "alpha" / f"{path.stem}.png")
            rgb = load_rgb(path)
            alpha = torch.from_numpy(matter.run(rgb).alpha_array())[None, None]
            image = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # load_rgb: float in [0, 1]
            for name, sigma in SIGMAS.items():
                out = alpha if sigma is None else deblock(alpha, image, sigma=sigma)
                matte = to_uint8(out[0, 0].numpy()) / 255.0
                results[name].append(scores(matte.astype(np.float32), truth))
        for name, rows in results.items():
            means = " | ".join(f"{np.nanmean([row[k] for row in rows]):.5f}" for k in SHOWN)
            print(f"| {view.name} | {name} | {means} |", flush=True)


if __name__ == "__main__":
    main()
