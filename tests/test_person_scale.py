"""Small people matted on an enlarged first pass (lpmatte.inference.person_scale and the
pipeline's zoom: InferenceOptions.person_height / first_pass_scale)."""

import numpy as np
import pytest
import torch

import lpmatte
from lpmatte.errors import LpmatteError
from lpmatte.inference.options import InferenceOptions
from lpmatte.inference.person_scale import (
    blend_weight,
    near_people,
    person_cells,
    tallest_person,
    zoom_scale,
)
from lpmatte.inference.pipeline import run_inference


def boxes(height, width, *rects):
    alpha = torch.zeros(1, 1, height, width)
    for y0, y1, x0, x1 in rects:
        alpha[..., y0:y1, x0:x1] = 1.0
    return alpha


def test_tallest_person_is_the_tallest_blob_to_the_cell_and_ignores_specks():
    alpha = boxes(400, 640, (80, 160, 16, 64), (160, 360, 300, 380), (8, 16, 600, 608))
    assert tallest_person(person_cells(alpha)) == 200
    assert tallest_person(person_cells(torch.zeros(1, 1, 64, 64))) == 0
    assert tallest_person(person_cells(boxes(400, 640, (8, 16, 600, 608)))) == 0  # a speck


def test_zoom_scale_reaches_the_target_within_its_caps():
    # 100 px person in a 640x360 frame, first pass at 480 (0.75): 320 / 100 = 3.2, capped
    # at twice lowres_side (960 / 640 = 1.5)
    assert zoom_scale(100, (360, 640), 0.75, 320, 480) == pytest.approx(1.5)
    assert zoom_scale(100, (360, 640), 0.75, 320, None) == 2.0  # at most twice the image
    assert zoom_scale(500, (720, 1280), 0.375, 320, 480) == pytest.approx(0.64)
    assert zoom_scale(300, (720, 1280), 0.375, 320, 480) == pytest.approx(0.75)  # 960 px
    assert zoom_scale(400, (360, 640), 0.75, 320, 480) is None  # tall enough already
    assert zoom_scale(0, (360, 640), 0.75, 320, 480) is None  # nobody found
    assert zoom_scale(300, (360, 640), 1.0, 320, None) is None  # gain under 10 %


def test_near_people_grows_the_people_by_a_share_of_their_height():
    alpha = boxes(400, 640, (160, 360, 300, 380))
    near = near_people(person_cells(alpha), 200, alpha.shape[-2:])[0, 0]
    assert near.shape == (400, 640)
    assert near[160:360, 300:380].all() and near[152, 288]  # 5 % of 200 px: one cell more
    assert not near[140, 300] and not near[200, 280]
    assert not near[100, 300] and not near[200, 100] and not near[390, 630]


def test_blend_weight_ramps_inside_the_border_and_is_zero_outside():
    near = torch.zeros(1, 1, 64, 64, dtype=torch.bool)
    near[..., 16:48, 16:48] = True
    weight = blend_weight(near)[0, 0]
    assert (weight[~near[0, 0]] == 0).all()
    assert (weight[24:40, 24:40] == 1).all()  # a cell inside: the enlarged pass alone
    ramp = weight[32, 16:25]
    assert (ramp[1:] >= ramp[:-1]).all() and 0 < ramp[0] < 0.5  # even, no step to 1


def test_enlarged_first_pass_returns_the_image_size_and_its_own_grid(disk_backend):
    backend = disk_backend()
    options = InferenceOptions(first_pass_scale=2.0)
    output = run_inference(backend, torch.rand(1, 3, 96, 64), options)
    assert backend.lowres_sizes == [(192, 128)]
    assert output.alpha.shape == (1, 1, 96, 64)
    assert 0 <= float(output.alpha.min()) and float(output.alpha.max()) <= 1
    assert output.trimap_probs.shape == (1, 3, 12, 8)
    assert output.coarse_alpha.shape == (1, 1, 12, 8)

    class Unsure(disk_backend):  # every cell "unknown": every enlarged cell is refined
        def lowres(self, padded):
            alpha, _ = super().lowres(padded)
            unknown = torch.zeros(1, 3, *alpha.shape[-2:])
            unknown[:, 1] = 10
            return alpha, unknown

    regions = run_inference(Unsure(), torch.rand(1, 3, 96, 64), options).regions
    # the 24 x 16 enlarged cells map onto each of the image's own 12 x 8, once
    assert regions[:, 1:].tolist() == [[r, c] for r in range(12) for c in range(8)]
    with pytest.raises(ValueError, match="region_mask"):
        run_inference(backend, torch.rand(1, 3, 96, 64), options,
                      region_mask=torch.ones(1, 1, 12, 8, dtype=torch.bool))


def test_person_height_runs_a_zoomed_first_pass_and_changes_only_near_people(disk_backend):
    image = torch.rand(1, 3, 400, 300)
    plain_backend, zoom_backend = disk_backend(), disk_backend()
    plain = run_inference(plain_backend, image, InferenceOptions(lowres_side=100))
    zoomed = run_inference(zoom_backend, image,
                           InferenceOptions(lowres_side=100, person_height=160))
    # the disk is ~280 px tall, 71 px in the 100x75 first pass: zoom to 0.5 (the cap, 200 px)
    assert plain_backend.lowres_sizes == [(112, 80)]
    assert zoom_backend.lowres_sizes == [(112, 80), (208, 160)]  # 200x150 padded to 16
    cells = person_cells(plain.alpha)
    near = near_people(cells, tallest_person(cells), plain.alpha.shape[-2:])
    assert torch.equal(zoomed.alpha[~near], plain.alpha[~near])
    # tall enough already, or a video's coarse filter: no second first pass
    tall = disk_backend()
    run_inference(tall, image, InferenceOptions(lowres_side=100, person_height=60))
    assert tall.lowres_sizes == [(112, 80)]


def test_options_check_person_height_and_first_pass_scale():
    assert InferenceOptions().updated(person_height=0).person_height is None
    assert InferenceOptions().updated(person_height=320).person_height == 320
    for bad in (8, 1.5, "x", True):
        with pytest.raises(LpmatteError, match="person_height"):
            InferenceOptions(person_height=bad)
    for bad in (0.0, 5.0, True, "2"):
        with pytest.raises(LpmatteError, match="first_pass_scale"):
            InferenceOptions(first_pass_scale=bad)
    metadata = InferenceOptions(lowres_side=480, person_height=320).to_metadata()
    assert InferenceOptions.from_metadata(metadata).person_height == 320


def test_a_clip_fixes_its_scale_from_the_first_frame(portrait):
    matter = lpmatte.load("lpm-s", device="cpu", backend="eager-fp32", lowres_side=64)
    assert matter.for_clip(portrait(128, 128)) is matter  # no person_height: nothing to fix
    zooming = matter.with_options(person_height=600)
    assert zooming.options.person_height == 600 and matter.options.person_height is None
    clip = zooming.for_clip(portrait(128, 128))
    assert clip.options.person_height is None
    found = tallest_person(person_cells(torch.from_numpy(
        zooming.with_options(person_height=0).predict(portrait(128, 128)))[None, None]))
    expected = zoom_scale(found, (128, 128), 0.5, 600, 64)
    assert clip.options.first_pass_scale == expected
    assert clip.predict(portrait(128, 128)).shape == (128, 128)
    assert np.isfinite(clip.predict(portrait(128, 128))).all()
