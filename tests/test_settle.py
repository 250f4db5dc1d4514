"""Settling the cells the refiner left alone (lpmatte.inference.pipeline.settle_unrefined,
InferenceOptions.settle): near-0/1 coarse haze becomes exact 0/1, refined cells keep theirs.
The models run without deblocking here (tests/test_deblock.py), which acts afterwards."""

from pathlib import Path

import numpy as np
import pytest
import torch

import lpmatte
from lpmatte.cli import main
from lpmatte.errors import LpmatteError
from lpmatte.inference.options import InferenceOptions
from lpmatte.inference.pipeline import TRANSITION_MARGIN, settle_unrefined

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "astronaut.png")


def test_unrefined_haze_becomes_exact_and_refined_cells_keep_their_values():
    alpha = torch.full((1, 1, 20, 27), 0.05)  # 3 x 4 cells, the last row and column partial
    alpha[..., :, 8:16] = 0.95
    alpha[..., :, 16:24] = 0.5
    regions = torch.tensor([[0, 0, 0], [0, 1, 1], [0, 2, 3]])
    out = settle_unrefined(alpha, regions)
    refined = torch.zeros(20, 27, dtype=torch.bool)
    refined[0:8, 0:8] = refined[8:16, 8:16] = refined[16:20, 24:27] = True
    assert torch.equal(out[0, 0][refined], alpha[0, 0][refined])
    expected = torch.tensor([0.0, 1.0, 0.5, 0.0])  # per column band, outside refined cells
    for band, value in enumerate(expected):
        columns = slice(8 * band, min(8 * band + 8, 27))
        kept = ~refined[:, columns]
        assert torch.all(out[0, 0, :, columns][kept] == value)


def test_values_at_the_margin_settle_and_just_inside_stay():
    alpha = torch.tensor([TRANSITION_MARGIN, TRANSITION_MARGIN + 1e-3, 1 - TRANSITION_MARGIN,
                          1 - TRANSITION_MARGIN - 1e-3]).view(1, 1, 1, 4)
    out = settle_unrefined(alpha, torch.zeros(0, 3, dtype=torch.long))
    assert out.flatten().tolist() == pytest.approx([0.0, TRANSITION_MARGIN + 1e-3, 1.0,
                                                    1 - TRANSITION_MARGIN - 1e-3])


def test_a_real_portrait_settled_or_not_differs_only_outside_refined_cells():
    settled = lpmatte.load("default", device="cpu", backend="eager-fp32", deblock=False)
    plain = lpmatte.load("default", device="cpu", backend="eager-fp32", settle=False,
                         deblock=False)
    assert settled.options.settle and not plain.options.settle
    on, off = settled.run(EXAMPLE), plain.run(EXAMPLE)
    assert torch.equal(on.regions, off.regions)
    height, width = on.alpha.shape[-2:]
    refined = np.zeros(((height + 7) // 8, (width + 7) // 8), bool)
    cells = on.regions.numpy()
    refined[cells[:, 1], cells[:, 2]] = True
    refined = np.kron(refined, np.ones((8, 8), bool))[:height, :width]
    a, b = on.alpha_array(), off.alpha_array()
    np.testing.assert_array_equal(a[refined], b[refined])
    outside = a[~refined]
    changed = outside != b[~refined]
    assert changed.mean() > 0.3  # the astronaut's unrefined cells carry haze to settle
    assert set(np.unique(outside[changed])) <= {0.0, 1.0}
    assert np.abs(a - b).max() <= TRANSITION_MARGIN + 1e-6


def test_option_round_trips_and_old_files_settle():
    assert InferenceOptions().settle is True
    stored = InferenceOptions(settle=False).to_metadata()
    assert InferenceOptions.from_metadata(stored).settle is False
    older = {"lpmatte_inference": '{"flip_tta": true, "lowres_side": 480, "max_regions": null}'}
    assert InferenceOptions.from_metadata(older).settle is True
    with pytest.raises(LpmatteError, match="settle"):
        lpmatte.load("lpm-s", device="cpu", settle="sometimes")


def test_cli_switch(tmp_path, capsys):
    from PIL import Image

    args = ["matte", EXAMPLE, "-o", str(tmp_path / "out"), "--backend", "eager-fp32", "--quiet",
            "--deblock", "off"]
    assert main([*args, "--settle", "off"]) == 0
    off = np.asarray(Image.open(tmp_path / "out" / "astronaut.png"))
    assert main([*args, "--overwrite"]) == 0
    on = np.asarray(Image.open(tmp_path / "out" / "astronaut.png"))
    assert (on == 0).sum() > (off == 0).sum()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--settle", "maybe"])
    assert exit_info.value.code == 2 and "--settle" in capsys.readouterr().err


def test_the_second_pass_settles_as_the_rule_applied_afterwards():
    from lpmatte.inference.pipeline import settle_unrefined as settle_after

    plain = lpmatte.load("default", device="cpu", backend="eager-fp32", settle=False,
                         deblock=False)
    settled = lpmatte.load("default", device="cpu", backend="eager-fp32", deblock=False)
    assert settled.lowres_side < 512  # the astronaut (512 px) runs in two passes
    unsettled = plain.run(EXAMPLE)
    expected = settle_after(unsettled.alpha, unsettled.regions)
    assert torch.equal(settled.run(EXAMPLE).alpha, expected)


@pytest.mark.parametrize("size", [(72, 104), (75, 101)])  # whole cells, not whole patches; neither
def test_one_pass_images_of_any_size_settle_outside_their_refined_cells(size):
    matter = lpmatte.load("default", device="cpu", backend="eager-fp32", deblock=False,
                          person_height=0)  # the zoom would add an enlarged pass
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    output = matter.run(image)  # below the two-pass threshold: one pass
    alpha = output.alpha_array()
    assert alpha.shape == size
    refined = np.zeros(((size[0] + 7) // 8, (size[1] + 7) // 8), bool)
    cells = output.regions.numpy()
    refined[cells[:, 1], cells[:, 2]] = True
    outside = alpha[np.kron(refined, np.ones((8, 8), bool))[:size[0], :size[1]] == 0]
    settled = (outside == 0) | (outside == 1)
    assert np.all(settled | ((outside > TRANSITION_MARGIN) & (outside < 1 - TRANSITION_MARGIN)))
