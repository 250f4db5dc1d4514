"""lpmatte.media.image_io.png_bytes: every PNG the package writes (masks, cutouts, video
frames, server answers), at any zlib level, decodes to the same pixels."""

import io

import numpy as np
import pytest
from PIL import Image

from lpmatte.errors import LpmatteError
from lpmatte.media.image_io import png_bytes, save_png


def _photo_like(channels: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 64 * 48).reshape(64, 48)
    noisy = base[..., None] + rng.normal(0, 8, (64, 48, channels))
    return np.clip(noisy, 0, 255).astype(np.uint8).squeeze()


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
@pytest.mark.parametrize("level", [0, 1, 3, 6, 9])
def test_every_level_decodes_to_the_same_pixels_in_rgb_order(channels, mode, level):
    pixels = _photo_like(channels)
    with Image.open(io.BytesIO(png_bytes(pixels, level))) as image:
        assert image.mode == mode
        assert np.array_equal(np.asarray(image), pixels)


def test_level_0_stores_and_the_others_compress():
    pixels = _photo_like(4)
    stored = len(png_bytes(pixels, 0))
    assert stored >= pixels.size  # every byte, uncompressed
    assert all(len(png_bytes(pixels, level)) < 0.8 * stored for level in (1, 3, 6, 9))


@pytest.mark.parametrize("array,level", [
    (np.zeros((8, 8), np.float32), 1),
    (np.zeros((8, 8, 2), np.uint8), 1),
    (np.zeros((0, 8), np.uint8), 1),
    (np.zeros((8, 8), np.uint8), 10),
    (np.zeros((8, 8), np.uint8), True),
])
def test_what_png_cannot_hold_is_a_clear_error(array, level, tmp_path):
    with pytest.raises(LpmatteError):
        save_png(tmp_path / "out.png", array, level)
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file
