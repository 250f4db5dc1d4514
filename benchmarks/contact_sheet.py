"""A contact sheet of training draws, to look at the data by eye before training on it.

Each tile is the composite image with its alpha target beside it (and a red outline of
the alpha > 0.5 region on the image), for draws 0..N-1 of the training stream of a data
spec (held-out ids removed, as the trainer does):

    python benchmarks/contact_sheet.py --data training/default.toml --out /tmp/sheet.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from lpmatte.data.spec import SampleDraws, parse_data_spec, read_ids, split_validation
from lpmatte.media.image_io import save_png

ROOT = Path(__file__).resolve().parents[1]


def tile(sample, side: int) -> np.ndarray:
    image = sample.image.numpy().transpose(1, 2, 0).copy()
    alpha = sample.alpha.numpy()[0]
    contours, _ = cv2.findContours((alpha > 127).astype(np.uint8), cv2.RETR_LIST,
                                   cv2.CHAIN_APPROX_NONE)
    outlined = cv2.drawContours(image.copy(), contours, -1, (255, 0, 0), 1)
    pair = np.concatenate([outlined, np.repeat(alpha[..., None], 3, 2)], 1)
    return cv2.resize(pair, (2 * side, side), interpolation=cv2.INTER_AREA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT / "training" / "default.toml"))
    parser.add_argument("--val-ids", type=Path, default=ROOT / "training" / "val_ids.txt")
    parser.add_argument("--out", type=Path, default=Path("/tmp/contact_sheet.png"))
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--groups-only", action="store_true",
                        help="only composites (group_composites = 1)")
    args = parser.parse_args()
    spec, _ = split_validation(parse_data_spec(args.data), read_ids(args.val_ids))
    draws = SampleDraws(spec, args.crop, args.seed)
    if args.groups_only:
        draws.group_share = 1.0
    side = min(args.crop, 256)
    tiles = [tile(draws[n], side) for n in range(args.count)]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % args.columns)
    rows = [np.concatenate(tiles[i:i + args.columns], 1)
            for i in range(0, len(tiles), args.columns)]
    save_png(args.out, np.concatenate(rows, 0))
    print(args.out)


if __name__ == "__main__":
    main()
