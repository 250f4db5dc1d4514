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

import sys
from pathlib import Path

import numpy as np
import torch

from lpmatte.inference.pipeline import TRANSITION_MARGIN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweeps import run_sweep  # noqa: E402

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


def settled(output, rgb: np.ndarray) -> dict[str, np.ndarray]:
    alpha = output.alpha_array()
    refined = refined_pixels(output.regions, alpha.shape)
    return {rule: snapped(alpha, refined, outside, inside)
            for rule, (outside, inside) in RULES.items()}


if __name__ == "__main__":
    # as in session 15: the rules act on the matte before deblocking
    run_sweep(__doc__, settled, SHOWN, "rule", settle=False, deblock=False)
