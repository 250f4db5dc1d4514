"""A matting dataset: a list of :class:`SampleFiles`, read into samples on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lpmatte.data.datasets.sample import MattingSample, SampleFiles
from lpmatte.data.datasets.trimap import TrimapCache, load_trimap
from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import load_alpha, load_rgb


def check_same_size(reference: np.ndarray, reference_path: Path, other: np.ndarray,
                    other_path: Path) -> None:
    """An error naming both files unless the two arrays have the same height and width."""
    if reference.shape[:2] != other.shape[:2]:
        raise LpmatteError(f"{other_path}: size {other.shape[1]}x{other.shape[0]} differs from "
                           f"{reference_path} ({reference.shape[1]}x{reference.shape[0]})")


class MattingDataset:
    """Samples read lazily from files; ``len(ds)``, ``ds[i]`` and iteration.

    Args:
        files: one :class:`SampleFiles` per sample, in order.
        trimap_cache: where to generate and keep trimaps for samples without a trimap file;
            None leaves their ``trimap`` None.
        description: shown in messages, e.g. ``"PPM-100 at /data/PPM-100"``.
    """

    def __init__(self, files: list[SampleFiles], trimap_cache: TrimapCache | None = None,
                 description: str = "matting dataset"):
        self.files = list(files)
        self.trimap_cache = trimap_cache
        self.description = description

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> MattingSample:
        return self.load(self.files[index])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.files]

    @property
    def has_trimaps(self) -> bool:
        """True when every sample comes with a trimap (from a file or generated)."""
        return self.trimap_cache is not None or all(f.trimap for f in self.files)

    def load(self, files: SampleFiles) -> MattingSample:
        """Read one sample; sizes are checked against the image."""
        image = load_rgb(files.image)
        alpha = self._read_matching(load_alpha, files.alpha, image, files.image)
        sample = MattingSample(files.name, image, alpha)
        sample.trimap = self.trimap_of(files, alpha)
        if files.fg is not None:
            sample.fg = self._read_matching(load_rgb, files.fg, image, files.image)
        if files.bg is not None:
            sample.bg = self._read_matching(load_rgb, files.bg, image, files.image)
        return sample

    def trimap_of(self, files: SampleFiles, alpha: np.ndarray) -> np.ndarray | None:
        """The trimap file's content, else a generated (cached) trimap, else None."""
        if files.trimap is not None:
            trimap = load_trimap(files.trimap)
            check_same_size(alpha, files.alpha, trimap, files.trimap)
            return trimap
        if self.trimap_cache is not None:
            return self.trimap_cache.get(files.name, alpha, files.alpha)
        return None

    @staticmethod
    def _read_matching(reader, path: Path, image: np.ndarray, image_path: Path) -> np.ndarray:
        array = reader(path)
        check_same_size(image, image_path, array, path)
        return array

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.description}, {len(self)} samples>"
