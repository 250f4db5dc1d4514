"""Build docs/astronaut_matte.jpg for the README from the CLI's own outputs.

    lpmatte matte examples/astronaut.png -o out/alpha --format alpha
    lpmatte matte examples/astronaut.png -o out/rgba --format rgba
    python scripts/make_readme_figure.py out/ docs/astronaut_matte.jpg

The figure is input | alpha | cutout over a checkerboard, side by side.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image


def checkerboard(height: int, width: int, cell: int = 16) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    light = ((yy // cell + xx // cell) % 2 == 0)[..., None]
    return np.where(light, 230, 180).astype(np.float32) * np.ones(3, np.float32)


def main(out_dir: str, figure: str, image: str = "examples/astronaut.png") -> None:
    stem = Path(image).stem
    source = np.asarray(Image.open(image).convert("RGB"), np.float32)
    alpha = np.asarray(Image.open(Path(out_dir) / "alpha" / f"{stem}.png").convert("L"))
    cutout = np.asarray(Image.open(Path(out_dir) / "rgba" / f"{stem}.png").convert("RGBA"),
                        np.float32)
    a = cutout[..., 3:] / 255
    over = cutout[..., :3] * a + checkerboard(*alpha.shape) * (1 - a)
    panels = [source, np.repeat(alpha[..., None], 3, 2).astype(np.float32), over]
    strip = np.concatenate(panels, axis=1).clip(0, 255).astype(np.uint8)
    Image.fromarray(strip).save(figure, quality=90)


if __name__ == "__main__":
    main(*sys.argv[1:])
