"""The training sample pipeline: each augmentation, backgrounds, the dataset and its seeding."""

import numpy as np
import pytest
import torch
from PIL import Image

from lpmatte.data.augment import (
    LINEAR_OPS,
    NONLINEAR_OPS,
    REGION_OPS,
    AugmentConfig,
    DatasetSource,
    ForegroundItem,
    SampleBuilder,
    apply_colour,
    backward_maps,
    colour_matrix,
    pick_anchor,
    random_affine,
    remap,
    shrink_for_matrix,
    thin_plate_spline_offsets,
    trimap_target,
)
from lpmatte.data.backgrounds import (
    PATTERNS,
    ImageFolderBackgrounds,
    MixedBackgrounds,
    ProceduralBackgrounds,
    random_crop,
)
from lpmatte.errors import LpmatteError

SMALL = AugmentConfig(crop_size=64)


def soft_disc(height=96, width=80):
    y, x = np.mgrid[0:height, 0:width]
    radius = np.hypot(y - height / 2, x - width / 2)
    return np.clip((0.3 * min(height, width) - radius) * 40 + 128, 0, 255).astype(np.uint8)


class ToySource:
    """Random colours around a soft disc; the photo is the composite over grey."""

    def __init__(self, count=4, height=96, width=80):
        rng = np.random.default_rng(1)
        self.items = []
        for _ in range(count):
            alpha = soft_disc(height, width)
            fg = rng.integers(60, 200, (height, width, 3), dtype=np.uint8)
            bg = np.full((height, width, 3), 90, np.uint8)
            a = alpha[..., None] / 255.0
            image = (a * fg + (1 - a) * bg + 0.5).astype(np.uint8)
            self.items.append(ForegroundItem(fg, alpha, image, bg))

    def __len__(self):
        return len(self.items)

    def load_foreground(self, index, original):
        item = self.items[index]
        return item if original else ForegroundItem(item.fg, item.alpha)


# --- targets, geometry, colour ---------------------------------------------------------------

def test_trimap_target_is_dilated_nonzero_minus_eroded_opaque():
    alpha = np.zeros((40, 40), np.uint8)
    alpha[10:30, 10:30] = 255
    alpha[10:30, 10] = 100  # a soft column on the left edge
    trimap = trimap_target(alpha)
    assert trimap.dtype == np.uint8 and set(np.unique(trimap)) == {0, 1, 2}
    assert trimap[20, 20] == 2 and trimap[0, 0] == 0
    assert trimap[20, 8] == 1 and trimap[20, 12] == 1 and trimap[20, 5] == 0
    assert trimap[20, 15] == 2  # 4 px inside the opaque part: beyond the 7 px ellipse


