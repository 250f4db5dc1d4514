"""Background-only image sets for compositing: BG-20K (``train/``, ``testval/``) or any folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lpmatte.data.datasets.files import files_by_stem, require_dir
from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import load_rgb

BG20K_SPLITS = ("train", "testval")


class BackgroundFolder:
    """The images of one folder; ``ds[i]`` is float32 HxWx3 RGB in [0, 1]."""

    def __init__(self, folder: str | Path):
        self.folder = require_dir(Path(folder), "background images")
        self.paths = list(files_by_stem(self.folder).values())
        if not self.paths:
            raise LpmatteError(f"{self.folder}: no background images found")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return load_rgb(self.paths[index])

    @property
    def names(self) -> list[str]:
        return [path.stem for path in self.paths]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.folder}, {len(self)} images>"


class BG20K(BackgroundFolder):
    """BG-20K (Li et al., GFM, 2021): ``root/train/*.jpg`` (default) or ``root/testval/*.jpg``."""

    def __init__(self, root: str | Path, split: str | None = None):
        split = split or "train"
        if split not in BG20K_SPLITS:
            raise LpmatteError(f"unknown BG-20K split '{split}' "
                               f"(choose from {', '.join(BG20K_SPLITS)})")
        self.split = split
        super().__init__(Path(root) / split)
