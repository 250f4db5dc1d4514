"""Soft alpha from binary masks: band geometry, the solver, folder conversion."""

import json

import numpy as np
import pytest
from PIL import Image

from lpmatte.data.soft_alpha import (
    PYMATTING_UNKNOWN,
    BandConfig,
    band_radius,
    contact_sheet,
    convert_folder,
    mask_to_trimap,
    soft_alpha_dataset,
    soft_alpha_from_mask,
    solve_alpha,
    write_contact_sheet,
)
from lpmatte.errors import LpmatteError

WIDE = BandConfig(band_fraction=0.05, hair_fraction=0.05)  # 4 px on a 60x60 image


def square_scene(size: int = 60, inner=(14, 46), offset: int = 2):
    """A white square on a dark ramp, and a mask of the same square shifted by ``offset``."""
    image = np.zeros((size, size, 3))
    image[..., 2] = np.linspace(0.0, 0.3, size)[None, :]
    image[inner[0]:inner[1], inner[0]:inner[1]] = 0.95
    mask = np.zeros((size, size), bool)
    mask[inner[0] + offset:inner[1] + offset, inner[0] + offset:inner[1] + offset] = True
    truth = np.zeros((size, size), np.float32)
    truth[inner[0]:inner[1], inner[0]:inner[1]] = 1.0
    return image, mask, truth


def test_band_is_wider_at_the_top_of_the_person():
    mask = np.zeros((200, 100), bool)
    mask[50:200, 20:80] = True
    radius = band_radius(mask, BandConfig(band_fraction=0.01, hair_fraction=0.03))
    diagonal = np.hypot(200, 100)
    assert radius[50] == pytest.approx(0.03 * diagonal, rel=1e-3)
    assert radius[199] == pytest.approx(0.01 * diagonal, rel=1e-3)
    assert np.all(np.diff(radius[50:]) <= 1e-6)  # never grows going down


def test_trimap_has_a_band_around_the_outline_only():
    _, mask, _ = square_scene()
    trimap = mask_to_trimap(mask, WIDE)
    assert set(np.unique(trimap)) == {0.0, PYMATTING_UNKNOWN, 1.0}
    assert trimap[32, 32] == 1.0 and trimap[2, 2] == 0.0
    assert trimap[16, 32] == PYMATTING_UNKNOWN  # on the outline (row 16 is the mask's top edge)


def test_a_gap_thinner_than_the_band_keeps_known_background_in_its_middle():
    mask = np.ones((200, 200), bool)
    mask[:, 97:103] = False  # a 6 px gap, with a 0.05 * 283 = 14 px band
    trimap = mask_to_trimap(mask, BandConfig(band_fraction=0.05, hair_fraction=0.05))
    assert (trimap[:, 98:102] == 0.0).all()
    assert (trimap[:, 97] == PYMATTING_UNKNOWN).all() and (trimap[:, 85] == PYMATTING_UNKNOWN).all()


def test_closed_form_matting_recovers_the_true_edge_from_a_shifted_mask():
    image, mask, truth = square_scene(offset=2)
    alpha = soft_alpha_from_mask(image, mask, WIDE)
    assert alpha.dtype == np.float32 and alpha.min() >= 0 and alpha.max() <= 1
    assert np.abs(alpha - truth).mean() < 0.01
    assert np.abs(mask.astype(np.float32) - truth).mean() > 0.04  # the mask alone is worse


def test_solving_at_reduced_size_keeps_the_known_pixels():
    image, mask, _ = square_scene(size=80)
    trimap = mask_to_trimap(mask, WIDE)
    alpha = solve_alpha(image, trimap, max_side=40)
    assert alpha.shape == trimap.shape
    known = trimap != PYMATTING_UNKNOWN
    np.testing.assert_array_equal(alpha[known], trimap[known])


def test_masks_without_both_labels_are_kept_as_they_are():
    image = np.random.default_rng(0).random((30, 30, 3))
    full = np.ones((30, 30), bool)
    np.testing.assert_array_equal(soft_alpha_from_mask(image, full), 1.0)
    with pytest.raises(LpmatteError, match="differ in size"):
        soft_alpha_from_mask(image, np.ones((20, 30), bool))


def write_pair(root, stem, size=60, offset=2):
    image, mask, _ = square_scene(size, offset=offset)
    (root / "images").mkdir(exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    Image.fromarray((image * 255).astype(np.uint8)).save(root / "images" / f"{stem}.jpg",
                                                         quality=95)
    Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"{stem}.png")


def test_folder_conversion_is_resumable_and_records_its_source(tmp_path):
    for stem in ("a", "b"):
        write_pair(tmp_path, stem)
    out = tmp_path / "out"
    done, errors = convert_folder(tmp_path / "images", tmp_path / "masks", out, config=WIDE)
    assert (done, errors) == (2, [])
    for kind, suffix in (("alpha", "png"), ("fg", "png"), ("bg", "png")):
        assert sorted(p.name for p in (out / kind).iterdir()) == [f"a.{suffix}", f"b.{suffix}"]
    alpha = np.asarray(Image.open(out / "alpha" / "a.png"))
    assert alpha.dtype == np.uint8 and alpha.shape == (60, 60) and 0 < alpha.mean() < 255
    source = json.loads((out / "source.json").read_text())
    assert source["images"] == str((tmp_path / "images").resolve())
    assert convert_folder(tmp_path / "images", tmp_path / "masks", out, config=WIDE) == (0, [])
    dataset = soft_alpha_dataset(out)
    assert len(dataset) == 2 and dataset[0].fg.shape == (60, 60, 3)


def test_bad_pairs_are_reported_and_skipped(tmp_path):
    write_pair(tmp_path, "good")
    write_pair(tmp_path, "bad")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "masks" / "bad.png")
    done, errors = convert_folder(tmp_path / "images", tmp_path / "masks", tmp_path / "out",
                                  config=WIDE)
    assert done == 2 and len(errors) == 1 and "bad.png" in errors[0]
    assert not (tmp_path / "out" / "alpha" / "bad.png").exists()
    with pytest.raises(LpmatteError, match="must differ"):
        convert_folder(tmp_path / "images", tmp_path / "masks", tmp_path / "images")


def test_contact_sheet_has_four_columns_per_row(tmp_path):
    image, mask, truth = square_scene()
    sheet = contact_sheet([(image, mask, truth, image)] * 3, tile_height=30)
    assert sheet.dtype == np.uint8 and sheet.shape == (3 * 32, 4 * 30, 3)
    write_pair(tmp_path, "a")
    convert_folder(tmp_path / "images", tmp_path / "masks", tmp_path / "out", config=WIDE)
    assert write_contact_sheet(tmp_path / "out", tmp_path / "sheet.png", tile_height=40) == 1
    assert Image.open(tmp_path / "sheet.png").size == (160, 42)


def test_specks_and_pinholes_are_removed_before_the_band():
    mask = np.zeros((100, 100), bool)
    mask[20:80, 20:80] = True
    mask[50, 50] = False  # a pinhole
    mask[5, 5] = True  # a speck
    trimap = mask_to_trimap(mask, BandConfig(band_fraction=0.02, hair_fraction=0.02))
    assert trimap[50, 50] == 1.0 and trimap[5, 5] == 0.0
