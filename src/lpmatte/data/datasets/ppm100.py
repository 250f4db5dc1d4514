"""PPM-100 (Ke et al., MODNet, 2020): ``image/*.jpg`` + ``matte/*`` (100 portraits).

No trimaps ship with it: evaluation trimaps are generated like the reference code's
(:func:`lpmatte.data.datasets.trimap.generate_trimap`) and cached; a ``trimap/`` folder in the
root (as the reference's own script writes) is used instead when present.
"""

from __future__ import annotations

from pathlib import Path

from lpmatte.data.datasets.base import MattingDataset
from lpmatte.data.datasets.folder import folder_files
from lpmatte.data.datasets.trimap import TrimapCache


class PPM100(MattingDataset):
    """PPM-100 at ``root`` (the folder holding ``image/`` and ``matte/``)."""

    def __init__(self, root: str | Path, trimap_cache: str | Path | None = None):
        self.root = Path(root)
        files = folder_files(self.root, "image", "matte", trimap_dir="trimap")
        cache = TrimapCache.for_dataset("ppm100", self.root, trimap_cache)
        super().__init__(files, cache, f"PPM-100 at {self.root}")
