"""Group and small-person composites: matting equation, union alpha, scales, hold-out, seeds."""

import numpy as np
import pytest
import torch
from PIL import Image

from lpmatte.data.augment import DatasetSource
from lpmatte.data.backgrounds import ProceduralBackgrounds
from lpmatte.data.composites import (
    CompositeConfig,
    GroupBuilder,
    Layer,
    layer_union,
    pasteable_box,
)
from lpmatte.data.spec import SampleDraws, parse_data_spec, split_validation

SIZE = 96


def person(height=60, width=30, seed=0, cut_bottom=False):
    """A soft ellipse 'person' on a margin (or cut by the bottom border), random colours."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    centre_y = height if cut_bottom else height / 2
    radius = np.hypot((rows - centre_y) / (0.45 * height), (cols - width / 2) / (0.4 * width))
    alpha = np.clip((1 - radius) * 8, 0, 1)
    fg = rng.integers(40, 220, (height, width, 3), dtype=np.uint8)
    return (alpha * 255 + 0.5).astype(np.uint8), fg


def people_folder(root, count=6, prefix="p"):
    for name in ("images", "alpha", "fg", "bg"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        alpha, fg = person(seed=i, cut_bottom=i % 2 == 1)
        bg = np.full_like(fg, 100)
        a = alpha[..., None] / 255
        image = (a * fg + (1 - a) * bg + 0.5).astype(np.uint8)
        for name, array in (("images", image), ("alpha", alpha), ("fg", fg), ("bg", bg)):
            Image.fromarray(array).save(root / name / f"{prefix}{i}.png")
    return root


def builder_for(root, **changes):
    spec = parse_data_spec(root)
    sources = [DatasetSource(source) for source in _file_lists(spec)]
    config = CompositeConfig(**{"crop_size": SIZE, **changes})
    return GroupBuilder(sources, [1.0], [ProceduralBackgrounds()], config)


def _file_lists(spec):
    from lpmatte.data.spec import FileList

    return [FileList(source.files) for source in spec.sources]


def test_layers_obey_the_matting_equation_and_the_union_rule():
    rng = np.random.default_rng(0)
    background = rng.random((16, 16, 3), dtype=np.float32)
    layers = [Layer(rng.random((16, 16, 3), dtype=np.float32),
                    rng.random((16, 16), dtype=np.float32), float(i)) for i in range(4)]
    image, alpha, fg = layer_union(layers, background)
    expected = 1 - np.prod([1 - layer.alpha for layer in layers], axis=0)
    np.testing.assert_allclose(alpha, expected, atol=1e-6)
    np.testing.assert_allclose(image, alpha[..., None] * fg + (1 - alpha[..., None]) * background,
                               atol=1e-5)
    # sequential over-compositing, written out: the front layer wins where it is opaque
    sequential = background
    for layer in layers:
        sequential = layer.alpha[..., None] * layer.fg + (1 - layer.alpha[..., None]) * sequential
    np.testing.assert_allclose(image, sequential, atol=1e-5)
    assert fg.min() >= 0 and fg.max() <= 1 + 1e-6


def test_composite_samples_obey_the_matting_equation_to_8_bits(tmp_path):
    builder = builder_for(people_folder(tmp_path))
    for seed in range(6):
        sample = builder(np.random.default_rng(seed)).as_float()
        composite = sample.alpha * sample.fg + (1 - sample.alpha) * sample.bg
        assert (composite - sample.image).abs().max() <= 1.5 / 255
        assert sample.trimap.shape == (SIZE, SIZE)


def test_pasted_heights_cover_the_configured_range(tmp_path):
    builder = builder_for(people_folder(tmp_path), count_weights=(1.0,), max_outside=0.0,
                          photo_base_probability=0.0, max_rotation=0.0,
                          height_range=(0.1, 0.9))
    heights = []
    for seed in range(60):
        layer = builder.cutout(np.random.default_rng(seed))
        rows = np.flatnonzero(layer.alpha.max(1) > 0)
        heights.append((rows[-1] + 1 - rows[0]) / SIZE)
        assert 0.1 * SIZE - 2 <= layer.height <= 0.9 * SIZE + 1e-6
    assert min(heights) >= 0.1 - 3 / SIZE and max(heights) <= 0.9 + 2 / SIZE
    assert min(heights) < 0.2 and max(heights) > 0.6  # small people and big ones


def test_people_leave_the_frame_and_cut_busts_keep_their_cut_outside(tmp_path):
    builder = builder_for(people_folder(tmp_path), count_weights=(1.0,),
                          photo_base_probability=0.0, max_rotation=0.0)
    touching = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        which, index = builder.pick(np.random.default_rng(seed))
        layer = builder.cutout(rng)
        touching += bool(layer.alpha[0].any() or layer.alpha[:, 0].any()
                         or layer.alpha[:, -1].any() or layer.alpha[-1].any())
        if index % 2 == 1:  # cut at the bottom in its photo: cut at the frame's bottom
            assert layer.alpha[-1].max() > 0.5
    assert 5 <= touching < 40


def test_pasteable_box_recuts_portraits_cut_at_the_sides():
    alpha = np.zeros((40, 30), np.uint8)
    alpha[5:40, 10:20] = 255  # head and neck
    alpha[30:40, :] = 255  # shoulders run into both sides
    box, sides = pasteable_box(alpha)
    assert box == (10, 5, 20, 30) and sides == {"bottom"}
    alpha[:, :] = 255
    assert pasteable_box(alpha) is None  # cut on every side: nothing to paste


def test_held_out_people_are_never_pasted(tmp_path, monkeypatch):
    root = people_folder(tmp_path / "people", count=8)
    held = ["people/p1", "people/p4"]
    train, _ = split_validation(parse_data_spec(root), held)
    loaded = []
    original = DatasetSource.load_foreground

    def recording(self, index, photo):
        loaded.append(self.dataset.files[index].name)
        return original(self, index, photo)

    monkeypatch.setattr(DatasetSource, "load_foreground", recording)
    draws = SampleDraws(train, SIZE, seed=0)
    draws.group_share = 1.0
    for n in range(30):
        draws[n]
    assert len(set(loaded)) >= 5
    assert not {"p1", "p4"} & set(loaded)


def test_composites_are_deterministic_with_a_seed(tmp_path):
    root = people_folder(tmp_path)
    spec = parse_data_spec(root)
    spec = type(spec)(spec.sources, spec.procedural_backgrounds, spec.origin,
                      group_composites=1.0)
    first, again, other = (SampleDraws(spec, SIZE, seed=s)[3] for s in (5, 5, 6))
    assert torch.equal(first.image, again.image) and torch.equal(first.alpha, again.alpha)
    assert not torch.equal(first.image, other.image)


@pytest.mark.parametrize("value", [-0.1, 1.5, "a lot"])
def test_group_share_must_be_a_fraction(tmp_path, value):
    from lpmatte.data.spec import spec_from_config
    from lpmatte.errors import LpmatteError

    people_folder(tmp_path / "people")
    with pytest.raises(LpmatteError, match="group_composites must be in"):
        spec_from_config({"sources": [{"path": "people"}], "group_composites": value},
                         tmp_path, "spec.toml")
