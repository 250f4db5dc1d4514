"""MMNet (seed 004): shapes at odd sizes, the paper's parameter counts, the ablations, and
its gradient-error metric (Eq. 11)."""

import numpy as np
import pytest
import torch

from lpmatte.errors import LpmatteError
from lpmatte.metrics import grad_error_mmnet
from lpmatte.model.config import MMNetConfig
from lpmatte.model.factory import build_model
from lpmatte.model.mmnet import MMNet
from lpmatte.model.registry import create_config, list_models
from lpmatte.model.weights import (
    config_from_dict,
    config_to_dict,
    load_checkpoint,
    save_safetensors,
)
from lpmatte.model.whole_image import WholeImageOutput, count_flops

MMNET_NAMES = ["mmnet", "mmnet-0.5", "mmnet-128", "mmnet-nodilation", "mmnet-noenhance",
               "mmnet-norefine"]


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("size", [(96, 160), (128, 224), (64, 48)])
def test_output_shapes_and_range_at_odd_sizes(size):
    model = MMNet().eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert isinstance(out, WholeImageOutput) and out.trimap_logits is None
    assert out.alpha.shape == (2, 1, *size)
    assert 0 <= out.alpha.min() and out.alpha.max() <= 1
    assert out.aux["encoder10_logits"].shape == (2, 1, size[0] // 16, size[1] // 16)
    assert torch.allclose(out.aux["alpha_logits"].sigmoid(), out.alpha)


def test_sides_off_the_multiple_are_refused():
    with pytest.raises(ValueError, match="multiples of 16"):
        MMNet()(torch.rand(1, 3, 40, 48))


@pytest.mark.parametrize("width, paper", [(1.0, 199_000), (0.5, 69_000), (0.75, 127_000),
                                          (1.4, 369_000)])
def test_parameter_count_matches_the_papers_table_3(width, paper):
    assert abs(count_parameters(MMNet(MMNetConfig(width=width))) - paper) < 0.3 * paper


def test_ablations_remove_what_they_name():
    full = MMNet()
    no_enhance = MMNet(MMNetConfig(enhancement=False))
    no_refine = MMNet(MMNetConfig(refinement=False))
    no_dilation = MMNet(MMNetConfig(dilation=False))
    assert len(no_enhance.enhancements) == 0 and len(full.enhancements) == 2
    assert all(isinstance(r, torch.nn.Identity) for r in no_refine.refinements)
    rates = {m.dilation[0] for m in no_dilation.modules() if isinstance(m, torch.nn.Conv2d)}
    assert rates == {1}
    assert {m.dilation[0] for m in full.modules() if isinstance(m, torch.nn.Conv2d)} == {1, 2, 4, 8}
    assert count_parameters(no_enhance) < count_parameters(full)
    assert count_parameters(no_refine) < count_parameters(full)


@pytest.mark.parametrize("name", MMNET_NAMES)
def test_registered_names_build_train_and_round_trip(name, tmp_path):
    assert name in list_models()
    config = create_config(name)
    assert config.kind == "whole-image" and config.input_size in (128, 256)
    assert config_from_dict(config_to_dict(config)) == config
    model = build_model(config)
    out = model(torch.rand(2, 3, 32, 48))
    (out.alpha.mean() + out.aux["encoder10_logits"].mean()).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    if name == "mmnet-0.5":  # one file round trip is enough
        path = tmp_path / "m.safetensors"
        save_safetensors(path, model, config)
        checkpoint = load_checkpoint(path)
        assert checkpoint.config == config
        build_model(checkpoint.config).load_state_dict(checkpoint.state_dict)


def test_files_without_a_kind_stay_the_two_stage_model():
    data = config_to_dict(create_config("lpm-s"))
    assert "kind" not in data  # as every file written before the zoo
    assert config_from_dict(data) == create_config("lpm-s")
    assert config_to_dict(create_config("mmnet"))["kind"] == "whole-image"


def test_refiner_options_are_refused_with_one_line():
    with pytest.raises(LpmatteError, match="whole-image model without a refiner"):
        create_config("mmnet", num_neighbors=4)


def test_flops_count_a_multiply_add_as_two():
    conv = torch.nn.Conv2d(3, 4, 1, bias=False)
    assert count_flops(conv, 16, 32) == 2 * 3 * 4 * 16 * 32


def hand_gradient_of_column_ramp(values: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """x-gradient of an image whose every row is ``values``: the 1-D Gaussian derivative
    (half-size 4 for sigma 1.4, L2-normalised) along x with replicated ends, times the
    sum of the L2-normalised Gaussian along y (which sees a constant column)."""
    u = np.arange(-4, 5)
    gauss = np.exp(-u**2 / (2 * sigma**2))
    derivative = -u * gauss
    gauss, derivative = gauss / np.linalg.norm(gauss), derivative / np.linalg.norm(derivative)
    last = len(values) - 1
    return np.array([sum(derivative[k] * values[min(max(x - u[k], 0), last)]
                         for k in range(len(u))) for x in range(len(values))]) * gauss.sum()


def test_mmnet_gradient_error_of_a_ramp_is_the_hand_computed_mean():
    ramp = 0.03 * np.arange(21)
    pred, gt = np.tile(ramp, (12, 1)), np.zeros((12, 21))
    expected = np.abs(hand_gradient_of_column_ramp(ramp)).mean()
    assert grad_error_mmnet(pred, gt) == pytest.approx(expected, rel=1e-9)
    # vectors, not magnitudes: the mirrored ramp has the same |grad| but the opposite sign
    assert grad_error_mmnet(pred, pred[:, ::-1]) == pytest.approx(2 * expected, rel=1e-9)
    assert grad_error_mmnet(pred, pred + 0.1) == pytest.approx(0.0, abs=1e-12)
