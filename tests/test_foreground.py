"""Foreground/background colour estimation and the P3M-10K fg/bg preparation."""

import numpy as np
import pytest
from PIL import Image

from lpmatte.data.fg_bg import p3m_fg_bg_jobs, solve_fg_bg_folder
from lpmatte.errors import LpmatteError
from lpmatte.media.foreground import (
    estimate_foreground,
    estimate_foreground_background,
    match_composite,
)


def scene(height=120, width=90, seed=0):
    """A smooth foreground and background and a soft disc alpha; image = their composite."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    fg = np.stack([0.8 + 0.1 * np.sin(x / 9), 0.3 + 0.2 * y / height, 0.2 + 0 * x], -1)
    bg = np.stack([0.1 + 0 * x, 0.5 + 0.3 * x / width, 0.9 - 0.2 * y / height], -1)
    radius = np.hypot(y - height / 2, x - width / 2)
    alpha = np.clip((0.35 * min(height, width) - radius) / 6 + 0.5, 0, 1).astype(np.float32)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    image = np.clip(image + rng.normal(0, 0.002, image.shape), 0, 1).astype(np.float32)
    return image, alpha, fg.astype(np.float32), bg.astype(np.float32)


def test_multilevel_estimate_explains_the_image_and_finds_the_colours():
    image, alpha, fg, bg = scene()
    est_fg, est_bg = estimate_foreground_background(image, alpha)
    assert est_fg.dtype == np.float32 and est_fg.shape == image.shape
    a = alpha[..., None]
    assert np.abs(a * est_fg + (1 - a) * est_bg - image).mean() < 0.01
    mixed = (alpha > 0.2) & (alpha < 0.8)
    assert np.abs(est_fg - fg)[mixed].mean() < 0.05


def test_match_composite_meets_the_image_and_leaves_unseen_colours_alone():
    image, alpha, fg, bg = scene()
    prior_fg, prior_bg = np.full_like(fg, 0.5), np.full_like(bg, 0.5)
    new_fg, new_bg = match_composite(image, alpha, prior_fg.copy(), prior_bg.copy(), 1e-6)
    a = alpha[..., None]
    np.testing.assert_allclose(a * new_fg + (1 - a) * new_bg, image, atol=1e-3)
    np.testing.assert_array_equal(new_fg[alpha >= 1], image[alpha >= 1])
    np.testing.assert_array_equal(new_fg[alpha <= 0], prior_fg[alpha <= 0])


def test_fast_estimate_is_close_to_the_full_resolution_one():
    image, alpha, _, _ = scene(240, 180)
    reference = estimate_foreground_background(image, alpha)[0]
    fast = estimate_foreground(image, alpha, work_side=60)
    assert fast.shape == image.shape and fast.dtype == np.float32
    visible = alpha > 0.05
    assert np.abs(fast - reference)[visible].mean() < 0.02
    small = estimate_foreground(image, alpha, work_side=400)  # no downscale: the reference
    np.testing.assert_array_equal(small, reference)


def test_shapes_are_checked():
    with pytest.raises(LpmatteError, match="HxW alpha"):
        estimate_foreground(np.zeros((10, 10, 3)), np.zeros((10, 9)))


def make_p3m(root, stems=("a", "b")):
    train = root / "P3M-10k" / "train"
    (train / "blurred_image").mkdir(parents=True)
    (train / "mask").mkdir()
    image, alpha, _, _ = scene(48, 40)
    for stem in stems:
        photo = Image.fromarray((image * 255).astype(np.uint8))
        photo.save(train / "blurred_image" / f"{stem}.jpg")
        Image.fromarray((alpha * 255).astype(np.uint8)).save(train / "mask" / f"{stem}.png")
    return train


def test_p3m_fg_bg_is_written_next_to_the_data_and_resumable(tmp_path):
    train = make_p3m(tmp_path)
    assert solve_fg_bg_folder(tmp_path / "P3M-10k", workers=1, suffix="png") == (2, [])
    for kind in ("fg", "bg"):
        assert sorted(p.name for p in (train / kind).iterdir()) == ["a.png", "b.png"]
    assert Image.open(train / "fg" / "a.png").size == (40, 48)
    assert p3m_fg_bg_jobs(tmp_path / "P3M-10k", "png") == []
    (train / "bg" / "b.png").unlink()
    assert [job[0].name for job in p3m_fg_bg_jobs(train, "png")] == ["b.jpg"]


def test_not_a_p3m_folder(tmp_path):
    with pytest.raises(LpmatteError, match="not a P3M-10K folder"):
        solve_fg_bg_folder(tmp_path)
