"""Large images in two passes: the whole model at a working size, then full-resolution
refinement around the outline (lpmatte.inference.pipeline.run_two_passes, Matter.lowres_side)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lpmatte
from lpmatte.cli import main
from lpmatte.errors import LpmatteError
from lpmatte.inference.options import InferenceOptions
from lpmatte.inference.pipeline import run_inference, settle_, transition_cells, working_size
from lpmatte.model.model import LightweightPortraitMatting
from lpmatte.model.registry import create_config
from lpmatte.model.weights import save_safetensors


def test_working_size_keeps_the_aspect_and_skips_small_images():
    assert working_size(300, 200, None) is None
    assert working_size(300, 200, 300) is None
    assert working_size(1200, 800, 300) == (300, 200)
    assert working_size(1000, 333, 500) == (500, 166)


def test_small_images_take_the_one_pass_path(disk_backend):
    backend = disk_backend()
    image = torch.rand(1, 3, 96, 64)
    one = run_inference(backend, image)
    two = run_inference(backend, image, InferenceOptions(lowres_side=96))
    assert torch.equal(one.alpha, two.alpha)
    assert backend.lowres_sizes == [(96, 64), (96, 64)]


def test_large_images_run_small_then_refine_the_outline_at_full_size(disk_backend):
    backend = disk_backend()
    image = torch.rand(1, 3, 400, 300)
    output = run_inference(backend, image, InferenceOptions(lowres_side=100, deblock=False))
    assert backend.lowres_sizes == [(112, 80)]  # 100x75 padded to multiples of 16
    assert output.alpha.shape == (1, 1, 400, 300)
    assert output.trimap_probs.shape == (1, 3, 50, 38)
    # the second pass refines exactly the full-size cells where the matte is in transition
    first = F.interpolate(image, size=(100, 75), mode="area")
    first_alpha = run_inference(disk_backend(), first, InferenceOptions(settle=False)).alpha
    upsampled = F.interpolate(first_alpha, size=(400, 300), mode="bilinear", align_corners=False)
    padded = F.pad(upsampled, (0, 4, 0, 0), mode="replicate")
    expected = transition_cells(padded)[0, 0, :50, :38].nonzero()
    assert torch.equal(output.regions[:, 1:], expected)
    refined = torch.zeros(50, 38, dtype=torch.bool)
    refined[expected[:, 0], expected[:, 1]] = True
    cells = refined.repeat_interleave(8, 0).repeat_interleave(8, 1)[:400, :300]
    assert (output.alpha[0, 0][cells] == 0.25).all()
    # elsewhere the upsampled first pass, settled (InferenceOptions.settle is on)
    assert torch.equal(output.alpha[0, 0][~cells], settle_(upsampled.clone())[0, 0][~cells])
    assert set(output.alpha[0, 0][~cells].unique().tolist()) <= {0.0, 1.0}
    assert 0 < len(expected) < 50 * 38 / 2  # a band around the outline, not everything


def test_region_mask_forces_the_second_pass_cells(disk_backend):
    mask = torch.zeros(1, 1, 50, 38, dtype=torch.bool)
    mask[0, 0, 3, 4] = True
    output = run_inference(disk_backend(), torch.rand(1, 3, 400, 300),
                           InferenceOptions(lowres_side=100), region_mask=mask)
    assert output.regions.tolist() == [[0, 3, 4]]


def test_matter_option_metadata_and_errors(tmp_path, portrait):
    torch.manual_seed(0)
    model = LightweightPortraitMatting(create_config("lpm-s"))
    path = tmp_path / "w.safetensors"
    save_safetensors(path, model, model.config, untrained="false", lowres_side="64")
    assert lpmatte.load(path, device="cpu", backend="eager-fp32").lowres_side == 64
    assert lpmatte.load(path, device="cpu", backend="eager-fp32", lowres_side=0).lowres_side is None
    assert lpmatte.load("lpm-s", device="cpu").lowres_side is None  # the paper: one pass
    with pytest.raises(LpmatteError, match="lowres_side"):
        lpmatte.load("lpm-s", device="cpu", lowres_side=8)
    matter = lpmatte.load(path, device="cpu", backend="eager-fp32")
    alpha = matter.predict(portrait(150, 100))
    assert alpha.shape == (150, 100) and 0 <= alpha.min() and alpha.max() <= 1
    native = lpmatte.load(path, device="cpu", backend="eager-fp32", lowres_side=0)
    image = portrait(320, 240)
    assert matter.cost(image).flops["lowres"] < native.cost(image).flops["lowres"] / 2


def test_cli_lowres_side_option(tmp_path, portrait, capsys):
    from PIL import Image

    Image.fromarray(portrait(120, 90)).save(tmp_path / "p.png")
    args = ["matte", str(tmp_path / "p.png"), "-o", str(tmp_path / "out"), "--model", "lpm-s",
            "--backend", "eager-fp32", "--quiet"]
    assert main([*args, "--lowres-side", "64"]) == 0
    assert np.asarray(Image.open(tmp_path / "out" / "p.png")).shape == (120, 90)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--lowres-side", "eight"])
    assert exit_info.value.code == 2 and "--lowres-side" in capsys.readouterr().err


def test_transition_cells_skip_near_opaque_and_near_clear_cells():
    alpha = torch.zeros(1, 1, 16, 24)
    alpha[..., :8, :8] = 0.95   # near-opaque interior: left to the first pass
    alpha[..., 8:, :8] = 0.05   # faint haze: also left alone
    alpha[..., :8, 8:16] = 1.0
    alpha[..., 3, 10] = 0.5     # one pixel of real transition selects its cell
    alpha[..., 8:, 16:] = 0.8
    cells = transition_cells(alpha)[0, 0]
    assert cells.tolist() == [[False, True, False], [False, False, True]]
    assert transition_cells(alpha, margin=0.02)[0, 0].tolist() == [[True, True, False],
                                                                    [True, False, True]]


def test_uncertainty_probs_rank_cells_by_closeness_to_one_half():
    from lpmatte.inference.pipeline import uncertainty_probs

    coarse = torch.tensor([0.5, 0.6, 0.9, 0.1, 1.0]).view(1, 1, 1, 5)
    probs = uncertainty_probs(coarse)
    assert torch.allclose(probs.sum(1), torch.ones(1, 1, 5))
    unknown = probs[0, 1, 0].tolist()
    assert unknown[0] > unknown[1] > unknown[2] > unknown[4] == 0
    assert unknown[2] == pytest.approx(unknown[3])
    assert probs[0, 2, 0, 2] > probs[0, 0, 0, 2]  # 0.9 leans foreground


def test_region_cap_keeps_the_most_uncertain_second_pass_cells(disk_backend):
    """With max_regions the second pass refines the transition cells nearest 0.5 first."""
    backend = disk_backend()
    image = torch.rand(1, 3, 400, 300)
    every = run_inference(backend, image, InferenceOptions(lowres_side=100))
    capped = run_inference(disk_backend(), image, InferenceOptions(lowres_side=100, max_regions=5))
    assert len(capped.regions) == 5 < len(every.regions)
    coarse = every.coarse_alpha[0, 0]
    closeness = (coarse - 0.5).abs()
    kept = closeness[capped.regions[:, 1], capped.regions[:, 2]]
    others = closeness[every.regions[:, 1], every.regions[:, 2]]
    assert kept.max() <= others.sort().values[4] + 1e-6


def test_a_wider_transition_margin_refines_only_the_cells_it_names(disk_backend):
    """transition_margin picks the second pass's cells; the rest keep the upsampled matte,
    settled at the package's margin whatever the option says."""
    image = torch.rand(1, 3, 400, 300)
    every = run_inference(disk_backend(), image, InferenceOptions(lowres_side=100, deblock=False))
    options = InferenceOptions(lowres_side=100, deblock=False, transition_margin=0.3)
    fewer = run_inference(disk_backend(), image, options)
    first = F.interpolate(image, size=(100, 75), mode="area")
    first_alpha = run_inference(disk_backend(), first, InferenceOptions(settle=False)).alpha
    upsampled = F.interpolate(first_alpha, size=(400, 300), mode="bilinear", align_corners=False)
    padded = F.pad(upsampled, (0, 4, 0, 0), mode="replicate")
    expected = transition_cells(padded, margin=0.3)[0, 0, :50, :38].nonzero()
    assert torch.equal(fewer.regions[:, 1:], expected)
    assert 0 < len(fewer.regions) < len(every.regions)
    refined = torch.zeros(50, 38, dtype=torch.bool)
    refined[expected[:, 0], expected[:, 1]] = True
    left = ~refined.repeat_interleave(8, 0).repeat_interleave(8, 1)[:400, :300]
    assert torch.allclose(fewer.alpha[0, 0][left], settle_(upsampled.clone())[0, 0][left],
                          atol=1e-6)
    kept = fewer.alpha[0, 0][left]
    assert ((kept > 0.1) & (kept < 0.3)).any()  # the upsampled values the refiner skipped


@pytest.mark.parametrize("margin", [0, 0.5, -0.1, True, "wide"])
def test_transition_margin_is_checked(margin):
    with pytest.raises(LpmatteError, match="transition_margin"):
        InferenceOptions(transition_margin=margin)


def test_cli_transition_margin_option(tmp_path, portrait, capsys):
    from PIL import Image

    Image.fromarray(portrait(120, 90)).save(tmp_path / "p.png")
    args = ["matte", str(tmp_path / "p.png"), "-o", str(tmp_path / "out"), "--model", "lpm-s",
            "--backend", "eager-fp32", "--lowres-side", "64", "--quiet"]
    assert main([*args, "--transition-margin", "0.25"]) == 0
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--transition-margin", "0.5"])
    assert exit_info.value.code == 2 and "--transition-margin" in capsys.readouterr().err
