"""Dataset loaders for training and evaluation, one file per published layout.

Every matting dataset has ``len(ds)`` and ``ds[i] -> MattingSample`` (name, image float32
HxWx3, alpha float32 HxW, optional trimap uint8 0/128/255, optional fg/bg); background
sets yield float32 HxWx3 arrays. :func:`build_dataset` picks one by kind:

=====================  ==========================================================
kind                   layout under ``root``
=====================  ==========================================================
``folder``             ``images/`` + ``alpha/`` (+ ``trimap/``); split = sub-folder
``p3m``                P3M-10K; split ``train``, ``P3M-500-P`` (default), ``P3M-500-NP``
``ppm100``             ``image/`` + ``matte/``; trimaps generated and cached
``photomatte85``       ``rgba_image/`` + ``background/``; composited, trimaps generated
``bg20k``              BG-20K backgrounds; split ``train`` (default) or ``testval``
``flickr-portraits``   ``images/`` + ``masks/`` (binary 0/255 person masks)
``ccp-people``         ``images/`` + ``masks/`` (binary 0/255 person masks)
=====================  ==========================================================
"""

from __future__ import annotations

from pathlib import Path

from lpmatte.data.datasets.backgrounds import BG20K, BackgroundFolder
from lpmatte.data.datasets.base import MattingDataset
from lpmatte.data.datasets.folder import FolderDataset
from lpmatte.data.datasets.p3m import P3M10K
from lpmatte.data.datasets.photomatte85 import PhotoMatte85
from lpmatte.data.datasets.ppm100 import PPM100
from lpmatte.data.datasets.sample import MattingSample, SampleFiles
from lpmatte.data.datasets.trimap import TrimapCache, generate_trimap, load_trimap
from lpmatte.errors import LpmatteError

DATASET_KINDS = ("folder", "p3m", "ppm100", "photomatte85", "bg20k", "flickr-portraits",
                 "ccp-people")
MASK_SETS = ("flickr-portraits", "ccp-people")
ALIASES = {"p3m10k": "p3m", "p3m-10k": "p3m", "ppm-100": "ppm100", "photomatte": "photomatte85",
           "bg-20k": "bg20k", "flickr": "flickr-portraits", "ccp": "ccp-people"}

__all__ = [
    "DATASET_KINDS", "build_dataset", "canonical_kind", "MattingSample", "SampleFiles",
    "MattingDataset", "FolderDataset", "P3M10K", "PPM100", "PhotoMatte85", "BG20K",
    "BackgroundFolder",
    "TrimapCache", "generate_trimap", "load_trimap",
]


def canonical_kind(kind: str) -> str:
    """Lower-cased kind with aliases resolved (``"PPM-100"`` -> ``"ppm100"``)."""
    name = kind.lower()
    name = ALIASES.get(name, name)
    if name not in DATASET_KINDS:
        raise LpmatteError(f"unknown dataset kind '{kind}' "
                           f"(choose from {', '.join(DATASET_KINDS)})")
    return name


def _no_split(kind: str, split: str | None) -> None:
    if split is not None:
        raise LpmatteError(f"dataset '{kind}' has no splits (got split '{split}')")


def build_dataset(kind: str, root: str | Path, split: str | None = None, **options):
    """The dataset of ``kind`` (module table) at ``root``.

    Args:
        kind: one of :data:`DATASET_KINDS` (aliases such as ``"PPM-100"`` accepted).
        root: the dataset's folder.
        split: P3M-10K / BG-20K split, or a sub-folder of a ``folder`` dataset.
        options: passed to the loader, e.g. ``trimap_cache=DIR`` (ppm100, photomatte85,
            folder), ``background_dir=DIR`` (photomatte85), ``generate_trimaps=True`` (folder).
    """
    kind = canonical_kind(kind)
    root = Path(root)
    if not root.is_dir():
        raise LpmatteError(f"{root}: no such dataset folder")
    if kind == "p3m":
        return P3M10K(root, split, **options)
    if kind == "bg20k":
        return BG20K(root, split, **options)
    if kind == "folder":
        return FolderDataset(root / split if split else root, **options)
    _no_split(kind, split)
    if kind == "ppm100":
        return PPM100(root, **options)
    if kind == "photomatte85":
        return PhotoMatte85(root, **options)
    return FolderDataset(root, image_dir="images", alpha_dir="masks", kind=kind, **options)
