"""Choose ``person_height`` (the zoom of the first pass for small people) on a folder set.

Every image of a folder dataset (``images/`` + ``alpha/``, e.g. a composite set made with
``make_group_set.py`` from training ids) is matted without the zoom and with each
``--heights`` value; the script prints the mean MAD, the paired difference from no zoom
with a 95 % bootstrap interval, and how many images were zoomed:

    python benchmarks/make_group_set.py --val-ids TRAINING_IDS --seed 24 \\
        --out /work/data/train-groups --count 150 --size 640
    python benchmarks/sweep_person_height.py /work/data/train-groups --heights 240,320,400,480

Choose on training ids; score the held-out sets with ``validate_default.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

import lpmatte
from lpmatte.inference.person_scale import person_cells, tallest_person

BOOTSTRAP = 2000


def load_pair(image_path: Path, alpha_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)[..., ::-1].copy()
    alpha = cv2.imread(str(alpha_dir / f"{image_path.stem}.png"), cv2.IMREAD_GRAYSCALE)
    return image, alpha.astype(np.float32) / 255


def interval(differences: np.ndarray, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(differences), (BOOTSTRAP, len(differences)))
    means = differences[picks].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder dataset: images/ and alpha/")
    parser.add_argument("--heights", default="240,320,400,480")
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    heights = [int(h) for h in args.heights.split(",")]
    paths = sorted((args.folder / "images").glob("*.png"))[: args.limit]
    if not paths:
        raise SystemExit(f"no images/*.png under {args.folder}")
    plain = lpmatte.load(args.model, backend="eager-fp32", person_height=0)
    zooming = {h: plain.with_options(person_height=h) for h in heights}
    base, errors, zoomed = [], {h: [] for h in heights}, {h: 0 for h in heights}
    for path in paths:
        image, truth = load_pair(path, args.folder / "alpha")
        output = plain.run(image)
        alpha = output.alpha_array()
        base.append(np.abs(alpha - truth).mean())
        for height, matter in zooming.items():
            other = matter.predict(image)
            zoomed[height] += not np.array_equal(other, alpha)
            errors[height].append(np.abs(other - truth).mean())
        if sys.stderr.isatty():
            print(f"{path.name}: tallest {tallest_person(person_cells(output.alpha))} px", end="\r",
                  file=sys.stderr, flush=True)
    base = np.array(base)
    print(f"{len(base)} images of {args.folder}, model {args.model}; MAD x 1e3")
    print(f"{'person_height':>14} {'MAD':>8} {'- no zoom (95 %)':>30} {'zoomed':>7}")
    print(f"{'off':>14} {base.mean() * 1e3:8.3f}")
    for height in heights:
        difference = np.array(errors[height]) - base
        low, high = interval(difference)
        print(f"{height:>14} {np.mean(errors[height]) * 1e3:8.3f} "
              f"{difference.mean() * 1e3:+9.3f} ({low * 1e3:+.3f} .. {high * 1e3:+.3f})"
              f"{zoomed[height]:>8}")


if __name__ == "__main__":
    main()
