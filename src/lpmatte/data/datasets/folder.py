"""Generic folder dataset: ``images/`` + ``alpha/`` (+ optional ``trimap/``), matched by stem.

Also serves the binary-mask sets (``images/`` + ``masks/``) such as flickr-portraits and
ccp-people, whose "alpha" is a 0/255 person mask.
"""

from __future__ import annotations

from pathlib import Path

from lpmatte.data.datasets.base import MattingDataset
from lpmatte.data.datasets.files import files_by_stem, pair_by_stem, require_dir
from lpmatte.data.datasets.sample import SampleFiles
from lpmatte.data.datasets.trimap import TrimapCache
from lpmatte.errors import LpmatteError


def folder_files(root: Path, image_dir: str, alpha_dir: str, trimap_dir: str | None = None,
                 fg_dir: str | None = None, bg_dir: str | None = None) -> list[SampleFiles]:
    """Pair ``root/image_dir/*`` with the same stems in the other folders.

    Every image needs an alpha; the trimap/fg/bg folders are used when they exist, and then
    every image needs a file there too.
    """
    images_dir = require_dir(root / image_dir, "the images")
    images = files_by_stem(images_dir)
    if not images:
        raise LpmatteError(f"{images_dir}: no images found")
    alpha_path = require_dir(root / alpha_dir, "the alpha mattes")
    alphas = files_by_stem(alpha_path)
    pair_by_stem(images, alphas, images_dir, alpha_path)
    optional = {}
    for field, folder in (("trimap", trimap_dir), ("fg", fg_dir), ("bg", bg_dir)):
        if folder and (root / folder).is_dir():
            found = files_by_stem(root / folder)
            pair_by_stem(images, found, images_dir, root / folder)
            optional[field] = found
    return [SampleFiles(stem, path, alphas[stem],
                        **{field: found[stem] for field, found in optional.items()})
            for stem, path in images.items()]


class FolderDataset(MattingDataset):
    """``root/images/*`` with ``root/alpha/<stem>.*`` and, if present, ``root/trimap/<stem>.*``.

    Args:
        root: dataset folder.
        image_dir, alpha_dir, trimap_dir: sub-folder names (trimap_dir may be absent on disk).
        generate_trimaps: make evaluation trimaps (:mod:`lpmatte.data.datasets.trimap`) for a
            dataset without ``trimap_dir``; they are cached in ``trimap_cache`` or the default.
    """

    def __init__(self, root: str | Path, image_dir: str = "images", alpha_dir: str = "alpha",
                 trimap_dir: str = "trimap", generate_trimaps: bool = False,
                 trimap_cache: str | Path | None = None, kind: str = "folder"):
        root = Path(root)
        files = folder_files(root, image_dir, alpha_dir, trimap_dir)
        cache = None
        if generate_trimaps and not all(f.trimap for f in files):
            cache = TrimapCache.for_dataset(kind, root, trimap_cache)
        super().__init__(files, cache, f"{kind} dataset at {root}")
        self.root = root
