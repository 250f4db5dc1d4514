"""The loop shared by the post-processing sweeps (``sweep_settle.py``, ``sweep_deblock.py``):
held-out images matted once, each variant of the post-processing applied to that output,
every result scored as ``validate_default.py`` scores 8-bit PNG mattes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

import lpmatte
from lpmatte.media.image_io import load_alpha, load_rgb, to_uint8

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_default import scores  # noqa: E402

Variants = Callable[[object, np.ndarray], dict[str, np.ndarray]]


def run_sweep(description: str, variants: Variants, shown: tuple[str, ...], column: str,
              **load_options) -> None:
    """Parse ``--views``, ``--count``, ``--model``; print one markdown row per set and
    variant. ``variants(output, rgb)`` maps each variant's name to its (H, W) alpha, from the
    :class:`~lpmatte.model.two_stage.TwoStageOutput` of the model loaded with
    ``load_options`` and the float RGB image."""
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--views", type=Path, required=True,
                        help="validate_default.py's RUN/data (one folder per set)")
    parser.add_argument("--count", type=int, default=25, help="first N images of each set")
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    matter = lpmatte.load(args.model, backend="eager-fp32", **load_options)
    print(f"| set | {column} | " + " | ".join(shown) + " |")
    print("|---|---|" + "---|" * len(shown))
    for view in sorted(p for p in args.views.iterdir() if (p / "images").is_dir()):
        results: dict[str, list] = {}
        for path in sorted((view / "images").iterdir())[:args.count]:
            truth = load_alpha(view / "alpha" / f"{path.stem}.png")
            rgb = load_rgb(path)
            for name, alpha in variants(matter.run(rgb), rgb).items():
                matte = (to_uint8(alpha) / 255.0).astype(np.float32)
                results.setdefault(name, []).append(scores(matte, truth))
        for name, rows in results.items():
            means = " | ".join(f"{np.nanmean([row[k] for row in rows]):.5f}" for k in shown)
            print(f"| {view.name} | {name} | {means} |", flush=True)
