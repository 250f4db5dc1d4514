"""Failure pictures for a local look: the worst held-out ccp-people images of a validation run.

    python benchmarks/validate_default.py --soft /work/data/soft --out /work/runs/val_default
    python scripts/make_failure_gallery.py /work/runs/val_default /tmp/failure_cases.jpg

Rows: photo | target | lpmatte | MediaPipe, for the ``--count`` images with the highest
lpmatte MAD. The picture holds dataset photos: write it outside the repository (no dataset
image is committed here).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from lpmatte.media.image_io import load_alpha

SET = "ccp-people"


def panel(path: Path, height: int, grey: bool = False) -> np.ndarray:
    image = Image.open(path).convert("L" if grey else "RGB")
    width = round(image.width * height / image.height)
    array = np.asarray(image.resize((width, height), Image.BILINEAR))
    return np.repeat(array[..., None], 3, 2) if grey else array


def prediction_dir(run: Path) -> Path:
    return run / SET / "model" / "folder"  # lpmatte benchmark's folder-dataset tag


def worst(run: Path, count: int) -> list[str]:
    view, preds = run / "data" / SET, prediction_dir(run)
    errors = {p.stem: float(np.abs(load_alpha(p) - load_alpha(view / "alpha" / p.name)).mean())
              for p in sorted(preds.glob("*.png"))}
    return sorted(errors, key=errors.get, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="validate_default.py --out folder")
    parser.add_argument("figure", type=Path)
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--height", type=int, default=240)
    args = parser.parse_args()
    view = args.run / "data" / SET
    preds = prediction_dir(args.run)
    rows = []
    for stem in worst(args.run, args.count):
        image = next((view / "images").glob(f"{stem}.*"))
        mattes = (view / "alpha", preds, args.run / SET / "mediapipe")
        panels = [panel(image, args.height),
                  *(panel(folder / f"{stem}.png", args.height, True) for folder in mattes)]
        rows.append(np.concatenate(panels, axis=1))
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 4), (0, width - row.shape[1]), (0, 0)), constant_values=255)
            for row in rows]
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.figure, quality=85)
    print(f"{args.figure}: {len(rows)} rows (photo | target | lpmatte | MediaPipe)")


if __name__ == "__main__":
    main()
