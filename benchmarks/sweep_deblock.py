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

import sys
from pathlib import Path

import numpy as np
import torch

from lpmatte.inference.pipeline import deblock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweeps import run_sweep  # noqa: E402

SIGMAS = {"none": None, "sigma 0.04": 0.04, "sigma 0.1": 0.1, "sigma 0.25": 0.25,
          "unguided": float("inf")}
SHOWN = ("MAD", "Grad", "band MAD", "texture", "texture off edges", "blocks")


def deblocked(output, rgb: np.ndarray) -> dict[str, np.ndarray]:
    alpha = torch.from_numpy(output.alpha_array())[None, None]
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # load_rgb: float in [0, 1]
    return {name: (alpha if sigma is None else deblock(alpha, image, sigma=sigma))[0, 0].numpy()
            for name, sigma in SIGMAS.items()}


if __name__ == "__main__":
    run_sweep(__doc__, deblocked, SHOWN, "filter", deblock=False)
