"""P3M-10K (Li et al., "Privacy-Preserving Portrait Matting", 2021), published layout::

    P3M-10k/train/blurred_image/*.jpg, train/mask/*.png   (+ train/fg, train/bg if extracted)
    P3M-10k/validation/P3M-500-P/{blurred_image, mask, trimap}/
    P3M-10k/validation/P3M-500-NP/{original_image, mask, trimap}/
"""

from __future__ import annotations

from pathlib import Path

from lpmatte.data.datasets.base import MattingDataset
from lpmatte.data.datasets.folder import folder_files
from lpmatte.errors import LpmatteError

SPLITS = {
    "train": ("train", "blurred_image"),
    "P3M-500-P": ("validation/P3M-500-P", "blurred_image"),
    "P3M-500-NP": ("validation/P3M-500-NP", "original_image"),
}
DEFAULT_SPLIT = "P3M-500-P"


def canonical_split(split: str | None) -> str:
    """Case-insensitive split name -> its key in :data:`SPLITS` (None -> P3M-500-P)."""
    if split is None:
        return DEFAULT_SPLIT
    for name in SPLITS:
        if split.lower() == name.lower():
            return name
    raise LpmatteError(f"unknown P3M-10K split '{split}' (choose from {', '.join(SPLITS)})")


def find_p3m_root(root: Path) -> Path:
    """``root`` itself, or its ``P3M-10k`` sub-folder, whichever holds train/ or validation/."""
    for candidate in (root, root / "P3M-10k", root / "P3M-10K"):
        if (candidate / "train").is_dir() or (candidate / "validation").is_dir():
            return candidate
    raise LpmatteError(f"{root}: not a P3M-10K folder (expected train/ or validation/ in it)")


class P3M10K(MattingDataset):
    """P3M-10K, one split: ``"train"``, ``"P3M-500-P"`` (default) or ``"P3M-500-NP"``.

    The test splits carry their official trimaps; the train split carries ``fg``/``bg``
    when ``train/fg`` and ``train/bg`` exist (foregrounds extracted beforehand).
    """

    def __init__(self, root: str | Path, split: str | None = None):
        self.split = canonical_split(split)
        self.root = find_p3m_root(Path(root))
        folder, image_dir = SPLITS[self.split]
        files = folder_files(self.root / folder, image_dir, "mask", trimap_dir="trimap",
                             fg_dir="fg", bg_dir="bg")
        super().__init__(files, None, f"P3M-10K {self.split} at {self.root}")
