"""The sample every dataset yields, and the file paths it is read from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class MattingSample:
    """One image with its ground-truth matte.

    Attributes:
        name: file stem, unique within the dataset (predictions are saved as ``name.png``).
        image: float32 HxWx3 RGB in [0, 1].
        alpha: float32 HxW in [0, 1].
        trimap: optional uint8 HxW, 0 background / 128 unknown / 255 foreground.
        fg, bg: optional float32 HxWx3 in [0, 1] (foreground colours, background) when the
            dataset has them (P3M-10K train after foreground extraction, PhotoMatte85).
    """

    name: str
    image: np.ndarray
    alpha: np.ndarray
    trimap: np.ndarray | None = None
    fg: np.ndarray | None = None
    bg: np.ndarray | None = None


@dataclass(frozen=True)
class SampleFiles:
    """Where one sample's arrays are read from (``None``: the dataset has no such file)."""

    name: str
    image: Path
    alpha: Path
    trimap: Path | None = None
    fg: Path | None = None
    bg: Path | None = None