def test_anchor_lies_on_the_soft_edge():
    alpha = soft_disc()
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = pick_anchor(alpha, rng, edge_probability=1.0)
        patch = alpha[int(y) // 4 * 4, int(x) // 4 * 4]
        assert 0 < patch < 255


def test_affine_puts_the_anchor_in_the_middle_of_the_crop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        matrix = random_affine((200, 100), (30.0, 150.0), SMALL, rng)
        x, y = matrix @ np.array([30.0, 150.0, 1.0])
        assert 16 <= x <= 48 and 16 <= y <= 48


def test_covering_crops_stay_inside_the_image():
    config = AugmentConfig(crop_size=64, max_rotation=0, max_shear=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        matrix = random_affine((100, 80), (5.0, 5.0), config, rng, cover=True)
        corners = matrix @ np.array([[0, 80, 0, 80], [0, 0, 100, 100], [1, 1, 1, 1]], float)
        assert corners[0].min() <= 1e-6 and corners[0].max() >= 64 - 1e-6
        assert corners[1].min() <= 1e-6 and corners[1].max() >= 64 - 1e-6


def test_identity_maps_reproduce_the_source():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    maps = backward_maps(np.array([[1.0, 0, 0], [0, 1.0, 0]]), 32)
    np.testing.assert_array_equal(remap(image, maps, 32, reflect=False), image)


def test_shrinking_keeps_the_same_mapping():
    matrix = np.array([[0.2, 0, 1.0], [0, 0.2, 2.0]])
    image = np.zeros((100, 80), np.uint8)
    (shrunk,), adjusted = shrink_for_matrix([image], matrix)
    assert shrunk.shape == (50, 40)
    np.testing.assert_allclose(adjusted @ [10, 20, 1], matrix @ [20, 40, 1])


def test_thin_plate_spline_is_smooth_and_scaled_by_strength():
    rng = np.random.default_rng(0)
    dx, dy = thin_plate_spline_offsets(rng, 128, grid=4, strength=0.02)
    assert dx.shape == dy.shape == (128, 128) and dx.dtype == np.float32
    assert 0.2 < np.abs(dx).mean() < 10  # a few px on a 128 px crop
    assert np.abs(np.diff(dx, axis=1)).max() < 0.5  # smooth: small pixel-to-pixel steps
    still = thin_plate_spline_offsets(rng, 64, strength=0.0)
    assert np.abs(still[0]).max() < 1e-5 and np.abs(still[1]).max() < 1e-5


def test_colour_matrix_is_identity_by_default_and_keeps_greys():
    np.testing.assert_allclose(colour_matrix(), np.eye(3), atol=1e-6)
    grey = np.full((4, 4, 3), 0.4, np.float32)
    np.testing.assert_allclose(apply_colour(grey, colour_matrix(hue=0.3)), grey, atol=1e-5)
    red = np.zeros((1, 1, 3), np.float32)
    red[..., 0] = 0.8
    flat = apply_colour(red, colour_matrix(saturation=0.0))
    assert np.ptp(flat) < 1e-6


def test_linear_operations_keep_the_matting_equation():
    rng = np.random.default_rng(0)
    alpha = rng.random((32, 32, 1)).astype(np.float32)
    fg = rng.uniform(0.35, 0.65, (32, 32, 3)).astype(np.float32)
    bg = rng.uniform(0.35, 0.65, (32, 32, 3)).astype(np.float32)
    image = alpha * fg + (1 - alpha) * bg
    matrix = colour_matrix(0.1, 1.2, 0.9)
    mixed = [apply_colour(x, matrix) for x in (image, fg, bg)]
    np.testing.assert_allclose(mixed[0], alpha * mixed[1] + (1 - alpha) * mixed[2], atol=1e-5)
    for op in LINEAR_OPS:
        new_image, new_fg, new_bg = op([image, fg, bg], np.random.default_rng(1))
        np.testing.assert_allclose(new_image, alpha * new_fg + (1 - alpha) * new_bg, atol=1e-5,
                                   err_msg=op.__name__)


@pytest.mark.parametrize("op", LINEAR_OPS + NONLINEAR_OPS + REGION_OPS,
                         ids=lambda op: op.__name__)
def test_every_strong_operation_returns_an_image(op):
    image = np.random.default_rng(0).random((24, 24, 3)).astype(np.float32)
    (out,) = op([image], np.random.default_rng(0))
    assert out.shape == image.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1


# --- backgrounds -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_procedural_patterns(name):
    image = PATTERNS[name](np.random.default_rng(0), 48, 64)
    assert image.shape == (48, 64, 3) and image.dtype == np.float32
    assert image.min() >= 0 and image.max() <= 1 and image.std() > 0.001


def test_folder_backgrounds_skip_unreadable_files(tmp_path):
    Image.fromarray(np.full((60, 90, 3), 200, np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    folder = ImageFolderBackgrounds(tmp_path, blur_probability=0)
    assert len(folder) == 2
    rng = np.random.default_rng(0)
    for _ in range(5):
        crop = folder.sample(rng, 32, 40)
        assert crop.shape == (32, 40, 3)
        np.testing.assert_allclose(crop, 200 / 255, atol=1e-6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LpmatteError, match="no images"):
        ImageFolderBackgrounds(tmp_path / "empty")


def test_random_crop_and_mixing():
    image = np.arange(100 * 120 * 3, dtype=np.uint8).reshape(100, 120, 3)
    assert random_crop(image, np.random.default_rng(0), 50, 30).shape == (50, 30, 3)
    mixed = MixedBackgrounds([ProceduralBackgrounds({"linear": 1.0})])
    assert mixed.sample(np.random.default_rng(0), 20, 10).shape == (20, 10, 3)
    with pytest.raises(LpmatteError, match="unknown background pattern"):
        ProceduralBackgrounds({"plaid": 1.0})


# --- samples and the dataset -----------------------------------------------------------------

def test_composited_samples_obey_the_matting_equation():
    config = AugmentConfig(crop_size=64, original_background_probability=0.0)
    builder = SampleBuilder(ProceduralBackgrounds(), config)
    for seed in range(6):
        sample = builder(ToySource(), seed % 4, np.random.default_rng(seed))
        assert sample.image.shape == (3, 64, 64) and sample.image.dtype == torch.uint8
        assert sample.alpha.shape == (1, 64, 64) and sample.trimap.shape == (64, 64)
        s = sample.as_float()
        assert s.image.dtype == torch.float32 and s.trimap.dtype == torch.int64
        composite = s.alpha * s.fg + (1 - s.alpha) * s.bg
        assert (composite - s.image).abs().max() < 2.5 / 255


def test_kept_photos_are_warped_alike():
    config = AugmentConfig(crop_size=64, original_background_probability=1.0,
                           composite_probability=0.0, hue_shift=0, saturation_range=(1, 1),
                           brightness_range=(1, 1))
    sample = SampleBuilder(ProceduralBackgrounds(), config)(
        ToySource(), 0, np.random.default_rng(3)).as_float()
    composite = sample.alpha * sample.fg + (1 - sample.alpha) * sample.bg
    assert (composite - sample.image).abs().mean() < 2 / 255


def soft_alpha_folder(root, count=4, height=96, width=80):
    """A training folder (images/ + alpha/ + fg/ + bg/) of toy discs."""
    for name in ("images", "alpha", "fg", "bg"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, item in enumerate(ToySource(count, height, width).items):
        Image.fromarray(item.image).save(root / "images" / f"{i}.png")
        Image.fromarray(item.alpha).save(root / "alpha" / f"{i}.png")
        Image.fromarray(item.fg).save(root / "fg" / f"{i}.png")
        Image.fromarray(item.bg).save(root / "bg" / f"{i}.png")
    return root


def test_draws_are_reproducible_and_worker_independent(tmp_path):
    """What the trainer uses: SampleDraws through build_loader."""
    from lpmatte.data.spec import SampleDraws, build_loader, parse_data_spec

    draws = SampleDraws(parse_data_spec(soft_alpha_folder(tmp_path)), 64, seed=7)
    first = draws[2]
    assert torch.equal(first.image, draws[2].image)
    assert not torch.equal(first.image, SampleDraws(draws_spec := parse_data_spec(tmp_path),
                                                    64, seed=8)[2].image)
    assert len(draws_spec) == 4
    batches = list(build_loader(draws, range(4), batch_size=2, num_workers=2))
    assert batches[0].image.shape == (2, 3, 64, 64)
    assert torch.equal(batches[1].image[0], draws[2].image)


def identity_geometry(**changes):
    """No affine randomness (scale 2, no rotation, shear, stretch or flip)."""
    base = dict(crop_size=64, scale_range=(2.0, 2.0), aspect_range=(1.0, 1.0),
                max_rotation=0.0, max_shear=0.0, flip_probability=0.0)
    return AugmentConfig(**{**base, **changes})


def warped_alpha(config, seed):
    builder = SampleBuilder(ProceduralBackgrounds(), config)
    return builder.warp(ToySource(1).items[0], np.random.default_rng(seed), False)[0]


def test_default_recipe_warps_about_half_the_samples_with_a_thin_plate_spline():
    """Fails when the TPS warp is disabled (default probability 0, or never applied)."""
    default = AugmentConfig()
    affine_only = identity_geometry(tps_probability=0.0)
    warped = identity_geometry(tps_probability=default.tps_probability,
                               tps_strength=default.tps_strength)
    differs = [not np.array_equal(warped_alpha(warped, seed), warped_alpha(affine_only, seed))
               for seed in range(24)]
    assert 4 <= sum(differs) <= 20
    always = identity_geometry(tps_probability=1.0)
    moved = np.abs(warped_alpha(always, 0).astype(int) - warped_alpha(affine_only, 0)).max()
    assert moved > 0


def test_default_recipe_centres_most_crops_on_the_soft_edge():
    """Fails when edge crops are disabled: zoomed-in crops then often miss the outline."""
    def edge_share(config):
        crops = [warped_alpha(config, seed) for seed in range(30)]
        return np.mean([((c > 0) & (c < 255)).any() for c in crops])

    default = AugmentConfig().edge_crop_probability
    zoom = dict(scale_range=(4.0, 4.0), tps_probability=0.0)
    with_edges = edge_share(identity_geometry(edge_crop_probability=default, **zoom))
    without = edge_share(identity_geometry(edge_crop_probability=0.0, **zoom))
    assert with_edges >= 0.75
    assert with_edges > without + 0.2


def test_kept_photos_get_one_colour_change_on_image_foreground_and_background():
    """Fails when colour augmentation of kept photos is disabled."""
    plain = dict(crop_size=64, original_background_probability=1.0, composite_probability=0.0)
    coloured = AugmentConfig(**plain)
    fixed = AugmentConfig(**plain, hue_shift=0.0, saturation_range=(1.0, 1.0),
                          brightness_range=(1.0, 1.0))
    changed = 0
    for seed in range(6):
        a = SampleBuilder(ProceduralBackgrounds(), coloured)(ToySource(), 0,
                                                             np.random.default_rng(seed))
        b = SampleBuilder(ProceduralBackgrounds(), fixed)(ToySource(), 0,
                                                          np.random.default_rng(seed))
        assert torch.equal(a.alpha, b.alpha)  # same geometry: only colour differs
        changed += (a.image.float() - b.image.float()).abs().mean() > 2
        f = a.as_float()
        composite = f.alpha * f.fg + (1 - f.alpha) * f.bg
        assert (composite - f.image).abs().mean() < 2 / 255  # alike on I, F and B
    assert changed >= 5


def write_folder(root, with_fg=True):
    from lpmatte.data.datasets import MattingDataset
    from lpmatte.data.datasets.folder import folder_files

    for name in ("images", "alpha", "fg"):
        (root / name).mkdir(parents=True, exist_ok=True)
    alpha = soft_disc(48, 40)
    Image.fromarray(np.full((48, 40, 3), 120, np.uint8)).save(root / "images" / "a.jpg")
    Image.fromarray(alpha).save(root / "alpha" / "a.png")
    Image.fromarray(np.full((48, 40, 3), 250, np.uint8)).save(root / "fg" / "a.png")
    fg_dir = "fg" if with_fg else None
    return MattingDataset(folder_files(root, "images", "alpha", fg_dir=fg_dir))


def test_dataset_source_reads_only_what_the_sample_needs(tmp_path):
    source = DatasetSource(write_folder(tmp_path))
    (tmp_path / "images" / "a.jpg").unlink()  # a new background needs no photo
    item = source.load_foreground(0, original=False)
    assert item.fg.dtype == np.uint8 and item.fg[0, 0, 0] == 250 and item.image is None
    with pytest.raises(LpmatteError, match="a.jpg"):
        source.load_foreground(0, original=True)


def test_dataset_source_uses_the_photo_without_foreground_colours(tmp_path):
    source = DatasetSource(write_folder(tmp_path, with_fg=False))
    item = source.load_foreground(0, original=False)
    assert abs(int(item.fg[0, 0, 0]) - 120) <= 2 and item.alpha.shape == (48, 40)
