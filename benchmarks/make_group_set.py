"""Build the multi-person / small-person validation set from the held-out ids only.

Same recipe as the training composites (:mod:`lpmatte.data.composites`: 1-6 people at
8%-100% of the frame height, partly outside it, overlapping, over a wallpaper, a procedural
background or another held-out photo with its person kept), but only the people of
``training/val_ids.txt``, a fixed seed, mild colour changes and no strong augmentation.
Deterministic: the same command writes the same files.

    python benchmarks/make_group_set.py --out /work/data/val-groups --count 300 --size 768

Writes ``images/NNNN.png``, ``alpha/NNNN.png`` and ``manifest.json`` (the held-out ids
pasted into each image); never commit its output. Score it with
``benchmarks/validate_default.py --groups DIR``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lpmatte.data.augment import AugmentConfig, DatasetSource
from lpmatte.data.composites import CompositeConfig, GroupBuilder
from lpmatte.data.spec import background_source, parse_data_spec, read_ids, split_validation
from lpmatte.errors import LpmatteError
from lpmatte.files import atomic_write
from lpmatte.media.image_io import save_png

ROOT = Path(__file__).resolve().parents[1]
SEED = 14  # fixed: the validation set must not change between runs


class Recorded:
    """A foreground source that notes the ids it is asked for."""

    def __init__(self, name: str, files, used: list[str]):
        from lpmatte.data.spec import FileList

        self.source = DatasetSource(FileList(files))
        self.names = [f"{name}/{entry.name}" for entry in files]
        self.used = used

    def __len__(self) -> int:
        return len(self.source)

    def load_foreground(self, index: int, original: bool):
        self.used.append(self.names[index])
        return self.source.load_foreground(index, original)


def held_out_builder(data: str, val_ids: Path, size: int, used: list[str]) -> GroupBuilder:
    ids = read_ids(val_ids)
    _, held = split_validation(parse_data_spec(data), ids, need_training=False)
    if set(held.ids()) - set(ids):
        raise LpmatteError("the validation part holds a training id")  # never expected
    if not held.sources:
        raise LpmatteError(f"{data}: no held-out id of {val_ids} has prepared data")
    sources = [Recorded(source.name, source.files, used) for source in held.sources]
    weights = np.array([len(source.files) for source in held.sources], np.float64)
    backgrounds = [background_source(source.backgrounds, held.procedural_backgrounds)
                   for source in held.sources]
    config = CompositeConfig(crop_size=size, strong_probability=0.0, composite_probability=0.0,
                             photo_base_probability=0.4)
    augment = AugmentConfig(crop_size=size, hue_shift=0.02, saturation_range=(0.9, 1.1),
                            brightness_range=(0.85, 1.15), aspect_range=(1.0, 1.0),
                            max_rotation=3.0, max_shear=0.0)
    return GroupBuilder(sources, weights / weights.sum(), backgrounds, config, augment)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT / "training" / "default.toml"))
    parser.add_argument("--val-ids", type=Path, default=ROOT / "training" / "val_ids.txt")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--seed", type=int, default=SEED,
                        help="another seed makes other layouts (e.g. training composites built "
                             "with --val-ids listing training ids, as for the refiner's "
                             "distillation)")
    args = parser.parse_args()
    if not 64 <= args.size <= 4096 or not 1 <= args.count <= 100000:
        raise SystemExit("--size must be in 64..4096 and --count in 1..100000")
    used: list[str] = []
    try:
        builder = held_out_builder(args.data, args.val_ids, args.size, used)
    except LpmatteError as error:
        raise SystemExit(f"make_group_set: {error}") from None
    manifest = {"seed": args.seed, "size": args.size, "val_ids": str(args.val_ids), "images": {}}
    for n in range(args.count):
        used.clear()
        sample = builder(np.random.default_rng([args.seed, n]))
        stem = f"{n:04d}"
        save_png(args.out / "images" / f"{stem}.png", sample.image.numpy().transpose(1, 2, 0))
        save_png(args.out / "alpha" / f"{stem}.png", sample.alpha.numpy()[0])
        manifest["images"][stem] = sorted(set(used))
    atomic_write(args.out / "manifest.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1)))
    print(f"{args.count} images in {args.out}")


if __name__ == "__main__":
    main()
