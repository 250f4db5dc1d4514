"""Deblocking the refined cells' borders (lpmatte.inference.pipeline.deblock,
InferenceOptions.deblock): excess steps at the 8-px grid go, the image's own edges stay."""

from pathlib import Path

import numpy as np
import pytest
import torch

import lpmatte
from lpmatte.cli import main
from lpmatte.inference.options import InferenceOptions
from lpmatte.inference.pipeline import deblock
from lpmatte.media.image_io import load_rgb
from lpmatte.metrics.artefacts import cell_border_excess

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "astronaut.png")


def border_excess(alpha: torch.Tensor) -> float:
    """lpmatte.metrics' cell-border excess of a (..., H, W) matte holding one image."""
    return cell_border_excess(alpha.reshape(alpha.shape[-2:]).numpy())


def flat_image(height: int, width: int) -> torch.Tensor:
    return torch.full((1, 3, height, width), 0.4)


def deblock_reference(alpha: np.ndarray, image: np.ndarray, sigma: float = 0.1) -> np.ndarray:
    """The rule written out border by border: (H, W) alpha, (3, H, W) image; rows first."""
    out = alpha.astype(np.float64)
    for axis in (0, 1):
        view, guide = (out, image) if axis == 1 else (out.T, image.transpose(0, 2, 1))
        before = view.copy()  # every border of one axis reads the same input
        for b in range(8, view.shape[1] - 4 + 1, 8):
            excess = (before[:, b] - before[:, b - 1]) - 0.5 * (
                (before[:, b - 1] - before[:, b - 2]) + (before[:, b + 1] - before[:, b]))
            steps = [np.abs(guide[:, :, x + 1] - guide[:, :, x]).mean(0) for x in (b - 2, b - 1, b)]
            edge = np.maximum(steps[1] - 0.5 * (steps[0] + steps[2]), 0) / sigma
            correction = excess * np.exp(-edge ** 2)
            for i in range(4):
                view[:, b - 1 - i] += correction * (7 - 2 * i) / 16
                view[:, b + i] -= correction * (7 - 2 * i) / 16
    return out.clip(0, 1)


@pytest.mark.parametrize("size", [(48, 64), (37, 53), (12, 11), (9, 20)])
def test_deblock_equals_the_rule_written_border_by_border(size):
    """Mostly settled mattes (0 and 1 with uncertain cells), as the pipeline makes them: the
    filter's sparse path must give what the rule gives at every border."""
    rng = np.random.default_rng(sum(size))
    values = rng.random(size)
    alpha = np.where(values > 0.7, 1.0, np.where(values < 0.4, 0.0, values)).astype(np.float32)
    image = rng.random((3, *size)).astype(np.float32)
    image[:, :, size[1] // 2:] *= 0.2  # some borders on an image edge
    out = deblock(torch.from_numpy(alpha)[None, None], torch.from_numpy(image)[None])
    np.testing.assert_allclose(out[0, 0].numpy(), deblock_reference(alpha, image), atol=1e-5)


def test_cells_at_different_levels_lose_their_steps_over_a_flat_image():
    rng = np.random.default_rng(0)
    ramp = torch.linspace(0.2, 0.8, 64).expand(1, 1, 48, 64)
    levels = torch.from_numpy(rng.normal(0, 0.06, (6, 8)).astype(np.float32))
    blocky = (ramp + levels.repeat_interleave(8, 0).repeat_interleave(8, 1)).clamp(0, 1)
    out = deblock(blocky, flat_image(48, 64))
    assert border_excess(blocky) > 0.02
    assert abs(border_excess(out)) < 0.1 * border_excess(blocky)
    assert (out - ramp).abs().mean() < (blocky - ramp).abs().mean()


def test_a_smooth_matte_and_a_linear_ramp_are_left_as_they_are():
    image = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(1))
    ramp = torch.linspace(0, 1, 56).expand(1, 1, 40, 56).clone()
    assert torch.allclose(deblock(ramp, image), ramp, atol=1e-6)
    flat = torch.ones(1, 1, 40, 56)
    assert torch.equal(deblock(flat, image), flat)


def test_an_edge_of_the_image_on_a_cell_border_keeps_its_step():
    alpha = torch.zeros(1, 1, 24, 32)
    alpha[..., 16:] = 1.0
    image = torch.zeros(1, 3, 24, 32)
    image[..., 16:] = 0.8  # the person's edge is there in the picture too
    assert torch.allclose(deblock(alpha, image), alpha, atol=1e-6)
    # over a flat image the same step is a block border: smoothed into a ramp
    ramp = deblock(alpha, flat_image(24, 32))[0, 0, 0, 11:21]
    expected = torch.tensor([0, 1, 3, 5, 7, 9, 11, 13, 15, 16]) / 16  # an even ramp
    assert torch.allclose(ramp, expected, atol=1e-6)


@pytest.mark.parametrize("size", [(8, 8), (13, 5), (20, 29)])
def test_small_and_odd_sizes(size):
    alpha = torch.rand(2, 1, *size, generator=torch.Generator().manual_seed(2))
    out = deblock(alpha, torch.rand(2, 3, *size))
    assert out.shape == alpha.shape and 0 <= float(out.min()) and float(out.max()) <= 1


@pytest.mark.parametrize("lowres_side", ["auto", 0])  # the astronaut: two passes, one pass
def test_the_pipeline_deblocks_its_finished_matte(lowres_side):
    on = lpmatte.load("default", device="cpu", backend="eager-fp32", lowres_side=lowres_side)
    off = lpmatte.load("default", device="cpu", backend="eager-fp32", lowres_side=lowres_side,
                       deblock=False)
    assert on.options.deblock and not off.options.deblock
    plain = off.run(EXAMPLE)
    image = torch.from_numpy(load_rgb(EXAMPLE)).permute(2, 0, 1)[None]  # float in [0, 1]
    deblocked = on.run(EXAMPLE).alpha
    assert torch.allclose(deblocked, deblock(plain.alpha, image), atol=1e-6)
    assert border_excess(deblocked) < 0.5 * border_excess(plain.alpha)


def test_option_round_trips_old_files_deblock_and_the_cli_switch(tmp_path, capsys):
    from PIL import Image

    assert InferenceOptions().deblock is True
    assert InferenceOptions.from_metadata(InferenceOptions(deblock=False).to_metadata()) \
        .deblock is False
    older = {"lpmatte_inference": '{"flip_tta": false, "lowres_side": 480, "settle": true}'}
    assert InferenceOptions.from_metadata(older).deblock is True
    args = ["matte", EXAMPLE, "-o", str(tmp_path / "out"), "--backend", "eager-fp32", "--quiet"]
    assert main([*args, "--deblock", "off"]) == 0
    off = np.asarray(Image.open(tmp_path / "out" / "astronaut.png")).astype(np.float32)
    assert main([*args, "--overwrite"]) == 0
    on = np.asarray(Image.open(tmp_path / "out" / "astronaut.png")).astype(np.float32)
    assert border_excess(torch.from_numpy(on)) < 0.5 * border_excess(torch.from_numpy(off))
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--deblock", "maybe"])
    assert exit_info.value.code == 2 and "--deblock" in capsys.readouterr().err
