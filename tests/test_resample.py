"""The two-pass pipeline's resamplings (lpmatte.inference.resample) and its uint8 path: the
same numbers as PyTorch's float kernels, without a float copy of the whole image."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import lpmatte
from lpmatte.apps.images import render
from lpmatte.inference.options import InferenceOptions
from lpmatte.inference.resample import area_downscale, bilinear_upsample, pooling_windows
from lpmatte.media.image_io import load_rgb, read_rgb


def hwc_view(pixels: np.ndarray) -> torch.Tensor:
    """(1, 3, H, W) uint8 view of an HxWx3 array, as Matter hands it to the pipeline."""
    return torch.from_numpy(pixels).permute(2, 0, 1)[None]


@pytest.mark.parametrize("shape, size", [((1792, 1152), (480, 309)), ((101, 77), (30, 23)),
                                         ((40, 40), (40, 40)), ((9, 300), (2, 17))])
def test_uint8_area_downscale_equals_pytorch_area_on_the_float_image(shape, size):
    pixels = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected = F.interpolate(torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255,
                             size=size, mode="area")
    got = area_downscale(hwc_view(pixels), size)
    assert got.dtype == torch.float32 and got.shape == expected.shape and got.is_contiguous()
    assert (got - expected).abs().max() < 1e-6


def test_area_downscale_of_a_huge_image_sums_in_doubles(monkeypatch):
    # the int32 integral image would overflow; the limit is lowered to reach that branch
    monkeypatch.setattr("lpmatte.inference.resample.INT32_SUM_LIMIT", 1000)
    pixels = np.full((64, 48, 3), 255, np.uint8)
    pixels[::2] = 3
    got = area_downscale(hwc_view(pixels), (16, 12))
    expected = F.interpolate(hwc_view(pixels).float() / 255, size=(16, 12), mode="area")
    assert (got - expected).abs().max() < 1e-6


def test_float_images_and_batches_take_pytorch_area():
    image = torch.rand(2, 3, 50, 70)
    assert torch.equal(area_downscale(image, (20, 28)),
                       F.interpolate(image, size=(20, 28), mode="area"))
    pixels = torch.randint(0, 256, (2, 3, 50, 70), dtype=torch.uint8)
    expected = F.interpolate(pixels.float() / 255, size=(20, 28), mode="area")
    assert (area_downscale(pixels, (20, 28)) - expected).abs().max() < 1e-6


def test_pooling_windows_cover_the_axis_as_adaptive_pooling_does():
    start, end = pooling_windows(10, 4)
    assert start.tolist() == [0, 2, 5, 7] and end.tolist() == [3, 5, 8, 10]
    start, end = pooling_windows(1792, 480)
    assert start[0] == 0 and end[-1] == 1792 and np.all(end > start)


@pytest.mark.parametrize("source, size", [((480, 309), (1792, 1152)), ((7, 5), (61, 40)),
                                          ((30, 20), (30, 20))])
def test_bilinear_upsample_matches_pytorch(source, size):
    coarse = torch.rand(2, 3, *source)
    expected = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    got = bilinear_upsample(coarse, size)
    assert got.shape == expected.shape and (got - expected).abs().max() < 1e-4


def test_a_uint8_image_mattes_as_its_float_image(portrait):
    """Two passes (the second reads crops and deblocking windows from the bytes) and one."""
    image = portrait(300, 220)
    for options in (InferenceOptions(lowres_side=96), InferenceOptions()):
        matter = lpmatte.load("lpm-s", device="cpu")
        matter.options = options
        from_bytes = matter.run(image)
        from_floats = matter.run(image.astype(np.float32) / 255)
        assert len(from_bytes.regions) > 0
        assert torch.equal(from_bytes.regions, from_floats.regions)
        assert (from_bytes.alpha - from_floats.alpha).abs().max() < 1e-5


def test_read_rgb_keeps_eight_bit_files_and_arrays_as_bytes(portrait, tmp_path):
    image = portrait(40, 30)
    files = {"rgb.png": Image.fromarray(image), "gray.png": Image.fromarray(image).convert("L"),
             "palette.png": Image.fromarray(image).convert("P"),
             "rgba.png": Image.fromarray(np.dstack([image, image[..., :1]]))}
    for name, picture in files.items():
        picture.save(tmp_path / name)
        pixels = read_rgb(tmp_path / name)
        assert pixels.dtype == np.uint8 and pixels.shape == (40, 30, 3), name
        assert np.array_equal(pixels.astype(np.float32) / 255, load_rgb(tmp_path / name)), name
    for array in (image, image[..., 0], np.dstack([image, image[..., :1]]), image[:, ::-1]):
        pixels = read_rgb(array)
        assert pixels.dtype == np.uint8 and pixels.flags.c_contiguous
        assert np.array_equal(pixels.astype(np.float32) / 255, load_rgb(array))
    assert read_rgb(Image.fromarray(image)).dtype == np.uint8
    Image.fromarray(image[..., 0].astype(np.uint16) * 257).save(tmp_path / "deep.png")
    deep = read_rgb(tmp_path / "deep.png")
    assert deep.dtype == np.float32 and np.array_equal(deep, load_rgb(tmp_path / "deep.png"))


def test_cutouts_and_composites_of_bytes_equal_those_of_floats(portrait):
    image = portrait(32, 24)
    alpha = np.random.default_rng(1).random((32, 24)).astype(np.float32)
    for fmt in ("rgba", "composite"):
        assert np.array_equal(render(image, alpha, None, fmt, (1.0, 1.0, 1.0)),
                              render(image.astype(np.float32) / 255, alpha, None, fmt,
                                     (1.0, 1.0, 1.0)))
