import numpy as np
import pytest
import torch
from PIL import Image

import lpmatte
from lpmatte.errors import LpmatteError


@pytest.fixture(scope="module")
def matter():
    return lpmatte.load("lpm-s", device="cpu")


def _same(a, b):
    return np.abs(a - b).max() < 1e-5


def test_load_names_and_flags(matter):
    assert matter.untrained and matter.name == "lpm-s"
    assert matter.config.name == "lpm-s"
    with pytest.raises(LpmatteError, match="unknown model"):
        lpmatte.load("no-such-model")
    with pytest.raises(LpmatteError, match="not found"):
        lpmatte.load("missing.safetensors")


def test_default_loads_something_usable():
    matter = lpmatte.load("default", device="cpu")
    assert matter.predict(np.zeros((40, 30, 3), np.uint8)).shape == (40, 30)


def test_input_types_agree(matter, portrait, tmp_path):
    image = portrait(90, 70)
    reference = matter.predict(image)
    assert reference.dtype == np.float32 and reference.shape == (90, 70)
    assert 0 <= reference.min() and reference.max() <= 1
    assert _same(matter.predict(image.astype(np.float32) / 255), reference)
    assert _same(matter.predict(Image.fromarray(image)), reference)
    Image.fromarray(image).save(tmp_path / "p.png")
    assert _same(matter.predict(tmp_path / "p.png"), reference)
    assert _same(matter.predict(str(tmp_path / "p.png")), reference)
    assert _same(matter.predict(image.astype(np.uint16) * 257), reference)
    rgba = np.concatenate([image, np.full((90, 70, 1), 7, np.uint8)], 2)
    assert _same(matter.predict(rgba), reference)
    chw = torch.from_numpy(image).permute(2, 0, 1)
    assert _same(matter.predict(chw), reference)
    assert _same(matter.predict(chw[None].float() / 255), reference)


def test_grayscale_palette_and_16bit_files(matter, portrait, tmp_path):
    image = portrait(64, 48)
    gray = Image.fromarray(image).convert("L")
    gray.save(tmp_path / "g.jpg")
    assert matter.predict(tmp_path / "g.jpg").shape == (64, 48)
    Image.fromarray(image).convert("P").save(tmp_path / "p.png")
    assert matter.predict(tmp_path / "p.png").shape == (64, 48)
    Image.fromarray(image[..., 0].astype(np.uint16) * 257).save(tmp_path / "d.png")
    assert matter.predict(tmp_path / "d.png").shape == (64, 48)


def test_exif_orientation_is_applied(matter, portrait, tmp_path):
    image = Image.fromarray(portrait(64, 48))  # 48 wide, 64 high
    exif = image.getexif()
    exif[0x0112] = 6  # stored sideways: display after rotating 90 degrees
    image.save(tmp_path / "rot.jpg", exif=exif)
    assert matter.predict(tmp_path / "rot.jpg").shape == (48, 64)


def test_trimap_output(matter, portrait):
    alpha, trimap = matter.predict(portrait(50, 70), return_trimap=True)
    assert trimap.shape == alpha.shape == (50, 70) and trimap.dtype == np.uint8
    assert set(np.unique(trimap)) <= {0, 128, 255}


def test_identity_coarse_filter_changes_nothing(matter, portrait):
    image = portrait(72, 56)
    seen = []

    def identity(lowres, coarse, probs):
        seen.append((lowres.shape, coarse.shape, probs.shape))
        return coarse, probs

    assert _same(matter.run(image, coarse_filter=identity).alpha_array(), matter.predict(image))
    assert seen == [((1, 3, 9, 7), (1, 1, 9, 7), (1, 3, 9, 7))]


def test_coarse_filter_controls_refined_regions(matter, portrait):
    def all_background(lowres, coarse, probs):
        probs = torch.zeros_like(probs)
        probs[:, 0] = 1
        return torch.zeros_like(coarse), probs

    output = matter.run(portrait(48, 64), coarse_filter=all_background)
    assert output.alpha.max() == 0 and len(output.regions) == 0  # coarse alpha forced to 0
    assert output.trimap_probs[:, 0].eq(1).all()


def test_bad_inputs_raise_clear_errors(matter, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    for name, message in (("empty.png", "empty"), ("junk.jpg", "not a readable image"),
                          ("absent.png", "no such file")):
        with pytest.raises(LpmatteError, match=message):
            matter.predict(tmp_path / name)
    for bad, message in ((np.zeros((4, 4, 7)), "HxWx3"), (np.full((4, 4, 3), np.nan), "NaN"),
                         (torch.zeros(2, 3, 4, 4), "one image at a time"), ([[0]], "type list")):
        with pytest.raises(LpmatteError, match=message):
            matter.predict(bad)


def test_cost_report(matter, portrait):
    report = matter.cost(portrait(128, 96))
    assert set(report.flops) == {"lowres", "refiner"} and report.total_flops > 0
    assert report.total_params == sum(p.numel() for p in matter.model.parameters())


def test_a_float_image_overshooting_one_is_clipped_not_read_as_bytes(matter, portrait):
    """Cubic resampling of a [0, 1] float image overshoots to about 1.05: that image must
    matte as its clipped self, not as 0..255 values (a black image, an empty matte)."""
    image = portrait(90, 70).astype(np.float32) / 255
    overshoot = image * 1.1 - 0.05
    reference = matter.predict(np.clip(overshoot, 0, 1))
    assert _same(matter.predict(overshoot), reference)
    assert _same(matter.predict(overshoot * 255), matter.predict(np.clip(overshoot, 0, 1) * 255))


def test_a_channels_last_tensor_is_refused_with_the_fix(matter, portrait):
    hwc = torch.from_numpy(portrait(40, 30))
    with pytest.raises(LpmatteError, match=r"looks like \(H, W, C\): pass tensor.permute"):
        matter.predict(hwc)


def test_a_float_tiff_in_unit_range_or_bytes_mattes_as_its_grey_image(matter, portrait, tmp_path):
    """Pillow's 32-bit float mode (TIFF) converted to RGB truncated [0, 1] values to 0 and 1:
    a black image and an empty matte. Its floats are read as a float array is."""
    grey = portrait(64, 48)[..., 0]
    reference = matter.predict(grey)
    Image.fromarray(grey.astype(np.float32) / 255).save(tmp_path / "unit.tif")
    Image.fromarray(grey.astype(np.float32)).save(tmp_path / "bytes.tif")
    assert Image.open(tmp_path / "unit.tif").mode == "F"
    assert _same(matter.predict(tmp_path / "unit.tif"), reference)
    assert _same(matter.predict(tmp_path / "bytes.tif"), reference)
