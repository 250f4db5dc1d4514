"""Failure pictures for a local look: the worst held-out images of a validation run.

    python benchmarks/validate_default.py --model NEW.safetensors --soft /work/data/soft \
        --groups /work/data/val-groups --modnet /work/peers/modnet.onnx --out /work/runs/val
    python scripts/make_failure_gallery.py /work/runs/val /tmp/worst-ccp.jpg --set ccp-people \
        --rank model-NEW.safetensors --also model-default modnet

Rows: photo | target | the ``--rank`` method | each ``--also`` method, for the ``--count``
images where the ``--rank`` method's MAD is highest. Methods are the folder names
validate_default.py writes under ``RUN/<set>/`` (``model-<name>``, ``mediapipe``, ``modnet``);
``--also`` may also name a method of another run as ``OTHER_RUN:METHOD`` (same images). The
picture holds dataset photos: write it outside the repository (no dataset image is committed
here).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import load_alpha

# validate_default.py's view folder (RUN/data/<view>) and result folder (RUN/<results>)
SETS = {"flickr-portraits": ("flickr-portraits", "flickr-portraits"),
        "ccp-people": ("ccp-people", "ccp-people"),
        "groups": ("groups", "groups__held-out_composites_")}


def panel(path: Path, height: int, grey: bool = False) -> np.ndarray:
    image = Image.open(path).convert("L" if grey else "RGB")
    width = round(image.width * height / image.height)
    array = np.asarray(image.resize((width, height), Image.BILINEAR))
    return np.repeat(array[..., None], 3, 2) if grey else array


def matte_folder(run: Path, results: str, method: str) -> Path:
    """The mattes of ``method`` (``model-*`` methods keep them in a ``folder`` subfolder)."""
    if ":" in method:
        other, method = method.split(":", 1)
        run = Path(other)
    folder = run / results / method
    folder = folder / "folder" if (folder / "folder").is_dir() else folder
    if not folder.is_dir():
        raise LpmatteError(f"no mattes of {method!r} under {run / results}")
    return folder


def worst(preds: Path, alphas: Path, count: int) -> list[str]:
    errors = {p.stem: float(np.abs(load_alpha(p) - load_alpha(alphas / p.name)).mean())
              for p in sorted(preds.glob("*.png"))}
    return sorted(errors, key=errors.get, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="validate_default.py --out folder")
    parser.add_argument("figure", type=Path)
    parser.add_argument("--set", choices=sorted(SETS), default="ccp-people")
    parser.add_argument("--rank", required=True, help="method whose worst images are shown")
    parser.add_argument("--also", nargs="*", default=[], help="methods shown next to it")
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--height", type=int, default=240)
    args = parser.parse_args()
    view_name, results = SETS[args.set]
    view = args.run / "data" / view_name
    folders = [view / "alpha"] + [matte_folder(args.run, results, m)
                                  for m in [args.rank, *args.also]]
    rows = []
    for stem in worst(folders[1], view / "alpha", args.count):
        image = next((view / "images").glob(f"{stem}.*"))
        panels = [panel(image, args.height),
                  *(panel(folder / f"{stem}.png", args.height, True) for folder in folders)]
        rows.append(np.concatenate(panels, axis=1))
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 4), (0, width - row.shape[1]), (0, 0)), constant_values=255)
            for row in rows]
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.figure, quality=85)
    columns = " | ".join(["photo", "target", args.rank, *args.also])
    print(f"{args.figure}: {len(rows)} rows ({columns})")


if __name__ == "__main__":
    main()
